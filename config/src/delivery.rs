//! `[mfa_delivery]`: how one-time codes of the MFA service reach users: an e-mail relay
//! (SMTP) for e-mail addresses and an HTTP webhook of an SMS gateway for phone numbers, and
//! which MFA application holds the gateway's own users.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::host::Host;
use crate::secret::Secret;

/// Default of [`MfaDelivery::application`].
pub const DEFAULT_MFA_APPLICATION: &str = "portcullis";
/// Default of [`SmtpDelivery::port`].
pub const DEFAULT_SMTP_PORT: u16 = 25;
/// Default of the `timeout` of [`SmtpDelivery`] and [`SmsDelivery`], in seconds.
pub const DEFAULT_DELIVERY_TIMEOUT: u32 = 10;
/// Upper bound of the delivery timeouts, in seconds.
const MAX_DELIVERY_TIMEOUT: u32 = 120;

/// `[mfa_delivery]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfaDelivery {
    /// Name of the MFA application whose users are the gateway's own users: the application
    /// `POST /api/mfa/1.0/token/authenticate` and the gateway's second factor look users up
    /// in (user id = gateway user name).
    pub application: String,
    /// The e-mail relay for applications that deliver by `EMAIL`. None: such codes cannot be
    /// delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpDelivery>,
    /// The SMS gateway webhook for applications that deliver by `SMS`. None: such codes
    /// cannot be delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsDelivery>,
}

impl Default for MfaDelivery {
    fn default() -> Self {
        Self {
            application: DEFAULT_MFA_APPLICATION.to_owned(),
            smtp: None,
            sms: None,
        }
    }
}

/// `[mfa_delivery.smtp]`: an SMTP relay that accepts mail for the users' addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpDelivery {
    /// The relay: an IP address or a hostname.
    pub host: String,
    /// TCP port of the relay. Default: 25.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// The envelope sender and `From:` address of the messages.
    pub from: String,
    /// Upgrade the connection with STARTTLS before sending anything else; the relay's
    /// certificate must verify for `host`. Default: false.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file of the certificate authorities trusted for STARTTLS. Default: the system's
    /// (`/etc/ssl/certs/ca-certificates.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// User name for SMTP AUTH (PLAIN); needs `password` and `starttls = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password for SMTP AUTH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Seconds one SMTP conversation may take, 1..=120. Default: 10.
    #[serde(default = "default_timeout")]
    pub timeout: u32,
}

/// `[mfa_delivery.sms]`: the webhook of an SMS gateway. Each message is one HTTP POST of
/// `{"to", "from", "message"}` as JSON; any 2xx answer means accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsDelivery {
    /// The webhook URL, `http://` or `https://`.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<Secret>,
    /// PEM file of the certificate authorities trusted for an `https://` URL. Default: the
    /// system's (`/etc/ssl/certs/ca-certificates.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Seconds one request may take, 1..=120. Default: 10.
    #[serde(default = "default_timeout")]
    pub timeout: u32,
}

fn default_smtp_port() -> u16 {
    DEFAULT_SMTP_PORT
}

fn default_timeout() -> u32 {
    DEFAULT_DELIVERY_TIMEOUT
}

impl MfaDelivery {
    /// Whether every field has its default value (the section is then left out of the file).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Validates the section.
    pub(crate) fn check(&self, report: &mut Report) {
        if self.application.trim().is_empty() {
            report.error("mfa_delivery.application", "must not be empty");
        } else if self.application.len() > 64 {
            report.error(
                "mfa_delivery.application",
                "is longer than 64 bytes, the longest MFA application name",
            );
        }
        if let Some(smtp) = &self.smtp {
            smtp.check(report);
        }
        if let Some(sms) = &self.sms {
            sms.check(report);
        }
    }
}

impl SmtpDelivery {
    fn check(&self, report: &mut Report) {
        const PATH: &str = "mfa_delivery.smtp";
        if let Err(why) = Host::parse(&self.host) {
            report.error(format!("{PATH}.host"), why);
        }
        if self.port == 0 {
            report.error(format!("{PATH}.port"), "0 is outside 1..=65535");
        }
        if let Err(why) = check_mailbox(&self.from) {
            report.error(format!("{PATH}.from"), why);
        }
        match (&self.username, &self.password) {
            (Some(_), None) => report.error(
                format!("{PATH}.password"),
                "is required when username is set",
            ),
            (None, Some(_)) => report.error(
                format!("{PATH}.username"),
                "is required when password is set",
            ),
            (Some(user), Some(_)) => {
                if user.is_empty() || user.chars().any(char::is_control) {
                    report.error(
                        format!("{PATH}.username"),
                        "must not be empty or contain control characters",
                    );
                }
                if !self.starttls {
                    report.error(
                        format!("{PATH}.starttls"),
                        "must be true when credentials are set: the password would cross \
                         the network in clear",
                    );
                }
            }
            (None, None) => {}
        }
        report.range(
            format!("{PATH}.timeout"),
            self.timeout,
            1,
            MAX_DELIVERY_TIMEOUT,
        );
    }
}

impl SmsDelivery {
    fn check(&self, report: &mut Report) {
        const PATH: &str = "mfa_delivery.sms";
        if let Err(why) = check_url(&self.url) {
            report.error(format!("{PATH}.url"), why);
        }
        if let Some(bearer) = &self.bearer {
            if bearer.is_empty() || bearer.expose().chars().any(|c| c.is_control() || c == ' ') {
                report.error(
                    format!("{PATH}.bearer"),
                    "must not be empty or contain spaces or control characters",
                );
            }
        }
        report.range(
            format!("{PATH}.timeout"),
            self.timeout,
            1,
            MAX_DELIVERY_TIMEOUT,
        );
    }
}

/// A bare e-mail address `local@domain`, as an envelope sender or recipient can carry it.
pub fn check_mailbox(address: &str) -> Result<(), String> {
    if address.len() > 254 {
        return Err("is longer than 254 bytes".into());
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(format!(
            "{address:?} is not an e-mail address (local@domain)"
        ));
    };
    let bad = |c: char| c.is_control() || c.is_whitespace() || "<>()[],;:\\\"@".contains(c);
    if local.is_empty() || local.len() > 64 || local.chars().any(bad) {
        return Err(format!("{address:?} has an invalid local part"));
    }
    if domain.is_empty() || domain.starts_with('.') || domain.ends_with('.') {
        return Err(format!("{address:?} has an invalid domain"));
    }
    if domain.chars().any(bad) {
        return Err(format!("{address:?} has an invalid domain"));
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host and no whitespace.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} must start with http:// or https://"))?;
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("{url:?} contains whitespace or control characters"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(format!(
            "{url:?} needs a host (and no user information; use `bearer`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, ConfigError};

    fn errors(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Err(ConfigError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_a_full_section() {
        let config = Config::from_toml("").unwrap().config;
        assert!(config.mfa_delivery.is_default());
        assert_eq!(config.mfa_delivery.application, "portcullis");
        let text = r#"
            [mfa_delivery]
            application = "vpn"
            [mfa_delivery.smtp]
            host = "mail.example.com"
            from = "mfa@example.com"
            starttls = true
            username = "mfa"
            password = "relay-password"
            [mfa_delivery.sms]
            url = "https://sms.example.com/send"
            bearer = "token-123"
            timeout = 5
        "#;
        let config = Config::from_toml(text).unwrap().config;
        let smtp = config.mfa_delivery.smtp.clone().unwrap();
        assert_eq!(smtp.port, 25);
        assert_eq!(smtp.timeout, 10);
        assert_eq!(format!("{:?}", smtp.password), "Some(****************)");
        let sms = config.mfa_delivery.sms.clone().unwrap();
        assert_eq!(sms.timeout, 5);
        let back = Config::from_toml(&config.to_toml().unwrap())
            .unwrap()
            .config;
        assert_eq!(back, config);
    }

    #[test]
    fn invalid_values_are_named() {
        let text = r#"
            [mfa_delivery]
            application = " "
            [mfa_delivery.smtp]
            host = "bad host"
            port = 0
            from = "nobody"
            username = "mfa"
            password = "x"
            timeout = 0
            [mfa_delivery.sms]
            url = "ftp://sms.example.com"
        "#;
        let found = errors(text);
        let paths: Vec<&str> = found.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "mfa_delivery.application",
                "mfa_delivery.smtp.host",
                "mfa_delivery.smtp.port",
                "mfa_delivery.smtp.from",
                "mfa_delivery.smtp.starttls",
                "mfa_delivery.smtp.timeout",
                "mfa_delivery.sms.url",
            ],
            "{found:?}"
        );
        let found = errors("[mfa_delivery.smtp]\nhost = \"h\"\nfrom = \"a@b\"\npassword = \"p\"\n");
        assert!(
            found[0].starts_with("mfa_delivery.smtp.username"),
            "{found:?}"
        );
        assert!(matches!(
            Config::from_toml("[mfa_delivery]\nsurprise = 1\n"),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn mailboxes_and_urls() {
        assert!(check_mailbox("alice@example.com").is_ok());
        assert!(check_mailbox("a@b").is_ok());
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a b@c",
            "a@b\r\nRCPT",
            "<a@b>",
        ] {
            assert!(check_mailbox(bad).is_err(), "{bad:?}");
        }
        assert!(check_url("http://127.0.0.1:8080/sms").is_ok());
        assert!(check_url("https://sms.example.com").is_ok());
        for bad in [
            "sms.example.com",
            "http://",
            "http://user:pw@host/",
            "http://a b/",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
    }
}
