//! `crm-bench export`: `crm export` of a stopped log into a sink, next to `EventLog::read_all`
//! over the same log in the same run (docs/DESIGN.md rule 18). The export reads the same pages,
//! decodes every payload and writes one JSON line per event; the ratio is what the decoding and
//! the JSON cost on top of reading. Goal: export >= 50% of read_all's events/s.
//!
//! The log is the read-model benchmark's (`projections::fill_log`: 13-event customer lives over
//! five streams), filled once; both passes run warm (one untimed pass of each first) and
//! alternate from round to round; medians are reported.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use crm_eventlog::{EventLog, LogConfig};
use crm_export::{export_log, Filter, Plan};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Events in the log.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Records per `read_all` page in the read_all pass (the export reads pages of 4,096).
    #[arg(long, default_value_t = 4096)]
    page_events: usize,
    /// Measurements per figure; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating the benchmark directory")?;
    let log = EventLog::open(&dir.path().join("log"), LogConfig::default())?;
    let runtime = crate::runtime()?;
    runtime.block_on(crate::projections::fill_log(&log, args.events))?;
    let head = log.head();
    println!("# crm-bench export");
    println!("machine: {}", crate::eventlog::machine());
    println!(
        "log: {head} events, read_all pages of {}, rounds: {} (medians)",
        args.page_events, args.rounds
    );
    println!();

    // Warm both paths once, untimed.
    read_all(&log, args.page_events)?;
    let bytes = export(&log)?.1;
    let (mut reads, mut exports) = (Vec::new(), Vec::new());
    for round in 0..args.rounds.max(1) {
        // Alternate which goes first, so drift in the machine's load hits both alike.
        let (read, (export, _)) = if round % 2 == 0 {
            let read = read_all(&log, args.page_events)?;
            (read, export(&log)?)
        } else {
            let export = export(&log)?;
            (read_all(&log, args.page_events)?, export)
        };
        let (read_rate, export_rate) = (rate(head, read), rate(head, export));
        eprintln!(
            "round {round}: read_all {read_rate:>9.0} events/s | export {export_rate:>9.0} events/s | {:>4.0}%",
            100.0 * export_rate / read_rate
        );
        reads.push(read_rate);
        exports.push(export_rate);
    }
    let (read, export) = (median(reads), median(exports));
    println!("| {head} events, warm | events/s | vs read_all |");
    println!("|---|---:|---:|");
    println!(
        "| `EventLog::read_all`, pages of {} | {read:.0} | 100% |",
        args.page_events
    );
    println!(
        "| export to a sink (read_all + decode + JSON line, {:.0} bytes/line) | {export:.0} | {:.0}% |",
        bytes as f64 / head.max(1) as f64,
        100.0 * export / read
    );
    log.close();
    Ok(())
}

/// Reads the whole log through `read_all`; returns the time.
fn read_all(log: &EventLog, page_events: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut next = 1;
    loop {
        let records = log.read_all(next, page_events)?;
        let Some(last) = records.last() else { break };
        next = last.position + 1;
        std::hint::black_box(&records);
    }
    Ok(started.elapsed())
}

/// Exports the whole log into a sink that counts bytes; returns the time and the bytes.
fn export(log: &EventLog) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let plan = Plan::new(None, None, log.head())?;
    let mut sink = Counting(0);
    let summary = export_log(log, plan, Filter::all(), &mut sink, &mut |_| {})?;
    anyhow::ensure!(summary.events == log.head(), "exported {}", summary.events);
    Ok((started.elapsed(), sink.0))
}

/// `/dev/null` that counts what it is given.
struct Counting(u64);

impl std::io::Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn rate(events: u64, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
