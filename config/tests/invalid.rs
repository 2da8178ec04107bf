//! Every kind of invalid configuration fails, with a message naming the field and the reason.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::expect_used, clippy::panic)]

use portcullis_config::{Config, ConfigError, NasIdType, Secret};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$cG9ydGN1bGxpcy1leGFtcGxl$\
                    T+N9gAObdzN1BENm8UK6fglrNgyUD/IC77MATr+TTyM";

/// A valid configuration using every section: sequence 1, two RADIUS servers, one TACACS+
/// server, a mapping of each kind and one user.
fn base_text() -> String {
    format!(
        r#"
[authentication]
current_sequence = 1
default_role = "Monitor"

[[radius.servers]]
id = 1
order = 0
address = "192.0.2.1"
secret = "0123456789abcdef-one"

[[radius.servers]]
id = 2
order = 1
address = "radius.example.net"
secret = "0123456789abcdef-two"

[[radius.role_mappings]]
role = "Administrator"
attribute = 17164
attribute_value = "2"

[[tacacs.servers]]
id = 1
order = 0
address = "192.0.2.49"
secret = "0123456789abcdef-three"
client_port = 7000

[[tacacs.role_mappings]]
role = "Administrator"
attribute = "cascade"
attribute_value = "2"

[[local_users]]
name = "admin"
password_hash = "{HASH}"
roles = ["Administrator"]
"#
    )
}

fn base() -> Config {
    let loaded = Config::from_toml(&base_text()).expect("the base config is valid");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    loaded.config
}

/// Applies `edit` to the base config, writes it as TOML and parses it back: the errors of
/// the text path, as strings.
fn errors_after(edit: impl FnOnce(&mut Config)) -> Vec<String> {
    let mut config = base();
    edit(&mut config);
    let text = config.to_toml().expect("serializes");
    match Config::from_toml(&text) {
        Err(ConfigError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Applies `edit`, expects it valid, returns the warnings as strings.
fn warnings_after(edit: impl FnOnce(&mut Config)) -> Vec<String> {
    let mut config = base();
    edit(&mut config);
    let text = config.to_toml().expect("serializes");
    let loaded = Config::from_toml(&text).unwrap_or_else(|e| panic!("expected valid: {e}"));
    loaded.warnings.iter().map(ToString::to_string).collect()
}

/// Parses `text` and expects a parse error; returns its message.
fn parse_error(text: &str) -> String {
    match Config::from_toml(text) {
        Err(ConfigError::Parse { message, .. }) => message,
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[test]
fn ports_must_be_1_to_65535() {
    assert_eq!(
        errors_after(|c| c.radius.servers[1].port = 0),
        ["radius.servers[1].port: 0 is outside 1..=65535"]
    );
    assert_eq!(
        errors_after(|c| c.tacacs.servers[0].port = 0),
        ["tacacs.servers[0].port: 0 is outside 1..=65535"]
    );
    let text = base_text().replace("id = 2\n", "id = 2\nport = 70000\n");
    let message = parse_error(&text);
    assert!(message.contains("line 14"), "{message}");
    assert!(message.contains("70000"), "{message}");
}

#[test]
fn timeouts_must_be_1_to_60() {
    assert_eq!(
        errors_after(|c| c.radius.settings.connection_timeout = 0),
        ["radius.settings.connection_timeout: 0 is outside 1..=60"]
    );
    assert_eq!(
        errors_after(|c| c.radius.settings.connection_timeout = 61),
        ["radius.settings.connection_timeout: 61 is outside 1..=60"]
    );
    assert_eq!(
        errors_after(|c| c.tacacs.settings.connection_timeout = 61),
        ["tacacs.settings.connection_timeout: 61 is outside 1..=60"]
    );
}

#[test]
fn tries_must_be_1_to_10() {
    assert_eq!(
        errors_after(|c| c.radius.settings.max_number_of_tries = 0),
        ["radius.settings.max_number_of_tries: 0 is outside 1..=10"]
    );
    assert_eq!(
        errors_after(|c| c.radius.settings.max_number_of_tries = 11),
        ["radius.settings.max_number_of_tries: 11 is outside 1..=10"]
    );
}

#[test]
fn sequence_and_dead_time_ranges() {
    assert_eq!(
        errors_after(|c| c.authentication.current_sequence = 0),
        ["authentication.current_sequence: 0 is outside 1..=5 (the ids of the fixed sequences)"]
    );
    assert_eq!(
        errors_after(|c| c.authentication.dead_time = 3601),
        ["authentication.dead_time: 3601 is outside 0..=3600"]
    );
}

#[test]
fn empty_secrets_are_errors() {
    let expected = "must not be empty: the shared secret authenticates every packet exchanged \
                    with the server";
    assert_eq!(
        errors_after(|c| c.radius.servers[0].secret = Secret::new("")),
        [format!("radius.servers[0].secret: {expected}")]
    );
    assert_eq!(
        errors_after(|c| c.tacacs.servers[0].secret = Secret::new("")),
        [format!("tacacs.servers[0].secret: {expected}")]
    );
}

#[test]
fn a_cloaked_secret_is_an_error() {
    let errors = errors_after(|c| c.radius.servers[1].secret = Secret::new("****************"));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("radius.servers[1].secret: is the cloak the management API shows"),
        "{}",
        errors[0]
    );
}

#[test]
fn short_secrets_are_warnings_not_errors() {
    assert_eq!(
        warnings_after(|c| {
            c.radius.servers[0].secret = Secret::new("secretKey");
            c.tacacs.servers[0].secret = Secret::new("0123456789abcde");
        }),
        [
            "radius.servers[0].secret: is only 9 bytes long; use at least 16 random bytes, a \
             short secret can be brute-forced from one captured packet",
            "tacacs.servers[0].secret: is only 15 bytes long; use at least 16 random bytes, a \
             short secret can be brute-forced from one captured packet",
        ]
    );
    // Exactly 16 is enough.
    assert!(
        warnings_after(|c| c.radius.servers[0].secret = Secret::new("0123456789abcdef")).is_empty()
    );
}

#[test]
fn custom_nas_id_needs_a_value() {
    assert_eq!(
        errors_after(|c| {
            c.radius.settings.use_nas_id = true;
            c.radius.settings.nas_id_type = NasIdType::Custom;
            c.radius.settings.nas_id_value = None;
        }),
        [
            "radius.settings.nas_id_value: must be set (non-empty) when use_nas_id = true and \
          nas_id_type = \"custom\""
        ]
    );
    let text = base_text() + "\n[radius.settings]\nnas_id_type = \"custom\"\nnas_id_value = \"\"\n";
    match Config::from_toml(&text) {
        Err(ConfigError::Invalid(errors)) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].path, "radius.settings.nas_id_value");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn the_api_spelling_dyanmic_is_accepted_and_written_as_dynamic() {
    let text = base_text() + "\n[radius.settings]\nnas_id_type = \"dyanmic\"\n";
    let config = Config::from_toml(&text)
        .expect("dyanmic is accepted")
        .config;
    assert_eq!(config.radius.settings.nas_id_type, NasIdType::Dynamic);
    let written = config.to_toml().expect("serializes");
    assert!(written.contains("nas_id_type = \"dynamic\""), "{written}");
    assert!(!written.contains("dyanmic"));
}

#[test]
fn a_request_needs_nas_id_or_nas_ip() {
    let errors = errors_after(|c| {
        c.radius.settings.use_nas_id = false;
        c.radius.settings.use_nas_ip = false;
    });
    assert_eq!(
        errors,
        [
            "radius.settings.use_nas_id: use_nas_id and use_nas_ip are both false; RFC 2865 §4.1 \
          requires an Access-Request to carry NAS-Identifier or NAS-IP-Address"
        ]
    );
}

#[test]
fn duplicate_servers_are_rejected() {
    assert_eq!(
        errors_after(|c| {
            let mut copy = c.radius.servers[0].clone();
            copy.id = 3;
            copy.order = 2;
            c.radius.servers.push(copy);
        }),
        [
            "radius.servers[2]: duplicate of radius.servers[0]: same address and port (192.0.2.1 \
          port 1812)"
        ]
    );
    // Same address on another port is a different server.
    assert!(
        warnings_after(|c| {
            let mut copy = c.radius.servers[0].clone();
            copy.id = 3;
            copy.order = 2;
            copy.port = 1645;
            c.radius.servers.push(copy);
        })
        .is_empty()
    );
    assert_eq!(
        errors_after(|c| {
            let mut copy = c.tacacs.servers[0].clone();
            copy.id = 2;
            copy.order = 1;
            copy.address = "192.0.2.49".into();
            c.tacacs.servers.push(copy);
        }),
        [
            "tacacs.servers[1]: duplicate of tacacs.servers[0]: same address and port (192.0.2.49 \
          port 49)"
        ]
    );
}

#[test]
fn duplicate_ids_and_orders_are_rejected() {
    assert_eq!(
        errors_after(|c| c.radius.servers[1].id = 1),
        ["radius.servers[1].id: 1 is already used by radius.servers[0]"]
    );
    assert_eq!(
        errors_after(|c| c.radius.servers[1].order = 0),
        ["radius.servers[1].order: 0 is already used by radius.servers[0]"]
    );
    assert_eq!(
        errors_after(|c| {
            let mut copy = c.tacacs.servers[0].clone();
            copy.address = "tacacs2.example.net".into();
            c.tacacs.servers.push(copy);
        }),
        [
            "tacacs.servers[1].id: 1 is already used by tacacs.servers[0]",
            "tacacs.servers[1].order: 0 is already used by tacacs.servers[0]",
        ]
    );
    // RADIUS and TACACS+ ids are separate namespaces: both lists use id 1 in the base.
    assert_eq!(base().radius.servers[0].id, base().tacacs.servers[0].id);
}

#[test]
fn bad_addresses_are_rejected() {
    let errors = errors_after(|c| c.radius.servers[0].address = "10.70.45.300".into());
    assert_eq!(
        errors,
        [
            "radius.servers[0].address: \"10.70.45.300\" is neither a valid IP address nor a \
          hostname (the last label of a hostname cannot be all digits)"
        ]
    );
    let errors = errors_after(|c| c.tacacs.servers[0].address = "tac_plus.example".into());
    assert_eq!(
        errors,
        [
            "tacacs.servers[0].address: \"tac_plus.example\" is not a hostname: '_' is not allowed \
          (letters, digits and '-' only, RFC 1123)"
        ]
    );
}

#[test]
fn unknown_roles_are_rejected_everywhere() {
    let suffix = "is not a defined role (add it to `roles` first)";
    assert_eq!(
        errors_after(|c| c.radius.role_mappings[0].role = "Admin".into()),
        [format!("radius.role_mappings[0].role: \"Admin\" {suffix}")]
    );
    assert_eq!(
        errors_after(|c| c.tacacs.role_mappings[0].role = "Admin".into()),
        [format!("tacacs.role_mappings[0].role: \"Admin\" {suffix}")]
    );
    assert_eq!(
        errors_after(|c| c.local_users[0].roles.push("Root".into())),
        [format!("local_users[0].roles[1]: \"Root\" {suffix}")]
    );
    assert_eq!(
        errors_after(|c| c.authentication.default_role = Some("Guest".into())),
        [format!("authentication.default_role: \"Guest\" {suffix}")]
    );
    // Removing a role that is in use is caught at every use.
    assert_eq!(
        errors_after(|c| c.roles.retain(|r| r != "Administrator")),
        [
            format!("radius.role_mappings[0].role: \"Administrator\" {suffix}"),
            format!("tacacs.role_mappings[0].role: \"Administrator\" {suffix}"),
            format!("local_users[0].roles[0]: \"Administrator\" {suffix}"),
        ]
    );
}

#[test]
fn bad_password_hashes_are_rejected_without_quoting_them() {
    let errors =
        errors_after(|c| c.local_users[0].password_hash = Secret::new("plaintext-password"));
    assert_eq!(
        errors,
        [
            "local_users[0].password_hash: must start with \"$argon2id$\"; expected an argon2id PHC \
          string $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>"
        ]
    );
    let errors = errors_after(|c| {
        c.local_users[0].password_hash = Secret::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
    });
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("local_users[0].password_hash: salt must be"),
        "{}",
        errors[0]
    );
}

#[test]
fn unknown_fields_are_rejected() {
    let top = parse_error(&(base_text() + "\nlisten = \"0.0.0.0:443\"\n"));
    assert!(top.contains("unknown field `listen`"), "{top}");
    let in_server = parse_error(&base_text().replace("id = 2\n", "id = 2\nprot = \"PAP\"\n"));
    assert!(in_server.contains("unknown field `prot`"), "{in_server}");
    assert!(in_server.contains("line 14"), "{in_server}");
    let in_settings = parse_error("[radius.settings]\nretries = 3\n");
    assert!(
        in_settings.contains("unknown field `retries`"),
        "{in_settings}"
    );
    let in_user =
        parse_error(&base_text().replace("name = \"admin\"", "name = \"admin\"\npassword = \"x\""));
    assert!(in_user.contains("unknown field `password`"), "{in_user}");
}

#[test]
fn wrong_enum_spellings_are_parse_errors() {
    let lower = parse_error(&base_text().replace("id = 2\n", "id = 2\nprotocol = \"pap\"\n"));
    assert!(lower.contains("unknown variant `pap`"), "{lower}");
    let chap_on_tacacs = parse_error(&base_text().replace(
        "client_port = 7000",
        "client_port = 7000\nprotocol = \"CHAP\"",
    ));
    assert!(
        chap_on_tacacs.contains("unknown variant `CHAP`"),
        "{chap_on_tacacs}"
    );
    let rma = parse_error(&base_text().replace(
        "id = 2\n",
        "id = 2\nrequire_message_authenticator = \"true\"\n",
    ));
    assert!(rma.contains("unknown variant `true`"), "{rma}");
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let errors = errors_after(|c| {
        c.radius.servers[0].port = 0;
        c.radius.servers[1].secret = Secret::new("");
        c.radius.settings.connection_timeout = 0;
        c.tacacs.settings.auth_service = String::new();
        c.local_users[0].password_hash = Secret::new("x");
        c.authentication.default_role = Some("Nobody".into());
    });
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e.split(": ").next().unwrap_or_default())
        .collect();
    assert_eq!(
        paths,
        [
            "authentication.default_role",
            "radius.settings.connection_timeout",
            "radius.servers[0].port",
            "radius.servers[1].secret",
            "tacacs.settings.auth_service",
            "local_users[0].password_hash",
        ]
    );
}

#[test]
fn validate_reports_the_same_as_from_toml() {
    let mut config = base();
    config.radius.servers[1].port = 0;
    match config.validate() {
        Err(ConfigError::Invalid(errors)) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].path, "radius.servers[1].port");
            assert_eq!(errors[0].message, "0 is outside 1..=65535");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn radius_frontend_clients_are_validated() {
    let errors = errors_after(|config| {
        config.listeners.radius_frontend = vec!["127.0.0.1:1812".parse().expect("addr")];
        for (id, address) in [(1, "127.0.0.0/8"), (1, "not-an-ip"), (2, "::1/129")] {
            config
                .radius_frontend
                .clients
                .push(portcullis_config::FrontendClient {
                    id,
                    name: "pam".into(),
                    address: address.into(),
                    secret: Secret::new("0123456789abcdef"),
                    require_message_authenticator: Default::default(),
                    transport: Default::default(),
                    tls_ca: None,
                    tls_name: None,
                });
        }
    });
    assert_eq!(
        errors,
        [
            "radius_frontend.clients[1].id: 1 is already used by radius_frontend.clients[0]",
            "radius_frontend.clients[1].address: \"not-an-ip\" is not an IP address or network \
             (10.0.0.1, 10.0.0.0/8, 2001:db8::/32)",
            "radius_frontend.clients[2].address: \"::1/129\": the prefix length must be \
             0..=128 for an IPv6 network",
        ]
    );
    let text = format!(
        "{}\n[radius_frontend]\nrole_attribute = \"vsa\"\n",
        base_text()
    );
    assert!(parse_error(&text).contains("expected \"class\""));
    let text = format!("{}\n[radius_frontend]\nmax_in_flight = 0\n", base_text());
    let Err(ConfigError::Invalid(errors)) = Config::from_toml(&text) else {
        panic!("expected Invalid");
    };
    assert_eq!(
        errors[0].to_string(),
        "radius_frontend.max_in_flight: 0 is outside 1..=65536"
    );
}

#[test]
fn a_radius_frontend_listener_without_clients_is_a_warning() {
    let warnings = warnings_after(|config| {
        config.listeners.radius_frontend = vec!["127.0.0.1:1812".parse().expect("addr")];
    });
    assert_eq!(
        warnings,
        [
            "radius_frontend.clients: is empty while listeners.radius_frontend is set: the \
          RADIUS front-end drops every request until a client is added"
        ]
    );
}
