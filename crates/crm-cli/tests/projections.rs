//! Read models through the real `crm` binary: the worked example of docs/DOMAIN.md over NATS,
//! rebuild determinism, and a projector process killed with SIGKILL.

use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use crm_testkit::{ChildProcess, NatsServer, TempDataDir};
use serde_json::{json, Value};
use uuid::Uuid;

mod support;
use support::{live_hash, rebuild_hash};

/// How long the projector-kill test's load of 3,000 commands may take in all.
const LOAD_WAIT_MAX: Duration = Duration::from_secs(180);

fn crm(args: &[&str], data_dir: &Path, nats_url: &str) -> ChildProcess {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--nats-url")
        .arg(nats_url);
    command.env("RUST_LOG", "warn");
    ChildProcess::spawn(command).expect("spawn crm")
}

fn serve(data_dir: &Path, nats_url: &str, projections: &str) -> ChildProcess {
    let mut child = crm(&["serve", "--projections", projections], data_dir, nats_url);
    child
        .wait_for_line("crm serve ready", Duration::from_secs(30))
        .expect("serve ready");
    child
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

fn eur(amount_minor: i64) -> Value {
    json!({"amount_minor": amount_minor, "currency": "EUR"})
}

struct Caller {
    client: async_nats::Client,
    last_position: u64,
}

impl Caller {
    /// Sends a command (retried with one command id, for at most
    /// [`support::ANSWER_WAIT_MAX`]) and expects it accepted.
    async fn send(&mut self, subject: &str, body: Value) -> Value {
        let reply =
            support::send_until_answered(&self.client, subject, Uuid::now_v7(), &body).await;
        assert_eq!(reply["status"], "accepted", "{subject}: {reply}");
        self.last_position = self
            .last_position
            .max(reply["last_position"].as_u64().unwrap());
        reply
    }

    /// A query that waits until the read model has applied our last write.
    async fn query(&self, name: &str, mut body: Value) -> Value {
        body["min_position"] = json!(self.last_position);
        body["timeout_ms"] = json!(20_000);
        let reply = self
            .client
            .request(
                format!("crm.query.{name}"),
                serde_json::to_vec(&body).unwrap().into(),
            )
            .await
            .unwrap();
        let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert!(
            reply["position"].as_u64().unwrap() >= self.last_position,
            "{reply}"
        );
        reply
    }
}

fn close(actual: &Value, expected: f64) -> bool {
    actual.as_f64().is_some_and(|a| (a - expected).abs() < 1e-9)
}

async fn play_worked_example(caller: &mut Caller) -> (Uuid, Uuid) {
    let at = |day: u32, minutes: u32| {
        format!(
            "2026-11-{day:02}T{:02}:{:02}:00Z",
            9 + minutes / 60,
            minutes % 60
        )
    };
    for n in 0..10u128 {
        let source = if n < 6 { "web" } else { "referral" };
        caller.send("lead.CreateLead", json!({"lead_id": id(n), "name": format!("Lead {n}"), "company": format!("Company {n}"), "source": source, "occurred_at": at(2, n as u32)})).await;
    }
    for n in 0..6u128 {
        caller
            .send(
                "lead.AdvanceFunnelStage",
                json!({"lead_id": id(n), "to_stage": "interest", "occurred_at": at(4, 0)}),
            )
            .await;
    }
    for n in 0..4u128 {
        caller
            .send(
                "lead.AdvanceFunnelStage",
                json!({"lead_id": id(n), "to_stage": "consideration", "occurred_at": at(6, 0)}),
            )
            .await;
    }
    for n in 0..3u128 {
        caller
            .send(
                "lead.AdvanceFunnelStage",
                json!({"lead_id": id(n), "to_stage": "decision", "occurred_at": at(8, 0)}),
            )
            .await;
    }
    let (a, b) = (id(100), id(101));
    caller.send("lead.WinLead", json!({"lead_id": id(0), "deal_value": eur(100_000), "customer_id": a, "occurred_at": at(10, 0)})).await;
    caller.send("lead.WinLead", json!({"lead_id": id(1), "deal_value": eur(300_000), "customer_id": b, "occurred_at": at(10, 10)})).await;
    caller
        .send(
            "lead.LoseLead",
            json!({"lead_id": id(2), "reason": "competitor", "occurred_at": at(10, 20)}),
        )
        .await;
    caller.send("order.PlaceOrder", json!({"order_id": id(200), "customer_id": a, "amount": eur(40_000), "channel": "online", "occurred_at": at(12, 0)})).await;
    caller.send("order.PlaceOrder", json!({"order_id": id(201), "customer_id": a, "amount": eur(60_000), "channel": "online", "occurred_at": at(13, 0)})).await;
    caller.send("order.PlaceOrder", json!({"order_id": id(202), "customer_id": b, "amount": eur(100_000), "channel": "store", "occurred_at": at(13, 30)})).await;
    caller.send("order.RefundOrder", json!({"order_id": id(201), "amount": eur(10_000), "reason": "damaged", "occurred_at": at(14, 0)})).await;
    for (customer, nps, csat, n) in [(a, 10, 5, 0u128), (b, 6, 3, 2)] {
        caller.send("customer.RecordSurveyResponse", json!({"customer_id": customer, "response_id": id(300 + n), "kind": "nps", "score": nps, "occurred_at": at(15, 0)})).await;
        caller.send("customer.RecordSurveyResponse", json!({"customer_id": customer, "response_id": id(301 + n), "kind": "csat", "score": csat, "occurred_at": at(15, 0)})).await;
    }
    let ticket = id(400);
    caller.send("ticket.OpenTicket", json!({"ticket_id": ticket, "customer_id": b, "subject": "Broken", "category": "complaint", "priority": "normal", "channel": "email", "occurred_at": at(16, 0)})).await;
    caller
        .send(
            "ticket.AssignTicket",
            json!({"ticket_id": ticket, "assignee": "linus", "occurred_at": at(16, 5)}),
        )
        .await;
    caller.send("ticket.RespondToTicket", json!({"ticket_id": ticket, "responder": "linus", "public": true, "occurred_at": at(16, 30)})).await;
    caller
        .send(
            "ticket.ResolveTicket",
            json!({"ticket_id": ticket, "resolution": "replaced", "occurred_at": at(16, 120)}),
        )
        .await;
    caller
        .send(
            "ticket.CloseTicket",
            json!({"ticket_id": ticket, "occurred_at": at(16, 150)}),
        )
        .await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worked_example_over_nats_gives_every_expected_figure() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let mut service = serve(dir.path(), &nats.url(), "customers,funnel,kpis");
    let mut caller = Caller {
        client: nats.connect().await,
        last_position: 0,
    };
    let (a, b) = play_worked_example(&mut caller).await;

    for body in [json!({}), json!({"month": "2026-11"})] {
        let reply = caller.query("kpi.get", body.clone()).await;
        let kpis = &reply["kpis"];
        assert!(close(&kpis["lead_conversion_rate"], 0.2), "{body} {kpis}");
        assert!(close(&kpis["win_rate"], 2.0 / 3.0), "{kpis}");
        assert_eq!(kpis["net_revenue"], json!({"EUR": 190_000}));
        assert_eq!(kpis["average_order_value"], json!({"EUR": 63_333}));
        assert!(close(&kpis["repeat_purchase_rate"], 0.5));
        assert!(close(&kpis["nps"], 0.0));
        assert!(close(&kpis["csat"], 0.5));
        assert!(close(&kpis["complaint_rate"], 0.5));
        assert!(close(&kpis["first_response_minutes_mean"], 30.0));
        assert!(close(&kpis["resolution_minutes_mean"], 120.0));
        assert_eq!(kpis["ticket_backlog"], 0);
        assert_eq!(kpis["counters"]["orders"], 3, "{kpis}");
    }
    let funnel = caller
        .query("funnel.get", json!({"pipeline": "default"}))
        .await;
    let stages = funnel["stages"].as_array().unwrap();
    let interest = stages.iter().find(|s| s["stage"] == "interest").unwrap();
    assert!(
        close(&interest["conversion_to_next"], 4.0 / 6.0),
        "{funnel}"
    );
    assert!(close(&funnel["win_rate"], 2.0 / 3.0));
    assert_eq!(funnel["average_deal_value"], json!({"EUR": 200_000}));
    assert_eq!(
        (funnel["won"].as_u64(), funnel["lost"].as_u64()),
        (Some(2), Some(1))
    );
    let customer_a = caller
        .query("customer.get", json!({"customer_id": a}))
        .await;
    assert_eq!(
        customer_a["customer"]["lifecycle_stage"], "repeat",
        "{customer_a}"
    );
    let customer_b = caller
        .query("customer.get", json!({"customer_id": b}))
        .await;
    assert_eq!(customer_b["customer"]["lifecycle_stage"], "first_purchase");
    assert_eq!(customer_b["customer"]["open_tickets"], 0);
    let missing = caller
        .query("customer.get", json!({"customer_id": id(999)}))
        .await;
    assert_eq!(missing["code"], "not_found");

    // Operators see each projector's status.
    for name in ["customers", "funnel", "kpis"] {
        let reply = caller
            .client
            .request(format!("crm.projector.{name}.status"), "".into())
            .await
            .unwrap();
        let status: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(status["state"], "running", "{status}");
        assert_eq!(status["checkpoint"], caller.last_position, "{status}");
        assert_eq!(status["lag_events"], 0, "{status}");
    }

    // A query for a position the model cannot reach in time answers `unavailable`.
    let reply = caller
        .client
        .request(
            "crm.query.kpi.get",
            serde_json::to_vec(
                &json!({"min_position": caller.last_position + 1000, "timeout_ms": 100}),
            )
            .unwrap()
            .into(),
        )
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["code"], "unavailable");
    assert_eq!(reply["position"], caller.last_position);
    service.terminate(Duration::from_secs(20)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_twice_gives_byte_identical_stores_equal_to_the_live_ones() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let mut service = serve(dir.path(), &nats.url(), "customers,funnel,kpis");
    let mut caller = Caller {
        client: nats.connect().await,
        last_position: 0,
    };
    play_worked_example(&mut caller).await;
    for name in ["customer.list", "funnel.get", "kpi.get"] {
        caller.query(name, json!({})).await;
    }
    service.terminate(Duration::from_secs(20)).unwrap();
    for name in ["customers", "funnel", "kpis"] {
        let live = live_hash(dir.path(), name);
        let first = rebuild_hash(dir.path(), name);
        let second = rebuild_hash(dir.path(), name);
        assert_eq!(first, second, "{name}: two rebuilds are byte-identical");
        assert_eq!(
            first, live,
            "{name}: the live model equals a rebuild at the same position"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_batch_recovers_to_exactly_a_rebuild() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let projector_dir = TempDataDir::new().unwrap();
    let mut service = serve(dir.path(), &nats.url(), "");
    let mut projector = crm(&["project", "kpis"], projector_dir.path(), &nats.url());
    projector
        .wait_for_line("ready", Duration::from_secs(30))
        .unwrap();
    let client = nats.connect().await;
    let load = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut caller = Caller {
                client,
                last_position: 0,
            };
            for n in 0..1500u128 {
                let customer = id(10_000 + n);
                caller
                    .send(
                        "customer.RegisterCustomer",
                        json!({"customer_id": customer, "name": "C", "email": "c@example.com"}),
                    )
                    .await;
                caller.send("order.PlaceOrder", json!({"order_id": id(20_000 + n), "customer_id": customer, "amount": eur(1_000 + n as i64), "channel": "online"})).await;
            }
            caller.last_position
        })
    };
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !load.is_finished(),
            "the projector is killed while events flow"
        );
        projector.kill_9().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        projector = crm(&["project", "kpis"], projector_dir.path(), &nats.url());
        projector
            .wait_for_line("ready", Duration::from_secs(30))
            .unwrap();
    }
    let last = tokio::time::timeout(LOAD_WAIT_MAX, load)
        .await
        .unwrap_or_else(|_| panic!("the load did not finish within {LOAD_WAIT_MAX:?}"))
        .unwrap();
    let caller = Caller {
        client: client.clone(),
        last_position: last,
    };
    let reply = caller.query("kpi.get", json!({})).await;
    assert_eq!(
        reply["kpis"]["counters"]["orders"], 1500,
        "no counter drifts: {reply}"
    );
    projector.terminate(Duration::from_secs(20)).unwrap();
    service.terminate(Duration::from_secs(20)).unwrap();
    let live = live_hash(projector_dir.path(), "kpis");
    // Rebuild from the service's log into the projector's data dir layout, and compare.
    let rebuilt = rebuild_hash(dir.path(), "kpis");
    assert_eq!(
        live, rebuilt,
        "the killed-and-restarted model equals a rebuild"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_rebuild_swaps_in_without_downtime_and_equals_an_offline_rebuild() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let mut service = serve(dir.path(), &nats.url(), "customers,funnel,kpis");
    let client = nats.connect().await;
    let mut caller = Caller {
        client: client.clone(),
        last_position: 0,
    };
    for n in 0..300u128 {
        caller
            .send(
                "customer.RegisterCustomer",
                json!({"customer_id": id(50_000 + n), "name": "C"}),
            )
            .await;
    }
    let reply = client
        .request("crm.projector.kpis.rebuild", "".into())
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["status"], "accepted", "{reply}");
    // Writes and reads go on while the rebuild runs; every read is a whole model.
    let mut completed = false;
    for n in 0..300u128 {
        caller
            .send(
                "customer.RegisterCustomer",
                json!({"customer_id": id(60_000 + n), "name": "C"}),
            )
            .await;
        let kpis = caller.query("kpi.get", json!({})).await;
        let registered = kpis["kpis"]["counters"]["customers_registered"].as_u64();
        assert!(
            registered.is_none() || registered >= Some(301 + n as u64),
            "{kpis}"
        );
        let status = client
            .request("crm.projector.kpis.status", "".into())
            .await
            .unwrap();
        let status: Value = serde_json::from_slice(&status.payload).unwrap();
        if status["rebuilds_completed"] == 1 {
            completed = true;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !completed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the KPI rebuild did not finish within 30 s of the last write"
        );
        let status = client
            .request("crm.projector.kpis.status", "".into())
            .await
            .unwrap();
        let status: Value = serde_json::from_slice(&status.payload).unwrap();
        assert!(status["rebuild"]["error"].is_null(), "{status}");
        completed = status["rebuilds_completed"] == 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let final_reply = caller.query("kpi.get", json!({})).await;
    service.terminate(Duration::from_secs(20)).unwrap();
    let versions: Vec<String> = std::fs::read_dir(dir.path().join("projections").join("kpis"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('v'))
        .collect();
    assert_eq!(versions, vec!["v2".to_owned()], "the old version is gone");
    assert_eq!(
        live_hash(dir.path(), "kpis"),
        rebuild_hash(dir.path(), "kpis"),
        "{final_reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_reply_above_the_nats_payload_limit_is_refused_typed_and_the_service_stays_up() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let mut service = serve(dir.path(), &nats.url(), "customers");
    let mut caller = Caller {
        client: nats.connect().await,
        last_position: 0,
    };
    let subject = "s".repeat(2000);
    for n in 0..500u128 {
        let customer = id(70_000 + n);
        caller
            .send(
                "customer.RegisterCustomer",
                json!({"customer_id": customer, "name": "C"}),
            )
            .await;
        caller
            .send(
                "ticket.OpenTicket",
                json!({"ticket_id": id(80_000 + n), "customer_id": customer, "subject": subject, "category": "question", "priority": "low", "channel": "web"}),
            )
            .await;
    }
    let big = caller.query("customer.list", json!({"limit": 500})).await;
    assert_eq!(
        big["code"],
        "payload_too_large",
        "{}",
        big.to_string().chars().take(300).collect::<String>()
    );
    let small = caller.query("customer.list", json!({"limit": 50})).await;
    assert_eq!(small["customers"].as_array().unwrap().len(), 50);
    // The connection of `crm serve` survived: commands are still answered.
    caller
        .send(
            "customer.RegisterCustomer",
            json!({"customer_id": id(99_999), "name": "After"}),
        )
        .await;
    service.terminate(Duration::from_secs(20)).unwrap();
}

/// Runs `crm replay <args>` to completion: (exit code, stdout, stderr).
fn replay(args: &[&str]) -> (i32, String, String) {
    let output = Process::new(env!("CARGO_BIN_EXE_crm"))
        .arg("replay")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run crm replay");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The one JSON line a successful replay prints.
fn replayed(args: &[&str]) -> Value {
    let (code, stdout, stderr) = replay(args);
    assert_eq!(code, 0, "crm replay {args:?}: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    serde_json::from_str(&stdout).expect("replay prints JSON")
}

/// Every file under `dir` with its size and modification time.
fn listing(dir: &Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                todo.push(entry.path());
            } else {
                out.push((entry.path(), meta.len(), meta.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_answers_as_the_live_model_did_at_that_position_or_time() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let mut service = serve(dir.path(), &nats.url(), "customers,funnel,kpis");
    let mut caller = Caller {
        client: nats.connect().await,
        last_position: 0,
    };
    let (a, _) = play_worked_example(&mut caller).await;
    let cut = caller.last_position;
    let funnel_then = caller.query("funnel.get", json!({})).await;
    let kpis_then = caller.query("kpi.get", json!({"month": "2026-11"})).await;
    let customer_then = caller
        .query("customer.get", json!({"customer_id": a}))
        .await;
    assert_eq!(funnel_then["position"], cut);
    // Later history changes every answer.
    caller.send("lead.WinLead", json!({"lead_id": id(3), "deal_value": eur(50_000), "customer_id": id(102), "occurred_at": "2026-11-20T09:00:00Z"})).await;
    caller.send("order.PlaceOrder", json!({"order_id": id(203), "customer_id": a, "amount": eur(5_000), "channel": "online", "occurred_at": "2026-11-21T09:00:00Z"})).await;
    let head = caller.last_position;
    assert_ne!(
        caller.query("funnel.get", json!({})).await["won"],
        funnel_then["won"]
    );

    let url = nats.url();
    let cut_text = cut.to_string();
    let over_nats = |model: &str, query: &str, until: &str| {
        replayed(&[
            model,
            "--nats-url",
            &url,
            "--until",
            until,
            "--query",
            query,
        ])
    };
    assert_eq!(over_nats("funnel", "{}", &cut_text), funnel_then);
    assert_eq!(
        over_nats("kpis", r#"{"month":"2026-11"}"#, &cut_text),
        kpis_then
    );
    let customer_query = json!({"customer_id": a}).to_string();
    assert_eq!(
        replayed(&[
            "customers",
            "--nats-url",
            &url,
            "--until",
            &cut_text,
            "--query-name",
            "customer.get",
            "--query",
            &customer_query
        ]),
        customer_then
    );
    // Without --until: the whole log.
    assert_eq!(replayed(&["funnel", "--nats-url", &url])["position"], head);

    // A time cuts after the last event recorded at or before it: a prefix of the log.
    let page = caller
        .client
        .request(
            "crm.log.read",
            serde_json::to_vec(&json!({"from": 1, "max": 1000, "format": "json"}))
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    let page: Value = serde_json::from_slice(&page.payload).unwrap();
    let recorded: Vec<String> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recorded_at"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recorded.len() as u64, head);
    let at_cut = &recorded[cut as usize - 1];
    let expected = recorded.iter().filter(|t| *t <= at_cut).count() as u64;
    assert!(expected >= cut, "recorded_at never decreases with position");
    let by_time = over_nats("funnel", "{}", at_cut);
    assert_eq!(by_time["position"], expected);
    if expected == cut {
        assert_eq!(by_time, funnel_then);
    }
    assert_eq!(
        over_nats("funnel", "{}", "2020-01-01T00:00:00Z")["position"],
        0,
        "a time before the first event replays nothing"
    );

    // Input errors: one line, exit code 2.
    for args in [
        vec!["funnel", "--nats-url", &url, "--query-name", "kpi.get"],
        vec!["funnel", "--nats-url", &url, "--until", "999999"],
        vec!["funnel", "--nats-url", &url, "--query", "{not json"],
        vec!["funnel"],
    ] {
        let (code, stdout, stderr) = replay(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    let (code, _, _) = replay(&["nope", "--nats-url", &url]);
    assert_eq!(code, 2, "clap refuses an unknown read model");

    // Offline, on the stopped service's data directory: the same answers, and the live
    // stores are left exactly as they were.
    service.terminate(Duration::from_secs(20)).unwrap();
    let live = listing(&dir.path().join("projections"));
    let data_dir = dir.path().to_str().unwrap().to_owned();
    assert_eq!(
        replayed(&["funnel", "--data-dir", &data_dir, "--until", &cut_text]),
        funnel_then
    );
    let kept = TempDataDir::new().unwrap();
    let keep = kept.path().join("funnel-at-cut");
    let keep_text = keep.to_str().unwrap().to_owned();
    assert_eq!(
        replayed(&[
            "kpis",
            "--data-dir",
            &data_dir,
            "--until",
            &cut_text,
            "--query",
            r#"{"month":"2026-11"}"#,
            "--keep",
            &keep_text
        ]),
        kpis_then
    );
    assert!(keep.join("db").exists() || keep.read_dir().unwrap().next().is_some());
    let (code, _, stderr) = replay(&["kpis", "--data-dir", &data_dir, "--keep", &keep_text]);
    assert_eq!(code, 2, "a kept store is not overwritten: {stderr}");
    assert_eq!(listing(&dir.path().join("projections")), live);
}
