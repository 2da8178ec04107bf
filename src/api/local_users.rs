//! `/api/mgmt.local_users/1.0/users`: list, add, read, update and delete local users, and set
//! their passwords (stored as argon2id hashes, never returned).
//!
//! Reads need `Administrator` or `Monitor`, writes `Administrator`; a local user may also set
//! their own password. The last enabled local Administrator cannot be deleted, disabled or
//! stripped of the role, so the appliance always keeps someone who can manage it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use portcullis_config::{ADMINISTRATOR, Config, LocalUser, Secret};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, bearer_token};
use super::error::{ApiError, ErrorBody};
use crate::engine::local::hash_password;

/// User names longer than this are refused.
pub const MAX_NAME_LEN: usize = 256;

/// Passwords hashed at once. Each argon2 run holds 19 MiB, so a burst of writes queues here
/// instead of growing memory with the blocking thread pool.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// The local user routes.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_users, add_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_password))
}

/// A local user as the API shows it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LocalUserView {
    /// Login name.
    pub name: String,
    /// Roles granted on login.
    pub roles: Vec<String>,
    /// A disabled user cannot log in but keeps its entry.
    pub enabled: bool,
}

impl From<&LocalUser> for LocalUserView {
    fn from(user: &LocalUser) -> Self {
        LocalUserView {
            name: user.name.clone(),
            roles: user.roles.clone(),
            enabled: user.enabled,
        }
    }
}

/// `POST /api/mgmt.local_users/1.0/users` request body.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLocalUser {
    /// Login name: unique, 1 to 256 bytes, without whitespace, control characters, `/` or `:`.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f/:]+$"
    )]
    pub name: String,
    /// The password (not empty). Stored as an argon2id hash.
    #[schema(value_type = String, format = Password, min_length = 1)]
    pub password: Secret,
    /// Roles granted on login, each one of the configured roles. Default: none, and a user
    /// without roles logs in only when `authentication.default_role` is set.
    #[schema(default = json!([]), required = false, example = json!(["Monitor"]))]
    pub roles: Vec<String>,
    /// Whether the user may log in. Default: true.
    #[schema(default = true, required = false)]
    pub enabled: bool,
}

/// `PUT /api/mgmt.local_users/1.0/users/{name}` request body. Absent fields keep their value.
#[derive(Debug, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalUserUpdate {
    /// The user's name, if given; must equal the name in the path (users cannot be renamed).
    /// Lets a GET answer be sent back as it is.
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// A new password (not empty).
    #[schema(value_type = Option<String>, format = Password, min_length = 1, nullable = false)]
    pub password: Option<Secret>,
    /// The new roles, replacing the old ones.
    #[schema(nullable = false, example = json!(["Monitor"]))]
    pub roles: Option<Vec<String>>,
    /// Whether the user may log in.
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
}

/// `PUT /api/mgmt.local_users/1.0/users/{name}/password` request body.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The new password (not empty).
    #[schema(value_type = String, format = Password, min_length = 1)]
    pub password: Secret,
}

/// Lists the local users.
#[utoipa::path(
    get,
    path = "/api/mgmt.local_users/1.0/users",
    tag = "local_users",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Every local user, in configuration order", body = Vec<LocalUserView>),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is neither Administrator nor Monitor", body = ErrorBody),
    )
)]
pub async fn list_users(
    caller: Caller,
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<LocalUserView>>, ApiError> {
    caller.require_reader()?;
    let live = state.store.current();
    Ok(Json(
        live.config
            .local_users
            .iter()
            .map(LocalUserView::from)
            .collect(),
    ))
}

/// Adds a local user.
#[utoipa::path(
    post,
    path = "/api/mgmt.local_users/1.0/users",
    tag = "local_users",
    security(("basic" = []), ("bearer" = [])),
    request_body = NewLocalUser,
    responses(
        (status = 201, description = "User added", body = LocalUserView),
        (status = 400, description = "Malformed JSON or invalid fields (error_info.fields names them)", body = ErrorBody),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = ErrorBody),
        (status = 409, description = "A local user of that name exists", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
    )
)]
pub async fn add_user(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let new = parse_new_user(&body)?;
    // Cheap checks before the expensive hash; repeated under the writer lock below.
    {
        let live = state.store.current();
        check_roles(&new.roles, &live.config.roles)?;
        if find(&live.config, &new.name).is_some() {
            return Err(conflict(&new.name));
        }
    }
    let hash = hash(new.password).await?;
    let user = LocalUser {
        name: new.name,
        password_hash: hash,
        roles: new.roles,
        enabled: new.enabled,
    };
    let view = state
        .store
        .update(move |config| {
            check_roles(&user.roles, &config.roles)?;
            if find(config, &user.name).is_some() {
                return Err(conflict(&user.name));
            }
            let view = LocalUserView::from(&user);
            config.local_users.push(user);
            Ok(view)
        })
        .await?;
    tracing::info!(caller = %caller.user, user = %view.name, "local user added");
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Reads one local user.
#[utoipa::path(
    get,
    path = "/api/mgmt.local_users/1.0/users/{name}",
    tag = "local_users",
    security(("basic" = []), ("bearer" = [])),
    params(("name" = String, Path, description = "The user's name (percent-encoded)")),
    responses(
        (status = 200, description = "The user", body = LocalUserView),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is neither Administrator nor Monitor", body = ErrorBody),
        (status = 404, description = "No local user of that name", body = ErrorBody),
    )
)]
pub async fn get_user(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<LocalUserView>, ApiError> {
    caller.require_reader()?;
    let name = path_name(name)?;
    let live = state.store.current();
    find(&live.config, &name)
        .map(|index| Json(LocalUserView::from(&live.config.local_users[index])))
        .ok_or_else(|| unknown(&name))
}

/// Updates a local user's roles, enabled flag and (when given) password.
#[utoipa::path(
    put,
    path = "/api/mgmt.local_users/1.0/users/{name}",
    tag = "local_users",
    security(("basic" = []), ("bearer" = [])),
    params(("name" = String, Path, description = "The user's name (percent-encoded)")),
    request_body = LocalUserUpdate,
    responses(
        (status = 200, description = "User updated", body = LocalUserView),
        (status = 400, description = "Malformed JSON, invalid fields, or the change would leave no enabled Administrator", body = ErrorBody),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = ErrorBody),
        (status = 404, description = "No local user of that name", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
    )
)]
pub async fn update_user(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<LocalUserView>, ApiError> {
    caller.require_admin()?;
    let name = path_name(name)?;
    let update = parse_update(&body, &name)?;
    {
        let live = state.store.current();
        if find(&live.config, &name).is_none() {
            return Err(unknown(&name));
        }
        if let Some(roles) = &update.roles {
            check_roles(roles, &live.config.roles)?;
        }
    }
    let hash = match update.password {
        Some(password) => Some(hash(password).await?),
        None => None,
    };
    let (roles, enabled) = (update.roles, update.enabled);
    let target = name.clone();
    let view = state
        .store
        .update(move |config| {
            let index = find(config, &target).ok_or_else(|| unknown(&target))?;
            if let Some(roles) = &roles {
                check_roles(roles, &config.roles)?;
            }
            let admins = enabled_admins(config);
            let user = &mut config.local_users[index];
            if let Some(hash) = hash {
                user.password_hash = hash;
            }
            if let Some(roles) = roles {
                user.roles = roles;
            }
            if let Some(enabled) = enabled {
                user.enabled = enabled;
            }
            let view = LocalUserView::from(&*user);
            if admins > 0 && enabled_admins(config) == 0 {
                let (field, what) = if view.enabled {
                    ("roles", "removing the Administrator role from")
                } else {
                    ("enabled", "disabling")
                };
                return Err(ApiError::invalid_fields(
                    last_admin_text(&target, what),
                    vec![(field.into(), "would leave no enabled Administrator".into())],
                ));
            }
            Ok(view)
        })
        .await?;
    tracing::info!(caller = %caller.user, user = %view.name, "local user updated");
    Ok(Json(view))
}

/// Deletes a local user.
#[utoipa::path(
    delete,
    path = "/api/mgmt.local_users/1.0/users/{name}",
    tag = "local_users",
    security(("basic" = []), ("bearer" = [])),
    params(("name" = String, Path, description = "The user's name (percent-encoded)")),
    responses(
        (status = 204, description = "User deleted"),
        (status = 400, description = "Invalid name, or the user is the last enabled Administrator", body = ErrorBody),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = ErrorBody),
        (status = 404, description = "No local user of that name", body = ErrorBody),
    )
)]
pub async fn delete_user(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let name = path_name(name)?;
    let target = name.clone();
    state
        .store
        .update(move |config| {
            let index = find(config, &target).ok_or_else(|| unknown(&target))?;
            let admins = enabled_admins(config);
            config.local_users.remove(index);
            if admins > 0 && enabled_admins(config) == 0 {
                return Err(ApiError::bad_request(last_admin_text(&target, "deleting")));
            }
            Ok(())
        })
        .await?;
    tracing::info!(caller = %caller.user, user = %name, "local user deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sets a local user's password: an Administrator sets anyone's, a local user their own.
#[utoipa::path(
    put,
    path = "/api/mgmt.local_users/1.0/users/{name}/password",
    tag = "local_users",
    security(("basic" = []), ("bearer" = [])),
    params(("name" = String, Path, description = "The user's name (percent-encoded)")),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Password set"),
        (status = 400, description = "Malformed JSON, or an empty or missing password", body = ErrorBody),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is neither an Administrator nor that local user", body = ErrorBody),
        (status = 404, description = "No local user of that name", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
    )
)]
pub async fn set_password(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    parts: Parts,
    name: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = path_name(name)?;
    if caller.require_admin().is_err() && !is_local_self(&state, &parts, &caller, &name) {
        return Err(ApiError {
            error_text: "Only an Administrator may set another user's password.".into(),
            ..ApiError::forbidden(ADMINISTRATOR)
        });
    }
    let change = parse_password_change(&body)?;
    if find(&state.store.current().config, &name).is_none() {
        return Err(unknown(&name));
    }
    let hash = hash(change.password).await?;
    let target = name.clone();
    state
        .store
        .update(move |config| {
            let index = find(config, &target).ok_or_else(|| unknown(&target))?;
            config.local_users[index].password_hash = hash;
            Ok(())
        })
        .await?;
    tracing::info!(caller = %caller.user, user = %name, "local user password set");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Whether `caller` is the local user `name` itself. HTTP Basic always checks local users; a
/// bearer token counts only when the local method issued it (a RADIUS or TACACS+ user of the
/// same name is someone else).
fn is_local_self(state: &AppState, parts: &Parts, caller: &Caller, name: &str) -> bool {
    if caller.user != name {
        return false;
    }
    match bearer_token(parts) {
        Some(token) => state
            .sessions
            .lookup(token)
            .is_some_and(|session| session.method == "Local"),
        None => true,
    }
}

/// Hashes a password off the async workers (argon2 takes tens of milliseconds of CPU), at
/// most [`HASHING`]'s permits at a time.
async fn hash(password: Secret) -> Result<Secret, ApiError> {
    let permit = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::internal("password hashing", e))?;
    // The permit moves into the task: it is held until argon2 is done even if the request
    // is abandoned meanwhile.
    tokio::task::spawn_blocking(move || {
        let hashed = hash_password(password.expose().as_bytes());
        drop(permit);
        hashed
    })
    .await
    .map_err(|e| ApiError::internal("password hashing", e))?
    .map(Secret::new)
    .map_err(|e| ApiError::internal("password hashing", e))
}

/// The index of local user `name`.
fn find(config: &Config, name: &str) -> Option<usize> {
    config.local_users.iter().position(|u| u.name == name)
}

/// How many enabled local users hold the Administrator role.
fn enabled_admins(config: &Config) -> usize {
    config
        .local_users
        .iter()
        .filter(|u| u.enabled && u.roles.iter().any(|r| r == ADMINISTRATOR))
        .count()
}

fn last_admin_text(name: &str, what: &str) -> String {
    format!(
        "Refused: {name:?} is the last enabled local Administrator; {what} it would leave \
         nobody able to manage portcullis. Add or enable another Administrator first."
    )
}

fn unknown(name: &str) -> ApiError {
    ApiError::not_found(format!("No local user named {name:?}."))
}

/// 409 CONFLICT: the name is taken.
fn conflict(name: &str) -> ApiError {
    ApiError::conflict(format!("A local user named {name:?} already exists."))
}

/// The user name of the request path: 400 unless it is non-empty and has no `/` (which a
/// percent-encoded `%2F` would bring in).
fn path_name(name: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = name.map_err(|e| {
        ApiError::invalid_fields(
            "Invalid user name in the path.",
            vec![("name".into(), e.body_text())],
        )
    })?;
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.contains('/') {
        "must not contain '/'"
    } else {
        return Ok(name);
    };
    Err(ApiError::invalid_fields(
        "Invalid user name in the path.",
        vec![("name".into(), reason.into())],
    ))
}

/// Why `name` cannot be a new user's name, if it cannot.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("must not be empty".into())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!("must be at most {MAX_NAME_LEN} bytes"))
    } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("must not contain whitespace or control characters".into())
    } else if name.contains('/') {
        Some("must not contain '/'".into())
    } else if name.contains(':') {
        Some("must not contain ':' (HTTP Basic could not carry it)".into())
    } else {
        None
    }
}

/// 400 naming each role that is not defined or is listed twice.
fn check_roles(roles: &[String], defined: &[String]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (index, role) in roles.iter().enumerate() {
        if !defined.iter().any(|d| d == role) {
            errors.push((
                format!("roles[{index}]"),
                format!("{role:?} is not a defined role"),
            ));
        } else if roles[..index].contains(role) {
            errors.push((
                format!("roles[{index}]"),
                format!("{role:?} is listed twice"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_fields("Invalid argument.", errors))
    }
}

/// A JSON object body, its fields read one by one so every problem is named at once.
struct Body {
    object: Map<String, Value>,
    errors: Vec<(String, String)>,
}

impl Body {
    /// 400 for a body that is not JSON or not an object; unknown fields are recorded as
    /// errors.
    fn parse(bytes: &[u8], known: &[&str]) -> Result<Body, ApiError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("JSON error: {e}")))?;
        let Value::Object(object) = value else {
            return Err(ApiError::bad_request(
                "JSON error: the body must be an object",
            ));
        };
        let errors = object
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
            .map(|key| (key.clone(), "unknown field".to_string()))
            .collect();
        Ok(Body { object, errors })
    }

    fn missing(&mut self, name: &str) {
        self.errors.push((name.into(), "is required".into()));
    }

    /// A string field; `None` when absent (nothing recorded) or mistyped (recorded).
    fn string(&mut self, name: &str) -> Option<String> {
        match self.object.get(name)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.errors.push((name.into(), "must be a string".into()));
                None
            }
        }
    }

    /// A non-empty password field.
    fn password(&mut self, name: &str) -> Option<Secret> {
        let password = self.string(name)?;
        if password.is_empty() {
            self.errors.push((name.into(), "must not be empty".into()));
            return None;
        }
        Some(Secret::new(password))
    }

    fn bool(&mut self, name: &str) -> Option<bool> {
        match self.object.get(name)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.errors.push((name.into(), "must be a boolean".into()));
                None
            }
        }
    }

    /// An array of strings.
    fn roles(&mut self, name: &str) -> Option<Vec<String>> {
        let Value::Array(items) = self.object.get(name)? else {
            self.errors
                .push((name.into(), "must be an array of strings".into()));
            return None;
        };
        let mut roles = Vec::with_capacity(items.len());
        let mut good = true;
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::String(role) => roles.push(role.clone()),
                _ => {
                    self.errors
                        .push((format!("{name}[{index}]"), "must be a string".into()));
                    good = false;
                }
            }
        }
        good.then_some(roles)
    }

    /// The parsed value, or 400 naming every failed field.
    fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(ApiError::invalid_fields("Invalid argument.", self.errors)),
        }
    }
}

fn parse_new_user(bytes: &[u8]) -> Result<NewLocalUser, ApiError> {
    let mut body = Body::parse(bytes, &["name", "password", "roles", "enabled"])?;
    let name = match body.string("name") {
        Some(name) => match name_problem(&name) {
            Some(problem) => {
                body.errors.push(("name".into(), problem));
                None
            }
            None => Some(name),
        },
        None => {
            if !body.object.contains_key("name") {
                body.missing("name");
            }
            None
        }
    };
    let password = body.password("password");
    if !body.object.contains_key("password") {
        body.missing("password");
    }
    let roles = match body.object.contains_key("roles") {
        true => body.roles("roles"),
        false => Some(Vec::new()),
    };
    let enabled = match body.object.contains_key("enabled") {
        true => body.bool("enabled"),
        false => Some(true),
    };
    let user = match (name, password, roles, enabled) {
        (Some(name), Some(password), Some(roles), Some(enabled)) => Some(NewLocalUser {
            name,
            password,
            roles,
            enabled,
        }),
        _ => None,
    };
    body.finish(user)
}

fn parse_update(bytes: &[u8], path_name: &str) -> Result<LocalUserUpdate, ApiError> {
    let mut body = Body::parse(bytes, &["name", "password", "roles", "enabled"])?;
    let update = LocalUserUpdate {
        name: body.string("name"),
        password: body.password("password"),
        roles: body.roles("roles"),
        enabled: body.bool("enabled"),
    };
    if update.name.as_deref().is_some_and(|name| name != path_name) {
        body.errors.push((
            "name".into(),
            "differs from the name in the path; users cannot be renamed".into(),
        ));
    }
    body.finish(Some(update))
}

fn parse_password_change(bytes: &[u8]) -> Result<PasswordChange, ApiError> {
    let mut body = Body::parse(bytes, &["password"])?;
    let password = body.password("password");
    if !body.object.contains_key("password") {
        body.missing("password");
    }
    body.finish(password.map(|password| PasswordChange { password }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: &ApiError) -> Vec<(String, String)> {
        error.error_info.as_ref().unwrap()["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["field"].as_str().unwrap().to_string(),
                    f["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn field_names(error: &ApiError) -> Vec<String> {
        fields(error).into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn new_user_defaults_and_errors() {
        let user = parse_new_user(br#"{"name": "bob", "password": "pw"}"#).unwrap();
        assert_eq!(user.name, "bob");
        assert_eq!(user.password.expose(), "pw");
        assert!(user.roles.is_empty());
        assert!(user.enabled);

        let malformed = parse_new_user(b"{nope").unwrap_err();
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        assert!(malformed.error_text.starts_with("JSON error"));
        assert_eq!(
            parse_new_user(b"[]").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );

        let wrong = parse_new_user(
            br#"{"name": 5, "password": "", "roles": ["Monitor", 3], "enabled": "yes", "x": 1}"#,
        )
        .unwrap_err();
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
        let mut names = field_names(&wrong);
        names.sort();
        assert_eq!(names, ["enabled", "name", "password", "roles[1]", "x"]);

        let missing = parse_new_user(b"{}").unwrap_err();
        assert_eq!(field_names(&missing), ["name", "password"]);
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "a b", "a/b", "a:b", "tab\there", &"x".repeat(257)] {
            let body = serde_json::json!({"name": bad, "password": "pw"}).to_string();
            let error = parse_new_user(body.as_bytes()).unwrap_err();
            assert_eq!(field_names(&error), ["name"], "{bad:?}");
        }
        assert!(name_problem("jörg.o'brien-2@example").is_none());
    }

    #[test]
    fn update_is_partial_and_refuses_renames() {
        let update = parse_update(br#"{"enabled": false}"#, "bob").unwrap();
        assert_eq!(update.enabled, Some(false));
        assert!(update.roles.is_none() && update.password.is_none());
        let same = parse_update(br#"{"name": "bob", "roles": []}"#, "bob").unwrap();
        assert_eq!(same.roles, Some(vec![]));
        let renamed = parse_update(br#"{"name": "alice"}"#, "bob").unwrap_err();
        assert_eq!(field_names(&renamed), ["name"]);
        let empty = parse_update(br#"{"password": ""}"#, "bob").unwrap_err();
        assert_eq!(field_names(&empty), ["password"]);
    }

    #[test]
    fn password_change_needs_a_password() {
        assert_eq!(
            parse_password_change(br#"{"password": "new"}"#)
                .unwrap()
                .password
                .expose(),
            "new"
        );
        for body in [&br#"{}"#[..], br#"{"password": ""}"#, br#"{"password": 1}"#] {
            let error = parse_password_change(body).unwrap_err();
            assert_eq!(field_names(&error), ["password"]);
        }
    }

    #[test]
    fn roles_must_be_defined_and_distinct() {
        let defined = portcullis_config::default_roles();
        assert!(check_roles(&["Monitor".into(), "Administrator".into()], &defined).is_ok());
        let error = check_roles(
            &["Monitor".into(), "Wizard".into(), "Monitor".into()],
            &defined,
        )
        .unwrap_err();
        assert_eq!(field_names(&error), ["roles[1]", "roles[2]"]);
    }

    #[test]
    fn counts_enabled_administrators() {
        let user = |name: &str, roles: &[&str], enabled| LocalUser {
            name: name.into(),
            password_hash: Secret::new("x"),
            roles: roles.iter().map(|r| (*r).to_string()).collect(),
            enabled,
        };
        let mut config = Config {
            local_users: vec![
                user("a", &[ADMINISTRATOR], true),
                user("b", &[ADMINISTRATOR], false),
                user("c", &["Monitor"], true),
            ],
            ..Config::default()
        };
        assert_eq!(enabled_admins(&config), 1);
        config.local_users[1].enabled = true;
        assert_eq!(enabled_admins(&config), 2);
    }

    #[test]
    fn view_has_no_hash() {
        let user = LocalUser {
            name: "a".into(),
            password_hash: Secret::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"),
            roles: vec![],
            enabled: true,
        };
        let json = serde_json::to_string(&LocalUserView::from(&user)).unwrap();
        assert_eq!(json, r#"{"name":"a","roles":[],"enabled":true}"#);
    }
}
