//! The two-step login: `POST /api/auth/1.0/login` answers `needTwoFactorAuth: true` with a
//! partial token when the MFA policy applies to the user; `POST /api/auth/1.0/login/mfa`
//! `{code}` with that token turns it into a full one. Without an activated TOTP device, a
//! user with a validated address in the `[mfa_delivery]` application is sent a login code at
//! the first step; when it cannot be sent, `failmode` decides (secure: 401
//! `MFA_DELIVERY_FAILED`; safe: a full token on the first factor alone).
//!
//! A partial token lives five minutes and opens only `login/mfa` and the caller's own device
//! pairing, activation and listing (pairing only while the user has no activated device:
//! first enrolment). Once the policy applies to a user, HTTP Basic with their password alone
//! is refused with a hint to use the two-step login. After `lockout_threshold` wrong codes the
//! user is locked out for a growing interval: 429 with `Retry-After` and
//! `error_info.reason = "LOCKOUT"`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::bearer_token;
use super::error::{ApiError, ErrorBody};
use super::login::{LoginResponse, UserInfo, rfc3339};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::login::dialogue::{Dialogue, Party};
use crate::login::{Attempt, Credential, Door};
use crate::mfa::Verdict;
use crate::mfa::delivery::Channel;

/// The application name of the REST login in `[mfa]` overrides.
pub use crate::login::API as APPLICATION;
/// Where the second step goes.
pub const SECOND_STEP: &str = "/api/auth/1.0/login/mfa";

/// The second-step route.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(login_mfa))
}

/// `POST /api/auth/1.0/login/mfa` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MfaCodeRequest {
    /// The second factor: a code from a paired authenticator app (or a delivered code).
    #[schema(min_length = 1, example = "123456")]
    pub code: String,
}

/// 401 for HTTP Basic by a user who owes a second factor.
pub fn basic_refused() -> ApiError {
    ApiError::invalid_credentials().with_info(json!({
        "reason": "MFA_REQUIRED",
        "hint": "A second factor is required for this user: log in with POST /api/auth/1.0/login, \
                 then POST /api/auth/1.0/login/mfa {\"code\"}, and call the API with the bearer \
                 token it returns.",
    }))
}

/// 401 for a partial token on a route it does not open.
pub fn partial_token_refused() -> ApiError {
    ApiError::invalid_credentials().with_info(json!({
        "reason": "MFA_REQUIRED",
        "hint": "This token is partial: finish the login with POST /api/auth/1.0/login/mfa {\"code\"}.",
    }))
}

/// `error_info.reason` when a login code could not be delivered and `failmode` is secure.
pub const DELIVERY_FAILED: &str = "MFA_DELIVERY_FAILED";

/// 401 MFA_DELIVERY_FAILED: the login owes a delivered code that could not be sent, and the
/// policy's `failmode` is `secure`.
pub fn delivery_failed() -> ApiError {
    ApiError::invalid_credentials().with_info(json!({
        "reason": DELIVERY_FAILED,
        "hint": "The one-time code could not be delivered (SMS gateway or SMTP relay down); \
                 try again later.",
    }))
}

/// 429 LOCKOUT with `Retry-After`.
pub fn lockout_response(retry_after: u64) -> Response {
    let mut error = ApiError::bad_request(format!(
        "Too many failed second factors: locked out for {retry_after} more seconds."
    ))
    .with_info(json!({ "reason": "LOCKOUT", "retry_after": retry_after }));
    error.status = StatusCode::TOO_MANY_REQUESTS;
    error.error_id = "LOCKOUT";
    let mut response = error.into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&retry_after.max(1).to_string()) {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, value);
    }
    response
}

/// The answer of `POST /api/auth/1.0/login` when the pipeline says a second factor is owed:
/// a partial token, and how a code was sent (`sent`) if one was.
pub fn partial(
    state: &AppState,
    user: &str,
    roles: &[String],
    method: &str,
    totp: bool,
    sent: Option<Channel>,
) -> Result<Response, ApiError> {
    let (token, expires) = state
        .sessions
        .create_partial(user, roles.to_vec(), method)
        .map_err(|e| e.into_api("token"))?;
    let delivered = sent.map_or("-", |channel| channel.as_str());
    tracing::info!(
        user,
        enrolled = totp,
        delivered,
        "login owes a second factor"
    );
    Ok(Json(LoginResponse {
        user: UserInfo {
            username: user.to_string(),
        },
        roles: roles.to_vec(),
        method: method.to_string(),
        server: None,
        token,
        expires: rfc3339(expires),
        need_two_factor_auth: true,
        code_sent_by: (delivered != "-").then(|| delivered.to_string()),
        challenge: None,
    })
    .into_response())
}

/// Reads `{code}`: 400 for a body that is not a JSON object, 422 for a missing or mistyped
/// code.
fn code_of(body: &[u8]) -> Result<String, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("JSON error: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request(
            "JSON error: the body must be an object",
        ));
    };
    let reason = match object.get("code") {
        Some(Value::String(code)) if !code.is_empty() => return Ok(code.clone()),
        Some(Value::String(_)) => "must not be empty",
        Some(_) => "must be a string",
        None => "is required",
    };
    let mut error = ApiError::invalid_fields(
        "Request validation error.",
        vec![("code".into(), reason.into())],
    );
    error.status = StatusCode::UNPROCESSABLE_ENTITY;
    error.error_id = "VALIDATION_ERROR";
    Err(error)
}

/// Second step of a login: the partial token from `POST /api/auth/1.0/login` and a code
/// from the user's authenticator app, or the code delivered by SMS or e-mail, give a full
/// token.
#[utoipa::path(
    post,
    path = "/api/auth/1.0/login/mfa",
    tag = "auth",
    security(("bearer" = [])),
    request_body = MfaCodeRequest,
    responses(
        (status = 200, description = "Second factor accepted: a full token", body = LoginResponse),
        (status = 400, description = "Malformed JSON, or the token is not a partial one", body = ErrorBody),
        (status = 401, description = "No partial token, or a wrong code (error_info.reason INVALID_CODE)", body = ErrorBody),
        (status = 422, description = "Missing or mistyped code", body = ErrorBody),
        (status = 429, description = "Locked out after too many wrong codes (error_info.reason LOCKOUT); Retry-After says for how long", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the lockout ends"))),
    )
)]
pub async fn login_mfa(
    State(state): State<Arc<AppState>>,
    peer: super::throttle::Peer,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = bearer_token(&parts).ok_or_else(ApiError::auth_required)?;
    if let Some(dialogue) = dialogue_of(&state, token) {
        let code = code_of(&body)?;
        return relay(&state, peer, &dialogue, &code).await;
    }
    let Some(session) = state.sessions.find_partial(token).await else {
        return Err(if state.sessions.find(token).await.is_some() {
            ApiError::bad_request("This token is not waiting for a second factor.")
        } else {
            ApiError::invalid_credentials()
        });
    };
    let code = code_of(&body)?;
    let live = state.store.current();
    let verdict = crate::login::check_code(
        &state.mfa,
        &live,
        &session.user,
        &code,
        None,
        std::time::Instant::now(),
    )
    .await
    .map_err(|e| ApiError::state("mfa verify", &e))?;
    match verdict {
        Verdict::Accepted { method } => {
            state.sessions.revoke(token);
            let lifetime = std::time::Duration::from_secs(u64::from(
                live.config.authentication.token_lifetime,
            ));
            let (full, expires) = state
                .sessions
                .create(
                    &session.user,
                    session.roles.clone(),
                    &session.method,
                    lifetime,
                )
                .map_err(|e| e.into_api("token"))?;
            tracing::info!(user = %session.user, factor = method, "second factor accepted");
            Ok(Json(LoginResponse {
                user: UserInfo {
                    username: session.user,
                },
                roles: session.roles,
                method: session.method,
                server: None,
                token: full,
                expires: rfc3339(expires),
                need_two_factor_auth: false,
                code_sent_by: None,
                challenge: None,
            })
            .into_response())
        }
        Verdict::Rejected { locked_for: None } => {
            tracing::info!(user = %session.user, "second factor rejected");
            Err(ApiError::invalid_credentials().with_info(json!({ "reason": "INVALID_CODE" })))
        }
        Verdict::Rejected {
            locked_for: Some(retry_after),
        }
        | Verdict::Locked { retry_after } => {
            tracing::warn!(user = %session.user, retry_after, "second factor locked out");
            Ok(lockout_response(retry_after))
        }
    }
}

/// The upstream dialogue whose handle `token` is, taken (single use).
fn dialogue_of(state: &AppState, token: &str) -> Option<Dialogue> {
    let handle = URL_SAFE_NO_PAD.decode(token).ok()?;
    if handle.len() != crate::login::dialogue::HANDLE_LEN {
        return None;
    }
    state.dialogues.take(&handle, Party::Rest)
}

/// Passes `code`, the answer to an upstream challenge, through the login pipeline to the
/// server that asked, and answers like a login.
async fn relay(
    state: &AppState,
    peer: super::throttle::Peer,
    dialogue: &Dialogue,
    code: &str,
) -> Result<Response, ApiError> {
    let live = state.store.current();
    let attempt = Attempt {
        user: &dialogue.user,
        credential: Credential::Relay {
            dialogue,
            response: code.as_bytes(),
        },
        origin: peer.origin(&live.config.throttle),
        door: Door::Rest,
    };
    let login = crate::login::login(state.pipeline(), &live, attempt)
        .await
        .map_err(super::throttle::locked)?;
    super::login::answer(state, &live, dialogue.user.clone(), login)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_errors() {
        assert_eq!(code_of(br#"{"code":"123456"}"#).unwrap(), "123456");
        assert_eq!(code_of(b"[1]").unwrap_err().status, StatusCode::BAD_REQUEST);
        for body in [&br#"{}"#[..], br#"{"code":1}"#, br#"{"code":""}"#] {
            assert_eq!(
                code_of(body).unwrap_err().status,
                StatusCode::UNPROCESSABLE_ENTITY
            );
        }
    }

    #[tokio::test]
    async fn lockout_answer_has_retry_after() {
        let response = lockout_response(120);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "120");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["error_id"], "LOCKOUT");
        assert_eq!(value["error_info"]["retry_after"], 120);
    }
}
