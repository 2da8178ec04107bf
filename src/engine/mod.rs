//! The authentication engine: the sequence walk over local users and remote servers.

pub mod local;
pub mod roles;
