//! Fuzz checks for the RADIUS codec.
//!
//! Input framing: `packet` and `roundtrip` take the whole input as one received datagram.
//! `password` takes the first octet as the password length (mod 129), then that many octets
//! of password, then the rest as the shared secret; it also feeds the whole input to
//! [`recover_password`] as a hidden value.

use std::vec::Vec;

use crate::radius::{
    Builder, MAX_PACKET_LEN, MAX_PASSWORD_LEN, Packet, Secret, hide_password, recover_password,
};

/// The RADIUS fuzz targets.
pub const TARGETS: &[super::Target] = &[
    ("radius_packet", packet),
    ("radius_roundtrip", roundtrip),
    ("radius_password", password),
];

/// The shared secret the checks verify with.
const SECRET: &[u8] = b"portcullis-fuzz";

/// Packet parsing, attribute iteration, typed decoding, VSA decoding and verification: none
/// may panic, and a checked packet's attributes must account for every octet of it.
pub fn packet(data: &[u8]) {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let mut covered = crate::radius::HEADER_LEN;
    for avp in packet.attributes() {
        covered += 2 + avp.value().len();
        if let Ok(crate::radius::Attribute::VendorSpecific(vsa)) = avp.decode() {
            if let Some(subs) = vsa.sub_attributes() {
                let sub_len: usize = subs.map(|s| 2 + s.value.len()).sum();
                assert_eq!(
                    sub_len,
                    vsa.data().len(),
                    "sub-attributes must fill the VSA"
                );
            }
        }
    }
    assert_eq!(covered, usize::from(packet.length()));
    assert!(usize::from(packet.length()) <= MAX_PACKET_LEN);
    let authenticator = packet.authenticator();
    let _ = packet.verify_reply(&authenticator, &Secret::new(SECRET));
    let _ = packet.verify_request(&Secret::new(SECRET));
    let _ = packet.verify_accounting_request(&Secret::new(SECRET));
    let _ = packet.chap_password();
    let _ = packet.nas_ip_address();
    let _ = packet.vendor_specific().count();
}

/// A checked packet, rebuilt attribute by attribute with [`Builder`], reproduces its octets.
pub fn roundtrip(data: &[u8]) {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let mut out = [0u8; MAX_PACKET_LEN];
    let Ok(mut builder) = Builder::new(
        &mut out,
        packet.code(),
        packet.identifier(),
        &packet.authenticator(),
    ) else {
        panic!("a 4096-octet buffer holds any header");
    };
    for avp in packet.attributes() {
        if let Err(e) = builder.attribute(avp.typ(), avp.value()) {
            panic!("re-emitting a parsed attribute failed: {e}");
        }
    }
    let len = builder.finish_unsigned();
    assert_eq!(out.get(..len), Some(packet.as_bytes()));
}

/// Hiding then recovering a password gives it back (less trailing NULs, which RFC 2865 §5.2
/// padding cannot tell apart), and recovering arbitrary octets never panics.
pub fn password(data: &[u8]) {
    let mut recovered = [0u8; MAX_PASSWORD_LEN];
    let _ = recover_password(data, &Secret::new(SECRET), &[0x5a; 16], &mut recovered);

    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n) % (MAX_PASSWORD_LEN + 1);
    let Some((password, secret)) = rest.split_at_checked(n) else {
        return;
    };
    let authenticator = [0xa5; 16];
    let mut hidden = [0u8; MAX_PASSWORD_LEN];
    let Ok(hidden) = hide_password(password, &Secret::new(secret), &authenticator, &mut hidden)
    else {
        panic!("passwords up to 128 octets must hide");
    };
    let hidden: Vec<u8> = hidden.to_vec();
    let Ok(back) = recover_password(
        &hidden,
        &Secret::new(secret),
        &authenticator,
        &mut recovered,
    ) else {
        panic!("a hidden password must recover");
    };
    let end = password.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    assert_eq!(back, password.get(..end).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::testutil::hex;

    #[test]
    fn checks_accept_known_good_inputs() {
        let request = hex(
            "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a 01 06
            6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8 01 10
            05 06 00 00 00 03",
        );
        packet(&request);
        roundtrip(&request);
        password(b"\x0aarctangentxyzzy5461");
        password(&[200; 300]);
    }
}
