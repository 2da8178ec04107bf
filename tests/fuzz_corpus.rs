//! Replays the committed corpora of the fuzz targets that drive the daemon crate
//! (`config_toml`, `rest_json`) through the very checks the fuzzers run, so every
//! `cargo test` re-runs what fuzzing found. The protocol targets replay in
//! `portcullis_protocol::fuzzing`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

#[path = "../fuzz/checks/config_toml.rs"]
mod config_toml;
#[path = "../fuzz/checks/rest_json.rs"]
mod rest_json;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // A failing input names itself before the check panics.
        eprintln!("{}", path.display());
        check(&data);
        count += 1;
    }
    count
}

#[test]
fn config_toml_corpus_replays() {
    assert!(replay("config_toml", config_toml::check) >= 5);
}

#[test]
fn rest_json_corpus_replays() {
    assert!(replay("rest_json", rest_json::check) >= 10);
}

#[test]
fn rest_json_reaches_every_route_with_a_body() {
    // The first byte of an input picks the route: list them so seeds can be written.
    let routes = rest_json::routes_with_bodies();
    for (index, (method, path)) in routes.iter().enumerate() {
        eprintln!("{index}: {method} {path}");
    }
    assert!(routes.iter().any(|(m, p)| m == "PUT" && p.contains("{id}")));
    assert!(routes.iter().any(|(_, p)| p.ends_with("/reorder")));
}
