//! One-time codes of the MFA service: drafted, committed, sent, checked with lockout.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Codes

/// The database's HMAC key, made on first use.
pub(super) fn hash_key(tx: &mut dyn MfaTx) -> Result<Vec<u8>, MfaError> {
    if let Some(key) = tx.hash_key()? {
        return Ok(key);
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| MfaError::internal("random", e))?;
    Ok(tx.keep_hash_key(&key)?)
}

pub(super) fn locked(user: &User, now: i64) -> bool {
    user.locked_until > now
}

pub(super) fn too_many_failures() -> MfaError {
    MfaError::TooMany(format!(
        "User sent too many requests: {MAX_FAILURES} wrong codes in a row; try again in up to \
         {LOCKOUT_SECONDS} seconds."
    ))
}

/// A code drawn and checked for sending, not stored yet. No `Debug`: it holds the code.
pub(super) struct Draft {
    pub(super) application: Application,
    pub(super) user_id: String,
    pub(super) address: String,
    pub(super) purpose: Purpose,
    pub(super) code: String,
    pub(super) hash: Vec<u8>,
    pub(super) expires: i64,
}

/// First transaction of a send: the application, the user's state and the limits allow it; a
/// send is counted; a code is drawn.
pub(super) fn draft(
    tx: &mut dyn MfaTx,
    application: &str,
    user_id: &str,
    purpose: Purpose,
    new_address: Option<&str>,
    configured: &[Channel],
    now: i64,
) -> Result<Draft, MfaError> {
    check_id("User_ID", user_id)?;
    let app = get_application(tx, application)?;
    let user = tx.user(application, user_id)?;
    if user.is_none() && purpose == Purpose::Associate {
        refuse_namesake(tx, application, user_id)?;
    }
    let address = match (purpose, new_address) {
        (Purpose::Associate, Some(address)) => check_address(app.channel(), address)?,
        _ => {
            let user = user.as_ref().ok_or_else(|| no_user(application, user_id))?;
            if !validated(user) {
                return Err(MfaError::NotValidated);
            }
            // The application may have changed its delivery method since validation.
            check_address(app.channel(), &user.user_address).map_err(|_| MfaError::NotValidated)?
        }
    };
    if let Some(user) = &user {
        if locked(user, now) {
            return Err(too_many_failures());
        }
    }
    if !configured.contains(&app.channel()) {
        let missing = match app.channel() {
            Channel::Sms => delivery::DeliveryError::NotConfigured("SMS", "sms"),
            Channel::Email => delivery::DeliveryError::NotConfigured("e-mail", "smtp"),
        };
        return Err(MfaError::Unconfigured(missing.to_string()));
    }
    tx.forget_sends(now - SEND_WINDOW)?;
    if tx.count_sends(application, user_id)? >= MAX_SENDS {
        return Err(MfaError::TooMany(format!(
            "User sent too many requests: at most {MAX_SENDS} codes are sent per \
             {SEND_WINDOW} seconds."
        )));
    }
    tx.record_send(application, user_id, now)?;
    let key = hash_key(tx)?;
    let token_type = app.token_type();
    let random = codes::generate(&token_type.alphabet(), app.auth_code_length as usize)?;
    let hash = codes::hash(&key, &app.id, user_id, purpose.as_str(), &random);
    let code = format!("{}{random}", app.auth_token_prefix);
    Ok(Draft {
        expires: now + app.auth_token_validity_duration,
        application: app,
        user_id: user_id.to_owned(),
        address,
        purpose,
        code,
        hash,
    })
}

/// Second transaction of a send: the user and the code as they are after delivery.
pub(super) fn commit(tx: &mut dyn MfaTx, draft: &Draft, now: i64) -> Result<(), MfaError> {
    let app = &draft.application;
    if tx.application(&app.id)?.is_none() {
        return Err(no_application(&app.id));
    }
    let user = tx.user(&app.id, &draft.user_id)?;
    match (draft.purpose, user) {
        (Purpose::Associate, None) => {
            tx.insert_user(&User {
                application_id: app.id.clone(),
                id: draft.user_id.clone(),
                user_address: draft.address.clone(),
                status: Status::ValidationPending.as_str().into(),
                created: now,
                updated: now,
                version_number: 1,
                failures: 0,
                locked_until: 0,
            })?;
        }
        (Purpose::Associate, Some(mut user)) => {
            user.user_address.clone_from(&draft.address);
            user.status = Status::ValidationPending.as_str().into();
            user.updated = now;
            user.version_number += 1;
            tx.set_address(&user)?;
        }
        (Purpose::Login, Some(user)) if validated(&user) && user.user_address == draft.address => {}
        (Purpose::Login, Some(_)) => return Err(MfaError::NotValidated),
        (Purpose::Login, None) => return Err(no_user(&app.id, &draft.user_id)),
    }
    tx.put_code(
        &app.id,
        &draft.user_id,
        &StoredCode {
            purpose: draft.purpose.as_str().into(),
            address: draft.address.clone(),
            hash: draft.hash.clone(),
            expires: draft.expires,
        },
    )?;
    Ok(())
}

async fn send(
    db: &StateDb,
    config: &MfaDelivery,
    application: &str,
    user: &str,
    purpose: Purpose,
    new_address: Option<String>,
    display_name: Option<String>,
) -> Result<(), MfaError> {
    let (application, user_id) = (application.to_owned(), user.to_owned());
    if let Some(name) = &display_name {
        check_length("display_name", name, MAX_NAME)?;
        no_controls("display_name", name, false)?;
    }
    let configured: Vec<Channel> = [
        config.sms.as_ref().map(|_| Channel::Sms),
        config.smtp.as_ref().map(|_| Channel::Email),
    ]
    .into_iter()
    .flatten()
    .collect();
    let now = unix_now();
    let draft = db
        .mfa(move |tx| {
            draft(
                tx,
                &application,
                &user_id,
                purpose,
                new_address.as_deref(),
                &configured,
                now,
            )
        })
        .await?;
    let app = &draft.application;
    let display = display_name
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| app.display_name.clone());
    let (template, default, subject) = match purpose {
        Purpose::Associate => (
            &app.associate_template,
            DEFAULT_ASSOCIATE_TEMPLATE,
            format!("{display} verification code"),
        ),
        Purpose::Login => (
            &app.login_template,
            DEFAULT_LOGIN_TEMPLATE,
            format!("{display} login code"),
        ),
    };
    let template = if template.is_empty() {
        default
    } else {
        template
    };
    let text = render(template, &display, &draft.code);
    let channel = app.channel();
    let message = Message {
        channel,
        to: &draft.address,
        from_name: &app.message_from,
        subject: &subject,
        text: &text,
    };
    if let Err(e) = delivery::deliver(config, &message).await {
        metrics::counter!(
            "portcullis_mfa_codes_sent_total",
            "channel" => channel.as_str(),
            "result" => "failed"
        )
        .increment(1);
        tracing::warn!(
            application = %app.name,
            user = %draft.user_id,
            channel = channel.as_str(),
            error = %e,
            "MFA code not delivered"
        );
        return Err(MfaError::Delivery(e.to_string()));
    }
    metrics::counter!(
        "portcullis_mfa_codes_sent_total",
        "channel" => channel.as_str(),
        "result" => "sent"
    )
    .increment(1);
    tracing::info!(
        application = %app.name,
        user = %draft.user_id,
        channel = channel.as_str(),
        purpose = purpose.as_str(),
        "MFA code sent"
    );
    db.mfa(move |tx| commit(tx, &draft, now)).await?;
    Ok(())
}

/// Associates `address` with the user (creating the user), status VALIDATION PENDING, and
/// sends a validation code to it. On a delivery failure nothing changes.
pub async fn associate(
    db: &StateDb,
    config: &MfaDelivery,
    application: &str,
    user: &str,
    address: &str,
    display_name: Option<String>,
) -> Result<(), MfaError> {
    send(
        db,
        config,
        application,
        user,
        Purpose::Associate,
        Some(address.to_owned()),
        display_name,
    )
    .await
}

/// Sends a login code to the user's validated address (409/2003 when not validated).
pub async fn login_start(
    db: &StateDb,
    config: &MfaDelivery,
    application: &str,
    user: &str,
    display_name: Option<String>,
) -> Result<(), MfaError> {
    send(
        db,
        config,
        application,
        user,
        Purpose::Login,
        None,
        display_name,
    )
    .await
}

/// The result of checking a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The outstanding code: it is used up; for an association the address is now VALIDATED.
    Success(Purpose),
    /// Not the outstanding code (or none is outstanding); counted as a failure.
    Invalid,
    /// The outstanding code expired (and is dropped).
    Expired,
    /// The user is locked after too many wrong codes.
    Locked,
}

/// Checks `typed` against the user's outstanding code of one of `purposes`, inside the
/// caller's transaction.
pub(super) fn check(
    tx: &mut dyn MfaTx,
    application: &str,
    user_id: &str,
    typed: &str,
    purposes: &[Purpose],
    now: i64,
) -> Result<CodeCheck, MfaError> {
    check_id("User_ID", user_id)?;
    check_length("validation_code", typed, MAX_CODE_INPUT)?;
    check_in(tx, application, user_id, typed, purposes, now, true)
}

/// [`check`] inside the caller's transaction `tx`. A wrong code advances the user's failure
/// counter only when `count_failures` (the gateway's second factor counts its own).
pub(super) fn check_in(
    tx: &mut dyn MfaTx,
    application: &str,
    user_id: &str,
    typed: &str,
    purposes: &[Purpose],
    now: i64,
    count_failures: bool,
) -> Result<CodeCheck, MfaError> {
    let app = get_application(tx, application)?;
    let user = tx
        .user(application, user_id)?
        .ok_or_else(|| no_user(application, user_id))?;
    if locked(&user, now) {
        return Ok(CodeCheck::Locked);
    }
    let pending = tx.code(application, user_id)?.and_then(|code| {
        let purpose = [Purpose::Associate, Purpose::Login]
            .into_iter()
            .find(|p| p.as_str() == code.purpose)?;
        purposes.contains(&purpose).then_some((purpose, code))
    });
    if let Some((_, code)) = &pending {
        if code.expires <= now {
            tx.delete_code(application, user_id)?;
            return Ok(CodeCheck::Expired);
        }
    }
    let token_type = app.token_type();
    let prefix = &app.auth_token_prefix;
    let length = app.auth_code_length as usize;
    let bare = match typed.strip_prefix(prefix.as_str()) {
        Some(rest) if !prefix.is_empty() && typed.len() == prefix.len() + length => rest,
        _ => typed,
    };
    let bare = token_type.normalize(bare);
    let key = hash_key(tx)?;
    let matched = pending.as_ref().and_then(|(purpose, code)| {
        let candidate = codes::hash(&key, &app.id, user_id, purpose.as_str(), &bare);
        codes::same(&candidate, &code.hash).then_some((*purpose, code.address.clone()))
    });
    let result = match matched {
        Some((purpose, address)) => {
            tx.delete_code(application, user_id)?;
            if purpose == Purpose::Associate && user.user_address == address {
                tx.validate_user(application, user_id, Status::Validated.as_str(), now)?;
            } else {
                tx.set_user_failures(application, user_id, 0, None)?;
            }
            CodeCheck::Success(purpose)
        }
        None if !count_failures => CodeCheck::Invalid,
        None => {
            let failures = user.failures + 1;
            if failures >= MAX_FAILURES {
                tx.delete_code(application, user_id)?;
                tx.set_user_failures(application, user_id, 0, Some(now + LOCKOUT_SECONDS))?;
                tracing::warn!(
                    application = %app.name,
                    user = user_id,
                    "MFA user locked after wrong codes"
                );
            } else {
                tx.set_user_failures(application, user_id, failures, None)?;
            }
            CodeCheck::Invalid
        }
    };
    Ok(result)
}

pub(super) fn count(result: CodeCheck) {
    let label = match result {
        CodeCheck::Success(_) => "success",
        CodeCheck::Invalid => "invalid",
        CodeCheck::Expired => "expired",
        CodeCheck::Locked => "locked",
    };
    metrics::counter!("portcullis_mfa_outcomes_total", "method" => "code", "result" => label)
        .increment(1);
}

/// `validate`: checks the user's outstanding code, association or login.
pub async fn validate(
    db: &StateDb,
    application: &str,
    user: &str,
    code: &str,
) -> Result<CodeCheck, MfaError> {
    let (application, user, code) = (application.to_owned(), user.to_owned(), code.to_owned());
    let now = unix_now();
    let result = db
        .mfa(move |tx| {
            check(
                tx,
                &application,
                &user,
                &code,
                &[Purpose::Associate, Purpose::Login],
                now,
            )
        })
        .await?;
    count(result);
    Ok(result)
}
