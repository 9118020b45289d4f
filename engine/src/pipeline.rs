//! A compiled pipeline: templates, conditions and JSONPaths parsed; connections resolved.
//!
//! Built by [`crate::load`]; used by mapping tests, `plan` and `run`. Mapping one record is a
//! pure function of the pipeline and the record ([`Pipeline::map_record`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use minijinja::context;
use minijinja::value::{Serde, Value as TplValue};
use serde_json::{Map, Value};

use crate::config::{CursorKind, Duration, ErrorPolicy};
use crate::connector::{Connector, RequestInput, TargetRequest};
use crate::hash::payload_hash;
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
    ForEach { path: JsonPath, filter: Option<Condition>, element: Box<Field> },
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
        let ctx = context! { record => Serde(record), vars => self.vars.clone(), pipeline => self.name.as_str() };
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
        let body = render_object(&self.fields, record, &ctx, "fields").map_err(keyed)?;
        let params = match render_object(&self.target.params, record, &ctx, "target.params").map_err(keyed)? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let input = RequestInput { key: &key, params: &params, body: &body };
        let request =
            self.target.connector.build_request(&self.target.resource, &input).map_err(|m| keyed(err("target", m)))?;
        let hash = payload_hash(&serde_json::to_value(&request).expect("a request always serializes"));
        Ok(MapOutcome::Mapped(Mapped { key, request, hash }))
    }

    /// The cursor value of a record, when the pipeline is incremental.
    pub fn cursor_of<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        let cursor = self.source.cursor.as_ref()?;
        record.get(&cursor.field).filter(|v| !v.is_null())
    }
}

fn err(place: impl Into<String>, message: String) -> RecordError {
    RecordError { place: place.into(), message, key: None }
}

fn render_object(
    fields: &BTreeMap<String, Field>,
    record: &Value,
    ctx: &TplValue,
    place: &str,
) -> Result<Value, RecordError> {
    let mut out = Map::new();
    for (name, field) in fields {
        let place = format!("{place}.{name}");
        out.insert(name.clone(), render_field(field, record, ctx, &place)?);
    }
    Ok(Value::Object(out))
}

fn render_field(field: &Field, record: &Value, ctx: &TplValue, place: &str) -> Result<Value, RecordError> {
    match field {
        Field::Template(t) => t.render(ctx).map_err(|m| err(place, m)),
        Field::Literal(v) => Ok(v.clone()),
        Field::Object(fields) => render_object(fields, record, ctx, place),
        Field::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, f)| render_field(f, record, ctx, &format!("{place}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Field::ForEach { path, filter, element } => {
            let items = path.select(record).map_err(|m| err(place, m))?;
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                let item_ctx = context! { item => Serde(item), index => index, ..ctx.clone() };
                let place = format!("{place}[{index}]");
                if let Some(filter) = filter
                    && !filter.is_true(&item_ctx).map_err(|m| err(format!("{place}.filter"), m))?
                {
                    continue;
                }
                out.push(render_field(element, record, &item_ctx, &place)?);
            }
            Ok(Value::Array(out))
        }
    }
}
