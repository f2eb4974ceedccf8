//! The 35 commands of `docs/DOMAIN.md`. Field names are the wire's (snake_case); every
//! command names its target (a creating command carries the caller-chosen new id) and may
//! carry a business `occurred_at`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;
use crate::time::Timestamp;
use crate::types::{
    pipeline_stream, Aggregate, CampaignChannel, InteractionKind, LeadSource, OrderChannel,
    Segment, SurveyKind, TicketCategory, TicketChannel, TicketPriority,
};

/// Decodes one command body of a known type; implemented by the wire codecs (JSON, bincode).
pub trait BodyDecoder {
    type Error;
    fn decode<T: DeserializeOwned>(&self) -> Result<T, Self::Error>;
}

macro_rules! commands {
    ($($aggregate:ident => $per_aggregate:ident: [$($name:ident { $target:ident }),+ $(,)?]),+ $(,)?) => {
        /// Any command, tagged by its name (`{"type": "CreateLead", "data": {...}}` when
        /// serialized as a whole; on NATS the name is in the subject and the body is `data`).
        ///
        /// Flat on purpose: its serde shape is the wire's, and bincode would encode a whole
        /// `Command` by variant index, so the order of this list is kept. `decide` works on
        /// [`Command::split`], whose per-aggregate enums it matches exhaustively.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum Command { $($($name($name),)+)+ }

        /// A command by aggregate, borrowed from a [`Command`]: `decide` matches each
        /// aggregate's enum without a catch-all, so the compiler finds every place a new
        /// command must be decided.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AggregateCommand<'a> { $($aggregate($per_aggregate<'a>),)+ }

        $(
            #[doc = concat!("The commands of the ", stringify!($aggregate), " aggregate.")]
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub enum $per_aggregate<'a> { $($name(&'a $name),)+ }
        )+

        impl Command {
            /// The command as its aggregate's enum.
            pub fn split(&self) -> AggregateCommand<'_> {
                match self {
                    $($(Command::$name(c) => AggregateCommand::$aggregate($per_aggregate::$name(c)),)+)+
                }
            }

            /// Every command name with its aggregate, in the order of `docs/DOMAIN.md`.
            pub const NAMES: &'static [(Aggregate, &'static str)] =
                &[$($((Aggregate::$aggregate, stringify!($name)),)+)+];

            pub fn name(&self) -> &'static str {
                match self { $($(Command::$name(_) => stringify!($name),)+)+ }
            }

            pub fn aggregate(&self) -> Aggregate {
                match self { $($(Command::$name(_) => Aggregate::$aggregate,)+)+ }
            }

            /// The stream the command is decided against (its primary stream).
            pub fn stream(&self) -> String {
                match self { $($(Command::$name(c) => c.$target.stream_of(Aggregate::$aggregate),)+)+ }
            }

            /// Decodes the body of the command `name` of `aggregate`; `None` when no such
            /// command exists (`unknown_command`).
            pub fn decode_named<D: BodyDecoder>(
                aggregate: Aggregate,
                name: &str,
                decoder: &D,
            ) -> Option<Result<Command, D::Error>> {
                match (aggregate, name) {
                    $($((Aggregate::$aggregate, stringify!($name)) =>
                        Some(decoder.decode::<$name>().map(Command::$name)),)+)+
                    _ => None,
                }
            }

            /// The JSON Schema of every command body, in the order of [`Command::NAMES`].
            #[cfg(feature = "schema")]
            pub fn body_schemas() -> Vec<(Aggregate, &'static str, schemars::Schema)> {
                vec![$($((Aggregate::$aggregate, stringify!($name), schemars::schema_for!($name)),)+)+]
            }

            /// Calls `f` with the command's body, for encoders that need the concrete type.
            pub fn encode_body<E: BodyEncoder>(&self, encoder: E) -> E::Output {
                match self { $($(Command::$name(c) => encoder.encode(c),)+)+ }
            }
        }
    };
}

/// Encodes one command body; implemented by the wire codecs.
pub trait BodyEncoder {
    type Output;
    fn encode<T: Serialize>(self, body: &T) -> Self::Output;
}

/// How a command's target field names its stream: a UUID `<aggregate>-<uuid>`, a pipeline by
/// its name.
trait StreamTarget {
    fn stream_of(&self, aggregate: Aggregate) -> String;
}

impl StreamTarget for Uuid {
    fn stream_of(&self, aggregate: Aggregate) -> String {
        aggregate.stream_for(*self)
    }
}

impl StreamTarget for String {
    fn stream_of(&self, _aggregate: Aggregate) -> String {
        pipeline_stream(self)
    }
}

commands! {
    Lead => LeadCommand: [
        CreateLead { lead_id }, UpdateLeadDetails { lead_id }, ScoreLead { lead_id },
        AssignLead { lead_id }, AdvanceFunnelStage { lead_id }, RevertFunnelStage { lead_id },
        QualifyLead { lead_id }, DisqualifyLead { lead_id }, WinLead { lead_id }, LoseLead { lead_id },
    ],
    Customer => CustomerCommand: [
        RegisterCustomer { customer_id }, UpdateCustomerProfile { customer_id },
        AssignCustomerOwner { customer_id }, AddContact { customer_id }, RemoveContact { customer_id },
        LogInteraction { customer_id }, RecordSurveyResponse { customer_id },
        MarkCustomerChurned { customer_id }, ReactivateCustomer { customer_id },
    ],
    Order => OrderCommand: [PlaceOrder { order_id }, RefundOrder { order_id }, CancelOrder { order_id }],
    Ticket => TicketCommand: [
        OpenTicket { ticket_id }, AssignTicket { ticket_id }, RespondToTicket { ticket_id },
        EscalateTicket { ticket_id }, ResolveTicket { ticket_id }, CloseTicket { ticket_id },
        ReopenTicket { ticket_id },
    ],
    Campaign => CampaignCommand: [
        LaunchCampaign { campaign_id }, RecordCampaignSpend { campaign_id },
        RecordCampaignReach { campaign_id }, RecordCampaignResponse { campaign_id },
        EndCampaign { campaign_id },
    ],
    Pipeline => PipelineCommand: [DefinePipeline { pipeline }],
}

impl Command {
    /// The pipeline whose definition `decide` needs, if any.
    pub fn pipeline_needed(&self, lead_pipeline: Option<&str>) -> Option<String> {
        // Lead commands are listed one by one: a new one must say whether it needs stages.
        let lead = match self.split() {
            AggregateCommand::Lead(lead) => lead,
            AggregateCommand::Customer(_)
            | AggregateCommand::Order(_)
            | AggregateCommand::Ticket(_)
            | AggregateCommand::Campaign(_)
            | AggregateCommand::Pipeline(_) => return None,
        };
        match lead {
            LeadCommand::CreateLead(c) => Some(
                c.pipeline
                    .clone()
                    .unwrap_or_else(|| crate::types::DEFAULT_PIPELINE.to_owned()),
            ),
            LeadCommand::AdvanceFunnelStage(_) | LeadCommand::RevertFunnelStage(_) => {
                lead_pipeline.map(str::to_owned)
            }
            LeadCommand::UpdateLeadDetails(_)
            | LeadCommand::ScoreLead(_)
            | LeadCommand::AssignLead(_)
            | LeadCommand::QualifyLead(_)
            | LeadCommand::DisqualifyLead(_)
            | LeadCommand::WinLead(_)
            | LeadCommand::LoseLead(_) => None,
        }
    }

    /// The business time the caller gave, if any.
    pub fn occurred_at(&self) -> Option<Timestamp> {
        macro_rules! optional {
            ($($name:ident),+) => {
                match self {
                    $(Command::$name(c) => c.occurred_at,)+
                    Command::LogInteraction(c) => Some(c.occurred_at),
                }
            };
        }
        optional!(
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
            DefinePipeline
        )
    }
}

// ---- Lead ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateLead {
    pub lead_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    pub source: LeadSource,
    #[serde(default)]
    pub campaign_id: Option<Uuid>,
    #[serde(default)]
    pub customer_id: Option<Uuid>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub estimated_value: Option<Money>,
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateLeadDetails {
    pub lead_id: Uuid,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub estimated_value: Option<Money>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScoreLead {
    pub lead_id: Uuid,
    pub score: u8,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AssignLead {
    pub lead_id: Uuid,
    pub owner: String,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AdvanceFunnelStage {
    pub lead_id: Uuid,
    pub to_stage: String,
    #[serde(default)]
    pub allow_skip: Option<bool>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RevertFunnelStage {
    pub lead_id: Uuid,
    pub to_stage: String,
    pub reason: String,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct QualifyLead {
    pub lead_id: Uuid,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DisqualifyLead {
    pub lead_id: Uuid,
    pub reason: String,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WinLead {
    pub lead_id: Uuid,
    pub deal_value: Money,
    #[serde(default)]
    pub customer_id: Option<Uuid>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LoseLead {
    pub lead_id: Uuid,
    pub reason: String,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

// ---- Customer ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterCustomer {
    pub customer_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub segment: Option<Segment>,
    #[serde(default)]
    pub industry: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub source: Option<LeadSource>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

/// Profile fields to set; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerProfile {
    pub customer_id: Uuid,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub segment: Option<Segment>,
    #[serde(default)]
    pub industry: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

/// Absent `owner` or `department` keeps the current value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AssignCustomerOwner {
    pub customer_id: Uuid,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AddContact {
    pub customer_id: Uuid,
    pub contact_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RemoveContact {
    pub customer_id: Uuid,
    pub contact_id: Uuid,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

/// `occurred_at` is required here: an interaction is always a business fact with a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LogInteraction {
    pub customer_id: Uuid,
    pub interaction_id: Uuid,
    pub kind: InteractionKind,
    #[serde(default)]
    pub channel: Option<String>,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordSurveyResponse {
    pub customer_id: Uuid,
    pub response_id: Uuid,
    pub kind: SurveyKind,
    pub score: u8,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MarkCustomerChurned {
    pub customer_id: Uuid,
    pub reason: String,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReactivateCustomer {
    pub customer_id: Uuid,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

// ---- Order ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub amount: Money,
    #[serde(default)]
    pub cost: Option<Money>,
    pub channel: OrderChannel,
    #[serde(default)]
    pub lead_id: Option<Uuid>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RefundOrder {
    pub order_id: Uuid,
    pub amount: Money,
    pub reason: String,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CancelOrder {
    pub order_id: Uuid,
    pub reason: String,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

// ---- Ticket ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenTicket {
    pub ticket_id: Uuid,
    pub customer_id: Uuid,
    pub subject: String,
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub channel: TicketChannel,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AssignTicket {
    pub ticket_id: Uuid,
    pub assignee: String,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RespondToTicket {
    pub ticket_id: Uuid,
    pub responder: String,
    pub public: bool,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EscalateTicket {
    pub ticket_id: Uuid,
    pub priority: TicketPriority,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ResolveTicket {
    pub ticket_id: Uuid,
    pub resolution: String,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CloseTicket {
    pub ticket_id: Uuid,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReopenTicket {
    pub ticket_id: Uuid,
    pub reason: String,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

// ---- Campaign ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LaunchCampaign {
    pub campaign_id: Uuid,
    pub name: String,
    pub channel: CampaignChannel,
    #[serde(default)]
    pub budget: Option<Money>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordCampaignSpend {
    pub campaign_id: Uuid,
    pub amount: Money,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordCampaignReach {
    pub campaign_id: Uuid,
    pub sent: u64,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordCampaignResponse {
    pub campaign_id: Uuid,
    pub responses: u64,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EndCampaign {
    pub campaign_id: Uuid,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

// ---- Pipeline ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DefinePipeline {
    pub pipeline: String,
    pub stages: Vec<String>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}
