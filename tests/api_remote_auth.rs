//! The remote-authentication management API against the real daemon, with `curl` as the
//! client: every example body of the reference is sent and accepted, every documented answer
//! is checked field by field (numbers, strings, `1`/`0`), secrets are cloaked unless
//! `uncloak`, reorder round-trips keep secrets, invalid requests name the field and change
//! nothing, changes survive a restart, and only the right callers get in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::daemon::{ADMIN_PASSWORD, Answer, Auth, Daemon};

const BASE: &str = "/api/mgmt.remote_authentication/1.0";
const ADMIN: Auth<'static> = Auth::Basic("admin", ADMIN_PASSWORD);
const CLOAK: &str = "****************";

/// The roles of the default configuration, in order.
const ROLES: [&str; 12] = [
    "Developer",
    "Administrator",
    "Operator",
    "Monitor",
    "Event Viewer",
    "Dashboard Viewer",
    "Restricted",
    "Allow to view active directory user information",
    "Allow to edit Dashboards",
    "Allow to view packet details",
    "Limit Data Resolution to only \"automatic\"",
    "Traffic Filter",
];

fn send(daemon: &Daemon, auth: Auth<'_>, method: &str, path: &str, body: Option<&Value>) -> Answer {
    let body = body.map(Value::to_string);
    daemon.request(method, &format!("{BASE}/{path}"), auth, body.as_deref())
}

/// A read as the administrator: 200 and its JSON.
fn get(daemon: &Daemon, path: &str) -> Value {
    let answer = send(daemon, ADMIN, "GET", path, None);
    assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
    answer.json()
}

/// A write as the administrator: 204 and no body, as the reference documents.
fn write(daemon: &Daemon, method: &str, path: &str, body: Option<Value>) {
    let answer = send(daemon, ADMIN, method, path, body.as_ref());
    assert_eq!(
        answer.status, 204,
        "{method} {path} {body:?}: {}",
        answer.body
    );
    assert_eq!(answer.body, "", "{method} {path}");
}

/// A 400 whose `error_info.fields` names `field`.
fn assert_names(answer: &Answer, field: &str) {
    assert_eq!(answer.status, 400, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["error_id"], "BAD_REQUEST", "{body}");
    assert!(body["error_text"].is_string(), "{body}");
    let fields: Vec<&str> = body["error_info"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no error_info.fields: {body}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&field), "{field} not in {fields:?}: {body}");
}

/// Checks the JSON types of a server as the lists show it.
fn assert_server_types(server: &Value, tacacs: bool) {
    let object = server.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = vec![
        "address",
        "enabled",
        "order",
        "port",
        "protocol",
        "secret",
        "server_id",
    ];
    if tacacs {
        expected.push("client_port");
        expected.sort_unstable();
    }
    assert_eq!(keys, expected, "{server}");
    for number in ["server_id", "port", "order"] {
        assert!(server[number].is_u64(), "{number} in {server}");
    }
    for text in ["address", "protocol", "secret"] {
        assert!(server[text].is_string(), "{text} in {server}");
    }
    if tacacs {
        assert!(server["client_port"].is_string(), "client_port in {server}");
    }
    let enabled = server["enabled"].as_u64();
    assert!(
        enabled == Some(0) || enabled == Some(1),
        "enabled in {server}"
    );
}

/// Every read of the API, secrets uncloaked.
fn snapshot(daemon: &Daemon) -> Vec<Value> {
    [
        "all_auth_sequences",
        "current_auth_sequence",
        "radius/server?uncloak",
        "radius/settings",
        "radius/role_mapping",
        "tacacs/server?uncloak",
        "tacacs/settings",
        "tacacs/role_mapping",
    ]
    .iter()
    .map(|path| get(daemon, path))
    .collect()
}

/// The role mapping list of the default roles with `mapped` filled in.
fn role_list(mapped: &[(&str, Value, &str)]) -> Value {
    Value::Array(
        ROLES
            .iter()
            .map(
                |role| match mapped.iter().find(|(name, _, _)| name == role) {
                    Some((_, attribute, value)) => {
                        json!({"role": role, "attribute": attribute, "attribute_value": value})
                    }
                    None => json!({"role": role, "attribute": null, "attribute_value": null}),
                },
            )
            .collect(),
    )
}

#[test]
fn sequences_and_radius_servers_as_documented() {
    let daemon = Daemon::start(None);

    // Sequences: the reference's list, verbatim.
    assert_eq!(
        get(&daemon, "all_auth_sequences"),
        json!([
            {"id": 1, "authentication_sequence": "Local, RADIUS, TACACS+"},
            {"id": 2, "authentication_sequence": "Local, TACACS+, RADIUS"},
            {"id": 3, "authentication_sequence": "Local, RADIUS"},
            {"id": 4, "authentication_sequence": "Local, TACACS+"},
            {"id": 5, "authentication_sequence": "Local only"}
        ])
    );
    assert_eq!(
        get(&daemon, "current_auth_sequence"),
        json!({"id": 5, "authentication_sequence": "Local only"})
    );
    write(
        &daemon,
        "POST",
        "current_auth_sequence",
        Some(json!({"id": 1})),
    );
    let current = get(&daemon, "current_auth_sequence");
    assert_eq!(
        current,
        json!({"id": 1, "authentication_sequence": "Local, RADIUS, TACACS+"})
    );
    assert!(current["id"].is_u64());

    // Add: a first server, then the reference's example.
    assert_eq!(get(&daemon, "radius/server"), json!([]));
    write(
        &daemon,
        "POST",
        "radius/server",
        Some(
            json!({"address": "10.70.45.13", "port": 1812, "secret": "check",
                    "protocol": "PAP", "enabled": true}),
        ),
    );
    write(
        &daemon,
        "POST",
        "radius/server",
        Some(json!({
            "address": "10.70.45.14",
            "port": 1812,
            "secret": "secretKey",
            "protocol": "PAP",
            "enabled": true
        })),
    );
    // List: the reference's example, verbatim, secrets cloaked.
    let listed = get(&daemon, "radius/server");
    assert_eq!(
        listed,
        json!([
            {"server_id": 1, "port": 1812, "order": 0, "address": "10.70.45.13",
             "protocol": "PAP", "secret": "****************", "enabled": 1},
            {"server_id": 2, "port": 1812, "order": 1, "address": "10.70.45.14",
             "protocol": "PAP", "secret": "****************", "enabled": 1}
        ])
    );
    for server in listed.as_array().unwrap() {
        assert_server_types(server, false);
    }
    // `uncloak` with no value or any value shows the secrets.
    for query in ["uncloak", "uncloak=1", "uncloak=false"] {
        let clear = get(&daemon, &format!("radius/server?{query}"));
        assert_eq!(clear[0]["secret"], "check", "{query}");
        assert_eq!(clear[1]["secret"], "secretKey", "{query}");
    }
    // The secrets never reach the log.
    assert!(!daemon.log().contains("secretKey"));

    // Update: the reference's example, then a partial change that keeps the cloaked secret.
    write(
        &daemon,
        "PUT",
        "radius/server/2",
        Some(json!({
            "address": "10.70.45.14",
            "port": 1812,
            "secret": "secretKey",
            "protocol": "PAP",
            "enabled": true
        })),
    );
    write(
        &daemon,
        "PUT",
        "radius/server/1",
        Some(json!({"port": 1645, "secret": CLOAK, "protocol": "CHAP", "enabled": false})),
    );
    let clear = get(&daemon, "radius/server?uncloak");
    assert_eq!(
        clear[0],
        json!({"server_id": 1, "port": 1645, "order": 0, "address": "10.70.45.13",
               "protocol": "CHAP", "secret": "check", "enabled": 0})
    );
    write(
        &daemon,
        "PUT",
        "radius/server/1",
        Some(json!({"port": 1812, "protocol": "PAP", "enabled": 1})),
    );

    // Reorder: the reference's example (with `server_id`, `order` and `enabled` as a number).
    write(
        &daemon,
        "POST",
        "radius/reorder",
        Some(json!([
            {"server_id": 1, "port": 1812, "order": 0, "address": "10.70.45.13",
             "protocol": "PAP", "secret": "check", "enabled": 1},
            {"server_id": 2, "port": 1812, "order": 1, "address": "10.70.45.14",
             "protocol": "PAP", "secret": "test", "enabled": 1}
        ])),
    );
    assert_eq!(
        get(&daemon, "radius/server?uncloak"),
        json!([
            {"server_id": 1, "port": 1812, "order": 0, "address": "10.70.45.13",
             "protocol": "PAP", "secret": "check", "enabled": 1},
            {"server_id": 2, "port": 1812, "order": 1, "address": "10.70.45.14",
             "protocol": "PAP", "secret": "test", "enabled": 1}
        ])
    );

    // GET (cloaked), swap, POST back: the order changes, ids and secrets stay.
    let mut listed = get(&daemon, "radius/server");
    listed.as_array_mut().unwrap().reverse();
    write(&daemon, "POST", "radius/reorder", Some(listed));
    assert_eq!(
        get(&daemon, "radius/server?uncloak"),
        json!([
            {"server_id": 2, "port": 1812, "order": 0, "address": "10.70.45.14",
             "protocol": "PAP", "secret": "test", "enabled": 1},
            {"server_id": 1, "port": 1812, "order": 1, "address": "10.70.45.13",
             "protocol": "PAP", "secret": "check", "enabled": 1}
        ])
    );

    // A cloaked secret on a server that is not configured has nothing to keep: 400, unchanged.
    let before = std::fs::read(daemon.config_path()).unwrap();
    let mut listed = get(&daemon, "radius/server");
    listed.as_array_mut().unwrap().push(json!(
        {"port": 1812, "address": "10.70.45.15", "protocol": "PAP", "secret": CLOAK, "enabled": 1}
    ));
    let answer = send(&daemon, ADMIN, "POST", "radius/reorder", Some(&listed));
    assert_names(&answer, "[2].secret");
    let answer = send(
        &daemon,
        ADMIN,
        "POST",
        "radius/reorder",
        Some(&json!([{"server_id": 42, "address": "10.70.45.15", "secret": CLOAK}])),
    );
    assert_names(&answer, "[0].secret");
    assert_eq!(std::fs::read(daemon.config_path()).unwrap(), before);

    // A new entry with a real secret gets the next id; servers left out are dropped.
    let mut listed = get(&daemon, "radius/server");
    listed.as_array_mut().unwrap().remove(1);
    listed.as_array_mut().unwrap().insert(
        0,
        json!({"port": 1812, "address": "10.70.45.15", "protocol": "PAP",
               "secret": "fresh-secret", "enabled": 0}),
    );
    write(&daemon, "POST", "radius/reorder", Some(listed));
    let clear = get(&daemon, "radius/server?uncloak");
    assert_eq!(
        clear,
        json!([
            {"server_id": 3, "port": 1812, "order": 0, "address": "10.70.45.15",
             "protocol": "PAP", "secret": "fresh-secret", "enabled": 0},
            {"server_id": 2, "port": 1812, "order": 1, "address": "10.70.45.14",
             "protocol": "PAP", "secret": "test", "enabled": 1}
        ])
    );

    // Delete one: the rest close up the order; unknown ids are 404.
    write(&daemon, "DELETE", "radius/server/3", None);
    assert_eq!(
        get(&daemon, "radius/server"),
        json!([{"server_id": 2, "port": 1812, "order": 0, "address": "10.70.45.14",
                "protocol": "PAP", "secret": CLOAK, "enabled": 1}])
    );
    for (method, body) in [("DELETE", None), ("PUT", Some(json!({"port": 1813})))] {
        let answer = send(&daemon, ADMIN, method, "radius/server/3", body.as_ref());
        assert_eq!(answer.status, 404, "{method}: {}", answer.body);
        assert_eq!(answer.json()["error_id"], "NOT_FOUND");
    }

    // Delete all, then a new server starts again at id 1.
    write(&daemon, "DELETE", "radius/server", None);
    assert_eq!(get(&daemon, "radius/server"), json!([]));
    write(
        &daemon,
        "POST",
        "radius/server",
        Some(json!({"address": "radius.example", "secret": "0123456789abcdef"})),
    );
    assert_eq!(
        get(&daemon, "radius/server"),
        json!([{"server_id": 1, "port": 1812, "order": 0, "address": "radius.example",
                "protocol": "PAP", "secret": CLOAK, "enabled": 1}])
    );
}

#[test]
fn tacacs_servers_as_documented() {
    let daemon = Daemon::start(None);
    assert_eq!(get(&daemon, "tacacs/server"), json!([]));

    // Add: a first server with a numeric client_port, then the reference's example, which
    // sends it as a string.
    write(
        &daemon,
        "POST",
        "tacacs/server",
        Some(
            json!({"address": "10.70.45.13", "port": 1812, "secret": "check",
                    "protocol": "PAP", "client_port": 8080, "enabled": true}),
        ),
    );
    write(
        &daemon,
        "POST",
        "tacacs/server",
        Some(json!({
            "address": "10.70.45.14",
            "port": 1812,
            "secret": "secretKey",
            "protocol": "PAP",
            "client_port": "70",
            "enabled": true
        })),
    );
    assert_eq!(get(&daemon, "tacacs/server")[1]["client_port"], "70");

    // Update: the reference's example, client_port as a number.
    write(
        &daemon,
        "PUT",
        "tacacs/server/2",
        Some(json!({
            "address": "10.70.45.14",
            "port": 1812,
            "secret": "secretKey",
            "client_port": 7000,
            "protocol": "PAP",
            "enabled": true
        })),
    );
    // List: the reference's example, verbatim.
    let listed = get(&daemon, "tacacs/server");
    assert_eq!(
        listed,
        json!([
            {"server_id": 1, "port": 1812, "order": 0, "address": "10.70.45.13",
             "protocol": "PAP", "client_port": "8080", "secret": "****************",
             "enabled": 1},
            {"server_id": 2, "port": 1812, "order": 1, "address": "10.70.45.14",
             "protocol": "PAP", "client_port": "7000", "secret": "****************",
             "enabled": 1}
        ])
    );
    for server in listed.as_array().unwrap() {
        assert_server_types(server, true);
    }
    let clear = get(&daemon, "tacacs/server?uncloak");
    assert_eq!(clear[0]["secret"], "check");
    assert_eq!(clear[1]["secret"], "secretKey");

    // A partial update keeps everything else, the secret included.
    write(
        &daemon,
        "PUT",
        "tacacs/server/1",
        Some(json!({"protocol": "ASCII", "enabled": false, "secret": CLOAK})),
    );
    assert_eq!(
        get(&daemon, "tacacs/server?uncloak")[0],
        json!({"server_id": 1, "port": 1812, "order": 0, "address": "10.70.45.13",
               "protocol": "ASCII", "client_port": "8080", "secret": "check", "enabled": 0})
    );

    // Reorder: the reference's example.
    write(
        &daemon,
        "POST",
        "tacacs/reorder",
        Some(json!([
            {"server_id": 1, "port": 1812, "order": 0, "address": "10.70.45.13",
             "protocol": "PAP", "client_port": 710, "secret": "check", "enabled": 1},
            {"server_id": 2, "port": 1812, "order": 1, "address": "10.70.45.14",
             "protocol": "PAP", "client_port": 700, "secret": "test", "enabled": 1}
        ])),
    );
    assert_eq!(
        get(&daemon, "tacacs/server?uncloak"),
        json!([
            {"server_id": 1, "port": 1812, "order": 0, "address": "10.70.45.13",
             "protocol": "PAP", "client_port": "710", "secret": "check", "enabled": 1},
            {"server_id": 2, "port": 1812, "order": 1, "address": "10.70.45.14",
             "protocol": "PAP", "client_port": "700", "secret": "test", "enabled": 1}
        ])
    );

    // GET (cloaked), swap, POST back: ids and secrets stay.
    let mut listed = get(&daemon, "tacacs/server");
    listed.as_array_mut().unwrap().reverse();
    write(&daemon, "POST", "tacacs/reorder", Some(listed));
    let clear = get(&daemon, "tacacs/server?uncloak");
    assert_eq!(clear[0]["server_id"], 2);
    assert_eq!(clear[0]["order"], 0);
    assert_eq!(clear[0]["secret"], "test");
    assert_eq!(clear[0]["client_port"], "700");
    assert_eq!(clear[1]["server_id"], 1);
    assert_eq!(clear[1]["order"], 1);
    assert_eq!(clear[1]["secret"], "check");

    // A cloaked secret on a new server: 400, nothing changed.
    let before = std::fs::read(daemon.config_path()).unwrap();
    let mut listed = get(&daemon, "tacacs/server");
    listed.as_array_mut().unwrap().insert(
        0,
        json!({"port": 49, "address": "10.70.45.15", "protocol": "PAP", "client_port": "1",
               "secret": CLOAK, "enabled": 1}),
    );
    let answer = send(&daemon, ADMIN, "POST", "tacacs/reorder", Some(&listed));
    assert_names(&answer, "[0].secret");
    let answer = send(
        &daemon,
        ADMIN,
        "POST",
        "tacacs/server",
        Some(&json!({"address": "10.70.45.15", "secret": CLOAK})),
    );
    assert_names(&answer, "secret");
    assert_eq!(std::fs::read(daemon.config_path()).unwrap(), before);

    // Delete one, unknown ids, delete all.
    write(&daemon, "DELETE", "tacacs/server/2", None);
    let listed = get(&daemon, "tacacs/server");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["server_id"], 1);
    assert_eq!(listed[0]["order"], 0);
    for (method, path) in [
        ("DELETE", "tacacs/server/2"),
        ("PUT", "tacacs/server/2"),
        ("PUT", "tacacs/server/not-a-number"),
    ] {
        let answer = send(&daemon, ADMIN, method, path, Some(&json!({"port": 50})));
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.body);
        assert_eq!(answer.json()["error_id"], "NOT_FOUND");
    }
    write(&daemon, "DELETE", "tacacs/server", None);
    assert_eq!(get(&daemon, "tacacs/server"), json!([]));
    // The defaults of a minimal add: port 49, PAP, empty client_port, enabled.
    write(
        &daemon,
        "POST",
        "tacacs/server",
        Some(json!({"address": "tacacs.example", "secret": "0123456789abcdef"})),
    );
    assert_eq!(
        get(&daemon, "tacacs/server"),
        json!([{"server_id": 1, "port": 49, "order": 0, "address": "tacacs.example",
                "protocol": "PAP", "client_port": "", "secret": CLOAK, "enabled": 1}])
    );
}

#[test]
fn settings_and_role_mappings_as_documented_and_after_a_restart() {
    let daemon = Daemon::start(None);

    // RADIUS settings: the defaults, typed as documented.
    let settings = get(&daemon, "radius/settings");
    assert_eq!(
        settings,
        json!({
            "authentication": {"use_nas_id": true, "nas_id_type": "dynamic",
                               "nas_id_value": "", "use_nas_ip": false},
            "connection_timeout": 5,
            "max_number_of_tries": 3
        })
    );
    // The reference's example set (no `authentication`), then the reference's example
    // answer sent as a body and read back verbatim.
    write(
        &daemon,
        "POST",
        "radius/settings",
        Some(json!({"connection_timeout": 5, "max_number_of_tries": 3})),
    );
    let example = json!({
        "authentication": {
            "use_nas_id": true,
            "nas_id_type": "custom",
            "nas_id_value": "customValue",
            "use_nas_ip": false
        },
        "connection_timeout": 5,
        "max_number_of_tries": 3
    });
    write(&daemon, "POST", "radius/settings", Some(example.clone()));
    assert_eq!(get(&daemon, "radius/settings"), example);
    // Partial sets keep the rest; the reference's spelling "dyanmic" is accepted.
    write(
        &daemon,
        "POST",
        "radius/settings",
        Some(
            json!({"authentication": {"nas_id_type": "dyanmic", "use_nas_ip": true},
                    "max_number_of_tries": 2}),
        ),
    );
    assert_eq!(
        get(&daemon, "radius/settings"),
        json!({
            "authentication": {"use_nas_id": true, "nas_id_type": "dynamic",
                               "nas_id_value": "customValue", "use_nas_ip": true},
            "connection_timeout": 5,
            "max_number_of_tries": 2
        })
    );

    // TACACS+ settings: read at tacacs/settings, written at tacacs/connection, partially.
    assert_eq!(
        get(&daemon, "tacacs/settings"),
        json!({"connection_timeout": 5, "auth_service": "serviceName"})
    );
    write(
        &daemon,
        "POST",
        "tacacs/connection",
        Some(json!({"connection_timeout": 5, "auth_service": "serviceName"})),
    );
    write(
        &daemon,
        "POST",
        "tacacs/connection",
        Some(json!({"connection_timeout": 9})),
    );
    assert_eq!(
        get(&daemon, "tacacs/settings"),
        json!({"connection_timeout": 9, "auth_service": "serviceName"})
    );
    write(
        &daemon,
        "POST",
        "tacacs/connection",
        Some(json!({"auth_service": "portcullis"})),
    );
    assert_eq!(
        get(&daemon, "tacacs/settings"),
        json!({"connection_timeout": 9, "auth_service": "portcullis"})
    );

    // Role mappings: every role listed, unmapped ones with nulls.
    assert_eq!(get(&daemon, "radius/role_mapping"), role_list(&[]));
    assert_eq!(get(&daemon, "tacacs/role_mapping"), role_list(&[]));
    write(
        &daemon,
        "POST",
        "radius/role_mapping",
        Some(json!([
            {"role": "Administrator", "attribute": 17164, "attribute_value": "2"},
            {"role": "Limit Data Resolution to only \"automatic\"", "attribute": 17164,
             "attribute_value": "7"}
        ])),
    );
    let radius = get(&daemon, "radius/role_mapping");
    assert_eq!(
        radius,
        role_list(&[
            ("Administrator", json!(17164), "2"),
            (
                "Limit Data Resolution to only \"automatic\"",
                json!(17164),
                "7"
            ),
        ])
    );
    assert!(radius[1]["attribute"].is_u64());
    write(
        &daemon,
        "POST",
        "tacacs/role_mapping",
        Some(json!([
            {"role": "Administrator", "attribute": "cascade", "attribute_value": "2"},
            {"role": "Limit Data Resolution to only \"automatic\"", "attribute": "class",
             "attribute_value": "7"}
        ])),
    );
    let tacacs = get(&daemon, "tacacs/role_mapping");
    assert_eq!(
        tacacs,
        role_list(&[
            ("Administrator", json!("cascade"), "2"),
            (
                "Limit Data Resolution to only \"automatic\"",
                json!("class"),
                "7"
            ),
        ])
    );
    // Setting some roles leaves the others; nulls unmap a role; the GET answer goes back as
    // a body unchanged.
    write(
        &daemon,
        "POST",
        "radius/role_mapping",
        Some(json!([
            {"role": "Monitor", "attribute": 25, "attribute_value": "monitor"},
            {"role": "Administrator", "attribute": null, "attribute_value": null}
        ])),
    );
    let radius = get(&daemon, "radius/role_mapping");
    assert_eq!(
        radius,
        role_list(&[
            ("Monitor", json!(25), "monitor"),
            (
                "Limit Data Resolution to only \"automatic\"",
                json!(17164),
                "7"
            ),
        ])
    );
    write(&daemon, "POST", "radius/role_mapping", Some(radius.clone()));
    assert_eq!(get(&daemon, "radius/role_mapping"), radius);
    write(&daemon, "POST", "tacacs/role_mapping", Some(tacacs.clone()));
    assert_eq!(get(&daemon, "tacacs/role_mapping"), tacacs);

    // Servers and the sequence, so the restart has secrets to keep.
    write(
        &daemon,
        "POST",
        "current_auth_sequence",
        Some(json!({"id": 2})),
    );
    write(
        &daemon,
        "POST",
        "radius/server",
        Some(
            json!({"address": "10.70.45.14", "port": 1812, "secret": "secretKey",
                    "protocol": "PAP", "enabled": true}),
        ),
    );
    write(
        &daemon,
        "POST",
        "tacacs/server",
        Some(
            json!({"address": "10.70.45.14", "port": 49, "secret": "tacacsKey",
                    "protocol": "PAP", "client_port": "70", "enabled": true}),
        ),
    );

    // Everything survives a restart (SIGKILL, then a fresh start on the same file).
    let before = snapshot(&daemon);
    let daemon = daemon.restart();
    assert_eq!(snapshot(&daemon), before);
    assert_eq!(
        get(&daemon, "current_auth_sequence"),
        json!({"id": 2, "authentication_sequence": "Local, TACACS+, RADIUS"})
    );
    assert_eq!(
        get(&daemon, "tacacs/server?uncloak")[0]["secret"],
        "tacacsKey"
    );
    // The file holds the values, dyanmic written as dynamic.
    let text = std::fs::read_to_string(daemon.config_path()).unwrap();
    assert!(text.contains("nas_id_type = \"dynamic\""), "{text}");
    assert!(text.contains("current_sequence = 2"), "{text}");
}

#[test]
fn invalid_requests_name_the_field_and_change_nothing() {
    let daemon = Daemon::start(None);
    // Something to refer to, and a file to compare.
    write(
        &daemon,
        "POST",
        "radius/server",
        Some(json!({"address": "10.0.0.1", "secret": "0123456789abcdef"})),
    );
    write(
        &daemon,
        "POST",
        "tacacs/server",
        Some(json!({"address": "10.0.0.1", "secret": "0123456789abcdef"})),
    );
    let state = snapshot(&daemon);
    let file = std::fs::read(daemon.config_path()).unwrap();

    let s = "\"secret\": \"0123456789abcdef\"";
    let cases: Vec<(&str, &str, String, u16, Option<&str>)> = vec![
        // Malformed JSON and wrong shapes.
        ("POST", "current_auth_sequence", "{nope".into(), 400, None),
        ("POST", "current_auth_sequence", "[1]".into(), 400, None),
        ("POST", "radius/reorder", "{}".into(), 400, None),
        ("POST", "tacacs/role_mapping", "\"x\"".into(), 400, None),
        ("POST", "radius/server", String::new(), 400, None),
        // The sequence id.
        ("POST", "current_auth_sequence", r#"{"id": 9}"#.into(), 400, Some("id")),
        ("POST", "current_auth_sequence", r#"{"id": 0}"#.into(), 400, Some("id")),
        ("POST", "current_auth_sequence", r#"{"id": "1"}"#.into(), 400, Some("id")),
        ("POST", "current_auth_sequence", r#"{"id": -1}"#.into(), 400, Some("id")),
        ("POST", "current_auth_sequence", "{}".into(), 400, Some("id")),
        ("POST", "current_auth_sequence", r#"{"id": 1, "name": "x"}"#.into(), 400, Some("name")),
        // Server fields.
        ("POST", "radius/server", format!(r#"{{"address": "10.0.0.9", "port": 70000, {s}}}"#), 400, Some("port")),
        ("POST", "radius/server", format!(r#"{{"address": "10.0.0.9", "port": 0, {s}}}"#), 400, Some("port")),
        ("POST", "radius/server", format!(r#"{{"address": "10.0.0.9", "port": "1812", {s}}}"#), 400, Some("port")),
        ("POST", "radius/server", format!(r#"{{"address": "not an address", {s}}}"#), 400, Some("address")),
        ("POST", "radius/server", format!(r#"{{"address": 10, {s}}}"#), 400, Some("address")),
        ("POST", "radius/server", format!("{{{s}}}"), 400, Some("address")),
        ("POST", "radius/server", r#"{"address": "10.0.0.9"}"#.into(), 400, Some("secret")),
        ("POST", "radius/server", r#"{"address": "10.0.0.9", "secret": ""}"#.into(), 400, Some("secret")),
        ("POST", "radius/server", format!(r#"{{"address": "10.0.0.9", "secret": "{CLOAK}"}}"#), 400, Some("secret")),
        ("POST", "radius/server", format!(r#"{{"address": "10.0.0.9", {s}, "protocol": "MSCHAP"}}"#), 400, Some("protocol")),
        ("POST", "radius/server", format!(r#"{{"address": "10.0.0.9", {s}, "enabled": 2}}"#), 400, Some("enabled")),
        ("POST", "radius/server", format!(r#"{{"address": "10.0.0.9", {s}, "enabled": "yes"}}"#), 400, Some("enabled")),
        ("POST", "radius/server", format!(r#"{{"address": "10.0.0.9", {s}, "colour": "red"}}"#), 400, Some("colour")),
        ("POST", "radius/server", format!(r#"{{"address": "10.0.0.1", {s}}}"#), 400, Some("address")),
        ("PUT", "radius/server/1", r#"{"port": -1}"#.into(), 400, Some("port")),
        ("PUT", "radius/server/1", r#"{"secret": ""}"#.into(), 400, Some("secret")),
        ("PUT", "radius/server/99", r#"{"port": 1813}"#.into(), 404, None),
        ("PUT", "radius/server/abc", r#"{"port": 1813}"#.into(), 404, None),
        ("DELETE", "radius/server/99", String::new(), 404, None),
        // A path segment that is not even UTF-8 is no id either, answered with the error body.
        ("DELETE", "radius/server/%FF", String::new(), 404, None),
        ("PUT", "tacacs/server/%C0", r#"{"port": 50}"#.into(), 404, None),
        ("POST", "tacacs/server", format!(r#"{{"address": "10.0.0.9", {s}, "client_port": -1}}"#), 400, Some("client_port")),
        ("POST", "tacacs/server", format!(r#"{{"address": "10.0.0.9", {s}, "client_port": 1.5}}"#), 400, Some("client_port")),
        ("POST", "tacacs/server", format!(r#"{{"address": "10.0.0.9", {s}, "protocol": "CHAP"}}"#), 400, Some("protocol")),
        ("PUT", "tacacs/server/1", r#"{"client_port": "a\u0001b"}"#.into(), 400, Some("client_port")),
        ("PUT", "tacacs/server/99", r#"{"port": 50}"#.into(), 404, None),
        ("DELETE", "tacacs/server/99", String::new(), 404, None),
        // Reorder entries.
        ("POST", "radius/reorder", r#"[{"server_id": 1}, {"server_id": 1}]"#.into(), 400, Some("[1].server_id")),
        ("POST", "radius/reorder", r#"[{"server_id": 1, "port": 0}]"#.into(), 400, Some("[0].port")),
        ("POST", "radius/reorder", r#"[{"server_id": 1, "enabled": 5}]"#.into(), 400, Some("[0].enabled")),
        ("POST", "radius/reorder", r#"[{"server_id": 1}, {"port": 1812}]"#.into(), 400, Some("[1].address")),
        ("POST", "radius/reorder", r#"[{"server_id": 1}, 7]"#.into(), 400, Some("[1]")),
        ("POST", "tacacs/reorder", format!(r#"[{{"address": "10.0.0.5", "secret": "{CLOAK}"}}]"#), 400, Some("[0].secret")),
        ("POST", "tacacs/reorder", r#"[{"server_id": 1, "client_port": true}]"#.into(), 400, Some("[0].client_port")),
        // Settings.
        ("POST", "radius/settings", r#"{"connection_timeout": 0}"#.into(), 400, Some("connection_timeout")),
        ("POST", "radius/settings", r#"{"connection_timeout": 61}"#.into(), 400, Some("connection_timeout")),
        ("POST", "radius/settings", r#"{"connection_timeout": "5"}"#.into(), 400, Some("connection_timeout")),
        ("POST", "radius/settings", r#"{"max_number_of_tries": 11}"#.into(), 400, Some("max_number_of_tries")),
        ("POST", "radius/settings", r#"{"authentication": {"use_nas_id": false, "use_nas_ip": false}}"#.into(), 400, Some("authentication.use_nas_id")),
        ("POST", "radius/settings", r#"{"authentication": {"nas_id_type": "custom", "nas_id_value": ""}}"#.into(), 400, Some("authentication.nas_id_value")),
        ("POST", "radius/settings", r#"{"authentication": {"nas_id_type": "static"}}"#.into(), 400, Some("authentication.nas_id_type")),
        ("POST", "radius/settings", r#"{"authentication": {"use_nas_ip": "yes"}}"#.into(), 400, Some("authentication.use_nas_ip")),
        ("POST", "radius/settings", r#"{"authentication": "custom"}"#.into(), 400, Some("authentication")),
        ("POST", "tacacs/connection", r#"{"connection_timeout": 0}"#.into(), 400, Some("connection_timeout")),
        ("POST", "tacacs/connection", r#"{"auth_service": ""}"#.into(), 400, Some("auth_service")),
        ("POST", "tacacs/connection", r#"{"auth_service": 5}"#.into(), 400, Some("auth_service")),
        // Role mappings.
        ("POST", "radius/role_mapping", r#"[{"role": "Boss", "attribute": 1, "attribute_value": "x"}]"#.into(), 400, Some("[0].role")),
        ("POST", "radius/role_mapping", r#"[{"attribute": 1, "attribute_value": "x"}]"#.into(), 400, Some("[0].role")),
        ("POST", "radius/role_mapping", r#"[{"role": "Monitor", "attribute": 0, "attribute_value": "x"}]"#.into(), 400, Some("[0].attribute")),
        ("POST", "radius/role_mapping", r#"[{"role": "Monitor", "attribute": "17164", "attribute_value": "x"}]"#.into(), 400, Some("[0].attribute")),
        ("POST", "radius/role_mapping", r#"[{"role": "Monitor", "attribute": 17164}]"#.into(), 400, Some("[0].attribute_value")),
        ("POST", "radius/role_mapping", r#"[{"role": "Monitor", "attribute": 1, "attribute_value": "ok"}, {"role": "Operator", "attribute": 17164, "attribute_value": ""}]"#.into(), 400, Some("[1].attribute_value")),
        ("POST", "tacacs/role_mapping", r#"[{"role": "Monitor", "attribute": "priv=lvl", "attribute_value": "1"}]"#.into(), 400, Some("[0].attribute")),
        ("POST", "tacacs/role_mapping", r#"[{"role": "Monitor", "attribute_value": "1"}]"#.into(), 400, Some("[0].attribute")),
    ];
    for (method, path, body, status, field) in &cases {
        let body = (!body.is_empty() || *method == "POST").then_some(body.as_str());
        let answer = daemon.request(method, &format!("{BASE}/{path}"), ADMIN, body);
        let context = format!("{method} {path} {body:?}: {}", answer.body);
        assert_eq!(answer.status, *status, "{context}");
        let error = answer.json();
        match field {
            Some(field) => assert_names(&answer, field),
            None if *status == 404 => assert_eq!(error["error_id"], "NOT_FOUND", "{context}"),
            None => assert_eq!(error["error_id"], "BAD_REQUEST", "{context}"),
        }
        assert!(error["error_text"].is_string(), "{context}");
        assert_eq!(
            std::fs::read(daemon.config_path()).unwrap(),
            file,
            "{context} changed the file"
        );
    }
    assert_eq!(snapshot(&daemon), state);
}

#[test]
fn readers_writers_and_strangers() {
    let hash =
        |password: &str| portcullis::engine::local::hash_password(password.as_bytes()).unwrap();
    // A wrong password for `admin` goes to every route below, more than the brute-force
    // throttle allows; the throttle has its own tests (tests/throttle.rs).
    let config = format!(
        r#"
[throttle]
enabled = false

[[local_users]]
name = "admin"
password_hash = "{}"
roles = ["Administrator"]

[[local_users]]
name = "monitor"
password_hash = "{}"
roles = ["Monitor"]

[[local_users]]
name = "operator"
password_hash = "{}"
roles = ["Operator"]

[[radius.servers]]
id = 1
order = 0
address = "10.0.0.1"
secret = "radius-secret-0123"

[[tacacs.servers]]
id = 1
order = 0
address = "10.0.0.1"
secret = "tacacs-secret-0123"
"#,
        hash(ADMIN_PASSWORD),
        hash("monitor-password"),
        hash("operator-password"),
    );
    let daemon = Daemon::start(Some(&config));
    let monitor = Auth::Basic("monitor", "monitor-password");
    let operator = Auth::Basic("operator", "operator-password");
    let server = json!({"address": "10.0.0.2", "secret": "0123456789abcdef"});
    let reads = [
        "all_auth_sequences",
        "current_auth_sequence",
        "radius/server",
        "radius/settings",
        "radius/role_mapping",
        "tacacs/server",
        "tacacs/settings",
        "tacacs/role_mapping",
    ];
    let writes: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "current_auth_sequence", Some(json!({"id": 3}))),
        ("POST", "radius/server", Some(server.clone())),
        ("PUT", "radius/server/1", Some(json!({"port": 1813}))),
        ("DELETE", "radius/server/1", None),
        ("DELETE", "radius/server", None),
        ("POST", "radius/reorder", Some(json!([]))),
        (
            "POST",
            "radius/settings",
            Some(json!({"connection_timeout": 7})),
        ),
        ("POST", "radius/role_mapping", Some(json!([]))),
        ("POST", "tacacs/server", Some(server.clone())),
        ("PUT", "tacacs/server/1", Some(json!({"port": 50}))),
        ("DELETE", "tacacs/server/1", None),
        ("DELETE", "tacacs/server", None),
        ("POST", "tacacs/reorder", Some(json!([]))),
        (
            "POST",
            "tacacs/connection",
            Some(json!({"connection_timeout": 7})),
        ),
        ("POST", "tacacs/role_mapping", Some(json!([]))),
    ];
    let file = std::fs::read(daemon.config_path()).unwrap();

    // A Monitor reads everything but secrets, and writes nothing; an Operator reads nothing.
    for path in reads {
        let answer = send(&daemon, monitor, "GET", path, None);
        assert_eq!(answer.status, 200, "monitor GET {path}: {}", answer.body);
        let answer = send(&daemon, operator, "GET", path, None);
        assert_eq!(answer.status, 403, "operator GET {path}: {}", answer.body);
        assert_eq!(answer.json()["error_id"], "FORBIDDEN");
    }
    assert_eq!(
        get(&daemon, "radius/server")[0]["secret"],
        send(&daemon, monitor, "GET", "radius/server", None).json()[0]["secret"]
    );
    for path in ["radius/server?uncloak", "tacacs/server?uncloak=1"] {
        let answer = send(&daemon, monitor, "GET", path, None);
        assert_eq!(answer.status, 403, "monitor GET {path}: {}", answer.body);
        assert!(!answer.body.contains("-secret-0123"));
    }
    for (method, path, body) in &writes {
        let answer = send(&daemon, monitor, method, path, body.as_ref());
        assert_eq!(
            answer.status, 403,
            "monitor {method} {path}: {}",
            answer.body
        );
        assert_eq!(answer.json()["error_id"], "FORBIDDEN");
    }

    // No credentials: 401 AUTH_REQUIRED on every route; a wrong password:
    // AUTH_INVALID_CREDENTIALS.
    let everything = reads
        .iter()
        .map(|path| ("GET", *path, None))
        .chain(writes.iter().map(|(m, p, b)| (*m, *p, b.clone())));
    for (method, path, body) in everything {
        let answer = send(&daemon, Auth::None, method, path, body.as_ref());
        assert_eq!(answer.status, 401, "{method} {path}: {}", answer.body);
        assert_eq!(answer.json()["error_id"], "AUTH_REQUIRED");
        let answer = send(
            &daemon,
            Auth::Basic("admin", "wrong"),
            method,
            path,
            body.as_ref(),
        );
        assert_eq!(answer.status, 401, "{method} {path}: {}", answer.body);
        assert_eq!(answer.json()["error_id"], "AUTH_INVALID_CREDENTIALS");
    }
    assert_eq!(std::fs::read(daemon.config_path()).unwrap(), file);

    // Bearer tokens work like the password they were issued for.
    let token = daemon.login("monitor", "monitor-password");
    let answer = send(&daemon, Auth::Bearer(&token), "GET", "radius/server", None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = send(
        &daemon,
        Auth::Bearer(&token),
        "POST",
        "current_auth_sequence",
        Some(&json!({"id": 3})),
    );
    assert_eq!(answer.status, 403, "{}", answer.body);
    let token = daemon.login("admin", ADMIN_PASSWORD);
    let answer = send(
        &daemon,
        Auth::Bearer(&token),
        "POST",
        "current_auth_sequence",
        Some(&json!({"id": 3})),
    );
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(get(&daemon, "current_auth_sequence")["id"], 3);

    // The OpenAPI document describes every operation, with both security schemes.
    let doc = daemon
        .request("GET", "/api/openapi.json", Auth::None, None)
        .json();
    let operations = [
        ("get", "all_auth_sequences"),
        ("get", "current_auth_sequence"),
        ("post", "current_auth_sequence"),
        ("get", "radius/server"),
        ("post", "radius/server"),
        ("delete", "radius/server"),
        ("put", "radius/server/{id}"),
        ("delete", "radius/server/{id}"),
        ("post", "radius/reorder"),
        ("get", "radius/settings"),
        ("post", "radius/settings"),
        ("get", "radius/role_mapping"),
        ("post", "radius/role_mapping"),
        ("get", "tacacs/server"),
        ("post", "tacacs/server"),
        ("delete", "tacacs/server"),
        ("put", "tacacs/server/{id}"),
        ("delete", "tacacs/server/{id}"),
        ("post", "tacacs/reorder"),
        ("get", "tacacs/settings"),
        ("post", "tacacs/connection"),
        ("get", "tacacs/role_mapping"),
        ("post", "tacacs/role_mapping"),
    ];
    for (method, path) in operations {
        let operation = &doc["paths"][format!("{BASE}/{path}")][method];
        assert!(operation.is_object(), "{method} {path} missing");
        assert_eq!(
            operation["security"],
            json!([{"basic": []}, {"bearer": []}]),
            "{method} {path}"
        );
        assert!(operation["responses"]["401"].is_object(), "{method} {path}");
    }
    let schemas = &doc["components"]["schemas"];
    let server = &schemas["TacacsServerView"]["properties"];
    assert_eq!(server["client_port"]["type"], "string");
    assert_eq!(server["enabled"]["type"], "integer");
    assert!(schemas["Flag"]["oneOf"].is_array(), "{}", schemas["Flag"]);
    assert!(schemas["StringOrNumber"]["oneOf"].is_array());
}
