//! Rebuilds (docs/DESIGN.md rule 11): a read model is built from the log into a new store version
//! beside the live one (see `versions.rs`), page by page, committed in large unflushed batches
//! and flushed once (memory bounded by the row cache and `rebuild_commit_rows`), reporting
//! progress; making it current is an atomic rename. A running projector does the
//! same on request (`crm.projector.<name>.rebuild`) and swaps the model in without downtime.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::projection::Projection;
use crate::runtime::{Projector, ProjectorConfig};
use crate::source::LogSource;
use crate::ProjectorError;

#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    pub name: &'static str,
    pub position: u64,
    pub elapsed: Duration,
    pub events_per_second: f64,
    pub store_hash: [u8; 32],
}

/// Builds `projection` from the whole log into the (new, empty) store directory `dir`.
pub async fn rebuild_into<P: Projection>(
    projection: P,
    dir: &Path,
    source: LogSource,
    config: ProjectorConfig,
    progress: impl FnMut(u64, u64),
) -> Result<RebuildReport, ProjectorError> {
    let started = Instant::now();
    let name = projection.name();
    let mut projector = Projector::open(projection, dir, source, config)?;
    let from = projector.checkpoint();
    let position = if from == 0 {
        projector.build_from_log(progress).await?
    } else {
        // A store that already holds a model (an interrupted catch-up) continues by commits.
        let position = projector.catch_up(false, progress).await?;
        projector.store().flush()?;
        position
    };
    let elapsed = started.elapsed();
    let applied = position - from;
    Ok(RebuildReport {
        name,
        position,
        elapsed,
        events_per_second: applied as f64 / elapsed.as_secs_f64().max(1e-9),
        store_hash: projector.store().canonical_hash()?,
    })
}
