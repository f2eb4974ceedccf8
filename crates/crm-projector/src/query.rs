//! Query responders over NATS (`crm.query.<name>`), with read-your-writes: a request may carry
//! `min_position` and `timeout_ms`; every reply carries the `position` its model reflects
//! (docs/DESIGN.md rule 12). `crm.projector.<name>.status` reports each projector's status. The bodies
//! are the typed items of `crm_wire::query`.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, HeaderMap, Message};
use futures::stream::{select_all, BoxStream};
use futures::{FutureExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use tracing::{info, warn};

use crm_domain::ErrorCode;
use crm_wire::query::{
    ProjectorStatus, QueryEnvelope, QueryRefusal, QueryRejection, QueryReply, RebuildReply,
    QUERY_QUEUE_GROUP,
};
use crm_wire::{
    reply_bytes_max, service_error_headers, Subjects, HEADER_CONTENT_TYPE, JSON_CONTENT_TYPE,
};

use crm_ops::{Endpoint, Instance};

use crate::error::RebuildRefused;
use crate::projection::{Projection, QueryError};
use crate::runtime::ProjectorHandle;
use crate::ProjectorError;

/// A running read model as the query responders see it.
pub trait QueryTarget: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn queries(&self) -> &'static [&'static str];
    fn position_watch(&self) -> watch::Receiver<u64>;
    /// The answer and the position of the model it was computed from.
    fn answer(&self, query: &str, request: &Value) -> (u64, Result<Value, QueryError>);
    fn status(&self) -> ProjectorStatus;
    /// Starts a rebuild beside the live model (docs/DESIGN.md rule 11).
    fn request_rebuild(&self) -> Result<(), RebuildRefused>;
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
        ProjectorHandle::answer(self, query, request)
    }

    fn status(&self) -> ProjectorStatus {
        ProjectorHandle::status(self)
    }

    fn request_rebuild(&self) -> Result<(), RebuildRefused> {
        ProjectorHandle::request_rebuild(self)
    }
}

enum Route {
    Query(Arc<dyn QueryTarget>, &'static str),
    Status(Arc<dyn QueryTarget>),
    Rebuild(Arc<dyn QueryTarget>),
}

/// A route and the endpoint that counts its requests.
type Routed = (Arc<Route>, Arc<Endpoint>);

/// A reply body ready to send, the refusal it carries (for the service error headers) and the
/// model position it was answered at.
struct Outgoing {
    bytes: Vec<u8>,
    error: Option<(ErrorCode, String)>,
    position: Option<u64>,
}

impl Outgoing {
    fn new(body: &impl Serialize, position: Option<u64>) -> Outgoing {
        Outgoing {
            bytes: serde_json::to_vec(body).unwrap_or_default(),
            error: None,
            position,
        }
    }

    fn refused(refusal: &QueryRefusal, position: Option<u64>) -> Outgoing {
        Outgoing {
            error: Some((refusal.code(), refusal.to_string())),
            ..Outgoing::new(&QueryRejection::new(refusal, position), position)
        }
    }
}

/// Serves the queries of `targets` until `shutdown` turns true, and each projector's status
/// and rebuild: on the shared subjects (one instance of the queue group answers) and on this
/// instance's own (`crm.projector.<name>.status.<id>`, `.rebuild.<id>`). Every endpoint counts
/// its requests in `instance` (`$SRV.STATS`).
pub async fn serve_queries(
    client: Client,
    subjects: Subjects,
    targets: Vec<Arc<dyn QueryTarget>>,
    instance: Instance,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ProjectorError> {
    let mut streams: Vec<BoxStream<'static, (Routed, Message)>> = Vec::new();
    let id = instance.id().to_owned();
    for target in &targets {
        let name = target.name();
        let mut routes: Vec<(String, &str, Route)> = target
            .queries()
            .iter()
            .map(|q| {
                (
                    subjects.query(q),
                    QUERY_QUEUE_GROUP,
                    Route::Query(target.clone(), q),
                )
            })
            .collect();
        routes.push((
            subjects.projector_status(name),
            QUERY_QUEUE_GROUP,
            Route::Status(target.clone()),
        ));
        routes.push((
            subjects.projector_rebuild(name),
            QUERY_QUEUE_GROUP,
            Route::Rebuild(target.clone()),
        ));
        routes.push((
            subjects.instance_projector_status(name, &id),
            "",
            Route::Status(target.clone()),
        ));
        routes.push((
            subjects.instance_projector_rebuild(name, &id),
            "",
            Route::Rebuild(target.clone()),
        ));
        for (subject, queue_group, route) in routes {
            let subscriber = if queue_group.is_empty() {
                client.subscribe(subject.clone()).await
            } else {
                client
                    .queue_subscribe(subject.clone(), queue_group.to_owned())
                    .await
            }
            .map_err(|e| ProjectorError::nats("subscribe", e))?;
            info!(subject = %subject, "query responder listening");
            let endpoint_name = subject
                .strip_prefix(subjects.prefix())
                .and_then(|rest| rest.strip_prefix('.'))
                .unwrap_or(&subject)
                .replace(&id, "instance");
            let endpoint = instance.endpoint(&endpoint_name, &subject, queue_group);
            let routed: Routed = (Arc::new(route), endpoint);
            streams.push(subscriber.map(move |m| (routed.clone(), m)).boxed());
        }
    }
    let mut all = select_all(streams);
    loop {
        let next = tokio::select! {
            next = all.next() => next,
            _ = crate::stopped(&mut shutdown) => None,
        };
        let Some(((route, endpoint), message)) = next else {
            return Ok(());
        };
        let client = client.clone();
        tokio::spawn(async move {
            let timing = endpoint.start();
            let outgoing = match route.as_ref() {
                Route::Query(target, query) => {
                    answer(target.as_ref(), query, &message.payload).await
                }
                Route::Status(target) => Outgoing::new(&target.status(), None),
                Route::Rebuild(target) => match target.request_rebuild() {
                    Ok(()) => Outgoing::new(&RebuildReply::accepted(), None),
                    Err(refused) => {
                        let reply = RebuildReply::rejected(refused.to_string());
                        Outgoing {
                            error: reply.error_code().map(|code| (code, refused.to_string())),
                            ..Outgoing::new(&reply, None)
                        }
                    }
                },
            };
            let error = respond(&client, &message, outgoing).await;
            timing.done(error.as_ref().map(|(code, text)| (*code, text.as_str())));
        });
    }
}

async fn answer(target: &dyn QueryTarget, query: &str, payload: &[u8]) -> Outgoing {
    let position_now = *target.position_watch().borrow();
    let (envelope, request) = match QueryEnvelope::parse(payload) {
        Ok(parsed) => parsed,
        Err(refusal) => return Outgoing::refused(&refusal, Some(position_now)),
    };
    let min_position = envelope.min_position.unwrap_or(0);
    let timeout_ms = envelope.timeout_ms();
    if min_position > position_now {
        let mut watch = target.position_watch();
        let reached = tokio::time::timeout(
            Duration::from_millis(timeout_ms),
            watch.wait_for(|p| *p >= min_position).map(|r| r.is_ok()),
        )
        .await;
        if !matches!(reached, Ok(true)) {
            let position = *target.position_watch().borrow();
            let refusal = QueryRefusal::PositionNotReached {
                model: target.name().to_owned(),
                position,
                min_position,
                timeout_ms,
            };
            return Outgoing::refused(&refusal, Some(position));
        }
    }
    let (position, result) = target.answer(query, &request);
    let refusal = match result {
        Ok(data) => return Outgoing::new(&QueryReply { position, data }, Some(position)),
        Err(QueryError::NotFound(what)) => QueryRefusal::NotFound(what),
        Err(QueryError::Malformed(what)) => QueryRefusal::Malformed(what),
        Err(QueryError::UnknownQuery(what)) => QueryRefusal::UnknownQuery(what),
        Err(QueryError::StoreUnreadable(what)) => QueryRefusal::StoreUnreadable(what),
    };
    Outgoing::refused(&refusal, Some(position))
}

/// Sends the reply; returns the refusal it carried, if any.
async fn respond(
    client: &Client,
    message: &Message,
    outgoing: Outgoing,
) -> Option<(ErrorCode, String)> {
    let Some(reply) = message.reply.clone() else {
        return outgoing.error;
    };
    let Outgoing {
        mut bytes,
        mut error,
        position,
    } = outgoing;
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_CONTENT_TYPE, JSON_CONTENT_TYPE);
    let bytes_max = reply_bytes_max(client.server_info().max_payload);
    if bytes.len() > bytes_max {
        // Publishing it would make the server drop this connection and every subscription
        // on it: refuse typed instead.
        let refused = Outgoing::refused(
            &QueryRefusal::ReplyTooLarge {
                bytes: bytes.len(),
                bytes_max,
            },
            position,
        );
        bytes = refused.bytes;
        error = refused.error;
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
    error
}
