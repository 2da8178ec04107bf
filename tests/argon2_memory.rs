//! Password checks reuse their argon2 work areas: a burst of local logins leaves the process
//! about as large as the checks that ran at once need, not one 19 MiB area per login.
//! (Allocating a fresh area per check grew a daemon past a gigabyte in the soak test.) In its
//! own test binary, so the process holds nothing else that grows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use portcullis::engine::local::{LocalOutcome, LocalUser, LocalUsers, hash_password};

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn many_checks_reuse_their_work_areas() {
    let users = Arc::new(
        LocalUsers::new([LocalUser {
            name: "alice".into(),
            password_hash: hash_password(b"right").unwrap(),
            roles: vec!["Monitor".into()],
            enabled: true,
        }])
        .unwrap(),
    );
    let before = rss_kib();
    // Four at a time (the engine's limit) on long-lived threads, as a blocking pool runs
    // them: 40 checks of 19 MiB each.
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let users = Arc::clone(&users);
            std::thread::spawn(move || {
                for round in 0..10 {
                    let (user, password, expected) = match (i + round) % 3 {
                        0 => (
                            "alice",
                            &b"right"[..],
                            LocalOutcome::Accept(vec!["Monitor".into()]),
                        ),
                        1 => (
                            "alice",
                            &b"wrong"[..],
                            LocalOutcome::Reject("wrong password"),
                        ),
                        _ => (
                            "nobody",
                            &b"x"[..],
                            LocalOutcome::Unavailable("not a local user"),
                        ),
                    };
                    assert_eq!(users.verify(user, password), expected);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    // Four areas of 19 MiB, plus room for the allocator and the test harness.
    assert!(
        grown_mib <= 4 * 19 + 48,
        "grew {grown_mib} MiB over 40 checks"
    );
}
