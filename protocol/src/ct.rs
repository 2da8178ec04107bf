//! Constant-time helpers shared by both codecs.

use subtle::ConstantTimeEq;

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
