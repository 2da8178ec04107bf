//! The RADIUS routes: servers (through `servers.rs`) and settings.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// RADIUS servers.

/// `POST radius/server` body: a new server. `port` defaults to 1812, `protocol` to `PAP`,
/// `enabled` to true.
// For the OpenAPI document only: the handler reads a `RadiusServerRequest` so that it can
// name every missing field at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRadiusServer {
    /// Server IP address or host name.
    #[schema(min_length = 1, example = "10.70.45.14")]
    pub address: String,
    /// Server UDP port, 1..=65535.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// Shared secret.
    #[schema(min_length = 1, example = "s3cr3t-shared-with-the-server")]
    pub secret: String,
    /// `PAP` or `CHAP`.
    #[schema(value_type = Option<RadiusProtocolName>)]
    pub protocol: Option<RadiusProtocol>,
    /// Whether the server is tried.
    pub enabled: Option<Flag>,
    /// Extension: `udp` (default) or `tls` (RadSec, RFC 6614; port 2083 when none is
    /// given).
    #[schema(value_type = Option<RadiusTransportName>)]
    pub transport: Option<RadiusTransport>,
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

/// `POST radius/server` and `PUT radius/server/{id}` body. Adding needs `address` and
/// `secret`; `port` defaults to 1812, `protocol` to `PAP`, `enabled` to true. Updating
/// changes the fields given and keeps the others; the cloaked secret keeps the secret.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RadiusServerRequest {
    /// Server IP address or host name.
    #[schema(min_length = 1, example = "10.70.45.15")]
    pub address: Option<String>,
    /// Server UDP port, 1..=65535.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// Shared secret; the cloak `****************` keeps the configured one.
    #[schema(min_length = 1)]
    pub secret: Option<String>,
    /// `PAP` or `CHAP`.
    #[schema(value_type = Option<RadiusProtocolName>)]
    pub protocol: Option<RadiusProtocol>,
    /// Whether the server is tried.
    pub enabled: Option<Flag>,
    /// Extension: `udp` (default) or `tls` (RadSec, RFC 6614; port 2083 when none is
    /// given).
    #[schema(value_type = Option<RadiusTransportName>)]
    pub transport: Option<RadiusTransport>,
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

/// One entry of a `POST radius/reorder` body: a server as the list shows it. An entry naming a
/// configured `server_id` keeps that server's id, and the fields it leaves out or cloaks;
/// any other entry is a new server and needs `address` and `secret`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RadiusReorderEntry {
    /// The configured server this entry is.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub server_id: Option<u32>,
    /// Accepted and ignored: the position in the array is the new order.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub order: Option<u32>,
    /// Server UDP port, 1..=65535.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// Server IP address or host name.
    pub address: Option<String>,
    /// `PAP` or `CHAP`.
    #[schema(value_type = Option<RadiusProtocolName>)]
    pub protocol: Option<RadiusProtocol>,
    /// Shared secret; `****************` keeps the secret of server `server_id`.
    pub secret: Option<String>,
    /// 1 (or true) if the server is tried, 0 (or false) if not.
    pub enabled: Option<Flag>,
    /// Extension: `udp` (default) or `tls` (RadSec, RFC 6614; port 2083 when none is
    /// given).
    #[schema(value_type = Option<RadiusTransportName>)]
    pub transport: Option<RadiusTransport>,
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

/// A RADIUS server as `GET radius/server` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RadiusServerView {
    /// Unique id of the server, used in its URL.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub server_id: u32,
    /// Server UDP port.
    #[schema(minimum = 1)]
    pub port: u16,
    /// Index in the try order, from 0.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub order: u32,
    /// Server IP address or host name.
    pub address: String,
    /// `PAP` or `CHAP`.
    #[schema(value_type = RadiusProtocolName)]
    pub protocol: RadiusProtocol,
    /// Shared secret, `****************` unless the URL carries `uncloak`.
    pub secret: String,
    /// 1 if the server is tried, 0 if not.
    #[schema(maximum = 1)]
    pub enabled: u8,
    /// Extension: `tls` for RadSec (RFC 6614); absent for UDP.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<RadiusTransportName>)]
    pub transport: Option<RadiusTransport>,
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

impl RadiusServerView {
    pub(super) fn new(server: &RadiusServer, uncloak: bool) -> RadiusServerView {
        RadiusServerView {
            server_id: server.id,
            port: server.port,
            order: server.order,
            address: server.address.clone(),
            protocol: server.protocol,
            secret: shown(&server.secret, uncloak),
            enabled: flag(server.enabled),
            transport: (server.transport == RadiusTransport::Tls).then_some(server.transport),
            tls_ca: server.tls.tls_ca.clone(),
            tls_server_name: server.tls.tls_server_name.clone(),
            tls_certificate: server.tls.tls_certificate.clone(),
            tls_key: server.tls.tls_key.clone(),
        }
    }
}

/// Lists the RADIUS servers in try order.
#[utoipa::path(
    get,
    path = "/api/mgmt.remote_authentication/1.0/radius/server",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    params(("uncloak" = Option<String>, Query, description = "Show the secrets (Administrator only); any value or none")),
    responses(
        (status = 200, description = "The RADIUS servers", body = Vec<RadiusServerView>),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor, or uncloak without Administrator", body = ErrorBody),
    )
)]
pub async fn list_radius_servers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<RadiusServerView>>, ApiError> {
    servers::list::<RadiusServer>(state, caller, query).await
}

/// Adds a RADIUS server at the end of the try order; its `server_id` is one more than the
/// largest in use.
#[utoipa::path(
    post,
    path = "/api/mgmt.remote_authentication/1.0/radius/server",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    request_body = NewRadiusServer,
    responses(
        (status = 204, description = "Added"),
        (status = 400, description = "Malformed body or invalid fields (error_info.fields)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn add_radius_server(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    servers::add::<RadiusServer>(state, body).await
}

/// Changes a RADIUS server: the fields given, keeping the others (and the secret when it is
/// absent or cloaked).
#[utoipa::path(
    put,
    path = "/api/mgmt.remote_authentication/1.0/radius/server/{id}",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    params(("id" = u32, Path, description = "server_id of the server")),
    request_body = RadiusServerRequest,
    responses(
        (status = 204, description = "Updated"),
        (status = 400, description = "Malformed body or invalid fields (error_info.fields)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
        (status = 404, description = "No server with this id", body = ErrorBody),
    )
)]
pub async fn update_radius_server(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = server_id(id, "RADIUS")?;
    servers::update::<RadiusServer>(state, id, body).await
}

/// Deletes a RADIUS server; the others keep their ids and close up the order.
#[utoipa::path(
    delete,
    path = "/api/mgmt.remote_authentication/1.0/radius/server/{id}",
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
pub async fn delete_radius_server(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = server_id(id, "RADIUS")?;
    servers::delete::<RadiusServer>(state, id).await
}

/// Deletes every RADIUS server.
#[utoipa::path(
    delete,
    path = "/api/mgmt.remote_authentication/1.0/radius/server",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn delete_all_radius_servers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    servers::delete_all::<RadiusServer>(state).await
}

/// Replaces the RADIUS servers with the list given, in its order (the array position is the
/// new `order`). Send the list as `GET radius/server` shows it, rearranged: entries naming a
/// configured `server_id` keep that id and, with the cloaked secret, that server's secret.
#[utoipa::path(
    post,
    path = "/api/mgmt.remote_authentication/1.0/radius/reorder",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    request_body = Vec<RadiusReorderEntry>,
    responses(
        (status = 204, description = "Replaced"),
        (status = 400, description = "Malformed body or invalid fields (error_info.fields, e.g. `[1].secret`)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn reorder_radius_servers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    servers::reorder::<RadiusServer>(state, body).await
}

// ---------------------------------------------------------------------------------------------
// RADIUS settings.

/// NAS-Identifier and NAS-IP-Address settings as `GET radius/settings` shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct NasSettingsView {
    /// Send NAS-Identifier in Access-Requests.
    pub use_nas_id: bool,
    /// `custom` (`nas_id_value`) or `dynamic` (this host's name).
    #[schema(value_type = NasIdTypeName)]
    pub nas_id_type: NasIdType,
    /// The custom NAS-Identifier; empty when none is set.
    pub nas_id_value: String,
    /// Send NAS-IP-Address in Access-Requests.
    pub use_nas_ip: bool,
}

/// `GET radius/settings` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RadiusSettingsView {
    /// NAS-Identifier and/or NAS-IP-Address sent to the servers.
    pub authentication: NasSettingsView,
    /// Seconds to wait for a reply before resending.
    #[schema(minimum = 1, maximum = 60)]
    pub connection_timeout: u32,
    /// Sends per server before the next server is tried.
    #[schema(minimum = 1, maximum = 10)]
    pub max_number_of_tries: u32,
}

/// NAS settings in a `POST radius/settings` body; the fields left out keep their values.
/// `use_nas_id` and `use_nas_ip` cannot both be false.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NasSettingsRequest {
    /// Send NAS-Identifier in Access-Requests.
    pub use_nas_id: Option<bool>,
    /// `custom` or `dynamic` (also spelled `dyanmic`).
    #[schema(value_type = Option<NasIdTypeInput>)]
    pub nas_id_type: Option<NasIdType>,
    /// The NAS-Identifier; required when `nas_id_type` is `custom`.
    pub nas_id_value: Option<String>,
    /// Send NAS-IP-Address in Access-Requests.
    pub use_nas_ip: Option<bool>,
}

/// `POST radius/settings` body; the fields left out keep their values.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RadiusSettingsRequest {
    /// NAS-Identifier and/or NAS-IP-Address sent to the servers.
    pub authentication: Option<NasSettingsRequest>,
    /// Seconds to wait for a reply before resending, 1..=60.
    #[schema(minimum = 1, maximum = 60)]
    pub connection_timeout: Option<u32>,
    /// Sends per server before the next server is tried, 1..=10.
    #[schema(minimum = 1, maximum = 10)]
    pub max_number_of_tries: Option<u32>,
}

/// The RADIUS settings shared by every server.
#[utoipa::path(
    get,
    path = "/api/mgmt.remote_authentication/1.0/radius/settings",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The RADIUS settings", body = RadiusSettingsView),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor", body = ErrorBody),
    )
)]
pub async fn radius_settings(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<RadiusSettingsView>, ApiError> {
    caller.require_reader()?;
    let live = state.store.current();
    let settings = &live.config.radius.settings;
    Ok(Json(RadiusSettingsView {
        authentication: NasSettingsView {
            use_nas_id: settings.use_nas_id,
            nas_id_type: settings.nas_id_type,
            nas_id_value: settings.nas_id_value.clone().unwrap_or_default(),
            use_nas_ip: settings.use_nas_ip,
        },
        connection_timeout: settings.connection_timeout,
        max_number_of_tries: settings.max_number_of_tries,
    }))
}

/// Sets the RADIUS settings given; the others keep their values.
#[utoipa::path(
    post,
    path = "/api/mgmt.remote_authentication/1.0/radius/settings",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    request_body = RadiusSettingsRequest,
    responses(
        (status = 204, description = "Set"),
        (status = 400, description = "Malformed body or invalid fields (error_info.fields)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn set_radius_settings(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let mut value = parse_json(&body)?;
    let Some(members) = value.as_object_mut() else {
        return Err(ApiError::bad_request(
            "JSON error: the body must be a JSON object",
        ));
    };
    // The nested object is read on its own so its fields are named `authentication.<field>`.
    let nas_value = members.remove("authentication");
    let mut errors = Vec::new();
    let nas: Option<NasSettingsRequest> = match &nas_value {
        None | Some(Value::Null) => None,
        Some(nas) => from_object(nas, "authentication", &mut errors),
    };
    let request: Option<RadiusSettingsRequest> = from_object(&value, "", &mut errors);
    let (Some(request), true) = (request, errors.is_empty()) else {
        return Err(invalid(errors));
    };
    state
        .store
        .update(move |config| {
            let settings = &mut config.radius.settings;
            if let Some(nas) = nas {
                if let Some(use_nas_id) = nas.use_nas_id {
                    settings.use_nas_id = use_nas_id;
                }
                if let Some(nas_id_type) = nas.nas_id_type {
                    settings.nas_id_type = nas_id_type;
                }
                if let Some(nas_id_value) = nas.nas_id_value {
                    settings.nas_id_value = Some(nas_id_value).filter(|value| !value.is_empty());
                }
                if let Some(use_nas_ip) = nas.use_nas_ip {
                    settings.use_nas_ip = use_nas_ip;
                }
            }
            if let Some(timeout) = request.connection_timeout {
                settings.connection_timeout = timeout;
            }
            if let Some(tries) = request.max_number_of_tries {
                settings.max_number_of_tries = tries;
            }
            validated(config, |field| {
                let rest = field.strip_prefix("radius.settings.")?;
                Some(match rest {
                    "connection_timeout" | "max_number_of_tries" => rest.to_owned(),
                    _ => format!("authentication.{rest}"),
                })
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
