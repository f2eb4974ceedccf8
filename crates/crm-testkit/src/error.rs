//! The one error type of the test kit.
//! Variants say what went wrong; the ones about a process carry the tail of its output.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Everything that can go wrong while setting up or tearing down a fixture.
/// Its `Debug` is its message, so a test's `.expect(...)` shows the message (what to run,
/// a process's output) rather than the fields.
#[derive(thiserror::Error)]
pub enum TestkitError {
    /// No `nats-server` binary: `CRM_NATS_SERVER_BIN` unset, none in the project's tools, on
    /// `PATH` nor at the fixed fallback locations.
    #[error("nats-server not found (CRM_NATS_SERVER_BIN is unset; searched {searched:?} and PATH); run scripts/ensure-nats-server.sh, which installs the project's pinned release (scripts/test.sh does)")]
    NatsServerNotFound { searched: Vec<PathBuf> },

    /// The nats-server found is older than the oldest supported release.
    #[error("{binary} is nats-server {version}, older than {minimum}, the oldest this project supports; run scripts/ensure-nats-server.sh, which installs the project's pinned release, and unset CRM_NATS_SERVER_BIN or point it there")]
    NatsServerTooOld {
        binary: PathBuf,
        version: String,
        minimum: String,
    },

    /// `nats-server --version` could not be run, failed or printed no version.
    #[error("{binary} is no usable nats-server: {problem}; run scripts/ensure-nats-server.sh, which installs the project's pinned release, and unset CRM_NATS_SERVER_BIN or point it there")]
    NatsServerUnusable { binary: PathBuf, problem: String },

    /// Creating a temporary directory or file failed.
    #[error("cannot create temporary {what}: {source}")]
    TempDir {
        what: &'static str,
        #[source]
        source: io::Error,
    },

    /// Writing a file the fixture needs (config, log file) failed.
    #[error("cannot write {path}: {source}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Reading a captured output or log file failed.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Binding 127.0.0.1:0 to find a free port failed.
    #[error("cannot find a free loopback port: {source}")]
    NoFreePort {
        #[source]
        source: io::Error,
    },

    /// Spawning a child process failed.
    #[error("cannot spawn {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },

    /// nats-server exited before it accepted connections.
    #[error(
        "nats-server on port {port} exited during startup with {status}; output:\n{output_tail}"
    )]
    NatsServerExited {
        port: u16,
        status: ExitStatus,
        output_tail: String,
    },

    /// nats-server kept failing to bind a port, each time taken by someone else.
    #[error("nats-server could not bind a free port in {attempts} attempts; last output:\n{output_tail}")]
    PortsExhausted { attempts: u32, output_tail: String },

    /// nats-server did not accept connections in time (it was killed).
    #[error("nats-server on port {port} did not accept connections within {waited_ms} ms; output:\n{output_tail}")]
    NatsServerNotReady {
        port: u16,
        waited_ms: u128,
        output_tail: String,
    },

    /// A cluster node failed to start, stop or restart; `source` says how, with its output.
    #[error("nats-server cluster node {node}: {source}")]
    ClusterNode {
        node: usize,
        #[source]
        source: Box<TestkitError>,
    },

    /// The cluster's nodes run but did not form a cluster (routes, JetStream meta leader,
    /// health) in time; `problem` is the last condition not met.
    #[error("nats-server cluster {cluster} not ready within {waited_ms} ms: {problem}; output:\n{output_tail}")]
    NatsClusterNotReady {
        cluster: String,
        waited_ms: u128,
        problem: String,
        output_tail: String,
    },

    /// Options a fixture cannot work with (e.g. a cluster of no nodes).
    #[error("invalid fixture options: {problem}")]
    InvalidOptions { problem: String },

    /// Sending a signal to a child failed.
    #[error("cannot send {signal} to pid {pid}: {source}")]
    Signal {
        pid: u32,
        signal: &'static str,
        #[source]
        source: io::Error,
    },

    /// Waiting for (reaping) a child failed.
    #[error("cannot wait for pid {pid}: {source}")]
    Wait {
        pid: u32,
        #[source]
        source: io::Error,
    },

    /// A child did not exit within the time it was given (it was killed).
    #[error("{program} (pid {pid}) did not exit within {waited_ms} ms; it was killed")]
    ExitTimedOut {
        program: String,
        pid: u32,
        waited_ms: u128,
    },

    /// `wait_for_line` ran out of time.
    #[error("no line containing {pattern:?} from {program} within {waited_ms} ms; output:\n{output_tail}")]
    LineNotFound {
        program: String,
        pattern: String,
        waited_ms: u128,
        output_tail: String,
    },

    /// `wait_for_line` saw the child exit without printing the line.
    #[error("{program} exited with {status} before printing a line containing {pattern:?}; output:\n{output_tail}")]
    ExitedBeforeLine {
        program: String,
        pattern: String,
        status: ExitStatus,
        output_tail: String,
    },

    /// Connecting a NATS client failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },

    /// A client did not get (back) to the connected state in time.
    #[error("NATS client not connected within {waited_ms} ms (state {state})")]
    NotConnected { waited_ms: u128, state: String },
}

impl std::fmt::Debug for TestkitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
