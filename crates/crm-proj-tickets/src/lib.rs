//! The `tickets` read model, the service desk, built with the projection SDK; queries
//! `tickets.list` and `tickets.stats`. Its rules (status, first response, durations and
//! nearest-rank percentiles per month, backlog, reopens, SLA at the caller's `as_of`) are in
//! docs/DOMAIN.md, "Service desk".
//!
//! Stored tables (store format 2; format 1 had only `ticket`, `first_response` and
//! `resolution`, and `tickets.stats` read every ticket; such a store is rebuilt from the log
//! at start). The tables are the whole state: nothing is kept in memory beside them. The
//! backlog and reopen figures of `tickets.stats` are counters the fold keeps, and its other
//! figures read tables that do not grow with the number of tickets (see below):
//!
//! | table | key | row |
//! | --- | --- | --- |
//! | `ticket` | ticket id | [`TicketRow`] |
//! | `first_response`, `resolution` | (month the duration ended, whole minutes) | tickets |
//! | `totals` | (one row) | tickets, reopened tickets, reopens; tickets and backlog per priority; unassigned backlog |
//! | `backlog_assignee` | assignee | open or assigned tickets of that assignee (no row at 0) |
//! | `opened` | (priority, opened at, ticket id) | the ticket's first public response time, if any |
//! | `response_delay` | (priority, first response delay bucket) | tickets (no row at 0) |
//!
//! Priorities are keyed by their rank (`low` 0 ... `urgent` 3). A ticket counts under its
//! current priority. The response delay bucket is `2 x whole minutes` from opening to the
//! first public response, `+ 1` when that is not a whole number of minutes (0 when it came at
//! or before opening), so that "later than a target of `T` minutes" is "bucket above `2T`";
//! [`DELAY_BEYOND`] marks a delay beyond `i64::MAX` microseconds and [`DELAY_UNANSWERED`] a
//! ticket without a first response.
//!
//! The SLA figures depend on the request's `as_of` and targets: tickets late against a
//! target are counted from `response_delay` (rows grow with distinct delays, not tickets),
//! and only the tickets opened since `as_of` minus the target are read from `opened` (they
//! had not passed their deadline at `as_of`, or were not open yet), so a recent `as_of` reads
//! few rows. Duration tables grow with distinct (month, minutes) pairs, not with tickets.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;

use crm_domain::event::TicketEvent as E;
use crm_domain::time::MICROS_PER_MINUTE;
use crm_domain::types::{TicketCategory, TicketChannel, TicketPriority, TicketStatus};
use crm_domain::{AggregateEvent, Month, Timestamp};
use crm_projector::{
    parse_request as parse, EventEnvelope, QueryError, ReadModel, Single, StoredTable, Table,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// Tickets per page without a `limit`; a larger `limit` than the maximum is served as it.
pub const LIST_LIMIT_DEFAULT: u64 = 50;
pub const LIST_LIMIT_MAX: u64 = 500;
/// First-response targets in minutes by priority (`low`, `normal`, `high`, `urgent`) unless a
/// `tickets.stats` request overrides them. At its `as_of`, a ticket opened by then breaches
/// when its first public response came after opened + the target of its current priority, or
/// none came by `as_of` (a later one had not happened yet) and `as_of` is past that.
pub const FIRST_RESPONSE_TARGETS_MINUTES: [u64; 4] = [1440, 480, 240, 60];

/// The `response_delay` bucket of a first response later than `i64::MAX` microseconds.
pub const DELAY_BEYOND: u64 = u64::MAX - 1;
/// The `response_delay` bucket of a ticket without a first public response.
pub const DELAY_UNANSWERED: u64 = u64::MAX;

/// One ticket, as stored and as listed by `tickets.list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRow {
    pub ticket_id: Uuid,
    pub customer_id: Uuid,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: TicketPriority,
    pub category: TicketCategory,
    pub channel: TicketChannel,
    pub assignee: Option<String>,
    pub opened_at: Timestamp,
    pub first_response_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub reopen_count: u32,
}

impl TicketRow {
    /// In the backlog: neither resolved nor closed.
    fn in_backlog(&self) -> bool {
        matches!(self.status, TicketStatus::Open | TicketStatus::Assigned)
    }

    /// Its key in `opened`.
    fn opened_key(&self) -> OpenedKey {
        (self.priority as u64, (self.opened_at, self.ticket_id))
    }

    /// Its key in `response_delay`.
    fn delay_key(&self) -> (u64, u64) {
        let bucket = self
            .first_response_at
            .map_or(DELAY_UNANSWERED, |at| delay_bucket(self.opened_at, at));
        (self.priority as u64, bucket)
    }

    /// The backlog's assignee row it counts in.
    fn backlog_assignee(&self) -> Option<&String> {
        self.assignee.as_ref().filter(|_| self.in_backlog())
    }
}

/// See the crate docs: `2 x whole minutes (+ 1 when not whole)` from `from` to `to`.
fn delay_bucket(from: Timestamp, to: Timestamp) -> u64 {
    let micros = i128::from(to.as_micros()) - i128::from(from.as_micros());
    if micros <= 0 {
        return 0;
    }
    let Ok(micros) = u64::try_from(micros) else {
        return DELAY_BEYOND;
    };
    if micros > i64::MAX as u64 {
        return DELAY_BEYOND;
    }
    let per_minute = MICROS_PER_MINUTE as u64;
    2 * (micros / per_minute) + u64::from(micros % per_minute != 0)
}

/// Tickets per (month, whole minutes): a multiset of durations per month.
type Durations = Table<(Month, u64), u64>;

/// (priority rank, (opened at, ticket id)).
type OpenedKey = (u64, (Timestamp, Uuid));

/// Counters over all tickets, or one ticket's share of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Totals {
    tickets: u64,
    /// Tickets reopened at least once.
    reopened: u64,
    reopens: u64,
    /// Tickets by current priority (rank).
    by_priority: [u64; 4],
    /// Open or assigned tickets by current priority (rank).
    backlog: [u64; 4],
    /// Open or assigned tickets without an assignee.
    unassigned: u64,
}

impl Totals {
    /// What one ticket adds.
    fn of(row: &TicketRow) -> Totals {
        let mut part = Totals {
            tickets: 1,
            reopened: u64::from(row.reopen_count > 0),
            reopens: u64::from(row.reopen_count),
            ..Totals::default()
        };
        let rank = row.priority as usize;
        if let Some(n) = part.by_priority.get_mut(rank) {
            *n = 1;
        }
        if row.in_backlog() {
            if let Some(n) = part.backlog.get_mut(rank) {
                *n = 1;
            }
            part.unassigned = u64::from(row.assignee.is_none());
        }
        part
    }

    /// Adds `part` (`add`) or takes it out again.
    fn count(&mut self, part: &Totals, add: bool) {
        let apply = |n: &mut u64, by: u64| {
            *n = if add {
                n.saturating_add(by)
            } else {
                n.saturating_sub(by)
            }
        };
        apply(&mut self.tickets, part.tickets);
        apply(&mut self.reopened, part.reopened);
        apply(&mut self.reopens, part.reopens);
        for (n, by) in self.by_priority.iter_mut().zip(part.by_priority) {
            apply(n, by);
        }
        for (n, by) in self.backlog.iter_mut().zip(part.backlog) {
            apply(n, by);
        }
        apply(&mut self.unassigned, part.unassigned);
    }
}

/// The service-desk read model; see the crate docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketsProjection {
    tickets: Table<Uuid, TicketRow>,
    first_response: Durations,
    resolution: Durations,
    totals: Single<Totals>,
    backlog_assignee: Table<String, u64>,
    opened: Table<OpenedKey, Option<Timestamp>>,
    response_delay: Table<(u64, u64), u64>,
}

impl Default for TicketsProjection {
    fn default() -> TicketsProjection {
        TicketsProjection {
            tickets: Table::new("ticket"),
            first_response: Table::new("first_response"),
            resolution: Table::new("resolution"),
            totals: Single::new("totals"),
            backlog_assignee: Table::new("backlog_assignee"),
            opened: Table::new("opened"),
            response_delay: Table::new("response_delay"),
        }
    }
}

/// Counts one duration, in whole minutes (a negative one as 0), in the month it ended.
fn count_duration(table: &mut Durations, from: Timestamp, to: Timestamp) {
    let micros = to.as_micros().saturating_sub(from.as_micros());
    let minutes = u64::try_from(micros / MICROS_PER_MINUTE).unwrap_or(0);
    table.upsert((to.month(), minutes), |n| *n = n.saturating_add(1));
}

/// Adds one to the counter row at `key`, or takes one off (removing the row at 0).
fn count_row<K: crm_projector::TableKey>(table: &mut Table<K, u64>, key: K, add: bool) {
    if add {
        table.upsert(key, |n| *n = n.saturating_add(1));
    } else if table.update(&key, |n| {
        *n = n.saturating_sub(1);
        *n == 0
    }) == Some(true)
    {
        table.remove(&key);
    }
}

impl ReadModel for TicketsProjection {
    const NAME: &'static str = "tickets";
    const QUERIES: &'static [&'static str] = &["tickets.list", "tickets.stats"];
    /// 2: the counters (`totals`, `backlog_assignee`, `opened`, `response_delay`) are stored
    /// (1: only the tickets and the durations).
    const STORE_FORMAT: u32 = 2;

    fn apply(&mut self, envelope: &EventEnvelope) {
        let (AggregateEvent::Ticket(event), at) = (envelope.event.split(), envelope.occurred_at)
        else {
            return;
        };
        if let E::TicketOpened(e) = event {
            if !self.tickets.contains_key(&e.ticket_id) {
                let row = TicketRow {
                    ticket_id: e.ticket_id,
                    customer_id: e.customer_id,
                    subject: e.subject.clone(),
                    status: TicketStatus::Open,
                    priority: e.priority,
                    category: e.category,
                    channel: e.channel,
                    assignee: None,
                    opened_at: at,
                    first_response_at: None,
                    resolved_at: None,
                    closed_at: None,
                    reopen_count: 0,
                };
                self.recount(None, Some(&row));
                self.tickets.insert(e.ticket_id, row);
            }
            return;
        }
        let id = event.ticket_id();
        let Some(before) = self.tickets.get(&id).map(Cow::into_owned) else {
            return;
        };
        let mut row = before.clone();
        match event {
            E::TicketAssigned(e) if row.status == TicketStatus::Open => {
                (row.assignee, row.status) = (Some(e.assignee.clone()), TicketStatus::Assigned)
            }
            E::TicketAssigned(e) => row.assignee = Some(e.assignee.clone()),
            E::TicketResponded(e) if e.first_public_response && row.first_response_at.is_none() => {
                row.first_response_at = Some(at);
                count_duration(&mut self.first_response, row.opened_at, at);
            }
            E::TicketOpened(_) | E::TicketResponded(_) => {}
            E::TicketEscalated(e) => row.priority = e.priority,
            E::TicketResolved(_) => {
                if row.resolved_at.is_none() {
                    count_duration(&mut self.resolution, row.opened_at, at);
                }
                (row.resolved_at, row.status) = (Some(at), TicketStatus::Resolved);
            }
            E::TicketClosed(_) => (row.closed_at, row.status) = (Some(at), TicketStatus::Closed),
            E::TicketReopened(_) => {
                (row.status, row.reopen_count) =
                    (TicketStatus::Open, row.reopen_count.saturating_add(1))
            }
        }
        if row != before {
            self.recount(Some(&before), Some(&row));
            self.tickets.insert(id, row);
        }
    }

    fn query(&self, name: &str, request: &Value) -> Result<Value, QueryError> {
        match name {
            "tickets.list" => self.list(parse(request)?),
            "tickets.stats" => self.stats(parse(request)?),
            other => Err(QueryError::UnknownQuery(other.to_owned())),
        }
    }

    fn tables(&mut self) -> Vec<&mut dyn StoredTable> {
        vec![
            &mut self.tickets,
            &mut self.first_response,
            &mut self.resolution,
            &mut self.totals,
            &mut self.backlog_assignee,
            &mut self.opened,
            &mut self.response_delay,
        ]
    }
}

/// A `tickets.list` request: every filter given must match exactly.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListRequest {
    status: Option<TicketStatus>,
    priority: Option<TicketPriority>,
    assignee: Option<String>,
    customer_id: Option<Uuid>,
    category: Option<TicketCategory>,
    limit: Option<u64>,
    after: Option<Uuid>,
}

/// A `tickets.stats` request: SLA figures need `as_of`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsRequest {
    as_of: Option<Timestamp>,
    first_response_targets_minutes: Option<BTreeMap<TicketPriority, u64>>,
}

fn malformed(message: impl ToString) -> QueryError {
    QueryError::Malformed(message.to_string())
}

/// Counts per priority by wire name; arrays are indexed by `priority as usize`, the order of
/// declaration, which is `TicketPriority::ALL`'s.
fn by_priority(counts: [u64; 4]) -> BTreeMap<&'static str, u64> {
    let names = TicketPriority::ALL.iter().map(|p| p.as_str());
    names.zip(counts).collect()
}

impl TicketsProjection {
    /// Moves a ticket's share of the counters from `before` (none for a new ticket) to
    /// `after`, touching only the rows whose share changes.
    fn recount(&mut self, before: Option<&TicketRow>, after: Option<&TicketRow>) {
        let part_before = before.map(Totals::of).unwrap_or_default();
        let part_after = after.map(Totals::of).unwrap_or_default();
        if part_before != part_after {
            self.totals.update(|totals| {
                totals.count(&part_before, false);
                totals.count(&part_after, true);
            });
        }

        let assignee_before = before.and_then(TicketRow::backlog_assignee);
        let assignee_after = after.and_then(TicketRow::backlog_assignee);
        if assignee_before != assignee_after {
            if let Some(assignee) = assignee_before {
                count_row(&mut self.backlog_assignee, assignee.clone(), false);
            }
            if let Some(assignee) = assignee_after {
                count_row(&mut self.backlog_assignee, assignee.clone(), true);
            }
        }

        let opened_before = before.map(|t| (t.opened_key(), t.first_response_at));
        let opened_after = after.map(|t| (t.opened_key(), t.first_response_at));
        if opened_before != opened_after {
            let key_after = opened_after.as_ref().map(|(key, _)| key);
            if let Some((key, _)) = opened_before.filter(|(key, _)| Some(key) != key_after) {
                self.opened.remove(&key);
            }
            if let Some((key, response)) = opened_after {
                self.opened.insert(key, response);
            }
        }

        let delay_before = before.map(TicketRow::delay_key);
        let delay_after = after.map(TicketRow::delay_key);
        if delay_before != delay_after {
            if let Some(key) = delay_before {
                count_row(&mut self.response_delay, key, false);
            }
            if let Some(key) = delay_after {
                count_row(&mut self.response_delay, key, true);
            }
        }
    }

    /// A page of the matching tickets by id; `next` is its last id when more match.
    fn list(&self, r: ListRequest) -> Result<Value, QueryError> {
        let limit = match r.limit.unwrap_or(LIST_LIMIT_DEFAULT) {
            0 => return Err(malformed("`limit` must be at least 1")),
            limit => usize::try_from(limit.min(LIST_LIMIT_MAX)).unwrap_or(1),
        };
        let start = r.after.map_or(Bound::Unbounded, Bound::Excluded);
        let range = self.tickets.range((start, Bound::Unbounded));
        let mut matching = range.map(|(_, t)| t).filter(|t| {
            r.status.is_none_or(|s| t.status == s)
                && r.priority.is_none_or(|p| t.priority == p)
                && (r.assignee.is_none() || t.assignee == r.assignee)
                && r.customer_id.is_none_or(|c| t.customer_id == c)
                && r.category.is_none_or(|c| t.category == c)
        });
        let page: Vec<_> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        let next = page.last().filter(|_| more).map(|t| t.ticket_id);
        // Rows hold strings, integers, times and enums: rendering cannot fail; if it did, say so.
        let page = serde_json::to_value(&page).map_err(malformed)?;
        Ok(json!({ "tickets": page, "next": next }))
    }

    fn stats(&self, r: StatsRequest) -> Result<Value, QueryError> {
        let given = r.first_response_targets_minutes;
        if r.as_of.is_none() && given.is_some() {
            return Err(malformed("`first_response_targets_minutes` needs `as_of`"));
        }
        let mut targets = FIRST_RESPONSE_TARGETS_MINUTES;
        for (p, minutes) in given.unwrap_or_default() {
            targets[p as usize] = minutes;
        }
        let totals = self.totals.get();
        let sla = r.as_of.map(|as_of| {
            let (mut evaluated, mut breached) = ([0; 4], [0; 4]);
            for (rank, target) in targets.iter().enumerate() {
                (evaluated[rank], breached[rank]) = self.sla_of(rank as u64, as_of, *target);
            }
            json!({ "as_of": as_of.to_string(),
            "targets_minutes": by_priority(targets), "tickets": by_priority(evaluated),
            "breached": by_priority(breached), "breached_total": breached.iter().sum::<u64>() })
        });
        let mut months = BTreeMap::new();
        for ((m, _), _) in self.first_response.iter().chain(self.resolution.iter()) {
            months.entry(m.to_string()).or_insert_with(|| {
                json!({
                "first_response_minutes": summary(&self.first_response, m),
                "resolution_minutes": summary(&self.resolution, m) })
            });
        }
        let assignees: BTreeMap<String, u64> = self
            .backlog_assignee
            .iter()
            .map(|(assignee, n)| (assignee, *n))
            .collect();
        let (opened, reopened, backlog) = (totals.tickets, totals.reopened, totals.backlog);
        Ok(json!({
            "backlog": { "total": backlog.iter().sum::<u64>(), "by_priority": by_priority(backlog),
                "by_assignee": assignees, "unassigned": totals.unassigned },
            "months": months,
            "reopens": { "tickets_opened": opened, "tickets_reopened": reopened,
                "reopens": totals.reopens,
                "reopen_rate": (opened > 0).then(|| reopened as f64 / opened as f64) },
            "sla": sla,
        }))
    }

    /// The SLA figures of one priority (rank) at `as_of` against a first-response target of
    /// `target_minutes`: the tickets opened by `as_of`, and those of them that breached.
    ///
    /// A ticket opened at `o` breached when `as_of - o > target` and its first response (if
    /// any) came more than `target` after `o`: "late". So the breaches are the late tickets
    /// (`response_delay`) less the late ones opened at `as_of - target` or after, and the
    /// tickets opened by `as_of` are all of them less those opened after it; both kinds are
    /// read from `opened`, from `as_of - target` on. Exact: times and targets are compared in
    /// `i128` microseconds, a target beyond `i64::MAX` microseconds counting as `i64::MAX`.
    fn sla_of(&self, rank: u64, as_of: Timestamp, target_minutes: u64) -> (u64, u64) {
        let target =
            (i128::from(target_minutes) * i128::from(MICROS_PER_MINUTE)).min(i128::from(i64::MAX));
        // Late: a response bucket above `2 x target minutes`, or, for a target beyond
        // `i64::MAX` microseconds, a delay beyond it (or none).
        let late_from = if target < i128::from(i64::MAX) {
            2 * target_minutes + 1
        } else {
            DELAY_BEYOND
        };
        let mut late: u64 = self
            .response_delay
            .range((rank, late_from)..=(rank, DELAY_UNANSWERED))
            .map(|(_, n)| *n)
            .sum();
        let mut evaluated = self
            .totals
            .get()
            .by_priority
            .get(rank as usize)
            .copied()
            .unwrap_or(0);
        let since = i128::from(as_of.as_micros()) - target;
        let from = match i64::try_from(since) {
            Ok(since) => Bound::Included((rank, (Timestamp::from_micros(since), Uuid::nil()))),
            Err(_) => Bound::Included((rank, (Timestamp::from_micros(i64::MIN), Uuid::nil()))),
        };
        let to = Bound::Included((rank, (Timestamp::from_micros(i64::MAX), Uuid::max())));
        for ((_, (opened_at, _)), response) in self.opened.range((from, to)) {
            let opened = i128::from(opened_at.as_micros());
            let is_late = response.is_none_or(|at| i128::from(at.as_micros()) - opened > target);
            late = late.saturating_sub(u64::from(is_late));
            evaluated = evaluated.saturating_sub(u64::from(opened_at > as_of));
        }
        (evaluated, late)
    }
}

/// Count, p50 and p90 (nearest rank) of one month's durations; `null` percentiles when none.
fn summary(table: &Durations, month: Month) -> Value {
    let rows = || table.range((month, 0)..=(month, u64::MAX));
    let count: u64 = rows().map(|(_, n)| *n).sum();
    let rank = |p: u64| {
        let (rank, mut seen) = ((count.saturating_mul(p)).div_ceil(100).max(1), 0);
        rows()
            .find(|(_, n)| {
                seen += **n;
                seen >= rank
            })
            .map(|((_, minutes), _)| minutes)
    };
    json!({ "count": count, "p50": rank(50), "p90": rank(90) })
}
