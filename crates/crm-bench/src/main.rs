//! `crm-bench`: measures the system's hot paths next to the machine's own ceilings, measured in
//! the same run (docs/DESIGN.md rule 18). One module per subcommand; run in release mode:
//! `cargo run --release -p crm-bench -- <subcommand>`. Results go to stdout (`println!`) as the
//! Markdown tables recorded in docs/PERFORMANCE.md; progress and per-round detail to stderr.

mod commands;
mod cpu;
mod eventlog;
mod export;
mod fill;
mod latency;
mod metrics_cost;
mod projections;
mod start;
mod tenants;

use clap::{Parser, Subcommand};

// The same allocator as `crm` (crm-cli), so the figures are those of the shipped binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "crm-bench",
    about = "Benchmarks against the machine's own ceilings"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Durable group-commit appends and full-log scans, next to raw sled.
    Eventlog(eventlog::Args),
    /// Commands over NATS next to a raw request/reply echo on the same server.
    Commands(commands::Args),
    /// Read-model rebuilds next to raw scan + decode; command -> read-model visibility.
    Projections(projections::Args),
    /// `crm export` into a sink next to `EventLog::read_all` of the same log.
    Export(export::Args),
    /// Write a big realistic mixed log into a data directory (for figures at 10M events).
    Fill(fill::Args),
    /// Commands/s of the `crm serve` binary without and with `--metrics-addr`, alternated.
    MetricsCost(metrics_cost::Args),
    /// `crm serve` on a filled data directory: time to `ready`, memory until caught up.
    Start(start::Args),
    /// Aggregate commands/s of 1, 2, 4 tenants (one `crm serve` each) against one; R3 events
    /// against R1 at a fixed rate: reply latency and visibility.
    Tenants(tenants::Args),
}

/// The runtime every benchmark uses: two workers, like the machine's two cores.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs a benchmark's async body on [`runtime`].
pub(crate) fn block_on<F: std::future::Future>(body: F) -> anyhow::Result<F::Output> {
    Ok(runtime()?.block_on(body))
}

/// The `crm` binary a benchmark runs: `given`, or `crm` beside this benchmark's binary.
pub(crate) fn crm_bin(given: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context as _;
    let crm_bin = match given {
        Some(path) => path.to_owned(),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark's directory")?
            .join("crm"),
    };
    anyhow::ensure!(
        crm_bin.exists(),
        "{} not found: build it (cargo build --release -p crm-cli) or pass --crm-bin",
        crm_bin.display()
    );
    Ok(crm_bin)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Eventlog(args) => eventlog::run(args),
        Command::Commands(args) => commands::run(args),
        Command::Projections(args) => projections::run(args),
        Command::Export(args) => export::run(args),
        Command::Fill(args) => fill::run(args),
        Command::MetricsCost(args) => metrics_cost::run(args),
        Command::Start(args) => start::run(args),
        Command::Tenants(args) => tenants::run(args),
    }
}
