//! Secrets in API answers: shown as the cloak `****************` unless the URL asks for them
//! with `?uncloak` (any value or none), which only administrators may.

use portcullis_config::{CLOAK, Secret};

use super::auth::Caller;
use super::error::ApiError;

/// Whether the URL asks for secrets in clear; 403 for a caller who is not an administrator.
pub fn wants_uncloak(caller: &Caller, query: Option<&str>) -> Result<bool, ApiError> {
    let asked = query.is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("uncloak"))
    });
    if asked {
        caller.require_admin()?;
    }
    Ok(asked)
}

/// A secret as a list shows it.
pub fn shown(secret: &Secret, uncloak: bool) -> String {
    if uncloak {
        secret.expose().to_owned()
    } else {
        CLOAK.to_owned()
    }
}

/// Whether a request keeps the configured secret: it sent none, or the cloak a list showed.
pub fn keeps_secret(secret: Option<&str>) -> bool {
    secret.is_none_or(|secret| secret == CLOAK)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn uncloak_is_any_value_or_none_and_for_administrators() {
        let admin = Caller {
            user: "a".into(),
            key: portcullis_config::UserKey::of("a"),
            roles: vec!["Administrator".into()],
        };
        let monitor = Caller {
            user: "m".into(),
            key: portcullis_config::UserKey::of("m"),
            roles: vec!["Monitor".into()],
        };
        assert!(!wants_uncloak(&admin, None).unwrap());
        assert!(!wants_uncloak(&admin, Some("uncloaked=1")).unwrap());
        assert!(wants_uncloak(&admin, Some("uncloak")).unwrap());
        assert!(wants_uncloak(&admin, Some("a=b&uncloak=false")).unwrap());
        assert!(!wants_uncloak(&monitor, None).unwrap());
        assert_eq!(
            wants_uncloak(&monitor, Some("uncloak")).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn cloak_and_keep() {
        let secret = Secret::new("s3cret-value");
        assert_eq!(shown(&secret, false), CLOAK);
        assert_eq!(shown(&secret, true), "s3cret-value");
        assert!(keeps_secret(None));
        assert!(keeps_secret(Some(CLOAK)));
        assert!(!keeps_secret(Some("new-secret")));
    }
}
