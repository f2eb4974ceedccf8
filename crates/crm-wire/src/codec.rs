//! JSON and bincode codecs for command bodies and replies, with size limits.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crm_domain::command::{BodyDecoder, BodyEncoder};
use crm_domain::{Aggregate, Command};

use crate::reply::{Accepted, CommandReply, Rejected};

pub const JSON_CONTENT_TYPE: &str = "application/json";
pub const BINCODE_CONTENT_TYPE: &str = "application/x-bincode";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentType {
    #[default]
    Json,
    Bincode,
}

impl ContentType {
    /// Parses a `Content-Type` header; parameters such as `; charset=utf-8` are ignored.
    pub fn parse(value: Option<&str>) -> Result<ContentType, WireError> {
        let Some(value) = value else {
            return Ok(ContentType::Json);
        };
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(JSON_CONTENT_TYPE) || media.is_empty() {
            Ok(ContentType::Json)
        } else if media.eq_ignore_ascii_case(BINCODE_CONTENT_TYPE) {
            Ok(ContentType::Bincode)
        } else {
            Err(WireError::UnsupportedContentType {
                content_type: value.chars().take(100).collect(),
            })
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => JSON_CONTENT_TYPE,
            ContentType::Bincode => BINCODE_CONTENT_TYPE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("body of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    TooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("unknown command `{name}` for aggregate `{aggregate}`")]
    UnknownCommand { aggregate: Aggregate, name: String },
    #[error("malformed body: {reason}")]
    Malformed { reason: String },
    #[error("unsupported content type `{content_type}`")]
    UnsupportedContentType { content_type: String },
}

/// The wire's bincode: crm-domain's message configuration (the same bytes as event payloads).
pub(crate) fn wire_bincode(limit_bytes: usize) -> impl Options {
    crm_domain::codec::message_bincode(limit_bytes as u64)
}

fn malformed(reason: impl ToString) -> WireError {
    WireError::Malformed {
        reason: reason.to_string(),
    }
}

struct Decoder<'a> {
    body: &'a [u8],
    content_type: ContentType,
    limit_bytes: usize,
}

impl BodyDecoder for Decoder<'_> {
    type Error = WireError;

    fn decode<T: DeserializeOwned>(&self) -> Result<T, WireError> {
        match self.content_type {
            ContentType::Json => serde_json::from_slice(self.body).map_err(malformed),
            ContentType::Bincode => wire_bincode(self.limit_bytes)
                .deserialize(self.body)
                .map_err(malformed),
        }
    }
}

/// Decodes the body of command `name` of `aggregate`, refusing bodies above `limit_bytes`.
pub fn decode_command(
    aggregate: Aggregate,
    name: &str,
    body: &[u8],
    content_type: ContentType,
    limit_bytes: usize,
) -> Result<Command, WireError> {
    if body.len() > limit_bytes {
        return Err(WireError::TooLarge {
            size_bytes: body.len(),
            limit_bytes,
        });
    }
    let decoder = Decoder {
        body,
        content_type,
        limit_bytes,
    };
    Command::decode_named(aggregate, name, &decoder).unwrap_or_else(|| {
        Err(WireError::UnknownCommand {
            aggregate,
            name: name.chars().take(100).collect(),
        })
    })
}

struct Encoder(ContentType);

impl BodyEncoder for Encoder {
    type Output = Vec<u8>;

    fn encode<T: Serialize>(self, body: &T) -> Vec<u8> {
        match self.0 {
            // Plain data structures always serialize; an empty body would be refused loudly.
            ContentType::Json => serde_json::to_vec(body).unwrap_or_default(),
            ContentType::Bincode => wire_bincode(usize::MAX).serialize(body).unwrap_or_default(),
        }
    }
}

/// Encodes a command's body (without its name: that goes in the subject).
pub fn encode_command(command: &Command, content_type: ContentType) -> Vec<u8> {
    command.encode_body(Encoder(content_type))
}

/// The idempotency hash of a command: SHA-256 over its name and its canonical bincode body,
/// so the same command sent as JSON with other key order or as bincode hashes the same.
pub fn request_hash(command: &Command) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(command.name().as_bytes());
    hasher.update([0]);
    hasher.update(encode_command(command, ContentType::Bincode));
    hasher.finalize().into()
}

/// bincode cannot carry the internally tagged JSON shape; this is the reply's bincode form.
#[derive(Serialize, Deserialize)]
enum BincodeReply {
    Accepted(Accepted),
    Rejected(Rejected),
}

pub fn encode_reply(reply: &CommandReply, content_type: ContentType) -> Vec<u8> {
    match content_type {
        ContentType::Json => serde_json::to_vec(reply).unwrap_or_default(),
        ContentType::Bincode => {
            let wire = match reply.clone() {
                CommandReply::Accepted(a) => BincodeReply::Accepted(a),
                CommandReply::Rejected(r) => BincodeReply::Rejected(r),
            };
            wire_bincode(usize::MAX)
                .serialize(&wire)
                .unwrap_or_default()
        }
    }
}

pub fn decode_reply(body: &[u8], content_type: ContentType) -> Result<CommandReply, WireError> {
    match content_type {
        ContentType::Json => serde_json::from_slice(body).map_err(malformed),
        ContentType::Bincode => {
            let wire: BincodeReply = wire_bincode(crate::COMMAND_BYTES_MAX_DEFAULT)
                .deserialize(body)
                .map_err(malformed)?;
            Ok(match wire {
                BincodeReply::Accepted(a) => CommandReply::Accepted(a),
                BincodeReply::Rejected(r) => CommandReply::Rejected(r),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::ErrorCode;
    use uuid::Uuid;

    const LEAD: &str =
        r#"{"lead_id":"0190f1b2-0000-7000-8000-000000000001","name":"Ada","source":"web"}"#;

    #[test]
    fn json_and_bincode_bodies_decode_to_the_same_command_and_hash() {
        let json = decode_command(
            Aggregate::Lead,
            "CreateLead",
            LEAD.as_bytes(),
            ContentType::Json,
            crate::COMMAND_BYTES_MAX_DEFAULT,
        )
        .unwrap();
        let bin = encode_command(&json, ContentType::Bincode);
        let back = decode_command(
            Aggregate::Lead,
            "CreateLead",
            &bin,
            ContentType::Bincode,
            crate::COMMAND_BYTES_MAX_DEFAULT,
        )
        .unwrap();
        assert_eq!(json, back);
        let reordered =
            r#"{"source":"web","name":"Ada","lead_id":"0190f1b2-0000-7000-8000-000000000001"}"#;
        let other = decode_command(
            Aggregate::Lead,
            "CreateLead",
            reordered.as_bytes(),
            ContentType::Json,
            crate::COMMAND_BYTES_MAX_DEFAULT,
        )
        .unwrap();
        assert_eq!(request_hash(&json), request_hash(&other));
    }

    #[test]
    fn refuses_oversized_unknown_and_malformed_bodies() {
        assert!(matches!(
            decode_command(
                Aggregate::Lead,
                "CreateLead",
                LEAD.as_bytes(),
                ContentType::Json,
                10
            ),
            Err(WireError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_command(
                Aggregate::Lead,
                "CloseTicket",
                b"{}",
                ContentType::Json,
                100
            ),
            Err(WireError::UnknownCommand { .. })
        ));
        assert!(matches!(
            decode_command(
                Aggregate::Lead,
                "CreateLead",
                b"{\"lead_id\":",
                ContentType::Json,
                100
            ),
            Err(WireError::Malformed { .. })
        ));
        let mut bin = encode_command(
            &decode_command(
                Aggregate::Lead,
                "CreateLead",
                LEAD.as_bytes(),
                ContentType::Json,
                crate::COMMAND_BYTES_MAX_DEFAULT,
            )
            .unwrap(),
            ContentType::Bincode,
        );
        bin.push(0);
        assert!(matches!(
            decode_command(
                Aggregate::Lead,
                "CreateLead",
                &bin,
                ContentType::Bincode,
                crate::COMMAND_BYTES_MAX_DEFAULT
            ),
            Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn replies_have_the_contract_shape_and_round_trip() {
        let accepted = CommandReply::Accepted(Accepted {
            command_id: Uuid::nil(),
            stream: "lead-x".into(),
            version: 3,
            first_position: 41,
            last_position: 41,
            duplicate: false,
        });
        let json: serde_json::Value =
            serde_json::from_slice(&encode_reply(&accepted, ContentType::Json)).unwrap();
        assert_eq!(json["status"], "accepted");
        assert_eq!(json["first_position"], 41);
        let rejected = CommandReply::rejected(
            Some(Uuid::nil()),
            ErrorCode::InvalidTransition,
            "no",
            Some(3),
        );
        let json: serde_json::Value =
            serde_json::from_slice(&encode_reply(&rejected, ContentType::Json)).unwrap();
        assert_eq!(json["status"], "rejected");
        assert_eq!(json["code"], "invalid_transition");
        assert_eq!(json["current_version"], 3);
        for reply in [accepted, rejected] {
            for ct in [ContentType::Json, ContentType::Bincode] {
                assert_eq!(decode_reply(&encode_reply(&reply, ct), ct).unwrap(), reply);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            for (aggregate, name) in Command::NAMES {
                let _ = decode_command(*aggregate, name, &body, ContentType::Bincode, crate::COMMAND_BYTES_MAX_DEFAULT);
                let _ = decode_command(*aggregate, name, &body, ContentType::Json, crate::COMMAND_BYTES_MAX_DEFAULT);
            }
        }
    }
}
