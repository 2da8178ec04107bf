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

/// Why the store refused or failed a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The changed configuration does not validate: each broken rule as (field path, why).
    #[error("invalid configuration: {}", describe_fields(.0))]
    Invalid(Vec<(String, String)>),
    /// Building the engine, saving the file or the writer task failed: (what, why).
    #[error("{0}: {1}")]
    Failed(&'static str, String),
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
        matches!(self, StoreError::Invalid(_))
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
            writer: Arc::new(tokio::sync::Mutex::new(())),
        })
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
            portcullis_config::save(&config, &path)
                .map_err(|e| StoreError::Failed("save configuration", e.to_string()))?;
            install(&live, &watchers, config, engine);
            drop(writer);
            Ok::<(), StoreError>(())
        })
        .await
        .map_err(|e| StoreError::Failed("configuration writer", e.to_string()))??;
        Ok(value)
    }
}
