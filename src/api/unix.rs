//! The API over plain HTTP on a Unix socket, for services on the same machine: no TLS to set
//! up, and access is governed by the socket file's permissions (mode 0660) on top of the
//! API's own authentication.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use super::{AppState, router};

/// Serves the API on a Unix socket at `path` until `shutdown` resolves. A stale socket file
/// left by an earlier run is replaced; the file is removed on a clean stop.
pub async fn serve_unix(
    path: &Path,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = bind_unix(path)?;
    serve_bound(listener, path, state, shutdown).await
}

/// Binds the Unix socket at `path` (mode 0660), replacing a stale socket file.
pub fn bind_unix(path: &Path) -> io::Result<tokio::net::UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Serves the API on `listener` (bound at `path` by [`bind_unix`]) until `shutdown`
/// resolves, then removes the socket file.
pub async fn serve_bound(
    listener: tokio::net::UnixListener,
    path: &Path,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    tracing::info!(path = %path.display(), "listening on unix:{}", path.display());
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = std::fs::remove_file(path);
    served
}
