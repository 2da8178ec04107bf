//! A TACACS+ server that asks for a token code after the password (GETDATA in an ASCII login,
//! RFC 8907 §5.4.2), relayed through the real daemon: the session is held open while the
//! user answers, through the REST login and through the RADIUS front-end (radclient).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::daemon::{ADMIN_PASSWORD, Auth, Daemon};
use support::freeradius::{ClientOutput, TEST_DICTIONARY};
use support::tacacs_server::{Config, KEY, TacacsServer, User};

/// The front-end client secret of 127.0.0.1.
const SECRET: &str = "tacacs-prompt-secret-16";
/// Upper bound on one radclient run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
const TOKEN: &str = "724193";

fn start() -> (TacacsServer, Daemon) {
    let mut config = Config::new(vec![User::new("tess", "tess-pw", &[("role", "admin")])]);
    config.token = Some(TOKEN.into());
    let server = TacacsServer::start(config);
    let hash = portcullis::engine::local::hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    let daemon = Daemon::start(Some(&format!(
        r#"
[authentication]
current_sequence = 4

[tacacs.settings]
connection_timeout = 5

[[tacacs.servers]]
id = 1
order = 1
address = "{ip}"
port = {port}
secret = "{KEY}"
protocol = "ASCII"

[[tacacs.role_mappings]]
role = "Administrator"
attribute = "role"
attribute_value = "admin"

[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{SECRET}"

[[local_users]]
name = "admin"
password_hash = "{hash}"
roles = ["Administrator"]
"#,
        ip = server.addr().ip(),
        port = server.addr().port()
    )));
    (server, daemon)
}

fn rest(
    daemon: &Daemon,
    path: &str,
    auth: Auth<'_>,
    body: serde_json::Value,
) -> support::daemon::Answer {
    daemon.request("POST", path, auth, Some(&body.to_string()))
}

fn radius_request(daemon: &Daemon, password: &str, state: Option<&str>) -> ClientOutput {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dictionary"), TEST_DICTIONARY).unwrap();
    let state = state.map_or(String::new(), |s| format!("State = {s}\n"));
    support::freeradius::radclient_auth(
        dir.path(),
        daemon.radius_addr.expect("the RADIUS front-end listens"),
        SECRET,
        &format!("User-Name = tess\nUser-Password = {password}\n{state}"),
        CLIENT_TIMEOUT,
    )
}

#[test]
fn a_token_prompt_after_the_password_through_the_rest_login() {
    let (server, daemon) = start();
    let first = rest(
        &daemon,
        "/api/auth/1.0/login",
        Auth::None,
        json!({"username": "tess", "password": "tess-pw"}),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let body = first.json();
    assert_eq!(body["needTwoFactorAuth"], true, "{body}");
    assert_eq!(body["challenge"]["message"], "Token code: ", "{body}");
    assert_eq!(body["challenge"]["echo"], false, "{body}");
    let token = body["token"].as_str().unwrap().to_string();

    let done = rest(
        &daemon,
        "/api/auth/1.0/login/mfa",
        Auth::Bearer(&token),
        json!({ "code": TOKEN }),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    let body = done.json();
    assert_eq!(body["needTwoFactorAuth"], false, "{body}");
    assert_eq!(body["roles"], json!(["Administrator"]), "{body}");
    assert_eq!(body["method"], "TACACS+", "{body}");

    // The answer went on in the same session (one START, the password and the token as
    // CONTINUEs of it), then one authorization.
    let received = server.received();
    assert_eq!(received.starts.len(), 1, "{received:?}");
    let session = received.starts[0].header.session_id;
    let continues: Vec<&[u8]> = received
        .continues
        .iter()
        .map(|c| {
            assert_eq!(c.header.session_id, session);
            &c.user_msg[..]
        })
        .collect();
    assert_eq!(continues, [&b"tess-pw"[..], TOKEN.as_bytes()]);
    assert_eq!(received.authorizations.len(), 1, "{received:?}");

    // A wrong token is a reject.
    let first = rest(
        &daemon,
        "/api/auth/1.0/login",
        Auth::None,
        json!({"username": "tess", "password": "tess-pw"}),
    );
    let token = first.json()["token"].as_str().unwrap().to_string();
    let wrong = rest(
        &daemon,
        "/api/auth/1.0/login/mfa",
        Auth::Bearer(&token),
        json!({ "code": "000000" }),
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);
}

#[test]
fn a_token_prompt_after_the_password_through_the_radius_front_end() {
    let (_server, daemon) = start();
    let first = radius_request(&daemon, "tess-pw", None);
    assert!(first.received("Access-Challenge"), "{first:?}");
    assert!(
        first.stdout.contains("Reply-Message = \"Token code: \""),
        "{first:?}"
    );
    let done = radius_request(&daemon, TOKEN, Some(&first.state()));
    assert!(done.received("Access-Accept"), "{done:?}");

    let first = radius_request(&daemon, "tess-pw", None);
    let wrong = radius_request(&daemon, "000000", Some(&first.state()));
    assert!(wrong.received("Access-Reject"), "{wrong:?}");
}

#[test]
fn a_server_that_prompts_forever_is_cut_off_after_ten_rounds() {
    let mut config = Config::new(vec![User::new("tess", "tess-pw", &[("role", "admin")])]);
    config.authen_misbehaviour = Some(support::tacacs_server::Misbehaviour::EndlessPrompts);
    let server = TacacsServer::start(config);
    let hash = portcullis::engine::local::hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    let daemon = Daemon::start(Some(&format!(
        r#"
[authentication]
current_sequence = 4

[[tacacs.servers]]
id = 1
order = 1
address = "{ip}"
port = {port}
secret = "{KEY}"
protocol = "ASCII"

[[local_users]]
name = "admin"
password_hash = "{hash}"
roles = ["Administrator"]
"#,
        ip = server.addr().ip(),
        port = server.addr().port()
    )));
    let mut answer = rest(
        &daemon,
        "/api/auth/1.0/login",
        Auth::None,
        json!({"username": "tess", "password": "tess-pw"}),
    );
    let mut rounds = 0;
    // Bounded: the pipeline allows ten challenges per login.
    while answer.status == 200 && rounds < 20 {
        assert_eq!(answer.json()["needTwoFactorAuth"], true, "{}", answer.body);
        let token = answer.json()["token"].as_str().unwrap().to_string();
        rounds += 1;
        answer = rest(
            &daemon,
            "/api/auth/1.0/login/mfa",
            Auth::Bearer(&token),
            json!({ "code": format!("answer {rounds}") }),
        );
    }
    assert_eq!(rounds, 10, "{}", answer.body);
    assert_eq!(answer.status, 401, "{}", answer.body);
}
