//! The one encoding of read-model records in projection stores: bincode with fixed-width
//! integers and no trailing bytes, so equal records give equal bytes (byte-identical rebuilds).

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .reject_trailing_bytes()
}

/// Encodes a record. Read-model records are plain derived structs (strings, integers, enums,
/// options, vectors, ordered maps), which bincode always encodes into a `Vec`: a failure would
/// be a bug in a model's types, not bad input, so it stops loudly.
pub fn encode_record<T: Serialize>(value: &T) -> Vec<u8> {
    options()
        .serialize(value)
        .expect("a read-model record always encodes")
}

/// Decodes a stored record of at most `bytes_max` bytes.
pub fn decode_record<T: DeserializeOwned>(bytes: &[u8], bytes_max: u64) -> Result<T, String> {
    options()
        .with_limit(bytes_max)
        .deserialize(bytes)
        .map_err(|e| e.to_string())
}
