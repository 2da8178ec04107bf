#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Checks the FreeRADIUS test harness with FreeRADIUS' own clients (`radclient`, `radtest`),
//! and captures real-peer packets through `tests/support/capture_radius.py`.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::freeradius::{
    ALICE_PASSWORD, BOB_PASSWORD, ClientOutput, DEFAULT_SECRET, DEFAULT_USERS, FreeRadius,
    SIGNED_PASSWORD,
};

/// Attributes of the PAP Access-Request used by the tests and the `pap-accept` fixture.
/// Message-Authenticator comes first, as portcullis sends it; `0x00` makes radclient compute it.
const PAP_REQUEST: &str = r#"Message-Authenticator = 0x00
User-Name = "alice"
User-Password = "alice-password"
NAS-Identifier = "portcullis-test"
NAS-IP-Address = 127.0.0.1
NAS-Port = 7
NAS-Port-Type = Virtual
Service-Type = Login-User
"#;

const PAP_WRONG_PASSWORD: &str = r#"Message-Authenticator = 0x00
User-Name = "alice"
User-Password = "not-alices-password"
NAS-Identifier = "portcullis-test"
NAS-IP-Address = 127.0.0.1
NAS-Port = 7
NAS-Port-Type = Virtual
Service-Type = Login-User
"#;

/// Same shape as [`PAP_REQUEST`], for the user whose replies FreeRADIUS signs.
const PAP_SIGNED_REQUEST: &str = r#"Message-Authenticator = 0x00
User-Name = "signed"
User-Password = "signed-password"
NAS-Identifier = "portcullis-test"
NAS-IP-Address = 127.0.0.1
NAS-Port = 7
NAS-Port-Type = Virtual
Service-Type = Login-User
"#;

const STATUS_REQUEST: &str = r#"Message-Authenticator = 0x00
NAS-Identifier = "portcullis-test"
"#;

const ACCT_START: &str = r#"User-Name = "alice"
Acct-Status-Type = Start
Acct-Session-Id = "portcullis-0001"
NAS-Identifier = "portcullis-test"
NAS-IP-Address = 127.0.0.1
NAS-Port = 7
NAS-Port-Type = Virtual
Service-Type = Login-User
Acct-Delay-Time = 0
"#;

fn assert_received(out: &ClientOutput, code: &str) {
    assert!(
        out.received(code),
        "expected {code}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn starts_and_reports_ready() {
    let server = FreeRadius::start(DEFAULT_USERS);
    assert!(server.log().contains("Ready to process requests"));
    assert_eq!(server.secret, DEFAULT_SECRET);
    assert!(server.auth_addr.ip().is_loopback());
    assert_ne!(server.auth_addr.port(), server.acct_addr.port());
    assert!(server.config_dir().join("radiusd.conf").is_file());
}

#[test]
fn pap_accept_carries_reply_attributes() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let out = server.radclient(server.auth_addr, "auth", PAP_REQUEST);
    assert_received(&out, "Access-Accept");
    assert!(out.status.is_some_and(|s| s.success()), "{out:?}");
    for attr in [
        // Class is `octets` in Debian's dictionary: "admins" in hex.
        "Class = 0x61646d696e73",
        "Filter-Id = \"web-ro\"",
        "Reply-Message = \"Welcome alice\"",
        "Session-Timeout = 3600",
        "Portcullis-Test-Role = \"2\"",
        "Cisco-AVPair = \"shell:priv-lvl=15\"",
    ] {
        assert!(out.stdout.contains(attr), "missing {attr}:\n{}", out.stdout);
    }
    // The request attributes arrived at the server.
    let log = server.log();
    for attr in [
        "User-Name = \"alice\"",
        "NAS-Identifier = \"portcullis-test\"",
        "NAS-IP-Address = 127.0.0.1",
        "NAS-Port = 7",
        "NAS-Port-Type = Virtual",
        "Service-Type = Login-User",
        "Message-Authenticator = 0x",
    ] {
        assert!(log.contains(attr), "server did not log {attr}:\n{log}");
    }
}

#[test]
fn pap_wrong_password_is_rejected_without_attributes() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let out = server.radclient(server.auth_addr, "auth", PAP_WRONG_PASSWORD);
    assert_received(&out, "Access-Reject");
    assert!(!out.stdout.contains("Class"), "{}", out.stdout);
    assert!(!out.stdout.contains("Cisco-AVPair"), "{}", out.stdout);
}

#[test]
fn unknown_user_is_rejected() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let out = server.radtest("pap", "mallory", "whatever");
    assert_received(&out, "Access-Reject");
}

#[test]
fn bob_gets_class_only() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let out = server.radtest("pap", "bob", BOB_PASSWORD);
    assert_received(&out, "Access-Accept");
    // "operators"
    assert!(
        out.stdout.contains("Class = 0x6f70657261746f7273"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("Filter-Id"), "{}", out.stdout);
}

#[test]
fn unsigned_replies_by_default_signed_on_request() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let out = server.radtest("pap", "alice", ALICE_PASSWORD);
    assert_received(&out, "Access-Accept");
    let reply = out.stdout.split("Received ").nth(1).unwrap();
    assert!(!reply.contains("Message-Authenticator"), "{}", out.stdout);

    let out = server.radtest("pap", "signed", SIGNED_PASSWORD);
    assert_received(&out, "Access-Accept");
    let reply = out.stdout.split("Received ").nth(1).unwrap();
    assert!(
        reply.contains("Message-Authenticator = 0x"),
        "{}",
        out.stdout
    );
    assert!(
        !reply.contains("Message-Authenticator = 0x00\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn chap_accept() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let out = server.radtest("chap", "alice", ALICE_PASSWORD);
    assert_received(&out, "Access-Accept");
    assert!(
        out.stdout.contains("Portcullis-Test-Role = \"2\""),
        "{}",
        out.stdout
    );
    assert!(server.log().contains("CHAP-Password = 0x"));
}

#[test]
fn chap_wrong_password_is_rejected() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let out = server.radtest("chap", "alice", "not-alices-password");
    assert_received(&out, "Access-Reject");
}

#[test]
fn status_server_is_answered() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let out = server.radclient(server.auth_addr, "status", STATUS_REQUEST);
    assert_received(&out, "Access-Accept");
}

#[test]
fn accounting_request_is_answered() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let out = server.radclient(server.acct_addr, "acct", ACCT_START);
    assert_received(&out, "Accounting-Response");
    assert!(server.wait_for_log(
        "Acct-Session-Id = \"portcullis-0001\"",
        Duration::from_secs(2)
    ));
}

#[test]
fn custom_users_and_secret() {
    let users = "carol\tCleartext-Password := \"carol-password\"\n\tFilter-Id = \"ops\"\n";
    let server = FreeRadius::start_with_secret(users, "another-secret-0123456789");
    let out = server.radtest("pap", "carol", "carol-password");
    assert_received(&out, "Access-Accept");
    assert!(out.stdout.contains("Filter-Id = \"ops\""), "{}", out.stdout);
    // alice is not in this users file.
    let out = server.radtest("pap", "alice", ALICE_PASSWORD);
    assert!(!out.received("Access-Accept"), "{}", out.stdout);
}

#[test]
fn instances_are_independent() {
    let a = FreeRadius::start(DEFAULT_USERS);
    let b = FreeRadius::start(DEFAULT_USERS);
    assert_ne!(a.auth_addr, b.auth_addr);
    assert_ne!(a.config_dir(), b.config_dir());
    drop(a);
    let out = b.radtest("pap", "alice", ALICE_PASSWORD);
    assert_received(&out, "Access-Accept");
}

/// A running `capture_radius.py` relay for one scenario.
struct Relay {
    child: std::process::Child,
    addr: SocketAddr,
    /// Kept open so the relay never writes to a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Relay {
    fn start(upstream: SocketAddr, out: &Path, name: &str) -> Relay {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/capture_radius.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--listen", "127.0.0.1:0", "--upstream"])
            .arg(upstream.to_string())
            .arg("--out")
            .arg(out)
            .args(["--name", name, "--count", "1", "--timeout", "15"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning python3");
        // The relay prints its address first; it exits by itself after --timeout at worst.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected relay output {line:?}"))
            .parse()
            .unwrap();
        Relay {
            child,
            addr,
            _stdout: stdout,
        }
    }

    /// Waits (bounded) for the relay to exit after its one exchange.
    fn finish(mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "relay failed: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "relay did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks the RADIUS header of a captured datagram: code, and Length equal to the datagram size.
fn check_header(path: &Path, code: u8) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.len() >= 20, "{}: short", path.display());
    assert_eq!(bytes[0], code, "{}: code", path.display());
    let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    assert_eq!(length, bytes.len(), "{}: length field", path.display());
    bytes
}

/// Captures what radclient / radtest send and FreeRADIUS answers, through the relay.
///
/// Writes into a temporary directory; set `PORTCULLIS_CAPTURE_DIR` to write the files somewhere
/// else (the fixtures in `protocol/tests/fixtures/radius/` were made with
/// `PORTCULLIS_CAPTURE_DIR=$PWD/protocol/tests/fixtures/radius cargo test --test
/// freeradius_harness captures_real_peer_packets`).
#[test]
fn captures_real_peer_packets() {
    let tmp = tempfile::tempdir().unwrap();
    let out: PathBuf = std::env::var_os("PORTCULLIS_CAPTURE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let server = FreeRadius::start(DEFAULT_USERS);

    // (name, upstream, client run, request code, reply code)
    type Run<'a> = Box<dyn Fn(SocketAddr) -> ClientOutput + 'a>;
    let scenarios: Vec<(&str, SocketAddr, Run<'_>, u8, u8)> = vec![
        (
            "pap-accept",
            server.auth_addr,
            Box::new(|a| server.radclient(a, "auth", PAP_REQUEST)),
            1,
            2,
        ),
        (
            "pap-accept-signed",
            server.auth_addr,
            Box::new(|a| server.radclient(a, "auth", PAP_SIGNED_REQUEST)),
            1,
            2,
        ),
        (
            "pap-reject",
            server.auth_addr,
            Box::new(|a| server.radclient(a, "auth", PAP_WRONG_PASSWORD)),
            1,
            3,
        ),
        (
            "chap-accept",
            server.auth_addr,
            Box::new(|a| server.radtest_via(a, "chap", "alice", ALICE_PASSWORD)),
            1,
            2,
        ),
        (
            "status-server",
            server.auth_addr,
            Box::new(|a| server.radclient(a, "status", STATUS_REQUEST)),
            12,
            2,
        ),
        (
            "accounting",
            server.acct_addr,
            Box::new(|a| server.radclient(a, "acct", ACCT_START)),
            4,
            5,
        ),
    ];

    for (name, upstream, run, request_code, reply_code) in scenarios {
        let relay = Relay::start(upstream, &out, name);
        let output = run(relay.addr);
        assert!(
            output.stdout.contains("Received "),
            "{name}: no reply through the relay\n{}\n{}",
            output.stdout,
            output.stderr
        );
        relay.finish();
        let request = check_header(&out.join(format!("{name}-request.bin")), request_code);
        let reply = check_header(&out.join(format!("{name}-reply.bin")), reply_code);
        assert_eq!(request[1], reply[1], "{name}: identifier");
    }
}
