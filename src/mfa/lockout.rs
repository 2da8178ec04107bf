//! Failed second factors per user (`mfa_failures`): after `threshold` failures in a row the
//! user is locked out, first for `base` seconds, then twice as long each time it happens
//! again before a success, at most `max` seconds. A success clears the record.

use portcullis_config::UserKey;

use crate::state::StateError;
use crate::state::mfa::{Failures, MfaTx};

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
pub fn locked_for(tx: &mut dyn MfaTx, user: &UserKey, now: i64) -> Result<Option<u64>, StateError> {
    Ok(tx
        .failures(user)?
        .map(|f| f.locked_until)
        .filter(|until| *until > now)
        .map(|until| u64::try_from(until - now).unwrap_or(0)))
}

/// Counts a failure; returns the lockout's length when this failure starts one.
pub fn record_failure(
    tx: &mut dyn MfaTx,
    user: &UserKey,
    now: i64,
    settings: Lockout,
) -> Result<Option<u64>, StateError> {
    let Failures {
        failures, lockouts, ..
    } = tx.failures(user)?.unwrap_or_default();
    let failures = failures.saturating_add(1);
    let (next, locked) = if failures >= i64::from(settings.threshold) {
        let lockouts = lockouts.saturating_add(1);
        let seconds = settings.duration(u32::try_from(lockouts).unwrap_or(u32::MAX));
        let until = now.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX));
        let next = Failures {
            failures: 0,
            lockouts,
            locked_until: until,
        };
        (next, Some(seconds))
    } else {
        let next = Failures {
            failures,
            lockouts,
            locked_until: 0,
        };
        (next, None)
    };
    tx.set_failures(user, &next)?;
    Ok(locked)
}

/// Clears `user`'s failures and lockout history after a good second factor.
pub fn record_success(tx: &mut dyn MfaTx, user: &UserKey) -> Result<(), StateError> {
    tx.clear_failures(user)
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
        crate::state::mfa::transaction(&db, |c| {
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
            Ok::<_, StateError>(())
        })
        .unwrap();
    }
}
