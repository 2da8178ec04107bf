//! TLS towards upstream servers: the client configuration a server's `tls_*` keys describe.

use std::path::Path;
use std::sync::Arc;

use portcullis_protocol::radius::v11;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

/// The CA bundle used when a server names none.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a TLS client configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// The name to verify is neither a DNS name nor an IP address.
    #[error("server name {0:?} is neither a DNS name nor an IP address")]
    ServerName(String),
    /// rustls refused the combination (e.g. a key that does not match the certificate).
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// How to reach one server over TLS: the connector and the name its certificate must carry.
#[derive(Clone)]
pub struct TlsClient {
    /// Verifies the server with the configured CAs and presents the client certificate.
    pub connector: TlsConnector,
    /// The name checked against the server's certificate.
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// What a server's `tls_*` keys say, with defaults applied by the caller.
#[derive(Debug, Clone, Copy)]
pub struct TlsKeys<'a> {
    /// PEM CA bundle; [`SYSTEM_CA_FILE`] when `None`.
    pub ca: Option<&'a str>,
    /// The name to verify (DNS name or IP address).
    pub server_name: &'a str,
    /// PEM certificate chain and PEM private key for mutual TLS.
    pub certificate: Option<(&'a str, &'a str)>,
}

/// A client for TLS 1.3 only (RFC 9887 §3.2: TACACS+ over TLS requires 1.3), verifying the
/// server against `keys.ca` and `keys.server_name`.
pub fn tls13_client(keys: TlsKeys<'_>) -> Result<TlsClient, TlsSetupError> {
    client(keys, &[&rustls::version::TLS13], &[])
}

/// A client for TLS 1.3 and 1.2 (RFC 6614 §2.3: RadSec requires 1.2 support, and RadSec
/// servers such as FreeRADIUS 3.2 negotiate 1.3 when they can), verifying the server
/// against `keys.ca` and `keys.server_name`.
///
/// It offers RADIUS/1.1 and classic RadSec by ALPN (RFC 9765 §3.1); a server that picks
/// neither (FreeRADIUS 3.2 does not know ALPN) speaks classic RadSec.
pub fn tls12_client(keys: TlsKeys<'_>) -> Result<TlsClient, TlsSetupError> {
    client(
        keys,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        &[v11::ALPN_RADIUS_1_1, v11::ALPN_RADIUS_1_0],
    )
}

/// A client for `versions` offering `alpn`, verifying the server against `keys.ca` and
/// `keys.server_name`.
fn client(
    keys: TlsKeys<'_>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<TlsClient, TlsSetupError> {
    let roots = load_roots(keys.ca.unwrap_or(SYSTEM_CA_FILE))?;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)?
    .with_root_certificates(roots);
    let mut config = match keys.certificate {
        None => builder.with_no_client_auth(),
        Some((certificate, key)) => {
            builder.with_client_auth_cert(load_chain(certificate)?, load_key(key)?)?
        }
    };
    config.alpn_protocols = alpn.iter().map(|name| name.to_vec()).collect();
    let server_name = ServerName::try_from(keys.server_name.to_string())
        .map_err(|_| TlsSetupError::ServerName(keys.server_name.to_string()))?;
    Ok(TlsClient {
        connector: TlsConnector::from(Arc::new(config)),
        server_name,
    })
}

/// The certificates of the PEM bundle at `path`, as trust anchors; at least one.
pub fn load_roots(path: &str) -> Result<rustls::RootCertStore, TlsSetupError> {
    let file_error = |why: String| TlsSetupError::File {
        path: path.to_string(),
        why,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(Path::new(path)).map_err(|e| file_error(e.to_string()))?
    {
        let cert = cert.map_err(|e| file_error(e.to_string()))?;
        roots.add(cert).map_err(|e| file_error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(file_error("no certificate in the bundle".into()));
    }
    Ok(roots)
}

/// The certificate chain in the PEM file at `path`; at least one certificate.
pub fn load_chain(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let chain = CertificateDer::pem_file_iter(Path::new(path))
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsSetupError::File {
            path: path.to_string(),
            why: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsSetupError::File {
            path: path.to_string(),
            why: "no certificate in the file".into(),
        });
    }
    Ok(chain)
}

/// The private key in the PEM file at `path`. The key's contents never reach an error
/// message.
pub fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_file(Path::new(path)).map_err(|e| TlsSetupError::File {
        path: path.to_string(),
        why: format!("no usable private key ({})", pem_error_kind(&e)),
    })
}

/// What kind of PEM failure `e` is, without the file's contents.
fn pem_error_kind(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "none found",
        Error::Io(_) => "cannot be read",
        _ => "malformed PEM",
    }
}
