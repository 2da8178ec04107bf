//! The `[radius]` section: servers, settings and role mappings.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::host::Host;
use crate::roles::check_role;
use crate::secret::Secret;
use crate::servers::{Listed, ServerFields, check_list, enabled_in_order};
use crate::tls::TlsClient;

/// The RADIUS authentication port (RFC 2865 §3).
pub const DEFAULT_RADIUS_PORT: u16 = 1812;
/// The RadSec port (RFC 6614 §2.1).
pub const DEFAULT_RADSEC_PORT: u16 = 2083;
/// The shared secret of RADIUS over TLS unless one is configured (RFC 6614 §2.3).
pub const DEFAULT_RADSEC_SECRET: &str = "radsec";
/// Seconds to wait for a reply before resending; the management API's example value.
pub const DEFAULT_RADIUS_TIMEOUT: u32 = 5;
/// Sends per server before it counts as unavailable; the management API's example value.
pub const DEFAULT_RADIUS_TRIES: u32 = 3;
/// Longest NAS-Identifier value (RFC 2865 §5.32: an attribute holds at most 253 octets).
const MAX_STRING_ATTRIBUTE: usize = 253;
/// Longest value of a vendor sub-attribute: 253 minus the Vendor-Id (4) and the vendor
/// type and length octets (2), RFC 2865 §5.26.
const MAX_VENDOR_VALUE: usize = 247;
/// Largest Vendor-Id: the high-order octet of the 4-octet field is 0 (RFC 2865 §5.26).
pub const MAX_VENDOR_ID: u32 = 0x00ff_ffff;

/// Everything RADIUS: `[radius.settings]`, `[[radius.servers]]`, `[[radius.role_mappings]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Radius {
    /// NAS attributes, timeout and tries; shared by every server (`radius/settings`).
    pub settings: RadiusSettings,
    /// The servers, tried in `order` (`radius/server`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<RadiusServer>,
    /// Which reply attributes grant which role (`radius/role_mapping`). A user gets every
    /// role whose mapping matches the Access-Accept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub role_mappings: Vec<RadiusRoleMapping>,
}

impl Radius {
    /// The enabled servers, in the order they are tried.
    pub fn enabled_servers(&self) -> Vec<&RadiusServer> {
        enabled_in_order(&self.servers)
    }

    /// Validates the section; `roles` are the defined role names.
    pub(crate) fn check(&self, report: &mut Report, roles: &[String]) {
        self.settings.check(report, "radius.settings");
        check_list(report, "radius.servers", &self.servers);
        for (index, server) in self.servers.iter().enumerate() {
            server.tls.check(
                report,
                &format!("radius.servers[{index}]"),
                server.transport == RadiusTransport::Tls,
            );
        }
        for (index, mapping) in self.role_mappings.iter().enumerate() {
            mapping.check(report, &format!("radius.role_mappings[{index}]"), roles);
        }
    }
}

/// One RADIUS server (`[[radius.servers]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RadiusServerFile")]
pub struct RadiusServer {
    /// Stable identifier, unique among RADIUS servers: the management API's `server_id`, used
    /// in its URLs, so it must not change when servers are reordered.
    pub id: u32,
    /// Position in the try order, unique among RADIUS servers; lower is tried first. The API
    /// numbers from 0.
    pub order: u32,
    /// IPv4 or IPv6 literal (no brackets) or an RFC 1123 hostname.
    pub address: String,
    /// Port of the server: by default 1812 (UDP), or 2083 over TLS.
    pub port: u16,
    /// Shared secret; keys the Request/Response Authenticators, User-Password hiding and
    /// Message-Authenticator. Should be 16 bytes or more; over TLS `radsec` unless given
    /// (RFC 6614 §2.3).
    pub secret: Secret,
    /// How the password is sent: `PAP` (User-Password) or `CHAP` (CHAP-Password).
    pub protocol: RadiusProtocol,
    /// Disabled servers stay configured but are never tried.
    pub enabled: bool,
    /// Whether replies must carry a valid Message-Authenticator (RFC 3579 §3.2), which is
    /// what defeats forged replies (the BlastRADIUS attack).
    pub require_message_authenticator: RequireMessageAuthenticator,
    /// How packets travel: `udp` (RFC 2865) or `tls` (RadSec, RFC 6614: TLS 1.2 or 1.3).
    #[serde(skip_serializing_if = "RadiusTransport::is_udp")]
    pub transport: RadiusTransport,
    /// With `transport = "tls"`: how the server is verified and how portcullis identifies
    /// itself (the `tls_*` keys).
    #[serde(flatten)]
    pub tls: TlsClient,
}

/// [`RadiusServer`] as the file has it: the port's and the secret's defaults depend on the
/// transport.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RadiusServerFile {
    id: u32,
    order: u32,
    address: String,
    port: Option<u16>,
    secret: Option<Secret>,
    #[serde(default)]
    protocol: RadiusProtocol,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    require_message_authenticator: RequireMessageAuthenticator,
    #[serde(default)]
    transport: RadiusTransport,
    tls_ca: Option<String>,
    tls_server_name: Option<String>,
    tls_certificate: Option<String>,
    tls_key: Option<String>,
}

impl From<RadiusServerFile> for RadiusServer {
    fn from(file: RadiusServerFile) -> Self {
        let tls = file.transport == RadiusTransport::Tls;
        RadiusServer {
            id: file.id,
            order: file.order,
            address: file.address,
            port: file.port.unwrap_or(if tls {
                DEFAULT_RADSEC_PORT
            } else {
                DEFAULT_RADIUS_PORT
            }),
            secret: file.secret.unwrap_or_else(|| {
                if tls {
                    Secret::new(DEFAULT_RADSEC_SECRET)
                } else {
                    Secret::default()
                }
            }),
            protocol: file.protocol,
            enabled: file.enabled,
            require_message_authenticator: file.require_message_authenticator,
            transport: file.transport,
            tls: TlsClient {
                tls_ca: file.tls_ca,
                tls_server_name: file.tls_server_name,
                tls_certificate: file.tls_certificate,
                tls_key: file.tls_key,
            },
        }
    }
}

/// How a RADIUS server is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RadiusTransport {
    /// UDP (RFC 2865), port 1812 by default.
    #[default]
    Udp,
    /// TLS (RadSec, RFC 6614), port 2083 by default.
    Tls,
}

impl RadiusTransport {
    /// Whether it is UDP (the default, left out of the file).
    pub fn is_udp(&self) -> bool {
        *self == RadiusTransport::Udp
    }
}

impl Listed for RadiusServer {
    fn fields(&self) -> ServerFields<'_> {
        ServerFields {
            id: self.id,
            order: self.order,
            address: &self.address,
            port: self.port,
            // Over TLS the secret protects nothing TLS does not (RFC 6614 §2.3).
            secret: (self.transport == RadiusTransport::Udp).then_some(&self.secret),
        }
    }

    fn enabled(&self) -> bool {
        self.enabled
    }
}

impl RadiusServer {
    /// The parsed address; `None` only for a configuration that failed validation.
    pub fn host(&self) -> Option<Host> {
        Host::parse(&self.address).ok()
    }
}

/// How a RADIUS server is sent the password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RadiusProtocol {
    /// User-Password hidden with the shared secret (RFC 2865 §5.2).
    #[default]
    #[serde(rename = "PAP")]
    Pap,
    /// CHAP-Password over a random CHAP-Challenge (RFC 2865 §5.3, §5.40).
    #[serde(rename = "CHAP")]
    Chap,
}

/// Whether a server's replies must carry a valid Message-Authenticator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequireMessageAuthenticator {
    /// Always: a reply without one is dropped.
    Yes,
    /// Never required; verified when present.
    No,
    /// Required once the server has sent one valid Message-Authenticator; until then
    /// verified when present. Servers that never sign are reported by a warning and a metric.
    #[default]
    Auto,
}

/// `[radius.settings]`: what every Access-Request carries and how long to wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RadiusSettings {
    /// Send a NAS-Identifier. RFC 2865 §4.1 requires a NAS-Identifier or a NAS-IP-Address
    /// in every Access-Request, so at least one of `use_nas_id` and `use_nas_ip` must be on.
    pub use_nas_id: bool,
    /// Where the NAS-Identifier comes from: `custom` (`nas_id_value`) or `dynamic` (this
    /// host's name). The management API's misspelling `dyanmic` is accepted on input.
    pub nas_id_type: NasIdType,
    /// The NAS-Identifier when `nas_id_type = "custom"`; required then (when `use_nas_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nas_id_value: Option<String>,
    /// Send a NAS-IP-Address (NAS-IPv6-Address for an IPv6 value).
    pub use_nas_ip: bool,
    /// The address to send; when absent the client sends the source address of its socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nas_ip_value: Option<IpAddr>,
    /// Seconds to wait for a reply before resending the request, 1..=60.
    pub connection_timeout: u32,
    /// Sends per server (the first one included) before the server is skipped, 1..=10. A
    /// silent server costs `connection_timeout * max_number_of_tries` seconds.
    pub max_number_of_tries: u32,
}

impl Default for RadiusSettings {
    fn default() -> Self {
        Self {
            use_nas_id: true,
            nas_id_type: NasIdType::Dynamic,
            nas_id_value: None,
            use_nas_ip: false,
            nas_ip_value: None,
            connection_timeout: DEFAULT_RADIUS_TIMEOUT,
            max_number_of_tries: DEFAULT_RADIUS_TRIES,
        }
    }
}

impl RadiusSettings {
    /// Validates the settings; `path` is `radius.settings`.
    fn check(&self, report: &mut Report, path: &str) {
        if !self.use_nas_id && !self.use_nas_ip {
            report.error(
                format!("{path}.use_nas_id"),
                "use_nas_id and use_nas_ip are both false; RFC 2865 §4.1 requires an \
                 Access-Request to carry NAS-Identifier or NAS-IP-Address",
            );
        }
        match self.nas_id_value.as_deref() {
            None | Some("") if self.use_nas_id && self.nas_id_type == NasIdType::Custom => {
                report.error(
                    format!("{path}.nas_id_value"),
                    "must be set (non-empty) when use_nas_id = true and nas_id_type = \"custom\"",
                );
            }
            Some(value) if value.len() > MAX_STRING_ATTRIBUTE => report.error(
                format!("{path}.nas_id_value"),
                format!(
                    "is {} bytes long; a NAS-Identifier holds at most {MAX_STRING_ATTRIBUTE}",
                    value.len()
                ),
            ),
            _ => {}
        }
        report.range(
            format!("{path}.connection_timeout"),
            self.connection_timeout,
            1,
            60,
        );
        report.range(
            format!("{path}.max_number_of_tries"),
            self.max_number_of_tries,
            1,
            10,
        );
    }
}

/// Where the NAS-Identifier comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NasIdType {
    /// `nas_id_value`.
    Custom,
    /// This host's name. Written `dynamic`; the API's misspelling `dyanmic` is read too.
    #[default]
    #[serde(alias = "dyanmic")]
    Dynamic,
}

/// `[[radius.role_mappings]]`: an Access-Accept carrying this attribute value grants `role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusRoleMapping {
    /// The role granted; must be one of `roles`.
    pub role: String,
    /// 1..=255: a standard attribute type (Class = 25, Filter-Id = 11). 256 and above: a
    /// vendor id (SMI enterprise number, e.g. 17164), matched against the Vendor-Specific
    /// attributes of that vendor. With `vendor_type` set it is always a vendor id, so vendors
    /// numbered below 256 (Cisco is 9) can be mapped too.
    pub attribute: u32,
    /// The value that must match exactly (the attribute's octets as text).
    pub attribute_value: String,
    /// The vendor sub-attribute type that must carry the value; its presence makes
    /// `attribute` a vendor id. When absent with a vendor id of 256 or more, any
    /// sub-attribute of the vendor matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_type: Option<u8>,
}

impl RadiusRoleMapping {
    /// Whether `attribute` is a vendor id rather than a standard attribute type: 256 and
    /// above, or any value when `vendor_type` is set.
    pub fn is_vendor(&self) -> bool {
        self.attribute > 255 || self.vendor_type.is_some()
    }

    /// Validates one mapping at `path`.
    fn check(&self, report: &mut Report, path: &str, roles: &[String]) {
        check_role(report, &format!("{path}.role"), &self.role, roles);
        if self.attribute == 0 {
            report.error(
                format!("{path}.attribute"),
                "0 is neither an attribute type (1..=255) nor a vendor id (256 and above)",
            );
        } else if self.attribute > MAX_VENDOR_ID {
            report.error(
                format!("{path}.attribute"),
                format!(
                    "{} is above {MAX_VENDOR_ID}, the largest vendor id a Vendor-Specific \
                     attribute can carry (RFC 2865 §5.26)",
                    self.attribute
                ),
            );
        }
        let max = if self.is_vendor() {
            MAX_VENDOR_VALUE
        } else {
            MAX_STRING_ATTRIBUTE
        };
        if self.attribute_value.is_empty() {
            report.error(
                format!("{path}.attribute_value"),
                "must not be empty: RADIUS attributes carry at least one octet",
            );
        } else if self.attribute_value.len() > max {
            report.error(
                format!("{path}.attribute_value"),
                format!(
                    "is {} bytes long; the attribute holds at most {max}",
                    self.attribute_value.len()
                ),
            );
        }
    }
}

/// Serde default for `enabled` fields.
pub(crate) fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::default_roles;

    fn errors(check: impl FnOnce(&mut Report)) -> Vec<String> {
        let mut report = Report::default();
        check(&mut report);
        report.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn server_defaults() {
        let server: RadiusServer =
            toml::from_str("id = 1\norder = 0\naddress = \"10.0.0.1\"\nsecret = \"s\"")
                .expect("minimal server");
        assert_eq!(server.port, 1812);
        assert_eq!(server.protocol, RadiusProtocol::Pap);
        assert!(server.enabled);
        assert_eq!(
            server.require_message_authenticator,
            RequireMessageAuthenticator::Auto
        );
    }

    #[test]
    fn protocol_spellings_are_exact() {
        #[derive(Serialize, Deserialize)]
        struct P {
            protocol: RadiusProtocol,
            rma: RequireMessageAuthenticator,
        }
        let p: P = toml::from_str("protocol = \"CHAP\"\nrma = \"yes\"").expect("parses");
        assert_eq!(p.protocol, RadiusProtocol::Chap);
        assert_eq!(p.rma, RequireMessageAuthenticator::Yes);
        assert_eq!(
            toml::to_string(&p).expect("serializes"),
            "protocol = \"CHAP\"\nrma = \"yes\"\n"
        );
        assert!(toml::from_str::<P>("protocol = \"chap\"\nrma = \"yes\"").is_err());
        assert!(toml::from_str::<P>("protocol = \"PAP\"\nrma = \"always\"").is_err());
    }

    #[test]
    fn dyanmic_is_read_as_dynamic_and_written_correctly() {
        let settings: RadiusSettings =
            toml::from_str("nas_id_type = \"dyanmic\"").expect("the API's spelling parses");
        assert_eq!(settings.nas_id_type, NasIdType::Dynamic);
        let text = toml::to_string(&settings).expect("serializes");
        assert!(text.contains("nas_id_type = \"dynamic\""), "{text}");
        assert!(!text.contains("dyanmic"), "{text}");
    }

    #[test]
    fn settings_defaults_follow_the_reference() {
        let settings = RadiusSettings::default();
        assert_eq!(settings.connection_timeout, 5);
        assert_eq!(settings.max_number_of_tries, 3);
        assert!(errors(|r| settings.check(r, "radius.settings")).is_empty());
    }

    #[test]
    fn settings_ranges_and_nas_rules() {
        let settings = RadiusSettings {
            use_nas_id: true,
            nas_id_type: NasIdType::Custom,
            nas_id_value: Some(String::new()),
            connection_timeout: 61,
            max_number_of_tries: 0,
            ..RadiusSettings::default()
        };
        assert_eq!(
            errors(|r| settings.check(r, "radius.settings")),
            [
                "radius.settings.nas_id_value: must be set (non-empty) when use_nas_id = true \
                 and nas_id_type = \"custom\"",
                "radius.settings.connection_timeout: 61 is outside 1..=60",
                "radius.settings.max_number_of_tries: 0 is outside 1..=10",
            ]
        );
        let neither = RadiusSettings {
            use_nas_id: false,
            use_nas_ip: false,
            ..RadiusSettings::default()
        };
        let found = errors(|r| neither.check(r, "radius.settings"));
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("radius.settings.use_nas_id: use_nas_id and use_nas_ip"));
        let long = RadiusSettings {
            nas_id_type: NasIdType::Custom,
            nas_id_value: Some("n".repeat(254)),
            ..RadiusSettings::default()
        };
        assert_eq!(
            errors(|r| long.check(r, "radius.settings")),
            ["radius.settings.nas_id_value: is 254 bytes long; a NAS-Identifier holds at most 253"]
        );
    }

    #[test]
    fn custom_nas_id_is_only_required_when_used() {
        let unused = RadiusSettings {
            use_nas_id: false,
            use_nas_ip: true,
            nas_id_type: NasIdType::Custom,
            ..RadiusSettings::default()
        };
        assert!(errors(|r| unused.check(r, "radius.settings")).is_empty());
    }

    #[test]
    fn role_mapping_rules() {
        let roles = default_roles();
        let mapping = |attribute, value: &str, vendor_type| RadiusRoleMapping {
            role: "Administrator".into(),
            attribute,
            attribute_value: value.into(),
            vendor_type,
        };
        assert!(errors(|r| mapping(17164, "2", None).check(r, "m", &roles)).is_empty());
        assert!(errors(|r| mapping(17164, "2", Some(1)).check(r, "m", &roles)).is_empty());
        assert!(errors(|r| mapping(25, "admins", None).check(r, "m", &roles)).is_empty());
        assert_eq!(
            errors(|r| mapping(0, "x", None).check(r, "m", &roles)),
            [
                "m.attribute: 0 is neither an attribute type (1..=255) nor a vendor id (256 and above)"
            ]
        );
        // A vendor type makes a small attribute number a vendor id (Cisco is 9).
        assert!(
            errors(|r| mapping(9, "shell:priv-lvl=15", Some(1)).check(r, "m", &roles)).is_empty()
        );
        assert!(mapping(9, "x", Some(1)).is_vendor());
        assert!(!mapping(9, "x", None).is_vendor());
        assert_eq!(
            errors(|r| mapping(0x0100_0000, "x", None).check(r, "m", &roles)),
            [
                "m.attribute: 16777216 is above 16777215, the largest vendor id a \
                 Vendor-Specific attribute can carry (RFC 2865 §5.26)"
            ]
        );
        assert_eq!(
            errors(|r| mapping(25, "", None).check(r, "m", &roles)),
            ["m.attribute_value: must not be empty: RADIUS attributes carry at least one octet"]
        );
        assert_eq!(
            errors(|r| mapping(17164, &"v".repeat(248), None).check(r, "m", &roles)),
            ["m.attribute_value: is 248 bytes long; the attribute holds at most 247"]
        );
        let mut unknown = mapping(17164, "2", None);
        unknown.role = "Admin".into();
        assert_eq!(
            errors(|r| unknown.check(r, "m", &roles)),
            ["m.role: \"Admin\" is not a defined role (add it to `roles` first)"]
        );
    }

    #[test]
    fn enabled_servers_are_sorted_by_order() {
        let server = |id, order, enabled| RadiusServer {
            id,
            order,
            address: format!("10.0.0.{id}"),
            port: 1812,
            secret: Secret::new("0123456789abcdef"),
            protocol: RadiusProtocol::Pap,
            enabled,
            require_message_authenticator: RequireMessageAuthenticator::Auto,
            transport: Default::default(),
            tls: Default::default(),
        };
        let radius = Radius {
            servers: vec![server(1, 2, true), server(2, 0, true), server(3, 1, false)],
            ..Radius::default()
        };
        let ids: Vec<u32> = radius.enabled_servers().iter().map(|s| s.id).collect();
        assert_eq!(ids, [2, 1]);
    }
}
