//! The tailer (design rule 8): publishes every committed event, in position order, to the
//! JetStream stream `CRM_EVENTS`, never beyond the flushed head.
//!
//! Order and completeness come from JetStream's `Nats-Expected-Last-Sequence`: each publish
//! names the stream sequence it must follow, so a lost or reordered publish fails every later
//! one of its batch instead of leaving a gap. After any failure, and at start, the tailer reads
//! the position of the stream's last message (`Crm-Position`) and resumes after it: a stream
//! behind the log is filled up, a stream ahead of the log is an alarm and stops the tailer.

use std::time::Duration;

use async_nats::jetstream::{self, stream::StorageType};
use async_nats::HeaderMap;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crm_domain::Aggregate;
use crm_eventlog::{EventLog, Record};
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
            publish_batch_max: 512,
            retry_backoff_ms: 250,
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

/// Where the stream ends: its last sequence and the log position that message holds.
#[derive(Debug, Clone, Copy)]
struct Tip {
    sequence: u64,
    position: u64,
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
        let stream = self.ensure_stream().await?;
        let mut tip = loop {
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
        self.status.send_modify(|s| s.failed = None);
        info!(stream = %self.config.stream_name, published = tip.position, head = self.log.head(), "tailer resuming");
        let mut head_rx = self.log.subscribe_head();
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let head = *head_rx.borrow_and_update();
            if tip.position > head {
                return Err(ServiceError::StreamAheadOfLog {
                    stream: self.config.stream_name.clone(),
                    stream_position: tip.position,
                    log_head: head,
                });
            }
            if tip.position < head {
                match self.publish_batch(tip, head).await {
                    Ok(next) => tip = next,
                    Err(e) => {
                        warn!(error = %e, position = tip.position + 1, "publish failed; resynchronising");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)) => {}
                            _ = crate::stopped(shutdown) => return Ok(()),
                        }
                        match self.tip(&stream).await {
                            Ok(resynced) => tip = resynced,
                            Err(e) => warn!(error = %e, "cannot read the stream's tip; retrying"),
                        }
                    }
                }
                self.status.send_modify(|s| s.published = tip.position);
                continue;
            }
            tokio::select! {
                changed = head_rx.changed() => if changed.is_err() { return Ok(()) },
                _ = crate::stopped(shutdown) => return Ok(()),
            }
        }
    }

    async fn ensure_stream(&self) -> Result<jetstream::stream::Stream, ServiceError> {
        let config = jetstream::stream::Config {
            name: self.config.stream_name.clone(),
            subjects: vec![self.config.subjects.events_wildcard()],
            storage: StorageType::File,
            ..Default::default()
        };
        loop {
            match self.js.get_or_create_stream(config.clone()).await {
                Ok(stream) => return Ok(stream),
                Err(e) => {
                    warn!(error = %e, "JetStream stream not available yet; retrying");
                    tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
                }
            }
        }
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
        let sequence = info.state.last_sequence;
        if info.state.messages == 0 {
            if sequence > 0 {
                // Purged or expired: what it held is unknown, and republishing the whole log
                // would hand consumers every event again. An operator decides.
                return Err(ServiceError::StreamEmptied {
                    stream: self.config.stream_name.clone(),
                    last_sequence: sequence,
                });
            }
            return Ok(Tip {
                sequence,
                position: 0,
            });
        }
        let message = stream
            .get_raw_message(sequence)
            .await
            .map_err(|e| js_error("get last message")(&e))?;
        let position = message
            .headers
            .get(HEADER_POSITION)
            .and_then(|v| v.as_str().parse::<u64>().ok())
            .ok_or_else(|| ServiceError::JetStream {
                operation: "read last message",
                reason: format!("message {sequence} has no valid {HEADER_POSITION} header"),
            })?;
        Ok(Tip { sequence, position })
    }

    /// Publishes positions after `tip` up to `head`, at most one batch, pipelined. Only the
    /// batch's last message asks JetStream for an ack: every message names the sequence it
    /// must follow, so if any earlier one was not stored, the last one is refused too and the
    /// tailer resynchronises from the stream's tip.
    async fn publish_batch(&self, tip: Tip, head: u64) -> Result<Tip, ServiceError> {
        let wanted = (head - tip.position).min(self.config.publish_batch_max as u64) as usize;
        let records = self.log.read_all(tip.position + 1, wanted)?;
        let Some(last) = records.last() else {
            return Ok(tip);
        };
        let last_position = last.position;
        let mut ack = None;
        for (expected_sequence, record) in (tip.sequence..).zip(records.iter()) {
            debug_assert_eq!(
                record.position,
                tip.position + 1 + (expected_sequence - tip.sequence),
                "log positions are contiguous"
            );
            let (subject, headers, payload) =
                event_message(&self.config.subjects, record, expected_sequence)?;
            if record.position == last_position {
                let pending = self
                    .js
                    .publish_with_headers(subject, headers, payload.into())
                    .await
                    .map_err(|e| ServiceError::JetStream {
                        operation: "publish",
                        reason: e.to_string(),
                    })?;
                ack = Some(pending);
            } else {
                self.client
                    .publish_with_headers(subject, headers, payload.into())
                    .await
                    .map_err(|e| ServiceError::JetStream {
                        operation: "publish",
                        reason: e.to_string(),
                    })?;
            }
        }
        let Some(ack) = ack else {
            return Ok(tip);
        };
        let ack = ack.await.map_err(|e| ServiceError::JetStream {
            operation: "publish ack",
            reason: format!("batch ending at position {last_position}: {e}"),
        })?;
        if ack.duplicate {
            // Stored before under this position's id: the stream is not where we thought.
            return Err(ServiceError::JetStream {
                operation: "publish ack",
                reason: format!("position {last_position} was already in the stream"),
            });
        }
        let published = records.len() as u64;
        if ack.sequence != tip.sequence + published {
            return Err(ServiceError::JetStream {
                operation: "publish ack",
                reason: format!(
                    "position {last_position} stored at sequence {}, expected {}",
                    ack.sequence,
                    tip.sequence + published
                ),
            });
        }
        Ok(Tip {
            sequence: ack.sequence,
            position: last_position,
        })
    }
}

/// The JetStream message the tailer publishes for one committed record: its subject, the
/// contract's headers (with `Nats-Expected-Last-Sequence`, so JetStream refuses it unless the
/// stream ends at that sequence) and the record envelope as payload. Public so the benchmark
/// publishes exactly what the tailer does.
pub fn event_message(
    subjects: &Subjects,
    record: &Record,
    expected_last_sequence: u64,
) -> Result<(String, HeaderMap, Vec<u8>), ServiceError> {
    let bad = |reason: String| ServiceError::BadRecord {
        position: record.position,
        reason,
    };
    let aggregate = Aggregate::of_stream(&record.stream)
        .ok_or_else(|| bad(format!("stream `{}` names no aggregate", record.stream)))?;
    let payload = record.encode().map_err(|e| bad(e.to_string()))?;
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_MSG_ID, msg_id_for_position(record.position).as_str());
    headers.insert(
        HEADER_EXPECTED_LAST_SEQUENCE,
        expected_last_sequence.to_string().as_str(),
    );
    headers.insert(HEADER_POSITION, record.position.to_string().as_str());
    headers.insert(HEADER_STREAM, record.stream.as_str());
    headers.insert(HEADER_VERSION, record.stream_version.to_string().as_str());
    headers.insert(HEADER_EVENT_TYPE, record.event_type.as_str());
    headers.insert(
        HEADER_SCHEMA_VERSION,
        record.schema_version.to_string().as_str(),
    );
    headers.insert(HEADER_CONTENT_TYPE, BINCODE_CONTENT_TYPE);
    let subject = subjects.event(aggregate, &record.event_type);
    Ok((subject, headers, payload))
}
