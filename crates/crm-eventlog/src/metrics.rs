//! The writer's Prometheus metrics, through the `metrics` facade (no-ops until a binary
//! installs a recorder). Handles are registered once, when the writer thread starts, and
//! recorded once per batch.

use metrics::Histogram;

/// Events written per group commit (histogram).
pub const BATCH_EVENTS: &str = "crm_log_batch_events";
/// Appends (commands) per group commit, those refused by the writer included (histogram).
pub const BATCH_APPENDS: &str = "crm_log_batch_appends";
/// Seconds one group commit's flush took (histogram).
pub const FLUSH_DURATION_SECONDS: &str = "crm_log_flush_duration_seconds";

/// The help texts of the writer's metrics. Call once after installing a recorder.
pub fn describe() {
    metrics::describe_histogram!(
        BATCH_EVENTS,
        "Events written per group commit of the log writer"
    );
    metrics::describe_histogram!(
        BATCH_APPENDS,
        "Appends (commands) per group commit of the log writer"
    );
    metrics::describe_histogram!(
        FLUSH_DURATION_SECONDS,
        "Seconds the flush of one group commit took (the batch is durable after it)"
    );
}

pub(crate) struct WriterMetrics {
    pub(crate) batch_events: Histogram,
    pub(crate) batch_appends: Histogram,
    pub(crate) flush_seconds: Histogram,
}

impl WriterMetrics {
    pub(crate) fn register() -> WriterMetrics {
        WriterMetrics {
            batch_events: metrics::histogram!(BATCH_EVENTS),
            batch_appends: metrics::histogram!(BATCH_APPENDS),
            flush_seconds: metrics::histogram!(FLUSH_DURATION_SECONDS),
        }
    }
}
