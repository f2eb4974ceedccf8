//! `recorded_at` rises with position (non-decreasing) across batches and restarts, whatever
//! the wall clock does (docs/DESIGN.md rule 13): an injected clock that lags never stamps
//! below what the log already holds.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use common::{read_everything, request};
use crm_eventlog::layout;
use crm_eventlog::{
    Clock, EventLog, ExpectedVersion, LogClock, LogConfig, LogError, Record, SLED_DIR_NAME,
};

/// A clock the test sets by hand.
#[derive(Debug)]
struct HandClock(AtomicI64);

impl HandClock {
    fn at(now_us: i64) -> Arc<HandClock> {
        Arc::new(HandClock(AtomicI64::new(now_us)))
    }

    fn set(&self, now_us: i64) {
        self.0.store(now_us, Ordering::SeqCst);
    }
}

impl Clock for HandClock {
    fn now_us(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn open_with(dir: &std::path::Path, clock: &Arc<HandClock>) -> EventLog {
    let config = LogConfig {
        clock: LogClock::custom(Arc::clone(clock) as Arc<dyn Clock>),
        ..LogConfig::default()
    };
    EventLog::open(dir, config).expect("open")
}

/// Appends one command of `events` events: each `append_blocking` is its own batch here.
fn append(log: &EventLog, events: usize) {
    log.append_blocking(request("s", ExpectedVersion::Any, events))
        .expect("append");
}

fn recorded_at(records: &[Record]) -> Vec<i64> {
    records.iter().map(|r| r.recorded_at_us).collect()
}

fn assert_non_decreasing(records: &[Record]) {
    for pair in records.windows(2) {
        assert!(
            pair[0].recorded_at_us <= pair[1].recorded_at_us,
            "recorded_at goes back from position {} ({}) to {} ({})",
            pair[0].position,
            pair[0].recorded_at_us,
            pair[1].position,
            pair[1].recorded_at_us
        );
    }
}

#[test]
fn a_clock_behind_the_log_after_a_restart_never_stamps_below_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    // First run on the system clock.
    {
        let log = EventLog::open(dir.path(), LogConfig::default()).expect("open");
        append(&log, 2);
        append(&log, 1);
        log.close();
    }
    let head_at = {
        let log = EventLog::open(dir.path(), LogConfig::default()).expect("reopen");
        read_everything(&log)
            .last()
            .expect("a record")
            .recorded_at_us
    };

    // Second run: the clock is in 1970, far behind the stored head.
    let clock = HandClock::at(1_000_000);
    {
        let log = open_with(dir.path(), &clock);
        append(&log, 3);
        append(&log, 1);
        log.close();
    }
    // Third run: still behind; then the clock catches up and passes the head.
    {
        let log = open_with(dir.path(), &clock);
        append(&log, 1);
        clock.set(head_at + 10);
        append(&log, 2);
        log.close();
    }

    let log = open_with(dir.path(), &clock);
    let all = read_everything(&log);
    assert_eq!(all.len(), 10);
    assert_non_decreasing(&all);
    // Every stamp taken while the clock lagged is the head's; then the clock's own reading.
    assert!(recorded_at(&all[3..8]).iter().all(|&at| at == head_at));
    assert_eq!(recorded_at(&all[8..]), vec![head_at + 10; 2]);
}

#[test]
fn a_clock_going_back_within_one_run_is_held_at_the_last_stamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = HandClock::at(5_000);
    let log = open_with(dir.path(), &clock);
    let readings = [5_000, 4_000, 4_500, 6_000, 5_999, 7_000];
    for now in readings {
        clock.set(now);
        append(&log, 1);
    }
    let all = read_everything(&log);
    assert_eq!(
        recorded_at(&all),
        vec![5_000, 5_000, 5_000, 6_000, 6_000, 7_000]
    );
}

/// Flips one payload byte of the stored record at `position`, straight in sled.
fn damage_record(dir: &std::path::Path, position: u64) {
    let db = sled::open(dir.join(SLED_DIR_NAME)).expect("open sled");
    let tree = db.open_tree(layout::TREE_NAME).expect("tree");
    let key = layout::event_key(position);
    let mut bytes = tree.get(key).expect("get").expect("record").to_vec();
    let offset = 60.min(bytes.len() - 1);
    bytes[offset] ^= 0x01;
    tree.insert(key, bytes).expect("insert");
    db.flush().expect("flush");
}

#[test]
fn a_damaged_head_record_refuses_appends_but_keeps_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EventLog::open(dir.path(), LogConfig::default()).expect("open");
        append(&log, 2);
        log.close();
    }
    damage_record(dir.path(), 2);
    // The log still opens, so reads and verify can show what is wrong.
    let log = EventLog::open(dir.path(), LogConfig::default()).expect("reopen");
    match log.append_blocking(request("s", ExpectedVersion::Any, 1)) {
        Err(LogError::Corrupt { position, reason }) => {
            assert_eq!(position, 2);
            assert!(reason.contains("recorded_at"), "reason: {reason}");
        }
        other => panic!("expected Corrupt at 2, got {other:?}"),
    }
    assert_eq!(log.head(), 2);
    assert_eq!(log.read_all(1, 1).expect("position 1").len(), 1);
    assert!(!log.verify().expect("verify").is_clean());
}
