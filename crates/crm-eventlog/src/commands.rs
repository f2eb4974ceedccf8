//! Looking up what the log recorded for a command id (docs/DESIGN.md rule 4), for callers that must
//! answer a retry with the original outcome before deciding anything again.

use uuid::Uuid;

use crate::layout::{self, CommandRecord};
use crate::{AppendOutcome, EventLog, LogError};

impl EventLog {
    /// The request hash and outcome recorded for `command_id`, if its append is durable.
    /// An append not yet flushed reads as absent: its own waiter answers it, and a retry that
    /// gets here first is resolved by the writer as a duplicate.
    pub fn command_outcome(
        &self,
        command_id: Uuid,
    ) -> Result<Option<([u8; 32], AppendOutcome)>, LogError> {
        let head = self.head();
        let Some(bytes) = self
            .inner
            .shared
            .store
            .get(&layout::command_key(command_id))?
        else {
            return Ok(None);
        };
        let record = CommandRecord::decode(&bytes).map_err(|e| LogError::CorruptEntry {
            entry: format!("command record {command_id}"),
            reason: e.to_string(),
        })?;
        if record.outcome.last_position > head {
            return Ok(None);
        }
        let mut outcome = record.outcome;
        outcome.duplicate = true;
        Ok(Some((record.request_hash, outcome)))
    }
}
