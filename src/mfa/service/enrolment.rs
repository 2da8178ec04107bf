//! The gateway's own users in the MFA service application of `[mfa_delivery]`: login
//! codes sent, recognised and consumed.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// The gateway's own users

/// A gateway user's enrolment: the application of `[mfa_delivery] application` and the
/// user's VALIDATED entry there.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The application.
    pub application: Application,
    /// The user.
    pub user: User,
}

impl Enrolment {
    /// How the user's codes travel.
    pub fn channel(&self) -> Channel {
        self.application.channel()
    }
}

/// The gateway user's enrolment, when they have a validated address.
pub async fn enrolment(
    db: &StateDb,
    config: &MfaDelivery,
    user: &UserKey,
) -> Result<Option<Enrolment>, MfaError> {
    let (name, user) = (config.application.clone(), user.clone());
    db.mfa(move |tx| find_enrolment(tx, &name, &user)).await
}

/// The validated user of application `name` whose id is the canonical user `user` (ids that
/// differ only in case are refused at association, so there is at most one).
pub(super) fn find_enrolment(
    tx: &mut dyn MfaTx,
    name: &str,
    user: &UserKey,
) -> Result<Option<Enrolment>, MfaError> {
    if chars(user.as_str()) > MAX_ID {
        return Ok(None);
    }
    let Some(application) = tx.application_by_name(name)? else {
        return Ok(None);
    };
    let found = tx.user_of(&application.id, user, Status::Validated.as_str())?;
    Ok(found.map(|user| Enrolment { application, user }))
}

/// Whether gateway user `user` has a validated address in application `name`.
pub fn has_validated_address(
    tx: &mut dyn MfaTx,
    name: &str,
    user: &UserKey,
) -> Result<bool, MfaError> {
    Ok(find_enrolment(tx, name, user)?.is_some())
}

/// What [`send_login_code`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginCodeSent {
    /// A code is on its way to the user's validated address.
    Sent,
    /// The user has no validated address in the gateway's application (or it does not exist).
    NotEnrolled,
    /// Locked after wrong codes, or too many codes sent lately.
    Locked,
    /// The SMS gateway or SMTP relay failed; the reason, without the code.
    DeliveryFailed(String),
}

/// Sends a login code to gateway user `user` (what `login_start` does for the application
/// of `[mfa_delivery] application`).
pub async fn send_login_code(
    db: &StateDb,
    config: &MfaDelivery,
    user: &UserKey,
) -> Result<LoginCodeSent, MfaError> {
    let Some(enrolment) = enrolment(db, config, user).await? else {
        return Ok(LoginCodeSent::NotEnrolled);
    };
    let id = &enrolment.user.id;
    match login_start(db, config, &enrolment.application.id, id, None).await {
        Ok(()) => Ok(LoginCodeSent::Sent),
        Err(MfaError::NotValidated | MfaError::NotFound(_)) => Ok(LoginCodeSent::NotEnrolled),
        Err(MfaError::TooMany(_)) => Ok(LoginCodeSent::Locked),
        Err(MfaError::Delivery(why) | MfaError::Unconfigured(why)) => {
            Ok(LoginCodeSent::DeliveryFailed(why))
        }
        Err(e) => Err(e),
    }
}

/// Checks and consumes a login code of gateway user `user` in application `name` inside the
/// caller's transaction: the one place the gateway's second factor takes a delivered code.
/// A wrong code is not counted here: the gateway's own lockout counts it, once (and
/// [`MfaStore::verify`](super::MfaStore::verify) emits the outcome metric).
pub fn consume_login_code(
    tx: &mut dyn MfaTx,
    name: &str,
    user: &UserKey,
    code: &str,
    now: i64,
) -> Result<bool, MfaError> {
    if chars(code) > MAX_CODE_INPUT {
        return Ok(false);
    }
    let Some(enrolment) = find_enrolment(tx, name, user)? else {
        return Ok(false);
    };
    let result = check_in(
        tx,
        &enrolment.application.id,
        &enrolment.user.id,
        code,
        &[Purpose::Login],
        now,
        false,
    )?;
    Ok(result == CodeCheck::Success(Purpose::Login))
}

/// Whether `text` has the shape of a login code of gateway user `user` in application `name`
/// (length and alphabet, with or without the prefix): false without a validated address.
pub fn looks_like_login_code(
    tx: &mut dyn MfaTx,
    name: &str,
    user: &UserKey,
    text: &str,
) -> Result<bool, MfaError> {
    if chars(text) > MAX_CODE_INPUT {
        return Ok(false);
    }
    let Some(enrolment) = find_enrolment(tx, name, user)? else {
        return Ok(false);
    };
    let app = &enrolment.application;
    let prefix = app.auth_token_prefix.as_str();
    let bare = match text.strip_prefix(prefix) {
        Some(rest) if !prefix.is_empty() => rest,
        _ => text,
    };
    let token_type = app.token_type();
    let normalized = token_type.normalize(bare);
    let alphabet = token_type.alphabet();
    Ok(
        usize::try_from(app.auth_code_length).is_ok_and(|n| normalized.len() == n)
            && normalized.bytes().all(|b| alphabet.contains(&b)),
    )
}

/// What [`check_login_code`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCodeCheck {
    /// The login code: used up.
    Success,
    /// Not the outstanding login code (or none is outstanding); counted as a failure.
    Invalid,
    /// The login code expired.
    Expired,
    /// Locked after too many wrong codes.
    Locked,
    /// The user has no validated address in the gateway's application.
    NotEnrolled,
}

/// Checks a login code of gateway user `user` (only codes sent for a login count).
pub async fn check_login_code(
    db: &StateDb,
    config: &MfaDelivery,
    user: &UserKey,
    code: &str,
) -> Result<LoginCodeCheck, MfaError> {
    let Some(enrolment) = enrolment(db, config, user).await? else {
        return Ok(LoginCodeCheck::NotEnrolled);
    };
    let (application, user, code) = (
        enrolment.application.id.clone(),
        enrolment.user.id.clone(),
        code.to_owned(),
    );
    if chars(&code) > MAX_CODE_INPUT {
        return Ok(LoginCodeCheck::Invalid);
    }
    let now = unix_now();
    let result = db
        .mfa(move |tx| check(tx, &application, &user, &code, &[Purpose::Login], now))
        .await;
    let result = match result {
        Ok(r) => r,
        Err(MfaError::NotFound(_)) => return Ok(LoginCodeCheck::NotEnrolled),
        Err(e) => return Err(e),
    };
    count(result);
    Ok(match result {
        CodeCheck::Success(_) => LoginCodeCheck::Success,
        CodeCheck::Invalid => LoginCodeCheck::Invalid,
        CodeCheck::Expired => LoginCodeCheck::Expired,
        CodeCheck::Locked => LoginCodeCheck::Locked,
    })
}
