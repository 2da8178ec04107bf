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
        // Written with the other sessions saved at the same moment, in one statement: the
        // caller still waits until its session is stored (another node may be asked for the
        // token at once), but a burst of logins costs one commit, not one each.
        let Some(writer) = self.session_writer() else {
            return Err(StateError::Postgres("shut down".into()));
        };
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        writer
            .send((session.clone(), answer))
            .map_err(|_| StateError::Postgres("the session writer ended".into()))?;
        answered
            .recv()
            .map_err(|_| StateError::Postgres("the session writer ended".into()))?
            .map_err(StateError::Postgres)
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

/// A session waiting to be written, and where to say it was (or why not).
pub(super) type Pending = (
    StoredSession,
    std::sync::mpsc::SyncSender<Result<(), String>>,
);

/// The most sessions one statement writes.
const MAX_BATCH: usize = 256;

impl Pg {
    /// The queue of the task that writes sessions in batches (started on first use).
    fn session_writer(&self) -> Option<&tokio::sync::mpsc::UnboundedSender<Pending>> {
        let runtime = self.runtime.as_ref()?;
        Some(self.session_writer.get_or_init(|| {
            let (queue, queued) = tokio::sync::mpsc::unbounded_channel();
            runtime.spawn(write_sessions(self.pool.clone(), queued));
            queue
        }))
    }
}

/// Writes what arrives on `queued`: each time, everything queued so far (up to
/// [`MAX_BATCH`]) in one statement, while the next ones queue.
async fn write_sessions(
    pool: deadpool_postgres::Pool,
    mut queued: tokio::sync::mpsc::UnboundedReceiver<Pending>,
) {
    let mut batch: Vec<Pending> = Vec::new();
    while let Some(first) = queued.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let written = insert_batch(&pool, &batch).await.map_err(|e| e.to_string());
        for (_, answer) in batch.drain(..) {
            let _ = answer.send(written.clone());
        }
    }
}

async fn insert_batch(pool: &deadpool_postgres::Pool, batch: &[Pending]) -> Result<(), StateError> {
    let mut hashes = Vec::with_capacity(batch.len());
    let mut users = Vec::with_capacity(batch.len());
    let mut roles = Vec::with_capacity(batch.len());
    let mut methods = Vec::with_capacity(batch.len());
    let mut expires = Vec::with_capacity(batch.len());
    let mut partial = Vec::with_capacity(batch.len());
    let mut grants = Vec::with_capacity(batch.len());
    for (session, _) in batch {
        if hashes.contains(&session.hash.to_vec()) {
            // The same token twice in one statement cannot be upserted: the first is kept.
            continue;
        }
        hashes.push(session.hash.to_vec());
        users.push(text(&session.user));
        roles.push(
            serde_json::to_string(&session.roles).map_err(|e| StateError::Task(e.to_string()))?,
        );
        methods.push(session.method.clone());
        expires.push(session.expires_ns);
        partial.push(session.partial);
        grants.push(session.grant.map(|g| g.to_vec()));
    }
    let client = pool.get().await.map_err(super::pool_error)?;
    let statement = client
        .prepare_cached(
            "INSERT INTO sessions (hash, username, roles, method, expires_ns, partial, \
             grant_hash) SELECT t.hash, t.username, t.roles, t.method, t.expires_ns, \
             t.partial, t.grant_hash FROM unnest($1::bytea[], $2::text[], $3::text[], \
             $4::text[], $5::bigint[], $6::boolean[], $7::bytea[]) WITH ORDINALITY \
             AS t(hash, username, roles, method, expires_ns, partial, grant_hash, n) \
             ORDER BY t.n ON CONFLICT (hash) DO UPDATE SET username = excluded.username, \
             roles = excluded.roles, method = excluded.method, \
             expires_ns = excluded.expires_ns, partial = excluded.partial, \
             grant_hash = excluded.grant_hash",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &hashes, &users, &roles, &methods, &expires, &partial, &grants,
            ],
        )
        .await?;
    Ok(())
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
