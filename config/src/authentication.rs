//! `[authentication]`: which sequence runs and how the walk behaves.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::roles::check_role;
use crate::sequence::{DEFAULT_SEQUENCE, FIRST_SEQUENCE, LAST_SEQUENCE, Method, sequence};

/// Seconds a server that timed out is skipped while another server is alive.
pub const DEFAULT_DEAD_TIME: u32 = 60;
/// The longest `dead_time`: an hour.
pub const MAX_DEAD_TIME: u32 = 3600;
/// Seconds a login token stays valid by default: a working day.
pub const DEFAULT_TOKEN_LIFETIME: u32 = 8 * 3600;
/// The shortest `token_lifetime`: a minute.
pub const MIN_TOKEN_LIFETIME: u32 = 60;
/// The longest `token_lifetime`: a week.
pub const MAX_TOKEN_LIFETIME: u32 = 7 * 24 * 3600;
/// Seconds an upstream server's challenge waits for the user's answer by default.
pub const DEFAULT_CHALLENGE_TIMEOUT: u32 = 120;
/// The longest `challenge_timeout`: ten minutes.
pub const MAX_CHALLENGE_TIMEOUT: u32 = 600;
/// Seconds between Status-Server probes of a dead RADIUS server by default.
pub const DEFAULT_PROBE_INTERVAL: u32 = 10;
/// The longest `probe_interval`: an hour.
pub const MAX_PROBE_INTERVAL: u32 = 3600;

/// `[authentication]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Authentication {
    /// Id of the sequence that runs, 1..=5 (the management API's `current_auth_sequence`):
    /// 1 "Local, RADIUS, TACACS+", 2 "Local, TACACS+, RADIUS", 3 "Local, RADIUS",
    /// 4 "Local, TACACS+", 5 "Local only".
    pub current_sequence: u8,
    /// Also move to the next method when a method rejects the user. Off by default: the
    /// walk moves on only when a method is unavailable, so a remote reject cannot be
    /// bypassed by a stale local password.
    pub fallback_on_reject: bool,
    /// Seconds a server that timed out is skipped while another server of its method is
    /// alive, 0..=3600 (0 never skips), so a dead primary does not add
    /// `timeout x tries` to every login.
    pub dead_time: u32,
    /// Role given to a remote user whom no role mapping matched; when absent such a login
    /// fails with "no role mapped". Must be one of `roles`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_role: Option<String>,
    /// Seconds a token from `POST /api/auth/1.0/login` stays valid, 60..=604800. Tokens keep
    /// the lifetime they were issued with.
    pub token_lifetime: u32,
    /// Seconds the answer to an upstream RADIUS server's Access-Challenge (a token code, a
    /// new PIN, a push approval) is waited for, 1..=600: the partial token or State handed
    /// to the user expires with it.
    pub challenge_timeout: u32,
    /// Seconds between Status-Server probes (RFC 5997) of a RADIUS server marked dead,
    /// 0..=3600 (0: never probe). A valid answer revives the server at once, so no login pays
    /// its timeout to find out; a server that never answers Status-Server stays dead for
    /// `dead_time`.
    pub probe_interval: u32,
    /// Also probe live RADIUS servers that gave no answer for `probe_interval` seconds
    /// (RFC 3539 watchdog), so one that died between logins is marked dead before a login
    /// waits on it. Only a server that has answered a Status-Server before is marked dead by
    /// its silence. Default: false. Servers over TLS (RadSec) always have this watchdog on
    /// their connections.
    pub probe_idle: bool,
    /// Whether a login that completed an upstream challenge (RADIUS Access-Challenge, TACACS+
    /// prompt after the password) has given its second factor. `true` (the default): the
    /// gateway's own `[mfa]` is not asked again. `false`: it is asked as after any first
    /// factor, for users its policy applies to.
    pub upstream_challenge_is_second_factor: bool,
}

impl Default for Authentication {
    fn default() -> Self {
        Self {
            current_sequence: DEFAULT_SEQUENCE,
            fallback_on_reject: false,
            dead_time: DEFAULT_DEAD_TIME,
            default_role: None,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            challenge_timeout: DEFAULT_CHALLENGE_TIMEOUT,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            probe_idle: false,
            upstream_challenge_is_second_factor: true,
        }
    }
}

impl Authentication {
    /// The methods of the current sequence, in order; empty for an invalid id.
    pub fn methods(&self) -> &'static [Method] {
        sequence(self.current_sequence).unwrap_or(&[])
    }

    /// Validates the section; `roles` are the defined role names.
    pub(crate) fn check(&self, report: &mut Report, roles: &[String]) {
        if sequence(self.current_sequence).is_none() {
            report.error(
                "authentication.current_sequence",
                format!(
                    "{} is outside {FIRST_SEQUENCE}..={LAST_SEQUENCE} (the ids of the fixed \
                     sequences)",
                    self.current_sequence
                ),
            );
        }
        report.range("authentication.dead_time", self.dead_time, 0, MAX_DEAD_TIME);
        report.range(
            "authentication.probe_interval",
            self.probe_interval,
            0,
            MAX_PROBE_INTERVAL,
        );
        report.range(
            "authentication.challenge_timeout",
            self.challenge_timeout,
            1,
            MAX_CHALLENGE_TIMEOUT,
        );
        report.range(
            "authentication.token_lifetime",
            self.token_lifetime,
            MIN_TOKEN_LIFETIME,
            MAX_TOKEN_LIFETIME,
        );
        if let Some(role) = &self.default_role {
            check_role(report, "authentication.default_role", role, roles);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::default_roles;

    #[test]
    fn defaults_are_local_only() {
        let auth = Authentication::default();
        assert_eq!(auth.current_sequence, 5);
        assert_eq!(auth.methods(), [Method::Local]);
        assert!(!auth.fallback_on_reject);
        assert_eq!(auth.dead_time, 60);
        assert_eq!(auth.token_lifetime, 28_800);
    }

    #[test]
    fn out_of_range_values_and_unknown_default_role() {
        let auth = Authentication {
            current_sequence: 6,
            dead_time: 3601,
            token_lifetime: 59,
            default_role: Some("Guest".into()),
            ..Authentication::default()
        };
        let mut report = Report::default();
        auth.check(&mut report, &default_roles());
        let messages: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "authentication.current_sequence: 6 is outside 1..=5 (the ids of the fixed \
                 sequences)",
                "authentication.dead_time: 3601 is outside 0..=3600",
                "authentication.token_lifetime: 59 is outside 60..=604800",
                "authentication.default_role: \"Guest\" is not a defined role (add it to \
                 `roles` first)",
            ]
        );
        assert!(auth.methods().is_empty());
    }

    #[test]
    fn sequence_zero_is_rejected() {
        let auth = Authentication {
            current_sequence: 0,
            default_role: Some("Monitor".into()),
            ..Authentication::default()
        };
        let mut report = Report::default();
        auth.check(&mut report, &default_roles());
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].path, "authentication.current_sequence");
    }
}
