//! The projector: feeds one projection every committed event exactly once, in position order,
//! and stores its changes with the checkpoint before acknowledging (docs/DESIGN.md rule 9).
//!
//! Events come from a durable JetStream pull consumer on `CRM_EVENTS` (bounded in flight).
//! A position at or below the checkpoint is skipped (redelivery); the next one is applied; a
//! later one reveals a gap, filled from the log read API first. The log is also read at start
//! and whenever the consumer has been idle, so a projector converges to the log even when
//! JetStream lost or never got some events. Those decisions are the I/O-free `Sequencer`
//! (`sequencer.rs`); this module reads, writes and acknowledges as it says.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use futures::{FutureExt, StreamExt};
use std::path::PathBuf;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, info_span, warn, Instrument};

use crm_domain::Timestamp;
use crm_eventlog::Record;
pub use crm_wire::query::{ProjectorState, ProjectorStatus, RebuildProgress};
use crm_wire::{Subjects, HEADER_POSITION};

use crate::error::RebuildRefused;
use crate::projection::QueryError;
use crate::projection::{EventEnvelope, Projection};
use crate::rows::StoreRows;
use crate::sequencer::{Delivery, Sequencer};
use crate::source::{envelope_of, LogSource};
use crate::store::{Corruption, ProjectionStore, STORE_CACHE_BYTES_DEFAULT};
use crate::table::TableError;
use crate::versions::{self, FileSwitch, VersionSwitch};
use crate::ProjectorError;

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub subjects: Subjects,
    pub stream_name: String,
    /// Events applied and committed together at most.
    pub batch_events_max: usize,
    /// Unacknowledged messages the consumer may have out at once.
    pub ack_pending_max: i64,
    /// Events per read when catching up from the log.
    pub catch_up_page_events_max: usize,
    /// With no message for this long, compare with the log head and catch up.
    pub idle_check_ms: u64,
    /// Pause before retrying after NATS trouble.
    pub retry_backoff_ms: u64,
    /// Decoded rows a read model keeps cached (about; split between its tables).
    pub read_cache_bytes: usize,
    /// sled's page cache of the projection store.
    pub store_cache_bytes: u64,
    /// A rebuild commits (unflushed) once this many rows changed since its last commit: the
    /// bound on a rebuild's memory beyond the cache.
    pub rebuild_commit_rows: usize,
    /// Which read replica of the model this is: names its durable consumer
    /// ([`crm_wire::query::replica_consumer`]), so replicas never share deliveries.
    pub replica: u32,
}

/// Decoded rows cached per read model unless configured otherwise.
pub const READ_CACHE_BYTES_DEFAULT: usize = 32 * 1024 * 1024;
/// Changed rows a rebuild holds before it commits, unless configured otherwise.
pub const REBUILD_COMMIT_ROWS_DEFAULT: usize = 10_000;

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            subjects: Subjects::default(),
            stream_name: crm_wire::EVENTS_STREAM.to_owned(),
            batch_events_max: 512,
            ack_pending_max: 4096,
            catch_up_page_events_max: 1000,
            idle_check_ms: 1000,
            retry_backoff_ms: 250,
            read_cache_bytes: READ_CACHE_BYTES_DEFAULT,
            store_cache_bytes: STORE_CACHE_BYTES_DEFAULT,
            rebuild_commit_rows: REBUILD_COMMIT_ROWS_DEFAULT,
            replica: 1,
        }
    }
}

/// The model and the position it reflects, always updated together, and the store rows the
/// model reads through (`None`: a model held in memory).
pub struct Applied<P> {
    pub model: P,
    pub position: u64,
    pub rows: Option<StoreRows>,
}

impl<P> Applied<P> {
    /// The first failed read of the model's store, if any.
    fn read_failure(&self) -> Option<TableError> {
        self.rows.as_ref().and_then(StoreRows::failure)
    }
}

/// What queries and status reports hold of a running projector.
pub struct ProjectorHandle<P> {
    applied: Arc<RwLock<Applied<P>>>,
    position: watch::Receiver<u64>,
    status: Arc<Mutex<ProjectorStatus>>,
    rebuild: mpsc::Sender<()>,
}

impl<P> Clone for ProjectorHandle<P> {
    fn clone(&self) -> Self {
        ProjectorHandle {
            applied: self.applied.clone(),
            position: self.position.clone(),
            status: self.status.clone(),
            rebuild: self.rebuild.clone(),
        }
    }
}

impl<P: Projection> ProjectorHandle<P> {
    /// Runs `f` on the model with the position it reflects.
    pub fn read<T>(&self, f: impl FnOnce(&P, u64) -> T) -> T {
        let applied = self.applied.read().unwrap_or_else(|e| e.into_inner());
        f(&applied.model, applied.position)
    }

    /// Answers query `name` with the position it reflects. A store read that failed makes it
    /// `StoreUnreadable`: no answer built on a row that could not be read goes out.
    pub fn answer(
        &self,
        name: &str,
        request: &serde_json::Value,
    ) -> (u64, Result<serde_json::Value, QueryError>) {
        let applied = self.applied.read().unwrap_or_else(|e| e.into_inner());
        let answer = applied.model.query(name, request);
        let answer = match applied.read_failure() {
            Some(e) => Err(QueryError::StoreUnreadable(e.to_string())),
            None => answer,
        };
        (applied.position, answer)
    }

    pub fn position_watch(&self) -> watch::Receiver<u64> {
        self.position.clone()
    }

    pub fn status(&self) -> ProjectorStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Asks the running projector to rebuild its model beside the live one and swap it in.
    pub fn request_rebuild(&self) -> Result<(), RebuildRefused> {
        if self.status().rebuild.is_some() {
            return Err(RebuildRefused::AlreadyRunning);
        }
        self.rebuild
            .try_send(())
            .map_err(|_| RebuildRefused::AlreadyRequested)
    }
}

pub struct Projector<P: Projection> {
    name: &'static str,
    store: ProjectionStore,
    applied: Arc<RwLock<Applied<P>>>,
    /// The by-position rule; its applied position is the one in `applied`.
    sequencer: Sequencer,
    position_tx: watch::Sender<u64>,
    status: Arc<Mutex<ProjectorStatus>>,
    source: LogSource,
    config: ProjectorConfig,
    /// recorded-at of the last applied event, for the lag in seconds.
    applied_recorded_at: Timestamp,
    /// recorded-at of the newest event seen on the stream, for the lag in seconds.
    newest_recorded_at: Timestamp,
    /// The directory holding the store versions, when opened with `open_root`.
    root: Option<PathBuf>,
    /// How a rebuilt version is made live.
    switch: Arc<dyn VersionSwitch>,
    rebuild_tx: mpsc::Sender<()>,
    rebuild_rx: mpsc::Receiver<()>,
    rebuild_task: Option<RebuildTask<P>>,
}

impl<P: Projection> Projector<P> {
    /// Opens the projection's store under `dir` and restores the model from it.
    pub fn open(
        projection: P,
        dir: &Path,
        source: LogSource,
        config: ProjectorConfig,
    ) -> Result<Projector<P>, ProjectorError> {
        let store = ProjectionStore::open_with_cache(dir, config.store_cache_bytes)?;
        Projector::open_store(projection, store, dir, source, config)
    }

    fn open_store(
        mut projection: P,
        store: ProjectionStore,
        dir: &Path,
        source: LogSource,
        config: ProjectorConfig,
    ) -> Result<Projector<P>, ProjectorError> {
        let (found, expected) = (store.format()?, projection.store_format());
        if found != expected {
            if !store.is_empty()? {
                return Err(ProjectorError::StoreFormat {
                    path: dir.display().to_string(),
                    found,
                    expected,
                });
            }
            store.set_format(expected)?;
        }
        if store.is_legacy() {
            return Err(ProjectorError::CorruptStore {
                path: dir.display().to_string(),
                reason: Corruption::LegacySnapshot,
            });
        }
        let checkpoint = store.checkpoint()?;
        // Nothing is read up front: the model reads its rows from the store as it needs them.
        let rows = store.rows(config.read_cache_bytes);
        projection
            .attach(&rows)
            .map_err(|source| ProjectorError::Restore {
                path: dir.display().to_string(),
                source: Box::new(source),
            })?;
        let name = projection.name();
        info!(projection = name, checkpoint, "projection opened");
        let (position_tx, _) = watch::channel(checkpoint);
        let (rebuild_tx, rebuild_rx) = mpsc::channel(1);
        Ok(Projector {
            name,
            store,
            applied: Arc::new(RwLock::new(Applied {
                model: projection,
                position: checkpoint,
                rows: Some(rows),
            })),
            sequencer: Sequencer::new(checkpoint),
            position_tx,
            status: Arc::new(Mutex::new(ProjectorStatus {
                name: name.to_owned(),
                state: ProjectorState::Starting,
                checkpoint,
                log_head: checkpoint,
                lag_events: 0,
                lag_seconds: 0.0,
                error: None,
                rebuild: None,
                rebuilds_completed: 0,
                last_rebuild_error: None,
            })),
            source,
            config,
            applied_recorded_at: Timestamp::default(),
            newest_recorded_at: Timestamp::default(),
            root: None,
            switch: Arc::new(FileSwitch),
            rebuild_tx,
            rebuild_rx,
            rebuild_task: None,
        })
    }

    /// Opens the live store version under `root` (see `versions.rs`); such a projector can
    /// rebuild itself without downtime.
    pub fn open_root(
        projection: P,
        root: &Path,
        source: LogSource,
        config: ProjectorConfig,
    ) -> Result<Projector<P>, ProjectorError> {
        let dir = versions::current_dir(root)?;
        versions::remove_stale(root)?;
        let store = ProjectionStore::open_with_cache(&dir, config.store_cache_bytes)?;
        let found = store.format()?;
        let expected = projection.store_format();
        let (store, dir) = if (found == expected && !store.is_legacy()) || store.is_empty()? {
            (store, dir)
        } else {
            drop(store);
            // An upgrade changed how the model stores its rows: build it anew from the log
            // (the projector catches up from position 0) and drop the old version.
            info!(
                projection = projection.name(),
                found,
                expected,
                "the store was written in another format; rebuilding it from the log"
            );
            let (version, fresh) = versions::next_dir(root)?;
            let store = ProjectionStore::open_with_cache(&fresh, config.store_cache_bytes)?;
            store.set_format(expected)?;
            versions::make_current(root, &version)?;
            versions::remove_stale(root)?;
            (store, fresh)
        };
        let mut projector = Projector::open_store(projection, store, &dir, source, config)?;
        projector.root = Some(root.to_owned());
        Ok(projector)
    }

    /// Makes rebuilt versions live through `switch` instead of the file system directly (a
    /// seam for tests that make the switch fail).
    pub fn with_version_switch(mut self, switch: impl VersionSwitch) -> Projector<P> {
        self.switch = Arc::new(switch);
        self
    }

    pub fn handle(&self) -> ProjectorHandle<P> {
        ProjectorHandle {
            applied: self.applied.clone(),
            position: self.position_tx.subscribe(),
            status: self.status.clone(),
            rebuild: self.rebuild_tx.clone(),
        }
    }

    pub fn checkpoint(&self) -> u64 {
        self.position()
    }

    fn position(&self) -> u64 {
        self.sequencer.applied()
    }

    pub fn store(&self) -> &ProjectionStore {
        &self.store
    }

    /// Applies everything the log holds up to its head now, without JetStream (a rebuild or an
    /// offline catch-up). `progress` is called after each committed page.
    pub async fn catch_up(
        &mut self,
        flush: bool,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64, ProjectorError> {
        let head = self.source.head().await?;
        while self.position() < head {
            self.apply_next_page(head).await?;
            self.commit(flush)?;
            progress(self.position(), head);
            // A local log never makes this task wait: let the other tasks on this worker (the
            // command service, the ready line) run between pages.
            tokio::task::yield_now().await;
        }
        Ok(self.position())
    }

    /// Builds an empty store from the whole log (a rebuild, docs/DESIGN.md rule 11): folds
    /// page after page, commits unflushed whenever many rows changed (so memory stays bounded
    /// by `rebuild_commit_rows` and the cache), and flushes once at the end.
    pub async fn build_from_log(
        &mut self,
        progress: impl FnMut(u64, u64),
    ) -> Result<u64, ProjectorError> {
        self.build_from_log_until(u64::MAX, progress).await
    }

    /// [`Projector::build_from_log`] of the log's prefix up to position `until` (or its
    /// head, if lower): the model as it stood then.
    pub async fn build_from_log_until(
        &mut self,
        until: u64,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64, ProjectorError> {
        let head = self.source.head().await?.min(until);
        self.update_status(|s| {
            s.state = ProjectorState::Rebuilding;
            s.log_head = head;
        });
        while self.position() < head {
            self.apply_page_until(head).await?;
            let pending = self
                .applied
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .model
                .pending_rows();
            if pending >= self.config.rebuild_commit_rows {
                self.commit(false)?;
            }
            progress(self.position(), head);
            // A local log never makes this task wait: let the live work on this worker run.
            tokio::task::yield_now().await;
        }
        self.commit(true)?;
        let position = self.position();
        self.update_status(|s| s.state = ProjectorState::Starting);
        Ok(position)
    }

    /// Applies the log up to exactly `target` and commits, flushed.
    pub async fn catch_up_until(&mut self, target: u64) -> Result<(), ProjectorError> {
        while self.position() < target {
            self.apply_page_until(target).await?;
        }
        self.commit(true)
    }

    /// Reads and applies the next page of the log, not beyond `target`, which the log must
    /// hold.
    async fn apply_page_until(&mut self, target: u64) -> Result<(), ProjectorError> {
        let from = self.position() + 1;
        let want = (target.saturating_sub(self.position()) as usize)
            .min(self.config.catch_up_page_events_max);
        let records = self.source.read(from, want).await?;
        if records.is_empty() {
            return Err(ProjectorError::MissingPosition {
                position: from,
                head: target,
            });
        }
        self.apply_records(&records)
    }

    /// Reads and applies the next page of the log; the log must hold events up to `head`.
    async fn apply_next_page(&mut self, head: u64) -> Result<(), ProjectorError> {
        let from = self.position() + 1;
        let records = self
            .source
            .read(from, self.config.catch_up_page_events_max)
            .await?;
        if records.is_empty() {
            return Err(ProjectorError::MissingPosition {
                position: from,
                head,
            });
        }
        self.apply_records(&records)
    }

    /// Applies records that continue the model exactly; earlier ones are skipped.
    fn apply_records(&mut self, records: &[Record]) -> Result<(), ProjectorError> {
        let mut applied = self.applied.write().unwrap_or_else(|e| e.into_inner());
        for record in records {
            match self.sequencer.classify(record.position) {
                Delivery::Skip => continue,
                Delivery::Apply => {}
                Delivery::FillGap { from, .. } => {
                    return Err(ProjectorError::MissingPosition {
                        position: from,
                        head: record.position,
                    })
                }
            }
            let envelope: EventEnvelope = envelope_of(record)?;
            applied.model.apply(&envelope);
            applied.position = self.sequencer.advance();
            self.applied_recorded_at = envelope.recorded_at;
        }
        match applied.read_failure() {
            Some(source) => Err(self.read_failed(source)),
            None => Ok(()),
        }
    }

    fn read_failed(&self, source: TableError) -> ProjectorError {
        ProjectorError::StoreRead {
            path: self.store.path().display().to_string(),
            source,
        }
    }

    /// Commits what was applied but not yet stored, if anything.
    fn commit_applied(&mut self) -> Result<(), ProjectorError> {
        if self.sequencer.uncommitted().is_some() {
            self.commit(true)?;
        }
        Ok(())
    }

    /// Stores the changes since the last commit with the checkpoint, atomically. A model
    /// whose store failed a read is never committed: its rows may be wrong.
    fn commit(&mut self, flush: bool) -> Result<(), ProjectorError> {
        let position = {
            let mut applied = self.applied.write().unwrap_or_else(|e| e.into_inner());
            if let Some(source) = applied.read_failure() {
                return Err(self.read_failed(source));
            }
            let position = applied.position;
            let changes = applied.model.drain_changes();
            // Written under the lock: a drained row may leave the cache at once, and a query
            // must then find it in the store.
            self.store.commit(changes, position, false)?;
            position
        };
        if flush {
            self.store.flush()?;
        }
        self.sequencer.stored(position);
        self.position_tx.send_replace(position);
        self.update_status(|s| s.checkpoint = position);
        Ok(())
    }

    fn state(&self) -> ProjectorState {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).state
    }

    fn update_status(&self, f: impl FnOnce(&mut ProjectorStatus)) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut status);
        status.lag_events = status.log_head.saturating_sub(status.checkpoint);
        status.lag_seconds = if status.lag_events == 0 {
            0.0
        } else {
            let micros = self.newest_recorded_at.as_micros() - self.applied_recorded_at.as_micros();
            micros.max(0) as f64 / 1e6
        };
    }

    fn fail(&self, error: &ProjectorError) {
        warn!(projection = self.name, error = %error, "projection stopped");
        self.update_status(|s| {
            s.state = ProjectorState::Failed;
            s.error = Some(error.to_string());
        });
    }
}

impl<P: Projection + Default> Projector<P> {
    /// Runs until `shutdown` turns true, or a fault that needs an operator (an unknown event
    /// type or version, a damaged record, a store error): then the status says `failed`.
    pub async fn run(
        mut self,
        client: async_nats::Client,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let span = info_span!("projector", projection = self.name);
        async move {
            loop {
                let result = self.run_once(&client, &mut shutdown).await;
                // Events applied before an error or a stop are contiguous: store them, so the
                // checkpoint (and read-your-writes) never lags the model after a restart.
                if let Err(e) = self.commit_applied() {
                    self.fail(&e);
                    return Err(e);
                }
                match result {
                    Ok(()) => return Ok(()),
                    Err(e) if e.is_fatal() => {
                        self.fail(&e);
                        return Err(e);
                    }
                    Err(ProjectorError::StreamUnavailable { .. })
                        if self.state() == ProjectorState::Starting =>
                    {
                        // At first start the tailer creates the stream a moment later.
                        info!(stream = %self.config.stream_name, "waiting for the events stream");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)) => {}
                            _ = crate::stopped(&mut shutdown) => return Ok(()),
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "projector stalled; retrying");
                        self.update_status(|s| {
                            s.state = ProjectorState::Stalled;
                            s.error = Some(e.to_string());
                        });
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)) => {}
                            _ = crate::stopped(&mut shutdown) => return Ok(()),
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn run_once(
        &mut self,
        client: &async_nats::Client,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        self.sequencer.restart_deliveries();
        let js = jetstream::new(client.clone());
        let stream = js.get_stream(&self.config.stream_name).await.map_err(|e| {
            ProjectorError::StreamUnavailable {
                stream: self.config.stream_name.clone(),
                reason: e.to_string(),
            }
        })?;
        let durable = crm_wire::query::replica_consumer(self.name, self.config.replica);
        let consumer = stream
            .get_or_create_consumer(
                &durable,
                pull::Config {
                    durable_name: Some(durable.clone()),
                    ack_policy: AckPolicy::All,
                    max_ack_pending: self.config.ack_pending_max,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ProjectorError::nats("create consumer", e))?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.config.batch_events_max)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| ProjectorError::nats("consume", e))?;
        // Whatever the consumer will not redeliver, the log has.
        self.catch_up_live().await?;
        self.update_status(|s| {
            s.state = ProjectorState::Running;
            s.error = None;
        });
        let limits = self.source.record_limits();
        let mut last_message = Instant::now();
        loop {
            let first = tokio::select! {
                message = messages.next() => message,
                _ = tokio::time::sleep(Duration::from_millis(self.config.idle_check_ms)) => {
                    if last_message.elapsed() >= Duration::from_millis(self.config.idle_check_ms) {
                        self.catch_up_live().await?;
                    }
                    continue;
                }
                Some(()) = self.rebuild_rx.recv(), if self.rebuild_task.is_none() => {
                    self.start_rebuild();
                    continue;
                }
                finished = rebuild_finished(&mut self.rebuild_task), if self.rebuild_task.is_some() => {
                    self.rebuild_task = None;
                    // A failed rebuild is in the status; only the live model's errors stop here.
                    let _rebuild = self.finish_rebuild(finished).await?;
                    continue;
                }
                _ = crate::stopped(shutdown) => return Ok(()),
            };
            last_message = Instant::now();
            let mut batch = vec![first];
            while batch.len() < self.config.batch_events_max {
                match messages.next().now_or_never() {
                    Some(message) => batch.push(message),
                    None => break,
                }
            }
            let mut last_acked = None;
            for message in batch {
                let message = match message {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => return Err(ProjectorError::nats("receive", e)),
                    None => return Err(ProjectorError::nats("receive", "consumer stream ended")),
                };
                let record = Record::decode(&message.payload, &limits).map_err(|e| {
                    ProjectorError::BadRecord {
                        position: position_header(&message).unwrap_or(0),
                        reason: e.to_string(),
                    }
                })?;
                self.newest_recorded_at = self
                    .newest_recorded_at
                    .max(Timestamp::from_micros(record.recorded_at_us));
                match self.sequencer.deliver(record.position) {
                    Delivery::Skip => {}
                    Delivery::Apply => self.apply_records(std::slice::from_ref(&record))?,
                    Delivery::FillGap { from, to } => {
                        self.fill_gap(from, to).await?;
                        self.apply_records(std::slice::from_ref(&record))?;
                    }
                }
                self.update_status(|s| s.log_head = s.log_head.max(record.position));
                last_acked = Some(message);
            }
            self.commit(true)?;
            if let Some(message) = last_acked.filter(|_| self.sequencer.acknowledge()) {
                // AckPolicy::All: the last message acknowledges the whole batch.
                message
                    .ack()
                    .await
                    .map_err(|e| ProjectorError::nats("ack", e))?;
            }
        }
    }

    async fn fill_gap(&mut self, from: u64, to: u64) -> Result<(), ProjectorError> {
        let mut next = from;
        while next <= to {
            let want = ((to - next + 1) as usize).min(self.config.catch_up_page_events_max);
            let records = self.source.read(next, want).await?;
            if records.is_empty() {
                return Err(ProjectorError::MissingPosition {
                    position: next,
                    head: to,
                });
            }
            self.apply_records(&records)?;
            next = self.position() + 1;
        }
        Ok(())
    }

    async fn catch_up_live(&mut self) -> Result<(), ProjectorError> {
        let head = self.source.head().await?;
        self.update_status(|s| s.log_head = s.log_head.max(head));
        if head > self.position() {
            // Commits per page unflushed (each is atomic with its checkpoint, so a crash
            // resumes from an earlier one) and one flush at the end: nothing is acknowledged
            // to JetStream before that flush.
            self.catch_up(false, |_, _| {}).await?;
            self.store.flush()?;
        }
        Ok(())
    }
}

impl<P: Projection + Default> Projector<P> {
    /// Starts building a fresh model from the log in the next store version, beside the live
    /// one, which keeps applying events and answering queries meanwhile.
    fn start_rebuild(&mut self) {
        let Some(root) = self.root.clone() else {
            // Reported as a failed rebuild, not as one in progress: a rebuild that never
            // started must not make every later request look like `AlreadyRunning`.
            self.note_rebuild_failure(&ProjectorError::NotVersioned);
            return;
        };
        let (source, config, status) = (
            self.source.clone(),
            self.config.clone(),
            self.status.clone(),
        );
        let name = self.name;
        info!(projection = name, "rebuild started beside the live model");
        self.update_status(|s| {
            s.rebuild = Some(RebuildProgress {
                position: 0,
                head: s.log_head,
                events_per_second: 0.0,
                eta_seconds: 0.0,
                error: None,
            })
        });
        self.rebuild_task = Some(tokio::spawn(async move {
            let (version, dir) = versions::next_dir(&root)?;
            let mut fresh = Projector::open(P::default(), &dir, source, config)?;
            let started = Instant::now();
            fresh
                .build_from_log(|position, head| {
                    let rate = position as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    let mut status = status.lock().unwrap_or_else(|e| e.into_inner());
                    status.rebuild = Some(RebuildProgress {
                        position,
                        head,
                        events_per_second: rate,
                        eta_seconds: head.saturating_sub(position) as f64 / rate.max(1.0),
                        error: None,
                    });
                })
                .await?;
            Ok((fresh, version))
        }));
    }

    /// Rebuilds beside the live model and swaps the result in, now: what a rebuild request
    /// makes `run` do, for callers that drive the projector themselves. A failed rebuild is
    /// returned (and reported in the status); the live model stays as it was.
    pub async fn rebuild_now(&mut self) -> Result<(), ProjectorError> {
        self.start_rebuild();
        let Some(task) = self.rebuild_task.take() else {
            return Err(ProjectorError::NotVersioned);
        };
        let finished = task.await;
        self.finish_rebuild(finished).await?
    }

    /// Brings the rebuilt model to the live position and swaps it in: between two batches,
    /// under the model's write lock, so no query sees a half-built model. The outer error is
    /// the live model's (it stops `run`); the inner one is the rebuild's, already reported in
    /// the status, with the live model untouched.
    async fn finish_rebuild(
        &mut self,
        finished: RebuildOutcome<P>,
    ) -> Result<Result<(), ProjectorError>, ProjectorError> {
        let (mut fresh, version) = match finished {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return Ok(self.rebuild_failed(e)),
            Err(e) => return Ok(self.rebuild_failed(e.into())),
        };
        if let Err(e) = self.catch_up_live().await {
            drop(fresh);
            // The live model is fine; only this rebuild is lost (a later request starts anew).
            self.note_rebuild_failure(&e);
            return Err(e);
        }
        let target = self.position();
        if let Err(e) = fresh.catch_up_until(target).await {
            drop(fresh);
            return Ok(self.rebuild_failed(e));
        }
        debug_assert_eq!(
            fresh.position(),
            target,
            "a rebuilt model swaps in at the live position"
        );
        let Some(root) = self.root.clone() else {
            drop(fresh);
            return Ok(self.rebuild_failed(ProjectorError::NotVersioned));
        };
        if let Err(e) = self.switch.make_current(&root, &version) {
            // An I/O failure of the switch, not a damaged store: the live version stays.
            drop(fresh);
            return Ok(self.rebuild_failed(e.into()));
        }
        let rebuilt = std::mem::take(
            &mut fresh
                .applied
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .model,
        );
        let rows = fresh
            .applied
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .rows
            .take();
        {
            let mut live = self.applied.write().unwrap_or_else(|e| e.into_inner());
            live.model = rebuilt;
            live.rows = rows;
        }
        let old = std::mem::replace(&mut self.store, fresh.store);
        drop(old);
        self.sequencer.stored(target);
        if let Err(e) = versions::remove_stale(&root) {
            warn!(error = %e, "old store version not removed");
        }
        info!(projection = self.name, position = target, version = %version, "rebuilt model swapped in");
        self.update_status(|s| {
            s.rebuild = None;
            s.rebuilds_completed += 1;
            s.last_rebuild_error = None;
        });
        Ok(Ok(()))
    }

    /// Reports a failed rebuild and hands its error back.
    fn rebuild_failed(&mut self, error: ProjectorError) -> Result<(), ProjectorError> {
        self.note_rebuild_failure(&error);
        Err(error)
    }

    fn note_rebuild_failure(&mut self, error: &ProjectorError) {
        warn!(projection = self.name, error = %error, "rebuild failed; the live model stays");
        self.update_status(|s| {
            s.rebuild = None;
            s.last_rebuild_error = Some(error.to_string());
        });
        if let Some(root) = &self.root {
            // Only while `CURRENT` still names the live store: a switch that failed after its
            // rename leaves both versions for the next start to choose from.
            let live_is_current =
                versions::current_dir(root).is_ok_and(|current| current == self.store.path());
            if live_is_current {
                if let Err(e) = versions::remove_stale(root) {
                    warn!(error = %e, "failed rebuild's store version not removed");
                }
            }
        }
    }
}

fn position_header(message: &jetstream::Message) -> Option<u64> {
    message
        .headers
        .as_ref()?
        .get(HEADER_POSITION)?
        .as_str()
        .parse()
        .ok()
}

/// A rebuild running beside the live model: the fresh projector and its store version.
type RebuildTask<P> = JoinHandle<Result<(Projector<P>, String), ProjectorError>>;

/// How a rebuild task ended.
type RebuildOutcome<P> =
    Result<Result<(Projector<P>, String), ProjectorError>, tokio::task::JoinError>;

async fn rebuild_finished<P: Projection>(task: &mut Option<RebuildTask<P>>) -> RebuildOutcome<P> {
    match task.as_mut() {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}
