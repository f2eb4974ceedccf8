//! The CRM domain, pure: the commands, events and rules of `docs/DOMAIN.md`.
//!
//! `decide(&State, &Command, &Context) -> Result<Decision, Rejection>` and
//! `evolve(State, &Event) -> State` are plain functions: no I/O, no async, no clock.
//! Time comes in through [`Context::now`] or the command's `occurred_at`.

pub mod codec;
pub mod command;
mod decide;
pub mod event;
mod expected_version;
pub mod money;
mod rejection;
#[cfg(feature = "schema")]
pub mod schema;
pub mod state;
pub mod time;
pub mod types;
pub mod validate;

pub use command::{AggregateCommand, Command};
pub use decide::{decide, Context, Decision, StreamEvents};
pub use event::{AggregateEvent, Event, StampedEvent};
pub use expected_version::ExpectedVersion;
pub use money::{Currency, Money};
pub use rejection::{ErrorCode, Rejection};
pub use state::{evolve, State};
pub use time::{Month, Timestamp};
pub use types::Aggregate;
