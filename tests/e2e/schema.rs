//! The checked-in JSON Schemas work with a standard validator, without our binary, and reject
//! unknown keys everywhere.

use std::path::Path;

use serde_json::{Value, json};

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft7::new(&schema).unwrap()
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path().as_str())).collect()
}

fn pipeline() -> Value {
    json!({
        "version": 1,
        "name": "orders",
        "source": {"connection": "erp", "entity": "salesInvoices", "cursor": {"field": "lastModifiedDateTime", "lookback": "10m"}},
        "filter": "record.status == 'Paid'",
        "key": "inv-{{ record.number }}",
        "fields": {
            "total": "{{ record.total }}",
            "fixed": 3,
            "nested": {"ANY_KEY": "x", "deeper": {"also": true}},
            "lines": {"for_each": "$.lines[*]", "fields": {"sku": "{{ item.sku }}"}},
            "tags": {"for_each": "$.tags[*]", "value": "{{ item }}"},
            "list": ["a", 1, null]
        },
        "target": {"connection": "mc", "resource": "order", "params": {"store_id": "s1"}},
        "depends_on": ["products"],
        "on_error": {"record": "dead_letter", "max_failures": 10}
    })
}

#[test]
fn a_full_pipeline_is_valid() {
    assert_eq!(errors(&schema("pipeline.schema.json"), &pipeline()), Vec::<String>::new());
}

#[test]
fn unknown_keys_are_rejected_at_every_level() {
    let v = schema("pipeline.schema.json");
    for (pointer, key) in [
        ("", "filtr"),
        ("/source", "entitty"),
        ("/source/cursor", "feild"),
        ("/target", "param"),
        ("/on_error", "recrod"),
    ] {
        let mut doc = pipeline();
        doc.pointer_mut(if pointer.is_empty() { "" } else { pointer }).unwrap()[key] = json!("x");
        let errs = errors(&v, &doc);
        assert!(errs.iter().any(|e| e.contains(key) && e.ends_with(&format!("at {pointer}"))), "{key}: {errs:?}");
    }
}

#[test]
fn unknown_keys_inside_for_each_are_rejected_at_the_block() {
    let v = schema("pipeline.schema.json");
    let mut doc = pipeline();
    doc["fields"]["lines"]["fileds"] = json!({});
    let errs = errors(&v, &doc);
    assert!(errs.iter().any(|e| e.contains("fileds") && e.ends_with("at /fields/lines")), "{errs:?}");
}

#[test]
fn wrong_types_and_values_are_rejected() {
    let v = schema("pipeline.schema.json");
    let mut doc = pipeline();
    doc["version"] = json!(2);
    doc["name"] = json!("Has Spaces");
    doc["source"]["cursor"]["lookback"] = json!("5 minutes");
    doc["on_error"]["record"] = json!("ignore");
    let errs = errors(&v, &doc);
    for at in ["/version", "/name", "/source/cursor/lookback", "/on_error/record"] {
        assert!(errs.iter().any(|e| e.ends_with(&format!("at {at}"))), "{at}: {errs:?}");
    }
}

#[test]
fn project_connections_are_checked_per_connector() {
    let v = schema("project.schema.json");
    let ok = json!({"version": 1, "name": "p", "connections": {"f": {"connector": "jsonl", "settings": {"directory": "d"}}}});
    assert_eq!(errors(&v, &ok), Vec::<String>::new());
    let bad_setting = json!({"version": 1, "name": "p", "connections": {"f": {"connector": "jsonl", "settings": {"directory": "d", "dir": "x"}}}});
    let errs = errors(&v, &bad_setting);
    assert!(errs.iter().any(|e| e.contains("dir") && e.ends_with("at /connections/f/settings")), "{errs:?}");
    let unknown = json!({"version": 1, "name": "p", "connections": {"f": {"connector": "nope"}}});
    assert!(!errors(&v, &unknown).is_empty());
}

#[test]
fn secret_references_reject_extra_keys_and_inline_values() {
    let schema = engine::schema::inline_schema_for::<engine::config::SecretRef>().to_value();
    let v = jsonschema::draft7::new(&schema).unwrap();
    assert!(v.is_valid(&json!({"secret": "bc_client_secret"})));
    assert!(v.is_valid(&json!({"env": "BC_SECRET"})));
    assert!(!v.is_valid(&json!("hunter2")), "an inline secret is refused");
    assert!(!v.is_valid(&json!({"secret": "a", "env": "B"})));
    assert!(!v.is_valid(&json!({"secret": "a", "value": "hunter2"})));
}

#[test]
fn the_readme_documents_every_custom_filter() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for f in engine::template::CUSTOM_FILTERS {
        assert!(readme.contains(&format!("| `{}", f.name)), "README's filter table lacks `{}`", f.name);
    }
}

#[test]
fn unknown_keys_inside_a_tagged_union_are_rejected() {
    let v = schema("project.schema.json");
    let project = |auth: Value| json!({"version": 1, "name": "p", "connections": {"api": {"connector": "http", "settings": {"base_url": "https://x", "auth": auth}}}});
    assert_eq!(errors(&v, &project(json!({"type": "bearer", "token": {"secret": "t"}}))), Vec::<String>::new());
    let errs = errors(&v, &project(json!({"type": "bearer", "token": {"secret": "t"}, "tokn": "x"})));
    assert!(errs.iter().any(|e| e.contains("tokn")), "{errs:?}");
    let errs = errors(&v, &project(json!({"type": "basic", "username": "u", "password": "inline-password"})));
    assert!(!errs.is_empty(), "an inline password is refused");
    let errs = errors(&v, &project(json!({"type": "kerberos"})));
    assert!(!errs.is_empty(), "an unknown variant is refused");
}
