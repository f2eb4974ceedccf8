//! The public NATS contract of `docs/NATS_API.md`, in one place: subjects, headers,
//! request and reply bodies, the JSON and bincode codecs, error codes and limits.
//! Both the service and Rust clients use this crate, so they cannot drift apart.

mod codec;
pub mod discovery;
mod headers;
mod log_api;
mod nats_server;
pub mod query;
mod reply;
mod subjects;
mod tenant;

pub use codec::{
    decode_command, decode_reply, encode_command, encode_reply, request_hash, ContentType,
    WireError, BINCODE_CONTENT_TYPE, JSON_CONTENT_TYPE,
};
pub use crm_domain::{ErrorCode, ExpectedVersion};
pub use headers::*;
pub use log_api::{
    LogEventJson, LogHeadReply, LogReadFormat, LogReadReply, LogReadRequest,
    LOG_READ_REPLY_BYTES_MAX,
};
pub use nats_server::{NatsServerVersion, NATS_SERVER_VERSION_MIN};
pub use reply::{Accepted, CommandReply, Rejected};
pub use subjects::{CommandSubject, Subjects, DEFAULT_PREFIX};
pub use tenant::{Tenant, TenantError, TENANT_NAME_BYTES_MAX, TENANT_TOKEN, TENANT_TOKEN_POSITION};

/// Largest command body accepted by default (docs/DESIGN.md rule 15).
pub const COMMAND_BYTES_MAX_DEFAULT: usize = 64 * 1024;
/// nats-server's default `max_payload`: the largest message a server accepts unless told
/// otherwise.
pub const NATS_MAX_PAYLOAD_DEFAULT: usize = 1024 * 1024;

// A command at the default limit, with its headers, fits through a default server.
const _: () =
    assert!(COMMAND_BYTES_MAX_DEFAULT + REPLY_HEADER_BYTES_MAX <= NATS_MAX_PAYLOAD_DEFAULT);
// Whatever a default server delivers stays within what the event codec encodes.
const _: () = assert!(NATS_MAX_PAYLOAD_DEFAULT as u64 <= crm_domain::codec::PAYLOAD_BYTES_MAX);
/// The JetStream stream the tailer publishes to.
pub const EVENTS_STREAM: &str = "CRM_EVENTS";
/// The queue group of the command service: several instances share the load.
pub const COMMAND_QUEUE_GROUP: &str = "crm-command-service";
/// The queue group of the log read API.
pub const LOG_QUEUE_GROUP: &str = "crm-log";
/// Most events one `crm.log.read` returns.
pub const LOG_READ_EVENTS_MAX: u64 = 1000;
