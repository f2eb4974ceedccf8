//! The read models of `crm_read_models::ALL`, run: inside `crm serve`, as their own process
//! (`crm project <name>`), rebuilt from the log (`crm rebuild <name>`) or replayed into a
//! scratch store (`crm replay <name>`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::builder::{PossibleValue, PossibleValuesParser};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crm_projector::{versions, LogSource, ProjectorConfig, QueryTarget, ReadModelKind};
use crm_wire::Subjects;

/// How much memory each read model may use beyond its store.
#[derive(clap::Args, Debug, Clone)]
pub struct ReadModelArgs {
    /// Decoded rows each read model keeps cached, in MiB; every other row is read from its
    /// store when needed.
    #[arg(long, env = "CRM_READ_CACHE_MIB", default_value_t = 32)]
    pub read_cache_mib: usize,
    /// sled's page cache of each read model's store, in MiB.
    #[arg(long, env = "CRM_STORE_CACHE_MIB", default_value_t = 32)]
    pub store_cache_mib: u64,
    /// Changed rows a rebuild holds in memory before it writes them to the new store.
    #[arg(
        long,
        env = "CRM_REBUILD_COMMIT_ROWS",
        default_value_t = crm_projector::REBUILD_COMMIT_ROWS_DEFAULT
    )]
    pub rebuild_commit_rows: usize,
}

impl ReadModelArgs {
    pub fn config(&self, subjects: &Subjects) -> ProjectorConfig {
        ProjectorConfig {
            subjects: subjects.clone(),
            read_cache_bytes: self.read_cache_mib.saturating_mul(1024 * 1024),
            store_cache_bytes: self.store_cache_mib.saturating_mul(1024 * 1024),
            rebuild_commit_rows: self.rebuild_commit_rows.max(1),
            ..ProjectorConfig::default()
        }
    }
}

/// Running projectors: what the query responders serve, and the tasks to await on shutdown.
pub type Started = (Vec<Arc<dyn QueryTarget>>, Vec<JoinHandle<()>>);

/// Parses a read model's name; `--help` lists the registry. With `allow_none`, an empty
/// value (none at all) is accepted too, unlisted.
pub fn name_parser(allow_none: bool) -> PossibleValuesParser {
    let names = crm_read_models::names().into_iter().map(PossibleValue::new);
    let none = allow_none.then(|| PossibleValue::new("").hide(true));
    PossibleValuesParser::new(names.chain(none))
}

/// Every read model's name: what `crm serve` runs by default.
pub fn all_names() -> Vec<String> {
    crm_read_models::names()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// [`all_names`], comma separated, as `--projections` takes them.
pub static ALL_NAMES: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| all_names().join(","));

pub fn store_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("projections").join(name)
}

fn kind(name: &str) -> anyhow::Result<&'static dyn ReadModelKind> {
    Ok(crm_read_models::find(name)?)
}

/// Starts the projectors named in `names`; returns their query targets and tasks.
pub fn start(
    names: &[String],
    data_dir: &Path,
    client: &async_nats::Client,
    source: LogSource,
    config: &ProjectorConfig,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Started> {
    let mut targets: Vec<Arc<dyn QueryTarget>> = Vec::new();
    let mut tasks = Vec::new();
    for name in names {
        let kind = kind(name)?;
        let config = config.clone();
        let dir = store_dir(data_dir, kind.name());
        std::fs::create_dir_all(dir.parent().unwrap_or(data_dir))?;
        let (target, task) = kind
            .start(&dir, client.clone(), source.clone(), config, stop.clone())
            .with_context(|| format!("opening the projection store {}", dir.display()))?;
        targets.push(target);
        tasks.push(task);
    }
    Ok((targets, tasks))
}

/// Progress of a fold over the log (`position` of `head`) on stderr: a bar on a terminal,
/// plain lines otherwise (see `progress.rs`); the bar is replaced by a summary at the end.
pub fn progress_lines(what: &'static str, name: &str) -> impl FnMut(u64, u64) + Send + 'static {
    let label = format!("{what} {name}");
    let mut progress: Option<crate::progress::Progress> = None;
    let mut finished = false;
    move |position: u64, head: u64| {
        if finished {
            return;
        }
        let bar = progress.get_or_insert_with(|| crate::progress::Progress::new(&label, head));
        bar.set(position);
        if position >= head {
            finished = true;
            if let Some(bar) = progress.take() {
                let seconds = bar.elapsed().as_secs_f64();
                bar.finish(&format!(
                    "{label}: {} events in {seconds:.1} s",
                    crate::thousands(position)
                ));
            }
        }
    }
}

/// Rebuilds `name` from the log into the next store version beside the live one, then makes
/// it current (an atomic rename) and removes the old one.
pub async fn rebuild(
    name: &str,
    data_dir: &Path,
    source: LogSource,
    memory: &ReadModelArgs,
) -> anyhow::Result<()> {
    let kind = kind(name)?;
    let root = store_dir(data_dir, kind.name());
    let (version, fresh) = versions::next_dir(&root)?;
    let mut progress = progress_lines("rebuilding", name);
    let report = kind
        .rebuild_into(
            &fresh,
            source,
            ProjectorConfig {
                catch_up_page_events_max: 4096,
                ..memory.config(&Subjects::default())
            },
            &mut progress,
        )
        .await
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
