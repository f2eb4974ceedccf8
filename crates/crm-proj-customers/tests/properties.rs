//! Random event streams: valid ones (commands through `decide`/`evolve`) and arbitrary ones
//! never panic the projection, and the store it writes rebuilds exactly the live model.

use crm_domain::Event;
use crm_proj_customers::{CustomersProjection, LifecycleStage};
use crm_proj_testkit::*;
use crm_projector::{EventEnvelope, Projection};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

mod support;
use support::requests;

const STREAMS: u32 = 1024;
const COMMANDS_PER_STREAM_MAX: usize = 120;

proptest! {
    #![proptest_config(ProptestConfig { cases: STREAMS, ..ProptestConfig::default() })]

    #[test]
    fn valid_streams_restore_to_the_live_model(
        seeds in seeds(COMMANDS_PER_STREAM_MAX),
        batch in 1usize..8,
        split in any::<Index>(),
    ) {
        let envelopes = valid_stream(&seeds);
        check_store_round_trips(&envelopes, batch, split)?;
        check_view_invariants(&envelopes)?;
    }

    #[test]
    fn arbitrary_streams_never_panic_and_restore_to_the_live_model(
        seeds in seeds(COMMANDS_PER_STREAM_MAX),
        batch in 1usize..8,
        split in any::<Index>(),
    ) {
        let envelopes = arbitrary_stream(&seeds);
        check_store_round_trips(&envelopes, batch, split)?;
    }
}

/// The generator reaches most events; a fixed sample pins that down.
#[test]
fn valid_streams_reach_most_event_types() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..64 {
        let seeds = seeds(COMMANDS_PER_STREAM_MAX)
            .new_tree(&mut runner)
            .expect("seeds")
            .current();
        seen.extend(valid_stream(&seeds).iter().map(|e| e.event.event_type()));
    }
    let missing: Vec<_> = Event::TYPES
        .iter()
        .map(|(_, name, _)| *name)
        .filter(|name| !seen.contains(name))
        .collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}

fn check_store_round_trips(
    envelopes: &[EventEnvelope],
    batch: usize,
    split: Index,
) -> Result<(), TestCaseError> {
    let mut live = CustomersProjection::new();
    let mut store = Store::default();
    feed(&mut live, &mut store, envelopes, batch);

    // Restoring the store gives the live model.
    let mut restored = CustomersProjection::new();
    store.restore_into(&mut restored);
    prop_assert_eq!(&restored, &live);

    // Rebuilding again, in other batches, writes byte-identical entries.
    let mut again = CustomersProjection::new();
    let mut store_again = Store::default();
    feed(&mut again, &mut store_again, envelopes, envelopes.len());
    prop_assert_eq!(&store_again, &store);

    // Restored mid-way and continued equals fed directly.
    let split = split.index(envelopes.len() + 1);
    let mut first = CustomersProjection::new();
    let mut resumed_store = Store::default();
    feed(&mut first, &mut resumed_store, &envelopes[..split], batch);
    let mut resumed = CustomersProjection::new();
    resumed_store.restore_into(&mut resumed);
    feed(&mut resumed, &mut resumed_store, &envelopes[split..], batch);
    prop_assert_eq!(&resumed_store, &store);
    prop_assert_eq!(&resumed, &live);

    // Queries answer the same from both, and never panic.
    same_query_answers(&requests())(&resumed, &live)?;
    Ok(())
}

/// Checks each registered customer's view against the events that concern it.
fn check_view_invariants(envelopes: &[EventEnvelope]) -> Result<(), TestCaseError> {
    let mut projection = CustomersProjection::new();
    for envelope in envelopes {
        projection.apply(envelope);
    }
    let page = projection
        .query("customer.list", &json!({"limit": 500}))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let listed = page["customers"].as_array().map_or(0, Vec::len);
    prop_assert_eq!(listed, projection.customers_count());

    for n in 1..=4u128 {
        let customer = id(n);
        let Some(view) = projection.customer(customer) else {
            continue;
        };
        let placed: Vec<_> = envelopes
            .iter()
            .filter_map(|e| match &e.event {
                Event::OrderPlaced(o) if o.customer_id == customer => Some(o.order_id),
                _ => None,
            })
            .collect();
        let cancelled = envelopes
            .iter()
            .filter(|e| matches!(&e.event, Event::OrderCancelled(o) if o.customer_id == customer))
            .count();
        prop_assert_eq!(view.orders_count as usize, placed.len() - cancelled);
        let churned = envelopes.iter().rev().find_map(|e| match &e.event {
            Event::CustomerChurned(c) if c.customer_id == customer => Some(true),
            Event::CustomerReactivated(c) if c.customer_id == customer => Some(false),
            _ => None,
        });
        prop_assert_eq!(
            view.lifecycle_stage,
            LifecycleStage::of(view.orders_count, churned.unwrap_or(false))
        );
        prop_assert!(view.open_tickets <= view.total_tickets);
        prop_assert!(view.leads.open <= view.leads.total);
        prop_assert!((0.0..=1.0).contains(&view.profile_completeness));
        // Valid streams refund at most each order's amount; the sums are exact, so that
        // holds of the sums too, whatever their size.
        for (currency, revenue) in &view.revenue_exact {
            let refunds = view
                .refunds_exact
                .get(currency)
                .copied()
                .unwrap_or_default();
            prop_assert!(refunds <= *revenue);
        }
        prop_assert!(view.first_order_at <= view.last_order_at);
        prop_assert!(view
            .contacts
            .windows(2)
            .all(|w| w[0].contact_id < w[1].contact_id));
    }
    Ok(())
}
