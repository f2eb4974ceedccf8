//! Attached to a projection store, as the runtime runs it (the store is the state, with a
//! small row cache or none, and nothing is restored at start), the model drains the same
//! changes and reports exactly as one holding every row in memory; also when a fresh model is
//! attached to the store half-way, as after a restart.

use std::collections::BTreeSet;

use crm_domain::Month;
use crm_proj_kpis::{KpiProjection, Period};
use crm_proj_testkit::{arbitrary_stream, check_attached, seeds, valid_stream};
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
        let restart = restart.index(envelopes.len() + 1);
        check_attached::<KpiProjection>(
            &envelopes,
            batch,
            cache_bytes,
            Some(restart),
            |attached, resident| {
                for period in &periods {
                    prop_assert_eq!(attached.report(*period), resident.report(*period));
                }
                Ok(())
            },
        )?;
    }
}
