//! A nats-server started by `crm serve` when no NATS URL is given: JetStream on, loopback
//! only, its store under the data dir. A pid file lets the next start stop a server that
//! outlived a killed `crm serve`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rustix::process::{Pid, Signal};
use tracing::{info, warn};

/// How long the local server may take to accept connections.
const START_TIMEOUT_MS: u64 = 10_000;

pub struct LocalNats {
    child: Child,
    port: u16,
    pid_file: PathBuf,
}

impl LocalNats {
    pub fn start(binary: &str, dir: &Path, port: u16) -> anyhow::Result<LocalNats> {
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
            .with_context(|| {
                format!("starting `{binary}`; install it with `apt-get install nats-server` or pass --nats-url")
            })?;
        let mut server = LocalNats {
            child,
            port,
            pid_file,
        };
        server.wait_until_listening(dir)?;
        info!(url = %crate::nats_opts::redact_url(&server.url()), store = %dir.display(), "local nats-server started");
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
