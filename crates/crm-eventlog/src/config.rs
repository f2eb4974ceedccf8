//! Limits and tuning of the log. Every limit has a unit last in its name.

use crate::error::LogError;
use crate::record::RecordLimits;

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
    /// Most bytes of one event's payload (design rule 15: 64 KiB by default).
    pub payload_bytes_max: usize,
    /// Most bytes of one encoded record, envelope included.
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
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            batch_appends_max: 1024,
            batch_events_max: 8192,
            batch_wait_us_max: 0,
            queue_depth_max: 4096,
            append_events_max: 1024,
            payload_bytes_max: 64 * 1024,
            record_bytes_max: 68 * 1024,
            stream_bytes_max: 256,
            event_type_bytes_max: 128,
            metadata_bytes_max: 256,
            read_page_events_max: 4096,
            verify_problems_max: 10_000,
            stream_cache_entries_max: 100_000,
            sled_cache_bytes: 128 * 1024 * 1024,
        }
    }
}

impl LogConfig {
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
