//! Committed records as they are stored: the checksummed envelope bytes, shared without a copy.
//! The tailer publishes these bytes as the message body, so an event crosses from the log to
//! JetStream without being decoded and encoded again; it reads the few fields its headers need
//! through a borrowed view, which checks the checksum like any read.

use std::sync::Arc;

use crate::error::LogError;
use crate::record::{RecordLimits, RecordRef};
use crate::storage::Value;

/// One committed record's stored bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecord {
    position: u64,
    bytes: Value,
}

impl std::fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredRecord")
            .field("position", &self.position)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The records of one durable batch, in position order, as the writer hands them on.
pub type CommittedBatch = Arc<[StoredRecord]>;

impl StoredRecord {
    pub(crate) fn new(position: u64, bytes: Value) -> StoredRecord {
        StoredRecord { position, bytes }
    }

    /// The log position it is stored at.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The envelope bytes (what `Record::encode` gives for it).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes as a shared buffer, without a copy.
    pub fn to_bytes(&self) -> bytes::Bytes {
        bytes::Bytes::from_owner(self.bytes.clone())
    }

    /// Its fields, borrowed: checksum, limits and position checked. A damaged record is
    /// `LogError::Corrupt` naming its position, never data.
    pub fn view(&self, limits: &RecordLimits) -> Result<RecordRef<'_>, LogError> {
        let view = RecordRef::decode(&self.bytes, limits).map_err(|e| LogError::Corrupt {
            position: self.position,
            reason: e.to_string(),
        })?;
        if view.position != self.position {
            return Err(LogError::Corrupt {
                position: self.position,
                reason: format!("record says position {}", view.position),
            });
        }
        Ok(view)
    }
}
