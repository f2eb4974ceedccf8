//! Revenue near and beyond the limits of JSON numbers: many orders at the largest amount a
//! command may carry, with refunds, costs, cancellations and campaign spend mixed in. The
//! KPIs' money sums equal an exact `i128` recount, and the `kpi.get` reply, as bytes, carries
//! them digit for digit (docs/NATS_API.md, "Big numbers").

mod support;

use std::collections::BTreeMap;

use crm_domain::money::{AMOUNT_MINOR_MAX, JSON_SAFE_INTEGER_MAX};
use crm_domain::types::OrderChannel;
use crm_proj_kpis::Period;
use crm_projector::ReadModel;
use proptest::prelude::*;
use serde_json::json;
use support::*;

/// One step: place order `n` at the bound minus `below` (with a cost of half of it when
/// `with_cost`), refund part of order `n` (never more than is left), cancel order `n`, or
/// record campaign spend at the bound minus `below`.
#[derive(Debug, Clone, Copy)]
enum Step {
    Place { n: u8, below: u16, with_cost: bool },
    Refund { n: u8, amount: u64 },
    Cancel { n: u8 },
    Spend { below: u16 },
}

fn step() -> impl Strategy<Value = Step> {
    let below = || prop_oneof![3 => Just(0u16), 1 => Just(1u16), 1 => any::<u16>()];
    prop_oneof![
        6 => (0u8..60, below(), any::<bool>())
            .prop_map(|(n, below, with_cost)| Step::Place { n, below, with_cost }),
        2 => (0u8..60, prop_oneof![Just(1u64), any::<u64>()])
            .prop_map(|(n, amount)| Step::Refund { n, amount }),
        1 => (0u8..60).prop_map(|n| Step::Cancel { n }),
        1 => below().prop_map(|below| Step::Spend { below }),
    ]
}

#[derive(Default)]
struct RefOrder {
    amount: i128,
    cost: i128,
    refunded: i128,
    cancelled: bool,
}

/// Plays the steps as valid events (a refund never exceeds what is left of its order, a
/// cancelled or refunded order takes no cancel) and recounts the sums.
fn play(steps: &[Step]) -> (Log, BTreeMap<u8, RefOrder>, i128) {
    let mut log = Log::new();
    let mut orders: BTreeMap<u8, RefOrder> = BTreeMap::new();
    let mut spend = 0i128;
    let at = ts("2026-11-02T09:00:00Z");
    let customer = id(1);
    log.add(at, campaign_launched(id(2)));
    for step in steps {
        match *step {
            Step::Place {
                n,
                below,
                with_cost,
            } => {
                if orders.contains_key(&n) {
                    continue;
                }
                let amount = AMOUNT_MINOR_MAX - i64::from(below);
                let cost = with_cost.then_some(amount / 2);
                log.add(
                    at,
                    order_with(
                        id(100 + u128::from(n)),
                        customer,
                        eur(amount),
                        cost.map(eur),
                        None,
                    ),
                );
                orders.insert(
                    n,
                    RefOrder {
                        amount: amount.into(),
                        cost: cost.unwrap_or(0).into(),
                        ..RefOrder::default()
                    },
                );
            }
            Step::Refund { n, amount } => {
                let Some(order) = orders.get_mut(&n) else {
                    continue;
                };
                let left = order.amount - order.refunded;
                let amount = i128::from(amount) % left.max(1) + 1;
                if order.cancelled || amount > left {
                    continue;
                }
                order.refunded += amount;
                let amount = i64::try_from(amount).expect("at most an order's amount");
                log.add(at, refunded(id(100 + u128::from(n)), customer, eur(amount)));
            }
            Step::Cancel { n } => {
                let Some(order) = orders.get_mut(&n) else {
                    continue;
                };
                if order.cancelled || order.refunded > 0 {
                    continue;
                }
                order.cancelled = true;
                log.add(at, cancelled(id(100 + u128::from(n)), customer));
            }
            Step::Spend { below } => {
                let amount = AMOUNT_MINOR_MAX - i64::from(below);
                spend += i128::from(amount);
                log.add(at, campaign_spend(id(2), eur(amount)));
            }
        }
    }
    (log, orders, spend)
}

/// In the reply text: `"name":{"EUR":<number or null>}` and `"name_exact":{"EUR":"<digits>"}`.
fn assert_rendered(text: &str, name: &str, value: i128) {
    let number = if value.abs() <= JSON_SAFE_INTEGER_MAX {
        value.to_string()
    } else {
        "null".to_owned()
    };
    let expected_number = format!(r#""{name}":{{"EUR":{number}}}"#);
    let expected_exact = format!(r#""{name}_exact":{{"EUR":"{value}"}}"#);
    assert!(
        text.contains(&expected_number),
        "{expected_number} in {text}"
    );
    assert!(text.contains(&expected_exact), "{expected_exact} in {text}");
}

fn mean(sum: i128, count: i128) -> i128 {
    (2 * sum.abs() + count) / (2 * count) * sum.signum()
}

fn check(steps: &[Step]) {
    let (log, orders, spend) = play(steps);
    let projection = log.projection();
    let live: Vec<&RefOrder> = orders.values().filter(|o| !o.cancelled).collect();
    let revenue: i128 = live.iter().map(|o| o.amount).sum();
    let refunds: i128 = live.iter().map(|o| o.refunded).sum();
    let cost: i128 = live.iter().map(|o| o.cost).sum();
    let net = revenue - refunds;
    for period in [Period::All, month("2026-11")] {
        let reply = projection
            .query(
                "kpi.get",
                &json!({ "month": match period {
                Period::All => None,
                Period::Month(_) => Some("2026-11"),
            } }),
            )
            .expect("a report");
        let text = serde_json::to_string(&reply).expect("a reply serializes");
        if live.is_empty() {
            assert!(text.contains(r#""revenue":{}"#), "{text}");
        } else {
            assert_rendered(&text, "revenue", revenue);
            assert_rendered(&text, "net_revenue", net);
            assert_rendered(&text, "refunds", refunds);
            assert_rendered(&text, "cost", cost);
            assert_rendered(&text, "historical_net_revenue", net);
            assert_rendered(&text, "average_order_value", mean(net, live.len() as i128));
            // One customer with orders: its margin is the whole margin.
            assert_rendered(&text, "average_margin_per_customer", net - cost);
        }
        if spend > 0 {
            assert_rendered(&text, "campaign_spend", spend);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn sums_near_the_bound_equal_an_exact_recount_and_render_exactly(
        steps in prop::collection::vec(step(), 0..=300),
    ) {
        check(&steps);
    }
}

#[test]
fn revenue_above_i64_max_is_exact_on_the_wire() {
    // Two orders of i64::MAX (refused since the bound) were reported as 9223372036854775807;
    // 9,300 orders at the bound now sum to 9.3 x 10^18 > i64::MAX, exactly.
    let mut log = Log::new();
    let at = ts("2026-11-02T09:00:00Z");
    for n in 0..9_300u128 {
        log.add(
            at,
            order_placed(
                id(1_000 + n),
                id(1),
                eur(AMOUNT_MINOR_MAX),
                OrderChannel::Online,
            ),
        );
    }
    log.add(at, refunded(id(1_000), id(1), eur(7)));
    let text = serde_json::to_string(&kpis(&log.projection(), Period::All)).expect("JSON");
    assert!(text.contains(r#""revenue":{"EUR":null}"#), "{text}");
    assert!(text.contains(r#""revenue_exact":{"EUR":"9300000000000000000"}"#));
    assert!(text.contains(r#""net_revenue_exact":{"EUR":"9299999999999999993"}"#));
    // 9299999999999999993 / 9300 = 999999999999999.99925 -> 1000000000000000.
    assert!(text.contains(r#""average_order_value":{"EUR":1000000000000000}"#));
    assert!(text.contains(r#""average_order_value_exact":{"EUR":"1000000000000000"}"#));
    assert!(!text.contains("9223372036854775807"), "never saturated");
    // Also in the channel breakdown.
    let online = field(&text, r#""online":{"#);
    assert!(
        online.contains(r#""net_revenue_exact":{"EUR":"9299999999999999993"}"#),
        "{online}"
    );
}

/// The text from `key` to the end of its object (its first `}}`).
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    let start = text.find(key).unwrap_or(0);
    let end = text[start..]
        .find("}}")
        .map_or(text.len(), |i| start + i + 2);
    &text[start..end]
}
