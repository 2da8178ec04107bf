//! The peers MFA code delivery talks to, on loopback: an SMTP relay (aiosmtpd from PyPI, run
//! by `smtp_sink.py`) and an SMS gateway webhook (a plain HTTP/1.1 receiver on a thread). Both
//! hand over what they received, so tests read the delivered codes from them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// How to install the relay's package when it is missing.
pub const AIOSMTPD_INSTALL: &str = "python3 -m pip install --break-system-packages aiosmtpd==1.4.6";
/// How long a test waits for a message to arrive.
const WAIT: Duration = Duration::from_secs(20);

/// A running aiosmtpd relay.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    /// Keeps the relay's stdin open: it stops when this closes.
    _stdin: ChildStdin,
    /// The relay's port on 127.0.0.1.
    pub port: u16,
    messages: Receiver<Value>,
}

impl SmtpSink {
    /// Starts a relay; `args` go to `smtp_sink.py` (`--cert`, `--key`, `--user`,
    /// `--password`).
    pub fn start(args: &[&str]) -> SmtpSink {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (ready_tx, ready_rx) = channel();
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("READY ") {
                    let _ = ready_tx.send(port.trim().parse::<u16>().expect("port"));
                } else if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        let port = match ready_rx.recv_timeout(WAIT) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("the SMTP relay did not start; is aiosmtpd installed? ({AIOSMTPD_INSTALL})");
            }
        };
        SmtpSink {
            child,
            _stdin: stdin,
            port,
            messages,
        }
    }

    /// The next message the relay accepted.
    pub fn next(&self) -> Value {
        self.messages
            .recv_timeout(WAIT)
            .expect("no message reached the SMTP relay")
    }

    /// Whether a message arrives within `wait`.
    pub fn nothing_within(&self, wait: Duration) -> bool {
        self.messages.recv_timeout(wait).is_err()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the SMS gateway received.
#[derive(Debug, Clone)]
pub struct SmsRequest {
    /// Request line and headers.
    pub head: String,
    /// The JSON body.
    pub body: Value,
}

/// An HTTP/1.1 receiver standing in for an SMS gateway: answers every request with `status`
/// (changeable) and keeps the requests.
#[derive(Debug)]
pub struct SmsSink {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Receiver<SmsRequest>,
    status: Arc<Mutex<u16>>,
}

impl SmsSink {
    /// Starts the receiver on a free loopback port; it lives as long as the test process.
    pub fn start() -> SmsSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let status = Arc::new(Mutex::new(200u16));
        let (tx, requests) = channel();
        let answer = Arc::clone(&status);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                let request = loop {
                    let Ok(n) = stream.read(&mut buf) else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .and_then(|v| v.trim().parse().ok())
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break Some(SmsRequest {
                            head: head.to_owned(),
                            body: serde_json::from_str(body).unwrap_or(Value::Null),
                        });
                    }
                };
                let code = *answer.lock().unwrap_or_else(|p| p.into_inner());
                let reply = format!(
                    "HTTP/1.1 {code} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(reply.as_bytes());
                if let Some(request) = request {
                    let _ = tx.send(request);
                }
            }
        });
        SmsSink {
            addr,
            requests,
            status,
        }
    }

    /// The webhook URL.
    pub fn url(&self) -> String {
        format!("http://{}/sms/send", self.addr)
    }

    /// Answers later requests with `status`.
    pub fn answer(&self, status: u16) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }

    /// The next request received.
    pub fn next(&self) -> SmsRequest {
        self.requests
            .recv_timeout(WAIT)
            .expect("no request reached the SMS gateway")
    }

    /// Whether no request arrives within `wait`.
    pub fn nothing_within(&self, wait: Duration) -> bool {
        self.requests.recv_timeout(wait).is_err()
    }
}
