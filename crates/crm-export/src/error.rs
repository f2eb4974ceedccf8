//! The crate's one error enum. Every message is one line, fit to print after `crm export: `.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// An `--aggregate` name that is not one of the domain's aggregates.
    #[error("unknown aggregate `{name}`; valid: {valid}")]
    UnknownAggregate { name: String, valid: String },
    /// An `--event-type` name that is not one of `crm_domain::Event::TYPES`.
    #[error("unknown event type `{name}`; valid: {valid}")]
    UnknownEventType { name: String, valid: String },
    /// A bad position range (0, or from above to).
    #[error("{0}")]
    BadRange(String),
    /// The data directory does not exist, is not a directory, or holds no event log.
    #[error("no event log at {}: {reason}", dir.display())]
    NoLog { dir: PathBuf, reason: String },
    /// `crm serve` (or another process) has the log open.
    #[error(
        "the event log in {} is held by a running service; export from it with --nats-url instead",
        dir.display()
    )]
    LogHeld { dir: PathBuf },
    /// Opening or reading the local log failed.
    #[error("reading the event log: {0}")]
    Log(#[from] crm_eventlog::LogError),
    /// A record that does not decode (damaged, or from a newer build).
    #[error("position {position}: {reason}")]
    BadRecord { position: u64, reason: String },
    /// The log API did not answer, refused, or answered something unreadable.
    #[error("{what}: {reason}")]
    Nats { what: String, reason: String },
    /// The log ended before the head it reported (it never shrinks: something is wrong).
    #[error("the log ended at position {at}, before its head {head}")]
    Truncated { at: u64, head: u64 },
    /// The thread that reads the local log could not start, or stopped by a panic.
    #[error("the log reader thread failed: {0}")]
    Reader(String),
    /// Writing the output failed (a closed pipe, a full disk).
    #[error("writing the output: {0}")]
    Write(#[source] std::io::Error),
}

impl ExportError {
    pub(crate) fn nats(what: impl Into<String>, reason: impl std::fmt::Display) -> ExportError {
        ExportError::Nats {
            what: what.into(),
            reason: one_line(&reason.to_string()),
        }
    }
}

/// Error texts from elsewhere may span lines; the CLI promises one.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
