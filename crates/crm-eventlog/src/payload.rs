//! The one place event payloads meet bincode (pinned at =1.3.3, design rule 6). The log stores
//! payloads as opaque bytes; callers that encode events with bincode use these two functions so
//! every payload is written and read with the same options, a size limit and no trailing bytes.
//!
//! Options: fixed-width little-endian integers (the same bytes as `bincode::serialize`), a byte
//! limit on both encode and decode, and trailing bytes refused on decode. Changing any of these
//! changes the bytes of every stored event: don't; add a new schema version and an upcaster.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a payload could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("payload codec: {0}")]
pub struct PayloadError(#[from] bincode::Error);

fn options(bytes_max: usize) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(bytes_max as u64)
        .reject_trailing_bytes()
}

/// Encodes `value`, failing if the result would exceed `bytes_max`.
pub fn encode_payload<T: Serialize>(value: &T, bytes_max: usize) -> Result<Vec<u8>, PayloadError> {
    Ok(options(bytes_max).serialize(value)?)
}

/// Decodes exactly one `T` from `bytes`: longer input than the value is an error, and no
/// length read from the bytes may make it allocate beyond `bytes_max`.
pub fn decode_payload<T: DeserializeOwned>(
    bytes: &[u8],
    bytes_max: usize,
) -> Result<T, PayloadError> {
    Ok(options(bytes_max).deserialize(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Renamed {
        customer: u64,
        name: String,
    }

    #[test]
    fn roundtrips_and_matches_plain_bincode_bytes() {
        let value = Renamed {
            customer: 7,
            name: "Ada".into(),
        };
        let bytes = encode_payload(&value, 1024).expect("encodes");
        assert_eq!(bytes, bincode::serialize(&value).expect("plain bincode"));
        assert_eq!(
            decode_payload::<Renamed>(&bytes, 1024).expect("decodes"),
            value
        );
    }

    #[test]
    fn trailing_bytes_and_oversized_lengths_are_refused() {
        let value = Renamed {
            customer: 7,
            name: "Ada".into(),
        };
        let mut bytes = encode_payload(&value, 1024).expect("encodes");
        bytes.push(0);
        assert!(decode_payload::<Renamed>(&bytes, 1024).is_err());

        // A string length of 2^60 must be refused by the limit, not allocated.
        let mut huge = 7u64.to_le_bytes().to_vec();
        huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode_payload::<Renamed>(&huge, 1024).is_err());
        assert!(encode_payload(&value, 4).is_err());
    }
}
