//! Running under a service manager: readiness and watchdog notifications (sd_notify(3)),
//! SIGHUP reload, and a bounded drain of in-flight logins on SIGTERM; and the daemon as a
//! value ([`Server`], in `server.rs`), which builds the components and runs them.
//!
//! Notifications are datagrams to `$NOTIFY_SOCKET` (a path, or `@name` for an abstract
//! socket). Without the variable every notification is a no-op, so the same binary runs
//! under systemd and anywhere else.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::Duration;

use crate::live::ConfigStore;

mod server;

pub use server::{Listeners, Server};

/// How long in-flight logins get to finish after SIGTERM.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where sd_notify(3) messages go.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
}

impl Notifier {
    /// The notifier for `$NOTIFY_SOCKET`; a no-op one when it is unset or unusable.
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let addr = socket_addr(path.as_encoded_bytes())?;
            let socket = UnixDatagram::unbound()
                .map_err(|e| tracing::warn!(error = %e, "cannot open a socket for NOTIFY_SOCKET"))
                .ok()?;
            Some((socket, addr))
        });
        Notifier { target }
    }

    /// Whether notifications go anywhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `state` (newline-separated `KEY=value` lines). Failures are logged, never
    /// fatal: the service manager may have gone away.
    pub fn notify(&self, state: &str) {
        if let Some((socket, addr)) = &self.target {
            if let Err(e) = socket.send_to_addr(state.as_bytes(), addr) {
                tracing::debug!(error = %e, "sd_notify failed");
            }
        }
    }

    /// `STATUS=` with a free-text line for `systemctl status`.
    pub fn status(&self, text: &str) {
        // A newline would start another assignment.
        let line: String = text.chars().filter(|c| *c != '\n').collect();
        self.notify(&format!("STATUS={line}"));
    }
}

/// `$NOTIFY_SOCKET` as an address: a path, or an abstract name after `@`.
fn socket_addr(bytes: &[u8]) -> Option<std::os::unix::net::SocketAddr> {
    let parsed = match bytes.split_first() {
        None => return None,
        Some((b'@', name)) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
        }
        Some((b'/', _)) => {
            use std::os::unix::ffi::OsStrExt;
            std::os::unix::net::SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(bytes))
        }
        Some(_) => {
            tracing::warn!("NOTIFY_SOCKET is neither an absolute path nor @abstract; ignored");
            return None;
        }
    };
    parsed
        .map_err(|e| tracing::warn!(error = %e, "NOTIFY_SOCKET is unusable; ignored"))
        .ok()
}

/// The keep-alive interval the service manager asks for: half of `$WATCHDOG_USEC`, when
/// `$WATCHDOG_PID` is unset or names this process.
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

/// Sends `WATCHDOG=1` every `interval` from a task on the current runtime, so that a wedged
/// runtime stops the keep-alives and the service manager restarts the daemon.
pub fn spawn_watchdog(notifier: Arc<Notifier>, interval: Duration) {
    tokio::spawn(crate::sync::every(
        interval,
        std::future::pending(),
        async move || notifier.notify("WATCHDOG=1"),
    ));
}

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: re-read the configuration file.
    Reload,
    /// SIGTERM or SIGINT: drain and stop.
    Stop,
}

/// The signals the daemon acts on.
#[derive(Debug)]
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (SIGTERM, SIGINT, SIGHUP).
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

/// Acts on signals until SIGTERM or SIGINT: SIGHUP reloads the configuration file (see
/// [`reload`]); a stop sends `STOPPING=1` and sets `stop`.
pub async fn handle_signals(
    mut signals: Signals,
    store: Arc<ConfigStore>,
    notifier: Arc<Notifier>,
    stop: tokio::sync::watch::Sender<bool>,
) {
    loop {
        match signals.next().await {
            Signal::Reload => reload(&store, &notifier).await,
            Signal::Stop => {
                tracing::info!("stopping: draining requests in flight");
                notifier.notify("STOPPING=1");
                notifier.status("Stopping: draining requests in flight");
                let _ = stop.send(true);
                return;
            }
        }
    }
}

/// Warns once per enabled TACACS+ server over plain TCP: RFC 8907 §4.5 obfuscation is an XOR
/// pad, not integrity, so an on-path attacker who does not know the key can still flip a FAIL
/// reply into PASS and answer the authorization that follows. Only TLS (RFC 9887,
/// `transport = "tls"`) or a network path no one else can write to protects them.
pub fn warn_unprotected_upstreams(config: &portcullis_config::Config) {
    let unprotected = config
        .tacacs
        .enabled_servers()
        .into_iter()
        .filter(|server| server.transport == portcullis_config::TacacsTransport::Tcp);
    for server in unprotected {
        tracing::warn!(
            server = %format!("{}:{}", server.address, server.port),
            "TACACS+ server without TLS: its replies carry no integrity check (RFC 8907 §4.5), so \
             an on-path attacker can turn a rejected login into an accepted one; use transport = \
             \"tls\" (RFC 9887) or keep it on a trusted network path"
        );
    }
}

/// Re-reads and validates the configuration file and swaps it in (configuration, engine, log
/// level); an unusable file is refused with a log line and the running configuration stays.
/// Either way the attempt is an audit event.
pub async fn reload(store: &ConfigStore, notifier: &Notifier) {
    let started = std::time::Instant::now();
    tracing::info!("SIGHUP: reloading the configuration file");
    let before = store.current();
    let result = store.reload().await;
    let outcome = match &result {
        Ok(warnings) => {
            for warning in warnings {
                tracing::warn!(%warning, "reloaded configuration has a warning");
            }
            let live = store.current();
            warn_unprotected_upstreams(&live.config);
            if live.config.listeners != before.config.listeners {
                tracing::warn!(
                    "listeners changed: sockets are bound at start, restart to apply the change"
                );
            }
            crate::telemetry::set_level(&live.config.logging.level);
            tracing::info!("configuration reloaded");
            notifier.status("Running; configuration reloaded");
            "ok"
        }
        Err(e) => {
            tracing::error!(error = %e, "configuration reload refused; the running configuration stays");
            notifier.status("Running; last reload refused (see the log)");
            "refused"
        }
    };
    metrics::counter!("portcullis_config_reloads_total", "result" => outcome).increment(1);
    let refused = result.as_ref().err().map(|e| Refused(e.as_str()));
    crate::audit::config_change(
        refused
            .as_ref()
            .map_or(Ok(()), |e| Err(e as &dyn crate::audit::Refusal)),
        started,
        ("signal", "reload"),
    );
}

/// A configuration file the reload refused.
struct Refused<'a>(&'a str);

impl crate::audit::Refusal for Refused<'_> {
    fn refused(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.0.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_paths_and_abstract_names() {
        use std::os::linux::net::SocketAddrExt;
        let path = socket_addr(b"/run/systemd/notify").unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let abstract_name = socket_addr(b"@portcullis/notify").unwrap();
        assert_eq!(
            abstract_name.as_abstract_name(),
            Some(&b"portcullis/notify"[..])
        );
        assert!(socket_addr(b"").is_none());
        assert!(socket_addr(b"relative").is_none());
    }

    #[test]
    fn notifications_arrive_as_datagrams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            target: Some((
                UnixDatagram::unbound().unwrap(),
                socket_addr(path.as_os_str().as_encoded_bytes()).unwrap(),
            )),
        };
        assert!(notifier.enabled());
        notifier.notify("READY=1");
        notifier.status("two\nlines");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=twolines");
    }
}
