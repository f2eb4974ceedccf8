//! The projection runtime (docs/DESIGN.md rules 9-12). A projection (see `projection.rs`) is a pure
//! fold; the runtime feeds it events by position from JetStream and the log, stores its
//! changes with the checkpoint in one atomic batch, and serves its queries with
//! read-your-writes.

pub mod catalogue;
mod error;
mod projection;
mod query;
pub mod ranked;
mod read_model;
mod rebuild;
pub mod record_codec;
mod rows;
mod runtime;
pub mod sequencer;
mod source;
mod store;
pub mod table;
pub mod versions;

pub use catalogue::{position_at, Kind, ReadModelKind, ReplayAnswer, ReplayError, ReplayQuery};
pub use error::{ProjectorError, RebuildRefused};
pub use projection::{Change, EventEnvelope, Projection, QueryError};
pub use query::{serve_queries, QueryTarget};
pub use read_model::{parse_request, ReadModel};
pub use rebuild::{rebuild_into, RebuildReport};
pub use rows::StoreRows;
pub use runtime::{
    Applied, Projector, ProjectorConfig, ProjectorHandle, ProjectorState, ProjectorStatus,
    RebuildProgress, READ_CACHE_BYTES_DEFAULT, REBUILD_COMMIT_ROWS_DEFAULT,
};
pub use source::{envelope_of, LogSource};
pub use store::{Corruption, ProjectionStore, STORE_CACHE_BYTES_DEFAULT};
pub use table::{Row, Single, StoredTable, Table, TableError, TableKey};

/// Resolves once `shutdown` holds `true` (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}
