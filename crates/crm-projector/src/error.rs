//! The projector's error enum.

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("projection store {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error("projection store {path} is corrupt: {reason}")]
    CorruptStore { path: String, reason: String },
    #[error("event at position {position} cannot be applied: {reason}")]
    UnknownEvent { position: u64, reason: String },
    #[error("record at position {position} is damaged: {reason}")]
    BadRecord { position: u64, reason: String },
    #[error("the log has no event at position {position} (head {head})")]
    MissingPosition { position: u64, head: u64 },
    #[error("NATS {operation} failed: {reason}")]
    Nats {
        operation: &'static str,
        reason: String,
    },
    #[error("event log: {0}")]
    Log(#[from] crm_eventlog::LogError),
}

impl ProjectorError {
    pub(crate) fn nats(operation: &'static str, error: impl std::fmt::Display) -> ProjectorError {
        ProjectorError::Nats {
            operation,
            reason: error.to_string(),
        }
    }

    /// Faults that waiting cannot fix: the projection stops (design rule 10).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ProjectorError::UnknownEvent { .. }
                | ProjectorError::BadRecord { .. }
                | ProjectorError::CorruptStore { .. }
                | ProjectorError::Store { .. }
        )
    }
}
