//! `crm`: the CRM backend's one binary. `crm serve` runs the command service, the tailer, the
//! log read API, the projectors and their queries in one process (starting a local nats-server
//! when no URL is given); `crm project` runs one projector alone; `crm rebuild` rebuilds a
//! stopped read model; `crm verify` checks a stopped log; `crm export` writes the log as JSON
//! Lines.
//!
//! Output: stdout carries only what operators and scripts read (the readiness lines, the NATS
//! URL of a local server, verify and rebuild reports); logs go to stderr through `tracing`.

mod accounts;
mod export;
mod local_nats;
mod logging;
mod metrics;
mod nats_opts;
mod progress;
mod projections;
mod replay;
mod scope;
mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use tokio::sync::watch;
use tracing::{error, info};

use crm_eventlog::{
    EventLog, LogConfig, VerifyReport, PAYLOAD_BYTES_MAX_DEFAULT, RECORD_BYTES_MAX_DEFAULT,
};
use crm_projector::{serve_queries, LogSource, ProjectorConfig};
use crm_service::{
    serve_commands, serve_log_api, CommandHandler, HandlerConfig, ServiceConfig, Tailer,
    TailerConfig,
};
use crm_wire::{
    Subjects, COMMAND_BYTES_MAX_DEFAULT, LOG_READ_EVENTS_MAX, LOG_READ_REPLY_BYTES_MAX,
};

// How the defaults of the crates relate, checked where they meet. A command body at its
// default limit fits the log's default payload limit, so `crm serve` with defaults runs the
// log with its defaults.
const _: () = assert!(COMMAND_BYTES_MAX_DEFAULT <= PAYLOAD_BYTES_MAX_DEFAULT);
// The log's default payloads are within what the event codec encodes.
const _: () = assert!(PAYLOAD_BYTES_MAX_DEFAULT as u64 <= crm_domain::codec::PAYLOAD_BYTES_MAX);
// A full `crm.log.read` page of default-size records is within what a reader accepts.
const _: () =
    assert!(LOG_READ_EVENTS_MAX as usize * RECORD_BYTES_MAX_DEFAULT <= LOG_READ_REPLY_BYTES_MAX);

// mimalloc instead of glibc malloc: measured +20% commands/s under load (docs/PERFORMANCE.md);
// the hot path allocates across threads (tokio workers, the log writer, sled's epoch GC).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "crm",
    version,
    about = "Event-sourced CRM backend driven over NATS"
)]
struct Cli {
    /// Format of the log lines on stderr.
    #[arg(
        long,
        global = true,
        env = "CRM_LOG_FORMAT",
        value_enum,
        default_value_t = logging::LogFormat::Text
    )]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the command service, the tailer to JetStream and the log read API.
    Serve(ServeArgs),
    /// Scan a stopped log: checksums, contiguous positions, stream versions, indexes.
    Verify(VerifyArgs),
    /// Run one projector and its queries as its own process, against a running `crm serve`.
    Project(ProjectArgs),
    /// Rebuild a read model from the log into a new store, then swap it in (the projector
    /// must not be running). Reads the log over NATS with --nats-url, else the local log.
    Rebuild(ProjectArgs),
    /// Answer one query from a read model as it stood at a position or time of the log,
    /// folded into a scratch store (the live read models are not touched).
    Replay(replay::ReplayArgs),
    /// Write the event log as JSON Lines, one event per line, from a stopped log
    /// (--data-dir) or a running service (--nats-url). Exit status 2 on any failure.
    Export(export::ExportArgs),
    /// Every running instance (crm serve, crm project) in one view: the log head, what the
    /// tailer has published, each read model's state and lag, request counts.
    Status(status::StatusArgs),
    /// Exit 0 when the service answers, its log is writable and no read model has failed or
    /// lags past --lag-max-s; otherwise exit 1 with the reason on one line.
    Health(status::HealthArgs),
    /// Print the NATS account configuration of a multi-tenant deployment: the CRM account
    /// with each tenant's `crm` users and the service exports, and one account per tenant
    /// whose users keep today's subjects (docs/SCALING.md).
    NatsAccounts(accounts::AccountsArgs),
}

/// Input the user must fix (an unknown query, a cut beyond the head, ...): one line on
/// stderr and exit code 2, like a command-line error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// The size limits of the log. `crm serve` stores records up to them; every other reader of
/// the same log (verify, rebuild, a separate projector) must decode with the same ones, so
/// they are one option with one environment variable for all subcommands.
#[derive(Args, Clone, Copy)]
pub struct LimitArgs {
    /// Largest command body accepted, in bytes. The log stores event payloads up to the
    /// larger of this and its default payload limit.
    #[arg(long, env = "CRM_COMMAND_BYTES_MAX", default_value_t = COMMAND_BYTES_MAX_DEFAULT)]
    command_bytes_max: usize,
    /// sled's page cache of the event log, in MiB.
    #[arg(
        long,
        env = "CRM_LOG_CACHE_MIB",
        default_value_t = LogConfig::default().sled_cache_bytes / (1024 * 1024)
    )]
    log_cache_mib: u64,
}

impl LimitArgs {
    /// The log configuration these limits imply (the log's defaults otherwise).
    pub fn log_config(self) -> LogConfig {
        LogConfig {
            sled_cache_bytes: self.log_cache_mib.max(1).saturating_mul(1024 * 1024),
            ..LogConfig::default()
        }
        .with_payload_bytes_max(self.command_bytes_max.max(PAYLOAD_BYTES_MAX_DEFAULT))
    }
}

#[derive(Args)]
struct ProjectArgs {
    /// The read model.
    #[arg(value_parser = projections::name_parser(false))]
    name: String,
    /// Where the projection's store lives (under projections/<name>).
    #[arg(long, env = "CRM_DATA_DIR")]
    data_dir: PathBuf,
    /// The NATS server `crm serve` uses (--nats-url, else NATS_URL) and how to authenticate.
    #[command(flatten)]
    nats: nats_opts::NatsArgs,
    #[command(flatten)]
    scope: scope::ScopeArgs,
    /// The JetStream stream of events [default: CRM_EVENTS, or CRM_EVENTS_<tenant> with
    /// --tenant].
    #[arg(long, env = "CRM_STREAM_NAME", value_parser = scope::parse_stream_name)]
    stream_name: Option<String>,
    /// Which read replica of this read model this process is (1, 2, ...): each has its own
    /// durable consumer (`crm-proj-<name>` for 1, `crm-proj-<name>-r<N>` after) and its own
    /// store (under --data-dir), and all answer the model's queries in one queue group.
    #[arg(long, env = "CRM_REPLICA", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    replica: u32,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    read_models: projections::ReadModelArgs,
    /// Prometheus metrics (`crm project` only; `crm rebuild` ignores it).
    #[command(flatten)]
    metrics: metrics::MetricsArgs,
}

#[derive(Args)]
struct ServeArgs {
    /// Where the event log (and a local nats-server's store) lives.
    #[arg(long, env = "CRM_DATA_DIR")]
    data_dir: PathBuf,
    /// NATS server to use (--nats-url, else NATS_URL) and how to authenticate; without a
    /// URL a local nats-server is started (JetStream, under the data dir).
    #[command(flatten)]
    nats: nats_opts::NatsArgs,
    /// Port of the local nats-server; 0 picks a free loopback port.
    #[arg(long, env = "CRM_NATS_PORT", default_value_t = 0)]
    nats_port: u16,
    /// The nats-server binary for the local server [default: the pinned release of
    /// scripts/ensure-nats-server.sh when installed in this workspace, else nats-server on PATH].
    #[arg(long, env = "CRM_NATS_SERVER_BIN")]
    nats_server_bin: Option<String>,
    #[command(flatten)]
    scope: scope::ScopeArgs,
    /// The JetStream stream the tailer publishes to [default: CRM_EVENTS, or
    /// CRM_EVENTS_<tenant> with --tenant].
    #[arg(long, env = "CRM_STREAM_NAME", value_parser = scope::parse_stream_name)]
    stream_name: Option<String>,
    /// Replicas of the event stream when the tailer creates it (3 on a three-node JetStream
    /// cluster, so losing a node loses no stream); an existing stream with another count is
    /// updated to it.
    #[arg(long, env = "CRM_EVENTS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=5))]
    events_replicas: u32,
    #[command(flatten)]
    limits: LimitArgs,
    /// Commands handled at once.
    #[arg(long, env = "CRM_IN_FLIGHT_MAX", default_value_t = ServiceConfig::default().in_flight_max)]
    in_flight_max: usize,
    /// Aggregate states cached in memory.
    #[arg(
        long,
        env = "CRM_CACHE_ENTRIES_MAX",
        default_value_t = HandlerConfig::default().cache_entries_max
    )]
    cache_entries_max: usize,
    /// Most appends in one group commit.
    #[arg(
        long,
        env = "CRM_BATCH_APPENDS_MAX",
        default_value_t = LogConfig::default().batch_appends_max
    )]
    batch_appends_max: usize,
    /// How long the writer waits for more appends to join a batch, in microseconds.
    #[arg(
        long,
        env = "CRM_BATCH_WAIT_US_MAX",
        default_value_t = LogConfig::default().batch_wait_us_max
    )]
    batch_wait_us_max: u64,
    /// Read models to run in this process (comma separated; empty for none, when they run
    /// as their own processes with `crm project`).
    #[arg(
        long,
        env = "CRM_PROJECTIONS",
        value_delimiter = ',',
        value_parser = projections::name_parser(true),
        default_value = projections::ALL_NAMES.as_str()
    )]
    projections: Vec<String>,
    #[command(flatten)]
    read_models: projections::ReadModelArgs,
    #[command(flatten)]
    metrics: metrics::MetricsArgs,
}

#[derive(Args)]
struct VerifyArgs {
    #[arg(long, env = "CRM_DATA_DIR")]
    data_dir: PathBuf,
    #[command(flatten)]
    limits: LimitArgs,
    /// Print the report as one JSON object instead of sentences.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Long-running processes log what they do; one-shot tools only warnings, so their
    // progress and results stay readable.
    let default_level = match cli.command {
        Commands::Serve(_) | Commands::Project(_) => "info",
        _ => "warn",
    };
    logging::init(cli.log_format, default_level);
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match cli.command {
        Commands::Serve(args) => runtime.block_on(serve(args)),
        Commands::Verify(args) => verify(&args),
        Commands::Project(args) => runtime.block_on(project(args)),
        Commands::Rebuild(args) => runtime.block_on(rebuild(args)),
        Commands::Replay(args) => match runtime.block_on(replay::replay(args)) {
            Err(e) if e.is::<BadInput>() => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
            other => other,
        },
        Commands::Export(args) => export::run(args, &runtime),
        Commands::Status(args) => runtime.block_on(status::status(args)),
        Commands::Health(args) => runtime.block_on(status::health(args)),
        Commands::NatsAccounts(args) => match accounts::run(&args) {
            Err(e) if e.is::<BadInput>() => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
            other => other,
        },
    }
}

pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("log")
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Before the log opens: its writer registers its metrics when it starts.
    let metrics_on = args.metrics.install()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data dir {}", args.data_dir.display()))?;
    let log_config = LogConfig {
        batch_appends_max: args.batch_appends_max,
        batch_wait_us_max: args.batch_wait_us_max,
        ..args.limits.log_config()
    };
    let log = EventLog::open(&log_dir(&args.data_dir), log_config)
        .with_context(|| format!("opening the event log in {}", args.data_dir.display()))?;
    info!(head = log.head(), dir = %args.data_dir.display(), "event log open");

    let mut local = None;
    let nats_url = match args.nats.url() {
        Some(url) => url,
        None => {
            let server = local_nats::LocalNats::start(
                &local_nats::resolve_binary(args.nats_server_bin.as_deref()),
                &args.data_dir.join("nats"),
                args.nats_port,
            )?;
            let url = server.url();
            local = Some(server);
            url
        }
    };
    let client = args.nats.connect(&nats_url, "crm serve").await?;
    // The tailer publishes in bulk (the whole log on a first start): on a connection of its
    // own, its backlog never delays command replies, queries or the readiness flush.
    let tailer_client = args.nats.connect(&nats_url, "crm serve (tailer)").await?;
    let shown_url = nats_opts::redact_url(&nats_url);
    local_nats::check_server_version(&client, &shown_url).await?;

    let subjects = args.scope.subjects();
    let instance = crm_ops::Instance::new();
    let handler = CommandHandler::new(
        log.clone(),
        HandlerConfig {
            subjects: subjects.clone(),
            command_bytes_max: args.limits.command_bytes_max,
            cache_entries_max: args.cache_entries_max,
            ..HandlerConfig::default()
        },
    );
    // Commands stop first; the tailer, projectors and responders once the log is published.
    let (stop_commands_tx, stop_commands_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut commands = tokio::spawn(serve_commands(
        client.clone(),
        handler,
        ServiceConfig {
            in_flight_max: args.in_flight_max,
            instance: instance.clone(),
            ..ServiceConfig::default()
        },
        stop_commands_rx,
    ));
    let tailer = Tailer::new(
        log.clone(),
        tailer_client.clone(),
        TailerConfig {
            subjects: subjects.clone(),
            stream_name: args.scope.stream_name(args.stream_name.as_deref()),
            replicas: args.events_replicas as usize,
            ..TailerConfig::default()
        },
    );
    let mut published = tailer.status();
    let tailer_status = tailer.status();
    let mut tailer = tokio::spawn(tailer.run(stop_rx.clone()));
    let log_api = tokio::spawn(serve_log_api(
        client.clone(),
        log.clone(),
        subjects.clone(),
        instance.clone(),
        stop_rx.clone(),
    ));
    let names: Vec<String> = args
        .projections
        .iter()
        .filter(|n| !n.is_empty())
        .cloned()
        .collect();
    let (targets, projector_tasks) = projections::start(
        &names,
        &args.data_dir,
        &client,
        LogSource::Local(log.clone()),
        &ProjectorConfig {
            stream_name: args.scope.stream_name(args.stream_name.as_deref()),
            ..args.read_models.config(&subjects)
        },
        &stop_rx,
    )?;
    let query_names: Vec<String> = targets
        .iter()
        .flat_map(|target| target.queries().iter().map(|query| (*query).to_owned()))
        .collect();
    let status = {
        let (instance, log, targets) = (instance.clone(), log.clone(), targets.clone());
        let prefix = subjects.prefix().to_owned();
        move || crm_wire::discovery::InstanceStatus {
            instance: instance.id().to_owned(),
            role: "serve".to_owned(),
            subject_prefix: prefix.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started: instance.started(),
            log: Some({
                let tailer = tailer_status.borrow();
                crm_wire::discovery::LogStatus {
                    head: log.head(),
                    published: tailer.published,
                    writable: !log.is_failed(),
                    tailer_error: tailer.failed.clone(),
                }
            }),
            read_models: targets.iter().map(|t| t.status()).collect(),
        }
    };
    let status: crm_ops::StatusFn = Arc::new(status);
    let sampler = metrics_on.then(|| metrics::spawn_sampler(status.clone(), stop_rx.clone()));
    let discovery = tokio::spawn(crm_ops::serve_discovery(
        client.clone(),
        subjects.clone(),
        instance.clone(),
        service_description("serve", &names, &subjects),
        status,
        stop_rx.clone(),
    ));
    let queries = tokio::spawn(serve_queries(
        client.clone(),
        subjects.clone(),
        targets,
        instance.clone(),
        stop_rx.clone(),
    ));
    // The responders subscribe in their own tasks: wait until they have, then let the
    // subscriptions reach the server before announcing readiness.
    wait_until_listening(
        &instance,
        &["commands", "log.head", "log.read"],
        &query_names,
    )
    .await?;
    client
        .flush()
        .await
        .context("flushing NATS subscriptions")?;
    // Installed after the flush (a stop while still connecting ends the process) and before
    // the ready line.
    let stop_signal = stop_signal()?;
    println!(
        "crm serve ready: nats {shown_url}, commands on {}, instance {}",
        subjects.commands_wildcard(),
        instance.id()
    );
    info!(nats_url = %shown_url, instance = %instance.id(), "crm serve ready");

    // Run until a stop signal; a command service or tailer that ends on its own is a fault
    // that must not go unnoticed (commands unanswered, events unpublished).
    let fault = tokio::select! {
        () = stop_signal => None,
        ended = &mut commands => Some(format!("the command service ended: {}", task_outcome(ended))),
        ended = &mut tailer => Some(format!("the tailer ended: {}", task_outcome(ended))),
    };
    if let Some(fault) = &fault {
        error!(fault = %fault, "stopping");
    }
    info!("stopping: no new commands, finishing those in flight");
    let _ = stop_commands_tx.send(true);
    if !commands.is_finished() || fault.is_none() {
        match tokio::time::timeout(Duration::from_secs(30), &mut commands).await {
            Ok(ended) => info!(outcome = %task_outcome(ended), "command service stopped"),
            Err(_) => error!("the command service did not stop within 30 s"),
        }
    }
    // Let the tailer publish what the last commands appended before it stops.
    let head = log.head();
    // Only whether it drained in time is kept: the `Ref` that `wait_for` returns holds the
    // status lock, and a tailer still starting up would block on it in `send_modify`.
    let drained_in_time = tokio::time::timeout(
        Duration::from_secs(5),
        published.wait_for(|status| status.published >= head || status.failed.is_some()),
    )
    .await
    .is_ok();
    if !drained_in_time {
        error!(
            head,
            "the tailer did not publish up to the head within 5 s; it resumes at the next start"
        );
    }
    let _ = stop_tx.send(true);
    for task in projector_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), queries).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), discovery).await;
    if let Some(sampler) = sampler {
        let _ = tokio::time::timeout(Duration::from_secs(5), sampler).await;
    }
    for (name, task) in [("tailer", tailer), ("log API", log_api)] {
        if task.is_finished() && name == "tailer" && fault.is_some() {
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(ended) => info!(task = name, outcome = %task_outcome(ended), "stopped"),
            Err(_) => error!(task = name, "did not stop within 5 s"),
        }
    }
    log.shutdown().await;
    // Bounded: a NATS server that is gone (a local one killed with this process's group)
    // would keep a flush waiting for a reconnection for ever.
    for (name, connection) in [("commands", &client), ("tailer", &tailer_client)] {
        if tokio::time::timeout(Duration::from_secs(5), connection.flush())
            .await
            .is_err()
        {
            error!(connection = name, "NATS flush did not finish within 5 s");
        }
    }
    drop(local);
    match fault {
        None => {
            info!(head = log.head(), "stopped cleanly");
            Ok(())
        }
        Some(fault) => bail!(fault),
    }
}

/// Waits (at most 30 s) until the responders registered these endpoints and the query
/// endpoints `query.<name>` of the read models run here.
async fn wait_until_listening(
    instance: &crm_ops::Instance,
    fixed: &[&str],
    queries: &[String],
) -> anyhow::Result<()> {
    let names: Vec<String> = fixed
        .iter()
        .map(|name| (*name).to_owned())
        .chain(queries.iter().map(|query| format!("query.{query}")))
        .collect();
    if !instance
        .wait_for_endpoints(&names, Duration::from_secs(30))
        .await
    {
        bail!("the responders did not subscribe within 30 s");
    }
    Ok(())
}

/// How this process describes itself in `$SRV.INFO`: its role, read models and subject prefix
/// as metadata.
fn service_description(
    role: &str,
    read_models: &[String],
    subjects: &Subjects,
) -> crm_ops::ServiceDescription {
    crm_ops::ServiceDescription {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        description: "Event-sourced CRM backend: commands, the event log and read models over NATS"
            .to_owned(),
        metadata: [
            ("role".to_owned(), role.to_owned()),
            ("read_models".to_owned(), read_models.join(",")),
            ("subject_prefix".to_owned(), subjects.prefix().to_owned()),
        ]
        .into(),
    }
}

fn task_outcome<E: std::fmt::Display>(
    ended: Result<Result<(), E>, tokio::task::JoinError>,
) -> String {
    match ended {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(e) => format!("task failed: {e}"),
    }
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers now, before readiness is announced, so a
/// stop that follows the ready line at once is not lost to the default action; the future
/// returned waits for either.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

async fn project(args: ProjectArgs) -> anyhow::Result<()> {
    let Some(url) = args.nats.url() else {
        bail!(
            "crm project needs --nats-url (or CRM_NATS_URL, or NATS_URL): the NATS server of `crm serve`"
        );
    };
    let metrics_on = args.metrics.install()?;
    let client = args.nats.connect(&url, "crm project").await?;
    let subjects = args.scope.subjects();
    let source = LogSource::Nats {
        client: client.clone(),
        subjects: subjects.clone(),
        record_limits: args.limits.log_config().record_limits(),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let instance = crm_ops::Instance::new();
    let (targets, tasks) = projections::start(
        std::slice::from_ref(&args.name),
        &args.data_dir,
        &client,
        source,
        &ProjectorConfig {
            stream_name: args.scope.stream_name(args.stream_name.as_deref()),
            replica: args.replica,
            ..args.read_models.config(&subjects)
        },
        &stop_rx,
    )?;
    let query_names: Vec<String> = targets
        .iter()
        .flat_map(|target| target.queries().iter().map(|query| (*query).to_owned()))
        .collect();
    let status = {
        let (instance, targets) = (instance.clone(), targets.clone());
        let prefix = subjects.prefix().to_owned();
        move || crm_wire::discovery::InstanceStatus {
            instance: instance.id().to_owned(),
            role: "project".to_owned(),
            subject_prefix: prefix.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started: instance.started(),
            log: None,
            read_models: targets.iter().map(|t| t.status()).collect(),
        }
    };
    let status: crm_ops::StatusFn = Arc::new(status);
    let sampler = metrics_on.then(|| metrics::spawn_sampler(status.clone(), stop_rx.clone()));
    let discovery = tokio::spawn(crm_ops::serve_discovery(
        client.clone(),
        subjects.clone(),
        instance.clone(),
        service_description("project", std::slice::from_ref(&args.name), &subjects),
        status,
        stop_rx.clone(),
    ));
    let queries = tokio::spawn(serve_queries(
        client.clone(),
        subjects.clone(),
        targets,
        instance.clone(),
        stop_rx.clone(),
    ));
    wait_until_listening(&instance, &[], &query_names).await?;
    client.flush().await?;
    let stop_signal = stop_signal()?;
    println!(
        "crm project {} ready, instance {}",
        args.name,
        instance.id()
    );
    stop_signal.await;
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), queries).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), discovery).await;
    if let Some(sampler) = sampler {
        let _ = tokio::time::timeout(Duration::from_secs(5), sampler).await;
    }
    Ok(())
}

async fn rebuild(args: ProjectArgs) -> anyhow::Result<()> {
    match args.nats.url() {
        Some(url) => {
            let client = args.nats.connect_once(&url, "crm rebuild").await?;
            let subjects = args.scope.subjects();
            projections::rebuild(
                &args.name,
                &args.data_dir,
                LogSource::Nats {
                    client,
                    subjects,
                    record_limits: args.limits.log_config().record_limits(),
                },
                &args.read_models,
            )
            .await
        }
        None => {
            let log = EventLog::open(&log_dir(&args.data_dir), args.limits.log_config())
                .with_context(|| {
                    format!(
                        "opening the event log in {} (is crm serve running? then pass --nats-url)",
                        args.data_dir.display()
                    )
                })?;
            projections::rebuild(
                &args.name,
                &args.data_dir,
                LogSource::Local(log),
                &args.read_models,
            )
            .await
        }
    }
}

fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let data_dir = &args.data_dir;
    let log = EventLog::open(&log_dir(data_dir), args.limits.log_config())
        .with_context(|| format!("opening the event log in {}", data_dir.display()))?;
    let mut progress = projections::progress_lines("verifying", "the log");
    let report = log
        .verify_with_progress(&mut progress)
        .context("verifying the log")?;
    if args.json {
        // The report is the command's output (stdout, for scripts); logs go to stderr.
        println!("{}", verify_json(&report)?);
    } else {
        print!("{}", verify_text(&report));
    }
    // Exit status 1 when the log has problems, as before; the report is on stdout.
    if !report.is_clean() {
        bail!(
            "the log has {} problem(s) (reported on stdout)",
            report.problems_total
        );
    }
    Ok(())
}

/// The verify report as one JSON object: the report's fields plus `clean`.
fn verify_json(report: &VerifyReport) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(report).context("encoding the verify report")?;
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "clean".to_owned(),
            serde_json::Value::Bool(report.is_clean()),
        );
    }
    serde_json::to_string(&value).context("encoding the verify report")
}

/// The verify report as sentences, one line each: a summary, then one per problem listed.
fn verify_text(report: &VerifyReport) -> String {
    let checked = format!(
        "Checked {} events in {} streams ({} commands) up to position {}",
        thousands(report.records_checked),
        thousands(report.streams_checked),
        thousands(report.commands_checked),
        thousands(report.head),
    );
    if report.is_clean() {
        return format!("{checked}: no problems found.\n");
    }
    let mut text = format!(
        "{checked}: found {} {}.\n",
        thousands(report.problems_total),
        if report.problems_total == 1 {
            "problem"
        } else {
            "problems"
        }
    );
    for problem in &report.problems {
        text.push_str(&sentence(&problem.to_string()));
        text.push('\n');
    }
    let unlisted = report
        .problems_total
        .saturating_sub(report.problems.len() as u64);
    if unlisted > 0 {
        text.push_str(&format!(
            "{} more problems are not listed.\n",
            thousands(unlisted)
        ));
    }
    text
}

/// `text` as a sentence: a capital first letter and a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.trim().chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(extra: &[&str]) -> ServeArgs {
        let args = ["crm", "serve", "--data-dir", "unused"].iter().chain(extra);
        match Cli::try_parse_from(args) {
            Ok(Cli {
                command: Commands::Serve(args),
                ..
            }) => args,
            Ok(_) => panic!("not serve"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults_are_the_libraries_defaults() {
        let args = serve_args(&[]);
        assert_eq!(args.limits.log_config(), LogConfig::default());
        assert_eq!(args.projections, projections::all_names());
        assert_eq!(args.in_flight_max, ServiceConfig::default().in_flight_max);
    }

    #[test]
    fn metrics_are_off_unless_an_address_is_given() {
        // clap reads CRM_METRICS_ADDR too; a test environment that sets it is not this test's.
        if std::env::var_os("CRM_METRICS_ADDR").is_some() {
            return;
        }
        assert_eq!(serve_args(&[]).metrics.metrics_addr, None);
        let on = serve_args(&["--metrics-addr", "127.0.0.1:9464"]);
        assert_eq!(on.metrics.metrics_addr.as_deref(), Some("127.0.0.1:9464"));
        let project = Cli::try_parse_from(["crm", "project", "kpis", "--data-dir", "d"]);
        match project.map(|cli| cli.command) {
            Ok(Commands::Project(args)) => assert_eq!(args.metrics.metrics_addr, None),
            _ => panic!("crm project parses"),
        }
    }

    #[test]
    fn a_larger_command_limit_raises_the_log_limits_for_every_reader() {
        let limits = serve_args(&["--command-bytes-max", "1048576"]).limits;
        let config = limits.log_config();
        assert_eq!(config.payload_bytes_max, 1024 * 1024);
        assert_eq!(
            config.record_bytes_max,
            1024 * 1024 + crm_eventlog::ENVELOPE_BYTES_MAX
        );
        // Below the log's default payload limit, the log keeps its default.
        let smaller = serve_args(&["--command-bytes-max", "1024"]).limits;
        assert_eq!(smaller.log_config(), LogConfig::default());
    }

    fn report(problems: Vec<crm_eventlog::Problem>, total: u64) -> VerifyReport {
        VerifyReport {
            head: 1234,
            records_checked: 1234,
            streams_checked: 56,
            commands_checked: 7,
            problems,
            problems_total: total,
        }
    }

    #[test]
    fn a_clean_verify_report_reads_as_one_sentence() {
        assert_eq!(
            verify_text(&report(vec![], 0)),
            "Checked 1,234 events in 56 streams (7 commands) up to position 1,234: \
             no problems found.\n"
        );
    }

    #[test]
    fn each_problem_is_one_sentence_and_unlisted_ones_are_counted() {
        let problems = vec![
            crm_eventlog::Problem::BadRecord {
                position: 3,
                reason: "checksum mismatch".into(),
            },
            crm_eventlog::Problem::PositionGap { from: 5, to: 6 },
        ];
        let text = verify_text(&report(problems, 1003));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].ends_with(": found 1,003 problems."), "{text}");
        assert_eq!(lines[1], "Position 3: bad record: checksum mismatch.");
        assert_eq!(lines[2], "Positions 5..=6 are missing.");
        assert_eq!(lines[3], "1,001 more problems are not listed.");
        assert!(!text.contains('{'), "no Debug output: {text}");
    }

    #[test]
    fn the_json_verify_report_carries_every_field_and_clean() {
        let json = verify_json(&report(vec![], 0)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["clean"], true);
        assert_eq!(value["records_checked"], 1234);
        assert_eq!(value["streams_checked"], 56);
        assert_eq!(value["problems_total"], 0);
        assert_eq!(value["problems"], serde_json::json!([]));
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn log_format_and_nats_options_parse_for_every_connecting_subcommand() {
        for sub in [
            vec!["crm", "serve", "--data-dir", "d"],
            vec!["crm", "project", "kpis", "--data-dir", "d"],
            vec!["crm", "rebuild", "kpis", "--data-dir", "d"],
        ] {
            let args = sub.iter().copied().chain([
                "--log-format",
                "json",
                "--nats-creds",
                "c.creds",
                "--nats-tls-ca",
                "ca.pem",
                "--nats-tls-cert",
                "c.pem",
                "--nats-tls-key",
                "k.pem",
            ]);
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{sub:?}: {e}"));
            assert_eq!(cli.log_format, logging::LogFormat::Json);
        }
        let verify = Cli::try_parse_from([
            "crm",
            "--log-format",
            "json",
            "verify",
            "--data-dir",
            "d",
            "--json",
        ]);
        assert!(verify.is_ok());
        let both = Cli::try_parse_from([
            "crm",
            "serve",
            "--data-dir",
            "d",
            "--nats-creds",
            "a",
            "--nats-nkey",
            "b",
        ]);
        assert!(both.is_err(), "creds and nkey conflict");
    }
}
