//! Server addresses: an IP literal or an RFC 1123 hostname.

use std::fmt;
use std::net::IpAddr;

/// A parsed server address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 literal; used as is.
    Ip(IpAddr),
    /// A hostname, lower-cased; resolved by the client when it connects.
    Name(String),
}

/// The longest hostname RFC 1123 §2.1 allows (without a trailing dot).
const MAX_NAME: usize = 253;
/// The longest label RFC 1035 §2.3.4 allows.
const MAX_LABEL: usize = 63;

impl Host {
    /// Parses an IP literal (`10.70.45.14`, `2001:db8::1`, no brackets) or an RFC 1123
    /// hostname (letters, digits and `-`, labels of 1..=63 characters, 253 at most, an
    /// optional trailing dot). The error says why the text is neither.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        if text.is_empty() {
            return Err("must not be empty; expected an IP address or a hostname".into());
        }
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            if inner.parse::<IpAddr>().is_ok() {
                return Err(format!(
                    "{text:?}: write the IPv6 address without brackets ({inner:?}); the port \
                     has its own field"
                ));
            }
        }
        if text.contains(':') {
            return Err(format!("{text:?} is not a valid IPv6 address"));
        }
        let name = text.strip_suffix('.').unwrap_or(text);
        if name.len() > MAX_NAME {
            return Err(format!(
                "hostname is {} characters long; RFC 1123 allows at most {MAX_NAME}",
                name.len()
            ));
        }
        let mut last_label = "";
        for label in name.split('.') {
            if label.is_empty() {
                return Err(format!("{text:?} is not a hostname: it has an empty label"));
            }
            if label.len() > MAX_LABEL {
                return Err(format!(
                    "{text:?} is not a hostname: label {label:?} is longer than {MAX_LABEL} \
                     characters"
                ));
            }
            if let Some(bad) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(format!(
                    "{text:?} is not a hostname: {bad:?} is not allowed (letters, digits and \
                     '-' only, RFC 1123)"
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!(
                    "{text:?} is not a hostname: label {label:?} starts or ends with '-'"
                ));
            }
            last_label = label;
        }
        // RFC 1123 §2.1: a valid host name can never look like a dotted-decimal number; an
        // all-digit top label is a mistyped IPv4 address such as 10.70.45.300.
        if last_label.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{text:?} is neither a valid IP address nor a hostname (the last label of a \
                 hostname cannot be all digits)"
            ));
        }
        Ok(Self::Name(name.to_ascii_lowercase()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => ip.fmt(f),
            Self::Name(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_parse_as_ips() {
        assert_eq!(
            Host::parse("10.70.45.14"),
            Ok(Host::Ip("10.70.45.14".parse().expect("ip")))
        );
        assert_eq!(
            Host::parse("2001:db8::1"),
            Ok(Host::Ip("2001:db8::1".parse().expect("ip")))
        );
        assert_eq!(Host::parse("::1"), Ok(Host::Ip("::1".parse().expect("ip"))));
    }

    #[test]
    fn hostnames_parse_lower_cased() {
        assert_eq!(
            Host::parse("Radius-1.Example.COM"),
            Ok(Host::Name("radius-1.example.com".into()))
        );
        assert_eq!(Host::parse("localhost"), Ok(Host::Name("localhost".into())));
        // RFC 1123 allows labels that start with a digit.
        assert_eq!(Host::parse("3com.net."), Ok(Host::Name("3com.net".into())));
    }

    #[test]
    fn bad_addresses_say_why() {
        let cases = [
            ("", "must not be empty"),
            ("[::1]", "without brackets"),
            ("2001:db8::zz", "not a valid IPv6 address"),
            ("a..b", "empty label"),
            ("under_score.example", "'_' is not allowed"),
            ("has space", "' ' is not allowed"),
            ("-lead.example", "starts or ends with '-'"),
            ("trail-.example", "starts or ends with '-'"),
            (
                "10.70.45.300",
                "last label of a hostname cannot be all digits",
            ),
            ("1234", "cannot be all digits"),
        ];
        for (text, why) in cases {
            let error = Host::parse(text).expect_err(text);
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }

    #[test]
    fn length_limits_are_enforced() {
        let long_label = "a".repeat(64);
        let error = Host::parse(&format!("{long_label}.example")).expect_err("label of 64");
        assert!(error.contains("longer than 63"), "{error}");
        assert!(Host::parse(&format!("{}.example", "a".repeat(63))).is_ok());

        let long_name = vec!["abcdefghi"; 26].join("."); // 26 * 10 - 1 = 259
        let error = Host::parse(&long_name).expect_err("name of 259");
        assert!(error.contains("at most 253"), "{error}");
    }
}
