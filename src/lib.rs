//! The portcullis daemon: the authentication engine, its upstream clients and (to come) its
//! front doors. The binary in `main.rs` is a thin command-line layer over this library.

pub mod api;
pub mod engine;
pub mod upstream;
