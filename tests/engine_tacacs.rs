//! The authentication engine with TACACS+ in the sequence: AV-pair role mapping end to end
//! through the TACACS+ test server, failover between TACACS+ servers, and the walk moving from
//! a silent RADIUS method on to TACACS+.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use portcullis::engine::{Engine, Outcome, Reason};
use portcullis_config::{Config, Method};
use support::tacacs_server::{Config as ServerConfig, KEY, Misbehaviour, TacacsServer, User};

fn tacacs_server_entry(id: u32, addr: SocketAddr, protocol: &str) -> String {
    format!(
        r#"
[[tacacs.servers]]
id = {id}
order = {id}
address = "{}"
port = {}
secret = "{KEY}"
protocol = "{protocol}"
client_port = "portcullis-test"
"#,
        addr.ip(),
        addr.port()
    )
}

/// Sequence `sequence`, the given TACACS+ servers (and optional RADIUS servers), mappings
/// Administrator <- role=admin and Operator <- priv-lvl=1.
fn config(sequence: u8, tacacs: &[String], radius: &str, extra: &str) -> Config {
    let toml = format!(
        r#"
[authentication]
current_sequence = {sequence}
dead_time = 60
{extra}

[radius.settings]
connection_timeout = 1
max_number_of_tries = 1
{radius}

[tacacs.settings]
connection_timeout = 1
auth_service = "portcullis"

{servers}

[[tacacs.role_mappings]]
role = "Administrator"
attribute = "role"
attribute_value = "admin"

[[tacacs.role_mappings]]
role = "Operator"
attribute = "priv-lvl"
attribute_value = "1"
"#,
        servers = tacacs.join("\n")
    );
    Config::from_toml(&toml)
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
        .config
}

fn users() -> Vec<User> {
    vec![
        User::new("tina", "tina-pw", &[("role", "admin"), ("priv-lvl", "15")]),
        User::new("otto", "otto-pw", &[("priv-lvl", "1")]),
        User::new("nora", "nora-pw", &[("shell", "none")]),
    ]
}

#[tokio::test]
async fn av_pairs_map_to_roles() {
    for protocol in ["PAP", "ASCII"] {
        let server = TacacsServer::start(ServerConfig::new(users()));
        let engine = Engine::new(&config(
            4,
            &[tacacs_server_entry(1, server.addr(), protocol)],
            "",
            "",
        ))
        .unwrap();
        let tina = engine.authenticate("tina", b"tina-pw").await;
        assert_eq!(
            tina.outcome,
            Outcome::Accept(vec!["Administrator".into()]),
            "{protocol}"
        );
        assert_eq!(tina.method, Some(Method::Tacacs));
        let otto = engine.authenticate("otto", b"otto-pw").await;
        assert_eq!(otto.outcome, Outcome::Accept(vec!["Operator".into()]));
        // Authenticated, but no mapping matches and there is no default role.
        let nora = engine.authenticate("nora", b"nora-pw").await;
        assert_eq!(nora.outcome, Outcome::Reject(Reason::NoRoleMapped));
        let wrong = engine.authenticate("tina", b"nope").await;
        assert!(matches!(wrong.outcome, Outcome::Reject(_)), "{wrong:?}");
        // The authorization asked for the configured service, from the configured port.
        let received = server.received();
        assert!(
            received
                .authorizations
                .iter()
                .all(|a| a.args.contains(&"service=portcullis".to_string())
                    && a.port == "portcullis-test")
        );
    }
}

#[tokio::test]
async fn broken_server_fails_over_and_is_marked_dead() {
    let mut broken_config = ServerConfig::new(users());
    broken_config.authen_misbehaviour = Some(Misbehaviour::Garbage);
    let broken = TacacsServer::start(broken_config);
    let good = TacacsServer::start(ServerConfig::new(users()));
    let engine = Engine::new(&config(
        4,
        &[
            tacacs_server_entry(1, broken.addr(), "PAP"),
            tacacs_server_entry(2, good.addr(), "PAP"),
        ],
        "",
        "",
    ))
    .unwrap();
    let first = engine.authenticate("tina", b"tina-pw").await;
    assert!(matches!(first.outcome, Outcome::Accept(_)), "{first:?}");
    assert_eq!(
        first.server.as_deref(),
        Some(format!("127.0.0.1:{}", good.addr().port()).as_str())
    );
    let connections = broken.received().connections;
    assert_eq!(connections, 1);
    // Dead now: the next login does not touch it.
    let second = engine.authenticate("tina", b"tina-pw").await;
    assert!(matches!(second.outcome, Outcome::Accept(_)));
    assert_eq!(broken.received().connections, connections);
}

#[tokio::test]
async fn refused_connections_make_tacacs_unavailable() {
    // A port nobody listens on: bind, note it, close.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let engine = Engine::new(&config(4, &[tacacs_server_entry(1, closed, "PAP")], "", "")).unwrap();
    let decision = engine.authenticate("tina", b"tina-pw").await;
    let Outcome::Unavailable(reason) = &decision.outcome else {
        panic!("{decision:?}");
    };
    assert!(reason.contains("no TACACS+ server answered"), "{reason}");
}

#[tokio::test]
async fn silent_radius_moves_the_walk_on_to_tacacs() {
    // Sequence 1: Local, RADIUS, TACACS+. RADIUS is one silent server.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let radius = format!(
        r#"
[[radius.servers]]
id = 1
order = 1
address = "127.0.0.1"
port = {}
secret = "radius-secret-0123456789"
"#,
        silent.local_addr().unwrap().port()
    );
    let server = TacacsServer::start(ServerConfig::new(users()));
    let engine = Engine::new(&config(
        1,
        &[tacacs_server_entry(1, server.addr(), "PAP")],
        &radius,
        "",
    ))
    .unwrap();
    let decision = engine.authenticate("tina", b"tina-pw").await;
    assert_eq!(
        decision.outcome,
        Outcome::Accept(vec!["Administrator".into()])
    );
    assert_eq!(decision.method, Some(Method::Tacacs));
    assert!(
        decision.latency >= Duration::from_secs(1),
        "{:?}",
        decision.latency
    );
    let mut buf = [0u8; 4096];
    silent.set_nonblocking(true).unwrap();
    assert!(silent.recv(&mut buf).is_ok(), "RADIUS was asked first");
}
