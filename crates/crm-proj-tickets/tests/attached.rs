//! Attached to a projection store, as the runtime runs it (rows read from sled through a
//! small cache, nothing restored at start), the model writes the same rows and answers the
//! same as the model kept in memory, over random streams.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crm_proj_testkit::*;
use crm_proj_tickets::TicketsProjection;
use crm_projector::{EventEnvelope, Projection, ProjectionStore};
use proptest::prelude::*;
use serde_json::{json, Value};

/// A fresh directory for one store, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("crm-proj-tickets-attached-{}-{n}", std::process::id());
        TempDir(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn requests() -> Vec<(&'static str, Value)> {
    let mut requests = vec![
        ("tickets.list", json!({})),
        ("tickets.list", json!({"limit": 2, "after": id(1)})),
        ("tickets.list", json!({"status": "open"})),
        ("tickets.stats", json!({})),
    ];
    for as_of in [
        "2026-10-26T00:00:00Z",
        "2026-11-05T12:00:00Z",
        "2027-06-01T00:00:00Z",
    ] {
        requests.push(("tickets.stats", json!({"as_of": as_of})));
        requests.push((
            "tickets.stats",
            json!({"as_of": as_of, "first_response_targets_minutes": {"low": 5, "urgent": 0}}),
        ));
    }
    requests
}

fn check_attached(envelopes: &[EventEnvelope], batch: usize) -> Result<(), TestCaseError> {
    let dir = TempDir::new();
    let store = ProjectionStore::open(&dir.0).map_err(|e| TestCaseError::fail(e.to_string()))?;
    // A cache of a few rows: most reads go to the store.
    let rows = store.rows(4096);
    let mut attached = TicketsProjection::default();
    attached
        .attach(&rows)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut resident = TicketsProjection::default();
    let mut written = Store::default();
    for chunk in envelopes.chunks(batch) {
        for envelope in chunk {
            attached.apply(envelope);
            resident.apply(envelope);
        }
        let position = chunk.last().map_or(0, |e| e.position);
        store
            .commit(attached.drain_changes(), position, false)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        written.write(resident.drain_changes());
    }
    let stored: Vec<(Vec<u8>, Vec<u8>)> = store
        .model_entries()
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let expected: Vec<(Vec<u8>, Vec<u8>)> = written.entries.into_iter().collect();
    prop_assert!(stored == expected, "the stored rows differ");
    for (name, request) in requests() {
        let answer = |p: &TicketsProjection| p.query(name, &request).map(|v| v.to_string());
        prop_assert_eq!(answer(&attached), answer(&resident), "{} {}", name, request);
    }
    prop_assert_eq!(rows.failure(), None);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn attached_valid_streams_write_and_answer_as_in_memory(
        seeds in seeds(150),
        batch in 1usize..8,
    ) {
        check_attached(&valid_stream(&seeds), batch)?;
    }

    #[test]
    fn attached_arbitrary_streams_write_and_answer_as_in_memory(
        seeds in seeds(150),
        batch in 1usize..8,
    ) {
        check_attached(&arbitrary_stream(&seeds), batch)?;
    }
}
