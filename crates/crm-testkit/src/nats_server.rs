//! A real `nats-server` with JetStream, on a free loopback port, with its store and log in a temp dir.
//! It can be stopped, killed and restarted on the same port and store, to test outages.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::nats_process::{self, ServerProcess};
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

/// Longest pause between reconnect attempts of clients made by `test_connect_options`.
const RECONNECT_DELAY_MAX: Duration = Duration::from_millis(100);

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
    port: u16,
    /// Whether `options.config` was written to the config file, passed with `-c`.
    has_config: bool,
    process: ServerProcess,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free 127.0.0.1 port with a fresh store; waits until it accepts clients.
    pub fn start() -> Result<NatsServer, TestkitError> {
        NatsServer::start_with(NatsServerOptions::default())
    }

    /// Like [`NatsServer::start`], with extra configuration.
    pub fn start_with(options: NatsServerOptions) -> Result<NatsServer, TestkitError> {
        let process = ServerProcess::new(options.env, options.ready_wait_max)?;
        if let Some(config) = &options.config {
            process.write_config(config)?;
        }
        let mut server = NatsServer {
            port: 0,
            has_config: options.config.is_some(),
            process,
        };
        nats_process::retry_on_fresh_ports(|_| {
            server.port = port::try_free_loopback_port()?;
            server.launch()
        })?;
        Ok(server)
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
        self.process.pid()
    }

    /// The JetStream store directory (`-sd`); stays the same across `restart`.
    pub fn store_dir(&self) -> PathBuf {
        self.process.store_dir()
    }

    /// The server log (`-l`), appended to across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path()
    }

    /// Whether the server process is alive (reaps it if it died on its own).
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL; the process is reaped. Does nothing if stopped.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        self.process.stop()
    }

    /// SIGKILL, like a crash; the process is reaped. Does nothing if stopped.
    pub fn kill(&mut self) -> Result<(), TestkitError> {
        self.process.kill()
    }

    /// Starts the server again on the same port with the same store (stopping it first if running),
    /// so clients reconnect and JetStream data survives.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.process.stop()?;
        nats_process::retry_on_same_ports(|| self.launch())
    }

    /// Connects a client with [`test_connect_options`]; panics with the server log if that fails.
    pub async fn connect(&self) -> async_nats::Client {
        match self.connect_with(test_connect_options()).await {
            Ok(client) => client,
            Err(error) => panic!("{error}\n{}", self.process.output_tail(0, 0)),
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

    /// Spawns the server on `self.port` and waits until it answers with its INFO line.
    fn launch(&mut self) -> Result<(), TestkitError> {
        let mut args: Vec<OsString> = vec![
            "-js".into(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string().into(),
            "-sd".into(),
            self.process.store_dir().into(),
        ];
        if self.has_config {
            args.extend(["-c".into(), self.process.config_path().into()]);
        }
        self.process.launch(&args, &[self.port])
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
pub(crate) fn find_nats_server() -> Result<PathBuf, TestkitError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
