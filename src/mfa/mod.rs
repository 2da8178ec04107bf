//! Second factors: TOTP authenticator apps paired per user ([`devices`]), their secrets
//! sealed at rest ([`seal`]), lockout after repeated failures ([`lockout`]), and the one
//! check every front door calls, [`MfaStore::verify`]. The MFA service ([`service`]):
//! applications, users with validated addresses, one-time codes delivered by SMS webhook or
//! e-mail ([`delivery`], [`smtp`]), generated and hashed by [`codes`].
//!
//! Who owes a second factor is configuration (`[mfa]`, see
//! [`portcullis_config::MfaPolicy::applies`]); what the daemon learns (devices, counters,
//! RADIUS challenges) lives in the state database.

pub mod codes;
pub mod delivery;
pub mod devices;
pub mod lockout;
pub mod qr;
pub mod seal;
pub mod service;
pub mod smtp;
pub mod time;
pub mod totp;

use std::path::Path;

use portcullis_config::{MfaDelivery, UserKey};

use crate::state::mfa::MfaTx;
use crate::state::{StateDb, StateError, unix_now};
use delivery::Channel;
use lockout::Lockout;
use seal::SealKey;

/// The state database and the key that seals device secrets.
#[derive(Debug, Clone)]
pub struct MfaStore {
    db: StateDb,
    key: SealKey,
}

/// The result of a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A code was accepted; `method` names which check took it (`totp`, ...).
    Accepted {
        /// The check that accepted the code.
        method: &'static str,
    },
    /// The code is wrong (or spent). `locked_for` is set when this failure locked the user.
    Rejected {
        /// Seconds of the lockout this failure started.
        locked_for: Option<u64>,
    },
    /// The user is locked out; the code was not looked at.
    Locked {
        /// Seconds until the lockout ends.
        retry_after: u64,
    },
}

/// Whether a code can reach the user by another way than an app they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// No delivered code: the user has an activated TOTP device, or no validated address in
    /// the application of `[mfa_delivery] application`.
    NotConfigured,
    /// A login code was sent by this channel.
    Sent(Channel),
    /// The user has a validated address but delivery failed; `failmode` decides.
    Down,
    /// The MFA service refuses to send: too many wrong codes or codes sent lately.
    Locked,
}

/// How `user` can give a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The user has an activated TOTP device.
    pub totp: bool,
    /// Delivered codes.
    pub delivery: Delivery,
}

impl Options {
    /// Whether any second factor can be given at all.
    pub fn any(&self) -> bool {
        self.totp || matches!(self.delivery, Delivery::Sent(_))
    }
}

impl MfaStore {
    /// Opens the sealing key `state_dir/mfa.key` (created on first start, mode 0600).
    pub fn open(db: StateDb, state_dir: &Path) -> std::io::Result<MfaStore> {
        Ok(MfaStore {
            db,
            key: SealKey::load_or_create(state_dir)?,
        })
    }

    /// An in-memory database and a random key, for tests.
    pub fn in_memory() -> Result<MfaStore, StateError> {
        Ok(MfaStore {
            db: StateDb::in_memory()?,
            key: SealKey::random().map_err(|e| StateError::Task(e.to_string()))?,
        })
    }

    /// The state database.
    pub fn db(&self) -> &StateDb {
        &self.db
    }

    /// The sealing key.
    pub fn key(&self) -> &SealKey {
        &self.key
    }

    /// How `user` can give a second factor: without an activated TOTP device, a login code is
    /// sent to the user's validated address in the application of `[mfa_delivery]`.
    pub async fn options(
        &self,
        user: &UserKey,
        delivery: &MfaDelivery,
    ) -> Result<Options, StateError> {
        let owned = user.clone();
        let totp = self
            .db
            .mfa(move |tx| devices::has_active(tx, &owned))
            .await?;
        let delivery = if totp {
            Delivery::NotConfigured
        } else {
            start_delivery(&self.db, delivery, user).await
        };
        Ok(Options { totp, delivery })
    }

    /// Whether `user` has a second factor of any kind: an activated TOTP device, or a
    /// validated address for delivered codes in the application of `delivery`.
    pub async fn has_second_factor(
        &self,
        user: &UserKey,
        delivery: &MfaDelivery,
    ) -> Result<bool, StateError> {
        let (user, application) = (user.clone(), delivery.application.clone());
        self.db
            .mfa(move |tx| {
                Ok(devices::has_active(tx, &user)?
                    || service::has_validated_address(tx, &application, &user)
                        .map_err(|e| StateError::Task(format!("enrolment: {e}")))?)
            })
            .await
    }

    /// Whether `text` has the shape of a code `user` could give: six digits with an activated
    /// TOTP device, or the shape of the login codes of their validated address.
    pub async fn looks_like_code(
        &self,
        user: &UserKey,
        text: &str,
        delivery: &MfaDelivery,
    ) -> Result<bool, StateError> {
        let (user, text) = (user.clone(), text.to_string());
        let application = delivery.application.clone();
        self.db
            .mfa(move |tx| {
                let totp_shaped = text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit());
                if totp_shaped && devices::has_active(tx, &user)? {
                    return Ok(true);
                }
                service::looks_like_login_code(tx, &application, &user, &text)
                    .map_err(|e| StateError::Task(format!("login code shape: {e}")))
            })
            .await
    }

    /// Seconds `user` stays locked out, if they are.
    pub async fn locked_for(&self, user: &UserKey) -> Result<Option<u64>, StateError> {
        let user = user.clone();
        self.db
            .mfa(move |tx| lockout::locked_for(tx, &user, unix_now()))
            .await
    }

    /// Checks `code` as `user`'s second factor: refused unseen while the user is locked out;
    /// otherwise each kind of code is tried ([`SecondFactor`]), and the failure counter is
    /// cleared or advanced. Delivered codes are looked up in the application of
    /// `delivery`. Emits `portcullis_mfa_outcomes_total`.
    pub async fn verify(
        &self,
        user: &UserKey,
        code: &str,
        settings: Lockout,
        delivery: &MfaDelivery,
    ) -> Result<Verdict, StateError> {
        let (user, code, key) = (user.clone(), code.to_string(), self.key.clone());
        let application = delivery.application.clone();
        let verdict = self
            .db
            .mfa(move |tx| {
                let factors = Factors {
                    key: &key,
                    application: &application,
                };
                verify_at(tx, &factors, &user, &code, settings, unix_now())
            })
            .await?;
        let (method, result) = match verdict {
            Verdict::Accepted { method } => (method, "accept"),
            Verdict::Rejected { locked_for: None } => ("totp", "reject"),
            Verdict::Rejected {
                locked_for: Some(_),
            } => ("totp", "lockout"),
            Verdict::Locked { .. } => ("totp", "locked"),
        };
        metrics::counter!("portcullis_mfa_outcomes_total", "method" => method, "result" => result)
            .increment(1);
        Ok(verdict)
    }
}

/// Records a second-factor outcome in the audit log (kind `login`): `user`, from where and
/// through what (`origin` = (source, action); without it the current REST request's), the
/// `method` (`totp`, `delivered`, or none when no code was taken), `result` and `reason`.
pub fn audit(
    user: &str,
    origin: Option<(String, String)>,
    method: Option<&'static str>,
    result: &'static str,
    reason: Option<String>,
    latency: std::time::Duration,
) {
    let (source, action) = origin
        .or_else(|| crate::audit::current().map(|(_, source, action)| (source, action)))
        .unwrap_or_else(|| ("-".to_string(), "-".to_string()));
    crate::audit::record(crate::audit::NewEvent {
        kind: crate::audit::Kind::Login,
        user: user.into(),
        source: source.into(),
        action: action.into(),
        result,
        reason,
        method,
        server: None,
        latency,
    });
}

/// The audit (result, reason) of a checked code.
pub fn audit_verdict(verdict: Verdict) -> (Option<&'static str>, &'static str, Option<String>) {
    match verdict {
        Verdict::Accepted { method } => (Some(method), "accept", Some("second factor".into())),
        Verdict::Rejected { locked_for: None } => (None, "reject", Some("INVALID_CODE".into())),
        Verdict::Rejected {
            locked_for: Some(seconds),
        } => (
            None,
            "reject",
            Some(format!("INVALID_CODE; LOCKOUT for {seconds} s")),
        ),
        Verdict::Locked { retry_after } => (
            None,
            "reject",
            Some(format!("LOCKOUT, {retry_after} s left")),
        ),
    }
}

/// The kinds of second factor, tried in order by [`verify_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// A code from one of the user's activated TOTP devices.
    Totp,
    /// A one-time code delivered to the user (SMS, e-mail).
    Delivered,
}

impl SecondFactor {
    /// Every kind, in the order they are tried.
    pub const ALL: [SecondFactor; 2] = [SecondFactor::Totp, SecondFactor::Delivered];

    /// The name in metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            SecondFactor::Totp => "totp",
            SecondFactor::Delivered => "delivered",
        }
    }

    /// Whether `code` is a good second factor of this kind for `user`, consuming it.
    fn check(
        self,
        tx: &mut dyn MfaTx,
        factors: &Factors<'_>,
        user: &UserKey,
        code: &str,
        now: i64,
    ) -> Result<bool, StateError> {
        match self {
            SecondFactor::Totp => devices::check_totp(tx, factors.key, user, code, now),
            SecondFactor::Delivered => {
                check_delivered_code(tx, factors.application, user, code, now)
            }
        }
    }
}

/// What the checks of [`SecondFactor`] need besides the code.
#[derive(Debug, Clone, Copy)]
pub struct Factors<'a> {
    /// The key that seals TOTP secrets.
    pub key: &'a SealKey,
    /// The MFA service application whose validated users get delivered codes
    /// (`[mfa_delivery] application`).
    pub application: &'a str,
}

/// THE place where a delivered one-time code (SMS webhook, SMTP e-mail) is checked and
/// consumed: the outstanding login code of `user` in `application`. A wrong code is counted
/// by the caller's lockout only.
fn check_delivered_code(
    tx: &mut dyn MfaTx,
    application: &str,
    user: &UserKey,
    code: &str,
    now: i64,
) -> Result<bool, StateError> {
    service::consume_login_code(tx, application, user, code, now)
        .map_err(|e| StateError::Task(format!("delivered code: {e}")))
}

/// Sends a login code when a login owes a second factor and the user has a validated
/// address; the reason of a failed delivery is logged (never the code).
async fn start_delivery(db: &StateDb, config: &MfaDelivery, user: &UserKey) -> Delivery {
    let enrolment = match service::enrolment(db, config, user).await {
        Ok(Some(enrolment)) => enrolment,
        Ok(None) => return Delivery::NotConfigured,
        Err(e) => {
            tracing::warn!(user = %user, error = %e, "login code: enrolment lookup failed");
            return Delivery::Down;
        }
    };
    match service::send_login_code(db, config, user).await {
        Ok(service::LoginCodeSent::Sent) => {
            tracing::info!(
                user = %user,
                channel = enrolment.channel().as_str(),
                "login code sent"
            );
            Delivery::Sent(enrolment.channel())
        }
        Ok(service::LoginCodeSent::NotEnrolled) => Delivery::NotConfigured,
        Ok(service::LoginCodeSent::Locked) => Delivery::Locked,
        Ok(service::LoginCodeSent::DeliveryFailed(why)) => {
            tracing::warn!(user = %user, reason = %why, "login code could not be delivered");
            Delivery::Down
        }
        Err(e) => {
            tracing::warn!(user = %user, error = %e, "login code could not be sent");
            Delivery::Down
        }
    }
}

/// [`MfaStore::verify`] at time `now`, inside the caller's transaction.
pub fn verify_at(
    tx: &mut dyn MfaTx,
    factors: &Factors<'_>,
    user: &UserKey,
    code: &str,
    settings: Lockout,
    now: i64,
) -> Result<Verdict, StateError> {
    if let Some(retry_after) = lockout::locked_for(tx, user, now)? {
        return Ok(Verdict::Locked { retry_after });
    }
    let code = code.trim();
    let mut accepted = None;
    for factor in SecondFactor::ALL {
        if factor.check(tx, factors, user, code, now)? {
            accepted = Some(factor);
            break;
        }
    }
    let verdict = match accepted {
        Some(factor) => {
            lockout::record_success(tx, user)?;
            Verdict::Accepted {
                method: factor.name(),
            }
        }
        None => Verdict::Rejected {
            locked_for: lockout::record_failure(tx, user, now, settings)?,
        },
    };
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_counts_failures_and_locks() {
        let store = MfaStore::in_memory().unwrap();
        let settings = Lockout {
            threshold: 2,
            base: 60,
            max: 600,
        };
        let now = 1_800_000_000;
        crate::state::mfa::transaction(store.db(), |conn| {
            let (device, secret) = devices::pair(
                conn,
                store.key(),
                &UserKey::of("dan"),
                "p",
                "iOS",
                false,
                now,
            )
            .unwrap();
            let code = |t: i64| totp::code(&secret, totp::step(t as u64));
            devices::activate(
                conn,
                store.key(),
                &UserKey::of("dan"),
                &device.id,
                &code(now),
                now,
            )?;
            let wrong = devices::tests::wrong_code(&secret, now + 60);
            let good = code(now + 90);
            let factors = Factors {
                key: store.key(),
                application: "gateway",
            };
            let v = |conn: &mut dyn MfaTx, c: &str, t| {
                verify_at(conn, &factors, &UserKey::of("dan"), c, settings, t)
            };
            assert_eq!(
                v(conn, &wrong, now + 30)?,
                Verdict::Rejected { locked_for: None }
            );
            assert_eq!(
                v(conn, &wrong, now + 30)?,
                Verdict::Rejected {
                    locked_for: Some(60)
                }
            );
            // Locked: even the right code is not looked at.
            assert_eq!(
                v(conn, &good, now + 40)?,
                Verdict::Locked { retry_after: 50 }
            );
            assert_eq!(
                v(conn, &good, now + 90)?,
                Verdict::Accepted { method: "totp" }
            );
            // Spent.
            assert_eq!(
                v(conn, &good, now + 90)?,
                Verdict::Rejected { locked_for: None }
            );
            Ok::<_, StateError>(())
        })
        .unwrap();
    }
}
