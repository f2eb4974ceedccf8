//! `crm-bench eventlog`: durable group-commit appends at several concurrencies and a full-log
//! scan, each next to raw sled doing the same work, measured in the same run.
//!
//! - Appends: C tokio tasks, each appending one event per command to its own stream with an
//!   exact expected version; an append counts once it is acknowledged (after the flush).
//! - Raw ceiling: sled `apply_batch` + `flush` of the same keys and values the log writes
//!   (record, stream index, command record, head), encoded beforehand, in batches
//!   of min(C, batch_appends_max) events: a perfect group commit with no bookkeeping at all.
//! - Scan: `read_all` pages (CRC, decode, position checks) over a prefilled log, next to raw
//!   sled iteration of the same record keys, and raw iteration plus `Record::decode`.
//!
//! Every measurement runs in its own child process (this binary with `--measure`), so sled's
//! process-wide state (epoch garbage, IO threads, heap) left by one cannot slow the next, and
//! log and raw measurements alternate in order from round to round; medians are reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crm_eventlog::layout::{self, CommandRecord};
use crm_eventlog::{
    AppendOutcome, AppendRequest, EventLog, ExpectedVersion, LogConfig, NewEvent, Record,
    RecordLimits, StreamAppend, StreamOutcome, SLED_DIR_NAME,
};
use uuid::Uuid;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Appends per concurrency level and round, one event each.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Concurrent appenders, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64,512")]
    concurrency: Vec<usize>,
    /// A measurement stops after this many seconds even if it has not written `--events`.
    #[arg(long, default_value_t = 10)]
    seconds_max: u64,
    /// Payload bytes per event.
    #[arg(long, default_value_t = 200)]
    payload_bytes: usize,
    /// Events in the log that the scan reads.
    #[arg(long, default_value_t = 200_000)]
    scan_events: u64,
    /// Records per `read_all` page in the scan (capped by the log's `read_page_events_max`).
    #[arg(long, default_value_t = 1024)]
    scan_page_events: usize,
    /// Override the log's `batch_wait_us_max` (default: the log's default).
    #[arg(long)]
    batch_wait_us: Option<u64>,
    /// Measurements per figure; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Where to put the benchmark's data (a temp dir is made inside); default: system temp.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Internal: run one measurement in this process, with `--dir` as its data directory.
    #[arg(long, hide = true)]
    measure: Option<Measure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Measure {
    Appends,
    Raw,
    ScanFill,
    ScanLog,
    ScanRaw,
}

/// One child's figures, by name.
type Figures = HashMap<String, f64>;

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(measure) = args.measure {
        return run_measurement(measure, &args);
    }
    let base = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .context("creating the benchmark directory")?;
    let config = log_config(&args);
    let rounds = args.rounds.max(1);
    println!("# crm-bench eventlog");
    println!("machine: {}", machine());
    println!(
        "appends per level: {}, payload: {} B, seconds per measurement at most: {}, rounds: {rounds} (medians), batch_wait_us_max: {}, data: {}",
        args.events,
        args.payload_bytes,
        args.seconds_max,
        config.batch_wait_us_max,
        base.path().display()
    );
    println!();

    let mut rows = Vec::new();
    for &concurrency in &args.concurrency {
        let concurrency = concurrency.max(1);
        let batch_events = concurrency.min(config.batch_appends_max);
        let mut logs = Vec::new();
        let mut raws = Vec::new();
        for round in 0..rounds {
            let dir = base.path().join(format!("c{concurrency}-r{round}"));
            // Alternate which goes first, so drift in the machine's load hits both alike.
            if round % 2 == 0 {
                logs.push(child(
                    Measure::Appends,
                    &dir.join("log"),
                    concurrency,
                    &args,
                )?);
                raws.push(child(Measure::Raw, &dir.join("raw"), batch_events, &args)?);
            } else {
                raws.push(child(Measure::Raw, &dir.join("raw"), batch_events, &args)?);
                logs.push(child(
                    Measure::Appends,
                    &dir.join("log"),
                    concurrency,
                    &args,
                )?);
            }
            let (log, raw) = (&logs[round], &raws[round]);
            println!(
                "appenders {concurrency:>4} round {round}: log {:>8.0} appends/s (batch {:>5.1}: decide {:>5.0} apply {:>5.0} flush {:>5.0} us) | raw batch {batch_events:>4}: {:>8.0} events/s (apply {:>5.0} flush {:>5.0} us) | {:>5.1}%",
                rate(log),
                log["mean_batch"],
                log["decide_us"],
                log["apply_us"],
                log["flush_us"],
                rate(raw),
                raw["apply_us"],
                raw["flush_us"],
                100.0 * rate(log) / rate(raw)
            );
            std::fs::remove_dir_all(&dir).context("removing a round's data")?;
        }
        let log = median_by(logs, rate);
        let raw = median_by(raws, rate);
        rows.push((concurrency, batch_events, log, raw));
    }

    let scan_dir = base.path().join("scan");
    child(Measure::ScanFill, &scan_dir, 1, &args)?;
    let (mut scan_logs, mut scan_raws) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let log = child(Measure::ScanLog, &scan_dir, 1, &args)?;
        let raw = child(Measure::ScanRaw, &scan_dir, 1, &args)?;
        anyhow::ensure!(
            log["events"] == raw["events"],
            "the log scan saw {} records, raw sled {}",
            log["events"],
            raw["events"]
        );
        println!(
            "scan round {round}: log read_all {:>9.0} events/s | raw iteration {:>9.0} events/s | raw iteration + decode {:>9.0} events/s",
            rate(&log),
            raw["events"] / raw["iterate_s"],
            raw["events"] / raw["decode_s"],
        );
        scan_logs.push(log);
        scan_raws.push(raw);
    }
    let scan_log = median_by(scan_logs, rate);
    let iterate = median_by(scan_raws.clone(), |f| -f["iterate_s"]);
    let decode = median_by(scan_raws, |f| -f["decode_s"]);

    println!();
    println!("| appenders | durable appends/s | mean batch (appends) | mean flush (us) | raw ceiling batch (events) | raw ceiling events/s | durable / raw |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (concurrency, batch_events, log, raw) in &rows {
        println!(
            "| {concurrency} | {:.0} | {:.1} | {:.0} | {batch_events} | {:.0} | {:.0}% |",
            rate(log),
            log["mean_batch"],
            log["flush_us"],
            rate(raw),
            100.0 * rate(log) / rate(raw)
        );
    }
    let events = scan_log["events"];
    let mb = iterate["bytes"] / 1e6;
    let iterate_rate = events / iterate["iterate_s"];
    let decode_rate = events / decode["decode_s"];
    let log_rate = rate(&scan_log);
    println!();
    println!("| full scan of {events:.0} events | events/s | MB/s of records | vs raw iteration |");
    println!("|---|---:|---:|---:|");
    println!(
        "| raw sled iteration | {iterate_rate:.0} | {:.0} | 100% |",
        mb / iterate["iterate_s"]
    );
    println!(
        "| raw sled iteration + `Record::decode` | {decode_rate:.0} | {:.0} | {:.0}% |",
        mb / decode["decode_s"],
        100.0 * decode_rate / iterate_rate
    );
    println!(
        "| `EventLog::read_all`, pages of {} | {log_rate:.0} | {:.0} | {:.0}% |",
        args.scan_page_events,
        mb / scan_log["elapsed_s"],
        100.0 * log_rate / iterate_rate
    );
    Ok(())
}

fn log_config(args: &Args) -> LogConfig {
    let mut config = LogConfig::default();
    if let Some(wait) = args.batch_wait_us {
        config.batch_wait_us_max = wait;
    }
    config
}

/// Events (or appends) per second of a measurement.
fn rate(figures: &Figures) -> f64 {
    figures["events"] / figures["elapsed_s"]
}

/// The middle element by `key` (the upper middle for an even count).
fn median_by<T>(mut items: Vec<T>, key: impl Fn(&T) -> f64) -> T {
    items.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let middle = items.len() / 2;
    items.swap_remove(middle)
}

/// Runs one measurement in a child process and returns its figures.
fn child(measure: Measure, dir: &Path, concurrency: usize, args: &Args) -> anyhow::Result<Figures> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("eventlog")
        .arg("--measure")
        .arg(
            clap::ValueEnum::to_possible_value(&measure)
                .map_or_else(String::new, |v| v.get_name().to_owned()),
        )
        .arg("--dir")
        .arg(dir)
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--events", &args.events.to_string()])
        .args(["--seconds-max", &args.seconds_max.to_string()])
        .args(["--payload-bytes", &args.payload_bytes.to_string()])
        .args(["--scan-events", &args.scan_events.to_string()])
        .args(["--scan-page-events", &args.scan_page_events.to_string()]);
    if let Some(wait) = args.batch_wait_us {
        command.args(["--batch-wait-us", &wait.to_string()]);
    }
    let output = command.output().context("running a measurement")?;
    anyhow::ensure!(
        output.status.success(),
        "measurement {measure:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FIGURES "))
        .with_context(|| format!("measurement {measure:?} printed no figures"))?;
    line.split(' ')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').context("figure without =")?;
            Ok((name.to_owned(), value.parse::<f64>()?))
        })
        .collect()
}

/// The child side: one measurement, its figures printed as `FIGURES name=value ...`.
fn run_measurement(measure: Measure, args: &Args) -> anyhow::Result<()> {
    let dir = args.dir.clone().context("--measure needs --dir")?;
    let concurrency = args.concurrency.first().copied().unwrap_or(1).max(1);
    let config = log_config(args);
    let figures: Vec<(&str, f64)> = match measure {
        Measure::Appends => bench_appends(&dir, concurrency, args, &config)?,
        Measure::Raw => bench_raw(&dir, concurrency, args)?,
        Measure::ScanFill => {
            fill_scan_log(&dir, args, &config)?;
            vec![]
        }
        Measure::ScanLog => bench_scan_log(&dir, args, &config)?,
        Measure::ScanRaw => bench_scan_raw(&dir, &config)?,
    };
    let line: Vec<String> = figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("FIGURES {}", line.join(" "));
    Ok(())
}

fn bench_appends(
    dir: &Path,
    concurrency: usize,
    args: &Args,
    config: &LogConfig,
) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let log = EventLog::open(dir, config.clone()).context("opening the log")?;
    let runtime = crate::runtime().context("building the runtime")?;
    let per_task = (args.events / concurrency as u64).max(1);
    let payload = vec![0xA5u8; args.payload_bytes];
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds_max);
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::with_capacity(concurrency);
        for task in 0..concurrency {
            let log = log.clone();
            let payload = payload.clone();
            let done = Arc::clone(&done);
            tasks.push(tokio::spawn(async move {
                let stream = format!("bench-{task}");
                let mut version = 0;
                for _ in 0..per_task {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let request = one_event_request(&stream, version, payload.clone());
                    let outcome = log.append(request).await?;
                    version = outcome.streams[0].last_version;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await.context("appender task")??;
        }
        anyhow::Ok(())
    })?;
    let elapsed = started.elapsed();
    let stats = log.stats();
    log.close();
    let batches = stats.batches.max(1) as f64;
    Ok(vec![
        ("events", done.load(Ordering::Relaxed) as f64),
        ("elapsed_s", elapsed.as_secs_f64()),
        ("mean_batch", stats.appends as f64 / batches),
        ("decide_us", stats.decide_us_total as f64 / batches),
        ("apply_us", stats.apply_us_total as f64 / batches),
        ("flush_us", stats.flush_us_total as f64 / batches),
    ])
}

fn one_event_request(stream: &str, version: u64, payload: Vec<u8>) -> AppendRequest {
    let command_id = Uuid::now_v7();
    let mut request_hash = [0u8; 32];
    request_hash[..16].copy_from_slice(command_id.as_bytes());
    AppendRequest {
        command_id,
        request_hash,
        actor: Some("bench".into()),
        correlation_id: None,
        causation_id: None,
        streams: vec![StreamAppend {
            stream: stream.to_owned(),
            expected: ExpectedVersion::Exact(version),
            events: vec![NewEvent {
                event_type: "BenchHappened".into(),
                schema_version: 1,
                payload,
            }],
        }],
    }
}

/// sled apply_batch + flush of the entries the log would write for one-event commands to
/// distinct streams, `batch_events` per batch, everything encoded beforehand.
fn bench_raw(
    dir: &Path,
    batch_events: usize,
    args: &Args,
) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let events = args.events.max(1);
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(LogConfig::default().sled_cache_bytes)
        .open()
        .context("opening raw sled")?;
    let tree = db.open_tree(layout::TREE_NAME)?;
    let payload = vec![0xA5u8; args.payload_bytes];
    let entries: Vec<[(sled::IVec, sled::IVec); 3]> = (1..=events)
        .map(|position| log_entries(position, batch_events, &payload))
        .collect::<anyhow::Result<_>>()?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds_max);
    let mut flush_total = Duration::ZERO;
    let mut apply_total = Duration::ZERO;
    let mut batches = 0u64;
    let mut written = 0u64;
    let started = Instant::now();
    for chunk in entries.chunks(batch_events) {
        if Instant::now() >= deadline {
            break;
        }
        let mut batch = sled::Batch::default();
        for entry in chunk {
            for (key, value) in entry {
                batch.insert(key.clone(), value.clone());
            }
        }
        written += chunk.len() as u64;
        batch.insert(layout::META_HEAD_KEY, &layout::encode_u64(written)[..]);
        let apply_started = Instant::now();
        tree.apply_batch(batch)?;
        apply_total += apply_started.elapsed();
        let flush_started = Instant::now();
        tree.flush()?;
        flush_total += flush_started.elapsed();
        batches += 1;
    }
    let elapsed = started.elapsed();
    let batches = batches.max(1) as f64;
    Ok(vec![
        ("events", written as f64),
        ("elapsed_s", elapsed.as_secs_f64()),
        ("apply_us", apply_total.as_micros() as f64 / batches),
        ("flush_us", flush_total.as_micros() as f64 / batches),
    ])
}

/// The four entries the log writes for a one-event command at `position`.
pub(crate) fn log_entries(
    position: u64,
    streams: usize,
    payload: &[u8],
) -> anyhow::Result<[(sled::IVec, sled::IVec); 3]> {
    let stream = format!("bench-{}", position % streams as u64);
    let version = position / streams as u64 + 1;
    let command_id = Uuid::now_v7();
    let record = Record {
        format_version: crm_eventlog::record::FORMAT_VERSION,
        position,
        stream: stream.clone(),
        stream_version: version,
        event_type: "BenchHappened".into(),
        schema_version: 1,
        command_id,
        recorded_at_us: 0,
        actor: Some("bench".into()),
        correlation_id: None,
        causation_id: None,
        payload: payload.to_vec(),
    };
    let command = CommandRecord {
        request_hash: [7; 32],
        outcome: AppendOutcome {
            first_position: position,
            last_position: position,
            streams: vec![StreamOutcome {
                stream: stream.clone(),
                first_version: version,
                last_version: version,
            }],
            duplicate: false,
        },
    };
    Ok([
        (
            layout::event_key(position)[..].into(),
            record.encode()?.into(),
        ),
        (
            layout::stream_index_key(&stream, version).into(),
            layout::encode_u64(position)[..].into(),
        ),
        (
            layout::command_key(command_id)[..].into(),
            command.encode().into(),
        ),
    ])
}

/// The log's full scan through `read_all`, warm: one pass loads the cache, the next is timed.
fn bench_scan_log(
    dir: &Path,
    args: &Args,
    config: &LogConfig,
) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let log = EventLog::open(dir, config.clone())?;
    scan_log(&log, args.scan_page_events)?;
    let (elapsed, events) = scan_log(&log, args.scan_page_events)?;
    log.close();
    Ok(vec![
        ("events", events as f64),
        ("elapsed_s", elapsed.as_secs_f64()),
    ])
}

/// Raw sled over the same files, warm: iteration only, then iteration + `Record::decode`.
fn bench_scan_raw(dir: &Path, config: &LogConfig) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let db = sled::Config::new()
        .path(dir.join(SLED_DIR_NAME))
        .cache_capacity(config.sled_cache_bytes)
        .open()?;
    let tree = db.open_tree(layout::TREE_NAME)?;
    let limits = config.record_limits();
    scan_raw(&tree, None)?;
    let (iterate, events, bytes) = scan_raw(&tree, None)?;
    let (decode, _, _) = scan_raw(&tree, Some(&limits))?;
    Ok(vec![
        ("events", events as f64),
        ("bytes", bytes as f64),
        ("iterate_s", iterate.as_secs_f64()),
        ("decode_s", decode.as_secs_f64()),
        ("elapsed_s", iterate.as_secs_f64()),
    ])
}

/// Writes `scan_events` events in large appends, to 100 streams.
fn fill_scan_log(dir: &Path, args: &Args, config: &LogConfig) -> anyhow::Result<()> {
    let log = EventLog::open(dir, config.clone())?;
    let payload = vec![0x5Au8; args.payload_bytes];
    let mut written = 0u64;
    let mut command = 0u64;
    while written < args.scan_events {
        let events = (args.scan_events - written).min(config.append_events_max as u64);
        let command_id = Uuid::now_v7();
        let mut request_hash = [0u8; 32];
        request_hash[..16].copy_from_slice(command_id.as_bytes());
        log.append_blocking(AppendRequest {
            command_id,
            request_hash,
            actor: Some("bench".into()),
            correlation_id: None,
            causation_id: None,
            streams: vec![StreamAppend {
                stream: format!("scan-{}", command % 100),
                expected: ExpectedVersion::Any,
                events: (0..events)
                    .map(|_| NewEvent {
                        event_type: "BenchHappened".into(),
                        schema_version: 1,
                        payload: payload.clone(),
                    })
                    .collect(),
            }],
        })?;
        written += events;
        command += 1;
    }
    log.close();
    Ok(())
}

/// Reads the whole log through `read_all`; returns the time and the number of events.
fn scan_log(log: &EventLog, page_events: usize) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let (mut next, mut events) = (1u64, 0u64);
    loop {
        let records = log.read_all(next, page_events)?;
        let Some(last) = records.last() else { break };
        next = last.position + 1;
        events += records.len() as u64;
    }
    Ok((started.elapsed(), events))
}

/// Iterates every record key of the tree, decoding the value if `limits` is given; returns the
/// time, the number of records and their total bytes.
fn scan_raw(
    tree: &sled::Tree,
    limits: Option<&RecordLimits>,
) -> anyhow::Result<(Duration, u64, u64)> {
    let start = layout::event_key(1);
    let end = [layout::EVENT_PREFIX + 1];
    let started = Instant::now();
    let (mut events, mut bytes) = (0u64, 0u64);
    for entry in tree.range(&start[..]..&end[..]) {
        let (_, value) = entry?;
        if let Some(limits) = limits {
            let record = Record::decode(&value, limits)?;
            std::hint::black_box(&record);
        }
        bytes += value.len() as u64;
        events += 1;
    }
    Ok((started.elapsed(), events, bytes))
}

pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}")
}
