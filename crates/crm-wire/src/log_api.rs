//! `crm.log.head` and `crm.log.read`: the log read API for gap filling, analysts and new
//! projections.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crm_domain::{Event, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHeadReply {
    pub head: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogReadFormat {
    /// Stored envelopes, bincode, CRC-checked by the reader (`crm_eventlog::Record::decode`).
    #[default]
    Bincode,
    /// Decoded events, for people and other languages.
    Json,
}

/// `{"from": P, "max": M, "format"?: "json"}`, always sent as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogReadRequest {
    pub from: u64,
    pub max: u64,
    #[serde(default)]
    pub format: Option<LogReadFormat>,
}

/// The reply: the head at the time of reading and up to `max` events from `from`.
/// Bincode form: `records` are encoded envelopes. JSON form: `events` are decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogReadReply {
    pub head: u64,
    pub records: Vec<Vec<u8>>,
}

/// One event in a JSON `crm.log.read` reply: `{"head": N, "events": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEventJson {
    pub position: u64,
    pub stream: String,
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u16,
    pub command_id: Uuid,
    pub recorded_at: Timestamp,
    pub occurred_at: Timestamp,
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub event: Event,
}

/// Largest `crm.log.read` reply body accepted by a reader: a page of up to
/// `LOG_READ_EVENTS_MAX` records of at most 68 KiB each, with headroom.
pub const LOG_READ_REPLY_BYTES_MAX: usize = 80 * 1024 * 1024;

impl LogReadReply {
    pub fn encode(&self) -> Vec<u8> {
        use bincode::Options;
        crate::codec::wire_bincode(usize::MAX)
            .serialize(self)
            .unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<LogReadReply, crate::WireError> {
        use bincode::Options;
        crate::codec::wire_bincode(LOG_READ_REPLY_BYTES_MAX)
            .deserialize(bytes)
            .map_err(|e| crate::WireError::Malformed {
                reason: e.to_string(),
            })
    }
}
