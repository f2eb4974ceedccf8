//! Key layout of the one sled tree, and the small values stored beside the records.
//! Public but hidden so tests and the benchmark can reach the raw entries; not an API.
//!
//! | key                                                   | value                                  |
//! |-------------------------------------------------------|----------------------------------------|
//! | `e` position (u64 BE)                                 | record envelope ([`crate::Record`])    |
//! | `s` stream length (u16 BE) stream version (u64 BE)    | position (u64 BE)                      |
//! | `c` command id (16 bytes)                             | command record (see below), CRC32C     |
//! | `m` `head`                                            | last committed position (u64 BE)       |
//! | `m` `format`                                          | layout format version (u8)             |
//!
//! Big-endian numbers make sled's byte order the numeric order, so a range over `e` is
//! position order and a range over one stream's `s` prefix is version order.

use uuid::Uuid;

use crate::record::{Reader, RecordError};
use crate::types::{AppendOutcome, StreamOutcome};

/// The sled tree holding the whole log.
pub const TREE_NAME: &[u8] = b"crm-eventlog";
/// Version of this key layout, stored under [`META_FORMAT_KEY`].
pub const LAYOUT_FORMAT_VERSION: u8 = 1;

pub const EVENT_PREFIX: u8 = b'e';
pub const STREAM_INDEX_PREFIX: u8 = b's';
pub const COMMAND_PREFIX: u8 = b'c';
pub const META_HEAD_KEY: &[u8] = b"mhead";
pub const META_FORMAT_KEY: &[u8] = b"mformat";

const COMMAND_RECORD_VERSION: u8 = 1;

pub fn event_key(position: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = EVENT_PREFIX;
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

/// Reads the position back from an `e` key.
pub fn position_of_event_key(key: &[u8]) -> Option<u64> {
    match key {
        [EVENT_PREFIX, rest @ ..] => <[u8; 8]>::try_from(rest).ok().map(u64::from_be_bytes),
        _ => None,
    }
}

/// The prefix shared by all index entries of one stream. Stream names are limited to
/// `u16::MAX` bytes by config validation, so the length always fits.
pub fn stream_index_prefix(stream: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 2 + stream.len() + 8);
    key.push(STREAM_INDEX_PREFIX);
    key.extend_from_slice(&(stream.len() as u16).to_be_bytes());
    key.extend_from_slice(stream.as_bytes());
    key
}

pub fn stream_index_key(stream: &str, version: u64) -> Vec<u8> {
    let mut key = stream_index_prefix(stream);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// Splits an `s` key into stream and version.
pub fn parse_stream_index_key(key: &[u8]) -> Option<(&str, u64)> {
    let [STREAM_INDEX_PREFIX, a, b, rest @ ..] = key else {
        return None;
    };
    let len = u16::from_be_bytes([*a, *b]) as usize;
    if rest.len() != len + 8 {
        return None;
    }
    let (name, version) = rest.split_at(len);
    let stream = std::str::from_utf8(name).ok()?;
    let version = u64::from_be_bytes(<[u8; 8]>::try_from(version).ok()?);
    Some((stream, version))
}

pub fn command_key(command_id: Uuid) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = COMMAND_PREFIX;
    key[1..].copy_from_slice(command_id.as_bytes());
    key
}

pub fn encode_u64(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

/// The head of one stream: its last version and the position of that event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHead {
    pub version: u64,
    pub position: u64,
}

/// What the log keeps for good about an accepted command (docs/DESIGN.md rule 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub request_hash: [u8; 32],
    pub outcome: AppendOutcome,
}

impl CommandRecord {
    /// Layout: version (u8), request hash (32), first and last position (u64 LE), stream count
    /// (u16 LE), per stream: name (u16 LE length + bytes), first and last version (u64 LE);
    /// then CRC32C (u32 LE) of all of it.
    pub fn encode(&self) -> Vec<u8> {
        let streams = &self.outcome.streams;
        let names: usize = streams.iter().map(|s| 2 + s.stream.len() + 16).sum();
        let mut out = Vec::with_capacity(1 + 32 + 16 + 2 + names + 4);
        out.push(COMMAND_RECORD_VERSION);
        out.extend_from_slice(&self.request_hash);
        out.extend_from_slice(&self.outcome.first_position.to_le_bytes());
        out.extend_from_slice(&self.outcome.last_position.to_le_bytes());
        // Request validation bounds both counts far below u16::MAX.
        out.extend_from_slice(&(streams.len() as u16).to_le_bytes());
        for s in streams {
            out.extend_from_slice(&(s.stream.len() as u16).to_le_bytes());
            out.extend_from_slice(s.stream.as_bytes());
            out.extend_from_slice(&s.first_version.to_le_bytes());
            out.extend_from_slice(&s.last_version.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<CommandRecord, RecordError> {
        if bytes.len() < 4 {
            return Err(RecordError::Truncated {
                field: "command record",
            });
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err(RecordError::Checksum { stored, computed });
        }
        let mut r = Reader { rest: body };
        let version = r.u8("command_record_version")?;
        if version != COMMAND_RECORD_VERSION {
            return Err(RecordError::UnsupportedFormat { version });
        }
        let request_hash = r.array::<32>("request_hash")?;
        let first_position = r.u64("first_position")?;
        let last_position = r.u64("last_position")?;
        let count = r.u16("stream_count")? as usize;
        // Each stream entry takes at least 18 bytes; refuse counts the bytes cannot hold.
        if count > r.rest.len() / 18 {
            return Err(RecordError::Truncated { field: "streams" });
        }
        let mut streams = Vec::with_capacity(count);
        for _ in 0..count {
            let stream = r.string("stream", u16::MAX as usize)?;
            let first_version = r.u64("first_version")?;
            let last_version = r.u64("last_version")?;
            streams.push(StreamOutcome {
                stream,
                first_version,
                last_version,
            });
        }
        if !r.rest.is_empty() {
            return Err(RecordError::TrailingBytes {
                count: r.rest.len(),
            });
        }
        Ok(CommandRecord {
            request_hash,
            outcome: AppendOutcome {
                first_position,
                last_position,
                streams,
                duplicate: false,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_index_keys_roundtrip_and_sort_by_version() {
        let a = stream_index_key("orders", 2);
        let b = stream_index_key("orders", 10);
        assert!(a < b);
        assert_eq!(parse_stream_index_key(&b), Some(("orders", 10)));
        assert!(b.starts_with(&stream_index_prefix("orders")));
        assert!(!stream_index_key("orders-1", 1).starts_with(&stream_index_prefix("orders")));
    }

    #[test]
    fn command_record_roundtrips() {
        let record = CommandRecord {
            request_hash: [7; 32],
            outcome: AppendOutcome {
                first_position: 5,
                last_position: 7,
                streams: vec![
                    StreamOutcome {
                        stream: "a".into(),
                        first_version: 1,
                        last_version: 2,
                    },
                    StreamOutcome {
                        stream: "b".into(),
                        first_version: 9,
                        last_version: 9,
                    },
                ],
                duplicate: false,
            },
        };
        let bytes = record.encode();
        assert_eq!(CommandRecord::decode(&bytes), Ok(record));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(CommandRecord::decode(&bad).is_err());
        }
    }
}
