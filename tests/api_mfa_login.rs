//! The two-step login through the real daemon: the MFA policy (config and API), the partial
//! token and what it opens, HTTP Basic refused once MFA applies, first enrolment with a
//! partial token, replayed codes, and the lockout (429 with Retry-After).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis::engine::local::hash_password;
use serde_json::json;
use support::daemon::{Auth, Daemon};
use support::mfa::{enrol, finish_login, partial_login};

const LOGIN_MFA: &str = "/api/auth/1.0/login/mfa";
const CURRENT: &str = "/api/mfa/1.0/users/current/devices";
const SERVERS: &str = "/api/mgmt.remote_authentication/1.0/radius/server";

/// Administrators owe a second factor, except `breakglass`; Monitors do not. Three wrong codes
/// lock a user out for 60 s, then 120 s.
fn config() -> String {
    let hash = |p: &str| hash_password(p.as_bytes()).unwrap();
    format!(
        r#"
[mfa]
lockout_threshold = 3
lockout_base_seconds = 60
lockout_max_seconds = 600

[mfa.policy]
required = "roles"
roles = ["Administrator"]
exempt_users = ["breakglass"]

[[local_users]]
name = "admin"
password_hash = "{}"
roles = ["Administrator"]

[[local_users]]
name = "breakglass"
password_hash = "{}"
roles = ["Administrator"]

[[local_users]]
name = "watcher"
password_hash = "{}"
roles = ["Monitor"]
"#,
        hash("admin-password"),
        hash("breakglass-password"),
        hash("watcher-password"),
    )
}

/// A code none of the steps around now produces.
fn wrong_code(secret: &[u8]) -> String {
    let step = support::mfa::now_step();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| (step - 2..=step + 3).all(|s| support::mfa::code(secret, s) != *c))
        .unwrap()
}

fn mfa(daemon: &Daemon, token: &str, code: &str) -> support::daemon::Answer {
    daemon.request(
        "POST",
        LOGIN_MFA,
        Auth::Bearer(token),
        Some(&json!({ "code": code }).to_string()),
    )
}

#[test]
fn two_step_login_enrolment_and_what_a_partial_token_opens() {
    let daemon = Daemon::start(Some(&config()));

    // HTTP Basic alone no longer works for a user MFA applies to, with a hint; it still does
    // for exempt users and users outside the policy.
    let basic = daemon.request("GET", SERVERS, Auth::Basic("admin", "admin-password"), None);
    assert_eq!(basic.status, 401, "{}", basic.body);
    assert_eq!(basic.json()["error_info"]["reason"], "MFA_REQUIRED");
    assert!(
        basic.json()["error_info"]["hint"]
            .as_str()
            .unwrap()
            .contains(LOGIN_MFA)
    );
    for (user, password) in [
        ("breakglass", "breakglass-password"),
        ("watcher", "watcher-password"),
    ] {
        let answer = daemon.request("GET", SERVERS, Auth::Basic(user, password), None);
        assert_eq!(answer.status, 200, "{user}: {}", answer.body);
    }
    // A login outside the policy gets a full token at once.
    let full = daemon.login("watcher", "watcher-password");
    assert_eq!(
        daemon
            .request("GET", "/api/auth/1.0/session", Auth::Bearer(&full), None)
            .status,
        200
    );

    // Step one: a partial token.
    let partial = partial_login(&daemon, "admin", "admin-password");

    // The partial token opens nothing but the MFA calls: every other secured operation of
    // the OpenAPI document refuses it.
    let doc = daemon
        .request("GET", "/api/openapi.json", Auth::None, None)
        .json();
    let allowed = [
        ("POST", LOGIN_MFA.to_string()),
        ("GET", CURRENT.to_string()),
        ("POST", CURRENT.to_string()),
        ("POST", format!("{CURRENT}/{{device_id}}/activate")),
    ];
    let mut refused = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let method = method.to_uppercase();
            if operation.get("security").is_none()
                || allowed.iter().any(|(m, p)| *m == method && p == path)
            {
                continue;
            }
            let url = path
                .replace("{device_id}", "x")
                .replace("{user_id}", "admin");
            let url = url
                .split('/')
                .map(|s| if s.starts_with('{') { "1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then_some("{}");
            let answer = daemon.request(&method, &url, Auth::Bearer(&partial), body);
            assert!(
                answer.status == 401 || answer.status == 403,
                "{method} {url} with a partial token: {} {}",
                answer.status,
                answer.body
            );
            refused += 1;
        }
    }
    assert!(refused >= 20, "only {refused} operations checked");

    // A full token is not a partial one.
    assert_eq!(mfa(&daemon, &full, "123456").status, 400);

    // First enrolment with the partial token.
    let mut device = enrol(&daemon, Auth::Bearer(&partial), "phone");
    // The activation code is spent.
    let activation_code = support::mfa::code(&device.secret, device.step);
    let replay = mfa(&daemon, &partial, &activation_code);
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert_eq!(replay.json()["error_info"]["reason"], "INVALID_CODE");

    // Step two: the next code gives a full token, which works everywhere; the partial token
    // is spent.
    let code = device.next_code();
    let token = finish_login(&daemon, &partial, &code);
    let servers = daemon.request("GET", SERVERS, Auth::Bearer(&token), None);
    assert_eq!(servers.status, 200, "{}", servers.body);
    let session = daemon.request("GET", "/api/auth/1.0/session", Auth::Bearer(&token), None);
    assert_eq!(session.json()["user"]["username"], "admin");
    assert_eq!(session.json()["roles"], json!(["Administrator"]));
    let unused = support::mfa::code(&device.secret, device.step + 1);
    assert_eq!(mfa(&daemon, &partial, &unused).status, 401);

    // With an active device, a partial token may no longer pair another one ...
    let partial = partial_login(&daemon, "admin", "admin-password");
    let pair = daemon.request(
        "POST",
        CURRENT,
        Auth::Bearer(&partial),
        Some(r#"{"name": "second", "os": "iOS"}"#),
    );
    assert_eq!(pair.status, 403, "{}", pair.body);
    assert_eq!(pair.json()["error_code"], "UNSUPPORTED_SESSION_TYPE");
    // (It still lists them.)
    let list = daemon.request("GET", CURRENT, Auth::Bearer(&partial), None);
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["count"], 1);
    // A full token does pair another, and the new device's codes log in too.
    let mut second = enrol(&daemon, Auth::Bearer(&token), "second");
    let code = second.next_code();
    finish_login(&daemon, &partial, &code);
    // The same code twice: the second time it is refused.
    let partial = partial_login(&daemon, "admin", "admin-password");
    let replay = mfa(&daemon, &partial, &code);
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert_eq!(
        daemon
            .request("GET", CURRENT, Auth::Bearer(&token), None)
            .json()["count"],
        2
    );
}

#[test]
fn wrong_codes_lock_the_user_out_with_retry_after() {
    let daemon = Daemon::start(Some(&config()));
    let partial = partial_login(&daemon, "admin", "admin-password");
    let mut device = enrol(&daemon, Auth::Bearer(&partial), "phone");
    let wrong = wrong_code(&device.secret);

    for _ in 0..2 {
        let answer = mfa(&daemon, &partial, &wrong);
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    let headers = tempfile::NamedTempFile::new().unwrap();
    let header_path = headers.path().to_string_lossy().to_string();
    let third = daemon.request_with(
        "POST",
        LOGIN_MFA,
        Auth::Bearer(&partial),
        Some(&json!({ "code": wrong }).to_string()),
        &[],
        &["-D", &header_path],
    );
    assert_eq!(third.status, 429, "{}", third.body);
    assert_eq!(third.json()["error_id"], "LOCKOUT");
    assert_eq!(third.json()["error_info"]["reason"], "LOCKOUT");
    let retry: u64 = std::fs::read_to_string(headers.path())
        .unwrap()
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("Retry-After header");
    assert!((1..=60).contains(&retry), "{retry}");

    // Locked: even the right code is refused unseen, and so is the first step.
    let locked = mfa(&daemon, &partial, &device.next_code());
    assert_eq!(locked.status, 429, "{}", locked.body);
    let login = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(r#"{"username": "admin", "password": "admin-password"}"#),
    );
    assert_eq!(login.status, 429, "{}", login.body);
    // A user outside the lockout is not affected.
    assert_eq!(
        daemon
            .request(
                "GET",
                SERVERS,
                Auth::Basic("breakglass", "breakglass-password"),
                None
            )
            .status,
        200
    );
    assert!(daemon.wait_for_log(
        "second factor locked out",
        std::time::Duration::from_secs(5)
    ));
}

#[test]
fn policy_api_reads_and_changes_the_policy() {
    let daemon = Daemon::start(Some(&config()));
    let admin = Auth::Basic("breakglass", "breakglass-password");
    let watcher = Auth::Basic("watcher", "watcher-password");
    let policy = daemon.request("GET", "/api/mfa/1.0/policy", watcher, None);
    assert_eq!(policy.status, 200, "{}", policy.body);
    assert_eq!(
        policy.json(),
        json!({
            "required": "roles",
            "roles": ["Administrator"],
            "exempt_users": ["breakglass"],
            "failmode": "secure",
            "enrollment": "allow",
            "applications": [],
        })
    );
    let denied = daemon.request(
        "POST",
        "/api/mfa/1.0/policy",
        watcher,
        Some(r#"{"required": "none"}"#),
    );
    assert_eq!(denied.status, 403);

    let bad = daemon.request(
        "POST",
        "/api/mfa/1.0/policy",
        admin,
        Some(r#"{"required": "roles", "roles": ["Nope"]}"#),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(
        bad.json()["error_info"]["fields"][0]["field"],
        "mfa.policy.roles[0]"
    );
    let unknown = daemon.request(
        "POST",
        "/api/mfa/1.0/policy",
        admin,
        Some(r#"{"required": "sometimes"}"#),
    );
    assert_eq!(unknown.status, 400, "{}", unknown.body);

    // Everyone but breakglass now; the Monitor's password alone stops working at once, and
    // an override turns MFA off for the REST login again.
    let changed = daemon.request(
        "POST",
        "/api/mfa/1.0/policy",
        admin,
        Some(r#"{"required": "all", "failmode": "safe", "enrollment": "deny"}"#),
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.json()["required"], "all");
    assert_eq!(changed.json()["enrollment"], "deny");
    assert_eq!(changed.json()["roles"], json!(["Administrator"]));
    assert_eq!(changed.json()["failmode"], "safe");
    let refused = daemon.request("GET", "/api/mfa/1.0/policy", watcher, None);
    assert_eq!(refused.status, 401, "{}", refused.body);
    let text = std::fs::read_to_string(daemon.config_path()).unwrap();
    assert!(text.contains("required = \"all\""), "{text}");
    assert!(text.contains("enrollment = \"deny\""), "{text}");

    let overridden = daemon.request(
        "POST",
        "/api/mfa/1.0/policy",
        admin,
        Some(r#"{"applications": [{"application": "api", "required": "none"}]}"#),
    );
    assert_eq!(overridden.status, 200, "{}", overridden.body);
    assert_eq!(
        overridden.json()["applications"],
        json!([{"application": "api", "required": "none", "roles": [], "exempt_users": [], "failmode": "secure", "enrollment": "allow"}])
    );
    assert_eq!(
        daemon
            .request("GET", "/api/mfa/1.0/policy", watcher, None)
            .status,
        200
    );
    let login = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(r#"{"username": "admin", "password": "admin-password"}"#),
    );
    assert_eq!(login.json()["needTwoFactorAuth"], false, "{}", login.body);
}
