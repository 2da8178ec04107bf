//! The local method: users from the configuration, passwords as argon2id hashes.
//!
//! An unknown user costs the same as a known one: the password is checked against a dummy
//! hash made with the same parameters, so response time does not tell who exists. (The engine
//! skips that check when a remote method answers after the local one: see `Engine::walk`.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// A local account as the engine needs it.
#[derive(Debug, Clone)]
pub struct LocalUser {
    /// Login name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Roles granted on login.
    pub roles: Vec<String>,
    /// Disabled accounts never log in.
    pub enabled: bool,
}

/// What the local method answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalOutcome {
    /// Password verified; the user's roles.
    Accept(Vec<String>),
    /// Wrong password (or an unusable stored hash).
    Reject(&'static str),
    /// Not a local user, or a disabled one: the sequence moves on.
    Unavailable(&'static str),
}

/// The local user table.
#[derive(Debug)]
pub struct LocalUsers {
    users: HashMap<String, LocalUser>,
    /// Verified against when the user does not exist, so both paths cost one argon2 run.
    dummy_hash: String,
    /// argon2 checks run so far, real and dummy.
    checks: AtomicU64,
}

impl LocalUsers {
    /// Builds the table. The dummy hash is made once per process (one argon2 run) and shared
    /// by every table, so rebuilding the engine on a configuration change costs no hashing.
    pub fn new(users: impl IntoIterator<Item = LocalUser>) -> Result<Self, HashError> {
        static DUMMY: OnceLock<String> = OnceLock::new();
        let dummy_hash = match DUMMY.get() {
            Some(hash) => hash.clone(),
            None => {
                let mut random = [0u8; 32];
                getrandom::fill(&mut random).map_err(|_| HashError::Rng)?;
                let hash = hash_password(&random)?;
                // A concurrent first call may have won; either hash serves.
                DUMMY.get_or_init(|| hash).clone()
            }
        };
        Ok(LocalUsers {
            users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
            dummy_hash,
            checks: AtomicU64::new(0),
        })
    }

    /// Checks `password` for `user`. Runs argon2: call it off the async runtime
    /// (`spawn_blocking`).
    pub fn verify(&self, user: &str, password: &[u8]) -> LocalOutcome {
        self.checks.fetch_add(1, Ordering::Relaxed);
        match self.users.get(user) {
            None => {
                // Same work as a real check; the result is irrelevant.
                let _ = check(&self.dummy_hash, password);
                LocalOutcome::Unavailable("not a local user")
            }
            Some(account) if !account.enabled => {
                let _ = check(&self.dummy_hash, password);
                LocalOutcome::Unavailable("local user disabled")
            }
            Some(account) => match check(&account.password_hash, password) {
                Ok(true) => LocalOutcome::Accept(account.roles.clone()),
                Ok(false) => LocalOutcome::Reject("wrong password"),
                Err(()) => {
                    tracing::error!(user, "stored password hash is not a valid argon2 hash");
                    LocalOutcome::Reject("unusable password hash")
                }
            },
        }
    }

    /// Whether `user` is a local account (enabled or not).
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// How many argon2 checks [`LocalUsers::verify`] has run.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Rng,
    /// argon2 refused its input (a password longer than 4 GiB, say).
    #[error("argon2: {0}")]
    Argon2(String),
}

/// The argon2id parameters for new hashes: OWASP's recommended minimum (19 MiB, t=2, p=1).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` as an argon2id PHC string with a fresh random salt.
pub fn hash_password(password: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| HashError::Rng)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Argon2(e.to_string()))?;
    hasher()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

/// How many argon2 work areas are kept for reuse: as many as verifications run at once.
const KEPT_WORK_AREAS: usize = 4;

/// argon2 work areas (19 MiB each with the default parameters) kept between verifications.
/// Allocating a fresh one per check, as `verify_password` does, leaves the allocator holding
/// memory it does not give back: a burst of logins grew the daemon past a gigabyte.
static WORK_AREAS: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// A zeroed work area of `blocks` blocks, reused when one is kept.
fn take_work_area(blocks: usize) -> Vec<Block> {
    let kept = WORK_AREAS.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let mut area = kept.unwrap_or_default();
    area.resize(blocks, Block::default());
    area
}

/// Wipes `area` (it held material derived from a password) and keeps it for the next check.
fn give_back(mut area: Vec<Block>) {
    area.fill(Block::default());
    let mut kept = WORK_AREAS.lock().unwrap_or_else(|p| p.into_inner());
    if kept.len() < KEPT_WORK_AREAS {
        kept.push(area);
    }
}

/// Verifies `password` against a PHC string, with the parameters the string carries, in a
/// reused work area. The final comparison (`Output`'s `PartialEq`) is constant-time.
fn check(phc: &str, password: &[u8]) -> Result<bool, ()> {
    let hash = PasswordHash::new(phc).map_err(|_| ())?;
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        return Err(());
    }
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(());
    };
    let params = Params::try_from(&hash).map_err(|_| ())?;
    let version = match hash.version {
        Some(version) => Version::try_from(version).map_err(|_| ())?,
        None => Version::default(),
    };
    let mut salt_buf = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_buf).map_err(|_| ())?;
    let mut out_buf = [0u8; Output::MAX_LENGTH];
    let out = out_buf.get_mut(..expected.len()).ok_or(())?;
    let blocks = params.block_count();
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
    let mut area = take_work_area(blocks);
    let hashed = argon2.hash_password_into_with_memory(password, salt, out, &mut area);
    give_back(area);
    hashed.map_err(|_| ())?;
    let computed = Output::new(out).map_err(|_| ())?;
    Ok(computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> LocalUsers {
        LocalUsers::new([
            LocalUser {
                name: "admin".into(),
                password_hash: hash_password(b"correct horse").unwrap(),
                roles: vec!["Administrator".into()],
                enabled: true,
            },
            LocalUser {
                name: "former".into(),
                password_hash: hash_password(b"old").unwrap(),
                roles: vec!["Monitor".into()],
                enabled: false,
            },
            LocalUser {
                name: "broken".into(),
                password_hash: "$2b$12$notargon".into(),
                roles: vec![],
                enabled: true,
            },
        ])
        .unwrap()
    }

    #[test]
    fn verify_outcomes() {
        let users = table();
        assert_eq!(
            users.verify("admin", b"correct horse"),
            LocalOutcome::Accept(vec!["Administrator".into()])
        );
        assert_eq!(
            users.verify("admin", b"correct horsE"),
            LocalOutcome::Reject("wrong password")
        );
        assert_eq!(
            users.verify("nobody", b"x"),
            LocalOutcome::Unavailable("not a local user")
        );
        assert_eq!(
            users.verify("former", b"old"),
            LocalOutcome::Unavailable("local user disabled")
        );
        assert_eq!(
            users.verify("broken", b"x"),
            LocalOutcome::Reject("unusable password hash")
        );
    }

    #[test]
    fn hashes_are_salted_argon2id() {
        let a = hash_password(b"same").unwrap();
        let b = hash_password(b"same").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert_eq!(check(&a, b"same"), Ok(true));
        assert_eq!(check(&b, b"other"), Ok(false));
        // argon2i strings are not accepted as stored hashes.
        let argon2i = a.replacen("argon2id", "argon2i", 1);
        assert_eq!(check(&argon2i, b"same"), Err(()));
    }
}
