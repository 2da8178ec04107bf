//! PostgreSQL: login sessions, by the SHA-256 of their token, shared by every node.

use tokio_postgres::Row;

use super::{Pg, text};
use crate::state::StateError;
use crate::state::sessions::{SessionState, StoredSession, TokenHash};

const COLUMNS: &str = "hash, username, roles, method, expires_ns, partial, grant_hash";

impl SessionState for Pg {
    fn load_sessions(&self, now_ns: i64) -> Result<Vec<StoredSession>, StateError> {
        let rows = self.run(move |client| async move {
            client
                .execute("DELETE FROM sessions WHERE expires_ns <= $1", &[&now_ns])
                .await?;
            Ok(client
                .query(&format!("SELECT {COLUMNS} FROM sessions ORDER BY seq"), &[])
                .await?)
        })?;
        // A row this build cannot read is skipped: a session lost is a login again, a
        // session misread could be a wrong grant.
        Ok(rows.iter().filter_map(|row| session(row).ok()).collect())
    }

    fn save_session(&self, session: &StoredSession) -> Result<(), StateError> {
        let roles =
            serde_json::to_string(&session.roles).map_err(|e| StateError::Task(e.to_string()))?;
        let session = session.clone();
        self.run(move |client| async move {
            let statement = client
                .prepare_cached(
                    "INSERT INTO sessions (hash, username, roles, method, expires_ns, partial, \
                     grant_hash) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO \
                     UPDATE SET username = excluded.username, roles = excluded.roles, \
                     method = excluded.method, expires_ns = excluded.expires_ns, \
                     partial = excluded.partial, grant_hash = excluded.grant_hash",
                )
                .await?;
            client
                .execute(
                    &statement,
                    &[
                        &session.hash.as_slice(),
                        &text(&session.user),
                        &roles,
                        &session.method,
                        &session.expires_ns,
                        &session.partial,
                        &session.grant.as_ref().map(|g| g.as_slice()),
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn delete_sessions(&self, hashes: &[TokenHash]) -> Result<(), StateError> {
        if hashes.is_empty() {
            return Ok(());
        }
        let hashes: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
        self.run(move |client| async move {
            client
                .execute("DELETE FROM sessions WHERE hash = ANY($1)", &[&hashes])
                .await?;
            Ok(())
        })
    }

    fn find_session(
        &self,
        hash: &TokenHash,
        now_ns: i64,
    ) -> Result<Option<StoredSession>, StateError> {
        let hash = hash.to_vec();
        let row = self.run(move |client| async move {
            let statement = client
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM sessions WHERE hash = $1 AND expires_ns > $2"
                ))
                .await?;
            Ok(client.query_opt(&statement, &[&hash, &now_ns]).await?)
        })?;
        Ok(row.and_then(|row| session(&row).ok()))
    }
}

fn session(row: &Row) -> Result<StoredSession, StateError> {
    let unreadable = || StateError::Postgres("an unreadable session row".into());
    let hash: Vec<u8> = row.try_get(0)?;
    let roles: String = row.try_get(2)?;
    Ok(StoredSession {
        hash: TokenHash::try_from(hash.as_slice()).map_err(|_| unreadable())?,
        user: row.try_get(1)?,
        roles: serde_json::from_str(&roles).map_err(|_| unreadable())?,
        method: row.try_get(3)?,
        expires_ns: row.try_get(4)?,
        partial: row.try_get(5)?,
        grant: row
            .try_get::<_, Option<Vec<u8>>>(6)?
            .and_then(|g| TokenHash::try_from(g.as_slice()).ok()),
    })
}
