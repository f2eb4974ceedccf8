//! The `tickets` read model through the real `crm` binary: ticket commands over NATS, then
//! `crm.query.tickets.list` and `crm.query.tickets.stats` with `min_position`, the
//! projector's status, and rebuilds byte-identical to the live store.

use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use crm_testkit::{ChildProcess, NatsServer, TempDataDir};
use serde_json::{json, Value};
use uuid::Uuid;

mod support;

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

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

/// A time on 2 November 2026 (UTC).
fn at(time: &str) -> String {
    format!("2026-11-02T{time}:00Z")
}

struct Caller {
    client: async_nats::Client,
    last_position: u64,
}

impl Caller {
    async fn send(&mut self, subject: &str, body: Value) {
        let reply =
            support::send_until_answered(&self.client, subject, Uuid::now_v7(), &body).await;
        assert_eq!(reply["status"], "accepted", "{subject}: {reply}");
        let position = reply["last_position"].as_u64().expect("a last_position");
        self.last_position = self.last_position.max(position);
    }

    /// A query answered once the model has applied our last write.
    async fn query(&self, name: &str, mut body: Value) -> Value {
        body["min_position"] = json!(self.last_position);
        body["timeout_ms"] = json!(20_000);
        let payload = serde_json::to_vec(&body).expect("JSON");
        let reply = self
            .client
            .request(format!("crm.query.{name}"), payload.into())
            .await
            .expect("a reply");
        let reply: Value = serde_json::from_slice(&reply.payload).expect("a JSON reply");
        assert!(
            reply["position"].as_u64() >= Some(self.last_position),
            "{reply}"
        );
        reply
    }
}

async fn play(caller: &mut Caller) {
    let customer = id(100);
    let open = |ticket: u128, priority: &str, category: &str, time: &str| {
        json!({"ticket_id": id(ticket), "customer_id": customer, "subject": format!("Ticket {ticket}"),
            "category": category, "priority": priority, "channel": "email", "occurred_at": at(time)})
    };
    // 1: urgent, ada, answered after 30 min, resolved after 2 h, reopened.
    caller
        .send("ticket.OpenTicket", open(1, "urgent", "incident", "09:00"))
        .await;
    caller
        .send(
            "ticket.AssignTicket",
            json!({"ticket_id": id(1), "assignee": "ada", "occurred_at": at("09:05")}),
        )
        .await;
    caller.send("ticket.RespondToTicket", json!({"ticket_id": id(1), "responder": "ada", "public": true, "occurred_at": at("09:30")})).await;
    caller
        .send(
            "ticket.ResolveTicket",
            json!({"ticket_id": id(1), "resolution": "restarted", "occurred_at": at("11:00")}),
        )
        .await;
    caller
        .send(
            "ticket.ReopenTicket",
            json!({"ticket_id": id(1), "reason": "down again", "occurred_at": at("12:00")}),
        )
        .await;
    // 2: high, grace, only an internal note: never answered publicly.
    caller
        .send("ticket.OpenTicket", open(2, "high", "complaint", "09:00"))
        .await;
    caller
        .send(
            "ticket.AssignTicket",
            json!({"ticket_id": id(2), "assignee": "grace", "occurred_at": at("09:10")}),
        )
        .await;
    caller.send("ticket.RespondToTicket", json!({"ticket_id": id(2), "responder": "grace", "public": false, "occurred_at": at("09:20")})).await;
    // 3: low, closed as spam.
    caller
        .send("ticket.OpenTicket", open(3, "low", "question", "10:00"))
        .await;
    caller
        .send(
            "ticket.CloseTicket",
            json!({"ticket_id": id(3), "occurred_at": at("10:05")}),
        )
        .await;
    // 4: normal, escalated to urgent, unassigned.
    caller
        .send("ticket.OpenTicket", open(4, "normal", "request", "13:00"))
        .await;
    caller
        .send(
            "ticket.EscalateTicket",
            json!({"ticket_id": id(4), "priority": "urgent", "occurred_at": at("13:30")}),
        )
        .await;
}

fn live_hash(data_dir: &Path) -> String {
    let root = data_dir.join("projections").join("tickets");
    let current = crm_projector::versions::current_dir(&root).expect("a live store");
    let store = crm_projector::ProjectionStore::open(&current).expect("the store opens");
    let hash = store.canonical_hash().expect("a hash");
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn rebuild_hash(data_dir: &Path) -> String {
    let output = Process::new(env!("CARGO_BIN_EXE_crm"))
        .args(["rebuild", "tickets", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("crm rebuild runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let hash = stdout.rsplit("store hash ").next().unwrap_or("");
    hash.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_over_nats_list_stats_and_rebuild_alike() {
    let nats = NatsServer::start().expect("nats-server");
    let dir = TempDataDir::new().expect("a data dir");
    let mut service = crm(
        &["serve", "--projections", "tickets"],
        dir.path(),
        &nats.url(),
    );
    service
        .wait_for_line("crm serve ready", Duration::from_secs(30))
        .expect("serve ready");
    let mut caller = Caller {
        client: nats.connect().await,
        last_position: 0,
    };
    play(&mut caller).await;

    let all = caller.query("tickets.list", json!({})).await;
    let tickets = all["tickets"].as_array().expect("tickets");
    assert_eq!(tickets.len(), 4, "{all}");
    assert_eq!(all["next"], Value::Null);
    let first = &tickets[0];
    assert_eq!(first["ticket_id"], json!(id(1)));
    assert_eq!(first["status"], "open");
    assert_eq!(first["assignee"], "ada");
    assert_eq!(first["reopen_count"], 1);
    assert_eq!(first["first_response_at"], at("09:30"));
    assert_eq!(first["resolved_at"], at("11:00"));
    assert_eq!(tickets[3]["priority"], "urgent", "escalated");

    let assigned = caller
        .query("tickets.list", json!({"status": "assigned"}))
        .await;
    assert_eq!(
        assigned["tickets"][0]["ticket_id"],
        json!(id(2)),
        "{assigned}"
    );
    assert_eq!(assigned["tickets"].as_array().map(Vec::len), Some(1));
    let page = caller.query("tickets.list", json!({"limit": 2})).await;
    assert_eq!(page["next"], json!(id(2)), "{page}");
    let rest = caller
        .query("tickets.list", json!({"limit": 2, "after": page["next"]}))
        .await;
    assert_eq!(rest["tickets"][0]["ticket_id"], json!(id(3)), "{rest}");
    assert_eq!(rest["next"], Value::Null);

    let stats = caller
        .query("tickets.stats", json!({"as_of": at("15:00")}))
        .await;
    assert_eq!(
        stats["backlog"],
        json!({"total": 3, "by_priority": {"low": 0, "normal": 0, "high": 1, "urgent": 2},
            "by_assignee": {"ada": 1, "grace": 1}, "unassigned": 1}),
        "{stats}"
    );
    assert_eq!(
        stats["months"],
        json!({"2026-11": {"first_response_minutes": {"count": 1, "p50": 30, "p90": 30},
            "resolution_minutes": {"count": 1, "p50": 120, "p90": 120}}})
    );
    assert_eq!(stats["reopens"]["tickets_reopened"], 1);
    assert_eq!(stats["reopens"]["reopen_rate"], 0.25);
    // At 15:00: 2 (high, 240 min, no public answer since 09:00) and 4 (urgent since its
    // escalation, 60 min, unanswered since 13:00) are late; 1 was answered in time; 3 (low,
    // 1440 min) is not late yet.
    assert_eq!(
        stats["sla"]["breached"],
        json!({"low": 0, "normal": 0, "high": 1, "urgent": 1}),
        "{stats}"
    );
    assert_eq!(stats["sla"]["breached_total"], 2);

    let refused = caller
        .query("tickets.stats", json!({"as_of": "tomorrow"}))
        .await;
    assert_eq!(refused["code"], "malformed", "{refused}");
    let refused = caller.query("tickets.list", json!({"owner": "ada"})).await;
    assert_eq!(refused["code"], "malformed", "{refused}");

    let reply = caller
        .client
        .request("crm.projector.tickets.status", "".into())
        .await
        .expect("a status");
    let status: Value = serde_json::from_slice(&reply.payload).expect("JSON");
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["checkpoint"], caller.last_position, "{status}");
    service.terminate(Duration::from_secs(20)).expect("stops");

    let live = live_hash(dir.path());
    let first = rebuild_hash(dir.path());
    assert_eq!(
        first,
        rebuild_hash(dir.path()),
        "two rebuilds are byte-identical"
    );
    assert_eq!(first, live, "the live store equals a rebuild");
}
