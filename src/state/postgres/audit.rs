//! PostgreSQL: the audit log of every node in one table, each event naming its node.

use tokio_postgres::Row;

use super::{Param, Pg, refs, text};
use crate::state::StateError;
use crate::state::audit::{
    AuditState, Bound, Event, Filter, Kind, NewEvent, Page, conditions, order_and_limit, page,
};

impl AuditState for Pg {
    fn insert_events(&self, events: &[(i64, NewEvent)]) -> Result<(), StateError> {
        if events.is_empty() {
            return Ok(());
        }
        // One statement per batch: the columns as arrays, unnested into rows.
        let mut at = Vec::with_capacity(events.len());
        let mut kind = Vec::with_capacity(events.len());
        let mut user = Vec::with_capacity(events.len());
        let mut user_key = Vec::with_capacity(events.len());
        let mut source = Vec::with_capacity(events.len());
        let mut action = Vec::with_capacity(events.len());
        let mut result = Vec::with_capacity(events.len());
        let mut reason = Vec::with_capacity(events.len());
        let mut method = Vec::with_capacity(events.len());
        let mut server = Vec::with_capacity(events.len());
        let mut latency = Vec::with_capacity(events.len());
        for (when, event) in events {
            at.push(*when);
            kind.push(event.kind.as_str().to_owned());
            user.push(text(&event.user));
            user_key.push(text(portcullis_config::UserKey::of(&event.user).as_str()));
            source.push(text(&event.source));
            action.push(text(&event.action));
            result.push(event.result.to_owned());
            reason.push(event.reason.as_deref().map(text));
            method.push(event.method.map(str::to_owned));
            server.push(event.server.as_deref().map(text));
            latency.push(i64::try_from(event.latency.as_millis()).unwrap_or(i64::MAX));
        }
        let node = self.node().to_owned();
        self.run(move |client| async move {
            client
                .execute(
                    "INSERT INTO audit_events (at, node, kind, username, user_key, source, \
                     action, result, reason, method, server, latency_ms) \
                     SELECT t.at, $1, t.kind, t.username, t.user_key, t.source, t.action, \
                     t.result, t.reason, t.method, t.server, t.latency_ms \
                     FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[]) \
                     WITH ORDINALITY AS t(at, kind, username, user_key, source, action, result, \
                     reason, method, server, latency_ms, n) ORDER BY t.n",
                    &[
                        &node, &at, &kind, &user, &user_key, &source, &action, &result, &reason,
                        &method, &server, &latency,
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn prune_events(&self, before: i64) -> Result<usize, StateError> {
        self.run(move |client| async move {
            let n = client
                .execute("DELETE FROM audit_events WHERE at < $1", &[&before])
                .await?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn query_events(&self, filter: &Filter) -> Result<Page, StateError> {
        let mut sql = String::from(
            "SELECT id, at, kind, username, source, action, result, reason, method, server, \
             latency_ms, node FROM audit_events WHERE true",
        );
        let mut values: Vec<Param> = Vec::new();
        for (clause, value) in conditions(filter) {
            values.push(match value {
                Bound::Text(value) => Box::new(text(&value)),
                Bound::Int(value) => Box::new(value),
            });
            sql.push_str(&format!(" AND {clause} ${}", values.len()));
        }
        sql.push_str(&order_and_limit(filter));
        let rows = self.run(move |client| async move {
            Ok(client.query(sql.as_str(), &refs(&values)).await?)
        })?;
        let events = rows.iter().map(event).collect::<Result<Vec<_>, _>>()?;
        Ok(page(events, filter))
    }
}

fn event(row: &Row) -> Result<Event, StateError> {
    Ok(Event {
        id: row.try_get(0)?,
        at: row.try_get(1)?,
        kind: Kind::stored(&row.try_get::<_, String>(2)?),
        user: row.try_get(3)?,
        source: row.try_get(4)?,
        action: row.try_get(5)?,
        result: row.try_get(6)?,
        reason: row.try_get(7)?,
        method: row.try_get(8)?,
        server: row.try_get(9)?,
        latency_ms: u64::try_from(row.try_get::<_, i64>(10)?).unwrap_or(0),
        node: row.try_get(11)?,
    })
}
