//! What every driver shares: how long a run lasts, the request budget, the completion count
//! the memory sampler reads, and a fast non-cryptographic generator for authenticators.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::stats::{RssSample, parse_vm_rss};

/// How long a run lasts.
#[derive(Debug, Clone, Copy)]
pub enum Length {
    /// This many requests in all.
    Requests(u64),
    /// Until this much time has passed.
    Duration(Duration),
}

/// The state shared by the worker threads of one run.
#[derive(Debug)]
pub struct Shared {
    length: Length,
    started: Instant,
    /// Requests handed out so far.
    issued: AtomicU64,
    /// Requests that ended (answered, failed or timed out).
    pub completed: AtomicU64,
    /// Set when no more requests may start.
    stop: AtomicBool,
}

impl Shared {
    /// A run of `length` starting now.
    pub fn new(length: Length) -> Arc<Shared> {
        Arc::new(Shared {
            length,
            started: Instant::now(),
            issued: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        })
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Takes one request from the budget; `false` when the run is over.
    pub fn take(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match self.length {
            Length::Requests(total) => {
                if self.issued.fetch_add(1, Ordering::Relaxed) < total {
                    true
                } else {
                    self.stop.store(true, Ordering::Relaxed);
                    false
                }
            }
            Length::Duration(limit) => {
                if self.started.elapsed() < limit {
                    self.issued.fetch_add(1, Ordering::Relaxed);
                    true
                } else {
                    self.stop.store(true, Ordering::Relaxed);
                    false
                }
            }
        }
    }

    /// Counts one request as ended.
    pub fn done(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether no more requests may start.
    #[cfg(test)]
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Ends the run early (used by the memory sampler's owner when the workers are done).
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Samples `VmRSS` of `pid` every `every` until `shared` is finished and `until` is set.
pub fn sample_rss(
    pid: u32,
    shared: Arc<Shared>,
    every: Duration,
    until: Arc<AtomicBool>,
) -> thread::JoinHandle<Vec<RssSample>> {
    thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        let mut samples = Vec::new();
        loop {
            if let Some(rss_kib) = fs::read_to_string(&path)
                .ok()
                .as_deref()
                .and_then(parse_vm_rss)
            {
                samples.push(RssSample {
                    at_ms: u64::try_from(shared.started().elapsed().as_millis()).unwrap_or(0),
                    completed: shared.completed.load(Ordering::Relaxed),
                    rss_kib,
                });
            }
            if until.load(Ordering::Relaxed) {
                return samples;
            }
            thread::sleep(every);
        }
    })
}

/// Clock ticks per second of the CPU times in `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
pub const USER_HZ: f64 = 100.0;

/// User + system CPU time this process has used, in clock ticks ([`USER_HZ`]).
pub fn own_cpu_ticks() -> Option<u64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2)
/// may hold spaces and parentheses; the fields after it start after its last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of `pid` now, KiB.
pub fn rss_now(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .as_deref()
        .and_then(parse_vm_rss)
}

/// SplitMix64: fast, and good enough for Request Authenticators of a benchmark (the peers
/// only need them distinct). Seeded from the operating system.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from the operating system (or the clock if that fails).
    pub fn seeded() -> Rng {
        let mut seed = [0u8; 8];
        if getrandom::fill(&mut seed).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            seed = (nanos as u64).to_le_bytes();
        }
        Rng(u64::from_le_bytes(seed))
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fills `out`.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            let n = chunk.len();
            chunk.copy_from_slice(bytes.get(..n).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_budget_is_exact_across_threads() {
        let shared = Shared::new(Length::Requests(1000));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let shared = Arc::clone(&shared);
                thread::spawn(move || {
                    let mut n = 0u64;
                    while shared.take() {
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000);
        assert!(shared.stopped());
    }

    #[test]
    fn finish_stops_a_duration_run() {
        let shared = Shared::new(Length::Duration(Duration::from_secs(3600)));
        assert!(shared.take());
        shared.finish();
        assert!(!shared.take());
    }

    #[test]
    fn rng_fills_every_octet_and_varies() {
        let mut rng = Rng(1);
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        rng.fill(&mut a);
        rng.fill(&mut b);
        assert_ne!(a, b);
        let mut odd = [0u8; 17];
        rng.fill(&mut odd);
        assert_ne!(
            odd[16], 0,
            "the tail octet is written (1 in 256 false failure is fixed by the seed)"
        );
    }

    #[test]
    fn cpu_ticks_of_a_stat_line() {
        let line = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 4 0 5";
        assert_eq!(parse_cpu_ticks(line), Some(287));
        assert!(own_cpu_ticks().is_some());
    }

    #[test]
    fn rss_of_this_process() {
        let rss = rss_now(std::process::id()).unwrap();
        assert!(rss > 0);
    }
}
