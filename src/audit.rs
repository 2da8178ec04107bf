//! The audit log: every login attempt and every configuration change (who, from where, what,
//! result, reason, latency), kept in the state database for `audit.retention_days`, queried
//! by [`query`] (served at `GET /api/audit/1.0/events` by the REST layer), and mirrored to
//! the log with target `audit`.
//!
//! Callers record events with [`record`]; it logs at once and writes the row on the blocking
//! pool, so a login never waits for SQLite. The REST API's requests run inside a
//! [`RequestContext`] (set by the REST layer, `api::audit::context_layer`), which is how a configuration change made in
//! [`ConfigStore::update`](crate::live::ConfigStore::change) learns who asked, from
//! where, and through which route, without every handler passing it along.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use compact_str::CompactString;

use crate::engine::{Decision, Outcome};
use crate::state::audit::AuditState;
use crate::state::{StateDb, unix_now};

/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub use crate::state::audit::{DEFAULT_PAGE, Event, Filter, Kind, MAX_PAGE, NewEvent, Page};

/// Where [`record`] sends events: the queue of the writer thread, set once at start.
static SINK: OnceLock<Sender<Queued>> = OnceLock::new();

/// Events in the queue. The queue allocates as it fills (a bounded channel would hold
/// [`QUEUE`] slots from the start), and this count keeps it bounded.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// What the writer thread receives.
enum Queued {
    /// An event and when it happened.
    Event(i64, NewEvent),
    /// Store what is queued now, then answer.
    Flush(SyncSender<()>),
}

/// Events waiting for the writer. A burst beyond this is dropped from the database (counted
/// in `portcullis_audit_dropped_total`, and still in the log) rather than held in memory
/// without bound.
const QUEUE: usize = 64 * 1024;

/// The most events written in one transaction.
const BATCH: usize = 16 * 1024;

/// How long the writer lets a batch gather after its first event (less when [`BATCH`] events
/// are queued sooner). Long batches matter: each transaction rewrites every page of the
/// `(kind, user_key)` index it touches, about one per user: at 12,000 logins/s over 1,000 users,
/// 50 ms batches wrote 20 to 60 MB/s to disk.
const LINGER: Duration = Duration::from_secs(1);

/// Makes [`record`] write to `db` (the first call wins): starts the one writer thread, which
/// stores events in batches, one transaction each, so the database keeps up with bursts of
/// logins.
pub fn install(db: StateDb) {
    SINK.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_batches(&db, &receiver));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the audit writer; events go to the log only");
        }
        sender
    });
}

/// Stores the events queued so far before it returns (at shutdown), waiting at most 5 s.
pub fn flush() {
    let Some(sink) = SINK.get() else {
        return;
    };
    let (done, stored) = std::sync::mpsc::sync_channel(1);
    FLUSHING.store(true, Ordering::Relaxed);
    if sink.send(Queued::Flush(done)).is_ok()
        && stored.recv_timeout(Duration::from_secs(5)).is_err()
    {
        tracing::warn!("audit events still queued at exit");
    }
}

/// How long the writer waits before it tries again to store events the database refused (it
/// does not answer: a shared database restarting).
const RETRY: Duration = Duration::from_secs(1);

/// Stores what arrives on `receiver` until every sender is gone. Events the database does not
/// take are kept (at most [`QUEUE`], the oldest dropped beyond) and tried again every
/// [`RETRY`], in order, before newer ones.
fn write_batches(db: &StateDb, receiver: &Receiver<Queued>) {
    let mut batch = Vec::new();
    let mut unstored: Vec<(i64, NewEvent)> = Vec::new();
    let mut behind = false;
    // Below the logins' priority while it keeps up (crate::priority).
    let mut priority = crate::priority::Background::start("audit-writer");
    loop {
        let first = if unstored.is_empty() {
            match receiver.recv() {
                Ok(first) => Some(first),
                Err(_) => return,
            }
        } else {
            match receiver.recv_timeout(RETRY) {
                Ok(first) => Some(first),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        };
        let mut flushed = None;
        match first {
            Some(Queued::Event(at, event)) => {
                batch.push((at, event));
                // A burst gathers for LINGER, so it costs a few transactions, not one each;
                // the writer sleeps meanwhile instead of being woken by every event. A writer
                // that is behind (its last batch was full) goes on at once.
                if !behind && unstored.is_empty() {
                    gather();
                }
            }
            Some(Queued::Flush(done)) => flushed = Some(done),
            None => {}
        }
        while flushed.is_none() && batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(Queued::Event(at, event)) => batch.push((at, event)),
                Ok(Queued::Flush(done)) => flushed = Some(done),
                Err(_) => break,
            }
        }
        QUEUED.fetch_sub(batch.len(), Ordering::Relaxed);
        behind = batch.len() >= BATCH;
        priority.keep_up(behind);
        if unstored.is_empty() {
            if !store_batch(db, &batch) {
                unstored.append(&mut batch);
            }
        } else {
            unstored.append(&mut batch);
            store_unstored(db, &mut unstored);
        }
        batch.clear();
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

/// Tries again to store the events kept after a failed write, oldest first, in batches; keeps
/// at most [`QUEUE`] of them (the oldest beyond are dropped, counted and logged).
fn store_unstored(db: &StateDb, unstored: &mut Vec<(i64, NewEvent)>) {
    while !unstored.is_empty() {
        let n = unstored.len().min(BATCH);
        if !store_batch(db, &unstored[..n]) {
            break;
        }
        unstored.drain(..n);
        tracing::info!(
            events = n,
            "audit events kept during a database outage stored"
        );
    }
    if unstored.len() > QUEUE {
        let excess = unstored.len() - QUEUE;
        unstored.drain(..excess);
        metrics::counter!("portcullis_audit_dropped_total").increment(excess as u64);
        tracing::warn!(
            events = excess,
            "audit events dropped from the database after an outage (still in the log)"
        );
    }
}

/// Waits until [`LINGER`] has passed or [`BATCH`] events are queued.
fn gather() {
    let until = Instant::now() + LINGER;
    while QUEUED.load(Ordering::Relaxed) < BATCH
        && !FLUSHING.load(Ordering::Relaxed)
        && Instant::now() < until
    {
        std::thread::sleep(GATHER_STEP);
    }
}

/// Set by [`flush`]: the writer stops gathering.
static FLUSHING: AtomicBool = AtomicBool::new(false);

/// How often [`gather`] looks at the queue.
const GATHER_STEP: Duration = Duration::from_millis(10);

/// Stores `batch` in one transaction; whether it was stored (a failure is logged, and the
/// caller keeps the events).
fn store_batch(db: &StateDb, batch: &[(i64, NewEvent)]) -> bool {
    if batch.is_empty() {
        return true;
    }
    match db.insert_events(batch) {
        Ok(()) => true,
        Err(e) => {
            metrics::counter!("portcullis_audit_unstored_total").increment(batch.len() as u64);
            tracing::warn!(error = %e, events = batch.len(), "audit events not stored yet; kept to try again");
            false
        }
    }
}

/// The longest user name kept in an event; a login may send up to the 1 MiB body limit.
const MAX_USER_CHARS: usize = 256;
/// The longest reason, action or source kept in an event.
const MAX_TEXT_CHARS: usize = 1024;

/// `text` cut to `max` characters, marked with `...` when it was cut.
fn clip(text: &mut CompactString, max: usize) {
    if let Some((index, _)) = text.char_indices().nth(max) {
        text.truncate(index);
        text.push_str("...");
    }
}

/// [`clip`] for a reason.
fn clip_reason(reason: &mut String) {
    if let Some((index, _)) = reason.char_indices().nth(MAX_TEXT_CHARS) {
        reason.truncate(index);
        reason.push_str("...");
    }
}

/// Logs `event` (target `audit`) and queues it for the state database (written in the
/// background, see [`install`]).
/// Untrusted text (the user name a client sent) is cut to a bounded length first.
pub fn record(mut event: NewEvent) {
    clip(&mut event.user, MAX_USER_CHARS);
    clip(&mut event.action, MAX_TEXT_CHARS);
    clip(&mut event.source, MAX_TEXT_CHARS);
    if let Some(reason) = &mut event.reason {
        clip_reason(reason);
    }
    let latency_ms = u64::try_from(event.latency.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        target: "audit",
        kind = event.kind.as_str(),
        user = %event.user,
        source = %event.source,
        action = %event.action,
        result = event.result,
        reason = event.reason.as_deref(),
        method = event.method,
        server = event.server.as_deref(),
        latency_ms,
        "audit"
    );
    let Some(sink) = SINK.get() else {
        return;
    };
    if QUEUED.fetch_add(1, Ordering::Relaxed) >= QUEUE
        || sink.send(Queued::Event(unix_now(), event)).is_err()
    {
        QUEUED.fetch_sub(1, Ordering::Relaxed);
        metrics::counter!("portcullis_audit_dropped_total").increment(1);
        tracing::warn!("audit queue full: event kept in the log only");
    }
}

/// Records to the daemon's state database from now on, and prunes it per
/// `retention_days()` (the live configuration's `audit.retention_days`).
pub fn start(db: &StateDb, retention_days: impl Fn() -> u32 + Send + 'static) {
    install(db.clone());
    spawn_pruning(db.clone(), retention_days);
}

/// Prunes events older than `retention_days()` days now and every hour after.
pub fn spawn_pruning(db: StateDb, retention_days: impl Fn() -> u32 + Send + 'static) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PRUNE_EVERY);
        loop {
            ticks.tick().await;
            let before = unix_now().saturating_sub(i64::from(retention_days()) * 86_400);
            match db.call(move |db| db.prune_events(before)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "old audit events removed"),
                Err(e) => tracing::warn!(error = %e, "audit pruning failed"),
            }
        }
    });
}

/// Who is asking, from where, through which route: set for each REST request.
#[derive(Debug)]
pub struct RequestContext {
    source: String,
    action: String,
    user: Mutex<Option<String>>,
    /// Whether a configuration change was recorded for this request.
    recorded: AtomicBool,
}

tokio::task_local! {
    static CONTEXT: Arc<RequestContext>;
}

impl RequestContext {
    /// The context of a request from `source` (`ip:port`, `unix`) doing `action`
    /// (`POST /api/...`, the route template).
    pub fn new(source: String, action: String) -> Arc<RequestContext> {
        Arc::new(RequestContext {
            source,
            action,
            user: Mutex::new(None),
            recorded: AtomicBool::new(false),
        })
    }

    /// Whether a configuration change was recorded while the request ran.
    pub fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Acquire)
    }

    /// The authenticated caller, or `-`.
    pub fn user(&self) -> String {
        self.user
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "-".into())
    }

    /// The request's source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The request's action.
    pub fn action(&self) -> &str {
        &self.action
    }
}

/// Runs `request` inside `context`, so the events it records know who, from where, what.
pub async fn within<F: std::future::Future>(context: Arc<RequestContext>, request: F) -> F::Output {
    CONTEXT.scope(context, request).await
}

/// Remembers the authenticated caller for the current request's audit events.
pub fn set_caller(user: &str) {
    let _ = CONTEXT.try_with(|context| {
        *context.user.lock().unwrap_or_else(|p| p.into_inner()) = Some(user.to_string());
    });
}

/// The current request's (user, source, action), when inside one.
pub fn current() -> Option<(String, String, String)> {
    CONTEXT
        .try_with(|context| {
            let user = context
                .user
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_else(|| "-".into());
            (user, context.source.clone(), context.action.clone())
        })
        .ok()
}

/// Records a login attempt decided by the engine. `origin` is (source, action); without it
/// the current REST request's are used.
pub fn login(user: &str, decision: &Decision, origin: Option<(CompactString, CompactString)>) {
    let (source, action) = origin
        .or_else(|| current().map(|(_, source, action)| (source.into(), action.into())))
        .unwrap_or_else(|| ("-".into(), "-".into()));
    let (result, reason) = match &decision.outcome {
        Outcome::Accept(_) => ("accept", None),
        Outcome::Reject(reason) => ("reject", Some(reason.to_string())),
        Outcome::Unavailable(reason) => ("unavailable", Some(reason.clone())),
        Outcome::Challenge(_) => ("challenge", Some("Access-Challenge relayed".to_string())),
    };
    record(NewEvent {
        kind: Kind::Login,
        user: user.into(),
        source,
        action,
        result,
        reason,
        method: decision.method.map(|m| m.name()),
        server: decision.server.clone(),
        latency: decision.latency,
    });
}

/// How a refused or failed configuration change is recorded: whether the caller's request
/// was refused (`refused`) or the change failed (`failed`), and a one-line reason.
pub trait Refusal {
    /// A refusal of the request (bad input, not allowed), not a failure of the daemon.
    fn refused(&self) -> bool;
    /// The reason, one line.
    fn describe(&self) -> String;
}

/// Records a configuration change made through the API (or by `source` when outside a
/// request) that ended in `outcome`.
pub fn config_change(outcome: Result<(), &dyn Refusal>, started: Instant, fallback: (&str, &str)) {
    let _ = CONTEXT.try_with(|context| {
        context.recorded.store(true, Ordering::Release);
    });
    let (user, source, action) = current().unwrap_or_else(|| {
        (
            "-".to_string(),
            fallback.0.to_string(),
            fallback.1.to_string(),
        )
    });
    let (result, reason) = match outcome {
        Ok(()) => ("ok", None),
        Err(e) if e.refused() => ("refused", Some(e.describe())),
        Err(e) => ("failed", Some(e.describe())),
    };
    record(NewEvent {
        kind: Kind::Config,
        user: user.into(),
        source: source.into(),
        action: action.into(),
        result,
        reason,
        method: None,
        server: None,
        latency: started.elapsed(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: Kind, user: &str, result: &'static str) -> NewEvent {
        NewEvent {
            kind,
            user: user.into(),
            source: "127.0.0.1:5000".into(),
            action: "POST /api/auth/1.0/login".into(),
            result,
            reason: None,
            method: Some("Local"),
            server: None,
            latency: Duration::from_millis(12),
        }
    }

    fn filled() -> StateDb {
        let db = StateDb::in_memory().unwrap();
        db.insert_events(&[
            (100, event(Kind::Login, "alice", "accept")),
            (200, event(Kind::Login, "bob", "reject")),
            (300, event(Kind::Config, "admin", "ok")),
            (400, event(Kind::Login, "alice", "reject")),
        ])
        .unwrap();
        db
    }

    fn ids(page: &Page) -> Vec<i64> {
        page.events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn newest_first_with_filters() {
        let db = filled();
        let all = db.query_events(&Filter::default()).unwrap();
        assert_eq!(ids(&all), [4, 3, 2, 1]);
        assert_eq!(all.next_before, None);
        assert_eq!(all.events[0].latency_ms, 12);
        assert_eq!(all.events[0].method.as_deref(), Some("Local"));

        let alice = Filter {
            user: Some("alice".into()),
            ..Filter::default()
        };
        assert_eq!(ids(&db.query_events(&alice).unwrap()), [4, 1]);
        let variant = Filter {
            user: Some(" ALICE".into()),
            ..Filter::default()
        };
        assert_eq!(ids(&db.query_events(&variant).unwrap()), [4, 1]);
        let config = Filter {
            kind: Some(Kind::Config),
            ..Filter::default()
        };
        let page = db.query_events(&config).unwrap();
        assert_eq!(ids(&page), [3]);
        assert_eq!(page.events[0].kind, Kind::Config);
        let window = Filter {
            since: Some(200),
            until: Some(300),
            result: Some("reject".into()),
            ..Filter::default()
        };
        assert_eq!(ids(&db.query_events(&window).unwrap()), [2]);
    }

    #[test]
    fn pages_by_cursor_and_offset() {
        let db = filled();
        let first = Filter {
            limit: Some(3),
            ..Filter::default()
        };
        let page = db.query_events(&first).unwrap();
        assert_eq!(ids(&page), [4, 3, 2]);
        assert_eq!(page.next_before, Some(2));
        // An event arriving between pages does not shift the cursor.
        db.insert_events(&[(500, event(Kind::Login, "carol", "accept"))])
            .unwrap();
        let next = Filter {
            limit: Some(3),
            before: page.next_before,
            ..Filter::default()
        };
        let page = db.query_events(&next).unwrap();
        assert_eq!(ids(&page), [1]);
        assert_eq!(page.next_before, None);
        let skipped = Filter {
            limit: Some(2),
            offset: Some(1),
            ..Filter::default()
        };
        assert_eq!(ids(&db.query_events(&skipped).unwrap()), [4, 3]);
    }

    #[test]
    fn long_text_is_clipped_on_a_character_boundary() {
        let mut name = CompactString::from("é".repeat(300));
        clip(&mut name, MAX_USER_CHARS);
        assert_eq!(name.chars().count(), MAX_USER_CHARS + 3);
        assert!(name.ends_with("..."));
        let mut short = CompactString::from("alice");
        clip(&mut short, MAX_USER_CHARS);
        assert_eq!(short, "alice");
    }

    #[test]
    fn pruning_removes_only_older_events() {
        let db = filled();
        assert_eq!(db.prune_events(250).unwrap(), 2);
        let all = db.query_events(&Filter::default()).unwrap();
        assert_eq!(ids(&all), [4, 3]);
    }

    #[tokio::test]
    async fn the_request_context_carries_the_caller() {
        assert!(current().is_none());
        let context = RequestContext::new(
            "10.0.0.9:4000".into(),
            "POST /api/mgmt.local_users/1.0/users".into(),
        );
        let seen = within(context, async {
            set_caller("admin");
            current()
        })
        .await;
        assert_eq!(
            seen,
            Some((
                "admin".into(),
                "10.0.0.9:4000".into(),
                "POST /api/mgmt.local_users/1.0/users".into()
            ))
        );
    }
}
