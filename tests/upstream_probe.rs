//! Status-Server health checks (RFC 5997) of dead RADIUS servers, through the real daemon: a
//! FreeRADIUS that died and came back is found alive by a probe, long before `dead_time`, so
//! the next login goes to it; a server that never answers Status-Server stays dead for
//! `dead_time`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use portcullis_protocol::radius::{Builder, Code, Packet, Secret, attr_type};
use serde_json::json;
use support::daemon::{ADMIN_PASSWORD, Auth, Daemon};
use support::freeradius::{ALICE_PASSWORD, DEFAULT_SECRET, DEFAULT_USERS, FreeRadius};
use support::scripted_radius::Scripted;

/// Two RADIUS servers, `primary` tried first; a dead one stays dead for 300 s unless a
/// probe (every second) finds it alive.
fn config(primary: SocketAddr, secondary: SocketAddr) -> String {
    let hash = portcullis::engine::local::hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    format!(
        r#"
[authentication]
current_sequence = 3
dead_time = 300
probe_interval = 1

[radius.settings]
connection_timeout = 1
max_number_of_tries = 1

[[radius.servers]]
id = 1
order = 1
address = "{}"
port = {}
secret = "{DEFAULT_SECRET}"

[[radius.servers]]
id = 2
order = 2
address = "{}"
port = {}
secret = "{DEFAULT_SECRET}"

[[radius.role_mappings]]
role = "Administrator"
attribute = 25
attribute_value = "admins"

[[local_users]]
name = "admin"
password_hash = "{hash}"
roles = ["Administrator"]
"#,
        primary.ip(),
        primary.port(),
        secondary.ip(),
        secondary.port()
    )
}

/// Which server accepted `alice`.
fn accepted_by(daemon: &Daemon) -> String {
    let answer = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "alice", "password": ALICE_PASSWORD}).to_string()),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["server"].as_str().unwrap().to_string()
}

/// `portcullis_upstream_revived_total` of `server`.
fn revived(daemon: &Daemon, server: SocketAddr) -> u64 {
    let metrics = daemon.request("GET", "/metrics", Auth::None, None);
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let label = format!("server=\"{server}\"");
    metrics
        .body
        .lines()
        .filter(|l| l.starts_with("portcullis_upstream_revived_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[test]
fn a_server_back_from_the_dead_is_found_by_status_server_before_dead_time() {
    let mut primary = FreeRadius::start(DEFAULT_USERS);
    let secondary = FreeRadius::start(DEFAULT_USERS);
    let daemon = Daemon::start(Some(&config(primary.auth_addr, secondary.auth_addr)));
    assert_eq!(accepted_by(&daemon), primary.auth_addr.to_string());

    // Down: one login waits out its timeout and the primary is marked dead for 300 s.
    primary.stop();
    assert_eq!(accepted_by(&daemon), secondary.auth_addr.to_string());
    assert_eq!(accepted_by(&daemon), secondary.auth_addr.to_string());
    let down = health(&daemon);
    assert_eq!(down.len(), 2, "{down:?}");
    assert_eq!(down[0]["alive"], false, "{down:?}");
    assert!(down[0]["dead_for"].as_u64().unwrap() > 200, "{down:?}");
    assert_eq!(down[1]["alive"], true, "{down:?}");

    // Back: a probe finds it long before dead_time is over.
    primary.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while revived(&daemon, primary.auth_addr) == 0 {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(primary.log().contains("Status-Server"), "{}", primary.log());
    assert_eq!(accepted_by(&daemon), primary.auth_addr.to_string());
    let health = health(&daemon);
    assert_eq!(
        health[0]["server"],
        primary.auth_addr.to_string(),
        "{health:?}"
    );
    assert_eq!(health[0]["alive"], true, "{health:?}");
    assert!(health[0]["last_answer"].is_string(), "{health:?}");
}

/// An Access-Accept with Class `admins` for an Access-Request; nothing for anything else
/// (Status-Server included).
fn accept_access_requests(request: &[u8]) -> Vec<Vec<u8>> {
    let packet = Packet::new_checked(request).unwrap();
    if packet.code() != Code::AccessRequest {
        return vec![];
    }
    let mut buf = [0u8; 4096];
    let mut b = Builder::new(&mut buf, Code::AccessAccept, packet.identifier(), &[0; 16]).unwrap();
    b.message_authenticator().unwrap();
    b.attribute(attr_type::CLASS, b"admins").unwrap();
    let len = b
        .finish_reply(
            &packet.authenticator(),
            &Secret::new(DEFAULT_SECRET.as_bytes()),
        )
        .unwrap();
    vec![buf[..len].to_vec()]
}

/// The server_health route's list.
fn health(daemon: &Daemon) -> Vec<serde_json::Value> {
    let answer = daemon.request(
        "GET",
        "/api/mgmt.remote_authentication/1.0/server_health",
        Auth::Basic("admin", ADMIN_PASSWORD),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["servers"].as_array().unwrap().clone()
}

#[test]
fn a_server_that_ignores_status_server_stays_dead_for_dead_time() {
    // Silent to the first Access-Request (so it is marked dead) and to every Status-Server;
    // it accepts later Access-Requests.
    let ignoring = Scripted::start(Box::new(|request, nth| {
        if nth == 0 {
            return vec![];
        }
        accept_access_requests(request)
    }));
    let secondary = FreeRadius::start(DEFAULT_USERS);
    let daemon = Daemon::start(Some(&config(ignoring.addr, secondary.auth_addr)));
    assert_eq!(accepted_by(&daemon), secondary.auth_addr.to_string());

    // Probed (every second), never answering: after several probes it is still dead.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ignoring.requests() < 4 {
        assert!(
            Instant::now() < deadline,
            "{} requests",
            ignoring.requests()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(revived(&daemon, ignoring.addr), 0);
    assert_eq!(accepted_by(&daemon), secondary.auth_addr.to_string());
    assert_eq!(health(&daemon)[0]["alive"], false);
    let metrics = daemon.request("GET", "/metrics", Auth::None, None).body;
    assert!(
        metrics.contains(&format!(
            "portcullis_upstream_up{{protocol=\"radius\",server=\"{}\"}} 0",
            ignoring.addr
        )),
        "{metrics}"
    );
}

/// [`config`] with idle servers probed too.
fn config_probing_idle(primary: SocketAddr, secondary: SocketAddr) -> String {
    config(primary, secondary).replace(
        "probe_interval = 1\n",
        "probe_interval = 1\nprobe_idle = true\n",
    )
}

/// Waits (at most 30 s) until `done` holds for the first server's health entry.
fn wait_for_health(daemon: &Daemon, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = health(daemon);
        if done(&health[0]) {
            return;
        }
        assert!(Instant::now() < deadline, "{health:?}\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_idle_server_that_died_is_marked_dead_before_a_login_waits_on_it() {
    let mut primary = FreeRadius::start(DEFAULT_USERS);
    let secondary = FreeRadius::start(DEFAULT_USERS);
    let config = config_probing_idle(primary.auth_addr, secondary.auth_addr);
    assert!(config.contains("probe_idle = true"));
    let daemon = Daemon::start(Some(&config));
    assert_eq!(accepted_by(&daemon), primary.auth_addr.to_string());
    // Idle, it is probed, and answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !primary.log().contains("Status-Server") {
        assert!(Instant::now() < deadline, "{}", primary.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for_health(&daemon, |primary| primary["alive"] == true);

    // It dies between logins: the next probe finds it, no login needed.
    primary.stop();
    wait_for_health(&daemon, |primary| primary["alive"] == false);
    assert!(
        // Log lines are written in batches: the line may follow the health route's answer.
        daemon.wait_for_log(
            "idle RADIUS server did not answer Status-Server",
            Duration::from_secs(5)
        ),
        "{}",
        daemon.log()
    );
    assert_eq!(accepted_by(&daemon), secondary.auth_addr.to_string());

    // Back, it is revived like any dead server.
    primary.restart();
    wait_for_health(&daemon, |primary| primary["alive"] == true);
    assert_eq!(accepted_by(&daemon), primary.auth_addr.to_string());
}

#[test]
fn an_idle_server_that_ignores_status_server_is_not_marked_dead() {
    // Accepts every Access-Request, never answers a Status-Server.
    let ignoring = Scripted::start(Box::new(|request, _| accept_access_requests(request)));
    let secondary = FreeRadius::start(DEFAULT_USERS);
    let daemon = Daemon::start(Some(&config_probing_idle(
        ignoring.addr,
        secondary.auth_addr,
    )));
    assert_eq!(accepted_by(&daemon), ignoring.addr.to_string());
    // Probed while idle (one probe a second, each waiting its one-second timeout).
    let deadline = Instant::now() + Duration::from_secs(30);
    while ignoring.requests() < 4 {
        assert!(
            Instant::now() < deadline,
            "{} requests",
            ignoring.requests()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(health(&daemon)[0]["alive"], true);
    assert_eq!(accepted_by(&daemon), ignoring.addr.to_string());
}
