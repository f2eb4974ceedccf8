//! `docs/DOMAIN.md`'s worked example through the funnel, overall and for November 2026, by the
//! typed API and by the `funnel.get` query.

use crm_domain::Month;
use crm_proj_funnel::{FunnelProjection, FunnelView};
use crm_proj_testkit::*;
use crm_projector::Projection;
use serde_json::json;

fn projection() -> FunnelProjection {
    let mut projection = FunnelProjection::new();
    for envelope in &worked_example().envelopes {
        projection.apply(envelope);
    }
    projection
}

fn november() -> Option<Month> {
    Month::parse("2026-11")
}

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|actual| (actual - expected).abs() < 1e-9)
}

fn check_example_funnel(funnel: &FunnelView) {
    assert_eq!(funnel.pipeline, "default");
    assert_eq!(
        (
            funnel.created,
            funnel.open,
            funnel.won,
            funnel.lost,
            funnel.disqualified
        ),
        (10, 7, 2, 1, 0)
    );
    let names: Vec<_> = funnel.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(
        names,
        ["awareness", "interest", "consideration", "decision"]
    );
    let counts: Vec<_> = funnel
        .stages
        .iter()
        .map(|s| (s.current, s.entered))
        .collect();
    assert_eq!(counts, [(4, 10), (2, 6), (1, 4), (0, 3)]);

    let [awareness, interest, consideration, decision] = &funnel.stages[..] else {
        panic!("four stages");
    };
    assert!(close(awareness.conversion_to_next, 0.6));
    assert!(
        close(interest.conversion_to_next, 4.0 / 6.0),
        "interest -> consideration 4/6"
    );
    assert!(close(consideration.conversion_to_next, 0.75));
    assert_eq!(decision.conversion_to_next, None);

    assert!(close(awareness.avg_days_in_stage, 2.0));
    assert!(close(awareness.median_days_in_stage, 2.0));
    assert!(close(interest.avg_days_in_stage, 3.0));
    assert!(close(consideration.median_days_in_stage, 4.0));
    // Decision: won after 5 days (twice), lost after 7.
    assert!(close(decision.avg_days_in_stage, 17.0 / 3.0));
    assert!(close(decision.median_days_in_stage, 5.0));

    let eur = |minor: i64| [(eur(0).currency, Some(minor))].into_iter().collect();
    assert_eq!(awareness.value, eur(4 * LEAD_ESTIMATE_MINOR));
    assert_eq!(interest.value, eur(2 * LEAD_ESTIMATE_MINOR));
    assert_eq!(consideration.value, eur(LEAD_ESTIMATE_MINOR));
    assert!(decision.value.is_empty());
    assert!(funnel.stages.iter().all(|s| !s.retired));

    assert!(close(funnel.win_rate, 2.0 / 3.0));
    assert_eq!(funnel.average_deal_value, Some(eur(200_000)));
    assert!(close(funnel.average_sales_cycle_days, 14.0));
    // 7 open x 2/3 x 2,000.00 / 14 days = 666.67 a day.
    assert_eq!(funnel.velocity, Some(eur(66_667)));
}

#[test]
fn the_example_funnel_overall() {
    let funnel = projection()
        .funnel("default", None)
        .expect("the default pipeline");
    assert_eq!(funnel.month, None);
    check_example_funnel(&funnel);
}

#[test]
fn the_example_funnel_for_november_2026() {
    let funnel = projection()
        .funnel("default", november())
        .expect("the default pipeline");
    assert_eq!(funnel.month, november());
    check_example_funnel(&funnel);
}

#[test]
fn a_month_without_leads_has_an_empty_funnel() {
    let funnel = projection()
        .funnel("default", Month::parse("2026-10"))
        .expect("the default pipeline");
    assert_eq!((funnel.created, funnel.open, funnel.won), (0, 0, 0));
    assert_eq!(funnel.stages.len(), 4);
    assert!(funnel
        .stages
        .iter()
        .all(|s| s.entered == 0 && s.conversion_to_next.is_none()));
    assert_eq!(funnel.win_rate, None);
    assert_eq!(funnel.average_deal_value, None);
    assert_eq!(funnel.average_sales_cycle_days, None);
    assert_eq!(funnel.velocity, None);
}

#[test]
fn funnel_get_answers_the_wire_shape() {
    let projection = projection();
    for (request, month) in [
        (json!({"pipeline": "default"}), json!(null)),
        (
            json!({"pipeline": "default", "month": "2026-11", "min_position": 1, "timeout_ms": 5}),
            json!("2026-11"),
        ),
    ] {
        let reply = projection.query("funnel.get", &request).expect("a funnel");
        assert_eq!(reply["pipeline"], json!("default"));
        assert_eq!(reply["month"], month);
        assert_eq!(reply["open"], json!(7));
        assert_eq!(reply["won"], json!(2));
        assert_eq!(reply["lost"], json!(1));
        assert_eq!(reply["average_deal_value"], json!({"EUR": 200_000}));
        assert_eq!(reply["velocity"], json!({"EUR": 66_667}));
        assert_eq!(reply["average_sales_cycle_days"], json!(14.0));
        let win_rate = reply["win_rate"].as_f64().expect("a rate");
        assert!((win_rate - 2.0 / 3.0).abs() < 1e-9);
        let interest = &reply["stages"][1];
        assert_eq!(interest["stage"], json!("interest"));
        assert_eq!(interest["current"], json!(2));
        assert_eq!(interest["entered"], json!(6));
        let conversion = interest["conversion_to_next"].as_f64().expect("a rate");
        assert!((conversion - 4.0 / 6.0).abs() < 1e-9);
        assert_eq!(interest["avg_days_in_stage"], json!(3.0));
        assert_eq!(interest["median_days_in_stage"], json!(3.0));
        assert_eq!(interest["value"], json!({"EUR": 100_000}));
        assert_eq!(reply["stages"][3]["conversion_to_next"], json!(null));
        assert_eq!(reply["stages"][3]["value"], json!({}));
    }
}
