//! `/api/mgmt.radius_frontend/1.0/clients`: the RADIUS clients (NASes) the RADIUS front-end
//! answers, `[[radius_frontend.clients]]` of the configuration.
//!
//! Reads need `Administrator` or `Monitor`, writes `Administrator`. Secrets are listed as
//! `****************` unless the URL carries `uncloak` (Administrators only); a `PUT` that
//! sends the cloak back keeps the configured secret, a `POST` that sends it is refused.
//!
//! RadSec (RFC 6614) clients are the same objects with the optional extensions `transport`
//! (`udp`, the default, or `tls`), `tls_ca` (required over TLS) and `tls_name`. A list shows
//! them only when set (`transport` only when `tls`); over TLS the secret may be left out, the
//! client then uses RFC 6614's `radsec`, and a list shows such a client's secret as `""`. In
//! a `PUT`, an empty string removes `tls_ca`, `tls_name` or (over TLS) the secret.
//!
//! Every write goes through [`ConfigStore::update`](crate::live::ConfigStore::change): it is
//! validated, saved atomically and made live, or nothing changes. The front-end reads the live
//! configuration for every packet, so a change applies to the next request. Invalid requests
//! answer 400 with `error_info.fields` naming each failing field (`address`, `secret`,
//! `tls_ca`, ...); unknown client ids answer 404.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_config::{
    CLOAK, Config, ConfigError, FrontendClient, RadiusTransport, RequireMessageAuthenticator,
    Secret,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::cloak::{keeps_secret, shown, wants_uncloak};
use super::error::{ApiError, ErrorBody};

/// The configuration list the clients live in, as validation paths name it.
const CLIENTS: &str = "radius_frontend.clients";

/// The RADIUS front-end client routes.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_clients, add_client))
        .routes(routes!(update_client, delete_client))
}

/// `require_message_authenticator`: whether the client's requests must carry a valid
/// Message-Authenticator (RFC 3579 §3.2). `yes`: always; `no`: never required, verified when
/// present; `auto`: required once the client has sent one valid Message-Authenticator.
#[derive(Debug)]
pub struct MessageAuthenticatorPolicy;

impl PartialSchema for MessageAuthenticatorPolicy {
    fn schema() -> RefOr<Schema> {
        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["yes", "no", "auto"]))
                .build(),
        )
        .into()
    }
}

impl ToSchema for MessageAuthenticatorPolicy {}

/// `transport` (an extension): how the client reaches the front-end. `udp`: datagrams to
/// `listeners.radius_frontend`; `tls`: RadSec (RFC 6614) connections to `listeners.radsec`
/// with a certificate signed by the client's `tls_ca`.
#[derive(Debug)]
pub struct RadiusClientTransport;

impl PartialSchema for RadiusClientTransport {
    fn schema() -> RefOr<Schema> {
        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["udp", "tls"]))
                .build(),
        )
        .into()
    }
}

impl ToSchema for RadiusClientTransport {}

/// A RADIUS client as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RadiusClientView {
    /// Unique id of the client, used in its URL.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub id: u32,
    /// A name for logs.
    pub name: String,
    /// The source address the client sends from: an IP address or a CIDR network.
    pub address: String,
    /// Shared secret, `****************` unless the URL carries `uncloak`; `""` for a TLS
    /// client without one (it uses RFC 6614's `radsec`). Sent back as shown in a `PUT`, it
    /// keeps what is configured.
    pub secret: String,
    /// `yes`, `no` or `auto`.
    #[schema(value_type = MessageAuthenticatorPolicy)]
    pub require_message_authenticator: RequireMessageAuthenticator,
    /// Extension: `tls` for a RadSec client (RFC 6614); absent for UDP.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<RadiusClientTransport>, nullable = false)]
    pub transport: Option<RadiusTransport>,
    /// Extension: the PEM CA bundle the client's certificate is verified with, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub tls_ca: Option<String>,
    /// Extension: the name (DNS name or IP address) the client's certificate must carry,
    /// when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub tls_name: Option<String>,
}

impl RadiusClientView {
    fn new(client: &FrontendClient, uncloak: bool) -> RadiusClientView {
        let tls = client.transport == RadiusTransport::Tls;
        RadiusClientView {
            id: client.id,
            name: client.name.clone(),
            address: client.address.clone(),
            // No secret to hide: the client uses the public default `radsec`. Shown as it is,
            // so that a `PUT` of the entry keeps it (an empty secret is valid over TLS only).
            secret: if tls && client.secret.is_empty() {
                String::new()
            } else {
                shown(&client.secret, uncloak)
            },
            require_message_authenticator: client.require_message_authenticator,
            transport: tls.then_some(client.transport),
            tls_ca: client.tls_ca.clone(),
            tls_name: client.tls_name.clone(),
        }
    }
}

/// `POST /api/mgmt.radius_frontend/1.0/clients` body. `require_message_authenticator`
/// defaults to `auto`, `transport` to `udp`; the id is chosen by the server. `secret` is
/// required over UDP; over TLS it may be left out (or empty): the client then uses RFC 6614's
/// `radsec`.
// For the OpenAPI document only: the handler reads a `NewClientRequest` so that it can name
// every missing field at once.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRadiusClient {
    /// A name for logs, not empty and without control characters.
    #[schema(min_length = 1, example = "ssh-pam")]
    pub name: String,
    /// The source address the client sends from: an IPv4 or IPv6 address, or a CIDR network
    /// without host bits (`10.0.0.0/8`, `2001:db8::/32`). A packet belongs to the client with
    /// the longest matching prefix; two clients of the same transport cannot have the same
    /// address.
    #[schema(min_length = 1, example = "127.0.0.1")]
    pub address: String,
    /// Shared secret, not the cloak; should be 16 bytes or more. Required over UDP; over TLS
    /// it may be left out or empty, the client then uses `radsec` (RFC 6614 §2.3).
    #[schema(nullable = false, example = "s3cr3t-shared-with-the-client")]
    pub secret: Option<String>,
    /// `yes`, `no` or `auto`. Default: `auto`.
    #[schema(value_type = MessageAuthenticatorPolicy, required = false, default = "auto")]
    pub require_message_authenticator: Option<RequireMessageAuthenticator>,
    /// Extension: `udp` (default) or `tls` (RadSec, RFC 6614: the client connects to
    /// `listeners.radsec` with a certificate signed by `tls_ca`).
    #[schema(value_type = Option<RadiusClientTransport>, nullable = false, default = "udp")]
    pub transport: Option<RadiusTransport>,
    /// Extension, required with `transport` `tls`: absolute path of the PEM bundle of the CAs
    /// that may sign the client's certificate.
    #[schema(nullable = false, example = "/etc/portcullis/radsec-clients-ca.pem")]
    pub tls_ca: Option<String>,
    /// Extension, with `transport` `tls`: a DNS name or IP address the client's certificate
    /// must carry as a subject alternative name; absent: any certificate `tls_ca` signed.
    #[schema(nullable = false, example = "vpn-1.example.net")]
    pub tls_name: Option<String>,
}

/// What the handler of `POST .../clients` reads: every field optional, so that every missing
/// one is named.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClientRequest {
    name: Option<String>,
    address: Option<String>,
    secret: Option<String>,
    require_message_authenticator: Option<RequireMessageAuthenticator>,
    transport: Option<RadiusTransport>,
    tls_ca: Option<String>,
    tls_name: Option<String>,
}

/// `PUT /api/mgmt.radius_frontend/1.0/clients/{id}` body: the fields given change, the others
/// are kept; the cloaked secret keeps the configured one. An empty string removes `tls_ca`,
/// `tls_name` or, over TLS, the secret. The result is validated as a whole: `transport`
/// `udp` with `tls_ca` or `tls_name` still set, or `tls` without a `tls_ca`, is refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RadiusClientUpdate {
    /// The client's id, if given; must equal the id in the path (ids cannot change). Lets a
    /// `GET` entry be sent back as it is.
    #[schema(format = Int64, maximum = 4_294_967_295_u64, nullable = false)]
    pub id: Option<u32>,
    /// A name for logs, not empty and without control characters.
    #[schema(min_length = 1, nullable = false)]
    pub name: Option<String>,
    /// An IPv4 or IPv6 address, or a CIDR network without host bits.
    #[schema(min_length = 1, nullable = false, example = "10.0.0.0/8")]
    pub address: Option<String>,
    /// Shared secret; the cloak `****************` keeps the configured one. Empty: no
    /// secret, which only a TLS client may have (it then uses `radsec`).
    #[schema(nullable = false)]
    pub secret: Option<String>,
    /// `yes`, `no` or `auto`.
    #[schema(value_type = MessageAuthenticatorPolicy, required = false)]
    pub require_message_authenticator: Option<RequireMessageAuthenticator>,
    /// Extension: `udp` or `tls` (RadSec, RFC 6614).
    #[schema(value_type = Option<RadiusClientTransport>, nullable = false)]
    pub transport: Option<RadiusTransport>,
    /// Extension: absolute path of the PEM CA bundle that signs the client's certificate
    /// (required over TLS); an empty string removes it.
    #[schema(nullable = false)]
    pub tls_ca: Option<String>,
    /// Extension: a DNS name or IP address the client's certificate must carry; an empty
    /// string removes it.
    #[schema(nullable = false)]
    pub tls_name: Option<String>,
}

/// Lists the RADIUS front-end's clients in configuration order.
#[utoipa::path(
    get,
    path = "/api/mgmt.radius_frontend/1.0/clients",
    tag = "radius_frontend",
    security(("basic" = []), ("bearer" = [])),
    params(("uncloak" = Option<String>, Query, description = "Show the secrets (Administrator only); any value or none")),
    responses(
        (status = 200, description = "The clients", body = Vec<RadiusClientView>),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Neither Administrator nor Monitor, or uncloak without Administrator", body = ErrorBody),
    )
)]
pub async fn list_clients(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<RadiusClientView>>, ApiError> {
    caller.require_reader()?;
    let uncloak = wants_uncloak(&caller, query.as_deref())?;
    let live = state.store.current();
    Ok(Json(
        live.config
            .radius_frontend
            .clients
            .iter()
            .map(|client| RadiusClientView::new(client, uncloak))
            .collect(),
    ))
}

/// Adds a client; its `id` is one more than the largest in use (1 for the first).
#[utoipa::path(
    post,
    path = "/api/mgmt.radius_frontend/1.0/clients",
    tag = "radius_frontend",
    security(("basic" = []), ("bearer" = [])),
    request_body = NewRadiusClient,
    responses(
        (status = 201, description = "Client added (secret cloaked)", body = RadiusClientView),
        (status = 400, description = "Malformed JSON or invalid fields (error_info.fields names them)", body = ErrorBody),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
    )
)]
pub async fn add_client(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    // Over TLS the secret may be left out (RFC 6614 §2.3); over UDP it stays required.
    let required: &[&str] = if asks_tls(&body) {
        &["name", "address"]
    } else {
        &["name", "address", "secret"]
    };
    let request: NewClientRequest = parse_object(&body, required)?;
    let transport = request.transport.unwrap_or_default();
    let secret = match request.secret {
        None if transport == RadiusTransport::Tls => Some(String::new()),
        secret => secret,
    };
    let (Some(name), Some(address), Some(secret)) = (request.name, request.address, secret) else {
        return Err(ApiError::bad_request(
            "name, address and secret are required.",
        ));
    };
    let client = state
        .store
        .update(move |config| {
            let clients = &mut config.radius_frontend.clients;
            let id = next_id(clients)?;
            clients.push(FrontendClient {
                id,
                name,
                address,
                secret: Secret::new(secret),
                require_message_authenticator: request
                    .require_message_authenticator
                    .unwrap_or_default(),
                transport,
                tls_ca: given(request.tls_ca),
                tls_name: given(request.tls_name),
            });
            let index = clients.len() - 1;
            let client = clients[index].clone();
            validated(config, index, true)?;
            Ok(client)
        })
        .await?;
    tracing::info!(
        caller = %caller.user,
        id = client.id,
        client = %client.name,
        address = %client.address,
        "RADIUS front-end client added"
    );
    Ok((
        StatusCode::CREATED,
        Json(RadiusClientView::new(&client, false)),
    )
        .into_response())
}

/// Changes a client: the fields given, keeping the others (and the secret when it is absent
/// or cloaked).
#[utoipa::path(
    put,
    path = "/api/mgmt.radius_frontend/1.0/clients/{id}",
    tag = "radius_frontend",
    security(("basic" = []), ("bearer" = [])),
    params(("id" = u32, Path, description = "id of the client")),
    request_body = RadiusClientUpdate,
    responses(
        (status = 200, description = "Client updated (secret cloaked)", body = RadiusClientView),
        (status = 400, description = "Malformed JSON or invalid fields (error_info.fields names them)", body = ErrorBody),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = ErrorBody),
        (status = 404, description = "No client with this id", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
    )
)]
pub async fn update_client(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<RadiusClientView>, ApiError> {
    caller.require_admin()?;
    let id = client_id(id)?;
    let update: RadiusClientUpdate = parse_object(&body, &[])?;
    let client = state
        .store
        .update(move |config| {
            let clients = &mut config.radius_frontend.clients;
            let index = clients
                .iter()
                .position(|client| client.id == id)
                .ok_or_else(|| no_client(id))?;
            if update.id.is_some_and(|asked| asked != id) {
                return Err(ApiError::invalid_fields(
                    "Invalid argument.",
                    vec![(
                        "id".into(),
                        format!("differs from the id in the path ({id}); ids cannot change"),
                    )],
                ));
            }
            let client = &mut clients[index];
            if let Some(name) = update.name {
                client.name = name;
            }
            if let Some(address) = update.address {
                client.address = address;
            }
            if let Some(secret) = update.secret.filter(|secret| !keeps_secret(Some(secret))) {
                client.secret = Secret::new(secret);
            }
            if let Some(policy) = update.require_message_authenticator {
                client.require_message_authenticator = policy;
            }
            if let Some(transport) = update.transport {
                client.transport = transport;
            }
            if let Some(ca) = update.tls_ca {
                client.tls_ca = given(Some(ca));
            }
            if let Some(name) = update.tls_name {
                client.tls_name = given(Some(name));
            }
            let client = client.clone();
            validated(config, index, false)?;
            Ok(client)
        })
        .await?;
    tracing::info!(
        caller = %caller.user,
        id,
        client = %client.name,
        address = %client.address,
        "RADIUS front-end client updated"
    );
    Ok(Json(RadiusClientView::new(&client, false)))
}

/// Deletes a client: its packets are dropped from the next one on.
#[utoipa::path(
    delete,
    path = "/api/mgmt.radius_frontend/1.0/clients/{id}",
    tag = "radius_frontend",
    security(("basic" = []), ("bearer" = [])),
    params(("id" = u32, Path, description = "id of the client")),
    responses(
        (status = 204, description = "Client deleted"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = ErrorBody),
        (status = 404, description = "No client with this id", body = ErrorBody),
    )
)]
pub async fn delete_client(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let id = client_id(id)?;
    let client = state
        .store
        .update(move |config| {
            let clients = &mut config.radius_frontend.clients;
            let index = clients
                .iter()
                .position(|client| client.id == id)
                .ok_or_else(|| no_client(id))?;
            Ok(clients.remove(index))
        })
        .await?;
    tracing::info!(
        caller = %caller.user,
        id,
        client = %client.name,
        address = %client.address,
        "RADIUS front-end client deleted"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The `{id}` of a client URL; anything that is not a configured id is 404, a segment that
/// does not even decode to UTF-8 included.
fn client_id(id: Result<Path<String>, PathRejection>) -> Result<u32, ApiError> {
    let Path(id) = id.map_err(|e| {
        ApiError::not_found(format!(
            "No RADIUS client with that id ({}).",
            e.body_text()
        ))
    })?;
    id.parse()
        .map_err(|_| ApiError::not_found(format!("No RADIUS client with id {id:?}.")))
}

/// 404 for a client id that is not configured.
fn no_client(id: u32) -> ApiError {
    ApiError::not_found(format!("No RADIUS client with id {id}."))
}

/// The id for a new client: one more than the largest in use (1 for the first).
fn next_id(clients: &[FrontendClient]) -> Result<u32, ApiError> {
    match clients.iter().map(|client| client.id).max() {
        None => Ok(1),
        Some(max) => max
            .checked_add(1)
            .ok_or_else(|| ApiError::bad_request("No client id is left above the largest one.")),
    }
}

/// Whether a request body asks for `"transport": "tls"` (a body that does not parse does not;
/// `parse_object` names what is wrong with it).
fn asks_tls(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|value| value.get("transport").and_then(Value::as_str) == Some("tls"))
}

/// An optional key as a request gives it: an empty string is no value.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

/// 400 naming the fields in `errors`.
fn invalid(errors: Vec<(String, String)>) -> ApiError {
    ApiError::invalid_fields("Invalid argument.", errors)
}

/// A body that must be one JSON object whose members are all optional in `T` but for
/// `required`. Every bad or missing member is named, with serde's reason for a bad one;
/// `null` is refused (leave the member out instead).
fn parse_object<T: DeserializeOwned>(body: &[u8], required: &[&str]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("JSON error: {e}")))?;
    let Some(members) = value.as_object() else {
        return Err(ApiError::bad_request(
            "JSON error: the body must be a JSON object",
        ));
    };
    let mut errors: Vec<(String, String)> = required
        .iter()
        .filter(|name| !members.contains_key(**name))
        .map(|name| ((*name).to_owned(), "is required".to_owned()))
        .collect();
    for (name, member) in members {
        let alone = Value::Object(Map::from_iter([(name.clone(), member.clone())]));
        if member.is_null() {
            errors.push((name.clone(), "must not be null".to_owned()));
        } else if let Err(e) = T::deserialize(&alone) {
            errors.push((name.clone(), e.to_string()));
        }
    }
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    T::deserialize(&value).map_err(|e| invalid(vec![("body".to_owned(), e.to_string())]))
}

/// Splits `radius_frontend.clients[7].address` into `(7, "address")`.
fn client_field(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix(CLIENTS)?.strip_prefix('[')?;
    let (index, rest) = rest.split_once(']')?;
    Some((index.parse().ok()?, rest.trim_start_matches('.')))
}

/// Validates a configuration whose client at `index` was added (`new`) or changed. Errors
/// about that client name the request's fields (`address`, not
/// `radius_frontend.clients[3].address`); an address another client has is reported with
/// that client's id. The same address over UDP and over TLS is two clients, not a duplicate.
fn validated(config: &Config, index: usize, new: bool) -> Result<(), ApiError> {
    let clients = &config.radius_frontend.clients;
    let target = &clients[index];
    let mut errors = Vec::new();
    let network = target.network();
    let duplicate = clients.iter().enumerate().find(|(at, other)| {
        *at != index
            && network.is_some()
            && other.network() == network
            && other.transport == target.transport
    });
    if let (Some(net), Some((_, other))) = (network, duplicate) {
        errors.push((
            "address".to_owned(),
            format!(
                "{net} is already the address of client {} ({:?})",
                other.id, other.name
            ),
        ));
    }
    match config.validate() {
        Ok(_) => {}
        Err(ConfigError::Invalid(found)) => {
            for error in found {
                match client_field(&error.path) {
                    // The duplicate, reported above.
                    Some((_, "address")) if duplicate.is_some() => {}
                    Some((at, field)) if at == index => {
                        let message = if new && field == "secret" && target.secret.expose() == CLOAK
                        {
                            format!(
                                "is the cloak {CLOAK:?} the API shows in place of a secret; a \
                                 new client needs its real secret"
                            )
                        } else {
                            error.message
                        };
                        errors.push((field.to_owned(), message));
                    }
                    _ => errors.push((error.path, error.message)),
                }
            }
        }
        Err(e) => return Err(ApiError::internal("validate", e)),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_names(error: &ApiError) -> Vec<String> {
        error.error_info.as_ref().unwrap()["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_string())
            .collect()
    }

    fn client(id: u32, address: &str) -> FrontendClient {
        FrontendClient {
            id,
            name: format!("client-{id}"),
            address: address.into(),
            secret: Secret::new("a-secret-of-sixteen-bytes"),
            require_message_authenticator: RequireMessageAuthenticator::Auto,
            transport: Default::default(),
            tls_ca: None,
            tls_name: None,
        }
    }

    #[test]
    fn bodies_name_every_bad_field() {
        let request: NewClientRequest = parse_object(
            br#"{"name": "pam", "require_message_authenticator": "yes"}"#,
            &[],
        )
        .unwrap();
        assert_eq!(request.name.as_deref(), Some("pam"));
        assert_eq!(
            request.require_message_authenticator,
            Some(RequireMessageAuthenticator::Yes)
        );
        assert!(request.address.is_none() && request.secret.is_none());

        let malformed = parse_object::<NewClientRequest>(b"{nope", &[]).unwrap_err();
        assert!(malformed.error_text.starts_with("JSON error"));
        assert_eq!(
            parse_object::<NewClientRequest>(b"[]", &[])
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );

        let wrong = parse_object::<NewClientRequest>(
            br#"{"name": 1, "address": null, "require_message_authenticator": "maybe", "id": 3}"#,
            &["name", "address", "secret"],
        )
        .unwrap_err();
        let mut names = field_names(&wrong);
        names.sort();
        assert_eq!(
            names,
            [
                "address",
                "id",
                "name",
                "require_message_authenticator",
                "secret"
            ]
        );

        let update: RadiusClientUpdate = parse_object(br#"{"id": 4, "secret": "x"}"#, &[]).unwrap();
        assert_eq!(update.id, Some(4));
        assert!(parse_object::<RadiusClientUpdate>(br#"{"id": -1}"#, &[]).is_err());
    }

    #[test]
    fn ids_follow_the_largest() {
        assert_eq!(next_id(&[]).unwrap(), 1);
        assert_eq!(
            next_id(&[client(7, "10.0.0.1"), client(3, "10.0.0.2")]).unwrap(),
            8
        );
        assert!(next_id(&[client(u32::MAX, "10.0.0.1")]).is_err());
    }

    #[test]
    fn validation_names_the_request_fields() {
        let mut config = Config::default();
        config.radius_frontend.clients = vec![client(1, "10.0.0.0/8"), client(2, "10.0.0.1")];
        assert!(validated(&config, 1, true).is_ok());

        config.radius_frontend.clients[1].address = "10.0.0.0/8".into();
        let duplicate = validated(&config, 1, false).unwrap_err();
        assert_eq!(field_names(&duplicate), ["address"]);
        let text = duplicate.error_info.as_ref().unwrap().to_string();
        assert!(text.contains("client 1"), "{text}");
        // Also when the changed client comes first.
        assert_eq!(
            field_names(&validated(&config, 0, false).unwrap_err()),
            ["address"]
        );

        config.radius_frontend.clients[1].address = "10.0.0.1/8".into();
        config.radius_frontend.clients[1].secret = Secret::new(CLOAK);
        config.radius_frontend.clients[1].name = " ".into();
        let mut names = field_names(&validated(&config, 1, true).unwrap_err());
        names.sort();
        assert_eq!(names, ["address", "name", "secret"]);
    }

    #[test]
    fn views_cloak_secrets() {
        let client = client(1, "127.0.0.1");
        let cloaked = RadiusClientView::new(&client, false);
        assert_eq!(cloaked.secret, CLOAK);
        assert_eq!(
            serde_json::to_value(&cloaked).unwrap(),
            serde_json::json!({
                "id": 1,
                "name": "client-1",
                "address": "127.0.0.1",
                "secret": CLOAK,
                "require_message_authenticator": "auto",
            })
        );
        assert_eq!(
            RadiusClientView::new(&client, true).secret,
            "a-secret-of-sixteen-bytes"
        );
    }

    #[test]
    fn radsec_clients_show_their_extensions() {
        let radsec = FrontendClient {
            secret: Secret::new(""),
            transport: RadiusTransport::Tls,
            tls_ca: Some("/etc/ssl/vpn-ca.pem".into()),
            tls_name: Some("vpn.example.net".into()),
            ..client(2, "10.0.0.0/8")
        };
        // No secret: "" whether cloaked or not (the client uses the public `radsec`).
        for uncloak in [false, true] {
            assert_eq!(
                serde_json::to_value(RadiusClientView::new(&radsec, uncloak)).unwrap(),
                serde_json::json!({
                    "id": 2,
                    "name": "client-2",
                    "address": "10.0.0.0/8",
                    "secret": "",
                    "require_message_authenticator": "auto",
                    "transport": "tls",
                    "tls_ca": "/etc/ssl/vpn-ca.pem",
                    "tls_name": "vpn.example.net",
                })
            );
        }
        // A configured secret is cloaked as over UDP.
        let keyed = FrontendClient {
            secret: Secret::new("a-secret-of-sixteen-bytes"),
            tls_name: None,
            ..radsec.clone()
        };
        let view = serde_json::to_value(RadiusClientView::new(&keyed, false)).unwrap();
        assert_eq!(view["secret"], CLOAK);
        assert!(view.get("tls_name").is_none(), "{view}");

        // The same network over UDP and over TLS is two clients.
        let mut config = Config::default();
        config.radius_frontend.clients = vec![client(1, "10.0.0.0/8"), radsec];
        assert!(validated(&config, 1, true).is_ok());
        assert!(validated(&config, 0, false).is_ok());
        // Back to UDP with the TLS keys still set, and no secret.
        config.radius_frontend.clients[1].transport = RadiusTransport::Udp;
        let mut names = field_names(&validated(&config, 1, false).unwrap_err());
        names.sort();
        assert_eq!(names, ["address", "secret", "transport"]);
        // TLS without a CA, and with a relative one.
        config.radius_frontend.clients[1].transport = RadiusTransport::Tls;
        config.radius_frontend.clients[1].tls_ca = None;
        assert_eq!(
            field_names(&validated(&config, 1, false).unwrap_err()),
            ["tls_ca"]
        );
        config.radius_frontend.clients[1].tls_ca = Some("ca.pem".into());
        assert_eq!(
            field_names(&validated(&config, 1, false).unwrap_err()),
            ["tls_ca"]
        );
    }

    #[test]
    fn tls_requests() {
        assert!(asks_tls(br#"{"transport": "tls"}"#));
        for body in [
            &br#"{"transport": "udp"}"#[..],
            br#"{"transport": "TLS"}"#,
            br#"{"transport": ["tls"]}"#,
            br#"{}"#,
            b"[]",
            b"{nope",
        ] {
            assert!(!asks_tls(body), "{}", String::from_utf8_lossy(body));
        }
        let request: NewClientRequest = parse_object(
            br#"{"name": "vpn", "address": "10.0.0.0/8", "transport": "tls", "tls_ca": "/ca.pem"}"#,
            &["name", "address"],
        )
        .unwrap();
        assert_eq!(request.transport, Some(RadiusTransport::Tls));
        assert_eq!(request.tls_ca.as_deref(), Some("/ca.pem"));
        assert!(request.secret.is_none() && request.tls_name.is_none());
        let update: RadiusClientUpdate = parse_object(
            br#"{"transport": "udp", "tls_ca": "", "tls_name": ""}"#,
            &[],
        )
        .unwrap();
        assert_eq!(update.transport, Some(RadiusTransport::Udp));
        assert_eq!(given(update.tls_ca), None);
        assert_eq!(given(Some("vpn".into())).as_deref(), Some("vpn"));
        let wrong = parse_object::<RadiusClientUpdate>(
            br#"{"transport": "quic", "tls_ca": 1, "tls_server_name": "x"}"#,
            &[],
        )
        .unwrap_err();
        let mut names = field_names(&wrong);
        names.sort();
        assert_eq!(names, ["tls_ca", "tls_server_name", "transport"]);
    }
}
