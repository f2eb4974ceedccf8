//! Funnel values near and beyond the limits of JSON numbers: many leads estimated and won at
//! the largest amount a command may carry. The stage values and the average deal value equal
//! an exact `i128` recount of the events, and the `funnel.get` reply, as bytes, carries them
//! digit for digit (docs/NATS_API.md, "Big numbers").

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::money::{AMOUNT_MINOR_MAX, JSON_SAFE_INTEGER_MAX};
use crm_domain::{Currency, Event};
use crm_proj_funnel::FunnelProjection;
use crm_proj_testkit::*;
use crm_projector::{EventEnvelope, ReadModel};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

/// Per currency: the estimates of the open leads (all in the first stage: the big streams
/// never advance), and (sum, count) of the deal values of the won leads.
struct Recount {
    open_values: BTreeMap<Currency, i128>,
    deals: BTreeMap<Currency, (i128, i128)>,
}

fn recount(envelopes: &[EventEnvelope]) -> Recount {
    let mut estimates: BTreeMap<Uuid, Option<crm_domain::Money>> = BTreeMap::new();
    let mut closed: BTreeSet<Uuid> = BTreeSet::new();
    let mut deals: BTreeMap<Currency, (i128, i128)> = BTreeMap::new();
    for envelope in envelopes {
        match &envelope.event {
            Event::LeadCreated(c) => {
                estimates.insert(c.lead_id, c.estimated_value);
            }
            Event::LeadWon(w) => {
                closed.insert(w.lead_id);
                let deal = deals.entry(w.deal_value.currency).or_default();
                deal.0 += i128::from(w.deal_value.amount_minor);
                deal.1 += 1;
            }
            _ => {}
        }
    }
    let mut open_values: BTreeMap<Currency, i128> = BTreeMap::new();
    for (lead, estimate) in &estimates {
        if let (false, Some(value)) = (closed.contains(lead), estimate) {
            *open_values.entry(value.currency).or_default() += i128::from(value.amount_minor);
        }
    }
    Recount { open_values, deals }
}

fn reply_text(projection: &FunnelProjection) -> String {
    let reply = projection
        .query("funnel.get", &json!({}))
        .expect("the default pipeline");
    serde_json::to_string(&reply).expect("a reply serializes")
}

/// `name_exact` holds the digits as a string; `name` the number when JSON-safe, else `null`.
fn assert_rendered(text: &str, name: &str, currency: Currency, value: i128) {
    let exact = format!(r#""{name}_exact":{{"{currency}":"{value}""#);
    let number = if value.abs() <= JSON_SAFE_INTEGER_MAX {
        format!(r#""{name}":{{"{currency}":{value}"#)
    } else {
        format!(r#""{name}":{{"{currency}":null"#)
    };
    // Money maps list currencies in order; the big streams use EUR, then USD.
    let (exact, number) = if currency.as_str() == "USD" {
        (
            format!(r#""{currency}":"{value}"}}"#),
            number.replace(&format!(r#""{name}":{{"#), ""),
        )
    } else {
        (exact, number)
    };
    assert!(text.contains(&exact), "{exact} in {text}");
    assert!(text.contains(&number), "{number} in {text}");
}

/// Half away from zero.
fn mean(sum: i128, count: i128) -> i128 {
    (2 * sum.abs() + count) / (2 * count) * sum.signum()
}

fn check(envelopes: &[EventEnvelope]) {
    let mut projection = FunnelProjection::new();
    for envelope in envelopes {
        projection.apply(envelope);
    }
    let expected = recount(envelopes);
    let funnel = projection.funnel("default", None).expect("default");
    let text = reply_text(&projection);
    let first = &funnel.stages[0];
    let values: BTreeMap<Currency, i128> =
        first.value_exact.iter().map(|(c, v)| (*c, v.0)).collect();
    assert_eq!(values, expected.open_values);
    for (currency, value) in &expected.open_values {
        assert_rendered(&text, "value", *currency, *value);
    }
    let averages: BTreeMap<Currency, i128> = funnel
        .average_deal_value_exact
        .iter()
        .flatten()
        .map(|(c, v)| (*c, v.0))
        .collect();
    let expected_averages: BTreeMap<Currency, i128> = expected
        .deals
        .iter()
        .map(|(c, (sum, count))| (*c, mean(*sum, *count)))
        .collect();
    assert_eq!(averages, expected_averages);
    for (currency, average) in &expected_averages {
        assert_rendered(&text, "average_deal_value", *currency, *average);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn values_near_the_bound_equal_an_exact_recount_and_render_exactly(
        seeds in big_seeds(400),
    ) {
        check(&big_money_stream(&seeds));
    }
}

#[test]
fn a_stage_value_above_i64_max_is_exact_on_the_wire() {
    // 9,300 open leads estimated at 10^15: 9.3 x 10^18 > i64::MAX; two won at the bound and
    // at the bound - 1 (mean rounded half away from zero).
    let leads = 9_300u128;
    let mut log = Log::default();
    let at = ts("2026-11-02T09:00:00Z");
    for n in 0..leads + 2 {
        log.push(at, created(id(n + 1), AMOUNT_MINOR_MAX));
    }
    let won_at = ts("2026-11-12T09:00:00Z");
    log.push(won_at, won(id(leads + 1), AMOUNT_MINOR_MAX));
    log.push(won_at, won(id(leads + 2), AMOUNT_MINOR_MAX - 1));
    let mut projection = FunnelProjection::new();
    for envelope in &log.envelopes {
        projection.apply(envelope);
    }
    let text = reply_text(&projection);
    assert!(text.contains(r#""value":{"EUR":null}"#), "{text}");
    assert!(
        text.contains(r#""value_exact":{"EUR":"9300000000000000000"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#""average_deal_value":{"EUR":1000000000000000}"#),
        "{text}"
    );
    assert!(
        text.contains(r#""average_deal_value_exact":{"EUR":"1000000000000000"}"#),
        "{text}"
    );
    // velocity = open x win rate x mean deal / mean days = 9300 x 1 x (10^15 - 0.5) / 10,
    // exactly 929999999999999535 (the float formula would be off in the last digits).
    assert!(text.contains(r#""velocity":{"EUR":null}"#), "{text}");
    assert!(
        text.contains(r#""velocity_exact":{"EUR":"929999999999999535"}"#),
        "{text}"
    );
    assert!(
        !text.contains("9223372036854775807"),
        "never saturated: {text}"
    );
}

fn created(lead: Uuid, estimate: i64) -> Event {
    use crm_domain::event::LeadCreated;
    use crm_domain::types::LeadSource;
    Event::LeadCreated(LeadCreated {
        lead_id: lead,
        name: "Big".into(),
        email: None,
        phone: None,
        company: None,
        source: LeadSource::Web,
        campaign_id: None,
        customer_id: None,
        owner: None,
        estimated_value: Some(eur(estimate)),
        pipeline: "default".into(),
        stage: "awareness".into(),
    })
}

fn won(lead: Uuid, deal: i64) -> Event {
    use crm_domain::event::LeadWon;
    Event::LeadWon(LeadWon {
        lead_id: lead,
        deal_value: eur(deal),
        customer_id: id(1),
        new_customer: false,
    })
}
