//! Crash safety with real processes: a child appends with many concurrent writers and records
//! every acknowledged append in a side file; the parent SIGKILLs it at random moments, reopens
//! the log and checks that every acknowledged append is there exactly once, that positions and
//! stream versions are contiguous, and that `verify` is clean.
//!
//! The child is this same test binary, re-run with `--exact crash_child --ignored` and the
//! `CRASH_DIR` environment variable set.

mod common;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{event, hash_of, read_everything};
use crm_eventlog::{
    AppendOutcome, AppendRequest, EventLog, ExpectedVersion, LogConfig, LogError, StreamAppend,
};
use uuid::Uuid;

const CRASH_DIR_ENV: &str = "CRASH_DIR";
const CYCLES: usize = 24;
const WRITERS: usize = 48;
const OWN_STREAMS: usize = WRITERS;
const SHARED_STREAMS: usize = 4;
/// A child that is somehow never killed stops by itself.
const CHILD_LIFETIME_MS_MAX: u64 = 20_000;

#[test]
fn acknowledged_appends_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("log");
    let acks = dir.path().join("acks.txt");
    let mut rng = XorShift::seeded();
    eprintln!("crash test seed {}", rng.0);
    let started = Instant::now();
    let mut kills_during_appends = 0;

    for cycle in 0..CYCLES {
        let acked_before = file_len(&acks);
        let mut child = Command::new(std::env::current_exe().expect("current exe"))
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR_ENV, dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn child");
        // Wait until the child is acknowledging appends, then kill it at a random moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        while file_len(&acks) == acked_before && Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("child exited early with {status}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(
            file_len(&acks) > acked_before,
            "cycle {cycle}: child never acknowledged"
        );
        if cycle == 0 {
            // While the child owns the directory, another process cannot open it.
            match EventLog::open(&log_dir, LogConfig::default()) {
                Err(LogError::Locked { .. }) => {}
                other => panic!("expected Locked while the child runs, got {other:?}"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(150_000)));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(status.code().is_none(), "child was not killed: {status}");
        kills_during_appends += 1;

        check_log(&log_dir, &acks, cycle, &mut rng);
    }
    assert_eq!(kills_during_appends, CYCLES);
    eprintln!(
        "{CYCLES} SIGKILL cycles in {:?}, {} acknowledged appends",
        started.elapsed(),
        parse_acks(&acks).len()
    );
}

/// Reopens the log after a kill and checks it against the acknowledgements.
fn check_log(log_dir: &Path, acks_path: &Path, cycle: usize, rng: &mut XorShift) {
    let acks = parse_acks(acks_path);
    let log = EventLog::open(log_dir, LogConfig::default()).expect("reopen after SIGKILL");
    let records = read_everything(&log);
    assert_eq!(records.len() as u64, log.head(), "cycle {cycle}");
    for (i, record) in records.iter().enumerate() {
        assert_eq!(
            record.position,
            i as u64 + 1,
            "cycle {cycle}: positions contiguous"
        );
    }
    let mut versions: HashMap<&str, u64> = HashMap::new();
    let mut by_command: HashMap<Uuid, Vec<u64>> = HashMap::new();
    for record in &records {
        let version = versions.entry(record.stream.as_str()).or_insert(0);
        *version += 1;
        assert_eq!(
            record.stream_version, *version,
            "cycle {cycle}: stream {} versions contiguous",
            record.stream
        );
        by_command
            .entry(record.command_id)
            .or_default()
            .push(record.position);
    }
    for ack in &acks {
        let positions = by_command
            .get(&ack.command_id)
            .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged {} is lost", ack.command_id));
        let expected: Vec<u64> = (ack.outcome.first_position..=ack.outcome.last_position).collect();
        assert_eq!(
            positions, &expected,
            "cycle {cycle}: {} exactly once",
            ack.command_id
        );
        for s in &ack.outcome.streams {
            let got: Vec<u64> = records
                [(ack.outcome.first_position - 1) as usize..ack.outcome.last_position as usize]
                .iter()
                .filter(|r| r.stream == s.stream)
                .map(|r| r.stream_version)
                .collect();
            assert_eq!(got, (s.first_version..=s.last_version).collect::<Vec<_>>());
        }
    }
    let report = log.verify().expect("verify");
    assert!(report.is_clean(), "cycle {cycle}: {report:?}");

    // A few acknowledged commands retried after the restart get their original outcome.
    for _ in 0..3.min(acks.len()) {
        let ack = &acks[rng.below(acks.len() as u64) as usize];
        let retried = log
            .append_blocking(ack.request())
            .expect("retry after restart");
        assert!(retried.duplicate);
        assert_eq!(
            AppendOutcome {
                duplicate: false,
                ..retried
            },
            ack.outcome
        );
    }
    assert_eq!(log.head(), records.len() as u64, "retries append nothing");
}

/// The child: appends until killed, one ack line per acknowledged append.
#[test]
#[ignore = "child process of acknowledged_appends_survive_sigkill_exactly_once"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let log = EventLog::open(&dir.join("log"), LogConfig::default()).expect("child open");
    let acks = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("acks.txt"))
        .expect("ack file");
    let acks = Arc::new(Mutex::new(acks));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let log = log.clone();
            let acks = Arc::clone(&acks);
            tasks.push(tokio::spawn(async move {
                child_writer(writer, log, acks).await
            }));
        }
        let stop = tokio::time::sleep(Duration::from_millis(CHILD_LIFETIME_MS_MAX));
        tokio::select! {
            _ = stop => {}
            _ = futures_join(tasks) => {}
        }
    });
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        task.await.expect("child writer");
    }
}

/// One concurrent writer: owns stream `own-<writer>` (appended with exact expected versions)
/// and sometimes also appends to a shared stream in the same command.
async fn child_writer(writer: usize, log: EventLog, acks: Arc<Mutex<std::fs::File>>) {
    let own = format!("own-{}", writer % OWN_STREAMS);
    let mut version = log.stream_version(&own).expect("own version");
    for i in 0u64.. {
        let command_id = Uuid::now_v7();
        let mut streams = vec![StreamAppend {
            stream: own.clone(),
            expected: ExpectedVersion::Exact(version),
            events: (0..=(i % 3))
                .map(|n| event("OwnHappened", format!("{writer}:{i}:{n}").as_bytes()))
                .collect(),
        }];
        if i % 4 == 0 {
            streams.push(StreamAppend {
                stream: format!("shared-{}", writer % SHARED_STREAMS),
                expected: ExpectedVersion::Any,
                events: vec![event("SharedHappened", b"x")],
            });
        }
        let request = AppendRequest {
            command_id,
            request_hash: hash_of(command_id, 0),
            actor: Some(format!("writer-{writer}")),
            correlation_id: None,
            causation_id: None,
            streams,
        };
        let outcome = match log.append(request).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // Every append here must succeed (each writer owns its stream): report the
                // failure in the ack file, where the parent reads it as a bad line, and stop.
                let mut file = acks.lock().expect("ack lock");
                file.write_all(format!("ERROR {error}\n").as_bytes())
                    .expect("write error");
                std::process::exit(3);
            }
        };
        version = outcome.streams[0].last_version;
        let line = Ack {
            command_id,
            outcome,
        }
        .to_line();
        // One write call per line; a kill between calls leaves whole lines only.
        let mut file = acks.lock().expect("ack lock");
        file.write_all(line.as_bytes()).expect("write ack");
    }
}

struct Ack {
    command_id: Uuid,
    outcome: AppendOutcome,
}

impl Ack {
    fn to_line(&self) -> String {
        let streams: Vec<String> = self
            .outcome
            .streams
            .iter()
            .map(|s| format!("{}:{}:{}", s.stream, s.first_version, s.last_version))
            .collect();
        format!(
            "{} {} {} {}\n",
            self.command_id,
            self.outcome.first_position,
            self.outcome.last_position,
            streams.join(",")
        )
    }

    fn parse(line: &str) -> Option<Ack> {
        let mut parts = line.split(' ');
        let command_id = Uuid::parse_str(parts.next()?).ok()?;
        let first_position = parts.next()?.parse().ok()?;
        let last_position = parts.next()?.parse().ok()?;
        let streams = parts
            .next()?
            .split(',')
            .map(|s| {
                let mut f = s.split(':');
                Some(crm_eventlog::StreamOutcome {
                    stream: f.next()?.to_owned(),
                    first_version: f.next()?.parse().ok()?,
                    last_version: f.next()?.parse().ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Ack {
            command_id,
            outcome: AppendOutcome {
                first_position,
                last_position,
                streams,
                duplicate: false,
            },
        })
    }

    /// A request with the same id and hash (the log compares hashes, not bodies).
    fn request(&self) -> AppendRequest {
        AppendRequest {
            command_id: self.command_id,
            request_hash: hash_of(self.command_id, 0),
            actor: None,
            correlation_id: None,
            causation_id: None,
            streams: self
                .outcome
                .streams
                .iter()
                .map(|s| StreamAppend {
                    stream: s.stream.clone(),
                    expected: ExpectedVersion::Any,
                    events: vec![event("Retried", b"")],
                })
                .collect(),
        }
    }
}

/// Complete lines only: a line cut by the kill has no newline and is ignored.
fn parse_acks(path: &Path) -> Vec<Ack> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|line| Ack::parse(line).unwrap_or_else(|| panic!("bad ack line {line:?}")))
        .collect()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// A tiny PRNG for kill timings; the seed is printed so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> XorShift {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            });
        XorShift(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
