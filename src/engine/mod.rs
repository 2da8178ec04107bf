//! The authentication engine: the sequence walk over local users and remote servers.
//!
//! [`Engine::authenticate`] walks the configured sequence. Each method answers Accept(roles),
//! Reject(reason) or Unavailable(reason):
//! - Local: unknown or disabled user -> Unavailable; wrong password -> Reject.
//! - RADIUS / TACACS+: enabled servers in `order`; a server that stays silent (or, for
//!   TACACS+, refuses or drops the connection) is skipped and marked dead for `dead_time`; a
//!   definitive reject from a server is final for the method; all servers silent ->
//!   Unavailable.
//!
//! The walk moves on only on Unavailable, or also on Reject when `fallback_on_reject` is set.
//! After a remote Accept, role mappings decide the roles; with none matching, the default role
//! applies, and without one the login is rejected with "no role mapped".

pub mod local;
pub mod roles;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_config::{
    Config, Method, NasIdType, RadiusProtocol, RadiusTransport, RequireMessageAuthenticator,
    TacacsProtocol, TacacsTransport,
};
use portcullis_protocol::radius::Secret;
use smallvec::SmallVec;
use tokio::time::Instant;

use crate::sync::lock;
use crate::upstream::Learned;
pub use crate::upstream::radius::ChapProof;
use crate::upstream::radius::{
    self as radius_client, Answer, AuthProtocol, RadiusClient, RequestOptions, Requirement,
    ServerSpec,
};
use crate::upstream::tacacs::{self as tacacs_client, TacacsClient};
use local::{LocalOutcome, LocalUser, LocalUsers};
use roles::{RadiusMapping, TacacsMapping};

/// argon2 verifications running at once, at most (4 x 19 MiB).
const ARGON2_CONCURRENCY: usize = 4;

/// What a login proves the user knows.
#[derive(Debug, Clone, Copy)]
enum Proof<'a> {
    /// The password.
    Password(&'a [u8]),
    /// A RADIUS client's CHAP response.
    Chap(&'a ChapProof<'a>),
}

/// The answer of one method, or of the whole walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The user may log in with these roles.
    Accept(Vec<String>),
    /// The user may not log in.
    Reject(Reason),
    /// Nobody could answer.
    Unavailable(String),
    /// A RADIUS server asked for another step (an Access-Challenge): the walk stops here
    /// until the user answers ([`Engine::answer_challenge`]).
    Challenge(Challenge),
}

/// An upstream server's request for another step, as the user's answer must go back to
/// it: a RADIUS Access-Challenge, or a TACACS+ prompt after the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The server that sent it (`address:port`); the answer goes to this server only, since
    /// no other knows its State or session.
    pub server: String,
    /// RADIUS: its State, echoed unchanged with the answer.
    pub state: Vec<u8>,
    /// What to show the user: the Reply-Messages, or the TACACS+ server_msg.
    pub messages: Vec<String>,
    /// Whether the answer may be shown as it is typed (the Prompt attribute, the NOECHO flag).
    pub echo: bool,
    /// TACACS+: the authentication session, held open for the answer.
    pub held: Option<tacacs_client::HeldSession>,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The State is the server's handle on the dialogue: not for the logs.
        f.debug_struct("Challenge")
            .field("server", &self.server)
            .field("messages", &self.messages)
            .field("echo", &self.echo)
            .finish_non_exhaustive()
    }
}

/// Why a login was rejected. Doors and the throttle decide by the variant, never by text;
/// [`Display`](std::fmt::Display) gives the text the audit log and the log lines carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The credentials were refused: a wrong local password, or a server's reject (with what
    /// the method said: `wrong password`, the server's Reply-Message, ...).
    Refused(String),
    /// The user was accepted, but no role mapping matched and there is no default role. It
    /// says nothing about the password.
    NoRoleMapped,
    /// A RADIUS server answered an Access-Challenge without a State, which cannot be
    /// answered.
    Challenged,
    /// The user answered more rounds of a server's challenges than are allowed.
    TooManyRounds,
    /// The second factor failed (RADIUS front-end).
    SecondFactor,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Refused(detail) => f.write_str(detail),
            Reason::NoRoleMapped => f.write_str("no role mapped"),
            Reason::Challenged => {
                f.write_str("RADIUS server sent an Access-Challenge without a State")
            }
            Reason::TooManyRounds => f.write_str("too many challenge rounds"),
            Reason::SecondFactor => f.write_str("second factor"),
        }
    }
}

/// The result of a login: the outcome, which method and server decided it, and how long the
/// walk took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What was decided.
    pub outcome: Outcome,
    /// The method that decided, if any did.
    pub method: Option<Method>,
    /// The server that decided (`address:port`), for remote methods.
    pub server: Option<Arc<str>>,
    /// Time from the start of the walk to the decision.
    pub latency: Duration,
}

/// Why the engine could not be built from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration names a sequence id that does not exist.
    #[error("authentication sequence {0} does not exist")]
    UnknownSequence(u8),
    /// The dummy password hash could not be made.
    #[error("local users: {0}")]
    Hash(#[from] local::HashError),
    /// A server's TLS settings (CA bundle, client certificate, name) are not usable.
    #[error("TLS to {server}: {source}")]
    Tls {
        /// The configuration list of the server: `radius.servers` or `tacacs.servers`.
        list: &'static str,
        /// The server, `address:port`.
        server: String,
        /// What is wrong.
        source: crate::upstream::tls::TlsSetupError,
    },
}

/// What makes a TLS client: TLS 1.3 only, or 1.2 and 1.3.
type MakeTls = fn(
    crate::upstream::tls::TlsKeys<'_>,
) -> Result<crate::upstream::tls::TlsClient, crate::upstream::tls::TlsSetupError>;

/// The TLS client of a server at `address` with the `tls_*` keys `keys`, made by `make`.
fn tls_client(
    address: &str,
    keys: &portcullis_config::TlsClient,
    make: MakeTls,
) -> Result<crate::upstream::tls::TlsClient, crate::upstream::tls::TlsSetupError> {
    make(crate::upstream::tls::TlsKeys {
        ca: keys.tls_ca.as_deref(),
        server_name: keys.tls_server_name.as_deref().unwrap_or(address),
        certificate: keys.tls_certificate.as_deref().zip(keys.tls_key.as_deref()),
    })
}

/// A remote server with what was learned about it (its dead mark).
#[derive(Debug)]
struct Remote<C> {
    /// `address:port` as configured, for logs and decisions (shared by every decision, not
    /// copied).
    name: Arc<str>,
    client: C,
    /// The dead mark (and, for RADIUS, whether it signs), shared with the engines before
    /// and after this one.
    learned: Arc<Learned>,
}

impl<C> Remote<C> {
    fn is_dead(&self, now: Instant) -> bool {
        lock(&self.learned.dead_until).is_some_and(|until| until > now)
    }

    fn mark_dead(&self, dead_time: Duration) {
        if !dead_time.is_zero() {
            *lock(&self.learned.dead_until) = Some(Instant::now() + dead_time);
        }
    }

    fn mark_alive(&self) {
        *lock(&self.learned.dead_until) = None;
        self.learned
            .answered
            .store(unix_now(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Its health as of `now`.
    fn health(&self, protocol: &'static str, now: Instant) -> ServerHealth {
        let dead_for = lock(&self.learned.dead_until)
            .filter(|until| *until > now)
            .map(|until| until.saturating_duration_since(now).as_secs().max(1));
        let answered = self
            .learned
            .answered
            .load(std::sync::atomic::Ordering::Relaxed);
        ServerHealth {
            protocol,
            server: self.name.to_string(),
            alive: dead_for.is_none(),
            dead_for,
            last_answer: (answered > 0).then_some(answered),
        }
    }

    /// Whether it is dead at `now` and was not probed within `interval` (and marks it
    /// probed now if so).
    fn due_for_probe(&self, now: Instant, interval: Duration) -> bool {
        if interval.is_zero() || !self.is_dead(now) {
            return false;
        }
        self.mark_probed(now, interval)
    }

    /// Whether it is alive at `now`, gave no answer within `interval` and was not probed
    /// within it either (and marks it probed now if so).
    fn due_for_idle_probe(&self, now: Instant, interval: Duration) -> bool {
        if interval.is_zero() || self.is_dead(now) {
            return false;
        }
        let answered = self
            .learned
            .answered
            .load(std::sync::atomic::Ordering::Relaxed);
        if unix_now().saturating_sub(answered) < interval.as_secs() {
            return false;
        }
        self.mark_probed(now, interval)
    }

    /// Records a probe at `now` unless there was one within `interval`; whether it is due.
    fn mark_probed(&self, now: Instant, interval: Duration) -> bool {
        let mut probed = lock(&self.learned.probed);
        if probed.is_some_and(|at| now.saturating_duration_since(at) < interval) {
            return false;
        }
        *probed = Some(now);
        true
    }
}

/// Seconds since the Unix epoch (0 before it).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One upstream server's health, as [`Engine::health`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHealth {
    /// `radius` or `tacacs`.
    pub protocol: &'static str,
    /// `address:port` as configured.
    pub server: String,
    /// Not marked dead.
    pub alive: bool,
    /// Seconds it stays marked dead, when it is.
    pub dead_for: Option<u64>,
    /// When it last gave a valid answer (Unix seconds), if it has since the daemon started.
    pub last_answer: Option<u64>,
}

/// Who a server is, for [`Memory`]: a changed address or secret is another server, which
/// starts with nothing learned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerId {
    protocol: &'static str,
    addr: SocketAddr,
    /// SHA-256 of the shared secret (the secret itself is not kept twice).
    secret: [u8; 32],
}

impl ServerId {
    fn new(protocol: &'static str, addr: SocketAddr, secret: &[u8]) -> ServerId {
        use sha2::{Digest, Sha256};
        ServerId {
            protocol,
            addr,
            secret: Sha256::digest(secret).into(),
        }
    }
}

/// What the engines learn about upstream servers (dead marks, whether a RADIUS server signs
/// its replies), handed from each engine to the one built after it by [`Engine::build`], for
/// every server whose identity is unchanged. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    servers: Arc<Mutex<HashMap<ServerId, Arc<Learned>>>>,
}

impl Memory {
    /// Keeps what was learned about the servers of `ids` (each made fresh when new) and
    /// forgets the rest; returns them in the order of `ids`.
    fn take_over(&self, ids: &[ServerId]) -> Vec<Arc<Learned>> {
        let mut servers = lock(&self.servers);
        let learned: Vec<Arc<Learned>> = ids
            .iter()
            .map(|id| Arc::clone(servers.entry(id.clone()).or_default()))
            .collect();
        servers.retain(|id, _| ids.contains(id));
        learned
    }
}

/// Servers in the order to try them: those not marked dead first (in `order`), then the dead
/// ones, so a dead primary costs nothing while another server is alive but is still tried
/// when all are dead.
fn try_order<C>(servers: &[Remote<C>]) -> SmallVec<[&Remote<C>; 8]> {
    let now = Instant::now();
    // Each server's mark is read once; the sort is stable, so each group keeps `order`.
    let mut marked: SmallVec<[(bool, &Remote<C>); 8]> =
        servers.iter().map(|s| (s.is_dead(now), s)).collect();
    marked.sort_by_key(|(dead, _)| *dead);
    marked.into_iter().map(|(_, server)| server).collect()
}

/// The engine for one configuration. Rebuilt (cheaply) when the configuration changes.
#[derive(Debug)]
pub struct Engine {
    sequence: &'static [Method],
    fallback_on_reject: bool,
    dead_time: Duration,
    default_role: Option<String>,
    local: Arc<LocalUsers>,
    radius: Vec<Remote<RadiusClient>>,
    radius_options: RequestOptions,
    radius_mappings: Vec<RadiusMapping>,
    tacacs: Vec<Remote<TacacsClient>>,
    tacacs_service: String,
    tacacs_mappings: Vec<TacacsMapping>,
}

impl Engine {
    /// Builds the engine for `config`, knowing nothing about its servers yet. Server host
    /// names are resolved here, once; a name that does not resolve leaves its server out,
    /// with a warning.
    pub fn new(config: &Config) -> Result<Engine, EngineError> {
        Self::build(config, &Memory::default())
    }

    /// [`Engine::new`], going on from what `memory` learned about the servers that keep their
    /// identity (protocol, address, secret): their dead marks and whether they sign.
    pub fn build(config: &Config, memory: &Memory) -> Result<Engine, EngineError> {
        let auth = &config.authentication;
        let sequence = portcullis_config::sequence(auth.current_sequence)
            .ok_or(EngineError::UnknownSequence(auth.current_sequence))?;
        let local = LocalUsers::new(config.local_users.iter().map(|u| LocalUser {
            name: u.name.clone(),
            password_hash: u.password_hash.expose().to_string(),
            roles: u.roles.clone(),
            enabled: u.enabled,
        }))?;

        let settings = &config.radius.settings;
        let nas_identifier = match (settings.use_nas_id, settings.nas_id_type) {
            (false, _) => None,
            (true, NasIdType::Custom) => settings.nas_id_value.clone(),
            (true, NasIdType::Dynamic) => Some(hostname()),
        };
        let radius_options = RequestOptions {
            nas_identifier,
            use_nas_ip: settings.use_nas_ip,
            nas_ip: settings.nas_ip_value,
            timeout: Duration::from_secs(u64::from(settings.connection_timeout)),
            tries: settings.max_number_of_tries,
        };
        let radius_servers: Vec<_> = config
            .radius
            .enabled_servers()
            .into_iter()
            .filter_map(|server| Some((resolve(&server.address, server.port)?, server)))
            .collect();
        let tacacs_servers: Vec<_> = config
            .tacacs
            .enabled_servers()
            .into_iter()
            .filter_map(|server| Some((resolve(&server.address, server.port)?, server)))
            .collect();
        let ids: Vec<ServerId> = radius_servers
            .iter()
            .map(|(addr, server)| ServerId::new("radius", *addr, server.secret.expose().as_bytes()))
            .chain(tacacs_servers.iter().map(|(addr, server)| {
                ServerId::new("tacacs", *addr, server.secret.expose().as_bytes())
            }))
            .collect();
        let mut learned = memory.take_over(&ids).into_iter();
        let mut radius = Vec::with_capacity(radius_servers.len());
        for ((addr, server), learned) in radius_servers.into_iter().zip(learned.by_ref()) {
            let name = format!("{}:{}", server.address, server.port);
            let tls = match server.transport {
                RadiusTransport::Udp => None,
                RadiusTransport::Tls => Some(
                    tls_client(
                        &server.address,
                        &server.tls,
                        crate::upstream::tls::tls12_client,
                    )
                    .map_err(|source| EngineError::Tls {
                        list: "radius.servers",
                        server: name.clone(),
                        source,
                    })?,
                ),
            };
            let require_message_authenticator = match server.require_message_authenticator {
                RequireMessageAuthenticator::Yes => Requirement::Yes,
                RequireMessageAuthenticator::No => Requirement::No,
                RequireMessageAuthenticator::Auto => Requirement::Auto,
            };
            radius.push(Remote {
                name: name.into(),
                client: RadiusClient::with_learned(
                    ServerSpec {
                        addr,
                        secret: Secret::new(server.secret.expose().as_bytes().into()),
                        protocol: match server.protocol {
                            RadiusProtocol::Pap => AuthProtocol::Pap,
                            RadiusProtocol::Chap => AuthProtocol::Chap,
                        },
                        require_message_authenticator,
                        tls,
                    },
                    Arc::clone(&learned),
                ),
                learned,
            });
        }
        let radius_mappings = config
            .radius
            .role_mappings
            .iter()
            .map(|m| RadiusMapping {
                role: m.role.clone(),
                attribute: m.attribute,
                value: m.attribute_value.clone(),
                vendor_type: m.vendor_type,
            })
            .collect();

        let tacacs_timeout =
            Duration::from_secs(u64::from(config.tacacs.settings.connection_timeout));
        let mut tacacs = Vec::with_capacity(tacacs_servers.len());
        for ((addr, server), learned) in tacacs_servers.into_iter().zip(learned) {
            let name = format!("{}:{}", server.address, server.port);
            let tls = match server.transport {
                TacacsTransport::Tcp => None,
                TacacsTransport::Tls => Some(
                    tls_client(
                        &server.address,
                        &server.tls,
                        crate::upstream::tls::tls13_client,
                    )
                    .map_err(|source| EngineError::Tls {
                        list: "tacacs.servers",
                        server: name.clone(),
                        source,
                    })?,
                ),
            };
            tacacs.push(Remote {
                name: name.into(),
                client: TacacsClient::new(tacacs_client::ServerSpec {
                    addr,
                    key: tacacs_client::Key::new(server.secret.expose().as_bytes()),
                    protocol: match server.protocol {
                        TacacsProtocol::Pap => tacacs_client::Protocol::Pap,
                        TacacsProtocol::Ascii => tacacs_client::Protocol::Ascii,
                    },
                    client_port: server.client_port.clone(),
                    timeout: tacacs_timeout,
                    tls,
                }),
                learned,
            });
        }
        let tacacs_mappings = config
            .tacacs
            .role_mappings
            .iter()
            .map(|m| TacacsMapping {
                role: m.role.clone(),
                attribute: m.attribute.clone(),
                value: m.attribute_value.clone(),
            })
            .collect();

        Ok(Engine {
            sequence,
            fallback_on_reject: auth.fallback_on_reject,
            dead_time: Duration::from_secs(u64::from(auth.dead_time)),
            default_role: auth.default_role.clone(),
            local: Arc::new(local),
            radius,
            radius_options,
            radius_mappings,
            tacacs,
            tacacs_service: config.tacacs.settings.auth_service.clone(),
            tacacs_mappings,
        })
    }

    /// Checks `user` and `password` against the local users only, whatever the sequence: the
    /// management API's HTTP Basic authentication.
    pub async fn authenticate_local(&self, user: &str, password: &[u8]) -> Outcome {
        self.local(user, password).await
    }

    /// Whether the sequence has a remote method with at least one server, i.e. whether a
    /// login can fail because servers are unavailable.
    pub fn has_remote_servers(&self) -> bool {
        self.sequence.iter().any(|method| match method {
            Method::Local => false,
            Method::Radius => !self.radius.is_empty(),
            Method::Tacacs => !self.tacacs.is_empty(),
        })
    }

    /// Whether a CHAP login can be checked: only by RADIUS servers, so the sequence must have
    /// the RADIUS method and at least one server.
    pub fn checks_chap(&self) -> bool {
        self.sequence.contains(&Method::Radius) && !self.radius.is_empty()
    }

    /// Whether a remote method with servers comes after position `index` of the sequence.
    fn remote_after(&self, index: usize) -> bool {
        self.sequence
            .iter()
            .skip(index + 1)
            .any(|method| match method {
                Method::Local => false,
                Method::Radius => !self.radius.is_empty(),
                Method::Tacacs => !self.tacacs.is_empty(),
            })
    }

    /// How many argon2 checks the local method has run (real and dummy).
    pub fn local_checks(&self) -> u64 {
        self.local.checks()
    }

    /// Walks the sequence for `user` and `password`.
    pub async fn authenticate(&self, user: &str, password: &[u8]) -> Decision {
        self.walk(user, Proof::Password(password)).await
    }

    /// Walks the sequence for a CHAP response from a RADIUS client (RFC 2865 §5.3). Only a
    /// server that knows the password can check it: the local method (argon2 hashes) and
    /// TACACS+ answer unavailable, and RADIUS servers get the CHAP-Password and challenge as
    /// they came.
    pub async fn authenticate_chap(&self, user: &str, chap: &ChapProof<'_>) -> Decision {
        self.walk(user, Proof::Chap(chap)).await
    }

    async fn walk(&self, user: &str, proof: Proof<'_>) -> Decision {
        let started = Instant::now();
        // What each method that did not decide said, worded into the reason only when nobody
        // decides.
        let mut unavailable: SmallVec<[(Method, Cow<'static, str>); 4]> = SmallVec::new();
        let mut rejected: Option<(Method, Option<Arc<str>>, Reason)> = None;
        for (index, &method) in self.sequence.iter().enumerate() {
            let skipped = match (method, proof) {
                // An unknown user's dummy argon2 check hides who is local only when nothing
                // answers after the local method; with a remote method after it, the upstream
                // round trip shows anyway, and the dummy check would cost every remote login
                // tens of milliseconds of CPU.
                (Method::Local, Proof::Password(_))
                    if !self.local.contains(user) && self.remote_after(index) =>
                {
                    Some("not a local user")
                }
                (Method::Local, Proof::Chap(_)) => {
                    Some("CHAP cannot be checked against a password hash")
                }
                (Method::Tacacs, Proof::Chap(_)) => Some("CHAP is not passed to TACACS+ servers"),
                _ => None,
            };
            if let Some(reason) = skipped {
                tracing::debug!(user, %method, reason, "method cannot answer");
                unavailable.push((method, Cow::Borrowed(reason)));
                continue;
            }
            let (outcome, server) = match (method, proof) {
                (Method::Local, Proof::Password(password)) => {
                    (self.local(user, password).await, None)
                }
                (Method::Radius, proof) => self.radius(user, proof).await,
                // Boxed: the TACACS+ session's future is kilobytes that every RADIUS login
                // would carry.
                (Method::Tacacs, Proof::Password(password)) => {
                    Box::pin(self.tacacs(user, password)).await
                }
                // Skipped above.
                (Method::Local | Method::Tacacs, Proof::Chap(_)) => continue,
            };
            tracing::debug!(user, %method, server = server.as_deref(), ?outcome, "method answered");
            match outcome {
                Outcome::Accept(roles) => {
                    return self.decide(
                        user,
                        Outcome::Accept(roles),
                        Some(method),
                        server,
                        started,
                    );
                }
                Outcome::Reject(reason) if self.fallback_on_reject => {
                    unavailable.push((method, Cow::Owned(reason.to_string())));
                    rejected.get_or_insert((method, server, reason));
                }
                Outcome::Reject(reason) => {
                    return self.decide(
                        user,
                        Outcome::Reject(reason),
                        Some(method),
                        server,
                        started,
                    );
                }
                Outcome::Unavailable(reason) => unavailable.push((method, Cow::Owned(reason))),
                // The user must answer before anything else is tried.
                Outcome::Challenge(challenge) => {
                    return self.decide(
                        user,
                        Outcome::Challenge(challenge),
                        Some(method),
                        server,
                        started,
                    );
                }
            }
        }
        match rejected {
            Some((method, server, reason)) => {
                self.decide(user, Outcome::Reject(reason), Some(method), server, started)
            }
            None => {
                let reason = if unavailable.is_empty() {
                    "empty authentication sequence".to_string()
                } else {
                    let said: Vec<String> = unavailable
                        .iter()
                        .map(|(method, reason)| format!("{method}: {reason}"))
                        .collect();
                    said.join("; ")
                };
                self.decide(user, Outcome::Unavailable(reason), None, None, started)
            }
        }
    }

    fn decide(
        &self,
        user: &str,
        outcome: Outcome,
        method: Option<Method>,
        server: Option<Arc<str>>,
        started: Instant,
    ) -> Decision {
        let latency = started.elapsed();
        let method_name = method.map(Method::name);
        crate::telemetry::login(method_name.unwrap_or("-"), outcome_label(&outcome), latency);
        match &outcome {
            // The audit event of the login is the line at `info`.
            Outcome::Accept(roles) => tracing::debug!(
                user,
                method = method_name,
                server = server.as_deref(),
                ?roles,
                latency_ms = latency.as_millis() as u64,
                "login accepted"
            ),
            Outcome::Reject(reason) => tracing::debug!(
                user,
                method = method_name,
                server = server.as_deref(),
                reason = %reason,
                latency_ms = latency.as_millis() as u64,
                "login rejected"
            ),
            Outcome::Unavailable(reason) => tracing::warn!(
                user,
                reason,
                latency_ms = latency.as_millis() as u64,
                "login failed: no method could answer"
            ),
            Outcome::Challenge(_) => tracing::debug!(
                user,
                server = server.as_deref(),
                latency_ms = latency.as_millis() as u64,
                "login challenged by the server"
            ),
        }
        Decision {
            outcome,
            method,
            server,
            latency,
        }
    }

    /// Roles after mapping: the mapped ones, else the default role, else a reject.
    fn with_default_role(&self, roles: Vec<String>) -> Outcome {
        if !roles.is_empty() {
            return Outcome::Accept(roles);
        }
        match &self.default_role {
            Some(role) => Outcome::Accept(vec![role.clone()]),
            None => Outcome::Reject(Reason::NoRoleMapped),
        }
    }

    async fn local(&self, user: &str, password: &[u8]) -> Outcome {
        // Each check takes argon2's 19 MiB and tens of milliseconds of CPU: a burst of logins
        // waits here instead of piling up threads and memory.
        static ARGON2_PERMITS: tokio::sync::Semaphore =
            tokio::sync::Semaphore::const_new(ARGON2_CONCURRENCY);
        let Ok(_permit) = ARGON2_PERMITS.acquire().await else {
            return Outcome::Unavailable("local check unavailable".into());
        };
        let users = Arc::clone(&self.local);
        let (user, password) = (user.to_owned(), password.to_vec());
        // argon2 takes tens of milliseconds of CPU: off the async workers.
        let verdict = tokio::task::spawn_blocking(move || users.verify(&user, &password)).await;
        match verdict {
            Ok(LocalOutcome::Accept(roles)) => self.with_default_role(roles),
            Ok(LocalOutcome::Reject(reason)) => Outcome::Reject(Reason::Refused(reason.into())),
            Ok(LocalOutcome::Unavailable(reason)) => Outcome::Unavailable(reason.into()),
            Err(e) => Outcome::Unavailable(format!("local check failed: {e}")),
        }
    }

    async fn radius(&self, user: &str, proof: Proof<'_>) -> (Outcome, Option<Arc<str>>) {
        if self.radius.is_empty() {
            return (
                Outcome::Unavailable("no RADIUS servers configured".into()),
                None,
            );
        }
        for server in try_order(&self.radius) {
            let asked = Instant::now();
            let answer = match proof {
                Proof::Password(password) => {
                    server
                        .client
                        .authenticate(user, password, &self.radius_options)
                        .await
                }
                Proof::Chap(chap) => {
                    server
                        .client
                        .authenticate_chap(user, chap, &self.radius_options)
                        .await
                }
            };
            let name = Some(server.name.clone());
            crate::telemetry::upstream_request(
                "radius",
                &server.name,
                radius_answer_label(&answer),
                asked.elapsed(),
            );
            if let Some(outcome) = self.radius_answer(server, answer) {
                return (outcome, name);
            }
        }
        (
            Outcome::Unavailable("no RADIUS server answered".into()),
            None,
        )
    }

    /// What one RADIUS server's answer (after the request metric) makes of the method:
    /// `None` when the server failed and the next one is tried.
    fn radius_answer(
        &self,
        server: &Remote<RadiusClient>,
        answer: Result<Answer, radius_client::ClientError>,
    ) -> Option<Outcome> {
        match answer {
            Ok(Answer::Accept(reply)) => {
                server.mark_alive();
                let roles = roles::radius_roles(&self.radius_mappings, &reply.packet());
                Some(self.with_default_role(roles))
            }
            Ok(Answer::Reject(reply)) => {
                server.mark_alive();
                let reason = reply
                    .reply_message()
                    .unwrap_or_else(|| "rejected by RADIUS server".into());
                Some(Outcome::Reject(Reason::Refused(reason)))
            }
            Ok(Answer::Challenge(reply)) => {
                server.mark_alive();
                // An Access-Challenge must carry a State (RFC 2865 §4.4): without one the
                // answer could not be tied to it.
                let Some(state) = reply.state() else {
                    tracing::warn!(server = %server.name, "Access-Challenge without a State");
                    return Some(Outcome::Reject(Reason::Challenged));
                };
                Some(Outcome::Challenge(Challenge {
                    server: server.name.to_string(),
                    state,
                    messages: reply.reply_messages(),
                    echo: reply.echo(),
                    held: None,
                }))
            }
            Err(radius_client::ClientError::Timeout { .. }) => {
                tracing::warn!(server = %server.name, "RADIUS server did not answer; marked dead");
                server.mark_dead(self.dead_time);
                crate::telemetry::upstream_dead("radius", &server.name);
                None
            }
            Err(e) => {
                tracing::warn!(server = %server.name, error = %e, "RADIUS request failed");
                None
            }
        }
    }

    /// The health of every enabled server, RADIUS then TACACS+, each in `order`; also sets
    /// the `portcullis_upstream_up` gauges.
    pub fn health(&self) -> Vec<ServerHealth> {
        let now = Instant::now();
        let all: Vec<ServerHealth> = self
            .radius
            .iter()
            .map(|server| server.health("radius", now))
            .chain(
                self.tacacs
                    .iter()
                    .map(|server| server.health("tacacs", now)),
            )
            .collect();
        for server in &all {
            crate::telemetry::upstream_up(server.protocol, &server.server, server.alive);
        }
        all
    }

    /// Probes every RADIUS server marked dead and not probed within `interval` with a
    /// Status-Server (RFC 5997); one that answers is alive again. Returns how many
    /// were revived.
    pub async fn probe_dead(&self, interval: Duration) -> usize {
        let now = Instant::now();
        let due: Vec<&Remote<RadiusClient>> = self
            .radius
            .iter()
            .filter(|server| server.due_for_probe(now, interval))
            .collect();
        let timeout = self.radius_options.timeout;
        let mut revived = 0;
        // One after the other: dead servers are few, and each probe waits one timeout.
        for server in due {
            match server.client.probe(timeout).await {
                Ok(true) => {
                    server.mark_alive();
                    server
                        .learned
                        .status_server
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(server = %server.name, "RADIUS server answered Status-Server; alive again");
                    crate::telemetry::upstream_revived("radius", &server.name);
                    revived += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(server = %server.name, error = %e, "Status-Server probe failed");
                }
            }
        }
        revived
    }

    /// Probes every live RADIUS server that gave no answer within `interval` with a
    /// Status-Server (RFC 5997, the RFC 3539 watchdog), so one that died between logins is
    /// found before a user waits on it. A server that has answered a Status-Server before and
    /// is silent now is marked dead (for `dead_time`, and probed back to life as any dead
    /// server); one that never answered one (it may not implement Status-Server) is left
    /// alone. Over TLS an unanswered probe also closes the connection it went on (RFC 3539
    /// §3.4), so the next login opens a new one. `all`: every server, else only those over
    /// TLS (whose long-lived connections always have the watchdog). Returns how many were
    /// marked dead.
    pub async fn probe_idle(&self, interval: Duration, all: bool) -> usize {
        let now = Instant::now();
        let due: Vec<&Remote<RadiusClient>> = self
            .radius
            .iter()
            .filter(|server| {
                (all || server.client.spec().tls.is_some())
                    && server.due_for_idle_probe(now, interval)
            })
            .collect();
        let timeout = self.radius_options.timeout;
        let mut found_dead = 0;
        for server in due {
            let supported = &server.learned.status_server;
            match server.client.probe(timeout).await {
                Ok(true) => {
                    server.mark_alive();
                    supported.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(false) if supported.load(std::sync::atomic::Ordering::Relaxed) => {
                    server.mark_dead(self.dead_time);
                    tracing::warn!(server = %server.name, "idle RADIUS server did not answer Status-Server; marked dead");
                    found_dead += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(server = %server.name, error = %e, "Status-Server probe failed");
                }
            }
        }
        found_dead
    }

    /// Sends `response`, the user's answer to `challenge`, to the server that sent it (and
    /// to no other: none knows its State). Its reply decides like a first reply: accept
    /// (with role mapping), reject, or another challenge; a server that is gone from the
    /// configuration or goes silent makes the login unavailable.
    pub async fn answer_challenge(
        &self,
        user: &str,
        challenge: &Challenge,
        response: &[u8],
    ) -> Decision {
        let started = Instant::now();
        if let Some(held) = &challenge.held {
            return self
                .answer_tacacs_prompt(user, challenge, held, response, started)
                .await;
        }
        let Some(server) = self.radius.iter().find(|s| *s.name == *challenge.server) else {
            let gone = format!("RADIUS server {} is no longer configured", challenge.server);
            return self.decide(user, Outcome::Unavailable(gone), None, None, started);
        };
        let answer = server
            .client
            .answer_challenge(user, response, &challenge.state, &self.radius_options)
            .await;
        crate::telemetry::upstream_request(
            "radius",
            &server.name,
            radius_answer_label(&answer),
            started.elapsed(),
        );
        let outcome = self.radius_answer(server, answer).unwrap_or_else(|| {
            Outcome::Unavailable(format!(
                "RADIUS server {} did not answer the challenge response",
                server.name
            ))
        });
        let (method, name) = match &outcome {
            Outcome::Unavailable(_) => (None, None),
            _ => (Some(Method::Radius), Some(server.name.clone())),
        };
        self.decide(user, outcome, method, name, started)
    }

    /// [`Engine::answer_challenge`] for a TACACS+ prompt: the answer goes on in the held
    /// session, once.
    async fn answer_tacacs_prompt(
        &self,
        user: &str,
        challenge: &Challenge,
        held: &tacacs_client::HeldSession,
        response: &[u8],
        started: Instant,
    ) -> Decision {
        let server = self.tacacs.iter().find(|s| *s.name == *challenge.server);
        let (Some(server), Some(session)) = (server, held.take()) else {
            let gone = format!(
                "the TACACS+ session with {} is no longer held",
                challenge.server
            );
            return self.decide(user, Outcome::Unavailable(gone), None, None, started);
        };
        let answer = server.client.continue_login(session, response).await;
        crate::telemetry::upstream_request(
            "tacacs",
            &server.name,
            tacacs_answer_label(&answer),
            started.elapsed(),
        );
        let outcome = self.tacacs_answer(server, answer).unwrap_or_else(|| {
            Outcome::Unavailable(format!(
                "TACACS+ server {} did not answer the prompt's response",
                server.name
            ))
        });
        let (method, name) = match &outcome {
            Outcome::Unavailable(_) => (None, None),
            _ => (Some(Method::Tacacs), Some(server.name.clone())),
        };
        self.decide(user, outcome, method, name, started)
    }

    async fn tacacs(&self, user: &str, password: &[u8]) -> (Outcome, Option<Arc<str>>) {
        if self.tacacs.is_empty() {
            return (
                Outcome::Unavailable("no TACACS+ servers configured".into()),
                None,
            );
        }
        for server in try_order(&self.tacacs) {
            let asked = Instant::now();
            let answer = server
                .client
                .authenticate(user, password, "", &self.tacacs_service)
                .await;
            let name = Some(server.name.clone());
            crate::telemetry::upstream_request(
                "tacacs",
                &server.name,
                tacacs_answer_label(&answer),
                asked.elapsed(),
            );
            if let Some(outcome) = self.tacacs_answer(server, answer) {
                return (outcome, name);
            }
        }
        (
            Outcome::Unavailable("no TACACS+ server answered".into()),
            None,
        )
    }

    /// What one TACACS+ server's answer (after the request metric) makes of the method:
    /// `None` when the server failed (it is marked dead) and the next one is tried.
    fn tacacs_answer(
        &self,
        server: &Remote<TacacsClient>,
        answer: Result<tacacs_client::Answer, tacacs_client::ClientError>,
    ) -> Option<Outcome> {
        if matches!(
            &answer,
            Err(tacacs_client::ClientError::Malformed { .. }
                | tacacs_client::ClientError::Session { .. }
                | tacacs_client::ClientError::UnexpectedStatus { .. }
                | tacacs_client::ClientError::TooManyRounds)
        ) {
            crate::telemetry::upstream_invalid_reply("tacacs", &server.name);
        }
        match answer {
            Ok(tacacs_client::Answer::Accept { av_pairs, .. }) => {
                server.mark_alive();
                let roles = roles::tacacs_roles(&self.tacacs_mappings, &av_pairs);
                Some(self.with_default_role(roles))
            }
            Ok(tacacs_client::Answer::Reject { reason, server_msg }) => {
                server.mark_alive();
                let reason = match server_msg {
                    Some(message) => format!("{reason}: {message}"),
                    None => reason.to_string(),
                };
                Some(Outcome::Reject(Reason::Refused(reason)))
            }
            Err(tacacs_client::ClientError::TooManyHeld) => Some(Outcome::Unavailable(
                "too many TACACS+ sessions waiting for answers".into(),
            )),
            Ok(tacacs_client::Answer::Challenge { prompt, echo, held }) => {
                server.mark_alive();
                Some(Outcome::Challenge(Challenge {
                    server: server.name.to_string(),
                    state: Vec::new(),
                    messages: prompt.into_iter().collect(),
                    echo,
                    held: Some(held),
                }))
            }
            Err(e) => {
                tracing::warn!(server = %server.name, error = %e, "TACACS+ server unavailable; marked dead");
                server.mark_dead(self.dead_time);
                crate::telemetry::upstream_dead("tacacs", &server.name);
                None
            }
        }
    }
}

/// The `result` label of a TACACS+ server's answer in the request metric.
fn tacacs_answer_label(
    answer: &Result<tacacs_client::Answer, tacacs_client::ClientError>,
) -> &'static str {
    match answer {
        Ok(tacacs_client::Answer::Accept { .. }) => "accept",
        Ok(tacacs_client::Answer::Reject { .. }) => "reject",
        Ok(tacacs_client::Answer::Challenge { .. }) => "challenge",
        Err(tacacs_client::ClientError::Timeout { .. }) => "timeout",
        Err(_) => "error",
    }
}

/// The `result` label of a decision.
fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Accept(_) => "accept",
        Outcome::Reject(_) => "reject",
        Outcome::Unavailable(_) => "unavailable",
        Outcome::Challenge(_) => "challenge",
    }
}

/// The `result` label of a RADIUS server's answer in the request metric.
fn radius_answer_label(answer: &Result<Answer, radius_client::ClientError>) -> &'static str {
    match answer {
        Ok(Answer::Accept(_)) => "accept",
        Ok(Answer::Reject(_)) => "reject",
        Ok(Answer::Challenge(_)) => "challenge",
        Err(radius_client::ClientError::Timeout { .. }) => "timeout",
        Err(_) => "error",
    }
}

/// Resolves `host:port` once; `None` (with a warning) when it does not resolve.
fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    // IPv6 literals need brackets in the `host:port` form ToSocketAddrs parses.
    let target = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match target.to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(addr)) => Some(addr),
        Ok(None) | Err(_) => {
            tracing::warn!(server = %target, "server address does not resolve; left out");
            None
        }
    }
}

/// The host name, for NAS-Identifier "dynamic".
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "portcullis".to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn config(servers: &[(&str, u16, &str)]) -> Config {
        let mut toml = String::from("[authentication]\ncurrent_sequence = 1\n");
        for (id, (address, port, secret)) in servers.iter().enumerate() {
            toml.push_str(&format!(
                "[[radius.servers]]\nid = {n}\norder = {n}\naddress = \"{address}\"\nport = {port}\nsecret = \"{secret}\"\n\
                 [[tacacs.servers]]\nid = {n}\norder = {n}\naddress = \"{address}\"\nport = {port}\nsecret = \"{secret}\"\n",
                n = id + 1
            ));
        }
        Config::from_toml(&toml).unwrap().config
    }

    #[test]
    fn what_was_learned_about_a_server_survives_rebuilds_while_its_identity_holds() {
        let memory = Memory::default();
        let first = Engine::build(
            &config(&[
                ("127.0.0.1", 1812, "secret-one-long"),
                ("127.0.0.2", 1812, "secret-two-long"),
            ]),
            &memory,
        )
        .unwrap();
        for server in &first.radius {
            server.learned.signed_seen.store(true, Ordering::Relaxed);
            server.mark_dead(Duration::from_secs(60));
        }
        first.tacacs[0].mark_dead(Duration::from_secs(60));
        let now = Instant::now();

        // Another change (the order of the servers, say) keeps both marks.
        let second = Engine::build(
            &config(&[
                ("127.0.0.2", 1812, "secret-two-long"),
                ("127.0.0.1", 1812, "secret-one-long"),
            ]),
            &memory,
        )
        .unwrap();
        for server in &second.radius {
            assert!(
                server.learned.signed_seen.load(Ordering::Relaxed),
                "{}",
                server.name
            );
            assert!(server.is_dead(now), "{}", server.name);
        }
        assert!(second.tacacs.iter().any(|s| s.is_dead(now)));
        assert!(second.tacacs.iter().any(|s| !s.is_dead(now)));

        // A new secret or address is a new server; a server left out is forgotten.
        let third = Engine::build(
            &config(&[
                ("127.0.0.1", 1812, "secret-new-long"),
                ("127.0.0.2", 1813, "secret-two-long"),
            ]),
            &memory,
        )
        .unwrap();
        for server in &third.radius {
            assert!(
                !server.learned.signed_seen.load(Ordering::Relaxed),
                "{}",
                server.name
            );
            assert!(!server.is_dead(now), "{}", server.name);
        }
        assert_eq!(lock(&memory.servers).len(), 4);
        // A fresh engine learns from nothing.
        let fresh = Engine::new(&config(&[("127.0.0.1", 1812, "secret-new-long")])).unwrap();
        assert!(!fresh.radius[0].learned.signed_seen.load(Ordering::Relaxed));
    }
}
