//! Property-based test of the HTTPS API against its own OpenAPI document: schemathesis (from
//! PyPI) reads `/api/openapi.json` of a running daemon, generates requests for every
//! operation (valid and invalid bodies, parameters and headers, sequences of calls) as the
//! bootstrap administrator, and checks that no answer is a 5xx and that every status code,
//! content type, header and body is the one the document declares. The checks and the
//! caller's credentials are in `tests/schemathesis/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::daemon::{ADMIN_PASSWORD, Auth, Daemon};

/// The version the configuration in `tests/schemathesis/` is written for.
const INSTALL: &str = "python3 -m pip install --break-system-packages schemathesis==4.32.5";
/// The whole run takes about a minute on two cores.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Gives schemathesis something to list, update and delete besides the bootstrap
/// administrator: servers of both kinds (one disabled each), role mappings and a user.
fn seed(daemon: &Daemon) {
    const BASE: &str = "/api/mgmt.remote_authentication/1.0";
    let admin = Auth::Basic("admin", ADMIN_PASSWORD);
    let writes = [
        (
            format!("{BASE}/radius/server"),
            r#"{"address": "127.0.0.1", "port": 1812, "secret": "radius-secret-0123456789", "protocol": "PAP", "enabled": true}"#,
        ),
        (
            format!("{BASE}/radius/server"),
            r#"{"address": "localhost", "port": 1813, "secret": "radius-secret-0123456789", "protocol": "CHAP", "enabled": false}"#,
        ),
        (
            format!("{BASE}/tacacs/server"),
            r#"{"address": "127.0.0.1", "port": 49, "secret": "tacacs-secret-0123456789", "client_port": 7, "enabled": true}"#,
        ),
        (
            format!("{BASE}/tacacs/server"),
            r#"{"address": "::1", "port": 4949, "secret": "tacacs-secret-0123456789", "client_port": "tty0", "enabled": 0}"#,
        ),
        (
            format!("{BASE}/radius/role_mapping"),
            r#"[{"role": "Monitor", "attribute": 25, "attribute_value": "monitor"}, {"role": "Administrator", "attribute": 17164, "attribute_value": "admin", "vendor_type": 1}]"#,
        ),
        (
            format!("{BASE}/tacacs/role_mapping"),
            r#"[{"role": "Monitor", "attribute": "priv-lvl", "attribute_value": "1"}]"#,
        ),
        (
            "/api/mgmt.local_users/1.0/users".to_string(),
            r#"{"name": "operator", "password": "operator-password", "roles": ["Monitor"]}"#,
        ),
    ];
    for (path, body) in writes {
        let answer = daemon.request("POST", &path, admin, Some(body));
        assert!(
            answer.status == 201 || answer.status == 204,
            "POST {path}: {} {}",
            answer.status,
            answer.body
        );
    }
}

#[test]
fn api_conforms_to_its_openapi_document() {
    let version = Command::new("schemathesis").arg("--version").output();
    match version {
        Ok(output) if output.status.success() => {}
        _ => panic!("schemathesis is not installed; install it with: {INSTALL}"),
    }

    // schemathesis' ignored_auth check sends a wrong password for `admin` to every operation,
    // far more than the brute-force throttle allows (it would lock `admin` out half-way); the
    // throttle has its own tests in tests/throttle.rs.
    let hash = portcullis::engine::local::hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    let daemon = Daemon::start(Some(&format!(
        "[throttle]\nenabled = false\n\n[[local_users]]\nname = \"admin\"\n\
         password_hash = \"{hash}\"\nroles = [\"Administrator\"]\n"
    )));
    assert!(daemon.addr.ip().is_loopback(), "{}", daemon.addr);
    seed(&daemon);

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::NamedTempFile::new().expect("output file");
    let url = format!("https://{}/api/openapi.json", daemon.addr);
    let started = Instant::now();
    let mut child = Command::new("schemathesis")
        .args(["--no-color", "--config-file"])
        .arg(root.join("tests/schemathesis/schemathesis.toml"))
        .args(["run", &url])
        // The configuration names its hooks relative to the repository root.
        .current_dir(root)
        .env("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("SCHEMATHESIS_HOOKS")
        .stdin(Stdio::null())
        .stdout(out.reopen().expect("output file"))
        .stderr(out.reopen().expect("output file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run schemathesis ({e}); install it with: {INSTALL}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break Some(status);
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(out.path()).unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "schemathesis did not finish within {RUN_TIMEOUT:?}:\n{output}\n--- daemon log ---\n{}",
            daemon.log()
        );
    };
    assert!(
        status.success(),
        "schemathesis failed ({status}) after {:?}:\n{output}\n--- daemon log ---\n{}",
        started.elapsed(),
        daemon.log()
    );
    println!("{output}");
    eprintln!("schemathesis passed in {:?}", started.elapsed());

    // The run kept the bootstrap administrator and its password.
    daemon.login("admin", ADMIN_PASSWORD);
}
