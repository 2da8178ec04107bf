//! `portcullis`: the authentication gateway daemon.
//!
//! The daemon itself (sequence walk, upstream clients, REST API, RADIUS front-end) is being
//! built on top of the wire codecs in `portcullis-protocol`; until then the binary reports its
//! version and what it can do.

use std::process::ExitCode;

const USAGE: &str = "\
usage: portcullis <command>

commands:
  version    print the version and exit
  help       print this text

The daemon (`serve`), `check-config`, `hash-password` and `login` are not built yet; see README.md.";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("version" | "--version" | "-V") => {
            println!("portcullis {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("help" | "--help" | "-h") | None => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("portcullis: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
