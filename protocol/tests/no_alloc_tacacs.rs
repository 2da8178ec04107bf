//! Deobfuscating and decoding TACACS+ packets allocates nothing.
//!
//! A counting global allocator records every allocation a thread makes while counting is on
//! for it; the decode path runs with counting on and must leave the count at zero. Counter and
//! switch are per thread, so tests running in parallel do not see each other's allocations.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use portcullis_protocol::tacacs::{
    Arg, Args, Cleartext, Flags, Header, Packet, PacketType, Version, authen, author, emit_packet,
};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the only addition is a
// counter update, which neither allocates nor touches the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with counting on and returns the allocations it made.
fn allocations_in(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|count| count.set(0));
    COUNTING.with(|counting| counting.set(true));
    f();
    COUNTING.with(|counting| counting.set(false));
    ALLOCATIONS.with(Cell::get)
}

const KEY: &[u8] = b"no-alloc shared secret";

static SIX_ARGS: [Arg<'static>; 6] = [
    Arg::mandatory(b"service", b"shell"),
    Arg::mandatory(b"priv-lvl", b"15"),
    Arg::mandatory(b"role", b"admin"),
    Arg::optional(b"shell:roles", b"network-admin"),
    Arg::mandatory(b"idletime", b"30"),
    Arg::optional(b"timeout", b"600"),
];

fn author_response_packet(buf: &mut [u8]) -> usize {
    let header = Header {
        seq_no: 2,
        ..Header::request(
            PacketType::Authorization,
            Version::DEFAULT,
            Flags::empty(),
            0x0bad_cafe,
        )
    };
    let response = author::Response {
        status: author::Status::PassAdd,
        args: Args::new(&SIX_ARGS),
        server_msg: b"",
        data: b"",
    };
    emit_packet(buf, &header, &response, KEY).unwrap()
}

fn authen_reply_packet(buf: &mut [u8]) -> usize {
    let header = Header {
        seq_no: 2,
        ..Header::request(
            PacketType::Authentication,
            Version::ONE,
            Flags::empty(),
            0x0bad_cafe,
        )
    };
    let reply = authen::Reply {
        status: authen::Status::Pass,
        flags: authen::ReplyFlags::empty(),
        server_msg: b"Welcome to the appliance",
        data: b"",
    };
    emit_packet(buf, &header, &reply, KEY).unwrap()
}

#[test]
fn the_counter_sees_allocations() {
    let count = allocations_in(|| {
        let v = std::hint::black_box(vec![1u8; 64]);
        drop(v);
    });
    assert_eq!(count, 1);
}

#[test]
fn authorization_response_with_six_args_decodes_without_allocating() {
    let mut buf = [0u8; 512];
    let len = author_response_packet(&mut buf);
    let request = Header::request(
        PacketType::Authorization,
        Version::DEFAULT,
        Flags::empty(),
        0x0bad_cafe,
    );
    let mut seen = 0;
    let count = allocations_in(|| {
        let mut packet = Packet::new_checked(&mut buf[..len]).unwrap();
        packet.deobfuscate(KEY, Cleartext::Refuse).unwrap();
        request.check_reply(&packet.header()).unwrap();
        let response = author::Response::parse(packet.body()).unwrap();
        assert_eq!(response.status, author::Status::PassAdd);
        for arg in response.args {
            std::hint::black_box((arg.name(), arg.value(), arg.is_mandatory()));
            seen += 1;
        }
    });
    assert_eq!(seen, 6);
    assert_eq!(
        count, 0,
        "allocations while decoding an authorization RESPONSE"
    );
}

#[test]
fn authentication_reply_decodes_without_allocating() {
    let mut buf = [0u8; 512];
    let len = authen_reply_packet(&mut buf);
    let request = Header::request(
        PacketType::Authentication,
        Version::ONE,
        Flags::empty(),
        0x0bad_cafe,
    );
    let count = allocations_in(|| {
        let mut packet = Packet::new_checked(&mut buf[..len]).unwrap();
        packet.deobfuscate(KEY, Cleartext::Refuse).unwrap();
        request.check_reply(&packet.header()).unwrap();
        let reply = authen::Reply::parse(packet.body()).unwrap();
        assert_eq!(reply.status, authen::Status::Pass);
        assert_eq!(reply.server_msg, b"Welcome to the appliance");
    });
    assert_eq!(
        count, 0,
        "allocations while decoding an authentication REPLY"
    );
}
