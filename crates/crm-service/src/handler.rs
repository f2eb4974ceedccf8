//! One command, start to finish: decode, check idempotency, load state, decide, append,
//! reply. Transport-free, so it is tested without NATS; `server.rs` feeds it from NATS.

use std::sync::Arc;

use crm_domain::{codec, decide, evolve, Aggregate, Command, Context, ErrorCode, State, Timestamp};
use crm_eventlog::{
    AppendOutcome, AppendRequest, EventLog, ExpectedVersion, LogError, NewEvent, RequestError,
    StreamAppend,
};
use crm_wire::{
    decode_command, parse_expected_version, request_hash, Accepted, CommandReply, ContentType,
    Subjects, WireError, METADATA_BYTES_MAX,
};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::cache::{Cached, StateCache, StreamLocks};

#[derive(Debug, Clone)]
pub struct HandlerConfig {
    pub subjects: Subjects,
    /// Largest accepted command body.
    pub command_bytes_max: usize,
    /// Aggregate states kept in memory.
    pub cache_entries_max: usize,
    /// Records read per page when a stream is loaded on a cache miss.
    pub load_page_events_max: usize,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            subjects: Subjects::default(),
            command_bytes_max: crm_wire::COMMAND_BYTES_MAX_DEFAULT,
            cache_entries_max: 100_000,
            load_page_events_max: 1024,
        }
    }
}

/// A command as it arrived: subject, the contract's headers, body.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandRequest<'a> {
    pub subject: &'a str,
    pub command_id: Option<&'a str>,
    pub expected_version: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

pub struct CommandHandler {
    log: EventLog,
    config: HandlerConfig,
    cache: StateCache,
    locks: StreamLocks,
}

/// One decoded command on its way to the log.
struct Attempt<'a> {
    command_id: Uuid,
    hash: [u8; 32],
    command: &'a Command,
    stream: &'a str,
    expected: ExpectedVersion,
    actor: Option<String>,
    correlation_id: Option<String>,
}

/// A refusal on its way to the caller.
struct Refusal {
    code: ErrorCode,
    message: String,
    current_version: Option<u64>,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
        current_version: None,
    }
}

impl CommandHandler {
    pub fn new(log: EventLog, config: HandlerConfig) -> Arc<CommandHandler> {
        Arc::new(CommandHandler {
            cache: StateCache::new(config.cache_entries_max),
            locks: StreamLocks::default(),
            log,
            config,
        })
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    pub fn subjects(&self) -> &Subjects {
        &self.config.subjects
    }

    /// Handles one command; the reply is sent in the request's content type (JSON when the
    /// content type itself is not understood).
    pub async fn handle(&self, request: CommandRequest<'_>) -> (CommandReply, ContentType) {
        let content_type = ContentType::parse(request.content_type);
        let reply_type = content_type.clone().unwrap_or(ContentType::Json);
        let command_id = request
            .command_id
            .and_then(|id| Uuid::parse_str(id.trim()).ok());
        let reply = match self.handle_inner(request, content_type).await {
            Ok(accepted) => CommandReply::Accepted(accepted),
            Err(refusal) => CommandReply::rejected(
                command_id,
                refusal.code,
                refusal.message,
                refusal.current_version,
            ),
        };
        (reply, reply_type)
    }

    async fn handle_inner(
        &self,
        request: CommandRequest<'_>,
        content_type: Result<ContentType, WireError>,
    ) -> Result<Accepted, Refusal> {
        let subject = self
            .config
            .subjects
            .parse_command(request.subject)
            .ok_or_else(|| {
                refuse(
                    ErrorCode::UnknownCommand,
                    format!("`{}` is not a command subject", request.subject),
                )
            })?;
        if !Command::NAMES.contains(&(subject.aggregate, subject.command)) {
            return Err(refuse(
                ErrorCode::UnknownCommand,
                format!(
                    "unknown command `{}` for {}",
                    subject.command, subject.aggregate
                ),
            ));
        }
        let command_id = match request.command_id.map(str::trim) {
            None | Some("") => {
                return Err(refuse(
                    ErrorCode::MissingCommandId,
                    "the Crm-Command-Id header (a UUID) is required",
                ))
            }
            Some(id) => Uuid::parse_str(id)
                .map_err(|_| refuse(ErrorCode::Malformed, "Crm-Command-Id must be a UUID"))?,
        };
        let expected = match request.expected_version {
            None => ExpectedVersion::Any,
            Some(value) => parse_expected_version(value).ok_or_else(|| {
                refuse(
                    ErrorCode::Malformed,
                    "Crm-Expected-Version must be any, no_stream, exists or a version number",
                )
            })?,
        };
        let actor = bounded_header("Crm-Actor", request.actor)?;
        let correlation_id = bounded_header("Crm-Correlation-Id", request.correlation_id)?;
        let content_type = content_type.map_err(wire_refusal)?;
        let command = decode_command(
            subject.aggregate,
            subject.command,
            request.body,
            content_type,
            self.config.command_bytes_max,
        )
        .map_err(wire_refusal)?;
        let hash = request_hash(&command);
        let stream = command.stream();

        // Same-stream commands run one at a time; a retry of one command id targets the
        // same stream, so it is decided only after its original has finished.
        let _guard = self.locks.lock(&stream).await;
        let attempt = Attempt {
            command_id,
            hash,
            command: &command,
            stream: &stream,
            expected,
            actor,
            correlation_id,
        };
        match self.decide_and_append(attempt).await {
            Ok(accepted) => Ok(accepted),
            // A refusal may be a retry whose original changed the state it is decided on
            // (a second CreateLead is `already_exists`): the original's outcome answers it.
            // Accepted retries are recognised by the log's writer, so the happy path pays no
            // extra lookup.
            Err(refusal) => match self.previous_outcome(command_id, &hash)? {
                Some(original) => Ok(original),
                None => Err(refusal),
            },
        }
    }

    async fn decide_and_append(&self, attempt: Attempt<'_>) -> Result<Accepted, Refusal> {
        let Attempt {
            command_id,
            hash,
            command,
            stream,
            expected,
            actor,
            correlation_id,
        } = attempt;
        let stream = stream.to_owned();
        let cached = self.load(&stream, command.aggregate())?;
        if !expected.admits(cached.version) {
            return Err(Refusal {
                code: ErrorCode::WrongExpectedVersion,
                message: format!(
                    "{stream} is at version {}, expected {expected}",
                    cached.version
                ),
                current_version: Some(cached.version),
            });
        }
        let pipeline = match command.pipeline_needed(cached.state.lead_pipeline()) {
            Some(name) => match self
                .load(
                    &crm_domain::types::pipeline_stream(&name),
                    Aggregate::Pipeline,
                )?
                .state
            {
                State::Pipeline(pipeline) => pipeline,
                _ => None,
            },
            None => None,
        };
        let context = Context {
            now: now(),
            pipeline,
        };
        let decision = decide(&cached.state, command, &context).map_err(|rejection| Refusal {
            code: rejection.code(),
            message: rejection.to_string(),
            current_version: Some(cached.version),
        })?;

        let mut streams = Vec::with_capacity(decision.appends.len());
        for (i, append) in decision.appends.iter().enumerate() {
            let expected = if append.must_be_new || (i == 0 && cached.version == 0) {
                ExpectedVersion::NoStream
            } else if i == 0 {
                ExpectedVersion::Exact(cached.version)
            } else {
                ExpectedVersion::Any
            };
            streams.push(StreamAppend {
                stream: append.stream.clone(),
                expected,
                events: append
                    .events
                    .iter()
                    .map(|event| {
                        let payload = codec::encode_event(decision.occurred_at, event)
                            .map_err(|e| refuse(ErrorCode::PayloadTooLarge, e.to_string()))?;
                        Ok(NewEvent {
                            event_type: event.event_type().to_owned(),
                            schema_version: event.schema_version(),
                            payload,
                        })
                    })
                    .collect::<Result<_, Refusal>>()?,
            });
        }
        let append = AppendRequest {
            command_id,
            request_hash: hash,
            actor,
            correlation_id,
            causation_id: None,
            streams,
        };
        // The other streams a decision writes (the customer a WinLead registers) are locked
        // too, so no command on them reads and caches their state around this append. Only
        // creating commands write a second stream, and none of them takes a lead's lock, so
        // the order lead -> customer cannot deadlock.
        let mut other_guards = Vec::new();
        for other in decision.appends.iter().skip(1) {
            other_guards.push(self.locks.lock(&other.stream).await);
        }
        let outcome = match self.log.append(append).await {
            Ok(outcome) => outcome,
            Err(error) => return Err(self.append_refusal(error, &stream, cached.version)),
        };
        if !outcome.duplicate {
            let mut state = cached.state;
            for event in decision.appends[0].events.iter() {
                state = evolve(state, event);
            }
            let version = outcome.streams.first().map_or(0, |s| s.last_version);
            self.cache.put(stream.clone(), Cached { state, version });
            for other in decision.appends.iter().skip(1) {
                self.cache.remove(&other.stream);
            }
        } else {
            // Another instance or an earlier attempt recorded it: our cached state is stale.
            self.cache.remove(&stream);
        }
        debug!(%command_id, stream = %stream, first_position = outcome.first_position, last_position = outcome.last_position, duplicate = outcome.duplicate, "command appended");
        Ok(accepted(command_id, &outcome))
    }

    fn previous_outcome(
        &self,
        command_id: Uuid,
        hash: &[u8; 32],
    ) -> Result<Option<Accepted>, Refusal> {
        match self.log.command_outcome(command_id) {
            Ok(None) => Ok(None),
            Ok(Some((stored_hash, _))) if &stored_hash != hash => Err(refuse(
                ErrorCode::IdempotencyKeyReused,
                format!("command id {command_id} was already used for a different command"),
            )),
            Ok(Some((_, mut outcome))) => {
                outcome.duplicate = true;
                Ok(Some(accepted(command_id, &outcome)))
            }
            Err(error) => Err(log_refusal(&error)),
        }
    }

    /// The state of `stream` from the cache, or by reading the stream on a miss.
    fn load(&self, stream: &str, aggregate: Aggregate) -> Result<Cached, Refusal> {
        if let Some(cached) = self.cache.get(stream) {
            return Ok(cached);
        }
        let mut state = State::empty(aggregate);
        let mut version = 0;
        loop {
            let page = self
                .log
                .read_stream(stream, version + 1, self.config.load_page_events_max)
                .map_err(|e| log_refusal(&e))?;
            let full = page.len() >= self.config.load_page_events_max;
            for record in &page {
                let stamped = codec::decode_event(&record.event_type, record.schema_version, &record.payload)
                    .map_err(|e| {
                        warn!(position = record.position, stream, error = %e, "undecodable event in stream");
                        refuse(ErrorCode::Unavailable, format!("event at position {} cannot be decoded: {e}", record.position))
                    })?;
                state = evolve(state, &stamped.event);
                version = record.stream_version;
            }
            if !full || page.is_empty() {
                break;
            }
        }
        let cached = Cached { state, version };
        self.cache.put_if_newer(stream.to_owned(), cached.clone());
        Ok(cached)
    }

    fn append_refusal(&self, error: LogError, stream: &str, loaded_version: u64) -> Refusal {
        match error {
            LogError::WrongExpectedVersion {
                stream: failed,
                current,
                ..
            } => {
                self.cache.remove(&failed);
                if failed == stream {
                    Refusal {
                        code: ErrorCode::WrongExpectedVersion,
                        message: format!("{stream} moved from version {loaded_version} to {current} meanwhile; retry"),
                        current_version: Some(current),
                    }
                } else {
                    refuse(ErrorCode::AlreadyExists, format!("{failed} already exists"))
                }
            }
            LogError::IdempotencyKeyReused { command_id } => refuse(
                ErrorCode::IdempotencyKeyReused,
                format!("command id {command_id} was already used for a different command"),
            ),
            LogError::InvalidRequest(
                RequestError::PayloadTooLarge { .. } | RequestError::RecordTooLarge { .. },
            ) => refuse(ErrorCode::PayloadTooLarge, error.to_string()),
            LogError::InvalidRequest(_) => refuse(ErrorCode::ValidationFailed, error.to_string()),
            other => log_refusal(&other),
        }
    }
}

fn accepted(command_id: Uuid, outcome: &AppendOutcome) -> Accepted {
    let primary = outcome.streams.first();
    Accepted {
        command_id,
        stream: primary.map(|s| s.stream.clone()).unwrap_or_default(),
        version: primary.map_or(0, |s| s.last_version),
        first_position: outcome.first_position,
        last_position: outcome.last_position,
        duplicate: outcome.duplicate,
    }
}

fn log_refusal(error: &LogError) -> Refusal {
    warn!(error = %error, "event log refused");
    refuse(
        ErrorCode::Unavailable,
        format!("the event log is unavailable: {error}"),
    )
}

fn wire_refusal(error: WireError) -> Refusal {
    let code = match &error {
        WireError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
        WireError::UnknownCommand { .. } => ErrorCode::UnknownCommand,
        WireError::Malformed { .. } | WireError::UnsupportedContentType { .. } => {
            ErrorCode::Malformed
        }
    };
    refuse(code, error.to_string())
}

fn bounded_header(name: &str, value: Option<&str>) -> Result<Option<String>, Refusal> {
    match value {
        Some(value) if value.len() > METADATA_BYTES_MAX => Err(refuse(
            ErrorCode::Malformed,
            format!("{name} is longer than {METADATA_BYTES_MAX} bytes"),
        )),
        Some(value) if !value.is_empty() => Ok(Some(value.to_owned())),
        _ => Ok(None),
    }
}

/// The time of recording: read here, at the edge, never in the domain.
fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now()).unwrap_or_default()
}
