//! The REST API over HTTPS: login and sessions, and (as it grows) the management API that edits
//! the configuration.

pub mod audit;
pub mod auth;
pub mod cloak;
pub mod error;
pub mod health;
pub mod hostile;
pub mod local_users;
pub mod lockouts;
pub mod login;
pub mod metrics;
pub mod mfa_devices;
pub mod mfa_login;
pub mod mfa_policy;
pub mod mfa_service;
pub mod mfa_token;
pub mod radius_clients;
pub mod remote_auth;
pub mod sessions;
pub mod throttle;
pub mod unix;

use std::io;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::http::header::{ACCEPT, CONTENT_LENGTH};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::live::ConfigStore;
use error::ApiError;
use sessions::Sessions;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY: usize = 1 << 20;
/// How long a client may take to send a request's headers before the connection is closed.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a client may take to send a request's body before it gets a 408.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The live configuration and engine.
    pub store: Store,
    /// Login sessions.
    pub sessions: Sessions,
    /// Runtime state (MFA, failure counters, audit log).
    pub db: crate::state::StateDb,
    /// Paired MFA devices and second-factor checks (on `db`, with the sealing key).
    pub mfa: crate::mfa::MfaStore,
    /// Upstream challenges passed on to REST clients, waiting for their answers.
    pub dialogues: crate::login::dialogue::Dialogues,
}

impl AppState {
    /// What the login pipeline needs of this state.
    pub fn pipeline(&self) -> crate::login::Pipeline<'_> {
        crate::login::Pipeline {
            db: Some(&self.db),
            mfa: Some(&self.mfa),
            dialogues: Some(&self.dialogues),
        }
    }
}

/// The configuration store as the REST layer uses it: its changes answer [`ApiError`]s.
#[derive(Debug, Clone)]
pub struct Store(pub Arc<ConfigStore>);

impl std::ops::Deref for Store {
    type Target = ConfigStore;

    fn deref(&self) -> &ConfigStore {
        &self.0
    }
}

impl Store {
    /// [`ConfigStore::change`] with the REST layer's errors.
    pub async fn update<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut portcullis_config::Config) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.0.change(change).await
    }
}

/// The OpenAPI document's frame; the paths come from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "portcullis",
        description = "Authentication gateway: login, sessions and configuration management."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(error::ErrorBody))
)]
struct ApiDoc;

/// HTTP Basic (local users) and bearer tokens (from login).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The routes and the OpenAPI document generated from their annotations.
pub fn routes() -> (Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    let (routes, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(login::routes())
        .merge(remote_auth::routes())
        .merge(local_users::routes())
        .merge(radius_clients::routes())
        .merge(mfa_login::routes())
        .merge(mfa_devices::routes())
        .merge(mfa_policy::routes())
        .merge(lockouts::routes())
        .merge(mfa_service::routes())
        .merge(mfa_token::routes())
        .merge(audit::routes())
        .merge(health::routes())
        .split_for_parts();
    add_common_responses(&mut openapi);
    (routes, openapi)
}

/// Documents the answers the layers of [`router`] give on every route: 406 from
/// [`accept_json`] on all of them, and 413 from [`declared_length`] and `DefaultBodyLimit` on
/// those that read a body. A response an annotation already lists is kept as it is.
fn add_common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            responses
                .entry("406".into())
                .or_insert_with(|| error("Accept header excludes JSON").into());
            if operation.request_body.is_some() {
                responses
                    .entry("413".into())
                    .or_insert_with(|| error("Body over 1 MiB").into());
                hostile::document_body_answers(responses, &error);
            }
            hostile::document_lockout(operation, &error);
        }
    }
}

/// Every route of the API, `/api/openapi.json` included.
pub fn router(state: Arc<AppState>) -> Router {
    let (routes, openapi) = routes();
    let openapi = Arc::new(openapi);
    routes
        .route(
            "/api/openapi.json",
            get(move || {
                let openapi = Arc::clone(&openapi);
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .route("/metrics", get(metrics::metrics))
        .route_layer(middleware::from_fn(audit::context_layer))
        .route_layer(middleware::from_fn(metrics::count_requests))
        .fallback(|| async { ApiError::not_found("No such resource.") })
        .method_not_allowed_fallback(|| async {
            let mut error = ApiError::bad_request("This resource does not take that method.");
            error.status = StatusCode::METHOD_NOT_ALLOWED;
            error.error_id = "METHOD_NOT_ALLOWED";
            error
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(accept_json))
        .layer(middleware::from_fn(hostile::json_content_type))
        .layer(middleware::from_fn(read_body))
        .layer(middleware::from_fn(declared_length))
        .with_state(state)
}

/// 413 before any of the body is read when Content-Length already says it is too large, so
/// a client waiting on `Expect: 100-continue` never sends it. Bodies without a length are
/// cut at the same limit while they are read ([`read_body`]).
async fn declared_length(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY as u64 => too_large(format!(
            "Request body of {length} bytes is over the {MAX_BODY}-byte limit."
        )),
        _ => next.run(request).await,
    }
}

/// Reads the whole request body (at most [`MAX_BODY`] bytes) before any handler or check
/// runs. An answer given before the body was read (401 and 403 from the caller check, 406,
/// 404) would otherwise make the server close the connection with the rest of the body
/// unread: the TCP reset that follows can destroy the answer before the client reads it, and
/// a client that reuses the connection sees it closed without an answer.
async fn read_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(read) = tokio::time::timeout(BODY_TIMEOUT, collect_body(body)).await else {
        return hostile::body_timeout();
    };
    match read {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(BodyError::TooLarge) => {
            too_large(format!("Request body is over the {MAX_BODY}-byte limit."))
        }
        Err(BodyError::Read(error)) => {
            let mut response =
                ApiError::bad_request(format!("Could not read the request body: {error}"))
                    .into_response();
            close_connection(&mut response);
            response
        }
    }
}

/// How much of an oversized body is read and thrown away before the 413 is sent. Reading it
/// lets the client, still sending, receive the answer instead of a reset; beyond this the
/// connection is closed with the rest unread.
const DISCARD_LIMIT: usize = 8 * MAX_BODY;

/// While an oversized body is drained, a pause this long ends the draining.
const DRAIN_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Why a request body could not be collected.
enum BodyError {
    /// Over [`MAX_BODY`].
    TooLarge,
    /// The connection failed or the framing was invalid.
    Read(axum::Error),
}

/// The whole body, at most [`MAX_BODY`] bytes. An oversized body is drained (up to
/// [`DISCARD_LIMIT`], while it keeps arriving) before the error is returned.
async fn collect_body(mut body: axum::body::Body) -> Result<axum::body::Bytes, BodyError> {
    use http_body_util::BodyExt as _;
    let mut collected = Vec::new();
    let mut seen = 0usize;
    loop {
        let next = if seen > MAX_BODY {
            // Draining: only while the client keeps sending.
            match tokio::time::timeout(DRAIN_PAUSE, body.frame()).await {
                Ok(next) => next,
                Err(_) => return Err(BodyError::TooLarge),
            }
        } else {
            body.frame().await
        };
        let Some(frame) = next else {
            break;
        };
        let frame = frame.map_err(BodyError::Read)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        if seen <= MAX_BODY {
            collected.extend_from_slice(&data);
        } else if seen > DISCARD_LIMIT {
            return Err(BodyError::TooLarge);
        }
    }
    if seen > MAX_BODY {
        return Err(BodyError::TooLarge);
    }
    Ok(collected.into())
}

/// 413 PAYLOAD_TOO_LARGE. The connection is closed after the answer (the rest of a body over
/// [`DISCARD_LIMIT`] stays unread) and the client is told so.
fn too_large(text: String) -> Response {
    let mut error = ApiError::bad_request(text);
    error.status = StatusCode::PAYLOAD_TOO_LARGE;
    error.error_id = "PAYLOAD_TOO_LARGE";
    let mut response = error.into_response();
    close_connection(&mut response);
    response
}

/// Marks `response` as the last one on its connection.
fn close_connection(response: &mut Response) {
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
}

/// 406 for a request whose Accept header rules out JSON (login-api: "Invalid 'Accept'
/// header").
async fn accept_json(request: Request, next: Next) -> Response {
    let acceptable = match request.headers().get(ACCEPT).map(|v| v.to_str()) {
        None => true,
        Some(Err(_)) => false,
        Some(Ok(accept)) => accept.split(',').any(|item| {
            let media = item.split(';').next().unwrap_or("").trim();
            media.is_empty()
                || media.eq_ignore_ascii_case("application/json")
                || media == "application/*"
                || media == "*/*"
        }),
    };
    if acceptable {
        next.run(request).await
    } else {
        let mut error = ApiError::bad_request("Invalid 'Accept' header: this API answers JSON.");
        error.status = StatusCode::NOT_ACCEPTABLE;
        error.error_id = "NOT_ACCEPTABLE";
        error.into_response()
    }
}

/// The TLS certificate and key under `state_dir/tls/`, made self-signed on first start. Logs
/// the certificate's SHA-256 fingerprint so clients can pin it.
pub async fn tls_config(state_dir: &Path) -> io::Result<RustlsConfig> {
    // ring is the one crypto provider compiled in; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = state_dir.join("tls");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if !cert_path.exists() || !key_path.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| io::Error::other(format!("certificate generation: {e}")))?;
        write_private(&key_path, certified.key_pair.serialize_pem().as_bytes())?;
        write_private(&cert_path, certified.cert.pem().as_bytes())?;
        tracing::info!(path = %cert_path.display(), "generated a self-signed TLS certificate");
    }
    let pem = std::fs::read(&cert_path)?;
    if let Some(der) = pem_body(&pem) {
        let fingerprint: Vec<String> = Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        tracing::info!(sha256 = %fingerprint.join(":"), "TLS certificate fingerprint");
    }
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| io::Error::other(format!("{}: {e}", cert_path.display())))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| io::Error::other(format!("{}: {e}", key_path.display())))?;
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(io::Error::other)?;
    // HTTP/1.1 only: an HTTP/2 answer sent before the request body was read (401, 406, 413)
    // is lost by common clients when the server resets the upload stream.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(server)))
}

/// The DER octets of the first PEM block.
fn pem_body(pem: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Serves the API over HTTPS on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: RustlsConfig,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(crate::daemon::DRAIN_TIMEOUT));
    });
    listener.set_nonblocking(true)?;
    let mut server = axum_server::from_tcp_rustls(listener, tls)
        .handle(handle)
        .map(|tls| tls.acceptor(hostile::Capped::new(hostile::MAX_CONNECTIONS)));
    hostile::harden(server.http_builder());
    server
        .serve(router(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}
