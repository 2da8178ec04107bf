//! The daemon as a value: [`Server::bind`] builds every component from the configuration,
//! each given its dependencies as it is made, and binds every listener; [`Server::run`]
//! serves until the shutdown future resolves, then drains: the RADIUS sockets and the APIs
//! take no new requests, what is in flight gets [`DRAIN_TIMEOUT`] from the stop, and the
//! throttle's counts and the audit events still buffered are written.
//!
//! This is the one module besides `main.rs` that wires the REST API (`crate::api`) to the
//! core: it is where the doors are put in front of it, so it sits in `daemon/`, above them.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use portcullis_config::Config;
use tokio::net::{TcpListener, UdpSocket, UnixListener};
use tokio::sync::watch;

use super::{DRAIN_TIMEOUT, Notifier};
use crate::api::AppState;
use crate::frontend::Frontend;
use crate::live::ConfigStore;

/// Where the daemon listens, beyond what the configuration says.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    /// The HTTPS API (`None`: the configuration's first `listeners.api`).
    pub api: Option<SocketAddr>,
    /// The RADIUS front-end's UDP addresses (empty: `listeners.radius_frontend`).
    pub radius: Vec<SocketAddr>,
    /// The API over plain HTTP on this Unix socket, too.
    pub unix_socket: Option<PathBuf>,
}

/// Why the daemon cannot start: the message says what and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

/// Why the daemon stopped other than by a shutdown.
#[derive(Debug, thiserror::Error)]
#[error("API server: {0}")]
pub struct ServeError(#[from] std::io::Error);

/// A daemon with every listener bound, ready to serve.
pub struct Server {
    state: Arc<AppState>,
    tls: RustlsConfig,
    api: std::net::TcpListener,
    api_addr: SocketAddr,
    frontend: Option<(Arc<Frontend>, Vec<UdpSocket>, Vec<TcpListener>)>,
    unix: Option<(UnixListener, PathBuf)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("api", &self.api_addr)
            .finish_non_exhaustive()
    }
}

/// How a configuration version another node stored goes live here: each announcement (and
/// each time announcements start again after a break) wakes a task that makes the newest
/// version live, unless it already is.
fn follow_configuration(
    store: &Arc<ConfigStore>,
) -> (&'static str, crate::state::postgres::listen::Handler) {
    use crate::state::postgres::listen::Notice;
    let (wake, mut woken) = tokio::sync::mpsc::channel::<()>(1);
    let store = Arc::clone(store);
    tokio::spawn(async move {
        while woken.recv().await.is_some() {
            if let Err(e) = store.follow().await {
                tracing::error!(error = %e, "the shared configuration's newest version cannot go live here");
            }
        }
    });
    let handler = move |notice: Notice<'_>| {
        if matches!(notice, Notice::Message(_) | Notice::Connected) {
            // A wake already queued covers this one too.
            let _ = wake.try_send(());
        }
    };
    (crate::state::postgres::config::CHANNEL, Arc::new(handler))
}

impl Server {
    /// Builds the daemon for `config` (read from `path`), keeping state under `state_dir`, and
    /// binds its listeners.
    pub async fn bind(
        path: &Path,
        config: Config,
        state_dir: &Path,
        listeners: Listeners,
    ) -> Result<Server, StartError> {
        let Some(addr) = listeners
            .api
            .or_else(|| config.listeners.api.first().copied())
        else {
            return Err(StartError(
                "no API listener: pass --listen or set listeners.api".into(),
            ));
        };
        let radius_addrs = if listeners.radius.is_empty() {
            config.listeners.radius_frontend.clone()
        } else {
            listeners.radius
        };
        let radsec_addrs = config.listeners.radsec.clone();
        // Installed before the first login so every count is kept.
        crate::telemetry::metrics();
        crate::telemetry::spawn_upkeep();
        let tls = crate::api::tls_config(state_dir)
            .await
            .map_err(|e| StartError(format!("TLS under {}: {e}", state_dir.display())))?;
        let api = std::net::TcpListener::bind(addr)
            .map_err(|e| StartError(format!("cannot listen on {addr}: {e}")))?;
        let api_addr = api.local_addr().map_or(addr, |a| a);
        let db = crate::state::StateDb::open_configured(&config.state, state_dir)
            .map_err(|e| StartError(e.to_string()))?;
        let store = if db.is_shared() {
            ConfigStore::new_shared(path.to_path_buf(), config, db.clone()).map_err(StartError)?
        } else {
            ConfigStore::new(path.to_path_buf(), config).map_err(|e| StartError(e.to_string()))?
        };
        let mfa = crate::mfa::MfaStore::open(db.clone(), state_dir)
            .map_err(|e| StartError(format!("MFA key under {}: {e}", state_dir.display())))?;
        if db.is_shared() {
            // Every node seals device secrets under the same key, or a device paired on one
            // node fails on the others.
            let mine = mfa.key().fingerprint();
            let agreed = db
                .keep_meta("mfa_key_fingerprint", &mine)
                .map_err(|e| StartError(e.to_string()))?;
            if agreed != mine {
                return Err(StartError(format!(
                    "{}/{} is not the key the other nodes on {} use: copy mfa.key from one \
                     of them (mode 0600) and start again",
                    state_dir.display(),
                    crate::mfa::seal::KEY_FILE,
                    db.path().display()
                )));
            }
            tracing::info!(node = db.node(), database = %db.path().display(), "state on PostgreSQL");
        }
        // The front-end's TLS files: read at start and on every change.
        crate::frontend::radsec::check_files(&store.current().config)
            .map_err(|(at, why)| StartError(format!("{at}: {why}")))?;
        store.check_with(crate::frontend::radsec::check_files);
        let store = Arc::new(store);
        let sessions = crate::api::sessions::Sessions::open(db.clone(), Arc::clone(&store))
            .map_err(|e| StartError(e.to_string()))?;
        {
            // Every change that goes live (API write, reload) ends the sessions of the local
            // users it removed, disabled, re-roled or re-passworded.
            let sessions = sessions.clone();
            store.on_change(move |old, new| {
                sessions.revoke_changed_local_users(old, new);
            });
        }
        crate::audit::start(&db, {
            let store = Arc::clone(&store);
            move || store.current().config.audit.retention_days
        });
        // The throttle's counts are read now rather than by the first login.
        crate::throttle::counts(&db);
        // What other nodes sharing the state database write reaches this one at once.
        db.listen(vec![
            crate::throttle::subscription(&db),
            follow_configuration(&store),
        ]);
        let frontend = if radius_addrs.is_empty() && radsec_addrs.is_empty() {
            None
        } else {
            let current = {
                let store = Arc::clone(&store);
                Arc::new(move || store.current())
            };
            let frontend = Frontend::new(current, Some(mfa.clone()), Some(db.clone()));
            let mut sockets = Vec::with_capacity(radius_addrs.len());
            for addr in &radius_addrs {
                let socket = UdpSocket::bind(addr).await.map_err(|e| {
                    StartError(format!("cannot listen on UDP {addr} (RADIUS): {e}"))
                })?;
                let bound = socket.local_addr().map_or(*addr, |a| a);
                tracing::info!("RADIUS front-end listening on {bound}");
                sockets.push(socket);
            }
            let mut listeners = Vec::with_capacity(radsec_addrs.len());
            for addr in &radsec_addrs {
                let listener = TcpListener::bind(addr).await.map_err(|e| {
                    StartError(format!("cannot listen on TCP {addr} (RadSec): {e}"))
                })?;
                let bound = listener.local_addr().map_or(*addr, |a| a);
                tracing::info!("RadSec front-end listening on {bound}");
                listeners.push(listener);
            }
            Some((frontend, sockets, listeners))
        };
        let unix = match listeners.unix_socket {
            Some(path) => {
                let listener = crate::api::unix::bind_unix(&path)
                    .map_err(|e| StartError(format!("cannot listen on {}: {e}", path.display())))?;
                Some((listener, path))
            }
            None => None,
        };
        let dialogues = crate::login::dialogue::Dialogues::with_state(&db);
        let state = Arc::new(AppState {
            store: crate::api::Store(store),
            sessions,
            db,
            mfa,
            dialogues,
        });
        Ok(Server {
            state,
            tls,
            api,
            api_addr,
            frontend,
            unix,
        })
    }

    /// The live configuration (for SIGHUP reloads).
    pub fn store(&self) -> Arc<ConfigStore> {
        Arc::clone(&self.state.store.0)
    }

    /// Where the HTTPS API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Serves until `shutdown` resolves, then drains (module documentation). Readiness and
    /// status go to `notifier`.
    pub async fn run(
        self,
        notifier: Arc<Notifier>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server {
            state,
            tls,
            api,
            api_addr,
            frontend,
            unix,
        } = self;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let on_stop = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        // Everything in flight gets DRAIN_TIMEOUT from the stop, not more.
        let deadline = tokio::spawn({
            let stopped = on_stop();
            async move {
                stopped.await;
                tokio::time::Instant::now() + DRAIN_TIMEOUT
            }
        });
        let frontend = frontend.map(|(frontend, sockets, listeners)| {
            for socket in sockets {
                tokio::spawn(Arc::clone(&frontend).serve(socket, on_stop()));
            }
            for listener in listeners {
                tokio::spawn(Arc::clone(&frontend).serve_radsec(listener, on_stop()));
            }
            frontend
        });
        let unix = unix.map(|(listener, path)| {
            let (state, stop) = (Arc::clone(&state), on_stop());
            tokio::spawn(async move {
                if let Err(e) = crate::api::unix::serve_bound(listener, &path, state, stop).await
                {
                    tracing::error!(path = %path.display(), error = %e, "Unix socket listener failed");
                }
            })
        });
        spawn_prober(&state.store, on_stop());
        spawn_database_watch(&state, Arc::clone(&notifier), api_addr, on_stop());
        tracing::info!("listening on https://{api_addr}");
        // Every listener is bound and the configuration is loaded.
        notifier.notify("READY=1");
        notifier.status(&format!("Running; API on https://{api_addr}"));
        if let Some(interval) = super::watchdog_interval() {
            super::spawn_watchdog(Arc::clone(&notifier), interval);
        }
        let db = state.db.clone();
        let served = crate::api::serve(api, tls, state, on_stop()).await;
        let deadline = deadline
            .await
            .unwrap_or_else(|_| tokio::time::Instant::now());
        if let Some(unix) = unix {
            let _ = tokio::time::timeout_at(deadline, unix).await;
        }
        if let Some(frontend) = frontend {
            let left = frontend
                .drain(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await;
            if left > 0 {
                tracing::warn!(left, "stopped with RADIUS requests still in flight");
            }
        }
        crate::throttle::flush(&db);
        crate::audit::flush();
        served.map_err(ServeError::from)
    }
}

/// How often a node looks whether its shared state database answers.
const DATABASE_TICK: std::time::Duration = std::time::Duration::from_secs(2);

/// With a shared state database: looks every [`DATABASE_TICK`] whether it answers, keeps its
/// gauges current, and says so in the log and in systemd's `STATUS=` when that changes.
fn spawn_database_watch(
    state: &Arc<AppState>,
    notifier: Arc<Notifier>,
    api_addr: SocketAddr,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let db = state.db.clone();
    if !db.is_shared() {
        return;
    }
    tokio::spawn(crate::sync::every(DATABASE_TICK, stop, async move || {
        let db = db.clone();
        let Ok((changed, up)) = tokio::task::spawn_blocking(move || {
            let changed = db.check_reachable();
            (changed, db.is_reachable())
        })
        .await
        else {
            return;
        };
        if !changed {
            return;
        }
        if up {
            tracing::info!("state database reachable again");
            notifier.status(&format!("Running; API on https://{api_addr}"));
        } else {
            tracing::error!(
                "state database unreachable: first factors go on, throttle counts stay on \
                 this node, second factors and configuration changes are refused, audit \
                 events wait in memory"
            );
            notifier.status(
                "Degraded: state database unreachable; second factors and configuration \
                 changes refused",
            );
        }
    }));
}

/// How often the prober looks for dead RADIUS servers due for a Status-Server.
const PROBE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Probes the dead RADIUS servers of the live engine with Status-Server every
/// `authentication.probe_interval` seconds ([`crate::engine::Engine::probe_dead`]) and keeps
/// the `portcullis_upstream_up` gauges current, until `stop`.
fn spawn_prober(store: &crate::api::Store, stop: impl Future<Output = ()> + Send + 'static) {
    let store = Arc::clone(&store.0);
    tokio::spawn(crate::sync::every(PROBE_TICK, stop, async move || {
        let live = store.current();
        let interval =
            std::time::Duration::from_secs(u64::from(live.config.authentication.probe_interval));
        live.engine.probe_dead(interval).await;
        live.engine
            .probe_idle(interval, live.config.authentication.probe_idle)
            .await;
        // Keeps the portcullis_upstream_up gauges current.
        live.engine.health();
    }));
}
