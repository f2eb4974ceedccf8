//! What operators see of a running instance. [`Endpoints`] counts the requests, errors and
//! processing time of every request/reply endpoint the instance serves (commands, the log API,
//! queries, projector status and rebuild); [`serve_discovery`] answers the NATS services API
//! (`$SRV.PING|INFO|STATS`, ADR-32) with them and the instance's own status on
//! `crm.status.<id>`. The same requests feed the Prometheus metrics of [`metrics`] (one
//! instrumentation point: [`Timing::done`], [`Timing::done_command`]).

pub mod metrics;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap, Message};
use futures::stream::{select_all, BoxStream};
use futures::StreamExt;
use tokio::sync::watch;
use tracing::{info, warn};

use crm_wire::discovery::{
    EndpointInfo, EndpointStats, InfoResponse, InstanceStatus, PingResponse, ServiceIdentity,
    StatsResponse, Verb, INFO_RESPONSE_TYPE, PING_RESPONSE_TYPE, SERVICE_NAME, STATS_RESPONSE_TYPE,
};
use crm_wire::{ErrorCode, Subjects, HEADER_CONTENT_TYPE, JSON_CONTENT_TYPE};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("NATS subscribe to {subject} failed: {reason}")]
    Subscribe { subject: String, reason: String },
}

/// One request/reply endpoint and its counters.
#[derive(Debug)]
pub struct Endpoint {
    name: String,
    subject: String,
    queue_group: String,
    requests: AtomicU64,
    errors: AtomicU64,
    processing_nanos: AtomicU64,
    last_error: Mutex<String>,
    metrics: EndpointMetrics,
}

/// What an endpoint's requests count in the Prometheus metrics.
#[derive(Debug)]
enum EndpointMetrics {
    /// `crm_requests_total` and `crm_request_duration_seconds`, labelled by endpoint name.
    Requests(Box<metrics::RequestMetrics>),
    /// `crm_commands_total` and `crm_command_duration_seconds`, labelled by command.
    Commands(metrics::CommandMetrics),
}

impl Endpoint {
    /// Counts one answered request that took `elapsed`; `error` when the reply was a refusal
    /// (it carried the service error headers).
    pub fn record(&self, elapsed: Duration, error: Option<(ErrorCode, &str)>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.processing_nanos.fetch_add(nanos, Ordering::Relaxed);
        if let Some((code, text)) = error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
            *last = format!("{}:{text}", code.status());
        }
    }

    /// Counts one answered request in the stats and the Prometheus metrics; `command` is the
    /// index of the command's name for a command endpoint (`None`: not a command).
    fn finish(&self, elapsed: Duration, command: Option<usize>, error: Option<(ErrorCode, &str)>) {
        self.record(elapsed, error);
        let code = error.map(|(code, _)| code);
        let seconds = elapsed.as_secs_f64();
        match &self.metrics {
            EndpointMetrics::Requests(requests) => requests.record(&self.name, seconds, code),
            EndpointMetrics::Commands(commands) => commands.record(command, seconds, code),
        }
    }

    /// Starts timing one request.
    pub fn start(self: &Arc<Self>) -> Timing {
        Timing {
            endpoint: self.clone(),
            started: Instant::now(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> EndpointInfo {
        EndpointInfo {
            name: self.name.clone(),
            subject: self.subject.clone(),
            queue_group: self.queue_group.clone(),
            metadata: BTreeMap::new(),
        }
    }

    fn stats(&self, data: Option<serde_json::Value>) -> EndpointStats {
        let num_requests = self.requests.load(Ordering::Relaxed);
        let processing_time = self.processing_nanos.load(Ordering::Relaxed);
        EndpointStats {
            name: self.name.clone(),
            subject: self.subject.clone(),
            queue_group: self.queue_group.clone(),
            num_requests,
            num_errors: self.errors.load(Ordering::Relaxed),
            processing_time,
            average_processing_time: processing_time.checked_div(num_requests).unwrap_or(0),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            data,
        }
    }
}

/// One request being timed; [`Timing::done`] records it.
pub struct Timing {
    endpoint: Arc<Endpoint>,
    started: Instant,
}

impl Timing {
    /// The request was answered; `error` when the reply was a refusal.
    pub fn done(self, error: Option<(ErrorCode, &str)>) {
        self.endpoint.finish(self.started.elapsed(), None, error);
    }

    /// A command was answered: `command` is the index of its name in the names the endpoint
    /// was registered with ([`Instance::command_endpoint`]), `None` when the subject named no
    /// command.
    pub fn done_command(self, command: Option<usize>, error: Option<(ErrorCode, &str)>) {
        self.endpoint.finish(self.started.elapsed(), command, error);
    }
}

/// This process as an instance of the service: its id and the endpoints it serves. Cheap to
/// clone; every responder registers its endpoints here.
#[derive(Debug, Clone)]
pub struct Instance {
    inner: Arc<InstanceInner>,
}

#[derive(Debug)]
struct InstanceInner {
    id: String,
    started: chrono::DateTime<chrono::Utc>,
    endpoints: Mutex<Vec<Arc<Endpoint>>>,
}

impl Default for Instance {
    fn default() -> Instance {
        Instance::new()
    }
}

impl Instance {
    /// A new instance with a fresh random id (it names this process on the wire only).
    pub fn new() -> Instance {
        Instance {
            inner: Arc::new(InstanceInner {
                id: uuid::Uuid::new_v4().simple().to_string(),
                started: chrono::Utc::now(),
                endpoints: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// RFC 3339 start time.
    pub fn started(&self) -> String {
        self.inner
            .started
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    /// Registers an endpoint (`queue_group` empty when every instance gets every request).
    pub fn endpoint(&self, name: &str, subject: &str, queue_group: &str) -> Arc<Endpoint> {
        self.register(
            name,
            subject,
            queue_group,
            EndpointMetrics::Requests(Default::default()),
        )
    }

    /// Registers the command endpoint: its metrics are per command, `command_names` being
    /// every name a [`Timing::done_command`] index may refer to.
    pub fn command_endpoint(
        &self,
        name: &str,
        subject: &str,
        queue_group: &str,
        command_names: Vec<&'static str>,
    ) -> Arc<Endpoint> {
        self.register(
            name,
            subject,
            queue_group,
            EndpointMetrics::Commands(metrics::CommandMetrics::new(command_names)),
        )
    }

    fn register(
        &self,
        name: &str,
        subject: &str,
        queue_group: &str,
        metrics: EndpointMetrics,
    ) -> Arc<Endpoint> {
        let endpoint = Arc::new(Endpoint {
            name: name.to_owned(),
            subject: subject.to_owned(),
            queue_group: queue_group.to_owned(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            processing_nanos: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
            metrics,
        });
        self.inner
            .endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(endpoint.clone());
        endpoint
    }

    /// Waits until every endpoint named in `names` is registered (each responder registers
    /// its endpoints once it has subscribed), or `limit` has passed; says whether they all
    /// were. Readiness is announced only after the responders, spawned as tasks, subscribed.
    pub async fn wait_for_endpoints(&self, names: &[String], limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let registered = self.endpoints();
            if names
                .iter()
                .all(|name| registered.iter().any(|e| &e.name == name))
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.inner
            .endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What an instance says about itself, computed when asked.
pub type StatusFn = Arc<dyn Fn() -> InstanceStatus + Send + Sync>;

/// Service name, version and description of this build.
#[derive(Debug, Clone)]
pub struct ServiceDescription {
    pub version: String,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
}

/// Answers `$SRV.PING|INFO|STATS` (plain, `.crm` and `.crm.<id>`) and `crm.status.<id>` until
/// `shutdown` turns true. No queue group: every instance answers, so a scatter-gather request
/// sees them all.
pub async fn serve_discovery(
    client: Client,
    subjects: Subjects,
    instance: Instance,
    description: ServiceDescription,
    status: StatusFn,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), OpsError> {
    let id = instance.id().to_owned();
    let status_subject = subjects.instance_status(&id);
    #[derive(Clone, Copy)]
    enum Route {
        Srv(Verb),
        Status,
    }
    let mut routes: Vec<(String, Route)> = Verb::ALL
        .iter()
        .flat_map(|verb| {
            verb.subjects(SERVICE_NAME, &id)
                .into_iter()
                .map(|subject| (subject, Route::Srv(*verb)))
        })
        .collect();
    routes.push((status_subject.clone(), Route::Status));
    let mut streams: Vec<BoxStream<'static, (Route, Message)>> = Vec::new();
    for (subject, route) in routes {
        let subscriber =
            client
                .subscribe(subject.clone())
                .await
                .map_err(|e| OpsError::Subscribe {
                    subject: subject.clone(),
                    reason: e.to_string(),
                })?;
        streams.push(subscriber.map(move |m| (route, m)).boxed());
    }
    // Registered once subscribed, like every endpoint (readiness waits for registrations).
    let status_endpoint = instance.endpoint("status", &status_subject, "");
    let identity = ServiceIdentity {
        kind: String::new(),
        name: SERVICE_NAME.to_owned(),
        id: id.clone(),
        version: description.version.clone(),
        metadata: description.metadata.clone(),
    };
    info!(instance = %id, "discovery listening");
    let mut all = select_all(streams);
    loop {
        let next = tokio::select! {
            next = all.next() => next,
            _ = shutdown.wait_for(|stop| *stop) => None,
        };
        let Some((route, message)) = next else {
            return Ok(());
        };
        let timing = status_endpoint.start();
        let body = match route {
            Route::Srv(Verb::Ping) => serde_json::to_vec(&PingResponse {
                identity: identity.of(PING_RESPONSE_TYPE),
            }),
            Route::Srv(Verb::Info) => serde_json::to_vec(&InfoResponse {
                identity: identity.of(INFO_RESPONSE_TYPE),
                description: description.description.clone(),
                endpoints: instance.endpoints().iter().map(|e| e.info()).collect(),
            }),
            Route::Srv(Verb::Stats) => {
                let own = serde_json::to_value(status()).ok();
                serde_json::to_vec(&StatsResponse {
                    identity: identity.of(STATS_RESPONSE_TYPE),
                    started: instance.started(),
                    endpoints: instance
                        .endpoints()
                        .iter()
                        .map(|e| {
                            e.stats(if e.name == "status" {
                                own.clone()
                            } else {
                                None
                            })
                        })
                        .collect(),
                })
            }
            // Through a `Value`, so its keys come sorted like every other body's.
            Route::Status => serde_json::to_value(status()).and_then(|v| serde_json::to_vec(&v)),
        };
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_CONTENT_TYPE, JSON_CONTENT_TYPE);
        // Our own plain structs always serialize; an empty body would say something broke.
        let body = body.unwrap_or_default();
        if let Err(e) = client
            .publish_with_headers(reply, headers, body.into())
            .await
        {
            warn!(error = %e, "discovery reply not sent");
        }
        // Only the status subject is the `status` endpoint; $SRV requests are the API's own.
        if matches!(route, Route::Status) {
            timing.done(None);
        }
    }
}
