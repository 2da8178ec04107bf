//! The rules the login pipeline applies once, seen through each door of the real daemon: the
//! REST login and the RADIUS front-end (driven by radclient) give the same decision for the
//! same user, each in its own words, and record the same audit event but for the door it
//! came through. (The throttle's lock through all three doors, HTTP Basic included, is in
//! `tests/throttle.rs`; the second factor through both login doors in `tests/api_mfa_*.rs`
//! and `tests/frontend_mfa.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use portcullis::frontend::{NO_ROLE_MAPPED, SERVERS_UNAVAILABLE};
use serde_json::{Value, json};
use support::daemon::{ADMIN_PASSWORD, Auth, Daemon};
use support::freeradius::{
    BOB_PASSWORD, ClientOutput, DEFAULT_SECRET, DEFAULT_USERS, FreeRadius, TEST_DICTIONARY,
};

/// The front-end client secret of 127.0.0.1.
const SECRET: &str = "doors-test-secret-of-16";
/// Upper bound on one radclient run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// One remote RADIUS server at `upstream`, the bootstrap administrator, and the front-end
/// client 127.0.0.1; only the test vendor attribute maps to a role, so FreeRADIUS's `bob`
/// (Class "operators" only) is accepted upstream and given no role.
fn config(upstream: std::net::SocketAddr) -> String {
    let hash = portcullis::engine::local::hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    format!(
        r#"
[authentication]
current_sequence = 3

[radius.settings]
connection_timeout = 1
max_number_of_tries = 1

[[radius.servers]]
id = 1
order = 1
address = "{ip}"
port = {port}
secret = "{DEFAULT_SECRET}"

[[radius.role_mappings]]
role = "Administrator"
attribute = 17164
attribute_value = "2"

[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{SECRET}"

[[local_users]]
name = "admin"
password_hash = "{hash}"
roles = ["Administrator"]
"#,
        ip = upstream.ip(),
        port = upstream.port()
    )
}

fn rest_login(daemon: &Daemon, user: &str, password: &str) -> support::daemon::Answer {
    daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": user, "password": password}).to_string()),
    )
}

fn radius_login(daemon: &Daemon, user: &str, password: &str) -> ClientOutput {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dictionary"), TEST_DICTIONARY).unwrap();
    support::freeradius::radclient_auth(
        dir.path(),
        daemon.radius_addr.expect("the RADIUS front-end listens"),
        SECRET,
        &format!("User-Name = {user}\nUser-Password = {password}\n"),
        CLIENT_TIMEOUT,
    )
}

/// The login events of `user`, once there are `count` of them (the audit log is written
/// behind; bounded wait).
fn login_events(daemon: &Daemon, user: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = daemon.request(
            "GET",
            &format!("/api/audit/1.0/events?kind=login&user={user}"),
            Auth::Basic("admin", ADMIN_PASSWORD),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let events = answer.json()["events"].as_array().unwrap().clone();
        if events.len() >= count {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{count} events of {user}: {events:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The two events (one per door) agree on everything but where they came from.
fn assert_same_but_the_door(events: &[Value]) {
    assert_eq!(events.len(), 2, "{events:?}");
    let rest = events
        .iter()
        .find(|e| e["action"] != "radius:loopback")
        .expect("the REST login's event");
    let radius = events
        .iter()
        .find(|e| e["action"] == "radius:loopback")
        .expect("the RADIUS front-end's event");
    for field in ["user", "result", "reason", "method", "server"] {
        assert_eq!(rest[field], radius[field], "{field}: {events:?}");
    }
}

#[test]
fn no_role_mapped_is_one_decision_through_the_rest_login_and_the_radius_front_end() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let daemon = Daemon::start(Some(&config(radius.auth_addr)));

    let rest = rest_login(&daemon, "bob", BOB_PASSWORD);
    assert_eq!(rest.status, 401, "{}", rest.body);
    assert_eq!(rest.json()["error_info"]["reason"], "NO_ROLE_MAPPED");

    let reply = radius_login(&daemon, "bob", BOB_PASSWORD);
    assert!(reply.received("Access-Reject"), "{reply:?}");
    assert!(
        reply
            .stdout
            .contains(&format!("Reply-Message = \"{NO_ROLE_MAPPED}\"")),
        "{reply:?}"
    );

    let events = login_events(&daemon, "bob", 2);
    assert_same_but_the_door(&events);
    assert_eq!(events[0]["result"], "reject");
    assert_eq!(events[0]["method"], "RADIUS");
    assert_eq!(events[0]["server"], radius.auth_addr.to_string());
}

#[test]
fn unavailable_servers_are_one_decision_through_the_rest_login_and_the_radius_front_end() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let daemon = Daemon::start(Some(&config(silent.local_addr().unwrap())));

    let rest = rest_login(&daemon, "carol", "pw");
    assert_eq!(rest.status, 401, "{}", rest.body);
    assert_eq!(rest.json()["error_info"]["reason"], "SERVERS_UNAVAILABLE");

    let reply = radius_login(&daemon, "carol", "pw");
    assert!(reply.received("Access-Reject"), "{reply:?}");
    assert!(
        reply
            .stdout
            .contains(&format!("Reply-Message = \"{SERVERS_UNAVAILABLE}\"")),
        "{reply:?}"
    );

    let events = login_events(&daemon, "carol", 2);
    assert_same_but_the_door(&events);
    assert_eq!(events[0]["result"], "unavailable");
}
