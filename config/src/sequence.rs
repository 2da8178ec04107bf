//! The five fixed authentication sequences of the management API (`all_auth_sequences`).
//!
//! The sequences are part of the product, not of the configuration: the file only chooses one
//! by id (`authentication.current_sequence`).

use std::fmt;

/// One authentication method of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// The local users of the configuration file.
    Local,
    /// The configured RADIUS servers, tried in `order`.
    Radius,
    /// The configured TACACS+ servers, tried in `order`.
    Tacacs,
}

impl Method {
    /// The name the management API uses for the method: `Local`, `RADIUS` or `TACACS+`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "Local",
            Self::Radius => "RADIUS",
            Self::Tacacs => "TACACS+",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The smallest sequence id.
pub const FIRST_SEQUENCE: u8 = 1;
/// The largest sequence id.
pub const LAST_SEQUENCE: u8 = 5;
/// The sequence a fresh configuration uses: 5, "Local only".
pub const DEFAULT_SEQUENCE: u8 = 5;

/// Every sequence as `(id, methods, display string)`, in id order, exactly as the management
/// API lists them.
pub const SEQUENCES: [(u8, &[Method], &str); 5] = [
    (
        1,
        &[Method::Local, Method::Radius, Method::Tacacs],
        "Local, RADIUS, TACACS+",
    ),
    (
        2,
        &[Method::Local, Method::Tacacs, Method::Radius],
        "Local, TACACS+, RADIUS",
    ),
    (3, &[Method::Local, Method::Radius], "Local, RADIUS"),
    (4, &[Method::Local, Method::Tacacs], "Local, TACACS+"),
    (5, &[Method::Local], "Local only"),
];

/// The methods of sequence `id`, in the order they are tried; `None` for an id outside 1..=5.
pub fn sequence(id: u8) -> Option<&'static [Method]> {
    SEQUENCES
        .iter()
        .find(|(sequence_id, _, _)| *sequence_id == id)
        .map(|(_, methods, _)| *methods)
}

/// The display string of sequence `id` (`"Local, RADIUS, TACACS+"`, ..., `"Local only"`);
/// `None` for an id outside 1..=5.
pub fn sequence_name(id: u8) -> Option<&'static str> {
    SEQUENCES
        .iter()
        .find(|(sequence_id, _, _)| *sequence_id == id)
        .map(|(_, _, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_sequences_match_the_reference() {
        use Method::{Local, Radius, Tacacs};
        assert_eq!(sequence(1), Some(&[Local, Radius, Tacacs][..]));
        assert_eq!(sequence(2), Some(&[Local, Tacacs, Radius][..]));
        assert_eq!(sequence(3), Some(&[Local, Radius][..]));
        assert_eq!(sequence(4), Some(&[Local, Tacacs][..]));
        assert_eq!(sequence(5), Some(&[Local][..]));
        assert_eq!(sequence_name(1), Some("Local, RADIUS, TACACS+"));
        assert_eq!(sequence_name(2), Some("Local, TACACS+, RADIUS"));
        assert_eq!(sequence_name(3), Some("Local, RADIUS"));
        assert_eq!(sequence_name(4), Some("Local, TACACS+"));
        assert_eq!(sequence_name(5), Some("Local only"));
    }

    #[test]
    fn ids_outside_the_range_have_no_sequence() {
        assert_eq!(sequence(0), None);
        assert_eq!(sequence(6), None);
        assert_eq!(sequence_name(0), None);
        assert_eq!(sequence_name(255), None);
    }

    #[test]
    fn display_names_are_built_from_the_method_names() {
        // The display string of every sequence but "Local only" is its methods joined by ", ".
        for (id, methods, name) in SEQUENCES {
            if id == 5 {
                continue;
            }
            let joined: Vec<&str> = methods.iter().map(|method| method.name()).collect();
            assert_eq!(joined.join(", "), name, "sequence {id}");
        }
        assert_eq!(Method::Tacacs.to_string(), "TACACS+");
    }
}
