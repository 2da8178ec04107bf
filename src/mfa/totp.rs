//! TOTP (RFC 6238) over HOTP (RFC 4226), and the base32 (RFC 4648 §6) of otpauth URIs.
//!
//! Authenticator apps use SHA-1, 6 digits and 30-second steps; SHA-256 and SHA-512 are here
//! for the RFC 6238 appendix B vectors. Codes are compared in constant time.

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

/// Seconds per time step (RFC 6238 §4.1 X).
pub const PERIOD: u64 = 30;
/// Digits of a code from an authenticator app.
pub const DIGITS: u32 = 6;
/// Steps of clock drift accepted each way (RFC 6238 §5.2).
pub const DRIFT: u64 = 1;
/// Octets of a new secret (RFC 4226 §4 R6 recommends 160 bits).
pub const SECRET_LEN: usize = 20;

/// The hash under HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA-1, what authenticator apps use.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

/// The time step of `unix_time` (RFC 6238 §4.2: T = floor((time - T0) / X), T0 = 0).
pub fn step(unix_time: u64) -> u64 {
    unix_time / PERIOD
}

/// HOTP(K, C) truncated to `digits` (RFC 4226 §5.3), without leading zeros dropped.
pub fn hotp(algorithm: Algorithm, key: &[u8], counter: u64, digits: u32) -> String {
    let message = counter.to_be_bytes();
    let digest: Vec<u8> = match algorithm {
        Algorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, &message),
        Algorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, &message),
        Algorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, &message),
    };
    // RFC 4226 §5.4: the low nibble of the last octet is the offset of 4 octets whose value,
    // top bit cleared, modulo 10^digits is the code.
    let offset = digest.last().map_or(0, |b| usize::from(b & 0x0f));
    let mut word = [0u8; 4];
    if let Some(slice) = digest.get(offset..offset + 4) {
        word.copy_from_slice(slice);
    }
    let binary = u32::from_be_bytes(word) & 0x7fff_ffff;
    let modulus = 10u64.pow(digits.min(10));
    let value = u64::from(binary) % modulus;
    format!("{value:0width$}", width = digits as usize)
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this never fails.
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// The 6-digit SHA-1 code of `key` for time step `step`.
pub fn code(key: &[u8], step: u64) -> String {
    hotp(Algorithm::Sha1, key, step, DIGITS)
}

/// The step within [`DRIFT`] of `now_step` whose code is `offered`, compared in constant
/// time; steps at or below `last_accepted` are refused (a code is accepted once).
pub fn matching_step(
    key: &[u8],
    offered: &str,
    now_step: u64,
    last_accepted: Option<u64>,
) -> Option<u64> {
    if offered.len() != DIGITS as usize || !offered.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut found = None;
    for candidate in now_step.saturating_sub(DRIFT)..=now_step.saturating_add(DRIFT) {
        let expected = code(key, candidate);
        let equal: bool = expected.as_bytes().ct_eq(offered.as_bytes()).into();
        let fresh = last_accepted.is_none_or(|last| candidate > last);
        if equal && fresh && found.is_none() {
            found = Some(candidate);
        }
    }
    found
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 (RFC 4648 §6) without padding, as otpauth URIs carry secrets.
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32, case-insensitive, padding and spaces ignored; `None` on another character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let upper = c.to_ascii_uppercase();
        let value = BASE32.iter().position(|b| *b == upper)?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The otpauth URI an authenticator app scans.
pub fn otpauth_uri(user: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/portcullis:{}?secret={}&issuer=portcullis&algorithm=SHA1&digits={DIGITS}&period={PERIOD}",
        percent_encode(user),
        base32_encode(secret)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the seeds are ASCII "12345678901234567890" repeated to the
    /// hash's length.
    fn seed(len: usize) -> Vec<u8> {
        b"1234567890".iter().copied().cycle().take(len).collect()
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in vectors {
            let t = step(time);
            assert_eq!(
                hotp(Algorithm::Sha1, &seed(20), t, 8),
                sha1,
                "SHA-1 at {time}"
            );
            assert_eq!(
                hotp(Algorithm::Sha256, &seed(32), t, 8),
                sha256,
                "SHA-256 at {time}"
            );
            assert_eq!(
                hotp(Algorithm::Sha512, &seed(64), t, 8),
                sha512,
                "SHA-512 at {time}"
            );
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_values() {
        let expected = ["755224", "287082", "359152", "969429", "338314"];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(Algorithm::Sha1, &seed(20), counter as u64, 6), *code);
        }
    }

    #[test]
    fn drift_and_replay() {
        let key = seed(20);
        let now = 1_000_000;
        assert_eq!(matching_step(&key, &code(&key, now), now, None), Some(now));
        assert_eq!(
            matching_step(&key, &code(&key, now - 1), now, None),
            Some(now - 1)
        );
        assert_eq!(
            matching_step(&key, &code(&key, now + 1), now, None),
            Some(now + 1)
        );
        assert_eq!(matching_step(&key, &code(&key, now - 2), now, None), None);
        assert_eq!(matching_step(&key, &code(&key, now + 2), now, None), None);
        // Accepted once, never again; an older step is no better.
        assert_eq!(matching_step(&key, &code(&key, now), now, Some(now)), None);
        assert_eq!(
            matching_step(&key, &code(&key, now - 1), now, Some(now)),
            None
        );
        assert_eq!(
            matching_step(&key, &code(&key, now + 1), now, Some(now)),
            Some(now + 1)
        );
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(matching_step(&key, bad, now, None), None, "{bad}");
        }
    }

    #[test]
    fn base32_round_trip_and_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert!(base32_decode("MZ1W").is_none());
        let secret: Vec<u8> = (0..20).collect();
        assert_eq!(base32_decode(&base32_encode(&secret)).unwrap(), secret);
    }

    #[test]
    fn uri_shape() {
        let uri = otpauth_uri("a b@c", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/portcullis:a%20b%40c?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=portcullis&algorithm=SHA1&digits=6&period=30"
        );
    }
}
