//! The login pipeline every door calls (REST login, HTTP Basic, the RADIUS front-end): the
//! rules about a login attempt live here once, so no door can forget one.
//!
//! A door parses its wire format into an [`Attempt`] (who, with which [`Credential`], from
//! where, through which [`Door`]) and calls [`login`], which:
//! 1. checks the brute-force throttle before anything is checked (a locked user or source is
//!    refused unseen: [`Locked`]);
//! 2. runs the walk: the engine's sequence (local users only for HTTP Basic); for the RADIUS
//!    front-end, with its second factor ([`radius`]: a challenge, or the answer to one);
//! 3. settles the throttle with what the walk proved ([`crate::throttle::Evidence::of`]);
//! 4. records the attempt in the audit log (unless the door audits no logins: HTTP Basic);
//! 5. reads the decision the way every door answers it ([`Conclusion::of`]: an unknown user
//!    when only local users are configured must look like a wrong password), and for an
//!    accepted user applies the `[mfa]` policy of the door's application ([`API`] for the
//!    REST API, `radius:<client>` for the RADIUS front-end): [`second_factor`].
//!
//! Out comes a [`Login`]: the engine's decision (method, server, latency) and how it
//! [`Settled`]: accepted, a code owed, a RADIUS challenge, or refused for a typed
//! [`Refusal`]. The doors only turn it into their answers (JSON and a status, a RADIUS
//! packet). [`check_code`] checks a code given for an owed second factor and records it.

use std::future::Future;
use std::time::Instant;

use compact_str::CompactString;
use portcullis_config::{FailMode, MfaRequired, UserKey};

pub mod dialogue;
pub mod radius;

use crate::engine::{Challenge, ChapProof, Decision, Outcome, Reason};
use crate::live::Live;
use crate::mfa::delivery::Channel;
use crate::mfa::lockout::Lockout;
use crate::mfa::{Delivery, MfaStore};
use crate::state::{StateDb, StateError};
use crate::throttle::{self, Evidence, Locked, Origin, Ticket};
use dialogue::{Dialogue, Dialogues, Party};

/// The application name of the REST API (login and HTTP Basic) in `[mfa]` overrides.
pub const API: &str = "api";

/// The `[mfa]` application of a RADIUS front-end client.
pub fn radius_application(client: &str) -> String {
    format!("radius:{client}")
}

/// The parts of the daemon a login needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pipeline<'a> {
    /// Where the throttle's counts are kept (none: nothing is counted).
    pub db: Option<&'a StateDb>,
    /// Second factors (none: the first factor alone).
    pub mfa: Option<&'a MfaStore>,
    /// Upstream dialogues waiting for answers (none: an upstream challenge refuses the
    /// login).
    pub dialogues: Option<&'a Dialogues>,
}

/// One login attempt, as a door hands it to [`login`].
#[derive(Debug)]
pub struct Attempt<'a> {
    /// The user name as typed.
    pub user: &'a str,
    /// What proves it is them.
    pub credential: Credential<'a>,
    /// Where it comes from, for the throttle.
    pub origin: Origin,
    /// Which door it came through.
    pub door: Door<'a>,
}

/// What a user gives to log in.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// A password (PAP on RADIUS; `password,code` on RADIUS with MFA, see [`radius`]).
    Password(&'a [u8]),
    /// A CHAP response (RFC 2865 §5.3), which only upstream RADIUS servers can check.
    Chap(ChapProof<'a>),
    /// The answer to a RADIUS Access-Challenge: its State and the code.
    ChallengeAnswer {
        /// The State of the Access-Challenge.
        state: &'a [u8],
        /// The code, sent as the User-Password.
        code: &'a [u8],
    },
    /// The answer to an upstream server's challenge, taken from [`Dialogues`] by the door.
    Relay {
        /// The dialogue it answers.
        dialogue: &'a Dialogue,
        /// What the user typed.
        response: &'a [u8],
    },
}

/// Which door an attempt comes through: it decides which users are asked, how the attempt
/// is recorded, and which `[mfa]` application applies.
#[derive(Debug, Clone, Copy)]
pub enum Door<'a> {
    /// `POST /api/auth/1.0/login`: recorded with the current REST request; application
    /// [`API`]; a second factor owed is [`Settled::Owed`].
    Rest,
    /// HTTP Basic on a management request: local users only (an unknown user is a failure
    /// even with remote servers configured), not recorded (it is checked on every request;
    /// it is not a login), and a user who owes a second factor is refused.
    Basic,
    /// The RADIUS front-end: recorded at the source address and `radius:<client>`; the second
    /// factor is a challenge ([`radius`]).
    Radius(&'a radius::Origin),
}

/// How an attempt is recorded in the audit log.
#[derive(Debug, Clone)]
enum Audit {
    /// Not at all (HTTP Basic checks credentials on every request; they are not logins).
    Skip,
    /// With the current REST request's source and route.
    Request,
    /// With this (source, action), e.g. (`192.0.2.7:1645`, `radius:vpn`).
    At(CompactString, CompactString),
}

/// What a walk hands back to the pipeline: its outcome for the throttle and, for the audit
/// log, its decision.
pub trait Walked {
    /// The outcome the walk reached.
    fn outcome(&self) -> &Outcome;
    /// The whole decision (method, server, latency), when the walk made one.
    fn decision(&self) -> Option<&Decision>;
}

impl Walked for Decision {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn decision(&self) -> Option<&Decision> {
        Some(self)
    }
}

/// A login, decided: the engine's decision and how the pipeline settled it.
#[derive(Debug)]
pub struct Login {
    /// What the walk decided (for a challenge answer: the accepted code's decision).
    pub decision: Decision,
    /// How the login ends.
    pub settled: Settled,
}

impl Login {
    /// The roles the first factor granted (none unless it accepted).
    pub fn roles(&self) -> &[String] {
        match &self.decision.outcome {
            Outcome::Accept(roles) => roles,
            _ => &[],
        }
    }
}

/// How a login ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Logged in with the decision's roles.
    Accepted,
    /// The first factor is right and a code is owed (REST: a partial token follows).
    Owed {
        /// The user has an activated TOTP device.
        totp: bool,
        /// A login code was just sent by this channel.
        sent: Option<Channel>,
    },
    /// RADIUS: answer with an Access-Challenge carrying this State.
    Challenged([u8; radius::STATE_LEN], radius::Prompt),
    /// An upstream server asks for another step: pass its challenge on with this handle.
    Relayed(Relayed),
    /// Refused.
    Refused(Refusal),
}

/// An upstream challenge to pass on to the user, and the handle of its dialogue.
#[derive(Clone, PartialEq, Eq)]
pub struct Relayed {
    /// The handle that answers it (a partial token, a State); single use.
    pub handle: [u8; dialogue::HANDLE_LEN],
    /// What to show the user (the server's Reply-Messages).
    pub messages: Vec<String>,
    /// Whether the answer may be shown as it is typed.
    pub echo: bool,
    /// When the dialogue stops waiting.
    pub expires: Instant,
}

impl std::fmt::Debug for Relayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relayed")
            .field("messages", &self.messages)
            .field("echo", &self.echo)
            .finish_non_exhaustive()
    }
}

/// Why a login is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong credentials, or an unknown user.
    InvalidCredentials,
    /// The credentials were right, but no role mapping matched.
    NoRoleMapped,
    /// No server answered.
    ServersUnavailable,
    /// HTTP Basic by a user who owes a second factor.
    SecondFactorRequired,
    /// The second factor refused.
    SecondFactor(CodeRefusal),
}

/// Why the second factor refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// The code is wrong.
    InvalidCode,
    /// Locked out of the second factor for this many seconds.
    LockedOut(u64),
    /// The RADIUS State is unknown, spent, expired, someone else's, or its user is gone.
    UnknownChallenge,
    /// A second factor is owed and the user has no way to give one over this door.
    NotEnrolled,
    /// A delivered code is owed and could not be sent (`failmode = "secure"`).
    DeliveryFailed,
    /// The state database failed.
    Unavailable,
}

/// Runs `attempt` through the pipeline (module documentation).
pub async fn login(
    pipeline: Pipeline<'_>,
    live: &Live,
    attempt: Attempt<'_>,
) -> Result<Login, Locked> {
    let Attempt {
        user,
        credential,
        origin,
        door,
    } = attempt;
    let remote = !matches!(door, Door::Basic) && live.engine.has_remote_servers();
    let (decision, second) = match door {
        Door::Basic => {
            let walk = move || async move {
                let started = Instant::now();
                let outcome = match credential {
                    Credential::Password(password) => {
                        live.engine.authenticate_local(user, password).await
                    }
                    Credential::Chap(_)
                    | Credential::ChallengeAnswer { .. }
                    | Credential::Relay { .. } => {
                        Outcome::Reject(Reason::Refused("HTTP Basic carries a password".into()))
                    }
                };
                Decision {
                    outcome,
                    method: None,
                    server: None,
                    latency: started.elapsed(),
                }
            };
            let decision = first_factor(pipeline.db, live, user, origin, remote, Audit::Skip, walk);
            (decision.await?, None)
        }
        Door::Rest => {
            let walk = move || async move {
                match credential {
                    Credential::Password(password) => {
                        live.engine.authenticate(user, password).await
                    }
                    Credential::Chap(chap) => live.engine.authenticate_chap(user, &chap).await,
                    Credential::ChallengeAnswer { code, .. } => {
                        live.engine.authenticate(user, code).await
                    }
                    Credential::Relay { dialogue, response } => {
                        Box::pin(relay(live, user, dialogue, response)).await
                    }
                }
            };
            let decision = first_factor(
                pipeline.db,
                live,
                user,
                origin,
                remote,
                Audit::Request,
                walk,
            );
            (decision.await?, None)
        }
        Door::Radius(at) => {
            let audit = Audit::At(
                compact_str::format_compact!("{}", at.source),
                CompactString::from(&*at.application),
            );
            let walk = move || async move {
                match credential {
                    // Boxed: answers to upstream challenges are few, and their future is
                    // kilobytes that every other login would carry.
                    Credential::Relay { dialogue, response } => {
                        Box::pin(async {
                            let decision = relay(live, user, dialogue, response).await;
                            match pipeline.mfa {
                                Some(mfa) if !upstream_challenge_is_second_factor(live) => {
                                    radius::after_first_factor(mfa, live, at, user, decision).await
                                }
                                _ => radius::Walked::plain(decision),
                            }
                        })
                        .await
                    }
                    _ => radius::walk(pipeline.mfa, live, at, user, credential).await,
                }
            };
            let walked = first_factor(pipeline.db, live, user, origin, remote, audit, walk).await?;
            (walked.decision, walked.second)
        }
    };
    let settled = match second {
        Some(radius::Second::Challenge(state, prompt)) => Settled::Challenged(state, prompt),
        Some(radius::Second::Refused(refusal)) => Settled::Refused(Refusal::SecondFactor(refusal)),
        None => match Conclusion::of(&decision.outcome, remote) {
            Conclusion::Accepted(roles) => match (door, pipeline.mfa) {
                (Door::Basic, _) => {
                    if owes_second_factor(live, API, &UserKey::of(user), roles) {
                        Settled::Refused(Refusal::SecondFactorRequired)
                    } else {
                        Settled::Accepted
                    }
                }
                // A login that answered an upstream challenge has given a second factor
                // (unless configured otherwise).
                (Door::Rest, Some(_))
                    if matches!(credential, Credential::Relay { .. })
                        && upstream_challenge_is_second_factor(live) =>
                {
                    Settled::Accepted
                }
                (Door::Rest, Some(mfa)) => {
                    match second_factor(mfa, live, API, user, roles, || None).await {
                        Owed::Nothing => Settled::Accepted,
                        Owed::Code { totp, sent } => Settled::Owed { totp, sent },
                        Owed::LockedOut(seconds) => {
                            Settled::Refused(Refusal::SecondFactor(CodeRefusal::LockedOut(seconds)))
                        }
                        Owed::DeliveryFailed => {
                            Settled::Refused(Refusal::SecondFactor(CodeRefusal::DeliveryFailed))
                        }
                        Owed::Unavailable(e) => {
                            tracing::error!(error = %e, "second factor: state database");
                            Settled::Refused(Refusal::SecondFactor(CodeRefusal::Unavailable))
                        }
                    }
                }
                // The RADIUS walk has applied its second factor already.
                (Door::Rest, None) | (Door::Radius(_), _) => Settled::Accepted,
            },
            Conclusion::Challenged(challenge) => {
                let party = match door {
                    Door::Radius(at) => Party::Radius {
                        client_id: at.client_id,
                        source: at.source.ip(),
                    },
                    Door::Rest | Door::Basic => Party::Rest,
                };
                let round = match credential {
                    Credential::Relay { dialogue, .. } => dialogue.round.saturating_add(1),
                    _ => 1,
                };
                let lifetime = std::time::Duration::from_secs(u64::from(
                    live.config.authentication.challenge_timeout,
                ));
                relayed(pipeline.dialogues, user, party, challenge, round, lifetime)
            }
            Conclusion::NoRoleMapped => Settled::Refused(Refusal::NoRoleMapped),
            Conclusion::InvalidCredentials => Settled::Refused(Refusal::InvalidCredentials),
            Conclusion::ServersUnavailable => Settled::Refused(Refusal::ServersUnavailable),
        },
    };
    Ok(Login { decision, settled })
}

/// Runs `walk` under the throttle, and records its decision in the audit log as `audit`
/// says; `remote` is whether remote servers can answer for this door.
async fn first_factor<W: Walked, F>(
    db: Option<&StateDb>,
    live: &Live,
    user: &str,
    origin: Origin,
    remote: bool,
    audit: Audit,
    walk: impl FnOnce() -> F,
) -> Result<W, Locked>
where
    F: Future<Output = W>,
{
    let ticket = match db {
        Some(db) => {
            let attempt = throttle::Attempt::new(user, origin);
            throttle::begin(db, &live.config.throttle, attempt).await?
        }
        None => Ticket::none(),
    };
    // Made only now: a future passed in would be held twice, as the argument and as what
    // is awaited.
    let walked = walk().await;
    ticket.finish(Evidence::of(walked.outcome(), remote));
    match (audit, walked.decision()) {
        (Audit::Skip, _) | (_, None) => {}
        (Audit::Request, Some(decision)) => crate::audit::login(user, decision, None),
        (Audit::At(source, action), Some(decision)) => {
            crate::audit::login(user, decision, Some((source, action)));
        }
    }
    Ok(walked)
}

/// The walk of an answer to an upstream challenge: to the server that sent it; another
/// challenge past [`dialogue::MAX_ROUNDS`] refuses the login.
async fn relay(live: &Live, user: &str, dialogue: &Dialogue, response: &[u8]) -> Decision {
    if dialogue.user != user {
        tracing::warn!(user, "upstream challenge answered for another user");
        return Decision {
            outcome: Outcome::Reject(Reason::Refused(
                "challenge answered for another user".into(),
            )),
            method: None,
            server: None,
            latency: std::time::Duration::ZERO,
        };
    }
    let mut decision = live
        .engine
        .answer_challenge(user, &dialogue.challenge, response)
        .await;
    if matches!(decision.outcome, Outcome::Challenge(_)) && dialogue.round >= dialogue::MAX_ROUNDS {
        tracing::warn!(
            user,
            rounds = dialogue.round,
            "upstream challenge rounds exhausted"
        );
        decision.outcome = Outcome::Reject(Reason::TooManyRounds);
    }
    decision
}

/// Opens the dialogue of an upstream `challenge` (its `round`th) for `party`.
fn relayed(
    dialogues: Option<&Dialogues>,
    user: &str,
    party: Party,
    challenge: &Challenge,
    round: u8,
    lifetime: std::time::Duration,
) -> Settled {
    let Some(dialogues) = dialogues else {
        tracing::warn!(
            user,
            "upstream challenge cannot be relayed through this door"
        );
        return Settled::Refused(Refusal::InvalidCredentials);
    };
    match dialogues.open(user, party, challenge.clone(), round, lifetime) {
        Some(handle) => Settled::Relayed(Relayed {
            handle,
            messages: challenge.messages.clone(),
            echo: challenge.echo,
            expires: Instant::now() + lifetime,
        }),
        None => {
            tracing::error!(user, "no random handle for an upstream challenge");
            Settled::Refused(Refusal::ServersUnavailable)
        }
    }
}

/// A decision as every door answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conclusion<'a> {
    /// Logged in with these roles.
    Accepted(&'a [String]),
    /// The credentials were right, but no role mapping matched.
    NoRoleMapped,
    /// Wrong credentials, or an unknown user.
    InvalidCredentials,
    /// No server answered.
    ServersUnavailable,
    /// An upstream server asks for another step.
    Challenged(&'a Challenge),
}

impl<'a> Conclusion<'a> {
    /// How `outcome` is answered; `remote` is whether remote servers are configured: without
    /// them, "unavailable" means an unknown local user, which must look like a wrong password.
    pub fn of(outcome: &'a Outcome, remote: bool) -> Conclusion<'a> {
        match outcome {
            Outcome::Accept(roles) => Conclusion::Accepted(roles),
            Outcome::Reject(Reason::NoRoleMapped) => Conclusion::NoRoleMapped,
            Outcome::Reject(_) => Conclusion::InvalidCredentials,
            Outcome::Unavailable(_) if remote => Conclusion::ServersUnavailable,
            Outcome::Unavailable(_) => Conclusion::InvalidCredentials,
            Outcome::Challenge(challenge) => Conclusion::Challenged(challenge),
        }
    }
}

/// Whether a login that completed an upstream challenge has given its second factor
/// (`authentication.upstream_challenge_is_second_factor`).
fn upstream_challenge_is_second_factor(live: &Live) -> bool {
    live.config
        .authentication
        .upstream_challenge_is_second_factor
}

/// Whether the `[mfa]` policy of `application` makes `user`, holding `roles`, owe a second
/// factor. HTTP Basic asks only this: a user who owes one is refused, and no code is sent.
pub fn owes_second_factor(
    live: &Live,
    application: &str,
    user: &UserKey,
    roles: &[String],
) -> bool {
    live.config.mfa.policy_for(application).applies(user, roles)
}

/// What the second-factor rules make of a user the first factor accepted.
#[derive(Debug)]
pub enum Owed {
    /// Nothing: the policy does not apply, or a delivered code could not be sent and
    /// `failmode = "safe"` lets the first factor suffice (recorded in the audit log).
    Nothing,
    /// A code is owed.
    Code {
        /// The user has an activated TOTP device.
        totp: bool,
        /// A login code was just sent by this channel.
        sent: Option<Channel>,
    },
    /// The user may not give a code for this many seconds: too many wrong codes, or the MFA
    /// service sends no more codes for now.
    LockedOut(u64),
    /// A delivered code is owed and could not be sent; `failmode = "secure"` refuses.
    DeliveryFailed,
    /// The state database failed.
    Unavailable(StateError),
}

/// Applies the `[mfa]` policy of `application` to `user`, whom the first factor accepted
/// with `roles`: locked out, or which code is owed (a delivered code is sent here). Delivery
/// outcomes are recorded in the audit log at what `at` gives (`None`: the current REST
/// request), asked only when one is recorded.
pub async fn second_factor(
    mfa: &MfaStore,
    live: &Live,
    application: &str,
    user: &str,
    roles: &[String],
    at: impl FnOnce() -> Option<(String, String)>,
) -> Owed {
    let policy = live.config.mfa.policy_for(application);
    // Nobody owes one under this policy: no need for the user's key.
    if policy.required == MfaRequired::None {
        return Owed::Nothing;
    }
    let key = UserKey::of(user);
    if !policy.applies(&key, roles) {
        return Owed::Nothing;
    }
    // Boxed: its future is kilobytes (the delivery of a code), and most logins owe nothing;
    // the logins that do not would carry it all the same.
    Box::pin(owed(mfa, live, policy, key, user, at)).await
}

/// [`second_factor`] for a user the policy applies to.
async fn owed(
    mfa: &MfaStore,
    live: &Live,
    policy: &portcullis_config::MfaPolicy,
    key: UserKey,
    user: &str,
    at: impl FnOnce() -> Option<(String, String)>,
) -> Owed {
    match mfa.locked_for(&key).await {
        Ok(Some(seconds)) => return Owed::LockedOut(seconds),
        Ok(None) => {}
        Err(e) => return Owed::Unavailable(e),
    }
    let started = Instant::now();
    let options = match mfa.options(&key, &live.config.mfa_delivery).await {
        Ok(options) => options,
        Err(e) => return Owed::Unavailable(e),
    };
    let audit = |result, reason: &str| {
        crate::mfa::audit(
            user,
            at(),
            None,
            result,
            Some(reason.to_string()),
            started.elapsed(),
        );
    };
    match options.delivery {
        Delivery::Down if policy.failmode == FailMode::Safe => {
            tracing::warn!(
                user,
                "second factor cannot be delivered; failmode safe lets the login through"
            );
            audit(
                "accept",
                "MFA_DELIVERY_FAILED; failmode safe: no second factor",
            );
            Owed::Nothing
        }
        Delivery::Down => {
            tracing::warn!(
                user,
                "second factor cannot be delivered; failmode secure refuses the login"
            );
            audit("reject", "MFA_DELIVERY_FAILED; failmode secure");
            Owed::DeliveryFailed
        }
        Delivery::Locked => {
            audit(
                "reject",
                "LOCKOUT: the MFA service sends no more codes for now",
            );
            Owed::LockedOut(crate::mfa::service::LOCKOUT_SECONDS.unsigned_abs())
        }
        Delivery::Sent(channel) => Owed::Code {
            totp: options.totp,
            sent: Some(channel),
        },
        Delivery::NotConfigured => Owed::Code {
            totp: options.totp,
            sent: None,
        },
    }
}

/// Checks `code`, the second factor of `user`, and records the result in the audit log at
/// `at` (`None`: the current REST request), with the latency since `started`.
pub async fn check_code(
    mfa: &MfaStore,
    live: &Live,
    user: &str,
    code: &str,
    at: Option<(String, String)>,
    started: Instant,
) -> Result<crate::mfa::Verdict, StateError> {
    let verdict = mfa
        .verify(
            &UserKey::of(user),
            code,
            Lockout::of(&live.config.mfa),
            &live.config.mfa_delivery,
        )
        .await?;
    let (method, result, reason) = crate::mfa::audit_verdict(verdict);
    crate::mfa::audit(user, at, method, result, reason, started.elapsed());
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_hide_unknown_local_users() {
        let roles = vec!["Monitor".to_string()];
        let accept = Outcome::Accept(roles.clone());
        assert_eq!(Conclusion::of(&accept, false), Conclusion::Accepted(&roles));
        let unmapped = Outcome::Reject(Reason::NoRoleMapped);
        assert_eq!(Conclusion::of(&unmapped, true), Conclusion::NoRoleMapped);
        let wrong = Outcome::Reject(Reason::Refused("wrong password".into()));
        assert_eq!(Conclusion::of(&wrong, true), Conclusion::InvalidCredentials);
        let silent = Outcome::Unavailable("no RADIUS server answered".into());
        assert_eq!(
            Conclusion::of(&silent, true),
            Conclusion::ServersUnavailable
        );
        assert_eq!(
            Conclusion::of(&silent, false),
            Conclusion::InvalidCredentials
        );
    }
}
