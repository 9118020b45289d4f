//! The boundary between the engine and the systems it talks to.
//!
//! The engine knows no connector by name. A connector describes itself (settings schema, the
//! entities it reads, the resources it writes and their parameters), builds target requests with
//! a pure function, and, once connected, reads pages of records and sends requests. The binary
//! registers the connectors it ships in a [`Registry`].
//!
//! Why requests are built by a pure function: `ml-connector test` and `plan` show the exact
//! request a target would receive without any network, and the payload hash that makes writes
//! idempotent is taken over that request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::Schema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::SecretRef;

/// A connector: the code that knows one system.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The name used in `connector:` in the project file.
    fn name(&self) -> &'static str;
    /// One line on what it connects to.
    fn description(&self) -> &'static str;
    /// JSON Schema of the connection's `settings`.
    fn settings_schema(&self) -> Schema;
    /// The entities its sources read.
    fn entities(&self) -> Entities;
    /// The resources its targets write.
    fn resources(&self) -> Vec<ResourceSpec>;
    /// The request `resource` would receive for one rendered record. Pure: no I/O.
    fn build_request(&self, resource: &str, input: &RequestInput<'_>) -> Result<TargetRequest, String>;
    /// Opens a live connection.
    async fn connect(
        &self,
        settings: &Map<String, Value>,
        context: &ConnectContext,
    ) -> Result<Arc<dyn Connection>, ConnectorError>;
    /// Whether its records arrive as events pushed to `serve` (the inbox) rather than being
    /// polled. Pipelines reading such a source run when events arrive unless they set a
    /// `schedule`; the engine asks this instead of knowing the connector by name.
    fn event_driven(&self) -> bool {
        false
    }
}

/// The entities a connector's sources can read.
#[derive(Debug, Clone)]
pub enum Entities {
    /// Any name is accepted (e.g. a file name); the text explains what the name means.
    Any(&'static str),
    /// Only these.
    Named(Vec<EntitySpec>),
}

/// One readable entity.
#[derive(Debug, Clone)]
pub struct EntitySpec {
    pub name: &'static str,
    pub description: &'static str,
}

/// One writable resource.
#[derive(Debug, Clone)]
pub struct ResourceSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub params: Vec<ParamSpec>,
}

/// One parameter of a resource (`list_id`, `store_id`).
#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub required: bool,
}

/// What a target request is built from.
#[derive(Debug, Clone)]
pub struct RequestInput<'a> {
    /// The record's idempotency key.
    pub key: &'a str,
    /// The rendered resource parameters.
    pub params: &'a Map<String, Value>,
    /// The rendered fields.
    pub body: &'a Value,
}

/// A request as a target would receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetRequest {
    /// The HTTP method (or, for file targets, the operation), e.g. `PUT`.
    pub method: String,
    /// The path relative to the connection's base URL (or the file written).
    pub path: String,
    /// The JSON body.
    #[serde(default)]
    pub body: Value,
    /// How the connector is to send it, beyond method, path and body (e.g. `resource`, or
    /// Mailchimp's `on_compliance`). Part of the payload hash, shown by `test` and `plan`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub options: Map<String, Value>,
}

impl TargetRequest {
    /// A request with no options.
    pub fn new(method: impl Into<String>, path: impl Into<String>, body: Value) -> Self {
        TargetRequest { method: method.into(), path: path.into(), body, options: Map::new() }
    }
}

/// What a live connection needs from its surroundings.
#[derive(Clone)]
pub struct ConnectContext {
    /// The project directory; relative paths in settings are taken from here.
    pub project_dir: PathBuf,
    /// Resolves secret references.
    pub secrets: Arc<dyn SecretResolver>,
}

/// Resolves `{secret: NAME}` / `{env: VAR}` to a value. The value is handed to the connector and
/// nowhere else.
pub trait SecretResolver: Send + Sync {
    fn resolve(&self, reference: &SecretRef) -> Result<String, String>;
}

/// Resolves environment references only; vault references fail with a clear message.
pub struct EnvSecrets;

impl SecretResolver for EnvSecrets {
    fn resolve(&self, reference: &SecretRef) -> Result<String, String> {
        match reference {
            SecretRef::Env(var) => std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set")),
            SecretRef::Secret(name) => Err(format!("vault secret `{name}` cannot be read: no vault is open")),
        }
    }
}

/// A connector failure that concerns the connection, not one record.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    pub message: String,
}

impl ConnectorError {
    pub fn new(message: impl Into<String>) -> Self {
        ConnectorError { message: message.into() }
    }
}

/// What to read.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    pub entity: String,
    /// The cursor field, for incremental reads.
    pub cursor_field: Option<String>,
    /// How cursor values compare.
    pub cursor_kind: crate::config::CursorKind,
    /// Read only records whose cursor is at or after this value (already moved back by the
    /// lookback). `None` reads everything.
    pub since: Option<Value>,
    pub page_size: u32,
    pub select: Vec<String>,
    pub expand: Vec<String>,
}

/// A live connection to one system.
#[async_trait]
pub trait Connection: Send + Sync {
    /// Starts reading an entity. Records arrive a page at a time so memory stays flat.
    async fn read(&self, request: &ReadRequest) -> Result<Box<dyn RecordPages>, ConnectorError>;
    /// The current versions of the records whose `id_field` is one of `ids` (for replaying dead
    /// letters after the source was fixed). The default reads the entity and keeps the matches;
    /// connectors that can look records up by id do better.
    async fn read_current(
        &self,
        request: &ReadRequest,
        id_field: &str,
        ids: &[Value],
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut pages = self.read(request).await?;
        let mut found = Vec::new();
        while let Some(page) = pages.next_page().await? {
            found.extend(page.into_iter().filter(|r| r.get(id_field).is_some_and(|id| ids.contains(id))));
        }
        Ok(found)
    }
    /// Requests that can travel together in one bulk call share a bulk key (Mailchimp: member
    /// upserts to one audience). `None`: the request is sent on its own.
    fn bulk_key(&self, _request: &TargetRequest) -> Option<String> {
        None
    }
    /// The most requests one bulk call carries (1: the connection has no bulk path).
    fn bulk_limit(&self) -> usize {
        1
    }
    /// The fewest requests with bulk key `key` worth one bulk call; smaller groups go one by one,
    /// where a single request is as cheap and its failure easier to read. A bulk path with a
    /// fixed cost of its own (Mailchimp's asynchronous batch operations) asks for more.
    fn bulk_min(&self, _key: &str) -> usize {
        10
    }
    /// Sends requests that share a bulk key in one call; one outcome per request, in order.
    async fn write_bulk(&self, requests: &[TargetRequest]) -> Vec<WriteOutcome> {
        let mut outcomes = Vec::with_capacity(requests.len());
        for r in requests {
            outcomes.push(self.write(r).await);
        }
        outcomes
    }
    /// Sends one request built by [`Connector::build_request`].
    async fn write(&self, request: &TargetRequest) -> WriteOutcome;
    /// How many requests may be in flight at once, when the project does not say.
    fn default_concurrency(&self) -> usize;
    /// Proves the connection works (credentials, reachability, permissions) and says what it
    /// reaches, in plain words: what `ml-connector check` prints.
    async fn check(&self) -> Result<String, ConnectorError> {
        Ok("connected".to_owned())
    }
}

/// Pages of records from a source.
#[async_trait]
pub trait RecordPages: Send {
    /// The next page, or `None` when the source is exhausted.
    async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ConnectorError>;
}

/// What happened to one write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WriteOutcome {
    /// The target accepted the request. Whether it was a create or an update is the ledger's
    /// call (it knows whether the key was written before), not the target's.
    Written { target_id: Option<String>, status: Option<u16> },
    /// The target refused. `transient` failures (throttling, timeouts, 5xx after retries) are
    /// tried again by the next run; others go to the dead-letter store under `class`.
    Failed { transient: bool, status: Option<u16>, class: String, message: String },
}

/// The connectors a binary ships, by name.
#[derive(Default, Clone)]
pub struct Registry {
    connectors: BTreeMap<&'static str, Arc<dyn Connector>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, connector: Arc<dyn Connector>) {
        self.connectors.insert(connector.name(), connector);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.connectors.keys().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Connector>> {
        self.connectors.values()
    }
}
