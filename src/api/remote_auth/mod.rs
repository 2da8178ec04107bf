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

use std::fmt;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use portcullis_config::{
    Config, ConfigError, FIRST_SEQUENCE, LAST_SEQUENCE, NasIdType, RadiusProtocol,
    RadiusRoleMapping, RadiusServer, RadiusTransport, SEQUENCES, TacacsProtocol, TacacsRoleMapping,
    TacacsServer, TacacsTransport, sequence_name,
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

mod body;
mod health;
mod mapping_routes;
mod mappings;
mod radius;
mod sequence;
mod servers;
mod tacacs;

#[allow(clippy::wildcard_imports)]
use body::*;
pub use body::{Flag, StringOrNumber};
pub use health::*;
pub use mapping_routes::*;
pub use radius::*;
pub use sequence::*;
pub use tacacs::*;

/// The remote-authentication management routes.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_auth_sequences))
        .routes(routes!(server_health))
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

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_config::Secret;

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
            transport: Default::default(),
            tls: Default::default(),
        };
        let mut servers = vec![server(1, 20), server(7, 10), server(3, 30)];
        renumber(&mut servers);
        let listed: Vec<(u32, u32)> = servers.iter().map(|s| (s.id, s.order)).collect();
        assert_eq!(listed, [(7, 0), (1, 1), (3, 2)]);
        assert_eq!(next_id(&servers).unwrap(), 8);
        assert_eq!(next_id::<TacacsServer>(&[]).unwrap(), 1);
    }
}
