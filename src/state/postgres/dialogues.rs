//! PostgreSQL: upstream RADIUS dialogues any node can answer.

use super::{Pg, text};
use crate::state::StateError;
use crate::state::dialogues::{DialogueState, StoredDialogue};

impl DialogueState for Pg {
    fn save_dialogue(
        &self,
        hash: &[u8; 32],
        dialogue: &StoredDialogue,
        now_ms: i64,
        max: i64,
    ) -> Result<(), StateError> {
        let messages = serde_json::to_string(&dialogue.messages)
            .map_err(|e| StateError::Task(e.to_string()))?;
        let hash = hash.to_vec();
        let dialogue = dialogue.clone();
        self.run(move |mut client| async move {
            let tx = client.transaction().await?;
            super::make_room(
                &tx,
                ("upstream_dialogues", "handle_hash", "expires_ms"),
                now_ms,
                max,
            )
            .await?;
            tx.execute(
                "INSERT INTO upstream_dialogues (handle_hash, username, party, server, state, \
                 messages, echo, round, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &hash,
                    &text(&dialogue.user),
                    &dialogue.party,
                    &dialogue.server,
                    &dialogue.state,
                    &text(&messages),
                    &dialogue.echo,
                    &i32::from(dialogue.round),
                    &dialogue.expires_ms,
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn take_dialogue(&self, hash: &[u8; 32]) -> Result<Option<StoredDialogue>, StateError> {
        let hash = hash.to_vec();
        // One statement removes and returns it: two nodes answering one handle at once
        // cannot both take it.
        let row = self.run(move |client| async move {
            Ok(client
                .query_opt(
                    "DELETE FROM upstream_dialogues WHERE handle_hash = $1 RETURNING username, \
                     party, server, state, messages, echo, round, expires_ms",
                    &[&hash],
                )
                .await?)
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let messages: String = row.try_get(4)?;
        Ok(Some(StoredDialogue {
            user: row.try_get(0)?,
            party: row.try_get(1)?,
            server: row.try_get(2)?,
            state: row.try_get(3)?,
            messages: serde_json::from_str(&messages).unwrap_or_default(),
            echo: row.try_get(5)?,
            round: u8::try_from(row.try_get::<_, i32>(6)?).unwrap_or(u8::MAX),
            expires_ms: row.try_get(7)?,
        }))
    }

    fn knows_dialogue(&self, hash: &[u8; 32]) -> Result<bool, StateError> {
        let hash = hash.to_vec();
        self.run(move |client| async move {
            Ok(client
                .query_opt(
                    "SELECT 1 FROM upstream_dialogues WHERE handle_hash = $1",
                    &[&hash],
                )
                .await?
                .is_some())
        })
    }
}
