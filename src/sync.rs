//! Locking shared by the daemon's modules.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking over a lock poisoned by a panicking holder. Use it only for data that
/// every critical section leaves consistent (a few assignments, no half-done updates): then a
/// panic elsewhere must not take the lock, and with it every later login, down too.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
