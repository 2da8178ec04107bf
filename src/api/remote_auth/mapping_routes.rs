//! The role-mapping routes and their types (the logic is `mappings.rs`).

#[allow(clippy::wildcard_imports)]
use super::*;

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
pub(super) fn mapping_role(
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
pub(super) fn mapping_pair<A>(
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
pub(super) fn mapping_field(
    field: &str,
    list: &str,
    kept: usize,
    origins: &[usize],
) -> Option<String> {
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
