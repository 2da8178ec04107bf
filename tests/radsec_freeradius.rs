#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! RadSec (RFC 6614) to a real upstream: FreeRADIUS 3.2 with a TLS listener
//! (`FreeRadius::start_radsec`, certificates of a throwaway CA). The engine, built from TOML
//! with `transport = "tls"`, logs in with PAP and CHAP and maps roles; a server certificate of
//! another CA, of another name or expired is refused (the method is unavailable, never an
//! accept); a server that demands a client certificate gets ours; a restart of FreeRADIUS in
//! the middle of logins never turns into an accept and the client reconnects. The last test
//! adds a RadSec server through the management API of the real daemon and logs in through it.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use portcullis::engine::{Engine, Outcome};
use portcullis_config::Config;
use serde_json::json;
use support::daemon::{ADMIN_PASSWORD, Auth, Daemon};
use support::freeradius::{ALICE_PASSWORD, DEFAULT_USERS, FreeRadius};
use support::pki::{Issued, Pki, Usage};

/// The keys of one RadSec server entry, beyond address and port.
struct Keys<'a> {
    protocol: &'a str,
    ca: &'a Pki,
    server_name: Option<&'a str>,
    client: Option<&'a Issued>,
}

impl<'a> Keys<'a> {
    fn new(ca: &'a Pki) -> Keys<'a> {
        Keys {
            protocol: "PAP",
            ca,
            server_name: None,
            client: None,
        }
    }
}

/// Sequence 3 ("Local, RADIUS") with one RadSec server at `radius`, Class "admins" mapped to
/// Operator.
fn config(radius: &FreeRadius, keys: &Keys<'_>) -> Config {
    let addr = radius.radsec_addr.expect("a RadSec listener");
    let mut server = format!(
        "[[radius.servers]]\nid = 1\norder = 1\naddress = \"{}\"\nport = {}\n\
         transport = \"tls\"\nprotocol = \"{}\"\ntls_ca = \"{}\"\n",
        addr.ip(),
        addr.port(),
        keys.protocol,
        keys.ca.ca_path.display()
    );
    if let Some(name) = keys.server_name {
        server.push_str(&format!("tls_server_name = \"{name}\"\n"));
    }
    if let Some(client) = keys.client {
        server.push_str(&format!(
            "tls_certificate = \"{}\"\ntls_key = \"{}\"\n",
            client.cert_path.display(),
            client.key_path.display()
        ));
    }
    let toml = format!(
        "[authentication]\ncurrent_sequence = 3\n\n\
         [radius.settings]\nconnection_timeout = 3\nmax_number_of_tries = 1\n\n\
         {server}\n\
         [[radius.role_mappings]]\nrole = \"Operator\"\nattribute = 25\n\
         attribute_value = \"admins\"\n"
    );
    Config::from_toml(&toml)
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
        .config
}

fn engine(radius: &FreeRadius, keys: &Keys<'_>) -> Engine {
    Engine::new(&config(radius, keys)).unwrap()
}

/// Asserts the login is unavailable (the server was not trusted), with the reason.
async fn assert_unavailable(engine: &Engine, what: &str) {
    let decision = engine
        .authenticate("alice", ALICE_PASSWORD.as_bytes())
        .await;
    assert!(
        matches!(decision.outcome, Outcome::Unavailable(_)),
        "{what}: {decision:?}"
    );
}

#[tokio::test]
async fn pap_and_chap_logins_over_radsec_map_roles() {
    let pki = Pki::new("radsec-upstream");
    let cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let radius = FreeRadius::start_radsec(DEFAULT_USERS, &cert, &pki.ca_path, false);
    for protocol in ["PAP", "CHAP"] {
        let engine = engine(
            &radius,
            &Keys {
                protocol,
                ..Keys::new(&pki)
            },
        );
        let accepted = engine
            .authenticate("alice", ALICE_PASSWORD.as_bytes())
            .await;
        assert_eq!(
            accepted.outcome,
            Outcome::Accept(vec!["Operator".into()]),
            "{protocol}"
        );
        let rejected = engine.authenticate("alice", b"wrong").await;
        assert!(
            matches!(rejected.outcome, Outcome::Reject(_)),
            "{protocol}: {rejected:?}"
        );
        let stranger = engine.authenticate("mallory", b"anything").await;
        assert!(
            matches!(stranger.outcome, Outcome::Reject(_)),
            "{protocol}: {stranger:?}"
        );
    }
    let log = radius.log();
    assert!(log.contains("CHAP-Password"), "{log}");
    // Both arrived over the TLS listener, with the RadSec secret.
    assert!(log.contains("(TLS)"), "{log}");
}

#[tokio::test]
async fn untrusted_misnamed_and_expired_servers_are_refused() {
    let pki = Pki::new("radsec-upstream");
    let cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let radius = FreeRadius::start_radsec(DEFAULT_USERS, &cert, &pki.ca_path, false);

    let stranger = Pki::new("radsec-stranger");
    assert_unavailable(&engine(&radius, &Keys::new(&stranger)), "another CA").await;
    assert_unavailable(
        &engine(
            &radius,
            &Keys {
                server_name: Some("radius.example.net"),
                ..Keys::new(&pki)
            },
        ),
        "another name",
    )
    .await;
    // The right name works with the same CA.
    let named = engine(
        &radius,
        &Keys {
            server_name: Some("127.0.0.1"),
            ..Keys::new(&pki)
        },
    );
    let decision = named.authenticate("alice", ALICE_PASSWORD.as_bytes()).await;
    assert!(
        matches!(decision.outcome, Outcome::Accept(_)),
        "{decision:?}"
    );

    let expired = pki.issue_expired("expired", &["127.0.0.1"], Usage::Server);
    let stale = FreeRadius::start_radsec(DEFAULT_USERS, &expired, &pki.ca_path, false);
    assert_unavailable(&engine(&stale, &Keys::new(&pki)), "an expired certificate").await;
    // FreeRADIUS never saw a request from any refused connection.
    assert!(!stale.log().contains("Received Access-Request"));
}

#[tokio::test]
async fn a_server_that_demands_a_client_certificate_gets_ours() {
    let pki = Pki::new("radsec-upstream");
    let cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let me = pki.issue("portcullis", &["portcullis.test"], Usage::Client);
    let radius = FreeRadius::start_radsec(DEFAULT_USERS, &cert, &pki.ca_path, true);

    let with = engine(
        &radius,
        &Keys {
            client: Some(&me),
            ..Keys::new(&pki)
        },
    );
    let accepted = with.authenticate("alice", ALICE_PASSWORD.as_bytes()).await;
    assert_eq!(accepted.outcome, Outcome::Accept(vec!["Operator".into()]));

    assert_unavailable(&engine(&radius, &Keys::new(&pki)), "no client certificate").await;
    let other_pki = Pki::new("radsec-other");
    let other = other_pki.issue("portcullis", &["portcullis.test"], Usage::Client);
    assert_unavailable(
        &engine(
            &radius,
            &Keys {
                client: Some(&other),
                ..Keys::new(&pki)
            },
        ),
        "a client certificate of another CA",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_the_server_never_accepts_and_the_client_reconnects() {
    let pki = Pki::new("radsec-upstream");
    let cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let mut radius = FreeRadius::start_radsec(DEFAULT_USERS, &cert, &pki.ca_path, false);
    let engine = Arc::new(engine(&radius, &Keys::new(&pki)));
    let first = engine
        .authenticate("alice", ALICE_PASSWORD.as_bytes())
        .await;
    assert!(matches!(first.outcome, Outcome::Accept(_)), "{first:?}");

    // Wrong passwords all through the restart: never an accept.
    let done = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let hammer = {
        let (engine, done, attempts) = (
            Arc::clone(&engine),
            Arc::clone(&done),
            Arc::clone(&attempts),
        );
        tokio::spawn(async move {
            for _ in 0..2_000 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let decision = engine.authenticate("alice", b"wrong").await;
                assert!(
                    !matches!(decision.outcome, Outcome::Accept(_)),
                    "{decision:?}"
                );
                attempts.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // Kept until the end: dropping it stops FreeRADIUS.
    let _radius = tokio::task::spawn_blocking(move || {
        radius.stop();
        std::thread::sleep(Duration::from_millis(300));
        radius.restart();
        radius
    })
    .await
    .unwrap();

    // Reconnected within the backoff (at most a few seconds after the restart).
    let mut accepted = None;
    for _ in 0..40 {
        let decision = engine
            .authenticate("alice", ALICE_PASSWORD.as_bytes())
            .await;
        if matches!(decision.outcome, Outcome::Accept(_)) {
            accepted = Some(decision);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    done.store(true, Ordering::SeqCst);
    hammer.await.unwrap();
    assert!(accepted.is_some(), "no accept after the restart");
    assert!(attempts.load(Ordering::SeqCst) > 0);
}

#[test]
fn the_management_api_adds_a_radsec_server() {
    let pki = Pki::new("radsec-upstream");
    let cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let radius = FreeRadius::start_radsec(DEFAULT_USERS, &cert, &pki.ca_path, false);
    let addr = radius.radsec_addr.unwrap();
    let hash = portcullis::engine::local::hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    let daemon = Daemon::start(Some(&format!(
        "[authentication]\ncurrent_sequence = 3\n\n\
         [[radius.role_mappings]]\nrole = \"Operator\"\nattribute = 25\n\
         attribute_value = \"admins\"\n\n\
         [[local_users]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n\
         roles = [\"Administrator\"]\n"
    )));
    let admin = Auth::Basic("admin", ADMIN_PASSWORD);
    const SERVERS: &str = "/api/mgmt.remote_authentication/1.0/radius/server";
    let login = |password: &str| {
        daemon.request(
            "POST",
            "/api/auth/1.0/login",
            Auth::None,
            Some(&json!({"username": "alice", "password": password}).to_string()),
        )
    };
    let added = daemon.request(
        "POST",
        SERVERS,
        admin,
        Some(
            &json!({
                "address": "127.0.0.1", "port": addr.port(), "secret": "radsec",
                "protocol": "CHAP", "transport": "tls",
                "tls_ca": pki.ca_path.display().to_string(),
            })
            .to_string(),
        ),
    );
    assert_eq!(added.status, 204, "{}", added.body);
    let listed = daemon.request("GET", SERVERS, admin, None).json();
    assert_eq!(listed[0]["transport"], "tls", "{listed}");
    assert_eq!(listed[0]["port"], addr.port(), "{listed}");

    let accepted = login(ALICE_PASSWORD);
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.json()["roles"], json!(["Operator"]));
    let rejected = login("wrong");
    assert_eq!(rejected.status, 401, "{}", rejected.body);
    assert!(radius.log().contains("CHAP-Password"));
}

/// Sends `signal` (e.g. "STOP", "CONT") to `radius`.
fn signal(radius: &FreeRadius, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(radius.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_silent_connection_is_found_by_the_watchdog_before_a_login_waits_on_it() {
    let pki = Pki::new("radsec-upstream");
    let cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let radius = FreeRadius::start_radsec(DEFAULT_USERS, &cert, &pki.ca_path, false);
    let addr = radius.radsec_addr.unwrap();
    let hash = portcullis::engine::local::hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    // probe_idle stays off: over TLS the watchdog runs anyway.
    let daemon = Daemon::start(Some(&format!(
        "[authentication]\ncurrent_sequence = 3\nprobe_interval = 1\ndead_time = 300\n\n\
         [radius.settings]\nconnection_timeout = 1\nmax_number_of_tries = 1\n\n\
         [[radius.servers]]\nid = 1\norder = 1\naddress = \"127.0.0.1\"\nport = {port}\n\
         transport = \"tls\"\ntls_ca = \"{ca}\"\n\n\
         [[radius.role_mappings]]\nrole = \"Operator\"\nattribute = 25\n\
         attribute_value = \"admins\"\n\n\
         [[local_users]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n\
         roles = [\"Administrator\"]\n",
        port = addr.port(),
        ca = pki.ca_path.display(),
    )));
    let login = || {
        daemon.request(
            "POST",
            "/api/auth/1.0/login",
            Auth::None,
            Some(&json!({"username": "alice", "password": ALICE_PASSWORD}).to_string()),
        )
    };
    let alive = || {
        let answer = daemon.request(
            "GET",
            "/api/mgmt.remote_authentication/1.0/server_health",
            Auth::Basic("admin", ADMIN_PASSWORD),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()["servers"][0]["alive"].clone()
    };
    let wait_until = |what: &str, done: &dyn Fn() -> bool| {
        for _ in 0..300 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{what}:\n{}\n{}", daemon.log(), radius.log());
    };
    let accepted = login();
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    // Idle, the connection is probed and answers.
    wait_until("a Status-Server over TLS", &|| {
        radius.log().contains("Received Status-Server")
    });
    assert_eq!(alive(), json!(true));

    // The server hangs (its TCP connection stays up): the watchdog finds it, no login needed.
    signal(&radius, "STOP");
    wait_until("the hung server marked dead", &|| alive() == json!(false));
    assert!(
        // Log lines are written in batches: the line may follow the health route's answer.
        daemon.wait_for_log(
            "idle RADIUS server did not answer Status-Server",
            Duration::from_secs(5)
        ),
        "{}",
        daemon.log()
    );
    let unavailable = login();
    assert_ne!(unavailable.status, 200, "{}", unavailable.body);

    // Back, it is revived by the probes of dead servers, on a new connection.
    signal(&radius, "CONT");
    wait_until("the server alive again", &|| alive() == json!(true));
    let accepted = login();
    assert_eq!(accepted.status, 200, "{}", accepted.body);
}
