//! The requests and outcomes of an append, in the vocabulary callers code against.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

// Defined beside the contract's other vocabulary so that clients of the wire crate do not
// compile the log (and sled) to name it; re-exported here for the log's callers.
pub use crm_domain::ExpectedVersion;

/// One command's append: events for one or more streams, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendRequest {
    /// Chosen by the caller and kept until it has a reply, so a retry is safe.
    pub command_id: Uuid,
    /// The caller's hash of the request body; a retry with another hash is refused.
    pub request_hash: [u8; 32],
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub streams: Vec<StreamAppend>,
}

impl AppendRequest {
    /// Number of events in the request, over all streams.
    pub fn event_count(&self) -> usize {
        self.streams.iter().map(|s| s.events.len()).sum()
    }
}

/// The events for one stream within an append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAppend {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// An event to append: an opaque payload with its type name and schema version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_type: String,
    pub schema_version: u16,
    pub payload: Vec<u8>,
}

/// Where an accepted append landed. A retried command gets the original back with
/// `duplicate` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    pub first_position: u64,
    pub last_position: u64,
    /// One entry per stream, in the order of the request.
    pub streams: Vec<StreamOutcome>,
    pub duplicate: bool,
}

/// The stream versions an append took in one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOutcome {
    pub stream: String,
    pub first_version: u64,
    pub last_version: u64,
}

/// Counters kept by the writer since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStats {
    /// Group commits written (one sled batch and one flush each).
    pub batches: u64,
    /// Appends taken from the queue, whatever their result.
    pub appends: u64,
    /// Events written.
    pub events: u64,
    /// Total time spent deciding appends and encoding records, in microseconds.
    pub decide_us_total: u64,
    /// Total time spent applying batches to the store (before the flush), in microseconds.
    pub apply_us_total: u64,
    /// Total time spent in flushes, in microseconds.
    pub flush_us_total: u64,
    /// The slowest flush, in microseconds.
    pub flush_us_max: u64,
}
