//! What `--metrics-addr` costs: the `commands` benchmark's closed loop against the real `crm
//! serve` binary, started alternately without and with Prometheus metrics (a fresh data dir and
//! a fresh JetStream stream each run), several rounds of each, on one nats-server. A recorder
//! is global to a process, so the two modes are two processes; alternating them spreads the
//! machine's drift over both. The order within a round alternates too.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command as Process;
use std::time::Duration;

use anyhow::{bail, Context as _};
use crm_testkit::{free_loopback_port, ChildProcess, NatsServer};

use crate::commands::{closed_loop, Target};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The `crm` binary (default: `crm` beside this benchmark's executable, i.e. the same
    /// target profile).
    #[arg(long)]
    crm_bin: Option<PathBuf>,
    /// Runs of each mode (without and with metrics).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Commands measured per run (a tenth more warm it up first).
    #[arg(long, default_value_t = 30_000)]
    requests: usize,
    /// Commands in flight.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// `crm serve --projections` (empty: the command service and the tailer only, as the
    /// `commands` benchmark).
    #[arg(long, default_value = "")]
    projections: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Off,
    On,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::block_on(run_async(args))?
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let crm_bin = crate::crm_bin(args.crm_bin.as_deref())?;
    let nats = NatsServer::start().context("starting nats-server (is it installed?)")?;
    let client = nats.connect().await;
    let js = async_nats::jetstream::new(client.clone());
    let mut results: Vec<Run> = Vec::new();
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            [Mode::Off, Mode::On]
        } else {
            [Mode::On, Mode::Off]
        };
        for mode in order {
            let dir = tempfile::tempdir()?;
            let metrics_addr = format!("127.0.0.1:{}", free_loopback_port());
            let mut command = Process::new(&crm_bin);
            command
                .arg("serve")
                .arg("--data-dir")
                .arg(dir.path())
                .arg("--nats-url")
                .arg(nats.url())
                .arg("--projections")
                .arg(&args.projections)
                .env("RUST_LOG", "warn")
                .env_remove("CRM_METRICS_ADDR");
            if mode == Mode::On {
                command.arg("--metrics-addr").arg(&metrics_addr);
            }
            let mut serve = ChildProcess::spawn(command)?;
            if let Err(e) = serve.wait_for_line("crm serve ready", Duration::from_secs(60)) {
                bail!("crm serve not ready: {e}\n{}", serve.output_tail());
            }
            let _ = closed_loop(
                &client,
                Target::Commands,
                args.in_flight,
                args.requests / 10,
            )
            .await?;
            let cpu_before = crate::cpu::process_cpu_us(serve.pid());
            let figures =
                closed_loop(&client, Target::Commands, args.in_flight, args.requests).await?;
            let cpu_us = match (cpu_before, crate::cpu::process_cpu_us(serve.pid())) {
                (Some(before), Some(after)) => {
                    after.saturating_sub(before) as f64 / args.requests.max(1) as f64
                }
                _ => 0.0,
            };
            if mode == Mode::On {
                // The recorder did record: every command of the run is counted.
                let body = scrape(&metrics_addr)?;
                let counted = accepted_commands(&body);
                let expected = (args.requests + args.requests / 10) as f64;
                anyhow::ensure!(
                    counted >= expected,
                    "metrics counted {counted} accepted commands, expected {expected}"
                );
            }
            serve
                .terminate(Duration::from_secs(30))
                .context("stopping crm serve")?;
            // The next run starts a fresh log: it must not find this run's events in JetStream.
            js.delete_stream(crm_wire::EVENTS_STREAM)
                .await
                .map_err(|e| anyhow::anyhow!("deleting the events stream: {e}"))?;
            eprintln!(
                "round {} metrics {:?}: {:.0} commands/s, crm serve CPU {cpu_us:.1} us per command, p50 {} us, p99 {} us",
                round + 1,
                mode,
                figures.per_second,
                figures.p50_us,
                figures.p99_us
            );
            results.push(Run {
                round: round + 1,
                mode,
                per_second: figures.per_second,
                cpu_us,
                p50_us: figures.p50_us,
                p99_us: figures.p99_us,
            });
        }
    }

    println!(
        "machine: {} cores; nats-server on loopback; `crm serve --projections '{}'` as its own \
         process, the benchmark's client in another; {} commands per run at {} in flight",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        args.projections,
        args.requests,
        args.in_flight
    );
    println!();
    println!(
        "| round | metrics | commands/s | crm serve CPU us per command | p50 (us) | p99 (us) |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    for run in &results {
        let mode = match run.mode {
            Mode::Off => "off",
            Mode::On => "on",
        };
        println!(
            "| {} | {mode} | {:.0} | {:.1} | {} | {} |",
            run.round, run.per_second, run.cpu_us, run.p50_us, run.p99_us
        );
    }
    let off = median(&results, Mode::Off, |r| r.per_second);
    let on = median(&results, Mode::On, |r| r.per_second);
    let cpu_off = median(&results, Mode::Off, |r| r.cpu_us);
    let cpu_on = median(&results, Mode::On, |r| r.cpu_us);
    println!();
    println!(
        "median commands/s: metrics off {off:.0}, on {on:.0}; on / off = {:.3} ({:+.1}%)",
        on / off.max(1.0),
        100.0 * (on - off) / off.max(1.0)
    );
    println!(
        "median crm serve CPU per command: metrics off {cpu_off:.1} us, on {cpu_on:.1} us ({:+.1}%)",
        100.0 * (cpu_on - cpu_off) / cpu_off.max(1e-9)
    );
    Ok(())
}

/// One measured run.
struct Run {
    round: usize,
    mode: Mode,
    per_second: f64,
    /// User + system CPU of the `crm serve` process per measured command.
    cpu_us: f64,
    p50_us: u64,
    p99_us: u64,
}

fn median(results: &[Run], mode: Mode, value: impl Fn(&Run) -> f64) -> f64 {
    let mut rates: Vec<f64> = results
        .iter()
        .filter(|r| r.mode == mode)
        .map(value)
        .collect();
    rates.sort_by(f64::total_cmp);
    match rates.len() {
        0 => 0.0,
        n if n % 2 == 1 => rates[n / 2],
        n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
    }
}

/// GET /metrics over HTTP/1.0: the body.
fn scrape(addr: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.contains(" 200 ") => Ok(body.to_owned()),
        _ => bail!("unexpected response from {addr}: {response}"),
    }
}

/// The sum of `crm_commands_total{...outcome="accepted"...}`.
fn accepted_commands(body: &str) -> f64 {
    body.lines()
        .filter(|line| line.starts_with("crm_commands_total{") && line.contains("\"accepted\""))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}
