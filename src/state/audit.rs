//! The audit log as the state keeps it (`audit_events`): events written in batches, pruned by
//! age, and read newest first by [`Filter`]. What is recorded, when, and how it is queued is
//! `crate::audit`.

use std::sync::Arc;
use std::time::Duration;

use compact_str::CompactString;
use rusqlite::{Connection, params_from_iter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{StateDb, StateError};

/// The most events one page holds.
pub const MAX_PAGE: u32 = 1000;
/// Events per page when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;
/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A login attempt (REST or RADIUS front-end).
    Login,
    /// A configuration change (REST API or reload).
    Config,
}

impl Kind {
    /// The name stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Config => "config",
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Event {
    /// Position in the log; larger is newer.
    pub id: i64,
    /// When, in seconds since the Unix epoch.
    pub at: i64,
    /// `login` or `config`.
    pub kind: Kind,
    /// Who: the user name given, or `-`.
    pub user: String,
    /// From where: the client's address, `unix` for the Unix socket, `signal` for a reload.
    pub source: String,
    /// What: the route (`POST /api/auth/1.0/login`), `radius:<client>` or `reload`.
    pub action: String,
    /// Logins: `accept`, `reject`, `unavailable`, or `challenge` (an upstream server asked for
    /// another step). Changes: `ok`, `refused` or `failed`.
    pub result: String,
    /// Why it was refused or failed.
    pub reason: Option<String>,
    /// The login method that decided (`Local`, `RADIUS`, `TACACS+`).
    pub method: Option<String>,
    /// The upstream server that decided (`address:port`).
    pub server: Option<String>,
    /// How long it took, in milliseconds.
    pub latency_ms: u64,
    /// The node that recorded it (`[state] node`, by default the host name).
    pub node: String,
}

/// An event to record; `id` and `at` are filled in by [`record`].
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `login` or `config`.
    pub kind: Kind,
    /// Who.
    pub user: CompactString,
    /// From where.
    pub source: CompactString,
    /// What.
    pub action: CompactString,
    /// The result.
    pub result: &'static str,
    /// Why.
    pub reason: Option<String>,
    /// The login method that decided.
    pub method: Option<&'static str>,
    /// The upstream server that decided.
    pub server: Option<Arc<str>>,
    /// How long it took.
    pub latency: Duration,
}

/// `GET /api/audit/1.0/events` filters and paging.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// Only events of this kind.
    pub kind: Option<Kind>,
    /// Only events of this user: every variant of the name (case, compatibility forms,
    /// surrounding spaces) that is the same canonical user.
    pub user: Option<String>,
    /// Only events with this result (`accept`, `reject`, `unavailable`, `ok`, `refused`,
    /// `failed`).
    pub result: Option<String>,
    /// Only events at or after this time (seconds since the Unix epoch).
    #[param(minimum = 0)]
    pub since: Option<i64>,
    /// Only events at or before this time (seconds since the Unix epoch).
    #[param(minimum = 0)]
    pub until: Option<i64>,
    /// Only events recorded by this node.
    pub node: Option<String>,
    /// Only events older than this id: pass the previous page's `next_before` to page
    /// through a log that grows meanwhile.
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Events per page, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Events to skip first (default 0).
    #[param(minimum = 0, maximum = 1000000)]
    pub offset: Option<u32>,
}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Page {
    /// The events, newest first.
    pub events: Vec<Event>,
    /// When more events follow: the `before` that asks for them.
    pub next_before: Option<i64>,
}

/// Where audit events are kept. Every call blocks; each is one transaction.
pub trait AuditState {
    /// Stores `events`, each with the time it happened (Unix seconds), in one transaction.
    fn insert_events(&self, events: &[(i64, NewEvent)]) -> Result<(), StateError>;
    /// Deletes the events older than `before` (Unix seconds); how many.
    fn prune_events(&self, before: i64) -> Result<usize, StateError>;
    /// The events `filter` selects, newest first (by id).
    fn query_events(&self, filter: &Filter) -> Result<Page, StateError>;
}

impl AuditState for StateDb {
    fn insert_events(&self, events: &[(i64, NewEvent)]) -> Result<(), StateError> {
        if let Some(pg) = self.postgres() {
            return pg.insert_events(events);
        }
        self.with(|conn| {
            let tx = conn.transaction()?;
            {
                // Cached, and looked up once per batch: the writer inserts thousands of
                // events a second under load.
                let mut statement = tx.prepare_cached(
                    "INSERT INTO audit_events (at, kind, user, source, action, result, reason, \
                     method, server, latency_ms, user_key, node) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?;
                for (at, event) in events {
                    statement.execute(rusqlite::params![
                        at,
                        event.kind.as_str(),
                        event.user.as_str(),
                        event.source.as_str(),
                        event.action.as_str(),
                        event.result,
                        event.reason,
                        event.method,
                        event.server,
                        i64::try_from(event.latency.as_millis()).unwrap_or(i64::MAX),
                        portcullis_config::UserKey::of(&event.user).as_str(),
                        self.node(),
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn prune_events(&self, before: i64) -> Result<usize, StateError> {
        if let Some(pg) = self.postgres() {
            return pg.prune_events(before);
        }
        self.with(|conn| Ok(conn.execute("DELETE FROM audit_events WHERE at < ?1", [before])?))
    }

    fn query_events(&self, filter: &Filter) -> Result<Page, StateError> {
        if let Some(pg) = self.postgres() {
            return pg.query_events(filter);
        }
        self.with(|conn| query(conn, filter))
    }
}

/// Deletes the events older than `before` (seconds since the epoch); returns how many.
pub fn prune(conn: &Connection, before: i64) -> Result<usize, StateError> {
    Ok(conn.execute("DELETE FROM audit_events WHERE at < ?1", [before])?)
}

/// A value a [`Filter`] compares a column with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bound {
    /// A text column's value.
    Text(String),
    /// An integer column's value.
    Int(i64),
}

/// The conditions `filter` puts on the rows, as (column and operator, value), in the order
/// the placeholders are numbered; the user is compared by key.
pub(crate) fn conditions(filter: &Filter) -> Vec<(&'static str, Bound)> {
    let mut conditions = Vec::new();
    if let Some(kind) = filter.kind {
        conditions.push(("kind =", Bound::Text(kind.as_str().to_owned())));
    }
    if let Some(user) = &filter.user {
        let key = portcullis_config::UserKey::of(user);
        conditions.push(("user_key =", Bound::Text(key.as_str().to_owned())));
    }
    if let Some(result) = &filter.result {
        conditions.push(("result =", Bound::Text(result.clone())));
    }
    if let Some(node) = &filter.node {
        conditions.push(("node =", Bound::Text(node.clone())));
    }
    for (clause, value) in [
        ("at >=", filter.since),
        ("at <=", filter.until),
        ("id <", filter.before),
    ] {
        if let Some(value) = value {
            conditions.push((clause, Bound::Int(value)));
        }
    }
    conditions
}

/// How many events a page of `filter` holds.
pub(crate) fn page_limit(filter: &Filter) -> u32 {
    filter.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

/// The tail of the query: newest first, one more than a page (which tells whether another
/// page follows), from `offset`.
pub(crate) fn order_and_limit(filter: &Filter) -> String {
    format!(
        " ORDER BY id DESC LIMIT {} OFFSET {}",
        page_limit(filter) + 1,
        filter.offset.unwrap_or(0)
    )
}

/// The page of `events` (read with [`order_and_limit`]).
pub(crate) fn page(mut events: Vec<Event>, filter: &Filter) -> Page {
    let limit = page_limit(filter) as usize;
    let more = events.len() > limit;
    events.truncate(limit);
    let next_before = if more {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Page {
        events,
        next_before,
    }
}

impl Kind {
    /// The kind stored as `text` (anything but `config` is a login).
    pub(crate) fn stored(text: &str) -> Kind {
        if text == "config" {
            Kind::Config
        } else {
            Kind::Login
        }
    }
}

/// The events `filter` selects, newest first (by id).
fn query(conn: &Connection, filter: &Filter) -> Result<Page, StateError> {
    let mut sql = String::from(
        "SELECT id, at, kind, user, source, action, result, reason, method, server, latency_ms, \
         node FROM audit_events WHERE 1 = 1",
    );
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    for (clause, value) in conditions(filter) {
        values.push(match value {
            Bound::Text(text) => text.into(),
            Bound::Int(int) => int.into(),
        });
        sql.push_str(&format!(" AND {clause} ?{}", values.len()));
    }
    sql.push_str(&order_and_limit(filter));
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(params_from_iter(values), |row| {
        Ok(Event {
            id: row.get(0)?,
            at: row.get(1)?,
            kind: Kind::stored(&row.get::<_, String>(2)?),
            user: row.get(3)?,
            source: row.get(4)?,
            action: row.get(5)?,
            result: row.get(6)?,
            reason: row.get(7)?,
            method: row.get(8)?,
            server: row.get(9)?,
            latency_ms: u64::try_from(row.get::<_, i64>(10)?).unwrap_or(0),
            node: row.get(11)?,
        })
    })?;
    Ok(page(rows.collect::<Result<Vec<_>, _>>()?, filter))
}
