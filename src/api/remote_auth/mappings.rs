//! Role mappings of RADIUS and TACACS+ servers, managed once: `GET` lists every role with its
//! mappings (a role without one is listed once, unmapped); `POST` replaces the mappings of
//! the roles it names. Generic over [`Mapping`], which says what differs between the two
//! (the list, the request and view types, how an entry is read).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::StatusCode;
use portcullis_config::{Config, RadiusRoleMapping, TacacsRoleMapping};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    FieldErrors, RadiusRoleMappingRequest, RadiusRoleMappingView, TacacsRoleMappingRequest,
    TacacsRoleMappingView, invalid, mapping_field, mapping_pair, mapping_role, parse_array,
    validated,
};
use crate::api::AppState;
use crate::api::error::ApiError;

/// A kind of role mapping, as the management API handles its list. The handlers check the
/// caller's role before they call these.
pub(super) trait Mapping: Sized + Send + 'static {
    /// The configuration list (`radius.role_mappings`), for error paths.
    const LIST: &'static str;
    /// One entry of a `POST` body.
    type Request: DeserializeOwned + Send + 'static;
    /// A role as the list shows it.
    type View: Serialize;

    /// The configured mappings.
    fn mappings(config: &Config) -> &[Self];
    /// The configured mappings, to change.
    fn mappings_mut(config: &mut Config) -> &mut Vec<Self>;
    /// The role it maps to.
    fn role(&self) -> &str;
    /// How the list shows `role` with `mapping` (none: unmapped).
    fn view(role: &str, mapping: Option<&Self>) -> Self::View;
    /// The role entry `index` names and the mapping it sets (none: the role's mappings are
    /// cleared), or `None` after recording why the entry names no role.
    fn read(
        index: usize,
        entry: Self::Request,
        roles: &[String],
        errors: &mut FieldErrors,
    ) -> Option<(String, Option<Self>)>;
}

impl Mapping for RadiusRoleMapping {
    const LIST: &'static str = "radius.role_mappings";
    type Request = RadiusRoleMappingRequest;
    type View = RadiusRoleMappingView;

    fn mappings(config: &Config) -> &[Self] {
        &config.radius.role_mappings
    }

    fn mappings_mut(config: &mut Config) -> &mut Vec<Self> {
        &mut config.radius.role_mappings
    }

    fn role(&self) -> &str {
        &self.role
    }

    fn view(role: &str, mapping: Option<&Self>) -> RadiusRoleMappingView {
        RadiusRoleMappingView {
            role: role.to_owned(),
            attribute: mapping.map(|m| m.attribute),
            attribute_value: mapping.map(|m| m.attribute_value.clone()),
            vendor_type: mapping.and_then(|m| m.vendor_type),
        }
    }

    fn read(
        index: usize,
        entry: RadiusRoleMappingRequest,
        roles: &[String],
        errors: &mut FieldErrors,
    ) -> Option<(String, Option<Self>)> {
        let role = mapping_role(index, entry.role, roles, errors)?;
        let pair = mapping_pair(index, entry.attribute, entry.attribute_value, errors);
        let mapping = match (pair, entry.vendor_type) {
            (Some(Some((attribute, attribute_value))), vendor_type) => Some(RadiusRoleMapping {
                role: role.clone(),
                attribute,
                attribute_value,
                vendor_type,
            }),
            (Some(None), Some(_)) => {
                errors.push((
                    format!("[{index}].vendor_type"),
                    "needs attribute and attribute_value".to_owned(),
                ));
                None
            }
            _ => None,
        };
        Some((role, mapping))
    }
}

impl Mapping for TacacsRoleMapping {
    const LIST: &'static str = "tacacs.role_mappings";
    type Request = TacacsRoleMappingRequest;
    type View = TacacsRoleMappingView;

    fn mappings(config: &Config) -> &[Self] {
        &config.tacacs.role_mappings
    }

    fn mappings_mut(config: &mut Config) -> &mut Vec<Self> {
        &mut config.tacacs.role_mappings
    }

    fn role(&self) -> &str {
        &self.role
    }

    fn view(role: &str, mapping: Option<&Self>) -> TacacsRoleMappingView {
        TacacsRoleMappingView {
            role: role.to_owned(),
            attribute: mapping.map(|m| m.attribute.clone()),
            attribute_value: mapping.map(|m| m.attribute_value.clone()),
        }
    }

    fn read(
        index: usize,
        entry: TacacsRoleMappingRequest,
        roles: &[String],
        errors: &mut FieldErrors,
    ) -> Option<(String, Option<Self>)> {
        let role = mapping_role(index, entry.role, roles, errors)?;
        let attribute = entry.attribute.map(|attribute| attribute.0);
        let mapping = match mapping_pair(index, attribute, entry.attribute_value, errors) {
            Some(Some((attribute, attribute_value))) => Some(TacacsRoleMapping {
                role: role.clone(),
                attribute,
                attribute_value,
            }),
            _ => None,
        };
        Some((role, mapping))
    }
}

/// `GET .../role_mapping`: every role, with each of its mappings or once unmapped.
pub(super) fn list<M: Mapping>(config: &Config) -> Vec<M::View> {
    let mut list = Vec::new();
    for role in &config.roles {
        let before = list.len();
        list.extend(
            M::mappings(config)
                .iter()
                .filter(|m| m.role() == role)
                .map(|m| M::view(role, Some(m))),
        );
        if list.len() == before {
            list.push(M::view(role, None));
        }
    }
    list
}

/// `POST .../role_mapping`: the mappings of the roles named are replaced by the entries'.
pub(super) async fn set<M: Mapping>(
    state: Arc<AppState>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let entries: Vec<M::Request> = parse_array(&body)?;
    state
        .store
        .update(move |config| {
            let mut errors = Vec::new();
            let mut named = Vec::new();
            let mut added = Vec::new();
            for (index, entry) in entries.into_iter().enumerate() {
                let Some((role, mapping)) = M::read(index, entry, &config.roles, &mut errors)
                else {
                    continue;
                };
                if let Some(mapping) = mapping {
                    added.push((index, mapping));
                }
                named.push(role);
            }
            if !errors.is_empty() {
                return Err(invalid(errors));
            }
            let mappings = M::mappings_mut(config);
            mappings.retain(|mapping| !named.iter().any(|role| role == mapping.role()));
            let kept = mappings.len();
            let origins: Vec<usize> = added.iter().map(|(index, _)| *index).collect();
            mappings.extend(added.into_iter().map(|(_, mapping)| mapping));
            validated(config, |field| {
                mapping_field(field, M::LIST, kept, &origins)
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
