//! The projector's error enums.

use crate::store::Corruption;
use crate::versions::VersionsError;

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("projection store {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error("projection store {path} is corrupt: {reason}")]
    CorruptStore { path: String, reason: Corruption },
    /// The projection could not read its stored entries back.
    #[error("projection store {path} is corrupt: {source}")]
    Restore {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A read of the model's rows failed (I/O, or a row that does not decode).
    #[error("projection store {path} cannot be read: {source}")]
    StoreRead {
        path: String,
        #[source]
        source: crate::table::TableError,
    },
    /// The store holds entries in another format than the projection writes: it must be
    /// rebuilt (`Projector::open_root` does so by itself).
    #[error(
        "projection store {path} is in format {found}, the projection writes format {expected}"
    )]
    StoreFormat {
        path: String,
        found: u32,
        expected: u32,
    },
    /// The store versions directory (`versions.rs`): an I/O error or a damaged `CURRENT`.
    #[error(transparent)]
    Versions(#[from] VersionsError),
    #[error("event at position {position} cannot be applied: {reason}")]
    UnknownEvent { position: u64, reason: String },
    #[error("record at position {position} is damaged: {reason}")]
    BadRecord { position: u64, reason: String },
    #[error("the log has no event at position {position} (head {head})")]
    MissingPosition { position: u64, head: u64 },
    /// The events stream cannot be looked up (at first start the tailer creates it).
    #[error("NATS get stream failed: {reason}")]
    StreamUnavailable { stream: String, reason: String },
    #[error("NATS {operation} failed: {reason}")]
    Nats {
        operation: &'static str,
        reason: String,
    },
    #[error("event log: {0}")]
    Log(#[from] crm_eventlog::LogError),
    /// A rebuild's task panicked or was cancelled.
    #[error("rebuild task: {0}")]
    RebuildTask(#[from] tokio::task::JoinError),
    #[error("this projector was not opened with store versions")]
    NotVersioned,
}

impl ProjectorError {
    pub(crate) fn nats(operation: &'static str, error: impl std::fmt::Display) -> ProjectorError {
        ProjectorError::Nats {
            operation,
            reason: error.to_string(),
        }
    }

    /// Faults that waiting cannot fix: the projection stops (docs/DESIGN.md rule 10).
    pub fn is_fatal(&self) -> bool {
        match self {
            ProjectorError::UnknownEvent { .. }
            | ProjectorError::BadRecord { .. }
            | ProjectorError::CorruptStore { .. }
            | ProjectorError::Restore { .. }
            | ProjectorError::StoreFormat { .. }
            | ProjectorError::Store { .. }
            | ProjectorError::StoreRead { .. } => true,
            ProjectorError::Versions(e) => e.is_corruption(),
            _ => false,
        }
    }
}

/// Why a rebuild request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RebuildRefused {
    #[error("a rebuild is already running")]
    AlreadyRunning,
    #[error("a rebuild is already requested")]
    AlreadyRequested,
}
