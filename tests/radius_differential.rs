//! Differential tests: packets built by portcullis are parsed by the independent `radius`
//! crate (radius-rs) and the other way round, and both must agree on every field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;

use ::radius::core::code::Code as TheirCode;
use ::radius::core::packet::Packet as TheirPacket;
use ::radius::core::{rfc2865, rfc2866, vsa::StringVSA};
use portcullis_protocol::radius::{
    self, Attribute, Builder, Code, MAX_PASSWORD_LEN, Packet, Secret, Signature, attr_type,
    recover_password,
};

const SECRET: &[u8] = b"differential-secret";

/// A small deterministic generator (xorshift64*) so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// A password of `n` octets without NUL: NULs are padding on the wire (RFC 2865 §5.2),
    /// and radius-rs ends a recovered password at the first one.
    fn password(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| 1 + (self.next() % 255) as u8).collect()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn our_access_request_parses_in_radius_rs() {
    let mut rng = Rng(0x5eed);
    for round in 0..200 {
        let auth: [u8; 16] = rng.bytes(16).try_into().unwrap();
        let n = rng.below(129) as usize;
        let password = rng.password(n);
        let user = format!("user{round}");
        let mut buf = [0u8; 4096];
        let mut b = Builder::access_request(&mut buf, round as u8, &auth).unwrap();
        b.attribute(attr_type::USER_NAME, user.as_bytes()).unwrap();
        b.user_password(&password, &Secret::new(SECRET)).unwrap();
        b.attribute(attr_type::NAS_IDENTIFIER, b"appliance-1")
            .unwrap();
        b.attribute_ipv4(attr_type::NAS_IP_ADDRESS, Ipv4Addr::new(127, 0, 0, 1))
            .unwrap();
        b.attribute_u32(attr_type::NAS_PORT, round).unwrap();
        b.vendor_specific(17164, &[(1, b"2")]).unwrap();
        let len = b.finish_request(&Secret::new(SECRET)).unwrap();

        let theirs = TheirPacket::decode(&buf[..len], SECRET).unwrap();
        assert_eq!(theirs.get_code(), TheirCode::AccessRequest);
        assert_eq!(theirs.get_identifier(), round as u8);
        assert_eq!(theirs.get_authenticator()[..], auth);
        assert_eq!(rfc2865::lookup_user_name(&theirs).unwrap().unwrap(), user);
        assert_eq!(
            rfc2865::lookup_user_password(&theirs).unwrap().unwrap(),
            password,
            "round {round}"
        );
        assert_eq!(
            rfc2865::lookup_nas_identifier(&theirs).unwrap().unwrap(),
            "appliance-1"
        );
        assert_eq!(
            rfc2865::lookup_nas_ip_address(&theirs).unwrap().unwrap(),
            Ipv4Addr::LOCALHOST
        );
        assert_eq!(rfc2865::lookup_nas_port(&theirs).unwrap().unwrap(), round);
        let vsa = theirs
            .lookup(attr_type::VENDOR_SPECIFIC)
            .unwrap()
            .encode_bytes();
        assert_eq!(vsa, [0, 0, 0x43, 0x0c, 1, 3, b'2']);
        // Their encoder reproduces our octets exactly (it keeps attribute order).
        assert_eq!(theirs.encode().unwrap(), buf[..len]);
    }
}

#[test]
fn radius_rs_access_request_parses_here() {
    let mut rng = Rng(42);
    for round in 0..200u32 {
        let mut theirs = TheirPacket::new(TheirCode::AccessRequest, SECRET);
        let password = {
            let n = 1 + rng.below(128) as usize;
            rng.password(n)
        };
        rfc2865::add_user_name(&mut theirs, "bob");
        rfc2865::add_user_password(&mut theirs, &password).unwrap();
        rfc2865::add_nas_port(&mut theirs, round);
        let bytes = theirs.encode().unwrap();

        let ours = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(ours.code(), Code::AccessRequest);
        assert_eq!(ours.identifier(), theirs.get_identifier());
        assert_eq!(ours.user_name(), Some(&b"bob"[..]));
        let mut out = [0u8; MAX_PASSWORD_LEN];
        let recovered = recover_password(
            ours.user_password().unwrap(),
            &Secret::new(SECRET),
            &ours.authenticator(),
            &mut out,
        )
        .unwrap();
        assert_eq!(recovered, password);
        let port = ours.find(attr_type::NAS_PORT).unwrap().decode().unwrap();
        assert_eq!(port, Attribute::NasPort(round));
    }
}

#[test]
fn radius_rs_access_accept_verifies_here() {
    let request = TheirPacket::new(TheirCode::AccessRequest, SECRET);
    let request_auth: [u8; 16] = request.get_authenticator()[..].try_into().unwrap();
    let mut accept = request.make_response_packet(TheirCode::AccessAccept);
    rfc2865::add_class(&mut accept, b"admins");
    rfc2865::add_class(&mut accept, b"auditors");
    rfc2865::add_filter_id(&mut accept, "web-ro");
    rfc2865::add_reply_message(&mut accept, "Welcome");
    rfc2865::add_session_timeout(&mut accept, 3600);
    rfc2865::add_vsa_attribute(&mut accept, &StringVSA::new(17164, 1, "2"));
    rfc2865::add_vsa_attribute(&mut accept, &StringVSA::new(9, 1, "shell:priv-lvl=15"));
    let bytes = accept.encode().unwrap();

    let ours = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(ours.code(), Code::AccessAccept);
    assert_eq!(
        ours.verify_reply(&request_auth, &Secret::new(SECRET)),
        Ok(Signature::Unsigned)
    );
    assert_eq!(
        ours.verify_reply(&request_auth, &Secret::new(b"another-secret")),
        Err(radius::Error::AuthenticatorMismatch)
    );
    let classes: Vec<_> = ours.find_all(attr_type::CLASS).collect();
    assert_eq!(classes, [&b"admins"[..], b"auditors"]);
    let decoded: Vec<_> = ours.attributes().map(|a| a.decode().unwrap()).collect();
    assert!(decoded.contains(&Attribute::FilterId(b"web-ro")));
    assert!(decoded.contains(&Attribute::ReplyMessage(b"Welcome")));
    assert!(decoded.contains(&Attribute::SessionTimeout(3600)));
    let vsas: Vec<(u32, u8, Vec<u8>)> = ours
        .vendor_specific()
        .flat_map(|v| {
            v.sub_attributes()
                .unwrap()
                .map(move |s| (v.vendor_id(), s.vendor_type, s.value.to_vec()))
        })
        .collect();
    assert_eq!(
        vsas,
        [
            (17164, 1, b"2".to_vec()),
            (9, 1, b"shell:priv-lvl=15".to_vec())
        ]
    );
}

#[test]
fn our_access_accept_verifies_in_radius_rs() {
    let request = TheirPacket::new(TheirCode::AccessRequest, SECRET);
    let request_bytes = request.encode().unwrap();
    let request_auth: [u8; 16] = request.get_authenticator()[..].try_into().unwrap();
    let mut buf = [0u8; 1024];
    let mut b = Builder::new(
        &mut buf,
        Code::AccessAccept,
        request.get_identifier(),
        &[0; 16],
    )
    .unwrap();
    b.message_authenticator().unwrap();
    b.attribute(attr_type::CLASS, b"admins").unwrap();
    b.vendor_specific(17164, &[(1, b"2")]).unwrap();
    let len = b.finish_reply(&request_auth, &Secret::new(SECRET)).unwrap();
    assert!(TheirPacket::is_authentic_response(
        &buf[..len],
        &request_bytes,
        SECRET
    ));
    assert!(!TheirPacket::is_authentic_response(
        &buf[..len],
        &request_bytes,
        b"wrong"
    ));
    let theirs = TheirPacket::decode(&buf[..len], SECRET).unwrap();
    assert_eq!(rfc2865::lookup_all_class(&theirs), [b"admins".to_vec()]);
}

#[test]
fn accounting_request_authenticators_agree() {
    // Theirs -> ours.
    let mut theirs = TheirPacket::new(TheirCode::AccountingRequest, SECRET);
    rfc2866::add_acct_status_type(&mut theirs, rfc2866::ACCT_STATUS_TYPE_START);
    rfc2865::add_user_name(&mut theirs, "carol");
    let bytes = theirs.encode().unwrap();
    let ours = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(ours.code(), Code::AccountingRequest);
    assert_eq!(
        ours.verify_accounting_request(&Secret::new(SECRET)),
        Ok(Signature::Unsigned)
    );

    // Ours -> theirs.
    let mut buf = [0u8; 256];
    let mut b = Builder::new(&mut buf, Code::AccountingRequest, 7, &[0; 16]).unwrap();
    b.attribute_u32(40, 1).unwrap();
    b.attribute(attr_type::USER_NAME, b"carol").unwrap();
    let len = b.finish_accounting_request(&Secret::new(SECRET)).unwrap();
    assert!(TheirPacket::is_authentic_request(&buf[..len], SECRET));
    assert!(!TheirPacket::is_authentic_request(&buf[..len], b"nope"));
}

#[test]
fn random_attribute_lists_agree() {
    let mut rng = Rng(7);
    for _ in 0..500 {
        let mut buf = [0u8; 4096];
        let auth: [u8; 16] = rng.bytes(16).try_into().unwrap();
        let mut b = Builder::new(&mut buf, Code::AccessAccept, rng.next() as u8, &auth).unwrap();
        let mut expected = Vec::new();
        for _ in 0..rng.below(30) {
            // Any type but Vendor-Specific typed oddities: radius-rs keeps raw values.
            let typ = 1 + rng.below(254) as u8;
            let n = 1 + rng.below(60) as usize;
            let value = rng.bytes(n);
            b.attribute(typ, &value).unwrap();
            expected.push((typ, value));
        }
        let len = b.finish_unsigned();
        let theirs = TheirPacket::decode(&buf[..len], SECRET).unwrap();
        let ours = Packet::new_checked(&buf[..len]).unwrap();
        for (typ, _) in &expected {
            let their_values: Vec<Vec<u8>> = theirs
                .lookup_all(*typ)
                .into_iter()
                .map(|a| a.encode_bytes())
                .collect();
            let our_values: Vec<Vec<u8>> = ours.find_all(*typ).map(<[u8]>::to_vec).collect();
            assert_eq!(their_values, our_values);
        }
        assert_eq!(ours.attributes().count(), expected.len());
    }
}

#[test]
fn malformed_packets_are_refused_by_both() {
    let mut p = vec![2u8, 1, 0, 24];
    p.extend_from_slice(&[0; 16]);
    // An attribute claiming 9 octets where 4 remain.
    p.extend_from_slice(&[25, 9, 1, 2]);
    assert!(Packet::new_checked(&p[..]).is_err());
    assert!(TheirPacket::decode(&p, SECRET).is_err());
    // A zero-length attribute.
    p[20..24].copy_from_slice(&[25, 0, 1, 2]);
    assert_eq!(
        Packet::new_checked(&p[..]).err(),
        Some(radius::Error::AttributeLengthTooSmall {
            offset: 20,
            length: 0
        })
    );
}
