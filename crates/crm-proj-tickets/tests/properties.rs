//! Random event streams, valid (commands through `decide`/`evolve`) and arbitrary: the fold
//! never panics; draining and restoring at random points gives the model of one fold; two
//! rebuilds drain byte-identical changes; and the figures match a plain recount of the events.

use std::collections::BTreeMap;

use crm_domain::types::TicketStatus;
use crm_domain::{Event, Month, Timestamp};
use crm_proj_testkit::*;
use crm_proj_tickets::TicketsProjection;
use crm_projector::{Change, EventEnvelope, Projection};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};
use uuid::Uuid;

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

/// The requests whose answers must not depend on how the model was built.
fn requests() -> Vec<(&'static str, Value)> {
    let mut requests = vec![
        ("tickets.list", json!({})),
        ("tickets.list", json!({"limit": 2, "after": id(1)})),
        (
            "tickets.list",
            json!({"status": "open", "priority": "urgent"}),
        ),
        ("tickets.list", json!({"assignee": "sam"})),
        ("tickets.stats", json!({})),
    ];
    for as_of in [
        "2026-10-26T00:00:00Z",
        "2026-11-05T12:00:00Z",
        "2027-06-01T00:00:00Z",
    ] {
        requests.push(("tickets.stats", json!({"as_of": as_of})));
        requests.push((
            "tickets.stats",
            json!({"as_of": as_of, "first_response_targets_minutes": {"low": 5, "urgent": 0}}),
        ));
    }
    requests
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
