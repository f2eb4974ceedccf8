//! Aggregates, stream ids and the enumerations of the contract (snake_case on the wire).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The six aggregates. Each owns streams named `<prefix>-<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Lead,
    Customer,
    Order,
    Ticket,
    Campaign,
    Pipeline,
}

impl Aggregate {
    pub const ALL: [Aggregate; 6] = [
        Aggregate::Lead,
        Aggregate::Customer,
        Aggregate::Order,
        Aggregate::Ticket,
        Aggregate::Campaign,
        Aggregate::Pipeline,
    ];

    /// The subject token and stream prefix (`lead`, `customer`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Lead => "lead",
            Aggregate::Customer => "customer",
            Aggregate::Order => "order",
            Aggregate::Ticket => "ticket",
            Aggregate::Campaign => "campaign",
            Aggregate::Pipeline => "pipeline",
        }
    }

    pub fn parse(text: &str) -> Option<Aggregate> {
        Aggregate::ALL.into_iter().find(|a| a.as_str() == text)
    }

    pub fn stream_for(self, id: Uuid) -> String {
        format!("{}-{}", self.as_str(), id)
    }

    /// The aggregate a stream id belongs to, from its prefix.
    pub fn of_stream(stream: &str) -> Option<Aggregate> {
        let (prefix, rest) = stream.split_once('-')?;
        (!rest.is_empty()).then_some(())?;
        Aggregate::parse(prefix)
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn pipeline_stream(name: &str) -> String {
    format!("pipeline-{name}")
}

/// The pipeline every installation has from the first start.
pub const DEFAULT_PIPELINE: &str = "default";
pub const DEFAULT_PIPELINE_STAGES: [&str; 4] =
    ["awareness", "interest", "consideration", "decision"];

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Where a lead came from.
    LeadSource { Web => "web", Referral => "referral", Event => "event", Advertising => "advertising",
    Partner => "partner", Outbound => "outbound", Other => "other" }
);
wire_enum!(
    /// How an order was placed.
    OrderChannel { Online => "online", Store => "store", Phone => "phone", Partner => "partner", Other => "other" }
);
wire_enum!(
    /// How a ticket came in.
    TicketChannel { Email => "email", Phone => "phone", Chat => "chat", Web => "web", InPerson => "in_person" }
);
wire_enum!(
    /// A campaign's medium.
    CampaignChannel { Email => "email", Social => "social", Search => "search", Display => "display",
    Event => "event", Other => "other" }
);
wire_enum!(
    /// A customer's market segment.
    Segment { Smb => "smb", MidMarket => "mid_market", Enterprise => "enterprise", Consumer => "consumer" }
);
wire_enum!(
    /// What kind of contact an interaction was.
    InteractionKind { Call => "call", Email => "email", Meeting => "meeting", Chat => "chat", Visit => "visit", Note => "note" }
);
wire_enum!(
    /// A survey: NPS (0..=10) or CSAT (1..=5).
    SurveyKind { Nps => "nps", Csat => "csat" }
);
wire_enum!(
    /// What a ticket is about.
    TicketCategory { Question => "question", Request => "request", Incident => "incident", Complaint => "complaint" }
);
wire_enum!(
    /// Ticket priority, ordered from lowest to highest.
    TicketPriority { Low => "low", Normal => "normal", High => "high", Urgent => "urgent" }
);
wire_enum!(
    /// Where a ticket is in its life.
    TicketStatus { Open => "open", Assigned => "assigned", Resolved => "resolved", Closed => "closed" }
);
wire_enum!(
    /// Where a lead is in its life; anything but `open` is closed.
    LeadStatus { Open => "open", Won => "won", Lost => "lost", Disqualified => "disqualified" }
);

impl SurveyKind {
    pub fn score_range(self) -> std::ops::RangeInclusive<u8> {
        match self {
            SurveyKind::Nps => 0..=10,
            SurveyKind::Csat => 1..=5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_name_their_aggregate() {
        let id = Uuid::nil();
        let stream = Aggregate::Lead.stream_for(id);
        assert_eq!(stream, "lead-00000000-0000-0000-0000-000000000000");
        assert_eq!(Aggregate::of_stream(&stream), Some(Aggregate::Lead));
        assert_eq!(
            Aggregate::of_stream("pipeline-default"),
            Some(Aggregate::Pipeline)
        );
        assert_eq!(Aggregate::of_stream("nope-1"), None);
        assert_eq!(Aggregate::of_stream("lead-"), None);
    }

    #[test]
    fn enums_are_snake_case_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&TicketChannel::InPerson).unwrap(),
            "\"in_person\""
        );
        assert_eq!(
            serde_json::to_string(&Segment::MidMarket).unwrap(),
            "\"mid_market\""
        );
        for channel in TicketChannel::ALL {
            let json = serde_json::to_string(channel).unwrap();
            assert_eq!(json, format!("\"{}\"", channel.as_str()));
        }
        assert!(TicketPriority::Urgent > TicketPriority::High);
    }
}
