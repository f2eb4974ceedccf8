//! Test support for the domain: a given/when/then harness over `decide`/`evolve`, command
//! and event builders with sensible defaults, and a multi-stream `World` that plays commands.
//!
//! Time is fixed ([`now`]); nothing here reads the clock.

// Each test binary uses its own subset of the helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;

use crm_domain::codec::{decode_event, encode_event};
use crm_domain::command::*;
use crm_domain::event::*;
use crm_domain::state::Pipeline;
use crm_domain::types::{
    pipeline_stream, CampaignChannel, InteractionKind, LeadSource, OrderChannel, Segment,
    SurveyKind, TicketCategory, TicketChannel, TicketPriority, DEFAULT_PIPELINE,
};
use crm_domain::{
    decide, evolve, Aggregate, Command, Context, Currency, Decision, ErrorCode, Event, Money,
    Rejection, StampedEvent, State, StreamEvents, Timestamp,
};
use uuid::Uuid;

// ---- ids ----

pub const LEAD: Uuid = Uuid::from_u128(0x1ead_0000_0000_0000_0000_0000_0000_0001);
pub const LEAD_2: Uuid = Uuid::from_u128(0x1ead_0000_0000_0000_0000_0000_0000_0002);
pub const CUSTOMER: Uuid = Uuid::from_u128(0xc057_0000_0000_0000_0000_0000_0000_0001);
pub const CUSTOMER_2: Uuid = Uuid::from_u128(0xc057_0000_0000_0000_0000_0000_0000_0002);
pub const CONTACT: Uuid = Uuid::from_u128(0xc0c0_0000_0000_0000_0000_0000_0000_0001);
pub const CONTACT_2: Uuid = Uuid::from_u128(0xc0c0_0000_0000_0000_0000_0000_0000_0002);
pub const INTERACTION: Uuid = Uuid::from_u128(0x1a7e_0000_0000_0000_0000_0000_0000_0001);
pub const RESPONSE: Uuid = Uuid::from_u128(0x5e5e_0000_0000_0000_0000_0000_0000_0001);
pub const ORDER: Uuid = Uuid::from_u128(0x0de0_0000_0000_0000_0000_0000_0000_0001);
pub const TICKET: Uuid = Uuid::from_u128(0x71c7_0000_0000_0000_0000_0000_0000_0001);
pub const CAMPAIGN: Uuid = Uuid::from_u128(0xca4a_0000_0000_0000_0000_0000_0000_0001);

pub fn lead_stream(id: Uuid) -> String {
    Aggregate::Lead.stream_for(id)
}

pub fn customer_stream(id: Uuid) -> String {
    Aggregate::Customer.stream_for(id)
}

// ---- time and money ----

/// The fixed time of recording of every scenario unless one says otherwise.
pub const NOW: &str = "2026-11-10T12:00:00Z";

pub fn ts(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).expect("a valid RFC 3339 time in a test")
}

pub fn now() -> Timestamp {
    ts(NOW)
}

pub fn minutes_after(time: Timestamp, minutes: i64) -> Timestamp {
    time.saturating_add_micros(minutes * crm_domain::time::MICROS_PER_MINUTE)
}

pub fn seconds_after(time: Timestamp, seconds: i64) -> Timestamp {
    time.saturating_add_micros(seconds * crm_domain::time::MICROS_PER_SECOND)
}

pub fn currency(code: &str) -> Currency {
    Currency::new(code).expect("three upper-case letters")
}

pub fn money(amount_minor: i64, code: &str) -> Money {
    Money::new(amount_minor, currency(code))
}

pub fn eur(amount_minor: i64) -> Money {
    money(amount_minor, "EUR")
}

pub fn pipeline(name: &str, stages: &[&str]) -> Pipeline {
    Pipeline {
        name: name.to_owned(),
        stages: stages.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

// ---- given / when / then ----

/// What a scenario starts from: an aggregate with no events, or a stream's past events.
pub trait History {
    fn into_state(self) -> State;
}

impl History for Aggregate {
    fn into_state(self) -> State {
        State::empty(self)
    }
}

impl History for State {
    fn into_state(self) -> State {
        self
    }
}

impl History for Vec<Event> {
    fn into_state(self) -> State {
        let first = self
            .first()
            .expect("given no events: write given(Aggregate::X) for an empty stream");
        let aggregate = first.aggregate();
        self.iter().fold(State::empty(aggregate), |state, event| {
            assert_eq!(event.aggregate(), aggregate, "given events of one stream");
            evolve(state, event)
        })
    }
}

impl<const N: usize> History for [Event; N] {
    fn into_state(self) -> State {
        self.to_vec().into_state()
    }
}

/// A command or one of its bodies.
pub trait IntoCommand {
    fn into_command(self) -> Command;
}

impl IntoCommand for Command {
    fn into_command(self) -> Command {
        self
    }
}

macro_rules! into_command {
    ($($name:ident),+ $(,)?) => {
        $(impl IntoCommand for $name {
            fn into_command(self) -> Command {
                Command::$name(self)
            }
        })+

        /// Sets the business time of any command.
        pub fn occurred(command: impl IntoCommand, at: Timestamp) -> Command {
            let mut command = command.into_command();
            match &mut command {
                $(Command::$name(c) => set_occurred_at(&mut c.occurred_at, at),)+
            }
            command
        }
    };
}

into_command!(
    CreateLead,
    UpdateLeadDetails,
    ScoreLead,
    AssignLead,
    AdvanceFunnelStage,
    RevertFunnelStage,
    QualifyLead,
    DisqualifyLead,
    WinLead,
    LoseLead,
    RegisterCustomer,
    UpdateCustomerProfile,
    AssignCustomerOwner,
    AddContact,
    RemoveContact,
    LogInteraction,
    RecordSurveyResponse,
    MarkCustomerChurned,
    ReactivateCustomer,
    PlaceOrder,
    RefundOrder,
    CancelOrder,
    OpenTicket,
    AssignTicket,
    RespondToTicket,
    EscalateTicket,
    ResolveTicket,
    CloseTicket,
    ReopenTicket,
    LaunchCampaign,
    RecordCampaignSpend,
    RecordCampaignReach,
    RecordCampaignResponse,
    EndCampaign,
    DefinePipeline,
);

/// `occurred_at` is optional on every command but `LogInteraction`.
trait OccurredAt {
    fn set(&mut self, at: Timestamp);
}
impl OccurredAt for Option<Timestamp> {
    fn set(&mut self, at: Timestamp) {
        *self = Some(at);
    }
}
impl OccurredAt for Timestamp {
    fn set(&mut self, at: Timestamp) {
        *self = at;
    }
}
fn set_occurred_at(field: &mut impl OccurredAt, at: Timestamp) {
    field.set(at);
}

pub struct Scenario {
    state: State,
    context: Context,
}

/// Starts a scenario from a stream's history.
pub fn given(history: impl History) -> Scenario {
    Scenario {
        state: history.into_state(),
        context: Context::at(now()),
    }
}

impl Scenario {
    /// The definition of the pipeline the command needs (a defined pipeline stream).
    pub fn with_pipeline(mut self, pipeline: Pipeline) -> Scenario {
        self.context.pipeline = Some(pipeline);
        self
    }

    /// The time of recording.
    pub fn at(mut self, now: Timestamp) -> Scenario {
        self.context.now = now;
        self
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn when(self, command: impl IntoCommand) -> Then {
        let command = command.into_command();
        // `decide` takes the state by shared reference and `State` has no interior
        // mutability, so the compiler already guarantees it is left unchanged.
        let result = decide(&self.state, &command, &self.context);
        Then {
            state: self.state,
            context: self.context,
            command,
            result,
        }
    }
}

pub struct Then {
    state: State,
    context: Context,
    command: Command,
    result: Result<Decision, Rejection>,
}

impl Then {
    /// The command is accepted with exactly `events`, all on the command's own stream.
    /// Returns the state after the events.
    pub fn then_emits(self, events: impl IntoIterator<Item = Event>) -> State {
        let expected: Vec<Event> = events.into_iter().collect();
        let stream = self.command.stream();
        let decision = self.accepted();
        assert_eq!(
            decision.appends,
            vec![StreamEvents {
                stream: stream.clone(),
                must_be_new: false,
                events: expected,
            }],
            "the appends of {}",
            self.command.name()
        );
        apply(self.state, &stream, &decision)
    }

    /// The command is accepted, whatever it emits; returns the decision for closer checks.
    pub fn then_accepts(self) -> Decision {
        self.accepted()
    }

    /// The command is accepted with exactly these appends (possibly over several streams).
    pub fn then_appends(self, expected: Vec<StreamEvents>) -> Decision {
        let decision = self.accepted();
        assert_eq!(
            decision.appends,
            expected,
            "the appends of {}",
            self.command.name()
        );
        assert_eq!(
            decision.appends.first().map(|a| a.stream.clone()),
            Some(self.command.stream()),
            "the first append goes to the command's own stream"
        );
        decision
    }

    /// The command is refused with `code`; returns the rejection for closer checks.
    pub fn then_rejects(self, code: ErrorCode) -> Rejection {
        match self.result {
            Ok(decision) => panic!(
                "{} was accepted with {:?}; expected a {code} rejection",
                self.command.name(),
                decision.appends
            ),
            Err(rejection) => {
                assert_eq!(
                    rejection.code(),
                    code,
                    "{} was rejected with {rejection:?}",
                    self.command.name()
                );
                rejection
            }
        }
    }

    /// Refused with `validation_failed` naming `field`.
    pub fn then_rejects_field(self, field: &str) -> Rejection {
        let rejection = self.then_rejects(ErrorCode::ValidationFailed);
        match &rejection {
            Rejection::Validation { field: found, .. } => {
                assert_eq!(*found, field, "the field of {rejection:?}")
            }
            other => panic!("expected a validation rejection, got {other:?}"),
        }
        rejection
    }

    /// Refused with `not_found` naming the command's own stream.
    pub fn then_is_not_found(self) {
        let stream = self.command.stream();
        let rejection = self.then_rejects(ErrorCode::NotFound);
        assert_eq!(rejection, Rejection::NotFound { stream });
    }

    /// Refused with `already_exists` naming the command's own stream.
    pub fn then_already_exists(self) {
        let stream = self.command.stream();
        let rejection = self.then_rejects(ErrorCode::AlreadyExists);
        assert_eq!(rejection, Rejection::AlreadyExists { stream });
    }

    fn accepted(&self) -> Decision {
        let decision = match &self.result {
            Ok(decision) => decision.clone(),
            Err(rejection) => panic!(
                "{} was rejected: {rejection:?} ({})",
                self.command.name(),
                rejection.code()
            ),
        };
        ACCEPTED.with(|accepted| accepted.borrow_mut().push(self.command.name()));
        let expected_time = self.command.occurred_at().unwrap_or(self.context.now);
        assert_eq!(
            decision.occurred_at, expected_time,
            "business time of the decision"
        );
        for (stream, event) in decision.events() {
            assert_event_is_sound(stream, decision.occurred_at, event);
        }
        decision
    }
}

thread_local! {
    /// The commands whose acceptance a scenario checked on this thread, in order.
    static ACCEPTED: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs a test function and returns the commands whose acceptance it checked (with
/// `then_emits` or `then_appends`): how a coverage test proves a test really is the
/// accepted path of its command rather than trusting a list of names.
pub fn accepted_by(test: fn()) -> Vec<&'static str> {
    ACCEPTED.with(|accepted| accepted.borrow_mut().clear());
    test();
    ACCEPTED.with(|accepted| std::mem::take(&mut *accepted.borrow_mut()))
}

/// Folds the decision's events for `stream` onto `state`.
fn apply(state: State, stream: &str, decision: &Decision) -> State {
    decision
        .events()
        .filter(|(s, _)| *s == stream)
        .fold(state, |state, (_, event)| evolve(state, event))
}

/// The event belongs to its stream's aggregate and round-trips through the log codec and JSON.
pub fn assert_event_is_sound(stream: &str, occurred_at: Timestamp, event: &Event) {
    assert_eq!(
        Aggregate::of_stream(stream),
        Some(event.aggregate()),
        "{} appended to {stream}",
        event.event_type()
    );
    let bytes = encode_event(occurred_at, event).expect("an event encodes");
    let decoded = decode_event(event.event_type(), event.schema_version(), &bytes)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", event.event_type()));
    assert_eq!(
        decoded,
        StampedEvent {
            occurred_at,
            event: event.clone()
        }
    );
    let json = serde_json::to_string(event).expect("an event serializes to JSON");
    let back: Event = serde_json::from_str(&json).expect("an event deserializes from its JSON");
    assert_eq!(&back, event, "JSON round trip of {json}");
}

// ---- a world of streams ----

/// One recorded event, as the log would hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub stream: String,
    pub occurred_at: Timestamp,
    pub event: Event,
}

/// Why the world refused a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Rejected(Rejection),
    /// A `must_be_new` append hit an existing stream: the store refuses the whole append.
    StreamExists(String),
}

/// Every stream's state and the log, driven by `decide` and `evolve` as the service would.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub states: BTreeMap<String, State>,
    pub log: Vec<Recorded>,
}

impl World {
    pub fn state(&self, stream: &str) -> State {
        self.states.get(stream).cloned().unwrap_or_else(|| {
            State::empty(Aggregate::of_stream(stream).expect("a stream id with a known prefix"))
        })
    }

    /// The context `decide` gets for `command`: the time and the pipeline it needs.
    pub fn context_for(&self, command: &Command, now: Timestamp) -> Context {
        let state = self.state(&command.stream());
        let pipeline = command
            .pipeline_needed(state.lead_pipeline())
            .and_then(|name| match self.states.get(&pipeline_stream(&name)) {
                Some(State::Pipeline(defined)) => defined.clone(),
                _ => None,
            });
        Context { now, pipeline }
    }

    /// Decides `command` against its stream and, when accepted, records and applies the events.
    pub fn execute(&mut self, command: &Command, now: Timestamp) -> Result<Decision, Refusal> {
        let stream = command.stream();
        let context = self.context_for(command, now);
        let decision =
            decide(&self.state(&stream), command, &context).map_err(Refusal::Rejected)?;
        for append in &decision.appends {
            if append.must_be_new && self.state(&append.stream).exists() {
                return Err(Refusal::StreamExists(append.stream.clone()));
            }
        }
        for (stream, event) in decision.events() {
            let state = evolve(self.state(stream), event);
            self.states.insert(stream.to_owned(), state);
            self.log.push(Recorded {
                stream: stream.to_owned(),
                occurred_at: decision.occurred_at,
                event: event.clone(),
            });
        }
        Ok(decision)
    }

    /// Like [`World::execute`], panicking on a refusal.
    pub fn accept(&mut self, command: impl IntoCommand, now: Timestamp) -> Decision {
        let command = command.into_command();
        self.execute(&command, now)
            .unwrap_or_else(|refusal| panic!("{} refused: {refusal:?}", command.name()))
    }

    /// The events of one stream, in order.
    pub fn history(&self, stream: &str) -> Vec<Event> {
        self.log
            .iter()
            .filter(|r| r.stream == stream)
            .map(|r| r.event.clone())
            .collect()
    }
}

// ---- command builders ----

pub fn create_lead(lead_id: Uuid) -> CreateLead {
    CreateLead {
        lead_id,
        name: "Ada Lovelace".into(),
        email: some("ada@example.com"),
        phone: some("+44 20 7946 0000"),
        company: some("Analytical Engines Ltd"),
        source: LeadSource::Web,
        campaign_id: None,
        customer_id: None,
        owner: some("grace"),
        estimated_value: Some(eur(250_000)),
        pipeline: None,
        occurred_at: None,
    }
}

pub fn update_lead_details(lead_id: Uuid) -> UpdateLeadDetails {
    UpdateLeadDetails {
        lead_id,
        name: None,
        email: some("ada@engines.example"),
        phone: None,
        company: None,
        estimated_value: None,
        occurred_at: None,
    }
}

pub fn score_lead(lead_id: Uuid, score: u8) -> ScoreLead {
    ScoreLead {
        lead_id,
        score,
        reason: some("opened every mail"),
        occurred_at: None,
    }
}

pub fn assign_lead(lead_id: Uuid, owner: &str) -> AssignLead {
    AssignLead {
        lead_id,
        owner: owner.into(),
        occurred_at: None,
    }
}

pub fn advance(lead_id: Uuid, to_stage: &str) -> AdvanceFunnelStage {
    AdvanceFunnelStage {
        lead_id,
        to_stage: to_stage.into(),
        allow_skip: None,
        occurred_at: None,
    }
}

pub fn advance_skipping(lead_id: Uuid, to_stage: &str) -> AdvanceFunnelStage {
    AdvanceFunnelStage {
        allow_skip: Some(true),
        ..advance(lead_id, to_stage)
    }
}

pub fn revert(lead_id: Uuid, to_stage: &str) -> RevertFunnelStage {
    RevertFunnelStage {
        lead_id,
        to_stage: to_stage.into(),
        reason: "budget frozen".into(),
        occurred_at: None,
    }
}

pub fn qualify(lead_id: Uuid) -> QualifyLead {
    QualifyLead {
        lead_id,
        occurred_at: None,
    }
}

pub fn disqualify(lead_id: Uuid) -> DisqualifyLead {
    DisqualifyLead {
        lead_id,
        reason: "no budget".into(),
        occurred_at: None,
    }
}

/// Wins the lead for 1,000.00 EUR, registering `CUSTOMER` when the lead has none.
pub fn win(lead_id: Uuid) -> WinLead {
    WinLead {
        lead_id,
        deal_value: eur(100_000),
        customer_id: Some(CUSTOMER),
        occurred_at: None,
    }
}

pub fn lose(lead_id: Uuid) -> LoseLead {
    LoseLead {
        lead_id,
        reason: "went with a competitor".into(),
        occurred_at: None,
    }
}

pub fn register_customer(customer_id: Uuid) -> RegisterCustomer {
    RegisterCustomer {
        customer_id,
        name: "Analytical Engines Ltd".into(),
        email: some("accounts@engines.example"),
        phone: some("+44 20 7946 0001"),
        segment: Some(Segment::Smb),
        industry: some("manufacturing"),
        region: some("emea"),
        owner: some("grace"),
        department: some("sales"),
        source: Some(LeadSource::Referral),
        occurred_at: None,
    }
}

pub fn update_profile(customer_id: Uuid) -> UpdateCustomerProfile {
    UpdateCustomerProfile {
        customer_id,
        name: None,
        email: None,
        phone: None,
        segment: None,
        industry: some("software"),
        region: None,
        occurred_at: None,
    }
}

pub fn assign_owner(customer_id: Uuid, owner: &str) -> AssignCustomerOwner {
    AssignCustomerOwner {
        customer_id,
        owner: Some(owner.into()),
        department: None,
        occurred_at: None,
    }
}

pub fn add_contact(customer_id: Uuid, contact_id: Uuid) -> AddContact {
    AddContact {
        customer_id,
        contact_id,
        name: "Charles Babbage".into(),
        role: some("cto"),
        email: some("charles@engines.example"),
        phone: None,
        occurred_at: None,
    }
}

pub fn remove_contact(customer_id: Uuid, contact_id: Uuid) -> RemoveContact {
    RemoveContact {
        customer_id,
        contact_id,
        occurred_at: None,
    }
}

pub fn log_interaction(customer_id: Uuid) -> LogInteraction {
    LogInteraction {
        customer_id,
        interaction_id: INTERACTION,
        kind: InteractionKind::Call,
        channel: some("phone"),
        occurred_at: minutes_after(now(), -60),
    }
}

pub fn survey(customer_id: Uuid, kind: SurveyKind, score: u8) -> RecordSurveyResponse {
    RecordSurveyResponse {
        customer_id,
        response_id: RESPONSE,
        kind,
        score,
        comment: None,
        occurred_at: None,
    }
}

pub fn churn(customer_id: Uuid) -> MarkCustomerChurned {
    MarkCustomerChurned {
        customer_id,
        reason: "moved to a competitor".into(),
        occurred_at: None,
    }
}

pub fn reactivate(customer_id: Uuid) -> ReactivateCustomer {
    ReactivateCustomer {
        customer_id,
        occurred_at: None,
    }
}

pub fn place_order(order_id: Uuid, customer_id: Uuid, amount: Money) -> PlaceOrder {
    PlaceOrder {
        order_id,
        customer_id,
        amount,
        cost: None,
        channel: OrderChannel::Online,
        lead_id: None,
        occurred_at: None,
    }
}

pub fn refund(order_id: Uuid, amount: Money) -> RefundOrder {
    RefundOrder {
        order_id,
        amount,
        reason: "damaged in transit".into(),
        occurred_at: None,
    }
}

pub fn cancel_order(order_id: Uuid) -> CancelOrder {
    CancelOrder {
        order_id,
        reason: "ordered twice".into(),
        occurred_at: None,
    }
}

pub fn open_ticket(ticket_id: Uuid, customer_id: Uuid) -> OpenTicket {
    OpenTicket {
        ticket_id,
        customer_id,
        subject: "Invoice is wrong".into(),
        category: TicketCategory::Complaint,
        priority: TicketPriority::Normal,
        channel: TicketChannel::Email,
        occurred_at: None,
    }
}

pub fn assign_ticket(ticket_id: Uuid) -> AssignTicket {
    AssignTicket {
        ticket_id,
        assignee: "linus".into(),
        occurred_at: None,
    }
}

pub fn respond(ticket_id: Uuid, public: bool) -> RespondToTicket {
    RespondToTicket {
        ticket_id,
        responder: "linus".into(),
        public,
        occurred_at: None,
    }
}

pub fn escalate(ticket_id: Uuid, priority: TicketPriority) -> EscalateTicket {
    EscalateTicket {
        ticket_id,
        priority,
        occurred_at: None,
    }
}

pub fn resolve(ticket_id: Uuid) -> ResolveTicket {
    ResolveTicket {
        ticket_id,
        resolution: "credit note sent".into(),
        occurred_at: None,
    }
}

pub fn close_ticket(ticket_id: Uuid) -> CloseTicket {
    CloseTicket {
        ticket_id,
        occurred_at: None,
    }
}

pub fn reopen(ticket_id: Uuid) -> ReopenTicket {
    ReopenTicket {
        ticket_id,
        reason: "still wrong".into(),
        occurred_at: None,
    }
}

pub fn launch_campaign(campaign_id: Uuid) -> LaunchCampaign {
    LaunchCampaign {
        campaign_id,
        name: "Winter webinar".into(),
        channel: CampaignChannel::Email,
        budget: Some(eur(500_000)),
        occurred_at: None,
    }
}

pub fn record_spend(campaign_id: Uuid, amount: Money) -> RecordCampaignSpend {
    RecordCampaignSpend {
        campaign_id,
        amount,
        occurred_at: None,
    }
}

pub fn record_reach(campaign_id: Uuid, sent: u64) -> RecordCampaignReach {
    RecordCampaignReach {
        campaign_id,
        sent,
        occurred_at: None,
    }
}

pub fn record_responses(campaign_id: Uuid, responses: u64) -> RecordCampaignResponse {
    RecordCampaignResponse {
        campaign_id,
        responses,
        occurred_at: None,
    }
}

pub fn end_campaign(campaign_id: Uuid) -> EndCampaign {
    EndCampaign {
        campaign_id,
        occurred_at: None,
    }
}

pub fn define_pipeline(name: &str, stages: &[&str]) -> DefinePipeline {
    DefinePipeline {
        pipeline: name.into(),
        stages: stages.iter().map(|s| (*s).to_owned()).collect(),
        occurred_at: None,
    }
}

/// One command of each of the 35 types, in the order of `Command::NAMES`.
pub fn one_of_each_command() -> Vec<Command> {
    vec![
        create_lead(LEAD).into_command(),
        update_lead_details(LEAD).into_command(),
        score_lead(LEAD, 80).into_command(),
        assign_lead(LEAD, "linus").into_command(),
        advance(LEAD, "interest").into_command(),
        revert(LEAD, "awareness").into_command(),
        qualify(LEAD).into_command(),
        disqualify(LEAD).into_command(),
        win(LEAD).into_command(),
        lose(LEAD).into_command(),
        register_customer(CUSTOMER).into_command(),
        update_profile(CUSTOMER).into_command(),
        assign_owner(CUSTOMER, "linus").into_command(),
        add_contact(CUSTOMER, CONTACT).into_command(),
        remove_contact(CUSTOMER, CONTACT).into_command(),
        log_interaction(CUSTOMER).into_command(),
        survey(CUSTOMER, SurveyKind::Nps, 9).into_command(),
        churn(CUSTOMER).into_command(),
        reactivate(CUSTOMER).into_command(),
        place_order(ORDER, CUSTOMER, eur(40_000)).into_command(),
        refund(ORDER, eur(10_000)).into_command(),
        cancel_order(ORDER).into_command(),
        open_ticket(TICKET, CUSTOMER).into_command(),
        assign_ticket(TICKET).into_command(),
        respond(TICKET, true).into_command(),
        escalate(TICKET, TicketPriority::High).into_command(),
        resolve(TICKET).into_command(),
        close_ticket(TICKET).into_command(),
        reopen(TICKET).into_command(),
        launch_campaign(CAMPAIGN).into_command(),
        record_spend(CAMPAIGN, eur(12_500)).into_command(),
        record_reach(CAMPAIGN, 1_000).into_command(),
        record_responses(CAMPAIGN, 40).into_command(),
        end_campaign(CAMPAIGN).into_command(),
        define_pipeline("enterprise", &["lead", "demo", "proposal", "contract"]).into_command(),
    ]
}

// ---- event builders (the events the command builders produce) ----

/// What `create_lead(lead_id)` records in the default pipeline.
pub fn lead_created(lead_id: Uuid) -> Event {
    lead_created_in(lead_id, DEFAULT_PIPELINE, "awareness")
}

pub fn lead_created_in(lead_id: Uuid, pipeline: &str, stage: &str) -> Event {
    let c = create_lead(lead_id);
    Event::LeadCreated(LeadCreated {
        lead_id,
        name: c.name,
        email: c.email,
        phone: c.phone,
        company: c.company,
        source: c.source,
        campaign_id: c.campaign_id,
        customer_id: c.customer_id,
        owner: c.owner,
        estimated_value: c.estimated_value,
        pipeline: pipeline.to_owned(),
        stage: stage.to_owned(),
    })
}

/// A lead of an existing customer (an upsell).
pub fn lead_created_for(lead_id: Uuid, customer_id: Uuid) -> Event {
    let Event::LeadCreated(created) = lead_created(lead_id) else {
        unreachable!()
    };
    Event::LeadCreated(LeadCreated {
        customer_id: Some(customer_id),
        ..created
    })
}

pub fn stage_advanced(lead_id: Uuid, from: &str, to: &str) -> Event {
    Event::FunnelStageAdvanced(FunnelStageAdvanced {
        lead_id,
        pipeline: DEFAULT_PIPELINE.into(),
        from_stage: from.into(),
        to_stage: to.into(),
    })
}

pub fn lead_qualified(lead_id: Uuid) -> Event {
    Event::LeadQualified(LeadQualified { lead_id })
}

pub fn lead_disqualified(lead_id: Uuid) -> Event {
    Event::LeadDisqualified(LeadDisqualified {
        lead_id,
        reason: "no budget".into(),
    })
}

pub fn lead_won(lead_id: Uuid, customer_id: Uuid) -> Event {
    Event::LeadWon(LeadWon {
        lead_id,
        deal_value: eur(100_000),
        customer_id,
        new_customer: true,
    })
}

pub fn lead_lost(lead_id: Uuid) -> Event {
    Event::LeadLost(LeadLost {
        lead_id,
        reason: "went with a competitor".into(),
    })
}

/// What `register_customer(customer_id)` records.
pub fn customer_registered(customer_id: Uuid) -> Event {
    let c = register_customer(customer_id);
    Event::CustomerRegistered(CustomerRegistered {
        customer_id,
        name: c.name,
        email: c.email,
        phone: c.phone,
        segment: c.segment,
        industry: c.industry,
        region: c.region,
        owner: c.owner,
        department: c.department,
        source: c.source,
        from_lead: None,
    })
}

pub fn contact_added(customer_id: Uuid, contact_id: Uuid) -> Event {
    let c = add_contact(customer_id, contact_id);
    Event::ContactAdded(ContactAdded {
        customer_id,
        contact_id,
        name: c.name,
        role: c.role,
        email: c.email,
        phone: c.phone,
    })
}

pub fn contact_removed(customer_id: Uuid, contact_id: Uuid) -> Event {
    Event::ContactRemoved(ContactRemoved {
        customer_id,
        contact_id,
    })
}

pub fn customer_churned(customer_id: Uuid) -> Event {
    Event::CustomerChurned(CustomerChurned {
        customer_id,
        reason: "moved to a competitor".into(),
    })
}

pub fn customer_reactivated(customer_id: Uuid) -> Event {
    Event::CustomerReactivated(CustomerReactivated { customer_id })
}

pub fn order_placed(order_id: Uuid, customer_id: Uuid, amount: Money) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order_id,
        customer_id,
        amount,
        cost: None,
        channel: OrderChannel::Online,
        lead_id: None,
    })
}

pub fn order_refunded(order_id: Uuid, customer_id: Uuid, amount: Money) -> Event {
    Event::OrderRefunded(OrderRefunded {
        order_id,
        customer_id,
        amount,
        reason: "damaged in transit".into(),
    })
}

pub fn order_cancelled(order_id: Uuid, customer_id: Uuid) -> Event {
    Event::OrderCancelled(OrderCancelled {
        order_id,
        customer_id,
        reason: "ordered twice".into(),
    })
}

/// What `open_ticket(ticket_id, customer_id)` records: a normal-priority complaint.
pub fn ticket_opened(ticket_id: Uuid, customer_id: Uuid) -> Event {
    Event::TicketOpened(TicketOpened {
        ticket_id,
        customer_id,
        subject: "Invoice is wrong".into(),
        category: TicketCategory::Complaint,
        priority: TicketPriority::Normal,
        channel: TicketChannel::Email,
    })
}

pub fn ticket_assigned(ticket_id: Uuid) -> Event {
    Event::TicketAssigned(TicketAssigned {
        ticket_id,
        assignee: "linus".into(),
    })
}

pub fn ticket_responded(ticket_id: Uuid, public: bool, first_public_response: bool) -> Event {
    Event::TicketResponded(TicketResponded {
        ticket_id,
        responder: "linus".into(),
        public,
        first_public_response,
    })
}

pub fn ticket_escalated(ticket_id: Uuid, from: TicketPriority, to: TicketPriority) -> Event {
    Event::TicketEscalated(TicketEscalated {
        ticket_id,
        from_priority: from,
        priority: to,
    })
}

pub fn ticket_resolved(ticket_id: Uuid) -> Event {
    Event::TicketResolved(TicketResolved {
        ticket_id,
        resolution: "credit note sent".into(),
    })
}

pub fn ticket_closed(ticket_id: Uuid) -> Event {
    Event::TicketClosed(TicketClosed { ticket_id })
}

pub fn ticket_reopened(ticket_id: Uuid) -> Event {
    Event::TicketReopened(TicketReopened {
        ticket_id,
        reason: "still wrong".into(),
    })
}

pub fn campaign_launched(campaign_id: Uuid) -> Event {
    Event::CampaignLaunched(CampaignLaunched {
        campaign_id,
        name: "Winter webinar".into(),
        channel: CampaignChannel::Email,
        budget: Some(eur(500_000)),
    })
}

pub fn campaign_ended(campaign_id: Uuid) -> Event {
    Event::CampaignEnded(CampaignEnded { campaign_id })
}

pub fn pipeline_defined(name: &str, stages: &[&str]) -> Event {
    Event::PipelineDefined(PipelineDefined {
        pipeline: name.into(),
        stages: stages.iter().map(|s| (*s).to_owned()).collect(),
    })
}
