#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! TACACS+ over TLS 1.3 (RFC 9887): the upstream client against the test server wrapped in
//! TLS (rustls), with certificates of a throwaway CA. Cleartext bodies with the UNENCRYPTED
//! flag both ways; an obfuscated reply over TLS, a TLS 1.2-only server, an untrusted, expired
//! or wrongly named certificate are refused, never an accept. The last test logs in through
//! the real daemon configured with `transport = "tls"`.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use portcullis::upstream::tacacs::{Answer, ClientError, Key, Protocol, ServerSpec, TacacsClient};
use portcullis::upstream::tls::{TlsKeys, tls13_client};
use portcullis_protocol::tacacs::{self, Flags};
use serde_json::json;
use support::daemon::{ADMIN_PASSWORD, Auth, Daemon};
use support::pki::{Issued, Pki, Usage, server_config};
use support::tacacs_server::{Config, TacacsServer, User};

const TIMEOUT: Duration = Duration::from_secs(2);

fn users() -> Vec<User> {
    vec![User::new("alice", "alice-pw", &[("role", "admin")])]
}

/// A TLS server with `cert`, TLS 1.3 unless `versions` says otherwise.
fn tls_server(
    cert: &Issued,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client_ca: Option<&rustls::pki_types::CertificateDer<'static>>,
    adjust: impl FnOnce(&mut Config),
) -> TacacsServer {
    let mut config = Config {
        // Over TLS no key obfuscates anything; the server has none to agree on.
        key: String::new(),
        single_connect: true,
        tls: Some(server_config(cert, versions, client_ca)),
        ..Config::new(users())
    };
    adjust(&mut config);
    TacacsServer::start(config)
}

fn client(
    addr: SocketAddr,
    protocol: Protocol,
    ca: &Pki,
    name: &str,
    me: Option<&Issued>,
) -> TacacsClient {
    let tls = tls13_client(TlsKeys {
        ca: Some(ca.ca_path.to_str().unwrap()),
        server_name: name,
        certificate: me.map(|c| (c.cert_path.to_str().unwrap(), c.key_path.to_str().unwrap())),
    })
    .unwrap();
    TacacsClient::new(ServerSpec {
        addr,
        key: Key::new(&b""[..]),
        protocol,
        client_port: "tty-tls".into(),
        timeout: TIMEOUT,
        tls: Some(tls),
    })
}

async fn login(client: &TacacsClient, password: &str) -> Result<Answer, ClientError> {
    client
        .authenticate("alice", password.as_bytes(), "192.0.2.10", "portcullis")
        .await
}

#[tokio::test]
async fn pap_and_ascii_logins_over_tls_are_cleartext_inside_tls() {
    let pki = Pki::new("tacacs");
    let cert = pki.issue("server", &["127.0.0.1", "tacacs.test"], Usage::Server);
    let server = tls_server(&cert, &[&rustls::version::TLS13], None, |_| {});
    for protocol in [Protocol::Pap, Protocol::Ascii] {
        // Verified by IP address (the default: the server's address) and by DNS name.
        for name in ["127.0.0.1", "tacacs.test"] {
            let client = client(server.addr(), protocol, &pki, name, None);
            let answer = login(&client, "alice-pw").await.unwrap();
            assert!(
                matches!(&answer, Answer::Accept { av_pairs, .. }
                    if av_pairs.contains(&("role".into(), "admin".into()))),
                "{protocol:?} {name}: {answer:?}"
            );
            let answer = login(&client, "wrong").await.unwrap();
            assert!(matches!(answer, Answer::Reject { .. }), "{answer:?}");
        }
    }
    let received = server.received();
    assert_eq!(received.malformed, 0, "{received:?}");
    assert_eq!(received.starts.len(), 8);
    assert_eq!(received.authorizations.len(), 4);
    // RFC 9887 §4: every packet carries the UNENCRYPTED flag; the server read the cleartext.
    assert!(
        received
            .starts
            .iter()
            .all(|s| s.header.flags.contains(Flags::UNENCRYPTED))
    );
    assert!(
        received
            .authorizations
            .iter()
            .all(|a| a.header.flags.contains(Flags::UNENCRYPTED))
    );
    assert!(received.starts.iter().any(|s| s.data == b"alice-pw"));
    // Single-connect over TLS: one connection per client (four clients).
    assert_eq!(received.connections, 4, "{received:?}");
}

#[tokio::test]
async fn an_obfuscated_reply_over_tls_is_refused() {
    let pki = Pki::new("tacacs");
    let cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let server = tls_server(&cert, &[&rustls::version::TLS13], None, |config| {
        config.key = "a-key-nobody-should-use".into();
        config.tls_obfuscate = true;
    });
    let client = client(server.addr(), Protocol::Pap, &pki, "127.0.0.1", None);
    let error = login(&client, "alice-pw").await.unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Malformed {
                source: tacacs::Error::Obfuscated,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn servers_that_fail_verification_or_offer_tls_1_2_only_are_refused() {
    let pki = Pki::new("tacacs");
    let good = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let expired = pki.issue_expired("expired", &["127.0.0.1"], Usage::Server);
    let stranger = Pki::new("stranger").issue("server", &["127.0.0.1"], Usage::Server);
    let tls13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let cases = [
        ("a certificate of another CA", &stranger, tls13, "127.0.0.1"),
        ("an expired certificate", &expired, tls13, "127.0.0.1"),
        ("a certificate for another name", &good, tls13, "other.test"),
        (
            "a TLS 1.2-only server",
            &good,
            &[&rustls::version::TLS12][..],
            "127.0.0.1",
        ),
    ];
    for (case, cert, versions, name) in cases {
        let server = tls_server(cert, versions, None, |_| {});
        let client = client(server.addr(), Protocol::Pap, &pki, name, None);
        let error = login(&client, "alice-pw").await.unwrap_err();
        assert!(
            matches!(error, ClientError::Handshake(_)),
            "{case}: {error:?}"
        );
        let received = server.received();
        assert!(received.starts.is_empty(), "{case}: {received:?}");
    }
}

#[tokio::test]
async fn a_server_that_asks_for_a_client_certificate_gets_ours() {
    let pki = Pki::new("tacacs");
    let cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let me = pki.issue("portcullis", &["portcullis.test"], Usage::Client);
    let server = tls_server(&cert, &[&rustls::version::TLS13], Some(&pki.ca_der), |_| {});
    let with = client(server.addr(), Protocol::Pap, &pki, "127.0.0.1", Some(&me));
    let answer = login(&with, "alice-pw").await.unwrap();
    assert!(matches!(answer, Answer::Accept { .. }), "{answer:?}");
    // Without it the server ends the handshake (TLS 1.3: after the client's Finished, so the
    // client learns it on its first read or write).
    let without = client(server.addr(), Protocol::Pap, &pki, "127.0.0.1", None);
    let error = login(&without, "alice-pw").await.unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Handshake(_) | ClientError::ConnectionLost { .. }
        ),
        "{error:?}"
    );
    assert_eq!(server.received().starts.len(), 1);
}

#[test]
fn the_daemon_logs_in_over_tls() {
    let pki = Pki::new("tacacs");
    let cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let server = tls_server(&cert, &[&rustls::version::TLS13], None, |_| {});
    let daemon = Daemon::start(Some(&format!(
        r#"
[authentication]
current_sequence = 4

[[tacacs.servers]]
id = 1
order = 1
address = "{ip}"
port = {port}
transport = "tls"
tls_ca = "{ca}"

[[tacacs.role_mappings]]
role = "Administrator"
attribute = "role"
attribute_value = "admin"
"#,
        ip = server.addr().ip(),
        port = server.addr().port(),
        ca = pki.ca_path.display(),
    )));
    let login = |password: &str| {
        daemon.request(
            "POST",
            "/api/auth/1.0/login",
            Auth::None,
            Some(&json!({"username": "alice", "password": password}).to_string()),
        )
    };
    let accepted = login("alice-pw");
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.json()["roles"], json!(["Administrator"]));
    let rejected = login("wrong");
    assert_eq!(rejected.status, 401, "{}", rejected.body);
    let received = server.received();
    assert_eq!(received.starts.len(), 2);
    assert!(
        received
            .starts
            .iter()
            .all(|s| s.header.flags.contains(Flags::UNENCRYPTED))
    );
    // A server over TLS is not warned about as unprotected.
    assert!(
        !daemon.log().contains("TACACS+ server without TLS"),
        "{}",
        daemon.log()
    );
}

#[test]
fn check_config_reads_the_tls_files() {
    let pki = Pki::new("tacacs");
    let me = pki.issue("portcullis", &["portcullis.test"], Usage::Client);
    let other = pki.issue("other", &["other.test"], Usage::Client);
    let check = |keys: &str| {
        let path = pki.dir().join("portcullis.toml");
        std::fs::write(
            &path,
            format!(
                "[[tacacs.servers]]\nid = 1\norder = 1\naddress = \"127.0.0.1\"\n\
                 transport = \"tls\"\n{keys}\n"
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ca = pki.ca_path.display();
    let (code, stderr) = check(&format!("tls_ca = \"{ca}\""));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = check(&format!(
        "tls_ca = \"{ca}\"\ntls_certificate = \"{}\"\ntls_key = \"{}\"",
        me.cert_path.display(),
        me.key_path.display()
    ));
    assert_eq!(code, Some(0), "{stderr}");
    let missing = pki.dir().join("missing.pem");
    let (code, stderr) = check(&format!("tls_ca = \"{}\"", missing.display()));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("missing.pem"), "{stderr}");
    // A key that is not the certificate's.
    let (code, stderr) = check(&format!(
        "tls_ca = \"{ca}\"\ntls_certificate = \"{}\"\ntls_key = \"{}\"",
        me.cert_path.display(),
        other.key_path.display()
    ));
    assert_eq!(code, Some(2), "{stderr}");
    // The key's contents never reach the message.
    let key_pem = std::fs::read_to_string(&other.key_path).unwrap();
    let body = key_pem.lines().nth(1).unwrap();
    assert!(!stderr.contains(body), "{stderr}");
}

#[test]
fn the_management_api_configures_a_server_over_tls() {
    let pki = Pki::new("tacacs");
    let cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let server = tls_server(&cert, &[&rustls::version::TLS13], None, |_| {});
    let hash = portcullis::engine::local::hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    let daemon = Daemon::start(Some(&format!(
        "[authentication]\ncurrent_sequence = 4\n\n\
         [[tacacs.role_mappings]]\nrole = \"Administrator\"\nattribute = \"role\"\n\
         attribute_value = \"admin\"\n\n\
         [[local_users]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n\
         roles = [\"Administrator\"]\n"
    )));
    let admin = Auth::Basic("admin", ADMIN_PASSWORD);
    const SERVERS: &str = "/api/mgmt.remote_authentication/1.0/tacacs/server";
    let post =
        |body: serde_json::Value| daemon.request("POST", SERVERS, admin, Some(&body.to_string()));
    let login = || {
        daemon.request(
            "POST",
            "/api/auth/1.0/login",
            Auth::None,
            Some(&json!({"username": "alice", "password": "alice-pw"}).to_string()),
        )
    };
    // A CA bundle that does not exist is refused with the reason, and nothing changes.
    let missing = pki.dir().join("missing.pem");
    let refused = post(json!({
        "address": "127.0.0.1", "port": server.addr().port(), "secret": "unused-over-tls",
        "transport": "tls", "tls_ca": missing.display().to_string(),
    }));
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("missing.pem"), "{}", refused.body);
    let listed = daemon.request("GET", SERVERS, admin, None);
    assert_eq!(listed.json(), json!([]), "{}", listed.body);

    let added = post(json!({
        "address": "127.0.0.1", "port": server.addr().port(), "secret": "unused-over-tls",
        "transport": "tls", "tls_ca": pki.ca_path.display().to_string(),
    }));
    assert_eq!(added.status, 204, "{}", added.body);
    let listed = daemon.request("GET", SERVERS, admin, None).json();
    assert_eq!(listed[0]["transport"], "tls", "{listed}");
    assert_eq!(
        listed[0]["tls_ca"],
        pki.ca_path.display().to_string(),
        "{listed}"
    );
    assert!(listed[0].get("tls_key").is_none(), "{listed}");
    let accepted = login();
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(server.received().starts.len(), 1);

    // Back to TCP the TLS keys must go too; then the server is a plain one, port kept.
    let id = listed[0]["server_id"].as_u64().unwrap();
    let path = format!("{SERVERS}/{id}");
    let put =
        |body: serde_json::Value| daemon.request("PUT", &path, admin, Some(&body.to_string()));
    // An empty secret is refused even where none is used.
    let empty = put(json!({"secret": ""}));
    assert_eq!(empty.status, 400, "{}", empty.body);
    let kept_keys = put(json!({"transport": "tcp"}));
    assert_eq!(kept_keys.status, 400, "{}", kept_keys.body);
    let plain = put(json!({"transport": "tcp", "tls_ca": ""}));
    assert_eq!(plain.status, 204, "{}", plain.body);
    let listed = daemon.request("GET", SERVERS, admin, None).json();
    assert!(listed[0].get("transport").is_none(), "{listed}");
    assert!(listed[0].get("tls_ca").is_none(), "{listed}");
    assert_eq!(listed[0]["port"], server.addr().port(), "{listed}");
    // A plain TCP client cannot talk to the TLS server: the login is unavailable, never an
    // accept.
    let unavailable = login();
    assert_ne!(unavailable.status, 200, "{}", unavailable.body);
    assert_eq!(server.received().starts.len(), 1);
}
