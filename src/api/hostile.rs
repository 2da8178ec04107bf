//! Defences against hostile HTTP clients, and the answers they get in the OpenAPI document.
//!
//! - Connections: at most [`MAX_CONNECTIONS`] at once on the HTTPS listener; one more is
//!   closed as soon as it is accepted ([`Capped`]), so idle or slow clients cannot exhaust the
//!   daemon's file descriptors.
//! - Headers: a connection that has not sent a request's headers within [`HEADER_TIMEOUT`] is
//!   closed (hyper's `header_read_timeout`); the TLS handshake has its own 10-second limit.
//! - Bodies: a body not read within [`BODY_TIMEOUT`] gets 408 REQUEST_TIMEOUT and the
//!   connection is closed ([`super::read_body`]); bodies over [`super::MAX_BODY`] get 413.
//! - Content-Type: a request with a body must declare it JSON (`application/json`, or a
//!   `+json` type), else 415 UNSUPPORTED_MEDIA_TYPE. Besides being honest, this forces a
//!   CORS preflight on any cross-site request a browser would send with the user's cached
//!   Basic credentials: a plain form or `text/plain` post cannot reach a handler.
//! - Everything else (malformed JSON, nesting deeper than serde_json's 128 levels, bad UTF-8)
//!   is the handlers' 400; unknown paths 404, wrong methods 405.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::openapi::path::Operation;
use utoipa::openapi::{RefOr, Response as DocResponse};

use super::error::ApiError;
use super::{BODY_TIMEOUT, HEADER_TIMEOUT, close_connection};

/// HTTPS connections served at once; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 512;

/// The innermost acceptor of the HTTPS server (under TLS): takes a connection permit, or
/// refuses the connection when none is left. The permit lives in the connection's service
/// and returns when the connection ends.
#[derive(Debug, Clone)]
pub struct Capped {
    permits: Arc<Semaphore>,
}

impl Capped {
    /// At most `limit` connections at once.
    pub fn new(limit: usize) -> Capped {
        Capped {
            permits: Arc::new(Semaphore::new(limit)),
        }
    }
}

impl<I, S> axum_server::accept::Accept<I, S> for Capped {
    type Stream = I;
    type Service = Permitted<S>;
    type Future = std::future::Ready<std::io::Result<(I, Permitted<S>)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        std::future::ready(match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Ok((
                stream,
                Permitted {
                    inner: service,
                    _permit: Arc::new(permit),
                },
            )),
            Err(_) => {
                metrics::counter!("portcullis_api_connections_refused_total").increment(1);
                tracing::debug!("API connection refused: {MAX_CONNECTIONS} already open");
                Err(std::io::Error::other("too many connections"))
            }
        })
    }
}

/// A connection's service with its connection permit.
#[derive(Debug, Clone)]
pub struct Permitted<S> {
    inner: S,
    _permit: Arc<OwnedSemaphorePermit>,
}

impl<S: tower_service::Service<R>, R> tower_service::Service<R> for Permitted<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.inner.call(request)
    }
}

/// Sets the header timeout on the HTTPS server's connections.
pub fn harden(builder: &mut Builder<TokioExecutor>) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
}

/// 408 REQUEST_TIMEOUT for a body that did not arrive in time; the connection is closed.
pub fn body_timeout() -> Response {
    let mut error = ApiError::bad_request(format!(
        "The request body did not arrive within {} seconds.",
        BODY_TIMEOUT.as_secs()
    ));
    error.status = StatusCode::REQUEST_TIMEOUT;
    error.error_id = "REQUEST_TIMEOUT";
    let mut response = error.into_response();
    close_connection(&mut response);
    response
}

/// Whether `value` names JSON: `application/json` or `application/<anything>+json`, with any
/// parameters.
fn is_json(value: &str) -> bool {
    let media = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = media.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

/// 415 for a non-empty body whose Content-Type is missing or not JSON. Runs after
/// [`super::read_body`], so the answer reaches the client on a kept-alive connection.
pub async fn json_content_type(request: Request, next: Next) -> Response {
    use axum::body::HttpBody as _;
    let empty = request.body().is_end_stream();
    let declared = request.headers().get(CONTENT_TYPE).map(|v| v.to_str());
    let acceptable = empty || matches!(declared, Some(Ok(value)) if is_json(value));
    if acceptable {
        next.run(request).await
    } else {
        let mut error = ApiError::bad_request(
            "Unsupported Content-Type: a request body must be JSON (Content-Type: \
             application/json).",
        );
        error.status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        error.error_id = "UNSUPPORTED_MEDIA_TYPE";
        error.into_response()
    }
}

/// Adds 408 and 415 to an operation that takes a body.
pub fn document_body_answers(
    responses: &mut BTreeMap<String, RefOr<DocResponse>>,
    error: &dyn Fn(&str) -> DocResponse,
) {
    responses
        .entry("408".into())
        .or_insert_with(|| error("The body did not arrive in time").into());
    responses
        .entry("415".into())
        .or_insert_with(|| error("Content-Type missing or not JSON").into());
}

/// Adds 429 to an operation that takes HTTP Basic: failed Basic attempts are throttled.
pub fn document_lockout(operation: &mut Operation, error: &dyn Fn(&str) -> DocResponse) {
    let takes_basic = serde_json::to_value(&operation.security)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .is_some_and(|requirements| requirements.iter().any(|r| r.get("basic").is_some()));
    if takes_basic {
        operation
            .responses
            .responses
            .entry("429".into())
            .or_insert_with(|| {
                error("Too many failed logins: locked for Retry-After seconds").into()
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for good in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
        ] {
            assert!(is_json(good), "{good}");
        }
        for bad in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "json",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
