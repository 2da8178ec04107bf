//! Brute-force throttling: a keyed failure limiter over the state database, shared by the REST
//! login, HTTP Basic and the RADIUS front-end.
//!
//! Every attempt is checked *before* it runs ([`begin`]) and settled after ([`Ticket::finish`]).
//! Attempts for one user take turns (an in-memory lock per user key, held by the [`Ticket`]),
//! and [`begin`] counts the user's failure at once, in the same transaction that checks the
//! lock: a burst of parallel guesses cannot slip past the limit, and parallel logins with the
//! right password never lock anyone. A success then clears the counts, and an outcome that
//! says nothing about the password (servers unavailable, no role mapped) gives the failure
//! back; an attempt dropped before it is settled stays a failure. Source counts are recorded
//! when an attempt has failed (logins of different users from one address run in parallel).
//!
//! Keys:
//! - `user:remote:<name>` and `user:loopback:<name>`: a user's failures, kept apart by where
//!   they came from (the administrator rule): REST attempts from `local_networks` (default
//!   127.0.0.0/8 and ::1, IPv4-mapped too) or the Unix socket count in the loopback bucket,
//!   all others (and every RADIUS front-end attempt, whose
//!   NAS relays users from anywhere) in the remote one. An attacker who locks out `admin` from
//!   the network does not lock out `admin` on the appliance itself. Names are lowercased, so
//!   `Admin` and `ADMIN` share a count.
//! - `source:<address>`: an IPv4 address, or the /64 of an IPv6 address (one host usually owns
//!   a whole /64). For the RADIUS front-end the source is the Calling-Station-Id when the NAS
//!   sends one (the NAS itself is shared by all its users and is never locked). Sources in the
//!   loopback bucket have no per-source limit.
//!
//! Lockouts (NIST SP 800-63B §5.2.2): after `max_failures` consecutive failures a key is locked
//! for `lockout` seconds, and each further failure doubles it up to `max_lockout` ("a period
//! of time that increases as the account approaches its maximum allowance"). A user key that
//! reaches `hard_limit` (at most 100: "no more than 100 consecutive failed authentication
//! attempts on a single account") is locked for `hard_lockout` seconds, or until an
//! administrator clears it; its count stays at the limit, so one more failure locks it again.
//! A success clears the user's count in that bucket and the source's ("disregard any previous
//! failed attempts for that user from the same IP address"). A source's count is also
//! forgotten after a day without failures; a user's is not.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use portcullis_config::Throttle;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use crate::api::error::ApiError;
use crate::engine::Outcome;
use crate::state::{StateDb, StateError, unix_now};

/// The Reply-Message of a RADIUS Access-Reject for a locked user or source. It says nothing
/// about the password, which was not checked.
pub const RADIUS_LOCKED: &str = "Account temporarily locked after too many failed logins";
/// `error_id` and `error_info.reason` of the 429 answer.
pub const LOCKED_OUT: &str = "LOCKED_OUT";
/// Seconds without a failure after which a source's count is forgotten.
const SOURCE_MEMORY: i64 = 86_400;

/// Seconds between sweeps of forgotten source counts.
const SWEEP_INTERVAL: i64 = 60;
/// `locked_until` of a lock only an administrator can clear.
const FOREVER: i64 = i64::MAX;
/// The longest `Retry-After` sent, for locks until cleared: 30 days.
const MAX_RETRY_AFTER: i64 = 30 * 86_400;
/// User names longer than this share the count of their first this-many characters.
const MAX_NAME_CHARS: usize = 256;

/// Where an attempt comes from, as far as the administrator rule is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An address in `throttle.local_networks` (also IPv4-mapped), or the API's Unix socket.
    Loopback,
    /// Any other address.
    Remote(IpAddr),
    /// A RADIUS front-end request: remote, with the user's address if the NAS sent one.
    Relayed(Option<IpAddrOrStation>),
}

/// The end user's address as a NAS reports it in Calling-Station-Id (RFC 2865 §5.31): an IP
/// address when it parses as one, else the text itself (a MAC address, a phone number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpAddrOrStation {
    /// An IP address.
    Ip(IpAddr),
    /// Anything else, hashed into the key's text by [`station_key`].
    Station([u8; 32]),
}

impl Origin {
    /// The origin of a REST request from `peer` (`None`: the Unix socket) under `config`.
    pub fn of_peer(peer: Option<SocketAddr>, config: &Throttle) -> Origin {
        match peer.map(|p| p.ip().to_canonical()) {
            None => Origin::Loopback,
            Some(ip) if config.is_local(ip) => Origin::Loopback,
            Some(ip) => Origin::Remote(ip),
        }
    }

    /// The origin of a RADIUS front-end request carrying `calling_station` (the raw value of
    /// Calling-Station-Id, when present).
    pub fn relayed(calling_station: Option<&[u8]>) -> Origin {
        let station = calling_station.filter(|v| !v.is_empty()).map(|value| {
            match std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.trim().parse::<IpAddr>().ok())
            {
                Some(ip) => IpAddrOrStation::Ip(ip.to_canonical()),
                None => IpAddrOrStation::Station(station_key(value)),
            }
        });
        Origin::Relayed(station)
    }
}

/// A SHA-256 of an opaque Calling-Station-Id, so the key stays short and printable.
fn station_key(value: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(value).into()
}

/// The peer address of a REST request: `None` on the Unix socket. Never rejects.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl Peer {
    /// The peer recorded in `parts` by the HTTPS server.
    pub fn of(parts: &Parts) -> Peer {
        Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0),
        )
    }

    /// The origin of a request from this peer under `config`.
    pub fn origin(self, config: &Throttle) -> Origin {
        Origin::of_peer(self.0, config)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Self::Rejection> {
        Ok(Peer::of(parts))
    }
}

/// The keys one attempt counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    user: String,
    source: Option<String>,
}

impl Attempt {
    /// An attempt to log in as `user` from `origin`.
    pub fn new(user: &str, origin: Origin) -> Attempt {
        let bucket = match origin {
            Origin::Loopback => "loopback",
            Origin::Remote(_) | Origin::Relayed(_) => "remote",
        };
        let source = match origin {
            Origin::Loopback => None,
            Origin::Remote(ip) | Origin::Relayed(Some(IpAddrOrStation::Ip(ip))) => {
                Some(source_key(ip))
            }
            Origin::Relayed(Some(IpAddrOrStation::Station(hash))) => {
                let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
                Some(format!("source:station-{hex}"))
            }
            Origin::Relayed(None) => None,
        };
        Attempt {
            user: user_key(bucket, user),
            source,
        }
    }

    fn keys(&self) -> impl Iterator<Item = (&str, bool)> {
        std::iter::once((self.user.as_str(), true))
            .chain(self.source.as_deref().map(|source| (source, false)))
    }
}

fn user_key(bucket: &str, user: &str) -> String {
    let name: String = user.chars().take(MAX_NAME_CHARS).collect();
    format!("user:{bucket}:{}", name.to_lowercase())
}

/// `source:<ip>` for IPv4 (also IPv4-mapped), `source:<prefix>/64` for IPv6.
pub fn source_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("source:{v4}"),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            format!("source:{}/64", Ipv6Addr::from(bits))
        }
    }
}

/// The keys of `user` in both buckets, for an administrator clearing its lock.
pub fn user_keys(user: &str) -> [String; 2] {
    [user_key("remote", user), user_key("loopback", user)]
}

/// How an attempt ended, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password (or CHAP response) was right: clear the counts.
    Success,
    /// A wrong password or an unknown user: keep the failure.
    Failure,
    /// Nothing was learned about the password (no server answered, no role mapped): give the
    /// failure back.
    Neutral,
}

impl Verdict {
    /// The verdict of a sequence walk's `outcome`, read as the login answer reads it: an
    /// unavailable method is an unknown user unless remote servers are configured.
    pub fn of(outcome: &Outcome, has_remote_servers: bool) -> Verdict {
        match outcome {
            Outcome::Accept(_) => Verdict::Success,
            Outcome::Reject(reason) if reason == "no role mapped" => Verdict::Neutral,
            Outcome::Reject(_) => Verdict::Failure,
            Outcome::Unavailable(_) if has_remote_servers => Verdict::Neutral,
            Outcome::Unavailable(_) => Verdict::Failure,
        }
    }
}

/// A refused attempt: the user or the source is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// Seconds until the lock ends (for a lock until cleared, a month).
    pub retry_after: u64,
    /// Whether only an administrator can end it.
    pub until_cleared: bool,
}

impl Locked {
    /// 429 LOCKED_OUT with `error_info {reason, retry_after}`; the response carries
    /// `Retry-After`.
    pub fn api_error(self) -> ApiError {
        let mut error = ApiError::bad_request(
            "Too many failed logins: this account or address is temporarily locked. Try again \
             later.",
        )
        .with_info(json!({ "reason": LOCKED_OUT, "retry_after": self.retry_after }));
        error.status = StatusCode::TOO_MANY_REQUESTS;
        error.error_id = LOCKED_OUT;
        error
    }
}

/// An attempt that passed the check and is counted as a failure until settled.
#[derive(Debug)]
#[must_use = "settle the attempt with finish()"]
pub struct Ticket {
    inner: Option<(StateDb, Throttle, Attempt)>,
    /// Held until the attempt is settled: the next attempt for the user waits for it.
    _turn: Option<Turn>,
}

impl Ticket {
    /// A ticket that counts nothing (throttling off).
    pub fn none() -> Ticket {
        Ticket {
            inner: None,
            _turn: None,
        }
    }

    /// Settles the attempt.
    pub async fn finish(self, verdict: Verdict) {
        let Some((db, config, attempt)) = self.inner else {
            return;
        };
        if verdict == Verdict::Failure && (attempt.source.is_none() || !config.per_source) {
            return;
        }
        let result = db
            .run(move |conn| settle(conn, &config, &attempt, verdict, unix_now()))
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "throttle: cannot settle an attempt");
        }
    }
}

/// One user's turn: attempts for the same user key run one at a time, so each sees the
/// failures of the one before and parallel guesses cannot pass the limit together. Attempts
/// for different users (and per-source counts) run in parallel.
#[derive(Debug)]
struct Turn {
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

type Turns = std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

fn turns()
-> std::sync::MutexGuard<'static, std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
    static TURNS: std::sync::OnceLock<Turns> = std::sync::OnceLock::new();
    TURNS
        .get_or_init(Turns::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Turn {
    async fn take(key: &str) -> Turn {
        let mutex = Arc::clone(turns().entry(key.to_string()).or_default());
        Turn {
            key: key.to_string(),
            guard: Some(mutex.lock_owned().await),
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut turns = turns();
        // Only the map holds it: nobody waits, forget the key.
        if turns
            .get(&self.key)
            .is_some_and(|mutex| Arc::strong_count(mutex) == 1)
        {
            turns.remove(&self.key);
        }
    }
}

/// Checks `attempt` against the counts and, when nothing is locked, counts it as a failure.
/// With throttling off, or when the state database fails (logged), nothing is refused.
pub async fn begin(db: &StateDb, config: &Throttle, attempt: Attempt) -> Result<Ticket, Locked> {
    if !config.enabled {
        return Ok(Ticket::none());
    }
    let turn = Turn::take(&attempt.user).await;
    let (config, db) = (config.clone(), db.clone());
    let checked = {
        let (config, attempt) = (config.clone(), attempt.clone());
        db.run(move |conn| check_and_count(conn, &config, &attempt, unix_now()))
            .await
    };
    match checked {
        Ok(Ok(())) => Ok(Ticket {
            inner: Some((db, config, attempt)),
            _turn: Some(turn),
        }),
        Ok(Err(locked)) => {
            metrics::counter!("portcullis_throttle_refused_total").increment(1);
            Err(locked)
        }
        Err(e) => {
            tracing::error!(error = %e, "throttle: state database unusable, attempt not counted");
            Ok(Ticket::none())
        }
    }
}

/// [`begin`] for a REST attempt, the refusal as the 429 answer.
pub async fn begin_api(
    state: &crate::api::AppState,
    user: &str,
    peer: Peer,
) -> Result<Ticket, ApiError> {
    let config = state.store.current().config.throttle.clone();
    let origin = peer.origin(&config);
    begin(&state.db, &config, Attempt::new(user, origin))
        .await
        .map_err(Locked::api_error)
}

/// [`begin`] for a RADIUS front-end request (`db` is `None` when the front-end runs without a
/// state database: nothing is counted).
pub async fn begin_relayed(
    db: Option<&StateDb>,
    config: &Throttle,
    user: &str,
    origin: Origin,
) -> Result<Ticket, Locked> {
    match db {
        Some(db) => begin(db, config, Attempt::new(user, origin)).await,
        None => Ok(Ticket::none()),
    }
}

/// How long a key stays locked after its `failures`-th consecutive failure at `now`.
fn locked_until(config: &Throttle, failures: i64, is_user: bool, now: i64) -> i64 {
    let max_failures = i64::from(config.max_failures);
    if is_user && failures >= i64::from(config.hard_limit) {
        return match config.hard_lockout {
            0 => FOREVER,
            period => now.saturating_add(i64::from(period)),
        };
    }
    if failures < max_failures {
        return 0;
    }
    let doublings = u32::try_from(failures - max_failures).unwrap_or(u32::MAX);
    let period = i64::from(config.lockout)
        .checked_shl(doublings.min(40))
        .unwrap_or(i64::MAX)
        .min(i64::from(config.max_lockout));
    now.saturating_add(period)
}

type Row = (i64, i64, i64);

fn row(conn: &rusqlite::Connection, key: &str) -> Result<Option<Row>, StateError> {
    Ok(conn
        .query_row(
            "SELECT failures, locked_until, last_failure FROM throttle WHERE key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

fn check_and_count(
    conn: &mut rusqlite::Connection,
    config: &Throttle,
    attempt: &Attempt,
    now: i64,
) -> Result<Result<(), Locked>, StateError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Forgotten sources are swept at most once a minute, not on every attempt: the sweep scans
    // every source row.
    static LAST_SWEEP: AtomicI64 = AtomicI64::new(i64::MIN);
    let last = LAST_SWEEP.load(Ordering::Relaxed);
    let due = now < last || now.saturating_sub(last) >= SWEEP_INTERVAL;
    if due
        && LAST_SWEEP
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tx.execute(
            "DELETE FROM throttle WHERE key LIKE 'source:%' AND last_failure < ?1 \
             AND locked_until <= ?2",
            params![now - SOURCE_MEMORY, now],
        )?;
    }
    let mut current = Vec::new();
    let mut lock: Option<i64> = None;
    for (key, is_user) in attempt.keys() {
        if !is_user && !config.per_source {
            continue;
        }
        let (failures, until, _) = row(&tx, key)?.unwrap_or((0, 0, 0));
        if until > now {
            lock = Some(lock.map_or(until, |l| l.max(until)));
        }
        current.push((key, is_user, failures));
    }
    if let Some(until) = lock {
        tx.commit()?;
        return Ok(Err(Locked {
            retry_after: u64::try_from((until - now).min(MAX_RETRY_AFTER)).unwrap_or(0),
            until_cleared: until == FOREVER,
        }));
    }
    // The user's failure is counted now (attempts for one user run one at a time, see
    // [`begin`]); the source's when the attempt has failed.
    for (key, is_user, failures) in current {
        if is_user {
            count_failure(&tx, config, key, true, failures, now)?;
        }
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// Records the `failures + 1`-th consecutive failure of `key` at `now`, locking it if due.
fn count_failure(
    tx: &rusqlite::Transaction<'_>,
    config: &Throttle,
    key: &str,
    is_user: bool,
    failures: i64,
    now: i64,
) -> Result<(), StateError> {
    let failures = if is_user {
        (failures + 1).min(i64::from(config.hard_limit))
    } else {
        failures.saturating_add(1)
    };
    let until = locked_until(config, failures, is_user, now);
    if until > 0 {
        tracing::warn!(
            key,
            failures,
            seconds = until.saturating_sub(now),
            "throttle: locked after repeated failed logins"
        );
        let kind = match (is_user, failures >= i64::from(config.hard_limit)) {
            (true, true) => "user_hard_limit",
            (true, false) => "user",
            (false, _) => "source",
        };
        metrics::counter!("portcullis_throttle_lockouts_total", "kind" => kind).increment(1);
    }
    tx.execute(
        "INSERT INTO throttle (key, failures, locked_until, last_failure) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET \
         failures = excluded.failures, locked_until = excluded.locked_until, \
         last_failure = excluded.last_failure",
        params![key, failures, until, now],
    )?;
    Ok(())
}

fn settle(
    conn: &mut rusqlite::Connection,
    config: &Throttle,
    attempt: &Attempt,
    verdict: Verdict,
    now: i64,
) -> Result<(), StateError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (key, is_user) in attempt.keys() {
        match verdict {
            Verdict::Success => {
                tx.execute("DELETE FROM throttle WHERE key = ?1", [key])?;
            }
            Verdict::Failure if !is_user && config.per_source => {
                let failures = row(&tx, key)?.map_or(0, |r| r.0);
                count_failure(&tx, config, key, false, failures, now)?;
            }
            Verdict::Neutral if !is_user => {}
            Verdict::Neutral => {
                let Some((failures, _, last)) = row(&tx, key)? else {
                    continue;
                };
                let failures = (failures - 1).max(0);
                if failures == 0 {
                    tx.execute("DELETE FROM throttle WHERE key = ?1", [key])?;
                    continue;
                }
                let until = locked_until(config, failures, is_user, last);
                tx.execute(
                    "UPDATE throttle SET failures = ?2, locked_until = ?3 WHERE key = ?1",
                    params![key, failures, until],
                )?;
            }
            Verdict::Failure => {}
        }
    }
    tx.commit()?;
    Ok(())
}

/// One counted key, for the management API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `user:remote:<name>`, `user:loopback:<name>` or `source:<address>`.
    pub key: String,
    /// Consecutive failures.
    pub failures: i64,
    /// Seconds until the lock ends; 0 when not locked.
    pub locked_for: i64,
    /// Whether only an administrator can end the lock.
    pub until_cleared: bool,
    /// When the last failure was counted (Unix seconds).
    pub last_failure: i64,
}

/// Every key with failures, users first.
pub async fn list(db: &StateDb) -> Result<Vec<Entry>, StateError> {
    let now = unix_now();
    db.run(move |conn| {
        let mut statement = conn.prepare(
            "SELECT key, failures, locked_until, last_failure FROM throttle \
             WHERE failures > 0 ORDER BY key DESC",
        )?;
        let rows = statement.query_map([], |r| {
            let until: i64 = r.get(2)?;
            Ok(Entry {
                key: r.get(0)?,
                failures: r.get(1)?,
                locked_for: until.saturating_sub(now).clamp(0, MAX_RETRY_AFTER),
                until_cleared: until == FOREVER,
                last_failure: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
    .await
}

/// Forgets the counts of `keys`; the number of keys that had one.
pub async fn clear(db: &StateDb, keys: Vec<String>) -> Result<usize, StateError> {
    db.run(move |conn| {
        let mut removed = 0;
        for key in &keys {
            removed += conn.execute("DELETE FROM throttle WHERE key = ?1", [key])?;
        }
        Ok(removed)
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn remote(user: &str) -> Attempt {
        Attempt::new(
            user,
            Origin::Remote(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
        )
    }

    fn try_at(db: &StateDb, config: &Throttle, attempt: &Attempt, now: i64) -> Result<(), Locked> {
        db.with(|c| check_and_count(c, config, attempt, now))
            .unwrap()
    }

    fn finish_at(db: &StateDb, config: &Throttle, attempt: &Attempt, verdict: Verdict) {
        db.with(|c| settle(c, config, attempt, verdict, 0)).unwrap();
    }

    fn failures(db: &StateDb, key: &str) -> i64 {
        db.with(|c| row(c, key)).unwrap().map_or(0, |r| r.0)
    }

    #[test]
    fn keys_by_origin() {
        let config = Throttle::default();
        let peer = |text: &str| Some(text.parse::<SocketAddr>().unwrap());
        let v4 = Attempt::new("Admin", Origin::of_peer(peer("192.0.2.1:5000"), &config));
        assert_eq!(v4.user, "user:remote:admin");
        assert_eq!(v4.source.as_deref(), Some("source:192.0.2.1"));
        let mapped = Origin::of_peer(peer("[::ffff:127.0.0.1]:1"), &config);
        assert_eq!(mapped, Origin::Loopback);
        let local = Attempt::new("admin", Origin::of_peer(None, &config));
        assert_eq!(local.user, "user:loopback:admin");
        assert_eq!(local.source, None);
        let v6 = Attempt::new(
            "a",
            Origin::of_peer(peer("[2001:db8:1:2:aaaa::1]:443"), &config),
        );
        assert_eq!(v6.source.as_deref(), Some("source:2001:db8:1:2::/64"));
        let relayed = Attempt::new("a", Origin::relayed(Some(b"198.51.100.4")));
        assert_eq!(relayed.user, "user:remote:a");
        assert_eq!(relayed.source.as_deref(), Some("source:198.51.100.4"));
        let mac = Attempt::new("a", Origin::relayed(Some(b"00-11-22-33-44-55")));
        assert!(mac.source.unwrap().starts_with("source:station-"));
        assert_eq!(Attempt::new("a", Origin::relayed(None)).source, None);

        // Only `local_networks` (and the Unix socket) are local.
        let narrow = Throttle {
            local_networks: vec!["127.0.0.2/32".into()],
            ..Throttle::default()
        };
        let tcp = Attempt::new("admin", Origin::of_peer(peer("127.0.0.1:1"), &narrow));
        assert_eq!(tcp.user, "user:remote:admin");
        assert_eq!(tcp.source.as_deref(), Some("source:127.0.0.1"));
        let mapped = Origin::of_peer(peer("[::ffff:127.0.0.1]:1"), &narrow);
        assert_eq!(mapped, Origin::Remote("127.0.0.1".parse().unwrap()));
        for local in [peer("127.0.0.2:1"), peer("[::ffff:127.0.0.2]:1"), None] {
            assert_eq!(
                Origin::of_peer(local, &narrow),
                Origin::Loopback,
                "{local:?}"
            );
        }
        let none = Throttle {
            local_networks: Vec::new(),
            ..Throttle::default()
        };
        assert_eq!(Origin::of_peer(None, &none), Origin::Loopback);
        assert!(matches!(
            Origin::of_peer(peer("[::1]:1"), &none),
            Origin::Remote(_)
        ));
    }

    #[test]
    fn lockout_grows_then_hits_the_hard_limit() {
        let config = Throttle::default();
        let at = |n| locked_until(&config, n, true, 1000) - 1000;
        assert_eq!(at(9), -1000);
        assert_eq!(at(10), 60);
        assert_eq!(at(11), 120);
        assert_eq!(at(15), 1920);
        assert_eq!(at(16), 3600);
        assert_eq!(at(99), 3600);
        assert_eq!(at(100), 86_400);
        let forever = Throttle {
            hard_lockout: 0,
            ..Throttle::default()
        };
        assert_eq!(locked_until(&forever, 100, true, 5), FOREVER);
        // Sources have no hard limit.
        assert_eq!(locked_until(&config, 500, false, 0), 3600);
    }

    #[test]
    fn tenth_failure_locks_and_success_clears() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle::default();
        let attempt = remote("alice");
        for n in 0..10 {
            assert_eq!(
                try_at(&db, &config, &attempt, 100 + n),
                Ok(()),
                "attempt {n}"
            );
        }
        let locked = try_at(&db, &config, &attempt, 110).unwrap_err();
        assert_eq!(locked.retry_after, 59);
        assert!(!locked.until_cleared);
        // A refused attempt is not counted.
        assert_eq!(failures(&db, "user:remote:alice"), 10);
        // The lock ends; the next failure locks for twice as long.
        assert_eq!(try_at(&db, &config, &attempt, 170), Ok(()));
        assert_eq!(
            try_at(&db, &config, &attempt, 171).unwrap_err().retry_after,
            119
        );
        assert_eq!(try_at(&db, &config, &attempt, 290), Ok(()));
        finish_at(&db, &config, &attempt, Verdict::Success);
        assert_eq!(failures(&db, "user:remote:alice"), 0);
        assert_eq!(failures(&db, "source:192.0.2.7"), 0);
        assert_eq!(try_at(&db, &config, &attempt, 291), Ok(()));
    }

    #[test]
    fn neutral_outcomes_give_the_failure_back() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle::default();
        let attempt = remote("bob");
        for n in 0..25 {
            try_at(&db, &config, &attempt, n).unwrap();
            finish_at(&db, &config, &attempt, Verdict::Neutral);
        }
        assert_eq!(failures(&db, "user:remote:bob"), 0);
        for n in 0..10 {
            try_at(&db, &config, &attempt, n).unwrap();
        }
        finish_at(&db, &config, &attempt, Verdict::Neutral);
        assert_eq!(failures(&db, "user:remote:bob"), 9);
        assert_eq!(try_at(&db, &config, &attempt, 11), Ok(()));
    }

    #[test]
    fn hundred_failures_lock_until_cleared() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle {
            hard_lockout: 0,
            per_source: false,
            ..Throttle::default()
        };
        let attempt = remote("carol");
        let mut now = 0;
        let mut counted = 0;
        // An attacker who waits out every lockout gets exactly 100 guesses.
        while counted < 1000 {
            match try_at(&db, &config, &attempt, now) {
                Ok(()) => counted += 1,
                Err(locked) if locked.until_cleared => break,
                Err(locked) => now += i64::try_from(locked.retry_after).unwrap(),
            }
        }
        assert_eq!(counted, 100);
        assert_eq!(failures(&db, "user:remote:carol"), 100);
        // A year later it is still locked; the loopback bucket is not.
        assert!(
            try_at(&db, &config, &attempt, now + 365 * 86_400)
                .unwrap_err()
                .until_cleared
        );
        let local = Attempt::new("carol", Origin::Loopback);
        assert_eq!(try_at(&db, &config, &local, now), Ok(()));
        let removed = db
            .with(|c| {
                let mut n = 0;
                for key in user_keys("Carol") {
                    n += c.execute("DELETE FROM throttle WHERE key = ?1", [key])?;
                }
                Ok(n)
            })
            .unwrap();
        assert_eq!(removed, 2);
        assert_eq!(try_at(&db, &config, &attempt, now), Ok(()));
    }

    #[test]
    fn hard_lock_that_expires_relocks_on_the_next_failure() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle {
            max_failures: 1,
            lockout: 1,
            max_lockout: 1,
            hard_limit: 3,
            hard_lockout: 1000,
            per_source: false,
            ..Throttle::default()
        };
        let attempt = remote("dave");
        for now in [0, 1, 2] {
            assert_eq!(try_at(&db, &config, &attempt, now), Ok(()));
        }
        assert_eq!(
            try_at(&db, &config, &attempt, 3).unwrap_err().retry_after,
            999
        );
        assert_eq!(try_at(&db, &config, &attempt, 1002), Ok(()));
        assert_eq!(
            try_at(&db, &config, &attempt, 1003)
                .unwrap_err()
                .retry_after,
            999
        );
    }

    #[test]
    fn source_limit_spans_users_and_spares_loopback() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle::default();
        for n in 0..10 {
            let attempt = remote(&format!("user{n}"));
            try_at(&db, &config, &attempt, 0).unwrap();
            db.with(|c| settle(c, &config, &attempt, Verdict::Failure, 0))
                .unwrap();
        }
        assert!(try_at(&db, &config, &remote("fresh"), 1).is_err());
        for n in 0..50 {
            try_at(
                &db,
                &config,
                &Attempt::new(&format!("user{n}"), Origin::Loopback),
                1,
            )
            .unwrap();
        }
        // A day without failures after the lock ended forgets the source.
        assert_eq!(try_at(&db, &config, &remote("fresh"), 86_500), Ok(()));
        assert_eq!(failures(&db, "source:192.0.2.7"), 0);
    }

    #[tokio::test]
    async fn disabled_counts_nothing() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle {
            enabled: false,
            ..Throttle::default()
        };
        for _ in 0..20 {
            begin(&db, &config, remote("eve"))
                .await
                .unwrap()
                .finish(Verdict::Failure)
                .await;
        }
        assert!(list(&db).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn parallel_successes_never_lock() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle::default();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (db, config) = (db.clone(), config.clone());
                tokio::spawn(async move {
                    let ticket = begin(&db, &config, remote("grace")).await?;
                    tokio::task::yield_now().await;
                    ticket.finish(Verdict::Success).await;
                    Ok::<(), Locked>(())
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(()));
        }
        assert!(list(&db).await.unwrap().is_empty());
        assert!(!turns().contains_key("user:remote:grace"));
    }

    #[tokio::test]
    async fn parallel_guesses_cannot_pass_the_limit() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle::default();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (db, config) = (db.clone(), config.clone());
                tokio::spawn(async move { begin(&db, &config, remote("frank")).await.is_ok() })
            })
            .collect();
        let mut passed = 0;
        for task in tasks {
            if task.await.unwrap() {
                passed += 1;
            }
        }
        assert_eq!(passed, 10);
        let entries = list(&db).await.unwrap();
        assert_eq!(entries[0].key, "user:remote:frank");
        assert_eq!(entries[0].failures, 10);
        assert!(entries[0].locked_for > 0);
    }
}
