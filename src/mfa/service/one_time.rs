//! One-time codes of the MFA service: drafted, committed, sent, checked with lockout.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Codes

/// The database's HMAC key, made on first use.
pub(super) fn hash_key(c: &Connection) -> Result<Vec<u8>, MfaError> {
    if let Some(key) = c
        .query_row("SELECT key FROM mfa_key WHERE id = 1", [], |r| r.get(0))
        .optional()?
    {
        return Ok(key);
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| MfaError::internal("random", e))?;
    c.execute(
        "INSERT OR IGNORE INTO mfa_key (id, key) VALUES (1, ?1)",
        [&key],
    )?;
    Ok(c.query_row("SELECT key FROM mfa_key WHERE id = 1", [], |r| r.get(0))?)
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
    c: &mut Connection,
    application: &str,
    user_id: &str,
    purpose: Purpose,
    new_address: Option<&str>,
    configured: &[Channel],
    now: i64,
) -> Result<Draft, MfaError> {
    check_id("User_ID", user_id)?;
    let tx = c.transaction()?;
    let app = get_application(&tx, application)?;
    let user = find_user(&tx, application, user_id)?;
    if user.is_none() && purpose == Purpose::Associate {
        refuse_namesake(&tx, application, user_id)?;
    }
    let address = match (purpose, new_address) {
        (Purpose::Associate, Some(address)) => check_address(app.channel(), address)?,
        _ => {
            let user = user.as_ref().ok_or_else(|| no_user(application, user_id))?;
            if !user.validated() {
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
    tx.execute("DELETE FROM mfa_sends WHERE at <= ?1", [now - SEND_WINDOW])?;
    let sent: i64 = tx.query_row(
        "SELECT count(*) FROM mfa_sends WHERE application_id = ?1 AND user_id = ?2",
        [application, user_id],
        |r| r.get(0),
    )?;
    if sent >= MAX_SENDS {
        return Err(MfaError::TooMany(format!(
            "User sent too many requests: at most {MAX_SENDS} codes are sent per \
             {SEND_WINDOW} seconds."
        )));
    }
    tx.execute(
        "INSERT INTO mfa_sends (application_id, user_id, at) VALUES (?1, ?2, ?3)",
        params![application, user_id, now],
    )?;
    let key = hash_key(&tx)?;
    tx.commit()?;
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
pub(super) fn commit(c: &mut Connection, draft: &Draft, now: i64) -> Result<(), MfaError> {
    let tx = c.transaction()?;
    let app = &draft.application;
    if find_application(&tx, &app.id)?.is_none() {
        return Err(no_application(&app.id));
    }
    let user = find_user(&tx, &app.id, &draft.user_id)?;
    match (draft.purpose, user) {
        (Purpose::Associate, None) => {
            tx.execute(
                &format!(
                    "INSERT INTO mfa_users ({USER_COLUMNS}, user_key) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, 0, 0, ?6)"
                ),
                params![
                    app.id,
                    draft.user_id,
                    draft.address,
                    Status::ValidationPending.as_str(),
                    now,
                    UserKey::of(&draft.user_id).as_str(),
                ],
            )?;
        }
        (Purpose::Associate, Some(user)) => {
            tx.execute(
                "UPDATE mfa_users SET user_address = ?3, status = ?4, updated = ?5, \
                 version_number = ?6 WHERE application_id = ?1 AND id = ?2",
                params![
                    app.id,
                    draft.user_id,
                    draft.address,
                    Status::ValidationPending.as_str(),
                    now,
                    user.version_number + 1
                ],
            )?;
        }
        (Purpose::Login, Some(user)) if user.validated() && user.user_address == draft.address => {}
        (Purpose::Login, Some(_)) => return Err(MfaError::NotValidated),
        (Purpose::Login, None) => return Err(no_user(&app.id, &draft.user_id)),
    }
    tx.execute(
        "INSERT OR REPLACE INTO mfa_codes (application_id, user_id, purpose, address, hash, \
         expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            app.id,
            draft.user_id,
            draft.purpose.as_str(),
            draft.address,
            draft.hash,
            draft.expires
        ],
    )?;
    tx.commit()?;
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
        .run(move |c| {
            Ok(draft(
                c,
                &application,
                &user_id,
                purpose,
                new_address.as_deref(),
                &configured,
                now,
            ))
        })
        .await??;
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
    db.run(move |c| Ok(commit(c, &draft, now))).await??;
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

/// Checks `typed` against the user's outstanding code of one of `purposes`, in one
/// transaction.
pub(super) fn check(
    c: &mut Connection,
    application: &str,
    user_id: &str,
    typed: &str,
    purposes: &[Purpose],
    now: i64,
) -> Result<CodeCheck, MfaError> {
    check_id("User_ID", user_id)?;
    check_length("validation_code", typed, MAX_CODE_INPUT)?;
    let tx = c.transaction()?;
    let result = check_in(&tx, application, user_id, typed, purposes, now, true)?;
    tx.commit()?;
    Ok(result)
}

/// [`check`] inside the caller's transaction `tx`. A wrong code advances the user's failure
/// counter only when `count_failures` (the gateway's second factor counts its own).
pub(super) fn check_in(
    tx: &Connection,
    application: &str,
    user_id: &str,
    typed: &str,
    purposes: &[Purpose],
    now: i64,
    count_failures: bool,
) -> Result<CodeCheck, MfaError> {
    let app = get_application(tx, application)?;
    let user = find_user(tx, application, user_id)?.ok_or_else(|| no_user(application, user_id))?;
    if locked(&user, now) {
        return Ok(CodeCheck::Locked);
    }
    let pending: Option<(String, String, Vec<u8>, i64)> = tx
        .query_row(
            "SELECT purpose, address, hash, expires FROM mfa_codes \
             WHERE application_id = ?1 AND user_id = ?2",
            [application, user_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let pending = pending.and_then(|(purpose, address, hash, expires)| {
        let purpose = [Purpose::Associate, Purpose::Login]
            .into_iter()
            .find(|p| p.as_str() == purpose)?;
        purposes
            .contains(&purpose)
            .then_some((purpose, address, hash, expires))
    });
    let delete_code = |tx: &Connection| {
        tx.execute(
            "DELETE FROM mfa_codes WHERE application_id = ?1 AND user_id = ?2",
            [application, user_id],
        )
    };
    if let Some((_, _, _, expires)) = &pending {
        if *expires <= now {
            delete_code(tx)?;
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
    let matched = pending.as_ref().and_then(|(purpose, address, hash, _)| {
        let candidate = codes::hash(&key, &app.id, user_id, purpose.as_str(), &bare);
        codes::same(&candidate, hash).then_some((*purpose, address.clone()))
    });
    let result = match matched {
        Some((purpose, address)) => {
            delete_code(tx)?;
            if purpose == Purpose::Associate && user.user_address == address {
                tx.execute(
                    "UPDATE mfa_users SET status = ?3, failures = 0, updated = ?4, \
                     version_number = version_number + 1 WHERE application_id = ?1 AND id = ?2",
                    params![application, user_id, Status::Validated.as_str(), now],
                )?;
            } else {
                tx.execute(
                    "UPDATE mfa_users SET failures = 0 WHERE application_id = ?1 AND id = ?2",
                    [application, user_id],
                )?;
            }
            CodeCheck::Success(purpose)
        }
        None if !count_failures => CodeCheck::Invalid,
        None => {
            let failures = user.failures + 1;
            if failures >= MAX_FAILURES {
                delete_code(tx)?;
                tx.execute(
                    "UPDATE mfa_users SET failures = 0, locked_until = ?3 \
                     WHERE application_id = ?1 AND id = ?2",
                    params![application, user_id, now + LOCKOUT_SECONDS],
                )?;
                tracing::warn!(
                    application = %app.name,
                    user = user_id,
                    "MFA user locked after wrong codes"
                );
            } else {
                tx.execute(
                    "UPDATE mfa_users SET failures = ?3 WHERE application_id = ?1 AND id = ?2",
                    params![application, user_id, failures],
                )?;
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
        .run(move |c| {
            Ok(check(
                c,
                &application,
                &user,
                &code,
                &[Purpose::Associate, Purpose::Login],
                now,
            ))
        })
        .await??;
    count(result);
    Ok(result)
}
