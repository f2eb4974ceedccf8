//! The funnel's counting rules, one behaviour per test, events built directly.

use crm_domain::event::*;
use crm_domain::types::LeadSource;
use crm_domain::{Event, Money, Month, Timestamp};
use crm_proj_funnel::{FunnelProjection, FunnelView, StageView};
use crm_proj_testkit::*;
use crm_projector::{Projection, QueryError};
use serde_json::json;
use uuid::Uuid;

/// Events at given days of November 2026 (fractional days as hours).
struct Given {
    log: Log,
}

fn given() -> Given {
    Given {
        log: Log::default(),
    }
}

fn day(d: f64) -> Timestamp {
    let micros = (d * 86_400_000_000.0).round() as i64;
    ts("2026-11-01T00:00:00Z").saturating_add_micros(micros)
}

impl Given {
    fn on(mut self, d: f64, event: Event) -> Given {
        self.log.push(day(d), event);
        self
    }

    fn at(mut self, at: Timestamp, event: Event) -> Given {
        self.log.push(at, event);
        self
    }

    fn project(&self) -> FunnelProjection {
        let mut projection = FunnelProjection::new();
        for envelope in &self.log.envelopes {
            projection.apply(envelope);
        }
        projection
    }

    fn funnel(&self) -> FunnelView {
        self.project()
            .funnel("default", None)
            .expect("default exists")
    }
}

fn create(lead: u128, value: Option<Money>) -> Event {
    create_in(lead, "default", "awareness", value)
}

fn create_in(lead: u128, pipeline: &str, stage: &str, value: Option<Money>) -> Event {
    Event::LeadCreated(LeadCreated {
        lead_id: id(lead),
        name: format!("Lead {lead}"),
        email: None,
        phone: None,
        company: None,
        source: LeadSource::Web,
        campaign_id: None,
        customer_id: None,
        owner: None,
        estimated_value: value,
        pipeline: pipeline.to_owned(),
        stage: stage.to_owned(),
    })
}

fn advance(lead: u128, from: &str, to: &str) -> Event {
    Event::FunnelStageAdvanced(FunnelStageAdvanced {
        lead_id: id(lead),
        pipeline: "default".to_owned(),
        from_stage: from.to_owned(),
        to_stage: to.to_owned(),
    })
}

fn revert(lead: u128, from: &str, to: &str) -> Event {
    Event::FunnelStageReverted(FunnelStageReverted {
        lead_id: id(lead),
        pipeline: "default".to_owned(),
        from_stage: from.to_owned(),
        to_stage: to.to_owned(),
        reason: "not ready".to_owned(),
    })
}

fn win(lead: u128, deal: Money) -> Event {
    Event::LeadWon(LeadWon {
        lead_id: id(lead),
        deal_value: deal,
        customer_id: Uuid::from_u128(0xc0 + lead),
        new_customer: true,
    })
}

fn lose(lead: u128) -> Event {
    Event::LeadLost(LeadLost {
        lead_id: id(lead),
        reason: "price".to_owned(),
    })
}

fn disqualify(lead: u128) -> Event {
    Event::LeadDisqualified(LeadDisqualified {
        lead_id: id(lead),
        reason: "spam".to_owned(),
    })
}

fn define(pipeline: &str, stages: &[&str]) -> Event {
    Event::PipelineDefined(PipelineDefined {
        pipeline: pipeline.to_owned(),
        stages: stages.iter().map(|s| (*s).to_owned()).collect(),
    })
}

fn stage<'a>(funnel: &'a FunnelView, name: &str) -> &'a StageView {
    funnel
        .stages
        .iter()
        .find(|s| s.stage == name)
        .unwrap_or_else(|| panic!("stage {name} in {funnel:?}"))
}

fn entered(funnel: &FunnelView) -> Vec<(&str, u64)> {
    funnel
        .stages
        .iter()
        .map(|s| (s.stage.as_str(), s.entered))
        .collect()
}

fn money_map(pairs: &[(Money, i64)]) -> crm_proj_funnel::MoneyByCurrency {
    pairs.iter().map(|(m, v)| (m.currency, Some(*v))).collect()
}

#[test]
fn a_revert_and_a_second_advance_enter_a_stage_once() {
    let funnel = given()
        .on(1.0, create(1, None))
        .on(2.0, advance(1, "awareness", "interest"))
        .on(3.0, revert(1, "interest", "awareness"))
        .on(4.0, advance(1, "awareness", "interest"))
        .funnel();
    assert_eq!(
        entered(&funnel),
        [
            ("awareness", 1),
            ("interest", 1),
            ("consideration", 0),
            ("decision", 0)
        ]
    );
    assert_eq!(stage(&funnel, "interest").current, 1);
    assert_eq!(stage(&funnel, "awareness").current, 0);
    assert_eq!(stage(&funnel, "awareness").conversion_to_next, Some(1.0));
}

#[test]
fn a_skip_advance_enters_only_its_target() {
    let funnel = given()
        .on(1.0, create(1, None))
        .on(1.0, create(2, None))
        .on(2.0, advance(1, "awareness", "decision"))
        .on(2.0, advance(2, "awareness", "interest"))
        .funnel();
    assert_eq!(
        entered(&funnel),
        [
            ("awareness", 2),
            ("interest", 1),
            ("consideration", 0),
            ("decision", 1)
        ]
    );
    // Nobody entered consideration: its conversion has a zero denominator.
    assert_eq!(stage(&funnel, "consideration").conversion_to_next, None);
    assert_eq!(stage(&funnel, "interest").conversion_to_next, Some(0.0));
}

#[test]
fn a_revert_into_a_skipped_stage_enters_it() {
    let funnel = given()
        .on(1.0, create(1, None))
        .on(2.0, advance(1, "awareness", "decision"))
        .on(3.0, revert(1, "decision", "consideration"))
        .funnel();
    assert_eq!(stage(&funnel, "consideration").entered, 1);
    assert_eq!(stage(&funnel, "consideration").current, 1);
    assert_eq!(stage(&funnel, "interest").entered, 0);
}

#[test]
fn each_completed_stay_counts_in_time_in_stage() {
    let funnel = given()
        .on(1.0, create(1, None))
        .on(2.0, advance(1, "awareness", "interest")) // awareness 1 day
        .on(5.0, revert(1, "interest", "awareness")) // interest 3 days
        .on(5.5, advance(1, "awareness", "interest")) // awareness half a day
        .funnel();
    let awareness = stage(&funnel, "awareness");
    assert_eq!(awareness.avg_days_in_stage, Some(0.75));
    assert_eq!(awareness.median_days_in_stage, Some(0.75));
    // The stay in interest now is not complete: only the first one counts.
    assert_eq!(stage(&funnel, "interest").avg_days_in_stage, Some(3.0));
    assert_eq!(stage(&funnel, "consideration").avg_days_in_stage, None);
    assert_eq!(stage(&funnel, "consideration").median_days_in_stage, None);
}

#[test]
fn medians_and_averages_over_stays() {
    // Four leads leave awareness after 1, 2, 3 and 10 days; then a fifth after 4.
    let mut given = given();
    for (lead, days) in [(1, 1.0), (2, 2.0), (3, 3.0), (4, 10.0)] {
        given = given
            .on(0.0, create(lead, None))
            .on(days, advance(lead, "awareness", "interest"));
    }
    let awareness = given.funnel().stages[0].clone();
    assert_eq!(awareness.avg_days_in_stage, Some(4.0));
    assert_eq!(awareness.median_days_in_stage, Some(2.5));
    let given = given.on(0.0, create(5, None)).on(4.0, lose(5));
    let awareness = given.funnel().stages[0].clone();
    assert_eq!(awareness.avg_days_in_stage, Some(4.0));
    assert_eq!(awareness.median_days_in_stage, Some(3.0));
}

#[test]
fn closing_a_lead_ends_its_stay_and_leaves_current_and_value() {
    let funnel = given()
        .on(1.0, create(1, Some(eur(1_000))))
        .on(1.0, create(2, Some(eur(2_000))))
        .on(1.0, create(3, Some(eur(4_000))))
        .on(1.0, create(4, Some(usd(8_000))))
        .on(2.0, win(1, eur(1_500)))
        .on(3.0, lose(2))
        .on(4.0, disqualify(3))
        .funnel();
    let awareness = stage(&funnel, "awareness");
    assert_eq!((awareness.current, awareness.entered), (1, 4));
    assert_eq!(awareness.value, money_map(&[(usd(0), 8_000)]));
    assert_eq!(awareness.avg_days_in_stage, Some(2.0));
    assert_eq!(
        (
            funnel.created,
            funnel.open,
            funnel.won,
            funnel.lost,
            funnel.disqualified
        ),
        (4, 1, 1, 1, 1)
    );
    // Disqualified leads count on neither side of the win rate.
    assert_eq!(funnel.win_rate, Some(0.5));
    assert_eq!(funnel.average_sales_cycle_days, Some(1.0));
}

#[test]
fn estimated_value_changes_move_the_stage_value() {
    let given = given()
        .on(1.0, create(1, Some(eur(1_000))))
        .on(1.0, create(2, None))
        .on(
            2.0,
            Event::LeadDetailsUpdated(LeadDetailsUpdated {
                lead_id: id(2),
                name: None,
                email: None,
                phone: None,
                company: None,
                estimated_value: Some(eur(500)),
            }),
        )
        .on(3.0, advance(1, "awareness", "interest"));
    let funnel = given.funnel();
    assert_eq!(
        stage(&funnel, "awareness").value,
        money_map(&[(eur(0), 500)])
    );
    assert_eq!(
        stage(&funnel, "interest").value,
        money_map(&[(eur(0), 1_000)])
    );
}

#[test]
fn deal_values_average_per_currency_rounding_halves_away_from_zero() {
    let funnel = given()
        .on(0.0, create(1, None))
        .on(0.0, create(2, None))
        .on(0.0, create(3, None))
        .on(0.0, create(4, None))
        .on(2.0, win(1, eur(100)))
        .on(2.0, win(2, eur(101)))
        .on(4.0, win(3, usd(7)))
        .on(4.0, lose(4))
        .funnel();
    assert_eq!(
        funnel.average_deal_value,
        Some(money_map(&[(eur(0), 101), (usd(0), 7)]))
    );
    assert_eq!(funnel.win_rate, Some(0.75));
    // No open lead left: the velocity is zero, not missing.
    assert_eq!(
        funnel.velocity,
        Some(money_map(&[(eur(0), 0), (usd(0), 0)]))
    );
    assert!(funnel
        .average_sales_cycle_days
        .is_some_and(|days| (days - 8.0 / 3.0).abs() < 1e-12));
}

#[test]
fn velocity_is_missing_without_wins_or_with_a_zero_day_cycle() {
    let lost_only = given()
        .on(0.0, create(1, None))
        .on(0.0, create(2, None))
        .on(1.0, lose(1));
    let funnel = lost_only.funnel();
    assert_eq!(funnel.win_rate, Some(0.0));
    assert_eq!(funnel.average_deal_value, None);
    assert_eq!(funnel.velocity, None);
    let instant = given()
        .on(0.0, create(1, None))
        .on(0.0, create(2, None))
        .on(0.0, win(1, eur(100)));
    let funnel = instant.funnel();
    assert_eq!(funnel.average_sales_cycle_days, Some(0.0));
    assert_eq!(funnel.velocity, None);
    let open_only = given().on(0.0, create(1, None)).funnel();
    assert_eq!(open_only.win_rate, None);
    assert_eq!(open_only.velocity, None);
}

#[test]
fn months_follow_the_lead_creation_month() {
    let projection = given()
        .at(ts("2026-10-31T23:00:00Z"), create(1, Some(eur(100))))
        .at(ts("2026-11-01T00:00:00Z"), create(2, Some(eur(200))))
        .at(ts("2026-11-02T23:00:00Z"), win(1, eur(900)))
        .project();
    let october = projection
        .funnel("default", Month::parse("2026-10"))
        .unwrap();
    let november = projection
        .funnel("default", Month::parse("2026-11"))
        .unwrap();
    let overall = projection.funnel("default", None).unwrap();
    assert_eq!((october.created, october.won, october.open), (1, 1, 0));
    assert_eq!((november.created, november.won, november.open), (1, 0, 1));
    assert_eq!((overall.created, overall.won, overall.open), (2, 1, 1));
    assert_eq!(october.average_sales_cycle_days, Some(2.0));
    assert_eq!(november.stages[0].value, money_map(&[(eur(0), 200)]));
}

#[test]
fn a_redefined_pipeline_keeps_the_stage_names_leads_were_in() {
    let given = given()
        .on(0.0, create(1, None))
        .on(0.0, create(2, None))
        .on(1.0, advance(1, "awareness", "interest"))
        .on(2.0, define("default", &["awareness", "demo", "decision"]))
        .on(3.0, advance(2, "awareness", "demo"));
    let funnel = given.funnel();
    let shown: Vec<_> = funnel
        .stages
        .iter()
        .map(|s| (s.stage.as_str(), s.current, s.entered, s.retired))
        .collect();
    assert_eq!(
        shown,
        [
            ("awareness", 0, 2, false),
            ("demo", 1, 1, false),
            ("decision", 0, 0, false),
            ("interest", 1, 1, true),
        ]
    );
    assert_eq!(stage(&funnel, "awareness").conversion_to_next, Some(0.5));
    assert_eq!(stage(&funnel, "interest").conversion_to_next, None);
    assert_eq!(funnel.open, 2);
}

#[test]
fn pipelines_are_served_once_defined() {
    let projection = given()
        .on(0.0, define("sales", &["lead", "demo", "closing"]))
        .on(1.0, create_in(1, "sales", "lead", None))
        .on(1.0, create_in(2, "nowhere", "start", None))
        .project();
    let sales = projection.funnel("sales", None).expect("defined");
    assert_eq!(sales.created, 1);
    assert_eq!(sales.stages[0].stage, "lead");
    assert_eq!(projection.funnel("nowhere", None), None);
    assert_eq!(
        projection.query("funnel.get", &json!({"pipeline": "nowhere"})),
        Err(QueryError::NotFound("pipeline nowhere".to_owned()))
    );
    let names: Vec<_> = projection.pipelines().map(|(name, _)| name).collect();
    assert_eq!(names, ["default", "sales"]);
    // The default pipeline is the default request.
    let reply = projection.query("funnel.get", &json!({})).expect("default");
    assert_eq!(reply["pipeline"], json!("default"));
    assert_eq!(reply["created"], json!(0));
}

#[test]
fn malformed_requests_are_refused() {
    let projection = FunnelProjection::new();
    for request in [
        json!({"month": "2026-13"}),
        json!({"month": "2026-1"}),
        json!({"month": "November"}),
        json!({"month": 202611}),
        json!({"pipeline": 7}),
        json!("default"),
        json!([]),
    ] {
        assert!(
            matches!(
                projection.query("funnel.get", &request),
                Err(QueryError::Malformed(_))
            ),
            "{request}"
        );
    }
    assert!(projection
        .query("funnel.get", &json!({"month": null}))
        .is_ok());
    assert!(projection.query("funnel.get", &json!(null)).is_ok());
    assert_eq!(
        projection.query("funnel.list", &json!({})),
        Err(QueryError::UnknownQuery("funnel.list".to_owned()))
    );
    assert_eq!(projection.name(), "funnel");
    assert_eq!(projection.queries(), ["funnel.get"]);
}

#[test]
fn backfilled_times_never_make_a_stay_negative() {
    let funnel = given()
        .on(5.0, create(1, None))
        .on(2.0, advance(1, "awareness", "interest"))
        .on(1.0, win(1, eur(10)))
        .funnel();
    assert_eq!(stage(&funnel, "awareness").avg_days_in_stage, Some(0.0));
    assert_eq!(stage(&funnel, "interest").avg_days_in_stage, Some(0.0));
    assert_eq!(funnel.average_sales_cycle_days, Some(0.0));
}

#[test]
fn events_for_unknown_or_closed_leads_change_nothing() {
    let given = given().on(0.0, create(1, None)).on(1.0, lose(1));
    let before = given.project();
    let after = given
        .on(2.0, advance(1, "awareness", "interest"))
        .on(2.0, win(1, eur(5)))
        .on(2.0, advance(9, "awareness", "interest"))
        .on(2.0, win(9, eur(5)))
        .on(2.0, create(1, Some(eur(3))))
        .project();
    assert_eq!(
        after.funnel("default", None),
        before.funnel("default", None)
    );
}

#[test]
fn drained_changes_restore_exactly_with_a_redefined_default() {
    let mut log = worked_example();
    log.push(
        ts("2026-11-28T00:00:00Z"),
        define("default", &["awareness", "proposal"]),
    );
    let mut live = FunnelProjection::new();
    let mut store = Store::default();
    feed(&mut live, &mut store, &log.envelopes, 4);
    assert!(store.entries.contains_key(b"pipeline/default".as_slice()));
    let lead_key = [b"lead/".as_slice(), example_lead(1).as_bytes()].concat();
    assert!(store.entries.contains_key(&lead_key));
    // The leads, the pipelines, the funnels summed from the leads, and the stay durations
    // with their medians: each table has rows, and no other table does.
    let tables = ["lead", "pipeline", "funnel", "stay", "stay_median"];
    let table_of = |key: &[u8]| {
        let slash = key.iter().position(|b| *b == b'/').expect("a table name");
        String::from_utf8(key[..slash].to_vec()).expect("a UTF-8 table name")
    };
    let stored: std::collections::BTreeSet<String> =
        store.entries.keys().map(|key| table_of(key)).collect();
    assert_eq!(stored, tables.map(str::to_owned).into(), "six tables");
    let mut restored = FunnelProjection::new();
    store.restore_into(&mut restored);
    assert_eq!(restored, live);
    let funnel = restored.funnel("default", None).expect("default");
    assert_eq!(funnel.stages[1].stage, "proposal");
    assert_eq!(funnel.stages.len(), 5, "two defined, three retired");

    let mut garbage = vec![(b"lead/x".to_vec(), vec![1u8])].into_iter();
    assert!(FunnelProjection::new().restore(&mut garbage).is_err());
    let mut old_layout = vec![(
        format!("lead/{}", example_lead(1)).into_bytes(),
        store.entries[&lead_key].clone(),
    )]
    .into_iter();
    assert!(FunnelProjection::new().restore(&mut old_layout).is_err());
    let mut garbage = vec![(b"stage/x".to_vec(), vec![1u8])].into_iter();
    assert!(FunnelProjection::new().restore(&mut garbage).is_err());
    let mut truncated = vec![(b"pipeline/default".to_vec(), vec![9u8])].into_iter();
    assert!(FunnelProjection::new().restore(&mut truncated).is_err());
}
