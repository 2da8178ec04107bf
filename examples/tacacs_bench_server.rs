//! The TACACS+ test server of `tests/support/tacacs_server.rs` as a process: the upstream of
//! benchmark scenario 7 (`scripts/bench/7-tacacs-login.sh`, started by `start_tacacs_upstream`
//! in `scripts/bench/lib.sh`). Runs until killed.
//!
//! ```text
//! tacacs_bench_server --port P --key KEY --password PW [--users N] [--av NAME=VALUE]...
//! ```
//!
//! Listens on 127.0.0.1:P with the shared key KEY and knows `alice` and `alice-0` ..
//! `alice-(N-1)` (N default 1000), all with the password PW: PAP or ASCII logins against them
//! pass, any other name or password fails. The authorization of a known user answers PASS_ADD
//! with the `--av` pairs (mandatory), which the daemon's `[[tacacs.role_mappings]]` match.
//! The server agrees to Single Connection Mode (RFC 8907 §4.3), which the daemon's client
//! offers on every session, and does not keep what it receives ([`Config::record`] off), so
//! its memory stays flat however long it runs.
//!
//! Each connection is served on its own thread. A connection closes after 5 s without a
//! packet (the daemon's client replaces a kept connection it finds closed without costing a
//! login) or after 3,200,000 packets (32 per session x 100,000 sessions; a session of a PAP
//! login is one packet in, so far beyond a 20 s run even if every login used one connection).

use std::net::SocketAddr;
use std::process::ExitCode;

#[allow(dead_code, clippy::expect_used, clippy::unwrap_used)]
#[path = "../tests/support/tacacs_server.rs"]
mod tacacs_server;

use tacacs_server::{Config, TacacsServer, User};

struct Args {
    port: u16,
    key: String,
    password: String,
    users: usize,
    av_pairs: Vec<(String, String)>,
}

const USAGE: &str =
    "usage: tacacs_bench_server --port P --key KEY --password PW [--users N] [--av NAME=VALUE]...";

fn args() -> Result<Args, String> {
    let (mut port, mut key, mut password) = (None, None, None);
    let mut users = 1000;
    let mut av_pairs = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = Some(value.parse().map_err(|_| format!("--port {value}"))?),
            "--key" => key = Some(value),
            "--password" => password = Some(value),
            "--users" => users = value.parse().map_err(|_| format!("--users {value}"))?,
            "--av" => {
                let (name, value) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--av {value}: NAME=VALUE expected"))?;
                av_pairs.push((name.to_owned(), value.to_owned()));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    match (port, key, password) {
        (Some(port), Some(key), Some(password)) => Ok(Args {
            port,
            key,
            password,
            users,
            av_pairs,
        }),
        _ => Err("--port, --key and --password are required".into()),
    }
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let av_pairs: Vec<(&str, &str)> = args
        .av_pairs
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let users = std::iter::once("alice".to_owned())
        .chain((0..args.users).map(|i| format!("alice-{i}")))
        .map(|name| User::new(&name, &args.password, &av_pairs))
        .collect();
    let config = Config {
        key: args.key,
        single_connect: true,
        record: false,
        ..Config::new(users)
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let server = match TacacsServer::start_at(addr, config) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("listening on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "TACACS+ on {}: alice and {} alice-<i>",
        server.addr(),
        args.users
    );
    // The listener and the connections run on their own threads until the process is killed.
    loop {
        std::thread::park();
    }
}
