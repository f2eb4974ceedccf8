//! The worked example of `docs/DOMAIN.md`, fed as events with `occurred_at` in November
//! 2026, gives the expected KPIs all-time and for `{"month": "2026-11"}`.

mod support;

use crm_domain::types::{LeadSource, OrderChannel, SurveyKind, TicketCategory};
use crm_proj_kpis::KpiProjection;
use crm_projector::{Projection, QueryError};
use serde_json::{json, Value};
use support::*;

const CUSTOMER_A: u128 = 0xa;
const CUSTOMER_B: u128 = 0xb;

fn lead(n: u128) -> uuid::Uuid {
    id(0x1ead_0000 + n)
}

fn worked_example() -> Log {
    let mut log = Log::new();
    let start = ts("2026-11-02T09:00:00Z");
    // 1. Ten leads: 1-6 from the web, 7-10 by referral.
    for n in 1..=10 {
        let source = if n <= 6 {
            LeadSource::Web
        } else {
            LeadSource::Referral
        };
        log.add(
            minutes_after(start, n as i64),
            lead_created(lead(n), source),
        );
    }
    // 2. Six advance to interest, four of those to consideration, three to decision.
    let stages = ["awareness", "interest", "consideration", "decision"];
    for (n, reached) in [(1, 3), (2, 3), (7, 3), (3, 2), (4, 1), (8, 1)] {
        for step in 0..reached {
            log.at(
                "2026-11-05T10:00:00Z",
                advanced(lead(n), stages[step], stages[step + 1]),
            );
        }
    }
    // 3. Two are won (each registers a new customer), one is lost.
    log.at(
        "2026-11-10T10:00:00Z",
        lead_won(lead(1), eur(100_000), id(CUSTOMER_A), true),
    )
    .at(
        "2026-11-10T10:00:00Z",
        registered(id(CUSTOMER_A), Some(LeadSource::Web), Some(lead(1))),
    )
    .at(
        "2026-11-11T10:00:00Z",
        lead_won(lead(7), eur(300_000), id(CUSTOMER_B), true),
    )
    .at(
        "2026-11-11T10:00:00Z",
        registered(id(CUSTOMER_B), Some(LeadSource::Referral), Some(lead(7))),
    )
    .at("2026-11-12T10:00:00Z", lead_lost(lead(2)));
    // 4. Orders of 400.00 and 600.00 (A) and 1,000.00 (B); the 600.00 one refunded 100.00.
    log.at(
        "2026-11-13T10:00:00Z",
        order_placed(id(1), id(CUSTOMER_A), eur(40_000), OrderChannel::Online),
    )
    .at(
        "2026-11-14T10:00:00Z",
        order_placed(id(2), id(CUSTOMER_A), eur(60_000), OrderChannel::Online),
    )
    .at(
        "2026-11-15T10:00:00Z",
        order_placed(id(3), id(CUSTOMER_B), eur(100_000), OrderChannel::Store),
    )
    .at(
        "2026-11-16T10:00:00Z",
        refunded(id(2), id(CUSTOMER_A), eur(10_000)),
    );
    // 5. Surveys.
    log.at(
        "2026-11-17T10:00:00Z",
        survey(id(CUSTOMER_A), SurveyKind::Nps, 10),
    )
    .at(
        "2026-11-17T10:00:00Z",
        survey(id(CUSTOMER_A), SurveyKind::Csat, 5),
    )
    .at(
        "2026-11-17T11:00:00Z",
        survey(id(CUSTOMER_B), SurveyKind::Nps, 6),
    )
    .at(
        "2026-11-17T11:00:00Z",
        survey(id(CUSTOMER_B), SurveyKind::Csat, 3),
    );
    // 6. B's complaint: assigned, answered after 30 minutes, resolved after 2 hours, closed.
    let ticket = id(0x71c7);
    log.at(
        "2026-11-20T10:00:00Z",
        ticket_opened(ticket, id(CUSTOMER_B), TicketCategory::Complaint),
    )
    .at("2026-11-20T10:05:00Z", ticket_assigned(ticket))
    .at("2026-11-20T10:30:00Z", ticket_responded(ticket, true, true))
    .at("2026-11-20T12:00:00Z", ticket_resolved(ticket))
    .at("2026-11-20T12:30:00Z", ticket_closed(ticket));
    log
}

fn check_expected(kpis: &Value) {
    assert_close(&kpis["lead_conversion_rate"], 0.2, "lead conversion");
    assert_close(&kpis["win_rate"], 2.0 / 3.0, "win rate");
    assert_eq!(kpis["average_order_value"], eur_json(63_333));
    assert_eq!(kpis["counters"]["orders"], json!(3));
    assert_eq!(kpis["revenue"], eur_json(200_000));
    assert_eq!(kpis["net_revenue"], eur_json(190_000));
    assert_close(&kpis["repeat_purchase_rate"], 0.5, "repeat purchase rate");
    assert_close(&kpis["nps"], 0.0, "NPS");
    assert_close(&kpis["csat"], 0.5, "CSAT");
    assert_close(&kpis["complaint_rate"], 0.5, "complaint rate");
    assert_close(&kpis["first_response_minutes_mean"], 30.0, "first response");
    assert_close(
        &kpis["first_response_minutes_p90"],
        30.0,
        "first response p90",
    );
    assert_close(&kpis["resolution_minutes_mean"], 120.0, "resolution");
    assert_close(&kpis["resolution_minutes_p90"], 120.0, "resolution p90");
    assert_eq!(kpis["ticket_backlog"], json!(0));
    // Beyond the example's list, what follows from it.
    assert_eq!(kpis["historical_clv"], eur_json(95_000));
    assert_eq!(kpis["average_margin_per_customer"], eur_json(95_000));
    assert_eq!(kpis["counters"]["leads_created"], json!(10));
    assert_eq!(kpis["counters"]["leads_won"], json!(2));
    assert_eq!(kpis["counters"]["leads_lost"], json!(1));
    assert_eq!(kpis["counters"]["customers_with_orders"], json!(2));
    assert_eq!(kpis["counters"]["active_customers"], json!(2));
    assert_eq!(kpis["counters"]["refunds"], eur_json(10_000));
    let channels = &kpis["channel_effectiveness"];
    assert_eq!(channels["by_lead_source"]["web"]["leads"], json!(6));
    assert_eq!(channels["by_lead_source"]["web"]["won"], json!(1));
    assert_eq!(
        channels["by_lead_source"]["web"]["net_revenue"],
        eur_json(90_000)
    );
    assert_eq!(
        channels["by_lead_source"]["referral"]["net_revenue"],
        eur_json(100_000)
    );
    assert_eq!(channels["by_order_channel"]["online"]["orders"], json!(2));
    assert_eq!(channels["by_order_channel"]["store"]["orders"], json!(1));
    // Nobody churned: no churn-based KPI.
    assert_eq!(kpis["predictive_clv"], json!({ "EUR": null }));
    assert_eq!(kpis["customer_acquisition_cost"], json!({}));
}

#[test]
fn worked_example_all_time() {
    let projection = worked_example().projection();
    let reply = projection
        .query("kpi.get", &json!({}))
        .expect("kpi.get answers");
    assert_eq!(reply["period"], json!("all"));
    check_expected(&reply["kpis"]);
    assert_eq!(reply["kpis"]["sales_growth_rate"], Value::Null);
}

#[test]
fn worked_example_for_november_2026() {
    let projection = worked_example().projection();
    let reply = projection
        .query(
            "kpi.get",
            &json!({"month": "2026-11", "min_position": 3, "timeout_ms": 100}),
        )
        .expect("kpi.get answers");
    assert_eq!(reply["period"], json!("2026-11"));
    check_expected(&reply["kpis"]);
    // No sales in October: growth has no base.
    assert_eq!(reply["kpis"]["sales_growth_rate"], json!({ "EUR": null }));
    assert_eq!(
        reply["kpis"]["counters"]["active_customers_at_start"],
        json!(0)
    );
    assert_eq!(reply["kpis"]["churn_rate"], Value::Null);
}

#[test]
fn worked_example_in_another_month_is_empty_but_keeps_running_figures() {
    let projection = worked_example().projection();
    let kpis = kpis(&projection, month("2026-12"));
    assert_eq!(kpis["lead_conversion_rate"], Value::Null);
    assert_eq!(kpis["net_revenue"], json!({}));
    assert_eq!(kpis["counters"]["active_customers_at_start"], json!(2));
    assert_close(&kpis["churn_rate"], 0.0, "churn in December");
    assert_close(&kpis["retention_rate"], 1.0, "retention in December");
    assert_eq!(kpis["historical_clv"], eur_json(95_000));
    assert_eq!(kpis["sales_growth_rate"], json!({ "EUR": -1.0 }));
}

#[test]
fn queries_are_named_and_checked() {
    let projection = KpiProjection::new();
    assert_eq!(projection.name(), "kpis");
    assert_eq!(projection.queries(), &["kpi.get"]);
    assert_eq!(
        projection.query("kpi.list", &json!({})),
        Err(QueryError::UnknownQuery("kpi.list".to_owned()))
    );
    assert!(matches!(
        projection.query("kpi.get", &json!({"month": "2026-13"})),
        Err(QueryError::Malformed(_))
    ));
    assert!(matches!(
        projection.query("kpi.get", &json!({"month": 11})),
        Err(QueryError::Malformed(_))
    ));
}
