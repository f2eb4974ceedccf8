//! Command replies: `accepted` or `rejected`, tagged by `status`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crm_domain::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CommandReply {
    Accepted(Accepted),
    Rejected(Rejected),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub command_id: Uuid,
    pub stream: String,
    /// The command's stream version after the append.
    pub version: u64,
    pub first_position: u64,
    pub last_position: u64,
    /// The command id was seen before: this is the original outcome; nothing was appended.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// Absent when the request had no readable command id.
    pub command_id: Option<Uuid>,
    pub code: ErrorCode,
    pub message: String,
    /// The stream's version, where it is known and relevant.
    pub current_version: Option<u64>,
}

impl CommandReply {
    pub fn rejected(
        command_id: Option<Uuid>,
        code: ErrorCode,
        message: impl Into<String>,
        current_version: Option<u64>,
    ) -> CommandReply {
        CommandReply::Rejected(Rejected {
            command_id,
            code,
            message: message.into(),
            current_version,
        })
    }

    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            CommandReply::Accepted(_) => None,
            CommandReply::Rejected(r) => Some(r.code),
        }
    }
}
