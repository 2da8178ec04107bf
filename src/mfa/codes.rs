//! One-time codes: generated from the OS CSPRNG over an application's alphabet, stored only as
//! a keyed hash, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The alphabets of `auth_token_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// Digits `0-9`.
    Numeric,
    /// Upper-case letters `A-Z` and digits; checked case-insensitively.
    Alphanumeric,
    /// Upper-case letters `A-Z`; checked case-insensitively.
    Alpha,
    /// Letters of both cases, digits and the symbols of [`SYMBOLS`]; checked exactly.
    Complex,
}

/// The symbols a COMPLEX code may hold: printable, unambiguous in SMS and e-mail, none that a
/// template (`$`) or a shell would read specially.
pub const SYMBOLS: &str = "!#%*+-=?@^_~";

const DIGITS: &str = "0123456789";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";

impl TokenType {
    /// All types, in the documented order.
    pub const ALL: [TokenType; 4] = [
        TokenType::Numeric,
        TokenType::Alphanumeric,
        TokenType::Alpha,
        TokenType::Complex,
    ];

    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Numeric => "NUMERIC",
            TokenType::Alphanumeric => "ALPHANUMERIC",
            TokenType::Alpha => "ALPHA",
            TokenType::Complex => "COMPLEX",
        }
    }

    /// Parses the API's name (exactly, upper case).
    pub fn parse(name: &str) -> Option<TokenType> {
        TokenType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The characters a code of this type is drawn from.
    pub fn alphabet(self) -> Vec<u8> {
        let parts: &[&str] = match self {
            TokenType::Numeric => &[DIGITS],
            TokenType::Alphanumeric => &[UPPER, DIGITS],
            TokenType::Alpha => &[UPPER],
            TokenType::Complex => &[UPPER, LOWER, DIGITS, SYMBOLS],
        };
        parts.iter().flat_map(|p| p.bytes()).collect()
    }

    /// What a user typed, in the form the code was generated in: ALPHA and ALPHANUMERIC
    /// codes are upper-cased (users and phones change case), the others kept.
    pub fn normalize(self, typed: &str) -> String {
        match self {
            TokenType::Alpha | TokenType::Alphanumeric => typed.to_ascii_uppercase(),
            TokenType::Numeric | TokenType::Complex => typed.to_owned(),
        }
    }
}

/// Why no code could be made.
#[derive(Debug, thiserror::Error)]
#[error("the OS random number generator failed: {0}")]
pub struct RandomError(String);

/// `length` characters drawn uniformly and independently from `alphabet` (at most 256
/// characters) with bytes of the OS CSPRNG. Rejection sampling keeps the choice uniform: a
/// byte is used only when it is below the largest multiple of the alphabet's size that fits
/// in a byte, so no character is more likely than another.
pub fn generate(alphabet: &[u8], length: usize) -> Result<String, RandomError> {
    let size = alphabet.len();
    if size == 0 || size > 256 {
        return Err(RandomError(format!("alphabet of {size} characters")));
    }
    let limit = 256 - (256 % size);
    let mut code = String::with_capacity(length);
    let mut pool = [0u8; 64];
    while code.len() < length {
        getrandom::fill(&mut pool).map_err(|e| RandomError(e.to_string()))?;
        for &byte in &pool {
            if code.len() == length {
                break;
            }
            if usize::from(byte) < limit {
                if let Some(&c) = alphabet.get(usize::from(byte) % size) {
                    code.push(char::from(c));
                }
            }
        }
    }
    Ok(code)
}

/// `n` bytes from the OS CSPRNG as lower-case hex: resource ids and hash keys.
pub fn random_hex(n: usize) -> Result<String, RandomError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// HMAC-SHA256 under the database's key of everything that binds a code: the application, the
/// user, the purpose and the code itself, each length-prefixed so no two inputs collide.
pub fn hash(key: &[u8], application: &str, user: &str, purpose: &str, code: &str) -> Vec<u8> {
    // HMAC takes keys of any length; the error arm cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    for part in [application, user, purpose, code] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// Whether two hashes are equal, in time independent of where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabets() {
        assert_eq!(TokenType::Numeric.alphabet(), b"0123456789");
        assert_eq!(TokenType::Alpha.alphabet().len(), 26);
        assert_eq!(TokenType::Alphanumeric.alphabet().len(), 36);
        assert_eq!(TokenType::Complex.alphabet().len(), 62 + SYMBOLS.len());
        assert!(!TokenType::Complex.alphabet().contains(&b'$'));
        for t in TokenType::ALL {
            assert_eq!(TokenType::parse(t.as_str()), Some(t));
        }
        assert_eq!(TokenType::parse("numeric"), None);
        assert_eq!(TokenType::Alpha.normalize("abZ"), "ABZ");
        assert_eq!(TokenType::Complex.normalize("abZ"), "abZ");
    }

    #[test]
    fn codes_have_the_length_and_alphabet_asked_for() {
        for t in TokenType::ALL {
            let alphabet = t.alphabet();
            for length in [1, 4, 6, 8, 32, 100] {
                let code = generate(&alphabet, length).unwrap();
                assert_eq!(code.len(), length, "{t:?}");
                assert!(code.bytes().all(|c| alphabet.contains(&c)), "{t:?} {code}");
            }
        }
        assert_eq!(generate(b"0123456789", 0).unwrap(), "");
        assert!(generate(b"", 4).is_err());
    }

    #[test]
    fn every_character_is_drawn_and_none_favoured() {
        // 36 characters do not divide 256: a plain `byte % 36` would make the first 4
        // characters 8/7 as likely as the others. With rejection sampling each of the 36
        // appears with probability 1/36; over 36 000 draws each count is 1000 on average
        // with a standard deviation of about 31, so 800..1200 holds except with negligible
        // probability (over 6 standard deviations), while the bias would show as ~1120 for
        // the first four.
        let alphabet = TokenType::Alphanumeric.alphabet();
        let code = generate(&alphabet, 36_000).unwrap();
        let mut counts = [0usize; 256];
        for c in code.bytes() {
            counts[usize::from(c)] += 1;
        }
        for &c in &alphabet {
            let n = counts[usize::from(c)];
            assert!(
                (800..1200).contains(&n),
                "{} drawn {n} times",
                char::from(c)
            );
        }
        let first_four: usize = alphabet[..4].iter().map(|&c| counts[usize::from(c)]).sum();
        let last_four: usize = alphabet[32..].iter().map(|&c| counts[usize::from(c)]).sum();
        // Biased, the first four would total ~4480 against ~3920.
        assert!(
            first_four.abs_diff(last_four) < 400,
            "{first_four} vs {last_four}"
        );
    }

    #[test]
    fn codes_differ() {
        let alphabet = TokenType::Numeric.alphabet();
        let a = generate(&alphabet, 20).unwrap();
        let b = generate(&alphabet, 20).unwrap();
        assert_ne!(a, b);
        assert_eq!(random_hex(16).unwrap().len(), 32);
        assert_ne!(random_hex(16).unwrap(), random_hex(16).unwrap());
    }

    #[test]
    fn hashes_bind_every_part() {
        let key = b"0123456789abcdef0123456789abcdef";
        let h = hash(key, "app", "alice", "login", "123456");
        assert_eq!(h.len(), 32);
        assert!(same(&h, &hash(key, "app", "alice", "login", "123456")));
        for other in [
            hash(b"another key", "app", "alice", "login", "123456"),
            hash(key, "app2", "alice", "login", "123456"),
            hash(key, "app", "bob", "login", "123456"),
            hash(key, "app", "alice", "associate", "123456"),
            hash(key, "app", "alice", "login", "123457"),
            hash(key, "appa", "lice", "login", "123456"),
        ] {
            assert!(!same(&h, &other));
        }
        assert!(!same(&h, &h[..31]));
    }
}
