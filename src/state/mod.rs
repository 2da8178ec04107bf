//! Runtime state that changes per login: one SQLite database (WAL) under the state directory.
//!
//! The configuration file holds what an administrator decides; this database holds what the
//! daemon learns while it runs (MFA enrolments, pending codes, failure counters, the audit log).
//! Its schema is a list of migrations applied in order at open; `PRAGMA user_version` records
//! how many have run, so each one runs exactly once, inside a transaction.
//!
//! Everything else reaches it through the traits of [`Backend`], whose calls block: call them
//! from `tokio::task::spawn_blocking` ([`StateDb::call`], [`StateDb::mfa`] do that). SQL lives
//! in this module only.

pub mod audit;
pub mod challenges;
pub mod config;
pub mod dialogues;
pub mod mfa;
pub mod postgres;
pub mod sessions;
pub mod throttle;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use portcullis_config::UserKey;
use rusqlite::Connection;

/// The file name of the database under the state directory.
pub const FILE_NAME: &str = "portcullis.db";

/// The schema, in order. Never edit or reorder an entry that has shipped: append a new one.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_meta", include_str!("migrations/0001_meta.sql")),
    ("0002_audit", include_str!("migrations/0002_audit.sql")),
    (
        "0003_mfa_service",
        include_str!("migrations/0003_mfa_service.sql"),
    ),
    (
        "0004_mfa_devices",
        include_str!("migrations/0004_mfa_devices.sql"),
    ),
    (
        "0005_throttle",
        include_str!("migrations/0005_throttle.sql"),
    ),
    (
        "0006_canonical_users",
        include_str!("migrations/0006_canonical_users.sql"),
    ),
    (
        "0007_sessions",
        include_str!("migrations/0007_sessions.sql"),
    ),
    (
        "0008_audit_node",
        include_str!("migrations/0008_audit_node.sql"),
    ),
];

/// What the daemon keeps between requests, as one interface: each concern is a trait of
/// blocking calls with no SQLite type in its signature, so that another backend is an added
/// implementation. [`StateDb`] (SQLite) implements it.
///
/// Sessions, RADIUS challenges, the throttle's counts and the audit log are one transaction
/// per call. The second-factor data (devices and replay steps, lockouts, the MFA service) is
/// reached through [`mfa::MfaState::mfa_transaction`]: the rules in `crate::mfa` run a
/// sequence of single-statement calls ([`mfa::MfaTx`]) that the transaction makes atomic.
pub trait Backend:
    sessions::SessionState
    + challenges::ChallengeState
    + throttle::ThrottleState
    + audit::AuditState
    + mfa::MfaState
    + Send
    + Sync
{
}

impl Backend for StateDb {}

/// Why the state database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite refused an operation.
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer portcullis.
    #[error(
        "state database {path} has schema version {found}, newer than this build knows ({known}); refusing to downgrade it"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` in the file.
        found: usize,
        /// The number of migrations this build has.
        known: usize,
    },
    /// PostgreSQL refused an operation or cannot be reached.
    #[error("state database (PostgreSQL): {0}")]
    Postgres(String),
    /// The operation needs the other backend (a SQLite-only tool on PostgreSQL).
    #[error("state database: {0}")]
    Unsupported(&'static str),
    /// The blocking task that ran the query panicked or was cancelled.
    #[error("state database task failed: {0}")]
    Task(String),
    /// The state directory could not be created.
    #[error("state directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The engine behind a [`StateDb`].
#[derive(Debug)]
enum Engine {
    /// One connection: SQLite serialises writers anyway, and the queries are short.
    Sqlite(Mutex<Connection>),
    /// A pool of connections to a database other nodes share.
    Postgres(Box<postgres::Pg>),
}

impl StateError {
    /// Whether the error says the database cannot be reached now (a shared database
    /// restarting, a cut link): a caller answers "unavailable", and trying later may work.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StateError::Postgres(_))
    }
}

/// The open state database, shared by every part of the daemon.
#[derive(Debug, Clone)]
pub struct StateDb {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    /// Where it lives (`:memory:` for [`StateDb::in_memory`], the URL without a password for
    /// PostgreSQL).
    path: PathBuf,
    /// This node's name, written into audit events.
    node: String,
    /// Whether the database answered the last look ([`StateDb::check_reachable`]).
    reachable: std::sync::atomic::AtomicBool,
    /// What a module reads from this database once and keeps in memory from then on (the
    /// brute-force throttle's counts), made on first use.
    memo: std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>,
}

impl StateDb {
    /// Opens (creating when missing) `state_dir/portcullis.db`, mode 0600 in a 0700
    /// directory, in WAL mode, and applies the migrations it lacks.
    pub fn open(state_dir: &Path) -> Result<Self, StateError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|source| StateError::Directory {
                path: state_dir.to_path_buf(),
                source,
            })?;
        let path = state_dir.join(FILE_NAME);
        if !path.exists() {
            // Create it private before SQLite opens it, so it is never readable by others.
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|source| StateError::Directory {
                    path: path.clone(),
                    source,
                })?;
        }
        let connection = Connection::open(&path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        Self::from_connection(connection, path)
    }

    /// A private database in memory, for tests and for tools that keep no state.
    pub fn in_memory() -> Result<Self, StateError> {
        Self::from_connection(Connection::open_in_memory()?, PathBuf::from(":memory:"))
    }

    fn from_connection(mut connection: Connection, path: PathBuf) -> Result<Self, StateError> {
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        register_functions(&connection)?;
        migrate(&mut connection, &path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine: Engine::Sqlite(Mutex::new(connection)),
                path,
                node: node_name(None),
                reachable: std::sync::atomic::AtomicBool::new(true),
                memo: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Opens the state `[state]` names: the SQLite file under `state_dir`, or the PostgreSQL
    /// database of `url` (migrated as needed). `node` names this node in audit events.
    pub fn open_configured(
        state: &portcullis_config::State,
        state_dir: &Path,
    ) -> Result<Self, StateError> {
        let node = node_name(state.node.as_deref());
        if !state.is_shared() {
            let mut db = Self::open(state_dir)?;
            if let Some(inner) = Arc::get_mut(&mut db.inner) {
                inner.node = node;
            }
            return Ok(db);
        }
        let pg = postgres::Pg::connect(state, &node)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: PathBuf::from(&pg.name),
                engine: Engine::Postgres(Box::new(pg)),
                node,
                reachable: std::sync::atomic::AtomicBool::new(true),
                memo: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The PostgreSQL database, when the state is shared.
    pub(crate) fn postgres(&self) -> Option<&postgres::Pg> {
        match &self.inner.engine {
            Engine::Postgres(pg) => Some(pg),
            Engine::Sqlite(_) => None,
        }
    }

    /// Listens for what other nodes announce, each channel to its handler (call once, with
    /// all of them). A database of one node announces nothing: then it does nothing.
    pub fn listen(&self, subscribers: Vec<(&'static str, postgres::listen::Handler)>) {
        if let Some(pg) = self.postgres() {
            pg.listen(subscribers);
        }
    }

    /// Looks whether the database answers now, keeps the answer for
    /// [`StateDb::is_reachable`] and the metrics (`portcullis_state_database_up`, the pool's
    /// gauges), and returns whether it changed. A SQLite file is always reachable. It blocks.
    pub fn check_reachable(&self) -> bool {
        let Some(pg) = self.postgres() else {
            return false;
        };
        let up = match pg.ping() {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "state database ping");
                false
            }
        };
        let (size, idle, waiting) = pg.pool_status();
        metrics::gauge!("portcullis_state_database_up").set(f64::from(u8::from(up)));
        metrics::gauge!("portcullis_state_pool_connections").set(size as f64);
        metrics::gauge!("portcullis_state_pool_idle").set(idle as f64);
        metrics::gauge!("portcullis_state_pool_waiting").set(waiting as f64);
        let before = self
            .inner
            .reachable
            .swap(up, std::sync::atomic::Ordering::AcqRel);
        before != up
    }

    /// Whether the database answered the last look (always for SQLite).
    pub fn is_reachable(&self) -> bool {
        self.inner
            .reachable
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether other nodes share this state (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.postgres().is_some()
    }

    /// The value kept under `key` in the database's `meta` table: `value` if none was kept
    /// yet (then it is kept), else the one kept first. Nodes sharing one database agree on a
    /// fact this way (the MFA key's fingerprint).
    pub fn keep_meta(&self, key: &str, value: &str) -> Result<String, StateError> {
        if let Some(pg) = self.postgres() {
            return pg.keep_meta(key, value);
        }
        self.with(|conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                [key, value],
            )?;
            Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?)
        })
    }

    /// This node's name, as audit events record it.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with the connection, on this thread: for the SQLite implementation of the
    /// state traits, and for tests that look at the tables. It blocks.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        match &self.inner.engine {
            Engine::Sqlite(connection) => {
                // A panic while holding the lock leaves a connection that is still consistent
                // (every write is a transaction SQLite rolls back), so a poisoned lock is
                // taken over.
                let mut connection = connection
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                f(&mut connection)
            }
            Engine::Postgres(_) => Err(StateError::Unsupported(
                "this operation reads the SQLite file, and the state is on PostgreSQL",
            )),
        }
    }

    /// Runs `f` with this database on tokio's blocking pool (for the state traits, such as
    /// [`challenges::ChallengeState`]).
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StateDb) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, StateError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StateError::Task(e.to_string()))?
    }

    /// The in-memory copy of what this database holds that one module keeps (the throttle's
    /// counts), made by `init` on first use; `None` if the copy kept is of another type.
    pub fn memo<T: std::any::Any + Send + Sync>(
        &self,
        init: impl FnOnce(&StateDb) -> T,
    ) -> Option<&T> {
        self.inner
            .memo
            .get_or_init(|| Box::new(init(self)))
            .downcast_ref()
    }
}

/// `configured`, else the host name (`/proc/sys/kernel/hostname`), else `localhost`.
fn node_name(configured: Option<&str>) -> String {
    if let Some(name) = configured {
        return name.to_owned();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// SQL functions of ours: `canonical_user(name)`, the [`UserKey`] of a name, for migrations
/// that rekey per-user rows.
fn register_functions(connection: &Connection) -> Result<(), StateError> {
    use rusqlite::functions::FunctionFlags;
    connection.create_scalar_function(
        "canonical_user",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |context| {
            let name: String = context.get(0)?;
            Ok(UserKey::of(&name).as_str().to_owned())
        },
    )?;
    Ok(())
}

/// Applies the migrations `connection` has not run yet, each in its own transaction.
fn migrate(connection: &mut Connection, path: &Path) -> Result<(), StateError> {
    let applied: usize =
        connection.pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))? as usize;
    if applied > MIGRATIONS.len() {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found: applied,
            known: MIGRATIONS.len(),
        });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = connection.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
        tracing::debug!(migration = name, "state database migrated");
    }
    Ok(())
}

/// Seconds since the Unix epoch, the time unit of every timestamp column.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(db: &StateDb) -> i64 {
        db.with(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .unwrap()
    }

    #[test]
    fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(version(&db), MIGRATIONS.len() as i64);
        let mode: String = db
            .with(|c| Ok(c.pragma_query_value(None, "journal_mode", |r| r.get(0))?))
            .unwrap();
        assert_eq!(mode, "wal");
        db.with(|c| {
            c.execute("INSERT INTO meta (key, value) VALUES ('probe', 'kept')", [])?;
            Ok(())
        })
        .unwrap();
        drop(db);
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(version(&db), MIGRATIONS.len() as i64);
        let value: String = db
            .with(|c| {
                Ok(
                    c.query_row("SELECT value FROM meta WHERE key = 'probe'", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .unwrap();
        assert_eq!(value, "kept");
    }

    #[test]
    fn file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let db = StateDb::open(&state).unwrap();
        let mode = std::fs::metadata(db.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        drop(StateDb::open(dir.path()).unwrap());
        let connection = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        connection
            .pragma_update(None, "user_version", (MIGRATIONS.len() + 1) as i64)
            .unwrap();
        drop(connection);
        let error = StateDb::open(dir.path()).unwrap_err();
        assert!(matches!(error, StateError::TooNew { .. }), "{error}");
    }

    #[test]
    fn rows_of_name_variants_are_rekeyed_to_one_canonical_user() {
        let dir = tempfile::tempdir().unwrap();
        {
            let connection = Connection::open(dir.path().join(FILE_NAME)).unwrap();
            for (_, sql) in &MIGRATIONS[..5] {
                connection.execute_batch(sql).unwrap();
            }
            connection.pragma_update(None, "user_version", 5).unwrap();
            connection
                .execute_batch(
                    "INSERT INTO mfa_devices (id, user, name, os, secret, created, updated, activated) \
                         VALUES ('d1', 'Alice', 'phone', 'iOS', x'00', 1, 1, 1);
                     INSERT INTO mfa_failures VALUES ('ALICE', 3, 1, 500), ('alice', 7, 0, 100);
                     INSERT INTO throttle VALUES ('user:remote:\u{ff41}lice', 4, 0, 9),
                         ('user:remote:alice', 2, 50, 8), ('source:192.0.2.1', 1, 0, 7);
                     INSERT INTO mfa_applications VALUES ('app', 'gateway', '', 6, 'NUMERIC', 300, \
                         '', 'SMS', '', '', '', '', 1, 1, 1);
                     INSERT INTO mfa_users (application_id, id, user_address, status, created, \
                         updated, version_number) VALUES ('app', ' Alice', '+15550100', 'VALIDATED', 1, 1, 1);
                     INSERT INTO audit_events (at, kind, user, source, action, result, latency_ms) \
                         VALUES (1, 'login', 'ALICE', '-', '-', 'accept', 0);",
                )
                .unwrap();
        }
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(version(&db), MIGRATIONS.len() as i64);
        db.with(|c| {
            let user: String = c.query_row("SELECT user FROM mfa_devices", [], |r| r.get(0))?;
            assert_eq!(user, "alice");
            let failures: (String, i64, i64, i64) = c.query_row(
                "SELECT user, failures, lockouts, locked_until FROM mfa_failures",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            assert_eq!(failures, ("alice".into(), 7, 1, 500));
            let mut keys =
                c.prepare("SELECT key, failures, locked_until FROM throttle ORDER BY key")?;
            let keys: Vec<(String, i64, i64)> = keys
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            assert_eq!(
                keys,
                [
                    ("source:192.0.2.1".into(), 1, 0),
                    ("user:remote:alice".into(), 4, 50)
                ]
            );
            let (id, key): (String, String) =
                c.query_row("SELECT id, user_key FROM mfa_users", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            assert_eq!((id.as_str(), key.as_str()), (" Alice", "alice"));
            let (user, key): (String, String) =
                c.query_row("SELECT user, user_key FROM audit_events", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            assert_eq!((user.as_str(), key.as_str()), ("ALICE", "alice"));
            Ok(())
        })
        .unwrap();
    }

    #[tokio::test]
    async fn runs_on_the_blocking_pool() {
        let db = StateDb::in_memory().unwrap();
        let n: i64 = db
            .call(|db| db.with(|c| Ok(c.query_row("SELECT count(*) FROM meta", [], |r| r.get(0))?)))
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
