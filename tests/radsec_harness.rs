#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The RadSec side of the FreeRADIUS test harness (`FreeRadius::start_radsec`): a PAP
//! Access-Request over TLS 1.2 and TLS 1.3 is answered by FreeRADIUS, with and without a
//! required client certificate, and again after a restart on the same port.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use portcullis_protocol::radius::{Builder, Code, Packet, Secret, attr_type};
use rustls::pki_types::ServerName;
use support::freeradius::{ALICE_PASSWORD, DEFAULT_USERS, FreeRadius, RADSEC_SECRET};
use support::pki::{Pki, Usage, client_config};

/// Upper bound on connecting, the handshake and one exchange.
const IO_LIMIT: Duration = Duration::from_secs(10);

/// Sends one PAP Access-Request for `user` over a new TLS connection to `addr` and returns
/// the verified reply, or the I/O error that ended the exchange.
fn exchange(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    user: &str,
    password: &str,
) -> std::io::Result<Packet<Vec<u8>>> {
    let secret = Secret::new(RADSEC_SECRET.as_bytes());
    let mut authenticator = [0u8; 16];
    getrandom::fill(&mut authenticator).unwrap();
    let mut request = [0u8; 4096];
    let mut builder = Builder::new(&mut request, Code::AccessRequest, 7, &authenticator).unwrap();
    builder.message_authenticator().unwrap();
    builder
        .attribute(attr_type::USER_NAME, user.as_bytes())
        .unwrap();
    builder.user_password(password.as_bytes(), &secret).unwrap();
    let len = builder.finish_request(&secret).unwrap();

    let tcp = TcpStream::connect_timeout(&addr, IO_LIMIT)?;
    tcp.set_read_timeout(Some(IO_LIMIT))?;
    tcp.set_write_timeout(Some(IO_LIMIT))?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(config.clone(), name).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    tls.write_all(&request[..len])?;
    tls.flush()?;

    // RFC 6614 §2.2: packets go over TLS as they are; the Length field delimits them.
    let mut reply = vec![0u8; 4];
    tls.read_exact(&mut reply)?;
    let length = usize::from(u16::from_be_bytes([reply[2], reply[3]]));
    assert!((20..=4096).contains(&length), "reply length {length}");
    reply.resize(length, 0);
    tls.read_exact(&mut reply[4..])?;

    let reply = Packet::new_checked(reply).expect("a well-formed reply");
    assert_eq!(reply.identifier(), 7);
    reply
        .verify_reply(&authenticator, &secret)
        .expect("a reply signed with the RadSec secret");
    Ok(reply)
}

/// [`exchange`] that must succeed with `code`.
fn expect_code(
    server: &FreeRadius,
    config: &Arc<rustls::ClientConfig>,
    password: &str,
    code: Code,
) -> Packet<Vec<u8>> {
    let addr = server.radsec_addr.expect("a RadSec listener");
    let reply = exchange(addr, config, "alice", password)
        .unwrap_or_else(|e| panic!("RadSec exchange with {addr}: {e}"));
    assert_eq!(reply.code(), code, "{:?}", reply.as_bytes());
    reply
}

#[test]
fn freeradius_answers_radsec() {
    let pki = Pki::new("radsec-harness");
    let server_cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let client_cert = pki.issue("client", &["127.0.0.1"], Usage::Client);
    let stranger_pki = Pki::new("radsec-stranger");
    let stranger_cert = stranger_pki.issue("stranger", &["127.0.0.1"], Usage::Client);

    let mut open = FreeRadius::start_radsec(DEFAULT_USERS, &server_cert, &pki.ca_path, false);
    let strict = FreeRadius::start_radsec(DEFAULT_USERS, &server_cert, &pki.ca_path, true);
    let open_addr = open.radsec_addr.expect("a RadSec listener");
    assert_eq!(open_addr.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_ne!(strict.radsec_addr, Some(open_addr));

    let tls13 = &rustls::version::TLS13;
    let tls12 = &rustls::version::TLS12;

    // No client certificate needed: TLS 1.3 and 1.2, the same users file as over UDP.
    let reply = expect_code(
        &open,
        &client_config(&pki.ca_der, tls13, None),
        ALICE_PASSWORD,
        Code::AccessAccept,
    );
    assert_eq!(reply.find(attr_type::CLASS).unwrap().value(), b"admins");
    expect_code(
        &open,
        &client_config(&pki.ca_der, tls12, None),
        ALICE_PASSWORD,
        Code::AccessAccept,
    );
    expect_code(
        &open,
        &client_config(&pki.ca_der, tls13, None),
        "wrong",
        Code::AccessReject,
    );
    // Without `require_client_cert` FreeRADIUS asks for no certificate; a client that has one
    // gets through all the same.
    expect_code(
        &open,
        &client_config(&pki.ca_der, tls13, Some(&client_cert)),
        ALICE_PASSWORD,
        Code::AccessAccept,
    );

    // The UDP listener of the same instance answers as before.
    assert!(
        open.radtest("pap", "alice", ALICE_PASSWORD)
            .received("Access-Accept")
    );

    // A restart keeps the port.
    open.restart();
    assert_eq!(open.radsec_addr, Some(open_addr));
    expect_code(
        &open,
        &client_config(&pki.ca_der, tls13, None),
        ALICE_PASSWORD,
        Code::AccessAccept,
    );

    // A required client certificate: signed by the CA it works, over both versions ...
    for version in [tls13, tls12] {
        expect_code(
            &strict,
            &client_config(&pki.ca_der, version, Some(&client_cert)),
            ALICE_PASSWORD,
            Code::AccessAccept,
        );
    }
    // ... without one, or with one from another CA, the exchange fails.
    let strict_addr = strict.radsec_addr.unwrap();
    for version in [tls13, tls12] {
        for client in [None, Some(&stranger_cert)] {
            let config = client_config(&pki.ca_der, version, client);
            match exchange(strict_addr, &config, "alice", ALICE_PASSWORD) {
                Err(_) => {}
                Ok(reply) => panic!(
                    "{version:?} with client certificate {:?} answered {:?}",
                    client.map(|c| &c.cert_path),
                    reply.code()
                ),
            }
        }
    }
}
