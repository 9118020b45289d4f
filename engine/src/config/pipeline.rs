//! A pipeline file: one flow of records from a source entity to a target resource.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Duration, FieldSpec};

/// One flow: read records from a source, keep those the filter accepts, render each into the
/// target's shape, and write it under an idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "ml-connector pipeline")]
pub struct PipelineConfig {
    /// Version of the pipeline format. Only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// A unique name: lower-case letters, digits, `-` and `_`. The state ledger is kept under
    /// it, so renaming a pipeline starts its history afresh.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub name: String,
    /// What this pipeline does and why, for the next integrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where records come from.
    pub source: SourceConfig,
    /// A boolean expression; records for which it is false are skipped (not written, not
    /// failed). Example: `record.email is defined and record.email != ""`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The body sent to the target. Each value is a template (`"{{ record.email | lower }}"`),
    /// a literal, a nested object, or a list built with `for_each`. A value that is a single
    /// `{{ expression }}` keeps its JSON type: numbers stay numbers.
    pub fields: BTreeMap<String, FieldSpec>,
    /// The idempotency key: a template that names the record in the target for good, e.g.
    /// `"inv-{{ record.number }}"`. The ledger remembers what was written under each key, so a
    /// retry or a replay never creates a second copy.
    pub key: String,
    /// Where rendered records are written.
    pub target: TargetConfig,
    /// Pipelines that must have run before this one (an order needs its store and products).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// What happens to records that cannot be written; the project's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<ErrorPolicy>,
    /// When `ml-connector serve` runs this pipeline. Without one, a pipeline reading events
    /// (the `inbox`) runs when events arrive, and any other runs only when asked (`run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleConfig>,
}

/// When `ml-connector serve` runs a pipeline.
///
/// In YAML: `webhook`, or a mapping with `every` (an interval) or `cron` (an expression, with an
/// optional `timezone`), and optionally `webhook: true` beside either (events, plus a safety
/// poll). Written by hand rather than derived so that a typo inside the mapping is reported at
/// the offending key, not as "matches none of the alternatives".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Run when events for the pipeline's source arrive (and once when the service starts, for
    /// whatever arrived while it was down).
    pub webhook: bool,
    /// Run on a clock; beside `webhook`, a safety poll for a notification that never came.
    pub clock: Option<ClockConfig>,
}

/// The clock of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockConfig {
    /// Run every so often, counted from the start of the previous run.
    Every(Duration),
    /// Run at the times a cron expression names.
    Cron {
        /// The five-field expression.
        expression: String,
        /// An IANA time zone name; UTC when absent.
        timezone: Option<String>,
    },
}

impl ScheduleConfig {
    /// `webhook`: on events only.
    pub fn webhook() -> ScheduleConfig {
        ScheduleConfig { webhook: true, clock: None }
    }

    /// On a clock only.
    pub fn clock(clock: ClockConfig) -> ScheduleConfig {
        ScheduleConfig { webhook: false, clock: Some(clock) }
    }
}

/// The mapping form of a schedule, as written.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TimedSchedule {
    /// Run every so often, counted from the start of the previous run: `30s`, `15m`, `1h`,
    /// `1d`. A run is never started while the previous one still runs; one missed while the
    /// service was down runs once when it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    every: Option<Duration>,
    /// A five-field cron expression (minute hour day-of-month month day-of-week), with `L` for
    /// the last day of the month, `5L` for its last Friday, `1#2` for its second Monday, `W`
    /// for the nearest weekday. Examples: `0 2 * * *` (daily at 02:00), `0 6 * * MON` (Mondays
    /// at 06:00), `0 23 L * *` (month-end at 23:00).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cron: Option<String>,
    /// The IANA time zone a `cron` expression is read in, e.g. `Europe/Amsterdam`; UTC when
    /// absent. Month-end and 02:00 are the customer's, not the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    /// Also run when events for the source arrive (a Business Central notification, a
    /// Mailchimp webhook). `{webhook: true, every: 6h}` is prompt on events and still catches,
    /// within six hours, a change whose notification was lost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    webhook: bool,
}

impl ScheduleConfig {
    fn from_json(value: serde_json::Value) -> Result<Self, String> {
        const FORMS: &str =
            "a schedule is `webhook`, `{every: 15m}`, `{cron: \"0 2 * * *\"}` or `{webhook: true, every: 6h}`";
        let timed: TimedSchedule = match value {
            serde_json::Value::String(s) if s == "webhook" => return Ok(ScheduleConfig::webhook()),
            serde_json::Value::Object(_) => serde_json::from_value(value).map_err(|e| e.to_string())?,
            _ => return Err(FORMS.to_owned()),
        };
        let clock = match timed {
            TimedSchedule { every: Some(_), cron: Some(_), .. } => {
                return Err("give either `every` or `cron`, not both".to_owned());
            }
            TimedSchedule { every: Some(_), timezone: Some(_), .. } => {
                return Err("`timezone` applies to `cron` only; `every` counts from the previous run".to_owned());
            }
            TimedSchedule { every: Some(every), .. } => Some(ClockConfig::Every(every)),
            TimedSchedule { cron: Some(expression), timezone, .. } => Some(ClockConfig::Cron { expression, timezone }),
            TimedSchedule { timezone: Some(_), .. } => {
                return Err("`timezone` applies to `cron` only".to_owned());
            }
            TimedSchedule { .. } => None,
        };
        if clock.is_none() && !timed.webhook {
            return Err(FORMS.to_owned());
        }
        Ok(ScheduleConfig { webhook: timed.webhook, clock })
    }
}

impl<'de> Deserialize<'de> for ScheduleConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ScheduleConfig::from_json(serde_json::Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ScheduleConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (every, cron, timezone) = match &self.clock {
            None => return s.serialize_str("webhook"),
            Some(ClockConfig::Every(every)) => (Some(*every), None, None),
            Some(ClockConfig::Cron { expression, timezone }) => (None, Some(expression.clone()), timezone.clone()),
        };
        TimedSchedule { every, cron, timezone, webhook: self.webhook }.serialize(s)
    }
}

impl JsonSchema for ScheduleConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ScheduleConfig".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let timed = generator.subschema_for::<TimedSchedule>();
        // if/then/else rather than anyOf, as for fields: errors land at the offending key.
        schemars::json_schema!({
            "description": "`webhook` (run when events arrive), `{every: 15m}`, `{cron: \"0 23 L * *\", timezone: Europe/Amsterdam}`, or `{webhook: true, every: 6h}` (events, plus a safety poll).",
            "examples": ["webhook", {"every": "15m"}, {"cron": "0 23 L * *"}, {"webhook": true, "every": "6h"}],
            "if": { "type": "string" },
            "then": { "enum": ["webhook"] },
            "else": timed
        })
    }
}

/// Where a pipeline reads its records.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The name of a connection in the project file.
    pub connection: String,
    /// What to read, in the connector's words (`customers`, `salesInvoices`, a file name).
    pub entity: String,
    /// The field that identifies a record in the source. `replay` uses it to read the current
    /// version of a dead-lettered record, so a fix made in the source is picked up.
    #[serde(default = "default_id_field")]
    pub id: String,
    /// Incremental reads: the field whose value grows with every change. Without a cursor,
    /// every run reads everything (unchanged records still cost no write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<CursorConfig>,
    /// Fields to ask the source for, when it can narrow its answer (OData `$select`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select: Vec<String>,
    /// Related records to read along (OData `$expand`, e.g. `salesInvoiceLines`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expand: Vec<String>,
    /// Records per page; the project's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub page_size: Option<u32>,
}

fn default_id_field() -> String {
    "id".to_owned()
}

/// The incremental cursor of a source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CursorConfig {
    /// The record field that grows with each change (`lastModifiedDateTime`, `ModifiedDate`).
    pub field: String,
    /// How the field's values compare.
    #[serde(default)]
    pub kind: CursorKind,
    /// How far behind the watermark to start reading; the project's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<Duration>,
}

/// How cursor values compare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CursorKind {
    /// RFC 3339 timestamps (a missing offset means UTC); the lookback is subtracted.
    #[default]
    Timestamp,
    /// Numbers (a row version, a sequence number); the lookback does not apply.
    Number,
}

/// Where a pipeline writes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The name of a connection in the project file.
    pub connection: String,
    /// What to write, in the connector's words (e.g. `records` for `jsonl`).
    pub resource: String,
    /// The resource's parameters (an audience id, a store id). Values are templates like
    /// fields, so they can come from `vars`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, FieldSpec>,
}

/// What happens to records that cannot be written.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorPolicy {
    /// What to do with a record that fails for a reason a retry cannot fix (an invalid email,
    /// a template error on its data, a validation error from the target).
    #[serde(default)]
    pub record: RecordErrorAction,
    /// Stop the run once this many records have failed; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<u64>,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        ErrorPolicy { record: RecordErrorAction::DeadLetter, max_failures: None }
    }
}

/// What to do with one failed record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordErrorAction {
    /// Keep the record and its error in the dead-letter store and go on; `replay` retries it.
    #[default]
    DeadLetter,
    /// Stop the run at the first failed record.
    Fail,
}
