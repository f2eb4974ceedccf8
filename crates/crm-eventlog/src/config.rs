//! Limits and tuning of the log. Every limit has a unit last in its name.

use crate::clock::LogClock;
use crate::error::LogError;
use crate::record::{self, RecordLimits};

/// Default most bytes of one event's payload (docs/DESIGN.md rule 15: 64 KiB).
pub const PAYLOAD_BYTES_MAX_DEFAULT: usize = 64 * 1024;
/// Room for a record's envelope (header, names, metadata, checksum) above its payload.
pub const ENVELOPE_BYTES_MAX: usize = 4 * 1024;
/// Default most bytes of one encoded record: the payload and its envelope.
pub const RECORD_BYTES_MAX_DEFAULT: usize = PAYLOAD_BYTES_MAX_DEFAULT + ENVELOPE_BYTES_MAX;
const STREAM_BYTES_MAX_DEFAULT: usize = 256;
const EVENT_TYPE_BYTES_MAX_DEFAULT: usize = 128;
const METADATA_BYTES_MAX_DEFAULT: usize = 256;

// The envelope room holds the largest envelope the default limits allow, so a payload at
// its limit always fits in a record; and the payload length fits the format's u32.
const _: () = assert!(
    record::encoded_len(
        STREAM_BYTES_MAX_DEFAULT,
        EVENT_TYPE_BYTES_MAX_DEFAULT,
        [Some(METADATA_BYTES_MAX_DEFAULT); 3],
        0,
    ) <= ENVELOPE_BYTES_MAX
);
const _: () = assert!(PAYLOAD_BYTES_MAX_DEFAULT as u64 <= u32::MAX as u64);

/// Configuration of an [`EventLog`](crate::EventLog). `Default` gives production values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Most appends (commands) in one group commit.
    pub batch_appends_max: usize,
    /// Most events in one group commit; an append that would overflow it waits for the next.
    pub batch_events_max: usize,
    /// How long the writer waits for more appends after the first of a batch, in microseconds.
    /// 0 means "take what is queued": appends that arrive during a flush form the next batch,
    /// which already batches well under load and adds no latency when idle.
    pub batch_wait_us_max: u64,
    /// Appends queued for the writer before `append` waits (back-pressure).
    pub queue_depth_max: usize,
    /// Most events in one append request.
    pub append_events_max: usize,
    /// Most bytes of one event's payload ([`PAYLOAD_BYTES_MAX_DEFAULT`] by default).
    pub payload_bytes_max: usize,
    /// Most bytes of one encoded record, envelope included ([`RECORD_BYTES_MAX_DEFAULT`]).
    pub record_bytes_max: usize,
    /// Most bytes of a stream name.
    pub stream_bytes_max: usize,
    /// Most bytes of an event type name.
    pub event_type_bytes_max: usize,
    /// Most bytes of each of actor, correlation id and causation id.
    pub metadata_bytes_max: usize,
    /// Most records returned by one `read_all` or `read_stream` call.
    pub read_page_events_max: usize,
    /// Most problems a `verify` report lists (it still counts all of them).
    pub verify_problems_max: usize,
    /// Stream heads the writer keeps in memory so it rarely reads the store to check an
    /// expected version; the cache is cleared when it reaches this size.
    pub stream_cache_entries_max: usize,
    /// sled's page cache size, in bytes.
    pub sled_cache_bytes: u64,
    /// Where the writer reads `recorded_at` from: the system clock unless a test injects
    /// another. Whatever it says, stamps never go below the newest stored one (docs/DESIGN.md
    /// rule 13).
    pub clock: LogClock,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            batch_appends_max: 1024,
            batch_events_max: 8192,
            batch_wait_us_max: 0,
            queue_depth_max: 4096,
            append_events_max: 1024,
            payload_bytes_max: PAYLOAD_BYTES_MAX_DEFAULT,
            record_bytes_max: RECORD_BYTES_MAX_DEFAULT,
            stream_bytes_max: STREAM_BYTES_MAX_DEFAULT,
            event_type_bytes_max: EVENT_TYPE_BYTES_MAX_DEFAULT,
            metadata_bytes_max: METADATA_BYTES_MAX_DEFAULT,
            read_page_events_max: 4096,
            verify_problems_max: 10_000,
            stream_cache_entries_max: 100_000,
            sled_cache_bytes: 128 * 1024 * 1024,
            clock: LogClock::system(),
        }
    }
}

impl LogConfig {
    /// This configuration with payloads of up to `payload_bytes_max` bytes and records of up
    /// to that plus [`ENVELOPE_BYTES_MAX`]: the one way a caller raises the payload limit.
    pub fn with_payload_bytes_max(self, payload_bytes_max: usize) -> LogConfig {
        LogConfig {
            payload_bytes_max,
            record_bytes_max: payload_bytes_max.saturating_add(ENVELOPE_BYTES_MAX),
            ..self
        }
    }

    /// The decode limits implied by this configuration.
    pub fn record_limits(&self) -> RecordLimits {
        RecordLimits {
            record_bytes_max: self.record_bytes_max,
            payload_bytes_max: self.payload_bytes_max,
            string_bytes_max: self
                .stream_bytes_max
                .max(self.event_type_bytes_max)
                .max(self.metadata_bytes_max),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), LogError> {
        let checks: [(bool, &'static str, &'static str); 9] = [
            (
                self.batch_appends_max > 0,
                "batch_appends_max",
                "must be > 0",
            ),
            (self.batch_events_max > 0, "batch_events_max", "must be > 0"),
            (self.queue_depth_max > 0, "queue_depth_max", "must be > 0"),
            (
                self.append_events_max > 0 && self.append_events_max <= self.batch_events_max,
                "append_events_max",
                "must be > 0 and <= batch_events_max",
            ),
            (
                self.stream_bytes_max > 0 && self.stream_bytes_max <= u16::MAX as usize,
                "stream_bytes_max",
                "must be in 1..=65535",
            ),
            (
                self.event_type_bytes_max > 0 && self.event_type_bytes_max <= u16::MAX as usize,
                "event_type_bytes_max",
                "must be in 1..=65535",
            ),
            (
                self.metadata_bytes_max <= u16::MAX as usize,
                "metadata_bytes_max",
                "must be <= 65535",
            ),
            (
                self.payload_bytes_max <= u32::MAX as usize
                    && self.record_bytes_max > self.payload_bytes_max,
                "record_bytes_max",
                "must be above payload_bytes_max (which must fit in u32)",
            ),
            (
                self.read_page_events_max > 0,
                "read_page_events_max",
                "must be > 0",
            ),
        ];
        for (ok, field, reason) in checks {
            if !ok {
                return Err(LogError::InvalidConfig { field, reason });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_the_payload_limit_keeps_the_default_envelope_room() {
        let default = LogConfig::default();
        assert_eq!(
            default
                .clone()
                .with_payload_bytes_max(PAYLOAD_BYTES_MAX_DEFAULT),
            default
        );
        let raised = LogConfig::default().with_payload_bytes_max(1024 * 1024);
        assert_eq!(raised.record_bytes_max, 1024 * 1024 + ENVELOPE_BYTES_MAX);
        assert!(raised.validate().is_ok());
        assert_eq!(RecordLimits::default(), default.record_limits());
    }
}
