//! The JSON Schemas in `docs/schema` are the ones the Rust types generate, byte for byte.
//! After changing a command body, rewrite them with
//! `CRM_UPDATE_SCHEMAS=1 cargo test -p crm-domain --test schemas` and commit the diff.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crm_domain::schema::schema_files;
use crm_domain::Command;
use serde_json::Value;
use support::one_of_each_command;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema")
}

#[test]
fn committed_schemas_match_the_rust_types() {
    let dir = schema_dir();
    let files = schema_files();
    if std::env::var_os("CRM_UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).expect("docs/schema can be created");
        for stale in json_files_in(&dir) {
            std::fs::remove_file(dir.join(stale)).expect("a stale schema can be removed");
        }
        for file in &files {
            std::fs::write(dir.join(&file.name), &file.contents).expect("a schema is written");
        }
        return;
    }
    let mut drifted = Vec::new();
    for file in &files {
        match std::fs::read_to_string(dir.join(&file.name)) {
            Ok(committed) if committed == file.contents => {}
            _ => drifted.push(file.name.clone()),
        }
    }
    let generated: BTreeSet<_> = files.iter().map(|f| f.name.clone()).collect();
    let stale: Vec<_> = json_files_in(&dir)
        .into_iter()
        .filter(|name| !generated.contains(name))
        .collect();
    assert!(
        drifted.is_empty() && stale.is_empty(),
        "docs/schema is out of date (changed or missing: {drifted:?}; no longer generated: \
         {stale:?}); run `CRM_UPDATE_SCHEMAS=1 cargo test -p crm-domain --test schemas`"
    );
}

fn json_files_in(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect()
}

#[test]
fn there_is_one_schema_per_command() {
    let names: Vec<_> = Command::body_schemas()
        .into_iter()
        .map(|(_, name, _)| name)
        .collect();
    let expected: Vec<_> = Command::NAMES.iter().map(|(_, name)| *name).collect();
    assert_eq!(names, expected);
}

/// Not a full validator (none is cheap enough to add), but the shape that matters: every
/// field of a real accepted body is a property of its schema, every required property is
/// there, and unknown fields are refused as the codec refuses them.
#[test]
fn real_bodies_fit_their_schemas() {
    struct ToJson;
    impl crm_domain::command::BodyEncoder for ToJson {
        type Output = Value;
        fn encode<T: serde::Serialize>(self, body: &T) -> Value {
            serde_json::to_value(body).expect("a command body serializes")
        }
    }
    let schemas = Command::body_schemas();
    for command in one_of_each_command() {
        let (_, _, schema) = schemas
            .iter()
            .find(|(_, name, _)| *name == command.name())
            .expect("a schema per command");
        let schema = schema.as_value();
        assert_eq!(schema["additionalProperties"], Value::Bool(false));
        let properties = schema["properties"].as_object().expect("properties");
        let body = command.encode_body(ToJson);
        let body = body.as_object().expect("a body is an object");
        for (field, value) in body {
            assert!(
                properties.contains_key(field),
                "{}: `{field}` is not in the schema",
                command.name()
            );
            if value.is_null() {
                let property = properties[field].to_string();
                assert!(
                    property.contains("null"),
                    "{}: `{field}` may be null but its schema says {property}",
                    command.name()
                );
            }
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().expect("a field name");
            assert!(
                body.contains_key(required),
                "{}: required `{required}` is absent from a valid body",
                command.name()
            );
        }
    }
}
