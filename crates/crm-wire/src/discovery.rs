//! Discovery and stats the NATS way: the services API (NATS ADR-32). Every `crm serve` and
//! `crm project` process is an instance of the service `crm` and answers `$SRV.PING`,
//! `$SRV.INFO` and `$SRV.STATS` (also under `.crm` and `.crm.<id>`), with these shapes.
//! Durations are integer nanoseconds, as the NATS clients read them.
//!
//! Each instance also answers its own status on `crm.status.<id>` (the same JSON is the `data`
//! of its `status` endpoint in `$SRV.STATS`), and its projectors' status and rebuild on
//! `crm.projector.<name>.status.<id>` / `.rebuild.<id>`, so an operator can address one
//! instance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::query::ProjectorStatus;
use crate::Subjects;

/// The service name every instance registers under.
pub const SERVICE_NAME: &str = "crm";
pub const PING_RESPONSE_TYPE: &str = "io.nats.micro.v1.ping_response";
pub const INFO_RESPONSE_TYPE: &str = "io.nats.micro.v1.info_response";
pub const STATS_RESPONSE_TYPE: &str = "io.nats.micro.v1.stats_response";

/// The three verbs of the services API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Ping,
    Info,
    Stats,
}

impl Verb {
    pub const ALL: [Verb; 3] = [Verb::Ping, Verb::Info, Verb::Stats];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Ping => "PING",
            Verb::Info => "INFO",
            Verb::Stats => "STATS",
        }
    }

    /// `$SRV.<VERB>`, `$SRV.<VERB>.<name>` and `$SRV.<VERB>.<name>.<id>`.
    pub fn subjects(self, name: &str, id: &str) -> [String; 3] {
        let verb = self.as_str();
        [
            format!("$SRV.{verb}"),
            format!("$SRV.{verb}.{name}"),
            format!("$SRV.{verb}.{name}.{id}"),
        ]
    }
}

/// What every reply of the three verbs starts with: its type, and who answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceIdentity {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub id: String,
    pub version: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl ServiceIdentity {
    /// The identity under a reply `kind` (one of the `*_RESPONSE_TYPE`s).
    pub fn of(&self, kind: &str) -> ServiceIdentity {
        ServiceIdentity {
            kind: kind.to_owned(),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingResponse {
    #[serde(flatten)]
    pub identity: ServiceIdentity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoResponse {
    #[serde(flatten)]
    pub identity: ServiceIdentity,
    pub description: String,
    pub endpoints: Vec<EndpointInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    pub name: String,
    pub subject: String,
    /// Empty when every instance gets every request (no queue group).
    pub queue_group: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsResponse {
    #[serde(flatten)]
    pub identity: ServiceIdentity,
    /// RFC 3339, when the instance started.
    pub started: String,
    pub endpoints: Vec<EndpointStats>,
}

impl StatsResponse {
    /// The instance's own status: the `data` of its `status` endpoint.
    pub fn instance_status(&self) -> Option<InstanceStatus> {
        let data = self
            .endpoints
            .iter()
            .find(|e| e.name == "status")?
            .data
            .clone()?;
        serde_json::from_value(data).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointStats {
    pub name: String,
    pub subject: String,
    pub queue_group: String,
    pub num_requests: u64,
    pub num_errors: u64,
    /// Nanoseconds spent answering, in all.
    pub processing_time: u64,
    pub average_processing_time: u64,
    /// `<code>:<message>` of the last error reply, empty when none.
    pub last_error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// What one instance reports about itself on `crm.status.<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub instance: String,
    /// `serve` (the command service, the log and maybe read models) or `project` (read models
    /// only).
    pub role: String,
    /// The subject prefix it serves (`crm`, or `crm.t.<tenant>` for a tenant): which
    /// installation it belongs to when one NATS account holds several.
    #[serde(default)]
    pub subject_prefix: String,
    pub version: String,
    pub started: String,
    /// The log, for a `serve` instance.
    pub log: Option<LogStatus>,
    pub read_models: Vec<ProjectorStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStatus {
    pub head: u64,
    /// Last position the tailer knows to be in the JetStream stream.
    pub published: u64,
    /// False once a flush failed: the log refuses appends until a restart, by design.
    pub writable: bool,
    /// Why the tailer stopped, if it did.
    pub tailer_error: Option<String>,
}

impl Subjects {
    /// `crm.status.<id>`: one instance's [`InstanceStatus`].
    pub fn instance_status(&self, id: &str) -> String {
        format!("{}.status.{id}", self.prefix())
    }

    /// `crm.projector.<name>.status.<id>`: one instance's projector status.
    pub fn instance_projector_status(&self, projection: &str, id: &str) -> String {
        format!("{}.{id}", self.projector_status(projection))
    }

    /// `crm.projector.<name>.rebuild.<id>`: a rebuild on one instance.
    pub fn instance_projector_rebuild(&self, projection: &str, id: &str) -> String {
        format!("{}.{id}", self.projector_rebuild(projection))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_services_api() {
        assert_eq!(
            Verb::Stats.subjects(SERVICE_NAME, "abc"),
            ["$SRV.STATS", "$SRV.STATS.crm", "$SRV.STATS.crm.abc"]
        );
        let subjects = Subjects::default();
        assert_eq!(subjects.instance_status("abc"), "crm.status.abc");
        assert_eq!(
            subjects.instance_projector_rebuild("kpis", "abc"),
            "crm.projector.kpis.rebuild.abc"
        );
    }

    #[test]
    fn stats_carry_the_instance_status_in_the_status_endpoint() {
        let status = InstanceStatus {
            instance: "abc".into(),
            subject_prefix: "crm".to_owned(),
            role: "serve".into(),
            version: "0.1.0".into(),
            started: "2026-12-02T00:00:00Z".into(),
            log: Some(LogStatus {
                head: 7,
                published: 7,
                writable: true,
                tailer_error: None,
            }),
            read_models: vec![],
        };
        let stats = StatsResponse {
            identity: ServiceIdentity {
                kind: STATS_RESPONSE_TYPE.into(),
                name: SERVICE_NAME.into(),
                id: "abc".into(),
                version: "0.1.0".into(),
                metadata: BTreeMap::new(),
            },
            started: "2026-12-02T00:00:00Z".into(),
            endpoints: vec![EndpointStats {
                name: "status".into(),
                subject: "crm.status.abc".into(),
                queue_group: String::new(),
                num_requests: 0,
                num_errors: 0,
                processing_time: 0,
                average_processing_time: 0,
                last_error: String::new(),
                data: Some(serde_json::to_value(&status).unwrap()),
            }],
        };
        let text = serde_json::to_string(&stats).unwrap();
        assert!(text.starts_with(r#"{"type":"io.nats.micro.v1.stats_response","#));
        let back: StatsResponse = serde_json::from_str(&text).unwrap();
        assert_eq!(back.instance_status(), Some(status));
    }
}
