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
//! [`Answer::of`] then reads the decision the way every door answers it: accepted with roles,
//! no role mapped, invalid credentials, or servers unavailable (an unknown user when only
//! local users are configured, which must look like a wrong password).

use std::future::Future;

use crate::engine::{Decision, Outcome, Reason};
use crate::live::Live;
use crate::state::StateDb;
use crate::throttle::{self, Locked, Origin, Ticket, Verdict};

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
pub enum Answer<'a> {
    /// Logged in with these roles.
    Accepted(&'a [String]),
    /// The credentials were right, but no role mapping matched.
    NoRoleMapped,
    /// Wrong credentials, or an unknown user.
    InvalidCredentials,
    /// No server answered.
    ServersUnavailable,
}

impl<'a> Answer<'a> {
    /// How `outcome` is answered; `remote` is whether remote servers are configured: without
    /// them, "unavailable" means an unknown local user, which must look like a wrong password.
    pub fn of(outcome: &'a Outcome, remote: bool) -> Answer<'a> {
        match outcome {
            Outcome::Accept(roles) => Answer::Accepted(roles),
            Outcome::Reject(Reason::NoRoleMapped) => Answer::NoRoleMapped,
            Outcome::Reject(_) => Answer::InvalidCredentials,
            Outcome::Unavailable(_) if remote => Answer::ServersUnavailable,
            Outcome::Unavailable(_) => Answer::InvalidCredentials,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_hide_unknown_local_users() {
        let roles = vec!["Monitor".to_string()];
        let accept = Outcome::Accept(roles.clone());
        assert_eq!(Answer::of(&accept, false), Answer::Accepted(&roles));
        let unmapped = Outcome::Reject(Reason::NoRoleMapped);
        assert_eq!(Answer::of(&unmapped, true), Answer::NoRoleMapped);
        let wrong = Outcome::Reject(Reason::Refused("wrong password".into()));
        assert_eq!(Answer::of(&wrong, true), Answer::InvalidCredentials);
        let silent = Outcome::Unavailable("no RADIUS server answered".into());
        assert_eq!(Answer::of(&silent, true), Answer::ServersUnavailable);
        assert_eq!(Answer::of(&silent, false), Answer::InvalidCredentials);
    }
}
