//! Tenants over a three-node NATS cluster (docs/SCALING.md): one `crm serve --tenant T` per
//! tenant, NATS accounts rendered by `crm nats-accounts`, event streams with three replicas.
//! Each tenant's callers use today's subjects through their own account and reach only their
//! tenant; a NATS node or one tenant's `crm serve` may die without loss or harm to the others;
//! read replicas of one model answer consistently.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command as Process;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crm_testkit::{ChildProcess, NatsCluster, NatsClusterOptions, Op, TempDataDir, WatchedClient};
use serde_json::{json, Value};
use uuid::Uuid;

mod support;
use support::{gather, send_until_answered};

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
/// How long a bounded wait in these tests may take before it fails the test.
const WAIT_MAX: Duration = Duration::from_secs(60);

fn crm(args: &[&str]) -> Process {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("CRM_NATS_URL")
        .env_remove("NATS_URL")
        .env_remove("CRM_SUBJECT_PREFIX")
        .env_remove("CRM_TENANT");
    command
}

fn run_ok(args: &[&str]) -> String {
    let output = crm(args).output().unwrap();
    assert!(
        output.status.success(),
        "crm {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A password for a variable: letters and digits only, as nats-server reads them.
fn password(var: &str) -> String {
    format!("pw{}", var.to_ascii_lowercase().replace('_', ""))
}

/// The cluster with the accounts `crm nats-accounts` renders for [`TENANTS`].
struct Platform {
    cluster: NatsCluster,
}

impl Platform {
    fn start(read_replicas: u32) -> Platform {
        let replicas = read_replicas.to_string();
        let mut args = vec!["nats-accounts", "--read-replicas", &replicas];
        for tenant in TENANTS {
            args.extend(["--tenant", tenant]);
        }
        let config = run_ok(&args);
        args.push("--env");
        let vars = run_ok(&args);
        let mut options = NatsClusterOptions::with_config(config);
        for line in vars.lines() {
            let var = line.trim_end_matches('=');
            options = options.with_env(var, password(var));
        }
        Platform {
            cluster: NatsCluster::start(options).unwrap(),
        }
    }

    /// Every node's URL with `user`'s credentials, comma separated (what `--nats-url` takes).
    fn urls_as(&self, user: &str, var: &str) -> String {
        self.cluster
            .url_list()
            .iter()
            .map(|url| url.replace("nats://", &format!("nats://{user}:{}@", password(var))))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `crm serve --tenant T` as T's `crm` user, events on three replicas.
    fn serve(&self, tenant: &str, dir: &Path, projections: &str) -> ChildProcess {
        let user = format!("crm-{tenant}");
        let var = format!("CRM_NATS_PASSWORD_CRM_{}", tenant.to_ascii_uppercase());
        let mut command = crm(&[
            "serve",
            "--tenant",
            tenant,
            "--events-replicas",
            "3",
            "--projections",
            projections,
            "--nats-inbox-prefix",
            &format!("_INBOX_{user}"),
        ]);
        command
            .arg("--data-dir")
            .arg(dir)
            .arg("--nats-url")
            .arg(self.urls_as(&user, &var));
        start(command, "crm serve ready")
    }

    /// [`Platform::serve`] for every tenant, each in a data directory of its own.
    fn serve_every_tenant(&self, projections: &str) -> (Vec<TempDataDir>, Vec<ChildProcess>) {
        let dirs: Vec<TempDataDir> = TENANTS
            .iter()
            .map(|_| TempDataDir::new().unwrap())
            .collect();
        let serves = TENANTS
            .iter()
            .zip(&dirs)
            .map(|(tenant, dir)| self.serve(tenant, dir.path(), projections))
            .collect();
        (dirs, serves)
    }

    /// `crm project <model> --tenant T --replica N` as T's projector user.
    fn project(&self, tenant: &str, model: &str, replica: u32, dir: &Path) -> ChildProcess {
        let user = format!("crm-projector-{tenant}");
        let var = format!(
            "CRM_NATS_PASSWORD_CRM_PROJECTOR_{}",
            tenant.to_ascii_uppercase()
        );
        let mut command = crm(&[
            "project",
            model,
            "--tenant",
            tenant,
            "--replica",
            &replica.to_string(),
            "--nats-inbox-prefix",
            &format!("_INBOX_{user}"),
        ]);
        command
            .arg("--data-dir")
            .arg(dir)
            .arg("--nats-url")
            .arg(self.urls_as(&user, &var));
        start(command, &format!("crm project {model} ready"))
    }

    /// A client of `user` (a tenant's caller `<tenant>-<role>`, or the platform `operator`).
    async fn caller(&self, user: &str) -> Caller {
        // `acme-sales-app` -> CRM_NATS_PASSWORD_ACME_SALES_APP, `crm-acme` ->
        // CRM_NATS_PASSWORD_CRM_ACME, `operator` -> CRM_NATS_PASSWORD_OPERATOR.
        let var = format!(
            "CRM_NATS_PASSWORD_{}",
            user.to_ascii_uppercase().replace('-', "_")
        );
        let options = crm_testkit::test_connect_options()
            .user_and_password(user.to_owned(), password(&var))
            .custom_inbox_prefix(format!("_INBOX_{user}"));
        Caller(WatchedClient::connect(user, options, self.cluster.url_list()).await)
    }
}

fn start(command: Process, ready: &str) -> ChildProcess {
    let mut child = ChildProcess::spawn(command).expect("spawn crm");
    if let Err(e) = child.wait_for_line(ready, WAIT_MAX) {
        panic!("not ready: {e}\n{}", child.output_tail());
    }
    child
}

/// A tenant's (or the platform's) user, with the server's refusals of what it sends.
struct Caller(WatchedClient);

impl Caller {
    fn user(&self) -> &str {
        &self.0.user
    }

    fn client(&self) -> &async_nats::Client {
        &self.0.client
    }

    async fn request(&self, subject: &str, body: Value) -> Value {
        let reply = tokio::time::timeout(
            WAIT_MAX,
            self.client()
                .request(subject.to_owned(), body.to_string().into()),
        )
        .await
        .unwrap_or_else(|_| panic!("{}: {subject} not answered", self.user()))
        .unwrap_or_else(|e| panic!("{}: {subject} not answered: {e}", self.user()));
        serde_json::from_slice(&reply.payload).unwrap()
    }

    async fn create_lead(&self, lead_id: Uuid) -> Value {
        let reply = send_until_answered(
            self.client(),
            "lead.CreateLead",
            Uuid::now_v7(),
            &json!({"lead_id": lead_id, "name": "L", "source": "web"}),
        )
        .await;
        assert_eq!(reply["status"], "accepted", "{}: {reply}", self.user());
        reply
    }

    /// Every event of this caller's tenant, through `crm.log.read`.
    async fn log(&self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let page = self
                .request(
                    "crm.log.read",
                    json!({"from": events.len() + 1, "max": 1000, "format": "json"}),
                )
                .await;
            let batch = page["events"].as_array().unwrap().clone();
            if batch.is_empty() {
                return events;
            }
            events.extend(batch);
        }
    }
}

fn lead(tenant: usize, n: usize) -> Uuid {
    Uuid::from_u128(((tenant as u128 + 1) << 64) | (n as u128 + 1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_by_their_accounts_and_survive_each_others_crash() {
    let platform = Platform::start(2);
    let (dirs, mut serves) = platform.serve_every_tenant("customers,funnel");
    let (kpi_dir_1, kpi_dir_2) = (TempDataDir::new().unwrap(), TempDataDir::new().unwrap());
    let mut replica_1 = platform.project("acme", "kpis", 1, kpi_dir_1.path());
    let mut replica_2 = platform.project("acme", "kpis", 2, kpi_dir_2.path());

    // Each tenant's sales app creates its own number of leads on today's subjects.
    let mut sales = Vec::new();
    for (t, tenant) in TENANTS.iter().enumerate() {
        let caller = platform.caller(&format!("{tenant}-sales-app")).await;
        for n in 0..(t + 2) {
            caller.create_lead(lead(t, n)).await;
        }
        sales.push(caller);
    }
    // Each analyst sees exactly its tenant's events; a lead id of another tenant is unknown.
    for (t, tenant) in TENANTS.iter().enumerate() {
        let analyst = platform.caller(&format!("{tenant}-analyst")).await;
        let events = analyst.log().await;
        let leads: Vec<Value> = events
            .iter()
            .map(|e| e["event"]["data"]["lead_id"].clone())
            .collect();
        let expected: Vec<Value> = (0..(t + 2)).map(|n| json!(lead(t, n))).collect();
        assert_eq!(
            leads, expected,
            "{tenant}'s log holds its leads only: {events:?}"
        );
        let head = analyst.request("crm.log.head", json!({})).await;
        assert_eq!(head["head"], json!(t + 2), "{tenant}: {head}");
    }
    // The same lead id in two tenants is two leads: acme's first lead is new to globex.
    sales[1].create_lead(lead(0, 0)).await;

    // No caller reaches another tenant: not its subjects, not its inboxes, not the CRM
    // account's tenant subjects; nor a command its own role may not send.
    let mut acme_sales = platform.caller("acme-sales-app").await;
    for subject in [
        "crm.t.globex.cmd.lead.CreateLead",
        "crm.t.acme.cmd.lead.CreateLead",
        "crm.cmd.ticket.OpenTicket",
    ] {
        acme_sales.0.assert_refused(Op::Pub, subject).await;
    }
    for subject in [
        "_INBOX_globex-sales-app.>",
        "_INBOX_crm-globex.>",
        "crm.t.globex.>",
        "crm.cmd.>",
    ] {
        acme_sales.0.assert_refused(Op::Sub, subject).await;
    }
    let mut globex_support = platform.caller("globex-support-desk").await;
    globex_support
        .0
        .assert_refused(Op::Pub, "crm.cmd.lead.CreateLead")
        .await;

    // Two read replicas of acme's KPIs converge and answer `min_position` consistently,
    // whichever replies.
    let acme_head = sales[0].create_lead(lead(0, 100)).await["last_position"]
        .as_u64()
        .unwrap();
    let mut answers = Vec::new();
    for _ in 0..24 {
        let answer = sales[0]
            .request(
                "crm.query.kpi.get",
                json!({"min_position": acme_head, "timeout_ms": 20000}),
            )
            .await;
        assert!(answer["position"].as_u64() >= Some(acme_head), "{answer}");
        answers.push(answer);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "replicas answer alike: {answers:?}"
    );
    let operator = platform.caller("operator").await;
    let mut served = BTreeMap::new();
    for stats in gather(operator.client(), "$SRV.STATS.crm", Duration::from_secs(2)).await {
        let kpi_requests = stats["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["subject"] == "crm.t.acme.query.kpi.get")
            .map(|e| e["num_requests"].as_u64().unwrap())
            .sum::<u64>();
        if kpi_requests > 0 {
            served.insert(stats["id"].as_str().unwrap().to_owned(), kpi_requests);
        }
    }
    assert_eq!(
        served.len(),
        2,
        "both replicas answered some of the 24 queries: {served:?}"
    );
    assert_eq!(served.values().sum::<u64>(), 24);
    // The platform operator's `crm status` sees every tenant's instances, each with its prefix.
    let status = run_ok(&[
        "status",
        "--json",
        "--nats-url",
        &platform.urls_as("operator", "CRM_NATS_PASSWORD_OPERATOR"),
        "--nats-inbox-prefix",
        "_INBOX_operator",
    ]);
    let status: Value = serde_json::from_str(&status).unwrap();
    let mut prefixes: Vec<(String, String)> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|seen| {
            let status = &seen["status"];
            (
                status["subject_prefix"].as_str().unwrap().to_owned(),
                status["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    prefixes.sort();
    let expected: Vec<(String, String)> = [
        ("crm.t.acme", "project"),
        ("crm.t.acme", "project"),
        ("crm.t.acme", "serve"),
        ("crm.t.globex", "serve"),
        ("crm.t.initech", "serve"),
    ]
    .iter()
    .map(|(p, r)| (p.to_string(), r.to_string()))
    .collect();
    assert_eq!(prefixes, expected, "{status}");
    let operator_url = platform.urls_as("operator", "CRM_NATS_PASSWORD_OPERATOR");
    let as_operator = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--nats-url",
            &operator_url,
            "--nats-inbox-prefix",
            "_INBOX_operator",
        ]);
        crm(&all).output().unwrap()
    };
    let acme_only = as_operator(&["status", "--json", "--tenant", "acme"]);
    let acme_only: Value = serde_json::from_slice(&acme_only.stdout).unwrap();
    assert_eq!(
        acme_only["instances"].as_array().unwrap().len(),
        3,
        "{acme_only}"
    );

    // One replica gone: the other answers alone.
    replica_1.kill_9().unwrap();
    let answer = sales[0]
        .request(
            "crm.query.kpi.get",
            json!({"min_position": acme_head, "timeout_ms": 20000}),
        )
        .await;
    assert_eq!(answer, answers[0]);

    // acme's crm serve dies: globex and initech answer every command on the first attempt.
    serves[0].kill_9().unwrap();
    for (t, caller) in sales.iter().enumerate().skip(1) {
        for n in 0..10 {
            let reply = caller
                .request_command_once(lead(t, 200 + n))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", caller.user()));
            assert_eq!(reply["status"], "accepted", "{reply}");
        }
    }
    // Health is per tenant: acme has lost its log; globex is healthy.
    let globex_health = as_operator(&["health", "--tenant", "globex"]);
    assert!(
        globex_health.status.success(),
        "{}",
        String::from_utf8_lossy(&globex_health.stdout)
    );
    // ... and acme's callers get no answer at all until it is back, then their retries land.
    assert!(sales[0].request_command_once(lead(0, 300)).await.is_err());
    serves[0] = platform.serve("acme", dirs[0].path(), "customers,funnel");
    sales[0].create_lead(lead(0, 300)).await;

    replica_2.terminate(Duration::from_secs(10)).unwrap();
    for serve in &mut serves {
        serve.terminate(Duration::from_secs(20)).unwrap();
    }
}

impl Caller {
    /// One attempt of a CreateLead, no retry: a reply or why there was none.
    async fn request_command_once(&self, lead_id: Uuid) -> Result<Value, String> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Crm-Command-Id", Uuid::now_v7().to_string().as_str());
        let body = json!({"lead_id": lead_id, "name": "L", "source": "web"});
        let request = self.client().request_with_headers(
            "crm.cmd.lead.CreateLead".to_owned(),
            headers,
            body.to_string().into(),
        );
        match tokio::time::timeout(Duration::from_secs(3), request).await {
            Ok(Ok(reply)) => serde_json::from_slice(&reply.payload).map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no reply within 3 s".to_owned()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_nats_node_under_load_loses_and_duplicates_nothing() {
    let mut platform = Platform::start(1);
    let (dirs, mut serves) = platform.serve_every_tenant("customers,kpis");

    // Every tenant takes commands with retries (one fixed id per command) while a node dies.
    let leads_per_tenant = 150;
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (t, tenant) in TENANTS.iter().enumerate() {
        let caller = platform.caller(&format!("{tenant}-sales-app")).await;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut accepted = BTreeMap::new();
            for n in 0..leads_per_tenant {
                let id = Uuid::now_v7();
                let body = json!({"lead_id": lead(t, n), "name": "L", "source": "web"});
                let reply =
                    send_until_answered(caller.client(), "lead.CreateLead", id, &body).await;
                assert_eq!(reply["status"], "accepted", "{reply}");
                accepted.insert(id, reply["first_position"].as_u64().unwrap());
                done.fetch_add(1, Ordering::SeqCst);
            }
            accepted
        }));
    }
    let total = TENANTS.len() * leads_per_tenant;
    let wait_for = |share: usize| {
        let done = done.clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT_MAX;
            while done.load(Ordering::SeqCst) < total * share / 100 {
                assert!(tokio::time::Instant::now() < deadline, "the load stalled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for(25).await;
    platform.cluster.kill(1).unwrap();
    wait_for(60).await;
    platform.cluster.restart(1).unwrap();
    let mut accepted = Vec::new();
    for task in tasks {
        accepted.push(
            tokio::time::timeout(Duration::from_secs(180), task)
                .await
                .expect("load finishes")
                .unwrap(),
        );
    }

    for (t, tenant) in TENANTS.iter().enumerate() {
        // Every accepted command is in the tenant's log once, where its reply said.
        let analyst = platform.caller(&format!("{tenant}-analyst")).await;
        let events = analyst.log().await;
        assert_eq!(
            events.len(),
            leads_per_tenant,
            "{tenant}: one event per command"
        );
        let by_command: BTreeMap<Uuid, u64> = events
            .iter()
            .map(|e| {
                (
                    e["command_id"].as_str().unwrap().parse().unwrap(),
                    e["position"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            by_command, accepted[t],
            "{tenant}: every command once, as replied"
        );

        // The tenant's replicated stream converges to its log, every event once, in order.
        let crm_user = platform.caller(&format!("crm-{tenant}")).await;
        let js = async_nats::jetstream::new(crm_user.client().clone());
        let stream_name = format!("CRM_EVENTS_{tenant}");
        let stream = retried("get the stream", || js.get_stream(&stream_name)).await;
        let deadline = tokio::time::Instant::now() + WAIT_MAX;
        loop {
            let info = retried("stream info", || stream.get_info()).await;
            if info.state.messages == leads_per_tenant as u64 {
                assert_eq!(info.config.num_replicas, 3, "{tenant}: three replicas");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{tenant}: the stream holds {} of {leads_per_tenant}",
                info.state.messages
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (sequence, event) in (1..).zip(&events) {
            let message = retried("get a message", || stream.get_raw_message(sequence)).await;
            let position = message.headers.get("Crm-Position").unwrap().as_str();
            assert_eq!(
                position,
                event["position"].to_string(),
                "{tenant}: {sequence}"
            );
        }
    }

    // The read models equal a rebuild from each log, once they have caught up with it.
    for tenant in TENANTS {
        let sales = platform.caller(&format!("{tenant}-sales-app")).await;
        for query in ["crm.query.kpi.get", "crm.query.customer.list"] {
            let answer = sales
                .request(
                    query,
                    json!({"min_position": leads_per_tenant, "timeout_ms": 30000}),
                )
                .await;
            assert!(
                answer["position"].as_u64() >= Some(leads_per_tenant as u64),
                "{tenant} {query}: {answer}"
            );
        }
    }
    for (serve, dir) in serves.iter_mut().zip(&dirs) {
        serve.terminate(Duration::from_secs(20)).unwrap();
        for name in ["customers", "kpis"] {
            assert_eq!(
                support::live_hash(dir.path(), name),
                support::rebuild_hash(dir.path(), name),
                "{name} in {}",
                dir.path().display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_stream_is_moved_to_the_replicas_asked_for() {
    let cluster = NatsCluster::start(NatsClusterOptions::default()).unwrap();
    let dir = TempDataDir::new().unwrap();
    let serve = |replicas: &str| {
        let mut command = crm(&[
            "serve",
            "--tenant",
            "acme",
            "--projections",
            "",
            "--events-replicas",
            replicas,
            "--nats-url",
            &cluster.urls(),
        ]);
        command.arg("--data-dir").arg(dir.path());
        start(command, "crm serve ready")
    };
    let client = cluster.connect(0).await;
    let js = async_nats::jetstream::new(client.clone());
    let stream_state = |want_replicas: usize| {
        let js = js.clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT_MAX;
            loop {
                let info = match js.get_stream("CRM_EVENTS_acme").await {
                    Ok(stream) => stream.get_info().await.ok(),
                    Err(_) => None,
                };
                if let Some(info) = info {
                    let current = info
                        .cluster
                        .as_ref()
                        .map(|c| c.replicas.iter().filter(|r| r.current).count() + 1)
                        .unwrap_or(1);
                    if info.config.num_replicas == want_replicas
                        && current == want_replicas
                        && info.state.messages == 1
                    {
                        return;
                    }
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the stream did not reach {want_replicas} current replicas with its event"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    let mut first = serve("1");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Crm-Command-Id", Uuid::now_v7().to_string().as_str());
    let body = json!({"lead_id": Uuid::now_v7(), "name": "L", "source": "web"});
    let reply = client
        .request_with_headers(
            "crm.t.acme.cmd.lead.CreateLead",
            headers,
            body.to_string().into(),
        )
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["status"], "accepted", "{reply}");
    stream_state(1).await;
    first.terminate(Duration::from_secs(20)).unwrap();

    let mut second = serve("3");
    stream_state(3).await;
    second.terminate(Duration::from_secs(20)).unwrap();
}

/// `attempt` until it succeeds: a JetStream request may time out while a restarted node
/// rejoins or a stream elects a leader. Fails the test after [`WAIT_MAX`].
async fn retried<T, E, F, Fut>(what: &str, mut attempt: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + WAIT_MAX;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: still failing after {WAIT_MAX:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn three_replicas_on_a_single_server_stop_serve_with_the_reason() {
    let nats = crm_testkit::NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let mut command = crm(&[
        "serve",
        "--projections",
        "",
        "--events-replicas",
        "3",
        "--nats-url",
        &nats.url(),
    ]);
    command.arg("--data-dir").arg(dir.path());
    let mut serve = ChildProcess::spawn(command).unwrap();
    let status = serve
        .wait_for_exit(WAIT_MAX)
        .unwrap_or_else(|e| panic!("crm serve kept running: {e}\n{}", serve.output_tail()));
    assert!(!status.success());
    let stderr = serve.stderr().unwrap();
    assert!(
        stderr.contains("3 replicas need a JetStream cluster of at least 3 servers"),
        "{stderr}"
    );
}
