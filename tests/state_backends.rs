//! The state interface's suite, run against both backends: SQLite (a file in a temp dir) and
//! PostgreSQL (a throwaway cluster, `support/postgres.rs`). Every check goes through the
//! traits of `state::Backend` and the rules of `mfa/` that run on them, never through SQL, so
//! both backends answer the same questions the same way. The PostgreSQL half also checks
//! what only a shared database has: two nodes racing on one TOTP code, two nodes migrating at
//! once, a schema newer than the build, the password's sources.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use portcullis::mfa::seal::SealKey;
use portcullis::mfa::{devices, lockout, totp};
use portcullis::state::StateDb;
use portcullis::state::audit::{AuditState, Filter, Kind, NewEvent};
use portcullis::state::challenges::{ChallengeState, Pending};
use portcullis::state::mfa::{Application, MfaTx, Written, transaction};
use portcullis::state::sessions::{SessionState, StoredSession};
use portcullis::state::throttle::{CountChange, ThrottleState};
use portcullis_config::{State, StateBackend, UserKey};
use support::postgres::{PASSWORD, Postgres, ROLE, SUPERUSER};

/// A rule's failure in these tests.
#[derive(Debug)]
struct Failed(#[allow(dead_code)] String);

impl From<portcullis::state::StateError> for Failed {
    fn from(e: portcullis::state::StateError) -> Self {
        Failed(e.to_string())
    }
}

fn sqlite() -> (tempfile::TempDir, StateDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    (dir, db)
}

fn pg_state(pg: &Postgres, node: &str) -> State {
    State {
        backend: StateBackend::Postgresql,
        url: Some(format!("postgresql://{ROLE}@{}/{ROLE}", pg.addr)),
        node: Some(node.to_owned()),
        ..State::default()
    }
}

/// `[state]` of a node on `pg`, its password in a private file under `dir`.
fn pg_state_in(pg: &Postgres, dir: &std::path::Path, node: &str) -> State {
    State {
        password_file: Some(support::postgres::password_file(dir)),
        ..pg_state(pg, node)
    }
}

/// A node on `pg`.
fn pg_node(pg: &Postgres, dir: &std::path::Path, node: &str) -> StateDb {
    StateDb::open_configured(&pg_state_in(pg, dir, node), dir).unwrap()
}

fn run_suite(db: &StateDb) {
    sessions(db);
    challenges(db);
    throttle(db);
    audit(db);
    mfa_devices(db);
    mfa_lockout(db);
    mfa_service(db);
    nul_in_names(db);
}

/// A name holding NUL (a RADIUS User-Name may) is still recorded and counted, not a failed
/// batch: PostgreSQL text cannot hold NUL, so that backend stores U+FFFD in its place.
fn nul_in_names(db: &StateDb) {
    let name = "nul\0user";
    db.insert_events(&[(9_000, event(Kind::Login, name, "reject"))])
        .unwrap();
    let found = db
        .query_events(&Filter {
            user: Some(name.into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(found.events.len(), 1);
    assert!(found.events[0].user.starts_with("nul"));
    let key = format!("user:remote:{name}");
    db.store_counts(&[change(&key, Some((1, 0, 9_000)), 1, false)])
        .unwrap();
    assert_eq!(db.load_counts().unwrap().len(), 1);
    db.store_counts(&[change(&key, None, 0, true)]).unwrap();
    assert!(db.load_counts().unwrap().is_empty());
    let mut stored = session(7, i64::MAX);
    stored.user = name.into();
    db.save_session(&stored).unwrap();
    assert!(db.find_session(&[7; 32], 0).unwrap().is_some());
    db.delete_sessions(&[[7; 32]]).unwrap();
    db.save_challenge(&[30; 32], &pending(name), 100, 400, 10)
        .unwrap();
    assert!(db.take_challenge(&[30; 32], 200).unwrap().is_some());
}

#[test]
fn sqlite_passes_the_suite() {
    let (_dir, db) = sqlite();
    run_suite(&db);
}

#[test]
fn postgresql_passes_the_suite() {
    let pg = Postgres::new();
    let dir = tempfile::tempdir().unwrap();
    let db = pg_node(&pg, dir.path(), "node-a");
    assert!(db.is_shared());
    run_suite(&db);
}

fn session(n: u8, expires_ns: i64) -> StoredSession {
    StoredSession {
        hash: [n; 32],
        user: format!("user{n}"),
        roles: vec!["Monitor".into(), "Operator".into()],
        method: "Local".into(),
        expires_ns,
        partial: n % 2 == 0,
        grant: (n == 4).then_some([9; 32]),
    }
}

fn sessions(db: &StateDb) {
    for n in 1..=4 {
        db.save_session(&session(n, if n == 2 { 100 } else { 1_000 }))
            .unwrap();
    }
    db.delete_sessions(&[[3; 32], [77; 32]]).unwrap();
    db.delete_sessions(&[]).unwrap();
    assert_eq!(
        db.load_sessions(500).unwrap(),
        [session(1, 1_000), session(4, 1_000)]
    );
    // The expired one is gone for good.
    assert_eq!(db.load_sessions(0).unwrap().len(), 2);
    // Saving a hash again replaces its row.
    let mut again = session(1, 2_000);
    again.roles = vec!["Administrator".into()];
    db.save_session(&again).unwrap();
    let loaded = db.load_sessions(0).unwrap();
    assert!(loaded.contains(&again), "{loaded:?}");
    db.delete_sessions(&[[1; 32], [4; 32]]).unwrap();
    assert!(db.load_sessions(0).unwrap().is_empty());
}

fn pending(user: &str) -> Pending {
    Pending {
        user: user.into(),
        client_id: 7,
        source: "192.0.2.1".into(),
        roles: vec!["Monitor".into()],
        method: "RADIUS".into(),
    }
}

fn challenges(db: &StateDb) {
    db.save_challenge(&[1; 32], &pending("alice"), 100, 400, 10)
        .unwrap();
    // Single use.
    assert_eq!(
        db.take_challenge(&[1; 32], 200).unwrap(),
        Some(pending("alice"))
    );
    assert_eq!(db.take_challenge(&[1; 32], 200).unwrap(), None);
    // Expired: gone, and not given.
    db.save_challenge(&[2; 32], &pending("bob"), 100, 150, 10)
        .unwrap();
    assert_eq!(db.take_challenge(&[2; 32], 150).unwrap(), None);
    // At the bound, the ones closest to expiry make room.
    for n in 0..3u8 {
        db.save_challenge(&[10 + n; 32], &pending("carol"), 100, 500 + i64::from(n), 3)
            .unwrap();
    }
    db.save_challenge(&[20; 32], &pending("dave"), 100, 900, 3)
        .unwrap();
    assert_eq!(db.take_challenge(&[10; 32], 200).unwrap(), None);
    for hash in [[11; 32], [12; 32], [20; 32]] {
        assert!(db.take_challenge(&hash, 200).unwrap().is_some());
    }
}

fn change(key: &str, row: Option<(i64, i64, i64)>, added: i64, reset: bool) -> CountChange {
    CountChange {
        key: key.into(),
        row,
        added,
        reset,
        cap: 100,
    }
}

fn throttle(db: &StateDb) {
    db.store_counts(&[
        change("user:remote:alice", Some((3, 0, 100)), 3, false),
        change("source:192.0.2.9", Some((5, 900, 120)), 5, false),
    ])
    .unwrap();
    db.store_counts(&[
        change("user:remote:alice", Some((4, 700, 130)), 1, false),
        change("source:192.0.2.9", None, 0, true),
        change("source:never", None, 0, true),
    ])
    .unwrap();
    assert_eq!(
        db.load_counts().unwrap(),
        [("user:remote:alice".to_owned(), (4, 700, 130))]
    );
    // A reset replaces the count (a success, then one failure).
    db.store_counts(&[change("user:remote:alice", Some((1, 0, 140)), 1, true)])
        .unwrap();
    assert_eq!(
        db.load_counts().unwrap(),
        [("user:remote:alice".to_owned(), (1, 0, 140))]
    );
    db.store_counts(&[change("user:remote:alice", None, 0, true)])
        .unwrap();
    assert!(db.load_counts().unwrap().is_empty());
}

fn event(kind: Kind, user: &str, result: &'static str) -> NewEvent {
    NewEvent {
        kind,
        user: user.into(),
        source: "192.0.2.1".into(),
        action: "POST /api/auth/1.0/login".into(),
        result,
        reason: (result == "reject").then(|| "bad password".to_owned()),
        method: Some("Local"),
        server: None,
        latency: Duration::from_millis(12),
    }
}

fn audit(db: &StateDb) {
    let batch: Vec<(i64, NewEvent)> = (0..30)
        .map(|i| {
            let (user, result) = match i % 3 {
                0 => ("Alice", "accept"),
                1 => ("ALICE ", "reject"),
                _ => ("bob", "accept"),
            };
            (1_000 + i, event(Kind::Login, user, result))
        })
        .collect();
    db.insert_events(&batch).unwrap();
    db.insert_events(&[(2_000, event(Kind::Config, "admin", "ok"))])
        .unwrap();
    db.insert_events(&[]).unwrap();
    let all = db.query_events(&Filter::default()).unwrap();
    assert_eq!(all.events.len(), 31);
    assert_eq!(all.next_before, None);
    // Newest first, ids growing with insertion order.
    assert_eq!(all.events[0].kind, Kind::Config);
    assert!(all.events.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(all.events[0].node, db.node());
    assert_eq!(all.events[1].latency_ms, 12);
    assert_eq!(all.events[1].at, 1_029);
    let alice = db
        .query_events(&Filter {
            user: Some("alice".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(alice.events.len(), 20, "every variant of the name");
    let rejects = db
        .query_events(&Filter {
            user: Some("Alice".into()),
            result: Some("reject".into()),
            kind: Some(Kind::Login),
            since: Some(1_010),
            until: Some(1_020),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(
        rejects.events.iter().map(|e| e.at).collect::<Vec<_>>(),
        [1_019, 1_016, 1_013, 1_010]
    );
    assert_eq!(rejects.events[0].reason.as_deref(), Some("bad password"));
    assert_eq!(rejects.events[0].user, "ALICE ");
    // Paging by `before` while the log grows.
    let first = db
        .query_events(&Filter {
            limit: Some(10),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(first.events.len(), 10);
    let before = first.next_before.unwrap();
    db.insert_events(&[(3_000, event(Kind::Login, "carol", "accept"))])
        .unwrap();
    let second = db
        .query_events(&Filter {
            limit: Some(10),
            before: Some(before),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(second.events[0].id, first.events[9].id - 1);
    let other_node = db
        .query_events(&Filter {
            node: Some("no-such-node".into()),
            ..Filter::default()
        })
        .unwrap();
    assert!(other_node.events.is_empty());
    assert_eq!(db.prune_events(1_015).unwrap(), 15);
    assert_eq!(
        db.query_events(&Filter::default()).unwrap().events.len(),
        17
    );
}

fn key() -> SealKey {
    SealKey::random().unwrap()
}

fn mfa_devices(db: &StateDb) {
    let key = key();
    let user = UserKey::of("Dana");
    let now = 1_700_000_000;
    let (device, secret) = transaction(db, |tx| {
        devices::pair(tx, &key, &user, "phone", "iOS", false, now)
            .map_err(|e| Failed(format!("{e:?}")))
    })
    .unwrap();
    assert_eq!(device.user, "dana");
    let listed = transaction(db, |tx: &mut dyn MfaTx| devices::list(tx, &user, true)).unwrap();
    assert_eq!(listed, std::slice::from_ref(&device));
    assert!(!transaction(db, |tx: &mut dyn MfaTx| devices::has_active(tx, &user)).unwrap());
    let code = totp::code(&secret, totp::step(now as u64));
    let activated = transaction(db, |tx: &mut dyn MfaTx| {
        devices::activate(tx, &key, &user, &device.id, &code, now)
    })
    .unwrap();
    assert!(matches!(activated, devices::Activation::Activated(_)));
    // The code that activated it cannot log in; the next step's code can, once.
    let check = |code: &str, now: i64| {
        transaction(db, |tx: &mut dyn MfaTx| {
            devices::check_totp(tx, &key, &user, code, now)
        })
        .unwrap()
    };
    assert!(!check(&code, now));
    let later = now + 30;
    let next = totp::code(&secret, totp::step(later as u64));
    assert!(check(&next, later));
    assert!(!check(&next, later), "a code is accepted once");
    // A rule that fails rolls its writes back.
    let failed: Result<(), Failed> = transaction(db, |tx| {
        tx.delete_device(&user, &device.id)?;
        Err(Failed("changed my mind".into()))
    });
    assert!(failed.is_err());
    assert!(transaction(db, |tx: &mut dyn MfaTx| devices::has_active(tx, &user)).unwrap());
    assert!(
        transaction(db, |tx: &mut dyn MfaTx| devices::unpair(
            tx, &user, &device.id
        ))
        .unwrap()
    );
    assert!(
        !transaction(db, |tx: &mut dyn MfaTx| devices::unpair(
            tx, &user, &device.id
        ))
        .unwrap()
    );
}

fn mfa_lockout(db: &StateDb) {
    let user = UserKey::of("erin");
    let settings = lockout::Lockout {
        threshold: 3,
        base: 60,
        max: 600,
    };
    let now = 5_000;
    let fail = |now| {
        transaction(db, |tx: &mut dyn MfaTx| {
            lockout::record_failure(tx, &user, now, settings)
        })
        .unwrap()
    };
    assert_eq!(fail(now), None);
    assert_eq!(fail(now), None);
    assert_eq!(fail(now), Some(60));
    let locked = transaction(db, |tx: &mut dyn MfaTx| tx.failures(&user)).unwrap();
    assert_eq!(
        locked.map(|f| (f.failures, f.lockouts, f.locked_until)),
        Some((0, 1, 5_060))
    );
    transaction(db, |tx: &mut dyn MfaTx| lockout::record_success(tx, &user)).unwrap();
    assert_eq!(
        transaction(db, |tx: &mut dyn MfaTx| tx.failures(&user)).unwrap(),
        None
    );
}

fn application(id: &str, name: &str) -> Application {
    Application {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        auth_code_length: 6,
        auth_token_type: "NUMERIC".into(),
        auth_token_validity_duration: 300,
        auth_token_prefix: String::new(),
        auth_token_delivery_methods: "SMS".into(),
        associate_template: String::new(),
        display_name: "Gateway".into(),
        login_template: String::new(),
        message_from: String::new(),
        created: 1,
        updated: 1,
        version_number: 1,
    }
}

fn mfa_service(db: &StateDb) {
    let app = application("a1", "gateway");
    assert_eq!(
        transaction(db, |tx: &mut dyn MfaTx| tx.insert_application(&app)).unwrap(),
        Written::Done
    );
    // Same name, other id: a duplicate, and the transaction goes on.
    let written = transaction(db, |tx: &mut dyn MfaTx| {
        let duplicate = tx.insert_application(&application("a2", "gateway"))?;
        let other = tx.insert_application(&application("a3", "portal"))?;
        Ok::<_, portcullis::state::StateError>((duplicate, other))
    })
    .unwrap();
    assert_eq!(written, (Written::Duplicate, Written::Done));
    let names: Vec<String> = transaction(db, |tx: &mut dyn MfaTx| tx.applications())
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"gateway".to_owned()) && names.contains(&"portal".to_owned()));
    let key = transaction(db, |tx: &mut dyn MfaTx| tx.keep_hash_key(&[5; 32])).unwrap();
    // The first key kept stays.
    assert_eq!(
        transaction(db, |tx: &mut dyn MfaTx| tx.keep_hash_key(&[6; 32])).unwrap(),
        key
    );
    assert!(transaction(db, |tx: &mut dyn MfaTx| tx.delete_application("a3")).unwrap());
    assert!(!transaction(db, |tx: &mut dyn MfaTx| tx.delete_application("a3")).unwrap());
}

/// Two nodes, one database: one TOTP code sent to both at the same moment is accepted once.
/// Repeated, each time with a fresh step, so that a race that slips through shows.
#[test]
fn postgresql_accepts_a_code_once_across_nodes() {
    let pg = Postgres::new();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = pg_node(&pg, dir_a.path(), "node-a");
    let b = pg_node(&pg, dir_b.path(), "node-b");
    let key = Arc::new(key());
    let user = UserKey::of("frank");
    let start = 1_700_000_000;
    let (device, secret) = transaction(&a, |tx| {
        devices::pair(tx, &key, &user, "phone", "Android", true, start)
            .map_err(|e| Failed(format!("{e:?}")))
    })
    .unwrap();
    let _ = device;
    for round in 1..=40i64 {
        let now = start + round * 30;
        let code = totp::code(&secret, totp::step(now as u64));
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|db| {
                let (barrier, key, user, code) =
                    (barrier.clone(), key.clone(), user.clone(), code.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    transaction(&db, |tx: &mut dyn MfaTx| {
                        devices::check_totp(tx, &key, &user, &code, now)
                    })
                    .unwrap()
                })
            })
            .collect();
        let accepted = racers
            .into_iter()
            .map(|r| r.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(
            accepted, 1,
            "round {round}: the code was accepted {accepted} times"
        );
    }
    // Each node's audit events name it, and both are in one log.
    a.insert_events(&[(1, event(Kind::Login, "frank", "accept"))])
        .unwrap();
    b.insert_events(&[(2, event(Kind::Login, "frank", "accept"))])
        .unwrap();
    let nodes: Vec<String> = b
        .query_events(&Filter::default())
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.node)
        .collect();
    assert_eq!(nodes, ["node-b", "node-a"]);
}

/// Two nodes counting wrong second factors of one user at the same time (a read, then a
/// write, in each transaction): every one is counted, none lost to the other node's write.
#[test]
fn postgresql_counts_second_factor_failures_of_every_node() {
    let pg = Postgres::new();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = pg_node(&pg, dir_a.path(), "node-a");
    let b = pg_node(&pg, dir_b.path(), "node-b");
    let settings = lockout::Lockout {
        threshold: 1_000,
        base: 60,
        max: 600,
    };
    let barrier = Arc::new(Barrier::new(2));
    let counters: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|db| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let user = UserKey::of("hank");
                barrier.wait();
                for _ in 0..25 {
                    transaction(&db, |tx: &mut dyn MfaTx| {
                        lockout::record_failure(tx, &user, 1_000, settings)
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for counter in counters {
        counter.join().unwrap();
    }
    let user = UserKey::of("hank");
    let failures = transaction(&a, |tx: &mut dyn MfaTx| tx.failures(&user)).unwrap();
    assert_eq!(failures.map(|f| f.failures), Some(50));
}

/// Two nodes counting failures of one key at the same time: the shared count is their sum,
/// never one node's write over the other's, and each write is announced to the listeners.
#[test]
fn postgresql_adds_the_failures_of_every_node() {
    let pg = Postgres::new();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = pg_node(&pg, dir_a.path(), "node-a");
    let b = pg_node(&pg, dir_b.path(), "node-b");
    let (heard, hearing) = std::sync::mpsc::channel::<String>();
    let heard = std::sync::Mutex::new(heard);
    let (up, connected) = std::sync::mpsc::channel::<()>();
    let up = std::sync::Mutex::new(up);
    b.listen(vec![(
        portcullis::state::postgres::throttle::CHANNEL,
        Arc::new(move |notice| match notice {
            portcullis::state::postgres::listen::Notice::Message(payload) => {
                let _ = heard.lock().unwrap().send(payload.to_owned());
            }
            portcullis::state::postgres::listen::Notice::Connected => {
                let _ = up.lock().unwrap().send(());
            }
            portcullis::state::postgres::listen::Notice::Lost => {}
        }),
    )]);
    connected.recv_timeout(Duration::from_secs(10)).unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|db| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for n in 1..=50 {
                    db.store_counts(&[change("user:remote:gina", Some((n, 0, n)), 1, false)])
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(
        a.load_counts().unwrap(),
        [("user:remote:gina".to_owned(), (100, 0, 50))]
    );
    // The cap holds.
    a.store_counts(&[change("user:remote:gina", Some((101, 0, 60)), 1, false)])
        .unwrap();
    assert_eq!(a.load_counts().unwrap()[0].1.0, 100);
    // Every write was announced with the row it left; the last one says 100.
    let mut last = None;
    for _ in 0..101 {
        last = Some(hearing.recv_timeout(Duration::from_secs(10)).unwrap());
    }
    let (key, row) = portcullis::state::postgres::throttle::notice_payload(&last.unwrap()).unwrap();
    assert_eq!((key.as_str(), row), ("user:remote:gina", (100, 0, 60)));
}

/// Nodes starting together migrate once; a schema newer than the build is refused.
#[test]
fn postgresql_migrates_once_and_refuses_a_newer_schema() {
    let pg = Postgres::new();
    let barrier = Arc::new(Barrier::new(4));
    let starts: Vec<_> = (0..4)
        .map(|n| {
            let barrier = barrier.clone();
            let dir = tempfile::tempdir().unwrap();
            let state = pg_state_in(&pg, dir.path(), &format!("node-{n}"));
            std::thread::spawn(move || {
                barrier.wait();
                StateDb::open_configured(&state, dir.path()).map(|_| ())
            })
        })
        .collect();
    for start in starts {
        start.join().unwrap().unwrap();
    }
    let versions = pg.psql(ROLE, "SELECT count(*) FROM schema_migrations");
    assert_eq!(versions.trim(), "1");
    pg.psql(
        ROLE,
        "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')",
    );
    let dir = tempfile::tempdir().unwrap();
    let error =
        StateDb::open_configured(&pg_state_in(&pg, dir.path(), "late"), dir.path()).unwrap_err();
    assert!(error.to_string().contains("newer"), "{error}");
}

/// TLS to the database: with `tls_ca`, the server's certificate is verified (a server whose
/// certificate another CA signed is refused) and the connection is encrypted
/// (`pg_stat_ssl`).
#[test]
fn postgresql_over_tls() {
    use support::pki::{Pki, Usage};
    let pg = Postgres::new();
    let pki = Pki::new("database");
    let server = pki.issue("db", &["127.0.0.1"], Usage::Server);
    pg.enable_tls(
        &std::fs::read(&server.cert_path).unwrap(),
        &std::fs::read(&server.key_path).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut state = pg_state_in(&pg, dir.path(), "tls-node");
    state.url = Some(format!(
        "postgresql://{ROLE}@{}/{ROLE}?sslmode=require",
        pg.addr
    ));
    state.tls_ca = Some(pki.ca_path.clone());
    let db = StateDb::open_configured(&state, dir.path()).unwrap();
    db.insert_events(&[(1, event(Kind::Login, "tls", "accept"))])
        .unwrap();
    let encrypted = pg.psql(
        SUPERUSER,
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE ssl AND usename = 'portcullis'",
    );
    assert_ne!(
        encrypted.trim(),
        "0",
        "no encrypted connection: {encrypted}"
    );
    // Another CA: refused, never a plain connection instead.
    let other = Pki::new("other");
    state.tls_ca = Some(other.ca_path.clone());
    let error = StateDb::open_configured(&state, dir.path())
        .unwrap_err()
        .to_string();
    assert!(!error.contains(PASSWORD), "{error}");
    let _ = db;
}

/// The password comes from a private file or PGPASSWORD and never shows in an error.
#[test]
fn postgresql_password_sources() {
    use std::os::unix::fs::PermissionsExt;
    let pg = Postgres::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "wrong-password-123\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let state = State {
        password_file: Some(file.clone()),
        ..pg_state(&pg, "a")
    };
    let error = StateDb::open_configured(&state, dir.path())
        .unwrap_err()
        .to_string();
    assert!(!error.contains("wrong-password-123"), "{error}");
    assert!(
        error.contains("28P01") || error.contains("password"),
        "{error}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = StateDb::open_configured(&state, dir.path())
        .unwrap_err()
        .to_string();
    assert!(error.contains("chmod 600"), "{error}");
}
