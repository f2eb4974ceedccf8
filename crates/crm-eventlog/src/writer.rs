//! The single writer: a dedicated OS thread that drains the append queue, decides every append
//! of a batch against the log plus the batch's own pending writes, applies the accepted ones as
//! one atomic sled batch, flushes once, and only then answers every waiter (group commit).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot, watch};
use uuid::Uuid;

use crate::clock::RecordedAtClamp;
use crate::config::LogConfig;
use crate::error::{LogError, RequestError};
use crate::layout::{self, CommandRecord, StreamHead};
use crate::metrics::WriterMetrics;
use crate::record::{RecordError, RecordLimits, RecordRef};
use crate::storage::{Store, Value, WriteBatch};
use crate::stored::{CommittedBatch, StoredRecord};
use crate::types::{AppendOutcome, AppendRequest, LogStats, StreamOutcome};

/// State shared by the writer thread and the readers.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) config: LogConfig,
    pub(crate) limits: RecordLimits,
    /// Last durable position. Only the writer stores it, after a successful flush.
    pub(crate) head: AtomicU64,
    pub(crate) head_tx: watch::Sender<u64>,
    /// Each durable batch's records, as stored, for the tailer (no receiver: nothing kept).
    pub(crate) committed_tx: broadcast::Sender<CommittedBatch>,
    /// Set for good when a batch could not be made durable.
    pub(crate) failed: AtomicBool,
    /// Held by the writer from applying a batch until its head is published, so `verify` can
    /// see the stored head, the last record and the durable head agree.
    pub(crate) commit_lock: Mutex<()>,
    pub(crate) stats: Stats,
}

#[derive(Default)]
pub(crate) struct Stats {
    batches: AtomicU64,
    appends: AtomicU64,
    events: AtomicU64,
    decide_us_total: AtomicU64,
    apply_us_total: AtomicU64,
    flush_us_total: AtomicU64,
    flush_us_max: AtomicU64,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> LogStats {
        LogStats {
            batches: self.batches.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            decide_us_total: self.decide_us_total.load(Ordering::Relaxed),
            apply_us_total: self.apply_us_total.load(Ordering::Relaxed),
            flush_us_total: self.flush_us_total.load(Ordering::Relaxed),
            flush_us_max: self.flush_us_max.load(Ordering::Relaxed),
        }
    }
}

pub(crate) type Reply = Result<AppendOutcome, LogError>;

/// One queued append and the way back to its caller.
pub(crate) struct Job {
    pub(crate) request: AppendRequest,
    pub(crate) events: usize,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// What the log knew at open about the newest stored `recorded_at`: `Ok(None)` for an empty
/// log, `Err` when the head record could not be read.
pub(crate) type RecordedAtFloor = Result<Option<i64>, UnreadableHead>;

/// The head record was damaged at open, so its `recorded_at` (the floor of every later stamp)
/// is unknown.
#[derive(Debug, Clone)]
pub(crate) struct UnreadableHead {
    pub(crate) position: u64,
    pub(crate) reason: String,
}

impl UnreadableHead {
    fn error(&self) -> LogError {
        LogError::Corrupt {
            position: self.position,
            reason: format!(
                "the head record cannot be read ({}), so a new recorded_at could go below it; \
                 appends are refused until the log is repaired",
                self.reason
            ),
        }
    }
}

/// Runs the writer loop until every sender of the queue is gone and the queue is empty.
pub(crate) fn run(shared: Arc<Shared>, queue: Receiver<Job>, floor: RecordedAtFloor) {
    let _failed_on_panic = FailOnPanic(Arc::clone(&shared));
    let mut writer = Writer {
        next_position: shared.head.load(Ordering::Acquire) + 1,
        stream_cache: HashMap::new(),
        recorded_at: floor.map(RecordedAtClamp::starting_at),
        metrics: WriterMetrics::register(),
        shared,
    };
    let config = writer.shared.config.clone();
    let wait = Duration::from_micros(config.batch_wait_us_max);
    let mut carried: Option<Job> = None;
    let mut batch: Vec<Job> = Vec::with_capacity(config.batch_appends_max);
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let mut events = first.events;
        batch.push(first);
        let deadline = Instant::now() + wait;
        while batch.len() < config.batch_appends_max && events < config.batch_events_max {
            let next = match queue.try_recv() {
                Ok(job) => job,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    match queue.recv_timeout(deadline - now) {
                        Ok(job) => job,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            if events + next.events > config.batch_events_max {
                carried = Some(next);
                break;
            }
            events += next.events;
            batch.push(next);
        }
        writer.commit(&mut batch);
    }
    tracing::debug!("event log writer stopped");
}

/// If the writer panics (a broken invariant), the log must not take more appends: a batch may
/// be half applied in memory.
struct FailOnPanic(Arc<Shared>);

impl Drop for FailOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.failed.store(true, Ordering::Release);
            tracing::error!("event log writer panicked; the log is now read-only");
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    /// The position the next accepted event gets. Equals durable head + 1 between batches.
    next_position: u64,
    /// Durable stream heads seen lately, so deciding an append rarely reads the store. Only
    /// the writer changes streams, so this is exact; it is cleared when it reaches
    /// `stream_cache_entries_max`.
    stream_cache: HashMap<String, StreamHead>,
    /// Keeps `recorded_at` non-decreasing in position order (docs/DESIGN.md rule 13); `Err`
    /// when the head record was unreadable at open, and then every append is refused.
    recorded_at: Result<RecordedAtClamp, UnreadableHead>,
    /// Batch sizes and flush time, once per written batch.
    metrics: WriterMetrics,
}

/// Decisions taken so far in the batch being built: what later appends in the same batch must
/// see as if it were already in the log.
struct Pending {
    batch: WriteBatch,
    next_position: u64,
    recorded_at_us: i64,
    stream_heads: HashMap<String, StreamHead>,
    /// Commands accepted in this batch: their request hash and the index of their reply.
    commands: HashMap<Uuid, ([u8; 32], usize)>,
    /// The batch's records as they are written, in position order.
    records: Vec<StoredRecord>,
}

impl Writer {
    /// Decides, writes, flushes and answers one batch of jobs, leaving `jobs` empty.
    fn commit(&mut self, jobs: &mut Vec<Job>) {
        let shared = Arc::clone(&self.shared);
        let stats = &shared.stats;
        stats
            .appends
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        if shared.failed.load(Ordering::Acquire) {
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(LogError::Failed));
            }
            return;
        }
        let span = tracing::debug_span!(
            "eventlog_batch",
            appends = jobs.len(),
            first_position = self.next_position
        );
        let _entered = span.enter();

        // The clock is read once per batch, here at the edge; the clamp decides the stamp.
        let stamp = match &mut self.recorded_at {
            Ok(clamp) => clamp.stamp(shared.config.clock.now_us()),
            Err(head) => {
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(head.error()));
                }
                return;
            }
        };
        if stamp.started_lagging {
            tracing::warn!(
                behind_us = stamp.behind_us,
                recorded_at_us = stamp.recorded_at_us,
                "the wall clock is behind the log's newest recorded_at; stamping that until the clock catches up"
            );
        } else if stamp.behind_us > 0 {
            tracing::debug!(
                behind_us = stamp.behind_us,
                recorded_at_us = stamp.recorded_at_us,
                "wall clock still behind the newest recorded_at"
            );
        }

        let started = Instant::now();
        let mut pending = Pending {
            batch: WriteBatch::default(),
            next_position: self.next_position,
            recorded_at_us: stamp.recorded_at_us,
            stream_heads: HashMap::new(),
            commands: HashMap::new(),
            records: Vec::new(),
        };
        let mut replies: Vec<Reply> = Vec::with_capacity(jobs.len());
        for job in jobs.iter() {
            let reply = self.decide(&job.request, &mut pending, &replies);
            replies.push(reply);
        }
        stats
            .decide_us_total
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);

        let Pending {
            mut batch,
            next_position,
            stream_heads,
            records,
            ..
        } = pending;
        let last_position = next_position - 1;
        if !batch.is_empty() {
            let events = next_position - self.next_position;
            batch.insert(
                layout::META_HEAD_KEY,
                &layout::encode_u64(last_position)[..],
            );
            let guard = shared.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
            let started = Instant::now();
            let written = shared.store.apply(batch).and_then(|()| {
                stats
                    .apply_us_total
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                let started = Instant::now();
                let flushed = shared.store.flush();
                let flush_time = started.elapsed();
                self.metrics.flush_seconds.record(flush_time.as_secs_f64());
                let flush_us = flush_time.as_micros() as u64;
                stats.flush_us_total.fetch_add(flush_us, Ordering::Relaxed);
                stats.flush_us_max.fetch_max(flush_us, Ordering::Relaxed);
                flushed
            });
            if let Err(error) = written {
                shared.failed.store(true, Ordering::Release);
                drop(guard);
                tracing::error!(%error, last_position, "event log batch failed; the log is now read-only");
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(LogError::Failed));
                }
                return;
            }
            // Invariant: the batch extended the log contiguously from the old head.
            assert_eq!(
                shared.head.load(Ordering::Acquire) + 1,
                self.next_position,
                "writer position drifted from the durable head"
            );
            shared.head.store(last_position, Ordering::Release);
            shared.head_tx.send_replace(last_position);
            drop(guard);
            // Durable now: hand the records to the tailer as they are (an error only means
            // nobody listens).
            let _ = shared.committed_tx.send(records.into());
            self.next_position = next_position;
            for (stream, head) in stream_heads {
                self.cache_stream_head(stream, head);
            }
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.events.fetch_add(events, Ordering::Relaxed);
            self.metrics.batch_events.record(events as f64);
            self.metrics.batch_appends.record(jobs.len() as f64);
        }
        for (job, reply) in jobs.drain(..).zip(replies) {
            let _ = job.reply.send(reply);
        }
    }

    /// Decides one append against the log plus the batch's pending writes. On success its
    /// writes join the batch; on any error nothing of it does.
    fn decide(
        &mut self,
        request: &AppendRequest,
        pending: &mut Pending,
        replies: &[Reply],
    ) -> Reply {
        let command_id = request.command_id;
        if let Some(&(request_hash, index)) = pending.commands.get(&command_id) {
            if request_hash != request.request_hash {
                return Err(LogError::IdempotencyKeyReused { command_id });
            }
            // Only accepted appends are in `commands`, so their reply is an outcome.
            if let Some(Ok(original)) = replies.get(index) {
                let mut outcome = original.clone();
                outcome.duplicate = true;
                return Ok(outcome);
            }
        }
        if let Some(original) = self.find_command(command_id)? {
            if original.request_hash != request.request_hash {
                return Err(LogError::IdempotencyKeyReused { command_id });
            }
            let mut outcome = original.outcome;
            outcome.duplicate = true;
            return Ok(outcome);
        }

        let mut currents = Vec::with_capacity(request.streams.len());
        for append in &request.streams {
            let current = self.stream_head(&append.stream, pending)?.version;
            if !append.expected.admits(current) {
                return Err(LogError::WrongExpectedVersion {
                    stream: append.stream.clone(),
                    expected: append.expected,
                    current,
                });
            }
            currents.push(current);
        }

        // Encode everything before touching the batch, so a failure leaves no trace.
        let first_position = pending.next_position;
        let mut position = first_position;
        let mut writes: Vec<(Value, Value)> = Vec::with_capacity(request.event_count() * 2);
        let mut records = Vec::with_capacity(request.event_count());
        let mut heads = Vec::with_capacity(request.streams.len());
        let mut outcomes = Vec::with_capacity(request.streams.len());
        for (append, current) in request.streams.iter().zip(currents) {
            let mut version = current;
            for event in &append.events {
                version += 1;
                let record = RecordRef {
                    position,
                    stream: &append.stream,
                    stream_version: version,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    command_id,
                    recorded_at_us: pending.recorded_at_us,
                    actor: request.actor.as_deref(),
                    correlation_id: request.correlation_id.as_deref(),
                    causation_id: request.causation_id.as_deref(),
                    payload: &event.payload,
                };
                let mut bytes = Vec::with_capacity(record.encoded_len());
                // Validation keeps every field within the format, so this only fails on a bug;
                // even then the append is refused alone and nothing of it is written.
                record.encode_into(&mut bytes).map_err(|e| match e {
                    RecordError::FieldTooLong { field, bytes, max } => {
                        LogError::InvalidRequest(RequestError::FieldLength { field, bytes, max })
                    }
                    _ => LogError::InvalidRequest(RequestError::RecordTooLarge {
                        bytes: record.encoded_len(),
                        max: self.shared.config.record_bytes_max,
                    }),
                })?;
                let bytes = Value::from(bytes);
                records.push(StoredRecord::new(position, bytes.clone()));
                writes.push((Value::from(&layout::event_key(position)[..]), bytes));
                writes.push((
                    layout::stream_index_key(&append.stream, version).into(),
                    Value::from(&layout::encode_u64(position)[..]),
                ));
                position += 1;
            }
            heads.push((
                append.stream.as_str(),
                StreamHead {
                    version,
                    position: position - 1,
                },
            ));
            outcomes.push(StreamOutcome {
                stream: append.stream.clone(),
                first_version: current + 1,
                last_version: version,
            });
        }
        let outcome = AppendOutcome {
            first_position,
            last_position: position - 1,
            streams: outcomes,
            duplicate: false,
        };
        let command = CommandRecord {
            request_hash: request.request_hash,
            outcome,
        };

        for (key, value) in writes {
            pending.batch.insert(key, value);
        }
        pending.records.append(&mut records);
        for (stream, head) in heads {
            pending.stream_heads.insert(stream.to_owned(), head);
        }
        pending
            .batch
            .insert(&layout::command_key(command_id)[..], command.encode());
        pending
            .commands
            .insert(command_id, (request.request_hash, replies.len()));
        pending.next_position = position;
        Ok(command.outcome)
    }

    fn find_command(&self, command_id: Uuid) -> Result<Option<CommandRecord>, LogError> {
        let Some(bytes) = self.shared.store.get(&layout::command_key(command_id))? else {
            return Ok(None);
        };
        CommandRecord::decode(&bytes)
            .map(Some)
            .map_err(|e| LogError::CorruptEntry {
                entry: format!("command record {command_id}"),
                reason: e.to_string(),
            })
    }

    fn stream_head(&mut self, stream: &str, pending: &Pending) -> Result<StreamHead, LogError> {
        if let Some(head) = pending.stream_heads.get(stream) {
            return Ok(*head);
        }
        if let Some(head) = self.stream_cache.get(stream) {
            return Ok(*head);
        }
        let head = read_stream_head(&self.shared.store, stream)?;
        self.cache_stream_head(stream.to_owned(), head);
        Ok(head)
    }

    /// Remembers a durable stream head, keeping the cache within its bound.
    fn cache_stream_head(&mut self, stream: String, head: StreamHead) {
        let max = self.shared.config.stream_cache_entries_max;
        if self.stream_cache.len() >= max && !self.stream_cache.contains_key(&stream) {
            if max == 0 {
                return;
            }
            self.stream_cache.clear();
        }
        self.stream_cache.insert(stream, head);
    }
}

/// The stored head of a stream, or version 0 if it has none: its last stream-index entry.
/// No separate head key is written per append: measured, it cost a third of the writer's
/// apply time (docs/PERFORMANCE.md), and the index already holds the answer.
pub(crate) fn read_stream_head(store: &Store, stream: &str) -> Result<StreamHead, LogError> {
    let prefix = layout::stream_index_prefix(stream);
    let Some(entry) = store.scan_prefix(&prefix).next_back() else {
        return Ok(StreamHead {
            version: 0,
            position: 0,
        });
    };
    let (key, value) = entry?;
    let corrupt = |reason: &str| LogError::CorruptEntry {
        entry: format!("stream index of {stream}"),
        reason: reason.to_owned(),
    };
    let (_, version) =
        layout::parse_stream_index_key(&key).ok_or_else(|| corrupt("key does not parse"))?;
    let position = layout::decode_u64(&value).ok_or_else(|| corrupt("value is not 8 bytes"))?;
    Ok(StreamHead { version, position })
}
