//! Delivery of one-time codes: an SMS gateway webhook (HTTP POST of JSON) and e-mail through an
//! SMTP relay, both configured in `[mfa_delivery]`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use portcullis_config::{MfaDelivery, SmsDelivery};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::smtp;

/// The trust anchors used when no `ca_file` is configured (Debian's `ca-certificates`).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How a code travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A text message through the SMS webhook; the address is a phone number.
    Sms,
    /// An e-mail through the SMTP relay; the address is an e-mail address.
    Email,
}

impl Channel {
    /// The name `auth_token_delivery_methods` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "SMS",
            Channel::Email => "EMAIL",
        }
    }

    /// Parses `auth_token_delivery_methods`.
    pub fn parse(name: &str) -> Option<Channel> {
        match name {
            "SMS" => Some(Channel::Sms),
            "EMAIL" => Some(Channel::Email),
            _ => None,
        }
    }
}

/// One message to deliver.
#[derive(Debug)]
pub struct Message<'a> {
    /// SMS or e-mail.
    pub channel: Channel,
    /// The phone number or e-mail address.
    pub to: &'a str,
    /// The application's `message_from`: the SMS sender id, the e-mail sender's display name.
    pub from_name: &'a str,
    /// The e-mail subject (unused for SMS).
    pub subject: &'a str,
    /// The rendered template, holding the code.
    pub text: &'a str,
}

/// Why a message was not delivered. The text never holds the message (it holds the code).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// `[mfa_delivery.sms]` or `[mfa_delivery.smtp]` is missing.
    #[error("no {0} delivery is configured ([mfa_delivery.{1}])")]
    NotConfigured(&'static str, &'static str),
    /// The gateway or relay refused, failed or could not be reached.
    #[error("{0}")]
    Failed(String),
    /// It took longer than the configured timeout.
    #[error("no answer within {0} seconds")]
    Timeout(u32),
}

/// Delivers `message` with the configured sender of its channel, within that sender's timeout.
pub async fn deliver(config: &MfaDelivery, message: &Message<'_>) -> Result<(), DeliveryError> {
    match message.channel {
        Channel::Sms => {
            let sms = config
                .sms
                .as_ref()
                .ok_or(DeliveryError::NotConfigured("SMS", "sms"))?;
            within(sms.timeout, send_sms(sms, message)).await
        }
        Channel::Email => {
            let smtp = config
                .smtp
                .as_ref()
                .ok_or(DeliveryError::NotConfigured("e-mail", "smtp"))?;
            let now = crate::state::unix_now();
            let id =
                super::codes::random_hex(16).map_err(|e| DeliveryError::Failed(e.to_string()))?;
            let mail = email(&smtp.from, message, now, &id);
            within(smtp.timeout, smtp::send(smtp, message.to, mail.as_bytes())).await
        }
    }
}

async fn within<T>(
    seconds: u32,
    work: impl Future<Output = Result<T, DeliveryError>>,
) -> Result<T, DeliveryError> {
    tokio::time::timeout(Duration::from_secs(u64::from(seconds)), work)
        .await
        .map_err(|_| DeliveryError::Timeout(seconds))?
}

/// A TLS client trusting the certificates of `ca_file` (default [`SYSTEM_CA_FILE`]).
pub fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, DeliveryError> {
    let path = ca_file.unwrap_or(Path::new(SYSTEM_CA_FILE));
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| DeliveryError::Failed(format!("{}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| DeliveryError::Failed(format!("{}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| DeliveryError::Failed(format!("{}: {e}", path.display())))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| DeliveryError::Failed(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The JSON the SMS webhook receives.
pub fn sms_body(message: &Message<'_>) -> String {
    serde_json::json!({
        "to": message.to,
        "from": message.from_name,
        "message": message.text,
    })
    .to_string()
}

/// One POST to the webhook; any 2xx status is success.
async fn send_sms(config: &SmsDelivery, message: &Message<'_>) -> Result<(), DeliveryError> {
    let failed = |why: String| DeliveryError::Failed(format!("SMS gateway: {why}"));
    let uri: Uri = config
        .url
        .parse()
        .map_err(|e| failed(format!("URL {:?}: {e}", config.url)))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(failed(format!("URL {:?} is not http(s)", config.url))),
    };
    let host = uri
        .host()
        .ok_or_else(|| failed(format!("URL {:?} has no host", config.url)))?;
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| host.to_owned());
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());

    let mut request = Request::builder()
        .method("POST")
        .uri(path)
        .header("host", authority)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("user-agent", "portcullis");
    if let Some(bearer) = &config.bearer {
        request = request.header("authorization", format!("Bearer {}", bearer.expose()));
    }
    let request = request
        .body(Full::new(bytes_of(sms_body(message))))
        .map_err(|e| failed(format!("request: {e}")))?;

    let connector = if https {
        Some(tls_connector(config.ca_file.as_deref())?)
    } else {
        None
    };
    let tcp = TcpStream::connect((bare_host.as_str(), port))
        .await
        .map_err(|e| failed(format!("connecting to {bare_host}:{port}: {e}")))?;
    let status = if let Some(connector) = connector {
        let server = rustls::pki_types::ServerName::try_from(bare_host.clone())
            .map_err(|e| failed(format!("{bare_host:?} as a TLS server name: {e}")))?;
        let tls = connector
            .connect(server, tcp)
            .await
            .map_err(|e| failed(format!("TLS with {bare_host}: {e}")))?;
        post(tls, request).await?
    } else {
        post(tcp, request).await?
    };
    if status.is_success() {
        Ok(())
    } else {
        Err(failed(format!("answered {status}")))
    }
}

fn bytes_of(text: String) -> Bytes {
    Bytes::from(text)
}

/// Sends `request` over `stream` with HTTP/1.1 and returns the status.
async fn post<S>(stream: S, request: Request<Full<Bytes>>) -> Result<StatusCode, DeliveryError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let failed = |why: String| DeliveryError::Failed(format!("SMS gateway: {why}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(format!("HTTP: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let answer = sender.send_request(request).await;
    driver.abort();
    let response = answer.map_err(|e| failed(format!("HTTP: {e}")))?;
    Ok(response.status())
}

/// The e-mail: RFC 5322 headers and a text body, 7bit when it can be, else base64.
pub fn email(from: &str, message: &Message<'_>, now: i64, id: &str) -> String {
    let from_header = if message.from_name.is_empty() {
        format!("<{from}>")
    } else {
        format!("{} <{from}>", encoded_word(message.from_name, true))
    };
    let plain = message.text.is_ascii() && message.text.lines().all(|l| l.len() <= 900);
    let (encoding, body) = if plain {
        ("7bit", message.text.replace('\n', "\r\n"))
    } else {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(message.text);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect();
        ("base64", lines.join("\r\n"))
    };
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!(
        "Date: {}\r\nFrom: {from_header}\r\nTo: <{}>\r\nSubject: {}\r\nMessage-ID: <{id}@{domain}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: {encoding}\r\n\r\n{body}\r\n",
        super::time::rfc5322(now),
        message.to,
        encoded_word(message.subject, false),
    )
}

/// A header text as it is when printable ASCII (quoted when a display name), else an RFC 2047
/// encoded word. Control characters never reach a header.
fn encoded_word(text: &str, display_name: bool) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    if clean.is_ascii() {
        if display_name {
            let escaped = clean.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"")
        } else {
            clean
        }
    } else {
        use base64::Engine as _;
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(clean)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<'a>(text: &'a str, from_name: &'a str) -> Message<'a> {
        Message {
            channel: Channel::Email,
            to: "alice@example.com",
            from_name,
            subject: "Gateway login code",
            text,
        }
    }

    #[test]
    fn email_headers_and_bodies() {
        let mail = email(
            "mfa@example.com",
            &message("Code: 123456\nBye", "IT \"Desk\""),
            0,
            "abc",
        );
        assert!(
            mail.starts_with("Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"),
            "{mail}"
        );
        assert!(
            mail.contains("From: \"IT \\\"Desk\\\"\" <mfa@example.com>\r\n"),
            "{mail}"
        );
        assert!(mail.contains("To: <alice@example.com>\r\n"));
        assert!(mail.contains("Message-ID: <abc@example.com>\r\n"));
        assert!(mail.contains("Content-Transfer-Encoding: 7bit\r\n\r\nCode: 123456\r\nBye\r\n"));

        let mail = email(
            "mfa@example.com",
            &message("Code — 123456", "Sécurité"),
            0,
            "x",
        );
        assert!(mail.contains("Content-Transfer-Encoding: base64"), "{mail}");
        assert!(mail.contains("From: =?UTF-8?B?"), "{mail}");
        use base64::Engine as _;
        let body = mail.split("\r\n\r\n").nth(1).unwrap().trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(decoded, "Code — 123456".as_bytes());

        let mail = email(
            "mfa@example.com",
            &message("x", "a\r\nBcc: evil@example.com"),
            0,
            "x",
        );
        assert!(!mail.contains("\r\nBcc"), "{mail}");
    }

    #[test]
    fn sms_json() {
        let mut m = message("Your code is 1234", "Gateway");
        m.channel = Channel::Sms;
        m.to = "+15551234567";
        let body: serde_json::Value = serde_json::from_str(&sms_body(&m)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"to": "+15551234567", "from": "Gateway", "message": "Your code is 1234"})
        );
    }

    #[tokio::test]
    async fn unconfigured_channels_say_so() {
        let config = MfaDelivery::default();
        let error = deliver(&config, &message("x", "")).await.unwrap_err();
        assert!(matches!(error, DeliveryError::NotConfigured(..)), "{error}");
        assert!(error.to_string().contains("mfa_delivery.smtp"));
    }

    #[tokio::test]
    async fn webhook_statuses() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A one-shot HTTP server on loopback answering `status`.
        async fn server(status: &'static str) -> (String, tokio::task::JoinHandle<String>) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/send?x=1", listener.local_addr().unwrap());
            let task = tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap();
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                socket.write_all(reply.as_bytes()).await.unwrap();
                String::from_utf8(seen).unwrap()
            });
            (url, task)
        }
        let (url, task) = server("202 Accepted").await;
        let config = SmsDelivery {
            url,
            bearer: Some("t0ken".into()),
            ca_file: None,
            timeout: 5,
        };
        let mut m = message("Your code is 1234", "Gateway");
        m.channel = Channel::Sms;
        send_sms(&config, &m).await.unwrap();
        let seen = task.await.unwrap();
        assert!(seen.starts_with("POST /send?x=1 HTTP/1.1\r\n"), "{seen}");
        assert!(
            seen.to_ascii_lowercase()
                .contains("authorization: bearer t0ken\r\n"),
            "{seen}"
        );
        assert!(seen.ends_with(&sms_body(&m)), "{seen}");

        let (url, _task) = server("500 Internal Server Error").await;
        let error = send_sms(
            &SmsDelivery {
                url,
                ..config.clone()
            },
            &m,
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("500"), "{error}");

        // Nobody listening.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        assert!(send_sms(&SmsDelivery { url, ..config }, &m).await.is_err());
    }

    #[tokio::test]
    async fn webhook_over_https_verifies_the_gateway() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("gateway.pem");
        std::fs::write(&ca, certified.cert.pem()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certified.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            // The first connection (no trust in the gateway's certificate) fails its handshake.
            for _ in 0..2 {
                let (socket, _) = listener.accept().await.unwrap();
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    continue;
                };
                let mut buf = vec![0u8; 8192];
                let n = tls.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
                tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
                tls.shutdown().await.unwrap();
            }
            String::from_utf8(seen).unwrap()
        });
        let mut m = message("Your code is 1234", "Gateway");
        m.channel = Channel::Sms;
        let untrusted = SmsDelivery {
            url: format!("https://127.0.0.1:{port}/send"),
            bearer: None,
            ca_file: Some(dir.path().join("missing.pem")),
            timeout: 5,
        };
        assert!(send_sms(&untrusted, &m).await.is_err());
        // With a CA file that does not hold the gateway's certificate: refused by TLS.
        let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let wrong = dir.path().join("other.pem");
        std::fs::write(&wrong, other.cert.pem()).unwrap();
        let error = send_sms(
            &SmsDelivery {
                ca_file: Some(wrong),
                ..untrusted.clone()
            },
            &m,
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("TLS"), "{error}");
        send_sms(
            &SmsDelivery {
                ca_file: Some(ca),
                ..untrusted
            },
            &m,
        )
        .await
        .unwrap();
        let seen = task.await.unwrap();
        assert!(seen.starts_with("POST /send HTTP/1.1\r\n"), "{seen}");
    }
}
