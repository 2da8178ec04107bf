//! Soak test of the RADIUS front-end: N logins through the real daemon, with seeded random
//! faults on both hops (client -> portcullis, portcullis -> FreeRADIUS), a mix of right and
//! wrong passwords over many users, K requests outstanding. Run by `scripts/soak`, not by CI.
//!
//! Checks every answer: an Access-Accept only for a right password, an Access-Reject for a
//! wrong one, "servers unavailable" counted apart, every request answered (the client
//! retransmits like a real NAS; a request still unanswered after all sends is lost), and every
//! lockout answer against the brute-force throttle's rule ([`Oracle`]). Samples the daemon's
//! resident memory. Exits non-zero on a false accept, a false reject (a lockout the rule
//! cannot explain is one), a password checked while the user was certainly locked, or a lost
//! answer.
//!
//! ```text
//! soak --portcullis PATH [--logins N] [--outstanding K] [--seed S] [--pap-percent P]
//!      [--hot-percent H] [--max-seconds T]
//! ```
//!
//! `--max-seconds` stops starting new logins after T seconds (the ones under way finish and
//! are checked); the summary says how many ran.
//!
//! The mix: H% of the logins (default 10) hammer four hot users with mostly wrong passwords
//! (alice and two generated users, and mallory, who does not exist), so that the throttle
//! locks them, the locks run out, double, reach the hard limit and are cleared by a right
//! password. The rest go to 1,000 generated users (70% right password, 25% wrong) and to
//! 20,000 names that do not exist (5%), which the throttle should practically never lock.
//!
//! Most logins use CHAP, which the front-end passes straight to FreeRADIUS; a PAP login runs
//! the local method first (one argon2 hash, tens of milliseconds of CPU), so PAP is a small
//! share by default to keep a million logins within reach.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../tests/support/fault_proxy.rs"]
mod fault_proxy;
#[allow(dead_code)]
#[path = "../tests/support/freeradius.rs"]
mod freeradius;
#[allow(dead_code)]
#[path = "../tests/support/pki.rs"]
mod pki;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fault_proxy::{Counters, Rates, Rng, Schedule, UdpProxy};
use freeradius::{ALICE_PASSWORD, DEFAULT_SECRET, DEFAULT_USERS, TEST_DICTIONARY, radiusd_conf};
use portcullis_protocol::radius::{Builder, Code, Packet, Secret, attr_type, chap_response};
use tokio::net::UdpSocket;

/// The front-end client secret.
const SECRET: &str = "soak-frontend-secret-0123";
/// What the front-end says when the servers did not answer.
const UNAVAILABLE: &str = "Authentication servers unavailable";
/// What the front-end says to a locked user (`portcullis::throttle::RADIUS_LOCKED`).
const LOCKED: &str = "Account temporarily locked after too many failed logins";
/// How long the soak client waits for each send, and how many sends it makes: together well
/// over the longest walk (1 s x 3 tries upstream). A retransmission that arrives while the
/// walk runs is dropped by the front-end; one after it gets the cached answer. The client hop
/// breaks about 3% of exchanges on purpose, so the sends after the walk must be enough that
/// losing every one of them (about 0.03^6) does not happen in a million logins: a lost
/// answer then means portcullis did not answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
const CLIENT_SENDS: u32 = 8;
/// Replies the front-end remembers for duplicates (default 4,096, two seconds at this rate):
/// more than the logins of the client's whole retransmission window (8 sends x 2 s, plus a
/// delayed copy) at 3,000 logins/s, so that a retransmission never starts a second walk of a
/// login, which would count a second failure the oracle does not know of.
const DEDUP_CACHE: u32 = 65_536;

struct Args {
    portcullis: PathBuf,
    logins: u64,
    outstanding: usize,
    seed: u64,
    pap_percent: u64,
    hot_percent: u64,
    max_seconds: Option<u64>,
}

fn args() -> Args {
    let mut args = Args {
        portcullis: PathBuf::from("target/release/portcullis"),
        logins: 1_000_000,
        outstanding: 64,
        seed: 0x50a6,
        pap_percent: 2,
        hot_percent: 10,
        max_seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--portcullis" => args.portcullis = value.into(),
            "--logins" => args.logins = value.parse().expect("--logins N"),
            "--outstanding" => args.outstanding = value.parse().expect("--outstanding K"),
            "--seed" => args.seed = value.parse().expect("--seed S"),
            "--pap-percent" => args.pap_percent = value.parse().expect("--pap-percent P"),
            "--hot-percent" => args.hot_percent = value.parse().expect("--hot-percent H"),
            "--max-seconds" => args.max_seconds = Some(value.parse().expect("--max-seconds T")),
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// Tallies of the run.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    accepts: AtomicU64,
    rejects: AtomicU64,
    /// Lockout answers the throttle's rule explains.
    locked: AtomicU64,
    /// ... of which the rule required (the user was certainly locked).
    locked_certain: AtomicU64,
    unavailable: AtomicU64,
    false_accepts: AtomicU64,
    /// Rejects of a right password, and lockouts the rule cannot explain.
    false_rejects: AtomicU64,
    /// Accepts or rejects of a login sent while the user was certainly locked: its password
    /// was checked when it should not have been.
    checked_while_locked: AtomicU64,
    lost: AtomicU64,
    retransmits: AtomicU64,
    bad_replies: AtomicU64,
    hot_logins: AtomicU64,
    hot_locked: AtomicU64,
    spread_locked: AtomicU64,
    /// Diagnostic lines printed (they stop after [`MAX_DIAGNOSTICS`]).
    diagnostics: AtomicU64,
}

/// Diagnostic lines printed at most (a broken rule would print one per login).
const MAX_DIAGNOSTICS: u64 = 200;

impl Tally {
    /// Logins answered or given up.
    fn done(&self) -> u64 {
        get(&self.accepts)
            + get(&self.rejects)
            + get(&self.locked)
            + get(&self.unavailable)
            + get(&self.false_accepts)
            + get(&self.false_rejects)
            + get(&self.checked_while_locked)
            + get(&self.lost)
    }

    fn failed(&self) -> bool {
        get(&self.false_accepts) > 0
            || get(&self.false_rejects) > 0
            || get(&self.checked_while_locked) > 0
            || get(&self.lost) > 0
    }

    fn diagnose(&self, line: std::fmt::Arguments<'_>) {
        let n = self.diagnostics.fetch_add(1, Ordering::Relaxed);
        if n < MAX_DIAGNOSTICS {
            eprintln!("{line}");
        } else if n == MAX_DIAGNOSTICS {
            eprintln!("(further diagnostics left out)");
        }
    }
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The brute-force throttle as the soak configures it (`[throttle]` in the daemon's
/// configuration is written from this), and the rule the oracle judges lockouts by: after
/// `max_failures` consecutive failures of a user the user is locked for `lockout` seconds,
/// each further failure doubles the lock up to `max_lockout`, at `hard_limit` failures it is
/// `hard_lockout` (the count stays at the limit), and a success clears the count. Shorter than
/// the defaults (10; 60 s to 3600 s; 100 and a day) so that locks run out, double and reach
/// the hard limit within minutes.
struct Rule {
    max_failures: u32,
    lockout: u64,
    max_lockout: u64,
    hard_limit: u32,
    hard_lockout: u64,
}

const RULE: Rule = Rule {
    max_failures: 10,
    lockout: 2,
    max_lockout: 16,
    hard_limit: 25,
    hard_lockout: 60,
};

/// Clock reading slack of the oracle's time comparisons, in seconds (client and daemon read
/// the same clock; this only keeps the judgement on the safe side of a rounding).
const SLACK: f64 = 0.25;

impl Rule {
    /// The `[throttle]` section. The soak sends no Calling-Station-Id, so the front-end counts
    /// no source key anyway; the oracle models the user's key alone.
    fn config(&self) -> String {
        format!(
            "[throttle]\nenabled = true\nmax_failures = {}\nlockout = {}\nmax_lockout = {}\n\
             hard_limit = {}\nhard_lockout = {}\nper_source = false\n",
            self.max_failures, self.lockout, self.max_lockout, self.hard_limit, self.hard_lockout
        )
    }

    /// Seconds of the lock set by the `failures`-th consecutive failure (0: none).
    fn period(&self, failures: u32) -> f64 {
        if failures >= self.hard_limit {
            return match self.hard_lockout {
                0 => f64::INFINITY,
                period => period as f64,
            };
        }
        if failures < self.max_failures {
            return 0.0;
        }
        let doublings = (failures - self.max_failures).min(40);
        self.lockout
            .saturating_mul(1 << doublings)
            .min(self.max_lockout) as f64
    }

    /// The longest lock a count of at most `failures` can set.
    fn longest(&self, failures: u32) -> f64 {
        (self.max_failures..=failures.min(self.hard_limit))
            .map(|f| self.period(f))
            .fold(0.0, f64::max)
    }

    /// The shortest lock a count of at least `failures` can set.
    fn shortest(&self, failures: u32) -> f64 {
        (failures.max(self.max_failures)..=self.hard_limit.max(failures))
            .map(|f| self.period(f))
            .fold(f64::INFINITY, f64::min)
    }
}

/// The generated users FreeRADIUS knows besides alice, bob and signed.
const USERS: u64 = 1000;
/// Names of users that do not exist, drawn for the spread's unknown-user logins.
const GHOSTS: u64 = 20_000;
/// The hot users: name, right password (none: the user does not exist) and how many of their
/// logins in a hundred use it.
const HOT: [(&str, Option<&str>, u64); 4] = [
    ("alice", Some(ALICE_PASSWORD), 50),
    ("hot1", Some("hot1-password"), 25),
    ("hot2", Some("hot2-password"), 25),
    ("mallory", None, 0),
];

fn spread_user(i: u64) -> String {
    format!("user{i:04}")
}

fn spread_password(i: u64) -> String {
    format!("user{i:04}-password-{:x}", i.wrapping_mul(0x9e37_79b9))
}

/// FreeRADIUS's `users` file: the test users, then the generated ones (with the role the
/// daemon maps), then the catch-all reject.
fn users_file() -> String {
    let mut extra = String::new();
    let generated = (0..USERS)
        .map(|i| (spread_user(i), spread_password(i)))
        .chain(
            HOT.iter()
                .filter(|(name, _, _)| *name != "alice")
                .filter_map(|(name, password, _)| Some(((*name).to_string(), (*password)?.into()))),
        );
    for (name, password) in generated {
        writeln!(
            extra,
            "{name}\tCleartext-Password := \"{password}\"\n\tPortcullis-Test-Role = \"2\"\n"
        )
        .unwrap();
    }
    let catch_all = "DEFAULT\tAuth-Type := Reject";
    assert!(DEFAULT_USERS.contains(catch_all), "DEFAULT_USERS changed");
    DEFAULT_USERS.replacen(catch_all, &format!("{extra}{catch_all}"), 1)
}

/// Seconds since the epoch, as the daemon's throttle reads the clock (it keeps whole seconds).
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What the oracle made of an answer.
enum Judged {
    Accept,
    Reject,
    /// A lockout the rule explains; `certain`: the rule required it.
    Locked {
        certain: bool,
    },
    Unavailable,
    FalseAccept,
    FalseReject,
    /// A lockout no order of the attempts can explain.
    FalseLock(String),
    /// An accept or a reject of a login sent while the user was certainly locked.
    CheckedWhileLocked(String),
    Lost,
}

/// The oracle's model of the throttle: per user, what the client knows of the attempts that
/// can change the daemon's count of consecutive failures.
///
/// The daemon checks an attempt (lock and place) and settles it (success, failure, nothing)
/// at moments the client cannot see, but both lie between the login's first send (`sent`)
/// and the arrival of its answer (`answered`), and the daemon's clock is the client's. With K
/// outstanding and faults on both hops, attempts of one user overlap and settle in any order
/// their intervals allow. So the model keeps bounds, not a count:
///
/// - An accept settled a success (it clears the count and the lock); a plain reject settled a
///   failure; a lockout or "servers unavailable" settled nothing. A login still unanswered
///   (or lost) may yet settle a failure (wrong password) or a success (right password).
/// - **Upper bound** (judges a lockout answer): the failures that can have settled in a row
///   before the lockout was decided are the rejects not definitely followed by a success that
///   settled before the locked login was sent (a success settled before the locked login was
///   sent clears every failure answered before that success was sent), plus every wrong
///   password still unanswered. A lockout is right when that bound reaches `max_failures` and
///   the longest lock such a count sets, counted from the latest moment the last of those
///   failures can have settled, lasts past the moment the locked login was sent. Otherwise
///   it is a false reject.
/// - **Lower bound** (judges an answer that checked a password): the rejects sent after the
///   last accept arrived and answered before this login was sent certainly settled in a row
///   before it was checked, when no right password of the user is unanswered (one could have
///   cleared the count in between). When they are `max_failures` or more and the shortest lock
///   their count sets, from the latest of their sends, outlasts this login's answer, the user
///   was certainly locked when this login was checked: its accept or reject is a failure (a
///   password checked while locked).
///
/// Memory stays bounded: failures older than the hard limit's count of failures do not change
/// either bound, and successes and failures that no login still unanswered can see are
/// forgotten.
#[derive(Default)]
struct Oracle {
    users: Mutex<HashMap<String, UserModel>>,
}

#[derive(Default)]
struct UserModel {
    next: u64,
    /// Unanswered logins: sent, right password.
    in_flight: BTreeMap<u64, (f64, bool)>,
    /// Lost logins (never answered): may settle any time.
    lost_wrong: u32,
    lost_right: u32,
    /// Settled failures (sent, answered) in the order they were answered; the newest
    /// `hard_limit`.
    failures: VecDeque<(f64, f64)>,
    /// Settled successes (answered, latest send of any success answered by then), in the
    /// order they were answered.
    successes: VecDeque<(f64, f64)>,
}

impl Oracle {
    /// Registers a login of `user` about to be sent: its key for [`Oracle::judge`].
    fn start(&self, user: &str, right: bool) -> u64 {
        let mut users = self.users.lock().unwrap();
        let model = users.entry(user.to_string()).or_default();
        let key = model.next;
        model.next += 1;
        model.in_flight.insert(key, (unix_now(), right));
        key
    }

    /// Judges the answer to login `key` of `user` (none: lost) and records what it settled.
    fn judge(&self, user: &str, key: u64, right: bool, answer: Option<Verdict>) -> Judged {
        let mut users = self.users.lock().unwrap();
        let model = users.get_mut(user).unwrap();
        let answered = unix_now();
        let (sent, _) = model.in_flight.remove(&key).unwrap();
        let judged = match answer {
            None => {
                if right {
                    model.lost_right += 1;
                } else {
                    model.lost_wrong += 1;
                }
                Judged::Lost
            }
            Some(Verdict::Accept) => {
                let judged = if !right {
                    Judged::FalseAccept
                } else if let Some(why) = model.certainly_locked(sent, answered) {
                    Judged::CheckedWhileLocked(why)
                } else {
                    Judged::Accept
                };
                model.succeeded(sent, answered);
                judged
            }
            Some(Verdict::Reject) => {
                let judged = if right {
                    Judged::FalseReject
                } else if let Some(why) = model.certainly_locked(sent, answered) {
                    Judged::CheckedWhileLocked(why)
                } else {
                    Judged::Reject
                };
                model.failed(sent, answered);
                judged
            }
            Some(Verdict::Locked) => match model.could_be_locked(sent, answered) {
                Ok(()) => Judged::Locked {
                    certain: model.certainly_locked(sent, answered).is_some(),
                },
                Err(why) => Judged::FalseLock(why),
            },
            Some(Verdict::Unavailable) => Judged::Unavailable,
        };
        model.forget(answered);
        if model.idle() {
            users.remove(user);
        }
        judged
    }
}

impl UserModel {
    /// The latest send of a success answered before `sent` (whatever failed before it was
    /// sent was cleared before `sent`).
    fn cleared_before(&self, sent: f64) -> f64 {
        let n = self
            .successes
            .partition_point(|(answered, _)| *answered < sent);
        n.checked_sub(1)
            .and_then(|i| self.successes.get(i))
            .map_or(f64::NEG_INFINITY, |(_, latest)| *latest)
    }

    /// Ok when a lock can have refused a login sent at `sent` and answered at `answered`.
    fn could_be_locked(&self, sent: f64, answered: f64) -> Result<(), String> {
        let cleared = self.cleared_before(sent);
        let from = self.failures.partition_point(|(_, a)| *a < cleared);
        let settled = self.failures.len() - from;
        let pending =
            self.in_flight.values().filter(|(_, right)| !right).count() + self.lost_wrong as usize;
        let most = u32::try_from(settled + pending)
            .unwrap_or(u32::MAX)
            .min(RULE.hard_limit);
        if most < RULE.max_failures {
            return Err(format!(
                "at most {most} failures in a row ({settled} answered, {pending} unanswered)"
            ));
        }
        let last = if pending > 0 {
            answered
        } else {
            self.failures.back().map_or(f64::NEG_INFINITY, |(_, a)| *a)
        };
        let until = last.floor() + RULE.longest(most) + 1.0;
        if sent < until + SLACK {
            Ok(())
        } else {
            Err(format!(
                "{most} failures in a row at most, the last answered {:.2} s before it was sent: \
                 any lock had run out",
                sent - last
            ))
        }
    }

    /// Why the user was certainly locked when a login sent at `sent` and answered at
    /// `answered` was checked, if it was.
    fn certainly_locked(&self, sent: f64, answered: f64) -> Option<String> {
        if self.lost_right > 0 || self.in_flight.values().any(|(_, right)| *right) {
            return None;
        }
        let cleared = self.successes.back().map_or(f64::NEG_INFINITY, |(a, _)| *a);
        let chain = self
            .failures
            .iter()
            .filter(|(s, a)| *s >= cleared && *a <= sent);
        let count = u32::try_from(chain.clone().count()).unwrap_or(u32::MAX);
        let latest = chain.map(|(s, _)| *s).fold(f64::NEG_INFINITY, f64::max);
        if count < RULE.max_failures {
            return None;
        }
        let until = latest.floor() + RULE.shortest(count);
        (answered + SLACK < until).then(|| {
            format!(
                "{count} failures in a row answered before it was sent, locked until at least \
                 {:.2} s after it was answered",
                until - answered
            )
        })
    }

    fn succeeded(&mut self, sent: f64, answered: f64) {
        let latest = self.successes.back().map_or(sent, |(_, l)| l.max(sent));
        self.successes.push_back((answered, latest));
    }

    fn failed(&mut self, sent: f64, answered: f64) {
        self.failures.push_back((sent, answered));
        while self.failures.len() > RULE.hard_limit as usize {
            self.failures.pop_front();
        }
    }

    /// Forgets what no login still to be judged can see: every such login was sent after
    /// the earliest unanswered one, so the successes answered before that send fold into the
    /// latest of them, and the failures answered before its latest send never count again.
    fn forget(&mut self, now: f64) {
        let horizon = self
            .in_flight
            .values()
            .map(|(sent, _)| *sent)
            .fold(now, f64::min);
        while self
            .successes
            .get(1)
            .is_some_and(|(answered, _)| *answered < horizon)
        {
            self.successes.pop_front();
        }
        if let Some(&(answered, latest)) = self.successes.front()
            && answered < horizon
        {
            while self.failures.front().is_some_and(|(_, a)| *a < latest) {
                self.failures.pop_front();
            }
        }
    }

    /// Whether the model says nothing a fresh one would not.
    fn idle(&self) -> bool {
        self.in_flight.is_empty()
            && self.lost_wrong == 0
            && self.lost_right == 0
            && self.failures.is_empty()
    }
}

/// FreeRADIUS in the foreground without debug output, four threads, no per-login log line.
struct Radiusd {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Radiusd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn start_freeradius(dir: &Path) -> Radiusd {
    let raddb = dir.join("raddb");
    std::fs::create_dir_all(&raddb).unwrap();
    let auth = free_udp_port();
    let acct = free_udp_port();
    // FreeRADIUS must insist on the Message-Authenticator portcullis sends: the test
    // configuration does not, and a corruption that flips that attribute's type (into a
    // CHAP-Challenge, say) then passes as a different, honest-looking request whose answer is
    // a reject for the right password.
    let conf = radiusd_conf(&raddb, DEFAULT_SECRET, auth, acct)
        .replace(
            "require_message_authenticator = no",
            "require_message_authenticator = yes",
        )
        .replace("auth = yes", "auth = no")
        .replace("max_requests = 1024", "max_requests = 65536")
        .replace("start_servers = 1", "start_servers = 4")
        .replace("max_servers = 1", "max_servers = 4")
        .replace("max_spare_servers = 1", "max_spare_servers = 4");
    std::fs::write(raddb.join("radiusd.conf"), conf).unwrap();
    std::fs::write(raddb.join("users"), users_file()).unwrap();
    std::fs::write(raddb.join("acct_users"), "").unwrap();
    std::fs::write(raddb.join("dictionary"), TEST_DICTIONARY).unwrap();
    let log = std::fs::File::create(dir.join("freeradius.log")).unwrap();
    let child = Command::new("/usr/sbin/freeradius")
        .arg("-f")
        .arg("-d")
        .arg(&raddb)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("freeradius");
    let server = Radiusd { child, addr: auth };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(dir.join("freeradius.log")).unwrap_or_default();
        if text.contains("Ready to process requests") {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "FreeRADIUS did not start:\n{}",
        std::fs::read_to_string(dir.join("freeradius.log")).unwrap_or_default()
    );
}

/// The daemon with the RADIUS front-end, RADIUS upstream at `upstream`.
struct Daemon {
    child: Child,
    radius: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_portcullis(binary: &Path, dir: &Path, upstream: SocketAddr, outstanding: usize) -> Daemon {
    let config = format!(
        r#"
[authentication]
current_sequence = 3
dead_time = 0

[radius.settings]
connection_timeout = 1
max_number_of_tries = 3

[[radius.servers]]
id = 1
order = 0
address = "{}"
port = {}
secret = "{DEFAULT_SECRET}"

[[radius.role_mappings]]
role = "Administrator"
attribute = 17164
attribute_value = "2"

[radius_frontend]
max_in_flight = {in_flight}
dedup_cache = {dedup}

[[radius_frontend.clients]]
id = 1
name = "soak"
address = "127.0.0.1"
secret = "{SECRET}"
require_message_authenticator = "yes"

{throttle}"#,
        upstream.ip(),
        upstream.port(),
        in_flight = outstanding.max(256),
        dedup = DEDUP_CACHE,
        throttle = RULE.config(),
    );
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(binary)
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--radius-listen")
        .arg("127.0.0.1:0")
        .env("PORTCULLIS_ADMIN_PASSWORD", "soak-admin-password")
        // The start-up lines only: no log line per login.
        .env(
            "RUST_LOG",
            "warn,portcullis=info,portcullis::frontend=warn,portcullis::engine=error,\
             portcullis::upstream=error",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portcullis");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("RADIUS front-end listening on ").nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(rest.trim().to_string());
                }
            } else if line.contains("ERROR") || line.contains("WARN") {
                eprintln!("portcullis: {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("portcullis did not start");
    Daemon {
        child,
        radius: addr.parse().unwrap(),
    }
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One login: what was sent, what is right.
struct Login {
    user: String,
    password: String,
    chap: bool,
    right: bool,
    /// One of the [`HOT`] users.
    hot: bool,
}

fn pick(rng: &mut Rng, pap_percent: u64, hot_percent: u64) -> Login {
    let chap = rng.below(100) >= pap_percent;
    let guess = |rng: &mut Rng| format!("guess-{}", rng.below(1_000_000));
    if rng.below(100) < hot_percent {
        let (user, password, right_percent) = HOT[rng.below(HOT.len() as u64) as usize];
        let right = rng.below(100) < right_percent && password.is_some();
        let password = match password {
            Some(password) if right => password.to_string(),
            _ => guess(rng),
        };
        return Login {
            user: user.to_string(),
            right,
            password,
            chap,
            hot: true,
        };
    }
    // 70% a right password, 25% a wrong one, 5% a user that does not exist.
    let draw = rng.below(100);
    let (user, password, right) = if draw < 5 {
        (format!("ghost{:05}", rng.below(GHOSTS)), guess(rng), false)
    } else {
        let i = rng.below(USERS);
        if draw < 30 {
            (spread_user(i), guess(rng), false)
        } else {
            (spread_user(i), spread_password(i), true)
        }
    };
    Login {
        user,
        password,
        chap,
        right,
        hot: false,
    }
}

fn request(login: &Login, id: u8, rng: &mut Rng) -> (Vec<u8>, [u8; 16]) {
    let mut authenticator = [0u8; 16];
    for chunk in authenticator.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    let secret = Secret::new(SECRET.as_bytes());
    let mut buf = [0u8; 4096];
    let mut b = Builder::access_request(&mut buf, id, &authenticator).unwrap();
    b.attribute(attr_type::USER_NAME, login.user.as_bytes())
        .unwrap();
    let password = login.password.as_bytes();
    if login.chap {
        let ident = id;
        // The Request Authenticator serves as the challenge (RFC 2865 §2.2).
        let response = chap_response(ident, password, &authenticator);
        b.chap_password(ident, &response).unwrap();
    } else {
        b.user_password(password, &secret).unwrap();
    }
    let len = b.finish_request(&secret).unwrap();
    (buf[..len].to_vec(), authenticator)
}

enum Verdict {
    Accept,
    Reject,
    /// The throttle refused the login (Reply-Message [`LOCKED`]).
    Locked,
    Unavailable,
}

/// A verified, signed reply to the request with `id` and `authenticator`.
fn verdict(reply: &[u8], id: u8, authenticator: &[u8; 16]) -> Option<Verdict> {
    let packet = Packet::new_checked(reply).ok()?;
    if packet.identifier() != id {
        return None;
    }
    let signature = packet
        .verify_reply(authenticator, &Secret::new(SECRET.as_bytes()))
        .ok()?;
    if signature != portcullis_protocol::radius::Signature::Signed {
        return None;
    }
    match packet.code() {
        Code::AccessAccept => Some(Verdict::Accept),
        Code::AccessReject => {
            let says = |message: &str| {
                packet
                    .attributes()
                    .any(|a| a.typ() == attr_type::REPLY_MESSAGE && a.value() == message.as_bytes())
            };
            Some(if says(UNAVAILABLE) {
                Verdict::Unavailable
            } else if says(LOCKED) {
                Verdict::Locked
            } else {
                Verdict::Reject
            })
        }
        _ => None,
    }
}

/// What every client task shares.
struct Run {
    target: SocketAddr,
    next: AtomicU64,
    total: u64,
    seed: u64,
    pap_percent: u64,
    hot_percent: u64,
    deadline: Option<Instant>,
    tally: Tally,
    oracle: Oracle,
}

async fn client(run: Arc<Run>) {
    let tally = &run.tally;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(run.target).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut id: u8 = 0;
    loop {
        if run.deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let index = run.next.fetch_add(1, Ordering::Relaxed);
        if index >= run.total {
            return;
        }
        // Each login's choices come from its own index, whichever worker runs it. (The fault
        // schedules are seeded too, but which datagram meets which fault depends on timing.)
        let mut rng = Rng::new(run.seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let login = pick(&mut rng, run.pap_percent, run.hot_percent);
        id = id.wrapping_add(1);
        let (packet, authenticator) = request(&login, id, &mut rng);
        tally.sent.fetch_add(1, Ordering::Relaxed);
        if login.hot {
            tally.hot_logins.fetch_add(1, Ordering::Relaxed);
        }
        let key = run.oracle.start(&login.user, login.right);
        let mut answer = None;
        'sends: for send in 0..CLIENT_SENDS {
            if send > 0 {
                tally.retransmits.fetch_add(1, Ordering::Relaxed);
            }
            let _ = socket.send(&packet).await;
            let deadline = tokio::time::Instant::now() + CLIENT_TIMEOUT;
            loop {
                match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(Err(_)) => continue,
                    Ok(Ok(n)) => match verdict(&buf[..n], id, &authenticator) {
                        Some(v) => {
                            answer = Some(v);
                            break 'sends;
                        }
                        // Damaged on the way, or a late answer to an earlier request.
                        None => {
                            tally.bad_replies.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                }
            }
        }
        let what = || format!("login {index} ({} chap={})", login.user, login.chap);
        let count = |counter: &AtomicU64| {
            counter.fetch_add(1, Ordering::Relaxed);
        };
        match run.oracle.judge(&login.user, key, login.right, answer) {
            Judged::Lost => {
                count(&tally.lost);
                tally.diagnose(format_args!("lost: {}", what()));
            }
            Judged::Accept => count(&tally.accepts),
            Judged::Reject => count(&tally.rejects),
            Judged::Locked { certain } => {
                count(&tally.locked);
                if certain {
                    count(&tally.locked_certain);
                }
                count(if login.hot {
                    &tally.hot_locked
                } else {
                    &tally.spread_locked
                });
            }
            Judged::Unavailable => count(&tally.unavailable),
            Judged::FalseAccept => {
                count(&tally.false_accepts);
                tally.diagnose(format_args!("FALSE ACCEPT: {}", what()));
            }
            Judged::FalseReject => {
                count(&tally.false_rejects);
                tally.diagnose(format_args!("false reject: {}", what()));
            }
            Judged::FalseLock(why) => {
                count(&tally.false_rejects);
                tally.diagnose(format_args!(
                    "false reject (locked against the rule): {}: {why}",
                    what()
                ));
            }
            Judged::CheckedWhileLocked(why) => {
                count(&tally.checked_while_locked);
                tally.diagnose(format_args!(
                    "PASSWORD CHECKED WHILE LOCKED: {} (right password: {}): {why}",
                    what(),
                    login.right
                ));
            }
        }
    }
}

fn describe(name: &str, c: &Counters) -> String {
    format!(
        "{name}: {} datagrams, dropped {}, delayed {}, duplicated {}, reordered {}, corrupted {}, \
         truncated {}",
        Counters::get(&c.seen),
        Counters::get(&c.dropped),
        Counters::get(&c.delayed),
        Counters::get(&c.duplicated),
        Counters::get(&c.reordered),
        Counters::get(&c.corrupted),
        Counters::get(&c.truncated),
    )
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let radiusd = start_freeradius(dir.path());
    // Rates per 1000 datagrams on each hop.
    let upstream_rates = Rates {
        drop: 10,
        delay: 10,
        duplicate: 10,
        reorder: 10,
        corrupt: 10,
        truncate: 5,
        max_delay: Duration::from_millis(1500),
    };
    let client_rates = Rates {
        drop: 5,
        delay: 5,
        duplicate: 5,
        reorder: 5,
        corrupt: 5,
        truncate: 2,
        max_delay: Duration::from_millis(3000),
    };
    let upstream = UdpProxy::start(
        radiusd.addr,
        Schedule::random(args.seed ^ 1, upstream_rates),
        Schedule::random(args.seed ^ 2, upstream_rates),
    );
    let daemon = start_portcullis(
        &args.portcullis,
        dir.path(),
        upstream.addr(),
        args.outstanding,
    );
    let front = UdpProxy::start(
        daemon.radius,
        Schedule::random(args.seed ^ 3, client_rates),
        Schedule::random(args.seed ^ 4, client_rates),
    );
    let pid = daemon.child.id();
    println!(
        "soak: {} logins, {} outstanding, seed {:#x}, {}% PAP, {}% on the hot users; portcullis \
         pid {pid} (front-end {}), FreeRADIUS {}",
        args.logins,
        args.outstanding,
        args.seed,
        args.pap_percent,
        args.hot_percent,
        daemon.radius,
        radiusd.addr
    );
    println!(
        "throttle: locked after {} failures in a row for {} s, doubling to {} s; {} s at the \
         hard limit of {}",
        RULE.max_failures, RULE.lockout, RULE.max_lockout, RULE.hard_lockout, RULE.hard_limit
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let run = Arc::new(Run {
        target: front.addr(),
        next: AtomicU64::new(0),
        total: args.logins,
        seed: args.seed,
        pap_percent: args.pap_percent,
        hot_percent: args.hot_percent,
        deadline: args.max_seconds.map(|s| started + Duration::from_secs(s)),
        tally: Tally::default(),
        oracle: Oracle::default(),
    });
    let tally = &run.tally;
    let rss_start = rss_kib(pid);
    let mut rss_samples: Vec<(u64, u64)> = vec![(0, rss_start)];
    runtime.block_on(async {
        let mut workers = Vec::new();
        for _ in 0..args.outstanding {
            workers.push(tokio::spawn(client(Arc::clone(&run))));
        }
        let mut last = Instant::now();
        while !workers.iter().all(|w| w.is_finished()) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if last.elapsed() >= Duration::from_secs(10) {
                last = Instant::now();
                let done = tally.done();
                let rss = rss_kib(pid);
                rss_samples.push((done, rss));
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{:>7.0}s {done:>8} done ({:.0}/s) accept {} reject {} locked {} unavailable \
                     {} lost {} false-accept {} false-reject {} checked-while-locked {} rss {} KiB",
                    secs,
                    done as f64 / secs,
                    get(&tally.accepts),
                    get(&tally.rejects),
                    get(&tally.locked),
                    get(&tally.unavailable),
                    get(&tally.lost),
                    get(&tally.false_accepts),
                    get(&tally.false_rejects),
                    get(&tally.checked_while_locked),
                    rss
                );
            }
        }
        for worker in workers {
            worker.await.unwrap();
        }
    });
    let elapsed = started.elapsed();
    let rss_end = rss_kib(pid);
    let sent = get(&tally.sent);
    rss_samples.push((sent, rss_end));
    // Memory after the first tenth (caches, pools and the dedup cache filled) against the end.
    let warm = rss_samples
        .iter()
        .find(|(done, _)| *done >= sent / 10)
        .map_or(rss_start, |s| s.1);
    let peak = rss_samples.iter().map(|s| s.1).max().unwrap_or(0);
    let done = tally.done();
    println!("---- soak result ----");
    println!(
        "logins {done} of {} in {:.1} s ({:.0}/s)",
        args.logins,
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
    println!(
        "accept {} (right password), reject {} (wrong password), locked (rule) {}, unavailable {}",
        get(&tally.accepts),
        get(&tally.rejects),
        get(&tally.locked),
        get(&tally.unavailable)
    );
    println!(
        "false accepts {}, false rejects {}, lost answers {}, passwords checked while locked {}",
        get(&tally.false_accepts),
        get(&tally.false_rejects),
        get(&tally.lost),
        get(&tally.checked_while_locked)
    );
    println!(
        "lockouts: {} of them certain by the rule; hot users {} logins, {} locked; other users \
         {} locked",
        get(&tally.locked_certain),
        get(&tally.hot_logins),
        get(&tally.hot_locked),
        get(&tally.spread_locked)
    );
    println!(
        "client retransmissions {}, damaged or stray replies ignored {}",
        get(&tally.retransmits),
        get(&tally.bad_replies)
    );
    println!("{}", describe("client -> portcullis", &front.requests));
    println!("{}", describe("portcullis -> client", &front.replies));
    println!(
        "{}",
        describe("portcullis -> FreeRADIUS", &upstream.requests)
    );
    println!(
        "{}",
        describe("FreeRADIUS -> portcullis", &upstream.replies)
    );
    println!(
        "portcullis RSS: start {rss_start} KiB, after 10% {warm} KiB, peak {peak} KiB, end \
         {rss_end} KiB"
    );
    if done < args.logins {
        println!(
            "stopped by --max-seconds after {done} of {} logins",
            args.logins
        );
    }
    let failed = tally.failed() || done != sent;
    drop(front);
    drop(daemon);
    drop(upstream);
    drop(radiusd);
    if failed {
        println!("SOAK FAILED");
        std::process::exit(1);
    }
    println!("soak passed");
}
