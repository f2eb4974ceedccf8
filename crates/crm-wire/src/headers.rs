//! Header names and values of the contract.

use crm_domain::ErrorCode;
use crm_domain::ExpectedVersion;

pub const HEADER_COMMAND_ID: &str = "Crm-Command-Id";
pub const HEADER_EXPECTED_VERSION: &str = "Crm-Expected-Version";
pub const HEADER_ACTOR: &str = "Crm-Actor";
pub const HEADER_CORRELATION_ID: &str = "Crm-Correlation-Id";
pub const HEADER_CONTENT_TYPE: &str = "Content-Type";
pub const HEADER_SERVICE_ERROR: &str = "Nats-Service-Error";
pub const HEADER_SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";
pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";
pub const HEADER_POSITION: &str = "Crm-Position";
pub const HEADER_STREAM: &str = "Crm-Stream";
pub const HEADER_VERSION: &str = "Crm-Version";
pub const HEADER_EVENT_TYPE: &str = "Crm-Event-Type";
pub const HEADER_SCHEMA_VERSION: &str = "Crm-Schema-Version";

/// Most bytes of `Crm-Actor` and `Crm-Correlation-Id`.
pub const METADATA_BYTES_MAX: usize = 256;

/// The NATS service error headers of a refusal (`Nats-Service-Error-Code`, `Nats-Service-Error`),
/// the message on one line: header values cannot hold line breaks; the body has the full text.
pub fn service_error_headers(code: ErrorCode, message: &str) -> [(&'static str, String); 2] {
    [
        (HEADER_SERVICE_ERROR_CODE, code.status().to_string()),
        (HEADER_SERVICE_ERROR, message.replace(['\r', '\n'], " ")),
    ]
}

/// Room kept for a reply's headers under the server's `max_payload`.
pub const REPLY_HEADER_BYTES_MAX: usize = 8 * 1024;

/// The largest reply body a connection may publish to a server announcing `max_payload`. A
/// larger one is a protocol violation: nats-server drops the whole connection, with every
/// subscription on it.
pub fn reply_bytes_max(max_payload: usize) -> usize {
    max_payload.saturating_sub(REPLY_HEADER_BYTES_MAX)
}

/// Parses `Crm-Expected-Version`: `any`, `no_stream`, `exists` or a version number.
pub fn parse_expected_version(value: &str) -> Option<ExpectedVersion> {
    match value.trim() {
        "any" => Some(ExpectedVersion::Any),
        "no_stream" => Some(ExpectedVersion::NoStream),
        "exists" => Some(ExpectedVersion::Exists),
        number => number.parse().ok().map(ExpectedVersion::Exact),
    }
}

/// The `Nats-Msg-Id` of the event at a log position: unique per position, stable forever.
pub fn msg_id_for_position(position: u64) -> String {
    format!("crm-pos-{position}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_version_vocabulary() {
        assert_eq!(parse_expected_version("any"), Some(ExpectedVersion::Any));
        assert_eq!(
            parse_expected_version("no_stream"),
            Some(ExpectedVersion::NoStream)
        );
        assert_eq!(
            parse_expected_version("exists"),
            Some(ExpectedVersion::Exists)
        );
        assert_eq!(parse_expected_version("3"), Some(ExpectedVersion::Exact(3)));
        assert_eq!(parse_expected_version("-1"), None);
        assert_eq!(parse_expected_version("latest"), None);
    }
}
