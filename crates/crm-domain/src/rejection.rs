//! Why a command was refused. Rejections are data, not errors: a normal outcome
//! carrying one of the codes of the public contract (`docs/NATS_API.md`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every refusal code of the public contract, with its NATS service error status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Malformed,
    MissingCommandId,
    UnknownCommand,
    PayloadTooLarge,
    ValidationFailed,
    NotFound,
    AlreadyExists,
    InvalidTransition,
    NoChange,
    WrongExpectedVersion,
    IdempotencyKeyReused,
    Forbidden,
    Unavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::Malformed,
        ErrorCode::MissingCommandId,
        ErrorCode::UnknownCommand,
        ErrorCode::PayloadTooLarge,
        ErrorCode::ValidationFailed,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::InvalidTransition,
        ErrorCode::NoChange,
        ErrorCode::WrongExpectedVersion,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::Forbidden,
        ErrorCode::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::MissingCommandId => "missing_command_id",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::NoChange => "no_change",
            ErrorCode::WrongExpectedVersion => "wrong_expected_version",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// `Nats-Service-Error-Code`: 400 the caller's fault, 404 not found, 409 conflict,
    /// 413 too large, 403 forbidden, 503 unavailable.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Malformed
            | ErrorCode::MissingCommandId
            | ErrorCode::UnknownCommand
            | ErrorCode::ValidationFailed
            | ErrorCode::InvalidTransition
            | ErrorCode::NoChange => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists
            | ErrorCode::WrongExpectedVersion
            | ErrorCode::IdempotencyKeyReused => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Forbidden => 403,
            ErrorCode::Unavailable => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A domain refusal: the command is valid in form but not allowed by the rules or the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A field check failed (empty name, bad email, score out of range, unknown currency...).
    Validation { field: &'static str, reason: String },
    /// The target stream has no aggregate yet.
    NotFound { stream: String },
    /// A creating command hit an existing stream.
    AlreadyExists { stream: String },
    /// The aggregate's state does not allow this command now.
    InvalidTransition { reason: String },
    /// The command would not change anything.
    NoChange { reason: String },
}

impl Rejection {
    pub fn code(&self) -> ErrorCode {
        match self {
            Rejection::Validation { .. } => ErrorCode::ValidationFailed,
            Rejection::NotFound { .. } => ErrorCode::NotFound,
            Rejection::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Rejection::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            Rejection::NoChange { .. } => ErrorCode::NoChange,
        }
    }

    pub(crate) fn validation(field: &'static str, reason: impl Into<String>) -> Rejection {
        Rejection::Validation {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn transition(reason: impl Into<String>) -> Rejection {
        Rejection::InvalidTransition {
            reason: reason.into(),
        }
    }

    pub(crate) fn no_change(reason: impl Into<String>) -> Rejection {
        Rejection::NoChange {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Validation { field, reason } => write!(f, "`{field}`: {reason}"),
            Rejection::NotFound { stream } => write!(f, "{stream} does not exist"),
            Rejection::AlreadyExists { stream } => write!(f, "{stream} already exists"),
            Rejection::InvalidTransition { reason } => f.write_str(reason),
            Rejection::NoChange { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for Rejection {}
