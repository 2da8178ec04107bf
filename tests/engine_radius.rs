//! The authentication engine against a live FreeRADIUS: the sequence walk, role mapping,
//! NAS attributes, failover, dead servers, reject finality and wrong secrets. Configurations
//! are written as TOML, so the config crate's parser is in the loop too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use portcullis::engine::local::hash_password;
use portcullis::engine::{Engine, Outcome, Reason};
use portcullis_config::{Config, Method};
use support::freeradius::{
    ALICE_PASSWORD, BOB_PASSWORD, DEFAULT_SECRET, DEFAULT_USERS, FreeRadius,
};

/// A UDP socket that never answers and counts what it received.
struct Silent(UdpSocket);

impl Silent {
    fn new() -> Silent {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        Silent(socket)
    }
    fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }
    /// Datagrams received so far (drains the queue).
    fn received(&self) -> usize {
        let mut buf = [0u8; 4096];
        let mut n = 0;
        while self.0.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    }
}

/// Waits (bounded) until FreeRADIUS has logged `count` Access-Requests.
fn requests_reach(radius: &FreeRadius, count: usize) -> bool {
    for _ in 0..100 {
        if radius.log().matches("Received Access-Request").count() >= count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// One `[[radius.servers]]` entry.
fn server(id: u32, addr: SocketAddr, secret: &str, protocol: &str) -> String {
    format!(
        r#"
[[radius.servers]]
id = {id}
order = {id}
address = "{}"
port = {}
secret = "{secret}"
protocol = "{protocol}"
require_message_authenticator = "auto"
"#,
        addr.ip(),
        addr.port()
    )
}

/// A configuration with sequence 3 ("Local, RADIUS"), the given servers, the standard
/// mappings (Administrator <- vendor 17164 "2", Operator <- Class "admins"), a local user
/// `localadmin` / `local-password`, and `extra` lines in `[authentication]`.
fn config(servers: &[String], timeout: u32, tries: u32, extra: &str) -> Config {
    let hash = hash_password(b"local-password").unwrap();
    let toml = format!(
        r#"
[authentication]
current_sequence = 3
dead_time = 60
{extra}

[radius.settings]
use_nas_id = true
nas_id_type = "custom"
nas_id_value = "portcullis-engine-test"
use_nas_ip = true
nas_ip_value = "192.0.2.10"
connection_timeout = {timeout}
max_number_of_tries = {tries}

{servers}

[[radius.role_mappings]]
role = "Administrator"
attribute = 17164
attribute_value = "2"

[[radius.role_mappings]]
role = "Operator"
attribute = 25
attribute_value = "admins"

[[local_users]]
name = "localadmin"
password_hash = "{hash}"
roles = ["Administrator"]
"#,
        servers = servers.join("\n")
    );
    Config::from_toml(&toml)
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
        .config
}

#[tokio::test]
async fn pap_accept_maps_vendor_and_class_roles() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let engine = Engine::new(&config(
        &[server(1, radius.auth_addr, DEFAULT_SECRET, "PAP")],
        2,
        2,
        "",
    ))
    .unwrap();
    let decision = engine
        .authenticate("alice", ALICE_PASSWORD.as_bytes())
        .await;
    assert_eq!(
        decision.outcome,
        Outcome::Accept(vec!["Administrator".into(), "Operator".into()])
    );
    assert_eq!(decision.method, Some(Method::Radius));
    assert_eq!(
        decision.server.as_deref().map(str::to_owned),
        Some(format!(
            "{}:{}",
            radius.auth_addr.ip(),
            radius.auth_addr.port()
        ))
    );
    // NAS-Identifier and NAS-IP-Address arrived as configured.
    let log = radius.log();
    assert!(log.contains("portcullis-engine-test"), "{log}");
    assert!(log.contains("192.0.2.10"), "{log}");

    let wrong = engine.authenticate("alice", b"not-it").await;
    assert!(matches!(wrong.outcome, Outcome::Reject(_)), "{wrong:?}");
    assert_eq!(wrong.method, Some(Method::Radius));
}

#[tokio::test]
async fn chap_accept_and_reject() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let engine = Engine::new(&config(
        &[server(1, radius.auth_addr, DEFAULT_SECRET, "CHAP")],
        2,
        2,
        "",
    ))
    .unwrap();
    let accept = engine
        .authenticate("alice", ALICE_PASSWORD.as_bytes())
        .await;
    assert!(
        matches!(accept.outcome, Outcome::Accept(ref r) if r.contains(&"Administrator".to_string())),
        "{accept:?}"
    );
    let reject = engine.authenticate("alice", b"wrong").await;
    assert!(matches!(reject.outcome, Outcome::Reject(_)), "{reject:?}");
    assert!(radius.log().contains("CHAP-Password"));
}

#[tokio::test]
async fn unmapped_user_gets_the_default_role_or_is_rejected() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let servers = [server(1, radius.auth_addr, DEFAULT_SECRET, "PAP")];
    let strict = Engine::new(&config(&servers, 2, 2, "")).unwrap();
    let bob = strict.authenticate("bob", BOB_PASSWORD.as_bytes()).await;
    assert_eq!(bob.outcome, Outcome::Reject(Reason::NoRoleMapped));

    let lenient = Engine::new(&config(&servers, 2, 2, r#"default_role = "Monitor""#)).unwrap();
    let bob = lenient.authenticate("bob", BOB_PASSWORD.as_bytes()).await;
    assert_eq!(bob.outcome, Outcome::Accept(vec!["Monitor".into()]));
}

#[tokio::test]
async fn local_users_come_first_and_unknown_ones_fall_through() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let engine = Engine::new(&config(
        &[server(1, radius.auth_addr, DEFAULT_SECRET, "PAP")],
        2,
        2,
        "",
    ))
    .unwrap();
    let local = engine.authenticate("localadmin", b"local-password").await;
    assert_eq!(local.outcome, Outcome::Accept(vec!["Administrator".into()]));
    assert_eq!(local.method, Some(Method::Local));
    // A wrong local password is final: RADIUS is not asked.
    let before = radius.log().matches("Received Access-Request").count();
    let wrong = engine.authenticate("localadmin", b"nope").await;
    assert_eq!(
        wrong.outcome,
        Outcome::Reject(Reason::Refused("wrong password".into()))
    );
    assert_eq!(wrong.method, Some(Method::Local));
    assert_eq!(
        radius.log().matches("Received Access-Request").count(),
        before
    );
    assert_eq!(engine.local_checks(), 2);
    // alice is not local: the walk moves on to RADIUS, without a dummy argon2 check (the
    // RADIUS round trip that follows shows she is not local anyway).
    let alice = engine
        .authenticate("alice", ALICE_PASSWORD.as_bytes())
        .await;
    assert_eq!(alice.method, Some(Method::Radius));
    assert_eq!(engine.local_checks(), 2);
    // HTTP Basic checks local users only: an unknown user costs a dummy check there.
    let basic = engine.authenticate_local("alice", b"whatever").await;
    assert_eq!(basic, Outcome::Unavailable("not a local user".into()));
    assert_eq!(engine.local_checks(), 3);
}

/// Without a server for the method after Local, nothing answers after the local method: an
/// unknown user costs the same argon2 check as a known one, so timing does not tell them apart.
#[tokio::test]
async fn unknown_users_cost_a_dummy_check_when_no_server_follows() {
    let engine = Engine::new(&config(&[], 2, 2, "")).unwrap();
    let unknown = engine.authenticate("nobody", b"guess").await;
    assert!(matches!(
        unknown.outcome,
        Outcome::Reject(_) | Outcome::Unavailable(_)
    ));
    assert_eq!(engine.local_checks(), 1);
}

#[tokio::test]
async fn silent_primary_fails_over_after_timeout_times_tries_then_is_skipped() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let silent = Silent::new();
    let engine = Engine::new(&config(
        &[
            server(1, silent.addr(), DEFAULT_SECRET, "PAP"),
            server(2, radius.auth_addr, DEFAULT_SECRET, "PAP"),
        ],
        1,
        2,
        "",
    ))
    .unwrap();
    let first = engine
        .authenticate("alice", ALICE_PASSWORD.as_bytes())
        .await;
    assert!(matches!(first.outcome, Outcome::Accept(_)), "{first:?}");
    assert_eq!(
        first.server.as_deref().map(str::to_owned),
        Some(format!("127.0.0.1:{}", radius.auth_addr.port()))
    );
    // 1 s x 2 tries on the silent server before the second was asked.
    assert!(
        first.latency >= Duration::from_secs(2),
        "{:?}",
        first.latency
    );
    assert!(
        first.latency < Duration::from_secs(4),
        "{:?}",
        first.latency
    );
    assert_eq!(silent.received(), 2);

    // The silent server is now dead: the next login goes straight to the live one.
    let second = engine
        .authenticate("alice", ALICE_PASSWORD.as_bytes())
        .await;
    assert!(matches!(second.outcome, Outcome::Accept(_)));
    assert!(
        second.latency < Duration::from_secs(1),
        "{:?}",
        second.latency
    );
    assert_eq!(silent.received(), 0);
}

#[tokio::test]
async fn all_servers_silent_is_unavailable() {
    let a = Silent::new();
    let b = Silent::new();
    let engine = Engine::new(&config(
        &[
            server(1, a.addr(), DEFAULT_SECRET, "PAP"),
            server(2, b.addr(), DEFAULT_SECRET, "PAP"),
        ],
        1,
        1,
        "",
    ))
    .unwrap();
    let decision = engine.authenticate("alice", b"whatever").await;
    let Outcome::Unavailable(reason) = &decision.outcome else {
        panic!("{decision:?}");
    };
    assert!(reason.contains("not a local user"), "{reason}");
    assert!(reason.contains("no RADIUS server answered"), "{reason}");
    assert_eq!((a.received(), b.received()), (1, 1));
}

#[tokio::test]
async fn a_reject_is_final_for_the_method() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let second = Silent::new();
    let engine = Engine::new(&config(
        &[
            server(1, radius.auth_addr, DEFAULT_SECRET, "PAP"),
            server(2, second.addr(), DEFAULT_SECRET, "PAP"),
        ],
        1,
        1,
        "",
    ))
    .unwrap();
    let decision = engine.authenticate("alice", b"wrong-password").await;
    assert!(
        matches!(decision.outcome, Outcome::Reject(_)),
        "{decision:?}"
    );
    assert_eq!(second.received(), 0, "the second server must not be asked");
}

#[tokio::test]
async fn fallback_on_reject_moves_on_but_still_rejects() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let engine = Engine::new(&config(
        &[server(1, radius.auth_addr, DEFAULT_SECRET, "PAP")],
        1,
        1,
        "fallback_on_reject = true",
    ))
    .unwrap();
    // A wrong local password no longer stops the walk; RADIUS rejects too.
    let before = radius.log().matches("Received Access-Request").count();
    let decision = engine.authenticate("localadmin", b"nope").await;
    assert!(matches!(decision.outcome, Outcome::Reject(_)));
    assert_eq!(decision.method, Some(Method::Local));
    assert!(requests_reach(&radius, before + 1), "{}", radius.log());
}

#[tokio::test]
async fn wrong_secret_never_accepts() {
    // FreeRADIUS knows another secret: it drops our requests (bad Message-Authenticator), so
    // the server is silent and the method unavailable; never an accept.
    let radius = FreeRadius::start_with_secret(DEFAULT_USERS, "a-completely-different-secret");
    let engine = Engine::new(&config(
        &[server(1, radius.auth_addr, DEFAULT_SECRET, "PAP")],
        1,
        1,
        "",
    ))
    .unwrap();
    let decision = engine
        .authenticate("alice", ALICE_PASSWORD.as_bytes())
        .await;
    assert!(
        matches!(decision.outcome, Outcome::Unavailable(_)),
        "{decision:?}"
    );
}
