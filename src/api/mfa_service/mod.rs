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

mod applications;
mod users;
mod views;

#[allow(clippy::wildcard_imports)]
pub use applications::*;
#[allow(clippy::wildcard_imports)]
pub use users::*;
#[allow(clippy::wildcard_imports)]
pub use views::*;
