//! Proves the RADIUS decode and encode paths never touch the heap: a counting global allocator
//! wraps the system one, and the count must not move while a packet is parsed, verified and
//! fully iterated, or while an Access-Request is built and signed.
#![allow(unsafe_code, clippy::unwrap_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use portcullis_protocol::radius::{
    Attribute, Builder, MAX_PASSWORD_LEN, Packet, Secret, Signature, attr_type, recover_password,
};

struct Counting;

thread_local! {
    /// Allocations made by this thread: tests run in parallel, and only the calling thread's
    /// own allocations say anything about the code under test.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn count() {
    // `try_with` fails only while the thread is being torn down; nothing to count then.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ACCEPT: &[u8] = include_bytes!("fixtures/radius/bench-access-accept.bin");
const SECRET: &[u8] = b"bench-secret-0123456789";
const REQUEST_AUTH: [u8; 16] = [
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

/// Parses, verifies and walks every attribute and sub-attribute; returns a digest of what it
/// saw so the work cannot be optimised away.
fn decode_and_verify(bytes: &[u8]) -> usize {
    let packet = Packet::new_checked(bytes).unwrap();
    assert_eq!(
        packet.verify_reply(&REQUEST_AUTH, &Secret::new(SECRET)),
        Ok(Signature::Signed)
    );
    let mut seen = 0;
    for avp in packet.attributes() {
        match avp.decode().unwrap() {
            Attribute::VendorSpecific(vsa) => {
                for sub in vsa.sub_attributes().unwrap() {
                    seen += sub.value.len();
                }
            }
            Attribute::Class(c) => seen += c.len(),
            _ => seen += 1,
        }
    }
    seen
}

#[test]
fn decode_with_verification_does_not_allocate() {
    // Warm up anything lazily initialised by the test harness itself.
    let expected = decode_and_verify(ACCEPT);
    let before = allocations();
    for _ in 0..1000 {
        assert_eq!(decode_and_verify(ACCEPT), expected);
    }
    let after = allocations();
    assert_eq!(after - before, 0, "heap allocations during decode");
}

#[test]
fn encode_and_password_recovery_do_not_allocate() {
    let mut buf = [0u8; 4096];
    let mut out = [0u8; MAX_PASSWORD_LEN];
    let before = allocations();
    for i in 0..1000u32 {
        let mut b = Builder::access_request(&mut buf, i as u8, &[7; 16]).unwrap();
        b.attribute(attr_type::USER_NAME, b"alice").unwrap();
        b.user_password(b"correct horse battery staple", &Secret::new(SECRET))
            .unwrap();
        b.attribute(attr_type::NAS_IDENTIFIER, b"appliance")
            .unwrap();
        let len = b.finish_request(&Secret::new(SECRET)).unwrap();
        let packet = Packet::new_checked(&buf[..len]).unwrap();
        assert_eq!(
            packet.verify_request(&Secret::new(SECRET)),
            Ok(Signature::Signed)
        );
        let password = recover_password(
            packet.user_password().unwrap(),
            &Secret::new(SECRET),
            &[7; 16],
            &mut out,
        )
        .unwrap();
        assert_eq!(password, b"correct horse battery staple");
    }
    let after = allocations();
    assert_eq!(after - before, 0, "heap allocations during encode");
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 64]);
    assert_eq!(allocations() - before, 1);
    drop(v);
}
