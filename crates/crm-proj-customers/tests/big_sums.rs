//! Money sums near and beyond the limits of JSON numbers: many orders at the largest amount
//! a command may carry, with refunds and cancellations mixed in. Each customer's sums equal
//! an exact `i128` recount of the events, and the `customer.get` reply, as bytes, carries
//! them digit for digit (docs/NATS_API.md, "Big numbers").

use std::collections::BTreeMap;

use crm_domain::money::{AMOUNT_MINOR_MAX, JSON_SAFE_INTEGER_MAX};
use crm_domain::{Currency, Event};
use crm_proj_customers::CustomersProjection;
use crm_proj_testkit::*;
use crm_projector::{EventEnvelope, ReadModel};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

/// Per customer and currency: (revenue, refunds, cost) of the orders not cancelled.
type Recount = BTreeMap<(Uuid, Currency), (i128, i128, i128)>;

fn recount(envelopes: &[EventEnvelope]) -> Recount {
    let cancelled: Vec<Uuid> = envelopes
        .iter()
        .filter_map(|e| match &e.event {
            Event::OrderCancelled(c) => Some(c.order_id),
            _ => None,
        })
        .collect();
    let mut sums = Recount::new();
    for envelope in envelopes {
        match &envelope.event {
            Event::OrderPlaced(o) if !cancelled.contains(&o.order_id) => {
                let sum = sums.entry((o.customer_id, o.amount.currency)).or_default();
                sum.0 += i128::from(o.amount.amount_minor);
                sum.2 += o.cost.map_or(0, |c| i128::from(c.amount_minor));
            }
            Event::OrderRefunded(r) if !cancelled.contains(&r.order_id) => {
                sums.entry((r.customer_id, r.amount.currency))
                    .or_default()
                    .1 += i128::from(r.amount.amount_minor);
            }
            _ => {}
        }
    }
    sums
}

/// The reply bytes of `customer.get`, as the runtime sends them.
fn reply_text(projection: &CustomersProjection, customer: Uuid) -> String {
    let reply = projection
        .query("customer.get", &json!({ "customer_id": customer }))
        .expect("a registered customer");
    serde_json::to_string(&reply).expect("a reply serializes")
}

/// `"name":{..."EUR":<value>...}` appears in `text` for the sum `value`: the exact digits as a
/// string in `name_exact`, and in `name` the number when JSON-safe, else `null`.
fn assert_rendered(text: &str, name: &str, currency: Currency, value: i128) {
    let exact = format!(r#""{currency}":"{value}""#);
    let exact_field = field(text, &format!("{name}_exact"));
    assert!(exact_field.contains(&exact), "{name}_exact: {exact_field}");
    let number = if value.abs() <= JSON_SAFE_INTEGER_MAX {
        format!(r#""{currency}":{value}"#)
    } else {
        format!(r#""{currency}":null"#)
    };
    let number_field = field(text, name);
    assert!(number_field.contains(&number), "{name}: {number_field}");
}

/// The object after `"name":` in `text` (up to its closing brace; money maps are flat).
fn field<'a>(text: &'a str, name: &str) -> &'a str {
    let key = format!(r#""{name}":{{"#);
    let start = text.find(&key).map_or(0, |i| i + key.len() - 1);
    let end = text[start..]
        .find('}')
        .map_or(text.len(), |i| start + i + 1);
    &text[start..end]
}

fn check(envelopes: &[EventEnvelope]) {
    let mut projection = CustomersProjection::new();
    for envelope in envelopes {
        projection.apply(envelope);
    }
    let sums = recount(envelopes);
    for n in BIG_CUSTOMERS {
        let customer = id(n);
        let view = projection.customer(customer).expect("registered first");
        let text = reply_text(&projection, customer);
        let mine: Vec<_> = sums.iter().filter(|((c, _), _)| *c == customer).collect();
        assert_eq!(view.revenue_exact.len(), mine.len());
        for ((_, currency), (revenue, refunds, cost)) in mine {
            let net = revenue - refunds;
            assert_eq!(view.revenue_exact[currency].0, *revenue);
            assert_eq!(view.refunds_exact[currency].0, *refunds);
            assert_eq!(view.net_revenue_exact[currency].0, net);
            assert_eq!(view.margin_exact[currency].0, net - cost);
            assert_rendered(&text, "revenue", *currency, *revenue);
            assert_rendered(&text, "refunds", *currency, *refunds);
            assert_rendered(&text, "net_revenue", *currency, net);
            assert_rendered(&text, "margin", *currency, net - cost);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sums_near_the_bound_equal_an_exact_recount_and_render_exactly(
        seeds in big_seeds(400),
    ) {
        check(&big_money_stream(&seeds));
    }
}

#[test]
fn lifetime_value_above_i64_max_is_exact_on_the_wire() {
    // 9,300 orders of 10^15 to one customer: 9.3 x 10^18 > i64::MAX (about 9.22 x 10^18),
    // with a refund of 1 and a cancelled order.
    let orders = 9_300u16;
    let envelopes = {
        let mut log = Log::default();
        let at = ts("2026-11-02T09:00:00Z");
        log.push(at, registered(id(1)));
        for n in 0..u128::from(orders) {
            log.push(at, placed(id(10_000 + n), id(1), AMOUNT_MINOR_MAX));
        }
        log.push(at, placed(id(9), id(1), AMOUNT_MINOR_MAX));
        log.push(at, cancelled(id(9), id(1)));
        log.push(at, refunded(id(10_000), id(1), 1));
        log.envelopes
    };
    let mut projection = CustomersProjection::new();
    for envelope in &envelopes {
        projection.apply(envelope);
    }
    let revenue = i128::from(orders) * i128::from(AMOUNT_MINOR_MAX);
    assert!(revenue > i128::from(i64::MAX));
    let text = reply_text(&projection, id(1));
    assert!(text.contains(r#""revenue":{"EUR":null}"#), "{text}");
    assert!(
        text.contains(r#""revenue_exact":{"EUR":"9300000000000000000"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#""net_revenue_exact":{"EUR":"9299999999999999999"}"#),
        "{text}"
    );
    assert!(text.contains(r#""refunds":{"EUR":1}"#), "{text}");
    assert!(text.contains(r#""refunds_exact":{"EUR":"1"}"#), "{text}");
    assert!(
        !text.contains("9223372036854775807"),
        "never saturated: {text}"
    );
    // A JSON reader gets the digits back exactly.
    let reply: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let digits = reply["customer"]["revenue_exact"]["EUR"]
        .as_str()
        .expect("a string");
    assert_eq!(digits.parse::<i128>(), Ok(revenue));
}

fn registered(customer: Uuid) -> Event {
    use crm_domain::event::CustomerRegistered;
    Event::CustomerRegistered(CustomerRegistered {
        customer_id: customer,
        name: "Big".into(),
        email: None,
        phone: None,
        segment: None,
        industry: None,
        region: None,
        owner: None,
        department: None,
        source: None,
        from_lead: None,
    })
}

fn placed(order: Uuid, customer: Uuid, amount: i64) -> Event {
    use crm_domain::event::OrderPlaced;
    use crm_domain::types::OrderChannel;
    Event::OrderPlaced(OrderPlaced {
        order_id: order,
        customer_id: customer,
        amount: eur(amount),
        cost: None,
        channel: OrderChannel::Online,
        lead_id: None,
    })
}

fn refunded(order: Uuid, customer: Uuid, amount: i64) -> Event {
    use crm_domain::event::OrderRefunded;
    Event::OrderRefunded(OrderRefunded {
        order_id: order,
        customer_id: customer,
        amount: eur(amount),
        reason: "refund".into(),
    })
}

fn cancelled(order: Uuid, customer: Uuid) -> Event {
    use crm_domain::event::OrderCancelled;
    Event::OrderCancelled(OrderCancelled {
        order_id: order,
        customer_id: customer,
        reason: "cancelled".into(),
    })
}
