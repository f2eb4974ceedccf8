//! `docs/DOMAIN.md`'s worked example through the customer view, by the typed API and by the
//! `customer.get` / `customer.list` queries.

use crm_proj_customers::{CustomersProjection, LifecycleStage};
use crm_proj_testkit::*;
use crm_projector::Projection;
use serde_json::json;

fn projection() -> CustomersProjection {
    let mut projection = CustomersProjection::new();
    for envelope in &worked_example().envelopes {
        projection.apply(envelope);
    }
    projection
}

#[test]
fn customer_a_is_repeat_with_net_revenue_after_the_refund() {
    let a = projection().customer(CUSTOMER_A).expect("A is registered");
    assert_eq!(a.lifecycle_stage, LifecycleStage::Repeat);
    assert_eq!(a.orders_count, 2);
    let eur = |minor: i64| [(eur(0).currency, Some(minor))].into_iter().collect();
    assert_eq!(a.revenue, eur(100_000));
    assert_eq!(a.refunds, eur(10_000));
    assert_eq!(a.net_revenue, eur(90_000));
    assert_eq!(a.margin, eur(90_000));
    assert_eq!(a.first_order_at, Some(ts("2026-11-20T10:00:00Z")));
    assert_eq!(a.last_order_at, Some(ts("2026-11-22T10:00:00Z")));
    assert_eq!((a.last_nps, a.last_csat), (Some(10), Some(5)));
    assert_eq!((a.open_tickets, a.total_tickets), (0, 0));
    assert_eq!(a.last_ticket, None);
    assert_eq!(a.from_lead, Some(example_lead(1)));
    assert_eq!((a.leads.open, a.leads.total), (0, 1));
    assert_eq!(a.leads.items[0].stage, "decision");
    assert_eq!(a.leads.items[0].status.as_str(), "won");
    // email and owner of email, phone, industry, region, owner.
    assert_eq!(a.profile_completeness, 0.4);
}

#[test]
fn customer_b_is_first_purchase_with_one_closed_ticket() {
    let b = projection().customer(CUSTOMER_B).expect("B is registered");
    assert_eq!(b.lifecycle_stage, LifecycleStage::FirstPurchase);
    assert_eq!(b.orders_count, 1);
    let eur = |minor: i64| [(eur(0).currency, Some(minor))].into_iter().collect();
    assert_eq!(b.revenue, eur(100_000));
    assert_eq!(b.net_revenue, eur(100_000));
    assert_eq!((b.last_nps, b.last_csat), (Some(6), Some(3)));
    assert_eq!((b.open_tickets, b.total_tickets), (0, 1));
    let ticket = b.last_ticket.expect("B's complaint");
    assert_eq!(ticket.ticket_id, COMPLAINT);
    assert_eq!(ticket.status.as_str(), "closed");
    assert_eq!(ticket.category.as_str(), "complaint");
}

#[test]
fn customer_get_answers_the_wire_shape() {
    let projection = projection();
    let reply = projection
        .query(
            "customer.get",
            &json!({"customer_id": CUSTOMER_A.to_string(), "min_position": 3, "timeout_ms": 10}),
        )
        .expect("A is found");
    let a = &reply["customer"];
    assert_eq!(a["customer_id"], json!(CUSTOMER_A.to_string()));
    assert_eq!(a["name"], json!("Customer A"));
    assert_eq!(a["lifecycle_stage"], json!("repeat"));
    assert_eq!(a["orders_count"], json!(2));
    assert_eq!(a["revenue"], json!({"EUR": 100_000}));
    assert_eq!(a["net_revenue"], json!({"EUR": 90_000}));
    assert_eq!(a["margin"], json!({"EUR": 90_000}));
    assert_eq!(a["last_nps"], json!(10));
    assert_eq!(a["last_csat"], json!(5));
    assert_eq!(a["open_tickets"], json!(0));
    assert_eq!(a["total_tickets"], json!(0));
    assert_eq!(a["first_order_at"], json!("2026-11-20T10:00:00Z"));
    assert_eq!(a["registered_at"], json!("2026-11-16T09:00:00Z"));
    assert_eq!(a["owner"], json!("grace"));
    assert_eq!(a["segment"], json!(null));
    assert_eq!(a["source"], json!("web"));
    assert_eq!(a["contacts"], json!([]));
    assert_eq!(a["leads"]["open"], json!(0));
    assert_eq!(a["leads"]["total"], json!(1));
    assert_eq!(a["leads"]["items"][0]["status"], json!("won"));
    assert_eq!(a["interactions_count"], json!(0));
    assert_eq!(a["last_interaction"], json!(null));
    assert_eq!(a["profile_completeness"], json!(0.4));

    let b = projection
        .query(
            "customer.get",
            &json!({"customer_id": CUSTOMER_B.to_string()}),
        )
        .expect("B is found");
    assert_eq!(b["customer"]["lifecycle_stage"], json!("first_purchase"));
    assert_eq!(b["customer"]["open_tickets"], json!(0));
    assert_eq!(b["customer"]["total_tickets"], json!(1));
    assert_eq!(b["customer"]["last_ticket"]["status"], json!("closed"));
}

#[test]
fn customer_list_filters_the_example_by_lifecycle_stage() {
    let projection = projection();
    let all = projection
        .query("customer.list", &json!({}))
        .expect("a page");
    assert_eq!(all["next"], json!(null));
    let ids: Vec<_> = all["customers"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["customer_id"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!(CUSTOMER_A.to_string()), json!(CUSTOMER_B.to_string())]
    );
    let repeat = projection
        .query("customer.list", &json!({"lifecycle_stage": "repeat"}))
        .expect("a page");
    assert_eq!(repeat["customers"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        repeat["customers"][0]["customer_id"],
        json!(CUSTOMER_A.to_string())
    );
    let grace = projection
        .query("customer.list", &json!({"owner": "grace", "limit": 1}))
        .expect("a page");
    assert_eq!(grace["customers"].as_array().map(Vec::len), Some(1));
    assert_eq!(grace["next"], json!(CUSTOMER_A.to_string()));
}
