//! The customer read model: the stored tables (one row per record, and what links to a
//! customer: its leads, its ticket counts and its order totals, kept by the fold), plus the
//! fold itself. The tables are the whole state.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crm_domain::event::*;
use crm_domain::money::MinorSum;
use crm_domain::types::{
    InteractionKind, LeadSource, LeadStatus, OrderChannel, Segment, SurveyKind, TicketCategory,
    TicketPriority, TicketStatus,
};
use crm_domain::{Currency, Event, Money, Timestamp};
use crm_projector::{EventEnvelope, Single, Table, TableKey};
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

/// The tickets of one customer id (a row exists for ids the projection has not seen
/// registered too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TicketTotals {
    pub total: u64,
    /// Tickets neither resolved nor closed.
    pub open: u64,
    /// The most recently opened ticket: latest `(opened_at, opened_position, ticket id)`.
    pub last: Option<LastTicket>,
}

/// A ticket's place in its customer's order of opening (fields in comparison order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct LastTicket {
    pub opened_at: Timestamp,
    pub opened_position: u64,
    pub ticket_id: Uuid,
}

/// The sum of the contributions of a customer's orders; a cancelled order contributes
/// nothing, so cancelling removes an order's contribution and adds none back. The placement
/// times of the counted orders are in `order_placed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderTotals {
    pub count: u64,
    pub by_currency: BTreeMap<Currency, CurrencyTotals>,
}

/// Sums in one currency, in minor units: [`MinorSum`]s, so that no sequence of `i64`
/// amounts overflows (see `crm_domain::money::MinorSum` for the headroom) and removing a
/// contribution restores the previous sum exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CurrencyTotals {
    pub orders: u64,
    pub revenue: MinorSum,
    pub refunds: MinorSum,
    pub cost: MinorSum,
}

impl OrderTotals {
    fn is_empty(&self) -> bool {
        self.count == 0 && self.by_currency.is_empty()
    }

    fn add(&mut self, order: &OrderRecord) {
        if order.cancelled {
            return;
        }
        self.count += 1;
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

/// Adds one to the counter row at `key`, or takes one off (removing the row at 0).
fn count_row<K: TableKey>(table: &mut Table<K, u64>, key: K, add: bool) {
    if add {
        table.upsert(key, |n| *n += 1);
    } else if table.update(&key, |n| {
        *n = n.saturating_sub(1);
        *n == 0
    }) == Some(true)
    {
        table.remove(&key);
    }
}

/// Counters over the whole model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Totals {
    /// Registered customers.
    pub customers: u64,
}

/// The keys of one customer's rows in a table keyed `(customer id, K)`.
pub(crate) fn of_customer<K>(customer_id: Uuid, first: K, last: K) -> RangeInclusive<(Uuid, K)> {
    (customer_id, first)..=(customer_id, last)
}

/// The whole read model: the stored tables, which track their own changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Model {
    pub customers: Table<Uuid, CustomerRecord>,
    pub leads: Table<Uuid, LeadRecord>,
    pub orders: Table<Uuid, OrderRecord>,
    pub tickets: Table<Uuid, TicketRecord>,
    /// The leads linked to a customer id: `(customer id, lead id)`.
    pub customer_leads: Table<(Uuid, Uuid), ()>,
    /// A customer id's order sums (no row while it has no counted order).
    pub order_totals: Table<Uuid, OrderTotals>,
    /// Counted orders by customer id and placement time (the newest by a reverse range).
    pub order_placed: Table<(Uuid, Timestamp), u64>,
    /// A customer id's ticket counts and last ticket.
    pub ticket_totals: Table<Uuid, TicketTotals>,
    pub totals: Single<Totals>,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            customers: Table::new("customer"),
            leads: Table::new("lead"),
            orders: Table::new("order"),
            tickets: Table::new("ticket"),
            customer_leads: Table::new("customer_lead"),
            order_totals: Table::new("order_totals"),
            order_placed: Table::new("order_placed"),
            ticket_totals: Table::new("ticket_totals"),
            totals: Single::new("totals"),
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
        self.totals.update(|totals| totals.customers += 1);
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
            self.customer_leads.insert((customer_id, e.lead_id), ());
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
            self.customer_leads.remove(&(previous, e.lead_id));
        }
        self.customer_leads.insert((e.customer_id, e.lead_id), ());
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
        self.count_order(&order, true);
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
        if before == after {
            return;
        }
        if before.cancelled == after.cancelled {
            // Same placement, other sums.
            self.order_totals.upsert(after.customer_id, |totals| {
                totals.remove(&before);
                totals.add(&after);
            });
        } else {
            self.count_order(&before, false);
            self.count_order(&after, true);
        }
    }

    /// Adds a counted order's contribution to its customer's sums and placement times, or
    /// takes it out again (`add` false); a cancelled order contributes nothing.
    fn count_order(&mut self, order: &OrderRecord, add: bool) {
        if order.cancelled {
            return;
        }
        let customer_id = order.customer_id;
        if add {
            self.order_totals
                .upsert(customer_id, |totals| totals.add(order));
        } else if self.order_totals.update(&customer_id, |totals| {
            totals.remove(order);
            totals.is_empty()
        }) == Some(true)
        {
            self.order_totals.remove(&customer_id);
        }
        let at = order.placed_at;
        count_row(&mut self.order_placed, (customer_id, at), add);
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
        let opened = LastTicket {
            opened_at: envelope.occurred_at,
            opened_position: envelope.position,
            ticket_id: e.ticket_id,
        };
        self.ticket_totals.upsert(e.customer_id, |totals| {
            totals.total += 1;
            totals.open += 1;
            if totals.last.is_none_or(|last| opened > last) {
                totals.last = Some(opened);
            }
        });
    }

    /// Changes a ticket, keeping its customer's count of open tickets.
    fn with_ticket(&mut self, id: Uuid, change: impl FnOnce(&mut TicketRecord)) {
        let Some((customer_id, was_open, is_open)) = self.tickets.update(&id, |ticket| {
            let was_open = ticket.is_open();
            change(ticket);
            (ticket.customer_id, was_open, ticket.is_open())
        }) else {
            return;
        };
        if was_open != is_open {
            self.ticket_totals.upsert(customer_id, |totals| {
                totals.open = if is_open {
                    totals.open + 1
                } else {
                    totals.open.saturating_sub(1)
                };
            });
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

#[cfg(test)]
mod tests {
    //! The rows the fold keeps per customer equal what a scan of the four record tables
    //! gives (the derivation store format 2 made in memory), over random streams.

    use super::*;
    use crm_proj_testkit::{arbitrary_stream, check_while_folding, seeds, valid_stream};
    use proptest::prelude::*;

    /// What a scan of the records says links to each customer id.
    #[derive(Debug, Default, PartialEq)]
    struct Scanned {
        leads: Vec<(Uuid, Uuid)>,
        order_totals: BTreeMap<Uuid, OrderTotals>,
        placed: BTreeMap<(Uuid, Timestamp), u64>,
        tickets: BTreeMap<Uuid, TicketTotals>,
        customers: u64,
    }

    fn scan(model: &Model) -> Scanned {
        let mut scanned = Scanned::default();
        for (lead_id, lead) in model.leads.iter() {
            if let Some(customer_id) = lead.customer_id {
                scanned.leads.push((customer_id, lead_id));
            }
        }
        scanned.leads.sort_unstable();
        for order in model.orders.values() {
            let totals = scanned.order_totals.entry(order.customer_id).or_default();
            totals.add(&order);
            if !order.cancelled {
                *scanned
                    .placed
                    .entry((order.customer_id, order.placed_at))
                    .or_default() += 1;
            }
        }
        scanned.order_totals.retain(|_, totals| !totals.is_empty());
        for (ticket_id, ticket) in model.tickets.iter() {
            let totals = scanned.tickets.entry(ticket.customer_id).or_default();
            totals.total += 1;
            totals.open += u64::from(ticket.is_open());
            let this = LastTicket {
                opened_at: ticket.opened_at,
                opened_position: ticket.opened_position,
                ticket_id,
            };
            totals.last = totals.last.max(Some(this));
        }
        scanned.customers = model.customers.iter().count() as u64;
        scanned
    }

    /// What the fold kept, in the same shape.
    fn kept(model: &Model) -> Scanned {
        let placed: BTreeMap<(Uuid, Timestamp), u64> = model
            .order_placed
            .iter()
            .map(|(key, n)| (key, *n))
            .collect();
        Scanned {
            leads: model.customer_leads.iter().map(|(key, _)| key).collect(),
            order_totals: model
                .order_totals
                .iter()
                .map(|(id, totals)| (id, totals.into_owned()))
                .collect(),
            placed,
            tickets: model
                .ticket_totals
                .iter()
                .map(|(id, totals)| (id, totals.into_owned()))
                .collect(),
            customers: model.totals.get().customers,
        }
    }

    fn check(envelopes: &[EventEnvelope]) -> Result<(), TestCaseError> {
        check_while_folding(envelopes, 1, Model::apply, |model| {
            prop_assert_eq!(&kept(model), &scan(model));
            Ok(())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn kept_links_equal_a_scan_of_valid_streams(seeds in seeds(120)) {
            check(&valid_stream(&seeds))?;
        }

        #[test]
        fn kept_links_equal_a_scan_of_arbitrary_streams(seeds in seeds(120)) {
            check(&arbitrary_stream(&seeds))?;
        }
    }
}
