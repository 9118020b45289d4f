//! The project file, `ml-connector.yaml`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Duration, ErrorPolicy};

/// The name of the project file in a project directory.
pub const PROJECT_FILE: &str = "ml-connector.yaml";

/// One customer's integration: its connections, where state is kept, shared values and the
/// pipelines to run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "ml-connector project file (ml-connector.yaml)")]
pub struct ProjectConfig {
    /// Version of the configuration format. Only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// The project's name, shown in logs, status and metrics (usually the customer's name).
    #[schemars(length(min = 1))]
    pub name: String,
    /// What this project is for, for the next integrator who opens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Named connections to the systems this project talks to. Pipelines refer to them by name.
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionConfig>,
    /// Files or directories (relative to this file) that hold the pipelines. A directory
    /// contributes every `*.yaml` / `*.yml` in it except mapping tests (`*.test.yaml`).
    #[serde(default = "default_pipelines")]
    pub pipelines: Vec<String>,
    /// Values that templates read as `vars.<name>`: audience ids, store ids, default currency.
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Where the project's state (ledger, watermarks, audit trail) is kept.
    #[serde(default)]
    pub state: StateConfig,
    /// Settings every pipeline inherits unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// Where to send an alert when a pipeline's run fails for the first time, and when it
    /// recovers: one message per change, never one per retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertsConfig>,
}

/// The alert channel.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// A generic JSON webhook (Slack-compatible: the body has a `text`), kept as a secret since
    /// such URLs carry their own token.
    pub webhook: super::SecretRef,
}

fn default_pipelines() -> Vec<String> {
    vec!["pipelines".to_owned()]
}

/// A connection to one system through one connector.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// The connector that talks to this system, e.g. `jsonl`.
    pub connector: String,
    /// The connector's settings. Credentials are references (`{secret: NAME}` or `{env: VAR}`),
    /// never values.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The most requests in flight to this connection at once, shared by all pipelines that
    /// use it. Defaults to the connector's own limit (the API's documented maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: Option<usize>,
}

/// Where the project's state and secrets live.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Path of the SQLite state database, relative to the project file.
    #[serde(default = "default_state_path")]
    pub path: String,
    /// Path of the encrypted secrets vault, relative to the project file.
    #[serde(default = "default_vault_path")]
    pub vault: String,
    /// Path of the file holding the vault's master key (base64, mode 0600), relative to the
    /// project file. `ML_CONNECTOR_MASTER_KEY`, `ML_CONNECTOR_KEY_FILE` or
    /// `ML_CONNECTOR_PASSPHRASE` take precedence.
    #[serde(default = "default_key_file")]
    pub key_file: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { path: default_state_path(), vault: default_vault_path(), key_file: default_key_file() }
    }
}

fn default_state_path() -> String {
    ".ml-connector/state.db".to_owned()
}

fn default_vault_path() -> String {
    ".ml-connector/vault.json".to_owned()
}

fn default_key_file() -> String {
    ".ml-connector/master.key".to_owned()
}

/// Settings that pipelines inherit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// How far behind the watermark an incremental read starts, so records committed late with
    /// an earlier timestamp are not missed. Re-read records that did not change cost no write.
    #[serde(default = "default_lookback")]
    pub lookback: Duration,
    /// How many records a source is asked for per page.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 10000))]
    pub page_size: u32,
    /// What happens to records that cannot be written.
    #[serde(default)]
    pub on_error: ErrorPolicy,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { lookback: default_lookback(), page_size: default_page_size(), on_error: ErrorPolicy::default() }
    }
}

fn default_lookback() -> Duration {
    Duration::from_secs(300)
}

fn default_page_size() -> u32 {
    500
}
