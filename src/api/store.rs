//! The live configuration: read without locks, changed by one writer at a time, persisted
//! atomically before the change is visible.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use portcullis_config::{Config, ConfigError};

use super::error::ApiError;
use crate::engine::{Engine, EngineError};

/// A configuration and the engine built from it.
#[derive(Debug)]
pub struct Live {
    /// The configuration as last saved.
    pub config: Config,
    /// The engine for it.
    pub engine: Engine,
}

/// The configuration file and the live configuration.
#[derive(Debug)]
pub struct ConfigStore {
    path: PathBuf,
    live: ArcSwap<Live>,
    /// Held across validate + save + swap, so concurrent writers never lose a change.
    writer: tokio::sync::Mutex<()>,
}

impl ConfigStore {
    /// Starts from `config`, saved at `path` on the first change.
    pub fn new(path: PathBuf, config: Config) -> Result<ConfigStore, EngineError> {
        let engine = Engine::new(&config)?;
        Ok(ConfigStore {
            path,
            live: ArcSwap::from_pointee(Live { config, engine }),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// The live configuration and engine.
    pub fn current(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Applies `change` to a copy of the configuration; if the result validates, saves it
    /// (temp file, fsync, rename) and makes it live. On any error nothing changes.
    pub async fn update<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut Config) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _writer = self.writer.lock().await;
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
                return Err(ApiError::invalid_fields("Invalid argument.", fields));
            }
            Err(e) => return Err(ApiError::internal("validate", e)),
        }
        let path = self.path.clone();
        // Saving fsyncs and building the engine runs argon2: both off the async workers.
        let live = tokio::task::spawn_blocking(move || {
            portcullis_config::save(&config, &path)
                .map_err(|e| ApiError::internal("save configuration", e))?;
            let engine = Engine::new(&config).map_err(|e| ApiError::internal("build engine", e))?;
            Ok::<Live, ApiError>(Live { config, engine })
        })
        .await
        .map_err(|e| ApiError::internal("configuration writer", e))??;
        self.live.store(Arc::new(live));
        Ok(value)
    }
}
