//! The service desk's rules, one behaviour per test, events built directly.

use crm_domain::event::*;
use crm_domain::types::{TicketCategory, TicketChannel, TicketPriority};
use crm_domain::{Event, Timestamp};
use crm_proj_testkit::*;
use crm_proj_tickets::TicketsProjection;
use crm_projector::{Projection, QueryError, TableError};
use serde_json::{json, Value};

use TicketCategory::{Complaint, Incident, Question};
use TicketPriority::{High, Low, Normal, Urgent};

/// A time on a day of November 2026 (`"27 10:30"`); day 31 and on run into December.
fn at(when: &str) -> Timestamp {
    let (day, time) = when.split_once(' ').expect("`DD HH:MM`");
    let day: i64 = day.parse().expect("a day");
    let base = ts(&format!("2026-11-01T{time}:00Z"));
    base.saturating_add_micros((day - 1) * 86_400_000_000)
}

fn open(ticket: u128, priority: TicketPriority, category: TicketCategory) -> Event {
    open_for(ticket, 900, priority, category)
}

fn open_for(
    ticket: u128,
    customer: u128,
    priority: TicketPriority,
    category: TicketCategory,
) -> Event {
    Event::TicketOpened(TicketOpened {
        ticket_id: id(ticket),
        customer_id: id(customer),
        subject: format!("Ticket {ticket}"),
        category,
        priority,
        channel: TicketChannel::Chat,
    })
}

fn assign(ticket: u128, assignee: &str) -> Event {
    Event::TicketAssigned(TicketAssigned {
        ticket_id: id(ticket),
        assignee: assignee.to_owned(),
    })
}

fn respond(ticket: u128, public: bool, first_public_response: bool) -> Event {
    Event::TicketResponded(TicketResponded {
        ticket_id: id(ticket),
        responder: "sam".to_owned(),
        public,
        first_public_response,
    })
}

/// The first public response.
fn answer(ticket: u128) -> Event {
    respond(ticket, true, true)
}

fn escalate(ticket: u128, from: TicketPriority, to: TicketPriority) -> Event {
    Event::TicketEscalated(TicketEscalated {
        ticket_id: id(ticket),
        from_priority: from,
        priority: to,
    })
}

fn resolve(ticket: u128) -> Event {
    Event::TicketResolved(TicketResolved {
        ticket_id: id(ticket),
        resolution: "fixed".to_owned(),
    })
}

fn close(ticket: u128) -> Event {
    Event::TicketClosed(TicketClosed {
        ticket_id: id(ticket),
    })
}

fn reopen(ticket: u128) -> Event {
    Event::TicketReopened(TicketReopened {
        ticket_id: id(ticket),
        reason: "not fixed".to_owned(),
    })
}

fn project(events: &[(&str, Event)]) -> TicketsProjection {
    let mut log = Log::default();
    for (when, event) in events {
        log.push(at(when), event.clone());
    }
    let mut projection = TicketsProjection::default();
    for envelope in &log.envelopes {
        projection.apply(envelope);
    }
    projection
}

fn query(projection: &TicketsProjection, name: &str, request: Value) -> Value {
    projection
        .query(name, &request)
        .unwrap_or_else(|e| panic!("{name} {request}: {e}"))
}

fn list(projection: &TicketsProjection, request: Value) -> Vec<Value> {
    let reply = query(projection, "tickets.list", request);
    reply["tickets"].as_array().cloned().unwrap_or_default()
}

/// The one ticket's row as `tickets.list` shows it.
fn row(projection: &TicketsProjection, ticket: u128) -> Value {
    let rows = list(projection, json!({"limit": 500}));
    let id = id(ticket).to_string();
    rows.into_iter()
        .find(|row| row["ticket_id"] == id.as_str())
        .unwrap_or(Value::Null)
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|row| row["ticket_id"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn malformed(projection: &TicketsProjection, name: &str, request: Value) -> String {
    match projection.query(name, &request) {
        Err(QueryError::Malformed(message)) => message,
        other => panic!("{name} {request}: expected malformed, got {other:?}"),
    }
}

#[test]
fn opening_keeps_the_events_fields() {
    let p = project(&[("27 10:00", open_for(1, 77, High, Complaint))]);
    assert_eq!(
        row(&p, 1),
        json!({
            "ticket_id": id(1), "customer_id": id(77), "subject": "Ticket 1",
            "status": "open", "priority": "high", "category": "complaint", "channel": "chat",
            "assignee": null, "opened_at": "2026-11-27T10:00:00Z", "first_response_at": null,
            "resolved_at": null, "closed_at": null, "reopen_count": 0
        })
    );
}

#[test]
fn the_first_assignment_of_an_open_ticket_assigns_it_and_later_ones_change_the_assignee() {
    let p = project(&[
        ("1 09:00", open(1, Normal, Question)),
        ("1 09:05", assign(1, "ada")),
    ]);
    assert_eq!(
        (row(&p, 1)["status"].clone(), row(&p, 1)["assignee"].clone()),
        (json!("assigned"), json!("ada"))
    );
    let p = project(&[
        ("1 09:00", open(1, Normal, Question)),
        ("1 09:05", assign(1, "ada")),
        ("1 09:10", assign(1, "grace")),
    ]);
    assert_eq!(row(&p, 1)["assignee"], "grace");
    assert_eq!(row(&p, 1)["status"], "assigned");
    // A resolved ticket assigned again stays resolved, as in the domain.
    let p = project(&[
        ("1 09:00", open(1, Normal, Question)),
        ("1 09:30", resolve(1)),
        ("1 09:40", assign(1, "ada")),
    ]);
    assert_eq!(row(&p, 1)["status"], "resolved");
    assert_eq!(row(&p, 1)["assignee"], "ada");
}

#[test]
fn only_the_first_public_response_sets_the_first_response_time() {
    let p = project(&[
        ("1 09:00", open(1, Normal, Question)),
        ("1 09:10", respond(1, false, false)),
        ("1 09:20", respond(1, true, true)),
        ("1 09:30", respond(1, true, false)),
        // A second flag (not in a valid log) does not move it either.
        ("1 09:40", respond(1, true, true)),
    ]);
    assert_eq!(row(&p, 1)["first_response_at"], "2026-11-01T09:20:00Z");
    let stats = query(&p, "tickets.stats", json!({}));
    assert_eq!(
        stats["months"]["2026-11"]["first_response_minutes"],
        json!({"count": 1, "p50": 20, "p90": 20})
    );
}

#[test]
fn escalation_sets_the_priority() {
    let p = project(&[
        ("1 09:00", open(1, Low, Incident)),
        ("1 10:00", escalate(1, Low, Urgent)),
    ]);
    assert_eq!(row(&p, 1)["priority"], "urgent");
}

#[test]
fn resolve_reopen_and_resolve_again() {
    let p = project(&[
        ("1 09:00", open(1, Normal, Incident)),
        ("1 10:00", resolve(1)),
        ("2 09:00", reopen(1)),
    ]);
    let reopened = row(&p, 1);
    assert_eq!(reopened["status"], "open");
    assert_eq!(reopened["reopen_count"], 1);
    assert_eq!(
        reopened["resolved_at"], "2026-11-01T10:00:00Z",
        "kept after a reopen"
    );

    let p = project(&[
        ("1 09:00", open(1, Normal, Incident)),
        ("1 10:00", resolve(1)),
        ("2 09:00", reopen(1)),
        ("3 09:00", resolve(1)),
    ]);
    assert_eq!(row(&p, 1)["status"], "resolved");
    assert_eq!(
        row(&p, 1)["resolved_at"],
        "2026-11-03T09:00:00Z",
        "the latest"
    );
    let stats = query(&p, "tickets.stats", json!({}));
    assert_eq!(
        stats["months"]["2026-11"]["resolution_minutes"],
        json!({"count": 1, "p50": 60, "p90": 60}),
        "the first resolution counts, once"
    );
}

#[test]
fn close_from_open_and_reopen_from_closed() {
    let p = project(&[("1 09:00", open(1, Low, Question)), ("1 09:01", close(1))]);
    assert_eq!(row(&p, 1)["status"], "closed");
    assert_eq!(row(&p, 1)["closed_at"], "2026-11-01T09:01:00Z");
    assert_eq!(row(&p, 1)["resolved_at"], Value::Null);
    let stats = query(&p, "tickets.stats", json!({}));
    assert_eq!(stats["backlog"]["total"], 0);
    assert_eq!(stats["months"], json!({}), "closing is no resolution");

    let p = project(&[
        ("1 09:00", open(1, Low, Question)),
        ("1 09:01", close(1)),
        ("1 09:02", reopen(1)),
        ("1 09:03", assign(1, "ada")),
    ]);
    assert_eq!(row(&p, 1)["status"], "assigned");
    assert_eq!(row(&p, 1)["reopen_count"], 1);
}

#[test]
fn events_for_unknown_tickets_and_a_second_opening_change_nothing() {
    let p = project(&[
        ("1 09:00", assign(5, "ada")),
        ("1 09:00", answer(5)),
        ("1 09:00", resolve(5)),
        ("1 09:00", close(5)),
        ("1 09:00", reopen(5)),
        ("1 09:00", escalate(5, Low, High)),
        ("1 09:00", open(1, Low, Question)),
        ("1 10:00", open(1, Urgent, Complaint)),
    ]);
    assert_eq!(ids(&list(&p, json!({}))), vec![id(1).to_string()]);
    assert_eq!(row(&p, 1)["priority"], "low");
    assert_eq!(row(&p, 1)["opened_at"], "2026-11-01T09:00:00Z");
    assert_eq!(p, project(&[("1 09:00", open(1, Low, Question))]));
}

#[test]
fn list_filters_match_exactly() {
    let p = project(&[
        ("1 09:00", open_for(1, 100, Low, Question)),
        ("1 09:00", open_for(2, 100, High, Complaint)),
        ("1 09:00", open_for(3, 200, High, Incident)),
        ("1 09:00", open_for(4, 200, Urgent, Complaint)),
        ("1 10:00", assign(2, "ada")),
        ("1 10:00", assign(3, "grace")),
        ("1 10:00", assign(4, "ada")),
        ("1 11:00", resolve(4)),
    ]);
    let filtered = |request: Value| -> Vec<String> { ids(&list(&p, request)) };
    let these = |ns: &[u128]| -> Vec<String> { ns.iter().map(|n| id(*n).to_string()).collect() };
    assert_eq!(filtered(json!({})), these(&[1, 2, 3, 4]));
    assert_eq!(filtered(json!({"status": "open"})), these(&[1]));
    assert_eq!(filtered(json!({"status": "assigned"})), these(&[2, 3]));
    assert_eq!(filtered(json!({"status": "resolved"})), these(&[4]));
    assert_eq!(filtered(json!({"priority": "high"})), these(&[2, 3]));
    assert_eq!(filtered(json!({"assignee": "ada"})), these(&[2, 4]));
    assert_eq!(filtered(json!({"assignee": "Ada"})), these(&[]), "exact");
    assert_eq!(filtered(json!({"customer_id": id(200)})), these(&[3, 4]));
    assert_eq!(filtered(json!({"category": "complaint"})), these(&[2, 4]));
    assert_eq!(
        filtered(json!({"category": "complaint", "assignee": "ada", "status": "assigned"})),
        these(&[2])
    );
    // Explicit nulls are no filter; the envelope's fields are allowed.
    assert_eq!(filtered(json!({"status": null})), these(&[1, 2, 3, 4]));
    assert_eq!(filtered(Value::Null), these(&[1, 2, 3, 4]));
}

#[test]
fn the_cursor_pages_through_the_matching_tickets_by_id() {
    let events: Vec<(&str, Event)> = (1..=7)
        .map(|n| {
            (
                "1 09:00",
                open(n, if n % 2 == 0 { High } else { Low }, Question),
            )
        })
        .collect();
    let p = project(&events);
    let page = |request: Value| query(&p, "tickets.list", request);

    let first = page(json!({"limit": 3}));
    assert_eq!(
        ids(first["tickets"].as_array().unwrap()),
        (1..=3).map(|n| id(n).to_string()).collect::<Vec<_>>()
    );
    assert_eq!(first["next"], json!(id(3)));
    let second = page(json!({"limit": 3, "after": first["next"]}));
    assert_eq!(
        ids(second["tickets"].as_array().unwrap()),
        (4..=6).map(|n| id(n).to_string()).collect::<Vec<_>>()
    );
    let third = page(json!({"limit": 3, "after": second["next"]}));
    assert_eq!(
        ids(third["tickets"].as_array().unwrap()),
        vec![id(7).to_string()]
    );
    assert_eq!(third["next"], Value::Null, "the last page");

    // A page that ends exactly at the last match has no next.
    let exact = page(json!({"limit": 7}));
    assert_eq!(exact["next"], Value::Null);
    // With a filter, the cursor skips what does not match.
    let high = page(json!({"priority": "high", "limit": 2}));
    assert_eq!(high["next"], json!(id(4)));
    let rest = page(json!({"priority": "high", "limit": 2, "after": id(4)}));
    assert_eq!(
        ids(rest["tickets"].as_array().unwrap()),
        vec![id(6).to_string()]
    );
    assert_eq!(rest["next"], Value::Null);
    // A cursor need not be a ticket that exists.
    let after_gap = page(json!({"after": id(0)}));
    assert_eq!(after_gap["tickets"].as_array().map(Vec::len), Some(7));
}

#[test]
fn the_limit_defaults_to_50_and_is_served_as_at_most_500() {
    let events: Vec<(&str, Event)> = (1..=520)
        .map(|n| ("1 09:00", open(n, Low, Question)))
        .collect();
    let p = project(&events);
    let len = |request: Value| list(&p, request).len();
    assert_eq!(len(json!({})), 50);
    assert_eq!(len(json!({"limit": 1})), 1);
    assert_eq!(len(json!({"limit": 500})), 500);
    assert_eq!(len(json!({"limit": 100000})), 500);
    assert_eq!(len(json!({"limit": u64::MAX})), 500);
}

#[test]
fn stats_on_a_small_history() {
    let p = project(&[
        // 1: urgent, answered in 30 min, resolved after 2 h, closed.
        ("27 10:00", open(1, Urgent, Complaint)),
        ("27 10:05", assign(1, "ada")),
        ("27 10:30", answer(1)),
        ("27 12:00", resolve(1)),
        ("27 12:30", close(1)),
        // 2: high, assigned to ada, answered after 90 min, open.
        ("28 08:00", open(2, High, Incident)),
        ("28 08:10", assign(2, "ada")),
        ("28 09:30", answer(2)),
        // 3: low, unassigned, resolved without an answer after 10 min, reopened twice.
        ("28 09:00", open(3, Low, Question)),
        ("28 09:10", resolve(3)),
        ("28 10:00", reopen(3)),
        ("28 11:00", close(3)),
        ("28 12:00", reopen(3)),
        // 4: normal, grace, answered in December (opened 30 Nov 23:00, answered 1 Dec 01:00).
        ("30 23:00", open(4, Normal, Question)),
        ("30 23:01", assign(4, "grace")),
        ("31 01:00", answer(4)),
    ]);
    let stats = query(&p, "tickets.stats", json!({}));
    assert_eq!(
        stats,
        json!({
            "backlog": {
                "total": 3,
                "by_priority": {"low": 1, "normal": 1, "high": 1, "urgent": 0},
                "by_assignee": {"ada": 1, "grace": 1},
                "unassigned": 1
            },
            "months": {
                "2026-11": {
                    "first_response_minutes": {"count": 2, "p50": 30, "p90": 90},
                    "resolution_minutes": {"count": 2, "p50": 10, "p90": 120}
                },
                "2026-12": {
                    "first_response_minutes": {"count": 1, "p50": 120, "p90": 120},
                    "resolution_minutes": {"count": 0, "p50": null, "p90": null}
                }
            },
            "reopens": {"tickets_opened": 4, "tickets_reopened": 1, "reopens": 2, "reopen_rate": 0.25},
            "sla": null
        })
    );
}

#[test]
fn percentiles_are_nearest_rank_over_whole_minutes() {
    // Ten tickets answered after 10, 20, ... 100 minutes (and some seconds, rounded down).
    let mut events = Vec::new();
    let whens: Vec<String> = (1..=10)
        .map(|n| format!("2 {:02}:{:02}", 9 + n / 6, (n % 6) * 10))
        .collect();
    for n in 1..=10u128 {
        events.push(("2 09:00".to_owned(), open(n, Low, Question)));
        events.push((whens[n as usize - 1].clone(), answer(n)));
    }
    let mut log = Log::default();
    for (when, event) in &events {
        // Answers 59 seconds after the minute: still that whole minute.
        let late = if matches!(event, Event::TicketResponded(_)) {
            59_000_000
        } else {
            0
        };
        log.push(at(when).saturating_add_micros(late), event.clone());
    }
    let mut p = TicketsProjection::default();
    for envelope in &log.envelopes {
        p.apply(envelope);
    }
    let stats = query(&p, "tickets.stats", json!({}));
    assert_eq!(
        stats["months"]["2026-11"]["first_response_minutes"],
        json!({"count": 10, "p50": 50, "p90": 90})
    );

    // Three durations: p50 is the 2nd (ceil 1.5), p90 the 3rd (ceil 2.7); repeats count.
    let p = project(&[
        ("3 09:00", open(1, Low, Question)),
        ("3 09:00", open(2, Low, Question)),
        ("3 09:00", open(3, Low, Question)),
        ("3 09:05", answer(1)),
        ("3 09:05", answer(2)),
        ("3 09:09", answer(3)),
    ]);
    let stats = query(&p, "tickets.stats", json!({}));
    assert_eq!(
        stats["months"]["2026-11"]["first_response_minutes"],
        json!({"count": 3, "p50": 5, "p90": 9})
    );
}

#[test]
fn a_duration_ending_before_it_starts_counts_as_zero() {
    let p = project(&[
        ("5 09:00", open(1, Low, Question)),
        ("4 09:00", answer(1)),
        ("4 08:00", resolve(1)),
    ]);
    let stats = query(&p, "tickets.stats", json!({}));
    assert_eq!(
        stats["months"]["2026-11"]["first_response_minutes"]["p50"],
        0
    );
    assert_eq!(stats["months"]["2026-11"]["resolution_minutes"]["p90"], 0);
}

fn sla(p: &TicketsProjection, request: Value) -> Value {
    query(p, "tickets.stats", request)["sla"].clone()
}

fn breached(p: &TicketsProjection, as_of: &str) -> u64 {
    let as_of = at(as_of).to_string();
    sla(p, json!({"as_of": as_of}))["breached_total"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

#[test]
fn an_unanswered_ticket_breaches_once_as_of_passes_its_target() {
    // Urgent: 60 minutes.
    let p = project(&[("1 10:00", open(1, Urgent, Incident))]);
    assert_eq!(breached(&p, "1 10:59"), 0);
    assert_eq!(breached(&p, "1 11:00"), 0, "at the deadline is not later");
    assert_eq!(breached(&p, "1 11:01"), 1);
    assert_eq!(breached(&p, "1 09:00"), 0, "not yet opened");
    let reply = sla(&p, json!({"as_of": at("1 09:00").to_string()}));
    assert_eq!(reply["tickets"]["urgent"], 0);
}

#[test]
fn a_late_first_response_breaches_and_an_early_one_does_not() {
    let p = project(&[
        ("1 10:00", open(1, Urgent, Incident)),
        ("1 10:30", answer(1)),
        ("1 10:00", open(2, Urgent, Incident)),
        ("1 12:00", answer(2)),
    ]);
    // Ticket 1 never breaches. Ticket 2: not by 11:00; unanswered and past at 11:30; late
    // after its answer.
    assert_eq!(breached(&p, "1 10:45"), 0);
    assert_eq!(breached(&p, "1 11:00"), 0);
    assert_eq!(breached(&p, "1 11:30"), 1);
    assert_eq!(breached(&p, "1 13:00"), 1);
    assert_eq!(breached(&p, "9 13:00"), 1);
    assert_eq!(
        sla(&p, json!({"as_of": at("1 13:00").to_string()})),
        json!({
            "as_of": "2026-11-01T13:00:00Z",
            "targets_minutes": {"low": 1440, "normal": 480, "high": 240, "urgent": 60},
            "tickets": {"low": 0, "normal": 0, "high": 0, "urgent": 2},
            "breached": {"low": 0, "normal": 0, "high": 0, "urgent": 1},
            "breached_total": 1
        })
    );
}

#[test]
fn sla_targets_follow_the_priority_and_the_request_overrides() {
    let p = project(&[
        ("1 00:00", open(1, Low, Question)),
        ("1 00:00", open(2, Normal, Question)),
        ("1 00:00", open(3, High, Question)),
        ("1 00:00", open(4, Urgent, Question)),
        ("1 00:00", open(5, Low, Question)),
        ("1 00:30", escalate(5, Low, Urgent)),
    ]);
    // Defaults: urgent 60 (4 and the escalated 5), high 240, normal 480, low 1440.
    assert_eq!(breached(&p, "1 01:01"), 2);
    assert_eq!(breached(&p, "1 04:01"), 3);
    assert_eq!(breached(&p, "1 08:01"), 4);
    assert_eq!(breached(&p, "2 00:01"), 5);
    let as_of = at("1 00:45").to_string();
    let reply = sla(
        &p,
        json!({"as_of": as_of, "first_response_targets_minutes": {"urgent": 30, "low": 0}}),
    );
    assert_eq!(
        reply["targets_minutes"],
        json!({"low": 0, "normal": 480, "high": 240, "urgent": 30})
    );
    assert_eq!(
        reply["breached"],
        json!({"low": 1, "normal": 0, "high": 0, "urgent": 2})
    );
    // A huge target never overflows.
    let reply = sla(
        &p,
        json!({"as_of": as_of, "first_response_targets_minutes": {"urgent": u64::MAX}}),
    );
    assert_eq!(reply["breached"]["urgent"], 0);
}

#[test]
fn malformed_requests_say_why() {
    let p = project(&[("1 09:00", open(1, Low, Question))]);
    let list_says = |request: Value| malformed(&p, "tickets.list", request);
    let stats_says = |request: Value| malformed(&p, "tickets.stats", request);
    assert!(list_says(json!({"owner": "ada"})).contains("unknown field `owner`"));
    assert!(list_says(json!({"status": "pending"})).contains("unknown variant `pending`"));
    assert!(list_says(json!({"priority": "critical"})).contains("unknown variant `critical`"));
    assert!(list_says(json!({"category": 3})).contains("invalid type"));
    assert!(list_says(json!({"customer_id": "nope"})).contains("UUID"));
    assert!(list_says(json!({"after": "nope"})).contains("UUID"));
    assert_eq!(list_says(json!({"limit": 0})), "`limit` must be at least 1");
    assert!(list_says(json!({"limit": -1})).contains("invalid value"));
    assert!(list_says(json!({"limit": "ten"})).contains("invalid type"));
    assert!(list_says(json!({"assignee": 7})).contains("invalid type"));
    assert_eq!(list_says(json!([1])), "the request must be a JSON object");
    assert_eq!(list_says(json!("x")), "the request must be a JSON object");

    assert!(
        stats_says(json!({"as_of": "yesterday"})).contains("`yesterday` is not an RFC 3339 time")
    );
    assert!(stats_says(json!({"month": "2026-11"})).contains("unknown field `month`"));
    assert_eq!(
        stats_says(json!({"first_response_targets_minutes": {"urgent": 5}})),
        "`first_response_targets_minutes` needs `as_of`"
    );
    let as_of = "2026-11-02T00:00:00Z";
    assert!(
        stats_says(json!({"as_of": as_of, "first_response_targets_minutes": {"critical": 5}}))
            .contains("unknown variant `critical`")
    );
    assert!(
        stats_says(json!({"as_of": as_of, "first_response_targets_minutes": {"urgent": -5}}))
            .contains("invalid value")
    );
    assert!(
        stats_says(json!({"as_of": as_of, "first_response_targets_minutes": [60]}))
            .contains("invalid type")
    );
    assert!(stats_says(json!(7)).contains("JSON object"));

    assert_eq!(
        p.query("tickets.get", &json!({})),
        Err(QueryError::UnknownQuery("tickets.get".to_owned()))
    );
}

#[test]
fn the_worked_example() {
    let log = worked_example();
    let mut p = TicketsProjection::default();
    for envelope in &log.envelopes {
        p.apply(envelope);
    }
    let stats = query(&p, "tickets.stats", json!({}));
    assert_eq!(stats["backlog"]["total"], 0);
    assert_eq!(
        stats["months"]["2026-11"],
        json!({
            "first_response_minutes": {"count": 1, "p50": 30, "p90": 30},
            "resolution_minutes": {"count": 1, "p50": 120, "p90": 120}
        })
    );
    let rows = list(&p, json!({"category": "complaint"}));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "closed");
    assert_eq!(rows[0]["assignee"], "sam");
}

#[test]
fn the_store_restores_the_live_model_and_refuses_damage() {
    let events = [
        ("1 09:00", open(1, Urgent, Complaint)),
        ("1 09:30", answer(1)),
        ("1 10:00", resolve(1)),
        ("1 11:00", reopen(1)),
        ("1 09:00", open(2, Low, Question)),
        ("1 09:05", assign(2, "ada")),
    ];
    let mut log = Log::default();
    for (when, event) in &events {
        log.push(at(when), event.clone());
    }
    let mut live = TicketsProjection::default();
    let mut store = Store::default();
    feed(&mut live, &mut store, &log.envelopes, 2);
    let keys: Vec<String> = store
        .entries
        .keys()
        .map(|key| {
            String::from_utf8_lossy(key.split(|b| *b == b'/').next().unwrap_or(b"")).into_owned()
        })
        .collect();
    assert_eq!(
        keys,
        [
            "backlog_assignee",
            "first_response",
            "opened",
            "opened",
            "resolution",
            "response_delay",
            "response_delay",
            "ticket",
            "ticket",
            "totals"
        ]
    );
    let mut restored = TicketsProjection::default();
    store.restore_into(&mut restored);
    assert_eq!(restored, live);
    assert_eq!(
        restored.query("tickets.stats", &json!({"as_of": "2026-11-02T00:00:00Z"})),
        live.query("tickets.stats", &json!({"as_of": "2026-11-02T00:00:00Z"}))
    );

    let restore = |key: &[u8], value: &[u8]| {
        let mut entries = store.entries.clone();
        entries.insert(key.to_vec(), value.to_vec());
        TicketsProjection::default().restore(&mut entries.into_iter())
    };
    let ticket_key = store
        .entries
        .keys()
        .find(|k| k.starts_with(b"ticket/"))
        .cloned()
        .unwrap_or_default();
    assert!(matches!(
        restore(&ticket_key, &[1, 2, 3]),
        Err(TableError::Decode {
            table: "ticket",
            ..
        })
    ));
    assert!(matches!(
        restore(b"ticket/short", b""),
        Err(TableError::BadKey {
            table: "ticket",
            ..
        })
    ));
    assert!(matches!(
        restore(b"resolution/2026", b""),
        Err(TableError::BadKey {
            table: "resolution",
            ..
        })
    ));
    assert!(matches!(
        restore(b"agents/x", b""),
        Err(TableError::UnknownTable(_))
    ));
}

#[test]
fn name_queries_and_store_format() {
    let p = TicketsProjection::default();
    assert_eq!(p.name(), "tickets");
    assert_eq!(p.queries(), &["tickets.list", "tickets.stats"]);
    assert_eq!(p.store_format(), 2);
    assert_eq!(
        query(&p, "tickets.list", json!({})),
        json!({"tickets": [], "next": null})
    );
    assert_eq!(
        query(
            &p,
            "tickets.stats",
            json!({"as_of": "2026-11-02T00:00:00Z"})
        )["reopens"],
        json!({"tickets_opened": 0, "tickets_reopened": 0, "reopens": 0, "reopen_rate": null})
    );
}
