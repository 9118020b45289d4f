//! Property tests of the mapping core: determinism, independence from key order, and typed
//! single-expression fields.

use std::sync::Arc;

use engine::connector::Registry;
use engine::hash::payload_hash;
use engine::load::{Project, load_project};
use engine::pipeline::MapOutcome;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ml-connector.yaml"),
        "version: 1\nname: p\nconnections:\n  f:\n    connector: jsonl\n    settings: {directory: d}\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(
        dir.path().join("pipelines/p.yaml"),
        r#"
version: 1
name: p
source: {connection: f, entity: in.jsonl}
key: "{{ record.id }}-{{ record.v | tojson | md5 }}"
fields:
  v: "{{ record.v }}"
  text: "v={{ record.v | tojson }}"
  nested: {copy: "{{ record }}"}
target: {connection: f, resource: records, params: {file: out.jsonl}}
"#,
    )
    .unwrap();
    let mut registry = Registry::new();
    registry.register(Arc::new(connector_jsonl::JsonlConnector));
    let project = load_project(&dir.path().join("ml-connector.yaml"), &registry).unwrap();
    (dir, project)
}

/// Arbitrary JSON: integers, finite floats, text, booleans, null, nested lists and objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e12f64..1.0e12).prop_map(Value::from),
        "[^\u{0}]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Writes an object's JSON text with its keys in a chosen order, at every level.
fn json_text_in_order(value: &Value, reverse: bool) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            if reverse {
                keys.reverse();
            }
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), json_text_in_order(&map[*k], reverse)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            format!("[{}]", items.iter().map(|v| json_text_in_order(v, reverse)).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

fn record(id: u32, v: Value, extra: Map<String, Value>) -> Value {
    let mut m = extra;
    m.insert("id".into(), Value::from(id));
    m.insert("v".into(), v);
    Value::Object(m)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rendering_is_deterministic(id in any::<u32>(), v in json_value()) {
        let (_dir, project) = project();
        let p = &project.pipelines[0];
        let rec = record(id, v, Map::new());
        prop_assert_eq!(p.map_record(&rec).unwrap(), p.map_record(&rec).unwrap());
    }

    #[test]
    fn key_and_hash_do_not_depend_on_input_key_order(id in any::<u32>(), v in json_value(), extra in prop::collection::btree_map("[a-z]{1,5}", json_value(), 0..5)) {
        let (_dir, project) = project();
        let p = &project.pipelines[0];
        let rec = record(id, v, extra.into_iter().collect());
        let forward: Value = serde_json::from_str(&json_text_in_order(&rec, false)).unwrap();
        let backward: Value = serde_json::from_str(&json_text_in_order(&rec, true)).unwrap();
        let (MapOutcome::Mapped(a), MapOutcome::Mapped(b)) = (p.map_record(&forward).unwrap(), p.map_record(&backward).unwrap()) else {
            panic!("no filter: every record maps");
        };
        prop_assert_eq!(&a.key, &b.key);
        prop_assert_eq!(&a.hash, &b.hash);
        prop_assert_eq!(payload_hash(&forward), payload_hash(&backward));
    }

    #[test]
    fn single_expression_fields_keep_their_json_type(v in json_value()) {
        let (_dir, project) = project();
        let p = &project.pipelines[0];
        let rec = record(1, v.clone(), Map::new());
        let MapOutcome::Mapped(m) = p.map_record(&rec).unwrap() else { panic!("no filter") };
        let data = &m.request.body["data"];
        prop_assert_eq!(&data["v"], &v);
        prop_assert_eq!(&data["nested"]["copy"], &rec);
        prop_assert!(data["text"].is_string());
    }
}
