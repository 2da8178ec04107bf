//! Fuzz checks for the RADIUS codec.
//!
//! Input framing: `packet` and `roundtrip` take the whole input as one received datagram.
//! `password` takes the first octet as the password length (mod 129), then that many octets
//! of password, then the rest as the shared secret; it also feeds the whole input to
//! [`recover_password`] as a hidden value. `stream` takes the first octet's low 3 bits as a
//! count `k`, the next `k` octets as the sizes of successive reads (cycled; 0 reads as much as
//! [`Framer::spare`] offers), and the rest as the octets of a RadSec stream.

use std::vec::Vec;

use crate::radius::{
    Builder, FrameError, Framer, HEADER_LEN, MAX_PACKET_LEN, MAX_PASSWORD_LEN, Packet, Secret,
    frame_len, hide_password, recover_password,
};

/// The RADIUS fuzz targets.
pub const TARGETS: &[super::Target] = &[
    ("radius_packet", packet),
    ("radius_roundtrip", roundtrip),
    ("radius_password", password),
    ("radius_stream", stream),
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

/// How framing a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    /// A Length field out of range (RFC 2865 §3).
    Failed(FrameError),
    /// The stream ran out with this many octets of an incomplete packet buffered.
    Buffered(usize),
}

/// Framing is independent of how the stream is cut into reads: a [`Framer`] fed in the reads
/// the input chooses and one fed in reads as large as it allows both yield the packets that
/// [`frame_len`] walking the whole stream finds, each 20..=4096 octets (RFC 2865 §3) and as
/// long as its own Length field, and stop at the same error or with the same octets left
/// buffered. The framer never offers an empty buffer while a packet is incomplete, and an
/// error sticks.
pub fn stream(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let Some((sizes, stream)) = rest.split_at_checked(usize::from(head & 0x07)) else {
        return;
    };

    // The reference: frame_len over the whole stream, packet after packet.
    let mut expected: Vec<&[u8]> = Vec::new();
    let mut offset = 0;
    let end = loop {
        let pending = stream.get(offset..).unwrap_or_default();
        match frame_len(pending) {
            Ok(Some(len)) => {
                expected.push(&pending[..len]);
                offset += len;
            }
            Ok(None) => break StreamEnd::Buffered(pending.len()),
            Err(e) => break StreamEnd::Failed(e),
        }
    };
    for packet in &expected {
        assert!((HEADER_LEN..=MAX_PACKET_LEN).contains(&packet.len()));
        assert_eq!(
            usize::from(u16::from_be_bytes([packet[2], packet[3]])),
            packet.len()
        );
    }

    feed(stream, sizes, &expected, end);
    feed(stream, &[], &expected, end);
}

/// Feeds `stream` to a new [`Framer`] in reads of `sizes` (cycled; 0, or no sizes, for as much
/// as [`Framer::spare`] offers), draining [`Framer::next_packet`] after each read, and checks
/// it yields `expected` then ends as `end`.
fn feed(stream: &[u8], sizes: &[u8], expected: &[&[u8]], end: StreamEnd) {
    let mut framer = Framer::new();
    let mut got = 0usize;
    let mut rest = stream;
    let mut sizes = sizes.iter().cycle();
    let ended = 'read: loop {
        loop {
            match framer.next_packet() {
                Ok(Some(packet)) => {
                    assert!((HEADER_LEN..=MAX_PACKET_LEN).contains(&packet.len()));
                    assert_eq!(
                        usize::from(u16::from_be_bytes([packet[2], packet[3]])),
                        packet.len(),
                        "a packet is as long as its Length field"
                    );
                    assert_eq!(Some(&packet), expected.get(got), "packet {got}");
                    got += 1;
                }
                Ok(None) => break,
                Err(e) => break 'read StreamEnd::Failed(e),
            }
        }
        if rest.is_empty() {
            break StreamEnd::Buffered(framer.buffered());
        }
        let spare = framer.spare();
        assert!(
            !spare.is_empty(),
            "no room to read while a packet is incomplete"
        );
        let want = match sizes.next() {
            Some(&size) if size > 0 => usize::from(size),
            _ => spare.len(),
        };
        let n = want.min(spare.len()).min(rest.len());
        spare[..n].copy_from_slice(&rest[..n]);
        framer.filled(n);
        rest = &rest[n..];
    };
    assert_eq!(got, expected.len(), "packets before the end");
    assert_eq!(ended, end);
    if let StreamEnd::Failed(e) = ended {
        let buffered = framer.buffered();
        assert!(
            framer.spare().is_empty(),
            "a failed framer takes no more octets"
        );
        framer.filled(1);
        assert_eq!(framer.buffered(), buffered);
        assert_eq!(framer.next_packet(), Err(e), "the error sticks");
    }
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
        // Two reads of 1 and 7 octets cycled over two requests, a cut-off third, a bad Length.
        let mut input = std::vec![0x02, 1, 7];
        input.extend_from_slice(&request);
        input.extend_from_slice(&request);
        input.extend_from_slice(&request[..10]);
        stream(&input);
        input.truncate(3 + 2 * request.len());
        input.extend_from_slice(&[0x01, 0x00, 0x10, 0x01]);
        stream(&input);
        stream(&[]);
        stream(&[0x07, 0, 0]);
    }
}
