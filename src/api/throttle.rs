//! The brute-force throttle ([`crate::throttle`]) at the REST edge: the peer of a request,
//! and a lock as the 429 answer.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use portcullis_config::Throttle;
use serde_json::json;

use super::error::ApiError;
use crate::throttle::{LOCKED_OUT, Locked, Origin};

/// The peer address of a REST request: `None` on the Unix socket. Never rejects.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl Peer {
    /// The peer recorded in `parts` by the HTTPS server.
    pub fn of(parts: &Parts) -> Peer {
        Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0),
        )
    }

    /// The origin of a request from this peer under `config`.
    pub fn origin(self, config: &Throttle) -> Origin {
        Origin::of_peer(self.0, config)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Self::Rejection> {
        Ok(Peer::of(parts))
    }
}

/// 429 LOCKED_OUT with `error_info {reason, retry_after}`; the response carries
/// `Retry-After`.
pub fn locked(lock: Locked) -> ApiError {
    let mut error = ApiError::bad_request(
        "Too many failed logins: this account or address is temporarily locked. Try again \
         later.",
    )
    .with_info(json!({ "reason": LOCKED_OUT, "retry_after": lock.retry_after }));
    error.status = StatusCode::TOO_MANY_REQUESTS;
    error.error_id = LOCKED_OUT;
    error
}
