//! The MFA service: applications (how codes look and travel), their users (an address and its
//! validation status), one-time codes (sent, checked once, expired), and the limits that stop
//! guessing and flooding. Everything lives in the state database; the REST layer is
//! `api::mfa_service` and `api::mfa_token`.
//!
//! Lifecycle of a user: created by the first `associate` (status VALIDATION PENDING, a code is
//! sent to the new address); the right code makes it VALIDATED; only then does `login_start`
//! send login codes. Removing the association returns it to INITIAL (no address).
//!
//! Codes: [`codes::generate`] over the application's alphabet, `auth_token_prefix` in front,
//! stored only as an HMAC-SHA256 under a random per-database key, valid
//! `auth_token_validity_duration` seconds, one outstanding per user (a new one replaces it),
//! deleted on first success or on expiry.
//!
//! Limits, per user of an application: [`MAX_FAILURES`] wrong codes in a row lock the user for
//! [`LOCKOUT_SECONDS`] (the outstanding code is dropped); at most [`MAX_SENDS`] codes are sent
//! in any [`SEND_WINDOW`] seconds. Both answer 429 with error code 2004.
//!
//! Sending is done between two short transactions: the first checks everything and draws the
//! code, the message is delivered, the second stores the new state. A delivery that fails
//! changes nothing but the send count: the user keeps the address, status and code they had.
//!
//! The gateway's own second factor uses [`send_login_code`] and [`check_login_code`]: the
//! users of the application named `[mfa_delivery] application` whose id is the gateway user
//! name.

use portcullis_config::{MfaDelivery, UserKey, check_mailbox};

use super::codes::{self, TokenType};
use super::delivery::{self, Channel, Message};
use super::time;
use crate::state::mfa::{MfaTx, StoredCode, Written};
use crate::state::{StateDb, StateError, unix_now};

/// Wrong codes in a row that lock a user.
pub const MAX_FAILURES: i64 = 5;
/// Seconds a locked user stays locked.
pub const LOCKOUT_SECONDS: i64 = 300;
/// Codes sent to one user within [`SEND_WINDOW`] at most.
pub const MAX_SENDS: i64 = 5;
/// Seconds of the send limit's sliding window.
pub const SEND_WINDOW: i64 = 900;

/// Longest `name`, `display_name`, `message_from` (characters).
pub const MAX_NAME: usize = 64;
/// Longest `description`, `associate_template`, `login_template`.
pub const MAX_TEXT: usize = 1024;
/// Longest `auth_token_prefix`.
pub const MAX_PREFIX: usize = 16;
/// Longest application id and user id.
pub const MAX_ID: usize = 128;
/// Longest user address.
pub const MAX_ADDRESS: usize = 254;
/// Longest validation code accepted for checking.
pub const MAX_CODE_INPUT: usize = 64;
/// `auth_code_length` range.
pub const CODE_LENGTHS: std::ops::RangeInclusive<i64> = 4..=32;
/// `auth_token_validity_duration` range, seconds.
pub const VALIDITIES: std::ops::RangeInclusive<i64> = 1..=86_400;

/// Template used when `associate_template` is empty.
pub const DEFAULT_ASSOCIATE_TEMPLATE: &str = "$display_name: your verification code is $code";
/// Template used when `login_template` is empty.
pub const DEFAULT_LOGIN_TEMPLATE: &str = "$display_name: your login code is $code";

/// Why an MFA operation failed; each maps to the documented status and error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MfaError {
    /// 400, code 400: malformed or invalid request.
    #[error("{0}")]
    BadRequest(String),
    /// 400, code 1023: a value is longer than allowed.
    #[error("{0}")]
    TooLong(String),
    /// 404: no such application or user.
    #[error("{0}")]
    NotFound(String),
    /// 409, code 1001: the `version_number` sent is not the current one.
    #[error(
        "Stale data: the resource was changed concurrently (version {current} is current). \
         Refresh the resource and retry."
    )]
    Stale {
        /// The current version.
        current: i64,
    },
    /// 409, code 1011: a unique key (the application name) is taken.
    #[error("{0}")]
    Duplicate(String),
    /// 412, code 2001: the code is not the outstanding one (or there is none).
    #[error("Invalid authentication code.")]
    InvalidCode,
    /// 412, code 2002: the code expired; a new one must be requested.
    #[error("The authentication code has expired. A new one should be requested.")]
    Expired,
    /// 409, code 2003: the user's address is not validated.
    #[error("The user's address must be validated before login.")]
    NotValidated,
    /// 429, code 2004: locked after wrong codes, or too many codes sent.
    #[error("{0}")]
    TooMany(String),
    /// 412: no sender is configured for the application's delivery method (`[mfa_delivery]`);
    /// nothing was sent or changed.
    #[error("The code cannot be delivered: {0}")]
    Unconfigured(String),
    /// 503: the code could not be delivered; nothing changed.
    #[error("The code could not be delivered: {0}")]
    Delivery(String),
    /// 500: the database or the random number generator failed (details in the log).
    #[error("Internal error.")]
    Internal(String),
}

impl MfaError {
    fn internal(context: &str, detail: impl std::fmt::Display) -> MfaError {
        tracing::error!(context, %detail, "MFA service internal error");
        MfaError::Internal(format!("{context}: {detail}"))
    }
}

impl From<StateError> for MfaError {
    fn from(e: StateError) -> MfaError {
        MfaError::internal("state database", e)
    }
}

impl From<codes::RandomError> for MfaError {
    fn from(e: codes::RandomError) -> MfaError {
        MfaError::internal("random", e)
    }
}

/// A user's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No address.
    Initial,
    /// An address waits for its validation code.
    ValidationPending,
    /// The address is validated: login codes go to it.
    Validated,
}

impl Status {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initial => "INITIAL",
            Status::ValidationPending => "VALIDATION PENDING",
            Status::Validated => "VALIDATED",
        }
    }

    /// Parses the API's spelling.
    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Initial,
            Status::ValidationPending,
            Status::Validated,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What a code was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Validating a new address.
    Associate,
    /// A login.
    Login,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Associate => "associate",
            Purpose::Login => "login",
        }
    }
}

pub use crate::state::mfa::{Application, User};

/// How an application's codes look and travel.
trait Shape {
    fn token_type(&self) -> TokenType;
    fn channel(&self) -> Channel;
}

impl Shape for Application {
    fn token_type(&self) -> TokenType {
        TokenType::parse(&self.auth_token_type).unwrap_or(TokenType::Numeric)
    }

    fn channel(&self) -> Channel {
        Channel::parse(&self.auth_token_delivery_methods).unwrap_or(Channel::Sms)
    }
}

/// The settable attributes of an application; `None` keeps the current value (or the default
/// at creation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationFields {
    /// Unique name (required at creation).
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// 4..=32, default 6.
    pub auth_code_length: Option<i64>,
    /// Default NUMERIC.
    pub auth_token_type: Option<String>,
    /// 1..=86400 seconds, default 300.
    pub auth_token_validity_duration: Option<i64>,
    /// Default empty.
    pub auth_token_prefix: Option<String>,
    /// SMS (default) or EMAIL.
    pub auth_token_delivery_methods: Option<String>,
    /// Must hold `$code` when not empty.
    pub associate_template: Option<String>,
    /// Default: the name.
    pub display_name: Option<String>,
    /// Must hold `$code` when not empty.
    pub login_template: Option<String>,
    /// Default empty.
    pub message_from: Option<String>,
}

/// Whether a user's address is validated.
fn validated(user: &User) -> bool {
    user.status == Status::Validated.as_str()
}

// ---------------------------------------------------------------------------------------------
// Validation

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// 1023 when `value` is longer than `max` characters.
pub fn check_length(field: &str, value: &str, max: usize) -> Result<(), MfaError> {
    if chars(value) > max {
        Err(MfaError::TooLong(format!(
            "Indexed field too long: {field} is {} characters long; at most {max} are allowed.",
            chars(value)
        )))
    } else {
        Ok(())
    }
}

fn no_controls(field: &str, value: &str, newlines: bool) -> Result<(), MfaError> {
    if value
        .chars()
        .any(|c| c.is_control() && !(newlines && (c == '\n' || c == '\r' || c == '\t')))
    {
        Err(MfaError::BadRequest(format!(
            "{field} must not contain control characters."
        )))
    } else {
        Ok(())
    }
}

/// Checks a whole application (after defaults or a merge): lengths first (1023), then values
/// (400).
fn check_application(app: &Application) -> Result<(), MfaError> {
    let texts = [
        ("name", &app.name, MAX_NAME, false),
        ("description", &app.description, MAX_TEXT, true),
        (
            "auth_token_prefix",
            &app.auth_token_prefix,
            MAX_PREFIX,
            false,
        ),
        (
            "associate_template",
            &app.associate_template,
            MAX_TEXT,
            true,
        ),
        ("display_name", &app.display_name, MAX_NAME, false),
        ("login_template", &app.login_template, MAX_TEXT, true),
        ("message_from", &app.message_from, MAX_NAME, false),
    ];
    for (field, value, max, _) in texts {
        check_length(field, value, max)?;
    }
    for (field, value, _, newlines) in texts {
        no_controls(field, value, newlines)?;
    }
    if app.name.trim().is_empty() {
        return Err(MfaError::BadRequest("name must not be empty.".into()));
    }
    if !CODE_LENGTHS.contains(&app.auth_code_length) {
        return Err(MfaError::BadRequest(format!(
            "auth_code_length {} is outside {}..={}.",
            app.auth_code_length,
            CODE_LENGTHS.start(),
            CODE_LENGTHS.end()
        )));
    }
    if TokenType::parse(&app.auth_token_type).is_none() {
        return Err(MfaError::BadRequest(format!(
            "auth_token_type {:?} is not one of NUMERIC, ALPHANUMERIC, ALPHA, COMPLEX.",
            app.auth_token_type
        )));
    }
    if !VALIDITIES.contains(&app.auth_token_validity_duration) {
        return Err(MfaError::BadRequest(format!(
            "auth_token_validity_duration {} is outside {}..={} seconds.",
            app.auth_token_validity_duration,
            VALIDITIES.start(),
            VALIDITIES.end()
        )));
    }
    if app
        .auth_token_prefix
        .chars()
        .any(|c| c.is_whitespace() || c == '$')
    {
        return Err(MfaError::BadRequest(
            "auth_token_prefix must not contain whitespace or '$'.".into(),
        ));
    }
    if Channel::parse(&app.auth_token_delivery_methods).is_none() {
        return Err(MfaError::BadRequest(format!(
            "auth_token_delivery_methods {:?} is not SMS or EMAIL.",
            app.auth_token_delivery_methods
        )));
    }
    for (field, template) in [
        ("associate_template", &app.associate_template),
        ("login_template", &app.login_template),
    ] {
        if !template.is_empty() && !template.contains("$code") {
            return Err(MfaError::BadRequest(format!(
                "{field} must contain $code (or be empty for the default template)."
            )));
        }
    }
    Ok(())
}

/// The address in the form it is stored and used: a phone number without separators
/// (`+15551234567`) for SMS, an e-mail address for EMAIL.
pub fn check_address(channel: Channel, address: &str) -> Result<String, MfaError> {
    check_length("address", address, MAX_ADDRESS)?;
    match channel {
        Channel::Sms => {
            let compact: String = address
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
                .collect();
            let digits = compact.strip_prefix('+').unwrap_or(&compact);
            if (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
                Ok(compact)
            } else {
                Err(MfaError::BadRequest(format!(
                    "address {address:?} is not a phone number (6 to 15 digits, optionally \
                     after '+') as this application delivers by SMS."
                )))
            }
        }
        Channel::Email => match check_mailbox(address) {
            Ok(()) => Ok(address.to_owned()),
            Err(why) => Err(MfaError::BadRequest(format!(
                "address {why}; this application delivers by EMAIL."
            ))),
        },
    }
}

/// Fills `$display_name` and `$code` in one pass (a display name holding `$code` stays as
/// it is); any other `$` is kept.
pub fn render(template: &str, display_name: &str, code: &str) -> String {
    let mut out = String::with_capacity(template.len() + code.len() + display_name.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix("display_name") {
            out.push_str(display_name);
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("code") {
            out.push_str(code);
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

mod applications;
mod enrolment;
mod one_time;
mod users;

#[allow(clippy::wildcard_imports)]
pub use applications::*;
#[allow(clippy::wildcard_imports)]
pub use enrolment::*;
#[allow(clippy::wildcard_imports)]
pub use one_time::*;
#[allow(clippy::wildcard_imports)]
pub use users::*;

#[cfg(test)]
mod tests;
