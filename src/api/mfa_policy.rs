//! `GET/POST /api/mfa/1.0/policy`: who owes a second factor at login (`[mfa.policy]` and the
//! per-application overrides `[[mfa.applications]]` of the configuration).
//!
//! Reads need `Administrator` or `Monitor`, writes `Administrator`. A `POST` changes the
//! fields it carries and keeps the others; it is validated, saved and made live at once like
//! every configuration change.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use portcullis_config::{ApplicationPolicy, Enrollment, FailMode, Mfa, MfaPolicy, MfaRequired};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};

/// The policy routes.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(get_policy, set_policy))
}

/// Who owes a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Required {
    /// Nobody.
    None,
    /// Every user not exempt.
    All,
    /// Users holding one of `roles`, unless exempt.
    Roles,
}

/// What a login does when a code cannot be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Failmode {
    /// Refuse the login.
    Secure,
    /// Let it through on the first factor.
    Safe,
}

/// Whether a partial token (first factor only) may enrol a user's first second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnrollmentView {
    /// Yes, while the user has no second factor of any kind (trust on first use).
    Allow,
    /// No: devices are paired with a full session or by an administrator.
    Deny,
}

impl From<Enrollment> for EnrollmentView {
    fn from(value: Enrollment) -> Self {
        match value {
            Enrollment::Allow => EnrollmentView::Allow,
            Enrollment::Deny => EnrollmentView::Deny,
        }
    }
}

impl From<EnrollmentView> for Enrollment {
    fn from(value: EnrollmentView) -> Self {
        match value {
            EnrollmentView::Allow => Enrollment::Allow,
            EnrollmentView::Deny => Enrollment::Deny,
        }
    }
}

impl From<MfaRequired> for Required {
    fn from(value: MfaRequired) -> Self {
        match value {
            MfaRequired::None => Required::None,
            MfaRequired::All => Required::All,
            MfaRequired::Roles => Required::Roles,
        }
    }
}

impl From<Required> for MfaRequired {
    fn from(value: Required) -> Self {
        match value {
            Required::None => MfaRequired::None,
            Required::All => MfaRequired::All,
            Required::Roles => MfaRequired::Roles,
        }
    }
}

impl From<FailMode> for Failmode {
    fn from(value: FailMode) -> Self {
        match value {
            FailMode::Secure => Failmode::Secure,
            FailMode::Safe => Failmode::Safe,
        }
    }
}

impl From<Failmode> for FailMode {
    fn from(value: Failmode) -> Self {
        match value {
            Failmode::Secure => FailMode::Secure,
            Failmode::Safe => FailMode::Safe,
        }
    }
}

/// A per-application override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationPolicyView {
    /// `api` (REST login), `radius` (RADIUS front-end) or `radius:<client name>`.
    #[schema(min_length = 1, max_length = 64, example = "radius")]
    pub application: String,
    /// `none`, `all` or `roles`.
    pub required: Required,
    /// With `required = roles`: the roles that owe a second factor.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Users who never owe one.
    #[serde(default)]
    pub exempt_users: Vec<String>,
    /// `secure` or `safe`.
    #[serde(default = "secure")]
    pub failmode: Failmode,
    /// `allow` (a partial token may enrol a first second factor) or `deny`.
    #[serde(default = "allow")]
    pub enrollment: EnrollmentView,
}

fn allow() -> EnrollmentView {
    EnrollmentView::Allow
}

fn secure() -> Failmode {
    Failmode::Secure
}

/// The MFA policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PolicyView {
    /// `none`, `all` or `roles`.
    pub required: Required,
    /// With `required = roles`: the roles that owe a second factor.
    pub roles: Vec<String>,
    /// Users who never owe one (break-glass accounts).
    pub exempt_users: Vec<String>,
    /// `secure` (refuse) or `safe` (let through) when a code cannot be delivered.
    pub failmode: Failmode,
    /// `allow`: a partial token (password only) may enrol the first second factor of a user
    /// who has none (trust on first use: whoever knows the password first enrols). `deny`:
    /// devices are paired only with a full session or by an administrator.
    pub enrollment: EnrollmentView,
    /// Per-application overrides; the first match wins.
    pub applications: Vec<ApplicationPolicyView>,
}

/// `POST /api/mfa/1.0/policy` body: the fields given change, the others are kept.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    /// `none`, `all` or `roles`.
    #[schema(nullable = false)]
    pub required: Option<Required>,
    /// The roles that owe a second factor with `required = roles`; each must be defined.
    #[schema(nullable = false)]
    pub roles: Option<Vec<String>>,
    /// Users who never owe one.
    #[schema(nullable = false)]
    pub exempt_users: Option<Vec<String>>,
    /// `secure` or `safe`.
    #[schema(nullable = false)]
    pub failmode: Option<Failmode>,
    /// `allow` or `deny`.
    #[schema(nullable = false)]
    pub enrollment: Option<EnrollmentView>,
    /// Replaces every per-application override.
    #[schema(nullable = false)]
    pub applications: Option<Vec<ApplicationPolicyView>>,
}

fn view(mfa: &Mfa) -> PolicyView {
    PolicyView {
        required: mfa.policy.required.into(),
        roles: mfa.policy.roles.clone(),
        exempt_users: mfa.policy.exempt_users.clone(),
        failmode: mfa.policy.failmode.into(),
        enrollment: mfa.policy.enrollment.into(),
        applications: mfa
            .applications
            .iter()
            .map(|a| ApplicationPolicyView {
                application: a.application.clone(),
                required: a.policy.required.into(),
                roles: a.policy.roles.clone(),
                exempt_users: a.policy.exempt_users.clone(),
                failmode: a.policy.failmode.into(),
                enrollment: a.policy.enrollment.into(),
            })
            .collect(),
    }
}

/// The MFA policy and its per-application overrides.
#[utoipa::path(
    get,
    path = "/api/mfa/1.0/policy",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The policy", body = PolicyView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is neither Administrator nor Monitor", body = ErrorBody),
    )
)]
pub async fn get_policy(
    caller: Caller,
    State(state): State<Arc<AppState>>,
) -> Result<Json<PolicyView>, ApiError> {
    caller.require_reader()?;
    Ok(Json(view(&state.store.current().config.mfa)))
}

/// Changes the MFA policy: the fields given, keeping the others.
#[utoipa::path(
    post,
    path = "/api/mfa/1.0/policy",
    tag = "mfa",
    security(("basic" = []), ("bearer" = [])),
    request_body = PolicyUpdate,
    responses(
        (status = 200, description = "The policy now in force", body = PolicyView),
        (status = 400, description = "Malformed JSON or invalid fields (error_info.fields names them)", body = ErrorBody),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Caller is not an Administrator", body = ErrorBody),
    )
)]
pub async fn set_policy(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<PolicyView>, ApiError> {
    caller.require_admin()?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("JSON error: {e}")))?;
    let Some(members) = value.as_object() else {
        return Err(ApiError::bad_request(
            "JSON error: the body must be a JSON object",
        ));
    };
    let nulls: Vec<(String, String)> = members
        .iter()
        .filter(|(_, v)| v.is_null())
        .map(|(k, _)| (k.clone(), "must not be null".to_string()))
        .collect();
    if !nulls.is_empty() {
        return Err(ApiError::invalid_fields("Invalid argument.", nulls));
    }
    let update = PolicyUpdate::deserialize(&value)
        .map_err(|e| ApiError::bad_request(format!("JSON error: {e}")))?;
    let mfa = state
        .store
        .update(move |config| {
            let policy = &mut config.mfa.policy;
            if let Some(required) = update.required {
                policy.required = required.into();
            }
            if let Some(roles) = update.roles {
                policy.roles = roles;
            }
            if let Some(users) = update.exempt_users {
                policy.exempt_users = users;
            }
            if let Some(failmode) = update.failmode {
                policy.failmode = failmode.into();
            }
            if let Some(enrollment) = update.enrollment {
                policy.enrollment = enrollment.into();
            }
            if let Some(applications) = update.applications {
                config.mfa.applications = applications
                    .into_iter()
                    .map(|a| ApplicationPolicy {
                        application: a.application,
                        policy: MfaPolicy {
                            required: a.required.into(),
                            roles: a.roles,
                            exempt_users: a.exempt_users,
                            failmode: a.failmode.into(),
                            enrollment: a.enrollment.into(),
                        },
                    })
                    .collect();
            }
            Ok(config.mfa.clone())
        })
        .await?;
    tracing::info!(caller = %caller.user, policy = ?mfa.policy, "MFA policy changed");
    Ok(Json(view(&mfa)))
}
