//! Two real daemons on one PostgreSQL (a throwaway cluster), through their front doors: a
//! token from one works on the other and a logout on one ends it on both; a device paired on
//! one gives codes the other accepts, and one code sent to both at the same moment is
//! accepted once (raced for several users); a RADIUS challenge one node sent is answered at
//! the other; the audit log lists both nodes' events, each naming its node.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use portcullis::engine::local::hash_password;
use serde_json::{Value, json};
use support::daemon::{Auth, Daemon};
use support::freeradius::ClientOutput;
use support::mfa::{Enrolled, enrol, partial_login};
use support::postgres::{PASSWORD, Postgres};

const SECRET: &str = "nodes-frontend-secret";
const USER_PASSWORD: &str = "local-password";
const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-password";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// Users who owe a second factor (role Operator), one per race.
const RACERS: [&str; 6] = ["op1", "op2", "op3", "op4", "op5", "op6"];
/// The MFA sealing key every node shares (copied to each node's state directory).
const MFA_KEY: [u8; 32] = [0x5a; 32];

/// The configuration of node `node` on `pg`: the same users and policy on both.
fn config(pg: &Postgres, dir: &std::path::Path, node: &str) -> String {
    config_with(pg, dir, node, "")
}

/// [`config`] with `extra` TOML at its end.
fn config_with(pg: &Postgres, dir: &std::path::Path, node: &str, extra: &str) -> String {
    // One configuration for every node, hashes included: a local user's session is kept
    // only while the user is what it was at login, and that is compared by hash.
    static HASHES: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (user_hash, admin_hash) = HASHES.get_or_init(|| {
        (
            hash_password(USER_PASSWORD.as_bytes()).unwrap(),
            hash_password(ADMIN_PASSWORD.as_bytes()).unwrap(),
        )
    });
    let mut users = format!(
        "[[local_users]]\nname = \"{ADMIN}\"\npassword_hash = \"{admin_hash}\"\nroles = [\"Administrator\"]\n\n\
         [[local_users]]\nname = \"dave\"\npassword_hash = \"{user_hash}\"\nroles = [\"Monitor\"]\n\n"
    );
    for name in RACERS.iter().chain(&["alice", "carol"]) {
        users.push_str(&format!(
            "[[local_users]]\nname = \"{name}\"\npassword_hash = \"{user_hash}\"\nroles = [\"Operator\"]\n\n"
        ));
    }
    format!(
        r#"
{state}
[throttle]
max_failures = 4

[mfa.policy]
required = "roles"
roles = ["Operator"]

[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{SECRET}"

{users}
{extra}"#,
        state = pg.state_table(dir, node),
    )
}

/// A daemon of `node` on `pg`, with the shared MFA key.
fn node(pg: &Postgres, node: &str) -> Daemon {
    node_with(pg, node, "")
}

/// [`node`] with `extra` TOML in its configuration.
fn node_with(pg: &Postgres, node: &str, extra: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = state.join("mfa.key");
    std::fs::write(&key, MFA_KEY).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, config_with(pg, dir.path(), node, extra)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    Daemon::start_in(dir)
}

fn session(daemon: &Daemon, token: &str) -> u16 {
    daemon
        .request("GET", "/api/auth/1.0/session", Auth::Bearer(token), None)
        .status
}

fn finish(daemon: &Daemon, partial: &str, code: &str) -> (u16, Value) {
    let answer = daemon.request(
        "POST",
        "/api/auth/1.0/login/mfa",
        Auth::Bearer(partial),
        Some(&json!({ "code": code }).to_string()),
    );
    let body = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer.status, body)
}

#[test]
fn two_nodes_share_sessions_devices_codes_challenges_and_audit() {
    let pg = Postgres::new();
    let a = node(&pg, "node-a");
    let b = node(&pg, "node-b");

    // A token from A works on B; a logout on A ends it on B too.
    let dave = a.login("dave", USER_PASSWORD);
    assert_eq!(session(&b, &dave), 200);
    let logout = a.request("POST", "/api/auth/1.0/logout", Auth::Bearer(&dave), None);
    assert_eq!(logout.status, 204, "{}", logout.body);
    assert_eq!(session(&b, &dave), 401);
    assert_eq!(session(&a, &dave), 401);
    // And the other way round, logging out on the node that did not open it.
    let dave = b.login("dave", USER_PASSWORD);
    assert_eq!(session(&a, &dave), 200);
    let logout = a.request("POST", "/api/auth/1.0/logout", Auth::Bearer(&dave), None);
    assert_eq!(logout.status, 204, "{}", logout.body);
    assert_eq!(session(&b, &dave), 401);

    // A device paired on A; its code finishes a login on B.
    let partial = partial_login(&a, "alice", USER_PASSWORD);
    let mut alice = enrol(&a, Auth::Bearer(&partial), "phone");
    let partial = partial_login(&b, "alice", USER_PASSWORD);
    let (status, body) = finish(&b, &partial, &alice.next_code());
    assert_eq!(status, 200, "{body}");
    let full = body["token"].as_str().unwrap().to_owned();
    assert_eq!(session(&a, &full), 200);

    // One code, sent to A and B at the same moment: accepted once. Raced once per user,
    // each with a device of their own.
    let a = Arc::new(a);
    let b = Arc::new(b);
    for user in RACERS {
        let partial_a = partial_login(&a, user, USER_PASSWORD);
        let mut device: Enrolled = enrol(&a, Auth::Bearer(&partial_a), "phone");
        let code = device.next_code();
        let partial_a = partial_login(&a, user, USER_PASSWORD);
        let partial_b = partial_login(&b, user, USER_PASSWORD);
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [(a.clone(), partial_a), (b.clone(), partial_b)]
            .into_iter()
            .map(|(daemon, partial)| {
                let (barrier, code) = (barrier.clone(), code.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    finish(&daemon, &partial, &code)
                })
            })
            .collect();
        let answers: Vec<(u16, Value)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let accepted = answers.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(accepted, 1, "{user}: {answers:?}");
        assert!(
            answers
                .iter()
                .all(|(status, _)| matches!(status, 200 | 401)),
            "{user}: {answers:?}"
        );
    }

    // A RADIUS challenge sent by A, answered at B (carol's device: alice's next step may be
    // beyond the clock's drift allowance by now).
    let partial = partial_login(&b, "carol", USER_PASSWORD);
    let mut carol = enrol(&b, Auth::Bearer(&partial), "phone");
    let dir = tempfile::tempdir().unwrap();
    let radclient = |addr: SocketAddr, input: &str| -> ClientOutput {
        support::freeradius::radclient_auth(dir.path(), addr, SECRET, input, CLIENT_TIMEOUT)
    };
    let challenge = radclient(
        a.radius_addr.unwrap(),
        &format!("User-Name = carol\nUser-Password = {USER_PASSWORD}\n"),
    );
    assert!(challenge.received("Access-Challenge"), "{challenge:?}");
    let state = challenge.state();
    let accept = radclient(
        b.radius_addr.unwrap(),
        &format!(
            "User-Name = carol\nUser-Password = {}\nState = {state}\n",
            carol.next_code()
        ),
    );
    assert!(accept.received("Access-Accept"), "{accept:?}");

    // Both nodes' events in one log, listed at either node.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = b.request(
            "GET",
            "/api/audit/1.0/events?kind=login&user=dave&limit=1000",
            Auth::Basic(ADMIN, ADMIN_PASSWORD),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let events = answer.json()["events"].as_array().unwrap().clone();
        let nodes: Vec<&str> = events.iter().filter_map(|e| e["node"].as_str()).collect();
        if nodes.contains(&"node-a") && nodes.contains(&"node-b") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events of both nodes: {events:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// FreeRADIUS asks `tina` for a token code after her password.
const CHALLENGE_POLICY: &str = r#"
		if (&User-Name == "tina") {
			if (!&State) {
				if (&User-Password == "tina-password") {
					update reply {
						&Reply-Message := "Enter your token code"
						&State := "round-1"
					}
					update control {
						&Response-Packet-Type := Access-Challenge
					}
					handled
				}
				reject
			}
			elsif (&State == "round-1" && &User-Password == "654321") {
				update reply {
					&Portcullis-Test-Role := "3"
				}
				update control {
					&Auth-Type := Accept
				}
				return
			}
			else {
				reject
			}
		}
"#;

/// An upstream RADIUS server's Access-Challenge relayed by one node is answered at the other:
/// the dialogue (the upstream's State, bound to the client and source) is shared.
#[test]
fn an_upstream_challenge_from_one_node_is_answered_at_the_other() {
    let pg = Postgres::new();
    let upstream = support::freeradius::FreeRadius::start_with_policy(
        support::freeradius::DEFAULT_USERS,
        support::freeradius::DEFAULT_SECRET,
        CHALLENGE_POLICY,
    );
    let extra = format!(
        "[authentication]\ncurrent_sequence = 3\n\n[radius.settings]\nconnection_timeout = 2\n\
         max_number_of_tries = 1\n\n[[radius.servers]]\nid = 1\norder = 1\naddress = \"{ip}\"\n\
         port = {port}\nsecret = \"{secret}\"\n\n[[radius.role_mappings]]\nrole = \"Monitor\"\n\
         attribute = 17164\nattribute_value = \"3\"\n",
        ip = upstream.auth_addr.ip(),
        port = upstream.auth_addr.port(),
        secret = support::freeradius::DEFAULT_SECRET,
    );
    let a = node_with(&pg, "node-a", &extra);
    let b = node_with(&pg, "node-b", &extra);
    let dir = tempfile::tempdir().unwrap();
    let radclient = |addr: SocketAddr, input: &str| -> ClientOutput {
        support::freeradius::radclient_auth(dir.path(), addr, SECRET, input, CLIENT_TIMEOUT)
    };
    let challenge = radclient(
        a.radius_addr.unwrap(),
        "User-Name = tina\nUser-Password = tina-password\n",
    );
    assert!(challenge.received("Access-Challenge"), "{challenge:?}");
    assert!(
        challenge.stdout.contains("Enter your token code"),
        "{challenge:?}"
    );
    let state = challenge.state();
    let accept = radclient(
        b.radius_addr.unwrap(),
        &format!("User-Name = tina\nUser-Password = 654321\nState = {state}\n"),
    );
    assert!(accept.received("Access-Accept"), "{accept:?}");
    // Single use, on either node.
    let again = radclient(
        a.radius_addr.unwrap(),
        &format!("User-Name = tina\nUser-Password = 654321\nState = {state}\n"),
    );
    assert!(again.received("Access-Reject"), "{again:?}");

    // Through the REST login too: the partial token of node B answered at node A.
    let first = b.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "tina", "password": "tina-password"}).to_string()),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let partial = first.json()["token"].as_str().unwrap().to_owned();
    let (status, body) = finish(&a, &partial, "654321");
    assert_eq!(status, 200, "{body}");
}

/// The failures `daemon` counts for `user` (loopback scope), as its lockout listing shows.
fn failures_seen(daemon: &Daemon, user: &str) -> i64 {
    let answer = daemon.request(
        "GET",
        "/api/mgmt.throttle/1.0/lockouts",
        Auth::Basic(ADMIN, ADMIN_PASSWORD),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    let entries = body
        .as_array()
        .cloned()
        .or_else(|| body["lockouts"].as_array().cloned())
        .unwrap_or_default();
    entries
        .iter()
        .find(|e| e["kind"] == "user" && e["name"] == user)
        .and_then(|e| e["failures"].as_i64())
        .unwrap_or(0)
}

/// Guesses alternating between two nodes reach the lockout after `max_failures` guesses in
/// all, not per node; then both nodes refuse even the right password.
#[test]
fn lockout_is_reached_by_alternating_nodes() {
    let pg = Postgres::new();
    let a = node(&pg, "node-a");
    let b = node(&pg, "node-b");
    let wrong = json!({"username": "dave", "password": "guess"}).to_string();
    let right = json!({"username": "dave", "password": USER_PASSWORD}).to_string();
    for guess in 1..=4 {
        let (this, other) = if guess % 2 == 1 { (&a, &b) } else { (&b, &a) };
        let answer = this.request("POST", "/api/auth/1.0/login", Auth::None, Some(&wrong));
        assert_eq!(answer.status, 401, "guess {guess}: {}", answer.body);
        // The other node learns the count (bounded wait for the announcement).
        let deadline = Instant::now() + Duration::from_secs(10);
        while failures_seen(other, "dave") < guess {
            assert!(
                Instant::now() < deadline,
                "guess {guess} not seen by the other node"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(failures_seen(other, "dave"), guess);
    }
    for node in [&a, &b] {
        let answer = node.request("POST", "/api/auth/1.0/login", Auth::None, Some(&right));
        assert_eq!(answer.status, 429, "{}", answer.body);
        assert!(answer.body.contains("LOCKED_OUT"), "{}", answer.body);
    }
}

const USERS: &str = "/api/mgmt.local_users/1.0/users";

fn add_user(daemon: &Daemon, name: &str) -> u16 {
    let body =
        json!({"name": name, "password": USER_PASSWORD, "roles": ["Monitor"], "enabled": true});
    daemon
        .request(
            "POST",
            USERS,
            Auth::Basic(ADMIN, ADMIN_PASSWORD),
            Some(&body.to_string()),
        )
        .status
}

fn user_names(daemon: &Daemon) -> Vec<String> {
    let answer = daemon.request("GET", USERS, Auth::Basic(ADMIN, ADMIN_PASSWORD), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["name"].as_str().map(str::to_owned))
        .collect()
}

/// Waits (bounded) until `daemon` lists `name`; how long it took.
fn until_listed(daemon: &Daemon, name: &str) -> Duration {
    let started = Instant::now();
    while !user_names(daemon).iter().any(|n| n == name) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{name} never reached the other node"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

/// A change through one node's API is live on the other (announced, not polled), and writes
/// racing on both nodes are each either stored or refused with 409, never lost.
#[test]
fn configuration_changes_reach_every_node_and_none_is_lost() {
    let pg = Postgres::new();
    let a = Arc::new(node(&pg, "node-a"));
    let b = Arc::new(node(&pg, "node-b"));
    assert_eq!(add_user(&a, "erin"), 201);
    let took = until_listed(&b, "erin");
    eprintln!("a change on node-a was live on node-b after {took:?}");
    let erin = b.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "erin", "password": USER_PASSWORD}).to_string()),
    );
    assert_eq!(erin.status, 200, "{}", erin.body);

    let writers: Vec<_> = (0..8)
        .map(|n| {
            let daemon = if n % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                let name = format!("racer{n}");
                (name.clone(), add_user(&daemon, &name))
            })
        })
        .collect();
    let results: Vec<(String, u16)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        results
            .iter()
            .all(|(_, status)| matches!(status, 201 | 409)),
        "{results:?}"
    );
    assert!(
        results.iter().any(|(_, status)| *status == 201),
        "{results:?}"
    );
    for (name, status) in &results {
        if *status == 201 {
            until_listed(&a, name);
            until_listed(&b, name);
        } else {
            assert!(!user_names(&a).contains(name), "{name} refused but stored");
        }
    }
    // Both nodes hold the same configuration.
    let (mut on_a, mut on_b) = (user_names(&a), user_names(&b));
    on_a.sort();
    on_b.sort();
    assert_eq!(on_a, on_b);
}

/// `portcullis config export` prints the shared configuration; `import` stores a file as the
/// newest version, and the running nodes make it live.
#[test]
fn config_export_and_import() {
    let pg = Postgres::new();
    let a = node(&pg, "node-a");
    let exported = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["config", "export", "--config"])
        .arg(a.config_path())
        .output()
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    let text = String::from_utf8(exported.stdout).unwrap();
    assert!(text.contains("version 1"), "{text}");
    assert!(text.contains("name = \"dave\""), "{text}");
    assert!(
        !text.contains("[state]"),
        "a node's own [state] is not shared: {text}"
    );
    // Import it with one more user; the running node makes it live.
    let hash = hash_password(b"frank-password").unwrap();
    let file = a.dir().join("imported.toml");
    std::fs::write(
        &file,
        format!(
            "{text}\n[[local_users]]\nname = \"frank\"\npassword_hash = \"{hash}\"\nroles = [\"Monitor\"]\n"
        ),
    )
    .unwrap();
    let imported = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["config", "import"])
        .arg(&file)
        .arg("--config")
        .arg(a.config_path())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{imported:?}");
    until_listed(&a, "frank");
    // An invalid file is refused and stores nothing.
    std::fs::write(&file, "[throttle]\nmax_failures = 0\n").unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["config", "import"])
        .arg(&file)
        .arg("--config")
        .arg(a.config_path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("max_failures"),
        "{refused:?}"
    );
    assert!(user_names(&a).contains(&"frank".to_owned()));
}

/// A node whose MFA key is not the one the others use refuses to start, saying why.
#[test]
fn a_node_with_another_mfa_key_refuses_to_start() {
    let pg = Postgres::new();
    let _a = node(&pg, "node-a");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, config(&pg, dir.path(), "node-c")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mfa.key"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}
