//! Attached to a projection store, as the runtime runs it (rows read from sled through a
//! small cache, nothing restored at start), the model writes the same rows and answers the
//! same as the model kept in memory, over random streams.

use crm_proj_testkit::*;
use crm_proj_tickets::TicketsProjection;
use crm_projector::EventEnvelope;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

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

fn check(envelopes: &[EventEnvelope], batch: usize) -> Result<(), TestCaseError> {
    let requests = requests();
    let answers = same_query_answers::<TicketsProjection>(&requests);
    // A cache of a few rows: most reads go to the store.
    check_attached::<TicketsProjection>(envelopes, batch, 4096, None, |attached, resident| {
        answers(attached, resident)?;
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn attached_valid_streams_write_and_answer_as_in_memory(
        seeds in seeds(150),
        batch in 1usize..8,
    ) {
        check(&valid_stream(&seeds), batch)?;
    }

    #[test]
    fn attached_arbitrary_streams_write_and_answer_as_in_memory(
        seeds in seeds(150),
        batch in 1usize..8,
    ) {
        check(&arbitrary_stream(&seeds), batch)?;
    }
}
