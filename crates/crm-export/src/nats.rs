//! Export from a running service over `crm.log.head` and `crm.log.read`.
//!
//! Pages are asked for in the bincode form: the stored envelopes, byte for byte, checked here
//! with `Record::decode` (CRC and limits) exactly as a local read checks them, and then encoded
//! by the same code as an offline export, so both give the same bytes. The next page is
//! requested while the current one is written.

use std::io::Write;
use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use bytes::Bytes;
use tracing::debug;

use crm_eventlog::{Record, RecordLimits};
use crm_wire::{LogHeadReply, LogReadReply, LogReadRequest, Subjects, LOG_READ_EVENTS_MAX};

use crate::error::one_line;
use crate::filter::{Filter, Plan};
use crate::sink::{Exporter, Summary};
use crate::ExportError;

/// Where and how to read the log over NATS.
#[derive(Clone)]
pub struct NatsSource {
    pub client: Client,
    pub subjects: Subjects,
    /// The limits of the log behind the API (`crm serve --command-bytes-max`), so records are
    /// decoded here as the log itself decodes them.
    pub record_limits: RecordLimits,
    /// How long one request may wait for its reply.
    pub timeout: Duration,
}

impl NatsSource {
    /// The log's durable head, from `crm.log.head`.
    pub async fn head(&self) -> Result<u64, ExportError> {
        let subject = self.subjects.log_head();
        let payload = self.request(&subject, Vec::new()).await?;
        let reply: LogHeadReply = serde_json::from_slice(&payload)
            .map_err(|e| ExportError::nats(format!("reading the {subject} reply"), e))?;
        Ok(reply.head)
    }

    /// Up to `max` records from `from`, checked.
    pub async fn read(&self, from: u64, max: u64) -> Result<Vec<Record>, ExportError> {
        let subject = self.subjects.log_read();
        let body = serde_json::to_vec(&LogReadRequest {
            from,
            max: max.clamp(1, LOG_READ_EVENTS_MAX),
            format: None,
        })
        .map_err(|e| ExportError::nats(format!("encoding a {subject} request"), e))?;
        let payload = self.request(&subject, body).await?;
        let page = LogReadReply::decode(&payload)
            .map_err(|e| ExportError::nats(format!("reading the {subject} reply"), e))?;
        page.records
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                Record::decode(bytes, &self.record_limits).map_err(|e| ExportError::BadRecord {
                    position: from + i as u64,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    async fn request(&self, subject: &str, body: Vec<u8>) -> Result<Bytes, ExportError> {
        let what = || format!("requesting {subject}");
        let reply = tokio::time::timeout(
            self.timeout,
            self.client.request(subject.to_owned(), body.into()),
        )
        .await
        .map_err(|_| {
            ExportError::nats(
                what(),
                format!(
                    "NATS gave no answer within {} s (is the server reachable?)",
                    self.timeout.as_secs_f64()
                ),
            )
        })?
        .map_err(|e| match e.kind() {
            RequestErrorKind::NoResponders => ExportError::nats(
                what(),
                "no service answers it (is crm serve running, with this subject prefix?)",
            ),
            RequestErrorKind::TimedOut => {
                ExportError::nats(what(), "the service did not answer in time")
            }
            _ => ExportError::nats(what(), e),
        })?;
        if let Some(headers) = &reply.headers {
            if headers.get(crm_wire::HEADER_SERVICE_ERROR_CODE).is_some() {
                return Err(ExportError::nats(
                    format!("{subject} refused"),
                    one_line(&String::from_utf8_lossy(&reply.payload)),
                ));
            }
        }
        Ok(reply.payload)
    }
}

/// Writes the events of `plan` that pass `filter` to `out`, reading pages of `crm.log.read`.
/// `progress` hears the last position taken after each page. On an error the lines before it
/// are written.
pub async fn export_nats<W: Write>(
    source: &NatsSource,
    plan: Plan,
    filter: Filter,
    out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, ExportError> {
    let mut exporter = Exporter::new(out, plan, filter);
    match pages(source, &mut exporter, progress).await {
        Ok(()) => exporter.finish(),
        Err(e) => {
            exporter.abandon();
            Err(e)
        }
    }
}

async fn pages<W: Write>(
    source: &NatsSource,
    exporter: &mut Exporter<W>,
    progress: &mut dyn FnMut(u64),
) -> Result<(), ExportError> {
    let to = exporter.next_position() + exporter.remaining().saturating_sub(1);
    let fetch = |from: u64| {
        let source = source.clone();
        tokio::spawn(async move { source.read(from, to - from + 1).await })
    };
    let mut pending = (!exporter.is_done()).then(|| fetch(exporter.next_position()));
    while let Some(page) = pending.take() {
        let from = exporter.next_position();
        let records = page
            .await
            .map_err(|e| ExportError::nats("reading a page", e))??;
        let Some(last) = records.last().map(|r| r.position) else {
            return Err(ExportError::Truncated { at: from, head: to });
        };
        // Ask for the next page before writing this one.
        if last < to {
            pending = Some(fetch(last + 1));
        }
        exporter.push(&records)?;
        debug!(from, to = exporter.next_position() - 1, "exported a page");
        progress(exporter.next_position() - 1);
    }
    Ok(())
}
