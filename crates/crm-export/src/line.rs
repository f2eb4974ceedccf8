//! One event as one JSON line, serialized straight into a byte buffer (no `serde_json::Value`).

use std::io::Write;

use serde::ser::{self, Impossible, SerializeStruct, Serializer};
use serde::Serialize;
use uuid::Uuid;

use crm_domain::{codec, Event};
use crm_eventlog::Record;

use crate::time::Rfc3339;
use crate::ExportError;

/// Encodes records as export lines. Holds a buffer that is reused from line to line.
#[derive(Debug, Default)]
pub struct LineEncoder {
    buf: Vec<u8>,
}

/// The fields of a line, in their order; serde writes them as declared.
#[derive(Serialize)]
struct Line<'a> {
    position: u64,
    stream: &'a str,
    version: u64,
    event_type: &'a str,
    schema_version: u16,
    occurred_at: Rfc3339,
    recorded_at: Rfc3339,
    command_id: &'a Uuid,
    actor: Option<&'a str>,
    data: Data<'a>,
}

impl LineEncoder {
    pub fn new() -> LineEncoder {
        LineEncoder::default()
    }

    /// Decodes `record`'s payload and writes its line, `\n` included, to `out`.
    pub fn write_to<W: Write>(&mut self, record: &Record, out: &mut W) -> Result<(), ExportError> {
        self.buf.clear();
        append_line(record, &mut self.buf)?;
        out.write_all(&self.buf).map_err(ExportError::Write)
    }

    /// The line of `record`, `\n` included, in the encoder's buffer.
    pub fn encode(&mut self, record: &Record) -> Result<&[u8], ExportError> {
        self.buf.clear();
        append_line(record, &mut self.buf)?;
        Ok(&self.buf)
    }
}

/// Appends the line of `record` to `out`; on an error `out` is left as it was, so a buffer of
/// lines never holds half of one.
pub fn append_line(record: &Record, out: &mut Vec<u8>) -> Result<(), ExportError> {
    let stamped = codec::decode_event(&record.event_type, record.schema_version, &record.payload)
        .map_err(|e| ExportError::BadRecord {
        position: record.position,
        reason: e.to_string(),
    })?;
    let line = Line {
        position: record.position,
        stream: &record.stream,
        version: record.stream_version,
        event_type: &record.event_type,
        schema_version: record.schema_version,
        occurred_at: Rfc3339::from_micros(stamped.occurred_at.as_micros()),
        recorded_at: Rfc3339::from_micros(record.recorded_at_us),
        command_id: &record.command_id,
        actor: record.actor.as_deref(),
        data: Data(&stamped.event),
    };
    let start = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, &line) {
        out.truncate(start);
        return Err(ExportError::BadRecord {
            position: record.position,
            reason: format!("does not encode as JSON: {e}"),
        });
    }
    out.push(b'\n');
    Ok(())
}

/// An event's own fields: `Event` serializes adjacently tagged, `{"type": T, "data": {...}}`;
/// this writes only what it gives as `data`, so no event type has to be listed here.
struct Data<'a>(&'a Event);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(ContentOnly(serializer))
    }
}

/// A serializer that accepts only a struct and passes on its `data` field.
struct ContentOnly<S>(S);

/// The `SerializeStruct` of [`ContentOnly`]: the inner serializer until `data` has used it.
struct ContentField<S: Serializer> {
    serializer: Option<S>,
    written: Option<S::Ok>,
}

const CONTENT_FIELD: &str = "data";

fn not_adjacent<E: ser::Error>() -> E {
    E::custom("an event must serialize as {\"type\", \"data\"}")
}

impl<S: Serializer> SerializeStruct for ContentField<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        if key == CONTENT_FIELD {
            let serializer = self.serializer.take().ok_or_else(not_adjacent)?;
            self.written = Some(value.serialize(serializer)?);
        }
        Ok(())
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.written.ok_or_else(not_adjacent)
    }
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, S::Error> {
            Err(not_adjacent())
        })*
    };
}

impl<S: Serializer> Serializer for ContentOnly<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = ContentField<S>;
    type SerializeStructVariant = Impossible<S::Ok, S::Error>;

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<ContentField<S>, S::Error> {
        Ok(ContentField {
            serializer: Some(self.0),
            written: None,
        })
    }

    refuse! {
        serialize_bool(bool) -> S::Ok;
        serialize_i8(i8) -> S::Ok;
        serialize_i16(i16) -> S::Ok;
        serialize_i32(i32) -> S::Ok;
        serialize_i64(i64) -> S::Ok;
        serialize_u8(u8) -> S::Ok;
        serialize_u16(u16) -> S::Ok;
        serialize_u32(u32) -> S::Ok;
        serialize_u64(u64) -> S::Ok;
        serialize_f32(f32) -> S::Ok;
        serialize_f64(f64) -> S::Ok;
        serialize_char(char) -> S::Ok;
        serialize_str(&str) -> S::Ok;
        serialize_bytes(&[u8]) -> S::Ok;
        serialize_none() -> S::Ok;
        serialize_unit() -> S::Ok;
        serialize_unit_struct(&'static str) -> S::Ok;
        serialize_unit_variant(&'static str, u32, &'static str) -> S::Ok;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _value: &T) -> Result<S::Ok, S::Error> {
        Err(not_adjacent())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _value: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_adjacent())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_adjacent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::event::{LeadCreated, OrderPlaced};
    use crm_domain::types::{LeadSource, OrderChannel};
    use crm_domain::{Currency, Money, Timestamp};

    fn record(position: u64, occurred_at: Timestamp, event: &Event) -> Record {
        Record {
            format_version: crm_eventlog::record::FORMAT_VERSION,
            position,
            stream: format!("{}-{}", event.aggregate(), Uuid::from_u128(0xaa)),
            stream_version: 2,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            command_id: Uuid::from_u128(0x0190_f1b2_0000_7000_8000_0000_0000_0001),
            recorded_at_us: 1_764_649_367_218_282,
            actor: Some("grace".into()),
            correlation_id: Some("not exported".into()),
            causation_id: None,
            payload: codec::encode_event(occurred_at, event).expect("encodes"),
        }
    }

    fn lead_created() -> Event {
        Event::LeadCreated(LeadCreated {
            lead_id: Uuid::from_u128(0xaa),
            name: "Ada \"the first\"".into(),
            email: None,
            phone: None,
            company: Some("Analytical Engines".into()),
            source: LeadSource::Web,
            campaign_id: None,
            customer_id: None,
            owner: None,
            estimated_value: Some(Money::new(50_000, Currency::new("EUR").unwrap())),
            pipeline: "default".into(),
            stage: "awareness".into(),
        })
    }

    #[test]
    fn a_golden_line() {
        let occurred = Timestamp::parse_rfc3339("2026-11-02T09:00:00Z").unwrap();
        let line = LineEncoder::new()
            .encode(&record(7, occurred, &lead_created()))
            .unwrap()
            .to_vec();
        let expected = concat!(
            r#"{"position":7,"stream":"lead-00000000-0000-0000-0000-0000000000aa","version":2,"#,
            r#""event_type":"LeadCreated","schema_version":1,"occurred_at":"2026-11-02T09:00:00Z","#,
            r#""recorded_at":"2025-12-02T04:22:47.218282Z","#,
            r#""command_id":"0190f1b2-0000-7000-8000-000000000001","actor":"grace","#,
            r#""data":{"lead_id":"00000000-0000-0000-0000-0000000000aa","name":"Ada \"the first\"","#,
            r#""email":null,"phone":null,"company":"Analytical Engines","source":"web","#,
            r#""campaign_id":null,"customer_id":null,"owner":null,"#,
            r#""estimated_value":{"amount_minor":50000,"currency":"EUR"},"#,
            r#""pipeline":"default","stage":"awareness"}}"#,
            "\n"
        );
        assert_eq!(String::from_utf8(line).unwrap(), expected);
    }

    #[test]
    fn the_fields_come_in_the_documented_order() {
        let occurred = Timestamp::from_micros(1_000);
        let mut encoder = LineEncoder::new();
        let line = encoder
            .encode(&record(1, occurred, &lead_created()))
            .unwrap();
        let text = std::str::from_utf8(line).unwrap();
        let order = [
            "\"position\"",
            "\"stream\"",
            "\"version\"",
            "\"event_type\"",
            "\"schema_version\"",
            "\"occurred_at\"",
            "\"recorded_at\"",
            "\"command_id\"",
            "\"actor\"",
            "\"data\"",
        ];
        let at: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        let value: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(value.as_object().unwrap().len(), order.len());
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1);
    }

    #[test]
    fn data_is_the_events_own_body_as_in_the_json_api() {
        let events = [
            lead_created(),
            Event::OrderPlaced(OrderPlaced {
                order_id: Uuid::from_u128(1),
                customer_id: Uuid::from_u128(2),
                amount: Money::new(40_000, Currency::new("EUR").unwrap()),
                cost: None,
                channel: OrderChannel::Online,
                lead_id: None,
            }),
        ];
        for event in events {
            let mut out = Vec::new();
            LineEncoder::new()
                .write_to(&record(3, Timestamp::from_micros(0), &event), &mut out)
                .unwrap();
            let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let tagged = serde_json::to_value(&event).unwrap();
            assert_eq!(line["data"], tagged["data"]);
            assert_eq!(line["event_type"], tagged["type"]);
            assert!(line["data"].get("type").is_none());
        }
    }

    #[test]
    fn a_payload_that_does_not_decode_leaves_the_buffer_as_it_was() {
        let mut bad = record(9, Timestamp::from_micros(0), &lead_created());
        bad.payload.truncate(3);
        let mut out = b"earlier line\n".to_vec();
        let error = append_line(&bad, &mut out).unwrap_err();
        assert!(error.to_string().starts_with("position 9: "), "{error}");
        assert_eq!(out, b"earlier line\n");
        let mut unknown = record(10, Timestamp::from_micros(0), &lead_created());
        unknown.event_type = "FromTheFuture".into();
        assert!(append_line(&unknown, &mut out).is_err());
    }

    #[test]
    fn content_only_refuses_anything_but_a_tagged_struct() {
        let mut out = Vec::new();
        let mut serializer = serde_json::Serializer::new(&mut out);
        assert!(5u8.serialize(ContentOnly(&mut serializer)).is_err());
    }
}
