//! Fault injection on the RADIUS path. The engine logs in through a loopback UDP fault proxy
//! in front of a real FreeRADIUS (drops, delays, duplicates, reordering, corruption,
//! truncation), or against a scripted server that answers with crafted replies (wrong secret,
//! forged Response Authenticator, wrong Identifier, no Message-Authenticator where one is
//! required); and the real daemon's RADIUS front-end answers over a lossy upstream. For each:
//! the outcome is the right one (accept, reject or unavailable), it comes within
//! `connection_timeout x max_number_of_tries` (plus the local method's argon2 run and
//! slack), and a wrong password or a forged reply is never an accept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::engine::local::hash_password;
use portcullis::engine::{Decision, Engine, Outcome, Reason};
use portcullis_config::Config;
use portcullis_protocol::radius::{Builder, Code, Packet, Secret, attr_type};
use support::fault_proxy::{Counters, Fault, Rates, Schedule, UdpProxy};
use support::freeradius::{
    ALICE_PASSWORD, BOB_PASSWORD, DEFAULT_SECRET, DEFAULT_USERS, FreeRadius,
};
use support::scripted_radius::{Answerer, Scripted};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `connection_timeout` of every test, in seconds (the configuration's unit).
const TIMEOUT: u64 = 1;
/// Beyond `timeout x tries` per server: scheduling, process start-up of the peers.
const SLACK: Duration = Duration::from_millis(1500);

/// The roles alice gets from FreeRADIUS (vendor 17164 "2", Class "admins").
fn alice_roles() -> Vec<String> {
    vec!["Administrator".into(), "Operator".into()]
}

/// A server entry; `require` is the Message-Authenticator policy.
fn server(id: u32, addr: SocketAddr, secret: &str, require: &str) -> String {
    format!(
        r#"
[[radius.servers]]
id = {id}
order = {id}
address = "{}"
port = {}
secret = "{secret}"
require_message_authenticator = "{require}"
"#,
        addr.ip(),
        addr.port()
    )
}

/// Sequence 3 (Local, RADIUS) with no local users, so every login reaches RADIUS; `tries`
/// sends per server; no dead time, so each login tries every server afresh.
fn engine(servers: &[String], tries: u32) -> Engine {
    let toml = format!(
        r#"
[authentication]
current_sequence = 3
dead_time = 0

[radius.settings]
connection_timeout = {TIMEOUT}
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
"#,
        servers = servers.join("\n")
    );
    let config = Config::from_toml(&toml)
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
        .config;
    Engine::new(&config).unwrap()
}

/// The longest a login may take when `servers` servers each stay silent for `tries` sends:
/// that, plus the local method that runs first (one argon2 hash, timed now so a loaded
/// machine gets a fair bound), plus slack.
fn bound(servers: u32, tries: u32) -> Duration {
    Duration::from_secs(TIMEOUT * u64::from(servers * tries)) + SLACK + 3 * local_cost()
}

/// [`bound`] for one of `concurrent` logins started together: they queue for argon2 (four
/// hashes at once on a machine with fewer cores, and other tests of this binary hash too).
fn bound_among(servers: u32, tries: u32, concurrent: u32) -> Duration {
    let cost = local_cost();
    Duration::from_secs(TIMEOUT * u64::from(servers * tries)) + SLACK + cost * (3 + concurrent)
}

/// What one argon2 hash with the local method's parameters costs on this machine now.
fn local_cost() -> Duration {
    let started = Instant::now();
    hash_password(b"load probe").unwrap();
    started.elapsed()
}

/// Every login runs the local method first, and argon2 hashes are limited process-wide (four
/// at a time): tests that start many logins at once run alone, so they do not stretch the
/// logins of other tests past their bounds.
static GATE: RwLock<()> = RwLock::const_new(());

async fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().await
}

async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    GATE.write().await
}

/// Logs in and checks the time bound.
async fn login(engine: &Engine, user: &str, password: &str, limit: Duration) -> Decision {
    let started = Instant::now();
    let decision = engine.authenticate(user, password.as_bytes()).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed <= limit,
        "{user}: {decision:?} took {elapsed:?}, over the bound {limit:?}"
    );
    decision
}

fn is_reject(decision: &Decision) -> bool {
    matches!(decision.outcome, Outcome::Reject(_))
}

fn is_unavailable(decision: &Decision) -> bool {
    matches!(decision.outcome, Outcome::Unavailable(_))
}

fn seen(counters: &Counters) -> u64 {
    Counters::get(&counters.seen)
}

/// FreeRADIUS behind a proxy with the given schedules, and an engine sending to the proxy.
fn proxied(requests: Schedule, replies: Schedule, tries: u32) -> (FreeRadius, UdpProxy, Engine) {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let (proxy, engine) = through(radius.auth_addr, requests, replies, tries);
    (radius, proxy, engine)
}

/// A proxy in front of `radius` and an engine sending to it.
fn through(
    radius: SocketAddr,
    requests: Schedule,
    replies: Schedule,
    tries: u32,
) -> (UdpProxy, Engine) {
    let proxy = UdpProxy::start(radius, requests, replies);
    let engine = engine(&[server(1, proxy.addr(), DEFAULT_SECRET, "no")], tries);
    (proxy, engine)
}

/// Waits for every case; a case's panic fails the test with its message.
async fn all(cases: Vec<tokio::task::JoinHandle<()>>) {
    for case in cases {
        if let Err(e) = case.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

#[tokio::test]
async fn dropped_requests_are_sent_again() {
    let _gate = shared().await;
    let (_radius, proxy, engine) = proxied(
        Schedule::script(&[
            Fault::Drop,
            Fault::Drop,
            Fault::Pass,
            Fault::Drop,
            Fault::Drop,
        ]),
        Schedule::pass(),
        3,
    );
    let alice = login(&engine, "alice", ALICE_PASSWORD, bound(1, 3)).await;
    assert_eq!(alice.outcome, Outcome::Accept(alice_roles()));
    assert_eq!(seen(&proxy.requests), 3, "two drops, then the third send");
    let wrong = login(&engine, "alice", "not-alice", bound(1, 3)).await;
    assert!(is_reject(&wrong), "{wrong:?}");
    assert_eq!(seen(&proxy.requests), 6);
}

#[tokio::test]
async fn dropped_replies_are_answered_again() {
    let _gate = shared().await;
    // FreeRADIUS answers a retransmission from its duplicate cache.
    let (_radius, proxy, engine) = proxied(
        Schedule::pass(),
        Schedule::script(&[Fault::Drop, Fault::Drop, Fault::Pass, Fault::Drop]),
        3,
    );
    let alice = login(&engine, "alice", ALICE_PASSWORD, bound(1, 3)).await;
    assert_eq!(alice.outcome, Outcome::Accept(alice_roles()));
    let bob = login(&engine, "bob", "wrong", bound(1, 3)).await;
    assert!(is_reject(&bob), "{bob:?}");
    assert_eq!(seen(&proxy.requests), 5);
}

#[tokio::test]
async fn a_path_that_drops_everything_is_unavailable_after_tries_sends() {
    let _gate = shared().await;
    for tries in [1, 2] {
        let (_radius, proxy, engine) =
            proxied(Schedule::script(&[Fault::Drop; 8]), Schedule::pass(), tries);
        let alice = login(&engine, "alice", ALICE_PASSWORD, bound(1, tries)).await;
        assert!(is_unavailable(&alice), "{alice:?}");
        assert_eq!(seen(&proxy.requests), u64::from(tries));
    }
}

#[tokio::test]
async fn delayed_replies_within_and_past_the_timeout() {
    let _gate = shared().await;
    // Within the timeout: one send, the answer.
    let (_radius, proxy, engine) = proxied(
        Schedule::pass(),
        Schedule::script(&[Fault::Delay(Duration::from_millis(400))]),
        2,
    );
    let alice = login(&engine, "alice", ALICE_PASSWORD, bound(1, 2)).await;
    assert_eq!(alice.outcome, Outcome::Accept(alice_roles()));
    assert_eq!(seen(&proxy.requests), 1);

    // Past it: the request is sent again and whichever reply comes first counts; the late
    // one is left over and must not disturb the next login.
    let (_radius, proxy, engine) = proxied(
        Schedule::pass(),
        Schedule::script(&[Fault::Delay(Duration::from_millis(1300))]),
        2,
    );
    let alice = login(&engine, "alice", ALICE_PASSWORD, bound(1, 2)).await;
    assert_eq!(alice.outcome, Outcome::Accept(alice_roles()));
    assert_eq!(seen(&proxy.requests), 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let wrong = login(&engine, "alice", "nope", bound(1, 2)).await;
    assert!(is_reject(&wrong), "{wrong:?}");
}

#[tokio::test]
async fn duplicated_requests_and_replies_change_nothing() {
    let _gate = shared().await;
    let (_radius, proxy, engine) = proxied(
        Schedule::script(&[Fault::Duplicate; 20]),
        Schedule::script(&[Fault::Duplicate; 40]),
        2,
    );
    // Alternate right and wrong: a duplicate reply left over from one login arrives while the
    // next one waits, possibly on the same Identifier.
    for round in 0..10 {
        let (password, right) = if round % 2 == 0 {
            (BOB_PASSWORD, true)
        } else {
            ("not-bob", false)
        };
        let bob = login(&engine, "bob", password, bound(1, 2)).await;
        if right {
            // bob has no mapped role: authenticated, then "no role mapped".
            assert_eq!(bob.outcome, Outcome::Reject(Reason::NoRoleMapped));
        } else {
            assert!(is_reject(&bob), "{bob:?}");
            assert_ne!(bob.outcome, Outcome::Reject(Reason::NoRoleMapped));
        }
    }
    assert!(Counters::get(&proxy.replies.duplicated) >= 10);
}

#[tokio::test]
async fn reordered_datagrams_of_concurrent_logins() {
    let _gate = exclusive().await;
    let rates = Rates {
        reorder: 400,
        duplicate: 100,
        ..Rates::default()
    };
    let (_radius, proxy, engine) = proxied(
        Schedule::random(0x5eed_0001, rates),
        Schedule::random(0x5eed_0002, rates),
        3,
    );
    let engine = Arc::new(engine);
    let mut logins = Vec::new();
    for i in 0..24 {
        let engine = Arc::clone(&engine);
        logins.push(tokio::spawn(async move {
            let right = i % 3 != 0;
            let password = if right { ALICE_PASSWORD } else { "guess" };
            (
                right,
                login(&engine, "alice", password, bound_among(1, 3, 24)).await,
            )
        }));
    }
    for handle in logins {
        let (right, decision) = handle.await.unwrap();
        if right {
            assert_eq!(decision.outcome, Outcome::Accept(alice_roles()));
        } else {
            assert!(is_reject(&decision), "{decision:?}");
        }
    }
    assert!(Counters::get(&proxy.requests.reordered) > 0);
    assert!(Counters::get(&proxy.replies.reordered) > 0);
}

/// Offsets worth flipping in a reply: code, Identifier, length, each Response Authenticator
/// octet's neighbourhood, the first attributes.
const OFFSETS: [usize; 10] = [0, 1, 2, 3, 4, 11, 19, 20, 22, 40];

#[tokio::test]
async fn corrupted_replies_are_dropped_never_believed() {
    let _gate = exclusive().await;
    // Each reply corrupted once, then the retransmission's answer passes: the right answer,
    // late. Reject's code 3 flipped by 0x01 reads 2, Access-Accept.
    let radius = FreeRadius::start(DEFAULT_USERS);
    let limit = bound_among(1, 2, OFFSETS.len() as u32);
    let mut cases = Vec::new();
    for offset in OFFSETS {
        let corrupt = Fault::Corrupt { offset, mask: 0x01 };
        let (proxy, engine) = through(
            radius.auth_addr,
            Schedule::pass(),
            Schedule::script(&[corrupt, Fault::Pass, corrupt, Fault::Pass]),
            2,
        );
        cases.push(tokio::spawn(async move {
            let alice = login(&engine, "alice", ALICE_PASSWORD, limit).await;
            assert_eq!(
                alice.outcome,
                Outcome::Accept(alice_roles()),
                "offset {offset}"
            );
            let wrong = login(&engine, "alice", "wrong", limit).await;
            assert!(is_reject(&wrong), "offset {offset}: {wrong:?}");
            assert_eq!(seen(&proxy.requests), 4, "offset {offset}");
        }));
    }
    all(cases).await;
}

#[tokio::test]
async fn a_reject_corrupted_into_an_accept_is_never_an_accept() {
    let _gate = exclusive().await;
    // Every reply corrupted: code 3 -> 2 (Accept), or any other octet. A wrong password must
    // end unavailable, never accepted.
    let radius = FreeRadius::start(DEFAULT_USERS);
    let limit = bound_among(1, 2, OFFSETS.len() as u32);
    let mut cases = Vec::new();
    for offset in OFFSETS {
        let corrupt = Fault::Corrupt { offset, mask: 0x01 };
        let (proxy, engine) = through(
            radius.auth_addr,
            Schedule::pass(),
            Schedule::script(&[corrupt; 4]),
            2,
        );
        cases.push(tokio::spawn(async move {
            let wrong = login(&engine, "alice", "wrong", limit).await;
            assert!(is_unavailable(&wrong), "offset {offset}: {wrong:?}");
            drop(proxy);
        }));
    }
    all(cases).await;
}

#[tokio::test]
async fn corrupted_and_truncated_requests_are_dropped_by_the_server() {
    let _gate = exclusive().await;
    // The Message-Authenticator portcullis sends covers the whole request: FreeRADIUS drops
    // a damaged one, and the retransmission gets the answer. (Offset 20 is the type of that
    // first attribute: flipped, the request carries no Message-Authenticator, which this
    // FreeRADIUS client entry does not require, and the untouched rest is answered at once.)
    let mut faults: Vec<Fault> = OFFSETS
        .iter()
        .map(|&offset| Fault::Corrupt { offset, mask: 0x40 })
        .collect();
    faults.push(Fault::Truncate(20));
    faults.push(Fault::Truncate(40));
    let radius = FreeRadius::start(DEFAULT_USERS);
    let limit = bound_among(1, 2, faults.len() as u32);
    let mut cases = Vec::new();
    for fault in faults {
        let (proxy, engine) = through(
            radius.auth_addr,
            Schedule::script(&[fault, Fault::Pass, fault]),
            Schedule::pass(),
            2,
        );
        cases.push(tokio::spawn(async move {
            let alice = login(&engine, "alice", ALICE_PASSWORD, limit).await;
            assert_eq!(alice.outcome, Outcome::Accept(alice_roles()), "{fault:?}");
            let wrong = login(&engine, "alice", "wrong", limit).await;
            assert!(is_reject(&wrong), "{fault:?}: {wrong:?}");
            let sends = seen(&proxy.requests);
            assert!((2..=4).contains(&sends), "{fault:?}: {sends} sends");
            if !matches!(fault, Fault::Corrupt { offset: 20, .. }) {
                assert_eq!(sends, 4, "{fault:?}");
            }
        }));
    }
    all(cases).await;
}

#[tokio::test]
async fn truncated_replies_are_dropped() {
    let _gate = exclusive().await;
    let radius = FreeRadius::start(DEFAULT_USERS);
    let lengths = [0, 19, 20, 30];
    let limit = bound_among(1, 2, lengths.len() as u32);
    let mut cases = Vec::new();
    for len in lengths {
        let (proxy, engine) = through(
            radius.auth_addr,
            Schedule::pass(),
            Schedule::script(&[Fault::Truncate(len)]),
            2,
        );
        cases.push(tokio::spawn(async move {
            let alice = login(&engine, "alice", ALICE_PASSWORD, limit).await;
            assert_eq!(
                alice.outcome,
                Outcome::Accept(alice_roles()),
                "cut to {len}"
            );
            assert_eq!(seen(&proxy.requests), 2, "cut to {len}");
        }));
    }
    all(cases).await;
}

#[tokio::test]
async fn random_faults_on_both_directions_never_admit_a_wrong_password() {
    let _gate = exclusive().await;
    let rates = Rates {
        drop: 100,
        delay: 100,
        duplicate: 100,
        reorder: 100,
        corrupt: 100,
        truncate: 50,
        max_delay: Duration::from_millis(1500),
    };
    let tries = 4;
    const LOGINS: u32 = 32;
    let (_radius, proxy, engine) = proxied(
        Schedule::random(0xfa17_0001, rates),
        Schedule::random(0xfa17_0002, rates),
        tries,
    );
    let engine = Arc::new(engine);
    let mut logins = Vec::new();
    for i in 0..LOGINS {
        let engine = Arc::clone(&engine);
        logins.push(tokio::spawn(async move {
            let right = i % 2 == 0;
            let password = if right { ALICE_PASSWORD } else { "guess" };
            (
                right,
                login(&engine, "alice", password, bound_among(1, tries, LOGINS)).await,
            )
        }));
    }
    let mut unavailable = 0;
    for handle in logins {
        let (right, decision) = handle.await.unwrap();
        match (&decision.outcome, right) {
            (Outcome::Accept(roles), true) => assert_eq!(roles, &alice_roles()),
            (Outcome::Reject(_), false) => {}
            // Every one of the tries lost on the way: possible, and never a wrong answer.
            (Outcome::Unavailable(_), _) => unavailable += 1,
            _ => panic!("right password {right}: {decision:?}"),
        }
    }
    // With a loss of about 1 in 3 per exchange, 4 tries all lost is rare.
    assert!(unavailable <= 4, "{unavailable} of {LOGINS} unavailable");
    assert!(Counters::get(&proxy.requests.corrupted) > 0);
    assert!(Counters::get(&proxy.replies.corrupted) > 0);
}

// --- Crafted replies from a scripted server ----------------------------------------------

/// The secret the scripted server shares with portcullis.
const SCRIPTED_SECRET: &str = "scripted-server-secret";

/// An Access-Accept for `request` carrying alice's roles, keyed with `secret`, signed with a
/// Message-Authenticator or not, under Identifier `id` (the request's unless forged).
fn accept(request: &[u8], secret: &str, signed: bool, id: Option<u8>) -> Vec<u8> {
    let request = Packet::new_checked(request).unwrap();
    let mut buf = [0u8; 4096];
    let id = id.unwrap_or(request.identifier());
    let mut b = Builder::new(&mut buf, Code::AccessAccept, id, &[0; 16]).unwrap();
    if signed {
        b.message_authenticator().unwrap();
    }
    b.attribute(attr_type::CLASS, b"admins").unwrap();
    b.vendor_specific(17164, &[(1, b"2".as_slice())]).unwrap();
    let len = b
        .finish_reply(&request.authenticator(), &Secret::new(secret.as_bytes()))
        .unwrap();
    buf[..len].to_vec()
}

/// A scripted server and, behind it in the order, the real FreeRADIUS: a forged accept from
/// the first must not let a wrong password in, and the right answer comes from the second.
async fn forged_then_honest(answer: Answerer, require: &str) {
    let forger = Scripted::start(answer);
    let radius = FreeRadius::start(DEFAULT_USERS);
    let engine = engine(
        &[
            server(1, forger.addr, SCRIPTED_SECRET, require),
            server(2, radius.auth_addr, DEFAULT_SECRET, "no"),
        ],
        2,
    );
    let wrong = login(&engine, "alice", "wrong", bound(2, 2)).await;
    assert!(is_reject(&wrong), "{wrong:?}");
    assert_eq!(
        wrong.server.as_deref(),
        Some(radius.auth_addr.to_string().as_str()),
        "the reject comes from FreeRADIUS"
    );
    let right = login(&engine, "alice", ALICE_PASSWORD, bound(2, 2)).await;
    assert_eq!(right.outcome, Outcome::Accept(alice_roles()));
    assert_eq!(
        right.server.as_deref(),
        Some(radius.auth_addr.to_string().as_str())
    );
    assert_eq!(forger.requests(), 4, "two logins, two sends each");

    // Alone, the forger makes RADIUS unavailable: never an accept.
    let engine = engine_alone(&forger, require);
    let alone = login(&engine, "alice", "anything", bound(1, 2)).await;
    assert!(is_unavailable(&alone), "{alone:?}");
}

fn engine_alone(forger: &Scripted, require: &str) -> Engine {
    engine(&[server(1, forger.addr, SCRIPTED_SECRET, require)], 2)
}

#[tokio::test]
async fn reply_keyed_with_the_wrong_secret_is_never_an_accept() {
    let _gate = shared().await;
    forged_then_honest(
        Box::new(|req, _| vec![accept(req, "not-the-shared-secret", true, None)]),
        "no",
    )
    .await;
}

#[tokio::test]
async fn forged_response_authenticator_is_never_an_accept() {
    let _gate = shared().await;
    forged_then_honest(
        Box::new(|req, nth| {
            let mut reply = accept(req, SCRIPTED_SECRET, false, None);
            // Any 16 octets but the right ones.
            for (i, octet) in reply[4..20].iter_mut().enumerate() {
                *octet ^= (i as u8).wrapping_add(nth as u8) | 1;
            }
            vec![reply]
        }),
        "no",
    )
    .await;
}

#[tokio::test]
async fn reply_with_the_wrong_identifier_is_never_an_accept() {
    let _gate = shared().await;
    forged_then_honest(
        Box::new(|req, _| {
            let id = Packet::new_checked(req)
                .unwrap()
                .identifier()
                .wrapping_add(1);
            vec![accept(req, SCRIPTED_SECRET, true, Some(id))]
        }),
        "no",
    )
    .await;
}

#[tokio::test]
async fn unsigned_reply_from_a_server_that_must_sign_is_never_an_accept() {
    let _gate = shared().await;
    // Correct Response Authenticator, no Message-Authenticator (the BlastRADIUS shape).
    forged_then_honest(
        Box::new(|req, _| vec![accept(req, SCRIPTED_SECRET, false, None)]),
        "yes",
    )
    .await;
}

#[tokio::test]
async fn the_same_unsigned_reply_is_accepted_when_signatures_are_not_required() {
    let _gate = shared().await;
    // The control for the test above: only the policy differs.
    let server = Scripted::start(Box::new(|req, _| {
        vec![accept(req, SCRIPTED_SECRET, false, None)]
    }));
    let engine = engine_alone(&server, "no");
    let alice = login(&engine, "alice", "whatever", bound(1, 2)).await;
    assert_eq!(alice.outcome, Outcome::Accept(alice_roles()));
}

#[tokio::test]
async fn auto_policy_refuses_unsigned_replies_once_the_server_signed() {
    let _gate = shared().await;
    // Signed to the first request only; then unsigned replies that verify otherwise.
    let server = Scripted::start(Box::new(|req, nth| {
        vec![accept(req, SCRIPTED_SECRET, nth == 0, None)]
    }));
    let engine = engine_alone(&server, "auto");
    let first = login(&engine, "alice", "x", bound(1, 2)).await;
    assert_eq!(first.outcome, Outcome::Accept(alice_roles()));
    let second = login(&engine, "alice", "x", bound(1, 2)).await;
    assert!(is_unavailable(&second), "{second:?}");
    assert_eq!(server.requests(), 3, "one send, then two unanswered");
}

// --- The real daemon's front-end over a faulty upstream ----------------------------------

/// The front-end client secret of 127.0.0.1 in [`frontend_config`].
const FRONTEND_SECRET: &str = "faults-frontend-secret";

/// The daemon's configuration: front-end client 127.0.0.1, one upstream RADIUS server at
/// `upstream`, `tries` sends of 1 s.
fn frontend_config(upstream: SocketAddr, tries: u32) -> String {
    format!(
        r#"
[authentication]
current_sequence = 3
dead_time = 0

[radius.settings]
connection_timeout = {TIMEOUT}
max_number_of_tries = {tries}

{server}

[[radius.role_mappings]]
role = "Administrator"
attribute = 17164
attribute_value = "2"

[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{FRONTEND_SECRET}"
"#,
        server = server(1, upstream, DEFAULT_SECRET, "no")
    )
}

/// One signed PAP Access-Request to the front-end at `addr`, waiting up to `wait`: the
/// verified reply's code and Reply-Message.
fn frontend_login(
    addr: SocketAddr,
    user: &str,
    password: &str,
    wait: Duration,
) -> Option<(Code, String)> {
    let secret = Secret::new(FRONTEND_SECRET.as_bytes());
    let mut authenticator = [0u8; 16];
    getrandom::fill(&mut authenticator).unwrap();
    let mut buf = [0u8; 4096];
    let mut b = Builder::access_request(&mut buf, 7, &authenticator).unwrap();
    b.attribute(attr_type::USER_NAME, user.as_bytes()).unwrap();
    b.user_password(password.as_bytes(), &secret).unwrap();
    let len = b.finish_request(&secret).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(&buf[..len], addr).unwrap();
    let mut reply = [0u8; 4096];
    let n = socket.recv(&mut reply).ok()?;
    let packet = Packet::new_checked(&reply[..n]).unwrap();
    packet.verify_reply(&authenticator, &secret).unwrap();
    let message = packet
        .attributes()
        .filter(|a| a.typ() == attr_type::REPLY_MESSAGE)
        .map(|a| String::from_utf8_lossy(a.value()).into_owned())
        .collect();
    Some((packet.code(), message))
}

#[tokio::test]
async fn frontend_answers_rightly_over_a_lossy_upstream() {
    let _gate = shared().await;
    let radius = FreeRadius::start(DEFAULT_USERS);
    // alice: request lost, then its answer lost, then the third send answered (from
    // FreeRADIUS' duplicate cache). The wrong password: the first send corrupted (dropped by
    // FreeRADIUS), the second answered.
    let corrupt = Fault::Corrupt {
        offset: 30,
        mask: 0x10,
    };
    let proxy = UdpProxy::start(
        radius.auth_addr,
        Schedule::script(&[Fault::Drop, Fault::Pass, Fault::Pass, corrupt]),
        Schedule::script(&[Fault::Drop]),
    );
    let daemon = support::daemon::Daemon::start(Some(&frontend_config(proxy.addr(), 3)));
    let front = daemon.radius_addr.expect("the front-end listens");
    let wait = bound(1, 3);
    let alice =
        tokio::task::spawn_blocking(move || frontend_login(front, "alice", ALICE_PASSWORD, wait))
            .await
            .unwrap();
    assert_eq!(alice.map(|a| a.0), Some(Code::AccessAccept));
    let wrong = tokio::task::spawn_blocking(move || frontend_login(front, "alice", "nope", wait))
        .await
        .unwrap();
    assert!(
        matches!(&wrong, Some((Code::AccessReject, m)) if !m.contains("unavailable")),
        "{wrong:?}"
    );
    assert_eq!(seen(&proxy.requests), 5);
}

#[tokio::test]
async fn frontend_says_unavailable_when_the_upstream_path_is_dead() {
    let _gate = shared().await;
    let radius = FreeRadius::start(DEFAULT_USERS);
    let proxy = UdpProxy::start(
        radius.auth_addr,
        Schedule::script(&[Fault::Drop; 4]),
        Schedule::pass(),
    );
    let daemon = support::daemon::Daemon::start(Some(&frontend_config(proxy.addr(), 2)));
    let front = daemon.radius_addr.expect("the front-end listens");
    let wait = bound(1, 2);
    // Right or wrong, nobody gets in while the servers are silent.
    for password in [ALICE_PASSWORD, "wrong"] {
        let started = Instant::now();
        let answer =
            tokio::task::spawn_blocking(move || frontend_login(front, "alice", password, wait))
                .await
                .unwrap();
        assert!(started.elapsed() <= wait);
        assert_eq!(
            answer,
            Some((
                Code::AccessReject,
                portcullis::frontend::SERVERS_UNAVAILABLE.to_string()
            ))
        );
    }
    assert_eq!(seen(&proxy.requests), 4, "two logins, two sends each");
    // The path heals: the next login is answered.
    let alice =
        tokio::task::spawn_blocking(move || frontend_login(front, "alice", ALICE_PASSWORD, wait))
            .await
            .unwrap();
    assert_eq!(alice.map(|a| a.0), Some(Code::AccessAccept));
}
