//! The read model: integer counters per period (one bucket per calendar month and one for
//! all time), the per-entity memory the fold needs to attribute later events, and the indexes
//! the fold keeps so that no query scans entities (ticket durations for the percentiles,
//! profile-change times for the data update window), all of it in the projection SDK's
//! tables (see the crate docs for the stored layout).

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::money::MinorSum;
use crm_domain::types::{LeadSource, OrderChannel};
use crm_domain::{Currency, Month, Timestamp};
use crm_projector::table::FixedWidthKey;
use crm_projector::{Single, StoredTable, Table, TableKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crm_projector::ranked::Ranked;

/// Everything the KPIs are computed from, every field a stored table: a model keeps nothing
/// else across events.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub meta: Single<Meta>,
    pub all: Single<Bucket>,
    pub months: Table<Month, Bucket>,
    pub leads: Table<Uuid, LeadMemory>,
    pub customers: Table<Uuid, CustomerMemory>,
    pub orders: Table<Uuid, OrderMemory>,
    pub tickets: Table<Uuid, TicketMemory>,
    /// Active customers by the time of their newest profile change: how many at each time.
    pub profile_changes: Table<Timestamp, u64>,
    /// The ticket durations of every [`DurationScope`], with their 90th percentile.
    pub durations: Durations,
}

/// Sorted multisets of ticket durations (microseconds) by scope, each with its nearest-rank
/// 90th percentile.
pub(crate) type Durations = Ranked<DurationScope, 90>;

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
            profile_changes: Table::new("profile_changes"),
            durations: Ranked::new("duration_p90", "durations"),
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
            && self.profile_changes == other.profile_changes
            && self.durations == other.durations
    }
}

impl Eq for Model {}

impl Model {
    /// The stored tables: the whole state.
    pub fn tables(&mut self) -> Vec<&mut dyn StoredTable> {
        let mut tables: Vec<&mut dyn StoredTable> = vec![
            &mut self.meta,
            &mut self.all,
            &mut self.months,
            &mut self.leads,
            &mut self.customers,
            &mut self.orders,
            &mut self.tickets,
            &mut self.profile_changes,
        ];
        tables.extend(self.durations.tables());
        tables
    }
}

/// Facts about the whole event history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// The newest `occurred_at` seen: "now" for "the last 30 days" (never the wall clock).
    #[serde(with = "micros::optional")]
    pub newest_at: Option<Timestamp>,
    /// Active customers whose newest profile change is in the 30 days up to `newest_at`
    /// (after [`profile_window_start`]): the count of `profile_changes` after it.
    pub recent_profile_changes: u64,
}

/// A profile change counts in the all-time data update rate when it is after this, for the
/// newest `occurred_at` seen.
pub(crate) fn profile_window_start(newest: Timestamp) -> Timestamp {
    newest.saturating_add_micros(
        -crate::query::PROFILE_UPDATE_WINDOW_DAYS * crm_domain::time::MICROS_PER_DAY,
    )
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

    /// The time the customer counts at in the data update window: that of its newest
    /// profile change, while it is active.
    pub fn window_time(&self) -> Option<Timestamp> {
        self.last_profile_change_at.filter(|_| self.active)
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

/// Which ticket duration a multiset holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum DurationKind {
    /// Opened -> first public response.
    FirstResponse = 0,
    /// Opened -> first resolution.
    Resolution = 1,
}

/// The scope of a multiset of ticket durations: a kind, over all time (`month: None`) or
/// measured in one month. Seven bytes: the kind, then `0` and five zero bytes, or `1` and the
/// month's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct DurationScope {
    pub kind: DurationKind,
    pub month: Option<Month>,
}

const MONTH_WIDTH: usize = <Month as FixedWidthKey>::WIDTH;

impl TableKey for DurationScope {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.push(self.kind as u8);
        match self.month {
            None => out.extend_from_slice(&[0; 1 + MONTH_WIDTH]),
            Some(month) => {
                out.push(1);
                month.encode_key(out);
            }
        }
    }

    fn decode_key(bytes: &[u8]) -> Option<DurationScope> {
        let (kind, rest) = bytes.split_first()?;
        let kind = match kind {
            0 => DurationKind::FirstResponse,
            1 => DurationKind::Resolution,
            _ => return None,
        };
        let month = match rest.split_first()? {
            (0, zeros) if zeros == [0; MONTH_WIDTH] => None,
            (1, month) => Some(Month::decode_key(month)?),
            _ => return None,
        };
        Some(DurationScope { kind, month })
    }
}

impl FixedWidthKey for DurationScope {
    const WIDTH: usize = 2 + MONTH_WIDTH;
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encoded(scope: &DurationScope) -> Vec<u8> {
        let mut out = Vec::new();
        scope.encode_key(&mut out);
        out
    }

    fn scope() -> impl Strategy<Value = DurationScope> {
        let kind = prop_oneof![
            Just(DurationKind::FirstResponse),
            Just(DurationKind::Resolution)
        ];
        let month = prop::option::of(
            (-3000i32..3000, 1u8..=12).prop_map(|(year, month)| Month { year, month }),
        );
        (kind, month).prop_map(|(kind, month)| DurationScope { kind, month })
    }

    proptest! {
        #[test]
        fn duration_scopes_sort_like_their_bytes(a in scope(), b in scope()) {
            prop_assert_eq!(a.cmp(&b), encoded(&a).cmp(&encoded(&b)));
            prop_assert_eq!(encoded(&a).len(), DurationScope::WIDTH);
            prop_assert_eq!(DurationScope::decode_key(&encoded(&a)), Some(a));
        }
    }

    #[test]
    fn damaged_duration_scopes_do_not_decode() {
        for bytes in [
            &[2, 0, 0, 0, 0, 0, 0][..],
            &[0, 0, 0, 0, 0, 0, 1],
            &[0, 2, 0, 0, 0, 0, 1],
            &[1, 1, 0x80, 0, 0x07, 0xea, 13],
            &[1, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(DurationScope::decode_key(bytes), None, "{bytes:?}");
        }
    }
}
