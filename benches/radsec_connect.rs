//! What a RadSec (RADIUS over TLS, RFC 6614) connection costs a login through the upstream
//! client (`portcullis::upstream::radius::RadiusClient`), against an in-process RadSec
//! responder on loopback (tokio-rustls, mutual TLS: it demands a client certificate; ECDSA
//! P-256 keys from `tests/support/pki.rs`; every Access-Request gets a signed Access-Accept).
//!
//! - `udp request`: one PAP Access-Request/Accept over UDP to an in-process responder, the
//!   socket already open (the baseline);
//! - `tls request on an open connection`: the same over a TLS connection opened before;
//! - `tls 1.3 new connection + request`: a new client, so a TCP connection, a full TLS 1.3
//!   handshake with client certificate (resumption off), then the request;
//! - `tls 1.3 resumed connection + request`: a new client on the same client configuration
//!   as a previous one, as portcullis does for every connection to one server; rustls'
//!   in-memory session cache resumes the session from a ticket of the previous connection
//!   (the responder counts handshakes by kind and the bench checks they resumed);
//! - `tls 1.2 new connection + request`: a full TLS 1.2 handshake, for servers that do not
//!   speak 1.3.
//!
//! Each figure is the time of one iteration, the client's connection closed after it.
//!
//! Run: `cargo bench --bench radsec_connect`.

// A bench that cannot start its responder or log in has nothing to measure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[path = "../tests/support/pki.rs"]
#[allow(dead_code)]
mod pki;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pki::{Issued, Pki, Usage};
use portcullis::upstream::radius::{
    Answer, AuthProtocol, RadiusClient, RequestOptions, Requirement, ServerSpec,
};
use portcullis::upstream::tls::{TlsClient, TlsKeys, tls12_client};
use portcullis_protocol::radius::{Builder, Code, MAX_PACKET_LEN, Packet, Secret};
use rustls::HandshakeKind;
use rustls::client::Resumption;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::TlsConnector;

const SECRET: &[u8] = b"radsec";

/// Handshakes the responder completed, by kind.
#[derive(Debug, Default)]
struct Handshakes {
    full: AtomicU64,
    resumed: AtomicU64,
    /// Of those, in TLS 1.2.
    tls12: AtomicU64,
}

/// The signed Access-Accept answering `request`.
fn accept(request: &[u8], out: &mut [u8]) -> usize {
    let request = Packet::new_checked(request).expect("a request");
    let mut b =
        Builder::new(out, Code::AccessAccept, request.identifier(), &[0; 16]).expect("a reply");
    b.message_authenticator().expect("room");
    b.finish_reply(&request.authenticator(), &Secret::new(SECRET))
        .expect("a signed reply")
}

/// A RadSec responder on loopback presenting `cert` and demanding a client certificate
/// signed by `client_ca`.
async fn tls_responder(
    cert: &Issued,
    client_ca: &rustls::pki_types::CertificateDer<'static>,
    handshakes: Arc<Handshakes>,
) -> SocketAddr {
    let config = pki::server_config(
        cert,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        Some(client_ca),
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let (acceptor, handshakes) = (acceptor.clone(), Arc::clone(&handshakes));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                match tls.get_ref().1.handshake_kind() {
                    Some(HandshakeKind::Resumed) => &handshakes.resumed,
                    _ => &handshakes.full,
                }
                .fetch_add(1, Ordering::Relaxed);
                if tls.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_2) {
                    handshakes.tls12.fetch_add(1, Ordering::Relaxed);
                }
                let mut packet = vec![0u8; MAX_PACKET_LEN];
                let mut out = vec![0u8; MAX_PACKET_LEN];
                loop {
                    if tls.read_exact(&mut packet[..4]).await.is_err() {
                        return;
                    }
                    let len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
                    if !(20..=MAX_PACKET_LEN).contains(&len)
                        || tls.read_exact(&mut packet[4..len]).await.is_err()
                    {
                        return;
                    }
                    let n = accept(&packet[..len], &mut out);
                    if tls.write_all(&out[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A RADIUS responder on loopback UDP answering every Access-Request with a signed accept.
async fn udp_responder() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("a port");
    let addr = socket.local_addr().expect("an address");
    tokio::spawn(async move {
        let mut packet = vec![0u8; MAX_PACKET_LEN];
        let mut out = vec![0u8; MAX_PACKET_LEN];
        while let Ok((len, from)) = socket.recv_from(&mut packet).await {
            let n = accept(&packet[..len], &mut out);
            let _ = socket.send_to(&out[..n], from).await;
        }
    });
    addr
}

fn spec(addr: SocketAddr, tls: Option<TlsClient>) -> ServerSpec {
    ServerSpec {
        addr,
        secret: Secret::new(SECRET.to_vec().into_boxed_slice()),
        protocol: AuthProtocol::Pap,
        require_message_authenticator: Requirement::Yes,
        tls,
    }
}

/// `tls` with its client configuration copied and resumption off: every connection makes a
/// full handshake.
fn without_resumption(tls: &TlsClient) -> TlsClient {
    let mut config = (**tls.connector.config()).clone();
    config.resumption = Resumption::disabled();
    let mut full = tls.clone();
    full.connector = TlsConnector::from(Arc::new(config));
    full
}

async fn login(client: &RadiusClient, options: &RequestOptions) {
    let answer = client
        .authenticate("alice", b"alice-pw", options)
        .await
        .expect("the responder answers");
    assert!(matches!(answer, Answer::Accept(_)), "{answer:?}");
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let server_pki = Pki::new("radsec-server");
    let client_pki = Pki::new("radsec-client");
    let server_cert = server_pki.issue("server", &["127.0.0.1"], Usage::Server);
    let client_cert = client_pki.issue("client", &["gateway.example.net"], Usage::Client);
    let handshakes = Arc::new(Handshakes::default());
    let (tls_addr, udp_addr) = runtime.block_on(async {
        (
            tls_responder(&server_cert, &client_pki.ca_der, Arc::clone(&handshakes)).await,
            udp_responder().await,
        )
    });
    let cert = client_cert.cert_path.to_str().expect("a UTF-8 path");
    let key = client_cert.key_path.to_str().expect("a UTF-8 path");
    // What portcullis builds for `transport = "tls"` with tls_ca, tls_certificate, tls_key.
    let tls = tls12_client(TlsKeys {
        ca: Some(server_pki.ca_path.to_str().expect("a UTF-8 path")),
        server_name: "127.0.0.1",
        certificate: Some((cert, key)),
    })
    .expect("a TLS client");
    let tls13_full = without_resumption(&tls);
    // The same with TLS 1.2 only (rustls cannot narrow the versions of a built configuration).
    let tls12_full = {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(server_pki.ca_der.clone()).expect("the CA");
        let mut tls12 = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![client_cert.der.clone()], client_cert.key())
        .expect("the client certificate");
        tls12.resumption = Resumption::disabled();
        tls12
            .alpn_protocols
            .clone_from(&tls.connector.config().alpn_protocols);
        let mut full = tls.clone();
        full.connector = TlsConnector::from(Arc::new(tls12));
        full
    };
    let options = RequestOptions {
        nas_identifier: Some("portcullis-bench".into()),
        use_nas_ip: false,
        nas_ip: None,
        timeout: Duration::from_secs(5),
        tries: 1,
    };

    let mut group = c.benchmark_group("radsec connect");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));

    let udp = RadiusClient::new(spec(udp_addr, None));
    runtime.block_on(login(&udp, &options));
    group.bench_function("udp request", |b| {
        b.iter(|| runtime.block_on(login(&udp, &options)));
    });

    let open = RadiusClient::new(spec(tls_addr, Some(tls.clone())));
    runtime.block_on(login(&open, &options));
    group.bench_function("tls request on an open connection", |b| {
        b.iter(|| runtime.block_on(login(&open, &options)));
    });
    drop(open);

    // A new client each time: a new connection, closed when the client is dropped.
    let mut connect = |name: &str, tls: &TlsClient, resumed: bool, tls12: bool| {
        let count = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let before = (
            count(&handshakes.full),
            count(&handshakes.resumed),
            count(&handshakes.tls12),
        );
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        let client = RadiusClient::new(spec(tls_addr, Some(tls.clone())));
                        login(&client, &options).await;
                        total += started.elapsed();
                        drop(client);
                    }
                    total
                })
            });
        });
        let full = count(&handshakes.full) - before.0;
        let resumed_count = count(&handshakes.resumed) - before.1;
        let in_tls12 = count(&handshakes.tls12) - before.2;
        eprintln!(
            "{name}: {full} full handshakes, {resumed_count} resumed, {in_tls12} of them TLS 1.2"
        );
        let expected_tls12 = if tls12 { full + resumed_count } else { 0 };
        assert_eq!(in_tls12, expected_tls12, "protocol version");
        if resumed {
            // The first connection of the run may have had no ticket yet.
            assert!(full <= 1 && resumed_count > 0, "resumption expected");
        } else {
            assert_eq!(resumed_count, 0, "no resumption expected");
        }
    };
    connect(
        "tls 1.3 new connection + request",
        &tls13_full,
        false,
        false,
    );
    // The configuration keeps its session cache across clients, as it does across the
    // connections of one server in portcullis.
    connect("tls 1.3 resumed connection + request", &tls, true, false);
    connect("tls 1.2 new connection + request", &tls12_full, false, true);
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
