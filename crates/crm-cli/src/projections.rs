//! The three read models by name, and running them: inside `crm serve`, as their own
//! process (`crm project <name>`), or rebuilt from the log (`crm rebuild <name>`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

use crm_proj_customers::CustomersProjection;
use crm_proj_funnel::FunnelProjection;
use crm_proj_kpis::KpiProjection;
use crm_projector::{
    rebuild_into, versions, LogSource, Projection, Projector, ProjectorConfig, QueryTarget,
};
use crm_wire::Subjects;

pub const NAMES: [&str; 3] = ["customers", "funnel", "kpis"];

/// Running projectors: what the query responders serve, and the tasks to await on shutdown.
pub type Started = (Vec<Arc<dyn QueryTarget>>, Vec<JoinHandle<()>>);

pub fn store_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("projections").join(name)
}

/// Starts the projectors named in `names`; returns their query targets and tasks.
pub fn start(
    names: &[String],
    data_dir: &Path,
    client: &async_nats::Client,
    source: LogSource,
    subjects: &Subjects,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Started> {
    let mut targets: Vec<Arc<dyn QueryTarget>> = Vec::new();
    let mut tasks = Vec::new();
    for name in names {
        let config = ProjectorConfig {
            subjects: subjects.clone(),
            ..ProjectorConfig::default()
        };
        let dir = store_dir(data_dir, name);
        std::fs::create_dir_all(dir.parent().unwrap_or(data_dir))?;
        let (target, task) = match name.as_str() {
            "customers" => spawn(
                CustomersProjection::new(),
                &dir,
                client,
                source.clone(),
                config,
                stop,
            )?,
            "funnel" => spawn(
                FunnelProjection::new(),
                &dir,
                client,
                source.clone(),
                config,
                stop,
            )?,
            "kpis" => spawn(
                KpiProjection::new(),
                &dir,
                client,
                source.clone(),
                config,
                stop,
            )?,
            other => bail!("unknown projection `{other}`; known: {}", NAMES.join(", ")),
        };
        targets.push(target);
        tasks.push(task);
    }
    Ok((targets, tasks))
}

fn spawn<P: Projection + Default>(
    projection: P,
    dir: &Path,
    client: &async_nats::Client,
    source: LogSource,
    config: ProjectorConfig,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<(Arc<dyn QueryTarget>, JoinHandle<()>)> {
    let projector = Projector::open_root(projection, dir, source, config)
        .with_context(|| format!("opening the projection store {}", dir.display()))?;
    let handle = projector.handle();
    let client = client.clone();
    let stop = stop.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = projector.run(client, stop).await {
            error!(error = %e, "projector stopped; its status says why");
        }
    });
    Ok((Arc::new(handle), task))
}

/// Rebuilds `name` from the log into the next store version beside the live one, then makes
/// it current (an atomic rename) and removes the old one.
pub async fn rebuild(name: &str, data_dir: &Path, source: LogSource) -> anyhow::Result<()> {
    let root = store_dir(data_dir, name);
    let (version, fresh) = versions::next_dir(&root)?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let progress = move |position: u64, head: u64| {
        if last_report.elapsed().as_millis() >= 1000 || position == head {
            last_report = Instant::now();
            let rate = position as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let eta = (head - position) as f64 / rate.max(1.0);
            eprintln!(
                "rebuilding {name}: {position}/{head} events, {rate:.0} events/s, ETA {eta:.0} s"
            );
        }
    };
    let report = match name {
        "customers" => {
            rebuild_into(CustomersProjection::new(), &fresh, source, 4096, progress).await
        }
        "funnel" => rebuild_into(FunnelProjection::new(), &fresh, source, 4096, progress).await,
        "kpis" => rebuild_into(KpiProjection::new(), &fresh, source, 4096, progress).await,
        other => bail!("unknown projection `{other}`; known: {}", NAMES.join(", ")),
    }
    .with_context(|| format!("rebuilding {name}"))?;
    versions::make_current(&root, &version)
        .with_context(|| format!("making {} current", fresh.display()))?;
    versions::remove_stale(&root)?;
    info!(
        projection = name,
        position = report.position,
        events_per_second = report.events_per_second,
        "rebuilt"
    );
    println!(
        "rebuilt {name} to position {} in {:.1} s ({:.0} events/s); store hash {}",
        report.position,
        report.elapsed.as_secs_f64(),
        report.events_per_second,
        report
            .store_hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    Ok(())
}
