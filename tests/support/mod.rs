//! Shared support for the integration tests in `tests/`.
//!
//! Each test binary declares `mod support;` and uses what it needs; items a given binary does not
//! use are allowed to be dead there.

#![allow(dead_code)]

pub mod daemon;
pub mod fault_proxy;
pub mod freeradius;
pub mod mfa;
pub mod mfa_peers;
pub mod pam;
pub mod pki;
pub mod postgres;
pub mod radius_udp;
pub mod radsecproxy;
pub mod scripted_radius;
pub mod tacacs_server;
