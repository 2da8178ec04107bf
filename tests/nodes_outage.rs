//! A node whose shared PostgreSQL stops and starts again under load, through its front doors:
//! first factors keep being decided (never a false accept), second factors and configuration
//! changes are refused while the database is away and say why, the health route and the
//! log say so, every audit event of the run is in the database afterwards, and the node
//! recovers without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use portcullis::engine::local::hash_password;
use portcullis_protocol::radius::Code;
use serde_json::json;
use support::daemon::{Auth, Daemon};
use support::mfa::{enrol, partial_login};
use support::postgres::Postgres;
use support::radius_udp::login;

const SECRET: &str = "outage-frontend-secret";
const USER_PASSWORD: &str = "local-password";
const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-password";
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(30);

fn config(pg: &Postgres, dir: &std::path::Path) -> String {
    let user = hash_password(USER_PASSWORD.as_bytes()).unwrap();
    let admin = hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    format!(
        r#"
{state}timeout = 2

# Every guess is walked and audited (a locked user's attempts are refused unaudited).
[throttle]
enabled = false

[mfa.policy]
required = "roles"
roles = ["Operator"]

[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{SECRET}"

[[local_users]]
name = "{ADMIN}"
password_hash = "{admin}"
roles = ["Administrator"]

[[local_users]]
name = "dave"
password_hash = "{user}"
roles = ["Monitor"]

[[local_users]]
name = "carol"
password_hash = "{user}"
roles = ["Operator"]
"#,
        state = pg.state_table(dir, "node-a"),
    )
}

fn health(daemon: &Daemon) -> u16 {
    daemon
        .request("GET", "/api/state/1.0/health", Auth::None, None)
        .status
}

fn until_health(daemon: &Daemon, status: u16) {
    let deadline = Instant::now() + WAIT;
    while health(daemon) != status {
        assert!(Instant::now() < deadline, "health never became {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many login events of `user` the audit log holds (every page).
fn login_events(daemon: &Daemon, user: &str) -> usize {
    let mut count = 0;
    let mut before = None;
    loop {
        let mut path = format!("/api/audit/1.0/events?kind=login&user={user}&limit=1000");
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        let answer = daemon.request("GET", &path, Auth::Basic(ADMIN, ADMIN_PASSWORD), None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let page = answer.json();
        count += page["events"].as_array().unwrap().len();
        match page["next_before"].as_i64() {
            Some(next) => before = Some(next),
            None => return count,
        }
    }
}

fn add_user(daemon: &Daemon, name: &str) -> u16 {
    let body = json!({"name": name, "password": USER_PASSWORD, "roles": ["Monitor"]});
    daemon
        .request(
            "POST",
            "/api/mgmt.local_users/1.0/users",
            Auth::Basic(ADMIN, ADMIN_PASSWORD),
            Some(&body.to_string()),
        )
        .status
}

#[test]
fn the_database_stops_and_starts_under_load() {
    let mut pg = Postgres::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, config(&pg, dir.path())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let daemon = Arc::new(Daemon::start_in(dir));
    let addr = daemon.radius_addr.unwrap();
    let partial = partial_login(&daemon, "carol", USER_PASSWORD);
    let mut carol = enrol(&daemon, Auth::Bearer(&partial), "phone");
    assert_eq!(health(&daemon), 200);

    // Load: dave with the right password (every answer an accept), and guesses for a user
    // who does not exist (never an accept), until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = [("dave", USER_PASSWORD), ("mallory", "guess")]
        .into_iter()
        .map(|(user, password)| {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut answered = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let code = login(addr, SECRET, user, password, REPLY_TIMEOUT);
                    sent.fetch_add(1, Ordering::Relaxed);
                    match (user, code) {
                        ("dave", Some(Code::AccessAccept)) => answered += 1,
                        ("mallory", Some(Code::AccessReject)) => answered += 1,
                        other => panic!("unexpected answer {other:?}"),
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                (user, answered)
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(500));
    pg.stop();
    until_health(&daemon, 503);
    assert!(daemon.wait_for_log("state database unreachable", WAIT));
    // Second factors fail closed, with a reason; so do REST logins (their token could not be
    // shared) and configuration changes.
    for _ in 0..3 {
        let code = login(addr, SECRET, "carol", USER_PASSWORD, REPLY_TIMEOUT);
        assert_eq!(code, Some(Code::AccessReject));
        // A good code, not spent (the database cannot record it): refused all the same.
        let good = support::mfa::code(&carol.secret, support::mfa::now_step() + 1);
        let with_code = format!("{USER_PASSWORD},{good}");
        let code = login(addr, SECRET, "carol", &with_code, REPLY_TIMEOUT);
        assert_eq!(code, Some(Code::AccessReject));
    }
    let rest = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "dave", "password": USER_PASSWORD}).to_string()),
    );
    assert_eq!(rest.status, 503, "{}", rest.body);
    assert_eq!(add_user(&daemon, "erin"), 503);
    std::thread::sleep(Duration::from_secs(2));

    pg.start();
    until_health(&daemon, 200);
    // Back without a restart: a second factor and a configuration change work again.
    let with_code = format!("{USER_PASSWORD},{}", carol.next_code());
    let code = login(addr, SECRET, "carol", &with_code, REPLY_TIMEOUT);
    assert_eq!(code, Some(Code::AccessAccept));
    assert_eq!(add_user(&daemon, "erin"), 201);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let answered: Vec<(&str, usize)> = load.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(answered.iter().all(|(_, n)| *n > 0), "{answered:?}");

    // Every login of the run is in the audit log, the outage's included (dave's REST login
    // too).
    for (user, n) in &answered {
        let n = &(n + usize::from(*user == "dave"));
        let deadline = Instant::now() + WAIT;
        loop {
            let stored = login_events(&daemon, user);
            if stored == *n {
                break;
            }
            assert!(stored < *n, "{user}: {stored} events for {n} logins");
            assert!(
                Instant::now() < deadline,
                "{user}: {stored} of {n} events stored"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(
        login_events(&daemon, "carol"),
        2 /* enrolment logins */ + 6 + 1
    );
}
