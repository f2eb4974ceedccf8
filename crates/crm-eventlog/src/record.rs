//! The record envelope: our own versioned, checksummed byte format for one stored event.
//! It is the only format the log writes, so records can be exported and moved off sled unchanged.
//!
//! Layout of format version 1 (integers little-endian, strings UTF-8 with a `u16` length prefix):
//!
//! | offset | size | field                                                        |
//! |--------|------|--------------------------------------------------------------|
//! | 0      | 1    | format version (`1`)                                         |
//! | 1      | 8    | position (`u64`)                                             |
//! | 9      | 8    | stream version (`u64`)                                       |
//! | 17     | 2    | schema version (`u16`)                                       |
//! | 19     | 16   | command id (UUID bytes)                                      |
//! | 35     | 8    | recorded at, microseconds since the Unix epoch (`i64`)        |
//! | 43     | 1    | flags: bit 0 actor, bit 1 correlation id, bit 2 causation id |
//! | 44     | 2+n  | stream                                                       |
//! |        | 2+n  | event type                                                   |
//! |        | 2+n  | actor, correlation id, causation id (each only if flagged)   |
//! |        | 4+n  | payload (`u32` length, then the bytes)                       |
//! |        | 4    | CRC32C (Castagnoli) of every byte before it                  |
//!
//! Decoding checks the total size against a limit first, then the checksum, then parses with a
//! bounds check on every field and refuses trailing bytes. It never panics, whatever the input.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The envelope format this build writes. Older formats stay decodable here if they ever change.
pub const FORMAT_VERSION: u8 = 1;

const FLAG_ACTOR: u8 = 1;
const FLAG_CORRELATION: u8 = 1 << 1;
const FLAG_CAUSATION: u8 = 1 << 2;
const FLAGS_KNOWN: u8 = FLAG_ACTOR | FLAG_CORRELATION | FLAG_CAUSATION;

/// Bytes of the fixed part before the variable fields.
const FIXED_HEADER_BYTES: usize = 1 + 8 + 8 + 2 + 16 + 8 + 1;
const CRC_BYTES: usize = 4;
/// The smallest possible record: fixed header, two empty strings, empty payload, checksum.
pub const RECORD_BYTES_MIN: usize = FIXED_HEADER_BYTES + 2 + 2 + 4 + CRC_BYTES;

/// One stored event with its envelope fields, as read back from the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub format_version: u8,
    /// Global position, 1-based and contiguous.
    pub position: u64,
    pub stream: String,
    /// Version of this event within its stream, 1-based and contiguous.
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u16,
    pub command_id: Uuid,
    /// Microseconds since the Unix epoch, read by the writer when it committed the batch;
    /// never below the `recorded_at_us` of an earlier position (docs/DESIGN.md rule 13).
    pub recorded_at_us: i64,
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub payload: Vec<u8>,
}

/// Size limits applied when decoding a record. Every length read from the bytes is checked
/// against these before anything is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    pub record_bytes_max: usize,
    pub payload_bytes_max: usize,
    /// Limit for each string field (stream, event type, actor, correlation and causation ids).
    pub string_bytes_max: usize,
}

/// The limits of a log with the default configuration.
impl Default for RecordLimits {
    fn default() -> Self {
        crate::LogConfig::default().record_limits()
    }
}

/// Why a record's bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is {bytes} bytes, above the limit of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("record is truncated while reading {field}")]
    Truncated { field: &'static str },
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("unsupported record format version {version}")]
    UnsupportedFormat { version: u8 },
    #[error("field {field} is {bytes} bytes, above the limit of {max}")]
    FieldTooLong {
        field: &'static str,
        bytes: usize,
        max: usize,
    },
    #[error("field {field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("unknown flag bits {flags:#04x}")]
    InvalidFlags { flags: u8 },
    #[error("{count} trailing bytes after the record")]
    TrailingBytes { count: usize },
}

impl Record {
    /// Encodes the record with its checksum. Fails only if a field does not fit the format
    /// (a string above 65535 bytes or a payload above 4 GiB); the log validates before encoding.
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        let view = RecordRef {
            position: self.position,
            stream: &self.stream,
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            command_id: self.command_id,
            recorded_at_us: self.recorded_at_us,
            actor: self.actor.as_deref(),
            correlation_id: self.correlation_id.as_deref(),
            causation_id: self.causation_id.as_deref(),
            payload: &self.payload,
        };
        let mut out = Vec::with_capacity(view.encoded_len());
        view.encode_into(&mut out)?;
        Ok(out)
    }

    /// Decodes and checks one record. Never panics; every failure is a typed error.
    pub fn decode(bytes: &[u8], limits: &RecordLimits) -> Result<Record, RecordError> {
        RecordRef::decode(bytes, limits).map(|view| view.to_record())
    }
}

/// A borrowed view of a record: the writer encodes from it without building an owned `Record`
/// per event, and the tailer reads a stored record's fields through it without copying them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub position: u64,
    pub stream: &'a str,
    pub stream_version: u64,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub command_id: Uuid,
    pub recorded_at_us: i64,
    pub actor: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    pub causation_id: Option<&'a str>,
    pub payload: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// Decodes and checks one record without copying its fields. Never panics; every failure
    /// is a typed error.
    pub fn decode(bytes: &'a [u8], limits: &RecordLimits) -> Result<RecordRef<'a>, RecordError> {
        if bytes.len() > limits.record_bytes_max {
            return Err(RecordError::TooLarge {
                bytes: bytes.len(),
                max: limits.record_bytes_max,
            });
        }
        if bytes.len() < RECORD_BYTES_MIN {
            return Err(RecordError::Truncated { field: "record" });
        }
        let (body, crc_bytes) = bytes.split_at(bytes.len() - CRC_BYTES);
        let stored = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err(RecordError::Checksum { stored, computed });
        }

        let mut r = Reader { rest: body };
        let format_version = r.u8("format_version")?;
        if format_version != FORMAT_VERSION {
            return Err(RecordError::UnsupportedFormat {
                version: format_version,
            });
        }
        let position = r.u64("position")?;
        let stream_version = r.u64("stream_version")?;
        let schema_version = r.u16("schema_version")?;
        let command_id = Uuid::from_bytes(r.array::<16>("command_id")?);
        let recorded_at_us = r.i64("recorded_at_us")?;
        let flags = r.u8("flags")?;
        if flags & !FLAGS_KNOWN != 0 {
            return Err(RecordError::InvalidFlags { flags });
        }
        let strings_max = limits.string_bytes_max;
        let stream = r.str("stream", strings_max)?;
        let event_type = r.str("event_type", strings_max)?;
        let actor = r.optional_str(flags & FLAG_ACTOR != 0, "actor", strings_max)?;
        let correlation_id =
            r.optional_str(flags & FLAG_CORRELATION != 0, "correlation_id", strings_max)?;
        let causation_id =
            r.optional_str(flags & FLAG_CAUSATION != 0, "causation_id", strings_max)?;
        let payload_len = r.u32("payload_len")? as usize;
        if payload_len > limits.payload_bytes_max {
            return Err(RecordError::FieldTooLong {
                field: "payload",
                bytes: payload_len,
                max: limits.payload_bytes_max,
            });
        }
        let payload = r.bytes(payload_len, "payload")?;
        if !r.rest.is_empty() {
            return Err(RecordError::TrailingBytes {
                count: r.rest.len(),
            });
        }
        Ok(RecordRef {
            position,
            stream,
            stream_version,
            event_type,
            schema_version,
            command_id,
            recorded_at_us,
            actor,
            correlation_id,
            causation_id,
            payload,
        })
    }

    /// The owned record.
    pub fn to_record(&self) -> Record {
        Record {
            format_version: FORMAT_VERSION,
            position: self.position,
            stream: self.stream.to_owned(),
            stream_version: self.stream_version,
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            command_id: self.command_id,
            recorded_at_us: self.recorded_at_us,
            actor: self.actor.map(str::to_owned),
            correlation_id: self.correlation_id.map(str::to_owned),
            causation_id: self.causation_id.map(str::to_owned),
            payload: self.payload.to_vec(),
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        encoded_len(
            self.stream.len(),
            self.event_type.len(),
            [self.actor, self.correlation_id, self.causation_id].map(|s| s.map(str::len)),
            self.payload.len(),
        )
    }

    /// Appends the encoded record (checksum included) to `out`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let start = out.len();
        let mut flags = 0u8;
        if self.actor.is_some() {
            flags |= FLAG_ACTOR;
        }
        if self.correlation_id.is_some() {
            flags |= FLAG_CORRELATION;
        }
        if self.causation_id.is_some() {
            flags |= FLAG_CAUSATION;
        }
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.stream_version.to_le_bytes());
        out.extend_from_slice(&self.schema_version.to_le_bytes());
        out.extend_from_slice(self.command_id.as_bytes());
        out.extend_from_slice(&self.recorded_at_us.to_le_bytes());
        out.push(flags);
        let written = put_string(out, "stream", self.stream)
            .and_then(|()| put_string(out, "event_type", self.event_type))
            .and_then(|()| put_optional(out, "actor", self.actor))
            .and_then(|()| put_optional(out, "correlation_id", self.correlation_id))
            .and_then(|()| put_optional(out, "causation_id", self.causation_id))
            .and_then(|()| {
                let len =
                    u32::try_from(self.payload.len()).map_err(|_| RecordError::FieldTooLong {
                        field: "payload",
                        bytes: self.payload.len(),
                        max: u32::MAX as usize,
                    })?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(self.payload);
                Ok(())
            });
        if let Err(e) = written {
            out.truncate(start);
            return Err(e);
        }
        let crc = crc32c::crc32c(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(())
    }
}

/// Encoded size of a record with these field sizes, so requests can be checked against
/// `record_bytes_max` before the writer sees them.
pub(crate) const fn encoded_len(
    stream_bytes: usize,
    event_type_bytes: usize,
    optional_bytes: [Option<usize>; 3],
    payload_bytes: usize,
) -> usize {
    // A loop rather than iterators: a const fn, so limits can be checked at compile time.
    let mut optional = 0;
    let mut i = 0;
    while i < optional_bytes.len() {
        if let Some(n) = optional_bytes[i] {
            optional += 2 + n;
        }
        i += 1;
    }
    FIXED_HEADER_BYTES
        + 2
        + stream_bytes
        + 2
        + event_type_bytes
        + optional
        + 4
        + payload_bytes
        + CRC_BYTES
}

fn put_string(out: &mut Vec<u8>, field: &'static str, value: &str) -> Result<(), RecordError> {
    let len = u16::try_from(value.len()).map_err(|_| RecordError::FieldTooLong {
        field,
        bytes: value.len(),
        max: u16::MAX as usize,
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

fn put_optional(
    out: &mut Vec<u8>,
    field: &'static str,
    value: Option<&str>,
) -> Result<(), RecordError> {
    match value {
        Some(v) => put_string(out, field, v),
        None => Ok(()),
    }
}

/// A bounds-checked cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    pub(crate) rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        if self.rest.len() < n {
            return Err(RecordError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, RecordError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn string(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<String, RecordError> {
        self.str(field, max).map(str::to_owned)
    }

    /// A length-prefixed UTF-8 string, borrowed.
    pub(crate) fn str(&mut self, field: &'static str, max: usize) -> Result<&'a str, RecordError> {
        let len = self.u16(field)? as usize;
        if len > max {
            return Err(RecordError::FieldTooLong {
                field,
                bytes: len,
                max,
            });
        }
        let raw = self.bytes(len, field)?;
        std::str::from_utf8(raw).map_err(|_| RecordError::InvalidUtf8 { field })
    }

    fn optional_str(
        &mut self,
        present: bool,
        field: &'static str,
        max: usize,
    ) -> Result<Option<&'a str>, RecordError> {
        if !present {
            return Ok(None);
        }
        self.str(field, max).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Record {
        Record {
            format_version: FORMAT_VERSION,
            position: 42,
            stream: "customer-7".into(),
            stream_version: 3,
            event_type: "CustomerRenamed".into(),
            schema_version: 2,
            command_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            recorded_at_us: 1_700_000_000_000_000,
            actor: Some("support-desk".into()),
            correlation_id: None,
            causation_id: Some("cause".into()),
            payload: vec![1, 2, 3, 4, 5],
        }
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let record = sample();
        let bytes = record.encode().expect("encodes");
        assert_eq!(bytes.len(), RecordRef::encoded_len(&as_ref(&record)));
        let back = Record::decode(&bytes, &RecordLimits::default()).expect("decodes");
        assert_eq!(back, record);
    }

    #[test]
    fn trailing_bytes_are_refused_even_with_a_valid_checksum() {
        let mut bytes = sample().encode().expect("encodes");
        bytes.truncate(bytes.len() - CRC_BYTES);
        bytes.push(0);
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            Record::decode(&bytes, &RecordLimits::default()),
            Err(RecordError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn oversized_payload_is_refused_before_allocating() {
        let bytes = sample().encode().expect("encodes");
        let limits = RecordLimits {
            payload_bytes_max: 4,
            ..RecordLimits::default()
        };
        assert!(matches!(
            Record::decode(&bytes, &limits),
            Err(RecordError::FieldTooLong {
                field: "payload",
                ..
            })
        ));
    }

    #[test]
    fn a_string_too_long_for_the_format_is_an_error_not_a_truncation() {
        let mut record = sample();
        record.stream = "x".repeat(70_000);
        assert!(matches!(
            record.encode(),
            Err(RecordError::FieldTooLong {
                field: "stream",
                ..
            })
        ));
    }

    fn as_ref(r: &Record) -> RecordRef<'_> {
        RecordRef {
            position: r.position,
            stream: &r.stream,
            stream_version: r.stream_version,
            event_type: &r.event_type,
            schema_version: r.schema_version,
            command_id: r.command_id,
            recorded_at_us: r.recorded_at_us,
            actor: r.actor.as_deref(),
            correlation_id: r.correlation_id.as_deref(),
            causation_id: r.causation_id.as_deref(),
            payload: &r.payload,
        }
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            any::<u64>(),
            ".{0,40}",
            any::<u64>(),
            "[A-Za-z]{0,30}",
            any::<u16>(),
            any::<u128>(),
            any::<i64>(),
            proptest::option::of(".{0,20}"),
            proptest::option::of(".{0,20}"),
            proptest::option::of(".{0,20}"),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(
                |(
                    position,
                    stream,
                    stream_version,
                    event_type,
                    schema_version,
                    id,
                    recorded_at_us,
                    actor,
                    correlation_id,
                    causation_id,
                    payload,
                )| Record {
                    format_version: FORMAT_VERSION,
                    position,
                    stream,
                    stream_version,
                    event_type,
                    schema_version,
                    command_id: Uuid::from_u128(id),
                    recorded_at_us,
                    actor,
                    correlation_id,
                    causation_id,
                    payload,
                },
            )
    }

    proptest! {
        #[test]
        fn decode_of_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Record::decode(&bytes, &RecordLimits::default());
        }

        #[test]
        fn any_record_roundtrips(record in arb_record()) {
            let bytes = record.encode().expect("encodes");
            prop_assert_eq!(Record::decode(&bytes, &RecordLimits::default()), Ok(record));
        }

        #[test]
        fn any_single_byte_change_is_detected(record in arb_record(), index in any::<prop::sample::Index>(), xor in 1u8..=255) {
            let mut bytes = record.encode().expect("encodes");
            let i = index.index(bytes.len());
            bytes[i] ^= xor;
            prop_assert!(Record::decode(&bytes, &RecordLimits::default()).is_err());
        }

        #[test]
        fn decode_of_mutated_records_never_panics(
            record in arb_record(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
            fix_crc in any::<bool>(),
        ) {
            let mut bytes = record.encode().expect("encodes");
            for (index, value) in edits {
                let i = index.index(bytes.len());
                bytes[i] = value;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            if fix_crc && bytes.len() >= CRC_BYTES {
                // Re-seal the mutated body so the parser, not only the checksum, sees garbage.
                let body_len = bytes.len() - CRC_BYTES;
                let crc = crc32c::crc32c(&bytes[..body_len]);
                bytes[body_len..].copy_from_slice(&crc.to_le_bytes());
            }
            let _ = Record::decode(&bytes, &RecordLimits::default());
        }
    }
}
