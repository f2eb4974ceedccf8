//! The read model: integer counters per period (one bucket per calendar month and one for
//! all time) and the per-entity memory the fold needs to attribute later events, kept in the
//! projection SDK's tables (see the crate docs for the stored layout).

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::money::MinorSum;
use crm_domain::types::{LeadSource, OrderChannel};
use crm_domain::{Currency, Month, Timestamp};
use crm_projector::{Single, StoredTable, Table};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Everything the KPIs are computed from. Every field but `durations` is a stored table;
/// `durations` is an index derived from `tickets` and rebuilt on restore.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub meta: Single<Meta>,
    pub all: Single<Bucket>,
    pub months: Table<Month, Bucket>,
    pub leads: Table<Uuid, LeadMemory>,
    pub customers: Table<Uuid, CustomerMemory>,
    pub orders: Table<Uuid, OrderMemory>,
    pub tickets: Table<Uuid, TicketMemory>,
    pub durations: Durations,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            meta: Single::new("meta"),
            all: Single::new("all"),
            months: Table::new("months"),
            leads: Table::new("leads"),
            customers: Table::new("customers"),
            orders: Table::new("orders"),
            tickets: Table::new("tickets"),
            durations: Durations::default(),
        }
    }
}

/// Equal when the rows are: `Single`'s own equality also compares whether it still has a
/// change to drain, which `Table`'s does not, and a model's value must not depend on that.
impl PartialEq for Model {
    fn eq(&self, other: &Model) -> bool {
        self.meta.get() == other.meta.get()
            && self.all.get() == other.all.get()
            && self.months == other.months
            && self.leads == other.leads
            && self.customers == other.customers
            && self.orders == other.orders
            && self.tickets == other.tickets
            && self.durations == other.durations
    }
}

impl Eq for Model {}

impl Model {
    /// The stored tables (not the derived `durations`).
    pub fn tables(&mut self) -> Vec<&mut dyn StoredTable> {
        vec![
            &mut self.meta,
            &mut self.all,
            &mut self.months,
            &mut self.leads,
            &mut self.customers,
            &mut self.orders,
            &mut self.tickets,
        ]
    }

    /// Rebuilds what is derived from the tables (after a restore).
    pub fn restored(&mut self) {
        self.durations = Durations::of_tickets(self.tickets.values());
    }
}

/// Facts about the whole event history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// The newest `occurred_at` seen: "now" for "the last 30 days" (never the wall clock).
    #[serde(with = "micros::optional")]
    pub newest_at: Option<Timestamp>,
}

/// The counters of one period. In a month bucket every counter counts what happened in that
/// month (see the crate docs for which event's month); the all-time bucket holds the same
/// counters over all time, except where a field says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bucket {
    /// LeadCreated in the period.
    pub leads_created: u64,
    /// Leads created in the period that are won (at any time): the conversion cohort.
    pub leads_converted: u64,
    /// LeadWon / LeadLost in the period (close month).
    pub leads_won: u64,
    pub leads_lost: u64,
    /// Sum over the leads won in the period of LeadCreated -> LeadWon, clamped at zero.
    pub sales_cycle_micros: u128,

    /// Orders placed in the period and not cancelled.
    pub orders: u64,
    /// Customers with >= 1 / >= 2 such orders in the period (all-time: over all time).
    pub customers_with_orders: u64,
    pub customers_with_repeat_orders: u64,
    /// Sales of the orders placed in the period, by currency.
    pub currencies: BTreeMap<Currency, CurrencyTotals>,

    pub customers_registered: u64,
    pub customers_churned: u64,
    pub customers_reactivated: u64,
    /// Change in the number of filled profile fields summed over active customers.
    pub profile_fields_delta: i64,
    /// Months only: customers with a profile change in the month, made while active.
    pub profiles_updated: u64,

    pub nps_responses: u64,
    pub nps_promoters: u64,
    pub nps_detractors: u64,
    pub csat_responses: u64,
    pub csat_satisfied: u64,

    pub tickets_opened: u64,
    pub complaints_opened: u64,
    /// Change in the number of tickets neither resolved nor closed.
    pub backlog_delta: i64,
    /// First public responses / first resolutions in the period and their summed durations.
    pub first_responses: u64,
    pub first_response_micros: u128,
    pub resolutions: u64,
    pub resolution_micros: u128,

    pub interactions: u64,

    pub campaign_spend: BTreeMap<Currency, MinorSum>,
    pub campaign_reach: u64,
    pub campaign_responses: u64,

    pub sources: BTreeMap<LeadSource, SourceTotals>,
    pub channels: BTreeMap<OrderChannel, BTreeMap<Currency, Sales>>,
}

/// Sums over a set of (non-cancelled) orders in one currency, in minor units, exact (see
/// [`MinorSum`] for the headroom: net and margin too are sums of at most two event amounts
/// per event, so they cannot overflow either).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sales {
    pub orders: u64,
    pub revenue: MinorSum,
    pub refunds: MinorSum,
    pub cost: MinorSum,
}

impl Sales {
    pub fn net(&self) -> MinorSum {
        self.revenue - self.refunds
    }

    pub fn margin(&self) -> MinorSum {
        self.net() - self.cost
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CurrencyTotals {
    pub sales: Sales,
    /// Customers with >= 1 order in this currency in the period (all-time: over all time).
    pub customers_with_orders: u64,
    /// Customers whose earliest order in this currency is in the period (all-time: the same
    /// as `customers_with_orders`). Summed up to a month: customers who bought by then.
    pub first_order_customers: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SourceTotals {
    pub leads: u64,
    pub converted: u64,
    pub won: u64,
    pub lost: u64,
    /// Orders attributed to the source (see the crate docs), by currency.
    pub sales: BTreeMap<Currency, Sales>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeadMemory {
    #[serde(with = "micros")]
    pub created_at: Timestamp,
    pub source: LeadSource,
    /// Won, lost or disqualified: takes no further win or loss.
    pub closed: bool,
}

/// What the fold remembers of a customer id. Orders may name a customer whose registration
/// was never seen: such a record has `registered == false` and only order counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CustomerMemory {
    pub registered: bool,
    pub active: bool,
    pub source: Option<LeadSource>,
    /// Bit set of the profile fields that are set ([`ProfileField`]).
    pub profile_fields: u8,
    /// The newest `occurred_at` of a profile change (CustomerProfileUpdated/OwnerAssigned).
    #[serde(with = "micros::optional")]
    pub last_profile_change_at: Option<Timestamp>,
    /// Months with a profile change made while active (each counted once per month).
    pub months_updated: BTreeSet<Month>,
    /// Non-cancelled orders by placement month and currency; no zero entries.
    pub order_counts: BTreeMap<Month, BTreeMap<Currency, u32>>,
}

impl CustomerMemory {
    pub fn filled_fields(&self) -> i64 {
        i64::from(self.profile_fields.count_ones())
    }

    /// The customer's contribution to the summed profile fields of active customers.
    pub fn active_fields(&self) -> i64 {
        if self.active {
            self.filled_fields()
        } else {
            0
        }
    }
}

/// The profile fields whose share is the profile completeness (docs/DOMAIN.md).
#[derive(Debug, Clone, Copy)]
pub(crate) enum ProfileField {
    Email = 0,
    Phone = 1,
    Industry = 2,
    Region = 3,
    Owner = 4,
}

pub(crate) const PROFILE_FIELDS: i64 = 5;

impl ProfileField {
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderMemory {
    pub customer_id: Uuid,
    pub month: Month,
    pub currency: Currency,
    pub amount: i64,
    /// Zero when absent (or, which `decide` refuses, in another currency).
    pub cost: i64,
    pub refunded: MinorSum,
    pub channel: OrderChannel,
    /// The lead source the order's revenue is attributed to, fixed at placement.
    pub source: Option<LeadSource>,
    pub cancelled: bool,
}

impl OrderMemory {
    /// What the order adds to its period's sales while it is not cancelled.
    pub fn sales(&self) -> Sales {
        Sales {
            orders: 1,
            revenue: i128::from(self.amount),
            refunds: self.refunded,
            cost: i128::from(self.cost),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TicketMemory {
    #[serde(with = "micros")]
    pub opened_at: Timestamp,
    /// Neither resolved nor closed.
    pub in_backlog: bool,
    /// Opened -> first public response / first resolution.
    pub first_response: Option<Duration>,
    pub resolution: Option<Duration>,
}

/// A measured duration and the month it was measured in (the month of its ending event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Duration {
    pub micros: u64,
    pub month: Month,
}

/// Sorted multisets of the ticket durations, for percentiles. Derived from `tickets`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Durations {
    pub first_response: DurationIndex,
    pub resolution: DurationIndex,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DurationIndex {
    /// Duration in microseconds -> how many.
    pub all: BTreeMap<u64, u64>,
    pub by_month: BTreeMap<Month, BTreeMap<u64, u64>>,
}

impl DurationIndex {
    pub fn insert(&mut self, duration: Duration) {
        bump_count(self.all.entry(duration.micros).or_default());
        let month = self.by_month.entry(duration.month).or_default();
        bump_count(month.entry(duration.micros).or_default());
    }
}

impl Durations {
    /// Rebuilds the index from the ticket memory (after a restore).
    pub fn of_tickets<'a>(tickets: impl Iterator<Item = &'a TicketMemory>) -> Durations {
        let mut durations = Durations::default();
        for ticket in tickets {
            if let Some(d) = ticket.first_response {
                durations.first_response.insert(d);
            }
            if let Some(d) = ticket.resolution {
                durations.resolution.insert(d);
            }
        }
        durations
    }
}

fn bump_count(count: &mut u64) {
    *count = count.saturating_add(1);
}

/// Stores a [`Timestamp`] as its raw microseconds. `Timestamp`'s own decoding refuses times
/// outside years 1-9999, and the fold keeps whatever time an event carried.
mod micros {
    use crm_domain::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(time.as_micros())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        i64::deserialize(deserializer).map(Timestamp::from_micros)
    }

    pub mod optional {
        use super::*;

        pub fn serialize<S: Serializer>(
            time: &Option<Timestamp>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match time {
                Some(time) => serializer.serialize_some(&time.as_micros()),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Timestamp>, D::Error> {
            Option::<i64>::deserialize(deserializer).map(|m| m.map(Timestamp::from_micros))
        }
    }
}
