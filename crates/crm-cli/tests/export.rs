//! `crm export` through the real binary: the worked example of docs/DOMAIN.md exported line by
//! line, over NATS byte for byte the same as offline (with filters and ranges), and bad input
//! refused with one line and exit status 2.

use std::path::Path;
use std::process::{Command as Process, Output, Stdio};
use std::time::Duration;

use crm_testkit::{ChildProcess, NatsServer, TempDataDir};
use serde_json::{json, Value};
use uuid::Uuid;

mod support;

fn serve(data_dir: &Path, nats_url: &str) -> ChildProcess {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--nats-url")
        .arg(nats_url)
        .args(["--projections", ""])
        .env("RUST_LOG", "warn");
    let mut child = ChildProcess::spawn(command).expect("spawn crm serve");
    if let Err(e) = child.wait_for_line("crm serve ready", Duration::from_secs(30)) {
        panic!("crm serve not ready: {e}\n{}", child.output_tail());
    }
    child
}

fn stop(mut service: ChildProcess) {
    match service.terminate(Duration::from_secs(20)) {
        Ok(status) => assert!(status.success(), "{status:?}\n{}", service.output_tail()),
        Err(e) => panic!("crm serve did not stop: {e}\n{}", service.output_tail()),
    }
}

/// Runs `crm export ARGS` to completion, with warnings only in the logs and no NATS URL or
/// data dir from the environment.
fn crm_export(args: &[&str]) -> Output {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command
        .arg("export")
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("NATS_URL")
        .env_remove("CRM_NATS_URL")
        .env_remove("CRM_LOG_FORMAT")
        .stdin(Stdio::null());
    tokio::task::block_in_place(|| command.output()).expect("run crm export")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

fn eur(amount_minor: i64) -> Value {
    json!({"amount_minor": amount_minor, "currency": "EUR"})
}

/// One accepted command: what was sent and what the service answered.
struct Sent {
    command: &'static str,
    command_id: Uuid,
    body: Value,
    reply: Value,
}

/// The worked example of docs/DOMAIN.md, command by command, each accepted.
async fn play_worked_example(client: &async_nats::Client) -> Vec<Sent> {
    let at = |day: u32, time: &str| format!("2026-11-{day:02}T{time}:00Z");
    let (a, b, ticket) = (id(100), id(101), id(400));
    let mut script: Vec<(&'static str, &'static str, Value)> = Vec::new();
    for n in 0..10u128 {
        let source = if n < 6 { "web" } else { "referral" };
        script.push(("lead", "CreateLead", json!({"lead_id": id(n), "name": format!("Lead {n}"), "source": source, "estimated_value": eur(50_000), "occurred_at": at(2, "09:00")})));
    }
    for (count, stage, day) in [
        (6, "interest", 4),
        (4, "consideration", 7),
        (3, "decision", 11),
    ] {
        for n in 0..count {
            script.push((
                "lead",
                "AdvanceFunnelStage",
                json!({"lead_id": id(n), "to_stage": stage, "occurred_at": at(day, "09:00")}),
            ));
        }
    }
    script.push(("lead", "WinLead", json!({"lead_id": id(0), "deal_value": eur(100_000), "customer_id": a, "occurred_at": at(16, "09:00")})));
    script.push(("lead", "WinLead", json!({"lead_id": id(1), "deal_value": eur(300_000), "customer_id": b, "occurred_at": at(16, "11:00")})));
    script.push((
        "lead",
        "LoseLead",
        json!({"lead_id": id(2), "reason": "competitor", "occurred_at": at(18, "09:00")}),
    ));
    script.push(("order", "PlaceOrder", json!({"order_id": id(200), "customer_id": a, "amount": eur(40_000), "channel": "online", "occurred_at": at(20, "09:00")})));
    script.push(("order", "PlaceOrder", json!({"order_id": id(201), "customer_id": a, "amount": eur(60_000), "channel": "online", "occurred_at": at(22, "09:00")})));
    script.push(("order", "PlaceOrder", json!({"order_id": id(202), "customer_id": b, "amount": eur(100_000), "channel": "store", "occurred_at": at(23, "09:00")})));
    script.push(("order", "RefundOrder", json!({"order_id": id(201), "amount": eur(10_000), "reason": "damaged", "occurred_at": at(24, "09:00")})));
    for (n, customer, kind, score) in [
        (0, a, "nps", 10),
        (1, a, "csat", 5),
        (2, b, "nps", 6),
        (3, b, "csat", 3),
    ] {
        script.push(("customer", "RecordSurveyResponse", json!({"customer_id": customer, "response_id": id(300 + n), "kind": kind, "score": score, "occurred_at": at(25, "09:00")})));
    }
    script.push(("ticket", "OpenTicket", json!({"ticket_id": ticket, "customer_id": b, "subject": "Broken", "category": "complaint", "priority": "normal", "channel": "email", "occurred_at": at(27, "10:00")})));
    script.push((
        "ticket",
        "AssignTicket",
        json!({"ticket_id": ticket, "assignee": "linus", "occurred_at": at(27, "10:05")}),
    ));
    script.push(("ticket", "RespondToTicket", json!({"ticket_id": ticket, "responder": "linus", "public": true, "occurred_at": at(27, "10:30")})));
    script.push((
        "ticket",
        "ResolveTicket",
        json!({"ticket_id": ticket, "resolution": "replaced", "occurred_at": at(27, "12:00")}),
    ));
    script.push((
        "ticket",
        "CloseTicket",
        json!({"ticket_id": ticket, "occurred_at": at(27, "12:30")}),
    ));

    let mut sent = Vec::new();
    for (aggregate, command, body) in script {
        let command_id = Uuid::now_v7();
        let subject = format!("{aggregate}.{command}");
        let reply = support::send_until_answered(client, &subject, command_id, &body).await;
        assert_eq!(reply["status"], "accepted", "{subject}: {reply}");
        sent.push(Sent {
            command,
            command_id,
            body,
            reply,
        });
    }
    sent
}

/// The event type a command of the example records on its own stream.
fn event_type_of(command: &str) -> &'static str {
    match command {
        "CreateLead" => "LeadCreated",
        "AdvanceFunnelStage" => "FunnelStageAdvanced",
        "WinLead" => "LeadWon",
        "LoseLead" => "LeadLost",
        "PlaceOrder" => "OrderPlaced",
        "RefundOrder" => "OrderRefunded",
        "RecordSurveyResponse" => "SurveyResponseRecorded",
        "OpenTicket" => "TicketOpened",
        "AssignTicket" => "TicketAssigned",
        "RespondToTicket" => "TicketResponded",
        "ResolveTicket" => "TicketResolved",
        "CloseTicket" => "TicketClosed",
        other => panic!("no event type for {other}"),
    }
}

fn lines(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).expect("UTF-8 output");
    assert!(text.is_empty() || text.ends_with('\n'), "a partial line");
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worked_example_exports_as_the_events_its_commands_produced() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let service = serve(dir.path(), &nats.url());
    let sent = play_worked_example(&nats.connect().await).await;
    stop(service);

    let data_dir = dir.path().to_str().unwrap();
    let output = crm_export(&["--data-dir", data_dir]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let exported = lines(&output.stdout);
    let head = sent.last().unwrap().reply["last_position"]
        .as_u64()
        .unwrap();
    assert_eq!(
        exported.len() as u64,
        head,
        "one line per event, nothing else"
    );
    assert_eq!(head, 41, "the example records 41 events");
    let raw = String::from_utf8(output.stdout.clone()).unwrap();
    for (i, (line, text)) in exported.iter().zip(raw.lines()).enumerate() {
        assert_eq!(line["position"], i as u64 + 1, "{line}");
        // The fields in their documented order (serde_json's Value would sort them).
        let keys = [
            "position",
            "stream",
            "version",
            "event_type",
            "schema_version",
            "occurred_at",
            "recorded_at",
            "command_id",
            "actor",
            "data",
        ];
        assert_eq!(line.as_object().unwrap().len(), keys.len(), "{text}");
        let at: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "field order: {text}");
    }

    for command in &sent {
        let reply = &command.reply;
        let first = reply["first_position"].as_u64().unwrap();
        let last = reply["last_position"].as_u64().unwrap();
        let events = &exported[first as usize - 1..last as usize];
        let own = events
            .iter()
            .find(|e| e["stream"] == reply["stream"])
            .unwrap_or_else(|| panic!("no event on {} for {}", reply["stream"], command.command));
        assert_eq!(own["version"], reply["version"], "{own}");
        assert_eq!(own["event_type"], event_type_of(command.command), "{own}");
        assert_eq!(own["schema_version"], 1);
        assert_eq!(own["command_id"], command.command_id.to_string());
        assert_eq!(own["occurred_at"], command.body["occurred_at"], "{own}");
        assert_eq!(own["actor"], Value::Null);
        assert!(own["recorded_at"].as_str().unwrap().ends_with('Z'));
        // Every field of the command is in the event, with the same value and name.
        for (key, value) in command.body.as_object().unwrap() {
            if key != "occurred_at" {
                assert_eq!(
                    &own["data"][key], value,
                    "{key} of {}: {own}",
                    command.command
                );
            }
        }
        if command.command == "WinLead" {
            // The win registers its customer, on the customer's stream, in the same append.
            assert_eq!(events.len(), 2);
            let customer = events.iter().find(|e| e != &own).unwrap();
            assert_eq!(customer["event_type"], "CustomerRegistered");
            assert_eq!(
                customer["stream"],
                format!("customer-{}", command.body["customer_id"].as_str().unwrap())
            );
            assert_eq!(customer["version"], 1);
            assert_eq!(customer["data"]["from_lead"], command.body["lead_id"]);
            assert_eq!(customer["command_id"], command.command_id.to_string());
        } else {
            assert_eq!(events.len(), 1, "{}", command.command);
        }
    }
    let summary = stderr_of(&output);
    assert!(
        summary.lines().any(
            |l| l.starts_with("exported 41 events (positions 1..41) in ") && l.ends_with(" s")
        ),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_over_nats_equals_offline_export_byte_for_byte() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let service = serve(dir.path(), &nats.url());
    play_worked_example(&nats.connect().await).await;

    let url = nats.url();
    let cases: [&[&str]; 5] = [
        &[],
        &["--aggregate", "lead,order"],
        &[
            "--event-type",
            "LeadCreated,OrderPlaced",
            "--from-position",
            "3",
            "--to-position",
            "30",
        ],
        &[
            "--aggregate",
            "customer",
            "--aggregate",
            "ticket",
            "--event-type",
            "TicketOpened,SurveyResponseRecorded,CustomerRegistered",
        ],
        &["--from-position", "7", "--to-position", "100000"],
    ];
    let mut over_nats = Vec::new();
    for (i, args) in cases.iter().enumerate() {
        // Once to a file, the other times to stdout.
        let output = if i == 0 {
            let file = dir.join("over-nats.jsonl");
            let out = crm_export(
                &[
                    &["--nats-url", &url, "--out", file.to_str().unwrap()],
                    *args,
                ]
                .concat(),
            );
            assert!(out.stdout.is_empty());
            Output {
                stdout: std::fs::read(&file).unwrap(),
                ..out
            }
        } else {
            crm_export(&[&["--nats-url", &url], *args].concat())
        };
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert!(!output.stdout.is_empty(), "{args:?}");
        over_nats.push(output.stdout);
    }
    stop(service);

    let data_dir = dir.path().to_str().unwrap();
    for (args, over_nats) in cases.iter().zip(&over_nats) {
        let offline = crm_export(&[&["--data-dir", data_dir], *args].concat());
        assert_eq!(
            offline.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr_of(&offline)
        );
        assert_eq!(
            String::from_utf8_lossy(&offline.stdout),
            String::from_utf8_lossy(over_nats),
            "{args:?}"
        );
    }
    // The filters did select.
    let filtered = lines(&over_nats[2]);
    assert!(filtered.iter().all(|l| {
        let position = l["position"].as_u64().unwrap();
        (3..=30).contains(&position)
            && ["LeadCreated", "OrderPlaced"].contains(&l["event_type"].as_str().unwrap())
    }));
    // Leads 3..=10 are created at positions 3..=10, the first two orders placed at 29 and 30.
    assert_eq!(filtered.len(), 10);
    let beyond = lines(&over_nats[4]);
    assert_eq!(beyond.first().unwrap()["position"], 7);
    assert_eq!(beyond.last().unwrap()["position"], 41, "cut at the head");
}

/// Asserts a refusal: exit status 2, one line on stderr containing `expected`, no output.
fn assert_refused(output: &Output, expected: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
    assert!(stderr.starts_with("crm export: "), "{stderr}");
    assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    assert!(output.stdout.is_empty(), "nothing written");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_with_one_line_and_writes_nothing() {
    let dir = TempDataDir::new().unwrap();
    let nowhere = dir.join("nowhere");
    let nowhere = nowhere.to_str().unwrap();
    let empty = dir.path().to_str().unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "not a data dir").unwrap();
    let file = file.to_str().unwrap();

    assert_refused(
        &crm_export(&[
            "--data-dir",
            empty,
            "--from-position",
            "9",
            "--to-position",
            "3",
        ]),
        "--from-position 9 is above --to-position 3",
    );
    assert_refused(
        &crm_export(&["--data-dir", empty, "--from-position", "0"]),
        "positions start at 1",
    );
    let unknown_type = crm_export(&["--data-dir", empty, "--event-type", "LeadCreated,LeadMade"]);
    assert_refused(
        &unknown_type,
        "unknown event type `LeadMade`; valid: LeadCreated, ",
    );
    assert!(stderr_of(&unknown_type).contains("PipelineDefined"));
    assert_refused(
        &crm_export(&["--data-dir", empty, "--aggregate", "lead,deal"]),
        "unknown aggregate `deal`; valid: lead, customer, order, ticket, campaign, pipeline",
    );
    assert_refused(&crm_export(&["--data-dir", nowhere]), "no event log at ");
    assert_refused(&crm_export(&["--data-dir", empty]), "no event log at ");
    assert_refused(&crm_export(&["--data-dir", file]), "no event log at ");
    assert!(!dir.join("log").exists(), "no log was created");
    assert!(!dir.join("nowhere").exists());
    assert_refused(&crm_export(&[]), "pass --data-dir DIR");

    // A NATS server without crm serve: nobody answers the log API.
    let nats = NatsServer::start().unwrap();
    assert_refused(
        &crm_export(&["--nats-url", &nats.url()]),
        "no service answers it",
    );
    // No NATS server at all: the connection is refused at once.
    let port = crm_testkit::free_loopback_port();
    assert_refused(
        &crm_export(&[
            "--nats-url",
            &format!("nats://127.0.0.1:{port}"),
            "--request-timeout-ms",
            "500",
        ]),
        "is the server reachable?",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_held_by_a_running_service_is_refused_offline() {
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let service = serve(dir.path(), &nats.url());
    let client = nats.connect().await;
    let body = json!({"lead_id": id(1), "name": "Ada", "source": "web"});
    let reply =
        support::send_until_answered(&client, "lead.CreateLead", Uuid::now_v7(), &body).await;
    assert_eq!(reply["status"], "accepted", "{reply}");

    let data_dir = dir.path().to_str().unwrap();
    let out = dir.join("held.jsonl");
    let held = crm_export(&["--data-dir", data_dir, "--out", out.to_str().unwrap()]);
    assert_refused(
        &held,
        "is held by a running service; export from it with --nats-url instead",
    );
    assert!(!out.exists(), "no output file for a refused export");
    // The same log over NATS, meanwhile, exports.
    let live = crm_export(&["--nats-url", &nats.url()]);
    assert_eq!(live.status.code(), Some(0), "{}", stderr_of(&live));
    assert_eq!(lines(&live.stdout).len(), 1);
    stop(service);
}

/// A log of `events` LeadCreated events written straight into `dir/log`.
fn write_leads(dir: &TempDataDir, events: u64) {
    use crm_domain::event::LeadCreated;
    use crm_domain::types::LeadSource;
    use crm_eventlog::{
        AppendRequest, EventLog, ExpectedVersion, LogConfig, NewEvent, StreamAppend,
    };
    let log = EventLog::open(&dir.join("log"), LogConfig::default()).expect("open log");
    let at = crm_domain::Timestamp::parse_rfc3339("2026-11-02T09:00:00Z").unwrap();
    for n in 0..events {
        let event = crm_domain::Event::LeadCreated(LeadCreated {
            lead_id: id(n.into()),
            name: format!("Lead {n} with a name long enough to fill the pipe sooner"),
            email: None,
            phone: None,
            company: None,
            source: LeadSource::Web,
            campaign_id: None,
            customer_id: None,
            owner: None,
            estimated_value: None,
            pipeline: "default".into(),
            stage: "awareness".into(),
        });
        log.append_blocking(AppendRequest {
            command_id: Uuid::now_v7(),
            request_hash: [0; 32],
            actor: None,
            correlation_id: None,
            causation_id: None,
            streams: vec![StreamAppend {
                stream: format!("lead-{}", id(n.into())),
                expected: ExpectedVersion::NoStream,
                events: vec![NewEvent {
                    event_type: event.event_type().to_owned(),
                    schema_version: event.schema_version(),
                    payload: crm_domain::codec::encode_event(at, &event).unwrap(),
                }],
            }],
        })
        .expect("append");
    }
    log.close();
}

#[test]
fn a_closed_output_pipe_ends_the_export_with_an_error() {
    let dir = TempDataDir::new().unwrap();
    // About 1.5 MB of lines: far more than a pipe holds.
    write_leads(&dir, 4000);
    let mut child = Process::new(env!("CARGO_BIN_EXE_crm"))
        .arg("export")
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crm export");
    // Close the reading end before anything is read.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("crm export: writing the output: "),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
