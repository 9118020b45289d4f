//! Running pipelines: source → filter → map → key → ledger → target.
//!
//! A page of records is written while the next one is read (two in memory at most). Within a
//! page, records are mapped in order, de-duplicated by key (the last version wins), compared with
//! the ledger, and the changed ones are written concurrently, bounded by the target connection's
//! semaphore. Results are recorded
//! in order: ledger, audit trail, dead letters. The watermark advances at the end of a run, and
//! never past a record that failed transiently, so the next run reads it again.
//!
//! `plan` is the same walk with `dry_run`: it compares with the ledger and reports each
//! request, but sends nothing and writes no state.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{OnceCell, Semaphore};
use tracing::Instrument;

use crate::config::{ConnectionConfig, RecordErrorAction};
use crate::connector::{ConnectContext, Connection, ReadRequest, Registry, TargetRequest, WriteOutcome};
use crate::cursor;
use crate::failpoint;
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
    /// HTTP calls the process made while the pipeline ran (opening connections included). Exact
    /// when pipelines run one at a time, as `run` does; see [`crate::telemetry`].
    pub api_calls: u64,
    /// Wall time of the run.
    pub elapsed_ms: u64,
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
///
/// Shareable (`&self`) so that concurrent runs in `serve` (scheduled and event-driven alike)
/// draw on one budget per connection: two runs writing to Mailchimp share its 10 connections
/// instead of each taking 10.
pub struct Connections {
    configs: BTreeMap<String, ConnectionConfig>,
    registry: Registry,
    context: ConnectContext,
    /// One cell per name, so that two runs asking for a connection at once open it once.
    open: Mutex<HashMap<String, Arc<OnceCell<Live>>>>,
}

/// An open connection and its concurrency budget.
#[derive(Clone)]
pub struct Live {
    pub connection: Arc<dyn Connection>,
    /// Shared by every pipeline that uses the connection (scheduled and replayed work alike).
    pub permits: Arc<Semaphore>,
    /// The budget's size.
    pub limit: usize,
}

impl Connections {
    pub fn new(project: &Project, registry: &Registry, context: ConnectContext) -> Self {
        Connections {
            configs: project.config.connections.clone(),
            registry: registry.clone(),
            context,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The connection named `name`, connecting on first use. A failed attempt is not kept: the
    /// next caller tries again.
    pub async fn get(&self, name: &str) -> Result<Live, String> {
        let cell = self.open.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_owned()).or_default().clone();
        let live = cell
            .get_or_try_init(|| async {
                let config = self.configs.get(name).ok_or_else(|| format!("unknown connection `{name}`"))?;
                let connector = self
                    .registry
                    .get(&config.connector)
                    .ok_or_else(|| format!("unknown connector `{}`", config.connector))?;
                let connection = connector
                    .connect(&config.settings, &self.context)
                    .await
                    .map_err(|e| format!("connection `{name}`: {e}"))?;
                let limit = config.concurrency.unwrap_or_else(|| connection.default_concurrency()).max(1);
                Ok::<_, String>(Live { connection, permits: Arc::new(Semaphore::new(limit)), limit })
            })
            .await?;
        Ok(live.clone())
    }
}

/// Asks runs to stop at their next safe point: no new write is sent, the writes in flight are
/// awaited and recorded, and the watermark stays where it was, so the next run reads the rest
/// (and the ledger makes what was done free). `serve` raises it on SIGTERM.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every run watching this interrupt to stop.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The error of a run stopped by an [`Interrupt`]. Not a failure of the pipeline: alerts ignore
/// it, and `serve` runs the pipeline again as soon as it starts.
pub const INTERRUPTED: &str = "interrupted: the service stopped; the next run goes on from here";

/// Runs the named pipelines (all when `only` is empty) in dependency order. A pipeline whose
/// dependency failed in this run is skipped, not run on half-written prerequisites.
pub async fn run_project(
    project: &Project,
    connections: &Connections,
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
                api_calls: 0,
                elapsed_ms: 0,
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

/// A short, recognisable rendering of a record that has no key yet, for messages: its source
/// id when it has one, else the start of its JSON.
fn record_hint(record: &Value, id_field: &str) -> String {
    match record.get(id_field) {
        Some(Value::String(id)) if !id.is_empty() => return format!("{id_field}={id}"),
        Some(Value::Number(id)) => return format!("{id_field}={id}"),
        _ => {}
    }
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
    connections: &Connections,
    state: &dyn StateStore,
    options: RunOptions,
    on_record: &mut (dyn FnMut(&RecordEvent) + Send),
) -> PipelineReport {
    run_pipeline_until(pipeline, connections, state, options, &Interrupt::new(), on_record).await
}

/// Runs (or plans) one pipeline, stopping at the next safe point once `interrupt` is raised
/// (the report's error is then [`INTERRUPTED`]). Log lines of the run carry its pipeline and
/// run id (a `run` span).
pub async fn run_pipeline_until(
    pipeline: &Pipeline,
    connections: &Connections,
    state: &dyn StateStore,
    options: RunOptions,
    interrupt: &Interrupt,
    on_record: &mut (dyn FnMut(&RecordEvent) + Send),
) -> PipelineReport {
    let mut run = Run::new(pipeline, state, options, on_record);
    run.interrupt = interrupt.clone();
    let span = tracing::info_span!("run", pipeline = %pipeline.name, run_id = %run.run_id);
    async {
        if !options.dry_run
            && let Some(why) = take_lease(state, pipeline, &run.run_id)
        {
            return run.skipped(why);
        }
        let report = match run.start() {
            Err(e) => run.finish(Some(e)),
            Ok(()) => {
                let result = run.execute(connections).await;
                run.finish(result.err())
            }
        };
        if !options.dry_run {
            release_lease(state, pipeline, &report.run_id);
        }
        report
    }
    .instrument(span)
    .await
}

/// Re-runs a pipeline's open dead letters through its current mapping. Each record is first
/// read again from the source by its id (`source.id`), so a fix made in the source is picked
/// up; a record the source no longer returns, or one without an id, is replayed as stored.
/// Letters whose record now syncs are marked resolved. `keys` limits the replay to letters with
/// those keys; `ids` to those letter ids. The watermark is not touched.
pub async fn replay_dead_letters(
    pipeline: &Pipeline,
    connections: &Connections,
    state: &dyn StateStore,
    selection: &ReplaySelection,
    on_record: &mut (dyn FnMut(&RecordEvent) + Send),
) -> PipelineReport {
    let mut run = Run::new(pipeline, state, RunOptions::default(), on_record);
    if let Some(why) = take_lease(state, pipeline, &run.run_id) {
        return run.skipped(why);
    }
    let report = match run.start() {
        Err(e) => run.finish(Some(e)),
        Ok(()) => {
            let result = run.replay(connections, selection).await;
            run.finish(result.err())
        }
    };
    release_lease(state, pipeline, &report.run_id);
    report
}

/// Takes the pipeline's run lease; the reason to skip when another live run holds it.
fn take_lease(state: &dyn StateStore, pipeline: &Pipeline, run_id: &str) -> Option<String> {
    match state.lease_take(&pipeline.name, run_id) {
        Ok(None) => None,
        Ok(Some(holder)) => Some(format!("already running: {holder}")),
        Err(e) => Some(e.to_string()),
    }
}

/// Gives the lease back; one left behind is taken over by the next run once this process is gone.
fn release_lease(state: &dyn StateStore, pipeline: &Pipeline, run_id: &str) {
    if let Err(e) = state.lease_release(&pipeline.name, run_id) {
        tracing::warn!(error = %e, "Could not release the run lease.");
    }
}

/// Which dead letters to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplaySelection {
    pub keys: Vec<String>,
    pub ids: Vec<i64>,
}

struct Run<'a, 'b> {
    pipeline: &'a Pipeline,
    state: &'a dyn StateStore,
    options: RunOptions,
    run_id: String,
    counts: RunCounts,
    on_record: &'b mut (dyn FnMut(&RecordEvent) + Send),
    /// The highest cursor seen in this run.
    highest: Option<Value>,
    /// The lowest cursor of a record that failed transiently and must be read again.
    hold_at: Option<Value>,
    /// A record without a cursor failed transiently: the watermark must not move at all.
    hold_all: bool,
    /// Why the run stops early (the error policy said so, or it was interrupted).
    stop: Option<String>,
    /// Raised when the run must stop at its next safe point.
    interrupt: Interrupt,
    started: std::time::Instant,
    /// The process's API call count when the run started.
    calls_before: u64,
}

/// A record that is to be written.
struct Pending {
    /// Position of the record in the page it came from.
    index: usize,
    key: String,
    request: TargetRequest,
    hash: String,
    operation: Operation,
    record: Value,
    cursor: Option<Value>,
}

/// Groups the writes of a page into calls: records sharing a bulk key travel together (in
/// chunks of the connection's bulk limit) when there are enough of them
/// ([`Connection::bulk_min`]); the rest alone.
fn into_calls(items: Vec<Pending>, connection: &dyn Connection) -> Vec<Vec<Pending>> {
    let limit = connection.bulk_limit();
    if limit <= 1 {
        return items.into_iter().map(|i| vec![i]).collect();
    }
    let mut groups: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
    let mut calls = Vec::new();
    for item in items {
        match connection.bulk_key(&item.request) {
            Some(key) => groups.entry(key).or_default().push(item),
            None => calls.push(vec![item]),
        }
    }
    for (key, group) in groups {
        if group.len() < connection.bulk_min(&key).max(2) {
            calls.extend(group.into_iter().map(|i| vec![i]));
            continue;
        }
        let mut group = group.into_iter().peekable();
        while group.peek().is_some() {
            calls.push(group.by_ref().take(limit).collect());
        }
    }
    calls
}

/// Whether a record of a page ended accounted for, or failed in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Done,
    Failed,
}

impl<'a, 'b> Run<'a, 'b> {
    fn new(
        pipeline: &'a Pipeline,
        state: &'a dyn StateStore,
        options: RunOptions,
        on_record: &'b mut (dyn FnMut(&RecordEvent) + Send),
    ) -> Self {
        Run {
            pipeline,
            state,
            options,
            run_id: new_run_id(),
            counts: RunCounts::default(),
            on_record,
            highest: None,
            hold_at: None,
            hold_all: false,
            stop: None,
            interrupt: Interrupt::new(),
            started: std::time::Instant::now(),
            calls_before: crate::telemetry::api_calls(),
        }
    }

    fn start(&self) -> Result<(), String> {
        if self.options.dry_run {
            return Ok(());
        }
        self.state.run_started(&self.run_id, &self.pipeline.name, &now()).map_err(|e| e.to_string())
    }

    /// The report of a run that did not start (another run of the pipeline holds the lease).
    fn skipped(self, why: String) -> PipelineReport {
        PipelineReport {
            pipeline: self.pipeline.name.clone(),
            run_id: self.run_id,
            counts: RunCounts::default(),
            error: None,
            skipped_because: Some(why),
            api_calls: 0,
            elapsed_ms: 0,
        }
    }

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
            api_calls: crate::telemetry::api_calls().saturating_sub(self.calls_before),
            elapsed_ms: self.started.elapsed().as_millis() as u64,
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

    fn read_request(&self, since: Option<Value>) -> ReadRequest {
        let p = &self.pipeline.source;
        ReadRequest {
            entity: p.entity.clone(),
            cursor_field: p.cursor.as_ref().map(|c| c.field.clone()),
            cursor_kind: p.cursor.as_ref().map(|c| c.kind).unwrap_or_default(),
            since,
            page_size: p.page_size,
            select: p.select.clone(),
            expand: p.expand.clone(),
        }
    }

    async fn execute(&mut self, connections: &Connections) -> Result<(), String> {
        let p = self.pipeline;
        let source = connections.get(&p.source.connection).await?.connection;
        let target = connections.get(&p.target.connection).await?;

        let watermark = match &p.source.cursor {
            Some(_) => self.state.watermark_get(&p.name).map_err(|e| e.to_string())?,
            None => None,
        };
        let since = match (&p.source.cursor, &watermark) {
            (Some(c), Some(w)) => Some(cursor::read_from(c.kind, w, c.lookback)),
            _ => None,
        };
        self.highest = watermark.clone();
        let mut pages =
            source.read(&self.read_request(since)).await.map_err(|e| format!("reading `{}`: {e}", p.source.entity))?;

        // The next page is read while this one is written, so the source's latency hides behind
        // the target's (reads are sequential: each page's link comes with the one before). Two
        // pages are in memory at most.
        let mut next = pages.next_page().await;
        while self.stop.is_none() {
            if self.interrupt.is_requested() {
                self.stop = Some(INTERRUPTED.to_owned());
                break;
            }
            let page = match next {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) => return Err(format!("reading `{}`: {e}", p.source.entity)),
            };
            failpoint::hit("read-page");
            let (written, read) = tokio::join!(self.process_page(page, &target), pages.next_page());
            written?;
            next = read;
        }

        // Advance the watermark: to the highest cursor seen, unless a record must be re-read.
        if self.options.dry_run || self.stop.is_some() || self.hold_all {
            return self.stop.take().map_or(Ok(()), Err);
        }
        if let Some(c) = &p.source.cursor {
            let mark = self.hold_at.take().or(self.highest.take());
            if let Some(mark) = mark
                && watermark.as_ref().is_none_or(|w| cursor::compare(c.kind, &mark, w).is_gt())
            {
                failpoint::hit("before-watermark");
                self.state.watermark_set(&p.name, &mark).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    async fn replay(&mut self, connections: &Connections, selection: &ReplaySelection) -> Result<(), String> {
        let p = self.pipeline;
        let letters: Vec<(i64, DeadLetter)> = self
            .state
            .dead_letters_open(&p.name)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|(id, l)| {
                (selection.keys.is_empty() && selection.ids.is_empty())
                    || selection.ids.contains(id)
                    || l.key.as_ref().is_some_and(|k| selection.keys.contains(k))
            })
            .collect();
        if letters.is_empty() {
            return Ok(());
        }
        let source = connections.get(&p.source.connection).await?.connection;
        let target = connections.get(&p.target.connection).await?;

        // Read the current version of each record that has an id.
        let id_field = &p.source.id;
        let ids: Vec<Value> = letters.iter().filter_map(|(_, l)| l.record.get(id_field).cloned()).collect();
        let current = if ids.is_empty() {
            Vec::new()
        } else {
            source
                .read_current(&self.read_request(None), id_field, &ids)
                .await
                .map_err(|e| format!("reading `{}` again: {e}", p.source.entity))?
        };
        let records: Vec<Value> = letters
            .iter()
            .map(|(_, l)| {
                l.record
                    .get(id_field)
                    .and_then(|id| current.iter().find(|r| r.get(id_field) == Some(id)))
                    .cloned()
                    .unwrap_or_else(|| l.record.clone())
            })
            .collect();
        let fates = self.process_page(records, &target).await?;
        for ((id, _), fate) in letters.iter().zip(fates) {
            if fate == Fate::Done {
                self.state.dead_letter_resolve(*id, &now()).map_err(|e| e.to_string())?;
            }
        }
        self.stop.take().map_or(Ok(()), Err)
    }

    /// Filters, maps, compares and writes one page; returns each record's fate, in order.
    async fn process_page(&mut self, page: Vec<Value>, target: &Live) -> Result<Vec<Fate>, String> {
        let p = self.pipeline;
        let state_err = |e: StateError| e.to_string();
        self.counts.read += page.len() as u64;
        let mut fates = vec![Fate::Done; page.len()];

        // Map, in order; the last version of a key in a page wins.
        let mut pending: Vec<Pending> = Vec::new();
        let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
        for (index, record) in page.into_iter().enumerate() {
            let record_cursor = match &p.source.cursor {
                Some(c) => match p.cursor_of(&record).map(|v| cursor::normalize(c.kind, v)) {
                    Some(Ok(v)) => Some(v),
                    Some(Err(e)) => {
                        fates[index] = Fate::Failed;
                        if self.fail_record(None, "cursor", e, record)? {
                            break;
                        }
                        continue;
                    }
                    None => None,
                },
                None => None,
            };
            if let (Some(c), Some(v)) = (&p.source.cursor, &record_cursor)
                && self.highest.as_ref().is_none_or(|h| cursor::compare(c.kind, v, h).is_gt())
            {
                self.highest = Some(v.clone());
            }
            match p.map_record(&record) {
                Ok(MapOutcome::Filtered) => {
                    self.counts.filtered += 1;
                    self.emit(PlannedOperation::Filtered, None, None, None);
                }
                Ok(MapOutcome::Mapped(m)) => {
                    let entry = Pending {
                        index,
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
                    fates[index] = Fate::Failed;
                    if self.fail_record(e.key.clone(), "mapping", e.to_string(), record)? {
                        break;
                    }
                }
            }
        }
        if self.stop.is_some() {
            return Ok(fates);
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
                    self.counts.created += 1;
                    PlannedOperation::Create
                } else {
                    self.counts.updated += 1;
                    PlannedOperation::Update
                };
                self.emit(op, Some(item.key), Some(item.request), None);
            }
            return Ok(fates);
        }

        // Write concurrently, bounded by the connection's budget. Each result is recorded as
        // soon as it arrives, and a write's permit is held until its ledger row is written, so
        // a crash leaves at most `limit` accepted writes unrecorded (re-sent, under the same
        // key, by the next run). Once interrupted, calls not yet sent are not sent (`None`).
        let interrupt = self.interrupt.clone();
        let mut in_flight = stream::iter(into_calls(to_write, target.connection.as_ref()).into_iter().map(|call| {
            let connection = target.connection.clone();
            let permits = target.permits.clone();
            let interrupt = interrupt.clone();
            async move {
                if interrupt.is_requested() {
                    return (call, None);
                }
                let permit = permits.acquire_owned().await.expect("the semaphore is never closed");
                // The wait for a permit (shared with other runs) can be long: look again.
                if interrupt.is_requested() {
                    return (call, None);
                }
                let outcomes = match call.as_slice() {
                    [one] => vec![connection.write(&one.request).await],
                    many => {
                        let requests: Vec<TargetRequest> = many.iter().map(|i| i.request.clone()).collect();
                        connection.write_bulk(&requests).await
                    }
                };
                (call, Some((outcomes, permit)))
            }
        }))
        .buffer_unordered(target.limit)
        .flat_map(|(call, sent)| {
            let Some((outcomes, permit)) = sent else {
                return stream::iter(call.into_iter().map(|item| (item, None)).collect::<Vec<_>>());
            };
            // A bulk call's permit is shared by its records; it is released with the last one.
            let permit = Arc::new(permit);
            let mut outcomes = outcomes.into_iter();
            let missing = || WriteOutcome::Failed {
                transient: true,
                status: None,
                class: "bulk".into(),
                message: "the bulk call returned no result for this record".into(),
            };
            stream::iter(
                call.into_iter()
                    .map(move |item| (item, Some((outcomes.next().unwrap_or_else(missing), permit.clone()))))
                    .collect::<Vec<_>>(),
            )
        });

        while let Some((item, sent)) = in_flight.next().await {
            let Some((outcome, permit)) = sent else {
                // Never sent: read again by the next run, since an interrupted run keeps its
                // watermark.
                fates[item.index] = Fate::Failed;
                continue;
            };
            match outcome {
                WriteOutcome::Written { target_id, status } => {
                    failpoint::hit("after-write");
                    let entry = LedgerEntry {
                        target_id: target_id.clone(),
                        payload_hash: item.hash.clone(),
                        written_at: now(),
                    };
                    let audit = self.audit_entry(&item.key, item.operation, status, target_id, None);
                    self.state.record_write(&p.name, &item.key, &entry, &audit).map_err(state_err)?;
                    drop(permit);
                    failpoint::hit("after-ledger");
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
                    drop(permit);
                    fates[item.index] = Fate::Failed;
                    self.counts.failed += 1;
                    let error = format!("{class}: {message}");
                    self.audit(&item.key, Operation::Failed, status, None, Some(&error))?;
                    match (&p.source.cursor, &item.cursor) {
                        (Some(c), Some(v))
                            if self.hold_at.as_ref().is_none_or(|h| cursor::compare(c.kind, v, h).is_lt()) =>
                        {
                            self.hold_at = Some(v.clone());
                        }
                        (Some(_), None) => self.hold_all = true,
                        _ => {}
                    }
                    self.emit(PlannedOperation::Failed, Some(item.key), None, Some(error));
                }
                WriteOutcome::Failed { transient: false, status, class, message } => {
                    drop(permit);
                    fates[item.index] = Fate::Failed;
                    self.audit(&item.key, Operation::Failed, status, None, Some(&format!("{class}: {message}")))?;
                    if self.fail_record(Some(item.key), &class, message, item.record)? {
                        // Writes still in flight are abandoned; their records are re-read
                        // next run because the watermark does not move on a stop.
                        break;
                    }
                }
            }
        }
        if self.interrupt.is_requested() {
            self.stop.get_or_insert_with(|| INTERRUPTED.to_owned());
        }
        Ok(fates)
    }

    fn audit(
        &self,
        key: &str,
        operation: Operation,
        status: Option<u16>,
        target_id: Option<String>,
        error: Option<&str>,
    ) -> Result<(), String> {
        let entry = self.audit_entry(key, operation, status, target_id, error);
        self.state.audit_append(&entry).map_err(|e| e.to_string())
    }

    fn audit_entry(
        &self,
        key: &str,
        operation: Operation,
        status: Option<u16>,
        target_id: Option<String>,
        error: Option<&str>,
    ) -> AuditEntry {
        AuditEntry {
            time: now(),
            run_id: self.run_id.clone(),
            pipeline: self.pipeline.name.clone(),
            key: key.to_owned(),
            operation,
            http_status: status,
            target_id,
            error: error.map(str::to_owned),
        }
    }

    /// Records a permanently failed record: dead letter (or, with `fail`, stops the run).
    /// Returns true when the run must stop (and sets `self.stop`).
    fn fail_record(&mut self, key: Option<String>, class: &str, error: String, record: Value) -> Result<bool, String> {
        self.counts.failed += 1;
        let describe = match &key {
            Some(k) => format!("record `{k}`"),
            None => format!("record {}", record_hint(&record, &self.pipeline.source.id)),
        };
        let shown = key.clone().unwrap_or_else(|| record_hint(&record, &self.pipeline.source.id));
        self.emit(PlannedOperation::Failed, Some(shown), None, Some(format!("{class}: {error}")));
        let policy = &self.pipeline.on_error;
        if policy.record == RecordErrorAction::Fail {
            self.stop = Some(format!("{describe} failed ({class}): {error}"));
            return Ok(true);
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
            self.stop = Some(format!("stopped after {} failed records (on_error.max_failures)", self.counts.failed));
            return Ok(true);
        }
        Ok(false)
    }
}
