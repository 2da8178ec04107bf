//! Fuzz checks for the TACACS+ codec.
//!
//! Input framing, for both targets: the whole input is one TACACS+ packet, header and body.
//! Its body is obfuscated with [`KEY`] (RFC 8907 §4.5), or in cleartext when the header has
//! the UNENCRYPTED flag (both are accepted here). Octets after the length the header announces
//! are ignored, as a stream reader would leave them for the next packet.
//!
//! The body type follows from the header, as a client or server would decide it: for
//! authentication seq_no 1 is a START, other odd numbers a CONTINUE and even numbers a REPLY;
//! for authorization and accounting odd numbers are the REQUEST and even ones the reply
//! (RFC 8907 §4.1, §5, §6, §7).

use std::{fmt::Debug, vec, vec::Vec};

use crate::tacacs::{
    Arg, Args, Body, Cleartext, Header, Packet, PacketType, acct, authen, author, emit_packet,
};

/// The TACACS+ fuzz targets.
pub const TARGETS: &[super::Target] = &[("tacacs_packet", packet), ("tacacs_roundtrip", roundtrip)];

/// The shared secret every fuzz input is obfuscated with.
pub const KEY: &[u8] = b"portcullis-fuzz";

/// Header, deobfuscation and every body parser: whatever the input, nothing panics, and every
/// body that parses re-encodes to the octets it came from.
pub fn packet(data: &[u8]) {
    let header = Header::parse(data);
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let header = header.expect("Packet::new_checked accepted a header Header::parse refused");
    assert_eq!(packet.header(), header);
    let total = packet.total_len();
    assert!(total <= data.len());
    assert_eq!(packet.body().len(), total - crate::tacacs::HEADER_LEN);

    // RFC 8907 §4.1: a packet never answers itself, and the next one does unless the
    // sequence space is used up.
    assert!(header.check_reply(&header).is_err());
    if let Ok(next) = header.next() {
        assert_eq!(header.check_reply(&next), Ok(()));
        assert_eq!(next.seq_no, header.seq_no + 1);
    }

    // Every parser on the body as received, then deobfuscated.
    every_body(packet.body());
    let mut clear = data[..total].to_vec();
    let mut packet = Packet::new_checked(&mut clear[..]).expect("checked above");
    packet
        .deobfuscate(KEY, Cleartext::Allow)
        .expect("cleartext is allowed");
    let refused = Packet::new_checked(data[..total].to_vec())
        .expect("checked above")
        .deobfuscate(KEY, Cleartext::Refuse);
    assert_eq!(
        refused.is_err(),
        header.flags.contains(crate::tacacs::Flags::UNENCRYPTED)
    );
    every_body(packet.body());
}

/// parse -> emit reproduces the input: the body is parsed as the type its header implies,
/// then header and body are emitted and obfuscated again, octet for octet.
pub fn roundtrip(data: &[u8]) {
    if let Ok(reencoded) = decode(data) {
        assert_eq!(reencoded, data[..reencoded.len()]);
    }
}

/// Why [`decode`] gave up on an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The header or its length.
    Packet(crate::tacacs::Error),
    /// The body, parsed as the type the header implies.
    Body(crate::tacacs::Error),
    /// The header's type is not one RFC 8907 defines.
    UnknownType(u8),
}

/// Decodes `data` under the framing above and returns the packet emitted again from what was
/// decoded.
pub fn decode(data: &[u8]) -> Result<Vec<u8>, Rejected> {
    let packet = Packet::new_checked(data).map_err(Rejected::Packet)?;
    let header = packet.header();
    let mut clear = data[..packet.total_len()].to_vec();
    let mut packet = Packet::new_unchecked(&mut clear[..]);
    packet
        .deobfuscate(KEY, Cleartext::Allow)
        .map_err(Rejected::Packet)?;
    let body = packet.body();
    let odd = header.seq_no % 2 == 1;
    match header.packet_type {
        PacketType::Authentication if header.seq_no == 1 => reemit::<authen::Start>(&header, body),
        PacketType::Authentication if odd => reemit::<authen::Continue>(&header, body),
        PacketType::Authentication => reemit::<authen::Reply>(&header, body),
        PacketType::Authorization if odd => reemit::<author::Request>(&header, body),
        PacketType::Authorization => reemit::<author::Response>(&header, body),
        PacketType::Accounting if odd => reemit::<acct::Request>(&header, body),
        PacketType::Accounting => reemit::<acct::Reply>(&header, body),
        PacketType::Unknown(other) => Err(Rejected::UnknownType(other)),
    }
}

fn reemit<'a, B: Body<'a>>(header: &Header, body: &'a [u8]) -> Result<Vec<u8>, Rejected> {
    let parsed = B::parse(body).map_err(Rejected::Body)?;
    let mut out = vec![0u8; crate::tacacs::HEADER_LEN + body.len()];
    let written = emit_packet(&mut out, header, &parsed, KEY).expect("a parsed body re-emits");
    assert_eq!(written, out.len());
    Ok(out)
}

/// Runs every body parser on `body`; whatever parses must re-encode exactly.
fn every_body(body: &[u8]) {
    body_round_trip::<authen::Start>(body, |_| ());
    body_round_trip::<authen::Reply>(body, |_| ());
    body_round_trip::<authen::Continue>(body, |_| ());
    body_round_trip::<author::Request>(body, |request| check_args(&request.args));
    body_round_trip::<author::Response>(body, |response| check_args(&response.args));
    body_round_trip::<acct::Request>(body, |request| {
        let _ = request.flags.record();
        check_args(&request.fields.args);
    });
    body_round_trip::<acct::Reply>(body, |_| ());
}

fn body_round_trip<'a, B: Body<'a> + PartialEq + Debug>(body: &'a [u8], extra: impl Fn(&B)) {
    let Ok(parsed) = B::parse(body) else {
        return;
    };
    let _ = std::format!("{parsed:?}");
    extra(&parsed);
    assert_eq!(parsed.body_len(), Ok(body.len()));
    let mut out = vec![0u8; body.len()];
    assert_eq!(parsed.emit(&mut out), Ok(body.len()));
    assert_eq!(out, body);
    if let Some(short) = body.len().checked_sub(1) {
        assert!(parsed.emit(&mut out[..short]).is_err());
    }
}

fn check_args(args: &Args<'_>) {
    let mut count = 0;
    for arg in args {
        let mut encoded = Vec::with_capacity(arg.encoded_len());
        encoded.extend_from_slice(arg.name());
        encoded.push(arg.separator());
        encoded.extend_from_slice(arg.value());
        assert_eq!(Arg::parse(&encoded), Some(arg));
        assert_eq!(
            args.find(arg.name()).map(|found| found.name()),
            Some(arg.name())
        );
        count += 1;
    }
    assert_eq!(count, args.len());
    assert_eq!(args.iter().len(), args.len());
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The seeds are named for what they hold: `ok-*` decode and re-encode, `bad-*` are
    /// refused. Both corpora hold the same seeds.
    #[test]
    fn seeds_decode_as_their_names_say() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        let (mut ok, mut bad) = (0, 0);
        for target in ["tacacs_packet", "tacacs_roundtrip"] {
            for entry in std::fs::read_dir(root.join(target)).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let data = std::fs::read(&path).unwrap();
                if name.starts_with("ok-") {
                    let reencoded = decode(&data).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                    assert!(data.starts_with(&reencoded), "{name}");
                    ok += 1;
                } else if name.starts_with("bad-") {
                    assert!(decode(&data).is_err(), "{name} decodes");
                    bad += 1;
                }
            }
        }
        assert!(
            ok >= 2 * 7,
            "a valid seed per body type in each corpus, found {ok}"
        );
        assert!(bad >= 2, "malformed seeds in each corpus, found {bad}");
    }

    #[test]
    fn decode_reports_why() {
        assert!(matches!(decode(&[0xc0; 4]), Err(Rejected::Packet(_))));
        let mut unknown = [0xc0, 0x07, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(decode(&unknown), Err(Rejected::UnknownType(0x07)));
        unknown[1] = 0x03;
        assert!(matches!(decode(&unknown), Err(Rejected::Body(_))));
    }
}
