//! The HTTPS API's login and sessions against the real daemon, with `curl` as the client:
//! the bootstrap administrator, a login through FreeRADIUS with mapped roles, token
//! introspection and revocation, and every documented failure shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::daemon::{ADMIN_PASSWORD, Auth, Daemon};
use support::freeradius::{ALICE_PASSWORD, DEFAULT_SECRET, DEFAULT_USERS, FreeRadius};

#[test]
fn bootstrap_admin_logs_in_and_the_token_introspects_until_logout() {
    let daemon = Daemon::start(None);
    let login = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(
            &json!({"username": "admin", "password": ADMIN_PASSWORD, "deviceId": "d-1"})
                .to_string(),
        ),
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let body = login.json();
    assert_eq!(body["user"]["username"], "admin");
    assert_eq!(body["roles"], json!(["Administrator"]));
    assert_eq!(body["method"], "Local");
    assert_eq!(body["needTwoFactorAuth"], false);
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    assert!(body["expires"].as_str().unwrap().ends_with('Z'));

    let session = daemon.request("GET", "/api/auth/1.0/session", Auth::Bearer(token), None);
    assert_eq!(session.status, 200, "{}", session.body);
    assert_eq!(session.json()["user"]["username"], "admin");
    assert_eq!(session.json()["roles"], json!(["Administrator"]));

    let logout = daemon.request("POST", "/api/auth/1.0/logout", Auth::Bearer(token), None);
    assert_eq!(logout.status, 204, "{}", logout.body);
    let after = daemon.request("GET", "/api/auth/1.0/session", Auth::Bearer(token), None);
    assert_eq!(after.status, 401);
    assert_eq!(after.json()["error_id"], "AUTH_INVALID_CREDENTIALS");
    let none = daemon.request("GET", "/api/auth/1.0/session", Auth::None, None);
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error_id"], "AUTH_REQUIRED");

    // The password never reaches the log.
    assert!(!daemon.log().contains(ADMIN_PASSWORD));
    assert!(!daemon.log().contains(token));
}

#[test]
fn failures_never_say_whether_the_user_exists() {
    let daemon = Daemon::start(None);
    for (user, password) in [("admin", "wrong"), ("nobody", "wrong")] {
        let answer = daemon.request(
            "POST",
            "/api/auth/1.0/login",
            Auth::None,
            Some(&json!({"username": user, "password": password}).to_string()),
        );
        assert_eq!(answer.status, 401, "{user}: {}", answer.body);
        let body = answer.json();
        assert_eq!(body["error_id"], "AUTH_INVALID_CREDENTIALS");
        assert_eq!(
            body["error_info"]["reason"], "INVALID_CREDENTIALS",
            "{user}"
        );
    }
}

#[test]
fn malformed_requests() {
    let daemon = Daemon::start(None);
    let not_json = daemon.request("POST", "/api/auth/1.0/login", Auth::None, Some("{nope"));
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.json()["error_id"], "BAD_REQUEST");

    let missing = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(r#"{"username": 5}"#),
    );
    assert_eq!(missing.status, 422);
    let fields: Vec<String> = missing.json()["error_info"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, ["username", "password"]);

    let html = daemon.request_with(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some("{}"),
        &["Accept: text/html"],
        &[],
    );
    assert_eq!(html.status, 406);

    let huge = format!(
        r#"{{"username": "a", "password": "{}"}}"#,
        "x".repeat(2 << 20)
    );
    let too_big = daemon.request("POST", "/api/auth/1.0/login", Auth::None, Some(&huge));
    assert_eq!(too_big.status, 413);
    assert_eq!(too_big.json()["error_id"], "PAYLOAD_TOO_LARGE");
    // Without a Content-Length the body is cut at the same limit while it is read, with the
    // same JSON answer.
    let chunked = daemon.request_with(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&huge),
        &["Transfer-Encoding: chunked"],
        &[],
    );
    assert_eq!(chunked.status, 413, "{}", chunked.body);
    assert_eq!(chunked.json()["error_id"], "PAYLOAD_TOO_LARGE");

    let unknown = daemon.request("GET", "/api/nothing/here", Auth::None, None);
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error_id"], "NOT_FOUND");
}

#[test]
fn login_through_freeradius_returns_mapped_roles() {
    let radius = FreeRadius::start(DEFAULT_USERS);
    let config = format!(
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

[[radius.role_mappings]]
role = "Operator"
attribute = 25
attribute_value = "admins"
"#,
        port = radius.auth_addr.port()
    );
    let daemon = Daemon::start(Some(&config));
    let login = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "alice", "password": ALICE_PASSWORD}).to_string()),
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let body = login.json();
    assert_eq!(body["roles"], json!(["Administrator", "Operator"]));
    assert_eq!(body["method"], "RADIUS");
    assert_eq!(
        body["server"],
        format!("127.0.0.1:{}", radius.auth_addr.port())
    );
    let bob = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "bob", "password": "bob-password"}).to_string()),
    );
    assert_eq!(bob.status, 401);
    assert_eq!(bob.json()["error_info"]["reason"], "NO_ROLE_MAPPED");
    assert!(!daemon.log().contains(ALICE_PASSWORD));
    assert!(!daemon.log().contains(DEFAULT_SECRET));
}

#[test]
fn silent_servers_are_reported_as_unavailable() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = format!(
        r#"
[authentication]
current_sequence = 3

[radius.settings]
connection_timeout = 1
max_number_of_tries = 1

[[radius.servers]]
id = 1
order = 1
address = "127.0.0.1"
port = {}
secret = "a-secret-of-sufficient-length"
"#,
        silent.local_addr().unwrap().port()
    );
    let daemon = Daemon::start(Some(&config));
    let answer = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "carol", "password": "pw"}).to_string()),
    );
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error_info"]["reason"], "SERVERS_UNAVAILABLE");
}

#[test]
fn openapi_document_describes_the_routes() {
    let daemon = Daemon::start(None);
    let answer = daemon.request("GET", "/api/openapi.json", Auth::None, None);
    assert_eq!(answer.status, 200);
    let doc = answer.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/auth/1.0/login",
        "/api/auth/1.0/session",
        "/api/auth/1.0/logout",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    let login = &doc["paths"]["/api/auth/1.0/login"]["post"];
    assert!(login["responses"]["401"].is_object());
    assert_eq!(
        doc["components"]["schemas"]["LoginResponse"]["properties"]["needTwoFactorAuth"]["type"],
        "boolean"
    );
    assert!(doc["components"]["securitySchemes"]["basic"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[test]
fn wrong_method_answers_405_with_the_error_body() {
    let daemon = Daemon::start(None);
    let answer = daemon.request("DELETE", "/api/auth/1.0/login", Auth::None, None);
    assert_eq!(answer.status, 405);
    assert_eq!(answer.json()["error_id"], "METHOD_NOT_ALLOWED");
}

#[test]
fn token_lifetime_comes_from_the_configuration() {
    let hash = portcullis::engine::local::hash_password(b"short-lived").unwrap();
    let daemon = Daemon::start(Some(&format!(
        "[authentication]\ntoken_lifetime = 90\n\n[[local_users]]\nname = \"tick\"\n\
         password_hash = \"{hash}\"\nroles = [\"Monitor\"]\n"
    )));
    let login = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "tick", "password": "short-lived"}).to_string()),
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let expires = login.json()["expires"].as_str().unwrap().to_string();
    let epoch = std::process::Command::new("date")
        .args(["-u", "-d", &expires, "+%s"])
        .output()
        .unwrap();
    let expires: u64 = String::from_utf8(epoch.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 80..=now + 91).contains(&expires),
        "{expires} vs {now}"
    );
}

#[test]
fn the_api_also_answers_on_a_unix_socket() {
    let daemon = Daemon::start_with(None, &["--unix-socket", "{dir}/api.sock"]);
    let socket = daemon.dir().join("api.sock");
    // The HTTPS listener logs last, so the socket exists once start returns; allow a moment.
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let output = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "--unix-socket"])
        .arg(&socket)
        .args([
            "-u",
            &format!("admin:{ADMIN_PASSWORD}"),
            "-w",
            "\n%{http_code}",
            "http://localhost/api/mgmt.local_users/1.0/users",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    assert_eq!(status, "200", "{text}");
    assert!(body.contains("\"admin\""), "{body}");
    // Same authentication rules as over HTTPS.
    let anonymous = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "--unix-socket"])
        .arg(&socket)
        .args([
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://localhost/api/mgmt.local_users/1.0/users",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(anonymous.stdout).unwrap(), "401");
}

#[test]
fn sessions_survive_a_restart_unless_revoked_or_their_local_user_changed() {
    let hash =
        |password: &str| portcullis::engine::local::hash_password(password.as_bytes()).unwrap();
    // Hashed once: a new hash of the same password is a changed password (new salt).
    let (admin, carol) = (hash(ADMIN_PASSWORD), hash("carol-password"));
    let config = |carol_roles: &str| {
        format!(
            r#"
[[local_users]]
name = "admin"
password_hash = "{admin}"
roles = ["Administrator"]

[[local_users]]
name = "carol"
password_hash = "{carol}"
roles = [{carol_roles}]
"#,
        )
    };
    let daemon = Daemon::start(Some(&config(r#""Monitor""#)));
    let kept = daemon.login("admin", ADMIN_PASSWORD);
    let revoked = daemon.login("admin", ADMIN_PASSWORD);
    let carol = daemon.login("carol", "carol-password");
    let logout = daemon.request("POST", "/api/auth/1.0/logout", Auth::Bearer(&revoked), None);
    assert_eq!(logout.status, 204, "{}", logout.body);
    // While the daemon is down, carol's roles change in the file.
    std::fs::write(daemon.config_path(), config(r#""Operator""#)).unwrap();

    let daemon = daemon.restart();
    let session =
        |token: &str| daemon.request("GET", "/api/auth/1.0/session", Auth::Bearer(token), None);
    let alive = session(&kept);
    assert_eq!(alive.status, 200, "{}", alive.body);
    assert_eq!(alive.json()["user"]["username"], "admin");
    assert_eq!(alive.json()["roles"], json!(["Administrator"]));
    assert_eq!(session(&revoked).status, 401);
    assert_eq!(session(&carol).status, 401);
    // Only hashes are kept: no token is in the state database.
    let db = std::fs::read(daemon.dir().join("state").join("portcullis.db")).unwrap();
    for token in [&kept, &revoked, &carol] {
        assert!(
            !db.windows(token.len()).any(|w| w == token.as_bytes()),
            "a token is stored in clear"
        );
    }
}
