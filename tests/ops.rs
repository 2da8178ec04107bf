//! Running portcullis as a service: the sd_notify protocol (READY=1, WATCHDOG=1, STOPPING=1)
//! on a NOTIFY_SOCKET the test owns, journald log lines, the log level from the file and
//! RUST_LOG, the embedded default's one-time password, SIGHUP reload (valid and invalid
//! files), the SIGTERM drain of a login in flight, `/metrics`, the audit log, and the
//! hardening score of the systemd unit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::daemon::{Auth, Daemon};

const EVENTS: &str = "/api/audit/1.0/events";
const USERS: &str = "/api/mgmt.local_users/1.0/users";

/// A `portcullis serve` started by the test itself, with the environment it chooses.
struct Proc {
    child: Child,
    log: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
}

impl Proc {
    fn start(config: Option<&str>, env: &[(&str, &str)]) -> Proc {
        Proc::start_under(&[], config, env)
    }

    /// Started through `wrapper` (a command that ends by executing the one it is given, such
    /// as `prlimit ... --`), so the child's process id is still portcullis'.
    fn start_under(wrapper: &[&str], config: Option<&str>, env: &[(&str, &str)]) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        if let Some(config) = config {
            std::fs::write(&path, config).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let binary = env!("CARGO_BIN_EXE_portcullis");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--listen", "127.0.0.1:0", "--radius-listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .env_remove("PORTCULLIS_ADMIN_PASSWORD")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Proc { child, log, dir }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn terminate(&mut self) {
        self.signal("TERM");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("portcullis.toml")
    }

    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A notification socket like systemd's: a datagram socket at a path.
struct NotifySocket {
    socket: UnixDatagram,
    path: String,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        NotifySocket {
            socket,
            path: path.to_str().unwrap().to_string(),
            _dir: dir,
        }
    }

    /// One at an abstract address, named `@...` in NOTIFY_SOCKET.
    fn new_abstract() -> NotifySocket {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "portcullis-test-{}-{:?}",
            std::process::id(),
            Instant::now()
        );
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        NotifySocket {
            socket,
            path: format!("@{name}"),
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Collects messages until `done` says so or 20 s pass.
    fn collect_until(&self, seen: &mut Vec<String>, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 4096];
        while !done(seen) {
            assert!(Instant::now() < deadline, "notifications so far: {seen:?}");
            if let Ok(n) = self.socket.recv(&mut buf) {
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }
}

fn count(seen: &[String], message: &str) -> usize {
    seen.iter().filter(|m| m.as_str() == message).count()
}

/// `curl` against `https://addr{path}`; (status, body).
fn curl(addr: &str, path: &str, args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-sk", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .arg(format!("https://{addr}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_string())
}

/// The text after `marker` on the first log line that has it, up to whitespace.
fn after<'a>(log: &'a str, marker: &str) -> Option<&'a str> {
    let rest = log.split(marker).nth(1)?;
    rest.split_whitespace().next()
}

#[test]
fn notify_protocol_journald_lines_and_the_one_time_password() {
    let notify = NotifySocket::new();
    let mut daemon = Proc::start(
        None,
        &[
            ("NOTIFY_SOCKET", &notify.path),
            ("WATCHDOG_USEC", "200000"),
            ("JOURNAL_STREAM", "8:12345"),
        ],
    );
    let mut seen = Vec::new();
    notify.collect_until(&mut seen, |seen| {
        count(seen, "READY=1") == 1 && count(seen, "WATCHDOG=1") >= 2
    });
    assert!(
        seen.iter().any(|m| m.starts_with("STATUS=Running")),
        "{seen:?}"
    );
    // READY=1 came after the listeners were bound: the API answers now.
    let log = daemon.log();
    let addr = after(&log, "listening on https://").expect("listening line");
    // journald format: a priority, no timestamp.
    for line in log.lines() {
        assert!(
            line.starts_with("<3>")
                || line.starts_with("<4>")
                || line.starts_with("<6>")
                || line.starts_with("<7>"),
            "{line:?} in\n{log}"
        );
    }
    assert!(
        log.lines()
            .any(|l| l.starts_with("<6>") && l.contains("listening on https://")),
        "{log}"
    );
    let created = log
        .lines()
        .find(|l| l.contains("bootstrap administrator created"))
        .expect("bootstrap line");
    assert!(created.starts_with("<4>"), "{created}");
    // The generated one-time password is in a private file the line names, and works.
    let file = after(created, "file=").expect("file in the line");
    let password = std::fs::read_to_string(file).unwrap();
    let password = password.trim_end();
    assert!(password.len() >= 20, "{password}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (status, body) = curl(
        addr,
        "/api/auth/1.0/login",
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            &json!({"username": "admin", "password": password}).to_string(),
        ],
    );
    assert_eq!(status, 200, "{body}");
    // The password never reaches the log (the journal keeps it readable).
    assert_eq!(log.matches(password).count(), 0, "logged: {log}");

    daemon.terminate();
    notify.collect_until(&mut seen, |seen| count(seen, "STOPPING=1") == 1);
    assert!(daemon.wait_exit(Duration::from_secs(20)).success());
    assert_eq!(count(&seen, "READY=1"), 1, "{seen:?}");
}

#[test]
fn log_level_comes_from_the_file_unless_rust_log_is_set() {
    let hash = portcullis::engine::local::hash_password(b"admin-password").unwrap();
    let config = format!(
        "[logging]\nlevel = \"warn\"\n\n[[local_users]]\nname = \"admin\"\npassword_hash = \"{hash}\"\nroles = [\"Administrator\"]\n"
    );
    for (rust_log, info_expected) in [(None, false), (Some("info"), true)] {
        // Both kinds of NOTIFY_SOCKET: a path, and an abstract name.
        let notify = if rust_log.is_none() {
            NotifySocket::new()
        } else {
            NotifySocket::new_abstract()
        };
        let mut env = vec![("NOTIFY_SOCKET", notify.path.as_str())];
        if let Some(level) = rust_log {
            env.push(("RUST_LOG", level));
        }
        let mut daemon = Proc::start(Some(&config), &env);
        let mut seen = Vec::new();
        notify.collect_until(&mut seen, |seen| count(seen, "READY=1") == 1);
        if rust_log.is_none() {
            // A reload re-applies the level: info lines appear once it is info.
            std::fs::write(
                daemon.config_path(),
                config.replace("level = \"warn\"", "level = \"info\""),
            )
            .unwrap();
            daemon.signal("HUP");
            notify.collect_until(&mut seen, |seen| {
                seen.iter().any(|m| m.contains("configuration reloaded"))
            });
            let deadline = Instant::now() + Duration::from_secs(20);
            while !daemon.log().contains("configuration reloaded") {
                assert!(Instant::now() < deadline, "{}", daemon.log());
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                !daemon.log().contains("SIGHUP: reloading"),
                "logged at info before the level changed:\n{}",
                daemon.log()
            );
        }
        daemon.terminate();
        assert!(daemon.wait_exit(Duration::from_secs(20)).success());
        let log = daemon.log();
        assert_eq!(
            log.contains("listening on https://"),
            info_expected,
            "RUST_LOG={rust_log:?}:\n{log}"
        );
        if info_expected {
            let line = log.lines().find(|l| l.contains("listening on")).unwrap();
            assert!(line.starts_with("20"), "timestamp first: {line}");
            assert!(line.contains("INFO"), "{line}");
        }
    }
}

fn admin_config(extra: &str) -> (String, String) {
    let admin = portcullis::engine::local::hash_password(b"admin-password").unwrap();
    let config = format!(
        "{extra}\n[[local_users]]\nname = \"admin\"\npassword_hash = \"{admin}\"\nroles = [\"Administrator\"]\n"
    );
    (config, admin)
}

/// Polls `f` for up to 20 s until it returns `Some`.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_reloads_a_valid_file_and_refuses_an_invalid_one() {
    let (config, _) = admin_config("");
    let daemon = Daemon::start(Some(&config));
    let admin = Auth::Basic("admin", "admin-password");
    // The default: loopback clients read the metrics without credentials.
    assert_eq!(
        daemon.request("GET", "/metrics", Auth::None, None).status,
        200
    );

    // A second user and metrics for the Monitor role only.
    let watcher = portcullis::engine::local::hash_password(b"watcher-password").unwrap();
    let reloaded = format!(
        "{config}\n[[local_users]]\nname = \"watcher\"\npassword_hash = \"{watcher}\"\nroles = [\"Monitor\"]\n\n[metrics]\nallow = \"role\"\nrole = \"Monitor\"\n"
    );
    std::fs::write(daemon.config_path(), &reloaded).unwrap();
    daemon.signal("HUP");
    assert!(
        daemon.wait_for_log("configuration reloaded", Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    let users = daemon.request("GET", USERS, admin, None);
    assert!(users.body.contains("\"watcher\""), "{}", users.body);
    let watcher = Auth::Basic("watcher", "watcher-password");
    assert_eq!(
        daemon.request("GET", "/metrics", Auth::None, None).status,
        401
    );
    assert_eq!(daemon.request("GET", "/metrics", admin, None).status, 403);
    assert_eq!(daemon.request("GET", "/metrics", watcher, None).status, 200);

    // An invalid file is refused, with the reason in the log; the running config stays.
    std::fs::write(
        daemon.config_path(),
        format!("{reloaded}\n[audit]\nretention_days = 0\n"),
    )
    .unwrap();
    daemon.signal("HUP");
    assert!(
        daemon.wait_for_log("configuration reload refused", Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.wait_for_log("audit.retention_days", Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.request("GET", "/metrics", watcher, None).status, 200);
    assert_eq!(
        daemon.request("GET", "/metrics", Auth::None, None).status,
        401
    );
    daemon.login("watcher", "watcher-password");

    // Both reloads are in the audit log, newest first.
    let events = eventually("two reload events", || {
        let answer = daemon.request("GET", &format!("{EVENTS}?kind=config"), admin, None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let events = answer.json()["events"].as_array().unwrap().clone();
        (events.len() >= 2).then_some(events)
    });
    assert_eq!(events[0]["action"], "reload");
    assert_eq!(events[0]["source"], "signal");
    assert_eq!(events[0]["result"], "refused");
    assert!(
        events[0]["reason"]
            .as_str()
            .unwrap()
            .contains("audit.retention_days"),
        "{events:?}"
    );
    assert_eq!(events[1]["result"], "ok");
}

#[test]
fn sigterm_lets_a_login_in_flight_finish_and_exits_0() {
    // A RADIUS server that never answers: the login waits its 2 s timeout.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let port = silent.local_addr().unwrap().port();
    let (config, _) = admin_config(&format!(
        "[authentication]\ncurrent_sequence = 3\n\n[radius.settings]\nconnection_timeout = 2\nmax_number_of_tries = 1\n\n[[radius.servers]]\nid = 1\norder = 0\naddress = \"127.0.0.1\"\nport = {port}\nsecret = \"a-long-shared-secret-for-tests\"\n"
    ));
    let mut daemon = Daemon::start(Some(&config));
    let addr = daemon.addr.to_string();
    let login = std::thread::spawn(move || {
        curl(
            &addr,
            "/api/auth/1.0/login",
            &[
                "-H",
                "Content-Type: application/json",
                "-d",
                r#"{"username":"remote-user","password":"pw"}"#,
            ],
        )
    });
    // The request reached the upstream: the login is in flight.
    let mut buf = [0u8; 4096];
    let (n, _) = silent.recv_from(&mut buf).expect("the RADIUS request");
    assert!(n >= 20);
    let stopped_at = Instant::now();
    daemon.signal("TERM");
    let (status, body) = login.join().unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("SERVERS_UNAVAILABLE"), "{body}");
    let exit = daemon.wait_exit(Duration::from_secs(20)).expect("exited");
    assert!(exit.success(), "{exit:?}\n{}", daemon.log());
    assert!(stopped_at.elapsed() < Duration::from_secs(20));
    assert!(
        daemon.wait_for_log("stopping: draining", Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
    // The login that finished during the stop is in the log and in the audit table: what
    // was queued for them was written before the exit.
    let audit_line = daemon
        .log()
        .lines()
        .any(|line| line.contains("audit") && line.contains("remote-user"));
    assert!(audit_line, "{}", daemon.log());
    let db = rusqlite::Connection::open(daemon.dir().join("state/portcullis.db")).unwrap();
    let stored: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM audit_events WHERE user = 'remote-user'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 1, "{}", daemon.log());
}

/// The value of the first sample of `name` whose labels contain every one of `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_and_the_audit_log_over_the_api() {
    let daemon = Daemon::start(None);
    let admin_password = support::daemon::ADMIN_PASSWORD;
    let admin = Auth::Basic("admin", admin_password);
    let token = daemon.login("admin", admin_password);
    let bad = json!({"username": "nobody-by-this-name", "password": "wrong"}).to_string();
    assert_eq!(
        daemon
            .request("POST", "/api/auth/1.0/login", Auth::None, Some(&bad))
            .status,
        401
    );
    // A change, and a change refused by validation.
    let user = json!({"name": "carol", "password": "carol-password", "roles": ["Monitor"]});
    let added = daemon.request("POST", USERS, Auth::Bearer(&token), Some(&user.to_string()));
    assert_eq!(added.status, 201, "{}", added.body);
    let refused = json!({"name": "dave", "password": "dave-password", "roles": ["NoSuchRole"]});
    assert_eq!(
        daemon
            .request("POST", USERS, admin, Some(&refused.to_string()))
            .status,
        400
    );

    // Metrics: Prometheus text, no user names in labels.
    let answer = daemon.request_with("GET", "/metrics", Auth::None, None, &[], &["-i"]);
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .body
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        answer.body
    );
    let metrics = answer.body;
    assert!(
        sample(
            &metrics,
            "portcullis_logins_total",
            &["method=\"Local\"", "result=\"accept\""]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "portcullis_http_requests_total",
            &["route=\"/api/auth/1.0/login\"", "status=\"401\""]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "portcullis_http_requests_total",
            &[
                "route=\"/api/mgmt.local_users/1.0/users\"",
                "status=\"201\""
            ]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_login_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(!metrics.contains("nobody-by-this-name"), "{metrics}");
    assert!(!metrics.contains("carol"), "{metrics}");

    // The audit log: logins and changes, who, from where, what, result.
    let login_events = eventually("two login events", || {
        let answer = daemon.request("GET", &format!("{EVENTS}?kind=login"), admin, None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let events = answer.json()["events"].as_array().unwrap().clone();
        (events.len() >= 2).then_some(events)
    });
    let failed: Vec<&Value> = login_events
        .iter()
        .filter(|e| e["user"] == "nobody-by-this-name")
        .collect();
    assert_eq!(failed.len(), 1, "{login_events:?}");
    assert_ne!(failed[0]["result"], "accept");
    assert!(
        failed[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(failed[0]["action"], "POST /api/auth/1.0/login");
    let accepted = login_events
        .iter()
        .find(|e| e["user"] == "admin" && e["result"] == "accept")
        .expect("admin's login");
    assert_eq!(accepted["method"], "Local");

    let changes = eventually("two change events", || {
        let answer = daemon.request("GET", &format!("{EVENTS}?kind=config"), admin, None);
        let events = answer.json()["events"].as_array().unwrap().clone();
        (events.len() >= 2).then_some(events)
    });
    // Refused before it reached the store: recorded with its status.
    assert_eq!(changes[0]["result"], "refused", "{changes:?}");
    assert_eq!(changes[0]["user"], "admin");
    assert!(
        changes[0]["reason"].as_str().unwrap().contains("400"),
        "{changes:?}"
    );
    assert_eq!(changes[1]["result"], "ok");
    assert_eq!(changes[1]["user"], "admin");
    assert_eq!(changes[1]["action"], "POST /api/mgmt.local_users/1.0/users");

    // Filters and paging.
    let page = daemon
        .request("GET", &format!("{EVENTS}?limit=1"), admin, None)
        .json();
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    let next = page["next_before"].as_i64().expect("a next page");
    let rest = daemon
        .request(
            "GET",
            &format!("{EVENTS}?limit=1000&before={next}"),
            admin,
            None,
        )
        .json();
    assert!(
        rest["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["id"].as_i64().unwrap() < next)
    );
    let mine = daemon
        .request(
            "GET",
            &format!("{EVENTS}?user=nobody-by-this-name"),
            admin,
            None,
        )
        .json();
    assert_eq!(mine["events"].as_array().unwrap().len(), 1);
    assert_eq!(
        daemon
            .request("GET", &format!("{EVENTS}?limit=0"), admin, None)
            .status,
        400
    );
    assert_eq!(
        daemon
            .request("GET", &format!("{EVENTS}?kind=other"), admin, None)
            .status,
        400
    );
    // Administrators only.
    assert_eq!(
        daemon
            .request("GET", EVENTS, Auth::Basic("carol", "carol-password"), None)
            .status,
        403
    );
    assert_eq!(daemon.request("GET", EVENTS, Auth::None, None).status, 401);
    // Mirrored to the log with target audit.
    assert!(
        daemon.wait_for_log("audit:", Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
}

/// The nice value in a `/proc/.../stat` line: field 19, counted after the command name in
/// parentheses (field 2, which may hold spaces) from the state, field 3.
fn nice_in_stat(stat: &str) -> Option<i64> {
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split(' ').nth(16)?.parse().ok()
}

/// The nice value of each of `pid`'s threads named `name`s (field 19 of their stat).
fn thread_nices(pid: u32, names: &[&str]) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return found;
    };
    for task in tasks.map_while(Result::ok) {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if !names.contains(&comm) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        if let Some(nice) = nice_in_stat(&stat) {
            found.push((comm.to_string(), nice));
        }
    }
    found.sort();
    found
}

/// The audit and log writers run 10 nice levels below the process when the audit writer can
/// come back up (RLIMIT_NICE of 20, the unit's LimitNICE=+0); without that limit and without
/// CAP_SYS_NICE only the log writer is lowered, and the audit writer keeps the process's
/// priority (it would be stuck low under saturation).
#[test]
fn writer_threads_run_below_the_logins_priority() {
    let own = nice_in_stat(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
    let low = (own + 10).min(19);
    let writers = ["audit-writer", "log-writer"];
    // Raising the hard limit needs privileges a test run may not have.
    let may_raise = Command::new("prlimit")
        .args(["--nice=20:20", "true"])
        .status()
        .is_ok_and(|s| s.success());
    // Without CAP_SYS_NICE: a root test run drops it from the bounding set.
    let drop_cap = [
        "setpriv",
        "--bounding-set=-sys_nice",
        "--inh-caps=-sys_nice",
        "--",
    ];
    let mut denied = vec!["prlimit", "--nice=0:0", "--"];
    if Command::new(drop_cap[0])
        .args(&drop_cap[1..3])
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        denied.extend(drop_cap);
    }
    let mut cases = vec![(denied, own)];
    if may_raise {
        cases.push((vec!["prlimit", "--nice=20:20", "--"], low));
    }
    for (wrapper, audit_nice) in cases {
        let notify = NotifySocket::new();
        let mut daemon =
            Proc::start_under(&wrapper, None, &[("NOTIFY_SOCKET", notify.path.as_str())]);
        let mut seen = Vec::new();
        notify.collect_until(&mut seen, |seen| count(seen, "READY=1") == 1);
        let expected = vec![
            ("audit-writer".to_string(), audit_nice),
            ("log-writer".to_string(), low),
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut nices = thread_nices(daemon.child.id(), &writers);
        while nices != expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            nices = thread_nices(daemon.child.id(), &writers);
        }
        assert_eq!(nices, expected, "under {wrapper:?}:\n{}", daemon.log());
        daemon.terminate();
        assert!(daemon.wait_exit(Duration::from_secs(20)).success());
    }
}

#[test]
fn systemd_unit_is_notify_with_watchdog_and_exposure_at_most_1_5() {
    let unit = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/portcullis.service");
    let text = std::fs::read_to_string(unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE\n",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
        "User=portcullis",
        "ReadWritePaths=/etc/portcullis",
        "StateDirectory=portcullis",
        "ConfigurationDirectory=portcullis",
        "RuntimeDirectory=portcullis",
        // The writer threads' priority (src/priority.rs, and the test below).
        "SystemCallFilter=setpriority\n",
        "LimitNICE=+0\n",
    ] {
        assert!(text.contains(line), "{line} missing from the unit");
    }
    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager", unit])
        .output()
        .expect("systemd-analyze (package systemd) is installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let exposure: f64 = after(&stdout, "Overall exposure level for portcullis.service:")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(exposure <= 1.5, "exposure {exposure}:\n{stdout}");
}

#[test]
fn frontend_and_upstream_are_counted_and_frontend_logins_audited() {
    // A RADIUS upstream that never answers: one retransmission, a timeout, marked dead.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let alice = portcullis::engine::local::hash_password(b"alice-password").unwrap();
    let (config, _) = admin_config(&format!(
        "[authentication]\ncurrent_sequence = 3\n\n[radius.settings]\nconnection_timeout = 1\nmax_number_of_tries = 2\n\n[[radius.servers]]\nid = 1\norder = 0\naddress = \"127.0.0.1\"\nport = {port}\nsecret = \"a-long-shared-secret-for-tests\"\n\n[[radius_frontend.clients]]\nid = 1\nname = \"pam-host\"\naddress = \"127.0.0.1\"\nsecret = \"front-end-shared-secret\"\n\n[[local_users]]\nname = \"alice\"\npassword_hash = \"{alice}\"\nroles = [\"Monitor\"]\n"
    ));
    let daemon = Daemon::start(Some(&config));
    let radius = daemon.radius_addr.unwrap().to_string();
    let output = Command::new("radclient")
        .args([
            "-t",
            "5",
            "-r",
            "1",
            &radius,
            "auth",
            "front-end-shared-secret",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"User-Name = alice\nUser-Password = alice-password\n")?;
            child.wait_with_output()
        })
        .expect("radclient (freeradius-utils)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Access-Accept"), "{stdout}");
    // A datagram too short to be RADIUS is dropped and counted.
    silent.send_to(b"junk", &radius).unwrap();
    let unknown = json!({"username": "remote-user", "password": "pw"}).to_string();
    let answer = daemon.request("POST", "/api/auth/1.0/login", Auth::None, Some(&unknown));
    assert_eq!(answer.status, 401, "{}", answer.body);

    let server = format!("server=\"127.0.0.1:{port}\"");
    let metrics = eventually("front-end and upstream counts", || {
        let metrics = daemon.request("GET", "/metrics", Auth::None, None).body;
        let dropped = sample(
            &metrics,
            "portcullis_frontend_dropped_total",
            &["reason=\"malformed\""],
        );
        dropped.is_some().then_some(metrics)
    });
    for (name, labels) in [
        (
            "portcullis_frontend_packets_total",
            vec!["type=\"request\""],
        ),
        (
            "portcullis_frontend_packets_total",
            vec!["type=\"access_accept\""],
        ),
        (
            "portcullis_upstream_retransmits_total",
            vec!["protocol=\"radius\"", server.as_str()],
        ),
        (
            "portcullis_upstream_timeouts_total",
            vec!["protocol=\"radius\"", server.as_str()],
        ),
        (
            "portcullis_upstream_marked_dead_total",
            vec!["protocol=\"radius\"", server.as_str()],
        ),
        (
            "portcullis_upstream_requests_total",
            vec![server.as_str(), "result=\"timeout\""],
        ),
        (
            "portcullis_upstream_duration_seconds_count",
            vec![server.as_str()],
        ),
        (
            "portcullis_logins_total",
            vec!["method=\"-\"", "result=\"unavailable\""],
        ),
    ] {
        assert!(
            sample(&metrics, name, &labels).unwrap_or(0.0) >= 1.0,
            "{name} {labels:?}:\n{metrics}"
        );
    }

    let events = eventually("the front-end login in the audit log", || {
        let answer = daemon.request(
            "GET",
            &format!("{EVENTS}?kind=login&user=alice"),
            Auth::Basic("admin", "admin-password"),
            None,
        );
        let events = answer.json()["events"].as_array().unwrap().clone();
        (!events.is_empty()).then_some(events)
    });
    assert_eq!(events[0]["action"], "radius:pam-host");
    assert_eq!(events[0]["result"], "accept");
    assert_eq!(events[0]["method"], "Local");
    assert!(
        events[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[test]
fn sigterm_lets_a_radius_frontend_walk_finish() {
    // The walk for an unknown user waits 2 s on a silent upstream.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let port = silent.local_addr().unwrap().port();
    let (config, _) = admin_config(&format!(
        "[authentication]\ncurrent_sequence = 3\n\n[radius.settings]\nconnection_timeout = 2\nmax_number_of_tries = 1\n\n[[radius.servers]]\nid = 1\norder = 0\naddress = \"127.0.0.1\"\nport = {port}\nsecret = \"a-long-shared-secret-for-tests\"\n\n[[radius_frontend.clients]]\nid = 1\nname = \"pam-host\"\naddress = \"127.0.0.1\"\nsecret = \"front-end-shared-secret\"\n"
    ));
    let mut daemon = Daemon::start(Some(&config));
    let radius = daemon.radius_addr.unwrap().to_string();
    // One try only: the answer must come from the walk that was in flight at SIGTERM.
    let mut radclient = Command::new("radclient")
        .args([
            "-t",
            "15",
            "-r",
            "1",
            &radius,
            "auth",
            "front-end-shared-secret",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient (freeradius-utils)");
    {
        use std::io::Write;
        let mut stdin = radclient.stdin.take().unwrap();
        stdin
            .write_all(b"User-Name = remote-user\nUser-Password = pw\n")
            .unwrap();
    }
    let mut buf = [0u8; 4096];
    silent.recv_from(&mut buf).expect("the upstream request");
    daemon.signal("TERM");
    let output = radclient.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Access-Reject"),
        "{stdout}\n{}",
        daemon.log()
    );
    let exit = daemon.wait_exit(Duration::from_secs(20)).expect("exited");
    assert!(exit.success(), "{exit:?}\n{}", daemon.log());
}
