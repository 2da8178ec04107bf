//! Delivered one-time codes as the second factor of the real daemon's logins: a user without
//! a TOTP device but with a validated phone number in the `[mfa_delivery]` application gets a
//! login code by SMS (read from the webhook receiver) in the REST two-step login and in the
//! RADIUS Access-Challenge; a wrong code is refused and audited; with the SMS gateway down,
//! `failmode = "secure"` refuses the login and `failmode = "safe"` lets it through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use portcullis::engine::local::hash_password;
use portcullis::frontend::challenge::{DELIVERY_FAILED, PROMPT_SMS};
use serde_json::{Value, json};
use support::daemon::{Answer, Auth, Daemon};
use support::freeradius::ClientOutput;
use support::mfa::partial_login;
use support::mfa_peers::SmsSink;

const BASE: &str = "/api/mfa/1.0/applications";
const LOGIN_MFA: &str = "/api/auth/1.0/login/mfa";
const BREAKGLASS: Auth<'static> = Auth::Basic("breakglass", "breakglass-password");
const SERVICE: Auth<'static> = Auth::Basic("vpn-service", "service-password");
const PASSWORD: &str = "admin-password";
const RADIUS_SECRET: &str = "delivered-mfa-secret-16";
const PHONE: &str = "+15550100001";

/// Administrators owe a second factor (except `breakglass`); delivered codes come from the
/// application `gateway` through the SMS webhook at `sms_url`.
fn config(sms_url: &str, failmode: &str) -> String {
    let hash = |p: &str| hash_password(p.as_bytes()).unwrap();
    format!(
        r#"
roles = ["Administrator", "Monitor", "MFA Service"]

[mfa]
lockout_threshold = 3

[mfa.policy]
required = "roles"
roles = ["Administrator"]
exempt_users = ["breakglass"]
failmode = "{failmode}"

[mfa_delivery]
application = "gateway"

[mfa_delivery.sms]
url = "{sms_url}"

[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{RADIUS_SECRET}"

[[local_users]]
name = "admin"
password_hash = "{}"
roles = ["Administrator"]

[[local_users]]
name = "breakglass"
password_hash = "{}"
roles = ["Administrator"]

[[local_users]]
name = "vpn-service"
password_hash = "{}"
roles = ["MFA Service"]
"#,
        hash(PASSWORD),
        hash("breakglass-password"),
        hash("service-password"),
    )
}

fn send(daemon: &Daemon, method: &str, path: &str, auth: Auth<'_>, body: Option<Value>) -> Answer {
    let body = body.map(|b| b.to_string());
    daemon.request(method, path, auth, body.as_deref())
}

/// The code at the end of a delivered text.
fn sms_code(sms: &SmsSink) -> String {
    let request = sms.next();
    assert_eq!(request.body["to"], PHONE, "{:?}", request.body);
    let text = request.body["message"].as_str().unwrap();
    text.split_whitespace().last().unwrap().to_owned()
}

/// Creates the `gateway` application and gives `admin` a validated phone number.
fn enrol_phone(daemon: &Daemon, sms: &SmsSink) {
    let answer = send(
        daemon,
        "POST",
        BASE,
        BREAKGLASS,
        Some(json!({
            "name": "gateway",
            "auth_code_length": 6,
            "auth_token_type": "NUMERIC",
            "display_name": "Gateway",
            "associate_template": "$display_name verification: $code",
            "login_template": "$display_name login: $code",
            "message_from": "PORTCULLIS"
        })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let app = answer.json()["id"].as_str().unwrap().to_owned();
    let user = format!("{BASE}/{app}/users/admin");
    // An Administrator associates admin's number: an `MFA Service` caller may not change an
    // Administrator's factor (tests/attacks.rs).
    let answer = send(
        daemon,
        "POST",
        &format!("{user}/associate"),
        BREAKGLASS,
        Some(json!({"address": PHONE})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let code = sms_code(sms);
    let answer = send(
        daemon,
        "POST",
        &format!("{user}/validate"),
        SERVICE,
        Some(json!({"validation_code": code})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = send(daemon, "GET", &user, BREAKGLASS, None);
    assert_eq!(answer.json()["status"], "VALIDATED", "{}", answer.body);
}

fn login(daemon: &Daemon) -> Answer {
    let body = json!({"username": "admin", "password": PASSWORD});
    send(
        daemon,
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(body),
    )
}

fn second_step(daemon: &Daemon, partial: &str, code: &str) -> Answer {
    send(
        daemon,
        "POST",
        LOGIN_MFA,
        Auth::Bearer(partial),
        Some(json!({ "code": code })),
    )
}

/// A six-digit code other than `code`.
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Waits (bounded) for an audit event of `admin` that `matches`.
fn audited(daemon: &Daemon, matches: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..50 {
        let answer = send(
            daemon,
            "GET",
            "/api/audit/1.0/events?user=admin",
            BREAKGLASS,
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let page = answer.json();
        if let Some(event) = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| matches(e))
        {
            return event.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no matching audit event");
}

/// A loopback URL nothing listens on.
fn closed_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/sms/send")
}

#[test]
fn rest_two_step_login_with_a_delivered_code_and_failmode() {
    let sms = SmsSink::start();
    let daemon = Daemon::start(Some(&config(&sms.url(), "secure")));
    enrol_phone(&daemon, &sms);

    // First step: a partial token, and a login code by SMS.
    let answer = login(&daemon);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["needTwoFactorAuth"], true, "{}", answer.body);
    assert_eq!(answer.json()["codeSentBy"], "SMS", "{}", answer.body);
    let partial = answer.json()["token"].as_str().unwrap().to_owned();
    let code = sms_code(&sms);
    assert_eq!(code.len(), 6, "{code}");

    // A wrong code is refused (and the right one still works afterwards).
    let wrong = second_step(&daemon, &partial, &other_than(&code));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(wrong.json()["error_info"]["reason"], "INVALID_CODE");
    let answer = second_step(&daemon, &partial, &code);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["needTwoFactorAuth"], false, "{}", answer.body);
    assert!(answer.json().get("codeSentBy").is_none(), "{}", answer.body);
    let full = answer.json()["token"].as_str().unwrap().to_owned();
    let session = send(
        &daemon,
        "GET",
        "/api/auth/1.0/session",
        Auth::Bearer(&full),
        None,
    );
    assert_eq!(session.status, 200, "{}", session.body);

    // The code is spent: a new login cannot reuse it.
    let partial = partial_login(&daemon, "admin", PASSWORD);
    let fresh = sms_code(&sms);
    let replay = second_step(&daemon, &partial, &code);
    if code != fresh {
        assert_eq!(replay.status, 401, "{}", replay.body);
    }

    // Both outcomes are in the audit log, with the method that took the code.
    let accepted = audited(&daemon, |e| {
        e["method"] == "delivered" && e["result"] == "accept"
    });
    assert_eq!(
        accepted["action"], "POST /api/auth/1.0/login/mfa",
        "{accepted}"
    );
    assert!(
        accepted["source"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1"),
        "{accepted}"
    );
    let rejected = audited(&daemon, |e| {
        e["action"] == "POST /api/auth/1.0/login/mfa" && e["result"] == "reject"
    });
    assert_eq!(rejected["reason"], "INVALID_CODE", "{rejected}");

    // The SMS gateway down, failmode secure: the login is refused with the reason.
    std::fs::write(daemon.config_path(), config(&closed_url(), "secure")).unwrap();
    let daemon = daemon.restart();
    let answer = login(&daemon);
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(
        answer.json()["error_info"]["reason"],
        "MFA_DELIVERY_FAILED",
        "{}",
        answer.body
    );
    let refused = audited(&daemon, |e| {
        e["result"] == "reject"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("MFA_DELIVERY_FAILED"))
    });
    assert_eq!(refused["action"], "POST /api/auth/1.0/login", "{refused}");

    // Failmode safe: in without a second factor, and audited as such.
    std::fs::write(daemon.config_path(), config(&closed_url(), "safe")).unwrap();
    let daemon = daemon.restart();
    let answer = login(&daemon);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["needTwoFactorAuth"], false, "{}", answer.body);
    audited(&daemon, |e| {
        e["result"] == "accept"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("failmode safe"))
    });
}

fn radclient(dir: &Path, daemon: &Daemon, input: &str) -> ClientOutput {
    let addr = daemon.radius_addr.expect("the RADIUS front-end listens");
    support::freeradius::radclient_auth(dir, addr, RADIUS_SECRET, input, Duration::from_secs(20))
}

#[test]
fn radius_challenge_with_a_delivered_code() {
    let sms = SmsSink::start();
    let daemon = Daemon::start(Some(&config(&sms.url(), "secure")));
    enrol_phone(&daemon, &sms);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dictionary"),
        "$INCLUDE /usr/share/freeradius/dictionary\n",
    )
    .unwrap();
    let first = format!("User-Name = admin\nUser-Password = {PASSWORD}\n");

    // The challenge says where the code went.
    let challenge = radclient(dir.path(), &daemon, &first);
    assert!(challenge.received("Access-Challenge"), "{challenge:?}");
    assert!(challenge.stdout.contains(PROMPT_SMS), "{challenge:?}");
    let state = challenge.state();
    let code = sms_code(&sms);
    let accept = radclient(
        dir.path(),
        &daemon,
        &format!("User-Name = admin\nUser-Password = {code}\nState = {state}\n"),
    );
    assert!(accept.received("Access-Accept"), "{accept:?}");
    let event = audited(&daemon, |e| {
        e["action"] == "radius:loopback second factor" && e["result"] == "accept"
    });
    assert_eq!(event["method"], "delivered", "{event}");

    // A wrong delivered code is refused.
    let challenge = radclient(dir.path(), &daemon, &first);
    let state = challenge.state();
    let code = sms_code(&sms);
    let reject = radclient(
        dir.path(),
        &daemon,
        &format!(
            "User-Name = admin\nUser-Password = {}\nState = {state}\n",
            other_than(&code)
        ),
    );
    assert!(reject.received("Access-Reject"), "{reject:?}");

    // The SMS gateway down, failmode secure: an Access-Reject that says why.
    std::fs::write(daemon.config_path(), config(&closed_url(), "secure")).unwrap();
    let daemon = daemon.restart();
    let refused = radclient(dir.path(), &daemon, &first);
    assert!(refused.received("Access-Reject"), "{refused:?}");
    assert!(refused.stdout.contains(DELIVERY_FAILED), "{refused:?}");
}
