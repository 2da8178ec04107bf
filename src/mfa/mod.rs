//! Second factors. The MFA service ([`service`]): applications, users with validated
//! addresses, one-time codes delivered by SMS webhook or e-mail ([`delivery`], [`smtp`]),
//! generated and hashed by [`codes`].

pub mod codes;
pub mod delivery;
pub mod service;
pub mod smtp;
pub mod time;
