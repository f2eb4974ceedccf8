//! Random event streams: valid ones (commands through `decide`/`evolve`) and arbitrary ones
//! never panic the projection, the store it writes rebuilds exactly the live model, and the
//! counts match a plain recount of the events.

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::types::LeadStatus;
use crm_domain::{Event, Month};
use crm_proj_funnel::FunnelProjection;
use crm_proj_testkit::*;
use crm_projector::{EventEnvelope, Projection};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

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
        check_counts(&envelopes)?;
    }

    #[test]
    fn arbitrary_streams_never_panic_and_restore_to_the_live_model(
        seeds in seeds(COMMANDS_PER_STREAM_MAX),
        batch in 1usize..8,
        split in any::<Index>(),
    ) {
        let envelopes = arbitrary_stream(&seeds);
        check_store_round_trips(&envelopes, batch, split)?;
        check_counts(&envelopes)?;
    }
}

fn check_store_round_trips(
    envelopes: &[EventEnvelope],
    batch: usize,
    split: Index,
) -> Result<(), TestCaseError> {
    let mut live = FunnelProjection::new();
    let mut store = Store::default();
    feed(&mut live, &mut store, envelopes, batch);

    // Restoring the store gives the live model.
    let mut restored = FunnelProjection::new();
    store.restore_into(&mut restored);
    prop_assert_eq!(&restored, &live);

    // Rebuilding again, in other batches, writes byte-identical entries.
    let mut again = FunnelProjection::new();
    let mut store_again = Store::default();
    feed(&mut again, &mut store_again, envelopes, envelopes.len());
    prop_assert_eq!(&store_again, &store);

    // Restored mid-way and continued equals fed directly.
    let split = split.index(envelopes.len() + 1);
    let mut first = FunnelProjection::new();
    let mut resumed_store = Store::default();
    feed(&mut first, &mut resumed_store, &envelopes[..split], batch);
    let mut resumed = FunnelProjection::new();
    resumed_store.restore_into(&mut resumed);
    feed(&mut resumed, &mut resumed_store, &envelopes[split..], batch);
    prop_assert_eq!(&resumed_store, &store);
    prop_assert_eq!(&resumed, &live);

    // Queries answer the same from both, and never panic.
    for pipeline in ["default", "sales", "nowhere"] {
        for month in [None, Some("2026-10"), Some("2026-11"), Some("2026-12")] {
            let request = json!({"pipeline": pipeline, "month": month});
            prop_assert_eq!(
                resumed.query("funnel.get", &request),
                live.query("funnel.get", &request)
            );
        }
    }
    Ok(())
}

/// What a plain recount of the events says about one lead.
struct Recount {
    pipeline: String,
    month: Month,
    status: LeadStatus,
    stage: String,
    entered: BTreeSet<String>,
}

/// Recounts created/open/won/lost, `current` and `entered` per stage from the events, and
/// compares them with every funnel the projection serves.
fn check_counts(envelopes: &[EventEnvelope]) -> Result<(), TestCaseError> {
    let mut projection = FunnelProjection::new();
    let mut leads: BTreeMap<uuid::Uuid, Recount> = BTreeMap::new();
    for envelope in envelopes {
        projection.apply(envelope);
        let open = |leads: &BTreeMap<_, Recount>, id| {
            leads
                .get(id)
                .is_some_and(|l: &Recount| l.status == LeadStatus::Open)
        };
        match &envelope.event {
            Event::LeadCreated(e) if !leads.contains_key(&e.lead_id) => {
                leads.insert(
                    e.lead_id,
                    Recount {
                        pipeline: e.pipeline.clone(),
                        month: envelope.occurred_at.month(),
                        status: LeadStatus::Open,
                        stage: e.stage.clone(),
                        entered: BTreeSet::from([e.stage.clone()]),
                    },
                );
            }
            Event::FunnelStageAdvanced(e) if open(&leads, &e.lead_id) => {
                if let Some(lead) = leads.get_mut(&e.lead_id) {
                    lead.stage = e.to_stage.clone();
                    lead.entered.insert(e.to_stage.clone());
                }
            }
            Event::FunnelStageReverted(e) if open(&leads, &e.lead_id) => {
                if let Some(lead) = leads.get_mut(&e.lead_id) {
                    lead.stage = e.to_stage.clone();
                    lead.entered.insert(e.to_stage.clone());
                }
            }
            Event::LeadWon(e) if open(&leads, &e.lead_id) => {
                if let Some(lead) = leads.get_mut(&e.lead_id) {
                    lead.status = LeadStatus::Won;
                }
            }
            Event::LeadLost(e) if open(&leads, &e.lead_id) => {
                if let Some(lead) = leads.get_mut(&e.lead_id) {
                    lead.status = LeadStatus::Lost;
                }
            }
            Event::LeadDisqualified(e) if open(&leads, &e.lead_id) => {
                if let Some(lead) = leads.get_mut(&e.lead_id) {
                    lead.status = LeadStatus::Disqualified;
                }
            }
            _ => {}
        }
    }

    let pipelines: Vec<String> = projection
        .pipelines()
        .map(|(name, _)| name.to_owned())
        .collect();
    let months: BTreeSet<Month> = leads.values().map(|l| l.month).collect();
    for pipeline in &pipelines {
        for month in std::iter::once(None).chain(months.iter().copied().map(Some)) {
            let funnel = projection
                .funnel(pipeline, month)
                .ok_or_else(|| TestCaseError::fail("an existing pipeline"))?;
            let in_scope: Vec<&Recount> = leads
                .values()
                .filter(|l| &l.pipeline == pipeline && month.is_none_or(|m| l.month == m))
                .collect();
            let count = |status| in_scope.iter().filter(|l| l.status == status).count() as u64;
            prop_assert_eq!(funnel.created, in_scope.len() as u64);
            prop_assert_eq!(funnel.open, count(LeadStatus::Open));
            prop_assert_eq!(funnel.won, count(LeadStatus::Won));
            prop_assert_eq!(funnel.lost, count(LeadStatus::Lost));
            prop_assert_eq!(funnel.disqualified, count(LeadStatus::Disqualified));
            let names: BTreeSet<&str> = funnel.stages.iter().map(|s| s.stage.as_str()).collect();
            prop_assert_eq!(names.len(), funnel.stages.len(), "each stage once");
            for stage in &funnel.stages {
                let entered = in_scope
                    .iter()
                    .filter(|l| l.entered.contains(&stage.stage))
                    .count();
                let current = in_scope
                    .iter()
                    .filter(|l| l.status == LeadStatus::Open && l.stage == stage.stage)
                    .count();
                prop_assert_eq!(stage.entered, entered as u64, "entered {}", stage.stage);
                prop_assert_eq!(stage.current, current as u64, "current {}", stage.stage);
                prop_assert!(stage.current <= stage.entered);
                for days in [stage.avg_days_in_stage, stage.median_days_in_stage]
                    .into_iter()
                    .flatten()
                {
                    prop_assert!(days >= 0.0 && days.is_finite());
                }
            }
            // Every stage a lead in scope entered is shown.
            for lead in &in_scope {
                for stage in &lead.entered {
                    prop_assert!(names.contains(stage.as_str()), "stage {} shown", stage);
                }
            }
            let stage_current: u64 = funnel.stages.iter().map(|s| s.current).sum();
            prop_assert_eq!(stage_current, funnel.open);
            if let Some(rate) = funnel.win_rate {
                prop_assert!((0.0..=1.0).contains(&rate));
            }
        }
    }
    Ok(())
}
