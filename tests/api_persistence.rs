//! Changes through the management API survive: a restart, 100 concurrent writers, and a
//! SIGKILL in the middle of writes. The file on disk always parses and holds every change the
//! API acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_config::Config;
use serde_json::json;
use support::daemon::{ADMIN_PASSWORD, Auth, Daemon};

const USERS: &str = "/api/mgmt.local_users/1.0/users";

/// Writers queue behind one another; give each request more than the harness's default.
const SLOW: &[&str] = &["--max-time", "120"];

/// The configuration on disk, which must parse and validate.
fn config_on_disk(path: &Path) -> Config {
    let text = std::fs::read_to_string(path).expect("read the configuration file");
    match Config::from_toml(&text) {
        Ok(loaded) => loaded.config,
        Err(e) => panic!("the file does not parse: {e}\n{text}"),
    }
}

fn local_names(config: &Config) -> BTreeSet<String> {
    config.local_users.iter().map(|u| u.name.clone()).collect()
}

/// Adds a user by talking to `addr` directly (the writer threads must not borrow the daemon
/// that the test kills). Returns the HTTP status; 0 when no answer came.
fn add_user(addr: SocketAddr, token: &str, name: &str) -> u16 {
    let body = json!({"name": name, "password": format!("{name}-pw"), "roles": ["Monitor"]});
    let mut child = Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "120",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args([
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(body.to_string())
        .arg(format!("https://{addr}{USERS}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn curl");
    let mut out = String::new();
    use std::io::Read as _;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child.wait().unwrap();
    out.trim().parse().unwrap_or(0)
}

#[test]
fn a_change_survives_a_restart() {
    let daemon = Daemon::start(None);
    assert!(!daemon.config_path().exists());
    let added = daemon.request(
        "POST",
        USERS,
        Auth::Basic("admin", ADMIN_PASSWORD),
        Some(r#"{"name": "kept", "password": "kept-password", "roles": ["Operator"]}"#),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    // The first write created the file, mode 0600, with the bootstrap admin in it.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(daemon.config_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        local_names(&config_on_disk(&daemon.config_path())),
        BTreeSet::from(["admin".to_string(), "kept".to_string()])
    );

    let daemon = daemon.restart();
    let login = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(r#"{"username": "kept", "password": "kept-password"}"#),
    );
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.json()["roles"], json!(["Operator"]));
    // The bootstrap admin came back from the file, not from a new bootstrap.
    let list = daemon.request("GET", USERS, Auth::Basic("admin", ADMIN_PASSWORD), None);
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json().as_array().unwrap().len(), 2);
    assert!(!daemon.log().contains("bootstrap administrator created"));
}

#[test]
fn concurrent_writers_lose_nothing() {
    const WRITERS: usize = 100;
    let daemon = Daemon::start(None);
    let token = daemon.login("admin", ADMIN_PASSWORD);
    let statuses: Vec<(String, u16)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (daemon, token) = (&daemon, &token);
                scope.spawn(move || {
                    let name = format!("user{i:03}");
                    let body =
                        json!({"name": name, "password": format!("pw-{i}"), "roles": ["Monitor"]})
                            .to_string();
                    let answer = daemon.request_with(
                        "POST",
                        USERS,
                        Auth::Bearer(token),
                        Some(&body),
                        &[],
                        SLOW,
                    );
                    (name, answer.status)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let acknowledged: BTreeSet<String> = statuses
        .iter()
        .filter(|(_, status)| (200..300).contains(status))
        .map(|(name, _)| name.clone())
        .collect();
    // Nothing should have failed: the writers do not conflict.
    let failed: Vec<_> = statuses
        .iter()
        .filter(|(_, status)| !(200..300).contains(status))
        .collect();
    assert!(failed.is_empty(), "failed writes: {failed:?}");

    let on_disk = local_names(&config_on_disk(&daemon.config_path()));
    let missing: Vec<_> = acknowledged.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the file: {missing:?}"
    );
    assert_eq!(on_disk.len(), WRITERS + 1);

    // The live configuration agrees with the file, and no temp file was left behind.
    let list = daemon.request("GET", USERS, Auth::Bearer(&token), None);
    assert_eq!(list.json().as_array().unwrap().len(), WRITERS + 1);
    let dir = daemon.config_path().parent().unwrap().to_path_buf();
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A user added concurrently logs in.
    let login = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(r#"{"username": "user042", "password": "pw-42"}"#),
    );
    assert_eq!(login.status, 200, "{}", login.body);
}

#[test]
fn kill_9_during_writes_leaves_a_parseable_file_with_every_acknowledged_change() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 3;
    /// Acknowledged writes to wait for before each kill.
    const BEFORE_KILL: usize = 8;
    let mut daemon = Daemon::start(None);
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    for round in 0..ROUNDS {
        // Sessions live in memory: every round logs in again.
        let token = daemon.login("admin", ADMIN_PASSWORD);
        let addr = daemon.addr;
        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (acked, stop, token) = (Arc::clone(&acked), Arc::clone(&stop), token.clone());
                std::thread::spawn(move || {
                    for i in 0.. {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let name = format!("r{round}t{thread}n{i}");
                        match add_user(addr, &token, &name) {
                            201 => acked.lock().unwrap().push(name),
                            0 => break, // the daemon is gone
                            status => panic!("{name}: unexpected status {status}"),
                        }
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked.lock().unwrap().len() < BEFORE_KILL {
            assert!(Instant::now() < deadline, "writers made no progress");
            std::thread::sleep(Duration::from_millis(10));
        }
        // SIGKILL with writes in flight, then start again on the same files.
        daemon = daemon.restart();
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            writer.join().unwrap();
        }
        // Every answer the writers got came from the killed daemon (the new one listens on
        // another port), so all of them were acknowledged before the kill.
        acknowledged.extend(acked.lock().unwrap().iter().cloned());

        let on_disk = local_names(&config_on_disk(&daemon.config_path()));
        let missing: Vec<_> = acknowledged.difference(&on_disk).collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged but lost: {missing:?}"
        );
        assert!(on_disk.contains("admin"));
        // The restarted daemon serves what the file says.
        let list = daemon.request("GET", USERS, Auth::Basic("admin", ADMIN_PASSWORD), None);
        assert_eq!(list.status, 200, "{}", list.body);
        assert_eq!(list.json().as_array().unwrap().len(), on_disk.len());
    }
    let any = acknowledged.iter().next().unwrap();
    let login = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": any, "password": format!("{any}-pw")}).to_string()),
    );
    assert_eq!(login.status, 200, "{}", login.body);
}
