//! `[[local_users]]`: local users with argon2id password hashes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::identity::UserKey;
use crate::radius::yes;
use crate::roles::check_role;
use crate::secret::Secret;

/// The smallest salt argon2 accepts: 8 bytes, 11 characters of unpadded base64.
const MIN_SALT_B64: usize = 11;
/// The smallest output argon2 produces: 4 bytes, 6 characters of unpadded base64.
const MIN_HASH_B64: usize = 6;

/// A local user (`[[local_users]]`), checked by the `Local` method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalUser {
    /// Login name, matched exactly; unique among local users even ignoring case and
    /// compatibility forms (two names with one [`crate::UserKey`] would be one identity).
    pub name: String,
    /// The password as an argon2id PHC string
    /// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, what `portcullis hash-password`
    /// prints). Never the password itself; cloaked in `Debug` so it stays out of logs.
    pub password_hash: Secret,
    /// Roles granted on a successful login; each must be one of `roles`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// A disabled user cannot log in but keeps its entry.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// Validates every user: names, hashes and roles. `roles` are the defined role names.
pub(crate) fn check_users(report: &mut Report, users: &[LocalUser], roles: &[String]) {
    let mut names: HashMap<UserKey, usize> = HashMap::new();
    for (index, user) in users.iter().enumerate() {
        let path = format!("local_users[{index}]");
        let name = user.name.as_str();
        if name.is_empty() {
            report.error(format!("{path}.name"), "must not be empty");
        } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            report.error(
                format!("{path}.name"),
                format!("{name:?} contains whitespace or a control character"),
            );
        }
        let key = UserKey::of(name);
        match names.get(&key) {
            Some(&first) if users[first].name == name => report.error(
                format!("{path}.name"),
                format!("{name:?} is already used by local_users[{first}]"),
            ),
            Some(&first) => report.error(
                format!("{path}.name"),
                format!(
                    "{name:?} is the same user as local_users[{first}] ({:?}): names are \
                     compared ignoring case and compatibility forms",
                    users[first].name
                ),
            ),
            None => {
                names.insert(key, index);
            }
        }
        if let Err(why) = check_argon2id_phc(user.password_hash.expose()) {
            report.error(format!("{path}.password_hash"), why);
        }
        for (role_index, role) in user.roles.iter().enumerate() {
            check_role(report, &format!("{path}.roles[{role_index}]"), role, roles);
        }
    }
}

/// Checks the shape of an argon2id PHC string:
/// `$argon2id$[v=<16|19>$]m=<u32>,t=<u32>,p=<u32>[,keyid=..][,data=..]$<salt>$<hash>` with
/// salt and hash in unpadded standard base64. It does not verify anything; the daemon's
/// argon2 verifier does. The error never quotes the hash.
pub fn check_argon2id_phc(phc: &str) -> Result<(), String> {
    const SHAPE: &str = "expected an argon2id PHC string \
                         $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>";
    let Some(rest) = phc.strip_prefix("$argon2id$") else {
        return Err(format!("must start with \"$argon2id$\"; {SHAPE}"));
    };
    let fields: Vec<&str> = rest.split('$').collect();
    let (version, params, salt, hash) = match fields.as_slice() {
        [version, params, salt, hash] => (Some(*version), *params, *salt, *hash),
        [params, salt, hash] => (None, *params, *salt, *hash),
        _ => {
            return Err(format!(
                "has {} '$'-separated fields; {SHAPE}",
                fields.len() + 1
            ));
        }
    };
    if let Some(version) = version {
        if version != "v=19" && version != "v=16" {
            return Err(format!("version field must be v=19 or v=16; {SHAPE}"));
        }
    }
    let mut seen = [false; 3];
    for param in params.split(',') {
        let Some((name, value)) = param.split_once('=') else {
            return Err(format!("parameter without '=' in the m,t,p field; {SHAPE}"));
        };
        let slot = match name {
            "m" => 0,
            "t" => 1,
            "p" => 2,
            "keyid" | "data" => {
                if !is_b64(value) {
                    return Err(format!("{name} is not base64; {SHAPE}"));
                }
                continue;
            }
            _ => return Err(format!("unknown parameter {name:?}; {SHAPE}")),
        };
        if seen[slot] {
            return Err(format!("parameter {name} appears twice; {SHAPE}"));
        }
        seen[slot] = true;
        let valid = !value.is_empty()
            && value.bytes().all(|b| b.is_ascii_digit())
            && value.parse::<u32>().is_ok_and(|n| n > 0);
        if !valid {
            return Err(format!(
                "parameter {name} must be a positive decimal number; {SHAPE}"
            ));
        }
    }
    if seen != [true; 3] {
        return Err(format!("parameters m, t and p are all required; {SHAPE}"));
    }
    if salt.len() < MIN_SALT_B64 || !is_b64(salt) {
        return Err(format!(
            "salt must be at least {MIN_SALT_B64} characters of unpadded base64; {SHAPE}"
        ));
    }
    if hash.len() < MIN_HASH_B64 || !is_b64(hash) {
        return Err(format!(
            "hash must be at least {MIN_HASH_B64} characters of unpadded base64; {SHAPE}"
        ));
    }
    Ok(())
}

/// Whether `text` is standard base64 without padding, as PHC strings use it. A length of
/// 1 mod 4 cannot come from any byte string.
fn is_b64(text: &str) -> bool {
    !text.is_empty()
        && text.len() % 4 != 1
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::default_roles;

    /// argon2id of "change-me" with the argon2 crate's defaults.
    const GOOD: &str = "$argon2id$v=19$m=19456,t=2,p=1$cG9ydGN1bGxpcy1leGFtcGxl$\
                        T+N9gAObdzN1BENm8UK6fglrNgyUD/IC77MATr+TTyM";

    #[test]
    fn real_hashes_pass() {
        assert_eq!(check_argon2id_phc(GOOD), Ok(()));
        // No version field (argon2 1.0 output) and extra parameters.
        assert_eq!(
            check_argon2id_phc("$argon2id$m=65536,t=3,p=4,keyid=AAAA$c29tZXNhbHRzYWx0$aGFzaGhh"),
            Ok(())
        );
    }

    #[test]
    fn malformed_hashes_fail_with_the_reason() {
        let cases = [
            ("change-me", "must start with \"$argon2id$\""),
            (
                "$argon2i$v=19$m=19456,t=2,p=1$cG9ydGN1bGxpcy1leGFtcGxl$T+N9gAObdzN1BENm",
                "must start with \"$argon2id$\"",
            ),
            ("$argon2id$v=19$m=19456,t=2,p=1", "'$'-separated fields"),
            (
                "$argon2id$v=18$m=19456,t=2,p=1$cG9ydGN1bGxpcy1leGFtcGxl$T+N9gAObdzN1BENm",
                "version field",
            ),
            (
                "$argon2id$v=19$m=19456,t=2$cG9ydGN1bGxpcy1leGFtcGxl$T+N9gAObdzN1BENm",
                "m, t and p are all required",
            ),
            (
                "$argon2id$v=19$m=19456,t=x,p=1$cG9ydGN1bGxpcy1leGFtcGxl$T+N9gAObdzN1BENm",
                "parameter t must be a positive decimal number",
            ),
            (
                "$argon2id$v=19$m=1,m=2,t=2,p=1$cG9ydGN1bGxpcy1leGFtcGxl$T+N9gAObdzN1BENm",
                "appears twice",
            ),
            (
                "$argon2id$v=19$m=19456,t=2,p=1,x=1$cG9ydGN1bGxpcy1leGFtcGxl$T+N9gAObdzN1BENm",
                "unknown parameter \"x\"",
            ),
            (
                "$argon2id$v=19$m=19456,t=2,p=1$short$T+N9gAObdzN1BENm",
                "salt must be",
            ),
            (
                "$argon2id$v=19$m=19456,t=2,p=1$cG9ydGN1bGxpcy1leGFtcGxl$T+N9gAObdzN1BENm=",
                "hash must be",
            ),
            (
                "$argon2id$v=19$m=19456,t=2,p=1$cG9ydGN1bGxpcy1leGFtcGxl$",
                "hash must be",
            ),
        ];
        for (phc, why) in cases {
            let error = check_argon2id_phc(phc).expect_err(phc);
            assert!(error.contains(why), "{phc}: {error}");
            assert!(
                !error.contains("cG9ydGN1"),
                "the error quotes the hash: {error}"
            );
        }
    }

    #[test]
    fn names_differing_only_in_case_are_one_user() {
        let user = |name: &str| LocalUser {
            name: name.into(),
            password_hash: Secret::new(GOOD),
            roles: Vec::new(),
            enabled: true,
        };
        let mut report = Report::default();
        check_users(
            &mut report,
            &[user("alice"), user("ALICE"), user("\u{ff41}lice")],
            &default_roles(),
        );
        let messages: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0]
                .starts_with("local_users[1].name: \"ALICE\" is the same user as local_users[0]")
        );
        assert!(messages[1].starts_with("local_users[2].name:"));
    }

    #[test]
    fn users_are_checked_for_names_hashes_and_roles() {
        let user = |name: &str, hash: &str, roles: &[&str]| LocalUser {
            name: name.into(),
            password_hash: Secret::new(hash),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            enabled: true,
        };
        let users = [
            user("admin", GOOD, &["Administrator"]),
            user("admin", GOOD, &["Monitor", "Root"]),
            user("", "plain", &[]),
            user("bob smith", GOOD, &[]),
        ];
        let mut report = Report::default();
        check_users(&mut report, &users, &default_roles());
        let messages: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "local_users[1].name: \"admin\" is already used by local_users[0]",
                "local_users[1].roles[1]: \"Root\" is not a defined role (add it to `roles` first)",
                "local_users[2].name: must not be empty",
                "local_users[2].password_hash: must start with \"$argon2id$\"; expected an argon2id \
                 PHC string $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>",
                "local_users[3].name: \"bob smith\" contains whitespace or a control character",
            ]
        );
    }

    #[test]
    fn debug_cloaks_the_hash() {
        let user = LocalUser {
            name: "admin".into(),
            password_hash: Secret::new(GOOD),
            roles: vec![],
            enabled: true,
        };
        let debug = format!("{user:?}");
        assert!(!debug.contains("argon2id"), "{debug}");
        assert!(debug.contains("****************"), "{debug}");
    }
}
