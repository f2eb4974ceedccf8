//! The store layout: `lead/<uuid>` for each lead's path, `pipeline/<name>` for each
//! pipeline definition seen in the log; values in bincode. Funnel totals are never stored.

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

/// A store key. The variant order is the byte order of the encoded prefixes; UUIDs order as
/// their hyphenated lower-case text and names as their bytes, so the derived order is the
/// store's key order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Lead(Uuid),
    Pipeline(String),
}

impl Key {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Key::Lead(id) => format!("lead/{}", id.hyphenated()).into_bytes(),
            Key::Pipeline(name) => format!("pipeline/{name}").into_bytes(),
        }
    }

    /// Accepts only keys that [`Key::encode`] writes (canonical UUID text included).
    pub fn decode(bytes: &[u8]) -> Result<Key, StoreError> {
        let unknown = || StoreError::UnknownKey(String::from_utf8_lossy(bytes).into_owned());
        let text = std::str::from_utf8(bytes).map_err(|_| unknown())?;
        let key = match text.split_once('/') {
            Some(("lead", id)) => Key::Lead(Uuid::parse_str(id).map_err(|_| unknown())?),
            Some(("pipeline", name)) if !name.is_empty() => Key::Pipeline(name.to_owned()),
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
        let keys = [
            Key::Lead(Uuid::from_u128(1)),
            Key::Lead(Uuid::from_u128(u128::MAX)),
            Key::Pipeline("default".to_owned()),
            Key::Pipeline("sales".to_owned()),
            Key::Pipeline("sales-emea".to_owned()),
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
            "lead/{}",
            Uuid::from_u128(0xab)
                .hyphenated()
                .to_string()
                .to_uppercase()
        );
        assert!(Key::decode(upper.as_bytes()).is_err());
        assert!(Key::decode(b"pipeline/").is_err());
        assert!(Key::decode(b"stage/x").is_err());
        assert!(Key::decode(&[0xff, 0xfe]).is_err());
    }
}
