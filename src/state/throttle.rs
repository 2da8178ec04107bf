//! The brute-force throttle's counts (`crate::throttle`), kept across restarts: per key
//! (`user:<bucket>:<user key>`, `source:<address>`, `share:<address>|<user key>`).

use rusqlite::params;

use super::{StateDb, StateError};

/// One key's stored count: (consecutive failures, locked until, last failure), the times in
/// Unix seconds (0: not locked).
pub type StoredCount = (i64, i64, i64);

/// One key's change, as the throttle writes it behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountChange {
    /// The key.
    pub key: String,
    /// Its count in this node's memory now; `None`: forget the key.
    pub row: Option<StoredCount>,
    /// Failures this node counted since its last write (what a shared database adds to the
    /// count other nodes wrote meanwhile).
    pub added: i64,
    /// Whether this node lowered the count since its last write (a success, an
    /// administrator's clear): then `row` replaces the stored count instead of adding to it.
    pub reset: bool,
    /// The most failures the key counts (a user's hard limit; `i64::MAX` for others).
    pub cap: i64,
}

/// Where the throttle's counts are kept. Every call blocks; each is one transaction.
pub trait ThrottleState {
    /// Every stored count.
    fn load_counts(&self) -> Result<Vec<(String, StoredCount)>, StateError>;
    /// Stores each key's change. A database of one node stores `row` as it is; a shared one
    /// adds `added` to what other nodes stored, unless `reset`.
    fn store_counts(&self, batch: &[CountChange]) -> Result<(), StateError>;
}

impl ThrottleState for StateDb {
    fn load_counts(&self) -> Result<Vec<(String, StoredCount)>, StateError> {
        if let Some(pg) = self.postgres() {
            return pg.load_counts();
        }
        self.with(|conn| {
            let mut statement =
                conn.prepare("SELECT key, failures, locked_until, last_failure FROM throttle")?;
            let rows = statement.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn store_counts(&self, batch: &[CountChange]) -> Result<(), StateError> {
        if let Some(pg) = self.postgres() {
            return pg.store_counts(batch);
        }
        self.with(|conn| {
            let tx = conn.transaction()?;
            for CountChange { key, row, .. } in batch {
                match row {
                    Some((failures, until, last)) => tx.execute(
                        "INSERT INTO throttle (key, failures, locked_until, last_failure) \
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET \
                         failures = excluded.failures, locked_until = excluded.locked_until, \
                         last_failure = excluded.last_failure",
                        params![key, failures, until, last],
                    )?,
                    None => tx.execute("DELETE FROM throttle WHERE key = ?1", [key])?,
                };
            }
            tx.commit()?;
            Ok(())
        })
    }
}
