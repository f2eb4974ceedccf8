//! Commands over NATS end to end (decode, decide, durable append, reply) next to a raw
//! async-nats request/reply echo on the same nats-server, in the same run: throughput and
//! latency at fixed numbers of requests in flight, and latency at a fixed offered rate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::{Client, HeaderMap};
use futures::StreamExt;
use tokio::sync::watch;
use uuid::Uuid;

use crm_eventlog::{EventLog, LogConfig};
use crm_service::{
    serve_commands, CommandHandler, HandlerConfig, ServiceConfig, Tailer, TailerConfig,
};
use crm_testkit::NatsServer;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests per in-flight level (commands and echo alike).
    #[arg(long, default_value_t = 6000)]
    requests: usize,
    /// Requests in flight, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    in_flight: Vec<usize>,
    /// Offered rate for the fixed-rate latency run, commands per second.
    #[arg(long, default_value_t = 1000)]
    rate_per_second: u64,
    /// Length of the fixed-rate run, in seconds.
    #[arg(long, default_value_t = 10)]
    rate_seconds: u64,
    /// Leave the tailer out (to see what publishing to JetStream costs).
    #[arg(long)]
    no_tailer: bool,
}

struct Figures {
    per_second: f64,
    p50_us: u64,
    p99_us: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let nats = NatsServer::start().context("starting nats-server (is it installed?)")?;
    let dir = tempfile::tempdir()?;
    let log = EventLog::open(&dir.path().join("log"), LogConfig::default())?;
    let client = nats.connect().await;
    let (stop, stop_rx) = watch::channel(false);
    let handler = CommandHandler::new(log.clone(), HandlerConfig::default());
    tokio::spawn(serve_commands(
        client.clone(),
        handler,
        ServiceConfig::default(),
        stop_rx.clone(),
    ));
    if !args.no_tailer {
        tokio::spawn(
            Tailer::new(log.clone(), client.clone(), TailerConfig::default()).run(stop_rx.clone()),
        );
    }
    tokio::spawn(echo_responder(client.clone()));
    client.flush().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!(
        "machine: {} cores; nats-server on loopback; client, service and echo in one process",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!();
    println!("| in flight | raw echo req/s | commands/s | commands / echo | echo p50 / p99 (us) | command p50 / p99 (us) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &in_flight in &args.in_flight {
        // Warm both paths, then measure echo and commands back to back.
        let _ = closed_loop(&client, Target::Echo, in_flight, args.requests / 10).await?;
        let echo = closed_loop(&client, Target::Echo, in_flight, args.requests).await?;
        let _ = closed_loop(&client, Target::Commands, in_flight, args.requests / 10).await?;
        let before = log.stats();
        let started = Instant::now();
        let commands = closed_loop(&client, Target::Commands, in_flight, args.requests).await?;
        let wall_us = started.elapsed().as_micros() as f64;
        let after = log.stats();
        eprintln!(
            "in flight {in_flight}: log writer busy {:.0}% of the time (apply {:.0}%, flush {:.0}%), {:.1} appends per batch",
            100.0 * ((after.apply_us_total + after.flush_us_total) - (before.apply_us_total + before.flush_us_total)) as f64 / wall_us,
            100.0 * (after.apply_us_total - before.apply_us_total) as f64 / wall_us,
            100.0 * (after.flush_us_total - before.flush_us_total) as f64 / wall_us,
            (after.appends - before.appends) as f64 / (after.batches - before.batches).max(1) as f64,
        );
        println!(
            "| {in_flight} | {:.0} | {:.0} | {:.0}% | {} / {} | {} / {} |",
            echo.per_second,
            commands.per_second,
            100.0 * commands.per_second / echo.per_second,
            echo.p50_us,
            echo.p99_us,
            commands.p50_us,
            commands.p99_us
        );
    }
    println!();
    println!("| in flight | handler alone, no NATS: commands/s |");
    println!("|---:|---:|");
    for &in_flight in &args.in_flight {
        let rate = handler_alone(&log, in_flight, args.requests).await?;
        println!("| {in_flight} | {rate:.0} |");
    }
    let fixed = fixed_rate(&client, args.rate_per_second, args.rate_seconds).await?;
    println!();
    println!(
        "fixed rate: offered {} commands/s for {} s, achieved {:.0}/s; latency p50 {} us, p99 {} us",
        args.rate_per_second, args.rate_seconds, fixed.per_second, fixed.p50_us, fixed.p99_us
    );
    println!("log head after the run: {}", log.head());
    let _ = stop.send(true);
    Ok(())
}

/// The same commands through `CommandHandler::handle` directly: decode, idempotency, state,
/// decide, durable append; what NATS adds is the rest.
async fn handler_alone(log: &EventLog, in_flight: usize, total: usize) -> anyhow::Result<f64> {
    let handler = CommandHandler::new(log.clone(), HandlerConfig::default());
    let issued = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let handler = handler.clone();
        let issued = issued.clone();
        workers.push(tokio::spawn(async move {
            let mut lead = Uuid::now_v7();
            let mut i = 0usize;
            while issued.fetch_add(1, Ordering::Relaxed) < total {
                let (subject, body) = if i % 4 == 0 {
                    lead = Uuid::now_v7();
                    ("crm.cmd.lead.CreateLead", serde_json::json!({"lead_id": lead, "name": "Ada Lovelace", "email": "ada@example.com", "source": "web"}))
                } else {
                    ("crm.cmd.lead.ScoreLead", serde_json::json!({"lead_id": lead, "score": (i % 101) as u8}))
                };
                let body = serde_json::to_vec(&body)?;
                let id = Uuid::now_v7().to_string();
                let (reply, _) = handler
                    .handle(crm_service::CommandRequest { subject, command_id: Some(&id), body: &body, ..Default::default() })
                    .await;
                anyhow::ensure!(reply.error_code().is_none(), "{reply:?}");
                i += 1;
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

#[derive(Clone, Copy)]
enum Target {
    Echo,
    Commands,
}

async fn echo_responder(client: Client) -> anyhow::Result<()> {
    let mut subscriber = client.subscribe("bench.echo").await?;
    let reply = br#"{"status":"accepted","command_id":"0190f1b2-0000-7000-8000-000000000001","stream":"lead-0190f1b2-0000-7000-8000-000000000001","version":1,"first_position":1,"last_position":1,"duplicate":false}"#;
    while let Some(message) = subscriber.next().await {
        if let Some(to) = message.reply {
            client.publish(to, reply.as_slice().into()).await?;
        }
    }
    Ok(())
}

/// One request: a new lead every fourth request of a worker, a score of its latest lead otherwise.
async fn one_request(
    client: &Client,
    target: Target,
    latest_lead: &mut Uuid,
    i: usize,
) -> anyhow::Result<()> {
    let (subject, body) = if i % 4 == 0 {
        *latest_lead = Uuid::now_v7();
        (
            "crm.cmd.lead.CreateLead",
            serde_json::json!({"lead_id": *latest_lead, "name": "Ada Lovelace", "email": "ada@example.com", "source": "web"}),
        )
    } else {
        (
            "crm.cmd.lead.ScoreLead",
            serde_json::json!({"lead_id": *latest_lead, "score": (i % 101) as u8}),
        )
    };
    let body = serde_json::to_vec(&body)?;
    let mut headers = HeaderMap::new();
    headers.insert("Crm-Command-Id", Uuid::now_v7().to_string().as_str());
    let subject = match target {
        Target::Echo => "bench.echo",
        Target::Commands => subject,
    };
    let reply = client
        .request_with_headers(subject, headers, body.into())
        .await?;
    anyhow::ensure!(
        reply.payload.starts_with(br#"{"status":"accepted""#),
        "refused: {}",
        String::from_utf8_lossy(&reply.payload)
    );
    Ok(())
}

async fn closed_loop(
    client: &Client,
    target: Target,
    in_flight: usize,
    total: usize,
) -> anyhow::Result<Figures> {
    let issued = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let client = client.clone();
        let issued = issued.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut lead = Uuid::now_v7();
            let mut mine = 0;
            while issued.fetch_add(1, Ordering::Relaxed) < total {
                let sent = Instant::now();
                one_request(&client, target, &mut lead, mine).await?;
                latencies.push(sent.elapsed().as_micros() as u64);
                mine += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    Ok(figures(latencies, elapsed))
}

async fn fixed_rate(client: &Client, per_second: u64, seconds: u64) -> anyhow::Result<Figures> {
    let interval = Duration::from_nanos(1_000_000_000 / per_second.max(1));
    let total = (per_second * seconds) as usize;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        ticker.tick().await;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            // Each request creates or scores its own lead: offered load, not per-stream queueing.
            let mut lead = Uuid::now_v7();
            let sent = Instant::now();
            one_request(
                &client,
                Target::Commands,
                &mut lead,
                if i % 4 == 0 { 0 } else { 4 },
            )
            .await
            .or_else(|e| {
                // A score of a lead that was never created is refused; count only the latency.
                if e.to_string().contains("not_found") {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
            anyhow::Ok(sent.elapsed().as_micros() as u64)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.push(task.await??);
    }
    Ok(figures(latencies, started.elapsed()))
}

fn figures(mut latencies: Vec<u64>, elapsed: Duration) -> Figures {
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0)
    };
    Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_us: at(0.50),
        p99_us: at(0.99),
    }
}
