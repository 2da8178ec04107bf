//! `/api/mgmt.throttle/1.0/...`: the failed-login counts of the brute-force throttle
//! ([`crate::throttle`]), listed for Administrators and Monitors, cleared by Administrators.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use crate::throttle;

/// The throttle routes.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_lockouts))
        .routes(routes!(clear_user))
        .routes(routes!(clear_source))
}

/// One counted user or source address.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockoutView {
    /// `user` or `source`.
    #[schema(pattern = "^(user|source)$")]
    pub kind: String,
    /// The user name (lowercased) or the source (an IPv4 address, an IPv6 /64, or
    /// `station-<sha256>` for a Calling-Station-Id that is not an address).
    pub name: String,
    /// For users: `loopback` for attempts from the appliance itself, `remote` for the rest.
    pub scope: Option<String>,
    /// Consecutive failed logins.
    #[schema(minimum = 0)]
    pub failures: i64,
    /// Seconds until the lock ends; 0 when not locked.
    #[schema(minimum = 0)]
    pub locked_for: i64,
    /// Whether the lock lasts until an administrator clears it.
    pub until_cleared: bool,
    /// When the last failure was counted, Unix seconds.
    pub last_failure: i64,
}

fn view(entry: throttle::Entry) -> LockoutView {
    let (kind, scope, name) = match entry.key.split_once(':') {
        Some(("user", rest)) => match rest.split_once(':') {
            Some((scope, name)) => ("user", Some(scope.to_string()), name.to_string()),
            None => ("user", None, rest.to_string()),
        },
        Some((_, rest)) => ("source", None, rest.to_string()),
        None => ("source", None, entry.key.clone()),
    };
    LockoutView {
        kind: kind.to_string(),
        name,
        scope,
        failures: entry.failures,
        locked_for: entry.locked_for,
        until_cleared: entry.until_cleared,
        last_failure: entry.last_failure,
    }
}

fn state_error(e: crate::state::StateError) -> ApiError {
    ApiError::internal("throttle", e)
}

/// Lists the users and source addresses with failed logins, locked or not.
#[utoipa::path(
    get,
    path = "/api/mgmt.throttle/1.0/lockouts",
    tag = "throttle",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Users and sources with failed logins", body = Vec<LockoutView>),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor", body = ErrorBody),
    )
)]
pub async fn list_lockouts(
    caller: Caller,
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<LockoutView>>, ApiError> {
    caller.require_reader()?;
    let entries = throttle::list(&state.db);
    Ok(Json(entries.into_iter().map(view).collect()))
}

/// Clears a user's failed logins and lock, from loopback and remote sources alike.
#[utoipa::path(
    delete,
    path = "/api/mgmt.throttle/1.0/users/{name}",
    tag = "throttle",
    security(("basic" = []), ("bearer" = [])),
    params(("name" = String, Path, description = "user name (case does not matter)")),
    responses(
        (status = 204, description = "Cleared (also when there was nothing to clear)"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = ErrorBody),
        (status = 404, description = "Undecodable name", body = ErrorBody),
    )
)]
pub async fn clear_user(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let Ok(Path(name)) = name else {
        return Err(ApiError::not_found("No such user."));
    };
    let removed = throttle::clear(&state.db, throttle::user_keys(&name).to_vec())
        .await
        .map_err(state_error)?;
    tracing::info!(
        user = name,
        by = caller.user,
        removed,
        "throttle: user cleared"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Clears a source address's failed logins and lock (an IPv6 address clears its /64).
#[utoipa::path(
    delete,
    path = "/api/mgmt.throttle/1.0/sources/{address}",
    tag = "throttle",
    security(("basic" = []), ("bearer" = [])),
    params(("address" = String, Path, description = "IPv4 or IPv6 address, or `station-<sha256>` as listed")),
    responses(
        (status = 204, description = "Cleared (also when there was nothing to clear)"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = ErrorBody),
        (status = 404, description = "Not an address nor a listed station", body = ErrorBody),
    )
)]
pub async fn clear_source(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    address: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let Ok(Path(address)) = address else {
        return Err(ApiError::not_found("No such source."));
    };
    let key = match address.parse::<IpAddr>() {
        Ok(ip) => Some(throttle::source_key(ip)),
        Err(_) => {
            let hex = address.strip_prefix("station-").unwrap_or_default();
            (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| format!("source:station-{}", hex.to_ascii_lowercase()))
        }
    };
    let Some(key) = key else {
        return Err(ApiError::not_found(
            "Not a throttled source: give an IP address or a listed station.",
        ));
    };
    let removed = throttle::clear(&state.db, vec![key])
        .await
        .map_err(state_error)?;
    tracing::info!(
        source = address,
        by = caller.user,
        removed,
        "throttle: source cleared"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
