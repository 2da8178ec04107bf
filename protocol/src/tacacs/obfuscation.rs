//! Body obfuscation (RFC 8907 §4.5).

use md5::{Digest, Md5};

use super::Version;

/// Octets in one MD5 digest, and in one piece of the pseudo-pad.
const PAD_BLOCK_LEN: usize = 16;

/// XORs `body` in place with the pseudo-pad of RFC 8907 §4.5; applying it twice restores the
/// body, so this both obfuscates and deobfuscates.
///
/// ```text
/// MD5_1 = MD5{session_id, key, version, seq_no}
/// MD5_n = MD5{session_id, key, version, seq_no, MD5_n-1}
/// pseudo_pad = {MD5_1 [,MD5_2 [ ... ,MD5_n]]} truncated to len(data)
/// ```
///
/// `session_id` is hashed in network byte order, `version` as its header octet.
pub fn apply_pad(key: &[u8], session_id: u32, version: Version, seq_no: u8, body: &mut [u8]) {
    // RFC 8907 §4.5: every hash starts with session_id, key, version and seq_no, so that
    // prefix is hashed once and its state cloned for each block.
    let mut prefix = Md5::new();
    prefix.update(session_id.to_be_bytes());
    prefix.update(key);
    prefix.update([version.octet(), seq_no]);

    let mut pad = [0u8; PAD_BLOCK_LEN];
    for (index, chunk) in body.chunks_mut(PAD_BLOCK_LEN).enumerate() {
        let mut hasher = prefix.clone();
        // RFC 8907 §4.5: MD5_n also hashes MD5_n-1; MD5_1 does not.
        if index > 0 {
            hasher.update(pad);
        }
        hasher.finalize_into((&mut pad).into());
        for (octet, pad_octet) in chunk.iter_mut().zip(pad) {
            *octet ^= pad_octet;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with Python's hashlib: session_id 0x12345678, key
    // "tac_plus_key", version 0xc1, seq_no 1, over the 37 octets 0x30..=0x54 (two full
    // blocks and a partial one, so the chain and the truncation both show).
    const CLEAR: &str =
        "303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354";
    const PAD: &str = "da9a56c97c8ba92b5b8dc6bafaaf631085257f4e4b0bc8b0f31a048289988e54f2e9060848";
    const OBFUSCATED: &str =
        "eaab64fa48be9f1c63b4fc81c6925d2fc5643d0d0f4e8ef7bb534ec9c5d5c01ba2b8545b1c";

    fn unhex(hex: &str) -> std::vec::Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn matches_known_vector() {
        let mut body = unhex(CLEAR);
        apply_pad(b"tac_plus_key", 0x1234_5678, Version::ONE, 1, &mut body);
        assert_eq!(body, unhex(OBFUSCATED));
        apply_pad(b"tac_plus_key", 0x1234_5678, Version::ONE, 1, &mut body);
        assert_eq!(body, unhex(CLEAR));
    }

    #[test]
    fn pad_is_xored_over_zeros() {
        let mut body = [0u8; 37];
        apply_pad(b"tac_plus_key", 0x1234_5678, Version::ONE, 1, &mut body);
        assert_eq!(body.to_vec(), unhex(PAD));
    }

    #[test]
    fn every_header_input_changes_the_pad() {
        let pad = |key: &[u8], session_id, version, seq_no| {
            let mut body = [0u8; 20];
            apply_pad(key, session_id, version, seq_no, &mut body);
            body
        };
        let base = pad(b"k", 1, Version::DEFAULT, 1);
        assert_ne!(base, pad(b"j", 1, Version::DEFAULT, 1));
        assert_ne!(base, pad(b"k", 2, Version::DEFAULT, 1));
        assert_ne!(base, pad(b"k", 1, Version::ONE, 1));
        assert_ne!(base, pad(b"k", 1, Version::DEFAULT, 3));
    }

    #[test]
    fn empty_key_and_empty_body() {
        // Python: hashlib.md5(bytes.fromhex("12345678") + b"\xc1\x01").digest()[:5]
        let mut body = [0u8; 5];
        apply_pad(b"", 0x1234_5678, Version::ONE, 1, &mut body);
        assert_eq!(body.to_vec(), unhex("8241ba4698"));
        apply_pad(b"k", 1, Version::DEFAULT, 1, &mut []);
    }
}
