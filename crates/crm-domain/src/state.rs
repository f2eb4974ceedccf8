//! Aggregate state and `evolve`: the pure fold of one stream's events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{
    AggregateEvent, CampaignEvent, CustomerEvent, Event, LeadEvent, OrderEvent, PipelineEvent,
    TicketEvent,
};
use crate::money::Money;
use crate::types::{
    Aggregate, CampaignChannel, LeadSource, LeadStatus, OrderChannel, Segment, TicketCategory,
    TicketPriority, TicketStatus, DEFAULT_PIPELINE, DEFAULT_PIPELINE_STAGES,
};

/// The state of one stream. `None` inside a variant: the stream has no events yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Lead(Option<Lead>),
    Customer(Option<Customer>),
    Order(Option<Order>),
    Ticket(Option<Ticket>),
    Campaign(Option<Campaign>),
    Pipeline(Option<Pipeline>),
}

impl State {
    /// The state of a stream that has no events.
    pub fn empty(aggregate: Aggregate) -> State {
        match aggregate {
            Aggregate::Lead => State::Lead(None),
            Aggregate::Customer => State::Customer(None),
            Aggregate::Order => State::Order(None),
            Aggregate::Ticket => State::Ticket(None),
            Aggregate::Campaign => State::Campaign(None),
            Aggregate::Pipeline => State::Pipeline(None),
        }
    }

    pub fn aggregate(&self) -> Aggregate {
        match self {
            State::Lead(_) => Aggregate::Lead,
            State::Customer(_) => Aggregate::Customer,
            State::Order(_) => Aggregate::Order,
            State::Ticket(_) => Aggregate::Ticket,
            State::Campaign(_) => Aggregate::Campaign,
            State::Pipeline(_) => Aggregate::Pipeline,
        }
    }

    pub fn exists(&self) -> bool {
        match self {
            State::Lead(s) => s.is_some(),
            State::Customer(s) => s.is_some(),
            State::Order(s) => s.is_some(),
            State::Ticket(s) => s.is_some(),
            State::Campaign(s) => s.is_some(),
            State::Pipeline(s) => s.is_some(),
        }
    }

    /// The pipeline a lead is in, so the caller can load its definition for `decide`.
    pub fn lead_pipeline(&self) -> Option<&str> {
        match self {
            State::Lead(Some(lead)) => Some(&lead.pipeline),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    pub lead_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub source: LeadSource,
    pub campaign_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub owner: Option<String>,
    pub estimated_value: Option<Money>,
    pub pipeline: String,
    pub stage: String,
    pub status: LeadStatus,
    pub qualified: bool,
    pub score: Option<u8>,
}

impl Lead {
    pub fn is_closed(&self) -> bool {
        self.status != LeadStatus::Open
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub role: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub segment: Option<Segment>,
    pub industry: Option<String>,
    pub region: Option<String>,
    pub owner: Option<String>,
    pub department: Option<String>,
    pub source: Option<LeadSource>,
    pub contacts: BTreeMap<Uuid, Contact>,
    pub churned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub amount: Money,
    pub cost: Option<Money>,
    pub channel: OrderChannel,
    pub refunded_minor: i64,
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub ticket_id: Uuid,
    pub customer_id: Uuid,
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub status: TicketStatus,
    pub assignee: Option<String>,
    pub first_public_response_given: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub campaign_id: Uuid,
    pub name: String,
    pub channel: CampaignChannel,
    pub budget: Option<Money>,
    pub ended: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    pub name: String,
    pub stages: Vec<String>,
}

impl Pipeline {
    /// The pipeline named `name` given its stream's state: the `default` pipeline exists
    /// from the first start, with the stages of `docs/DOMAIN.md`, until it is redefined.
    pub fn effective(name: &str, defined: Option<&Pipeline>) -> Option<Pipeline> {
        match defined {
            Some(pipeline) => Some(pipeline.clone()),
            None if name == DEFAULT_PIPELINE => Some(Pipeline {
                name: DEFAULT_PIPELINE.to_owned(),
                stages: DEFAULT_PIPELINE_STAGES.map(str::to_owned).to_vec(),
            }),
            None => None,
        }
    }

    pub fn index_of(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| s == stage)
    }
}

/// Applies one event of the stream to its state. Total: an event of another aggregate, or
/// one that does not fit the state, leaves the state unchanged (the log only ever holds
/// events that `decide` produced for this stream, so that never happens in practice).
pub fn evolve(state: State, event: &Event) -> State {
    match event.split() {
        AggregateEvent::Lead(event) => match state {
            State::Lead(lead) => State::Lead(evolve_lead(lead, event)),
            other => other,
        },
        AggregateEvent::Customer(event) => match state {
            State::Customer(customer) => State::Customer(evolve_customer(customer, event)),
            other => other,
        },
        AggregateEvent::Order(event) => match state {
            State::Order(order) => State::Order(evolve_order(order, event)),
            other => other,
        },
        AggregateEvent::Ticket(event) => match state {
            State::Ticket(ticket) => State::Ticket(evolve_ticket(ticket, event)),
            other => other,
        },
        AggregateEvent::Campaign(event) => match state {
            State::Campaign(campaign) => State::Campaign(evolve_campaign(campaign, event)),
            other => other,
        },
        AggregateEvent::Pipeline(event) => match state {
            State::Pipeline(pipeline) => State::Pipeline(evolve_pipeline(pipeline, event)),
            other => other,
        },
    }
}

fn set_if_some<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
    if let Some(value) = value {
        *target = Some(value.clone());
    }
}

fn evolve_lead(lead: Option<Lead>, event: LeadEvent<'_>) -> Option<Lead> {
    let Some(mut lead) = lead else {
        // Only the creation starts a lead; anything else before it changes nothing.
        return match event {
            LeadEvent::LeadCreated(e) => Some(Lead {
                lead_id: e.lead_id,
                name: e.name.clone(),
                email: e.email.clone(),
                phone: e.phone.clone(),
                company: e.company.clone(),
                source: e.source,
                campaign_id: e.campaign_id,
                customer_id: e.customer_id,
                owner: e.owner.clone(),
                estimated_value: e.estimated_value,
                pipeline: e.pipeline.clone(),
                stage: e.stage.clone(),
                status: LeadStatus::Open,
                qualified: false,
                score: None,
            }),
            _ => None,
        };
    };
    match event {
        LeadEvent::LeadCreated(_) => {}
        LeadEvent::LeadDetailsUpdated(e) => {
            if let Some(name) = &e.name {
                lead.name = name.clone();
            }
            set_if_some(&mut lead.email, &e.email);
            set_if_some(&mut lead.phone, &e.phone);
            set_if_some(&mut lead.company, &e.company);
            set_if_some(&mut lead.estimated_value, &e.estimated_value);
        }
        LeadEvent::LeadScored(e) => lead.score = Some(e.score),
        LeadEvent::LeadAssigned(e) => lead.owner = Some(e.owner.clone()),
        LeadEvent::FunnelStageAdvanced(e) => lead.stage = e.to_stage.clone(),
        LeadEvent::FunnelStageReverted(e) => lead.stage = e.to_stage.clone(),
        LeadEvent::LeadQualified(_) => lead.qualified = true,
        LeadEvent::LeadDisqualified(_) => lead.status = LeadStatus::Disqualified,
        LeadEvent::LeadWon(e) => {
            lead.status = LeadStatus::Won;
            lead.customer_id = Some(e.customer_id);
        }
        LeadEvent::LeadLost(_) => lead.status = LeadStatus::Lost,
    }
    Some(lead)
}

fn evolve_customer(customer: Option<Customer>, event: CustomerEvent<'_>) -> Option<Customer> {
    let Some(mut customer) = customer else {
        // Only the registration starts a customer.
        return match event {
            CustomerEvent::CustomerRegistered(e) => Some(Customer {
                customer_id: e.customer_id,
                name: e.name.clone(),
                email: e.email.clone(),
                phone: e.phone.clone(),
                segment: e.segment,
                industry: e.industry.clone(),
                region: e.region.clone(),
                owner: e.owner.clone(),
                department: e.department.clone(),
                source: e.source,
                contacts: BTreeMap::new(),
                churned: false,
            }),
            _ => None,
        };
    };
    match event {
        CustomerEvent::CustomerRegistered(_) => {}
        CustomerEvent::CustomerProfileUpdated(e) => {
            if let Some(name) = &e.name {
                customer.name = name.clone();
            }
            set_if_some(&mut customer.email, &e.email);
            set_if_some(&mut customer.phone, &e.phone);
            set_if_some(&mut customer.segment, &e.segment);
            set_if_some(&mut customer.industry, &e.industry);
            set_if_some(&mut customer.region, &e.region);
        }
        CustomerEvent::CustomerOwnerAssigned(e) => {
            customer.owner = e.owner.clone();
            customer.department = e.department.clone();
        }
        CustomerEvent::ContactAdded(e) => {
            customer.contacts.insert(
                e.contact_id,
                Contact {
                    name: e.name.clone(),
                    role: e.role.clone(),
                    email: e.email.clone(),
                    phone: e.phone.clone(),
                },
            );
        }
        CustomerEvent::ContactRemoved(e) => {
            customer.contacts.remove(&e.contact_id);
        }
        // Interactions and survey answers are facts for the read models, not decision state.
        CustomerEvent::InteractionLogged(_) | CustomerEvent::SurveyResponseRecorded(_) => {}
        CustomerEvent::CustomerChurned(_) => customer.churned = true,
        CustomerEvent::CustomerReactivated(_) => customer.churned = false,
    }
    Some(customer)
}

fn evolve_order(order: Option<Order>, event: OrderEvent<'_>) -> Option<Order> {
    let Some(mut order) = order else {
        return match event {
            OrderEvent::OrderPlaced(e) => Some(Order {
                order_id: e.order_id,
                customer_id: e.customer_id,
                amount: e.amount,
                cost: e.cost,
                channel: e.channel,
                refunded_minor: 0,
                cancelled: false,
            }),
            _ => None,
        };
    };
    match event {
        OrderEvent::OrderPlaced(_) => {}
        OrderEvent::OrderRefunded(e) => {
            order.refunded_minor = order.refunded_minor.saturating_add(e.amount.amount_minor)
        }
        OrderEvent::OrderCancelled(_) => order.cancelled = true,
    }
    Some(order)
}

fn evolve_ticket(ticket: Option<Ticket>, event: TicketEvent<'_>) -> Option<Ticket> {
    let Some(mut ticket) = ticket else {
        return match event {
            TicketEvent::TicketOpened(e) => Some(Ticket {
                ticket_id: e.ticket_id,
                customer_id: e.customer_id,
                category: e.category,
                priority: e.priority,
                status: TicketStatus::Open,
                assignee: None,
                first_public_response_given: false,
            }),
            _ => None,
        };
    };
    match event {
        TicketEvent::TicketOpened(_) => {}
        TicketEvent::TicketAssigned(e) => {
            ticket.assignee = Some(e.assignee.clone());
            if ticket.status == TicketStatus::Open {
                ticket.status = TicketStatus::Assigned;
            }
        }
        TicketEvent::TicketResponded(e) => {
            if e.first_public_response {
                ticket.first_public_response_given = true;
            }
        }
        TicketEvent::TicketEscalated(e) => ticket.priority = e.priority,
        TicketEvent::TicketResolved(_) => ticket.status = TicketStatus::Resolved,
        TicketEvent::TicketClosed(_) => ticket.status = TicketStatus::Closed,
        TicketEvent::TicketReopened(_) => ticket.status = TicketStatus::Open,
    }
    Some(ticket)
}

fn evolve_campaign(campaign: Option<Campaign>, event: CampaignEvent<'_>) -> Option<Campaign> {
    let Some(mut campaign) = campaign else {
        return match event {
            CampaignEvent::CampaignLaunched(e) => Some(Campaign {
                campaign_id: e.campaign_id,
                name: e.name.clone(),
                channel: e.channel,
                budget: e.budget,
                ended: false,
            }),
            _ => None,
        };
    };
    match event {
        // Spend, reach and responses are facts for the read models, not decision state.
        CampaignEvent::CampaignLaunched(_)
        | CampaignEvent::CampaignSpendRecorded(_)
        | CampaignEvent::CampaignReachRecorded(_)
        | CampaignEvent::CampaignResponseRecorded(_) => {}
        CampaignEvent::CampaignEnded(_) => campaign.ended = true,
    }
    Some(campaign)
}

fn evolve_pipeline(_pipeline: Option<Pipeline>, event: PipelineEvent<'_>) -> Option<Pipeline> {
    match event {
        PipelineEvent::PipelineDefined(e) => Some(Pipeline {
            name: e.pipeline.clone(),
            stages: e.stages.clone(),
        }),
    }
}
