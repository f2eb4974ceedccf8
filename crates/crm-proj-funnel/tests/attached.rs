//! Attached to a projection store, as the runtime runs it (the store is the state, with a
//! small row cache or none, and nothing is restored at start), the model drains the same
//! changes and answers every query exactly as one holding every row in memory; also when a
//! fresh model is attached to the store half-way, as after a restart.

use crm_proj_funnel::FunnelProjection;
use crm_proj_testkit::*;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

fn requests() -> Vec<(&'static str, Value)> {
    let mut requests = Vec::new();
    for pipeline in ["default", "sales", "nowhere"] {
        for month in [None, Some("2026-10"), Some("2026-11"), Some("2026-12")] {
            requests.push(("funnel.get", json!({"pipeline": pipeline, "month": month})));
        }
    }
    requests
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn an_attached_model_answers_like_a_resident_one(
        seeds in seeds(120),
        valid in any::<bool>(),
        batch in 1usize..8,
        cache_bytes in prop_oneof![Just(0usize), Just(4096), Just(1 << 20)],
        restart in any::<Index>(),
    ) {
        let envelopes = if valid { valid_stream(&seeds) } else { arbitrary_stream(&seeds) };
        let restart = restart.index(envelopes.len() + 1);
        let requests = requests();
        check_attached::<FunnelProjection>(
            &envelopes,
            batch,
            cache_bytes,
            Some(restart),
            same_query_answers(&requests),
        )?;
    }
}
