//! The HTTPS login driver: K keep-alive TLS connections, each sending
//! `POST /api/auth/1.0/login` one after the other. A 200 whose body carries a token is a
//! success; any other answer is an error. The server's certificate is not checked: the
//! daemon under test makes a self-signed one on loopback.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use crate::run::Shared;
use crate::stats::Latencies;
use crate::users::Cycle;

/// What one login run sends.
#[derive(Debug, Clone)]
pub struct Target {
    /// The API's address.
    pub addr: SocketAddr,
    /// The user names; each connection cycles over them from its own offset.
    pub users: Arc<[String]>,
    /// Password.
    pub password: String,
    /// Read timeout per answer.
    pub timeout: Duration,
}

/// What the workers measured.
#[derive(Debug, Default)]
pub struct Tally {
    /// 200 answers with a token.
    pub ok: u64,
    /// Other answers and broken connections.
    pub errors: u64,
    /// Latency of the `ok` answers.
    pub latencies: Latencies,
    /// When the last answer came.
    pub last: Option<Instant>,
}

/// Runs `connections` workers until `shared` says stop.
pub fn run(target: &Target, connections: usize, shared: &Arc<Shared>) -> io::Result<Tally> {
    let config = Arc::new(client_config()?);
    // One request per user name, built once and shared by the connections.
    let requests: Arc<[Vec<u8>]> = target
        .users
        .iter()
        .map(|user| request(target, user).into_bytes())
        .collect();
    let connections = connections.max(1);
    let mut handles = Vec::new();
    for i in 0..connections {
        let target = target.clone();
        let shared = Arc::clone(shared);
        let config = Arc::clone(&config);
        let requests = Arc::clone(&requests);
        let names = Cycle::new(requests.len(), i, connections);
        handles.push(thread::spawn(move || {
            worker(&target, &config, &requests, names, &shared)
        }));
    }
    let mut total = Tally::default();
    for handle in handles {
        let tally = handle
            .join()
            .map_err(|_| io::Error::other("a worker thread panicked"))?;
        total.ok += tally.ok;
        total.errors += tally.errors;
        total.latencies.merge(&tally.latencies);
        total.last = total.last.max(tally.last);
    }
    Ok(total)
}

type Stream = StreamOwned<ClientConnection, TcpStream>;

fn connect(target: &Target, config: &Arc<ClientConfig>) -> io::Result<Stream> {
    let tcp = TcpStream::connect(target.addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(target.timeout))?;
    let name = ServerName::IpAddress(target.addr.ip().into());
    let conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    Ok(StreamOwned::new(conn, tcp))
}

/// The login request of `user`.
fn request(target: &Target, user: &str) -> String {
    let body = format!(
        r#"{{"username":{},"password":{}}}"#,
        json_string(user),
        json_string(&target.password)
    );
    format!(
        "POST /api/auth/1.0/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        target.addr,
        body.len()
    )
}

fn worker(
    target: &Target,
    config: &Arc<ClientConfig>,
    requests: &[Vec<u8>],
    mut names: Cycle,
    shared: &Shared,
) -> Tally {
    let mut tally = Tally::default();
    let mut stream: Option<Stream> = None;
    let mut buf = Vec::with_capacity(4096);
    while shared.take() {
        let request = requests
            .get(names.next_index())
            .map_or(&[][..], Vec::as_slice);
        let started = Instant::now();
        let result = match stream.as_mut() {
            Some(s) => exchange(s, request, &mut buf),
            None => match connect(target, config) {
                Ok(s) => exchange(stream.insert(s), request, &mut buf),
                Err(e) => Err(e),
            },
        };
        let now = Instant::now();
        match result {
            Ok((200, body)) if contains(body, b"\"token\"") => {
                tally.ok += 1;
                tally.latencies.record(now - started);
                tally.last = Some(now);
            }
            Ok(_) => tally.errors += 1,
            Err(_) => {
                tally.errors += 1;
                stream = None;
            }
        }
        shared.done();
    }
    tally
}

/// Sends `request` and reads one response: its status and body.
fn exchange<'b>(
    stream: &mut Stream,
    request: &[u8],
    buf: &'b mut Vec<u8>,
) -> io::Result<(u16, &'b [u8])> {
    stream.write_all(request)?;
    stream.flush()?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let head = std::str::from_utf8(buf.get(..header_end).unwrap_or_default())
        .map_err(|_| io::Error::other("response head is not UTF-8"))?;
    let (status, length) = parse_head(head).ok_or_else(|| io::Error::other("bad response head"))?;
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok((
        status,
        buf.get(header_end..header_end + length).unwrap_or_default(),
    ))
}

/// The status code and Content-Length of an HTTP/1.1 response head.
pub fn parse_head(head: &str) -> Option<(u16, usize)> {
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    Some((status, length))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn client_config() -> io::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(config)
}

/// Accepts the daemon's self-signed certificate; handshake signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads() {
        assert_eq!(
            parse_head(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 42\r\n\r\n"
            ),
            Some((200, 42))
        );
        assert_eq!(
            parse_head("HTTP/1.1 401 Unauthorized\r\n\r\n"),
            Some((401, 0))
        );
        assert_eq!(parse_head("garbage"), None);
    }

    #[test]
    fn requests_carry_each_user_name() {
        let target = Target {
            addr: "127.0.0.1:8443".parse().unwrap(),
            users: Arc::from(vec!["alice-7".to_string()]),
            password: "p\"w".into(),
            timeout: Duration::from_secs(1),
        };
        let text = request(&target, "alice-7");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, r#"{"username":"alice-7","password":"p\"w"}"#);
        assert!(head.starts_with("POST /api/auth/1.0/login HTTP/1.1\r\n"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(json_string("x\ny"), "\"x\\u000ay\"");
    }
}
