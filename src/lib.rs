//! The portcullis daemon: the authentication engine, its upstream clients and its front doors
//! (the REST API, the RADIUS front-end). The binary in `main.rs` is a thin command-line layer over this library.

pub mod api;
pub mod audit;
pub mod daemon;
pub mod engine;
pub mod frontend;
pub mod live;
pub mod login;
pub mod mfa;
pub mod priority;
pub mod state;
pub mod sync;
pub mod telemetry;
pub mod throttle;
pub mod upstream;
