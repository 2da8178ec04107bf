//! RADIUS challenges waiting for their code (`crate::login::radius`), by the SHA-256 hash of
//! their State (never the State).

use rusqlite::{OptionalExtension, params};

use super::{StateDb, StateError};

/// A challenge waiting for its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The user it was sent to.
    pub user: String,
    /// The front-end client it was sent to.
    pub client_id: u32,
    /// The source address it was sent to.
    pub source: String,
    /// The roles the first factor granted.
    pub roles: Vec<String>,
    /// The method that accepted the first factor.
    pub method: String,
}

/// Where challenges wait. Every call blocks; each is one transaction.
pub trait ChallengeState {
    /// Keeps `pending` under `hash` until `expires`, after forgetting the challenges expired
    /// at `now` and, when `max` are kept, those closest to expiry.
    fn save_challenge(
        &self,
        hash: &[u8; 32],
        pending: &Pending,
        now: i64,
        expires: i64,
        max: i64,
    ) -> Result<(), StateError>;
    /// Removes and returns the challenge of `hash` if it is still live at `now` (single use).
    fn take_challenge(&self, hash: &[u8; 32], now: i64) -> Result<Option<Pending>, StateError>;
}

impl ChallengeState for StateDb {
    fn save_challenge(
        &self,
        hash: &[u8; 32],
        pending: &Pending,
        now: i64,
        expires: i64,
        max: i64,
    ) -> Result<(), StateError> {
        if let Some(pg) = self.postgres() {
            return pg.save_challenge(hash, pending, now, expires, max);
        }
        let roles =
            serde_json::to_string(&pending.roles).map_err(|e| StateError::Task(e.to_string()))?;
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM mfa_challenges WHERE expires <= ?1",
                params![now],
            )?;
            let count: i64 =
                tx.query_row("SELECT count(*) FROM mfa_challenges", [], |r| r.get(0))?;
            if count >= max {
                tx.execute(
                    "DELETE FROM mfa_challenges WHERE state_hash IN \
                     (SELECT state_hash FROM mfa_challenges ORDER BY expires LIMIT ?1)",
                    params![count - max + 1],
                )?;
            }
            tx.execute(
                "INSERT INTO mfa_challenges \
                 (state_hash, user, client_id, source, roles, method, expires) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    hash.as_slice(),
                    pending.user,
                    pending.client_id,
                    pending.source,
                    roles,
                    pending.method,
                    expires
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn take_challenge(&self, hash: &[u8; 32], now: i64) -> Result<Option<Pending>, StateError> {
        if let Some(pg) = self.postgres() {
            return pg.take_challenge(hash, now);
        }
        self.with(|conn| {
            let tx = conn.transaction()?;
            let row: Option<(String, u32, String, String, String, i64)> = tx
                .query_row(
                    "SELECT user, client_id, source, roles, method, expires FROM mfa_challenges \
                     WHERE state_hash = ?1",
                    params![hash.as_slice()],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    },
                )
                .optional()?;
            tx.execute(
                "DELETE FROM mfa_challenges WHERE state_hash = ?1",
                params![hash.as_slice()],
            )?;
            tx.commit()?;
            Ok(row.filter(|(.., expires)| *expires > now).map(
                |(user, client_id, source, roles, method, _)| Pending {
                    user,
                    client_id,
                    source,
                    roles: serde_json::from_str(&roles).unwrap_or_default(),
                    method,
                },
            ))
        })
    }
}
