//! The tailer (docs/DESIGN.md rule 8): publishes every committed event, in position order, to the
//! JetStream stream `CRM_EVENTS`, never beyond the flushed head.
//!
//! Order and completeness come from JetStream's `Nats-Expected-Last-Sequence`: each publish
//! names the stream sequence it must follow, so a lost or reordered publish fails every later
//! one of its batch instead of leaving a gap. After any failure, and at start, the tailer reads
//! the position of the stream's last message (`Crm-Position`) and resumes after it: a stream
//! behind the log is filled up, a stream ahead of the log is an alarm and stops the tailer.
//!
//! The records come from the log's writer in memory: each durable batch, as stored, is handed to
//! the tailer ([`EventLog::subscribe_committed`]); the tailer reads the log back only for what
//! it did not get that way (at start, after falling behind, after a failed publish). The stored
//! envelope bytes are the message body, unchanged: no decode and encode per event, only a
//! borrowed view of the fields the headers carry (checksum checked).
//!
//! Those decisions are the I/O-free [`TailerCursor`] and [`StreamEnd`] at the end of this file,
//! unit-tested without a nats-server; `Tailer` reads the stream and the log and publishes as
//! they say.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::{self, stream::StorageType};
use async_nats::HeaderMap;
use tokio::sync::{broadcast, watch};
use tracing::{error, info, warn};

use crm_domain::Aggregate;
use crm_eventlog::{CommittedBatch, EventLog, RecordRef, StoredRecord};
use crm_wire::{
    msg_id_for_position, Subjects, BINCODE_CONTENT_TYPE, HEADER_CONTENT_TYPE, HEADER_EVENT_TYPE,
    HEADER_MSG_ID, HEADER_POSITION, HEADER_SCHEMA_VERSION, HEADER_STREAM, HEADER_VERSION,
};

use crate::ServiceError;

const HEADER_EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";

#[derive(Debug, Clone)]
pub struct TailerConfig {
    pub subjects: Subjects,
    pub stream_name: String,
    /// Replicas of the stream (`num_replicas`): 1 on a single server, 3 on a three-node
    /// JetStream cluster so that losing a node loses no stream.
    pub replicas: usize,
    /// Publishes in flight (awaiting their JetStream ack) at once.
    pub publish_batch_max: usize,
    /// Pause after a failed publish before resynchronising.
    pub retry_backoff_ms: u64,
}

impl Default for TailerConfig {
    fn default() -> Self {
        TailerConfig {
            subjects: Subjects::default(),
            stream_name: crm_wire::EVENTS_STREAM.to_owned(),
            replicas: 1,
            publish_batch_max: 512,
            retry_backoff_ms: 250,
        }
    }
}

/// Why the event stream could not be set up: worth retrying, or never going to work.
#[derive(Debug)]
enum StreamSetup {
    NotYet(String),
    Refused(String),
}

impl StreamSetup {
    /// A server that is not clustered refuses more than one replica for good (on create or
    /// update); anything else
    /// (a node down, no JetStream leader yet, a timeout) may pass.
    fn of_create(error: &jetstream::context::CreateStreamError, replicas: usize) -> StreamSetup {
        use jetstream::context::CreateStreamErrorKind;
        match error.kind() {
            CreateStreamErrorKind::JetStream(e)
                if e.error_code() == jetstream::ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED =>
            {
                StreamSetup::Refused(format!(
                    "{error}: {replicas} replicas need a JetStream cluster of at least \
                     {replicas} servers (--events-replicas)"
                ))
            }
            _ => StreamSetup::NotYet(error.to_string()),
        }
    }
}

/// What the tailer has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailerStatus {
    /// Last log position known to be in the JetStream stream.
    pub published: u64,
    /// Set when the tailer stopped on an error that needs an operator.
    pub failed: Option<String>,
}

pub struct Tailer {
    log: EventLog,
    client: async_nats::Client,
    js: jetstream::Context,
    config: TailerConfig,
    status: watch::Sender<TailerStatus>,
}

impl Tailer {
    pub fn new(log: EventLog, client: async_nats::Client, config: TailerConfig) -> Tailer {
        Tailer {
            log,
            js: jetstream::new(client.clone()),
            client,
            config,
            status: watch::Sender::new(TailerStatus::default()),
        }
    }

    pub fn status(&self) -> watch::Receiver<TailerStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` turns true, or a fault that needs an operator.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), ServiceError> {
        let result = self.run_inner(&mut shutdown).await;
        if let Err(e) = &result {
            error!(error = %e, "tailer stopped");
            self.status.send_modify(|s| s.failed = Some(e.to_string()));
        }
        result
    }

    async fn run_inner(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), ServiceError> {
        // Subscribed before anything is read, so no batch falls between the log and the handoff.
        let mut handoff = Handoff::new(self.log.subscribe_committed());
        let stream = self.ensure_stream().await?;
        let tip = loop {
            match self.tip(&stream).await {
                Ok(tip) => break tip,
                Err(e @ ServiceError::StreamEmptied { .. }) => return Err(e),
                Err(e) => {
                    warn!(error = %e, "cannot read the stream's tip yet; retrying");
                    self.status.send_modify(|s| s.failed = Some(e.to_string()));
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)) => {}
                        _ = crate::stopped(shutdown) => return Ok(()),
                    }
                }
            }
        };
        // What the stream already holds is published: the status says so before anything new.
        self.status.send_modify(|s| {
            s.failed = None;
            s.published = tip.position;
        });
        info!(stream = %self.config.stream_name, published = tip.position, head = self.log.head(), "tailer resuming");
        let mut cursor = TailerCursor::new(tip, self.config.publish_batch_max);
        let mut head_rx = self.log.subscribe_head();
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let head = *head_rx.borrow_and_update();
            match cursor.step(head) {
                TailerStep::StreamAhead {
                    stream_position,
                    log_head,
                } => {
                    return Err(ServiceError::StreamAheadOfLog {
                        stream: self.config.stream_name.clone(),
                        stream_position,
                        log_head,
                    })
                }
                TailerStep::Publish(batch) => {
                    if let Err(e) = self.publish_batch(&mut cursor, batch, &mut handoff).await {
                        warn!(error = %e, position = batch.from, "publish failed; resynchronising");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)) => {}
                            _ = crate::stopped(shutdown) => return Ok(()),
                        }
                        // On failure the cursor keeps its tip: the next publish names that
                        // sequence, so JetStream refuses it unless the tip was right.
                        match self.tip(&stream).await {
                            Ok(resynced) => cursor.resynchronised(resynced),
                            Err(e) => warn!(error = %e, "cannot read the stream's tip; retrying"),
                        }
                    }
                    let published = cursor.tip().position;
                    self.status.send_modify(|s| s.published = published);
                }
                TailerStep::Wait => {
                    tokio::select! {
                        changed = head_rx.changed() => if changed.is_err() { return Ok(()) },
                        _ = crate::stopped(shutdown) => return Ok(()),
                    }
                }
            }
        }
    }

    async fn ensure_stream(&self) -> Result<jetstream::stream::Stream, ServiceError> {
        let config = jetstream::stream::Config {
            name: self.config.stream_name.clone(),
            subjects: vec![self.config.subjects.events_wildcard()],
            storage: StorageType::File,
            num_replicas: self.config.replicas,
            ..Default::default()
        };
        loop {
            match self.stream_as_configured(&config).await {
                Ok(stream) => return Ok(stream),
                Err(StreamSetup::Refused(reason)) => {
                    return Err(ServiceError::JetStream {
                        operation: "create the event stream",
                        reason,
                    })
                }
                Err(StreamSetup::NotYet(e)) => {
                    warn!(error = %e, "JetStream stream not available yet; retrying");
                    tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
                }
            }
        }
    }

    /// The stream, created when missing; an existing stream with another replica count is
    /// updated to the configured one (JetStream moves the data), so an operator changes the
    /// count with the flag alone.
    async fn stream_as_configured(
        &self,
        config: &jetstream::stream::Config,
    ) -> Result<jetstream::stream::Stream, StreamSetup> {
        let not_yet = |e: &dyn std::fmt::Display| StreamSetup::NotYet(e.to_string());
        let mut stream = self
            .js
            .get_or_create_stream(config.clone())
            .await
            .map_err(|e| StreamSetup::of_create(&e, config.num_replicas))?;
        let current = stream.info().await.map_err(|e| not_yet(&e))?.config.clone();
        if current.num_replicas != config.num_replicas {
            info!(
                stream = %config.name,
                from = current.num_replicas,
                to = config.num_replicas,
                "changing the event stream's replicas"
            );
            self.js
                .update_stream(jetstream::stream::Config {
                    num_replicas: config.num_replicas,
                    ..current
                })
                .await
                .map_err(|e| StreamSetup::of_create(&e, config.num_replicas))?;
            stream = self
                .js
                .get_stream(&config.name)
                .await
                .map_err(|e| not_yet(&e))?;
        }
        Ok(stream)
    }

    async fn tip(&self, stream: &jetstream::stream::Stream) -> Result<Tip, ServiceError> {
        let js_error = |operation: &'static str| {
            move |e: &dyn std::fmt::Display| ServiceError::JetStream {
                operation,
                reason: e.to_string(),
            }
        };
        let info = stream
            .get_info()
            .await
            .map_err(|e| js_error("stream info")(&e))?;
        let sequence = match StreamEnd::of(info.state.messages, info.state.last_sequence) {
            StreamEnd::Empty => return Ok(Tip::START),
            StreamEnd::Purged { last_sequence } => {
                return Err(ServiceError::StreamEmptied {
                    stream: self.config.stream_name.clone(),
                    last_sequence,
                })
            }
            StreamEnd::ReadLast { sequence } => sequence,
        };
        let message = stream
            .get_raw_message(sequence)
            .await
            .map_err(|e| js_error("get last message")(&e))?;
        let header = message.headers.get(HEADER_POSITION).map(|v| v.as_str());
        Tip::of_last_message(sequence, header).ok_or_else(|| ServiceError::JetStream {
            operation: "read last message",
            reason: format!("message {sequence} has no valid {HEADER_POSITION} header"),
        })
    }

    /// Publishes one batch the cursor asked for, pipelined, and moves the cursor on its ack.
    /// Only the batch's last message asks JetStream for an ack: every message names the
    /// sequence it must follow, so if any earlier one was not stored, the last one is refused
    /// too and the tailer resynchronises from the stream's tip.
    async fn publish_batch(
        &self,
        cursor: &mut TailerCursor,
        batch: PublishBatch,
        handoff: &mut Handoff,
    ) -> Result<(), ServiceError> {
        let records = match handoff.take(batch.from, batch.count) {
            Some(records) => records,
            None => {
                // Disk reads off the async workers (a first start publishes the whole log).
                let (log, from, count) = (self.log.clone(), batch.from, batch.count as usize);
                tokio::task::spawn_blocking(move || log.read_stored(from, count)).await??
            }
        };
        let Some(last) = records.last() else {
            return Ok(());
        };
        let last_position = last.position();
        let limits = self.log.record_limits();
        let mut ack = None;
        for (expected_sequence, stored) in (batch.after_sequence..).zip(records.iter()) {
            debug_assert_eq!(
                stored.position(),
                batch.from + (expected_sequence - batch.after_sequence),
                "log positions are contiguous"
            );
            let record = stored.view(&limits)?;
            let (subject, headers) =
                event_message(&self.config.subjects, &record, expected_sequence)?;
            let payload = stored.to_bytes();
            if record.position == last_position {
                let pending = self
                    .js
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .map_err(|e| ServiceError::JetStream {
                        operation: "publish",
                        reason: e.to_string(),
                    })?;
                ack = Some(pending);
            } else {
                self.client
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .map_err(|e| ServiceError::JetStream {
                        operation: "publish",
                        reason: e.to_string(),
                    })?;
            }
        }
        let Some(ack) = ack else {
            return Ok(());
        };
        let ack = ack.await.map_err(|e| ServiceError::JetStream {
            operation: "publish ack",
            reason: format!("batch ending at position {last_position}: {e}"),
        })?;
        cursor
            .acked(
                batch,
                last_position,
                records.len() as u64,
                ack.sequence,
                ack.duplicate,
            )
            .map_err(|e| ServiceError::JetStream {
                operation: "publish ack",
                reason: e.to_string(),
            })
    }
}

/// Committed records handed over by the log's writer, kept until published.
struct Handoff {
    batches: broadcast::Receiver<CommittedBatch>,
    records: VecDeque<StoredRecord>,
}

/// Records held at most: beyond this (the tailer far behind, catching up from the log) the
/// oldest go, and the log is read for them when their turn comes.
const HANDOFF_RECORDS_MAX: usize = 65_536;

impl Handoff {
    fn new(batches: broadcast::Receiver<CommittedBatch>) -> Handoff {
        Handoff {
            batches,
            records: VecDeque::new(),
        }
    }

    /// Up to `count` records from position `from` on, when the handoff holds `from`;
    /// `None`: read the log.
    fn take(&mut self, from: u64, count: u64) -> Option<Vec<StoredRecord>> {
        loop {
            match self.batches.try_recv() {
                Ok(batch) => self.records.extend(batch.iter().cloned()),
                // Batches were missed: what is held may not continue into what comes next.
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.records.clear(),
                Err(_) => break,
            }
        }
        while self.records.len() > HANDOFF_RECORDS_MAX
            || self.records.front().is_some_and(|r| r.position() < from)
        {
            self.records.pop_front();
        }
        if self.records.front()?.position() != from {
            return None;
        }
        let n = (count as usize).min(self.records.len());
        let taken: Vec<StoredRecord> = self.records.iter().take(n).cloned().collect();
        // The writer hands batches on in position order; anything else reads the log.
        let contiguous = taken
            .iter()
            .zip(from..)
            .all(|(record, position)| record.position() == position);
        if !contiguous {
            self.records.clear();
            return None;
        }
        Some(taken)
    }
}

/// The JetStream message the tailer publishes for one committed record, but its body (the
/// record as stored): its subject and the contract's headers (with
/// `Nats-Expected-Last-Sequence`, so JetStream refuses it unless the stream ends at that
/// sequence). Public so the benchmark publishes exactly what the tailer does.
pub fn event_message(
    subjects: &Subjects,
    record: &RecordRef<'_>,
    expected_last_sequence: u64,
) -> Result<(String, HeaderMap), ServiceError> {
    let bad = |reason: String| ServiceError::BadRecord {
        position: record.position,
        reason,
    };
    let aggregate = Aggregate::of_stream(record.stream)
        .ok_or_else(|| bad(format!("stream `{}` names no aggregate", record.stream)))?;
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_MSG_ID, msg_id_for_position(record.position).as_str());
    headers.insert(
        HEADER_EXPECTED_LAST_SEQUENCE,
        expected_last_sequence.to_string().as_str(),
    );
    headers.insert(HEADER_POSITION, record.position.to_string().as_str());
    headers.insert(HEADER_STREAM, record.stream);
    headers.insert(HEADER_VERSION, record.stream_version.to_string().as_str());
    headers.insert(HEADER_EVENT_TYPE, record.event_type);
    headers.insert(
        HEADER_SCHEMA_VERSION,
        record.schema_version.to_string().as_str(),
    );
    headers.insert(HEADER_CONTENT_TYPE, BINCODE_CONTENT_TYPE);
    let subject = subjects.event(aggregate, record.event_type);
    Ok((subject, headers))
}

/// Where the stream ends: its last sequence and the log position that message holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    pub sequence: u64,
    pub position: u64,
}

impl Tip {
    /// A stream that never held a message: publishing starts at position 1.
    pub const START: Tip = Tip {
        sequence: 0,
        position: 0,
    };

    /// The tip from the stream's last message and its `Crm-Position` header; `None` when the
    /// header is missing or not a position.
    pub fn of_last_message(sequence: u64, position_header: Option<&str>) -> Option<Tip> {
        let position = position_header?.parse().ok()?;
        Some(Tip { sequence, position })
    }
}

/// What the stream's state says about its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// It never held a message.
    Empty,
    /// Its last message (`sequence`) names the position to resume after.
    ReadLast { sequence: u64 },
    /// It held messages and holds none now (purged or expired): what it held is unknown, and
    /// republishing the whole log would hand consumers every event again. An alarm: an
    /// operator decides.
    Purged { last_sequence: u64 },
}

impl StreamEnd {
    pub fn of(messages: u64, last_sequence: u64) -> StreamEnd {
        match (messages, last_sequence) {
            (0, 0) => StreamEnd::Empty,
            (0, last_sequence) => StreamEnd::Purged { last_sequence },
            (_, sequence) => StreamEnd::ReadLast { sequence },
        }
    }
}

/// Log positions to publish, in order, the first one after stream sequence `after_sequence`
/// (its `Nats-Expected-Last-Sequence`), each following one after the previous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishBatch {
    pub from: u64,
    pub count: u64,
    pub after_sequence: u64,
}

/// What the tailer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailerStep {
    /// The stream is behind the log: publish this batch.
    Publish(PublishBatch),
    /// The stream holds the whole log: wait for the head to move.
    Wait,
    /// The stream holds positions the log does not (a log restored from an older copy, or
    /// another writer): stop and alert rather than publish a second history.
    StreamAhead { stream_position: u64, log_head: u64 },
}

/// A publish ack that does not continue the stream where the cursor expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckMismatch {
    /// Stored before under this position's id: the stream is not where we thought.
    #[error("position {position} was already in the stream")]
    Duplicate { position: u64 },
    #[error("position {position} stored at sequence {sequence}, expected {expected}")]
    Misplaced {
        position: u64,
        sequence: u64,
        expected: u64,
    },
}

/// The tailer's decisions, without I/O: from the stream's tip and the log's head, what to
/// publish next, when to wait and when to stop; and whether an ack continues the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailerCursor {
    tip: Tip,
    batch_max: u64,
}

impl TailerCursor {
    /// Resumes after `tip` (read from the stream at start), publishing at most `batch_max`
    /// events per batch.
    pub fn new(tip: Tip, batch_max: usize) -> TailerCursor {
        TailerCursor {
            tip,
            batch_max: (batch_max as u64).max(1),
        }
    }

    pub fn tip(&self) -> Tip {
        self.tip
    }

    /// The next step for a log whose flushed head is `head`.
    pub fn step(&self, head: u64) -> TailerStep {
        match self.tip.position.cmp(&head) {
            std::cmp::Ordering::Greater => TailerStep::StreamAhead {
                stream_position: self.tip.position,
                log_head: head,
            },
            std::cmp::Ordering::Equal => TailerStep::Wait,
            std::cmp::Ordering::Less => TailerStep::Publish(PublishBatch {
                from: self.tip.position + 1,
                count: (head - self.tip.position).min(self.batch_max),
                after_sequence: self.tip.sequence,
            }),
        }
    }

    /// JetStream acknowledged the last message of `batch`, `published` messages ending at log
    /// position `last_position`: the stream moves on only if that message landed right after
    /// the batch's predecessors.
    pub fn acked(
        &mut self,
        batch: PublishBatch,
        last_position: u64,
        published: u64,
        sequence: u64,
        duplicate: bool,
    ) -> Result<(), AckMismatch> {
        if duplicate {
            return Err(AckMismatch::Duplicate {
                position: last_position,
            });
        }
        let expected = batch.after_sequence + published;
        if sequence != expected {
            return Err(AckMismatch::Misplaced {
                position: last_position,
                sequence,
                expected,
            });
        }
        self.tip = Tip {
            sequence,
            position: last_position,
        };
        Ok(())
    }

    /// After a failed publish: the stream's tip as read again.
    pub fn resynchronised(&mut self, tip: Tip) {
        self.tip = tip;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(from: u64, count: u64, after_sequence: u64) -> TailerStep {
        TailerStep::Publish(PublishBatch {
            from,
            count,
            after_sequence,
        })
    }

    /// Acks a whole batch as JetStream would when every message was stored.
    fn ack_all(cursor: &mut TailerCursor, head: u64) {
        let TailerStep::Publish(batch) = cursor.step(head) else {
            panic!("nothing to publish");
        };
        let last = batch.from + batch.count - 1;
        cursor
            .acked(
                batch,
                last,
                batch.count,
                batch.after_sequence + batch.count,
                false,
            )
            .unwrap();
    }

    #[test]
    fn each_event_message_carries_its_position_as_message_id() {
        let record = crm_eventlog::Record {
            format_version: 1,
            position: 42,
            stream: "lead-0190".to_owned(),
            stream_version: 3,
            event_type: "LeadScored".to_owned(),
            schema_version: 1,
            command_id: uuid::Uuid::from_u128(7),
            recorded_at_us: 0,
            actor: None,
            correlation_id: None,
            causation_id: None,
            payload: vec![1, 2, 3],
        };
        let bytes = record.encode().unwrap();
        let view = RecordRef::decode(&bytes, &crm_eventlog::RecordLimits::default()).unwrap();
        let (subject, headers) = event_message(&Subjects::default(), &view, 41).unwrap();
        assert_eq!(subject, "crm.evt.lead.LeadScored");
        let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(header(HEADER_MSG_ID), Some(msg_id_for_position(42)));
        assert_eq!(header(HEADER_POSITION).as_deref(), Some("42"));
        assert_eq!(header(HEADER_EXPECTED_LAST_SEQUENCE).as_deref(), Some("41"));
    }

    #[test]
    fn an_empty_stream_gets_the_whole_log_in_batches() {
        assert_eq!(StreamEnd::of(0, 0), StreamEnd::Empty);
        let mut cursor = TailerCursor::new(Tip::START, 2);
        assert_eq!(cursor.step(0), TailerStep::Wait);
        assert_eq!(cursor.step(5), publish(1, 2, 0));
        ack_all(&mut cursor, 5);
        assert_eq!(cursor.step(5), publish(3, 2, 2));
        ack_all(&mut cursor, 5);
        ack_all(&mut cursor, 5);
        assert_eq!(
            cursor.tip(),
            Tip {
                sequence: 5,
                position: 5
            }
        );
        assert_eq!(cursor.step(5), TailerStep::Wait);
    }

    #[test]
    fn after_a_crash_it_resumes_after_what_the_stream_holds() {
        // The stream's sequences need not equal positions (a stream recreated by an operator).
        assert_eq!(StreamEnd::of(7, 9), StreamEnd::ReadLast { sequence: 9 });
        let tip = Tip::of_last_message(9, Some("4")).unwrap();
        let cursor = TailerCursor::new(tip, 512);
        assert_eq!(cursor.step(10), publish(5, 6, 9));
        assert_eq!(cursor.step(4), TailerStep::Wait);
        assert_eq!(Tip::of_last_message(9, None), None);
        assert_eq!(Tip::of_last_message(9, Some("x")), None);
    }

    #[test]
    fn a_stream_ahead_of_the_log_stops_the_tailer() {
        let cursor = TailerCursor::new(
            Tip {
                sequence: 8,
                position: 8,
            },
            512,
        );
        assert_eq!(
            cursor.step(5),
            TailerStep::StreamAhead {
                stream_position: 8,
                log_head: 5
            }
        );
    }

    #[test]
    fn a_purged_stream_is_an_alarm() {
        assert_eq!(
            StreamEnd::of(0, 42),
            StreamEnd::Purged { last_sequence: 42 }
        );
    }

    #[test]
    fn a_lost_or_repeated_publish_resynchronises_from_the_stream() {
        let mut cursor = TailerCursor::new(Tip::START, 10);
        let TailerStep::Publish(batch) = cursor.step(3) else {
            panic!("nothing to publish");
        };
        // One message of the batch was lost: the last one landed one sequence short.
        assert_eq!(
            cursor.acked(batch, 3, 3, 2, false),
            Err(AckMismatch::Misplaced {
                position: 3,
                sequence: 2,
                expected: 3
            })
        );
        assert_eq!(cursor.tip(), Tip::START, "the tip moves only on a good ack");
        assert_eq!(
            cursor.acked(batch, 3, 3, 3, true),
            Err(AckMismatch::Duplicate { position: 3 })
        );
        // The stream, read again, holds positions 1 and 2: publish from 3 on.
        cursor.resynchronised(Tip::of_last_message(2, Some("2")).unwrap());
        assert_eq!(cursor.step(3), publish(3, 1, 2));
        assert_eq!(
            AckMismatch::Misplaced {
                position: 3,
                sequence: 2,
                expected: 3
            }
            .to_string(),
            "position 3 stored at sequence 2, expected 3"
        );
    }

    fn append(log: &EventLog, events: usize) {
        let request = crm_eventlog::AppendRequest {
            command_id: uuid::Uuid::now_v7(),
            request_hash: [0; 32],
            actor: None,
            correlation_id: None,
            causation_id: None,
            streams: vec![crm_eventlog::StreamAppend {
                stream: "lead-1".into(),
                expected: crm_eventlog::ExpectedVersion::Any,
                events: (0..events)
                    .map(|_| crm_eventlog::NewEvent {
                        event_type: "LeadScored".into(),
                        schema_version: 1,
                        payload: vec![7; 40],
                    })
                    .collect(),
            }],
        };
        log.append_blocking(request).unwrap();
    }

    fn positions(records: Option<Vec<StoredRecord>>) -> Option<Vec<u64>> {
        records.map(|records| records.iter().map(StoredRecord::position).collect())
    }

    #[test]
    fn the_handoff_gives_what_it_holds_from_the_asked_position_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), crm_eventlog::LogConfig::default()).unwrap();
        append(&log, 2); // 1..=2, before the handoff subscribed: read from the log
        let mut handoff = Handoff::new(log.subscribe_committed());
        append(&log, 3); // 3..=5
        append(&log, 2); // 6..=7
        assert_eq!(positions(handoff.take(1, 10)), None, "not handed on");
        assert_eq!(positions(handoff.take(3, 2)), Some(vec![3, 4]));
        assert_eq!(positions(handoff.take(5, 10)), Some(vec![5, 6, 7]));
        assert_eq!(positions(handoff.take(8, 10)), None, "not committed yet");
        append(&log, 1);
        assert_eq!(positions(handoff.take(8, 10)), Some(vec![8]));
        // Asked for a position already dropped: the log is read instead.
        assert_eq!(positions(handoff.take(4, 10)), None);
    }

    #[test]
    fn a_handoff_that_lagged_drops_what_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), crm_eventlog::LogConfig::default()).unwrap();
        let mut handoff = Handoff::new(log.subscribe_committed());
        append(&log, 1);
        assert_eq!(positions(handoff.take(1, 1)), Some(vec![1]));
        for _ in 0..300 {
            append(&log, 1); // more batches than the channel keeps
        }
        assert_eq!(
            positions(handoff.take(2, 10)),
            None,
            "position 2 was missed"
        );
        let head = log.head();
        append(&log, 1);
        assert_eq!(positions(handoff.take(head + 1, 10)), Some(vec![head + 1]));
    }
}
