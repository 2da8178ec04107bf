//! Every example configuration in the repository parses, validates without warnings and
//! survives a round trip.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::PathBuf;

use portcullis_config::{
    Config, Method, NasIdType, RadiusProtocol, RequireMessageAuthenticator, RoleAttribute,
    TacacsProtocol, load,
};

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("config/examples exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    found.sort();
    found
}

#[test]
fn every_example_parses_without_warnings() {
    let found = examples();
    assert!(!found.is_empty(), "no example configs found");
    for path in found {
        let text = fs::read_to_string(&path).expect("readable");
        let loaded = Config::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            loaded.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            loaded.warnings
        );
        // load() reads the same thing (its only extra warning is about the file's mode).
        let from_file = load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(from_file.config, loaded.config);
    }
}

#[test]
fn every_example_round_trips() {
    for path in examples() {
        let text = fs::read_to_string(&path).expect("readable");
        let config = Config::from_toml(&text).expect("valid").config;
        let written = config.to_toml().expect("serializes");
        let again = Config::from_toml(&written)
            .unwrap_or_else(|e| panic!("{}: rewritten text fails: {e}\n{written}", path.display()))
            .config;
        assert_eq!(again, config, "{}", path.display());
        // Writing is deterministic.
        assert_eq!(again.to_toml().expect("serializes"), written);
    }
}

#[test]
fn the_annotated_example_has_the_documented_values() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/portcullis.toml");
    let config = load(&path).expect("valid").config;
    assert_eq!(
        config.methods(),
        [Method::Local, Method::Radius, Method::Tacacs]
    );
    assert_eq!(config.roles.len(), 12);
    assert_eq!(
        config.authentication.default_role.as_deref(),
        Some("Monitor")
    );

    let radius = &config.radius;
    assert_eq!(radius.settings.nas_id_type, NasIdType::Custom);
    assert_eq!(
        radius.settings.nas_id_value.as_deref(),
        Some("portcullis-gw1")
    );
    assert_eq!(radius.servers.len(), 2);
    assert_eq!(
        radius.servers[0].require_message_authenticator,
        RequireMessageAuthenticator::Yes
    );
    // Defaults fill what the second server leaves out.
    assert_eq!(radius.servers[1].port, 1812);
    assert!(radius.servers[1].enabled);
    assert_eq!(radius.servers[1].protocol, RadiusProtocol::Chap);
    assert_eq!(
        radius.servers[1].require_message_authenticator,
        RequireMessageAuthenticator::Auto
    );
    assert_eq!(radius.role_mappings[0].attribute, 17164);
    assert!(radius.role_mappings[0].is_vendor());
    assert_eq!(radius.role_mappings[1].vendor_type, Some(1));

    let tacacs = &config.tacacs;
    assert_eq!(tacacs.servers[0].client_port, "7000");
    assert_eq!(tacacs.servers[1].protocol, TacacsProtocol::Ascii);
    let enabled: Vec<u32> = tacacs.enabled_servers().iter().map(|s| s.id).collect();
    assert_eq!(enabled, [1]);
    assert_eq!(tacacs.settings.auth_service, "portcullis");

    let frontend = &config.radius_frontend;
    assert_eq!(
        frontend.role_attribute,
        RoleAttribute::Vendor {
            vendor: 17164,
            vendor_type: 3
        }
    );
    assert_eq!(frontend.clients.len(), 2);
    assert_eq!(
        frontend.clients[0].require_message_authenticator,
        RequireMessageAuthenticator::Auto
    );
    let vpn = frontend.clients[1].network().expect("a network");
    assert_eq!(vpn.prefix(), 48);
    assert!(vpn.contains("2001:db8:10::7".parse().expect("ip")));
    assert_eq!(
        config.listeners.radius_frontend,
        ["127.0.0.1:1812"
            .parse::<std::net::SocketAddr>()
            .expect("addr")]
    );

    assert_eq!(config.local_users[0].name, "admin");
    assert!(
        config.local_users[0]
            .password_hash
            .expose()
            .starts_with("$argon2id$")
    );
}

#[test]
fn debug_of_a_config_never_shows_a_secret() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/portcullis.toml");
    let config = load(&path).expect("valid").config;
    let debug = format!("{config:?}");
    let pretty = format!("{config:#?}");
    let mut secrets: Vec<&str> = Vec::new();
    secrets.extend(config.radius.servers.iter().map(|s| s.secret.expose()));
    secrets.extend(config.tacacs.servers.iter().map(|s| s.secret.expose()));
    secrets.extend(
        config
            .radius_frontend
            .clients
            .iter()
            .map(|c| c.secret.expose()),
    );
    secrets.extend(config.local_users.iter().map(|u| u.password_hash.expose()));
    let delivery = &config.mfa_delivery;
    secrets.extend(
        delivery
            .smtp
            .iter()
            .filter_map(|s| s.password.as_ref())
            .map(|p| p.expose()),
    );
    secrets.extend(
        delivery
            .sms
            .iter()
            .filter_map(|s| s.bearer.as_ref())
            .map(|b| b.expose()),
    );
    assert_eq!(secrets.len(), 9);
    for secret in secrets {
        assert!(!debug.contains(secret), "Debug shows {secret}");
        assert!(!pretty.contains(secret), "pretty Debug shows {secret}");
    }
    assert!(!debug.contains("argon2id"));
    assert_eq!(debug.matches("****************").count(), 9);
    // The serialized file, on the other hand, must hold them.
    let text = config.to_toml().expect("serializes");
    assert!(text.contains("replace-with-a-long-random-secret-1"));
}
