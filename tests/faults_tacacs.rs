//! Fault injection on the TACACS+ path. The engine logs in through a loopback TCP fault proxy
//! in front of the TACACS+ test server (connections reset on accept or in the middle of a
//! reply, half frames, stalled reads, seeded garbage after a valid header, slow replies), and
//! against a port where nothing listens (connection refused). For each: the outcome is the
//! right one, within the configured timeout per stage (plus slack), a broken server fails
//! over to the next one, and a broken path never turns a wrong password into an accept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use portcullis::engine::local::hash_password;
use portcullis::engine::{Decision, Engine, Outcome};
use portcullis_config::Config;
use support::fault_proxy::{TcpFault, TcpProxy};
use support::tacacs_server::{Config as ServerConfig, KEY, TacacsServer, User};

/// `connection_timeout` of every test, in seconds (the configuration's unit).
const TIMEOUT: u64 = 1;
/// Beyond the timeouts and the local method: scheduling, process start-up of the peers.
const SLACK: Duration = Duration::from_millis(1500);
/// A TACACS+ header: version, type, seq_no, flags, session_id, length (RFC 8907 §4.1).
const HEADER: usize = 12;

fn users() -> Vec<User> {
    vec![User::new("tina", "tina-pw", &[("role", "admin")])]
}

fn entry(id: u32, addr: SocketAddr) -> String {
    format!(
        r#"
[[tacacs.servers]]
id = {id}
order = {id}
address = "{}"
port = {}
secret = "{KEY}"
protocol = "PAP"
"#,
        addr.ip(),
        addr.port()
    )
}

/// Sequence 4 (Local, TACACS+), no local users, no dead time.
fn engine(servers: &[SocketAddr]) -> Engine {
    let entries: Vec<String> = servers
        .iter()
        .enumerate()
        .map(|(i, addr)| entry(i as u32 + 1, *addr))
        .collect();
    let toml = format!(
        r#"
[authentication]
current_sequence = 4
dead_time = 0

[tacacs.settings]
connection_timeout = {TIMEOUT}
auth_service = "portcullis"

{servers}

[[tacacs.role_mappings]]
role = "Administrator"
attribute = "role"
attribute_value = "admin"
"#,
        servers = entries.join("\n")
    );
    let config = Config::from_toml(&toml)
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
        .config;
    Engine::new(&config).unwrap()
}

/// The longest a login may take over `servers` servers that each stall one stage: each
/// stage (connect, write, reply) is bounded by the timeout, and a fault ends its session.
/// The local method runs first: one argon2 hash, timed now so a loaded machine gets a fair
/// bound.
fn bound(servers: u32) -> Duration {
    let started = Instant::now();
    hash_password(b"load probe").unwrap();
    let local = started.elapsed();
    Duration::from_secs(TIMEOUT * 2 * u64::from(servers)) + SLACK + 3 * local
}

async fn login(engine: &Engine, password: &str, limit: Duration) -> Decision {
    let started = Instant::now();
    let decision = engine.authenticate("tina", password.as_bytes()).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed <= limit,
        "{decision:?} took {elapsed:?}, over the bound {limit:?}"
    );
    decision
}

fn admin() -> Outcome {
    Outcome::Accept(vec!["Administrator".into()])
}

/// A loopback port nothing listens on.
fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// With `fault` on the first connection (the authentication session) or the second (the
/// authorization session): alone, the server is unavailable; before a healthy server, the
/// healthy one decides. A wrong password ends with the authentication FAIL, before any
/// authorization: with the fault on the authorization session it is that server's reject.
async fn check_fault(fault: TcpFault, on_authorization: bool) {
    let faults = if on_authorization {
        vec![TcpFault::Pass, fault]
    } else {
        vec![fault]
    };
    for password in ["tina-pw", "wrong"] {
        let right = password == "tina-pw";
        let server = TacacsServer::start(ServerConfig::new(users()));
        let proxy = TcpProxy::start(server.addr(), &faults);
        let alone = engine(&[proxy.addr()]);
        let decision = login(&alone, password, bound(1)).await;
        if right || !on_authorization {
            assert!(
                matches!(decision.outcome, Outcome::Unavailable(_)),
                "{fault:?} (authorization: {on_authorization}), {password}: {decision:?}"
            );
        } else {
            assert!(
                matches!(decision.outcome, Outcome::Reject(_)),
                "{fault:?}: {decision:?}"
            );
        }

        let proxy = TcpProxy::start(server.addr(), &faults);
        let healthy = TacacsServer::start(ServerConfig::new(users()));
        let both = engine(&[proxy.addr(), healthy.addr()]);
        let decision = login(&both, password, bound(2)).await;
        let decider = if right || !on_authorization {
            healthy.addr()
        } else {
            proxy.addr()
        };
        if right {
            assert_eq!(decision.outcome, admin(), "{fault:?}");
        } else {
            assert!(
                matches!(decision.outcome, Outcome::Reject(_)),
                "{fault:?}: {decision:?}"
            );
        }
        assert_eq!(
            decision.server.as_deref(),
            Some(decider.to_string().as_str()),
            "{fault:?}"
        );
        assert!(proxy.connections.load(Ordering::Relaxed) >= 1);
    }
}

#[tokio::test]
async fn connection_refused_fails_over_at_once() {
    let alone = engine(&[refused_addr()]);
    let decision = login(&alone, "tina-pw", bound(1)).await;
    assert!(
        matches!(decision.outcome, Outcome::Unavailable(_)),
        "{decision:?}"
    );
    let healthy = TacacsServer::start(ServerConfig::new(users()));
    let both = engine(&[refused_addr(), healthy.addr()]);
    assert_eq!(login(&both, "tina-pw", bound(1)).await.outcome, admin());
    let wrong = login(&both, "guess", bound(1)).await;
    assert!(matches!(wrong.outcome, Outcome::Reject(_)), "{wrong:?}");
}

#[tokio::test]
async fn a_healthy_path_through_the_proxy_answers_rightly() {
    // The control for the faults below: the proxy itself changes nothing.
    let server = TacacsServer::start(ServerConfig::new(users()));
    let proxy = TcpProxy::start(server.addr(), &[]);
    let engine = engine(&[proxy.addr()]);
    assert_eq!(login(&engine, "tina-pw", bound(1)).await.outcome, admin());
    let wrong = login(&engine, "nope", bound(1)).await;
    assert!(matches!(wrong.outcome, Outcome::Reject(_)), "{wrong:?}");
    assert_eq!(proxy.connections.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn connection_reset_on_accept() {
    check_fault(TcpFault::ResetOnAccept, false).await;
    check_fault(TcpFault::ResetOnAccept, true).await;
}

#[tokio::test]
async fn connection_reset_in_the_middle_of_the_reply() {
    for after in [0, 5, HEADER, HEADER + 3] {
        check_fault(TcpFault::ResetReplyAfter(after), false).await;
    }
    check_fault(TcpFault::ResetReplyAfter(HEADER + 3), true).await;
}

#[tokio::test]
async fn half_frames_then_closed() {
    for after in [0, 6, HEADER, HEADER + 4] {
        check_fault(TcpFault::CloseReplyAfter(after), false).await;
    }
    check_fault(TcpFault::CloseReplyAfter(HEADER + 4), true).await;
}

#[tokio::test]
async fn stalled_reads_end_at_the_timeout() {
    for after in [0, HEADER - 1, HEADER + 2] {
        check_fault(TcpFault::StallReplyAfter(after), false).await;
    }
    check_fault(TcpFault::StallReplyAfter(HEADER), true).await;
}

#[tokio::test]
async fn garbage_after_a_valid_header() {
    // The header announces the honest body's length; seeded garbage replaces the body. It
    // deobfuscates to noise: never a PASS.
    for seed in 1..=8 {
        check_fault(
            TcpFault::GarbageReplyAfter {
                after: HEADER,
                len: 64,
                seed,
            },
            false,
        )
        .await;
    }
    check_fault(
        TcpFault::GarbageReplyAfter {
            after: HEADER,
            len: 64,
            seed: 99,
        },
        true,
    )
    .await;
}

#[tokio::test]
async fn slow_replies_within_the_timeout_still_count() {
    let server = TacacsServer::start(ServerConfig::new(users()));
    let delay = TcpFault::DelayReply(Duration::from_millis(300));
    let proxy = TcpProxy::start(server.addr(), &[delay, delay, delay, delay]);
    let engine = engine(&[proxy.addr()]);
    assert_eq!(login(&engine, "tina-pw", bound(1)).await.outcome, admin());
    let wrong = login(&engine, "wrong", bound(1)).await;
    assert!(matches!(wrong.outcome, Outcome::Reject(_)), "{wrong:?}");
}
