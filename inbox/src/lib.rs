//! The inbox: events that arrived (webhook deliveries), stored durably before they are
//! acknowledged, then read by pipelines like any other source.
//!
//! Why a separate store: a webhook must be written somewhere that survives a crash *before* the
//! 2xx reply (Mailchimp and Business Central do not resend what they saw acknowledged), and the
//! return-flow pipelines then read it with the same machinery as every other source: a cursor
//! (`seq`, a number), the ledger, dead letters. Deliveries are at-least-once, so each event has a
//! de-duplication key; a repeat is acknowledged and dropped.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use engine::config::CursorKind;
use engine::connector::{
    ConnectContext, Connection, Connector, ConnectorError, Entities, ReadRequest, RecordPages, RequestInput,
    ResourceSpec, TargetRequest, WriteOutcome,
};
use rusqlite::{Connection as Db, OptionalExtension, params};
use schemars::{JsonSchema, Schema};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Where the inbox lives in a project, by default.
pub const DEFAULT_PATH: &str = ".ml-connector/inbox.db";

/// A failure of the inbox.
#[derive(Debug, thiserror::Error)]
#[error("inbox: {0}")]
pub struct InboxError(String);

/// The durable inbox.
#[derive(Clone)]
pub struct Inbox {
    db: Arc<Mutex<Db>>,
}

impl Inbox {
    /// Opens (and creates) the inbox at `path`.
    pub fn open(path: &Path) -> Result<Inbox, InboxError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| InboxError(format!("{}: {e}", parent.display())))?;
        }
        let db = Db::open(path).map_err(|e| InboxError(format!("{}: {e}", path.display())))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS events (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 source TEXT NOT NULL,
                 dedupe_key TEXT NOT NULL,
                 received_at TEXT NOT NULL,
                 payload TEXT NOT NULL,
                 UNIQUE (source, dedupe_key)
             );",
        )
        .map_err(|e| InboxError(format!("preparing {}: {e}", path.display())))?;
        Ok(Inbox { db: Arc::new(Mutex::new(db)) })
    }

    /// Stores an event; `None` when an event with the same key was already stored (a repeated
    /// delivery). `synchronous = FULL`: once this returns, the event survives a power loss.
    pub fn put(&self, source: &str, dedupe_key: &str, payload: &Value) -> Result<Option<i64>, InboxError> {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let changed = db
            .execute(
                "INSERT OR IGNORE INTO events (source, dedupe_key, received_at, payload) VALUES (?1, ?2, ?3, ?4)",
                params![source, dedupe_key, jiff::Timestamp::now().to_string(), payload.to_string()],
            )
            .map_err(|e| InboxError(format!("storing an event: {e}")))?;
        Ok((changed == 1).then(|| db.last_insert_rowid()))
    }

    /// Stores several events in one transaction: one sync to disk for the whole batch, so a
    /// Business Central delivery of hundreds of notifications is acknowledged in milliseconds
    /// rather than one fsync per notification. All or none are stored. Returns, per event, what
    /// [`Inbox::put`] would.
    pub fn put_batch(&self, source: &str, events: &[(String, Value)]) -> Result<Vec<Option<i64>>, InboxError> {
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let tx = db.transaction().map_err(|e| InboxError(format!("storing events: {e}")))?;
        let received_at = jiff::Timestamp::now().to_string();
        let mut out = Vec::with_capacity(events.len());
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (source, dedupe_key, received_at, payload) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| InboxError(format!("storing events: {e}")))?;
            for (key, payload) in events {
                let changed = stmt
                    .execute(params![source, key, received_at, payload.to_string()])
                    .map_err(|e| InboxError(format!("storing an event: {e}")))?;
                out.push((changed == 1).then(|| tx.last_insert_rowid()));
            }
        }
        tx.commit().map_err(|e| InboxError(format!("storing events: {e}")))?;
        Ok(out)
    }

    /// Events of `source` after `after` (a `seq`), oldest first, each with its `seq` added.
    pub fn read(&self, source: &str, after: i64, limit: usize) -> Result<Vec<Value>, InboxError> {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = db
            .prepare_cached(
                "SELECT seq, payload, received_at FROM events WHERE source = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(|e| InboxError(e.to_string()))?;
        let rows = stmt
            .query_map(params![source, after, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .map_err(|e| InboxError(e.to_string()))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, payload, received_at) = row.map_err(|e| InboxError(e.to_string()))?;
            let mut v: Value = serde_json::from_str(&payload).map_err(|e| InboxError(format!("event {seq}: {e}")))?;
            if let Some(o) = v.as_object_mut() {
                o.insert("seq".into(), Value::from(seq));
                o.insert("received_at".into(), Value::from(received_at));
            }
            out.push(v);
        }
        Ok(out)
    }

    /// The `upemail` events of `source` after `after` (a `seq`), oldest first, as
    /// (seq, old address in lower case, new address).
    fn email_changes_after(&self, source: &str, after: i64) -> Result<Vec<(i64, String, String)>, InboxError> {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = db
            .prepare_cached(
                "SELECT seq, json_extract(payload, '$.old_email'), json_extract(payload, '$.email') FROM events
                 WHERE source = ?1 AND seq > ?2 AND json_extract(payload, '$.type') = 'upemail' ORDER BY seq",
            )
            .map_err(|e| InboxError(e.to_string()))?;
        let rows = stmt
            .query_map(params![source, after], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .map_err(|e| InboxError(e.to_string()))?;
        let mut out = Vec::new();
        for row in rows {
            if let (seq, Some(old), Some(new)) = row.map_err(|e| InboxError(e.to_string()))? {
                out.push((seq, old.to_lowercase(), new));
            }
        }
        Ok(out)
    }

    /// How many events of `source` came after `after` (a `seq`): the backlog of a pipeline whose
    /// watermark is `after`.
    pub fn count_after(&self, source: &str, after: i64) -> Result<u64, InboxError> {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        db.query_row("SELECT COUNT(*) FROM events WHERE source = ?1 AND seq > ?2", params![source, after], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .map_err(|e| InboxError(e.to_string()))
    }

    /// How many events `source` holds.
    pub fn count(&self, source: &str) -> Result<u64, InboxError> {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        db.query_row("SELECT COUNT(*) FROM events WHERE source = ?1", [source], |r| r.get::<_, i64>(0))
            .optional()
            .map(|n| n.unwrap_or(0) as u64)
            .map_err(|e| InboxError(e.to_string()))
    }
}

/// Settings of an `inbox` connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboxSettings {
    /// The inbox file, relative to the project file.
    #[serde(default = "default_path")]
    pub path: String,
}

fn default_path() -> String {
    DEFAULT_PATH.to_owned()
}

/// The source connector over the inbox: entity = the event source (`mailchimp`); records carry
/// `seq`, the cursor to use (`cursor: {field: seq, kind: number}`).
pub struct InboxConnector;

#[async_trait]
impl Connector for InboxConnector {
    fn name(&self) -> &'static str {
        "inbox"
    }

    fn description(&self) -> &'static str {
        "Events received by `ml-connector serve` (webhook deliveries), read in arrival order."
    }

    fn settings_schema(&self) -> Schema {
        engine::schema::inline_schema_for::<InboxSettings>()
    }

    fn entities(&self) -> Entities {
        Entities::Any(
            "the event source, e.g. `mailchimp` (webhook events) or `business-central` (change notifications)",
        )
    }

    fn resources(&self) -> Vec<ResourceSpec> {
        Vec::new()
    }

    fn event_driven(&self) -> bool {
        true
    }

    fn build_request(&self, _: &str, _: &RequestInput<'_>) -> Result<TargetRequest, String> {
        Err("the inbox is a source only".into())
    }

    async fn connect(
        &self,
        settings: &Map<String, Value>,
        context: &ConnectContext,
    ) -> Result<Arc<dyn Connection>, ConnectorError> {
        let settings: InboxSettings = serde_json::from_value(Value::Object(settings.clone()))
            .map_err(|e| ConnectorError::new(format!("inbox settings: {e}")))?;
        let inbox =
            Inbox::open(&context.project_dir.join(settings.path)).map_err(|e| ConnectorError::new(e.to_string()))?;
        Ok(Arc::new(InboxConnection { inbox }))
    }
}

struct InboxConnection {
    inbox: Inbox,
}

#[async_trait]
impl Connection for InboxConnection {
    async fn read(&self, request: &ReadRequest) -> Result<Box<dyn RecordPages>, ConnectorError> {
        if request.cursor_field.as_deref().is_some_and(|f| f != "seq")
            || (request.cursor_field.is_some() && request.cursor_kind != CursorKind::Number)
        {
            return Err(ConnectorError::new("an inbox is read with `cursor: {field: seq, kind: number}`"));
        }
        let after = request.since.as_ref().and_then(Value::as_f64).map(|f| f as i64).unwrap_or(0);
        Ok(Box::new(InboxPages {
            inbox: self.inbox.clone(),
            source: request.entity.clone(),
            after,
            page: request.page_size as usize,
        }))
    }

    async fn write(&self, _: &TargetRequest) -> WriteOutcome {
        WriteOutcome::Failed {
            transient: false,
            status: None,
            class: "request".into(),
            message: "the inbox is a source only".into(),
        }
    }

    fn default_concurrency(&self) -> usize {
        1
    }
}

struct InboxPages {
    inbox: Inbox,
    source: String,
    after: i64,
    page: usize,
}

/// The inbox source Mailchimp's webhook deliveries are stored under.
pub const MAILCHIMP_SOURCE: &str = "mailchimp";

/// Adds `current_email` to each Mailchimp event: the address its `email` became through the
/// `upemail` events that came after it (its `email` when none did).
///
/// Why: the return flow changes addresses first (`email-changes`), then applies consent and
/// profile events, each found in the ERP by address. A person who unsubscribes and then changes
/// address before the return flow runs has the unsubscribe under an address the ERP no longer
/// holds; matched on `current_email`, it reaches them. `changes` are (seq, old address in lower
/// case, new address), oldest first.
fn add_current_email(events: &mut [Value], changes: &[(i64, String, String)]) {
    for event in events {
        let (Some(seq), Some(email)) = (event["seq"].as_i64(), event["email"].as_str()) else { continue };
        let mut current = email.to_owned();
        let mut after = seq;
        // Each step moves forward in `seq`, so a chain A → B → A ends.
        while let Some((at, _, new)) = changes.iter().find(|(at, old, _)| *at > after && *old == current.to_lowercase())
        {
            current = new.clone();
            after = *at;
        }
        if let Some(o) = event.as_object_mut() {
            o.insert("current_email".into(), Value::from(current));
        }
    }
}

#[async_trait]
impl RecordPages for InboxPages {
    async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ConnectorError> {
        let mut events = self
            .inbox
            .read(&self.source, self.after, self.page.max(1))
            .map_err(|e| ConnectorError::new(e.to_string()))?;
        if self.source == MAILCHIMP_SOURCE && !events.is_empty() {
            let changes = self
                .inbox
                .email_changes_after(&self.source, self.after)
                .map_err(|e| ConnectorError::new(e.to_string()))?;
            add_current_email(&mut events, &changes);
        }
        match events.last().and_then(|e| e["seq"].as_i64()) {
            Some(last) => {
                self.after = last;
                Ok(Some(events))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_stored_once_and_read_in_order_after_a_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("inbox.db")).unwrap();
        assert_eq!(inbox.put("mailchimp", "k1", &json!({"type": "unsubscribe"})).unwrap(), Some(1));
        assert_eq!(inbox.put("mailchimp", "k1", &json!({"type": "unsubscribe"})).unwrap(), None, "a repeated delivery");
        inbox.put("mailchimp", "k2", &json!({"type": "profile"})).unwrap();
        inbox.put("business-central", "k1", &json!({"changeType": "updated"})).unwrap();
        let all = inbox.read("mailchimp", 0, 10).unwrap();
        assert_eq!(all.iter().map(|e| e["type"].as_str().unwrap()).collect::<Vec<_>>(), ["unsubscribe", "profile"]);
        let after = inbox.read("mailchimp", all[0]["seq"].as_i64().unwrap(), 10).unwrap();
        assert_eq!(after.len(), 1);
        // Reopening keeps everything (WAL, synchronous FULL).
        drop(inbox);
        let again = Inbox::open(&dir.path().join("inbox.db")).unwrap();
        assert_eq!(again.count("mailchimp").unwrap(), 2);
        assert_eq!(again.count_after("mailchimp", 1).unwrap(), 1);
    }

    #[test]
    fn a_batch_is_stored_in_one_go_and_repeats_within_and_across_batches_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("inbox.db")).unwrap();
        let batch = |keys: &[&str]| keys.iter().map(|k| ((*k).to_owned(), json!({"k": k}))).collect::<Vec<_>>();
        let first = inbox.put_batch("business-central", &batch(&["a", "b", "a"])).unwrap();
        assert_eq!(first, [Some(1), Some(2), None]);
        let second = inbox.put_batch("business-central", &batch(&["b", "c"])).unwrap();
        // (A dropped repeat may use up a `seq`: only the order matters to readers.)
        assert!(matches!(second[..], [None, Some(n)] if n > 2), "{second:?}");
        assert_eq!(inbox.count("business-central").unwrap(), 3);
        assert_eq!(inbox.put_batch("business-central", &[]).unwrap(), []);
    }

    #[tokio::test]
    async fn mailchimp_events_carry_the_address_their_email_became_later() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join(".ml-connector/inbox.db")).unwrap();
        let events = [
            json!({"type": "unsubscribe", "email": "Ann@example.com"}),
            json!({"type": "upemail", "old_email": "ann@example.com", "email": "ann.b@example.com"}),
            json!({"type": "profile", "email": "ann.b@example.com"}),
            json!({"type": "subscribe", "email": "bob@example.com"}),
            json!({"type": "upemail", "old_email": "ann.b@example.com", "email": "ann@example.com"}),
            json!({"type": "cleaned", "email": "ann@example.com"}),
            json!({"type": "upemail", "old_email": "nobody@example.com", "email": "x@example.com"}),
        ];
        for (i, e) in events.iter().enumerate() {
            inbox.put(MAILCHIMP_SOURCE, &format!("k{i}"), e).unwrap();
            inbox.put("other", &format!("k{i}"), e).unwrap();
        }
        let ctx =
            ConnectContext { project_dir: dir.path().to_path_buf(), secrets: Arc::new(engine::connector::EnvSecrets) };
        let conn = InboxConnector.connect(&Map::new(), &ctx).await.unwrap();
        let read = |entity: &str, since: i64, page_size: u32| ReadRequest {
            entity: entity.into(),
            cursor_field: Some("seq".into()),
            cursor_kind: CursorKind::Number,
            since: Some(json!(since)),
            page_size,
            select: vec![],
            expand: vec![],
        };
        let (mut current, mut seqs) = (Vec::new(), Vec::new());
        // Pages of two: an event's later address changes count even when they are on a later page.
        let mut pages = conn.read(&read(MAILCHIMP_SOURCE, 0, 2)).await.unwrap();
        while let Some(page) = pages.next_page().await.unwrap() {
            current.extend(page.iter().map(|e| e["current_email"].as_str().unwrap().to_owned()));
            seqs.extend(page.iter().map(|e| e["seq"].as_i64().unwrap()));
        }
        assert_eq!(
            current,
            [
                "ann@example.com", // A → B, then B → A: back where it started
                "ann@example.com",
                "ann@example.com",
                "bob@example.com",
                "ann@example.com",
                "ann@example.com",
                "x@example.com",
            ]
        );
        // Read after the first change only: the unsubscribe is behind the watermark, and the
        // profile event's address changes once more.
        let mut pages = conn.read(&read(MAILCHIMP_SOURCE, seqs[1], 10)).await.unwrap();
        let page = pages.next_page().await.unwrap().unwrap();
        assert_eq!(page[0]["type"], "profile");
        assert_eq!(page[0]["current_email"], "ann@example.com");
        // Only Mailchimp events are read this way.
        let mut pages = conn.read(&read("other", 0, 10)).await.unwrap();
        assert!(pages.next_page().await.unwrap().unwrap().iter().all(|e| e.get("current_email").is_none()));
    }

    #[test]
    fn an_address_that_changed_away_and_on_is_followed_to_its_end() {
        let changes = vec![
            (2, "a@x.com".to_owned(), "b@x.com".to_owned()),
            (3, "b@x.com".to_owned(), "c@x.com".to_owned()),
            (5, "a@x.com".to_owned(), "d@x.com".to_owned()),
        ];
        let mut events = vec![
            json!({"seq": 1, "email": "A@x.com"}),
            json!({"seq": 4, "email": "a@x.com"}),
            json!({"seq": 6, "email": "a@x.com"}),
            json!({"seq": 7, "type": "campaign"}),
        ];
        add_current_email(&mut events, &changes);
        let got: Vec<Option<&str>> = events.iter().map(|e| e["current_email"].as_str()).collect();
        assert_eq!(got, [Some("c@x.com"), Some("d@x.com"), Some("a@x.com"), None]);
    }

    #[tokio::test]
    async fn the_connector_pages_through_events_after_the_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join(".ml-connector/inbox.db")).unwrap();
        for i in 0..5 {
            inbox.put("mailchimp", &format!("k{i}"), &json!({"n": i})).unwrap();
        }
        let ctx =
            ConnectContext { project_dir: dir.path().to_path_buf(), secrets: Arc::new(engine::connector::EnvSecrets) };
        let conn = InboxConnector.connect(&Map::new(), &ctx).await.unwrap();
        let request = ReadRequest {
            entity: "mailchimp".into(),
            cursor_field: Some("seq".into()),
            cursor_kind: CursorKind::Number,
            since: Some(json!(2)),
            page_size: 2,
            select: vec![],
            expand: vec![],
        };
        let mut pages = conn.read(&request).await.unwrap();
        let mut seqs = Vec::new();
        while let Some(page) = pages.next_page().await.unwrap() {
            seqs.extend(page.iter().map(|e| e["seq"].as_i64().unwrap()));
        }
        assert_eq!(seqs, [3, 4, 5]);
    }
}
