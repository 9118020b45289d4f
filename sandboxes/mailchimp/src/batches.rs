//! Batch operations (`/batches`): operations run asynchronously, one batch at a time, through
//! the same API logic as HTTP requests, moving pending → preprocessing → started → finalizing →
//! finished. Results are a gzipped tar of JSON files, each an array of
//! `{"status_code", "operation_id", "response": "<JSON string>"}`, served from
//! `response_body_url`.

use std::sync::Arc;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Map, Value, json};

use crate::api::{self, ApiRequest};
use crate::errors::ApiError;
use crate::query::{Page, Query};
use crate::state::{Data, Shared};
use crate::util::{iso, now, short_id};
use crate::validate::{Checker, Kind, body_object, schema_message};

/// Results per JSON file in the archive.
const RESULTS_PER_FILE: usize = 500;

/// A batch and its progress.
#[derive(Clone, Debug)]
pub(crate) struct Batch {
    /// The 10-hex-digit id clients poll.
    pub id: String,
    /// Submission order, for listings.
    pub seq: u64,
    /// `pending`, `preprocessing`, `started`, `finalizing` or `finished`.
    pub status: &'static str,
    /// Operations submitted.
    pub total: usize,
    /// Operations run so far.
    pub finished: usize,
    /// Operations that answered 4xx/5xx.
    pub errored: usize,
    /// When the batch was accepted (ISO 8601).
    pub submitted_at: String,
    /// When it finished; `""` until then, as Mailchimp shows it.
    pub completed_at: String,
    /// Where the results archive is; `""` until finished.
    pub response_body_url: String,
    /// The operations, until the runner takes them.
    pub operations: Vec<Value>,
    /// The `.tar.gz` of results, once finalized.
    pub archive: Option<Arc<Vec<u8>>>,
}

impl Batch {
    fn render(&self) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "total_operations": self.total,
            "finished_operations": self.finished,
            "errored_operations": self.errored,
            "submitted_at": self.submitted_at,
            "completed_at": self.completed_at,
            "response_body_url": self.response_body_url,
            "_links": [],
        })
    }
}

/// POST /batches: checks the operations, stores the batch as `pending`, starts the runner.
pub(crate) fn create(shared: &Arc<Shared>, body: Option<&Value>) -> Result<Value, ApiError> {
    let obj = body_object(body)?;
    let mut check = Checker::new();
    check.require(obj, "", &["operations"]);
    check.check(obj, "", "operations", Kind::Arr);
    for (i, op) in obj.get("operations").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let prefix = format!("operations.{i}");
        match op.as_object() {
            Some(op) => {
                check.require(op, &prefix, &["method", "path"]);
                check.check_all(
                    op,
                    &prefix,
                    &[
                        ("method", Kind::Enum(&["GET", "POST", "PUT", "PATCH", "DELETE"])),
                        ("path", Kind::Str),
                        ("params", Kind::Obj),
                        ("operation_id", Kind::Str),
                    ],
                );
            }
            None => check.error(prefix, schema_message("object", op)),
        }
    }
    check.finish()?;
    let operations = obj["operations"].as_array().cloned().unwrap_or_default();
    let batch = {
        let mut data = shared.lock();
        let seq = data.next_seq();
        let batch = Batch {
            id: short_id("batch", seq),
            seq,
            status: "pending",
            total: operations.len(),
            finished: 0,
            errored: 0,
            submitted_at: iso(now()),
            completed_at: String::new(),
            response_body_url: String::new(),
            operations,
            archive: None,
        };
        data.batches.insert(batch.id.clone(), batch.clone());
        batch
    };
    shared.runtime.spawn(run(shared.clone(), batch.id.clone()));
    Ok(batch.render())
}

/// GET /batches.
pub(crate) fn list(data: &Data, query: &Query) -> Result<Value, ApiError> {
    let page = Page::from_query(query)?;
    let mut batches: Vec<&Batch> = data.batches.values().collect();
    batches.sort_by_key(|b| b.seq);
    let total = batches.len();
    let items: Vec<Value> = page.slice(batches).into_iter().map(Batch::render).collect();
    Ok(json!({"batches": items, "total_items": total, "_links": []}))
}

/// GET /batches/{id}.
pub(crate) fn get(data: &Data, id: &str) -> Result<Value, ApiError> {
    data.batches.get(id).map(Batch::render).ok_or_else(ApiError::not_found)
}

/// DELETE /batches/{id}: stops the batch and forgets it.
pub(crate) fn delete(data: &mut Data, id: &str) -> Result<(), ApiError> {
    data.batches.remove(id).map(|_| ()).ok_or_else(ApiError::not_found)
}

/// The results archive of a finished batch.
pub(crate) fn archive(data: &Data, id: &str) -> Option<Arc<Vec<u8>>> {
    data.batches.get(id).and_then(|b| b.archive.clone())
}

/// Sets a batch's status; false when it was deleted meanwhile.
fn set_status(shared: &Shared, id: &str, status: &'static str) -> bool {
    let mut data = shared.lock();
    let Some(batch) = data.batches.get_mut(id) else { return false };
    batch.status = status;
    true
}

/// Moves a batch through its states and runs its operations.
async fn run(shared: Arc<Shared>, id: String) {
    let step = shared.config.batch_step;
    let Some(_turn) = shared.until_shutdown(shared.batch_gate.lock()).await else { return };
    for status in ["preprocessing", "started"] {
        if shared.until_shutdown(tokio::time::sleep(step)).await.is_none() || !set_status(&shared, &id, status) {
            return;
        }
    }
    let operations = {
        let mut data = shared.lock();
        let Some(batch) = data.batches.get_mut(&id) else { return };
        std::mem::take(&mut batch.operations)
    };
    let mut results = Vec::with_capacity(operations.len());
    for op in &operations {
        let Some(result) = shared.until_shutdown(execute(&shared, op)).await else { return };
        let failed = result["status_code"].as_u64().unwrap_or(500) >= 400;
        results.push(result);
        let mut data = shared.lock();
        let Some(batch) = data.batches.get_mut(&id) else { return };
        batch.finished += 1;
        batch.errored += usize::from(failed);
    }
    if shared.until_shutdown(tokio::time::sleep(step)).await.is_none() || !set_status(&shared, &id, "finalizing") {
        return;
    }
    let archive = match build_archive(&id, &results) {
        Ok(bytes) => Arc::new(bytes),
        Err(error) => {
            tracing::error!(%error, "could not build the batch archive");
            return;
        }
    };
    if shared.until_shutdown(tokio::time::sleep(step)).await.is_none() {
        return;
    }
    let mut data = shared.lock();
    if let Some(batch) = data.batches.get_mut(&id) {
        batch.status = "finished";
        batch.completed_at = iso(now());
        batch.response_body_url = format!("{}/_sandbox/batch-results/{id}.tar.gz", shared.base_url);
        batch.archive = Some(archive);
    }
}

/// Runs one operation through the API; errors become problem documents in `response`.
async fn execute(shared: &Arc<Shared>, op: &Value) -> Value {
    let operation_id = op.get("operation_id").cloned().unwrap_or(Value::Null);
    let method = op["method"].as_str().unwrap_or("GET").to_uppercase();
    let raw = op["path"].as_str().unwrap_or("/");
    let (path, query_text) = raw.split_once('?').unwrap_or((raw, ""));
    let path = path.strip_prefix("/3.0").unwrap_or(path).to_string();
    let mut query = Query::parse(query_text);
    for (k, v) in op.get("params").and_then(Value::as_object).unwrap_or(&Map::new()) {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        query.0.push((k.clone(), v));
    }
    let body = match op.get("body") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s).map(Some).map_err(|_| ApiError::json_parse()),
        Some(other) => Err(ApiError::invalid_field("body", schema_message("string", other))),
    };
    let result = match body {
        Ok(body) => api::dispatch_boxed(shared.clone(), ApiRequest { method, path, query, body }).await,
        Err(error) => Err(error),
    };
    let (status, response) = match result {
        Ok(reply) => (reply.status, reply.body.map(|b| b.to_string()).unwrap_or_default()),
        Err(error) => (error.status, error.body(&shared.request_id()).to_string()),
    };
    json!({"status_code": status, "operation_id": operation_id, "response": response})
}

/// The `.tar.gz` of results: `{id}-{n}.json` files of up to 500 results each.
fn build_archive(id: &str, results: &[Value]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let chunks: Vec<&[Value]> = if results.is_empty() { vec![&[]] } else { results.chunks(RESULTS_PER_FILE).collect() };
    let mtime = now().as_second().max(0) as u64;
    for (i, chunk) in chunks.iter().enumerate() {
        let bytes = serde_json::to_vec(chunk)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_cksum();
        tar.append_data(&mut header, format!("{id}-{i}.json"), bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}
