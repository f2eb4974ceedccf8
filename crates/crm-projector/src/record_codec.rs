//! The encoding of read-model records in projection stores: crm-domain's record bincode
//! (`crm_domain::codec::record_bincode`: fixed-width integers, little-endian, no trailing
//! bytes), so equal records give equal bytes (byte-identical rebuilds).

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crm_domain::codec::record_bincode;

/// Why a stored read-model record does not decode.
#[derive(Debug, thiserror::Error)]
#[error("read-model record does not decode: {0}")]
pub struct RecordDecodeError(#[from] bincode::Error);

/// Encodes a record. Read-model records are plain derived structs (strings, integers, enums,
/// options, vectors, ordered maps), which bincode always encodes into a `Vec`: a failure would
/// be a bug in a model's types, not bad input, so it stops loudly.
pub fn encode_record<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record_into(&mut out, value);
    out
}

/// [`encode_record`], appended to `out` (after a header the caller wrote, say).
pub fn encode_record_into<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    record_bincode(u64::MAX)
        .serialize_into(out, value)
        .expect("a read-model record always encodes");
}

/// Decodes a stored record. `bytes_max` is bincode's limit, which bincode 1.3.3 does not apply
/// when decoding a slice: what it reads and allocates is bounded by `bytes` itself.
pub fn decode_record<T: DeserializeOwned>(
    bytes: &[u8],
    bytes_max: u64,
) -> Result<T, RecordDecodeError> {
    Ok(record_bincode(bytes_max).deserialize(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_trailing_bytes_are_refused() {
        let value = (7u32, "Ada".to_owned());
        let bytes = encode_record(&value);
        assert_eq!(
            bytes,
            [7, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, b'A', b'd', b'a']
        );
        let decoded: (u32, String) = decode_record(&bytes, 64).unwrap();
        assert_eq!(decoded, value);
        let mut trailing = bytes;
        trailing.push(0);
        assert!(decode_record::<(u32, String)>(&trailing, 64).is_err());
    }
}
