//! `--metrics-addr`: Prometheus metrics over HTTP for `crm serve` and `crm project`
//! (metrics-exporter-prometheus's recorder and its HTTP listener; every metric is listed in
//! docs/OPERATIONS.md). Off by default: then no recorder is installed, the `metrics` macros in
//! the libraries stay no-ops and no sampling task runs.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::time::Duration;

use anyhow::{bail, Context as _};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio::sync::watch;
use tracing::info;

/// How often the gauges that copy the instance's status (log head, tailer, read models) are
/// refreshed.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(1);

/// Histogram buckets of durations, in seconds: 50 us to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Histogram buckets of group-commit sizes (events or appends per batch), powers of two.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

#[derive(clap::Args, Clone, Debug, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics over HTTP on this HOST:PORT (any path, e.g. /metrics).
    /// Off when not given.
    #[arg(long, env = "CRM_METRICS_ADDR", value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
}

impl MetricsArgs {
    /// Installs the recorder and starts the HTTP listener when an address was given; true
    /// then. Call it inside the runtime, before anything registers metrics (the log's writer,
    /// the endpoints): handles taken before it stay no-ops.
    pub fn install(&self) -> anyhow::Result<bool> {
        let Some(addr) = &self.metrics_addr else {
            return Ok(false);
        };
        let addr = resolve(addr)?;
        PrometheusBuilder::new()
            .with_http_listener(addr)
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(crm_eventlog::metrics::BATCH_EVENTS.to_owned()),
                    BATCH_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(crm_eventlog::metrics::BATCH_APPENDS.to_owned()),
                    BATCH_BUCKETS,
                )
            })
            .context("configuring the metrics exporter")?
            .install()
            .with_context(|| format!("serving metrics on {addr}"))?;
        crm_ops::metrics::describe();
        crm_eventlog::metrics::describe();
        info!(addr = %addr, "metrics listening (Prometheus text format over HTTP)");
        Ok(true)
    }
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    let mut found = addr
        .to_socket_addrs()
        .with_context(|| format!("--metrics-addr {addr}: expected HOST:PORT"))?;
    match found.next() {
        Some(addr) => Ok(addr),
        None => bail!("--metrics-addr {addr}: the host resolves to no address"),
    }
}

/// Starts the task that copies the instance's status into the gauges, until `stop`.
pub fn spawn_sampler(
    status: crm_ops::StatusFn,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(crm_ops::metrics::sample_status(status, SAMPLE_PERIOD, stop))
}
