//! `apply`: the deterministic fold of one event into the model. Time comes only from the
//! event's `occurred_at`; rows change only through the tables, which note what to store.
//!
//! The fold is total: an event that does not fit what it remembers (an unknown entity, a
//! second creation, a transition from the wrong state; `decide` never produces one) changes
//! nothing, so no event sequence can corrupt a counter or panic. Rows are checked with `get`
//! before `update`, because `update` marks a row to store even when the change is a no-op.

use std::ops::Bound;

use crm_domain::event::*;
use crm_domain::types::{LeadSource, SurveyKind, TicketCategory};
use crm_domain::{Currency, Event, Month, Timestamp};
use crm_projector::EventEnvelope;
use uuid::Uuid;

use crate::model::{
    profile_window_start, Bucket, CurrencyTotals, CustomerMemory, Duration, DurationKind,
    DurationScope, LeadMemory, Model, OrderMemory, ProfileField, Sales, SourceTotals, TicketMemory,
};

/// NPS answers at or above this are promoters; at or below `NPS_DETRACTOR_MAX` detractors.
const NPS_PROMOTER_MIN: u8 = 9;
const NPS_DETRACTOR_MAX: u8 = 6;
/// CSAT answers at or above this are satisfied.
const CSAT_SATISFIED_MIN: u8 = 4;

impl Model {
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        let at = envelope.occurred_at;
        self.note_time(at);
        let month = at.month();
        match &envelope.event {
            Event::LeadCreated(e) => self.lead_created(e, at, month),
            Event::LeadWon(e) => self.lead_won(e, at, month),
            Event::LeadLost(e) => self.lead_lost(e, month),
            Event::LeadDisqualified(e) => self.lead_disqualified(e),
            Event::LeadDetailsUpdated(_)
            | Event::LeadScored(_)
            | Event::LeadAssigned(_)
            | Event::FunnelStageAdvanced(_)
            | Event::FunnelStageReverted(_)
            | Event::LeadQualified(_) => {}

            Event::CustomerRegistered(e) => self.customer_registered(e, month),
            Event::CustomerProfileUpdated(e) => {
                let set = [
                    (ProfileField::Email, e.email.is_some()),
                    (ProfileField::Phone, e.phone.is_some()),
                    (ProfileField::Industry, e.industry.is_some()),
                    (ProfileField::Region, e.region.is_some()),
                ];
                self.profile_changed(e.customer_id, at, month, |fields| {
                    for (field, present) in set {
                        if present {
                            *fields |= field.bit();
                        }
                    }
                });
            }
            Event::CustomerOwnerAssigned(e) => {
                let has_owner = e.owner.is_some();
                self.profile_changed(e.customer_id, at, month, |fields| {
                    if has_owner {
                        *fields |= ProfileField::Owner.bit();
                    } else {
                        *fields &= !ProfileField::Owner.bit();
                    }
                });
            }
            Event::CustomerChurned(e) => self.customer_activity(e.customer_id, month, false),
            Event::CustomerReactivated(e) => self.customer_activity(e.customer_id, month, true),
            Event::InteractionLogged(_) => {
                self.both(month, |b| inc(&mut b.interactions));
            }
            Event::SurveyResponseRecorded(e) => self.survey(e, month),
            Event::ContactAdded(_) | Event::ContactRemoved(_) => {}

            Event::OrderPlaced(e) => self.order_placed(e, month),
            Event::OrderRefunded(e) => self.order_refunded(e),
            Event::OrderCancelled(e) => self.order_cancelled(e),

            Event::TicketOpened(e) => self.ticket_opened(e, at, month),
            Event::TicketResponded(e) => {
                if e.public {
                    self.ticket_responded(e.ticket_id, at, month);
                }
            }
            Event::TicketResolved(e) => self.ticket_resolved(e.ticket_id, at, month),
            Event::TicketClosed(e) => self.ticket_backlog(e.ticket_id, month, false),
            Event::TicketReopened(e) => self.ticket_backlog(e.ticket_id, month, true),
            Event::TicketAssigned(_) | Event::TicketEscalated(_) => {}

            Event::CampaignSpendRecorded(e) => {
                let amount = i128::from(e.amount.amount_minor);
                let currency = e.amount.currency;
                self.both(month, |b| {
                    // Exact: see `crm_domain::money::MinorSum` for why an i128 sum of event
                    // amounts cannot overflow.
                    *b.campaign_spend.entry(currency).or_default() += amount;
                });
            }
            Event::CampaignReachRecorded(e) => {
                self.both(month, |b| add(&mut b.campaign_reach, e.sent));
            }
            Event::CampaignResponseRecorded(e) => {
                self.both(month, |b| add(&mut b.campaign_responses, e.responses));
            }
            Event::CampaignLaunched(_) | Event::CampaignEnded(_) | Event::PipelineDefined(_) => {}
        }
    }

    /// Moves "now" to `at` when it is newer, and with it the data update window: the
    /// customers whose newest profile change it leaves behind no longer count in it.
    fn note_time(&mut self, at: Timestamp) {
        let newest = self.meta.get().newest_at;
        if newest.is_some_and(|newest| at <= newest) {
            return;
        }
        let from = newest.map(profile_window_start);
        let to = profile_window_start(at);
        let left: u64 = match from {
            Some(from) if from >= to => 0,
            _ => self
                .profile_changes
                .range((
                    from.map_or(Bound::Unbounded, Bound::Excluded),
                    Bound::Included(to),
                ))
                .map(|(_, n)| *n)
                .sum(),
        };
        self.meta.update(|meta| {
            meta.newest_at = Some(at);
            meta.recent_profile_changes = meta.recent_profile_changes.saturating_sub(left);
        });
    }

    /// A customer's place in the data update window moves from `before` to `after` (the
    /// time of its newest profile change while it is active, else `None`).
    fn move_in_window(&mut self, before: Option<Timestamp>, after: Option<Timestamp>) {
        if before == after {
            return;
        }
        let start = self.meta.get().newest_at.map(profile_window_start);
        let in_window = |at: Timestamp| start.is_none_or(|start| at > start);
        if let Some(before) = before {
            let emptied = self.profile_changes.update(&before, |n| {
                *n = n.saturating_sub(1);
                *n == 0
            });
            if emptied == Some(true) {
                self.profile_changes.remove(&before);
            }
            if in_window(before) {
                self.meta.update(|meta| {
                    meta.recent_profile_changes = meta.recent_profile_changes.saturating_sub(1);
                });
            }
        }
        if let Some(after) = after {
            self.profile_changes.upsert(after, inc);
            if in_window(after) {
                self.meta
                    .update(|meta| inc(&mut meta.recent_profile_changes));
            }
        }
    }

    /// Applies `f` to the month's bucket and to the all-time bucket.
    fn both(&mut self, month: Month, f: impl Fn(&mut Bucket)) {
        self.months.upsert(month, &f);
        self.all.update(&f);
    }

    // ---- leads ----

    fn lead_created(&mut self, e: &LeadCreated, at: Timestamp, month: Month) {
        if self.leads.contains_key(&e.lead_id) {
            return;
        }
        self.leads.insert(
            e.lead_id,
            LeadMemory {
                created_at: at,
                source: e.source,
                closed: false,
            },
        );
        self.both(month, |b| {
            inc(&mut b.leads_created);
            inc(&mut source(b, e.source).leads);
        });
    }

    /// The lead, marked closed, if it was known and open.
    fn close_lead(&mut self, lead_id: Uuid) -> Option<LeadMemory> {
        if self.leads.get(&lead_id)?.closed {
            return None;
        }
        self.leads.update(&lead_id, |lead| {
            lead.closed = true;
            *lead
        })
    }

    fn lead_won(&mut self, e: &LeadWon, at: Timestamp, month: Month) {
        let Some(lead) = self.close_lead(e.lead_id) else {
            return;
        };
        let cycle = duration_micros(lead.created_at, at);
        self.both(month, |b| {
            inc(&mut b.leads_won);
            b.sales_cycle_micros = b.sales_cycle_micros.saturating_add(u128::from(cycle));
            inc(&mut source(b, lead.source).won);
        });
        self.both(lead.created_at.month(), |b| {
            inc(&mut b.leads_converted);
            inc(&mut source(b, lead.source).converted);
        });
    }

    fn lead_lost(&mut self, e: &LeadLost, month: Month) {
        let Some(lead) = self.close_lead(e.lead_id) else {
            return;
        };
        self.both(month, |b| {
            inc(&mut b.leads_lost);
            inc(&mut source(b, lead.source).lost);
        });
    }

    fn lead_disqualified(&mut self, e: &LeadDisqualified) {
        self.close_lead(e.lead_id);
    }

    // ---- customers ----

    fn is_registered(&self, customer_id: Uuid) -> bool {
        self.customers
            .get(&customer_id)
            .is_some_and(|c| c.registered)
    }

    fn customer_registered(&mut self, e: &CustomerRegistered, month: Month) {
        if self.is_registered(e.customer_id) {
            return;
        }
        let mut fields = 0;
        for (field, present) in [
            (ProfileField::Email, e.email.is_some()),
            (ProfileField::Phone, e.phone.is_some()),
            (ProfileField::Industry, e.industry.is_some()),
            (ProfileField::Region, e.region.is_some()),
            (ProfileField::Owner, e.owner.is_some()),
        ] {
            if present {
                fields |= field.bit();
            }
        }
        // An order may have created the record before the registration was seen.
        let (filled, window) = self.customers.upsert(e.customer_id, |customer| {
            let before = customer.window_time();
            customer.registered = true;
            customer.active = true;
            customer.source = e.source;
            customer.profile_fields = fields;
            (customer.filled_fields(), (before, customer.window_time()))
        });
        self.move_in_window(window.0, window.1);
        self.both(month, |b| {
            inc(&mut b.customers_registered);
            b.profile_fields_delta = b.profile_fields_delta.saturating_add(filled);
        });
    }

    /// A profile change of a registered customer: `change` edits the field bit set.
    fn profile_changed(
        &mut self,
        customer_id: Uuid,
        at: Timestamp,
        month: Month,
        change: impl FnOnce(&mut u8),
    ) {
        if !self.is_registered(customer_id) {
            return;
        }
        let changed = self.customers.update(&customer_id, |customer| {
            let before_window = customer.window_time();
            let before = customer.active_fields();
            change(&mut customer.profile_fields);
            let delta = customer.active_fields() - before;
            if customer.last_profile_change_at.is_none_or(|last| at > last) {
                customer.last_profile_change_at = Some(at);
            }
            let first_in_month = customer.active && customer.months_updated.insert(month);
            (
                delta,
                first_in_month,
                (before_window, customer.window_time()),
            )
        });
        let Some((delta, first_in_month, window)) = changed else {
            return;
        };
        self.move_in_window(window.0, window.1);
        if delta != 0 {
            self.both(month, |b| {
                b.profile_fields_delta = b.profile_fields_delta.saturating_add(delta);
            });
        }
        if first_in_month {
            self.months.upsert(month, |b| inc(&mut b.profiles_updated));
        }
    }

    /// Churn (`active == false`) or reactivation of a registered customer.
    fn customer_activity(&mut self, customer_id: Uuid, month: Month, active: bool) {
        let Some(customer) = self.customers.get(&customer_id) else {
            return;
        };
        if !customer.registered || customer.active == active {
            return;
        }
        let Some((filled, window)) = self.customers.update(&customer_id, |customer| {
            let before = customer.window_time();
            customer.active = active;
            (customer.filled_fields(), (before, customer.window_time()))
        }) else {
            return;
        };
        self.move_in_window(window.0, window.1);
        self.both(month, |b| {
            if active {
                inc(&mut b.customers_reactivated);
                b.profile_fields_delta = b.profile_fields_delta.saturating_add(filled);
            } else {
                inc(&mut b.customers_churned);
                b.profile_fields_delta = b.profile_fields_delta.saturating_sub(filled);
            }
        });
    }

    fn survey(&mut self, e: &SurveyResponseRecorded, month: Month) {
        let (kind, score) = (e.kind, e.score);
        self.both(month, |b| match kind {
            SurveyKind::Nps => {
                inc(&mut b.nps_responses);
                if score >= NPS_PROMOTER_MIN {
                    inc(&mut b.nps_promoters);
                } else if score <= NPS_DETRACTOR_MAX {
                    inc(&mut b.nps_detractors);
                }
            }
            SurveyKind::Csat => {
                inc(&mut b.csat_responses);
                if score >= CSAT_SATISFIED_MIN {
                    inc(&mut b.csat_satisfied);
                }
            }
        });
    }

    // ---- orders ----

    fn order_placed(&mut self, e: &OrderPlaced, month: Month) {
        if self.orders.contains_key(&e.order_id) {
            return;
        }
        let currency = e.amount.currency;
        let source = e
            .lead_id
            .and_then(|id| self.leads.get(&id))
            .map(|lead| lead.source)
            .or_else(|| {
                self.customers
                    .get(&e.customer_id)
                    .filter(|c| c.registered)
                    .and_then(|c| c.source)
            });
        let order = OrderMemory {
            customer_id: e.customer_id,
            month,
            currency,
            amount: e.amount.amount_minor,
            cost: e
                .cost
                .filter(|cost| cost.currency == currency)
                .map_or(0, |cost| cost.amount_minor),
            refunded: 0,
            channel: e.channel,
            source,
            cancelled: false,
        };
        self.orders.insert(e.order_id, order);
        let sales = order.sales();
        self.both(month, |b| add_order(b, &order, sales, Sign::Plus));
        self.customer_orders(order.customer_id, month, currency, Sign::Plus);
    }

    fn order_refunded(&mut self, e: &OrderRefunded) {
        let Some(order) = self.orders.get(&e.order_id) else {
            return;
        };
        if order.cancelled || order.currency != e.amount.currency {
            return;
        }
        let amount = i128::from(e.amount.amount_minor);
        let Some(order) = self.orders.update(&e.order_id, |order| {
            order.refunded += amount;
            *order
        }) else {
            return;
        };
        let refund = Sales {
            refunds: amount,
            ..Sales::default()
        };
        self.both(order.month, |b| {
            add_sales_only(b, &order, refund, Sign::Plus)
        });
    }

    fn order_cancelled(&mut self, e: &OrderCancelled) {
        if self.orders.get(&e.order_id).is_none_or(|o| o.cancelled) {
            return;
        }
        // The sales it counted for while not cancelled, taken back below.
        let Some((order, sales)) = self.orders.update(&e.order_id, |order| {
            let sales = order.sales();
            order.cancelled = true;
            (*order, sales)
        }) else {
            return;
        };
        self.both(order.month, |b| add_order(b, &order, sales, Sign::Minus));
        self.customer_orders(order.customer_id, order.month, order.currency, Sign::Minus);
    }

    /// One more (or one less) order of the customer in `month` and `currency`: updates the
    /// distinct-customer counters whose thresholds it crosses. Orders name customers by id, so
    /// this creates the customer's record when its registration was not seen.
    fn customer_orders(&mut self, customer_id: Uuid, month: Month, currency: Currency, sign: Sign) {
        let (before, after) = self.customers.upsert(customer_id, |customer| {
            let before = OrderTallies::of(customer, month, currency);
            let months = &mut customer.order_counts;
            let in_month = months.entry(month).or_default();
            let count = in_month.entry(currency).or_default();
            *count = match sign {
                Sign::Plus => count.saturating_add(1),
                Sign::Minus => count.saturating_sub(1),
            };
            if *count == 0 {
                in_month.remove(&currency);
            }
            if in_month.is_empty() {
                months.remove(&month);
            }
            (before, OrderTallies::of(customer, month, currency))
        });

        self.months.upsert(month, |b| {
            add_signed(
                &mut b.customers_with_orders,
                crossed(before.month_any, after.month_any, 1),
            );
            add_signed(
                &mut b.customers_with_repeat_orders,
                crossed(before.month_any, after.month_any, 2),
            );
            add_signed(
                &mut currency_totals(b, currency).customers_with_orders,
                crossed(before.month_currency, after.month_currency, 1),
            );
        });

        self.all.update(|all| {
            add_signed(
                &mut all.customers_with_orders,
                crossed(before.total_any, after.total_any, 1),
            );
            add_signed(
                &mut all.customers_with_repeat_orders,
                crossed(before.total_any, after.total_any, 2),
            );
            let totals = currency_totals(all, currency);
            let first_buyer = crossed(before.total_currency, after.total_currency, 1);
            add_signed(&mut totals.customers_with_orders, first_buyer);
            add_signed(&mut totals.first_order_customers, first_buyer);
        });

        if before.first_month != after.first_month {
            for (first_month, delta) in [(before.first_month, -1), (after.first_month, 1)] {
                if let Some(first_month) = first_month {
                    self.months.upsert(first_month, |b| {
                        add_signed(
                            &mut currency_totals(b, currency).first_order_customers,
                            delta,
                        );
                    });
                }
            }
        }
    }

    // ---- tickets ----

    fn ticket_opened(&mut self, e: &TicketOpened, at: Timestamp, month: Month) {
        if self.tickets.contains_key(&e.ticket_id) {
            return;
        }
        self.tickets.insert(
            e.ticket_id,
            TicketMemory {
                opened_at: at,
                in_backlog: true,
                first_response: None,
                resolution: None,
            },
        );
        let complaint = e.category == TicketCategory::Complaint;
        self.both(month, |b| {
            inc(&mut b.tickets_opened);
            if complaint {
                inc(&mut b.complaints_opened);
            }
            b.backlog_delta = b.backlog_delta.saturating_add(1);
        });
    }

    fn ticket_responded(&mut self, ticket_id: Uuid, at: Timestamp, month: Month) {
        let Some(ticket) = self.tickets.get(&ticket_id) else {
            return;
        };
        if ticket.first_response.is_some() {
            return;
        }
        let duration = Duration {
            micros: duration_micros(ticket.opened_at, at),
            month,
        };
        self.tickets
            .update(&ticket_id, |t| t.first_response = Some(duration));
        self.measured(DurationKind::FirstResponse, duration);
        self.both(month, |b| {
            inc(&mut b.first_responses);
            b.first_response_micros = b
                .first_response_micros
                .saturating_add(u128::from(duration.micros));
        });
    }

    fn ticket_resolved(&mut self, ticket_id: Uuid, at: Timestamp, month: Month) {
        let Some(ticket) = self.tickets.get(&ticket_id) else {
            return;
        };
        if ticket.resolution.is_none() {
            let duration = Duration {
                micros: duration_micros(ticket.opened_at, at),
                month,
            };
            self.tickets
                .update(&ticket_id, |t| t.resolution = Some(duration));
            self.measured(DurationKind::Resolution, duration);
            self.both(month, |b| {
                inc(&mut b.resolutions);
                b.resolution_micros = b
                    .resolution_micros
                    .saturating_add(u128::from(duration.micros));
            });
        }
        self.ticket_backlog(ticket_id, month, false);
    }

    /// A ticket duration, for the percentiles of all time and of its month.
    fn measured(&mut self, kind: DurationKind, duration: Duration) {
        for month in [None, Some(duration.month)] {
            self.durations
                .insert(&DurationScope { kind, month }, duration.micros);
        }
    }

    /// The ticket enters (`true`: reopened) or leaves (resolved, closed) the backlog.
    fn ticket_backlog(&mut self, ticket_id: Uuid, month: Month, in_backlog: bool) {
        if self
            .tickets
            .get(&ticket_id)
            .is_none_or(|t| t.in_backlog == in_backlog)
        {
            return;
        }
        self.tickets
            .update(&ticket_id, |t| t.in_backlog = in_backlog);
        let delta = if in_backlog { 1 } else { -1 };
        self.both(month, |b| {
            b.backlog_delta = b.backlog_delta.saturating_add(delta);
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    Plus,
    Minus,
}

/// A customer's order counts as far as one (month, currency) change can move them.
struct OrderTallies {
    month_any: u64,
    month_currency: u64,
    total_any: u64,
    total_currency: u64,
    first_month: Option<Month>,
}

impl OrderTallies {
    fn of(customer: &CustomerMemory, month: Month, currency: Currency) -> OrderTallies {
        let count = |counts: &std::collections::BTreeMap<Currency, u32>| -> u64 {
            counts.values().map(|n| u64::from(*n)).sum()
        };
        let in_month = customer.order_counts.get(&month);
        OrderTallies {
            month_any: in_month.map_or(0, count),
            month_currency: in_month
                .and_then(|m| m.get(&currency))
                .map_or(0, |n| u64::from(*n)),
            total_any: customer.order_counts.values().map(count).sum(),
            total_currency: customer
                .order_counts
                .values()
                .filter_map(|m| m.get(&currency))
                .map(|n| u64::from(*n))
                .sum(),
            first_month: customer
                .order_counts
                .iter()
                .find(|(_, m)| m.contains_key(&currency))
                .map(|(month, _)| *month),
        }
    }
}

/// +1 when a count rises to `threshold`, -1 when it falls below it, else 0.
fn crossed(before: u64, after: u64, threshold: u64) -> i64 {
    match (before >= threshold, after >= threshold) {
        (false, true) => 1,
        (true, false) => -1,
        _ => 0,
    }
}

fn add_order(b: &mut Bucket, order: &OrderMemory, sales: Sales, sign: Sign) {
    match sign {
        Sign::Plus => inc(&mut b.orders),
        Sign::Minus => dec(&mut b.orders),
    }
    add_sales_only(b, order, sales, sign);
}

/// Adds `sales` to the currency, channel and source totals the order counts in.
fn add_sales_only(b: &mut Bucket, order: &OrderMemory, sales: Sales, sign: Sign) {
    add_sales(&mut currency_totals(b, order.currency).sales, sales, sign);
    let channel = b.channels.entry(order.channel).or_default();
    add_sales(channel.entry(order.currency).or_default(), sales, sign);
    if let Some(lead_source) = order.source {
        let totals = source(b, lead_source).sales.entry(order.currency);
        add_sales(totals.or_default(), sales, sign);
    }
}

/// Money is added and taken out exactly (a cancellation takes out what the order put in):
/// the sums are `MinorSum`s, which no event log can overflow (`crm_domain::money::MinorSum`).
fn add_sales(target: &mut Sales, sales: Sales, sign: Sign) {
    match sign {
        Sign::Plus => {
            target.orders = target.orders.saturating_add(sales.orders);
            target.revenue += sales.revenue;
            target.refunds += sales.refunds;
            target.cost += sales.cost;
        }
        Sign::Minus => {
            target.orders = target.orders.saturating_sub(sales.orders);
            target.revenue -= sales.revenue;
            target.refunds -= sales.refunds;
            target.cost -= sales.cost;
        }
    }
}

fn currency_totals(b: &mut Bucket, currency: Currency) -> &mut CurrencyTotals {
    b.currencies.entry(currency).or_default()
}

fn source(b: &mut Bucket, source: LeadSource) -> &mut SourceTotals {
    b.sources.entry(source).or_default()
}

/// `from -> to` in microseconds, zero when a backfill puts `to` first.
fn duration_micros(from: Timestamp, to: Timestamp) -> u64 {
    let micros = to.as_micros().saturating_sub(from.as_micros());
    u64::try_from(micros).unwrap_or(0)
}

fn inc(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

fn dec(counter: &mut u64) {
    *counter = counter.saturating_sub(1);
}

fn add(counter: &mut u64, amount: u64) {
    *counter = counter.saturating_add(amount);
}

fn add_signed(counter: &mut u64, delta: i64) {
    *counter = counter.saturating_add_signed(delta);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crm_proj_testkit::{arbitrary_stream, check_while_folding, seeds, valid_stream};
    use proptest::prelude::*;

    use super::*;
    use crate::query::p90_by_scan;

    /// The indexes the fold keeps, recomputed by full scans of the customers and tickets,
    /// must equal the stored ones, and so must the counter and percentiles read from them.
    fn check_against_scans(model: &Model) -> Result<(), TestCaseError> {
        let mut window: BTreeMap<Timestamp, u64> = BTreeMap::new();
        for customer in model.customers.values() {
            if let Some(at) = customer.window_time() {
                *window.entry(at).or_default() += 1;
            }
        }
        let stored: BTreeMap<Timestamp, u64> = model
            .profile_changes
            .iter()
            .map(|(at, n)| (at, *n))
            .collect();
        prop_assert_eq!(&stored, &window);
        let meta = model.meta.get();
        let recent = meta.newest_at.map_or(0, |newest| {
            let start = profile_window_start(newest);
            model
                .customers
                .values()
                .filter(|c| c.active && c.last_profile_change_at.is_some_and(|at| at > start))
                .count() as u64
        });
        prop_assert_eq!(meta.recent_profile_changes, recent);

        let mut durations: BTreeMap<DurationScope, BTreeMap<u64, u64>> = BTreeMap::new();
        for ticket in model.tickets.values() {
            for (kind, duration) in [
                (DurationKind::FirstResponse, ticket.first_response),
                (DurationKind::Resolution, ticket.resolution),
            ] {
                let Some(duration) = duration else { continue };
                for month in [None, Some(duration.month)] {
                    let values = durations.entry(DurationScope { kind, month }).or_default();
                    *values.entry(duration.micros).or_default() += 1;
                }
            }
        }
        prop_assert_eq!(&model.durations.all().unwrap(), &durations);
        for (scope, values) in &durations {
            prop_assert_eq!(
                model.durations.cursor(scope).map(|c| c.value),
                p90_by_scan(values)
            );
        }
        Ok(())
    }

    fn check_stream(envelopes: &[EventEnvelope]) -> Result<(), TestCaseError> {
        check_while_folding(envelopes, 10, Model::apply, check_against_scans)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        // 200 commands, six hours apart: 50 days, so the 30-day window moves past changes.
        #[test]
        fn stored_indexes_equal_scans_of_valid_streams(seeds in seeds(200)) {
            check_stream(&valid_stream(&seeds))?;
        }

        #[test]
        fn stored_indexes_equal_scans_of_arbitrary_streams(seeds in seeds(200)) {
            check_stream(&arbitrary_stream(&seeds))?;
        }
    }
}
