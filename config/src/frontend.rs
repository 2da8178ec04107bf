//! The `[radius_frontend]` section: the RADIUS clients allowed to log users in through the
//! daemon's RADIUS front-end, and how roles are sent back to them. The UDP addresses the
//! front-end listens on are `listeners.radius_frontend`.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::host::Host;
use crate::radius::{MAX_VENDOR_ID, RadiusTransport, RequireMessageAuthenticator};
use crate::secret::{CLOAK, Secret};
use crate::servers::SHORT_SECRET;

/// Default of [`RadiusFrontend::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 256;
/// Default of [`RadiusFrontend::dedup_cache`].
pub const DEFAULT_DEDUP_CACHE: u32 = 4096;
/// Default of [`RadiusFrontend::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: u32 = 64;
/// Default of [`RadiusFrontend::idle_timeout`], in seconds.
pub const DEFAULT_IDLE_TIMEOUT: u32 = 300;
/// The shared secret of RadSec when none is configured (RFC 6614 §2.3).
pub const RADSEC_SECRET: &str = "radsec";
/// Upper bound of [`RadiusFrontend::max_connections`].
const MAX_CONNECTIONS: u32 = 65_536;
/// Upper bound of [`RadiusFrontend::idle_timeout`]: a day.
const MAX_IDLE_TIMEOUT: u32 = 86_400;
/// Upper bound of [`RadiusFrontend::max_in_flight`].
const MAX_IN_FLIGHT: u32 = 65_536;
/// Upper bound of [`RadiusFrontend::dedup_cache`]: a cached reply is at most 4096 octets.
const MAX_DEDUP_CACHE: u32 = 1 << 20;

/// `[radius_frontend]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RadiusFrontend {
    /// The RADIUS clients (NASes) allowed to send requests; packets from any other source
    /// address are dropped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<FrontendClient>,
    /// How the roles of an accepted user go back in the Access-Accept.
    pub role_attribute: RoleAttribute,
    /// Sequence walks running at once, 1..=65536. A request over the limit is dropped (and
    /// counted); the client retransmits it later.
    pub max_in_flight: u32,
    /// Replies remembered for duplicate detection (RFC 5080 §2.2.2), 1..=1048576: a
    /// retransmitted request gets the remembered reply instead of a second walk.
    pub dedup_cache: u32,
    /// PEM certificate chain the RadSec front-end (`listeners.radsec`) presents to clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_certificate: Option<String>,
    /// PEM private key of `tls_certificate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
    /// RadSec connections open at once, 1..=65536; one more is closed as soon as it is
    /// accepted.
    pub max_connections: u32,
    /// Seconds, 1..=86400, after which a RadSec connection that sent nothing is closed.
    pub idle_timeout: u32,
}

impl Default for RadiusFrontend {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            role_attribute: RoleAttribute::Class,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            dedup_cache: DEFAULT_DEDUP_CACHE,
            tls_certificate: None,
            tls_key: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl RadiusFrontend {
    /// Whether every field has its default value (the section is then left out of the file).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Validates the section.
    pub(crate) fn check(&self, report: &mut Report) {
        let mut ids: HashMap<u32, usize> = HashMap::new();
        let mut networks: HashMap<(IpNet, RadiusTransport), usize> = HashMap::new();
        for (index, client) in self.clients.iter().enumerate() {
            let path = format!("radius_frontend.clients[{index}]");
            if let Some(first) = ids.get(&client.id) {
                report.error(
                    format!("{path}.id"),
                    format!(
                        "{} is already used by radius_frontend.clients[{first}]",
                        client.id
                    ),
                );
            } else {
                ids.insert(client.id, index);
            }
            if client.name.trim().is_empty() {
                report.error(format!("{path}.name"), "must not be empty");
            } else if client.name.chars().any(char::is_control) {
                report.error(
                    format!("{path}.name"),
                    format!("{:?} contains a control character", client.name),
                );
            }
            match client.address.parse::<IpNet>() {
                Ok(net) => {
                    let net = (net, client.transport);
                    if let Some(first) = networks.get(&net) {
                        report.error(
                            format!("{path}.address"),
                            format!(
                                "{} is already the address of radius_frontend.clients[{first}]",
                                net.0
                            ),
                        );
                    } else {
                        networks.insert(net, index);
                    }
                }
                Err(why) => report.error(format!("{path}.address"), why),
            }
            // RFC 6614 §2.3: over TLS the secret defaults to "radsec".
            if client.transport == RadiusTransport::Udp || !client.secret.is_empty() {
                check_client_secret(report, &format!("{path}.secret"), &client.secret);
            }
            client.check_tls(report, &path);
        }
        for (key, value) in [
            ("tls_certificate", &self.tls_certificate),
            ("tls_key", &self.tls_key),
        ] {
            if value.as_deref().is_some_and(|p| !p.starts_with('/')) {
                report.error(
                    format!("radius_frontend.{key}"),
                    "must be an absolute path to a PEM file",
                );
            }
        }
        if self.tls_certificate.is_some() != self.tls_key.is_some() {
            report.error(
                "radius_frontend.tls_key",
                "tls_certificate and tls_key go together: set both, or neither",
            );
        }
        report.range(
            "radius_frontend.max_connections",
            self.max_connections,
            1,
            MAX_CONNECTIONS,
        );
        report.range(
            "radius_frontend.idle_timeout",
            self.idle_timeout,
            1,
            MAX_IDLE_TIMEOUT,
        );
        if let RoleAttribute::Vendor {
            vendor,
            vendor_type,
        } = self.role_attribute
        {
            if vendor == 0 || vendor > MAX_VENDOR_ID {
                report.error(
                    "radius_frontend.role_attribute.vendor",
                    format!(
                        "{vendor} is outside 1..={MAX_VENDOR_ID}, the vendor ids a \
                         Vendor-Specific attribute can carry (RFC 2865 §5.26)"
                    ),
                );
            }
            if vendor_type == 0 {
                report.error(
                    "radius_frontend.role_attribute.vendor_type",
                    "0 is not a usable vendor type; use 1..=255",
                );
            }
        }
        report.range(
            "radius_frontend.max_in_flight",
            self.max_in_flight,
            1,
            MAX_IN_FLIGHT,
        );
        report.range(
            "radius_frontend.dedup_cache",
            self.dedup_cache,
            1,
            MAX_DEDUP_CACHE,
        );
    }
}

/// A client's shared secret must be set, must not be the API's cloak, and should be 16 octets
/// or more.
fn check_client_secret(report: &mut Report, path: &str, secret: &Secret) {
    if secret.is_empty() {
        report.error(
            path,
            "must not be empty: the shared secret authenticates every packet exchanged with \
             the client",
        );
    } else if secret.expose() == CLOAK {
        report.error(
            path,
            "is the cloak the management API shows instead of a secret, not a secret; fetch the \
             clients with ?uncloak to get the real value",
        );
    } else if secret.len() < SHORT_SECRET {
        report.warn(
            path,
            format!(
                "is only {} bytes long; use at least {SHORT_SECRET} random bytes, a short secret \
                 can be brute-forced from one captured packet",
                secret.len()
            ),
        );
    }
}

/// One RADIUS client of the front-end (`[[radius_frontend.clients]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontendClient {
    /// Stable identifier, unique among the clients; the management API's client id.
    pub id: u32,
    /// A name for logs (`ssh-pam`, `vpn-1`).
    pub name: String,
    /// The source address the client sends from: an IPv4 or IPv6 address, or a CIDR network
    /// (`10.0.0.0/8`, `2001:db8::/32`). A packet belongs to the client with the longest
    /// matching prefix.
    pub address: String,
    /// Shared secret; verifies Message-Authenticators, recovers User-Password and signs the
    /// replies. Should be 16 bytes or more. Over TLS it may be left out: then `radsec`
    /// (RFC 6614 §2.3).
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub secret: Secret,
    /// Whether requests must carry a valid Message-Authenticator (RFC 3579 §3.2): `yes`,
    /// `no`, or `auto` (required once the client has sent one valid signature).
    #[serde(default)]
    pub require_message_authenticator: RequireMessageAuthenticator,
    /// `udp` (the default): the client sends datagrams to `listeners.radius_frontend`.
    /// `tls`: it connects to `listeners.radsec` (RadSec) from `address` with a certificate
    /// signed by `tls_ca`.
    #[serde(default, skip_serializing_if = "RadiusTransport::is_udp")]
    pub transport: RadiusTransport,
    /// PEM bundle of the certificate authorities that may sign the client's certificate
    /// (required over TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
    /// A name the client's certificate must carry as a subject alternative name (a DNS name
    /// or an IP address); unset: any certificate `tls_ca` signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_name: Option<String>,
}

impl FrontendClient {
    /// The shared secret in use: the configured one, or `radsec` over TLS when none is.
    pub fn shared_secret(&self) -> &[u8] {
        if self.transport == RadiusTransport::Tls && self.secret.is_empty() {
            RADSEC_SECRET.as_bytes()
        } else {
            self.secret.expose().as_bytes()
        }
    }

    /// Validates the transport and TLS keys of the client at `path`.
    fn check_tls(&self, report: &mut Report, path: &str) {
        if self.transport == RadiusTransport::Udp {
            if self.tls_ca.is_some() || self.tls_name.is_some() {
                report.error(
                    format!("{path}.transport"),
                    "tls_ca or tls_name is set but the transport is not \"tls\"",
                );
            }
            return;
        }
        match &self.tls_ca {
            None => report.error(
                format!("{path}.tls_ca"),
                "is required over TLS: the CA bundle that signs the client's certificate",
            ),
            Some(ca) if !ca.starts_with('/') => report.error(
                format!("{path}.tls_ca"),
                "must be an absolute path to a PEM file",
            ),
            Some(_) => {}
        }
        if let Some(name) = &self.tls_name {
            if let Err(why) = Host::parse(name) {
                report.error(format!("{path}.tls_name"), why);
            }
        }
    }

    /// The parsed address; `None` only for a configuration that failed validation.
    pub fn network(&self) -> Option<IpNet> {
        self.address.parse().ok()
    }
}

/// How the roles of an accepted user are written into the Access-Accept.
///
/// In TOML: `role_attribute = "class"`, or `role_attribute = { vendor = 17164, vendor_type = 1 }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RoleAttributeRepr", into = "RoleAttributeRepr")]
pub enum RoleAttribute {
    /// One Class attribute (RFC 2865 §5.25) per role, holding the role name.
    #[default]
    Class,
    /// One Vendor-Specific attribute (RFC 2865 §5.26) per role, with one sub-attribute of
    /// `vendor_type` holding the role name.
    Vendor {
        /// The vendor id (SMI enterprise number).
        vendor: u32,
        /// The sub-attribute type.
        vendor_type: u8,
    },
}

/// The TOML forms of [`RoleAttribute`].
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RoleAttributeRepr {
    /// `"class"`.
    Keyword(String),
    /// `{ vendor, vendor_type }`.
    Vendor(VendorRepr),
}

/// `{ vendor = 17164, vendor_type = 1 }`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorRepr {
    /// The vendor id.
    vendor: u32,
    /// The sub-attribute type.
    vendor_type: u8,
}

impl TryFrom<RoleAttributeRepr> for RoleAttribute {
    type Error = String;

    fn try_from(repr: RoleAttributeRepr) -> Result<Self, Self::Error> {
        match repr {
            RoleAttributeRepr::Keyword(word) if word == "class" => Ok(RoleAttribute::Class),
            RoleAttributeRepr::Keyword(word) => Err(format!(
                "unknown role attribute {word:?}: expected \"class\" or \
                 {{ vendor = <id>, vendor_type = <type> }}"
            )),
            RoleAttributeRepr::Vendor(VendorRepr {
                vendor,
                vendor_type,
            }) => Ok(RoleAttribute::Vendor {
                vendor,
                vendor_type,
            }),
        }
    }
}

impl From<RoleAttribute> for RoleAttributeRepr {
    fn from(attribute: RoleAttribute) -> Self {
        match attribute {
            RoleAttribute::Class => RoleAttributeRepr::Keyword("class".into()),
            RoleAttribute::Vendor {
                vendor,
                vendor_type,
            } => RoleAttributeRepr::Vendor(VendorRepr {
                vendor,
                vendor_type,
            }),
        }
    }
}

/// An IP network: an address and a prefix length. A plain address is a /32 (IPv4) or /128
/// (IPv6) network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in the network. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`)
    /// counts as the IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The netmask of an IPv4 prefix length (at most 32).
fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

/// The netmask of an IPv6 prefix length (at most 128).
fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

impl FromStr for IpNet {
    type Err = String;

    /// Parses `10.0.0.1`, `10.0.0.0/8`, `2001:db8::1` or `2001:db8::/32`. Host bits set
    /// below the prefix (`10.0.0.1/8`) are an error: they usually mean a typo.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            format!(
                "{text:?} is not an IP address or network (10.0.0.1, 10.0.0.0/8, 2001:db8::/32)"
            )
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(format!(
                        "{text:?}: the prefix length must be 0..={max} for an {} network",
                        if addr.is_ipv4() { "IPv4" } else { "IPv6" }
                    ));
                }
            },
        };
        let net = IpNet { addr, prefix };
        let host_bits = match addr {
            IpAddr::V4(v4) => u32::from(v4) & !mask32(prefix) != 0,
            IpAddr::V6(v6) => u128::from(v6) & !mask128(prefix) != 0,
        };
        if host_bits {
            return Err(format!(
                "{text:?} has bits set after the first {prefix}; write the network address"
            ));
        }
        Ok(net)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(frontend: &RadiusFrontend) -> Vec<String> {
        let mut report = Report::default();
        frontend.check(&mut report);
        report.errors.iter().map(ToString::to_string).collect()
    }

    fn client(id: u32, address: &str, secret: &str) -> FrontendClient {
        FrontendClient {
            id,
            name: format!("client-{id}"),
            address: address.into(),
            secret: Secret::new(secret),
            require_message_authenticator: RequireMessageAuthenticator::Auto,
            transport: RadiusTransport::Udp,
            tls_ca: None,
            tls_name: None,
        }
    }

    #[test]
    fn defaults() {
        let frontend: RadiusFrontend = toml::from_str("").expect("empty section");
        assert_eq!(frontend, RadiusFrontend::default());
        assert!(frontend.is_default());
        assert_eq!(frontend.role_attribute, RoleAttribute::Class);
        assert_eq!(frontend.max_in_flight, 256);
        assert_eq!(frontend.dedup_cache, 4096);
        assert!(errors(&frontend).is_empty());
        let client: FrontendClient =
            toml::from_str("id = 1\nname = \"pam\"\naddress = \"127.0.0.1\"\nsecret = \"s\"")
                .expect("minimal client");
        assert_eq!(
            client.require_message_authenticator,
            RequireMessageAuthenticator::Auto
        );
    }

    #[test]
    fn role_attribute_forms_round_trip() {
        #[derive(Debug, Serialize, Deserialize)]
        struct Holder {
            role_attribute: RoleAttribute,
        }
        let class: Holder = toml::from_str("role_attribute = \"class\"").expect("class");
        assert_eq!(class.role_attribute, RoleAttribute::Class);
        let vendor: Holder =
            toml::from_str("role_attribute = { vendor = 17164, vendor_type = 2 }").expect("vsa");
        assert_eq!(
            vendor.role_attribute,
            RoleAttribute::Vendor {
                vendor: 17164,
                vendor_type: 2
            }
        );
        for holder in [class, vendor] {
            let text = toml::to_string(&holder).expect("serializes");
            let back: Holder = toml::from_str(&text).expect("parses back");
            assert_eq!(back.role_attribute, holder.role_attribute, "{text}");
        }
        let error = toml::from_str::<Holder>("role_attribute = \"filter-id\"")
            .expect_err("unknown keyword");
        assert!(error.to_string().contains("expected \"class\""), "{error}");
        assert!(
            toml::from_str::<Holder>("role_attribute = { vendor = 1, type = 2 }").is_err(),
            "unknown field"
        );
    }

    #[test]
    fn networks_parse_and_match() {
        let net: IpNet = "10.0.0.0/8".parse().expect("v4 net");
        assert!(net.contains("10.1.2.3".parse().expect("ip")));
        assert!(net.contains("::ffff:10.1.2.3".parse().expect("mapped")));
        assert!(!net.contains("11.0.0.1".parse().expect("ip")));
        assert!(!net.contains("::1".parse().expect("ip")));
        let host: IpNet = "127.0.0.1".parse().expect("v4 host");
        assert_eq!(host.prefix(), 32);
        assert!(host.contains("127.0.0.1".parse().expect("ip")));
        assert!(!host.contains("127.0.0.2".parse().expect("ip")));
        let any: IpNet = "0.0.0.0/0".parse().expect("everything");
        assert!(any.contains("192.0.2.1".parse().expect("ip")));
        let v6: IpNet = "2001:db8::/32".parse().expect("v6 net");
        assert!(v6.contains("2001:db8:1::5".parse().expect("ip")));
        assert!(!v6.contains("2001:db9::5".parse().expect("ip")));
        assert_eq!(v6.to_string(), "2001:db8::/32");
        let loopback6: IpNet = "::1".parse().expect("v6 host");
        assert_eq!(loopback6.prefix(), 128);

        for (text, why) in [
            ("10.0.0.1/8", "bits set after the first 8"),
            ("10.0.0.0/33", "0..=32"),
            ("2001:db8::/129", "0..=128"),
            ("10.0.0.0/", "0..=32"),
            ("10.0.0.0/+8", "0..=32"),
            ("host.example", "not an IP address"),
            ("", "not an IP address"),
        ] {
            let error = text.parse::<IpNet>().expect_err(text);
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn radsec_clients_and_listener_keys() {
        let tls = |id: u32, secret: &str, ca: Option<&str>, name: Option<&str>| FrontendClient {
            transport: RadiusTransport::Tls,
            tls_ca: ca.map(Into::into),
            tls_name: name.map(Into::into),
            ..client(id, "10.0.0.0/8", secret)
        };
        let frontend = RadiusFrontend {
            clients: vec![
                // The same network over UDP and over TLS are two clients.
                client(1, "10.0.0.0/8", "0123456789abcdef"),
                tls(2, "", Some("/etc/ssl/vpn-ca.pem"), Some("vpn.example.net")),
                FrontendClient {
                    address: "192.0.2.0/24".into(),
                    ..tls(3, "", None, Some("not a name"))
                },
                FrontendClient {
                    address: "198.51.100.0/24".into(),
                    ..tls(4, "", Some("ca.pem"), None)
                },
                FrontendClient {
                    address: "203.0.113.0/24".into(),
                    tls_ca: Some("/ca.pem".into()),
                    ..client(5, "203.0.113.0/24", "0123456789abcdef")
                },
            ],
            tls_certificate: Some("/etc/portcullis/radsec.pem".into()),
            tls_key: None,
            max_connections: 0,
            idle_timeout: 86_401,
            ..RadiusFrontend::default()
        };
        assert_eq!(
            errors(&frontend),
            [
                "radius_frontend.clients[2].tls_ca: is required over TLS: the CA bundle that \
                 signs the client's certificate",
                "radius_frontend.clients[2].tls_name: \"not a name\" is not a hostname: ' ' is \
                 not allowed (letters, digits and '-' only, RFC 1123)",
                "radius_frontend.clients[3].tls_ca: must be an absolute path to a PEM file",
                "radius_frontend.clients[4].transport: tls_ca or tls_name is set but the \
                 transport is not \"tls\"",
                "radius_frontend.tls_key: tls_certificate and tls_key go together: set both, or \
                 neither",
                "radius_frontend.max_connections: 0 is outside 1..=65536",
                "radius_frontend.idle_timeout: 86401 is outside 1..=86400",
            ]
        );
        // Over TLS an absent secret is RFC 6614's "radsec"; a configured one is used as is.
        assert_eq!(frontend.clients[1].shared_secret(), b"radsec");
        assert_eq!(
            tls(6, "another-secret", None, None).shared_secret(),
            b"another-secret"
        );
        assert_eq!(frontend.clients[0].shared_secret(), b"0123456789abcdef");
        // Written back, the defaults stay out of the file.
        let written = toml::to_string(&frontend.clients[1]).unwrap();
        assert!(!written.contains("secret"), "{written}");
        assert!(written.contains("transport = \"tls\""), "{written}");
        let written = toml::to_string(&frontend.clients[0]).unwrap();
        assert!(!written.contains("transport"), "{written}");
    }

    #[test]
    fn client_rules() {
        let frontend = RadiusFrontend {
            clients: vec![
                client(1, "127.0.0.1", "0123456789abcdef"),
                client(1, "10.0.0.0/8", "0123456789abcdef"),
                client(2, "127.0.0.1/32", ""),
                client(3, "10.0.0.1/8", &"*".repeat(16)),
            ],
            role_attribute: RoleAttribute::Vendor {
                vendor: 0,
                vendor_type: 0,
            },
            max_in_flight: 0,
            dedup_cache: 0,
            ..RadiusFrontend::default()
        };
        assert_eq!(
            errors(&frontend),
            [
                "radius_frontend.clients[1].id: 1 is already used by radius_frontend.clients[0]",
                "radius_frontend.clients[2].address: 127.0.0.1/32 is already the address of \
                 radius_frontend.clients[0]",
                "radius_frontend.clients[2].secret: must not be empty: the shared secret \
                 authenticates every packet exchanged with the client",
                "radius_frontend.clients[3].address: \"10.0.0.1/8\" has bits set after the \
                 first 8; write the network address",
                "radius_frontend.clients[3].secret: is the cloak the management API shows \
                 instead of a secret, not a secret; fetch the clients with ?uncloak to get the \
                 real value",
                "radius_frontend.role_attribute.vendor: 0 is outside 1..=16777215, the vendor \
                 ids a Vendor-Specific attribute can carry (RFC 2865 §5.26)",
                "radius_frontend.role_attribute.vendor_type: 0 is not a usable vendor type; \
                 use 1..=255",
                "radius_frontend.max_in_flight: 0 is outside 1..=65536",
                "radius_frontend.dedup_cache: 0 is outside 1..=1048576",
            ]
        );
    }

    #[test]
    fn short_secret_and_blank_name() {
        let mut blank = client(1, "::1", "short");
        blank.name = " ".into();
        let frontend = RadiusFrontend {
            clients: vec![blank],
            ..RadiusFrontend::default()
        };
        let mut report = Report::default();
        frontend.check(&mut report);
        let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            ["radius_frontend.clients[0].name: must not be empty"]
        );
        assert_eq!(report.warnings.len(), 1);
        assert_eq!(report.warnings[0].path, "radius_frontend.clients[0].secret");
        assert!(report.warnings[0].message.contains("only 5 bytes"));
    }
}
