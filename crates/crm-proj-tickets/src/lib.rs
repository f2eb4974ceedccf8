//! The `tickets` read model, the service desk, built with the projection SDK; queries
//! `tickets.list` and `tickets.stats`. Its rules (status, first response, durations and
//! nearest-rank percentiles per month, backlog, reopens, SLA at the caller's `as_of`) are in
//! docs/DOMAIN.md, "Service desk". Stored tables:
//!
//! | table | key | row |
//! | --- | --- | --- |
//! | `ticket` | ticket id | [`TicketRow`] |
//! | `first_response`, `resolution` | (month the duration ended, whole minutes) | tickets |
//!
//! Duration tables grow with distinct (month, minutes) pairs, not with tickets. Nothing is
//! derived in `restored()`: backlog and reopens come from the rows in the pass that the SLA
//! figures (which depend on the query's `as_of`) need anyway.

use std::collections::BTreeMap;
use std::ops::Bound;

use crm_domain::event::TicketEvent as E;
use crm_domain::time::MICROS_PER_MINUTE;
use crm_domain::types::{TicketCategory, TicketChannel, TicketPriority, TicketStatus};
use crm_domain::{AggregateEvent, Month, Timestamp};
use crm_projector::{
    parse_request as parse, EventEnvelope, QueryError, ReadModel, StoredTable, Table,
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

/// Tickets per (month, whole minutes): a multiset of durations per month.
type Durations = Table<(Month, u64), u64>;

/// The service-desk read model; see the crate docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketsProjection {
    tickets: Table<Uuid, TicketRow>,
    first_response: Durations,
    resolution: Durations,
}

impl Default for TicketsProjection {
    fn default() -> TicketsProjection {
        TicketsProjection {
            tickets: Table::new("ticket"),
            first_response: Table::new("first_response"),
            resolution: Table::new("resolution"),
        }
    }
}

/// Counts one duration, in whole minutes (a negative one as 0), in the month it ended.
fn count_duration(table: &mut Durations, from: Timestamp, to: Timestamp) {
    let micros = to.as_micros().saturating_sub(from.as_micros());
    let minutes = u64::try_from(micros / MICROS_PER_MINUTE).unwrap_or(0);
    table.upsert((to.month(), minutes), |n| *n = n.saturating_add(1));
}

impl ReadModel for TicketsProjection {
    const NAME: &'static str = "tickets";
    const QUERIES: &'static [&'static str] = &["tickets.list", "tickets.stats"];
    const STORE_FORMAT: u32 = 1;

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
                self.tickets.insert(e.ticket_id, row);
            }
            return;
        }
        self.tickets.update(&event.ticket_id(), |row| match event {
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
        });
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
        let (mut backlog, mut assignees) = ([0; 4], BTreeMap::<Option<&str>, u64>::new());
        let (mut reopened, mut reopens, mut evaluated, mut breached) = (0, 0, [0; 4], [0; 4]);
        for t in self.tickets.values() {
            reopened += u64::from(t.reopen_count > 0);
            reopens += u64::from(t.reopen_count);
            if matches!(t.status, TicketStatus::Open | TicketStatus::Assigned) {
                backlog[t.priority as usize] += 1;
                *assignees.entry(t.assignee.as_deref()).or_default() += 1;
            }
            // SLA, see FIRST_RESPONSE_TARGETS_MINUTES.
            if let Some(as_of) = r.as_of.filter(|as_of| t.opened_at <= *as_of) {
                let minutes = i64::try_from(targets[t.priority as usize]).unwrap_or(i64::MAX);
                let target = minutes.saturating_mul(MICROS_PER_MINUTE);
                let deadline = t.opened_at.saturating_add_micros(target);
                let answered = t.first_response_at.map_or(as_of, |at| at.min(as_of));
                evaluated[t.priority as usize] += 1;
                breached[t.priority as usize] += u64::from(answered > deadline);
            }
        }
        let mut months = BTreeMap::new();
        for ((m, _), _) in self.first_response.iter().chain(self.resolution.iter()) {
            months.entry(m.to_string()).or_insert_with(|| {
                json!({
                "first_response_minutes": summary(&self.first_response, *m),
                "resolution_minutes": summary(&self.resolution, *m) })
            });
        }
        let unassigned = assignees.remove(&None).unwrap_or(0);
        let assignees: BTreeMap<_, _> = assignees
            .into_iter()
            .filter_map(|(a, n)| Some((a?, n)))
            .collect();
        let opened = self.tickets.len() as u64;
        let sla = r.as_of.map(|as_of| {
            json!({ "as_of": as_of.to_string(),
            "targets_minutes": by_priority(targets), "tickets": by_priority(evaluated),
            "breached": by_priority(breached), "breached_total": breached.iter().sum::<u64>() })
        });
        Ok(json!({
            "backlog": { "total": backlog.iter().sum::<u64>(), "by_priority": by_priority(backlog),
                "by_assignee": assignees, "unassigned": unassigned },
            "months": months,
            "reopens": { "tickets_opened": opened, "tickets_reopened": reopened, "reopens": reopens,
                "reopen_rate": (opened > 0).then(|| reopened as f64 / opened as f64) },
            "sla": sla,
        }))
    }
}

/// Count, p50 and p90 (nearest rank) of one month's durations; `null` percentiles when none.
fn summary(table: &Durations, month: Month) -> Value {
    let rows = || table.range((month, 0)..=(month, u64::MAX));
    let count: u64 = rows().map(|(_, n)| n).sum();
    let rank = |p: u64| {
        let (rank, mut seen) = ((count.saturating_mul(p)).div_ceil(100).max(1), 0);
        rows()
            .find(|(_, n)| {
                seen += *n;
                seen >= rank
            })
            .map(|((_, minutes), _)| minutes)
    };
    json!({ "count": count, "p50": rank(50), "p90": rank(90) })
}
