//! Running pipelines: source → filter → map → key → ledger → target.
//!
//! One page of records is in memory at a time. Within a page, records are mapped in order,
//! de-duplicated by key (the last version wins), compared with the ledger, and the changed ones
//! are written concurrently, bounded by the target connection's semaphore. Results are recorded
//! in order: ledger, audit trail, dead letters. The watermark advances at the end of a run, and
//! never past a record that failed transiently, so the next run reads it again.
//!
//! `plan` is the same walk with `dry_run`: it compares with the ledger and reports each
//! request, but sends nothing and writes no state.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::config::RecordErrorAction;
use crate::connector::{ConnectContext, Connection, ReadRequest, Registry, TargetRequest, WriteOutcome};
use crate::cursor;
use crate::load::Project;
use crate::pipeline::{MapOutcome, Pipeline};
use crate::state::{AuditEntry, DeadLetter, LedgerEntry, Operation, RunCounts, StateError, StateStore};

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Compare and report, but send nothing and change no state (`plan`).
    pub dry_run: bool,
}

/// One record's fate, as `plan` prints it and `run` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordEvent {
    pub pipeline: String,
    pub operation: PlannedOperation,
    pub key: Option<String>,
    pub request: Option<TargetRequest>,
    pub error: Option<String>,
}

/// What happens (or would happen) to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedOperation {
    Create,
    Update,
    Unchanged,
    Filtered,
    Failed,
}

/// The result of running one pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub pipeline: String,
    pub run_id: String,
    pub counts: RunCounts,
    /// Why the run stopped early, when it did.
    pub error: Option<String>,
    /// Dependencies that failed, so this pipeline did not run.
    pub skipped_because: Option<String>,
}

impl PipelineReport {
    /// True when every record read is accounted for: written, unchanged, filtered, or kept in
    /// the dead-letter store. Records that failed transiently (to be retried by the next run),
    /// a run that stopped early, and a skipped pipeline are not successes.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.skipped_because.is_none() && self.counts.failed == self.counts.dead_lettered
    }
}

/// Live connections and their concurrency budgets, opened on first use.
pub struct Connections<'a> {
    project: &'a Project,
    registry: &'a Registry,
    context: ConnectContext,
    open: HashMap<String, (Arc<dyn Connection>, Arc<Semaphore>)>,
}

impl<'a> Connections<'a> {
    pub fn new(project: &'a Project, registry: &'a Registry, context: ConnectContext) -> Self {
        Connections { project, registry, context, open: HashMap::new() }
    }

    /// The connection named `name`, connecting on first use.
    pub async fn get(&mut self, name: &str) -> Result<(Arc<dyn Connection>, Arc<Semaphore>), String> {
        if let Some(c) = self.open.get(name) {
            return Ok(c.clone());
        }
        let config = self.project.config.connections.get(name).ok_or_else(|| format!("unknown connection `{name}`"))?;
        let connector =
            self.registry.get(&config.connector).ok_or_else(|| format!("unknown connector `{}`", config.connector))?;
        let connection = connector
            .connect(&config.settings, &self.context)
            .await
            .map_err(|e| format!("connection `{name}`: {e}"))?;
        let permits = config.concurrency.unwrap_or_else(|| connection.default_concurrency()).max(1);
        let entry = (connection, Arc::new(Semaphore::new(permits)));
        self.open.insert(name.to_owned(), entry.clone());
        Ok(entry)
    }
}

/// Runs the named pipelines (all when `only` is empty) in dependency order. A pipeline whose
/// dependency failed in this run is skipped, not run on half-written prerequisites.
pub async fn run_project(
    project: &Project,
    connections: &mut Connections<'_>,
    state: &dyn StateStore,
    only: &[String],
    options: RunOptions,
    on_record: &mut (dyn FnMut(&RecordEvent) + Send),
) -> Vec<PipelineReport> {
    let mut reports: Vec<PipelineReport> = Vec::new();
    for pipeline in &project.pipelines {
        if !only.is_empty() && !only.contains(&pipeline.name) {
            continue;
        }
        let failed_dep =
            pipeline.depends_on.iter().find(|d| reports.iter().any(|r| &r.pipeline == *d && !r.succeeded()));
        if let Some(dep) = failed_dep {
            reports.push(PipelineReport {
                pipeline: pipeline.name.clone(),
                run_id: String::new(),
                counts: RunCounts::default(),
                error: None,
                skipped_because: Some(format!("dependency `{dep}` did not succeed")),
            });
            continue;
        }
        reports.push(run_pipeline(pipeline, connections, state, options, on_record).await);
    }
    reports
}

/// A fresh, sortable run id: UTC time plus a random suffix.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
    format!("{now}-{:08x}", h.finish() as u32)
}

/// A short, recognisable rendering of a record that has no key yet, for messages.
fn record_hint(record: &Value) -> String {
    let text = crate::hash::canonical_json(record);
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Runs (or plans) one pipeline.
pub async fn run_pipeline(
    pipeline: &Pipeline,
    connections: &mut Connections<'_>,
    state: &dyn StateStore,
    options: RunOptions,
    on_record: &mut (dyn FnMut(&RecordEvent) + Send),
) -> PipelineReport {
    let run_id = new_run_id();
    let mut run = Run { pipeline, state, options, run_id: run_id.clone(), counts: RunCounts::default(), on_record };
    if !options.dry_run
        && let Err(e) = state.run_started(&run_id, &pipeline.name, &now())
    {
        return run.finish(Some(e.to_string()));
    }
    let result = run.execute(connections).await;
    run.finish(result.err())
}

struct Run<'a, 'b> {
    pipeline: &'a Pipeline,
    state: &'a dyn StateStore,
    options: RunOptions,
    run_id: String,
    counts: RunCounts,
    on_record: &'b mut (dyn FnMut(&RecordEvent) + Send),
}

/// A record that is to be written.
struct Pending {
    key: String,
    request: TargetRequest,
    hash: String,
    operation: Operation,
    record: Value,
    cursor: Option<Value>,
}

impl Run<'_, '_> {
    fn finish(self, error: Option<String>) -> PipelineReport {
        if !self.options.dry_run {
            // A failure to record the end of a run must not hide the run's own error.
            let _ = self.state.run_finished(&self.run_id, &now(), &self.counts, error.as_deref());
        }
        PipelineReport {
            pipeline: self.pipeline.name.clone(),
            run_id: self.run_id,
            counts: self.counts,
            error,
            skipped_because: None,
        }
    }

    fn emit(
        &mut self,
        operation: PlannedOperation,
        key: Option<String>,
        request: Option<TargetRequest>,
        error: Option<String>,
    ) {
        let event = RecordEvent { pipeline: self.pipeline.name.clone(), operation, key, request, error };
        (self.on_record)(&event);
    }

    async fn execute(&mut self, connections: &mut Connections<'_>) -> Result<(), String> {
        let p = self.pipeline;
        let (source, _) = connections.get(&p.source.connection).await?;
        let (target, permits) = connections.get(&p.target.connection).await?;
        let state_err = |e: StateError| e.to_string();

        let cursor_cfg = p.source.cursor.clone();
        let watermark = match &cursor_cfg {
            Some(_) => self.state.watermark_get(&p.name).map_err(state_err)?,
            None => None,
        };
        let since = match (&cursor_cfg, &watermark) {
            (Some(c), Some(w)) => Some(cursor::read_from(c.kind, w, c.lookback)),
            _ => None,
        };
        let request = ReadRequest {
            entity: p.source.entity.clone(),
            cursor_field: cursor_cfg.as_ref().map(|c| c.field.clone()),
            cursor_kind: cursor_cfg.as_ref().map(|c| c.kind).unwrap_or_default(),
            since,
            page_size: p.source.page_size,
            select: p.source.select.clone(),
            expand: p.source.expand.clone(),
        };
        let mut pages = source.read(&request).await.map_err(|e| format!("reading `{}`: {e}", p.source.entity))?;

        // The highest cursor seen, and the lowest cursor of a record that must be read again.
        let mut highest: Option<Value> = watermark.clone();
        let mut hold_at: Option<Value> = None;
        let mut stop: Option<String> = None;

        while stop.is_none() {
            let page = match pages.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) => {
                    stop = Some(format!("reading `{}`: {e}", p.source.entity));
                    break;
                }
            };
            self.counts.read += page.len() as u64;

            // Map, in order; the last version of a key in a page wins.
            let mut pending: Vec<Pending> = Vec::new();
            let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
            for record in page {
                let record_cursor = match &cursor_cfg {
                    Some(c) => match p.cursor_of(&record).map(|v| cursor::normalize(c.kind, v)) {
                        Some(Ok(v)) => Some(v),
                        Some(Err(e)) => {
                            self.fail_record(None, "cursor", e, record)?;
                            continue;
                        }
                        None => None,
                    },
                    None => None,
                };
                if let (Some(c), Some(v)) = (&cursor_cfg, &record_cursor)
                    && highest.as_ref().is_none_or(|h| cursor::compare(c.kind, v, h).is_gt())
                {
                    highest = Some(v.clone());
                }
                match p.map_record(&record) {
                    Ok(MapOutcome::Filtered) => {
                        self.counts.filtered += 1;
                        self.emit(PlannedOperation::Filtered, None, None, None);
                    }
                    Ok(MapOutcome::Mapped(m)) => {
                        let entry = Pending {
                            key: m.key,
                            request: m.request,
                            hash: m.hash,
                            operation: Operation::Create,
                            record,
                            cursor: record_cursor,
                        };
                        match by_key.get(&entry.key) {
                            Some(&i) => pending[i] = entry,
                            None => {
                                by_key.insert(entry.key.clone(), pending.len());
                                pending.push(entry);
                            }
                        }
                    }
                    Err(e) => {
                        if let Some(reason) = self.fail_record(None, "mapping", e.to_string(), record)? {
                            stop = Some(reason);
                            break;
                        }
                    }
                }
            }
            if stop.is_some() {
                break;
            }

            // Compare with the ledger.
            let mut to_write = Vec::new();
            for mut item in pending {
                match self.state.ledger_get(&p.name, &item.key).map_err(state_err)? {
                    Some(entry) if entry.payload_hash == item.hash => {
                        self.counts.unchanged += 1;
                        if !self.options.dry_run {
                            self.audit(&item.key, Operation::Unchanged, None, entry.target_id.clone(), None)?;
                        }
                        self.emit(PlannedOperation::Unchanged, Some(item.key), Some(item.request), None);
                    }
                    Some(_) => {
                        item.operation = Operation::Update;
                        to_write.push(item);
                    }
                    None => to_write.push(item),
                }
            }

            if self.options.dry_run {
                for item in to_write {
                    let op = if item.operation == Operation::Create {
                        PlannedOperation::Create
                    } else {
                        PlannedOperation::Update
                    };
                    if op == PlannedOperation::Create {
                        self.counts.created += 1
                    } else {
                        self.counts.updated += 1
                    }
                    self.emit(op, Some(item.key), Some(item.request), None);
                }
                continue;
            }

            // Write concurrently, bounded by the connection's budget; record results in order.
            let results: Vec<WriteOutcome> = stream::iter(to_write.iter())
                .map(|item| {
                    let target = target.clone();
                    let permits = permits.clone();
                    async move {
                        let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
                        target.write(&item.request).await
                    }
                })
                .buffered(permits.available_permits().max(1))
                .collect()
                .await;

            for (item, outcome) in to_write.into_iter().zip(results) {
                match outcome {
                    WriteOutcome::Written { target_id, status } => {
                        let entry = LedgerEntry {
                            target_id: target_id.clone(),
                            payload_hash: item.hash.clone(),
                            written_at: now(),
                        };
                        self.state.ledger_put(&p.name, &item.key, &entry).map_err(state_err)?;
                        self.audit(&item.key, item.operation, status, target_id, None)?;
                        let op = if item.operation == Operation::Create {
                            self.counts.created += 1;
                            PlannedOperation::Create
                        } else {
                            self.counts.updated += 1;
                            PlannedOperation::Update
                        };
                        self.emit(op, Some(item.key), Some(item.request), None);
                    }
                    WriteOutcome::Failed { transient: true, status, class, message } => {
                        self.counts.failed += 1;
                        let error = format!("{class}: {message}");
                        self.audit(&item.key, Operation::Failed, status, None, Some(&error))?;
                        if let (Some(c), Some(v)) = (&cursor_cfg, &item.cursor) {
                            if hold_at.as_ref().is_none_or(|h| cursor::compare(c.kind, v, h).is_lt()) {
                                hold_at = Some(v.clone());
                            }
                        } else if cursor_cfg.is_some() {
                            hold_at = watermark.clone().or(Some(Value::Null));
                        }
                        self.emit(PlannedOperation::Failed, Some(item.key), None, Some(error));
                    }
                    WriteOutcome::Failed { transient: false, status, class, message } => {
                        self.audit(&item.key, Operation::Failed, status, None, Some(&format!("{class}: {message}")))?;
                        if let Some(reason) = self.fail_record(Some(item.key), &class, message, item.record)? {
                            stop = Some(reason);
                            break;
                        }
                    }
                }
            }
        }

        // Advance the watermark: to the highest cursor seen, unless a record must be re-read.
        if !self.options.dry_run
            && stop.is_none()
            && let Some(c) = &cursor_cfg
        {
            let target_mark = match hold_at {
                Some(Value::Null) => None,
                Some(h) => Some(h),
                None => highest,
            };
            if let Some(mark) = target_mark {
                let moves_forward = watermark.as_ref().is_none_or(|w| cursor::compare(c.kind, &mark, w).is_gt());
                if moves_forward {
                    self.state.watermark_set(&p.name, &mark).map_err(state_err)?;
                }
            }
        }
        match stop {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    fn audit(
        &self,
        key: &str,
        operation: Operation,
        status: Option<u16>,
        target_id: Option<String>,
        error: Option<&str>,
    ) -> Result<(), String> {
        let entry = AuditEntry {
            time: now(),
            run_id: self.run_id.clone(),
            pipeline: self.pipeline.name.clone(),
            key: key.to_owned(),
            operation,
            http_status: status,
            target_id,
            error: error.map(str::to_owned),
        };
        self.state.audit_append(&entry).map_err(|e| e.to_string())
    }

    /// Records a permanently failed record: dead letter (or, with `fail`, stops the run).
    /// Returns the reason to stop, when the policy says so.
    fn fail_record(
        &mut self,
        key: Option<String>,
        class: &str,
        error: String,
        record: Value,
    ) -> Result<Option<String>, String> {
        self.counts.failed += 1;
        let describe = match &key {
            Some(k) => format!("record `{k}`"),
            None => format!("record {}", record_hint(&record)),
        };
        let shown = key.clone().unwrap_or_else(|| record_hint(&record));
        self.emit(PlannedOperation::Failed, Some(shown), None, Some(format!("{class}: {error}")));
        let policy = &self.pipeline.on_error;
        if policy.record == RecordErrorAction::Fail {
            return Ok(Some(format!("{describe} failed ({class}): {error}")));
        }
        // In a dry run the record is counted as it would be stored, so `plan` and `run` agree.
        self.counts.dead_lettered += 1;
        if !self.options.dry_run {
            let letter = DeadLetter {
                pipeline: self.pipeline.name.clone(),
                key,
                error_class: class.to_owned(),
                error: error.clone(),
                record,
                run_id: self.run_id.clone(),
                time: now(),
            };
            self.state.dead_letter_put(&letter).map_err(|e| e.to_string())?;
        }
        if policy.max_failures.is_some_and(|max| self.counts.failed >= max) {
            return Ok(Some(format!("stopped after {} failed records (on_error.max_failures)", self.counts.failed)));
        }
        Ok(None)
    }
}
