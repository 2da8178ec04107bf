//! The `portcullis` binary: check-config, hash-password and login, end to end against a live
//! FreeRADIUS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::freeradius::{ALICE_PASSWORD, DEFAULT_SECRET, DEFAULT_USERS, FreeRadius};

fn portcullis(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(dir: &Path, body: &str) -> String {
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn check_config_accepts_the_example_and_names_bad_fields() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/examples/portcullis.toml"
    );
    let ok = portcullis(&["check-config", example], "");
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).ends_with(": ok\n"));

    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[radius.settings]\nconnection_timeout = 0\nmax_number_of_tries = 11\n",
    );
    let bad = portcullis(&["check-config", &path], "");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.contains("radius.settings.connection_timeout"),
        "{stderr}"
    );
    assert!(
        stderr.contains("radius.settings.max_number_of_tries"),
        "{stderr}"
    );

    let missing = portcullis(&["check-config", "/nonexistent/portcullis.toml"], "");
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn hash_password_then_login_locally() {
    let hashed = portcullis(&["hash-password"], "s3cret-local\n");
    assert!(hashed.status.success(), "{}", text(&hashed.stderr));
    let hash = text(&hashed.stdout).trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("s3cret-local"));

    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[[local_users]]\nname = \"ops\"\npassword_hash = \"{hash}\"\nroles = [\"Operator\"]\n"
        ),
    );
    let ok = portcullis(
        &["login", "ops", "--password-stdin", "--config", &path],
        "s3cret-local\n",
    );
    let out = text(&ok.stdout);
    assert!(ok.status.success(), "{out}{}", text(&ok.stderr));
    assert!(out.contains("method:  Local\n"), "{out}");
    assert!(out.contains("result:  accept\n"), "{out}");
    assert!(out.contains("roles:   Operator\n"), "{out}");

    let wrong = portcullis(
        &["login", "ops", "--password-stdin", "--config", &path],
        "nope\n",
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(text(&wrong.stdout).contains("result:  reject\n"));

    // "Local only" and not a local user: nobody can answer.
    let unknown = portcullis(
        &["login", "ghost", "--password-stdin", "--config", &path],
        "x\n",
    );
    assert_eq!(unknown.status.code(), Some(3));
    assert!(text(&unknown.stdout).contains("result:  unavailable\n"));

    let empty = portcullis(&["hash-password"], "\n");
    assert_eq!(empty.status.code(), Some(2));
}

#[test]
fn login_through_freeradius() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            r#"
[authentication]
current_sequence = 3

[radius.settings]
connection_timeout = 2
max_number_of_tries = 1

[[radius.servers]]
id = 1
order = 1
address = "127.0.0.1"
port = {port}
secret = "{DEFAULT_SECRET}"

[[radius.role_mappings]]
role = "Administrator"
attribute = 17164
attribute_value = "2"
"#,
            port = radius.auth_addr.port()
        ),
    );
    let ok = portcullis(
        &["login", "alice", "--password-stdin", "--config", &path],
        &format!("{ALICE_PASSWORD}\n"),
    );
    let out = text(&ok.stdout);
    assert!(ok.status.success(), "{out}{}", text(&ok.stderr));
    assert!(out.contains("method:  RADIUS\n"), "{out}");
    assert!(
        out.contains(&format!("server:  127.0.0.1:{}\n", radius.auth_addr.port())),
        "{out}"
    );
    assert!(out.contains("roles:   Administrator\n"), "{out}");
    // Neither the password nor the secret is printed anywhere.
    let all = format!("{out}{}", text(&ok.stderr));
    assert!(!all.contains(ALICE_PASSWORD));
    assert!(!all.contains(DEFAULT_SECRET));
}
