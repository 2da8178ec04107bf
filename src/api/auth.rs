//! Who is calling: HTTP Basic against the local users, or a bearer token from a login.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_config::UserKey;

use super::AppState;
use super::error::ApiError;
use crate::login::{Attempt, Credential, Door, Refusal, Settled};

/// The role that may change the configuration.
pub use portcullis_config::ADMINISTRATOR;
/// The role that may read it.
pub const MONITOR: &str = "Monitor";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User name, as typed.
    pub user: String,
    /// The canonical identity of `user`: the key of everything kept per user.
    pub key: UserKey,
    /// Roles.
    pub roles: Vec<String>,
}

impl Caller {
    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Writes need `Administrator`.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.has(ADMINISTRATOR) {
            Ok(())
        } else {
            Err(ApiError::forbidden(ADMINISTRATOR))
        }
    }

    /// Reads need `Administrator` or `Monitor`.
    pub fn require_reader(&self) -> Result<(), ApiError> {
        if self.has(ADMINISTRATOR) || self.has(MONITOR) {
            Ok(())
        } else {
            Err(ApiError::forbidden("Administrator or Monitor"))
        }
    }
}

/// The token of an `Authorization: Bearer` header, if that is what the request carries.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let Some(value) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiError::auth_required());
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::invalid_credentials())?;
        let Some((scheme, credentials)) = value.split_once(' ') else {
            return Err(ApiError::invalid_credentials());
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            return match state.sessions.find_any(credentials.trim()).await {
                Some(session) if session.partial => Err(super::mfa_login::partial_token_refused()),
                Some(session) => {
                    crate::audit::set_caller(&session.user);
                    Ok(Caller {
                        user: session.user,
                        key: session.key,
                        roles: session.roles,
                    })
                }
                None => Err(ApiError::invalid_credentials()),
            };
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(ApiError::invalid_credentials());
        }
        let decoded = STANDARD
            .decode(credentials.trim())
            .map_err(|_| ApiError::invalid_credentials())?;
        let decoded = String::from_utf8(decoded).map_err(|_| ApiError::invalid_credentials())?;
        let Some((user, password)) = decoded.split_once(':') else {
            return Err(ApiError::invalid_credentials());
        };
        let live = state.store.current();
        let attempt = Attempt {
            user,
            credential: Credential::Password(password.as_bytes()),
            origin: super::throttle::Peer::of(parts).origin(&live.config.throttle),
            door: Door::Basic,
        };
        let login = crate::login::login(state.pipeline(), &live, attempt)
            .await
            .map_err(super::throttle::locked)?;
        match login.settled {
            Settled::Accepted => {
                crate::audit::set_caller(user);
                Ok(Caller {
                    user: user.to_string(),
                    key: UserKey::of(user),
                    roles: login.roles().to_vec(),
                })
            }
            // Once MFA applies to the user, the password alone is not enough.
            Settled::Refused(Refusal::SecondFactorRequired) => {
                Err(super::mfa_login::basic_refused())
            }
            _ => Err(ApiError::invalid_credentials()),
        }
    }
}
