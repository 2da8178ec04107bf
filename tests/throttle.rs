//! Brute-force throttling in the real daemon: REST login, HTTP Basic and the RADIUS front-end
//! lock a user after ten failures, refuse it without walking the sequence (FreeRADIUS sees no
//! request), keep the lock across a restart, and a remote attacker cannot lock the
//! administrator out on the appliance itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use portcullis::engine::local::hash_password;
use portcullis::frontend::INVALID_CREDENTIALS;
use portcullis::throttle::RADIUS_LOCKED;
use serde_json::Value;
use support::daemon::Daemon;
use support::freeradius::{ALICE_PASSWORD, DEFAULT_SECRET, DEFAULT_USERS, FreeRadius};

const ADMIN: &str = "admin-local-password";
const FRONTEND_SECRET: &str = "throttle-frontend-secret";
const LOGIN: &str = "/api/auth/1.0/login";

/// Local `admin`, FreeRADIUS upstream (sequence 3 "Local, RADIUS"), a front-end client on
/// 127.0.0.1, and `extra` TOML.
fn config(radius: &FreeRadius, extra: &str) -> String {
    let hash = hash_password(ADMIN.as_bytes()).unwrap();
    format!(
        r#"
[authentication]
current_sequence = 3

[radius.settings]
connection_timeout = 2
max_number_of_tries = 1

[[radius.servers]]
id = 1
order = 0
address = "{}"
port = {}
secret = "{DEFAULT_SECRET}"

[[radius.role_mappings]]
role = "Monitor"
attribute = 17164
attribute_value = "2"

[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{FRONTEND_SECRET}"

[[local_users]]
name = "admin"
password_hash = "{hash}"
roles = ["Administrator"]
{extra}
"#,
        radius.auth_addr.ip(),
        radius.auth_addr.port()
    )
}

/// One HTTP answer with its headers.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// Sends a request with curl to `https://{addr}{path}` or, with `unix`, to the Unix socket.
fn send(
    target: Target<'_>,
    method: &str,
    path: &str,
    basic: Option<(&str, &str)>,
    body: Option<&str>,
) -> Reply {
    let headers = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sk",
        "--max-time",
        "20",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ])
    .arg("-D")
    .arg(headers.path());
    let url = match target {
        Target::Tcp(addr) => format!("https://{addr}{path}"),
        Target::Unix(socket) => {
            cmd.arg("--unix-socket").arg(socket);
            format!("http://localhost{path}")
        }
    };
    if let Some((user, password)) = basic {
        cmd.args(["-u", &format!("{user}:{password}")]);
    }
    if let Some(body) = body {
        cmd.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
    }
    let output = cmd.arg(url).stdin(Stdio::null()).output().expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    Reply {
        status: status
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl failed: {}", String::from_utf8_lossy(&output.stderr))),
        headers: std::fs::read_to_string(headers.path()).unwrap(),
        body: body.to_string(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Tcp(SocketAddr),
    Unix(&'a Path),
}

fn login(target: Target<'_>, user: &str, password: &str) -> Reply {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    send(target, "POST", LOGIN, None, Some(&body))
}

/// Access-Requests FreeRADIUS has received so far.
fn upstream_requests(radius: &FreeRadius) -> usize {
    radius.log().matches("Received Access-Request").count()
}

/// Waits until FreeRADIUS has logged `expected` requests (bounded), then returns the count.
fn upstream_settled(radius: &FreeRadius, expected: usize) -> usize {
    for _ in 0..100 {
        if upstream_requests(radius) >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    upstream_requests(radius)
}

fn assert_locked(reply: &Reply) {
    assert_eq!(reply.status, 429, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["error_id"], "LOCKED_OUT", "{body}");
    assert_eq!(body["error_info"]["reason"], "LOCKED_OUT", "{body}");
    let retry: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(body["error_info"]["retry_after"], retry, "{body}");
}

#[test]
fn rest_login_locks_after_ten_failures_without_asking_upstream_and_survives_a_restart() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let daemon = Daemon::start(Some(&config(&radius, "")));
    let tcp = Target::Tcp(daemon.addr);
    for n in 1..=10 {
        let reply = login(tcp, "Alice", "wrong-password");
        assert_eq!(reply.status, 401, "attempt {n}: {reply:?}");
    }
    assert_eq!(upstream_settled(&radius, 10), 10);
    // The right password (in another case: names are counted case-insensitively) is refused
    // without a walk.
    assert_locked(&login(tcp, "alice", ALICE_PASSWORD));
    assert_locked(&login(tcp, "ALICE", ALICE_PASSWORD));
    assert_eq!(
        upstream_settled(&radius, 11),
        10,
        "a locked login reached FreeRADIUS"
    );

    let admin = Some(("admin", ADMIN));
    let list = send(tcp, "GET", "/api/mgmt.throttle/1.0/lockouts", admin, None);
    assert_eq!(list.status, 200, "{list:?}");
    let entries = list.json();
    let alice = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "user" && e["name"] == "alice")
        .unwrap_or_else(|| panic!("{entries}"))
        .clone();
    assert_eq!(alice["scope"], "loopback");
    assert_eq!(alice["failures"], 10);
    assert!(alice["locked_for"].as_i64().unwrap() > 0, "{alice}");

    // The counts live in the state database.
    let daemon = daemon.restart();
    let tcp = Target::Tcp(daemon.addr);
    assert_locked(&login(tcp, "alice", ALICE_PASSWORD));
    // A locked user is refused over HTTP Basic too, before any check.
    let basic = Some(("alice", ALICE_PASSWORD));
    assert_locked(&send(
        tcp,
        "GET",
        "/api/mgmt.throttle/1.0/lockouts",
        basic,
        None,
    ));
    let cleared = send(
        tcp,
        "DELETE",
        "/api/mgmt.throttle/1.0/users/ALICE",
        admin,
        None,
    );
    assert_eq!(cleared.status, 204, "{cleared:?}");
    let ok = login(tcp, "alice", ALICE_PASSWORD);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(upstream_settled(&radius, 11), 11);
    // A success clears the count: ten more failures are needed for the next lock.
    for n in 1..=9 {
        assert_eq!(login(tcp, "alice", "wrong").status, 401, "attempt {n}");
    }
    assert_eq!(login(tcp, "alice", ALICE_PASSWORD).status, 200);
}

#[test]
fn http_basic_failures_count_and_lock_too() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let daemon = Daemon::start(Some(&config(&radius, "")));
    let tcp = Target::Tcp(daemon.addr);
    const USERS: &str = "/api/mgmt.local_users/1.0/users";
    assert_eq!(
        send(tcp, "GET", USERS, Some(("admin", ADMIN)), None).status,
        200
    );
    for n in 1..=10 {
        let reply = send(tcp, "GET", USERS, Some(("admin", "guess")), None);
        assert_eq!(reply.status, 401, "attempt {n}: {reply:?}");
    }
    assert_locked(&send(tcp, "GET", USERS, Some(("admin", ADMIN)), None));
    // REST login counts against the same user.
    assert_locked(&login(tcp, "admin", ADMIN));
    // The OpenAPI document says so.
    let doc = send(tcp, "GET", "/api/openapi.json", None, None).json();
    let responses = &doc["paths"][USERS]["get"]["responses"];
    assert!(responses.get("429").is_some(), "{responses}");
    assert!(
        doc["paths"][LOGIN]["post"]["responses"]
            .get("429")
            .is_some()
    );
}

#[test]
fn a_remote_attacker_cannot_lock_out_the_administrator_on_loopback() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    // Only 127.0.0.2 is "on the appliance" (and the Unix socket, always): the attacker on
    // 127.0.0.1 over TCP counts as remote.
    let local_networks = "[throttle]\nlocal_networks = [\"127.0.0.2/32\"]\n";
    let daemon = Daemon::start_with(
        Some(&config(&radius, local_networks)),
        &["--unix-socket", "{dir}/api.sock"],
    );
    let socket = daemon.dir().join("api.sock");
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let remote = Target::Tcp(daemon.addr);
    let local = Target::Unix(&socket);
    assert_eq!(daemon.addr.ip().to_string(), "127.0.0.1");

    // Per source: ten failures for ten names lock the attacker's address for everyone.
    for n in 0..10 {
        assert_eq!(login(remote, &format!("user{n}"), "guess").status, 401);
    }
    assert_locked(&login(remote, "alice", ALICE_PASSWORD));
    let admin = Some(("admin", ADMIN));
    let source = format!("/api/mgmt.throttle/1.0/sources/{}", daemon.addr.ip());
    assert_eq!(send(local, "DELETE", &source, admin, None).status, 204);
    assert_eq!(login(remote, "alice", ALICE_PASSWORD).status, 200);

    // Per user: the attacker locks `admin` out from the network...
    for n in 0..10 {
        let reply = login(remote, "admin", &format!("guess-{n}"));
        assert_eq!(reply.status, 401, "attempt {n}: {reply:?}");
    }
    assert_locked(&login(remote, "admin", ADMIN));
    assert_locked(&send(
        remote,
        "GET",
        "/api/mgmt.throttle/1.0/lockouts",
        admin,
        None,
    ));
    // ...but not on the appliance: the loopback count of `admin` is its own.
    let ok = login(local, "admin", ADMIN);
    assert_eq!(ok.status, 200, "{ok:?}");
    let list = send(local, "GET", "/api/mgmt.throttle/1.0/lockouts", admin, None);
    assert_eq!(list.status, 200, "{list:?}");
    let entries = list.json();
    let admin_entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "user" && e["name"] == "admin")
        .unwrap_or_else(|| panic!("{entries}"));
    assert_eq!(admin_entry["scope"], "remote");
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "source" && e["name"] == daemon.addr.ip().to_string()),
        "{entries}"
    );
    // Clearing the user and the source lets the administrator back in from the network.
    assert_eq!(
        send(
            local,
            "DELETE",
            "/api/mgmt.throttle/1.0/users/admin",
            admin,
            None
        )
        .status,
        204
    );
    assert_eq!(send(local, "DELETE", &source, admin, None).status, 204);
    assert_eq!(login(remote, "admin", ADMIN).status, 200);
}

/// `radclient` against the front-end with `input`; the output.
fn radclient(daemon: &Daemon, input: &str) -> support::freeradius::ClientOutput {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dictionary"),
        support::freeradius::TEST_DICTIONARY,
    )
    .unwrap();
    let mut cmd = Command::new("radclient");
    cmd.arg("-x")
        .arg("-d")
        .arg(dir.path())
        .args(["-t", "3", "-r", "1"])
        .arg(daemon.radius_addr.expect("front-end").to_string())
        .arg("auth")
        .arg(FRONTEND_SECRET);
    support::freeradius::run_bounded(&mut cmd, input, Duration::from_secs(20))
}

#[test]
fn radius_front_end_rejects_a_locked_user_with_a_reply_message_and_no_walk() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let daemon = Daemon::start(Some(&config(&radius, "")));
    for n in 1..=10 {
        let reply = radclient(&daemon, "User-Name = alice\nUser-Password = wrong\n");
        assert!(reply.received("Access-Reject"), "attempt {n}: {reply:?}");
        assert!(reply.stdout.contains(INVALID_CREDENTIALS), "{reply:?}");
    }
    assert_eq!(upstream_settled(&radius, 10), 10);
    let locked = radclient(
        &daemon,
        &format!("User-Name = alice\nUser-Password = {ALICE_PASSWORD}\n"),
    );
    assert!(locked.received("Access-Reject"), "{locked:?}");
    assert!(locked.stdout.contains(RADIUS_LOCKED), "{locked:?}");
    assert_eq!(
        upstream_settled(&radius, 11),
        10,
        "a locked request was walked"
    );
    assert!(daemon.wait_for_log("RADIUS front-end: locked out", Duration::from_secs(5)));

    // Front-end attempts count as remote: REST from loopback still works.
    let ok = login(Target::Tcp(daemon.addr), "alice", ALICE_PASSWORD);
    assert_eq!(ok.status, 200, "{ok:?}");
    // Calling-Station-Id is the per-source key of a front-end request: ten failures from one
    // station lock that station, not the NAS (bob, from another station, still gets in).
    for n in 0..10 {
        let input = format!(
            "User-Name = user{n}\nUser-Password = x\nCalling-Station-Id = \"198.51.100.9\"\n"
        );
        assert!(radclient(&daemon, &input).received("Access-Reject"));
    }
    let station = radclient(
        &daemon,
        "User-Name = bob\nUser-Password = bob-password\nCalling-Station-Id = \"198.51.100.9\"\n",
    );
    assert!(station.stdout.contains(RADIUS_LOCKED), "{station:?}");
    let elsewhere = radclient(
        &daemon,
        "User-Name = bob\nUser-Password = bob-password\nCalling-Station-Id = \"198.51.100.10\"\n",
    );
    // bob maps to no role (Class only) in this configuration: a reject, but after a walk.
    assert!(!elsewhere.stdout.contains(RADIUS_LOCKED), "{elsewhere:?}");
}
