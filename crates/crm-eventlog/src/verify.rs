//! `verify`: a full scan of the log that checks every record and every index entry against each
//! other and reports each problem found with its position or stream.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;
use uuid::Uuid;

use crate::error::LogError;
use crate::layout::{self, CommandRecord, StreamHead};
use crate::record::Record;
use crate::writer::Shared;

/// What `verify` found. Clean when `problems_total == 0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The durable head the scan checked up to.
    pub head: u64,
    pub records_checked: u64,
    pub streams_checked: u64,
    pub commands_checked: u64,
    /// The first problems found, at most `LogConfig::verify_problems_max` of them.
    pub problems: Vec<Problem>,
    /// How many problems were found in all.
    pub problems_total: u64,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems_total == 0
    }
}

/// One inconsistency in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The record at this position does not decode (checksum, truncation, limits...).
    BadRecord { position: u64, reason: String },
    /// A record is stored under one position but says another.
    PositionMismatch { position: u64, found: u64 },
    /// Positions `from..=to` are missing below the head.
    PositionGap { from: u64, to: u64 },
    /// A record exists beyond the stored head.
    BeyondHead { position: u64, head: u64 },
    /// The stored head does not match the last record or the durable head.
    HeadMismatch {
        stored: u64,
        last_record: u64,
        durable: u64,
    },
    /// A stream's versions are not contiguous from 1.
    StreamVersionGap {
        position: u64,
        stream: String,
        expected: u64,
        found: u64,
    },
    /// A record has no entry in its stream's index.
    IndexMissing {
        position: u64,
        stream: String,
        version: u64,
    },
    /// A stream index entry points to a record that is not that stream's version.
    IndexMismatch {
        stream: String,
        version: u64,
        indexed_position: u64,
        reason: String,
    },
    /// A record's command has no command record.
    CommandMissing { position: u64, command_id: Uuid },
    /// A command record disagrees with the records of that command.
    CommandMismatch { command_id: Uuid, reason: String },
    /// The same command id was appended twice at different positions.
    CommandRepeated { command_id: Uuid, position: u64 },
    /// An index, command or metadata entry does not decode.
    BadEntry { entry: String, reason: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BadRecord { position, reason } => {
                write!(f, "position {position}: bad record: {reason}")
            }
            Problem::PositionMismatch { position, found } => {
                write!(f, "position {position}: record says position {found}")
            }
            Problem::PositionGap { from, to } => write!(f, "positions {from}..={to} are missing"),
            Problem::BeyondHead { position, head } => {
                write!(f, "position {position}: record beyond the head {head}")
            }
            Problem::HeadMismatch {
                stored,
                last_record,
                durable,
            } => write!(
                f,
                "stored head {stored}, last record {last_record}, durable head {durable}"
            ),
            Problem::StreamVersionGap {
                position,
                stream,
                expected,
                found,
            } => write!(
                f,
                "position {position}: stream {stream} expected version {expected}, found {found}"
            ),
            Problem::IndexMissing {
                position,
                stream,
                version,
            } => write!(
                f,
                "position {position}: no index entry for stream {stream} version {version}"
            ),
            Problem::IndexMismatch {
                stream,
                version,
                indexed_position,
                reason,
            } => write!(
                f,
                "stream {stream} version {version} -> position {indexed_position}: {reason}"
            ),
            Problem::CommandMissing {
                position,
                command_id,
            } => write!(f, "position {position}: no command record for {command_id}"),
            Problem::CommandMismatch { command_id, reason } => {
                write!(f, "command {command_id}: {reason}")
            }
            Problem::CommandRepeated {
                command_id,
                position,
            } => write!(
                f,
                "position {position}: command {command_id} appended again"
            ),
            Problem::BadEntry { entry, reason } => write!(f, "{entry}: {reason}"),
        }
    }
}

struct Collector {
    problems: Vec<Problem>,
    total: u64,
    max: usize,
}

impl Collector {
    fn push(&mut self, problem: Problem) {
        tracing::warn!(%problem, "event log verify");
        self.total += 1;
        if self.problems.len() < self.max {
            self.problems.push(problem);
        }
    }
}

/// A run of consecutive records of one command.
struct CommandRun {
    command_id: Uuid,
    first_position: u64,
    last_position: u64,
    /// Per stream: first and last version, in order of appearance.
    streams: Vec<(String, u64, u64)>,
}

/// How often (in records) the scan reports its progress.
const PROGRESS_EVERY: u64 = 4096;

pub(crate) fn verify(
    shared: &Shared,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, LogError> {
    let store = &shared.store;
    let head = shared.head.load(std::sync::atomic::Ordering::Acquire);
    let mut out = Collector {
        problems: Vec::new(),
        total: 0,
        max: shared.config.verify_problems_max,
    };

    // 1. Records: checksum, positions, stream versions, index entries, command runs.
    let mut streams: HashMap<String, StreamHead> = HashMap::new();
    let mut commands_seen: HashSet<Uuid> = HashSet::new();
    let mut run: Option<CommandRun> = None;
    // Positions whose record does not decode; checks that depend on those records are skipped
    // so one damaged record yields one problem, not a cascade.
    let mut bad: HashSet<u64> = HashSet::new();
    let mut records_checked = 0u64;
    let mut commands_checked = 0u64;
    let mut expected_position = 1u64;
    let start = layout::event_key(1);
    let end = layout::event_key(head.saturating_add(1));
    for entry in store.range(&start, &end) {
        let (key, value) = entry?;
        if expected_position.is_multiple_of(PROGRESS_EVERY) {
            progress(expected_position, head);
        }
        let Some(position) = layout::position_of_event_key(&key) else {
            out.push(Problem::BadEntry {
                entry: format!("event key {key:?}"),
                reason: "not a position".into(),
            });
            continue;
        };
        if position != expected_position {
            out.push(Problem::PositionGap {
                from: expected_position,
                to: position - 1,
            });
        }
        expected_position = position + 1;
        records_checked += 1;
        let record = match Record::decode(&value, &shared.limits) {
            Ok(record) => record,
            Err(e) => {
                out.push(Problem::BadRecord {
                    position,
                    reason: e.to_string(),
                });
                bad.insert(position);
                continue;
            }
        };
        if record.position != position {
            out.push(Problem::PositionMismatch {
                position,
                found: record.position,
            });
        }
        check_stream_version(&mut streams, &record, position, bad.len() as u64, &mut out);
        check_index_entry(shared, &record, position, &mut out)?;
        match &mut run {
            Some(r) if r.command_id == record.command_id => {
                r.last_position = position;
                match r.streams.iter_mut().find(|(s, _, _)| *s == record.stream) {
                    Some(entry) => entry.2 = record.stream_version,
                    None => r.streams.push((
                        record.stream.clone(),
                        record.stream_version,
                        record.stream_version,
                    )),
                }
            }
            _ => {
                if let Some(done) = run.take() {
                    commands_checked += 1;
                    check_command_run(shared, &done, &bad, &mut out)?;
                }
                if !commands_seen.insert(record.command_id) {
                    out.push(Problem::CommandRepeated {
                        command_id: record.command_id,
                        position,
                    });
                }
                run = Some(CommandRun {
                    command_id: record.command_id,
                    first_position: position,
                    last_position: position,
                    streams: vec![(
                        record.stream.clone(),
                        record.stream_version,
                        record.stream_version,
                    )],
                });
            }
        }
    }
    if let Some(done) = run.take() {
        commands_checked += 1;
        check_command_run(shared, &done, &bad, &mut out)?;
    }
    if expected_position <= head {
        out.push(Problem::PositionGap {
            from: expected_position,
            to: head,
        });
    }

    progress(head, head);

    // 2. Stream index entries point at the record they name.
    let index_start = [layout::STREAM_INDEX_PREFIX];
    let index_end = [layout::STREAM_INDEX_PREFIX + 1];
    for entry in store.range(&index_start, &index_end) {
        let (key, value) = entry?;
        let Some((stream, version)) = layout::parse_stream_index_key(&key) else {
            out.push(Problem::BadEntry {
                entry: format!("stream index key {key:?}"),
                reason: "does not parse".into(),
            });
            continue;
        };
        let Some(position) = layout::decode_u64(&value) else {
            out.push(Problem::BadEntry {
                entry: format!("stream index {stream}@{version}"),
                reason: format!("{} bytes, expected 8", value.len()),
            });
            continue;
        };
        if position > head {
            continue; // written by a batch still being committed
        }
        let mismatch = |reason: String| Problem::IndexMismatch {
            stream: stream.to_owned(),
            version,
            indexed_position: position,
            reason,
        };
        match store.get(&layout::event_key(position))? {
            None => out.push(mismatch("no record at that position".into())),
            Some(bytes) => match Record::decode(&bytes, &shared.limits) {
                Err(_) => {} // reported by the record scan
                Ok(r) if r.stream != stream || r.stream_version != version => out.push(mismatch(
                    format!("record is stream {} version {}", r.stream, r.stream_version),
                )),
                Ok(_) => {}
            },
        }
    }

    let streams_checked = streams.len() as u64;

    // 3. Every command record decodes and points at records of that command.
    let command_start = [layout::COMMAND_PREFIX];
    let command_end = [layout::COMMAND_PREFIX + 1];
    for entry in store.range(&command_start, &command_end) {
        let (key, value) = entry?;
        let Some(command_id) = key.get(1..).and_then(|b| Uuid::from_slice(b).ok()) else {
            out.push(Problem::BadEntry {
                entry: format!("command key {key:?}"),
                reason: "not a command id".into(),
            });
            continue;
        };
        match CommandRecord::decode(&value) {
            Err(e) => out.push(Problem::BadEntry {
                entry: format!("command record {command_id}"),
                reason: e.to_string(),
            }),
            Ok(c) if c.outcome.first_position > head => {}
            Ok(_) if !commands_seen.contains(&command_id) => out.push(Problem::CommandMismatch {
                command_id,
                reason: "no record carries this command id".into(),
            }),
            Ok(_) => {}
        }
    }

    // 4. Stored head, last record and durable head agree (under the writer's commit lock, so
    //    no batch is half applied while we look).
    {
        let _guard = shared.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        let durable = shared.head.load(std::sync::atomic::Ordering::Acquire);
        let stored = match store.get(layout::META_HEAD_KEY)? {
            None => 0,
            Some(bytes) => match layout::decode_u64(&bytes) {
                Some(v) => v,
                None => {
                    out.push(Problem::BadEntry {
                        entry: "stored head".into(),
                        reason: format!("{} bytes, expected 8", bytes.len()),
                    });
                    durable
                }
            },
        };
        let last_record = last_event_position(shared)?;
        let failed = shared.failed.load(std::sync::atomic::Ordering::Acquire);
        // After a failed flush the stored head may legitimately be ahead of the durable one.
        if stored != last_record || (stored != durable && !failed) {
            out.push(Problem::HeadMismatch {
                stored,
                last_record,
                durable,
            });
        }
        let beyond_start = layout::event_key(stored.saturating_add(1));
        if let Some(entry) = store
            .range(&beyond_start, &[layout::EVENT_PREFIX + 1])
            .next()
        {
            let (key, _) = entry?;
            if let Some(position) = layout::position_of_event_key(&key) {
                out.push(Problem::BeyondHead {
                    position,
                    head: stored,
                });
            }
        }
    }

    Ok(VerifyReport {
        head,
        records_checked,
        streams_checked,
        commands_checked,
        problems: out.problems,
        problems_total: out.total,
    })
}

/// The position of the last stored record, 0 if none.
pub(crate) fn last_event_position(shared: &Shared) -> Result<u64, LogError> {
    let start = [layout::EVENT_PREFIX];
    let end = [layout::EVENT_PREFIX + 1];
    match shared.store.range(&start, &end).next_back() {
        None => Ok(0),
        Some(entry) => {
            let (key, _) = entry?;
            layout::position_of_event_key(&key).ok_or_else(|| LogError::CorruptEntry {
                entry: format!("event key {key:?}"),
                reason: "not a position".into(),
            })
        }
    }
}

fn check_stream_version(
    streams: &mut HashMap<String, StreamHead>,
    record: &Record,
    position: u64,
    bad_records: u64,
    out: &mut Collector,
) {
    let previous = streams.get(&record.stream).map_or(0, |h| h.version);
    let skipped = record.stream_version.saturating_sub(previous + 1);
    // A gap no wider than the damaged records seen so far may be those records.
    let explained = record.stream_version > previous && skipped <= bad_records;
    if record.stream_version != previous + 1 && !explained {
        out.push(Problem::StreamVersionGap {
            position,
            stream: record.stream.clone(),
            expected: previous + 1,
            found: record.stream_version,
        });
    }
    let head = StreamHead {
        version: record.stream_version.max(previous),
        position,
    };
    match streams.get_mut(&record.stream) {
        Some(h) => *h = head,
        None => {
            streams.insert(record.stream.clone(), head);
        }
    }
}

fn check_index_entry(
    shared: &Shared,
    record: &Record,
    position: u64,
    out: &mut Collector,
) -> Result<(), LogError> {
    let key = layout::stream_index_key(&record.stream, record.stream_version);
    match shared.store.get(&key)? {
        None => out.push(Problem::IndexMissing {
            position,
            stream: record.stream.clone(),
            version: record.stream_version,
        }),
        Some(value) => {
            let indexed = layout::decode_u64(&value);
            if indexed != Some(position) {
                out.push(Problem::IndexMismatch {
                    stream: record.stream.clone(),
                    version: record.stream_version,
                    indexed_position: indexed.unwrap_or(0),
                    reason: format!("the record is at position {position}"),
                });
            }
        }
    }
    Ok(())
}

fn check_command_run(
    shared: &Shared,
    run: &CommandRun,
    bad: &HashSet<u64>,
    out: &mut Collector,
) -> Result<(), LogError> {
    let command_id = run.command_id;
    let Some(bytes) = shared.store.get(&layout::command_key(command_id))? else {
        out.push(Problem::CommandMissing {
            position: run.first_position,
            command_id,
        });
        return Ok(());
    };
    let command = match CommandRecord::decode(&bytes) {
        Ok(c) => c,
        Err(_) => return Ok(()), // reported by the command scan
    };
    let outcome = &command.outcome;
    if bad
        .iter()
        .any(|p| (outcome.first_position..=outcome.last_position).contains(p))
    {
        return Ok(()); // its damaged record is already reported
    }
    if outcome.first_position != run.first_position || outcome.last_position != run.last_position {
        out.push(Problem::CommandMismatch {
            command_id,
            reason: format!(
                "command record says positions {}..={}, records are at {}..={}",
                outcome.first_position,
                outcome.last_position,
                run.first_position,
                run.last_position
            ),
        });
        return Ok(());
    }
    let recorded: Vec<(&str, u64, u64)> = outcome
        .streams
        .iter()
        .map(|s| (s.stream.as_str(), s.first_version, s.last_version))
        .collect();
    let actual: Vec<(&str, u64, u64)> = run
        .streams
        .iter()
        .map(|(s, a, b)| (s.as_str(), *a, *b))
        .collect();
    if recorded != actual {
        out.push(Problem::CommandMismatch {
            command_id,
            reason: format!("command record streams {recorded:?}, records {actual:?}"),
        });
    }
    Ok(())
}
