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

use crate::cpu::CpuSnapshot;
use crate::latency::{figures, Figures};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests per in-flight level (commands and echo alike).
    #[arg(long, default_value_t = 30_000)]
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

/// Fewest commands the CPU floor is measured over (CPU time comes in 10 ms ticks).
const FLOOR_REQUESTS_MIN: usize = 100_000;

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::block_on(run_async(args))?
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
    let mut cpu_rows = Vec::new();
    let mut echo_rates = std::collections::BTreeMap::new();
    let mut appends_per_batch = std::collections::BTreeMap::new();
    for &in_flight in &args.in_flight {
        // Warm both paths, then measure echo and commands back to back.
        let _ = closed_loop(&client, Target::Echo, in_flight, args.requests / 10).await?;
        let cpu_before = CpuSnapshot::take(nats.pid());
        let echo = closed_loop(&client, Target::Echo, in_flight, args.requests).await?;
        let cpu_after = CpuSnapshot::take(nats.pid());
        cpu_rows.push((
            in_flight,
            "echo",
            cpu_before.per_unit(&cpu_after, args.requests),
        ));
        let _ = closed_loop(&client, Target::Commands, in_flight, args.requests / 10).await?;
        let before = log.stats();
        let cpu_before = CpuSnapshot::take(nats.pid());
        let started = Instant::now();
        let commands = closed_loop(&client, Target::Commands, in_flight, args.requests).await?;
        let wall_us = started.elapsed().as_micros() as f64;
        let cpu_after = CpuSnapshot::take(nats.pid());
        cpu_rows.push((
            in_flight,
            "commands",
            cpu_before.per_unit(&cpu_after, args.requests),
        ));
        let after = log.stats();
        echo_rates.insert(in_flight, echo.per_second);
        appends_per_batch.insert(
            in_flight,
            (after.appends - before.appends) as f64
                / (after.batches - before.batches).max(1) as f64,
        );
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
    println!(
        "| in flight | run | CPU us per request: {} | total |",
        crate::cpu::GROUPS.join(" | ")
    );
    println!(
        "|---:|---|{}---:|",
        "---:|".repeat(crate::cpu::GROUPS.len())
    );
    for (in_flight, run, groups) in &cpu_rows {
        let total = crate::cpu::total(groups);
        let cells: Vec<String> = groups.iter().map(|(_, us)| format!("{us:.1}")).collect();
        println!(
            "| {in_flight} | {run} | {} | {total:.1} |",
            cells.join(" | ")
        );
    }
    println!();
    println!("| in flight | handler alone, no NATS: commands/s |");
    println!("|---:|---:|");
    for &in_flight in &args.in_flight {
        let rate = handler_alone(&log, in_flight, args.requests).await?;
        println!("| {in_flight} | {rate:.0} |");
    }
    if let Some(&top) = args.in_flight.iter().max() {
        let echo_cpu = cpu_rows
            .iter()
            .find(|(level, run, _)| *level == top && *run == "echo")
            .map(|(_, _, groups)| crate::cpu::total(groups))
            .unwrap_or(0.0);
        let echo_rate = echo_rates.get(&top).copied().unwrap_or(0.0);
        // CPU time is read in 10 ms ticks: measure the floor over enough commands.
        floor(
            &client,
            nats.pid(),
            dir.path(),
            args.requests.max(FLOOR_REQUESTS_MIN),
            appends_per_batch.get(&top).copied().unwrap_or(1.0),
            echo_cpu,
            echo_rate,
        )
        .await?;
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
                let (subject, body) = if i.is_multiple_of(4) {
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
pub(crate) enum Target {
    Echo,
    /// A `CreateLead` then three `ScoreLead` of that lead, per worker.
    Commands,
    /// A `CreateLead` of a new lead every time.
    CreateLeads,
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

/// One request: a new lead every fourth request of a worker (every request for
/// [`Target::CreateLeads`]), a score of its latest lead otherwise.
async fn one_request(
    client: &Client,
    target: Target,
    latest_lead: &mut Uuid,
    i: usize,
) -> anyhow::Result<()> {
    let (subject, body) = if i.is_multiple_of(4) || matches!(target, Target::CreateLeads) {
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
        Target::Commands | Target::CreateLeads => subject,
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

pub(crate) async fn closed_loop(
    client: &Client,
    target: Target,
    in_flight: usize,
    total: usize,
) -> anyhow::Result<Figures> {
    let started = Instant::now();
    let latencies = closed_loop_latencies(client, target, in_flight, total).await?;
    Ok(figures(latencies, started.elapsed()))
}

/// `total` requests from `in_flight` workers on one client, each sending its next request when
/// its last one is answered: every request's latency in microseconds. Any reply but
/// `accepted` fails the run.
pub(crate) async fn closed_loop_latencies(
    client: &Client,
    target: Target,
    in_flight: usize,
    total: usize,
) -> anyhow::Result<Vec<u64>> {
    let issued = Arc::new(AtomicUsize::new(0));
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
    Ok(latencies)
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

/// What a command costs at the least, measured in this run on this machine: the echo's
/// request/reply, publishing one event to JetStream the way the tailer does (core publishes,
/// one acknowledged publish per batch of 512), and raw sled writing the log's keys for one
/// command in batches of the size the log formed. Whatever decoding, deciding, replying and
/// reading cost comes on top, so `cores / floor` bounds commands/s from above.
async fn floor(
    client: &Client,
    nats_pid: Option<u32>,
    dir: &std::path::Path,
    requests: usize,
    batch: f64,
    echo_cpu_us: f64,
    echo_rate: f64,
) -> anyhow::Result<()> {
    // The tailer's own message builder, on records shaped like the benchmark's events, under
    // subjects of their own so the floor's messages stay out of `CRM_EVENTS`.
    let subjects = crm_wire::Subjects::new("bench.floor");
    let js = async_nats::jetstream::new(client.clone());
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH_FLOOR".into(),
        subjects: vec![subjects.events_wildcard()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("creating the floor stream: {e}"))?;
    let lead = Uuid::now_v7();
    let before = CpuSnapshot::take(nats_pid);
    for position in 1..=requests as u64 {
        let record = crm_eventlog::Record {
            format_version: crm_eventlog::record::FORMAT_VERSION,
            position,
            stream: format!("lead-{lead}"),
            stream_version: position,
            event_type: "LeadScored".into(),
            schema_version: 1,
            command_id: Uuid::now_v7(),
            recorded_at_us: 0,
            actor: None,
            correlation_id: None,
            causation_id: None,
            payload: vec![0xA5; 120],
        };
        // As the tailer does: the stored bytes are the body, the headers come from a view.
        let payload = bytes::Bytes::from(record.encode()?);
        let view =
            crm_eventlog::RecordRef::decode(&payload, &crm_eventlog::RecordLimits::default())?;
        let (subject, headers) = crm_service::event_message(&subjects, &view, position - 1)?;
        if position % 512 == 0 || position == requests as u64 {
            js.publish_with_headers(subject, headers, payload)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        } else {
            client
                .publish_with_headers(subject, headers, payload)
                .await?;
        }
    }
    let js_cpu_us = before.total_per_unit(&CpuSnapshot::take(nats_pid), requests);

    let batch = (batch.round() as usize).max(1);
    let sled_cpu_us = raw_sled_cpu_us(dir.join("floor-sled"), requests, batch, false).await?;
    let sled_blob_cpu_us =
        raw_sled_cpu_us(dir.join("floor-sled-blob"), requests, batch, true).await?;

    let own_us = tokio::task::spawn_blocking(move || pure_work_cpu_us(requests)).await??;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let floor_us = echo_cpu_us + js_cpu_us + sled_cpu_us;
    let bound = cores * 1e6 / floor_us;
    println!();
    println!("| CPU floor of one command (us) | echo | JetStream publish of its event | raw sled write of its keys (batches of {batch}) | sum | commands/s on {cores} cores at most | / echo |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| measured | {echo_cpu_us:.1} | {js_cpu_us:.1} | {sled_cpu_us:.1} | {floor_us:.1} | {bound:.0} | {:.0}% |",
        100.0 * bound / echo_rate.max(1.0)
    );
    let blob_floor_us = echo_cpu_us + js_cpu_us + sled_blob_cpu_us;
    let blob_bound = cores * 1e6 / blob_floor_us;
    println!(
        "| if the log stored a batch's records as one sled value | {echo_cpu_us:.1} | {js_cpu_us:.1} | {sled_blob_cpu_us:.1} | {blob_floor_us:.1} | {blob_bound:.0} | {:.0}% |",
        100.0 * blob_bound / echo_rate.max(1.0)
    );
    let budget_us = cores * 1e6 / (0.4 * echo_rate.max(1.0));
    println!();
    println!(
        "CPU budget per command at 40% of echo: {budget_us:.1} us; left after the floor: {:.1} us; \
         the service's own pure work (JSON decode, request hash, decide, event encode, evolve, \
         JSON reply) measures {own_us:.1} us per command on one thread",
        budget_us - floor_us
    );
    Ok(())
}

/// CPU microseconds per command of the work the handler does without any I/O, on one thread,
/// with the benchmark's 1:3 mix of CreateLead and ScoreLead.
fn pure_work_cpu_us(requests: usize) -> anyhow::Result<f64> {
    use crm_domain::{codec, decide, evolve, Aggregate, Command, Context, State, Timestamp};
    use crm_wire::{
        decode_command, encode_reply, request_hash, Accepted, CommandReply, ContentType,
    };
    let context = Context {
        now: Timestamp::from_datetime(chrono::Utc::now()).unwrap_or_default(),
        pipeline: None,
    };
    let lead = Uuid::now_v7();
    let create = serde_json::to_vec(
        &serde_json::json!({"lead_id": lead, "name": "Ada Lovelace", "email": "ada@example.com", "source": "web"}),
    )?;
    let score = serde_json::to_vec(&serde_json::json!({"lead_id": lead, "score": 42}))?;
    let mut created = State::empty(Aggregate::Lead);
    let before = CpuSnapshot::take(None);
    for i in 0..requests {
        let (name, body, state) = if i % 4 == 0 {
            ("CreateLead", &create, State::empty(Aggregate::Lead))
        } else {
            ("ScoreLead", &score, created.clone())
        };
        let command: Command = decode_command(
            Aggregate::Lead,
            name,
            body,
            ContentType::Json,
            crm_wire::COMMAND_BYTES_MAX_DEFAULT,
        )?;
        let hash = request_hash(&command);
        let stream = command.stream();
        let decision = decide(&state, &command, &context).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut next = state;
        for event in &decision.appends[0].events {
            std::hint::black_box(codec::encode_event(decision.occurred_at, event)?);
            next = evolve(next, event);
        }
        if i % 4 == 0 {
            created = next;
        }
        let reply = CommandReply::Accepted(Accepted {
            command_id: Uuid::now_v7(),
            stream,
            version: 2,
            first_position: i as u64,
            last_position: i as u64,
            duplicate: false,
        });
        std::hint::black_box((encode_reply(&reply, ContentType::Json), hash));
    }
    Ok(before.total_per_unit(&CpuSnapshot::take(None), requests))
}

/// CPU microseconds per command of raw sled writing the log's keys for one-event commands
/// (record, stream index entry, command record; head once per batch), `batch` commands per
/// `apply_batch` + `flush`. With `one_value_per_batch`, a batch's records are stored
/// concatenated under one key instead of one key each: what a log layout of record blocks
/// would save.
async fn raw_sled_cpu_us(
    dir: std::path::PathBuf,
    requests: usize,
    batch: usize,
    one_value_per_batch: bool,
) -> anyhow::Result<f64> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let db = sled::Config::new()
            .path(&dir)
            .cache_capacity(LogConfig::default().sled_cache_bytes)
            .open()?;
        let tree = db.open_tree(crm_eventlog::layout::TREE_NAME)?;
        let payload = vec![0xA5u8; 120];
        let entries = (1..=requests as u64)
            .map(|position| crate::eventlog::log_entries(position, requests, &payload))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let before = CpuSnapshot::take(None);
        for (i, chunk) in entries.chunks(batch).enumerate() {
            let mut write = sled::Batch::default();
            let mut block = Vec::new();
            for [record, index, command] in chunk {
                if one_value_per_batch {
                    block.extend_from_slice(&record.1);
                } else {
                    write.insert(record.0.clone(), record.1.clone());
                }
                write.insert(index.0.clone(), index.1.clone());
                write.insert(command.0.clone(), command.1.clone());
            }
            if let (true, Some([first, ..])) = (one_value_per_batch, chunk.first()) {
                write.insert(first.0.clone(), block);
            }
            write.insert(
                crm_eventlog::layout::META_HEAD_KEY,
                &crm_eventlog::layout::encode_u64(i as u64)[..],
            );
            tree.apply_batch(write)?;
            tree.flush()?;
        }
        Ok(before.total_per_unit(&CpuSnapshot::take(None), requests))
    })
    .await?
}
