//! Test support for every test in the project that needs NATS, a data directory or a child process.
//!
//! ```no_run
//! # async fn demo() -> Result<(), crm_testkit::TestkitError> {
//! let mut nats = crm_testkit::NatsServer::start()?; // real nats-server -js on a free 127.0.0.1 port
//! let client = nats.connect().await;                  // async-nats client with fast reconnects
//! let data = crm_testkit::TempDataDir::new()?;        // sled goes in data.path(), removed on drop
//! nats.stop()?; /* ... outage ... */ nats.restart()?;  // same port, same JetStream store
//! # Ok(()) }
//! ```
//! Permissions tests pass config text: `NatsServer::start_with(NatsServerOptions::with_config("authorization { ... }"))`.
//! Permission refusals arrive as connection errors: [`WatchedClient`] collects them per probe.
//! Failover tests start a [`NatsCluster`] of three nodes, then `kill(i)`, `restart(i)` and `connect(i)` per node.
//! System tests run binaries with [`ChildProcess::spawn`], then `wait_for_line`, `kill_9` or `terminate`.
//! Fixtures own temp dirs and kill their processes on drop. Start, stop and restart block the calling thread:
//! an async test whose clients must notice an outage uses `#[tokio::test(flavor = "multi_thread")]`.

mod child_process;
mod data_dir;
mod error;
mod nats_cluster;
mod nats_process;
mod nats_server;
mod port;
mod process;
mod refusals;

pub use child_process::ChildProcess;
pub use data_dir::TempDataDir;
pub use error::TestkitError;
pub use nats_cluster::{NatsCluster, NatsClusterOptions};
pub use nats_server::{
    nats_server_binary, test_connect_options, wait_until_connected, NatsServer, NatsServerOptions,
    NATS_SERVER_BIN_ENV,
};
pub use port::{free_loopback_port, try_free_loopback_port};
pub use refusals::{is_refusal, Op, WatchedClient, REFUSAL_MARKER};
