//! The canonical identity of a login: one key per user for every piece of per-user state.
//!
//! Upstream servers backed by a directory do not compare user names byte for byte: LDAP's
//! `caseIgnoreMatch` (RFC 4518 string preparation) and Active Directory accept `ALICE`,
//! ` alice` and `ａｌｉｃｅ` (full-width) for `alice`. Anything portcullis keeps per user (paired
//! devices and their replay steps, second-factor and throttle lockouts, exemptions, delivered
//! codes, sessions) must therefore be keyed the way such a server compares names, or a variant
//! of a name would find none of the user's state and, for example, owe a second factor it can
//! enrol itself.
//!
//! The key ([`UserKey::of`]) is the name with surrounding white space trimmed, Unicode
//! compatibility-normalised (NFKC: full-width and other compatibility forms become their plain
//! letters, composed and decomposed accents become one form), case-folded (Unicode default
//! case folding: `ß` and `SS` and `ss` are one name), and normalised again (folding can undo
//! NFKC). Inner spaces are kept as they are: directories that collapse them are rare, and a
//! name with spaces inside is rare too. The name as typed is kept beside the key for display
//! (the login answer, the audit log).

use std::fmt;

use compact_str::CompactString;
use unicode_normalization::UnicodeNormalization;

/// The canonical identity of a user name; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey(CompactString);

impl UserKey {
    /// The key of `name` as typed.
    pub fn of(name: &str) -> UserKey {
        let name = name.trim();
        if name.is_ascii() {
            // ASCII is its own NFKC form, and its default case folding is ASCII lowercase:
            // the same key as the path below, without its three passes and allocations.
            // Held inline up to 24 octets: no allocation for most names.
            let mut key = CompactString::with_capacity(name.len());
            key.extend(name.chars().map(|c| c.to_ascii_lowercase()));
            return UserKey(key);
        }
        let normalised: String = name.nfkc().collect();
        let folded = caseless::default_case_fold_str(&normalised);
        UserKey(folded.nfkc().collect::<String>().into())
    }

    /// A key read back from the state database, where only keys are stored.
    pub fn from_stored(key: String) -> UserKey {
        UserKey(key.into())
    }

    /// The key's text (what the state database stores).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` as typed has this key.
    pub fn matches(&self, name: &str) -> bool {
        UserKey::of(name) == *self
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key by the full Unicode path, with no ASCII shortcut.
    fn slow(name: &str) -> String {
        let normalised: String = name.trim().nfkc().collect();
        let folded = caseless::default_case_fold_str(&normalised);
        folded.nfkc().collect()
    }

    #[test]
    fn the_ascii_shortcut_gives_the_unicode_key() {
        // Every ASCII character, alone and inside a name with surrounding spaces.
        for byte in 0u8..=127 {
            let c = char::from(byte);
            for name in [c.to_string(), format!(" Al{c}ce\t"), format!("{c}{c}X")] {
                assert_eq!(UserKey::of(&name).as_str(), slow(&name), "{name:?}");
            }
        }
        for name in [
            "ALICE",
            " Bob ",
            "o'Neil-SMITH_2",
            "DOMAIN\\User",
            "a@B.example",
        ] {
            assert_eq!(UserKey::of(name).as_str(), slow(name), "{name:?}");
        }
    }

    #[test]
    fn variants_of_a_name_share_one_key() {
        let alice = UserKey::of("alice");
        assert_eq!(alice.as_str(), "alice");
        for variant in [
            "ALICE",
            "Alice",
            " alice\t",
            "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}", // full-width
            "\u{ff21}LICE",
        ] {
            assert_eq!(UserKey::of(variant), alice, "{variant:?}");
            assert!(alice.matches(variant));
        }
        // Composed and decomposed accents, and the sharp s.
        assert_eq!(UserKey::of("Ren\u{e9}"), UserKey::of("RENE\u{301}"));
        assert_eq!(UserKey::of("stra\u{df}e"), UserKey::of("STRASSE"));
        // Different names stay different.
        assert_ne!(UserKey::of("alice"), UserKey::of("alicia"));
        assert_ne!(UserKey::of("a lice"), alice);
        assert_eq!(UserKey::of("a  b").as_str(), "a  b");
    }
}
