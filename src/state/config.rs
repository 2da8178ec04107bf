//! The configuration document, when every node shares it through the state database: a list
//! of versions, the newest live. A write names the version it was made from, so two writes
//! made from the same version cannot both land: the second one learns it lost
//! ([`Stored::Conflict`]). Only a shared state keeps it; one node's configuration is its
//! file.

use super::{StateDb, StateError};

/// One stored version of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    /// 1 for the first, one more for each change.
    pub version: i64,
    /// The configuration as TOML (every node's shared part; no `listeners`, no `state`).
    pub document: String,
    /// The node that stored it.
    pub node: String,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored as this version, and announced.
    Done(i64),
    /// Another write made from the same version landed first.
    Conflict,
}

/// Where a shared configuration lives. Every call blocks.
pub trait ConfigState {
    /// The newest version, if any was stored.
    fn latest_config(&self) -> Result<Option<StoredConfig>, StateError>;
    /// Stores `document` as version `from + 1` (`from`: the version it was made from, 0 for
    /// the first) and announces it to every node.
    fn store_config(&self, from: i64, document: &str) -> Result<Stored, StateError>;
}

impl ConfigState for StateDb {
    fn latest_config(&self) -> Result<Option<StoredConfig>, StateError> {
        match self.postgres() {
            Some(pg) => pg.latest_config(),
            None => Err(not_shared()),
        }
    }

    fn store_config(&self, from: i64, document: &str) -> Result<Stored, StateError> {
        match self.postgres() {
            Some(pg) => pg.store_config(from, document),
            None => Err(not_shared()),
        }
    }
}

fn not_shared() -> StateError {
    StateError::Unsupported(
        "the state is not shared ([state] backend = \"sqlite\"): the configuration is the file",
    )
}
