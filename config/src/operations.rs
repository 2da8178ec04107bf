//! `[logging]`, `[metrics]` and `[audit]`: how the daemon reports what it does.

use serde::{Deserialize, Serialize};

use crate::error::Report;

/// The log levels `logging.level` accepts, least to most verbose.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// How long audit events are kept by default, in days.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 90;
/// The longest retention `audit.retention_days` accepts (ten years).
pub const MAX_AUDIT_RETENTION_DAYS: u32 = 3650;

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Logging {
    /// The most verbose level logged: `error`, `warn`, `info`, `debug` or `trace`. The
    /// `RUST_LOG` environment variable wins when set. Re-applied on reload (SIGHUP).
    pub level: String,
}

impl Default for Logging {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

impl Logging {
    /// Whether this is the default section (then it is not written to the file).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub(crate) fn check(&self, report: &mut Report) {
        if !LOG_LEVELS.contains(&self.level.as_str()) {
            report.error(
                "logging.level",
                format!("\"{}\" is not one of {}", self.level, LOG_LEVELS.join(", ")),
            );
        }
    }
}

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Anyone connecting from a loopback address (or over the Unix socket), without
    /// credentials; nobody else.
    #[default]
    Loopback,
    /// Any authenticated caller (HTTP Basic or bearer token) holding `metrics.role`, from
    /// anywhere.
    Role,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// Who may read `GET /metrics`: `"loopback"` (the default: local scrapers, no
    /// credentials) or `"role"` (callers holding `role`).
    pub allow: MetricsAccess,
    /// The role that may read the metrics when `allow = "role"`; one of `roles`.
    pub role: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            allow: MetricsAccess::Loopback,
            role: "Monitor".into(),
        }
    }
}

impl Metrics {
    /// Whether this is the default section (then it is not written to the file).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub(crate) fn check(&self, report: &mut Report, roles: &[String]) {
        if self.allow == MetricsAccess::Role && !roles.contains(&self.role) {
            report.error(
                "metrics.role",
                format!("\"{}\" is not one of the configured roles", self.role),
            );
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Audit {
    /// Days an audit event (login attempt, configuration change) is kept in the state
    /// database before it is pruned; 1..=3650.
    pub retention_days: u32,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        }
    }
}

impl Audit {
    /// Whether this is the default section (then it is not written to the file).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub(crate) fn check(&self, report: &mut Report) {
        report.range(
            "audit.retention_days",
            self.retention_days,
            1,
            MAX_AUDIT_RETENTION_DAYS,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, ConfigError};

    fn errors(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Err(ConfigError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_info_loopback_and_ninety_days() {
        let config = Config::from_toml("").unwrap().config;
        assert_eq!(config.logging.level, "info");
        assert_eq!(config.metrics.allow, super::MetricsAccess::Loopback);
        assert_eq!(config.audit.retention_days, 90);
        assert!(!config.to_toml().unwrap().contains("[logging]"));
    }

    #[test]
    fn sections_parse_and_round_trip() {
        let text = "[logging]\nlevel = \"debug\"\n[metrics]\nallow = \"role\"\nrole = \"Monitor\"\n\
                    [audit]\nretention_days = 7\n";
        let config = Config::from_toml(text).unwrap().config;
        assert_eq!(config.logging.level, "debug");
        assert_eq!(config.metrics.allow, super::MetricsAccess::Role);
        assert_eq!(config.audit.retention_days, 7);
        let again = Config::from_toml(&config.to_toml().unwrap())
            .unwrap()
            .config;
        assert_eq!(again, config);
    }

    #[test]
    fn bad_values_name_their_field() {
        let found = errors(
            "[logging]\nlevel = \"loud\"\n[metrics]\nallow = \"role\"\nrole = \"Nobody\"\n\
             [audit]\nretention_days = 0\n",
        );
        assert!(
            found.iter().any(|e| e.starts_with("logging.level:")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|e| e.starts_with("metrics.role:")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|e| e.starts_with("audit.retention_days:")),
            "{found:?}"
        );
    }

    #[test]
    fn unknown_keys_and_values_are_refused() {
        assert!(Config::from_toml("[logging]\nlevels = \"info\"\n").is_err());
        assert!(Config::from_toml("[metrics]\nallow = \"anyone\"\n").is_err());
    }
}
