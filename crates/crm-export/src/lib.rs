//! # crm-export: the event log as JSON Lines
//!
//! One line per event, the fields always in this order:
//!
//! ```text
//! {"position":1,"stream":"lead-…","version":1,"event_type":"LeadCreated","schema_version":1,
//!  "occurred_at":"2026-11-02T09:00:00Z","recorded_at":"2026-12-02T04:22:47.218282Z",
//!  "command_id":"…","actor":null,"data":{"lead_id":"…","name":"Ada",…}}
//! ```
//!
//! `data` is the event's own body with the field names of the contract (the `data` of a JSON
//! `crm.log.read` event, without the `{"type", "data"}` wrapper: the type is `event_type`).
//! Times are RFC 3339 in UTC as everywhere in the JSON API.
//!
//! Two sources give the same bytes, because both end in the same [`LineEncoder`] over the
//! same checked records:
//! - [`export_log`]: a stopped log opened with [`open_stopped_log`] (a log held by a running
//!   service is refused as [`ExportError::LogHeld`]);
//! - [`export_nats`]: pages of `crm.log.read` (bincode envelopes, CRC-checked here) from a
//!   running service.
//!
//! An export runs from its first position to the head read when it starts (see [`Plan`]), so
//! it is a consistent prefix of the log even while commands arrive. [`Filter`] selects by
//! aggregate and event type; filtered-out events are never decoded.

mod error;
mod filter;
mod line;
mod nats;
mod offline;
mod sink;
mod time;

pub use error::ExportError;
pub use filter::{Filter, Plan};
pub use line::LineEncoder;
pub use nats::{export_nats, NatsSource};
pub use offline::{export_log, open_stopped_log};
pub use sink::{Exporter, Summary};
pub use time::Rfc3339;
