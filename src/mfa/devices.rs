//! Paired TOTP devices in the state database (`mfa_devices`): pairing, activation, listing,
//! unpairing, and the TOTP check with replay protection.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use portcullis_config::UserKey;
use sha2::{Digest, Sha256};

use super::seal::SealKey;
use super::totp;
use crate::state::StateError;
use crate::state::mfa::MfaTx;

/// Devices (pending ones included) a user may have at once.
pub const MAX_DEVICES_PER_USER: i64 = 10;
/// Seconds a device may wait for activation before it is removed.
pub const PENDING_LIFETIME: i64 = 3600;

pub use crate::state::mfa::Device;

/// Why a device could not be paired.
#[derive(Debug)]
pub enum PairError {
    /// The user has [`MAX_DEVICES_PER_USER`] devices already.
    TooMany,
    /// The state database failed.
    State(StateError),
}

impl From<StateError> for PairError {
    fn from(e: StateError) -> Self {
        PairError::State(e)
    }
}

/// What an activation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// The device is active now.
    Activated(Device),
    /// The user has no such device.
    NotFound,
    /// The device was active already.
    AlreadyActive,
    /// The code is not the device's current one.
    WrongCode,
}

/// A new device id: `mobile-sha256-` and the URL-safe base64 of SHA-256 over 32 random
/// octets, the shape of the reference's ids.
fn new_id() -> Result<String, getrandom::Error> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)?;
    Ok(format!(
        "mobile-sha256-{}",
        URL_SAFE.encode(Sha256::digest(random))
    ))
}

/// Pairs a device for `user` with a fresh 20-octet secret, stored sealed: pending until its
/// first code, or `activated` at once (paired by an administrator). Returns the device and
/// the secret (shown once, in the pairing answer).
pub fn pair(
    tx: &mut dyn MfaTx,
    key: &SealKey,
    user: &UserKey,
    name: &str,
    os: &str,
    activated: bool,
    now: i64,
) -> Result<(Device, Vec<u8>), PairError> {
    tx.forget_pending_devices(now - PENDING_LIFETIME)?;
    if tx.count_devices(user)? >= MAX_DEVICES_PER_USER {
        return Err(PairError::TooMany);
    }
    let mut secret = vec![0u8; totp::SECRET_LEN];
    let random = |e: getrandom::Error| PairError::State(StateError::Task(format!("random: {e}")));
    getrandom::fill(&mut secret).map_err(random)?;
    let id = new_id().map_err(random)?;
    let sealed = key
        .seal(id.as_bytes(), &secret)
        .map_err(|e| PairError::State(StateError::Task(e.to_string())))?;
    let device = Device {
        id,
        user: user.to_string(),
        name: name.to_string(),
        os: os.to_string(),
        created: now,
        updated: now,
        activated: activated.then_some(now),
        last_used: None,
    };
    tx.insert_device(&device, &sealed)?;
    Ok((device, secret))
}

/// `user`'s devices, oldest first; pending ones only when `pending` is set.
pub fn list(tx: &mut dyn MfaTx, user: &UserKey, pending: bool) -> Result<Vec<Device>, StateError> {
    tx.devices(user, pending)
}

/// Whether `user` has an activated device.
pub fn has_active(tx: &mut dyn MfaTx, user: &UserKey) -> Result<bool, StateError> {
    tx.has_active_device(user)
}

/// Unpairs `user`'s device `id`; whether there was one.
pub fn unpair(tx: &mut dyn MfaTx, user: &UserKey, id: &str) -> Result<bool, StateError> {
    tx.delete_device(user, id)
}

/// Activates `user`'s pending device `id` with a current `code` (whose step is remembered,
/// so the same code cannot then log in).
pub fn activate(
    tx: &mut dyn MfaTx,
    key: &SealKey,
    user: &UserKey,
    id: &str,
    code: &str,
    now: i64,
) -> Result<Activation, StateError> {
    let Some(found) = tx.device_secret(user, id)? else {
        return Ok(Activation::NotFound);
    };
    if found.activated.is_some() {
        return Ok(Activation::AlreadyActive);
    }
    let Some(secret) = key.open(id.as_bytes(), &found.sealed) else {
        tracing::error!(device = id, "MFA device secret does not open under mfa.key");
        return Ok(Activation::WrongCode);
    };
    let step = totp::step(u64::try_from(now).unwrap_or(0));
    let Some(accepted) = totp::matching_step(&secret, code, step, None) else {
        return Ok(Activation::WrongCode);
    };
    let accepted = i64::try_from(accepted).unwrap_or(i64::MAX);
    Ok(match tx.activate_device(user, id, now, accepted)? {
        Some(device) => Activation::Activated(device),
        None => Activation::NotFound,
    })
}

/// Checks `code` against every activated device of `user`; the first device it matches
/// (at a step after the device's last accepted one) records the step and the use. Runs
/// inside the caller's transaction.
pub fn check_totp(
    tx: &mut dyn MfaTx,
    key: &SealKey,
    user: &UserKey,
    code: &str,
    now: i64,
) -> Result<bool, StateError> {
    let step = totp::step(u64::try_from(now).unwrap_or(0));
    for device in tx.active_secrets(user)? {
        let Some(secret) = key.open(device.id.as_bytes(), &device.sealed) else {
            tracing::error!(
                device = device.id,
                "MFA device secret does not open under mfa.key"
            );
            continue;
        };
        let last = device.last_step.and_then(|l| u64::try_from(l).ok());
        if let Some(accepted) = totp::matching_step(&secret, code, step, last) {
            let accepted = i64::try_from(accepted).unwrap_or(i64::MAX);
            // Recorded only after the last accepted step: two concurrent uses of one code
            // count once.
            if tx.advance_step(&device.id, accepted, now)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::state::StateDb;

    const NOW: i64 = 1_800_000_000;

    fn code_at(secret: &[u8], time: i64) -> String {
        totp::code(secret, totp::step(time as u64))
    }

    /// A code no step within the drift window produces.
    pub(crate) fn wrong_code(secret: &[u8], now: i64) -> String {
        (0..)
            .map(|n| format!("{n:06}"))
            .find(|c| {
                (-30..=30)
                    .step_by(30)
                    .all(|d| code_at(secret, now + d) != *c)
            })
            .unwrap()
    }

    #[test]
    fn pair_activate_use_unpair() {
        let db = StateDb::in_memory().unwrap();
        let key = SealKey::random().unwrap();
        crate::state::mfa::transaction(&db, |conn| {
            let (device, secret) = pair(
                conn,
                &key,
                &UserKey::of("alice"),
                "phone",
                "iOS",
                false,
                NOW,
            )
            .unwrap();
            assert!(device.id.starts_with("mobile-sha256-"));
            assert_eq!(device.id.len(), "mobile-sha256-".len() + 44);
            assert!(list(conn, &UserKey::of("alice"), false)?.is_empty());
            assert_eq!(list(conn, &UserKey::of("alice"), true)?.len(), 1);
            assert!(!has_active(conn, &UserKey::of("alice"))?);
            // A pending device does not log in.
            assert!(!check_totp(
                conn,
                &key,
                &UserKey::of("alice"),
                &code_at(&secret, NOW),
                NOW
            )?);
            let wrong = wrong_code(&secret, NOW);
            assert_eq!(
                activate(conn, &key, &UserKey::of("alice"), &device.id, &wrong, NOW)?,
                Activation::WrongCode
            );
            assert_eq!(
                activate(
                    conn,
                    &key,
                    &UserKey::of("bob"),
                    &device.id,
                    &code_at(&secret, NOW),
                    NOW
                )?,
                Activation::NotFound
            );
            let Activation::Activated(active) = activate(
                conn,
                &key,
                &UserKey::of("alice"),
                &device.id,
                &code_at(&secret, NOW),
                NOW,
            )?
            else {
                panic!("not activated");
            };
            assert_eq!(active.activated, Some(NOW));
            assert!(has_active(conn, &UserKey::of("alice"))?);
            // The activation code is spent; the next step's code works once.
            assert!(!check_totp(
                conn,
                &key,
                &UserKey::of("alice"),
                &code_at(&secret, NOW),
                NOW
            )?);
            let next = code_at(&secret, NOW + 30);
            assert!(check_totp(
                conn,
                &key,
                &UserKey::of("alice"),
                &next,
                NOW + 30
            )?);
            assert!(!check_totp(
                conn,
                &key,
                &UserKey::of("alice"),
                &next,
                NOW + 30
            )?);
            assert!(!check_totp(
                conn,
                &key,
                &UserKey::of("bob"),
                &code_at(&secret, NOW + 60),
                NOW + 60
            )?);
            assert_eq!(
                list(conn, &UserKey::of("alice"), false)?[0].last_used,
                Some(NOW + 30)
            );
            assert!(!unpair(conn, &UserKey::of("bob"), &device.id)?);
            assert!(unpair(conn, &UserKey::of("alice"), &device.id)?);
            assert!(!has_active(conn, &UserKey::of("alice"))?);
            Ok::<_, StateError>(())
        })
        .unwrap();
    }

    #[test]
    fn secrets_are_sealed_and_pairing_is_bounded() {
        let db = StateDb::in_memory().unwrap();
        let key = SealKey::random().unwrap();
        crate::state::mfa::transaction(&db, |conn| {
            let (device, secret) = pair(
                conn,
                &key,
                &UserKey::of("carol"),
                "p",
                "Android",
                false,
                NOW,
            )
            .unwrap();
            let stored = conn
                .device_secret(&UserKey::of("carol"), &device.id)?
                .unwrap()
                .sealed;
            assert!(!stored.windows(secret.len()).any(|w| w == secret.as_slice()));
            for _ in 1..MAX_DEVICES_PER_USER {
                pair(
                    conn,
                    &key,
                    &UserKey::of("carol"),
                    "p",
                    "Android",
                    false,
                    NOW,
                )
                .unwrap();
            }
            assert!(matches!(
                pair(
                    conn,
                    &key,
                    &UserKey::of("carol"),
                    "p",
                    "Android",
                    false,
                    NOW
                ),
                Err(PairError::TooMany)
            ));
            // Pending devices expire, making room.
            assert!(
                pair(
                    conn,
                    &key,
                    &UserKey::of("carol"),
                    "p",
                    "Android",
                    false,
                    NOW + PENDING_LIFETIME + 1
                )
                .is_ok()
            );
            Ok::<_, StateError>(())
        })
        .unwrap();
    }
}
