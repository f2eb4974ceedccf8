//! Random command sequences over a small pool of ids, played through `decide` and `evolve`
//! against a model of every stream's state and history.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::codec::{decode_event, encode_event};
use crm_domain::command::*;
use crm_domain::types::{
    pipeline_stream, CampaignChannel, InteractionKind, LeadSource, OrderChannel, Segment,
    SurveyKind, TicketCategory, TicketChannel, TicketPriority,
};
use crm_domain::validate::OCCURRED_AT_FUTURE_MICROS_MAX;
use crm_domain::{
    decide, evolve, Aggregate, Command, Context, Decision, Event, Money, Rejection, StampedEvent,
    State, Timestamp,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRng, TestRunner};
use support::{currency, now, seconds_after};
use uuid::Uuid;

const SEQUENCES: u32 = 1024;
const COMMANDS_PER_SEQUENCE_MAX: usize = 60;

proptest! {
    #![proptest_config(Config {
        cases: SEQUENCES,
        ..Config::default()
    })]

    #[test]
    fn random_command_sequences_keep_decide_and_evolve_consistent(
        commands in prop::collection::vec(command(), 0..=COMMANDS_PER_SEQUENCE_MAX)
    ) {
        play(&commands)?;
    }
}

/// The generator is only useful if it reaches the accepted path of (nearly) every command;
/// this pins that down with a fixed seed.
#[test]
fn the_generated_sequences_reach_the_accepted_path_of_most_commands() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = prop::collection::vec(command(), COMMANDS_PER_SEQUENCE_MAX);
    let mut accepted = BTreeSet::new();
    let mut rejected = BTreeSet::new();
    for _ in 0..SEQUENCES {
        let commands = strategy
            .new_tree(&mut runner)
            .expect("a sequence")
            .current();
        let outcome = play(&commands).expect("the properties hold");
        accepted.extend(outcome.accepted);
        rejected.extend(outcome.rejected);
    }
    let missing: Vec<_> = Command::NAMES
        .iter()
        .map(|(_, name)| *name)
        .filter(|name| !accepted.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "never accepted in {SEQUENCES} sequences: {missing:?}"
    );
    assert!(rejected.len() >= 30, "rejected kinds: {rejected:?}");
}

#[derive(Default)]
struct Outcome {
    accepted: BTreeSet<&'static str>,
    rejected: BTreeSet<&'static str>,
}

/// Plays `commands` against the model, checking the properties after every command.
fn play(commands: &[Command]) -> Result<Outcome, TestCaseError> {
    let now = now();
    let mut states: BTreeMap<String, State> = BTreeMap::new();
    let mut histories: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    let mut decisions: Vec<Decision> = Vec::new();
    let mut outcome = Outcome::default();

    for command in commands {
        let stream = command.stream();
        prop_assert_eq!(Aggregate::of_stream(&stream), Some(command.aggregate()));
        let state = state_of(&states, &stream);
        let pipeline = command
            .pipeline_needed(state.lead_pipeline())
            .and_then(|name| match states.get(&pipeline_stream(&name)) {
                Some(State::Pipeline(defined)) => defined.clone(),
                _ => None,
            });
        let context = Context { now, pipeline };
        let before = states.clone();

        // (a) never panics (a panic fails the case), and decide is deterministic.
        let result = decide(&state, command, &context);
        prop_assert_eq!(&decide(&state, command, &context), &result);

        let too_late = command
            .occurred_at()
            .is_some_and(|at| at > now.saturating_add_micros(OCCURRED_AT_FUTURE_MICROS_MAX));
        if too_late {
            prop_assert!(
                matches!(
                    &result,
                    Err(Rejection::Validation {
                        field: "occurred_at",
                        ..
                    })
                ),
                "a business time over 5 minutes ahead is refused: {:?}",
                result
            );
        }

        let decision = match result {
            Err(_) => {
                // (e) a rejected command changes no state.
                prop_assert_eq!(&state_of(&states, &stream), &state);
                prop_assert_eq!(&states, &before);
                outcome.rejected.insert(command.name());
                continue;
            }
            Ok(decision) => decision,
        };

        check_decision_shape(command, &decision, now)?;
        // The store refuses the whole append when a must-be-new stream exists.
        if decision
            .appends
            .iter()
            .any(|a| a.must_be_new && state_of(&states, &a.stream).exists())
        {
            outcome.rejected.insert(command.name());
            continue;
        }

        for append in &decision.appends {
            let mut stream_state = state_of(&states, &append.stream);
            for event in &append.events {
                // (c) every event belongs to its stream's aggregate.
                prop_assert_eq!(
                    Aggregate::of_stream(&append.stream),
                    Some(event.aggregate())
                );
                // (d) every event round-trips through the log codec and JSON.
                check_round_trips(decision.occurred_at, event)?;
                stream_state = evolve(stream_state, event);
            }
            histories
                .entry(append.stream.clone())
                .or_default()
                .extend(append.events.iter().cloned());
            states.insert(append.stream.clone(), stream_state);
        }
        prop_assert!(
            state_of(&states, &stream).exists(),
            "{} accepted but {} does not exist after it",
            command.name(),
            stream
        );
        // (b) per touched stream: the fold of the whole history is the model's state.
        for append in &decision.appends {
            prop_assert_eq!(
                &fold(&append.stream, &histories[&append.stream]),
                &states[&append.stream]
            );
        }
        decisions.push(decision);
        outcome.accepted.insert(command.name());
    }

    // (b) every stream: replaying its history from empty gives the state decide saw last.
    for (stream, history) in &histories {
        prop_assert_eq!(&fold(stream, history), &states[stream]);
        check_history_starts_with_creation(stream, history)?;
    }
    // ... and replaying the accepted decisions in order rebuilds every stream.
    let mut replayed: BTreeMap<String, State> = BTreeMap::new();
    for (stream, event) in decisions.iter().flat_map(Decision::events) {
        let state = evolve(state_of(&replayed, stream), event);
        replayed.insert(stream.to_owned(), state);
    }
    prop_assert_eq!(&replayed, &states);
    Ok(outcome)
}

fn state_of(states: &BTreeMap<String, State>, stream: &str) -> State {
    states.get(stream).cloned().unwrap_or_else(|| {
        State::empty(Aggregate::of_stream(stream).expect("a stream with an aggregate prefix"))
    })
}

fn fold(stream: &str, history: &[Event]) -> State {
    history
        .iter()
        .fold(state_of(&BTreeMap::new(), stream), evolve)
}

fn check_decision_shape(
    command: &Command,
    decision: &Decision,
    now: Timestamp,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(decision.occurred_at, command.occurred_at().unwrap_or(now));
    prop_assert!(decision.occurred_at <= now.saturating_add_micros(OCCURRED_AT_FUTURE_MICROS_MAX));
    let first = decision.appends.first();
    prop_assert_eq!(first.map(|a| a.stream.clone()), Some(command.stream()));
    prop_assert!(!first.is_some_and(|a| a.must_be_new));
    let streams: BTreeSet<_> = decision.appends.iter().map(|a| &a.stream).collect();
    prop_assert_eq!(
        streams.len(),
        decision.appends.len(),
        "one append per stream"
    );
    for append in &decision.appends {
        prop_assert!(!append.events.is_empty(), "an append holds events");
    }
    if decision.appends.len() > 1 {
        prop_assert_eq!(command.name(), "WinLead");
        prop_assert!(decision.appends[1].must_be_new);
        prop_assert!(matches!(
            decision.appends[1].events.as_slice(),
            [Event::CustomerRegistered(_)]
        ));
    }
    Ok(())
}

fn check_round_trips(occurred_at: Timestamp, event: &Event) -> Result<(), TestCaseError> {
    let bytes = encode_event(occurred_at, event).expect("an event encodes");
    let decoded = decode_event(event.event_type(), event.schema_version(), &bytes);
    prop_assert_eq!(
        decoded,
        Ok(StampedEvent {
            occurred_at,
            event: event.clone()
        })
    );
    let json = serde_json::to_string(event).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: Event =
        serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
    prop_assert_eq!(&back, event);
    let stamped = StampedEvent {
        occurred_at,
        event: event.clone(),
    };
    let json = serde_json::to_string(&stamped).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: StampedEvent =
        serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
    prop_assert_eq!(back, stamped);
    Ok(())
}

/// A stream's first event creates it, and only a pipeline is ever created twice (redefined).
fn check_history_starts_with_creation(
    stream: &str,
    history: &[Event],
) -> Result<(), TestCaseError> {
    let creating = |event: &Event| {
        matches!(
            event,
            Event::LeadCreated(_)
                | Event::CustomerRegistered(_)
                | Event::OrderPlaced(_)
                | Event::TicketOpened(_)
                | Event::CampaignLaunched(_)
                | Event::PipelineDefined(_)
        )
    };
    prop_assert!(
        history.first().is_some_and(creating),
        "{} starts with {:?}",
        stream,
        history.first()
    );
    if !stream.starts_with("pipeline-") {
        prop_assert_eq!(history.iter().filter(|e| creating(e)).count(), 1);
    }
    Ok(())
}

// ---- strategies ----

fn id() -> impl Strategy<Value = Uuid> {
    (1..=3u128).prop_map(Uuid::from_u128)
}

fn opt_id() -> impl Strategy<Value = Option<Uuid>> {
    prop::option::of(id())
}

/// Mostly valid text, sometimes empty, blank or with a control character.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => select(vec!["Ada", "Acme Ltd", "because", "tab\there", "zoë"]),
        1 => select(vec!["", "  ", "nul\u{0}"]),
    ]
    .prop_map(str::to_owned)
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn email() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        8 => select(vec![None, Some("ada@example.com"), Some("a@b.io")]),
        1 => select(vec![Some("bad"), Some("x@y")]),
    ]
    .prop_map(|e| e.map(str::to_owned))
}

fn phone() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        8 => select(vec![None, Some("+1 555 0100"), Some("(030) 1234-567")]),
        1 => select(vec![Some("12"), Some("call me")]),
    ]
    .prop_map(|p| p.map(str::to_owned))
}

fn money() -> impl Strategy<Value = Money> {
    (
        prop_oneof![
            8 => select(vec![1i64, 100, 10_000, 40_000, 60_000, 1_000_000]),
            1 => select(vec![-500i64, 0, i64::MAX]),
        ],
        prop_oneof![8 => Just("EUR"), 1 => Just("USD"), 1 => Just("ABC")],
    )
        .prop_map(|(amount, code)| Money::new(amount, currency(code)))
}

fn opt_money() -> impl Strategy<Value = Option<Money>> {
    prop::option::of(money())
}

fn stage() -> impl Strategy<Value = String> {
    select(vec![
        "awareness",
        "interest",
        "consideration",
        "decision",
        "demo",
        "proposal",
        "closing",
        "Nope",
    ])
    .prop_map(str::to_owned)
}

fn pipeline_name() -> impl Strategy<Value = String> {
    select(vec!["default", "default", "sales", "Bad Name"]).prop_map(str::to_owned)
}

/// Mostly now, sometimes in the past, sometimes up to 5 minutes ahead, sometimes beyond.
fn occurred_at() -> impl Strategy<Value = Option<Timestamp>> {
    prop_oneof![
        6 => Just(None),
        2 => (-90 * 24 * 3600i64..0).prop_map(|s| Some(seconds_after(now(), s))),
        1 => (0i64..=300).prop_map(|s| Some(seconds_after(now(), s))),
        1 => (301i64..100_000).prop_map(|s| Some(seconds_after(now(), s))),
    ]
}

fn of<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    select(all.to_vec())
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => lead_command(),
        3 => customer_command(),
        2 => order_command(),
        2 => ticket_command(),
        1 => campaign_command(),
        1 => pipeline_command(),
    ]
}

fn lead_command() -> BoxedStrategy<Command> {
    let create = (
        id(),
        text(),
        email(),
        phone(),
        opt_text(),
        of(LeadSource::ALL),
        opt_id(),
        prop::option::weighted(0.2, id()),
        opt_text(),
        opt_money(),
        prop::option::of(pipeline_name()),
        occurred_at(),
    )
        .prop_map(
            |(
                lead_id,
                name,
                email,
                phone,
                company,
                source,
                campaign_id,
                customer_id,
                owner,
                estimated_value,
                pipeline,
                occurred_at,
            )| {
                Command::CreateLead(CreateLead {
                    lead_id,
                    name,
                    email,
                    phone,
                    company,
                    source,
                    campaign_id,
                    customer_id,
                    owner,
                    estimated_value,
                    pipeline,
                    occurred_at,
                })
            },
        );
    let update = (
        id(),
        opt_text(),
        email(),
        phone(),
        opt_text(),
        opt_money(),
        occurred_at(),
    )
        .prop_map(
            |(lead_id, name, email, phone, company, estimated_value, occurred_at)| {
                Command::UpdateLeadDetails(UpdateLeadDetails {
                    lead_id,
                    name,
                    email,
                    phone,
                    company,
                    estimated_value,
                    occurred_at,
                })
            },
        );
    let score = (id(), 0..=120u8, opt_text(), occurred_at()).prop_map(
        |(lead_id, score, reason, occurred_at)| {
            Command::ScoreLead(ScoreLead {
                lead_id,
                score,
                reason,
                occurred_at,
            })
        },
    );
    let assign = (id(), text(), occurred_at()).prop_map(|(lead_id, owner, occurred_at)| {
        Command::AssignLead(AssignLead {
            lead_id,
            owner,
            occurred_at,
        })
    });
    let advance = (
        id(),
        stage(),
        prop::option::of(any::<bool>()),
        occurred_at(),
    )
        .prop_map(|(lead_id, to_stage, allow_skip, occurred_at)| {
            Command::AdvanceFunnelStage(AdvanceFunnelStage {
                lead_id,
                to_stage,
                allow_skip,
                occurred_at,
            })
        });
    let revert = (id(), stage(), text(), occurred_at()).prop_map(
        |(lead_id, to_stage, reason, occurred_at)| {
            Command::RevertFunnelStage(RevertFunnelStage {
                lead_id,
                to_stage,
                reason,
                occurred_at,
            })
        },
    );
    let qualify = (id(), occurred_at()).prop_map(|(lead_id, occurred_at)| {
        Command::QualifyLead(QualifyLead {
            lead_id,
            occurred_at,
        })
    });
    let disqualify = (id(), text(), occurred_at()).prop_map(|(lead_id, reason, occurred_at)| {
        Command::DisqualifyLead(DisqualifyLead {
            lead_id,
            reason,
            occurred_at,
        })
    });
    let win = (
        id(),
        money(),
        prop::option::weighted(0.8, id()),
        occurred_at(),
    )
        .prop_map(|(lead_id, deal_value, customer_id, occurred_at)| {
            Command::WinLead(WinLead {
                lead_id,
                deal_value,
                customer_id,
                occurred_at,
            })
        });
    let lose = (id(), text(), occurred_at()).prop_map(|(lead_id, reason, occurred_at)| {
        Command::LoseLead(LoseLead {
            lead_id,
            reason,
            occurred_at,
        })
    });
    prop_oneof![
        6 => create,
        2 => update,
        2 => score,
        2 => assign,
        4 => advance,
        2 => revert,
        2 => qualify,
        1 => disqualify,
        2 => win,
        1 => lose,
    ]
    .boxed()
}

fn customer_command() -> BoxedStrategy<Command> {
    let register = (
        id(),
        text(),
        email(),
        phone(),
        prop::option::of(of(Segment::ALL)),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
        prop::option::of(of(LeadSource::ALL)),
        occurred_at(),
    )
        .prop_map(
            |(
                customer_id,
                name,
                email,
                phone,
                segment,
                industry,
                region,
                owner,
                department,
                source,
                occurred_at,
            )| {
                Command::RegisterCustomer(RegisterCustomer {
                    customer_id,
                    name,
                    email,
                    phone,
                    segment,
                    industry,
                    region,
                    owner,
                    department,
                    source,
                    occurred_at,
                })
            },
        );
    let update = (
        id(),
        opt_text(),
        email(),
        phone(),
        prop::option::of(of(Segment::ALL)),
        opt_text(),
        opt_text(),
        occurred_at(),
    )
        .prop_map(
            |(customer_id, name, email, phone, segment, industry, region, occurred_at)| {
                Command::UpdateCustomerProfile(UpdateCustomerProfile {
                    customer_id,
                    name,
                    email,
                    phone,
                    segment,
                    industry,
                    region,
                    occurred_at,
                })
            },
        );
    let assign = (id(), opt_text(), opt_text(), occurred_at()).prop_map(
        |(customer_id, owner, department, occurred_at)| {
            Command::AssignCustomerOwner(AssignCustomerOwner {
                customer_id,
                owner,
                department,
                occurred_at,
            })
        },
    );
    let add_contact = (
        id(),
        id(),
        text(),
        opt_text(),
        email(),
        phone(),
        occurred_at(),
    )
        .prop_map(
            |(customer_id, contact_id, name, role, email, phone, occurred_at)| {
                Command::AddContact(AddContact {
                    customer_id,
                    contact_id,
                    name,
                    role,
                    email,
                    phone,
                    occurred_at,
                })
            },
        );
    let remove_contact =
        (id(), id(), occurred_at()).prop_map(|(customer_id, contact_id, occurred_at)| {
            Command::RemoveContact(RemoveContact {
                customer_id,
                contact_id,
                occurred_at,
            })
        });
    let interaction = (
        id(),
        id(),
        of(InteractionKind::ALL),
        opt_text(),
        occurred_at(),
    )
        .prop_map(
            |(customer_id, interaction_id, kind, channel, occurred_at)| {
                Command::LogInteraction(LogInteraction {
                    customer_id,
                    interaction_id,
                    kind,
                    channel,
                    occurred_at: occurred_at.unwrap_or_else(now),
                })
            },
        );
    let survey = (
        id(),
        id(),
        of(SurveyKind::ALL),
        0..=12u8,
        opt_text(),
        occurred_at(),
    )
        .prop_map(
            |(customer_id, response_id, kind, score, comment, occurred_at)| {
                Command::RecordSurveyResponse(RecordSurveyResponse {
                    customer_id,
                    response_id,
                    kind,
                    score,
                    comment,
                    occurred_at,
                })
            },
        );
    let churn = (id(), text(), occurred_at()).prop_map(|(customer_id, reason, occurred_at)| {
        Command::MarkCustomerChurned(MarkCustomerChurned {
            customer_id,
            reason,
            occurred_at,
        })
    });
    let reactivate = (id(), occurred_at()).prop_map(|(customer_id, occurred_at)| {
        Command::ReactivateCustomer(ReactivateCustomer {
            customer_id,
            occurred_at,
        })
    });
    prop_oneof![
        4 => register,
        2 => update,
        2 => assign,
        2 => add_contact,
        2 => remove_contact,
        2 => interaction,
        2 => survey,
        2 => churn,
        2 => reactivate,
    ]
    .boxed()
}

fn order_command() -> BoxedStrategy<Command> {
    let place = (
        id(),
        id(),
        money(),
        opt_money(),
        of(OrderChannel::ALL),
        opt_id(),
        occurred_at(),
    )
        .prop_map(
            |(order_id, customer_id, amount, cost, channel, lead_id, occurred_at)| {
                Command::PlaceOrder(PlaceOrder {
                    order_id,
                    customer_id,
                    amount,
                    cost,
                    channel,
                    lead_id,
                    occurred_at,
                })
            },
        );
    let refund = (id(), money(), text(), occurred_at()).prop_map(
        |(order_id, amount, reason, occurred_at)| {
            Command::RefundOrder(RefundOrder {
                order_id,
                amount,
                reason,
                occurred_at,
            })
        },
    );
    let cancel = (id(), text(), occurred_at()).prop_map(|(order_id, reason, occurred_at)| {
        Command::CancelOrder(CancelOrder {
            order_id,
            reason,
            occurred_at,
        })
    });
    prop_oneof![3 => place, 3 => refund, 1 => cancel].boxed()
}

fn ticket_command() -> BoxedStrategy<Command> {
    let open = (
        id(),
        id(),
        text(),
        of(TicketCategory::ALL),
        of(TicketPriority::ALL),
        of(TicketChannel::ALL),
        occurred_at(),
    )
        .prop_map(
            |(ticket_id, customer_id, subject, category, priority, channel, occurred_at)| {
                Command::OpenTicket(OpenTicket {
                    ticket_id,
                    customer_id,
                    subject,
                    category,
                    priority,
                    channel,
                    occurred_at,
                })
            },
        );
    let assign = (id(), text(), occurred_at()).prop_map(|(ticket_id, assignee, occurred_at)| {
        Command::AssignTicket(AssignTicket {
            ticket_id,
            assignee,
            occurred_at,
        })
    });
    let respond = (id(), text(), any::<bool>(), occurred_at()).prop_map(
        |(ticket_id, responder, public, occurred_at)| {
            Command::RespondToTicket(RespondToTicket {
                ticket_id,
                responder,
                public,
                occurred_at,
            })
        },
    );
    let escalate = (id(), of(TicketPriority::ALL), occurred_at()).prop_map(
        |(ticket_id, priority, occurred_at)| {
            Command::EscalateTicket(EscalateTicket {
                ticket_id,
                priority,
                occurred_at,
            })
        },
    );
    let resolve = (id(), text(), occurred_at()).prop_map(|(ticket_id, resolution, occurred_at)| {
        Command::ResolveTicket(ResolveTicket {
            ticket_id,
            resolution,
            occurred_at,
        })
    });
    let close = (id(), occurred_at()).prop_map(|(ticket_id, occurred_at)| {
        Command::CloseTicket(CloseTicket {
            ticket_id,
            occurred_at,
        })
    });
    let reopen = (id(), text(), occurred_at()).prop_map(|(ticket_id, reason, occurred_at)| {
        Command::ReopenTicket(ReopenTicket {
            ticket_id,
            reason,
            occurred_at,
        })
    });
    prop_oneof![
        3 => open,
        2 => assign,
        2 => respond,
        2 => escalate,
        2 => resolve,
        2 => close,
        2 => reopen,
    ]
    .boxed()
}

fn campaign_command() -> BoxedStrategy<Command> {
    let launch = (
        id(),
        text(),
        of(CampaignChannel::ALL),
        opt_money(),
        occurred_at(),
    )
        .prop_map(|(campaign_id, name, channel, budget, occurred_at)| {
            Command::LaunchCampaign(LaunchCampaign {
                campaign_id,
                name,
                channel,
                budget,
                occurred_at,
            })
        });
    let spend = (id(), money(), occurred_at()).prop_map(|(campaign_id, amount, occurred_at)| {
        Command::RecordCampaignSpend(RecordCampaignSpend {
            campaign_id,
            amount,
            occurred_at,
        })
    });
    let reach = (id(), 0..1_000u64, occurred_at()).prop_map(|(campaign_id, sent, occurred_at)| {
        Command::RecordCampaignReach(RecordCampaignReach {
            campaign_id,
            sent,
            occurred_at,
        })
    });
    let response =
        (id(), 0..100u64, occurred_at()).prop_map(|(campaign_id, responses, occurred_at)| {
            Command::RecordCampaignResponse(RecordCampaignResponse {
                campaign_id,
                responses,
                occurred_at,
            })
        });
    let end = (id(), occurred_at()).prop_map(|(campaign_id, occurred_at)| {
        Command::EndCampaign(EndCampaign {
            campaign_id,
            occurred_at,
        })
    });
    prop_oneof![3 => launch, 2 => spend, 2 => reach, 2 => response, 1 => end].boxed()
}

fn pipeline_command() -> BoxedStrategy<Command> {
    (
        pipeline_name(),
        prop_oneof![
            3 => prop::sample::subsequence(
                vec!["awareness", "interest", "consideration", "decision", "demo", "proposal", "closing"],
                2..=7,
            )
            .prop_map(|stages| stages.into_iter().map(str::to_owned).collect::<Vec<_>>()),
            1 => prop::collection::vec(stage(), 0..=13),
        ],
        occurred_at(),
    )
        .prop_map(|(pipeline, stages, occurred_at)| {
            Command::DefinePipeline(DefinePipeline {
                pipeline,
                stages,
                occurred_at,
            })
        })
        .boxed()
}
