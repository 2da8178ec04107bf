//! The TACACS+ routes: servers (through `servers.rs`) and settings.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// TACACS+ servers.

/// `POST tacacs/server` body: a new server. `port` defaults to 49, `protocol` to `PAP`,
/// `client_port` to empty, `enabled` to true.
// For the OpenAPI document only: the handler reads a `TacacsServerRequest` so that it can
// name every missing field at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTacacsServer {
    /// Server IP address or host name.
    #[schema(min_length = 1, example = "10.70.45.14")]
    pub address: String,
    /// Server TCP port, 1..=65535.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// Shared secret.
    #[schema(min_length = 1, example = "s3cr3t-shared-with-the-server")]
    pub secret: String,
    /// `PAP` or `ASCII`.
    #[schema(value_type = Option<TacacsProtocolName>)]
    pub protocol: Option<TacacsProtocol>,
    /// Sent as the `port` field of TACACS+ packets; a number or a string.
    pub client_port: Option<StringOrNumber>,
    /// Whether the server is tried.
    pub enabled: Option<Flag>,
    /// Extension: `tcp` (default) or `tls` (TACACS+ over TLS 1.3, RFC 9887; port 300 when
    /// none is given). Over TLS the secret is not used.
    #[schema(value_type = Option<TacacsTransportName>)]
    pub transport: Option<TacacsTransport>,
    /// Extension, with `transport` `tls`: path of the PEM bundle of the CAs that sign the
    /// server's certificate (default: the system's); an empty string removes it.
    pub tls_ca: Option<String>,
    /// Extension, with `transport` `tls`: the name the server's certificate must carry
    /// (default: `address`); an empty string removes it.
    pub tls_server_name: Option<String>,
    /// Extension, with `transport` `tls`: path of the PEM client certificate presented to the
    /// server, with `tls_key`; an empty string removes it.
    pub tls_certificate: Option<String>,
    /// Extension, with `transport` `tls`: path of the PEM private key of `tls_certificate`;
    /// an empty string removes it.
    pub tls_key: Option<String>,
}

/// `POST tacacs/server` and `PUT tacacs/server/{id}` body. Adding needs `address` and
/// `secret`; `port` defaults to 49, `protocol` to `PAP`, `client_port` to empty, `enabled` to
/// true. Updating changes the fields given and keeps the others; the cloaked secret keeps the
/// secret.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TacacsServerRequest {
    /// Server IP address or host name.
    #[schema(min_length = 1, example = "10.70.45.15")]
    pub address: Option<String>,
    /// Server TCP port, 1..=65535.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// Shared secret; the cloak `****************` keeps the configured one.
    #[schema(min_length = 1)]
    pub secret: Option<String>,
    /// `PAP` or `ASCII`.
    #[schema(value_type = Option<TacacsProtocolName>)]
    pub protocol: Option<TacacsProtocol>,
    /// Sent as the `port` field of TACACS+ packets; a number or a string.
    pub client_port: Option<StringOrNumber>,
    /// Whether the server is tried.
    pub enabled: Option<Flag>,
    /// Extension: `tcp` (default) or `tls` (TACACS+ over TLS 1.3, RFC 9887; port 300 when
    /// none is given). Over TLS the secret is not used.
    #[schema(value_type = Option<TacacsTransportName>)]
    pub transport: Option<TacacsTransport>,
    /// Extension, with `transport` `tls`: path of the PEM bundle of the CAs that sign the
    /// server's certificate (default: the system's); an empty string removes it.
    pub tls_ca: Option<String>,
    /// Extension, with `transport` `tls`: the name the server's certificate must carry
    /// (default: `address`); an empty string removes it.
    pub tls_server_name: Option<String>,
    /// Extension, with `transport` `tls`: path of the PEM client certificate presented to the
    /// server, with `tls_key`; an empty string removes it.
    pub tls_certificate: Option<String>,
    /// Extension, with `transport` `tls`: path of the PEM private key of `tls_certificate`;
    /// an empty string removes it.
    pub tls_key: Option<String>,
}

/// One entry of a `POST tacacs/reorder` body: a server as the list shows it. An entry naming a
/// configured `server_id` keeps that server's id, and the fields it leaves out or cloaks;
/// any other entry is a new server and needs `address` and `secret`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TacacsReorderEntry {
    /// The configured server this entry is.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub server_id: Option<u32>,
    /// Accepted and ignored: the position in the array is the new order.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub order: Option<u32>,
    /// Server TCP port, 1..=65535.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// Server IP address or host name.
    pub address: Option<String>,
    /// `PAP` or `ASCII`.
    #[schema(value_type = Option<TacacsProtocolName>)]
    pub protocol: Option<TacacsProtocol>,
    /// Sent as the `port` field of TACACS+ packets; a number or a string.
    pub client_port: Option<StringOrNumber>,
    /// Shared secret; `****************` keeps the secret of server `server_id`.
    pub secret: Option<String>,
    /// 1 (or true) if the server is tried, 0 (or false) if not.
    pub enabled: Option<Flag>,
    /// Extension: `tcp` (default) or `tls` (TACACS+ over TLS 1.3, RFC 9887; port 300 when
    /// none is given). Over TLS the secret is not used.
    #[schema(value_type = Option<TacacsTransportName>)]
    pub transport: Option<TacacsTransport>,
    /// Extension, with `transport` `tls`: path of the PEM bundle of the CAs that sign the
    /// server's certificate (default: the system's); an empty string removes it.
    pub tls_ca: Option<String>,
    /// Extension, with `transport` `tls`: the name the server's certificate must carry
    /// (default: `address`); an empty string removes it.
    pub tls_server_name: Option<String>,
    /// Extension, with `transport` `tls`: path of the PEM client certificate presented to the
    /// server, with `tls_key`; an empty string removes it.
    pub tls_certificate: Option<String>,
    /// Extension, with `transport` `tls`: path of the PEM private key of `tls_certificate`;
    /// an empty string removes it.
    pub tls_key: Option<String>,
}

/// A TACACS+ server as `GET tacacs/server` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TacacsServerView {
    /// Unique id of the server, used in its URL.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub server_id: u32,
    /// Server TCP port.
    #[schema(minimum = 1)]
    pub port: u16,
    /// Index in the try order, from 0.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub order: u32,
    /// Server IP address or host name.
    pub address: String,
    /// `PAP` or `ASCII`.
    #[schema(value_type = TacacsProtocolName)]
    pub protocol: TacacsProtocol,
    /// Sent as the `port` field of TACACS+ packets.
    pub client_port: String,
    /// Shared secret, `****************` unless the URL carries `uncloak`.
    pub secret: String,
    /// 1 if the server is tried, 0 if not.
    #[schema(maximum = 1)]
    pub enabled: u8,
    /// Extension: `tls` for TACACS+ over TLS 1.3 (RFC 9887); absent for TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TacacsTransportName>)]
    pub transport: Option<TacacsTransport>,
    /// Extension: the CA bundle the server's certificate is verified with, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
    /// Extension: the name the server's certificate must carry, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// Extension: the client certificate presented to the server, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_certificate: Option<String>,
    /// Extension: the path of the client certificate's key, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
}

impl TacacsServerView {
    pub(super) fn new(server: &TacacsServer, uncloak: bool) -> TacacsServerView {
        TacacsServerView {
            server_id: server.id,
            port: server.port,
            order: server.order,
            address: server.address.clone(),
            protocol: server.protocol,
            client_port: server.client_port.clone(),
            secret: shown(&server.secret, uncloak),
            enabled: flag(server.enabled),
            transport: (server.transport == TacacsTransport::Tls).then_some(server.transport),
            tls_ca: server.tls.tls_ca.clone(),
            tls_server_name: server.tls.tls_server_name.clone(),
            tls_certificate: server.tls.tls_certificate.clone(),
            tls_key: server.tls.tls_key.clone(),
        }
    }
}

/// Lists the TACACS+ servers in try order.
#[utoipa::path(
    get,
    path = "/api/mgmt.remote_authentication/1.0/tacacs/server",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    params(("uncloak" = Option<String>, Query, description = "Show the secrets (Administrator only); any value or none")),
    responses(
        (status = 200, description = "The TACACS+ servers", body = Vec<TacacsServerView>),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor, or uncloak without Administrator", body = ErrorBody),
    )
)]
pub async fn list_tacacs_servers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<TacacsServerView>>, ApiError> {
    servers::list::<TacacsServer>(state, caller, query).await
}

/// Adds a TACACS+ server at the end of the try order; its `server_id` is one more than the
/// largest in use.
#[utoipa::path(
    post,
    path = "/api/mgmt.remote_authentication/1.0/tacacs/server",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    request_body = NewTacacsServer,
    responses(
        (status = 204, description = "Added"),
        (status = 400, description = "Malformed body or invalid fields (error_info.fields)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn add_tacacs_server(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    servers::add::<TacacsServer>(state, body).await
}

/// Changes a TACACS+ server: the fields given, keeping the others (and the secret when it is
/// absent or cloaked).
#[utoipa::path(
    put,
    path = "/api/mgmt.remote_authentication/1.0/tacacs/server/{id}",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    params(("id" = u32, Path, description = "server_id of the server")),
    request_body = TacacsServerRequest,
    responses(
        (status = 204, description = "Updated"),
        (status = 400, description = "Malformed body or invalid fields (error_info.fields)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
        (status = 404, description = "No server with this id", body = ErrorBody),
    )
)]
pub async fn update_tacacs_server(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = server_id(id, "TACACS+")?;
    servers::update::<TacacsServer>(state, id, body).await
}

/// Deletes a TACACS+ server; the others keep their ids and close up the order.
#[utoipa::path(
    delete,
    path = "/api/mgmt.remote_authentication/1.0/tacacs/server/{id}",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    params(("id" = u32, Path, description = "server_id of the server")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
        (status = 404, description = "No server with this id", body = ErrorBody),
    )
)]
pub async fn delete_tacacs_server(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = server_id(id, "TACACS+")?;
    servers::delete::<TacacsServer>(state, id).await
}

/// Deletes every TACACS+ server.
#[utoipa::path(
    delete,
    path = "/api/mgmt.remote_authentication/1.0/tacacs/server",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn delete_all_tacacs_servers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    servers::delete_all::<TacacsServer>(state).await
}

/// Replaces the TACACS+ servers with the list given, in its order (the array position is the
/// new `order`). Send the list as `GET tacacs/server` shows it, rearranged: entries naming a
/// configured `server_id` keep that id and, with the cloaked secret, that server's secret.
#[utoipa::path(
    post,
    path = "/api/mgmt.remote_authentication/1.0/tacacs/reorder",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    request_body = Vec<TacacsReorderEntry>,
    responses(
        (status = 204, description = "Replaced"),
        (status = 400, description = "Malformed body or invalid fields (error_info.fields, e.g. `[1].secret`)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn reorder_tacacs_servers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    servers::reorder::<TacacsServer>(state, body).await
}

// ---------------------------------------------------------------------------------------------
// TACACS+ settings.

/// `GET tacacs/settings` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TacacsSettingsView {
    /// Seconds to wait for the connection and for each reply.
    #[schema(minimum = 1, maximum = 60)]
    pub connection_timeout: u32,
    /// The service asked for in the authorization request after a login.
    pub auth_service: String,
}

/// `POST tacacs/connection` body: only the settings to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TacacsSettingsRequest {
    /// Seconds to wait for the connection and for each reply, 1..=60.
    #[schema(minimum = 1, maximum = 60)]
    pub connection_timeout: Option<u32>,
    /// The service asked for in the authorization request after a login; not empty.
    #[schema(min_length = 1)]
    pub auth_service: Option<String>,
}

/// The TACACS+ settings shared by every server.
#[utoipa::path(
    get,
    path = "/api/mgmt.remote_authentication/1.0/tacacs/settings",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The TACACS+ settings", body = TacacsSettingsView),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor", body = ErrorBody),
    )
)]
pub async fn tacacs_settings(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<TacacsSettingsView>, ApiError> {
    caller.require_reader()?;
    let live = state.store.current();
    let settings = &live.config.tacacs.settings;
    Ok(Json(TacacsSettingsView {
        connection_timeout: settings.connection_timeout,
        auth_service: settings.auth_service.clone(),
    }))
}

/// Sets the TACACS+ settings given; the other keeps its value.
#[utoipa::path(
    post,
    path = "/api/mgmt.remote_authentication/1.0/tacacs/connection",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    request_body = TacacsSettingsRequest,
    responses(
        (status = 204, description = "Set"),
        (status = 400, description = "Malformed body or invalid fields (error_info.fields)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn set_tacacs_settings(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let request: TacacsSettingsRequest = parse_object(&body)?;
    state
        .store
        .update(move |config| {
            let settings = &mut config.tacacs.settings;
            if let Some(timeout) = request.connection_timeout {
                settings.connection_timeout = timeout;
            }
            if let Some(service) = request.auth_service {
                settings.auth_service = service;
            }
            validated(config, |field| {
                field.strip_prefix("tacacs.settings.").map(str::to_owned)
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
