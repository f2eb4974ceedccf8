//! JSON Schemas of the command bodies, generated from the Rust types (`schemars`) and kept in
//! `docs/schema` (the `schemas` test fails when they drift; `CRM_UPDATE_SCHEMAS=1` rewrites
//! them). Only built with the `schema` feature.
//!
//! A schema describes a body as the JSON codec decodes it: `deny_unknown_fields` is
//! `additionalProperties: false`, an `Option` field may be absent or `null`, enums are in their
//! snake_case wire spelling, and `Money`, `Currency`, `Timestamp` and UUIDs follow their serde
//! impls (the codec also takes a UUID in the simple, braced or URN form; the schema gives the
//! hyphenated one). Rules of `decide` (lengths, known currencies, ranges) are not part of it.

use serde_json::{Map, Value};

use crate::command::Command;

/// One file of `docs/schema`: its name and its exact contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    pub name: String,
    pub contents: String,
}

/// Every file of `docs/schema`: `<Command>.json` per command and `index.json`, which maps
/// each command to its NATS subject suffix and schema file.
pub fn schema_files() -> Vec<SchemaFile> {
    let mut files = Vec::new();
    let mut index = Vec::new();
    for (aggregate, name, schema) in Command::body_schemas() {
        let file = format!("{name}.json");
        let mut entry = Map::new();
        entry.insert("command".into(), Value::from(name));
        entry.insert(
            "subject".into(),
            Value::from(format!("<prefix>.cmd.{aggregate}.{name}")),
        );
        entry.insert("schema".into(), Value::from(file.clone()));
        index.push(Value::Object(entry));
        files.push(SchemaFile {
            name: file,
            contents: render(schema.as_value()),
        });
    }
    files.push(SchemaFile {
        name: "index.json".into(),
        contents: render(&Value::Array(index)),
    });
    files
}

/// Pretty JSON with object keys sorted, whatever map order `serde_json` was built with (its
/// `preserve_order` feature may be on through another crate), and a final newline.
fn render(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&sorted(value)).unwrap_or_default();
    text.push('\n');
    text
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key.clone(), sorted(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}
