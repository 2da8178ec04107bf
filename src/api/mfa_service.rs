//! `/api/mfa/1.0/applications/...`: the MFA service's applications, users, address
//! association, code validation and login start, in the shapes of the reference MFA service
//! API. Its errors use that API's body `{error_code, error_description}` (not `ApiError`'s):
//! `error_code` is the documented code as a string (400, 1023, 401, 403, 404, 412, 1001, 1011,
//! 2001, 2002, 2003, 2004, 500, 503). 412 without a finer code means that no sender is
//! configured for the application's delivery method.
//!
//! Access (every route needs an authenticated caller):
//! - applications: reads `Administrator`, `Monitor` or `MFA Service`; writes `Administrator`;
//! - users: reads `Administrator`, `Monitor` or `MFA Service`; everything else (delete,
//!   associate, dissociate, validate, login_start) `Administrator` or `MFA Service`, the role
//!   of the services that call on behalf of their users.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{ADMINISTRATOR, Caller, MONITOR};
use super::error::ApiError;
use crate::mfa::service::{self, Application, ApplicationFields, CodeCheck, MfaError, User};
use crate::mfa::time::rfc3339;
use portcullis_config::UserKey;

/// The role of services that run MFA flows for their users.
pub const MFA_SERVICE: &str = "MFA Service";

/// The MFA service routes.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_applications, create_application))
        .routes(routes!(
            get_application,
            update_application,
            delete_application
        ))
        .routes(routes!(list_users))
        .routes(routes!(get_user, delete_user))
        .routes(routes!(associate, dissociate))
        .routes(routes!(validate))
        .routes(routes!(login_start))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The MFA service API's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaErrorBody {
    /// The documented error code: 400, 1023, 401, 403, 404, 412, 1001, 1011, 2001, 2002, 2003,
    /// 2004, 500 or 503.
    pub error_code: String,
    /// What went wrong.
    pub error_description: String,
}

/// An error answer of the MFA service routes.
#[derive(Debug)]
pub struct MfaApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl MfaApiError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        MfaApiError {
            status,
            code,
            description: description.into(),
        }
    }

    fn bad(description: impl Into<String>) -> Self {
        MfaApiError::new(StatusCode::BAD_REQUEST, "400", description)
    }

    fn forbidden(roles: &str) -> Self {
        MfaApiError::new(
            StatusCode::FORBIDDEN,
            "403",
            format!("Forbidden: this operation needs the {roles} role."),
        )
    }
}

impl From<MfaError> for MfaApiError {
    fn from(e: MfaError) -> Self {
        let (status, code) = match &e {
            MfaError::BadRequest(_) => (StatusCode::BAD_REQUEST, "400"),
            MfaError::TooLong(_) => (StatusCode::BAD_REQUEST, "1023"),
            MfaError::NotFound(_) => (StatusCode::NOT_FOUND, "404"),
            MfaError::Stale { .. } => (StatusCode::CONFLICT, "1001"),
            MfaError::Duplicate(_) => (StatusCode::CONFLICT, "1011"),
            MfaError::InvalidCode => (StatusCode::PRECONDITION_FAILED, "2001"),
            MfaError::Expired => (StatusCode::PRECONDITION_FAILED, "2002"),
            MfaError::NotValidated => (StatusCode::CONFLICT, "2003"),
            MfaError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "2004"),
            MfaError::Unconfigured(_) => (StatusCode::PRECONDITION_FAILED, "412"),
            MfaError::Delivery(_) => (StatusCode::SERVICE_UNAVAILABLE, "503"),
            MfaError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "500"),
        };
        let description = match e {
            MfaError::Internal(_) => "Server Error: internal server error. Please report.".into(),
            other => other.to_string(),
        };
        MfaApiError::new(status, code, description)
    }
}

impl From<ApiError> for MfaApiError {
    /// The caller check's refusals (401, 403) in this API's body.
    fn from(e: ApiError) -> Self {
        let code = match e.status {
            StatusCode::UNAUTHORIZED => "401",
            StatusCode::FORBIDDEN => "403",
            StatusCode::NOT_FOUND => "404",
            StatusCode::BAD_REQUEST => "400",
            _ => "500",
        };
        MfaApiError::new(e.status, code, e.error_text)
    }
}

impl IntoResponse for MfaApiError {
    fn into_response(self) -> Response {
        let body = MfaErrorBody {
            error_code: self.code.to_owned(),
            error_description: self.description,
        };
        super::error::json_response(self.status, body)
    }
}

type Handled<T> = Result<T, MfaApiError>;

// ---------------------------------------------------------------------------------------------
// Access

fn has(caller: &Caller, role: &str) -> bool {
    caller.roles.iter().any(|r| r == role)
}

/// Reads: Administrator, Monitor or MFA Service.
fn reader(caller: Result<Caller, ApiError>) -> Handled<Caller> {
    let caller = caller?;
    if has(&caller, ADMINISTRATOR) || has(&caller, MONITOR) || has(&caller, MFA_SERVICE) {
        Ok(caller)
    } else {
        Err(MfaApiError::forbidden(
            "Administrator, Monitor or MFA Service",
        ))
    }
}

/// Application writes: Administrator.
fn administrator(caller: Result<Caller, ApiError>) -> Handled<Caller> {
    let caller = caller?;
    if has(&caller, ADMINISTRATOR) {
        Ok(caller)
    } else {
        Err(MfaApiError::forbidden(ADMINISTRATOR))
    }
}

/// User flows: Administrator or MFA Service.
pub(crate) fn service_caller(caller: Result<Caller, ApiError>) -> Result<Caller, ApiError> {
    let caller = caller?;
    if has(&caller, ADMINISTRATOR) || has(&caller, MFA_SERVICE) {
        Ok(caller)
    } else {
        Err(ApiError::forbidden("Administrator or MFA Service"))
    }
}

/// Changing the delivered second factor of a gateway user (a user of the application named by
/// `[mfa_delivery] application`) who holds Administrator, or might at their next login, needs
/// Administrator: an `MFA Service` caller who could re-associate an administrator's address
/// (or remove it, which reopens first-use enrolment) would hold that administrator's second
/// factor.
async fn may_change_factor(
    caller: &Caller,
    state: &AppState,
    application: &str,
    user: &str,
) -> Handled<()> {
    if has(caller, ADMINISTRATOR) {
        return Ok(());
    }
    let live = state.store.current();
    if !live.config.may_hold(&UserKey::of(user), ADMINISTRATOR) {
        return Ok(());
    }
    let gateway = live.config.mfa_delivery.application.clone();
    let id = application.to_owned();
    let is_gateway = run(state, move |c| {
        Ok(service::get_application(c, &id).is_ok_and(|app| app.name == gateway))
    })
    .await?;
    if is_gateway {
        tracing::warn!(caller = %caller.user, user, "MFA Service caller refused: the user may hold Administrator");
        return Err(MfaApiError::forbidden(ADMINISTRATOR));
    }
    Ok(())
}

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
    fn name(self) -> &'static str {
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
    fn name(self) -> &'static str {
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
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Handled<T> {
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

fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Handled<Vec<(String, String)>> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|e| MfaApiError::bad(format!("Invalid query: {}", e.body_text())))
}

fn path_ids<T: DeserializeOwned + Send>(path: Result<Path<T>, PathRejection>) -> Handled<T> {
    path.map(|Path(ids)| ids).map_err(|e| {
        MfaApiError::new(
            StatusCode::NOT_FOUND,
            "404",
            format!("Not Found: {}", e.body_text()),
        )
    })
}

async fn run<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, MfaError> + Send + 'static,
) -> Handled<T> {
    Ok(state
        .db
        .run(move |c| Ok(f(c)))
        .await
        .map_err(MfaError::from)??)
}

// ---------------------------------------------------------------------------------------------
// Applications

/// Lists the applications matching the filters.
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/applications",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(ApplicationFilters),
    responses(
        (status = 200, description = "The applications", body = Vec<ApplicationView>),
        (status = 400, description = "Invalid filter (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator, Monitor or MFA Service", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn list_applications(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Handled<Json<Vec<ApplicationView>>> {
    reader(caller)?;
    let filters = query_pairs(query)?;
    let apps = run(&state, move |c| service::list_applications(c, &filters)).await?;
    Ok(Json(apps.into_iter().map(ApplicationView::from).collect()))
}

/// Creates an application (version 1).
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/applications",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    request_body = NewApplication,
    responses(
        (status = 200, description = "Created; its id", body = CreatedResource),
        (status = 400, description = "Invalid request (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator", body = MfaErrorBody),
        (status = 409, description = "The name is taken (1011)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn create_application(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Handled<Json<CreatedResource>> {
    let caller = administrator(caller)?;
    let new: NewApplication = parse_body(&body)?;
    let fields = ApplicationFields {
        name: Some(new.name),
        description: new.description,
        auth_code_length: new.auth_code_length,
        auth_token_type: new.auth_token_type.map(|t| t.name().to_owned()),
        auth_token_validity_duration: new.auth_token_validity_duration,
        auth_token_prefix: new.auth_token_prefix,
        auth_token_delivery_methods: new.auth_token_delivery_methods.map(|d| d.name().to_owned()),
        associate_template: new.associate_template,
        display_name: new.display_name,
        login_template: new.login_template,
        message_from: new.message_from,
    };
    let now = crate::state::unix_now();
    let app = run(&state, move |c| service::create_application(c, fields, now)).await?;
    tracing::info!(
        caller = %caller.user,
        id = %app.id,
        name = %app.name,
        "MFA application created"
    );
    Ok(Json(CreatedResource { id: app.id }))
}

/// Returns the application (404 also when it does not match the filters given).
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/applications/{Application_ID}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ApplicationFilters
    ),
    responses(
        (status = 200, description = "The application", body = ApplicationView),
        (status = 400, description = "Invalid filter (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator, Monitor or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application (or it does not match the filters)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn get_application(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Handled<Json<ApplicationView>> {
    reader(caller)?;
    let id = path_ids(id)?;
    let filters = query_pairs(query)?;
    let app = run(&state, move |c| {
        let filter = service::ApplicationFilter::parse(&filters)?;
        let app = service::get_application(c, &id)?;
        if filter.matches(&app) {
            Ok(app)
        } else {
            Err(MfaError::NotFound(format!(
                "Application {id:?} does not match the filters."
            )))
        }
    })
    .await?;
    Ok(Json(app.into()))
}

/// Changes the fields given when `version_number` is the current version.
#[utoipa::path(
    put,
    path = "/api/mfa/1.0/applications/{Application_ID}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(("Application_ID" = String, Path, description = "Id of the application", max_length = 128)),
    request_body = ApplicationUpdate,
    responses(
        (status = 200, description = "The application as changed (version one higher)", body = ApplicationView),
        (status = 400, description = "Invalid request (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator", body = MfaErrorBody),
        (status = 404, description = "No such application", body = MfaErrorBody),
        (status = 409, description = "Stale version_number (1001) or name taken (1011)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn update_application(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Handled<Json<ApplicationView>> {
    let caller = administrator(caller)?;
    let id = path_ids(id)?;
    let update: ApplicationUpdate = parse_body(&body)?;
    if let Some(given) = &update.id {
        if *given != id {
            return Err(MfaApiError::bad(format!(
                "id {given:?} differs from the id in the path; ids cannot change."
            )));
        }
    }
    let fields = ApplicationFields {
        name: update.name,
        description: update.description,
        auth_code_length: update.auth_code_length,
        auth_token_type: update.auth_token_type.map(|t| t.name().to_owned()),
        auth_token_validity_duration: update.auth_token_validity_duration,
        auth_token_prefix: update.auth_token_prefix,
        auth_token_delivery_methods: update
            .auth_token_delivery_methods
            .map(|d| d.name().to_owned()),
        associate_template: update.associate_template,
        display_name: update.display_name,
        login_template: update.login_template,
        message_from: update.message_from,
    };
    let version = update.version_number;
    let now = crate::state::unix_now();
    let app = run(&state, move |c| {
        service::update_application(c, &id, fields, version, now)
    })
    .await?;
    tracing::info!(
        caller = %caller.user,
        id = %app.id,
        version = app.version_number,
        "MFA application updated"
    );
    Ok(Json(app.into()))
}

/// Deletes the application with its users and their codes.
#[utoipa::path(
    delete,
    path = "/api/mfa/1.0/applications/{Application_ID}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(("Application_ID" = String, Path, description = "Id of the application", max_length = 128)),
    responses(
        (status = 200, description = "Deleted", body = Empty),
        (status = 400, description = "Over-long id (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator", body = MfaErrorBody),
        (status = 404, description = "No such application", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn delete_application(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Handled<Json<Empty>> {
    let caller = administrator(caller)?;
    let id = path_ids(id)?;
    let logged = id.clone();
    run(&state, move |c| service::delete_application(c, &id)).await?;
    tracing::info!(caller = %caller.user, id = %logged, "MFA application deleted");
    Ok(Json(Empty {}))
}

// ---------------------------------------------------------------------------------------------
// Users

/// Lists the application's users matching the filters.
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/applications/{Application_ID}/users",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        UserFilters
    ),
    responses(
        (status = 200, description = "The users", body = Vec<UserView>),
        (status = 400, description = "Invalid filter (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator, Monitor or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn list_users(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Handled<Json<Vec<UserView>>> {
    reader(caller)?;
    let id = path_ids(id)?;
    let filters = query_pairs(query)?;
    let users = run(&state, move |c| service::list_users(c, &id, &filters)).await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// Returns the user (404 also when it does not match the filters given).
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user", max_length = 128),
        UserFilters
    ),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 400, description = "Invalid filter (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator, Monitor or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application or user", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn get_user(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Handled<Json<UserView>> {
    reader(caller)?;
    let (app, user) = path_ids(ids)?;
    let filters = query_pairs(query)?;
    let user = run(&state, move |c| {
        let filter = service::UserFilter::parse(&filters)?;
        let user = service::get_user(c, &app, &user)?;
        if filter.matches(&user) {
            Ok(user)
        } else {
            Err(MfaError::NotFound(format!(
                "User {:?} does not match the filters.",
                user.id
            )))
        }
    })
    .await?;
    Ok(Json(user.into()))
}

/// Deletes the user with their outstanding code.
#[utoipa::path(
    delete,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user", max_length = 128),
    ),
    responses(
        (status = 200, description = "Deleted", body = Empty),
        (status = 400, description = "Over-long id (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application or user", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn delete_user(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Handled<Json<Empty>> {
    let caller = service_caller(caller)?;
    let (app, user) = path_ids(ids)?;
    may_change_factor(&caller, &state, &app, &user).await?;
    let logged = user.clone();
    run(&state, move |c| service::delete_user(c, &app, &user)).await?;
    tracing::info!(caller = %caller.user, user = %logged, "MFA user deleted");
    Ok(Json(Empty {}))
}

/// Associates an address with the user (creating the user) and sends a validation code to
/// it: status VALIDATION PENDING. When the code cannot be delivered the answer is 503 and
/// nothing changes.
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}/associate",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user (chosen by the caller)", max_length = 128),
    ),
    request_body = AssociateRequest,
    responses(
        (status = 200, description = "Code sent; the user's id", body = CreatedResource),
        (status = 400, description = "Invalid request or address (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator or MFA Service; or an MFA Service caller and a gateway user who holds (or may hold) Administrator", body = MfaErrorBody),
        (status = 404, description = "No such application", body = MfaErrorBody),
        (status = 412, description = "No sender is configured for the application's delivery method (412); nothing changed", body = MfaErrorBody),
        (status = 429, description = "User locked after wrong codes, or too many codes sent (2004)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
        (status = 503, description = "The code could not be delivered; nothing changed", body = MfaErrorBody),
    )
)]
pub async fn associate(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Handled<Json<CreatedResource>> {
    let caller = service_caller(caller)?;
    let (app, user) = path_ids(ids)?;
    may_change_factor(&caller, &state, &app, &user).await?;
    let request: AssociateRequest = parse_body(&body)?;
    let config = state.store.current().config.mfa_delivery.clone();
    service::associate(
        &state.db,
        &config,
        &app,
        &user,
        &request.address,
        request.display_name,
    )
    .await?;
    Ok(Json(CreatedResource { id: user }))
}

/// Removes the user's address: status INITIAL, the outstanding code dropped.
#[utoipa::path(
    delete,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}/associate",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user", max_length = 128),
    ),
    responses(
        (status = 200, description = "Association removed", body = Empty),
        (status = 400, description = "Over-long id (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application or user", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn dissociate(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Handled<Json<Empty>> {
    let caller = service_caller(caller)?;
    let (app, user) = path_ids(ids)?;
    may_change_factor(&caller, &state, &app, &user).await?;
    let now = crate::state::unix_now();
    run(&state, move |c| service::dissociate(c, &app, &user, now)).await?;
    Ok(Json(Empty {}))
}

/// Checks the user's outstanding code (association or login). Right: the code is used up, and
/// an association makes the address VALIDATED.
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}/validate",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user", max_length = 128),
    ),
    request_body = ValidateRequest,
    responses(
        (status = 200, description = "The code was right; the user's id", body = CreatedResource),
        (status = 400, description = "Invalid request (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application or user", body = MfaErrorBody),
        (status = 412, description = "Invalid code (2001) or expired code (2002)", body = MfaErrorBody),
        (status = 429, description = "User locked after wrong codes (2004)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn validate(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Handled<Json<CreatedResource>> {
    service_caller(caller)?;
    let (app, user) = path_ids(ids)?;
    let request: ValidateRequest = parse_body(&body)?;
    match service::validate(&state.db, &app, &user, &request.validation_code).await? {
        CodeCheck::Success(_) => Ok(Json(CreatedResource { id: user })),
        CodeCheck::Invalid => Err(MfaError::InvalidCode.into()),
        CodeCheck::Expired => Err(MfaError::Expired.into()),
        CodeCheck::Locked => Err(MfaError::TooMany(format!(
            "User sent too many requests: locked after {} wrong codes; try again later.",
            service::MAX_FAILURES
        ))
        .into()),
    }
}

/// Sends a login code to the user's validated address (409 with code 2003 when the address
/// is not validated; 503 when it cannot be delivered).
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}/login_start",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user", max_length = 128),
    ),
    request_body(content = Option<LoginStartRequest>, description = "Optional; an empty body is allowed"),
    responses(
        (status = 200, description = "Code sent; the user's id", body = CreatedResource),
        (status = 400, description = "Invalid request (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application or user", body = MfaErrorBody),
        (status = 409, description = "The user's address is not validated (2003)", body = MfaErrorBody),
        (status = 412, description = "No sender is configured for the application's delivery method (412); nothing changed", body = MfaErrorBody),
        (status = 429, description = "User locked after wrong codes, or too many codes sent (2004)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
        (status = 503, description = "The code could not be delivered; nothing changed", body = MfaErrorBody),
    )
)]
pub async fn login_start(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Handled<Json<CreatedResource>> {
    service_caller(caller)?;
    let (app, user) = path_ids(ids)?;
    let request: LoginStartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LoginStartRequest::default()
    } else {
        parse_body(&body)?
    };
    let config = state.store.current().config.mfa_delivery.clone();
    service::login_start(&state.db, &config, &app, &user, request.display_name).await?;
    Ok(Json(CreatedResource { id: user }))
}
