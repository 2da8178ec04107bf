//! Login sessions: bearer tokens of 256 random bits, kept only as SHA-256 hashes.
//!
//! The table is in memory; with a state database ([`Sessions::open`]) every change is also
//! written through to it ([`crate::state::sessions::SessionState`]), under the table's lock
//! so the two never disagree on order, and the table is read back at start: sessions
//! survive a restart. Lookups never touch a SQLite database.
//!
//! With a state that other nodes share (PostgreSQL), the database is the truth: the `find`
//! lookups ask it, so a token opened on any node works on every node, and a token ended on
//! any node (logout, a changed local user) works on none. The table still keeps this node's
//! sessions for the per-user caps.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_config::{Config, UserKey};
use sha2::{Digest, Sha256};

use crate::live::ConfigStore;
use crate::state::sessions::{SessionState, StoredSession, TokenHash};
use crate::state::{StateDb, StateError};

/// The method name of sessions opened by the local method.
const LOCAL_METHOD: &str = "Local";

/// Sessions kept at most; past it, the oldest makes room.
const MAX_SESSIONS: usize = 100_000;

/// Full sessions one user keeps at most; past it, that user's oldest makes room. A user (or a
/// script holding one account) can therefore never push other users' sessions out: filling
/// the table takes thousands of accounts.
pub const MAX_SESSIONS_PER_USER: usize = 32;

/// Partial sessions (second factor still owed) one user keeps at most, apart from the full
/// ones: a password alone opens partial sessions, so they never push out a full one, or
/// whoever knows the password could log the user out.
pub const MAX_PARTIAL_PER_USER: usize = 8;

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

/// The session table, shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    table: Arc<Mutex<Table>>,
    /// Where the table is written through to (none: memory only).
    store: Option<StateDb>,
    /// The live configuration, for the grants of local users' sessions.
    config: Option<Arc<ConfigStore>>,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No randomness for the token.
    #[error("random token: {0}")]
    Random(#[from] getrandom::Error),
    /// The state database did not keep it.
    #[error("{0}")]
    State(#[from] StateError),
}

impl SessionError {
    /// The REST answer: 503 when the shared state database does not answer, else 500.
    pub fn into_api(self, context: &str) -> super::error::ApiError {
        match self {
            SessionError::State(e) => super::error::ApiError::state(context, &e),
            SessionError::Random(e) => super::error::ApiError::internal(context, e),
        }
    }
}

/// What a local user is, hashed: the session of a local login is kept only while the user
/// still exists under the same name, enabled, with the same roles and password (the rule of
/// [`Sessions::revoke_changed_local_users`], applied across a restart).
fn local_grant(config: &Config, user: &str) -> Option<TokenHash> {
    let key = UserKey::of(user);
    let local = config
        .local_users
        .iter()
        .find(|u| u.enabled && UserKey::of(&u.name) == key)?;
    let mut digest = Sha256::new();
    digest.update(local.name.as_bytes());
    for role in &local.roles {
        digest.update([0]);
        digest.update(role.as_bytes());
    }
    digest.update([1]);
    digest.update(local.password_hash.expose().as_bytes());
    Some(digest.finalize().into())
}

/// Sessions by token hash, with the order they were made in, overall and per user, so that
/// making room costs the same however full the table is.
#[derive(Debug, Default)]
struct Table {
    by_hash: HashMap<TokenHash, Session>,
    /// Every session's hash, oldest first; hashes of sessions already gone are skipped when
    /// they reach the front.
    order: VecDeque<TokenHash>,
    /// Each user's live sessions, oldest first.
    by_user: HashMap<UserKey, VecDeque<TokenHash>>,
    /// Sessions removed since the store last heard of it.
    gone: Vec<TokenHash>,
}

impl Table {
    fn remove(&mut self, hash: &TokenHash) -> Option<Session> {
        let session = self.by_hash.remove(hash)?;
        self.gone.push(*hash);
        if let Some(mine) = self.by_user.get_mut(&session.key) {
            mine.retain(|h| h != hash);
            if mine.is_empty() {
                self.by_user.remove(&session.key);
            }
        }
        Some(session)
    }

    /// Makes room for one more session of `key` at `now` (`partial` or full): that user's
    /// expired ones, their oldest of the same kind beyond [`MAX_SESSIONS_PER_USER`] (full) or
    /// [`MAX_PARTIAL_PER_USER`] (partial), expired ones at the front, and the oldest beyond
    /// [`MAX_SESSIONS`].
    fn make_room(&mut self, key: &UserKey, partial: bool, now: SystemTime) {
        let mine: Vec<TokenHash> = self
            .by_user
            .get(key)
            .map(|hashes| hashes.iter().copied().collect())
            .unwrap_or_default();
        for hash in mine {
            if self.by_hash.get(&hash).is_none_or(|s| s.expires <= now) {
                self.remove(&hash);
            }
        }
        let cap = if partial {
            MAX_PARTIAL_PER_USER
        } else {
            MAX_SESSIONS_PER_USER
        };
        let same_kind: Vec<TokenHash> = self
            .by_user
            .get(key)
            .map(|hashes| {
                hashes
                    .iter()
                    .filter(|h| self.by_hash.get(*h).is_some_and(|s| s.partial == partial))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        for oldest in same_kind
            .iter()
            .take((same_kind.len() + 1).saturating_sub(cap))
        {
            self.remove(oldest);
        }
        while let Some(front) = self.order.front().copied() {
            let gone = match self.by_hash.get(&front) {
                None => true,
                Some(session) if session.expires <= now => {
                    self.remove(&front);
                    true
                }
                Some(_) if self.by_hash.len() >= MAX_SESSIONS => {
                    self.remove(&front);
                    true
                }
                Some(_) => false,
            };
            if !gone {
                break;
            }
            self.order.pop_front();
        }
        // Hashes of sessions removed out of order (logout, revocation) are dropped from the
        // order once they outnumber the live ones, so it stays within twice the table.
        if self.order.len() > 2 * self.by_hash.len() + 64 {
            let live = &self.by_hash;
            self.order.retain(|hash| live.contains_key(hash));
        }
    }

    fn insert(&mut self, hash: TokenHash, session: Session) {
        self.make_room(&session.key, session.partial, SystemTime::now());
        self.order.push_back(hash);
        self.by_user
            .entry(session.key.clone())
            .or_default()
            .push_back(hash);
        self.by_hash.insert(hash, session);
    }
}

fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

fn unix_ns(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A session as the state database gave it back.
fn restored(row: StoredSession) -> Session {
    Session {
        key: UserKey::of(&row.user),
        user: row.user,
        roles: row.roles,
        method: row.method,
        expires: SystemTime::UNIX_EPOCH
            + Duration::from_nanos(u64::try_from(row.expires_ns).unwrap_or(0)),
        partial: row.partial,
    }
}

impl Sessions {
    /// An empty table in memory only.
    pub fn new() -> Sessions {
        Sessions::default()
    }

    /// The table kept in `db`: the live sessions stored there come back (caps applied as
    /// when they were made), and every change from now on is written through.
    pub fn open(db: StateDb, config: Arc<ConfigStore>) -> Result<Sessions, StateError> {
        let now = SystemTime::now();
        let stored = db.load_sessions(unix_ns(now))?;
        let live = config.current();
        let mut table = Table::default();
        for row in stored {
            if row.method == LOCAL_METHOD
                && (row.grant.is_none() || row.grant != local_grant(&live.config, &row.user))
            {
                // The local user changed while the daemon was down.
                table.gone.push(row.hash);
                continue;
            }
            let hash = row.hash;
            table.insert(hash, restored(row));
        }
        db.delete_sessions(&std::mem::take(&mut table.gone))?;
        Ok(Sessions {
            table: Arc::new(Mutex::new(table)),
            store: Some(db),
            config: Some(config),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the sessions removed from `table` through to the store, under its lock.
    fn forget_gone(&self, table: &mut Table) {
        let gone = std::mem::take(&mut table.gone);
        if let Some(store) = &self.store {
            if let Err(e) = store.delete_sessions(&gone) {
                tracing::error!(error = %e, "sessions: state database");
            }
        }
    }

    /// Opens a session valid for `lifetime` and returns its token (43 URL-safe characters)
    /// and expiry.
    pub fn create(
        &self,
        user: &str,
        roles: Vec<String>,
        method: &str,
        lifetime: Duration,
    ) -> Result<(String, SystemTime), SessionError> {
        self.insert(user, roles, method, lifetime, false)
    }

    /// Opens a partial session for the second step of a login, valid [`PARTIAL_LIFETIME`];
    /// `roles` are what the full token will carry.
    pub fn create_partial(
        &self,
        user: &str,
        roles: Vec<String>,
        method: &str,
    ) -> Result<(String, SystemTime), SessionError> {
        self.insert(user, roles, method, PARTIAL_LIFETIME, true)
    }

    fn insert(
        &self,
        user: &str,
        roles: Vec<String>,
        method: &str,
        lifetime: Duration,
        partial: bool,
    ) -> Result<(String, SystemTime), SessionError> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)?;
        let token = URL_SAFE_NO_PAD.encode(random);
        let expires = SystemTime::now() + lifetime;
        let session = Session {
            user: user.to_string(),
            key: UserKey::of(user),
            roles,
            method: method.to_string(),
            expires,
            partial,
        };
        let hash = hash(&token);
        let mut table = self.table();
        table.insert(hash, session.clone());
        self.forget_gone(&mut table);
        if let Some(store) = &self.store {
            let stored = StoredSession {
                hash,
                user: session.user,
                roles: session.roles,
                method: session.method,
                expires_ns: unix_ns(expires),
                partial,
                grant: match &self.config {
                    Some(config) if method == LOCAL_METHOD => {
                        local_grant(&config.current().config, user)
                    }
                    _ => None,
                },
            };
            if let Err(e) = store.save_session(&stored) {
                // Not kept: the token would not survive a restart, so it is not handed out.
                table.remove(&hash);
                table.gone.clear();
                tracing::error!(error = %e, "sessions: state database");
                return Err(SessionError::State(e));
            }
        }
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
        match table.by_hash.get(&key) {
            Some(session) if session.expires > SystemTime::now() => Some(session.clone()),
            Some(_) => {
                table.remove(&key);
                self.forget_gone(&mut table);
                None
            }
            None => None,
        }
    }

    /// The live full session of `token`, from wherever it was opened: [`Sessions::lookup`]
    /// on one node, the shared database when there is one.
    pub async fn find(&self, token: &str) -> Option<Session> {
        self.find_any(token).await.filter(|s| !s.partial)
    }

    /// The live partial session of `token`, from wherever it was opened.
    pub async fn find_partial(&self, token: &str) -> Option<Session> {
        self.find_any(token).await.filter(|s| s.partial)
    }

    /// The live session of `token`, full or partial, from wherever it was opened. With a
    /// shared database it is asked every time (a session ended on another node must not
    /// work here); a database that does not answer finds nothing (logged): a token is not
    /// honoured when whether it was revoked cannot be known.
    pub async fn find_any(&self, token: &str) -> Option<Session> {
        let Some(store) = self.store.clone().filter(StateDb::is_shared) else {
            return self.lookup_any(token);
        };
        let key = hash(token);
        let now = unix_ns(SystemTime::now());
        let found = tokio::task::spawn_blocking(move || store.find_session(&key, now)).await;
        let row = match found {
            Ok(Ok(row)) => row,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "sessions: state database; token refused");
                return None;
            }
            Err(e) => {
                tracing::error!(error = %e, "sessions: lookup task failed; token refused");
                return None;
            }
        };
        let Some(row) = row else {
            // Ended or expired elsewhere: forget this node's copy too.
            let mut table = self.table();
            if table.by_hash.contains_key(&key) {
                table.remove(&key);
                table.gone.clear();
            }
            return None;
        };
        if row.method == LOCAL_METHOD {
            let current = self
                .config
                .as_ref()
                .and_then(|c| local_grant(&c.current().config, &row.user));
            if row.grant.is_none() || row.grant != current {
                // The local user changed (on any node): the session ends everywhere.
                let mut table = self.table();
                table.remove(&key);
                table.gone.push(key);
                self.forget_gone(&mut table);
                return None;
            }
        }
        Some(restored(row))
    }

    /// Ends every session (full or partial) a local login of `user` opened, so a deleted or
    /// disabled local user, or one whose roles or password changed, keeps no token with the
    /// old rights. Sessions of remote users who happen to share the name are not theirs and
    /// stay.
    pub fn revoke_local_user(&self, user: &str) -> usize {
        let key = UserKey::of(user);
        let mut table = self.table();
        let theirs: Vec<TokenHash> = table
            .by_user
            .get(&key)
            .map(|hashes| hashes.iter().copied().collect())
            .unwrap_or_default();
        let mut revoked = 0;
        for hash in theirs {
            if table
                .by_hash
                .get(&hash)
                .is_some_and(|s| s.method == LOCAL_METHOD)
            {
                table.remove(&hash);
                revoked += 1;
            }
        }
        self.forget_gone(&mut table);
        revoked
    }

    /// Ends the session of `token`; whether this node had it. With a shared database the
    /// session ends there too, wherever it was opened.
    pub fn revoke(&self, token: &str) -> bool {
        let key = hash(token);
        let mut table = self.table();
        let revoked = table.remove(&key).is_some();
        if !revoked && self.store.as_ref().is_some_and(StateDb::is_shared) {
            table.gone.push(key);
        }
        self.forget_gone(&mut table);
        revoked
    }

    /// Ends the sessions of every local user whom the change from `old` to `new` removed,
    /// disabled, or gave other roles or another password: the one rule every configuration
    /// change (API write, reload, ...) passes through. Returns how many ended.
    pub fn revoke_changed_local_users(&self, old: &Config, new: &Config) -> usize {
        let mut revoked = 0;
        for before in &old.local_users {
            let unchanged = new.local_users.iter().any(|after| {
                after.name == before.name
                    && after.enabled
                    && after.roles == before.roles
                    && after.password_hash.expose() == before.password_hash.expose()
            });
            if !unchanged {
                let n = self.revoke_local_user(&before.name);
                if n > 0 {
                    tracing::info!(user = %before.name, sessions = n, "local user changed: sessions ended");
                }
                revoked += n;
            }
        }
        revoked
    }

    /// Sessions in the table (live or not yet swept).
    pub fn len(&self) -> usize {
        self.table().by_hash.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        assert!(!format!("{:?}", *sessions.table()).contains(&token));
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
    fn one_user_cannot_push_out_other_users_sessions() {
        let sessions = Sessions::new();
        let hour = Duration::from_secs(3600);
        let (victim, _) = sessions.create("victim", vec![], "Local", hour).unwrap();
        let mut mine = Vec::new();
        for _ in 0..(MAX_SESSIONS_PER_USER * 10) {
            mine.push(
                sessions
                    .create("Mallory", vec![], "RADIUS", hour)
                    .unwrap()
                    .0,
            );
        }
        // Variants of a name are one user, and hold at most the cap: the oldest went first.
        mine.push(
            sessions
                .create("MALLORY", vec![], "RADIUS", hour)
                .unwrap()
                .0,
        );
        assert_eq!(sessions.len(), MAX_SESSIONS_PER_USER + 1);
        assert!(sessions.lookup(&victim).is_some());
        assert!(sessions.lookup(&mine[0]).is_none());
        // Partial sessions (a password alone opens them) have their own cap and never push
        // out a full one.
        for _ in 0..(MAX_PARTIAL_PER_USER * 3) {
            let (partial, _) = sessions
                .create_partial("mallory", vec![], "RADIUS")
                .unwrap();
            mine.push(partial);
        }
        assert_eq!(
            sessions.len(),
            MAX_SESSIONS_PER_USER + MAX_PARTIAL_PER_USER + 1
        );
        assert!(sessions.lookup_partial(mine.last().unwrap()).is_some());
        // The newest full session is still there.
        assert!(sessions.lookup(&mine[MAX_SESSIONS_PER_USER * 10]).is_some());
        let live = mine.iter().filter(|t| sessions.lookup(t).is_some()).count();
        assert_eq!(live, MAX_SESSIONS_PER_USER);
        // Logouts and revocations leave nothing behind in the bookkeeping.
        for token in &mine {
            sessions.revoke(token);
        }
        let table = sessions.table();
        assert_eq!(table.by_hash.len(), 1);
        assert_eq!(table.by_user.len(), 1);
    }

    #[test]
    fn the_table_is_bounded_and_expired_sessions_make_room_first() {
        let sessions = Sessions::new();
        let hour = Duration::from_secs(3600);
        let (stale, _) = sessions
            .create("early", vec![], "Local", Duration::ZERO)
            .unwrap();
        for n in 0..MAX_SESSIONS {
            sessions
                .create(&format!("user{n}"), vec![], "Local", hour)
                .unwrap();
        }
        assert!(sessions.lookup(&stale).is_none());
        assert_eq!(sessions.len(), MAX_SESSIONS);
        let (last, _) = sessions.create("latecomer", vec![], "Local", hour).unwrap();
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.lookup(&last).is_some());
        // The oldest live one made room.
        let table = sessions.table();
        assert!(!table.by_user.contains_key(&UserKey::of("user0")));
        assert!(table.by_user.contains_key(&UserKey::of("user1")));
    }

    #[test]
    fn a_configuration_change_ends_the_sessions_of_changed_local_users() {
        let user =
            |name: &str, roles: &[&str], enabled: bool, hash: &str| portcullis_config::LocalUser {
                name: name.into(),
                password_hash: portcullis_config::Secret::new(hash),
                roles: roles.iter().map(|r| (*r).to_string()).collect(),
                enabled,
            };
        let old = Config {
            local_users: vec![
                user("same", &["Monitor"], true, "h1"),
                user("demoted", &["Administrator"], true, "h2"),
                user("disabled", &["Monitor"], true, "h3"),
                user("removed", &["Monitor"], true, "h4"),
                user("repassworded", &["Monitor"], true, "h5"),
            ],
            ..Config::default()
        };
        let mut new = old.clone();
        new.local_users[1].roles = vec!["Monitor".into()];
        new.local_users[2].enabled = false;
        new.local_users[4].password_hash = portcullis_config::Secret::new("h6");
        new.local_users.remove(3);
        let sessions = Sessions::new();
        let hour = Duration::from_secs(3600);
        let tokens: Vec<String> = old
            .local_users
            .iter()
            .map(|u| sessions.create(&u.name, vec![], "Local", hour).unwrap().0)
            .collect();
        let (remote, _) = sessions.create("removed", vec![], "RADIUS", hour).unwrap();
        assert_eq!(sessions.revoke_changed_local_users(&old, &new), 4);
        assert!(sessions.lookup(&tokens[0]).is_some());
        for token in &tokens[1..] {
            assert!(sessions.lookup(token).is_none());
        }
        assert!(sessions.lookup(&remote).is_some());
        assert_eq!(sessions.revoke_changed_local_users(&new, &new), 0);
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
