//! Synchronisation shared by the daemon's modules: a poison-tolerant lock, a count of
//! requests in flight that a shutdown drains, and a periodic task ([`every`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// Locks `mutex`, taking over a lock poisoned by a panicking holder. Use it only for data that
/// every critical section leaves consistent (a few assignments, no half-done updates): then a
/// panic elsewhere must not take the lock, and with it every later login, down too.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `tick` every `period`, the first at once and a late one delayed rather than bunched,
/// until `stop`; a tick that has begun runs to its end.
pub async fn every(period: Duration, stop: impl Future<Output = ()>, mut tick: impl AsyncFnMut()) {
    let mut stop = std::pin::pin!(stop);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {}
        }
        tick().await;
    }
}

/// Requests in flight that a shutdown waits for (each RADIUS front-end counts its walks; the
/// HTTPS server drains its own connections). Clones count the same requests.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<Counted>);

#[derive(Debug, Default)]
struct Counted {
    count: AtomicUsize,
    idle: Notify,
}

/// Held while a request is in flight; [`InFlight::drain`] waits until none is.
#[derive(Debug)]
pub struct InFlightGuard(Arc<Counted>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// Nothing in flight.
    pub fn new() -> InFlight {
        InFlight::default()
    }

    /// Marks a request in flight until the guard is dropped.
    pub fn enter(&self) -> InFlightGuard {
        self.0.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(Arc::clone(&self.0))
    }

    /// Requests in flight now.
    pub fn count(&self) -> usize {
        self.0.count.load(Ordering::Acquire)
    }

    /// Waits until no request is in flight, or `timeout`; returns how many were still
    /// running.
    pub async fn drain(&self, timeout: Duration) -> usize {
        let wait = async {
            loop {
                let idle = self.0.idle.notified();
                if self.count() == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_guards_and_gives_up_at_the_timeout() {
        let requests = InFlight::new();
        let guard = requests.enter();
        let released = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(guard);
        });
        assert_eq!(requests.drain(Duration::from_secs(30)).await, 0);
        released.await.unwrap();
        let stuck = requests.enter();
        assert_eq!(requests.drain(Duration::from_millis(20)).await, 1);
        drop(stuck);
        assert_eq!(requests.count(), 0);
    }
}
