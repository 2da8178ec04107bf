//! `GET /api/mgmt.remote_authentication/1.0/server_health`: whether each server is alive or
//! marked dead, and when it last answered. Read-only; not in the reference, an extension.

#[allow(clippy::wildcard_imports)]
use super::*;

/// One server's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerHealthView {
    /// `radius` or `tacacs`.
    pub protocol: String,
    /// The server (`address:port`).
    pub server: String,
    /// Not marked dead: logins try it in its `order`.
    pub alive: bool,
    /// When marked dead: seconds until it is tried first again (or sooner, when a
    /// Status-Server probe finds it alive).
    pub dead_for: Option<u64>,
    /// When it last gave a valid answer (RFC 3339, UTC), if it has since the daemon started.
    pub last_answer: Option<String>,
}

/// The health of every enabled server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerHealthList {
    /// RADIUS servers, then TACACS+ servers, each in `order`.
    pub servers: Vec<ServerHealthView>,
}

/// Whether each enabled RADIUS and TACACS+ server is alive or marked dead.
#[utoipa::path(
    get,
    path = "/api/mgmt.remote_authentication/1.0/server_health",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Each enabled server's health", body = ServerHealthList),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor", body = ErrorBody),
    )
)]
pub async fn server_health(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<ServerHealthList>, ApiError> {
    caller.require_reader()?;
    let servers = state
        .store
        .current()
        .engine
        .health()
        .into_iter()
        .map(|health| ServerHealthView {
            protocol: health.protocol.to_string(),
            server: health.server,
            alive: health.alive,
            dead_for: health.dead_for,
            last_answer: health.last_answer.map(|at| {
                crate::api::login::rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(at),
                )
            }),
        })
        .collect();
    Ok(Json(ServerHealthList { servers }))
}
