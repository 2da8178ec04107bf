//! A string that must never reach a log line: shared secrets and password hashes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What [`Secret`] prints instead of its value: the sixteen asterisks the management API uses
/// for a cloaked secret.
pub const CLOAK: &str = "****************";

/// A secret string (a RADIUS or TACACS+ shared secret, a password hash).
///
/// `Debug` and `Display` print [`CLOAK`], so a secret inside any config struct stays hidden in
/// `{:?}` output and log lines. The real value is reachable only through [`Secret::expose`],
/// which makes every use greppable. Serde reads and writes the real value: the configuration
/// file has to hold it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value. Call it only where the bytes are needed (keying a hash, writing the file).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length of the value in bytes (octets, the unit RFC 2865 measures secrets in).
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(CLOAK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(CLOAK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_cloak_the_value() {
        let secret = Secret::new("hunter2-but-longer");
        assert_eq!(format!("{secret:?}"), "****************");
        assert_eq!(format!("{secret}"), "****************");
        assert_eq!(format!("{secret:#?}"), CLOAK);
        assert_eq!(CLOAK.len(), 16);
    }

    #[test]
    fn expose_returns_the_value() {
        let secret = Secret::from("s3cret");
        assert_eq!(secret.expose(), "s3cret");
        assert_eq!(secret.len(), 6);
        assert!(!secret.is_empty());
        assert!(Secret::default().is_empty());
    }

    #[test]
    fn serde_is_transparent() {
        #[derive(Serialize, Deserialize)]
        struct Holder {
            secret: Secret,
        }
        let holder: Holder = toml::from_str("secret = \"abc\"").expect("parses");
        assert_eq!(holder.secret.expose(), "abc");
        let text = toml::to_string(&holder).expect("serializes");
        assert_eq!(text.trim(), "secret = \"abc\"");
    }
}
