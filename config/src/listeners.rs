//! `[listeners]`: the sockets the daemon serves on.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::error::Report;

/// The management API's default: HTTPS on loopback only, so a fresh install is not reachable
/// from the network until an administrator says so.
pub const DEFAULT_API_LISTENER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);

/// `[listeners]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listeners {
    /// TCP addresses of the REST API (login, management). IPv6 in brackets: `"[::1]:8443"`.
    /// Port 0 asks the OS for a free port (tests).
    pub api: Vec<SocketAddr>,
    /// UDP addresses of the RADIUS front-end that lets RADIUS clients log in through the
    /// sequence; empty (the default) turns the front-end off.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub radius_frontend: Vec<SocketAddr>,
    /// TCP addresses of the RadSec front-end (RADIUS over TLS, RFC 6614; port 2083 by
    /// convention): the same front-end for clients that authenticate with certificates
    /// (`radius_frontend.tls_certificate`, clients with `transport = "tls"`); empty (the
    /// default) turns it off.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub radsec: Vec<SocketAddr>,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            api: vec![DEFAULT_API_LISTENER],
            radius_frontend: Vec::new(),
            radsec: Vec::new(),
        }
    }
}

impl Listeners {
    /// Validates the section: no address twice in a list; warns when the API has no listener.
    pub(crate) fn check(&self, report: &mut Report) {
        check_unique(report, "listeners.api", &self.api);
        check_unique(report, "listeners.radius_frontend", &self.radius_frontend);
        check_unique(report, "listeners.radsec", &self.radsec);
        if self.api.is_empty() {
            report.warn(
                "listeners.api",
                "is empty: the REST API (login and management) is not served",
            );
        }
    }
}

/// Records an error for every address that appears earlier in the same list; port 0 may
/// repeat, each gets its own free port.
fn check_unique(report: &mut Report, list: &str, addresses: &[SocketAddr]) {
    let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
    for (index, address) in addresses.iter().enumerate() {
        if address.port() == 0 {
            continue;
        }
        if let Some(first) = seen.get(address) {
            report.error(
                format!("{list}[{index}]"),
                format!("{address} is already listed as {list}[{first}]"),
            );
        } else {
            seen.insert(*address, index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_loopback_api_and_no_frontend() {
        let listeners = Listeners::default();
        assert_eq!(listeners.api.len(), 1);
        assert_eq!(listeners.api[0].to_string(), "127.0.0.1:8443");
        assert!(listeners.api[0].ip().is_loopback());
        assert!(listeners.radius_frontend.is_empty());
    }

    #[test]
    fn parses_v4_and_v6_and_rejects_bad_addresses() {
        let listeners: Listeners =
            toml::from_str("api = [\"[::1]:8443\", \"0.0.0.0:443\"]").expect("parses");
        assert_eq!(listeners.api[0].to_string(), "[::1]:8443");
        assert!(listeners.radius_frontend.is_empty());
        let error = toml::from_str::<Listeners>("api = [\"localhost:8443\"]")
            .expect_err("socket addresses are IP literals");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn duplicates_and_empty_api() {
        let listeners: Listeners = toml::from_str(
            "api = []\nradius_frontend = [\"127.0.0.1:1812\", \"127.0.0.1:0\", \
             \"127.0.0.1:1812\", \"127.0.0.1:0\"]",
        )
        .expect("parses");
        let mut report = Report::default();
        listeners.check(&mut report);
        let messages: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "listeners.radius_frontend[2]: 127.0.0.1:1812 is already listed as \
              listeners.radius_frontend[0]"
            ]
        );
        assert_eq!(report.warnings.len(), 1);
        assert_eq!(report.warnings[0].path, "listeners.api");
    }
}
