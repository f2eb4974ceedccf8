//! A cluster of real nats-servers with JetStream (three by default) on loopback ports, for
//! system tests of failover: kill a node, publish through the others, restart it and see it
//! catch up.
//!
//! Every node has its own temp dir and store, a client, a cluster and a monitoring port, and a
//! config file with routes to every other node (routes need a file). Whether the cluster is
//! formed is read from each node's monitoring endpoints: `/routez` (the nodes it has routes
//! to), `/jsz` (the JetStream meta group) and `/healthz` (200 once its JetStream, streams and
//! consumers are current), over plain HTTP/1.0 on std's `TcpStream`.
//!
//! Config `accounts` need nothing more: nats-server 2.14 creates the `$SYS` system account that
//! clustered JetStream uses by itself; each account that uses JetStream needs
//! `jetstream: enabled`. Only a config that sets `no_sys_acc` must name a `system_account`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::nats_process::{self, ServerProcess};
use crate::{port, test_connect_options, TestkitError};

/// Three nodes: the smallest cluster whose R3 streams stay writable with one node down.
const NODES_DEFAULT: usize = 3;
/// Longer than a single server's 10 s: forming a cluster means elections on loaded CI machines.
const READY_WAIT_DEFAULT: Duration = Duration::from_secs(20);
/// Bounds on one monitoring request.
const HTTP_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
const HTTP_IO_TIMEOUT: Duration = Duration::from_secs(1);
const HTTP_RESPONSE_BYTES_MAX: u64 = 1 << 20;
/// How often cluster-wide waits poll the monitoring endpoints; slower than the process polls
/// since every failed `/healthz` is a warning in the server log.
const CLUSTER_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How to start a [`NatsCluster`].
#[derive(Debug, Clone)]
pub struct NatsClusterOptions {
    /// How many nodes, at least 2: clustered JetStream refuses to start without routes.
    pub nodes: usize,
    /// Extra configuration text for every node's config file, e.g. an `accounts { ... }` block.
    /// It comes after the fixture's settings, so it must not set `listen`, `http`, `cluster` or
    /// `jetstream` (a `jetstream` block would drop the node's own `store_dir`).
    pub config: Option<String>,
    /// Environment variables of every node process, e.g. the values of `$VAR` references in
    /// `config`.
    pub env: Vec<(String, String)>,
    /// How long to wait for a node to accept clients, and then for the cluster to form.
    pub ready_wait_max: Duration,
}

impl Default for NatsClusterOptions {
    fn default() -> NatsClusterOptions {
        NatsClusterOptions {
            nodes: NODES_DEFAULT,
            config: None,
            env: Vec::new(),
            ready_wait_max: READY_WAIT_DEFAULT,
        }
    }
}

impl NatsClusterOptions {
    /// Default options plus the given configuration text for every node.
    pub fn with_config(config: impl Into<String>) -> NatsClusterOptions {
        NatsClusterOptions {
            config: Some(config.into()),
            ..NatsClusterOptions::default()
        }
    }

    /// These options plus an environment variable for every node process.
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// These options with another number of nodes.
    pub fn with_nodes(mut self, nodes: usize) -> Self {
        self.nodes = nodes;
        self
    }
}

/// nats-server processes forming one JetStream cluster, owned by a test. Nodes are numbered
/// from 0; methods taking a node number panic if it is not below [`NatsCluster::node_count`],
/// like slice indexing. Dropping the cluster kills every node and deletes its files.
#[derive(Debug)]
pub struct NatsCluster {
    /// The cluster `name` every node's config shares.
    name: String,
    config: Option<String>,
    ready_wait_max: Duration,
    nodes: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    ports: NodePorts,
    process: ServerProcess,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodePorts {
    client: u16,
    cluster: u16,
    /// Monitoring (`http`), for `/routez`, `/jsz` and `/healthz`.
    http: u16,
}

impl NodePorts {
    fn free() -> Result<NodePorts, TestkitError> {
        Ok(NodePorts {
            client: port::try_free_loopback_port()?,
            cluster: port::try_free_loopback_port()?,
            http: port::try_free_loopback_port()?,
        })
    }
}

impl NatsCluster {
    /// Starts the nodes one after the other, each waited for until it accepts clients, then
    /// waits until the cluster is formed: every node has routes to all others, knows the
    /// JetStream meta leader of a group of all nodes, and reports itself healthy.
    pub fn start(options: NatsClusterOptions) -> Result<NatsCluster, TestkitError> {
        // All ports are chosen up front: every node's routes name the others' cluster ports.
        let ports = (0..options.nodes)
            .map(|_| NodePorts::free())
            .collect::<Result<Vec<_>, _>>()?;
        NatsCluster::start_on(options, ports)
    }

    fn start_on(
        options: NatsClusterOptions,
        ports: Vec<NodePorts>,
    ) -> Result<NatsCluster, TestkitError> {
        if options.nodes < 2 {
            return Err(TestkitError::InvalidOptions {
                problem: format!(
                    "a nats-server cluster of {} nodes: it needs at least 2 (clustered JetStream \
                     refuses to start without routes; one server is a NatsServer)",
                    options.nodes
                ),
            });
        }
        let nodes = ports
            .into_iter()
            .map(|ports| {
                let process = ServerProcess::new(options.env.clone(), options.ready_wait_max)?;
                Ok(Node { ports, process })
            })
            .collect::<Result<Vec<_>, TestkitError>>()?;
        let mut cluster = NatsCluster {
            name: format!("{}-cluster", nats_process::unique_server_name()),
            config: options.config,
            ready_wait_max: options.ready_wait_max,
            nodes,
        };
        cluster.write_configs()?;
        for node in 0..cluster.nodes.len() {
            cluster.launch_on_fresh_ports(node)?;
        }
        cluster.wait_until_formed()?;
        Ok(cluster)
    }

    /// How many nodes the cluster has, running or not.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// `nats://127.0.0.1:PORT` of one node.
    pub fn url(&self, node: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[node].ports.client)
    }

    /// Every node's URL, comma separated, as the NATS tools and Go clients take a server list
    /// (`nats --server`, `NATS_URL`). async-nats parses a string as a single URL: give it
    /// [`NatsCluster::url_list`].
    pub fn urls(&self) -> String {
        self.url_list().join(",")
    }

    /// Every node's URL, in node order; async-nats `connect` takes the list as is.
    pub fn url_list(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|node| self.url(node)).collect()
    }

    /// A node's client port; stays the same across `restart`.
    pub fn port(&self, node: usize) -> u16 {
        self.nodes[node].ports.client
    }

    /// A node's `server_name`, as stream and meta leaders are reported by JetStream.
    pub fn server_name(&self, node: usize) -> &str {
        self.nodes[node].process.name()
    }

    /// A node's pid, `None` while it is stopped.
    pub fn pid(&self, node: usize) -> Option<u32> {
        self.nodes[node].process.pid()
    }

    /// Whether a node's process is alive (reaps it if it died on its own).
    pub fn is_running(&mut self, node: usize) -> bool {
        self.nodes[node].process.is_running()
    }

    /// SIGKILLs a node, like a crash; the process is reaped. Does nothing if it is stopped.
    pub fn kill(&mut self, node: usize) -> Result<(), TestkitError> {
        self.nodes[node]
            .process
            .kill()
            .map_err(|source| node_error(node, source))
    }

    /// Stops a node gracefully (SIGTERM, then SIGKILL after 5 s). Does nothing if it is stopped.
    pub fn stop(&mut self, node: usize) -> Result<(), TestkitError> {
        self.nodes[node]
            .process
            .stop()
            .map_err(|source| node_error(node, source))
    }

    /// Starts a node again (stopping it first if running) on the same ports with the same store
    /// and config, then waits until it is back in the cluster and every running node is healthy.
    pub fn restart(&mut self, node: usize) -> Result<(), TestkitError> {
        let restarted = &mut self.nodes[node];
        restarted
            .process
            .stop()
            .and_then(|()| nats_process::retry_on_same_ports(|| restarted.launch()))
            .map_err(|source| node_error(node, source))?;
        self.wait_until_formed()
    }

    /// Waits until every running node reports healthy JetStream (`/healthz`), at most `timeout`.
    pub fn wait_until_healthy(&mut self, timeout: Duration) -> Result<(), TestkitError> {
        self.wait_for(timeout, |cluster| {
            for node in cluster.running_nodes()? {
                if let Some(problem) = cluster.nodes[node].health_problem() {
                    return Ok(Some(format!("node {node}: {problem}")));
                }
            }
            Ok(None)
        })
    }

    /// The tail of one node's output and log, for assertion messages.
    pub fn output_tail(&self, node: usize) -> String {
        self.nodes[node].process.output_tail(0, 0)
    }

    /// The tails of every node's output and log, each headed by its node number.
    pub fn output_tails(&self) -> String {
        (0..self.nodes.len())
            .map(|node| {
                format!(
                    "=== node {node} ({}, port {}) ===\n{}",
                    self.server_name(node),
                    self.port(node),
                    self.output_tail(node)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Connects a client to one node with [`test_connect_options`]; panics with the node's
    /// output if that fails.
    pub async fn connect(&self, node: usize) -> async_nats::Client {
        match self.connect_with(node, test_connect_options()).await {
            Ok(client) => client,
            Err(error) => panic!("{error}\n{}", self.output_tail(node)),
        }
    }

    /// Connects a client to one node with the given options (e.g. a user and password). The
    /// client learns the other nodes from the server and reconnects to them if this one goes.
    pub async fn connect_with(
        &self,
        node: usize,
        options: async_nats::ConnectOptions,
    ) -> Result<async_nats::Client, TestkitError> {
        let url = self.url(node);
        options
            .connect(url.as_str())
            .await
            .map_err(|source| TestkitError::Connect { url, source })
    }

    /// Launches a node on its planned ports; if one is taken, moves the node to fresh ports,
    /// rewrites every config file and has the running nodes reload theirs (SIGHUP), so their
    /// routes follow.
    fn launch_on_fresh_ports(&mut self, node: usize) -> Result<(), TestkitError> {
        nats_process::retry_on_fresh_ports(|attempt| {
            if attempt > 0 {
                self.nodes[node].ports = NodePorts::free()?;
                self.write_configs()?;
                for other in &self.nodes {
                    other.process.reload()?;
                }
            }
            self.nodes[node].launch()
        })
        .map_err(|source| node_error(node, source))
    }

    fn write_configs(&self) -> Result<(), TestkitError> {
        for node in &self.nodes {
            node.process.write_config(&self.config_text(node))?;
        }
        Ok(())
    }

    /// The node's settings, then the test's extra configuration (later keys win).
    fn config_text(&self, node: &Node) -> String {
        let routes: String = self
            .nodes
            .iter()
            .filter(|other| !std::ptr::eq(*other, node))
            .map(|other| format!("    \"nats-route://127.0.0.1:{}\"\n", other.ports.cluster))
            .collect();
        let NodePorts {
            client,
            cluster,
            http,
        } = node.ports;
        format!(
            "# Written by crm-testkit's NatsCluster; the test's extra configuration comes last.\n\
             listen: \"127.0.0.1:{client}\"\n\
             http: \"127.0.0.1:{http}\"\n\
             cluster {{\n  \
               name: \"{name}\"\n  \
               listen: \"127.0.0.1:{cluster}\"\n  \
               routes: [\n{routes}  ]\n\
             }}\n\
             jetstream {{\n  \
               store_dir: {store:?}\n\
             }}\n\
             {extra}\n",
            name = self.name,
            store = node.process.store_dir(),
            extra = self.config.as_deref().unwrap_or_default(),
        )
    }

    /// The nodes not stopped or killed by the test; a node that exited on its own is an error.
    fn running_nodes(&mut self) -> Result<Vec<usize>, TestkitError> {
        let mut running = Vec::new();
        for (index, node) in self.nodes.iter_mut().enumerate() {
            let port = node.ports.client;
            if node
                .process
                .check_alive(port)
                .map_err(|source| node_error(index, source))?
            {
                running.push(index);
            }
        }
        Ok(running)
    }

    /// Waits until the running nodes form a cluster, at most `ready_wait_max`.
    fn wait_until_formed(&mut self) -> Result<(), TestkitError> {
        self.wait_for(self.ready_wait_max, NatsCluster::formation_problem)
    }

    /// What keeps the running nodes from being a formed cluster, `None` once they are one.
    fn formation_problem(&mut self) -> Result<Option<String>, TestkitError> {
        let running = self.running_nodes()?;
        let all = self.nodes.len();
        for &index in &running {
            let node = &self.nodes[index];
            let routes = match node.route_names() {
                Ok(routes) => routes,
                Err(problem) => return Ok(Some(format!("node {index}: {problem}"))),
            };
            let missing: Vec<&str> = running
                .iter()
                .map(|&other| self.nodes[other].process.name())
                .filter(|&name| name != node.process.name() && !routes.contains(name))
                .collect();
            if !missing.is_empty() {
                return Ok(Some(format!("node {index} has no route to {missing:?}")));
            }
            if let Some(problem) = node.meta_group_problem(all) {
                return Ok(Some(format!("node {index}: {problem}")));
            }
            if let Some(problem) = node.health_problem() {
                return Ok(Some(format!("node {index}: {problem}")));
            }
        }
        Ok(None)
    }

    /// Polls `problem` until it finds none, at most `timeout`; then fails with the last one.
    fn wait_for(
        &mut self,
        timeout: Duration,
        mut problem: impl FnMut(&mut NatsCluster) -> Result<Option<String>, TestkitError>,
    ) -> Result<(), TestkitError> {
        let started = Instant::now();
        loop {
            let Some(problem) = problem(self)? else {
                tracing::debug!(
                    cluster = self.name,
                    waited_ms = started.elapsed().as_millis(),
                    "nats-server cluster ready"
                );
                return Ok(());
            };
            if started.elapsed() >= timeout {
                return Err(TestkitError::NatsClusterNotReady {
                    cluster: self.name.clone(),
                    waited_ms: started.elapsed().as_millis(),
                    problem,
                    output_tail: self.output_tails(),
                });
            }
            thread::sleep(CLUSTER_POLL_INTERVAL);
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        // Every node first, so none outlives another's deleted files for long.
        for node in &mut self.nodes {
            let _ = node.process.kill();
        }
    }
}

impl Node {
    /// Spawns the node with its config file; ready once both its client and cluster ports
    /// answer (nats-server binds the cluster port last).
    fn launch(&mut self) -> Result<(), TestkitError> {
        let args: [OsString; 2] = ["-c".into(), self.process.config_path().into()];
        self.process
            .launch(&args, &[self.ports.client, self.ports.cluster])
    }

    /// The `server_name`s this node has routes to (`/routez`).
    fn route_names(&self) -> Result<BTreeSet<String>, String> {
        let routez = self.monitor_json("/routez")?;
        Ok(routez["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|route| route["remote_name"].as_str())
            .map(str::to_owned)
            .collect())
    }

    /// Why this node's view of the JetStream meta group is not yet a leader of all `nodes`
    /// (`/jsz`): a meta group formed while a node was still starting lacks it for a moment.
    fn meta_group_problem(&self, nodes: usize) -> Option<String> {
        let jsz = match self.monitor_json("/jsz") {
            Ok(jsz) => jsz,
            Err(problem) => return Some(problem),
        };
        let meta = &jsz["meta_cluster"];
        let leader = meta["leader"].as_str().unwrap_or_default();
        let size = meta["cluster_size"].as_u64().unwrap_or(0);
        if leader.is_empty() || size < nodes as u64 {
            return Some(format!(
                "JetStream meta group has leader {leader:?} and {size} of {nodes} nodes"
            ));
        }
        None
    }

    /// Why `/healthz` is not 200, `None` if it is.
    fn health_problem(&self) -> Option<String> {
        match http_get(self.ports.http, "/healthz") {
            Ok((200, _)) => None,
            Ok((status, body)) => Some(format!("/healthz is {status}: {}", body.trim())),
            Err(error) => Some(format!("/healthz failed: {error}")),
        }
    }

    fn monitor_json(&self, path: &str) -> Result<serde_json::Value, String> {
        match http_get(self.ports.http, path) {
            Ok((200, body)) => serde_json::from_str(&body)
                .map_err(|error| format!("{path} is no JSON ({error}): {body}")),
            Ok((status, body)) => Err(format!("{path} is {status}: {}", body.trim())),
            Err(error) => Err(format!("{path} failed: {error}")),
        }
    }
}

fn node_error(node: usize, source: TestkitError) -> TestkitError {
    TestkitError::ClusterNode {
        node,
        source: Box::new(source),
    }
}

/// `GET path` over HTTP/1.0 from the monitoring port: the status code and the body. With
/// HTTP/1.0 the server closes the connection after the response, so the body is all that
/// follows the headers.
fn http_get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, HTTP_CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_IO_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_IO_TIMEOUT))?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())?;
    let mut response = Vec::new();
    stream
        .take(HTTP_RESPONSE_BYTES_MAX)
        .read_to_end(&mut response)?;
    parse_http_response(&response)
}

fn parse_http_response(response: &[u8]) -> io::Result<(u16, String)> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("HTTP response without the end of its headers"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no HTTP status in {head:?}")))?;
    Ok((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::jetstream::{self, message::PublishMessage, stream};

    type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

    /// Leader elections after a kill take seconds (raft election timeouts), more on a busy machine.
    const FAILOVER_WAIT_MAX: Duration = Duration::from_secs(30);

    fn stream_config(name: &str) -> stream::Config {
        stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{}.>", name.to_lowercase())],
            num_replicas: 3,
            ..Default::default()
        }
    }

    /// Publishes with a message id, retrying until acked or `within` passes: while a stream has
    /// no leader a publish finds no responder or times out, and the id makes a retry of a
    /// publish that was stored after all a duplicate the stream drops.
    async fn publish_acked(
        js: &jetstream::Context,
        subject: &str,
        payload: &str,
        within: Duration,
    ) -> Result<u64, String> {
        let started = Instant::now();
        loop {
            let message = PublishMessage::build()
                .message_id(payload)
                .payload(payload.to_owned().into());
            let attempt = async { js.send_publish(subject.to_owned(), message).await?.await };
            let failure = match tokio::time::timeout(Duration::from_secs(2), attempt).await {
                Ok(Ok(ack)) => return Ok(ack.sequence),
                Ok(Err(error)) => error.to_string(),
                Err(_) => "no ack within 2 s".to_owned(),
            };
            if started.elapsed() >= within {
                return Err(format!("{payload} not acked within {within:?}: {failure}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn node_of(cluster: &NatsCluster, server_name: &str) -> usize {
        (0..cluster.node_count())
            .find(|&node| cluster.server_name(node) == server_name)
            .unwrap_or_else(|| panic!("no node is named {server_name}"))
    }

    // Multi-threaded: starting, killing and restarting nodes block the test's thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_nodes_form_a_full_mesh() -> TestResult {
        let cluster = NatsCluster::start(NatsClusterOptions::default())?;
        assert_eq!(cluster.node_count(), 3);
        for node in 0..3 {
            let others: BTreeSet<String> = (0..3)
                .filter(|&other| other != node)
                .map(|other| cluster.server_name(other).to_owned())
                .collect();
            assert_eq!(cluster.nodes[node].route_names()?, others);
            assert_eq!(
                cluster.url(node),
                format!("nats://127.0.0.1:{}", cluster.port(node))
            );
        }
        assert_eq!(cluster.urls(), cluster.url_list().join(","));
        assert_eq!(cluster.urls().split(',').count(), 3);
        let client = test_connect_options().connect(cluster.url_list()).await?;
        client.flush().await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_r3_stream_is_created_through_one_node() -> TestResult {
        let cluster = NatsCluster::start(NatsClusterOptions::default())?;
        let js = jetstream::new(cluster.connect(1).await);
        let mut stream = js.create_stream(stream_config("ORDERS")).await?;
        let info = stream.info().await?;
        assert_eq!(info.config.num_replicas, 3);
        let replicas = &info.cluster.as_ref().expect("cluster info").replicas;
        assert_eq!(replicas.len(), 2, "a leader and two replicas: {info:?}");
        let ack = js.publish("orders.placed", "first".into()).await?.await?;
        assert_eq!(ack.sequence, 1);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_r3_stream_survives_a_killed_node_which_catches_up_after_restart() -> TestResult {
        let mut cluster = NatsCluster::start(NatsClusterOptions::default())?;
        let js = jetstream::new(cluster.connect(0).await);
        let mut stream = js.create_stream(stream_config("ORDERS")).await?;
        for number in 1..=5 {
            publish_acked(
                &js,
                "orders.placed",
                &format!("m{number}"),
                FAILOVER_WAIT_MAX,
            )
            .await?;
        }

        // Kill the stream's leader: the harder case, the survivors must elect a new one.
        let leader = stream.info().await?.cluster.clone().and_then(|c| c.leader);
        let killed = node_of(&cluster, &leader.expect("the stream has a leader"));
        let pid = cluster.pid(killed);
        cluster.kill(killed)?;
        assert!(!cluster.is_running(killed) && cluster.pid(killed).is_none() && pid.is_some());

        let survivor = (killed + 1) % 3;
        let js = jetstream::new(cluster.connect(survivor).await);
        for number in 6..=10 {
            let sequence = publish_acked(
                &js,
                "orders.placed",
                &format!("m{number}"),
                FAILOVER_WAIT_MAX,
            )
            .await
            .map_err(|error| format!("{error}\n{}", cluster.output_tails()))?;
            assert_eq!(sequence, number);
        }
        let reader = jetstream::new(cluster.connect((killed + 2) % 3).await);
        let mut stream = reader.get_stream("ORDERS").await?;
        assert_eq!(stream.info().await?.state.messages, 10);
        for number in 1..=10 {
            let message = stream.get_raw_message(number).await?;
            assert_eq!(message.payload.as_ref(), format!("m{number}").as_bytes());
        }

        cluster.restart(killed)?;
        assert!(cluster.is_running(killed) && cluster.pid(killed) != pid);
        let started = Instant::now();
        loop {
            let info = stream.info().await?.clone();
            let cluster_info = info.cluster.clone().unwrap_or_default();
            let current = cluster_info.leader.is_some()
                && cluster_info.replicas.len() == 2
                && cluster_info
                    .replicas
                    .iter()
                    .all(|peer| peer.current && !peer.offline);
            if current {
                break;
            }
            assert!(
                started.elapsed() < FAILOVER_WAIT_MAX,
                "replicas not current after restart: {cluster_info:?}\n{}",
                cluster.output_tails()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster.wait_until_healthy(FAILOVER_WAIT_MAX)?;
        let restarted = jetstream::new(cluster.connect(killed).await);
        let mut stream = restarted.get_stream("ORDERS").await?;
        assert_eq!(stream.info().await?.state.messages, 10);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_config_account_user_creates_an_r3_stream() -> TestResult {
        let config = "accounts { A { jetstream: enabled, users = [{user: a, password: $PW_A}] } }";
        let options = NatsClusterOptions::with_config(config).with_env("PW_A", "x");
        let cluster = NatsCluster::start(options)?;
        let login = || async_nats::ConnectOptions::with_user_and_password("a".into(), "x".into());
        let js = jetstream::new(cluster.connect_with(2, login()).await?);
        let mut stream = js.create_stream(stream_config("TICKETS")).await?;
        assert_eq!(stream.info().await?.config.num_replicas, 3);
        let ack = js.publish("tickets.opened", "t1".into()).await?.await?;
        assert_eq!(ack.sequence, 1);
        let reader = jetstream::new(cluster.connect_with(0, login()).await?);
        let message = reader
            .get_stream("TICKETS")
            .await?
            .get_raw_message(1)
            .await?;
        assert_eq!(message.payload.as_ref(), b"t1");
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_taken_cluster_port_moves_the_node_and_the_routes_follow() -> TestResult {
        let mut ports = (0..3)
            .map(|_| NodePorts::free())
            .collect::<Result<Vec<_>, _>>()?;
        // The last node binds its cluster port after the others run with routes to it.
        let squatter = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        ports[2].cluster = squatter.local_addr()?.port();
        let planned = ports[2];
        let cluster = NatsCluster::start_on(NatsClusterOptions::default(), ports)?;
        assert_ne!(cluster.nodes[2].ports, planned);
        for node in 0..3 {
            assert_eq!(cluster.nodes[node].route_names()?.len(), 2);
        }
        let js = jetstream::new(cluster.connect(0).await);
        js.create_stream(stream_config("MOVED")).await?;
        Ok(())
    }

    #[test]
    fn each_config_routes_to_the_others_and_ends_with_the_extra_text() -> TestResult {
        let nodes = (0..3)
            .map(|_| {
                let process = ServerProcess::new(Vec::new(), READY_WAIT_DEFAULT)?;
                Ok(Node {
                    ports: NodePorts::free()?,
                    process,
                })
            })
            .collect::<Result<Vec<_>, TestkitError>>()?;
        let cluster = NatsCluster {
            name: "c".to_owned(),
            config: Some("accounts { A { jetstream: enabled } }".to_owned()),
            ready_wait_max: READY_WAIT_DEFAULT,
            nodes,
        };
        let route = |node: usize| {
            format!(
                "\"nats-route://127.0.0.1:{}\"",
                cluster.nodes[node].ports.cluster
            )
        };
        let text = cluster.config_text(&cluster.nodes[0]);
        assert!(
            text.contains(&route(1)) && text.contains(&route(2)),
            "{text}"
        );
        assert!(!text.contains(&route(0)), "{text}");
        assert!(text
            .trim_end()
            .ends_with("accounts { A { jetstream: enabled } }"));

        // nats-server itself accepts the file (`-t` only checks the configuration).
        cluster.write_configs()?;
        let checked = std::process::Command::new(crate::nats_server_binary()?)
            .arg("-t")
            .arg("-c")
            .arg(cluster.nodes[0].process.config_path())
            .output()?;
        assert!(checked.status.success(), "{text}\n{checked:?}");
        Ok(())
    }

    #[test]
    fn http_responses_are_parsed() {
        let response = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{\"status\":\"unavailable\"}";
        let (status, body) = parse_http_response(response).expect("parsed");
        assert_eq!(status, 503);
        assert_eq!(body, "{\"status\":\"unavailable\"}");
        assert!(parse_http_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_http_response(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn a_cluster_of_fewer_than_two_nodes_is_refused() {
        for nodes in [0, 1] {
            match NatsCluster::start(NatsClusterOptions::default().with_nodes(nodes)) {
                Err(TestkitError::InvalidOptions { .. }) => {}
                other => panic!("expected InvalidOptions for {nodes} nodes, got {other:?}"),
            }
        }
    }
}
