//! The crate's one public error enum, plus the reasons a request is refused before it is queued.

use std::path::PathBuf;

use uuid::Uuid;

use crate::types::ExpectedVersion;

/// Everything that can go wrong with the log. Variants name what happened.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Another `EventLog` (in this process or another) has the data directory open.
    #[error("event log directory {dir} is locked by another opener")]
    Locked { dir: PathBuf },
    #[error("wrong expected version for stream {stream}: expected {expected}, current {current}")]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        current: u64,
    },
    /// The command id was used before for a request with another hash.
    #[error("command id {command_id} was already used for a different request")]
    IdempotencyKeyReused { command_id: Uuid },
    /// A flush (or batch write) failed: the log is read-only until it is reopened.
    /// The outcome of the appends in the failed batch is unknown; retry them with the same
    /// command id after a restart.
    #[error("the event log failed to make a batch durable and is read-only")]
    Failed,
    /// A stored record or index entry is damaged; it is never served as data.
    #[error("corrupt event log at position {position}: {reason}")]
    Corrupt { position: u64, reason: String },
    /// An index, stream head, command record or metadata entry is damaged.
    #[error("corrupt event log entry {entry}: {reason}")]
    CorruptEntry { entry: String, reason: String },
    /// The request was refused before it reached the writer; nothing changed.
    #[error("invalid append request: {0}")]
    InvalidRequest(#[from] RequestError),
    #[error("invalid log configuration: {field} {reason}")]
    InvalidConfig {
        field: &'static str,
        reason: &'static str,
    },
    #[error(
        "event log data directory {dir} has format version {found}, this build reads {supported}"
    )]
    UnsupportedFormat {
        dir: PathBuf,
        found: u8,
        supported: u8,
    },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
    /// The log is closing or closed; no more appends are taken.
    #[error("the event log is shutting down")]
    ShuttingDown,
}

/// Why an append request was refused before it was queued. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the request has no streams")]
    NoStreams,
    #[error("stream {stream} has no events")]
    NoEvents { stream: String },
    #[error("stream {stream} appears more than once")]
    DuplicateStream { stream: String },
    #[error("the request has {events} events, above the limit of {max}")]
    TooManyEvents { events: usize, max: usize },
    #[error("an event payload is {bytes} bytes, above the limit of {max}")]
    PayloadTooLarge { bytes: usize, max: usize },
    #[error("an encoded record would be {bytes} bytes, above the limit of {max}")]
    RecordTooLarge { bytes: usize, max: usize },
    #[error("{field} is {bytes} bytes, allowed 1..={max}")]
    FieldLength {
        field: &'static str,
        bytes: usize,
        max: usize,
    },
}

/// An error from the storage engine underneath the log. Its type is kept private so the
/// engine can change without changing this crate's API.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct StorageError {
    context: &'static str,
    #[source]
    source: sled::Error,
}

impl StorageError {
    pub(crate) fn new(context: &'static str, source: sled::Error) -> Self {
        StorageError { context, source }
    }
}
