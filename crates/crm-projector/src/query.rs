//! Query responders over NATS (`crm.query.<name>`), with read-your-writes: a request may carry
//! `min_position` and `timeout_ms`; every reply carries the `position` its model reflects
//! (design rule 12). `crm.projector.<name>.status` reports each projector's status.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, HeaderMap, Message};
use futures::stream::{select_all, BoxStream};
use futures::{FutureExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tracing::{info, warn};

use crm_domain::ErrorCode;
use crm_wire::{
    reply_bytes_max, service_error_headers, Subjects, HEADER_CONTENT_TYPE, JSON_CONTENT_TYPE,
};

use crate::projection::{Projection, QueryError};
use crate::runtime::{ProjectorHandle, ProjectorStatus};
use crate::ProjectorError;

/// Largest query body.
pub const QUERY_BYTES_MAX: usize = 64 * 1024;
/// How long a query waits for `min_position` when it gives no `timeout_ms`.
pub const QUERY_TIMEOUT_MS_DEFAULT: u64 = 2_000;
/// The longest wait a query may ask for.
pub const QUERY_TIMEOUT_MS_MAX: u64 = 60_000;
const QUERY_QUEUE_GROUP: &str = "crm-query";

/// A running read model as the query responders see it.
pub trait QueryTarget: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn queries(&self) -> &'static [&'static str];
    fn position_watch(&self) -> watch::Receiver<u64>;
    /// The answer and the position of the model it was computed from.
    fn answer(&self, query: &str, request: &Value) -> (u64, Result<Value, QueryError>);
    fn status(&self) -> ProjectorStatus;
    /// Starts a rebuild beside the live model (design rule 11).
    fn request_rebuild(&self) -> Result<(), String>;
}

impl<P: Projection> QueryTarget for ProjectorHandle<P> {
    fn name(&self) -> &'static str {
        self.read(|model, _| model.name())
    }

    fn queries(&self) -> &'static [&'static str] {
        self.read(|model, _| model.queries())
    }

    fn position_watch(&self) -> watch::Receiver<u64> {
        ProjectorHandle::position_watch(self)
    }

    fn answer(&self, query: &str, request: &Value) -> (u64, Result<Value, QueryError>) {
        self.read(|model, position| (position, model.query(query, request)))
    }

    fn status(&self) -> ProjectorStatus {
        ProjectorHandle::status(self)
    }

    fn request_rebuild(&self) -> Result<(), String> {
        ProjectorHandle::request_rebuild(self)
    }
}

enum Route {
    Query(Arc<dyn QueryTarget>, &'static str),
    Status(Arc<dyn QueryTarget>),
    Rebuild(Arc<dyn QueryTarget>),
}

/// Serves the queries of `targets` until `shutdown` turns true.
pub async fn serve_queries(
    client: Client,
    subjects: Subjects,
    targets: Vec<Arc<dyn QueryTarget>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ProjectorError> {
    let mut streams: Vec<BoxStream<'static, (Arc<Route>, Message)>> = Vec::new();
    for target in &targets {
        let mut routes: Vec<(String, Route)> = target
            .queries()
            .iter()
            .map(|q| (subjects.query(q), Route::Query(target.clone(), q)))
            .collect();
        routes.push((
            format!("{}.projector.{}.status", subjects.prefix(), target.name()),
            Route::Status(target.clone()),
        ));
        routes.push((
            format!("{}.projector.{}.rebuild", subjects.prefix(), target.name()),
            Route::Rebuild(target.clone()),
        ));
        for (subject, route) in routes {
            let subscriber = client
                .queue_subscribe(subject.clone(), QUERY_QUEUE_GROUP.to_owned())
                .await
                .map_err(|e| ProjectorError::nats("subscribe", e))?;
            info!(subject = %subject, "query responder listening");
            let route = Arc::new(route);
            streams.push(subscriber.map(move |m| (route.clone(), m)).boxed());
        }
    }
    let mut all = select_all(streams);
    loop {
        let next = tokio::select! {
            next = all.next() => next,
            _ = crate::stopped(&mut shutdown) => None,
        };
        let Some((route, message)) = next else {
            return Ok(());
        };
        let client = client.clone();
        tokio::spawn(async move {
            let (body, error) = match route.as_ref() {
                Route::Query(target, query) => {
                    answer(target.as_ref(), query, &message.payload).await
                }
                Route::Status(target) => (
                    serde_json::to_value(target.status()).unwrap_or(Value::Null),
                    None,
                ),
                Route::Rebuild(target) => match target.request_rebuild() {
                    Ok(()) => (json!({"status": "accepted", "rebuild": "started"}), None),
                    Err(reason) => (
                        json!({"status": "rejected", "code": ErrorCode::InvalidTransition, "message": reason}),
                        Some((ErrorCode::InvalidTransition, reason)),
                    ),
                },
            };
            respond(&client, &message, body, error).await;
        });
    }
}

async fn answer(
    target: &dyn QueryTarget,
    query: &str,
    payload: &[u8],
) -> (Value, Option<(ErrorCode, String)>) {
    let position_now = *target.position_watch().borrow();
    let refuse = |code: ErrorCode, message: String, position: u64| {
        (
            json!({"status": "rejected", "code": code, "message": message, "position": position}),
            Some((code, message)),
        )
    };
    if payload.len() > QUERY_BYTES_MAX {
        return refuse(
            ErrorCode::PayloadTooLarge,
            format!("query above {QUERY_BYTES_MAX} bytes"),
            position_now,
        );
    }
    let request: Value = if payload.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        match serde_json::from_slice(payload) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => {
                return refuse(
                    ErrorCode::Malformed,
                    "a query body is a JSON object".into(),
                    position_now,
                )
            }
            Err(e) => {
                return refuse(
                    ErrorCode::Malformed,
                    format!("query body: {e}"),
                    position_now,
                )
            }
        }
    };
    let number = |field: &str| -> Result<Option<u64>, String> {
        match request.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("`{field}` must be a non-negative integer")),
        }
    };
    let (min_position, timeout_ms) = match (number("min_position"), number("timeout_ms")) {
        (Ok(min), Ok(timeout)) => (
            min.unwrap_or(0),
            timeout
                .unwrap_or(QUERY_TIMEOUT_MS_DEFAULT)
                .min(QUERY_TIMEOUT_MS_MAX),
        ),
        (Err(e), _) | (_, Err(e)) => return refuse(ErrorCode::Malformed, e, position_now),
    };
    if min_position > position_now {
        let mut watch = target.position_watch();
        let reached = tokio::time::timeout(
            Duration::from_millis(timeout_ms),
            watch.wait_for(|p| *p >= min_position).map(|r| r.is_ok()),
        )
        .await;
        if !matches!(reached, Ok(true)) {
            let position = *target.position_watch().borrow();
            return refuse(
                ErrorCode::Unavailable,
                format!("the {} read model reached position {position}, not {min_position}, within {timeout_ms} ms", target.name()),
                position,
            );
        }
    }
    let (position, result) = target.answer(query, &request);
    match result {
        Ok(Value::Object(mut fields)) => {
            fields.insert("position".to_owned(), json!(position));
            (Value::Object(fields), None)
        }
        Ok(other) => (json!({"position": position, "result": other}), None),
        Err(QueryError::NotFound(what)) => refuse(ErrorCode::NotFound, what, position),
        Err(QueryError::Malformed(what)) => refuse(ErrorCode::Malformed, what, position),
        Err(QueryError::UnknownQuery(what)) => refuse(
            ErrorCode::UnknownCommand,
            format!("unknown query {what}"),
            position,
        ),
    }
}

async fn respond(
    client: &Client,
    message: &Message,
    body: Value,
    error: Option<(ErrorCode, String)>,
) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_CONTENT_TYPE, JSON_CONTENT_TYPE);
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut error = error;
    let bytes_max = reply_bytes_max(client.server_info().max_payload);
    if bytes.len() > bytes_max {
        // Publishing it would make the server drop this connection and every subscription
        // on it: refuse typed instead.
        let message = format!(
            "the reply would be {} bytes, above the {bytes_max} bytes NATS carries here; ask for a smaller page (`limit`)",
            bytes.len()
        );
        let code = ErrorCode::PayloadTooLarge;
        bytes = serde_json::to_vec(
            &json!({"status": "rejected", "code": code, "message": message, "position": body.get("position")}),
        )
        .unwrap_or_default();
        error = Some((code, message));
    }
    if let Some((code, text)) = &error {
        for (name, value) in service_error_headers(*code, text) {
            headers.insert(name, value.as_str());
        }
    }
    if let Err(e) = client
        .publish_with_headers(reply, headers, bytes.into())
        .await
    {
        warn!(error = %e, "query reply not sent");
    }
}
