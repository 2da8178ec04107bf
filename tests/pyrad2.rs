#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! pyrad2 (PyPI, an independent RADIUS toolkit with RadSec and RADIUS/1.1) as a peer of
//! both RadSec ends: as a client of the daemon's RadSec front-end and as the upstream RadSec
//! server of the engine, offering classic RadSec, RADIUS/1.1 (RFC 9765, ALPN `radius/1.1`)
//! only, or both. The peer is tests/support/pyrad2_peer.py run by the Python 3.12 virtual
//! environment `scripts/pyrad2-env` makes (pyrad2 needs 3.12; Debian 12 has 3.11). Without
//! that environment these tests say so and pass, unless `PORTCULLIS_REQUIRE_PYRAD2` is set
//! (the test command sets it whenever it could make the environment).

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use portcullis::engine::{Engine, Outcome};
use portcullis_config::Config;
use serde_json::Value;
use support::daemon::Daemon;
use support::pki::{Issued, Pki, Usage};

/// The virtual environment's interpreter, or `None` (with the reason printed) when it is
/// missing and not required.
fn python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyrad2-venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    assert!(
        std::env::var_os("PORTCULLIS_REQUIRE_PYRAD2").is_none(),
        "{} is missing: run scripts/pyrad2-env",
        python.display()
    );
    eprintln!(
        "pyrad2 is not installed ({} is missing; scripts/pyrad2-env makes it): not run",
        python.display()
    );
    None
}

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/pyrad2_peer.py")
}

/// One pyrad2 client exchange: a PAP Access-Request offering `versions` over TLS 1.3; the
/// JSON line the peer printed.
fn pyrad2_login(
    python: &PathBuf,
    port: u16,
    pki: &Pki,
    me: &Issued,
    versions: &str,
    password: &str,
) -> Value {
    let output = Command::new(python)
        .arg(peer_script())
        .args(["client", "--port", &port.to_string()])
        .arg("--ca")
        .arg(&pki.ca_path)
        .arg("--cert")
        .arg(&me.cert_path)
        .arg("--key")
        .arg(&me.key_path)
        .args(["--user", "alice", "--password", password])
        .args(["--versions", versions, "--timeout", "5"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn pyrad2_logs_in_through_the_radsec_front_end() {
    let Some(python) = python() else {
        return;
    };
    let pki = Pki::new("pyrad2-front");
    let server = pki.issue("gateway", &["127.0.0.1"], Usage::Server);
    let client = pki.issue("pyrad2", &["pyrad2.example.net"], Usage::Client);
    let hash = portcullis::engine::local::hash_password(b"alice-password").unwrap();
    let daemon = Daemon::start(Some(&format!(
        r#"
[listeners]
api = ["127.0.0.1:0"]
radsec = ["127.0.0.1:0"]

[radius_frontend]
tls_certificate = "{cert}"
tls_key = "{key}"

[[radius_frontend.clients]]
id = 1
name = "pyrad2"
address = "127.0.0.1"
transport = "tls"
tls_ca = "{ca}"
tls_name = "pyrad2.example.net"

[[local_users]]
name = "alice"
password_hash = "{hash}"
roles = ["Operator"]
"#,
        cert = server.cert_path.display(),
        key = server.key_path.display(),
        ca = pki.ca_path.display(),
    )));
    let port = daemon.radsec_addr.unwrap().port();
    // What is offered -> what is spoken: RADIUS/1.1 whenever the client offers it.
    for (offered, spoken) in [("1.0", "1.0"), ("1.1", "1.1"), ("1.0,1.1", "1.1")] {
        let accepted = pyrad2_login(&python, port, &pki, &client, offered, "alice-password");
        assert_eq!(accepted["code"], "AccessAccept", "{offered}: {accepted}");
        assert_eq!(accepted["radius"], spoken, "{offered}: {accepted}");
        assert_eq!(accepted["classes"], serde_json::json!(["Operator"]));
        let rejected = pyrad2_login(&python, port, &pki, &client, offered, "wrong");
        assert_eq!(rejected["code"], "AccessReject", "{offered}: {rejected}");
    }
    assert!(
        daemon.wait_for_log("version=\"RADIUS/1.1\"", Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
}

/// A pyrad2 RadSec server offering `versions`, answering alice / alice-password with Class
/// "admins"; killed on drop.
struct Pyrad2Server {
    child: Child,
    port: u16,
    /// The lines it printed after the first, one per request.
    requests: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Pyrad2Server {
    fn start(python: &PathBuf, pki: &Pki, cert: &Issued, versions: &str) -> Pyrad2Server {
        let mut child = Command::new(python)
            .arg(peer_script())
            .args(["server", "--port", "0", "--seconds", "60"])
            .arg("--ca")
            .arg(&pki.ca_path)
            .arg("--cert")
            .arg(&cert.cert_path)
            .arg("--key")
            .arg(&cert.key_path)
            .args([
                "--versions",
                versions,
                "--tls",
                "any",
                "--optional-client-cert",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // The first line says where it listens (bounded: the peer exits after 60 s).
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let listening: Value = serde_json::from_str(&first)
            .unwrap_or_else(|e| panic!("{e}: pyrad2 server said {first:?}"));
        let port = listening["listening"]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{listening}"));
        // Keep draining its output so it never blocks on a full pipe.
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str(&line) {
                    seen.lock().unwrap().push(value);
                }
            }
        });
        Pyrad2Server {
            child,
            port,
            requests,
        }
    }
}

impl Drop for Pyrad2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn engine(port: u16, pki: &Pki) -> Engine {
    let toml = format!(
        "[authentication]\ncurrent_sequence = 3\n\n\
         [radius.settings]\nconnection_timeout = 5\nmax_number_of_tries = 1\n\n\
         [[radius.servers]]\nid = 1\norder = 1\naddress = \"127.0.0.1\"\nport = {port}\n\
         transport = \"tls\"\ntls_ca = \"{}\"\n\n\
         [[radius.role_mappings]]\nrole = \"Operator\"\nattribute = 25\n\
         attribute_value = \"admins\"\n",
        pki.ca_path.display()
    );
    Engine::new(&Config::from_toml(&toml).unwrap().config).unwrap()
}

#[tokio::test]
async fn the_engine_logs_in_against_a_pyrad2_radsec_server() {
    let Some(python) = python() else {
        return;
    };
    let pki = Pki::new("pyrad2-upstream");
    let cert = pki.issue("pyrad2", &["127.0.0.1"], Usage::Server);
    // Classic RadSec, RADIUS/1.1 only (it refuses a client that does not offer it), both:
    // the engine offers both, so RADIUS/1.1 whenever the server speaks it.
    for (versions, spoken) in [("1.0", "1.0"), ("1.1", "1.1"), ("1.0,1.1", "1.1")] {
        let server = Pyrad2Server::start(&python, &pki, &cert, versions);
        let engine = engine(server.port, &pki);
        let accepted = engine.authenticate("alice", b"alice-password").await;
        assert_eq!(
            accepted.outcome,
            Outcome::Accept(vec!["Operator".into()]),
            "{versions}"
        );
        let rejected = engine.authenticate("alice", b"wrong").await;
        assert!(
            matches!(rejected.outcome, Outcome::Reject(_)),
            "{versions}: {rejected:?}"
        );
        // Its lines are read by another thread: wait (bounded) for both.
        let mut requests = Vec::new();
        for _ in 0..100 {
            requests = server.requests.lock().unwrap().clone();
            if requests.len() >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(requests.len(), 2, "{requests:?}");
        for request in &requests {
            assert_eq!(request["radius"], spoken, "{versions}: {request}");
        }
    }
}
