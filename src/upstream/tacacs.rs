//! TACACS+ client: password logins against one upstream server over TCP (RFC 8907) or TLS 1.3
//! (RFC 9887).
//!
//! A login is two TACACS+ sessions. Every session offers Single Connection Mode (RFC 8907
//! §4.3): a connection the server agrees to keep carries later sessions, one at a time (a
//! bounded pool of idle connections per server); otherwise each session opens its own and
//! closes it when it ends.
//!
//! 1. Authentication (RFC 8907 §5.4.2). [`Protocol::Pap`]: one START with minor version 1,
//!    authen_type PAP and the password as data, answered by PASS or FAIL (§5.4.2.2).
//!    [`Protocol::Ascii`]: a START with minor version 0, authen_type ASCII, the user name
//!    and no data, then a CONTINUE with the user name for every GETUSER and with the password
//!    for every GETPASS, until PASS or FAIL, at most [`MAX_ASCII_ROUNDS`] replies (§5.4.2.1).
//!    A prompt after the password (a token code, a new password) is the user's to answer:
//!    the session is held open ([`Answer::Challenge`]) and the answer goes on as a CONTINUE.
//! 2. After PASS, authorization (RFC 8907 §6): one REQUEST for the same user with
//!    `service=<auth_service>`, whose RESPONSE carries the AV pairs that role mapping reads.
//!    PASS_ADD yields the request's pair followed by the returned ones, PASS_REPL the returned
//!    ones alone (§6.2); FAIL turns the login into a reject.
//!
//! What counts as what, per DESIGN.md "Authentication semantics":
//! - authentication FAIL and authorization FAIL are an [`Answer::Reject`], final for the method;
//! - ERROR, FOLLOW (deprecated; redirection is never followed), RESTART, an unknown status, a
//!   reply that is not the answer to our packet ([`Header::check_reply`]: session_id, seq_no,
//!   type), that does not parse, is cleartext over TCP or obfuscated over TLS (the UNENCRYPTED
//!   flag, RFC 8907 §4.5, RFC 9887 §4), announces a body over [`MAX_REPLY_BODY_LEN`], or does
//!   not arrive: a connection refused, reset or closed, a failed TLS handshake, or no complete
//!   reply within the timeout. All of these are a [`ClientError`]: the server is unavailable
//!   and the next one is tried. None of them is ever an accept.
//!
//! Over TCP bodies are obfuscated with the shared key (RFC 8907 §4.5); over TLS they are not
//! and the UNENCRYPTED flag is set (RFC 9887 §4). The session_id comes from the operating
//! system's random number generator (§4.1). Connecting (with the TLS handshake), every write
//! and every reply (header and body together) are each bounded by the configured timeout. The
//! password and the key never reach a log line.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_protocol::tacacs::{
    self, Arg, Args, AuthenMethod, AuthenService, AuthenType, Body, Cleartext, EmitError, Flags,
    HEADER_LEN, Header, Packet, PacketType, SessionError, Version, authen, author,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tls::TlsClient;

/// The largest reply body accepted: 2^16 octets, RFC 8907 §4.1's recommendation. A header
/// announcing more is refused before any of the body is read.
pub const MAX_REPLY_BODY_LEN: u32 = tacacs::DEFAULT_MAX_BODY_LEN;

/// The most authentication REPLYs an ASCII login reads before giving up on the server.
pub const MAX_ASCII_ROUNDS: usize = 10;

/// The privilege level of every request: a user login (RFC 8907 §9, TAC_PLUS_PRIV_LVL_USER).
const PRIV_LVL: u8 = 1;

/// The shared key that obfuscates packet bodies (RFC 8907 §4.5). `Debug` prints `Key(****)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Box<[u8]>);

impl Key {
    /// Wraps the key octets.
    pub fn new(key: impl Into<Box<[u8]>>) -> Self {
        Key(key.into())
    }

    fn octets(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(****)")
    }
}

/// How the password is presented to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// One START carrying the password (RFC 8907 §5.4.2.2).
    Pap,
    /// The GETUSER / GETPASS dialogue of an ASCII login (RFC 8907 §5.4.2.1).
    Ascii,
}

impl Protocol {
    /// authen_type of the START and of the authorization REQUEST (RFC 8907 §5.1, §6.1).
    fn authen_type(self) -> AuthenType {
        match self {
            Protocol::Pap => AuthenType::Pap,
            Protocol::Ascii => AuthenType::Ascii,
        }
    }

    /// The START's version: minor version 1 for PAP, the default (0) for ASCII
    /// (RFC 8907 §5.4.1).
    fn version(self) -> Version {
        match self {
            Protocol::Pap => Version::ONE,
            Protocol::Ascii => Version::DEFAULT,
        }
    }
}

/// One upstream TACACS+ server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The shared key.
    pub key: Key,
    /// PAP or ASCII.
    pub protocol: Protocol,
    /// The `port` field of every packet: the name of the client port the user is on, which
    /// servers use in their policies (RFC 8907 §5.1).
    pub client_port: String,
    /// Bound on connecting, on each write and on each reply.
    pub timeout: Duration,
    /// TACACS+ over TLS 1.3 (RFC 9887) with this client configuration; `None`: TCP.
    pub tls: Option<TlsClient>,
}

impl ServerSpec {
    /// The flags of every session's first packet. RFC 8907 §4.3: Single Connection Mode
    /// offered (only the first exchange on a connection decides it). §4.5: never
    /// TAC_PLUS_UNENCRYPTED_FLAG over TCP; RFC 9887 §4: always over TLS.
    fn flags(&self) -> Flags {
        if self.tls.is_some() {
            Flags::from_bits(Flags::SINGLE_CONNECT.bits() | Flags::UNENCRYPTED.bits())
        } else {
            Flags::SINGLE_CONNECT
        }
    }

    /// What replies must be: obfuscated over TCP, cleartext over TLS.
    fn cleartext(&self) -> Cleartext {
        if self.tls.is_some() {
            Cleartext::Required
        } else {
            Cleartext::Refuse
        }
    }
}

/// What the server decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Authentication PASS and authorization PASS_ADD or PASS_REPL.
    Accept {
        /// The authorization's AV pairs as `(name, value)`, mandatory and optional alike,
        /// lossily decoded as UTF-8.
        av_pairs: Vec<(String, String)>,
        /// The authentication PASS's server_msg, else the authorization's; `None` if both
        /// are empty.
        server_msg: Option<String>,
    },
    /// Authentication FAIL or authorization FAIL.
    Reject {
        /// Which of the two refused.
        reason: RejectReason,
        /// The server's server_msg, if not empty.
        server_msg: Option<String>,
    },
    /// After the password, the server asks for more (GETDATA, GETPASS or GETUSER: a token
    /// code, a new password): the session is held open for the user's answer
    /// ([`TacacsClient::continue_login`]).
    Challenge {
        /// The server's prompt (its server_msg), if not empty.
        prompt: Option<String>,
        /// Whether the answer may be shown as it is typed (the NOECHO flag is clear).
        echo: bool,
        /// The session, held.
        held: HeldSession,
    },
}

/// Authentication sessions held open for a user's answer, at most.
pub const MAX_HELD: usize = 256;

/// Sessions held now, process-wide.
static HELD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// An authentication session a server continued with a prompt after the password, held open
/// until the user answers; one of [`MAX_HELD`]. Dropping it closes the connection.
pub struct Held {
    /// The session's connection (`None` once it is handed back).
    conn: Option<Connection>,
    /// The header of the last packet sent.
    header: Header,
    user: String,
    rem_addr: String,
    auth_service: String,
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("server", &self.conn.as_ref().map(|c| c.spec.addr))
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A held session, shared by the clones of the challenge that carries it; the first answer
/// takes it.
#[derive(Clone)]
pub struct HeldSession(Arc<std::sync::Mutex<Option<Held>>>);

impl HeldSession {
    /// The session, unless it was taken already.
    pub fn take(&self) -> Option<Held> {
        crate::sync::lock(&self.0).take()
    }
}

impl PartialEq for HeldSession {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for HeldSession {}

impl fmt::Debug for HeldSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeldSession")
    }
}

/// Which step refused the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Authentication REPLY with status FAIL: wrong user or password.
    AuthenticationFailed,
    /// Authorization RESPONSE with status FAIL.
    AuthorizationRefused,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::AuthenticationFailed => "authentication failed",
            RejectReason::AuthorizationRefused => "authorization refused",
        })
    }
}

/// The session an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The authentication session (RFC 8907 §5).
    Authentication,
    /// The authorization session (RFC 8907 §6).
    Authorization,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Authentication => "authentication",
            Stage::Authorization => "authorization",
        })
    }
}

/// Why the server gave no usable answer: it counts as unavailable.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be opened (refused, unreachable).
    #[error("connect: {0}")]
    Connect(io::Error),
    /// The TLS handshake failed: the server's certificate is not trusted or not for its
    /// name, it does not speak TLS 1.3, or it refused our certificate.
    #[error("TLS handshake: {0}")]
    Handshake(io::Error),
    /// Connecting, a write or a reply took longer than the timeout.
    #[error("{stage}: no complete {step} within {timeout:?}")]
    Timeout {
        /// The session.
        stage: Stage,
        /// What was waited for: "connection", "write" or "reply".
        step: &'static str,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The server reset or closed the connection before its reply was complete.
    #[error("{stage}: connection lost: {source}")]
    ConnectionLost {
        /// The session.
        stage: Stage,
        /// The error reading or writing.
        source: io::Error,
    },
    /// A reply that does not parse: bad version, over-long or inconsistent lengths, cleartext,
    /// or obfuscated with another key (RFC 8907 §4.1, §4.5).
    #[error("{stage}: malformed reply: {source}")]
    Malformed {
        /// The session.
        stage: Stage,
        /// What is wrong with it.
        source: tacacs::Error,
    },
    /// A reply that does not answer our packet: wrong session_id, seq_no or type
    /// (RFC 8907 §4.1).
    #[error("{stage}: reply out of session: {source}")]
    Session {
        /// The session.
        stage: Stage,
        /// Which check failed.
        source: SessionError,
    },
    /// The server answered ERROR, FOLLOW or RESTART, or an authorization ERROR or FOLLOW.
    #[error("{stage}: server answered {status}{}", display_msg(.server_msg))]
    ServerStatus {
        /// The session.
        stage: Stage,
        /// The status, as RFC 8907 names it.
        status: &'static str,
        /// The server's server_msg, if not empty.
        server_msg: Option<String>,
    },
    /// A status RFC 8907 does not define, or one that does not fit the exchange (GETUSER in
    /// answer to PAP, GETDATA to a password login).
    #[error("{stage}: unexpected status {status:#04x}")]
    UnexpectedStatus {
        /// The session.
        stage: Stage,
        /// The status octet.
        status: u8,
    },
    /// The ASCII dialogue went on for more than [`MAX_ASCII_ROUNDS`] replies.
    #[error("ASCII login still prompting after {MAX_ASCII_ROUNDS} replies")]
    TooManyRounds,
    /// The server prompted after the password while [`MAX_HELD`] sessions were already held
    /// for answers: this one was aborted. The server is not at fault.
    #[error("too many TACACS+ sessions waiting for the user's answer")]
    TooManyHeld,
    /// The request cannot be encoded: user, port, rem_addr, PAP password or an argument over
    /// 255 octets (RFC 8907 §5.1, §6.1).
    #[error("request not representable: {0}")]
    Encode(EmitError),
    /// The operating system's random number generator failed.
    #[error("random number generator: {0}")]
    Rng(getrandom::Error),
}

fn display_msg(server_msg: &Option<String>) -> String {
    server_msg
        .as_deref()
        .map(|m| format!(" ({m:?})"))
        .unwrap_or_default()
}

impl ClientError {
    /// Whether the server was silent (connect, write or reply timed out), as opposed to
    /// refusing, dropping or garbling the exchange.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout { .. })
    }
}

/// A client for one upstream TACACS+ server.
pub struct TacacsClient {
    spec: Arc<ServerSpec>,
    /// Connections the server agreed to keep (single-connect), idle, newest last.
    idle: std::sync::Mutex<Vec<(Connection, tokio::time::Instant)>>,
}

impl fmt::Debug for TacacsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TacacsClient")
            .field("server", &self.spec.addr)
            .field("idle", &crate::sync::lock(&self.idle).len())
            .finish()
    }
}

/// Idle single-connect connections kept per server, at most.
pub const MAX_IDLE: usize = 16;
/// How long an idle single-connect connection is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

impl TacacsClient {
    /// A client for `spec`. Every session offers Single Connection Mode (RFC 8907 §4.3): a
    /// connection the server agrees to keep carries later sessions too (at most
    /// [`MAX_IDLE`] kept idle, each for [`IDLE_TIMEOUT`]); otherwise each session opens its
    /// own.
    pub fn new(spec: ServerSpec) -> Self {
        TacacsClient {
            spec: Arc::new(spec),
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// An idle kept connection (marked for `stage`), else a new one.
    async fn connect(&self, stage: Stage) -> Result<Connection, ClientError> {
        let now = tokio::time::Instant::now();
        let kept = {
            let mut idle = crate::sync::lock(&self.idle);
            idle.retain(|(_, since)| now.saturating_duration_since(*since) < IDLE_TIMEOUT);
            idle.pop()
        };
        match kept {
            Some((mut conn, _)) => {
                conn.stage = stage;
                conn.reused = true;
                Ok(conn)
            }
            None => Connection::open(Arc::clone(&self.spec), stage).await,
        }
    }

    /// Keeps `conn` for later sessions if the server agreed to single-connect.
    fn release(&self, conn: Connection) {
        if !conn.single {
            return;
        }
        let mut idle = crate::sync::lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push((conn, tokio::time::Instant::now()));
        }
    }

    /// Opens a new connection in place of a kept one the server closed: the session that
    /// found it closed runs once more, so a kept connection never costs a login.
    async fn replace_closed<T>(
        &self,
        conn: &mut Connection,
        result: &Result<T, ClientError>,
    ) -> Result<bool, ClientError> {
        if !(conn.reused && matches!(result, Err(ClientError::ConnectionLost { .. }))) {
            return Ok(false);
        }
        tracing::debug!(server = %self.spec.addr, "kept TACACS+ connection was closed; reconnecting");
        *conn = Connection::open(Arc::clone(&self.spec), conn.stage).await?;
        Ok(true)
    }

    /// The server this client talks to.
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    /// Authenticates `user` with `password`, then fetches the AV pairs of
    /// `service=<auth_service>`. `rem_addr` is where the user connects from (RFC 8907 §5.1).
    pub async fn authenticate(
        &self,
        user: &str,
        password: &[u8],
        rem_addr: &str,
        auth_service: &str,
    ) -> Result<Answer, ClientError> {
        let result = self.login(user, password, rem_addr, auth_service).await;
        self.log(user, &result);
        result
    }

    /// Sends `response`, the user's answer to the prompt of `held`, in its session, and goes
    /// on as the login would: PASS (then authorization), FAIL, or another prompt.
    pub async fn continue_login(&self, held: Held, response: &[u8]) -> Result<Answer, ClientError> {
        let user = held.user.clone();
        let result = self.resume(held, response).await;
        self.log(&user, &result);
        result
    }

    async fn resume(&self, mut held: Held, response: &[u8]) -> Result<Answer, ClientError> {
        let header = following(&held.header, Stage::Authentication)?;
        let cont = authen::Continue {
            flags: authen::ContinueFlags::empty(),
            user_msg: response,
            data: b"",
        };
        let Some(conn) = held.conn.as_mut() else {
            return Err(unexpected(Stage::Authentication, authen::Status::GetData));
        };
        conn.write(&encode(&header, &cont, &self.spec.key)?).await?;
        held.header = header;
        let ending = self.converse(conn, held.header, &held.user, None).await?;
        let (user, rem_addr, auth_service) = (
            std::mem::take(&mut held.user),
            std::mem::take(&mut held.rem_addr),
            std::mem::take(&mut held.auth_service),
        );
        match ending {
            Ending::Prompt {
                header,
                server_msg,
                echo,
            } => {
                held.header = header;
                held.user = user;
                held.rem_addr = rem_addr;
                held.auth_service = auth_service;
                Ok(Answer::Challenge {
                    prompt: server_msg,
                    echo,
                    held: HeldSession(Arc::new(std::sync::Mutex::new(Some(held)))),
                })
            }
            ending => {
                // The session is over: the connection may serve others.
                if let Some(conn) = held.conn.take() {
                    self.release(conn);
                }
                self.after_authentication(ending, None, &user, &rem_addr, &auth_service)
                    .await
            }
        }
    }

    fn log(&self, user: &str, result: &Result<Answer, ClientError>) {
        match result {
            Ok(Answer::Accept { av_pairs, .. }) => tracing::debug!(
                server = %self.spec.addr, user, av_pairs = av_pairs.len(), "TACACS+ accept"
            ),
            Ok(Answer::Reject { reason, .. }) => tracing::debug!(
                server = %self.spec.addr, user, %reason, "TACACS+ reject"
            ),
            Ok(Answer::Challenge { .. }) => tracing::debug!(
                server = %self.spec.addr, user, "TACACS+ prompt after the password"
            ),
            Err(e) => tracing::debug!(
                server = %self.spec.addr, user, error = %e, "TACACS+ server unavailable"
            ),
        }
    }

    async fn login(
        &self,
        user: &str,
        password: &[u8],
        rem_addr: &str,
        auth_service: &str,
    ) -> Result<Answer, ClientError> {
        let (ending, conn) = self.authentication(user, password, rem_addr).await?;
        self.after_authentication(ending, conn, user, rem_addr, auth_service)
            .await
    }

    /// What follows an authentication session: a reject, the held session of a prompt (with
    /// its connection `conn`), or the authorization of an accepted user.
    async fn after_authentication(
        &self,
        ending: Ending,
        conn: Option<Connection>,
        user: &str,
        rem_addr: &str,
        auth_service: &str,
    ) -> Result<Answer, ClientError> {
        let authen_msg = match ending {
            Ending::Pass(msg) => msg,
            Ending::Fail(msg) => {
                return Ok(Answer::Reject {
                    reason: RejectReason::AuthenticationFailed,
                    server_msg: msg,
                });
            }
            Ending::Prompt {
                header,
                server_msg,
                echo,
            } => {
                let Some(conn) = conn else {
                    return Err(unexpected(Stage::Authentication, authen::Status::GetData));
                };
                // Bounded: past MAX_HELD, the server is answered with an ABORT.
                if HELD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= MAX_HELD {
                    HELD.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    let mut conn = conn;
                    let next = following(&header, Stage::Authentication)?;
                    conn.abort(&next, b"too many sessions waiting").await;
                    return Err(ClientError::TooManyHeld);
                }
                let held = Held {
                    conn: Some(conn),
                    header,
                    user: user.to_string(),
                    rem_addr: rem_addr.to_string(),
                    auth_service: auth_service.to_string(),
                };
                return Ok(Answer::Challenge {
                    prompt: server_msg,
                    echo,
                    held: HeldSession(Arc::new(std::sync::Mutex::new(Some(held)))),
                });
            }
        };
        let (status, av_pairs, author_msg) =
            self.authorization(user, rem_addr, auth_service).await?;
        match status {
            author::Status::PassAdd | author::Status::PassRepl => Ok(Answer::Accept {
                av_pairs,
                server_msg: authen_msg.or(author_msg),
            }),
            author::Status::Fail => Ok(Answer::Reject {
                reason: RejectReason::AuthorizationRefused,
                server_msg: author_msg,
            }),
            author::Status::Error => Err(ClientError::ServerStatus {
                stage: Stage::Authorization,
                status: "ERROR",
                server_msg: author_msg,
            }),
            author::Status::Follow => Err(ClientError::ServerStatus {
                stage: Stage::Authorization,
                status: "FOLLOW",
                server_msg: author_msg,
            }),
            author::Status::Unknown(status) => Err(ClientError::UnexpectedStatus {
                stage: Stage::Authorization,
                status,
            }),
        }
    }

    /// The authentication session: START, then CONTINUEs while the server prompts.
    async fn authentication(
        &self,
        user: &str,
        password: &[u8],
        rem_addr: &str,
    ) -> Result<(Ending, Option<Connection>), ClientError> {
        let stage = Stage::Authentication;
        let protocol = self.spec.protocol;
        let header = Header::request(
            PacketType::Authentication,
            protocol.version(),
            self.spec.flags(),
            session_id()?,
        );
        let start = authen::Start {
            action: authen::Action::Login,
            priv_lvl: PRIV_LVL,
            authen_type: protocol.authen_type(),
            authen_service: AuthenService::Login,
            // RFC 8907 §5.4.2.1: the user MAY be in an ASCII START; the server asks with
            // GETUSER otherwise, or if it wants to.
            user: user.as_bytes(),
            port: self.spec.client_port.as_bytes(),
            rem_addr: rem_addr.as_bytes(),
            data: match protocol {
                // RFC 8907 §5.4.2.2: PAP carries the password in data.
                Protocol::Pap => password,
                // RFC 8907 §5.4.2.1: an ASCII START has no data.
                Protocol::Ascii => b"",
            },
        };
        // Encoded before connecting: an unrepresentable request never reaches the server.
        let start = encode(&header, &start, &self.spec.key)?;
        tracing::debug!(server = %self.spec.addr, user, ?protocol, "TACACS+ authentication START");
        let mut conn = self.connect(stage).await?;
        let mut ending = self.begin(&mut conn, &start, header, user, password).await;
        if self.replace_closed(&mut conn, &ending).await? {
            ending = self.begin(&mut conn, &start, header, user, password).await;
        }
        let ending = ending?;
        if matches!(ending, Ending::Prompt { .. }) {
            return Ok((ending, Some(conn)));
        }
        self.release(conn);
        Ok((ending, None))
    }

    /// Sends the START on `conn` and reads the session to its end or to a prompt for the
    /// user.
    async fn begin(
        &self,
        conn: &mut Connection,
        start: &[u8],
        header: Header,
        user: &str,
        password: &[u8],
    ) -> Result<Ending, ClientError> {
        conn.write(start).await?;
        self.converse(conn, header, user, Some(password)).await
    }

    /// Reads the server's replies in an authentication session whose last packet sent had
    /// `header`, answering its prompts: GETUSER with `user`, GETPASS with `password` while it
    /// is not sent yet (`None` once it is). A prompt after the password ends the exchange
    /// for now ([`Ending::Prompt`]): it is the user's to answer.
    async fn converse(
        &self,
        conn: &mut Connection,
        mut header: Header,
        user: &str,
        mut password: Option<&[u8]>,
    ) -> Result<Ending, ClientError> {
        let stage = Stage::Authentication;
        let protocol = self.spec.protocol;
        for _ in 0..MAX_ASCII_ROUNDS {
            let packet = conn.receive(&header).await?;
            let reply = authen::Reply::parse(packet.body())
                .map_err(|source| ClientError::Malformed { stage, source })?;
            let server_msg = text(reply.server_msg);
            let answer: &[u8] = match (reply.status, protocol, password) {
                (authen::Status::Pass, ..) => return Ok(Ending::Pass(server_msg)),
                (authen::Status::Fail, ..) => return Ok(Ending::Fail(server_msg)),
                (authen::Status::Error, ..) => {
                    return Err(server_status(stage, "ERROR", server_msg));
                }
                // RFC 8907 §5.2: FOLLOW (deprecated) names other servers; they are not
                // contacted, the configured order alone decides.
                (authen::Status::Follow, ..) => {
                    return Err(server_status(stage, "FOLLOW", server_msg));
                }
                // RFC 8907 §5.2: RESTART asks for another authen_type; only the configured
                // one is used.
                (authen::Status::Restart, ..) => {
                    return Err(server_status(stage, "RESTART", server_msg));
                }
                // RFC 8907 §5.4.2.1: GETUSER and GETPASS are answered with a CONTINUE.
                (authen::Status::GetUser, Protocol::Ascii, Some(_)) => user.as_bytes(),
                (authen::Status::GetPass, Protocol::Ascii, Some(secret)) => {
                    password = None;
                    secret
                }
                // RFC 8907 §5.4.2.1: after the password, any prompt (a token code, a new
                // password) is the user's to answer: the session is held.
                (
                    authen::Status::GetData | authen::Status::GetPass | authen::Status::GetUser,
                    Protocol::Ascii,
                    None,
                ) => {
                    return Ok(Ending::Prompt {
                        header,
                        server_msg,
                        echo: !reply.flags.contains(authen::ReplyFlags::NO_ECHO),
                    });
                }
                (authen::Status::GetData, Protocol::Ascii, Some(_)) => {
                    // RFC 8907 §5.4.3: the client ends the session with the ABORT flag.
                    let next = following(&header, stage)?;
                    conn.abort(&next, b"GETDATA not supported").await;
                    return Err(unexpected(stage, reply.status));
                }
                // RFC 8907 §5.4.2.2: PAP is a single START/REPLY exchange.
                (status, ..) => return Err(unexpected(stage, status)),
            };
            tracing::debug!(
                server = %self.spec.addr,
                user,
                prompt = ?reply.status,
                "TACACS+ authentication CONTINUE"
            );
            header = following(&header, stage)?;
            let cont = authen::Continue {
                flags: authen::ContinueFlags::empty(),
                user_msg: answer,
                data: b"",
            };
            conn.write(&encode(&header, &cont, &self.spec.key)?).await?;
        }
        Err(ClientError::TooManyRounds)
    }

    /// The authorization session: one REQUEST, one RESPONSE (RFC 8907 §6). Returns the status,
    /// the AV pairs that hold with it, and the server_msg.
    async fn authorization(
        &self,
        user: &str,
        rem_addr: &str,
        auth_service: &str,
    ) -> Result<(author::Status, Vec<(String, String)>, Option<String>), ClientError> {
        let stage = Stage::Authorization;
        let header = Header::request(
            PacketType::Authorization,
            Version::DEFAULT,
            self.spec.flags(),
            session_id()?,
        );
        let requested = [Arg::mandatory(b"service", auth_service.as_bytes())];
        let request = author::Request {
            authen_method: AuthenMethod::TacacsPlus,
            priv_lvl: PRIV_LVL,
            authen_type: self.spec.protocol.authen_type(),
            authen_service: AuthenService::Login,
            user: user.as_bytes(),
            port: self.spec.client_port.as_bytes(),
            rem_addr: rem_addr.as_bytes(),
            args: Args::new(&requested),
        };
        let request = encode(&header, &request, &self.spec.key)?;
        tracing::debug!(server = %self.spec.addr, user, auth_service, "TACACS+ authorization REQUEST");
        let mut conn = self.connect(stage).await?;
        let mut packet = conn.exchange(&request, &header).await;
        if self.replace_closed(&mut conn, &packet).await? {
            packet = conn.exchange(&request, &header).await;
        }
        let packet = packet?;
        self.release(conn);
        let response = author::Response::parse(packet.body())
            .map_err(|source| ClientError::Malformed { stage, source })?;
        let returned = response.args.iter().map(pair);
        let av_pairs = match response.status {
            // RFC 8907 §6.2: PASS_ADD authorizes the request's arguments and adds the
            // response's.
            author::Status::PassAdd => requested
                .iter()
                .copied()
                .map(pair)
                .chain(returned)
                .collect(),
            // RFC 8907 §6.2: PASS_REPL's arguments are used instead of the request's.
            author::Status::PassRepl => returned.collect(),
            _ => Vec::new(),
        };
        Ok((response.status, av_pairs, text(response.server_msg)))
    }
}

/// How an authentication session ended, short of an error.
enum Ending {
    /// PASS, with its server_msg.
    Pass(Option<String>),
    /// FAIL, with its server_msg.
    Fail(Option<String>),
    /// A prompt after the password, for the user to answer.
    Prompt {
        /// The header of the last packet sent.
        header: Header,
        /// The prompt.
        server_msg: Option<String>,
        /// Whether the answer may be echoed.
        echo: bool,
    },
}

/// One TCP connection carrying one session.
struct Connection {
    stream: Box<dyn Stream>,
    spec: Arc<ServerSpec>,
    stage: Stage,
    /// Replies read on this connection so far.
    replies: u64,
    /// The server agreed to Single Connection Mode in its first reply (RFC 8907 §4.3).
    single: bool,
    /// Taken from the idle connections rather than opened for this session.
    reused: bool,
}

/// A connection's byte stream: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Connection {
    async fn open(spec: Arc<ServerSpec>, stage: Stage) -> Result<Connection, ClientError> {
        let stream = tokio::time::timeout(spec.timeout, TcpStream::connect(spec.addr))
            .await
            .map_err(|_elapsed| ClientError::Timeout {
                stage,
                step: "connection",
                timeout: spec.timeout,
            })?
            .map_err(ClientError::Connect)?;
        // Small request/reply packets: do not wait to coalesce them.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::trace!(error = %e, "TCP_NODELAY not set");
        }
        let stream: Box<dyn Stream> = match &spec.tls {
            None => Box::new(stream),
            Some(tls) => {
                let handshake = tls.connector.connect(tls.server_name.clone(), stream);
                let stream = tokio::time::timeout(spec.timeout, handshake)
                    .await
                    .map_err(|_elapsed| ClientError::Timeout {
                        stage,
                        step: "TLS handshake",
                        timeout: spec.timeout,
                    })?
                    .map_err(ClientError::Handshake)?;
                Box::new(stream)
            }
        };
        Ok(Connection {
            stream,
            spec,
            stage,
            replies: 0,
            single: false,
            reused: false,
        })
    }

    fn timeout(&self, step: &'static str) -> ClientError {
        ClientError::Timeout {
            stage: self.stage,
            step,
            timeout: self.spec.timeout,
        }
    }

    fn lost(&self, source: io::Error) -> ClientError {
        ClientError::ConnectionLost {
            stage: self.stage,
            source,
        }
    }

    /// Writes one packet.
    async fn write(&mut self, packet: &[u8]) -> Result<(), ClientError> {
        tokio::time::timeout(self.spec.timeout, self.stream.write_all(packet))
            .await
            .map_err(|_elapsed| self.timeout("write"))?
            .map_err(|e| self.lost(e))
    }

    /// Writes `packet` (sent with `header`) and reads its reply.
    async fn exchange(
        &mut self,
        packet: &[u8],
        header: &Header,
    ) -> Result<Packet<Vec<u8>>, ClientError> {
        self.write(packet).await?;
        self.receive(header).await
    }

    /// Reads the reply to the packet sent with `sent`, checks it belongs to the session and
    /// deobfuscates it. The whole reply must arrive within the timeout.
    async fn receive(&mut self, sent: &Header) -> Result<Packet<Vec<u8>>, ClientError> {
        let (stage, timeout) = (self.stage, self.spec.timeout);
        let read = async {
            let mut head = [0u8; HEADER_LEN];
            self.stream
                .read_exact(&mut head)
                .await
                .map_err(|e| self.lost(e))?;
            // RFC 8907 §4.1: version, and a length under the maximum, before reading the body.
            let header = Header::parse_with_max(&head, MAX_REPLY_BODY_LEN)
                .map_err(|source| ClientError::Malformed { stage, source })?;
            // RFC 8907 §4.1: same session_id and type, seq_no one above ours.
            sent.check_reply(&header)
                .map_err(|source| ClientError::Session { stage, source })?;
            // RFC 8907 §4.3: the server's first reply on a connection says whether it keeps
            // the connection for more sessions.
            if self.replies == 0 {
                self.single = header.flags.contains(Flags::SINGLE_CONNECT);
            }
            self.replies += 1;
            // At most MAX_REPLY_BODY_LEN (64 KiB), checked above.
            let body_len = usize::try_from(header.length).map_err(|_| ClientError::Malformed {
                stage,
                source: tacacs::Error::BodyTooLong {
                    length: header.length,
                    max: MAX_REPLY_BODY_LEN,
                },
            })?;
            let mut buf = vec![0u8; HEADER_LEN + body_len];
            let (buf_head, buf_body) = buf.split_at_mut(HEADER_LEN);
            buf_head.copy_from_slice(&head);
            self.stream
                .read_exact(buf_body)
                .await
                .map_err(|e| self.lost(e))?;
            Ok::<_, ClientError>(buf)
        };
        let buf = tokio::time::timeout(timeout, read)
            .await
            .map_err(|_elapsed| self.timeout("reply"))??;
        let mut packet = Packet::new_checked_with_max(buf, MAX_REPLY_BODY_LEN)
            .map_err(|source| ClientError::Malformed { stage, source })?;
        // RFC 8907 §4.5: cleartext replies are refused; a wrong key shows as a body that does
        // not parse.
        packet
            .deobfuscate(self.spec.key.octets(), self.spec.cleartext())
            .map_err(|source| ClientError::Malformed { stage, source })?;
        Ok(packet)
    }

    /// Ends the session with a CONTINUE carrying the ABORT flag and `reason` (RFC 8907 §5.4.3).
    /// Best effort: the session is over whether or not the write succeeds.
    async fn abort(&mut self, header: &Header, reason: &[u8]) {
        let cont = authen::Continue {
            flags: authen::ContinueFlags::ABORT,
            user_msg: b"",
            data: reason,
        };
        let sent = match encode(header, &cont, &self.spec.key) {
            Ok(packet) => self.write(&packet).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::debug!(server = %self.spec.addr, error = %e, "TACACS+ abort not sent");
        }
    }
}

/// Emits and obfuscates one packet (RFC 8907 §4.5).
fn encode<'a, B: Body<'a>>(header: &Header, body: &B, key: &Key) -> Result<Vec<u8>, ClientError> {
    let len = body.body_len().map_err(ClientError::Encode)?;
    let mut buf = vec![0u8; HEADER_LEN + len];
    let written =
        tacacs::emit_packet(&mut buf, header, body, key.octets()).map_err(ClientError::Encode)?;
    buf.truncate(written);
    Ok(buf)
}

/// A session_id from the operating system's CSPRNG (RFC 8907 §4.1).
fn session_id() -> Result<u32, ClientError> {
    let mut octets = [0u8; 4];
    getrandom::fill(&mut octets).map_err(ClientError::Rng)?;
    Ok(u32::from_be_bytes(octets))
}

/// The header of our packet after the server's reply to `sent`: seq_no two above, everything
/// else ours (RFC 8907 §4.1; [`Connection::receive`] checked the reply's seq_no is one above).
fn following(sent: &Header, stage: Stage) -> Result<Header, ClientError> {
    sent.next()
        .and_then(|reply| reply.next())
        .map_err(|source| ClientError::Session { stage, source })
}

fn server_status(stage: Stage, status: &'static str, server_msg: Option<String>) -> ClientError {
    ClientError::ServerStatus {
        stage,
        status,
        server_msg,
    }
}

fn unexpected(stage: Stage, status: authen::Status) -> ClientError {
    ClientError::UnexpectedStatus {
        stage,
        status: status.into(),
    }
}

/// A text field, lossily decoded; `None` when empty.
fn text(octets: &[u8]) -> Option<String> {
    (!octets.is_empty()).then(|| String::from_utf8_lossy(octets).into_owned())
}

fn pair(arg: Arg<'_>) -> (String, String) {
    (
        String::from_utf8_lossy(arg.name()).into_owned(),
        String::from_utf8_lossy(arg.value()).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    const KEY: &[u8] = b"unit-test-key";

    fn spec(addr: SocketAddr, protocol: Protocol) -> ServerSpec {
        ServerSpec {
            addr,
            key: Key::new(KEY),
            protocol,
            client_port: "tty0".into(),
            timeout: Duration::from_millis(300),
            tls: None,
        }
    }

    /// A server that reads one request and answers with whatever `reply` makes of its header.
    async fn one_shot(reply: fn(&Header) -> Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut head = [0u8; HEADER_LEN];
            if stream.read_exact(&mut head).await.is_err() {
                return;
            }
            let header = Header::parse(&head).unwrap();
            let mut body = vec![0u8; header.length as usize];
            if stream.read_exact(&mut body).await.is_err() {
                return;
            }
            let _ = stream.write_all(&reply(&header)).await;
            // Hold the connection until the client is done with it.
            let _ = stream.read(&mut [0u8; 64]).await;
        });
        (addr, task)
    }

    fn pass_reply(header: &Header) -> Vec<u8> {
        let reply = authen::Reply {
            status: authen::Status::Pass,
            flags: authen::ReplyFlags::empty(),
            server_msg: b"",
            data: b"",
        };
        let mut buf = vec![0u8; 64];
        let len = tacacs::emit_packet(&mut buf, &header.next().unwrap(), &reply, KEY).unwrap();
        buf.truncate(len);
        buf
    }

    #[test]
    fn key_is_redacted_in_debug() {
        let spec = spec(SocketAddr::from(([127, 0, 0, 1], 49)), Protocol::Pap);
        assert_eq!(format!("{:?}", spec.key), "Key(****)");
        let printed = format!("{spec:?}");
        assert!(printed.contains("Key(****)"), "{printed}");
        assert!(!printed.contains("unit-test-key"), "{printed}");
    }

    #[test]
    fn protocol_picks_version_and_authen_type() {
        // RFC 8907 §5.4.1: PAP needs minor version 1, ASCII uses the default.
        assert_eq!(Protocol::Pap.version(), Version::ONE);
        assert_eq!(Protocol::Pap.authen_type(), AuthenType::Pap);
        assert_eq!(Protocol::Ascii.version(), Version::DEFAULT);
        assert_eq!(Protocol::Ascii.authen_type(), AuthenType::Ascii);
    }

    #[test]
    fn following_header_skips_the_reply_and_keeps_our_fields() {
        let sent = Header::request(
            PacketType::Authentication,
            Version::DEFAULT,
            Flags::empty(),
            0xdead_beef,
        );
        let next = following(&sent, Stage::Authentication).unwrap();
        assert_eq!(next.seq_no, 3);
        assert_eq!(next.session_id, 0xdead_beef);
        assert_eq!(next.version, Version::DEFAULT);
        assert_eq!(next.flags, Flags::empty());
        // RFC 8907 §4.1: the sequence number never wraps.
        let late = Header {
            seq_no: 253,
            ..sent
        };
        assert!(matches!(
            following(&late, Stage::Authentication),
            Err(ClientError::Session {
                source: SessionError::SeqNoExhausted,
                ..
            })
        ));
    }

    #[test]
    fn text_fields_decode_lossily_and_empty_is_none() {
        assert_eq!(text(b""), None);
        assert_eq!(text(b"hi"), Some("hi".into()));
        assert_eq!(text(b"\xffok"), Some("\u{fffd}ok".into()));
        let arg = Arg::optional(b"role", b"a=b");
        assert_eq!(pair(arg), ("role".into(), "a=b".into()));
    }

    #[test]
    fn errors_read_well() {
        let error = server_status(Stage::Authentication, "ERROR", Some("db down".into()));
        assert_eq!(
            error.to_string(),
            "authentication: server answered ERROR (\"db down\")"
        );
        assert!(!error.is_timeout());
        let timeout = ClientError::Timeout {
            stage: Stage::Authorization,
            step: "reply",
            timeout: Duration::from_millis(300),
        };
        assert_eq!(
            timeout.to_string(),
            "authorization: no complete reply within 300ms"
        );
        assert!(timeout.is_timeout());
        assert_eq!(
            unexpected(Stage::Authentication, authen::Status::GetData).to_string(),
            "authentication: unexpected status 0x03"
        );
    }

    #[tokio::test]
    async fn reply_of_another_type_is_out_of_session() {
        let (addr, _server) = one_shot(|header| {
            // A well-formed authentication PASS, but under the authorization type.
            let mut bytes = pass_reply(header);
            bytes[1] = u8::from(PacketType::Authorization);
            bytes
        })
        .await;
        let client = TacacsClient::new(spec(addr, Protocol::Pap));
        let answer = client.authenticate("alice", b"pw", "", "svc").await;
        assert!(
            matches!(
                answer,
                Err(ClientError::Session {
                    stage: Stage::Authentication,
                    source: SessionError::PacketType { .. },
                })
            ),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn reply_with_a_foreign_major_version_is_malformed() {
        let (addr, _server) = one_shot(|header| {
            let mut bytes = pass_reply(header);
            bytes[0] = 0xd1;
            bytes
        })
        .await;
        let client = TacacsClient::new(spec(addr, Protocol::Pap));
        let answer = client.authenticate("alice", b"pw", "", "svc").await;
        assert!(
            matches!(
                answer,
                Err(ClientError::Malformed {
                    source: tacacs::Error::MajorVersion(0xd),
                    ..
                })
            ),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn unrepresentable_requests_fail_before_connecting() {
        // Nothing listens on a port that was just free; the request must not get that far.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let client = TacacsClient::new(spec(addr, Protocol::Pap));
        // RFC 8907 §5.1: a PAP password travels in data, at most 255 octets.
        let answer = client.authenticate("alice", &[b'x'; 256], "", "svc").await;
        assert!(matches!(answer, Err(ClientError::Encode(_))), "{answer:?}");
        let long_user = "u".repeat(256);
        let answer = client.authenticate(&long_user, b"pw", "", "svc").await;
        assert!(matches!(answer, Err(ClientError::Encode(_))), "{answer:?}");
        // Nothing listens there: had either request been sent, it would have failed to
        // connect instead.
    }
}
