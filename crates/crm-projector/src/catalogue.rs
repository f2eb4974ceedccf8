//! Read models as values: [`ReadModelKind`] runs, rebuilds or replays one read model without
//! naming its type, so one list of them (the `crm-read-models` crate) drives the CLI, the
//! service and the tests.

use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::error;

use crm_domain::Timestamp;

use crate::projection::{Projection, QueryError};
use crate::query::QueryTarget;
use crate::rebuild::{rebuild_into, RebuildReport};
use crate::runtime::{Projector, ProjectorConfig};
use crate::source::LogSource;
use crate::ProjectorError;

/// Progress of a long fold: (position reached, position to reach).
pub type ProgressFn<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

/// Why a replay gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("read model `{model}` answers no query `{query}`; it answers: {known}")]
    UnknownQuery {
        model: &'static str,
        query: String,
        known: String,
    },
    #[error("the query was refused: {0}")]
    Query(#[from] QueryError),
    #[error(transparent)]
    Projector(#[from] ProjectorError),
}

/// What a replay answers: query `query` with body `request`, on the model as it stood at log
/// position `until`.
#[derive(Debug, Clone, Copy)]
pub struct ReplayQuery<'a> {
    pub until: u64,
    pub query: &'a str,
    pub request: &'a serde_json::Value,
}

/// The answer of a replay and the position its model reflects.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayAnswer {
    pub position: u64,
    pub answer: serde_json::Value,
}

/// One read model, its type erased.
pub trait ReadModelKind: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn queries(&self) -> &'static [&'static str];
    fn store_format(&self) -> u32;

    /// Opens the live store version under `root` and starts the projector's task; returns
    /// what its query responders serve and the task (it ends when `stop` turns true).
    fn start(
        &self,
        root: &Path,
        client: async_nats::Client,
        source: LogSource,
        config: ProjectorConfig,
        stop: watch::Receiver<bool>,
    ) -> Result<(Arc<dyn QueryTarget>, JoinHandle<()>), ProjectorError>;

    /// Builds the model from the whole log into the empty store directory `dir`.
    fn rebuild_into<'a>(
        &'a self,
        dir: &'a Path,
        source: LogSource,
        config: ProjectorConfig,
        progress: ProgressFn<'a>,
    ) -> BoxFuture<'a, Result<RebuildReport, ProjectorError>>;

    /// Folds the log up to position `question.until` into a store in the empty directory
    /// `dir` and answers one query from that model.
    fn replay<'a>(
        &'a self,
        dir: &'a Path,
        source: LogSource,
        config: ProjectorConfig,
        question: ReplayQuery<'a>,
        progress: ProgressFn<'a>,
    ) -> BoxFuture<'a, Result<ReplayAnswer, ReplayError>>;
}

/// The [`ReadModelKind`] of projection type `P`.
pub struct Kind<P>(PhantomData<fn() -> P>);

impl<P> Kind<P> {
    pub const NEW: Kind<P> = Kind(PhantomData);
}

impl<P: Projection + Default> ReadModelKind for Kind<P> {
    fn name(&self) -> &'static str {
        P::default().name()
    }

    fn queries(&self) -> &'static [&'static str] {
        P::default().queries()
    }

    fn store_format(&self) -> u32 {
        P::default().store_format()
    }

    fn start(
        &self,
        root: &Path,
        client: async_nats::Client,
        source: LogSource,
        config: ProjectorConfig,
        stop: watch::Receiver<bool>,
    ) -> Result<(Arc<dyn QueryTarget>, JoinHandle<()>), ProjectorError> {
        let projector = Projector::open_root(P::default(), root, source, config)?;
        let handle = projector.handle();
        let task = tokio::spawn(async move {
            if let Err(e) = projector.run(client, stop).await {
                error!(error = %e, "projector stopped; its status says why");
            }
        });
        Ok((Arc::new(handle), task))
    }

    fn rebuild_into<'a>(
        &'a self,
        dir: &'a Path,
        source: LogSource,
        config: ProjectorConfig,
        progress: ProgressFn<'a>,
    ) -> BoxFuture<'a, Result<RebuildReport, ProjectorError>> {
        rebuild_into(P::default(), dir, source, config, progress).boxed()
    }

    fn replay<'a>(
        &'a self,
        dir: &'a Path,
        source: LogSource,
        config: ProjectorConfig,
        question: ReplayQuery<'a>,
        progress: ProgressFn<'a>,
    ) -> BoxFuture<'a, Result<ReplayAnswer, ReplayError>> {
        let ReplayQuery {
            until,
            query,
            request,
        } = question;
        async move {
            let projection = P::default();
            if !projection.queries().contains(&query) {
                return Err(ReplayError::UnknownQuery {
                    model: projection.name(),
                    query: query.to_owned(),
                    known: projection.queries().join(", "),
                });
            }
            let mut projector = Projector::open(projection, dir, source, config)?;
            if projector.checkpoint() != 0 {
                return Err(ProjectorError::CorruptStore {
                    path: dir.display().to_string(),
                    reason: crate::Corruption::NotEmpty,
                }
                .into());
            }
            projector.build_from_log_until(until, progress).await?;
            let (position, answer) = projector.handle().answer(query, request);
            Ok(ReplayAnswer {
                position,
                answer: answer?,
            })
        }
        .boxed()
    }
}

/// The last position whose event was recorded at or before `time` (0: none was). The log's
/// `recorded_at` never decreases with position, so the events up to it are exactly those
/// recorded by then: a binary search over single-record reads.
pub async fn position_at(source: &LogSource, time: Timestamp) -> Result<u64, ProjectorError> {
    let (mut low, mut high) = (0u64, source.head().await?);
    // Invariant: every event up to `low` was recorded by `time`; none after `high` was.
    while low < high {
        let middle = low + (high - low).div_ceil(2);
        let record = source.read(middle, 1).await?.into_iter().next().ok_or(
            ProjectorError::MissingPosition {
                position: middle,
                head: high,
            },
        )?;
        if record.recorded_at_us <= time.as_micros() {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    Ok(low)
}
