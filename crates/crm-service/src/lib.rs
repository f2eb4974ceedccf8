//! The command side of the CRM over NATS: the command handler (decode, load state, decide,
//! append, reply after the flush), the tailer that publishes committed events to JetStream in
//! position order, and the `crm.log.*` read API.

mod cache;
mod error;
mod handler;
mod log_api;
mod server;
mod tailer;

/// The instance whose endpoints the responders count (`$SRV.STATS`).
pub use crm_ops::Instance;
pub use error::ServiceError;
pub use handler::{CommandHandler, CommandRequest, HandlerConfig};
pub use log_api::serve_log_api;
pub use server::{serve_commands, ServiceConfig};
pub use tailer::{event_message, Tailer, TailerConfig, TailerStatus};

/// Resolves once `shutdown` holds `true` (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here so callers' futures stay `Send`.
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}
