//! The read side of the contract: the query envelope (`min_position`, `timeout_ms`, the
//! `position` every reply carries, typed refusals) and the projector's status and rebuild
//! subjects (docs/DESIGN.md rule 12).
//!
//! The bodies were `serde_json::Value` maps before they were typed, and `Value` objects keep
//! their keys sorted: the structs below declare their fields in that alphabetical order so
//! the bytes on the wire stay what clients already parse.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crm_domain::ErrorCode;

use crate::Subjects;

/// Largest query body: a query is a request from another service like a command, and is held
/// to the same default limit.
pub const QUERY_BYTES_MAX: usize = crate::COMMAND_BYTES_MAX_DEFAULT;
/// How long a query waits for `min_position` when it gives no `timeout_ms`.
pub const QUERY_TIMEOUT_MS_DEFAULT: u64 = 2_000;
/// The longest wait a query may ask for.
pub const QUERY_TIMEOUT_MS_MAX: u64 = 60_000;
/// The queue group of the query responders (and the projector status and rebuild subjects).
pub const QUERY_QUEUE_GROUP: &str = "crm-query";

impl Subjects {
    /// `crm.projector.<name>.status`: a [`ProjectorStatus`] for any request.
    pub fn projector_status(&self, projection: &str) -> String {
        format!("{}.projector.{projection}.status", self.prefix())
    }

    /// `crm.projector.<name>.rebuild`: starts a rebuild beside the live model; replies a
    /// [`RebuildReply`].
    pub fn projector_rebuild(&self, projection: &str) -> String {
        format!("{}.projector.{projection}.rebuild", self.prefix())
    }
}

/// The durable JetStream consumer of projection `projection` on the events stream.
pub fn projector_consumer(projection: &str) -> String {
    format!("crm-proj-{projection}")
}

/// The durable consumer of read replica `replica` (1, 2, ...) of `projection`: the first is
/// [`projector_consumer`], the others `crm-proj-<name>-r<replica>`.
pub fn replica_consumer(projection: &str, replica: u32) -> String {
    match replica {
        0 | 1 => projector_consumer(projection),
        n => format!("crm-proj-{projection}-r{n}"),
    }
}

/// `status` of a reply body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyStatus {
    Accepted,
    Rejected,
}

/// The read-your-writes part of a query request (`crm.query.<name>`). The rest of the body
/// belongs to the query itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryEnvelope {
    /// Answer only from a model at this log position or later.
    pub min_position: Option<u64>,
    /// How long to wait for `min_position`.
    pub timeout_ms: Option<u64>,
}

impl QueryEnvelope {
    /// Parses a request body: empty (or blank) is `{}`; otherwise a JSON object whose
    /// `min_position` and `timeout_ms`, when present and not null, are non-negative integers.
    /// Returns the envelope and the whole body, which the query reads its own fields from.
    pub fn parse(payload: &[u8]) -> Result<(QueryEnvelope, Value), QueryRefusal> {
        if payload.len() > QUERY_BYTES_MAX {
            return Err(QueryRefusal::RequestTooLarge {
                bytes_max: QUERY_BYTES_MAX,
            });
        }
        let body = if payload.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            match serde_json::from_slice(payload) {
                Ok(value @ Value::Object(_)) => value,
                Ok(_) => return Err(QueryRefusal::NotAnObject),
                Err(e) => return Err(QueryRefusal::BadJson(e.to_string())),
            }
        };
        let number = |field: &'static str| -> Result<Option<u64>, QueryRefusal> {
            match body.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value
                    .as_u64()
                    .map(Some)
                    .ok_or(QueryRefusal::NotANonNegativeInteger(field)),
            }
        };
        let envelope = QueryEnvelope {
            min_position: number("min_position")?,
            timeout_ms: number("timeout_ms")?,
        };
        // The read model sees only its own fields.
        let mut body = body;
        if let Value::Object(fields) = &mut body {
            fields.remove("min_position");
            fields.remove("timeout_ms");
        }
        Ok((envelope, body))
    }

    /// The wait for `min_position`: the default when not given, at most the maximum.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
            .unwrap_or(QUERY_TIMEOUT_MS_DEFAULT)
            .min(QUERY_TIMEOUT_MS_MAX)
    }
}

/// Why a query (or the reply to one) was refused. Its text is the `message` of the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryRefusal {
    #[error("query above {bytes_max} bytes")]
    RequestTooLarge { bytes_max: usize },
    #[error("a query body is a JSON object")]
    NotAnObject,
    #[error("query body: {0}")]
    BadJson(String),
    #[error("`{0}` must be a non-negative integer")]
    NotANonNegativeInteger(&'static str),
    #[error("the {model} read model reached position {position}, not {min_position}, within {timeout_ms} ms")]
    PositionNotReached {
        model: String,
        position: u64,
        min_position: u64,
        timeout_ms: u64,
    },
    /// The projection's own refusals.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Malformed(String),
    #[error("unknown query {0}")]
    UnknownQuery(String),
    /// The read model's store failed a read while answering: no answer built on it goes out.
    #[error("the read model's store cannot be read: {0}")]
    StoreUnreadable(String),
    /// Publishing it would make the server drop the connection and every subscription on it.
    #[error("the reply would be {bytes} bytes, above the {bytes_max} bytes NATS carries here; ask for a smaller page (`limit`)")]
    ReplyTooLarge { bytes: usize, bytes_max: usize },
}

impl QueryRefusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            QueryRefusal::RequestTooLarge { .. } | QueryRefusal::ReplyTooLarge { .. } => {
                ErrorCode::PayloadTooLarge
            }
            QueryRefusal::NotAnObject
            | QueryRefusal::BadJson(_)
            | QueryRefusal::NotANonNegativeInteger(_)
            | QueryRefusal::Malformed(_) => ErrorCode::Malformed,
            QueryRefusal::PositionNotReached { .. } | QueryRefusal::StoreUnreadable(_) => {
                ErrorCode::Unavailable
            }
            QueryRefusal::NotFound(_) => ErrorCode::NotFound,
            QueryRefusal::UnknownQuery(_) => ErrorCode::UnknownCommand,
        }
    }
}

/// A refused query: `{"code","message","position","status":"rejected"}`. `position` is the
/// model's position when the refusal was decided, null when none applies (a refused reply
/// to a status request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryRejection {
    pub code: ErrorCode,
    pub message: String,
    pub position: Option<u64>,
    pub status: ReplyStatus,
}

impl QueryRejection {
    pub fn new(refusal: &QueryRefusal, position: Option<u64>) -> QueryRejection {
        QueryRejection {
            code: refusal.code(),
            message: refusal.to_string(),
            position,
            status: ReplyStatus::Rejected,
        }
    }
}

/// An answered query: the projection's body with the `position` its model reflects. An
/// object body gets `position` among its own keys (sorted, as every body); any other body
/// becomes `{"position": .., "result": ..}`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryReply {
    pub position: u64,
    pub data: Value,
}

impl Serialize for QueryReply {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.data {
            Value::Object(fields) => {
                // `position` takes its sorted place and replaces a field of that name.
                let others = fields.iter().filter(|(key, _)| key.as_str() != "position");
                let length = others.clone().count() + 1;
                let mut map = serializer.serialize_map(Some(length))?;
                let mut position_written = false;
                for (key, value) in others {
                    if !position_written && key.as_str() > "position" {
                        map.serialize_entry("position", &self.position)?;
                        position_written = true;
                    }
                    map.serialize_entry(key, value)?;
                }
                if !position_written {
                    map.serialize_entry("position", &self.position)?;
                }
                map.end()
            }
            other => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("position", &self.position)?;
                map.serialize_entry("result", other)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for QueryReply {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = Map::deserialize(deserializer)?;
        let position = fields
            .remove("position")
            .and_then(|p| p.as_u64())
            .ok_or_else(|| serde::de::Error::missing_field("position"))?;
        Ok(QueryReply {
            position,
            data: Value::Object(fields),
        })
    }
}

/// A projector's state, as its status reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectorState {
    Starting,
    Running,
    Rebuilding,
    Stalled,
    Failed,
}

/// What an operator sees of a projector (`crm.projector.<name>.status`). Fields in wire
/// (alphabetical) order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectorStatus {
    pub checkpoint: u64,
    pub error: Option<String>,
    pub lag_events: u64,
    /// Event time (recorded-at) between the newest event known in the log and the last one
    /// applied; 0 when caught up.
    pub lag_seconds: f64,
    /// Why the last rebuild failed, if it did (the live model stayed).
    pub last_rebuild_error: Option<String>,
    pub log_head: u64,
    pub name: String,
    /// A rebuild running beside the live model, if any.
    pub rebuild: Option<RebuildProgress>,
    /// Rebuilds swapped in since this process started.
    pub rebuilds_completed: u64,
    pub state: ProjectorState,
}

/// Progress of a rebuild running beside the live model. Fields in wire (alphabetical) order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebuildProgress {
    pub error: Option<String>,
    pub eta_seconds: f64,
    pub events_per_second: f64,
    pub head: u64,
    pub position: u64,
}

/// A rebuild request (`crm.projector.<name>.rebuild`): the body is ignored, empty or `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildRequest {}

/// `rebuild` of an accepted rebuild request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebuildStarted {
    Started,
}

/// The reply to a rebuild request: `{"rebuild":"started","status":"accepted"}` or
/// `{"code","message","status":"rejected"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RebuildReply {
    Accepted {
        rebuild: RebuildStarted,
        status: ReplyStatus,
    },
    Rejected {
        code: ErrorCode,
        message: String,
        status: ReplyStatus,
    },
}

impl RebuildReply {
    pub fn accepted() -> RebuildReply {
        RebuildReply::Accepted {
            rebuild: RebuildStarted::Started,
            status: ReplyStatus::Accepted,
        }
    }

    /// A refused request; a running or already requested rebuild is an invalid transition.
    pub fn rejected(message: impl Into<String>) -> RebuildReply {
        RebuildReply::Rejected {
            code: ErrorCode::InvalidTransition,
            message: message.into(),
            status: ReplyStatus::Rejected,
        }
    }

    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            RebuildReply::Accepted { .. } => None,
            RebuildReply::Rejected { code, .. } => Some(*code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The bytes the former `json!` bodies gave: a `Value` map serialised.
    fn via_value<T: Serialize>(value: &T) -> Vec<u8> {
        serde_json::to_vec(&serde_json::to_value(value).unwrap()).unwrap()
    }

    #[test]
    fn envelopes_parse_like_before() {
        assert_eq!(
            QueryEnvelope::parse(b"  ").unwrap(),
            (QueryEnvelope::default(), json!({}))
        );
        let (envelope, body) =
            QueryEnvelope::parse(br#"{"min_position":7,"timeout_ms":null,"id":1}"#).unwrap();
        assert_eq!(envelope.min_position, Some(7));
        assert_eq!(envelope.timeout_ms(), QUERY_TIMEOUT_MS_DEFAULT);
        assert_eq!(body, json!({"id": 1}), "the model sees only its own fields");
        let (envelope, _) = QueryEnvelope::parse(br#"{"timeout_ms":999999999}"#).unwrap();
        assert_eq!(envelope.timeout_ms(), QUERY_TIMEOUT_MS_MAX);
        let refused = |payload: &[u8]| QueryEnvelope::parse(payload).unwrap_err();
        assert_eq!(refused(b"[1]").to_string(), "a query body is a JSON object");
        assert!(refused(b"{").to_string().starts_with("query body: "));
        assert_eq!(
            refused(br#"{"min_position":-1,"timeout_ms":"x"}"#).to_string(),
            "`min_position` must be a non-negative integer"
        );
        assert_eq!(
            refused(&vec![b' '; QUERY_BYTES_MAX + 1]).code(),
            ErrorCode::PayloadTooLarge
        );
    }

    #[test]
    fn bodies_keep_their_former_bytes() {
        let refusal = QueryRefusal::PositionNotReached {
            model: "kpis".into(),
            position: 3,
            min_position: 9,
            timeout_ms: 100,
        };
        let rejection = QueryRejection::new(&refusal, Some(3));
        let before = json!({"status": "rejected", "code": ErrorCode::Unavailable, "message": refusal.to_string(), "position": 3});
        assert_eq!(
            serde_json::to_vec(&rejection).unwrap(),
            serde_json::to_vec(&before).unwrap()
        );
        let no_position = QueryRejection::new(
            &QueryRefusal::ReplyTooLarge {
                bytes: 10,
                bytes_max: 5,
            },
            None,
        );
        let before = json!({"status": "rejected", "code": "payload_too_large", "message": no_position.message, "position": Value::Null});
        assert_eq!(
            serde_json::to_vec(&no_position).unwrap(),
            serde_json::to_vec(&before).unwrap()
        );

        for data in [
            json!({"customer": {"id": 1}, "next": null}),
            json!({"a": 1, "position": 99, "z": 2}),
            json!({}),
            json!([1, 2]),
        ] {
            let reply = QueryReply { position: 5, data };
            let before = match reply.data.clone() {
                Value::Object(mut fields) => {
                    fields.insert("position".to_owned(), json!(5));
                    Value::Object(fields)
                }
                other => json!({"position": 5, "result": other}),
            };
            assert_eq!(
                serde_json::to_vec(&reply).unwrap(),
                serde_json::to_vec(&before).unwrap()
            );
        }
        let parsed: QueryReply = serde_json::from_slice(br#"{"a":1,"position":5}"#).unwrap();
        assert_eq!(parsed.position, 5);
        assert_eq!(parsed.data, json!({"a": 1}));

        let accepted = RebuildReply::accepted();
        assert_eq!(
            serde_json::to_vec(&accepted).unwrap(),
            serde_json::to_vec(&json!({"status": "accepted", "rebuild": "started"})).unwrap()
        );
        let rejected = RebuildReply::rejected("a rebuild is already running");
        assert_eq!(
            serde_json::to_vec(&rejected).unwrap(),
            serde_json::to_vec(&json!({"status": "rejected", "code": ErrorCode::InvalidTransition, "message": "a rebuild is already running"})).unwrap()
        );
        for reply in [accepted, rejected] {
            let back: RebuildReply =
                serde_json::from_slice(&serde_json::to_vec(&reply).unwrap()).unwrap();
            assert_eq!(back, reply);
        }

        let status = ProjectorStatus {
            checkpoint: 4,
            error: None,
            lag_events: 1,
            lag_seconds: 0.5,
            last_rebuild_error: Some("no".into()),
            log_head: 5,
            name: "kpis".into(),
            rebuild: Some(RebuildProgress {
                error: None,
                eta_seconds: 1.0,
                events_per_second: 2.5,
                head: 5,
                position: 4,
            }),
            rebuilds_completed: 0,
            state: ProjectorState::Rebuilding,
        };
        assert_eq!(serde_json::to_vec(&status).unwrap(), via_value(&status));
        let back: ProjectorStatus =
            serde_json::from_slice(&serde_json::to_vec(&status).unwrap()).unwrap();
        assert_eq!(back, status);
    }

    #[test]
    fn projector_subjects() {
        let subjects = Subjects::default();
        assert_eq!(subjects.query("kpi.get"), "crm.query.kpi.get");
        assert_eq!(
            subjects.projector_status("kpis"),
            "crm.projector.kpis.status"
        );
        assert_eq!(
            subjects.projector_rebuild("kpis"),
            "crm.projector.kpis.rebuild"
        );
        assert_eq!(projector_consumer("kpis"), "crm-proj-kpis");
    }
}
