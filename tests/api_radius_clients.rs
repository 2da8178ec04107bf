//! `/api/mgmt.radius_frontend/1.0/clients` against the real daemon, with `curl` as the client:
//! add, list, update and delete the RADIUS front-end's clients; secrets cloaked unless an
//! Administrator asks for them; invalid requests name the field and change nothing; and a
//! client added through the API is answered by the front-end at once, and dropped again once
//! deleted; RadSec clients carry their `transport`, `tls_ca` and `tls_name` through the API
//! into the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use portcullis::engine::local::hash_password;
use portcullis_config::{Config, FrontendClient, RadiusTransport};
use portcullis_protocol::radius::{Builder, Code, Packet, Secret, Signature, attr_type};
use serde_json::{Value, json};
use support::daemon::{Answer, Auth, Daemon};
use support::pki::Pki;

const CLIENTS: &str = "/api/mgmt.radius_frontend/1.0/clients";
const CLOAK: &str = "****************";
const ADMIN_PASSWORD: &str = "admin-password";
const MONITOR_PASSWORD: &str = "monitor-password";
const ADMIN: Auth<'static> = Auth::Basic("admin", ADMIN_PASSWORD);
const MONITOR: Auth<'static> = Auth::Basic("watcher", MONITOR_PASSWORD);
/// The shared secret of the front-end client the tests add.
const SECRET: &str = "api-added-client-secret";

/// An Administrator and a Monitor, both local users; no front-end clients.
fn config() -> String {
    let admin = hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    let monitor = hash_password(MONITOR_PASSWORD.as_bytes()).unwrap();
    format!(
        r#"
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

fn client_path(id: impl std::fmt::Display) -> String {
    format!("{CLIENTS}/{id}")
}

fn post(daemon: &Daemon, body: &Value) -> Answer {
    daemon.request("POST", CLIENTS, ADMIN, Some(&body.to_string()))
}

fn put(daemon: &Daemon, id: impl std::fmt::Display, body: &str) -> Answer {
    daemon.request("PUT", &client_path(id), ADMIN, Some(body))
}

/// `GET` as `auth` at `path`, which must answer 200.
fn list(daemon: &Daemon, path: &str, auth: Auth<'_>) -> Value {
    let answer = daemon.request("GET", path, auth, None);
    assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
    answer.json()
}

/// The clients with their secrets.
fn uncloaked(daemon: &Daemon) -> Value {
    list(daemon, &format!("{CLIENTS}?uncloak"), ADMIN)
}

/// The fields named in a 400's `error_info.fields`.
fn failed_fields(answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.json()["error_id"], "BAD_REQUEST", "{}", answer.body);
    answer.json()["error_info"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields: {}", answer.body))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn crud_with_cloaked_secrets() {
    let daemon = Daemon::start(Some(&config()));
    assert_eq!(list(&daemon, CLIENTS, ADMIN), json!([]));
    assert_eq!(list(&daemon, CLIENTS, MONITOR), json!([]));

    let added = post(
        &daemon,
        &json!({"name": "loopback", "address": "127.0.0.1", "secret": "loopback-secret-0123"}),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(
        added.json(),
        json!({"id": 1, "name": "loopback", "address": "127.0.0.1", "secret": CLOAK,
               "require_message_authenticator": "auto"})
    );
    let added = post(
        &daemon,
        &json!({"name": "vpn", "address": "2001:db8::/32", "secret": "vpn-secret-0123456789",
                "require_message_authenticator": "yes"}),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.json()["id"], 2);
    assert_eq!(added.json()["secret"], CLOAK);

    // Secrets are cloaked for everyone unless an Administrator asks.
    let cloaked = json!([
        {"id": 1, "name": "loopback", "address": "127.0.0.1", "secret": CLOAK,
         "require_message_authenticator": "auto"},
        {"id": 2, "name": "vpn", "address": "2001:db8::/32", "secret": CLOAK,
         "require_message_authenticator": "yes"},
    ]);
    assert_eq!(list(&daemon, CLIENTS, ADMIN), cloaked);
    assert_eq!(list(&daemon, CLIENTS, MONITOR), cloaked);
    for query in ["uncloak", "uncloak=1", "a=b&uncloak=false"] {
        let clear = list(&daemon, &format!("{CLIENTS}?{query}"), ADMIN);
        assert_eq!(clear[0]["secret"], "loopback-secret-0123", "{query}");
        assert_eq!(clear[1]["secret"], "vpn-secret-0123456789", "{query}");
    }
    let refused = daemon.request("GET", &format!("{CLIENTS}?uncloak"), MONITOR, None);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!refused.body.contains("secret-0123"), "{}", refused.body);

    // A GET entry sent back as it is changes nothing and keeps the secret.
    let before = uncloaked(&daemon);
    let same = put(&daemon, 2, &cloaked[1].to_string());
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(same.json(), cloaked[1]);
    assert_eq!(uncloaked(&daemon), before);

    // Partial updates: the fields given change, the others stay.
    let renamed = put(
        &daemon,
        2,
        r#"{"name": "vpn-1", "require_message_authenticator": "no", "secret": "****************"}"#,
    );
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(
        renamed.json(),
        json!({"id": 2, "name": "vpn-1", "address": "2001:db8::/32", "secret": CLOAK,
               "require_message_authenticator": "no"})
    );
    assert_eq!(uncloaked(&daemon)[1]["secret"], "vpn-secret-0123456789");
    let rekeyed = put(
        &daemon,
        2,
        r#"{"secret": "new-vpn-secret-0123", "address": "10.0.0.0/8"}"#,
    );
    assert_eq!(rekeyed.status, 200, "{}", rekeyed.body);
    assert_eq!(rekeyed.json()["secret"], CLOAK);
    assert_eq!(
        uncloaked(&daemon)[1],
        json!({"id": 2, "name": "vpn-1", "address": "10.0.0.0/8",
               "secret": "new-vpn-secret-0123", "require_message_authenticator": "no"})
    );

    // Monitors read but never write.
    let monitor_post = daemon.request(
        "POST",
        CLIENTS,
        MONITOR,
        Some(r#"{"name": "x", "address": "10.1.0.0/16", "secret": "monitor-cannot-add"}"#),
    );
    assert_eq!(monitor_post.status, 403, "{}", monitor_post.body);
    let monitor_delete = daemon.request("DELETE", &client_path(1), MONITOR, None);
    assert_eq!(monitor_delete.status, 403, "{}", monitor_delete.body);

    // Deleting: 204, then 404; ids are never reused while a larger one exists.
    let deleted = daemon.request("DELETE", &client_path(1), ADMIN, None);
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert!(deleted.body.is_empty(), "{}", deleted.body);
    let again = daemon.request("DELETE", &client_path(1), ADMIN, None);
    assert_eq!(again.status, 404, "{}", again.body);
    assert_eq!(again.json()["error_id"], "NOT_FOUND");
    let third = post(
        &daemon,
        &json!({"name": "loopback", "address": "127.0.0.0/8", "secret": "third-secret-0123456"}),
    );
    assert_eq!(third.status, 201, "{}", third.body);
    assert_eq!(third.json()["id"], 3);

    // Saved to the configuration file: a restarted daemon has the same clients and secrets.
    let before = uncloaked(&daemon);
    assert_eq!(before.as_array().unwrap().len(), 2);
    let file = std::fs::read_to_string(daemon.config_path()).unwrap();
    assert!(file.contains("[[radius_frontend.clients]]"), "{file}");
    let daemon = daemon.restart();
    assert_eq!(uncloaked(&daemon), before);
}

#[test]
fn invalid_requests_name_the_field_and_change_nothing() {
    let daemon = Daemon::start(Some(&config()));
    let added = post(
        &daemon,
        &json!({"name": "loopback", "address": "127.0.0.1", "secret": "loopback-secret-0123"}),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    let before = uncloaked(&daemon);
    let file = std::fs::read_to_string(daemon.config_path()).unwrap();

    let valid = json!({"name": "n", "address": "10.0.0.0/8", "secret": "a-valid-secret-0123"});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let posts: Vec<(Value, Vec<&str>)> = vec![
        (with("secret", json!(CLOAK)), vec!["secret"]),
        (with("secret", json!("")), vec!["secret"]),
        (with("secret", json!(5)), vec!["secret"]),
        (with("address", json!("10.0.0.1/8")), vec!["address"]),
        (with("address", json!("not-an-address")), vec!["address"]),
        (with("address", json!("10.0.0.0/33")), vec!["address"]),
        (with("address", json!("")), vec!["address"]),
        // Another client's address, spelled differently.
        (with("address", json!("127.0.0.1/32")), vec!["address"]),
        (with("name", json!("")), vec!["name"]),
        (with("name", json!(null)), vec!["name"]),
        (
            with("require_message_authenticator", json!("always")),
            vec!["require_message_authenticator"],
        ),
        (with("id", json!(7)), vec!["id"]),
        (without("secret"), vec!["secret"]),
        (json!({}), vec!["name", "address", "secret"]),
        (
            json!({"name": "", "address": "10.0.0.1/8", "secret": CLOAK}),
            vec!["name", "address", "secret"],
        ),
    ];
    for (body, expected) in posts {
        let answer = post(&daemon, &body);
        let mut fields = failed_fields(&answer);
        fields.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(fields, expected, "POST {body}: {}", answer.body);
        assert!(!answer.body.contains("loopback-secret"), "{}", answer.body);
    }
    let duplicate = post(&daemon, &with("address", json!("127.0.0.1")));
    assert!(
        duplicate.body.contains("client 1"),
        "names the other client: {}",
        duplicate.body
    );
    for body in ["{nope", "[]", "\"text\""] {
        let answer = daemon.request("POST", CLIENTS, ADMIN, Some(body));
        assert_eq!(answer.status, 400, "POST {body}: {}", answer.body);
        assert_eq!(answer.json()["error_id"], "BAD_REQUEST");
    }

    let puts = [
        (r#"{"address": "300.1.1.1"}"#, "address"),
        (r#"{"address": "127.0.0.0/8 "}"#, "address"),
        (r#"{"secret": ""}"#, "secret"),
        (r#"{"name": "tab\there"}"#, "name"),
        (r#"{"name": null}"#, "name"),
        (r#"{"id": 2}"#, "id"),
        (
            r#"{"require_message_authenticator": true}"#,
            "require_message_authenticator",
        ),
        (r#"{"port": 1812}"#, "port"),
    ];
    for (body, field) in puts {
        let answer = put(&daemon, 1, body);
        assert_eq!(
            failed_fields(&answer),
            [field],
            "PUT {body}: {}",
            answer.body
        );
    }
    let malformed = put(&daemon, 1, "{");
    assert_eq!(malformed.status, 400, "{}", malformed.body);

    for id in ["2", "0", "abc", "4294967296", "-1"] {
        let answer = put(&daemon, id, r#"{"name": "x"}"#);
        assert_eq!(answer.status, 404, "PUT {id}: {}", answer.body);
        assert_eq!(answer.json()["error_id"], "NOT_FOUND");
        let answer = daemon.request("DELETE", &client_path(id), ADMIN, None);
        assert_eq!(answer.status, 404, "DELETE {id}: {}", answer.body);
    }

    assert_eq!(uncloaked(&daemon), before);
    assert_eq!(std::fs::read_to_string(daemon.config_path()).unwrap(), file);
}

/// A signed PAP Access-Request for `user` / `password`, always the same octets.
fn access_request(user: &str, password: &str) -> Vec<u8> {
    let secret = Secret::new(SECRET.as_bytes());
    let mut buf = [0u8; 4096];
    let mut builder = Builder::new(&mut buf, Code::AccessRequest, 42, &[7u8; 16]).unwrap();
    builder.message_authenticator().unwrap();
    builder
        .attribute(attr_type::USER_NAME, user.as_bytes())
        .unwrap();
    builder.user_password(password.as_bytes(), &secret).unwrap();
    let len = builder.finish_request(&secret).unwrap();
    buf[..len].to_vec()
}

/// Sends `request` from 127.0.0.1 and returns the reply, or `None` after `wait`.
fn exchange(addr: SocketAddr, request: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(request, addr).unwrap();
    let mut buf = [0u8; 4096];
    socket.recv(&mut buf).ok().map(|len| buf[..len].to_vec())
}

#[test]
fn a_client_added_through_the_api_is_answered_at_once() {
    let daemon = Daemon::start(Some(&config()));
    let addr = daemon.radius_addr.expect("the RADIUS front-end listens");
    let request = access_request("admin", ADMIN_PASSWORD);
    let silence = Duration::from_secs(2);
    let patience = Duration::from_secs(15);

    // No clients: dropped without an answer.
    assert_eq!(exchange(addr, &request, silence), None);

    let added = post(
        &daemon,
        &json!({"name": "loopback", "address": "127.0.0.1", "secret": SECRET}),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    let id = added.json()["id"].as_u64().unwrap();

    // The same request is now answered, signed with the secret the API set.
    let reply = exchange(addr, &request, patience).expect("an answer once the client is added");
    let packet = Packet::new_checked(reply).unwrap();
    let sent = Packet::new_checked(request.as_slice()).unwrap();
    let signature = packet
        .verify_reply(&sent.authenticator(), &Secret::new(SECRET.as_bytes()))
        .unwrap();
    assert_eq!(signature, Signature::Signed);
    assert_eq!(packet.code(), Code::AccessAccept);
    assert!(
        packet
            .attributes()
            .any(|a| a.typ() == attr_type::CLASS && a.value() == b"Administrator"),
        "the role comes back as a Class attribute"
    );

    let deleted = daemon.request("DELETE", &client_path(id), ADMIN, None);
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    // Dropped again, the reply remembered for duplicates included.
    assert_eq!(exchange(addr, &request, silence), None);
    assert!(
        daemon.wait_for_log("RADIUS front-end client deleted", Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
}

/// The configuration file's text and its front-end clients.
fn saved_clients(daemon: &Daemon) -> (String, Vec<FrontendClient>) {
    let text = std::fs::read_to_string(daemon.config_path()).unwrap();
    let loaded = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    (text, loaded.config.radius_frontend.clients)
}

/// The `[[radius_frontend.clients]]` table of the client with `id`, as written.
fn saved_table(text: &str, id: u32) -> String {
    text.split("[[radius_frontend.clients]]")
        .skip(1)
        .map(|table| table.split("\n[").next().unwrap_or(table))
        .find(|table| table.contains(&format!("\nid = {id}\n")))
        .unwrap_or_else(|| panic!("no client {id} in:\n{text}"))
        .to_owned()
}

#[test]
fn radsec_clients_carry_their_tls_keys() {
    let pki = Pki::new("radsec-clients");
    let ca = pki.ca_path.to_str().unwrap().to_owned();
    let daemon = Daemon::start(Some(&config()));

    // Over TLS the secret may be left out: the client uses RFC 6614's "radsec", and the list
    // shows "" for it, cloaked or not.
    let added = post(
        &daemon,
        &json!({"name": "vpn", "address": "127.0.0.1", "transport": "tls", "tls_ca": ca,
                "tls_name": "vpn.example.net"}),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    let vpn = json!({"id": 1, "name": "vpn", "address": "127.0.0.1", "secret": "",
                     "require_message_authenticator": "auto", "transport": "tls",
                     "tls_ca": ca, "tls_name": "vpn.example.net"});
    assert_eq!(added.json(), vpn);
    // UDP clients show none of the extensions; the same network over UDP and over TLS is two
    // clients; a TLS client's secret, when it has one, is cloaked like any other.
    let udp = post(
        &daemon,
        &json!({"name": "pam", "address": "10.0.0.0/8", "secret": "pam-secret-0123456789",
                "transport": "udp", "tls_ca": "", "tls_name": ""}),
    );
    assert_eq!(udp.status, 201, "{}", udp.body);
    let pam = json!({"id": 2, "name": "pam", "address": "10.0.0.0/8", "secret": CLOAK,
                     "require_message_authenticator": "auto"});
    assert_eq!(udp.json(), pam);
    let keyed = post(
        &daemon,
        &json!({"name": "nas", "address": "10.0.0.0/8", "secret": "nas-secret-0123456789",
                "transport": "tls", "tls_ca": ca, "require_message_authenticator": "yes"}),
    );
    assert_eq!(keyed.status, 201, "{}", keyed.body);
    let nas = json!({"id": 3, "name": "nas", "address": "10.0.0.0/8", "secret": CLOAK,
                     "require_message_authenticator": "yes", "transport": "tls", "tls_ca": ca});
    assert_eq!(keyed.json(), nas);

    let listed = json!([vpn, pam, nas]);
    assert_eq!(list(&daemon, CLIENTS, ADMIN), listed);
    assert_eq!(list(&daemon, CLIENTS, MONITOR), listed);
    let clear = uncloaked(&daemon);
    assert_eq!(clear[0]["secret"], "");
    assert_eq!(clear[1]["secret"], "pam-secret-0123456789");
    assert_eq!(clear[2]["secret"], "nas-secret-0123456789");

    // Written to the file as the configuration spells it, defaults left out.
    let (text, saved) = saved_clients(&daemon);
    assert_eq!(saved.len(), 3);
    assert_eq!(saved[0].transport, RadiusTransport::Tls);
    assert_eq!(saved[0].tls_ca.as_deref(), Some(ca.as_str()));
    assert_eq!(saved[0].tls_name.as_deref(), Some("vpn.example.net"));
    assert!(saved[0].secret.is_empty());
    assert_eq!(saved[0].shared_secret(), b"radsec");
    let table = saved_table(&text, 1);
    assert!(table.contains("transport = \"tls\""), "{table}");
    assert!(!table.contains("secret"), "{table}");
    let table = saved_table(&text, 2);
    assert!(!table.contains("transport"), "{table}");
    assert!(!table.contains("tls_"), "{table}");
    assert_eq!(saved[2].shared_secret(), b"nas-secret-0123456789");

    // Every entry of a list, cloaked or not, sent back as it is changes nothing.
    for entries in [listed.clone(), clear.clone()] {
        for entry in entries.as_array().unwrap() {
            let id = entry["id"].as_u64().unwrap();
            let same = put(&daemon, id, &entry.to_string());
            assert_eq!(same.status, 200, "PUT {entry}: {}", same.body);
            assert_eq!(same.json(), listed[usize::try_from(id).unwrap() - 1]);
        }
    }
    assert_eq!(uncloaked(&daemon), clear);
    assert_eq!(saved_clients(&daemon).0, text);

    // "" removes an optional key.
    let nameless = put(&daemon, 1, r#"{"tls_name": ""}"#);
    assert_eq!(nameless.status, 200, "{}", nameless.body);
    let mut vpn = vpn;
    vpn.as_object_mut().unwrap().remove("tls_name");
    assert_eq!(nameless.json(), vpn);
    let (text, saved) = saved_clients(&daemon);
    assert_eq!(saved[0].tls_name, None);
    assert!(!saved_table(&text, 1).contains("tls_name"), "{text}");

    // Refused, changing nothing: back to UDP while tls_ca is still set (config validation
    // names `transport`), TLS without a CA, a relative CA, a name no certificate can carry,
    // the address of another TLS client.
    let refusals: Vec<(u32, Value, Vec<&str>)> = vec![
        (
            1,
            json!({"transport": "udp", "secret": "vpn-udp-secret-0123"}),
            vec!["transport"],
        ),
        // Without a secret as well: UDP needs one.
        (1, json!({"transport": "udp"}), vec!["secret", "transport"]),
        (1, json!({"tls_ca": ""}), vec!["tls_ca"]),
        (1, json!({"tls_ca": "ca.pem"}), vec!["tls_ca"]),
        (1, json!({"tls_name": "not a name"}), vec!["tls_name"]),
        (1, json!({"tls_ca": 5}), vec!["tls_ca"]),
        (1, json!({"tls_ca": null}), vec!["tls_ca"]),
        (1, json!({"transport": "quic"}), vec!["transport"]),
        (1, json!({"address": "10.0.0.0/8"}), vec!["address"]),
        (
            1,
            json!({"secret": CLOAK, "tls_server_name": "x"}),
            vec!["tls_server_name"],
        ),
        // Client 3 has the address over TLS already.
        (2, json!({"transport": "tls"}), vec!["address", "tls_ca"]),
        (2, json!({"tls_ca": ca}), vec!["transport"]),
        (
            3,
            json!({"transport": "udp", "tls_ca": ""}),
            vec!["address"],
        ),
    ];
    let before = uncloaked(&daemon);
    for (id, body, expected) in refusals {
        let answer = put(&daemon, id, &body.to_string());
        let mut fields = failed_fields(&answer);
        fields.sort();
        assert_eq!(fields, expected, "PUT {id} {body}: {}", answer.body);
        assert!(!answer.body.contains("secret-0123"), "{}", answer.body);
    }
    let valid = json!({"name": "new", "address": "192.0.2.0/24", "transport": "tls",
                       "tls_ca": ca});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let posts: Vec<(Value, Vec<&str>)> = vec![
        (with("tls_ca", json!("relative/ca.pem")), vec!["tls_ca"]),
        (with("tls_ca", json!("")), vec!["tls_ca"]),
        (with("tls_name", json!("not a name")), vec!["tls_name"]),
        (with("secret", json!(CLOAK)), vec!["secret"]),
        (with("address", json!("127.0.0.1")), vec!["address"]),
        (with("transport", json!("TLS")), vec!["secret", "transport"]),
        (with("tls_server_name", json!("x")), vec!["tls_server_name"]),
        (
            json!({"name": "new", "address": "192.0.2.0/24", "transport": "tls"}),
            vec!["tls_ca"],
        ),
        (json!({"transport": "tls"}), vec!["address", "name"]),
        // Over UDP the secret stays required, and the keys need TLS.
        (with("transport", json!("udp")), vec!["secret"]),
        (
            json!({"name": "new", "address": "192.0.2.0/24", "transport": "udp",
                   "tls_ca": ca, "secret": "udp-secret-0123456789"}),
            vec!["transport"],
        ),
    ];
    for (body, expected) in posts {
        let answer = post(&daemon, &body);
        let mut fields = failed_fields(&answer);
        fields.sort();
        assert_eq!(fields, expected, "POST {body}: {}", answer.body);
    }
    assert_eq!(uncloaked(&daemon), before);
    assert_eq!(saved_clients(&daemon).0, text);

    // Back to UDP, removing the TLS keys in the same request and giving a secret.
    let back = put(
        &daemon,
        1,
        r#"{"transport": "udp", "tls_ca": "", "secret": "vpn-udp-secret-0123"}"#,
    );
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(
        back.json(),
        json!({"id": 1, "name": "vpn", "address": "127.0.0.1", "secret": CLOAK,
               "require_message_authenticator": "auto"})
    );
    let (text, saved) = saved_clients(&daemon);
    assert_eq!(saved[0].transport, RadiusTransport::Udp);
    assert_eq!(
        (saved[0].tls_ca.as_ref(), saved[0].tls_name.as_ref()),
        (None, None)
    );
    assert_eq!(saved[0].shared_secret(), b"vpn-udp-secret-0123");
    let table = saved_table(&text, 1);
    assert!(
        !table.contains("transport") && !table.contains("tls_"),
        "{table}"
    );

    // And to TLS again, dropping the secret: "radsec" from then on.
    let again = put(
        &daemon,
        1,
        &json!({"transport": "tls", "tls_ca": ca, "secret": ""}).to_string(),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json(), vpn);
    let (_, saved) = saved_clients(&daemon);
    assert_eq!(saved[0].transport, RadiusTransport::Tls);
    assert_eq!(saved[0].shared_secret(), b"radsec");

    // The OpenAPI document describes the extensions as optional.
    let doc = daemon
        .request("GET", "/api/openapi.json", Auth::None, None)
        .json();
    let schemas = &doc["components"]["schemas"];
    for schema in ["RadiusClientView", "NewRadiusClient", "RadiusClientUpdate"] {
        let properties = &schemas[schema]["properties"];
        for key in ["transport", "tls_ca", "tls_name"] {
            assert!(
                properties[key].is_object(),
                "{schema}.{key}: {}",
                schemas[schema]
            );
        }
        let required = schemas[schema]["required"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for key in ["transport", "tls_ca", "tls_name", "secret"] {
            let always = schema == "RadiusClientView" && key == "secret";
            assert_eq!(required.contains(&json!(key)), always, "{schema}.{key}");
        }
    }
    assert_eq!(
        schemas["RadiusClientTransport"]["enum"],
        json!(["udp", "tls"]),
        "{schemas}"
    );

    // A restarted daemon has the same clients.
    let before = uncloaked(&daemon);
    let daemon = daemon.restart();
    assert_eq!(uncloaked(&daemon), before);
}
