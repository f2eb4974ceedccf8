//! The customer read model in memory: the stored tables (one row per record) and the derived
//! links from a customer to its leads, tickets and order totals, plus the fold.

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::event::*;
use crm_domain::money::MinorSum;
use crm_domain::types::{
    InteractionKind, LeadSource, LeadStatus, OrderChannel, Segment, SurveyKind, TicketCategory,
    TicketPriority, TicketStatus,
};
use crm_domain::{Currency, Event, Money, Timestamp};
use crm_projector::{EventEnvelope, Table};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A registered customer: profile, contacts and the facts recorded on its own stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CustomerRecord {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub segment: Option<Segment>,
    pub industry: Option<String>,
    pub region: Option<String>,
    pub owner: Option<String>,
    pub department: Option<String>,
    pub source: Option<LeadSource>,
    pub from_lead: Option<Uuid>,
    pub registered_at: Timestamp,
    pub contacts: BTreeMap<Uuid, ContactRecord>,
    pub churned: bool,
    pub churned_at: Option<Timestamp>,
    pub interactions_count: u64,
    pub last_interaction: Option<InteractionRecord>,
    pub last_nps: Option<SurveyRecord>,
    pub last_csat: Option<SurveyRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContactRecord {
    pub name: String,
    pub role: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InteractionRecord {
    pub interaction_id: Uuid,
    pub kind: InteractionKind,
    pub channel: Option<String>,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SurveyRecord {
    pub response_id: Uuid,
    pub score: u8,
    pub comment: Option<String>,
    pub occurred_at: Timestamp,
}

/// A lead as the customer view shows it. Kept for every lead that may still be linked to a
/// customer: a lead closed without a customer (lost, disqualified) is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeadRecord {
    pub customer_id: Option<Uuid>,
    pub name: String,
    pub pipeline: String,
    pub stage: String,
    pub status: LeadStatus,
    pub estimated_value: Option<Money>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderRecord {
    pub customer_id: Uuid,
    pub amount: Money,
    pub cost: Option<Money>,
    pub channel: OrderChannel,
    /// Refunds of the order, summed exactly (store format 2; an `i64` before, which could
    /// saturate on refunds beyond the amount that `decide` refuses but a fold must take).
    pub refunded_minor: MinorSum,
    pub cancelled: bool,
    pub placed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TicketRecord {
    pub customer_id: Uuid,
    pub subject: String,
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub status: TicketStatus,
    pub opened_at: Timestamp,
    /// Breaks ties between tickets opened at the same business time (the later one is last).
    pub opened_position: u64,
}

impl TicketRecord {
    /// The open-ticket backlog counts tickets neither resolved nor closed.
    pub fn is_open(&self) -> bool {
        matches!(self.status, TicketStatus::Open | TicketStatus::Assigned)
    }
}

/// What links to one customer id, derived from the lead, ticket and order records (never
/// stored: [`Model::rebuild_links`] recomputes it on restore). Exists for ids the projection
/// has not seen registered too, so an order placed before its customer appears still counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Links {
    pub leads: BTreeSet<Uuid>,
    pub tickets: BTreeSet<Uuid>,
    pub orders: OrderTotals,
}

impl Links {
    fn is_empty(&self) -> bool {
        self.leads.is_empty() && self.tickets.is_empty() && self.orders.is_empty()
    }
}

/// The sum of the contributions of a customer's orders; a cancelled order contributes
/// nothing, so cancelling removes an order's contribution and adds none back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OrderTotals {
    pub count: u64,
    pub by_currency: BTreeMap<Currency, CurrencyTotals>,
    /// Placement times of the counted orders (a multiset), for the first and last order.
    pub placed_at: BTreeMap<Timestamp, u64>,
}

/// Sums in one currency, in minor units: [`MinorSum`]s, so that no sequence of `i64`
/// amounts overflows (see `crm_domain::money::MinorSum` for the headroom) and removing a
/// contribution restores the previous sum exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CurrencyTotals {
    pub orders: u64,
    pub revenue: MinorSum,
    pub refunds: MinorSum,
    pub cost: MinorSum,
}

impl OrderTotals {
    fn is_empty(&self) -> bool {
        self.count == 0 && self.by_currency.is_empty() && self.placed_at.is_empty()
    }

    pub fn first_order_at(&self) -> Option<Timestamp> {
        self.placed_at.keys().next().copied()
    }

    pub fn last_order_at(&self) -> Option<Timestamp> {
        self.placed_at.keys().next_back().copied()
    }

    fn add(&mut self, order: &OrderRecord) {
        if order.cancelled {
            return;
        }
        self.count += 1;
        *self.placed_at.entry(order.placed_at).or_default() += 1;
        let totals = self.by_currency.entry(order.amount.currency).or_default();
        totals.orders += 1;
        totals.revenue += i128::from(order.amount.amount_minor);
        totals.refunds += order.refunded_minor;
        totals.cost += i128::from(order_cost(order));
    }

    /// The exact inverse of [`OrderTotals::add`] for the same record.
    fn remove(&mut self, order: &OrderRecord) {
        if order.cancelled {
            return;
        }
        self.count = self.count.saturating_sub(1);
        decrement(&mut self.placed_at, order.placed_at);
        let currency = order.amount.currency;
        let Some(totals) = self.by_currency.get_mut(&currency) else {
            return;
        };
        totals.orders = totals.orders.saturating_sub(1);
        totals.revenue -= i128::from(order.amount.amount_minor);
        totals.refunds -= order.refunded_minor;
        totals.cost -= i128::from(order_cost(order));
        if totals.orders == 0 {
            self.by_currency.remove(&currency);
        }
    }
}

/// The cost counted for an order: only a cost in the order's currency (the domain refuses
/// any other, so this only guards the fold).
fn order_cost(order: &OrderRecord) -> i64 {
    order
        .cost
        .filter(|cost| cost.currency == order.amount.currency)
        .map_or(0, |cost| cost.amount_minor)
}

fn decrement<K: Ord>(multiset: &mut BTreeMap<K, u64>, key: K) {
    if let Some(count) = multiset.get_mut(&key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            multiset.remove(&key);
        }
    }
}

/// The whole read model: the stored tables (which track their own changes) and the derived
/// links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Model {
    pub customers: Table<Uuid, CustomerRecord>,
    pub leads: Table<Uuid, LeadRecord>,
    pub orders: Table<Uuid, OrderRecord>,
    pub tickets: Table<Uuid, TicketRecord>,
    pub links: BTreeMap<Uuid, Links>,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            customers: Table::new("customer"),
            leads: Table::new("lead"),
            orders: Table::new("order"),
            tickets: Table::new("ticket"),
            links: BTreeMap::new(),
        }
    }
}

impl Model {
    /// Folds one event in. Total: an event about an id the model does not know (or one that
    /// does not fit the record's state) changes nothing, except that facts about a customer
    /// (orders, tickets, leads) are kept under its id even before it is registered.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        let at = envelope.occurred_at;
        match &envelope.event {
            Event::CustomerRegistered(e) => self.register(e, at),
            Event::CustomerProfileUpdated(e) => self.with_customer(e.customer_id, |c| {
                set_if_some(&mut c.name, &e.name);
                set_option_if_some(&mut c.email, &e.email);
                set_option_if_some(&mut c.phone, &e.phone);
                set_option_if_some(&mut c.segment, &e.segment);
                set_option_if_some(&mut c.industry, &e.industry);
                set_option_if_some(&mut c.region, &e.region);
            }),
            Event::CustomerOwnerAssigned(e) => self.with_customer(e.customer_id, |c| {
                c.owner.clone_from(&e.owner);
                c.department.clone_from(&e.department);
            }),
            Event::ContactAdded(e) => self.with_customer(e.customer_id, |c| {
                c.contacts.insert(
                    e.contact_id,
                    ContactRecord {
                        name: e.name.clone(),
                        role: e.role.clone(),
                        email: e.email.clone(),
                        phone: e.phone.clone(),
                    },
                );
            }),
            Event::ContactRemoved(e) => self.with_customer(e.customer_id, |c| {
                c.contacts.remove(&e.contact_id);
            }),
            Event::InteractionLogged(e) => self.with_customer(e.customer_id, |c| {
                c.interactions_count += 1;
                let interaction = InteractionRecord {
                    interaction_id: e.interaction_id,
                    kind: e.kind,
                    channel: e.channel.clone(),
                    occurred_at: at,
                };
                keep_latest(&mut c.last_interaction, interaction, |i| i.occurred_at);
            }),
            Event::SurveyResponseRecorded(e) => self.with_customer(e.customer_id, |c| {
                let answer = SurveyRecord {
                    response_id: e.response_id,
                    score: e.score,
                    comment: e.comment.clone(),
                    occurred_at: at,
                };
                let slot = match e.kind {
                    SurveyKind::Nps => &mut c.last_nps,
                    SurveyKind::Csat => &mut c.last_csat,
                };
                keep_latest(slot, answer, |s| s.occurred_at);
            }),
            Event::CustomerChurned(e) => self.with_customer(e.customer_id, |c| {
                c.churned = true;
                c.churned_at = Some(at);
            }),
            Event::CustomerReactivated(e) => self.with_customer(e.customer_id, |c| {
                c.churned = false;
                c.churned_at = None;
            }),

            Event::LeadCreated(e) => self.create_lead(e, at),
            Event::LeadDetailsUpdated(e) => self.with_lead(e.lead_id, |lead| {
                set_if_some(&mut lead.name, &e.name);
                set_option_if_some(&mut lead.estimated_value, &e.estimated_value);
            }),
            Event::FunnelStageAdvanced(e) => self.move_lead(e.lead_id, &e.to_stage),
            Event::FunnelStageReverted(e) => self.move_lead(e.lead_id, &e.to_stage),
            Event::LeadWon(e) => self.win_lead(e),
            Event::LeadLost(e) => self.close_lead(e.lead_id, LeadStatus::Lost),
            Event::LeadDisqualified(e) => self.close_lead(e.lead_id, LeadStatus::Disqualified),
            Event::LeadScored(_) | Event::LeadAssigned(_) | Event::LeadQualified(_) => {}

            Event::OrderPlaced(e) => self.place_order(e, at),
            Event::OrderRefunded(e) => self.with_order(e.order_id, |order| {
                if !order.cancelled && e.amount.currency == order.amount.currency {
                    order.refunded_minor += i128::from(e.amount.amount_minor);
                }
            }),
            Event::OrderCancelled(e) => self.with_order(e.order_id, |order| order.cancelled = true),

            Event::TicketOpened(e) => self.open_ticket(e, envelope),
            Event::TicketAssigned(e) => self.with_ticket(e.ticket_id, |t| {
                if t.status == TicketStatus::Open {
                    t.status = TicketStatus::Assigned;
                }
            }),
            Event::TicketEscalated(e) => self.with_ticket(e.ticket_id, |t| t.priority = e.priority),
            Event::TicketResolved(e) => {
                self.with_ticket(e.ticket_id, |t| t.status = TicketStatus::Resolved)
            }
            Event::TicketClosed(e) => {
                self.with_ticket(e.ticket_id, |t| t.status = TicketStatus::Closed)
            }
            Event::TicketReopened(e) => {
                self.with_ticket(e.ticket_id, |t| t.status = TicketStatus::Open)
            }
            Event::TicketResponded(_) => {}

            Event::CampaignLaunched(_)
            | Event::CampaignSpendRecorded(_)
            | Event::CampaignReachRecorded(_)
            | Event::CampaignResponseRecorded(_)
            | Event::CampaignEnded(_)
            | Event::PipelineDefined(_) => {}
        }
    }

    /// Recomputes the derived links from the records (after a restore).
    pub fn rebuild_links(&mut self) {
        let mut links: BTreeMap<Uuid, Links> = BTreeMap::new();
        for (lead_id, lead) in self.leads.iter() {
            if let Some(customer_id) = lead.customer_id {
                links.entry(customer_id).or_default().leads.insert(*lead_id);
            }
        }
        for (ticket_id, ticket) in self.tickets.iter() {
            links
                .entry(ticket.customer_id)
                .or_default()
                .tickets
                .insert(*ticket_id);
        }
        for order in self.orders.values() {
            links
                .entry(order.customer_id)
                .or_default()
                .orders
                .add(order);
        }
        links.retain(|_, l| !l.is_empty());
        self.links = links;
    }

    fn register(&mut self, e: &CustomerRegistered, at: Timestamp) {
        // A customer stream is created once; a second registration changes nothing.
        if self.customers.contains_key(&e.customer_id) {
            return;
        }
        self.customers.insert(
            e.customer_id,
            CustomerRecord {
                name: e.name.clone(),
                email: e.email.clone(),
                phone: e.phone.clone(),
                segment: e.segment,
                industry: e.industry.clone(),
                region: e.region.clone(),
                owner: e.owner.clone(),
                department: e.department.clone(),
                source: e.source,
                from_lead: e.from_lead,
                registered_at: at,
                contacts: BTreeMap::new(),
                churned: false,
                churned_at: None,
                interactions_count: 0,
                last_interaction: None,
                last_nps: None,
                last_csat: None,
            },
        );
    }

    /// Events of a customer's own stream before its registration cannot happen (the domain
    /// refuses them); they are ignored.
    fn with_customer(&mut self, id: Uuid, change: impl FnOnce(&mut CustomerRecord)) {
        self.customers.update(&id, change);
    }

    fn create_lead(&mut self, e: &LeadCreated, at: Timestamp) {
        if self.leads.contains_key(&e.lead_id) {
            return;
        }
        self.leads.insert(
            e.lead_id,
            LeadRecord {
                customer_id: e.customer_id,
                name: e.name.clone(),
                pipeline: e.pipeline.clone(),
                stage: e.stage.clone(),
                status: LeadStatus::Open,
                estimated_value: e.estimated_value,
                created_at: at,
            },
        );
        if let Some(customer_id) = e.customer_id {
            self.links_mut(customer_id).leads.insert(e.lead_id);
        }
    }

    fn with_lead(&mut self, id: Uuid, change: impl FnOnce(&mut LeadRecord)) {
        self.leads.update(&id, change);
    }

    /// Whether lead `id` is known and open: `Table::update` rewrites the row whatever the
    /// change does, so events that change nothing are sorted out first.
    fn lead_is_open(&self, id: Uuid) -> bool {
        self.leads
            .get(&id)
            .is_some_and(|lead| lead.status == LeadStatus::Open)
    }

    fn move_lead(&mut self, id: Uuid, to_stage: &str) {
        self.with_lead(id, |lead| {
            if lead.status == LeadStatus::Open {
                to_stage.clone_into(&mut lead.stage);
            }
        });
    }

    fn win_lead(&mut self, e: &LeadWon) {
        if !self.lead_is_open(e.lead_id) {
            return;
        }
        let previous = self
            .leads
            .update(&e.lead_id, |lead| {
                lead.status = LeadStatus::Won;
                lead.customer_id.replace(e.customer_id)
            })
            .flatten();
        if previous == Some(e.customer_id) {
            return;
        }
        if let Some(previous) = previous {
            self.links_mut(previous).leads.remove(&e.lead_id);
            self.prune_links(previous);
        }
        self.links_mut(e.customer_id).leads.insert(e.lead_id);
    }

    fn close_lead(&mut self, id: Uuid, status: LeadStatus) {
        let Some(lead) = self.leads.get(&id).filter(|l| l.status == LeadStatus::Open) else {
            return;
        };
        // A closed lead takes no further event, so without a customer it never shows.
        if lead.customer_id.is_none() {
            self.leads.remove(&id);
        } else {
            self.leads.update(&id, |lead| lead.status = status);
        }
    }

    fn place_order(&mut self, e: &OrderPlaced, at: Timestamp) {
        if self.orders.contains_key(&e.order_id) {
            return;
        }
        let order = OrderRecord {
            customer_id: e.customer_id,
            amount: e.amount,
            cost: e.cost,
            channel: e.channel,
            refunded_minor: 0,
            cancelled: false,
            placed_at: at,
        };
        self.links_mut(e.customer_id).orders.add(&order);
        self.orders.insert(e.order_id, order);
    }

    /// Changes an order, keeping its customer's totals equal to the sum of its orders'
    /// contributions: the old contribution comes out, the new one goes in.
    fn with_order(&mut self, id: Uuid, change: impl FnOnce(&mut OrderRecord)) {
        // Refunds and cancellation of a cancelled order cannot happen; they change nothing
        // (and are sorted out first, since `Table::update` rewrites the row regardless).
        if self.orders.get(&id).is_none_or(|order| order.cancelled) {
            return;
        }
        let Some((before, after)) = self.orders.update(&id, |order| {
            let before = order.clone();
            change(order);
            (before, order.clone())
        }) else {
            return;
        };
        let totals = &mut self.links_mut(after.customer_id).orders;
        totals.remove(&before);
        totals.add(&after);
        self.prune_links(after.customer_id);
    }

    fn open_ticket(&mut self, e: &TicketOpened, envelope: &EventEnvelope) {
        if self.tickets.contains_key(&e.ticket_id) {
            return;
        }
        self.tickets.insert(
            e.ticket_id,
            TicketRecord {
                customer_id: e.customer_id,
                subject: e.subject.clone(),
                category: e.category,
                priority: e.priority,
                status: TicketStatus::Open,
                opened_at: envelope.occurred_at,
                opened_position: envelope.position,
            },
        );
        self.links_mut(e.customer_id).tickets.insert(e.ticket_id);
    }

    fn with_ticket(&mut self, id: Uuid, change: impl FnOnce(&mut TicketRecord)) {
        self.tickets.update(&id, change);
    }

    fn links_mut(&mut self, customer_id: Uuid) -> &mut Links {
        self.links.entry(customer_id).or_default()
    }

    /// Drops an empty entry, so the live links equal the ones a restore rebuilds.
    fn prune_links(&mut self, customer_id: Uuid) {
        if self.links.get(&customer_id).is_some_and(Links::is_empty) {
            self.links.remove(&customer_id);
        }
    }
}

fn set_if_some<T: Clone>(target: &mut T, value: &Option<T>) {
    if let Some(value) = value {
        target.clone_from(value);
    }
}

fn set_option_if_some<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
    if let Some(value) = value {
        *target = Some(value.clone());
    }
}

/// Keeps the latest answer in business time; on a tie the later event (position) wins.
fn keep_latest<T>(slot: &mut Option<T>, candidate: T, at: impl Fn(&T) -> Timestamp) {
    if slot
        .as_ref()
        .is_none_or(|current| at(&candidate) >= at(current))
    {
        *slot = Some(candidate);
    }
}
