//! The KPI read model (`kpis`): every KPI of `docs/DOMAIN.md`, all-time and per calendar
//! month (UTC) of event time, kept as exact integer counters; rates are computed on read.
//!
//! [`KpiProjection`] is a deterministic fold (docs/DESIGN.md rule 10): time comes only from each
//! event's `occurred_at`, all maps are ordered, and nothing reads a clock. It answers
//! `kpi.get` (`crm.query.kpi.get`).
//!
//! # Query
//!
//! Request `{"month"?: "YYYY-MM"}` (other fields, such as `min_position` and `timeout_ms`,
//! belong to the runtime and are ignored; a malformed month is `malformed`). Reply:
//! `{"period": "all" | "YYYY-MM", "kpis": {<the KPIs below>, "counters": {<raw counters>}}}`.
//!
//! * Rates are JSON numbers (fractions; NPS from -100 to 100; growth may be negative or above
//!   1); `null` when the denominator is zero (or, after odd backfills, negative).
//! * Money KPIs are objects keyed by currency, `{"EUR": 63333}`, in minor units, rounded to
//!   the nearest unit with halves away from zero, by integer arithmetic. A currency appears
//!   when the period has a non-cancelled order in it (for `customer_acquisition_cost`: when the
//!   period has campaign spend in it); its value is `null` when its own denominator is zero.
//!   Sums are exact `i128`s, never clamped; each money field has an `<name>_exact` twin with
//!   the figures as strings of decimal digits, and the number itself is `null` beyond 2^53 - 1
//!   (docs/NATS_API.md, "Big numbers"; the same for the `*_micros_total` counters).
//! * Durations are measured between `occurred_at` times and clamped at zero (a backfill may put
//!   the end before the start).
//!
//! # Which month an event counts in
//!
//! Each counter counts in the month of one event's `occurred_at`, named below. Because events
//! may carry `occurred_at` out of order (backfills), figures "at a month's start or end" are
//! running sums of per-month deltas (for example active customers = registrations - churns +
//! reactivations of every month up to then), which stay right whatever order the events come
//! in. The all-time figure of a "monthly" rate pools the months from the first to the month of
//! the newest event: sum of numerators / sum of denominators.
//!
//! | KPI (wire name) | period semantics |
//! | --- | --- |
//! | `lead_conversion_rate` | cohort: leads created in the period that are won (whenever) / leads created in the period |
//! | `win_rate` | by close month: LeadWon / (LeadWon + LeadLost) in the period; disqualified leads do not count |
//! | `average_sales_cycle_days` | by close month: mean days LeadCreated -> LeadWon of the leads won in the period |
//! | `revenue` | by placement month: sum of the amounts of the orders placed in the period, unless cancelled |
//! | `net_revenue` | revenue minus every refund of those orders; a refund counts in its order's placement month, like a cancellation, so a period's net revenue is that of its orders |
//! | `sales_growth_rate` | month only, per currency: (net revenue of the month - of the previous month) / net revenue of the previous month; all-time: `null` |
//! | `average_order_value` | per currency: net revenue / orders placed (non-cancelled) in the period |
//! | `repeat_purchase_rate` | customers with >= 2 / with >= 1 non-cancelled orders placed in the period (all-time: over all time) |
//! | `churn_rate` | month: CustomerChurned in the month / active customers at the month's start; all-time: all churns / `active_customer_months` (pooled monthly rate) |
//! | `retention_rate` | month: (active at the end - registered in the month) / active at the start, i.e. (start - churned + reactivated) / start, above 1 when reactivations outnumber churns; all-time: pooled the same way |
//! | `historical_clv` | per currency: net revenue of all orders placed up to the period's end / customers with >= 1 order in that currency up to then (all-time: over all time) |
//! | `predictive_clv` | per currency: average monthly margin per customer / monthly churn rate, where the average monthly margin per customer = margin of the period's orders / customer-months with orders (a month: customers with orders in it; all-time: that count summed over the months) and the monthly churn rate is `churn_rate`; so margin x `active_customer_months` / (customer-months x churned); `null` without churn |
//! | `average_margin_per_customer` | per currency: (net revenue - cost) of the period's orders / customers with orders in that currency in the period; refunds do not reduce cost |
//! | `customer_acquisition_cost` | per currency: campaign spend in the period / customers registered in the period |
//! | `nps` | answers in the period: 100 x (promoters (9-10) - detractors (0-6)) / answers |
//! | `csat` | answers in the period: share scoring 4 or 5 |
//! | `complaint_rate` | complaint tickets opened in the period / active customers at the period's end |
//! | `first_response_minutes_mean`, `_p90` | per ticket, TicketOpened -> its first public response, counted in the month of the response; p90 by nearest rank over the exact durations |
//! | `resolution_minutes_mean`, `_p90` | per ticket, TicketOpened -> its first TicketResolved (a reopened ticket keeps its first resolution), counted in the month of the resolution |
//! | `ticket_backlog` | tickets neither resolved nor closed at the period's end (opened +1, resolved or closed -1, reopened +1) |
//! | `contacts_per_customer` | interactions logged in the period / active customers at the period's end |
//! | `marketing_feedback_rate` | campaign responses / campaign reach recorded in the period (may exceed 1) |
//! | `channel_effectiveness` | `by_lead_source` (all sources): leads created, converted (cohort), won and lost (close month), their rates, and the orders and net revenue attributed to the source; `by_order_channel` (all channels): orders, net revenue and average order value of the period's orders |
//! | `data_completeness` | mean profile completeness (share of email, phone, industry, region, owner set) of the customers active at the period's end |
//! | `data_update_rate` | all-time: active customers whose profile changed (CustomerProfileUpdated or CustomerOwnerAssigned) in the 30 days up to the newest event's `occurred_at` / active customers; a month: the month is the window, customers with a profile change in the month made while active / active customers at the month's end |
//!
//! Definitions shared by the rows above:
//! * A customer is active from CustomerRegistered until CustomerChurned, and again after
//!   CustomerReactivated. "New in the month" are the month's registrations.
//! * `active_customer_months`: for a month, the active customers at its start; all-time, the
//!   sum of that over every month up to the newest event's month.
//! * An order's revenue is attributed to a lead source at placement: the source of its
//!   `lead_id`'s lead if that lead is known, else the source the customer registered with.
//!   Orders name customers by id: an order counts for the customer whether or not its
//!   registration was seen.
//! * Margin = net revenue - cost (an order without cost has cost 0).
//!
//! # Counters
//!
//! `kpis.counters` holds the exact counters the KPIs come from: `leads_created`,
//! `leads_converted`, `leads_won`, `leads_lost`, `sales_cycle_micros_total`, `orders`,
//! `orders_by_currency`, `refunds`, `cost`, `customers_with_orders`,
//! `customers_with_repeat_orders`, `customers_with_orders_by_currency`,
//! `customer_months_with_orders_by_currency`, `historical_net_revenue`,
//! `historical_customers_with_orders`, `customers_registered`, `customers_churned`,
//! `customers_reactivated`, `active_customers` (at the period's end),
//! `active_customers_at_start` (all-time: 0), `active_customer_months`,
//! `profile_fields_filled` (summed over the active customers at the period's end),
//! `profiles_updated`, `profile_update_window_end` (all-time: the newest `occurred_at`),
//! `nps_responses`, `nps_promoters`, `nps_detractors`, `csat_responses`, `csat_satisfied`,
//! `tickets_opened`, `complaints_opened`, `first_responses`, `first_response_micros_total`,
//! `resolutions`, `resolution_micros_total`, `interactions`, `campaign_spend`,
//! `campaign_reach`, `campaign_responses`.
//!
//! # Store
//!
//! The model keeps its state in the projection SDK's tables (`crm_projector::table`), one
//! stored row per key `<table>/<key bytes>`, rows in the projection stores' record codec
//! (`STORE_FORMAT` 3; a store of another format is rebuilt from the log). The tables are the
//! whole state: nothing is kept in memory across events and nothing is rebuilt at start.
//!
//! | table | key bytes (after `<table>/`) | row |
//! | --- | --- | --- |
//! | `meta` | none (one row) | the newest `occurred_at`; the active customers whose newest profile change is in the 30 days up to it |
//! | `all` | none (one row) | the all-time bucket |
//! | `months` | year (i32 big-endian, sign bit flipped), month (1 byte) | a month's bucket |
//! | `leads` | lead id (16 bytes) | lead memory |
//! | `customers` | customer id | customer memory |
//! | `orders` | order id | order memory |
//! | `tickets` | ticket id | ticket memory |
//! | `profile_changes` | time (i64 micros big-endian, sign bit flipped) | how many active customers have their newest profile change then |
//! | `durations` | scope (7 bytes: kind `0` first response or `1` resolution; `0` and five zero bytes for all time, or `1` and the month), duration (u64 micros big-endian) | how many tickets took that long |
//! | `duration_p90` | scope | the nearest-rank 90th percentile duration, how many are below it and equal to it, out of how many |
//!
//! The fold keeps the indexes current, so that a report reads the period's buckets (one per
//! month), `meta` and the `duration_p90` rows, whatever the number of customers, orders or
//! tickets: a newer `occurred_at` moves the data update window and takes the customers whose
//! newest change it leaves behind (a range of `profile_changes`) out of the count in `meta`;
//! each new ticket duration moves its scopes' percentiles a step. Only `profile_changes` rows
//! are ever deleted (when no customer is at that time any more). Rebuilding twice from the
//! same events gives byte-identical stores, and a model restored from its store equals the
//! one that wrote it.

mod fold;
mod model;
mod query;

use crm_projector::{EventEnvelope, QueryError, ReadModel, StoredTable};

pub use query::{Period, PROFILE_UPDATE_WINDOW_DAYS};

/// The projection's stable name (store directory, durable consumer).
pub const NAME: &str = "kpis";
/// The query it answers (`crm.query.kpi.get`).
pub const QUERY_KPI_GET: &str = "kpi.get";

/// The KPI read model. Two values are equal when their read models are, whatever changes
/// each still has to drain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KpiProjection {
    model: model::Model,
}

impl KpiProjection {
    pub fn new() -> KpiProjection {
        KpiProjection::default()
    }

    /// The `kpi.get` reply body for `period` (without `position`).
    pub fn report(&self, period: Period) -> serde_json::Value {
        query::report(&self.model, period)
    }
}

impl ReadModel for KpiProjection {
    const NAME: &'static str = NAME;
    const QUERIES: &'static [&'static str] = &[QUERY_KPI_GET];
    const STORE_FORMAT: u32 = 3;

    fn apply(&mut self, event: &EventEnvelope) {
        self.model.apply(event);
    }

    fn query(
        &self,
        name: &str,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, QueryError> {
        if name != QUERY_KPI_GET {
            return Err(QueryError::UnknownQuery(name.to_owned()));
        }
        Ok(self.report(query::period_of(request)?))
    }

    fn tables(&mut self) -> Vec<&mut dyn StoredTable> {
        self.model.tables()
    }
}
