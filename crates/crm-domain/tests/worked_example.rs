//! The worked example at the end of `docs/DOMAIN.md`, played as commands through `decide` and
//! `evolve`; the figures it states are recomputed from the recorded events by a plain fold.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::command::*;
use crm_domain::event::CustomerRegistered;
use crm_domain::state::{Customer, Lead, Order, Ticket};
use crm_domain::types::{
    LeadSource, LeadStatus, SurveyKind, TicketCategory, TicketPriority, TicketStatus,
};
use crm_domain::{Event, State, Timestamp};
use support::*;
use uuid::Uuid;

/// The time of recording: after everything in the example happened.
const RECORDED_AT: &str = "2026-11-30T12:00:00Z";

fn lead_id(n: u128) -> Uuid {
    Uuid::from_u128(0x1ead_0000 + n)
}

const CUSTOMER_A: Uuid = Uuid::from_u128(0xc057_000a);
const CUSTOMER_B: Uuid = Uuid::from_u128(0xc057_000b);
const ORDER_A1: Uuid = Uuid::from_u128(0x0de0_00a1);
const ORDER_A2: Uuid = Uuid::from_u128(0x0de0_00a2);
const ORDER_B1: Uuid = Uuid::from_u128(0x0de0_00b1);
const COMPLAINT: Uuid = Uuid::from_u128(0x71c7_000b);

fn at(day: u32, time: &str) -> Timestamp {
    ts(&format!("2026-11-{day:02}T{time}:00Z"))
}

/// Plays the example; returns the world with every stream and the log.
fn play() -> World {
    let now = ts(RECORDED_AT);
    let mut world = World::default();

    // 1. Ten leads in November 2026: web (6) and referral (4), in the default pipeline.
    for n in 1..=10u128 {
        let source = if n <= 6 {
            LeadSource::Web
        } else {
            LeadSource::Referral
        };
        let company = match n {
            1 => some("Alpha GmbH"),
            2 => some("Beta SA"),
            _ => None,
        };
        let create = CreateLead {
            name: format!("Prospect {n}"),
            email: Some(format!("prospect{n}@example.com")),
            phone: None,
            company,
            source,
            owner: some("grace"),
            estimated_value: None,
            ..create_lead(lead_id(n))
        };
        world.accept(occurred(create, at(2, &format!("{:02}:00", 8 + n))), now);
    }

    // 2. Six advance to interest, four of those to consideration, three to decision.
    for n in 1..=6 {
        world.accept(
            occurred(advance(lead_id(n), "interest"), at(9, "10:00")),
            now,
        );
    }
    for n in 1..=4 {
        world.accept(
            occurred(advance(lead_id(n), "consideration"), at(12, "10:00")),
            now,
        );
    }
    for n in 1..=3 {
        world.accept(
            occurred(advance(lead_id(n), "decision"), at(14, "10:00")),
            now,
        );
    }

    // 3. Two won (1,000.00 and 3,000.00 EUR), each registering a new customer; one lost.
    let won_a = world.accept(
        occurred(
            WinLead {
                lead_id: lead_id(1),
                deal_value: eur(100_000),
                customer_id: Some(CUSTOMER_A),
                occurred_at: None,
            },
            at(16, "09:00"),
        ),
        now,
    );
    assert_eq!(won_a.appends.len(), 2, "the win registers customer A");
    let won_b = world.accept(
        occurred(
            WinLead {
                lead_id: lead_id(2),
                deal_value: eur(300_000),
                customer_id: Some(CUSTOMER_B),
                occurred_at: None,
            },
            at(16, "11:00"),
        ),
        now,
    );
    assert_eq!(won_b.appends.len(), 2, "the win registers customer B");
    world.accept(occurred(lose(lead_id(3)), at(16, "15:00")), now);

    // 4. Orders of 400.00 and 600.00 (A) and 1,000.00 (B); the 600.00 order refunded 100.00.
    let order = |order_id, customer_id, amount_minor| PlaceOrder {
        lead_id: None,
        ..place_order(order_id, customer_id, eur(amount_minor))
    };
    world.accept(
        occurred(order(ORDER_A1, CUSTOMER_A, 40_000), at(17, "10:00")),
        now,
    );
    world.accept(
        occurred(order(ORDER_A2, CUSTOMER_A, 60_000), at(18, "10:00")),
        now,
    );
    world.accept(
        occurred(order(ORDER_B1, CUSTOMER_B, 100_000), at(19, "10:00")),
        now,
    );
    world.accept(
        occurred(refund(ORDER_A2, eur(10_000)), at(20, "10:00")),
        now,
    );

    // 5. A answers NPS 10 and CSAT 5; B answers NPS 6 and CSAT 3.
    let answers = [
        (CUSTOMER_A, SurveyKind::Nps, 10, 1),
        (CUSTOMER_A, SurveyKind::Csat, 5, 2),
        (CUSTOMER_B, SurveyKind::Nps, 6, 3),
        (CUSTOMER_B, SurveyKind::Csat, 3, 4),
    ];
    for (customer_id, kind, score, n) in answers {
        let answer = RecordSurveyResponse {
            response_id: Uuid::from_u128(0x5e5e_0000 + n),
            ..survey(customer_id, kind, score)
        };
        world.accept(occurred(answer, at(21, "10:00")), now);
    }

    // 6. B's complaint: assigned, answered after 30 minutes, resolved after 2 hours, closed.
    let complaint = OpenTicket {
        category: TicketCategory::Complaint,
        ..open_ticket(COMPLAINT, CUSTOMER_B)
    };
    world.accept(occurred(complaint, at(23, "10:00")), now);
    world.accept(occurred(assign_ticket(COMPLAINT), at(23, "10:10")), now);
    world.accept(occurred(respond(COMPLAINT, true), at(23, "10:30")), now);
    world.accept(occurred(resolve(COMPLAINT), at(23, "12:00")), now);
    world.accept(occurred(close_ticket(COMPLAINT), at(23, "12:30")), now);
    world
}

#[test]
fn the_worked_example_leaves_leads_in_their_stages_and_statuses() {
    let world = play();
    let lead = |n| match world.state(&lead_stream(lead_id(n))) {
        State::Lead(Some(lead)) => lead,
        other => panic!("lead {n}: {other:?}"),
    };
    let expect = |n, status: LeadStatus, stage: &str| {
        let lead: Lead = lead(n);
        assert_eq!(
            (lead.status, lead.stage.as_str()),
            (status, stage),
            "lead {n}"
        );
    };
    expect(1, LeadStatus::Won, "decision");
    expect(2, LeadStatus::Won, "decision");
    expect(3, LeadStatus::Lost, "decision");
    expect(4, LeadStatus::Open, "consideration");
    for n in 5..=6 {
        expect(n, LeadStatus::Open, "interest");
    }
    for n in 7..=10 {
        expect(n, LeadStatus::Open, "awareness");
        assert_eq!(lead(n).source, LeadSource::Referral);
    }
    assert_eq!(lead(1).customer_id, Some(CUSTOMER_A));
    assert_eq!(lead(2).customer_id, Some(CUSTOMER_B));
    assert_eq!(lead(3).customer_id, None);
}

#[test]
fn the_worked_example_registers_the_customers_from_the_won_leads() {
    let world = play();
    let customer = |id| match world.state(&customer_stream(id)) {
        State::Customer(Some(customer)) => customer,
        other => panic!("customer {id}: {other:?}"),
    };
    let a: Customer = customer(CUSTOMER_A);
    assert_eq!(a.name, "Alpha GmbH");
    assert_eq!(a.email, some("prospect1@example.com"));
    assert_eq!(a.owner, some("grace"));
    assert_eq!(a.source, Some(LeadSource::Web));
    assert!(!a.churned);
    let b: Customer = customer(CUSTOMER_B);
    assert_eq!(b.name, "Beta SA");
    assert_eq!(b.email, some("prospect2@example.com"));

    let registered: Vec<(Uuid, Option<Uuid>)> = world
        .log
        .iter()
        .filter_map(|r| match &r.event {
            Event::CustomerRegistered(CustomerRegistered {
                customer_id,
                from_lead,
                ..
            }) => Some((*customer_id, *from_lead)),
            _ => None,
        })
        .collect();
    assert_eq!(
        registered,
        vec![
            (CUSTOMER_A, Some(lead_id(1))),
            (CUSTOMER_B, Some(lead_id(2)))
        ]
    );
}

#[test]
fn the_worked_example_records_orders_refunds_and_a_closed_complaint() {
    let world = play();
    let order = |id| match world.state(&crm_domain::Aggregate::Order.stream_for(id)) {
        State::Order(Some(order)) => order,
        other => panic!("order {id}: {other:?}"),
    };
    let refunded = |o: Order| (o.customer_id, o.amount, o.refunded_minor, o.cancelled);
    assert_eq!(
        refunded(order(ORDER_A1)),
        (CUSTOMER_A, eur(40_000), 0, false)
    );
    assert_eq!(
        refunded(order(ORDER_A2)),
        (CUSTOMER_A, eur(60_000), 10_000, false)
    );
    assert_eq!(
        refunded(order(ORDER_B1)),
        (CUSTOMER_B, eur(100_000), 0, false)
    );

    let ticket: Ticket = match world.state(&crm_domain::Aggregate::Ticket.stream_for(COMPLAINT)) {
        State::Ticket(Some(ticket)) => ticket,
        other => panic!("ticket: {other:?}"),
    };
    assert_eq!(ticket.status, TicketStatus::Closed);
    assert_eq!(ticket.customer_id, CUSTOMER_B);
    assert_eq!(ticket.category, TicketCategory::Complaint);
    assert_eq!(ticket.priority, TicketPriority::Normal);
    assert_eq!(ticket.assignee, some("linus"));
    assert!(ticket.first_public_response_given);
}

#[test]
fn the_worked_example_places_every_event_in_november_2026() {
    let world = play();
    assert!(world
        .log
        .iter()
        .all(|r| r.occurred_at.month().to_string() == "2026-11"));
    let times: Vec<_> = world.log.iter().map(|r| r.occurred_at).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(
        times, sorted,
        "the example is played in business-time order"
    );
}

#[test]
fn the_worked_example_figures_follow_from_the_events() {
    let world = play();
    let figures = Figures::fold(&world.log);

    // Leads and funnel.
    assert_eq!(figures.leads_by_source[&LeadSource::Web], 6);
    assert_eq!(figures.leads_by_source[&LeadSource::Referral], 4);
    assert_eq!(
        (figures.leads_won, figures.leads_created),
        (2, 10),
        "lead conversion 20%"
    );
    assert_eq!(per_mille(figures.leads_won, figures.leads_created), 200);
    let closed = figures.leads_won + figures.leads_lost;
    assert_eq!((figures.leads_won, closed), (2, 3), "win rate");
    assert_eq!(per_mille(figures.leads_won, closed), 667, "66.7%");
    let interest = figures.entered["interest"].len() as i64;
    let consideration = figures.entered["consideration"].len() as i64;
    assert_eq!(
        (consideration, interest),
        (4, 6),
        "interest -> consideration"
    );
    assert_eq!(per_mille(consideration, interest), 667, "66.7%");
    assert_eq!(figures.entered["awareness"].len(), 10);
    assert_eq!(figures.entered["decision"].len(), 3);
    assert_eq!(
        div_round_half_away(figures.deal_value_minor, figures.leads_won),
        200_000,
        "average deal value 2,000.00"
    );

    // Orders and revenue.
    let orders = figures.orders.values().filter(|o| !o.cancelled).count() as i64;
    assert_eq!(orders, 3);
    let revenue: i64 = figures.orders.values().map(|o| o.amount_minor).sum();
    let refunds: i64 = figures.orders.values().map(|o| o.refunded_minor).sum();
    assert_eq!(revenue, 200_000);
    assert_eq!(revenue - refunds, 190_000, "net revenue 1,900.00");
    assert_eq!(
        div_round_half_away(revenue - refunds, orders),
        63_333,
        "average order value 633.33"
    );
    let orders_per_customer = figures.orders_per_customer();
    let buyers = orders_per_customer.values().filter(|&&n| n >= 1).count();
    let repeat = orders_per_customer.values().filter(|&&n| n >= 2).count();
    assert_eq!((repeat, buyers), (1, 2), "repeat purchase rate 50%");
    assert_eq!(
        lifecycle_stage(orders_per_customer[&CUSTOMER_A], false),
        "repeat"
    );
    assert_eq!(
        lifecycle_stage(orders_per_customer[&CUSTOMER_B], false),
        "first_purchase"
    );

    // Surveys.
    let nps_answers = figures.nps.len() as i64;
    let promoters = figures.nps.iter().filter(|&&s| s >= 9).count() as i64;
    let detractors = figures.nps.iter().filter(|&&s| s <= 6).count() as i64;
    assert_eq!((promoters, detractors, nps_answers), (1, 1, 2));
    assert_eq!(
        div_round_half_away(promoters * 100, nps_answers)
            - div_round_half_away(detractors * 100, nps_answers),
        0,
        "NPS = 50% - 50%"
    );
    let satisfied = figures.csat.iter().filter(|&&s| s >= 4).count();
    assert_eq!((satisfied, figures.csat.len()), (1, 2), "CSAT 50%");

    // Service.
    let active = figures.active_customers.len();
    assert_eq!(
        (figures.complaints_opened, active),
        (1, 2),
        "complaint rate 50%"
    );
    let first_responses: Vec<i64> = figures
        .tickets
        .values()
        .filter_map(|t| Some(minutes_between(t.opened_at, t.first_response_at?)))
        .collect();
    assert_eq!(first_responses, vec![30], "mean first response 30 min");
    let resolutions: Vec<i64> = figures
        .tickets
        .values()
        .filter_map(|t| Some(minutes_between(t.opened_at, t.resolved_at?)))
        .collect();
    assert_eq!(resolutions, vec![120], "mean resolution 120 min");
    let backlog = figures.tickets.values().filter(|t| t.open).count();
    assert_eq!(backlog, 0, "open tickets 0");
}

#[test]
fn rounding_is_half_away_from_zero_in_minor_units() {
    assert_eq!(div_round_half_away(190_000, 3), 63_333);
    assert_eq!(div_round_half_away(200_000, 3), 66_667);
    assert_eq!(div_round_half_away(5, 2), 3);
    assert_eq!(div_round_half_away(-5, 2), -3);
    assert_eq!(div_round_half_away(-4, 3), -1);
}

// ---- the fold ----

#[derive(Debug, Default)]
struct OrderFigures {
    customer_id: Uuid,
    amount_minor: i64,
    refunded_minor: i64,
    cancelled: bool,
}

#[derive(Debug)]
struct TicketFigures {
    opened_at: Timestamp,
    first_response_at: Option<Timestamp>,
    resolved_at: Option<Timestamp>,
    /// Neither resolved nor closed.
    open: bool,
}

#[derive(Debug, Default)]
struct Figures {
    leads_created: i64,
    leads_won: i64,
    leads_lost: i64,
    leads_by_source: BTreeMap<LeadSource, i64>,
    /// Leads that entered each stage, each counted once.
    entered: BTreeMap<String, BTreeSet<Uuid>>,
    deal_value_minor: i64,
    orders: BTreeMap<Uuid, OrderFigures>,
    nps: Vec<u8>,
    csat: Vec<u8>,
    active_customers: BTreeSet<Uuid>,
    complaints_opened: i64,
    tickets: BTreeMap<Uuid, TicketFigures>,
}

impl Figures {
    fn fold(log: &[Recorded]) -> Figures {
        let mut f = Figures::default();
        for Recorded {
            occurred_at, event, ..
        } in log
        {
            let at = *occurred_at;
            match event {
                Event::LeadCreated(e) => {
                    f.leads_created += 1;
                    *f.leads_by_source.entry(e.source).or_default() += 1;
                    f.entered
                        .entry(e.stage.clone())
                        .or_default()
                        .insert(e.lead_id);
                }
                Event::FunnelStageAdvanced(e) => {
                    f.entered
                        .entry(e.to_stage.clone())
                        .or_default()
                        .insert(e.lead_id);
                }
                Event::LeadWon(e) => {
                    f.leads_won += 1;
                    f.deal_value_minor += e.deal_value.amount_minor;
                }
                Event::LeadLost(_) => f.leads_lost += 1,
                Event::CustomerRegistered(e) => {
                    f.active_customers.insert(e.customer_id);
                }
                Event::CustomerChurned(e) => {
                    f.active_customers.remove(&e.customer_id);
                }
                Event::CustomerReactivated(e) => {
                    f.active_customers.insert(e.customer_id);
                }
                Event::OrderPlaced(e) => {
                    f.orders.insert(
                        e.order_id,
                        OrderFigures {
                            customer_id: e.customer_id,
                            amount_minor: e.amount.amount_minor,
                            ..OrderFigures::default()
                        },
                    );
                }
                Event::OrderRefunded(e) => {
                    if let Some(o) = f.orders.get_mut(&e.order_id) {
                        o.refunded_minor += e.amount.amount_minor;
                    }
                }
                Event::OrderCancelled(e) => {
                    if let Some(o) = f.orders.get_mut(&e.order_id) {
                        o.cancelled = true;
                    }
                }
                Event::SurveyResponseRecorded(e) => match e.kind {
                    SurveyKind::Nps => f.nps.push(e.score),
                    SurveyKind::Csat => f.csat.push(e.score),
                },
                Event::TicketOpened(e) => {
                    if e.category == TicketCategory::Complaint {
                        f.complaints_opened += 1;
                    }
                    f.tickets.insert(
                        e.ticket_id,
                        TicketFigures {
                            opened_at: at,
                            first_response_at: None,
                            resolved_at: None,
                            open: true,
                        },
                    );
                }
                Event::TicketResponded(e) if e.first_public_response => {
                    if let Some(t) = f.tickets.get_mut(&e.ticket_id) {
                        t.first_response_at = Some(at);
                    }
                }
                Event::TicketResolved(e) => {
                    if let Some(t) = f.tickets.get_mut(&e.ticket_id) {
                        t.resolved_at = Some(at);
                        t.open = false;
                    }
                }
                Event::TicketClosed(e) => {
                    if let Some(t) = f.tickets.get_mut(&e.ticket_id) {
                        t.open = false;
                    }
                }
                Event::TicketReopened(e) => {
                    if let Some(t) = f.tickets.get_mut(&e.ticket_id) {
                        t.open = true;
                    }
                }
                _ => {}
            }
        }
        f
    }

    /// Orders that count (not cancelled) per customer.
    fn orders_per_customer(&self) -> BTreeMap<Uuid, usize> {
        let mut counts = BTreeMap::new();
        for order in self.orders.values().filter(|o| !o.cancelled) {
            *counts.entry(order.customer_id).or_default() += 1;
        }
        counts
    }
}

/// `docs/DOMAIN.md`: prospect before any order, first_purchase after 1, repeat after 2, loyal at 5+.
fn lifecycle_stage(orders: usize, churned: bool) -> &'static str {
    match (churned, orders) {
        (true, _) => "churned",
        (false, 0) => "prospect",
        (false, 1) => "first_purchase",
        (false, 2..=4) => "repeat",
        (false, _) => "loyal",
    }
}

fn minutes_between(from: Timestamp, to: Timestamp) -> i64 {
    (to.as_micros() - from.as_micros()) / crm_domain::time::MICROS_PER_MINUTE
}

/// `numerator / denominator` rounded to the nearest integer, halves away from zero.
fn div_round_half_away(numerator: i64, denominator: i64) -> i64 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if 2 * remainder.abs() >= denominator.abs() {
        quotient + numerator.signum() * denominator.signum()
    } else {
        quotient
    }
}

fn per_mille(numerator: i64, denominator: i64) -> i64 {
    div_round_half_away(numerator * 1000, denominator)
}
