//! Clients for the remote servers a login is checked against.

pub mod radius;
pub mod tacacs;
