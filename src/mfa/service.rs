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
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::codes::{self, TokenType};
use super::delivery::{self, Channel, Message};
use super::time;
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

impl From<rusqlite::Error> for MfaError {
    fn from(e: rusqlite::Error) -> MfaError {
        MfaError::internal("state database", e)
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

/// An application as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Server-chosen id (32 hex digits).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Characters of a code, without the prefix.
    pub auth_code_length: i64,
    /// NUMERIC, ALPHANUMERIC, ALPHA or COMPLEX.
    pub auth_token_type: String,
    /// Seconds a code stays valid.
    pub auth_token_validity_duration: i64,
    /// Put in front of every code.
    pub auth_token_prefix: String,
    /// SMS or EMAIL.
    pub auth_token_delivery_methods: String,
    /// Template of association messages (empty: the default).
    pub associate_template: String,
    /// `$display_name` of the templates.
    pub display_name: String,
    /// Template of login messages (empty: the default).
    pub login_template: String,
    /// SMS sender id / e-mail sender name.
    pub message_from: String,
    /// Unix time of creation.
    pub created: i64,
    /// Unix time of the last change.
    pub updated: i64,
    /// 1 at creation, +1 per change.
    pub version_number: i64,
}

impl Application {
    fn token_type(&self) -> TokenType {
        TokenType::parse(&self.auth_token_type).unwrap_or(TokenType::Numeric)
    }

    fn channel(&self) -> Channel {
        Channel::parse(&self.auth_token_delivery_methods).unwrap_or(Channel::Sms)
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Application> {
        Ok(Application {
            id: row.get(0)?,
            name: row.get(1)?,
            description: row.get(2)?,
            auth_code_length: row.get(3)?,
            auth_token_type: row.get(4)?,
            auth_token_validity_duration: row.get(5)?,
            auth_token_prefix: row.get(6)?,
            auth_token_delivery_methods: row.get(7)?,
            associate_template: row.get(8)?,
            display_name: row.get(9)?,
            login_template: row.get(10)?,
            message_from: row.get(11)?,
            created: row.get(12)?,
            updated: row.get(13)?,
            version_number: row.get(14)?,
        })
    }
}

const APPLICATION_COLUMNS: &str = "id, name, description, auth_code_length, auth_token_type, \
     auth_token_validity_duration, auth_token_prefix, auth_token_delivery_methods, \
     associate_template, display_name, login_template, message_from, created, updated, \
     version_number";

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

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The application.
    pub application_id: String,
    /// Customer-supplied id.
    pub id: String,
    /// Phone number or e-mail address; empty when INITIAL.
    pub user_address: String,
    /// INITIAL, VALIDATION PENDING or VALIDATED.
    pub status: String,
    /// Unix time of creation.
    pub created: i64,
    /// Unix time of the last change.
    pub updated: i64,
    /// 1 at creation, +1 per change.
    pub version_number: i64,
    /// Wrong codes in a row.
    pub failures: i64,
    /// Locked until this Unix time (0: never locked).
    pub locked_until: i64,
}

impl User {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
        Ok(User {
            application_id: row.get(0)?,
            id: row.get(1)?,
            user_address: row.get(2)?,
            status: row.get(3)?,
            created: row.get(4)?,
            updated: row.get(5)?,
            version_number: row.get(6)?,
            failures: row.get(7)?,
            locked_until: row.get(8)?,
        })
    }

    fn validated(&self) -> bool {
        self.status == Status::Validated.as_str()
    }
}

const USER_COLUMNS: &str = "application_id, id, user_address, status, created, updated, \
     version_number, failures, locked_until";

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

// ---------------------------------------------------------------------------------------------
// Applications

fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

fn duplicate_name(name: &str) -> MfaError {
    MfaError::Duplicate(format!(
        "Unique key constraint violated: an application named {name:?} exists already."
    ))
}

fn no_application(id: &str) -> MfaError {
    MfaError::NotFound(format!("No application with id {id:?}."))
}

fn check_id(field: &str, id: &str) -> Result<(), MfaError> {
    check_length(field, id, MAX_ID)
}

/// Creates an application; `name` is required, the rest defaults.
pub fn create_application(
    c: &mut Connection,
    fields: ApplicationFields,
    now: i64,
) -> Result<Application, MfaError> {
    let Some(name) = fields.name.clone() else {
        return Err(MfaError::BadRequest("name is required.".into()));
    };
    let mut app = Application {
        id: codes::random_hex(16)?,
        display_name: name.clone(),
        name,
        description: String::new(),
        auth_code_length: 6,
        auth_token_type: TokenType::Numeric.as_str().into(),
        auth_token_validity_duration: 300,
        auth_token_prefix: String::new(),
        auth_token_delivery_methods: Channel::Sms.as_str().into(),
        associate_template: String::new(),
        login_template: String::new(),
        message_from: String::new(),
        created: now,
        updated: now,
        version_number: 1,
    };
    merge(&mut app, fields);
    check_application(&app)?;
    let inserted = c.execute(
        &format!(
            "INSERT INTO mfa_applications ({APPLICATION_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            app.id,
            app.name,
            app.description,
            app.auth_code_length,
            app.auth_token_type,
            app.auth_token_validity_duration,
            app.auth_token_prefix,
            app.auth_token_delivery_methods,
            app.associate_template,
            app.display_name,
            app.login_template,
            app.message_from,
            app.created,
            app.updated,
            app.version_number
        ],
    );
    match inserted {
        Ok(_) => Ok(app),
        Err(e) if unique_violation(&e) => Err(duplicate_name(&app.name)),
        Err(e) => Err(e.into()),
    }
}

fn merge(app: &mut Application, fields: ApplicationFields) {
    let ApplicationFields {
        name,
        description,
        auth_code_length,
        auth_token_type,
        auth_token_validity_duration,
        auth_token_prefix,
        auth_token_delivery_methods,
        associate_template,
        display_name,
        login_template,
        message_from,
    } = fields;
    let set = |slot: &mut String, value: Option<String>| {
        if let Some(value) = value {
            *slot = value;
        }
    };
    set(&mut app.name, name);
    set(&mut app.description, description);
    set(&mut app.auth_token_type, auth_token_type);
    set(&mut app.auth_token_prefix, auth_token_prefix);
    set(
        &mut app.auth_token_delivery_methods,
        auth_token_delivery_methods,
    );
    set(&mut app.associate_template, associate_template);
    set(&mut app.display_name, display_name);
    set(&mut app.login_template, login_template);
    set(&mut app.message_from, message_from);
    if let Some(n) = auth_code_length {
        app.auth_code_length = n;
    }
    if let Some(n) = auth_token_validity_duration {
        app.auth_token_validity_duration = n;
    }
}

/// The application with this id.
pub fn get_application(c: &Connection, id: &str) -> Result<Application, MfaError> {
    check_id("Application_ID", id)?;
    find_application(c, id)?.ok_or_else(|| no_application(id))
}

fn find_application(c: &Connection, id: &str) -> Result<Option<Application>, MfaError> {
    Ok(c.query_row(
        &format!("SELECT {APPLICATION_COLUMNS} FROM mfa_applications WHERE id = ?1"),
        [id],
        Application::from_row,
    )
    .optional()?)
}

fn find_application_by_name(c: &Connection, name: &str) -> Result<Option<Application>, MfaError> {
    Ok(c.query_row(
        &format!("SELECT {APPLICATION_COLUMNS} FROM mfa_applications WHERE name = ?1"),
        [name],
        Application::from_row,
    )
    .optional()?)
}

/// Applications matching every filter (`name=value` pairs of the documented filters), in
/// creation order.
pub fn list_applications(
    c: &Connection,
    filters: &[(String, String)],
) -> Result<Vec<Application>, MfaError> {
    let filter = ApplicationFilter::parse(filters)?;
    let mut statement = c.prepare(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM mfa_applications ORDER BY created, rowid"
    ))?;
    let rows = statement.query_map([], Application::from_row)?;
    let mut out = Vec::new();
    for row in rows {
        let app = row?;
        if filter.matches(&app) {
            out.push(app);
        }
    }
    Ok(out)
}

/// The documented filters of the application list (and, quirk of the reference, of the GET of
/// one application).
#[derive(Debug, Default)]
pub struct ApplicationFilter {
    texts: Vec<(&'static str, String)>,
    numbers: Vec<(&'static str, i64)>,
    dates: Vec<(&'static str, String)>,
}

/// 400 for a filter the reference does not document.
fn unknown_filter(name: &str, known: &[&str]) -> MfaError {
    MfaError::BadRequest(format!(
        "Unknown query parameter {name:?}; the filters are {}.",
        known.join(", ")
    ))
}

impl ApplicationFilter {
    const TEXTS: [(&'static str, usize); 5] = [
        ("id", MAX_ID),
        ("name", MAX_NAME),
        ("auth_token_type", 16),
        ("auth_token_prefix", MAX_PREFIX),
        ("message_from", MAX_NAME),
    ];
    const NUMBERS: [&'static str; 2] = ["auth_code_length", "auth_token_validity_duration"];
    const DATES: [&'static str; 2] = ["created_date", "last_updated_date"];
    const METHODS: &'static str = "auth_token_delivery_methods";

    /// Parses query pairs: unknown names are 400, over-long values 1023, numbers and dates
    /// that do not parse 400.
    pub fn parse(filters: &[(String, String)]) -> Result<ApplicationFilter, MfaError> {
        let mut filter = ApplicationFilter::default();
        for (name, value) in filters {
            if let Some((field, max)) = Self::TEXTS.iter().find(|(f, _)| f == name) {
                check_length(name, value, *max)?;
                if *field == "auth_token_type" && TokenType::parse(value).is_none() {
                    return Err(MfaError::BadRequest(format!(
                        "auth_token_type filter {value:?} is not NUMERIC, ALPHANUMERIC, ALPHA \
                         or COMPLEX."
                    )));
                }
                filter.texts.push((field, value.clone()));
            } else if name == Self::METHODS {
                check_length(name, value, 16)?;
                if Channel::parse(value).is_none() {
                    return Err(MfaError::BadRequest(format!(
                        "{name} filter {value:?} is not SMS or EMAIL."
                    )));
                }
                filter.texts.push((Self::METHODS, value.clone()));
            } else if let Some(field) = Self::NUMBERS.iter().find(|f| *f == name) {
                check_length(name, value, 20)?;
                let n = value.parse().map_err(|_| {
                    MfaError::BadRequest(format!("{name} filter {value:?} is not an integer."))
                })?;
                filter.numbers.push((field, n));
            } else if let Some(field) = Self::DATES.iter().find(|f| *f == name) {
                check_length(name, value, 32)?;
                if time::matches(value, 0).is_none() {
                    return Err(MfaError::BadRequest(format!(
                        "{name} filter {value:?} is not a date (YYYY-MM-DD) or an RFC 3339 UTC \
                         time (YYYY-MM-DDTHH:MM:SSZ)."
                    )));
                }
                filter.dates.push((field, value.clone()));
            } else {
                let mut known: Vec<&str> = Self::TEXTS.iter().map(|(f, _)| *f).collect();
                known.push(Self::METHODS);
                known.extend(Self::NUMBERS);
                known.extend(Self::DATES);
                return Err(unknown_filter(name, &known));
            }
        }
        Ok(filter)
    }

    /// Whether `app` passes every filter.
    pub fn matches(&self, app: &Application) -> bool {
        self.texts.iter().all(|(field, value)| {
            let actual = match *field {
                "id" => &app.id,
                "name" => &app.name,
                "auth_token_type" => &app.auth_token_type,
                "auth_token_prefix" => &app.auth_token_prefix,
                "message_from" => &app.message_from,
                _ => &app.auth_token_delivery_methods,
            };
            actual == value
        }) && self.numbers.iter().all(|(field, value)| {
            let actual = if *field == "auth_code_length" {
                app.auth_code_length
            } else {
                app.auth_token_validity_duration
            };
            actual == *value
        }) && self.dates.iter().all(|(field, value)| {
            let actual = if *field == "created_date" {
                app.created
            } else {
                app.updated
            };
            time::matches(value, actual) == Some(true)
        })
    }
}

/// Changes the fields given when `version` is the current version; the version goes up by one.
pub fn update_application(
    c: &mut Connection,
    id: &str,
    fields: ApplicationFields,
    version: i64,
    now: i64,
) -> Result<Application, MfaError> {
    let tx = c.transaction()?;
    let mut app = get_application(&tx, id)?;
    if app.version_number != version {
        return Err(MfaError::Stale {
            current: app.version_number,
        });
    }
    merge(&mut app, fields);
    check_application(&app)?;
    app.version_number += 1;
    app.updated = now;
    let updated = tx.execute(
        "UPDATE mfa_applications SET name = ?2, description = ?3, auth_code_length = ?4, \
         auth_token_type = ?5, auth_token_validity_duration = ?6, auth_token_prefix = ?7, \
         auth_token_delivery_methods = ?8, associate_template = ?9, display_name = ?10, \
         login_template = ?11, message_from = ?12, updated = ?13, version_number = ?14 \
         WHERE id = ?1 AND version_number = ?15",
        params![
            app.id,
            app.name,
            app.description,
            app.auth_code_length,
            app.auth_token_type,
            app.auth_token_validity_duration,
            app.auth_token_prefix,
            app.auth_token_delivery_methods,
            app.associate_template,
            app.display_name,
            app.login_template,
            app.message_from,
            app.updated,
            app.version_number,
            version
        ],
    );
    match updated {
        Ok(1) => {}
        Ok(_) => {
            return Err(MfaError::Stale {
                current: app.version_number,
            });
        }
        Err(e) if unique_violation(&e) => return Err(duplicate_name(&app.name)),
        Err(e) => return Err(e.into()),
    }
    tx.commit()?;
    Ok(app)
}

/// Deletes an application with its users and their codes.
pub fn delete_application(c: &mut Connection, id: &str) -> Result<(), MfaError> {
    check_id("Application_ID", id)?;
    let tx = c.transaction()?;
    let deleted = tx.execute("DELETE FROM mfa_applications WHERE id = ?1", [id])?;
    if deleted == 0 {
        return Err(no_application(id));
    }
    tx.execute("DELETE FROM mfa_sends WHERE application_id = ?1", [id])?;
    tx.commit()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Users

fn no_user(application: &str, user: &str) -> MfaError {
    MfaError::NotFound(format!("No user {user:?} in application {application:?}."))
}

fn find_user(c: &Connection, application: &str, user: &str) -> Result<Option<User>, MfaError> {
    Ok(c.query_row(
        &format!("SELECT {USER_COLUMNS} FROM mfa_users WHERE application_id = ?1 AND id = ?2"),
        [application, user],
        User::from_row,
    )
    .optional()?)
}

/// 409/1011 when `application` has a user whose id differs from `user_id` only in case or
/// compatibility forms: both would be one gateway user ([`UserKey`]), and which address its
/// codes went to would depend on how the name was typed.
fn refuse_namesake(c: &Connection, application: &str, user_id: &str) -> Result<(), MfaError> {
    let key = UserKey::of(user_id);
    let taken: Option<String> = c
        .query_row(
            "SELECT id FROM mfa_users WHERE application_id = ?1 AND user_key = ?2 LIMIT 1",
            params![application, key.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    match taken {
        Some(other) => Err(MfaError::Duplicate(format!(
            "User {other:?} exists already: user ids are compared ignoring case."
        ))),
        None => Ok(()),
    }
}

/// The documented filters of the user list (and of the GET of one user).
#[derive(Debug, Default)]
pub struct UserFilter {
    id: Option<String>,
    status: Option<String>,
    dates: Vec<(bool, String)>,
}

impl UserFilter {
    /// Parses query pairs like [`ApplicationFilter::parse`].
    pub fn parse(filters: &[(String, String)]) -> Result<UserFilter, MfaError> {
        let mut filter = UserFilter::default();
        for (name, value) in filters {
            match name.as_str() {
                "id" => {
                    check_length(name, value, MAX_ID)?;
                    filter.id = Some(value.clone());
                }
                "status" => {
                    check_length(name, value, 32)?;
                    if Status::parse(value).is_none() {
                        return Err(MfaError::BadRequest(format!(
                            "status filter {value:?} is not INITIAL, VALIDATION PENDING or \
                             VALIDATED."
                        )));
                    }
                    filter.status = Some(value.clone());
                }
                "created_date" | "last_updated_date" => {
                    check_length(name, value, 32)?;
                    if time::matches(value, 0).is_none() {
                        return Err(MfaError::BadRequest(format!(
                            "{name} filter {value:?} is not a date (YYYY-MM-DD) or an RFC 3339 \
                             UTC time."
                        )));
                    }
                    filter.dates.push((name == "created_date", value.clone()));
                }
                _ => {
                    return Err(unknown_filter(
                        name,
                        &["id", "status", "created_date", "last_updated_date"],
                    ));
                }
            }
        }
        Ok(filter)
    }

    /// Whether `user` passes every filter.
    pub fn matches(&self, user: &User) -> bool {
        self.id.as_ref().is_none_or(|id| *id == user.id)
            && self.status.as_ref().is_none_or(|s| *s == user.status)
            && self.dates.iter().all(|(created, value)| {
                let at = if *created { user.created } else { user.updated };
                time::matches(value, at) == Some(true)
            })
    }
}

/// The users of an application matching the filters, in creation order.
pub fn list_users(
    c: &Connection,
    application: &str,
    filters: &[(String, String)],
) -> Result<Vec<User>, MfaError> {
    let filter = UserFilter::parse(filters)?;
    get_application(c, application)?;
    let mut statement = c.prepare(&format!(
        "SELECT {USER_COLUMNS} FROM mfa_users WHERE application_id = ?1 ORDER BY created, rowid"
    ))?;
    let rows = statement.query_map([application], User::from_row)?;
    let mut out = Vec::new();
    for row in rows {
        let user = row?;
        if filter.matches(&user) {
            out.push(user);
        }
    }
    Ok(out)
}

/// One user of an application.
pub fn get_user(c: &Connection, application: &str, user: &str) -> Result<User, MfaError> {
    check_id("User_ID", user)?;
    get_application(c, application)?;
    find_user(c, application, user)?.ok_or_else(|| no_user(application, user))
}

/// Deletes a user, their code and their send history.
pub fn delete_user(c: &mut Connection, application: &str, user: &str) -> Result<(), MfaError> {
    check_id("User_ID", user)?;
    let tx = c.transaction()?;
    get_application(&tx, application)?;
    if tx.execute(
        "DELETE FROM mfa_users WHERE application_id = ?1 AND id = ?2",
        [application, user],
    )? == 0
    {
        return Err(no_user(application, user));
    }
    tx.execute(
        "DELETE FROM mfa_sends WHERE application_id = ?1 AND user_id = ?2",
        [application, user],
    )?;
    tx.commit()?;
    Ok(())
}

/// Removes a user's address: status INITIAL, no outstanding code.
pub fn dissociate(
    c: &mut Connection,
    application: &str,
    user: &str,
    now: i64,
) -> Result<User, MfaError> {
    check_id("User_ID", user)?;
    let tx = c.transaction()?;
    get_application(&tx, application)?;
    let mut found = find_user(&tx, application, user)?.ok_or_else(|| no_user(application, user))?;
    found.user_address.clear();
    found.status = Status::Initial.as_str().into();
    found.version_number += 1;
    found.updated = now;
    tx.execute(
        "UPDATE mfa_users SET user_address = '', status = ?3, version_number = ?4, \
         updated = ?5 WHERE application_id = ?1 AND id = ?2",
        params![application, user, found.status, found.version_number, now],
    )?;
    tx.execute(
        "DELETE FROM mfa_codes WHERE application_id = ?1 AND user_id = ?2",
        [application, user],
    )?;
    tx.commit()?;
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// Codes

/// The database's HMAC key, made on first use.
fn hash_key(c: &Connection) -> Result<Vec<u8>, MfaError> {
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

fn locked(user: &User, now: i64) -> bool {
    user.locked_until > now
}

fn too_many_failures() -> MfaError {
    MfaError::TooMany(format!(
        "User sent too many requests: {MAX_FAILURES} wrong codes in a row; try again in up to \
         {LOCKOUT_SECONDS} seconds."
    ))
}

/// A code drawn and checked for sending, not stored yet. No `Debug`: it holds the code.
struct Draft {
    application: Application,
    user_id: String,
    address: String,
    purpose: Purpose,
    code: String,
    hash: Vec<u8>,
    expires: i64,
}

/// First transaction of a send: the application, the user's state and the limits allow it; a
/// send is counted; a code is drawn.
fn draft(
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
fn commit(c: &mut Connection, draft: &Draft, now: i64) -> Result<(), MfaError> {
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
fn check(
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
fn check_in(
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

fn count(result: CodeCheck) {
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
    db.run(move |c| Ok(find_enrolment(c, &name, &user))).await?
}

/// The validated user of application `name` whose id is the canonical user `user` (ids that
/// differ only in case are refused at association, so there is at most one).
fn find_enrolment(
    c: &Connection,
    name: &str,
    user: &UserKey,
) -> Result<Option<Enrolment>, MfaError> {
    if chars(user.as_str()) > MAX_ID {
        return Ok(None);
    }
    let Some(application) = find_application_by_name(c, name)? else {
        return Ok(None);
    };
    let found = c
        .query_row(
            &format!(
                "SELECT {USER_COLUMNS} FROM mfa_users WHERE application_id = ?1 AND user_key = ?2 \
                 AND status = ?3 ORDER BY id LIMIT 1"
            ),
            params![application.id, user.as_str(), Status::Validated.as_str()],
            User::from_row,
        )
        .optional()?;
    Ok(found.map(|user| Enrolment { application, user }))
}

/// Whether gateway user `user` has a validated address in application `name`.
pub fn has_validated_address(c: &Connection, name: &str, user: &UserKey) -> Result<bool, MfaError> {
    Ok(find_enrolment(c, name, user)?.is_some())
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
    c: &Connection,
    name: &str,
    user: &UserKey,
    code: &str,
    now: i64,
) -> Result<bool, MfaError> {
    if chars(code) > MAX_CODE_INPUT {
        return Ok(false);
    }
    let Some(enrolment) = find_enrolment(c, name, user)? else {
        return Ok(false);
    };
    let result = check_in(
        c,
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
    c: &Connection,
    name: &str,
    user: &UserKey,
    text: &str,
) -> Result<bool, MfaError> {
    if chars(text) > MAX_CODE_INPUT {
        return Ok(false);
    }
    let Some(enrolment) = find_enrolment(c, name, user)? else {
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
        .run(move |c| Ok(check(c, &application, &user, &code, &[Purpose::Login], now)))
        .await?;
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

#[cfg(test)]
mod tests;
