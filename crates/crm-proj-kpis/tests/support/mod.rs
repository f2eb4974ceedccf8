//! Test support: event builders, a log that stamps envelopes with positions, and a store
//! that applies drained changes like the runtime does.

// Each test binary uses its own subset of the helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;

use crm_domain::event::*;
use crm_domain::time::MICROS_PER_MINUTE;
use crm_domain::types::{
    CampaignChannel, InteractionKind, LeadSource, OrderChannel, SurveyKind, TicketCategory,
    TicketChannel, TicketPriority,
};
use crm_domain::{Currency, Event, Money, Timestamp};
use crm_proj_kpis::{KpiProjection, Period};
use crm_projector::{EventEnvelope, Projection};
use serde_json::{json, Value};
use uuid::Uuid;

pub fn ts(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).expect("a valid RFC 3339 time in a test")
}

pub fn minutes_after(time: Timestamp, minutes: i64) -> Timestamp {
    time.saturating_add_micros(minutes * MICROS_PER_MINUTE)
}

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub fn money(amount_minor: i64, code: &str) -> Money {
    Money::new(amount_minor, Currency::new(code).expect("a currency code"))
}

pub fn eur(amount_minor: i64) -> Money {
    money(amount_minor, "EUR")
}

/// Events with positions, in the order they are added.
#[derive(Default)]
pub struct Log {
    pub events: Vec<EventEnvelope>,
}

impl Log {
    pub fn new() -> Log {
        Log::default()
    }

    pub fn add(&mut self, occurred_at: Timestamp, event: Event) -> &mut Log {
        let position = self.events.len() as u64 + 1;
        self.events.push(EventEnvelope {
            position,
            stream: format!("{}-test", event.aggregate()),
            stream_version: 0,
            command_id: Uuid::from_u128(u128::from(position)),
            recorded_at: occurred_at,
            occurred_at,
            event,
        });
        self
    }

    pub fn at(&mut self, rfc3339: &str, event: Event) -> &mut Log {
        self.add(ts(rfc3339), event)
    }

    pub fn projection(&self) -> KpiProjection {
        let mut projection = KpiProjection::new();
        for event in &self.events {
            projection.apply(event);
        }
        projection
    }
}

/// The `kpis` object of a projection for a period.
pub fn kpis(projection: &KpiProjection, period: Period) -> Value {
    projection.report(period)["kpis"].clone()
}

pub fn month(text: &str) -> Period {
    Period::Month(crm_domain::Month::parse(text).expect("YYYY-MM"))
}

/// A store as the runtime keeps it: drained changes applied in order.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Store {
    pub fn take_changes(&mut self, projection: &mut KpiProjection) {
        let changes = projection.drain_changes();
        let keys: Vec<_> = changes.iter().map(|(k, _)| k.clone()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(keys, sorted, "changes come in key order, each key once");
        for (key, value) in changes {
            match value {
                Some(value) => {
                    self.entries.insert(key, value);
                }
                None => {
                    self.entries.remove(&key);
                }
            }
        }
    }

    pub fn restore(&self) -> KpiProjection {
        let mut projection = KpiProjection::new();
        let mut entries = self.entries.clone().into_iter();
        projection
            .restore(&mut entries)
            .expect("a store written by the projection restores");
        projection
    }
}

/// Asserts `actual == expected` with floats equal to 1e-9 (relative), naming the path.
pub fn assert_json_close(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let a_keys: Vec<_> = a.keys().collect();
            let e_keys: Vec<_> = e.keys().collect();
            assert_eq!(a_keys, e_keys, "keys of {path}");
            for (key, value) in a {
                assert_json_close(value, &e[key], &format!("{path}.{key}"));
            }
        }
        (Value::Number(a), Value::Number(e)) => {
            if a.is_f64() || e.is_f64() {
                let (a, e) = (
                    a.as_f64().unwrap_or(f64::NAN),
                    e.as_f64().unwrap_or(f64::NAN),
                );
                let tolerance = 1e-9 * e.abs().max(1.0);
                assert!((a - e).abs() <= tolerance, "{path}: {a} != {e}");
            } else {
                assert_eq!(a, e, "{path}");
            }
        }
        (a, e) => assert_eq!(a, e, "{path}"),
    }
}

pub fn assert_close(value: &Value, expected: f64, what: &str) {
    let actual = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is a number, got {value}"));
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: {actual} != {expected}"
    );
}

pub fn eur_json(amount_minor: i64) -> Value {
    json!({ "EUR": amount_minor })
}

// ---- event builders ----

pub fn lead_created(lead: Uuid, source: LeadSource) -> Event {
    Event::LeadCreated(LeadCreated {
        lead_id: lead,
        name: "Ada".to_owned(),
        email: None,
        phone: None,
        company: None,
        source,
        campaign_id: None,
        customer_id: None,
        owner: None,
        estimated_value: None,
        pipeline: "default".to_owned(),
        stage: "awareness".to_owned(),
    })
}

pub fn advanced(lead: Uuid, from: &str, to: &str) -> Event {
    Event::FunnelStageAdvanced(FunnelStageAdvanced {
        lead_id: lead,
        pipeline: "default".to_owned(),
        from_stage: from.to_owned(),
        to_stage: to.to_owned(),
    })
}

pub fn lead_won(lead: Uuid, deal_value: Money, customer: Uuid, new_customer: bool) -> Event {
    Event::LeadWon(LeadWon {
        lead_id: lead,
        deal_value,
        customer_id: customer,
        new_customer,
    })
}

pub fn lead_lost(lead: Uuid) -> Event {
    Event::LeadLost(LeadLost {
        lead_id: lead,
        reason: "price".to_owned(),
    })
}

pub fn lead_disqualified(lead: Uuid) -> Event {
    Event::LeadDisqualified(LeadDisqualified {
        lead_id: lead,
        reason: "spam".to_owned(),
    })
}

pub fn registered(customer: Uuid, source: Option<LeadSource>, from_lead: Option<Uuid>) -> Event {
    Event::CustomerRegistered(CustomerRegistered {
        customer_id: customer,
        name: "Acme".to_owned(),
        email: None,
        phone: None,
        segment: None,
        industry: None,
        region: None,
        owner: None,
        department: None,
        source,
        from_lead,
    })
}

/// A registration with `email` and `phone` set (2 of 5 profile fields).
pub fn registered_with_contact(customer: Uuid) -> Event {
    Event::CustomerRegistered(CustomerRegistered {
        customer_id: customer,
        name: "Acme".to_owned(),
        email: Some("a@example.com".to_owned()),
        phone: Some("+1 555 0100".to_owned()),
        segment: None,
        industry: None,
        region: None,
        owner: None,
        department: None,
        source: None,
        from_lead: None,
    })
}

pub fn profile_updated(customer: Uuid, industry: Option<&str>, region: Option<&str>) -> Event {
    Event::CustomerProfileUpdated(CustomerProfileUpdated {
        customer_id: customer,
        name: None,
        email: None,
        phone: None,
        segment: None,
        industry: industry.map(str::to_owned),
        region: region.map(str::to_owned),
    })
}

pub fn owner_assigned(customer: Uuid, owner: &str) -> Event {
    Event::CustomerOwnerAssigned(CustomerOwnerAssigned {
        customer_id: customer,
        previous_owner: None,
        previous_department: None,
        owner: Some(owner.to_owned()),
        department: None,
    })
}

pub fn churned(customer: Uuid) -> Event {
    Event::CustomerChurned(CustomerChurned {
        customer_id: customer,
        reason: "moved".to_owned(),
    })
}

pub fn reactivated(customer: Uuid) -> Event {
    Event::CustomerReactivated(CustomerReactivated {
        customer_id: customer,
    })
}

pub fn interaction(customer: Uuid, n: u128) -> Event {
    Event::InteractionLogged(InteractionLogged {
        customer_id: customer,
        interaction_id: id(0x1a7e_0000 + n),
        kind: InteractionKind::Call,
        channel: None,
    })
}

pub fn survey(customer: Uuid, kind: SurveyKind, score: u8) -> Event {
    Event::SurveyResponseRecorded(SurveyResponseRecorded {
        customer_id: customer,
        response_id: id(0x5e5e_0000 + u128::from(score)),
        kind,
        score,
        comment: None,
    })
}

pub fn order_placed(order: Uuid, customer: Uuid, amount: Money, channel: OrderChannel) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order_id: order,
        customer_id: customer,
        amount,
        cost: None,
        channel,
        lead_id: None,
    })
}

pub fn order_with(
    order: Uuid,
    customer: Uuid,
    amount: Money,
    cost: Option<Money>,
    lead: Option<Uuid>,
) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order_id: order,
        customer_id: customer,
        amount,
        cost,
        channel: OrderChannel::Online,
        lead_id: lead,
    })
}

pub fn refunded(order: Uuid, customer: Uuid, amount: Money) -> Event {
    Event::OrderRefunded(OrderRefunded {
        order_id: order,
        customer_id: customer,
        amount,
        reason: "broken".to_owned(),
    })
}

pub fn cancelled(order: Uuid, customer: Uuid) -> Event {
    Event::OrderCancelled(OrderCancelled {
        order_id: order,
        customer_id: customer,
        reason: "changed mind".to_owned(),
    })
}

pub fn ticket_opened(ticket: Uuid, customer: Uuid, category: TicketCategory) -> Event {
    Event::TicketOpened(TicketOpened {
        ticket_id: ticket,
        customer_id: customer,
        subject: "help".to_owned(),
        category,
        priority: TicketPriority::Normal,
        channel: TicketChannel::Email,
    })
}

pub fn ticket_assigned(ticket: Uuid) -> Event {
    Event::TicketAssigned(TicketAssigned {
        ticket_id: ticket,
        assignee: "sam".to_owned(),
    })
}

pub fn ticket_responded(ticket: Uuid, public: bool, first_public_response: bool) -> Event {
    Event::TicketResponded(TicketResponded {
        ticket_id: ticket,
        responder: "sam".to_owned(),
        public,
        first_public_response,
    })
}

pub fn ticket_resolved(ticket: Uuid) -> Event {
    Event::TicketResolved(TicketResolved {
        ticket_id: ticket,
        resolution: "fixed".to_owned(),
    })
}

pub fn ticket_closed(ticket: Uuid) -> Event {
    Event::TicketClosed(TicketClosed { ticket_id: ticket })
}

pub fn ticket_reopened(ticket: Uuid) -> Event {
    Event::TicketReopened(TicketReopened {
        ticket_id: ticket,
        reason: "again".to_owned(),
    })
}

pub fn campaign_launched(campaign: Uuid) -> Event {
    Event::CampaignLaunched(CampaignLaunched {
        campaign_id: campaign,
        name: "Spring".to_owned(),
        channel: CampaignChannel::Email,
        budget: None,
    })
}

pub fn campaign_spend(campaign: Uuid, amount: Money) -> Event {
    Event::CampaignSpendRecorded(CampaignSpendRecorded {
        campaign_id: campaign,
        amount,
    })
}

pub fn campaign_reach(campaign: Uuid, sent: u64) -> Event {
    Event::CampaignReachRecorded(CampaignReachRecorded {
        campaign_id: campaign,
        sent,
    })
}

pub fn campaign_responses(campaign: Uuid, responses: u64) -> Event {
    Event::CampaignResponseRecorded(CampaignResponseRecorded {
        campaign_id: campaign,
        responses,
    })
}
