//! PostgreSQL: the configuration every node shares, versioned, each new version announced on
//! [`CHANNEL`] with its number.

use super::Pg;
use crate::state::StateError;
use crate::state::config::{ConfigState, Stored, StoredConfig};

/// The channel a new configuration version is announced on (payload: the version).
pub const CHANNEL: &str = "portcullis_config";

impl ConfigState for Pg {
    fn latest_config(&self) -> Result<Option<StoredConfig>, StateError> {
        let row = self.run(move |client| async move {
            Ok(client
                .query_opt(
                    "SELECT version, document, node FROM config_versions \
                     ORDER BY version DESC LIMIT 1",
                    &[],
                )
                .await?)
        })?;
        row.map(|row| {
            Ok(StoredConfig {
                version: row.try_get(0)?,
                document: row.try_get(1)?,
                node: row.try_get(2)?,
            })
        })
        .transpose()
    }

    fn store_config(&self, from: i64, document: &str) -> Result<Stored, StateError> {
        let document = document.to_owned();
        let node = self.node().to_owned();
        let version = from + 1;
        self.run(move |mut client| async move {
            let tx = client.transaction().await?;
            // A configuration version is durable once stored (the connection's default is
            // asynchronous commit).
            tx.batch_execute("SET LOCAL synchronous_commit TO on")
                .await?;
            // The newest must be the one the change was made from: a version skipped or
            // taken by another node is a conflict.
            let newest: Option<i64> = tx
                .query_one("SELECT max(version) FROM config_versions", &[])
                .await?
                .try_get(0)?;
            if newest.unwrap_or(0) != from {
                return Ok(Stored::Conflict);
            }
            let inserted = tx
                .execute(
                    "INSERT INTO config_versions (version, document, node) VALUES ($1, $2, $3) \
                     ON CONFLICT (version) DO NOTHING",
                    &[&version, &document, &node],
                )
                .await?;
            if inserted == 0 {
                return Ok(Stored::Conflict);
            }
            tx.execute(
                "SELECT pg_notify($1, $2::bigint::text)",
                &[&CHANNEL, &version],
            )
            .await?;
            tx.commit().await?;
            Ok(Stored::Done(version))
        })
    }
}
