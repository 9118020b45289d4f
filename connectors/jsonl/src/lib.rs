//! The built-in JSON Lines connector: records in from `.jsonl` files, upserts out to `.jsonl`
//! files.
//!
//! It lets the engine run end to end without any remote system, and it serves integrators who
//! import a one-off export (one JSON object per line) or want to see what a pipeline would
//! send. Writes append `{"key": ..., "data": ...}` lines: the file is an upsert log, and the
//! last line of a key is its current value.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use engine::connector::{
    ConnectContext, Connection, Connector, ConnectorError, Entities, ParamSpec, ReadRequest, RecordPages, RequestInput,
    ResourceSpec, TargetRequest, WriteOutcome,
};
use engine::cursor;
use schemars::{JsonSchema, Schema};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::sync::Mutex;

/// Settings of a `jsonl` connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlSettings {
    /// The directory that holds the files, relative to the project file.
    pub directory: String,
}

/// The connector.
pub struct JsonlConnector;

const RESOURCE: &str = "records";

#[async_trait]
impl Connector for JsonlConnector {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn description(&self) -> &'static str {
        "JSON Lines files: one JSON object per line, read as records and written as upserts."
    }

    fn settings_schema(&self) -> Schema {
        engine::schema::inline_schema_for::<JsonlSettings>()
    }

    fn entities(&self) -> Entities {
        Entities::Any("a `.jsonl` file name inside the connection's directory")
    }

    fn resources(&self) -> Vec<ResourceSpec> {
        vec![ResourceSpec {
            name: RESOURCE,
            description: "Appends one `{\"key\", \"data\"}` line per written record.",
            params: vec![ParamSpec {
                name: "file",
                description: "the output file, inside the connection's directory",
                required: true,
            }],
        }]
    }

    fn build_request(&self, resource: &str, input: &RequestInput<'_>) -> Result<TargetRequest, String> {
        if resource != RESOURCE {
            return Err(format!("unknown resource `{resource}`"));
        }
        let file = input.params.get("file").and_then(Value::as_str).ok_or("parameter `file` must be text")?;
        check_relative(file)?;
        Ok(TargetRequest::new("APPEND", file, json!({ "key": input.key, "data": input.body })))
    }

    async fn connect(
        &self,
        settings: &Map<String, Value>,
        context: &ConnectContext,
    ) -> Result<Arc<dyn Connection>, ConnectorError> {
        let settings: JsonlSettings = serde_json::from_value(Value::Object(settings.clone()))
            .map_err(|e| ConnectorError::new(format!("jsonl settings: {e}")))?;
        let directory = context.project_dir.join(&settings.directory);
        Ok(Arc::new(JsonlConnection { directory, append_lock: Mutex::new(()) }))
    }
}

/// Refuses absolute paths and `..`, so a pipeline cannot write outside its directory.
fn check_relative(file: &str) -> Result<(), String> {
    let p = Path::new(file);
    if file.is_empty() || p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(format!("`{file}` must be a file name inside the connection's directory"));
    }
    Ok(())
}

struct JsonlConnection {
    directory: PathBuf,
    /// Appends are serialized so lines never interleave.
    append_lock: Mutex<()>,
}

#[async_trait]
impl Connection for JsonlConnection {
    async fn read(&self, request: &ReadRequest) -> Result<Box<dyn RecordPages>, ConnectorError> {
        check_relative(&request.entity).map_err(ConnectorError::new)?;
        let path = self.directory.join(&request.entity);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ConnectorError::new(format!("cannot open {}: {e}", path.display())))?;
        Ok(Box::new(JsonlPages { path, lines: BufReader::new(file).lines(), line_no: 0, request: request.clone() }))
    }

    async fn write(&self, request: &TargetRequest) -> WriteOutcome {
        self.write_bulk(std::slice::from_ref(request)).await.pop().expect("one outcome per request")
    }

    /// Writes to one file travel together: one append for many lines.
    fn bulk_key(&self, request: &TargetRequest) -> Option<String> {
        Some(request.path.clone())
    }

    fn bulk_limit(&self) -> usize {
        500
    }

    async fn write_bulk(&self, requests: &[TargetRequest]) -> Vec<WriteOutcome> {
        let Some(first) = requests.first() else { return Vec::new() };
        let path = self.directory.join(&first.path);
        let mut lines = String::new();
        for r in requests {
            lines.push_str(&r.body.to_string());
            lines.push('\n');
        }
        let _guard = self.append_lock.lock().await;
        let result = async {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            let mut f = tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await?;
            f.write_all(lines.as_bytes()).await?;
            f.flush().await
        }
        .await;
        requests
            .iter()
            .map(|r| match &result {
                Ok(()) => WriteOutcome::Written {
                    target_id: r.body.get("key").and_then(Value::as_str).map(str::to_owned),
                    status: None,
                },
                Err(e) => WriteOutcome::Failed {
                    transient: true,
                    status: None,
                    class: "io".to_owned(),
                    message: format!("{}: {e}", path.display()),
                },
            })
            .collect()
    }

    fn default_concurrency(&self) -> usize {
        1
    }
}

struct JsonlPages {
    path: PathBuf,
    lines: Lines<BufReader<tokio::fs::File>>,
    line_no: usize,
    request: ReadRequest,
}

#[async_trait]
impl RecordPages for JsonlPages {
    async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ConnectorError> {
        let mut page = Vec::new();
        while page.len() < self.request.page_size as usize {
            let line = self
                .lines
                .next_line()
                .await
                .map_err(|e| ConnectorError::new(format!("{}: {e}", self.path.display())))?;
            let Some(line) = line else { break };
            self.line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            let record: Value = serde_json::from_str(&line).map_err(|e| {
                ConnectorError::new(format!("{}:{}: not a JSON object: {e}", self.path.display(), self.line_no))
            })?;
            if !record.is_object() {
                return Err(ConnectorError::new(format!(
                    "{}:{}: not a JSON object",
                    self.path.display(),
                    self.line_no
                )));
            }
            if self.is_before_since(&record) {
                continue;
            }
            page.push(record);
        }
        Ok((!page.is_empty()).then_some(page))
    }
}

impl JsonlPages {
    /// Incremental reads: skip records whose cursor is before `since`. Records without a
    /// readable cursor are kept, so the engine can report them.
    fn is_before_since(&self, record: &Value) -> bool {
        let (Some(field), Some(since)) = (&self.request.cursor_field, &self.request.since) else { return false };
        let kind = self.request.cursor_kind;
        match record.get(field).map(|v| cursor::normalize(kind, v)) {
            Some(Ok(v)) => cursor::compare(kind, &v, since).is_lt(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::config::CursorKind;
    use engine::connector::EnvSecrets;

    fn context(dir: &Path) -> ConnectContext {
        ConnectContext { project_dir: dir.to_path_buf(), secrets: Arc::new(EnvSecrets) }
    }

    fn read_request(since: Option<Value>) -> ReadRequest {
        ReadRequest {
            entity: "in.jsonl".into(),
            cursor_field: Some("modified".into()),
            cursor_kind: CursorKind::Timestamp,
            since,
            page_size: 2,
            select: vec![],
            expand: vec![],
        }
    }

    #[tokio::test]
    async fn reads_pages_and_honours_since() {
        let dir = tempfile::tempdir().unwrap();
        let lines = [
            "{\"id\":1,\"modified\":\"2026-01-01T00:00:00Z\"}",
            "",
            "{\"id\":2,\"modified\":\"2026-01-02T00:00:00Z\"}",
            "{\"id\":3,\"modified\":\"2026-01-03T00:00:00Z\"}",
        ];
        std::fs::write(dir.path().join("in.jsonl"), lines.join("\n")).unwrap();
        let mut settings = Map::new();
        settings.insert("directory".into(), json!("."));
        let conn = JsonlConnector.connect(&settings, &context(dir.path())).await.unwrap();

        let mut pages = conn.read(&read_request(None)).await.unwrap();
        assert_eq!(pages.next_page().await.unwrap().unwrap().len(), 2);
        assert_eq!(pages.next_page().await.unwrap().unwrap().len(), 1);
        assert!(pages.next_page().await.unwrap().is_none());

        let mut pages = conn.read(&read_request(Some(json!("2026-01-02T00:00:00Z")))).await.unwrap();
        let page = pages.next_page().await.unwrap().unwrap();
        assert_eq!(page.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[tokio::test]
    async fn a_broken_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.jsonl"), "{\"id\":1}\n{oops\n").unwrap();
        let mut settings = Map::new();
        settings.insert("directory".into(), json!("."));
        let conn = JsonlConnector.connect(&settings, &context(dir.path())).await.unwrap();
        let mut pages = conn.read(&read_request(None)).await.unwrap();
        let err = pages.next_page().await.unwrap_err().to_string();
        assert!(err.contains("in.jsonl:2: not a JSON object"), "{err}");
    }

    #[tokio::test]
    async fn writes_append_key_and_data_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Map::new();
        settings.insert("directory".into(), json!("out"));
        let conn = JsonlConnector.connect(&settings, &context(dir.path())).await.unwrap();
        let mut params = Map::new();
        params.insert("file".into(), json!("members.jsonl"));
        let body = json!({"email": "a@b.co"});
        let req =
            JsonlConnector.build_request(RESOURCE, &RequestInput { key: "k1", params: &params, body: &body }).unwrap();
        assert_eq!(conn.write(&req).await, WriteOutcome::Written { target_id: Some("k1".into()), status: None });
        let text = std::fs::read_to_string(dir.path().join("out/members.jsonl")).unwrap();
        assert_eq!(text, "{\"data\":{\"email\":\"a@b.co\"},\"key\":\"k1\"}\n");
    }

    #[test]
    fn refuses_paths_outside_the_directory() {
        let mut params = Map::new();
        params.insert("file".into(), json!("../escape.jsonl"));
        let err = JsonlConnector
            .build_request(RESOURCE, &RequestInput { key: "k", params: &params, body: &json!({}) })
            .unwrap_err();
        assert!(err.contains("inside the connection's directory"));
    }
}
