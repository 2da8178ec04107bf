//! `GET /api/audit/1.0/events`, and the layer that runs each REST request inside its audit
//! [`RequestContext`] (who, from where, which route), recording management writes refused
//! before they reached the configuration store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Query, Request, State};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use crate::audit::{self, Filter, Kind, MAX_PAGE, NewEvent, Page, RequestContext};
use crate::state::audit::AuditState;

/// The audit routes.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Lists audit events, newest first, with filters and paging.
#[utoipa::path(
    get,
    path = "/api/audit/1.0/events",
    tag = "audit",
    security(("basic" = []), ("bearer" = [])),
    params(Filter),
    responses(
        (status = 200, description = "One page of events, newest first", body = Page),
        (status = 400, description = "A filter or paging parameter is malformed or out of range", body = ErrorBody),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = ErrorBody),
    )
)]
pub async fn events(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Json<Page>, ApiError> {
    caller.require_admin()?;
    let Query(filter) = Query::<Filter>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request(format!("Query: {}", e.body_text())))?;
    let mut fields = Vec::new();
    if filter.limit.is_some_and(|l| !(1..=MAX_PAGE).contains(&l)) {
        fields.push((
            "limit".to_string(),
            format!("must be within 1..={MAX_PAGE}"),
        ));
    }
    if filter.offset.is_some_and(|o| o > 1_000_000) {
        fields.push((
            "offset".to_string(),
            "must be within 0..=1000000".to_string(),
        ));
    }
    for (name, value, low) in [
        ("since", filter.since, 0),
        ("until", filter.until, 0),
        ("before", filter.before, 1),
    ] {
        if value.is_some_and(|v| v < low) {
            fields.push((name.to_string(), format!("must be {low} or more")));
        }
    }
    if !fields.is_empty() {
        return Err(ApiError::invalid_fields("Invalid argument.", fields));
    }
    let page = state
        .db
        .call(move |db| db.query_events(&filter))
        .await
        .map_err(|e| ApiError::state("audit query", &e))?;
    Ok(Json(page))
}

/// The client's address as an audit `source`: `ip:port`, or `unix` without one (the Unix
/// socket).
pub fn source_of(request_extensions: &axum::http::Extensions) -> String {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unix".to_string(), |ConnectInfo(addr)| addr.to_string())
}

/// Runs the rest of the request inside its [`RequestContext`]. A route layer, so the route
/// template is known. A write to a management route that was refused before it reached
/// [`ConfigStore::update`](crate::live::ConfigStore::change) (bad body, unknown role,
/// not an Administrator, ...) is recorded here, with its status as the reason.
pub async fn context_layer(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_string(),
        |p| p.as_str().to_string(),
    );
    let write = !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let management = route.starts_with("/api/mgmt.");
    let context = RequestContext::new(
        source_of(request.extensions()),
        format!("{} {route}", request.method()),
    );
    let started = Instant::now();
    let response = audit::within(Arc::clone(&context), next.run(request)).await;
    if write && management && !context.recorded() {
        let status = response.status();
        let (result, reason) = if status.is_success() {
            ("ok", None)
        } else if status.is_client_error() {
            ("refused", Some(format!("HTTP {status}")))
        } else {
            ("failed", Some(format!("HTTP {status}")))
        };
        audit::record(NewEvent {
            kind: Kind::Config,
            user: context.user().into(),
            source: context.source().into(),
            action: context.action().into(),
            result,
            reason,
            method: None,
            server: None,
            latency: started.elapsed(),
        });
    }
    response
}
