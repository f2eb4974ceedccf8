//! The projection runtime against a real nats-server, a real log and the real command
//! service: live model = rebuild, byte for byte; duplicates and shuffles change nothing; a
//! nats-server outage is survived.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use crm_eventlog::{EventLog, LogConfig};
use crm_projector::versions::{VersionSwitch, VersionsError};
use crm_projector::{
    rebuild_into, Change, EventEnvelope, LogSource, Projection, Projector, ProjectorConfig,
    ProjectorError, ProjectorState, QueryError, StoreRows,
};
use crm_service::{
    serve_commands, serve_log_api, CommandHandler, CommandRequest, HandlerConfig, ServiceConfig,
    Tailer, TailerConfig,
};
use crm_testkit::{NatsServer, TempDataDir};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use uuid::Uuid;

/// A minimal deterministic read model: counts per event type and a hash chain over the
/// positions applied, so any duplicate, gap or reordering shows in its bytes.
#[derive(Default)]
struct Counting {
    counts: BTreeMap<String, u64>,
    chain: [u8; 32],
    dirty: bool,
    /// The store format it declares (tests of format changes set it).
    format: u32,
}

impl Projection for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn store_format(&self) -> u32 {
        self.format
    }
    fn apply(&mut self, event: &EventEnvelope) {
        *self
            .counts
            .entry(event.event.event_type().to_owned())
            .or_default() += 1;
        let mut hasher = Sha256::new();
        hasher.update(self.chain);
        hasher.update(event.position.to_be_bytes());
        hasher.update(event.event.event_type().as_bytes());
        self.chain = hasher.finalize().into();
        self.dirty = true;
    }
    fn drain_changes(&mut self) -> Vec<Change> {
        if !std::mem::take(&mut self.dirty) {
            return Vec::new();
        }
        let mut changes: Vec<Change> = vec![(b"chain".to_vec(), Some(self.chain.to_vec()))];
        for (name, count) in &self.counts {
            changes.push((
                format!("count/{name}").into_bytes(),
                Some(count.to_be_bytes().to_vec()),
            ));
        }
        changes.sort();
        changes
    }
    type RestoreError = BadEntry;

    fn restore(
        &mut self,
        entries: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<(), BadEntry> {
        for (key, value) in entries {
            if key == b"chain" {
                self.chain = value.try_into().map_err(|_| BadEntry("chain"))?;
            } else if let Some(name) = key.strip_prefix(b"count/") {
                let count = u64::from_be_bytes(value.try_into().map_err(|_| BadEntry("count"))?);
                let name = String::from_utf8(name.to_vec()).map_err(|_| BadEntry("name"))?;
                self.counts.insert(name, count);
            }
        }
        Ok(())
    }
    fn attach(&mut self, rows: &StoreRows) -> Result<(), BadEntry> {
        self.restore(&mut rows.entries())
    }
    fn pending_rows(&mut self) -> usize {
        usize::from(self.dirty)
    }
    fn query(&self, _name: &str, _request: &Value) -> Result<Value, QueryError> {
        Ok(json!({"counts": self.counts}))
    }
    fn queries(&self) -> &'static [&'static str] {
        &["counting.get"]
    }
}

#[derive(Debug, thiserror::Error)]
#[error("bad {0} entry")]
struct BadEntry(&'static str);

struct System {
    nats: NatsServer,
    dir: TempDataDir,
    log: EventLog,
    handler: Arc<CommandHandler>,
    client: async_nats::Client,
    stop: watch::Sender<bool>,
}

async fn system() -> System {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let log = EventLog::open(&dir.join("log"), LogConfig::default()).unwrap();
    let client = nats
        .connect_with(crm_testkit::test_connect_options())
        .await
        .unwrap();
    let handler = CommandHandler::new(log.clone(), HandlerConfig::default());
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(serve_commands(
        client.clone(),
        handler.clone(),
        ServiceConfig::default(),
        stop_rx.clone(),
    ));
    tokio::spawn(
        Tailer::new(log.clone(), client.clone(), TailerConfig::default()).run(stop_rx.clone()),
    );
    tokio::spawn(serve_log_api(
        client.clone(),
        log.clone(),
        crm_wire::Subjects::default(),
        crm_ops::Instance::new(),
        stop_rx,
    ));
    System {
        nats,
        dir,
        log,
        handler,
        client,
        stop,
    }
}

/// Appends `n` mixed commands through the handler directly (no NATS needed).
async fn run_commands(handler: &CommandHandler, from: u128, n: u128) {
    for i in from..from + n {
        let lead = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | (i / 3));
        let (subject, body) = match i % 3 {
            0 => (
                "crm.cmd.lead.CreateLead",
                json!({"lead_id": lead, "name": "L", "source": "web"}),
            ),
            1 => (
                "crm.cmd.lead.ScoreLead",
                json!({"lead_id": lead, "score": 40}),
            ),
            _ => (
                "crm.cmd.lead.AdvanceFunnelStage",
                json!({"lead_id": lead, "to_stage": "interest"}),
            ),
        };
        let body = serde_json::to_vec(&body).unwrap();
        let id = Uuid::now_v7().to_string();
        let (reply, _) = handler
            .handle(CommandRequest {
                subject,
                command_id: Some(&id),
                body: &body,
                ..Default::default()
            })
            .await;
        assert!(reply.error_code().is_none(), "{reply:?}");
    }
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn rebuilt_hash(log: &EventLog) -> [u8; 32] {
    let dir = tempfile::tempdir().unwrap();
    rebuild_into(
        Counting::default(),
        &dir.path().join("counting"),
        LogSource::Local(log.clone()),
        ProjectorConfig::default(),
        |_, _| {},
    )
    .await
    .unwrap()
    .store_hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_model_equals_a_rebuild_and_rebuilds_are_byte_identical() {
    let s = system().await;
    let source = LogSource::Nats {
        client: s.client.clone(),
        subjects: crm_wire::Subjects::default(),
        record_limits: LogConfig::default().record_limits(),
    };
    let projector = Projector::open(
        Counting::default(),
        &s.dir.join("proj"),
        source,
        ProjectorConfig::default(),
    )
    .unwrap();
    let handle = projector.handle();
    let (_stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(projector.run(s.client.clone(), stop_rx));
    run_commands(&s.handler, 0, 600).await;
    let head = s.log.head();
    wait_for("the projector to reach the head", || {
        handle.read(|_, p| p) == head
    })
    .await;
    let _ = _stop.send(true);
    task.await.unwrap().unwrap();
    // The handle reads the store too: drop it, so the store can be opened again.
    drop(handle);
    let live = crm_projector::ProjectionStore::open(&s.dir.join("proj"))
        .unwrap()
        .canonical_hash()
        .unwrap();
    let first = rebuilt_hash(&s.log).await;
    let second = rebuilt_hash(&s.log).await;
    assert_eq!(first, second, "two rebuilds are byte-identical");
    assert_eq!(
        live, first,
        "the live model equals a rebuild at the same position"
    );
    let _ = s.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_shuffled_delivery_changes_nothing() {
    let s = system().await;
    let js = async_nats::jetstream::new(s.client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "RELAY".into(),
        subjects: vec!["relay.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // The projector reads only the relay; the log is its gap filler. Its idle catch-up is
    // off, so what it applies comes through the relay and gap filling alone.
    let config = ProjectorConfig {
        stream_name: "RELAY".into(),
        idle_check_ms: 3_600_000,
        ..ProjectorConfig::default()
    };
    let log_source = LogSource::Nats {
        client: s.client.clone(),
        subjects: crm_wire::Subjects::default(),
        record_limits: LogConfig::default().record_limits(),
    };
    let projector = Projector::open(
        Counting::default(),
        &s.dir.join("relayed"),
        log_source,
        config,
    )
    .unwrap();
    let handle = projector.handle();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(projector.run(s.client.clone(), stop_rx));
    tokio::time::sleep(Duration::from_millis(300)).await;

    run_commands(&s.handler, 0, 400).await;
    let head = s.log.head();
    let source = js.get_stream("CRM_EVENTS").await.unwrap();
    let mut published = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while published.len() < head as usize {
        let next = published.len() as u64 + 1;
        match source.get_raw_message(next).await {
            Ok(message) => published.push(message),
            Err(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "tailer did not publish"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(
        handle.read(|_, p| p),
        0,
        "nothing applied before the relay starts"
    );
    // Every message twice, in shuffled windows of 7, without message ids (so JetStream keeps
    // the duplicates).
    let mut order: Vec<usize> = Vec::new();
    for window in (0..published.len()).collect::<Vec<_>>().chunks(7) {
        let mut w = window.to_vec();
        w.reverse();
        let middle = w.len() / 2;
        w.rotate_left(middle);
        order.extend(&w);
        order.extend(window.iter());
    }
    for i in order {
        let message = &published[i];
        let mut headers = HeaderMap::new();
        headers.insert(
            "Crm-Position",
            message.headers.get("Crm-Position").unwrap().as_str(),
        );
        js.publish_with_headers("relay.evt", headers, message.payload.clone())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    wait_for("the relayed projector to reach the head", || {
        handle.read(|_, p| p) == head
    })
    .await;
    // Let the duplicates still queued arrive too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(handle.read(|_, p| p), head);
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
    drop(handle);
    let live = crm_projector::ProjectionStore::open(&s.dir.join("relayed"))
        .unwrap()
        .canonical_hash()
        .unwrap();
    assert_eq!(live, rebuilt_hash(&s.log).await);
    let _ = s.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_converge_to_the_log_after_a_nats_server_outage() {
    let mut s = system().await;
    let source = LogSource::Nats {
        client: s.client.clone(),
        subjects: crm_wire::Subjects::default(),
        record_limits: LogConfig::default().record_limits(),
    };
    let projector = Projector::open(
        Counting::default(),
        &s.dir.join("proj"),
        source,
        ProjectorConfig {
            idle_check_ms: 200,
            ..ProjectorConfig::default()
        },
    )
    .unwrap();
    let handle = projector.handle();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(projector.run(s.client.clone(), stop_rx));
    run_commands(&s.handler, 0, 150).await;
    let head = s.log.head();
    wait_for("first catch-up", || handle.read(|_, p| p) == head).await;

    s.nats.stop().unwrap();
    // Commands keep landing in the log while NATS is down (through the handler directly).
    run_commands(&s.handler, 150, 150).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        handle.read(|_, p| p) < s.log.head(),
        "nothing can arrive while NATS is down"
    );
    s.nats.restart().unwrap();
    let head = s.log.head();
    wait_for("convergence after the outage", || {
        handle.read(|_, p| p) == head
    })
    .await;
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
    drop(handle);
    let live = crm_projector::ProjectionStore::open(&s.dir.join("proj"))
        .unwrap()
        .canonical_hash()
        .unwrap();
    assert_eq!(live, rebuilt_hash(&s.log).await);
    let _ = s.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_event_type_stops_the_projection_with_a_clear_status() {
    let s = system().await;
    let js = async_nats::jetstream::new(s.client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "ODD".into(),
        subjects: vec!["odd.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // Position 1 in the log is a real event; the stream claims it is an unknown type.
    run_commands(&s.handler, 0, 1).await;
    let mut record = s.log.read_all(1, 1).unwrap().remove(0);
    record.event_type = "LeadTeleported".into();
    let mut headers = HeaderMap::new();
    headers.insert("Crm-Position", "1");
    js.publish_with_headers("odd.evt", headers, record.encode().unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let config = ProjectorConfig {
        stream_name: "ODD".into(),
        idle_check_ms: 3_600_000,
        ..ProjectorConfig::default()
    };
    // A log source that is empty, so the start-up catch-up cannot apply the real event first.
    let empty = TempDataDir::new().unwrap();
    let empty_log = EventLog::open(&empty.join("log"), LogConfig::default()).unwrap();
    let projector = Projector::open(
        Counting::default(),
        &s.dir.join("odd"),
        LogSource::Local(empty_log),
        config,
    )
    .unwrap();
    let handle = projector.handle();
    let (_stop, stop_rx) = watch::channel(false);
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        projector.run(s.client.clone(), stop_rx),
    )
    .await
    .unwrap();
    let error = result.expect_err("the projection stops");
    assert!(error.to_string().contains("position 1"), "{error}");
    let status = handle.status();
    assert_eq!(status.state, crm_projector::ProjectorState::Failed);
    assert!(status.error.unwrap().contains("LeadTeleported"));
    assert_eq!(handle.read(|_, p| p), 0, "nothing was skipped or applied");
    let _ = s.stop.send(true);
}

/// A version switch whose first `failures` calls fail like a full disk would.
struct FailingSwitch {
    failures: std::sync::atomic::AtomicU32,
}

impl VersionSwitch for FailingSwitch {
    fn make_current(&self, root: &std::path::Path, version: &str) -> Result<(), VersionsError> {
        use std::sync::atomic::Ordering;
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(VersionsError::Io {
                path: root.display().to_string(),
                step: "write",
                source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "injected"),
            });
        }
        crm_projector::versions::make_current(root, version)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_io_error_while_swapping_in_a_rebuild_keeps_the_live_model() {
    let dir = TempDataDir::new().unwrap();
    let log = EventLog::open(&dir.join("log"), LogConfig::default()).unwrap();
    let handler = CommandHandler::new(log.clone(), HandlerConfig::default());
    run_commands(&handler, 0, 30).await;
    let root = dir.join("counting");
    let mut projector = Projector::open_root(
        Counting::default(),
        &root,
        LogSource::Local(log.clone()),
        ProjectorConfig::default(),
    )
    .unwrap()
    .with_version_switch(FailingSwitch { failures: 1.into() });
    projector.catch_up(true, |_, _| {}).await.unwrap();
    let handle = projector.handle();
    let live_dir = crm_projector::versions::current_dir(&root).unwrap();

    let error = projector.rebuild_now().await.unwrap_err();
    match &error {
        ProjectorError::Versions(e) => {
            assert_eq!(e.io_kind(), Some(std::io::ErrorKind::PermissionDenied))
        }
        other => panic!("not an I/O error of the switch: {other:?}"),
    }
    assert!(!error.is_fatal(), "{error}");
    let status = handle.status();
    assert_ne!(status.state, ProjectorState::Failed, "{status:?}");
    assert!(
        status
            .last_rebuild_error
            .as_deref()
            .is_some_and(|e| !e.contains("corrupt")),
        "{status:?}"
    );
    assert_eq!(
        crm_projector::versions::current_dir(&root).unwrap(),
        live_dir
    );
    let answer = handle.read(|model, position| (model.query("counting.get", &json!({})), position));
    assert_eq!(answer.1, 30);
    assert_eq!(answer.0.unwrap()["counts"]["LeadCreated"], 10);

    // The live model keeps applying, and the next rebuild swaps in.
    run_commands(&handler, 30, 6).await;
    projector.catch_up(true, |_, _| {}).await.unwrap();
    projector.rebuild_now().await.unwrap();
    let status = handle.status();
    assert_eq!(status.rebuilds_completed, 1, "{status:?}");
    assert_eq!(status.last_rebuild_error, None);
    assert_eq!(handle.read(|_, position| position), 36);
    assert_ne!(
        crm_projector::versions::current_dir(&root).unwrap(),
        live_dir
    );
    assert_eq!(
        projector.store().canonical_hash().unwrap(),
        rebuilt_hash(&log).await,
        "the swapped-in store equals a rebuild"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_of_a_store_without_versions_fails_once_and_blocks_nothing() {
    let dir = TempDataDir::new().unwrap();
    let log = EventLog::open(&dir.join("log"), LogConfig::default()).unwrap();
    let handler = CommandHandler::new(log.clone(), HandlerConfig::default());
    run_commands(&handler, 0, 3).await;
    let mut projector = Projector::open(
        Counting::default(),
        &dir.join("plain-store"),
        LogSource::Local(log.clone()),
        ProjectorConfig::default(),
    )
    .unwrap();
    projector.catch_up(true, |_, _| {}).await.unwrap();
    let handle = projector.handle();

    for _ in 0..2 {
        let error = projector.rebuild_now().await.unwrap_err();
        assert!(matches!(error, ProjectorError::NotVersioned), "{error:?}");
        let status = handle.status();
        // Reported as a failed rebuild, never as one still running (which would refuse every
        // later request as `AlreadyRunning`).
        assert_eq!(status.rebuild, None, "{status:?}");
        assert!(status.last_rebuild_error.is_some(), "{status:?}");
        // Not `AlreadyRunning` (the request waits for `run`, which this test does not drive).
        assert_ne!(
            handle.request_rebuild(),
            Err(crm_projector::RebuildRefused::AlreadyRunning),
            "{status:?}"
        );
    }
    assert_eq!(handle.read(|_, position| position), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_another_format_is_rebuilt_from_the_log_at_start() {
    let dir = TempDataDir::new().unwrap();
    let log = EventLog::open(&dir.join("log"), LogConfig::default()).unwrap();
    let handler = CommandHandler::new(log.clone(), HandlerConfig::default());
    run_commands(&handler, 0, 30).await;
    let head = log.head();
    let root = dir.join("projections").join("counting");
    let open = |format: u32| {
        Projector::open_root(
            Counting {
                format,
                ..Counting::default()
            },
            &root,
            LogSource::Local(log.clone()),
            ProjectorConfig::default(),
        )
        .unwrap()
    };

    let mut old = open(0);
    old.catch_up(true, |_, _| {}).await.unwrap();
    assert_eq!(old.checkpoint(), head);
    let old_dir = crm_projector::versions::current_dir(&root).unwrap();
    drop(old);
    assert_eq!(
        open(0).checkpoint(),
        head,
        "the same format reopens as it is"
    );

    // An upgrade that changes the format starts from an empty store in a new version and
    // catches up from the log; the old version is gone.
    let mut upgraded = open(1);
    assert_eq!(upgraded.checkpoint(), 0);
    let new_dir = crm_projector::versions::current_dir(&root).unwrap();
    assert_ne!(new_dir, old_dir);
    assert!(!old_dir.exists());
    upgraded.catch_up(true, |_, _| {}).await.unwrap();
    assert_eq!(upgraded.checkpoint(), head);
    assert_eq!(
        upgraded.store().canonical_hash().unwrap(),
        rebuilt_hash(&log).await
    );
    drop(upgraded);
    assert_eq!(open(1).checkpoint(), head, "and stays in its new format");

    // Without store versions there is nothing to rebuild into: the store is refused.
    let refused = Projector::open(
        Counting::default(),
        &new_dir,
        LogSource::Local(log.clone()),
        ProjectorConfig::default(),
    );
    assert!(
        matches!(
            refused,
            Err(ProjectorError::StoreFormat {
                found: 1,
                expected: 0,
                ..
            })
        ),
        "{:?}",
        refused.err()
    );
}
