//! PostgreSQL: the brute-force throttle's counts, one row per key for every node.
//!
//! A node adds the failures it counted to what the others stored (one atomic upsert per key),
//! or replaces the row when it lowered the count (a success, a clear), and every write
//! notifies `portcullis_throttle` with the row as it now stands, so each node's in-memory
//! copy follows within a notification's delay.

use super::{Pg, text};
use crate::state::StateError;
use crate::state::throttle::{CountChange, StoredCount, ThrottleState};

/// The channel every change of a count is announced on; the payload is
/// [`notice_payload`]'s JSON array `[key, failures, locked_until, last_failure]`.
pub const CHANNEL: &str = "portcullis_throttle";

impl ThrottleState for Pg {
    fn load_counts(&self) -> Result<Vec<(String, StoredCount)>, StateError> {
        let rows = self.run(move |client| async move {
            Ok(client
                .query(
                    "SELECT key, failures, locked_until, last_failure FROM throttle",
                    &[],
                )
                .await?)
        })?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))))
            .collect()
    }

    fn store_counts(&self, batch: &[CountChange]) -> Result<(), StateError> {
        let batch: Vec<CountChange> = batch
            .iter()
            .map(|c| CountChange {
                key: text(&c.key),
                ..c.clone()
            })
            .collect();
        self.run(move |mut client| async move {
            let tx = client.transaction().await?;
            for change in &batch {
                match change.row {
                    None => {
                        tx.execute(
                            "WITH gone AS (DELETE FROM throttle WHERE key = $1 RETURNING key) \
                             SELECT pg_notify($2, json_build_array($1::text, 0, 0, 0)::text)",
                            &[&change.key, &CHANNEL],
                        )
                        .await?;
                    }
                    Some((failures, locked_until, last_failure)) => {
                        let inserted = if change.reset { failures } else { change.added };
                        tx.execute(
                            "WITH up AS (INSERT INTO throttle AS t \
                             (key, failures, locked_until, last_failure) \
                             VALUES ($1, LEAST($2::bigint, $6::bigint), $3, $4) \
                             ON CONFLICT (key) DO UPDATE SET \
                             failures = CASE WHEN $5 THEN excluded.failures \
                                 ELSE LEAST(t.failures + $7, $6) END, \
                             locked_until = CASE WHEN $5 THEN excluded.locked_until \
                                 ELSE GREATEST(t.locked_until, excluded.locked_until) END, \
                             last_failure = GREATEST(t.last_failure, excluded.last_failure) \
                             RETURNING key, failures, locked_until, last_failure) \
                             SELECT pg_notify($8, json_build_array(key, failures, \
                             locked_until, last_failure)::text) FROM up",
                            &[
                                &change.key,
                                &inserted,
                                &locked_until,
                                &last_failure,
                                &change.reset,
                                &change.cap,
                                &change.added,
                                &CHANNEL,
                            ],
                        )
                        .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// Reads a notification of [`CHANNEL`]: the key and its row as stored now (a forgotten key
/// comes as zeros).
pub fn notice_payload(payload: &str) -> Option<(String, StoredCount)> {
    let (key, failures, locked_until, last_failure): (String, i64, i64, i64) =
        serde_json::from_str(payload).ok()?;
    Some((key, (failures, locked_until, last_failure)))
}
