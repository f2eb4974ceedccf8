//! `crm serve --metrics-addr`: Prometheus metrics scraped over plain HTTP from the real binary,
//! before and after real commands and a query; and without the option, nothing listens.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use crm_testkit::{free_loopback_port, ChildProcess, NatsServer, TempDataDir};
use serde_json::{json, Value};
use uuid::Uuid;

mod support;
use support::send_until_answered;

/// How long the test waits for the sampled gauges (refreshed once a second) to show the log.
const GAUGE_WAIT_MAX: Duration = Duration::from_secs(60);

fn serve(data_dir: &Path, nats_url: &str, metrics_addr: Option<&str>) -> ChildProcess {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command
        .args(["serve", "--projections", "kpis", "--data-dir"])
        .arg(data_dir)
        .arg("--nats-url")
        .arg(nats_url)
        .env("RUST_LOG", "info")
        .env_remove("CRM_METRICS_ADDR");
    if let Some(addr) = metrics_addr {
        command.arg("--metrics-addr").arg(addr);
    }
    let mut child = ChildProcess::spawn(command).expect("spawn crm serve");
    if let Err(e) = child.wait_for_line("crm serve ready", Duration::from_secs(30)) {
        panic!("crm serve not ready: {e}\n{}", child.output_tail());
    }
    child
}

/// One scrape: every sample as (metric name, labels) -> value, and the `# TYPE` lines.
#[derive(Debug, Default)]
struct Scrape {
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    /// The sum of the samples of `name` whose labels include `labels` (0 when none).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| *v)
            .sum()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    // Our label values never hold `,` or `"`, so a plain split is enough here.
    text.split(',')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((
                key.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

fn parse(body: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                scrape.types.insert(name.to_owned(), kind.to_owned());
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
            None => (series, BTreeMap::new()),
        };
        let value: f64 = value.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
        scrape.samples.insert((name.to_owned(), labels), value);
    }
    scrape
}

/// GET /metrics over HTTP/1.0 (so the body is neither chunked nor kept alive).
fn scrape_blocking(addr: &str) -> Scrape {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP head and body");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    parse(body)
}

async fn scrape(addr: &str) -> Scrape {
    let addr = addr.to_owned();
    tokio::task::spawn_blocking(move || scrape_blocking(&addr))
        .await
        .unwrap()
}

/// The TCP ports process `pid` listens on (Linux: its socket inodes in /proc/<pid>/fd,
/// matched with the LISTEN rows of /proc/net/tcp and tcp6).
fn listening_ports(pid: u32) -> Vec<u16> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
            {
                inodes.insert(inode.to_owned());
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            // local_address is field 1 (`ADDR:PORT` in hex), st field 3 (0A: LISTEN), inode 9.
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                if let Some((_, port)) = fields[1].rsplit_once(':') {
                    ports.push(u16::from_str_radix(port, 16).unwrap());
                }
            }
        }
    }
    ports
}

async fn command(client: &async_nats::Client, subject: &str, body: Value) -> Value {
    send_until_answered(client, subject, Uuid::now_v7(), &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_command_request_log_and_read_model_metrics() {
    let nats = NatsServer::start().expect("nats-server");
    let dir = TempDataDir::new().unwrap();
    let addr = format!("127.0.0.1:{}", free_loopback_port());
    let mut service = serve(dir.path(), &nats.url(), Some(&addr));
    assert!(
        service.stderr().unwrap().contains("metrics listening"),
        "{}",
        service.output_tail()
    );
    let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(listening_ports(service.pid()), vec![port]);
    let client = nats.connect().await;

    let before = scrape(&addr).await;

    // Four accepted commands (three leads, one score), then one refusal.
    let leads = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    let mut events = 0;
    for lead in leads {
        let reply = command(
            &client,
            "lead.CreateLead",
            json!({"lead_id": lead, "name": "Ada Lovelace", "email": "ada@example.com", "source": "web"}),
        )
        .await;
        assert_eq!(reply["status"], "accepted", "{reply}");
        let (first, last) = (
            reply["first_position"].as_u64().unwrap(),
            reply["last_position"].as_u64().unwrap(),
        );
        events += last - first + 1;
    }
    let reply = command(
        &client,
        "lead.ScoreLead",
        json!({"lead_id": leads[0], "score": 42}),
    )
    .await;
    assert_eq!(reply["status"], "accepted", "{reply}");
    events +=
        reply["last_position"].as_u64().unwrap() - reply["first_position"].as_u64().unwrap() + 1;
    let last_position = reply["last_position"].as_u64().unwrap();
    let refused = command(
        &client,
        "lead.CreateLead",
        json!({"lead_id": leads[1], "name": "Ada Lovelace", "email": "ada@example.com", "source": "web"}),
    )
    .await;
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert_eq!(refused["code"], "already_exists", "{refused}");

    // One query, answered once the model has the last write.
    let reply = client
        .request(
            "crm.query.kpi.get",
            serde_json::to_vec(&json!({"min_position": last_position, "timeout_ms": 20_000}))
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert!(reply["kpis"].is_object(), "{reply}");

    let after = scrape(&addr).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let create = [("command", "CreateLead"), ("outcome", "accepted")];
    let score = [("command", "ScoreLead"), ("outcome", "accepted")];
    let rejected = [("command", "CreateLead"), ("outcome", "rejected")];
    assert_eq!(delta("crm_commands_total", &create), 3.0);
    assert_eq!(delta("crm_commands_total", &score), 1.0);
    assert_eq!(
        delta(
            "crm_commands_total",
            &[
                ("command", "CreateLead"),
                ("outcome", "rejected"),
                ("code", "already_exists")
            ]
        ),
        1.0
    );
    assert_eq!(delta("crm_commands_total", &[("outcome", "accepted")]), 4.0);
    assert_eq!(delta("crm_commands_total", &[("outcome", "rejected")]), 1.0);
    assert_eq!(delta("crm_command_duration_seconds_count", &create), 3.0);
    assert_eq!(delta("crm_command_duration_seconds_count", &score), 1.0);
    assert_eq!(delta("crm_command_duration_seconds_count", &rejected), 1.0);
    assert!(delta("crm_command_duration_seconds_sum", &create) > 0.0);
    // Every observation is in the +Inf bucket.
    assert_eq!(
        delta(
            "crm_command_duration_seconds_bucket",
            &[
                ("command", "CreateLead"),
                ("outcome", "accepted"),
                ("le", "+Inf")
            ]
        ),
        3.0
    );

    // The query: one request of its endpoint, one latency observation.
    let query = [("endpoint", "query.kpi.get")];
    assert_eq!(
        delta(
            "crm_requests_total",
            &[("endpoint", "query.kpi.get"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "crm_requests_total",
            &[("endpoint", "query.kpi.get"), ("outcome", "error")]
        ),
        0.0
    );
    assert_eq!(delta("crm_request_duration_seconds_count", &query), 1.0);

    // The log writer: one batch per command (they were sent one after another), each of one
    // append; the refusal never reached the log.
    assert_eq!(delta("crm_log_batch_appends_count", &[]), 4.0);
    assert_eq!(delta("crm_log_batch_appends_sum", &[]), 4.0);
    assert_eq!(delta("crm_log_batch_events_count", &[]), 4.0);
    assert_eq!(delta("crm_log_batch_events_sum", &[]), events as f64);
    assert_eq!(delta("crm_log_flush_duration_seconds_count", &[]), 4.0);

    for (name, kind) in [
        ("crm_commands_total", "counter"),
        ("crm_command_duration_seconds", "histogram"),
        ("crm_requests_total", "counter"),
        ("crm_request_duration_seconds", "histogram"),
        ("crm_log_batch_events", "histogram"),
        ("crm_log_batch_appends", "histogram"),
        ("crm_log_flush_duration_seconds", "histogram"),
    ] {
        assert_eq!(
            after.types.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
    }

    // The sampled gauges reach the log's last position.
    let read_model = [("read_model", "kpis")];
    let deadline = tokio::time::Instant::now() + GAUGE_WAIT_MAX;
    let gauges = loop {
        let now = scrape(&addr).await;
        let settled = now.value("crm_log_head_position", &[]) == last_position as f64
            && now.value("crm_tailer_published_position", &[]) == last_position as f64
            && now.value("crm_read_model_checkpoint_position", &read_model) == last_position as f64;
        if settled {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gauges did not reach position {last_position} within {GAUGE_WAIT_MAX:?}: {:?}",
            now.samples
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(gauges.value("crm_tailer_lag_events", &[]), 0.0);
    assert_eq!(gauges.value("crm_log_writable", &[]), 1.0);
    assert_eq!(gauges.value("crm_tailer_failed", &[]), 0.0);
    assert_eq!(gauges.value("crm_read_model_lag_events", &read_model), 0.0);
    assert_eq!(
        gauges.value(
            "crm_read_model_state",
            &[("read_model", "kpis"), ("state", "running")]
        ),
        1.0
    );
    assert_eq!(gauges.value("crm_read_model_state", &read_model), 1.0);
    assert_eq!(gauges.value("crm_read_model_rebuilding", &read_model), 0.0);
    assert_eq!(
        gauges.value("crm_read_model_rebuilds_completed_total", &read_model),
        0.0
    );
    assert_eq!(
        gauges
            .types
            .get("crm_log_head_position")
            .map(String::as_str),
        Some("gauge")
    );

    service.terminate(Duration::from_secs(20)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_addr_nothing_listens() {
    let nats = NatsServer::start().expect("nats-server");
    let dir = TempDataDir::new().unwrap();
    let mut service = serve(dir.path(), &nats.url(), None);
    let client = nats.connect().await;
    let reply = command(
        &client,
        "lead.CreateLead",
        json!({"lead_id": Uuid::now_v7(), "name": "Ada Lovelace", "email": "ada@example.com", "source": "web"}),
    )
    .await;
    assert_eq!(reply["status"], "accepted", "{reply}");
    assert_eq!(listening_ports(service.pid()), Vec::<u16>::new());
    assert!(
        !service.stderr().unwrap().contains("metrics listening"),
        "{}",
        service.output_tail()
    );
    service.terminate(Duration::from_secs(20)).unwrap();
}
