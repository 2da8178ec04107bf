//! The RadSec driver (RADIUS over TLS, RFC 6614): Access-Requests over N TLS connections,
//! each with a client certificate, keeping its share of the K outstanding requests in flight.
//! The requests are the UDP driver's (same attributes, same checks of every reply); on the
//! stream each request is one TLS record written as soon as it is built (one send per
//! request, as over UDP), and replies are split out of the decrypted byte stream by their
//! Length field (RFC 6614 §2.5).
//!
//! Closed loop only: a reply frees its Identifier and the next request goes out on it. A
//! request unanswered after the timeout is counted and its Identifier reused (nothing is
//! resent over TLS). A connection that fails or is closed ends its worker; its outstanding
//! requests count as errors.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use portcullis_protocol::radius::{MAX_PACKET_LEN, Secret};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::radius::{Slot, Tally, Target, build_request};
use crate::run::{Rng, Shared};
use crate::users::Cycle;

/// Smallest and largest RADIUS packet (RFC 2865 §3); any other Length breaks the stream.
const MIN_PACKET_LEN: usize = 20;

/// How long a connection and its handshake may take.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// How often the workers look for requests past their timeout.
const SWEEP: Duration = Duration::from_millis(20);

/// The TLS side of a RadSec run.
#[derive(Debug, Clone)]
pub struct Tls {
    /// PEM bundle of the CAs that may sign the server's certificate.
    pub ca: PathBuf,
    /// PEM certificate chain presented to the server.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// The name the server's certificate must carry; the target's address when `None`.
    pub server_name: Option<String>,
    /// Offer TLS 1.2 only instead of 1.3 only.
    pub tls12: bool,
}

impl Tls {
    /// The client configuration: the CA, the client certificate, one protocol version.
    /// Session resumption does not matter here (every connection lives for the whole run).
    pub fn client_config(&self) -> io::Result<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).map_err(|e| file_error(&self.ca, e))? {
            roots
                .add(cert.map_err(|e| file_error(&self.ca, e))?)
                .map_err(|e| file_error(&self.ca, e))?;
        }
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file_error(&self.cert, e))?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| file_error(&self.key, e))?;
        let version = if self.tls12 {
            &rustls::version::TLS12
        } else {
            &rustls::version::TLS13
        };
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(io::Error::other)
    }

    fn server_name(&self, addr: SocketAddr) -> io::Result<ServerName<'static>> {
        match &self.server_name {
            Some(name) => ServerName::try_from(name.clone())
                .map_err(|_| io::Error::other(format!("{name:?} is not a server name"))),
            None => Ok(ServerName::IpAddress(addr.ip().into())),
        }
    }
}

fn file_error(path: &std::path::Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {e}", path.display()))
}

/// Runs `connections` workers sharing `concurrency` outstanding requests until `shared`
/// says stop, and adds up what they measured. Every connection completes its handshake
/// before any request is sent.
pub fn run(
    target: &Target,
    tls: &Tls,
    connections: usize,
    concurrency: usize,
    shared: &Arc<Shared>,
) -> io::Result<Tally> {
    let config = Arc::new(tls.client_config()?);
    let name = tls.server_name(target.addr)?;
    let connections = connections.clamp(1, concurrency.max(1));
    let mut streams = Vec::new();
    for _ in 0..connections {
        streams.push(connect(target.addr, &config, name.clone())?);
    }
    let mut handles = Vec::new();
    for (i, stream) in streams.into_iter().enumerate() {
        // The window of connection i: its share of K, the remainder to the first ones; at
        // most 256 (one Identifier each).
        let window =
            (concurrency / connections + usize::from(i < concurrency % connections)).min(256);
        let target = target.clone();
        let shared = Arc::clone(shared);
        let names = Cycle::new(target.users.len(), i, connections);
        handles.push(thread::spawn(move || {
            worker(stream, &target, window, names, &shared)
        }));
    }
    let mut total = Tally::default();
    for handle in handles {
        let tally = handle
            .join()
            .map_err(|_| io::Error::other("a worker thread panicked"))??;
        total.ok += tally.ok;
        total.errors += tally.errors;
        total.timeouts += tally.timeouts;
        total.latencies.merge(&tally.latencies);
        total.last = total.last.max(tally.last);
    }
    Ok(total)
}

/// A TLS connection to `addr` whose handshake is complete.
pub struct Stream {
    conn: ClientConnection,
    tcp: TcpStream,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("tcp", &self.tcp)
            .field("version", &self.conn.protocol_version())
            .finish_non_exhaustive()
    }
}

/// Connects to `addr` and completes the handshake (within [`HANDSHAKE_LIMIT`]); reads then
/// wait at most [`SWEEP`].
pub fn connect(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
) -> io::Result<Stream> {
    let mut tcp = TcpStream::connect_timeout(&addr, HANDSHAKE_LIMIT)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(HANDSHAKE_LIMIT))?;
    tcp.set_write_timeout(Some(HANDSHAKE_LIMIT))?;
    let mut conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {addr}: {e}")))?;
    }
    tcp.set_read_timeout(Some(SWEEP))?;
    Ok(Stream { conn, tcp })
}

impl Stream {
    /// Encrypts `packet` as one record and sends it.
    pub fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        self.conn.writer().write_all(packet)?;
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }

    /// Appends what the server sent to `plain` (after one read of the socket, which waits at
    /// most [`SWEEP`]); `Ok(false)` when the server closed the connection.
    pub fn receive(&mut self, plain: &mut Vec<u8>) -> io::Result<bool> {
        let read = match self.conn.read_tls(&mut self.tcp) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if nothing_yet(&e) => 0,
            Err(e) => return Err(e),
        };
        if read > 0 {
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        let mut chunk = [0u8; 8192];
        loop {
            match self.conn.reader().read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => plain.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        // Alerts or key updates the packets may have queued.
        self.flush()?;
        Ok(true)
    }
}

/// Whether a read error only means nothing arrived within the read timeout.
fn nothing_yet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// The length of the packet at the start of `stream`: `Ok(None)` while it is incomplete, an
/// error for a Length no RADIUS packet has (the stream cannot be framed any further).
pub fn next_frame(stream: &[u8]) -> io::Result<Option<usize>> {
    let [_, _, hi, lo, ..] = *stream else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if !(MIN_PACKET_LEN..=MAX_PACKET_LEN).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("impossible Length {len} on the stream"),
        ));
    }
    Ok((stream.len() >= len).then_some(len))
}

fn worker(
    mut stream: Stream,
    target: &Target,
    window: usize,
    mut names: Cycle,
    shared: &Shared,
) -> io::Result<Tally> {
    let secret = Secret::new(target.secret.as_slice());
    let mut rng = Rng::seeded();
    let mut slots: Vec<Option<Slot>> = vec![None; window];
    let mut tally = Tally::default();
    let mut out = [0u8; MAX_PACKET_LEN];
    let mut plain: Vec<u8> = Vec::with_capacity(16 * 1024);

    let mut send_next = |stream: &mut Stream, rng: &mut Rng, id: usize| -> io::Result<Slot> {
        let user = target.user(names.next_index());
        let (len, authenticator) = build_request(target, user, &secret, rng, &mut out, id)?;
        let sent = Instant::now();
        stream.send(out.get(..len).unwrap_or_default())?;
        Ok(Slot {
            sent,
            authenticator,
        })
    };

    for (id, slot) in slots.iter_mut().enumerate() {
        if !shared.take() {
            break;
        }
        *slot = Some(send_next(&mut stream, &mut rng, id)?);
    }
    let mut last_sweep = Instant::now();
    while slots.iter().any(Option::is_some) {
        let alive = match stream.receive(&mut plain) {
            Ok(alive) => alive,
            Err(e) => {
                eprintln!("portcullis-load: RadSec connection failed: {e}");
                false
            }
        };
        let now = Instant::now();
        let mut at = 0;
        let framed = loop {
            match next_frame(plain.get(at..).unwrap_or_default()) {
                Ok(Some(len)) => {
                    let packet = plain.get(at..at + len).unwrap_or_default();
                    at += len;
                    let id = packet.get(1).map_or(0, |&id| usize::from(id));
                    let Some(Some(slot)) = slots.get(id).copied() else {
                        // A late answer to a request already counted as timed out, or an
                        // error.
                        if !tally.late_answer(packet, id, &secret) {
                            tally.errors += 1;
                        }
                        continue;
                    };
                    if !tally.answers(packet, id, &slot, &secret) {
                        continue;
                    }
                    tally.reply(packet, &slot, &secret, target.expect, now);
                    shared.done();
                    let next = if shared.take() {
                        Some(send_next(&mut stream, &mut rng, id)?)
                    } else {
                        None
                    };
                    if let Some(slot) = slots.get_mut(id) {
                        *slot = next;
                    }
                }
                Ok(None) => break true,
                Err(e) => {
                    eprintln!("portcullis-load: {e}");
                    break false;
                }
            }
        };
        plain.drain(..at.min(plain.len()));
        if !alive || !framed {
            // The connection is over: what is still outstanding on it never gets an answer.
            for slot in slots.iter_mut().filter(|slot| slot.is_some()) {
                *slot = None;
                tally.errors += 1;
                shared.done();
            }
            break;
        }
        if now.duration_since(last_sweep) >= SWEEP {
            last_sweep = now;
            for id in 0..slots.len() {
                let expired = match slots.get(id) {
                    Some(Some(slot)) if now - slot.sent >= target.timeout => Some(*slot),
                    _ => None,
                };
                if let Some(slot) = expired {
                    tally.timed_out(id, &slot);
                    shared.done();
                    let next = if shared.take() {
                        Some(send_next(&mut stream, &mut rng, id)?)
                    } else {
                        None
                    };
                    if let Some(slot) = slots.get_mut(id) {
                        *slot = next;
                    }
                }
            }
        }
    }
    // A polite end: close_notify, then the socket closes with the stream.
    stream.conn.send_close_notify();
    let _ = stream.flush();
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::Auth;
    use crate::run::Length;
    use portcullis_protocol::radius::{Builder, Code, Packet};
    use std::net::TcpListener;
    use std::path::Path;
    use std::process::Command;

    const SECRET: &[u8] = b"radsec";

    #[test]
    fn frames_split_by_length() {
        let mut stream = vec![1, 7, 0, 20];
        stream.resize(20, 0);
        stream.extend_from_slice(&[2, 8, 0, 24]);
        assert_eq!(next_frame(&stream).unwrap(), Some(20));
        // The second is 24 octets; only 4 have arrived.
        assert_eq!(next_frame(&stream[20..]).unwrap(), None);
        assert_eq!(next_frame(&stream[..3]).unwrap(), None);
        assert!(next_frame(&[1, 1, 0, 19]).is_err());
        assert!(next_frame(&[1, 1, 0x10, 1]).is_err());
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate made with the
    /// `openssl` command in `dir`; `None` when there is no `openssl`.
    fn pki(dir: &Path) -> Option<()> {
        let run = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .ok()?;
            assert!(status.success(), "openssl {args:?}");
            Some(())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=load-ca",
            ],
        ]
        .concat())?;
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
            ),
            (
                "client",
                "subjectAltName=DNS:load.example.net\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
            ),
        ] {
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            run(&[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={name}"),
                ],
            ]
            .concat())?;
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ])?;
        }
        Some(())
    }

    /// A RadSec responder on loopback (one connection, one thread) that accepts every
    /// Access-Request after checking the client certificate against the CA, until the
    /// client closes.
    fn responder(dir: &Path) -> (SocketAddr, thread::JoinHandle<usize>) {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .unwrap();
        let chain = CertificateDer::pem_file_iter(dir.join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut answered = 0;
            loop {
                let mut packet = vec![0u8; 4];
                if tls.read_exact(&mut packet).is_err() {
                    return answered;
                }
                let len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
                packet.resize(len, 0);
                tls.read_exact(&mut packet[4..]).unwrap();
                let request = Packet::new_checked(&packet[..]).unwrap();
                let mut buf = [0u8; 4096];
                let mut b =
                    Builder::new(&mut buf, Code::AccessAccept, request.identifier(), &[0; 16])
                        .unwrap();
                b.message_authenticator().unwrap();
                let n = b
                    .finish_reply(&request.authenticator(), &Secret::new(SECRET))
                    .unwrap();
                tls.write_all(&buf[..n]).unwrap();
                answered += 1;
            }
        });
        (addr, handle)
    }

    #[test]
    fn requests_over_tls_with_a_client_certificate() {
        let dir =
            std::env::temp_dir().join(format!("portcullis-load-radsec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if pki(&dir).is_none() {
            eprintln!("no openssl command: skipped");
            return;
        }
        let (addr, server) = responder(&dir);
        let target = Target {
            addr,
            secret: SECRET.to_vec(),
            users: Arc::from(vec!["alice".to_string()]),
            password: b"alice-password".to_vec(),
            auth: Auth::Chap,
            expect: Code::AccessAccept,
            timeout: Duration::from_secs(5),
            rate: None,
        };
        let tls = Tls {
            ca: dir.join("ca.pem"),
            cert: dir.join("client.pem"),
            key: dir.join("client.key"),
            server_name: None,
            tls12: false,
        };
        let shared = Shared::new(Length::Requests(300));
        let tally = run(&target, &tls, 1, 16, &shared).unwrap();
        assert_eq!((tally.ok, tally.errors, tally.timeouts), (300, 0, 0));
        assert_eq!(tally.latencies.len(), 300);
        assert_eq!(server.join().unwrap(), 300);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
