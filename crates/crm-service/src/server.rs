//! The NATS side of the command service: a queue subscription on `crm.cmd.>`, bounded
//! concurrency, typed replies with the NATS service error headers.

use std::sync::Arc;

use async_nats::{Client, HeaderMap, Message};
use futures::StreamExt;
use tokio::sync::{watch, Semaphore};
use tracing::{info, info_span, warn, Instrument};

use crm_wire::{
    encode_reply, service_error_headers, CommandReply, HEADER_ACTOR, HEADER_COMMAND_ID,
    HEADER_CONTENT_TYPE, HEADER_CORRELATION_ID, HEADER_EXPECTED_VERSION,
};

use crm_domain::Command;
use crm_ops::{Endpoint, Instance};

use crate::handler::{CommandHandler, CommandRequest};
use crate::ServiceError;

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Commands handled at once; further ones wait in the subscription's buffer.
    pub in_flight_max: usize,
    pub queue_group: String,
    /// The instance whose `commands` endpoint counts the requests (`$SRV.STATS`).
    pub instance: Instance,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            in_flight_max: 1024,
            queue_group: crm_wire::COMMAND_QUEUE_GROUP.to_owned(),
            instance: Instance::new(),
        }
    }
}

/// Serves commands until `shutdown` turns true; then stops taking commands, lets the ones in
/// flight finish (their appends are flushed before they reply) and returns.
pub async fn serve_commands(
    client: Client,
    handler: Arc<CommandHandler>,
    config: ServiceConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let subject = handler_subjects(&handler);
    let mut subscriber = client
        .queue_subscribe(subject.clone(), config.queue_group.clone())
        .await
        .map_err(|e| ServiceError::Subscribe {
            subject: subject.clone(),
            reason: e.to_string(),
        })?;
    info!(subject = %subject, queue_group = %config.queue_group, "command service listening");
    // Its metrics are labelled by command name: every name of the contract, and `unknown`.
    let endpoint = config.instance.command_endpoint(
        "commands",
        &subject,
        &config.queue_group,
        Command::NAMES.iter().map(|(_, name)| *name).collect(),
    );
    let permits = Arc::new(Semaphore::new(config.in_flight_max.max(1)));
    loop {
        let message = tokio::select! {
            message = subscriber.next() => message,
            _ = crate::stopped(&mut shutdown) => None,
        };
        let Some(message) = message else { break };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let handler = handler.clone();
        let client = client.clone();
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            handle_message(&client, &handler, &endpoint, message).await;
            drop(permit);
        });
    }
    // Stop taking commands; those not yet picked up are redelivered to no one and time out
    // at the caller, who retries with the same command id.
    let _ = subscriber.unsubscribe().await;
    let in_flight = config.in_flight_max.max(1) as u32;
    let _ = permits.acquire_many(in_flight).await;
    let _ = client.flush().await;
    info!("command service stopped");
    Ok(())
}

fn handler_subjects(handler: &CommandHandler) -> String {
    handler.subjects().commands_wildcard()
}

/// The index in `Command::NAMES` of the command a subject names, if it names one.
fn command_index(handler: &CommandHandler, subject: &str) -> Option<usize> {
    let parsed = handler.subjects().parse_command(subject)?;
    Command::NAMES
        .iter()
        .position(|(aggregate, name)| *aggregate == parsed.aggregate && *name == parsed.command)
}

fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers.and_then(|h| h.get(name)).map(|v| v.as_str())
}

async fn handle_message(
    client: &Client,
    handler: &CommandHandler,
    endpoint: &Arc<Endpoint>,
    message: Message,
) {
    let timing = endpoint.start();
    let headers = message.headers.as_ref();
    let command_id = header(headers, HEADER_COMMAND_ID).unwrap_or("");
    let span = info_span!("command", subject = %message.subject, command_id = %command_id);
    async {
        let request = CommandRequest {
            subject: message.subject.as_str(),
            command_id: header(headers, HEADER_COMMAND_ID),
            expected_version: header(headers, HEADER_EXPECTED_VERSION),
            actor: header(headers, HEADER_ACTOR),
            correlation_id: header(headers, HEADER_CORRELATION_ID),
            content_type: header(headers, HEADER_CONTENT_TYPE),
            body: &message.payload,
        };
        let (reply, content_type) = handler.handle(request).await;
        let Some(reply_to) = message.reply.clone() else {
            warn!("command without a reply subject; outcome not sent");
            return;
        };
        let mut reply_headers = HeaderMap::new();
        reply_headers.insert(HEADER_CONTENT_TYPE, content_type.as_str());
        if let CommandReply::Rejected(rejected) = &reply {
            info!(code = %rejected.code, message = %rejected.message, "command rejected");
            for (name, value) in service_error_headers(rejected.code, &rejected.message) {
                reply_headers.insert(name, value.as_str());
            }
        }
        let body = encode_reply(&reply, content_type);
        if let Err(error) = client
            .publish_with_headers(reply_to, reply_headers, body.into())
            .await
        {
            warn!(error = %error, "reply could not be sent");
        }
        let command = command_index(handler, &message.subject);
        match &reply {
            CommandReply::Rejected(rejected) => {
                timing.done_command(command, Some((rejected.code, &rejected.message)))
            }
            CommandReply::Accepted(_) => timing.done_command(command, None),
        }
    }
    .instrument(span)
    .await
}
