#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The RadSec front-end (`listeners.radsec`) of the real daemon, driven by a rustls client:
//! PAP over TLS 1.3 and 1.2 with the `radsec` secret, several requests in flight on one
//! connection, Status-Server; clients identified by certificate (CA, name) and address, and
//! everything else closed before a packet is read; the connection cap, the idle timeout and
//! an impossible Length; a second factor (Access-Challenge and State) and the lockout on a
//! connection; the engine's own RadSec client speaking RADIUS/1.1 to it.
//! radsecproxy and pyrad2 as real RadSec clients are in tests/radsecproxy.rs and
//! tests/pyrad2.rs.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use portcullis_protocol::radius::{Builder, Code, Packet, Secret, attr_type};
use rustls::pki_types::ServerName;
use support::daemon::Daemon;
use support::pki::{Issued, Pki, Usage, client_config};

/// Upper bound on connecting, the handshake and one exchange.
const IO_LIMIT: Duration = Duration::from_secs(10);
const RADSEC: &[u8] = b"radsec";

/// The server and client PKIs of one test.
struct Setup {
    server_pki: Pki,
    client_pki: Pki,
    server: Issued,
    vpn: Issued,
}

impl Setup {
    fn new() -> Setup {
        let server_pki = Pki::new("radsec-front");
        let client_pki = Pki::new("radsec-clients");
        let server = server_pki.issue("gateway", &["127.0.0.1"], Usage::Server);
        let vpn = client_pki.issue("vpn", &["vpn.example.net"], Usage::Client);
        Setup {
            server_pki,
            client_pki,
            server,
            vpn,
        }
    }

    /// A daemon with the RadSec front-end on, one RadSec client `vpn` at 127.0.0.1 whose
    /// certificate must name `vpn.example.net`, and a local user `alice`; `extra` goes into
    /// `[radius_frontend]`.
    fn daemon(&self, extra: &str) -> Daemon {
        self.daemon_with(extra, "")
    }

    /// [`Setup::daemon`] with `tail` (further sections) at the end of the file.
    fn daemon_with(&self, extra: &str, tail: &str) -> Daemon {
        let hash = portcullis::engine::local::hash_password(b"alice-pw").unwrap();
        let daemon = Daemon::start(Some(&format!(
            r#"
[listeners]
api = ["127.0.0.1:0"]
radsec = ["127.0.0.1:0"]

[radius_frontend]
tls_certificate = "{cert}"
tls_key = "{key}"
{extra}

[[radius_frontend.clients]]
id = 1
name = "vpn"
address = "127.0.0.1"
transport = "tls"
tls_ca = "{ca}"
tls_name = "vpn.example.net"

[[local_users]]
name = "alice"
password_hash = "{hash}"
roles = ["Operator"]

{tail}
"#,
            cert = self.server.cert_path.display(),
            key = self.server.key_path.display(),
            ca = self.client_pki.ca_path.display(),
        )));
        assert!(daemon.radsec_addr.is_some(), "{}", daemon.log());
        daemon
    }

    /// A rustls client trusting the server's CA, speaking `version`, presenting `me`.
    fn client(
        &self,
        version: &'static rustls::SupportedProtocolVersion,
        me: Option<&Issued>,
    ) -> Arc<rustls::ClientConfig> {
        client_config(&self.server_pki.ca_der, version, me)
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> Tls {
    let tcp = TcpStream::connect_timeout(&addr, IO_LIMIT).unwrap();
    tcp.set_read_timeout(Some(IO_LIMIT)).unwrap();
    tcp.set_write_timeout(Some(IO_LIMIT)).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(config.clone(), name).unwrap();
    rustls::StreamOwned::new(connection, tcp)
}

/// A signed PAP Access-Request (or a Status-Server when `user` is empty) and its Request
/// Authenticator.
fn request(id: u8, user: &str, password: &str) -> (Vec<u8>, [u8; 16]) {
    request_with_state(id, user, password, None)
}

/// [`request`] with a State attribute.
fn request_with_state(
    id: u8,
    user: &str,
    password: &str,
    state: Option<&[u8]>,
) -> (Vec<u8>, [u8; 16]) {
    let secret = Secret::new(RADSEC);
    let mut authenticator = [0u8; 16];
    getrandom::fill(&mut authenticator).unwrap();
    let mut buf = [0u8; 4096];
    let code = if user.is_empty() {
        Code::StatusServer
    } else {
        Code::AccessRequest
    };
    let mut builder = Builder::new(&mut buf, code, id, &authenticator).unwrap();
    builder.message_authenticator().unwrap();
    if !user.is_empty() {
        builder
            .attribute(attr_type::USER_NAME, user.as_bytes())
            .unwrap();
        builder.user_password(password.as_bytes(), &secret).unwrap();
    }
    if let Some(state) = state {
        builder.attribute(attr_type::STATE, state).unwrap();
    }
    let len = builder.finish_request(&secret).unwrap();
    (buf[..len].to_vec(), authenticator)
}

/// Reads one packet framed by its Length.
fn read_packet(tls: &mut Tls) -> std::io::Result<Vec<u8>> {
    let mut packet = vec![0u8; 4];
    tls.read_exact(&mut packet)?;
    let len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    assert!((20..=4096).contains(&len), "reply length {len}");
    packet.resize(len, 0);
    tls.read_exact(&mut packet[4..])?;
    Ok(packet)
}

/// Sends a login and returns the verified reply.
fn login(tls: &mut Tls, id: u8, user: &str, password: &str) -> Packet<Vec<u8>> {
    login_with_state(tls, id, user, password, None)
}

/// [`login`] answering an Access-Challenge with its `state`.
fn login_with_state(
    tls: &mut Tls,
    id: u8,
    user: &str,
    password: &str,
    state: Option<&[u8]>,
) -> Packet<Vec<u8>> {
    let (packet, authenticator) = request_with_state(id, user, password, state);
    tls.write_all(&packet).unwrap();
    tls.flush().unwrap();
    let reply = Packet::new_checked(read_packet(tls).unwrap()).unwrap();
    assert_eq!(reply.identifier(), id);
    reply
        .verify_reply(&authenticator, &Secret::new(RADSEC))
        .expect("signed with the RadSec secret");
    reply
}

/// Whether the server closes `tls` (or fails it) before it yields a packet.
fn closed_without_reply(mut tls: Tls, send: &[u8]) -> bool {
    // The handshake completes lazily: the write may succeed or fail.
    let _ = tls.write_all(send).and_then(|()| tls.flush());
    read_packet(&mut tls).is_err()
}

#[test]
fn logins_over_radsec_with_the_radsec_secret() {
    let setup = Setup::new();
    let daemon = setup.daemon("");
    let addr = daemon.radsec_addr.unwrap();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut tls = connect(addr, &setup.client(version, Some(&setup.vpn)));
        let accepted = login(&mut tls, 1, "alice", "alice-pw");
        assert_eq!(accepted.code(), Code::AccessAccept, "{version:?}");
        assert_eq!(
            accepted.find(attr_type::CLASS).unwrap().value(),
            b"Operator"
        );
        let rejected = login(&mut tls, 2, "alice", "wrong");
        assert_eq!(rejected.code(), Code::AccessReject);
        let alive = login(&mut tls, 3, "", "");
        assert_eq!(alive.code(), Code::AccessAccept);
    }

    // Several requests in flight on one connection, written in one go: every one answered,
    // matched by Identifier.
    let mut tls = connect(
        addr,
        &setup.client(&rustls::version::TLS13, Some(&setup.vpn)),
    );
    let mut batch = Vec::new();
    let mut authenticators = Vec::new();
    for id in 10..20u8 {
        let password = if id % 2 == 0 { "alice-pw" } else { "wrong" };
        let (packet, authenticator) = request(id, "alice", password);
        batch.extend_from_slice(&packet);
        authenticators.push((id, authenticator));
    }
    tls.write_all(&batch).unwrap();
    tls.flush().unwrap();
    let mut seen = Vec::new();
    for _ in 0..authenticators.len() {
        let reply = Packet::new_checked(read_packet(&mut tls).unwrap()).unwrap();
        let id = reply.identifier();
        let (_, authenticator) = authenticators.iter().find(|(i, _)| *i == id).unwrap();
        reply
            .verify_reply(authenticator, &Secret::new(RADSEC))
            .unwrap();
        let expected = if id % 2 == 0 {
            Code::AccessAccept
        } else {
            Code::AccessReject
        };
        assert_eq!(reply.code(), expected, "{id}");
        seen.push(id);
    }
    seen.sort_unstable();
    assert_eq!(seen, (10..20).collect::<Vec<u8>>());
    assert!(daemon.wait_for_log("RadSec front-end: connection", IO_LIMIT));
}

#[test]
fn only_a_configured_client_certificate_gets_in() {
    let setup = Setup::new();
    let daemon = setup.daemon("");
    let addr = daemon.radsec_addr.unwrap();
    let (packet, _) = request(1, "alice", "alice-pw");
    let tls13 = &rustls::version::TLS13;

    // No certificate, one of another CA, one of the right CA with another name, an expired
    // one: closed, never answered.
    let stranger = Pki::new("radsec-stranger").issue("vpn", &["vpn.example.net"], Usage::Client);
    let misnamed = setup
        .client_pki
        .issue("other", &["other.example.net"], Usage::Client);
    let expired = setup
        .client_pki
        .issue_expired("old", &["vpn.example.net"], Usage::Client);
    for (what, me) in [
        ("no certificate", None),
        ("another CA", Some(&stranger)),
        ("another name", Some(&misnamed)),
        ("expired", Some(&expired)),
    ] {
        let tls = connect(addr, &setup.client(tls13, me));
        assert!(closed_without_reply(tls, &packet), "{what}");
    }
    assert!(
        daemon.wait_for_log("no client matches the address and certificate", IO_LIMIT),
        "{}",
        daemon.log()
    );
    // The right one still gets in.
    let mut tls = connect(addr, &setup.client(tls13, Some(&setup.vpn)));
    assert_eq!(
        login(&mut tls, 1, "alice", "alice-pw").code(),
        Code::AccessAccept
    );
    let metrics = daemon.request("GET", "/metrics", support::daemon::Auth::None, None);
    let count = |result: &str| {
        let prefix = format!("portcullis_radsec_connections_total{{result=\"{result}\"}} ");
        metrics
            .body
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(count("refused"), Some(4.0), "{}", metrics.body);
    assert_eq!(count("accepted"), Some(1.0), "{}", metrics.body);
}

#[test]
fn connections_are_capped_and_idle_ones_closed() {
    let setup = Setup::new();
    let daemon = setup.daemon("max_connections = 2\nidle_timeout = 2");
    let addr = daemon.radsec_addr.unwrap();
    let config = setup.client(&rustls::version::TLS13, Some(&setup.vpn));
    let mut first = connect(addr, &config);
    let mut second = connect(addr, &config);
    assert_eq!(
        login(&mut first, 1, "alice", "alice-pw").code(),
        Code::AccessAccept
    );
    assert_eq!(
        login(&mut second, 1, "alice", "alice-pw").code(),
        Code::AccessAccept
    );
    let (packet, _) = request(1, "alice", "alice-pw");
    assert!(closed_without_reply(connect(addr, &config), &packet));
    assert!(daemon.wait_for_log("too many connections", IO_LIMIT));

    // Both go idle and are closed by the server (reads see the end of the stream within the
    // bounded read timeout).
    assert!(read_packet(&mut first).is_err());
    assert!(read_packet(&mut second).is_err());
    assert!(daemon.wait_for_log("idle connection closed", IO_LIMIT));
    // Their places are free again.
    let mut third = connect(addr, &config);
    assert_eq!(
        login(&mut third, 1, "alice", "alice-pw").code(),
        Code::AccessAccept
    );
}

#[test]
fn an_impossible_length_closes_the_connection() {
    let setup = Setup::new();
    let daemon = setup.daemon("");
    let addr = daemon.radsec_addr.unwrap();
    let config = setup.client(&rustls::version::TLS13, Some(&setup.vpn));
    let mut tls = connect(addr, &config);
    let (mut packet, _) = request(1, "alice", "alice-pw");
    packet[2..4].copy_from_slice(&5000u16.to_be_bytes());
    tls.write_all(&packet).unwrap();
    tls.flush().unwrap();
    assert!(read_packet(&mut tls).is_err());
    assert!(
        daemon.wait_for_log("unframeable packet", IO_LIMIT),
        "{}",
        daemon.log()
    );
    // A new connection is served.
    let mut tls = connect(addr, &config);
    assert_eq!(
        login(&mut tls, 1, "alice", "alice-pw").code(),
        Code::AccessAccept
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_speaks_radius_1_1_to_a_gateway() {
    // The engine's RadSec client offers RADIUS/1.1 by ALPN, the front-end prefers it: the
    // login goes with a Token and the password as is, inside TLS 1.3.
    let setup = Setup::new();
    let front = setup.daemon("");
    let addr = front.radsec_addr.unwrap();
    let toml = format!(
        "[authentication]\ncurrent_sequence = 3\n\n\
         [radius.settings]\nconnection_timeout = 5\nmax_number_of_tries = 1\n\n\
         [[radius.servers]]\nid = 1\norder = 1\naddress = \"127.0.0.1\"\nport = {}\n\
         transport = \"tls\"\ntls_ca = \"{}\"\ntls_certificate = \"{}\"\ntls_key = \"{}\"\n\n\
         [[radius.role_mappings]]\nrole = \"Monitor\"\nattribute = 25\n\
         attribute_value = \"Operator\"\n",
        addr.port(),
        setup.server_pki.ca_path.display(),
        setup.vpn.cert_path.display(),
        setup.vpn.key_path.display(),
    );
    let engine = portcullis::engine::Engine::new(
        &portcullis_config::Config::from_toml(&toml).unwrap().config,
    )
    .unwrap();
    let accepted = engine.authenticate("alice", b"alice-pw").await;
    assert_eq!(
        accepted.outcome,
        portcullis::engine::Outcome::Accept(vec!["Monitor".into()])
    );
    let rejected = engine.authenticate("alice", b"wrong").await;
    assert!(
        matches!(rejected.outcome, portcullis::engine::Outcome::Reject(_)),
        "{rejected:?}"
    );
    assert!(
        front.wait_for_log("version=\"RADIUS/1.1\"", IO_LIMIT),
        "{}",
        front.log()
    );
}

#[test]
fn check_config_reads_the_radsec_files() {
    let setup = Setup::new();
    let check = |cert: &std::path::Path, key: &std::path::Path, ca: &std::path::Path| {
        let path = setup.client_pki.dir().join("portcullis.toml");
        std::fs::write(
            &path,
            format!(
                "[listeners]\nradsec = [\"127.0.0.1:2083\"]\n\n\
                 [radius_frontend]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\n\n\
                 [[radius_frontend.clients]]\nid = 1\nname = \"vpn\"\naddress = \"10.0.0.0/8\"\n\
                 transport = \"tls\"\ntls_ca = \"{}\"\n",
                cert.display(),
                key.display(),
                ca.display()
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
    let (cert, key) = (&setup.server.cert_path, &setup.server.key_path);
    let (code, stderr) = check(cert, key, &setup.client_pki.ca_path);
    assert_eq!(code, Some(0), "{stderr}");
    let missing = setup.client_pki.dir().join("missing-ca.pem");
    let (code, stderr) = check(cert, key, &missing);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("radius_frontend.clients[0].tls_ca") && stderr.contains("missing-ca.pem"),
        "{stderr}"
    );
    // A key that is not the certificate's; its contents never reach the message.
    let (code, stderr) = check(cert, &setup.vpn.key_path, &setup.client_pki.ca_path);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("radius_frontend.tls_key"), "{stderr}");
    let key_pem = std::fs::read_to_string(&setup.vpn.key_path).unwrap();
    assert!(
        !stderr.contains(key_pem.lines().nth(1).unwrap()),
        "{stderr}"
    );
}

#[test]
fn second_factor_and_lockout_over_radsec() {
    let setup = Setup::new();
    let daemon = setup.daemon_with(
        "",
        "[mfa.policy]\nrequired = \"roles\"\nroles = [\"Operator\"]\n\n\
         [throttle]\nmax_failures = 3\n",
    );
    let partial = support::mfa::partial_login(&daemon, "alice", "alice-pw");
    let mut device = support::mfa::enrol(&daemon, support::daemon::Auth::Bearer(&partial), "phone");
    let addr = daemon.radsec_addr.unwrap();
    let mut tls = connect(
        addr,
        &setup.client(&rustls::version::TLS13, Some(&setup.vpn)),
    );

    // The password earns a challenge; the code, sent back with its State on the same
    // connection, the accept with the roles.
    let challenge = login(&mut tls, 1, "alice", "alice-pw");
    assert_eq!(challenge.code(), Code::AccessChallenge);
    let state = challenge.state().unwrap().to_vec();
    let accepted = login_with_state(&mut tls, 2, "alice", &device.next_code(), Some(&state));
    assert_eq!(accepted.code(), Code::AccessAccept);
    assert_eq!(
        accepted.find(attr_type::CLASS).unwrap().value(),
        b"Operator"
    );
    // The State is spent.
    let replayed = login_with_state(&mut tls, 3, "alice", &device.next_code(), Some(&state));
    assert_eq!(replayed.code(), Code::AccessReject);

    // Wrong passwords lock the user, over RadSec as over UDP; then even the right one is
    // refused with the lockout's message.
    for id in 10..13 {
        let rejected = login(&mut tls, id, "alice", "wrong");
        assert_eq!(rejected.code(), Code::AccessReject);
    }
    let locked = login(&mut tls, 20, "alice", "alice-pw");
    assert_eq!(locked.code(), Code::AccessReject);
    assert_eq!(
        locked.find(attr_type::REPLY_MESSAGE).unwrap().value(),
        portcullis::throttle::RADIUS_LOCKED.as_bytes()
    );
}
