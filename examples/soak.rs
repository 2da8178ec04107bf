//! Soak test of the RADIUS front-end: N logins through the real daemon, with seeded random
//! faults on both hops (client -> portcullis, portcullis -> FreeRADIUS), a mix of right and
//! wrong passwords, K requests outstanding. Run by `scripts/soak`, not by CI.
//!
//! Checks every answer: an Access-Accept only for a right password, an Access-Reject for a
//! wrong one, "servers unavailable" counted apart, every request answered (the client
//! retransmits like a real NAS; a request still unanswered after all sends is lost). Samples
//! the daemon's resident memory. Exits non-zero on a false accept, a false reject or a lost
//! answer.
//!
//! ```text
//! soak --portcullis PATH [--logins N] [--outstanding K] [--seed S] [--pap-percent P]
//!      [--max-seconds T]
//! ```
//!
//! `--max-seconds` stops starting new logins after T seconds (the ones under way finish and
//! are checked); the summary says how many ran.
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

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fault_proxy::{Counters, Rates, Rng, Schedule, UdpProxy};
use freeradius::{ALICE_PASSWORD, DEFAULT_SECRET, DEFAULT_USERS, TEST_DICTIONARY, radiusd_conf};
use portcullis_protocol::radius::{Builder, Code, Packet, Secret, attr_type, chap_response};
use tokio::net::UdpSocket;

/// The front-end client secret.
const SECRET: &str = "soak-frontend-secret-0123";
/// What the front-end says when the servers did not answer.
const UNAVAILABLE: &str = "Authentication servers unavailable";
/// How long the soak client waits for each send, and how many sends it makes: together well
/// over the longest walk (1 s x 3 tries upstream). A retransmission that arrives while the
/// walk runs is dropped by the front-end; one after it gets the cached answer. The client hop
/// breaks about 3% of exchanges on purpose, so the sends after the walk must be enough that
/// losing every one of them (about 0.03^6) does not happen in a million logins: a lost
/// answer then means portcullis did not answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
const CLIENT_SENDS: u32 = 8;

struct Args {
    portcullis: PathBuf,
    logins: u64,
    outstanding: usize,
    seed: u64,
    pap_percent: u64,
    max_seconds: Option<u64>,
}

fn args() -> Args {
    let mut args = Args {
        portcullis: PathBuf::from("target/release/portcullis"),
        logins: 1_000_000,
        outstanding: 64,
        seed: 0x50a6,
        pap_percent: 2,
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
    unavailable: AtomicU64,
    false_accepts: AtomicU64,
    false_rejects: AtomicU64,
    lost: AtomicU64,
    retransmits: AtomicU64,
    bad_replies: AtomicU64,
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
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
    std::fs::write(raddb.join("users"), DEFAULT_USERS).unwrap();
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

[[radius_frontend.clients]]
id = 1
name = "soak"
address = "127.0.0.1"
secret = "{SECRET}"
require_message_authenticator = "yes"
"#,
        upstream.ip(),
        upstream.port(),
        in_flight = outstanding.max(256),
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
    user: &'static str,
    password: &'static [u8],
    chap: bool,
    right: bool,
}

fn pick(rng: &mut Rng, pap_percent: u64) -> Login {
    let chap = rng.below(100) >= pap_percent;
    // 50% alice right, 30% alice wrong, 10% bob wrong, 10% an unknown user.
    let (user, password, right): (&'static str, &'static [u8], bool) = match rng.below(10) {
        0..=4 => ("alice", ALICE_PASSWORD.as_bytes(), true),
        5..=7 => ("alice", b"alice-guess", false),
        8 => ("bob", b"not-bobs-password", false),
        _ => ("mallory", b"whatever", false),
    };
    Login {
        user,
        password,
        chap,
        right,
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
    if login.chap {
        let ident = id;
        // The Request Authenticator serves as the challenge (RFC 2865 §2.2).
        let response = chap_response(ident, login.password, &authenticator);
        b.chap_password(ident, &response).unwrap();
    } else {
        b.user_password(login.password, &secret).unwrap();
    }
    let len = b.finish_request(&secret).unwrap();
    (buf[..len].to_vec(), authenticator)
}

enum Verdict {
    Accept,
    Reject,
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
            let unavailable = packet.attributes().any(|a| {
                a.typ() == attr_type::REPLY_MESSAGE && a.value() == UNAVAILABLE.as_bytes()
            });
            Some(if unavailable {
                Verdict::Unavailable
            } else {
                Verdict::Reject
            })
        }
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn client(
    target: SocketAddr,
    next: Arc<AtomicU64>,
    total: u64,
    seed: u64,
    pap_percent: u64,
    tally: Arc<Tally>,
    deadline: Option<Instant>,
) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(target).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut id: u8 = 0;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= total {
            return;
        }
        // Each login's choices come from its own index, whichever worker runs it. (The fault
        // schedules are seeded too, but which datagram meets which fault depends on timing.)
        let mut rng = Rng::new(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let login = pick(&mut rng, pap_percent);
        id = id.wrapping_add(1);
        let (packet, authenticator) = request(&login, id, &mut rng);
        tally.sent.fetch_add(1, Ordering::Relaxed);
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
        match (answer, login.right) {
            (None, _) => {
                tally.lost.fetch_add(1, Ordering::Relaxed);
                eprintln!("lost: login {index} ({} chap={})", login.user, login.chap);
            }
            (Some(Verdict::Accept), true) => {
                tally.accepts.fetch_add(1, Ordering::Relaxed);
            }
            (Some(Verdict::Accept), false) => {
                tally.false_accepts.fetch_add(1, Ordering::Relaxed);
                eprintln!("FALSE ACCEPT: login {index} ({})", login.user);
            }
            (Some(Verdict::Reject), false) => {
                tally.rejects.fetch_add(1, Ordering::Relaxed);
            }
            (Some(Verdict::Reject), true) => {
                tally.false_rejects.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "false reject: login {index} ({} chap={})",
                    login.user, login.chap
                );
            }
            (Some(Verdict::Unavailable), _) => {
                tally.unavailable.fetch_add(1, Ordering::Relaxed);
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
        "soak: {} logins, {} outstanding, seed {:#x}, {}% PAP; portcullis pid {pid} (front-end {}), \
         FreeRADIUS {}",
        args.logins, args.outstanding, args.seed, args.pap_percent, daemon.radius, radiusd.addr
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = args.max_seconds.map(|s| started + Duration::from_secs(s));
    let rss_start = rss_kib(pid);
    let mut rss_samples: Vec<(u64, u64)> = vec![(0, rss_start)];
    runtime.block_on(async {
        let mut workers = Vec::new();
        for _ in 0..args.outstanding {
            workers.push(tokio::spawn(client(
                front.addr(),
                Arc::clone(&next),
                args.logins,
                args.seed,
                args.pap_percent,
                Arc::clone(&tally),
                deadline,
            )));
        }
        let mut last = Instant::now();
        while !workers.iter().all(|w| w.is_finished()) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if last.elapsed() >= Duration::from_secs(10) {
                last = Instant::now();
                let done = get(&tally.accepts)
                    + get(&tally.rejects)
                    + get(&tally.unavailable)
                    + get(&tally.false_accepts)
                    + get(&tally.false_rejects)
                    + get(&tally.lost);
                let rss = rss_kib(pid);
                rss_samples.push((done, rss));
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{:>7.0}s {done:>8} done ({:.0}/s) accept {} reject {} unavailable {} \
                     lost {} false-accept {} false-reject {} rss {} KiB",
                    secs,
                    done as f64 / secs,
                    get(&tally.accepts),
                    get(&tally.rejects),
                    get(&tally.unavailable),
                    get(&tally.lost),
                    get(&tally.false_accepts),
                    get(&tally.false_rejects),
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
    let done = get(&tally.accepts)
        + get(&tally.rejects)
        + get(&tally.unavailable)
        + get(&tally.false_accepts)
        + get(&tally.false_rejects)
        + get(&tally.lost);
    println!("---- soak result ----");
    println!(
        "logins {done} of {} in {:.1} s ({:.0}/s)",
        args.logins,
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
    println!(
        "accept {} (right password), reject {} (wrong password), unavailable {}",
        get(&tally.accepts),
        get(&tally.rejects),
        get(&tally.unavailable)
    );
    println!(
        "false accepts {}, false rejects {}, lost answers {}",
        get(&tally.false_accepts),
        get(&tally.false_rejects),
        get(&tally.lost)
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
    let failed = get(&tally.false_accepts) > 0
        || get(&tally.false_rejects) > 0
        || get(&tally.lost) > 0
        || done != sent;
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
