//! Random valid event streams (random commands played through `decide`/`evolve` with an
//! advancing fixed clock and some backfilled `occurred_at`) give, all-time and for every month
//! present, exactly the KPIs a deliberately simple reference recomputes from the whole event
//! list; and a model restored from its store equals one fed every event directly.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::command::*;
use crm_domain::money::AMOUNT_MINOR_MAX;
use crm_domain::time::{MICROS_PER_DAY, MICROS_PER_MINUTE};
use crm_domain::types::{
    pipeline_stream, Aggregate, CampaignChannel, InteractionKind, LeadSource, OrderChannel,
    SurveyKind, TicketCategory, TicketChannel, TicketPriority,
};
use crm_domain::{decide, evolve, Command, Context, Currency, Event, Month, State, Timestamp};
use crm_proj_kpis::{KpiProjection, Period};
use crm_projector::{EventEnvelope, Projection};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use serde_json::{json, Map, Value};
use support::{assert_json_close, id, money, ts, Store};
use uuid::Uuid;

const CASES: u32 = 256;
const STEPS_MAX: usize = 200;

proptest! {
    #![proptest_config(Config { cases: CASES, ..Config::default() })]

    #[test]
    fn every_kpi_matches_a_reference_recomputed_from_the_whole_event_list(
        steps in prop::collection::vec(step(), 0..=STEPS_MAX),
        drain_every in 1usize..20,
        split_at_permille in 0usize..=1000,
    ) {
        let events = play(&steps);

        // The projection, drained every few events like the runtime's batches.
        let mut projection = KpiProjection::new();
        let mut store = Store::default();
        for (n, event) in events.iter().enumerate() {
            projection.apply(event);
            if n % drain_every == 0 {
                store.take_changes(&mut projection);
            }
        }
        store.take_changes(&mut projection);

        let mut periods = vec![Period::All];
        let months: BTreeSet<Month> = events.iter().map(|e| e.occurred_at.month()).collect();
        periods.extend(months.iter().map(|m| Period::Month(*m)));
        if let Some(last) = months.last() {
            periods.push(Period::Month(last.next()));
        }
        for period in &periods {
            let actual = projection.report(*period);
            let expected = reference(&events, *period);
            assert_json_close(&actual["kpis"], &expected, &format!("{period}"));
            prop_assert_eq!(&actual["period"], &json!(period.to_string()));
        }

        // Rebuilding in one batch writes byte-identical entries.
        let mut rebuilt = KpiProjection::new();
        for event in &events {
            rebuilt.apply(event);
        }
        let mut rebuilt_store = Store::default();
        rebuilt_store.take_changes(&mut rebuilt);
        prop_assert_eq!(&rebuilt_store, &store);

        // Restored from the store of a prefix, then fed the rest: equal to the direct fold.
        let split = events.len() * split_at_permille / 1000;
        let mut prefix = KpiProjection::new();
        for event in &events[..split] {
            prefix.apply(event);
        }
        let mut prefix_store = Store::default();
        prefix_store.take_changes(&mut prefix);
        let mut restored = prefix_store.restore();
        prop_assert_eq!(&restored, &prefix);
        for event in &events[split..] {
            restored.apply(event);
        }
        prop_assert_eq!(&restored, &projection);
        prefix_store.take_changes(&mut restored);
        prop_assert_eq!(&prefix_store, &store);
        for period in &periods {
            prop_assert_eq!(restored.report(*period), projection.report(*period));
        }
    }
}

/// Pins down that the generator produces every event a KPI reads (with a fixed seed), so the
/// property above is not vacuous.
#[test]
fn the_generated_streams_hold_every_event_the_kpis_read() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = prop::collection::vec(step(), STEPS_MAX);
    let mut seen = BTreeSet::new();
    let mut months = 0;
    let mut backfilled = 0;
    let mut ten_durations = 0;
    for _ in 0..64 {
        let steps = strategy.new_tree(&mut runner).expect("steps").current();
        let events = play(&steps);
        let (responses, resolutions) = ticket_durations(&events);
        ten_durations += usize::from(responses.len() >= 10 && resolutions.len() >= 10);
        seen.extend(events.iter().map(|e| e.event.event_type()));
        months += events
            .iter()
            .map(|e| e.occurred_at.month())
            .collect::<BTreeSet<_>>()
            .len();
        backfilled += events
            .windows(2)
            .filter(|w| w[1].occurred_at.month() < w[0].occurred_at.month())
            .count();
    }
    let wanted = [
        "LeadCreated",
        "LeadWon",
        "LeadLost",
        "LeadDisqualified",
        "CustomerRegistered",
        "CustomerProfileUpdated",
        "CustomerOwnerAssigned",
        "InteractionLogged",
        "SurveyResponseRecorded",
        "CustomerChurned",
        "CustomerReactivated",
        "OrderPlaced",
        "OrderRefunded",
        "OrderCancelled",
        "TicketOpened",
        "TicketAssigned",
        "TicketResponded",
        "TicketResolved",
        "TicketClosed",
        "TicketReopened",
        "CampaignSpendRecorded",
        "CampaignReachRecorded",
        "CampaignResponseRecorded",
    ];
    let missing: Vec<_> = wanted.iter().filter(|name| !seen.contains(*name)).collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
    assert!(months >= 64 * 3, "streams span several months: {months}");
    assert!(backfilled >= 64, "streams hold backfills: {backfilled}");
    // Enough durations that the nearest rank differs from other percentile rules.
    assert!(
        ten_durations >= 16,
        "streams with 10 durations: {ten_durations}"
    );
}

// ---- the generator: random commands through decide/evolve ----

#[derive(Debug, Clone)]
struct Step {
    /// How far the clock moves before the command.
    advance_minutes: i64,
    /// A backfill: the command happened this long before "now".
    backfill_minutes: Option<i64>,
    intent: Intent,
}

#[derive(Debug, Clone)]
enum Intent {
    CreateLead(u8, LeadSource, Option<u8>),
    Advance(u8, usize),
    Disqualify(u8),
    Win(u8, u8),
    Lose(u8),
    Register(u8, u8, Option<LeadSource>),
    UpdateProfile(u8, u8),
    AssignOwner(u8, u8),
    Interact(u8),
    Survey(u8, SurveyKind, u8),
    Churn(u8),
    Reactivate(u8),
    PlaceOrder(u8, u8, i64, bool, Option<i64>, OrderChannel, Option<u8>),
    Refund(u8, i64, bool),
    Cancel(u8),
    OpenTicket(u8, u8, TicketCategory),
    /// Opens a ticket in the past, answers it and resolves it: three commands.
    Service(u8, u8, TicketCategory, i64, i64),
    AssignTicket(u8),
    Respond(u8, bool),
    Resolve(u8),
    Close(u8),
    Reopen(u8),
    Launch(u8),
    Spend(u8, i64, bool),
    Reach(u8, u64),
    Responses(u8, u64),
    EndCampaign(u8),
}

fn of<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    select(all.to_vec())
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![3 => 0i64..240, 2 => 240i64..5_760],
        prop::option::weighted(0.15, 1i64..90 * 24 * 60),
        intent(),
    )
        .prop_map(|(advance_minutes, backfill_minutes, intent)| Step {
            advance_minutes,
            backfill_minutes,
            intent,
        })
}

fn intent() -> impl Strategy<Value = Intent> {
    let lead = || 1u8..=6;
    let customer = || 1u8..=4;
    let order = || 1u8..=8;
    let ticket = || 1u8..=24;
    let campaign = || 1u8..=2;
    // Now and then an amount at the bound, so sums pass 2^53 and the rounding of big means
    // is exercised.
    let amount = || {
        select(vec![
            1i64,
            99,
            100,
            101,
            2_500,
            40_000,
            AMOUNT_MINOR_MAX - 1,
            AMOUNT_MINOR_MAX,
        ])
    };
    prop_oneof![
        4 => (lead(), of(LeadSource::ALL), prop::option::weighted(0.2, customer()))
            .prop_map(|(l, s, c)| Intent::CreateLead(l, s, c)),
        2 => (lead(), 1usize..=3).prop_map(|(l, s)| Intent::Advance(l, s)),
        1 => lead().prop_map(Intent::Disqualify),
        3 => (lead(), customer()).prop_map(|(l, c)| Intent::Win(l, c)),
        2 => lead().prop_map(Intent::Lose),
        3 => (customer(), any::<u8>(), prop::option::of(of(LeadSource::ALL)))
            .prop_map(|(c, f, s)| Intent::Register(c, f, s)),
        2 => (customer(), any::<u8>()).prop_map(|(c, f)| Intent::UpdateProfile(c, f)),
        1 => (customer(), 1u8..=3).prop_map(|(c, o)| Intent::AssignOwner(c, o)),
        2 => customer().prop_map(Intent::Interact),
        2 => (customer(), of(SurveyKind::ALL), 0u8..=10)
            .prop_map(|(c, k, s)| Intent::Survey(c, k, s)),
        2 => customer().prop_map(Intent::Churn),
        2 => customer().prop_map(Intent::Reactivate),
        5 => (
            order(),
            customer(),
            amount(),
            prop::bool::weighted(0.25),
            prop::option::of(amount()),
            of(OrderChannel::ALL),
            prop::option::weighted(0.3, lead()),
        )
            .prop_map(|(o, c, a, usd, cost, ch, l)| Intent::PlaceOrder(o, c, a, usd, cost, ch, l)),
        2 => (order(), amount(), prop::bool::weighted(0.1))
            .prop_map(|(o, a, usd)| Intent::Refund(o, a, usd)),
        1 => order().prop_map(Intent::Cancel),
        4 => (ticket(), customer(), of(TicketCategory::ALL))
            .prop_map(|(t, c, k)| Intent::OpenTicket(t, c, k)),
        4 => (ticket(), customer(), of(TicketCategory::ALL), 0i64..600, 0i64..3_000)
            .prop_map(|(t, c, k, respond, resolve)| Intent::Service(t, c, k, respond, resolve)),
        1 => ticket().prop_map(Intent::AssignTicket),
        5 => (ticket(), prop::bool::weighted(0.7)).prop_map(|(t, p)| Intent::Respond(t, p)),
        4 => ticket().prop_map(Intent::Resolve),
        1 => ticket().prop_map(Intent::Close),
        1 => ticket().prop_map(Intent::Reopen),
        1 => campaign().prop_map(Intent::Launch),
        1 => (campaign(), amount(), prop::bool::weighted(0.3))
            .prop_map(|(c, a, usd)| Intent::Spend(c, a, usd)),
        1 => (campaign(), 1u64..500).prop_map(|(c, n)| Intent::Reach(c, n)),
        1 => (campaign(), 1u64..50).prop_map(|(c, n)| Intent::Responses(c, n)),
        1 => campaign().prop_map(Intent::EndCampaign),
    ]
}

fn lead_id(n: u8) -> Uuid {
    id(0x1000 + u128::from(n))
}
fn customer_id(n: u8) -> Uuid {
    id(0x2000 + u128::from(n))
}
fn order_id(n: u8) -> Uuid {
    id(0x3000 + u128::from(n))
}
fn ticket_id(n: u8) -> Uuid {
    id(0x4000 + u128::from(n))
}
fn campaign_id(n: u8) -> Uuid {
    id(0x5000 + u128::from(n))
}

fn cash(amount: i64, usd: bool) -> crm_domain::Money {
    money(amount, if usd { "USD" } else { "EUR" })
}

fn text(value: &str) -> String {
    value.to_owned()
}

/// The commands of one step: one, or three for [`Intent::Service`].
fn commands(intent: &Intent, n: usize, at: Option<Timestamp>, now: Timestamp) -> Vec<Command> {
    let Intent::Service(t, _, _, respond, resolve) = *intent else {
        return vec![command(intent, n, at, now)];
    };
    let minutes = |m: i64| m * MICROS_PER_MINUTE;
    let opened = at
        .unwrap_or(now)
        .saturating_add_micros(-minutes(respond.max(resolve) + 1));
    vec![
        command(intent, n, Some(opened), now),
        command(
            &Intent::Respond(t, true),
            n,
            Some(opened.saturating_add_micros(minutes(respond))),
            now,
        ),
        command(
            &Intent::Resolve(t),
            n,
            Some(opened.saturating_add_micros(minutes(resolve))),
            now,
        ),
    ]
}

fn command(intent: &Intent, n: usize, at: Option<Timestamp>, now: Timestamp) -> Command {
    const STAGES: [&str; 4] = ["awareness", "interest", "consideration", "decision"];
    let field = |flags: u8, bit: u8, value: &str| (flags & (1 << bit) != 0).then(|| text(value));
    match *intent {
        Intent::CreateLead(l, source, c) => Command::CreateLead(CreateLead {
            lead_id: lead_id(l),
            name: text("Ada"),
            email: None,
            phone: Some(text("+1 555 0100")),
            company: Some(text("Acme")),
            source,
            campaign_id: None,
            customer_id: c.map(customer_id),
            owner: None,
            estimated_value: None,
            pipeline: None,
            occurred_at: at,
        }),
        Intent::Advance(l, stage) => Command::AdvanceFunnelStage(AdvanceFunnelStage {
            lead_id: lead_id(l),
            to_stage: text(STAGES[stage]),
            allow_skip: Some(true),
            occurred_at: at,
        }),
        Intent::Disqualify(l) => Command::DisqualifyLead(DisqualifyLead {
            lead_id: lead_id(l),
            reason: text("spam"),
            occurred_at: at,
        }),
        Intent::Win(l, c) => Command::WinLead(WinLead {
            lead_id: lead_id(l),
            deal_value: cash(100_000, false),
            customer_id: Some(customer_id(c)),
            occurred_at: at,
        }),
        Intent::Lose(l) => Command::LoseLead(LoseLead {
            lead_id: lead_id(l),
            reason: text("price"),
            occurred_at: at,
        }),
        Intent::Register(c, flags, source) => Command::RegisterCustomer(RegisterCustomer {
            customer_id: customer_id(c),
            name: text("Acme"),
            email: field(flags, 0, "a@example.com"),
            phone: field(flags, 1, "+1 555 0100"),
            segment: None,
            industry: field(flags, 2, "retail"),
            region: field(flags, 3, "EU"),
            owner: field(flags, 4, "sam"),
            department: None,
            source,
            occurred_at: at,
        }),
        Intent::UpdateProfile(c, flags) => Command::UpdateCustomerProfile(UpdateCustomerProfile {
            customer_id: customer_id(c),
            name: field(flags, 5, "Acme 2"),
            email: field(flags, 0, "b@example.com"),
            phone: field(flags, 1, "+1 555 0199"),
            segment: None,
            industry: field(flags, 2, "energy"),
            region: field(flags, 3, "US"),
            occurred_at: at,
        }),
        Intent::AssignOwner(c, owner) => Command::AssignCustomerOwner(AssignCustomerOwner {
            customer_id: customer_id(c),
            owner: Some(format!("owner{owner}")),
            department: None,
            occurred_at: at,
        }),
        Intent::Interact(c) => Command::LogInteraction(LogInteraction {
            customer_id: customer_id(c),
            interaction_id: id(0x9000_0000 + n as u128),
            kind: InteractionKind::Call,
            channel: None,
            occurred_at: at.unwrap_or(now),
        }),
        Intent::Survey(c, kind, score) => Command::RecordSurveyResponse(RecordSurveyResponse {
            customer_id: customer_id(c),
            response_id: id(0x8000_0000 + n as u128),
            kind,
            score: match kind {
                SurveyKind::Nps => score,
                SurveyKind::Csat => 1 + score % 5,
            },
            comment: None,
            occurred_at: at,
        }),
        Intent::Churn(c) => Command::MarkCustomerChurned(MarkCustomerChurned {
            customer_id: customer_id(c),
            reason: text("moved"),
            occurred_at: at,
        }),
        Intent::Reactivate(c) => Command::ReactivateCustomer(ReactivateCustomer {
            customer_id: customer_id(c),
            occurred_at: at,
        }),
        Intent::PlaceOrder(o, c, amount, usd, cost, channel, l) => {
            Command::PlaceOrder(PlaceOrder {
                order_id: order_id(o),
                customer_id: customer_id(c),
                amount: cash(amount, usd),
                cost: cost.map(|cost| cash(cost, usd)),
                channel,
                lead_id: l.map(lead_id),
                occurred_at: at,
            })
        }
        Intent::Refund(o, amount, usd) => Command::RefundOrder(RefundOrder {
            order_id: order_id(o),
            amount: cash(amount, usd),
            reason: text("broken"),
            occurred_at: at,
        }),
        Intent::Cancel(o) => Command::CancelOrder(CancelOrder {
            order_id: order_id(o),
            reason: text("changed mind"),
            occurred_at: at,
        }),
        Intent::OpenTicket(t, c, category) => Command::OpenTicket(OpenTicket {
            ticket_id: ticket_id(t),
            customer_id: customer_id(c),
            subject: text("help"),
            category,
            priority: TicketPriority::Normal,
            channel: TicketChannel::Email,
            occurred_at: at,
        }),
        Intent::Service(t, c, category, _, _) => {
            command(&Intent::OpenTicket(t, c, category), n, at, now)
        }
        Intent::AssignTicket(t) => Command::AssignTicket(AssignTicket {
            ticket_id: ticket_id(t),
            assignee: text("sam"),
            occurred_at: at,
        }),
        Intent::Respond(t, public) => Command::RespondToTicket(RespondToTicket {
            ticket_id: ticket_id(t),
            responder: text("sam"),
            public,
            occurred_at: at,
        }),
        Intent::Resolve(t) => Command::ResolveTicket(ResolveTicket {
            ticket_id: ticket_id(t),
            resolution: text("fixed"),
            occurred_at: at,
        }),
        Intent::Close(t) => Command::CloseTicket(CloseTicket {
            ticket_id: ticket_id(t),
            occurred_at: at,
        }),
        Intent::Reopen(t) => Command::ReopenTicket(ReopenTicket {
            ticket_id: ticket_id(t),
            reason: text("again"),
            occurred_at: at,
        }),
        Intent::Launch(c) => Command::LaunchCampaign(LaunchCampaign {
            campaign_id: campaign_id(c),
            name: text("Spring"),
            channel: CampaignChannel::Email,
            budget: None,
            occurred_at: at,
        }),
        Intent::Spend(c, amount, usd) => Command::RecordCampaignSpend(RecordCampaignSpend {
            campaign_id: campaign_id(c),
            amount: cash(amount, usd),
            occurred_at: at,
        }),
        Intent::Reach(c, sent) => Command::RecordCampaignReach(RecordCampaignReach {
            campaign_id: campaign_id(c),
            sent,
            occurred_at: at,
        }),
        Intent::Responses(c, responses) => {
            Command::RecordCampaignResponse(RecordCampaignResponse {
                campaign_id: campaign_id(c),
                responses,
                occurred_at: at,
            })
        }
        Intent::EndCampaign(c) => Command::EndCampaign(EndCampaign {
            campaign_id: campaign_id(c),
            occurred_at: at,
        }),
    }
}

/// Plays the steps through `decide`/`evolve`; returns the accepted events as the log holds
/// them, with contiguous positions.
fn play(steps: &[Step]) -> Vec<EventEnvelope> {
    let mut now = ts("2026-09-20T08:00:00Z");
    let mut states: BTreeMap<String, State> = BTreeMap::new();
    let mut events = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        now = now.saturating_add_micros(step.advance_minutes * MICROS_PER_MINUTE);
        let at = step
            .backfill_minutes
            .map(|m| now.saturating_add_micros(-m * MICROS_PER_MINUTE));
        for command in commands(&step.intent, n, at, now) {
            decide_and_append(&command, now, &mut states, &mut events);
        }
    }
    events
}

fn state_of(states: &BTreeMap<String, State>, stream: &str) -> State {
    states.get(stream).cloned().unwrap_or_else(|| {
        State::empty(Aggregate::of_stream(stream).expect("a stream of an aggregate"))
    })
}

/// Decides `command` at `now`; appends the accepted events (a refused one changes nothing).
fn decide_and_append(
    command: &Command,
    now: Timestamp,
    states: &mut BTreeMap<String, State>,
    events: &mut Vec<EventEnvelope>,
) {
    let stream = command.stream();
    let state = state_of(states, &stream);
    let pipeline = command
        .pipeline_needed(state.lead_pipeline())
        .and_then(|name| match states.get(&pipeline_stream(&name)) {
            Some(State::Pipeline(defined)) => defined.clone(),
            _ => None,
        });
    let Ok(decision) = decide(&state, command, &Context { now, pipeline }) else {
        return;
    };
    if decision
        .appends
        .iter()
        .any(|a| a.must_be_new && state_of(states, &a.stream).exists())
    {
        return;
    }
    for append in &decision.appends {
        let mut stream_state = state_of(states, &append.stream);
        for event in &append.events {
            stream_state = evolve(stream_state, event);
            let position = events.len() as u64 + 1;
            events.push(EventEnvelope {
                position,
                stream: append.stream.clone(),
                stream_version: position,
                command_id: id(u128::from(position)),
                recorded_at: now,
                occurred_at: decision.occurred_at,
                event: event.clone(),
            });
        }
        states.insert(append.stream.clone(), stream_state);
    }
}

// ---- the reference: every figure recomputed by scanning the whole list ----

fn in_period(at: Timestamp, period: Period) -> bool {
    match period {
        Period::All => true,
        Period::Month(month) => at.month() == month,
    }
}

fn up_to_end(at: Timestamp, period: Period) -> bool {
    match period {
        Period::All => true,
        Period::Month(month) => at.month() <= month,
    }
}

fn rate(numerator: i128, denominator: i128) -> Value {
    if denominator > 0 {
        json!(numerator as f64 / denominator as f64)
    } else {
        Value::Null
    }
}

/// Halves away from zero, computed as floor(|n| / d + 1/2) with the sign put back.
fn rounded(numerator: i128, denominator: i128) -> Option<i128> {
    if denominator <= 0 {
        return None;
    }
    let magnitude = (2 * numerator.abs() + denominator) / (2 * denominator);
    Some(if numerator < 0 { -magnitude } else { magnitude })
}

/// The wire rule of a money figure (docs/NATS_API.md, "Big numbers"), restated: `name` holds
/// JSON numbers while |n| <= 2^53 - 1, else `null`; `name_exact` the decimal digits.
fn put_money(map: &mut Map<String, Value>, name: &str, entries: BTreeMap<Currency, Option<i128>>) {
    let safe = (1i128 << 53) - 1;
    let number = |v: &Option<i128>| match v {
        Some(v) if v.abs() <= safe => json!(*v as i64),
        _ => Value::Null,
    };
    let digits = |v: &Option<i128>| v.map_or(Value::Null, |v| Value::String(v.to_string()));
    map.insert(
        name.to_owned(),
        currency_object(entries.iter().map(|(c, v)| (*c, number(v))).collect()),
    );
    map.insert(
        format!("{name}_exact"),
        currency_object(entries.iter().map(|(c, v)| (*c, digits(v))).collect()),
    );
}

fn put_total(map: &mut Map<String, Value>, name: &str, total: i128) {
    let safe = (1i128 << 53) - 1;
    let number = if total <= safe {
        json!(total as i64)
    } else {
        Value::Null
    };
    map.insert(name.to_owned(), number);
    map.insert(format!("{name}_exact"), Value::String(total.to_string()));
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("built with json!({{...}})"),
    }
}

fn currency_object(entries: BTreeMap<Currency, Value>) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(c, v)| (c.to_string(), v))
            .collect(),
    )
}

/// An order as the reference sees it after the whole list.
struct RefOrder {
    at: Timestamp,
    customer: Uuid,
    currency: Currency,
    amount: i128,
    cost: i128,
    refunds: i128,
    channel: OrderChannel,
    source: Option<LeadSource>,
}

impl RefOrder {
    fn net(&self) -> i128 {
        self.amount - self.refunds
    }
}

/// Every order that was placed and never cancelled.
fn live_orders(events: &[EventEnvelope]) -> Vec<RefOrder> {
    let mut orders = Vec::new();
    for (index, envelope) in events.iter().enumerate() {
        let Event::OrderPlaced(placed) = &envelope.event else {
            continue;
        };
        let cancelled = events
            .iter()
            .any(|e| matches!(&e.event, Event::OrderCancelled(c) if c.order_id == placed.order_id));
        if cancelled {
            continue;
        }
        let refunds = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::OrderRefunded(r) if r.order_id == placed.order_id => {
                    Some(i128::from(r.amount.amount_minor))
                }
                _ => None,
            })
            .sum();
        let earlier = &events[..index];
        let lead_source = placed.lead_id.and_then(|lead| {
            earlier.iter().find_map(|e| match &e.event {
                Event::LeadCreated(c) if c.lead_id == lead => Some(c.source),
                _ => None,
            })
        });
        let customer_source = || {
            earlier.iter().find_map(|e| match &e.event {
                Event::CustomerRegistered(r) if r.customer_id == placed.customer_id => {
                    Some(r.source)
                }
                _ => None,
            })
        };
        orders.push(RefOrder {
            at: envelope.occurred_at,
            customer: placed.customer_id,
            currency: placed.amount.currency,
            amount: i128::from(placed.amount.amount_minor),
            cost: placed.cost.map_or(0, |c| i128::from(c.amount_minor)),
            refunds,
            channel: placed.channel,
            source: lead_source.or_else(|| customer_source().flatten()),
        });
    }
    orders
}

/// Sums over some orders in one currency.
#[derive(Default)]
struct RefSales {
    orders: i128,
    revenue: i128,
    net: i128,
    cost: i128,
}

/// Per currency, the sums of `orders`.
fn sales(orders: &[&RefOrder]) -> BTreeMap<Currency, RefSales> {
    let mut sales: BTreeMap<Currency, RefSales> = BTreeMap::new();
    for order in orders {
        let entry = sales.entry(order.currency).or_default();
        entry.orders += 1;
        entry.revenue += order.amount;
        entry.net += order.net();
        entry.cost += order.cost;
    }
    sales
}

fn distinct_customers(orders: &[&RefOrder], currency: Option<Currency>) -> i128 {
    orders
        .iter()
        .filter(|o| currency.is_none_or(|c| o.currency == c))
        .map(|o| o.customer)
        .collect::<BTreeSet<_>>()
        .len() as i128
}

fn count(events: &[EventEnvelope], period: Period, what: impl Fn(&Event) -> bool) -> i128 {
    events
        .iter()
        .filter(|e| in_period(e.occurred_at, period) && what(&e.event))
        .count() as i128
}

/// Active customers after every event with a month before `month` (registrations - churns +
/// reactivations: in a valid stream each is a real transition).
fn active_before(events: &[EventEnvelope], month: Month) -> i128 {
    events
        .iter()
        .filter(|e| e.occurred_at.month() < month)
        .map(|e| match &e.event {
            Event::CustomerRegistered(_) | Event::CustomerReactivated(_) => 1,
            Event::CustomerChurned(_) => -1,
            _ => 0,
        })
        .sum()
}

fn customer_of(event: &Event) -> Option<Uuid> {
    match event {
        Event::CustomerRegistered(e) => Some(e.customer_id),
        Event::CustomerProfileUpdated(e) => Some(e.customer_id),
        Event::CustomerOwnerAssigned(e) => Some(e.customer_id),
        Event::CustomerChurned(e) => Some(e.customer_id),
        Event::CustomerReactivated(e) => Some(e.customer_id),
        _ => None,
    }
}

/// Replays one customer's profile events: (event index, active, filled fields) after each.
fn customer_timeline(events: &[EventEnvelope], customer: Uuid) -> Vec<(usize, bool, u32)> {
    let mut active = false;
    let mut fields = [false; 5];
    let mut timeline = Vec::new();
    for (index, envelope) in events.iter().enumerate() {
        if customer_of(&envelope.event) != Some(customer) {
            continue;
        }
        match &envelope.event {
            Event::CustomerRegistered(e) => {
                active = true;
                fields = [
                    e.email.is_some(),
                    e.phone.is_some(),
                    e.industry.is_some(),
                    e.region.is_some(),
                    e.owner.is_some(),
                ];
            }
            Event::CustomerProfileUpdated(e) => {
                fields[0] |= e.email.is_some();
                fields[1] |= e.phone.is_some();
                fields[2] |= e.industry.is_some();
                fields[3] |= e.region.is_some();
            }
            Event::CustomerOwnerAssigned(e) => fields[4] = e.owner.is_some(),
            Event::CustomerChurned(_) => active = false,
            Event::CustomerReactivated(_) => active = true,
            _ => {}
        }
        timeline.push((index, active, fields.iter().filter(|f| **f).count() as u32));
    }
    timeline
}

fn customers(events: &[EventEnvelope]) -> BTreeSet<Uuid> {
    events
        .iter()
        .filter_map(|e| customer_of(&e.event))
        .collect()
}

/// (when it ended, microseconds) of one measured ticket duration.
type Measured = Vec<(Timestamp, u64)>;

/// Per ticket: opened -> first public response, and opened -> first resolution.
fn ticket_durations(events: &[EventEnvelope]) -> (Measured, Measured) {
    let mut responses = Vec::new();
    let mut resolutions = Vec::new();
    for envelope in events {
        let Event::TicketOpened(opened) = &envelope.event else {
            continue;
        };
        let ticket = opened.ticket_id;
        let duration = |end: Timestamp| {
            u64::try_from(end.as_micros() - envelope.occurred_at.as_micros()).unwrap_or(0)
        };
        if let Some(e) = events.iter().find(
            |e| matches!(&e.event, Event::TicketResponded(r) if r.ticket_id == ticket && r.public),
        ) {
            responses.push((e.occurred_at, duration(e.occurred_at)));
        }
        if let Some(e) = events
            .iter()
            .find(|e| matches!(&e.event, Event::TicketResolved(r) if r.ticket_id == ticket))
        {
            resolutions.push((e.occurred_at, duration(e.occurred_at)));
        }
    }
    (responses, resolutions)
}

fn duration_stats(durations: &[(Timestamp, u64)], period: Period) -> (Value, Value, i128, u128) {
    let mut values: Vec<u64> = durations
        .iter()
        .filter(|(at, _)| in_period(*at, period))
        .map(|(_, d)| *d)
        .collect();
    values.sort_unstable();
    let total: u128 = values.iter().map(|d| u128::from(*d)).sum();
    if values.is_empty() {
        return (Value::Null, Value::Null, 0, 0);
    }
    let minutes = MICROS_PER_MINUTE as f64;
    let mean = total as f64 / values.len() as f64 / minutes;
    let rank = (values.len() as f64 * 0.9).ceil() as usize;
    let p90 = values[rank - 1] as f64 / minutes;
    (json!(mean), json!(p90), values.len() as i128, total)
}

fn backlog_at_end(events: &[EventEnvelope], period: Period) -> i128 {
    let mut in_backlog: BTreeMap<Uuid, bool> = BTreeMap::new();
    let mut backlog = 0;
    for e in events {
        let (ticket, now_in) = match &e.event {
            Event::TicketOpened(t) => (t.ticket_id, true),
            Event::TicketResolved(t) => (t.ticket_id, false),
            Event::TicketClosed(t) => (t.ticket_id, false),
            Event::TicketReopened(t) => (t.ticket_id, true),
            _ => continue,
        };
        let was_in = in_backlog.insert(ticket, now_in).unwrap_or(false);
        if up_to_end(e.occurred_at, period) {
            backlog += i128::from(now_in) - i128::from(was_in);
        }
    }
    backlog
}

fn reference(events: &[EventEnvelope], period: Period) -> Value {
    let leads: BTreeMap<Uuid, (Timestamp, LeadSource)> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::LeadCreated(c) => Some((c.lead_id, (e.occurred_at, c.source))),
            _ => None,
        })
        .collect();
    let won: BTreeSet<Uuid> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::LeadWon(w) => Some(w.lead_id),
            _ => None,
        })
        .collect();
    let source_of = |lead: &Uuid| leads.get(lead).map(|(_, s)| *s);
    let created_in = |source: Option<LeadSource>| {
        leads
            .iter()
            .filter(|(_, (at, s))| in_period(*at, period) && source.is_none_or(|x| x == *s))
            .map(|(lead, _)| *lead)
            .collect::<Vec<_>>()
    };
    let closed_in = |source: Option<LeadSource>, want_won: bool| {
        count(events, period, |e| match e {
            Event::LeadWon(w) if want_won => {
                source.is_none_or(|s| source_of(&w.lead_id) == Some(s))
            }
            Event::LeadLost(l) if !want_won => {
                source.is_none_or(|s| source_of(&l.lead_id) == Some(s))
            }
            _ => false,
        })
    };
    let leads_created = created_in(None).len() as i128;
    let leads_converted = created_in(None).iter().filter(|l| won.contains(l)).count() as i128;
    let leads_won = closed_in(None, true);
    let leads_lost = closed_in(None, false);
    let cycle_micros: u128 = events
        .iter()
        .filter(|e| in_period(e.occurred_at, period))
        .filter_map(|e| match &e.event {
            Event::LeadWon(w) => leads.get(&w.lead_id).map(|(created, _)| {
                u128::try_from(e.occurred_at.as_micros() - created.as_micros()).unwrap_or(0)
            }),
            _ => None,
        })
        .sum();

    // Orders.
    let all_live = live_orders(events);
    let orders: Vec<&RefOrder> = all_live
        .iter()
        .filter(|o| in_period(o.at, period))
        .collect();
    let so_far: Vec<&RefOrder> = all_live
        .iter()
        .filter(|o| up_to_end(o.at, period))
        .collect();
    let period_sales = sales(&orders);
    let per_customer = |orders: &[&RefOrder]| {
        let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
        for o in orders {
            *counts.entry(o.customer).or_default() += 1;
        }
        counts
    };
    let counts = per_customer(&orders);
    let customers_with_orders = counts.len() as i128;
    let customers_with_repeat = counts.values().filter(|n| **n >= 2).count() as i128;
    let customers_in = |c: Currency| distinct_customers(&orders, Some(c));
    let historical = sales(&so_far);
    let customer_months = |c: Currency| -> i128 {
        match period {
            Period::All => all_live
                .iter()
                .filter(|o| o.currency == c)
                .map(|o| (o.customer, o.at.month()))
                .collect::<BTreeSet<_>>()
                .len() as i128,
            Period::Month(_) => customers_in(c),
        }
    };

    // Customers.
    let registered = count(events, period, |e| {
        matches!(e, Event::CustomerRegistered(_))
    });
    let churned = count(events, period, |e| matches!(e, Event::CustomerChurned(_)));
    let reactivated = count(events, period, |e| {
        matches!(e, Event::CustomerReactivated(_))
    });
    let newest = events.iter().map(|e| e.occurred_at).max();
    let (active_start, active_end, active_months) = match period {
        Period::Month(month) => {
            let start = active_before(events, month);
            (start, active_before(events, month.next()), start)
        }
        Period::All => {
            let end = registered - churned + reactivated;
            let mut months_sum = 0;
            if let (Some(first), Some(newest)) =
                (events.iter().map(|e| e.occurred_at.month()).min(), newest)
            {
                let mut month = first;
                while month <= newest.month() {
                    months_sum += active_before(events, month);
                    month = month.next();
                }
            }
            (0, end, months_sum)
        }
    };
    let mut fields_end = 0i128;
    let mut profiles_updated = 0i128;
    for customer in customers(events) {
        let timeline = customer_timeline(events, customer);
        let mut before = 0i128;
        let mut updated_in_period = false;
        let mut was_active = false;
        for (index, active, filled) in &timeline {
            let contribution = if *active { i128::from(*filled) } else { 0 };
            let at = events[*index].occurred_at;
            if up_to_end(at, period) {
                fields_end += contribution - before;
            }
            before = contribution;
            let change = matches!(
                events[*index].event,
                Event::CustomerProfileUpdated(_) | Event::CustomerOwnerAssigned(_)
            );
            if change && was_active && in_period(at, period) {
                updated_in_period = true;
            }
            was_active = *active;
        }
        match period {
            Period::Month(_) => profiles_updated += i128::from(updated_in_period),
            Period::All => {
                let active_now = timeline.last().is_some_and(|(_, active, _)| *active);
                let last_change = timeline
                    .iter()
                    .filter(|(index, _, _)| {
                        matches!(
                            events[*index].event,
                            Event::CustomerProfileUpdated(_) | Event::CustomerOwnerAssigned(_)
                        )
                    })
                    .map(|(index, _, _)| events[*index].occurred_at)
                    .max();
                let window_start = newest.map(|n| n.as_micros() - 30 * MICROS_PER_DAY);
                if let (true, Some(change), Some(start)) = (active_now, last_change, window_start) {
                    profiles_updated += i128::from(change.as_micros() > start);
                }
            }
        }
    }

    // Surveys, tickets, engagement, campaigns.
    let survey = |kind: SurveyKind, scores: std::ops::RangeInclusive<u8>| {
        count(
            events,
            period,
            |e| matches!(e, Event::SurveyResponseRecorded(s) if s.kind == kind && scores.contains(&s.score)),
        )
    };
    let nps_responses = survey(SurveyKind::Nps, 0..=10);
    let promoters = survey(SurveyKind::Nps, 9..=10);
    let detractors = survey(SurveyKind::Nps, 0..=6);
    let csat_responses = survey(SurveyKind::Csat, 0..=10);
    let csat_satisfied = survey(SurveyKind::Csat, 4..=5);
    let tickets_opened = count(events, period, |e| matches!(e, Event::TicketOpened(_)));
    let complaints = count(
        events,
        period,
        |e| matches!(e, Event::TicketOpened(t) if t.category == TicketCategory::Complaint),
    );
    let (responses, resolutions) = ticket_durations(events);
    let (response_mean, response_p90, response_count, response_total) =
        duration_stats(&responses, period);
    let (resolution_mean, resolution_p90, resolution_count, resolution_total) =
        duration_stats(&resolutions, period);
    let interactions = count(events, period, |e| matches!(e, Event::InteractionLogged(_)));
    let mut spend: BTreeMap<Currency, i128> = BTreeMap::new();
    let mut reach = 0i128;
    let mut campaign_responses = 0i128;
    for e in events.iter().filter(|e| in_period(e.occurred_at, period)) {
        match &e.event {
            Event::CampaignSpendRecorded(s) => {
                *spend.entry(s.amount.currency).or_default() += i128::from(s.amount.amount_minor)
            }
            Event::CampaignReachRecorded(r) => reach += i128::from(r.sent),
            Event::CampaignResponseRecorded(r) => campaign_responses += i128::from(r.responses),
            _ => {}
        }
    }

    // Money KPIs.
    let money =
        |f: &dyn Fn(&Currency, &RefSales) -> Option<i128>| -> BTreeMap<Currency, Option<i128>> {
            period_sales.iter().map(|(c, s)| (*c, f(c, s))).collect()
        };
    let growth = match period {
        Period::All => Value::Null,
        Period::Month(month) => {
            let previous: Vec<&RefOrder> = all_live
                .iter()
                .filter(|o| o.at.month() == month.previous())
                .collect();
            let before = sales(&previous);
            let currencies: BTreeSet<Currency> =
                period_sales.keys().chain(before.keys()).copied().collect();
            currency_object(
                currencies
                    .into_iter()
                    .map(|c| {
                        let now = period_sales.get(&c).map_or(0, |s| s.net);
                        let then = before.get(&c).map_or(0, |s| s.net);
                        (c, rate(now - then, then))
                    })
                    .collect(),
            )
        }
    };

    let channel_effectiveness = {
        let mut sources = Map::new();
        for source in LeadSource::ALL {
            let created = created_in(Some(*source));
            let converted = created.iter().filter(|l| won.contains(l)).count() as i128;
            let wins = closed_in(Some(*source), true);
            let losses = closed_in(Some(*source), false);
            let attributed: Vec<&RefOrder> = orders
                .iter()
                .copied()
                .filter(|o| o.source == Some(*source))
                .collect();
            let attributed_sales = sales(&attributed);
            let mut row = object(json!({
                "leads": created.len(),
                "converted": converted as i64,
                "won": wins as i64,
                "lost": losses as i64,
                "conversion_rate": rate(converted, created.len() as i128),
                "win_rate": rate(wins, wins + losses),
                "orders": attributed.len(),
            }));
            put_money(
                &mut row,
                "net_revenue",
                attributed_sales
                    .iter()
                    .map(|(c, s)| (*c, Some(s.net)))
                    .collect(),
            );
            sources.insert(source.as_str().to_owned(), Value::Object(row));
        }
        let mut channels = Map::new();
        for channel in OrderChannel::ALL {
            let of_channel: Vec<&RefOrder> = orders
                .iter()
                .copied()
                .filter(|o| o.channel == *channel)
                .collect();
            let channel_sales = sales(&of_channel);
            let mut row = object(json!({ "orders": of_channel.len() }));
            put_money(
                &mut row,
                "net_revenue",
                channel_sales
                    .iter()
                    .map(|(c, s)| (*c, Some(s.net)))
                    .collect(),
            );
            put_money(
                &mut row,
                "average_order_value",
                channel_sales
                    .iter()
                    .map(|(c, s)| (*c, rounded(s.net, s.orders)))
                    .collect(),
            );
            channels.insert(channel.as_str().to_owned(), Value::Object(row));
        }
        json!({ "by_lead_source": sources, "by_order_channel": channels })
    };

    let nps = if nps_responses > 0 {
        json!(100.0 * (promoters - detractors) as f64 / nps_responses as f64)
    } else {
        Value::Null
    };

    let mut counters = object(json!({
        "leads_created": leads_created as i64,
        "leads_converted": leads_converted as i64,
        "leads_won": leads_won as i64,
        "leads_lost": leads_lost as i64,
        "orders": orders.len(),
        "orders_by_currency": currency_object(
            period_sales.iter().map(|(c, s)| (*c, json!(s.orders as i64))).collect()
        ),
        "customers_with_orders": customers_with_orders as i64,
        "customers_with_repeat_orders": customers_with_repeat as i64,
        "customers_with_orders_by_currency": currency_object(
            period_sales.keys().map(|c| (*c, json!(customers_in(*c) as i64))).collect()
        ),
        "customer_months_with_orders_by_currency": currency_object(
            all_live
                .iter()
                .filter(|o| match period {
                    Period::All => true,
                    Period::Month(_) => in_period(o.at, period),
                })
                .map(|o| (o.currency, json!(customer_months(o.currency) as i64)))
                .collect()
        ),
        "historical_customers_with_orders": currency_object(
            historical
                .keys()
                .map(|c| (*c, json!(distinct_customers(&so_far, Some(*c)) as i64)))
                .collect()
        ),
        "customers_registered": registered as i64,
        "customers_churned": churned as i64,
        "customers_reactivated": reactivated as i64,
        "active_customers": active_end as i64,
        "active_customers_at_start": active_start as i64,
        "active_customer_months": active_months as i64,
        "profile_fields_filled": fields_end as i64,
        "profiles_updated": profiles_updated as i64,
        "profile_update_window_end": match period {
            Period::All => newest.map(|n| n.to_string()),
            Period::Month(_) => None,
        },
        "nps_responses": nps_responses as i64,
        "nps_promoters": promoters as i64,
        "nps_detractors": detractors as i64,
        "csat_responses": csat_responses as i64,
        "csat_satisfied": csat_satisfied as i64,
        "tickets_opened": tickets_opened as i64,
        "complaints_opened": complaints as i64,
        "first_responses": response_count as i64,
        "resolutions": resolution_count as i64,
        "interactions": interactions as i64,
        "campaign_reach": reach as i64,
        "campaign_responses": campaign_responses as i64,
    }));
    let c = &mut counters;
    put_total(c, "sales_cycle_micros_total", cycle_micros as i128);
    put_money(c, "refunds", money(&|_, s| Some(s.revenue - s.net)));
    put_money(c, "cost", money(&|_, s| Some(s.cost)));
    put_money(
        c,
        "historical_net_revenue",
        historical.iter().map(|(c, s)| (*c, Some(s.net))).collect(),
    );
    put_total(c, "first_response_micros_total", response_total as i128);
    put_total(c, "resolution_micros_total", resolution_total as i128);
    put_money(
        c,
        "campaign_spend",
        spend.iter().map(|(c, s)| (*c, Some(*s))).collect(),
    );

    let mut kpis = object(json!({
        "lead_conversion_rate": rate(leads_converted, leads_created),
        "win_rate": rate(leads_won, leads_won + leads_lost),
        "average_sales_cycle_days": if leads_won > 0 {
            json!(cycle_micros as f64 / leads_won as f64 / MICROS_PER_DAY as f64)
        } else {
            Value::Null
        },
        "sales_growth_rate": growth,
        "repeat_purchase_rate": rate(customers_with_repeat, customers_with_orders),
        "churn_rate": rate(churned, active_months),
        "retention_rate": rate(active_months - churned + reactivated, active_months),
        "nps": nps,
        "csat": rate(csat_satisfied, csat_responses),
        "complaint_rate": rate(complaints, active_end),
        "first_response_minutes_mean": response_mean,
        "first_response_minutes_p90": response_p90,
        "resolution_minutes_mean": resolution_mean,
        "resolution_minutes_p90": resolution_p90,
        "ticket_backlog": backlog_at_end(events, period) as i64,
        "contacts_per_customer": rate(interactions, active_end),
        "marketing_feedback_rate": rate(campaign_responses, reach),
        "channel_effectiveness": channel_effectiveness,
        "data_completeness": rate(fields_end, 5 * active_end),
        "data_update_rate": rate(profiles_updated, active_end),
        "counters": counters,
    }));
    let k = &mut kpis;
    put_money(k, "revenue", money(&|_, s| Some(s.revenue)));
    put_money(k, "net_revenue", money(&|_, s| Some(s.net)));
    put_money(
        k,
        "average_order_value",
        money(&|_, s| rounded(s.net, s.orders)),
    );
    put_money(
        k,
        "historical_clv",
        historical
            .iter()
            .map(|(c, s)| (*c, rounded(s.net, distinct_customers(&so_far, Some(*c)))))
            .collect(),
    );
    put_money(
        k,
        "predictive_clv",
        money(&|c, s| {
            if active_months > 0 && churned > 0 {
                rounded(
                    (s.net - s.cost) * active_months,
                    customer_months(*c) * churned,
                )
            } else {
                None
            }
        }),
    );
    put_money(
        k,
        "average_margin_per_customer",
        money(&|c, s| rounded(s.net - s.cost, customers_in(*c))),
    );
    put_money(
        k,
        "customer_acquisition_cost",
        spend
            .iter()
            .map(|(c, s)| (*c, rounded(*s, registered)))
            .collect(),
    );
    Value::Object(kpis)
}
