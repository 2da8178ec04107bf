//! The RADIUS front-end: a RADIUS server (RFC 2865) whose answers come from the
//! authentication sequence, so that RADIUS clients (pam_radius_auth, VPNs, radclient) log
//! users in through portcullis.
//!
//! Per datagram, on the socket's receive loop:
//! 1. the client is the configured one whose address or network contains the source address,
//!    longest prefix first; an unknown source is dropped;
//! 2. the packet is parsed with [`Packet::new_checked`]; a malformed one is dropped;
//! 3. Status-Server (RFC 5997) is answered with a signed Access-Accept, no walk;
//! 4. Access-Request: the Message-Authenticator is verified when present and required as the
//!    client's `require_message_authenticator` says; Proxy-State without one is dropped
//!    (BlastRADIUS, CVE-2024-3596);
//! 5. duplicates (RFC 5080 §2.2.2) are answered from the cache, or dropped while the walk of
//!    the original is still running;
//! 6. PAP: the User-Password is recovered and the sequence walked in a task of its own, at
//!    most `max_in_flight` at once (above that the request is dropped; the client
//!    retransmits). CHAP: the CHAP-Password and challenge are passed unchanged to the
//!    upstream RADIUS servers, the only ones that can check them (the gateway keeps password
//!    hashes; TACACS+ is not asked); without a RADIUS server in the sequence the request is
//!    rejected with a Reply-Message saying so.
//!
//! With MFA, a user the policy makes owe a second factor gets an Access-Challenge instead of
//! an Access-Accept ([`challenge`]).
//!
//! Every reply starts with a Message-Authenticator and echoes the Proxy-State attributes in
//! order. Every drop is counted by reason in [`Counters`]. The live configuration is read per
//! request, so clients and settings changed through the management API apply at once.

pub mod challenge;
pub mod dedup;
pub mod radsec;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_config::{IpNet, RequireMessageAuthenticator, RoleAttribute};
use portcullis_protocol::radius::{
    AUTHENTICATOR_LEN, Builder, Code, MAX_ATTRIBUTE_VALUE_LEN, MAX_PACKET_LEN, MAX_PASSWORD_LEN,
    Packet, Secret, Signature, attr_type, recover_password, v11,
};
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::ChapProof;
use crate::live::Live;
use crate::login::dialogue::{Dialogues, Party};
use crate::login::radius;
use crate::login::{self, Attempt, Credential, Door, Pipeline, Refusal, Settled};
use crate::sync::InFlight;
use crate::sync::lock;
use dedup::{Begin, Cache, Key};

/// The Reply-Message of a CHAP Access-Request when no RADIUS server could check it.
pub const CHAP_UNSUPPORTED: &str =
    "CHAP is checked only by upstream RADIUS servers, and none is configured";
/// The Reply-Message of a wrong password or an unknown user; the two look the same.
pub const INVALID_CREDENTIALS: &str = "Invalid user name or password";
/// The Reply-Message when the user was accepted but no role applies.
pub const NO_ROLE_MAPPED: &str = "No role mapped";
/// The Reply-Message when no remote server answered.
pub const SERVERS_UNAVAILABLE: &str = "Authentication servers unavailable";
/// What the log line of every sequence walk starts with.
pub const WALK_LOG: &str = "RADIUS front-end walk";
/// The longest value of a vendor sub-attribute: 253 minus Vendor-Id (4), type and length.
const MAX_VENDOR_VALUE_LEN: usize = MAX_ATTRIBUTE_VALUE_LEN - 6;

/// Reads the live configuration and engine.
pub type CurrentFn = Arc<dyn Fn() -> Arc<Live> + Send + Sync>;

/// Why a datagram got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The source address matches no configured client.
    UnknownClient,
    /// The datagram is not a well-formed RADIUS packet (RFC 2865 §3).
    Malformed,
    /// A code the front-end does not serve (accounting, replies, ...).
    UnsupportedCode,
    /// A Message-Authenticator that does not verify: wrong secret or forged (RFC 3579 §3.2).
    BadMessageAuthenticator,
    /// No Message-Authenticator from a client that must send one (RFC 3579 §3.2, RFC 5997 §3).
    MissingMessageAuthenticator,
    /// Proxy-State without Message-Authenticator (BlastRADIUS, CVE-2024-3596).
    UnsignedProxyState,
    /// A User-Password that is not 16..=128 octets in blocks of 16 (RFC 2865 §5.2).
    BadPassword,
    /// A retransmission of a request whose walk is still running (RFC 5080 §2.2.2).
    DuplicateInFlight,
    /// `max_in_flight` walks were already running.
    Overloaded,
    /// The reply could not be built or sent.
    ReplyFailed,
}

impl DropReason {
    /// Every reason, in [`Counters::dropped`] order.
    pub const ALL: [DropReason; 10] = [
        DropReason::UnknownClient,
        DropReason::Malformed,
        DropReason::UnsupportedCode,
        DropReason::BadMessageAuthenticator,
        DropReason::MissingMessageAuthenticator,
        DropReason::UnsignedProxyState,
        DropReason::BadPassword,
        DropReason::DuplicateInFlight,
        DropReason::Overloaded,
        DropReason::ReplyFailed,
    ];

    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::UnknownClient => "unknown_client",
            DropReason::Malformed => "malformed",
            DropReason::UnsupportedCode => "unsupported_code",
            DropReason::BadMessageAuthenticator => "bad_message_authenticator",
            DropReason::MissingMessageAuthenticator => "missing_message_authenticator",
            DropReason::UnsignedProxyState => "unsigned_proxy_state",
            DropReason::BadPassword => "bad_password",
            DropReason::DuplicateInFlight => "duplicate_in_flight",
            DropReason::Overloaded => "overloaded",
            DropReason::ReplyFailed => "reply_failed",
        }
    }

    fn index(self) -> usize {
        DropReason::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or_default()
    }
}

/// What the front-end has done since it started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams received.
    pub requests: AtomicU64,
    /// Access-Accepts sent after a walk (not counting Status-Server or resent replies).
    pub accepts: AtomicU64,
    /// Access-Rejects sent (not counting resent replies).
    pub rejects: AtomicU64,
    /// Sequence walks started.
    pub walks: AtomicU64,
    /// Access-Challenges sent for a second factor.
    pub challenges: AtomicU64,
    /// Status-Server requests answered.
    pub status_server: AtomicU64,
    /// Retransmissions recognised, answered from the cache or dropped while walking.
    pub duplicates: AtomicU64,
    /// Datagrams dropped, by [`DropReason`] in [`DropReason::ALL`] order.
    pub dropped: [AtomicU64; DropReason::ALL.len()],
    /// RadSec connections whose client was identified.
    pub connections: AtomicU64,
    /// RadSec connections closed before any packet: over `max_connections`, a failed or
    /// timed-out handshake, no matching client, or no usable listener certificate.
    pub connections_refused: AtomicU64,
}

impl Counters {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped
            .get(reason.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn drop(&self, reason: DropReason) {
        crate::telemetry::frontend_dropped(reason.name());
        if let Some(counter) = self.dropped.get(reason.index()) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One configured client, with its HMAC key precomputed.
#[derive(Debug)]
struct Client {
    id: u32,
    name: Arc<str>,
    /// Its `[mfa]` application, `radius:<name>`.
    application: Arc<str>,
    network: IpNet,
    secret: Secret<Vec<u8>>,
    require: RequireMessageAuthenticator,
    /// For `auto`: set once the client has sent a valid Message-Authenticator. Shared with
    /// the previous table when the configuration changes and the client did not.
    signed: Arc<AtomicBool>,
    /// How a RadSec client's certificate is checked; `None`: a UDP client.
    tls: Option<radsec::ClientTls>,
}

impl Client {
    fn must_sign(&self) -> bool {
        match self.require {
            RequireMessageAuthenticator::Yes => true,
            RequireMessageAuthenticator::No => false,
            RequireMessageAuthenticator::Auto => self.signed.load(Ordering::Relaxed),
        }
    }
}

/// The clients and settings of one live configuration.
#[derive(Debug)]
struct Table {
    /// The configuration the table was built from.
    live: Arc<Live>,
    clients: Vec<Arc<Client>>,
    role_attribute: RoleAttribute,
    /// What the RadSec listeners accept connections with; `None` when no certificate or no
    /// RadSec client is configured (connections are then closed at once).
    radsec: Option<Arc<rustls::ServerConfig>>,
}

impl Table {
    fn build(live: Arc<Live>, previous: Option<&Table>) -> Table {
        let frontend = &live.config.radius_frontend;
        let clients = frontend
            .clients
            .iter()
            .filter_map(|client| {
                let network = client.network()?;
                let tls = match radsec::ClientTls::build(client) {
                    Ok(tls) => tls,
                    Err(e) => {
                        tracing::warn!(client = %client.name, error = %e, "RadSec client left out");
                        return None;
                    }
                };
                let secret = client.shared_secret().to_vec();
                let signed = previous
                    .and_then(|table| {
                        table.clients.iter().find(|old| {
                            old.id == client.id
                                && old.network == network
                                && old.secret.expose() == secret.as_slice()
                        })
                    })
                    .map_or_else(
                        || Arc::new(AtomicBool::new(false)),
                        |old| Arc::clone(&old.signed),
                    );
                Some(Arc::new(Client {
                    id: client.id,
                    name: client.name.as_str().into(),
                    application: login::radius_application(&client.name).into(),
                    network,
                    secret: Secret::new(secret),
                    require: client.require_message_authenticator,
                    signed,
                    tls,
                }))
            })
            .collect::<Vec<_>>();
        let radsec = radsec::server_config(frontend, &clients);
        Table {
            role_attribute: frontend.role_attribute,
            clients,
            radsec,
            live,
        }
    }

    /// The UDP client whose network contains `ip`, the longest prefix winning.
    fn find(&self, ip: IpAddr) -> Option<&Arc<Client>> {
        self.clients
            .iter()
            .filter(|client| client.tls.is_none() && client.network.contains(ip))
            .max_by_key(|client| client.network.prefix())
    }
}

/// The RADIUS front-end: shared by the receive loops of every socket and the walks they
/// start.
pub struct Frontend {
    current: CurrentFn,
    table: Mutex<Arc<Table>>,
    dedup: Mutex<Cache>,
    in_flight: Arc<Semaphore>,
    /// The `max_in_flight` the semaphore was sized for.
    permits: Mutex<usize>,
    counters: Counters,
    /// Second factors (Access-Challenge); none: the sequence's answer alone.
    mfa: Option<crate::mfa::MfaStore>,
    /// Where failed logins are counted ([`crate::throttle`]); none: not throttled.
    state: Option<crate::state::StateDb>,
    /// The walks in flight, which a stop drains.
    walks: InFlight,
    /// Upstream challenges passed on to clients, waiting for their answers.
    dialogues: Dialogues,
    /// RadSec connections open now.
    connections: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Frontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frontend")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// What to do with a request after its synchronous checks.
// A walk is moved once, into its task, which allocates anyway; boxing it would cost one more
// allocation per request.
#[allow(clippy::large_enum_variant)]
enum Action {
    /// Nothing: the datagram is dropped.
    Drop(DropReason),
    /// Send these octets (a cached reply, or one built without a walk).
    Send(Arc<[u8]>),
    /// Walk the sequence, then reply.
    Walk(Walk),
}

/// A request that needs a sequence walk.
struct Walk {
    key: Key,
    live: Arc<Live>,
    client: Arc<Client>,
    role_attribute: RoleAttribute,
    /// The User-Name, checked to be UTF-8.
    user: Inline<MAX_ATTRIBUTE_VALUE_LEN>,
    proof: WalkProof,
    /// The State attribute: the answer to an Access-Challenge.
    state: Option<Vec<u8>>,
    request: RequestInfo,
    permit: OwnedSemaphorePermit,
    origin: crate::throttle::Origin,
}

/// Up to `N` octets held inline, so copying a field out of the receive buffer allocates
/// nothing. `Debug` shows the length only: these hold user names and passwords.
#[derive(Clone, Copy)]
struct Inline<const N: usize> {
    len: usize,
    bytes: [u8; N],
}

impl<const N: usize> Inline<N> {
    /// `value`, or `None` when it is longer than `N`.
    fn new(value: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; N];
        bytes.get_mut(..value.len())?.copy_from_slice(value);
        Some(Inline {
            len: value.len(),
            bytes,
        })
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl<const N: usize> std::fmt::Debug for Inline<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} octets]", self.len)
    }
}

/// What the request proves, copied out of the receive buffer.
#[derive(Debug)]
enum WalkProof {
    /// The recovered User-Password.
    Password(Inline<MAX_PASSWORD_LEN>),
    /// CHAP-Password and its challenge (CHAP-Challenge, or the Request Authenticator).
    Chap {
        ident: u8,
        response: [u8; 16],
        challenge: Inline<MAX_ATTRIBUTE_VALUE_LEN>,
    },
}

/// What a reply needs from its request, copied out of the receive buffer.
#[derive(Debug, Clone)]
struct RequestInfo {
    /// RADIUS/1.1 (RFC 9765): `authenticator` starts with the Token, and the reply is not
    /// signed.
    v11: bool,
    identifier: u8,
    authenticator: [u8; AUTHENTICATOR_LEN],
    proxy_states: Vec<Vec<u8>>,
}

/// The body of a reply.
enum Reply<'a> {
    /// Access-Accept with these roles.
    Accept(&'a [String], RoleAttribute),
    /// Access-Accept to a Status-Server.
    Alive,
    /// Access-Reject with this Reply-Message.
    Reject(Cow<'a, str>),
    /// Access-Challenge with this State and a prompt (RFC 2865 §4.4).
    Challenge(&'a [u8], &'a str),
    /// Access-Challenge passing on an upstream server's: this State (the gateway's own) and
    /// the server's Reply-Messages.
    Relay(&'a [u8], &'a [String]),
}

impl Frontend {
    /// A front-end reading its configuration through `current`; with `mfa`, it asks users
    /// whom the MFA policy applies to for a second factor (Access-Challenge); with `state`, it
    /// counts failed logins and refuses locked users ([`crate::throttle`]).
    pub fn new(
        current: CurrentFn,
        mfa: Option<crate::mfa::MfaStore>,
        state: Option<crate::state::StateDb>,
    ) -> Arc<Frontend> {
        let live = current();
        let frontend = &live.config.radius_frontend;
        let max_in_flight = usize::try_from(frontend.max_in_flight).unwrap_or(1).max(1);
        let dedup = usize::try_from(frontend.dedup_cache).unwrap_or(1);
        let dialogues = state
            .as_ref()
            .map_or_else(Dialogues::new, Dialogues::with_state);
        Arc::new(Frontend {
            table: Mutex::new(Arc::new(Table::build(Arc::clone(&live), None))),
            dedup: Mutex::new(Cache::new(dedup)),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            permits: Mutex::new(max_in_flight),
            counters: Counters::default(),
            state,
            current,
            mfa,
            walks: InFlight::new(),
            dialogues,
            connections: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// What the front-end has done so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Serves `socket` until `stop` resolves; the walks it started go on ([`Frontend::drain`]
    /// waits for them).
    pub async fn serve(
        self: Arc<Self>,
        socket: UdpSocket,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let socket = Arc::new(socket);
        // One octet more than RADIUS allows, so an oversized datagram is seen as such.
        let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
        let mut stop = std::pin::pin!(stop);
        loop {
            let received = tokio::select! {
                biased;
                () = &mut stop => return,
                received = socket.recv_from(&mut buf) => received,
            };
            let (len, source) = match received {
                Ok(received) => received,
                Err(e) => {
                    tracing::warn!(error = %e, "RADIUS front-end: receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let datagram = buf.get(..len).unwrap_or_default();
            match self.handle(datagram, source) {
                Action::Drop(reason) => {
                    tracing::debug!(%source, reason = reason.name(), "RADIUS front-end: dropped");
                }
                Action::Send(reply) => {
                    if let Err(e) = socket.send_to(&reply, source).await {
                        self.counters.drop(DropReason::ReplyFailed);
                        tracing::warn!(%source, error = %e, "RADIUS front-end: send failed");
                    }
                }
                Action::Walk(walk) => {
                    self.spawn_walk(walk, Sink::Udp(Arc::clone(&socket)), source);
                }
            }
        }
    }

    /// Runs `walk` in a task of its own, which replies through `sink`. Its future (4.5 KiB)
    /// is boxed first: tokio copies a task's future by value when it is spawned and again
    /// when it finishes, which cost more than the allocation (1.9 and 1.7 % of the CPU).
    fn spawn_walk(self: &Arc<Self>, walk: Walk, sink: Sink, source: SocketAddr) {
        // A stop waits (bounded) for the walks in flight.
        let in_flight = self.walks.enter();
        tokio::spawn(Box::pin(
            Arc::clone(self).walk(walk, sink, source, in_flight),
        ));
    }

    /// Waits until no walk is in flight, or `timeout`; returns how many were still running.
    pub async fn drain(&self, timeout: Duration) -> usize {
        self.walks.drain(timeout).await
    }

    /// The table for the live configuration, rebuilt when it changed.
    fn table(&self) -> Arc<Table> {
        let live = (self.current)();
        let mut table = lock(&self.table);
        if !Arc::ptr_eq(&table.live, &live) {
            let frontend = &live.config.radius_frontend;
            lock(&self.dedup).set_capacity(usize::try_from(frontend.dedup_cache).unwrap_or(1));
            self.resize_in_flight(usize::try_from(frontend.max_in_flight).unwrap_or(1));
            *table = Arc::new(Table::build(live, Some(&table)));
        }
        Arc::clone(&table)
    }

    /// Follows a changed `max_in_flight`. Permits held by running walks cannot be taken back;
    /// a decrease takes effect as they come back.
    fn resize_in_flight(&self, wanted: usize) {
        let wanted = wanted.max(1);
        let mut permits = lock(&self.permits);
        if wanted > *permits {
            self.in_flight.add_permits(wanted - *permits);
        } else if wanted < *permits {
            let forgotten = self.in_flight.forget_permits(*permits - wanted);
            *permits -= forgotten;
            return;
        }
        *permits = wanted;
    }

    /// The synchronous part of serving one datagram, drops counted. Never panics, whatever
    /// the octets.
    fn handle(&self, datagram: &[u8], source: SocketAddr) -> Action {
        bump(&self.counters.requests);
        crate::telemetry::frontend_packet("request");
        let action = self.classify(datagram, source);
        if let Action::Drop(reason) = &action {
            self.counters.drop(*reason);
        }
        action
    }

    /// Decides what to do with one datagram.
    fn classify(&self, datagram: &[u8], source: SocketAddr) -> Action {
        let table = self.table();
        let Some(client) = table.find(source.ip()) else {
            return Action::Drop(DropReason::UnknownClient);
        };
        self.classify_from(&table, client, datagram, source, false)
    }

    /// Decides what to do with one packet of `client`, whichever way it came; `v11`: it came
    /// on a RADIUS/1.1 connection (RFC 9765), where nothing is signed with the secret.
    fn classify_from(
        &self,
        table: &Table,
        client: &Arc<Client>,
        datagram: &[u8],
        source: SocketAddr,
        v11: bool,
    ) -> Action {
        let Ok(packet) = Packet::new_checked(datagram) else {
            return Action::Drop(DropReason::Malformed);
        };
        let code = packet.code();
        if !matches!(code, Code::AccessRequest | Code::StatusServer) {
            return Action::Drop(DropReason::UnsupportedCode);
        }
        // RFC 3579 §3.2: an invalid Message-Authenticator means the packet is silently
        // discarded. RFC 9765 §5.2: in RADIUS/1.1 there is none to check (TLS protects the
        // packet), and one that is sent anyway is ignored.
        let signature = if v11 {
            Signature::Signed
        } else {
            match packet.verify_request(&client.secret) {
                Ok(signature) => signature,
                Err(_) => return Action::Drop(DropReason::BadMessageAuthenticator),
            }
        };
        let proxied = packet.find(attr_type::PROXY_STATE).is_some();
        match signature {
            Signature::Signed if v11 => {}
            Signature::Signed => client.signed.store(true, Ordering::Relaxed),
            // RFC 5997 §3: Status-Server packets MUST contain a Message-Authenticator.
            Signature::Unsigned if code == Code::StatusServer => {
                return Action::Drop(DropReason::MissingMessageAuthenticator);
            }
            // BlastRADIUS (CVE-2024-3596): an attacker grows a Proxy-State to forge the MD5
            // collision; a proxied request must be signed.
            Signature::Unsigned if proxied => {
                return Action::Drop(DropReason::UnsignedProxyState);
            }
            Signature::Unsigned if client.must_sign() => {
                return Action::Drop(DropReason::MissingMessageAuthenticator);
            }
            Signature::Unsigned => {}
        }
        let request = RequestInfo {
            v11,
            identifier: packet.identifier(),
            authenticator: packet.authenticator(),
            proxy_states: packet
                .find_all(attr_type::PROXY_STATE)
                .map(<[u8]>::to_vec)
                .collect(),
        };
        if code == Code::StatusServer {
            // RFC 5997 §3: no duplicate detection is needed, the answer is always the same.
            bump(&self.counters.status_server);
            crate::telemetry::frontend_packet("status_server");
            return match build_reply(&request, &client.secret, &Reply::Alive) {
                Ok(reply) => Action::Send(reply),
                Err(_) => Action::Drop(DropReason::ReplyFailed),
            };
        }

        let key = Key {
            source,
            identifier: request.identifier,
            authenticator: request.authenticator,
        };
        match lock(&self.dedup).begin(key) {
            Begin::New => {}
            Begin::InFlight => {
                bump(&self.counters.duplicates);
                crate::telemetry::frontend_packet("duplicate");
                return Action::Drop(DropReason::DuplicateInFlight);
            }
            Begin::Done(reply) => {
                bump(&self.counters.duplicates);
                crate::telemetry::frontend_packet("duplicate");
                return Action::Send(reply);
            }
        }
        let action = self.access_request(&packet, client, table, key, request);
        match &action {
            Action::Drop(_) => lock(&self.dedup).abandon(&key),
            Action::Send(reply) => lock(&self.dedup).finish(key, reply),
            Action::Walk(_) => {}
        }
        action
    }

    /// Checks an Access-Request whose signature and duplicate status are settled: replies
    /// at once when no walk can help, else prepares the walk.
    fn access_request(
        &self,
        packet: &Packet<&[u8]>,
        client: &Arc<Client>,
        table: &Table,
        key: Key,
        request: RequestInfo,
    ) -> Action {
        let reject = |message: &str| {
            bump(&self.counters.rejects);
            match build_reply(&request, &client.secret, &Reply::Reject(message.into())) {
                Ok(reply) => Action::Send(reply),
                Err(_) => Action::Drop(DropReason::ReplyFailed),
            }
        };
        let user = match packet.user_name() {
            Some(name) if !name.is_empty() && std::str::from_utf8(name).is_ok() => {
                Inline::new(name)
            }
            _ => None,
        };
        let Some(user) = user else {
            return reject("User-Name is missing or not UTF-8");
        };
        let proof = match (packet.user_password(), packet.chap_password()) {
            // RFC 9765 §5.1.1: over RADIUS/1.1 the attribute holds the password itself.
            (Some(password), _) if request.v11 => match Inline::new(password) {
                Some(password) => WalkProof::Password(password),
                None => return Action::Drop(DropReason::BadPassword),
            },
            // RFC 9765 §5.1.2: the Token is no challenge; CHAP needs CHAP-Challenge.
            (None, Ok(Some(_))) if request.v11 && packet.chap_challenge().is_none() => {
                return reject("CHAP-Password without CHAP-Challenge (RFC 9765)");
            }
            (Some(hidden), _) => {
                let mut out = [0u8; MAX_PASSWORD_LEN];
                match recover_password(hidden, &client.secret, &request.authenticator, &mut out) {
                    Ok(password) => match Inline::new(password) {
                        Some(password) => WalkProof::Password(password),
                        None => return Action::Drop(DropReason::BadPassword),
                    },
                    Err(_) => return Action::Drop(DropReason::BadPassword),
                }
            }
            // RFC 2865 §5.3: only a holder of the password can check a CHAP response; the
            // gateway keeps argon2 hashes, so only upstream RADIUS servers can.
            (None, Ok(Some(_))) if !table.live.engine.checks_chap() => {
                let user = std::str::from_utf8(user.as_slice()).unwrap_or_default();
                tracing::info!(client = %client.name, user, "RADIUS front-end: CHAP rejected");
                return reject(CHAP_UNSUPPORTED);
            }
            (None, Ok(Some((ident, response)))) => {
                // Without a CHAP-Challenge the Request Authenticator is the challenge.
                let challenge = packet
                    .chap_challenge()
                    .unwrap_or(&request.authenticator[..]);
                match Inline::new(challenge) {
                    Some(challenge) => WalkProof::Chap {
                        ident,
                        response: *response,
                        challenge,
                    },
                    None => return Action::Drop(DropReason::BadPassword),
                }
            }
            (None, Err(_)) => return Action::Drop(DropReason::BadPassword),
            (None, Ok(None)) => return reject("User-Password is missing"),
        };
        let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            return Action::Drop(DropReason::Overloaded);
        };
        Action::Walk(Walk {
            key,
            live: Arc::clone(&table.live),
            client: Arc::clone(client),
            role_attribute: table.role_attribute,
            user,
            proof,
            state: packet.state().map(<[u8]>::to_vec),
            request,
            permit,
            // RFC 2865 §5.31: Calling-Station-Id (31), the end user's address as the NAS sees it.
            origin: crate::throttle::Origin::relayed(packet.find(31).map(|a| a.value())),
        })
    }

    /// Walks the sequence for one request, replies and remembers the reply.
    /// `in_flight` is held until the reply is sent.
    async fn walk(
        self: Arc<Self>,
        walk: Walk,
        sink: Sink,
        source: SocketAddr,
        _in_flight: crate::sync::InFlightGuard,
    ) {
        // Fields are read in place, not moved out: copies would be held in the future
        // beside the original.
        let Walk {
            key,
            ref live,
            ref client,
            role_attribute,
            ref user,
            ref proof,
            ref state,
            ref request,
            permit,
            origin,
        } = walk;
        let user = std::str::from_utf8(user.as_slice()).unwrap_or_default();
        let at = radius::Origin {
            client_id: client.id,
            client_name: Arc::clone(&client.name),
            application: Arc::clone(&client.application),
            source,
        };
        let chap;
        // A State of an upstream challenge passed on to this client at this address.
        let dialogue = state.as_deref().and_then(|state| {
            let party = Party::Radius {
                client_id: client.id,
                source: source.ip(),
            };
            self.dialogues.take(state, party)
        });
        let credential = match (&proof, &state) {
            (WalkProof::Password(response), Some(_)) if dialogue.is_some() => match &dialogue {
                Some(dialogue) => Credential::Relay {
                    dialogue,
                    response: response.as_slice(),
                },
                None => Credential::Password(response.as_slice()),
            },
            (WalkProof::Password(code), Some(state)) => Credential::ChallengeAnswer {
                state,
                code: code.as_slice(),
            },
            (WalkProof::Password(password), None) => Credential::Password(password.as_slice()),
            (
                WalkProof::Chap {
                    ident,
                    response,
                    challenge,
                },
                _,
            ) => {
                chap = ChapProof {
                    ident: *ident,
                    response,
                    challenge: challenge.as_slice(),
                };
                Credential::Chap(chap)
            }
        };
        let attempt = Attempt {
            user,
            credential,
            origin,
            door: Door::Radius(&at),
        };
        let pipeline = Pipeline {
            db: self.state.as_ref(),
            mfa: self.mfa.as_ref(),
            dialogues: Some(&self.dialogues),
        };
        let Ok(login) = login::login(pipeline, live, attempt).await else {
            tracing::info!(client = %client.name, %source, user, "RADIUS front-end: locked out");
            let answer = Reply::Reject(crate::throttle::RADIUS_LOCKED.into());
            return self
                .reply(key, client, request, &answer, &sink, source)
                .await;
        };
        drop(permit);
        // A walk ran (a locked-out attempt is refused before any).
        bump(&self.counters.walks);
        let roles = login.roles();
        let (result, answer) = match &login.settled {
            Settled::Accepted => ("accept", Reply::Accept(roles, role_attribute)),
            Settled::Challenged(state, prompt) => (
                "challenge",
                Reply::Challenge(state, challenge::prompt(*prompt)),
            ),
            Settled::Relayed(relayed) => (
                "challenge",
                Reply::Relay(&relayed.handle, &relayed.messages),
            ),
            Settled::Owed { .. } | Settled::Refused(Refusal::InvalidCredentials) => {
                ("reject", Reply::Reject(INVALID_CREDENTIALS.into()))
            }
            Settled::Refused(Refusal::NoRoleMapped) => {
                ("reject", Reply::Reject(NO_ROLE_MAPPED.into()))
            }
            Settled::Refused(Refusal::ServersUnavailable) => {
                ("unavailable", Reply::Reject(SERVERS_UNAVAILABLE.into()))
            }
            Settled::Refused(Refusal::SecondFactorRequired) => {
                ("reject", Reply::Reject(challenge::NOT_ENROLLED.into()))
            }
            Settled::Refused(Refusal::SecondFactor(refusal)) => {
                ("reject", Reply::Reject(challenge::refusal(*refusal)))
            }
        };
        let decision = &login.decision;
        // The audit event (recorded by the pipeline) is the line at `info`.
        tracing::debug!(
            client = %client.name,
            %source,
            user,
            result,
            method = decision.method.map_or("-", |m| m.name()),
            server = decision.server.as_deref().unwrap_or("-"),
            latency_ms = u64::try_from(decision.latency.as_millis()).unwrap_or(u64::MAX),
            "{WALK_LOG}"
        );
        self.reply(key, client, request, &answer, &sink, source)
            .await;
    }

    /// Sends the reply to a walked (or refused) request and remembers it for duplicates.
    async fn reply(
        &self,
        key: Key,
        client: &Client,
        request: &RequestInfo,
        answer: &Reply<'_>,
        sink: &Sink,
        source: SocketAddr,
    ) {
        // Encoded in this thread's buffer, copied into the duplicate cache (into a buffer
        // it recycles) and sent from this thread's buffer: nothing is allocated.
        let sent =
            REPLY_BUFFER.with_borrow_mut(|buf| -> Result<_, portcullis_protocol::radius::Error> {
                let reply = encode_reply(buf, request, &client.secret, answer)?;
                self.count_reply(answer);
                lock(&self.dedup).finish(key, reply);
                Ok(sink.try_send(reply, source))
            });
        let outcome = match sent {
            Ok(Ok(())) => Ok(()),
            // The socket's buffer is full (or RadSec): sent from a copy, which may wait.
            Ok(Err(Unsent::Later(reply))) => sink.send(reply, source).await,
            Ok(Err(Unsent::Failed(e))) => Err(e),
            Err(e) => {
                tracing::warn!(client = %client.name, error = %e, "RADIUS front-end: reply");
                self.counters.drop(DropReason::ReplyFailed);
                lock(&self.dedup).abandon(&key);
                return;
            }
        };
        if let Err(e) = outcome {
            self.counters.drop(DropReason::ReplyFailed);
            tracing::warn!(%source, error = %e, "RADIUS front-end: send failed");
        }
    }
}

impl Frontend {
    /// Counts a reply about to be sent.
    fn count_reply(&self, answer: &Reply<'_>) {
        match answer {
            Reply::Accept(..) => {
                bump(&self.counters.accepts);
                crate::telemetry::frontend_packet("access_accept");
            }
            Reply::Challenge(..) | Reply::Relay(..) => {
                bump(&self.counters.challenges);
                crate::telemetry::frontend_packet("access_challenge");
            }
            Reply::Reject(_) | Reply::Alive => {
                bump(&self.counters.rejects);
                crate::telemetry::frontend_packet("access_reject");
            }
        }
    }
}

/// Why [`Sink::try_send`] did not send.
enum Unsent {
    /// It must wait: send this copy with [`Sink::send`].
    Later(Arc<[u8]>),
    /// It failed.
    Failed(std::io::Error),
}

/// Where the replies to one client go.
#[derive(Debug, Clone)]
enum Sink {
    /// The UDP socket the request came in on, back to its source.
    Udp(Arc<UdpSocket>),
    /// The writer of the RadSec connection the request came in on.
    Stream(tokio::sync::mpsc::Sender<Arc<[u8]>>),
}

impl Sink {
    /// Sends `reply` to `source` over UDP if the socket takes it now; otherwise (and for
    /// RadSec, whose writer takes owned packets) hands back a copy to send with [`Sink::send`].
    fn try_send(&self, reply: &[u8], source: SocketAddr) -> Result<(), Unsent> {
        match self {
            Sink::Udp(socket) => match socket.try_send_to(reply, source) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    Err(Unsent::Later(Arc::from(reply)))
                }
                Err(e) => Err(Unsent::Failed(e)),
            },
            Sink::Stream(_) => Err(Unsent::Later(Arc::from(reply))),
        }
    }

    /// Sends `reply` to `source` (over UDP) or down the connection.
    async fn send(&self, reply: Arc<[u8]>, source: SocketAddr) -> std::io::Result<()> {
        match self {
            Sink::Udp(socket) => socket.send_to(&reply, source).await.map(|_| ()),
            // Never waits: a client that does not read its replies loses them rather than
            // holding walks (and their memory) until it does.
            Sink::Stream(writer) => writer.try_send(reply).map_err(|e| match e {
                tokio::sync::mpsc::error::TrySendError::Full(_) => std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "the connection's reply queue is full",
                ),
                tokio::sync::mpsc::error::TrySendError::Closed(_) => {
                    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "connection closed")
                }
            }),
        }
    }
}

/// Builds a reply: Message-Authenticator first (RFC 3579 §3.2), then the answer's attributes,
/// then the request's Proxy-States in order (RFC 2865 §5.33), signed with the client's
/// secret.
fn build_reply(
    request: &RequestInfo,
    secret: &Secret<Vec<u8>>,
    answer: &Reply<'_>,
) -> Result<Arc<[u8]>, portcullis_protocol::radius::Error> {
    REPLY_BUFFER.with_borrow_mut(|buf| encode_reply(buf, request, secret, answer).map(Arc::from))
}

thread_local! {
    /// Where replies are encoded before they are copied out: one per thread, so a reply
    /// does not zero 4 KiB of stack first.
    static REPLY_BUFFER: std::cell::RefCell<[u8; MAX_PACKET_LEN]> =
        const { std::cell::RefCell::new([0; MAX_PACKET_LEN]) };
}

/// [`build_reply`] in `buf`: the reply's octets.
fn encode_reply<'b>(
    buf: &'b mut [u8; MAX_PACKET_LEN],
    request: &RequestInfo,
    secret: &Secret<Vec<u8>>,
    answer: &Reply<'_>,
) -> Result<&'b [u8], portcullis_protocol::radius::Error> {
    let code = match answer {
        Reply::Accept(..) | Reply::Alive => Code::AccessAccept,
        Reply::Reject(_) => Code::AccessReject,
        Reply::Challenge(..) | Reply::Relay(..) => Code::AccessChallenge,
    };
    let mut builder = if request.v11 {
        // RFC 9765 §4.1: Reserved-1 zero, the request's Token echoed, Reserved-2 zero; §5.2:
        // no Message-Authenticator.
        let token = u32::from_be_bytes(
            request
                .authenticator
                .get(..4)
                .and_then(|t| t.try_into().ok())
                .unwrap_or_default(),
        );
        Builder::new(buf, code, 0, &v11::token_field(token))?
    } else {
        let mut builder = Builder::new(buf, code, request.identifier, &[0; AUTHENTICATOR_LEN])?;
        builder.message_authenticator()?;
        builder
    };
    match answer {
        Reply::Accept(roles, attribute) => {
            for role in roles.iter() {
                let value = role.as_bytes();
                match *attribute {
                    RoleAttribute::Class if value.len() <= MAX_ATTRIBUTE_VALUE_LEN => {
                        builder.attribute(attr_type::CLASS, value)?;
                    }
                    RoleAttribute::Vendor {
                        vendor,
                        vendor_type,
                    } if value.len() <= MAX_VENDOR_VALUE_LEN => {
                        builder.vendor_specific(vendor, &[(vendor_type, value)])?;
                    }
                    _ => tracing::warn!(role, "RADIUS front-end: role name too long to send"),
                }
            }
        }
        Reply::Alive => {}
        Reply::Reject(message) => {
            builder.attribute(attr_type::REPLY_MESSAGE, message.as_bytes())?;
        }
        Reply::Challenge(state, prompt) => {
            builder.attribute(attr_type::REPLY_MESSAGE, prompt.as_bytes())?;
            builder.attribute(attr_type::STATE, state)?;
        }
        Reply::Relay(state, messages) => {
            // Each message as the server sent it: each fits one attribute already.
            for message in messages.iter() {
                let bytes = message.as_bytes();
                let fits = bytes.get(..MAX_ATTRIBUTE_VALUE_LEN).unwrap_or(bytes);
                builder.attribute(attr_type::REPLY_MESSAGE, fits)?;
            }
            builder.attribute(attr_type::STATE, state)?;
        }
    }
    for state in &request.proxy_states {
        builder.attribute(attr_type::PROXY_STATE, state)?;
    }
    let len = if request.v11 {
        builder.finish_unsigned()
    } else {
        builder.finish_reply(&request.authenticator, secret)?
    };
    Ok(buf.get(..len).unwrap_or_default())
}

#[cfg(test)]
mod tests;
