//! Would a record-block layout (one sled value per written batch, holding its records back to
//! back) beat the log's layout (one sled value per record)? Both on raw sled, in one process,
//! alternating from round to round: durable batches (apply + flush) of the same entries the log
//! writes (record, stream index, command), and a full scan with every record decoded. The
//! block layout still needs a stream index entry and a command entry per event (stream reads
//! and idempotency look those up by key), so only the record values are grouped.

use std::time::{Duration, Instant};

use anyhow::Context;
use crm_eventlog::layout;
use crm_eventlog::{LogConfig, Record, RecordLimits};

use crate::eventlog::log_entries;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Events written per layout, batch size and round.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Events per durable batch, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64,512")]
    batch: Vec<usize>,
    /// A write measurement stops after this many seconds even if it has not written `--events`.
    #[arg(long, default_value_t = 10)]
    seconds_max: u64,
    /// Payload bytes per event.
    #[arg(long, default_value_t = 200)]
    payload_bytes: usize,
    /// Measurements per figure; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    PerRecord,
    Blocks,
}

/// Events/s written durably, and events/s of a full scan with decode.
struct Figures {
    write: f64,
    scan: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for &batch in &args.batch {
        let (mut per_record, mut blocks) = (Vec::new(), Vec::new());
        for round in 0..args.rounds.max(1) {
            let order = if round % 2 == 0 {
                [Layout::PerRecord, Layout::Blocks]
            } else {
                [Layout::Blocks, Layout::PerRecord]
            };
            for layout in order {
                let figures = measure(layout, batch.max(1), &args)?;
                println!(
                    "batch {batch:>4} round {round}: {layout:?}: write {:>9.0} events/s, scan + decode {:>9.0} events/s",
                    figures.write, figures.scan
                );
                match layout {
                    Layout::PerRecord => per_record.push(figures),
                    Layout::Blocks => blocks.push(figures),
                }
            }
        }
        rows.push((batch, median(&per_record), median(&blocks)));
    }
    println!();
    println!("| events per batch | write, per record | write, blocks | blocks / per record | scan + decode, per record | scan + decode, blocks | blocks / per record |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (batch, per_record, blocks) in rows {
        println!(
            "| {batch} | {:.0} | {:.0} | {:.0}% | {:.0} | {:.0} | {:.0}% |",
            per_record.write,
            blocks.write,
            100.0 * blocks.write / per_record.write,
            per_record.scan,
            blocks.scan,
            100.0 * blocks.scan / per_record.scan
        );
    }
    Ok(())
}

fn median(figures: &[Figures]) -> Figures {
    let pick = |value: fn(&Figures) -> f64| {
        let mut values: Vec<f64> = figures.iter().map(value).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    Figures {
        write: pick(|f| f.write),
        scan: pick(|f| f.scan),
    }
}

fn measure(layout: Layout, batch: usize, args: &Args) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(LogConfig::default().sled_cache_bytes)
        .open()
        .context("opening raw sled")?;
    let tree = db.open_tree(layout::TREE_NAME)?;
    let payload = vec![0xA5u8; args.payload_bytes];
    let entries: Vec<_> = (1..=args.events.max(1))
        .map(|position| log_entries(position, batch, &payload))
        .collect::<anyhow::Result<_>>()?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds_max);
    let started = Instant::now();
    let mut written = 0u64;
    for chunk in entries.chunks(batch) {
        if Instant::now() >= deadline {
            break;
        }
        let mut sled_batch = sled::Batch::default();
        let mut block = Vec::new();
        for [record, index, command] in chunk {
            match layout {
                Layout::PerRecord => sled_batch.insert(record.0.clone(), record.1.clone()),
                Layout::Blocks => {
                    block.extend_from_slice(&(record.1.len() as u32).to_le_bytes());
                    block.extend_from_slice(&record.1);
                }
            }
            sled_batch.insert(index.0.clone(), index.1.clone());
            sled_batch.insert(command.0.clone(), command.1.clone());
        }
        if layout == Layout::Blocks {
            // Keyed by the block's first position, like a record key.
            sled_batch.insert(&layout::event_key(written + 1)[..], block);
        }
        written += chunk.len() as u64;
        sled_batch.insert(layout::META_HEAD_KEY, &layout::encode_u64(written)[..]);
        tree.apply_batch(sled_batch)?;
        tree.flush()?;
    }
    let write = written as f64 / started.elapsed().as_secs_f64();

    let limits = RecordLimits::default();
    let started = Instant::now();
    let mut decoded = 0u64;
    let (first, past) = (layout::event_key(1), layout::event_key(written + 1));
    for entry in tree.range(first..past) {
        let (_, value) = entry?;
        match layout {
            Layout::PerRecord => {
                Record::decode(&value, &limits)?;
                decoded += 1;
            }
            Layout::Blocks => {
                let mut rest = &value[..];
                while let Some((len, tail)) = rest.split_first_chunk::<4>() {
                    let len = u32::from_le_bytes(*len) as usize;
                    let (record, tail) = tail.split_at_checked(len).context("a short block")?;
                    Record::decode(record, &limits)?;
                    decoded += 1;
                    rest = tail;
                }
            }
        }
    }
    anyhow::ensure!(
        decoded == written,
        "{layout:?}: wrote {written} events, scanned {decoded}"
    );
    let scan = decoded as f64 / started.elapsed().as_secs_f64();
    Ok(Figures { write, scan })
}
