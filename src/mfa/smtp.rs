//! A small SMTP client (RFC 5321) for one message at a time to a configured relay: EHLO,
//! optional STARTTLS (RFC 3207) and AUTH PLAIN (RFC 4954), MAIL, RCPT, DATA with
//! dot-stuffing, QUIT. Replies are read with bounded lines and counts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_config::SmtpDelivery;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::delivery::{DeliveryError, tls_connector};

/// The longest reply line read (RFC 5321 §4.5.3.1.5 allows 512 octets).
const MAX_LINE: u64 = 4096;
/// The most lines one multi-line reply may have.
const MAX_LINES: usize = 100;

/// A reply: its code and the text of every line.
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

/// One SMTP conversation over `S`.
struct Session<S> {
    stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    async fn reply(&mut self) -> Result<Reply, DeliveryError> {
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            (&mut self.stream)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| failed(format!("reading the relay's reply: {e}")))?;
            if line.is_empty() {
                return Err(failed("the relay closed the connection"));
            }
            if !line.ends_with(b"\n") {
                return Err(failed("the relay sent an over-long reply line"));
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            let code = text
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| failed(format!("malformed reply {text:?}")))?;
            let last = text.as_bytes().get(3) != Some(&b'-');
            lines.push(text.get(4..).unwrap_or("").to_owned());
            if last {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err(failed("the relay sent an over-long reply"));
            }
        }
    }

    async fn command(
        &mut self,
        line: &str,
        what: &str,
        ok: &[u16],
    ) -> Result<Reply, DeliveryError> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.expect(what, ok).await
    }

    async fn expect(&mut self, what: &str, ok: &[u16]) -> Result<Reply, DeliveryError> {
        let reply = self.reply().await?;
        if ok.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(failed(format!(
                "the relay refused {what}: {} {}",
                reply.code,
                reply.text()
            )))
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), DeliveryError> {
        let stream = self.stream.get_mut();
        stream
            .write_all(bytes)
            .await
            .map_err(|e| failed(format!("writing to the relay: {e}")))?;
        stream
            .flush()
            .await
            .map_err(|e| failed(format!("writing to the relay: {e}")))
    }

    /// EHLO; the extensions the relay announces, upper-cased.
    async fn ehlo(&mut self, name: &str) -> Result<Vec<String>, DeliveryError> {
        let reply = self
            .command(&format!("EHLO {name}"), "EHLO", &[250])
            .await?;
        Ok(reply
            .lines
            .iter()
            .skip(1)
            .map(|l| l.to_ascii_uppercase())
            .collect())
    }

    /// Everything after the greeting and EHLO (and the TLS upgrade): AUTH, the envelope, the
    /// message, QUIT.
    async fn deliver(
        &mut self,
        config: &SmtpDelivery,
        extensions: &[String],
        to: &str,
        message: &[u8],
    ) -> Result<(), DeliveryError> {
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            if !extensions.iter().any(|e| {
                e.strip_prefix("AUTH")
                    .is_some_and(|m| m.split([' ', '=']).any(|m| m == "PLAIN"))
            }) {
                return Err(failed("the relay does not offer AUTH PLAIN"));
            }
            let token = STANDARD.encode(format!("\0{user}\0{}", password.expose()));
            self.command(&format!("AUTH PLAIN {token}"), "the credentials", &[235])
                .await?;
        }
        self.command(
            &format!("MAIL FROM:<{}>", config.from),
            "the sender",
            &[250],
        )
        .await?;
        self.command(&format!("RCPT TO:<{to}>"), "the recipient", &[250, 251])
            .await?;
        self.command("DATA", "DATA", &[354]).await?;
        self.write(&dot_stuffed(message)).await?;
        self.expect("the message", &[250]).await?;
        // The message is accepted; a failing QUIT changes nothing.
        let _ = self.command("QUIT", "QUIT", &[221]).await;
        Ok(())
    }
}

/// Sends `message` (headers and body, any line endings) to `to` through the relay of
/// `config`. The caller bounds the time.
pub async fn send(config: &SmtpDelivery, to: &str, message: &[u8]) -> Result<(), DeliveryError> {
    let tcp = TcpStream::connect((config.host.as_str(), config.port))
        .await
        .map_err(|e| {
            failed(format!(
                "connecting to {}:{}: {e}",
                config.host, config.port
            ))
        })?;
    let name = match tcp.local_addr() {
        Ok(std::net::SocketAddr::V4(a)) => format!("[{}]", a.ip()),
        Ok(std::net::SocketAddr::V6(a)) => format!("[IPv6:{}]", a.ip()),
        Err(_) => "localhost".to_owned(),
    };
    let mut plain = Session {
        stream: BufReader::new(tcp),
    };
    plain.expect("the connection", &[220]).await?;
    let extensions = plain.ehlo(&name).await?;
    if !config.starttls {
        return plain.deliver(config, &extensions, to, message).await;
    }
    if !extensions.iter().any(|e| e == "STARTTLS") {
        return Err(failed("the relay does not offer STARTTLS"));
    }
    plain.command("STARTTLS", "STARTTLS", &[220]).await?;
    // Anything the relay sent after its 220 came before TLS: a command injection attempt
    // (CVE-2011-0411 and kin), never to be read as if it were protected.
    if !plain.stream.buffer().is_empty() {
        return Err(failed("the relay sent data before the TLS handshake"));
    }
    let tcp = plain.stream.into_inner();
    let connector = tls_connector(config.ca_file.as_deref())?;
    let server = rustls::pki_types::ServerName::try_from(config.host.clone())
        .map_err(|e| failed(format!("{:?} as a TLS server name: {e}", config.host)))?;
    let tls = connector
        .connect(server, tcp)
        .await
        .map_err(|e| failed(format!("TLS with {}: {e}", config.host)))?;
    let mut secure = Session {
        stream: BufReader::new(tls),
    };
    let extensions = secure.ehlo(&name).await?;
    secure.deliver(config, &extensions, to, message).await
}

/// The message as DATA carries it: CRLF line endings, a leading `.` doubled (RFC 5321
/// §4.5.2), ended by `.` alone on a line.
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    let mut out = Vec::with_capacity(message.len() + 16);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // `split` yields an empty last piece for a message ending in a newline: drop its CRLF.
    if text.ends_with('\n') {
        out.truncate(out.len() - 2);
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn failed(why: impl Into<String>) -> DeliveryError {
    DeliveryError::Failed(why.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuffed(b"a\n.b\nc\n"), b"a\r\n..b\r\nc\r\n.\r\n");
        assert_eq!(dot_stuffed(b"a\r\n."), b"a\r\n..\r\n.\r\n");
        assert_eq!(dot_stuffed(b""), b"\r\n.\r\n");
    }

    /// A scripted relay on loopback: answers each command with the next canned reply and
    /// records what it was sent.
    async fn relay(script: Vec<&'static str>) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut socket = BufReader::new(socket);
            let mut seen = String::new();
            let mut script = script.into_iter();
            let greeting = script.next().unwrap();
            socket
                .get_mut()
                .write_all(greeting.as_bytes())
                .await
                .unwrap();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if socket.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                seen.push_str(&line);
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                    } else {
                        continue;
                    }
                } else if line.starts_with("DATA") {
                    in_data = true;
                }
                let Some(reply) = script.next() else { break };
                socket.get_mut().write_all(reply.as_bytes()).await.unwrap();
            }
            seen
        });
        (port, task)
    }

    fn config(port: u16) -> SmtpDelivery {
        SmtpDelivery {
            host: "127.0.0.1".into(),
            port,
            from: "mfa@example.com".into(),
            starttls: false,
            ca_file: None,
            username: None,
            password: None,
            timeout: 5,
        }
    }

    #[tokio::test]
    async fn a_whole_conversation() {
        let (port, task) = relay(vec![
            "220 relay ready\r\n",
            "250-relay\r\n250-8BITMIME\r\n250 SIZE 1000\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 queued\r\n",
            "221 bye\r\n",
        ])
        .await;
        send(
            &config(port),
            "alice@example.com",
            b"Subject: x\n\n.hidden\nend\n",
        )
        .await
        .unwrap();
        let seen = task.await.unwrap();
        assert!(seen.starts_with("EHLO [127.0.0.1]\r\n"), "{seen}");
        assert!(seen.contains("MAIL FROM:<mfa@example.com>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: x\r\n\r\n..hidden\r\nend\r\n.\r\nQUIT\r\n"), "{seen}");
    }

    #[tokio::test]
    async fn refusals_are_reported() {
        let (port, _task) = relay(vec![
            "220 relay ready\r\n",
            "250 relay\r\n",
            "250 ok\r\n",
            "550 5.1.1 no such user\r\n",
        ])
        .await;
        let error = send(&config(port), "nobody@example.com", b"x")
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("recipient") && text.contains("550"), "{text}");

        let (port, _task) = relay(vec!["554 go away\r\n"]).await;
        assert!(send(&config(port), "a@b", b"x").await.is_err());

        // STARTTLS required but not offered: nothing is sent in clear.
        let (port, task) = relay(vec!["220 hi\r\n", "250 relay\r\n"]).await;
        let mut tls = config(port);
        tls.starttls = true;
        let error = send(&tls, "a@b", b"x").await.unwrap_err();
        assert!(error.to_string().contains("STARTTLS"), "{error}");
        drop(task);
    }
}
