//! The state on PostgreSQL (`[state] backend = "postgresql"`), shared by every node that names
//! the same database.
//!
//! The state traits block, and they are called from the blocking pool, from plain threads
//! (the audit writer) and now and then from an async task. So the driver (`tokio-postgres`
//! with a `deadpool` pool) runs on a small runtime of its own, and each call hands it a
//! future and waits for the answer on a channel: that works from any thread, where entering
//! a runtime from inside another one would not.
//!
//! The schema is a list of migrations (`migrations/postgres/`), applied at start in order,
//! once, under a session advisory lock, so two nodes starting together do not both migrate.
//! A second-factor transaction ([`MfaState`](super::mfa::MfaState)) takes a transaction-level
//! advisory lock per person it touches (and one for writes to the MFA service's
//! applications): the rules of `crate::mfa` read then write (a lockout count, a TOTP step, a
//! code), and the lock makes each person's rules as serial across nodes as SQLite makes them
//! on one, while different users' run side by side.

mod audit;
mod challenges;
pub mod config;
mod dialogues;
pub mod listen;
mod mfa;
mod sessions;
pub mod throttle;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use portcullis_config::{DatabaseUrl, State};
use tokio_postgres::types::ToSql;

use super::StateError;

/// The advisory lock (session level) held while migrating.
const MIGRATION_LOCK: i64 = 0x706f_7274_0001;

/// The schema, in order. Never edit or reorder an entry that has shipped: append a new one.
const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_schema",
    include_str!("../migrations/postgres/0001_schema.sql"),
)];

/// A parameter of a statement, owned so that it can cross to the driver's runtime.
pub(crate) type Param = Box<dyn ToSql + Send + Sync>;

/// The database: a pool of connections driven by a runtime of its own.
pub struct Pg {
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// How to connect, for the listening connection.
    driver: tokio_postgres::Config,
    /// TLS to the database, when `tls_ca` is set.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// The queue of the task that writes sessions in batches.
    session_writer: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<sessions::Pending>>,
    /// This node's name, written into audit events.
    node: String,
    /// `postgresql://user@host:port/db`, for messages (never a password).
    pub(crate) name: String,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("database", &self.name)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Dropped from anywhere, an async task included: never wait for the runtime here.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Pg {
    /// Connects as `[state]` says (the password from `password_file` or `PGPASSWORD`), checks
    /// that the database answers, and applies the migrations it lacks.
    pub fn connect(state: &State, node: &str) -> Result<Pg, StateError> {
        let url = state
            .url
            .as_deref()
            .ok_or_else(|| StateError::Postgres("state.url is not set".into()))?;
        let parsed = portcullis_config::parse_database_url(url)
            .map_err(|why| StateError::Postgres(format!("state.url {why}")))?;
        let name = format!(
            "postgresql://{}@{}:{}/{}",
            parsed.user, parsed.host, parsed.port, parsed.database
        );
        let password = password(state)?;
        let timeout = Duration::from_secs(u64::from(state.timeout));
        let config = driver_config(
            &parsed,
            password.as_deref(),
            timeout,
            state.tls_ca.is_some(),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("portcullis-pg")
            .enable_all()
            .build()
            .map_err(|e| StateError::Postgres(format!("runtime: {e}")))?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let tls = state.tls_ca.as_deref().map(tls_connector).transpose()?;
        let manager = match &tls {
            Some(tls) => Manager::from_config(config.clone(), tls.clone(), manager_config),
            None => Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(state.pool_size as usize)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| StateError::Postgres(format!("pool: {e}")))?;
        let pg = Pg {
            runtime: Some(runtime),
            pool,
            driver: config,
            tls,
            session_writer: std::sync::OnceLock::new(),
            node: node.to_owned(),
            name,
        };
        pg.migrate()?;
        Ok(pg)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The value kept under `key` in `meta`: `value` when none was, else the first one kept.
    pub(crate) fn keep_meta(&self, key: &str, value: &str) -> Result<String, StateError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.run(move |client| async move {
            client
                .execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                    &[&key, &value],
                )
                .await?;
            Ok(client
                .query_one("SELECT value FROM meta WHERE key = $1", &[&key])
                .await?
                .try_get(0)?)
        })
    }

    /// Asks the database for nothing (`SELECT 1`): whether it answers now.
    pub fn ping(&self) -> Result<(), StateError> {
        self.run(|client| async move {
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
    }

    /// The pool now: (connections open, idle among them, callers waiting for one).
    pub fn pool_status(&self) -> (usize, usize, usize) {
        let status = self.pool.status();
        (status.size, status.available, status.waiting)
    }

    /// Runs `work` with a pooled connection on the driver's runtime and waits for it.
    pub(crate) fn run<T, F>(
        &self,
        work: impl FnOnce(Object) -> F + Send + 'static,
    ) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StateError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        self.block(async move {
            let client = pool.get().await.map_err(pool_error)?;
            work(client).await
        })
    }

    /// Runs `future` on the driver's runtime and waits for its answer, from any thread.
    fn block<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T, StateError>> + Send + 'static,
    ) -> Result<T, StateError> {
        let Some(runtime) = &self.runtime else {
            return Err(StateError::Postgres("shut down".into()));
        };
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = answer.send(future.await);
        });
        answered
            .recv()
            .map_err(|_| StateError::Postgres("the database task ended".into()))?
    }

    /// Applies the migrations the database lacks, under the migration lock.
    fn migrate(&self) -> Result<(), StateError> {
        self.run(|mut client| async move {
            client
                .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            let result = apply_migrations(&mut client).await;
            // Unlocked on every path; a connection that cannot unlock is not reused.
            if client
                .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                .await
                .is_err()
            {
                drop(Object::take(client));
            }
            result
        })
    }

    /// Runs `work` (single statements through a [`Tx`]) in one transaction that holds the
    /// per-person locks ([`Tx::hold`]): committed when it returns true, rolled back when it
    /// returns false.
    pub(crate) fn transaction(
        &self,
        work: &mut dyn FnMut(&mut Tx<'_>) -> bool,
    ) -> Result<(), StateError> {
        let client = self.run(|client| async move {
            // Durable: a TOTP step or a lockout count lost to a crash of the database could
            // let a code be used twice (the connection's default is asynchronous commit).
            client
                .batch_execute("BEGIN; SET LOCAL synchronous_commit TO on")
                .await?;
            Ok(client)
        })?;
        let mut tx = Tx {
            pg: self,
            client: Some(client),
            held: Vec::new(),
        };
        let commit = work(&mut tx);
        let Some(client) = tx.client.take() else {
            return Err(StateError::Postgres(
                "the transaction lost its connection".into(),
            ));
        };
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        self.block(async move {
            match client.batch_execute(end).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    drop(Object::take(client));
                    Err(e.into())
                }
            }
        })
    }
}

/// An open transaction: statements run one at a time on its connection.
pub(crate) struct Tx<'a> {
    pg: &'a Pg,
    /// `None` once a statement failed to come back (the connection is then dropped).
    client: Option<Object>,
    /// The advisory locks this transaction holds (until it ends).
    held: Vec<i64>,
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        // Still held here only when the transaction did not end (a rule that unwound): the
        // connection is closed, which rolls it back, rather than returned to the pool with
        // a transaction and its locks still open.
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

impl Tx<'_> {
    /// Takes the transaction-level advisory lock of `scope` (held until the transaction
    /// ends; taken once per transaction), waiting for another transaction that holds it.
    pub(crate) fn hold(&mut self, scope: &str) -> Result<(), StateError> {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(scope.as_bytes());
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        let key = i64::from_be_bytes(key);
        if self.held.contains(&key) {
            return Ok(());
        }
        self.query("SELECT pg_advisory_xact_lock($1)", params![key])?;
        self.held.push(key);
        Ok(())
    }

    /// Runs `sql` and returns its rows.
    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        params: Vec<Param>,
    ) -> Result<Vec<tokio_postgres::Row>, StateError> {
        let client = self
            .client
            .take()
            .ok_or_else(|| StateError::Postgres("the transaction lost its connection".into()))?;
        let (client, rows) = self.pg.block(async move {
            let refs = refs(&params);
            let rows = match client.prepare_cached(sql).await {
                Ok(statement) => client.query(&statement, &refs).await,
                Err(e) => Err(e),
            };
            Ok((client, rows))
        })?;
        match rows {
            Ok(rows) => {
                self.client = Some(client);
                Ok(rows)
            }
            Err(e) => {
                // A failed statement aborts the transaction: nothing more runs on it.
                drop(Object::take(client));
                Err(e.into())
            }
        }
    }

    /// Runs `sql` and returns how many rows it changed.
    pub(crate) fn execute(
        &mut self,
        sql: &'static str,
        params: Vec<Param>,
    ) -> Result<u64, StateError> {
        let client = self
            .client
            .take()
            .ok_or_else(|| StateError::Postgres("the transaction lost its connection".into()))?;
        let (client, count) = self.pg.block(async move {
            let refs = refs(&params);
            let count = match client.prepare_cached(sql).await {
                Ok(statement) => client.execute(&statement, &refs).await,
                Err(e) => Err(e),
            };
            Ok((client, count))
        })?;
        match count {
            Ok(count) => {
                self.client = Some(client);
                Ok(count)
            }
            Err(e) => {
                drop(Object::take(client));
                Err(e.into())
            }
        }
    }
}

/// `value` as a TEXT column can hold it: NUL (which PostgreSQL text cannot store, and which a
/// RADIUS User-Name or a JSON string may carry) becomes U+FFFD. Used for what is recorded or
/// counted (audit events, throttle keys, session and challenge names), so such a value is
/// still recorded instead of failing its whole batch.
pub(crate) fn text(value: &str) -> String {
    value.replace('\0', "\u{fffd}")
}

/// Makes room in a table of entries that expire (RADIUS challenges, upstream dialogues)
/// for one more: forgets those expired at `now` (`expiry` at or before it) and, when `max`
/// are kept, those closest to expiry. Runs in the caller's transaction.
pub(crate) async fn make_room(
    tx: &deadpool_postgres::Transaction<'_>,
    (table, key, expiry): (&str, &str, &str),
    now: i64,
    max: i64,
) -> Result<(), StateError> {
    tx.execute(
        &format!("DELETE FROM {table} WHERE {expiry} <= $1"),
        &[&now],
    )
    .await?;
    let count: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .try_get(0)?;
    if count >= max {
        tx.execute(
            &format!(
                "DELETE FROM {table} WHERE {key} IN \
                 (SELECT {key} FROM {table} ORDER BY {expiry} LIMIT $1)"
            ),
            &[&(count - max + 1)],
        )
        .await?;
    }
    Ok(())
}

/// The parameters as the driver takes them.
pub(crate) fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// Boxes statement parameters: `params![a, b]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        vec![$(Box::new($value) as $crate::state::postgres::Param),*]
    };
}
pub(crate) use params;

async fn apply_migrations(client: &mut Object) -> Result<(), StateError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
    let applied: i64 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let known = MIGRATIONS.len() as i64;
    if applied > known {
        return Err(StateError::Postgres(format!(
            "the database has schema version {applied}, newer than this build knows ({known}); \
             upgrade this node first"
        )));
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let version = index as i64 + 1;
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, name],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(migration = name, "state database (PostgreSQL) migrated");
    }
    Ok(())
}

/// The password: the first line of `password_file` (which must not be readable by others),
/// else `PGPASSWORD`, else none (trust or certificate authentication).
fn password(state: &State) -> Result<Option<String>, StateError> {
    if let Some(file) = &state.password_file {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(file).map_err(|e| {
            StateError::Postgres(format!("state.password_file {}: {e}", file.display()))
        })?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(StateError::Postgres(format!(
                "state.password_file {} is readable by group or others; chmod 600 it",
                file.display()
            )));
        }
        let text = std::fs::read_to_string(file).map_err(|e| {
            StateError::Postgres(format!("state.password_file {}: {e}", file.display()))
        })?;
        let line = text.lines().next().unwrap_or("").to_owned();
        return Ok(Some(line));
    }
    Ok(std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()))
}

fn driver_config(
    url: &DatabaseUrl,
    password: Option<&str>,
    timeout: Duration,
    tls: bool,
) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .user(&url.user)
        .host(&url.host)
        .port(url.port)
        .dbname(&url.database)
        .connect_timeout(timeout)
        // A database that vanishes without closing (a cut link) is noticed on an idle
        // connection too, the listening one above all.
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .application_name("portcullis")
        // A statement that waits longer than this on a lock or a slow disk fails, so a login
        // never hangs on the database. Commits do not wait for the disk, except those that
        // ask to (second factors, configuration versions): what a crash of the database can
        // lose is the last fraction of a second of sessions, throttle counts and audit
        // events, as SQLite's synchronous=NORMAL does on one node.
        .options(format!(
            "-c statement_timeout={} -c synchronous_commit=off",
            timeout.as_millis()
        ));
    if let Some(password) = password {
        config.password(password);
    }
    // A configured CA means TLS unless the URL says otherwise; without one, no TLS (the
    // configuration refuses an sslmode that asks for it).
    config.ssl_mode(match (tls, url.sslmode.as_deref()) {
        (false, _) | (true, Some("disable")) => tokio_postgres::config::SslMode::Disable,
        (true, Some("prefer")) => tokio_postgres::config::SslMode::Prefer,
        (true, _) => tokio_postgres::config::SslMode::Require,
    });
    for (key, value) in &url.options {
        match key.as_str() {
            "application_name" => {
                config.application_name(value);
            }
            "channel_binding" => {
                config.channel_binding(match value.as_str() {
                    "disable" => tokio_postgres::config::ChannelBinding::Disable,
                    "require" => tokio_postgres::config::ChannelBinding::Require,
                    _ => tokio_postgres::config::ChannelBinding::Prefer,
                });
            }
            _ => {}
        }
    }
    config
}

/// A TLS connector that trusts only the CAs of `ca` (PEM).
fn tls_connector(ca: &Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StateError> {
    let fail = |why: String| StateError::Postgres(format!("state.tls_ca {}: {why}", ca.display()));
    let pem = std::fs::read(ca).map_err(|e| fail(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    {
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(cert.map_err(|e| fail(e.to_string()))?)
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(fail("holds no certificate".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> StateError {
    metrics::counter!("portcullis_state_database_errors_total", "kind" => "connection")
        .increment(1);
    match e {
        // The server's own answer (a wrong password: 28P01) says more than the pool's.
        deadpool_postgres::PoolError::Backend(e) => match StateError::from(e) {
            StateError::Postgres(why) => StateError::Postgres(format!("no connection: {why}")),
            other => other,
        },
        other => StateError::Postgres(format!("no connection: {other}")),
    }
}

impl From<tokio_postgres::Error> for StateError {
    fn from(e: tokio_postgres::Error) -> Self {
        metrics::counter!("portcullis_state_database_errors_total", "kind" => "statement")
            .increment(1);
        // The driver's messages carry the server's error, never the password.
        StateError::Postgres(match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        })
    }
}
