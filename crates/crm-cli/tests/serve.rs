//! `crm serve` as a real process: SIGKILLed during a load of retried commands, restarted, and
//! checked against the log and JetStream; and started on its own local nats-server.

use std::collections::BTreeMap;
use std::process::Command as Process;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_testkit::{ChildProcess, NatsServer, TempDataDir};
use serde_json::{json, Value};
use uuid::Uuid;

mod support;
use support::{send_until_answered, send_until_answered_within};

/// How long the load may take to reach each kill point; a stall fails instead of hanging.
const LOAD_PROGRESS_WAIT_MAX: Duration = Duration::from_secs(120);

fn crm_serve(data_dir: &std::path::Path, nats_url: Option<&str>) -> ChildProcess {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command.arg("serve").arg("--data-dir").arg(data_dir);
    if let Some(url) = nats_url {
        command.arg("--nats-url").arg(url);
    }
    command.env("RUST_LOG", "warn");
    let mut child = ChildProcess::spawn(command).expect("spawn crm serve");
    child
        .wait_for_line("crm serve ready", Duration::from_secs(30))
        .expect("crm serve ready");
    child
}

fn lead(n: u32) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n as u128)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_retried_load_loses_and_duplicates_nothing() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let mut serve = crm_serve(dir.path(), Some(&nats.url()));
    let client = nats.connect().await;

    // Each worker creates its leads then advances each one; every command has a fixed id.
    let workers = 16;
    let leads_per_worker = 150;
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted: Arc<Mutex<BTreeMap<Uuid, Vec<Value>>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = client.clone();
        let accepted = accepted.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..leads_per_worker {
                let lead_id = lead(w * 1000 + i);
                let steps = [
                    (
                        "lead.CreateLead",
                        json!({"lead_id": lead_id, "name": "L", "source": "web"}),
                    ),
                    (
                        "lead.AdvanceFunnelStage",
                        json!({"lead_id": lead_id, "to_stage": "interest"}),
                    ),
                ];
                for (subject, body) in steps {
                    let id = Uuid::now_v7();
                    let reply = send_until_answered(&client, subject, id, &body).await;
                    assert_eq!(reply["status"], "accepted", "{subject}: {reply}");
                    // Retry once more on purpose: must be the same outcome, marked duplicate.
                    let again = send_until_answered(&client, subject, id, &body).await;
                    assert_eq!(again["status"], "accepted", "{again}");
                    assert_eq!(again["duplicate"], true);
                    assert_eq!(again["first_position"], reply["first_position"]);
                    accepted
                        .lock()
                        .unwrap()
                        .entry(id)
                        .or_default()
                        .extend([reply, again]);
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }));
    }
    // Kill the service three times while the load runs (at 20%, 45% and 70% of the
    // commands), restarting it each time.
    let total = (workers * leads_per_worker * 2) as usize;
    for percent in [20, 45, 70] {
        let target = total * percent / 100;
        let deadline = tokio::time::Instant::now() + LOAD_PROGRESS_WAIT_MAX;
        while done.load(std::sync::atomic::Ordering::SeqCst) < target {
            let done_now = done.load(std::sync::atomic::Ordering::SeqCst);
            assert!(
                tokio::time::Instant::now() < deadline,
                "the load stalled: {done_now} of {total} commands answered, {target} expected \
                 within {LOAD_PROGRESS_WAIT_MAX:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        serve.kill_9().unwrap();
        assert!(
            done.load(std::sync::atomic::Ordering::SeqCst) < total,
            "killed mid-load"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        serve = crm_serve(dir.path(), Some(&nats.url()));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("load finishes")
            .unwrap();
    }

    // Every accepted command is in the log exactly once, at the position its reply named.
    let expected_commands = (workers * leads_per_worker * 2) as usize;
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), expected_commands);
    let mut events = Vec::new();
    let mut from = 1;
    loop {
        let request = json!({"from": from, "max": 1000, "format": "json"});
        let reply = client
            .request("crm.log.read", serde_json::to_vec(&request).unwrap().into())
            .await
            .unwrap();
        let page: Value = serde_json::from_slice(&reply.payload).unwrap();
        let batch = page["events"].as_array().unwrap().clone();
        if batch.is_empty() {
            break;
        }
        from += batch.len() as u64;
        events.extend(batch);
    }
    assert_eq!(
        events.len(),
        expected_commands,
        "one event per command, none twice"
    );
    let mut by_command: BTreeMap<Uuid, Vec<u64>> = BTreeMap::new();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["position"], (i + 1) as u64, "contiguous positions");
        let id: Uuid = event["command_id"].as_str().unwrap().parse().unwrap();
        by_command
            .entry(id)
            .or_default()
            .push(event["position"].as_u64().unwrap());
    }
    for (id, replies) in &accepted {
        let positions = by_command
            .get(id)
            .unwrap_or_else(|| panic!("accepted command {id} is not in the log"));
        assert_eq!(positions.len(), 1, "command {id} recorded once");
        for reply in replies {
            assert_eq!(reply["first_position"], positions[0]);
        }
    }

    // JetStream converges to the log: every event once, in position order.
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("CRM_EVENTS").await.unwrap();
    let head = events.len() as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stream.get_info().await.unwrap().state.messages < head
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let info = stream.get_info().await.unwrap();
    assert_eq!(
        info.state.messages, head,
        "JetStream did not converge to the log within 30 s"
    );
    for sequence in 1..=head {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let position: u64 = message
            .headers
            .get("Crm-Position")
            .unwrap()
            .as_str()
            .parse()
            .unwrap();
        assert_eq!(position, sequence);
    }
    serve.terminate(Duration::from_secs(10)).unwrap();

    // The log verifies clean offline.
    let status = Process::new(env!("CARGO_BIN_EXE_crm"))
        .arg("verify")
        .arg("--data-dir")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_a_nats_url_starts_its_own_server_and_stops_cleanly() {
    let dir = TempDataDir::new().unwrap();
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command.arg("serve").arg("--data-dir").arg(dir.path());
    let mut serve = ChildProcess::spawn(command).unwrap();
    let line = serve
        .wait_for_line("local nats-server listening on", Duration::from_secs(30))
        .unwrap();
    let url = line.rsplit(' ').next().unwrap().trim().to_owned();
    serve
        .wait_for_line("crm serve ready", Duration::from_secs(30))
        .unwrap();
    let client = async_nats::connect(&url).await.unwrap();
    let reply = send_until_answered(
        &client,
        "lead.CreateLead",
        Uuid::now_v7(),
        &json!({"lead_id": lead(1), "name": "Ada", "source": "web"}),
    )
    .await;
    assert_eq!(reply["status"], "accepted", "{reply}");
    let status = serve.terminate(Duration::from_secs(20)).unwrap();
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status:?}\n{}",
        serve.output_tail()
    );
    let pid_file = dir.path().join("nats").join("nats-server.pid");
    assert!(!pid_file.exists(), "the local nats-server was stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_serve_leaves_no_stale_nats_server_behind_after_its_restart() {
    let dir = TempDataDir::new().unwrap();
    let start = || {
        let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
        command.arg("serve").arg("--data-dir").arg(dir.path());
        command.env("RUST_LOG", "warn");
        let mut serve = ChildProcess::spawn(command).unwrap();
        serve
            .wait_for_line("crm serve ready", Duration::from_secs(30))
            .unwrap();
        serve
    };
    let pid_file = dir.path().join("nats").join("nats-server.pid");
    let mut serve = start();
    let first_pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    serve.kill_9().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{first_pid}")).exists(),
        "the orphan outlives crm serve"
    );
    let mut serve = start();
    let second_pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(first_pid, second_pid);
    // Gone, or a zombie waiting for whichever process reaps orphans here.
    let state = std::fs::read_to_string(format!("/proc/{first_pid}/stat")).unwrap_or_default();
    let running = state
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .is_some_and(|s| s != "Z");
    assert!(!running, "the orphan was stopped: {state}");
    serve.terminate(Duration::from_secs(20)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "got no reply within 1s")]
async fn a_command_nobody_answers_fails_at_its_deadline_instead_of_hanging() {
    // A server with no `crm serve` behind it: every attempt fails (no responders or timeout).
    let nats = NatsServer::start().unwrap();
    let client = nats.connect().await;
    let body = json!({"lead_id": lead(1), "name": "Ada", "source": "web"});
    send_until_answered_within(
        &client,
        "lead.CreateLead",
        Uuid::now_v7(),
        &body,
        Duration::from_secs(1),
    )
    .await;
}

#[test]
fn a_stop_right_after_the_ready_line_never_hangs() {
    // The race: SIGTERM while the tailer is still starting. It once deadlocked the shutdown
    // (the drain wait kept the tailer status locked) about once in 30 starts; each of the 100 rounds
    // is a fresh start, so a regression fails this test almost always.
    let nats = NatsServer::start().unwrap();
    for round in 0..100 {
        let dir = TempDataDir::new().unwrap();
        let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--nats-url")
            .arg(nats.url())
            .arg("--projections")
            .arg("")
            .env("RUST_LOG", "warn");
        let mut serve = ChildProcess::spawn(command).unwrap();
        serve
            .wait_for_line("crm serve ready", Duration::from_secs(30))
            .unwrap();
        match serve.terminate(Duration::from_secs(20)) {
            Ok(status) => assert!(status.success(), "round {round}: {status:?}"),
            Err(e) => panic!("round {round}: {e}\n{}", serve.output_tail()),
        }
    }
}
