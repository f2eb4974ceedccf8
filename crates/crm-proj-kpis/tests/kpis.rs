//! Each KPI's edge cases: zero denominators, cancellations, refunds, reactivation, backfilled
//! months, percentiles, rounding, several currencies, odd event sequences.

mod support;

use crm_domain::time::MICROS_PER_MINUTE;
use crm_domain::types::{LeadSource, OrderChannel, SurveyKind, TicketCategory};
use crm_domain::Timestamp;
use crm_proj_kpis::{KpiProjection, Period};
use crm_projector::Projection;
use serde_json::{json, Value};
use support::*;

const RATES: [&str; 17] = [
    "lead_conversion_rate",
    "win_rate",
    "average_sales_cycle_days",
    "repeat_purchase_rate",
    "churn_rate",
    "retention_rate",
    "nps",
    "csat",
    "complaint_rate",
    "first_response_minutes_mean",
    "first_response_minutes_p90",
    "resolution_minutes_mean",
    "resolution_minutes_p90",
    "contacts_per_customer",
    "marketing_feedback_rate",
    "data_completeness",
    "data_update_rate",
];

const MONEY: [&str; 8] = [
    "revenue",
    "net_revenue",
    "average_order_value",
    "historical_clv",
    "predictive_clv",
    "average_margin_per_customer",
    "customer_acquisition_cost",
    "sales_growth_rate",
];

#[test]
fn an_empty_model_has_null_rates_empty_money_and_zero_counters() {
    let projection = KpiProjection::new();
    for period in [Period::All, month("2026-11")] {
        let kpis = kpis(&projection, period);
        for rate in RATES {
            assert_eq!(kpis[rate], Value::Null, "{rate} of {period}");
        }
        for money in MONEY {
            if money == "sales_growth_rate" && period == Period::All {
                assert_eq!(kpis[money], Value::Null);
            } else {
                assert_eq!(kpis[money], json!({}), "{money} of {period}");
            }
        }
        assert_eq!(kpis["ticket_backlog"], json!(0));
        for (name, value) in kpis["counters"].as_object().expect("counters") {
            assert!(
                value == &json!(0)
                    || value == &json!("0")
                    || value == &json!({})
                    || value.is_null(),
                "counter {name} = {value}"
            );
        }
        let sources = &kpis["channel_effectiveness"]["by_lead_source"];
        assert_eq!(sources.as_object().map(|s| s.len()), Some(7));
        assert_eq!(sources["web"]["conversion_rate"], Value::Null);
        let channels = &kpis["channel_effectiveness"]["by_order_channel"];
        assert_eq!(channels.as_object().map(|s| s.len()), Some(5));
    }
}

#[test]
fn rates_over_active_customers_are_null_without_any() {
    let mut log = Log::new();
    log.at(
        "2026-11-02T10:00:00Z",
        ticket_opened(id(1), id(9), TicketCategory::Complaint),
    )
    .at("2026-11-02T10:00:00Z", interaction(id(9), 1));
    let projection = log.projection();
    for period in [Period::All, month("2026-11")] {
        let kpis = kpis(&projection, period);
        assert_eq!(kpis["counters"]["complaints_opened"], json!(1));
        assert_eq!(kpis["counters"]["interactions"], json!(1));
        for rate in [
            "complaint_rate",
            "contacts_per_customer",
            "data_completeness",
            "data_update_rate",
            "churn_rate",
            "retention_rate",
        ] {
            assert_eq!(kpis[rate], Value::Null, "{rate} of {period}");
        }
        assert_eq!(kpis["ticket_backlog"], json!(1));
    }
}

#[test]
fn cancelled_orders_do_not_count() {
    let (c, d) = (id(1), id(2));
    let mut log = Log::new();
    log.at(
        "2026-11-02T10:00:00Z",
        order_placed(id(10), c, eur(100), OrderChannel::Online),
    )
    .at(
        "2026-11-03T10:00:00Z",
        order_placed(id(11), c, eur(300), OrderChannel::Online),
    )
    .at(
        "2026-11-04T10:00:00Z",
        order_placed(id(12), d, money(500, "USD"), OrderChannel::Store),
    )
    .at("2026-12-01T10:00:00Z", cancelled(id(11), c))
    .at("2026-12-01T10:00:00Z", cancelled(id(12), d))
    // A second cancellation changes nothing.
    .at("2026-12-02T10:00:00Z", cancelled(id(12), d));
    let projection = log.projection();
    for period in [Period::All, month("2026-11")] {
        let kpis = kpis(&projection, period);
        assert_eq!(kpis["counters"]["orders"], json!(1), "{period}");
        assert_eq!(kpis["revenue"], eur_json(100));
        assert_eq!(kpis["average_order_value"], eur_json(100));
        assert_eq!(kpis["counters"]["customers_with_orders"], json!(1));
        assert_close(&kpis["repeat_purchase_rate"], 0.0, "repeat purchase");
        let channels = &kpis["channel_effectiveness"]["by_order_channel"];
        assert_eq!(channels["store"]["orders"], json!(0));
        assert_eq!(channels["store"]["net_revenue"], json!({}));
    }
    let december = kpis(&projection, month("2026-12"));
    assert_eq!(december["counters"]["orders"], json!(0));
    assert_eq!(december["net_revenue"], json!({}));
}

#[test]
fn refunds_count_in_the_month_their_order_was_placed() {
    let c = id(1);
    let mut log = Log::new();
    log.at(
        "2026-11-20T10:00:00Z",
        order_placed(id(10), c, eur(1_000), OrderChannel::Online),
    )
    .at("2026-12-03T10:00:00Z", refunded(id(10), c, eur(300)))
    // A refund of an unknown order or in another currency changes nothing.
    .at("2026-12-03T10:00:00Z", refunded(id(99), c, eur(300)))
    .at(
        "2026-12-03T10:00:00Z",
        refunded(id(10), c, money(300, "USD")),
    );
    let projection = log.projection();
    for period in [Period::All, month("2026-11")] {
        let kpis = kpis(&projection, period);
        assert_eq!(kpis["revenue"], eur_json(1_000), "{period}");
        assert_eq!(kpis["net_revenue"], eur_json(700));
        assert_eq!(kpis["counters"]["refunds"], eur_json(300));
    }
    let december = kpis(&projection, month("2026-12"));
    assert_eq!(december["net_revenue"], json!({}));
    assert_eq!(december["counters"]["refunds"], json!({}));
}

#[test]
fn reactivation_makes_a_customer_active_again() {
    let (c1, c2) = (id(1), id(2));
    let mut log = Log::new();
    log.at("2026-01-05T10:00:00Z", registered(c1, None, None))
        .at("2026-01-06T10:00:00Z", registered(c2, None, None))
        .at("2026-02-10T10:00:00Z", churned(c1))
        // Churning a churned customer or reactivating an active one changes nothing.
        .at("2026-02-11T10:00:00Z", churned(c1))
        .at("2026-02-11T10:00:00Z", reactivated(c2))
        .at("2026-03-10T10:00:00Z", reactivated(c1))
        .at("2026-03-11T10:00:00Z", churned(c2));
    let projection = log.projection();

    let january = kpis(&projection, month("2026-01"));
    assert_eq!(january["counters"]["active_customers_at_start"], json!(0));
    assert_eq!(january["counters"]["active_customers"], json!(2));
    assert_eq!(january["churn_rate"], Value::Null);
    assert_eq!(january["retention_rate"], Value::Null);

    let february = kpis(&projection, month("2026-02"));
    assert_eq!(february["counters"]["active_customers_at_start"], json!(2));
    assert_eq!(february["counters"]["customers_churned"], json!(1));
    assert_eq!(february["counters"]["customers_reactivated"], json!(0));
    assert_close(&february["churn_rate"], 0.5, "February churn");
    assert_close(&february["retention_rate"], 0.5, "February retention");
    assert_eq!(february["counters"]["active_customers"], json!(1));

    let march = kpis(&projection, month("2026-03"));
    assert_eq!(march["counters"]["active_customers_at_start"], json!(1));
    assert_close(&march["churn_rate"], 1.0, "March churn");
    // (end 1 - new 0) / start 1.
    assert_close(&march["retention_rate"], 1.0, "March retention");
    assert_eq!(march["counters"]["active_customers"], json!(1));

    // Pooled over January..March: active at the months' starts 0 + 2 + 1 = 3.
    let all = kpis(&projection, Period::All);
    assert_eq!(all["counters"]["active_customer_months"], json!(3));
    assert_close(&all["churn_rate"], 2.0 / 3.0, "pooled churn");
    assert_close(&all["retention_rate"], 2.0 / 3.0, "pooled retention");
    assert_eq!(all["counters"]["active_customers"], json!(1));
}

#[test]
fn pooled_figures_run_through_months_without_events() {
    let mut log = Log::new();
    log.at("2026-01-05T10:00:00Z", registered(id(1), None, None))
        .at("2026-01-06T10:00:00Z", registered(id(2), None, None))
        .at("2026-04-10T10:00:00Z", churned(id(1)));
    let projection = log.projection();
    // February, March and April start with 2 active customers.
    let all = kpis(&projection, Period::All);
    assert_eq!(all["counters"]["active_customer_months"], json!(6));
    assert_close(&all["churn_rate"], 1.0 / 6.0, "pooled churn");
    let march = kpis(&projection, month("2026-03"));
    assert_eq!(march["counters"]["active_customers_at_start"], json!(2));
    assert_close(&march["churn_rate"], 0.0, "March churn");
}

#[test]
fn backfilled_events_count_in_their_own_month() {
    let (c1, c2, lead) = (id(1), id(2), id(0x1ead));
    let mut log = Log::new();
    log.at("2026-12-02T10:00:00Z", registered(c1, None, None))
        .at("2026-11-15T10:00:00Z", registered(c2, None, None))
        .at("2026-12-20T10:00:00Z", churned(c2))
        .at(
            "2026-12-05T10:00:00Z",
            order_placed(id(10), c1, eur(500), OrderChannel::Online),
        )
        .at(
            "2026-11-25T10:00:00Z",
            order_placed(id(11), c1, eur(300), OrderChannel::Online),
        )
        .at("2026-12-10T10:00:00Z", lead_created(lead, LeadSource::Web))
        .at("2026-11-30T10:00:00Z", lead_won(lead, eur(1), c1, false));
    let projection = log.projection();

    let november = kpis(&projection, month("2026-11"));
    assert_eq!(november["counters"]["active_customers"], json!(1));
    assert_eq!(november["historical_clv"], eur_json(300));
    assert_eq!(
        november["counters"]["historical_customers_with_orders"],
        json!({"EUR": 1})
    );
    assert_close(&november["win_rate"], 1.0, "November win rate");
    // Won before it was created: the cycle is clamped at zero.
    assert_close(&november["average_sales_cycle_days"], 0.0, "sales cycle");
    assert_eq!(november["lead_conversion_rate"], Value::Null);

    let december = kpis(&projection, month("2026-12"));
    assert_eq!(december["counters"]["active_customers_at_start"], json!(1));
    assert_close(&december["churn_rate"], 1.0, "December churn");
    assert_eq!(december["counters"]["active_customers"], json!(1));
    assert_eq!(december["historical_clv"], eur_json(800));
    assert_eq!(
        december["counters"]["historical_customers_with_orders"],
        json!({"EUR": 1})
    );
    assert_close(&december["lead_conversion_rate"], 1.0, "December cohort");
    assert_eq!(december["win_rate"], Value::Null);

    let all = kpis(&projection, Period::All);
    assert_eq!(all["historical_clv"], eur_json(800));
    assert_eq!(all["counters"]["customers_with_orders"], json!(1));
    assert_eq!(all["counters"]["customers_with_repeat_orders"], json!(1));
    assert_eq!(
        all["counters"]["customer_months_with_orders_by_currency"],
        json!({"EUR": 2})
    );
}

#[test]
fn response_and_resolution_times_take_the_first_and_the_nearest_rank() {
    let opened = ts("2026-11-02T08:00:00Z");
    let mut log = Log::new();
    for n in 1..=11u128 {
        let ticket = id(n);
        let minutes = n as i64;
        log.add(
            opened,
            ticket_opened(ticket, id(100), TicketCategory::Question),
        )
        // An internal note is no response.
        .add(opened, ticket_responded(ticket, false, false))
        .add(
            minutes_after(opened, minutes),
            ticket_responded(ticket, true, true),
        )
        // Only the first public response counts.
        .add(
            minutes_after(opened, 500),
            ticket_responded(ticket, true, false),
        );
    }
    // Ticket 1: resolved after 90 s; reopened and resolved again later, which is ignored.
    let exact = opened.saturating_add_micros(MICROS_PER_MINUTE + MICROS_PER_MINUTE / 2);
    log.add(exact, ticket_resolved(id(1)))
        .at("2026-12-01T08:00:00Z", ticket_reopened(id(1)))
        .at("2026-12-02T08:00:00Z", ticket_resolved(id(1)));
    let projection = log.projection();
    for period in [Period::All, month("2026-11")] {
        let kpis = kpis(&projection, period);
        assert_close(&kpis["first_response_minutes_mean"], 6.0, "mean of 1..=11");
        // Nearest rank ceil(0.9 x 11) = 10.
        assert_close(&kpis["first_response_minutes_p90"], 10.0, "p90 of 1..=11");
        assert_close(&kpis["resolution_minutes_mean"], 1.5, "exact resolution");
        assert_close(&kpis["resolution_minutes_p90"], 1.5, "exact resolution p90");
        assert_eq!(kpis["counters"]["first_responses"], json!(11));
        assert_eq!(kpis["counters"]["resolutions"], json!(1));
    }
    let december = kpis(&projection, month("2026-12"));
    assert_eq!(december["resolution_minutes_mean"], Value::Null);
    assert_eq!(december["resolution_minutes_p90"], Value::Null);
}

#[test]
fn the_backlog_follows_tickets_across_months() {
    let (t1, t2, t3) = (id(1), id(2), id(3));
    let c = id(100);
    let mut log = Log::new();
    log.at(
        "2026-11-02T10:00:00Z",
        ticket_opened(t1, c, TicketCategory::Incident),
    )
    .at(
        "2026-11-03T10:00:00Z",
        ticket_opened(t2, c, TicketCategory::Request),
    )
    .at("2026-11-03T10:05:00Z", ticket_closed(t2))
    .at(
        "2026-11-04T10:00:00Z",
        ticket_opened(t3, c, TicketCategory::Question),
    )
    .at("2026-11-04T10:01:00Z", ticket_assigned(t3))
    .at("2026-12-05T10:00:00Z", ticket_resolved(t1))
    // Closing a resolved ticket does not change the backlog.
    .at("2026-12-06T10:00:00Z", ticket_closed(t1))
    .at("2027-01-07T10:00:00Z", ticket_reopened(t1))
    .at("2027-02-08T10:00:00Z", ticket_resolved(t1));
    let projection = log.projection();
    let backlog = |period| kpis(&projection, period)["ticket_backlog"].clone();
    assert_eq!(backlog(month("2026-10")), json!(0));
    assert_eq!(backlog(month("2026-11")), json!(2));
    assert_eq!(backlog(month("2026-12")), json!(1));
    assert_eq!(backlog(month("2027-01")), json!(2));
    assert_eq!(backlog(month("2027-02")), json!(1));
    assert_eq!(backlog(month("2030-01")), json!(1));
    assert_eq!(backlog(Period::All), json!(1));
}

#[test]
fn money_rounds_to_the_nearest_unit_halves_away_from_zero() {
    let mut log = Log::new();
    log.at(
        "2026-11-02T10:00:00Z",
        order_with(id(10), id(1), eur(100), Some(eur(150)), None),
    )
    .at(
        "2026-11-02T10:00:00Z",
        order_with(id(11), id(2), eur(101), Some(eur(152)), None),
    );
    let kpis = kpis(&log.projection(), Period::All);
    // 201 / 2 = 100.5.
    assert_eq!(kpis["average_order_value"], eur_json(101));
    assert_eq!(kpis["historical_clv"], eur_json(101));
    // (201 - 302) / 2 = -50.5.
    assert_eq!(kpis["average_margin_per_customer"], eur_json(-51));
    assert_eq!(kpis["counters"]["cost"], eur_json(302));
}

#[test]
fn currencies_are_kept_apart() {
    let (c1, c2) = (id(1), id(2));
    let campaign = id(0xca);
    let usd = |amount| money(amount, "USD");
    let mut log = Log::new();
    log.at("2026-11-01T10:00:00Z", registered(c1, None, None))
        .at("2026-11-01T10:00:00Z", registered(c2, None, None))
        .at(
            "2026-11-02T10:00:00Z",
            order_placed(id(10), c1, eur(1_000), OrderChannel::Online),
        )
        .at(
            "2026-11-03T10:00:00Z",
            order_placed(id(11), c2, usd(500), OrderChannel::Online),
        )
        .at(
            "2026-11-04T10:00:00Z",
            order_placed(id(12), c2, usd(701), OrderChannel::Phone),
        )
        .at(
            "2026-12-02T10:00:00Z",
            order_placed(id(13), c1, eur(1_500), OrderChannel::Online),
        )
        .at("2026-12-01T10:00:00Z", campaign_launched(campaign))
        .at("2026-12-01T10:00:00Z", campaign_spend(campaign, eur(300)))
        .at("2026-12-01T10:00:00Z", campaign_spend(campaign, usd(91)));
    for n in 3..=5 {
        log.at("2026-12-03T10:00:00Z", registered(id(n), None, None));
    }
    let projection = log.projection();

    let november = kpis(&projection, month("2026-11"));
    assert_eq!(november["revenue"], json!({"EUR": 1_000, "USD": 1_201}));
    // 1201 / 2 = 600.5.
    assert_eq!(
        november["average_order_value"],
        json!({"EUR": 1_000, "USD": 601})
    );
    assert_eq!(
        november["average_margin_per_customer"],
        json!({"EUR": 1_000, "USD": 1_201})
    );
    assert_close(&november["repeat_purchase_rate"], 0.5, "repeat purchase");
    assert_eq!(
        november["counters"]["customers_with_orders_by_currency"],
        json!({"EUR": 1, "USD": 1})
    );
    assert_eq!(november["customer_acquisition_cost"], json!({}));

    let december = kpis(&projection, month("2026-12"));
    assert_eq!(december["sales_growth_rate"]["EUR"], json!(0.5));
    assert_eq!(december["sales_growth_rate"]["USD"], json!(-1.0));
    // 300 / 3 and 91 / 3 = 30.33.
    assert_eq!(
        december["customer_acquisition_cost"],
        json!({"EUR": 100, "USD": 30})
    );
    assert_eq!(
        december["historical_clv"],
        json!({"EUR": 2_500, "USD": 1_201})
    );

    let all = kpis(&projection, Period::All);
    assert_eq!(all["net_revenue"], json!({"EUR": 2_500, "USD": 1_201}));
    assert_eq!(
        all["average_order_value"],
        json!({"EUR": 1_250, "USD": 601})
    );
    // 391 over 5 registrations, per currency.
    assert_eq!(
        all["customer_acquisition_cost"],
        json!({"EUR": 60, "USD": 18})
    );
    assert_eq!(
        all["counters"]["campaign_spend"],
        json!({"EUR": 300, "USD": 91})
    );
    assert_eq!(all["sales_growth_rate"], Value::Null);
    let channels = &all["channel_effectiveness"]["by_order_channel"];
    assert_eq!(channels["phone"]["net_revenue"], json!({"USD": 701}));
    assert_eq!(
        channels["online"]["average_order_value"],
        json!({"EUR": 1_250, "USD": 500})
    );
}

#[test]
fn sales_growth_compares_with_the_previous_month() {
    let c = id(1);
    let mut log = Log::new();
    log.at(
        "2026-10-02T10:00:00Z",
        order_placed(id(10), c, eur(100), OrderChannel::Online),
    )
    .at(
        "2026-11-02T10:00:00Z",
        order_placed(id(11), c, eur(150), OrderChannel::Online),
    )
    .at(
        "2027-01-02T10:00:00Z",
        order_placed(id(12), c, eur(150), OrderChannel::Online),
    );
    let projection = log.projection();
    assert_eq!(
        kpis(&projection, month("2026-10"))["sales_growth_rate"],
        json!({"EUR": null})
    );
    assert_eq!(
        kpis(&projection, month("2026-11"))["sales_growth_rate"],
        json!({"EUR": 0.5})
    );
    assert_eq!(
        kpis(&projection, month("2026-12"))["sales_growth_rate"],
        json!({"EUR": -1.0})
    );
    // December had no sales: no base to grow from.
    assert_eq!(
        kpis(&projection, month("2027-01"))["sales_growth_rate"],
        json!({"EUR": null})
    );
    assert_eq!(
        kpis(&projection, Period::All)["sales_growth_rate"],
        Value::Null
    );
}

#[test]
fn predictive_clv_divides_the_monthly_margin_per_customer_by_the_churn_rate() {
    let customers: Vec<_> = (1..=4).map(id).collect();
    let mut log = Log::new();
    for c in &customers {
        log.at("2026-01-05T10:00:00Z", registered(*c, None, None));
    }
    log.at(
        "2026-02-02T10:00:00Z",
        order_with(id(10), customers[0], eur(1_000), Some(eur(400)), None),
    )
    .at(
        "2026-02-03T10:00:00Z",
        order_with(id(11), customers[1], eur(600), None, None),
    )
    .at("2026-02-04T10:00:00Z", churned(customers[2]));
    let projection = log.projection();
    // February: margin 1200 over 2 customers = 600 a month; churn 1/4: 600 / 0.25.
    let february = kpis(&projection, month("2026-02"));
    assert_eq!(february["average_margin_per_customer"], eur_json(600));
    assert_close(&february["churn_rate"], 0.25, "February churn");
    assert_eq!(february["predictive_clv"], eur_json(2_400));
    let all = kpis(&projection, Period::All);
    assert_eq!(all["predictive_clv"], eur_json(2_400));

    // March: another order, nobody churns. Pooled: margin 1500 over 3 customer-months,
    // churn 1 over 0 + 4 + 3 = 7 customer-months: 500 / (1/7) = 3500.
    log.at(
        "2026-03-02T10:00:00Z",
        order_with(id(12), customers[0], eur(300), None, None),
    );
    let projection = log.projection();
    let march = kpis(&projection, month("2026-03"));
    assert_eq!(march["predictive_clv"], json!({"EUR": null}));
    let all = kpis(&projection, Period::All);
    assert_eq!(all["counters"]["active_customer_months"], json!(7));
    assert_eq!(all["predictive_clv"], eur_json(3_500));
    // All time: margin 1500 over 2 distinct customers.
    assert_eq!(all["average_margin_per_customer"], eur_json(750));
}

#[test]
fn survey_scores_split_into_promoters_passives_and_detractors() {
    let nps_of = |scores: &[u8]| {
        let mut log = Log::new();
        for score in scores {
            log.at(
                "2026-11-02T10:00:00Z",
                survey(id(1), SurveyKind::Nps, *score),
            );
        }
        kpis(&log.projection(), Period::All)["nps"].clone()
    };
    assert_eq!(nps_of(&[9, 10]), json!(100.0));
    assert_eq!(nps_of(&[0, 6]), json!(-100.0));
    assert_eq!(nps_of(&[7, 8]), json!(0.0));
    assert_close(&nps_of(&[10, 7, 3, 9]), 25.0, "NPS 2 - 1 of 4");

    let mut log = Log::new();
    for score in [1, 3, 4, 5] {
        log.at(
            "2026-11-02T10:00:00Z",
            survey(id(1), SurveyKind::Csat, score),
        );
    }
    let kpis = kpis(&log.projection(), Period::All);
    assert_close(&kpis["csat"], 0.5, "CSAT");
    assert_eq!(kpis["nps"], Value::Null);
}

#[test]
fn marketing_feedback_is_responses_over_reach() {
    let campaign = id(0xca);
    let mut log = Log::new();
    log.at("2026-11-01T10:00:00Z", campaign_launched(campaign))
        .at("2026-11-02T10:00:00Z", campaign_reach(campaign, 1_000))
        .at("2026-11-03T10:00:00Z", campaign_responses(campaign, 30))
        .at("2026-12-03T10:00:00Z", campaign_responses(campaign, 20));
    let projection = log.projection();
    assert_close(
        &kpis(&projection, month("2026-11"))["marketing_feedback_rate"],
        0.03,
        "November",
    );
    assert_eq!(
        kpis(&projection, month("2026-12"))["marketing_feedback_rate"],
        Value::Null
    );
    assert_close(
        &kpis(&projection, Period::All)["marketing_feedback_rate"],
        0.05,
        "all time",
    );
}

#[test]
fn data_completeness_and_update_rate_follow_active_customers() {
    let (c1, c2, c3) = (id(1), id(2), id(3));
    let mut log = Log::new();
    log.at("2026-11-01T10:00:00Z", registered_with_contact(c1))
        .at("2026-11-01T10:00:00Z", registered(c2, None, None))
        .at("2026-11-01T10:00:00Z", registered_with_contact(c3))
        .at(
            "2026-11-20T10:00:00Z",
            profile_updated(c1, Some("retail"), None),
        )
        .at("2026-11-21T10:00:00Z", churned(c3))
        // A churned customer's edit counts for completeness once reactivated, not as an
        // update of an active customer.
        .at(
            "2026-12-05T10:00:00Z",
            profile_updated(c3, None, Some("EU")),
        )
        .at("2026-12-10T10:00:00Z", reactivated(c3))
        .at("2026-12-30T10:00:00Z", owner_assigned(c2, "sam"));
    let projection = log.projection();

    let november = kpis(&projection, month("2026-11"));
    // c1: 3 of 5, c2: 0 of 5 (c3 churned).
    assert_close(&november["data_completeness"], 0.3, "November completeness");
    assert_close(&november["data_update_rate"], 0.5, "November update rate");

    let december = kpis(&projection, month("2026-12"));
    // c1: 3, c2: 1, c3: 3 of 15.
    assert_eq!(december["counters"]["profile_fields_filled"], json!(7));
    assert_close(&december["data_completeness"], 7.0 / 15.0, "December");
    assert_close(
        &december["data_update_rate"],
        1.0 / 3.0,
        "December update rate",
    );

    // Newest event 2026-12-30: the window reaches back to 2026-11-30 (exclusive); c2 (Dec 30)
    // and c3 (Dec 5, active now) changed in it, c1 (Nov 20) did not.
    let all = kpis(&projection, Period::All);
    assert_close(
        &all["data_completeness"],
        7.0 / 15.0,
        "all-time completeness",
    );
    assert_close(&all["data_update_rate"], 2.0 / 3.0, "all-time update rate");
    assert_eq!(
        all["counters"]["profile_update_window_end"],
        json!("2026-12-30T10:00:00Z")
    );

    // Later events move "now": the window follows the newest event, not a clock.
    log.at("2027-01-25T10:00:00Z", interaction(c1, 1));
    let all = kpis(&log.projection(), Period::All);
    assert_close(
        &all["data_update_rate"],
        1.0 / 3.0,
        "window from 2027-01-25",
    );
    log.at("2027-02-05T10:00:00Z", interaction(c1, 2));
    let all = kpis(&log.projection(), Period::All);
    assert_close(&all["data_update_rate"], 0.0, "window from 2027-02-05");
}

#[test]
fn channel_effectiveness_attributes_orders_to_lead_sources() {
    let (lead, c1, stranger) = (id(0x1ead), id(1), id(9));
    let mut log = Log::new();
    log.at(
        "2026-11-01T10:00:00Z",
        lead_created(lead, LeadSource::Event),
    )
    .at(
        "2026-11-01T10:00:00Z",
        lead_created(id(0x1eae), LeadSource::Event),
    )
    .at(
        "2026-11-01T10:00:00Z",
        lead_created(id(0x1eaf), LeadSource::Event),
    )
    .at(
        "2026-11-01T10:00:00Z",
        registered(c1, Some(LeadSource::Referral), None),
    )
    .at("2026-11-02T10:00:00Z", lead_won(lead, eur(1), c1, false))
    .at("2026-11-02T10:00:00Z", lead_lost(id(0x1eae)))
    .at("2026-11-02T10:00:00Z", lead_disqualified(id(0x1eaf)))
    // Won after being disqualified: not counted.
    .at(
        "2026-11-03T10:00:00Z",
        lead_won(id(0x1eaf), eur(1), c1, false),
    )
    .at(
        "2026-11-03T10:00:00Z",
        order_with(id(10), c1, eur(700), None, Some(lead)),
    )
    .at(
        "2026-11-03T10:00:00Z",
        order_with(id(11), c1, eur(200), None, None),
    )
    .at(
        "2026-11-03T10:00:00Z",
        order_with(id(12), stranger, eur(50), None, None),
    );
    let kpis = kpis(&log.projection(), Period::All);
    let sources = &kpis["channel_effectiveness"]["by_lead_source"];
    assert_eq!(
        sources["event"],
        json!({
            "leads": 3, "converted": 1, "won": 1, "lost": 1,
            "conversion_rate": 1.0 / 3.0, "win_rate": 0.5,
            "orders": 1, "net_revenue": {"EUR": 700}, "net_revenue_exact": {"EUR": "700"},
        })
    );
    assert_eq!(sources["referral"]["orders"], json!(1));
    assert_eq!(sources["referral"]["net_revenue"], eur_json(200));
    assert_eq!(sources["referral"]["conversion_rate"], Value::Null);
    assert_eq!(sources["web"]["orders"], json!(0));
    assert_eq!(
        kpis["channel_effectiveness"]["by_order_channel"]["online"]["net_revenue"],
        eur_json(950)
    );
    assert_close(
        &kpis["win_rate"],
        0.5,
        "win rate without the disqualified lead",
    );
}

#[test]
fn odd_event_sequences_change_nothing_and_never_panic() {
    let far_past = Timestamp::from_micros(i64::MIN);
    let far_future = Timestamp::from_micros(i64::MAX);
    let big = eur(i64::MAX);
    let mut log = Log::new();
    log.add(far_future, lead_won(id(1), eur(1), id(2), true))
        .add(far_past, lead_lost(id(1)))
        .add(far_past, refunded(id(3), id(2), eur(5)))
        .add(far_past, cancelled(id(3), id(2)))
        .add(far_past, churned(id(2)))
        .add(far_past, reactivated(id(2)))
        .add(far_past, profile_updated(id(2), Some("x"), None))
        .add(far_past, ticket_closed(id(4)))
        .add(far_past, ticket_resolved(id(4)))
        .add(far_past, ticket_responded(id(4), true, true))
        .add(far_past, ticket_reopened(id(4)))
        .add(
            far_future,
            ticket_opened(id(4), id(2), TicketCategory::Complaint),
        )
        .add(far_past, ticket_responded(id(4), true, true))
        .add(
            far_past,
            ticket_opened(id(4), id(2), TicketCategory::Complaint),
        )
        .add(far_future, campaign_reach(id(5), u64::MAX))
        .add(far_future, campaign_reach(id(5), u64::MAX))
        .add(far_future, campaign_spend(id(5), big))
        .add(far_future, campaign_spend(id(5), big));
    for n in 10..13 {
        log.add(
            far_future,
            order_placed(id(n), id(2), big, OrderChannel::Other),
        );
        log.add(far_future, refunded(id(n), id(2), big));
        log.add(far_future, refunded(id(n), id(2), big));
    }
    log.add(far_past, lead_created(id(1), LeadSource::Other))
        .add(far_future, lead_won(id(1), eur(1), id(2), true))
        .add(far_future, lead_won(id(1), eur(1), id(2), true))
        .add(far_past, registered(id(2), None, None))
        .add(far_past, registered(id(2), None, None));

    let mut projection = log.projection();
    let all = kpis(&projection, Period::All);
    assert_eq!(all["counters"]["leads_won"], json!(1));
    assert_eq!(all["counters"]["leads_lost"], json!(0));
    assert_eq!(all["counters"]["customers_registered"], json!(1));
    assert_eq!(all["counters"]["tickets_opened"], json!(1));
    assert_eq!(all["counters"]["first_responses"], json!(1));
    assert_eq!(all["counters"]["campaign_reach"], json!(u64::MAX));
    // Three orders of i64::MAX (which `decide` now refuses): exact, never clamped; beyond
    // 2^53 the number is null and the `_exact` string has the digits.
    let max = i128::from(i64::MAX);
    assert_eq!(all["revenue"], json!({"EUR": null}));
    assert_eq!(all["revenue_exact"], json!({"EUR": (3 * max).to_string()}));
    assert_eq!(all["counters"]["orders"], json!(3));
    // Over-refunded (which `decide` refuses): the sums stay exact.
    assert_eq!(all["net_revenue"], json!({"EUR": null}));
    assert_eq!(
        all["net_revenue_exact"],
        json!({"EUR": (-3 * max).to_string()})
    );
    assert_eq!(
        all["counters"]["campaign_spend_exact"],
        json!({"EUR": (2 * max).to_string()})
    );
    for period in [
        month("0001-01"),
        month("9999-12"),
        month("1970-01"),
        month("2026-11"),
    ] {
        let report = projection.report(period);
        assert!(report["kpis"].is_object());
    }
    // The store still round-trips.
    let mut store = Store::default();
    store.take_changes(&mut projection);
    assert_eq!(store.restore(), projection);
}

/// The stored key of a row: the table's name, `/`, the key's bytes.
fn stored_key(table: &str, key: &[u8]) -> Vec<u8> {
    [table.as_bytes(), b"/", key].concat()
}

/// A month key: the year big-endian with its sign bit flipped (so years sort), the month.
fn month_key(month: crm_domain::Month) -> Vec<u8> {
    let mut key = ((month.year as u32) ^ 0x8000_0000).to_be_bytes().to_vec();
    key.push(month.month);
    key
}

#[test]
fn the_store_keeps_one_row_per_table_key_in_key_order() {
    let far_past = Timestamp::from_micros(i64::MIN);
    let newest = ts("2026-11-02T10:00:00Z");
    let mut log = Log::new();
    log.at("2026-11-01T10:00:00Z", lead_created(id(1), LeadSource::Web))
        .at("2026-10-01T10:00:00Z", registered(id(2), None, None))
        .add(far_past, interaction(id(2), 1))
        .at(
            "2026-11-02T09:00:00Z",
            order_placed(id(3), id(2), eur(100), OrderChannel::Online),
        )
        .add(
            newest,
            ticket_opened(id(4), id(2), TicketCategory::Question),
        );
    let mut projection = log.projection();
    let mut store = Store::default();
    store.take_changes(&mut projection);
    let month = |text| crm_domain::Month::parse(text).expect("YYYY-MM");

    let keys: Vec<_> = store.entries.keys().cloned().collect();
    let expected = vec![
        stored_key("all", b""),
        stored_key("customers", id(2).as_bytes()),
        stored_key("leads", id(1).as_bytes()),
        stored_key("meta", b""),
        stored_key("months", &month_key(far_past.month())),
        stored_key("months", &month_key(month("2026-10"))),
        stored_key("months", &month_key(month("2026-11"))),
        stored_key("orders", id(3).as_bytes()),
        stored_key("tickets", id(4).as_bytes()),
    ];
    assert_eq!(keys, expected);
    // The meta row is the record codec's `Option<i64>`: a tag byte, then little-endian micros;
    // then the count of recent profile changes, a little-endian `u64` (none here).
    let mut meta = vec![1];
    meta.extend_from_slice(&newest.as_micros().to_le_bytes());
    meta.extend_from_slice(&0u64.to_le_bytes());
    assert_eq!(store.entries[&stored_key("meta", b"")], meta);

    // Nothing changed since: nothing to store; a restored model stores nothing either.
    assert_eq!(projection.drain_changes(), vec![]);
    let mut restored = store.restore();
    assert_eq!(restored, projection);
    assert_eq!(restored.drain_changes(), vec![]);
}

#[test]
fn restoring_a_corrupt_store_fails_loudly() {
    use crm_projector::TableError;

    let restore = |key: Vec<u8>, value: Vec<u8>| {
        KpiProjection::new()
            .restore(&mut std::iter::once((key, value)))
            .expect_err("a damaged store does not restore")
    };
    let error = restore(stored_key("all", b""), vec![1, 2, 3]);
    assert!(matches!(error, TableError::Decode { .. }), "{error}");
    // A valid meta row (`newest_at: None`, no recent profile changes) with a byte too many.
    let error = restore(stored_key("meta", b""), vec![0; 10]);
    assert!(matches!(error, TableError::Decode { .. }), "{error}");
    // Keys of the format before tables (a prefix byte) belong to no table.
    let error = restore(vec![0x01], vec![1]);
    assert!(matches!(error, TableError::UnknownTable(_)), "{error}");
    let error = restore(stored_key("funnel", b""), vec![1]);
    assert!(matches!(error, TableError::UnknownTable(_)), "{error}");
    for key in [
        stored_key("meta", b"x"),
        stored_key("months", &[0x80, 0, 0x07, 0xea, 13]),
        stored_key("months", &[0x80, 0, 0x07, 0xea]),
        stored_key("leads", &[1, 2]),
    ] {
        let error = restore(key, vec![1]);
        assert!(matches!(error, TableError::BadKey { .. }), "{error}");
    }
}
