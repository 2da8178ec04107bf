//! The RadSec front-end (RADIUS over TLS, RFC 6614): the same front-end as over UDP, for
//! clients that connect to `listeners.radsec` with a certificate.
//!
//! Per connection:
//! 1. at most `radius_frontend.max_connections` are open at once; one more is closed as soon
//!    as it is accepted;
//! 2. the TLS handshake (1.3 or 1.2, RFC 6614 §2.3 requires 1.2) must end within
//!    [`HANDSHAKE_TIMEOUT`], with a client certificate signed by the `tls_ca` of a client
//!    with `transport = "tls"`;
//! 3. the client is the one whose network contains the source address, whose CA signed the
//!    certificate and whose `tls_name`, when set, the certificate carries (the longest prefix
//!    wins); none: the connection is closed;
//! 4. packets are framed by their Length field (RFC 6614 §2.5,
//!    [`portcullis_protocol::radius::stream`]); an impossible Length closes the connection;
//!    each packet then goes through the checks and the walk of a datagram, with the client's
//!    secret (`radsec` unless configured, RFC 6614 §2.3), and its reply goes back on the
//!    connection;
//! 5. RADIUS/1.1 (RFC 9765) is offered by ALPN and preferred: a client that takes it (over
//!    TLS 1.3; over 1.2 the connection is closed) sends Tokens instead of Request
//!    Authenticators and passwords as they are, and its replies are not signed;
//! 6. a connection that sends nothing for `radius_frontend.idle_timeout` seconds is closed,
//!    as is one whose client left the configuration.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use portcullis_config::{FrontendClient, RadiusFrontend, RadiusTransport};
use portcullis_protocol::radius::stream::Framer;
use portcullis_protocol::radius::v11::{ALPN_RADIUS_1_0, ALPN_RADIUS_1_1};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::{Action, Client, DropReason, Frontend, Sink, Table, bump};
use crate::upstream::tls::{TlsSetupError, load_chain, load_key, load_roots};

/// How long a client has for its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies queued for one connection's writer before walks wait for it.
const WRITE_QUEUE: usize = 256;

/// How a RadSec client's certificate is checked.
pub(super) struct ClientTls {
    /// Verifies the chain against the client's `tls_ca`.
    verifier: Arc<dyn ClientCertVerifier>,
    /// The CAs of `tls_ca`, for the listener's list of acceptable issuers.
    roots: rustls::RootCertStore,
    /// The name the certificate must carry (`tls_name`).
    name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The crypto provider of every TLS configuration here.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ClientTls {
    /// The checks of `client`'s certificate; `None` for a UDP client.
    pub(super) fn build(client: &FrontendClient) -> Result<Option<ClientTls>, TlsSetupError> {
        if client.transport != RadiusTransport::Tls {
            return Ok(None);
        }
        let Some(ca) = &client.tls_ca else {
            return Err(TlsSetupError::File {
                path: "tls_ca".into(),
                why: "not set".into(),
            });
        };
        let roots = load_roots(ca)?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots.clone()), provider())
                .build()
                .map_err(|e| TlsSetupError::File {
                    path: ca.clone(),
                    why: e.to_string(),
                })?;
        let name = match &client.tls_name {
            None => None,
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| TlsSetupError::ServerName(name.clone()))?,
            ),
        };
        Ok(Some(ClientTls {
            verifier,
            roots,
            name,
        }))
    }

    /// Whether the chain `end` + `intermediates` is signed by this client's CA and carries
    /// its name.
    fn accepts(&self, end: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> bool {
        if self
            .verifier
            .verify_client_cert(end, intermediates, UnixTime::now())
            .is_err()
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        webpki::EndEntityCert::try_from(end)
            .and_then(|cert| cert.verify_is_valid_for_subject_name(name))
            .is_ok()
    }
}

/// The listener's TLS configuration: `radius_frontend.tls_certificate` and `tls_key`,
/// client certificates required and signed by one of the RadSec clients' CAs. `None` (with
/// the reason logged) when the certificate is not configured or unusable, or no RadSec
/// client is.
pub(super) fn server_config(
    frontend: &RadiusFrontend,
    clients: &[Arc<Client>],
) -> Option<Arc<rustls::ServerConfig>> {
    let (Some(certificate), Some(key)) = (&frontend.tls_certificate, &frontend.tls_key) else {
        return None;
    };
    let mut roots = rustls::RootCertStore::empty();
    for tls in clients.iter().filter_map(|client| client.tls.as_ref()) {
        roots.roots.extend(tls.roots.roots.iter().cloned());
    }
    if roots.is_empty() {
        tracing::warn!(
            "RadSec front-end: no client with transport = \"tls\"; connections are closed"
        );
        return None;
    }
    let built = (|| -> Result<rustls::ServerConfig, TlsSetupError> {
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TlsSetupError::File {
                path: "tls_ca".into(),
                why: e.to_string(),
            })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(load_chain(certificate)?, load_key(key)?)?;
        // RFC 9765 §3.3: RADIUS/1.1 preferred when the client offers it; a client that offers
        // ALPN names but neither of these is refused in the handshake; one that offers none
        // speaks classic RadSec.
        config.alpn_protocols = vec![ALPN_RADIUS_1_1.to_vec(), ALPN_RADIUS_1_0.to_vec()];
        Ok(config)
    })();
    match built {
        Ok(config) => Some(Arc::new(config)),
        Err(e) => {
            tracing::warn!(error = %e, "RadSec front-end: no usable certificate; connections are closed");
            None
        }
    }
}

/// Reads the RadSec files `config` names (the listener's certificate and key, every RadSec
/// client's CA bundle and name): the configuration path and what is wrong with the first that
/// cannot be used. Run when a configuration is applied, so a bad file refuses the change
/// instead of leaving a client out.
pub fn check_files(config: &portcullis_config::Config) -> Result<(), (String, String)> {
    let frontend = &config.radius_frontend;
    for (index, client) in frontend.clients.iter().enumerate() {
        if let Err(e) = ClientTls::build(client) {
            return Err((
                format!("radius_frontend.clients[{index}].tls_ca"),
                e.to_string(),
            ));
        }
    }
    if let (Some(certificate), Some(key)) = (&frontend.tls_certificate, &frontend.tls_key) {
        let chain = load_chain(certificate)
            .map_err(|e| ("radius_frontend.tls_certificate".to_string(), e.to_string()))?;
        let key =
            load_key(key).map_err(|e| ("radius_frontend.tls_key".to_string(), e.to_string()))?;
        // The key must be the certificate's.
        rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| ("radius_frontend.tls_certificate".to_string(), e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| ("radius_frontend.tls_key".to_string(), e.to_string()))?;
    }
    Ok(())
}

impl Table {
    /// The RadSec client that connected from `ip` with `chain`: its network contains `ip`,
    /// its CA signed the chain and the chain carries its name; the longest prefix wins.
    fn find_tls(&self, ip: IpAddr, chain: &[CertificateDer<'_>]) -> Option<&Arc<Client>> {
        let (end, intermediates) = chain.split_first()?;
        self.clients
            .iter()
            .filter(|client| client.network.contains(ip))
            .filter(|client| {
                client
                    .tls
                    .as_ref()
                    .is_some_and(|tls| tls.accepts(end, intermediates))
            })
            .max_by_key(|client| client.network.prefix())
    }

    /// The RadSec client with `id`, while it is one.
    fn tls_client(&self, id: u32) -> Option<&Arc<Client>> {
        self.clients
            .iter()
            .find(|client| client.id == id && client.tls.is_some())
    }
}

impl Frontend {
    /// Accepts RadSec connections on `listener` until `stop` resolves; each is served by a
    /// task of its own, which ends with the stop too (the walks it started go on,
    /// [`Frontend::drain`] waits for them).
    pub async fn serve_radsec(
        self: Arc<Self>,
        listener: TcpListener,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let (stopping, stopped) = watch::channel(false);
        let mut stop = std::pin::pin!(stop);
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut stop => {
                    let _ = stopping.send(true);
                    return;
                }
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "RadSec front-end: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let most = usize::try_from((self.current)().config.radius_frontend.max_connections)
                .unwrap_or(usize::MAX);
            if self.connections.fetch_add(1, Ordering::SeqCst) >= most {
                self.connections.fetch_sub(1, Ordering::SeqCst);
                self.refused();
                tracing::warn!(%peer, most, "RadSec front-end: too many connections; closed");
                continue;
            }
            crate::telemetry::radsec_open(self.connections.load(Ordering::SeqCst));
            let frontend = Arc::clone(&self);
            let stopped = stopped.clone();
            tokio::spawn(async move {
                frontend.connection(tcp, peer, stopped).await;
                let open = frontend.connections.fetch_sub(1, Ordering::SeqCst);
                crate::telemetry::radsec_open(open.saturating_sub(1));
            });
        }
    }

    /// Serves one RadSec connection (module documentation).
    async fn connection(
        self: &Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        mut stopped: watch::Receiver<bool>,
    ) {
        let table = self.table();
        let Some(config) = table.radsec.clone() else {
            self.refused();
            return;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::trace!(error = %e, "TCP_NODELAY not set");
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                self.refused();
                tracing::info!(%peer, error = %e, "RadSec front-end: handshake failed");
                return;
            }
            Err(_) => {
                self.refused();
                tracing::info!(%peer, "RadSec front-end: handshake timed out");
                return;
            }
        };
        let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
        let Some(client) = table.find_tls(peer.ip(), chain) else {
            self.refused();
            tracing::warn!(%peer, "RadSec front-end: no client matches the address and certificate; closed");
            return;
        };
        let client_id = client.id;
        let (_, session) = tls.get_ref();
        let v11 = session.alpn_protocol() == Some(ALPN_RADIUS_1_1);
        // RFC 9765 §3.4: RADIUS/1.1 only over TLS 1.3 or later.
        if v11 && session.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            self.refused();
            tracing::warn!(%peer, "RadSec front-end: RADIUS/1.1 over TLS 1.2; closed");
            return;
        }
        let version = if v11 { "RADIUS/1.1" } else { "RADIUS/TLS" };
        tracing::info!(%peer, client = %client.name, version, "RadSec front-end: connection");
        bump(&self.counters.connections);
        crate::telemetry::radsec_connection("accepted");
        drop(table);

        let (mut reader, mut writer) = tokio::io::split(tls);
        let (replies, mut queue) = mpsc::channel::<Arc<[u8]>>(WRITE_QUEUE);
        let writer_task = tokio::spawn(async move {
            while let Some(reply) = queue.recv().await {
                if writer.write_all(&reply).await.is_err() {
                    return;
                }
            }
            let _ = writer.shutdown().await;
        });
        let mut framer = Framer::new();
        'connection: loop {
            loop {
                let action = match framer.next_packet() {
                    Ok(Some(packet)) => self.handle_stream(packet, peer, client_id, v11),
                    Ok(None) => break,
                    Err(e) => {
                        self.counters.drop(DropReason::Malformed);
                        tracing::warn!(%peer, error = %e, "RadSec front-end: unframeable packet; closed");
                        break 'connection;
                    }
                };
                match action {
                    None => {
                        tracing::info!(%peer, "RadSec front-end: client left the configuration; closed");
                        break 'connection;
                    }
                    Some(Action::Drop(reason)) => {
                        tracing::debug!(%peer, reason = reason.name(), "RADIUS front-end: dropped");
                    }
                    Some(Action::Send(reply)) => {
                        if replies.send(reply).await.is_err() {
                            break 'connection;
                        }
                    }
                    Some(Action::Walk(walk)) => {
                        self.spawn_walk(walk, Sink::Stream(replies.clone()), peer);
                    }
                }
            }
            let idle = Duration::from_secs(u64::from(
                (self.current)().config.radius_frontend.idle_timeout,
            ));
            let read = tokio::select! {
                _ = stopped.changed() => break,
                read = tokio::time::timeout(idle, reader.read(framer.spare())) => read,
            };
            match read {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => framer.filled(n),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "RadSec front-end: connection failed");
                    break;
                }
                Err(_) => {
                    tracing::info!(%peer, "RadSec front-end: idle connection closed");
                    break;
                }
            }
        }
        // The writer ends once the walks still running have replied (or failed to).
        drop(replies);
        let _ = writer_task.await;
    }

    /// Counts a connection closed before any packet was read.
    fn refused(&self) {
        bump(&self.counters.connections_refused);
        crate::telemetry::radsec_connection("refused");
    }

    /// The synchronous part of serving one packet of RadSec client `client_id`; `None` when
    /// the client is no longer configured as one.
    fn handle_stream(
        &self,
        packet: &[u8],
        peer: SocketAddr,
        client_id: u32,
        v11: bool,
    ) -> Option<Action> {
        bump(&self.counters.requests);
        crate::telemetry::frontend_packet("request");
        let table = self.table();
        let client = table.tls_client(client_id)?;
        let action = self.classify_from(&table, client, packet, peer, v11);
        if let Action::Drop(reason) = &action {
            self.counters.drop(*reason);
        }
        Some(action)
    }
}
