//! Hostile HTTP against the real daemon, over raw TLS connections (rustls on a plain TCP
//! socket, trusting the daemon's own certificate): slow headers, slow bodies, huge bodies,
//! deep JSON, bad UTF-8, path traversal in ids, method confusion, missing or odd
//! Content-Type. Each gets a clear 4xx (or the connection closed, for slow headers), never a
//! 5xx, never a hang: every read in this file has a timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use support::daemon::{ADMIN_PASSWORD, Daemon};

/// The longest any answer may take: the daemon's 10-second header and body timeouts plus
/// slack for a loaded machine.
const READ_LIMIT: Duration = Duration::from_secs(30);

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to the daemon, verified against the certificate it made.
fn connect(daemon: &Daemon) -> Tls {
    try_connect(daemon).expect("TLS handshake")
}

/// [`connect`], or the error that stopped it.
fn try_connect(daemon: &Daemon) -> std::io::Result<Tls> {
    let cert_path = daemon.dir().join("state/tls/cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&cert_path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(daemon.addr)?;
    tcp.set_read_timeout(Some(READ_LIMIT))?;
    tcp.set_write_timeout(Some(READ_LIMIT))?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    // Finish the handshake now, so later timings are the HTTP layer's.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// A 4xx with the documented error body and the expected id.
    fn refused(&self, status: u16, error_id: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let body = self.json();
        assert_eq!(body["error_id"], error_id, "{body}");
        assert!(body["error_text"].is_string(), "{body}");
    }
}

/// Reads until the server closes the connection (or [`READ_LIMIT`] passes) and parses the
/// first answer. `None` when nothing arrived.
fn read_answer(tls: &mut Tls) -> Option<Answer> {
    let started = Instant::now();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        assert!(
            started.elapsed() < READ_LIMIT,
            "no answer within {READ_LIMIT:?}"
        );
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if complete(&raw) {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("no answer within {READ_LIMIT:?}")
            }
            // A reset or an unclean TLS close ends the stream as well.
            Err(_) => break,
        }
    }
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        head,
        body: raw[end + 4..].to_vec(),
    })
}

/// Whether `raw` holds a whole answer with a Content-Length body.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    length.is_some_and(|length| raw.len() >= end + 4 + length)
}

/// Sends `request` (head and body octets as given) on a fresh connection; the answer.
fn exchange(daemon: &Daemon, request: &[u8]) -> Answer {
    let mut tls = connect(daemon);
    tls.write_all(request).unwrap();
    tls.flush().unwrap();
    let answer = read_answer(&mut tls).expect("an answer");
    assert!(answer.status < 500, "{answer:?}");
    answer
}

fn basic() -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    format!("Authorization: Basic {token}\r\n")
}

/// A request with `headers` (each ending in CRLF) and `body`, closing the connection after.
fn request(method: &str, path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

const JSON: &str = "Content-Type: application/json\r\n";
const LOGIN: &str = "/api/auth/1.0/login";

#[test]
fn slow_headers_are_cut_off() {
    let daemon = Daemon::start(None);
    let mut tls = connect(&daemon);
    let head = b"POST /api/auth/1.0/login HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    tls.write_all(head).unwrap();
    tls.flush().unwrap();
    // Drip one octet a second, far slower than any real client, until the server gives up.
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < READ_LIMIT {
        std::thread::sleep(Duration::from_secs(1));
        if tls.write_all(b"a").and_then(|()| tls.flush()).is_err() {
            closed = true;
            break;
        }
        tls.sock
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let mut buf = [0u8; 1024];
        match tls.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            // An answer (hyper may send 408) before closing is fine; it must be a 4xx.
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(text.starts_with("HTTP/1.1 4"), "{text}");
                closed = true;
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "a slow client kept its connection for {READ_LIMIT:?}"
    );
    // The daemon still serves others.
    let answer = exchange(&daemon, &request("GET", "/api/openapi.json", "", b""));
    assert_eq!(answer.status, 200);
}

#[test]
fn slow_body_gets_408_and_the_connection_closes() {
    let daemon = Daemon::start(None);
    let mut tls = connect(&daemon);
    let head = format!(
        "POST {LOGIN} HTTP/1.1\r\nHost: localhost\r\n{JSON}Content-Length: 100\r\n\r\n{{\"user"
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.flush().unwrap();
    let answer = read_answer(&mut tls).expect("a 408");
    answer.refused(408, "REQUEST_TIMEOUT");
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{}",
        answer.head
    );
}

#[test]
fn huge_bodies_get_413() {
    let daemon = Daemon::start(None);
    // Declared too large: refused before it is read.
    let head = format!(
        "POST {LOGIN} HTTP/1.1\r\nHost: localhost\r\n{JSON}Content-Length: {}\r\n\r\n",
        64 << 20
    );
    exchange(&daemon, head.as_bytes()).refused(413, "PAYLOAD_TOO_LARGE");
    // Chunked without a length: cut at the limit while it is read.
    let mut tls = connect(&daemon);
    let head = format!(
        "POST {LOGIN} HTTP/1.1\r\nHost: localhost\r\n{JSON}Transfer-Encoding: chunked\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..20 {
        let sent = tls
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|()| tls.write_all(&chunk))
            .and_then(|()| tls.write_all(b"\r\n"))
            .and_then(|()| tls.flush());
        if sent.is_err() {
            break;
        }
    }
    let answer = read_answer(&mut tls).expect("a 413");
    answer.refused(413, "PAYLOAD_TOO_LARGE");
}

#[test]
fn deep_json_bad_utf8_and_odd_content_types_get_4xx() {
    let daemon = Daemon::start(None);
    // 100 000 levels of nesting: serde_json stops at 128, no stack overflow.
    let deep = "[".repeat(100_000);
    exchange(&daemon, &request("POST", LOGIN, JSON, deep.as_bytes())).refused(400, "BAD_REQUEST");
    let objects = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let path = "/api/mgmt.radius_frontend/1.0/clients";
    let headers = format!("{JSON}{}", basic());
    exchange(
        &daemon,
        &request("POST", path, &headers, objects.as_bytes()),
    )
    .refused(400, "BAD_REQUEST");
    // Invalid UTF-8 inside a JSON string, and as the whole body.
    let bad = b"{\"username\":\"adm\xff\xfein\",\"password\":\"x\"}";
    exchange(&daemon, &request("POST", LOGIN, JSON, bad)).refused(400, "BAD_REQUEST");
    exchange(&daemon, &request("POST", LOGIN, JSON, b"\xc3\x28\xa0\xa1"))
        .refused(400, "BAD_REQUEST");
    // Invalid UTF-8 in a header value (the Basic credentials) is invalid credentials.
    let mut raw = b"GET /api/mgmt.local_users/1.0/users HTTP/1.1\r\nHost: localhost\r\n\
        Connection: close\r\nAuthorization: Basic \xff\xfe\r\n\r\n"
        .to_vec();
    let answer = exchange(&daemon, &raw);
    answer.refused(401, "AUTH_INVALID_CREDENTIALS");
    // A NUL in the body's JSON string is data, not a terminator: an ordinary failed login.
    raw = br#"{"username":"admin\u0000x","password":"x"}"#.to_vec();
    exchange(&daemon, &request("POST", LOGIN, JSON, &raw)).refused(401, "AUTH_INVALID_CREDENTIALS");

    // Content-Type: a body must be declared JSON.
    let login = br#"{"username":"admin","password":"wrong"}"#;
    for odd in [
        "",
        "Content-Type: text/plain\r\n",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "Content-Type: multipart/form-data; boundary=x\r\n",
        "Content-Type: application/jsonp\r\n",
    ] {
        exchange(&daemon, &request("POST", LOGIN, odd, login))
            .refused(415, "UNSUPPORTED_MEDIA_TYPE");
    }
    let mut raw = request(
        "POST",
        LOGIN,
        "Content-Type: application/json\u{1}\r\n",
        login,
    );
    let at = raw.iter().position(|b| *b == 1).unwrap();
    raw[at] = 0xff;
    exchange(&daemon, &raw).refused(415, "UNSUPPORTED_MEDIA_TYPE");
    for fine in [
        JSON,
        "Content-Type: application/json; charset=utf-8\r\n",
        "Content-Type: Application/JSON\r\n",
    ] {
        exchange(&daemon, &request("POST", LOGIN, fine, login))
            .refused(401, "AUTH_INVALID_CREDENTIALS");
    }
    // The OpenAPI document lists 415 (and 408) for every operation that takes a body.
    let doc = exchange(&daemon, &request("GET", "/api/openapi.json", "", b"")).json();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("requestBody").is_some() {
                for status in ["408", "413", "415"] {
                    assert!(
                        operation["responses"].get(status).is_some(),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
    }
}

#[test]
fn traversal_in_ids_and_method_confusion_get_4xx() {
    let daemon = Daemon::start(None);
    let auth = basic();
    for path in [
        "/api/mgmt.local_users/1.0/users/../../../etc/passwd",
        "/api/mgmt.local_users/1.0/users/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/mgmt.local_users/1.0/users/%2e%2e%2f%2e%2e%2fstate",
        "/api/mgmt.local_users/1.0/users/%FF%FE",
        "/api/mgmt.local_users/1.0/users/admin%00",
        "/api/mgmt.radius_frontend/1.0/clients/..%2f1",
        "/api/mgmt.remote_authentication/1.0/radius/server/1%2F..%2F2",
        "/api/mgmt.remote_authentication/1.0/radius/server/-1",
        "/api/mgmt.remote_authentication/1.0/radius/server/99999999999999999999",
        "/api/../api/openapi.json/../../etc/passwd",
        "//etc/passwd",
    ] {
        for method in ["GET", "PUT", "DELETE"] {
            let (headers, body): (String, &[u8]) = if method == "PUT" {
                (format!("{auth}{JSON}"), b"{}")
            } else {
                (auth.clone(), b"")
            };
            let answer = exchange(&daemon, &request(method, path, &headers, body));
            assert!(
                matches!(answer.status, 400 | 404 | 405),
                "{method} {path}: {answer:?}"
            );
            assert!(answer.json()["error_id"].is_string(), "{method} {path}");
        }
    }
    // Nothing outside the API answers; the user list is intact.
    let users = exchange(
        &daemon,
        &request("GET", "/api/mgmt.local_users/1.0/users", &auth, b""),
    );
    assert_eq!(users.status, 200, "{users:?}");
    assert_eq!(users.json().as_array().unwrap().len(), 1);

    // Method confusion: wrong verbs, unknown verbs, override headers are ignored.
    for method in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"] {
        let answer = exchange(&daemon, &request(method, LOGIN, JSON, b""));
        answer.refused(405, "METHOD_NOT_ALLOWED");
    }
    let override_headers =
        format!("{auth}X-HTTP-Method-Override: DELETE\r\nX-Method-Override: DELETE\r\n");
    let answer = exchange(
        &daemon,
        &request(
            "GET",
            "/api/mgmt.local_users/1.0/users/admin",
            &override_headers,
            b"",
        ),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = exchange(
        &daemon,
        &request(
            "POST",
            "/api/mgmt.local_users/1.0/users/admin",
            &format!("{override_headers}{JSON}"),
            b"{}",
        ),
    );
    answer.refused(405, "METHOD_NOT_ALLOWED");
    // A malformed request line is hyper's 400.
    let answer = exchange(&daemon, b"BAD REQUEST LINE\r\n\r\n");
    assert_eq!(answer.status, 400, "{answer:?}");
    let users = exchange(
        &daemon,
        &request("GET", "/api/mgmt.local_users/1.0/users/admin", &auth, b""),
    );
    assert_eq!(users.status, 200, "{users:?}");
}

#[test]
fn connections_over_the_cap_are_closed_at_once() {
    use portcullis::api::hostile::MAX_CONNECTIONS;
    let daemon = Daemon::start(None);
    let extra = 40;
    // Idle TCP connections that never start TLS: each holds a permit until the daemon's
    // 10-second handshake timeout.
    let held: Vec<TcpStream> = (0..MAX_CONNECTIONS + extra)
        .map(|_| {
            let tcp = TcpStream::connect(daemon.addr).unwrap();
            tcp.set_nonblocking(true).unwrap();
            tcp
        })
        .collect();
    let closed = |streams: &[TcpStream]| {
        streams
            .iter()
            .filter(|tcp| {
                let mut buf = [0u8; 1];
                let mut tcp: &TcpStream = tcp;
                match tcp.read(&mut buf) {
                    Ok(0) => true,
                    Err(e) => e.kind() != ErrorKind::WouldBlock,
                    Ok(_) => false,
                }
            })
            .count()
    };
    // Well within the handshake timeout, the ones over the cap are closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut count = closed(&held);
    while count < extra && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        count = closed(&held);
    }
    assert!(
        count >= extra,
        "only {count} of {extra} connections over the cap closed"
    );
    // Closing them frees the permits: the daemon serves again.
    drop(held);
    let mut status = 0;
    for _ in 0..50 {
        let Ok(mut tls) = try_connect(&daemon) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let sent = tls.write_all(&request("GET", "/api/openapi.json", "", b""));
        if sent.is_ok() {
            if let Some(answer) = read_answer(&mut tls) {
                status = answer.status;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 200);
}
