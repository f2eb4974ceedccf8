//! Attached to a projection store, as the runtime runs it (rows read from sled through a
//! small cache, nothing restored at start), the model writes the same rows and answers the
//! same as the model kept in memory, over random streams.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crm_proj_customers::CustomersProjection;
use crm_proj_testkit::*;
use crm_projector::{EventEnvelope, Projection, ProjectionStore};
use proptest::prelude::*;
use serde_json::{json, Value};

/// A fresh directory for one store, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("crm-proj-customers-attached-{}-{n}", std::process::id());
        TempDir(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn requests() -> Vec<(&'static str, Value)> {
    let mut requests: Vec<(&'static str, Value)> = (0..=5u128)
        .map(|n| ("customer.get", json!({"customer_id": id(n).to_string()})))
        .collect();
    for request in [
        json!({}),
        json!({"limit": 2}),
        json!({"owner": "ann"}),
        json!({"segment": "smb", "limit": 1, "after": id(1).to_string()}),
        json!({"lifecycle_stage": "first_purchase"}),
        json!({"lifecycle_stage": "churned"}),
    ] {
        requests.push(("customer.list", request));
    }
    requests
}

fn check_attached(envelopes: &[EventEnvelope], batch: usize) -> Result<(), TestCaseError> {
    let dir = TempDir::new();
    let store = ProjectionStore::open(&dir.0).map_err(|e| TestCaseError::fail(e.to_string()))?;
    // A cache of a few rows: most reads go to the store.
    let rows = store.rows(4096);
    let mut attached = CustomersProjection::new();
    attached
        .attach(&rows)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut resident = CustomersProjection::new();
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
        let answer = |p: &CustomersProjection| p.query(name, &request).map(|v| v.to_string());
        prop_assert_eq!(answer(&attached), answer(&resident), "{} {}", name, request);
    }
    prop_assert_eq!(attached.customers_count(), resident.customers_count());
    prop_assert_eq!(rows.failure(), None);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn attached_valid_streams_write_and_answer_as_in_memory(
        seeds in seeds(120),
        batch in 1usize..8,
    ) {
        check_attached(&valid_stream(&seeds), batch)?;
    }

    #[test]
    fn attached_arbitrary_streams_write_and_answer_as_in_memory(
        seeds in seeds(120),
        batch in 1usize..8,
    ) {
        check_attached(&arbitrary_stream(&seeds), batch)?;
    }
}
