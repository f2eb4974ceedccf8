//! The one place the system's bincode configurations are defined (docs/DESIGN.md rule 6), and the
//! encoding of event payloads.
//!
//! bincode (pinned at =1.3.3) is not self-describing: its options decide the bytes, so every
//! caller takes one of the two configurations below and none builds its own. Changing either
//! changes stored and wire bytes: don't; add a schema version and an upcaster instead.
//!
//! - [`message_bincode`]: variable-length integers, little-endian. Event payloads (this
//!   module), bincode command bodies and replies, and `crm.log.read` replies (crm-wire).
//! - [`record_bincode`]: fixed-width integers, little-endian. Read-model records in
//!   projection stores (crm-projector's record codec, the kpis store).
//!
//! Both refuse trailing bytes and take a byte limit, which does not change the bytes: encoding
//! above it fails. (Decoding from a slice is bounded by the slice: bincode 1.3.3 ignores the
//! limit there, and serde preallocates sequences only cautiously.)
//!
//! Payload = [`message_bincode`] of `(occurred_at_us: i64, body)`. Every event type has a
//! schema version; bytes of an older version go through the upcasters below, version by
//! version, before they are decoded as the current type. Golden fixtures under
//! `tests/fixtures/events` must decode forever.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::event::{Event, StampedEvent};
use crate::time::Timestamp;

/// Upper bound on one event payload, whatever the log is configured to store: NATS's default
/// `max_payload` (1 MiB), above any command body the service can receive by default.
pub const PAYLOAD_BYTES_MAX: u64 = 1024 * 1024;

/// The bincode of messages: variable-length integers, little-endian, no trailing bytes,
/// encoding at most `bytes_max` bytes. Event payloads, command bodies and replies, log read replies.
pub fn message_bincode(bytes_max: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_little_endian()
        .with_limit(bytes_max)
        .reject_trailing_bytes()
}

/// The bincode of read-model records: fixed-width integers, little-endian, no trailing bytes,
/// encoding at most `bytes_max` bytes. Equal records give equal bytes, so rebuilds are
/// byte-identical.
pub fn record_bincode(bytes_max: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(bytes_max)
        .reject_trailing_bytes()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("unknown event type `{event_type}`")]
    UnknownEventType { event_type: String },
    #[error(
        "event type `{event_type}` has schema version {found}; this build reads up to {current}"
    )]
    UnknownSchemaVersion {
        event_type: String,
        found: u16,
        current: u16,
    },
    #[error("`{event_type}` cannot be encoded: {reason}")]
    Unencodable { event_type: String, reason: String },
    #[error("payload of `{event_type}` v{schema_version} does not decode: {reason}")]
    Malformed {
        event_type: String,
        schema_version: u16,
        reason: String,
    },
}

/// Encodes an event and its business time as a log payload. Fails only above
/// [`PAYLOAD_BYTES_MAX`]: the caller refuses the command rather than store a damaged payload.
pub fn encode_event(occurred_at: Timestamp, event: &Event) -> Result<Vec<u8>, CodecError> {
    event
        .encode_with(Encoder { occurred_at })
        .map_err(|e| CodecError::Unencodable {
            event_type: event.event_type().to_owned(),
            reason: e.to_string(),
        })
}

/// Decodes a payload written as `event_type` at `schema_version`, upcasting older versions.
pub fn decode_event(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Result<StampedEvent, CodecError> {
    decode_upcasting(
        event_type,
        schema_version,
        payload,
        OLDEST_SCHEMA_VERSION,
        upcaster,
    )
}

/// Versions start at 1; 0 is only ever written by the tests' pretend upcaster.
const OLDEST_SCHEMA_VERSION: u16 = 1;

/// Rewrites one payload from version `n` to `n + 1` (the `(occurred_at_us, body)` pair).
type Upcaster = fn(&[u8]) -> Result<Vec<u8>, bincode::Error>;

/// The decoding loop, with the upcaster table as a parameter so the tests can run it over a
/// pretend older version (every real type is still at version 1).
fn decode_upcasting(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
    oldest: u16,
    upcasters: fn(&str, u16) -> Option<Upcaster>,
) -> Result<StampedEvent, CodecError> {
    let current =
        current_schema_version(event_type).ok_or_else(|| CodecError::UnknownEventType {
            event_type: event_type.to_owned(),
        })?;
    if schema_version < oldest || schema_version > current {
        return Err(CodecError::UnknownSchemaVersion {
            event_type: event_type.to_owned(),
            found: schema_version,
            current,
        });
    }
    let malformed = |reason: String| CodecError::Malformed {
        event_type: event_type.to_owned(),
        schema_version,
        reason,
    };
    let mut bytes = std::borrow::Cow::Borrowed(payload);
    for version in schema_version..current {
        let step =
            upcasters(event_type, version).ok_or_else(|| CodecError::UnknownSchemaVersion {
                event_type: event_type.to_owned(),
                found: version,
                current,
            })?;
        bytes = std::borrow::Cow::Owned(
            step(&bytes).map_err(|e| malformed(format!("upcasting from v{version}: {e}")))?,
        );
    }
    let mut occurred_at = Timestamp::default();
    let event = Event::decode_current(
        event_type,
        Decoder {
            bytes: &bytes,
            occurred_at: &mut occurred_at,
        },
    )
    .ok_or_else(|| CodecError::UnknownEventType {
        event_type: event_type.to_owned(),
    })?
    .map_err(|e| malformed(e.to_string()))?;
    Ok(StampedEvent { occurred_at, event })
}

/// The schema version this build writes for `event_type`.
pub fn current_schema_version(event_type: &str) -> Option<u16> {
    Event::TYPES
        .iter()
        .find(|(_, name, _)| *name == event_type)
        .map(|(_, _, version)| *version)
}

/// The upcaster of `event_type` from `from_version` to `from_version + 1`.
///
/// Every event type is at version 1 today, so none exists yet. Adding version 2 of a type
/// means: keep the v1 struct here (private), add an arm returning a function that decodes it
/// with [`message_bincode`]`(PAYLOAD_BYTES_MAX)` and encodes the v2 shape, bump the version in `event.rs`, and commit a v2
/// golden fixture beside the v1 one. The tests run the loop over a pretend v0 the same way.
fn upcaster(_event_type: &str, _from_version: u16) -> Option<Upcaster> {
    None
}

pub(crate) trait PayloadEncoder {
    type Output;
    fn encode<T: Serialize>(self, body: &T) -> Self::Output;
}

pub(crate) trait PayloadDecoder {
    type Error: std::fmt::Display;
    fn decode<T: DeserializeOwned>(self) -> Result<T, Self::Error>;
}

struct Encoder {
    occurred_at: Timestamp,
}

impl PayloadEncoder for Encoder {
    type Output = Result<Vec<u8>, bincode::Error>;

    fn encode<T: Serialize>(self, body: &T) -> Self::Output {
        message_bincode(PAYLOAD_BYTES_MAX).serialize(&(self.occurred_at.as_micros(), body))
    }
}

struct Decoder<'a> {
    bytes: &'a [u8],
    occurred_at: &'a mut Timestamp,
}

impl PayloadDecoder for Decoder<'_> {
    type Error = bincode::Error;

    fn decode<T: DeserializeOwned>(self) -> Result<T, bincode::Error> {
        let (micros, body): (i64, T) =
            message_bincode(PAYLOAD_BYTES_MAX).deserialize(self.bytes)?;
        *self.occurred_at = Timestamp::from_micros(micros);
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LeadQualified, TicketClosed};
    use uuid::Uuid;

    #[test]
    fn the_two_configurations_give_their_documented_bytes() {
        let value = (300u64, "a".to_owned());
        let message = message_bincode(64).serialize(&value).unwrap();
        assert_eq!(message, [251, 44, 1, 1, b'a']);
        let record = record_bincode(64).serialize(&value).unwrap();
        assert_eq!(
            record,
            [44, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, b'a']
        );
        for (bytes, decoded) in [
            (
                &message,
                message_bincode(64).deserialize::<(u64, String)>(&message),
            ),
            (
                &record,
                record_bincode(64).deserialize::<(u64, String)>(&record),
            ),
        ] {
            assert_eq!(decoded.unwrap(), value, "{bytes:?}");
        }
        let mut trailing = message.clone();
        trailing.push(0);
        assert!(message_bincode(64)
            .deserialize::<(u64, String)>(&trailing)
            .is_err());
        // The limit refuses encoding above it (bincode 1.3.3 ignores it when decoding a slice).
        let long = (1u64, "x".repeat(100));
        assert!(record_bincode(64).serialize(&long).is_err());
        assert!(message_bincode(64).serialize(&long).is_err());
    }

    #[test]
    fn round_trips_an_event_with_its_time() {
        let event = Event::LeadQualified(LeadQualified {
            lead_id: Uuid::from_u128(7),
        });
        let at = Timestamp::from_micros(1_790_000_000_000_000);
        let bytes = encode_event(at, &event).unwrap();
        let decoded = decode_event("LeadQualified", 1, &bytes).unwrap();
        assert_eq!(decoded.event, event);
        assert_eq!(decoded.occurred_at, at);
    }

    #[test]
    fn rejects_trailing_bytes_unknown_types_and_future_versions() {
        let event = Event::TicketClosed(TicketClosed {
            ticket_id: Uuid::from_u128(1),
        });
        let mut bytes = encode_event(Timestamp::from_micros(0), &event).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode_event("TicketClosed", 1, &bytes),
            Err(CodecError::Malformed { .. })
        ));
        assert!(matches!(
            decode_event("NoSuchEvent", 1, &bytes),
            Err(CodecError::UnknownEventType { .. })
        ));
        assert!(matches!(
            decode_event("TicketClosed", 2, &bytes),
            Err(CodecError::UnknownSchemaVersion { found: 2, .. })
        ));
    }

    /// A pretend version 0 of `LeadScored`, before it had a `reason`.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct LeadScoredV0 {
        lead_id: Uuid,
        score: u8,
    }

    fn lead_scored_v0_to_v1(payload: &[u8]) -> Result<Vec<u8>, bincode::Error> {
        let (micros, v0): (i64, LeadScoredV0) =
            message_bincode(PAYLOAD_BYTES_MAX).deserialize(payload)?;
        let v1 = crate::event::LeadScored {
            lead_id: v0.lead_id,
            score: v0.score,
            reason: None,
        };
        message_bincode(PAYLOAD_BYTES_MAX).serialize(&(micros, v1))
    }

    fn pretend_upcasters(event_type: &str, from_version: u16) -> Option<Upcaster> {
        match (event_type, from_version) {
            ("LeadScored", 0) => Some(lead_scored_v0_to_v1),
            _ => None,
        }
    }

    #[test]
    fn an_older_payload_is_upcast_through_the_loop_before_it_decodes() {
        let at = Timestamp::from_micros(1_790_000_000_000_000);
        let v0 = message_bincode(PAYLOAD_BYTES_MAX)
            .serialize(&(
                at.as_micros(),
                LeadScoredV0 {
                    lead_id: Uuid::from_u128(7),
                    score: 42,
                },
            ))
            .unwrap();
        let decoded = decode_upcasting("LeadScored", 0, &v0, 0, pretend_upcasters).unwrap();
        assert_eq!(decoded.occurred_at, at);
        assert_eq!(
            decoded.event,
            Event::LeadScored(crate::event::LeadScored {
                lead_id: Uuid::from_u128(7),
                score: 42,
                reason: None,
            })
        );
        // The same bytes as v1 do not decode: the upcaster really ran.
        assert!(matches!(
            decode_upcasting("LeadScored", 1, &v0, 0, pretend_upcasters),
            Err(CodecError::Malformed { .. })
        ));
        // A damaged v0 payload fails inside the upcaster, naming the version it was written at.
        assert!(matches!(
            decode_upcasting("LeadScored", 0, &v0[..v0.len() - 1], 0, pretend_upcasters),
            Err(CodecError::Malformed {
                schema_version: 0,
                ..
            })
        ));
        // A version with no upcaster is refused, and the real table has none below v1.
        assert!(matches!(
            decode_upcasting("TicketClosed", 0, &v0, 0, pretend_upcasters),
            Err(CodecError::UnknownSchemaVersion { found: 0, .. })
        ));
        assert!(matches!(
            decode_event("LeadScored", 0, &v0),
            Err(CodecError::UnknownSchemaVersion { found: 0, .. })
        ));
    }

    #[test]
    fn every_event_type_is_listed_once() {
        let mut names: Vec<_> = Event::TYPES.iter().map(|(_, n, _)| *n).collect();
        let listed = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), listed, "an event type is listed twice");
    }
}
