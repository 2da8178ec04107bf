//! The TLS settings of an upstream server: the `tls_*` keys.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::host::Host;

/// How portcullis verifies a server over TLS and identifies itself to it. Paths are read when
/// the configuration is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsClient {
    /// PEM bundle of the certificate authorities that may sign the server's certificate.
    /// Default: the system's (`/etc/ssl/certs/ca-certificates.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
    /// The name the server's certificate must carry (a DNS name or an IP address). Default:
    /// the server's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// PEM certificate chain presented to the server (mutual TLS), with `tls_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_certificate: Option<String>,
    /// PEM private key of `tls_certificate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
}

impl TlsClient {
    /// Whether any `tls_*` key is set.
    pub fn is_empty(&self) -> bool {
        *self == TlsClient::default()
    }

    /// Validates the keys of the server at `path`; `tls`: whether its transport is TLS.
    pub(crate) fn check(&self, report: &mut Report, path: &str, tls: bool) {
        if !tls {
            if !self.is_empty() {
                report.error(
                    format!("{path}.transport"),
                    "the tls_* keys are set but the transport is not \"tls\"",
                );
            }
            return;
        }
        let paths = [
            ("tls_ca", &self.tls_ca),
            ("tls_certificate", &self.tls_certificate),
            ("tls_key", &self.tls_key),
        ];
        for (key, value) in paths {
            if value.as_deref().is_some_and(|p| !p.starts_with('/')) {
                report.error(
                    format!("{path}.{key}"),
                    "must be an absolute path to a PEM file",
                );
            }
        }
        if self.tls_certificate.is_some() != self.tls_key.is_some() {
            report.error(
                format!("{path}.tls_key"),
                "tls_certificate and tls_key go together: set both for a client certificate, \
                 or neither",
            );
        }
        if let Some(name) = &self.tls_server_name {
            if let Err(why) = Host::parse(name) {
                report.error(format!("{path}.tls_server_name"), why);
            }
        }
    }
}
