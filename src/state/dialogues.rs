//! Upstream dialogues (`crate::login::dialogue`) that every node can answer: with a shared
//! state, a RADIUS upstream's Access-Challenge relayed by one node is kept here, so the
//! user's answer may arrive at any node. Kept by the SHA-256 of the gateway's handle (never
//! the handle). A TACACS+ dialogue holds an open connection to its server and stays on the
//! node that holds it. Only a shared state keeps them; one node keeps them in memory.

use super::{StateDb, StateError};

/// A dialogue as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDialogue {
    /// The user name as typed at the first step.
    pub user: String,
    /// Who may answer it: `rest`, or `radius:<client id>:<source address>`.
    pub party: String,
    /// The upstream server (`address:port`) the answer goes to.
    pub server: String,
    /// The upstream's State.
    pub state: Vec<u8>,
    /// What to show the user.
    pub messages: Vec<String>,
    /// Whether the answer may be echoed.
    pub echo: bool,
    /// How many challenges this login has had.
    pub round: u8,
    /// When it stops waiting, in Unix milliseconds.
    pub expires_ms: i64,
}

/// Where shared dialogues wait. Every call blocks; each is one transaction.
pub trait DialogueState {
    /// Keeps `dialogue` under `hash`, after forgetting those expired at `now_ms` and, when
    /// `max` are kept, those closest to expiry.
    fn save_dialogue(
        &self,
        hash: &[u8; 32],
        dialogue: &StoredDialogue,
        now_ms: i64,
        max: i64,
    ) -> Result<(), StateError>;
    /// Removes and returns the dialogue of `hash` (single use), expired or not.
    fn take_dialogue(&self, hash: &[u8; 32]) -> Result<Option<StoredDialogue>, StateError>;
    /// Whether a dialogue of `hash` is kept.
    fn knows_dialogue(&self, hash: &[u8; 32]) -> Result<bool, StateError>;
}

impl DialogueState for StateDb {
    fn save_dialogue(
        &self,
        hash: &[u8; 32],
        dialogue: &StoredDialogue,
        now_ms: i64,
        max: i64,
    ) -> Result<(), StateError> {
        match self.postgres() {
            Some(pg) => pg.save_dialogue(hash, dialogue, now_ms, max),
            None => Err(not_shared()),
        }
    }

    fn take_dialogue(&self, hash: &[u8; 32]) -> Result<Option<StoredDialogue>, StateError> {
        match self.postgres() {
            Some(pg) => pg.take_dialogue(hash),
            None => Err(not_shared()),
        }
    }

    fn knows_dialogue(&self, hash: &[u8; 32]) -> Result<bool, StateError> {
        match self.postgres() {
            Some(pg) => pg.knows_dialogue(hash),
            None => Err(not_shared()),
        }
    }
}

fn not_shared() -> StateError {
    StateError::Unsupported("one node keeps its upstream dialogues in memory")
}
