//! PostgreSQL: the brute-force throttle's counts, each node's rows apart.

use super::Pg;
use crate::state::StateError;
use crate::state::throttle::{StoredCount, ThrottleState};

impl ThrottleState for Pg {
    fn load_counts(&self) -> Result<Vec<(String, StoredCount)>, StateError> {
        let node = self.node().to_owned();
        let rows = self.run(move |client| async move {
            Ok(client
                .query(
                    "SELECT key, failures, locked_until, last_failure FROM throttle \
                     WHERE node = $1",
                    &[&node],
                )
                .await?)
        })?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))))
            .collect()
    }

    fn store_counts(&self, batch: &[(String, Option<StoredCount>)]) -> Result<(), StateError> {
        let node = self.node().to_owned();
        let batch = batch.to_vec();
        self.run(move |mut client| async move {
            let tx = client.transaction().await?;
            for (key, row) in &batch {
                match row {
                    Some((failures, until, last)) => {
                        tx.execute(
                            "INSERT INTO throttle (node, key, failures, locked_until, \
                             last_failure) VALUES ($1, $2, $3, $4, $5) \
                             ON CONFLICT (node, key) DO UPDATE SET \
                             failures = excluded.failures, \
                             locked_until = excluded.locked_until, \
                             last_failure = excluded.last_failure",
                            &[&node, key, failures, until, last],
                        )
                        .await?
                    }
                    None => {
                        tx.execute(
                            "DELETE FROM throttle WHERE node = $1 AND key = $2",
                            &[&node, key],
                        )
                        .await?
                    }
                };
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
