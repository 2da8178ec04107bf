//! The codec against packets captured from real peers: `radclient`/`radtest` requests and
//! FreeRADIUS 3.2.1 replies (see `fixtures/radius/README.md`). Every authenticator and
//! Message-Authenticator must verify with the capture's secret and fail with any other, every
//! attribute must decode, and every packet must re-encode byte for byte.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::Ipv4Addr;

use portcullis_protocol::radius::{
    Attribute, Builder, Code, Error, MAX_PASSWORD_LEN, Packet, Secret, Signature, SubAttribute,
    attr_type, recover_password, verify_chap,
};

const SECRET: &[u8] = b"testing123-portcullis";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/radius/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The request and reply of one captured exchange, both checked.
fn exchange(name: &str) -> (Vec<u8>, Vec<u8>) {
    let request = fixture(&format!("{name}-request"));
    let reply = fixture(&format!("{name}-reply"));
    Packet::new_checked(&request[..]).unwrap();
    Packet::new_checked(&reply[..]).unwrap();
    (request, reply)
}

fn recover(packet: &Packet<&[u8]>) -> Vec<u8> {
    let mut out = [0u8; MAX_PASSWORD_LEN];
    recover_password(
        packet.user_password().unwrap(),
        &Secret::new(SECRET),
        &packet.authenticator(),
        &mut out,
    )
    .unwrap()
    .to_vec()
}

#[test]
fn radclient_pap_request() {
    let (request, _) = exchange("pap-accept");
    let request = Packet::new_checked(&request[..]).unwrap();
    assert_eq!(request.code(), Code::AccessRequest);
    // radclient put the Message-Authenticator first, as listed in its input.
    assert_eq!(
        request.attributes().next().unwrap().typ(),
        attr_type::MESSAGE_AUTHENTICATOR
    );
    assert_eq!(
        request.verify_request(&Secret::new(SECRET)),
        Ok(Signature::Signed)
    );
    assert_eq!(
        request.verify_request(&Secret::new(b"testing123-portculliS")),
        Err(Error::MessageAuthenticatorMismatch)
    );
    assert_eq!(request.user_name(), Some(&b"alice"[..]));
    assert_eq!(recover(&request), b"alice-password");
    assert_eq!(request.nas_identifier(), Some(&b"portcullis-test"[..]));
    assert_eq!(request.nas_ip_address(), Ok(Some(Ipv4Addr::LOCALHOST)));
    let decoded: Vec<_> = request.attributes().map(|a| a.decode().unwrap()).collect();
    assert!(decoded.contains(&Attribute::NasPort(7)));
    assert!(decoded.contains(&Attribute::NasPortType(5)));
    assert!(decoded.contains(&Attribute::ServiceType(1)));
}

#[test]
fn freeradius_access_accept() {
    let (request, reply) = exchange("pap-accept");
    let request = Packet::new_checked(&request[..]).unwrap();
    let reply = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(reply.code(), Code::AccessAccept);
    assert_eq!(reply.identifier(), request.identifier());
    // FreeRADIUS 3.2.1 does not sign this reply.
    assert_eq!(
        reply.verify_reply(&request.authenticator(), &Secret::new(SECRET)),
        Ok(Signature::Unsigned)
    );
    assert_eq!(
        reply.verify_reply(&request.authenticator(), &Secret::new(b"wrong-secret")),
        Err(Error::AuthenticatorMismatch)
    );
    let decoded: Vec<_> = reply.attributes().map(|a| a.decode().unwrap()).collect();
    assert!(decoded.contains(&Attribute::Class(b"admins")));
    assert!(decoded.contains(&Attribute::FilterId(b"web-ro")));
    assert!(decoded.contains(&Attribute::ReplyMessage(b"Welcome alice")));
    assert!(decoded.contains(&Attribute::SessionTimeout(3600)));
    let subs: Vec<(u32, SubAttribute)> = reply
        .vendor_specific()
        .flat_map(|v| v.sub_attributes().unwrap().map(move |s| (v.vendor_id(), s)))
        .collect();
    assert_eq!(
        subs,
        [
            (
                17164,
                SubAttribute {
                    vendor_type: 1,
                    value: b"2"
                }
            ),
            (
                9,
                SubAttribute {
                    vendor_type: 1,
                    value: b"shell:priv-lvl=15"
                }
            ),
        ]
    );
}

#[test]
fn freeradius_signed_access_accept() {
    let (request, reply) = exchange("pap-accept-signed");
    let request = Packet::new_checked(&request[..]).unwrap();
    let reply = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(
        reply.verify_reply(&request.authenticator(), &Secret::new(SECRET)),
        Ok(Signature::Signed)
    );
    assert_eq!(
        reply.find_all(attr_type::CLASS).next(),
        Some(&b"signed"[..])
    );
    // Tampering with the Message-Authenticator alone is caught even though the Response
    // Authenticator is recomputed to match.
    let mut forged = reply.as_bytes().to_vec();
    let at = forged
        .windows(2)
        .skip(20)
        .position(|w| w == [attr_type::MESSAGE_AUTHENTICATOR, 18])
        .unwrap()
        + 20;
    forged[at + 2] ^= 0x80;
    let mut buf = [0u8; 4096];
    let mut b = Builder::new(&mut buf, Code::AccessAccept, reply.identifier(), &[0; 16]).unwrap();
    for avp in Packet::new_checked(&forged[..]).unwrap().attributes() {
        b.attribute(avp.typ(), avp.value()).unwrap();
    }
    // finish_reply only signs its own placeholder; the forged MA stays as copied.
    let len = b
        .finish_reply(&request.authenticator(), &Secret::new(SECRET))
        .unwrap();
    let forged = Packet::new_checked(&buf[..len]).unwrap();
    assert_eq!(
        forged.verify_reply(&request.authenticator(), &Secret::new(SECRET)),
        Err(Error::MessageAuthenticatorMismatch)
    );
}

#[test]
fn freeradius_access_reject() {
    let (request, reply) = exchange("pap-reject");
    let request = Packet::new_checked(&request[..]).unwrap();
    let reply = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(reply.code(), Code::AccessReject);
    assert_eq!(reply.attributes().count(), 0);
    assert_eq!(
        reply.verify_reply(&request.authenticator(), &Secret::new(SECRET)),
        Ok(Signature::Unsigned)
    );
    assert_eq!(recover(&request), b"not-alices-password");
}

#[test]
fn radtest_chap_request() {
    let (request, reply) = exchange("chap-accept");
    let request = Packet::new_checked(&request[..]).unwrap();
    let reply = Packet::new_checked(&reply[..]).unwrap();
    let (ident, response) = request.chap_password().unwrap().unwrap();
    // No CHAP-Challenge: the Request Authenticator is the challenge (RFC 2865 §5.3).
    let challenge = request
        .chap_challenge()
        .map_or(request.authenticator().to_vec(), <[u8]>::to_vec);
    assert!(verify_chap(ident, response, b"alice-password", &challenge));
    assert!(!verify_chap(ident, response, b"alice-passwore", &challenge));
    assert_eq!(
        request.verify_request(&Secret::new(SECRET)),
        Ok(Signature::Signed)
    );
    assert_eq!(reply.code(), Code::AccessAccept);
    assert!(
        reply
            .verify_reply(&request.authenticator(), &Secret::new(SECRET))
            .is_ok()
    );
}

#[test]
fn status_server() {
    let (request, reply) = exchange("status-server");
    let request = Packet::new_checked(&request[..]).unwrap();
    let reply = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(request.code(), Code::StatusServer);
    // RFC 5997 §3: Status-Server carries a Message-Authenticator.
    assert_eq!(
        request.verify_request(&Secret::new(SECRET)),
        Ok(Signature::Signed)
    );
    assert_eq!(reply.code(), Code::AccessAccept);
    assert!(
        reply
            .verify_reply(&request.authenticator(), &Secret::new(SECRET))
            .is_ok()
    );
}

#[test]
fn accounting() {
    let (request, reply) = exchange("accounting");
    let request = Packet::new_checked(&request[..]).unwrap();
    let reply = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(request.code(), Code::AccountingRequest);
    assert_eq!(
        request.verify_accounting_request(&Secret::new(SECRET)),
        Ok(Signature::Unsigned)
    );
    assert_eq!(
        request.verify_accounting_request(&Secret::new(b"nope")),
        Err(Error::AuthenticatorMismatch)
    );
    assert_eq!(reply.code(), Code::AccountingResponse);
    assert!(
        reply
            .verify_reply(&request.authenticator(), &Secret::new(SECRET))
            .is_ok()
    );
}

#[test]
fn every_capture_re_encodes_byte_for_byte() {
    let dir = format!("{}/tests/fixtures/radius", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let mut buf = [0u8; 4096];
        let mut b = Builder::new(
            &mut buf,
            packet.code(),
            packet.identifier(),
            &packet.authenticator(),
        )
        .unwrap();
        for avp in packet.attributes() {
            b.attribute(avp.typ(), avp.value()).unwrap();
            avp.decode()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let len = b.finish_unsigned();
        assert_eq!(&buf[..len], &bytes[..], "{}", path.display());
        // Every truncation is refused, never a panic.
        for n in 0..bytes.len() {
            assert!(Packet::new_checked(&bytes[..n]).is_err());
        }
        count += 1;
    }
    assert!(count >= 13, "expected the captured fixtures, found {count}");
}
