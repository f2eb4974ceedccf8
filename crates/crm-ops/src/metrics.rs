//! Prometheus metrics of an instance, through the `metrics` facade: a no-op until the binary
//! installs a recorder (`crm serve --metrics-addr`), so with metrics off a request pays one
//! atomic load per handle, once. docs/OPERATIONS.md lists every metric.
//!
//! Hot-path handles are registered once and kept: an endpoint's on first use (its name is a
//! label), a command's per command name and outcome in [`CommandMetrics`]. Gauges that copy a
//! value the instance already keeps (log head, tailer, read models) are set from its status
//! once a period by [`sample_status`].

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use tokio::sync::watch;

use crm_wire::discovery::InstanceStatus;
use crm_wire::query::{ProjectorState, ProjectorStatus};
use crm_wire::ErrorCode;

use crate::StatusFn;

/// Requests answered by an endpoint other than commands; `endpoint`, `outcome` (`ok` or
/// `error`) and, for errors, `code`.
pub const REQUESTS_TOTAL: &str = "crm_requests_total";
/// Time from receiving a request to its reply being handed to NATS; `endpoint`.
pub const REQUEST_DURATION_SECONDS: &str = "crm_request_duration_seconds";
/// Commands answered; `command`, `outcome` (`accepted` or `rejected`) and, for rejections,
/// `code`.
pub const COMMANDS_TOTAL: &str = "crm_commands_total";
/// Time from receiving a command to its reply being handed to NATS; `command`, `outcome`.
pub const COMMAND_DURATION_SECONDS: &str = "crm_command_duration_seconds";
pub const LOG_HEAD_POSITION: &str = "crm_log_head_position";
pub const LOG_WRITABLE: &str = "crm_log_writable";
pub const TAILER_PUBLISHED_POSITION: &str = "crm_tailer_published_position";
pub const TAILER_LAG_EVENTS: &str = "crm_tailer_lag_events";
pub const TAILER_FAILED: &str = "crm_tailer_failed";
pub const READ_MODEL_CHECKPOINT_POSITION: &str = "crm_read_model_checkpoint_position";
pub const READ_MODEL_LAG_EVENTS: &str = "crm_read_model_lag_events";
pub const READ_MODEL_LAG_SECONDS: &str = "crm_read_model_lag_seconds";
pub const READ_MODEL_STATE: &str = "crm_read_model_state";
pub const READ_MODEL_REBUILDING: &str = "crm_read_model_rebuilding";
pub const READ_MODEL_REBUILD_POSITION: &str = "crm_read_model_rebuild_position";
pub const READ_MODEL_REBUILD_HEAD_POSITION: &str = "crm_read_model_rebuild_head_position";
pub const READ_MODEL_REBUILDS_COMPLETED_TOTAL: &str = "crm_read_model_rebuilds_completed_total";

/// The label of a command subject that names no command (so stray subjects cannot add series).
pub const UNKNOWN_COMMAND: &str = "unknown";

/// Every state a read model reports, as its `state` label.
const STATES: [(ProjectorState, &str); 5] = [
    (ProjectorState::Starting, "starting"),
    (ProjectorState::Running, "running"),
    (ProjectorState::Rebuilding, "rebuilding"),
    (ProjectorState::Stalled, "stalled"),
    (ProjectorState::Failed, "failed"),
];

const CODES: usize = ErrorCode::ALL.len();

fn code_index(code: ErrorCode) -> usize {
    ErrorCode::ALL
        .iter()
        .position(|c| *c == code)
        .unwrap_or_default()
}

/// The help texts of this crate's metrics (the `# HELP` lines). Call once after installing a
/// recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS_TOTAL,
        "Requests answered per endpoint (queries, log API, status, rebuild) and outcome"
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        "Seconds from a request's arrival to its reply, per endpoint"
    );
    describe_counter!(
        COMMANDS_TOTAL,
        "Commands answered per command and outcome (rejections with their code)"
    );
    describe_histogram!(
        COMMAND_DURATION_SECONDS,
        "Seconds from a command's arrival to its reply (after the durable append), per command and outcome"
    );
    describe_gauge!(LOG_HEAD_POSITION, "Last durable position of the event log");
    describe_gauge!(
        LOG_WRITABLE,
        "1 while the log takes appends, 0 once a failed flush made it read-only"
    );
    describe_gauge!(
        TAILER_PUBLISHED_POSITION,
        "Last log position known to be in JetStream"
    );
    describe_gauge!(
        TAILER_LAG_EVENTS,
        "Events in the log not yet published to JetStream"
    );
    describe_gauge!(
        TAILER_FAILED,
        "1 when the tailer stopped or retries on an error that needs an operator"
    );
    describe_gauge!(
        READ_MODEL_CHECKPOINT_POSITION,
        "Position stored with the read model's changes"
    );
    describe_gauge!(
        READ_MODEL_LAG_EVENTS,
        "Events between the newest log position the read model knows and its checkpoint"
    );
    describe_gauge!(
        READ_MODEL_LAG_SECONDS,
        "Event time between the newest event known and the last applied"
    );
    describe_gauge!(
        READ_MODEL_STATE,
        "1 for the read model's current state, 0 for the others"
    );
    describe_gauge!(
        READ_MODEL_REBUILDING,
        "1 while a rebuild runs beside the live model"
    );
    describe_gauge!(
        READ_MODEL_REBUILD_POSITION,
        "Position the running rebuild has folded up to (0 when none runs)"
    );
    describe_gauge!(
        READ_MODEL_REBUILD_HEAD_POSITION,
        "Log head the running rebuild folds up to (0 when none runs)"
    );
    describe_counter!(
        READ_MODEL_REBUILDS_COMPLETED_TOTAL,
        "Rebuilds swapped in since the process started"
    );
}

/// The request metrics of one endpoint, registered on first use.
#[derive(Debug, Default)]
pub(crate) struct RequestMetrics {
    ok: OnceLock<Counter>,
    errors: [OnceLock<Counter>; CODES],
    duration: OnceLock<Histogram>,
}

impl RequestMetrics {
    pub(crate) fn record(&self, endpoint: &str, seconds: f64, error: Option<ErrorCode>) {
        let counter = match error {
            None => self.ok.get_or_init(|| {
                metrics::counter!(REQUESTS_TOTAL, "endpoint" => endpoint.to_owned(), "outcome" => "ok")
            }),
            Some(code) => self.errors[code_index(code)].get_or_init(|| {
                metrics::counter!(
                    REQUESTS_TOTAL,
                    "endpoint" => endpoint.to_owned(),
                    "outcome" => "error",
                    "code" => code.as_str()
                )
            }),
        };
        counter.increment(1);
        self.duration
            .get_or_init(
                || metrics::histogram!(REQUEST_DURATION_SECONDS, "endpoint" => endpoint.to_owned()),
            )
            .record(seconds);
    }
}

/// The command metrics of one command name, registered on first use.
#[derive(Debug, Default)]
struct CommandSlots {
    accepted: OnceLock<(Counter, Histogram)>,
    rejected: [OnceLock<Counter>; CODES],
    rejected_duration: OnceLock<Histogram>,
}

/// The metrics of the command endpoint: per command name (an index into the names given at
/// registration) and outcome.
#[derive(Debug)]
pub struct CommandMetrics {
    names: Vec<&'static str>,
    /// One per name, then one for [`UNKNOWN_COMMAND`].
    slots: Vec<CommandSlots>,
}

impl CommandMetrics {
    pub(crate) fn new(names: Vec<&'static str>) -> CommandMetrics {
        let slots = (0..=names.len()).map(|_| CommandSlots::default()).collect();
        CommandMetrics { names, slots }
    }

    pub(crate) fn record(&self, command: Option<usize>, seconds: f64, error: Option<ErrorCode>) {
        let index = command
            .filter(|i| *i < self.names.len())
            .unwrap_or(self.names.len());
        let name = self.names.get(index).copied().unwrap_or(UNKNOWN_COMMAND);
        let Some(slots) = self.slots.get(index) else {
            return;
        };
        match error {
            None => {
                let (counter, duration) = slots.accepted.get_or_init(|| {
                    (
                        metrics::counter!(COMMANDS_TOTAL, "command" => name, "outcome" => "accepted"),
                        metrics::histogram!(
                            COMMAND_DURATION_SECONDS,
                            "command" => name,
                            "outcome" => "accepted"
                        ),
                    )
                });
                counter.increment(1);
                duration.record(seconds);
            }
            Some(code) => {
                slots.rejected[code_index(code)]
                    .get_or_init(|| {
                        metrics::counter!(
                            COMMANDS_TOTAL,
                            "command" => name,
                            "outcome" => "rejected",
                            "code" => code.as_str()
                        )
                    })
                    .increment(1);
                slots
                    .rejected_duration
                    .get_or_init(|| {
                        metrics::histogram!(
                            COMMAND_DURATION_SECONDS,
                            "command" => name,
                            "outcome" => "rejected"
                        )
                    })
                    .record(seconds);
            }
        }
    }
}

/// The gauges of one read model.
struct ReadModelGauges {
    checkpoint: Gauge,
    lag_events: Gauge,
    lag_seconds: Gauge,
    states: [(ProjectorState, Gauge); STATES.len()],
    rebuilding: Gauge,
    rebuild_position: Gauge,
    rebuild_head: Gauge,
    rebuilds_completed: Counter,
}

impl ReadModelGauges {
    fn new(name: &str) -> ReadModelGauges {
        let label = || ("read_model", name.to_owned());
        let gauge = |metric: &'static str| {
            let (key, value) = label();
            metrics::gauge!(metric, key => value)
        };
        ReadModelGauges {
            checkpoint: gauge(READ_MODEL_CHECKPOINT_POSITION),
            lag_events: gauge(READ_MODEL_LAG_EVENTS),
            lag_seconds: gauge(READ_MODEL_LAG_SECONDS),
            states: STATES.map(|(state, state_name)| {
                (
                    state,
                    metrics::gauge!(READ_MODEL_STATE, "read_model" => name.to_owned(), "state" => state_name),
                )
            }),
            rebuilding: gauge(READ_MODEL_REBUILDING),
            rebuild_position: gauge(READ_MODEL_REBUILD_POSITION),
            rebuild_head: gauge(READ_MODEL_REBUILD_HEAD_POSITION),
            rebuilds_completed: metrics::counter!(
                READ_MODEL_REBUILDS_COMPLETED_TOTAL,
                "read_model" => name.to_owned()
            ),
        }
    }

    fn set(&self, status: &ProjectorStatus) {
        self.checkpoint.set(status.checkpoint as f64);
        self.lag_events.set(status.lag_events as f64);
        self.lag_seconds.set(status.lag_seconds);
        for (state, gauge) in &self.states {
            gauge.set(if *state == status.state { 1.0 } else { 0.0 });
        }
        let (rebuilding, position, head) = match &status.rebuild {
            Some(rebuild) => (1.0, rebuild.position as f64, rebuild.head as f64),
            None => (0.0, 0.0, 0.0),
        };
        self.rebuilding.set(rebuilding);
        self.rebuild_position.set(position);
        self.rebuild_head.set(head);
        self.rebuilds_completed.absolute(status.rebuilds_completed);
    }
}

/// Sets the gauges that copy an instance's status: the log and tailer (for `crm serve`) and
/// every read model.
#[derive(Default)]
pub struct StatusGauges {
    log: Option<[Gauge; 5]>,
    read_models: HashMap<String, ReadModelGauges>,
}

impl StatusGauges {
    pub fn new() -> StatusGauges {
        StatusGauges::default()
    }

    pub fn set(&mut self, status: &InstanceStatus) {
        if let Some(log) = &status.log {
            let [head, writable, published, lag, failed] = self.log.get_or_insert_with(|| {
                [
                    metrics::gauge!(LOG_HEAD_POSITION),
                    metrics::gauge!(LOG_WRITABLE),
                    metrics::gauge!(TAILER_PUBLISHED_POSITION),
                    metrics::gauge!(TAILER_LAG_EVENTS),
                    metrics::gauge!(TAILER_FAILED),
                ]
            });
            head.set(log.head as f64);
            writable.set(if log.writable { 1.0 } else { 0.0 });
            published.set(log.published as f64);
            lag.set(log.head.saturating_sub(log.published) as f64);
            failed.set(if log.tailer_error.is_some() { 1.0 } else { 0.0 });
        }
        for read_model in &status.read_models {
            self.read_models
                .entry(read_model.name.clone())
                .or_insert_with(|| ReadModelGauges::new(&read_model.name))
                .set(read_model);
        }
    }
}

/// Copies the instance's status into the gauges every `period` until `shutdown` turns true.
/// Spawn it only with a recorder installed: without one it would compute the status for
/// nothing.
pub async fn sample_status(
    status: StatusFn,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut gauges = StatusGauges::new();
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => gauges.set(&status()),
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    use super::*;
    use crate::Instance;
    use crm_wire::discovery::LogStatus;
    use crm_wire::query::RebuildProgress;

    /// Every metric of a snapshot as `name{k=v,...}` (labels sorted) -> value.
    fn snapshot(snapshotter: &Snapshotter) -> HashMap<String, DebugValue> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                (format!("{}{{{}}}", key.name(), labels.join(",")), value)
            })
            .collect()
    }

    fn counter(values: &HashMap<String, DebugValue>, key: &str) -> u64 {
        match values.get(key) {
            Some(DebugValue::Counter(n)) => *n,
            other => panic!("{key}: {other:?} in {values:?}"),
        }
    }

    fn gauge(values: &HashMap<String, DebugValue>, key: &str) -> f64 {
        match values.get(key) {
            Some(DebugValue::Gauge(v)) => v.0,
            other => panic!("{key}: {other:?} in {values:?}"),
        }
    }

    fn observations(values: &HashMap<String, DebugValue>, key: &str) -> usize {
        match values.get(key) {
            Some(DebugValue::Histogram(v)) => v.len(),
            other => panic!("{key}: {other:?} in {values:?}"),
        }
    }

    #[test]
    fn requests_are_counted_per_endpoint_and_outcome_with_their_latency() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let instance = Instance::new();
            let endpoint = instance.endpoint("query.kpi.get", "crm.query.kpi.get", "q");
            endpoint.start().done(None);
            endpoint.start().done(None);
            endpoint
                .start()
                .done(Some((ErrorCode::Unavailable, "not yet")));
        });
        let values = snapshot(&snapshotter);
        assert_eq!(
            counter(
                &values,
                "crm_requests_total{endpoint=query.kpi.get,outcome=ok}"
            ),
            2
        );
        assert_eq!(
            counter(
                &values,
                "crm_requests_total{code=unavailable,endpoint=query.kpi.get,outcome=error}"
            ),
            1
        );
        assert_eq!(
            observations(
                &values,
                "crm_request_duration_seconds{endpoint=query.kpi.get}"
            ),
            3
        );
    }

    #[test]
    fn commands_are_counted_per_name_and_outcome_and_stray_subjects_as_unknown() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let instance = Instance::new();
            let endpoint = instance.command_endpoint(
                "commands",
                "crm.cmd.>",
                "crm",
                vec!["CreateLead", "ScoreLead"],
            );
            endpoint.start().done_command(Some(0), None);
            endpoint.start().done_command(Some(1), None);
            endpoint.start().done_command(Some(1), None);
            endpoint
                .start()
                .done_command(Some(0), Some((ErrorCode::AlreadyExists, "exists")));
            endpoint
                .start()
                .done_command(None, Some((ErrorCode::UnknownCommand, "no")));
            endpoint
                .start()
                .done_command(Some(7), Some((ErrorCode::UnknownCommand, "no")));
            // The $SRV stats count them all, as before.
            assert_eq!(endpoint.stats(None).num_requests, 6);
            assert_eq!(endpoint.stats(None).num_errors, 3);
        });
        let values = snapshot(&snapshotter);
        assert_eq!(
            counter(
                &values,
                "crm_commands_total{command=CreateLead,outcome=accepted}"
            ),
            1
        );
        assert_eq!(
            counter(
                &values,
                "crm_commands_total{command=ScoreLead,outcome=accepted}"
            ),
            2
        );
        assert_eq!(
            counter(
                &values,
                "crm_commands_total{code=already_exists,command=CreateLead,outcome=rejected}"
            ),
            1
        );
        assert_eq!(
            counter(
                &values,
                "crm_commands_total{code=unknown_command,command=unknown,outcome=rejected}"
            ),
            2
        );
        assert_eq!(
            observations(
                &values,
                "crm_command_duration_seconds{command=ScoreLead,outcome=accepted}"
            ),
            2
        );
        assert_eq!(
            observations(
                &values,
                "crm_command_duration_seconds{command=unknown,outcome=rejected}"
            ),
            2
        );
        assert!(!values.keys().any(|k| k.starts_with("crm_requests_total")));
    }

    fn read_model(state: ProjectorState, rebuild: Option<RebuildProgress>) -> ProjectorStatus {
        ProjectorStatus {
            name: "kpis".to_owned(),
            state,
            checkpoint: 40,
            log_head: 50,
            lag_events: 10,
            lag_seconds: 2.5,
            error: None,
            rebuild,
            rebuilds_completed: 3,
            last_rebuild_error: None,
        }
    }

    #[test]
    fn status_gauges_copy_the_log_the_tailer_and_each_read_model() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let mut status = InstanceStatus {
            instance: "i".to_owned(),
            subject_prefix: "crm".to_owned(),
            role: "serve".to_owned(),
            version: "0".to_owned(),
            started: String::new(),
            log: Some(LogStatus {
                head: 50,
                published: 45,
                writable: true,
                tailer_error: None,
            }),
            read_models: vec![read_model(
                ProjectorState::Running,
                Some(RebuildProgress {
                    position: 20,
                    head: 50,
                    events_per_second: 1.0,
                    eta_seconds: 30.0,
                    error: None,
                }),
            )],
        };
        let mut gauges = StatusGauges::new();
        metrics::with_local_recorder(&recorder, || gauges.set(&status));
        let values = snapshot(&snapshotter);
        assert_eq!(gauge(&values, "crm_log_head_position{}"), 50.0);
        assert_eq!(gauge(&values, "crm_tailer_published_position{}"), 45.0);
        assert_eq!(gauge(&values, "crm_tailer_lag_events{}"), 5.0);
        assert_eq!(gauge(&values, "crm_log_writable{}"), 1.0);
        assert_eq!(gauge(&values, "crm_tailer_failed{}"), 0.0);
        let kpis = |name: &str| format!("{name}{{read_model=kpis}}");
        assert_eq!(
            gauge(&values, &kpis("crm_read_model_checkpoint_position")),
            40.0
        );
        assert_eq!(gauge(&values, &kpis("crm_read_model_lag_events")), 10.0);
        assert_eq!(gauge(&values, &kpis("crm_read_model_lag_seconds")), 2.5);
        assert_eq!(gauge(&values, &kpis("crm_read_model_rebuilding")), 1.0);
        assert_eq!(
            gauge(&values, &kpis("crm_read_model_rebuild_position")),
            20.0
        );
        assert_eq!(
            gauge(&values, &kpis("crm_read_model_rebuild_head_position")),
            50.0
        );
        assert_eq!(
            counter(&values, &kpis("crm_read_model_rebuilds_completed_total")),
            3
        );
        for (_, state) in STATES {
            let expected = if state == "running" { 1.0 } else { 0.0 };
            let key = format!("crm_read_model_state{{read_model=kpis,state={state}}}");
            assert_eq!(gauge(&values, &key), expected, "{state}");
        }

        // The next sample: the rebuild is over, the model failed, the log went read-only.
        status.read_models = vec![read_model(ProjectorState::Failed, None)];
        if let Some(log) = &mut status.log {
            log.writable = false;
            log.tailer_error = Some("stream ahead".to_owned());
        }
        metrics::with_local_recorder(&recorder, || gauges.set(&status));
        let values = snapshot(&snapshotter);
        assert_eq!(gauge(&values, "crm_log_writable{}"), 0.0);
        assert_eq!(gauge(&values, "crm_tailer_failed{}"), 1.0);
        assert_eq!(gauge(&values, &kpis("crm_read_model_rebuilding")), 0.0);
        assert_eq!(
            gauge(&values, &kpis("crm_read_model_rebuild_position")),
            0.0
        );
        assert_eq!(
            gauge(
                &values,
                "crm_read_model_state{read_model=kpis,state=failed}"
            ),
            1.0
        );
        assert_eq!(
            gauge(
                &values,
                "crm_read_model_state{read_model=kpis,state=running}"
            ),
            0.0
        );
    }
}
