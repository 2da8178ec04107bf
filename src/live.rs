//! The live configuration: read without locks, changed by one writer at a time, persisted
//! atomically before the change is visible. Every change that goes live (an API write, a
//! reload of the file) passes [`install`], which tells the watchers registered with
//! [`ConfigStore::on_change`]: rules that must follow every change (ending the sessions of
//! changed local users) live there, not in each caller.
//!
//! This module speaks no HTTP: a change's own errors are the caller's type `E`, and what the
//! store itself refuses ([`StoreError`]) converts into it (`impl From<StoreError> for ApiError`
//! at the REST edge).

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use portcullis_config::{Config, ConfigError};

use crate::audit::Refusal;
use crate::engine::{Engine, EngineError, Memory};
use crate::state::StateDb;
use crate::state::config::{ConfigState, Stored};

/// Why the store refused or failed a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The changed configuration does not validate: each broken rule as (field path, why).
    #[error("invalid configuration: {}", describe_fields(.0))]
    Invalid(Vec<(String, String)>),
    /// Building the engine, saving the file or the writer task failed: (what, why).
    #[error("{0}: {1}")]
    Failed(&'static str, String),
    /// Another node changed the shared configuration while this change was made from the
    /// version before: nothing was stored; read again and redo the change.
    #[error("the configuration was changed meanwhile (now version {0}); nothing was stored")]
    Conflict(i64),
    /// The shared configuration cannot be written now (the state database does not answer).
    #[error("the configuration cannot be changed now: {0}")]
    Unavailable(String),
}

fn describe_fields(fields: &[(String, String)]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(f, why)| format!("{f}: {why}"))
        .collect();
    fields.join("; ")
}

impl Refusal for StoreError {
    fn refused(&self) -> bool {
        matches!(self, StoreError::Invalid(_) | StoreError::Conflict(_))
    }

    fn describe(&self) -> String {
        self.to_string()
    }
}

/// A configuration and the engine built from it.
#[derive(Debug)]
pub struct Live {
    /// The configuration as last saved.
    pub config: Config,
    /// The engine for it.
    pub engine: Engine,
}

/// Called with the old and the new configuration each time a change goes live.
pub type Watcher = Box<dyn Fn(&Config, &Config) + Send + Sync>;

/// The configuration file and the live configuration.
pub struct ConfigStore {
    path: PathBuf,
    live: Arc<ArcSwap<Live>>,
    /// What the engines learn about upstream servers, handed from each engine to the next.
    memory: Memory,
    /// Rules that follow every change, whoever made it (API write, reload).
    watchers: Arc<std::sync::RwLock<Vec<Watcher>>>,
    /// Checks a change must pass before it is saved, beyond validation: what only reading
    /// files finds (the front-end's TLS files).
    checks: Arc<std::sync::RwLock<Vec<Check>>>,
    /// With a state database other nodes share: the configuration lives there.
    shared: Option<Arc<Shared>>,
    /// Held from reading the configuration to the swap, so concurrent writers never lose a
    /// change. The blocking task that saves owns it: a request dropped while its save runs
    /// still finishes save and swap before the next writer starts.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for ConfigStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigStore")
            .field("path", &self.path)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

/// The configuration in a shared state database: every node's shared part there, versioned;
/// this node's own `listeners` and `state` from its file.
#[derive(Debug)]
struct Shared {
    db: StateDb,
    /// The node's file: where `listeners` and `state` come from.
    local: Config,
    /// The version live on this node.
    version: std::sync::atomic::AtomicI64,
}

impl Shared {
    /// The newest stored version, on this node (its own listeners and state), parsed and
    /// validated; `None` when none is stored.
    fn fetch(&self) -> Result<Option<(i64, Config)>, StoreError> {
        let stored = self
            .db
            .latest_config()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let shared = Config::from_toml(&stored.document)
            .map_err(|e| StoreError::Failed("read the shared configuration", e.to_string()))?;
        let config = shared.config.with_local(&self.local);
        config
            .validate()
            .map_err(|e| StoreError::Failed("validate the shared configuration", e.to_string()))?;
        Ok(Some((stored.version, config)))
    }

    /// Stores `config`'s shared part as the version after `from`.
    fn store(&self, from: i64, config: &Config) -> Result<i64, StoreError> {
        let document = config
            .shared_part()
            .to_toml()
            .map_err(|e| StoreError::Failed("write the configuration", e.to_string()))?;
        match self.db.store_config(from, &document) {
            Ok(Stored::Done(version)) => Ok(version),
            Ok(Stored::Conflict) => {
                let newest = self
                    .db
                    .latest_config()
                    .ok()
                    .flatten()
                    .map_or(from, |c| c.version);
                Err(StoreError::Conflict(newest))
            }
            Err(e) => Err(StoreError::Unavailable(e.to_string())),
        }
    }

    fn live_version(&self) -> i64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// A check of [`ConfigStore::check_with`].
type Check = Box<dyn Fn(&Config) -> Result<(), (String, String)> + Send + Sync>;

/// Runs every check on `config`; the first error.
fn run_checks(
    checks: &std::sync::RwLock<Vec<Check>>,
    config: &Config,
) -> Result<(), (String, String)> {
    let checks = checks
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    checks.iter().try_for_each(|check| check(config))
}

/// Makes `config` live with `engine`, then tells every watcher: the one place a configuration
/// change takes effect.
fn install(
    live: &ArcSwap<Live>,
    watchers: &std::sync::RwLock<Vec<Watcher>>,
    config: Config,
    engine: Engine,
) {
    let old = live.swap(Arc::new(Live { config, engine }));
    let new = live.load();
    let watchers = watchers
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for watcher in watchers.iter() {
        watcher(&old.config, &new.config);
    }
}

impl ConfigStore {
    /// Starts from `config`, saved at `path` on the first change. Temp files an interrupted
    /// save left beside `path` are removed (they hold secrets).
    pub fn new(path: PathBuf, config: Config) -> Result<ConfigStore, EngineError> {
        match portcullis_config::remove_leftovers(&path) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(removed = n, "removed temp files of an interrupted save"),
            Err(e) => tracing::warn!(error = %e, "cannot remove temp files of an interrupted save"),
        }
        let memory = Memory::default();
        let engine = Engine::build(&config, &memory)?;
        Ok(ConfigStore {
            path,
            live: Arc::new(ArcSwap::from_pointee(Live { config, engine })),
            memory,
            watchers: Arc::default(),
            checks: Arc::default(),
            shared: None,
            writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Starts from the configuration shared in `db` (other nodes' too), on this node's file
    /// `local` (its listeners and state). When none is stored yet, `local`'s shared part
    /// becomes the first version. It blocks.
    pub fn new_shared(path: PathBuf, local: Config, db: StateDb) -> Result<ConfigStore, String> {
        let shared = Shared {
            db,
            local,
            version: std::sync::atomic::AtomicI64::new(0),
        };
        let (version, config) = match shared.fetch().map_err(|e| e.to_string())? {
            Some(found) => {
                if shared.local.shared_part() != Config::default().shared_part()
                    && shared.local.shared_part() != found.1.shared_part()
                {
                    tracing::warn!(
                        "the configuration lives in the state database: the file's sections \
                         other than [listeners] and [state] are ignored (portcullis config \
                         import puts a file into the database)"
                    );
                }
                found
            }
            None => {
                // The first node seeds it; two first nodes at once: one wins, the other reads.
                match shared.store(0, &shared.local) {
                    Ok(version) => {
                        tracing::info!(version, "configuration stored in the state database");
                        (version, shared.local.clone())
                    }
                    Err(StoreError::Conflict(_)) => shared
                        .fetch()
                        .map_err(|e| e.to_string())?
                        .ok_or("the shared configuration vanished")?,
                    Err(e) => return Err(e.to_string()),
                }
            }
        };
        shared
            .version
            .store(version, std::sync::atomic::Ordering::Release);
        let mut store = ConfigStore::new(path, config).map_err(|e| e.to_string())?;
        store.shared = Some(Arc::new(shared));
        Ok(store)
    }

    /// The version of the shared configuration live on this node (`None`: the configuration
    /// is the file).
    pub fn shared_version(&self) -> Option<i64> {
        self.shared.as_ref().map(|s| s.live_version())
    }

    /// Makes the newest shared version live if it is newer than the live one (another node
    /// stored it): called when a new version is announced, and when announcements start
    /// again after a break. Returns the version live now.
    pub async fn follow(&self) -> Result<Option<i64>, StoreError> {
        let Some(shared) = self.shared.clone() else {
            return Ok(None);
        };
        let writer = Arc::clone(&self.writer).lock_owned().await;
        let live = Arc::clone(&self.live);
        let (memory, watchers) = (self.memory.clone(), Arc::clone(&self.watchers));
        let checks = Arc::clone(&self.checks);
        tokio::task::spawn_blocking(move || {
            let version = catch_up(&shared, &live, &memory, &watchers, &checks)?;
            drop(writer);
            Ok(Some(version))
        })
        .await
        .map_err(|e| StoreError::Failed("configuration writer", e.to_string()))?
    }

    /// Runs `watcher` with the old and the new configuration after every change that goes
    /// live, whoever made it.
    pub fn on_change(&self, watcher: impl Fn(&Config, &Config) + Send + Sync + 'static) {
        self.watchers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(watcher));
    }

    /// Runs `check` on every change before it is saved (and on every reload); an error, the
    /// configuration path and what is wrong, refuses the change.
    pub fn check_with(
        &self,
        check: impl Fn(&Config) -> Result<(), (String, String)> + Send + Sync + 'static,
    ) {
        self.checks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(check));
    }

    /// The live configuration and engine.
    pub fn current(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Applies `change` to a copy of the configuration; if the result validates, saves it
    /// (temp file, fsync, rename) and makes it live. On any error nothing changes. Every
    /// call is an audit event: who asked, from where, through which route, and the result.
    pub async fn change<T: Send + 'static, E: From<StoreError> + Refusal>(
        &self,
        change: impl FnOnce(&mut Config) -> Result<T, E>,
    ) -> Result<T, E> {
        let started = std::time::Instant::now();
        let result = self.apply(change).await;
        crate::audit::config_change(
            result.as_ref().map(|_| ()).map_err(|e| e as &dyn Refusal),
            started,
            ("-", "update"),
        );
        result
    }

    /// Re-reads the configuration file; when it parses and validates, makes it live (a new
    /// engine) and returns its warnings. Otherwise the running configuration stays and the
    /// error says why.
    pub async fn reload(&self) -> Result<Vec<portcullis_config::Warning>, String> {
        if self.shared.is_some() {
            // The file holds only this node's listeners and state, which need a restart;
            // the rest is read from the state database again.
            return self
                .follow()
                .await
                .map(|_| Vec::new())
                .map_err(|e| e.to_string());
        }
        let writer = Arc::clone(&self.writer).lock_owned().await;
        let path = self.path.clone();
        let live = Arc::clone(&self.live);
        let (memory, watchers) = (self.memory.clone(), Arc::clone(&self.watchers));
        let checks = Arc::clone(&self.checks);
        tokio::task::spawn_blocking(move || {
            if !path.exists() {
                return Err(format!(
                    "{} does not exist (running on the embedded default)",
                    path.display()
                ));
            }
            let loaded = portcullis_config::load(&path).map_err(|e| e.to_string())?;
            run_checks(&checks, &loaded.config).map_err(|(at, why)| format!("{at}: {why}"))?;
            let engine = Engine::build(&loaded.config, &memory).map_err(|e| e.to_string())?;
            install(&live, &watchers, loaded.config, engine);
            drop(writer);
            Ok(loaded.warnings)
        })
        .await
        .map_err(|e| format!("reload task: {e}"))?
    }

    async fn apply<T: Send + 'static, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut Config) -> Result<T, E>,
    ) -> Result<T, E> {
        let writer = Arc::clone(&self.writer).lock_owned().await;
        if let Some(shared) = self.shared.clone() {
            // Made from the newest version: what another node stored goes live here first.
            let live = Arc::clone(&self.live);
            let (memory, watchers) = (self.memory.clone(), Arc::clone(&self.watchers));
            let checks = Arc::clone(&self.checks);
            tokio::task::spawn_blocking(move || {
                catch_up(&shared, &live, &memory, &watchers, &checks)
            })
            .await
            .map_err(|e| StoreError::Failed("configuration writer", e.to_string()))??;
        }
        let mut config = self.live.load().config.clone();
        let value = change(&mut config)?;
        match config.validate() {
            Ok(warnings) => {
                for warning in warnings {
                    tracing::warn!(%warning, "configuration change accepted with a warning");
                }
            }
            Err(ConfigError::Invalid(errors)) => {
                let fields = errors.into_iter().map(|e| (e.path, e.message)).collect();
                return Err(StoreError::Invalid(fields).into());
            }
            Err(e) => return Err(StoreError::Failed("validate", e.to_string()).into()),
        }
        let path = self.path.clone();
        let live = Arc::clone(&self.live);
        let (memory, watchers) = (self.memory.clone(), Arc::clone(&self.watchers));
        let checks = Arc::clone(&self.checks);
        let shared = self.shared.clone();
        // Saving fsyncs and building the engine runs argon2: off the async workers. Engine,
        // save and swap run to completion under the writer lock even if this request is
        // dropped meanwhile, so the next writer always starts from what was saved last.
        tokio::task::spawn_blocking(move || {
            run_checks(&checks, &config).map_err(|field| StoreError::Invalid(vec![field]))?;
            let engine = Engine::build(&config, &memory).map_err(|e| match e {
                // The change names TLS files that cannot be used: the caller's to fix.
                EngineError::Tls { list, .. } => {
                    StoreError::Invalid(vec![(list.into(), e.to_string())])
                }
                e => StoreError::Failed("build engine", e.to_string()),
            })?;
            match &shared {
                Some(shared) => {
                    let version = shared.store(shared.live_version(), &config)?;
                    shared
                        .version
                        .store(version, std::sync::atomic::Ordering::Release);
                }
                None => {
                    portcullis_config::save(&config, &path)
                        .map_err(|e| StoreError::Failed("save configuration", e.to_string()))?;
                }
            }
            install(&live, &watchers, config, engine);
            drop(writer);
            Ok::<(), StoreError>(())
        })
        .await
        .map_err(|e| StoreError::Failed("configuration writer", e.to_string()))??;
        Ok(value)
    }
}

/// Makes the newest shared version live when it is newer than the live one (checks and engine
/// as for any change); returns the version live now. Runs under the writer lock; it blocks.
fn catch_up(
    shared: &Shared,
    live: &ArcSwap<Live>,
    memory: &Memory,
    watchers: &std::sync::RwLock<Vec<Watcher>>,
    checks: &std::sync::RwLock<Vec<Check>>,
) -> Result<i64, StoreError> {
    let current = shared.live_version();
    let Some((version, config)) = shared.fetch()? else {
        return Ok(current);
    };
    if version <= current {
        return Ok(current);
    }
    run_checks(checks, &config).map_err(|field| StoreError::Invalid(vec![field]))?;
    let engine = Engine::build(&config, memory)
        .map_err(|e| StoreError::Failed("build engine", e.to_string()))?;
    install(live, watchers, config, engine);
    shared
        .version
        .store(version, std::sync::atomic::Ordering::Release);
    tracing::info!(version, "shared configuration version live");
    Ok(version)
}
