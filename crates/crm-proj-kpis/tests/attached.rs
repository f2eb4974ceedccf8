//! Attached to a projection store, as the runtime runs it (the store is the state, with a
//! small row cache or none, and nothing is restored at start), the model drains the same
//! changes and reports exactly as one holding every row in memory; also when a fresh model is
//! attached to the store half-way, as after a restart.

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::Month;
use crm_proj_kpis::{KpiProjection, Period};
use crm_proj_testkit::{arbitrary_stream, seeds, valid_stream, Store};
use crm_projector::{Projection, ProjectionStore};
use proptest::prelude::*;
use proptest::sample::Index;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn an_attached_model_reports_like_a_resident_one(
        seeds in seeds(200),
        valid in any::<bool>(),
        batch in 1usize..12,
        cache_bytes in prop_oneof![Just(0usize), Just(4096), Just(1 << 20)],
        restart in any::<Index>(),
    ) {
        let envelopes = if valid { valid_stream(&seeds) } else { arbitrary_stream(&seeds) };
        let months: BTreeSet<Month> = envelopes.iter().map(|e| e.occurred_at.month()).collect();
        let mut periods = vec![Period::All];
        periods.extend(months.iter().map(|m| Period::Month(*m)));
        periods.extend(months.last().map(|m| Period::Month(m.next())));

        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = ProjectionStore::open(dir.path()).expect("a projection store");
        let rows = store.rows(cache_bytes);
        let mut attached = KpiProjection::new();
        attached.attach(&rows).expect("a fresh model attaches");
        let mut resident = KpiProjection::new();
        let mut resident_store = Store::default();
        let restart = restart.index(envelopes.len() + 1);
        let mut done = 0;
        for chunk in envelopes.chunks(batch) {
            if done <= restart && restart < done + chunk.len() {
                // A restart between two commits: a fresh model reads the store as it is.
                attached = KpiProjection::new();
                attached.attach(&rows).expect("a fresh model attaches");
            }
            for envelope in chunk {
                attached.apply(envelope);
                resident.apply(envelope);
            }
            done += chunk.len();
            let changes = attached.drain_changes();
            let resident_changes = resident.drain_changes();
            prop_assert_eq!(&changes, &resident_changes);
            resident_store.write(resident_changes);
            let position = chunk.last().map_or(0, |e| e.position);
            store.commit(changes, position, false).expect("a commit");
            for period in &periods {
                prop_assert_eq!(attached.report(*period), resident.report(*period));
            }
        }
        prop_assert!(rows.failure().is_none(), "{:?}", rows.failure());
        let stored: BTreeMap<Vec<u8>, Vec<u8>> = store
            .model_entries()
            .collect::<Result<_, _>>()
            .expect("the store reads");
        prop_assert_eq!(stored, resident_store.entries);
        prop_assert!(attached == resident, "the same rows");
    }
}
