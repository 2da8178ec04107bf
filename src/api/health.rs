//! `GET /api/state/1.0/health`: whether this node's state is usable, for a load balancer or a
//! monitor deciding where to send logins. It needs no credentials and says nothing secret.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

/// The health route.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(health))
}

/// This node's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while the shared state database does not answer (first factors
    /// are still decided; second factors and configuration changes are refused).
    #[schema(pattern = "^(ok|degraded)$")]
    pub status: String,
    /// `sqlite` (this node alone) or `postgresql` (shared with other nodes).
    #[schema(pattern = "^(sqlite|postgresql)$")]
    pub backend: String,
    /// Whether the state database answered the last look (every 2 s).
    pub reachable: bool,
    /// This node's name (`[state] node`).
    pub node: String,
    /// The version of the shared configuration live on this node; absent when the
    /// configuration is this node's file.
    pub config_version: Option<i64>,
}

/// Whether this node's state database answers.
#[utoipa::path(
    get,
    path = "/api/state/1.0/health",
    tag = "state",
    responses(
        (status = 200, description = "The state is usable", body = Health),
        (status = 503, description = "The shared state database does not answer", body = Health),
    )
)]
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    let reachable = state.db.is_reachable();
    let body = Health {
        status: if reachable { "ok" } else { "degraded" }.to_owned(),
        backend: if state.db.is_shared() {
            "postgresql"
        } else {
            "sqlite"
        }
        .to_owned(),
        reachable,
        node: state.db.node().to_owned(),
        config_version: state.store.0.shared_version(),
    };
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
