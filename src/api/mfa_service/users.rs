//! The users of an application: list, read, delete, associate, dissociate, validate, and
//! login codes.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Users

/// Lists the application's users matching the filters.
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/applications/{Application_ID}/users",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        UserFilters
    ),
    responses(
        (status = 200, description = "The users", body = Vec<UserView>),
        (status = 400, description = "Invalid filter (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator, Monitor or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn list_users(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Handled<Json<Vec<UserView>>> {
    reader(caller)?;
    let id = path_ids(id)?;
    let filters = query_pairs(query)?;
    let users = run(&state, move |c| service::list_users(c, &id, &filters)).await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// Returns the user (404 also when it does not match the filters given).
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user", max_length = 128),
        UserFilters
    ),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 400, description = "Invalid filter (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator, Monitor or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application or user", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn get_user(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Handled<Json<UserView>> {
    reader(caller)?;
    let (app, user) = path_ids(ids)?;
    let filters = query_pairs(query)?;
    let user = run(&state, move |c| {
        let filter = service::UserFilter::parse(&filters)?;
        let user = service::get_user(c, &app, &user)?;
        if filter.matches(&user) {
            Ok(user)
        } else {
            Err(MfaError::NotFound(format!(
                "User {:?} does not match the filters.",
                user.id
            )))
        }
    })
    .await?;
    Ok(Json(user.into()))
}

/// Deletes the user with their outstanding code.
#[utoipa::path(
    delete,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user", max_length = 128),
    ),
    responses(
        (status = 200, description = "Deleted", body = Empty),
        (status = 400, description = "Over-long id (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application or user", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn delete_user(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Handled<Json<Empty>> {
    let caller = service_caller(caller)?;
    let (app, user) = path_ids(ids)?;
    may_change_factor(&caller, &state, &app, &user).await?;
    let logged = user.clone();
    run(&state, move |c| service::delete_user(c, &app, &user)).await?;
    tracing::info!(caller = %caller.user, user = %logged, "MFA user deleted");
    Ok(Json(Empty {}))
}

/// Associates an address with the user (creating the user) and sends a validation code to
/// it: status VALIDATION PENDING. When the code cannot be delivered the answer is 503 and
/// nothing changes.
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}/associate",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user (chosen by the caller)", max_length = 128),
    ),
    request_body = AssociateRequest,
    responses(
        (status = 200, description = "Code sent; the user's id", body = CreatedResource),
        (status = 400, description = "Invalid request or address (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator or MFA Service; or an MFA Service caller and a gateway user who holds (or may hold) Administrator", body = MfaErrorBody),
        (status = 404, description = "No such application", body = MfaErrorBody),
        (status = 412, description = "No sender is configured for the application's delivery method (412); nothing changed", body = MfaErrorBody),
        (status = 429, description = "User locked after wrong codes, or too many codes sent (2004)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
        (status = 503, description = "The code could not be delivered; nothing changed", body = MfaErrorBody),
    )
)]
pub async fn associate(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Handled<Json<CreatedResource>> {
    let caller = service_caller(caller)?;
    let (app, user) = path_ids(ids)?;
    may_change_factor(&caller, &state, &app, &user).await?;
    let request: AssociateRequest = parse_body(&body)?;
    let config = state.store.current().config.mfa_delivery.clone();
    service::associate(
        &state.db,
        &config,
        &app,
        &user,
        &request.address,
        request.display_name,
    )
    .await?;
    Ok(Json(CreatedResource { id: user }))
}

/// Removes the user's address: status INITIAL, the outstanding code dropped.
#[utoipa::path(
    delete,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}/associate",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user", max_length = 128),
    ),
    responses(
        (status = 200, description = "Association removed", body = Empty),
        (status = 400, description = "Over-long id (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application or user", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn dissociate(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Handled<Json<Empty>> {
    let caller = service_caller(caller)?;
    let (app, user) = path_ids(ids)?;
    may_change_factor(&caller, &state, &app, &user).await?;
    let now = crate::state::unix_now();
    run(&state, move |c| service::dissociate(c, &app, &user, now)).await?;
    Ok(Json(Empty {}))
}

/// Checks the user's outstanding code (association or login). Right: the code is used up, and
/// an association makes the address VALIDATED.
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}/validate",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user", max_length = 128),
    ),
    request_body = ValidateRequest,
    responses(
        (status = 200, description = "The code was right; the user's id", body = CreatedResource),
        (status = 400, description = "Invalid request (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application or user", body = MfaErrorBody),
        (status = 412, description = "Invalid code (2001) or expired code (2002)", body = MfaErrorBody),
        (status = 429, description = "User locked after wrong codes (2004)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn validate(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Handled<Json<CreatedResource>> {
    service_caller(caller)?;
    let (app, user) = path_ids(ids)?;
    let request: ValidateRequest = parse_body(&body)?;
    match service::validate(&state.db, &app, &user, &request.validation_code).await? {
        CodeCheck::Success(_) => Ok(Json(CreatedResource { id: user })),
        CodeCheck::Invalid => Err(MfaError::InvalidCode.into()),
        CodeCheck::Expired => Err(MfaError::Expired.into()),
        CodeCheck::Locked => Err(MfaError::TooMany(format!(
            "User sent too many requests: locked after {} wrong codes; try again later.",
            service::MAX_FAILURES
        ))
        .into()),
    }
}

/// Sends a login code to the user's validated address (409 with code 2003 when the address
/// is not validated; 503 when it cannot be delivered).
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/applications/{Application_ID}/users/{User_ID}/login_start",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ("User_ID" = String, Path, description = "Id of the user", max_length = 128),
    ),
    request_body(content = Option<LoginStartRequest>, description = "Optional; an empty body is allowed"),
    responses(
        (status = 200, description = "Code sent; the user's id", body = CreatedResource),
        (status = 400, description = "Invalid request (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application or user", body = MfaErrorBody),
        (status = 409, description = "The user's address is not validated (2003)", body = MfaErrorBody),
        (status = 412, description = "No sender is configured for the application's delivery method (412); nothing changed", body = MfaErrorBody),
        (status = 429, description = "User locked after wrong codes, or too many codes sent (2004)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
        (status = 503, description = "The code could not be delivered; nothing changed", body = MfaErrorBody),
    )
)]
pub async fn login_start(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    ids: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Handled<Json<CreatedResource>> {
    service_caller(caller)?;
    let (app, user) = path_ids(ids)?;
    let request: LoginStartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LoginStartRequest::default()
    } else {
        parse_body(&body)?
    };
    let config = state.store.current().config.mfa_delivery.clone();
    service::login_start(&state.db, &config, &app, &user, request.display_name).await?;
    Ok(Json(CreatedResource { id: user }))
}
