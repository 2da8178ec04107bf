//! The one error type of the REST API, rendered as the documented body
//! `{error_id, error_text, error_info}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The documented error body, for the OpenAPI document.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable error id: BAD_REQUEST, AUTH_REQUIRED, AUTH_INVALID_CREDENTIALS,
    /// FORBIDDEN, NOT_FOUND, CONFLICT, METHOD_NOT_ALLOWED, NOT_ACCEPTABLE, PAYLOAD_TOO_LARGE,
    /// VALIDATION_ERROR, LOCKED_OUT, INTERNAL_ERROR.
    pub error_id: String,
    /// Human-readable text.
    pub error_text: String,
    /// Error-specific details, e.g. `{"fields": [{"field", "reason"}]}`.
    #[schema(value_type = Option<Object>)]
    pub error_info: Option<Value>,
}

/// An error answer: status, machine-readable id, human-readable text, optional details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `error_id`: BAD_REQUEST, AUTH_REQUIRED, AUTH_INVALID_CREDENTIALS, FORBIDDEN, NOT_FOUND,
    /// ...
    pub error_id: &'static str,
    /// `error_text`.
    pub error_text: String,
    /// `error_info`, when there is more to say (the fields that failed validation).
    pub error_info: Option<Value>,
}

impl ApiError {
    fn new(status: StatusCode, error_id: &'static str, text: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error_id,
            error_text: text.into(),
            error_info: None,
        }
    }

    /// 400 BAD_REQUEST.
    pub fn bad_request(text: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", text)
    }

    /// 400 BAD_REQUEST naming the fields that failed, as `error_info.fields`.
    pub fn invalid_fields(text: impl Into<String>, fields: Vec<(String, String)>) -> ApiError {
        let fields: Vec<Value> = fields
            .into_iter()
            .map(|(field, reason)| json!({"field": field, "reason": reason}))
            .collect();
        ApiError {
            error_info: Some(json!({ "fields": fields })),
            ..ApiError::bad_request(text)
        }
    }

    /// 401 AUTH_REQUIRED: no credentials.
    pub fn auth_required() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AUTH_REQUIRED",
            "Authentication required.",
        )
    }

    /// 401 AUTH_INVALID_CREDENTIALS: credentials that do not verify.
    pub fn invalid_credentials() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AUTH_INVALID_CREDENTIALS",
            "Make sure the user name is correct and type your password again. Be sure to use \
             the correct case for the user name and password.",
        )
    }

    /// 403 FORBIDDEN: authenticated, but without the role the route needs.
    pub fn forbidden(needed: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("This operation needs the {needed} role."),
        )
    }

    /// 404 NOT_FOUND.
    pub fn not_found(text: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", text)
    }

    /// 409 CONFLICT: the object exists already.
    pub fn conflict(text: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "CONFLICT", text)
    }

    /// 500 INTERNAL_ERROR. The details go to the log, not to the caller.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(context, %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal error.",
        )
    }

    /// A state database error: 503 `UNAVAILABLE` when the (shared) database cannot be reached,
    /// so a caller knows to try again; else 500.
    pub fn state(context: &str, error: &crate::state::StateError) -> ApiError {
        if error.is_unavailable() {
            tracing::error!(context, %error, "state database unavailable");
            ApiError::unavailable()
        } else {
            ApiError::internal(context, error)
        }
    }

    /// 503 `UNAVAILABLE`: the shared state database does not answer.
    pub fn unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The state database does not answer; try again later.",
        )
    }

    /// Adds `error_info`.
    pub fn with_info(mut self, info: Value) -> ApiError {
        self.error_info = Some(info);
        self
    }
}

/// The challenge every 401 of the API carries: both schemes it accepts.
const CHALLENGE: &str = "Basic realm=\"portcullis\", Bearer";

/// `body` as JSON with `status`, and the `WWW-Authenticate` challenge when it is a 401: the
/// one place every error type of the API (each API has its own body shape) answers through.
pub fn json_response(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static(CHALLENGE),
        );
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // 429 LOCKED_OUT tells when to come back in error_info and in Retry-After.
        let retry_after = (self.status == StatusCode::TOO_MANY_REQUESTS)
            .then(|| self.error_info.as_ref()?.get("retry_after")?.as_u64())
            .flatten();
        let mut body = json!({
            "error_id": self.error_id,
            "error_text": self.error_text,
        });
        if let (Some(info), Some(map)) = (self.error_info, body.as_object_mut()) {
            map.insert("error_info".into(), info);
        }
        let mut response = json_response(self.status, body);
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<crate::live::StoreError> for ApiError {
    fn from(error: crate::live::StoreError) -> ApiError {
        match error {
            crate::live::StoreError::Invalid(fields) => {
                ApiError::invalid_fields("Invalid argument.", fields)
            }
            crate::live::StoreError::Failed(context, detail) => ApiError::internal(context, detail),
            error @ crate::live::StoreError::Conflict(_) => ApiError::conflict(error.to_string()),
            error @ crate::live::StoreError::Unavailable(_) => {
                tracing::error!(%error, "configuration change refused");
                ApiError::unavailable()
            }
        }
    }
}

impl crate::audit::Refusal for ApiError {
    fn refused(&self) -> bool {
        self.status.is_client_error()
    }

    /// The error's text and the fields it names.
    fn describe(&self) -> String {
        let fields: Vec<String> = self
            .error_info
            .as_ref()
            .and_then(|info| info.get("fields"))
            .and_then(|fields| fields.as_array())
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| {
                        Some(format!(
                            "{}: {}",
                            f.get("field")?.as_str()?,
                            f.get("reason")?.as_str()?
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if fields.is_empty() {
            self.error_text.clone()
        } else {
            format!("{} ({})", self.error_text, fields.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(error: ApiError) -> (StatusCode, Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn documented_body() {
        let (status, value) = body(ApiError::auth_required()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(value["error_id"], "AUTH_REQUIRED");
        assert!(value.get("error_info").is_none());

        let (status, value) = body(ApiError::invalid_fields(
            "Invalid argument.",
            vec![("port".into(), "0 is outside 1..=65535".into())],
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(value["error_id"], "BAD_REQUEST");
        assert_eq!(value["error_info"]["fields"][0]["field"], "port");
    }

    #[test]
    fn refused_changes_name_their_fields() {
        let error = ApiError::invalid_fields(
            "Invalid argument.",
            vec![(
                "radius.servers[0].port".into(),
                "0 is outside 1..=65535".into(),
            )],
        );
        assert_eq!(
            crate::audit::Refusal::describe(&error),
            "Invalid argument. (radius.servers[0].port: 0 is outside 1..=65535)"
        );
    }
}
