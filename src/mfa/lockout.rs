//! Failed second factors per user (`mfa_failures`): after `threshold` failures in a row the
//! user is locked out, first for `base` seconds, then twice as long each time it happens
//! again before a success, at most `max` seconds. A success clears the record.

use portcullis_config::UserKey;
use rusqlite::{Connection, OptionalExtension, params};

use crate::state::StateError;

/// The lockout settings of `[mfa]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Failures in a row that lock the user out.
    pub threshold: u32,
    /// Seconds of the first lockout.
    pub base: u32,
    /// Seconds of the longest lockout.
    pub max: u32,
}

impl Lockout {
    /// The settings of a configuration.
    pub fn of(mfa: &portcullis_config::Mfa) -> Lockout {
        Lockout {
            threshold: mfa.lockout_threshold.max(1),
            base: mfa.lockout_base_seconds.max(1),
            max: mfa.lockout_max_seconds.max(1),
        }
    }

    /// Seconds of the `nth` lockout (1-based): base doubled `nth - 1` times, capped.
    pub fn duration(&self, nth: u32) -> u64 {
        let doublings = nth.saturating_sub(1).min(32);
        u64::from(self.base)
            .saturating_mul(1u64 << doublings)
            .min(u64::from(self.max))
    }
}

/// Seconds `user` stays locked out after `now`, if they are.
pub fn locked_for(conn: &Connection, user: &UserKey, now: i64) -> Result<Option<u64>, StateError> {
    let until: Option<i64> = conn
        .query_row(
            "SELECT locked_until FROM mfa_failures WHERE user = ?1",
            params![user.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(until
        .filter(|until| *until > now)
        .map(|until| u64::try_from(until - now).unwrap_or(0)))
}

/// Counts a failure; returns the lockout's length when this failure starts one.
pub fn record_failure(
    conn: &Connection,
    user: &UserKey,
    now: i64,
    settings: Lockout,
) -> Result<Option<u64>, StateError> {
    let (failures, lockouts): (i64, i64) = conn
        .query_row(
            "SELECT failures, lockouts FROM mfa_failures WHERE user = ?1",
            params![user.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, 0));
    let failures = failures.saturating_add(1);
    let (failures, lockouts, until, locked) = if failures >= i64::from(settings.threshold) {
        let lockouts = lockouts.saturating_add(1);
        let seconds = settings.duration(u32::try_from(lockouts).unwrap_or(u32::MAX));
        let until = now.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX));
        (0, lockouts, until, Some(seconds))
    } else {
        (failures, lockouts, 0, None)
    };
    conn.execute(
        "INSERT INTO mfa_failures (user, failures, lockouts, locked_until) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (user) DO UPDATE SET failures = ?2, lockouts = ?3, locked_until = ?4",
        params![user.as_str(), failures, lockouts, until],
    )?;
    Ok(locked)
}

/// Clears `user`'s failures and lockout history after a good second factor.
pub fn record_success(conn: &Connection, user: &UserKey) -> Result<(), StateError> {
    conn.execute(
        "DELETE FROM mfa_failures WHERE user = ?1",
        params![user.as_str()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDb;

    #[test]
    fn doubling_capped() {
        let l = Lockout {
            threshold: 3,
            base: 60,
            max: 300,
        };
        assert_eq!(
            (1..=5).map(|n| l.duration(n)).collect::<Vec<_>>(),
            [60, 120, 240, 300, 300]
        );
        assert_eq!(l.duration(u32::MAX), 300);
    }

    #[test]
    fn locks_after_threshold_and_grows() {
        let db = StateDb::in_memory().unwrap();
        let l = Lockout {
            threshold: 3,
            base: 60,
            max: 3600,
        };
        db.with(|c| {
            let t = 1000;
            assert_eq!(record_failure(c, &UserKey::of("u"), t, l)?, None);
            assert_eq!(record_failure(c, &UserKey::of("u"), t, l)?, None);
            assert_eq!(locked_for(c, &UserKey::of("u"), t)?, None);
            assert_eq!(record_failure(c, &UserKey::of("u"), t, l)?, Some(60));
            assert_eq!(locked_for(c, &UserKey::of("u"), t + 10)?, Some(50));
            assert_eq!(locked_for(c, &UserKey::of("other"), t)?, None);
            assert_eq!(locked_for(c, &UserKey::of("u"), t + 60)?, None);
            // The second lockout is twice as long.
            for _ in 0..2 {
                assert_eq!(record_failure(c, &UserKey::of("u"), t + 60, l)?, None);
            }
            assert_eq!(record_failure(c, &UserKey::of("u"), t + 60, l)?, Some(120));
            // A success forgets everything.
            record_success(c, &UserKey::of("u"))?;
            assert_eq!(locked_for(c, &UserKey::of("u"), t + 61)?, None);
            for _ in 0..2 {
                record_failure(c, &UserKey::of("u"), t + 61, l)?;
            }
            assert_eq!(record_failure(c, &UserKey::of("u"), t + 61, l)?, Some(60));
            Ok(())
        })
        .unwrap();
    }
}
