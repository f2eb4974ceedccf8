//! What a projection is: a deterministic fold over the log's events into a read model, plus
//! the changes it made since the last checkpoint (written atomically with the checkpoint) and
//! the queries it answers.

use crm_domain::{Event, Timestamp};
use uuid::Uuid;

use crate::rows::StoreRows;

/// One committed event, decoded, as projections see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEnvelope {
    pub position: u64,
    pub stream: String,
    pub stream_version: u64,
    pub command_id: Uuid,
    /// Set by the log's writer.
    pub recorded_at: Timestamp,
    /// Business time; periods and durations are measured in it.
    pub occurred_at: Timestamp,
    pub event: Event,
}

/// A change to the read model's store: `None` deletes the key.
pub type Change = (Vec<u8>, Option<Vec<u8>>);

/// Why a projection could not answer a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("malformed query: {0}")]
    Malformed(String),
    #[error("unknown query `{0}`")]
    UnknownQuery(String),
    /// The store could not be read while answering (the runtime adds this; a model does not).
    #[error("the read model's store cannot be read: {0}")]
    StoreUnreadable(String),
}

/// A read model. Implementations must be deterministic folds: no clock, no randomness, no
/// unordered iteration into stored bytes or replies (docs/DESIGN.md rule 10).
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the store directory, the durable consumer, the status report.
    fn name(&self) -> &'static str;

    /// The format of the stored entries; a store in another format is rebuilt at start
    /// (a store written before formats existed reads as 0).
    fn store_format(&self) -> u32 {
        0
    }

    /// Folds one event in. Events arrive exactly once each, in position order.
    fn apply(&mut self, event: &EventEnvelope);

    /// The store changes since the last call, in key order; the runtime writes them with the
    /// checkpoint in one atomic batch.
    fn drain_changes(&mut self) -> Vec<Change>;

    /// Why stored entries could not be restored (the projection's own error enum).
    type RestoreError: std::error::Error + Send + Sync + 'static;

    /// Loads the whole model into memory from stored entries (key order): for folds without
    /// a store (tests, small tools). The runtime attaches instead.
    fn restore(
        &mut self,
        entries: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<(), Self::RestoreError>;

    /// Makes a fresh model read its state through the store's `rows` from now on: the
    /// runtime's open, which reads no rows up front.
    fn attach(&mut self, rows: &StoreRows) -> Result<(), Self::RestoreError>;

    /// Rows changed since the last drain (a rebuild commits once they are many).
    fn pending_rows(&mut self) -> usize;

    /// Answers query `name` (`customer.get`, `kpi.get`, ...) with a JSON body, without
    /// `position`: the runtime adds it.
    fn query(
        &self,
        name: &str,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, QueryError>;

    /// The query names this projection answers (subjects `crm.query.<name>`).
    fn queries(&self) -> &'static [&'static str];
}
