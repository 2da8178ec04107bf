//! A throwaway PKI for TLS tests: a CA, server and client certificates signed by it, their PEM
//! files in a temporary directory, and rustls server configurations built from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate with its key, in DER and as PEM files.
pub struct Issued {
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
    /// The PKCS#8 private key, DER.
    pub key_der: Vec<u8>,
    /// The certificate's PEM file.
    pub cert_path: PathBuf,
    /// The key's PEM file.
    pub key_path: PathBuf,
}

impl Issued {
    /// The private key as rustls wants it.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// A CA that signs what the tests need.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    /// The CA certificate's PEM file.
    pub ca_path: PathBuf,
    /// The CA certificate, DER.
    pub ca_der: CertificateDer<'static>,
}

/// What a certificate is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS server authentication.
    Server,
    /// TLS client authentication.
    Client,
}

impl Pki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca_key = KeyPair::generate().expect("a CA key");
        let ca = params.self_signed(&ca_key).expect("a CA certificate");
        let ca_path = dir.path().join(format!("{name}-ca.pem"));
        std::fs::write(&ca_path, ca.pem()).expect("writing the CA");
        let ca_der = ca.der().clone();
        Pki {
            dir,
            ca,
            ca_key,
            ca_path,
            ca_der,
        }
    }

    /// The directory the PEM files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A certificate for `names` (DNS names or IP addresses), valid now.
    pub fn issue(&self, file: &str, names: &[&str], usage: Usage) -> Issued {
        self.issue_with(file, names, usage, |_| {})
    }

    /// A certificate that expired in 2001.
    pub fn issue_expired(&self, file: &str, names: &[&str], usage: Usage) -> Issued {
        self.issue_with(file, names, usage, |params| {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        })
    }

    fn issue_with(
        &self,
        file: &str,
        names: &[&str],
        usage: Usage,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params.distinguished_name.push(DnType::CommonName, file);
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        adjust(&mut params);
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("a signed certificate");
        let cert_path = self.dir.path().join(format!("{file}.pem"));
        let key_path = self.dir.path().join(format!("{file}-key.pem"));
        std::fs::write(&cert_path, cert.pem()).expect("writing the certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("writing the key");
        Issued {
            der: cert.der().clone(),
            key_der: key.serialize_der(),
            cert_path,
            key_path,
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server presenting `cert` with `versions`, asking for a client certificate signed
/// by `client_ca` when given.
pub fn server_config(
    cert: &Issued,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client_ca: Option<&CertificateDer<'static>>,
) -> Arc<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("protocol versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.clone()).expect("the client CA");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .expect("a client verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    Arc::new(
        builder
            .with_single_cert(vec![cert.der.clone()], cert.key())
            .expect("the server certificate"),
    )
}

/// A rustls client trusting `ca` only, speaking `version`, presenting `me` when given.
pub fn client_config(
    ca: &CertificateDer<'static>,
    version: &'static rustls::SupportedProtocolVersion,
    me: Option<&Issued>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("the server CA");
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[version])
        .expect("protocol versions")
        .with_root_certificates(roots);
    Arc::new(match me {
        None => builder.with_no_client_auth(),
        Some(cert) => builder
            .with_client_auth_cert(vec![cert.der.clone()], cert.key())
            .expect("the client certificate"),
    })
}
