//! Runs the real `portcullis serve` binary on a free loopback port with its own configuration
//! and state directories, and talks to its HTTPS API with `curl`, an independent client.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The bootstrap administrator's password the harness passes in `PORTCULLIS_ADMIN_PASSWORD`.
pub const ADMIN_PASSWORD: &str = "bootstrap-admin-password";
/// How long `start` waits for the daemon to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Credentials for a request.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// No Authorization header.
    None,
    /// HTTP Basic.
    Basic(&'a str, &'a str),
    /// A bearer token.
    Bearer(&'a str),
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// Where the API listens.
    pub addr: SocketAddr,
    /// Where the RADIUS front-end listens (the harness always passes
    /// `--radius-listen 127.0.0.1:0`).
    pub radius_addr: Option<SocketAddr>,
    /// The RadSec front-end's address, when `listeners.radsec` is set.
    pub radsec_addr: Option<SocketAddr>,
    dir: TempDir,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts a daemon whose configuration file holds `config` (none: the file does not exist
    /// and the embedded default with the bootstrap administrator applies).
    pub fn start(config: Option<&str>) -> Daemon {
        Daemon::start_with(config, &[])
    }

    /// Starts a daemon on the configuration and state already in `dir`.
    pub fn start_in(dir: TempDir) -> Daemon {
        Daemon::start_in_with(dir, &[], "info")
    }

    /// Like [`Daemon::start`], with `extra` arguments for `serve`; `{dir}` in them stands for
    /// the daemon's temp directory.
    pub fn start_with(config: Option<&str>, extra: &[&str]) -> Daemon {
        Daemon::start_logging(config, extra, "info")
    }

    /// Like [`Daemon::start_with`], logging with `RUST_LOG={log}`.
    pub fn start_logging(config: Option<&str>, extra: &[&str], log: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(config) = config {
            let path = dir.path().join("portcullis.toml");
            std::fs::write(&path, config).expect("write config");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .expect("chmod config");
        }
        Daemon::start_in_with(dir, extra, log)
    }

    /// The daemon's temp directory (configuration, state, sockets).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn start_in_with(dir: TempDir, extra: &[&str], log: &str) -> Daemon {
        let extra: Vec<String> = extra
            .iter()
            .map(|a| a.replace("{dir}", &dir.path().to_string_lossy()))
            .collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("serve")
            .arg("--config")
            .arg(dir.path().join("portcullis.toml"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(
                // `extra` may choose its own API address.
                (!extra.iter().any(|a| a == "--listen"))
                    .then_some(["--listen", "127.0.0.1:0"])
                    .into_iter()
                    .flatten(),
            )
            .arg("--radius-listen")
            .arg("127.0.0.1:0")
            .args(&extra)
            .env("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portcullis");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("RADIUS front-end listening on ").nth(1) {
                    let _ = tx.send((Listener::Radius, rest.trim().to_string()));
                } else if let Some(rest) = line.split("RadSec front-end listening on ").nth(1) {
                    let _ = tx.send((Listener::Radsec, rest.trim().to_string()));
                } else if let Some(rest) = line.split("listening on https://").nth(1) {
                    let _ = tx.send((Listener::Api, rest.trim().to_string()));
                }
                let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        // The daemon logs its RADIUS sockets before the HTTPS one.
        let mut radius_addr = None;
        let mut radsec_addr = None;
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok((Listener::Radius, addr)) => {
                    radius_addr = Some(addr.parse().expect("RADIUS listen address"));
                }
                Ok((Listener::Radsec, addr)) => {
                    radsec_addr = Some(addr.parse().expect("RadSec listen address"));
                }
                Ok((Listener::Api, addr)) => break addr.parse().expect("listen address"),
                Err(_) if Instant::now() > deadline => {
                    let _ = child.kill();
                    panic!(
                        "portcullis did not start:\n{}",
                        log.lock().unwrap_or_else(|p| p.into_inner())
                    );
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "portcullis exited with {status}:\n{}",
                            log.lock().unwrap_or_else(|p| p.into_inner())
                        );
                    }
                }
            }
        };
        Daemon {
            child,
            addr,
            radius_addr,
            radsec_addr,
            dir,
            log,
        }
    }

    /// Stops the daemon (SIGKILL) and starts it again on the same files.
    pub fn restart(mut self) -> Daemon {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep the directory: the placeholder swapped in is what `drop` removes.
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        drop(self);
        Daemon::start_in(dir)
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("portcullis.toml")
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a `kill -s` name: `HUP`, `TERM`) to the daemon.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Waits up to `timeout` for the daemon to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` for `needle` to appear in the log.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log().contains(needle)
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends a request with `curl` and returns the answer. Extra headers are `Name: value`;
    /// `options` are passed to curl as they are.
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<&str>,
        headers: &[&str],
        options: &[&str],
    ) -> Answer {
        let url = format!("https://{}{path}", self.addr);
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sk",
            "--max-time",
            "20",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ]);
        match auth {
            Auth::None => {}
            Auth::Basic(user, password) => {
                cmd.args(["-u", &format!("{user}:{password}")]);
            }
            Auth::Bearer(token) => {
                cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
            }
        }
        for header in headers {
            cmd.args(["-H", header]);
        }
        cmd.args(options);
        if body.is_some() {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        cmd.arg(&url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn curl");
        if let Some(mut stdin) = child.stdin.take() {
            if let Some(body) = body {
                stdin.write_all(body.as_bytes()).expect("write body");
            }
        }
        let output = child.wait_with_output().expect("curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        Answer {
            status: status.trim().parse().unwrap_or_else(|_| {
                panic!(
                    "curl {method} {url} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            }),
            body: body.to_string(),
        }
    }

    /// Sends a request with no extra headers.
    pub fn request(&self, method: &str, path: &str, auth: Auth<'_>, body: Option<&str>) -> Answer {
        self.request_with(method, path, auth, body, &[], &[])
    }

    /// Logs in through the API and returns the token.
    pub fn login(&self, user: &str, password: &str) -> String {
        let body = serde_json::json!({ "username": user, "password": password }).to_string();
        let answer = self.request("POST", "/api/auth/1.0/login", Auth::None, Some(&body));
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()["token"].as_str().expect("token").to_string()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which listener a start-up log line announces.
enum Listener {
    Api,
    Radius,
    Radsec,
}
