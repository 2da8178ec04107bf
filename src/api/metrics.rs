//! `GET /metrics` (Prometheus text format) and the REST request counter.
//!
//! Who may read the metrics is `[metrics] allow`: `loopback` (clients on 127.0.0.0/8 or ::1,
//! or on the Unix socket, without credentials) or `role` (authenticated callers holding
//! `metrics.role`, from anywhere).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_config::MetricsAccess;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE_PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>, mut parts: Parts) -> Response {
    let access = state.store.current().config.metrics.clone();
    match access.allow {
        MetricsAccess::Loopback => {
            let local = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .is_none_or(|ConnectInfo(addr)| addr.ip().to_canonical().is_loopback());
            if !local {
                let mut error =
                    ApiError::forbidden("a client on the loopback interface (metrics.allow)");
                error.error_text = "Metrics are served to loopback clients only.".into();
                return error.into_response();
            }
        }
        MetricsAccess::Role => match Caller::from_request_parts(&mut parts, &state).await {
            Ok(caller) if caller.roles.contains(&access.role) => {}
            Ok(_) => return ApiError::forbidden(access.role.as_str()).into_response(),
            Err(e) => return e.into_response(),
        },
    }
    let mut response = (StatusCode::OK, crate::telemetry::render()).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_PROMETHEUS),
    );
    response
}

/// Counts each answered request by route template (never the raw path, which may carry
/// user names), method and status. A route layer: it sees the matched template.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let response = next.run(request).await;
    crate::telemetry::http_request(route, method, response.status().as_u16());
    response
}
