//! The authentication sequences: list, current, set.

#[allow(clippy::wildcard_imports)]
use super::*;

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
