//! `crm.log.head` and `crm.log.read`: the log, read over NATS.

use async_nats::{Client, HeaderMap, Message};
use futures::StreamExt;
use tokio::sync::watch;
use tracing::{info, warn};

use crm_domain::{codec, ErrorCode, Timestamp};
use crm_eventlog::{EventLog, Record};
use crm_wire::{
    service_error_headers, LogEventJson, LogHeadReply, LogReadFormat, LogReadReply, LogReadRequest,
    Subjects, BINCODE_CONTENT_TYPE, HEADER_CONTENT_TYPE, JSON_CONTENT_TYPE, LOG_QUEUE_GROUP,
    LOG_READ_EVENTS_MAX,
};

use crm_ops::Instance;

use crate::ServiceError;

/// Largest `crm.log.read` request body: it is a tiny JSON object.
const LOG_REQUEST_BYTES_MAX: usize = 4096;

/// Serves the log read API until `shutdown` turns true.
pub async fn serve_log_api(
    client: Client,
    log: EventLog,
    subjects: Subjects,
    instance: Instance,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let subscribe = |subject: String| {
        let client = client.clone();
        async move {
            client
                .queue_subscribe(subject.clone(), LOG_QUEUE_GROUP.to_owned())
                .await
                .map_err(|e| ServiceError::Subscribe {
                    subject,
                    reason: e.to_string(),
                })
        }
    };
    let mut heads = subscribe(subjects.log_head()).await?;
    let mut reads = subscribe(subjects.log_read()).await?;
    info!(head = %subjects.log_head(), read = %subjects.log_read(), "log read API listening");
    let head_endpoint = instance.endpoint("log.head", &subjects.log_head(), LOG_QUEUE_GROUP);
    let read_endpoint = instance.endpoint("log.read", &subjects.log_read(), LOG_QUEUE_GROUP);
    loop {
        tokio::select! {
            Some(message) = heads.next() => {
                let timing = head_endpoint.start();
                let body = serde_json::to_vec(&LogHeadReply { head: log.head() }).unwrap_or_default();
                respond(&client, &message, JSON_CONTENT_TYPE, None, body).await;
                timing.done(None);
            }
            Some(message) = reads.next() => {
                let log = log.clone();
                let client = client.clone();
                let timing = read_endpoint.start();
                // Reads touch the disk: keep them off the async workers.
                tokio::spawn(async move {
                    let payload = message.payload.clone();
                    // A reply above the server's max_payload would make the server drop this
                    // connection (and every subscription on it): pages are cut by bytes too.
                    let bytes_max = crm_wire::reply_bytes_max(client.server_info().max_payload);
                    let answer =
                        tokio::task::spawn_blocking(move || read(&log, &payload, bytes_max)).await;
                    match answer {
                        Ok(Ok((content_type, body))) => {
                            respond(&client, &message, content_type, None, body).await;
                            timing.done(None);
                        }
                        Ok(Err((code, text))) => {
                            let body = serde_json::to_vec(&serde_json::json!({"status": "rejected", "code": code, "message": text})).unwrap_or_default();
                            respond(&client, &message, JSON_CONTENT_TYPE, Some((code, &text)), body).await;
                            timing.done(Some((code, &text)));
                        }
                        Err(e) => warn!(error = %e, "log read task failed"),
                    }
                });
            }
            _ = crate::stopped(&mut shutdown) => return Ok(()),
            else => return Ok(()),
        }
    }
}

type ReadAnswer = Result<(&'static str, Vec<u8>), (ErrorCode, String)>;

fn read(log: &EventLog, body: &[u8], reply_bytes_max: usize) -> ReadAnswer {
    if body.len() > LOG_REQUEST_BYTES_MAX {
        return Err((
            ErrorCode::PayloadTooLarge,
            format!("request above {LOG_REQUEST_BYTES_MAX} bytes"),
        ));
    }
    let request: LogReadRequest = serde_json::from_slice(body).map_err(|e| {
        (
            ErrorCode::Malformed,
            format!("expected {{\"from\": P, \"max\": M}}: {e}"),
        )
    })?;
    if request.from == 0 || request.max == 0 {
        return Err((
            ErrorCode::ValidationFailed,
            "`from` and `max` start at 1".to_owned(),
        ));
    }
    let head = log.head();
    let max = request.max.min(LOG_READ_EVENTS_MAX) as usize;
    let records = log
        .read_all(request.from, max)
        .map_err(|e| (ErrorCode::Unavailable, e.to_string()))?;
    match request.format.unwrap_or_default() {
        LogReadFormat::Bincode => {
            let mut encoded = Vec::with_capacity(records.len());
            let mut bytes = 0;
            for record in &records {
                let record = record
                    .encode()
                    .map_err(|e| (ErrorCode::Unavailable, e.to_string()))?;
                // Each record costs its bytes plus a length prefix; always at least one.
                bytes += record.len() + 10;
                if bytes > reply_bytes_max && !encoded.is_empty() {
                    break;
                }
                encoded.push(record);
            }
            let reply = LogReadReply {
                head,
                records: encoded,
            };
            Ok((BINCODE_CONTENT_TYPE, reply.encode()))
        }
        LogReadFormat::Json => {
            let mut events = Vec::with_capacity(records.len());
            let mut bytes = 64;
            for record in &records {
                let event = serde_json::to_value(json_event(record)?)
                    .map_err(|e| (ErrorCode::Unavailable, e.to_string()))?;
                bytes += event.to_string().len() + 1;
                if bytes > reply_bytes_max && !events.is_empty() {
                    break;
                }
                events.push(event);
            }
            let body = serde_json::to_vec(&serde_json::json!({"head": head, "events": events}))
                .map_err(|e| (ErrorCode::Unavailable, e.to_string()))?;
            Ok((JSON_CONTENT_TYPE, body))
        }
    }
}

fn json_event(record: &Record) -> Result<LogEventJson, (ErrorCode, String)> {
    let stamped = codec::decode_event(&record.event_type, record.schema_version, &record.payload)
        .map_err(|e| {
        (
            ErrorCode::Unavailable,
            format!("position {}: {e}", record.position),
        )
    })?;
    Ok(LogEventJson {
        position: record.position,
        stream: record.stream.clone(),
        stream_version: record.stream_version,
        event_type: record.event_type.clone(),
        schema_version: record.schema_version,
        command_id: record.command_id,
        recorded_at: Timestamp::from_micros(record.recorded_at_us),
        occurred_at: stamped.occurred_at,
        actor: record.actor.clone(),
        correlation_id: record.correlation_id.clone(),
        causation_id: record.causation_id.clone(),
        event: stamped.event,
    })
}

async fn respond(
    client: &Client,
    message: &Message,
    content_type: &'static str,
    error: Option<(ErrorCode, &str)>,
    body: Vec<u8>,
) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_CONTENT_TYPE, content_type);
    if let Some((code, text)) = error {
        for (name, value) in service_error_headers(code, text) {
            headers.insert(name, value.as_str());
        }
    }
    if let Err(e) = client
        .publish_with_headers(reply, headers, body.into())
        .await
    {
        warn!(error = %e, "log API reply not sent");
    }
}
