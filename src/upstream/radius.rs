//! RADIUS client: Access-Requests to one upstream server over UDP (RFC 2865).
//!
//! Each [`RadiusClient`] talks to one server through a small pool of connected UDP sockets. A
//! request leases a free Identifier on one of them (256 per socket, RFC 2865 §3; a new socket
//! is opened when every Identifier of the others is in flight), so no login waits behind
//! another. One receiver task per socket hands each datagram to the request that owns its
//! Identifier; the request verifies it and keeps waiting if it does not verify. A reply that
//! does not parse, fails the Response Authenticator or Message-Authenticator check, or lacks a
//! Message-Authenticator the server is required to send, is dropped and counted: it is never
//! an accept and never a reject.
//!
//! The request is sent again, byte for byte, every `timeout` until `tries` sends have gone
//! unanswered.
//!
//! Over TLS (RadSec, RFC 6614) the pool holds long-lived TLS connections instead (at most
//! [`MAX_TLS_CONNECTIONS`], 256 Identifiers each); replies are framed by their Length field.
//! Nothing is resent (RFC 6614 §2.5: the transport is reliable): one wait of `timeout`. A
//! connection that breaks ends the requests waiting on it and is replaced on the next
//! request; a server that cannot be connected to is not tried again before a backoff
//! (1 s, doubling up to 30 s) has passed.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_protocol::radius::{
    self, Builder, Code, MAX_PACKET_LEN, MAX_PASSWORD_LEN, Packet, Secret, Signature, attr_type,
    chap_response, stream::Framer, v11,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::Learned;
use super::tls::TlsClient;
use crate::sync::lock;

/// How a server proves who it is: which password scheme the Access-Request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProtocol {
    /// User-Password hidden with the shared secret (RFC 2865 §5.2).
    Pap,
    /// CHAP-Password over a random CHAP-Challenge (RFC 2865 §5.3, RFC 1994).
    Chap,
}

/// Whether replies from a server must carry a valid Message-Authenticator (RFC 3579 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Every reply must be signed.
    Yes,
    /// Replies may be unsigned (a signature that is present must still verify).
    No,
    /// Required once the server has sent one valid Message-Authenticator.
    Auto,
}

/// One upstream RADIUS server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// Where to send Access-Requests.
    pub addr: SocketAddr,
    /// The shared secret.
    pub secret: Secret<Box<[u8]>>,
    /// PAP or CHAP.
    pub protocol: AuthProtocol,
    /// Message-Authenticator policy for replies.
    pub require_message_authenticator: Requirement,
    /// RADIUS over TLS (RFC 6614) with this client configuration; `None`: UDP.
    pub tls: Option<TlsClient>,
}

/// Per-request settings that come from the RADIUS settings rather than the server.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// NAS-Identifier to send, if any.
    pub nas_identifier: Option<String>,
    /// Send NAS-IP-Address (or NAS-IPv6-Address).
    pub use_nas_ip: bool,
    /// The address to send; `None` means the socket's own source address.
    pub nas_ip: Option<IpAddr>,
    /// How long to wait for a reply to each send.
    pub timeout: Duration,
    /// How many times the request is sent before the server counts as silent.
    pub tries: u32,
}

/// A CHAP response made by a RADIUS client, to pass through unchanged (RFC 2865 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChapProof<'a> {
    /// The CHAP Identifier.
    pub ident: u8,
    /// MD5(ident + password + challenge).
    pub response: &'a [u8; 16],
    /// The challenge: the client's CHAP-Challenge, or its Request Authenticator when it sent
    /// none.
    pub challenge: &'a [u8],
}

/// What an Access-Request proves the user knows.
#[derive(Debug, Clone, Copy)]
enum Proof<'a> {
    /// The password itself, hidden or hashed as the server is configured.
    Password(&'a [u8]),
    /// Someone else's CHAP response.
    Chap(&'a ChapProof<'a>),
    /// The answer to this server's Access-Challenge: sent as User-Password (PAP, whatever the
    /// server's protocol) with the challenge's State echoed unchanged (RFC 2865 §4.4).
    Answer {
        /// What the user typed.
        response: &'a [u8],
        /// The State of the Access-Challenge.
        state: &'a [u8],
    },
}

/// What a server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Access-Accept.
    Accept(Reply),
    /// Access-Reject.
    Reject(Reply),
    /// Access-Challenge, which a password login cannot answer.
    Challenge(Reply),
}

/// A verified reply, kept whole so role mapping can read its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    bytes: Datagram,
}

/// Reply buffers that went back to the pool, taken by the receiver tasks for the next
/// replies: a relayed login allocates none once the pool has warmed up.
static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Buffers the pool keeps at most (beyond them a returned buffer is freed): more than the
/// requests a busy gateway has in flight.
const MAX_SPARE: usize = 1024;

/// A datagram received for a request, in a buffer from [`SPARE`] that goes back there when
/// it is dropped.
#[derive(PartialEq, Eq)]
pub struct Datagram(Vec<u8>);

impl Datagram {
    /// A copy of `bytes`, in a spare buffer when there is one.
    fn copy_of(bytes: &[u8]) -> Datagram {
        let mut buffer = lock(&SPARE).pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(bytes);
        Datagram(buffer)
    }
}

impl std::ops::Deref for Datagram {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Clone for Datagram {
    fn clone(&self) -> Datagram {
        Datagram::copy_of(&self.0)
    }
}

impl std::fmt::Debug for Datagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} octets]", self.0.len())
    }
}

impl Drop for Datagram {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.0);
        if buffer.capacity() == 0 || buffer.capacity() > MAX_PACKET_LEN {
            return;
        }
        let mut spare = lock(&SPARE);
        if spare.len() < MAX_SPARE {
            spare.push(buffer);
        }
    }
}

impl Reply {
    /// The reply as a packet view. It was checked on arrival, so this cannot fail.
    pub fn packet(&self) -> Packet<&[u8]> {
        Packet::new_unchecked(&self.bytes)
    }

    /// Each Reply-Message attribute, lossily decoded as UTF-8, in order.
    pub fn reply_messages(&self) -> Vec<String> {
        self.packet()
            .find_all(attr_type::REPLY_MESSAGE)
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    /// The State attribute, if the reply carries one (RFC 2865 §5.24).
    pub fn state(&self) -> Option<Vec<u8>> {
        self.packet()
            .find_all(attr_type::STATE)
            .next()
            .map(<[u8]>::to_vec)
    }

    /// Whether the server asks for the answer to be shown as it is typed: the Prompt
    /// attribute (RFC 2869 §5.10) says Echo; without one, answers are treated as secret.
    pub fn echo(&self) -> bool {
        self.packet()
            .find_all(attr_type::PROMPT)
            .next()
            .is_some_and(|value| value == [0, 0, 0, 1])
    }

    /// The Reply-Message attributes, joined by a space, lossily decoded as UTF-8.
    pub fn reply_message(&self) -> Option<String> {
        let packet = self.packet();
        let parts: Vec<String> = packet
            .find_all(attr_type::REPLY_MESSAGE)
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// Why no answer came back.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No valid reply to any of the sends.
    #[error("no valid reply after {tries} tries of {timeout:?}")]
    Timeout {
        /// Sends made.
        tries: u32,
        /// Wait after each send.
        timeout: Duration,
    },
    /// The request could not be built (a password over 128 octets, a name over 253).
    #[error("request not representable: {0}")]
    Encode(radius::Error),
    /// A socket could not be opened.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The operating system's random number generator failed.
    #[error("random number generator: {0}")]
    Rng(getrandom::Error),
    /// Every Identifier of every socket is in flight.
    #[error("too many requests in flight to this server")]
    Busy,
    /// The TLS connection could not be opened: refused, unreachable, timed out, or the
    /// handshake failed (an untrusted or misnamed certificate, our certificate refused).
    #[error("TLS connection: {0}")]
    Connect(io::Error),
    /// A TLS connection failed less than this long ago; no new one is tried before.
    #[error("TLS connection failed; next attempt in {0:?}")]
    Backoff(Duration),
}

/// TLS connections per server at most: 4 x 256 requests in flight.
pub const MAX_TLS_CONNECTIONS: usize = 4;
/// The first wait after a failed TLS connection; doubled after each further failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between TLS connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// When the next TLS connection may be tried.
#[derive(Debug)]
struct Backoff {
    /// No attempt before this.
    until: Option<Instant>,
    /// The wait after the next failure.
    delay: Duration,
}

/// Sockets per server at most: 64 x 256 requests in flight.
const MAX_SOCKETS: usize = 64;

/// A client for one upstream RADIUS server.
#[derive(Debug)]
pub struct RadiusClient {
    spec: ServerSpec,
    sockets: Mutex<Vec<Arc<Channel>>>,
    /// Over TLS: when a new connection may be tried.
    backoff: Mutex<Backoff>,
    /// Over TLS: held while a connection is opened, so that requests arriving meanwhile
    /// wait for it instead of opening their own.
    connecting: tokio::sync::Mutex<()>,
    /// Whether the server signs its replies (for [`Requirement::Auto`]), kept across
    /// configuration changes.
    learned: Arc<Learned>,
}

impl RadiusClient {
    /// A client for `spec` that has learned nothing yet; sockets are opened on first use.
    pub fn new(spec: ServerSpec) -> Self {
        Self::with_learned(spec, Arc::default())
    }

    /// A client for `spec` that goes on from what an earlier client for the same server
    /// learned.
    pub fn with_learned(spec: ServerSpec, learned: Arc<Learned>) -> Self {
        RadiusClient {
            spec,
            sockets: Mutex::new(Vec::new()),
            backoff: Mutex::new(Backoff {
                until: None,
                delay: FIRST_BACKOFF,
            }),
            connecting: tokio::sync::Mutex::new(()),
            learned,
        }
    }

    /// The server this client talks to.
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    /// Sends an Access-Request for `user` with `password` (PAP or CHAP, as the server is
    /// configured) and waits for a verified answer.
    pub async fn authenticate(
        &self,
        user: &str,
        password: &[u8],
        options: &RequestOptions,
    ) -> Result<Answer, ClientError> {
        self.exchange(user, Proof::Password(password), options)
            .await
    }

    /// Sends an Access-Request for `user` carrying a CHAP response made by someone else (a
    /// RADIUS client of the front-end) as it is, whatever protocol the server is configured
    /// with: only a server that knows the password can check it (RFC 2865 §5.3).
    pub async fn authenticate_chap(
        &self,
        user: &str,
        chap: &ChapProof<'_>,
        options: &RequestOptions,
    ) -> Result<Answer, ClientError> {
        self.exchange(user, Proof::Chap(chap), options).await
    }

    /// Sends the user's `response` to this server's Access-Challenge whose State was
    /// `state` (RFC 2865 §4.4): a new Access-Request with User-Name, the State unchanged and
    /// the response as User-Password, whatever protocol the server is configured with.
    pub async fn answer_challenge(
        &self,
        user: &str,
        response: &[u8],
        state: &[u8],
        options: &RequestOptions,
    ) -> Result<Answer, ClientError> {
        self.exchange(user, Proof::Answer { response, state }, options)
            .await
    }

    /// Asks the server whether it is alive with a Status-Server (RFC 5997: a random Request
    /// Authenticator, a Message-Authenticator, nothing else), sent once. True when a reply
    /// that passes the same checks as a login reply (authenticators, Identifier, the
    /// Message-Authenticator requirement) comes back within `timeout` as an Access-Accept.
    pub async fn probe(&self, timeout: Duration) -> Result<bool, ClientError> {
        let mut lease = self.lease(timeout).await?;
        let framing = Framing::new(&lease)?;
        let mut buf = [0u8; 64];
        let len = match framing {
            Framing::Classic(authenticator) => {
                let mut b = Builder::new(&mut buf, Code::StatusServer, lease.id, &authenticator)
                    .map_err(ClientError::Encode)?;
                b.message_authenticator().map_err(ClientError::Encode)?;
                b.finish_request(&self.spec.secret)
                    .map_err(ClientError::Encode)?
            }
            // RFC 9765 §5.2: no Message-Authenticator in RADIUS/1.1.
            Framing::V11(token) => {
                Builder::new(&mut buf, Code::StatusServer, 0, &v11::token_field(token))
                    .map_err(ClientError::Encode)?
                    .finish_unsigned()
            }
        };
        let request = buf.get(..len).unwrap_or_default();
        if let Err(e) = lease.channel.send(request).await {
            tracing::debug!(server = %self.spec.addr, error = %e, "Status-Server not sent");
            return Ok(false);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, lease.recv()).await {
                // RFC 3539 §3.4: a connection whose watchdog goes unanswered is failed; over
                // TLS the next request opens a new one instead of waiting on this one.
                Err(_) if self.spec.tls.is_some() => {
                    lease.channel.break_off();
                    return Ok(false);
                }
                Err(_) | Ok(None) => return Ok(false),
                Ok(Some(datagram)) => match self.accept_reply(datagram, lease.id, framing) {
                    Some(Answer::Accept(_)) => return Ok(true),
                    Some(_) => return Ok(false),
                    None => {}
                },
            }
        }
    }

    async fn exchange(
        &self,
        user: &str,
        password: Proof<'_>,
        options: &RequestOptions,
    ) -> Result<Answer, ClientError> {
        let mut lease = self.lease(options.timeout).await?;
        let framing = Framing::new(&lease)?;
        // Encoded into the Identifier's own buffer: the request's future stays small, and
        // no request allocates one.
        let mut buf = std::mem::take(&mut lease.request);
        buf.resize(MAX_PACKET_LEN, 0);
        let encoded = self.encode(&mut buf, lease.id, framing, user, password, options, &lease);
        lease.request = buf;
        let len = encoded?;
        let request = lease.request.get(..len).unwrap_or_default();

        // RFC 6614 §2.5: never resent over TLS.
        let tries = if self.spec.tls.is_some() {
            1
        } else {
            options.tries.max(1)
        };
        let received_before = lease.channel.received.load(Ordering::Relaxed);
        for attempt in 0..tries {
            if attempt > 0 {
                crate::telemetry::upstream_retransmit(&self.spec.addr.to_string());
            }
            if let Err(e) = lease.channel.send(request).await {
                // An ICMP error from an earlier send surfaces here on a connected socket;
                // the server counts as silent for this try.
                tracing::debug!(server = %self.spec.addr, error = %e, "send failed");
            }
            let deadline = Instant::now() + options.timeout;
            while let Some(replies) = lease.replies.as_mut() {
                match tokio::time::timeout_at(deadline, replies.recv()).await {
                    Err(_elapsed) => break,
                    Ok(None) => break,
                    Ok(Some(datagram)) => {
                        if let Some(answer) = self.accept_reply(datagram, lease.id, framing) {
                            return Ok(answer);
                        }
                    }
                }
            }
        }
        // Over TLS a request that timed out on a connection that is still up, with nothing
        // received on it meanwhile, means the server (or the path) hangs: the connection is
        // given up, so the next request does not wait on it as well (RFC 3539 §3.4 treats an
        // unanswered watchdog the same way). Other requests answered meanwhile: the connection
        // lives, only this request was lost.
        if self.spec.tls.is_some()
            && lease.channel.received.load(Ordering::Relaxed) == received_before
        {
            lease.channel.break_off();
        }
        Err(ClientError::Timeout {
            tries,
            timeout: options.timeout,
        })
    }

    /// Builds the Access-Request: Message-Authenticator first (RFC 3579 §3.2, BlastRADIUS),
    /// User-Name, the password, NAS-Identifier and NAS-IP-Address as configured. Over
    /// RADIUS/1.1 (RFC 9765) the Token takes the Authenticator's place, and nothing is hidden
    /// or signed with the secret.
    #[allow(clippy::too_many_arguments)]
    fn encode(
        &self,
        buf: &mut [u8],
        id: u8,
        framing: Framing,
        user: &str,
        password: Proof<'_>,
        options: &RequestOptions,
        lease: &Lease,
    ) -> Result<usize, ClientError> {
        let mut b = match framing {
            Framing::Classic(authenticator) => Builder::access_request(buf, id, &authenticator),
            // RFC 9765 §4.1: Reserved-1 is zero.
            Framing::V11(token) => {
                Builder::new(buf, Code::AccessRequest, 0, &v11::token_field(token))
            }
        }
        .map_err(ClientError::Encode)?;
        b.attribute(attr_type::USER_NAME, user.as_bytes())
            .map_err(ClientError::Encode)?;
        let password = match password {
            Proof::Password(password) => password,
            Proof::Answer { response, state } => {
                if response.len() > MAX_PASSWORD_LEN {
                    return Err(ClientError::Encode(radius::Error::PasswordTooLong));
                }
                b.attribute(attr_type::STATE, state)
                    .map_err(ClientError::Encode)?;
                self.user_password(&mut b, response, framing)?;
                return self.finish_request(b, options, lease, framing);
            }
            Proof::Chap(chap) => {
                b.chap_password(chap.ident, chap.response)
                    .map_err(ClientError::Encode)?;
                b.attribute(attr_type::CHAP_CHALLENGE, chap.challenge)
                    .map_err(ClientError::Encode)?;
                return self.finish_request(b, options, lease, framing);
            }
        };
        match self.spec.protocol {
            AuthProtocol::Pap => {
                if password.len() > MAX_PASSWORD_LEN {
                    return Err(ClientError::Encode(radius::Error::PasswordTooLong));
                }
                self.user_password(&mut b, password, framing)?;
            }
            AuthProtocol::Chap => {
                let mut challenge = [0u8; 17];
                getrandom::fill(&mut challenge).map_err(ClientError::Rng)?;
                let [ident, rest @ ..] = challenge;
                let response = chap_response(ident, password, &rest);
                b.chap_password(ident, &response)
                    .map_err(ClientError::Encode)?;
                b.attribute(attr_type::CHAP_CHALLENGE, &rest)
                    .map_err(ClientError::Encode)?;
            }
        }
        self.finish_request(b, options, lease, framing)
    }

    /// Appends User-Password: hidden with the secret (RFC 2865 §5.2), or as it is over
    /// RADIUS/1.1 (RFC 9765 §5.1.1).
    fn user_password(
        &self,
        b: &mut Builder<'_>,
        password: &[u8],
        framing: Framing,
    ) -> Result<(), ClientError> {
        match framing {
            Framing::Classic(_) => b.user_password(password, &self.spec.secret),
            Framing::V11(_) if password.len() > MAX_PASSWORD_LEN => {
                Err(radius::Error::PasswordTooLong)
            }
            Framing::V11(_) => b.attribute(attr_type::USER_PASSWORD, password),
        }
        .map(|_| ())
        .map_err(ClientError::Encode)
    }

    /// Adds NAS-Identifier and NAS-IP-Address as configured and signs the request (classic
    /// RADIUS only).
    fn finish_request(
        &self,
        mut b: Builder<'_>,
        options: &RequestOptions,
        lease: &Lease,
        framing: Framing,
    ) -> Result<usize, ClientError> {
        if let Some(nas_id) = &options.nas_identifier {
            b.attribute(attr_type::NAS_IDENTIFIER, nas_id.as_bytes())
                .map_err(ClientError::Encode)?;
        }
        if options.use_nas_ip {
            let ip = match options.nas_ip {
                Some(ip) => Some(ip),
                None => lease.channel.local_ip(),
            };
            match ip {
                Some(IpAddr::V4(v4)) => {
                    b.attribute_ipv4(attr_type::NAS_IP_ADDRESS, v4)
                        .map_err(ClientError::Encode)?;
                }
                Some(IpAddr::V6(v6)) => {
                    b.attribute_ipv6(attr_type::NAS_IPV6_ADDRESS, v6)
                        .map_err(ClientError::Encode)?;
                }
                None => {}
            }
        }
        match framing {
            Framing::Classic(_) => b
                .finish_request(&self.spec.secret)
                .map_err(ClientError::Encode),
            Framing::V11(_) => Ok(b.finish_unsigned()),
        }
    }

    /// Checks a datagram that arrived for our Identifier (or Token); `None` drops it
    /// (counted).
    fn accept_reply(&self, datagram: Datagram, id: u8, framing: Framing) -> Option<Answer> {
        let authenticator = match framing {
            Framing::Classic(authenticator) => authenticator,
            Framing::V11(token) => return self.accept_v11_reply(datagram, token),
        };
        let authenticator = &authenticator;
        let verdict = {
            let Ok(packet) = Packet::new_checked(&datagram[..]) else {
                return self.drop_invalid("unparsable reply");
            };
            if packet.identifier() != id || !packet.code().is_access_reply() {
                return self.drop_invalid("unexpected identifier or code");
            }
            match packet.verify_reply(authenticator, &self.spec.secret) {
                Ok(signature) => (packet.code(), signature),
                Err(e) => {
                    tracing::debug!(server = %self.spec.addr, error = %e, "reply failed verification");
                    return self.drop_invalid("verification failed");
                }
            }
        };
        let (code, signature) = verdict;
        match signature {
            Signature::Signed => {
                self.learned.signed_seen.store(true, Ordering::Relaxed);
            }
            Signature::Unsigned => {
                let required = match self.spec.require_message_authenticator {
                    Requirement::Yes => true,
                    Requirement::No => false,
                    Requirement::Auto => self.learned.signed_seen.load(Ordering::Relaxed),
                };
                if required {
                    crate::telemetry::upstream_invalid_reply("radius", &self.spec.addr.to_string());
                    tracing::warn!(server = %self.spec.addr, "dropped a reply without the required Message-Authenticator");
                    return None;
                }
                if !self.learned.unsigned_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        server = %self.spec.addr,
                        "server does not sign its replies with Message-Authenticator (RFC 3579); \
                         its answers cannot be protected against forgery of this kind (CVE-2024-3596)"
                    );
                }
            }
        }
        let reply = Reply { bytes: datagram };
        Some(match code {
            Code::AccessAccept => Answer::Accept(reply),
            Code::AccessReject => Answer::Reject(reply),
            _ => Answer::Challenge(reply),
        })
    }

    /// [`RadiusClient::accept_reply`] over RADIUS/1.1 (RFC 9765): a reply code with our
    /// Token; TLS vouches for the rest, and a Message-Authenticator is ignored (§5.2).
    fn accept_v11_reply(&self, datagram: Datagram, token: u32) -> Option<Answer> {
        let code = {
            let Ok(packet) = Packet::new_checked(&datagram[..]) else {
                return self.drop_invalid("unparsable reply");
            };
            if packet.token() != token || !packet.code().is_access_reply() {
                return self.drop_invalid("unexpected token or code");
            }
            packet.code()
        };
        let reply = Reply { bytes: datagram };
        Some(match code {
            Code::AccessAccept => Answer::Accept(reply),
            Code::AccessReject => Answer::Reject(reply),
            _ => Answer::Challenge(reply),
        })
    }

    fn drop_invalid(&self, why: &'static str) -> Option<Answer> {
        crate::telemetry::upstream_invalid_reply("radius", &self.spec.addr.to_string());
        tracing::debug!(server = %self.spec.addr, why, "dropped reply");
        None
    }

    /// Leases a free Identifier on one of the sockets (or TLS connections), opening one if
    /// all are full; `timeout` bounds opening a TLS connection.
    async fn lease(&self, timeout: Duration) -> Result<Lease, ClientError> {
        let Some(tls) = &self.spec.tls else {
            return self.lease_udp();
        };
        if let Some(lease) = self.lease_open(MAX_TLS_CONNECTIONS)? {
            return Ok(lease);
        }
        // One connection attempt at a time; whoever waited looks again first.
        let _connecting = self.connecting.lock().await;
        if let Some(lease) = self.lease_open(MAX_TLS_CONNECTIONS)? {
            return Ok(lease);
        }
        {
            let backoff = lock(&self.backoff);
            let now = Instant::now();
            if let Some(until) = backoff.until.filter(|until| *until > now) {
                return Err(ClientError::Backoff(until.saturating_duration_since(now)));
            }
        }
        // Boxed: a handshake's future is kilobytes that every request would carry.
        let channel = match Box::pin(Channel::open_tls(self.spec.addr, tls, timeout)).await {
            Ok(channel) => {
                *lock(&self.backoff) = Backoff {
                    until: None,
                    delay: FIRST_BACKOFF,
                };
                Arc::new(channel)
            }
            Err(e) => {
                let mut backoff = lock(&self.backoff);
                backoff.until = Some(Instant::now() + backoff.delay);
                backoff.delay = (backoff.delay * 2).min(MAX_BACKOFF);
                return Err(e);
            }
        };
        let lease = Lease::of(&channel).ok_or(ClientError::Busy)?;
        let mut sockets = lock(&self.sockets);
        sockets.retain(|channel| !channel.is_broken());
        sockets.push(channel);
        Ok(lease)
    }

    /// A free Identifier on an open channel; `Busy` when `most` channels are open and full,
    /// `None` when another may be opened. Broken channels are forgotten.
    fn lease_open(&self, most: usize) -> Result<Option<Lease>, ClientError> {
        let mut sockets = lock(&self.sockets);
        sockets.retain(|channel| !channel.is_broken());
        for channel in sockets.iter() {
            if let Some(lease) = Lease::of(channel) {
                return Ok(Some(lease));
            }
        }
        if sockets.len() >= most {
            return Err(ClientError::Busy);
        }
        Ok(None)
    }

    /// [`RadiusClient::lease`] over UDP.
    fn lease_udp(&self) -> Result<Lease, ClientError> {
        if let Some(lease) = self.lease_open(MAX_SOCKETS)? {
            return Ok(lease);
        }
        let channel = Arc::new(Channel::open(self.spec.addr)?);
        let lease = Lease::of(&channel).ok_or(ClientError::Busy)?;
        lock(&self.sockets).push(channel);
        Ok(lease)
    }
}

/// How one request is framed: classic RADIUS (a random Request Authenticator, everything
/// signed with the secret) or RADIUS/1.1 (RFC 9765: a Token, nothing signed).
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// The Request Authenticator.
    Classic([u8; 16]),
    /// The Token.
    V11(u32),
}

impl Framing {
    /// The framing of a request on `lease`'s channel: a Token on a RADIUS/1.1 connection, a
    /// fresh random Request Authenticator elsewhere.
    fn new(lease: &Lease) -> Result<Framing, ClientError> {
        if let Some(token) = lease.channel.token(lease.id) {
            return Ok(Framing::V11(token));
        }
        let mut authenticator = [0u8; 16];
        getrandom::fill(&mut authenticator).map_err(ClientError::Rng)?;
        Ok(Framing::Classic(authenticator))
    }
}

/// What a free Identifier keeps for its next request: the receiving end of its channel, and
/// the buffer its requests are encoded into (sized at its first request, reused after).
#[derive(Debug)]
struct Idle {
    replies: mpsc::Receiver<Datagram>,
    request: Vec<u8>,
}

/// Who waits on each Identifier of one socket. Every Identifier has a channel of its own for
/// the socket's lifetime, so a request allocates none: its receiving end stays here while the
/// Identifier is free and goes with the [`Lease`] while a request waits on it.
#[derive(Debug)]
struct Slots {
    /// Per Identifier: `Some` while free, `None` while leased.
    free: Vec<Option<Idle>>,
    /// Where the next search for a free Identifier starts, so Identifiers rotate and a late
    /// reply to a finished request is unlikely to meet a new one.
    next: usize,
}

/// One connected UDP socket or TLS connection and the receiver task that dispatches its
/// replies.
#[derive(Debug)]
struct Channel {
    transport: Transport,
    slots: Arc<Mutex<Slots>>,
    receiver: JoinHandle<()>,
    /// The TLS connection is gone: no new request goes on it.
    broken: Arc<std::sync::atomic::AtomicBool>,
    /// Packets received on the TLS connection so far: a request that timed out while others
    /// got answers does not condemn the connection.
    received: Arc<std::sync::atomic::AtomicU64>,
    /// A TLS connection that agreed on RADIUS/1.1 (RFC 9765): requests carry Tokens, drawn
    /// from here (the low octet is the Identifier slot waiting for the reply).
    tokens: Option<std::sync::atomic::AtomicU32>,
}

/// How a channel sends.
enum Transport {
    /// A connected UDP socket.
    Udp(Arc<UdpSocket>),
    /// The writing half of a TLS connection, and the local address.
    Tls(tokio::sync::Mutex<WriteHalf<TlsStream<TcpStream>>>, IpAddr),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Udp(socket) => f.debug_tuple("Udp").field(socket).finish(),
            Transport::Tls(_, local) => f.debug_tuple("Tls").field(local).finish(),
        }
    }
}

/// The sending end of each Identifier's channel, indexed by Identifier.
type Senders = Arc<[mpsc::Sender<Datagram>]>;

/// The per-Identifier channels of a new socket or connection: the sending ends (for its
/// receiver task) and the slots holding the receiving ends.
fn new_slots() -> (Senders, Arc<Mutex<Slots>>) {
    let (senders, free): (Vec<_>, Vec<_>) = (0..256)
        .map(|_| {
            let (tx, rx) = mpsc::channel(4);
            let idle = Idle {
                replies: rx,
                request: Vec::new(),
            };
            (tx, Some(idle))
        })
        .unzip();
    (
        senders.into(),
        Arc::new(Mutex::new(Slots { free, next: 0 })),
    )
}

impl Channel {
    /// Connects to `server` over TLS within `timeout` (TCP connect and handshake each).
    async fn open_tls(
        server: SocketAddr,
        tls: &TlsClient,
        timeout: Duration,
    ) -> Result<Channel, ClientError> {
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "timed out");
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(server))
            .await
            .map_err(|_| ClientError::Connect(timed_out()))?
            .map_err(ClientError::Connect)?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::trace!(error = %e, "TCP_NODELAY not set");
        }
        let local = tcp.local_addr().map_err(ClientError::Connect)?.ip();
        let stream =
            tokio::time::timeout(timeout, tls.connector.connect(tls.server_name.clone(), tcp))
                .await
                .map_err(|_| ClientError::Connect(timed_out()))?
                .map_err(ClientError::Connect)?;
        let (_, session) = stream.get_ref();
        let v11 = session.alpn_protocol() == Some(v11::ALPN_RADIUS_1_1);
        // RFC 9765 §3.4: RADIUS/1.1 only over TLS 1.3 or later.
        if v11 && session.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            return Err(ClientError::Connect(io::Error::other(
                "the server chose RADIUS/1.1 over TLS 1.2",
            )));
        }
        let tokens = if v11 {
            let mut first = [0u8; 4];
            getrandom::fill(&mut first).map_err(ClientError::Rng)?;
            Some(std::sync::atomic::AtomicU32::new(u32::from_be_bytes(first)))
        } else {
            None
        };
        let (reader, writer) = tokio::io::split(stream);
        let (senders, slots) = new_slots();
        let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let receiver = tokio::spawn(receive_stream(
            reader,
            Arc::clone(&slots),
            senders,
            server.to_string(),
            (Arc::clone(&broken), Arc::clone(&received)),
            v11,
        ));
        Ok(Channel {
            transport: Transport::Tls(tokio::sync::Mutex::new(writer), local),
            slots,
            receiver,
            broken,
            received,
            tokens,
        })
    }

    /// Sends one packet.
    async fn send(&self, packet: &[u8]) -> io::Result<()> {
        match &self.transport {
            Transport::Udp(socket) => socket.send(packet).await.map(|_| ()),
            Transport::Tls(writer, _) => {
                let mut writer = writer.lock().await;
                let written = async {
                    writer.write_all(packet).await?;
                    writer.flush().await
                }
                .await;
                if written.is_err() {
                    self.broken.store(true, Ordering::Relaxed);
                }
                written
            }
        }
    }

    /// The local address requests leave from.
    fn local_ip(&self) -> Option<IpAddr> {
        match &self.transport {
            Transport::Udp(socket) => socket.local_addr().ok().map(|a| a.ip()),
            Transport::Tls(_, local) => Some(*local),
        }
    }

    /// Gives the connection up: no new request is sent on it, and the reader stops.
    fn break_off(&self) {
        self.broken.store(true, Ordering::Relaxed);
        self.receiver.abort();
    }

    /// A fresh Token for a request waiting on Identifier slot `id`, on a RADIUS/1.1
    /// connection: unique among the requests in flight (a counter in the high octets, the
    /// slot in the low one, where [`dispatch`] looks for it).
    fn token(&self, id: u8) -> Option<u32> {
        let counter = self.tokens.as_ref()?.fetch_add(1, Ordering::Relaxed);
        Some((counter << 8) | u32::from(id))
    }

    /// Whether the connection is gone.
    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    fn open(server: SocketAddr) -> io::Result<Channel> {
        let local: SocketAddr = match server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let std_socket = std::net::UdpSocket::bind(local)?;
        // Connected: the kernel drops datagrams from any other address.
        std_socket.connect(server)?;
        std_socket.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(std_socket)?);
        let (senders, slots) = new_slots();
        // The receiver task holds the sending ends: it is the only one that sends.
        let receiver = tokio::spawn(receive(
            Arc::clone(&socket),
            Arc::clone(&slots),
            senders,
            server.to_string(),
        ));
        Ok(Channel {
            transport: Transport::Udp(socket),
            slots,
            receiver,
            broken: Arc::default(),
            received: Arc::default(),
            tokens: None,
        })
    }

    /// Reserves a free Identifier and takes what waits on it, its receiving end emptied of
    /// datagrams that arrived for an earlier request.
    fn reserve(&self) -> Option<(u8, Idle)> {
        let mut slots = lock(&self.slots);
        let start = slots.next;
        for offset in 0..256 {
            let id = (start + offset) % 256;
            if let Some(slot @ Some(_)) = slots.free.get_mut(id) {
                let mut idle = slot.take()?;
                while idle.replies.try_recv().is_ok() {}
                slots.next = (id + 1) % 256;
                return Some((u8::try_from(id).ok()?, idle));
            }
        }
        None
    }

    /// Frees Identifier `id`, handing back what waits on it.
    fn release(&self, id: u8, idle: Idle) {
        if let Some(slot) = lock(&self.slots).free.get_mut(usize::from(id)) {
            *slot = Some(idle);
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// Reads replies and hands each to the request waiting on its Identifier.
async fn receive(
    socket: Arc<UdpSocket>,
    slots: Arc<Mutex<Slots>>,
    senders: Arc<[mpsc::Sender<Datagram>]>,
    server: String,
) {
    let mut buf = vec![0u8; MAX_PACKET_LEN];
    loop {
        let len = match socket.recv(&mut buf).await {
            Ok(len) => len,
            // ICMP port unreachable and the like: the request times out on its own.
            Err(e) => {
                tracing::trace!(error = %e, "receive error");
                tokio::task::yield_now().await;
                continue;
            }
        };
        dispatch(
            &slots,
            &senders,
            &server,
            buf.get(..len).unwrap_or_default(),
            false,
        );
    }
}

/// Hands `packet` to the request waiting on its Identifier (on a RADIUS/1.1 connection: on
/// the low octet of its Token), if one is.
fn dispatch(
    slots: &Mutex<Slots>,
    senders: &[mpsc::Sender<Datagram>],
    server: &str,
    packet: &[u8],
    v11: bool,
) {
    // RFC 2865 §3: the Identifier is the second octet; shorter datagrams are not RADIUS.
    // RFC 9765 §4.1: the Token is octets 5 to 8, its last one the slot (`Channel::token`).
    let slot = if v11 { packet.get(7) } else { packet.get(1) };
    let Some(&id) = slot else {
        crate::telemetry::upstream_invalid_reply("radius", server);
        return;
    };
    let leased = matches!(lock(slots).free.get(usize::from(id)), Some(None));
    match senders.get(usize::from(id)) {
        Some(tx) if leased => {
            // A full queue means the request is flooded with junk; dropping is right. A
            // datagram that races with the end of its request is drained by the next lease
            // of the Identifier.
            let _ = tx.try_send(Datagram::copy_of(packet));
        }
        // Late or duplicate: nobody waits for this Identifier.
        _ => tracing::trace!(server, id, "reply for no request in flight"),
    }
}

/// Reads the packets of a TLS connection (each framed by its Length field, RFC 6614 §2.5)
/// and hands each to the request waiting on its Identifier. A Length outside 20..=4096 or a
/// closed connection ends it: the connection is marked broken and the requests waiting on it
/// end (their channels close when this task drops the sending ends).
async fn receive_stream(
    mut reader: ReadHalf<TlsStream<TcpStream>>,
    slots: Arc<Mutex<Slots>>,
    senders: Arc<[mpsc::Sender<Datagram>]>,
    server: String,
    (broken, received): (
        Arc<std::sync::atomic::AtomicBool>,
        Arc<std::sync::atomic::AtomicU64>,
    ),
    v11: bool,
) {
    // Boxed: the framer holds two packets' worth of octets.
    let mut framer = Box::new(Framer::new());
    'connection: loop {
        loop {
            match framer.next_packet() {
                Ok(Some(packet)) => {
                    received.fetch_add(1, Ordering::Relaxed);
                    dispatch(&slots, &senders, &server, packet, v11);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(server, error = %e, "RadSec reply cannot be framed; closing");
                    crate::telemetry::upstream_invalid_reply("radius", &server);
                    break 'connection;
                }
            }
        }
        match reader.read(framer.spare()).await {
            Ok(0) => {
                tracing::debug!(server, "RadSec connection closed");
                break;
            }
            Ok(n) => framer.filled(n),
            Err(e) => {
                tracing::debug!(server, error = %e, "RadSec connection closed");
                break;
            }
        }
    }
    broken.store(true, Ordering::Relaxed);
}

/// An Identifier in flight, with the receiving end of its channel; released when the
/// request ends.
#[derive(Debug)]
struct Lease {
    channel: Arc<Channel>,
    id: u8,
    /// Always `Some` until dropped.
    replies: Option<mpsc::Receiver<Datagram>>,
    /// The Identifier's request buffer.
    request: Vec<u8>,
}

impl Lease {
    /// A free Identifier of `channel`, if it has one.
    fn of(channel: &Arc<Channel>) -> Option<Lease> {
        let (id, idle) = channel.reserve()?;
        Some(Lease {
            channel: Arc::clone(channel),
            id,
            replies: Some(idle.replies),
            request: idle.request,
        })
    }

    /// The next datagram for this Identifier.
    async fn recv(&mut self) -> Option<Datagram> {
        self.replies.as_mut()?.recv().await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(replies) = self.replies.take() {
            let request = std::mem::take(&mut self.request);
            self.channel.release(self.id, Idle { replies, request });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use portcullis_protocol::radius::recover_password;

    use super::*;

    const SECRET: &[u8] = b"upstream-test-secret";

    /// What the responder does with the n-th request it receives (0-based): the datagrams to
    /// send back.
    type Behaviour = Box<dyn Fn(&[u8], usize) -> Vec<Vec<u8>> + Send + Sync>;

    struct Responder {
        addr: SocketAddr,
        requests: Arc<Mutex<Vec<Vec<u8>>>>,
        task: JoinHandle<()>,
    }

    impl Drop for Responder {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// Replies from the server at `addr` dropped so far (`portcullis_upstream_invalid_replies_total`).
    fn dropped(addr: SocketAddr) -> u64 {
        crate::telemetry::testing::counter(
            "portcullis_upstream_invalid_replies_total",
            &addr.to_string(),
        )
    }

    async fn responder(behaviour: Behaviour) -> Responder {
        crate::telemetry::testing::record();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                let (n, from) = socket.recv_from(&mut buf).await.unwrap();
                let nth = {
                    let mut seen = lock(&seen);
                    seen.push(buf[..n].to_vec());
                    seen.len() - 1
                };
                for reply in behaviour(&buf[..n], nth) {
                    socket.send_to(&reply, from).await.unwrap();
                }
            }
        });
        Responder {
            addr,
            requests,
            task,
        }
    }

    /// A reply to `request` with `code`, signed (Message-Authenticator) or not, carrying a
    /// Class, keyed with `secret`.
    fn reply(request: &[u8], code: Code, secret: &[u8], signed: bool) -> Vec<u8> {
        let request = Packet::new_checked(request).unwrap();
        let mut buf = [0u8; 4096];
        let mut b = Builder::new(&mut buf, code, request.identifier(), &[0; 16]).unwrap();
        if signed {
            b.message_authenticator().unwrap();
        }
        b.attribute(attr_type::CLASS, b"admins").unwrap();
        let len = b
            .finish_reply(&request.authenticator(), &Secret::new(secret))
            .unwrap();
        buf[..len].to_vec()
    }

    fn client(addr: SocketAddr, protocol: AuthProtocol, requirement: Requirement) -> RadiusClient {
        RadiusClient::new(ServerSpec {
            addr,
            secret: Secret::new(SECRET.to_vec().into_boxed_slice()),
            protocol,
            require_message_authenticator: requirement,
            tls: None,
        })
    }

    fn options(timeout_ms: u64, tries: u32) -> RequestOptions {
        RequestOptions {
            nas_identifier: Some("gateway-7".into()),
            use_nas_ip: true,
            nas_ip: None,
            timeout: Duration::from_millis(timeout_ms),
            tries,
        }
    }

    #[tokio::test]
    async fn pap_accept_carries_attributes_and_a_recoverable_password() {
        let server = responder(Box::new(|req, _| {
            vec![reply(req, Code::AccessAccept, SECRET, true)]
        }))
        .await;
        let client = client(server.addr, AuthProtocol::Pap, Requirement::Yes);
        let answer = client
            .authenticate("alice", b"s3cret pass", &options(1000, 1))
            .await
            .unwrap();
        let Answer::Accept(reply) = answer else {
            panic!("expected accept, got {answer:?}");
        };
        assert_eq!(
            reply.packet().find_all(attr_type::CLASS).next(),
            Some(&b"admins"[..])
        );

        let sent = lock(&server.requests)[0].clone();
        let request = Packet::new_checked(&sent[..]).unwrap();
        // Message-Authenticator first, and valid.
        assert_eq!(
            request.attributes().next().unwrap().typ(),
            attr_type::MESSAGE_AUTHENTICATOR
        );
        assert_eq!(
            request.verify_request(&Secret::new(SECRET)),
            Ok(Signature::Signed)
        );
        let mut out = [0u8; MAX_PASSWORD_LEN];
        let password = recover_password(
            request.user_password().unwrap(),
            &Secret::new(SECRET),
            &request.authenticator(),
            &mut out,
        )
        .unwrap();
        assert_eq!(password, b"s3cret pass");
        assert_eq!(request.user_name(), Some(&b"alice"[..]));
        assert_eq!(request.nas_identifier(), Some(&b"gateway-7"[..]));
        // No configured NAS-IP: the socket's source address.
        assert_eq!(request.nas_ip_address(), Ok(Some(Ipv4Addr::LOCALHOST)));
    }

    #[tokio::test]
    async fn chap_request_verifies_against_the_password() {
        let server = responder(Box::new(|req, _| {
            let packet = Packet::new_checked(req).unwrap();
            let (ident, response) = packet.chap_password().unwrap().unwrap();
            let challenge = packet.chap_challenge().unwrap();
            let ok = radius::verify_chap(ident, response, b"chap-pass", challenge);
            let code = if ok {
                Code::AccessAccept
            } else {
                Code::AccessReject
            };
            vec![reply(req, code, SECRET, false)]
        }))
        .await;
        let client = client(server.addr, AuthProtocol::Chap, Requirement::No);
        let good = client
            .authenticate("bob", b"chap-pass", &options(1000, 1))
            .await
            .unwrap();
        assert!(matches!(good, Answer::Accept(_)));
        let bad = client
            .authenticate("bob", b"wrong", &options(1000, 1))
            .await
            .unwrap();
        assert!(matches!(bad, Answer::Reject(_)));
        // CHAP requests carry no User-Password.
        let sent = lock(&server.requests)[0].clone();
        assert!(
            Packet::new_checked(&sent[..])
                .unwrap()
                .user_password()
                .is_none()
        );
    }

    #[tokio::test]
    async fn chap_responses_pass_through_unchanged() {
        let server = responder(Box::new(|req, _| {
            let packet = Packet::new_checked(req).unwrap();
            let (ident, response) = packet.chap_password().unwrap().unwrap();
            let challenge = packet.chap_challenge().unwrap();
            let ok = radius::verify_chap(ident, response, b"their-pass", challenge);
            let code = if ok {
                Code::AccessAccept
            } else {
                Code::AccessReject
            };
            vec![reply(req, code, SECRET, true)]
        }))
        .await;
        // Configured for PAP: a pass-through CHAP response goes out as CHAP all the same.
        let client = client(server.addr, AuthProtocol::Pap, Requirement::Yes);
        let challenge = [0x5a; 16];
        let response = chap_response(7, b"their-pass", &challenge);
        let chap = ChapProof {
            ident: 7,
            response: &response,
            challenge: &challenge,
        };
        let good = client
            .authenticate_chap("carol", &chap, &options(1000, 1))
            .await;
        assert!(matches!(good, Ok(Answer::Accept(_))), "{good:?}");
        let wrong = chap_response(7, b"not-it", &challenge);
        let bad = ChapProof {
            response: &wrong,
            ..chap
        };
        let rejected = client
            .authenticate_chap("carol", &bad, &options(1000, 1))
            .await;
        assert!(matches!(rejected, Ok(Answer::Reject(_))), "{rejected:?}");
        let sent = lock(&server.requests)[0].clone();
        let request = Packet::new_checked(&sent[..]).unwrap();
        assert_eq!(request.chap_password(), Ok(Some((7, &response))));
        assert_eq!(request.chap_challenge(), Some(&challenge[..]));
        assert!(request.user_password().is_none());
    }

    #[tokio::test]
    async fn forged_unsigned_reply_is_dropped_and_the_real_one_wins() {
        // First an unsigned Access-Accept with a correct Response Authenticator (what a
        // BlastRADIUS forgery looks like), then the server's signed Access-Reject.
        let server = responder(Box::new(|req, _| {
            vec![
                reply(req, Code::AccessAccept, SECRET, false),
                reply(req, Code::AccessReject, SECRET, true),
            ]
        }))
        .await;
        let client = client(server.addr, AuthProtocol::Pap, Requirement::Yes);
        let answer = client
            .authenticate("alice", b"pw", &options(1000, 1))
            .await
            .unwrap();
        assert!(matches!(answer, Answer::Reject(_)), "{answer:?}");
        assert_eq!(dropped(server.addr), 1);
    }

    #[tokio::test]
    async fn auto_requires_signatures_once_the_server_signed() {
        let server = responder(Box::new(|req, nth| {
            // Signed the first time, unsigned (forged) afterwards.
            vec![reply(req, Code::AccessAccept, SECRET, nth == 0)]
        }))
        .await;
        let client = client(server.addr, AuthProtocol::Pap, Requirement::Auto);
        let first = client.authenticate("alice", b"pw", &options(300, 1)).await;
        assert!(matches!(first, Ok(Answer::Accept(_))));
        let second = client.authenticate("alice", b"pw", &options(300, 1)).await;
        assert!(
            matches!(second, Err(ClientError::Timeout { .. })),
            "{second:?}"
        );
        assert_eq!(dropped(server.addr), 1);
    }

    #[tokio::test]
    async fn auto_accepts_a_server_that_never_signs() {
        let server = responder(Box::new(|req, _| {
            vec![reply(req, Code::AccessAccept, SECRET, false)]
        }))
        .await;
        let client = client(server.addr, AuthProtocol::Pap, Requirement::Auto);
        for _ in 0..3 {
            let answer = client.authenticate("alice", b"pw", &options(500, 1)).await;
            assert!(matches!(answer, Ok(Answer::Accept(_))));
        }
        // All three unsigned replies were taken, none dropped.
        assert_eq!(dropped(server.addr), 0);
    }

    #[tokio::test]
    async fn wrong_secret_never_produces_an_answer() {
        let server = responder(Box::new(|req, _| {
            vec![
                reply(req, Code::AccessAccept, b"not-the-secret", true),
                reply(req, Code::AccessAccept, b"not-the-secret", false),
                b"garbage".to_vec(),
                vec![0u8; 3],
            ]
        }))
        .await;
        for requirement in [Requirement::Yes, Requirement::No, Requirement::Auto] {
            let before = dropped(server.addr);
            let client = client(server.addr, AuthProtocol::Pap, requirement);
            let answer = client.authenticate("alice", b"pw", &options(200, 2)).await;
            assert!(
                matches!(answer, Err(ClientError::Timeout { tries: 2, .. })),
                "{answer:?}"
            );
            assert!(dropped(server.addr) - before >= 4);
        }
    }

    #[tokio::test]
    async fn retransmits_the_identical_request() {
        let server = responder(Box::new(|req, nth| {
            if nth < 2 {
                vec![]
            } else {
                vec![reply(req, Code::AccessAccept, SECRET, true)]
            }
        }))
        .await;
        let client = client(server.addr, AuthProtocol::Pap, Requirement::Yes);
        let answer = client.authenticate("alice", b"pw", &options(150, 3)).await;
        assert!(matches!(answer, Ok(Answer::Accept(_))));
        let sent = lock(&server.requests).clone();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0], sent[1]);
        assert_eq!(sent[1], sent[2]);
        assert_eq!(
            crate::telemetry::testing::counter(
                "portcullis_upstream_retransmits_total",
                &server.addr.to_string()
            ),
            2
        );
    }

    #[tokio::test]
    async fn silent_server_gets_exactly_tries_sends() {
        let server = responder(Box::new(|_, _| vec![])).await;
        let client = client(server.addr, AuthProtocol::Pap, Requirement::Auto);
        let answer = client.authenticate("alice", b"pw", &options(100, 4)).await;
        assert!(matches!(answer, Err(ClientError::Timeout { tries: 4, .. })));
        assert_eq!(lock(&server.requests).len(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_logins_in_flight_use_more_sockets() {
        // Hold every reply until 600 requests have arrived, so all are in flight at once.
        let pending = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pending);
        let server = responder(Box::new(move |req, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            vec![reply(req, Code::AccessAccept, SECRET, true)]
        }))
        .await;
        let client = Arc::new(client(server.addr, AuthProtocol::Pap, Requirement::Yes));
        let mut tasks = Vec::new();
        for i in 0..600 {
            let client = Arc::clone(&client);
            tasks.push(tokio::spawn(async move {
                client
                    .authenticate(&format!("user{i}"), b"pw", &options(500, 10))
                    .await
            }));
        }
        for task in tasks {
            assert!(matches!(task.await.unwrap(), Ok(Answer::Accept(_))));
        }
        assert_eq!(pending.load(Ordering::SeqCst), 600);
        // Identifiers are unique per socket, so 600 concurrent requests need at least three
        // sockets only if they overlapped; at most 64 sockets in any case.
        let sockets = lock(&client.sockets).len();
        assert!((1..=MAX_SOCKETS).contains(&sockets));
    }

    #[tokio::test]
    async fn identifiers_in_flight_are_unique_per_socket() {
        // A server that never answers, so every lease stays taken.
        let server = responder(Box::new(|_, _| vec![])).await;
        let client = Arc::new(client(server.addr, AuthProtocol::Pap, Requirement::Yes));
        let mut leases = Vec::new();
        for _ in 0..300 {
            leases.push(client.lease_udp().unwrap());
        }
        assert_eq!(lock(&client.sockets).len(), 2);
        let mut first: Vec<u8> = leases
            .iter()
            .filter(|l| Arc::ptr_eq(&l.channel, &lock(&client.sockets)[0]))
            .map(|l| l.id)
            .collect();
        first.sort_unstable();
        first.dedup();
        assert_eq!(first.len(), 256);
        drop(leases);
        // Released: the first socket serves again.
        let lease = client.lease_udp().unwrap();
        assert!(Arc::ptr_eq(&lease.channel, &lock(&client.sockets)[0]));
    }

    #[tokio::test]
    async fn a_datagram_left_for_a_finished_request_does_not_reach_the_next_one() {
        // A "server" that sends one datagram for Identifier 0 while it is leased.
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = client(
            server.local_addr().unwrap(),
            AuthProtocol::Pap,
            Requirement::No,
        );
        let mut lease = client.lease_udp().unwrap();
        assert_eq!(lease.id, 0);
        let Transport::Udp(socket) = &lease.channel.transport else {
            panic!("a UDP channel");
        };
        let to = socket.local_addr().unwrap();
        server
            .send_to(
                &[
                    2, 0, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                ],
                to,
            )
            .unwrap();
        // Delivered to the lease's channel (the receiver task dispatched it)...
        let first = tokio::time::timeout(Duration::from_secs(5), lease.recv()).await;
        assert!(matches!(first, Ok(Some(ref d)) if d.len() == 20));
        // ...and a second one that nobody reads before the request ends.
        server
            .send_to(
                &[2, 0, 0, 20, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9],
                to,
            )
            .unwrap();
        let mut polls = 0;
        while lease.replies.as_ref().is_some_and(|r| r.is_empty()) && polls < 500 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            polls += 1;
        }
        assert!(lease.replies.as_ref().is_some_and(|r| !r.is_empty()));
        drop(lease);
        // Identifiers rotate: hold 1..=255 so that the next lease gets 0 again.
        let held: Vec<Lease> = (1..256).map(|_| client.lease_udp().unwrap()).collect();
        assert_eq!(held.last().map(|l| l.id), Some(255));
        let mut again = client.lease_udp().unwrap();
        assert_eq!(again.id, 0);
        assert!(again.replies.as_mut().unwrap().try_recv().is_err());
    }

    #[tokio::test]
    async fn configured_nas_ip_and_oversized_password() {
        let server = responder(Box::new(|req, _| {
            vec![reply(req, Code::AccessReject, SECRET, true)]
        }))
        .await;
        let client = client(server.addr, AuthProtocol::Pap, Requirement::Yes);
        let mut opts = options(1000, 1);
        opts.nas_ip = Some(IpAddr::V6(Ipv6Addr::LOCALHOST));
        opts.nas_identifier = None;
        let answer = client.authenticate("alice", b"pw", &opts).await.unwrap();
        assert!(matches!(answer, Answer::Reject(_)));
        let sent = lock(&server.requests)[0].clone();
        let request = Packet::new_checked(&sent[..]).unwrap();
        assert_eq!(request.nas_identifier(), None);
        let v6 = request.find(attr_type::NAS_IPV6_ADDRESS).unwrap();
        assert_eq!(v6.value(), Ipv6Addr::LOCALHOST.octets());
        let too_long = client.authenticate("alice", &[b'x'; 129], &opts).await;
        assert!(matches!(too_long, Err(ClientError::Encode(_))));
    }
}
