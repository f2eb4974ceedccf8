//! A damaged record is never served as data: reads fail naming its position and `verify`
//! reports it.

mod common;

use common::request;
use crm_eventlog::layout;
use crm_eventlog::{EventLog, ExpectedVersion, LogConfig, LogError, Problem, SLED_DIR_NAME};

/// Flips one byte of the stored record at `position`, going around the log, straight to sled.
fn flip_byte_of_record(dir: &std::path::Path, position: u64, offset: usize) {
    let db = sled::open(dir.join(SLED_DIR_NAME)).expect("open sled");
    let tree = db.open_tree(layout::TREE_NAME).expect("tree");
    let key = layout::event_key(position);
    let mut bytes = tree.get(key).expect("get").expect("record exists").to_vec();
    let offset = offset.min(bytes.len() - 1);
    bytes[offset] ^= 0x01;
    tree.insert(key, bytes).expect("insert");
    db.flush().expect("flush");
}

#[test]
fn a_flipped_byte_fails_the_read_of_that_position_and_verify_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EventLog::open(dir.path(), LogConfig::default()).expect("open");
        for _ in 0..5 {
            log.append_blocking(request("s", ExpectedVersion::Any, 1))
                .expect("append");
        }
        assert!(log.verify().expect("verify").is_clean());
    }
    // A byte in the payload, well inside the record.
    flip_byte_of_record(dir.path(), 3, 60);

    let log = EventLog::open(dir.path(), LogConfig::default()).expect("reopen");
    assert_eq!(log.head(), 5);
    match log.read_all(1, 10) {
        Err(LogError::Corrupt { position, reason }) => {
            assert_eq!(position, 3);
            assert!(reason.contains("checksum"), "reason: {reason}");
        }
        other => panic!("expected Corrupt at 3, got {other:?}"),
    }
    // Undecoded reads hand the bytes on; viewing them finds the damage.
    let stored = log.read_stored(3, 1).expect("stored bytes");
    assert!(matches!(
        stored[0].view(&log.record_limits()),
        Err(LogError::Corrupt { position: 3, .. })
    ));
    // Readers stop at the bad record: what is before and after it still reads.
    assert_eq!(log.read_all(1, 2).expect("before").len(), 2);
    assert_eq!(log.read_all(4, 10).expect("after").len(), 2);
    assert!(matches!(
        log.read_stream("s", 1, 10),
        Err(LogError::Corrupt { position: 3, .. })
    ));

    let report = log.verify().expect("verify");
    assert!(!report.is_clean());
    assert_eq!(report.records_checked, 5);
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::BadRecord { position: 3, .. })),
        "report: {report:?}"
    );
}

#[test]
fn a_flipped_header_byte_is_caught_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EventLog::open(dir.path(), LogConfig::default()).expect("open");
        log.append_blocking(request("s", ExpectedVersion::Any, 2))
            .expect("append");
    }
    // Byte 1 is the low byte of the position field.
    flip_byte_of_record(dir.path(), 2, 1);
    let log = EventLog::open(dir.path(), LogConfig::default()).expect("reopen");
    assert!(matches!(
        log.read_all(2, 1),
        Err(LogError::Corrupt { position: 2, .. })
    ));
    let report = log.verify().expect("verify");
    assert_eq!(report.problems_total, 1, "report: {report:?}");
    assert!(matches!(
        report.problems[0],
        Problem::BadRecord { position: 2, .. }
    ));
}

#[test]
fn verify_reports_a_missing_index_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EventLog::open(dir.path(), LogConfig::default()).expect("open");
        log.append_blocking(request("s", ExpectedVersion::Any, 3))
            .expect("append");
        log.append_blocking(request("t", ExpectedVersion::Any, 1))
            .expect("append");
    }
    {
        let db = sled::open(dir.path().join(SLED_DIR_NAME)).expect("open sled");
        let tree = db.open_tree(layout::TREE_NAME).expect("tree");
        tree.remove(layout::stream_index_key("s", 2))
            .expect("remove index entry");
        db.flush().expect("flush");
    }
    let log = EventLog::open(dir.path(), LogConfig::default()).expect("reopen");
    let report = log.verify().expect("verify");
    assert_eq!(report.problems_total, 1, "report: {report:?}");
    assert!(report.problems.contains(&Problem::IndexMissing {
        position: 2,
        stream: "s".into(),
        version: 2,
    }));
    // A stream read stops loudly at the hole in its index rather than skipping a version.
    assert!(matches!(
        log.read_stream("s", 1, 10),
        Err(LogError::CorruptEntry { .. })
    ));
}
