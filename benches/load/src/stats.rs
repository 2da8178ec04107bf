//! Latency histograms, run summaries and resident-memory samples.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies are recorded in nanoseconds, from 1 ns to this bound, to 3 significant digits.
const MAX_LATENCY_NS: u64 = 120_000_000_000;

/// A latency histogram in nanoseconds.
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// An empty histogram.
    pub fn new() -> Latencies {
        // Invariant: `new_with_bounds` fails only for low < 1, high < 2 * low or more than 5
        // significant digits; 1 ..= 120 s at 3 digits are constant, valid bounds.
        #[allow(clippy::expect_used)]
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .expect("constant, valid histogram bounds");
        Latencies { histogram }
    }

    /// Records one latency; longer than the bound counts as the bound.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos())
            .unwrap_or(MAX_LATENCY_NS)
            .clamp(1, MAX_LATENCY_NS);
        let _ = self.histogram.record(ns);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        let _ = self.histogram.add(&other.histogram);
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at `percentile` (0..=100) in microseconds.
    pub fn percentile_us(&self, percentile: f64) -> f64 {
        self.histogram.value_at_percentile(percentile) as f64 / 1_000.0
    }

    /// The mean in microseconds.
    pub fn mean_us(&self) -> f64 {
        self.histogram.mean() / 1_000.0
    }

    /// The largest latency in microseconds.
    pub fn max_us(&self) -> f64 {
        self.histogram.max() as f64 / 1_000.0
    }

    /// The distribution as CSV `percentile,latency_us`, on a scale that halves the distance
    /// to 100 % at every step (as HdrHistogram's percentile plots do), up to 99.999 %.
    pub fn percentile_csv(&self) -> String {
        let mut out = String::from("percentile,latency_us\n");
        for p in percentile_steps() {
            let _ = writeln!(out, "{p:.5},{:.3}", self.percentile_us(p));
        }
        out
    }
}

/// Percentiles from 0 to 99.999: 10 steps per halving of the distance to 100.
pub fn percentile_steps() -> Vec<f64> {
    let mut steps = Vec::new();
    let mut remaining: f64 = 100.0;
    while remaining > 0.001 {
        for i in 0..10 {
            let p = 100.0 - remaining * (1.0 - f64::from(i) / 20.0);
            if p < 99.999 {
                steps.push(p);
            }
        }
        remaining /= 2.0;
    }
    steps.push(99.999);
    steps
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// User names the requests were spread over.
    pub users: u32,
    /// Requests answered as expected (verified and of the expected kind).
    pub ok: u64,
    /// Answers that failed verification, were of the wrong kind or could not be parsed.
    pub errors: u64,
    /// Requests that got no answer within the timeout.
    pub timeouts: u64,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Latency of the `ok` requests.
    pub latencies: Latencies,
    /// Resident memory of the watched process before the run, KiB.
    pub rss_idle_kib: Option<u64>,
    /// The largest resident memory sampled during the run, KiB.
    pub rss_peak_kib: Option<u64>,
    /// Resident memory when 10 % of the requests were done, KiB.
    pub rss_at_10pct_kib: Option<u64>,
    /// Resident memory at the end of the run, KiB.
    pub rss_end_kib: Option<u64>,
}

impl Summary {
    /// Answered requests per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// The summary as `key=value` lines, the format the scripts read back.
    pub fn to_kv(&self, name: &str) -> String {
        let mut out = String::new();
        let l = &self.latencies;
        let _ = writeln!(out, "name={name}");
        let _ = writeln!(out, "users={}", self.users);
        let _ = writeln!(out, "ok={}", self.ok);
        let _ = writeln!(out, "errors={}", self.errors);
        let _ = writeln!(out, "timeouts={}", self.timeouts);
        let _ = writeln!(out, "elapsed_s={:.3}", self.elapsed.as_secs_f64());
        let _ = writeln!(out, "rps={:.0}", self.rate());
        let _ = writeln!(out, "mean_us={:.1}", l.mean_us());
        let _ = writeln!(out, "p50_us={:.1}", l.percentile_us(50.0));
        let _ = writeln!(out, "p99_us={:.1}", l.percentile_us(99.0));
        let _ = writeln!(out, "p999_us={:.1}", l.percentile_us(99.9));
        let _ = writeln!(out, "max_us={:.1}", l.max_us());
        for (key, value) in [
            ("rss_idle_kib", self.rss_idle_kib),
            ("rss_peak_kib", self.rss_peak_kib),
            ("rss_at_10pct_kib", self.rss_at_10pct_kib),
            ("rss_end_kib", self.rss_end_kib),
        ] {
            if let Some(value) = value {
                let _ = writeln!(out, "{key}={value}");
            }
        }
        out
    }
}

/// `VmRSS` (KiB) from the text of `/proc/PID/status`.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix("VmRSS:")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// One resident-memory sample taken during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssSample {
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// Requests completed by then.
    pub completed: u64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
}

/// The sample taken when `fraction` of `total` requests were done (the first at or after
/// it), else the last one.
pub fn sample_at(samples: &[RssSample], total: u64, fraction: f64) -> Option<RssSample> {
    let threshold = (total as f64 * fraction) as u64;
    samples
        .iter()
        .find(|s| s.completed >= threshold)
        .or(samples.last())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut l = Latencies::new();
        // 1..=1000 microseconds, once each.
        for us in 1..=1000u64 {
            l.record(Duration::from_micros(us));
        }
        assert_eq!(l.len(), 1000);
        let p50 = l.percentile_us(50.0);
        let p99 = l.percentile_us(99.0);
        let p999 = l.percentile_us(99.9);
        // 3 significant digits: within 0.2 % (a bucket's highest equivalent value).
        assert!((p50 - 500.0).abs() <= 0.5, "p50 {p50}");
        assert!((p99 - 990.0).abs() <= 2.0, "p99 {p99}");
        assert!((p999 - 999.0).abs() <= 2.0, "p99.9 {p999}");
        assert!((l.mean_us() - 500.5).abs() <= 0.5, "mean {}", l.mean_us());
        assert!((l.max_us() - 1000.0).abs() <= 1.0);
    }

    #[test]
    fn merge_adds_counts_and_shifts_percentiles() {
        let mut a = Latencies::new();
        let mut b = Latencies::new();
        for _ in 0..900 {
            a.record(Duration::from_micros(10));
        }
        for _ in 0..100 {
            b.record(Duration::from_millis(5));
        }
        a.merge(&b);
        assert_eq!(a.len(), 1000);
        assert!((a.percentile_us(50.0) - 10.0).abs() < 0.1);
        assert!((a.percentile_us(99.0) - 5000.0).abs() < 5.0);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut l = Latencies::new();
        l.record(Duration::ZERO);
        l.record(Duration::from_secs(10_000));
        assert_eq!(l.len(), 2);
        assert!(l.max_us() >= 119_000_000.0);
    }

    #[test]
    fn rate_and_kv() {
        let mut s = Summary {
            ok: 5000,
            elapsed: Duration::from_secs(2),
            users: 1000,
            rss_idle_kib: Some(1234),
            ..Summary::default()
        };
        s.latencies.record(Duration::from_micros(100));
        assert!((s.rate() - 2500.0).abs() < f64::EPSILON);
        let kv = s.to_kv("s1");
        assert!(kv.contains("name=s1\n"));
        assert!(kv.contains("users=1000\n"));
        assert!(kv.contains("rps=2500\n"));
        assert!(kv.contains("rss_idle_kib=1234\n"));
        assert!(!kv.contains("rss_peak_kib"));
        assert_eq!(Summary::default().rate(), 0.0);
    }

    #[test]
    fn percentile_steps_rise_to_99_999() {
        let steps = percentile_steps();
        assert_eq!(steps.first().copied(), Some(0.0));
        assert_eq!(steps.last().copied(), Some(99.999));
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
        let csv = Latencies::new().percentile_csv();
        assert!(csv.starts_with("percentile,latency_us\n"));
        assert_eq!(csv.lines().count(), steps.len() + 1);
    }

    #[test]
    fn vm_rss_from_proc_status() {
        let status = "Name:\tportcullis\nVmPeak:\t  100 kB\nVmRSS:\t    8812 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(8812));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn sample_at_fraction() {
        let samples: Vec<RssSample> = (0..=10)
            .map(|i| RssSample {
                at_ms: i * 100,
                completed: i * 1000,
                rss_kib: 8000 + i,
            })
            .collect();
        assert_eq!(
            sample_at(&samples, 10_000, 0.1).map(|s| s.rss_kib),
            Some(8001)
        );
        assert_eq!(
            sample_at(&samples, 10_000, 0.55).map(|s| s.rss_kib),
            Some(8006)
        );
        assert_eq!(
            sample_at(&samples, 100_000, 0.5).map(|s| s.rss_kib),
            Some(8010)
        );
        assert_eq!(sample_at(&[], 10, 0.1), None);
    }
}
