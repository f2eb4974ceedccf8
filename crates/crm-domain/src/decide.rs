//! `decide`: state + command -> events or a rejection. Pure: the time of recording comes in
//! through [`Context`], never from a clock.

use crate::command::*;
use crate::event::*;
use crate::rejection::Rejection;
use crate::state::{Campaign, Customer, Lead, Order, Pipeline, State, Ticket};
use crate::time::Timestamp;
use crate::types::{Aggregate, LeadStatus, TicketStatus, DEFAULT_PIPELINE};
use crate::validate::{self, OCCURRED_AT_FUTURE_MICROS_MAX};

/// What `decide` needs besides the aggregate's own state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// When the command is being recorded; the default business time.
    pub now: Timestamp,
    /// The state of the pipeline stream named by [`Command::pipeline_needed`], if the
    /// command needs one and the stream has events (`default` exists without events).
    pub pipeline: Option<Pipeline>,
}

impl Context {
    pub fn at(now: Timestamp) -> Context {
        Context {
            now,
            pipeline: None,
        }
    }
}

/// The events to append, stream by stream, as one atomic append. The first stream is the
/// command's own; a further stream (the customer a `WinLead` registers) must be new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub occurred_at: Timestamp,
    pub appends: Vec<StreamEvents>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvents {
    pub stream: String,
    /// The stream must not exist yet (appended with expected version `no_stream`).
    pub must_be_new: bool,
    pub events: Vec<Event>,
}

impl Decision {
    fn single(occurred_at: Timestamp, stream: String, event: Event) -> Decision {
        Decision {
            occurred_at,
            appends: vec![StreamEvents {
                stream,
                must_be_new: false,
                events: vec![event],
            }],
        }
    }

    /// Every event of the decision with the stream it goes to, in append order.
    pub fn events(&self) -> impl Iterator<Item = (&str, &Event)> {
        self.appends
            .iter()
            .flat_map(|a| a.events.iter().map(move |e| (a.stream.as_str(), e)))
    }
}

/// Decides `command` against the state of its stream.
pub fn decide(state: &State, command: &Command, context: &Context) -> Result<Decision, Rejection> {
    let occurred_at = business_time(command, context)?;
    let stream = command.stream();
    // The caller loaded the state of another aggregate: a bug, refused without effect.
    let wrong_state = || {
        Rejection::validation(
            "command",
            format!(
                "{} was decided against the state of a {} stream",
                command.name(),
                state.aggregate()
            ),
        )
    };
    let event = match command.split() {
        AggregateCommand::Lead(command) => {
            let State::Lead(lead) = state else {
                return Err(wrong_state());
            };
            return decide_lead(lead.as_ref(), command, context, stream, occurred_at);
        }
        AggregateCommand::Customer(command) => {
            let State::Customer(customer) = state else {
                return Err(wrong_state());
            };
            decide_customer(customer.as_ref(), command, &stream)?
        }
        AggregateCommand::Order(command) => {
            let State::Order(order) = state else {
                return Err(wrong_state());
            };
            decide_order(order.as_ref(), command, &stream)?
        }
        AggregateCommand::Ticket(command) => {
            let State::Ticket(ticket) = state else {
                return Err(wrong_state());
            };
            decide_ticket(ticket.as_ref(), command, &stream)?
        }
        AggregateCommand::Campaign(command) => {
            let State::Campaign(campaign) = state else {
                return Err(wrong_state());
            };
            decide_campaign(campaign.as_ref(), command, &stream)?
        }
        AggregateCommand::Pipeline(command) => {
            let State::Pipeline(pipeline) = state else {
                return Err(wrong_state());
            };
            decide_pipeline(pipeline.as_ref(), command)?
        }
    };
    Ok(Decision::single(occurred_at, stream, event))
}

fn business_time(command: &Command, context: &Context) -> Result<Timestamp, Rejection> {
    match command.occurred_at() {
        None => Ok(context.now),
        Some(at)
            if at
                > context
                    .now
                    .saturating_add_micros(OCCURRED_AT_FUTURE_MICROS_MAX) =>
        {
            Err(Rejection::validation(
                "occurred_at",
                format!(
                    "{at} lies more than 5 minutes after the time of recording {}",
                    context.now
                ),
            ))
        }
        Some(at) => Ok(at),
    }
}

fn not_found(stream: &str) -> Rejection {
    Rejection::NotFound {
        stream: stream.to_owned(),
    }
}

fn already_exists(stream: &str) -> Rejection {
    Rejection::AlreadyExists {
        stream: stream.to_owned(),
    }
}

/// Lead commands other than `CreateLead` need an existing, open lead.
fn open_lead<'a>(lead: Option<&'a Lead>, stream: &str) -> Result<&'a Lead, Rejection> {
    let lead = lead.ok_or_else(|| not_found(stream))?;
    if lead.is_closed() {
        return Err(Rejection::transition(format!(
            "the lead is closed ({})",
            lead.status
        )));
    }
    Ok(lead)
}

fn decide_lead(
    lead: Option<&Lead>,
    command: LeadCommand<'_>,
    context: &Context,
    stream: String,
    occurred_at: Timestamp,
) -> Result<Decision, Rejection> {
    let event = match command {
        LeadCommand::CreateLead(c) => {
            if lead.is_some() {
                return Err(already_exists(&stream));
            }
            validate::name("name", &c.name)?;
            validate::email("email", c.email.as_ref())?;
            validate::phone("phone", c.phone.as_ref())?;
            validate::optional_name("company", c.company.as_ref())?;
            validate::optional_label("owner", c.owner.as_ref())?;
            if let Some(value) = &c.estimated_value {
                validate::money_non_negative("estimated_value", value)?;
            }
            let pipeline_name = c.pipeline.as_deref().unwrap_or(DEFAULT_PIPELINE);
            validate::slug("pipeline", pipeline_name)?;
            // A definition of another pipeline (a caller's mistake) must not lend its stages.
            let pipeline = Pipeline::effective(pipeline_name, context.pipeline.as_ref())
                .filter(|p| p.name == pipeline_name)
                .ok_or_else(|| not_found(&crate::types::pipeline_stream(pipeline_name)))?;
            let first_stage = pipeline.stages.first().cloned().ok_or_else(|| {
                Rejection::transition(format!("pipeline `{pipeline_name}` has no stages"))
            })?;
            Event::LeadCreated(LeadCreated {
                lead_id: c.lead_id,
                name: c.name.clone(),
                email: c.email.clone(),
                phone: c.phone.clone(),
                company: c.company.clone(),
                source: c.source,
                campaign_id: c.campaign_id,
                customer_id: c.customer_id,
                owner: c.owner.clone(),
                estimated_value: c.estimated_value,
                pipeline: pipeline_name.to_owned(),
                stage: first_stage,
            })
        }
        LeadCommand::UpdateLeadDetails(c) => {
            let lead = open_lead(lead, &stream)?;
            validate::optional_name("name", c.name.as_ref())?;
            validate::email("email", c.email.as_ref())?;
            validate::phone("phone", c.phone.as_ref())?;
            validate::optional_name("company", c.company.as_ref())?;
            if let Some(value) = &c.estimated_value {
                validate::money_non_negative("estimated_value", value)?;
            }
            let update = LeadDetailsUpdated {
                lead_id: c.lead_id,
                name: changed(&c.name, &Some(lead.name.clone())),
                email: changed(&c.email, &lead.email),
                phone: changed(&c.phone, &lead.phone),
                company: changed(&c.company, &lead.company),
                estimated_value: changed(&c.estimated_value, &lead.estimated_value),
            };
            if update.name.is_none()
                && update.email.is_none()
                && update.phone.is_none()
                && update.company.is_none()
                && update.estimated_value.is_none()
            {
                return Err(Rejection::no_change("no lead detail would change"));
            }
            Event::LeadDetailsUpdated(update)
        }
        LeadCommand::ScoreLead(c) => {
            open_lead(lead, &stream)?;
            if c.score > 100 {
                return Err(Rejection::validation("score", "must be between 0 and 100"));
            }
            validate::optional_text("reason", c.reason.as_ref())?;
            Event::LeadScored(LeadScored {
                lead_id: c.lead_id,
                score: c.score,
                reason: c.reason.clone(),
            })
        }
        LeadCommand::AssignLead(c) => {
            let lead = open_lead(lead, &stream)?;
            validate::label("owner", &c.owner)?;
            Event::LeadAssigned(LeadAssigned {
                lead_id: c.lead_id,
                previous_owner: lead.owner.clone(),
                owner: c.owner.clone(),
            })
        }
        LeadCommand::AdvanceFunnelStage(c) => {
            let lead = open_lead(lead, &stream)?;
            let pipeline = lead_pipeline(lead, context)?;
            let to = pipeline
                .index_of(&c.to_stage)
                .ok_or_else(|| unknown_stage(&c.to_stage, lead))?;
            let from = pipeline.index_of(&lead.stage);
            if from.is_some_and(|from| to <= from) {
                return Err(Rejection::transition(format!(
                    "`{}` is not after the current stage `{}`",
                    c.to_stage, lead.stage
                )));
            }
            // A lead whose stage left the pipeline (redefined) re-enters it at any stage.
            let next = from.map_or(0, |from| from + 1);
            if to > next && !c.allow_skip.unwrap_or(false) {
                return Err(Rejection::transition(format!(
                    "advancing from `{}` to `{}` skips stages; set allow_skip to do so",
                    lead.stage, c.to_stage
                )));
            }
            Event::FunnelStageAdvanced(FunnelStageAdvanced {
                lead_id: c.lead_id,
                pipeline: lead.pipeline.clone(),
                from_stage: lead.stage.clone(),
                to_stage: c.to_stage.clone(),
            })
        }
        LeadCommand::RevertFunnelStage(c) => {
            let lead = open_lead(lead, &stream)?;
            validate::text("reason", &c.reason)?;
            let pipeline = lead_pipeline(lead, context)?;
            let to = pipeline
                .index_of(&c.to_stage)
                .ok_or_else(|| unknown_stage(&c.to_stage, lead))?;
            let before = pipeline.index_of(&lead.stage).is_some_and(|from| to < from);
            if !before {
                return Err(Rejection::transition(format!(
                    "`{}` is not before the current stage `{}`",
                    c.to_stage, lead.stage
                )));
            }
            Event::FunnelStageReverted(FunnelStageReverted {
                lead_id: c.lead_id,
                pipeline: lead.pipeline.clone(),
                from_stage: lead.stage.clone(),
                to_stage: c.to_stage.clone(),
                reason: c.reason.clone(),
            })
        }
        LeadCommand::QualifyLead(c) => {
            let lead = open_lead(lead, &stream)?;
            if lead.qualified {
                return Err(Rejection::transition("the lead is already qualified"));
            }
            Event::LeadQualified(LeadQualified { lead_id: c.lead_id })
        }
        LeadCommand::DisqualifyLead(c) => {
            open_lead(lead, &stream)?;
            validate::text("reason", &c.reason)?;
            Event::LeadDisqualified(LeadDisqualified {
                lead_id: c.lead_id,
                reason: c.reason.clone(),
            })
        }
        LeadCommand::WinLead(c) => return win_lead(lead, c, stream, occurred_at),
        LeadCommand::LoseLead(c) => {
            open_lead(lead, &stream)?;
            validate::text("reason", &c.reason)?;
            Event::LeadLost(LeadLost {
                lead_id: c.lead_id,
                reason: c.reason.clone(),
            })
        }
    };
    Ok(Decision::single(occurred_at, stream, event))
}

fn lead_pipeline(lead: &Lead, context: &Context) -> Result<Pipeline, Rejection> {
    Pipeline::effective(&lead.pipeline, context.pipeline.as_ref())
        .filter(|p| p.name == lead.pipeline)
        .ok_or_else(|| not_found(&crate::types::pipeline_stream(&lead.pipeline)))
}

fn unknown_stage(stage: &str, lead: &Lead) -> Rejection {
    Rejection::validation(
        "to_stage",
        format!("`{stage}` is not a stage of pipeline `{}`", lead.pipeline),
    )
}

/// `Some(new)` when `new` is given and differs from `current`.
fn changed<T: Clone + PartialEq>(new: &Option<T>, current: &Option<T>) -> Option<T> {
    match new {
        Some(value) if current.as_ref() != Some(value) => Some(value.clone()),
        _ => None,
    }
}

fn win_lead(
    lead: Option<&Lead>,
    c: &WinLead,
    stream: String,
    occurred_at: Timestamp,
) -> Result<Decision, Rejection> {
    let lead = lead.ok_or_else(|| not_found(&stream))?;
    if lead.status == LeadStatus::Disqualified {
        return Err(Rejection::transition("a disqualified lead cannot be won"));
    }
    let lead = open_lead(Some(lead), &stream)?;
    validate::money_non_negative("deal_value", &c.deal_value)?;
    let (customer_id, new_customer) = match (lead.customer_id, c.customer_id) {
        (Some(existing), Some(given)) if existing != given => {
            return Err(Rejection::validation(
                "customer_id",
                format!("the lead belongs to customer {existing}, not {given}"),
            ))
        }
        (Some(existing), _) => (existing, false),
        (None, Some(given)) => (given, true),
        (None, None) => {
            return Err(Rejection::validation(
                "customer_id",
                "required: the lead has no customer yet and winning it registers one",
            ))
        }
    };
    let mut appends = vec![StreamEvents {
        stream,
        must_be_new: false,
        events: vec![Event::LeadWon(LeadWon {
            lead_id: lead.lead_id,
            deal_value: c.deal_value,
            customer_id,
            new_customer,
        })],
    }];
    if new_customer {
        appends.push(StreamEvents {
            stream: Aggregate::Customer.stream_for(customer_id),
            must_be_new: true,
            events: vec![Event::CustomerRegistered(CustomerRegistered {
                customer_id,
                name: lead.company.clone().unwrap_or_else(|| lead.name.clone()),
                email: lead.email.clone(),
                phone: lead.phone.clone(),
                segment: None,
                industry: None,
                region: None,
                owner: lead.owner.clone(),
                department: None,
                source: Some(lead.source),
                from_lead: Some(lead.lead_id),
            })],
        });
    }
    Ok(Decision {
        occurred_at,
        appends,
    })
}

fn existing<'a, T>(state: Option<&'a T>, stream: &str) -> Result<&'a T, Rejection> {
    state.ok_or_else(|| not_found(stream))
}

fn decide_customer(
    customer: Option<&Customer>,
    command: CustomerCommand<'_>,
    stream: &str,
) -> Result<Event, Rejection> {
    let event = match command {
        CustomerCommand::RegisterCustomer(c) => {
            if customer.is_some() {
                return Err(already_exists(stream));
            }
            validate::name("name", &c.name)?;
            validate::email("email", c.email.as_ref())?;
            validate::phone("phone", c.phone.as_ref())?;
            validate::optional_label("industry", c.industry.as_ref())?;
            validate::optional_label("region", c.region.as_ref())?;
            validate::optional_label("owner", c.owner.as_ref())?;
            validate::optional_label("department", c.department.as_ref())?;
            Event::CustomerRegistered(CustomerRegistered {
                customer_id: c.customer_id,
                name: c.name.clone(),
                email: c.email.clone(),
                phone: c.phone.clone(),
                segment: c.segment,
                industry: c.industry.clone(),
                region: c.region.clone(),
                owner: c.owner.clone(),
                department: c.department.clone(),
                source: c.source,
                from_lead: None,
            })
        }
        CustomerCommand::UpdateCustomerProfile(c) => {
            let customer = existing(customer, stream)?;
            validate::optional_name("name", c.name.as_ref())?;
            validate::email("email", c.email.as_ref())?;
            validate::phone("phone", c.phone.as_ref())?;
            validate::optional_label("industry", c.industry.as_ref())?;
            validate::optional_label("region", c.region.as_ref())?;
            let update = CustomerProfileUpdated {
                customer_id: c.customer_id,
                name: changed(&c.name, &Some(customer.name.clone())),
                email: changed(&c.email, &customer.email),
                phone: changed(&c.phone, &customer.phone),
                segment: changed(&c.segment, &customer.segment),
                industry: changed(&c.industry, &customer.industry),
                region: changed(&c.region, &customer.region),
            };
            if update.name.is_none()
                && update.email.is_none()
                && update.phone.is_none()
                && update.segment.is_none()
                && update.industry.is_none()
                && update.region.is_none()
            {
                return Err(Rejection::no_change("no profile field would change"));
            }
            Event::CustomerProfileUpdated(update)
        }
        CustomerCommand::AssignCustomerOwner(c) => {
            let customer = existing(customer, stream)?;
            validate::optional_label("owner", c.owner.as_ref())?;
            validate::optional_label("department", c.department.as_ref())?;
            if c.owner.is_none() && c.department.is_none() {
                return Err(Rejection::validation(
                    "owner",
                    "give an owner, a department or both",
                ));
            }
            let owner = c.owner.clone().or_else(|| customer.owner.clone());
            let department = c.department.clone().or_else(|| customer.department.clone());
            if owner == customer.owner && department == customer.department {
                return Err(Rejection::no_change(
                    "the customer already has this owner and department",
                ));
            }
            Event::CustomerOwnerAssigned(CustomerOwnerAssigned {
                customer_id: c.customer_id,
                previous_owner: customer.owner.clone(),
                previous_department: customer.department.clone(),
                owner,
                department,
            })
        }
        CustomerCommand::AddContact(c) => {
            let customer = existing(customer, stream)?;
            validate::name("name", &c.name)?;
            validate::optional_label("role", c.role.as_ref())?;
            validate::email("email", c.email.as_ref())?;
            validate::phone("phone", c.phone.as_ref())?;
            if customer.contacts.contains_key(&c.contact_id) {
                return Err(Rejection::AlreadyExists {
                    stream: format!("{stream} contact {}", c.contact_id),
                });
            }
            Event::ContactAdded(ContactAdded {
                customer_id: c.customer_id,
                contact_id: c.contact_id,
                name: c.name.clone(),
                role: c.role.clone(),
                email: c.email.clone(),
                phone: c.phone.clone(),
            })
        }
        CustomerCommand::RemoveContact(c) => {
            let customer = existing(customer, stream)?;
            if !customer.contacts.contains_key(&c.contact_id) {
                return Err(Rejection::NotFound {
                    stream: format!("{stream} contact {}", c.contact_id),
                });
            }
            Event::ContactRemoved(ContactRemoved {
                customer_id: c.customer_id,
                contact_id: c.contact_id,
            })
        }
        CustomerCommand::LogInteraction(c) => {
            let customer = existing(customer, stream)?;
            validate::optional_label("channel", c.channel.as_ref())?;
            if customer.churned {
                return Err(Rejection::transition(
                    "the customer has churned; reactivate it first",
                ));
            }
            Event::InteractionLogged(InteractionLogged {
                customer_id: c.customer_id,
                interaction_id: c.interaction_id,
                kind: c.kind,
                channel: c.channel.clone(),
            })
        }
        CustomerCommand::RecordSurveyResponse(c) => {
            existing(customer, stream)?;
            let range = c.kind.score_range();
            if !range.contains(&c.score) {
                return Err(Rejection::validation(
                    "score",
                    format!(
                        "a {} score is between {} and {}",
                        c.kind,
                        range.start(),
                        range.end()
                    ),
                ));
            }
            validate::optional_text("comment", c.comment.as_ref())?;
            Event::SurveyResponseRecorded(SurveyResponseRecorded {
                customer_id: c.customer_id,
                response_id: c.response_id,
                kind: c.kind,
                score: c.score,
                comment: c.comment.clone(),
            })
        }
        CustomerCommand::MarkCustomerChurned(c) => {
            let customer = existing(customer, stream)?;
            validate::text("reason", &c.reason)?;
            if customer.churned {
                return Err(Rejection::transition("the customer has already churned"));
            }
            Event::CustomerChurned(CustomerChurned {
                customer_id: c.customer_id,
                reason: c.reason.clone(),
            })
        }
        CustomerCommand::ReactivateCustomer(c) => {
            let customer = existing(customer, stream)?;
            if !customer.churned {
                return Err(Rejection::transition("the customer has not churned"));
            }
            Event::CustomerReactivated(CustomerReactivated {
                customer_id: c.customer_id,
            })
        }
    };
    Ok(event)
}

fn decide_order(
    order: Option<&Order>,
    command: OrderCommand<'_>,
    stream: &str,
) -> Result<Event, Rejection> {
    let event = match command {
        OrderCommand::PlaceOrder(c) => {
            if order.is_some() {
                return Err(already_exists(stream));
            }
            validate::money_positive("amount", &c.amount)?;
            if let Some(cost) = &c.cost {
                validate::money_non_negative("cost", cost)?;
                if cost.currency != c.amount.currency {
                    return Err(Rejection::validation(
                        "cost",
                        format!(
                            "cost in {} but amount in {}",
                            cost.currency, c.amount.currency
                        ),
                    ));
                }
            }
            Event::OrderPlaced(OrderPlaced {
                order_id: c.order_id,
                customer_id: c.customer_id,
                amount: c.amount,
                cost: c.cost,
                channel: c.channel,
                lead_id: c.lead_id,
            })
        }
        OrderCommand::RefundOrder(c) => {
            let order = existing(order, stream)?;
            validate::money_positive("amount", &c.amount)?;
            validate::same_currency("amount", &c.amount, &order.amount)?;
            validate::text("reason", &c.reason)?;
            if order.cancelled {
                return Err(Rejection::transition("the order is cancelled"));
            }
            let refundable = order.amount.amount_minor - order.refunded_minor;
            if c.amount.amount_minor > refundable {
                return Err(Rejection::transition(format!(
                    "refunds would exceed the order amount: {refundable} left to refund"
                )));
            }
            Event::OrderRefunded(OrderRefunded {
                order_id: c.order_id,
                customer_id: order.customer_id,
                amount: c.amount,
                reason: c.reason.clone(),
            })
        }
        OrderCommand::CancelOrder(c) => {
            let order = existing(order, stream)?;
            validate::text("reason", &c.reason)?;
            if order.cancelled {
                return Err(Rejection::transition("the order is already cancelled"));
            }
            if order.refunded_minor > 0 {
                return Err(Rejection::transition(
                    "the order is refunded in part; refund the rest instead",
                ));
            }
            Event::OrderCancelled(OrderCancelled {
                order_id: c.order_id,
                customer_id: order.customer_id,
                reason: c.reason.clone(),
            })
        }
    };
    Ok(event)
}

fn decide_ticket(
    ticket: Option<&Ticket>,
    command: TicketCommand<'_>,
    stream: &str,
) -> Result<Event, Rejection> {
    let not_closed = |ticket: Option<&Ticket>| -> Result<Ticket, Rejection> {
        let ticket = existing(ticket, stream)?;
        if ticket.status == TicketStatus::Closed {
            return Err(Rejection::transition("the ticket is closed"));
        }
        Ok(ticket.clone())
    };
    let event = match command {
        TicketCommand::OpenTicket(c) => {
            if ticket.is_some() {
                return Err(already_exists(stream));
            }
            validate::text("subject", &c.subject)?;
            Event::TicketOpened(TicketOpened {
                ticket_id: c.ticket_id,
                customer_id: c.customer_id,
                subject: c.subject.clone(),
                category: c.category,
                priority: c.priority,
                channel: c.channel,
            })
        }
        TicketCommand::AssignTicket(c) => {
            not_closed(ticket)?;
            validate::label("assignee", &c.assignee)?;
            Event::TicketAssigned(TicketAssigned {
                ticket_id: c.ticket_id,
                assignee: c.assignee.clone(),
            })
        }
        TicketCommand::RespondToTicket(c) => {
            let ticket = not_closed(ticket)?;
            validate::label("responder", &c.responder)?;
            Event::TicketResponded(TicketResponded {
                ticket_id: c.ticket_id,
                responder: c.responder.clone(),
                public: c.public,
                first_public_response: c.public && !ticket.first_public_response_given,
            })
        }
        TicketCommand::EscalateTicket(c) => {
            let ticket = not_closed(ticket)?;
            if c.priority <= ticket.priority {
                return Err(Rejection::transition(format!(
                    "priority {} is not higher than {}",
                    c.priority, ticket.priority
                )));
            }
            Event::TicketEscalated(TicketEscalated {
                ticket_id: c.ticket_id,
                from_priority: ticket.priority,
                priority: c.priority,
            })
        }
        TicketCommand::ResolveTicket(c) => {
            let ticket = existing(ticket, stream)?;
            validate::text("resolution", &c.resolution)?;
            match ticket.status {
                TicketStatus::Open | TicketStatus::Assigned => {}
                TicketStatus::Resolved => {
                    return Err(Rejection::transition("the ticket is already resolved"))
                }
                TicketStatus::Closed => return Err(Rejection::transition("the ticket is closed")),
            }
            Event::TicketResolved(TicketResolved {
                ticket_id: c.ticket_id,
                resolution: c.resolution.clone(),
            })
        }
        TicketCommand::CloseTicket(c) => {
            not_closed(ticket)?;
            Event::TicketClosed(TicketClosed {
                ticket_id: c.ticket_id,
            })
        }
        TicketCommand::ReopenTicket(c) => {
            let ticket = existing(ticket, stream)?;
            validate::text("reason", &c.reason)?;
            if !matches!(ticket.status, TicketStatus::Resolved | TicketStatus::Closed) {
                return Err(Rejection::transition(format!(
                    "only a resolved or closed ticket can be reopened; it is {}",
                    ticket.status
                )));
            }
            Event::TicketReopened(TicketReopened {
                ticket_id: c.ticket_id,
                reason: c.reason.clone(),
            })
        }
    };
    Ok(event)
}

fn decide_campaign(
    campaign: Option<&Campaign>,
    command: CampaignCommand<'_>,
    stream: &str,
) -> Result<Event, Rejection> {
    let running = |campaign: Option<&Campaign>| -> Result<(), Rejection> {
        if existing(campaign, stream)?.ended {
            return Err(Rejection::transition("the campaign has ended"));
        }
        Ok(())
    };
    let event = match command {
        CampaignCommand::LaunchCampaign(c) => {
            if campaign.is_some() {
                return Err(already_exists(stream));
            }
            validate::name("name", &c.name)?;
            if let Some(budget) = &c.budget {
                validate::money_non_negative("budget", budget)?;
            }
            Event::CampaignLaunched(CampaignLaunched {
                campaign_id: c.campaign_id,
                name: c.name.clone(),
                channel: c.channel,
                budget: c.budget,
            })
        }
        CampaignCommand::RecordCampaignSpend(c) => {
            running(campaign)?;
            validate::money_positive("amount", &c.amount)?;
            Event::CampaignSpendRecorded(CampaignSpendRecorded {
                campaign_id: c.campaign_id,
                amount: c.amount,
            })
        }
        CampaignCommand::RecordCampaignReach(c) => {
            running(campaign)?;
            if c.sent == 0 {
                return Err(Rejection::validation("sent", "must be greater than zero"));
            }
            Event::CampaignReachRecorded(CampaignReachRecorded {
                campaign_id: c.campaign_id,
                sent: c.sent,
            })
        }
        CampaignCommand::RecordCampaignResponse(c) => {
            running(campaign)?;
            if c.responses == 0 {
                return Err(Rejection::validation(
                    "responses",
                    "must be greater than zero",
                ));
            }
            Event::CampaignResponseRecorded(CampaignResponseRecorded {
                campaign_id: c.campaign_id,
                responses: c.responses,
            })
        }
        CampaignCommand::EndCampaign(c) => {
            if existing(campaign, stream)?.ended {
                return Err(Rejection::transition("the campaign has already ended"));
            }
            Event::CampaignEnded(CampaignEnded {
                campaign_id: c.campaign_id,
            })
        }
    };
    Ok(event)
}

fn decide_pipeline(
    _pipeline: Option<&Pipeline>,
    command: PipelineCommand<'_>,
) -> Result<Event, Rejection> {
    let PipelineCommand::DefinePipeline(c) = command;
    validate::slug("pipeline", &c.pipeline)?;
    let count = c.stages.len();
    if !(validate::PIPELINE_STAGES_MIN..=validate::PIPELINE_STAGES_MAX).contains(&count) {
        return Err(Rejection::validation(
            "stages",
            format!(
                "a pipeline has {} to {} stages, not {count}",
                validate::PIPELINE_STAGES_MIN,
                validate::PIPELINE_STAGES_MAX
            ),
        ));
    }
    for (i, stage) in c.stages.iter().enumerate() {
        validate::slug("stages", stage)?;
        if c.stages[..i].contains(stage) {
            return Err(Rejection::validation(
                "stages",
                format!("stage `{stage}` appears twice"),
            ));
        }
    }
    Ok(Event::PipelineDefined(PipelineDefined {
        pipeline: c.pipeline.clone(),
        stages: c.stages.clone(),
    }))
}
