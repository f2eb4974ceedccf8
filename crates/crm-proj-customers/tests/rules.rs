//! The counting rules of the customer view, one behaviour per test, events built directly.

use crm_domain::event::*;
use crm_domain::types::{
    InteractionKind, LeadSource, OrderChannel, Segment, TicketCategory, TicketChannel,
    TicketPriority,
};
use crm_domain::{Event, Money, Timestamp};
use crm_proj_customers::{CustomersProjection, LifecycleStage, ListRequest, LIST_LIMIT_MAX};
use crm_proj_testkit::*;
use crm_projector::{Projection, QueryError};
use serde_json::json;
use uuid::Uuid;

/// Events at successive hours of November 2026.
struct Given {
    log: Log,
    hour: i64,
}

fn given() -> Given {
    Given {
        log: Log::default(),
        hour: 0,
    }
}

impl Given {
    fn then(mut self, event: Event) -> Given {
        self.hour += 1;
        let at = ts("2026-11-01T00:00:00Z").saturating_add_micros(self.hour * 3_600_000_000);
        self.log.push(at, event);
        self
    }

    fn at(mut self, at: Timestamp, event: Event) -> Given {
        self.log.push(at, event);
        self
    }

    fn project(&self) -> CustomersProjection {
        let mut projection = CustomersProjection::new();
        for envelope in &self.log.envelopes {
            projection.apply(envelope);
        }
        projection
    }
}

fn register(customer: Uuid) -> Event {
    Event::CustomerRegistered(CustomerRegistered {
        customer_id: customer,
        name: format!("Customer {customer}"),
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

fn register_with(customer: Uuid, owner: Option<&str>, segment: Option<Segment>) -> Event {
    let Event::CustomerRegistered(mut e) = register(customer) else {
        unreachable!()
    };
    e.owner = owner.map(str::to_owned);
    e.segment = segment;
    Event::CustomerRegistered(e)
}

fn order(order: Uuid, customer: Uuid, amount: Money, cost: Option<Money>) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order_id: order,
        customer_id: customer,
        amount,
        cost,
        channel: OrderChannel::Online,
        lead_id: None,
    })
}

fn cancel(order: Uuid, customer: Uuid) -> Event {
    Event::OrderCancelled(OrderCancelled {
        order_id: order,
        customer_id: customer,
        reason: "mistake".to_owned(),
    })
}

fn refund(order: Uuid, customer: Uuid, amount: Money) -> Event {
    Event::OrderRefunded(OrderRefunded {
        order_id: order,
        customer_id: customer,
        amount,
        reason: "broken".to_owned(),
    })
}

fn churn(customer: Uuid) -> Event {
    Event::CustomerChurned(CustomerChurned {
        customer_id: customer,
        reason: "moved".to_owned(),
    })
}

fn reactivate(customer: Uuid) -> Event {
    Event::CustomerReactivated(CustomerReactivated {
        customer_id: customer,
    })
}

fn open_ticket(ticket: Uuid, customer: Uuid, subject: &str) -> Event {
    Event::TicketOpened(TicketOpened {
        ticket_id: ticket,
        customer_id: customer,
        subject: subject.to_owned(),
        category: TicketCategory::Question,
        priority: TicketPriority::Normal,
        channel: TicketChannel::Chat,
    })
}

fn lead(lead: Uuid, customer: Option<Uuid>) -> Event {
    Event::LeadCreated(LeadCreated {
        lead_id: lead,
        name: "Upsell".to_owned(),
        email: None,
        phone: None,
        company: None,
        source: LeadSource::Referral,
        campaign_id: None,
        customer_id: customer,
        owner: None,
        estimated_value: Some(eur(5_000)),
        pipeline: "default".to_owned(),
        stage: "awareness".to_owned(),
    })
}

fn money_map(pairs: &[(Money, i64)]) -> crm_proj_customers::MoneyByCurrency {
    pairs.iter().map(|(m, v)| (m.currency, Some(*v))).collect()
}

const C: Uuid = Uuid::from_u128(0xc1);

#[test]
fn cancelled_orders_are_not_counted() {
    let view = given()
        .then(register(C))
        .then(order(id(1), C, eur(10_000), Some(eur(4_000))))
        .then(order(id(2), C, eur(20_000), Some(eur(5_000))))
        .then(order(id(3), C, eur(30_000), None))
        .then(cancel(id(3), C))
        .project()
        .customer(C)
        .expect("registered");
    assert_eq!(view.orders_count, 2);
    assert_eq!(view.lifecycle_stage, LifecycleStage::Repeat);
    assert_eq!(view.revenue, money_map(&[(eur(0), 30_000)]));
    assert_eq!(view.margin, money_map(&[(eur(0), 21_000)]));
    // The cancelled order was the last one: the last order time falls back.
    assert_eq!(view.last_order_at, Some(ts("2026-11-01T03:00:00Z")));
}

#[test]
fn cancelling_the_only_order_returns_the_customer_to_prospect() {
    let projection = given()
        .then(register(C))
        .then(order(id(1), C, eur(10_000), None))
        .then(cancel(id(1), C))
        .then(cancel(id(1), C))
        .project();
    let view = projection.customer(C).expect("registered");
    assert_eq!(view.orders_count, 0);
    assert_eq!(view.lifecycle_stage, LifecycleStage::Prospect);
    assert!(view.revenue.is_empty());
    assert_eq!(view.first_order_at, None);
}

#[test]
fn refunds_lower_net_revenue_but_the_order_still_counts() {
    let view = given()
        .then(register(C))
        .then(order(id(1), C, eur(10_000), Some(eur(1_000))))
        .then(refund(id(1), C, eur(10_000)))
        .then(order(id(2), C, usd(500), None))
        .then(refund(id(2), C, eur(100)))
        .project()
        .customer(C)
        .expect("registered");
    assert_eq!(view.orders_count, 2);
    assert_eq!(view.revenue, money_map(&[(eur(0), 10_000), (usd(0), 500)]));
    assert_eq!(view.net_revenue, money_map(&[(eur(0), 0), (usd(0), 500)]));
    assert_eq!(view.margin, money_map(&[(eur(0), -1_000), (usd(0), 500)]));
}

#[test]
fn lifecycle_reaches_loyal_at_five_orders() {
    let mut given = given().then(register(C));
    let mut stages = vec![
        given
            .project()
            .customer(C)
            .expect("registered")
            .lifecycle_stage,
    ];
    for n in 1..=6 {
        given = given.then(order(id(n), C, eur(100), None));
        stages.push(
            given
                .project()
                .customer(C)
                .expect("registered")
                .lifecycle_stage,
        );
    }
    use LifecycleStage::*;
    assert_eq!(
        stages,
        [
            Prospect,
            FirstPurchase,
            Repeat,
            Repeat,
            Repeat,
            Loyal,
            Loyal
        ]
    );
}

#[test]
fn churned_customers_are_churned_until_reactivated() {
    let given = given()
        .then(register(C))
        .then(order(id(1), C, eur(100), None))
        .then(churn(C));
    let churned = given.project().customer(C).expect("registered");
    assert_eq!(churned.lifecycle_stage, LifecycleStage::Churned);
    assert_eq!(churned.churned_at, Some(ts("2026-11-01T03:00:00Z")));
    // Orders keep counting while churned; reactivation shows the order-based stage again.
    let given = given
        .then(order(id(2), C, eur(100), None))
        .then(reactivate(C));
    let back = given.project().customer(C).expect("registered");
    assert_eq!(back.lifecycle_stage, LifecycleStage::Repeat);
    assert_eq!(back.churned_at, None);
}

#[test]
fn profile_completeness_is_the_share_of_five_fields_set() {
    let given = given().then(register(C));
    assert_eq!(
        given.project().customer(C).unwrap().profile_completeness,
        0.0
    );
    let given = given.then(Event::CustomerProfileUpdated(CustomerProfileUpdated {
        customer_id: C,
        name: Some("Renamed".to_owned()),
        email: Some("c@example.com".to_owned()),
        phone: Some("+1 555 0100".to_owned()),
        segment: Some(Segment::Smb),
        industry: None,
        region: Some("emea".to_owned()),
    }));
    let view = given.project().customer(C).unwrap();
    assert_eq!(view.profile_completeness, 0.6);
    assert_eq!(view.name, "Renamed");
    let given = given
        .then(Event::CustomerProfileUpdated(CustomerProfileUpdated {
            customer_id: C,
            name: None,
            email: None,
            phone: None,
            segment: None,
            industry: Some("retail".to_owned()),
            region: None,
        }))
        .then(Event::CustomerOwnerAssigned(CustomerOwnerAssigned {
            customer_id: C,
            previous_owner: None,
            previous_department: None,
            owner: Some("ann".to_owned()),
            department: Some("sales".to_owned()),
        }));
    let view = given.project().customer(C).unwrap();
    assert_eq!(view.profile_completeness, 1.0);
    assert_eq!(view.owner.as_deref(), Some("ann"));
    assert_eq!(view.department.as_deref(), Some("sales"));
}

#[test]
fn open_tickets_are_neither_resolved_nor_closed() {
    let given = given()
        .then(register(C))
        .then(open_ticket(id(1), C, "first"))
        .then(open_ticket(id(2), C, "second"))
        .then(open_ticket(id(3), C, "third"))
        .then(Event::TicketAssigned(TicketAssigned {
            ticket_id: id(1),
            assignee: "sam".to_owned(),
        }))
        .then(Event::TicketResolved(TicketResolved {
            ticket_id: id(2),
            resolution: "done".to_owned(),
        }))
        .then(Event::TicketClosed(TicketClosed { ticket_id: id(3) }));
    let view = given.project().customer(C).unwrap();
    assert_eq!((view.open_tickets, view.total_tickets), (1, 3));
    assert_eq!(
        view.last_ticket.map(|t| t.subject),
        Some("third".to_owned())
    );
    let view = given
        .then(Event::TicketReopened(TicketReopened {
            ticket_id: id(2),
            reason: "again".to_owned(),
        }))
        .project()
        .customer(C)
        .unwrap();
    assert_eq!((view.open_tickets, view.total_tickets), (2, 3));
}

#[test]
fn facts_about_an_unregistered_customer_show_once_it_is_registered() {
    let given = given()
        .then(order(id(1), C, eur(700), None))
        .then(open_ticket(id(2), C, "before"))
        .then(lead(id(3), Some(C)));
    let projection = given.project();
    assert_eq!(projection.customer(C), None);
    assert_eq!(projection.customers_count(), 0);
    assert_eq!(
        projection.query("customer.get", &json!({"customer_id": C.to_string()})),
        Err(QueryError::NotFound(format!("customer {C}")))
    );
    let view = given.then(register(C)).project().customer(C).unwrap();
    assert_eq!(view.orders_count, 1);
    assert_eq!(view.total_tickets, 1);
    assert_eq!((view.leads.open, view.leads.total), (1, 1));
}

#[test]
fn leads_link_by_creation_or_by_win_and_show_their_stage() {
    let given = given()
        .then(register(C))
        .then(lead(id(1), Some(C)))
        .then(lead(id(2), None))
        .then(lead(id(3), None))
        .then(Event::FunnelStageAdvanced(FunnelStageAdvanced {
            lead_id: id(1),
            pipeline: "default".to_owned(),
            from_stage: "awareness".to_owned(),
            to_stage: "interest".to_owned(),
        }))
        .then(Event::LeadWon(LeadWon {
            lead_id: id(2),
            deal_value: eur(9_000),
            customer_id: C,
            new_customer: false,
        }))
        .then(Event::LeadLost(LeadLost {
            lead_id: id(3),
            reason: "price".to_owned(),
        }));
    let view = given.project().customer(C).unwrap();
    assert_eq!((view.leads.open, view.leads.total), (1, 2));
    let shown: Vec<_> = view
        .leads
        .items
        .iter()
        .map(|l| (l.lead_id, l.stage.as_str(), l.status.as_str()))
        .collect();
    assert_eq!(
        shown,
        [(id(1), "interest", "open"), (id(2), "awareness", "won")]
    );
}

#[test]
fn a_lead_closed_without_customer_leaves_the_store() {
    let mut projection = CustomersProjection::new();
    let log = given().then(lead(id(3), None)).log;
    projection.apply(&log.envelopes[0]);
    let written = projection.drain_changes();
    assert_eq!(written.len(), 1);
    assert!(written[0].1.is_some());
    let log = given()
        .then(Event::LeadDisqualified(LeadDisqualified {
            lead_id: id(3),
            reason: "spam".to_owned(),
        }))
        .log;
    projection.apply(&log.envelopes[0]);
    assert_eq!(
        projection.drain_changes(),
        vec![(written[0].0.clone(), None)]
    );
    assert_eq!(projection.drain_changes(), vec![]);
}

#[test]
fn contacts_are_ordered_by_id_and_removable() {
    let contact = |n: u128| {
        Event::ContactAdded(ContactAdded {
            customer_id: C,
            contact_id: id(n),
            name: format!("Contact {n}"),
            role: Some("buyer".to_owned()),
            email: None,
            phone: None,
        })
    };
    let view = given()
        .then(register(C))
        .then(contact(3))
        .then(contact(1))
        .then(contact(2))
        .then(Event::ContactRemoved(ContactRemoved {
            customer_id: C,
            contact_id: id(2),
        }))
        .project()
        .customer(C)
        .unwrap();
    let ids: Vec<_> = view.contacts.iter().map(|c| c.contact_id).collect();
    assert_eq!(ids, [id(1), id(3)]);
}

#[test]
fn the_last_interaction_and_survey_are_latest_in_business_time() {
    let interaction = |n: u128| {
        Event::InteractionLogged(InteractionLogged {
            customer_id: C,
            interaction_id: id(n),
            kind: InteractionKind::Call,
            channel: None,
        })
    };
    let nps = |score: u8| {
        Event::SurveyResponseRecorded(SurveyResponseRecorded {
            customer_id: C,
            response_id: id(u128::from(score)),
            kind: crm_domain::types::SurveyKind::Nps,
            score,
            comment: None,
        })
    };
    let view = given()
        .at(ts("2026-11-01T00:00:00Z"), register(C))
        .at(ts("2026-11-10T00:00:00Z"), interaction(1))
        .at(ts("2026-11-03T00:00:00Z"), interaction(2)) // a backfill
        .at(ts("2026-11-10T00:00:00Z"), nps(9))
        .at(ts("2026-11-02T00:00:00Z"), nps(2)) // a backfill
        .project()
        .customer(C)
        .unwrap();
    assert_eq!(view.interactions_count, 2);
    assert_eq!(view.last_interaction.map(|i| i.interaction_id), Some(id(1)));
    assert_eq!(view.last_nps, Some(9));
    assert_eq!(view.last_nps_at, Some(ts("2026-11-10T00:00:00Z")));
}

fn page_ids(
    projection: &CustomersProjection,
    request: serde_json::Value,
) -> (Vec<String>, serde_json::Value) {
    let reply = projection.query("customer.list", &request).expect("a page");
    let ids = reply["customers"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["customer_id"].as_str().expect("an id").to_owned())
        .collect();
    (ids, reply["next"].clone())
}

#[test]
fn list_filters_by_owner_segment_and_lifecycle_stage() {
    let projection = given()
        .then(register_with(id(1), Some("ann"), Some(Segment::Smb)))
        .then(register_with(id(2), Some("bob"), Some(Segment::Smb)))
        .then(register_with(id(3), Some("ann"), Some(Segment::Enterprise)))
        .then(register_with(id(4), None, None))
        .then(order(id(10), id(3), eur(100), None))
        .then(churn(id(4)))
        .project();
    let s = |n: u128| id(n).to_string();
    assert_eq!(
        page_ids(&projection, json!({"owner": "ann"})).0,
        [s(1), s(3)]
    );
    assert_eq!(
        page_ids(&projection, json!({"segment": "smb"})).0,
        [s(1), s(2)]
    );
    assert_eq!(
        page_ids(&projection, json!({"owner": "ann", "segment": "smb"})).0,
        [s(1)]
    );
    assert_eq!(
        page_ids(&projection, json!({"lifecycle_stage": "prospect"})).0,
        [s(1), s(2)]
    );
    assert_eq!(
        page_ids(&projection, json!({"lifecycle_stage": "first_purchase"})).0,
        [s(3)]
    );
    assert_eq!(
        page_ids(&projection, json!({"lifecycle_stage": "churned"})).0,
        [s(4)]
    );
    assert!(page_ids(&projection, json!({"owner": "nobody"}))
        .0
        .is_empty());
    // Nulls mean absent; unknown fields (the runtime's) are ignored.
    assert_eq!(
        page_ids(
            &projection,
            json!({"owner": null, "min_position": 9, "timeout_ms": 5})
        )
        .0
        .len(),
        4
    );
}

#[test]
fn list_pages_by_customer_id_cursor() {
    let mut given = given();
    for n in (1..=7).rev() {
        given = given.then(register_with(id(n), Some("ann"), None));
    }
    let projection = given.project();
    let s = |n: u128| id(n).to_string();
    let (first, next) = page_ids(&projection, json!({"limit": 3}));
    assert_eq!(first, [s(1), s(2), s(3)]);
    assert_eq!(next, json!(s(3)));
    let (second, next) = page_ids(&projection, json!({"limit": 3, "after": s(3)}));
    assert_eq!(second, [s(4), s(5), s(6)]);
    let (third, next) = page_ids(&projection, json!({"limit": 3, "after": next}));
    assert_eq!(third, [s(7)]);
    assert_eq!(next, json!(null));
    // A page that ends exactly at the last customer has no next.
    let (exact, next) = page_ids(&projection, json!({"limit": 2, "after": s(5)}));
    assert_eq!(exact, [s(6), s(7)]);
    assert_eq!(next, json!(null));
    // The cursor need not be a registered customer.
    let (after_gap, _) = page_ids(
        &projection,
        json!({"limit": 1, "after": Uuid::nil().to_string()}),
    );
    assert_eq!(after_gap, [s(1)]);
    assert_eq!(page_ids(&projection, json!({})).0.len(), 7);
    assert_eq!(page_ids(&projection, json!(null)).0.len(), 7);
}

#[test]
fn list_limits_default_to_50_and_stop_at_500() {
    let mut given = given();
    for n in 1..=501 {
        given = given.then(register(id(n)));
    }
    let projection = given.project();
    assert_eq!(page_ids(&projection, json!({})).0.len(), 50);
    let (page, next) = page_ids(&projection, json!({"limit": 10_000}));
    assert_eq!(page.len(), LIST_LIMIT_MAX);
    assert_eq!(next, json!(id(500).to_string()));
    assert_eq!(projection.list(&ListRequest::default()).customers.len(), 50);
}

#[test]
fn malformed_requests_are_refused() {
    let projection = given().then(register(C)).project();
    let malformed = |name: &str, request: serde_json::Value| {
        matches!(
            projection.query(name, &request),
            Err(QueryError::Malformed(_))
        )
    };
    assert!(malformed("customer.get", json!({})));
    assert!(malformed(
        "customer.get",
        json!({"customer_id": "not-a-uuid"})
    ));
    assert!(malformed("customer.get", json!({"customer_id": 7})));
    assert!(malformed("customer.get", json!("c")));
    assert!(malformed("customer.list", json!({"segment": "galactic"})));
    assert!(malformed(
        "customer.list",
        json!({"lifecycle_stage": "vip"})
    ));
    assert!(malformed("customer.list", json!({"limit": 0})));
    assert!(malformed("customer.list", json!({"limit": -1})));
    assert!(malformed("customer.list", json!({"limit": "ten"})));
    assert!(malformed("customer.list", json!({"after": "nope"})));
    assert!(malformed("customer.list", json!({"owner": 3})));
    assert!(malformed("customer.list", json!([1])));
    assert_eq!(
        projection.query("customer.delete", &json!({})),
        Err(QueryError::UnknownQuery("customer.delete".to_owned()))
    );
    assert_eq!(
        projection.query(
            "customer.get",
            &json!({"customer_id": Uuid::nil().to_string()})
        ),
        Err(QueryError::NotFound(format!("customer {}", Uuid::nil())))
    );
}

#[test]
fn the_projection_names_itself_and_its_queries() {
    let projection = CustomersProjection::new();
    assert_eq!(projection.name(), "customers");
    assert_eq!(projection.queries(), ["customer.get", "customer.list"]);
    assert_eq!(projection.store_format(), 4);
}

#[test]
fn drained_changes_are_in_key_order_and_restore_exactly() {
    let log = worked_example();
    let mut live = CustomersProjection::new();
    let mut store = Store::default();
    feed(&mut live, &mut store, &log.envelopes, 5);
    // Every key is `<table>/` and the bytes of its key: a UUID's 16, a customer id's and a
    // lead id's 32, a customer id's and a time's 24, none for the one `totals` row. Leads
    // closed without a customer are gone.
    let layout: [(&str, usize); 9] = [
        ("customer/", 16),
        ("lead/", 16),
        ("order/", 16),
        ("ticket/", 16),
        ("customer_lead/", 32),
        ("order_totals/", 16),
        ("order_placed/", 24),
        ("ticket_totals/", 16),
        ("totals/", 0),
    ];
    for key in store.entries.keys() {
        let width = layout
            .iter()
            .find(|(table, _)| key.starts_with(table.as_bytes()))
            .map(|(table, width)| table.len() + width);
        assert_eq!(width, Some(key.len()), "{}", String::from_utf8_lossy(key));
    }
    for (table, id) in [
        ("customer/", CUSTOMER_A),
        ("order/", ORDER_A2),
        ("ticket/", COMPLAINT),
        ("order_totals/", CUSTOMER_A),
        ("ticket_totals/", CUSTOMER_B),
    ] {
        assert!(
            store.entries.contains_key(&stored_key(table, id)),
            "{table}{id}"
        );
    }
    let lead_link = [
        stored_key("customer_lead/", CUSTOMER_A),
        example_lead(1).as_bytes().to_vec(),
    ]
    .concat();
    assert!(store.entries.contains_key(&lead_link));
    assert!(store.entries.contains_key(b"totals/".as_slice()));
    let mut restored = CustomersProjection::new();
    store.restore_into(&mut restored);
    assert_eq!(restored, live);
    assert_eq!(restored.customer(CUSTOMER_A), live.customer(CUSTOMER_A));

    let mut garbage = vec![(b"customer/x".to_vec(), vec![1u8])].into_iter();
    assert!(CustomersProjection::new().restore(&mut garbage).is_err());
    // The text keys of the store before format 1 are refused, so are unknown tables.
    let text_key = format!("customer/{CUSTOMER_A}").into_bytes();
    let value = store.entries[&stored_key("customer/", CUSTOMER_A)].clone();
    let mut old_layout = vec![(text_key, value.clone())].into_iter();
    assert!(CustomersProjection::new().restore(&mut old_layout).is_err());
    let mut unknown = vec![(stored_key("campaign/", CUSTOMER_A), value)].into_iter();
    assert!(CustomersProjection::new().restore(&mut unknown).is_err());
    let mut truncated = vec![(stored_key("customer/", CUSTOMER_A), vec![1u8, 2, 3])].into_iter();
    assert!(CustomersProjection::new().restore(&mut truncated).is_err());
}

fn stored_key(table: &str, id: Uuid) -> Vec<u8> {
    [table.as_bytes(), id.as_bytes()].concat()
}
