//! The RADIUS and TACACS+ server lists, managed once: list, add, update, delete, delete all
//! and reorder, generic over [`Remote`], which says what differs between the two (the
//! configuration list, the defaults of a new server, the request and view types). The
//! routes in `mod.rs` are the per-protocol paths and OpenAPI descriptions around these.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::http::StatusCode;
use portcullis_config::{
    CLOAK, Config, DEFAULT_RADIUS_PORT, DEFAULT_RADSEC_PORT, DEFAULT_TACACS_PORT,
    DEFAULT_TACACS_TLS_PORT, RadiusServer, RadiusTransport, RequireMessageAuthenticator, Secret,
    TacacsServer, TacacsTransport,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    FieldErrors, Flag, Listed, RadiusReorderEntry, RadiusServerRequest, RadiusServerView,
    StringOrNumber, TacacsReorderEntry, TacacsServerRequest, TacacsServerView, entry_field,
    in_order, invalid, missing, next_id, no_server, parse_array, parse_object, renumber,
    server_field, validated,
};
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::cloak::{keeps_secret, wants_uncloak};
use crate::api::error::ApiError;

/// What a request changes on a server: the address and secret (which a new server needs),
/// and the protocol's other fields.
pub(super) struct Change<S> {
    address: Option<String>,
    secret: Option<String>,
    rest: Box<dyn FnOnce(&mut S) + Send>,
}

impl<S: Remote> Change<S> {
    /// An empty secret is refused as the schema says (`minLength` 1), even for a server
    /// whose transport does not use one (TACACS+ over TLS): leave it out instead.
    fn empty_secret(&self) -> bool {
        self.secret.as_deref() == Some("")
    }

    /// Applies the change to `server`; an absent or cloaked secret keeps the configured one.
    fn apply(self, server: &mut S) {
        if let Some(address) = self.address {
            *server.address_mut() = address;
        }
        if !keeps_secret(self.secret.as_deref()) {
            *server.secret_mut() = Secret::new(self.secret.unwrap_or_default());
        }
        (self.rest)(server);
    }
}

/// A kind of remote server, as the management API handles its list. The handlers check the
/// caller's role before they call these.
pub(super) trait Remote: Listed + Clone + Send + 'static {
    /// How errors name the kind (`RADIUS`, `TACACS+`).
    const NAME: &'static str;
    /// The configuration list (`radius.servers`), for error paths.
    const LIST: &'static str;
    /// The body of add and update.
    type Request: DeserializeOwned + Send + 'static;
    /// One entry of a reorder body.
    type Entry: DeserializeOwned + Send + 'static;
    /// A server as the list shows it.
    type View: Serialize;

    /// The configured list.
    fn servers(config: &mut Config) -> &mut Vec<Self>;
    /// The configured list, read only.
    fn listed(config: &Config) -> &[Self];
    /// A new server with the protocol's defaults.
    fn new(id: u32, order: u32, address: String, secret: Secret) -> Self;
    /// The address.
    fn address_mut(&mut self) -> &mut String;
    /// The shared secret.
    fn secret_mut(&mut self) -> &mut Secret;
    /// What `request` changes.
    fn change(request: Self::Request) -> Change<Self>;
    /// The server an entry names, and what it changes.
    fn entry(entry: Self::Entry) -> (Option<u32>, Change<Self>);
    /// How the list shows the server.
    fn view(&self, uncloak: bool) -> Self::View;
}

/// What a request may change on a server besides the address and the secret, for either
/// kind: `P` its protocol, `T` its transport.
struct Fields<P, T> {
    port: Option<u16>,
    protocol: Option<P>,
    enabled: Option<Flag>,
    transport: Option<T>,
    tls: TlsKeys,
}

/// The fields of a server that [`Fields`] change.
trait Settable: Send + 'static {
    /// `PAP`, `CHAP` or `ASCII`.
    type Protocol: Send + 'static;
    /// UDP or TCP, or TLS.
    type Transport: Copy + Send + 'static;
    /// The port a transport uses unless another is given.
    fn default_port(transport: Self::Transport) -> u16;
    /// The fields, borrowed.
    fn settable(
        &mut self,
    ) -> (
        &mut u16,
        &mut Self::Protocol,
        &mut bool,
        &mut Self::Transport,
        &mut portcullis_config::TlsClient,
    );
}

impl Settable for RadiusServer {
    type Protocol = portcullis_config::RadiusProtocol;
    type Transport = RadiusTransport;

    fn default_port(transport: RadiusTransport) -> u16 {
        match transport {
            RadiusTransport::Udp => DEFAULT_RADIUS_PORT,
            RadiusTransport::Tls => DEFAULT_RADSEC_PORT,
        }
    }

    fn settable(
        &mut self,
    ) -> (
        &mut u16,
        &mut Self::Protocol,
        &mut bool,
        &mut RadiusTransport,
        &mut portcullis_config::TlsClient,
    ) {
        (
            &mut self.port,
            &mut self.protocol,
            &mut self.enabled,
            &mut self.transport,
            &mut self.tls,
        )
    }
}

impl Settable for TacacsServer {
    type Protocol = portcullis_config::TacacsProtocol;
    type Transport = TacacsTransport;

    fn default_port(transport: TacacsTransport) -> u16 {
        match transport {
            TacacsTransport::Tcp => DEFAULT_TACACS_PORT,
            TacacsTransport::Tls => DEFAULT_TACACS_TLS_PORT,
        }
    }

    fn settable(
        &mut self,
    ) -> (
        &mut u16,
        &mut Self::Protocol,
        &mut bool,
        &mut TacacsTransport,
        &mut portcullis_config::TlsClient,
    ) {
        (
            &mut self.port,
            &mut self.protocol,
            &mut self.enabled,
            &mut self.transport,
            &mut self.tls,
        )
    }
}

impl<P, T: Copy> Fields<P, T> {
    /// Sets what is given on `server`. A server on its old transport's default port moves to
    /// the new transport's, unless a port is given.
    fn apply<S: Settable<Protocol = P, Transport = T>>(self, server: &mut S) {
        let (port, protocol, enabled, transport, tls) = server.settable();
        if let Some(new) = self.transport {
            if self.port.is_none() && *port == S::default_port(*transport) {
                *port = S::default_port(new);
            }
            *transport = new;
        }
        if let Some(given) = self.port {
            *port = given;
        }
        if let Some(given) = self.protocol {
            *protocol = given;
        }
        if let Some(given) = self.enabled {
            *enabled = given.0;
        }
        apply_tls(tls, self.tls);
    }
}

fn radius_rest(
    fields: Fields<portcullis_config::RadiusProtocol, RadiusTransport>,
) -> Box<dyn FnOnce(&mut RadiusServer) + Send> {
    Box::new(move |server| fields.apply(server))
}

/// The `tls_*` keys of a request: `tls_ca`, `tls_server_name`, `tls_certificate`,
/// `tls_key`; an empty string removes one.
type TlsKeys = [Option<String>; 4];

/// Sets the `tls_*` keys a request gives.
fn apply_tls(keys: &mut portcullis_config::TlsClient, given: TlsKeys) {
    let [ca, name, certificate, key] = given;
    for (value, slot) in [
        (ca, &mut keys.tls_ca),
        (name, &mut keys.tls_server_name),
        (certificate, &mut keys.tls_certificate),
        (key, &mut keys.tls_key),
    ] {
        if let Some(value) = value {
            *slot = (!value.is_empty()).then_some(value);
        }
    }
}

/// The [`Fields`] of a request: `port`, `protocol`, `enabled`, `transport`, the `tls_*`
/// keys.
macro_rules! fields {
    ($request:expr) => {
        Fields {
            port: $request.port,
            protocol: $request.protocol,
            enabled: $request.enabled,
            transport: $request.transport,
            tls: [
                $request.tls_ca,
                $request.tls_server_name,
                $request.tls_certificate,
                $request.tls_key,
            ],
        }
    };
}

impl Remote for RadiusServer {
    const NAME: &'static str = "RADIUS";
    const LIST: &'static str = "radius.servers";
    type Request = RadiusServerRequest;
    type Entry = RadiusReorderEntry;
    type View = RadiusServerView;

    fn servers(config: &mut Config) -> &mut Vec<Self> {
        &mut config.radius.servers
    }

    fn listed(config: &Config) -> &[Self] {
        &config.radius.servers
    }

    fn new(id: u32, order: u32, address: String, secret: Secret) -> Self {
        RadiusServer {
            id,
            order,
            address,
            port: DEFAULT_RADIUS_PORT,
            secret,
            protocol: Default::default(),
            enabled: true,
            require_message_authenticator: RequireMessageAuthenticator::default(),
            transport: Default::default(),
            tls: Default::default(),
        }
    }

    fn address_mut(&mut self) -> &mut String {
        &mut self.address
    }

    fn secret_mut(&mut self) -> &mut Secret {
        &mut self.secret
    }

    fn change(request: RadiusServerRequest) -> Change<Self> {
        Change {
            address: request.address,
            secret: request.secret,
            rest: radius_rest(fields!(request)),
        }
    }

    fn entry(entry: RadiusReorderEntry) -> (Option<u32>, Change<Self>) {
        let change = Change {
            address: entry.address,
            secret: entry.secret,
            rest: radius_rest(fields!(entry)),
        };
        (entry.server_id, change)
    }

    fn view(&self, uncloak: bool) -> RadiusServerView {
        RadiusServerView::new(self, uncloak)
    }
}

impl Remote for TacacsServer {
    const NAME: &'static str = "TACACS+";
    const LIST: &'static str = "tacacs.servers";
    type Request = TacacsServerRequest;
    type Entry = TacacsReorderEntry;
    type View = TacacsServerView;

    fn servers(config: &mut Config) -> &mut Vec<Self> {
        &mut config.tacacs.servers
    }

    fn listed(config: &Config) -> &[Self] {
        &config.tacacs.servers
    }

    fn new(id: u32, order: u32, address: String, secret: Secret) -> Self {
        TacacsServer {
            id,
            order,
            address,
            port: DEFAULT_TACACS_PORT,
            secret,
            protocol: Default::default(),
            client_port: String::new(),
            enabled: true,
            transport: Default::default(),
            tls: Default::default(),
        }
    }

    fn address_mut(&mut self) -> &mut String {
        &mut self.address
    }

    fn secret_mut(&mut self) -> &mut Secret {
        &mut self.secret
    }

    fn change(request: TacacsServerRequest) -> Change<Self> {
        Change {
            address: request.address,
            secret: request.secret,
            rest: tacacs_rest(fields!(request), request.client_port),
        }
    }

    fn entry(entry: TacacsReorderEntry) -> (Option<u32>, Change<Self>) {
        let change = Change {
            address: entry.address,
            secret: entry.secret,
            rest: tacacs_rest(fields!(entry), entry.client_port),
        };
        (entry.server_id, change)
    }

    fn view(&self, uncloak: bool) -> TacacsServerView {
        TacacsServerView::new(self, uncloak)
    }
}

fn tacacs_rest(
    fields: Fields<portcullis_config::TacacsProtocol, TacacsTransport>,
    client_port: Option<StringOrNumber>,
) -> Box<dyn FnOnce(&mut TacacsServer) + Send> {
    Box::new(move |server| {
        fields.apply(server);
        if let Some(client_port) = client_port {
            server.client_port = client_port.0;
        }
    })
}

/// `GET .../server`: the servers in try order.
pub(super) async fn list<S: Remote>(
    state: Arc<AppState>,
    caller: Caller,
    query: Option<String>,
) -> Result<Json<Vec<S::View>>, ApiError> {
    caller.require_reader()?;
    let uncloak = wants_uncloak(&caller, query.as_deref())?;
    let live = state.store.current();
    Ok(Json(
        in_order(S::listed(&live.config))
            .into_iter()
            .map(|server| server.view(uncloak))
            .collect(),
    ))
}

/// Why an empty `secret` is refused.
const EMPTY_SECRET: &str = "must not be empty";

/// `POST .../server`: a new server at the end of the try order, with the next id.
pub(super) async fn add<S: Remote>(
    state: Arc<AppState>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let mut change = S::change(parse_object(&body)?);
    if change.empty_secret() {
        return Err(invalid(vec![("secret".into(), EMPTY_SECRET.into())]));
    }
    let absent = [
        ("address", change.address.is_none()),
        ("secret", change.secret.is_none()),
    ];
    let (Some(address), Some(secret)) = (change.address.take(), change.secret.take()) else {
        return Err(missing(&absent));
    };
    state
        .store
        .update(move |config| {
            let servers = S::servers(config);
            let id = next_id(servers)?;
            let order = servers
                .iter()
                .map(|server| server.order().saturating_add(1))
                .max()
                .unwrap_or(0);
            let mut server = S::new(id, order, address, Secret::new(secret));
            change.apply(&mut server);
            servers.push(server);
            renumber(servers);
            let index = servers.iter().position(|s| s.id() == id).unwrap_or(0);
            validated(config, |field| server_field(field, S::LIST, index))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT .../server/{id}`: the fields given, keeping the others.
pub(super) async fn update<S: Remote>(
    state: Arc<AppState>,
    id: u32,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let change = S::change(parse_object(&body)?);
    if change.empty_secret() {
        return Err(invalid(vec![("secret".into(), EMPTY_SECRET.into())]));
    }
    state
        .store
        .update(move |config| {
            let servers = S::servers(config);
            let index = servers
                .iter()
                .position(|server| server.id() == id)
                .ok_or_else(|| no_server(S::NAME, id))?;
            if let Some(server) = servers.get_mut(index) {
                change.apply(server);
            }
            validated(config, |field| server_field(field, S::LIST, index))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE .../server/{id}`: the others keep their ids and close up the order.
pub(super) async fn delete<S: Remote>(
    state: Arc<AppState>,
    id: u32,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .update(move |config| {
            let servers = S::servers(config);
            let before = servers.len();
            servers.retain(|server| server.id() != id);
            if servers.len() == before {
                return Err(no_server(S::NAME, id));
            }
            renumber(servers);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE .../server`: every server.
pub(super) async fn delete_all<S: Remote>(state: Arc<AppState>) -> Result<StatusCode, ApiError> {
    state
        .store
        .update(|config| {
            S::servers(config).clear();
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../reorder`: the list given, in its order.
pub(super) async fn reorder<S: Remote>(
    state: Arc<AppState>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let entries: Vec<S::Entry> = parse_array(&body)?;
    state
        .store
        .update(move |config| {
            let old = std::mem::take(S::servers(config));
            let mut ids = NewIds::new(&old)?;
            let mut errors = Vec::new();
            let mut servers = Vec::with_capacity(entries.len());
            for (index, entry) in entries.into_iter().enumerate() {
                let (asked, change) = S::entry(entry);
                if change.empty_secret() {
                    errors.push((format!("[{index}].secret"), EMPTY_SECRET.into()));
                    continue;
                }
                let Some(id) = ids.resolve(asked, index, &mut errors) else {
                    continue;
                };
                let mut server = match old.iter().find(|server| server.id() == id) {
                    Some(server) => server.clone(),
                    None => {
                        let Some((address, secret)) = new_entry(
                            index,
                            asked,
                            change.address.as_deref(),
                            change.secret.as_deref(),
                            &mut errors,
                        ) else {
                            continue;
                        };
                        S::new(id, 0, address, secret)
                    }
                };
                server.set_order(u32::try_from(index).unwrap_or(u32::MAX));
                change.apply(&mut server);
                servers.push(server);
            }
            if !errors.is_empty() {
                return Err(invalid(errors));
            }
            *S::servers(config) = servers;
            validated(config, |field| entry_field(field, S::LIST))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
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
