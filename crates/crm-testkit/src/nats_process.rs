//! One nats-server process and its files in a temp dir: what [`NatsServer`](crate::NatsServer)
//! and every [`NatsCluster`](crate::NatsCluster) node share (spawning, the readiness probe,
//! stop and kill, and retrying when a port turns out to be taken).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::nats_server::find_nats_server;
use crate::process::{self, POLL_INTERVAL};
use crate::TestkitError;

/// How many fresh ports a start tries when another process takes a port first.
const START_ATTEMPTS_MAX: u32 = 5;
/// How many times a restart retries its fixed ports while the old sockets are being released.
const RESTART_BIND_ATTEMPTS_MAX: u32 = 10;
const RESTART_BIND_RETRY_DELAY: Duration = Duration::from_millis(100);
/// How long `stop` waits after SIGTERM before it sends SIGKILL.
const STOP_WAIT_MAX: Duration = Duration::from_secs(5);
/// Bounds on one readiness probe (TCP connect, then the server's INFO line).
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
const PROBE_READ_TIMEOUT: Duration = Duration::from_millis(500);
const PROBE_INFO_BYTES_MAX: usize = 16 * 1024;

const BIND_FAILURE_TEXT: &str = "address already in use";

/// A nats-server child process with its store (`store/`), log (`nats-server.log`), captured
/// output (`nats-server.out`) and optional config file in its own temp dir.
/// Dropping it kills the process and deletes the files.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    binary: PathBuf,
    /// Passed with `-n` and checked against INFO lines, so a probe never mistakes another
    /// server for ours.
    name: String,
    env: Vec<(String, String)>,
    ready_wait_max: Duration,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Finds the binary and creates the temp dir with an empty store; spawns nothing yet.
    pub(crate) fn new(
        env: Vec<(String, String)>,
        ready_wait_max: Duration,
    ) -> Result<ServerProcess, TestkitError> {
        let binary = find_nats_server()?;
        let dir = tempfile::Builder::new()
            .prefix("crm-testkit-nats-")
            .tempdir()
            .map_err(|source| TestkitError::TempDir {
                what: "nats-server directory",
                source,
            })?;
        let store = dir.path().join("store");
        std::fs::create_dir(&store).map_err(|source| TestkitError::WriteFile {
            path: store,
            source,
        })?;
        Ok(ServerProcess {
            binary,
            name: unique_server_name(),
            env,
            ready_wait_max,
            child: None,
            dir,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The server log (`-l`), appended to across restarts.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.conf")
    }

    /// (Re)writes the config file; a running server reads it again on [`ServerProcess::reload`].
    pub(crate) fn write_config(&self, text: &str) -> Result<(), TestkitError> {
        let path = self.config_path();
        std::fs::write(&path, text).map_err(|source| TestkitError::WriteFile { path, source })
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is alive (reaps it if it died on its own).
    pub(crate) fn is_running(&mut self) -> bool {
        let Some(child) = &mut self.child else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(_)) | Err(_) => {
                self.child = None;
                false
            }
        }
    }

    /// `Ok(true)` while running, `Ok(false)` once stopped or killed by us, and an error with the
    /// output if the process exited on its own (it is reaped).
    pub(crate) fn check_alive(&mut self, port: u16) -> Result<bool, TestkitError> {
        let Some(child) = &mut self.child else {
            return Ok(false);
        };
        let pid = child.id();
        match child
            .try_wait()
            .map_err(|source| TestkitError::Wait { pid, source })?
        {
            None => Ok(true),
            Some(status) => {
                self.child = None;
                Err(TestkitError::NatsServerExited {
                    port,
                    status,
                    output_tail: self.output_tail(0, 0),
                })
            }
        }
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL; the process is reaped. Does nothing if stopped.
    pub(crate) fn stop(&mut self) -> Result<(), TestkitError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        let graceful = match process::send_sigterm(&child) {
            Ok(()) => process::wait_timeout(&mut child, STOP_WAIT_MAX),
            Err(error) => Err(error),
        };
        match graceful {
            Ok(Some(status)) => {
                tracing::debug!(pid, name = self.name, %status, "nats-server stopped");
                Ok(())
            }
            Ok(None) => {
                tracing::warn!(
                    pid,
                    name = self.name,
                    "nats-server ignored SIGTERM, killing it"
                );
                process::kill_and_reap(&mut child).map(drop)
            }
            Err(error) => {
                // Never leave the process behind, whatever failed.
                let _ = process::kill_and_reap(&mut child);
                Err(error)
            }
        }
    }

    /// SIGKILL, like a crash; the process is reaped. Does nothing if stopped.
    pub(crate) fn kill(&mut self) -> Result<(), TestkitError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        process::kill_and_reap(&mut child)?;
        tracing::debug!(name = self.name, "nats-server killed");
        Ok(())
    }

    /// SIGHUP: a running server reads its config file again (routes, accounts, ...).
    /// Does nothing if stopped.
    pub(crate) fn reload(&self) -> Result<(), TestkitError> {
        match &self.child {
            Some(child) => process::send_sighup(child),
            None => Ok(()),
        }
    }

    /// The tails of the captured output and the log written at or after the given offsets.
    pub(crate) fn output_tail(&self, log_from: u64, output_from: u64) -> String {
        let log = process::file_tail(&self.log_path(), log_from);
        let output = process::file_tail(&self.output_path(), output_from);
        format!("{output}{log}")
    }

    fn output_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.out")
    }

    /// Spawns `nats-server -n NAME -l LOG ARGS...` and waits until every port in `ports` answers
    /// with our INFO line (the client port first, which errors name). The server binds its
    /// cluster port after it accepts clients, so a cluster node lists both: a taken cluster
    /// port then shows up here as an exit, not later.
    pub(crate) fn launch(&mut self, args: &[OsString], ports: &[u16]) -> Result<(), TestkitError> {
        assert!(self.child.is_none(), "launching over a running nats-server");
        let port = ports.first().copied().unwrap_or(0);
        let log_from = process::file_len(&self.log_path());
        let output_from = process::file_len(&self.output_path());
        let output_error = |source| TestkitError::WriteFile {
            path: self.output_path(),
            source,
        };
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.output_path())
            .map_err(output_error)?;
        let output_for_stderr = output.try_clone().map_err(output_error)?;

        let mut command = Command::new(&self.binary);
        command
            .args(["-n", &self.name])
            .arg("-l")
            .arg(self.log_path())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(output))
            .stderr(Stdio::from(output_for_stderr));
        let child = command.spawn().map_err(|source| TestkitError::Spawn {
            program: self.binary.display().to_string(),
            source,
        })?;
        tracing::debug!(
            pid = child.id(),
            port,
            name = self.name,
            "nats-server spawned"
        );
        let child = self.child.insert(child);

        let started = Instant::now();
        let deadline = started + self.ready_wait_max;
        let mut ready = 0;
        loop {
            let pid = child.id();
            if let Some(status) = child
                .try_wait()
                .map_err(|source| TestkitError::Wait { pid, source })?
            {
                self.child = None;
                return Err(TestkitError::NatsServerExited {
                    port,
                    status,
                    output_tail: self.output_tail(log_from, output_from),
                });
            }
            while ready < ports.len() && probe(ports[ready], &self.name) {
                ready += 1;
            }
            if ready == ports.len() {
                tracing::debug!(
                    pid,
                    port,
                    ready_ms = started.elapsed().as_millis(),
                    "nats-server ready"
                );
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = process::kill_and_reap(child);
                self.child = None;
                return Err(TestkitError::NatsServerNotReady {
                    port,
                    waited_ms: started.elapsed().as_millis(),
                    output_tail: self.output_tail(log_from, output_from),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = process::kill_and_reap(&mut child);
        }
    }
}

/// Runs `attempt` until it does not fail for a taken port, at most [`START_ATTEMPTS_MAX`] times.
/// `attempt` gets the attempt number (from 0) and picks fresh ports as it needs.
pub(crate) fn retry_on_fresh_ports(
    mut attempt: impl FnMut(u32) -> Result<(), TestkitError>,
) -> Result<(), TestkitError> {
    let mut last_output = String::new();
    for number in 0..START_ATTEMPTS_MAX {
        match attempt(number) {
            Ok(()) => return Ok(()),
            Err(error) => match bind_failure_output(&error) {
                Some(output) => last_output = output.to_owned(),
                None => return Err(error),
            },
        }
        tracing::debug!(
            attempt = number,
            "nats-server port was taken, trying others"
        );
    }
    Err(TestkitError::PortsExhausted {
        attempts: START_ATTEMPTS_MAX,
        output_tail: last_output,
    })
}

/// Runs `launch` on the same ports again while they are still busy (the old sockets of a
/// stopped server are being released), a bounded number of times.
pub(crate) fn retry_on_same_ports(
    mut launch: impl FnMut() -> Result<(), TestkitError>,
) -> Result<(), TestkitError> {
    let mut attempt = 1;
    loop {
        match launch() {
            Ok(()) => return Ok(()),
            Err(error)
                if attempt < RESTART_BIND_ATTEMPTS_MAX && bind_failure_output(&error).is_some() =>
            {
                tracing::debug!(attempt, "port still busy, retrying restart");
                attempt += 1;
                thread::sleep(RESTART_BIND_RETRY_DELAY);
            }
            Err(error) => return Err(error),
        }
    }
}

/// A name no other server of this or a parallel test process uses.
pub(crate) fn unique_server_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "crm-testkit-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The output of a launch that failed because a port was taken, `None` for any other failure.
fn bind_failure_output(error: &TestkitError) -> Option<&str> {
    match error {
        TestkitError::NatsServerExited { output_tail, .. }
            if output_tail.contains(BIND_FAILURE_TEXT) =>
        {
            Some(output_tail)
        }
        _ => None,
    }
}

/// Whether *our* server (by name) answers on the port with its INFO line; client and route
/// ports both greet with one.
fn probe(port: u16, name: &str) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&address, PROBE_CONNECT_TIMEOUT) else {
        return false;
    };
    if stream.set_read_timeout(Some(PROBE_READ_TIMEOUT)).is_err() {
        return false;
    }
    let mut info = Vec::new();
    let mut limited = stream.take(PROBE_INFO_BYTES_MAX as u64);
    let mut chunk = [0_u8; 1024];
    while !info.windows(2).any(|pair| pair == b"\r\n") {
        match limited.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(read) => info.extend_from_slice(&chunk[..read]),
        }
    }
    let expected_name = format!("\"server_name\":\"{name}\"");
    info.starts_with(b"INFO ") && String::from_utf8_lossy(&info).contains(&expected_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port;

    #[test]
    fn probe_of_a_closed_port_is_false() {
        let port = port::free_loopback_port();
        assert!(!probe(port, "nobody"));
    }

    #[test]
    fn only_an_exit_saying_address_in_use_is_a_bind_failure() {
        let status = Command::new("true").status().expect("run true");
        let exited = |output_tail: &str| TestkitError::NatsServerExited {
            port: 1,
            status,
            output_tail: output_tail.to_owned(),
        };
        let taken = exited("listen tcp 127.0.0.1:1: bind: address already in use");
        assert!(bind_failure_output(&taken).is_some());
        assert!(bind_failure_output(&exited("Parse error on line 1")).is_none());
    }
}
