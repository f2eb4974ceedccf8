//! `crm serve` on a big data directory (one `crm-bench fill` wrote): how long from process
//! start to the `ready` line, and the process's resident memory at `ready`, while the read
//! models and the tailer catch up, and once everything is at the log's head.
//!
//! `crm serve` starts its own nats-server (JetStream under the data directory), as a user's
//! first `crm serve --data-dir` does, so a second run measures a restart with every read model
//! and the stream already caught up. Memory is `crm serve`'s own (VmRSS/VmHWM from `/proc`);
//! the nats-server child is reported on its own line. The report goes to stdout, as every
//! benchmark's does.

use std::path::PathBuf;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use crm_testkit::ChildProcess;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data directory (`<dir>/log` holds the log; read models and JetStream go beside it).
    #[arg(long)]
    data_dir: PathBuf,
    /// The `crm` binary [default: `crm` beside this benchmark's binary].
    #[arg(long)]
    crm_bin: Option<PathBuf>,
    /// Give up waiting for the catch-up after this many seconds.
    #[arg(long, default_value_t = 7200)]
    timeout_s: u64,
    /// Stop once the read models are at the head, without waiting for the tailer.
    #[arg(long)]
    read_models_only: bool,
    /// Extra arguments for `crm serve` (e.g. `--serve-arg=--read-cache-mib=64`).
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::block_on(run_async(args))?
}

/// One memory reading of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
    }
}

/// The nats-server started by `crm serve`: its child process.
fn child_pids(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let crm_bin = crate::crm_bin(args.crm_bin.as_deref())?;
    anyhow::ensure!(
        args.data_dir.join("log").exists(),
        "{} holds no log: fill it first (crm-bench fill --data-dir ...)",
        args.data_dir.display()
    );
    let mut command = Process::new(&crm_bin);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(&args.data_dir)
        .args(&args.serve_args)
        .env("RUST_LOG", "warn")
        .env_remove("NATS_URL")
        .env_remove("CRM_NATS_URL");
    let started = Instant::now();
    let mut serve = ChildProcess::spawn(command)?;
    if let Err(e) = serve.wait_for_line("crm serve ready", Duration::from_secs(args.timeout_s)) {
        bail!("crm serve not ready: {e}\n{}", serve.output_tail());
    }
    let ready_s = started.elapsed().as_secs_f64();
    let at_ready = memory(serve.pid());
    let stdout = serve.stdout()?;
    let ready_line = stdout
        .lines()
        .find(|line| line.starts_with("crm serve ready"))
        .context("the ready line")?;
    let url = ready_line
        .split("nats ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .context("the NATS URL in the ready line")?
        .to_owned();
    let instance = ready_line
        .rsplit("instance ")
        .next()
        .context("the instance in the ready line")?
        .trim()
        .to_owned();
    println!(
        "ready after {ready_s:.2} s; crm serve RSS {} at ready",
        mib(at_ready.rss_kib)
    );

    let client = async_nats::connect(&url).await?;
    let subject = crm_wire::Subjects::default().instance_status(&instance);
    let mut read_models_at: Option<(f64, Memory)> = None;
    let mut tailer_at: Option<(f64, Memory)> = None;
    let mut peak = at_ready;
    let mut last_print = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = memory(serve.pid());
        peak.rss_kib = peak.rss_kib.max(now.rss_kib);
        peak.peak_kib = peak.peak_kib.max(now.peak_kib);
        if !serve.is_running() {
            bail!("crm serve ended:\n{}", serve.output_tail());
        }
        if started.elapsed() > Duration::from_secs(args.timeout_s) {
            bail!("not caught up within {} s", args.timeout_s);
        }
        let Ok(Ok(reply)) = tokio::time::timeout(
            Duration::from_secs(5),
            client.request(subject.clone(), "".into()),
        )
        .await
        else {
            continue;
        };
        let Ok(status) = serde_json::from_slice::<Value>(&reply.payload) else {
            continue;
        };
        let status = status.get("data").unwrap_or(&status);
        let head = status["log"]["head"].as_u64().unwrap_or(u64::MAX);
        let published = status["log"]["published"].as_u64().unwrap_or(0);
        let checkpoints: Vec<u64> = status["read_models"]
            .as_array()
            .map(|models| {
                models
                    .iter()
                    .map(|m| m["checkpoint"].as_u64().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default();
        let elapsed = started.elapsed().as_secs_f64();
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  {elapsed:.0} s: head {head}, published {published}, read models {checkpoints:?}, RSS {}",
                mib(now.rss_kib)
            );
        }
        if read_models_at.is_none() && checkpoints.iter().all(|&c| c >= head) {
            read_models_at = Some((elapsed, now));
            println!(
                "read models at the head ({head}) after {elapsed:.1} s; RSS {}",
                mib(now.rss_kib)
            );
        }
        if tailer_at.is_none() && published >= head {
            tailer_at = Some((elapsed, now));
            println!(
                "stream at the head ({head}) after {elapsed:.1} s; RSS {}",
                mib(now.rss_kib)
            );
        }
        if read_models_at.is_some() && (tailer_at.is_some() || args.read_models_only) {
            break;
        }
    }
    let nats_rss: u64 = child_pids(serve.pid())
        .into_iter()
        .map(|pid| memory(pid).rss_kib)
        .sum();
    println!(
        "crm serve RSS now {}, highest sampled {}, peak (VmHWM) {}; nats-server RSS {}",
        mib(memory(serve.pid()).rss_kib),
        mib(peak.rss_kib),
        mib(memory(serve.pid()).peak_kib.max(peak.peak_kib)),
        mib(nats_rss)
    );
    serve.terminate(Duration::from_secs(60))?;
    Ok(())
}
