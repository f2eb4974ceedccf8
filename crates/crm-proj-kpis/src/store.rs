//! The stored form of the model: one key per bucket and per remembered entity, values in
//! bincode behind a format byte. Layout (byte strings; the first byte orders the groups):
//!
//! | key | value |
//! | --- | --- |
//! | `00` | meta: the newest `occurred_at` |
//! | `01` | the all-time bucket |
//! | `02` year (i32, big-endian, sign bit flipped) month (u8) | a month's bucket |
//! | `10` lead id (16 bytes) | lead memory |
//! | `11` customer id | customer memory |
//! | `12` order id | order memory |
//! | `13` ticket id | ticket memory |
//!
//! Every value is `[STORE_FORMAT_VERSION] ++ record` in the projection stores' record codec
//! (`crm_projector::record_codec`: bincode, fixed-width integers, little-endian).
//! Keys are never deleted. The ticket-duration index is not stored: restore rebuilds it.

use std::collections::BTreeSet;

use crm_domain::Month;
use crm_projector::record_codec::{decode_record, encode_record_into, RecordDecodeError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::model::{Durations, Model};

/// The first byte of every stored value; bump it when a stored struct changes shape.
pub const STORE_FORMAT_VERSION: u8 = 1;
/// The largest stored value restore accepts.
pub const VALUE_BYTES_MAX: u64 = 64 * 1024 * 1024;

const PREFIX_META: u8 = 0x00;
const PREFIX_ALL: u8 = 0x01;
const PREFIX_MONTH: u8 = 0x02;
const PREFIX_LEAD: u8 = 0x10;
const PREFIX_CUSTOMER: u8 = 0x11;
const PREFIX_ORDER: u8 = 0x12;
const PREFIX_TICKET: u8 = 0x13;

/// Why stored entries could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("unknown store key {0:02x?}")]
    UnknownKey(Vec<u8>),
    #[error("value of key {key:02x?} has store format {found}, this build reads {expected}")]
    FormatVersion {
        key: Vec<u8>,
        found: u8,
        expected: u8,
    },
    #[error("value of key {key:02x?} is empty")]
    Empty { key: Vec<u8> },
    #[error("value of key {key:02x?}: {source}")]
    Decode {
        key: Vec<u8>,
        #[source]
        source: RecordDecodeError,
    },
}

/// A stored key. The derived order is the byte order of [`Key::encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Meta,
    All,
    Month(Month),
    Lead(Uuid),
    Customer(Uuid),
    Order(Uuid),
    Ticket(Uuid),
}

impl Key {
    pub fn encode(self) -> Vec<u8> {
        let with_id = |prefix: u8, id: Uuid| {
            let mut key = Vec::with_capacity(17);
            key.push(prefix);
            key.extend_from_slice(id.as_bytes());
            key
        };
        match self {
            Key::Meta => vec![PREFIX_META],
            Key::All => vec![PREFIX_ALL],
            Key::Month(month) => {
                // Flipping the sign bit makes the big-endian bytes sort like the i32.
                let year = (month.year as u32) ^ 0x8000_0000;
                let mut key = vec![PREFIX_MONTH];
                key.extend_from_slice(&year.to_be_bytes());
                key.push(month.month);
                key
            }
            Key::Lead(id) => with_id(PREFIX_LEAD, id),
            Key::Customer(id) => with_id(PREFIX_CUSTOMER, id),
            Key::Order(id) => with_id(PREFIX_ORDER, id),
            Key::Ticket(id) => with_id(PREFIX_TICKET, id),
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Key> {
        let (&prefix, rest) = bytes.split_first()?;
        let id = || Uuid::from_slice(rest).ok();
        match prefix {
            PREFIX_META if rest.is_empty() => Some(Key::Meta),
            PREFIX_ALL if rest.is_empty() => Some(Key::All),
            PREFIX_MONTH => {
                let [y0, y1, y2, y3, month] = rest.try_into().ok()?;
                let year = (u32::from_be_bytes([y0, y1, y2, y3]) ^ 0x8000_0000) as i32;
                (1..=12)
                    .contains(&month)
                    .then_some(Key::Month(Month { year, month }))
            }
            PREFIX_LEAD => id().map(Key::Lead),
            PREFIX_CUSTOMER => id().map(Key::Customer),
            PREFIX_ORDER => id().map(Key::Order),
            PREFIX_TICKET => id().map(Key::Ticket),
            _ => None,
        }
    }
}

/// The stored value of `key` in `model`, or `None` when the model holds nothing there.
pub(crate) fn value_of(model: &Model, key: Key) -> Option<Vec<u8>> {
    match key {
        Key::Meta => Some(encode(&model.meta)),
        Key::All => Some(encode(&model.all)),
        Key::Month(month) => model.months.get(&month).map(encode),
        Key::Lead(id) => model.leads.get(&id).map(encode),
        Key::Customer(id) => model.customers.get(&id).map(encode),
        Key::Order(id) => model.orders.get(&id).map(encode),
        Key::Ticket(id) => model.tickets.get(&id).map(encode),
    }
}

/// The changes for the keys in `dirty`, in key order, emptying `dirty`.
pub(crate) fn drain(model: &Model, dirty: &mut BTreeSet<Key>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let keys = std::mem::take(dirty);
    let mut changes: Vec<_> = keys
        .into_iter()
        .map(|key| (key.encode(), value_of(model, key)))
        .collect();
    // The key order already is the byte order; sorting keeps that promise explicit.
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    changes
}

/// Rebuilds a model from stored entries.
pub(crate) fn restore(
    entries: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
) -> Result<Model, RestoreError> {
    let mut model = Model::default();
    for (key_bytes, value) in entries {
        let key =
            Key::decode(&key_bytes).ok_or_else(|| RestoreError::UnknownKey(key_bytes.clone()))?;
        match key {
            Key::Meta => model.meta = decode(&key_bytes, &value)?,
            Key::All => model.all = decode(&key_bytes, &value)?,
            Key::Month(month) => {
                model.months.insert(month, decode(&key_bytes, &value)?);
            }
            Key::Lead(id) => {
                model.leads.insert(id, decode(&key_bytes, &value)?);
            }
            Key::Customer(id) => {
                model.customers.insert(id, decode(&key_bytes, &value)?);
            }
            Key::Order(id) => {
                model.orders.insert(id, decode(&key_bytes, &value)?);
            }
            Key::Ticket(id) => {
                model.tickets.insert(id, decode(&key_bytes, &value)?);
            }
        }
    }
    model.durations = Durations::of_tickets(&model.tickets);
    Ok(model)
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = vec![STORE_FORMAT_VERSION];
    encode_record_into(&mut bytes, value);
    bytes
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, RestoreError> {
    let Some((&format, payload)) = value.split_first() else {
        return Err(RestoreError::Empty { key: key.to_vec() });
    };
    if format != STORE_FORMAT_VERSION {
        return Err(RestoreError::FormatVersion {
            key: key.to_vec(),
            found: format,
            expected: STORE_FORMAT_VERSION,
        });
    }
    decode_record(payload, VALUE_BYTES_MAX).map_err(|source| RestoreError::Decode {
        key: key.to_vec(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_like_their_bytes() {
        let id = |n: u128| Uuid::from_u128(n);
        let month = |year, month| Key::Month(Month { year, month });
        let mut keys = vec![
            Key::Ticket(id(1)),
            month(2026, 11),
            Key::Lead(id(2)),
            month(-1, 12),
            Key::All,
            Key::Customer(id(3)),
            month(2025, 12),
            Key::Meta,
            Key::Order(id(1)),
            Key::Lead(id(1)),
            month(2026, 1),
        ];
        keys.sort();
        let bytes: Vec<_> = keys.iter().map(|k| k.encode()).collect();
        let mut sorted = bytes.clone();
        sorted.sort();
        assert_eq!(bytes, sorted);
        for key in keys {
            assert_eq!(Key::decode(&key.encode()), Some(key));
        }
    }

    #[test]
    fn malformed_keys_and_values_are_refused() {
        assert_eq!(Key::decode(&[]), None);
        assert_eq!(Key::decode(&[PREFIX_META, 0]), None);
        assert_eq!(Key::decode(&[PREFIX_MONTH, 0x80, 0, 0x07, 0xea, 13]), None);
        assert_eq!(Key::decode(&[PREFIX_LEAD, 1, 2]), None);
        assert_eq!(Key::decode(&[0x7f]), None);

        let entries = vec![(vec![0x7f], vec![1])];
        assert!(matches!(
            restore(&mut entries.into_iter()),
            Err(RestoreError::UnknownKey(_))
        ));
        let entries = vec![(vec![PREFIX_ALL], vec![9, 0])];
        assert!(matches!(
            restore(&mut entries.into_iter()),
            Err(RestoreError::FormatVersion { found: 9, .. })
        ));
        let entries = vec![(vec![PREFIX_ALL], vec![STORE_FORMAT_VERSION, 1, 2, 3])];
        assert!(matches!(
            restore(&mut entries.into_iter()),
            Err(RestoreError::Decode { .. })
        ));
        let mut meta = encode(&crate::model::Meta::default());
        meta.push(0);
        let entries = vec![(vec![PREFIX_META], meta)];
        assert!(matches!(
            restore(&mut entries.into_iter()),
            Err(RestoreError::Decode { .. })
        ));
    }
}
