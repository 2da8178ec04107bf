//! The RADIUS codec against a live FreeRADIUS on loopback: packets portcullis builds are sent
//! over UDP and FreeRADIUS' answers are verified and decoded by portcullis. Nothing here is a
//! fixture: both sides of every exchange come from the real peer at test time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use portcullis_protocol::radius::{
    Attribute, Builder, Code, Error, Packet, Secret, Signature, attr_type, chap_response,
};
use support::freeradius::{
    ALICE_PASSWORD, DEFAULT_SECRET, DEFAULT_USERS, FreeRadius, SIGNED_PASSWORD,
};

/// Sends `request` to `server` and returns its reply, if one comes within two seconds.
fn exchange(server: std::net::SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket.send_to(request, server).unwrap();
    let mut buf = [0u8; 4096];
    match socket.recv_from(&mut buf) {
        Ok((n, from)) => {
            assert_eq!(from, server);
            Some(buf[..n].to_vec())
        }
        Err(_) => None,
    }
}

/// An authenticator that differs per test run, as a client's would.
fn authenticator(seed: u8) -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut auth = [seed; 16];
    auth[..16].copy_from_slice(&nanos.to_be_bytes());
    auth[0] ^= seed;
    auth
}

/// A PAP Access-Request for `user`, Message-Authenticator first.
fn pap_request(
    buf: &mut [u8],
    id: u8,
    auth: &[u8; 16],
    user: &str,
    password: &str,
    secret: &[u8],
) -> usize {
    let mut b = Builder::access_request(buf, id, auth).unwrap();
    b.attribute(attr_type::USER_NAME, user.as_bytes()).unwrap();
    b.user_password(password.as_bytes(), &Secret::new(secret))
        .unwrap();
    b.attribute(attr_type::NAS_IDENTIFIER, b"portcullis-codec-test")
        .unwrap();
    b.attribute_ipv4(attr_type::NAS_IP_ADDRESS, Ipv4Addr::new(127, 0, 0, 9))
        .unwrap();
    b.finish_request(&Secret::new(secret)).unwrap()
}

#[test]
fn pap_accept_with_roles_from_live_freeradius() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let secret = DEFAULT_SECRET.as_bytes();
    let auth = authenticator(1);
    let mut buf = [0u8; 4096];
    let len = pap_request(&mut buf, 17, &auth, "alice", ALICE_PASSWORD, secret);
    let reply = exchange(server.auth_addr, &buf[..len]).expect("FreeRADIUS answered");
    let reply = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(reply.code(), Code::AccessAccept);
    assert_eq!(reply.identifier(), 17);
    assert_eq!(
        reply.verify_reply(&auth, &Secret::new(secret)),
        Ok(Signature::Unsigned)
    );
    assert_eq!(
        reply.verify_reply(&auth, &Secret::new(b"not-the-secret")),
        Err(Error::AuthenticatorMismatch)
    );
    let role = reply
        .vendor_specific()
        .filter(|v| v.vendor_id() == 17164)
        .flat_map(|v| v.sub_attributes().unwrap())
        .map(|s| s.value)
        .next();
    assert_eq!(role, Some(&b"2"[..]));
    assert_eq!(
        reply.find_all(attr_type::CLASS).next(),
        Some(&b"admins"[..])
    );
    // FreeRADIUS decoded what we sent: the attributes appear in its debug log.
    assert!(
        server.wait_for_log("portcullis-codec-test", Duration::from_secs(2)),
        "{}",
        server.log()
    );
    assert!(server.log().contains("127.0.0.9"));
}

#[test]
fn pap_reject_and_wrong_secret() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let secret = DEFAULT_SECRET.as_bytes();
    let mut buf = [0u8; 4096];
    let auth = authenticator(2);
    let len = pap_request(&mut buf, 3, &auth, "alice", "wrong-password", secret);
    let reply = exchange(server.auth_addr, &buf[..len]).expect("FreeRADIUS answered");
    let reply = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(reply.code(), Code::AccessReject);
    assert!(reply.verify_reply(&auth, &Secret::new(secret)).is_ok());

    // Signed with another secret: FreeRADIUS must drop it (bad Message-Authenticator), so no
    // answer at all.
    let auth = authenticator(3);
    let len = pap_request(
        &mut buf,
        4,
        &auth,
        "alice",
        ALICE_PASSWORD,
        b"some-other-secret",
    );
    assert_eq!(exchange(server.auth_addr, &buf[..len]), None);
}

#[test]
fn signed_reply_from_live_freeradius() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let secret = DEFAULT_SECRET.as_bytes();
    let mut buf = [0u8; 4096];
    let auth = authenticator(4);
    let len = pap_request(&mut buf, 99, &auth, "signed", SIGNED_PASSWORD, secret);
    let reply = exchange(server.auth_addr, &buf[..len]).expect("FreeRADIUS answered");
    let reply = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(reply.code(), Code::AccessAccept);
    assert_eq!(
        reply.verify_reply(&auth, &Secret::new(secret)),
        Ok(Signature::Signed)
    );
}

#[test]
fn chap_with_challenge_attribute() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let secret = DEFAULT_SECRET.as_bytes();
    let auth = authenticator(5);
    let challenge = authenticator(6);
    for (password, expected) in [
        (ALICE_PASSWORD, Code::AccessAccept),
        ("nope", Code::AccessReject),
    ] {
        let mut buf = [0u8; 4096];
        let mut b = Builder::access_request(&mut buf, 8, &auth).unwrap();
        b.attribute(attr_type::USER_NAME, b"alice").unwrap();
        b.chap_password(0x21, &chap_response(0x21, password.as_bytes(), &challenge))
            .unwrap();
        b.attribute(attr_type::CHAP_CHALLENGE, &challenge).unwrap();
        let len = b.finish_request(&Secret::new(secret)).unwrap();
        let reply = exchange(server.auth_addr, &buf[..len]).expect("FreeRADIUS answered");
        let reply = Packet::new_checked(&reply[..]).unwrap();
        assert_eq!(reply.code(), expected, "password {password:?}");
        assert!(reply.verify_reply(&auth, &Secret::new(secret)).is_ok());
    }
}

#[test]
fn status_server_and_accounting() {
    let server = FreeRadius::start(DEFAULT_USERS);
    let secret = DEFAULT_SECRET.as_bytes();
    // RFC 5997: Status-Server with a Message-Authenticator.
    let auth = authenticator(7);
    let mut buf = [0u8; 4096];
    let mut b = Builder::new(&mut buf, Code::StatusServer, 1, &auth).unwrap();
    b.message_authenticator().unwrap();
    let len = b.finish_request(&Secret::new(secret)).unwrap();
    let reply = exchange(server.auth_addr, &buf[..len]).expect("FreeRADIUS answered");
    let reply = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(reply.code(), Code::AccessAccept);
    assert!(reply.verify_reply(&auth, &Secret::new(secret)).is_ok());

    // RFC 2866: an Accounting-Request whose authenticator FreeRADIUS checks.
    let mut b = Builder::new(&mut buf, Code::AccountingRequest, 2, &[0; 16]).unwrap();
    b.attribute(attr_type::USER_NAME, b"alice").unwrap();
    b.attribute_u32(40, 1).unwrap(); // Acct-Status-Type = Start
    b.attribute(44, b"session-0001").unwrap(); // Acct-Session-Id
    let len = b.finish_accounting_request(&Secret::new(secret)).unwrap();
    let request = Packet::new_checked(&buf[..len]).unwrap();
    let request_auth = request.authenticator();
    let reply = exchange(server.acct_addr, &buf[..len]).expect("FreeRADIUS answered");
    let reply = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(reply.code(), Code::AccountingResponse);
    assert!(
        reply
            .verify_reply(&request_auth, &Secret::new(secret))
            .is_ok()
    );
    let decoded: Vec<_> = reply.attributes().map(|a| a.decode().unwrap()).collect();
    assert!(!decoded.iter().any(|a| matches!(a, Attribute::UserName(_))));
}
