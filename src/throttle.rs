//! Brute-force throttling: a keyed failure limiter shared by the REST login, HTTP Basic and the
//! RADIUS front-end.
//!
//! Every attempt is checked *before* it runs ([`begin`]) and settled after ([`Ticket::finish`]).
//! The counts live in memory ([`Counts`], one short lock, never held across an await) and are
//! written behind to the state database, which gives them back when the daemon starts. An
//! attempt takes a place among the attempts in flight for its keys: a key has as many places
//! as failures it can take before its next lock (10 with nothing counted, 1 when one more
//! failure locks), and an attempt that finds none waits for one. A burst of parallel guesses
//! therefore cannot slip past the limit, parallel logins with the right password run side by
//! side and never lock anyone, and a login costs no database write unless it changes a count.
//! A success clears the user's count and takes back its own share of the source's; a failure
//! (or an attempt dropped before it is settled) adds one; an outcome that says nothing about the password (servers unavailable, no role mapped)
//! counts nothing.
//!
//! Keys:
//! - `user:remote:<name>` and `user:loopback:<name>`: a user's failures, kept apart by where
//!   they came from (the administrator rule): REST attempts from `local_networks` (default
//!   127.0.0.0/8 and ::1, IPv4-mapped too) or the Unix socket count in the loopback bucket,
//!   all others (and every RADIUS front-end attempt, whose
//!   NAS relays users from anywhere) in the remote one. An attacker who locks out `admin` from
//!   the network does not lock out `admin` on the appliance itself. Names are canonical
//!   ([`UserKey`]), so `Admin`, `ADMIN` and ` admin` share a count.
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
//! A success clears the user's count in that bucket, and of the source's count only what it
//! disproves ("disregard any previous failed attempts for that user from the same IP
//! address"): that user's share of it (`share:<address>|<user key>`), never other users'
//! failures. A source's count is also forgotten after a day without failures; a user's is
//! not, unless more than 100,000 keys are counted, when the oldest unlocked ones are
//! forgotten.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use compact_str::{CompactString, format_compact};

use crate::state::throttle::{CountChange, ThrottleState};
use portcullis_config::{Throttle, UserKey};

use crate::engine::{Outcome, Reason};
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

/// The keys one attempt counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    user: CompactString,
    source: Option<CompactString>,
    /// `share:<source>|<user key>`: this user's failures among the source's, the part of the
    /// source's count that this user's success disproves (and nothing more).
    share: Option<CompactString>,
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
                Some(source_key_compact(ip))
            }
            Origin::Relayed(Some(IpAddrOrStation::Station(hash))) => {
                let mut key = CompactString::from("source:station-");
                for b in hash {
                    key.push_str(&format_compact!("{b:02x}"));
                }
                Some(key)
            }
            Origin::Relayed(None) => None,
        };
        let user = user_key(bucket, user);
        let share = source.as_deref().map(|source| share_key(source, &user));
        Attempt {
            user,
            source,
            share,
        }
    }

    fn keys(&self) -> impl Iterator<Item = (&str, bool)> {
        std::iter::once((self.user.as_str(), true))
            .chain(self.source.as_deref().map(|source| (source, false)))
    }
}

/// `user:<bucket>:<canonical name>` ([`UserKey`]: `ALICE`, ` alice` and `ａｌｉｃｅ` are one
/// user, as every other per-user rule sees them).
fn user_key(bucket: &str, user: &str) -> CompactString {
    let name = match user.char_indices().nth(MAX_NAME_CHARS) {
        Some((end, _)) => user.get(..end).unwrap_or(user),
        None => user,
    };
    format_compact!("user:{bucket}:{}", UserKey::of(name))
}

/// The key of `user`'s share of `source`'s failures: `share:<address>|<user key>`.
fn share_key(source: &str, user: &str) -> CompactString {
    let address = source.strip_prefix("source:").unwrap_or(source);
    format_compact!("share:{address}|{user}")
}

/// The prefix of every share key of `source`.
fn shares_of(source: &str) -> String {
    share_key(source, "").into()
}

/// `source:<ip>` for IPv4 (also IPv4-mapped), `source:<prefix>/64` for IPv6.
pub fn source_key(ip: IpAddr) -> String {
    source_key_compact(ip).into()
}

/// [`source_key`], held inline.
fn source_key_compact(ip: IpAddr) -> CompactString {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format_compact!("source:{v4}"),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            format_compact!("source:{}/64", Ipv6Addr::from(bits))
        }
    }
}

/// The keys of `user` in both buckets, for an administrator clearing its lock.
pub fn user_keys(user: &str) -> [String; 2] {
    [
        user_key("remote", user).into(),
        user_key("loopback", user).into(),
    ]
}

/// What an attempt proved about the credential, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The password (or CHAP response) was right: clear the counts.
    Success,
    /// A wrong password or an unknown user: keep the failure.
    Failure,
    /// Nothing was learned about the password (no server answered, no role mapped): give the
    /// failure back.
    Neutral,
}

impl Evidence {
    /// The verdict of a sequence walk's `outcome`, read as the login answer reads it: an
    /// unavailable method is an unknown user unless remote servers are configured.
    pub fn of(outcome: &Outcome, has_remote_servers: bool) -> Evidence {
        match outcome {
            Outcome::Accept(_) => Evidence::Success,
            Outcome::Reject(Reason::NoRoleMapped) => Evidence::Neutral,
            Outcome::Reject(_) => Evidence::Failure,
            Outcome::Unavailable(_) if has_remote_servers => Evidence::Neutral,
            Outcome::Unavailable(_) => Evidence::Failure,
            // Not over yet: the answer to the challenge counts.
            Outcome::Challenge(_) => Evidence::Neutral,
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

/// An attempt that passed the check: it holds a place among the attempts in flight for its
/// keys until it is settled. Dropped unsettled, it counts as a failure.
#[derive(Debug)]
#[must_use = "settle the attempt with finish()"]
pub struct Ticket {
    inner: Option<Held>,
}

/// What a [`Ticket`] holds: the keys it reserved, and where to count the outcome.
#[derive(Debug)]
struct Held {
    db: StateDb,
    config: Throttle,
    attempt: Attempt,
}

impl Ticket {
    /// A ticket that counts nothing (throttling off).
    pub fn none() -> Ticket {
        Ticket { inner: None }
    }

    /// Settles the attempt: its outcome is counted in memory at once and written to the state
    /// database behind the answer.
    pub fn finish(mut self, verdict: Evidence) {
        if let Some(held) = self.inner.take() {
            held.settle(verdict);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(held) = self.inner.take() {
            held.settle(Evidence::Failure);
        }
    }
}

impl Held {
    fn settle(self, verdict: Evidence) {
        let counts = counts(&self.db);
        let mut table = counts.lock();
        table.settle(&self.config, &self.attempt, verdict, unix_now());
        table.write_behind(&self.db);
    }
}

/// The in-memory counts of the throttle: one row per key with failures, a lock or attempts in
/// flight. Every check and count happens here, under one short lock that is never held across
/// an await; the state database keeps a copy of each key's failures and lock, written behind
/// (coalesced per key, one transaction per batch) and read back when the daemon starts.
#[derive(Debug, Default)]
pub struct Counts {
    table: std::sync::Mutex<Table>,
    /// Held while dirty keys are taken and stored, so that writes land in the order their
    /// rows were read.
    writer: std::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Table {
    rows: HashMap<CompactString, Count>,
    /// Keys whose row changed since the last write.
    dirty: HashSet<CompactString>,
    /// Whether a write of the dirty keys is under way.
    writing: bool,
    /// When forgotten sources were last swept.
    last_sweep: i64,
}

#[derive(Debug, Default)]
struct Count {
    failures: i64,
    locked_until: i64,
    last_failure: i64,
    /// Attempts begun and not settled.
    in_flight: i64,
    /// `failures` as the state database last had it (what this node's next write adds to).
    synced: i64,
    /// Whether this node lowered the count since its last write (the write then replaces
    /// the stored count instead of adding to it).
    reset: bool,
    /// The most failures the key counts (a user's hard limit), 0 until the first failure.
    cap: i64,
    /// Attempts waiting for a place, first come first woken (a closed one gave up).
    waiters: std::collections::VecDeque<tokio::sync::oneshot::Sender<()>>,
}

impl Count {
    fn idle(&self) -> bool {
        self.in_flight == 0
            && self
                .waiters
                .iter()
                .all(tokio::sync::oneshot::Sender::is_closed)
    }

    /// Marks the count as lowered (so its next write replaces the stored one) when it is
    /// below `before`.
    fn note_lowered(&mut self, before: Option<Row>) {
        let (failures, locked_until, _) = before.unwrap_or_default();
        if self.failures < failures || self.locked_until < locked_until {
            self.reset = true;
        }
    }

    /// The row the database keeps: `None` when there is nothing to keep.
    fn stored(&self) -> Option<Row> {
        (self.failures > 0 || self.locked_until > 0).then_some((
            self.failures,
            self.locked_until,
            self.last_failure,
        ))
    }
}

/// The most keys kept. Beyond it, the sweep forgets the unlocked keys whose last failure is
/// oldest, so a spray of made-up user names cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

/// How many attempts for a key with `failures` may be in flight at once: as many as can fail
/// before the next lock, so that if all of them fail, none of them began after the point where
/// the lock should have stopped it. Parallel guesses therefore cannot pass the limit, and
/// parallel logins of one user run side by side until the count nears a lock.
fn places(config: &Throttle, failures: i64, is_user: bool) -> i64 {
    let max_failures = i64::from(config.max_failures);
    let mut next_lock = if failures >= max_failures {
        failures + 1
    } else {
        max_failures
    };
    if is_user {
        next_lock = next_lock.min(i64::from(config.hard_limit).max(failures + 1));
    }
    (next_lock - failures).max(1)
}

/// What [`Table::check`] decided.
enum Check {
    /// Places are reserved; go ahead.
    Go,
    /// A key is locked.
    Locked(Locked),
    /// A key has no free place: wait until this is woken.
    Wait(tokio::sync::oneshot::Receiver<()>),
}

/// The counts of `db`: read from it the first time, kept with it from then on.
pub fn counts(db: &StateDb) -> &Counts {
    static NONE: std::sync::OnceLock<Counts> = std::sync::OnceLock::new();
    db.memo(Counts::load).unwrap_or_else(|| {
        // Only the throttle keeps a copy with the database; anything else there is a bug,
        // and counting nowhere is the answer that keeps logins working.
        tracing::error!("throttle: the state database keeps another in-memory copy");
        NONE.get_or_init(Counts::default)
    })
}

impl Counts {
    /// The counts the database holds (a database that cannot be read starts empty, logged).
    pub fn load(db: &StateDb) -> Counts {
        let loaded = db.load_counts().map(|rows| {
            rows.into_iter()
                .map(|(key, (failures, locked_until, last_failure))| {
                    let count = Count {
                        failures,
                        locked_until,
                        last_failure,
                        synced: failures,
                        ..Count::default()
                    };
                    (key, count)
                })
                .map(|(key, count)| (CompactString::from(key), count))
                .collect::<HashMap<_, _>>()
        });
        let rows = loaded.unwrap_or_else(|e| {
            tracing::error!(error = %e, "throttle: cannot read the counts; starting from none");
            HashMap::new()
        });
        Counts {
            table: std::sync::Mutex::new(Table {
                rows,
                last_sweep: i64::MIN,
                ..Table::default()
            }),
            writer: std::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // Every change to a table leaves it consistent, so a poisoned lock is taken over.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Table {
    /// The keys `attempt` counts against under `config`: the source's only with `per_source`.
    /// A ticket keeps the configuration it began with, so it settles the keys it reserved.
    fn keys<'a>(config: &Throttle, attempt: &'a Attempt) -> impl Iterator<Item = (&'a str, bool)> {
        let with_source = config.per_source;
        attempt
            .keys()
            .filter(move |(_, is_user)| *is_user || with_source)
    }

    /// Checks `attempt` at `now` and, when nothing is locked and every key has a free place,
    /// reserves the places.
    fn check(&mut self, config: &Throttle, attempt: &Attempt, now: i64) -> Check {
        self.sweep(now);
        let mut lock: Option<i64> = None;
        for (key, _) in Self::keys(config, attempt) {
            if let Some(count) = self.rows.get(key)
                && count.locked_until > now
            {
                lock = Some(lock.map_or(count.locked_until, |l| l.max(count.locked_until)));
            }
        }
        if let Some(until) = lock {
            return Check::Locked(Locked {
                retry_after: u64::try_from((until - now).min(MAX_RETRY_AFTER)).unwrap_or(0),
                until_cleared: until == FOREVER,
            });
        }
        for (key, is_user) in Self::keys(config, attempt) {
            if let Some(count) = self.rows.get_mut(key)
                && count.in_flight >= places(config, count.failures, is_user)
            {
                let (wake, woken) = tokio::sync::oneshot::channel();
                count.waiters.retain(|w| !w.is_closed());
                count.waiters.push_back(wake);
                return Check::Wait(woken);
            }
        }
        for (key, _) in Self::keys(config, attempt) {
            match self.rows.get_mut(key) {
                Some(count) => count.in_flight += 1,
                None => {
                    self.rows.insert(
                        CompactString::from(key),
                        Count {
                            in_flight: 1,
                            ..Count::default()
                        },
                    );
                }
            }
        }
        Check::Go
    }

    /// Counts the outcome of an attempt that reserved its places at `now`.
    ///
    /// A success clears the user's count, and takes back from the source's count only this
    /// user's share of it: it proves this user's password, not that the other names tried
    /// from the same address were typos. (Clearing the whole source would let an attacker who
    /// holds one account spray guesses across every other user, a good login between every
    /// few guesses.)
    fn settle(&mut self, config: &Throttle, attempt: &Attempt, verdict: Evidence, now: i64) {
        let share = attempt.share.as_deref().filter(|_| config.per_source);
        let disproved = match (verdict, share) {
            (Evidence::Success, Some(share)) => self.take_share(share),
            (Evidence::Failure, Some(share)) => {
                self.add_share(share, now);
                0
            }
            _ => 0,
        };
        for (key, is_user) in Self::keys(config, attempt) {
            let Some(count) = self.rows.get_mut(key) else {
                continue;
            };
            count.in_flight = (count.in_flight - 1).max(0);
            let before = count.stored();
            match verdict {
                Evidence::Success if is_user => {
                    count.failures = 0;
                    count.locked_until = 0;
                    count.last_failure = 0;
                }
                Evidence::Success => {
                    count.failures = (count.failures - disproved).max(0);
                    if count.failures < i64::from(config.max_failures) && count.locked_until <= now
                    {
                        count.locked_until = 0;
                    }
                    if count.failures == 0 {
                        count.last_failure = 0;
                    }
                }
                Evidence::Failure => count_failure(config, key, is_user, count, now),
                Evidence::Neutral => {}
            }
            count.note_lowered(before);
            if count.stored() != before {
                self.dirty.insert(CompactString::from(key));
            }
            wake_waiters(config, count, is_user, now);
            self.forget_if_empty(key);
        }
    }

    /// Counts one more failure in the user's share of a source.
    fn add_share(&mut self, share: &str, now: i64) {
        let count = self.rows.entry(CompactString::from(share)).or_default();
        count.failures = count.failures.saturating_add(1);
        count.last_failure = now;
        self.dirty.insert(CompactString::from(share));
    }

    /// Forgets the user's share of a source and returns how many failures it held.
    fn take_share(&mut self, share: &str) -> i64 {
        match self.rows.remove(share) {
            Some(count) => {
                self.dirty.insert(CompactString::from(share));
                count.failures
            }
            None => 0,
        }
    }

    fn forget_if_empty(&mut self, key: &str) {
        if self
            .rows
            .get(key)
            .is_some_and(|count| count.idle() && count.stored().is_none())
        {
            self.rows.remove(key);
        }
    }

    /// Forgets sources (and users' shares of them) without a failure for a day, at most once a
    /// minute, and the oldest
    /// unlocked keys beyond [`MAX_KEYS`].
    fn sweep(&mut self, now: i64) {
        if now >= self.last_sweep && now.saturating_sub(self.last_sweep) < SWEEP_INTERVAL {
            return;
        }
        self.last_sweep = now;
        let forgotten: Vec<CompactString> = self
            .rows
            .iter()
            .filter(|(key, count)| {
                (key.starts_with("source:") || key.starts_with("share:"))
                    && count.idle()
                    && count.last_failure < now - SOURCE_MEMORY
                    && count.locked_until <= now
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in forgotten {
            self.rows.remove(&key);
            self.dirty.insert(key);
        }
        if self.rows.len() > MAX_KEYS {
            let mut evictable: Vec<(i64, CompactString)> = self
                .rows
                .iter()
                .filter(|(_, count)| count.idle() && count.locked_until <= now)
                .map(|(key, count)| (count.last_failure, key.clone()))
                .collect();
            evictable.sort_unstable();
            let excess = self.rows.len() - MAX_KEYS * 9 / 10;
            tracing::warn!(
                keys = self.rows.len(),
                forgotten = excess.min(evictable.len()),
                "throttle: too many counted keys; forgetting the oldest unlocked ones"
            );
            for (_, key) in evictable.into_iter().take(excess) {
                self.rows.remove(&key);
                self.dirty.insert(key);
            }
        }
    }

    /// Starts a write of the dirty keys on the blocking pool unless one is under way (without
    /// a tokio runtime, writes them now).
    fn write_behind(&mut self, db: &StateDb) {
        if self.writing || self.dirty.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                self.writing = true;
                let db = db.clone();
                runtime.spawn_blocking(move || write_dirty(&db));
            }
            Err(_) => {
                let batch = self.take_dirty();
                store(db, &batch);
            }
        }
    }

    fn take_dirty(&mut self) -> Vec<CountChange> {
        let keys = std::mem::take(&mut self.dirty);
        keys.into_iter()
            .map(|key| match self.rows.get_mut(&key) {
                Some(count) => {
                    let change = CountChange {
                        row: count.stored(),
                        added: (count.failures - count.synced).max(0),
                        reset: count.reset || count.failures < count.synced,
                        cap: if count.cap > 0 { count.cap } else { i64::MAX },
                        key: key.into(),
                    };
                    count.synced = count.failures;
                    count.reset = false;
                    change
                }
                None => CountChange {
                    key: key.into(),
                    row: None,
                    added: 0,
                    reset: true,
                    cap: i64::MAX,
                },
            })
            .collect()
    }

    /// Puts back the changes of a write that failed, to be written with the next one.
    fn restore(&mut self, batch: Vec<CountChange>) {
        for change in batch {
            if let Some(count) = self.rows.get_mut(change.key.as_str()) {
                count.synced -= change.added;
                count.reset |= change.reset;
            }
            self.dirty.insert(change.key.into());
        }
    }

    /// Takes in a count as the shared state database now stores it (another node's write,
    /// or this node's own coming back), keeping what this node counted and has not written.
    fn take_in(&mut self, key: String, (failures, locked_until, last_failure): Row) {
        let key = CompactString::from(key);
        let dirty = self.dirty.contains(&key);
        let count = self.rows.entry(key.clone()).or_default();
        if dirty && count.reset {
            // This node's own replacement is on its way and wins.
            return;
        }
        if dirty {
            let mine = (count.failures - count.synced).max(0);
            count.failures = failures.saturating_add(mine);
            count.locked_until = count.locked_until.max(locked_until);
            count.last_failure = count.last_failure.max(last_failure);
        } else {
            count.failures = failures;
            count.locked_until = locked_until;
            count.last_failure = last_failure;
        }
        count.synced = failures;
        // The places may have changed either way: the waiters look again.
        for waiter in count.waiters.drain(..) {
            let _ = waiter.send(());
        }
        self.forget_if_empty(&key);
    }
}

/// Records the next consecutive failure of `key` at `now`, locking it if due.
fn count_failure(config: &Throttle, key: &str, is_user: bool, count: &mut Count, now: i64) {
    count.cap = if is_user {
        i64::from(config.hard_limit)
    } else {
        i64::MAX
    };
    count.failures = if is_user {
        (count.failures + 1).min(i64::from(config.hard_limit))
    } else {
        count.failures.saturating_add(1)
    };
    count.last_failure = now;
    count.locked_until = locked_until(config, count.failures, is_user, now);
    if count.locked_until > 0 {
        tracing::warn!(
            key,
            failures = count.failures,
            seconds = count.locked_until.saturating_sub(now),
            "throttle: locked after repeated failed logins"
        );
        let kind = match (is_user, count.failures >= i64::from(config.hard_limit)) {
            (true, true) => "user_hard_limit",
            (true, false) => "user",
            (false, _) => "source",
        };
        metrics::counter!("portcullis_throttle_lockouts_total", "kind" => kind).increment(1);
    }
}

/// Wakes as many waiters of `count` as there are free places (all of them when it is locked:
/// they are refused at once instead of waiting for the lock to end).
fn wake_waiters(config: &Throttle, count: &mut Count, is_user: bool, now: i64) {
    let mut free = if count.locked_until > now {
        usize::MAX
    } else {
        usize::try_from(places(config, count.failures, is_user) - count.in_flight).unwrap_or(0)
    };
    while free > 0
        && let Some(waiter) = count.waiters.pop_front()
    {
        // A waiter that gave up takes no place.
        if waiter.send(()).is_ok() {
            free -= 1;
        }
    }
}

/// Takes the dirty keys and stores them; false when there were none.
fn write_once(db: &StateDb) -> bool {
    let counts = counts(db);
    let _writer = counts
        .writer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let batch = counts.lock().take_dirty();
    if batch.is_empty() {
        return false;
    }
    if let Err(e) = db.store_counts(&batch) {
        // Kept in memory and written with the next change (or when the database is back):
        // the counts in memory still apply meanwhile.
        tracing::error!(error = %e, keys = batch.len(), "throttle: cannot store the counts");
        counts.lock().restore(batch);
        return false;
    }
    true
}

/// Writes the dirty keys until none is left, then lets the next change start a write.
fn write_dirty(db: &StateDb) {
    loop {
        if !write_once(db) {
            let mut table = counts(db).lock();
            if table.dirty.is_empty() {
                table.writing = false;
                return;
            }
        }
    }
}

/// Stores `batch` in one transaction (a failure is logged; the counts in memory still apply).
fn store(db: &StateDb, batch: &[CountChange]) {
    let stored = db.store_counts(batch);
    if let Err(e) = stored {
        tracing::error!(error = %e, keys = batch.len(), "throttle: cannot store the counts");
    }
}

/// How the counts of a shared state database reach this node: each write of any node is
/// announced with the row it left, and taken into this node's memory at once; when the
/// announcements start again after a break, every stored count is read again.
pub fn subscription(db: &StateDb) -> (&'static str, crate::state::postgres::listen::Handler) {
    use crate::state::postgres::listen::Notice;
    let db = db.clone();
    let handler = move |notice: Notice<'_>| match notice {
        Notice::Message(payload) => {
            if let Some((key, row)) = crate::state::postgres::throttle::notice_payload(payload) {
                counts(&db).lock().take_in(key, row);
            }
        }
        Notice::Connected => {
            // Read on a thread of its own: this runs on the database driver's runtime.
            let db = db.clone();
            std::thread::spawn(move || resync(&db));
        }
        Notice::Lost => {
            tracing::warn!(
                "throttle: counting on this node alone until the state database is back"
            );
        }
    };
    (
        crate::state::postgres::throttle::CHANNEL,
        std::sync::Arc::new(handler),
    )
}

/// Reads every stored count into memory again, and writes what this node holds unwritten.
fn resync(db: &StateDb) {
    match db.load_counts() {
        Ok(rows) => {
            let mut table = counts(db).lock();
            let stored: HashSet<&str> = rows.iter().map(|(key, _)| key.as_str()).collect();
            // Keys another node cleared while the announcements were down.
            let cleared: Vec<String> = table
                .rows
                .keys()
                .filter(|key| !stored.contains(key.as_str()))
                .map(CompactString::to_string)
                .collect();
            for key in cleared {
                table.take_in(key, (0, 0, 0));
            }
            for (key, row) in rows {
                table.take_in(key, row);
            }
        }
        Err(e) => tracing::error!(error = %e, "throttle: cannot read the shared counts again"),
    }
    while write_once(db) {}
}

/// Writes every count not yet in the state database, now (at shutdown). It blocks.
pub fn flush(db: &StateDb) {
    while write_once(db) {}
}

/// Checks `attempt` against the counts and, when nothing is locked, reserves its place among
/// the attempts in flight (waiting for one when all are taken). With throttling off nothing
/// is refused.
pub async fn begin(db: &StateDb, config: &Throttle, attempt: Attempt) -> Result<Ticket, Locked> {
    if !config.enabled {
        return Ok(Ticket::none());
    }
    let mut attempt = attempt;
    loop {
        match reserve(db, config, attempt) {
            Ok(decided) => return decided,
            Err((back, woken)) => {
                attempt = back;
                // Woken when a place frees or a lock starts; a lost sender (the key cleared
                // and forgotten) is a reason to look again too.
                let _ = woken.await;
            }
        }
    }
}

/// What settling needs of `config`: all but `local_networks` (so a ticket clones no list).
fn limits(config: &Throttle) -> Throttle {
    let Throttle {
        enabled,
        max_failures,
        lockout,
        max_lockout,
        hard_limit,
        hard_lockout,
        per_source,
        local_networks: _,
    } = config;
    Throttle {
        enabled: *enabled,
        max_failures: *max_failures,
        lockout: *lockout,
        max_lockout: *max_lockout,
        hard_limit: *hard_limit,
        hard_lockout: *hard_lockout,
        per_source: *per_source,
        local_networks: Vec::new(),
    }
}

type Reserved = Result<Result<Ticket, Locked>, (Attempt, tokio::sync::oneshot::Receiver<()>)>;

/// One look at the counts: a ticket, a refusal, or a wait (registered before the table is let
/// go, so a wake between the two is not lost).
fn reserve(db: &StateDb, config: &Throttle, attempt: Attempt) -> Reserved {
    let mut table = counts(db).lock();
    match table.check(config, &attempt, unix_now()) {
        Check::Go => Ok(Ok(Ticket {
            inner: Some(Held {
                db: db.clone(),
                config: limits(config),
                attempt,
            }),
        })),
        Check::Locked(locked) => {
            metrics::counter!("portcullis_throttle_refused_total").increment(1);
            Ok(Err(locked))
        }
        Check::Wait(woken) => Err((attempt, woken)),
    }
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

type Row = crate::state::throttle::StoredCount;

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
pub fn list(db: &StateDb) -> Vec<Entry> {
    let now = unix_now();
    let table = counts(db).lock();
    let mut entries: Vec<Entry> = table
        .rows
        .iter()
        .filter(|(key, count)| count.failures > 0 && !key.starts_with("share:"))
        .map(|(key, count)| Entry {
            key: key.to_string(),
            failures: count.failures,
            locked_for: count
                .locked_until
                .saturating_sub(now)
                .clamp(0, MAX_RETRY_AFTER),
            until_cleared: count.locked_until == FOREVER,
            last_failure: count.last_failure,
        })
        .collect();
    entries.sort_unstable_by(|a, b| b.key.cmp(&a.key));
    entries
}

/// Forgets the counts of `keys`, in memory at once and in the state database before it
/// returns; the number of keys that had one.
pub async fn clear(db: &StateDb, keys: Vec<String>) -> Result<usize, StateError> {
    let mut removed = 0;
    {
        let mut table = counts(db).lock();
        // A source's users' shares of its count go with it.
        let shares: Vec<CompactString> = keys
            .iter()
            .filter(|key| key.starts_with("source:"))
            .flat_map(|source| {
                let prefix = shares_of(source);
                table
                    .rows
                    .keys()
                    .filter(move |key| key.starts_with(&prefix))
                    .cloned()
                    .collect::<Vec<CompactString>>()
            })
            .collect();
        for share in shares {
            table.rows.remove(&share);
            table.dirty.insert(share);
        }
        for key in keys {
            let Some(count) = table.rows.get_mut(key.as_str()) else {
                continue;
            };
            if count.stored().is_some() {
                removed += 1;
            }
            count.failures = 0;
            count.locked_until = 0;
            count.last_failure = 0;
            count.reset = true;
            for waiter in count.waiters.drain(..) {
                let _ = waiter.send(());
            }
            table.forget_if_empty(&key);
            table.dirty.insert(key.into());
        }
    }
    let db = db.clone();
    tokio::task::spawn_blocking(move || flush(&db))
        .await
        .map_err(|e| StateError::Task(e.to_string()))?;
    Ok(removed)
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

    /// Checks and reserves; a wait is a test failure.
    fn try_at(
        table: &mut Table,
        config: &Throttle,
        attempt: &Attempt,
        now: i64,
    ) -> Result<(), Locked> {
        match table.check(config, attempt, now) {
            Check::Go => Ok(()),
            Check::Locked(locked) => Err(locked),
            Check::Wait(_) => panic!("no free place"),
        }
    }

    /// One attempt that fails at `now`.
    fn fail_at(
        table: &mut Table,
        config: &Throttle,
        attempt: &Attempt,
        now: i64,
    ) -> Result<(), Locked> {
        try_at(table, config, attempt, now)?;
        table.settle(config, attempt, Evidence::Failure, now);
        Ok(())
    }

    fn failures(table: &Table, key: &str) -> i64 {
        table.rows.get(key).map_or(0, |c| c.failures)
    }

    fn in_flight(db: &StateDb, key: &str) -> i64 {
        counts(db).lock().rows.get(key).map_or(0, |c| c.in_flight)
    }

    #[test]
    fn keys_by_origin() {
        let config = Throttle::default();
        let peer = |text: &str| Some(text.parse::<SocketAddr>().unwrap());
        let v4 = Attempt::new("Admin", Origin::of_peer(peer("192.0.2.1:5000"), &config));
        assert_eq!(v4.user, "user:remote:admin");
        let wide = Attempt::new(
            " \u{ff21}DMIN",
            Origin::of_peer(peer("192.0.2.1:5000"), &config),
        );
        assert_eq!(wide.user, "user:remote:admin");
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
    fn places_shrink_as_a_lock_nears() {
        let config = Throttle::default();
        assert_eq!(places(&config, 0, true), 10);
        assert_eq!(places(&config, 7, true), 3);
        assert_eq!(places(&config, 9, true), 1);
        // Past the first lock every failure locks again: one at a time.
        assert_eq!(places(&config, 10, true), 1);
        assert_eq!(places(&config, 100, true), 1);
        assert_eq!(places(&config, 500, false), 1);
        let low = Throttle {
            max_failures: 5,
            hard_limit: 5,
            ..Throttle::default()
        };
        assert_eq!(places(&low, 3, true), 2);
        assert_eq!(places(&low, 3, false), 2);
    }

    #[test]
    fn tenth_failure_locks_and_success_clears() {
        let mut table = Table::default();
        let config = Throttle::default();
        let attempt = remote("alice");
        for n in 0..10 {
            assert_eq!(
                fail_at(&mut table, &config, &attempt, 100 + n),
                Ok(()),
                "attempt {n}"
            );
        }
        let locked = try_at(&mut table, &config, &attempt, 110).unwrap_err();
        assert_eq!(locked.retry_after, 59);
        assert!(!locked.until_cleared);
        // A refused attempt is not counted.
        assert_eq!(failures(&table, "user:remote:alice"), 10);
        // The lock ends; the next failure locks for twice as long.
        assert_eq!(fail_at(&mut table, &config, &attempt, 170), Ok(()));
        assert_eq!(
            try_at(&mut table, &config, &attempt, 171)
                .unwrap_err()
                .retry_after,
            119
        );
        assert_eq!(try_at(&mut table, &config, &attempt, 290), Ok(()));
        table.settle(&config, &attempt, Evidence::Success, 290);
        assert_eq!(failures(&table, "user:remote:alice"), 0);
        assert_eq!(failures(&table, "source:192.0.2.7"), 0);
        // Nothing is left to keep: the rows are gone and their deletion is due.
        assert!(table.rows.is_empty());
        assert!(table.dirty.contains("user:remote:alice"));
        assert_eq!(try_at(&mut table, &config, &attempt, 291), Ok(()));
    }

    #[test]
    fn a_success_takes_back_only_its_own_share_of_the_source() {
        let mut table = Table::default();
        let config = Throttle {
            max_failures: 3,
            ..Throttle::default()
        };
        // An attacker with one good account interleaves a good login every two guesses at
        // other users: the source still locks at the third wrong guess.
        let mut guesses = 0;
        let mut refused = None;
        for n in 0..6 {
            let victim = remote(&format!("victim{n}"));
            match fail_at(&mut table, &config, &victim, n) {
                Ok(()) => guesses += 1,
                Err(locked) => {
                    refused = Some(locked);
                    break;
                }
            }
            if n % 2 == 1 {
                let own = remote("mallory");
                try_at(&mut table, &config, &own, n).unwrap();
                table.settle(&config, &own, Evidence::Success, n);
            }
        }
        assert_eq!(guesses, 3);
        assert!(refused.is_some());
        assert_eq!(failures(&table, "source:192.0.2.7"), 3);

        // A user who mistyped and then succeeded takes back exactly their own failures.
        let mut table = Table::default();
        let config = Throttle::default();
        for n in 0..4 {
            fail_at(&mut table, &config, &remote("typo"), n).unwrap();
        }
        fail_at(&mut table, &config, &remote("other"), 5).unwrap();
        assert_eq!(failures(&table, "source:192.0.2.7"), 5);
        try_at(&mut table, &config, &remote("TYPO"), 6).unwrap();
        table.settle(&config, &remote("TYPO"), Evidence::Success, 6);
        assert_eq!(failures(&table, "source:192.0.2.7"), 1);
        assert_eq!(failures(&table, "user:remote:typo"), 0);
        assert_eq!(failures(&table, "user:remote:other"), 1);
        assert!(!table.rows.contains_key("share:192.0.2.7|user:remote:typo"));
        assert_eq!(failures(&table, "share:192.0.2.7|user:remote:other"), 1);
    }

    #[tokio::test]
    async fn shares_are_not_listed_and_go_with_a_cleared_source() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle::default();
        for user in ["a", "b"] {
            drop(begin(&db, &config, remote(user)).await.unwrap());
        }
        let keys: Vec<String> = list(&db).into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["user:remote:b", "user:remote:a", "source:192.0.2.7"]);
        assert_eq!(
            clear(&db, vec!["source:192.0.2.7".into()]).await.unwrap(),
            1
        );
        let table = counts(&db).lock();
        assert!(!table.rows.keys().any(|k| k.starts_with("share:")));
    }

    #[test]
    fn neutral_outcomes_count_nothing() {
        let mut table = Table::default();
        let config = Throttle::default();
        let attempt = remote("bob");
        for n in 0..25 {
            try_at(&mut table, &config, &attempt, n).unwrap();
            table.settle(&config, &attempt, Evidence::Neutral, n);
        }
        assert!(table.rows.is_empty());
        for n in 0..9 {
            fail_at(&mut table, &config, &attempt, n).unwrap();
        }
        try_at(&mut table, &config, &attempt, 10).unwrap();
        table.settle(&config, &attempt, Evidence::Neutral, 10);
        assert_eq!(failures(&table, "user:remote:bob"), 9);
        assert_eq!(table.rows["user:remote:bob"].in_flight, 0);
        assert_eq!(try_at(&mut table, &config, &attempt, 11), Ok(()));
    }

    #[test]
    fn hundred_failures_lock_until_cleared() {
        let mut table = Table::default();
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
            match fail_at(&mut table, &config, &attempt, now) {
                Ok(()) => counted += 1,
                Err(locked) if locked.until_cleared => break,
                Err(locked) => now += i64::try_from(locked.retry_after).unwrap(),
            }
        }
        assert_eq!(counted, 100);
        assert_eq!(failures(&table, "user:remote:carol"), 100);
        // A year later it is still locked; the loopback bucket is not.
        assert!(
            try_at(&mut table, &config, &attempt, now + 365 * 86_400)
                .unwrap_err()
                .until_cleared
        );
        let local = Attempt::new("carol", Origin::Loopback);
        assert_eq!(fail_at(&mut table, &config, &local, now), Ok(()));
        let removed = user_keys("Carol")
            .iter()
            .filter(|key| table.rows.remove(key.as_str()).is_some())
            .count();
        assert_eq!(removed, 2);
        assert_eq!(try_at(&mut table, &config, &attempt, now), Ok(()));
    }

    #[test]
    fn hard_lock_that_expires_relocks_on_the_next_failure() {
        let mut table = Table::default();
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
            assert_eq!(fail_at(&mut table, &config, &attempt, now), Ok(()));
        }
        assert_eq!(
            try_at(&mut table, &config, &attempt, 3)
                .unwrap_err()
                .retry_after,
            999
        );
        assert_eq!(fail_at(&mut table, &config, &attempt, 1002), Ok(()));
        assert_eq!(
            try_at(&mut table, &config, &attempt, 1003)
                .unwrap_err()
                .retry_after,
            999
        );
    }

    #[test]
    fn source_limit_spans_users_and_spares_loopback() {
        let mut table = Table::default();
        let config = Throttle::default();
        for n in 0..10 {
            fail_at(&mut table, &config, &remote(&format!("user{n}")), 0).unwrap();
        }
        assert!(try_at(&mut table, &config, &remote("fresh"), 1).is_err());
        for n in 0..50 {
            let local = Attempt::new(&format!("user{n}"), Origin::Loopback);
            try_at(&mut table, &config, &local, 1).unwrap();
            table.settle(&config, &local, Evidence::Success, 1);
        }
        // A day without failures after the lock ended forgets the source.
        assert_eq!(
            try_at(&mut table, &config, &remote("fresh"), 86_500),
            Ok(())
        );
        assert_eq!(failures(&table, "source:192.0.2.7"), 0);
        assert!(table.dirty.contains("source:192.0.2.7"));
    }

    #[test]
    fn beyond_the_key_limit_the_oldest_unlocked_keys_are_forgotten() {
        let mut table = Table::default();
        let config = Throttle {
            per_source: false,
            ..Throttle::default()
        };
        for n in 0..=MAX_KEYS {
            let now = i64::try_from(n).unwrap();
            let attempt = remote(&format!("sprayed{n}"));
            table.last_sweep = now;
            fail_at(&mut table, &config, &attempt, now).unwrap();
        }
        // A locked user is never forgotten.
        table.last_sweep = 0;
        let locked = remote("target");
        for _ in 0..10 {
            fail_at(&mut table, &config, &locked, 0).unwrap();
        }
        table.last_sweep = i64::MIN;
        try_at(&mut table, &config, &remote("next"), 1).unwrap();
        assert!(
            table.rows.len() <= MAX_KEYS * 9 / 10 + 1,
            "{}",
            table.rows.len()
        );
        assert_eq!(failures(&table, "user:remote:target"), 10);
        assert!(!table.rows.contains_key("user:remote:sprayed0"));
        assert!(
            table
                .rows
                .contains_key(format!("user:remote:sprayed{MAX_KEYS}").as_str())
        );
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
                .finish(Evidence::Failure);
        }
        assert!(list(&db).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_successes_never_lock_and_take_at_most_ten_places() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle::default();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (db, config) = (db.clone(), config.clone());
                tokio::spawn(async move {
                    let ticket = begin(&db, &config, remote("grace")).await?;
                    let held = in_flight(&db, "user:remote:grace");
                    tokio::task::yield_now().await;
                    ticket.finish(Evidence::Success);
                    Ok::<i64, Locked>(held)
                })
            })
            .collect();
        for task in tasks {
            let held = task.await.unwrap().unwrap();
            assert!((1..=10).contains(&held), "{held} in flight");
        }
        assert!(list(&db).is_empty());
        assert!(counts(&db).lock().rows.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_guesses_cannot_pass_the_limit() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle::default();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (db, config) = (db.clone(), config.clone());
                tokio::spawn(async move {
                    let Ok(ticket) = begin(&db, &config, remote("frank")).await else {
                        return false;
                    };
                    tokio::task::yield_now().await;
                    // An attempt dropped before it is settled is a failure.
                    drop(ticket);
                    true
                })
            })
            .collect();
        let mut passed = 0;
        for task in tasks {
            if task.await.unwrap() {
                passed += 1;
            }
        }
        assert_eq!(passed, 10);
        let entries = list(&db);
        assert_eq!(entries[0].key, "user:remote:frank");
        assert_eq!(entries[0].failures, 10);
        assert!(entries[0].locked_for > 0);
        let table = counts(&db).lock();
        assert!(table.rows["user:remote:frank"].idle());
        assert_eq!(table.rows["user:remote:frank"].in_flight, 0);
    }

    #[tokio::test]
    async fn a_wait_given_up_leaves_nothing_behind() {
        let db = StateDb::in_memory().unwrap();
        let config = Throttle::default();
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(begin(&db, &config, remote("heidi")).await.unwrap());
        }
        let eleventh = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            begin(&db, &config, remote("heidi")),
        )
        .await;
        assert!(eleventh.is_err(), "the eleventh attempt did not wait");
        assert!(
            counts(&db).lock().rows["user:remote:heidi"]
                .waiters
                .iter()
                .all(tokio::sync::oneshot::Sender::is_closed)
        );
        // A place freed lets a waiter in.
        let waiter = tokio::spawn({
            let (db, config) = (db.clone(), config.clone());
            async move {
                begin(&db, &config, remote("heidi"))
                    .await
                    .map(|t| t.finish(Evidence::Success))
            }
        });
        tokio::task::yield_now().await;
        held.pop().unwrap().finish(Evidence::Success);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        for ticket in held {
            ticket.finish(Evidence::Success);
        }
        assert!(counts(&db).lock().rows.is_empty());
    }

    #[tokio::test]
    async fn counts_are_written_behind_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let config = Throttle::default();
        for _ in 0..3 {
            begin(&db, &config, remote("ivan"))
                .await
                .unwrap()
                .finish(Evidence::Failure);
        }
        flush(&db);
        drop(db);
        let db = StateDb::open(dir.path()).unwrap();
        let entries = list(&db);
        let ivan = entries
            .iter()
            .find(|e| e.key == "user:remote:ivan")
            .unwrap();
        assert_eq!(ivan.failures, 3);
        let source = entries
            .iter()
            .find(|e| e.key == "source:192.0.2.7")
            .unwrap();
        assert_eq!(source.failures, 3);
        // Clearing reaches the database before it returns.
        assert_eq!(clear(&db, user_keys("IVAN").to_vec()).await.unwrap(), 1);
        drop(db);
        let db = StateDb::open(dir.path()).unwrap();
        let keys: Vec<String> = list(&db).into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["source:192.0.2.7"]);
    }
}
