//! Every command of the contract decodes from its JSON body through `Command::decode_named`,
//! and unknown fields are refused.

mod support;

use crm_domain::command::{BodyDecoder, BodyEncoder};
use crm_domain::{Aggregate, Command};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use support::*;

/// A `BodyDecoder` over one JSON body, as the wire codec would use it.
struct Json(Value);

impl BodyDecoder for Json {
    type Error = serde_json::Error;

    fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        // Round through text, as a NATS payload would arrive.
        serde_json::from_str(&self.0.to_string())
    }
}

/// Encodes a command's body (the `data` of the tagged form) as JSON.
struct ToJson;

impl BodyEncoder for ToJson {
    type Output = Value;

    fn encode<T: Serialize>(self, body: &T) -> Value {
        serde_json::to_value(body).expect("a command body serializes")
    }
}

fn body(command: &Command) -> Value {
    command.encode_body(ToJson)
}

#[test]
fn every_command_name_decodes_from_its_json_body() {
    let commands = one_of_each_command();
    assert_eq!(commands.len(), Command::NAMES.len());
    for ((aggregate, name), command) in Command::NAMES.iter().zip(&commands) {
        assert_eq!((command.aggregate(), command.name()), (*aggregate, *name));
        let decoded = Command::decode_named(*aggregate, name, &Json(body(command)))
            .unwrap_or_else(|| panic!("{aggregate}/{name} is a known command"))
            .unwrap_or_else(|e| panic!("{name} body does not decode: {e}"));
        assert_eq!(&decoded, command);
    }
}

#[test]
fn every_command_decodes_with_occurred_at_as_rfc3339() {
    for command in one_of_each_command() {
        let command = occurred(command, ts("2026-11-03T10:15:30.250+01:00"));
        let body = body(&command);
        assert_eq!(body["occurred_at"], json!("2026-11-03T09:15:30.250Z"));
        let decoded = Command::decode_named(command.aggregate(), command.name(), &Json(body))
            .expect("a known command")
            .expect("a valid body");
        assert_eq!(decoded, command);
    }
}

#[test]
fn every_command_refuses_an_unknown_field() {
    for command in one_of_each_command() {
        let mut body = body(&command);
        body.as_object_mut()
            .expect("a body is an object")
            .insert("colour".into(), json!("blue"));
        let result = Command::decode_named(command.aggregate(), command.name(), &Json(body))
            .expect("a known command");
        let error = result.expect_err("an unknown field is refused");
        assert!(
            error.to_string().contains("unknown field `colour`"),
            "{}: {error}",
            command.name()
        );
    }
}

#[test]
fn an_unknown_field_inside_money_is_refused() {
    let body = json!({
        "order_id": ORDER,
        "customer_id": CUSTOMER,
        "amount": {"amount_minor": 40000, "currency": "EUR", "rate": 1},
        "channel": "online",
    });
    let result = Command::decode_named(Aggregate::Order, "PlaceOrder", &Json(body))
        .expect("a known command");
    assert!(result.is_err());
}

#[test]
fn a_minimal_body_decodes_with_optional_fields_absent() {
    let body = json!({
        "lead_id": LEAD,
        "name": "Ada Lovelace",
        "source": "referral",
        "estimated_value": {"amount_minor": 250000, "currency": "EUR"},
    });
    let decoded = Command::decode_named(Aggregate::Lead, "CreateLead", &Json(body))
        .expect("a known command")
        .expect("a valid body");
    assert_eq!(
        decoded,
        Command::CreateLead(crm_domain::command::CreateLead {
            email: None,
            phone: None,
            company: None,
            source: crm_domain::types::LeadSource::Referral,
            owner: None,
            ..create_lead(LEAD)
        })
    );
}

#[test]
fn enumerations_are_snake_case_strings_in_a_body() {
    let body = json!({
        "ticket_id": TICKET,
        "customer_id": CUSTOMER,
        "subject": "Invoice is wrong",
        "category": "complaint",
        "priority": "urgent",
        "channel": "in_person",
    });
    let decoded = Command::decode_named(Aggregate::Ticket, "OpenTicket", &Json(body.clone()))
        .expect("a known command")
        .expect("a valid body");
    let Command::OpenTicket(open) = decoded else {
        panic!("an OpenTicket")
    };
    assert_eq!(open.channel, crm_domain::types::TicketChannel::InPerson);
    assert_eq!(open.priority, crm_domain::types::TicketPriority::Urgent);

    let mut bad = body;
    bad["channel"] = json!("InPerson");
    assert!(
        Command::decode_named(Aggregate::Ticket, "OpenTicket", &Json(bad))
            .expect("a known command")
            .is_err()
    );
}

#[test]
fn a_missing_required_field_is_refused() {
    let body = json!({ "lead_id": LEAD, "source": "web" });
    let error = Command::decode_named(Aggregate::Lead, "CreateLead", &Json(body))
        .expect("a known command")
        .expect_err("name is required");
    assert!(
        error.to_string().contains("missing field `name`"),
        "{error}"
    );
}

#[test]
fn an_unknown_name_or_a_name_under_another_aggregate_is_no_command() {
    let body = Json(json!({}));
    assert!(Command::decode_named(Aggregate::Lead, "DeleteLead", &body).is_none());
    assert!(Command::decode_named(Aggregate::Lead, "createLead", &body).is_none());
    assert!(Command::decode_named(Aggregate::Customer, "CreateLead", &body).is_none());
    for (aggregate, name) in Command::NAMES {
        for other in Aggregate::ALL {
            let found = Command::decode_named(other, name, &body).is_some();
            assert_eq!(found, other == *aggregate, "{other}/{name}");
        }
    }
}

#[test]
fn the_tagged_form_of_every_command_round_trips_through_json() {
    for command in one_of_each_command() {
        let json = serde_json::to_value(&command).expect("serializes");
        assert_eq!(json["type"], json!(command.name()));
        assert_eq!(json["data"], body(&command));
        let back: Command = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, command);
    }
}
