//! Random event streams, valid (commands through `decide`/`evolve`) and arbitrary: the fold
//! never panics; draining and restoring at random points gives the model of one fold; two
//! rebuilds drain byte-identical changes; the figures match a plain recount of the events;
//! and the counters the fold keeps give what a scan of every ticket gives.

use std::collections::BTreeMap;

use crm_domain::time::MICROS_PER_MINUTE;
use crm_domain::types::{TicketPriority, TicketStatus};
use crm_domain::{Event, Month, Timestamp};
use crm_proj_testkit::*;
use crm_proj_tickets::{TicketRow, TicketsProjection, FIRST_RESPONSE_TARGETS_MINUTES};
use crm_projector::{Change, EventEnvelope, Projection};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};
use uuid::Uuid;

mod support;
use support::requests;

const STREAMS: u32 = 1024;
const COMMANDS_PER_STREAM_MAX: usize = 150;

proptest! {
    #![proptest_config(ProptestConfig { cases: STREAMS, ..ProptestConfig::default() })]

    #[test]
    fn valid_streams_fold_alike_however_drained_and_restored(
        seeds in seeds(COMMANDS_PER_STREAM_MAX),
        batch in 1usize..8,
        restores in prop::collection::vec(any::<Index>(), 0..4),
    ) {
        let envelopes = valid_stream(&seeds);
        check_folds_alike(&envelopes, batch, &restores)?;
        check_recount(&envelopes)?;
        check_stats_match_a_scan(&envelopes)?;
    }

    #[test]
    fn arbitrary_streams_never_panic_and_fold_alike(
        seeds in seeds(COMMANDS_PER_STREAM_MAX),
        batch in 1usize..8,
        restores in prop::collection::vec(any::<Index>(), 0..4),
    ) {
        let envelopes = arbitrary_stream(&seeds);
        check_folds_alike(&envelopes, batch, &restores)?;
        check_recount(&envelopes)?;
        check_stats_match_a_scan(&envelopes)?;
    }
}

/// Every change one fold of `envelopes` drains, in one batch.
fn rebuild(envelopes: &[EventEnvelope]) -> (TicketsProjection, Vec<Change>) {
    let mut projection = TicketsProjection::default();
    for envelope in envelopes {
        projection.apply(envelope);
    }
    let changes = projection.drain_changes();
    (projection, changes)
}

fn check_folds_alike(
    envelopes: &[EventEnvelope],
    batch: usize,
    restores: &[Index],
) -> Result<(), TestCaseError> {
    // One fold, drained once; a second rebuild drains the very same bytes.
    let (once, changes) = rebuild(envelopes);
    let (again, changes_again) = rebuild(envelopes);
    prop_assert_eq!(&changes, &changes_again);
    prop_assert_eq!(&once, &again);
    let mut store_once = Store::default();
    store_once.write(changes);

    // Live: drained every `batch` events and restored from its store at random points.
    let mut points: Vec<usize> = restores
        .iter()
        .map(|i| i.index(envelopes.len() + 1))
        .collect();
    points.sort_unstable();
    let mut live = TicketsProjection::default();
    let mut store = Store::default();
    let mut from = 0;
    for point in points.into_iter().chain([envelopes.len()]) {
        feed(&mut live, &mut store, &envelopes[from..point], batch);
        live = TicketsProjection::default();
        store.restore_into(&mut live);
        from = point;
    }
    prop_assert_eq!(&store, &store_once);
    prop_assert_eq!(&live, &once);

    // The same answers, byte for byte.
    for (name, request) in requests() {
        let answer = |p: &TicketsProjection| p.query(name, &request).map(|v| v.to_string());
        prop_assert_eq!(answer(&live), answer(&once), "{} {}", name, request);
    }
    Ok(())
}

/// What a plain recount of the events says about one ticket.
struct Recount {
    opened_at: Timestamp,
    status: TicketStatus,
    answered: bool,
    resolved: bool,
    reopens: u64,
}

fn minutes(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from((to.as_micros() - from.as_micros()).max(0) / 60_000_000).unwrap_or(0)
}

/// Nearest rank over a sorted list.
fn nearest_rank(sorted: &[u64], p: usize) -> Option<u64> {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Recounts the backlog, the reopens and every month's durations from the events and compares
/// them with `tickets.stats`; checks every listed ticket's status.
fn check_recount(envelopes: &[EventEnvelope]) -> Result<(), TestCaseError> {
    let mut tickets: BTreeMap<Uuid, Recount> = BTreeMap::new();
    let mut durations: BTreeMap<(Month, &str), Vec<u64>> = BTreeMap::new();
    let mut projection = TicketsProjection::default();
    for envelope in envelopes {
        projection.apply(envelope);
        let at = envelope.occurred_at;
        let mut end = |kind, ticket: &Recount| {
            let list = durations.entry((at.month(), kind)).or_default();
            list.push(minutes(ticket.opened_at, at));
        };
        match &envelope.event {
            Event::TicketOpened(e) => {
                tickets.entry(e.ticket_id).or_insert(Recount {
                    opened_at: at,
                    status: TicketStatus::Open,
                    answered: false,
                    resolved: false,
                    reopens: 0,
                });
            }
            Event::TicketAssigned(e) => {
                if let Some(t) = tickets.get_mut(&e.ticket_id) {
                    if t.status == TicketStatus::Open {
                        t.status = TicketStatus::Assigned;
                    }
                }
            }
            Event::TicketResponded(e) if e.first_public_response => {
                if let Some(t) = tickets.get_mut(&e.ticket_id).filter(|t| !t.answered) {
                    t.answered = true;
                    end("first_response_minutes", t);
                }
            }
            Event::TicketResolved(e) => {
                if let Some(t) = tickets.get_mut(&e.ticket_id) {
                    if !t.resolved {
                        end("resolution_minutes", t);
                    }
                    t.resolved = true;
                    t.status = TicketStatus::Resolved;
                }
            }
            Event::TicketClosed(e) => {
                if let Some(t) = tickets.get_mut(&e.ticket_id) {
                    t.status = TicketStatus::Closed;
                }
            }
            Event::TicketReopened(e) => {
                if let Some(t) = tickets.get_mut(&e.ticket_id) {
                    t.status = TicketStatus::Open;
                    t.reopens += 1;
                }
            }
            _ => {}
        }
    }

    let stats = projection
        .query("tickets.stats", &json!({}))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let backlog = tickets
        .values()
        .filter(|t| matches!(t.status, TicketStatus::Open | TicketStatus::Assigned))
        .count();
    prop_assert_eq!(&stats["backlog"]["total"], &json!(backlog));
    prop_assert_eq!(&stats["reopens"]["tickets_opened"], &json!(tickets.len()));
    let reopened = tickets.values().filter(|t| t.reopens > 0).count();
    let reopens: u64 = tickets.values().map(|t| t.reopens).sum();
    prop_assert_eq!(&stats["reopens"]["tickets_reopened"], &json!(reopened));
    prop_assert_eq!(&stats["reopens"]["reopens"], &json!(reopens));

    let months = stats["months"].as_object().cloned().unwrap_or_default();
    for ((month, kind), mut list) in durations {
        list.sort_unstable();
        let figures = months
            .get(&month.to_string())
            .map_or(&Value::Null, |m| &m[kind]);
        let expected = json!({
            "count": list.len(),
            "p50": nearest_rank(&list, 50),
            "p90": nearest_rank(&list, 90),
        });
        prop_assert_eq!(figures, &expected, "{} {}", month, kind);
    }

    let listed = projection
        .query("tickets.list", &json!({"limit": 500}))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let rows = listed["tickets"].as_array().cloned().unwrap_or_default();
    prop_assert_eq!(rows.len(), tickets.len());
    for (row, (ticket_id, recount)) in rows.iter().zip(&tickets) {
        prop_assert_eq!(&row["ticket_id"], &json!(ticket_id));
        prop_assert_eq!(&row["status"], &json!(recount.status));
    }
    Ok(())
}

/// Every ticket, as `tickets.list` pages through them.
fn all_rows(projection: &TicketsProjection) -> Result<Vec<TicketRow>, TestCaseError> {
    let mut rows = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = projection
            .query("tickets.list", &json!({"limit": 7, "after": after}))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let tickets: Vec<TicketRow> = serde_json::from_value(page["tickets"].clone())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        rows.extend(tickets);
        if page["next"].is_null() {
            return Ok(rows);
        }
        after = page["next"].clone();
    }
}

/// Counts per priority by wire name.
fn by_priority(counts: [u64; 4]) -> BTreeMap<&'static str, u64> {
    let names = TicketPriority::ALL.iter().map(|p| p.as_str());
    names.zip(counts).collect()
}

/// `tickets.stats` without its `months`, computed the way store format 1 did: one pass over
/// every ticket.
fn scanned_stats(rows: &[TicketRow], as_of: Option<Timestamp>, targets: [u64; 4]) -> Value {
    let (mut backlog, mut assignees) = ([0; 4], BTreeMap::<Option<&str>, u64>::new());
    let (mut reopened, mut reopens, mut evaluated, mut breached) = (0, 0, [0; 4], [0; 4]);
    for t in rows {
        reopened += u64::from(t.reopen_count > 0);
        reopens += u64::from(t.reopen_count);
        if matches!(t.status, TicketStatus::Open | TicketStatus::Assigned) {
            backlog[t.priority as usize] += 1;
            *assignees.entry(t.assignee.as_deref()).or_default() += 1;
        }
        if let Some(as_of) = as_of.filter(|as_of| t.opened_at <= *as_of) {
            let minutes = i64::try_from(targets[t.priority as usize]).unwrap_or(i64::MAX);
            let target = minutes.saturating_mul(MICROS_PER_MINUTE);
            let deadline = t.opened_at.saturating_add_micros(target);
            let answered = t.first_response_at.map_or(as_of, |at| at.min(as_of));
            evaluated[t.priority as usize] += 1;
            breached[t.priority as usize] += u64::from(answered > deadline);
        }
    }
    let unassigned = assignees.remove(&None).unwrap_or(0);
    let assignees: BTreeMap<_, _> = assignees
        .into_iter()
        .filter_map(|(a, n)| Some((a?, n)))
        .collect();
    let opened = rows.len() as u64;
    let sla = as_of.map(|as_of| {
        json!({ "as_of": as_of.to_string(),
        "targets_minutes": by_priority(targets), "tickets": by_priority(evaluated),
        "breached": by_priority(breached), "breached_total": breached.iter().sum::<u64>() })
    });
    json!({
        "backlog": { "total": backlog.iter().sum::<u64>(), "by_priority": by_priority(backlog),
            "by_assignee": assignees, "unassigned": unassigned },
        "reopens": { "tickets_opened": opened, "tickets_reopened": reopened, "reopens": reopens,
            "reopen_rate": (opened > 0).then(|| reopened as f64 / opened as f64) },
        "sla": sla,
    })
}

/// The backlog, reopens and SLA figures of `tickets.stats` (kept as counters by the fold)
/// equal a scan of every ticket, for `as_of` at, just before and just after deadlines and
/// responses, and for default, small, zero and huge targets.
fn check_stats_match_a_scan(envelopes: &[EventEnvelope]) -> Result<(), TestCaseError> {
    let mut projection = TicketsProjection::default();
    for envelope in envelopes {
        projection.apply(envelope);
    }
    let rows = all_rows(&projection)?;
    // Past the largest target that fits `i64` microseconds, and just below it.
    let fits = u64::try_from(i64::MAX / MICROS_PER_MINUTE).unwrap_or(0);
    let target_sets = [
        FIRST_RESPONSE_TARGETS_MINUTES,
        [5, 0, 1, 30],
        [u64::MAX, fits, fits + 1, 0],
    ];
    let mut times: Vec<Timestamp> = Vec::new();
    for envelope in envelopes.iter().step_by(envelopes.len().div_ceil(4).max(1)) {
        times.push(envelope.occurred_at);
    }
    for t in rows.iter().step_by(rows.len().div_ceil(3).max(1)) {
        times.push(t.opened_at);
        let default = FIRST_RESPONSE_TARGETS_MINUTES[t.priority as usize];
        let minutes = i64::try_from(default).unwrap_or(i64::MAX);
        times.push(
            t.opened_at
                .saturating_add_micros(minutes.saturating_mul(MICROS_PER_MINUTE)),
        );
        times.extend(t.first_response_at);
    }
    times.push(Timestamp::parse_rfc3339("9999-12-31T23:59:59Z").unwrap_or_default());
    let mut as_ofs = vec![None];
    for time in times {
        for offset in [-1, 0, 1, MICROS_PER_MINUTE] {
            as_ofs.push(Some(time.saturating_add_micros(offset)));
        }
    }
    for as_of in as_ofs {
        let sets: &[[u64; 4]] = if as_of.is_some() {
            &target_sets
        } else {
            &target_sets[..1]
        };
        for targets in sets {
            let mut request = json!({});
            if let Some(as_of) = as_of {
                let given: BTreeMap<&str, u64> = by_priority(*targets);
                request = json!({"as_of": as_of, "first_response_targets_minutes": given});
            }
            let mut stats = projection
                .query("tickets.stats", &request)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Some(stats) = stats.as_object_mut() {
                stats.remove("months");
            }
            let expected = scanned_stats(&rows, as_of, *targets);
            prop_assert_eq!(stats.to_string(), expected.to_string(), "{}", request);
        }
    }
    Ok(())
}
