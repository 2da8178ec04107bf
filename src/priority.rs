//! The scheduling priority of the two writer threads, the audit writer and the log writer.
//!
//! Both work in bursts: the audit writer stores up to a second of logins in one transaction
//! (tens of milliseconds of a core at 10,000 logins/s), the log writer a batch of lines every
//! 20 ms. On an appliance with two cores shared with other services, logins that arrive during
//! a burst queue behind it, and that was most of the gateway's latency tail (BENCHMARKS.md, "The
//! tail"). So both run below the process's priority, nice [`BACKGROUND`] higher (the kernel
//! lets a thread lower its own priority freely):
//!
//! - the log writer for good: when it falls behind, the threads that log write their lines
//!   themselves (`telemetry`), so running last costs no line;
//! - the audit writer only while it keeps up. A writer that is behind (its last batch was
//!   full) goes back to the process's priority until it has caught up, so that a saturated
//!   gateway does not drop audit events for want of CPU. Going back up needs `RLIMIT_NICE`
//!   to allow the process's nice value (systemd's `LimitNICE=+0`, which the shipped unit
//!   sets) or `CAP_SYS_NICE`; without either the audit writer keeps the process's priority
//!   from the start.
//!
//! Where `setpriority` is refused (a seccomp filter without it), the threads keep the
//! process's priority; nothing else changes.

use rustix::process::{Resource, getpriority_process, getrlimit, setpriority_process};
use rustix::thread::{CapabilitySet, Pid, capabilities, gettid};

/// How much lower than the process's priority the writers run (a nice value added). At nice
/// +10 a thread gets about a tenth of a core that a thread at the process's priority wants.
pub const BACKGROUND: i32 = 10;

/// The calling thread at background priority for good (the log writer).
pub fn background_for_good(thread: &str) {
    let tid = gettid();
    let Ok(normal) = getpriority_process(Some(tid)) else {
        return;
    };
    set(tid, thread, background_nice(normal));
}

/// The calling thread at background priority while it keeps up (the audit writer); see
/// [`Background::keep_up`].
#[derive(Debug)]
pub struct Background {
    tid: Pid,
    thread: &'static str,
    /// The process's nice value, where a thread that is behind goes back to.
    normal: i32,
    /// Whether the thread runs at background priority now.
    lowered: bool,
    /// Whether the thread may be lowered: it can be raised back.
    enabled: bool,
}

impl Background {
    /// Lowers the calling thread, if it can be raised back later.
    pub fn start(thread: &'static str) -> Background {
        let tid = gettid();
        let normal = getpriority_process(Some(tid)).unwrap_or(0);
        let has_cap = capabilities(None)
            .map(|sets| sets.effective.contains(CapabilitySet::SYS_NICE))
            .unwrap_or(false);
        let enabled = may_raise_back(normal, getrlimit(Resource::Nice).current, has_cap);
        if !enabled {
            tracing::debug!(
                thread,
                "keeps the process's priority: RLIMIT_NICE (LimitNICE=) does not allow raising it back"
            );
        }
        let mut background = Background {
            tid,
            thread,
            normal,
            lowered: false,
            enabled,
        };
        background.keep_up(false);
        background
    }

    /// After each batch: `behind` (the batch was full, more is queued) puts the thread back at
    /// the process's priority, a batch that emptied the queue lowers it again.
    pub fn keep_up(&mut self, behind: bool) {
        if !self.enabled || behind != self.lowered {
            return;
        }
        let nice = if behind {
            self.normal
        } else {
            background_nice(self.normal)
        };
        if set(self.tid, self.thread, nice) {
            self.lowered = !behind;
        } else if behind {
            // Refused going back up (the limit changed under it): stop trying.
            self.enabled = false;
        }
    }

    /// Whether the thread runs at background priority now.
    pub fn lowered(&self) -> bool {
        self.lowered
    }
}

/// The background nice value for a process at `normal` (at most 19, the lowest priority).
fn background_nice(normal: i32) -> i32 {
    normal.saturating_add(BACKGROUND).min(19)
}

/// Whether a thread lowered from `normal` may be raised back: the kernel allows nice values
/// down to `20 - RLIMIT_NICE` (soft limit `rlimit`, `None` for unlimited), and any with
/// `CAP_SYS_NICE`.
fn may_raise_back(normal: i32, rlimit: Option<u64>, cap_sys_nice: bool) -> bool {
    if cap_sys_nice {
        return true;
    }
    let needed = 20_i64 - i64::from(normal);
    match rlimit {
        None => true,
        Some(limit) => i64::try_from(limit).is_ok_and(|limit| limit >= needed),
    }
}

/// Sets the nice value of thread `tid`; whether it took.
fn set(tid: Pid, thread: &str, nice: i32) -> bool {
    match setpriority_process(Some(tid), nice) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(thread, nice, error = %e, "cannot change the thread's priority");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_back_needs_the_limit_or_the_capability() {
        // The default soft limit, 0: no nice value below 20 may be set again.
        assert!(!may_raise_back(0, Some(0), false));
        // LimitNICE=+0 is a limit of 20: back to nice 0.
        assert!(may_raise_back(0, Some(20), false));
        assert!(!may_raise_back(0, Some(19), false));
        // A process started at nice 5 needs 15.
        assert!(may_raise_back(5, Some(15), false));
        assert!(!may_raise_back(5, Some(14), false));
        assert!(may_raise_back(-5, None, false));
        assert!(may_raise_back(0, Some(0), true));
    }

    #[test]
    fn background_is_ten_lower_and_at_most_19() {
        assert_eq!(background_nice(0), 10);
        assert_eq!(background_nice(12), 19);
        assert_eq!(background_nice(-20), -10);
    }

    /// Runs a thread through a burst: lowered while it keeps up, back at the process's
    /// priority while behind, lowered again once caught up, as the kernel reports it.
    #[test]
    fn a_thread_that_falls_behind_goes_back_up() {
        let (normal, seen) = std::thread::spawn(|| {
            let mut background = Background::start("test-writer");
            let nice = || getpriority_process(Some(gettid())).unwrap_or(i32::MIN);
            let mut seen = vec![(background.enabled, background.lowered(), nice())];
            background.keep_up(true);
            seen.push((background.enabled, background.lowered(), nice()));
            background.keep_up(false);
            seen.push((background.enabled, background.lowered(), nice()));
            (background.normal, seen)
        })
        .join()
        .unwrap_or_default();
        let low = background_nice(normal);
        if seen.first().is_some_and(|s| s.0) {
            assert_eq!(
                seen,
                vec![(true, true, low), (true, false, normal), (true, true, low)]
            );
        } else {
            // Not allowed to come back: never lowered.
            assert!(seen.iter().all(|s| !s.1 && s.2 == normal), "{seen:?}");
        }
    }
}
