//! What operators see of `crm`: URLs with their passwords redacted, JSON or colourless log
//! lines, NATS_URL honoured, and `crm verify` reports as sentences or JSON.

use std::process::Command as Process;
use std::time::Duration;

use crm_eventlog::{AppendRequest, EventLog, ExpectedVersion, LogConfig, NewEvent, StreamAppend};
use crm_testkit::{ChildProcess, NatsServer, NatsServerOptions, TempDataDir};
use serde_json::{json, Value};
use uuid::Uuid;

mod support;
use support::send_until_answered;

const PASSWORD: &str = "s3cret-Pa55word";

fn server_with_password() -> NatsServer {
    NatsServer::start_with(NatsServerOptions::with_config(format!(
        "authorization {{ user: alice, password: \"{PASSWORD}\" }}"
    )))
    .expect("start nats-server with a password")
}

fn url_with_password(nats: &NatsServer) -> String {
    format!("nats://alice:{PASSWORD}@127.0.0.1:{}", nats.port())
}

/// A `crm serve` child with `RUST_LOG=info` and no inherited NATS URL variables.
fn serve_command(dir: &TempDataDir) -> Process {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--projections")
        .arg("")
        // Debug, so that async-nats's own logs of server addresses are checked too.
        .env("RUST_LOG", "info,async_nats=debug")
        .env_remove("CRM_NATS_URL")
        .env_remove("NATS_URL")
        .env_remove("CRM_LOG_FORMAT");
    command
}

/// Runs `crm serve` until ready, has it accept one command (sent with the password, so the
/// authenticated connection is shown to work), stops it, and returns (stdout, stderr).
async fn run_until_ready_and_stop(command: Process, nats: &NatsServer) -> (String, String) {
    let mut serve = ChildProcess::spawn(command).expect("spawn crm serve");
    if let Err(e) = serve.wait_for_line("crm serve ready", Duration::from_secs(30)) {
        panic!("crm serve not ready: {e}\n{}", serve.output_tail());
    }
    let client = nats
        .connect_with(async_nats::ConnectOptions::with_user_and_password(
            "alice".to_owned(),
            PASSWORD.to_owned(),
        ))
        .await
        .expect("connect as alice");
    accept_one_command_then_stop(&mut serve, &client).await;
    (
        serve.stdout().expect("stdout"),
        serve.stderr().expect("stderr"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_never_shows_the_nats_password_and_logs_json_lines() {
    let nats = server_with_password();
    let dir = TempDataDir::new().unwrap();
    let mut command = serve_command(&dir);
    command
        .arg("--nats-url")
        .arg(url_with_password(&nats))
        .arg("--log-format")
        .arg("json");
    let (stdout, stderr) = run_until_ready_and_stop(command, &nats).await;

    assert!(!stdout.contains(PASSWORD), "password on stdout:\n{stdout}");
    assert!(
        !stderr.contains(PASSWORD),
        "password in the logs:\n{stderr}"
    );
    let expected = format!("nats://***@127.0.0.1:{}", nats.port());
    assert!(
        stdout.contains(&expected),
        "redacted URL on stdout:\n{stdout}"
    );
    assert!(
        stderr.contains(&expected),
        "redacted URL in the logs:\n{stderr}"
    );

    let mut lines = 0;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(value["level"].is_string(), "no level: {line}");
        assert!(value["fields"].is_object(), "no fields: {line}");
        lines += 1;
    }
    assert!(lines >= 2, "some log lines were written:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_nats_url_from_the_environment_and_logs_text_without_colour() {
    let nats = server_with_password();
    let dir = TempDataDir::new().unwrap();
    let mut command = serve_command(&dir);
    command.env("NATS_URL", url_with_password(&nats));
    let (stdout, stderr) = run_until_ready_and_stop(command, &nats).await;

    assert!(!stdout.contains(PASSWORD), "password on stdout:\n{stdout}");
    assert!(
        !stderr.contains(PASSWORD),
        "password in the logs:\n{stderr}"
    );
    // It used the server from NATS_URL, not a local one of its own.
    assert!(
        !stdout.contains("local nats-server"),
        "started a local server:\n{stdout}"
    );
    let expected = format!("crm serve ready: nats nats://***@127.0.0.1:{}", nats.port());
    assert!(stdout.contains(&expected), "{stdout}");
    assert!(stderr.contains("crm serve ready"), "text logs:\n{stderr}");
    assert!(
        !stderr.contains("\x1b["),
        "ANSI codes off a terminal:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_authenticates_with_an_nkey_seed_file() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().expect("seed");
    let nats = NatsServer::start_with(NatsServerOptions::with_config(format!(
        "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}",
        user.public_key()
    )))
    .expect("start nats-server with an nkey user");
    let dir = TempDataDir::new().unwrap();
    let seed_file = dir.join("user.nk");
    std::fs::write(&seed_file, format!("{seed}\n")).unwrap();
    let mut command = serve_command(&dir);
    command
        .arg("--nats-url")
        .arg(nats.url())
        .arg("--nats-nkey")
        .arg(&seed_file);
    let mut serve = ChildProcess::spawn(command).expect("spawn crm serve");
    if let Err(e) = serve.wait_for_line("crm serve ready", Duration::from_secs(30)) {
        panic!("crm serve not ready: {e}\n{}", serve.output_tail());
    }
    let client = nats
        .connect_with(async_nats::ConnectOptions::with_nkey(seed.clone()))
        .await
        .expect("connect with the nkey");
    accept_one_command_then_stop(&mut serve, &client).await;
    let output = format!("{}{}", serve.stdout().unwrap(), serve.stderr().unwrap());
    assert!(!output.contains(&seed), "the seed was printed:\n{output}");
}

#[test]
fn a_missing_tls_key_is_a_usage_error() {
    let dir = TempDataDir::new().unwrap();
    let output = Process::new(env!("CARGO_BIN_EXE_crm"))
        .args(["project", "kpis", "--nats-url", "nats://127.0.0.1:1"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--nats-tls-cert", "client.pem"])
        .env_remove("CRM_NATS_TLS_KEY")
        .output()
        .expect("run crm project");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs --nats-tls-key"), "{stderr}");
}

fn append(log: &EventLog, stream: &str) {
    let command_id = Uuid::now_v7();
    let mut request_hash = [0_u8; 32];
    request_hash[..16].copy_from_slice(command_id.as_bytes());
    log.append_blocking(AppendRequest {
        command_id,
        request_hash,
        actor: None,
        correlation_id: None,
        causation_id: None,
        streams: vec![StreamAppend {
            stream: stream.to_owned(),
            expected: ExpectedVersion::Any,
            events: vec![NewEvent {
                event_type: "Happened".to_owned(),
                schema_version: 1,
                payload: format!("{stream}-payload-long-enough-to-damage").into_bytes(),
            }],
        }],
    })
    .expect("append");
}

/// A stopped log under `dir/log` with `events` events over two streams.
fn write_log(dir: &TempDataDir, events: u64) {
    let log = EventLog::open(&dir.path().join("log"), LogConfig::default()).expect("open log");
    for i in 0..events {
        append(&log, if i % 2 == 0 { "a" } else { "b" });
    }
    log.close();
}

/// Flips one byte inside the stored record at `position`, straight in sled.
fn damage_record(dir: &TempDataDir, position: u64) {
    let db = sled::open(dir.path().join("log").join(crm_eventlog::SLED_DIR_NAME)).expect("sled");
    let tree = db.open_tree(crm_eventlog::layout::TREE_NAME).expect("tree");
    let key = crm_eventlog::layout::event_key(position);
    let mut bytes = tree.get(key).expect("get").expect("record").to_vec();
    let offset = 60.min(bytes.len() - 1);
    bytes[offset] ^= 0x01;
    tree.insert(key, bytes).expect("insert");
    db.flush().expect("flush");
}

fn crm_verify(dir: &TempDataDir, json: bool) -> (Option<i32>, String) {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command.arg("verify").arg("--data-dir").arg(dir.path());
    if json {
        command.arg("--json");
    }
    let output = command.output().expect("run crm verify");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn verify_reports_a_clean_log_as_a_sentence_and_as_json() {
    let dir = TempDataDir::new().unwrap();
    write_log(&dir, 5);
    let (code, text) = crm_verify(&dir, false);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        text,
        "Checked 5 events in 2 streams (5 commands) up to position 5: no problems found.\n"
    );
    let (code, json) = crm_verify(&dir, true);
    assert_eq!(code, Some(0), "{json}");
    let report: Value = serde_json::from_str(&json).expect("one JSON object");
    assert_eq!(report["clean"], true);
    assert_eq!(report["records_checked"], 5);
    assert_eq!(report["streams_checked"], 2);
    assert_eq!(report["problems_total"], 0);
}

#[test]
fn verify_reports_a_damaged_log_one_sentence_per_problem_and_fails() {
    let dir = TempDataDir::new().unwrap();
    write_log(&dir, 5);
    damage_record(&dir, 3);
    let (code, text) = crm_verify(&dir, false);
    assert_eq!(code, Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Checked 5 events"), "{text}");
    assert!(lines[0].contains("found"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Position 3: bad record:") && l.ends_with('.')),
        "{text}"
    );
    assert!(!text.contains("BadRecord"), "no Debug output: {text}");

    let (code, json) = crm_verify(&dir, true);
    assert_eq!(code, Some(1), "{json}");
    let report: Value = serde_json::from_str(&json).expect("one JSON object");
    assert_eq!(report["clean"], false);
    let problems = report["problems"].as_array().expect("problems");
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "bad_record" && p["position"] == 3),
        "{json}"
    );
}

/// A command goes through crm serve (so its NATS connection really authenticated), then it
/// stops cleanly on SIGTERM.
async fn accept_one_command_then_stop(serve: &mut ChildProcess, client: &async_nats::Client) {
    let body = json!({"lead_id": Uuid::now_v7(), "name": "Ada", "source": "web"});
    let reply = send_until_answered(client, "lead.CreateLead", Uuid::now_v7(), &body).await;
    assert_eq!(reply["status"], "accepted", "{reply}");
    let status = match serve.terminate(Duration::from_secs(20)) {
        Ok(status) => status,
        Err(e) => panic!("crm serve did not stop: {e}\n{}", serve.output_tail()),
    };
    assert!(status.success(), "{status:?}\n{}", serve.output_tail());
}

/// docker-compose.yml reads every password it uses from deploy/nats/.env.example's variables,
/// passes the inbox prefix the shipped permissions require, and its health check is a `crm
/// health` invocation the binary accepts (exit 1 "unhealthy", not a usage error).
#[test]
fn the_compose_file_matches_the_env_example_and_the_cli() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let example = std::fs::read_to_string(root.join("deploy/nats/.env.example")).unwrap();
    let mut used: Vec<&str> = compose
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split([':', '}']).next())
        .collect();
    used.sort_unstable();
    used.dedup();
    assert_eq!(used.len(), 6, "{used:?}");
    for variable in used {
        assert!(
            example
                .lines()
                .any(|l| l.starts_with(&format!("{variable}="))),
            "{variable} is not in deploy/nats/.env.example"
        );
    }
    assert!(compose.contains("CRM_NATS_INBOX_PREFIX: _INBOX_crm"));
    assert!(!compose.contains("password:"), "no literal passwords");

    // The health check's arguments, against a NATS server nobody serves.
    let nats = NatsServer::start().unwrap();
    let output = Process::new(env!("CARGO_BIN_EXE_crm"))
        .args([
            "health",
            "--nats-url",
            &nats.url(),
            "--nats-inbox-prefix",
            "_INBOX_operator",
            "--wait-ms",
            "300",
            "--lag-max-s",
            "60",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "unhealthy: no crm instance answered"
    );
    let healthcheck = compose.split("healthcheck:").nth(1).unwrap();
    for argument in ["health", "--nats-inbox-prefix", "--wait-ms", "--lag-max-s"] {
        assert!(healthcheck.contains(argument), "{argument}");
    }
}
