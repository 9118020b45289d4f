//! JSON Schema for the project file and pipelines, generated from the config types.
//!
//! The schemas use draft-07, the draft every editor plugin and CI validator understands. The
//! project schema is completed with what the registered connectors declare: the list of
//! connector names and, per connector, the schema of its `settings`.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{Value, json};

use crate::config::{PipelineConfig, ProjectConfig};
use crate::connector::{Entities, Registry};

/// Where the generated schemas are checked in, relative to the repository root.
pub const PROJECT_SCHEMA_FILE: &str = "schemas/project.schema.json";
pub const PIPELINE_SCHEMA_FILE: &str = "schemas/pipeline.schema.json";

fn settings() -> SchemaSettings {
    SchemaSettings::draft07()
}

/// Generates the root schema of `T`, tidied for good error locations.
pub fn root_schema_for<T: JsonSchema>() -> Value {
    let mut schema = settings().into_generator().into_root_schema_for::<T>().to_value();
    drop_optional_null(&mut schema);
    schema
}

/// schemars writes an optional field as "T or null". Configuration never needs an explicit
/// null, and the `anyOf` makes a validator report "matches none of the alternatives" at the
/// parent instead of the precise problem inside, so optional fields take T's schema alone.
fn drop_optional_null(node: &mut Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                for prop in props.values_mut() {
                    unwrap_nullable(prop);
                }
            }
            for v in map.values_mut() {
                drop_optional_null(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_optional_null),
        _ => {}
    }
}

fn unwrap_nullable(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else { return };
    if let Some(Value::Array(types)) = obj.get("type") {
        let rest: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if rest.len() < types.len() {
            obj.insert("type".into(), if rest.len() == 1 { rest[0].clone() } else { Value::Array(rest) });
        }
    }
    let Some(Value::Array(any_of)) = obj.get("anyOf") else { return };
    let non_null: Vec<Value> = any_of.iter().filter(|s| s.get("type") != Some(&json!("null"))).cloned().collect();
    if non_null.len() == 1 && any_of.len() == 2 {
        obj.remove("anyOf");
        // draft-07 ignores keywords beside `$ref`, so the reference goes into an `allOf`.
        obj.insert("allOf".into(), Value::Array(non_null));
    }
}

/// A schema for `T` with every subschema inlined, for embedding inside another schema (a
/// connector's settings inside the project schema).
pub fn inline_schema_for<T: JsonSchema>() -> Schema {
    let mut s = settings();
    s.inline_subschemas = true;
    let mut schema = s.into_generator().into_root_schema_for::<T>().to_value();
    drop_optional_null(&mut schema);
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
    }
    Schema::try_from(schema).expect("a generated schema is an object")
}

/// The schema of `ml-connector.yaml`.
pub fn project_schema(registry: &Registry) -> Value {
    let mut schema = root_schema_for::<ProjectConfig>();
    let names: Vec<&str> = registry.names().collect();
    let connection = &mut schema["definitions"]["ConnectionConfig"];
    connection["properties"]["connector"]["enum"] = json!(names);
    let per_connector: Vec<Value> = registry
        .iter()
        .map(|c| {
            json!({
                "if": { "properties": { "connector": { "const": c.name() } }, "required": ["connector"] },
                "then": { "properties": { "settings": c.settings_schema().to_value() } }
            })
        })
        .collect();
    if !per_connector.is_empty() {
        connection["allOf"] = Value::Array(per_connector);
    }
    schema
}

/// The schema of a pipeline file.
pub fn pipeline_schema(registry: &Registry) -> Value {
    let mut schema = root_schema_for::<PipelineConfig>();
    // Resources and entities depend on the connection's connector, which only the project file
    // knows, so they are checked by `validate`; the schema lists them for editors.
    let resources: Vec<String> = registry
        .iter()
        .flat_map(|c| c.resources().into_iter().map(move |r| format!("{} ({})", r.name, c.name())))
        .collect();
    let entities: Vec<String> = registry
        .iter()
        .flat_map(|c| match c.entities() {
            Entities::Any(what) => vec![format!("{}: {what}", c.name())],
            Entities::Named(list) => list.into_iter().map(|e| format!("{} ({})", e.name, c.name())).collect(),
        })
        .collect();
    append_description(
        &mut schema["definitions"]["TargetConfig"]["properties"]["resource"],
        &format!("Known resources: {}.", resources.join(", ")),
    );
    append_description(
        &mut schema["definitions"]["SourceConfig"]["properties"]["entity"],
        &format!("Known entities: {}.", entities.join("; ")),
    );
    schema
}

fn append_description(node: &mut Value, extra: &str) {
    let current = node.get("description").and_then(Value::as_str).unwrap_or("").to_owned();
    node["description"] =
        Value::String(if current.is_empty() { extra.to_owned() } else { format!("{current} {extra}") });
}

/// Pretty JSON with a trailing newline, as the files in `schemas/` are written.
pub fn to_file_text(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a JSON value always serializes");
    text.push('\n');
    text
}
