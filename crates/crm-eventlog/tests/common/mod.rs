//! Helpers shared by the integration tests: request builders and a full-log reader.
#![allow(dead_code)]

use crm_eventlog::{AppendRequest, EventLog, ExpectedVersion, NewEvent, Record, StreamAppend};
use uuid::Uuid;

/// A stand-in for the caller's request hash: derived from the id and a body tag.
pub fn hash_of(command_id: Uuid, body: u8) -> [u8; 32] {
    let mut hash = [body; 32];
    hash[..16].copy_from_slice(command_id.as_bytes());
    hash
}

pub fn event(event_type: &str, payload: &[u8]) -> NewEvent {
    NewEvent {
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload: payload.to_vec(),
    }
}

/// One command appending `events` events to one stream.
pub fn request(stream: &str, expected: ExpectedVersion, events: usize) -> AppendRequest {
    let command_id = Uuid::now_v7();
    AppendRequest {
        command_id,
        request_hash: hash_of(command_id, 0),
        actor: Some("tester".into()),
        correlation_id: None,
        causation_id: None,
        streams: vec![StreamAppend {
            stream: stream.to_owned(),
            expected,
            events: (0..events)
                .map(|i| event("Happened", format!("{stream}-{i}").as_bytes()))
                .collect(),
        }],
    }
}

/// Every record of the log, read in pages.
pub fn read_everything(log: &EventLog) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    loop {
        let from = out.last().map_or(1, |r| r.position + 1);
        let page = log.read_all(from, 1000).expect("read_all");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}
