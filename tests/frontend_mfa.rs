//! MFA on the RADIUS front-end of the real daemon: an Access-Challenge with a single-use
//! State bound to the user and client, answered with a TOTP code by pyrad (which computes the
//! code itself) and radclient; `password,code` in one Access-Request; and the lockout.
//! Devices are paired through the REST API's two-step login first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use portcullis::engine::local::hash_password;
use portcullis::frontend::challenge::{INVALID_CODE, NOT_ENROLLED, PROMPT, UNKNOWN_CHALLENGE};
use support::daemon::{Auth, Daemon};
use support::freeradius::ClientOutput;
use support::mfa::{Enrolled, enrol, partial_login};

const SECRET: &str = "frontend-mfa-secret-16";
const PASSWORD: &str = "local-password";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Administrators owe a second factor on the front-end; Monitors do not. Two wrong codes
/// lock a user out.
fn config() -> String {
    let hash = hash_password(PASSWORD.as_bytes()).unwrap();
    let user = |name: &str, role: &str| {
        format!(
            "[[local_users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\nroles = [\"{role}\"]\n"
        )
    };
    format!(
        r#"
[mfa]
lockout_threshold = 2

[mfa.policy]
required = "roles"
roles = ["Administrator"]

[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{SECRET}"

{}{}{}{}{}"#,
        user("alice", "Administrator"),
        user("bob", "Administrator"),
        user("carol", "Administrator"),
        user("erin", "Administrator"),
        user("dave", "Monitor"),
    )
}

fn radius_addr(daemon: &Daemon) -> SocketAddr {
    daemon.radius_addr.expect("the RADIUS front-end listens")
}

/// Pairs and activates a device for `user` with the partial token of a two-step login.
fn enrolled(daemon: &Daemon, user: &str) -> Enrolled {
    let partial = partial_login(daemon, user, PASSWORD);
    enrol(daemon, Auth::Bearer(&partial), "phone")
}

fn radclient(dir: &Path, addr: SocketAddr, input: &str) -> ClientOutput {
    support::freeradius::radclient_auth(dir, addr, SECRET, input, CLIENT_TIMEOUT)
}

fn dictionary_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dictionary"),
        "$INCLUDE /usr/share/freeradius/dictionary\n",
    )
    .unwrap();
    dir
}

/// A dictionary with what the pyrad script needs.
const PYRAD_DICTIONARY: &str = "\
ATTRIBUTE\tUser-Name\t1\tstring
ATTRIBUTE\tUser-Password\t2\tstring
ATTRIBUTE\tReply-Message\t18\tstring
ATTRIBUTE\tState\t24\toctets
ATTRIBUTE\tClass\t25\toctets
ATTRIBUTE\tMessage-Authenticator\t80\toctets
";

/// Runs tests/support/mfa_radius.py: password, then the challenge's code, then a replay.
fn pyrad(addr: SocketAddr, user: &str, password: &str, device: &mut Enrolled) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let dictionary = dir.path().join("dictionary");
    std::fs::write(&dictionary, PYRAD_DICTIONARY).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mfa_radius.py");
    let b32 = device
        .uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    device.step = device.step.max(support::mfa::now_step()) + 1;
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(&dictionary)
        .arg(addr.port().to_string())
        .args([SECRET, user, password, &b32, &device.step.to_string()]);
    let output = support::freeradius::run_bounded(&mut cmd, "", CLIENT_TIMEOUT);
    assert!(
        output.status.is_some_and(|s| s.success()),
        "pyrad failed (python3 -m pip install pyrad==2.4): {output:?}"
    );
    serde_json::from_str(output.stdout.trim()).unwrap()
}

#[test]
fn pyrad_answers_the_challenge_with_a_totp_code() {
    let daemon = Daemon::start(Some(&config()));
    let addr = radius_addr(&daemon);
    let mut device = enrolled(&daemon, "alice");

    let result = pyrad(addr, "alice", PASSWORD, &mut device);
    let first = &result["first"];
    assert_eq!(first["code"], 11, "{result}");
    assert_eq!(first["state_len"], 16, "{result}");
    assert_eq!(first["messages"][0], PROMPT, "{result}");
    assert_eq!(first["signed"], true, "{result}");
    // The code (computed by the script from the pairing secret) is accepted once...
    assert_eq!(result["answer"]["code"], 2, "{result}");
    assert_eq!(result["answer"]["signed"], true, "{result}");
    // ... and the State is single use.
    assert_eq!(result["replay"]["code"], 3, "{result}");
    assert_eq!(
        result["replay"]["messages"][0], UNKNOWN_CHALLENGE,
        "{result}"
    );

    // A wrong password gets no challenge; a user outside the policy is accepted at once.
    let wrong = pyrad(addr, "alice", "wrong", &mut device);
    assert_eq!(wrong["first"]["code"], 3, "{wrong}");
    assert!(wrong.get("answer").is_none());
    let monitor = pyrad(addr, "dave", PASSWORD, &mut device);
    assert_eq!(monitor["first"]["code"], 2, "{monitor}");
    // A user the policy applies to with no device cannot log in over RADIUS.
    let unenrolled = pyrad(addr, "erin", PASSWORD, &mut device);
    assert_eq!(unenrolled["first"]["code"], 3, "{unenrolled}");
    assert_eq!(unenrolled["first"]["messages"][0], NOT_ENROLLED);
}

#[test]
fn radclient_challenge_state_is_bound_to_the_user() {
    let daemon = Daemon::start(Some(&config()));
    let addr = radius_addr(&daemon);
    let dir = dictionary_dir();
    let mut bob = enrolled(&daemon, "bob");
    let mut carol = enrolled(&daemon, "carol");

    let challenge = radclient(
        dir.path(),
        addr,
        &format!("User-Name = bob\nUser-Password = {PASSWORD}\n"),
    );
    assert!(challenge.received("Access-Challenge"), "{challenge:?}");
    assert!(challenge.stdout.contains(PROMPT), "{challenge:?}");
    let state = challenge.state();
    assert_eq!(state.len(), 2 + 32, "{state}");

    // Carol cannot answer bob's challenge, even with her own good code; and the State is
    // gone after that.
    let stolen = radclient(
        dir.path(),
        addr,
        &format!(
            "User-Name = carol\nUser-Password = {}\nState = {state}\n",
            carol.next_code()
        ),
    );
    assert!(stolen.received("Access-Reject"), "{stolen:?}");
    assert!(stolen.stdout.contains(UNKNOWN_CHALLENGE), "{stolen:?}");

    let challenge = radclient(
        dir.path(),
        addr,
        &format!("User-Name = bob\nUser-Password = {PASSWORD}\n"),
    );
    let state = challenge.state();
    let accept = radclient(
        dir.path(),
        addr,
        &format!(
            "User-Name = bob\nUser-Password = {}\nState = {state}\n",
            bob.next_code()
        ),
    );
    assert!(accept.received("Access-Accept"), "{accept:?}");
    let class = format!("Class = 0x{}", hex::encode("Administrator"));
    assert!(accept.stdout.contains(&class), "{accept:?}");
}

#[test]
fn password_and_code_in_one_request_and_lockout() {
    let daemon = Daemon::start(Some(&config()));
    let addr = radius_addr(&daemon);
    let dir = dictionary_dir();
    let mut carol = enrolled(&daemon, "carol");
    let login = |password: &str| {
        radclient(
            dir.path(),
            addr,
            &format!("User-Name = carol\nUser-Password = \"{password}\"\n"),
        )
    };

    let code = carol.next_code();
    let accept = login(&format!("{PASSWORD},{code}"));
    assert!(accept.received("Access-Accept"), "{accept:?}");
    // Spent.
    let replay = login(&format!("{PASSWORD},{code}"));
    assert!(replay.received("Access-Reject"), "{replay:?}");
    assert!(replay.stdout.contains(INVALID_CODE), "{replay:?}");
    // A wrong password with a code is a plain reject.
    let wrong = login(&format!("wrong,{code}"));
    assert!(wrong.received("Access-Reject"), "{wrong:?}");
    assert!(!wrong.stdout.contains(INVALID_CODE), "{wrong:?}");

    // The replay was the first failure; the next locks carol out, and then even a good
    // code and a plain password are refused with the lockout's Reply-Message.
    let locking = login(&format!("{PASSWORD},{code}"));
    assert!(locking.stdout.contains("locked out"), "{locking:?}");
    let good = carol.next_code();
    let locked = login(&format!("{PASSWORD},{good}"));
    assert!(locked.received("Access-Reject"), "{locked:?}");
    assert!(locked.stdout.contains("locked out"), "{locked:?}");
    let plain = login(PASSWORD);
    assert!(plain.received("Access-Reject"), "{plain:?}");
    assert!(plain.stdout.contains("locked out"), "{plain:?}");

    // Dave has no device: `password,123456` is his whole password (a wrong one), not a
    // password and a code.
    let dave = radclient(
        dir.path(),
        addr,
        &format!("User-Name = dave\nUser-Password = \"{PASSWORD},123456\"\n"),
    );
    assert!(dave.received("Access-Reject"), "{dave:?}");
    let dave = radclient(
        dir.path(),
        addr,
        &format!("User-Name = dave\nUser-Password = \"{PASSWORD}\"\n"),
    );
    assert!(dave.received("Access-Accept"), "{dave:?}");
}
