//! The accepted path of every command: the exact events it records, and the state
//! they lead to.

mod support;

use crm_domain::command::*;
use crm_domain::event::*;
use crm_domain::state::{Lead, Ticket};
use crm_domain::types::{
    CampaignChannel, InteractionKind, LeadSource, LeadStatus, OrderChannel, Segment, SurveyKind,
    TicketCategory, TicketChannel, TicketPriority, TicketStatus,
};
use crm_domain::{Aggregate, Event, State, StreamEvents};
use support::*;

fn lead(state: &State) -> &Lead {
    match state {
        State::Lead(Some(lead)) => lead,
        other => panic!("expected a lead, got {other:?}"),
    }
}

fn ticket(state: &State) -> &Ticket {
    match state {
        State::Ticket(Some(ticket)) => ticket,
        other => panic!("expected a ticket, got {other:?}"),
    }
}

// ---- Lead ----

#[test]
fn create_lead_records_the_lead_in_the_first_stage_of_the_default_pipeline() {
    let state = given(Aggregate::Lead)
        .when(create_lead(LEAD))
        .then_emits([Event::LeadCreated(LeadCreated {
            lead_id: LEAD,
            name: "Ada Lovelace".into(),
            email: some("ada@example.com"),
            phone: some("+44 20 7946 0000"),
            company: some("Analytical Engines Ltd"),
            source: LeadSource::Web,
            campaign_id: None,
            customer_id: None,
            owner: some("grace"),
            estimated_value: Some(eur(250_000)),
            pipeline: "default".into(),
            stage: "awareness".into(),
        })]);
    let lead = lead(&state);
    assert_eq!(lead.status, LeadStatus::Open);
    assert_eq!(lead.stage, "awareness");
    assert!(!lead.qualified);
}

#[test]
fn create_lead_in_a_defined_pipeline_enters_its_first_stage() {
    let state = given(Aggregate::Lead)
        .with_pipeline(pipeline("enterprise", &["lead", "demo", "contract"]))
        .when(CreateLead {
            pipeline: some("enterprise"),
            ..create_lead(LEAD)
        })
        .then_emits([lead_created_in(LEAD, "enterprise", "lead")]);
    assert_eq!(lead(&state).pipeline, "enterprise");
}

#[test]
fn create_lead_uses_a_redefined_default_pipeline() {
    given(Aggregate::Lead)
        .with_pipeline(pipeline("default", &["new", "contacted", "closing"]))
        .when(create_lead(LEAD))
        .then_emits([lead_created_in(LEAD, "default", "new")]);
}

#[test]
fn update_lead_details_records_only_the_fields_that_change() {
    let state = given([lead_created(LEAD)])
        .when(UpdateLeadDetails {
            name: some("Ada King"),
            email: some("ada@example.com"), // unchanged
            estimated_value: Some(eur(300_000)),
            ..update_lead_details(LEAD)
        })
        .then_emits([Event::LeadDetailsUpdated(LeadDetailsUpdated {
            lead_id: LEAD,
            name: some("Ada King"),
            email: None,
            phone: None,
            company: None,
            estimated_value: Some(eur(300_000)),
        })]);
    assert_eq!(lead(&state).name, "Ada King");
    assert_eq!(lead(&state).email, some("ada@example.com"));
    assert_eq!(lead(&state).estimated_value, Some(eur(300_000)));
}

#[test]
fn score_lead_records_the_score() {
    let state = given([lead_created(LEAD)])
        .when(score_lead(LEAD, 80))
        .then_emits([Event::LeadScored(LeadScored {
            lead_id: LEAD,
            score: 80,
            reason: some("opened every mail"),
        })]);
    assert_eq!(lead(&state).score, Some(80));
}

#[test]
fn assign_lead_records_the_previous_and_new_owner() {
    let state = given([lead_created(LEAD)])
        .when(assign_lead(LEAD, "linus"))
        .then_emits([Event::LeadAssigned(LeadAssigned {
            lead_id: LEAD,
            previous_owner: some("grace"),
            owner: "linus".into(),
        })]);
    assert_eq!(lead(&state).owner, some("linus"));
}

#[test]
fn advance_funnel_stage_moves_the_lead_to_the_next_stage() {
    let state = given([lead_created(LEAD)])
        .when(advance(LEAD, "interest"))
        .then_emits([Event::FunnelStageAdvanced(FunnelStageAdvanced {
            lead_id: LEAD,
            pipeline: "default".into(),
            from_stage: "awareness".into(),
            to_stage: "interest".into(),
        })]);
    assert_eq!(lead(&state).stage, "interest");
}

#[test]
fn advance_funnel_stage_may_skip_stages_when_allowed() {
    given([lead_created(LEAD)])
        .when(advance_skipping(LEAD, "decision"))
        .then_emits([stage_advanced(LEAD, "awareness", "decision")]);
}

#[test]
fn revert_funnel_stage_moves_the_lead_back() {
    let state = given([
        lead_created(LEAD),
        stage_advanced(LEAD, "awareness", "interest"),
        stage_advanced(LEAD, "interest", "consideration"),
    ])
    .when(revert(LEAD, "awareness"))
    .then_emits([Event::FunnelStageReverted(FunnelStageReverted {
        lead_id: LEAD,
        pipeline: "default".into(),
        from_stage: "consideration".into(),
        to_stage: "awareness".into(),
        reason: "budget frozen".into(),
    })]);
    assert_eq!(lead(&state).stage, "awareness");
}

#[test]
fn qualify_lead_marks_the_lead_qualified() {
    let state = given([lead_created(LEAD)])
        .when(qualify(LEAD))
        .then_emits([Event::LeadQualified(LeadQualified { lead_id: LEAD })]);
    assert!(lead(&state).qualified);
    assert_eq!(lead(&state).status, LeadStatus::Open);
}

#[test]
fn disqualify_lead_closes_the_lead() {
    let state = given([lead_created(LEAD), lead_qualified(LEAD)])
        .when(disqualify(LEAD))
        .then_emits([Event::LeadDisqualified(LeadDisqualified {
            lead_id: LEAD,
            reason: "no budget".into(),
        })]);
    assert_eq!(lead(&state).status, LeadStatus::Disqualified);
}

#[test]
fn win_lead_registers_a_new_customer_on_a_second_stream_in_the_same_append() {
    given([
        lead_created(LEAD),
        stage_advanced(LEAD, "awareness", "interest"),
    ])
    .when(WinLead {
        deal_value: eur(123_456),
        customer_id: Some(CUSTOMER_2),
        ..win(LEAD)
    })
    .then_appends(vec![
        StreamEvents {
            stream: lead_stream(LEAD),
            must_be_new: false,
            events: vec![Event::LeadWon(LeadWon {
                lead_id: LEAD,
                deal_value: eur(123_456),
                customer_id: CUSTOMER_2,
                new_customer: true,
            })],
        },
        StreamEvents {
            stream: customer_stream(CUSTOMER_2),
            must_be_new: true,
            events: vec![Event::CustomerRegistered(CustomerRegistered {
                customer_id: CUSTOMER_2,
                // The account is the lead's company; the contact details are the lead's.
                name: "Analytical Engines Ltd".into(),
                email: some("ada@example.com"),
                phone: some("+44 20 7946 0000"),
                segment: None,
                industry: None,
                region: None,
                owner: some("grace"),
                department: None,
                source: Some(LeadSource::Web),
                from_lead: Some(LEAD),
            })],
        },
    ]);
}

#[test]
fn win_lead_names_the_customer_after_the_lead_when_it_has_no_company() {
    let Event::LeadCreated(created) = lead_created(LEAD) else {
        unreachable!()
    };
    let decision = given([Event::LeadCreated(LeadCreated {
        company: None,
        ..created
    })])
    .when(win(LEAD))
    .then_appends(vec![
        StreamEvents {
            stream: lead_stream(LEAD),
            must_be_new: false,
            events: vec![lead_won(LEAD, CUSTOMER)],
        },
        StreamEvents {
            stream: customer_stream(CUSTOMER),
            must_be_new: true,
            events: vec![Event::CustomerRegistered(CustomerRegistered {
                customer_id: CUSTOMER,
                name: "Ada Lovelace".into(),
                email: some("ada@example.com"),
                phone: some("+44 20 7946 0000"),
                segment: None,
                industry: None,
                region: None,
                owner: some("grace"),
                department: None,
                source: Some(LeadSource::Web),
                from_lead: Some(LEAD),
            })],
        },
    ]);
    assert_eq!(decision.events().count(), 2);
}

#[test]
fn win_lead_of_an_existing_customer_emits_only_lead_won() {
    let state = given([lead_created_for(LEAD, CUSTOMER_2)])
        .when(WinLead {
            customer_id: None,
            ..win(LEAD)
        })
        .then_emits([Event::LeadWon(LeadWon {
            lead_id: LEAD,
            deal_value: eur(100_000),
            customer_id: CUSTOMER_2,
            new_customer: false,
        })]);
    assert_eq!(lead(&state).status, LeadStatus::Won);
    assert_eq!(lead(&state).customer_id, Some(CUSTOMER_2));
}

#[test]
fn win_lead_of_an_existing_customer_accepts_the_same_customer_id() {
    given([lead_created_for(LEAD, CUSTOMER_2)])
        .when(WinLead {
            customer_id: Some(CUSTOMER_2),
            ..win(LEAD)
        })
        .then_emits([Event::LeadWon(LeadWon {
            lead_id: LEAD,
            deal_value: eur(100_000),
            customer_id: CUSTOMER_2,
            new_customer: false,
        })]);
}

#[test]
fn lose_lead_closes_the_lead() {
    let state = given([lead_created(LEAD)])
        .when(lose(LEAD))
        .then_emits([Event::LeadLost(LeadLost {
            lead_id: LEAD,
            reason: "went with a competitor".into(),
        })]);
    assert_eq!(lead(&state).status, LeadStatus::Lost);
}

// ---- Customer ----

#[test]
fn register_customer_records_the_profile() {
    let state = given(Aggregate::Customer)
        .when(register_customer(CUSTOMER))
        .then_emits([Event::CustomerRegistered(CustomerRegistered {
            customer_id: CUSTOMER,
            name: "Analytical Engines Ltd".into(),
            email: some("accounts@engines.example"),
            phone: some("+44 20 7946 0001"),
            segment: Some(Segment::Smb),
            industry: some("manufacturing"),
            region: some("emea"),
            owner: some("grace"),
            department: some("sales"),
            source: Some(LeadSource::Referral),
            from_lead: None,
        })]);
    let State::Customer(Some(customer)) = state else {
        panic!("no customer")
    };
    assert!(!customer.churned);
    assert!(customer.contacts.is_empty());
}

#[test]
fn update_customer_profile_records_only_the_changed_fields() {
    given([customer_registered(CUSTOMER)])
        .when(UpdateCustomerProfile {
            segment: Some(Segment::Enterprise),
            region: some("emea"), // unchanged
            ..update_profile(CUSTOMER)
        })
        .then_emits([Event::CustomerProfileUpdated(CustomerProfileUpdated {
            customer_id: CUSTOMER,
            name: None,
            email: None,
            phone: None,
            segment: Some(Segment::Enterprise),
            industry: some("software"),
            region: None,
        })]);
}

#[test]
fn assign_customer_owner_records_previous_and_new_owner_and_department() {
    let state = given([customer_registered(CUSTOMER)])
        .when(assign_owner(CUSTOMER, "linus"))
        .then_emits([Event::CustomerOwnerAssigned(CustomerOwnerAssigned {
            customer_id: CUSTOMER,
            previous_owner: some("grace"),
            previous_department: some("sales"),
            owner: some("linus"),
            department: some("sales"),
        })]);
    let State::Customer(Some(customer)) = state else {
        panic!("no customer")
    };
    assert_eq!(customer.owner, some("linus"));
    assert_eq!(customer.department, some("sales"));
}

#[test]
fn add_contact_records_the_contact() {
    let state = given([customer_registered(CUSTOMER)])
        .when(add_contact(CUSTOMER, CONTACT))
        .then_emits([Event::ContactAdded(ContactAdded {
            customer_id: CUSTOMER,
            contact_id: CONTACT,
            name: "Charles Babbage".into(),
            role: some("cto"),
            email: some("charles@engines.example"),
            phone: None,
        })]);
    let State::Customer(Some(customer)) = state else {
        panic!("no customer")
    };
    assert!(customer.contacts.contains_key(&CONTACT));
}

#[test]
fn remove_contact_records_the_removal() {
    let state = given([
        customer_registered(CUSTOMER),
        contact_added(CUSTOMER, CONTACT),
    ])
    .when(remove_contact(CUSTOMER, CONTACT))
    .then_emits([Event::ContactRemoved(ContactRemoved {
        customer_id: CUSTOMER,
        contact_id: CONTACT,
    })]);
    let State::Customer(Some(customer)) = state else {
        panic!("no customer")
    };
    assert!(customer.contacts.is_empty());
}

#[test]
fn log_interaction_records_the_interaction_at_its_business_time() {
    let at = ts("2026-11-09T15:30:00Z");
    let decision = given([customer_registered(CUSTOMER)])
        .when(LogInteraction {
            kind: InteractionKind::Meeting,
            occurred_at: at,
            ..log_interaction(CUSTOMER)
        })
        .then_appends(vec![StreamEvents {
            stream: customer_stream(CUSTOMER),
            must_be_new: false,
            events: vec![Event::InteractionLogged(InteractionLogged {
                customer_id: CUSTOMER,
                interaction_id: INTERACTION,
                kind: InteractionKind::Meeting,
                channel: some("phone"),
            })],
        }]);
    assert_eq!(decision.occurred_at, at);
}

#[test]
fn record_survey_response_records_the_answer() {
    given([customer_registered(CUSTOMER)])
        .when(RecordSurveyResponse {
            comment: some("quick and friendly"),
            ..survey(CUSTOMER, SurveyKind::Csat, 4)
        })
        .then_emits([Event::SurveyResponseRecorded(SurveyResponseRecorded {
            customer_id: CUSTOMER,
            response_id: RESPONSE,
            kind: SurveyKind::Csat,
            score: 4,
            comment: some("quick and friendly"),
        })]);
}

#[test]
fn mark_customer_churned_records_the_churn() {
    let state = given([customer_registered(CUSTOMER)])
        .when(churn(CUSTOMER))
        .then_emits([Event::CustomerChurned(CustomerChurned {
            customer_id: CUSTOMER,
            reason: "moved to a competitor".into(),
        })]);
    assert!(matches!(state, State::Customer(Some(c)) if c.churned));
}

#[test]
fn reactivate_customer_records_the_reactivation() {
    let state = given([customer_registered(CUSTOMER), customer_churned(CUSTOMER)])
        .when(reactivate(CUSTOMER))
        .then_emits([Event::CustomerReactivated(CustomerReactivated {
            customer_id: CUSTOMER,
        })]);
    assert!(matches!(state, State::Customer(Some(c)) if !c.churned));
}

// ---- Order ----

#[test]
fn place_order_records_the_sale() {
    given(Aggregate::Order)
        .when(PlaceOrder {
            cost: Some(eur(25_000)),
            channel: OrderChannel::Store,
            lead_id: Some(LEAD),
            ..place_order(ORDER, CUSTOMER, eur(40_000))
        })
        .then_emits([Event::OrderPlaced(OrderPlaced {
            order_id: ORDER,
            customer_id: CUSTOMER,
            amount: eur(40_000),
            cost: Some(eur(25_000)),
            channel: OrderChannel::Store,
            lead_id: Some(LEAD),
        })]);
}

#[test]
fn refund_order_records_the_refund_for_the_orders_customer() {
    let state = given([order_placed(ORDER, CUSTOMER, eur(60_000))])
        .when(refund(ORDER, eur(10_000)))
        .then_emits([Event::OrderRefunded(OrderRefunded {
            order_id: ORDER,
            customer_id: CUSTOMER,
            amount: eur(10_000),
            reason: "damaged in transit".into(),
        })]);
    assert!(matches!(state, State::Order(Some(o)) if o.refunded_minor == 10_000));
}

#[test]
fn cancel_order_records_the_cancellation() {
    let state = given([order_placed(ORDER, CUSTOMER, eur(60_000))])
        .when(cancel_order(ORDER))
        .then_emits([Event::OrderCancelled(OrderCancelled {
            order_id: ORDER,
            customer_id: CUSTOMER,
            reason: "ordered twice".into(),
        })]);
    assert!(matches!(state, State::Order(Some(o)) if o.cancelled));
}

// ---- Ticket ----

#[test]
fn open_ticket_records_an_open_ticket() {
    let state = given(Aggregate::Ticket)
        .when(OpenTicket {
            category: TicketCategory::Incident,
            priority: TicketPriority::High,
            channel: TicketChannel::InPerson,
            ..open_ticket(TICKET, CUSTOMER)
        })
        .then_emits([Event::TicketOpened(TicketOpened {
            ticket_id: TICKET,
            customer_id: CUSTOMER,
            subject: "Invoice is wrong".into(),
            category: TicketCategory::Incident,
            priority: TicketPriority::High,
            channel: TicketChannel::InPerson,
        })]);
    assert_eq!(ticket(&state).status, TicketStatus::Open);
}

#[test]
fn assign_ticket_records_the_assignee_and_moves_an_open_ticket_to_assigned() {
    let state = given([ticket_opened(TICKET, CUSTOMER)])
        .when(assign_ticket(TICKET))
        .then_emits([Event::TicketAssigned(TicketAssigned {
            ticket_id: TICKET,
            assignee: "linus".into(),
        })]);
    assert_eq!(ticket(&state).status, TicketStatus::Assigned);
    assert_eq!(ticket(&state).assignee, some("linus"));
}

#[test]
fn respond_to_ticket_marks_the_first_public_response() {
    let state = given([ticket_opened(TICKET, CUSTOMER), ticket_assigned(TICKET)])
        .when(respond(TICKET, true))
        .then_emits([Event::TicketResponded(TicketResponded {
            ticket_id: TICKET,
            responder: "linus".into(),
            public: true,
            first_public_response: true,
        })]);
    assert!(ticket(&state).first_public_response_given);
}

#[test]
fn respond_to_ticket_after_the_first_public_response_is_not_first() {
    given([
        ticket_opened(TICKET, CUSTOMER),
        ticket_responded(TICKET, true, true),
    ])
    .when(respond(TICKET, true))
    .then_emits([ticket_responded(TICKET, true, false)]);
}

#[test]
fn respond_to_ticket_privately_does_not_set_first_response() {
    let state = given([ticket_opened(TICKET, CUSTOMER)])
        .when(respond(TICKET, false))
        .then_emits([ticket_responded(TICKET, false, false)]);
    assert!(!ticket(&state).first_public_response_given);
}

#[test]
fn escalate_ticket_records_the_old_and_new_priority() {
    let state = given([ticket_opened(TICKET, CUSTOMER)])
        .when(escalate(TICKET, TicketPriority::Urgent))
        .then_emits([Event::TicketEscalated(TicketEscalated {
            ticket_id: TICKET,
            from_priority: TicketPriority::Normal,
            priority: TicketPriority::Urgent,
        })]);
    assert_eq!(ticket(&state).priority, TicketPriority::Urgent);
}

#[test]
fn resolve_ticket_records_the_resolution() {
    let state = given([ticket_opened(TICKET, CUSTOMER), ticket_assigned(TICKET)])
        .when(resolve(TICKET))
        .then_emits([Event::TicketResolved(TicketResolved {
            ticket_id: TICKET,
            resolution: "credit note sent".into(),
        })]);
    assert_eq!(ticket(&state).status, TicketStatus::Resolved);
}

#[test]
fn close_ticket_closes_a_resolved_ticket() {
    let state = given([ticket_opened(TICKET, CUSTOMER), ticket_resolved(TICKET)])
        .when(close_ticket(TICKET))
        .then_emits([Event::TicketClosed(TicketClosed { ticket_id: TICKET })]);
    assert_eq!(ticket(&state).status, TicketStatus::Closed);
}

#[test]
fn reopen_ticket_reopens_a_resolved_ticket() {
    let state = given([ticket_opened(TICKET, CUSTOMER), ticket_resolved(TICKET)])
        .when(reopen(TICKET))
        .then_emits([Event::TicketReopened(TicketReopened {
            ticket_id: TICKET,
            reason: "still wrong".into(),
        })]);
    assert_eq!(ticket(&state).status, TicketStatus::Open);
}

// ---- Campaign and pipeline ----

#[test]
fn launch_campaign_records_the_campaign() {
    let state = given(Aggregate::Campaign)
        .when(LaunchCampaign {
            channel: CampaignChannel::Social,
            budget: None,
            ..launch_campaign(CAMPAIGN)
        })
        .then_emits([Event::CampaignLaunched(CampaignLaunched {
            campaign_id: CAMPAIGN,
            name: "Winter webinar".into(),
            channel: CampaignChannel::Social,
            budget: None,
        })]);
    assert!(matches!(state, State::Campaign(Some(c)) if !c.ended));
}

#[test]
fn record_campaign_spend_records_the_amount() {
    given([campaign_launched(CAMPAIGN)])
        .when(record_spend(CAMPAIGN, eur(12_500)))
        .then_emits([Event::CampaignSpendRecorded(CampaignSpendRecorded {
            campaign_id: CAMPAIGN,
            amount: eur(12_500),
        })]);
}

#[test]
fn record_campaign_reach_records_the_audience_reached() {
    given([campaign_launched(CAMPAIGN)])
        .when(record_reach(CAMPAIGN, 1_000))
        .then_emits([Event::CampaignReachRecorded(CampaignReachRecorded {
            campaign_id: CAMPAIGN,
            sent: 1_000,
        })]);
}

#[test]
fn record_campaign_response_records_the_responses() {
    given([campaign_launched(CAMPAIGN)])
        .when(record_responses(CAMPAIGN, 40))
        .then_emits([Event::CampaignResponseRecorded(CampaignResponseRecorded {
            campaign_id: CAMPAIGN,
            responses: 40,
        })]);
}

#[test]
fn end_campaign_ends_the_campaign() {
    let state = given([campaign_launched(CAMPAIGN)])
        .when(end_campaign(CAMPAIGN))
        .then_emits([Event::CampaignEnded(CampaignEnded {
            campaign_id: CAMPAIGN,
        })]);
    assert!(matches!(state, State::Campaign(Some(c)) if c.ended));
}

#[test]
fn define_pipeline_records_the_stages_in_order() {
    let state = given(Aggregate::Pipeline)
        .when(define_pipeline("enterprise", &["lead", "demo", "contract"]))
        .then_emits([Event::PipelineDefined(PipelineDefined {
            pipeline: "enterprise".into(),
            stages: vec!["lead".into(), "demo".into(), "contract".into()],
        })]);
    assert_eq!(
        state,
        State::Pipeline(Some(pipeline("enterprise", &["lead", "demo", "contract"])))
    );
}

#[test]
fn define_pipeline_may_redefine_an_existing_pipeline() {
    let state = given([pipeline_defined("default", &["a", "b"])])
        .when(define_pipeline("default", &["a", "b", "c"]))
        .then_emits([pipeline_defined("default", &["a", "b", "c"])]);
    assert_eq!(
        state,
        State::Pipeline(Some(pipeline("default", &["a", "b", "c"])))
    );
}

// ---- Business time ----

#[test]
fn a_command_without_occurred_at_happens_at_the_time_of_recording() {
    let decision = given(Aggregate::Customer)
        .at(ts("2026-11-10T08:00:00Z"))
        .when(register_customer(CUSTOMER))
        .then_appends(vec![StreamEvents {
            stream: customer_stream(CUSTOMER),
            must_be_new: false,
            events: vec![customer_registered(CUSTOMER)],
        }]);
    assert_eq!(decision.occurred_at, ts("2026-11-10T08:00:00Z"));
}

#[test]
fn a_command_with_occurred_at_in_the_past_happens_then() {
    let decision = given(Aggregate::Customer)
        .when(occurred(
            register_customer(CUSTOMER),
            ts("2025-01-31T23:59:59Z"),
        ))
        .then_appends(vec![StreamEvents {
            stream: customer_stream(CUSTOMER),
            must_be_new: false,
            events: vec![customer_registered(CUSTOMER)],
        }]);
    assert_eq!(decision.occurred_at, ts("2025-01-31T23:59:59Z"));
}

/// The accepted-path test of each command. A new command needs a row here; the check below
/// runs every row and fails unless the test really accepts its command.
const ACCEPTED_PATHS: &[(&str, fn())] = &[
    (
        "CreateLead",
        create_lead_records_the_lead_in_the_first_stage_of_the_default_pipeline,
    ),
    (
        "UpdateLeadDetails",
        update_lead_details_records_only_the_fields_that_change,
    ),
    ("ScoreLead", score_lead_records_the_score),
    ("AssignLead", assign_lead_records_the_previous_and_new_owner),
    (
        "AdvanceFunnelStage",
        advance_funnel_stage_moves_the_lead_to_the_next_stage,
    ),
    ("RevertFunnelStage", revert_funnel_stage_moves_the_lead_back),
    ("QualifyLead", qualify_lead_marks_the_lead_qualified),
    ("DisqualifyLead", disqualify_lead_closes_the_lead),
    (
        "WinLead",
        win_lead_registers_a_new_customer_on_a_second_stream_in_the_same_append,
    ),
    ("LoseLead", lose_lead_closes_the_lead),
    ("RegisterCustomer", register_customer_records_the_profile),
    (
        "UpdateCustomerProfile",
        update_customer_profile_records_only_the_changed_fields,
    ),
    (
        "AssignCustomerOwner",
        assign_customer_owner_records_previous_and_new_owner_and_department,
    ),
    ("AddContact", add_contact_records_the_contact),
    ("RemoveContact", remove_contact_records_the_removal),
    (
        "LogInteraction",
        log_interaction_records_the_interaction_at_its_business_time,
    ),
    (
        "RecordSurveyResponse",
        record_survey_response_records_the_answer,
    ),
    (
        "MarkCustomerChurned",
        mark_customer_churned_records_the_churn,
    ),
    (
        "ReactivateCustomer",
        reactivate_customer_records_the_reactivation,
    ),
    ("PlaceOrder", place_order_records_the_sale),
    (
        "RefundOrder",
        refund_order_records_the_refund_for_the_orders_customer,
    ),
    ("CancelOrder", cancel_order_records_the_cancellation),
    ("OpenTicket", open_ticket_records_an_open_ticket),
    (
        "AssignTicket",
        assign_ticket_records_the_assignee_and_moves_an_open_ticket_to_assigned,
    ),
    (
        "RespondToTicket",
        respond_to_ticket_marks_the_first_public_response,
    ),
    (
        "EscalateTicket",
        escalate_ticket_records_the_old_and_new_priority,
    ),
    ("ResolveTicket", resolve_ticket_records_the_resolution),
    ("CloseTicket", close_ticket_closes_a_resolved_ticket),
    ("ReopenTicket", reopen_ticket_reopens_a_resolved_ticket),
    ("LaunchCampaign", launch_campaign_records_the_campaign),
    (
        "RecordCampaignSpend",
        record_campaign_spend_records_the_amount,
    ),
    (
        "RecordCampaignReach",
        record_campaign_reach_records_the_audience_reached,
    ),
    (
        "RecordCampaignResponse",
        record_campaign_response_records_the_responses,
    ),
    ("EndCampaign", end_campaign_ends_the_campaign),
    (
        "DefinePipeline",
        define_pipeline_records_the_stages_in_order,
    ),
];

#[test]
fn every_command_has_an_accepted_path_test() {
    let mut missing = Vec::new();
    for (_, name) in Command::NAMES {
        match ACCEPTED_PATHS.iter().find(|(covered, _)| covered == name) {
            None => missing.push(*name),
            Some((_, test)) => {
                let accepted = accepted_by(*test);
                assert!(
                    accepted.contains(name),
                    "the accepted-path test of {name} accepts only {accepted:?}"
                );
            }
        }
    }
    assert!(
        missing.is_empty(),
        "commands without an accepted-path test in ACCEPTED_PATHS: {missing:?}"
    );
    for (name, _) in ACCEPTED_PATHS {
        assert!(
            Command::NAMES.iter().any(|(_, known)| known == name),
            "ACCEPTED_PATHS names an unknown command {name}"
        );
    }
    // The builders cover every command too, in the order of the contract.
    let names: Vec<_> = one_of_each_command().iter().map(Command::name).collect();
    let expected: Vec<_> = Command::NAMES.iter().map(|(_, name)| *name).collect();
    assert_eq!(names, expected);
}
