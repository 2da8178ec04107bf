//! Login sessions: bearer tokens of 256 random bits, kept only as SHA-256 hashes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_config::UserKey;
use sha2::{Digest, Sha256};

/// The method name of sessions opened by the local method.
const LOCAL_METHOD: &str = "Local";

/// Sessions kept at most; past it, the one closest to expiry makes room.
const MAX_SESSIONS: usize = 100_000;

/// What a token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user who logged in, as they typed their name.
    pub user: String,
    /// Their canonical identity: the key of everything kept per user.
    pub key: UserKey,
    /// Their roles at login.
    pub roles: Vec<String>,
    /// The method that accepted them (`Local`, `RADIUS`, `TACACS+`).
    pub method: String,
    /// When the token stops working.
    pub expires: SystemTime,
    /// A partial token of a two-step login: the first factor passed, the second is owed. It
    /// opens only the MFA calls ([`Sessions::lookup_partial`]); [`Sessions::lookup`] does not
    /// see it.
    pub partial: bool,
}

/// How long a partial token lives: five minutes to give the second factor.
pub const PARTIAL_LIFETIME: Duration = Duration::from_secs(300);

/// The session table.
#[derive(Debug, Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// An empty table.
    pub fn new() -> Sessions {
        Sessions::default()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session valid for `lifetime` and returns its token (43 URL-safe characters)
    /// and expiry.
    pub fn create(
        &self,
        user: &str,
        roles: Vec<String>,
        method: &str,
        lifetime: Duration,
    ) -> Result<(String, SystemTime), getrandom::Error> {
        self.insert(user, roles, method, lifetime, false)
    }

    /// Opens a partial session for the second step of a login, valid [`PARTIAL_LIFETIME`];
    /// `roles` are what the full token will carry.
    pub fn create_partial(
        &self,
        user: &str,
        roles: Vec<String>,
        method: &str,
    ) -> Result<(String, SystemTime), getrandom::Error> {
        self.insert(user, roles, method, PARTIAL_LIFETIME, true)
    }

    fn insert(
        &self,
        user: &str,
        roles: Vec<String>,
        method: &str,
        lifetime: Duration,
        partial: bool,
    ) -> Result<(String, SystemTime), getrandom::Error> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)?;
        let token = URL_SAFE_NO_PAD.encode(random);
        let expires = SystemTime::now() + lifetime;
        let mut table = self.table();
        let now = SystemTime::now();
        table.retain(|_, s| s.expires > now);
        if table.len() >= MAX_SESSIONS {
            if let Some(oldest) = table.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                table.remove(&oldest);
            }
        }
        table.insert(
            hash(&token),
            Session {
                user: user.to_string(),
                key: UserKey::of(user),
                roles,
                method: method.to_string(),
                expires,
                partial,
            },
        );
        Ok((token, expires))
    }

    /// The live full session of `token` (never a partial one). Lookup is by hash, so timing
    /// says nothing about the token.
    pub fn lookup(&self, token: &str) -> Option<Session> {
        self.lookup_any(token).filter(|s| !s.partial)
    }

    /// The live partial session of `token`.
    pub fn lookup_partial(&self, token: &str) -> Option<Session> {
        self.lookup_any(token).filter(|s| s.partial)
    }

    /// The live session of `token`, full or partial: only for the MFA calls.
    pub fn lookup_any(&self, token: &str) -> Option<Session> {
        let key = hash(token);
        let mut table = self.table();
        match table.get(&key) {
            Some(session) if session.expires > SystemTime::now() => Some(session.clone()),
            Some(_) => {
                table.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends every session a local login of `user` opened, so a deleted or disabled local
    /// user, or one whose roles or password changed, keeps no token with the old rights.
    /// Sessions of remote users who happen to share the name are not theirs and stay.
    pub fn revoke_local_user(&self, user: &str) -> usize {
        let mut table = self.table();
        let before = table.len();
        table.retain(|_, s| !(s.user == user && s.method == LOCAL_METHOD));
        before - table.len()
    }

    /// Ends the session of `token`; whether there was one.
    pub fn revoke(&self, token: &str) -> bool {
        self.table().remove(&hash(token)).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_lookup_revoke() {
        let sessions = Sessions::new();
        let minute = Duration::from_secs(60);
        let (token, expires) = sessions
            .create("alice", vec!["Monitor".into()], "RADIUS", minute)
            .unwrap();
        assert_eq!(token.len(), 43);
        let session = sessions.lookup(&token).unwrap();
        assert_eq!(session.user, "alice");
        assert_eq!(session.expires, expires);
        assert!(sessions.lookup("not-a-token").is_none());
        assert!(sessions.revoke(&token));
        assert!(sessions.lookup(&token).is_none());
        assert!(!sessions.revoke(&token));
        // Only hashes are stored.
        assert!(!format!("{:?}", sessions.table()).contains(&token));
    }

    #[test]
    fn revoking_a_local_user_leaves_remote_namesakes() {
        let sessions = Sessions::new();
        let minute = Duration::from_secs(60);
        let (local, _) = sessions.create("carol", vec![], "Local", minute).unwrap();
        let (local2, _) = sessions.create("carol", vec![], "Local", minute).unwrap();
        let (remote, _) = sessions.create("carol", vec![], "RADIUS", minute).unwrap();
        let (other, _) = sessions.create("dave", vec![], "Local", minute).unwrap();
        assert_eq!(sessions.revoke_local_user("carol"), 2);
        assert!(sessions.lookup(&local).is_none());
        assert!(sessions.lookup(&local2).is_none());
        assert!(sessions.lookup(&remote).is_some());
        assert!(sessions.lookup(&other).is_some());
    }

    #[test]
    fn partial_tokens_are_seen_only_by_the_mfa_lookups() {
        let sessions = Sessions::new();
        let (token, expires) = sessions
            .create_partial("erin", vec!["Monitor".into()], "Local")
            .unwrap();
        assert!(sessions.lookup(&token).is_none());
        let partial = sessions.lookup_partial(&token).unwrap();
        assert!(partial.partial);
        assert_eq!(partial.roles, ["Monitor"]);
        assert!(sessions.lookup_any(&token).is_some());
        let lifetime = expires.duration_since(SystemTime::now()).unwrap();
        assert!(lifetime <= PARTIAL_LIFETIME && lifetime > Duration::from_secs(290));
        let (full, _) = sessions
            .create("erin", vec![], "Local", Duration::from_secs(60))
            .unwrap();
        assert!(sessions.lookup_partial(&full).is_none());
        assert!(sessions.revoke(&token));
        assert!(sessions.lookup_any(&token).is_none());
    }

    #[test]
    fn expired_tokens_do_not_work() {
        let sessions = Sessions::new();
        let (token, _) = sessions
            .create("bob", vec![], "Local", Duration::ZERO)
            .unwrap();
        assert!(sessions.lookup(&token).is_none());
    }
}
