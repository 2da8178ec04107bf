//! `POST /api/mfa/1.0/token/authenticate`: a one-time code check for a gateway user, in the
//! shape of the reference "token MFA authenticate" operation: `{token, userAlias,
//! deliveryType}` in, `{status}` out, and that operation's error bodies (`{detailCode,
//! trackingId, messages}` for 400, 403 and 500; `{error}` for 401; `{message}` with
//! `Retry-After` for 429).
//!
//! The user is `userAlias` in the MFA application named by `[mfa_delivery] application`.
//! - `token` empty: a login code is sent to the user's validated address -> `PENDING`.
//! - `token` given: it is checked -> `SUCCESS` (the code is used up) or `FAILED` (wrong,
//!   expired, or none outstanding); `LOCKOUT` while the user is locked after wrong codes.
//! - `NOT_ENOUGH_DATA`: the user has no validated address there, or `deliveryType` does not
//!   fit the application's delivery (SMS_* for SMS, EMAIL_* for EMAIL; VOICE_* is not
//!   offered).
//! - 429: too many codes sent to this user lately.
//!
//! Callers need `Administrator` or `MFA Service`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_config::UserKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::mfa_service::service_caller;
use crate::mfa::delivery::Channel;
use crate::mfa::service::{self, LoginCodeCheck, MfaError};

/// The token authenticate route.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(authenticate))
}

/// `deliveryType`.
#[allow(clippy::upper_case_acronyms, non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub enum DeliveryType {
    /// Text message to the personal phone.
    SMS_PERSONAL,
    /// Voice call (not offered: answers NOT_ENOUGH_DATA).
    VOICE_PERSONAL,
    /// Text message to the work phone.
    SMS_WORK,
    /// Voice call (not offered: answers NOT_ENOUGH_DATA).
    VOICE_WORK,
    /// E-mail to the work address.
    EMAIL_WORK,
    /// E-mail to the personal address.
    EMAIL_PERSONAL,
}

impl DeliveryType {
    fn channel(self) -> Option<Channel> {
        match self {
            DeliveryType::SMS_PERSONAL | DeliveryType::SMS_WORK => Some(Channel::Sms),
            DeliveryType::EMAIL_WORK | DeliveryType::EMAIL_PERSONAL => Some(Channel::Email),
            DeliveryType::VOICE_PERSONAL | DeliveryType::VOICE_WORK => None,
        }
    }
}

/// `TokenAuthRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenAuthRequest {
    /// The code the user received; empty to have a code sent.
    #[schema(example = "12345", max_length = 64)]
    pub token: String,
    /// The gateway user name (a user id of the gateway's MFA application).
    #[serde(rename = "userAlias")]
    #[schema(example = "will.albin", min_length = 1, max_length = 128)]
    pub user_alias: String,
    /// How the code travels; must fit the application's delivery method.
    #[serde(rename = "deliveryType")]
    pub delivery_type: DeliveryType,
}

/// MFA authentication status.
#[allow(clippy::upper_case_acronyms, non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum TokenStatus {
    /// A code was sent; check it with a second call.
    PENDING,
    /// The code was right.
    SUCCESS,
    /// Wrong, expired, or no code outstanding.
    FAILED,
    /// Locked after too many wrong codes.
    LOCKOUT,
    /// No validated address for this user and delivery type.
    NOT_ENOUGH_DATA,
}

/// `TokenAuthResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAuthResponse {
    /// MFA authentication status.
    pub status: TokenStatus,
}

/// `ErrorMessageDto`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorMessageDto {
    /// BCP 47 tag of the text.
    #[schema(example = "en-US", nullable = true)]
    pub locale: Option<String>,
    /// How the locale was chosen: DEFAULT or REQUEST.
    #[serde(rename = "localeOrigin")]
    #[schema(example = "DEFAULT", nullable = true)]
    pub locale_origin: Option<String>,
    /// The message.
    pub text: String,
}

/// `ErrorResponseDto`: 400, 403 and 500.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponseDto {
    /// Fine-grained error code.
    #[serde(rename = "detailCode")]
    #[schema(example = "400.1 Bad Request Content")]
    pub detail_code: String,
    /// Unique id of this error, also logged.
    #[serde(rename = "trackingId")]
    pub tracking_id: String,
    /// Localized reasons.
    pub messages: Vec<ErrorMessageDto>,
    /// More detail.
    pub causes: Vec<ErrorMessageDto>,
}

/// 401 body.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnauthorizedBody {
    /// What is wrong with the credentials.
    pub error: String,
}

/// 429 body.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitBody {
    /// " Rate Limit Exceeded ".
    pub message: String,
}

/// An error answer of this route.
#[derive(Debug)]
enum TokenError {
    /// 400, 403 or 500 with an `ErrorResponseDto`.
    Dto {
        status: StatusCode,
        detail: &'static str,
        text: String,
    },
    /// 401.
    Unauthorized(String),
    /// 429 with Retry-After.
    RateLimited,
}

impl From<ApiError> for TokenError {
    fn from(e: ApiError) -> Self {
        match e.status {
            StatusCode::UNAUTHORIZED => TokenError::Unauthorized(e.error_text),
            StatusCode::FORBIDDEN => TokenError::Dto {
                status: StatusCode::FORBIDDEN,
                detail: "403 Forbidden",
                text: e.error_text,
            },
            _ => internal(e.error_text),
        }
    }
}

fn bad(text: impl Into<String>) -> TokenError {
    TokenError::Dto {
        status: StatusCode::BAD_REQUEST,
        detail: "400.1 Bad Request Content",
        text: text.into(),
    }
}

fn internal(text: impl Into<String>) -> TokenError {
    TokenError::Dto {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        detail: "500.0 Internal Fault",
        text: text.into(),
    }
}

impl From<MfaError> for TokenError {
    fn from(e: MfaError) -> Self {
        match e {
            MfaError::BadRequest(t) | MfaError::TooLong(t) => bad(t),
            MfaError::TooMany(_) => TokenError::RateLimited,
            MfaError::Delivery(why) | MfaError::Unconfigured(why) => {
                internal(format!("The code could not be delivered: {why}"))
            }
            _ => internal("An internal fault occurred."),
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        match self {
            TokenError::Dto {
                status,
                detail,
                text,
            } => {
                let tracking = crate::mfa::codes::random_hex(16).unwrap_or_default();
                tracing::info!(
                    tracking_id = %tracking,
                    status = status.as_u16(),
                    %text,
                    "token authenticate refused"
                );
                let body = ErrorResponseDto {
                    detail_code: detail.to_owned(),
                    tracking_id: tracking,
                    messages: vec![ErrorMessageDto {
                        locale: Some("en-US".into()),
                        locale_origin: Some("DEFAULT".into()),
                        text,
                    }],
                    causes: Vec::new(),
                };
                (status, Json(body)).into_response()
            }
            TokenError::Unauthorized(text) => super::error::json_response(
                StatusCode::UNAUTHORIZED,
                UnauthorizedBody { error: text },
            ),
            TokenError::RateLimited => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(RateLimitBody {
                        message: " Rate Limit Exceeded ".into(),
                    }),
                )
                    .into_response();
                let retry = HeaderValue::from(service::SEND_WINDOW);
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, retry);
                response
            }
        }
    }
}

fn parse(body: &[u8]) -> Result<TokenAuthRequest, TokenError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("The request body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(bad("The request body must be a JSON object."));
    }
    let request: TokenAuthRequest =
        serde_json::from_value(value).map_err(|e| bad(format!("Invalid request: {e}")))?;
    if request.user_alias.is_empty() {
        return Err(bad("userAlias must not be empty."));
    }
    service::check_length("userAlias", &request.user_alias, service::MAX_ID)?;
    service::check_length("token", &request.token, service::MAX_CODE_INPUT)?;
    Ok(request)
}

fn status(status: TokenStatus) -> Response {
    Json(TokenAuthResponse { status }).into_response()
}

/// Authenticates a gateway user with a one-time code, or sends one (empty `token`).
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/token/authenticate",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    request_body = TokenAuthRequest,
    responses(
        (status = 200, description = "Token authenticated status", body = TokenAuthResponse),
        (status = 400, description = "Client Error: the request body is invalid", body = ErrorResponseDto),
        (status = 401, description = "Unauthorized: no or invalid credentials", body = UnauthorizedBody),
        (status = 403, description = "Forbidden: not Administrator or MFA Service", body = ErrorResponseDto),
        (status = 429, description = "Too Many Requests: too many codes sent to this user lately", body = RateLimitBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 500, description = "Internal Server Error, or the code could not be delivered", body = ErrorResponseDto),
    )
)]
pub async fn authenticate(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Response {
    match run(caller, &state, &body).await {
        Ok(answer) => answer,
        Err(e) => e.into_response(),
    }
}

async fn run(
    caller: Result<Caller, ApiError>,
    state: &AppState,
    body: &[u8],
) -> Result<Response, TokenError> {
    let caller = service_caller(caller)?;
    let request = parse(body)?;
    let config = state.store.current().config.mfa_delivery.clone();
    let user = request.user_alias.as_str();
    let key = UserKey::of(user);
    let Some(enrolment) = service::enrolment(&state.db, &config, &key).await? else {
        return Ok(status(TokenStatus::NOT_ENOUGH_DATA));
    };
    if request.delivery_type.channel() != Some(enrolment.channel()) {
        return Ok(status(TokenStatus::NOT_ENOUGH_DATA));
    }
    if request.token.is_empty() {
        if enrolment.user.locked_until > crate::state::unix_now() {
            return Ok(status(TokenStatus::LOCKOUT));
        }
        let id = &enrolment.user.id;
        service::login_start(&state.db, &config, &enrolment.application.id, id, None)
            .await
            .map_err(|e| match e {
                MfaError::NotValidated | MfaError::NotFound(_) => bad("The user is not enrolled."),
                other => other.into(),
            })?;
        tracing::info!(caller = %caller.user, user, "token authenticate: code sent");
        return Ok(status(TokenStatus::PENDING));
    }
    let result = service::check_login_code(&state.db, &config, &key, &request.token).await?;
    tracing::info!(caller = %caller.user, user, result = ?result, "token authenticate");
    Ok(status(match result {
        LoginCodeCheck::Success => TokenStatus::SUCCESS,
        LoginCodeCheck::Invalid | LoginCodeCheck::Expired => TokenStatus::FAILED,
        LoginCodeCheck::Locked => TokenStatus::LOCKOUT,
        LoginCodeCheck::NotEnrolled => TokenStatus::NOT_ENOUGH_DATA,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    async fn body(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn documented_error_bodies() {
        let (status, value) = body(bad("nope").into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(value["detailCode"], "400.1 Bad Request Content");
        assert_eq!(value["trackingId"].as_str().unwrap().len(), 32);
        assert_eq!(value["messages"][0]["locale"], "en-US");
        assert_eq!(value["messages"][0]["localeOrigin"], "DEFAULT");
        assert_eq!(value["messages"][0]["text"], "nope");

        let (status, value) =
            body(TokenError::from(ApiError::auth_required()).into_response()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(value["error"].is_string());

        let (status, value) =
            body(TokenError::from(ApiError::forbidden("X")).into_response()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(value["detailCode"], "403 Forbidden");

        let response = TokenError::RateLimited.into_response();
        assert!(response.headers().contains_key("retry-after"));
        let (status, value) = body(response).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(value, json!({"message": " Rate Limit Exceeded "}));

        let (status, value) = body(internal("boom").into_response()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(value["detailCode"], "500.0 Internal Fault");
    }

    #[test]
    fn requests() {
        let request = parse(
            br#"{"token": "12345", "userAlias": "will.albin", "deliveryType": "EMAIL_WORK"}"#,
        )
        .unwrap();
        assert_eq!(request.delivery_type.channel(), Some(Channel::Email));
        assert_eq!(DeliveryType::VOICE_WORK.channel(), None);
        for wrong in [
            &br#"{"token": "1", "userAlias": "a"}"#[..],
            br#"{"token": "1", "userAlias": "a", "deliveryType": "FAX"}"#,
            br#"{"token": 1, "userAlias": "a", "deliveryType": "SMS_WORK"}"#,
            br#"{"token": "1", "userAlias": "", "deliveryType": "SMS_WORK"}"#,
            br#"{"token": "1", "userAlias": "a", "deliveryType": "SMS_WORK", "x": 1}"#,
            br#"[]"#,
            b"{",
        ] {
            assert!(
                matches!(
                    parse(wrong),
                    Err(TokenError::Dto {
                        status: StatusCode::BAD_REQUEST,
                        ..
                    })
                ),
                "{}",
                String::from_utf8_lossy(wrong)
            );
        }
    }
}
