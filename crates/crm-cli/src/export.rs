//! `crm export`: the event log as JSON Lines, from a stopped log (`--data-dir`) or from a
//! running service over `crm.log.read` (`--nats-url`). The work is in the `crm-export`
//! crate; this is the command line: options, the output, progress and the exit status.
//!
//! Every failure is one line on stderr and exit status 2; stdout (or `--out`) then holds only
//! the complete lines written before it.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use crm_export::{export_log, export_nats, open_stopped_log, Filter, NatsSource, Plan, Summary};

use crate::progress::Progress;

/// The exit status of a failed export, whatever the reason.
const EXIT_FAILED: i32 = 2;

#[derive(Args)]
pub struct ExportArgs {
    /// The data directory of a stopped `crm serve` (its log is DIR/log). A log held by a
    /// running service is refused: use --nats-url for that. Takes precedence over any NATS
    /// URL (flag or environment).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Without --data-dir: the NATS server of a running `crm serve` (--nats-url, else
    /// NATS_URL) and how to authenticate; the log is read over crm.log.read.
    #[command(flatten)]
    nats: crate::nats_opts::NatsArgs,
    #[command(flatten)]
    scope: crate::scope::ScopeArgs,
    #[command(flatten)]
    limits: crate::LimitArgs,
    /// First position to export (positions start at 1).
    #[arg(long, value_name = "P", default_value_t = 1)]
    from_position: u64,
    /// Last position to export. Default: the log's head when the export starts, so the output
    /// is a consistent prefix of the log even while commands arrive. A position beyond the
    /// head exports up to the head.
    #[arg(long, value_name = "P")]
    to_position: Option<u64>,
    /// Only events of these aggregates (comma separated): lead, customer, order, ticket,
    /// campaign, pipeline.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    aggregate: Vec<String>,
    /// Only events of these types (comma separated), e.g. LeadCreated,OrderPlaced.
    #[arg(long, value_name = "TYPES", value_delimiter = ',')]
    event_type: Vec<String>,
    /// Where the lines go; `-` is stdout.
    #[arg(long, value_name = "FILE", default_value = "-")]
    out: PathBuf,
    /// With --nats-url: how long one crm.log.head or crm.log.read request may wait, in ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    request_timeout_ms: u64,
}

/// Runs the export; on failure prints one line and exits with status 2.
pub fn run(args: ExportArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    if let Err(e) = export(args, runtime) {
        let text = format!("{e:#}");
        eprintln!(
            "crm export: {}",
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        std::process::exit(EXIT_FAILED);
    }
    Ok(())
}

fn export(args: ExportArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    // Bad options fail before anything is opened or written.
    Plan::check(Some(args.from_position), args.to_position)?;
    let filter = Filter::parse(&args.aggregate, &args.event_type)?;
    let from = Some(args.from_position);
    if let Some(data_dir) = &args.data_dir {
        let log = open_stopped_log(&data_dir.join("log"), args.limits.log_config())?;
        let plan = Plan::new(from, args.to_position, log.head())?;
        let out = output(&args.out)?;
        let mut progress = Progress::new("export", plan.len());
        let result = export_log(&log, plan, filter, out, &mut |p| {
            progress.set(p + 1 - plan.from)
        });
        log.close();
        return report(result, progress);
    }
    let Some(url) = args.nats.url() else {
        anyhow::bail!(
            "pass --data-dir DIR (a stopped service's data directory) or --nats-url URL (a running service's NATS server)"
        );
    };
    runtime.block_on(async {
        let client = args.nats.connect_once(&url, "crm export").await?;
        let source = NatsSource {
            client: client.clone(),
            subjects: args.scope.subjects(),
            record_limits: args.limits.log_config().record_limits(),
            timeout: Duration::from_millis(args.request_timeout_ms),
        };
        let plan = Plan::new(from, args.to_position, source.head().await?)?;
        let out = output(&args.out)?;
        let mut progress = Progress::new("export", plan.len());
        let result = export_nats(&source, plan, filter, out, &mut |p| {
            progress.set(p + 1 - plan.from)
        })
        .await;
        report(result, progress)
    })
}

/// Opened only once the source answered, so a failed start leaves no empty file behind.
fn output(path: &PathBuf) -> anyhow::Result<Box<dyn Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdout().lock()));
    }
    let file =
        File::create(path).with_context(|| format!("creating the output {}", path.display()))?;
    Ok(Box::new(file))
}

fn report(
    result: Result<Summary, crm_export::ExportError>,
    progress: Progress,
) -> anyhow::Result<()> {
    match result {
        Ok(summary) => {
            let positions = if summary.plan.is_empty() {
                "no positions".to_owned()
            } else {
                format!("positions {}..{}", summary.plan.from, summary.plan.to)
            };
            let seconds = progress.elapsed().as_secs_f64();
            progress.finish(&format!(
                "exported {} events ({positions}) in {seconds:.1} s",
                summary.events
            ));
            tracing::debug!(
                events = summary.events,
                from = summary.plan.from,
                to = summary.plan.to,
                seconds,
                "export finished"
            );
            Ok(())
        }
        Err(e) => {
            progress.clear();
            Err(e.into())
        }
    }
}
