//! Tenants and replicated event streams (docs/SCALING.md), with the real `crm` binary.
//!
//! Part A, tenants: for each number of tenants N, one nats-server with the accounts `crm
//! nats-accounts` renders for `t1` … `tN`, one `crm serve --tenant tK --projections ''` per
//! tenant (as its user `crm-tK`), and a fixed number of commands in flight in all, split evenly
//! across the tenants, each tenant's share sent by one client of its `tK-sales-app` user on
//! today's subject `crm.cmd.lead.CreateLead` (a new lead and a fresh command id each). Reported:
//! aggregate commands/s next to one tenant's, latency, and CPU per command of the `crm serve`
//! processes, the nats-server and this client. Once per run, one `crm serve` without accounts
//! on a plain nats-server shows what the accounts' import mapping costs.
//!
//! Part B, R1 against R3: on a three-node cluster, `crm serve --tenant r1 --events-replicas 1`
//! and `crm serve --tenant r3 --events-replicas 3`, both with the KPIs read model, one at a
//! time (alternating which goes first from round to round), each offered the same fixed rate
//! (open loop: latency counts from the scheduled send, so queueing shows). Reported: the
//! command's reply latency and, on every Nth command, the time until the KPIs answer at the
//! reply's position (visibility: the events went through the stream); how long after each
//! start a first command took to become visible; and one acknowledged JetStream publish at a
//! time on an R1 and an R3 stream.
//!
//! Every process shares this machine's cores, so each measurement also reports the cores that
//! every other process of the machine took meanwhile (`/proc/stat` less the measured
//! processes): a busy machine shows there.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use async_nats::{Client, HeaderMap, Request};
use crm_domain::Aggregate;
use crm_testkit::{
    test_connect_options, ChildProcess, NatsCluster, NatsClusterOptions, NatsServer,
    NatsServerOptions,
};
use crm_wire::{CommandReply, Subjects, Tenant};
use futures::future::try_join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::commands::{closed_loop_latencies, Target};
use crate::cpu::ProcessCpu;
use crate::latency::Latencies;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The `crm` binary [default: `crm` beside this benchmark's binary].
    #[arg(long)]
    crm_bin: Option<PathBuf>,
    /// Numbers of tenants to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    tenants: Vec<usize>,
    /// Commands in flight in all, split evenly across the tenants.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Commands measured per number of tenants, split evenly across them (a tenth more warm
    /// up first).
    #[arg(long, default_value_t = 30_000)]
    requests: usize,
    /// Offered rate of the R1 and R3 runs, commands per second.
    #[arg(long, default_value_t = 1000)]
    rate_per_second: u64,
    /// Length of each of the R1 and R3 runs, in seconds (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    rate_seconds: u64,
    /// Probe visibility on every Nth command of the R1 and R3 runs.
    #[arg(long, default_value_t = 10)]
    probe_every: usize,
    /// Rounds of R1 and R3 runs (R1 first in odd rounds, R3 first in even ones).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Acknowledged JetStream publishes, one at a time, on each of an R1 and an R3 stream
    /// (0 leaves them out).
    #[arg(long, default_value_t = 2000)]
    publishes: usize,
    /// Leave out part A (tenants).
    #[arg(long)]
    no_tenants: bool,
    /// Leave out part B (R1 against R3).
    #[arg(long)]
    no_replicas: bool,
}

/// How long a `crm serve` may take to print its ready line.
const READY_WAIT_MAX: Duration = Duration::from_secs(60);
/// How long a `crm serve` may take to stop after SIGTERM (it publishes the log's tail first).
const STOP_WAIT_MAX: Duration = Duration::from_secs(30);
/// How long a visibility probe lets the KPIs wait for the position (`timeout_ms`).
const VISIBILITY_WAIT_MS: u64 = 10_000;
/// How long the first command after a start may take to become visible (the longest wait a
/// query may ask for): the read model's consumer is set up meanwhile.
const FIRST_VISIBLE_WAIT_MS: u64 = crm_wire::query::QUERY_TIMEOUT_MS_MAX;
/// Bytes of each message of the publish measurement.
const PUBLISH_BYTES: usize = 200;

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::block_on(run_async(args))?
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let crm_bin = crate::crm_bin(args.crm_bin.as_deref())?;
    anyhow::ensure!(
        args.tenants.iter().all(|&n| n >= 1 && n <= args.in_flight),
        "every number of tenants must be between 1 and --in-flight ({})",
        args.in_flight
    );
    anyhow::ensure!(
        args.rate_per_second >= 1 && args.probe_every >= 1,
        "--rate-per-second and --probe-every must be at least 1"
    );
    let load_before = load_average();
    let tenant_rows = if args.no_tenants {
        Vec::new()
    } else {
        tenants(&args, &crm_bin).await?
    };
    let replica_figures = if args.no_replicas {
        None
    } else {
        Some(replicas(&args, &crm_bin).await?)
    };
    println!(
        "machine: {} cores; {}; load average {} before the run, {} after (the benchmark's own \
         processes count in it); every process on loopback: nats-server(s), each `crm serve` \
         and this benchmark's clients",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        nats_server_version(),
        load_before,
        load_average()
    );
    if !tenant_rows.is_empty() {
        print_tenants(&args, &tenant_rows);
    }
    if let Some(figures) = &replica_figures {
        print_replicas(&args, figures);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Part A: tenants on one nats-server.

/// One measured configuration of part A.
struct TenantRow {
    /// 0 for one `crm serve` without accounts.
    tenants: usize,
    in_flight_each: usize,
    per_second: f64,
    p50_us: u64,
    p99_us: u64,
    /// Commands/s of the slowest and the fastest tenant, each over its own run.
    slowest: f64,
    fastest: f64,
    /// User + system CPU per measured command.
    serve_cpu_us: f64,
    nats_cpu_us: f64,
    client_cpu_us: f64,
    /// Cores every other process of the machine took meanwhile.
    others_cores: f64,
}

impl TenantRow {
    fn cpu_us(&self) -> f64 {
        self.serve_cpu_us + self.nats_cpu_us + self.client_cpu_us
    }
}

/// One configuration running: the server, each tenant's `crm serve` and client. Fields drop
/// in order: the `crm serve` processes are killed before the server, the data directories
/// removed last.
struct Platform {
    /// 0 for one `crm serve` without accounts.
    tenants: usize,
    serves: Vec<ChildProcess>,
    clients: Vec<Client>,
    nats: NatsServer,
    /// The `crm serve` data directories: only held, to be removed last.
    _dirs: Vec<tempfile::TempDir>,
}

async fn tenants(args: &Args, crm_bin: &Path) -> anyhow::Result<Vec<TenantRow>> {
    let mut rows = Vec::new();
    let configurations = std::iter::once(None).chain(args.tenants.iter().copied().map(Some));
    for tenants in configurations {
        let mut platform = match tenants {
            None => Platform::without_accounts(crm_bin).await?,
            Some(n) => Platform::with_accounts(crm_bin, n).await?,
        };
        let row = platform.measure(args).await?;
        eprintln!(
            "{}: {:.0} commands/s, p50 {} us, p99 {} us, CPU {:.1} us per command",
            describe(row.tenants),
            row.per_second,
            row.p50_us,
            row.p99_us,
            row.cpu_us()
        );
        platform.stop()?;
        rows.push(row);
    }
    Ok(rows)
}

fn describe(tenants: usize) -> String {
    match tenants {
        0 => "1 crm serve, no accounts".to_owned(),
        1 => "1 tenant through accounts".to_owned(),
        n => format!("{n} tenants through accounts"),
    }
}

impl Platform {
    /// A plain nats-server and one `crm serve` on the default subjects.
    async fn without_accounts(crm_bin: &Path) -> anyhow::Result<Platform> {
        let nats = NatsServer::start().context("starting nats-server")?;
        let dir = tempfile::tempdir()?;
        let serve = spawn_serve(
            crm_bin,
            &["--projections", "", "--nats-url", &nats.url()],
            dir.path(),
        )?;
        let mut platform = Platform {
            tenants: 0,
            serves: vec![serve],
            clients: Vec::new(),
            nats,
            _dirs: vec![dir],
        };
        platform.wait_until_ready()?;
        let client = test_connect_options()
            .connect(platform.nats.url())
            .await
            .context("connecting the client")?;
        platform.clients.push(client);
        Ok(platform)
    }

    /// A nats-server with the accounts of `t1` … `tN`, one `crm serve` per tenant as its `crm`
    /// user, one client per tenant as its sales app.
    async fn with_accounts(crm_bin: &Path, n: usize) -> anyhow::Result<Platform> {
        let names: Vec<String> = (1..=n).map(|k| format!("t{k}")).collect();
        let mut render = vec!["nats-accounts".to_owned()];
        for name in &names {
            render.extend(["--tenant".to_owned(), name.clone()]);
        }
        let config = crm_output(crm_bin, &render)?;
        render.push("--env".to_owned());
        let vars = crm_output(crm_bin, &render)?;
        let mut options = NatsServerOptions::with_config(config);
        for var in vars.lines().map(|line| line.trim_end_matches('=')) {
            options = options.with_env(var, password(var));
        }
        let nats = NatsServer::start_with(options).context("starting nats-server with accounts")?;
        let dirs = names
            .iter()
            .map(|_| tempfile::tempdir())
            .collect::<Result<Vec<_>, _>>()?;
        let mut serves = Vec::new();
        for (name, dir) in names.iter().zip(&dirs) {
            let user = format!("crm-{name}");
            let inbox = format!("_INBOX_{user}");
            serves.push(spawn_serve(
                crm_bin,
                &[
                    "--tenant",
                    name,
                    "--projections",
                    "",
                    "--nats-inbox-prefix",
                    &inbox,
                    "--nats-url",
                    &url_as(&nats.url(), &user, &vars)?,
                ],
                dir.path(),
            )?);
        }
        let mut platform = Platform {
            tenants: n,
            serves,
            clients: Vec::new(),
            nats,
            _dirs: dirs,
        };
        platform.wait_until_ready()?;
        for name in &names {
            let user = format!("{name}-sales-app");
            let client = test_connect_options()
                .user_and_password(user.clone(), password_of(&user, &vars)?)
                .custom_inbox_prefix(format!("_INBOX_{user}"))
                .connect(platform.nats.url())
                .await
                .with_context(|| format!("connecting as {user}"))?;
            platform.clients.push(client);
        }
        Ok(platform)
    }

    /// Waits for every `crm serve`'s ready line (they start at once).
    fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        for serve in &mut self.serves {
            if let Err(e) = serve.wait_for_line("crm serve ready", READY_WAIT_MAX) {
                bail!("crm serve not ready: {e}\n{}", serve.output_tail());
            }
        }
        Ok(())
    }

    /// A warm-up, then the measured commands with the CPU every process spent on them.
    async fn measure(&mut self, args: &Args) -> anyhow::Result<TenantRow> {
        self.load(args.in_flight, args.requests / 10).await?;
        let serve_pids: Vec<u32> = self.serves.iter().map(ChildProcess::pid).collect();
        let nats_pid = self.nats.pid().context("nats-server is not running")?;
        let groups: [&[u32]; 3] = [&serve_pids, &[nats_pid], &[std::process::id()]];
        let before = ProcessCpu::take(&groups)?;
        let started = Instant::now();
        let per_tenant = self.load(args.in_flight, args.requests).await?;
        let elapsed = started.elapsed();
        let after = ProcessCpu::take(&groups)?;
        for serve in &mut self.serves {
            anyhow::ensure!(
                serve.is_running(),
                "a crm serve ended during the run:\n{}",
                serve.output_tail()
            );
        }
        let cpu = before.per_unit(&after, args.requests);
        let rates: Vec<f64> = per_tenant
            .iter()
            .map(|(latencies, elapsed)| latencies.len() as f64 / elapsed.as_secs_f64())
            .collect();
        let latencies = Latencies::new(
            per_tenant
                .into_iter()
                .flat_map(|(latencies, _)| latencies)
                .collect(),
        );
        Ok(TenantRow {
            tenants: self.tenants,
            in_flight_each: args.in_flight / self.clients.len(),
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50_us: latencies.at(0.50),
            p99_us: latencies.at(0.99),
            slowest: rates.iter().copied().fold(f64::INFINITY, f64::min),
            fastest: rates.iter().copied().fold(0.0, f64::max),
            serve_cpu_us: cpu[0],
            nats_cpu_us: cpu[1],
            client_cpu_us: cpu[2],
            others_cores: before.others_cores(&after),
        })
    }

    /// `total` CreateLead commands from `in_flight` workers, split evenly across the clients,
    /// all at once: each tenant's latencies and how long its share took.
    async fn load(
        &self,
        in_flight: usize,
        total: usize,
    ) -> anyhow::Result<Vec<(Vec<u64>, Duration)>> {
        let n = self.clients.len();
        try_join_all(
            self.clients
                .iter()
                .enumerate()
                .map(|(k, client)| async move {
                    let started = Instant::now();
                    let latencies = closed_loop_latencies(
                        client,
                        Target::CreateLeads,
                        share(in_flight, n, k),
                        share(total, n, k),
                    )
                    .await?;
                    anyhow::Ok((latencies, started.elapsed()))
                }),
        )
        .await
    }

    /// Stops every `crm serve` gracefully (the server and directories go on drop).
    fn stop(mut self) -> anyhow::Result<()> {
        for serve in &mut self.serves {
            serve
                .terminate(STOP_WAIT_MAX)
                .context("stopping crm serve")?;
        }
        Ok(())
    }
}

/// Part `k` (from 0) of `total` split into `n` parts as even as can be.
fn share(total: usize, n: usize, k: usize) -> usize {
    total / n + usize::from(k < total % n)
}

fn print_tenants(args: &Args, rows: &[TenantRow]) {
    println!();
    println!(
        "Tenants: {} CreateLead commands measured per row (after {} to warm up), {} in flight in \
         all split evenly across the tenants, one client per tenant; `crm serve --projections ''` \
         per tenant; one nats-server",
        args.requests,
        args.requests / 10,
        args.in_flight
    );
    println!();
    println!(
        "| setup | in flight per tenant | commands/s | / 1 tenant | p50 / p99 (ms) | slowest / fastest tenant (commands/s) | CPU us per command: crm serve | nats-server | client | total | other processes (cores) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let one = rows.iter().find(|row| row.tenants == 1);
    for row in rows {
        let ratio = match one {
            Some(one) if row.tenants > 0 => format!("{:.2}", row.per_second / one.per_second),
            _ => "-".to_owned(),
        };
        println!(
            "| {} | {} | {:.0} | {ratio} | {:.1} / {:.1} | {:.0} / {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
            describe(row.tenants),
            row.in_flight_each,
            row.per_second,
            ms(row.p50_us),
            ms(row.p99_us),
            row.slowest,
            row.fastest,
            row.serve_cpu_us,
            row.nats_cpu_us,
            row.client_cpu_us,
            row.cpu_us(),
            row.others_cores
        );
    }
    let plain = rows.iter().find(|row| row.tenants == 0);
    if let (Some(plain), Some(one)) = (plain, one) {
        println!();
        println!(
            "1 tenant through accounts / without accounts: commands/s {:.2}, CPU per command {:+.1}% \
             (nats-server {:+.1} us per command)",
            one.per_second / plain.per_second,
            100.0 * (one.cpu_us() - plain.cpu_us()) / plain.cpu_us().max(1e-9),
            one.nats_cpu_us - plain.nats_cpu_us
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Part B: R1 against R3 on a three-node cluster.

/// One measured run of part B.
struct ReplicaRun {
    round: usize,
    replicas: usize,
    /// From `crm serve`'s ready line to the KPIs' answer at a first command's position.
    first_visible: Duration,
    achieved_per_second: f64,
    replies: Latencies,
    visible: Latencies,
    /// User + system CPU per measured command of `crm serve`, of the cluster's nodes and of
    /// this client.
    serve_cpu_us: f64,
    nats_cpu_us: f64,
    client_cpu_us: f64,
    /// Cores every other process of the machine took meanwhile.
    others_cores: f64,
}

/// Part B's figures: the runs, and one acknowledged publish at a time by replicas.
struct ReplicaFigures {
    runs: Vec<ReplicaRun>,
    publishes: Vec<(usize, Latencies)>,
}

async fn replicas(args: &Args, crm_bin: &Path) -> anyhow::Result<ReplicaFigures> {
    let cluster = NatsCluster::start(NatsClusterOptions::default())
        .context("starting a three-node nats-server cluster")?;
    let client = test_connect_options()
        .connect(cluster.url_list())
        .await
        .context("connecting the client to the cluster")?;
    let js = async_nats::jetstream::new(client.clone());
    // One data directory per tenant for every round: a restarted `crm serve` continues its
    // log, as the stream in the cluster does.
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let mut runs = Vec::new();
    for round in 1..=args.rounds {
        // R1 first in odd rounds, R3 first in even ones: drift falls on both.
        let order = if round % 2 == 1 { [1, 3] } else { [3, 1] };
        for replicas in order {
            let dir = if replicas == 1 { &dirs[0] } else { &dirs[1] };
            let run = replica_run(args, crm_bin, &cluster, &client, replicas, dir.path()).await?;
            eprintln!(
                "round {round} R{replicas}: first command visible after {:.2} s; reply p50 {} us, p99 {} us; visible p50 {} us, p99 {} us",
                run.first_visible.as_secs_f64(),
                run.replies.at(0.5),
                run.replies.at(0.99),
                run.visible.at(0.5),
                run.visible.at(0.99),
            );
            runs.push(ReplicaRun { round, ..run });
        }
    }
    let mut publishes = Vec::new();
    for replicas in [1, 3] {
        publishes.push((
            replicas,
            acked_publishes(&js, replicas, args.publishes).await?,
        ));
    }
    Ok(ReplicaFigures { runs, publishes })
}

/// One `crm serve --tenant r<replicas>` started on `dir`, warmed up for a second at the rate,
/// measured, and stopped.
async fn replica_run(
    args: &Args,
    crm_bin: &Path,
    cluster: &NatsCluster,
    client: &Client,
    replicas: usize,
    dir: &Path,
) -> anyhow::Result<ReplicaRun> {
    let tenant = Tenant::parse(&format!("r{replicas}"))?;
    let mut serve = spawn_serve(
        crm_bin,
        &[
            "--tenant",
            tenant.name(),
            "--events-replicas",
            &replicas.to_string(),
            "--projections",
            "kpis",
            "--nats-url",
            &cluster.urls(),
        ],
        dir,
    )?;
    if let Err(e) = serve.wait_for_line("crm serve ready", READY_WAIT_MAX) {
        bail!("crm serve not ready: {e}\n{}", serve.output_tail());
    }
    let subjects = Subjects::new(&tenant.subject_prefix());
    // One command until the KPIs show it (on the first start the tailer creates the stream and
    // the projector its consumer meanwhile), then a second at the rate to warm up.
    let started = Instant::now();
    let position = create_lead(client, subjects.command(Aggregate::Lead, "CreateLead")).await?;
    wait_visible(
        client,
        subjects.query("kpi.get"),
        position,
        FIRST_VISIBLE_WAIT_MS,
    )
    .await
    .with_context(|| format!("starting R{replicas}; crm serve:\n{}", serve.output_tail()))?;
    let first_visible = started.elapsed();
    open_loop(client, &subjects, args.rate_per_second, 1, args.probe_every)
        .await
        .with_context(|| {
            format!(
                "warming up R{replicas}; crm serve:\n{}",
                serve.output_tail()
            )
        })?;
    let js = async_nats::jetstream::new(client.clone());
    let stream_replicas = js
        .get_stream(tenant.stream_name())
        .await
        .map_err(|e| anyhow::anyhow!("the stream {}: {e}", tenant.stream_name()))?
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("the stream {}: {e}", tenant.stream_name()))?
        .config
        .num_replicas;
    anyhow::ensure!(
        stream_replicas == replicas,
        "{} has {stream_replicas} replicas, not {replicas}",
        tenant.stream_name()
    );
    let nats_pids: Vec<u32> = (0..cluster.node_count())
        .map(|node| {
            cluster
                .pid(node)
                .context("a nats-server node is not running")
        })
        .collect::<anyhow::Result<_>>()?;
    let groups: [&[u32]; 3] = [&[serve.pid()], &nats_pids, &[std::process::id()]];
    let before = ProcessCpu::take(&groups)?;
    let (achieved_per_second, replies, visible) = open_loop(
        client,
        &subjects,
        args.rate_per_second,
        args.rate_seconds,
        args.probe_every,
    )
    .await
    .with_context(|| format!("measuring R{replicas}; crm serve:\n{}", serve.output_tail()))?;
    let after = ProcessCpu::take(&groups)?;
    let cpu = before.per_unit(&after, replies.len());
    anyhow::ensure!(
        serve.is_running(),
        "crm serve ended during the run:\n{}",
        serve.output_tail()
    );
    serve
        .terminate(STOP_WAIT_MAX)
        .context("stopping crm serve")?;
    Ok(ReplicaRun {
        round: 0,
        replicas,
        first_visible,
        achieved_per_second,
        replies,
        visible,
        serve_cpu_us: cpu[0],
        nats_cpu_us: cpu[1],
        client_cpu_us: cpu[2],
        others_cores: before.others_cores(&after),
    })
}

/// `per_second` CreateLead commands a second for `seconds`, each sent at its scheduled time
/// whatever the others do, every `probe_every`th one followed by a KPI query at its position:
/// the achieved rate, every reply's latency and every probe's, counted from the scheduled send.
async fn open_loop(
    client: &Client,
    subjects: &Subjects,
    per_second: u64,
    seconds: u64,
    probe_every: usize,
) -> anyhow::Result<(f64, Latencies, Latencies)> {
    let interval = Duration::from_nanos(1_000_000_000 / per_second);
    let total = (per_second * seconds) as usize;
    let command = subjects.command(Aggregate::Lead, "CreateLead");
    let query = subjects.query("kpi.get");
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = ticker.tick().await;
        let (client, command, query) = (client.clone(), command.clone(), query.clone());
        tasks.push(tokio::spawn(async move {
            let position = create_lead(&client, command).await?;
            let replied = scheduled.elapsed();
            let visible = if i % probe_every == 0 {
                wait_visible(&client, query, position, VISIBILITY_WAIT_MS).await?;
                Some(scheduled.elapsed().as_micros() as u64)
            } else {
                None
            };
            anyhow::Ok((scheduled + replied, replied.as_micros() as u64, visible))
        }));
    }
    let mut last_reply = started;
    let mut replies = Vec::with_capacity(total);
    let mut visible = Vec::new();
    for task in tasks {
        let (replied_at, reply_us, visible_us) = task.await??;
        last_reply = last_reply.max(replied_at);
        replies.push(reply_us);
        visible.extend(visible_us);
    }
    let achieved = total as f64 / (last_reply - started).as_secs_f64();
    Ok((achieved, Latencies::new(replies), Latencies::new(visible)))
}

/// A CreateLead of a new lead with a fresh command id: the reply's last position.
async fn create_lead(client: &Client, subject: String) -> anyhow::Result<u64> {
    let mut headers = HeaderMap::new();
    headers.insert("Crm-Command-Id", Uuid::now_v7().to_string().as_str());
    let body = json!({"lead_id": Uuid::now_v7(), "name": "Ada Lovelace", "email": "ada@example.com", "source": "web"});
    let reply = client
        .request_with_headers(subject, headers, serde_json::to_vec(&body)?.into())
        .await
        .context("CreateLead")?;
    match serde_json::from_slice(&reply.payload) {
        Ok(CommandReply::Accepted(accepted)) => Ok(accepted.last_position),
        _ => bail!(
            "CreateLead not accepted: {}",
            String::from_utf8_lossy(&reply.payload)
        ),
    }
}

/// Asks the KPIs for an answer at `position` or later (they wait for it up to `wait_ms`);
/// fails unless they answer so.
async fn wait_visible(
    client: &Client,
    subject: String,
    position: u64,
    wait_ms: u64,
) -> anyhow::Result<()> {
    let body = json!({"min_position": position, "timeout_ms": wait_ms});
    let request = Request::new()
        .payload(serde_json::to_vec(&body)?.into())
        .timeout(Some(Duration::from_millis(wait_ms + 5_000)));
    let answer = client
        .send_request(subject, request)
        .await
        .context("kpi.get")?;
    let answer: Value = serde_json::from_slice(&answer.payload).context("kpi.get answer")?;
    anyhow::ensure!(
        answer["status"] != "rejected" && answer["position"].as_u64() >= Some(position),
        "the KPIs did not answer at position {position}: {answer}"
    );
    Ok(())
}

/// `count` acknowledged publishes, one at a time, to a fresh file stream of `replicas`
/// replicas (after a tenth as many to warm up): each one's latency. The stream is removed
/// afterwards.
async fn acked_publishes(
    js: &async_nats::jetstream::Context,
    replicas: usize,
    count: usize,
) -> anyhow::Result<Latencies> {
    if count == 0 {
        return Ok(Latencies::default());
    }
    let name = format!("BENCH_PUBLISH_R{replicas}");
    let subject = format!("bench.publish.r{replicas}");
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        num_replicas: replicas,
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("creating the stream {name}: {e}"))?;
    let payload = bytes::Bytes::from(vec![0xA5u8; PUBLISH_BYTES]);
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count + count / 10 {
        let sent = Instant::now();
        js.publish(subject.clone(), payload.clone())
            .await
            .map_err(|e| anyhow::anyhow!("publishing to {name}: {e}"))?
            .await
            .map_err(|e| anyhow::anyhow!("publishing to {name}: {e}"))?;
        if i >= count / 10 {
            latencies.push(sent.elapsed().as_micros() as u64);
        }
    }
    js.delete_stream(&name)
        .await
        .map_err(|e| anyhow::anyhow!("deleting the stream {name}: {e}"))?;
    Ok(Latencies::new(latencies))
}

fn print_replicas(args: &Args, figures: &ReplicaFigures) {
    println!();
    println!(
        "Replicated events: three-node nats-server cluster; `crm serve --tenant rN \
         --events-replicas N --projections kpis` with every node's URL, one at a time, {} \
         round(s) (R1 first in odd rounds, R3 first in even ones); CreateLead offered at {}/s \
         for {} s (after one command waited for until visible, then 1 s to warm up), open loop (latency from the scheduled send); \
         visibility probed on every {}th command (kpi.get at the reply's last_position)",
        args.rounds, args.rate_per_second, args.rate_seconds, args.probe_every
    );
    println!();
    println!(
        "| round | stream | first command visible after ready (s) | achieved commands/s | reply p50 / p99 / max (ms) | visible p50 / p99 / max (ms) | probes | CPU us per command: crm serve | nats-servers | client | other processes (cores) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in &figures.runs {
        println!(
            "| {} | R{} | {:.2} | {:.0} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} / {:.2} | {} | {:.1} | {:.1} | {:.1} | {:.2} |",
            run.round,
            run.replicas,
            run.first_visible.as_secs_f64(),
            run.achieved_per_second,
            ms(run.replies.at(0.5)),
            ms(run.replies.at(0.99)),
            ms(run.replies.max()),
            ms(run.visible.at(0.5)),
            ms(run.visible.at(0.99)),
            ms(run.visible.max()),
            run.visible.len(),
            run.serve_cpu_us,
            run.nats_cpu_us,
            run.client_cpu_us,
            run.others_cores,
        );
    }
    let pooled = |replicas: usize, latencies: fn(&ReplicaRun) -> &Latencies| {
        Latencies::merged(
            figures
                .runs
                .iter()
                .filter(|run| run.replicas == replicas)
                .map(latencies),
        )
    };
    let mut comparisons: Vec<(&str, Latencies, Latencies)> = vec![
        (
            "reply",
            pooled(1, |run| &run.replies),
            pooled(3, |run| &run.replies),
        ),
        (
            "visible",
            pooled(1, |run| &run.visible),
            pooled(3, |run| &run.visible),
        ),
    ];
    if let (Some((_, r1)), Some((_, r3))) = (
        figures
            .publishes
            .iter()
            .find(|(replicas, _)| *replicas == 1),
        figures
            .publishes
            .iter()
            .find(|(replicas, _)| *replicas == 3),
    ) {
        if r1.len() > 0 {
            println!();
            println!(
                "Acknowledged JetStream publish, one at a time, {} messages of {PUBLISH_BYTES} bytes on a fresh file stream: R1 p50 {:.2} / p99 {:.2} ms, R3 p50 {:.2} / p99 {:.2} ms",
                r1.len(),
                ms(r1.at(0.5)),
                ms(r1.at(0.99)),
                ms(r3.at(0.5)),
                ms(r3.at(0.99)),
            );
            comparisons.push(("acked publish", r1.clone(), r3.clone()));
        }
    }
    println!();
    println!("| R3 against R1 (rounds pooled) | R1 p50 / p99 (ms) | R3 p50 / p99 (ms) | R3 - R1 p50 / p99 (ms) | R3 / R1 p50 / p99 |");
    println!("|---|---:|---:|---:|---:|");
    for (what, r1, r3) in &comparisons {
        if r1.len() == 0 || r3.len() == 0 {
            continue;
        }
        let (a50, a99, b50, b99) = (r1.at(0.5), r1.at(0.99), r3.at(0.5), r3.at(0.99));
        println!(
            "| {what} | {:.2} / {:.2} | {:.2} / {:.2} | {:+.2} / {:+.2} | {:.2} / {:.2} |",
            ms(a50),
            ms(a99),
            ms(b50),
            ms(b99),
            (b50 as f64 - a50 as f64) / 1000.0,
            (b99 as f64 - a99 as f64) / 1000.0,
            b50 as f64 / (a50 as f64).max(1.0),
            b99 as f64 / (a99 as f64).max(1.0),
        );
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------------
// Processes, accounts and the machine.

/// `crm` with the environment a benchmark's arguments must not be overridden by.
fn crm(crm_bin: &Path) -> Process {
    let mut command = Process::new(crm_bin);
    command.env("RUST_LOG", "warn");
    for var in [
        "NATS_URL",
        "CRM_NATS_URL",
        "CRM_NATS_INBOX_PREFIX",
        "CRM_SUBJECT_PREFIX",
        "CRM_TENANT",
        "CRM_STREAM_NAME",
        "CRM_EVENTS_REPLICAS",
        "CRM_PROJECTIONS",
        "CRM_METRICS_ADDR",
    ] {
        command.env_remove(var);
    }
    command
}

/// `crm serve <args> --data-dir <dir>`, started (not yet ready).
fn spawn_serve(crm_bin: &Path, args: &[&str], data_dir: &Path) -> anyhow::Result<ChildProcess> {
    let mut command = crm(crm_bin);
    command
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir);
    ChildProcess::spawn(command).context("starting crm serve")
}

/// What a one-shot `crm` subcommand prints.
fn crm_output(crm_bin: &Path, args: &[String]) -> anyhow::Result<String> {
    let output = crm(crm_bin)
        .args(args)
        .output()
        .with_context(|| format!("running crm {}", args.join(" ")))?;
    anyhow::ensure!(
        output.status.success(),
        "crm {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).context("crm's output")
}

/// The password of a variable `crm nats-accounts --env` names: letters and digits only, as
/// nats-server reads them.
fn password(var: &str) -> String {
    format!("pw{}", var.to_ascii_lowercase().replace('_', ""))
}

/// The password of `user` (`crm-t1` -> `CRM_NATS_PASSWORD_CRM_T1`, `t1-sales-app` ->
/// `CRM_NATS_PASSWORD_T1_SALES_APP`), which must be among the variables `vars` lists.
fn password_of(user: &str, vars: &str) -> anyhow::Result<String> {
    let var = format!(
        "CRM_NATS_PASSWORD_{}",
        user.to_ascii_uppercase().replace('-', "_")
    );
    anyhow::ensure!(
        vars.lines().any(|line| line.trim_end_matches('=') == var),
        "crm nats-accounts --env names no {var} for {user}"
    );
    Ok(password(&var))
}

/// `url` with `user`'s credentials.
fn url_as(url: &str, user: &str, vars: &str) -> anyhow::Result<String> {
    let password = password_of(user, vars)?;
    Ok(url.replacen("nats://", &format!("nats://{user}:{password}@"), 1))
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg has them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// What the nats-server binary the fixtures run says of itself.
fn nats_server_version() -> String {
    crm_testkit::nats_server_binary()
        .ok()
        .and_then(|binary| Process::new(binary).arg("--version").output().ok())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|version| !version.is_empty())
        .unwrap_or_else(|| "nats-server (version unknown)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_one_at_most() {
        for (total, n) in [(256, 4), (30_000, 4), (10, 3), (1, 2)] {
            let parts: Vec<usize> = (0..n).map(|k| share(total, n, k)).collect();
            assert_eq!(parts.iter().sum::<usize>(), total);
            assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn passwords_are_letters_and_digits() {
        let vars = "CRM_NATS_PASSWORD_CRM_T1=\nCRM_NATS_PASSWORD_T1_SALES_APP=\n";
        assert_eq!(
            url_as("nats://127.0.0.1:4222", "crm-t1", vars).unwrap(),
            "nats://crm-t1:pwcrmnatspasswordcrmt1@127.0.0.1:4222"
        );
        assert!(password_of("t1-sales-app", vars)
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_alphanumeric()));
        assert!(password_of("t2-sales-app", vars).is_err());
    }
}
