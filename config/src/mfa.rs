//! `[mfa]`: who owes a second factor at login, what happens when codes cannot be delivered,
//! and how failed second factors lock a user out.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::identity::UserKey;
use crate::roles::check_role;

/// Failed second factors in a row that lock a user out, by default.
pub const DEFAULT_LOCKOUT_THRESHOLD: u32 = 10;
/// The first lockout lasts this many seconds; each further one doubles it.
pub const DEFAULT_LOCKOUT_BASE: u32 = 60;
/// The longest lockout, by default: an hour.
pub const DEFAULT_LOCKOUT_MAX: u32 = 3600;
/// The longest `lockout_max_seconds`: a day.
pub const MAX_LOCKOUT: u32 = 86_400;
/// The most failures `lockout_threshold` may allow.
pub const MAX_LOCKOUT_THRESHOLD: u32 = 1000;
/// The longest name of an application override.
pub const MAX_APPLICATION_NAME: usize = 64;

/// Who must give a second factor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaRequired {
    /// Nobody.
    #[default]
    None,
    /// Every user not exempt.
    All,
    /// Users holding one of `roles`, unless exempt.
    Roles,
}

/// What a login does when the second factor cannot be checked (code delivery down).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Refuse the login.
    #[default]
    Secure,
    /// Let the login through on the first factor alone.
    Safe,
}

/// Whether a login that passed only its first factor may enrol a second one.
///
/// A partial token proves the password and nothing more, so letting it pair an authenticator
/// app trusts whoever typed the password first (trust on first use): an attacker who knows the
/// password of a user who has no second factor yet can enrol theirs. `deny` closes that: a
/// device is then paired only with a full session (a user who already has a second factor, or
/// one the policy does not ask it of) or by an administrator
/// (`POST /api/mfa/1.0/users/{user_id}/devices`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enrollment {
    /// A partial token may pair and activate the first device of a user who has no second
    /// factor of any kind (no activated device, no validated address for delivered codes).
    #[default]
    Allow,
    /// A partial token pairs nothing.
    Deny,
}

/// The policy deciding whether a user owes a second factor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfaPolicy {
    /// `none`, `all`, or `roles` (only users holding one of `roles`).
    pub required: MfaRequired,
    /// With `required = "roles"`: the roles that owe a second factor. Each must be defined.
    pub roles: Vec<String>,
    /// Users who never owe a second factor (break-glass accounts), compared as canonical
    /// names ([`UserKey`]: ignoring case and compatibility forms).
    pub exempt_users: Vec<String>,
    /// `secure` (refuse) or `safe` (let through) when a code cannot be delivered.
    pub failmode: FailMode,
    /// `allow` (a partial token may enrol the first second factor of a user who has none) or
    /// `deny` (devices are paired only with a full session or by an administrator).
    pub enrollment: Enrollment,
}

impl MfaPolicy {
    /// Whether `user` holding `roles` owes a second factor.
    pub fn applies(&self, user: &UserKey, roles: &[String]) -> bool {
        if self.exempt_users.iter().any(|u| user.matches(u)) {
            return false;
        }
        match self.required {
            MfaRequired::None => false,
            MfaRequired::All => true,
            MfaRequired::Roles => roles.iter().any(|r| self.roles.contains(r)),
        }
    }

    fn check(&self, report: &mut Report, path: &str, roles: &[String]) {
        for (index, role) in self.roles.iter().enumerate() {
            check_role(report, &format!("{path}.roles[{index}]"), role, roles);
        }
        if self.required == MfaRequired::Roles && self.roles.is_empty() {
            report.warn(
                format!("{path}.roles"),
                "is empty while required = \"roles\": nobody owes a second factor",
            );
        }
        for (index, user) in self.exempt_users.iter().enumerate() {
            if user.is_empty() {
                report.error(format!("{path}.exempt_users[{index}]"), "must not be empty");
            }
        }
    }
}

/// A policy that replaces `[mfa]`'s for one application (front door).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationPolicy {
    /// The application: `api` (REST login), `radius` (the RADIUS front-end), or
    /// `radius:<client name>` for one RADIUS front-end client.
    pub application: String,
    /// The policy for it (an inline table: `policy = { required = "all" }`).
    pub policy: MfaPolicy,
}

/// `[mfa]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mfa {
    /// The default policy (`[mfa.policy]`), for every application without an override.
    pub policy: MfaPolicy,
    /// Failed second factors in a row that lock the user out, 1..=1000.
    pub lockout_threshold: u32,
    /// Seconds of the first lockout, 1..=`lockout_max_seconds`; each lockout that follows
    /// without a successful second factor in between doubles it.
    pub lockout_base_seconds: u32,
    /// Seconds of the longest lockout, 1..=86400.
    pub lockout_max_seconds: u32,
    /// Per-application policies; the first whose `application` matches wins, else the
    /// default policy applies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<ApplicationPolicy>,
}

impl Default for Mfa {
    fn default() -> Self {
        Self {
            policy: MfaPolicy::default(),
            lockout_threshold: DEFAULT_LOCKOUT_THRESHOLD,
            lockout_base_seconds: DEFAULT_LOCKOUT_BASE,
            lockout_max_seconds: DEFAULT_LOCKOUT_MAX,
            applications: Vec::new(),
        }
    }
}

impl Mfa {
    /// Whether the section is all defaults (left out of a saved file).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The policy for `application`: its override when there is one, else the default.
    /// `radius:<client>` falls back to `radius`.
    pub fn policy_for(&self, application: &str) -> &MfaPolicy {
        let exact = self
            .applications
            .iter()
            .find(|a| a.application == application);
        let family = application
            .split_once(':')
            .and_then(|(family, _)| self.applications.iter().find(|a| a.application == family));
        exact.or(family).map_or(&self.policy, |a| &a.policy)
    }

    /// Validates the section; `roles` are the defined role names.
    pub(crate) fn check(&self, report: &mut Report, roles: &[String]) {
        self.policy.check(report, "mfa.policy", roles);
        report.range(
            "mfa.lockout_threshold",
            self.lockout_threshold,
            1,
            MAX_LOCKOUT_THRESHOLD,
        );
        report.range(
            "mfa.lockout_max_seconds",
            self.lockout_max_seconds,
            1,
            MAX_LOCKOUT,
        );
        report.range(
            "mfa.lockout_base_seconds",
            self.lockout_base_seconds,
            1,
            self.lockout_max_seconds.max(1),
        );
        for (index, app) in self.applications.iter().enumerate() {
            let path = format!("mfa.applications[{index}]");
            let name = &app.application;
            if name.is_empty()
                || name.len() > MAX_APPLICATION_NAME
                || name.chars().any(char::is_control)
            {
                report.error(
                    format!("{path}.application"),
                    format!(
                        "must be 1..={MAX_APPLICATION_NAME} characters without control characters"
                    ),
                );
            }
            if self.applications[..index]
                .iter()
                .any(|other| other.application == *name)
            {
                report.error(
                    format!("{path}.application"),
                    format!("\"{name}\" has an override already"),
                );
            }
            app.policy.check(report, &format!("{path}.policy"), roles);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::default_roles;

    fn errors(mfa: &Mfa) -> Vec<String> {
        let mut report = Report::default();
        mfa.check(&mut report, &default_roles());
        report.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn default_owes_nothing() {
        let mfa = Mfa::default();
        assert!(
            !mfa.policy
                .applies(&UserKey::of("alice"), &["Administrator".into()])
        );
        assert!(errors(&mfa).is_empty());
        assert_eq!(mfa.lockout_threshold, 10);
    }

    #[test]
    fn roles_exemptions_and_overrides() {
        let mut mfa = Mfa::default();
        mfa.policy.required = MfaRequired::Roles;
        mfa.policy.roles = vec!["Administrator".into()];
        mfa.policy.exempt_users = vec!["breakglass".into()];
        let admin = ["Administrator".to_string()];
        let monitor = ["Monitor".to_string()];
        assert!(mfa.policy.applies(&UserKey::of("alice"), &admin));
        assert!(!mfa.policy.applies(&UserKey::of("alice"), &monitor));
        assert!(!mfa.policy.applies(&UserKey::of("breakglass"), &admin));
        // Exemptions match the canonical name, like every other per-user rule.
        assert!(!mfa.policy.applies(&UserKey::of("BreakGlass "), &admin));
        mfa.applications.push(ApplicationPolicy {
            application: "radius".into(),
            policy: MfaPolicy {
                required: MfaRequired::All,
                ..MfaPolicy::default()
            },
        });
        assert!(
            mfa.policy_for("radius")
                .applies(&UserKey::of("bob"), &monitor)
        );
        assert!(
            mfa.policy_for("radius:vpn")
                .applies(&UserKey::of("bob"), &monitor)
        );
        assert!(!mfa.policy_for("api").applies(&UserKey::of("bob"), &monitor));
        assert!(errors(&mfa).is_empty());
    }

    #[test]
    fn invalid_values_are_named() {
        let mfa = Mfa {
            policy: MfaPolicy {
                roles: vec!["Boss".into()],
                ..MfaPolicy::default()
            },
            lockout_threshold: 0,
            lockout_base_seconds: 7200,
            lockout_max_seconds: 3600,
            applications: vec![
                ApplicationPolicy {
                    application: "api".into(),
                    policy: MfaPolicy::default(),
                },
                ApplicationPolicy {
                    application: "api".into(),
                    policy: MfaPolicy::default(),
                },
            ],
        };
        assert_eq!(
            errors(&mfa),
            [
                "mfa.policy.roles[0]: \"Boss\" is not a defined role (add it to `roles` first)",
                "mfa.lockout_threshold: 0 is outside 1..=1000",
                "mfa.lockout_base_seconds: 7200 is outside 1..=3600",
                "mfa.applications[1].application: \"api\" has an override already",
            ]
        );
    }
}
