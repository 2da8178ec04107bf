//! RADIUS crypto: authenticators, User-Password hiding, CHAP, Message-Authenticator.
//!
//! All of it is MD5 or HMAC-MD5 over octets the caller already has; nothing here allocates,
//! and every comparison with a received value is constant-time.

use core::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

use super::{AUTHENTICATOR_LEN, Error, MAX_PASSWORD_LEN};
use crate::ct;

/// The MD5 block size, which is also the HMAC-MD5 key block (RFC 2104 §2).
const MD5_BLOCK_LEN: usize = 64;

/// A RADIUS shared secret, with its HMAC-MD5 key schedule (RFC 2104 §2) computed once, so
/// that signing and verifying Message-Authenticators does not redo it for every packet.
///
/// `Debug` prints `Secret(****)`: the octets never reach a log line through this type.
#[derive(Clone)]
pub struct Secret<T: AsRef<[u8]>> {
    bytes: T,
    hmac: Hmac<Md5>,
}

impl<T: AsRef<[u8]>> Secret<T> {
    /// Wraps the secret's octets.
    pub fn new(bytes: T) -> Self {
        // RFC 2104 §2: a key longer than the block is replaced by its hash; a shorter one is
        // padded with zeros to the block. Doing that here makes the key exactly one block, so
        // the constructor below cannot fail.
        let secret = bytes.as_ref();
        let mut block = [0u8; MD5_BLOCK_LEN];
        if secret.len() > MD5_BLOCK_LEN {
            let digest: [u8; 16] = Md5::digest(secret).into();
            for (dst, src) in block.iter_mut().zip(digest) {
                *dst = src;
            }
        } else {
            for (dst, src) in block.iter_mut().zip(secret) {
                *dst = *src;
            }
        }
        let hmac = <Hmac<Md5> as KeyInit>::new(&block.into());
        Secret { bytes, hmac }
    }

    /// The secret's octets.
    pub fn expose(&self) -> &[u8] {
        self.bytes.as_ref()
    }
}

impl<T: AsRef<[u8]>> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// MD5 over the concatenation of `parts`.
pub(super) fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// HMAC-MD5 keyed with `secret` over the concatenation of `parts` (RFC 3579 §3.2).
#[inline]
pub(super) fn hmac_md5<S: AsRef<[u8]>>(secret: &Secret<S>, parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = secret.hmac.clone();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Hides `password` as RFC 2865 §5.2 describes, writing the result into `out` and returning
/// how many octets of it are used (the password padded with NULs to a multiple of 16, at least
/// 16). `authenticator` is the Request Authenticator of the packet that will carry it.
pub fn hide_password<'o, S: AsRef<[u8]>>(
    password: &[u8],
    secret: &Secret<S>,
    authenticator: &[u8; AUTHENTICATOR_LEN],
    out: &'o mut [u8; MAX_PASSWORD_LEN],
) -> Result<&'o [u8], Error> {
    // RFC 2865 §5.2: the password is at most 128 octets.
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::PasswordTooLong);
    }
    let len = password.len().div_ceil(AUTHENTICATOR_LEN).max(1) * AUTHENTICATOR_LEN;
    out.fill(0);
    let (used, _) = out.split_at_mut(len);
    for (dst, src) in used.iter_mut().zip(password) {
        *dst = *src;
    }
    let keyed = Md5::new_with_prefix(secret.expose());
    let mut previous: [u8; AUTHENTICATOR_LEN] = *authenticator;
    for chunk in used.chunks_exact_mut(AUTHENTICATOR_LEN) {
        // b(i) = MD5(S + c(i-1)), c(i) = p(i) xor b(i), c(0) = Request Authenticator.
        let b: [u8; 16] = keyed.clone().chain_update(previous).finalize().into();
        for (c, k) in chunk.iter_mut().zip(b) {
            *c ^= k;
        }
        for (p, c) in previous.iter_mut().zip(chunk.iter()) {
            *p = *c;
        }
    }
    Ok(used)
}

/// Recovers a password hidden as RFC 2865 §5.2 describes, writing it into `out` and returning
/// it without the trailing NUL padding. `authenticator` is the Request Authenticator of the
/// packet that carried it.
pub fn recover_password<'o, S: AsRef<[u8]>>(
    hidden: &[u8],
    secret: &Secret<S>,
    authenticator: &[u8; AUTHENTICATOR_LEN],
    out: &'o mut [u8; MAX_PASSWORD_LEN],
) -> Result<&'o [u8], Error> {
    // RFC 2865 §5.2: 16 to 128 octets, a multiple of 16.
    if hidden.len() < AUTHENTICATOR_LEN
        || hidden.len() > MAX_PASSWORD_LEN
        || hidden.len() % AUTHENTICATOR_LEN != 0
    {
        return Err(Error::InvalidHiddenPassword);
    }
    let (plain, _) = out.split_at_mut(hidden.len());
    let keyed = Md5::new_with_prefix(secret.expose());
    let mut previous: &[u8] = authenticator;
    for (dst, src) in plain
        .chunks_exact_mut(AUTHENTICATOR_LEN)
        .zip(hidden.chunks_exact(AUTHENTICATOR_LEN))
    {
        let b: [u8; 16] = keyed.clone().chain_update(previous).finalize().into();
        for ((d, c), k) in dst.iter_mut().zip(src).zip(b) {
            *d = c ^ k;
        }
        previous = src;
    }
    let end = plain.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let (password, _) = plain.split_at(end);
    Ok(password)
}

/// The CHAP response RFC 1994 §4.1 defines and RFC 2865 §5.3 carries in CHAP-Password:
/// MD5(CHAP Ident + password + challenge).
pub fn chap_response(ident: u8, password: &[u8], challenge: &[u8]) -> [u8; 16] {
    md5(&[&[ident], password, challenge])
}

/// Checks a CHAP-Password response against the password the gateway knows, in constant time.
pub fn verify_chap(ident: u8, response: &[u8; 16], password: &[u8], challenge: &[u8]) -> bool {
    ct::eq(&chap_response(ident, password, challenge), response)
}

#[cfg(test)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use super::super::testutil::hex16;
    use super::*;

    #[test]
    fn hide_and_recover_every_length() {
        let secret = &Secret::new(b"xyzzy5461");
        let auth = [0x0f; 16];
        for len in 0..=MAX_PASSWORD_LEN {
            let password: Vec<u8> = (0..len).map(|i| (i % 250) as u8 + 1).collect();
            let mut hidden = [0u8; MAX_PASSWORD_LEN];
            let hidden = hide_password(&password, secret, &auth, &mut hidden).unwrap();
            assert_eq!(hidden.len(), len.div_ceil(16).max(1) * 16);
            let mut out = [0u8; MAX_PASSWORD_LEN];
            let recovered = recover_password(hidden, secret, &auth, &mut out).unwrap();
            assert_eq!(recovered, &password[..]);
            let mut wrong = [0u8; MAX_PASSWORD_LEN];
            if len > 0 {
                let other =
                    recover_password(hidden, &Secret::new(b"other"), &auth, &mut wrong).unwrap();
                assert_ne!(other, &password[..]);
            }
        }
    }

    #[test]
    fn password_limits() {
        let mut out = [0u8; MAX_PASSWORD_LEN];
        assert_eq!(
            hide_password(&[1; 129], &Secret::new(b"s"), &[0; 16], &mut out),
            Err(Error::PasswordTooLong)
        );
        for len in [0, 15, 17, 144] {
            assert_eq!(
                recover_password(&vec![0; len], &Secret::new(b"s"), &[0; 16], &mut out),
                Err(Error::InvalidHiddenPassword),
                "len {len}"
            );
        }
    }

    #[test]
    fn rfc2865_section_7_1_password() {
        // RFC 2865 §7.1: user "nemo", password "arctangent", secret "xyzzy5461".
        let auth = hex16("0f403f9473978057bd83d5cb98f4227a");
        let expected = hex16("0dbe708d93d413ce3196e43f782a0aee");
        let mut out = [0u8; MAX_PASSWORD_LEN];
        let hidden =
            hide_password(b"arctangent", &Secret::new(b"xyzzy5461"), &auth, &mut out).unwrap();
        assert_eq!(hidden, expected);
    }

    #[test]
    fn chap_matches_rfc1994_definition() {
        let challenge = [9u8; 16];
        let response = chap_response(3, b"secret", &challenge);
        let mut input = vec![3u8];
        input.extend_from_slice(b"secret");
        input.extend_from_slice(&challenge);
        assert_eq!(response, <[u8; 16]>::from(Md5::digest(&input)));
        assert!(verify_chap(3, &response, b"secret", &challenge));
        assert!(!verify_chap(4, &response, b"secret", &challenge));
        assert!(!verify_chap(3, &response, b"Secret", &challenge));
    }

    #[test]
    fn secret_hmac_matches_rfc2104_for_every_key_length() {
        use hmac::Mac;
        for len in [0usize, 1, 16, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let secret = Secret::new(&key[..]);
            let mut reference = <Hmac<Md5> as Mac>::new_from_slice(&key).unwrap();
            reference.update(b"message");
            let expected: [u8; 16] = reference.finalize().into_bytes().into();
            assert_eq!(
                hmac_md5(&secret, &[b"mess", b"age"]),
                expected,
                "key length {len}"
            );
        }
        // RFC 2202 §2, test case 2.
        let secret = Secret::new(b"Jefe");
        assert_eq!(
            hmac_md5(&secret, &[b"what do ya want for nothing?"]),
            hex16("750c783e6ab0b503eaa86e310a5db738")
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret::new(b"hunter2-hunter2");
        let printed = std::format!("{secret:?}");
        assert_eq!(printed, "Secret(****)");
        assert_eq!(secret.expose(), b"hunter2-hunter2");
    }
}
