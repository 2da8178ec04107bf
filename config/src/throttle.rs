//! `[throttle]`: brute-force throttling of logins (REST login, HTTP Basic, RADIUS front-end).
//!
//! Failures are counted per user and per source address. After `max_failures` consecutive
//! failures the key is locked for `lockout` seconds; every further failure doubles the lockout
//! up to `max_lockout`. After `hard_limit` consecutive failures (NIST SP 800-63B §5.2.2: no
//! more than 100 failed attempts on one account) the user is locked for `hard_lockout`
//! seconds, or until an administrator clears it when `hard_lockout` is 0.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::IpNet;
use crate::error::Report;

/// Default of [`Throttle::max_failures`].
pub const DEFAULT_MAX_FAILURES: u32 = 10;
/// Default of [`Throttle::lockout`]: a minute.
pub const DEFAULT_LOCKOUT: u32 = 60;
/// Default of [`Throttle::max_lockout`]: an hour.
pub const DEFAULT_MAX_LOCKOUT: u32 = 3600;
/// Default and upper bound of [`Throttle::hard_limit`] (NIST SP 800-63B §5.2.2).
pub const NIST_HARD_LIMIT: u32 = 100;
/// Default of [`Throttle::hard_lockout`]: a day.
pub const DEFAULT_HARD_LOCKOUT: u32 = 86_400;
/// Default of [`Throttle::local_networks`]: loopback.
pub const DEFAULT_LOCAL_NETWORKS: [&str; 2] = ["127.0.0.0/8", "::1/128"];
/// Upper bound of the lockout periods: 30 days.
const MAX_PERIOD: u32 = 30 * 86_400;

/// `[throttle]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Throttle {
    /// Count failures and refuse locked users and sources. Default: true.
    pub enabled: bool,
    /// Consecutive failures of one user (or source) before the first lockout, 1..=100.
    pub max_failures: u32,
    /// Seconds of the first lockout, 1..=2592000; each further failure doubles it.
    pub lockout: u32,
    /// The longest lockout before the hard limit, in seconds, `lockout`..=2592000.
    pub max_lockout: u32,
    /// Consecutive failures of one user after which it is locked for `hard_lockout`,
    /// `max_failures`..=100 (NIST SP 800-63B §5.2.2).
    pub hard_limit: u32,
    /// Seconds a user stays locked after `hard_limit` failures, 0..=2592000; 0 keeps it locked
    /// until an administrator clears it. A failure after it expires locks it again.
    pub hard_lockout: u32,
    /// Also throttle per source address (IPv4 address, IPv6 /64). Sources in
    /// `local_networks` and the Unix socket are exempt from the per-source limit. Default: true.
    pub per_source: bool,
    /// Networks whose REST attempts count as made on the appliance itself (the administrator
    /// rule: a user's failures from them are counted apart from remote ones); the Unix socket
    /// always does. Default: `["127.0.0.0/8", "::1/128"]`.
    pub local_networks: Vec<String>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            enabled: true,
            max_failures: DEFAULT_MAX_FAILURES,
            lockout: DEFAULT_LOCKOUT,
            max_lockout: DEFAULT_MAX_LOCKOUT,
            hard_limit: NIST_HARD_LIMIT,
            hard_lockout: DEFAULT_HARD_LOCKOUT,
            per_source: true,
            local_networks: DEFAULT_LOCAL_NETWORKS.map(String::from).to_vec(),
        }
    }
}

impl Throttle {
    /// Whether every field has its default value (the section is then left out of the file).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether a REST attempt from `ip` counts as made on the appliance: `ip` (or the IPv4
    /// address an IPv4-mapped IPv6 address maps) lies in one of `local_networks`.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.local_networks
            .iter()
            .filter_map(|net| net.parse::<IpNet>().ok())
            .any(|net| net.contains(ip))
    }

    /// Validates the section.
    pub(crate) fn check(&self, report: &mut Report) {
        report.range(
            "throttle.max_failures",
            self.max_failures,
            1,
            NIST_HARD_LIMIT,
        );
        report.range("throttle.lockout", self.lockout, 1, MAX_PERIOD);
        report.range(
            "throttle.max_lockout",
            self.max_lockout,
            self.lockout.clamp(1, MAX_PERIOD),
            MAX_PERIOD,
        );
        report.range(
            "throttle.hard_limit",
            self.hard_limit,
            self.max_failures.clamp(1, NIST_HARD_LIMIT),
            NIST_HARD_LIMIT,
        );
        report.range("throttle.hard_lockout", self.hard_lockout, 0, MAX_PERIOD);
        for (index, net) in self.local_networks.iter().enumerate() {
            let path = format!("throttle.local_networks[{index}]");
            match net.parse::<IpNet>() {
                Ok(net) if !net.addr().to_canonical().is_loopback() => report.warn(
                    path,
                    format!("{net} is not loopback: attempts from it have no per-source limit"),
                ),
                Ok(_) => {}
                Err(why) => report.error(path, why),
            }
        }
        if !self.enabled {
            report.warn(
                "throttle.enabled",
                "is false: passwords can be guessed without limit",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_nist() {
        let throttle = Throttle::default();
        let mut report = Report::default();
        throttle.check(&mut report);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(throttle.max_failures, 10);
        assert_eq!(throttle.hard_limit, 100);
    }

    #[test]
    fn local_networks_default_to_loopback() {
        let throttle = Throttle::default();
        assert_eq!(throttle.local_networks, ["127.0.0.0/8", "::1/128"]);
        for ip in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(throttle.is_local(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "::"] {
            assert!(!throttle.is_local(ip.parse().unwrap()), "{ip}");
        }
        let parsed: Throttle = toml::from_str("local_networks = [\"127.0.0.2/32\"]").unwrap();
        assert!(parsed.is_local("::ffff:127.0.0.2".parse().unwrap()));
        assert!(!parsed.is_local("127.0.0.1".parse().unwrap()));
        let none: Throttle = toml::from_str("local_networks = []").unwrap();
        assert!(!none.is_local("127.0.0.1".parse().unwrap()));
        // A network that is not loopback is allowed, with a warning.
        let lan = Throttle {
            local_networks: vec!["10.0.0.0/8".into()],
            ..Throttle::default()
        };
        let mut report = Report::default();
        lan.check(&mut report);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.warnings.len(), 1);
        assert_eq!(report.warnings[0].path, "throttle.local_networks[0]");
    }

    #[test]
    fn out_of_range_values_name_their_fields() {
        let throttle = Throttle {
            enabled: false,
            max_failures: 0,
            lockout: 600,
            max_lockout: 60,
            hard_limit: 101,
            hard_lockout: 40 * 86_400,
            per_source: true,
            local_networks: vec!["::1/128".into(), "127.0.0.1/8".into(), "localhost".into()],
        };
        let mut report = Report::default();
        throttle.check(&mut report);
        let messages: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "throttle.max_failures: 0 is outside 1..=100",
                "throttle.max_lockout: 60 is outside 600..=2592000",
                "throttle.hard_limit: 101 is outside 1..=100",
                "throttle.hard_lockout: 3456000 is outside 0..=2592000",
                "throttle.local_networks[1]: \"127.0.0.1/8\" has bits set after the first 8; \
                 write the network address",
                "throttle.local_networks[2]: \"localhost\" is not an IP address or network \
                 (10.0.0.1, 10.0.0.0/8, 2001:db8::/32)",
            ]
        );
        assert_eq!(report.warnings.len(), 1);
        assert_eq!(report.warnings[0].path, "throttle.enabled");
    }
}
