//! TACACS+ codec benchmarks, side by side with the `tacacs-plus-protocol` crate on the same
//! bytes, and against the MD5 work the obfuscation cannot avoid.
//!
//! Two packets, both obfuscated (RFC 8907 §4.5) with the same key:
//! - an authorization RESPONSE (PASS_ADD) carrying 6 arguments;
//! - an authentication REPLY (PASS) with a server message.
//!
//! Each decode copies the packet into a scratch buffer (deobfuscation works in place), checks
//! the header (and, for ours, that it answers the request: session_id, seq_no), deobfuscates, parses the body and walks every field and argument, so lazy
//! argument iteration is paid for. `tacacs-plus-protocol` does the same through its
//! `Packet::deserialize` and `iter_arguments`.
//!
//! Floors, with the md-5 crate:
//! - `md5 pad chain`: the ceil(len / 16) digests the pseudo-pad needs, each over its whole
//!   input (session_id, key, version, seq_no and, from the second on, the previous digest),
//!   hashed from scratch: the MD5 work any RFC 8907 decoder does.
//! - `md5 flat`: one digest over as many octets as the body, the cheapest MD5 over that many
//!   octets (fewer compressions than the pad chain needs).
//!
//! Run: `cargo bench --bench tacacs_codec`.

// A bench that cannot build its fixtures has nothing to measure.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use md5::{Digest, Md5};
use portcullis_protocol::tacacs::{
    Arg, Args, Cleartext, Flags, Header, Packet, PacketType, Version, authen, author, emit_packet,
};
use tacacs_plus_protocol::{Packet as TheirPacket, authentication, authorization};

const KEY: &[u8] = b"bench-shared-secret";
const SESSION_ID: u32 = 0x5eed_1234;

static SIX_ARGS: [Arg<'static>; 6] = [
    Arg::mandatory(b"service", b"shell"),
    Arg::mandatory(b"priv-lvl", b"15"),
    Arg::mandatory(b"role", b"admin"),
    Arg::optional(b"shell:roles", b"network-admin"),
    Arg::mandatory(b"idletime", b"30"),
    Arg::optional(b"timeout", b"600"),
];

/// The requests the two replies answer; ours checks each reply against its request, as a
/// client does (RFC 8907 §4.1).
const AUTHOR_REQUEST: Header = Header::request(
    PacketType::Authorization,
    Version::DEFAULT,
    Flags::empty(),
    SESSION_ID,
);
const AUTHEN_REQUEST: Header = Header::request(
    PacketType::Authentication,
    Version::DEFAULT,
    Flags::empty(),
    SESSION_ID,
);

fn reply_header(request: &Header) -> Header {
    request.next().expect("seq_no 2 follows 1")
}

fn author_response_packet() -> Vec<u8> {
    let response = author::Response {
        status: author::Status::PassAdd,
        args: Args::new(&SIX_ARGS),
        server_msg: b"",
        data: b"",
    };
    let mut buf = vec![0u8; 512];
    let len = emit_packet(&mut buf, &reply_header(&AUTHOR_REQUEST), &response, KEY)
        .expect("fixture fits");
    buf.truncate(len);
    buf
}

fn authen_reply_packet() -> Vec<u8> {
    let reply = authen::Reply {
        status: authen::Status::Pass,
        flags: authen::ReplyFlags::empty(),
        server_msg: b"Welcome to the appliance, admin",
        data: b"",
    };
    let mut buf = vec![0u8; 512];
    let len =
        emit_packet(&mut buf, &reply_header(&AUTHEN_REQUEST), &reply, KEY).expect("fixture fits");
    buf.truncate(len);
    buf
}

/// Scratch space for in-place deobfuscation; both fixtures fit.
const SCRATCH: usize = 256;

fn ours_author(wire: &[u8]) -> usize {
    let mut scratch = [0u8; SCRATCH];
    let Some(buf) = scratch.get_mut(..wire.len()) else {
        return 0;
    };
    buf.copy_from_slice(wire);
    let Ok(mut packet) = Packet::new_checked(&mut buf[..]) else {
        return 0;
    };
    if AUTHOR_REQUEST.check_reply(&packet.header()).is_err()
        || packet.deobfuscate(KEY, Cleartext::Refuse).is_err()
    {
        return 0;
    }
    let Ok(response) = author::Response::parse(packet.body()) else {
        return 0;
    };
    let mut seen =
        usize::from(u8::from(response.status)) + response.server_msg.len() + response.data.len();
    for arg in response.args {
        seen += arg.name().len() + arg.value().len() + usize::from(arg.is_mandatory());
    }
    seen
}

fn theirs_author(wire: &[u8]) -> usize {
    let mut scratch = [0u8; SCRATCH];
    let Some(buf) = scratch.get_mut(..wire.len()) else {
        return 0;
    };
    buf.copy_from_slice(wire);
    let Ok(packet) = TheirPacket::<authorization::Reply>::deserialize(KEY, buf) else {
        return 0;
    };
    let body = packet.body();
    let mut seen = *body.status() as usize + body.server_message().len() + body.data().len();
    for arg in body.iter_arguments() {
        seen += arg.name().len() + arg.value().len() + usize::from(arg.mandatory());
    }
    seen
}

fn ours_authen(wire: &[u8]) -> usize {
    let mut scratch = [0u8; SCRATCH];
    let Some(buf) = scratch.get_mut(..wire.len()) else {
        return 0;
    };
    buf.copy_from_slice(wire);
    let Ok(mut packet) = Packet::new_checked(&mut buf[..]) else {
        return 0;
    };
    if AUTHEN_REQUEST.check_reply(&packet.header()).is_err()
        || packet.deobfuscate(KEY, Cleartext::Refuse).is_err()
    {
        return 0;
    }
    let Ok(reply) = authen::Reply::parse(packet.body()) else {
        return 0;
    };
    usize::from(u8::from(reply.status))
        + usize::from(reply.flags.bits())
        + reply.server_msg.len()
        + reply.data.len()
}

fn theirs_authen(wire: &[u8]) -> usize {
    let mut scratch = [0u8; SCRATCH];
    let Some(buf) = scratch.get_mut(..wire.len()) else {
        return 0;
    };
    buf.copy_from_slice(wire);
    let Ok(packet) = TheirPacket::<authentication::Reply>::deserialize(KEY, buf) else {
        return 0;
    };
    let body = packet.body();
    *body.status() as usize
        + usize::from(body.flags().bits())
        + body.server_message().len()
        + body.data().len()
}

/// The pad chain's MD5 work for a body of `body_len` octets, each digest hashed from scratch
/// over its whole input.
fn md5_pad_chain(body_len: usize) -> [u8; 16] {
    let mut input = [0u8; 64];
    let prefix_len = 4 + KEY.len() + 2;
    input[..4].copy_from_slice(&SESSION_ID.to_be_bytes());
    input[4..4 + KEY.len()].copy_from_slice(KEY);
    input[4 + KEY.len()..prefix_len].copy_from_slice(&[0xc0, 0x02]);
    let mut digest = [0u8; 16];
    for block in 0..body_len.div_ceil(16) {
        let len = if block == 0 {
            prefix_len
        } else {
            input[prefix_len..prefix_len + 16].copy_from_slice(&digest);
            prefix_len + 16
        };
        digest = Md5::digest(&input[..len]).into();
    }
    digest
}

fn md5_flat(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

/// Decodes a packet and returns a sum over what it saw, 0 on failure.
type Decoder = fn(&[u8]) -> usize;

fn decode(c: &mut Criterion) {
    let cases: [(&str, Vec<u8>, Decoder, Decoder); 2] = [
        (
            "author_response_6_args",
            author_response_packet(),
            ours_author,
            theirs_author,
        ),
        (
            "authen_reply",
            authen_reply_packet(),
            ours_authen,
            theirs_authen,
        ),
    ];
    for (name, wire, ours, theirs) in cases {
        let seen = ours(&wire);
        assert!(seen > 0, "{name}: ours must decode the fixture");
        assert_eq!(theirs(&wire), seen, "{name}: both must see the same fields");
        let body_len = wire.len() - 12;
        let mut group = c.benchmark_group(format!("tacacs/decode_{name}"));
        group.bench_function(
            BenchmarkId::new("portcullis (deobfuscate + parse + walk)", wire.len()),
            |b| b.iter(|| ours(black_box(&wire))),
        );
        group.bench_function(
            BenchmarkId::new("tacacs-plus-protocol (deserialize + walk)", wire.len()),
            |b| b.iter(|| theirs(black_box(&wire))),
        );
        group.bench_function(BenchmarkId::new("md5 pad chain (floor)", body_len), |b| {
            b.iter(|| md5_pad_chain(black_box(body_len)))
        });
        group.bench_function(BenchmarkId::new("md5 flat", body_len), |b| {
            b.iter(|| md5_flat(black_box(&wire[12..])))
        });
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode
}
criterion_main!(benches);
