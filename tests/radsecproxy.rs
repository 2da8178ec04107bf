#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! radsecproxy (Debian's 1.9) as a real RadSec client of the daemon's RadSec front-end:
//! radclient sends PAP over UDP to radsecproxy, which relays it over TLS (1.2 or 1.3) with its
//! client certificate; portcullis answers from its sequence. A radsecproxy whose certificate
//! carries another name than the client entry's `tls_name` gets nothing through.

mod support;

use std::time::Duration;

use support::daemon::Daemon;
use support::pki::{Issued, Pki, Usage};
use support::radsecproxy::{RadsecProxy, TLS_ANY, TLS1_2_ONLY, TLS1_3_ONLY};

/// How long radsecproxy gets to connect.
const CONNECT: Duration = Duration::from_secs(15);

/// A daemon whose RadSec front-end trusts `pki` for the client `vpn.example.net`, with local
/// users alice (Operator) and bob (Monitor).
fn daemon(pki: &Pki, server: &Issued) -> Daemon {
    let alice = portcullis::engine::local::hash_password(b"alice-pw").unwrap();
    let bob = portcullis::engine::local::hash_password(b"bob-pw").unwrap();
    Daemon::start(Some(&format!(
        r#"
[listeners]
api = ["127.0.0.1:0"]
radsec = ["127.0.0.1:0"]

[radius_frontend]
tls_certificate = "{cert}"
tls_key = "{key}"

[[radius_frontend.clients]]
id = 7
name = "radsecproxy"
address = "127.0.0.1"
transport = "tls"
tls_ca = "{ca}"
tls_name = "vpn.example.net"

[[local_users]]
name = "alice"
password_hash = "{alice}"
roles = ["Operator"]

[[local_users]]
name = "bob"
password_hash = "{bob}"
roles = ["Monitor"]
"#,
        cert = server.cert_path.display(),
        key = server.key_path.display(),
        ca = pki.ca_path.display(),
    )))
}

#[test]
fn radsecproxy_relays_logins_to_the_radsec_front_end() {
    let pki = Pki::new("radsecproxy");
    let server = pki.issue("gateway", &["127.0.0.1"], Usage::Server);
    let vpn = pki.issue("vpn", &["vpn.example.net"], Usage::Client);
    let daemon = daemon(&pki, &server);
    let radsec = daemon.radsec_addr.unwrap();

    for version in [TLS_ANY, TLS1_2_ONLY, TLS1_3_ONLY] {
        // The proxy checks the gateway's certificate carries 127.0.0.1.
        let proxy = RadsecProxy::start_with_tls_version(
            radsec,
            &pki.ca_path,
            &vpn,
            Some("127.0.0.1"),
            version,
        );
        assert!(
            proxy.wait_for_upstream(CONNECT),
            "{version}: {}",
            proxy.log()
        );
        let accepted = proxy.radclient_pap("alice", "alice-pw");
        assert!(
            accepted.received("Access-Accept"),
            "{version}: {accepted:?}"
        );
        // radclient prints Class in hex: "Operator".
        assert!(
            accepted.stdout.contains("Class = 0x4f70657261746f72"),
            "{accepted:?}"
        );
        let bob = proxy.radclient_pap("bob", "bob-pw");
        assert!(bob.received("Access-Accept"), "{bob:?}");
        // "Monitor".
        assert!(bob.stdout.contains("Class = 0x4d6f6e69746f72"), "{bob:?}");
        let rejected = proxy.radclient_pap("alice", "wrong");
        assert!(rejected.received("Access-Reject"), "{rejected:?}");
        let stranger = proxy.radclient_pap("mallory", "anything");
        assert!(stranger.received("Access-Reject"), "{stranger:?}");
    }
    assert!(
        daemon.wait_for_log("RadSec front-end: connection", CONNECT),
        "{}",
        daemon.log()
    );
}

#[test]
fn a_proxy_with_another_name_gets_nothing_through() {
    let pki = Pki::new("radsecproxy");
    let server = pki.issue("gateway", &["127.0.0.1"], Usage::Server);
    // Signed by the trusted CA, but not the client entry's name.
    let other = pki.issue("other", &["other.example.net"], Usage::Client);
    let daemon = daemon(&pki, &server);
    let proxy = RadsecProxy::start(daemon.radsec_addr.unwrap(), &pki.ca_path, &other, None);
    let answer = proxy.radclient_pap("alice", "alice-pw");
    assert!(!answer.received("Access-Accept"), "{answer:?}");
    assert!(!answer.received("Access-Reject"), "{answer:?}");
    assert!(
        daemon.wait_for_log("no client matches the address and certificate", CONNECT),
        "{}",
        daemon.log()
    );
}
