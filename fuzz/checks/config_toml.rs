//! The `config_toml` fuzz check: arbitrary text through `Config::from_toml`.
//!
//! Shared by the fuzz target and the corpus replay test (`tests/fuzz_corpus.rs`) by path.
//!
//! - Parsing never panics, whatever the text.
//! - Text that parses and validates writes back out (`to_toml`), and that text parses to the
//!   same configuration, with the same warnings: what the API saves is what the daemon loads.
//! - A configuration that validates builds an engine: validation catches everything the
//!   engine would refuse. (Only when every server address is an IP literal: the engine
//!   resolves host names, and DNS has no place in a fuzz loop.)

use portcullis_config::Config;

/// Runs the check on one input.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) = Config::from_toml(text) else {
        return;
    };
    let written = loaded
        .config
        .to_toml()
        .unwrap_or_else(|e| panic!("a valid configuration does not serialize: {e}"));
    let reloaded = Config::from_toml(&written).unwrap_or_else(|e| {
        panic!("the written configuration does not load: {e}\n--- written:\n{written}")
    });
    assert_eq!(
        reloaded.config, loaded.config,
        "the configuration changed through a save\n--- written:\n{written}"
    );
    assert_eq!(
        reloaded.warnings, loaded.warnings,
        "warnings changed through a save"
    );
    let literal = |address: &String| address.parse::<std::net::IpAddr>().is_ok();
    let offline = loaded
        .config
        .radius
        .servers
        .iter()
        .all(|s| literal(&s.address))
        && loaded
            .config
            .tacacs
            .servers
            .iter()
            .all(|s| literal(&s.address));
    if !offline {
        return;
    }
    if let Err(e) = portcullis::engine::Engine::new(&loaded.config) {
        panic!("a configuration that validates builds no engine: {e}");
    }
}
