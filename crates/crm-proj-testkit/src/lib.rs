//! Test support for read models: a log of envelopes built from event structs, a store that
//! applies drained changes, random valid event streams made by `decide`/`evolve` on random
//! commands, arbitrary event streams, and the worked example of `docs/DOMAIN.md`.
//! Test support only: where a fixture cannot be built (`expect`), failing the test at once is
//! the intended outcome.

use std::collections::BTreeMap;

use crm_domain::command::*;
use crm_domain::money::AMOUNT_MINOR_MAX;
use crm_domain::state::Pipeline;
use crm_domain::types::{
    pipeline_stream, CampaignChannel, InteractionKind, LeadSource, OrderChannel, Segment,
    SurveyKind, TicketCategory, TicketChannel, TicketPriority,
};
use crm_domain::{
    decide, evolve, Aggregate, Command, Context, Currency, Event, Money, State, Timestamp,
};
use crm_projector::{Change, EventEnvelope, Projection};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use uuid::Uuid;

pub fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("a valid test time")
}

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::new("EUR").expect("EUR"))
}

pub fn usd(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::new("USD").expect("USD"))
}

/// Envelopes in position order, as the runtime feeds them.
#[derive(Debug, Default, Clone)]
pub struct Log {
    pub envelopes: Vec<EventEnvelope>,
}

impl Log {
    /// Appends `event` at business time `at`. The stream names only the aggregate: the
    /// projections read ids from the events.
    pub fn push(&mut self, at: Timestamp, event: Event) {
        let position = self.envelopes.len() as u64 + 1;
        self.envelopes.push(EventEnvelope {
            position,
            stream: format!("{}-test", event.aggregate()),
            stream_version: position,
            command_id: Uuid::from_u128(u128::from(position)),
            recorded_at: at,
            occurred_at: at,
            event,
        });
    }
}

/// A key-value store that applies drained changes, like the runtime's.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Store {
    pub entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Store {
    pub fn write(&mut self, changes: Vec<Change>) {
        assert!(
            changes.windows(2).all(|w| w[0].0 < w[1].0),
            "changes come in strictly increasing key order"
        );
        for (key, value) in changes {
            match value {
                Some(value) => self.entries.insert(key, value),
                None => self.entries.remove(&key),
            };
        }
    }

    pub fn restore_into<P: Projection>(&self, projection: &mut P) {
        let mut entries = self.entries.clone().into_iter();
        projection
            .restore(&mut entries)
            .expect("the store restores");
    }
}

/// Feeds `envelopes` to `projection`, writing its changes every `batch` events.
pub fn feed<P: Projection>(
    projection: &mut P,
    store: &mut Store,
    envelopes: &[EventEnvelope],
    batch: usize,
) {
    for chunk in envelopes.chunks(batch.max(1)) {
        for envelope in chunk {
            projection.apply(envelope);
        }
        store.write(projection.drain_changes());
    }
}

/// Runs `envelopes` in batches of `batch` through two models: one attached to a fresh
/// projection store with a row cache of `cache_bytes` (as the runtime runs it: the store is the
/// state, nothing restored), one kept in memory. After every batch both must drain the same
/// changes (the attached one's are committed to its store) and `same_answers` must hold; at
/// envelope index `restart`, if any, a fresh model is attached to the store as it is, as after
/// a restart. At the end the store holds exactly the in-memory model's rows and no read failed.
pub fn check_attached<P: Projection + Default>(
    envelopes: &[EventEnvelope],
    batch: usize,
    cache_bytes: usize,
    restart: Option<usize>,
    same_answers: impl Fn(&P, &P) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
    let dir = tempfile::tempdir().map_err(|e| fail(&e))?;
    let store = crm_projector::ProjectionStore::open(dir.path()).map_err(|e| fail(&e))?;
    let rows = store.rows(cache_bytes);
    let attach = || -> Result<P, TestCaseError> {
        let mut model = P::default();
        model.attach(&rows).map_err(|e| fail(&e))?;
        Ok(model)
    };
    let mut attached = attach()?;
    let mut resident = P::default();
    let mut resident_store = Store::default();
    let mut done = 0;
    for chunk in envelopes.chunks(batch.max(1)) {
        if restart.is_some_and(|at| done <= at && at < done + chunk.len()) {
            attached = attach()?;
        }
        for envelope in chunk {
            attached.apply(envelope);
            resident.apply(envelope);
        }
        done += chunk.len();
        let changes = attached.drain_changes();
        let resident_changes = resident.drain_changes();
        prop_assert_eq!(&changes, &resident_changes);
        resident_store.write(resident_changes);
        let position = chunk.last().map_or(0, |e| e.position);
        store
            .commit(changes, position, false)
            .map_err(|e| fail(&e))?;
        same_answers(&attached, &resident)?;
    }
    prop_assert!(rows.failure().is_none(), "{:?}", rows.failure());
    let stored: BTreeMap<Vec<u8>, Vec<u8>> = store
        .model_entries()
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&e))?;
    prop_assert!(stored == resident_store.entries, "the stored rows differ");
    Ok(())
}

/// Folds `envelopes` one by one into a fresh model with `apply`, running `check` on it after
/// every `every`-th event and at the end: for stored aggregates checked against a recount.
pub fn check_while_folding<M: Default>(
    envelopes: &[EventEnvelope],
    every: usize,
    apply: impl Fn(&mut M, &EventEnvelope),
    check: impl Fn(&M) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let mut model = M::default();
    for (n, envelope) in envelopes.iter().enumerate() {
        apply(&mut model, envelope);
        if n % every.max(1) == 0 {
            check(&model)?;
        }
    }
    check(&model)
}

/// A table key's encoding sorts like the key and decodes back to it.
pub fn key_order_holds<K: crm_projector::TableKey + std::fmt::Debug>(
    a: &K,
    b: &K,
) -> Result<(), TestCaseError> {
    let encoded = |key: &K| {
        let mut out = Vec::new();
        key.encode_key(&mut out);
        out
    };
    prop_assert_eq!(a.cmp(b), encoded(a).cmp(&encoded(b)), "{:?} vs {:?}", a, b);
    prop_assert_eq!(K::decode_key(&encoded(a)), Some(a.clone()));
    Ok(())
}

/// `same_answers` for [`check_attached`]: both models answer each of `requests` alike.
pub fn same_query_answers<'a, P: Projection>(
    requests: &'a [(&'a str, serde_json::Value)],
) -> impl Fn(&P, &P) -> Result<(), TestCaseError> + 'a {
    move |attached, resident| {
        for (name, request) in requests {
            prop_assert_eq!(
                attached.query(name, request),
                resident.query(name, request),
                "{} {}",
                name,
                request
            );
        }
        Ok(())
    }
}

// ---- random valid streams ----

/// One random command, as small numbers: the command kind, two selectors and a value.
pub type Seed = (u8, u8, u8, u16);

pub fn seeds(max: usize) -> impl Strategy<Value = Vec<Seed>> {
    prop::collection::vec((0u8..KINDS, 0u8..4, 0u8..4, any::<u16>()), 0..=max)
}

/// How often each command kind is drawn: the funnel's and the customer's commands, which need
/// their target in the right state, most often. A kind is an index into this table, in the
/// order of `Command::NAMES` and `Event::TYPES`; the tests below fail when a command is added
/// without a row here and an arm in `command` and `arbitrary_event`.
const WEIGHTS: &[(&str, u8)] = &[
    ("CreateLead", 6),
    ("UpdateLeadDetails", 2),
    ("ScoreLead", 1),
    ("AssignLead", 1),
    ("AdvanceFunnelStage", 14),
    ("RevertFunnelStage", 6),
    ("QualifyLead", 1),
    ("DisqualifyLead", 1),
    ("WinLead", 3),
    ("LoseLead", 2),
    ("RegisterCustomer", 6),
    ("UpdateCustomerProfile", 2),
    ("AssignCustomerOwner", 2),
    ("AddContact", 3),
    ("RemoveContact", 3),
    ("LogInteraction", 2),
    ("RecordSurveyResponse", 3),
    ("MarkCustomerChurned", 2),
    ("ReactivateCustomer", 2),
    ("PlaceOrder", 6),
    ("RefundOrder", 3),
    ("CancelOrder", 2),
    ("OpenTicket", 4),
    ("AssignTicket", 2),
    ("RespondToTicket", 1),
    ("EscalateTicket", 1),
    ("ResolveTicket", 2),
    ("CloseTicket", 2),
    ("ReopenTicket", 1),
    ("LaunchCampaign", 1),
    ("RecordCampaignSpend", 1),
    ("RecordCampaignReach", 1),
    ("RecordCampaignResponse", 1),
    ("EndCampaign", 1),
    ("DefinePipeline", 2),
];
const KINDS: u8 = {
    let mut total = 0;
    let mut n = 0;
    while n < WEIGHTS.len() {
        total += WEIGHTS[n].1;
        n += 1;
    }
    total
};

/// The command kind a drawn number stands for.
fn weighted(mut drawn: u8) -> u8 {
    for (kind, (_, weight)) in WEIGHTS.iter().enumerate() {
        if drawn < *weight {
            return kind as u8;
        }
        drawn -= weight;
    }
    WEIGHTS.len() as u8 - 1
}

/// The clock of the generated streams: starts late in October 2026, six hours per command,
/// so streams cross month boundaries.
pub const CLOCK_START: &str = "2026-10-25T08:00:00Z";
pub const CLOCK_STEP_MICROS: i64 = 6 * 3_600 * 1_000_000;

/// Plays the seeds as commands through `decide` and `evolve`; returns the accepted events
/// as envelopes with contiguous positions.
pub fn valid_stream(seeds: &[Seed]) -> Vec<EventEnvelope> {
    play(seeds.len(), |n, now| {
        (command(seeds[n], now), Some(seeds[n].3))
    })
}

/// Plays `steps` commands through `decide` and `evolve` on the generated clock and keeps the
/// accepted events. `step(n, now)` gives the n-th command and, for a stage change, the value
/// that aims it (see [`aim_stage_change`]).
fn play(
    steps: usize,
    mut step: impl FnMut(usize, Timestamp) -> (Command, Option<u16>),
) -> Vec<EventEnvelope> {
    let mut now = ts(CLOCK_START);
    let mut states: BTreeMap<String, State> = BTreeMap::new();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    let mut envelopes = Vec::new();
    for n in 0..steps {
        now = now.saturating_add_micros(CLOCK_STEP_MICROS);
        let (mut command, aim) = step(n, now);
        let state = state_of(&states, &command.stream());
        let pipeline = command
            .pipeline_needed(state.lead_pipeline())
            .and_then(|name| match states.get(&pipeline_stream(&name)) {
                Some(State::Pipeline(defined)) => defined.clone(),
                _ => None,
            });
        if let Some(value) = aim {
            aim_stage_change(&mut command, &state, pipeline.as_ref(), value);
        }
        let Ok(decision) = decide(&state, &command, &Context { now, pipeline }) else {
            continue;
        };
        if decision
            .appends
            .iter()
            .any(|a| a.must_be_new && state_of(&states, &a.stream).exists())
        {
            continue;
        }
        for append in &decision.appends {
            let mut stream_state = state_of(&states, &append.stream);
            for event in &append.events {
                stream_state = evolve(stream_state, event);
                let version = versions.entry(append.stream.clone()).or_default();
                *version += 1;
                envelopes.push(EventEnvelope {
                    position: envelopes.len() as u64 + 1,
                    stream: append.stream.clone(),
                    stream_version: *version,
                    command_id: Uuid::from_u128(n as u128 + 1),
                    recorded_at: now,
                    occurred_at: decision.occurred_at,
                    event: event.clone(),
                });
            }
            states.insert(append.stream.clone(), stream_state);
        }
    }
    envelopes
}

/// Mostly aims a stage change at a stage it may go to (the next one, a later one when
/// skipping, an earlier one when reverting), so funnels get deep; now and then leaves the
/// random target, which the domain refuses.
fn aim_stage_change(command: &mut Command, state: &State, defined: Option<&Pipeline>, value: u16) {
    let State::Lead(Some(lead)) = state else {
        return;
    };
    let Some(pipeline) = Pipeline::effective(&lead.pipeline, defined) else {
        return;
    };
    if value.is_multiple_of(7) {
        return;
    }
    let current = pipeline.index_of(&lead.stage);
    let pick = |range: std::ops::Range<usize>| {
        (!range.is_empty())
            .then(|| pipeline.stages[range.start + usize::from(value) % range.len()].clone())
    };
    match command {
        Command::AdvanceFunnelStage(c) => {
            let next = current.map_or(0, |i| i + 1);
            let target = if c.allow_skip == Some(true) {
                pick(next..pipeline.stages.len())
            } else {
                pick(next..(next + 1).min(pipeline.stages.len()))
            };
            if let Some(target) = target {
                c.to_stage = target;
            }
        }
        Command::RevertFunnelStage(c) => {
            if let Some(target) = current.and_then(|i| pick(0..i)) {
                c.to_stage = target;
            }
        }
        _ => {}
    }
}

fn state_of(states: &BTreeMap<String, State>, stream: &str) -> State {
    states.get(stream).cloned().unwrap_or_else(|| {
        State::empty(Aggregate::of_stream(stream).expect("a stream with an aggregate prefix"))
    })
}

const STAGES: [&str; 8] = [
    "awareness",
    "interest",
    "consideration",
    "decision",
    "demo",
    "proposal",
    "closing",
    "lead",
];
const PIPELINES: [&[&str]; 3] = [
    &["awareness", "interest", "consideration", "decision"],
    &["awareness", "demo", "proposal", "decision", "closing"],
    &["lead", "demo", "closing"],
];

fn pick<T: Copy>(all: &[T], n: impl Into<u64>) -> T {
    all[(n.into() % all.len() as u64) as usize]
}

fn text(n: impl Into<u64>) -> String {
    pick(&["Ada", "Acme Ltd", "Grace", "Zoë & Co"], n).to_owned()
}

/// An amount for a command: now and then the largest one `validate` takes, to reach the
/// sums' edges, and the one just above it, which `decide` refuses.
fn money(value: u16, selector: u8) -> Money {
    let amount = match value % 251 {
        250 => AMOUNT_MINOR_MAX,
        249 => AMOUNT_MINOR_MAX + 1,
        _ => i64::from(value) * 100 + 1,
    };
    in_currency(amount, selector)
}

/// An amount for an arbitrary event (never validated): now and then `i64::MAX`, which only a
/// log written before the bound can hold, so the folds stay exact even then.
fn raw_money(value: u16, selector: u8) -> Money {
    let amount = if value % 251 == 250 {
        i64::MAX
    } else {
        i64::from(value) * 100 + 1
    };
    in_currency(amount, selector)
}

fn in_currency(amount: i64, selector: u8) -> Money {
    if selector == 3 {
        usd(amount)
    } else {
        eur(amount)
    }
}

fn maybe<T>(flag: bool, value: T) -> Option<T> {
    flag.then_some(value)
}

/// Mostly the time of recording; now and then a backfill up to 9 days back.
fn occurred_at(value: u16, now: Timestamp) -> Option<Timestamp> {
    value
        .is_multiple_of(11)
        .then(|| now.saturating_add_micros(-i64::from(value % 9) * 86_400_000_000))
}

/// Maps a seed to a command over a pool of four ids per aggregate.
pub fn command((kind, a, b, value): Seed, now: Timestamp) -> Command {
    let kind = weighted(kind);
    let target = id(u128::from(a) + 1);
    let other = id(u128::from(b) + 1);
    let at = occurred_at(value, now);
    let bit = |n: u16| value & (1 << n) != 0;
    match kind {
        0 => Command::CreateLead(CreateLead {
            lead_id: target,
            name: text(value),
            email: maybe(bit(1), "lead@example.com".to_owned()),
            phone: None,
            company: maybe(bit(2), "Acme Ltd".to_owned()),
            source: pick(LeadSource::ALL, value),
            campaign_id: None,
            customer_id: maybe(b == 0, id(u128::from(value % 4) + 1)),
            owner: maybe(bit(3), "ann".to_owned()),
            estimated_value: maybe(b != 2, money(value, b)),
            pipeline: maybe(value % 5 == 0, "sales".to_owned()),
            occurred_at: at,
        }),
        1 => Command::UpdateLeadDetails(UpdateLeadDetails {
            lead_id: target,
            name: maybe(bit(1), text(value >> 2)),
            email: None,
            phone: None,
            company: None,
            estimated_value: maybe(bit(2), money(value, b)),
            occurred_at: at,
        }),
        2 => Command::ScoreLead(ScoreLead {
            lead_id: target,
            score: (value % 101) as u8,
            reason: None,
            occurred_at: at,
        }),
        3 => Command::AssignLead(AssignLead {
            lead_id: target,
            owner: pick(&["ann", "bob"], b).to_owned(),
            occurred_at: at,
        }),
        4 => Command::AdvanceFunnelStage(AdvanceFunnelStage {
            lead_id: target,
            to_stage: pick(&STAGES, value).to_owned(),
            allow_skip: maybe(bit(4), true),
            occurred_at: at,
        }),
        5 => Command::RevertFunnelStage(RevertFunnelStage {
            lead_id: target,
            to_stage: pick(&STAGES, value).to_owned(),
            reason: "back".to_owned(),
            occurred_at: at,
        }),
        6 => Command::QualifyLead(QualifyLead {
            lead_id: target,
            occurred_at: at,
        }),
        7 => Command::DisqualifyLead(DisqualifyLead {
            lead_id: target,
            reason: "spam".to_owned(),
            occurred_at: at,
        }),
        8 => Command::WinLead(WinLead {
            lead_id: target,
            deal_value: money(value, b),
            customer_id: maybe(b != 1, other),
            occurred_at: at,
        }),
        9 => Command::LoseLead(LoseLead {
            lead_id: target,
            reason: "price".to_owned(),
            occurred_at: at,
        }),
        10 => Command::RegisterCustomer(RegisterCustomer {
            customer_id: target,
            name: text(value),
            email: maybe(bit(1), "c@example.com".to_owned()),
            phone: maybe(bit(2), "+1 555 0100".to_owned()),
            segment: maybe(bit(3), pick(Segment::ALL, value)),
            industry: maybe(bit(4), "retail".to_owned()),
            region: maybe(bit(5), "emea".to_owned()),
            owner: maybe(bit(6), pick(&["ann", "bob"], b).to_owned()),
            department: maybe(bit(7), "sales".to_owned()),
            source: maybe(bit(8), pick(LeadSource::ALL, value)),
            occurred_at: at,
        }),
        11 => Command::UpdateCustomerProfile(UpdateCustomerProfile {
            customer_id: target,
            name: maybe(bit(1), text(value >> 3)),
            email: maybe(bit(2), "new@example.com".to_owned()),
            phone: None,
            segment: maybe(bit(3), pick(Segment::ALL, value >> 4)),
            industry: maybe(bit(4), "energy".to_owned()),
            region: maybe(bit(5), "apac".to_owned()),
            occurred_at: at,
        }),
        12 => Command::AssignCustomerOwner(AssignCustomerOwner {
            customer_id: target,
            owner: maybe(b != 0, pick(&["ann", "bob", "cy"], value).to_owned()),
            department: maybe(b != 1, pick(&["sales", "support"], value).to_owned()),
            occurred_at: at,
        }),
        13 => Command::AddContact(AddContact {
            customer_id: target,
            contact_id: id(u128::from(b % 2) + 1),
            name: text(value),
            role: None,
            email: None,
            phone: None,
            occurred_at: at,
        }),
        14 => Command::RemoveContact(RemoveContact {
            customer_id: target,
            contact_id: id(u128::from(b % 2) + 1),
            occurred_at: at,
        }),
        15 => Command::LogInteraction(LogInteraction {
            customer_id: target,
            interaction_id: id(u128::from(value)),
            kind: pick(InteractionKind::ALL, value),
            channel: None,
            occurred_at: at.unwrap_or(now),
        }),
        16 => Command::RecordSurveyResponse(RecordSurveyResponse {
            customer_id: target,
            response_id: id(u128::from(value)),
            kind: pick(SurveyKind::ALL, b),
            score: (value % 11) as u8,
            comment: None,
            occurred_at: at,
        }),
        17 => Command::MarkCustomerChurned(MarkCustomerChurned {
            customer_id: target,
            reason: "moved".to_owned(),
            occurred_at: at,
        }),
        18 => Command::ReactivateCustomer(ReactivateCustomer {
            customer_id: target,
            occurred_at: at,
        }),
        19 => Command::PlaceOrder(PlaceOrder {
            order_id: target,
            customer_id: other,
            amount: money(value, b),
            cost: maybe(bit(1), money(value / 3, b)),
            channel: pick(OrderChannel::ALL, value),
            lead_id: None,
            occurred_at: at,
        }),
        20 => Command::RefundOrder(RefundOrder {
            order_id: target,
            amount: money(value % 40, b),
            reason: "broken".to_owned(),
            occurred_at: at,
        }),
        21 => Command::CancelOrder(CancelOrder {
            order_id: target,
            reason: "mistake".to_owned(),
            occurred_at: at,
        }),
        22 => Command::OpenTicket(OpenTicket {
            ticket_id: target,
            customer_id: other,
            subject: text(value),
            category: pick(TicketCategory::ALL, value),
            priority: pick(TicketPriority::ALL, value >> 2),
            channel: pick(TicketChannel::ALL, value >> 4),
            occurred_at: at,
        }),
        23 => Command::AssignTicket(AssignTicket {
            ticket_id: target,
            assignee: "sam".to_owned(),
            occurred_at: at,
        }),
        24 => Command::RespondToTicket(RespondToTicket {
            ticket_id: target,
            responder: "sam".to_owned(),
            public: bit(1),
            occurred_at: at,
        }),
        25 => Command::EscalateTicket(EscalateTicket {
            ticket_id: target,
            priority: pick(TicketPriority::ALL, value),
            occurred_at: at,
        }),
        26 => Command::ResolveTicket(ResolveTicket {
            ticket_id: target,
            resolution: "fixed".to_owned(),
            occurred_at: at,
        }),
        27 => Command::CloseTicket(CloseTicket {
            ticket_id: target,
            occurred_at: at,
        }),
        28 => Command::ReopenTicket(ReopenTicket {
            ticket_id: target,
            reason: "again".to_owned(),
            occurred_at: at,
        }),
        29 => Command::LaunchCampaign(LaunchCampaign {
            campaign_id: target,
            name: text(value),
            channel: pick(CampaignChannel::ALL, value),
            budget: None,
            occurred_at: at,
        }),
        30 => Command::RecordCampaignSpend(RecordCampaignSpend {
            campaign_id: target,
            amount: money(value, b),
            occurred_at: at,
        }),
        31 => Command::RecordCampaignReach(RecordCampaignReach {
            campaign_id: target,
            sent: u64::from(value),
            occurred_at: at,
        }),
        32 => Command::RecordCampaignResponse(RecordCampaignResponse {
            campaign_id: target,
            responses: u64::from(value),
            occurred_at: at,
        }),
        33 => Command::EndCampaign(EndCampaign {
            campaign_id: target,
            occurred_at: at,
        }),
        _ => Command::DefinePipeline(DefinePipeline {
            pipeline: pick(&["default", "sales"], b).to_owned(),
            stages: pick(&PIPELINES, value)
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            occurred_at: at,
        }),
    }
}

// ---- streams near the money bound ----

/// One command of a stream near the money bound: a kind, a target (0..=63) and how far below
/// [`AMOUNT_MINOR_MAX`] the amount is (0 most often: exactly at the bound).
pub type BigSeed = (u8, u8, u16);

/// Seeds for [`big_money_stream`]: mostly orders and leads at or just below the bound, with
/// refunds (small and large), cancellations, wins and campaign spend mixed in.
pub fn big_seeds(max: usize) -> impl Strategy<Value = Vec<BigSeed>> {
    let below = prop_oneof![3 => Just(0u16), 1 => Just(1u16), 1 => any::<u16>()];
    prop::collection::vec((0u8..8, 0u8..64, below), 0..=max)
}

/// The customers every [`big_money_stream`] registers first: `id(1)`, `id(2)`, `id(3)`.
pub const BIG_CUSTOMERS: [u128; 3] = [1, 2, 3];

/// Plays the seeds as valid commands (through `decide` and `evolve`, so refunds never exceed
/// their order) with amounts at or near [`AMOUNT_MINOR_MAX`]; orders go to the three
/// [`BIG_CUSTOMERS`], registered first, in EUR (and USD for targets of 48 and up). Order,
/// lead and campaign ids are `id(1000 + target)`, `id(2000 + target)`, `id(3000 + target)`.
pub fn big_money_stream(seeds: &[BigSeed]) -> Vec<EventEnvelope> {
    let registrations = BIG_CUSTOMERS.iter().map(|n| {
        Command::RegisterCustomer(RegisterCustomer {
            customer_id: id(*n),
            name: text(*n as u64),
            email: None,
            phone: None,
            segment: None,
            industry: None,
            region: None,
            owner: None,
            department: None,
            source: Some(LeadSource::Web),
            occurred_at: None,
        })
    });
    let commands: Vec<Command> = registrations
        .chain(seeds.iter().map(|seed| big_command(*seed)))
        .collect();
    decided_stream(&commands)
}

fn big_command((kind, target, below): BigSeed) -> Command {
    let amount = in_currency(
        AMOUNT_MINOR_MAX - i64::from(below),
        u8::from(target >= 48) * 3,
    );
    let customer = id(BIG_CUSTOMERS[usize::from(target) % BIG_CUSTOMERS.len()]);
    let order = id(1000 + u128::from(target));
    let lead = id(2000 + u128::from(target));
    let campaign = id(3000 + u128::from(target % 2));
    match kind {
        0 | 1 => Command::PlaceOrder(PlaceOrder {
            order_id: order,
            customer_id: customer,
            amount,
            cost: (below % 3 == 1).then_some(Money::new(amount.amount_minor / 2, amount.currency)),
            channel: pick(OrderChannel::ALL, target),
            lead_id: None,
            occurred_at: None,
        }),
        2 => Command::RefundOrder(RefundOrder {
            order_id: order,
            // A small refund, or most of the order.
            amount: if below % 2 == 0 {
                Money::new(i64::from(below) + 1, amount.currency)
            } else {
                amount
            },
            reason: "refund".into(),
            occurred_at: None,
        }),
        3 => Command::CancelOrder(CancelOrder {
            order_id: order,
            reason: "cancelled".into(),
            occurred_at: None,
        }),
        4 => Command::CreateLead(CreateLead {
            lead_id: lead,
            name: text(target),
            email: None,
            phone: None,
            company: None,
            source: pick(LeadSource::ALL, target),
            campaign_id: None,
            customer_id: Some(customer),
            owner: None,
            estimated_value: Some(amount),
            pipeline: None,
            occurred_at: None,
        }),
        5 => Command::WinLead(WinLead {
            lead_id: lead,
            deal_value: amount,
            customer_id: Some(customer),
            occurred_at: None,
        }),
        6 => Command::LaunchCampaign(LaunchCampaign {
            campaign_id: campaign,
            name: text(target),
            channel: CampaignChannel::Email,
            budget: Some(amount),
            occurred_at: None,
        }),
        _ => Command::RecordCampaignSpend(RecordCampaignSpend {
            campaign_id: campaign,
            amount,
            occurred_at: None,
        }),
    }
}

/// Plays commands through `decide` and `evolve` on the generated clock, keeping what is
/// accepted (stage changes are not aimed).
pub fn decided_stream(commands: &[Command]) -> Vec<EventEnvelope> {
    play(commands.len(), |n, _| (commands[n].clone(), None))
}

// ---- arbitrary (not necessarily valid) streams ----

/// Events straight from seeds, without `decide`: unknown ids, closed leads moving, refunds
/// of cancelled orders, stages outside any pipeline, business times going backwards.
pub fn arbitrary_stream(seeds: &[Seed]) -> Vec<EventEnvelope> {
    let mut log = Log::default();
    let mut now = ts(CLOCK_START);
    for seed in seeds {
        now = now.saturating_add_micros(CLOCK_STEP_MICROS);
        let at = occurred_at(seed.3, now).unwrap_or(now);
        log.push(at, arbitrary_event(*seed));
    }
    log.envelopes
}

fn arbitrary_event((kind, a, b, value): Seed) -> Event {
    let kind = weighted(kind);
    use crm_domain::event::*;
    use crm_domain::types::TicketPriority as P;
    let target = id(u128::from(a) + 1);
    let other = id(u128::from(b) + 1);
    let stage = pick(&STAGES, value).to_owned();
    let pipeline = pick(&["default", "sales", "nowhere"], b).to_owned();
    match kind {
        0 => Event::LeadCreated(LeadCreated {
            lead_id: target,
            name: text(value),
            email: None,
            phone: None,
            company: None,
            source: pick(LeadSource::ALL, value),
            campaign_id: None,
            customer_id: maybe(b < 2, other),
            owner: None,
            estimated_value: maybe(b != 2, raw_money(value, b)),
            pipeline,
            stage,
        }),
        1 => Event::LeadDetailsUpdated(LeadDetailsUpdated {
            lead_id: target,
            name: None,
            email: None,
            phone: None,
            company: None,
            estimated_value: Some(raw_money(value, b)),
        }),
        2 => Event::LeadScored(LeadScored {
            lead_id: target,
            score: 50,
            reason: None,
        }),
        3 => Event::LeadAssigned(LeadAssigned {
            lead_id: target,
            previous_owner: None,
            owner: "ann".to_owned(),
        }),
        4 => Event::FunnelStageAdvanced(FunnelStageAdvanced {
            lead_id: target,
            pipeline,
            from_stage: pick(&STAGES, value >> 3).to_owned(),
            to_stage: stage,
        }),
        5 => Event::FunnelStageReverted(FunnelStageReverted {
            lead_id: target,
            pipeline,
            from_stage: pick(&STAGES, value >> 3).to_owned(),
            to_stage: stage,
            reason: "back".to_owned(),
        }),
        6 => Event::LeadQualified(LeadQualified { lead_id: target }),
        7 => Event::LeadDisqualified(LeadDisqualified {
            lead_id: target,
            reason: "spam".to_owned(),
        }),
        8 => Event::LeadWon(LeadWon {
            lead_id: target,
            deal_value: raw_money(value, b),
            customer_id: other,
            new_customer: b == 0,
        }),
        9 => Event::LeadLost(LeadLost {
            lead_id: target,
            reason: "price".to_owned(),
        }),
        10 => Event::CustomerRegistered(CustomerRegistered {
            customer_id: target,
            name: text(value),
            email: maybe(value & 1 != 0, "c@example.com".to_owned()),
            phone: None,
            segment: maybe(value & 2 != 0, pick(Segment::ALL, value)),
            industry: None,
            region: None,
            owner: maybe(value & 4 != 0, "ann".to_owned()),
            department: None,
            source: None,
            from_lead: maybe(b == 0, other),
        }),
        11 => Event::CustomerProfileUpdated(CustomerProfileUpdated {
            customer_id: target,
            name: None,
            email: None,
            phone: Some("+1 555 0100".to_owned()),
            segment: None,
            industry: Some("retail".to_owned()),
            region: None,
        }),
        12 => Event::CustomerOwnerAssigned(CustomerOwnerAssigned {
            customer_id: target,
            previous_owner: None,
            previous_department: None,
            owner: maybe(b != 0, "bob".to_owned()),
            department: None,
        }),
        13 => Event::ContactAdded(ContactAdded {
            customer_id: target,
            contact_id: other,
            name: text(value),
            role: None,
            email: None,
            phone: None,
        }),
        14 => Event::ContactRemoved(ContactRemoved {
            customer_id: target,
            contact_id: other,
        }),
        15 => Event::InteractionLogged(InteractionLogged {
            customer_id: target,
            interaction_id: id(u128::from(value)),
            kind: pick(InteractionKind::ALL, value),
            channel: None,
        }),
        16 => Event::SurveyResponseRecorded(SurveyResponseRecorded {
            customer_id: target,
            response_id: id(u128::from(value)),
            kind: pick(SurveyKind::ALL, b),
            score: (value % 256) as u8,
            comment: None,
        }),
        17 => Event::CustomerChurned(CustomerChurned {
            customer_id: target,
            reason: "moved".to_owned(),
        }),
        18 => Event::CustomerReactivated(CustomerReactivated {
            customer_id: target,
        }),
        19 => Event::OrderPlaced(OrderPlaced {
            order_id: target,
            customer_id: other,
            amount: raw_money(value, b),
            cost: maybe(value & 1 != 0, raw_money(value / 3, b ^ 3)),
            channel: pick(OrderChannel::ALL, value),
            lead_id: None,
        }),
        20 => Event::OrderRefunded(OrderRefunded {
            order_id: target,
            customer_id: other,
            amount: raw_money(value, b),
            reason: "broken".to_owned(),
        }),
        21 => Event::OrderCancelled(OrderCancelled {
            order_id: target,
            customer_id: other,
            reason: "mistake".to_owned(),
        }),
        22 => Event::TicketOpened(TicketOpened {
            ticket_id: target,
            customer_id: other,
            subject: text(value),
            category: pick(TicketCategory::ALL, value),
            priority: pick(P::ALL, value),
            channel: pick(TicketChannel::ALL, value),
        }),
        23 => Event::TicketAssigned(TicketAssigned {
            ticket_id: target,
            assignee: "sam".to_owned(),
        }),
        24 => Event::TicketResponded(TicketResponded {
            ticket_id: target,
            responder: "sam".to_owned(),
            public: true,
            first_public_response: b == 0,
        }),
        25 => Event::TicketEscalated(TicketEscalated {
            ticket_id: target,
            from_priority: P::Low,
            priority: pick(P::ALL, value),
        }),
        26 => Event::TicketResolved(TicketResolved {
            ticket_id: target,
            resolution: "fixed".to_owned(),
        }),
        27 => Event::TicketClosed(TicketClosed { ticket_id: target }),
        28 => Event::TicketReopened(TicketReopened {
            ticket_id: target,
            reason: "again".to_owned(),
        }),
        29 => Event::CampaignLaunched(CampaignLaunched {
            campaign_id: target,
            name: text(value),
            channel: pick(CampaignChannel::ALL, value),
            budget: None,
        }),
        30 => Event::CampaignSpendRecorded(CampaignSpendRecorded {
            campaign_id: target,
            amount: raw_money(value, b),
        }),
        31 => Event::CampaignReachRecorded(CampaignReachRecorded {
            campaign_id: target,
            sent: u64::from(value),
        }),
        32 => Event::CampaignResponseRecorded(CampaignResponseRecorded {
            campaign_id: target,
            responses: u64::from(value),
        }),
        33 => Event::CampaignEnded(CampaignEnded {
            campaign_id: target,
        }),
        _ => Event::PipelineDefined(PipelineDefined {
            pipeline: pick(&["default", "sales"], b).to_owned(),
            stages: pick(&PIPELINES, value)
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }),
    }
}

// ---- the worked example of docs/DOMAIN.md ----

pub const CUSTOMER_A: Uuid = Uuid::from_u128(0xc057_000a);
pub const CUSTOMER_B: Uuid = Uuid::from_u128(0xc057_000b);
pub const ORDER_A1: Uuid = Uuid::from_u128(0x0de0_00a1);
pub const ORDER_A2: Uuid = Uuid::from_u128(0x0de0_00a2);
pub const ORDER_B1: Uuid = Uuid::from_u128(0x0de0_00b1);
pub const COMPLAINT: Uuid = Uuid::from_u128(0x71c7_000b);
/// Each of the ten leads is estimated at this much.
pub const LEAD_ESTIMATE_MINOR: i64 = 50_000;

pub fn example_lead(n: u128) -> Uuid {
    Uuid::from_u128(0x1ead_0000 + n)
}

/// `docs/DOMAIN.md`'s worked example as events, all in November 2026, with round durations:
/// ten leads created on the 2nd (09:00), six advance to `interest` on the 4th, four to
/// `consideration` on the 7th, three to `decision` on the 11th; leads 1 and 2 are won on the
/// 16th (1,000.00 and 3,000.00 EUR, registering customers A and B), lead 3 is lost on the
/// 18th. A orders 400.00 and 600.00, B 1,000.00; the 600.00 order is refunded 100.00. A
/// answers NPS 10 and CSAT 5, B NPS 6 and CSAT 3. B's complaint is opened, assigned,
/// answered after 30 minutes, resolved after 2 hours and closed.
pub fn worked_example() -> Log {
    use crm_domain::event::*;
    let mut log = Log::default();
    let day = |d: u32, time: &str| ts(&format!("2026-11-{d:02}T{time}:00Z"));
    for n in 1..=10u128 {
        log.push(
            day(2, "09:00"),
            Event::LeadCreated(LeadCreated {
                lead_id: example_lead(n),
                name: format!("Prospect {n}"),
                email: Some(format!("prospect{n}@example.com")),
                phone: None,
                company: None,
                source: if n <= 6 {
                    LeadSource::Web
                } else {
                    LeadSource::Referral
                },
                campaign_id: None,
                customer_id: None,
                owner: Some("grace".to_owned()),
                estimated_value: Some(eur(LEAD_ESTIMATE_MINOR)),
                pipeline: "default".to_owned(),
                stage: "awareness".to_owned(),
            }),
        );
    }
    let advances = [
        (1..=6u128, "awareness", "interest", day(4, "09:00")),
        (1..=4, "interest", "consideration", day(7, "09:00")),
        (1..=3, "consideration", "decision", day(11, "09:00")),
    ];
    for (leads, from, to, at) in advances {
        for n in leads {
            log.push(
                at,
                Event::FunnelStageAdvanced(FunnelStageAdvanced {
                    lead_id: example_lead(n),
                    pipeline: "default".to_owned(),
                    from_stage: from.to_owned(),
                    to_stage: to.to_owned(),
                }),
            );
        }
    }
    for (n, deal, customer, name) in [
        (1, 100_000, CUSTOMER_A, "Customer A"),
        (2, 300_000, CUSTOMER_B, "Customer B"),
    ] {
        let at = day(16, "09:00");
        log.push(
            at,
            Event::LeadWon(LeadWon {
                lead_id: example_lead(n),
                deal_value: eur(deal),
                customer_id: customer,
                new_customer: true,
            }),
        );
        log.push(
            at,
            Event::CustomerRegistered(CustomerRegistered {
                customer_id: customer,
                name: name.to_owned(),
                email: Some(format!("prospect{n}@example.com")),
                phone: None,
                segment: None,
                industry: None,
                region: None,
                owner: Some("grace".to_owned()),
                department: None,
                source: Some(LeadSource::Web),
                from_lead: Some(example_lead(n)),
            }),
        );
    }
    log.push(
        day(18, "09:00"),
        Event::LeadLost(LeadLost {
            lead_id: example_lead(3),
            reason: "price".to_owned(),
        }),
    );
    for (order, customer, amount, at) in [
        (ORDER_A1, CUSTOMER_A, 40_000, day(20, "10:00")),
        (ORDER_A2, CUSTOMER_A, 60_000, day(22, "10:00")),
        (ORDER_B1, CUSTOMER_B, 100_000, day(23, "10:00")),
    ] {
        log.push(
            at,
            Event::OrderPlaced(OrderPlaced {
                order_id: order,
                customer_id: customer,
                amount: eur(amount),
                cost: None,
                channel: OrderChannel::Online,
                lead_id: None,
            }),
        );
    }
    log.push(
        day(24, "10:00"),
        Event::OrderRefunded(OrderRefunded {
            order_id: ORDER_A2,
            customer_id: CUSTOMER_A,
            amount: eur(10_000),
            reason: "damaged".to_owned(),
        }),
    );
    for (customer, kind, score, n) in [
        (CUSTOMER_A, SurveyKind::Nps, 10, 1),
        (CUSTOMER_A, SurveyKind::Csat, 5, 2),
        (CUSTOMER_B, SurveyKind::Nps, 6, 3),
        (CUSTOMER_B, SurveyKind::Csat, 3, 4),
    ] {
        log.push(
            day(25, "10:00"),
            Event::SurveyResponseRecorded(SurveyResponseRecorded {
                customer_id: customer,
                response_id: Uuid::from_u128(0x5e7_0000 + n),
                kind,
                score,
                comment: None,
            }),
        );
    }
    log.push(
        day(27, "10:00"),
        Event::TicketOpened(TicketOpened {
            ticket_id: COMPLAINT,
            customer_id: CUSTOMER_B,
            subject: "Late delivery".to_owned(),
            category: TicketCategory::Complaint,
            priority: TicketPriority::High,
            channel: TicketChannel::Email,
        }),
    );
    log.push(
        day(27, "10:05"),
        Event::TicketAssigned(TicketAssigned {
            ticket_id: COMPLAINT,
            assignee: "sam".to_owned(),
        }),
    );
    log.push(
        day(27, "10:30"),
        Event::TicketResponded(TicketResponded {
            ticket_id: COMPLAINT,
            responder: "sam".to_owned(),
            public: true,
            first_public_response: true,
        }),
    );
    log.push(
        day(27, "12:00"),
        Event::TicketResolved(TicketResolved {
            ticket_id: COMPLAINT,
            resolution: "refund of shipping".to_owned(),
        }),
    );
    log.push(
        day(27, "12:30"),
        Event::TicketClosed(TicketClosed {
            ticket_id: COMPLAINT,
        }),
    );
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first drawn number that stands for `kind`.
    fn drawn(kind: usize) -> u8 {
        WEIGHTS[..kind].iter().map(|(_, weight)| weight).sum()
    }

    #[test]
    fn the_weights_follow_the_command_names() {
        let weighted: Vec<_> = WEIGHTS.iter().map(|(name, _)| *name).collect();
        let names: Vec<_> = Command::NAMES.iter().map(|(_, name)| *name).collect();
        assert_eq!(
            weighted, names,
            "one weight per command, in the order of Command::NAMES"
        );
        assert!(WEIGHTS.iter().all(|(_, weight)| *weight > 0));
    }

    #[test]
    fn every_kind_makes_its_command_and_its_event() {
        let now = ts(CLOCK_START);
        for (kind, (name, _)) in WEIGHTS.iter().enumerate() {
            let seed = (drawn(kind), 0, 0, 1);
            assert_eq!(weighted(seed.0), kind as u8);
            assert_eq!(command(seed, now).name(), *name, "kind {kind}");
            assert_eq!(
                arbitrary_event(seed).event_type(),
                Event::TYPES[kind].1,
                "kind {kind} ({name})"
            );
        }
    }
}
