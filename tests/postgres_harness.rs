#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The throwaway PostgreSQL clusters of `tests/support/postgres.rs`: the role `portcullis`
//! logs in over TCP with its password and owns its database, clusters are independent, data
//! survives a stop and start, and dropping a cluster leaves no process and no file behind.

mod support;

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use support::postgres::{PASSWORD, Postgres, ROLE, SUPERUSER};

/// Whether a process whose command line contains `needle` exists (`pgrep -f`).
fn process_running(needle: &str) -> bool {
    let output = Command::new("pgrep")
        .arg("-f")
        .arg(needle)
        .output()
        .expect("running pgrep");
    // pgrep exits 0 when something matched, 1 when nothing did.
    match output.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("pgrep failed ({other:?}): {output:?}"),
    }
}

#[test]
fn the_role_works_over_tcp_with_its_password() {
    let pg = Postgres::new();
    assert_eq!(pg.addr.ip().to_string(), "127.0.0.1");
    assert_eq!(
        pg.url("portcullis"),
        format!(
            "postgresql://portcullis@127.0.0.1:{}/portcullis",
            pg.addr.port()
        )
    );

    let out = pg
        .psql_as(
            ROLE,
            PASSWORD,
            "portcullis",
            "CREATE TABLE sessions (id integer PRIMARY KEY, owner text NOT NULL);\n\
             INSERT INTO sessions VALUES (1, 'alice'), (2, 'bob');\n\
             SELECT id, owner FROM sessions ORDER BY id;\n\
             SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;\n",
        )
        .expect("portcullis logs in over TCP with its password");
    assert_eq!(out, "1|alice\n2|bob\nportcullis|f\n");

    // The superuser sees what the role wrote, over the Unix socket.
    assert_eq!(
        pg.psql("portcullis", "SELECT count(*) FROM sessions"),
        "2\n"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'portcullis'"
        ),
        "portcullis\n"
    );
    assert!(
        pg.log()
            .contains("database system is ready to accept connections")
    );
}

#[test]
fn tcp_logins_need_the_password() {
    let pg = Postgres::new();
    let wrong = pg
        .psql_as(ROLE, "not-the-password", "portcullis", "SELECT 1")
        .expect_err("a wrong password is refused");
    assert!(wrong.contains("password authentication failed"), "{wrong}");
    // The superuser has no password: it cannot log in over TCP at all.
    let superuser = pg
        .psql_as(SUPERUSER, "", "postgres", "SELECT 1")
        .expect_err("the superuser is refused over TCP");
    assert!(superuser.contains("password"), "{superuser}");
    // The role is no superuser: it cannot create databases or roles.
    let denied = pg
        .psql_as(ROLE, PASSWORD, "portcullis", "CREATE DATABASE other")
        .expect_err("portcullis may not create databases");
    assert!(denied.contains("permission denied"), "{denied}");
}

#[test]
fn two_clusters_are_independent() {
    let a = Postgres::new();
    let b = Postgres::new();
    assert_ne!(a.addr, b.addr);
    assert_ne!(a.dir(), b.dir());

    a.psql("portcullis", "CREATE TABLE only_in_a (x integer)");
    assert_eq!(
        a.psql("portcullis", "SELECT to_regclass('only_in_a') IS NOT NULL"),
        "t\n"
    );
    assert_eq!(
        b.psql("portcullis", "SELECT to_regclass('only_in_a') IS NOT NULL"),
        "f\n"
    );
    assert_eq!(
        b.psql_as(ROLE, PASSWORD, "portcullis", "SELECT inet_server_port()")
            .unwrap(),
        format!("{}\n", b.addr.port())
    );
}

#[test]
fn stop_then_start_keeps_the_data() {
    let mut pg = Postgres::new();
    let addr = pg.addr;
    pg.psql_as(
        ROLE,
        PASSWORD,
        "portcullis",
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the stop');",
    )
    .unwrap();

    pg.stop();
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "nothing listens on {addr} while the server is stopped"
    );
    assert!(
        pg.psql_as(ROLE, PASSWORD, "portcullis", "SELECT 1")
            .is_err(),
        "no login while the server is stopped"
    );

    pg.start();
    assert_eq!(pg.addr, addr, "the server comes back on the same port");
    assert_eq!(
        pg.psql_as(ROLE, PASSWORD, "portcullis", "SELECT v FROM kept")
            .unwrap(),
        "before the stop\n"
    );
    // A second round works too (later tests restart the database more than once).
    pg.stop();
    pg.start();
    assert_eq!(pg.psql("portcullis", "SELECT count(*) FROM kept"), "1\n");
}

#[test]
fn drop_removes_the_directory_and_every_process() {
    let pg = Postgres::new();
    let dir = pg.dir().to_path_buf();
    let data_dir = pg.data_dir();
    let dir_text = dir.to_str().expect("a UTF-8 temporary path").to_owned();
    let data_text = data_dir.to_str().expect("a UTF-8 data path").to_owned();
    assert!(data_dir.join("PG_VERSION").exists());
    // While it runs, pgrep finds the postmaster (its command line names the data directory):
    // the checks after the drop would catch a leftover.
    assert!(
        process_running(&data_text),
        "pgrep finds the running postmaster"
    );

    drop(pg);

    assert!(!dir.exists(), "{dir:?} is removed");
    assert!(
        !process_running(&data_text),
        "no postgres process for {data_text} is left"
    );
    assert!(
        !process_running(&dir_text),
        "no process (server or clean-up watcher) for {dir_text} is left"
    );
}
