//! The second factor of a RADIUS login (RFC 2865 §4.4 Access-Challenge), decided here for
//! the front-end (`frontend/`), which only words the result.
//!
//! When the policy for `radius:<client name>` (else `radius`, else `[mfa.policy]`) applies to
//! a user the sequence accepted, the answer is a challenge: a random single-use State (16
//! octets) and a prompt; the client sends a new Access-Request with that State and the code
//! as User-Password. The State is bound to the user name, the front-end client and the source
//! address, expires after 300 s, and is kept as a SHA-256 hash in the state database
//! (`mfa_challenges`, at most [`MAX_CHALLENGES`]). A user may also send `password,code` in one
//! Access-Request: when the part after the last comma has the shape of a code this user can
//! give (six digits with a TOTP device, the shape of their delivered login codes otherwise),
//! only the part before the comma is tried as the password; else the whole string is, so no
//! password is tried twice upstream.
//!
//! A user without an activated TOTP device who has a validated address in the MFA service
//! application of `[mfa_delivery]` is sent a one-time code (SMS or e-mail) and the prompt
//! says where it went. When it cannot be delivered, `failmode` decides: `secure` refuses
//! ([`CodeRefusal::DeliveryFailed`]), `safe` lets the user in without a second factor. Every
//! second-factor outcome is recorded in the audit log. Wrong codes count toward the lockout;
//! a locked-out user is refused with the time left.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use portcullis_config::{Method, UserKey};
use sha2::{Digest, Sha256};

use super::{CodeRefusal, Credential, Owed};
use crate::engine::{Decision, Outcome, Reason};
use crate::live::Live;
use crate::mfa::delivery::Channel;
use crate::mfa::{MfaStore, Verdict};
use crate::state::challenges::{ChallengeState, Pending};
use crate::state::{StateError, unix_now};

/// Octets of a State.
pub const STATE_LEN: usize = 16;
/// Seconds a challenge waits for its code.
pub const CHALLENGE_LIFETIME: i64 = 300;
/// Challenges kept at most; past it the one closest to expiry makes room.
pub const MAX_CHALLENGES: i64 = 10_000;

/// Where the code of a challenge comes from, for the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// The user's authenticator app.
    App,
    /// An SMS just sent.
    Sms,
    /// An e-mail just sent.
    Email,
}

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The front-end client's id.
    pub client_id: u32,
    /// The front-end client's name.
    pub client_name: Arc<str>,
    /// Its `[mfa]` application, `radius:<client name>` ([`crate::login::radius_application`]).
    pub application: Arc<str>,
    /// The source address.
    pub source: SocketAddr,
}

/// What MFA makes of a request, beyond the sequence's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Second {
    /// A challenge: its State and where the code comes from.
    Challenge([u8; STATE_LEN], Prompt),
    /// Refused.
    Refused(CodeRefusal),
}

/// A walk with MFA: the decision, and what MFA changes about the answer.
#[derive(Debug)]
pub struct Walked {
    /// The sequence's decision (for a challenge reply: the accepted code's).
    pub decision: Decision,
    /// `None`: answer as `decision` says.
    pub second: Option<Second>,
}

impl crate::login::Walked for Walked {
    fn outcome(&self) -> &Outcome {
        &self.decision.outcome
    }

    fn decision(&self) -> Option<&Decision> {
        Some(&self.decision)
    }
}

impl Walked {
    pub(crate) fn plain(decision: Decision) -> Walked {
        Walked {
            decision,
            second: None,
        }
    }

    fn with(decision: Decision, second: Second) -> Walked {
        Walked {
            decision,
            second: Some(second),
        }
    }
}

fn reject_decision(started: Instant) -> Decision {
    Decision {
        outcome: Outcome::Reject(Reason::SecondFactor),
        method: None,
        server: None,
        latency: started.elapsed(),
    }
}

/// The application name of `origin` in `[mfa]` overrides.
pub fn application(origin: &Origin) -> &str {
    &origin.application
}

/// The walk of a RADIUS Access-Request with its second factor: the answer to a challenge,
/// a password (maybe `password,code`), or a CHAP response; without `mfa`, the sequence alone.
pub async fn walk(
    mfa: Option<&MfaStore>,
    live: &Live,
    origin: &Origin,
    user: &str,
    credential: Credential<'_>,
) -> Walked {
    let Some(mfa) = mfa else {
        let decision = match credential {
            Credential::Password(password) | Credential::ChallengeAnswer { code: password, .. } => {
                live.engine.authenticate(user, password).await
            }
            Credential::Chap(chap) => live.engine.authenticate_chap(user, &chap).await,
            // The pipeline walks relayed answers itself.
            Credential::Relay { .. } => reject_decision(Instant::now()),
        };
        return Walked::plain(decision);
    };
    match credential {
        Credential::ChallengeAnswer { state, code } => {
            answer(mfa, live, origin, user, state, code).await
        }
        Credential::Password(password) => self::password(mfa, live, origin, user, password).await,
        Credential::Chap(chap) => {
            let decision = live.engine.authenticate_chap(user, &chap).await;
            after_first_factor(mfa, live, origin, user, decision).await
        }
        Credential::Relay { .. } => Walked::plain(reject_decision(Instant::now())),
    }
}

/// `password,code` → (`password`, `code`) at the last comma, when what follows is short
/// printable ASCII (a candidate code).
pub fn split_code(password: &[u8]) -> Option<(&[u8], &str)> {
    let comma = password.iter().rposition(|b| *b == b',')?;
    let (head, tail) = password.split_at(comma);
    let code = tail.get(1..)?;
    (!code.is_empty() && code.len() <= 64 && code.iter().all(u8::is_ascii_graphic))
        .then(|| std::str::from_utf8(code).ok().map(|code| (head, code)))
        .flatten()
}

/// A PAP request without State: the sequence with `password` (or `password,code`), then a
/// challenge when a second factor is owed.
pub async fn password(
    mfa: &MfaStore,
    live: &Live,
    origin: &Origin,
    user: &str,
    password: &[u8],
) -> Walked {
    let started = Instant::now();
    let Some((head, code)) = split_code(password) else {
        let decision = live.engine.authenticate(user, password).await;
        return after_first_factor(mfa, live, origin, user, decision).await;
    };
    let key = UserKey::of(user);
    match mfa
        .looks_like_code(&key, code, &live.config.mfa_delivery)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let decision = live.engine.authenticate(user, password).await;
            return after_first_factor(mfa, live, origin, user, decision).await;
        }
        Err(e) => return unavailable(reject_decision(started), &e),
    }
    let decision = live.engine.authenticate(user, head).await;
    if let Outcome::Accept(roles) = &decision.outcome {
        let policy = live.config.mfa.policy_for(application(origin));
        if !policy.applies(&key, roles) {
            return Walked::plain(decision);
        }
        let verdict =
            crate::login::check_code(mfa, live, user, code, Some(where_from(origin)), started)
                .await;
        return settle(verdict, decision, user, started);
    }
    Walked::plain(decision)
}

/// After the first factor (PAP or CHAP): a challenge when the policy applies to the user.
pub async fn after_first_factor(
    mfa: &MfaStore,
    live: &Live,
    origin: &Origin,
    user: &str,
    decision: Decision,
) -> Walked {
    let Outcome::Accept(roles) = &decision.outcome else {
        return Walked::plain(decision);
    };
    let owed = crate::login::second_factor(mfa, live, application(origin), user, roles, || {
        Some(where_from(origin))
    })
    .await;
    let prompt = match owed {
        Owed::Nothing => return Walked::plain(decision),
        Owed::Code { totp: true, .. } => Prompt::App,
        Owed::Code {
            sent: Some(Channel::Sms),
            ..
        } => Prompt::Sms,
        Owed::Code {
            sent: Some(Channel::Email),
            ..
        } => Prompt::Email,
        Owed::Code { sent: None, .. } => {
            return Walked::with(decision, Second::Refused(CodeRefusal::NotEnrolled));
        }
        Owed::LockedOut(seconds) => {
            return Walked::with(decision, Second::Refused(CodeRefusal::LockedOut(seconds)));
        }
        Owed::DeliveryFailed => {
            return Walked::with(decision, Second::Refused(CodeRefusal::DeliveryFailed));
        }
        Owed::Unavailable(e) => return unavailable(decision, &e),
    };
    let method = decision.method.map_or("", |m| m.name()).to_string();
    let pending = Pending {
        user: user.to_string(),
        client_id: origin.client_id,
        source: origin.source.ip().to_string(),
        roles: roles.clone(),
        method,
    };
    let created = mfa
        .db()
        .call(move |db| create(db, &pending, unix_now()))
        .await;
    match created {
        Ok(state) => Walked::with(decision, Second::Challenge(state, prompt)),
        Err(e) => unavailable(decision, &e),
    }
}

/// A request carrying a State: the User-Password is the code for that challenge.
pub async fn answer(
    mfa: &MfaStore,
    live: &Live,
    origin: &Origin,
    user: &str,
    state: &[u8],
    code: &[u8],
) -> Walked {
    let started = Instant::now();
    let hash: [u8; 32] = Sha256::digest(state).into();
    let taken = mfa
        .db()
        .call(move |db| db.take_challenge(&hash, unix_now()))
        .await;
    let pending = match taken {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return Walked::with(
                reject_decision(started),
                Second::Refused(CodeRefusal::UnknownChallenge),
            );
        }
        Err(e) => return unavailable(reject_decision(started), &e),
    };
    // The State is bound to the user, the client entry and the source address.
    if pending.user != user
        || pending.client_id != origin.client_id
        || pending.source != origin.source.ip().to_string()
    {
        tracing::warn!(user, client = %origin.client_name, "RADIUS challenge answered by another user or client");
        return Walked::with(
            reject_decision(started),
            Second::Refused(CodeRefusal::UnknownChallenge),
        );
    }
    let method = [Method::Local, Method::Radius, Method::Tacacs]
        .into_iter()
        .find(|m| m.name() == pending.method);
    let Some(roles) = roles_now(live, method, &pending) else {
        tracing::warn!(
            user,
            "RADIUS challenge answered after the local user was disabled or removed"
        );
        return Walked::with(
            reject_decision(started),
            Second::Refused(CodeRefusal::UnknownChallenge),
        );
    };
    let decision = Decision {
        outcome: Outcome::Accept(roles),
        method,
        server: None,
        latency: started.elapsed(),
    };
    let code = String::from_utf8_lossy(code);
    let verdict =
        crate::login::check_code(mfa, live, user, &code, Some(where_from(origin)), started).await;
    settle(verdict, decision, user, started)
}

/// The roles a challenge answered now grants, decided again against the live configuration:
/// a local user must still exist and be enabled, and gets the roles they hold now (a user
/// disabled, removed or demoted while the challenge waited gets none of the old rights).
/// Remote users keep what their server granted at the first factor, less roles no longer
/// defined. `None`: refuse the answer.
fn roles_now(live: &Live, method: Option<Method>, pending: &Pending) -> Option<Vec<String>> {
    if method == Some(Method::Local) {
        return live
            .config
            .local_users
            .iter()
            .find(|u| u.name == pending.user && u.enabled)
            .map(|u| u.roles.clone());
    }
    let defined = &live.config.roles;
    Some(
        pending
            .roles
            .iter()
            .filter(|role| defined.contains(role))
            .cloned()
            .collect(),
    )
}

/// The audit (source, action) of a request from `origin`.
fn where_from(origin: &Origin) -> (String, String) {
    (
        origin.source.to_string(),
        format!("{} second factor", application(origin)),
    )
}

/// The answer for a code checked (and recorded) by [`crate::login::check_code`]: `decision`
/// (an accept) when the code is good.
fn settle(
    verdict: Result<Verdict, StateError>,
    decision: Decision,
    user: &str,
    started: Instant,
) -> Walked {
    match verdict {
        Ok(Verdict::Accepted { .. }) => Walked::plain(decision),
        Ok(Verdict::Rejected { locked_for: None }) => {
            tracing::info!(user, "RADIUS second factor rejected");
            Walked::with(
                reject_decision(started),
                Second::Refused(CodeRefusal::InvalidCode),
            )
        }
        Ok(Verdict::Rejected {
            locked_for: Some(seconds),
        })
        | Ok(Verdict::Locked {
            retry_after: seconds,
        }) => {
            tracing::warn!(user, seconds, "RADIUS second factor locked out");
            Walked::with(
                reject_decision(started),
                Second::Refused(CodeRefusal::LockedOut(seconds)),
            )
        }
        Err(e) => unavailable(reject_decision(started), &e),
    }
}

fn unavailable(decision: Decision, error: &StateError) -> Walked {
    tracing::error!(error = %error, "RADIUS second factor: state database");
    Walked::with(decision, Second::Refused(CodeRefusal::Unavailable))
}

/// Stores a new challenge and returns its State (16 random octets; only the hash is kept).
pub fn create(
    db: &dyn ChallengeState,
    pending: &Pending,
    now: i64,
) -> Result<[u8; STATE_LEN], StateError> {
    let mut state = [0u8; STATE_LEN];
    getrandom::fill(&mut state).map_err(|e| StateError::Task(format!("random: {e}")))?;
    let hash: [u8; 32] = Sha256::digest(state).into();
    db.save_challenge(
        &hash,
        pending,
        now,
        now + CHALLENGE_LIFETIME,
        MAX_CHALLENGES,
    )?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDb;

    #[test]
    fn split_password_and_code() {
        assert_eq!(split_code(b"pw,123456"), Some((&b"pw"[..], "123456")));
        assert_eq!(split_code(b"a,b,000001"), Some((&b"a,b"[..], "000001")));
        assert_eq!(split_code(b",123456"), Some((&b""[..], "123456")));
        // Candidates of any code shape; whether one fits the user is decided later.
        assert_eq!(split_code(b"pw,GW-AB12"), Some((&b"pw"[..], "GW-AB12")));
        assert_eq!(split_code(b"pw,"), None);
        assert_eq!(split_code(b"pw,12 45"), None);
        assert_eq!(split_code(&[b"pw,".as_slice(), &[b'1'; 65]].concat()), None);
        assert_eq!(split_code(b"pw123456"), None);
    }

    #[test]
    fn challenges_are_single_use_expire_and_are_bounded() {
        let db = StateDb::in_memory().unwrap();
        let pending = Pending {
            user: "alice".into(),
            client_id: 1,
            source: "127.0.0.1".into(),
            roles: vec!["Administrator".into()],
            method: "Local".into(),
        };
        let state = create(&db, &pending, 1000).unwrap();
        let hash: [u8; 32] = Sha256::digest(state).into();
        assert_eq!(
            db.take_challenge(&hash, 1001).unwrap(),
            Some(pending.clone())
        );
        assert_eq!(db.take_challenge(&hash, 1001).unwrap(), None);
        let state = create(&db, &pending, 1000).unwrap();
        let hash: [u8; 32] = Sha256::digest(state).into();
        assert_eq!(
            db.take_challenge(&hash, 1000 + CHALLENGE_LIFETIME).unwrap(),
            None
        );
        // The State itself is never stored.
        let state = create(&db, &pending, 2000).unwrap();
        let stored: Vec<u8> = db
            .with(|conn| {
                Ok(conn.query_row("SELECT state_hash FROM mfa_challenges", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_ne!(stored, state);
        for now in 0..(MAX_CHALLENGES + 5) {
            create(&db, &pending, 3000 + now % 2).unwrap();
        }
        db.with(|conn| {
            let count: i64 =
                conn.query_row("SELECT count(*) FROM mfa_challenges", [], |r| r.get(0))?;
            assert_eq!(count, MAX_CHALLENGES);
            Ok(())
        })
        .unwrap();
    }
}
