//! A real `nats-server` with JetStream, on a free loopback port, with its store and log in a temp dir.
//! It can be stopped, killed and restarted on the same port and store, to test outages.

use std::fs::OpenOptions;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{self, POLL_INTERVAL};
use crate::{port, TestkitError};

/// Environment variable naming the nats-server binary to use instead of searching for one.
/// scripts/test.sh sets it to the pinned release that scripts/ensure-nats-server.sh installs;
/// `crm serve` reads the same variable for its local server.
pub const NATS_SERVER_BIN_ENV: &str = "CRM_NATS_SERVER_BIN";

/// The pinned release installed by scripts/ensure-nats-server.sh, relative to the workspace
/// root (the script keeps `current` pointing at the pinned version).
const NATS_SERVER_PROJECT_PATH: &str = "target/tools/nats-server/current/nats-server";

/// Where to look for nats-server when it is not on `PATH` (Debian installs it in /usr/sbin).
const NATS_SERVER_FALLBACK_PATHS: [&str; 3] = [
    "/usr/sbin/nats-server",
    "/usr/local/bin/nats-server",
    "/usr/bin/nats-server",
];

/// How many fresh ports `start` tries when another process takes the port first.
const START_ATTEMPTS_MAX: u32 = 5;
/// How many times `restart` retries its fixed port while the old socket is being released.
const RESTART_BIND_ATTEMPTS_MAX: u32 = 10;
const RESTART_BIND_RETRY_DELAY: Duration = Duration::from_millis(100);
/// How long `stop` waits after SIGTERM before it sends SIGKILL.
const STOP_WAIT_MAX: Duration = Duration::from_secs(5);
/// Bounds on one readiness probe (TCP connect, then the server's INFO line).
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
const PROBE_READ_TIMEOUT: Duration = Duration::from_millis(500);
const PROBE_INFO_BYTES_MAX: usize = 16 * 1024;
/// Longest pause between reconnect attempts of clients made by `test_connect_options`.
const RECONNECT_DELAY_MAX: Duration = Duration::from_millis(100);

const BIND_FAILURE_TEXT: &str = "address already in use";

/// How to start a [`NatsServer`]. Port, bind address, JetStream and store dir are always set by the
/// fixture on the command line (and override anything in `config`).
#[derive(Debug, Clone)]
pub struct NatsServerOptions {
    /// Extra configuration file content, e.g. an `authorization { users = [...] }` block.
    pub config: Option<String>,
    /// How long to wait for the server to accept connections before failing.
    pub ready_wait_max: Duration,
    /// Environment variables set for the server process only, e.g. the values of `$VAR`
    /// references in `config` (nats-server resolves them from its environment).
    pub env: Vec<(String, String)>,
}

impl Default for NatsServerOptions {
    fn default() -> NatsServerOptions {
        NatsServerOptions {
            config: None,
            ready_wait_max: Duration::from_secs(10),
            env: Vec::new(),
        }
    }
}

impl NatsServerOptions {
    /// Default options plus the given configuration file content.
    pub fn with_config(config: impl Into<String>) -> NatsServerOptions {
        NatsServerOptions {
            config: Some(config.into()),
            ..NatsServerOptions::default()
        }
    }

    /// These options plus an environment variable for the server process.
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
}

/// A nats-server child process owned by a test. Dropping it kills the server and deletes its files.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    options: NatsServerOptions,
    /// Checked against the INFO line, so a probe never mistakes another server for ours.
    name: String,
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free 127.0.0.1 port with a fresh store; waits until it accepts clients.
    pub fn start() -> Result<NatsServer, TestkitError> {
        NatsServer::start_with(NatsServerOptions::default())
    }

    /// Like [`NatsServer::start`], with extra configuration.
    pub fn start_with(options: NatsServerOptions) -> Result<NatsServer, TestkitError> {
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
        if let Some(config) = &options.config {
            let path = dir.path().join("nats-server.conf");
            std::fs::write(&path, config)
                .map_err(|source| TestkitError::WriteFile { path, source })?;
        }
        let mut server = NatsServer {
            binary,
            options,
            name: unique_server_name(),
            port: 0,
            child: None,
            dir,
        };

        let mut last_output = String::new();
        for _ in 0..START_ATTEMPTS_MAX {
            server.port = port::try_free_loopback_port()?;
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(error) => match bind_failure_output(&error) {
                    Some(output) => last_output = output.to_owned(),
                    None => return Err(error),
                },
            }
            tracing::debug!(
                port = server.port,
                "nats-server port was taken, trying another"
            );
        }
        Err(TestkitError::PortsExhausted {
            attempts: START_ATTEMPTS_MAX,
            output_tail: last_output,
        })
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port; stays the same across `restart`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's pid, `None` while it is stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The JetStream store directory (`-sd`); stays the same across `restart`.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The server log (`-l`), appended to across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// Whether the server process is alive (reaps it if it died on its own).
    pub fn is_running(&mut self) -> bool {
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

    /// SIGTERM, wait up to 5 s, then SIGKILL; the process is reaped. Does nothing if stopped.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
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
                tracing::debug!(pid, port = self.port, %status, "nats-server stopped");
                Ok(())
            }
            Ok(None) => {
                tracing::warn!(
                    pid,
                    port = self.port,
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
    pub fn kill(&mut self) -> Result<(), TestkitError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        process::kill_and_reap(&mut child)?;
        tracing::debug!(port = self.port, "nats-server killed");
        Ok(())
    }

    /// Starts the server again on the same port with the same store (stopping it first if running),
    /// so clients reconnect and JetStream data survives.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop()?;
        let mut attempt = 1;
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(error)
                    if attempt < RESTART_BIND_ATTEMPTS_MAX
                        && bind_failure_output(&error).is_some() =>
                {
                    tracing::debug!(
                        port = self.port,
                        attempt,
                        "port still busy, retrying restart"
                    );
                    attempt += 1;
                    thread::sleep(RESTART_BIND_RETRY_DELAY);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Connects a client with [`test_connect_options`]; panics with the server log if that fails.
    pub async fn connect(&self) -> async_nats::Client {
        match self.connect_with(test_connect_options()).await {
            Ok(client) => client,
            Err(error) => panic!("{error}\n{}", self.output_tail(0, 0)),
        }
    }

    /// Connects a client with the given options (e.g. user and password for permission tests).
    pub async fn connect_with(
        &self,
        options: async_nats::ConnectOptions,
    ) -> Result<async_nats::Client, TestkitError> {
        let url = self.url();
        options
            .connect(url.as_str())
            .await
            .map_err(|source| TestkitError::Connect { url, source })
    }

    fn output_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.out")
    }

    fn output_tail(&self, log_from: u64, output_from: u64) -> String {
        let log = process::file_tail(&self.log_path(), log_from);
        let output = process::file_tail(&self.output_path(), output_from);
        format!("{output}{log}")
    }

    /// Spawns the server on `self.port` and waits until it answers with its INFO line.
    fn launch(&mut self) -> Result<(), TestkitError> {
        assert!(self.child.is_none(), "launching over a running nats-server");
        let log_from = process::file_len(&self.log_path());
        let output_from = process::file_len(&self.output_path());
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.output_path())
            .map_err(|source| TestkitError::WriteFile {
                path: self.output_path(),
                source,
            })?;
        let output_for_stderr = output
            .try_clone()
            .map_err(|source| TestkitError::WriteFile {
                path: self.output_path(),
                source,
            })?;

        let mut command = Command::new(&self.binary);
        command
            .arg("-js")
            .args(["-a", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            .arg("-sd")
            .arg(self.store_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-n", &self.name]);
        if self.options.config.is_some() {
            command
                .arg("-c")
                .arg(self.dir.path().join("nats-server.conf"));
        }
        command.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(output))
            .stderr(Stdio::from(output_for_stderr));
        let child = command.spawn().map_err(|source| TestkitError::Spawn {
            program: self.binary.display().to_string(),
            source,
        })?;
        tracing::debug!(pid = child.id(), port = self.port, "nats-server spawned");
        let child = self.child.insert(child);

        let started = Instant::now();
        let deadline = started + self.options.ready_wait_max;
        loop {
            let pid = child.id();
            if let Some(status) = child
                .try_wait()
                .map_err(|source| TestkitError::Wait { pid, source })?
            {
                self.child = None;
                return Err(TestkitError::NatsServerExited {
                    port: self.port,
                    status,
                    output_tail: self.output_tail(log_from, output_from),
                });
            }
            if probe(self.port, &self.name) {
                tracing::debug!(
                    pid,
                    port = self.port,
                    ready_ms = started.elapsed().as_millis(),
                    "nats-server ready"
                );
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = process::kill_and_reap(child);
                self.child = None;
                return Err(TestkitError::NatsServerNotReady {
                    port: self.port,
                    waited_ms: started.elapsed().as_millis(),
                    output_tail: self.output_tail(log_from, output_from),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = process::kill_and_reap(&mut child);
        }
    }
}

/// Client options suited to tests: reconnect forever, at most 100 ms apart, so a restarted server
/// is found again quickly.
pub fn test_connect_options() -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(reconnect_delay)
}

fn reconnect_delay(attempts: usize) -> Duration {
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    RECONNECT_DELAY_MAX.min(Duration::from_millis(10).saturating_mul(attempts))
}

/// Waits until the client reports itself connected (e.g. after a `restart`), at most `timeout`.
pub async fn wait_until_connected(
    client: &async_nats::Client,
    timeout: Duration,
) -> Result<(), TestkitError> {
    let started = Instant::now();
    loop {
        let state = client.connection_state();
        if state == async_nats::connection::State::Connected {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(TestkitError::NotConnected {
                waited_ms: started.elapsed().as_millis(),
                state: state.to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The nats-server binary the fixture runs, for tests that run it themselves (e.g. `-t` to
/// check a configuration file): see [`find_nats_server`].
pub fn nats_server_binary() -> Result<PathBuf, TestkitError> {
    find_nats_server()
}

/// The nats-server binary: `$CRM_NATS_SERVER_BIN`, else the project's pinned release under
/// the workspace's `target/tools` (scripts/ensure-nats-server.sh), else the first on `PATH`,
/// else a fallback path. Whichever is found must report a version of at least
/// [`crm_wire::NATS_SERVER_VERSION_MIN`]; an older one is an error, not a reason to look on.
fn find_nats_server() -> Result<PathBuf, TestkitError> {
    // One lookup per test binary: the environment and the files do not change under a test.
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    if let Some(found) = FOUND.get() {
        return Ok(found.clone());
    }
    let binary = locate_nats_server()?;
    check_version(&binary)?;
    Ok(FOUND.get_or_init(|| binary).clone())
}

fn locate_nats_server() -> Result<PathBuf, TestkitError> {
    if let Some(path) = std::env::var_os(NATS_SERVER_BIN_ENV).filter(|path| !path.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let project = project_nats_server();
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let fallbacks = NATS_SERVER_FALLBACK_PATHS.iter().map(PathBuf::from);
    if let Some(found) = std::iter::once(project.clone())
        .chain(on_path)
        .chain(fallbacks)
        .find(|path| is_executable(path))
    {
        return Ok(found);
    }
    Err(TestkitError::NatsServerNotFound {
        searched: std::iter::once(project)
            .chain(NATS_SERVER_FALLBACK_PATHS.iter().map(PathBuf::from))
            .collect(),
    })
}

/// The pinned release's path in this workspace (crates/crm-testkit is two levels down).
fn project_nats_server() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new("."));
    workspace.join(NATS_SERVER_PROJECT_PATH)
}

/// Runs `binary --version` and fails unless it reports a supported release.
fn check_version(binary: &Path) -> Result<(), TestkitError> {
    let output = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| TestkitError::NatsServerUnusable {
            binary: binary.to_owned(),
            problem: format!("cannot run it ({error})"),
        })?;
    let reported = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match crm_wire::NatsServerVersion::parse(&reported) {
        Some(version) if output.status.success() && version.is_supported() => Ok(()),
        Some(version) if output.status.success() => Err(TestkitError::NatsServerTooOld {
            binary: binary.to_owned(),
            version: version.to_string(),
            minimum: crm_wire::NATS_SERVER_VERSION_MIN.to_string(),
        }),
        _ => Err(TestkitError::NatsServerUnusable {
            binary: binary.to_owned(),
            problem: format!(
                "`--version` reported no nats-server version ({}, output {:?})",
                output.status,
                format!("{reported} {}", String::from_utf8_lossy(&output.stderr)).trim()
            ),
        }),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn unique_server_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "crm-testkit-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The output of a launch that failed because the port was taken, `None` for any other failure.
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

/// Whether *our* server (by name) answers on the port with its INFO line.
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

    #[test]
    fn probe_of_a_closed_port_is_false() {
        let port = port::free_loopback_port();
        assert!(!probe(port, "nobody"));
    }

    #[test]
    fn the_project_path_is_under_the_workspace_target_dir() {
        let path = project_nats_server();
        assert!(path.ends_with(NATS_SERVER_PROJECT_PATH));
        assert!(path
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .and_then(Path::parent)
            .and_then(Path::parent)
            .is_some_and(|root| root.join("Cargo.lock").is_file()));
    }

    #[test]
    fn the_binary_found_is_a_supported_release() {
        let binary = nats_server_binary().expect("a nats-server");
        check_version(&binary).expect("a supported release");
    }

    #[test]
    fn reconnect_delay_grows_then_is_capped() {
        assert_eq!(reconnect_delay(0), Duration::ZERO);
        assert_eq!(reconnect_delay(1), Duration::from_millis(10));
        assert_eq!(reconnect_delay(usize::MAX), RECONNECT_DELAY_MAX);
    }
}
