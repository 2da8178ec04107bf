//! The login pipeline every door calls (REST login, HTTP Basic, the RADIUS front-end): the
//! rules about a login attempt live here once, so no door can forget one.
//!
//! [`first_factor`] takes an attempt (who, from where, how it is audited) and the walk that
//! checks it, and around the walk:
//! 1. checks the brute-force throttle before anything is checked (a locked user or source is
//!    refused unseen: [`Locked`]);
//! 2. runs the walk (the engine's sequence, or the RADIUS front-end's walk with its second
//!    factor);
//! 3. settles the throttle with what the walk proved ([`crate::throttle::Verdict::of`]);
//! 4. records the attempt in the audit log (unless the door audits no logins: HTTP Basic).
//!
//! [`Conclusion::of`] then reads the decision the way every door answers it: accepted with roles,
//! no role mapped, invalid credentials, or servers unavailable (an unknown user when only
//! local users are configured, which must look like a wrong password).
//!
//! For an accepted user, [`second_factor`] applies the `[mfa]` policy of the door's
//! application ([`API`] for the REST API, `radius:<client>` for the RADIUS front-end): nothing
//! owed, a code owed (and how it can be given, a delivered code sent on the way), locked out,
//! or a delivery that failed under `failmode = "secure"`. [`check_code`] checks a code given
//! for it and records the result. The doors only turn these into their answers: a partial
//! token or an Access-Challenge, a 429 or an Access-Reject.

use std::future::Future;
use std::time::Instant;

use portcullis_config::{FailMode, UserKey};

use crate::engine::{Decision, Outcome, Reason};
use crate::live::Live;
use crate::mfa::delivery::Channel;
use crate::mfa::lockout::Lockout;
use crate::mfa::{Delivery, MfaStore};
use crate::state::{StateDb, StateError};
use crate::throttle::{self, Locked, Origin, Ticket, Verdict};

/// The application name of the REST API (login and HTTP Basic) in `[mfa]` overrides.
pub const API: &str = "api";

/// The `[mfa]` application of a RADIUS front-end client.
pub fn radius_application(client: &str) -> String {
    format!("radius:{client}")
}

/// One login attempt, as far as the pipeline's rules are concerned.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// The user name as typed.
    pub user: &'a str,
    /// Where it comes from, for the throttle.
    pub origin: Origin,
    /// Whether only local users are asked (HTTP Basic): then an unknown user is a failure
    /// even with remote servers configured.
    pub local_only: bool,
    /// How the attempt is recorded in the audit log.
    pub audit: Audit,
}

/// How an attempt is recorded in the audit log.
#[derive(Debug, Clone)]
pub enum Audit {
    /// Not at all (HTTP Basic checks credentials on every request; they are not logins).
    Skip,
    /// With the current REST request's source and route.
    Request,
    /// With this (source, action), e.g. (`192.0.2.7:1645`, `radius:vpn`).
    At(String, String),
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

/// The local users' answer alone (HTTP Basic), which is never audited as a login.
impl Walked for Outcome {
    fn outcome(&self) -> &Outcome {
        self
    }

    fn decision(&self) -> Option<&Decision> {
        None
    }
}

/// Runs `walk` for `attempt` under the pipeline's rules (module documentation); `db` is the
/// state database that keeps the throttle's counts (`None`: nothing is counted).
pub async fn first_factor<W: Walked>(
    db: Option<&StateDb>,
    live: &Live,
    attempt: Attempt<'_>,
    walk: impl Future<Output = W>,
) -> Result<W, Locked> {
    let ticket = match db {
        Some(db) => {
            let attempt = throttle::Attempt::new(attempt.user, attempt.origin);
            throttle::begin(db, &live.config.throttle, attempt).await?
        }
        None => Ticket::none(),
    };
    let walked = walk.await;
    let remote = !attempt.local_only && live.engine.has_remote_servers();
    ticket.finish(Verdict::of(walked.outcome(), remote));
    match (attempt.audit, walked.decision()) {
        (Audit::Skip, _) | (_, None) => {}
        (Audit::Request, Some(decision)) => crate::audit::login(attempt.user, decision, None),
        (Audit::At(source, action), Some(decision)) => {
            crate::audit::login(attempt.user, decision, Some((source, action)));
        }
    }
    Ok(walked)
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
        }
    }
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
/// outcomes are recorded in the audit log at `at` (`None`: the current REST request).
pub async fn second_factor(
    mfa: &MfaStore,
    live: &Live,
    application: &str,
    user: &str,
    roles: &[String],
    at: Option<(String, String)>,
) -> Owed {
    let policy = live.config.mfa.policy_for(application);
    let key = UserKey::of(user);
    if !policy.applies(&key, roles) {
        return Owed::Nothing;
    }
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
            at,
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
