//! A nats-server started by `crm serve` when no NATS URL is given: JetStream on, loopback
//! only, its store under the data dir. A pid file lets the next start stop a server that
//! outlived a killed `crm serve`.
//!
//! Whichever server `crm serve` uses, local or external, must be at least
//! [`crm_wire::NATS_SERVER_VERSION_MIN`]: the local binary is asked (`--version`) before it
//! is started, an external server's version is read from the INFO it sends on connecting.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rustix::process::{Pid, Signal};
use tracing::{info, warn};

/// How long the local server may take to accept connections.
const START_TIMEOUT_MS: u64 = 10_000;

/// The pinned release scripts/ensure-nats-server.sh installs, relative to the workspace this
/// binary was built in (the script keeps `current` pointing at the pinned version).
const PROJECT_NATS_SERVER: &str = "target/tools/nats-server/current/nats-server";

/// What the same three fixes say whenever the server is missing or too old.
const INSTALL_HINT: &str =
    "run scripts/ensure-nats-server.sh (it installs the pinned release and prints its path) \
    and pass that path with --nats-server-bin, or pass --nats-url";

/// The binary for the local server: `--nats-server-bin` (or CRM_NATS_SERVER_BIN) when given,
/// else the project's pinned release when it is installed in the workspace this binary was
/// built in, else `nats-server` on PATH.
pub fn resolve_binary(given: Option<&str>) -> String {
    if let Some(binary) = given.filter(|b| !b.is_empty()) {
        return binary.to_owned();
    }
    // crates/crm-cli is two levels below the workspace root.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new("."));
    let project = workspace.join(PROJECT_NATS_SERVER);
    if project.is_file() {
        return project.display().to_string();
    }
    "nats-server".to_owned()
}

/// Asks `binary --version` and fails unless it is a supported release.
fn check_binary_version(binary: &str) -> anyhow::Result<crm_wire::NatsServerVersion> {
    let output = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{binary} --version`; {INSTALL_HINT}"))?;
    let reported = String::from_utf8_lossy(&output.stdout);
    let Some(version) =
        crm_wire::NatsServerVersion::parse(&reported).filter(|_| output.status.success())
    else {
        bail!(
            "`{binary} --version` reported no nats-server version ({:?}); {INSTALL_HINT}",
            reported.trim()
        );
    };
    ensure_supported(version, &format!("`{binary}`"), INSTALL_HINT)?;
    Ok(version)
}

/// Fails when `version` is older than [`crm_wire::NATS_SERVER_VERSION_MIN`].
fn ensure_supported(
    version: crm_wire::NatsServerVersion,
    what: &str,
    hint: &str,
) -> anyhow::Result<()> {
    if !version.is_supported() {
        bail!(
            "{what} is nats-server {version}; crm serve needs {} or later (older releases have \
             JetStream data-loss bugs, among them a race in the expected-sequence check the \
             tailer relies on); {hint}",
            crm_wire::NATS_SERVER_VERSION_MIN
        );
    }
    Ok(())
}

/// Waits for the client's first connection and refuses a server older than
/// [`crm_wire::NATS_SERVER_VERSION_MIN`], by the version in the INFO it sent. Refused rather
/// than warned about: the tailer's gap-free publishing depends on the server's
/// `Nats-Expected-Last-Sequence` check being free of the races fixed in the minimum.
pub async fn check_server_version(
    client: &async_nats::Client,
    shown_url: &str,
) -> anyhow::Result<()> {
    // The client connects in the background; a flush completes once it is connected.
    client
        .flush()
        .await
        .with_context(|| format!("connecting to NATS at {shown_url}"))?;
    let info = client.server_info();
    let Some(version) = crm_wire::NatsServerVersion::parse(&info.version) else {
        bail!(
            "the NATS server at {shown_url} reports version {:?}, not a nats-server version; \
             crm serve needs nats-server {} or later",
            info.version,
            crm_wire::NATS_SERVER_VERSION_MIN
        );
    };
    ensure_supported(
        version,
        &format!("the NATS server at {shown_url}"),
        "upgrade it (the project tests on the release pinned in scripts/ensure-nats-server.sh)",
    )?;
    info!(nats_url = %shown_url, server_version = %version, "NATS server version supported");
    Ok(())
}

pub struct LocalNats {
    child: Child,
    port: u16,
    pid_file: PathBuf,
}

impl LocalNats {
    pub fn start(binary: &str, dir: &Path, port: u16) -> anyhow::Result<LocalNats> {
        let version = check_binary_version(binary)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let pid_file = dir.join("nats-server.pid");
        stop_leftover(&pid_file);
        let port = if port == 0 { free_port()? } else { port };
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .arg("-sd")
            .arg(dir.join("jetstream"))
            .arg("-P")
            .arg(&pid_file)
            .arg("-l")
            .arg(dir.join("nats-server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting `{binary}`; {INSTALL_HINT}"))?;
        let mut server = LocalNats {
            child,
            port,
            pid_file,
        };
        server.wait_until_listening(dir)?;
        info!(url = %crate::nats_opts::redact_url(&server.url()), store = %dir.display(), %version, binary, "local nats-server started");
        // A readiness line on stdout that scripts and tests wait for (password redacted).
        println!(
            "local nats-server listening on {}",
            crate::nats_opts::redact_url(&server.url())
        );
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn wait_until_listening(&mut self, dir: &Path) -> anyhow::Result<()> {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "nats-server exited with {status}; see {}",
                    dir.join("nats-server.log").display()
                );
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!(
            "nats-server did not listen on port {} within {START_TIMEOUT_MS} ms",
            self.port
        )
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        // SIGTERM lets JetStream close its files; then reap.
        signal(self.child.id(), Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.pid_file);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn signal(pid: u32, signal: Signal) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    rustix::process::kill_process(pid, signal).is_ok()
}

/// Stops a nats-server left running by a `crm serve` that was killed.
fn stop_leftover(pid_file: &Path) {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "nats-server" {
        return;
    }
    warn!(pid, "stopping a nats-server left over from an earlier run");
    signal(pid, Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        signal(pid, Signal::KILL);
    }
}
