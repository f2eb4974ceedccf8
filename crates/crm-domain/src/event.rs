//! The events the domain records: one type per fact, each with a stable name (its type
//! name) and a schema version. Payloads are encoded by [`crate::codec`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;
use crate::time::Timestamp;
use crate::types::{
    Aggregate, CampaignChannel, InteractionKind, LeadSource, OrderChannel, Segment, SurveyKind,
    TicketCategory, TicketChannel, TicketPriority,
};

macro_rules! events {
    ($($aggregate:ident => $per_aggregate:ident: [$($name:ident = $version:literal),+ $(,)?]),+ $(,)?) => {
        /// Any event. JSON shape: `{"type": "LeadCreated", "data": {...}}`.
        ///
        /// Flat on purpose: its serde shape is the JSON one, and bincode would encode a whole
        /// `Event` by variant index, so the order of this list is kept. `evolve` and the
        /// folds work on [`Event::split`], matched per aggregate without a catch-all.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum Event { $($($name($name),)+)+ }

        /// An event by aggregate, borrowed from an [`Event`]: folds match each aggregate's
        /// enum exhaustively, so the compiler finds every fold a new event must reach.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AggregateEvent<'a> { $($aggregate($per_aggregate<'a>),)+ }

        $(
            #[doc = concat!("The events of the ", stringify!($aggregate), " aggregate.")]
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub enum $per_aggregate<'a> { $($name(&'a $name),)+ }
        )+

        impl Event {
            /// The event as its aggregate's enum.
            pub fn split(&self) -> AggregateEvent<'_> {
                match self {
                    $($(Event::$name(e) => AggregateEvent::$aggregate($per_aggregate::$name(e)),)+)+
                }
            }

            /// Every event type: (aggregate, name, current schema version).
            pub const TYPES: &'static [(Aggregate, &'static str, u16)] =
                &[$($((Aggregate::$aggregate, stringify!($name), $version),)+)+];

            /// The stable event type name (`crm.evt.<aggregate>.<name>`).
            pub fn event_type(&self) -> &'static str {
                match self { $($(Event::$name(_) => stringify!($name),)+)+ }
            }

            pub fn aggregate(&self) -> Aggregate {
                match self { $($(Event::$name(_) => Aggregate::$aggregate,)+)+ }
            }

            /// The schema version this build writes.
            pub fn schema_version(&self) -> u16 {
                match self { $($(Event::$name(_) => $version,)+)+ }
            }

            pub(crate) fn encode_with<E: crate::codec::PayloadEncoder>(&self, encoder: E) -> E::Output {
                match self { $($(Event::$name(e) => encoder.encode(e),)+)+ }
            }

            pub(crate) fn decode_current<D: crate::codec::PayloadDecoder>(
                event_type: &str,
                decoder: D,
            ) -> Option<Result<Event, D::Error>> {
                match event_type {
                    $($(stringify!($name) => Some(decoder.decode::<$name>().map(Event::$name)),)+)+
                    _ => None,
                }
            }
        }
    };
}

events! {
    Lead => LeadEvent: [
        LeadCreated = 1, LeadDetailsUpdated = 1, LeadScored = 1, LeadAssigned = 1,
        FunnelStageAdvanced = 1, FunnelStageReverted = 1, LeadQualified = 1,
        LeadDisqualified = 1, LeadWon = 1, LeadLost = 1,
    ],
    Customer => CustomerEvent: [
        CustomerRegistered = 1, CustomerProfileUpdated = 1, CustomerOwnerAssigned = 1,
        ContactAdded = 1, ContactRemoved = 1, InteractionLogged = 1, SurveyResponseRecorded = 1,
        CustomerChurned = 1, CustomerReactivated = 1,
    ],
    Order => OrderEvent: [OrderPlaced = 1, OrderRefunded = 1, OrderCancelled = 1],
    Ticket => TicketEvent: [
        TicketOpened = 1, TicketAssigned = 1, TicketResponded = 1, TicketEscalated = 1,
        TicketResolved = 1, TicketClosed = 1, TicketReopened = 1,
    ],
    Campaign => CampaignEvent: [
        CampaignLaunched = 1, CampaignSpendRecorded = 1, CampaignReachRecorded = 1,
        CampaignResponseRecorded = 1, CampaignEnded = 1,
    ],
    Pipeline => PipelineEvent: [PipelineDefined = 1],
}

/// An event with its business time, as the log stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampedEvent {
    pub occurred_at: Timestamp,
    pub event: Event,
}

// Field order is part of the bincode schema: never reorder or insert fields in place.
// A change is a new schema version with an upcaster in `codec.rs` and a new golden fixture.

// ---- Lead ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadCreated {
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
    /// The pipeline's first stage at creation.
    pub stage: String,
}

/// Only the fields that changed are present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadDetailsUpdated {
    pub lead_id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub estimated_value: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadScored {
    pub lead_id: Uuid,
    pub score: u8,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadAssigned {
    pub lead_id: Uuid,
    pub previous_owner: Option<String>,
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelStageAdvanced {
    pub lead_id: Uuid,
    pub pipeline: String,
    pub from_stage: String,
    pub to_stage: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelStageReverted {
    pub lead_id: Uuid,
    pub pipeline: String,
    pub from_stage: String,
    pub to_stage: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadQualified {
    pub lead_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadDisqualified {
    pub lead_id: Uuid,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadWon {
    pub lead_id: Uuid,
    pub deal_value: Money,
    pub customer_id: Uuid,
    /// True when this win registered the customer (a new account, not an upsell).
    pub new_customer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadLost {
    pub lead_id: Uuid,
    pub reason: String,
}

// ---- Customer ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRegistered {
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
    /// The lead whose win registered this customer, if any.
    pub from_lead: Option<Uuid>,
}

/// Only the fields that changed are present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerProfileUpdated {
    pub customer_id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub segment: Option<Segment>,
    pub industry: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerOwnerAssigned {
    pub customer_id: Uuid,
    pub previous_owner: Option<String>,
    pub previous_department: Option<String>,
    pub owner: Option<String>,
    pub department: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactAdded {
    pub customer_id: Uuid,
    pub contact_id: Uuid,
    pub name: String,
    pub role: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRemoved {
    pub customer_id: Uuid,
    pub contact_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionLogged {
    pub customer_id: Uuid,
    pub interaction_id: Uuid,
    pub kind: InteractionKind,
    pub channel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyResponseRecorded {
    pub customer_id: Uuid,
    pub response_id: Uuid,
    pub kind: SurveyKind,
    pub score: u8,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerChurned {
    pub customer_id: Uuid,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerReactivated {
    pub customer_id: Uuid,
}

// ---- Order ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub amount: Money,
    pub cost: Option<Money>,
    pub channel: OrderChannel,
    pub lead_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRefunded {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub amount: Money,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub reason: String,
}

// ---- Ticket ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketOpened {
    pub ticket_id: Uuid,
    pub customer_id: Uuid,
    pub subject: String,
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub channel: TicketChannel,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketAssigned {
    pub ticket_id: Uuid,
    pub assignee: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketResponded {
    pub ticket_id: Uuid,
    pub responder: String,
    pub public: bool,
    /// The first public response since the ticket was opened: it sets first-response time.
    pub first_public_response: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketEscalated {
    pub ticket_id: Uuid,
    pub from_priority: TicketPriority,
    pub priority: TicketPriority,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketResolved {
    pub ticket_id: Uuid,
    pub resolution: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClosed {
    pub ticket_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketReopened {
    pub ticket_id: Uuid,
    pub reason: String,
}

impl TicketEvent<'_> {
    /// The ticket the event is about (every ticket event names its ticket).
    pub fn ticket_id(&self) -> Uuid {
        match self {
            TicketEvent::TicketOpened(e) => e.ticket_id,
            TicketEvent::TicketAssigned(e) => e.ticket_id,
            TicketEvent::TicketResponded(e) => e.ticket_id,
            TicketEvent::TicketEscalated(e) => e.ticket_id,
            TicketEvent::TicketResolved(e) => e.ticket_id,
            TicketEvent::TicketClosed(e) => e.ticket_id,
            TicketEvent::TicketReopened(e) => e.ticket_id,
        }
    }
}

// ---- Campaign ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignLaunched {
    pub campaign_id: Uuid,
    pub name: String,
    pub channel: CampaignChannel,
    pub budget: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSpendRecorded {
    pub campaign_id: Uuid,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignReachRecorded {
    pub campaign_id: Uuid,
    pub sent: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignResponseRecorded {
    pub campaign_id: Uuid,
    pub responses: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignEnded {
    pub campaign_id: Uuid,
}

// ---- Pipeline ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineDefined {
    pub pipeline: String,
    pub stages: Vec<String>,
}
