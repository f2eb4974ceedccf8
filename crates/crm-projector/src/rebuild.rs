//! Rebuilds (design rule 11): a read model is built from the log into a new store beside the
//! live one, with batched writes, checkpoints every page and no per-event flush, reporting
//! progress; `swap_into_place` then replaces the live store by renaming directories.

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
    page_events_max: usize,
    progress: impl FnMut(u64, u64),
) -> Result<RebuildReport, ProjectorError> {
    let started = Instant::now();
    let name = projection.name();
    let config = ProjectorConfig {
        catch_up_page_events_max: page_events_max,
        ..ProjectorConfig::default()
    };
    let mut projector = Projector::open(projection, dir, source, config)?;
    let from = projector.checkpoint();
    let position = if from == 0 {
        projector.build_snapshot(progress).await?
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

/// Replaces the store at `live` by the rebuilt one at `rebuilt`: the old store is renamed
/// aside first, so a crash leaves either the old or the new store in place, never a mix.
pub fn swap_into_place(live: &Path, rebuilt: &Path) -> std::io::Result<()> {
    let aside = live.with_extension("replaced");
    if aside.exists() {
        std::fs::remove_dir_all(&aside)?;
    }
    if live.exists() {
        std::fs::rename(live, &aside)?;
    }
    std::fs::rename(rebuilt, live)?;
    if aside.exists() {
        std::fs::remove_dir_all(&aside)?;
    }
    Ok(())
}
