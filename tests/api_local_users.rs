//! `/api/mgmt.local_users/1.0/users` against the real daemon, with `curl` as the client: add,
//! read, update, delete, set passwords; the new users log in through the login API and HTTP
//! Basic; the last enabled Administrator is kept; roles are enforced; hashes never leave.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::daemon::{ADMIN_PASSWORD, Answer, Auth, Daemon};

const USERS: &str = "/api/mgmt.local_users/1.0/users";
const ADMIN: Auth<'static> = Auth::Basic("admin", ADMIN_PASSWORD);

fn user_path(name: &str) -> String {
    format!("{USERS}/{name}")
}

fn password_path(name: &str) -> String {
    format!("{USERS}/{name}/password")
}

/// Status of `POST /api/auth/1.0/login` with these credentials.
fn login_status(daemon: &Daemon, user: &str, password: &str) -> u16 {
    let body = json!({"username": user, "password": password}).to_string();
    daemon
        .request("POST", "/api/auth/1.0/login", Auth::None, Some(&body))
        .status
}

/// Status of a read with HTTP Basic as this user.
fn basic_status(daemon: &Daemon, user: &str, password: &str) -> u16 {
    daemon
        .request("GET", USERS, Auth::Basic(user, password), None)
        .status
}

fn add(daemon: &Daemon, name: &str, password: &str, roles: &[&str]) -> Answer {
    let body = json!({"name": name, "password": password, "roles": roles, "enabled": true});
    daemon.request("POST", USERS, ADMIN, Some(&body.to_string()))
}

/// The fields named in a 400's `error_info.fields`.
fn failed_fields(answer: &Answer) -> Vec<String> {
    answer.json()["error_info"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields: {}", answer.body))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_string())
        .collect()
}

/// Every response body of a test passes through here: none may carry a password hash.
fn no_hashes(answers: &[&Answer]) {
    for answer in answers {
        assert!(!answer.body.contains("$argon2"), "{}", answer.body);
        assert!(!answer.body.contains("password_hash"), "{}", answer.body);
    }
}

#[test]
fn crud_and_the_new_user_logs_in() {
    let daemon = Daemon::start(None);

    let list = daemon.request("GET", USERS, ADMIN, None);
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(
        list.json(),
        json!([{"name": "admin", "roles": ["Administrator"], "enabled": true}])
    );

    let added = add(&daemon, "bob", "bob-password-1", &["Monitor"]);
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(
        added.json(),
        json!({"name": "bob", "roles": ["Monitor"], "enabled": true})
    );
    let duplicate = add(&daemon, "bob", "other", &[]);
    assert_eq!(duplicate.status, 409, "{}", duplicate.body);
    assert_eq!(duplicate.json()["error_id"], "CONFLICT");

    // Defaults: no roles, enabled.
    let minimal = daemon.request(
        "POST",
        USERS,
        ADMIN,
        Some(r#"{"name": "min", "password": "pw"}"#),
    );
    assert_eq!(minimal.status, 201, "{}", minimal.body);
    assert_eq!(
        minimal.json(),
        json!({"name": "min", "roles": [], "enabled": true})
    );

    let one = daemon.request("GET", &user_path("bob"), ADMIN, None);
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["roles"], json!(["Monitor"]));
    let list = daemon.request("GET", USERS, ADMIN, None);
    let names: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["admin", "bob", "min"]);

    // The new user logs in both ways, with the roles given.
    let login = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "bob", "password": "bob-password-1"}).to_string()),
    );
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.json()["roles"], json!(["Monitor"]));
    assert_eq!(login.json()["method"], "Local");
    assert_eq!(basic_status(&daemon, "bob", "bob-password-1"), 200);
    assert_eq!(basic_status(&daemon, "bob", "wrong"), 401);

    // Update: roles and enabled; a GET answer sent back as it is is accepted.
    let updated = daemon.request(
        "PUT",
        &user_path("bob"),
        ADMIN,
        Some(
            &json!({"name": "bob", "roles": ["Operator", "Monitor"], "enabled": true}).to_string(),
        ),
    );
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.json()["roles"], json!(["Operator", "Monitor"]));
    let login = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "bob", "password": "bob-password-1"}).to_string()),
    );
    assert_eq!(login.json()["roles"], json!(["Operator", "Monitor"]));

    // A password through the update: the old one stops working.
    let changed = daemon.request(
        "PUT",
        &user_path("bob"),
        ADMIN,
        Some(r#"{"password": "bob-password-2"}"#),
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.json()["roles"], json!(["Operator", "Monitor"]));
    assert_eq!(login_status(&daemon, "bob", "bob-password-1"), 401);
    assert_eq!(login_status(&daemon, "bob", "bob-password-2"), 200);

    // Disabled: no login either way; enabled again: back.
    let disabled = daemon.request(
        "PUT",
        &user_path("bob"),
        ADMIN,
        Some(r#"{"enabled": false}"#),
    );
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.json()["enabled"], false);
    assert_eq!(login_status(&daemon, "bob", "bob-password-2"), 401);
    assert_eq!(basic_status(&daemon, "bob", "bob-password-2"), 401);
    let enabled = daemon.request(
        "PUT",
        &user_path("bob"),
        ADMIN,
        Some(r#"{"enabled": true}"#),
    );
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    assert_eq!(login_status(&daemon, "bob", "bob-password-2"), 200);

    // Delete.
    let deleted = daemon.request("DELETE", &user_path("bob"), ADMIN, None);
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(
        daemon.request("GET", &user_path("bob"), ADMIN, None).status,
        404
    );
    assert_eq!(login_status(&daemon, "bob", "bob-password-2"), 401);
    let again = daemon.request("DELETE", &user_path("bob"), ADMIN, None);
    assert_eq!(again.status, 404);
    assert_eq!(again.json()["error_id"], "NOT_FOUND");

    // None of it ever showed a hash, though the file holds them.
    let file = std::fs::read_to_string(daemon.config_path()).unwrap();
    assert!(file.contains("$argon2id$"));
    no_hashes(&[
        &list, &added, &duplicate, &minimal, &one, &updated, &changed, &disabled, &enabled,
    ]);
    assert!(!daemon.log().contains("bob-password"));
}

#[test]
fn passwords_admin_sets_any_user_sets_their_own() {
    let daemon = Daemon::start(None);
    assert_eq!(add(&daemon, "carol", "carol-1", &["Monitor"]).status, 201);
    assert_eq!(add(&daemon, "dave", "dave-1", &["Operator"]).status, 201);

    // An Administrator sets anyone's.
    let set = daemon.request(
        "PUT",
        &password_path("carol"),
        ADMIN,
        Some(r#"{"password": "carol-2"}"#),
    );
    assert_eq!(set.status, 204, "{}", set.body);
    assert_eq!(login_status(&daemon, "carol", "carol-1"), 401);
    assert_eq!(login_status(&daemon, "carol", "carol-2"), 200);

    // A user sets their own, with HTTP Basic or a bearer token, though Operator may neither read
    // nor write the configuration.
    let own = daemon.request(
        "PUT",
        &password_path("dave"),
        Auth::Basic("dave", "dave-1"),
        Some(r#"{"password": "dave-2"}"#),
    );
    assert_eq!(own.status, 204, "{}", own.body);
    assert_eq!(login_status(&daemon, "dave", "dave-1"), 401);
    let token = daemon.login("dave", "dave-2");
    let own = daemon.request(
        "PUT",
        &password_path("dave"),
        Auth::Bearer(&token),
        Some(r#"{"password": "dave-3"}"#),
    );
    assert_eq!(own.status, 204, "{}", own.body);
    assert_eq!(login_status(&daemon, "dave", "dave-2"), 401);
    assert_eq!(login_status(&daemon, "dave", "dave-3"), 200);

    // ...but nobody else's.
    for target in ["carol", "admin", "nobody"] {
        let other = daemon.request(
            "PUT",
            &password_path(target),
            Auth::Basic("dave", "dave-3"),
            Some(r#"{"password": "taken-over"}"#),
        );
        assert_eq!(other.status, 403, "{target}: {}", other.body);
        assert_eq!(other.json()["error_id"], "FORBIDDEN");
    }
    assert_eq!(login_status(&daemon, "admin", ADMIN_PASSWORD), 200);

    // Empty, missing and mistyped passwords; unknown users.
    for body in [r#"{"password": ""}"#, "{}", r#"{"password": 7}"#] {
        let bad = daemon.request("PUT", &password_path("carol"), ADMIN, Some(body));
        assert_eq!(bad.status, 400, "{body}: {}", bad.body);
        assert_eq!(failed_fields(&bad), ["password"], "{body}");
    }
    let empty_add = daemon.request(
        "POST",
        USERS,
        ADMIN,
        Some(r#"{"name": "erin", "password": ""}"#),
    );
    assert_eq!(empty_add.status, 400);
    assert_eq!(failed_fields(&empty_add), ["password"]);
    let empty_update = daemon.request(
        "PUT",
        &user_path("carol"),
        ADMIN,
        Some(r#"{"password": ""}"#),
    );
    assert_eq!(empty_update.status, 400);
    assert_eq!(login_status(&daemon, "carol", "carol-2"), 200);
    let unknown = daemon.request(
        "PUT",
        &password_path("nobody"),
        ADMIN,
        Some(r#"{"password": "x"}"#),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    no_hashes(&[&set, &own, &unknown]);
}

#[test]
fn the_last_enabled_administrator_stays() {
    let daemon = Daemon::start(None);
    let before = std::fs::read_to_string(daemon.config_path()).ok();

    let attempts = [
        ("DELETE", user_path("admin"), None, None),
        (
            "PUT",
            user_path("admin"),
            Some(r#"{"enabled": false}"#),
            Some("enabled"),
        ),
        (
            "PUT",
            user_path("admin"),
            Some(r#"{"roles": ["Monitor"]}"#),
            Some("roles"),
        ),
        (
            "PUT",
            user_path("admin"),
            Some(r#"{"roles": []}"#),
            Some("roles"),
        ),
    ];
    for (method, path, body, field) in &attempts {
        let answer = daemon.request(method, path, ADMIN, *body);
        assert_eq!(answer.status, 400, "{method} {body:?}: {}", answer.body);
        assert_eq!(answer.json()["error_id"], "BAD_REQUEST");
        assert!(
            answer.json()["error_text"]
                .as_str()
                .unwrap()
                .contains("last enabled local Administrator"),
            "{}",
            answer.body
        );
        if let Some(field) = field {
            assert_eq!(failed_fields(&answer), [*field]);
        }
    }
    // Nothing changed: same file (none yet), admin still an enabled Administrator.
    assert_eq!(std::fs::read_to_string(daemon.config_path()).ok(), before);
    assert_eq!(
        daemon
            .request("GET", &user_path("admin"), ADMIN, None)
            .json(),
        json!({"name": "admin", "roles": ["Administrator"], "enabled": true})
    );

    // A disabled Administrator does not count; a second enabled one does.
    assert_eq!(
        add(&daemon, "sleeper", "sleeper-1", &["Administrator"]).status,
        201
    );
    let disable = daemon.request(
        "PUT",
        &user_path("sleeper"),
        ADMIN,
        Some(r#"{"enabled": false}"#),
    );
    assert_eq!(disable.status, 200, "{}", disable.body);
    let refused = daemon.request("DELETE", &user_path("admin"), ADMIN, None);
    assert_eq!(refused.status, 400, "{}", refused.body);

    assert_eq!(
        add(&daemon, "root2", "root2-1", &["Administrator", "Monitor"]).status,
        201
    );
    let demote = daemon.request(
        "PUT",
        &user_path("admin"),
        ADMIN,
        Some(r#"{"roles": ["Monitor"]}"#),
    );
    assert_eq!(demote.status, 200, "{}", demote.body);
    // root2 is now the last one.
    let root2 = Auth::Basic("root2", "root2-1");
    let refused = daemon.request("DELETE", &user_path("root2"), root2, None);
    assert_eq!(refused.status, 400, "{}", refused.body);
    let refused = daemon.request(
        "PUT",
        &user_path("root2"),
        root2,
        Some(r#"{"enabled": false}"#),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    // Removing a disabled Administrator or another role is fine.
    let deleted = daemon.request("DELETE", &user_path("sleeper"), root2, None);
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let trimmed = daemon.request(
        "PUT",
        &user_path("root2"),
        root2,
        Some(r#"{"roles": ["Administrator"]}"#),
    );
    assert_eq!(trimmed.status, 200, "{}", trimmed.body);
}

#[test]
fn callers_need_credentials_and_roles() {
    let daemon = Daemon::start(None);
    assert_eq!(add(&daemon, "mona", "mona-1", &["Monitor"]).status, 201);
    assert_eq!(add(&daemon, "opal", "opal-1", &["Operator"]).status, 201);
    let new_user = r#"{"name": "x", "password": "x"}"#;
    let routes: [(&str, String, Option<&str>); 7] = [
        ("GET", USERS.to_string(), None),
        ("POST", USERS.to_string(), Some(new_user)),
        ("GET", user_path("opal"), None),
        ("PUT", user_path("opal"), Some(r#"{"enabled": false}"#)),
        ("DELETE", user_path("opal"), None),
        ("PUT", password_path("opal"), Some(r#"{"password": "p"}"#)),
        ("PUT", password_path("admin"), Some(r#"{"password": "p"}"#)),
    ];
    for (method, path, body) in &routes {
        let none = daemon.request(method, path, Auth::None, *body);
        assert_eq!(none.status, 401, "{method} {path}: {}", none.body);
        assert_eq!(none.json()["error_id"], "AUTH_REQUIRED");
        let wrong = daemon.request(method, path, Auth::Basic("admin", "wrong"), *body);
        assert_eq!(wrong.status, 401, "{method} {path}: {}", wrong.body);
        assert_eq!(wrong.json()["error_id"], "AUTH_INVALID_CREDENTIALS");
        let token = daemon.request(method, path, Auth::Bearer("not-a-token"), *body);
        assert_eq!(token.status, 401, "{method} {path}: {}", token.body);
    }

    // A Monitor reads but does not write; a bearer token behaves like Basic.
    let monitor = Auth::Basic("mona", "mona-1");
    let token = daemon.login("mona", "mona-1");
    for auth in [monitor, Auth::Bearer(&token)] {
        for (method, path, body) in &routes {
            let answer = daemon.request(method, path, auth, *body);
            let expected = if *method == "GET" { 200 } else { 403 };
            assert_eq!(answer.status, expected, "{method} {path}: {}", answer.body);
            if expected == 403 {
                assert_eq!(answer.json()["error_id"], "FORBIDDEN");
            }
        }
    }
    // Neither reader nor writer: 403 on reads too.
    let operator = Auth::Basic("opal", "opal-1");
    for path in [USERS.to_string(), user_path("admin")] {
        let answer = daemon.request("GET", &path, operator, None);
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
    }
    // Nothing changed.
    let list = daemon.request("GET", USERS, ADMIN, None);
    assert_eq!(list.json().as_array().unwrap().len(), 3);
    assert_eq!(login_status(&daemon, "opal", "opal-1"), 200);
    assert_eq!(login_status(&daemon, "admin", ADMIN_PASSWORD), 200);
}

#[test]
fn bad_requests_name_the_problem_and_change_nothing() {
    let daemon = Daemon::start(None);
    let post = |body: &str| daemon.request("POST", USERS, ADMIN, Some(body));

    let malformed = post("{nope");
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error_id"], "BAD_REQUEST");
    assert!(
        malformed.json()["error_text"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );
    assert_eq!(post("[1, 2]").status, 400);
    assert_eq!(post("").status, 400);

    let wrong_types =
        post(r#"{"name": 1, "password": true, "roles": "Monitor", "enabled": "yes", "extra": 0}"#);
    assert_eq!(wrong_types.status, 400, "{}", wrong_types.body);
    let mut fields = failed_fields(&wrong_types);
    fields.sort();
    assert_eq!(fields, ["enabled", "extra", "name", "password", "roles"]);

    let bad_names = [
        ("", "name"),
        ("two words", "name"),
        ("a/b", "name"),
        ("a:b", "name"),
    ];
    for (name, field) in bad_names {
        let answer = post(&json!({"name": name, "password": "pw"}).to_string());
        assert_eq!(answer.status, 400, "{name:?}: {}", answer.body);
        assert_eq!(failed_fields(&answer), [field], "{name:?}");
    }

    let unknown_role = post(r#"{"name": "r", "password": "pw", "roles": ["Monitor", "Wizard"]}"#);
    assert_eq!(unknown_role.status, 400, "{}", unknown_role.body);
    assert_eq!(failed_fields(&unknown_role), ["roles[1]"]);
    assert!(unknown_role.body.contains("Wizard"));

    assert_eq!(add(&daemon, "ursula", "u-1", &["Monitor"]).status, 201);
    let put = |body: &str| daemon.request("PUT", &user_path("ursula"), ADMIN, Some(body));
    let rename = put(r#"{"name": "other"}"#);
    assert_eq!(rename.status, 400, "{}", rename.body);
    assert_eq!(failed_fields(&rename), ["name"]);
    let bad_role = put(r#"{"roles": ["Wizard"], "enabled": false}"#);
    assert_eq!(bad_role.status, 400, "{}", bad_role.body);
    assert_eq!(failed_fields(&bad_role), ["roles[0]"]);
    assert_eq!(put("{nope").status, 400);
    assert_eq!(put(r#"{"enabled": 0}"#).status, 400);
    // None of those took effect.
    assert_eq!(
        daemon
            .request("GET", &user_path("ursula"), ADMIN, None)
            .json(),
        json!({"name": "ursula", "roles": ["Monitor"], "enabled": true})
    );
    assert_eq!(login_status(&daemon, "ursula", "u-1"), 200);

    // Unknown users are 404 on every route; names in the path are percent-decoded and checked.
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(r#"{"enabled": true}"#)),
        ("DELETE", None),
    ] {
        let answer = daemon.request(method, &user_path("nobody"), ADMIN, body);
        assert_eq!(answer.status, 404, "{method}: {}", answer.body);
        assert_eq!(answer.json()["error_id"], "NOT_FOUND");
    }
    let slash = daemon.request("GET", &user_path("a%2Fb"), ADMIN, None);
    assert_eq!(slash.status, 400, "{}", slash.body);
    assert_eq!(failed_fields(&slash), ["name"]);

    let odd = "jörg.o'brien";
    let added = add(&daemon, odd, "j-1", &["Monitor"]);
    assert_eq!(added.status, 201, "{}", added.body);
    let encoded = "j%C3%B6rg.o%27brien";
    let read = daemon.request("GET", &user_path(encoded), ADMIN, None);
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json()["name"], odd);
    assert_eq!(login_status(&daemon, odd, "j-1"), 200);
}

#[test]
fn openapi_document_describes_the_local_user_routes() {
    let daemon = Daemon::start(None);
    let doc = daemon
        .request("GET", "/api/openapi.json", Auth::None, None)
        .json();
    let paths = &doc["paths"];
    for (path, methods) in [
        (USERS.to_string(), &["get", "post"][..]),
        (format!("{USERS}/{{name}}"), &["get", "put", "delete"][..]),
        (format!("{USERS}/{{name}}/password"), &["put"][..]),
    ] {
        for method in methods {
            let operation = &paths[&path][method];
            assert!(operation.is_object(), "{method} {path} missing");
            assert!(operation["security"].is_array(), "{method} {path}");
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
        }
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "LocalUserView",
        "NewLocalUser",
        "LocalUserUpdate",
        "PasswordChange",
    ] {
        assert!(schemas[schema].is_object(), "{schema} missing");
    }
    assert!(
        schemas["LocalUserView"]["properties"]
            .get("password_hash")
            .is_none()
    );
}

#[test]
fn tokens_of_deleted_disabled_or_changed_users_stop_working() {
    let daemon = Daemon::start(None);
    for name in ["gone", "off", "moved"] {
        assert_eq!(
            add(&daemon, name, "pw-12345", &["Administrator"]).status,
            201
        );
    }
    let gone = daemon.login("gone", "pw-12345");
    let off = daemon.login("off", "pw-12345");
    let moved = daemon.login("moved", "pw-12345");
    let session = |token: &str| {
        daemon
            .request("GET", "/api/auth/1.0/session", Auth::Bearer(token), None)
            .status
    };
    assert_eq!(
        (session(&gone), session(&off), session(&moved)),
        (200, 200, 200)
    );

    assert_eq!(
        daemon
            .request("DELETE", &user_path("gone"), ADMIN, None)
            .status,
        204
    );
    let disable = json!({"enabled": false}).to_string();
    assert_eq!(
        daemon
            .request("PUT", &user_path("off"), ADMIN, Some(&disable))
            .status,
        200
    );
    let new_password = json!({"password": "other-pw-6789"}).to_string();
    assert_eq!(
        daemon
            .request("PUT", &password_path("moved"), ADMIN, Some(&new_password))
            .status,
        204
    );
    // Every old token is dead, so a deleted administrator cannot write any more.
    assert_eq!(
        (session(&gone), session(&off), session(&moved)),
        (401, 401, 401)
    );
    let write = daemon.request(
        "POST",
        USERS,
        Auth::Bearer(&gone),
        Some(&json!({"name": "x", "password": "y"}).to_string()),
    );
    assert_eq!(write.status, 401);
}
