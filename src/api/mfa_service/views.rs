//! The MFA service API's bodies and views, as the reference spells them.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Bodies and views

/// An application as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    /// Unique id, chosen by the server.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Description.
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
    /// Template of address validation messages (empty: the default).
    pub associate_template: String,
    /// Value of `$display_name` in the templates.
    pub display_name: String,
    /// Template of login messages (empty: the default).
    pub login_template: String,
    /// SMS sender id; the sender's name in e-mails.
    pub message_from: String,
    /// When the application was created (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub created_date: String,
    /// When it last changed (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub last_updated_date: String,
    /// 1 at creation, one more per change; send it back with an update.
    pub version_number: i64,
}

impl From<Application> for ApplicationView {
    fn from(a: Application) -> Self {
        ApplicationView {
            id: a.id,
            name: a.name,
            description: a.description,
            auth_code_length: a.auth_code_length,
            auth_token_type: a.auth_token_type,
            auth_token_validity_duration: a.auth_token_validity_duration,
            auth_token_prefix: a.auth_token_prefix,
            auth_token_delivery_methods: a.auth_token_delivery_methods,
            associate_template: a.associate_template,
            display_name: a.display_name,
            login_template: a.login_template,
            message_from: a.message_from,
            created_date: rfc3339(a.created),
            last_updated_date: rfc3339(a.updated),
            version_number: a.version_number,
        }
    }
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// The id the customer gave the user.
    pub id: String,
    /// Phone number or e-mail address; empty when INITIAL.
    pub user_address: String,
    /// INITIAL, VALIDATION PENDING or VALIDATED.
    #[schema(value_type = UserStatus)]
    pub status: String,
    /// When the user was created (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub created_date: String,
    /// When it last changed (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub last_updated_date: String,
    /// 1 at creation, one more per change.
    pub version_number: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            user_address: u.user_address,
            status: u.status,
            created_date: rfc3339(u.created),
            last_updated_date: rfc3339(u.updated),
            version_number: u.version_number,
        }
    }
}

/// A user's status.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub enum UserStatus {
    /// No address.
    #[serde(rename = "INITIAL")]
    Initial,
    /// An address waits for its validation code.
    #[serde(rename = "VALIDATION PENDING")]
    ValidationPending,
    /// The address is validated.
    #[serde(rename = "VALIDATED")]
    Validated,
}

/// `auth_token_type`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthTokenType {
    /// Digits.
    Numeric,
    /// Upper-case letters and digits (checked case-insensitively).
    Alphanumeric,
    /// Upper-case letters (checked case-insensitively).
    Alpha,
    /// Letters of both cases, digits and `!#%*+-=?@^_~`.
    Complex,
}

impl AuthTokenType {
    pub(super) fn name(self) -> &'static str {
        match self {
            AuthTokenType::Numeric => "NUMERIC",
            AuthTokenType::Alphanumeric => "ALPHANUMERIC",
            AuthTokenType::Alpha => "ALPHA",
            AuthTokenType::Complex => "COMPLEX",
        }
    }
}

/// `auth_token_delivery_methods`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DeliveryMethod {
    /// Text messages through the SMS webhook; user addresses are phone numbers.
    Sms,
    /// E-mail through the SMTP relay; user addresses are e-mail addresses.
    Email,
}

impl DeliveryMethod {
    pub(super) fn name(self) -> &'static str {
        match self {
            DeliveryMethod::Sms => "SMS",
            DeliveryMethod::Email => "EMAIL",
        }
    }
}

/// `POST /api/mfa/1.0/applications` body: `name` is required, the rest has defaults. Values
/// longer than allowed answer 400 with error code 1023.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    /// Unique name.
    #[schema(min_length = 1, max_length = 64, example = "vpn")]
    pub name: String,
    /// Description. Default: empty.
    #[schema(max_length = 1024, nullable = false)]
    pub description: Option<String>,
    /// Characters of a code, without the prefix. Default: 6.
    #[schema(minimum = 4, maximum = 32, nullable = false)]
    pub auth_code_length: Option<i64>,
    /// Default: NUMERIC.
    #[schema(nullable = false)]
    pub auth_token_type: Option<AuthTokenType>,
    /// Seconds a code stays valid. Default: 300.
    #[schema(minimum = 1, maximum = 86400, nullable = false)]
    pub auth_token_validity_duration: Option<i64>,
    /// Put in front of every code, no whitespace or `$`. Default: empty.
    #[schema(max_length = 16, pattern = r"^[^\s$]*$", nullable = false)]
    pub auth_token_prefix: Option<String>,
    /// Default: SMS.
    #[schema(nullable = false)]
    pub auth_token_delivery_methods: Option<DeliveryMethod>,
    /// Inline template of address validation messages with `$code` and `$display_name`.
    /// Default (empty): "$display_name: your verification code is $code".
    #[schema(max_length = 1024, nullable = false)]
    pub associate_template: Option<String>,
    /// `$display_name` of the templates. Default: the name.
    #[schema(max_length = 64, nullable = false)]
    pub display_name: Option<String>,
    /// Inline template of login messages with `$code` and `$display_name`. Default (empty):
    /// "$display_name: your login code is $code".
    #[schema(max_length = 1024, nullable = false)]
    pub login_template: Option<String>,
    /// SMS sender id; the sender's name in e-mails. Default: empty.
    #[schema(max_length = 64, nullable = false)]
    pub message_from: Option<String>,
}

/// `PUT /api/mfa/1.0/applications/{Application_ID}` body: the fields given change, the others
/// are kept. `version_number` must be the current version (else 409, code 1001). The
/// read-only `id`, `created_date` and `last_updated_date` of a `GET` may be sent back; `id`
/// must then be the one in the path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationUpdate {
    /// The version this change is based on.
    pub version_number: i64,
    /// Must equal the id in the path when given.
    #[schema(max_length = 128, nullable = false)]
    pub id: Option<String>,
    /// Unique name.
    #[schema(min_length = 1, max_length = 64, nullable = false)]
    pub name: Option<String>,
    /// Description.
    #[schema(max_length = 1024, nullable = false)]
    pub description: Option<String>,
    /// Characters of a code, without the prefix.
    #[schema(minimum = 4, maximum = 32, nullable = false)]
    pub auth_code_length: Option<i64>,
    /// NUMERIC, ALPHANUMERIC, ALPHA or COMPLEX.
    #[schema(nullable = false)]
    pub auth_token_type: Option<AuthTokenType>,
    /// Seconds a code stays valid.
    #[schema(minimum = 1, maximum = 86400, nullable = false)]
    pub auth_token_validity_duration: Option<i64>,
    /// Put in front of every code.
    #[schema(max_length = 16, pattern = r"^[^\s$]*$", nullable = false)]
    pub auth_token_prefix: Option<String>,
    /// SMS or EMAIL.
    #[schema(nullable = false)]
    pub auth_token_delivery_methods: Option<DeliveryMethod>,
    /// Template of address validation messages (empty: the default).
    #[schema(max_length = 1024, nullable = false)]
    pub associate_template: Option<String>,
    /// `$display_name` of the templates.
    #[schema(max_length = 64, nullable = false)]
    pub display_name: Option<String>,
    /// Template of login messages (empty: the default).
    #[schema(max_length = 1024, nullable = false)]
    pub login_template: Option<String>,
    /// SMS sender id; the sender's name in e-mails.
    #[schema(max_length = 64, nullable = false)]
    pub message_from: Option<String>,
    /// Read-only, ignored.
    #[schema(nullable = false)]
    pub created_date: Option<String>,
    /// Read-only, ignored.
    #[schema(nullable = false)]
    pub last_updated_date: Option<String>,
}

/// The answer to a create, associate, validate or login_start: the resource's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedResource {
    /// Id of the application (create) or of the user (the user flows).
    pub id: String,
}

/// An empty JSON object, the answer of deletes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Empty {}

/// `associate` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssociateRequest {
    /// The address to validate: a phone number (`+15551234567`; spaces, `-`, `.` and
    /// parentheses are dropped) for SMS applications, an e-mail address for EMAIL ones.
    #[schema(min_length = 1, max_length = 254, example = "+15551234567")]
    pub address: String,
    /// `$display_name` for this message instead of the application's.
    #[schema(max_length = 64, nullable = false)]
    pub display_name: Option<String>,
}

/// `validate` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The code received, with or without the application's prefix.
    #[schema(min_length = 1, max_length = 64, example = "123456")]
    pub validation_code: String,
}

/// `login_start` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginStartRequest {
    /// `$display_name` for this message instead of the application's.
    #[schema(max_length = 64, nullable = false)]
    pub display_name: Option<String>,
}

/// The documented filters of the application list (also accepted by the GET of one
/// application, which then answers 404 when it does not match).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationFilters {
    /// Only this id.
    #[param(max_length = 128)]
    pub id: Option<String>,
    /// Only this name.
    #[param(max_length = 64)]
    pub name: Option<String>,
    /// Only this code length.
    pub auth_code_length: Option<i64>,
    /// Only this code type.
    pub auth_token_type: Option<AuthTokenType>,
    /// Only this validity.
    pub auth_token_validity_duration: Option<i64>,
    /// Only this prefix.
    #[param(max_length = 16)]
    pub auth_token_prefix: Option<String>,
    /// Only this delivery method.
    pub auth_token_delivery_methods: Option<DeliveryMethod>,
    /// Only this sender.
    #[param(max_length = 64)]
    pub message_from: Option<String>,
    /// Created on this UTC day (`YYYY-MM-DD`) or at this time (`YYYY-MM-DDTHH:MM:SSZ`).
    #[param(max_length = 32)]
    pub created_date: Option<String>,
    /// Last changed on this UTC day or at this time.
    #[param(max_length = 32)]
    pub last_updated_date: Option<String>,
}

/// The documented filters of the user list (also accepted by the GET of one user).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilters {
    /// Only this id.
    #[param(max_length = 128)]
    pub id: Option<String>,
    /// Only users in this status.
    pub status: Option<UserStatus>,
    /// Created on this UTC day (`YYYY-MM-DD`) or at this time (`YYYY-MM-DDTHH:MM:SSZ`).
    #[param(max_length = 32)]
    pub created_date: Option<String>,
    /// Last changed on this UTC day or at this time.
    #[param(max_length = 32)]
    pub last_updated_date: Option<String>,
}

/// A JSON object body: malformed JSON, another type, `null` members, unknown members and
/// members of the wrong type are 400 (code 400).
pub(super) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Handled<T> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| MfaApiError::bad(format!("The request body is not JSON: {e}")))?;
    let Some(members) = value.as_object() else {
        return Err(MfaApiError::bad("The request body must be a JSON object."));
    };
    if let Some((name, _)) = members.iter().find(|(_, v)| v.is_null()) {
        return Err(MfaApiError::bad(format!(
            "{name} must not be null; leave it out instead."
        )));
    }
    T::deserialize(value).map_err(|e| MfaApiError::bad(format!("Invalid request: {e}")))
}

pub(super) fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Handled<Vec<(String, String)>> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|e| MfaApiError::bad(format!("Invalid query: {}", e.body_text())))
}

pub(super) fn path_ids<T: DeserializeOwned + Send>(
    path: Result<Path<T>, PathRejection>,
) -> Handled<T> {
    path.map(|Path(ids)| ids).map_err(|e| {
        MfaApiError::new(
            StatusCode::NOT_FOUND,
            "404",
            format!("Not Found: {}", e.body_text()),
        )
    })
}

pub(super) async fn run<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut dyn crate::state::mfa::MfaTx) -> Result<T, MfaError> + Send + 'static,
) -> Handled<T> {
    Ok(state.db.mfa(f).await?)
}
