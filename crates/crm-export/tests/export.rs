//! The export library against a real log and a real nats-server: every event type, both
//! sources giving the same bytes (with short pages, filters and ranges), a held log, and an
//! offline export that leaves the log's files as they were.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crm_domain::codec::encode_event;
use crm_domain::Event;
use crm_eventlog::{AppendRequest, EventLog, ExpectedVersion, LogConfig, NewEvent, StreamAppend};
use crm_export::{
    export_log, export_nats, open_stopped_log, ExportError, Filter, NatsSource, Plan,
};
use crm_testkit::{NatsServer, NatsServerOptions, TempDataDir};
use serde_json::Value;
use uuid::Uuid;

/// Events of every type: crm-proj-testkit's arbitrary events for every drawn kind (its
/// kinds are weighted draws, so 0..=200 reaches each type at least once).
fn events() -> Vec<(crm_domain::Timestamp, Event)> {
    let seeds: Vec<_> = (0..=200u8)
        .map(|i| (i, i % 3, i % 4, 1000 + u16::from(i)))
        .collect();
    crm_proj_testkit::arbitrary_stream(&seeds)
        .into_iter()
        .map(|e| (e.occurred_at, e.event))
        .collect()
}

/// A log in `dir` holding [`events`], one command each, on per-aggregate streams, with an
/// actor on every other command.
fn fill(dir: &Path) -> EventLog {
    let log = EventLog::open(dir, LogConfig::default()).expect("open log");
    for (i, (at, event)) in events().into_iter().enumerate() {
        let command_id = Uuid::from_u128(i as u128 + 1);
        log.append_blocking(AppendRequest {
            command_id,
            request_hash: [i as u8; 32],
            actor: (i % 2 == 0).then(|| format!("actor-{i}")),
            correlation_id: None,
            causation_id: None,
            streams: vec![StreamAppend {
                stream: format!("{}-{}", event.aggregate(), i % 5),
                expected: ExpectedVersion::Any,
                events: vec![NewEvent {
                    event_type: event.event_type().to_owned(),
                    schema_version: event.schema_version(),
                    payload: encode_event(at, &event).expect("encode"),
                }],
            }],
        })
        .expect("append");
    }
    log
}

fn offline(log: &EventLog, from: Option<u64>, to: Option<u64>, filter: Filter) -> Vec<u8> {
    let plan = Plan::new(from, to, log.head()).expect("plan");
    let mut out = Vec::new();
    export_log(log, plan, filter, &mut out, &mut |_| {}).expect("offline export");
    out
}

#[test]
fn every_event_type_exports_its_json_api_body() {
    let dir = TempDataDir::new().unwrap();
    let log = fill(dir.path());
    let out = offline(&log, None, None, Filter::all());
    let expected = events();
    let lines: Vec<&[u8]> = out.split_inclusive(|b| *b == b'\n').collect();
    assert_eq!(lines.len(), expected.len());
    let mut seen = BTreeMap::new();
    for (i, (line, (at, event))) in lines.iter().zip(&expected).enumerate() {
        let line: Value = serde_json::from_slice(line).expect("a JSON line");
        let tagged = serde_json::to_value(event).unwrap();
        assert_eq!(line["position"], i as u64 + 1);
        assert_eq!(line["event_type"], tagged["type"]);
        assert_eq!(line["data"], tagged["data"], "{line}");
        assert_eq!(line["occurred_at"], at.to_string());
        assert_eq!(
            line["command_id"],
            Uuid::from_u128(i as u128 + 1).to_string()
        );
        let actor = (i % 2 == 0).then(|| format!("actor-{i}"));
        assert_eq!(line["actor"], serde_json::to_value(actor).unwrap());
        *seen.entry(event.event_type()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), Event::TYPES.len(), "every type: {seen:?}");
}

#[test]
fn filters_and_ranges_select_from_the_full_export() {
    let dir = TempDataDir::new().unwrap();
    let log = fill(dir.path());
    let full = offline(&log, None, None, Filter::all());
    let full: Vec<Value> = full
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let filter = Filter::parse(
        ["order", "ticket"],
        ["OrderPlaced", "TicketOpened", "LeadWon"],
    )
    .unwrap();
    let part = offline(&log, Some(5), Some(190), filter);
    let part: Vec<Value> = part
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let expected: Vec<&Value> = full
        .iter()
        .filter(|l| (5..=190).contains(&l["position"].as_u64().unwrap()))
        .filter(|l| ["OrderPlaced", "TicketOpened"].contains(&l["event_type"].as_str().unwrap()))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(part.iter().collect::<Vec<_>>(), expected);
    // Beyond the head: up to the head; from beyond the head: nothing.
    assert_eq!(
        offline(&log, Some(60), Some(10_000), Filter::all()),
        offline(&log, Some(60), None, Filter::all())
    );
    assert!(offline(&log, Some(log.head() + 1), None, Filter::all()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_equals_offline_byte_for_byte_even_in_short_pages() {
    // A small max_payload cuts crm.log.read pages to a few records each.
    let nats = NatsServer::start_with(NatsServerOptions::with_config("max_payload: 10240"))
        .expect("nats-server");
    let dir = TempDataDir::new().unwrap();
    let log = tokio::task::block_in_place(|| fill(dir.path()));
    let client = nats.connect().await;
    let subjects = crm_wire::Subjects::new(crm_wire::DEFAULT_PREFIX);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let api = tokio::spawn(crm_service::serve_log_api(
        client.clone(),
        log.clone(),
        subjects.clone(),
        crm_service::Instance::new(),
        stop_rx,
    ));
    client.flush().await.unwrap();
    let source = NatsSource {
        client: nats.connect().await,
        subjects,
        record_limits: log.record_limits(),
        timeout: Duration::from_secs(20),
    };
    assert_eq!(source.head().await.unwrap(), log.head());
    let cases = [
        (None, None, Filter::all()),
        (Some(3), Some(41), Filter::all()),
        (
            None,
            Some(9_999),
            Filter::parse(["lead"], Vec::<String>::new()).unwrap(),
        ),
        (
            Some(10),
            None,
            Filter::parse(Vec::<String>::new(), ["CustomerRegistered"]).unwrap(),
        ),
    ];
    for (from, to, filter) in cases {
        let plan = Plan::new(from, to, source.head().await.unwrap()).unwrap();
        let mut pages = 0;
        let mut over_nats = Vec::new();
        let summary = export_nats(&source, plan, filter.clone(), &mut over_nats, &mut |_| {
            pages += 1
        })
        .await
        .expect("export over NATS");
        let local = offline(&log, from, to, filter);
        assert_eq!(
            String::from_utf8(over_nats).unwrap(),
            String::from_utf8(local.clone()).unwrap()
        );
        assert_eq!(
            summary.events,
            local.iter().filter(|b| **b == b'\n').count() as u64
        );
        if plan.len() > 20 {
            assert!(pages > 2, "short pages: {pages} for {plan:?}");
        }
    }
    stop.send(true).unwrap();
    api.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_api_on_the_server_is_a_one_line_error() {
    let nats = NatsServer::start().expect("nats-server");
    let source = NatsSource {
        client: nats.connect().await,
        subjects: crm_wire::Subjects::new("crm"),
        record_limits: Default::default(),
        timeout: Duration::from_secs(20),
    };
    let error = source.head().await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ExportError::Nats { .. }), "{text}");
    assert!(text.contains("no service answers"), "{text}");
    assert!(!text.contains('\n'));
}

#[test]
fn a_log_held_by_another_opener_is_refused() {
    let dir = TempDataDir::new().unwrap();
    let log = fill(dir.path());
    let error = open_stopped_log(dir.path(), LogConfig::default()).unwrap_err();
    assert!(matches!(error, ExportError::LogHeld { .. }), "{error}");
    assert!(error.to_string().contains("--nats-url"), "{error}");
    log.close();
    drop(log);
    assert!(open_stopped_log(dir.path(), LogConfig::default()).is_ok());
}

#[test]
fn a_directory_without_a_log_is_refused_and_left_empty() {
    let dir = TempDataDir::new().unwrap();
    let error = open_stopped_log(dir.path(), LogConfig::default()).unwrap_err();
    assert!(matches!(error, ExportError::NoLog { .. }), "{error}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let missing = open_stopped_log(&dir.join("nope"), LogConfig::default()).unwrap_err();
    assert!(
        missing.to_string().starts_with("no event log at "),
        "{missing}"
    );
    assert!(!dir.join("nope").exists());
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                todo.push(entry.path());
            } else {
                let name = entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string();
                out.insert(name, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    out
}

fn changed(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut names: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| before.get(n) != after.get(n))
        .collect()
}

/// What opening a stopped log may write: the first opener after the writer stopped lets sled
/// finish its recovery (a new `snap.*` file, its data file's tail); no record changes, and
/// every later opener writes nothing at all.
#[test]
fn an_offline_export_changes_no_record_and_after_the_first_open_no_file() {
    let dir = TempDataDir::new().unwrap();
    let log = fill(dir.path());
    let written = offline(&log, None, None, Filter::all());
    log.close();
    drop(log);
    for round in 0..3 {
        let before = contents(dir.path());
        let log = open_stopped_log(dir.path(), LogConfig::default()).unwrap();
        assert_eq!(offline(&log, None, None, Filter::all()), written);
        log.close();
        drop(log);
        let changed = changed(&before, &contents(dir.path()));
        if round == 0 {
            assert!(
                changed
                    .iter()
                    .all(|n| n == "sled/db" || n.starts_with("sled/snap.")),
                "{changed:?}"
            );
        } else {
            assert!(changed.is_empty(), "round {round}: {changed:?}");
        }
    }
}
