//! Paired TOTP devices in the state database (`mfa_devices`): pairing, activation, listing,
//! unpairing, and the TOTP check with replay protection.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use portcullis_config::UserKey;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::seal::SealKey;
use super::totp;
use crate::state::StateError;

/// Devices (pending ones included) a user may have at once.
pub const MAX_DEVICES_PER_USER: i64 = 10;
/// Seconds a device may wait for activation before it is removed.
pub const PENDING_LIFETIME: i64 = 3600;

/// A paired device as stored, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `mobile-sha256-...`.
    pub id: String,
    /// Whose device it is.
    pub user: String,
    /// The name the user gave it.
    pub name: String,
    /// Its operating system, as the user said.
    pub os: String,
    /// When it was paired (Unix time).
    pub created: i64,
    /// When it last changed.
    pub updated: i64,
    /// When its first code was accepted; `None` while pending.
    pub activated: Option<i64>,
    /// When a code from it was last accepted.
    pub last_used: Option<i64>,
}

/// Why a device could not be paired.
#[derive(Debug)]
pub enum PairError {
    /// The user has [`MAX_DEVICES_PER_USER`] devices already.
    TooMany,
    /// The state database failed.
    State(StateError),
}

impl From<rusqlite::Error> for PairError {
    fn from(e: rusqlite::Error) -> Self {
        PairError::State(e.into())
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

const COLUMNS: &str = "id, user, name, os, created, updated, activated, last_used";

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: row.get(0)?,
        user: row.get(1)?,
        name: row.get(2)?,
        os: row.get(3)?,
        created: row.get(4)?,
        updated: row.get(5)?,
        activated: row.get(6)?,
        last_used: row.get(7)?,
    })
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
    conn: &mut Connection,
    key: &SealKey,
    user: &UserKey,
    name: &str,
    os: &str,
    activated: bool,
    now: i64,
) -> Result<(Device, Vec<u8>), PairError> {
    let tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM mfa_devices WHERE activated IS NULL AND created < ?1",
        params![now - PENDING_LIFETIME],
    )?;
    let count: i64 = tx.query_row(
        "SELECT count(*) FROM mfa_devices WHERE user = ?1",
        params![user.as_str()],
        |r| r.get(0),
    )?;
    if count >= MAX_DEVICES_PER_USER {
        return Err(PairError::TooMany);
    }
    let mut secret = vec![0u8; totp::SECRET_LEN];
    let random = |e: getrandom::Error| PairError::State(StateError::Task(format!("random: {e}")));
    getrandom::fill(&mut secret).map_err(random)?;
    let id = new_id().map_err(random)?;
    let sealed = key
        .seal(id.as_bytes(), &secret)
        .map_err(|e| PairError::State(StateError::Task(e.to_string())))?;
    tx.execute(
        "INSERT INTO mfa_devices (id, user, name, os, secret, created, updated, activated) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
        params![
            id,
            user.as_str(),
            name,
            os,
            sealed,
            now,
            activated.then_some(now)
        ],
    )?;
    tx.commit()?;
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
    Ok((device, secret))
}

/// `user`'s devices, oldest first; pending ones only when `pending` is set.
pub fn list(conn: &Connection, user: &UserKey, pending: bool) -> Result<Vec<Device>, StateError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM mfa_devices WHERE user = ?1 AND (?2 OR activated IS NOT NULL) \
         ORDER BY created, id"
    );
    let mut statement = conn.prepare(&sql)?;
    let devices = statement
        .query_map(params![user.as_str(), pending], row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(devices)
}

/// Whether `user` has an activated device.
pub fn has_active(conn: &Connection, user: &UserKey) -> Result<bool, StateError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM mfa_devices WHERE user = ?1 AND activated IS NOT NULL LIMIT 1",
            params![user.as_str()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Unpairs `user`'s device `id`; whether there was one.
pub fn unpair(conn: &Connection, user: &UserKey, id: &str) -> Result<bool, StateError> {
    Ok(conn.execute(
        "DELETE FROM mfa_devices WHERE user = ?1 AND id = ?2",
        params![user.as_str(), id],
    )? > 0)
}

/// Activates `user`'s pending device `id` with a current `code` (whose step is remembered,
/// so the same code cannot then log in).
pub fn activate(
    conn: &mut Connection,
    key: &SealKey,
    user: &UserKey,
    id: &str,
    code: &str,
    now: i64,
) -> Result<Activation, StateError> {
    let tx = conn.transaction()?;
    let found: Option<(Vec<u8>, Option<i64>)> = tx
        .query_row(
            "SELECT secret, activated FROM mfa_devices WHERE user = ?1 AND id = ?2",
            params![user.as_str(), id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((sealed, activated)) = found else {
        return Ok(Activation::NotFound);
    };
    if activated.is_some() {
        return Ok(Activation::AlreadyActive);
    }
    let Some(secret) = key.open(id.as_bytes(), &sealed) else {
        tracing::error!(device = id, "MFA device secret does not open under mfa.key");
        return Ok(Activation::WrongCode);
    };
    let step = totp::step(u64::try_from(now).unwrap_or(0));
    let Some(accepted) = totp::matching_step(&secret, code, step, None) else {
        return Ok(Activation::WrongCode);
    };
    tx.execute(
        "UPDATE mfa_devices SET activated = ?3, updated = ?3, last_step = ?4 \
         WHERE user = ?1 AND id = ?2",
        params![
            user.as_str(),
            id,
            now,
            i64::try_from(accepted).unwrap_or(i64::MAX)
        ],
    )?;
    let device = tx.query_row(
        &format!("SELECT {COLUMNS} FROM mfa_devices WHERE id = ?1"),
        params![id],
        row,
    )?;
    tx.commit()?;
    Ok(Activation::Activated(device))
}

/// Checks `code` against every activated device of `user`; the first device it matches
/// (at a step after the device's last accepted one) records the step and the use. Runs
/// inside the caller's transaction.
pub fn check_totp(
    conn: &Connection,
    key: &SealKey,
    user: &UserKey,
    code: &str,
    now: i64,
) -> Result<bool, StateError> {
    let mut statement = conn.prepare(
        "SELECT id, secret, last_step FROM mfa_devices WHERE user = ?1 AND activated IS NOT NULL",
    )?;
    let devices = statement
        .query_map(params![user.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let step = totp::step(u64::try_from(now).unwrap_or(0));
    for (id, sealed, last) in devices {
        let Some(secret) = key.open(id.as_bytes(), &sealed) else {
            tracing::error!(device = id, "MFA device secret does not open under mfa.key");
            continue;
        };
        let last = last.and_then(|l| u64::try_from(l).ok());
        if let Some(accepted) = totp::matching_step(&secret, code, step, last) {
            let accepted = i64::try_from(accepted).unwrap_or(i64::MAX);
            // The condition makes two concurrent uses of one code count once.
            let changed = conn.execute(
                "UPDATE mfa_devices SET last_step = ?2, last_used = ?3 \
                 WHERE id = ?1 AND (last_step IS NULL OR last_step < ?2)",
                params![id, accepted, now],
            )?;
            if changed > 0 {
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
        db.with(|conn| {
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
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn secrets_are_sealed_and_pairing_is_bounded() {
        let db = StateDb::in_memory().unwrap();
        let key = SealKey::random().unwrap();
        db.with(|conn| {
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
            let stored: Vec<u8> = conn.query_row(
                "SELECT secret FROM mfa_devices WHERE id = ?1",
                params![device.id],
                |r| r.get(0),
            )?;
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
            Ok(())
        })
        .unwrap();
    }
}
