//! # crm-eventlog: the event log, the system's only source of truth
//!
//! An append-only log of events on sled, with gap-free global positions, per-stream versions,
//! optimistic concurrency, durable idempotency and group commit. It stores opaque payloads with
//! an event type name and schema version; it knows nothing about the domain's events (it takes
//! only [`ExpectedVersion`] from the domain crate, the vocabulary it shares with the contract).
//!
//! ## Architecture invariant
//!
//! Every event ever acknowledged is in the log exactly once, at a position in `1..=head()`, with
//! no gaps, and its stream's versions are contiguous from 1. An acknowledgement is only sent
//! after the flush that made the event durable. A record that fails its checksum is never
//! returned as data.
//!
//! ## Storage and key layout
//!
//! One data directory per log, owned by one process: `eventlog.lock` (an advisory lock taken
//! before sled opens, so a second opener gets [`LogError::Locked`]) and `sled/`. Everything
//! lives in one sled tree, `crm-eventlog`, with a one-byte prefix per kind of key:
//!
//! | key                                        | value                                      |
//! |--------------------------------------------|--------------------------------------------|
//! | `e` position (u64 BE)                      | the record envelope ([`Record`])           |
//! | `s` stream len (u16 BE) stream version (u64 BE) | position (u64 BE)                     |
//! | `c` command id (16 bytes)                  | request hash and outcome, CRC32C           |
//! | `m` `head`                                 | last committed position (u64 BE)           |
//! | `m` `format`                               | key layout version                         |
//!
//! Big-endian numbers make sled's key order the numeric order: `e` keys iterate in position
//! order, and one stream's `s` keys in version order. Only `storage.rs` touches sled; the rest
//! deals in keys and bytes (docs/DESIGN.md rule 7), and the record envelope is our own format
//! ([`record`]), so the log can be exported record by record and moved elsewhere.
//!
//! ## Group commit
//!
//! [`EventLog::append`] validates the request, puts it on a bounded queue
//! (`queue_depth_max`) and waits on a oneshot channel. One dedicated OS thread, the writer,
//! takes the first queued append, then whatever else is queued (up to `batch_appends_max`
//! appends and `batch_events_max` events, waiting at most `batch_wait_us_max` for more). For
//! each append in order it checks the command id (in the batch, then in the log), then every
//! stream's expected version against the log overlaid with the batch's own pending writes, so
//! several appends to one stream in one batch see each other. (Stream heads come from a bounded
//! cache, `stream_cache_entries_max`, that only the writer fills: exact, since only the writer
//! changes streams.) An accepted append gets the next
//! positions and versions and its writes join the batch; a rejected one leaves no trace and
//! does not affect the others. The writer then applies the whole batch with one atomic sled
//! `apply_batch` (records, stream index, command records and the head key
//! together), flushes once, publishes the new head and only then answers every waiter, the
//! rejected ones included.
//!
//! If applying or flushing fails, every append in the batch gets [`LogError::Failed`] and the
//! log turns read-only for the rest of the process's life (reads still work and never go past
//! the last durable head). The outcome of that batch is unknown: after a restart it is either
//! wholly there or wholly absent, and a retry with the same command id gets the right answer.
//!
//! `batch_wait_us_max` defaults to 0: appends that arrive while a batch is being flushed form
//! the next batch, which already batches well under load and adds no latency to a lone caller.
//! The writer's counters ([`EventLog::stats`]) show batch sizes and where the time goes.
//!
//! ## Invariants the code relies on
//!
//! - Only the writer assigns positions, inside the batch that stores them: no reservation, so
//!   no gap (docs/DESIGN.md rule 1). It asserts the batch starts at the durable head + 1.
//! - `head()` moves only after a flush; `read_all`, `read_stream` and `stream_version` never
//!   show anything beyond it, so nobody reads an event that a crash could take back.
//! - A command id is stored with its request hash and outcome in the same batch as its events
//!   and is kept forever; a retry gets the original outcome with `duplicate: true`. Rejected
//!   commands store nothing.
//! - Records are checked (size limits, CRC32C, no trailing bytes, position matches its key) on
//!   every read; a bad one is a [`LogError::Corrupt`] naming the position.
//! - `recorded_at` is non-decreasing in position order, across batches and restarts: each batch
//!   is stamped `max(clock, last stamp)`, and at open the last stamp is the head record's
//!   (docs/DESIGN.md rule 13). So the events recorded up to a given time are a prefix of the log.
//!   If the head record is damaged at open, that floor is unknown and appends are refused
//!   ([`LogError::Corrupt`]) while reads and `verify` keep working.
//! - If the writer panics (a broken assertion), the log turns read-only, as after a failed flush.
//! - [`EventLog::verify`] rechecks all of this over the whole log.
//!
//! ## Payloads and schema versions
//!
//! Payloads are opaque here. The domain crate encodes them (`crm_domain::codec`, the one
//! bincode configuration of events) and keeps the upcasters from older schema versions, keyed
//! by the `event_type` and `schema_version` every record carries.

mod clock;
mod commands;
mod config;
mod error;
#[doc(hidden)]
pub mod layout;
pub mod metrics;
pub mod record;
mod storage;
mod stored;
mod types;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tokio::sync::{broadcast, oneshot, watch};

/// Durable batches kept for a committed-records receiver that has not read them yet.
const COMMITTED_BATCHES_BUFFERED: usize = 256;

pub use clock::{Clock, LogClock, SystemClock};
pub use config::{
    LogConfig, ENVELOPE_BYTES_MAX, PAYLOAD_BYTES_MAX_DEFAULT, RECORD_BYTES_MAX_DEFAULT,
};
pub use error::{LogError, RequestError, StorageError};
pub use record::{Record, RecordError, RecordLimits, RecordRef};
#[doc(hidden)]
pub use storage::{LOCK_FILE_NAME, SLED_DIR_NAME};
pub use stored::{CommittedBatch, StoredRecord};
pub use types::{
    AppendOutcome, AppendRequest, ExpectedVersion, LogStats, NewEvent, StreamAppend, StreamOutcome,
};
pub use verify::{Problem, VerifyReport};

use storage::{DirLock, Store, WriteBatch};
use writer::{Job, RecordedAtFloor, Shared, UnreadableHead};

/// A handle on an open event log. Cheap to clone; all clones share one sled database and one
/// writer thread. [`EventLog::close`] stops appends; the database and the directory lock are
/// released when the last clone is dropped.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

struct Inner {
    // Field order is drop order: the store closes before the directory lock is released.
    shared: Arc<Shared>,
    queue: RwLock<Option<SyncSender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    closing: AtomicBool,
    dir: PathBuf,
    _lock: DirLock,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("dir", &self.inner.dir)
            .field("head", &self.head())
            .finish()
    }
}

impl EventLog {
    /// Opens (or creates) the log in `dir`. Fails with [`LogError::Locked`] if the directory is
    /// open elsewhere, in this process or another.
    pub fn open(dir: &Path, config: LogConfig) -> Result<EventLog, LogError> {
        config.validate()?;
        let lock = DirLock::acquire(dir)?;
        let store = Store::open(dir, config.sled_cache_bytes)?;
        check_format(&store, dir)?;
        let stored_head = match store.get(layout::META_HEAD_KEY)? {
            None => 0,
            Some(bytes) => layout::decode_u64(&bytes).ok_or_else(|| LogError::CorruptEntry {
                entry: "stored head".into(),
                reason: format!("{} bytes, expected 8", bytes.len()),
            })?,
        };
        let (head_tx, _) = watch::channel(stored_head);
        let (committed_tx, _) = broadcast::channel(COMMITTED_BATCHES_BUFFERED);
        let shared = Arc::new(Shared {
            committed_tx,
            limits: config.record_limits(),
            store,
            config,
            head: AtomicU64::new(stored_head),
            head_tx,
            failed: AtomicBool::new(false),
            commit_lock: Mutex::new(()),
            stats: writer::Stats::default(),
        });
        // The head key is written in the same atomic batch as the records: they must agree.
        let last = verify::last_event_position(&shared)?;
        if last != stored_head {
            return Err(LogError::Corrupt {
                position: last.max(stored_head),
                reason: format!("stored head is {stored_head} but the last record is {last}"),
            });
        }

        let floor = recorded_at_floor(&shared, stored_head)?;

        let (queue_tx, queue_rx) = mpsc::sync_channel(shared.config.queue_depth_max);
        let writer = std::thread::Builder::new()
            .name("crm-eventlog-writer".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || writer::run(shared, queue_rx, floor)
            })
            .map_err(|source| LogError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        tracing::info!(dir = %dir.display(), head = stored_head, "event log opened");
        Ok(EventLog {
            inner: Arc::new(Inner {
                shared,
                queue: RwLock::new(Some(queue_tx)),
                writer: Mutex::new(Some(writer)),
                closing: AtomicBool::new(false),
                dir: dir.to_path_buf(),
                _lock: lock,
            }),
        })
    }

    /// Appends atomically; resolves only after the batch holding it is flushed. A retried
    /// command id resolves to the original outcome with `duplicate: true`.
    ///
    /// Must run inside a tokio runtime (a full queue is waited on in `spawn_blocking`). If the
    /// future is dropped after the request was queued, the append may still happen.
    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, LogError> {
        let (job, reply) = self.prepare(request)?;
        let queue = self.queue()?;
        match queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                let sent = tokio::task::spawn_blocking(move || queue.send(job).is_ok())
                    .await
                    .unwrap_or(false);
                if !sent {
                    return Err(LogError::ShuttingDown);
                }
            }
            Err(TrySendError::Disconnected(_)) => return Err(LogError::ShuttingDown),
        }
        match reply.await {
            Ok(result) => result,
            Err(_) => Err(self.writer_gone()),
        }
    }

    /// [`append`](Self::append) for callers outside async code. Blocks the calling thread;
    /// must not be called from within an async runtime.
    pub fn append_blocking(&self, request: AppendRequest) -> Result<AppendOutcome, LogError> {
        let (job, reply) = self.prepare(request)?;
        self.queue()?
            .send(job)
            .map_err(|_| LogError::ShuttingDown)?;
        match reply.blocking_recv() {
            Ok(result) => result,
            Err(_) => Err(self.writer_gone()),
        }
    }

    /// The last durable position; 0 for an empty log.
    pub fn head(&self) -> u64 {
        self.inner.shared.head.load(Ordering::Acquire)
    }

    /// A receiver of the durable head. It changes only after a flush, so a tailer can await
    /// `changed()` (or `wait_for`) instead of polling.
    pub fn subscribe_head(&self) -> watch::Receiver<u64> {
        self.inner.shared.head_tx.subscribe()
    }

    /// The stream's last durable version; 0 if it has no events.
    pub fn stream_version(&self, stream: &str) -> Result<u64, LogError> {
        let head = self.head();
        let stored = writer::read_stream_head(&self.inner.shared.store, stream)?;
        if stored.position <= head {
            return Ok(stored.version);
        }
        // The stored head belongs to a batch not yet durable: find the last durable version.
        let prefix = layout::stream_index_prefix(stream);
        for entry in self.inner.shared.store.scan_prefix(&prefix).rev() {
            let (key, value) = entry?;
            let position = decode_index_value(stream, &value)?;
            if position <= head {
                return layout::parse_stream_index_key(&key)
                    .map(|(_, version)| version)
                    .ok_or_else(|| corrupt_index(stream, "key does not parse"));
            }
        }
        Ok(0)
    }

    /// Up to `max` events of `stream` from version `from_version` (1-based, inclusive) on, in
    /// version order, never beyond the durable head. `max` is capped at `read_page_events_max`.
    pub fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        let shared = &self.inner.shared;
        let max = max.min(shared.config.read_page_events_max);
        let head = self.head();
        let from = from_version.max(1);
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        let start = layout::stream_index_key(stream, from);
        let end = layout::stream_index_key(stream, u64::MAX);
        for (expected_version, entry) in (from..).zip(shared.store.range(&start, &end)) {
            let (key, value) = entry?;
            let version = layout::parse_stream_index_key(&key)
                .map(|(_, v)| v)
                .ok_or_else(|| corrupt_index(stream, "key does not parse"))?;
            if version != expected_version {
                return Err(corrupt_index(
                    stream,
                    &format!("version {expected_version} is missing from the index"),
                ));
            }
            let position = decode_index_value(stream, &value)?;
            if position > head {
                break;
            }
            let record = self.read_position(position)?;
            if record.stream != stream || record.stream_version != version {
                return Err(LogError::Corrupt {
                    position,
                    reason: format!(
                        "index says stream {stream} version {version}, record is stream {} version {}",
                        record.stream, record.stream_version
                    ),
                });
            }
            out.push(record);
            if out.len() == max {
                break;
            }
        }
        Ok(out)
    }

    /// Up to `max` events from `from_position` (inclusive) on, in position order, never beyond
    /// the durable head. `max` is capped at `read_page_events_max`. Page by calling again from
    /// the last position + 1. A damaged record is an error naming its position, never data.
    pub fn read_all(&self, from_position: u64, max: usize) -> Result<Vec<Record>, LogError> {
        let shared = &self.inner.shared;
        self.read_stored(from_position, max)?
            .iter()
            .map(|stored| decode_at(shared, stored.position(), stored.bytes()))
            .collect()
    }

    /// Like [`EventLog::read_all`], but the records as stored, undecoded: what the tailer
    /// publishes. Each record's checksum is checked when it is viewed
    /// ([`StoredRecord::view`]).
    pub fn read_stored(
        &self,
        from_position: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let shared = &self.inner.shared;
        let max = max.min(shared.config.read_page_events_max) as u64;
        let head = self.head();
        let from = from_position.max(1);
        if max == 0 || from > head {
            return Ok(Vec::new());
        }
        let last = head.min(from.saturating_add(max - 1));
        let mut out = Vec::with_capacity((last - from + 1) as usize);
        let mut expected = from;
        let start = layout::event_key(from);
        let end = layout::event_key(last + 1);
        for entry in shared.store.range(&start, &end) {
            let (key, value) = entry?;
            if layout::position_of_event_key(&key) != Some(expected) {
                return Err(missing(expected));
            }
            out.push(StoredRecord::new(expected, value));
            expected += 1;
        }
        if expected != last + 1 {
            return Err(missing(expected));
        }
        Ok(out)
    }

    /// Every batch made durable from now on, its records as stored, in position order: the
    /// tailer publishes from these instead of reading the log back. A receiver that falls more
    /// than a few hundred batches behind gets `Lagged` and reads the log instead.
    pub fn subscribe_committed(&self) -> broadcast::Receiver<CommittedBatch> {
        self.inner.shared.committed_tx.subscribe()
    }

    /// Scans the whole log and reports every problem found. Safe to run on a live log (it
    /// checks up to the durable head it saw when it started); definitive on a quiet one.
    pub fn verify(&self) -> Result<VerifyReport, LogError> {
        self.verify_with_progress(&mut |_, _| {})
    }

    /// [`EventLog::verify`], reporting `(records checked, head)` as the scan of the records
    /// goes (the index and command checks after it are shorter).
    pub fn verify_with_progress(
        &self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport, LogError> {
        verify::verify(&self.inner.shared, progress)
    }

    /// The limits this log decodes records with; readers of its records elsewhere (over
    /// NATS, from JetStream) decode with the same ones.
    pub fn record_limits(&self) -> RecordLimits {
        self.inner.shared.limits
    }

    /// Counters kept by the writer since the log was opened.
    pub fn stats(&self) -> LogStats {
        self.inner.shared.stats.snapshot()
    }

    /// Whether a failed flush has made the log read-only.
    pub fn is_failed(&self) -> bool {
        self.inner.shared.failed.load(Ordering::Acquire)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Stops taking appends, lets the writer commit everything already queued, and waits for
    /// it to stop. Reads keep working until the last handle is dropped. Blocks the thread.
    pub fn close(&self) {
        self.inner.close();
    }

    /// [`close`](Self::close) for async callers.
    pub async fn shutdown(&self) {
        let log = self.clone();
        if tokio::task::spawn_blocking(move || log.close())
            .await
            .is_err()
        {
            tracing::error!("event log close panicked");
        }
    }

    /// Test hook: while set, every flush fails as if the disk had failed.
    #[doc(hidden)]
    pub fn inject_flush_failure(&self, fail: bool) {
        self.inner.shared.store.inject_flush_failure(fail);
    }

    fn read_position(&self, position: u64) -> Result<Record, LogError> {
        let shared = &self.inner.shared;
        match shared.store.get(&layout::event_key(position))? {
            Some(bytes) => decode_at(shared, position, &bytes),
            None => Err(missing(position)),
        }
    }

    fn prepare(
        &self,
        request: AppendRequest,
    ) -> Result<(Job, oneshot::Receiver<writer::Reply>), LogError> {
        if self.is_failed() {
            return Err(LogError::Failed);
        }
        if self.inner.closing.load(Ordering::Acquire) {
            return Err(LogError::ShuttingDown);
        }
        let events = validate(&request, &self.inner.shared.config)?;
        let (reply, receiver) = oneshot::channel();
        Ok((
            Job {
                request,
                events,
                reply,
            },
            receiver,
        ))
    }

    fn queue(&self) -> Result<SyncSender<Job>, LogError> {
        let queue = self.inner.queue.read().unwrap_or_else(|e| e.into_inner());
        queue.clone().ok_or(LogError::ShuttingDown)
    }

    /// The writer dropped a reply without answering: it stopped (closing) or panicked.
    fn writer_gone(&self) -> LogError {
        if self.inner.closing.load(Ordering::Acquire) {
            return LogError::ShuttingDown;
        }
        self.inner.shared.failed.store(true, Ordering::Release);
        tracing::error!("event log writer stopped unexpectedly; the log is now read-only");
        LogError::Failed
    }
}

impl Inner {
    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        drop(self.queue.write().unwrap_or_else(|e| e.into_inner()).take());
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = writer {
            if handle.join().is_err() {
                self.shared.failed.store(true, Ordering::Release);
                tracing::error!("event log writer panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

/// Checks the request against the limits; returns its event count.
fn validate(request: &AppendRequest, config: &LogConfig) -> Result<usize, RequestError> {
    if request.streams.is_empty() {
        return Err(RequestError::NoStreams);
    }
    let optional = [
        ("actor", &request.actor),
        ("correlation_id", &request.correlation_id),
        ("causation_id", &request.causation_id),
    ];
    let mut optional_bytes = [None; 3];
    for (slot, (field, value)) in optional_bytes.iter_mut().zip(optional) {
        if let Some(v) = value {
            check_length(field, v.len(), config.metadata_bytes_max, true)?;
            *slot = Some(v.len());
        }
    }
    let events = request.event_count();
    if events > config.append_events_max {
        return Err(RequestError::TooManyEvents {
            events,
            max: config.append_events_max,
        });
    }
    for (i, append) in request.streams.iter().enumerate() {
        check_length(
            "stream",
            append.stream.len(),
            config.stream_bytes_max,
            false,
        )?;
        if request.streams[..i]
            .iter()
            .any(|other| other.stream == append.stream)
        {
            return Err(RequestError::DuplicateStream {
                stream: append.stream.clone(),
            });
        }
        if append.events.is_empty() {
            return Err(RequestError::NoEvents {
                stream: append.stream.clone(),
            });
        }
        for event in &append.events {
            check_length(
                "event_type",
                event.event_type.len(),
                config.event_type_bytes_max,
                false,
            )?;
            if event.payload.len() > config.payload_bytes_max {
                return Err(RequestError::PayloadTooLarge {
                    bytes: event.payload.len(),
                    max: config.payload_bytes_max,
                });
            }
            let bytes = record::encoded_len(
                append.stream.len(),
                event.event_type.len(),
                optional_bytes,
                event.payload.len(),
            );
            if bytes > config.record_bytes_max {
                return Err(RequestError::RecordTooLarge {
                    bytes,
                    max: config.record_bytes_max,
                });
            }
        }
    }
    Ok(events)
}

fn check_length(
    field: &'static str,
    bytes: usize,
    max: usize,
    empty_ok: bool,
) -> Result<(), RequestError> {
    if bytes > max || (bytes == 0 && !empty_ok) {
        return Err(RequestError::FieldLength { field, bytes, max });
    }
    Ok(())
}

/// Writes the layout version into a new log, or checks it in an existing one.
fn check_format(store: &Store, dir: &Path) -> Result<(), LogError> {
    match store.get(layout::META_FORMAT_KEY)? {
        Some(bytes) if bytes.as_ref() == [layout::LAYOUT_FORMAT_VERSION] => Ok(()),
        Some(bytes) => Err(LogError::UnsupportedFormat {
            dir: dir.to_path_buf(),
            found: bytes.first().copied().unwrap_or(0),
            supported: layout::LAYOUT_FORMAT_VERSION,
        }),
        None => {
            if store.get(layout::META_HEAD_KEY)?.is_some() {
                return Err(LogError::CorruptEntry {
                    entry: "layout format".into(),
                    reason: "missing in a log that has a head".into(),
                });
            }
            let mut batch = WriteBatch::default();
            batch.insert(
                layout::META_FORMAT_KEY,
                &[layout::LAYOUT_FORMAT_VERSION][..],
            );
            store.apply(batch)?;
            store.flush()?;
            Ok(())
        }
    }
}

/// The newest stored `recorded_at`, below which the writer never stamps (docs/DESIGN.md rule
/// 13). A damaged head record does not stop the open (reads and `verify` must still work to
/// diagnose it) but leaves the floor unknown, and the writer then refuses appends.
fn recorded_at_floor(shared: &Shared, head: u64) -> Result<RecordedAtFloor, LogError> {
    if head == 0 {
        return Ok(Ok(None));
    }
    let read = match shared.store.get(&layout::event_key(head))? {
        Some(bytes) => decode_at(shared, head, &bytes),
        None => Err(missing(head)),
    };
    match read {
        Ok(record) => Ok(Ok(Some(record.recorded_at_us))),
        Err(LogError::Corrupt { position, reason }) => {
            tracing::error!(
                position,
                %reason,
                "the head record is damaged; the log refuses appends until it is repaired"
            );
            Ok(Err(UnreadableHead { position, reason }))
        }
        Err(other) => Err(other),
    }
}

fn decode_at(shared: &Shared, position: u64, bytes: &[u8]) -> Result<Record, LogError> {
    let record = Record::decode(bytes, &shared.limits).map_err(|e| {
        tracing::error!(position, error = %e, "corrupt event log record");
        LogError::Corrupt {
            position,
            reason: e.to_string(),
        }
    })?;
    if record.position != position {
        return Err(LogError::Corrupt {
            position,
            reason: format!("record says position {}", record.position),
        });
    }
    Ok(record)
}

fn missing(position: u64) -> LogError {
    LogError::Corrupt {
        position,
        reason: "no record at this position below the head".into(),
    }
}

fn decode_index_value(stream: &str, value: &[u8]) -> Result<u64, LogError> {
    layout::decode_u64(value).ok_or_else(|| corrupt_index(stream, "value is not a position"))
}

fn corrupt_index(stream: &str, reason: &str) -> LogError {
    LogError::CorruptEntry {
        entry: format!("stream index of {stream}"),
        reason: reason.to_owned(),
    }
}
