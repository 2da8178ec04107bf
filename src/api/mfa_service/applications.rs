//! `/api/mfa/1.0/applications`: list, create, read, update, delete.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Applications

/// Lists the applications matching the filters.
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/applications",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(ApplicationFilters),
    responses(
        (status = 200, description = "The applications", body = Vec<ApplicationView>),
        (status = 400, description = "Invalid filter (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator, Monitor or MFA Service", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn list_applications(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Handled<Json<Vec<ApplicationView>>> {
    reader(caller)?;
    let filters = query_pairs(query)?;
    let apps = run(&state, move |c| service::list_applications(c, &filters)).await?;
    Ok(Json(apps.into_iter().map(ApplicationView::from).collect()))
}

/// Creates an application (version 1).
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/applications",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    request_body = NewApplication,
    responses(
        (status = 200, description = "Created; its id", body = CreatedResource),
        (status = 400, description = "Invalid request (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator", body = MfaErrorBody),
        (status = 409, description = "The name is taken (1011)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn create_application(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Handled<Json<CreatedResource>> {
    let caller = administrator(caller)?;
    let new: NewApplication = parse_body(&body)?;
    let fields = ApplicationFields {
        name: Some(new.name),
        description: new.description,
        auth_code_length: new.auth_code_length,
        auth_token_type: new.auth_token_type.map(|t| t.name().to_owned()),
        auth_token_validity_duration: new.auth_token_validity_duration,
        auth_token_prefix: new.auth_token_prefix,
        auth_token_delivery_methods: new.auth_token_delivery_methods.map(|d| d.name().to_owned()),
        associate_template: new.associate_template,
        display_name: new.display_name,
        login_template: new.login_template,
        message_from: new.message_from,
    };
    let now = crate::state::unix_now();
    let app = run(&state, move |c| service::create_application(c, fields, now)).await?;
    tracing::info!(
        caller = %caller.user,
        id = %app.id,
        name = %app.name,
        "MFA application created"
    );
    Ok(Json(CreatedResource { id: app.id }))
}

/// Returns the application (404 also when it does not match the filters given).
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/applications/{Application_ID}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("Application_ID" = String, Path, description = "Id of the application", max_length = 128),
        ApplicationFilters
    ),
    responses(
        (status = 200, description = "The application", body = ApplicationView),
        (status = 400, description = "Invalid filter (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator, Monitor or MFA Service", body = MfaErrorBody),
        (status = 404, description = "No such application (or it does not match the filters)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn get_application(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Handled<Json<ApplicationView>> {
    reader(caller)?;
    let id = path_ids(id)?;
    let filters = query_pairs(query)?;
    let app = run(&state, move |c| {
        let filter = service::ApplicationFilter::parse(&filters)?;
        let app = service::get_application(c, &id)?;
        if filter.matches(&app) {
            Ok(app)
        } else {
            Err(MfaError::NotFound(format!(
                "Application {id:?} does not match the filters."
            )))
        }
    })
    .await?;
    Ok(Json(app.into()))
}

/// Changes the fields given when `version_number` is the current version.
#[utoipa::path(
    put,
    path = "/api/mfa/1.0/applications/{Application_ID}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(("Application_ID" = String, Path, description = "Id of the application", max_length = 128)),
    request_body = ApplicationUpdate,
    responses(
        (status = 200, description = "The application as changed (version one higher)", body = ApplicationView),
        (status = 400, description = "Invalid request (400) or over-long value (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator", body = MfaErrorBody),
        (status = 404, description = "No such application", body = MfaErrorBody),
        (status = 409, description = "Stale version_number (1001) or name taken (1011)", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn update_application(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Handled<Json<ApplicationView>> {
    let caller = administrator(caller)?;
    let id = path_ids(id)?;
    let update: ApplicationUpdate = parse_body(&body)?;
    if let Some(given) = &update.id {
        if *given != id {
            return Err(MfaApiError::bad(format!(
                "id {given:?} differs from the id in the path; ids cannot change."
            )));
        }
    }
    let fields = ApplicationFields {
        name: update.name,
        description: update.description,
        auth_code_length: update.auth_code_length,
        auth_token_type: update.auth_token_type.map(|t| t.name().to_owned()),
        auth_token_validity_duration: update.auth_token_validity_duration,
        auth_token_prefix: update.auth_token_prefix,
        auth_token_delivery_methods: update
            .auth_token_delivery_methods
            .map(|d| d.name().to_owned()),
        associate_template: update.associate_template,
        display_name: update.display_name,
        login_template: update.login_template,
        message_from: update.message_from,
    };
    let version = update.version_number;
    let now = crate::state::unix_now();
    let app = run(&state, move |c| {
        service::update_application(c, &id, fields, version, now)
    })
    .await?;
    tracing::info!(
        caller = %caller.user,
        id = %app.id,
        version = app.version_number,
        "MFA application updated"
    );
    Ok(Json(app.into()))
}

/// Deletes the application with its users and their codes.
#[utoipa::path(
    delete,
    path = "/api/mfa/1.0/applications/{Application_ID}",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    params(("Application_ID" = String, Path, description = "Id of the application", max_length = 128)),
    responses(
        (status = 200, description = "Deleted", body = Empty),
        (status = 400, description = "Over-long id (1023)", body = MfaErrorBody),
        (status = 401, description = "No or invalid credentials", body = MfaErrorBody),
        (status = 403, description = "Not Administrator", body = MfaErrorBody),
        (status = 404, description = "No such application", body = MfaErrorBody),
        (status = 500, description = "Server error", body = MfaErrorBody),
    )
)]
pub async fn delete_application(
    caller: Result<Caller, ApiError>,
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Handled<Json<Empty>> {
    let caller = administrator(caller)?;
    let id = path_ids(id)?;
    let logged = id.clone();
    run(&state, move |c| service::delete_application(c, &id)).await?;
    tracing::info!(caller = %caller.user, id = %logged, "MFA application deleted");
    Ok(Json(Empty {}))
}
