//! The envelope's golden fixture: bytes written by an earlier build must decode forever to the
//! same record, and this build must still encode that record to the same bytes.
//!
//! To (re)create the fixture after a deliberate format change (a new format version, never an
//! edit of version 1): `CRM_EVENTLOG_WRITE_FIXTURES=1 cargo test -p crm-eventlog --test envelope_fixture`.

use std::path::PathBuf;

use crm_eventlog::{Record, RecordLimits};
use uuid::Uuid;

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/envelope-v1.bin")
}

fn expected_record() -> Record {
    Record {
        format_version: 1,
        position: 1_234_567,
        stream: "customer-0190a1b2".into(),
        stream_version: 42,
        event_type: "CustomerRenamed".into(),
        schema_version: 3,
        command_id: Uuid::from_u128(0x0190_a1b2_c3d4_7e5f_8a9b_0c1d_2e3f_4a5b),
        recorded_at_us: 1_732_000_000_123_456,
        actor: Some("support-desk".into()),
        correlation_id: Some("corr-7".into()),
        causation_id: None,
        payload: vec![
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, b'A', b'd', b'a',
        ],
    }
}

#[test]
fn envelope_v1_golden_fixture_decodes() {
    let path = fixture_path();
    if std::env::var_os("CRM_EVENTLOG_WRITE_FIXTURES").is_some() {
        let bytes = expected_record().encode().expect("encode");
        std::fs::write(&path, bytes).expect("write fixture");
    }
    let bytes = std::fs::read(&path).expect("fixture exists");
    let record = Record::decode(&bytes, &RecordLimits::default()).expect("fixture decodes");
    assert_eq!(record, expected_record());
    assert_eq!(
        expected_record().encode().expect("encode"),
        bytes,
        "this build encodes the fixture's record differently: the envelope format changed"
    );
}
