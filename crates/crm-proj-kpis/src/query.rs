//! `kpi.get`: the KPIs of a period, computed on read from the integer counters. Rates are
//! `f64` fractions, money is integer minor units rounded half away from zero, and a zero (or
//! negative) denominator gives `null`. A report reads the period's buckets (the months up to
//! it: one row per calendar month), `meta` and a percentile cursor per ticket duration: its
//! cost does not grow with the number of customers, orders or tickets.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use crm_domain::time::{MICROS_PER_DAY, MICROS_PER_MINUTE};
use crm_domain::types::{LeadSource, OrderChannel};
use crm_domain::{Currency, Month, Timestamp};
use crm_projector::QueryError;
use serde_json::{json, Map, Value};

use crm_domain::money::{div_round, json_safe, product_ratio_round, ExactMinor, MinorSum};

use crate::model::{Bucket, DurationKind, DurationScope, Model, Sales, PROFILE_FIELDS};

/// How far back "the last 30 days" of the data update rate reach from the newest event.
pub const PROFILE_UPDATE_WINDOW_DAYS: i64 = 30;

/// The period a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Period {
    All,
    Month(Month),
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::All => f.write_str("all"),
            Period::Month(month) => month.fmt(f),
        }
    }
}

/// Reads the period of a `kpi.get` request: `{"month"?: "YYYY-MM"}`; other fields are the
/// runtime's (`min_position`, `timeout_ms`) or unknown, and ignored.
pub(crate) fn period_of(request: &Value) -> Result<Period, QueryError> {
    let month = match request {
        Value::Null => None,
        Value::Object(fields) => fields.get("month"),
        _ => {
            return Err(QueryError::Malformed(
                "a kpi.get request is a JSON object".to_owned(),
            ))
        }
    };
    match month {
        None | Some(Value::Null) => Ok(Period::All),
        Some(Value::String(text)) => Month::parse(text).map(Period::Month).ok_or_else(|| {
            QueryError::Malformed(format!(
                "`month` must be YYYY-MM with month 01-12, not `{text}`"
            ))
        }),
        Some(other) => Err(QueryError::Malformed(format!(
            "`month` must be a string YYYY-MM, not {other}"
        ))),
    }
}

/// The reply body of `kpi.get` for `period` (the runtime adds `position`).
pub(crate) fn report(model: &Model, period: Period) -> Value {
    let empty = Bucket::default();
    let view = View::of(model, period, &empty);
    json!({
        "period": period.to_string(),
        "kpis": view.kpis(),
    })
}

/// The counters of a period plus the figures that accumulate over months.
struct View<'a> {
    bucket: Cow<'a, Bucket>,
    /// Active customers at the period's start (all-time: 0) and end.
    active_start: i128,
    active_end: i128,
    /// Sum over the period's months of the active customers at each month's start.
    active_customer_months: i128,
    backlog_end: i128,
    profile_fields_end: i128,
    profiles_updated: u64,
    /// End of the all-time window of the data update rate.
    update_window_end: Option<Timestamp>,
    /// By currency, over all orders placed up to the period's end: (net, customers, orders).
    historical: BTreeMap<Currency, (MinorSum, u64, u64)>,
    /// By currency: customers with orders, summed over the period's months.
    customer_months: BTreeMap<Currency, u64>,
    /// Month only: the previous month's sales, for the growth rate.
    previous: Option<Cow<'a, Bucket>>,
    /// The 90th percentiles of the period's ticket durations, in microseconds.
    first_response_p90: Option<u64>,
    resolution_p90: Option<u64>,
}

impl<'a> View<'a> {
    fn of(model: &'a Model, period: Period, empty: &'a Bucket) -> View<'a> {
        match period {
            Period::All => View::all_time(model),
            Period::Month(month) => View::month(model, month, empty),
        }
    }

    fn all_time(model: &'a Model) -> View<'a> {
        let all = model.all.get();
        let mut customer_months: BTreeMap<Currency, u64> = BTreeMap::new();
        // One row per calendar month.
        for bucket in model.months.values() {
            for (currency, totals) in &bucket.currencies {
                let sum = customer_months.entry(*currency).or_default();
                *sum = sum.saturating_add(totals.customers_with_orders);
            }
        }
        customer_months.retain(|_, n| *n > 0);
        let historical = all
            .currencies
            .iter()
            .filter(|(_, t)| t.sales.orders > 0)
            .map(|(c, t)| (*c, (t.sales.net(), t.customers_with_orders, t.sales.orders)))
            .collect();
        let meta = model.meta.get();
        View {
            bucket: Cow::Borrowed(all),
            active_start: 0,
            active_end: active_delta(all),
            active_customer_months: pooled_active_customer_months(model),
            backlog_end: i128::from(all.backlog_delta),
            profile_fields_end: i128::from(all.profile_fields_delta),
            profiles_updated: meta.recent_profile_changes,
            update_window_end: meta.newest_at,
            historical,
            customer_months,
            previous: None,
            first_response_p90: p90(model, DurationKind::FirstResponse, None),
            resolution_p90: p90(model, DurationKind::Resolution, None),
        }
    }

    fn month(model: &'a Model, month: Month, empty: &'a Bucket) -> View<'a> {
        let bucket = model.months.get(&month).unwrap_or(Cow::Borrowed(empty));
        let mut active_start = 0i128;
        let mut backlog_end = 0i128;
        let mut profile_fields_end = 0i128;
        let mut historical: BTreeMap<Currency, (MinorSum, u64, u64)> = BTreeMap::new();
        // One row per calendar month.
        for (m, b) in model.months.range(..=month) {
            if m < month {
                active_start += active_delta(&b);
            }
            backlog_end += i128::from(b.backlog_delta);
            profile_fields_end += i128::from(b.profile_fields_delta);
            for (currency, totals) in &b.currencies {
                let (net, customers, orders) = historical.entry(*currency).or_default();
                *net += totals.sales.net();
                *customers = customers.saturating_add(totals.first_order_customers);
                *orders = orders.saturating_add(totals.sales.orders);
            }
        }
        historical.retain(|_, (_, _, orders)| *orders > 0);
        let customer_months = bucket
            .currencies
            .iter()
            .filter(|(_, t)| t.customers_with_orders > 0)
            .map(|(c, t)| (*c, t.customers_with_orders))
            .collect();
        View {
            active_start,
            active_end: active_start + active_delta(&bucket),
            active_customer_months: active_start,
            backlog_end,
            profile_fields_end,
            profiles_updated: bucket.profiles_updated,
            update_window_end: None,
            historical,
            customer_months,
            previous: Some(
                model
                    .months
                    .get(&month.previous())
                    .unwrap_or(Cow::Borrowed(empty)),
            ),
            first_response_p90: p90(model, DurationKind::FirstResponse, Some(month)),
            resolution_p90: p90(model, DurationKind::Resolution, Some(month)),
            bucket,
        }
    }

    fn kpis(&self) -> Value {
        let b = &*self.bucket;
        let sales = sales_by_currency(b);
        let churned = i128::from(b.customers_churned);
        let acm = self.active_customer_months;
        let mut kpis = Map::new();
        let k = &mut kpis;

        put(
            k,
            "lead_conversion_rate",
            ratio(b.leads_converted, b.leads_created),
        );
        put(
            k,
            "win_rate",
            ratio(b.leads_won, b.leads_won.saturating_add(b.leads_lost)),
        );
        put(
            k,
            "average_sales_cycle_days",
            mean_in(b.sales_cycle_micros, b.leads_won, MICROS_PER_DAY),
        );
        put_money(
            k,
            "revenue",
            sales.iter().map(|(c, s)| (*c, Some(s.revenue))),
        );
        put_money(
            k,
            "net_revenue",
            sales.iter().map(|(c, s)| (*c, Some(s.net()))),
        );
        put(k, "sales_growth_rate", self.sales_growth());
        put_money(
            k,
            "average_order_value",
            sales
                .iter()
                .map(|(c, s)| (*c, div_round(s.net(), s.orders.into()))),
        );
        put(
            k,
            "repeat_purchase_rate",
            ratio(b.customers_with_repeat_orders, b.customers_with_orders),
        );
        put(k, "churn_rate", ratio(churned, acm));
        put(
            k,
            "retention_rate",
            ratio(acm - churned + i128::from(b.customers_reactivated), acm),
        );
        put_money(
            k,
            "historical_clv",
            self.historical
                .iter()
                .map(|(c, (net, customers, _))| (*c, div_round(*net, (*customers).into()))),
        );
        put_money(
            k,
            "predictive_clv",
            sales.iter().map(|(c, s)| {
                let customer_months = self.customer_months.get(c).copied().unwrap_or(0);
                (
                    *c,
                    predictive_clv(s.margin(), acm, customer_months, churned),
                )
            }),
        );
        put_money(
            k,
            "average_margin_per_customer",
            sales.iter().map(|(c, s)| {
                let customers = b.currencies.get(c).map_or(0, |t| t.customers_with_orders);
                (*c, div_round(s.margin(), customers.into()))
            }),
        );
        put_money(
            k,
            "customer_acquisition_cost",
            b.campaign_spend
                .iter()
                .filter(|(_, spend)| **spend != 0)
                .map(|(c, spend)| (*c, div_round(*spend, b.customers_registered.into()))),
        );
        put(k, "nps", nps(b));
        put(k, "csat", ratio(b.csat_satisfied, b.csat_responses));
        put(
            k,
            "complaint_rate",
            ratio(b.complaints_opened, self.active_end),
        );
        put(
            k,
            "first_response_minutes_mean",
            mean_in(
                b.first_response_micros,
                b.first_responses,
                MICROS_PER_MINUTE,
            ),
        );
        put(
            k,
            "first_response_minutes_p90",
            p90_minutes(self.first_response_p90),
        );
        put(
            k,
            "resolution_minutes_mean",
            mean_in(b.resolution_micros, b.resolutions, MICROS_PER_MINUTE),
        );
        put(
            k,
            "resolution_minutes_p90",
            p90_minutes(self.resolution_p90),
        );
        put(k, "ticket_backlog", int(self.backlog_end));
        put(
            k,
            "contacts_per_customer",
            ratio(b.interactions, self.active_end),
        );
        put(
            k,
            "marketing_feedback_rate",
            ratio(b.campaign_responses, b.campaign_reach),
        );
        put(k, "channel_effectiveness", channel_effectiveness(b));
        put(
            k,
            "data_completeness",
            ratio(
                self.profile_fields_end,
                self.active_end.saturating_mul(PROFILE_FIELDS.into()),
            ),
        );
        put(
            k,
            "data_update_rate",
            ratio(self.profiles_updated, self.active_end),
        );
        put(k, "counters", self.counters(&sales));
        Value::Object(kpis)
    }
    /// Month only: per currency, (net this month - net last month) / net last month.
    fn sales_growth(&self) -> Value {
        let Some(previous) = &self.previous else {
            return Value::Null;
        };
        let now = sales_by_currency(&self.bucket);
        let before = sales_by_currency(previous);
        let currencies = now.keys().chain(before.keys()).copied();
        let mut growth = Map::new();
        for currency in currencies {
            let net_now = now.get(&currency).map_or(0, Sales::net);
            let net_before = before.get(&currency).map_or(0, Sales::net);
            growth.insert(
                currency.to_string(),
                ratio(net_now - net_before, net_before),
            );
        }
        Value::Object(growth)
    }

    fn counters(&self, sales: &BTreeMap<Currency, Sales>) -> Value {
        let b = &*self.bucket;
        let counts = |entries: &mut dyn Iterator<Item = (Currency, u64)>| -> Value {
            Value::Object(
                entries
                    .map(|(currency, n)| (currency.to_string(), Value::from(n)))
                    .collect(),
            )
        };
        let mut counters = Map::new();
        let c = &mut counters;
        put(c, "leads_created", b.leads_created.into());
        put(c, "leads_converted", b.leads_converted.into());
        put(c, "leads_won", b.leads_won.into());
        put(c, "leads_lost", b.leads_lost.into());
        put_exact(c, "sales_cycle_micros_total", b.sales_cycle_micros);
        put(c, "orders", b.orders.into());
        put(
            c,
            "orders_by_currency",
            counts(&mut sales.iter().map(|(c, s)| (*c, s.orders))),
        );
        put_money(
            c,
            "refunds",
            sales.iter().map(|(c, s)| (*c, Some(s.refunds))),
        );
        put_money(c, "cost", sales.iter().map(|(c, s)| (*c, Some(s.cost))));
        put(c, "customers_with_orders", b.customers_with_orders.into());
        put(
            c,
            "customers_with_repeat_orders",
            b.customers_with_repeat_orders.into(),
        );
        put(
            c,
            "customers_with_orders_by_currency",
            counts(&mut sales.keys().map(|c| {
                let customers = b.currencies.get(c).map_or(0, |t| t.customers_with_orders);
                (*c, customers)
            })),
        );
        put(
            c,
            "customer_months_with_orders_by_currency",
            counts(&mut self.customer_months.iter().map(|(c, n)| (*c, *n))),
        );
        put_money(
            c,
            "historical_net_revenue",
            self.historical
                .iter()
                .map(|(c, (net, _, _))| (*c, Some(*net))),
        );
        put(
            c,
            "historical_customers_with_orders",
            counts(
                &mut self
                    .historical
                    .iter()
                    .map(|(c, (_, customers, _))| (*c, *customers)),
            ),
        );
        put(c, "customers_registered", b.customers_registered.into());
        put(c, "customers_churned", b.customers_churned.into());
        put(c, "customers_reactivated", b.customers_reactivated.into());
        put(c, "active_customers", int(self.active_end));
        put(c, "active_customers_at_start", int(self.active_start));
        put(
            c,
            "active_customer_months",
            int(self.active_customer_months),
        );
        put(c, "profile_fields_filled", int(self.profile_fields_end));
        put(c, "profiles_updated", self.profiles_updated.into());
        put(
            c,
            "profile_update_window_end",
            self.update_window_end
                .map_or(Value::Null, |t| Value::String(t.to_string())),
        );
        put(c, "nps_responses", b.nps_responses.into());
        put(c, "nps_promoters", b.nps_promoters.into());
        put(c, "nps_detractors", b.nps_detractors.into());
        put(c, "csat_responses", b.csat_responses.into());
        put(c, "csat_satisfied", b.csat_satisfied.into());
        put(c, "tickets_opened", b.tickets_opened.into());
        put(c, "complaints_opened", b.complaints_opened.into());
        put(c, "first_responses", b.first_responses.into());
        put_exact(c, "first_response_micros_total", b.first_response_micros);
        put(c, "resolutions", b.resolutions.into());
        put_exact(c, "resolution_micros_total", b.resolution_micros);
        put(c, "interactions", b.interactions.into());
        put_money(
            c,
            "campaign_spend",
            b.campaign_spend
                .iter()
                .filter(|(_, spend)| **spend != 0)
                .map(|(c, spend)| (*c, Some(*spend))),
        );
        put(c, "campaign_reach", b.campaign_reach.into());
        put(c, "campaign_responses", b.campaign_responses.into());
        Value::Object(counters)
    }
}

/// Registrations + reactivations - churns of a period.
fn active_delta(b: &Bucket) -> i128 {
    i128::from(b.customers_registered) + i128::from(b.customers_reactivated)
        - i128::from(b.customers_churned)
}

/// Sum over every month up to the newest event's of the active customers at its start.
fn pooled_active_customer_months(model: &Model) -> i128 {
    let Some(last) = model.meta.get().newest_at.map(Timestamp::month) else {
        return 0;
    };
    let mut running = 0i128;
    let mut sum = 0i128;
    // One row per calendar month.
    let mut months = model.months.iter().peekable();
    while let Some((month, bucket)) = months.next() {
        if month > last {
            break;
        }
        running += active_delta(&bucket);
        // Every month after this one up to the next stored month starts with `running`.
        let next = match months.peek() {
            Some((next, _)) if *next <= last => *next,
            _ => last,
        };
        sum = sum.saturating_add(running.saturating_mul(months_between(month, next)));
    }
    sum
}

/// The nearest-rank 90th percentile of a kind of ticket duration, over all time or measured
/// in `month`, in microseconds: the stored cursor's value (`crm_projector::ranked`).
fn p90(model: &Model, kind: DurationKind, month: Option<Month>) -> Option<u64> {
    model
        .durations
        .cursor(&DurationScope { kind, month })
        .map(|cursor| cursor.value)
}

fn months_between(from: Month, to: Month) -> i128 {
    (i128::from(to.year) - i128::from(from.year)) * 12 + i128::from(to.month)
        - i128::from(from.month)
}

/// The period's sales of the currencies it has (non-cancelled) orders in.
fn sales_by_currency(b: &Bucket) -> BTreeMap<Currency, Sales> {
    b.currencies
        .iter()
        .filter(|(_, t)| t.sales.orders > 0)
        .map(|(c, t)| (*c, t.sales))
        .collect()
}

fn nps(b: &Bucket) -> Value {
    if b.nps_responses == 0 {
        return Value::Null;
    }
    let promoters = b.nps_promoters as f64;
    let detractors = b.nps_detractors as f64;
    json!((promoters - detractors) * 100.0 / b.nps_responses as f64)
}

fn channel_effectiveness(b: &Bucket) -> Value {
    let none = Default::default();
    let mut sources = Map::new();
    for source in LeadSource::ALL {
        let t = b.sources.get(source).unwrap_or(&none);
        let sales: BTreeMap<_, _> = t.sales.iter().filter(|(_, s)| s.orders > 0).collect();
        let mut row = Map::new();
        let r = &mut row;
        put(r, "leads", t.leads.into());
        put(r, "converted", t.converted.into());
        put(r, "won", t.won.into());
        put(r, "lost", t.lost.into());
        put(r, "conversion_rate", ratio(t.converted, t.leads));
        put(r, "win_rate", ratio(t.won, t.won.saturating_add(t.lost)));
        put(
            r,
            "orders",
            sales.values().map(|s| s.orders).sum::<u64>().into(),
        );
        put_money(
            r,
            "net_revenue",
            sales.iter().map(|(c, s)| (**c, Some(s.net()))),
        );
        sources.insert(source.as_str().to_owned(), Value::Object(row));
    }
    let no_sales = BTreeMap::new();
    let mut channels = Map::new();
    for channel in OrderChannel::ALL {
        let by_currency = b.channels.get(channel).unwrap_or(&no_sales);
        let sales: BTreeMap<_, _> = by_currency.iter().filter(|(_, s)| s.orders > 0).collect();
        let mut row = Map::new();
        let r = &mut row;
        put(
            r,
            "orders",
            sales.values().map(|s| s.orders).sum::<u64>().into(),
        );
        put_money(
            r,
            "net_revenue",
            sales.iter().map(|(c, s)| (**c, Some(s.net()))),
        );
        put_money(
            r,
            "average_order_value",
            sales
                .iter()
                .map(|(c, s)| (**c, div_round(s.net(), s.orders.into()))),
        );
        channels.insert(channel.as_str().to_owned(), Value::Object(row));
    }
    json!({ "by_lead_source": sources, "by_order_channel": channels })
}

/// Per currency: margin x active customer-months / (customer-months with orders x churned),
/// the average monthly margin per customer over the monthly churn rate, rounded half away
/// from zero. Exact whatever the magnitudes (the products are formed in wide arithmetic);
/// `None` without churn or customer-months, or (beyond any real figure) outside `i128`.
fn predictive_clv(
    margin: MinorSum,
    active_customer_months: i128,
    customer_months: u64,
    churned: i128,
) -> Option<MinorSum> {
    if active_customer_months <= 0 || churned <= 0 {
        return None;
    }
    let magnitude = product_ratio_round(
        &[margin.unsigned_abs(), active_customer_months.unsigned_abs()],
        &[u128::from(customer_months), churned.unsigned_abs()],
    )?;
    let magnitude = i128::try_from(magnitude).ok()?;
    Some(if margin < 0 { -magnitude } else { magnitude })
}

/// `numerator / denominator` as a JSON number, `null` unless the denominator is positive.
fn ratio(numerator: impl Into<i128>, denominator: impl Into<i128>) -> Value {
    let (numerator, denominator) = (numerator.into(), denominator.into());
    if denominator <= 0 {
        return Value::Null;
    }
    json!(numerator as f64 / denominator as f64)
}

/// The mean of `count` durations summing to `total_micros`, in units of `unit_micros`.
fn mean_in(total_micros: u128, count: u64, unit_micros: i64) -> Value {
    if count == 0 {
        return Value::Null;
    }
    json!(total_micros as f64 / count as f64 / unit_micros as f64)
}

/// The 90th percentile by nearest rank (the smallest value with at least 90% of the values
/// at or below it), given in microseconds, in minutes; `null` without values.
fn p90_minutes(micros: Option<u64>) -> Value {
    match micros {
        Some(micros) => json!(micros as f64 / MICROS_PER_MINUTE as f64),
        None => Value::Null,
    }
}

/// A money figure per currency goes out as two fields (docs/NATS_API.md, "Big numbers"):
/// `name`, JSON numbers while exact in every parser (|n| <= 2^53 - 1), else `null`; and
/// `name_exact`, the same figures as strings of decimal digits, always exact. A figure that
/// cannot be computed (`None`: a zero denominator) is `null` in both.
fn put_money(
    map: &mut Map<String, Value>,
    name: &str,
    entries: impl Iterator<Item = (Currency, Option<MinorSum>)>,
) {
    let entries: Vec<(Currency, Option<MinorSum>)> = entries.collect();
    let numbers = entries
        .iter()
        .map(|(c, amount)| (c.to_string(), number(*amount)))
        .collect();
    let exact = entries
        .iter()
        .map(|(c, amount)| (c.to_string(), exact(*amount)))
        .collect();
    map.insert(name.to_owned(), Value::Object(numbers));
    map.insert(format!("{name}_exact"), Value::Object(exact));
}

/// An unbounded integer sum that is not money (total microseconds), by the same rule as
/// money: `name` a number while exact in every parser, `name_exact` the digits.
fn put_exact(map: &mut Map<String, Value>, name: &str, value: u128) {
    let value = MinorSum::try_from(value).ok();
    map.insert(name.to_owned(), number(value));
    map.insert(format!("{name}_exact"), exact(value));
}

fn put(map: &mut Map<String, Value>, name: &str, value: Value) {
    map.insert(name.to_owned(), value);
}

/// A JSON number when exact in every parser, else `null`.
fn number(value: Option<MinorSum>) -> Value {
    value.and_then(json_safe).map_or(Value::Null, Value::from)
}

/// The decimal digits as a JSON string, or `null`.
fn exact(value: Option<MinorSum>) -> Value {
    value.map_or(Value::Null, |v| Value::String(ExactMinor(v).to_string()))
}

/// A count (customers, tickets, profile fields) as a JSON integer. Counts are bounded by the
/// number of events, far inside `i64`; `null` would only mark the impossible.
fn int(value: i128) -> Value {
    i64::try_from(value).map_or(Value::Null, Value::from)
}

/// The 90th percentile by nearest rank by a full scan: what the stored cursors must agree
/// with.
#[cfg(test)]
pub(crate) fn p90_by_scan(durations: &BTreeMap<u64, u64>) -> Option<u64> {
    let count: u128 = durations.values().map(|n| u128::from(*n)).sum();
    let rank = (count * 90).div_ceil(100);
    let mut seen = 0u128;
    for (micros, n) in durations {
        seen += u128::from(*n);
        if seen >= rank {
            return Some(*micros);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(5, 2), Some(3));
        assert_eq!(div_round(-5, 2), Some(-3));
        assert_eq!(div_round(7, 3), Some(2));
        assert_eq!(div_round(-7, 3), Some(-2));
        assert_eq!(div_round(8, 3), Some(3));
        assert_eq!(div_round(-8, 3), Some(-3));
        assert_eq!(div_round(190_000, 3), Some(63_333));
        assert_eq!(div_round(200_000, 3), Some(66_667));
        assert_eq!(div_round(1, 2), Some(1));
        assert_eq!(div_round(-1, 2), Some(-1));
        assert_eq!(div_round(0, 7), Some(0));
        assert_eq!(div_round(1, 0), None);
        assert_eq!(div_round(1, -2), None);
        assert_eq!(div_round(i128::MAX, 2), Some(i128::MAX / 2 + 1));
    }

    #[test]
    fn p90_takes_the_nearest_rank() {
        // The p90 of whole minutes, as the model reads it from its cursor; equal to a scan.
        let minutes = |values: &[u64]| {
            let mut model = Model::default();
            let mut map = BTreeMap::new();
            let scope = DurationScope {
                kind: DurationKind::Resolution,
                month: None,
            };
            for v in values {
                let micros = v * MICROS_PER_MINUTE as u64;
                *map.entry(micros).or_insert(0) += 1;
                model.durations.insert(&scope, micros);
            }
            let p90 = p90(&model, DurationKind::Resolution, None);
            assert_eq!(p90, p90_by_scan(&map), "{values:?}");
            p90_minutes(p90)
        };
        assert_eq!(minutes(&[]), Value::Null);
        assert_eq!(p90_minutes(None), Value::Null);
        assert_eq!(minutes(&[7]), json!(7.0));
        // 10 values: rank 9.
        assert_eq!(minutes(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), json!(9.0));
        // 11 values: rank ceil(9.9) = 10.
        assert_eq!(minutes(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), json!(10.0));
        // Duplicates count once each.
        assert_eq!(minutes(&[5, 5, 5, 5, 5, 5, 5, 5, 5, 60]), json!(5.0));
        assert_eq!(minutes(&[1, 60]), json!(60.0));
    }

    #[test]
    fn ratios_are_null_without_a_positive_denominator() {
        assert_eq!(ratio(1u64, 0u64), Value::Null);
        assert_eq!(ratio(1i128, -3i128), Value::Null);
        assert_eq!(ratio(1u64, 4u64), json!(0.25));
        assert_eq!(mean_in(10, 0, 1), Value::Null);
    }

    #[test]
    fn period_parsing() {
        assert_eq!(period_of(&json!({})), Ok(Period::All));
        assert_eq!(period_of(&Value::Null), Ok(Period::All));
        assert_eq!(period_of(&json!({"month": null})), Ok(Period::All));
        assert_eq!(
            period_of(&json!({"month": "2026-11", "min_position": 4, "timeout_ms": 10})),
            Ok(Period::Month(Month {
                year: 2026,
                month: 11
            }))
        );
        for bad in [
            json!({"month": "2026-13"}),
            json!({"month": "2026-1"}),
            json!({"month": "november"}),
            json!({"month": 202611}),
            json!([1]),
            json!("2026-11"),
        ] {
            assert!(
                matches!(period_of(&bad), Err(QueryError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
