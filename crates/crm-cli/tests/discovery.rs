//! Operators' view of the running system: every `crm serve` and `crm project` instance answers
//! the NATS services API (`$SRV.PING|INFO|STATS`) with counts that move with real traffic and
//! its own status, is addressable alone, and `crm status` / `crm health` read them.

use std::process::Command as Process;
use std::time::Duration;

use crm_testkit::{ChildProcess, NatsServer, TempDataDir};
use serde_json::{json, Value};
use uuid::Uuid;

mod support;
use support::{gather, send_until_answered};

fn crm(args: &[&str]) -> Process {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("CRM_NATS_URL")
        .env_remove("NATS_URL");
    command
}

/// Starts a long-running `crm` subcommand and returns it with the instance id it printed.
fn start(args: &[&str], ready: &str) -> (ChildProcess, String) {
    let mut child = ChildProcess::spawn(crm(args)).expect("spawn crm");
    if let Err(e) = child.wait_for_line(ready, Duration::from_secs(30)) {
        panic!("{args:?} not ready: {e}\n{}", child.output_tail());
    }
    let stdout = child.stdout().unwrap();
    let line = stdout.lines().find(|l| l.contains(ready)).unwrap();
    let id = line
        .rsplit_once("instance ")
        .map(|(_, id)| id.trim().to_owned())
        .expect("the ready line names the instance");
    (child, id)
}

async fn request(client: &async_nats::Client, subject: &str) -> Value {
    let reply = client
        .request(subject.to_owned(), "".into())
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&reply.payload).unwrap()
}

fn endpoint<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no endpoint {name} in {stats}"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let output = crm(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_answers_the_services_api_and_crm_status_sees_them_all() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let (serve_dir, project_dir) = (TempDataDir::new().unwrap(), TempDataDir::new().unwrap());
    let serve_dir_text = serve_dir.path().to_str().unwrap().to_owned();
    let project_dir_text = project_dir.path().to_str().unwrap().to_owned();
    let (mut serve, serve_id) = start(
        &[
            "serve",
            "--data-dir",
            &serve_dir_text,
            "--nats-url",
            &url,
            "--projections",
            "customers,funnel",
        ],
        "crm serve ready",
    );
    let (mut project, project_id) = start(
        &[
            "project",
            "kpis",
            "--data-dir",
            &project_dir_text,
            "--nats-url",
            &url,
        ],
        "crm project kpis ready",
    );
    assert_ne!(serve_id, project_id);
    let client = nats.connect().await;

    // Real traffic: accepted commands, one refusal.
    let mut last = 0;
    for n in 0..5u128 {
        let reply = send_until_answered(
            &client,
            "lead.CreateLead",
            Uuid::now_v7(),
            &json!({"lead_id": Uuid::from_u128(n + 1), "name": "L", "source": "web"}),
        )
        .await;
        assert_eq!(reply["status"], "accepted", "{reply}");
        last = reply["last_position"].as_u64().unwrap();
    }
    let refused = send_until_answered(
        &client,
        "lead.CreateLead",
        Uuid::now_v7(),
        &json!({"lead_id": Uuid::from_u128(1), "name": "L", "source": "web"}),
    )
    .await;
    assert_eq!(refused["code"], "already_exists");
    let kpis = client
        .request(
            "crm.query.kpi.get",
            serde_json::to_vec(&json!({"min_position": last, "timeout_ms": 20000}))
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    let kpis: Value = serde_json::from_slice(&kpis.payload).unwrap();
    assert_eq!(kpis["position"], last, "{kpis}");

    // PING: both instances, by the plain and the named subject.
    for subject in ["$SRV.PING", "$SRV.PING.crm"] {
        let pings = gather(&client, subject, Duration::from_millis(700)).await;
        let mut ids: Vec<&str> = pings.iter().map(|p| p["id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        let mut want = vec![serve_id.as_str(), project_id.as_str()];
        want.sort_unstable();
        assert_eq!(ids, want, "{subject}: {pings:?}");
        assert!(pings
            .iter()
            .all(|p| p["type"] == "io.nats.micro.v1.ping_response" && p["name"] == "crm"));
    }

    // INFO of one instance: its endpoints, subjects and queue groups.
    let info = request(&client, &format!("$SRV.INFO.crm.{serve_id}")).await;
    assert_eq!(info["type"], "io.nats.micro.v1.info_response");
    assert_eq!(info["metadata"]["role"], "serve");
    let commands = endpoint(&info, "commands");
    assert_eq!(commands["subject"], "crm.cmd.>");
    assert_eq!(commands["queue_group"], "crm-command-service");
    assert_eq!(endpoint(&info, "log.read")["subject"], "crm.log.read");
    assert_eq!(
        endpoint(&info, "projector.funnel.status.instance")["subject"],
        format!("crm.projector.funnel.status.{serve_id}")
    );
    assert_eq!(
        endpoint(&info, "projector.funnel.status.instance")["queue_group"],
        ""
    );

    // STATS: counts moved with the traffic; `data` of `status` is the instance's status.
    let stats = request(&client, &format!("$SRV.STATS.crm.{serve_id}")).await;
    assert_eq!(stats["type"], "io.nats.micro.v1.stats_response");
    let commands = endpoint(&stats, "commands");
    assert_eq!(commands["num_requests"], 6, "{commands}");
    assert_eq!(commands["num_errors"], 1, "{commands}");
    assert!(commands["last_error"].as_str().unwrap().starts_with("409:"));
    assert!(commands["processing_time"].as_u64().unwrap() > 0);
    let status = &endpoint(&stats, "status")["data"];
    assert_eq!(status["instance"], serve_id.as_str());
    assert_eq!(status["log"]["head"], last);
    assert_eq!(status["log"]["writable"], true);
    let models: Vec<&str> = status["read_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["customers", "funnel"]);
    let project_stats = request(&client, &format!("$SRV.STATS.crm.{project_id}")).await;
    assert_eq!(endpoint(&project_stats, "query.kpi.get")["num_requests"], 1);

    // One instance by its own subjects.
    let own = request(&client, &format!("crm.status.{project_id}")).await;
    assert_eq!(own["role"], "project");
    assert_eq!(own["read_models"][0]["name"], "kpis");
    let kpis_status = request(&client, &format!("crm.projector.kpis.status.{project_id}")).await;
    assert_eq!(kpis_status["checkpoint"], last);

    // `crm status` and `crm health` see both.
    let (code, stdout, stderr) = run(&["status", "--nats-url", &url, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let seen: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(seen["instances"].as_array().unwrap().len(), 2, "{seen}");
    let (code, stdout, _) = run(&["status", "--nats-url", &url]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&format!("instance {serve_id} (serve")),
        "{stdout}"
    );
    assert!(stdout.contains("read model kpis: running"), "{stdout}");
    let (code, stdout, stderr) = run(&["health", "--nats-url", &url]);
    assert_eq!((code, stdout.lines().count()), (0, 1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("healthy: 2 instances, 3 read models"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&["health", "--nats-url", &url, "--lag-max-s=-1"]);
    assert_eq!(code, 1);
    assert!(stdout.starts_with("unhealthy: instance "), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);

    project.terminate(Duration::from_secs(20)).unwrap();
    serve.terminate(Duration::from_secs(20)).unwrap();
    let (code, stdout, stderr) = run(&["health", "--nats-url", &url, "--wait-ms", "300"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "unhealthy: no crm instance answered");
}
