//! A compiled pipeline: templates, conditions and JSONPaths parsed; connections resolved.
//!
//! Built by [`crate::load`]; used by mapping tests, `plan` and `run`. Mapping one record is a
//! pure function of the pipeline and the record ([`Pipeline::map_record`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use minijinja::context;
use minijinja::value::{Serde, Value as TplValue};
use serde_json::{Map, Value};

use crate::config::{CursorKind, Duration, ErrorPolicy};
use crate::connector::{Connector, RequestInput, TargetRequest};
use crate::hash::payload_hash_of;
use crate::select::JsonPath;
use crate::template::{CompiledTemplate, Condition};

/// A pipeline ready to run.
#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    pub file: PathBuf,
    pub description: Option<String>,
    pub source: Source,
    pub filter: Option<Condition>,
    pub fields: BTreeMap<String, Field>,
    pub key: CompiledTemplate,
    pub target: Target,
    pub depends_on: Vec<String>,
    pub on_error: ErrorPolicy,
    /// When `serve` runs it; `None`: only when asked.
    pub schedule: Option<crate::schedule::Schedule>,
    /// The project's `vars`, shared by every render.
    pub vars: TplValue,
    /// The fields of `record` the templates read (worked out on first use).
    pub record_reads: OnceLock<Reads>,
}

/// Where records come from.
#[derive(Debug, Clone)]
pub struct Source {
    pub connection: String,
    pub entity: String,
    /// The field that identifies a record (for `replay`).
    pub id: String,
    pub cursor: Option<Cursor>,
    pub select: Vec<String>,
    pub expand: Vec<String>,
    pub page_size: u32,
}

/// An incremental cursor.
#[derive(Debug, Clone)]
pub struct Cursor {
    pub field: String,
    pub kind: CursorKind,
    pub lookback: Duration,
}

/// Where records go.
pub struct Target {
    pub connection: String,
    pub resource: String,
    pub params: BTreeMap<String, Field>,
    pub connector: Arc<dyn Connector>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("connection", &self.connection)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// One compiled body value.
#[derive(Debug)]
pub enum Field {
    Template(CompiledTemplate),
    Literal(Value),
    Object(BTreeMap<String, Field>),
    List(Vec<Field>),
    ForEach {
        path: JsonPath,
        filter: Option<Condition>,
        element: Box<Field>,
        /// The fields of `item` the filter and element read (worked out on first use).
        item_reads: OnceLock<Reads>,
    },
}

impl Field {
    /// Adds the variables this field's templates read (see [`CompiledTemplate::variables_read`]).
    fn collect_reads(&self, out: &mut HashSet<String>) {
        match self {
            Field::Template(t) => out.extend(t.variables_read()),
            Field::Literal(_) => {}
            Field::Object(fields) => fields.values().for_each(|f| f.collect_reads(out)),
            Field::List(items) => items.iter().for_each(|f| f.collect_reads(out)),
            Field::ForEach { filter, element, .. } => {
                if let Some(c) = filter {
                    out.extend(c.variables_read());
                }
                element.collect_reads(out);
            }
        }
    }
}

/// Which top-level fields of a value (`record`, or a `for_each` item) the templates read, so that
/// only those become template values. Converting a value costs an allocation per field and
/// string: an invoice with its lines is hundreds, while its pipeline reads a dozen, and
/// converting all of them was a third of the mapping time. minijinja's static analysis gives
/// the attribute chains read (`record.email`); any other use of the value (`record | tojson`,
/// `record[name]`, `record.items()`) needs all of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// The whole value is read.
    whole: bool,
    /// The top-level fields read (when not `whole`).
    fields: BTreeSet<String>,
}

impl Reads {
    /// What the variables read (`record.email`, `record`, `vars.x`) say about `root`.
    pub fn of(root: &str, read: impl IntoIterator<Item = String>) -> Reads {
        let mut reads = Reads::default();
        for name in read {
            let Some(rest) = name.strip_prefix(root) else { continue };
            let Some(chain) = rest.strip_prefix('.') else {
                // `record` itself (or another variable that merely starts with the name).
                reads.whole |= rest.is_empty();
                continue;
            };
            let field = chain.split('.').next().unwrap_or(chain);
            // A map's own methods see every field.
            reads.whole |= matches!(field, "items" | "keys" | "values" | "get");
            reads.fields.insert(field.to_owned());
        }
        reads
    }

    /// `value` as a template value, with only the fields read when it is an object.
    pub fn project(&self, value: &Value) -> TplValue {
        match value {
            Value::Object(map) if !self.whole => TplValue::from_pairs(
                self.fields.iter().filter_map(|k| map.get(k).map(|v| (k.as_str(), TplValue::from(Serde(v))))),
            ),
            other => TplValue::from(Serde(other)),
        }
    }
}

/// Where in the pipeline a value is rendered (`fields.lines[2].price`). Formatted only when a
/// record fails: formatting it for every field of every record cost as much as some templates.
#[derive(Clone, Copy)]
enum Place<'a> {
    Root(&'a str),
    Field(&'a Place<'a>, &'a str),
    Index(&'a Place<'a>, usize),
    Filter(&'a Place<'a>),
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Root(name) => f.write_str(name),
            Place::Field(parent, name) => write!(f, "{parent}.{name}"),
            Place::Index(parent, i) => write!(f, "{parent}[{i}]"),
            Place::Filter(parent) => write!(f, "{parent}.filter"),
        }
    }
}

/// The result of mapping one record.
#[derive(Debug, Clone, PartialEq)]
pub enum MapOutcome {
    /// The pipeline's filter rejected the record.
    Filtered,
    Mapped(Mapped),
}

/// A record rendered into the request its target would receive.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub key: String,
    pub request: TargetRequest,
    /// SHA-256 of the canonical request: equal hashes mean nothing to write.
    pub hash: String,
}

/// Why one record could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {message}")]
pub struct RecordError {
    /// Which part of the pipeline failed (`filter`, `key`, `fields.merge_fields.FNAME`, ...).
    pub place: String,
    pub message: String,
    /// The record's key, when it rendered before the failure: the dead letter is then filed
    /// under it, so it can be found, replayed and refreshed by key.
    pub key: Option<String>,
}

impl Pipeline {
    /// Filters and renders one record. Pure: no I/O, no state.
    pub fn map_record(&self, record: &Value) -> Result<MapOutcome, RecordError> {
        let reads = self.record_reads.get_or_init(|| {
            let mut read = HashSet::new();
            if let Some(filter) = &self.filter {
                read.extend(filter.variables_read());
            }
            read.extend(self.key.variables_read());
            self.fields.values().chain(self.target.params.values()).for_each(|f| f.collect_reads(&mut read));
            Reads::of("record", read)
        });
        let ctx =
            context! { record => reads.project(record), vars => self.vars.clone(), pipeline => self.name.as_str() };
        if let Some(filter) = &self.filter
            && !filter.is_true(&ctx).map_err(|m| err("filter", m))?
        {
            return Ok(MapOutcome::Filtered);
        }
        let key = self.key.render_string(&ctx).map_err(|m| err("key", m))?;
        if key.is_empty() {
            return Err(err("key", "rendered to empty text".to_owned()));
        }
        let keyed = |e: RecordError| RecordError { key: Some(key.clone()), ..e };
        let body = render_object(&self.fields, record, &ctx, Place::Root("fields")).map_err(keyed)?;
        let params =
            match render_object(&self.target.params, record, &ctx, Place::Root("target.params")).map_err(keyed)? {
                Value::Object(map) => map,
                _ => Map::new(),
            };
        let input = RequestInput { key: &key, params: &params, body: &body };
        let request =
            self.target.connector.build_request(&self.target.resource, &input).map_err(|m| keyed(err("target", m)))?;
        let hash = request_hash(&request);
        Ok(MapOutcome::Mapped(Mapped { key, request, hash }))
    }

    /// The cursor value of a record, when the pipeline is incremental.
    pub fn cursor_of<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        let cursor = self.source.cursor.as_ref()?;
        record.get(&cursor.field).filter(|v| !v.is_null())
    }
}

/// The payload hash of a request: that of its JSON (`{"body", "method", "options", "path"}`,
/// options left out when empty, as it serializes), computed without copying the body.
fn request_hash(request: &TargetRequest) -> String {
    let (method, path) = (Value::String(request.method.clone()), Value::String(request.path.clone()));
    let options = Value::Object(request.options.clone());
    let mut fields = vec![("body", &request.body), ("method", &method)];
    if !request.options.is_empty() {
        fields.push(("options", &options));
    }
    fields.push(("path", &path));
    payload_hash_of(&fields)
}

fn err(place: impl Into<String>, message: String) -> RecordError {
    RecordError { place: place.into(), message, key: None }
}

fn render_object(
    fields: &BTreeMap<String, Field>,
    record: &Value,
    ctx: &TplValue,
    place: Place<'_>,
) -> Result<Value, RecordError> {
    let mut out = Map::new();
    for (name, field) in fields {
        out.insert(name.clone(), render_field(field, record, ctx, Place::Field(&place, name))?);
    }
    Ok(Value::Object(out))
}

fn render_field(field: &Field, record: &Value, ctx: &TplValue, place: Place<'_>) -> Result<Value, RecordError> {
    match field {
        Field::Template(t) => t.render(ctx).map_err(|m| err(place.to_string(), m)),
        Field::Literal(v) => Ok(v.clone()),
        Field::Object(fields) => render_object(fields, record, ctx, place),
        Field::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, f)| render_field(f, record, ctx, Place::Index(&place, i)))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Field::ForEach { path, filter, element, item_reads } => {
            let reads = item_reads.get_or_init(|| {
                let mut read = HashSet::new();
                if let Some(c) = filter {
                    read.extend(c.variables_read());
                }
                element.collect_reads(&mut read);
                Reads::of("item", read)
            });
            let items = path.select(record).map_err(|m| err(place.to_string(), m))?;
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                let item_ctx = context! { item => reads.project(item), index => index, ..ctx.clone() };
                let place = Place::Index(&place, index);
                if let Some(filter) = filter
                    && !filter.is_true(&item_ctx).map_err(|m| err(Place::Filter(&place).to_string(), m))?
                {
                    continue;
                }
                out.push(render_field(element, record, &item_ctx, place)?);
            }
            Ok(Value::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn only_the_fields_templates_read_become_template_values() {
        let reads = Reads::of("record", names(&["record.email", "record.address.city", "vars.list", "records"]));
        assert_eq!(reads, Reads { whole: false, fields: ["address", "email"].map(String::from).into() });
        let record = json!({"email": "a@b.co", "address": {"city": "Oslo", "zip": "0150"}, "lines": [1, 2, 3]});
        let projected = reads.project(&record);
        assert_eq!(
            serde_json::to_value(&projected).unwrap(),
            json!({"email": "a@b.co", "address": {"city": "Oslo", "zip": "0150"}})
        );
        // A field read but absent stays absent (undefined), as it was.
        assert!(Reads::of("record", names(&["record.nope"])).project(&record).get_attr("nope").unwrap().is_undefined());
    }

    /// Ledgers hold these hashes: the shortcut must hash exactly what the request serializes to.
    #[test]
    fn the_request_hash_is_the_hash_of_the_serialized_request() {
        let mut request = TargetRequest::new("PUT", "/lists/x/members/y", json!({"b": [1.5, "é"], "a": {"z": null}}));
        let full = |r: &TargetRequest| crate::hash::payload_hash(&serde_json::to_value(r).unwrap());
        assert_eq!(request_hash(&request), full(&request));
        request.options.insert("resource".into(), json!("member"));
        request.options.insert("on_compliance".into(), json!("pending"));
        assert_eq!(request_hash(&request), full(&request));
    }

    #[test]
    fn any_other_use_of_the_value_converts_all_of_it() {
        let record = json!({"a": 1, "b": 2});
        for read in [&["record"][..], &["record.a", "record"], &["record.items"], &["record.get"]] {
            let reads = Reads::of("record", names(read));
            assert!(reads.whole, "{read:?}");
            assert_eq!(serde_json::to_value(reads.project(&record)).unwrap(), record);
        }
        // Not an object: as it is.
        assert_eq!(
            serde_json::to_value(Reads::of("item", names(&["item.a"])).project(&json!([1]))).unwrap(),
            json!([1])
        );
    }
}
