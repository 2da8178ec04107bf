//! Clients for the remote servers a login is checked against.

pub mod radius;
pub mod tacacs;
pub mod tls;

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use tokio::time::Instant;

/// What portcullis learns about one upstream server while it runs. It outlives the engine
/// that learned it: the next engine (after a configuration change) takes it over for every
/// server whose identity (protocol, address, secret) is unchanged, so a change elsewhere in
/// the configuration neither revives a dead server nor forgets that one signs its replies.
#[derive(Debug, Default)]
pub struct Learned {
    /// Until when the server is skipped, after it stayed silent.
    pub dead_until: Mutex<Option<Instant>>,
    /// The RADIUS server has sent a valid Message-Authenticator: with
    /// `require_message_authenticator = "auto"` every reply must carry one from now on.
    pub signed_seen: AtomicBool,
    /// An unsigned RADIUS reply was accepted and reported once.
    pub unsigned_warned: AtomicBool,
    /// When the dead server was last probed with Status-Server.
    pub probed: Mutex<Option<Instant>>,
    /// When the server last gave a valid answer (Unix seconds; 0: never).
    pub answered: std::sync::atomic::AtomicU64,
    /// The RADIUS server has answered a Status-Server: silence to one means it is down.
    pub status_server: AtomicBool,
}
