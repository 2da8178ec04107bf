//! `POST /api/auth/1.0/login`, `GET /api/auth/1.0/session`, `POST /api/auth/1.0/logout`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::bearer_token;
use super::error::{ApiError, ErrorBody};
use super::sessions::Session;
use crate::login::{Attempt, CodeRefusal, Credential, Door, Refusal, Settled};

/// The login, session and logout routes.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(session))
        .routes(routes!(logout))
}

/// `POST /api/auth/1.0/login` request body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// User name.
    #[schema(min_length = 1)]
    pub username: String,
    /// Password.
    #[schema(min_length = 1)]
    pub password: String,
    /// Identifies the client device; accepted and not used yet.
    #[serde(rename = "deviceId")]
    #[schema(nullable = false)]
    pub device_id: Option<String>,
}

/// The logged-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfo {
    /// User name.
    pub username: String,
}

/// `POST /api/auth/1.0/login` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Who logged in.
    pub user: UserInfo,
    /// Their roles.
    pub roles: Vec<String>,
    /// The method that accepted them: `Local`, `RADIUS` or `TACACS+`.
    pub method: String,
    /// The server that accepted them (`address:port`), for remote methods.
    pub server: Option<String>,
    /// Bearer token for later calls; a partial token (MFA calls only, five minutes) when
    /// `needTwoFactorAuth` is true.
    pub token: String,
    /// When the token expires (RFC 3339, UTC).
    pub expires: String,
    /// Whether a second factor is still owed: then `token` is partial and
    /// `POST /api/auth/1.0/login/mfa` `{code}` turns it into a full one.
    #[serde(rename = "needTwoFactorAuth")]
    pub need_two_factor_auth: bool,
    /// With `needTwoFactorAuth`: how a one-time code was just sent (`SMS` or `EMAIL`);
    /// absent when the code comes from an authenticator app.
    #[serde(rename = "codeSentBy", skip_serializing_if = "Option::is_none")]
    pub code_sent_by: Option<String>,
    /// With `needTwoFactorAuth`: an upstream RADIUS server asks for another step (a token
    /// code, a new PIN, a push approval). Show `message` and send the answer as the `code`
    /// of `POST /api/auth/1.0/login/mfa` with this answer's `token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<ChallengePrompt>,
}

/// What an upstream server asks of the user.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengePrompt {
    /// The server's prompt (its Reply-Messages, one per line).
    pub message: String,
    /// Whether the answer may be shown as it is typed; false for a secret.
    pub echo: bool,
}

/// `GET /api/auth/1.0/session` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// Whose token it is.
    pub user: UserInfo,
    /// Their roles.
    pub roles: Vec<String>,
    /// The method that accepted them.
    pub method: String,
    /// When the token expires (RFC 3339, UTC).
    pub expires: String,
}

/// Why a login failed, as the 401 body's `error_info.reason` says it. None of them tells
/// whether the user exists.
fn failure(reason: &'static str) -> ApiError {
    ApiError::invalid_credentials().with_info(json!({ "reason": reason }))
}

/// Reads `{username, password, deviceId?}`: 400 for a body that is not a JSON object, 422
/// naming each missing or mistyped field.
fn credentials(body: &[u8]) -> Result<(String, String), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("JSON error: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request(
            "JSON error: the body must be an object",
        ));
    };
    let mut errors = Vec::new();
    let mut field = |name: &str| match object.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.push((name.to_string(), "must not be empty".to_string()));
            None
        }
        Some(_) => {
            errors.push((name.to_string(), "must be a string".to_string()));
            None
        }
        None => {
            errors.push((name.to_string(), "is required".to_string()));
            None
        }
    };
    let username = field("username");
    let password = field("password");
    if let Some(device) = object.get("deviceId") {
        if !device.is_string() {
            errors.push(("deviceId".into(), "must be a string".into()));
        }
    }
    match (username, password) {
        (Some(u), Some(p)) if errors.is_empty() => Ok((u, p)),
        _ => {
            let mut error = ApiError::invalid_fields("Request validation error.", errors);
            error.status = StatusCode::UNPROCESSABLE_ENTITY;
            error.error_id = "VALIDATION_ERROR";
            Err(error)
        }
    }
}

/// Log in: runs the authentication sequence and opens a session.
#[utoipa::path(
    post,
    path = "/api/auth/1.0/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Login failed; error_info.reason is INVALID_CREDENTIALS, NO_ROLE_MAPPED, SERVERS_UNAVAILABLE, or MFA_DELIVERY_FAILED (a one-time code could not be delivered and failmode is secure)", body = ErrorBody),
        (status = 406, description = "Accept header excludes JSON", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Missing or mistyped fields", body = ErrorBody),
        (status = 429, description = "Too many failures: the user or the source address is locked (error_info.reason LOCKED_OUT), or the user owes a second factor and is locked out of it (error_info.reason LOCKOUT)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the lockout ends"))),
    )
)]
pub async fn login(
    State(state): State<Arc<AppState>>,
    peer: super::throttle::Peer,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (username, password) = credentials(&body)?;
    let live = state.store.current();
    let attempt = Attempt {
        user: &username,
        credential: Credential::Password(password.as_bytes()),
        origin: peer.origin(&live.config.throttle),
        door: Door::Rest,
    };
    let login = crate::login::login(state.pipeline(), &live, attempt)
        .await
        .map_err(super::throttle::locked)?;
    answer(&state, &live, username, login)
}

/// The answer of a login (or of the answer to an upstream challenge), as the pipeline settled
/// it.
pub fn answer(
    state: &AppState,
    live: &crate::live::Live,
    username: String,
    login: crate::login::Login,
) -> Result<Response, ApiError> {
    let method = login.decision.method.map_or("", |m| m.name());
    let roles = login.roles();
    match login.settled {
        Settled::Accepted => {
            let lifetime = std::time::Duration::from_secs(u64::from(
                live.config.authentication.token_lifetime,
            ));
            let (token, expires) = state
                .sessions
                .create(&username, roles.to_vec(), method, lifetime)
                .map_err(|e| e.into_api("token"))?;
            Ok(Json(LoginResponse {
                user: UserInfo { username },
                roles: roles.to_vec(),
                method: method.to_string(),
                server: login.decision.server.as_deref().map(str::to_owned),
                token,
                expires: rfc3339(expires),
                need_two_factor_auth: false,
                code_sent_by: None,
                challenge: None,
            })
            .into_response())
        }
        Settled::Owed { totp, sent } => {
            super::mfa_login::partial(state, &username, roles, method, totp, sent)
        }
        Settled::Relayed(relayed) => {
            tracing::info!(user = %username, server = login.decision.server.as_deref(), "upstream challenge passed on");
            let lifetime = relayed
                .expires
                .saturating_duration_since(std::time::Instant::now());
            Ok(Json(LoginResponse {
                user: UserInfo { username },
                roles: Vec::new(),
                method: method.to_string(),
                server: login.decision.server.as_deref().map(str::to_owned),
                token: URL_SAFE_NO_PAD.encode(relayed.handle),
                expires: rfc3339(SystemTime::now() + lifetime),
                need_two_factor_auth: true,
                code_sent_by: None,
                challenge: Some(ChallengePrompt {
                    message: relayed.messages.join("\n"),
                    echo: relayed.echo,
                }),
            })
            .into_response())
        }
        Settled::Refused(Refusal::NoRoleMapped) => Err(failure("NO_ROLE_MAPPED")),
        Settled::Refused(Refusal::InvalidCredentials) => Err(failure("INVALID_CREDENTIALS")),
        Settled::Refused(Refusal::ServersUnavailable) => Err(failure("SERVERS_UNAVAILABLE")),
        Settled::Refused(Refusal::SecondFactor(CodeRefusal::LockedOut(retry_after))) => {
            Ok(super::mfa_login::lockout_response(retry_after))
        }
        Settled::Refused(Refusal::SecondFactor(CodeRefusal::DeliveryFailed)) => {
            Err(super::mfa_login::delivery_failed())
        }
        Settled::Refused(refusal) => Err(ApiError::internal("login", format!("{refusal:?}"))),
        Settled::Challenged(..) => Err(ApiError::internal("login", "a RADIUS challenge")),
    }
}

async fn session_of(state: &AppState, parts: &Parts) -> Result<(String, Session), ApiError> {
    let token = bearer_token(parts).ok_or_else(ApiError::auth_required)?;
    let session = state
        .sessions
        .find(token)
        .await
        .ok_or_else(ApiError::invalid_credentials)?;
    Ok((token.to_string(), session))
}

/// What a bearer token stands for, so other services can check it.
#[utoipa::path(
    get,
    path = "/api/auth/1.0/session",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's session", body = SessionResponse),
        (status = 401, description = "No token, or not a live one", body = ErrorBody),
    )
)]
pub async fn session(
    State(state): State<Arc<AppState>>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let (_, session) = session_of(&state, &parts).await?;
    Ok(Json(SessionResponse {
        user: UserInfo {
            username: session.user,
        },
        roles: session.roles,
        method: session.method,
        expires: rfc3339(session.expires),
    })
    .into_response())
}

/// Revokes the bearer token.
#[utoipa::path(
    post,
    path = "/api/auth/1.0/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Token revoked"),
        (status = 401, description = "No token, or not a live one", body = ErrorBody),
    )
)]
pub async fn logout(
    State(state): State<Arc<AppState>>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let (token, _) = session_of(&state, &parts).await?;
    state.sessions.revoke(&token);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `2026-11-23T22:28:20Z` for `time` (whole seconds, UTC).
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_559_300)),
            "2026-11-24T22:28:20Z"
        );
    }

    #[test]
    fn credential_errors_name_fields() {
        assert_eq!(
            credentials(br#"{"username":"a","password":"b"}"#).unwrap(),
            ("a".into(), "b".into())
        );
        let malformed = credentials(b"{not json").unwrap_err();
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        let missing = credentials(br#"{"username":"a","deviceId":7}"#).unwrap_err();
        assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
        let info = missing.error_info.unwrap();
        let fields: Vec<&str> = info["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["password", "deviceId"]);
    }
}
