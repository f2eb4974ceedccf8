//! Appends, expected versions, idempotency, group commit, locking, failure and reads, on real
//! sled directories.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{event, hash_of, read_everything, request};
use crm_eventlog::{
    AppendRequest, EventLog, ExpectedVersion, LogConfig, LogError, RequestError, StreamAppend,
};
use uuid::Uuid;

fn open(dir: &std::path::Path) -> EventLog {
    EventLog::open(dir, LogConfig::default()).expect("open")
}

#[tokio::test]
async fn appends_get_contiguous_positions_and_stream_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    assert_eq!(log.head(), 0);
    let a = log
        .append(request("a", ExpectedVersion::NoStream, 2))
        .await
        .expect("a");
    let b = log
        .append(request("b", ExpectedVersion::Any, 1))
        .await
        .expect("b");
    let a2 = log
        .append(request("a", ExpectedVersion::Exact(2), 3))
        .await
        .expect("a2");
    assert_eq!((a.first_position, a.last_position), (1, 2));
    assert_eq!((b.first_position, b.last_position), (3, 3));
    assert_eq!((a2.first_position, a2.last_position), (4, 6));
    assert_eq!(
        (a2.streams[0].first_version, a2.streams[0].last_version),
        (3, 5)
    );
    assert!(!a.duplicate);
    assert_eq!(log.head(), 6);
    assert_eq!(log.stream_version("a").expect("version"), 5);
    assert_eq!(log.stream_version("nope").expect("version"), 0);

    let all = read_everything(&log);
    let positions: Vec<u64> = all.iter().map(|r| r.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 4, 5, 6]);
    let stream_a = log.read_stream("a", 1, 100).expect("read a");
    let versions: Vec<u64> = stream_a.iter().map(|r| r.stream_version).collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);
    assert_eq!(stream_a[0].actor.as_deref(), Some("tester"));
    assert_eq!(stream_a[0].payload, b"a-0");
    assert_eq!(
        log.read_stream("a", 4, 1).expect("page")[0].stream_version,
        4
    );
    assert!(log.read_stream("a", 6, 10).expect("past end").is_empty());
    assert!(log.verify().expect("verify").is_clean());
}

#[tokio::test]
async fn expected_version_rules_follow_kurrentdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let wrong = |r: Result<_, LogError>, want: u64| match r {
        Err(LogError::WrongExpectedVersion { current, .. }) => assert_eq!(current, want),
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    };
    wrong(
        log.append(request("s", ExpectedVersion::Exists, 1)).await,
        0,
    );
    wrong(
        log.append(request("s", ExpectedVersion::Exact(1), 1)).await,
        0,
    );
    log.append(request("s", ExpectedVersion::Exact(0), 1))
        .await
        .expect("exact 0 on a new stream");
    wrong(
        log.append(request("s", ExpectedVersion::NoStream, 1)).await,
        1,
    );
    log.append(request("s", ExpectedVersion::Exists, 1))
        .await
        .expect("exists");
    log.append(request("s", ExpectedVersion::Any, 1))
        .await
        .expect("any");
    wrong(
        log.append(request("s", ExpectedVersion::Exact(2), 1)).await,
        3,
    );
    assert_eq!(log.head(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_a_hundred_concurrent_appenders_with_the_same_expected_version_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    log.append(request("contended", ExpectedVersion::NoStream, 1))
        .await
        .expect("seed");
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(request("contended", ExpectedVersion::Exact(1), 1))
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(outcome) => {
                wins += 1;
                assert_eq!(outcome.streams[0].last_version, 2);
            }
            Err(LogError::WrongExpectedVersion {
                stream,
                expected,
                current,
            }) => {
                assert_eq!(stream, "contended");
                assert_eq!(expected, ExpectedVersion::Exact(1));
                assert_eq!(current, 2);
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(log.stream_version("contended").expect("version"), 2);
    assert_eq!(log.head(), 2);
    assert!(log.verify().expect("verify").is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_in_one_batch_see_each_other_and_a_rejection_spoils_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A long batch wait so every append below lands in one group commit.
    let config = LogConfig {
        batch_wait_us_max: 200_000,
        ..LogConfig::default()
    };
    let log = EventLog::open(dir.path(), config).expect("open");
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            // Even tasks append to a shared stream with Any; odd tasks all claim NoStream on
            // another stream: one of them wins, inside the same batch as the others.
            let req = if i % 2 == 0 {
                request("shared", ExpectedVersion::Any, 2)
            } else {
                request("claimed", ExpectedVersion::NoStream, 1)
            };
            log.append(req).await
        }));
    }
    let mut claimed = 0;
    let mut rejected = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(o) if o.streams[0].stream == "claimed" => claimed += 1,
            Ok(_) => {}
            Err(LogError::WrongExpectedVersion { current, .. }) => {
                assert_eq!(current, 1);
                rejected += 1;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!((claimed, rejected), (1, 9));
    let stats = log.stats();
    assert_eq!(stats.appends, 20);
    assert!(
        stats.batches <= 2,
        "expected one group commit, got {stats:?}"
    );
    assert_eq!(log.head(), 21);
    let versions: Vec<u64> = log
        .read_stream("shared", 1, 100)
        .expect("read")
        .iter()
        .map(|r| r.stream_version)
        .collect();
    assert_eq!(versions, (1..=20).collect::<Vec<_>>());
    assert!(log.verify().expect("verify").is_clean());
}

#[tokio::test]
async fn retried_command_returns_original_positions_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = request("orders", ExpectedVersion::NoStream, 2);
    let original = {
        let log = open(dir.path());
        let original = log.append(first.clone()).await.expect("append");
        log.append(request("other", ExpectedVersion::Any, 1))
            .await
            .expect("other");
        let again = log.append(first.clone()).await.expect("retry");
        assert!(again.duplicate);
        assert_eq!(
            (again.first_position, again.last_position, &again.streams),
            (1, 2, &original.streams)
        );
        log.shutdown().await;
        original
    };

    let log = open(dir.path());
    let retried = log
        .append(first.clone())
        .await
        .expect("retry after restart");
    assert!(retried.duplicate);
    assert_eq!(
        AppendOutcome {
            duplicate: false,
            ..retried
        },
        original
    );
    assert_eq!(log.head(), 3, "a duplicate appends nothing");

    let mut other_body = first.clone();
    other_body.request_hash = hash_of(first.command_id, 1);
    match log.append(other_body).await {
        Err(LogError::IdempotencyKeyReused { command_id }) => {
            assert_eq!(command_id, first.command_id)
        }
        other => panic!("expected IdempotencyKeyReused, got {other:?}"),
    }
    assert_eq!(log.head(), 3);
}

use crm_eventlog::AppendOutcome;

#[tokio::test]
async fn a_rejected_command_is_not_recorded_and_may_be_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let mut req = request("s", ExpectedVersion::Exists, 1);
    assert!(matches!(
        log.append(req.clone()).await,
        Err(LogError::WrongExpectedVersion { .. })
    ));
    req.streams[0].expected = ExpectedVersion::NoStream;
    let outcome = log.append(req).await.expect("same id, now valid");
    assert!(!outcome.duplicate);
    assert_eq!(outcome.first_position, 1);
}

#[test]
fn duplicates_within_one_batch_get_the_original_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        batch_wait_us_max: 200_000,
        ..LogConfig::default()
    };
    let log = EventLog::open(dir.path(), config).expect("open");
    let req = request("s", ExpectedVersion::NoStream, 1);
    let mut reused = req.clone();
    reused.request_hash = hash_of(req.command_id, 9);
    let threads: Vec<_> = [req.clone(), req.clone(), reused]
        .into_iter()
        .map(|r| {
            let log = log.clone();
            std::thread::spawn(move || log.append_blocking(r))
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    // The threads may reach the writer in any order: the first of them sets the command's
    // request hash; the same hash then gets the original outcome, the other one is refused.
    let reused_first = results[2].is_ok();
    let (same, other): (Vec<_>, Vec<_>) = if reused_first {
        (vec![&results[2]], vec![&results[0], &results[1]])
    } else {
        (vec![&results[0], &results[1]], vec![&results[2]])
    };
    let accepted: Vec<&AppendOutcome> = same.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(accepted.len(), same.len());
    assert_eq!(
        accepted.iter().filter(|o| o.duplicate).count(),
        same.len() - 1
    );
    assert!(accepted.iter().all(|o| o.first_position == 1));
    assert!(other
        .iter()
        .all(|r| matches!(r, Err(LogError::IdempotencyKeyReused { .. }))));
    assert_eq!(log.head(), 1);
}

#[test]
fn a_second_opener_of_the_directory_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    match EventLog::open(dir.path(), LogConfig::default()) {
        Err(LogError::Locked { dir: locked }) => assert_eq!(locked, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    log.append_blocking(request("s", ExpectedVersion::Any, 1))
        .expect("append");
    drop(log);
    let reopened = open(dir.path());
    assert_eq!(reopened.head(), 1);
}

#[tokio::test]
async fn a_failed_flush_makes_the_log_read_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    log.append(request("s", ExpectedVersion::NoStream, 2))
        .await
        .expect("before");
    let mut head_rx = log.subscribe_head();
    head_rx.mark_unchanged();

    log.inject_flush_failure(true);
    assert!(matches!(
        log.append(request("s", ExpectedVersion::Exact(2), 1)).await,
        Err(LogError::Failed)
    ));
    assert!(log.is_failed());
    // Even once the disk "recovers", the log stays read-only until reopened.
    log.inject_flush_failure(false);
    assert!(matches!(
        log.append(request("t", ExpectedVersion::Any, 1)).await,
        Err(LogError::Failed)
    ));
    // Reads work and never show the batch that was not made durable.
    assert_eq!(log.head(), 2);
    assert!(!head_rx.has_changed().expect("watch"));
    assert_eq!(read_everything(&log).len(), 2);
    assert_eq!(log.stream_version("s").expect("version"), 2);
    assert_eq!(log.read_stream("s", 1, 10).expect("read").len(), 2);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_the_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let mut empty = request("s", ExpectedVersion::Any, 1);
    empty.streams.clear();
    assert!(matches!(
        log.append(empty).await,
        Err(LogError::InvalidRequest(RequestError::NoStreams))
    ));

    let mut too_big = request("s", ExpectedVersion::Any, 1);
    too_big.streams[0].events[0].payload = vec![0; crm_eventlog::PAYLOAD_BYTES_MAX_DEFAULT + 1];
    assert!(matches!(
        log.append(too_big).await,
        Err(LogError::InvalidRequest(
            RequestError::PayloadTooLarge { .. }
        ))
    ));

    let mut twice = request("s", ExpectedVersion::Any, 1);
    twice.streams.push(twice.streams[0].clone());
    assert!(matches!(
        log.append(twice).await,
        Err(LogError::InvalidRequest(
            RequestError::DuplicateStream { .. }
        ))
    ));

    let mut no_events = request("s", ExpectedVersion::Any, 1);
    no_events.streams[0].events.clear();
    assert!(matches!(
        log.append(no_events).await,
        Err(LogError::InvalidRequest(RequestError::NoEvents { .. }))
    ));

    let unnamed = request("", ExpectedVersion::Any, 1);
    assert!(matches!(
        log.append(unnamed).await,
        Err(LogError::InvalidRequest(RequestError::FieldLength {
            field: "stream",
            ..
        }))
    ));
    assert_eq!(log.head(), 0);
    assert_eq!(log.stats().appends, 0);
}

#[tokio::test]
async fn a_multi_stream_append_is_all_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    log.append(request("b", ExpectedVersion::NoStream, 1))
        .await
        .expect("seed b");
    let command_id = Uuid::now_v7();
    let both = |expected_b| AppendRequest {
        command_id,
        request_hash: hash_of(command_id, 0),
        actor: None,
        correlation_id: Some("corr".into()),
        causation_id: None,
        streams: vec![
            StreamAppend {
                stream: "a".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![event("A", b"1"), event("A", b"2")],
            },
            StreamAppend {
                stream: "b".into(),
                expected: expected_b,
                events: vec![event("B", b"3")],
            },
        ],
    };
    assert!(matches!(
        log.append(both(ExpectedVersion::NoStream)).await,
        Err(LogError::WrongExpectedVersion { ref stream, current: 1, .. }) if stream == "b"
    ));
    assert_eq!(log.head(), 1);
    assert_eq!(log.stream_version("a").expect("a"), 0);

    let outcome = log
        .append(both(ExpectedVersion::Exact(1)))
        .await
        .expect("both");
    assert_eq!((outcome.first_position, outcome.last_position), (2, 4));
    assert_eq!(outcome.streams.len(), 2);
    assert_eq!(outcome.streams[1].first_version, 2);
    let records = read_everything(&log);
    assert!(records[1..].iter().all(|r| r.command_id == command_id));
    assert_eq!(records[3].correlation_id.as_deref(), Some("corr"));
    assert!(log.verify().expect("verify").is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_wake_after_the_flush_without_polling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let mut head = log.subscribe_head();
    let waiter = tokio::spawn(async move {
        let seen = *head.wait_for(|h| *h >= 3).await.expect("watch");
        seen
    });
    for _ in 0..3 {
        log.append(request("s", ExpectedVersion::Any, 1))
            .await
            .expect("append");
    }
    let seen = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken")
        .expect("task");
    assert_eq!(seen, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_batches_are_handed_on_as_stored_and_equal_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let mut committed = log.subscribe_committed();
    let appends: Vec<_> = (0..50)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(request(
                    &format!("s{}", i % 7),
                    ExpectedVersion::Any,
                    1 + i % 3,
                ))
                .await
                .expect("append")
            })
        })
        .collect();
    for append in appends {
        append.await.expect("task");
    }
    let head = log.head();
    let mut handed = Vec::new();
    while handed.len() < head as usize {
        let batch = tokio::time::timeout(Duration::from_secs(5), committed.recv())
            .await
            .expect("a batch")
            .expect("not lagged");
        handed.extend(batch.iter().cloned());
    }
    // In position order, as stored, and what `read_all` decodes.
    let stored = log.read_stored(1, head as usize).expect("read_stored");
    assert_eq!(handed, stored);
    let decoded = log.read_all(1, head as usize).expect("read_all");
    let limits = log.record_limits();
    for (record, stored) in decoded.iter().zip(&stored) {
        assert_eq!(stored.bytes(), &record.encode().expect("encode")[..]);
        assert_eq!(stored.view(&limits).expect("view").to_record(), *record);
    }
    assert_eq!(
        log.read_stored(head + 1, 10).expect("beyond the head"),
        vec![]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_what_is_queued_then_refuses_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let appended = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let log = log.clone();
            let appended = Arc::clone(&appended);
            tokio::spawn(async move {
                match log.append(request("s", ExpectedVersion::Any, 1)).await {
                    Ok(_) => {
                        appended.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(LogError::ShuttingDown) => {}
                    Err(other) => panic!("unexpected error {other}"),
                }
            })
        })
        .collect();
    tokio::task::yield_now().await;
    log.shutdown().await;
    for task in tasks {
        task.await.expect("task");
    }
    assert!(matches!(
        log.append(request("s", ExpectedVersion::Any, 1)).await,
        Err(LogError::ShuttingDown)
    ));
    assert_eq!(
        log.head(),
        appended.load(std::sync::atomic::Ordering::Relaxed)
    );
    drop(log);
    let reopened = open(dir.path());
    assert_eq!(
        reopened.head(),
        appended.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(reopened.verify().expect("verify").is_clean());
}

#[test]
fn read_all_pages_stop_at_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    for _ in 0..10 {
        log.append_blocking(request("s", ExpectedVersion::Any, 3))
            .expect("append");
    }
    assert_eq!(log.head(), 30);
    let page = log.read_all(28, 100).expect("page");
    assert_eq!(
        page.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![28, 29, 30]
    );
    assert_eq!(log.read_all(0, 2).expect("from 0")[0].position, 1);
    assert!(log.read_all(31, 10).expect("beyond").is_empty());
    assert!(log.read_all(5, 0).expect("zero").is_empty());
    assert_eq!(read_everything(&log).len(), 30);
}
