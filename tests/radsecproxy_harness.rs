#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Checks the radsecproxy test harness (`tests/support/radsecproxy.rs`) without portcullis:
//! radclient sends RADIUS/UDP to radsecproxy, which forwards it over RadSec (RFC 6614) to
//! FreeRADIUS' RadSec listener (`FreeRadius::start_radsec`). Covers accept and reject, a
//! required client certificate, TLS 1.2 and 1.3, the server name checks, and that a server
//! certificate from another CA or a client certificate FreeRADIUS does not trust stops the
//! connection.

mod support;

use std::time::Duration;

use support::freeradius::{ALICE_PASSWORD, BOB_PASSWORD, DEFAULT_USERS, FreeRadius};
use support::pki::{Pki, Usage};
use support::radsecproxy::{CLIENT_SECRET, RadsecProxy, TLS_ANY, TLS1_2_ONLY, TLS1_3_ONLY};

/// Upper bound on radsecproxy connecting to FreeRADIUS (its first attempt is immediate).
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

fn radsec_addr(server: &FreeRadius) -> std::net::SocketAddr {
    server.radsec_addr.expect("a RadSec listener")
}

#[test]
fn radsecproxy_relays_pap_to_freeradius_over_radsec() {
    let pki = Pki::new("rsp-open");
    let server_cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let client_cert = pki.issue("client", &["127.0.0.1"], Usage::Client);
    let server = FreeRadius::start_radsec(DEFAULT_USERS, &server_cert, &pki.ca_path, false);

    let proxy = RadsecProxy::start(radsec_addr(&server), &pki.ca_path, &client_cert, None);
    assert_eq!(proxy.udp_addr.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_eq!(proxy.client_secret, CLIENT_SECRET);
    assert!(
        proxy.wait_for_upstream(CONNECT_LIMIT),
        "no TLS connection:\n{}",
        proxy.log()
    );

    let accept = proxy.radclient_pap("alice", ALICE_PASSWORD);
    assert!(accept.received("Access-Accept"), "{accept:?}");
    // FreeRADIUS' reply attributes come through radsecproxy, re-signed for the UDP client.
    assert!(
        accept.stdout.contains("Class = 0x61646d696e73"),
        "{accept:?}"
    );
    assert!(
        accept.stdout.contains("Portcullis-Test-Role = \"2\""),
        "{accept:?}"
    );

    let reject = proxy.radclient_pap("alice", "wrong");
    assert!(reject.received("Access-Reject"), "{reject:?}");

    let bob = proxy.radclient_pap("bob", BOB_PASSWORD);
    assert!(bob.received("Access-Accept"), "{bob:?}");

    // FreeRADIUS saw the requests on its TLS listener, from the RadSec client.
    let log = server.log();
    assert!(log.contains("(TLS)"), "{log}");
    assert!(log.contains("User-Name = \"alice\""), "{log}");
}

#[test]
fn radsecproxy_presents_its_client_certificate() {
    let pki = Pki::new("rsp-strict");
    let server_cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let client_cert = pki.issue("client", &["127.0.0.1"], Usage::Client);
    let server = FreeRadius::start_radsec(DEFAULT_USERS, &server_cert, &pki.ca_path, true);

    // The certificate name is checked against the address radsecproxy connects to.
    let proxy = RadsecProxy::start(
        radsec_addr(&server),
        &pki.ca_path,
        &client_cert,
        Some("127.0.0.1"),
    );
    assert!(
        proxy.wait_for_upstream(CONNECT_LIMIT),
        "no TLS connection:\n{}",
        proxy.log()
    );
    let accept = proxy.radclient_pap("alice", ALICE_PASSWORD);
    assert!(accept.received("Access-Accept"), "{accept:?}");
    let reject = proxy.radclient_pap("alice", "wrong");
    assert!(reject.received("Access-Reject"), "{reject:?}");
}

#[test]
fn radsecproxy_speaks_tls_1_2_and_1_3() {
    let pki = Pki::new("rsp-versions");
    let server_cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let client_cert = pki.issue("client", &["127.0.0.1"], Usage::Client);
    let server = FreeRadius::start_radsec(DEFAULT_USERS, &server_cert, &pki.ca_path, true);

    for version in [TLS1_2_ONLY, TLS1_3_ONLY, TLS_ANY] {
        let proxy = RadsecProxy::start_with_tls_version(
            radsec_addr(&server),
            &pki.ca_path,
            &client_cert,
            None,
            version,
        );
        assert!(
            proxy.wait_for_upstream(CONNECT_LIMIT),
            "{version}: no TLS connection:\n{}",
            proxy.log()
        );
        let accept = proxy.radclient_pap("alice", ALICE_PASSWORD);
        assert!(accept.received("Access-Accept"), "{version}: {accept:?}");
    }
}

#[test]
fn radsecproxy_checks_the_server_name() {
    let pki = Pki::new("rsp-names");
    let server_cert = pki.issue(
        "server",
        &["radsec.portcullis.test", "127.0.0.1"],
        Usage::Server,
    );
    let client_cert = pki.issue("client", &["127.0.0.1"], Usage::Client);
    let server = FreeRadius::start_radsec(DEFAULT_USERS, &server_cert, &pki.ca_path, false);
    let addr = radsec_addr(&server);

    // Names the certificate carries: a DNS name (any case) and the address.
    for name in [
        "radsec.portcullis.test",
        "RADSEC.portcullis.test",
        "127.0.0.1",
    ] {
        let proxy = RadsecProxy::start(addr, &pki.ca_path, &client_cert, Some(name));
        assert!(
            proxy.wait_for_upstream(CONNECT_LIMIT),
            "{name}: no TLS connection:\n{}",
            proxy.log()
        );
        let accept = proxy.radclient_pap("alice", ALICE_PASSWORD);
        assert!(accept.received("Access-Accept"), "{name}: {accept:?}");
    }

    // Names it does not carry: radsecproxy drops the connection after the handshake.
    for name in ["other.portcullis.test", "portcullis.test", "127.0.0.2"] {
        let proxy = RadsecProxy::start(addr, &pki.ca_path, &client_cert, Some(name));
        assert!(
            proxy.wait_for_log("not matching for host", CONNECT_LIMIT),
            "{name}: no failed name check:\n{}",
            proxy.log()
        );
        assert!(proxy.upstream_failed(), "{name}:\n{}", proxy.log());
        assert!(!proxy.upstream_up(), "{name}: connected:\n{}", proxy.log());
    }
}

#[test]
fn radsecproxy_fails_with_untrusted_certificates() {
    let pki = Pki::new("rsp-trust");
    let server_cert = pki.issue("server", &["127.0.0.1"], Usage::Server);
    let client_cert = pki.issue("client", &["127.0.0.1"], Usage::Client);
    let stranger_pki = Pki::new("rsp-stranger");
    let stranger_cert = stranger_pki.issue("stranger", &["127.0.0.1"], Usage::Client);
    let server = FreeRadius::start_radsec(DEFAULT_USERS, &server_cert, &pki.ca_path, true);
    let addr = radsec_addr(&server);

    // radsecproxy trusts another CA than the one that signed FreeRADIUS' certificate.
    let distrustful = RadsecProxy::start(addr, &stranger_pki.ca_path, &client_cert, None);
    assert!(
        distrustful.wait_for_upstream_failure(CONNECT_LIMIT),
        "no failed connection:\n{}",
        distrustful.log()
    );
    assert!(
        distrustful.log().contains("certificate verify failed"),
        "{}",
        distrustful.log()
    );
    assert!(!distrustful.upstream_up());

    // FreeRADIUS requires a client certificate from its CA; radsecproxy presents another.
    // Over TLS 1.3 radsecproxy sees the handshake complete, then the connection closed.
    for version in [TLS1_2_ONLY, TLS1_3_ONLY] {
        let stranger =
            RadsecProxy::start_with_tls_version(addr, &pki.ca_path, &stranger_cert, None, version);
        assert!(
            stranger.wait_for_upstream_failure(CONNECT_LIMIT),
            "{version}: no failed connection:\n{}",
            stranger.log()
        );
    }
    // Nothing reaches FreeRADIUS then: radclient gets no answer.
    let stranger = RadsecProxy::start(addr, &pki.ca_path, &stranger_cert, None);
    assert!(stranger.wait_for_upstream_failure(CONNECT_LIMIT));
    let nothing = stranger.radclient_pap("alice", ALICE_PASSWORD);
    assert!(
        !nothing.received("Access-Accept") && !nothing.received("Access-Reject"),
        "{nothing:?}"
    );
    assert!(!server.log().contains("User-Name = \"alice\""));
}
