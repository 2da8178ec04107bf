//! RADIUS codec benchmarks, side by side with the `radius` crate (radius-rs) on the same bytes.
//!
//! - decode: a realistic Access-Accept (15 attributes, two Vendor-Specific, a
//!   Message-Authenticator first; `protocol/tests/fixtures/radius/bench-access-accept.bin`,
//!   signed by an independent Python implementation). portcullis parses it, verifies the
//!   Response Authenticator and the Message-Authenticator and walks every attribute and
//!   sub-attribute; the parse-and-walk part and the verification part are also measured alone.
//!   radius-rs decodes it, with and without its Response Authenticator check (it has no
//!   Message-Authenticator support).
//! - encode: an Access-Request with User-Name, a PAP User-Password, NAS-Identifier,
//!   NAS-IP-Address, NAS-Port and (portcullis) a Message-Authenticator.
//! - md5 floor: raw MD5 over the octets the verification hashes, for scale.
//! - stream: 64 signed Access-Requests back to back, as RadSec carries them (RFC 6614 §2.5),
//!   split into packets by a `Framer` fed in 1500-octet reads; and, as the floor without the
//!   copies, `frame_len` walking the same octets in place. radius-rs has no stream framing.
//!
//! Run: `cargo bench --bench radius_codec`.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use md5::{Digest, Md5};
use portcullis_protocol::radius::{
    Attribute, Builder, Framer, Packet, Secret, Signature, attr_type, frame_len,
};

const ACCEPT: &[u8] = include_bytes!("../protocol/tests/fixtures/radius/bench-access-accept.bin");
const SECRET: &[u8] = b"bench-secret-0123456789";
const REQUEST_AUTH: [u8; 16] = [
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

/// The request whose authenticator the Access-Accept answers, for radius-rs' check.
fn request_bytes() -> Vec<u8> {
    let mut request = vec![1u8, 0x2a, 0, 20];
    request.extend_from_slice(&REQUEST_AUTH);
    request
}

/// Parses and walks every attribute and sub-attribute, returning a digest of what it saw.
fn walk(bytes: &[u8]) -> usize {
    let Ok(packet) = Packet::new_checked(bytes) else {
        return 0;
    };
    let mut seen = 0;
    for avp in packet.attributes() {
        match avp.decode() {
            Ok(Attribute::VendorSpecific(vsa)) => {
                for sub in vsa.sub_attributes().into_iter().flatten() {
                    seen += sub.value.len();
                }
            }
            Ok(_) => seen += 1,
            Err(_) => return 0,
        }
    }
    seen
}

/// Parse, verify both authenticators, walk.
fn decode_verified(bytes: &[u8], secret: &Secret<&[u8]>) -> usize {
    let Ok(packet) = Packet::new_checked(bytes) else {
        return 0;
    };
    if packet.verify_reply(&REQUEST_AUTH, secret) != Ok(Signature::Signed) {
        return 0;
    }
    walk(bytes)
}

fn decode(c: &mut Criterion) {
    let secret = Secret::new(SECRET);
    assert!(decode_verified(ACCEPT, &secret) > 0, "fixture must verify");
    let request = request_bytes();
    let mut group = c.benchmark_group("radius/decode_access_accept");
    group.bench_function(
        "portcullis: parse + verify both authenticators + walk",
        |b| b.iter(|| decode_verified(black_box(ACCEPT), &secret)),
    );
    group.bench_function("portcullis: parse + walk", |b| {
        b.iter(|| walk(black_box(ACCEPT)))
    });
    group.bench_function("portcullis: verify_reply alone", |b| {
        b.iter(|| Packet::new_unchecked(black_box(ACCEPT)).verify_reply(&REQUEST_AUTH, &secret))
    });
    group.bench_function("radius-rs: decode", |b| {
        b.iter(|| radius::core::packet::Packet::decode(black_box(ACCEPT), SECRET).is_ok())
    });
    group.bench_function("radius-rs: decode + response authenticator", |b| {
        b.iter(|| {
            radius::core::packet::Packet::decode(black_box(ACCEPT), SECRET).is_ok()
                && radius::core::packet::Packet::is_authentic_response(
                    black_box(ACCEPT),
                    &request,
                    SECRET,
                )
        })
    });
    // The least any verifier must hash: the Response Authenticator input (packet + secret) and
    // the HMAC's inner (packet) and outer (digest) inputs, from key blocks absorbed once, as
    // `Secret` does.
    let inner_keyed = Md5::new().chain_update([0x36; 64]);
    let outer_keyed = Md5::new().chain_update([0x5c; 64]);
    group.bench_function("md5 floor: the octets verification hashes", |b| {
        b.iter(|| {
            let response: [u8; 16] = Md5::new()
                .chain_update(black_box(ACCEPT))
                .chain_update(SECRET)
                .finalize()
                .into();
            let inner: [u8; 16] = inner_keyed
                .clone()
                .chain_update(black_box(ACCEPT))
                .finalize()
                .into();
            let outer: [u8; 16] = outer_keyed.clone().chain_update(inner).finalize().into();
            (response, outer)
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let secret = Secret::new(SECRET);
    let mut group = c.benchmark_group("radius/encode_access_request");
    let mut buf = [0u8; 4096];
    group.bench_function("portcullis: PAP + Message-Authenticator", |b| {
        b.iter(|| {
            let Ok(mut builder) = Builder::access_request(&mut buf, 7, black_box(&[0x42; 16]))
            else {
                return 0;
            };
            let built = builder
                .attribute(attr_type::USER_NAME, b"alice")
                .and_then(|b| b.user_password(black_box(b"correct horse battery"), &secret))
                .and_then(|b| b.attribute(attr_type::NAS_IDENTIFIER, b"appliance-1"))
                .and_then(|b| b.attribute_ipv4(attr_type::NAS_IP_ADDRESS, Ipv4Addr::LOCALHOST))
                .and_then(|b| b.attribute_u32(attr_type::NAS_PORT, 1));
            if built.is_err() {
                return 0;
            }
            builder.finish_request(&secret).unwrap_or(0)
        })
    });
    group.bench_function("radius-rs: PAP, no Message-Authenticator", |b| {
        use radius::core::{code::Code, packet::Packet as TheirPacket, rfc2865};
        b.iter(|| {
            let mut p = TheirPacket::new(Code::AccessRequest, SECRET);
            rfc2865::add_user_name(&mut p, "alice");
            let _ = rfc2865::add_user_password(&mut p, black_box(b"correct horse battery"));
            rfc2865::add_nas_identifier(&mut p, "appliance-1");
            rfc2865::add_nas_ip_address(&mut p, &Ipv4Addr::LOCALHOST);
            rfc2865::add_nas_port(&mut p, 1);
            p.encode().map(|v| v.len()).unwrap_or(0)
        })
    });
    group.finish();
}

/// The Access-Request of the encode bench with Identifier `identifier`, signed.
fn access_request(identifier: u8, secret: &Secret<&[u8]>) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let Ok(mut builder) = Builder::access_request(&mut buf, identifier, &[identifier; 16]) else {
        return Vec::new();
    };
    let built = builder
        .attribute(attr_type::USER_NAME, b"alice")
        .and_then(|b| b.user_password(b"correct horse battery", secret))
        .and_then(|b| b.attribute(attr_type::NAS_IDENTIFIER, b"appliance-1"))
        .and_then(|b| b.attribute_ipv4(attr_type::NAS_IP_ADDRESS, Ipv4Addr::LOCALHOST))
        .and_then(|b| b.attribute_u32(attr_type::NAS_PORT, 1));
    if built.is_err() {
        return Vec::new();
    }
    let len = builder.finish_request(secret).unwrap_or(0);
    buf.get(..len).unwrap_or_default().to_vec()
}

/// Feeds `stream` to `framer` in reads of `chunk` octets, draining it after each; returns the
/// packets and octets framed.
fn frame_reads(framer: &mut Framer, stream: &[u8], chunk: usize) -> (usize, usize) {
    let (mut packets, mut octets) = (0, 0);
    for read in stream.chunks(chunk) {
        let spare = framer.spare();
        let n = read.len().min(spare.len());
        if let (Some(dst), Some(src)) = (spare.get_mut(..n), read.get(..n)) {
            dst.copy_from_slice(src);
        }
        framer.filled(n);
        while let Ok(Some(packet)) = framer.next_packet() {
            packets += 1;
            octets += packet.len();
        }
    }
    (packets, octets)
}

/// Walks `stream` with `frame_len` in place; returns the packets and octets framed.
fn frame_in_place(mut stream: &[u8]) -> (usize, usize) {
    let (mut packets, mut octets) = (0, 0);
    while let Ok(Some(len)) = frame_len(stream) {
        packets += 1;
        octets += len;
        stream = stream.get(len..).unwrap_or_default();
    }
    (packets, octets)
}

fn stream(c: &mut Criterion) {
    const PACKETS: u8 = 64;
    const READ: usize = 1500;
    let secret = Secret::new(SECRET);
    let stream: Vec<u8> = (0..PACKETS)
        .flat_map(|id| access_request(id, &secret))
        .collect();
    let mut framer = Framer::new();
    let framed = frame_reads(&mut framer, &stream, READ);
    assert_eq!(
        framed,
        (usize::from(PACKETS), stream.len()),
        "framer must split the stream"
    );
    assert_eq!(framer.buffered(), 0);
    assert_eq!(
        frame_in_place(&stream),
        framed,
        "frame_len must split the stream"
    );

    let mut group = c.benchmark_group("radius/stream");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function(
        "portcullis: Framer, 64 Access-Requests in 1500-octet reads",
        |b| b.iter(|| frame_reads(&mut framer, black_box(&stream), READ)),
    );
    group.bench_function("portcullis: frame_len over the same octets in place", |b| {
        b.iter(|| frame_in_place(black_box(&stream)))
    });
    group.finish();
}

criterion_group!(benches, decode, encode, stream);
criterion_main!(benches);
