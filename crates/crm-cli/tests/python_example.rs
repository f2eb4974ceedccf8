//! The Python example of examples/python (leads created and won per source and month, read
//! over `crm.log.read`) against a real `crm serve`: catching up with `--once`, following new
//! events, SIGKILL after it caught up, a restart that counts nothing twice, and SIGTERM.
//!
//! Python and nats-py come from the project's own script, scripts/ensure-python-deps.sh
//! (scripts/test.sh runs it), which installs the pinned requirements into
//! `target/tools/python`; this test fails, rather than skips, when they are missing.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use crm_testkit::{ChildProcess, NatsServer, TempDataDir};
use serde_json::{json, Map, Value};
use uuid::Uuid;

mod support;

/// A hang guard for one run of the example or `crm serve`'s start, not a performance bound.
const PROCESS_WAIT_MAX: Duration = Duration::from_secs(60);
const STATE_POLL: Duration = Duration::from_millis(50);

fn workspace_root() -> PathBuf {
    // crates/crm-cli -> the workspace.
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// Where scripts/ensure-python-deps.sh installs nats-py; fails with what to run if it did not.
fn python_deps() -> PathBuf {
    let deps = workspace_root().join("target/tools/python");
    assert!(
        deps.join("nats").join("__init__.py").is_file(),
        "nats-py for the Python example is not installed in {}: run scripts/ensure-python-deps.sh \
         (scripts/test.sh runs it before the tests)",
        deps.display()
    );
    deps
}

/// The example with `args`, reading the CRM on `nats_url` and keeping its state in `state`.
fn example(nats_url: &str, state: &Path, args: &[&str]) -> ChildProcess {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut command = Process::new(&python);
    command
        .arg(workspace_root().join("examples/python/leads_by_source.py"))
        .arg("--nats-url")
        .arg(nats_url)
        .arg("--state")
        .arg(state)
        .args(args)
        .env("PYTHONPATH", python_deps())
        .env_remove("NATS_URL");
    ChildProcess::spawn(command).unwrap_or_else(|e| {
        panic!("cannot start {python} for the Python example ({e}): is CPython 3 on PATH?")
    })
}

/// Runs the example with `--once --print` to its end and returns the table it printed.
fn run_once(nats_url: &str, state: &Path, page_size: &str) -> Value {
    let mut child = example(
        nats_url,
        state,
        &["--once", "--print", "--page-size", page_size],
    );
    let status = child
        .wait_for_exit(PROCESS_WAIT_MAX)
        .unwrap_or_else(|e| panic!("the example did not finish: {e}"));
    assert!(status.success(), "{status}: {}", child.output_tail());
    let stdout = child.stdout().expect("stdout");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the table is not JSON ({e}): {}", child.output_tail()))
}

/// The position stored in the example's state file (0 before it first wrote one).
fn state_position(state: &Path) -> u64 {
    match std::fs::read(state) {
        // The file is replaced by a rename, so what is read is always a whole file.
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes).expect("the state file is JSON")
            ["position"]
            .as_u64()
            .expect("the state file has a position"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => panic!("reading {}: {e}", state.display()),
    }
}

/// Waits until the running example has stored `position`.
fn wait_for_state_position(child: &mut ChildProcess, state: &Path, position: u64) {
    let deadline = Instant::now() + PROCESS_WAIT_MAX;
    loop {
        let stored = state_position(state);
        if stored == position {
            return;
        }
        assert!(
            stored < position,
            "the state file is at {stored}, beyond the log's {position}"
        );
        assert!(
            child.is_running(),
            "the example stopped at {stored}: {}",
            child.output_tail()
        );
        assert!(
            Instant::now() < deadline,
            "the example did not reach position {position} (at {stored}): {}",
            child.output_tail()
        );
        std::thread::sleep(STATE_POLL);
    }
}

fn serve(data_dir: &Path, nats_url: &str) -> ChildProcess {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command
        .args(["serve", "--projections", ""])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--nats-url")
        .arg(nats_url)
        .env("RUST_LOG", "warn");
    let mut child = ChildProcess::spawn(command).expect("spawn crm");
    child
        .wait_for_line("crm serve ready", PROCESS_WAIT_MAX)
        .expect("serve ready");
    child
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

/// Sends lead commands and remembers the last position written.
struct Sales {
    client: async_nats::Client,
    last_position: u64,
}

impl Sales {
    async fn send(&mut self, subject: &str, body: Value) {
        let reply =
            support::send_until_answered(&self.client, subject, Uuid::now_v7(), &body).await;
        assert_eq!(reply["status"], "accepted", "{subject}: {reply}");
        self.last_position = reply["last_position"].as_u64().expect("last_position");
    }

    async fn create(&mut self, lead: u128, source: &str, occurred_at: &str) {
        let body = json!({"lead_id": id(lead), "name": format!("Lead {lead}"), "source": source,
            "occurred_at": occurred_at});
        self.send("lead.CreateLead", body).await;
    }

    /// A win registers a customer too: two events, the second not a lead's.
    async fn win(&mut self, lead: u128, occurred_at: &str) {
        let body = json!({"lead_id": id(lead), "customer_id": id(1000 + lead),
            "deal_value": {"amount_minor": 100_000, "currency": "EUR"}, "occurred_at": occurred_at});
        self.send("lead.WinLead", body).await;
    }
}

/// The table the example prints: `cells` are (source, month, created, won).
fn table(position: u64, cells: &[(&str, &str, u64, u64)]) -> Value {
    let mut sources = Map::new();
    for &(source, month, created, won) in cells {
        let months = sources
            .entry(source)
            .or_insert_with(|| Value::Object(Map::new()));
        months[month] = json!({"created": created, "won": won});
    }
    json!({"position": position, "sources": sources})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_counts_leads_by_source_and_month_exactly_once() {
    python_deps();
    let nats = NatsServer::start().unwrap();
    let dir = TempDataDir::new().unwrap();
    let _service = serve(dir.path(), &nats.url());
    let state = dir.join("leads_by_source.json");
    let mut sales = Sales {
        client: nats.connect().await,
        last_position: 0,
    };

    // Months come from each event's occurred_at, whatever order the log has them in.
    sales.create(1, "web", "2025-10-05T10:00:00Z").await;
    sales.create(2, "web", "2025-11-02T10:00:00Z").await;
    sales.create(3, "referral", "2025-11-03T10:00:00Z").await;
    sales.create(4, "event", "2025-11-30T23:30:00-02:00").await; // 2025-12-01 in UTC
    sales.win(1, "2025-11-10T10:00:00Z").await;
    sales.win(3, "2025-11-25T10:00:00Z").await;
    assert_eq!(sales.last_position, 8);
    // Pages of 3 events: the checkpoint moves several times, and a page ends mid-win.
    let first = run_once(&nats.url(), &state, "3");
    assert_eq!(
        first,
        table(
            8,
            &[
                ("event", "2025-12", 1, 0),
                ("referral", "2025-11", 1, 1),
                ("web", "2025-10", 1, 0),
                ("web", "2025-11", 1, 1),
            ]
        )
    );
    assert_eq!(state_position(&state), 8);

    // Following: it picks up new events as they come, then is killed once it has them all.
    let mut follower = example(&nats.url(), &state, &["--page-size", "2"]);
    follower
        .wait_for_line("caught up", PROCESS_WAIT_MAX)
        .expect("the follower catches up");
    sales.create(5, "web", "2025-12-01T09:00:00Z").await;
    sales.create(6, "advertising", "2025-12-15T09:00:00Z").await;
    sales.win(2, "2025-12-03T10:00:00Z").await; // created in November, won in December
    wait_for_state_position(&mut follower, &state, sales.last_position);
    follower.kill_9().expect("SIGKILL");

    // More events while it is down; the restart goes on from its checkpoint.
    sales.create(7, "partner", "2026-01-04T09:00:00Z").await;
    sales.win(5, "2026-01-20T09:00:00Z").await;
    let expected = table(
        sales.last_position,
        &[
            ("advertising", "2025-12", 1, 0),
            ("event", "2025-12", 1, 0),
            ("partner", "2026-01", 1, 0),
            ("referral", "2025-11", 1, 1),
            ("web", "2025-10", 1, 0),
            ("web", "2025-11", 1, 1),
            ("web", "2025-12", 1, 1),
            ("web", "2026-01", 0, 1),
        ],
    );
    assert_eq!(run_once(&nats.url(), &state, "1000"), expected);

    // SIGTERM stops a follower cleanly, and it printed the same table: nothing counted twice.
    let mut follower = example(&nats.url(), &state, &["--print"]);
    follower
        .wait_for_line("caught up", PROCESS_WAIT_MAX)
        .expect("the follower catches up");
    let status = follower.terminate(PROCESS_WAIT_MAX).expect("SIGTERM");
    assert!(status.success(), "{status}: {}", follower.output_tail());
    let stdout = follower.stdout().expect("stdout");
    let printed: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the table is not JSON ({e}): {}", follower.output_tail()));
    assert_eq!(printed, expected);
    assert_eq!(state_position(&state), sales.last_position);
}
