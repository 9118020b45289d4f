//! References to secrets. Configuration never holds a secret's value, only where to find it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a secret's value comes from. Connector settings that hold credentials take this type,
/// so a password written inline is a schema error instead of a leak waiting in a Git history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretRef {
    /// The name of a secret in the project's encrypted vault (`ml-connector secrets set NAME`).
    Secret(String),
    /// The name of an environment variable that holds the value.
    Env(String),
}

impl SecretRef {
    /// A description safe to print: it names the source, never the value.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Secret(name) => format!("vault secret `{name}`"),
            SecretRef::Env(var) => format!("environment variable `{var}`"),
        }
    }
}
