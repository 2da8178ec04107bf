//! `/api/mgmt.remote_authentication/1.0/...`: the authentication sequence, the ordered RADIUS
//! and TACACS+ servers, their settings and their role mappings, with the paths, field names
//! and types of the management API reference, quirks included:
//!
//! - `enabled` is read as a boolean (or `1`/`0`) and listed as `1`/`0`;
//! - TACACS+ `client_port` is read as a number or a string and listed as a string;
//! - reorder bodies may carry `server_id` and `order` (the list as `GET` shows it);
//! - `nas_id_type` is read as `custom`, `dynamic` or `dyanmic` and listed as `dynamic`;
//! - TACACS+ settings are read at `tacacs/settings` and written at `tacacs/connection`;
//! - secrets are listed as `****************` unless the URL carries `uncloak`.
//!
//! Every write goes through [`ConfigStore::update`](crate::live::ConfigStore::change): it is
//! validated, saved atomically and made live, or nothing changes. Invalid requests answer 400
//! with `error_info.fields` naming each failing field as the request spells it
//! (`port`, `[1].secret`, `authentication.nas_id_value`); unknown server ids answer 404.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use portcullis_config::{
    CLOAK, Config, ConfigError, FIRST_SEQUENCE, LAST_SEQUENCE, NasIdType, RadiusProtocol,
    RadiusRoleMapping, RadiusServer, SEQUENCES, Secret, TacacsProtocol, TacacsRoleMapping,
    TacacsServer, sequence_name,
};
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::cloak::shown;
use super::error::{ApiError, ErrorBody};

mod mappings;
mod servers;

/// The remote-authentication management routes.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_auth_sequences))
        .routes(routes!(current_auth_sequence, set_current_auth_sequence))
        .routes(routes!(
            list_radius_servers,
            add_radius_server,
            delete_all_radius_servers
        ))
        .routes(routes!(update_radius_server, delete_radius_server))
        .routes(routes!(reorder_radius_servers))
        .routes(routes!(radius_settings, set_radius_settings))
        .routes(routes!(radius_role_mapping, set_radius_role_mapping))
        .routes(routes!(
            list_tacacs_servers,
            add_tacacs_server,
            delete_all_tacacs_servers
        ))
        .routes(routes!(update_tacacs_server, delete_tacacs_server))
        .routes(routes!(reorder_tacacs_servers))
        .routes(routes!(tacacs_settings))
        .routes(routes!(set_tacacs_settings))
        .routes(routes!(tacacs_role_mapping, set_tacacs_role_mapping))
}

// ---------------------------------------------------------------------------------------------
// Input types shared by several bodies.

/// `enabled` as a request carries it: `true`/`false`, or `1`/`0` as the server lists show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Flag, D::Error> {
        /// Booleans, and the integers 1 and 0.
        struct FlagVisitor;

        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, 1 or 0")
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Flag, E> {
                Ok(Flag(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Flag, E> {
                match value {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(Unexpected::Unsigned(value), &self)),
                }
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Flag, E> {
                match value {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(Unexpected::Signed(value), &self)),
                }
            }
        }

        deserializer.deserialize_any(FlagVisitor)
    }
}

impl PartialSchema for Flag {
    fn schema() -> RefOr<Schema> {
        Schema::OneOf(
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Boolean))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .enum_values(Some([0, 1])),
                )
                .description(Some(
                    "true or false; 1 and 0 (as the server lists show it) are accepted too",
                ))
                .build(),
        )
        .into()
    }
}

impl ToSchema for Flag {}

/// A text field that the reference sends as a number in some examples and as a string in
/// others (TACACS+ `client_port` and role mapping `attribute`): a string, or a non-negative
/// integer kept as its decimal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringOrNumber(pub String);

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StringOrNumber, D::Error> {
        /// Strings, and non-negative integers.
        struct TextVisitor;

        impl Visitor<'_> for TextVisitor {
            type Value = StringOrNumber;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a non-negative integer")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(value.to_owned()))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(value.to_string()))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<StringOrNumber, E> {
                if value < 0 {
                    Err(E::invalid_value(Unexpected::Signed(value), &self))
                } else {
                    Ok(StringOrNumber(value.to_string()))
                }
            }
        }

        deserializer.deserialize_any(TextVisitor)
    }
}

impl PartialSchema for StringOrNumber {
    fn schema() -> RefOr<Schema> {
        Schema::OneOf(
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::String))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
                .description(Some(
                    "a string, or a non-negative integer (stored and listed as its decimal text)",
                ))
                .build(),
        )
        .into()
    }
}

impl ToSchema for StringOrNumber {}

/// A string schema that allows exactly `values`.
fn string_enum(values: &[&str]) -> RefOr<Schema> {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied()))
            .build(),
    )
    .into()
}

/// Declares a schema-only type for the OpenAPI document: a string that is one of `values`.
macro_rules! string_enum_schema {
    ($(#[$doc:meta])* $name:ident, [$($value:literal),+]) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string_enum(&[$($value),+])
            }
        }

        impl ToSchema for $name {}
    };
}

string_enum_schema!(
    /// A RADIUS server's authentication protocol.
    RadiusProtocolName,
    ["PAP", "CHAP"]
);
string_enum_schema!(
    /// A TACACS+ server's authentication protocol.
    TacacsProtocolName,
    ["PAP", "ASCII"]
);
string_enum_schema!(
    /// `nas_id_type` as a request may spell it (`dyanmic` as the reference does once).
    NasIdTypeInput,
    ["custom", "dynamic", "dyanmic"]
);
string_enum_schema!(
    /// `nas_id_type` as `GET radius/settings` shows it.
    NasIdTypeName,
    ["custom", "dynamic"]
);

// ---------------------------------------------------------------------------------------------
// Reading request bodies: every failing field is named as the request spells it.

/// `(field, reason)` pairs for `error_info.fields`.
type FieldErrors = Vec<(String, String)>;

/// 400 naming the fields in `errors`.
fn invalid(errors: FieldErrors) -> ApiError {
    ApiError::invalid_fields("Invalid argument.", errors)
}

/// `name` inside `path`: `port`, `[1].port`, `authentication.use_nas_id`.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The body as JSON; 400 with serde's message when it is not.
fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("JSON error: {e}")))
}

/// Reads `value` (found at `path`) as a `T` whose fields are all optional. On failure each
/// offending member is tried on its own, so every bad field is named with serde's reason.
fn from_object<T: DeserializeOwned>(
    value: &Value,
    path: &str,
    errors: &mut FieldErrors,
) -> Option<T> {
    let Some(members) = value.as_object() else {
        let at = if path.is_empty() { "body" } else { path };
        errors.push((at.to_owned(), "must be a JSON object".to_owned()));
        return None;
    };
    match T::deserialize(value) {
        Ok(parsed) => Some(parsed),
        Err(whole) => {
            let before = errors.len();
            for (name, member) in members {
                let alone = Value::Object(Map::from_iter([(name.clone(), member.clone())]));
                if let Err(e) = T::deserialize(&alone) {
                    errors.push((join(path, name), e.to_string()));
                }
            }
            if errors.len() == before {
                let at = if path.is_empty() { "body" } else { path };
                errors.push((at.to_owned(), whole.to_string()));
            }
            None
        }
    }
}

/// A body that must be one JSON object.
fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value = parse_json(body)?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "JSON error: the body must be a JSON object",
        ));
    }
    let mut errors = Vec::new();
    from_object(&value, "", &mut errors).ok_or_else(|| invalid(errors))
}

/// A body that must be a JSON array of objects; entries are named `[0]`, `[1]`, ...
fn parse_array<T: DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, ApiError> {
    let value = parse_json(body)?;
    let Some(items) = value.as_array() else {
        return Err(ApiError::bad_request(
            "JSON error: the body must be a JSON array",
        ));
    };
    let mut errors = Vec::new();
    let parsed: Vec<Option<T>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| from_object(item, &format!("[{index}]"), &mut errors))
        .collect();
    if errors.is_empty() {
        Ok(parsed.into_iter().flatten().collect())
    } else {
        Err(invalid(errors))
    }
}

/// 400 naming each required field that is missing.
fn missing(fields: &[(&str, bool)]) -> ApiError {
    invalid(
        fields
            .iter()
            .filter(|(_, absent)| *absent)
            .map(|(name, _)| ((*name).to_owned(), "is required".to_owned()))
            .collect(),
    )
}

/// Validates a changed configuration inside an update, renaming the configuration's field
/// paths (`radius.servers[2].port`) to the request's (`port`) with `rename`; paths it does not
/// know stay as they are.
fn validated(config: &Config, rename: impl Fn(&str) -> Option<String>) -> Result<(), ApiError> {
    match config.validate() {
        Ok(_) => Ok(()),
        Err(ConfigError::Invalid(errors)) => Err(invalid(
            errors
                .into_iter()
                .map(|e| (rename(&e.path).unwrap_or(e.path), e.message))
                .collect(),
        )),
        Err(e) => Err(ApiError::internal("validate", e)),
    }
}

/// Splits `list[7].port` into `(7, ".port")` and `list[7]` into `(7, "")`.
fn list_entry<'a>(field: &'a str, list: &str) -> Option<(usize, &'a str)> {
    let rest = field.strip_prefix(list)?.strip_prefix('[')?;
    let (index, rest) = rest.split_once(']')?;
    let index = index.parse().ok()?;
    (rest.is_empty() || rest.starts_with('.')).then_some((index, rest))
}

/// The request's name for a field of the server at `index` of `list`: `port` for
/// `radius.servers[index].port`; a whole-server error (a duplicate) names `address`.
fn server_field(field: &str, list: &str, index: usize) -> Option<String> {
    match list_entry(field, list)? {
        (at, "") if at == index => Some("address".to_owned()),
        (at, rest) if at == index => Some(rest.trim_start_matches('.').to_owned()),
        _ => None,
    }
}

/// The request's name for a field of an entry of a list sent whole: `[i].port` for
/// `radius.servers[i].port`.
fn entry_field(field: &str, list: &str) -> Option<String> {
    list_entry(field, list).map(|(index, rest)| format!("[{index}]{rest}"))
}

/// The `{id}` of a server URL; anything that is not a configured id is 404, a segment that
/// does not even decode to UTF-8 included.
fn server_id(id: Result<Path<String>, PathRejection>, method: &str) -> Result<u32, ApiError> {
    let Path(id) = id.map_err(|e| {
        ApiError::not_found(format!(
            "No {method} server with that server_id ({}).",
            e.body_text()
        ))
    })?;
    id.parse()
        .map_err(|_| ApiError::not_found(format!("No {method} server with server_id {id:?}.")))
}

/// 404 for a server id that is not configured.
fn no_server(method: &str, id: u32) -> ApiError {
    ApiError::not_found(format!("No {method} server with server_id {id}."))
}

/// `1`/`0` for `enabled` in lists.
fn flag(enabled: bool) -> u8 {
    u8::from(enabled)
}

/// What the RADIUS and TACACS+ server lists have in common.
trait Listed {
    fn id(&self) -> u32;
    fn order(&self) -> u32;
    fn set_order(&mut self, order: u32);
}

impl Listed for RadiusServer {
    fn id(&self) -> u32 {
        self.id
    }
    fn order(&self) -> u32 {
        self.order
    }
    fn set_order(&mut self, order: u32) {
        self.order = order;
    }
}

impl Listed for TacacsServer {
    fn id(&self) -> u32 {
        self.id
    }
    fn order(&self) -> u32 {
        self.order
    }
    fn set_order(&mut self, order: u32) {
        self.order = order;
    }
}

/// Sorts the servers by `order` and renumbers them 0, 1, 2, ...: `order` is the index in the
/// try order, as the reference describes it.
fn renumber<S: Listed>(servers: &mut [S]) {
    servers.sort_by_key(Listed::order);
    for (index, server) in servers.iter_mut().enumerate() {
        server.set_order(u32::try_from(index).unwrap_or(u32::MAX));
    }
}

/// The id for a new server: one more than the largest in use (1 for the first).
fn next_id<S: Listed>(servers: &[S]) -> Result<u32, ApiError> {
    match servers.iter().map(Listed::id).max() {
        None => Ok(1),
        Some(max) => max
            .checked_add(1)
            .ok_or_else(|| ApiError::bad_request("No server id is left above the largest one.")),
    }
}

/// Servers sorted by `order`, as lists show them.
fn in_order<S: Listed>(servers: &[S]) -> Vec<&S> {
    let mut sorted: Vec<&S> = servers.iter().collect();
    sorted.sort_by_key(|server| server.order());
    sorted
}

// ---------------------------------------------------------------------------------------------
// Authentication sequences.

/// One authentication sequence.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthSequence {
    /// Unique id of the sequence, 1..=5.
    pub id: u8,
    /// The methods in the order they are tried, e.g. `Local, RADIUS, TACACS+`.
    pub authentication_sequence: String,
}

/// `POST current_auth_sequence` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCurrentAuthentication {
    /// Id of the authentication sequence, 1..=5.
    #[schema(value_type = u8, required = true, minimum = 1, maximum = 5)]
    pub id: Option<u64>,
}

/// Lists the supported authentication sequences.
#[utoipa::path(
    get,
    path = "/api/mgmt.remote_authentication/1.0/all_auth_sequences",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The five authentication sequences", body = Vec<AuthSequence>),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor", body = ErrorBody),
    )
)]
pub async fn list_auth_sequences(caller: Caller) -> Result<Json<Vec<AuthSequence>>, ApiError> {
    caller.require_reader()?;
    Ok(Json(
        SEQUENCES
            .iter()
            .map(|(id, _, name)| AuthSequence {
                id: *id,
                authentication_sequence: (*name).to_owned(),
            })
            .collect(),
    ))
}

/// The sequence that runs.
#[utoipa::path(
    get,
    path = "/api/mgmt.remote_authentication/1.0/current_auth_sequence",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The current authentication sequence", body = AuthSequence),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor", body = ErrorBody),
    )
)]
pub async fn current_auth_sequence(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<AuthSequence>, ApiError> {
    caller.require_reader()?;
    let id = state.store.current().config.authentication.current_sequence;
    let name = sequence_name(id)
        .ok_or_else(|| ApiError::internal("current sequence", format!("unknown id {id}")))?;
    Ok(Json(AuthSequence {
        id,
        authentication_sequence: name.to_owned(),
    }))
}

/// Chooses the sequence that runs.
#[utoipa::path(
    post,
    path = "/api/mgmt.remote_authentication/1.0/current_auth_sequence",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    request_body = SetCurrentAuthentication,
    responses(
        (status = 204, description = "Set"),
        (status = 400, description = "Malformed body or an id outside 1..=5", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn set_current_auth_sequence(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let request: SetCurrentAuthentication = parse_object(&body)?;
    let id = request.id.ok_or_else(|| missing(&[("id", true)]))?;
    let id = u8::try_from(id)
        .ok()
        .filter(|id| sequence_name(*id).is_some())
        .ok_or_else(|| {
            invalid(vec![(
                "id".to_owned(),
                format!(
                    "{id} is not an authentication sequence id ({FIRST_SEQUENCE}..={LAST_SEQUENCE})"
                ),
            )])
        })?;
    state
        .store
        .update(move |config| {
            config.authentication.current_sequence = id;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

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
}

impl RadiusServerView {
    fn new(server: &RadiusServer, uncloak: bool) -> RadiusServerView {
        RadiusServerView {
            server_id: server.id,
            port: server.port,
            order: server.order,
            address: server.address.clone(),
            protocol: server.protocol,
            secret: shown(&server.secret, uncloak),
            enabled: flag(server.enabled),
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

/// Ids for the entries of a reorder body: a configured `server_id` is kept (once), anything
/// else gets a new id above every configured one.
struct NewIds {
    configured: Vec<u32>,
    used: HashMap<u32, usize>,
    next: u32,
}

impl NewIds {
    fn new<S: Listed>(old: &[S]) -> Result<NewIds, ApiError> {
        Ok(NewIds {
            configured: old.iter().map(Listed::id).collect(),
            used: HashMap::new(),
            next: next_id(old)?,
        })
    }

    /// The id of entry `index`, or `None` after recording why it has none.
    fn resolve(
        &mut self,
        asked: Option<u32>,
        index: usize,
        errors: &mut FieldErrors,
    ) -> Option<u32> {
        if let Some(id) = asked {
            if let Some(first) = self.used.get(&id) {
                errors.push((
                    format!("[{index}].server_id"),
                    format!("{id} is already given to [{first}]"),
                ));
                return None;
            }
            self.used.insert(id, index);
            if self.configured.contains(&id) {
                return Some(id);
            }
        }
        let id = self.next;
        match self.next.checked_add(1) {
            Some(next) => self.next = next,
            None => {
                errors.push((
                    format!("[{index}]"),
                    "no server id is left above the largest one".to_owned(),
                ));
                return None;
            }
        }
        Some(id)
    }
}

/// The address and secret of a reorder entry that is a new server (both required; a
/// cloaked secret has nothing to keep), or `None` after recording what is wrong.
fn new_entry(
    index: usize,
    asked: Option<u32>,
    address: Option<&str>,
    secret: Option<&str>,
    errors: &mut FieldErrors,
) -> Option<(String, Secret)> {
    let before = errors.len();
    if address.is_none() {
        errors.push((
            format!("[{index}].address"),
            "is required for a new server".to_owned(),
        ));
    }
    match secret {
        None => errors.push((
            format!("[{index}].secret"),
            "is required for a new server".to_owned(),
        )),
        Some(CLOAK) => errors.push((
            format!("[{index}].secret"),
            match asked {
                Some(id) => format!(
                    "is the cloak, not a secret, and server_id {id} is not a configured server \
                     whose secret it could keep; send the real secret"
                ),
                None => "is the cloak, not a secret, and the entry names no configured \
                         server_id whose secret it could keep; send the real secret"
                    .to_owned(),
            },
        )),
        Some(_) => {}
    }
    match (address, secret) {
        (Some(address), Some(secret)) if errors.len() == before => {
            Some((address.to_owned(), Secret::new(secret)))
        }
        _ => None,
    }
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

// ---------------------------------------------------------------------------------------------
// Role mappings.

/// A role and the RADIUS attribute that grants it, as `GET radius/role_mapping` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RadiusRoleMappingView {
    /// Name of the role or permission.
    pub role: String,
    /// Attribute type (1..=255) or vendor id (256 and above); null when the role is not
    /// mapped.
    #[schema(required = true)]
    pub attribute: Option<u32>,
    /// The value the attribute must carry; null when the role is not mapped.
    #[schema(required = true)]
    pub attribute_value: Option<String>,
    /// The vendor sub-attribute type, listed only when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_type: Option<u8>,
}

/// One entry of a `POST radius/role_mapping` body. The roles named get exactly the mappings
/// given for them (an entry with null `attribute` and `attribute_value` leaves the role
/// unmapped); roles not named keep theirs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RadiusRoleMappingRequest {
    /// Name of the role or permission; one of the roles `GET radius/role_mapping` lists.
    #[schema(value_type = String, required = true, example = "Monitor")]
    pub role: Option<String>,
    /// Attribute type (1..=255) or vendor id (256 and above, e.g. 17164).
    #[schema(minimum = 1, maximum = 16_777_215)]
    pub attribute: Option<u32>,
    /// The value the attribute must carry.
    pub attribute_value: Option<String>,
    /// The vendor sub-attribute type that must carry the value (optional).
    pub vendor_type: Option<u8>,
}

/// Every role, with the RADIUS attribute that grants it or nulls.
#[utoipa::path(
    get,
    path = "/api/mgmt.remote_authentication/1.0/radius/role_mapping",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Every role and its mapping", body = Vec<RadiusRoleMappingView>),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor", body = ErrorBody),
    )
)]
pub async fn radius_role_mapping(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<RadiusRoleMappingView>>, ApiError> {
    caller.require_reader()?;
    let live = state.store.current();
    Ok(Json(mappings::list::<RadiusRoleMapping>(&live.config)))
}

/// Sets the RADIUS mappings of the roles named.
#[utoipa::path(
    post,
    path = "/api/mgmt.remote_authentication/1.0/radius/role_mapping",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    request_body = Vec<RadiusRoleMappingRequest>,
    responses(
        (status = 204, description = "Set"),
        (status = 400, description = "Malformed body or invalid fields (error_info.fields, e.g. `[0].attribute`)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn set_radius_role_mapping(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    mappings::set::<RadiusRoleMapping>(state, body).await
}

/// The role of mapping entry `index`: required and defined.
fn mapping_role(
    index: usize,
    role: Option<String>,
    roles: &[String],
    errors: &mut FieldErrors,
) -> Option<String> {
    match role {
        None => {
            errors.push((format!("[{index}].role"), "is required".to_owned()));
            None
        }
        Some(role) if !roles.contains(&role) => {
            errors.push((
                format!("[{index}].role"),
                format!("{role:?} is not a defined role"),
            ));
            None
        }
        Some(role) => Some(role),
    }
}

/// `Some(Some(pair))` for a mapping, `Some(None)` for "unmapped" (both null), `None` after
/// recording that only one of them is given.
fn mapping_pair<A>(
    index: usize,
    attribute: Option<A>,
    value: Option<String>,
    errors: &mut FieldErrors,
) -> Option<Option<(A, String)>> {
    match (attribute, value) {
        (Some(attribute), Some(value)) => Some(Some((attribute, value))),
        (None, None) => Some(None),
        (Some(_), None) => {
            errors.push((
                format!("[{index}].attribute_value"),
                "is required with attribute (null both to leave the role unmapped)".to_owned(),
            ));
            None
        }
        (None, Some(_)) => {
            errors.push((
                format!("[{index}].attribute"),
                "is required with attribute_value (null both to leave the role unmapped)"
                    .to_owned(),
            ));
            None
        }
    }
}

/// The request's name (`[i].attribute`) for a field of `list[k]`, where the entries from
/// `kept` on came from the body entries `origins`.
fn mapping_field(field: &str, list: &str, kept: usize, origins: &[usize]) -> Option<String> {
    let (at, rest) = list_entry(field, list)?;
    let origin = origins.get(at.checked_sub(kept)?)?;
    Some(format!("[{origin}]{rest}"))
}

/// A role and the TACACS+ AV pair that grants it, as `GET tacacs/role_mapping` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TacacsRoleMappingView {
    /// Name of the role or permission.
    pub role: String,
    /// AV pair name; null when the role is not mapped.
    #[schema(required = true)]
    pub attribute: Option<String>,
    /// AV pair value; null when the role is not mapped.
    #[schema(required = true)]
    pub attribute_value: Option<String>,
}

/// One entry of a `POST tacacs/role_mapping` body. The roles named get exactly the mappings
/// given for them (an entry with null `attribute` and `attribute_value` leaves the role
/// unmapped); roles not named keep theirs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TacacsRoleMappingRequest {
    /// Name of the role or permission; one of the roles `GET tacacs/role_mapping` lists.
    #[schema(value_type = String, required = true, example = "Monitor")]
    pub role: Option<String>,
    /// AV pair name, e.g. `priv-lvl`.
    pub attribute: Option<StringOrNumber>,
    /// AV pair value, matched exactly.
    pub attribute_value: Option<String>,
}

/// Every role, with the TACACS+ AV pair that grants it or nulls.
#[utoipa::path(
    get,
    path = "/api/mgmt.remote_authentication/1.0/tacacs/role_mapping",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Every role and its mapping", body = Vec<TacacsRoleMappingView>),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor", body = ErrorBody),
    )
)]
pub async fn tacacs_role_mapping(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<TacacsRoleMappingView>>, ApiError> {
    caller.require_reader()?;
    let live = state.store.current();
    Ok(Json(mappings::list::<TacacsRoleMapping>(&live.config)))
}

/// Sets the TACACS+ mappings of the roles named.
#[utoipa::path(
    post,
    path = "/api/mgmt.remote_authentication/1.0/tacacs/role_mapping",
    tag = "remote_authentication",
    security(("basic" = []), ("bearer" = [])),
    request_body = Vec<TacacsRoleMappingRequest>,
    responses(
        (status = 204, description = "Set"),
        (status = 400, description = "Malformed body or invalid fields (error_info.fields, e.g. `[0].attribute`)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not an Administrator", body = ErrorBody),
    )
)]
pub async fn set_tacacs_role_mapping(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    mappings::set::<TacacsRoleMapping>(state, body).await
}

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
}

impl TacacsServerView {
    fn new(server: &TacacsServer, uncloak: bool) -> TacacsServerView {
        TacacsServerView {
            server_id: server.id,
            port: server.port,
            order: server.order,
            address: server.address.clone(),
            protocol: server.protocol,
            client_port: server.client_port.clone(),
            secret: shown(&server.secret, uncloak),
            enabled: flag(server.enabled),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: &ApiError) -> Vec<String> {
        error.error_info.as_ref().unwrap()["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn flag_accepts_booleans_and_one_or_zero() {
        for (text, expected) in [("true", true), ("false", false), ("1", true), ("0", false)] {
            assert_eq!(serde_json::from_str::<Flag>(text).unwrap(), Flag(expected));
        }
        for text in ["2", "-1", "1.0", "\"true\"", "null"] {
            let error = serde_json::from_str::<Flag>(text).unwrap_err();
            assert!(
                error.to_string().contains("true, false, 1 or 0"),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn string_or_number_keeps_text() {
        assert_eq!(
            serde_json::from_str::<StringOrNumber>("70").unwrap().0,
            "70"
        );
        assert_eq!(
            serde_json::from_str::<StringOrNumber>("\"tty10\"")
                .unwrap()
                .0,
            "tty10"
        );
        assert!(serde_json::from_str::<StringOrNumber>("-1").is_err());
        assert!(serde_json::from_str::<StringOrNumber>("1.5").is_err());
        assert!(serde_json::from_str::<StringOrNumber>("true").is_err());
    }

    #[test]
    fn every_bad_field_is_named() {
        let error = parse_object::<TacacsServerRequest>(
            br#"{"address": 7, "port": 70000, "secret": "s", "enabled": 2, "extra": 1}"#,
        )
        .unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        let mut named = fields(&error);
        named.sort();
        assert_eq!(named, ["address", "enabled", "extra", "port"]);

        let error = parse_array::<RadiusReorderEntry>(br#"[{"port": 1812}, {"port": "x"}, 3]"#)
            .unwrap_err();
        assert_eq!(fields(&error), ["[1].port", "[2]"]);

        let malformed = parse_object::<TacacsServerRequest>(b"{nope").unwrap_err();
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        assert!(malformed.error_text.starts_with("JSON error"));
        assert!(parse_object::<TacacsServerRequest>(b"[]").is_err());
        assert!(parse_array::<RadiusReorderEntry>(b"{}").is_err());
    }

    #[test]
    fn configuration_paths_become_request_paths() {
        assert_eq!(
            list_entry("radius.servers[3].port", "radius.servers"),
            Some((3, ".port"))
        );
        assert_eq!(
            list_entry("radius.servers[3]", "radius.servers"),
            Some((3, ""))
        );
        assert_eq!(list_entry("radius.serversX[3]", "radius.servers"), None);
        assert_eq!(
            server_field("tacacs.servers[1].client_port", "tacacs.servers", 1).as_deref(),
            Some("client_port")
        );
        assert_eq!(
            server_field("tacacs.servers[1]", "tacacs.servers", 1).as_deref(),
            Some("address")
        );
        assert_eq!(
            server_field("tacacs.servers[0].port", "tacacs.servers", 1),
            None
        );
        assert_eq!(
            entry_field("radius.servers[2].secret", "radius.servers").as_deref(),
            Some("[2].secret")
        );
        assert_eq!(
            mapping_field(
                "radius.role_mappings[4].attribute",
                "radius.role_mappings",
                3,
                &[0, 5]
            )
            .as_deref(),
            Some("[5].attribute")
        );
        assert_eq!(
            mapping_field(
                "radius.role_mappings[1].attribute",
                "radius.role_mappings",
                3,
                &[0]
            ),
            None
        );
    }

    #[test]
    fn renumbering_keeps_the_try_order() {
        let server = |id, order| TacacsServer {
            id,
            order,
            address: format!("10.0.0.{id}"),
            port: 49,
            secret: Secret::new("0123456789abcdef"),
            protocol: TacacsProtocol::Pap,
            client_port: String::new(),
            enabled: true,
        };
        let mut servers = vec![server(1, 20), server(7, 10), server(3, 30)];
        renumber(&mut servers);
        let listed: Vec<(u32, u32)> = servers.iter().map(|s| (s.id, s.order)).collect();
        assert_eq!(listed, [(7, 0), (1, 1), (3, 2)]);
        assert_eq!(next_id(&servers).unwrap(), 8);
        assert_eq!(next_id::<TacacsServer>(&[]).unwrap(), 1);
    }
}
