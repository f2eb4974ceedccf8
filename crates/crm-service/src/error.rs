//! The crate's error enum: failures of the service's own plumbing (NATS, the log).

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("NATS subscribe to {subject} failed: {reason}")]
    Subscribe { subject: String, reason: String },
    #[error("JetStream {operation} failed: {reason}")]
    JetStream {
        operation: &'static str,
        reason: String,
    },
    #[error("JetStream stream {stream} holds position {stream_position}, beyond the log head {log_head}: the log lost events or the stream belongs to another log")]
    StreamAheadOfLog {
        stream: String,
        stream_position: u64,
        log_head: u64,
    },
    #[error("JetStream stream {stream} holds no messages but has reached sequence {last_sequence}: it was purged or its messages expired; delete and recreate it to republish the log")]
    StreamEmptied { stream: String, last_sequence: u64 },
    #[error("event log: {0}")]
    Log(#[from] crm_eventlog::LogError),
    /// A read of the log, run off the async workers, did not finish (its thread panicked or
    /// the runtime is shutting down).
    #[error("event log read did not finish: {0}")]
    LogReadAborted(#[from] tokio::task::JoinError),
    #[error("record at position {position} cannot be published: {reason}")]
    BadRecord { position: u64, reason: String },
}
