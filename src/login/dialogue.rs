//! Upstream dialogues: an upstream RADIUS server answered a login with an Access-Challenge
//! (RFC 2865 §4.4), and the user's answer must go back to that server with its State.
//!
//! The door hands the user a handle of the gateway's own (a partial token on the REST API, a
//! State on the RADIUS front-end: 32 random octets, single use); the dialogue is kept under
//! the handle's SHA-256, bound to the user and to the party that may answer it (the REST API,
//! or one front-end client at one source address), for `authentication.challenge_timeout`
//! seconds (120 by default), at most [`MAX_OPEN`] at
//! once (past it the one closest to expiry makes room), and at most [`MAX_ROUNDS`] challenges
//! deep. The upstream's State never leaves the gateway.
//!
//! One node keeps its dialogues in memory: a restart ends them (the user logs in again). With
//! a state other nodes share, a RADIUS upstream's dialogue is kept there instead
//! ([`crate::state::dialogues`]), so the answer may come to any node; a TACACS+ dialogue
//! holds its open connection and stays in the memory of the node that holds it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::engine::Challenge;
use crate::state::StateDb;
use crate::state::dialogues::{DialogueState, StoredDialogue};
use crate::sync::lock;

/// Dialogues kept at once, at most.
pub const MAX_OPEN: usize = 10_000;
/// Challenges one login may go through, at most.
pub const MAX_ROUNDS: u8 = 10;
/// Octets of a handle.
pub const HANDLE_LEN: usize = 32;

/// Who may answer a dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The bearer of the partial token, on `POST /api/auth/1.0/login/mfa`.
    Rest,
    /// A RADIUS front-end client at a source address.
    Radius {
        /// The client entry's id.
        client_id: u32,
        /// The source address the challenge went to.
        source: IpAddr,
    },
}

/// A dialogue waiting for the user's answer.
#[derive(Debug, Clone)]
pub struct Dialogue {
    /// The user name as typed at the first step.
    pub user: String,
    /// Who may answer it.
    pub party: Party,
    /// The upstream challenge to answer.
    pub challenge: Challenge,
    /// How many challenges this login has had, this one included.
    pub round: u8,
    /// When it stops waiting.
    pub expires: Instant,
}

/// The dialogues waiting for answers.
#[derive(Debug, Default)]
pub struct Dialogues {
    open: Mutex<HashMap<[u8; 32], Dialogue>>,
    /// The state other nodes share, where RADIUS dialogues are kept.
    shared: Option<StateDb>,
}

impl Party {
    /// How the shared state keeps it.
    fn encode(self) -> String {
        match self {
            Party::Rest => "rest".to_owned(),
            Party::Radius { client_id, source } => format!("radius:{client_id}:{source}"),
        }
    }

    fn decode(text: &str) -> Option<Party> {
        if text == "rest" {
            return Some(Party::Rest);
        }
        let (client_id, source) = text.strip_prefix("radius:")?.split_once(':')?;
        Some(Party::Radius {
            client_id: client_id.parse().ok()?,
            source: source.parse().ok()?,
        })
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Dialogues {
    /// An empty table.
    pub fn new() -> Dialogues {
        Dialogues::default()
    }

    /// Dialogues that `db` keeps when other nodes share it (else in memory, as
    /// [`Dialogues::new`]).
    pub fn with_state(db: &StateDb) -> Dialogues {
        Dialogues {
            open: Mutex::default(),
            shared: db.is_shared().then(|| db.clone()),
        }
    }

    /// Keeps a dialogue for `user` and `party` on `challenge` (its `round`th) for `lifetime`
    /// and returns its handle, or `None` when no random handle can be drawn.
    pub fn open(
        &self,
        user: &str,
        party: Party,
        challenge: Challenge,
        round: u8,
        lifetime: Duration,
    ) -> Option<[u8; HANDLE_LEN]> {
        let mut handle = [0u8; HANDLE_LEN];
        getrandom::fill(&mut handle).ok()?;
        if let Some(db) = self.shared.as_ref().filter(|_| challenge.held.is_none()) {
            let now_ms = unix_ms();
            let stored = StoredDialogue {
                user: user.to_owned(),
                party: party.encode(),
                server: challenge.server,
                state: challenge.state,
                messages: challenge.messages,
                echo: challenge.echo,
                round,
                expires_ms: now_ms
                    .saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX)),
            };
            let max = i64::try_from(MAX_OPEN).unwrap_or(i64::MAX);
            return match db.save_dialogue(&key_of(&handle), &stored, now_ms, max) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::error!(error = %e, "upstream dialogue not kept: state database");
                    None
                }
            };
        }
        let now = Instant::now();
        let dialogue = Dialogue {
            user: user.to_string(),
            party,
            challenge,
            round,
            expires: now + lifetime,
        };
        let mut open = lock(&self.open);
        open.retain(|_, d| d.expires > now);
        if open.len() >= MAX_OPEN {
            let closest = open
                .iter()
                .min_by_key(|(_, d)| d.expires)
                .map(|(key, _)| *key);
            if let Some(key) = closest {
                open.remove(&key);
            }
        }
        open.insert(key_of(&handle), dialogue);
        Some(handle)
    }

    /// Removes and returns the live dialogue of `handle` (single use), if `party` may answer
    /// it; a dialogue offered to the wrong party is dropped too.
    pub fn take(&self, handle: &[u8], party: Party) -> Option<Dialogue> {
        let key = key_of(handle);
        let kept = lock(&self.open).remove(&key);
        let dialogue = match (kept, &self.shared) {
            (Some(dialogue), _) => dialogue,
            (None, Some(db)) => shared_dialogue(db.take_dialogue(&key))?,
            (None, None) => return None,
        };
        if dialogue.expires <= Instant::now() {
            return None;
        }
        if dialogue.party != party {
            tracing::warn!(user = %dialogue.user, "upstream challenge answered by another party");
            return None;
        }
        Some(dialogue)
    }

    /// Whether `handle` is the handle of a dialogue (live or not), without taking it.
    pub fn knows(&self, handle: &[u8]) -> bool {
        let key = key_of(handle);
        if lock(&self.open).contains_key(&key) {
            return true;
        }
        match &self.shared {
            Some(db) => db.knows_dialogue(&key).unwrap_or_else(|e| {
                tracing::error!(error = %e, "upstream dialogues: state database");
                false
            }),
            None => false,
        }
    }

    /// How many dialogues are kept.
    pub fn len(&self) -> usize {
        lock(&self.open).len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dialogue the shared state gave back, with its expiry on this node's clock; `None` when
/// there was none, or it cannot be read (logged).
fn shared_dialogue(
    taken: Result<Option<StoredDialogue>, crate::state::StateError>,
) -> Option<Dialogue> {
    let stored = match taken {
        Ok(stored) => stored?,
        Err(e) => {
            tracing::error!(error = %e, "upstream dialogues: state database");
            return None;
        }
    };
    let left = u64::try_from(stored.expires_ms.saturating_sub(unix_ms())).unwrap_or(0);
    let Some(party) = Party::decode(&stored.party) else {
        tracing::error!(
            party = stored.party,
            "upstream dialogue with an unreadable party"
        );
        return None;
    };
    Some(Dialogue {
        user: stored.user,
        party,
        challenge: Challenge {
            server: stored.server,
            state: stored.state,
            messages: stored.messages,
            echo: stored.echo,
            held: None,
        },
        round: stored.round,
        expires: Instant::now() + Duration::from_millis(left),
    })
}

fn key_of(handle: &[u8]) -> [u8; 32] {
    Sha256::digest(handle).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn challenge() -> Challenge {
        Challenge {
            server: "192.0.2.1:1812".into(),
            state: b"upstream".to_vec(),
            messages: vec!["Enter your token code".into()],
            echo: false,
            held: None,
        }
    }

    #[test]
    fn a_dialogue_is_answered_once_by_its_party_only() {
        let dialogues = Dialogues::new();
        let nas = Party::Radius {
            client_id: 1,
            source: "192.0.2.9".parse().unwrap(),
        };
        let handle = dialogues
            .open("alice", nas, challenge(), 1, MINUTE)
            .unwrap();
        assert!(dialogues.knows(&handle));
        let taken = dialogues.take(&handle, nas).unwrap();
        assert_eq!(taken.user, "alice");
        assert_eq!(taken.challenge.state, b"upstream");
        assert!(dialogues.take(&handle, nas).is_none(), "single use");

        let handle = dialogues
            .open("alice", nas, challenge(), 1, MINUTE)
            .unwrap();
        let elsewhere = Party::Radius {
            client_id: 1,
            source: "192.0.2.10".parse().unwrap(),
        };
        assert!(dialogues.take(&handle, elsewhere).is_none());
        assert!(
            dialogues.take(&handle, nas).is_none(),
            "a wrong party burns it"
        );
        assert!(dialogues.take(b"unknown", Party::Rest).is_none());
        assert!(dialogues.is_empty());
    }

    #[test]
    fn parties_round_trip() {
        for party in [
            Party::Rest,
            Party::Radius {
                client_id: 7,
                source: "2001:db8::1".parse().unwrap(),
            },
            Party::Radius {
                client_id: 1,
                source: "192.0.2.9".parse().unwrap(),
            },
        ] {
            assert_eq!(Party::decode(&party.encode()), Some(party));
        }
        assert_eq!(Party::decode("radius:x:1.2.3.4"), None);
        assert_eq!(Party::decode("other"), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let dialogues = Dialogues::new();
        for _ in 0..MAX_OPEN {
            dialogues
                .open("u", Party::Rest, challenge(), 1, MINUTE)
                .unwrap();
        }
        let last = dialogues
            .open("u", Party::Rest, challenge(), 1, MINUTE)
            .unwrap();
        assert_eq!(dialogues.len(), MAX_OPEN);
        assert!(dialogues.knows(&last), "the newest is kept");
    }
}
