//! Attached to a projection store, as the runtime runs it (rows read from sled through a
//! small cache, nothing restored at start), the model writes the same rows and answers the
//! same as the model kept in memory, over random streams.

use crm_proj_customers::CustomersProjection;
use crm_proj_testkit::*;
use crm_projector::EventEnvelope;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod support;
use support::requests;

fn check(envelopes: &[EventEnvelope], batch: usize) -> Result<(), TestCaseError> {
    let requests = requests();
    let answers = same_query_answers::<CustomersProjection>(&requests);
    // A cache of a few rows: most reads go to the store.
    check_attached::<CustomersProjection>(envelopes, batch, 4096, None, |attached, resident| {
        answers(attached, resident)?;
        prop_assert_eq!(attached.customers_count(), resident.customers_count());
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn attached_valid_streams_write_and_answer_as_in_memory(
        seeds in seeds(120),
        batch in 1usize..8,
    ) {
        check(&valid_stream(&seeds), batch)?;
    }

    #[test]
    fn attached_arbitrary_streams_write_and_answer_as_in_memory(
        seeds in seeds(120),
        batch in 1usize..8,
    ) {
        check(&arbitrary_stream(&seeds), batch)?;
    }
}
