//! Logs and metrics.
//!
//! Logs go to standard error through `tracing`: readable text with timestamps on a terminal
//! or in a file, and journald's format under systemd (`$JOURNAL_STREAM` set): no timestamp
//! (the journal adds its own) and each line prefixed with its syslog priority, `<3>` error,
//! `<4>` warning, `<6>` info, `<7>` debug (sd-daemon(3)). The level comes from `RUST_LOG`
//! when set, else from the configuration's `logging.level`, re-applied on reload. Lines are
//! written in batches by a thread of their own, at most 20 ms after they are logged (and at
//! exit); a login never waits for the journal.
//!
//! Metrics are recorded through the `metrics` facade into a Prometheus recorder (no listener
//! of its own); the API serves them at `GET /metrics`. Names start with `portcullis_`;
//! labels never carry user names or secrets.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FmtSpan, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Changes the level of the installed subscriber.
static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Log lines waiting to be written to standard error.
static LOG_LINES: LogLines = LogLines {
    pending: std::sync::Mutex::new(Vec::new()),
    arrived: std::sync::Condvar::new(),
    output: std::sync::Mutex::new(()),
};

/// How long the log writer lets lines gather after the first of a batch.
const LOG_LINGER: Duration = Duration::from_millis(20);
/// Bytes of pending lines beyond which the logging thread writes them itself.
const LOG_HIGH_WATER: usize = 256 * 1024;

/// A buffer of log lines that a thread of its own writes out: a burst of logins costs a few
/// writes, not one each, no login waits on the journal, and the writer is woken once per
/// batch, not once per line. Lines wait at most [`LOG_LINGER`]; past [`LOG_HIGH_WATER`] the
/// thread that logs writes them (nothing is dropped).
#[derive(Debug)]
struct LogLines {
    pending: std::sync::Mutex<Vec<u8>>,
    arrived: std::sync::Condvar,
    /// Held while writing, so that batches reach standard error in order.
    output: std::sync::Mutex<()>,
}

impl LogLines {
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn append(&self, line: &[u8]) {
        let mut pending = self.pending();
        let was_empty = pending.is_empty();
        pending.extend_from_slice(line);
        if pending.len() >= LOG_HIGH_WATER {
            drop(pending);
            self.write_out();
        } else if was_empty {
            self.arrived.notify_one();
        }
    }

    /// Writes what is pending now.
    fn write_out(&self) {
        use std::io::Write;
        let _output = self
            .output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let batch = std::mem::take(&mut *self.pending());
        if !batch.is_empty() {
            // Standard error is all there is to report a failure to.
            let _ = std::io::stderr().lock().write_all(&batch);
        }
    }

    /// The writer thread: waits for a first line, lets a batch gather, writes it.
    fn run(&self) {
        loop {
            {
                let mut pending = self.pending();
                while pending.is_empty() {
                    pending = self
                        .arrived
                        .wait(pending)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
            std::thread::sleep(LOG_LINGER);
            self.write_out();
        }
    }
}

/// The `MakeWriter` of the log subscriber: each event is formatted whole, then appended.
#[derive(Debug, Clone, Copy)]
struct BufferedStderr;

impl std::io::Write for BufferedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG_LINES.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The subscriber's writer: [`BufferedStderr`] once its thread runs, else standard error.
#[derive(Debug, Clone, Copy)]
struct LogWriter {
    buffered: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = tracing_subscriber::fmt::writer::EitherWriter<BufferedStderr, std::io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        if self.buffered {
            tracing_subscriber::fmt::writer::EitherWriter::A(BufferedStderr)
        } else {
            tracing_subscriber::fmt::writer::EitherWriter::B(std::io::stderr())
        }
    }
}

/// Writes the pending log lines (at exit).
pub fn flush_logs() {
    LOG_LINES.write_out();
}

/// Whether `RUST_LOG` chose the level (then the configuration does not).
fn level_from_env() -> bool {
    std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty())
}

/// Whether standard error goes to the journal: systemd sets `$JOURNAL_STREAM` for services
/// whose output it connects to journald.
pub fn journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
}

/// Installs the log subscriber: `RUST_LOG` when set, else `level`.
pub fn init_logging(level: &str) {
    let filter = if level_from_env() {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level))
    } else {
        EnvFilter::new(level)
    };
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    // Lines are written by a thread of their own (see [`LogLines`]); without it, directly.
    let buffered = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(|| {
            // Below the logins' priority for good: when it falls behind, the threads that
            // log write their lines themselves (crate::priority).
            crate::priority::background_for_good("log-writer");
            LOG_LINES.run()
        })
        .is_ok();
    let writer = LogWriter { buffered };
    let installed = if journald() {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(Journald::default())
                    .with_writer(writer),
            )
            .try_init()
    } else {
        use std::io::IsTerminal;
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_span_events(FmtSpan::NONE)
                    .with_writer(writer)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init()
    };
    if installed.is_ok() {
        let _ = LEVEL.set(handle);
    }
}

/// Applies the configuration's `logging.level`, unless `RUST_LOG` chose the level.
pub fn set_level(level: &str) {
    if level_from_env() {
        return;
    }
    if let Some(handle) = LEVEL.get() {
        if let Err(e) = handle.reload(EnvFilter::new(level)) {
            tracing::warn!(error = %e, "cannot change the log level");
        }
    }
}

/// The syslog priority sd-daemon(3) prefixes for a level.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// journald's line format: `<priority>target: message fields`, no timestamp, no colours.
#[derive(Debug)]
struct Journald {
    inner: tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Full, ()>,
}

impl Default for Journald {
    fn default() -> Self {
        Journald {
            inner: tracing_subscriber::fmt::format()
                .without_time()
                .with_level(false)
                .with_ansi(false),
        }
    }
}

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.inner.format_event(ctx, writer, event)
    }
}

/// Latency buckets, in seconds: local argon2 checks take tens of milliseconds, remote
/// servers up to `timeout x tries`.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The Prometheus recorder, installed on first use. When another recorder is already
/// installed (a test harness), a detached one answers with nothing recorded.
pub fn metrics() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let builder = || {
            PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new())
        };
        match builder().install_recorder() {
            Ok(handle) => {
                describe();
                handle
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                builder().build_recorder().handle()
            }
        }
    })
}

/// How often the recorder folds recorded histogram samples into its buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the recorder's upkeep every [`UPKEEP_INTERVAL`] on the current runtime. Histogram
/// samples are queued until upkeep (or a scrape) folds them into the buckets: without it, a
/// daemon nobody scrapes would keep every login's latency, about 30 MiB per million logins.
pub fn spawn_upkeep() {
    tokio::spawn(crate::sync::every(
        UPKEEP_INTERVAL,
        std::future::pending(),
        async || metrics().run_upkeep(),
    ));
}

/// The metrics in the Prometheus text format (version 0.0.4).
pub fn render() -> String {
    metrics().render()
}

/// Help texts for `# HELP`.
fn describe() {
    use metrics::{describe_counter, describe_histogram};
    describe_counter!(
        "portcullis_logins_total",
        "Logins by the method that decided them and their result"
    );
    describe_histogram!(
        "portcullis_login_duration_seconds",
        metrics::Unit::Seconds,
        "Time from the start of a login to its decision"
    );
    describe_counter!(
        "portcullis_upstream_requests_total",
        "Requests to upstream servers by protocol, server and result"
    );
    describe_histogram!(
        "portcullis_upstream_duration_seconds",
        metrics::Unit::Seconds,
        "Time an upstream server took to answer, retransmissions included"
    );
    describe_counter!(
        "portcullis_upstream_timeouts_total",
        "Upstream requests that got no valid answer in time"
    );
    describe_counter!(
        "portcullis_upstream_retransmits_total",
        "RADIUS requests sent again after a silent try"
    );
    describe_counter!(
        "portcullis_upstream_invalid_replies_total",
        "Upstream replies dropped: unparsable, failed verification or unsigned when required"
    );
    describe_counter!(
        "portcullis_upstream_marked_dead_total",
        "Times an upstream server was marked dead"
    );
    metrics::describe_gauge!(
        "portcullis_upstream_up",
        "Whether an upstream server is alive (1) or marked dead (0), as of the last health report or probe round"
    );
    describe_counter!(
        "portcullis_upstream_revived_total",
        "Times a dead upstream server answered a Status-Server probe and was revived"
    );
    describe_counter!(
        "portcullis_http_requests_total",
        "REST requests by route template, method and status"
    );
    describe_counter!(
        "portcullis_frontend_packets_total",
        "RADIUS front-end datagrams by type"
    );
    describe_counter!(
        "portcullis_frontend_dropped_total",
        "RADIUS front-end datagrams dropped, by reason"
    );
    describe_counter!(
        "portcullis_config_reloads_total",
        "Configuration reloads (SIGHUP) by result"
    );
}

/// Handles of labelled metrics, kept once made: the registry hashes the name and labels and
/// allocates a key on every lookup, which was most of what a metric cost per login. Keyed by
/// up to two static labels and one server name; at most [`MAX_HANDLES`] are kept (beyond,
/// the registry is asked each time).
#[derive(Debug)]
struct Handles<T> {
    entries: std::sync::RwLock<Vec<(HandleKey, T)>>,
}

/// Two static labels and a server name.
type HandleKey = ([&'static str; 2], Box<str>);

/// The most handles one [`Handles`] keeps.
const MAX_HANDLES: usize = 256;

impl<T: Clone> Handles<T> {
    const fn new() -> Self {
        Handles {
            entries: std::sync::RwLock::new(Vec::new()),
        }
    }

    fn get(&self, labels: [&'static str; 2], server: &str, make: impl FnOnce() -> T) -> T {
        // Handles made before the recorder is installed would record nowhere.
        metrics();
        let is_key = |((l, s), _): &&(HandleKey, T)| *l == labels && **s == *server;
        let found = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(is_key)
            .map(|(_, handle)| handle.clone());
        if let Some(handle) = found {
            return handle;
        }
        let handle = make();
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() < MAX_HANDLES && !entries.iter().any(|entry| is_key(&entry)) {
            entries.push(((labels, server.into()), handle.clone()));
        }
        handle
    }
}

/// A login decided by the engine. `method` is `-` when no method could answer.
pub fn login(method: &'static str, result: &'static str, latency: Duration) {
    static COUNTERS: Handles<metrics::Counter> = Handles::new();
    static DURATIONS: Handles<metrics::Histogram> = Handles::new();
    COUNTERS
        .get(
            [method, result],
            "",
            || metrics::counter!("portcullis_logins_total", "method" => method, "result" => result),
        )
        .increment(1);
    DURATIONS
        .get(
            [result, ""],
            "",
            || metrics::histogram!("portcullis_login_duration_seconds", "result" => result),
        )
        .record(latency.as_secs_f64());
}

/// One request to an upstream server and how it ended (`accept`, `reject`, `challenge`,
/// `timeout`, `error`).
pub fn upstream_request(
    protocol: &'static str,
    server: &str,
    result: &'static str,
    latency: Duration,
) {
    static REQUESTS: Handles<metrics::Counter> = Handles::new();
    static TIMEOUTS: Handles<metrics::Counter> = Handles::new();
    static DURATIONS: Handles<metrics::Histogram> = Handles::new();
    REQUESTS
        .get([protocol, result], server, || {
            metrics::counter!("portcullis_upstream_requests_total", "protocol" => protocol, "server" => server.to_owned(), "result" => result)
        })
        .increment(1);
    if result == "timeout" {
        TIMEOUTS
            .get([protocol, ""], server, || {
                metrics::counter!("portcullis_upstream_timeouts_total", "protocol" => protocol, "server" => server.to_owned())
            })
            .increment(1);
    }
    DURATIONS
        .get([protocol, ""], server, || {
            metrics::histogram!("portcullis_upstream_duration_seconds", "protocol" => protocol, "server" => server.to_owned())
        })
        .record(latency.as_secs_f64());
}

/// A RADIUS request sent again.
pub fn upstream_retransmit(server: &str) {
    metrics::counter!("portcullis_upstream_retransmits_total", "protocol" => "radius", "server" => server.to_owned())
        .increment(1);
}

/// A reply from an upstream server that was dropped.
pub fn upstream_invalid_reply(protocol: &'static str, server: &str) {
    metrics::counter!("portcullis_upstream_invalid_replies_total", "protocol" => protocol, "server" => server.to_owned())
        .increment(1);
}

/// Whether an upstream server is alive (1) or marked dead (0), as last reported.
pub fn upstream_up(protocol: &'static str, server: &str, alive: bool) {
    metrics::gauge!("portcullis_upstream_up", "protocol" => protocol, "server" => server.to_owned())
        .set(if alive { 1.0 } else { 0.0 });
}

/// An upstream server found alive again by a probe.
pub fn upstream_revived(protocol: &'static str, server: &str) {
    metrics::counter!("portcullis_upstream_revived_total", "protocol" => protocol, "server" => server.to_owned())
        .increment(1);
}

/// An upstream server marked dead.
pub fn upstream_dead(protocol: &'static str, server: &str) {
    metrics::counter!("portcullis_upstream_marked_dead_total", "protocol" => protocol, "server" => server.to_owned())
        .increment(1);
}

/// A RADIUS front-end datagram of `kind` (`request`, `access_accept`, `access_reject`,
/// `status_server`, `duplicate`).
pub fn frontend_packet(kind: &'static str) {
    static COUNTERS: Handles<metrics::Counter> = Handles::new();
    COUNTERS
        .get(
            [kind, ""],
            "",
            || metrics::counter!("portcullis_frontend_packets_total", "type" => kind),
        )
        .increment(1);
}

/// A RADIUS front-end datagram dropped.
pub fn frontend_dropped(reason: &'static str) {
    metrics::counter!("portcullis_frontend_dropped_total", "reason" => reason).increment(1);
}

/// A RadSec front-end connection ended its set-up: `accepted` (a client was identified) or
/// `refused` (over the cap, handshake failed, no matching client, no usable certificate).
pub fn radsec_connection(result: &'static str) {
    metrics::counter!("portcullis_radsec_connections_total", "result" => result).increment(1);
}

/// RadSec front-end connections open now.
pub fn radsec_open(open: usize) {
    // A gauge of connections: far below 2^52, exact as f64.
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("portcullis_radsec_connections_open").set(open as f64);
}

/// A REST request answered.
pub fn http_request(route: String, method: String, status: u16) {
    metrics::counter!("portcullis_http_requests_total", "route" => route, "method" => method, "status" => status.to_string())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
        assert_eq!(priority(Level::TRACE), 7);
    }

    #[test]
    fn journald_lines_carry_the_priority_and_no_timestamp() {
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(data);
                Ok(data.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(Journald::default())
                .with_writer(move || sink.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(server = "10.0.0.1:1812", "marked dead");
            tracing::info!("listening");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("<4>"), "{text}");
        assert!(
            lines[0].contains("marked dead server=\"10.0.0.1:1812\""),
            "{text}"
        );
        assert!(lines[1].starts_with("<6>"), "{text}");
        // No timestamp: right after the priority comes the target.
        assert!(lines[1].starts_with("<6>portcullis::telemetry"), "{text}");
    }
}

/// Metrics as the unit tests read them, from the daemon's own recorder.
#[cfg(test)]
pub(crate) mod testing {
    /// Records metrics from now on (installs the recorder if nothing did yet).
    pub(crate) fn record() {
        super::metrics();
    }

    /// The counter `name` of `server` (its `server` label), summed over its other labels, as
    /// `/metrics` shows it.
    pub(crate) fn counter(name: &str, server: &str) -> u64 {
        let label = format!("server=\"{server}\"");
        super::metrics()
            .render()
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') && rest.contains(&label))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|value| value as u64)
            .sum()
    }
}
