//! Paired TOTP devices (`mobile-mfa-devices-api`):
//!
//! - `GET  /api/mfa/1.0/users/current/devices`: the caller's devices;
//! - `POST /api/mfa/1.0/users/current/devices` `{name, os}`: pairs a pending device and
//!   returns `{id, otpauth_uri, qr_png}` (the secret is shown this once);
//! - `POST /api/mfa/1.0/users/current/devices/{device_id}/activate` `{code}`: activates it
//!   with its first valid code;
//! - `DELETE /api/mfa/1.0/users/current/devices/{device_id}`: unpairs one of the caller's;
//! - `GET /api/mfa/1.0/users/{user_id}/devices` (Administrator or Monitor) and
//!   `DELETE /api/mfa/1.0/users/{user_id}/devices/{device_id}` (Administrator): any user's.
//!   `user_id` is the user name (portcullis users have no UUIDs).
//!
//! - `POST /api/mfa/1.0/users/{user_id}/devices` (Administrator): pairs a device for a user,
//!   active at once (the way to a first device under `enrollment = "deny"`).
//!
//! Devices belong to the canonical user ([`UserKey`]), so `ALICE` and `alice` share them.
//! Any authenticated user manages their own devices. A partial token (first step of a
//! two-step login) may list them; it may pair and activate one only under
//! `[mfa.policy] enrollment = "allow"` and while the user has no second factor of any kind
//! (no activated device, no validated address for delivered codes), so a user who owes a
//! second factor can enrol their first authenticator but a password alone never adds a device
//! beside an existing factor. Unpairing needs a full token. Errors use the reference's body
//! `{error_code, error_message, property, details}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_config::{Enrollment, UserKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, bearer_token};
use super::error::ApiError;
use super::login::rfc3339;
use crate::mfa::devices::{self, Activation, Device, PairError};
use crate::mfa::{qr, totp};
use crate::state::{StateError, unix_now};

/// Longest device name.
pub const MAX_NAME: usize = 64;
/// Longest operating system name.
pub const MAX_OS: usize = 32;

/// The device routes.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_current, pair_current))
        .routes(routes!(activate_current))
        .routes(routes!(unpair_current))
        .routes(routes!(list_user, pair_user))
        .routes(routes!(unpair_user))
}

/// The reference's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Anything else.
    GeneralError,
    /// A malformed request.
    BadRequest,
    /// Not allowed for this caller.
    PermissionDenied,
    /// Data that cannot be used.
    InvalidRequestData,
    /// A required value is missing.
    RequiredValueMissing,
    /// A value is too long, short, large or small.
    ValueOutOfBounds,
    /// A value has the wrong JSON type.
    ValueIncorrectType,
    /// A value has the wrong format.
    ValueIncorrectFormat,
    /// A value exists already.
    ValueDuplicate,
    /// The configuration forbids it.
    ConfigurationError,
    /// A limit was reached.
    OutOfResources,
    /// Too busy.
    MaxLoad,
    /// Too many connections.
    TooManyConnections,
    /// The state database failed.
    DatabaseError,
    /// A cache failed.
    CacheError,
    /// Another service failed.
    IntraServiceCommunicationError,
    /// The feature is off.
    FeatureDisabled,
    /// The session cannot do this.
    UnsupportedSessionType,
}

/// The reference's error body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceErrorBody {
    /// Standard error code denoting the error type.
    pub error_code: ErrorCode,
    /// Textual, human readable error message.
    pub error_message: String,
    /// The property name causing an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Errors describing this one in more detail.
    #[schema(value_type = Vec<Object>)]
    pub details: Vec<Value>,
}

/// An error answer of the device routes.
#[derive(Debug, Clone)]
pub struct DeviceError {
    status: StatusCode,
    body: DeviceErrorBody,
}

impl DeviceError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> DeviceError {
        DeviceError {
            status,
            body: DeviceErrorBody {
                error_code: code,
                error_message: message.into(),
                property: None,
                details: Vec::new(),
            },
        }
    }

    fn field(code: ErrorCode, property: &str, message: impl Into<String>) -> DeviceError {
        let mut error = DeviceError::new(StatusCode::BAD_REQUEST, code, message);
        error.body.property = Some(property.to_string());
        error
    }

    fn not_found() -> DeviceError {
        DeviceError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::GeneralError,
            "No such device.",
        )
    }

    fn state(context: &str, e: StateError) -> DeviceError {
        tracing::error!(context, error = %e, "state database");
        if e.is_unavailable() {
            return DeviceError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::DatabaseError,
                "The state database does not answer; try again later.",
            );
        }
        DeviceError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::DatabaseError,
            "Internal error.",
        )
    }
}

impl From<ApiError> for DeviceError {
    fn from(error: ApiError) -> Self {
        let code = match error.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorCode::PermissionDenied,
            StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
            StatusCode::NOT_FOUND => ErrorCode::GeneralError,
            _ => ErrorCode::GeneralError,
        };
        let mut converted = DeviceError::new(error.status, code, error.error_text);
        if let Some(info) = error.error_info {
            converted.body.details.push(info);
        }
        converted
    }
}

impl IntoResponse for DeviceError {
    fn into_response(self) -> Response {
        super::error::json_response(self.status, self.body)
    }
}

/// 403 UNSUPPORTED_SESSION_TYPE (reason MFA_REQUIRED): a partial token may not enrol.
fn enrolment_refused(message: &str) -> DeviceError {
    let mut error = DeviceError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::UnsupportedSessionType,
        message,
    );
    error.body.details.push(json!({ "reason": "MFA_REQUIRED" }));
    error
}

/// The caller of a device route: HTTP Basic, a full token, or a partial one.
#[derive(Debug, Clone)]
pub struct DeviceCaller {
    /// The authenticated caller.
    pub caller: Caller,
    /// Whether they hold only a partial token (second factor still owed).
    pub partial: bool,
}

impl FromRequestParts<Arc<AppState>> for DeviceCaller {
    type Rejection = DeviceError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<DeviceCaller, DeviceError> {
        let partial = match bearer_token(parts) {
            Some(token) => state.sessions.find_partial(token).await,
            None => None,
        };
        if let Some(session) = partial {
            return Ok(DeviceCaller {
                caller: Caller {
                    user: session.user,
                    key: session.key,
                    roles: session.roles,
                },
                partial: true,
            });
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(DeviceCaller {
            caller,
            partial: false,
        })
    }
}

impl DeviceCaller {
    /// A partial token proves only the password, so it opens pairing and activation only
    /// when `[mfa.policy] enrollment = "allow"` and the user has no second factor of any kind
    /// (no activated device, no validated address for delivered codes): otherwise an attacker
    /// holding the password could enrol their own device and pass the second factor.
    async fn may_enrol(&self, state: &AppState) -> Result<(), DeviceError> {
        if !self.partial {
            return Ok(());
        }
        let live = state.store.current();
        let policy = live.config.mfa.policy_for(super::mfa_login::APPLICATION);
        if policy.enrollment == Enrollment::Deny {
            return Err(enrolment_refused(
                "Devices are not paired with a partial token here (enrollment = deny): pair one \
                 with a full session, or ask an administrator to pair it for you.",
            ));
        }
        let enrolled = state
            .mfa
            .has_second_factor(&self.caller.key, &live.config.mfa_delivery)
            .await
            .map_err(|e| DeviceError::state("has_second_factor", e))?;
        if enrolled {
            return Err(enrolment_refused(
                "A partial token may pair a device only while none is active and no address \
                 receives codes: finish the login with POST /api/auth/1.0/login/mfa first.",
            ));
        }
        Ok(())
    }

    /// Routes a partial token never opens.
    fn full(&self) -> Result<(), DeviceError> {
        if self.partial {
            Err(super::mfa_login::partial_token_refused().into())
        } else {
            Ok(())
        }
    }
}

/// A paired device as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceView {
    /// Device id.
    #[schema(example = "mobile-sha256-sdHe7CJqHwCY4WePe-BgYNGF8sd6fe8ier2Buemz4xM=")]
    pub id: String,
    /// Operating system, as given at pairing.
    #[schema(example = "iOS")]
    pub os: String,
    /// Name, as given at pairing.
    #[schema(example = "iPhone 6")]
    pub name: String,
    /// When its first code was accepted; null while pending.
    #[schema(format = DateTime)]
    pub activated: Option<String>,
    /// When it last changed.
    #[schema(format = DateTime)]
    pub updated: String,
    /// When a code from it was last accepted; null if never.
    #[serde(rename = "lastUsed")]
    #[schema(format = DateTime)]
    pub last_used: Option<String>,
}

fn time(unix: i64) -> String {
    rfc3339(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0)),
    )
}

impl From<&Device> for DeviceView {
    fn from(device: &Device) -> Self {
        DeviceView {
            id: device.id.clone(),
            os: device.os.clone(),
            name: device.name.clone(),
            activated: device.activated.map(time),
            updated: time(device.updated),
            last_used: device.last_used.map(time),
        }
    }
}

/// A list of devices.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceList {
    /// Device count.
    pub count: usize,
    /// The devices, oldest first.
    pub items: Vec<DeviceView>,
}

/// `POST .../users/current/devices` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    /// A name for the device, 1..=64 characters.
    #[schema(min_length = 1, max_length = 64, example = "iPhone 6")]
    pub name: String,
    /// Its operating system, 1..=32 characters.
    #[schema(min_length = 1, max_length = 32, example = "iOS")]
    pub os: String,
}

/// The pairing answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairResponse {
    /// The pending device's id.
    pub id: String,
    /// `otpauth://totp/portcullis:{user}?secret=...&issuer=portcullis&algorithm=SHA1&digits=6&period=30`.
    pub otpauth_uri: String,
    /// The URI as a QR code: a base64 PNG.
    #[schema(format = Byte)]
    pub qr_png: String,
}

/// `POST .../activate` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The code the authenticator app shows now.
    #[schema(min_length = 1, max_length = 16, example = "123456")]
    pub code: String,
}

/// Reads a JSON object, naming the property that is missing, mistyped or out of bounds.
fn object(body: &[u8], fields: &[(&str, usize)]) -> Result<Vec<String>, DeviceError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        DeviceError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("JSON error: {e}"),
        )
    })?;
    let Some(members) = value.as_object() else {
        return Err(DeviceError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "JSON error: the body must be an object",
        ));
    };
    if let Some(unknown) = members.keys().find(|k| !fields.iter().any(|(f, _)| f == k)) {
        return Err(DeviceError::field(
            ErrorCode::InvalidRequestData,
            unknown,
            format!("unknown property {unknown}"),
        ));
    }
    fields
        .iter()
        .map(|(name, max)| match members.get(*name) {
            None => Err(DeviceError::field(
                ErrorCode::RequiredValueMissing,
                name,
                format!("{name} is required"),
            )),
            Some(Value::String(s)) if s.is_empty() || s.chars().count() > *max => {
                Err(DeviceError::field(
                    ErrorCode::ValueOutOfBounds,
                    name,
                    format!("{name} must be 1..={max} characters"),
                ))
            }
            Some(Value::String(s)) if s.chars().any(char::is_control) => Err(DeviceError::field(
                ErrorCode::ValueIncorrectFormat,
                name,
                format!("{name} must not contain control characters"),
            )),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(DeviceError::field(
                ErrorCode::ValueIncorrectType,
                name,
                format!("{name} must be a string"),
            )),
        })
        .collect()
}

fn device_id(id: Result<Path<String>, PathRejection>) -> Result<String, DeviceError> {
    id.map(|Path(id)| id).map_err(|_| DeviceError::not_found())
}

async fn list_of(state: &AppState, user: UserKey) -> Result<DeviceList, DeviceError> {
    let devices = state
        .db
        .mfa(move |tx| devices::list(tx, &user, true))
        .await
        .map_err(|e| DeviceError::state("list devices", e))?;
    Ok(DeviceList {
        count: devices.len(),
        items: devices.iter().map(DeviceView::from).collect(),
    })
}

async fn unpair(state: &AppState, user: UserKey, id: String) -> Result<Response, DeviceError> {
    let (who, which) = (user.clone(), id.clone());
    let removed = state
        .db
        .mfa(move |tx| devices::unpair(tx, &who, &which))
        .await
        .map_err(|e| DeviceError::state("unpair", e))?;
    if !removed {
        return Err(DeviceError::not_found());
    }
    tracing::info!(user = %user, device = id, "MFA device unpaired");
    Ok(StatusCode::OK.into_response())
}

/// Returns a list of paired devices for the current user.
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/users/current/devices",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The caller's devices (pending ones with activated null)", body = DeviceList),
        (status = 401, description = "Unauthorized request", body = DeviceErrorBody),
        (status = 500, description = "Internal server error", body = DeviceErrorBody),
    )
)]
pub async fn list_current(
    caller: DeviceCaller,
    State(state): State<Arc<AppState>>,
) -> Result<Json<DeviceList>, DeviceError> {
    Ok(Json(list_of(&state, caller.caller.key).await?))
}

/// Pairs a new TOTP device for the current user: pending until activated with its first
/// code. The secret is in the answer only.
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/users/current/devices",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    request_body = PairRequest,
    responses(
        (status = 201, description = "Pending device: scan the QR code or enter the URI", body = PairResponse),
        (status = 400, description = "Bad request (property names the field), or too many devices (OUT_OF_RESOURCES)", body = DeviceErrorBody),
        (status = 401, description = "Unauthorized request", body = DeviceErrorBody),
        (status = 403, description = "A partial token of a user with an active device", body = DeviceErrorBody),
        (status = 500, description = "Internal server error", body = DeviceErrorBody),
    )
)]
pub async fn pair_current(
    caller: DeviceCaller,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, DeviceError> {
    caller.may_enrol(&state).await?;
    let user = caller.caller.user.clone();
    pair(&state, &user, caller.caller.key, &body, false).await
}

/// Pairs a device for `user` (`key` its canonical identity) from the `{name, os}` of `body`:
/// pending until activated with its first code, or `activated` at once (an administrator
/// pairing for a user, who is handed the secret).
async fn pair(
    state: &AppState,
    user: &str,
    key: UserKey,
    body: &[u8],
    activated: bool,
) -> Result<Response, DeviceError> {
    let values = object(body, &[("name", MAX_NAME), ("os", MAX_OS)])?;
    let [name, os] = <[String; 2]>::try_from(values).map_err(|_| DeviceError::not_found())?;
    let seal = state.mfa.key().clone();
    let paired = state
        .db
        .mfa(move |tx| devices::pair(tx, &seal, &key, &name, &os, activated, unix_now()))
        .await;
    let (device, secret) = match paired {
        Ok(paired) => paired,
        Err(PairError::TooMany) => {
            return Err(DeviceError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::OutOfResources,
                format!(
                    "A user may have at most {} devices: unpair one first.",
                    devices::MAX_DEVICES_PER_USER
                ),
            ));
        }
        Err(PairError::State(e)) => return Err(DeviceError::state("pair", e)),
    };
    let uri = totp::otpauth_uri(user, &secret);
    let png = qr::png(&uri).map_err(|e| {
        tracing::error!(error = %e, "QR code");
        DeviceError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::GeneralError,
            "Internal error.",
        )
    })?;
    tracing::info!(user, device = %device.id, activated, "MFA device paired");
    Ok((
        StatusCode::CREATED,
        Json(PairResponse {
            id: device.id,
            otpauth_uri: uri,
            qr_png: STANDARD.encode(png),
        }),
    )
        .into_response())
}

/// Activates one of the current user's pending devices with the code it shows.
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/users/current/devices/{device_id}/activate",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(("device_id" = String, Path, description = "Device id")),
    request_body = ActivateRequest,
    responses(
        (status = 200, description = "Activated", body = DeviceView),
        (status = 400, description = "Bad request; a wrong code is INVALID_REQUEST_DATA on property code; an active device is VALUE_DUPLICATE", body = DeviceErrorBody),
        (status = 401, description = "Unauthorized request", body = DeviceErrorBody),
        (status = 403, description = "A partial token of a user with an active device", body = DeviceErrorBody),
        (status = 404, description = "No such device", body = DeviceErrorBody),
        (status = 500, description = "Internal server error", body = DeviceErrorBody),
    )
)]
pub async fn activate_current(
    caller: DeviceCaller,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<DeviceView>, DeviceError> {
    caller.may_enrol(&state).await?;
    let id = device_id(id)?;
    let values = object(&body, &[("code", 16)])?;
    let code = values.into_iter().next().unwrap_or_default();
    let user = caller.caller.key.clone();
    let key = state.mfa.key().clone();
    let outcome = state
        .db
        .mfa(move |tx| devices::activate(tx, &key, &user, &id, code.trim(), unix_now()))
        .await
        .map_err(|e| DeviceError::state("activate", e))?;
    match outcome {
        Activation::Activated(device) => {
            tracing::info!(user = %caller.caller.user, device = %device.id, "MFA device activated");
            Ok(Json(DeviceView::from(&device)))
        }
        Activation::NotFound => Err(DeviceError::not_found()),
        Activation::AlreadyActive => Err(DeviceError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::ValueDuplicate,
            "The device is active already.",
        )),
        Activation::WrongCode => Err(DeviceError::field(
            ErrorCode::InvalidRequestData,
            "code",
            "The code is not the device's current one.",
        )),
    }
}

/// Unpairs a device from the current user's device list.
#[utoipa::path(
    delete,
    path = "/api/mfa/1.0/users/current/devices/{device_id}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(("device_id" = String, Path, description = "Device id")),
    responses(
        (status = 200, description = "Unpaired"),
        (status = 401, description = "Unauthorized request (a partial token too)", body = DeviceErrorBody),
        (status = 404, description = "No such device", body = DeviceErrorBody),
        (status = 500, description = "Internal server error", body = DeviceErrorBody),
    )
)]
pub async fn unpair_current(
    caller: DeviceCaller,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, DeviceError> {
    caller.full()?;
    let id = device_id(id)?;
    unpair(&state, caller.caller.key, id).await
}

/// Returns a list of paired devices for a user.
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/users/{user_id}/devices",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(("user_id" = String, Path, description = "User name")),
    responses(
        (status = 200, description = "The user's devices (none for an unknown user)", body = DeviceList),
        (status = 401, description = "Unauthorized request", body = DeviceErrorBody),
        (status = 403, description = "Caller is neither Administrator nor Monitor", body = DeviceErrorBody),
        (status = 500, description = "Internal server error", body = DeviceErrorBody),
    )
)]
pub async fn list_user(
    caller: DeviceCaller,
    State(state): State<Arc<AppState>>,
    user: Result<Path<String>, PathRejection>,
) -> Result<Json<DeviceList>, DeviceError> {
    caller.full()?;
    caller.caller.require_reader()?;
    let user = device_id(user)?;
    Ok(Json(list_of(&state, UserKey::of(&user)).await?))
}

/// Pairs a TOTP device for a user, active at once: the administrator hands the QR code or
/// URI to the user. This is how a user gets a first device when
/// `[mfa.policy] enrollment = "deny"`.
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/users/{user_id}/devices",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(("user_id" = String, Path, description = "User name")),
    request_body = PairRequest,
    responses(
        (status = 201, description = "Active device: hand the QR code or the URI to the user", body = PairResponse),
        (status = 400, description = "Bad request (property names the field), or too many devices (OUT_OF_RESOURCES)", body = DeviceErrorBody),
        (status = 401, description = "Unauthorized request", body = DeviceErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = DeviceErrorBody),
        (status = 500, description = "Internal server error", body = DeviceErrorBody),
    )
)]
pub async fn pair_user(
    caller: DeviceCaller,
    State(state): State<Arc<AppState>>,
    user: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, DeviceError> {
    caller.full()?;
    caller.caller.require_admin()?;
    let user = device_id(user)?;
    if user.trim().is_empty() || user.chars().any(char::is_control) {
        return Err(DeviceError::field(
            ErrorCode::ValueIncorrectFormat,
            "user_id",
            "user_id must be a user name",
        ));
    }
    let key = UserKey::of(&user);
    pair(&state, &user, key, &body, true).await
}

/// Unpairs a device from a user's device list.
#[utoipa::path(
    delete,
    path = "/api/mfa/1.0/users/{user_id}/devices/{device_id}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("user_id" = String, Path, description = "User name"),
        ("device_id" = String, Path, description = "Device id"),
    ),
    responses(
        (status = 200, description = "Unpaired"),
        (status = 401, description = "Unauthorized request", body = DeviceErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = DeviceErrorBody),
        (status = 404, description = "No such device", body = DeviceErrorBody),
        (status = 500, description = "Internal server error", body = DeviceErrorBody),
    )
)]
pub async fn unpair_user(
    caller: DeviceCaller,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, DeviceError> {
    caller.full()?;
    caller.caller.require_admin()?;
    let Ok(Path((user, id))) = ids else {
        return Err(DeviceError::not_found());
    };
    unpair(&state, UserKey::of(&user), id).await
}
