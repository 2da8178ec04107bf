//! Login sessions as the state keeps them, so they survive a restart: by the SHA-256 hash of
//! the token (never the token), in the order they were opened.

use rusqlite::{OptionalExtension, params};

use super::{StateDb, StateError};

/// The SHA-256 hash of a bearer token.
pub type TokenHash = [u8; 32];

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The hash of its token.
    pub hash: TokenHash,
    /// The user name as typed at login.
    pub user: String,
    /// The roles at login.
    pub roles: Vec<String>,
    /// The method that accepted the user.
    pub method: String,
    /// When it stops working, in nanoseconds since the Unix epoch.
    pub expires_ns: i64,
    /// A second factor is still owed.
    pub partial: bool,
    /// For a local user's session: what the user was at login (name, roles, password hash,
    /// hashed), so a session whose user changed while the daemon was down is not restored.
    pub grant: Option<TokenHash>,
}

/// Where sessions are kept between restarts. Every call blocks; each is one transaction.
pub trait SessionState {
    /// The sessions that expire after `now_ns`, oldest first; expired ones are deleted.
    fn load_sessions(&self, now_ns: i64) -> Result<Vec<StoredSession>, StateError>;
    /// Keeps `session` (newest of all).
    fn save_session(&self, session: &StoredSession) -> Result<(), StateError>;
    /// Forgets the sessions of these token hashes (unknown ones are ignored).
    fn delete_sessions(&self, hashes: &[TokenHash]) -> Result<(), StateError>;
    /// The session of `hash` if it expires after `now_ns`: how a node finds a session another
    /// node opened, and learns that one was ended elsewhere.
    fn find_session(
        &self,
        hash: &TokenHash,
        now_ns: i64,
    ) -> Result<Option<StoredSession>, StateError>;
}

impl SessionState for StateDb {
    fn load_sessions(&self, now_ns: i64) -> Result<Vec<StoredSession>, StateError> {
        if let Some(pg) = self.postgres() {
            return pg.load_sessions(now_ns);
        }
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM sessions WHERE expires_ns <= ?1", [now_ns])?;
            let mut sessions = Vec::new();
            {
                let mut rows = tx.prepare(
                    "SELECT hash, user, roles, method, expires_ns, partial, grant_hash \
                     FROM sessions ORDER BY seq",
                )?;
                let mut rows = rows.query([])?;
                while let Some(row) = rows.next()? {
                    let hash: Vec<u8> = row.get(0)?;
                    let roles: String = row.get(2)?;
                    // A row this build cannot read is skipped (and deleted below): a session
                    // lost is a login again, a session misread could be a wrong grant.
                    let (Ok(hash), Ok(roles)) = (
                        TokenHash::try_from(hash.as_slice()),
                        serde_json::from_str::<Vec<String>>(&roles),
                    ) else {
                        continue;
                    };
                    sessions.push(StoredSession {
                        hash,
                        user: row.get(1)?,
                        roles,
                        method: row.get(3)?,
                        expires_ns: row.get(4)?,
                        partial: row.get::<_, i64>(5)? != 0,
                        grant: row
                            .get::<_, Option<Vec<u8>>>(6)?
                            .and_then(|g| TokenHash::try_from(g.as_slice()).ok()),
                    });
                }
            }
            let kept = sessions.len();
            let stored: i64 = tx.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?;
            if usize::try_from(stored).unwrap_or(0) != kept {
                tx.execute("DELETE FROM sessions", [])?;
                for session in &sessions {
                    insert(&tx, session)?;
                }
            }
            tx.commit()?;
            Ok(sessions)
        })
    }

    fn save_session(&self, session: &StoredSession) -> Result<(), StateError> {
        if let Some(pg) = self.postgres() {
            return pg.save_session(session);
        }
        self.with(|conn| insert(conn, session))
    }

    fn delete_sessions(&self, hashes: &[TokenHash]) -> Result<(), StateError> {
        if let Some(pg) = self.postgres() {
            return pg.delete_sessions(hashes);
        }
        if hashes.is_empty() {
            return Ok(());
        }
        self.with(|conn| {
            let tx = conn.transaction()?;
            {
                let mut delete = tx.prepare_cached("DELETE FROM sessions WHERE hash = ?1")?;
                for hash in hashes {
                    delete.execute([hash.as_slice()])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn find_session(
        &self,
        hash: &TokenHash,
        now_ns: i64,
    ) -> Result<Option<StoredSession>, StateError> {
        if let Some(pg) = self.postgres() {
            return pg.find_session(hash, now_ns);
        }
        self.with(|conn| {
            let row = conn
                .query_row(
                    "SELECT user, roles, method, expires_ns, partial, grant_hash FROM sessions \
                     WHERE hash = ?1 AND expires_ns > ?2",
                    params![hash.as_slice(), now_ns],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, Option<Vec<u8>>>(5)?,
                        ))
                    },
                )
                .optional()?;
            Ok(
                row.and_then(|(user, roles, method, expires_ns, partial, grant)| {
                    Some(StoredSession {
                        hash: *hash,
                        user,
                        roles: serde_json::from_str(&roles).ok()?,
                        method,
                        expires_ns,
                        partial: partial != 0,
                        grant: grant.and_then(|g| TokenHash::try_from(g.as_slice()).ok()),
                    })
                }),
            )
        })
    }
}

fn insert(conn: &rusqlite::Connection, session: &StoredSession) -> Result<(), StateError> {
    let roles =
        serde_json::to_string(&session.roles).map_err(|e| StateError::Task(e.to_string()))?;
    conn.execute(
        "INSERT OR REPLACE INTO sessions \
         (hash, user, roles, method, expires_ns, partial, grant_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            session.hash.as_slice(),
            session.user,
            roles,
            session.method,
            session.expires_ns,
            i64::from(session.partial),
            session.grant.as_ref().map(|g| g.as_slice())
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(n: u8, expires_ns: i64) -> StoredSession {
        StoredSession {
            hash: [n; 32],
            user: format!("user{n}"),
            roles: vec!["Monitor".into()],
            method: "Local".into(),
            expires_ns,
            partial: n % 2 == 0,
            grant: (n == 4).then_some([9; 32]),
        }
    }

    #[test]
    fn sessions_come_back_in_order_without_the_expired_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        for n in 1..=4 {
            db.save_session(&session(n, if n == 2 { 100 } else { 1_000 }))
                .unwrap();
        }
        db.delete_sessions(&[[3; 32]]).unwrap();
        drop(db);
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(
            db.load_sessions(500).unwrap(),
            [session(1, 1_000), session(4, 1_000)]
        );
        // The expired one is gone from the file too.
        assert_eq!(db.load_sessions(0).unwrap().len(), 2);
        // Only hashes are stored: no column holds a token.
        let columns: Vec<String> = db
            .with(|c| {
                let mut info = c.prepare("SELECT name FROM pragma_table_info('sessions')")?;
                let names = info
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(names)
            })
            .unwrap();
        assert_eq!(
            columns,
            [
                "seq",
                "hash",
                "user",
                "roles",
                "method",
                "expires_ns",
                "partial",
                "grant_hash"
            ]
        );
    }
}
