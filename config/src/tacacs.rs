//! The `[tacacs]` section: servers, settings and role mappings.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::host::Host;
use crate::radius::yes;
use crate::roles::check_role;
use crate::secret::Secret;
use crate::servers::{Listed, ServerFields, check_list, enabled_in_order};
use crate::tls::TlsClient;

/// The TACACS+ port (RFC 8907 §4.4).
pub const DEFAULT_TACACS_PORT: u16 = 49;
/// The TACACS+ over TLS port (RFC 9887 §3).
pub const DEFAULT_TACACS_TLS_PORT: u16 = 300;
/// Seconds to wait for a connection or a reply; the management API's example value.
pub const DEFAULT_TACACS_TIMEOUT: u32 = 5;
/// The authorization service asked for after a successful login; the management API's
/// example value.
pub const DEFAULT_AUTH_SERVICE: &str = "serviceName";
/// Length fields of TACACS+ strings (port, AV pairs) are one octet (RFC 8907 §5.1, §6.1).
const MAX_FIELD: usize = 255;

/// Everything TACACS+: `[tacacs.settings]`, `[[tacacs.servers]]`, `[[tacacs.role_mappings]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tacacs {
    /// Timeout and authorization service; shared by every server (read at
    /// `tacacs/settings`, written at `tacacs/connection`).
    pub settings: TacacsSettings,
    /// The servers, tried in `order` (`tacacs/server`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<TacacsServer>,
    /// Which authorization AV pairs grant which role (`tacacs/role_mapping`). A user gets
    /// every role whose mapping matches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub role_mappings: Vec<TacacsRoleMapping>,
}

impl Tacacs {
    /// The enabled servers, in the order they are tried.
    pub fn enabled_servers(&self) -> Vec<&TacacsServer> {
        enabled_in_order(&self.servers)
    }

    /// Validates the section; `roles` are the defined role names.
    pub(crate) fn check(&self, report: &mut Report, roles: &[String]) {
        self.settings.check(report, "tacacs.settings");
        check_list(report, "tacacs.servers", &self.servers);
        for (index, server) in self.servers.iter().enumerate() {
            let path = format!("tacacs.servers[{index}]");
            check_text(
                report,
                &format!("{path}.client_port"),
                &server.client_port,
                MAX_FIELD,
            );
            server
                .tls
                .check(report, &path, server.transport == TacacsTransport::Tls);
        }
        for (index, mapping) in self.role_mappings.iter().enumerate() {
            mapping.check(report, &format!("tacacs.role_mappings[{index}]"), roles);
        }
    }
}

/// One TACACS+ server (`[[tacacs.servers]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TacacsServerFile")]
pub struct TacacsServer {
    /// Stable identifier, unique among TACACS+ servers: the management API's `server_id`.
    pub id: u32,
    /// Position in the try order, unique among TACACS+ servers; lower is tried first.
    pub order: u32,
    /// IPv4 or IPv6 literal (no brackets) or an RFC 1123 hostname.
    pub address: String,
    /// TCP port of the server: by default 49, or 300 over TLS.
    pub port: u16,
    /// Shared secret for body obfuscation (RFC 8907 §4.5). Should be 16 bytes or more. Not
    /// used over TLS (RFC 9887 §4), where it may be left out.
    pub secret: Secret,
    /// Authentication type of the START packet: `PAP` or `ASCII` (interactive login).
    pub protocol: TacacsProtocol,
    /// Sent as the `port` field of START and authorization REQUEST packets (RFC 8907 §5.1),
    /// at most 255 bytes. Stored as a string; an integer is accepted too, because the
    /// management API sends a number.
    pub client_port: String,
    /// Disabled servers stay configured but are never tried.
    pub enabled: bool,
    /// How packets travel: `tcp` (RFC 8907, obfuscated bodies) or `tls` (RFC 9887, TLS 1.3).
    #[serde(skip_serializing_if = "TacacsTransport::is_tcp")]
    pub transport: TacacsTransport,
    /// With `transport = "tls"`: how the server is verified and how portcullis identifies
    /// itself (the `tls_*` keys).
    #[serde(flatten)]
    pub tls: TlsClient,
}

/// [`TacacsServer`] as the file has it: the port's default depends on the transport.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TacacsServerFile {
    id: u32,
    order: u32,
    address: String,
    port: Option<u16>,
    #[serde(default)]
    secret: Secret,
    #[serde(default)]
    protocol: TacacsProtocol,
    #[serde(default, deserialize_with = "client_port")]
    client_port: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    transport: TacacsTransport,
    tls_ca: Option<String>,
    tls_server_name: Option<String>,
    tls_certificate: Option<String>,
    tls_key: Option<String>,
}

impl From<TacacsServerFile> for TacacsServer {
    fn from(file: TacacsServerFile) -> Self {
        TacacsServer {
            id: file.id,
            order: file.order,
            address: file.address,
            port: file.port.unwrap_or(match file.transport {
                TacacsTransport::Tcp => DEFAULT_TACACS_PORT,
                TacacsTransport::Tls => DEFAULT_TACACS_TLS_PORT,
            }),
            secret: file.secret,
            protocol: file.protocol,
            client_port: file.client_port,
            enabled: file.enabled,
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

/// How a TACACS+ server is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TacacsTransport {
    /// TCP with obfuscated bodies (RFC 8907), port 49 by default.
    #[default]
    Tcp,
    /// TLS 1.3 with cleartext bodies (RFC 9887), port 300 by default.
    Tls,
}

impl TacacsTransport {
    fn is_tcp(&self) -> bool {
        *self == TacacsTransport::Tcp
    }
}

impl Listed for TacacsServer {
    fn fields(&self) -> ServerFields<'_> {
        ServerFields {
            id: self.id,
            order: self.order,
            address: &self.address,
            port: self.port,
            secret: (self.transport == TacacsTransport::Tcp).then_some(&self.secret),
        }
    }

    fn enabled(&self) -> bool {
        self.enabled
    }
}

impl TacacsServer {
    /// The parsed address; `None` only for a configuration that failed validation.
    pub fn host(&self) -> Option<Host> {
        Host::parse(&self.address).ok()
    }
}

/// How a TACACS+ server is sent the password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TacacsProtocol {
    /// `TAC_PLUS_AUTHEN_TYPE_PAP`: the password in the START packet.
    #[default]
    #[serde(rename = "PAP")]
    Pap,
    /// `TAC_PLUS_AUTHEN_TYPE_ASCII`: GETUSER/GETPASS dialogue.
    #[serde(rename = "ASCII")]
    Ascii,
}

/// `[tacacs.settings]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TacacsSettings {
    /// Seconds to wait for the TCP connection and for each reply, 1..=60.
    pub connection_timeout: u32,
    /// Sent as `service=<auth_service>` in the authorization REQUEST that fetches the AV
    /// pairs the role mappings match.
    pub auth_service: String,
}

impl Default for TacacsSettings {
    fn default() -> Self {
        Self {
            connection_timeout: DEFAULT_TACACS_TIMEOUT,
            auth_service: DEFAULT_AUTH_SERVICE.to_owned(),
        }
    }
}

impl TacacsSettings {
    /// Validates the settings; `path` is `tacacs.settings`.
    fn check(&self, report: &mut Report, path: &str) {
        report.range(
            format!("{path}.connection_timeout"),
            self.connection_timeout,
            1,
            60,
        );
        let path = format!("{path}.auth_service");
        if self.auth_service.is_empty() {
            report.error(
                path,
                "must not be empty: it names the service in the authorization request",
            );
        } else {
            check_text(
                report,
                &path,
                &self.auth_service,
                MAX_FIELD - "service=".len(),
            );
        }
    }
}

/// `[[tacacs.role_mappings]]`: an authorization reply carrying the AV pair
/// `attribute=attribute_value` grants `role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TacacsRoleMapping {
    /// The role granted; must be one of `roles`.
    pub role: String,
    /// The AV pair's name, e.g. `priv-lvl` or a custom attribute.
    pub attribute: String,
    /// The AV pair's value, matched exactly.
    pub attribute_value: String,
}

impl TacacsRoleMapping {
    /// Validates one mapping at `path`.
    fn check(&self, report: &mut Report, path: &str, roles: &[String]) {
        check_role(report, &format!("{path}.role"), &self.role, roles);
        let attribute_path = format!("{path}.attribute");
        if self.attribute.is_empty() {
            report.error(attribute_path, "must not be empty");
        } else if let Some(bad) = self
            .attribute
            .chars()
            .find(|c| !c.is_ascii_graphic() || *c == '=' || *c == '*')
        {
            // RFC 8907 §6.1: '=' and '*' separate the name from the value.
            report.error(
                attribute_path,
                format!(
                    "{:?} contains {bad:?}; an AV pair name is printable ASCII without spaces, \
                     '=' or '*' (RFC 8907 §6.1)",
                    self.attribute
                ),
            );
        }
        // The pair travels as "attribute=value" behind a one-octet length.
        let pair = self.attribute.len() + 1 + self.attribute_value.len();
        if pair > MAX_FIELD {
            report.error(
                format!("{path}.attribute_value"),
                format!("the AV pair is {pair} bytes long; TACACS+ allows at most {MAX_FIELD}"),
            );
        } else {
            check_text(
                report,
                &format!("{path}.attribute_value"),
                &self.attribute_value,
                MAX_FIELD,
            );
        }
    }
}

/// Records an error unless `text` is at most `max` bytes without control characters.
fn check_text(report: &mut Report, path: &str, text: &str, max: usize) {
    if text.len() > max {
        report.error(
            path,
            format!("is {} bytes long; at most {max} fit", text.len()),
        );
    } else if text.chars().any(char::is_control) {
        report.error(path, format!("{text:?} contains a control character"));
    }
}

/// Reads `client_port` from a string or a non-negative integer.
fn client_port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    /// Accepts both forms the management API uses.
    struct ClientPort;

    impl Visitor<'_> for ClientPort {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a non-negative integer")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
            Ok(value.to_owned())
        }

        fn visit_string<E: de::Error>(self, value: String) -> Result<String, E> {
            Ok(value)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<String, E> {
            Ok(value.to_string())
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<String, E> {
            if value < 0 {
                Err(E::invalid_value(de::Unexpected::Signed(value), &self))
            } else {
                Ok(value.to_string())
            }
        }
    }

    deserializer.deserialize_any(ClientPort)
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

    const MINIMAL: &str = "id = 1\norder = 0\naddress = \"10.0.0.1\"\nsecret = \"s\"\n";

    #[test]
    fn server_defaults() {
        let server: TacacsServer = toml::from_str(MINIMAL).expect("minimal server");
        assert_eq!(server.port, 49);
        assert_eq!(server.protocol, TacacsProtocol::Pap);
        assert_eq!(server.client_port, "");
        assert!(server.enabled);
    }

    #[test]
    fn tls_transport_defaults_to_port_300_and_needs_no_secret() {
        let tls: TacacsServer = toml::from_str(
            "id = 1\norder = 0\naddress = \"10.0.0.1\"\ntransport = \"tls\"\n\
             tls_ca = \"/etc/portcullis/ca.pem\"\n",
        )
        .expect("a TLS server");
        assert_eq!(tls.port, DEFAULT_TACACS_TLS_PORT);
        assert_eq!(tls.transport, TacacsTransport::Tls);
        assert_eq!(tls.tls.tls_ca.as_deref(), Some("/etc/portcullis/ca.pem"));
        let config = Tacacs {
            servers: vec![tls.clone()],
            ..Tacacs::default()
        };
        assert_eq!(errors(|r| config.check(r, &[])), Vec::<String>::new());
        // Written and read back unchanged; a TCP server writes no TLS keys.
        let written = toml::to_string(&tls).expect("serializes");
        assert_eq!(
            toml::from_str::<TacacsServer>(&written).expect("reads"),
            tls
        );
        let tcp: TacacsServer = toml::from_str(MINIMAL).expect("minimal server");
        let written = toml::to_string(&tcp).expect("serializes");
        assert!(
            !written.contains("tls") && !written.contains("transport"),
            "{written}"
        );
        // A port given is kept.
        let given: TacacsServer =
            toml::from_str(&format!("{MINIMAL}transport = \"tls\"\nport = 4949")).expect("port");
        assert_eq!(given.port, 4949);
        assert!(toml::from_str::<TacacsServer>(&format!("{MINIMAL}transport = \"TLS\"")).is_err());
    }

    #[test]
    fn tls_keys_are_checked() {
        let server = |extra: &str| -> Tacacs {
            Tacacs {
                servers: vec![toml::from_str(&format!("{MINIMAL}{extra}")).expect("a server")],
                ..Tacacs::default()
            }
        };
        let check = |extra: &str| errors(|r| server(extra).check(r, &[]));
        assert_eq!(
            check("tls_ca = \"/ca.pem\""),
            [
                "tacacs.servers[0].transport: the tls_* keys are set but the transport is not \"tls\""
            ]
        );
        assert_eq!(
            check("transport = \"tls\"\ntls_certificate = \"/c.pem\""),
            [
                "tacacs.servers[0].tls_key: tls_certificate and tls_key go together: set both \
                 for a client certificate, or neither"
            ]
        );
        assert_eq!(
            check("transport = \"tls\"\ntls_ca = \"ca.pem\""),
            ["tacacs.servers[0].tls_ca: must be an absolute path to a PEM file"]
        );
        assert_eq!(
            check("transport = \"tls\"\ntls_server_name = \"a b\"").len(),
            1
        );
        assert!(
            check("transport = \"tls\"\ntls_certificate = \"/c.pem\"\ntls_key = \"/k.pem\"")
                .is_empty()
        );
        // Over TCP the secret is needed.
        let no_secret = "id = 1\norder = 0\naddress = \"10.0.0.1\"\n";
        let tcp = Tacacs {
            servers: vec![toml::from_str(no_secret).expect("a server")],
            ..Tacacs::default()
        };
        assert_eq!(errors(|r| tcp.check(r, &[])).len(), 1);
    }

    #[test]
    fn client_port_accepts_integer_and_string_and_writes_a_string() {
        let number: TacacsServer =
            toml::from_str(&format!("{MINIMAL}client_port = 7000")).expect("integer");
        assert_eq!(number.client_port, "7000");
        let text: TacacsServer =
            toml::from_str(&format!("{MINIMAL}client_port = \"tty10\"")).expect("string");
        assert_eq!(text.client_port, "tty10");
        let written = toml::to_string(&number).expect("serializes");
        assert!(written.contains("client_port = \"7000\""), "{written}");
        let negative = toml::from_str::<TacacsServer>(&format!("{MINIMAL}client_port = -1"))
            .expect_err("negative");
        assert!(
            negative
                .to_string()
                .contains("expected a string or a non-negative integer"),
            "{negative}"
        );
        assert!(toml::from_str::<TacacsServer>(&format!("{MINIMAL}client_port = 1.5")).is_err());
    }

    #[test]
    fn protocol_spellings_are_exact() {
        let ascii: TacacsServer =
            toml::from_str(&format!("{MINIMAL}protocol = \"ASCII\"")).expect("ASCII");
        assert_eq!(ascii.protocol, TacacsProtocol::Ascii);
        assert!(toml::from_str::<TacacsServer>(&format!("{MINIMAL}protocol = \"CHAP\"")).is_err());
        assert!(toml::from_str::<TacacsServer>(&format!("{MINIMAL}protocol = \"ascii\"")).is_err());
    }

    #[test]
    fn settings_rules() {
        assert!(errors(|r| TacacsSettings::default().check(r, "tacacs.settings")).is_empty());
        let bad = TacacsSettings {
            connection_timeout: 0,
            auth_service: String::new(),
        };
        assert_eq!(
            errors(|r| bad.check(r, "tacacs.settings")),
            [
                "tacacs.settings.connection_timeout: 0 is outside 1..=60",
                "tacacs.settings.auth_service: must not be empty: it names the service in the \
                 authorization request",
            ]
        );
        let long = TacacsSettings {
            connection_timeout: 60,
            auth_service: "s".repeat(248),
        };
        assert_eq!(
            errors(|r| long.check(r, "tacacs.settings")),
            ["tacacs.settings.auth_service: is 248 bytes long; at most 247 fit"]
        );
    }

    #[test]
    fn role_mapping_rules() {
        let roles = default_roles();
        let mapping = |role: &str, attribute: &str, value: &str| TacacsRoleMapping {
            role: role.into(),
            attribute: attribute.into(),
            attribute_value: value.into(),
        };
        assert!(
            errors(|r| mapping("Administrator", "cascade", "2").check(r, "m", &roles)).is_empty()
        );
        assert_eq!(
            errors(|r| mapping("Nobody", "", "2").check(r, "m", &roles)),
            [
                "m.role: \"Nobody\" is not a defined role (add it to `roles` first)",
                "m.attribute: must not be empty",
            ]
        );
        assert_eq!(
            errors(|r| mapping("Monitor", "priv=lvl", "1").check(r, "m", &roles)),
            [
                "m.attribute: \"priv=lvl\" contains '='; an AV pair name is printable ASCII \
                 without spaces, '=' or '*' (RFC 8907 §6.1)"
            ]
        );
        assert_eq!(
            errors(|r| mapping("Monitor", "a", &"v".repeat(254)).check(r, "m", &roles)),
            ["m.attribute_value: the AV pair is 256 bytes long; TACACS+ allows at most 255"]
        );
    }
}
