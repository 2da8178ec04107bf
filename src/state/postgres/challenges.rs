//! PostgreSQL: RADIUS challenges waiting for their code, so that a State one node sent is
//! answered at any node.

use super::{Pg, text};
use crate::state::StateError;
use crate::state::challenges::{ChallengeState, Pending};

impl ChallengeState for Pg {
    fn save_challenge(
        &self,
        hash: &[u8; 32],
        pending: &Pending,
        now: i64,
        expires: i64,
        max: i64,
    ) -> Result<(), StateError> {
        let roles =
            serde_json::to_string(&pending.roles).map_err(|e| StateError::Task(e.to_string()))?;
        let hash = hash.to_vec();
        let pending = pending.clone();
        self.run(move |mut client| async move {
            let tx = client.transaction().await?;
            super::make_room(&tx, ("mfa_challenges", "state_hash", "expires"), now, max).await?;
            tx.execute(
                "INSERT INTO mfa_challenges \
                 (state_hash, username, client_id, source, roles, method, expires) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &hash,
                    &text(&pending.user),
                    &i64::from(pending.client_id),
                    &text(&pending.source),
                    &roles,
                    &pending.method,
                    &expires,
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn take_challenge(&self, hash: &[u8; 32], now: i64) -> Result<Option<Pending>, StateError> {
        let hash = hash.to_vec();
        // One statement removes and returns it: two nodes answering the same State at once
        // cannot both take it.
        let row = self.run(move |client| async move {
            Ok(client
                .query_opt(
                    "DELETE FROM mfa_challenges WHERE state_hash = $1 \
                     RETURNING username, client_id, source, roles, method, expires",
                    &[&hash],
                )
                .await?)
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let expires: i64 = row.try_get(5)?;
        if expires <= now {
            return Ok(None);
        }
        let roles: String = row.try_get(3)?;
        Ok(Some(Pending {
            user: row.try_get(0)?,
            client_id: u32::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0),
            source: row.try_get(2)?,
            roles: serde_json::from_str(&roles).unwrap_or_default(),
            method: row.try_get(4)?,
        }))
    }
}
