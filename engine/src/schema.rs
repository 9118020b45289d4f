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

/// A schema for `T` with every subschema inlined, for embedding inside another schema (a
/// connector's settings inside the project schema).
pub fn inline_schema_for<T: JsonSchema>() -> Schema {
    let mut s = settings();
    s.inline_subschemas = true;
    let mut schema = s.into_generator().into_root_schema_for::<T>();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
    }
    schema
}

/// The schema of `ml-connector.yaml`.
pub fn project_schema(registry: &Registry) -> Value {
    let mut schema = settings().into_generator().into_root_schema_for::<ProjectConfig>().to_value();
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
    let mut schema = settings().into_generator().into_root_schema_for::<PipelineConfig>().to_value();
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
