//! The store layout: one key per record (`customer/<uuid>`, `lead/<uuid>`, `order/<uuid>`,
//! `ticket/<uuid>`), values in bincode. Derived links are never stored.

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

/// Largest stored value `restore` accepts.
pub(crate) const RECORD_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Why the stored entries could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("unknown store key `{0}`")]
    UnknownKey(String),
    #[error("cannot decode the value of `{key}`: {reason}")]
    Decode { key: String, reason: String },
}

/// A store key. The variant order is the byte order of the encoded prefixes, and UUIDs order
/// as their hyphenated lower-case text, so the derived order is the store's key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Customer(Uuid),
    Lead(Uuid),
    Order(Uuid),
    Ticket(Uuid),
}

impl Key {
    pub fn encode(&self) -> Vec<u8> {
        let (prefix, id) = match self {
            Key::Customer(id) => ("customer", id),
            Key::Lead(id) => ("lead", id),
            Key::Order(id) => ("order", id),
            Key::Ticket(id) => ("ticket", id),
        };
        format!("{prefix}/{}", id.hyphenated()).into_bytes()
    }

    /// Accepts only keys that [`Key::encode`] writes (canonical UUID text included).
    pub fn decode(bytes: &[u8]) -> Result<Key, StoreError> {
        let unknown = || StoreError::UnknownKey(String::from_utf8_lossy(bytes).into_owned());
        let text = std::str::from_utf8(bytes).map_err(|_| unknown())?;
        let (prefix, id) = text.split_once('/').ok_or_else(unknown)?;
        let id = Uuid::parse_str(id).map_err(|_| unknown())?;
        let key = match prefix {
            "customer" => Key::Customer(id),
            "lead" => Key::Lead(id),
            "order" => Key::Order(id),
            "ticket" => Key::Ticket(id),
            _ => return Err(unknown()),
        };
        if key.encode() != bytes {
            return Err(unknown());
        }
        Ok(key)
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    crm_projector::record_codec::encode_record(value)
}

pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    crm_projector::record_codec::decode_record(bytes, RECORD_BYTES_MAX).map_err(|e| {
        StoreError::Decode {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_order_like_their_bytes() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(u128::MAX);
        let keys = [
            Key::Customer(a),
            Key::Customer(b),
            Key::Lead(a),
            Key::Order(b),
            Key::Ticket(a),
        ];
        for pair in keys.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].encode() < pair[1].encode());
        }
        for key in keys {
            assert_eq!(Key::decode(&key.encode()), Ok(key));
        }
    }

    #[test]
    fn non_canonical_or_unknown_keys_are_refused() {
        let upper = format!(
            "customer/{}",
            Uuid::from_u128(0xab)
                .hyphenated()
                .to_string()
                .to_uppercase()
        );
        assert!(Key::decode(upper.as_bytes()).is_err());
        assert!(Key::decode(b"campaign/00000000-0000-0000-0000-000000000001").is_err());
        assert!(Key::decode(b"customer/").is_err());
        assert!(Key::decode(&[0xff, 0xfe]).is_err());
    }
}
