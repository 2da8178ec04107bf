//! Wire codecs for the protocols portcullis speaks: RADIUS ([`radius`]) and TACACS+ ([`tacacs`]).
//!
//! The crate is sans-IO: it owns no sockets, no clocks and no random number generator. Callers
//! pass in the bytes they received, the time and the randomness they need, and get back values
//! or bytes written into buffers they own.
//!
//! Each format has two levels, after smoltcp's `wire` module:
//! - a *view* (`Packet<T: AsRef<[u8]>>`) over a buffer. `new_checked` validates every length
//!   once; after it succeeds no accessor can panic and parsing never allocates;
//! - a *builder* that emits into a caller buffer and patches length fields once the body is
//!   written.
//!
//! Untrusted bytes only ever enter through `new_checked`. Every check on wire data names the RFC
//! section that requires it.
#![no_std]
#![deny(missing_docs)]
#![deny(clippy::indexing_slicing)]

#[cfg(any(test, feature = "fuzzing"))]
extern crate std;

mod ct;
pub mod radius;
pub mod tacacs;

// The fuzz checks exist to fail loudly: a panic there is a finding, not a bug in the check.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
#[allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
pub mod fuzzing;
