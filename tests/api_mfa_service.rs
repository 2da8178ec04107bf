//! The MFA service through the real daemon: applications (versions, unique names, lengths,
//! filters), users and the association -> validation -> login flow, token authenticate, with
//! the codes read from a real SMTP relay (aiosmtpd, STARTTLS and AUTH) and an SMS webhook
//! receiver on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use portcullis::engine::local::hash_password;
use serde_json::{Value, json};
use support::daemon::{Answer, Auth, Daemon};
use support::mfa_peers::{SmsSink, SmtpSink};

const BASE: &str = "/api/mfa/1.0/applications";
const ADMIN: Auth<'static> = Auth::Basic("admin", "admin-password");
const MONITOR: Auth<'static> = Auth::Basic("watcher", "watcher-password");
const SERVICE: Auth<'static> = Auth::Basic("vpn-service", "service-password");

/// Users: an Administrator, a Monitor and an `MFA Service` account; `extra` is appended.
fn config(extra: &str) -> String {
    let admin = hash_password(b"admin-password").unwrap();
    let monitor = hash_password(b"watcher-password").unwrap();
    let service = hash_password(b"service-password").unwrap();
    format!(
        r#"
roles = ["Administrator", "Monitor", "MFA Service"]

[[local_users]]
name = "admin"
password_hash = "{admin}"
roles = ["Administrator"]

[[local_users]]
name = "watcher"
password_hash = "{monitor}"
roles = ["Monitor"]

[[local_users]]
name = "vpn-service"
password_hash = "{service}"
roles = ["MFA Service"]

{extra}
"#
    )
}

fn send(daemon: &Daemon, method: &str, path: &str, auth: Auth<'_>, body: Option<Value>) -> Answer {
    let body = body.map(|b| b.to_string());
    daemon.request(method, path, auth, body.as_deref())
}

/// Asserts the documented error body with `status` and `code`.
fn error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["error_code"], code, "{}", answer.body);
    assert!(body["error_description"].is_string(), "{}", answer.body);
}

fn create(daemon: &Daemon, body: Value) -> String {
    let answer = send(daemon, "POST", BASE, ADMIN, Some(body));
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["id"].as_str().unwrap().to_owned()
}

#[test]
fn applications() {
    let daemon = Daemon::start(Some(&config("")));
    // No credentials: 401 in the MFA error body.
    error(&send(&daemon, "GET", BASE, Auth::None, None), 401, "401");
    error(
        &send(&daemon, "GET", BASE, Auth::Basic("admin", "wrong"), None),
        401,
        "401",
    );

    let id = create(
        &daemon,
        json!({
            "name": "vpn",
            "description": "VPN second factor",
            "auth_code_length": 8,
            "auth_token_type": "ALPHANUMERIC",
            "auth_token_validity_duration": 120,
            "auth_token_prefix": "V-",
            "auth_token_delivery_methods": "SMS",
            "display_name": "Corp VPN",
            "login_template": "$display_name login: $code",
            "message_from": "CORP"
        }),
    );
    assert_eq!(id.len(), 32);
    let app = send(&daemon, "GET", &format!("{BASE}/{id}"), MONITOR, None);
    assert_eq!(app.status, 200, "{}", app.body);
    let app = app.json();
    assert_eq!(app["name"], "vpn");
    assert_eq!(app["auth_code_length"], 8);
    assert_eq!(app["auth_token_type"], "ALPHANUMERIC");
    assert_eq!(app["auth_token_prefix"], "V-");
    assert_eq!(app["associate_template"], "");
    assert_eq!(app["version_number"], 1);
    let created = app["created_date"].as_str().unwrap().to_owned();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    assert_eq!(app["last_updated_date"], created.as_str());

    // Defaults.
    let other = create(&daemon, json!({"name": "ssh"}));
    let ssh = send(&daemon, "GET", &format!("{BASE}/{other}"), ADMIN, None).json();
    assert_eq!(ssh["auth_code_length"], 6);
    assert_eq!(ssh["auth_token_type"], "NUMERIC");
    assert_eq!(ssh["auth_token_validity_duration"], 300);
    assert_eq!(ssh["auth_token_delivery_methods"], "SMS");
    assert_eq!(ssh["display_name"], "ssh");

    // Filters on the list (and the quirk: on the GET of one application).
    let list = |query: &str| send(&daemon, "GET", &format!("{BASE}{query}"), SERVICE, None);
    assert_eq!(list("").json().as_array().unwrap().len(), 2);
    let found = list("?auth_token_type=ALPHANUMERIC&auth_code_length=8").json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], id.as_str());
    assert_eq!(list("?name=ssh").json()[0]["id"], other.as_str());
    assert_eq!(
        list("?message_from=CORP&auth_token_prefix=V-")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        list(&format!("?created_date={}", &created[..10]))
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        list("?created_date=2001-01-01")
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        list("?auth_token_delivery_methods=EMAIL")
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    error(&list("?auth_code_length=eight"), 400, "400");
    error(&list(&format!("?name={}", "n".repeat(65))), 400, "1023");
    let filtered = send(
        &daemon,
        "GET",
        &format!("{BASE}/{id}?name=ssh"),
        ADMIN,
        None,
    );
    error(&filtered, 404, "404");

    // Update with the current version; the version goes up.
    let path = format!("{BASE}/{id}");
    let updated = send(
        &daemon,
        "PUT",
        &path,
        ADMIN,
        Some(json!({"version_number": 1, "description": "changed", "auth_code_length": 10})),
    );
    assert_eq!(updated.status, 200, "{}", updated.body);
    let updated = updated.json();
    assert_eq!(updated["version_number"], 2);
    assert_eq!(updated["description"], "changed");
    assert_eq!(updated["auth_code_length"], 10);
    assert_eq!(updated["name"], "vpn");
    // A stale version: 409 / 1001, nothing changed.
    let stale = send(
        &daemon,
        "PUT",
        &path,
        ADMIN,
        Some(json!({"version_number": 1, "description": "lost update"})),
    );
    error(&stale, 409, "1001");
    assert_eq!(
        send(&daemon, "GET", &path, ADMIN, None).json()["description"],
        "changed"
    );
    // The GET body can be sent back as it is (with its version).
    let mut whole = send(&daemon, "GET", &path, ADMIN, None).json();
    whole["message_from"] = json!("CORP2");
    let answer = send(&daemon, "PUT", &path, ADMIN, Some(whole));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["version_number"], 3);
    error(
        &send(
            &daemon,
            "PUT",
            &path,
            ADMIN,
            Some(json!({"description": "x"})),
        ),
        400,
        "400",
    );

    // Duplicate names: 409 / 1011, on create and on rename.
    error(
        &send(&daemon, "POST", BASE, ADMIN, Some(json!({"name": "vpn"}))),
        409,
        "1011",
    );
    let rename = json!({"version_number": 1, "name": "vpn"});
    error(
        &send(
            &daemon,
            "PUT",
            &format!("{BASE}/{other}"),
            ADMIN,
            Some(rename),
        ),
        409,
        "1011",
    );

    // Over-long fields: 400 / 1023; other invalid values: 400 / 400.
    for (field, value) in [
        ("name", json!("n".repeat(65))),
        ("description", json!("d".repeat(1025))),
        ("auth_token_prefix", json!("p".repeat(17))),
        ("display_name", json!("d".repeat(65))),
        (
            "login_template",
            json!(format!("$code{}", "t".repeat(1020))),
        ),
        ("message_from", json!("m".repeat(65))),
    ] {
        let mut body = json!({"name": "long"});
        body[field] = value;
        error(&send(&daemon, "POST", BASE, ADMIN, Some(body)), 400, "1023");
    }
    for body in [
        json!({"name": "x", "auth_code_length": 3}),
        json!({"name": "x", "auth_token_type": "HEX"}),
        json!({"name": "x", "auth_token_delivery_methods": "FAX"}),
        json!({"name": "x", "auth_token_validity_duration": 0}),
        json!({"name": "x", "login_template": "no placeholder"}),
        json!({"name": "x", "colour": "red"}),
        json!({"name": 5}),
        json!({"description": "no name"}),
        json!(["not", "an", "object"]),
    ] {
        error(
            &send(&daemon, "POST", BASE, ADMIN, Some(body.clone())),
            400,
            "400",
        );
    }
    let long_id = "i".repeat(200);
    error(
        &send(&daemon, "GET", &format!("{BASE}/{long_id}"), ADMIN, None),
        400,
        "1023",
    );

    // Access: Monitor and MFA Service read, only Administrator writes applications.
    error(
        &send(&daemon, "POST", BASE, MONITOR, Some(json!({"name": "m"}))),
        403,
        "403",
    );
    error(
        &send(&daemon, "POST", BASE, SERVICE, Some(json!({"name": "m"}))),
        403,
        "403",
    );
    error(&send(&daemon, "DELETE", &path, SERVICE, None), 403, "403");

    // Delete: gone, and its users with it.
    let deleted = send(&daemon, "DELETE", &path, ADMIN, None);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    error(&send(&daemon, "GET", &path, ADMIN, None), 404, "404");
    error(&send(&daemon, "DELETE", &path, ADMIN, None), 404, "404");
    error(
        &send(&daemon, "GET", &format!("{path}/users"), ADMIN, None),
        404,
        "404",
    );

    // Applications survive a restart (they live in the state database).
    let daemon = daemon.restart();
    let left = send(&daemon, "GET", BASE, ADMIN, None).json();
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["id"], other.as_str());
}

/// The code at the end of a delivered text.
fn code_in(text: &str) -> String {
    text.split_whitespace().last().unwrap().to_owned()
}

fn sms_code(sms: &SmsSink, to: &str) -> String {
    let request = sms.next();
    assert_eq!(request.body["to"], to, "{:?}", request.body);
    code_in(request.body["message"].as_str().unwrap())
}

fn user_path(app: &str, user: &str) -> String {
    format!("{BASE}/{app}/users/{user}")
}

fn token(daemon: &Daemon, user: &str, code: &str, delivery: &str) -> String {
    let answer = send(
        daemon,
        "POST",
        "/api/mfa/1.0/token/authenticate",
        SERVICE,
        Some(json!({"token": code, "userAlias": user, "deliveryType": delivery})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["status"].as_str().unwrap().to_owned()
}

#[test]
fn sms_association_validation_login_and_token_authenticate() {
    let sms = SmsSink::start();
    let daemon = Daemon::start(Some(&config(&format!(
        "[mfa_delivery]\napplication = \"gateway\"\n[mfa_delivery.sms]\nurl = \"{}\"\nbearer = \"sms-gateway-token\"\n",
        sms.url()
    ))));
    let app = create(
        &daemon,
        json!({
            "name": "gateway",
            "auth_code_length": 8,
            "auth_token_type": "ALPHANUMERIC",
            "auth_token_prefix": "GW-",
            "display_name": "Gateway",
            "associate_template": "$display_name verification: $code",
            "login_template": "$display_name login: $code",
            "message_from": "PORTCULLIS"
        }),
    );
    let alice = user_path(&app, "alice");

    // Associate: the webhook gets the JSON message with the bearer token.
    let answer = send(
        &daemon,
        "POST",
        &format!("{alice}/associate"),
        SERVICE,
        Some(json!({"address": "+1 555 010 0001"})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["id"], "alice");
    let request = sms.next();
    assert!(
        request.head.starts_with("POST /sms/send HTTP/1.1"),
        "{}",
        request.head
    );
    assert!(
        request
            .head
            .to_ascii_lowercase()
            .contains("authorization: bearer sms-gateway-token"),
        "{}",
        request.head
    );
    assert_eq!(request.body["to"], "+15550100001");
    assert_eq!(request.body["from"], "PORTCULLIS");
    let text = request.body["message"].as_str().unwrap();
    assert!(text.starts_with("Gateway verification: GW-"), "{text}");
    let code = code_in(text);
    assert_eq!(code.len(), 11);
    assert!(
        code[3..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "{code}"
    );

    let user = send(&daemon, "GET", &alice, MONITOR, None).json();
    assert_eq!(user["status"], "VALIDATION PENDING");
    assert_eq!(user["user_address"], "+15550100001");
    assert_eq!(user["version_number"], 1);
    // Not validated yet: no login.
    error(
        &send(
            &daemon,
            "POST",
            &format!("{alice}/login_start"),
            SERVICE,
            None,
        ),
        409,
        "2003",
    );
    assert_eq!(token(&daemon, "alice", "", "SMS_WORK"), "NOT_ENOUGH_DATA");

    // A wrong code, then the right one (lower case is fine for ALPHANUMERIC).
    let validate = |user: &str, code: &str| {
        send(
            &daemon,
            "POST",
            &format!("{}/validate", user_path(&app, user)),
            SERVICE,
            Some(json!({"validation_code": code})),
        )
    };
    error(&validate("alice", "GW-00000000"), 412, "2001");
    let answer = validate(
        "alice",
        &code.to_ascii_lowercase().replacen("gw-", "GW-", 1),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["id"], "alice");
    let user = send(&daemon, "GET", &alice, ADMIN, None).json();
    assert_eq!(user["status"], "VALIDATED");
    assert_eq!(user["version_number"], 2);
    // Single use.
    error(&validate("alice", &code), 412, "2001");

    // login_start sends a login code; validate takes it once.
    let answer = send(
        &daemon,
        "POST",
        &format!("{alice}/login_start"),
        SERVICE,
        Some(json!({})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let login = sms_code(&sms, "+15550100001");
    assert_eq!(validate("alice", &login).status, 200);
    error(&validate("alice", &login), 412, "2001");

    // token/authenticate: an empty token sends a code (PENDING); it is checked once.
    assert_eq!(token(&daemon, "alice", "", "SMS_PERSONAL"), "PENDING");
    let code = sms_code(&sms, "+15550100001");
    assert_eq!(token(&daemon, "alice", "GW-WRONG000", "SMS_WORK"), "FAILED");
    assert_eq!(token(&daemon, "alice", &code, "SMS_WORK"), "SUCCESS");
    assert_eq!(token(&daemon, "alice", &code, "SMS_WORK"), "FAILED");
    // Delivery types that do not fit, and unknown users.
    assert_eq!(
        token(&daemon, "alice", &code, "EMAIL_WORK"),
        "NOT_ENOUGH_DATA"
    );
    assert_eq!(
        token(&daemon, "alice", &code, "VOICE_WORK"),
        "NOT_ENOUGH_DATA"
    );
    assert_eq!(
        token(&daemon, "nobody", "123", "SMS_WORK"),
        "NOT_ENOUGH_DATA"
    );
    // The documented error bodies of token/authenticate.
    let bad = send(
        &daemon,
        "POST",
        "/api/mfa/1.0/token/authenticate",
        SERVICE,
        Some(json!({"token": "1", "userAlias": "alice"})),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.json()["detailCode"], "400.1 Bad Request Content");
    assert_eq!(bad.json()["messages"][0]["locale"], "en-US");
    let body = json!({"token": "1", "userAlias": "alice", "deliveryType": "SMS_WORK"});
    let denied = send(
        &daemon,
        "POST",
        "/api/mfa/1.0/token/authenticate",
        MONITOR,
        Some(body.clone()),
    );
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!(denied.json()["detailCode"], "403 Forbidden");
    let anonymous = send(
        &daemon,
        "POST",
        "/api/mfa/1.0/token/authenticate",
        Auth::None,
        Some(body),
    );
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(anonymous.json()["error"].is_string());

    // Five wrong codes in a row lock the user: 429 / 2004, LOCKOUT, even for the right
    // code. (A success resets the count.)
    assert_eq!(token(&daemon, "alice", "", "SMS_WORK"), "PENDING");
    let code = sms_code(&sms, "+15550100001");
    assert_eq!(token(&daemon, "alice", &code, "SMS_WORK"), "SUCCESS");
    assert_eq!(token(&daemon, "alice", "", "SMS_WORK"), "PENDING");
    let code = sms_code(&sms, "+15550100001");
    for _ in 0..5 {
        error(&validate("alice", "GW-00000000"), 412, "2001");
    }
    error(&validate("alice", &code), 429, "2004");
    assert_eq!(token(&daemon, "alice", &code, "SMS_WORK"), "LOCKOUT");
    assert_eq!(token(&daemon, "alice", "", "SMS_WORK"), "LOCKOUT");
    error(
        &send(
            &daemon,
            "POST",
            &format!("{alice}/login_start"),
            SERVICE,
            None,
        ),
        429,
        "2004",
    );

    // At most five codes per user in the window: the sixth send is 429 / 2004 (and 429 from
    // token/authenticate).
    let bob = user_path(&app, "bob");
    for i in 0..5 {
        let answer = send(
            &daemon,
            "POST",
            &format!("{bob}/associate"),
            SERVICE,
            Some(json!({"address": "+15550100002", "display_name": format!("try {i}")})),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        sms.next();
    }
    let sixth = send(
        &daemon,
        "POST",
        &format!("{bob}/associate"),
        SERVICE,
        Some(json!({"address": "+15550100002"})),
    );
    error(&sixth, 429, "2004");

    // A gateway that refuses: 503, and nothing changes (no user is created).
    sms.answer(500);
    let carol = user_path(&app, "carol");
    let failed = send(
        &daemon,
        "POST",
        &format!("{carol}/associate"),
        SERVICE,
        Some(json!({"address": "+15550100003"})),
    );
    error(&failed, 503, "503");
    assert!(
        failed.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    sms.next();
    error(&send(&daemon, "GET", &carol, ADMIN, None), 404, "404");
    sms.answer(200);

    // Users: list with the status filter, dissociate, delete.
    let users = send(
        &daemon,
        "GET",
        &format!("{BASE}/{app}/users"),
        SERVICE,
        None,
    )
    .json();
    assert_eq!(users.as_array().unwrap().len(), 2);
    let pending = send(
        &daemon,
        "GET",
        &format!("{BASE}/{app}/users?status=VALIDATION%20PENDING"),
        SERVICE,
        None,
    )
    .json();
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(pending[0]["id"], "bob");
    error(
        &send(
            &daemon,
            "GET",
            &format!("{BASE}/{app}/users?status=HAPPY"),
            SERVICE,
            None,
        ),
        400,
        "400",
    );
    error(
        &send(
            &daemon,
            "GET",
            &format!("{alice}?status=INITIAL"),
            SERVICE,
            None,
        ),
        404,
        "404",
    );
    let answer = send(
        &daemon,
        "DELETE",
        &format!("{alice}/associate"),
        SERVICE,
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let user = send(&daemon, "GET", &alice, ADMIN, None).json();
    assert_eq!(user["status"], "INITIAL");
    assert_eq!(user["user_address"], "");
    assert_eq!(token(&daemon, "alice", "", "SMS_WORK"), "NOT_ENOUGH_DATA");
    error(
        &send(
            &daemon,
            "DELETE",
            &format!("{alice}/associate"),
            MONITOR,
            None,
        ),
        403,
        "403",
    );
    assert_eq!(send(&daemon, "DELETE", &bob, SERVICE, None).status, 200);
    error(&send(&daemon, "GET", &bob, ADMIN, None), 404, "404");
    error(
        &send(
            &daemon,
            "POST",
            &format!("{}/associate", user_path(&app, &"u".repeat(200))),
            SERVICE,
            Some(json!({"address": "+15550100004"})),
        ),
        400,
        "1023",
    );
    error(
        &send(
            &daemon,
            "POST",
            &format!("{}/associate", user_path(&app, "dave")),
            SERVICE,
            Some(json!({"address": "not-a-phone"})),
        ),
        400,
        "400",
    );
}

#[test]
fn expired_codes() {
    let sms = SmsSink::start();
    let daemon = Daemon::start(Some(&config(&format!(
        "[mfa_delivery.sms]\nurl = \"{}\"\n",
        sms.url()
    ))));
    let app = create(
        &daemon,
        json!({"name": "short", "auth_token_validity_duration": 1, "auth_token_type": "ALPHA", "auth_code_length": 5}),
    );
    let erin = user_path(&app, "erin");
    let answer = send(
        &daemon,
        "POST",
        &format!("{erin}/associate"),
        ADMIN,
        Some(json!({"address": "+15550100005"})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let code = sms_code(&sms, "+15550100005");
    assert!(
        code.len() == 5 && code.bytes().all(|b| b.is_ascii_uppercase()),
        "{code}"
    );
    // Validity is one second; wait past it.
    std::thread::sleep(Duration::from_millis(2100));
    let answer = send(
        &daemon,
        "POST",
        &format!("{erin}/validate"),
        ADMIN,
        Some(json!({"validation_code": code})),
    );
    error(&answer, 412, "2002");
    assert_eq!(
        send(&daemon, "GET", &erin, ADMIN, None).json()["status"],
        "VALIDATION PENDING"
    );
}

#[test]
fn email_through_an_smtp_relay_with_starttls_and_auth() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = dir.path().join("relay.pem");
    let key = dir.path().join("relay.key");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let relay = SmtpSink::start(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--user",
        "mfa-relay",
        "--password",
        "relay-password",
    ]);
    let daemon = Daemon::start(Some(&config(&format!(
        r#"
[mfa_delivery]
application = "mail-gateway"
[mfa_delivery.smtp]
host = "127.0.0.1"
port = {}
from = "mfa@gateway.example"
starttls = true
ca_file = "{}"
username = "mfa-relay"
password = "relay-password"
"#,
        relay.port,
        cert.display()
    ))));
    let app = create(
        &daemon,
        json!({
            "name": "mail-gateway",
            "auth_token_type": "COMPLEX",
            "auth_code_length": 12,
            "auth_token_prefix": "M#",
            "auth_token_delivery_methods": "EMAIL",
            "display_name": "Mail Gateway",
            "message_from": "IT Security"
        }),
    );
    let frank = user_path(&app, "frank");
    let answer = send(
        &daemon,
        "POST",
        &format!("{frank}/associate"),
        SERVICE,
        Some(json!({"address": "frank@example.com"})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let message = relay.next();
    assert_eq!(message["tls"], true, "{message}");
    assert_eq!(message["login"], "mfa-relay");
    assert_eq!(message["mail_from"], "mfa@gateway.example");
    assert_eq!(message["rcpt_tos"], json!(["frank@example.com"]));
    let data = message["data"].as_str().unwrap();
    assert!(
        data.contains("From: \"IT Security\" <mfa@gateway.example>\r\n"),
        "{data}"
    );
    assert!(data.contains("To: <frank@example.com>\r\n"), "{data}");
    assert!(
        data.contains("Subject: Mail Gateway verification code\r\n"),
        "{data}"
    );
    let body = data.split("\r\n\r\n").nth(1).unwrap();
    assert!(
        body.starts_with("Mail Gateway: your verification code is M#"),
        "{body}"
    );
    let code = code_in(body);
    assert_eq!(code.len(), 14);
    // COMPLEX codes are checked exactly: the code with its letters' case swapped is wrong.
    let swapped: String = code
        .chars()
        .skip(2)
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    if swapped != code[2..] {
        error(
            &send(
                &daemon,
                "POST",
                &format!("{frank}/validate"),
                SERVICE,
                Some(json!({"validation_code": format!("M#{swapped}")})),
            ),
            412,
            "2001",
        );
    }
    let answer = send(
        &daemon,
        "POST",
        &format!("{frank}/validate"),
        SERVICE,
        Some(json!({"validation_code": code})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);

    assert_eq!(token(&daemon, "frank", "", "EMAIL_WORK"), "PENDING");
    let message = relay.next();
    let data = message["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: Mail Gateway login code\r\n"),
        "{data}"
    );
    let code = code_in(data.split("\r\n\r\n").nth(1).unwrap());
    assert_eq!(
        token(&daemon, "frank", &code, "SMS_WORK"),
        "NOT_ENOUGH_DATA"
    );
    assert_eq!(token(&daemon, "frank", &code, "EMAIL_PERSONAL"), "SUCCESS");
    assert_eq!(token(&daemon, "frank", &code, "EMAIL_PERSONAL"), "FAILED");

    // Wrong relay credentials: 503, nothing delivered, the user unchanged.
    drop(daemon);
    let daemon = Daemon::start(Some(&config(&format!(
        "[mfa_delivery.smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"mfa@gateway.example\"\n\
         starttls = true\nca_file = \"{}\"\nusername = \"mfa-relay\"\npassword = \"wrong\"\n",
        relay.port,
        cert.display()
    ))));
    let app = create(
        &daemon,
        json!({"name": "mail", "auth_token_delivery_methods": "EMAIL"}),
    );
    let failed = send(
        &daemon,
        "POST",
        &format!("{}/associate", user_path(&app, "gina")),
        SERVICE,
        Some(json!({"address": "gina@example.com"})),
    );
    error(&failed, 503, "503");
    assert!(relay.nothing_within(Duration::from_millis(500)));
    error(
        &send(&daemon, "GET", &user_path(&app, "gina"), ADMIN, None),
        404,
        "404",
    );
}

#[test]
fn email_through_a_plain_relay() {
    let relay = SmtpSink::start(&[]);
    let daemon = Daemon::start(Some(&config(&format!(
        "[mfa_delivery.smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"mfa@gateway.example\"\n",
        relay.port
    ))));
    // Defaults: NUMERIC, 6 digits, no prefix, the default templates; display name = name.
    let app = create(
        &daemon,
        json!({"name": "Plain Mail", "auth_token_delivery_methods": "EMAIL"}),
    );
    let path = user_path(&app, "hank");
    let answer = send(
        &daemon,
        "POST",
        &format!("{path}/associate"),
        ADMIN,
        Some(json!({"address": "hank@example.com", "display_name": "Säkerhet"})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let message = relay.next();
    assert_eq!(message["tls"], false);
    assert_eq!(message["login"], Value::Null);
    assert_eq!(message["rcpt_tos"], json!(["hank@example.com"]));
    let data = message["data"].as_str().unwrap();
    assert!(data.contains("From: <mfa@gateway.example>\r\n"), "{data}");
    // A non-ASCII display name: an encoded subject and a base64 body.
    assert!(data.contains("Subject: =?UTF-8?B?"), "{data}");
    assert!(
        data.contains("Content-Transfer-Encoding: base64\r\n"),
        "{data}"
    );
    let encoded: String = data
        .split("\r\n\r\n")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.starts_with("Säkerhet: your verification code is "),
        "{body}"
    );
    let code = code_in(&body);
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    let answer = send(
        &daemon,
        "POST",
        &format!("{path}/validate"),
        ADMIN,
        Some(json!({"validation_code": code})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);

    // login_start without a body; the default login template with the application's name.
    let answer = send(&daemon, "POST", &format!("{path}/login_start"), ADMIN, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let data = relay.next()["data"].as_str().unwrap().to_owned();
    assert!(
        data.contains("Subject: Plain Mail login code\r\n"),
        "{data}"
    );
    let body = data.split("\r\n\r\n").nth(1).unwrap();
    assert!(
        body.starts_with("Plain Mail: your login code is "),
        "{body}"
    );
    let answer = send(
        &daemon,
        "POST",
        &format!("{path}/validate"),
        ADMIN,
        Some(json!({"validation_code": code_in(body)})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);

    // An SMS application on this daemon has no sender: 412, nothing changed.
    let sms_app = create(&daemon, json!({"name": "texts"}));
    let answer = send(
        &daemon,
        "POST",
        &format!("{}/associate", user_path(&sms_app, "ivy")),
        ADMIN,
        Some(json!({"address": "+15550100009"})),
    );
    error(&answer, 412, "412");
    error(
        &send(&daemon, "GET", &user_path(&sms_app, "ivy"), ADMIN, None),
        404,
        "404",
    );
}
