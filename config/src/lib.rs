//! portcullis configuration: the TOML schema, its defaults and validation, and atomic
//! load/save.
//!
//! One file (`/etc/portcullis/portcullis.toml` by default) holds everything the management
//! API edits: the authentication sequence, RADIUS and TACACS+ servers, settings and role
//! mappings, the roles, local users and the listeners. Field names and value ranges follow
//! the management API (`/api/mgmt.remote_authentication/1.0/...`).
//!
//! - [`Config::from_toml`] parses and validates text; [`load`] does the same for a file.
//! - [`Config::validate`] collects every broken rule as a [`FieldError`] naming the field
//!   (`radius.servers[1].port: 0 is outside 1..=65535`) and returns the [`Warning`]s (short
//!   secrets, ...) when nothing is broken.
//! - [`save`] validates, then replaces the file atomically (temp file, fsync, rename, fsync
//!   of the directory, mode 0600): a crash never leaves half a file, a rejected edit changes
//!   nothing.
//!
//! Secrets and password hashes are [`Secret`]s: `Debug` of a whole [`Config`] shows
//! `****************` in their place.

mod authentication;
mod delivery;
mod error;
mod file;
mod frontend;
mod host;
mod identity;
mod listeners;
mod mfa;
mod operations;
mod radius;
mod roles;
mod secret;
mod sequence;
mod servers;
mod state;
mod tacacs;
mod throttle;
mod tls;
mod users;

use serde::{Deserialize, Serialize};

pub use authentication::{Authentication, DEFAULT_DEAD_TIME, MAX_DEAD_TIME};
pub use delivery::{
    DEFAULT_DELIVERY_TIMEOUT, DEFAULT_MFA_APPLICATION, DEFAULT_SMTP_PORT, MfaDelivery, SmsDelivery,
    SmtpDelivery, check_mailbox,
};
pub use error::{ConfigError, FieldError, Warning};
pub use file::{DEFAULT_PATH, load, remove_leftovers, save};
pub use frontend::{
    DEFAULT_DEDUP_CACHE, DEFAULT_MAX_IN_FLIGHT, FrontendClient, IpNet, RadiusFrontend,
    RoleAttribute,
};
pub use host::Host;
pub use identity::UserKey;
pub use listeners::{DEFAULT_API_LISTENER, Listeners};
pub use mfa::{
    ApplicationPolicy, DEFAULT_LOCKOUT_BASE, DEFAULT_LOCKOUT_MAX, DEFAULT_LOCKOUT_THRESHOLD,
    Enrollment, FailMode, Mfa, MfaPolicy, MfaRequired,
};
pub use operations::{
    Audit, DEFAULT_AUDIT_RETENTION_DAYS, LOG_LEVELS, Logging, MAX_AUDIT_RETENTION_DAYS, Metrics,
    MetricsAccess,
};
pub use radius::{
    DEFAULT_RADIUS_PORT, DEFAULT_RADIUS_TIMEOUT, DEFAULT_RADIUS_TRIES, DEFAULT_RADSEC_PORT,
    DEFAULT_RADSEC_SECRET, MAX_VENDOR_ID, NasIdType, Radius, RadiusProtocol, RadiusRoleMapping,
    RadiusServer, RadiusSettings, RadiusTransport, RequireMessageAuthenticator,
};
pub use roles::{ADMINISTRATOR, DEFAULT_ROLES, default_roles};
pub use secret::{CLOAK, Secret};
pub use sequence::{
    DEFAULT_SEQUENCE, FIRST_SEQUENCE, LAST_SEQUENCE, Method, SEQUENCES, sequence, sequence_name,
};
pub use servers::SHORT_SECRET;
pub use state::{
    DEFAULT_DATABASE_TIMEOUT, DEFAULT_POOL_SIZE, DatabaseUrl, MAX_NODE_NAME, MAX_POOL_SIZE, State,
    StateBackend, parse_database_url,
};
pub use tacacs::{
    DEFAULT_AUTH_SERVICE, DEFAULT_TACACS_PORT, DEFAULT_TACACS_TIMEOUT, DEFAULT_TACACS_TLS_PORT,
    Tacacs, TacacsProtocol, TacacsRoleMapping, TacacsServer, TacacsSettings, TacacsTransport,
};
pub use throttle::{NIST_HARD_LIMIT, Throttle};
pub use tls::TlsClient;
pub use users::{LocalUser, check_argon2id_phc};

use crate::error::Report;

/// The whole configuration file. Every section and field has a default, so an empty file is
/// [`Config::default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The role names that mappings, users and `default_role` may use. Defaults to the
    /// management API's roles and permissions (see [`DEFAULT_ROLES`]).
    pub roles: Vec<String>,
    /// The sockets the daemon serves on.
    pub listeners: Listeners,
    /// Which sequence runs and how the walk behaves.
    pub authentication: Authentication,
    /// RADIUS servers, settings and role mappings.
    pub radius: Radius,
    /// TACACS+ servers, settings and role mappings.
    pub tacacs: Tacacs,
    /// The clients of the RADIUS front-end and the reply attributes it sends.
    #[serde(skip_serializing_if = "RadiusFrontend::is_default")]
    pub radius_frontend: RadiusFrontend,
    /// Local users, checked by the `Local` method of every sequence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local_users: Vec<LocalUser>,
    /// Second-factor policy and lockout.
    #[serde(skip_serializing_if = "Mfa::is_default")]
    pub mfa: Mfa,
    /// Brute-force throttling: failures counted per user and source, growing lockouts.
    #[serde(skip_serializing_if = "Throttle::is_default")]
    pub throttle: Throttle,
    /// How MFA one-time codes are delivered (SMTP relay, SMS webhook).
    #[serde(skip_serializing_if = "MfaDelivery::is_default")]
    pub mfa_delivery: MfaDelivery,
    /// The log level.
    #[serde(skip_serializing_if = "Logging::is_default")]
    pub logging: Logging,
    /// Who may read `GET /metrics`.
    #[serde(skip_serializing_if = "Metrics::is_default")]
    pub metrics: Metrics,
    /// How long the audit log is kept.
    #[serde(skip_serializing_if = "Audit::is_default")]
    pub audit: Audit,
    /// Where runtime state is kept: SQLite (default) or a PostgreSQL shared by several nodes.
    #[serde(skip_serializing_if = "State::is_default")]
    pub state: State,
}

impl Default for Config {
    /// Loopback API listener, sequence 5 "Local only", the default roles, no servers, no
    /// users.
    fn default() -> Self {
        Self {
            roles: default_roles(),
            listeners: Listeners::default(),
            authentication: Authentication::default(),
            radius: Radius::default(),
            tacacs: Tacacs::default(),
            radius_frontend: RadiusFrontend::default(),
            local_users: Vec::new(),
            mfa: Mfa::default(),
            throttle: Throttle::default(),
            mfa_delivery: MfaDelivery::default(),
            logging: Logging::default(),
            metrics: Metrics::default(),
            audit: Audit::default(),
            state: State::default(),
        }
    }
}

/// A configuration that parsed and passed validation, with its warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Legal but unwise settings; worth logging at start-up and returning from the API.
    pub warnings: Vec<Warning>,
}

impl Config {
    /// Whether the user `user` holds `role`, or might at their next login: a local user of
    /// that canonical name holds what the file gives them; a remote login (a user who is not
    /// local, or also a local one when `fallback_on_reject` lets a wrong local password go on)
    /// might get `role` whenever a remote method of the current sequence can grant it (a role
    /// mapping or the default role). Used where the answer must err on the safe side.
    pub fn may_hold(&self, user: &UserKey, role: &str) -> bool {
        let local = self.local_users.iter().find(|u| user.matches(&u.name));
        if local.is_some_and(|u| u.roles.iter().any(|r| r == role)) {
            return true;
        }
        let remote_login =
            local.is_none_or(|u| !u.enabled) || self.authentication.fallback_on_reject;
        let remote_methods = sequence(self.authentication.current_sequence)
            .is_some_and(|methods| methods.iter().any(|m| *m != Method::Local));
        remote_login
            && remote_methods
            && (self.authentication.default_role.as_deref() == Some(role)
                || self.radius.role_mappings.iter().any(|m| m.role == role)
                || self.tacacs.role_mappings.iter().any(|m| m.role == role))
    }

    /// Parses TOML text and validates it. Parse errors carry toml's line and column;
    /// validation errors list every broken rule.
    pub fn from_toml(text: &str) -> Result<Loaded, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: None,
            message: error.to_string(),
        })?;
        let warnings = config.validate()?;
        Ok(Loaded { config, warnings })
    }

    /// What every node sharing one state database shares: everything but the node's own
    /// `listeners` and `state` (which are left at their defaults).
    pub fn shared_part(&self) -> Config {
        Config {
            listeners: Listeners::default(),
            state: State::default(),
            ..self.clone()
        }
    }

    /// This shared configuration on the node whose own file is `local`: `local`'s
    /// `listeners` and `state`, everything else from `self`.
    pub fn with_local(self, local: &Config) -> Config {
        Config {
            listeners: local.listeners.clone(),
            state: local.state.clone(),
            ..self
        }
    }

    /// Writes the configuration as TOML, secrets included (the file must hold them). Does
    /// not validate; [`save`] does.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|error| ConfigError::Serialize(error.to_string()))
    }

    /// Checks every rule. Returns the warnings when none is broken, else
    /// [`ConfigError::Invalid`] with every broken rule (not only the first).
    pub fn validate(&self) -> Result<Vec<Warning>, ConfigError> {
        let mut report = Report::default();
        roles::check_roles_list(&mut report, &self.roles);
        self.authentication.check(&mut report, &self.roles);
        self.listeners.check(&mut report);
        self.radius.check(&mut report, &self.roles);
        self.tacacs.check(&mut report, &self.roles);
        self.radius_frontend.check(&mut report);
        users::check_users(&mut report, &self.local_users, &self.roles);
        self.mfa.check(&mut report, &self.roles);
        self.throttle.check(&mut report);
        self.mfa_delivery.check(&mut report);
        self.logging.check(&mut report);
        self.metrics.check(&mut report, &self.roles);
        self.audit.check(&mut report);
        self.state.check(&mut report);
        self.check_sequence_has_servers(&mut report);
        if !self.listeners.radius_frontend.is_empty() && self.radius_frontend.clients.is_empty() {
            report.warn(
                "radius_frontend.clients",
                "is empty while listeners.radius_frontend is set: the RADIUS front-end drops \
                 every request until a client is added",
            );
        }
        if !self.listeners.radsec.is_empty() && self.radius_frontend.tls_certificate.is_none() {
            report.error(
                "radius_frontend.tls_certificate",
                "is required while listeners.radsec is set: the certificate the RadSec \
                 front-end presents",
            );
        }
        report.finish()
    }

    /// The methods of the current sequence, in the order they are tried.
    pub fn methods(&self) -> &'static [Method] {
        self.authentication.methods()
    }

    /// Warns when the current sequence uses a remote method that has no enabled server: that
    /// method will always be unavailable.
    fn check_sequence_has_servers(&self, report: &mut Report) {
        for method in self.methods() {
            let enabled = match method {
                Method::Local => continue,
                Method::Radius => self.radius.servers.iter().any(|s| s.enabled),
                Method::Tacacs => self.tacacs.servers.iter().any(|s| s.enabled),
            };
            if !enabled {
                report.warn(
                    "authentication.current_sequence",
                    format!(
                        "sequence {} \"{}\" uses {method} but no {method} server is enabled; \
                         the method will always be unavailable",
                        self.authentication.current_sequence,
                        sequence_name(self.authentication.current_sequence).unwrap_or_default(),
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$cG9ydGN1bGxpcy1leGFtcGxl$\
                        T+N9gAObdzN1BENm8UK6fglrNgyUD/IC77MATr+TTyM";

    fn messages(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Err(ConfigError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn who_may_hold_a_role() {
        let text = format!(
            "[[local_users]]\nname = \"Root\"\npassword_hash = \"{HASH}\"\nroles = [\"Administrator\"]\n\
             [[local_users]]\nname = \"viewer\"\npassword_hash = \"{HASH}\"\nroles = [\"Monitor\"]\n"
        );
        let mut config = Config::from_toml(&text).unwrap().config;
        let admin =
            |config: &Config, name: &str| config.may_hold(&UserKey::of(name), ADMINISTRATOR);
        // Local only: what the file says, by canonical name.
        assert!(admin(&config, "ROOT"));
        assert!(!admin(&config, "viewer"));
        assert!(!admin(&config, "stranger"));
        // A remote method that can grant it: anyone not local might hold it.
        config.authentication.current_sequence = 3;
        config.radius.role_mappings.push(RadiusRoleMapping {
            role: ADMINISTRATOR.into(),
            attribute: 25,
            attribute_value: "admins".into(),
            vendor_type: None,
        });
        assert!(admin(&config, "stranger"));
        assert!(!admin(&config, "viewer"));
        config.authentication.fallback_on_reject = true;
        assert!(admin(&config, "viewer"));
        assert!(!config.may_hold(&UserKey::of("stranger"), "Operator"));
    }

    #[test]
    fn empty_text_is_the_default_config() {
        let loaded = Config::from_toml("").expect("empty file is valid");
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn default_config_is_valid_and_local_only() {
        let config = Config::default();
        let warnings = config.validate().expect("the default is valid");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.methods(), [Method::Local]);
        assert_eq!(config.listeners.api, [DEFAULT_API_LISTENER]);
        assert_eq!(config.roles.len(), 12);
        assert!(config.local_users.is_empty());
        assert!(config.radius.servers.is_empty());
        assert!(config.tacacs.servers.is_empty());
    }

    #[test]
    fn default_config_round_trips() {
        let text = Config::default().to_toml().expect("serializes");
        let loaded = Config::from_toml(&text).expect("parses back");
        assert_eq!(loaded.config, Config::default());
    }

    #[test]
    fn empty_lists_whose_default_is_not_empty_survive_a_round_trip() {
        // `api` and `roles` default to non-empty lists, so an empty one must be written out.
        let mut config = Config::default();
        config.listeners.api.clear();
        config.roles.clear();
        let text = config.to_toml().expect("serializes");
        assert!(text.contains("roles = []"), "{text}");
        assert!(text.contains("api = []"), "{text}");
        let loaded = Config::from_toml(&text).expect("valid with a warning");
        assert_eq!(loaded.config, config);
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].path, "listeners.api");
    }

    #[test]
    fn empty_default_lists_are_left_out_of_the_file() {
        let text = Config::default().to_toml().expect("serializes");
        for key in ["servers", "role_mappings", "local_users", "radius_frontend"] {
            assert!(!text.contains(key), "{key} in {text}");
        }
    }

    #[test]
    fn all_errors_are_collected_in_file_order() {
        let text = format!(
            r#"
            [authentication]
            current_sequence = 9
            default_role = "Boss"

            [radius.settings]
            max_number_of_tries = 0

            [[radius.servers]]
            id = 1
            order = 0
            address = "10.0.0.1"
            port = 0
            secret = ""

            [[local_users]]
            name = "admin"
            password_hash = "{HASH}"
            roles = ["Boss"]
            "#
        );
        assert_eq!(
            messages(&text),
            [
                "authentication.current_sequence: 9 is outside 1..=5 (the ids of the fixed \
                 sequences)",
                "authentication.default_role: \"Boss\" is not a defined role (add it to `roles` \
                 first)",
                "radius.settings.max_number_of_tries: 0 is outside 1..=10",
                "radius.servers[0].port: 0 is outside 1..=65535",
                "radius.servers[0].secret: must not be empty: the shared secret authenticates \
                 every packet exchanged with the server",
                "local_users[0].roles[0]: \"Boss\" is not a defined role (add it to `roles` first)",
            ]
        );
    }

    #[test]
    fn remote_method_without_servers_is_a_warning() {
        let loaded = Config::from_toml("[authentication]\ncurrent_sequence = 1\n")
            .expect("valid, with warnings");
        let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "authentication.current_sequence: sequence 1 \"Local, RADIUS, TACACS+\" uses \
                 RADIUS but no RADIUS server is enabled; the method will always be unavailable",
                "authentication.current_sequence: sequence 1 \"Local, RADIUS, TACACS+\" uses \
                 TACACS+ but no TACACS+ server is enabled; the method will always be \
                 unavailable",
            ]
        );
    }

    #[test]
    fn custom_roles_replace_the_defaults() {
        let text = "roles = [\"Ops\"]\n[authentication]\ndefault_role = \"Monitor\"\n";
        assert_eq!(
            messages(text),
            [
                "authentication.default_role: \"Monitor\" is not a defined role (add it to \
              `roles` first)"
            ]
        );
        let loaded =
            Config::from_toml("roles = [\"Ops\"]\n[authentication]\ndefault_role = \"Ops\"\n")
                .expect("Ops is defined");
        assert_eq!(loaded.config.roles, ["Ops"]);
    }

    #[test]
    fn parse_errors_carry_line_and_column() {
        let error = Config::from_toml("[radius.settings]\nconnection_timeout = \"five\"\n")
            .expect_err("a string is not a number");
        let ConfigError::Parse { path, message } = &error else {
            panic!("expected Parse, got {error:?}");
        };
        assert!(path.is_none());
        assert!(message.contains("line 2, column 22"), "{message}");
    }
}
