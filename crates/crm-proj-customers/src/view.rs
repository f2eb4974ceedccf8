//! The customer view as it goes on the wire (`customer.get`, `customer.list`), rendered
//! on demand from the customer's record and the rows the fold keeps per customer: its order
//! sums, first and last placement times and ticket counts (one row each), its leads (one
//! row per linked lead) and its last ticket.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crm_domain::money::{json_safe, ExactMinor, MinorSum};
use crm_domain::types::{
    InteractionKind, LeadSource, LeadStatus, Segment, TicketCategory, TicketPriority, TicketStatus,
};
use crm_domain::{Currency, Money, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{of_customer, CustomerRecord, Model, OrderTotals};

/// Money summed per currency, in minor units, as JSON numbers: `{"EUR": 90000}`. A sum
/// beyond 2^53 - 1 in magnitude (not exact as a JSON number in every parser) is `null`; the
/// matching `_exact` field always has it ([`ExactByCurrency`]).
pub type MoneyByCurrency = BTreeMap<Currency, Option<i64>>;

/// The same sums, exact, as strings of decimal digits: `{"EUR": "90000"}`.
pub type ExactByCurrency = BTreeMap<Currency, ExactMinor>;

/// Orders a customer needs to be `loyal`.
pub const LOYAL_ORDERS_MIN: u64 = 5;

/// Where a customer is in its life, from its counted orders, unless churned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStage {
    /// No order yet.
    Prospect,
    /// One order.
    FirstPurchase,
    /// Two to four orders.
    Repeat,
    /// [`LOYAL_ORDERS_MIN`] orders or more.
    Loyal,
    /// Churned and not reactivated, whatever its orders.
    Churned,
}

impl LifecycleStage {
    pub const ALL: [LifecycleStage; 5] = [
        LifecycleStage::Prospect,
        LifecycleStage::FirstPurchase,
        LifecycleStage::Repeat,
        LifecycleStage::Loyal,
        LifecycleStage::Churned,
    ];

    /// `orders_count` counts orders that are not cancelled.
    pub fn of(orders_count: u64, churned: bool) -> LifecycleStage {
        match (churned, orders_count) {
            (true, _) => LifecycleStage::Churned,
            (false, 0) => LifecycleStage::Prospect,
            (false, 1) => LifecycleStage::FirstPurchase,
            (false, n) if n < LOYAL_ORDERS_MIN => LifecycleStage::Repeat,
            (false, _) => LifecycleStage::Loyal,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Prospect => "prospect",
            LifecycleStage::FirstPurchase => "first_purchase",
            LifecycleStage::Repeat => "repeat",
            LifecycleStage::Loyal => "loyal",
            LifecycleStage::Churned => "churned",
        }
    }
}

/// One customer, as `customer.get` returns it under `"customer"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerView {
    pub customer_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub segment: Option<Segment>,
    pub industry: Option<String>,
    pub region: Option<String>,
    pub source: Option<LeadSource>,
    pub owner: Option<String>,
    pub department: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    /// When the customer churned; `null` unless `lifecycle_stage` is `churned`.
    pub churned_at: Option<Timestamp>,
    /// Ordered by contact id.
    pub contacts: Vec<ContactView>,
    /// Orders placed and not cancelled.
    pub orders_count: u64,
    /// Per currency, over orders not cancelled: amounts, refunds, amounts minus refunds,
    /// and that minus the orders' cost. A currency appears once the customer has an order
    /// in it.
    pub revenue: MoneyByCurrency,
    pub refunds: MoneyByCurrency,
    pub net_revenue: MoneyByCurrency,
    pub margin: MoneyByCurrency,
    /// The same four, exact, as strings of decimal digits.
    pub revenue_exact: ExactByCurrency,
    pub refunds_exact: ExactByCurrency,
    pub net_revenue_exact: ExactByCurrency,
    pub margin_exact: ExactByCurrency,
    /// Earliest and latest business time of the orders counted.
    pub first_order_at: Option<Timestamp>,
    pub last_order_at: Option<Timestamp>,
    pub leads: LeadsView,
    /// Tickets neither resolved nor closed.
    pub open_tickets: u64,
    pub total_tickets: u64,
    /// The most recently opened ticket (business time; the later event on a tie).
    pub last_ticket: Option<TicketView>,
    /// The latest NPS (0..=10) and CSAT (1..=5) scores and when they were given.
    pub last_nps: Option<u8>,
    pub last_nps_at: Option<Timestamp>,
    pub last_csat: Option<u8>,
    pub last_csat_at: Option<Timestamp>,
    pub interactions_count: u64,
    /// The interaction with the latest business time.
    pub last_interaction: Option<InteractionView>,
    /// Share of email, phone, industry, region and owner that are set: 0, 0.2, ... 1.
    pub profile_completeness: f64,
    pub registered_at: Timestamp,
    /// The lead whose win registered this customer, if any.
    pub from_lead: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    pub contact_id: Uuid,
    pub name: String,
    pub role: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The leads linked to the customer (by `LeadCreated.customer_id` or `LeadWon.customer_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadsView {
    pub open: u64,
    pub total: u64,
    /// Ordered by lead id.
    pub items: Vec<LeadView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadView {
    pub lead_id: Uuid,
    pub name: String,
    pub pipeline: String,
    /// The stage the lead is in, or was in when it closed.
    pub stage: String,
    pub status: LeadStatus,
    pub estimated_value: Option<Money>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketView {
    pub ticket_id: Uuid,
    pub subject: String,
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub status: TicketStatus,
    pub opened_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionView {
    pub interaction_id: Uuid,
    pub kind: InteractionKind,
    pub channel: Option<String>,
    pub occurred_at: Timestamp,
}

/// The fields [`CustomerView::profile_completeness`] looks at.
pub const COMPLETENESS_FIELDS: usize = 5;

pub(crate) fn orders_count(model: &Model, customer_id: Uuid) -> u64 {
    model
        .order_totals
        .get(&customer_id)
        .map_or(0, |orders| orders.count)
}

pub(crate) fn lifecycle_stage(
    model: &Model,
    customer_id: Uuid,
    c: &CustomerRecord,
) -> LifecycleStage {
    LifecycleStage::of(orders_count(model, customer_id), c.churned)
}

pub(crate) fn render(model: &Model, customer_id: Uuid, c: &CustomerRecord) -> CustomerView {
    let orders = model
        .order_totals
        .get(&customer_id)
        .unwrap_or_else(|| Cow::Owned(OrderTotals::default()));
    let money = MoneyViews::of(&orders);
    let (earliest, latest) = (
        Timestamp::from_micros(i64::MIN),
        Timestamp::from_micros(i64::MAX),
    );
    let first_order_at = model
        .order_placed
        .range(of_customer(customer_id, earliest, latest))
        .next()
        .map(|((_, at), _)| at);
    let last_order_at = model
        .order_placed
        .range_rev(of_customer(customer_id, earliest, latest))
        .next()
        .map(|((_, at), _)| at);
    let leads = leads_view(model, customer_id);
    let tickets = model
        .ticket_totals
        .get(&customer_id)
        .map(Cow::into_owned)
        .unwrap_or_default();
    let last_ticket = tickets.last.and_then(|last| {
        let t = model.tickets.get(&last.ticket_id)?;
        Some(TicketView {
            ticket_id: last.ticket_id,
            subject: t.subject.clone(),
            category: t.category,
            priority: t.priority,
            status: t.status,
            opened_at: t.opened_at,
        })
    });
    CustomerView {
        customer_id,
        name: c.name.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
        segment: c.segment,
        industry: c.industry.clone(),
        region: c.region.clone(),
        source: c.source,
        owner: c.owner.clone(),
        department: c.department.clone(),
        lifecycle_stage: LifecycleStage::of(orders.count, c.churned),
        churned_at: c.churned_at,
        contacts: c
            .contacts
            .iter()
            .map(|(id, contact)| ContactView {
                contact_id: *id,
                name: contact.name.clone(),
                role: contact.role.clone(),
                email: contact.email.clone(),
                phone: contact.phone.clone(),
            })
            .collect(),
        orders_count: orders.count,
        revenue: numbers(&money.revenue),
        refunds: numbers(&money.refunds),
        net_revenue: numbers(&money.net_revenue),
        margin: numbers(&money.margin),
        revenue_exact: exact(&money.revenue),
        refunds_exact: exact(&money.refunds),
        net_revenue_exact: exact(&money.net_revenue),
        margin_exact: exact(&money.margin),
        first_order_at,
        last_order_at,
        leads,
        open_tickets: tickets.open,
        total_tickets: tickets.total,
        last_ticket,
        last_nps: c.last_nps.as_ref().map(|s| s.score),
        last_nps_at: c.last_nps.as_ref().map(|s| s.occurred_at),
        last_csat: c.last_csat.as_ref().map(|s| s.score),
        last_csat_at: c.last_csat.as_ref().map(|s| s.occurred_at),
        interactions_count: c.interactions_count,
        last_interaction: c.last_interaction.as_ref().map(|i| InteractionView {
            interaction_id: i.interaction_id,
            kind: i.kind,
            channel: i.channel.clone(),
            occurred_at: i.occurred_at,
        }),
        profile_completeness: profile_completeness(c),
        registered_at: c.registered_at,
        from_lead: c.from_lead,
    }
}

pub(crate) fn profile_completeness(c: &CustomerRecord) -> f64 {
    let set = [
        c.email.is_some(),
        c.phone.is_some(),
        c.industry.is_some(),
        c.region.is_some(),
        c.owner.is_some(),
    ]
    .into_iter()
    .filter(|set| *set)
    .count();
    set as f64 / COMPLETENESS_FIELDS as f64
}

fn leads_view(model: &Model, customer_id: Uuid) -> LeadsView {
    let items: Vec<LeadView> = model
        .customer_leads
        .range(of_customer(customer_id, Uuid::nil(), Uuid::max()))
        .filter_map(|((_, id), _)| {
            let lead = model.leads.get(&id)?;
            Some(LeadView {
                lead_id: id,
                name: lead.name.clone(),
                pipeline: lead.pipeline.clone(),
                stage: lead.stage.clone(),
                status: lead.status,
                estimated_value: lead.estimated_value,
                created_at: lead.created_at,
            })
        })
        .collect();
    LeadsView {
        open: items
            .iter()
            .filter(|l| l.status == LeadStatus::Open)
            .count() as u64,
        total: items.len() as u64,
        items,
    }
}

/// A customer's sums per currency, exact.
struct MoneyViews {
    revenue: BTreeMap<Currency, MinorSum>,
    refunds: BTreeMap<Currency, MinorSum>,
    net_revenue: BTreeMap<Currency, MinorSum>,
    margin: BTreeMap<Currency, MinorSum>,
}

impl MoneyViews {
    fn of(orders: &OrderTotals) -> MoneyViews {
        let mut views = MoneyViews {
            revenue: BTreeMap::new(),
            refunds: BTreeMap::new(),
            net_revenue: BTreeMap::new(),
            margin: BTreeMap::new(),
        };
        for (currency, totals) in &orders.by_currency {
            // Exact: sums of at most two event amounts per event (`MinorSum`).
            let net = totals.revenue - totals.refunds;
            views.revenue.insert(*currency, totals.revenue);
            views.refunds.insert(*currency, totals.refunds);
            views.net_revenue.insert(*currency, net);
            views.margin.insert(*currency, net - totals.cost);
        }
        views
    }
}

/// JSON numbers where exact in every parser, else `null`.
fn numbers(sums: &BTreeMap<Currency, MinorSum>) -> MoneyByCurrency {
    sums.iter().map(|(c, sum)| (*c, json_safe(*sum))).collect()
}

fn exact(sums: &BTreeMap<Currency, MinorSum>) -> ExactByCurrency {
    sums.iter().map(|(c, sum)| (*c, ExactMinor(*sum))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_follows_counted_orders_unless_churned() {
        let stages: Vec<_> = (0..=6).map(|n| LifecycleStage::of(n, false)).collect();
        assert_eq!(
            stages,
            [
                LifecycleStage::Prospect,
                LifecycleStage::FirstPurchase,
                LifecycleStage::Repeat,
                LifecycleStage::Repeat,
                LifecycleStage::Repeat,
                LifecycleStage::Loyal,
                LifecycleStage::Loyal,
            ]
        );
        assert_eq!(LifecycleStage::of(7, true), LifecycleStage::Churned);
        for stage in LifecycleStage::ALL {
            let json = serde_json::to_value(stage).unwrap();
            assert_eq!(json, stage.as_str());
        }
    }

    #[test]
    fn sums_beyond_2_pow_53_are_null_numbers_and_exact_digits() {
        let eur = Currency::new("EUR").unwrap();
        let sums = BTreeMap::from([(eur, i128::from(i64::MAX) + 5)]);
        assert_eq!(numbers(&sums), BTreeMap::from([(eur, None)]));
        let json = serde_json::to_string(&exact(&sums)).unwrap();
        assert_eq!(json, r#"{"EUR":"9223372036854775812"}"#);
        let small = BTreeMap::from([(eur, -42)]);
        assert_eq!(numbers(&small), BTreeMap::from([(eur, Some(-42))]));
    }
}
