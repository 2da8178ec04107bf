//! Access control on every route, table-driven from the daemon's own OpenAPI document: each
//! route that declares a security requirement answers 401 without credentials and with bad
//! ones, and each write (POST, PUT, PATCH, DELETE) answers 403 to a caller with only the
//! Monitor role. Routes added later are covered without touching this file. The paired MFA
//! device routes answer the reference's own error body (`error_code` PERMISSION_DENIED for
//! every refusal), and a user's own devices (`users/current`) are theirs to manage whatever
//! their role.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis::engine::local::hash_password;
use support::daemon::{Auth, Daemon};

const MONITOR_PASSWORD: &str = "monitor-password";

fn config() -> String {
    let admin = hash_password(b"admin-password").unwrap();
    let monitor = hash_password(MONITOR_PASSWORD.as_bytes()).unwrap();
    // This test sends a wrong Basic password for `admin` to every route, far more than the
    // throttle allows; throttling has its own tests (tests/throttle.rs).
    format!(
        r#"
[throttle]
enabled = false

[[local_users]]
name = "admin"
password_hash = "{admin}"
roles = ["Administrator"]

[[local_users]]
name = "watcher"
password_hash = "{monitor}"
roles = ["Monitor"]
"#
    )
}

/// Whether `answer` is the refusal `expected` (an `error_id`) with `status`, in the body the
/// route answers in: the paired-device routes use their reference body with `error_code`
/// `PERMISSION_DENIED`; the other MFA routes use their reference bodies carrying the status.
fn refused_as(path: &str, answer: &support::daemon::Answer, expected: &str, status: u16) -> bool {
    if path.starts_with("/api/mfa/1.0/users/") {
        return answer.json()["error_code"] == "PERMISSION_DENIED";
    }
    same_error(&error_id(answer), expected, status)
}

/// Fills `{param}` segments with a plausible value.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                if segment.contains("id") {
                    "1"
                } else {
                    "someone"
                }
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The `error_id` of an answer, or for the MFA routes that answer in their reference
/// documents' bodies (`{error_code}`; token/authenticate's `{error}` for 401 and
/// `{detailCode}` for 403) the HTTP status those bodies carry, as `MFA_401` / `MFA_403`.
fn error_id(answer: &support::daemon::Answer) -> String {
    let body = answer.json();
    if let Some(id) = body["error_id"].as_str() {
        return id.to_owned();
    }
    if let Some(code) = body["error_code"].as_str() {
        return format!("MFA_{code}");
    }
    if body["error"].is_string() {
        return "MFA_401".to_owned();
    }
    match body["detailCode"].as_str() {
        Some(detail) => format!("MFA_{}", detail.split(' ').next().unwrap_or("")),
        None => String::new(),
    }
}

/// Whether `id` is `expected`, or the MFA body with the same status.
fn same_error(id: &str, expected: &str, status: u16) -> bool {
    id == expected || id == format!("MFA_{status}")
}

#[test]
fn every_secured_route_requires_credentials_and_writes_require_administrator() {
    let daemon = Daemon::start(Some(&config()));
    let doc = daemon
        .request("GET", "/api/openapi.json", Auth::None, None)
        .json();
    let paths = doc["paths"].as_object().unwrap();
    let mut secured = 0;
    let mut writes = 0;
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let method = method.to_uppercase();
            if operation.get("security").is_none() {
                continue;
            }
            secured += 1;
            let url = concrete(path);
            let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then_some("{}");

            let anonymous = daemon.request(&method, &url, Auth::None, body);
            assert_eq!(anonymous.status, 401, "{method} {url}: {}", anonymous.body);
            assert!(
                refused_as(path, &anonymous, "AUTH_REQUIRED", 401),
                "{method} {url}: {}",
                anonymous.body
            );

            // A wrong Basic password is invalid credentials where Basic is accepted; on
            // bearer-only routes it is no credentials at all.
            let takes_basic = operation["security"]
                .as_array()
                .unwrap()
                .iter()
                .any(|requirement| requirement.get("basic").is_some());
            let wrong = daemon.request(&method, &url, Auth::Basic("admin", "not-it"), body);
            assert_eq!(wrong.status, 401, "{method} {url}: {}", wrong.body);
            let expected = if takes_basic {
                "AUTH_INVALID_CREDENTIALS"
            } else {
                "AUTH_REQUIRED"
            };
            assert!(
                refused_as(path, &wrong, expected, 401),
                "{method} {url}: {}",
                wrong.body
            );

            let forged = daemon.request(&method, &url, Auth::Bearer("forged-token"), body);
            assert_eq!(forged.status, 401, "{method} {url}: {}", forged.body);

            if matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
                && !url.starts_with("/api/auth/")
                && !url.starts_with("/api/mfa/1.0/users/current/")
            {
                writes += 1;
                let monitor = daemon.request(
                    &method,
                    &url,
                    Auth::Basic("watcher", MONITOR_PASSWORD),
                    body,
                );
                assert_eq!(monitor.status, 403, "{method} {url}: {}", monitor.body);
                assert!(
                    refused_as(path, &monitor, "FORBIDDEN", 403),
                    "{method} {url}: {}",
                    monitor.body
                );
            }
        }
    }
    // The session routes at least; the management routes as they exist.
    assert!(secured >= 2, "only {secured} secured operations found");
    println!("{secured} secured operations, {writes} writes checked");
}

/// Sends the same unauthenticated 200 kB POST ten times over one kept-alive HTTPS connection
/// (Python's `http.client`, as most clients reuse connections) and prints each status, or the
/// exception that replaced it.
const REUSED_CONNECTION: &str = r#"
import http.client, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
body = ('[{"role": "' + "x" * 200_000 + '"}]').encode()
connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=20)
statuses = []
for _ in range(10):
    try:
        connection.request("POST", sys.argv[2], body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        statuses.append(str(response.status))
    except Exception as e:
        statuses.append(type(e).__name__)
        connection.close()
print(" ".join(statuses))
"#;

/// A refusal given before the handler reads the body (401 here) reaches the client, and the
/// connection stays usable: the body is read first, so the server never closes a connection
/// with unread data on it (which resets it under the client before the answer is read).
#[test]
fn refusals_before_the_body_is_read_reach_the_client() {
    let daemon = Daemon::start(Some(&config()));
    let output = std::process::Command::new("python3")
        .args(["-c", REUSED_CONNECTION])
        .arg(daemon.addr.to_string())
        .arg("/api/mgmt.remote_authentication/1.0/radius/role_mapping")
        .output()
        .expect("python3");
    let statuses = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(statuses.trim(), ["401"; 10].join(" "));
}
