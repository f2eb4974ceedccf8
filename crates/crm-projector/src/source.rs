//! Where missing events come from: the log itself (same process, or an offline copy) or the
//! `crm.log.read` API over NATS.

use std::time::Duration;

use crm_domain::{codec, Timestamp};
use crm_eventlog::{EventLog, Record, RecordLimits};
use crm_wire::{LogHeadReply, LogReadReply, LogReadRequest, Subjects, LOG_READ_EVENTS_MAX};

use crate::projection::EventEnvelope;
use crate::ProjectorError;

/// How long one `crm.log.read` may take.
const LOG_READ_TIMEOUT_MS: u64 = 10_000;

#[derive(Clone)]
pub enum LogSource {
    Local(EventLog),
    Nats {
        client: async_nats::Client,
        subjects: Subjects,
        /// The limits of the log behind `crm.log.read` (its `LogConfig::record_limits`), so
        /// records are decoded here as the log itself would.
        record_limits: RecordLimits,
    },
}

impl LogSource {
    /// The limits records of this log are decoded with, wherever they arrive from.
    pub fn record_limits(&self) -> RecordLimits {
        match self {
            LogSource::Local(log) => log.record_limits(),
            LogSource::Nats { record_limits, .. } => *record_limits,
        }
    }

    pub async fn head(&self) -> Result<u64, ProjectorError> {
        match self {
            LogSource::Local(log) => Ok(log.head()),
            LogSource::Nats {
                client, subjects, ..
            } => {
                let reply = request(client, subjects.log_head(), Vec::new()).await?;
                let head: LogHeadReply = serde_json::from_slice(&reply)
                    .map_err(|e| ProjectorError::nats("crm.log.head reply", e))?;
                Ok(head.head)
            }
        }
    }

    /// Up to `max` records from position `from`, in order.
    pub async fn read(&self, from: u64, max: usize) -> Result<Vec<Record>, ProjectorError> {
        match self {
            LogSource::Local(log) => {
                // Disk reads off the async workers: a catch-up of a big log must not stall the
                // command service and the responders sharing them.
                let log = log.clone();
                Ok(tokio::task::spawn_blocking(move || log.read_all(from, max)).await??)
            }
            LogSource::Nats {
                client,
                subjects,
                record_limits,
            } => {
                let request_body = serde_json::to_vec(&LogReadRequest {
                    from,
                    max: (max as u64).min(LOG_READ_EVENTS_MAX),
                    format: None,
                })
                .map_err(|e| ProjectorError::nats("encode crm.log.read", e))?;
                let reply = request(client, subjects.log_read(), request_body).await?;
                let page = LogReadReply::decode(&reply)
                    .map_err(|e| ProjectorError::nats("crm.log.read reply", e))?;
                page.records
                    .iter()
                    .map(|bytes| {
                        Record::decode(bytes, record_limits).map_err(|e| {
                            ProjectorError::BadRecord {
                                position: from,
                                reason: e.to_string(),
                            }
                        })
                    })
                    .collect()
            }
        }
    }
}

async fn request(
    client: &async_nats::Client,
    subject: String,
    body: Vec<u8>,
) -> Result<bytes::Bytes, ProjectorError> {
    let reply = tokio::time::timeout(
        Duration::from_millis(LOG_READ_TIMEOUT_MS),
        client.request(subject, body.into()),
    )
    .await
    .map_err(|_| ProjectorError::nats("log request", "timed out"))?
    .map_err(|e| ProjectorError::nats("log request", e))?;
    if reply
        .headers
        .as_ref()
        .and_then(|h| h.get(crm_wire::HEADER_SERVICE_ERROR_CODE))
        .is_some()
    {
        return Err(ProjectorError::nats(
            "log request",
            String::from_utf8_lossy(&reply.payload),
        ));
    }
    Ok(reply.payload)
}

/// Decodes a stored record into what projections see; an unknown type or schema version is
/// an error that stops the projection, never a skip.
pub fn envelope_of(record: &Record) -> Result<EventEnvelope, ProjectorError> {
    let stamped = codec::decode_event(&record.event_type, record.schema_version, &record.payload)
        .map_err(|e| ProjectorError::UnknownEvent {
        position: record.position,
        reason: e.to_string(),
    })?;
    Ok(EventEnvelope {
        position: record.position,
        stream: record.stream.clone(),
        stream_version: record.stream_version,
        command_id: record.command_id,
        recorded_at: Timestamp::from_micros(record.recorded_at_us),
        occurred_at: stamped.occurred_at,
        event: stamped.event,
    })
}
