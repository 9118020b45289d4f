//! Shared set-up: a sandbox on 127.0.0.1:0 and a connection to it through the real client.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use connector_mailchimp::MailchimpConnector;
use engine::config::SecretRef;
use engine::connector::{
    ConnectContext, Connection, Connector, RequestInput, SecretResolver, TargetRequest, WriteOutcome,
};
use sandbox_mailchimp::{DEFAULT_API_KEY, Sandbox, SandboxConfig};
use serde_json::{Map, Value, json};

pub struct Secrets(pub HashMap<String, String>);

impl SecretResolver for Secrets {
    fn resolve(&self, reference: &SecretRef) -> Result<String, String> {
        match reference {
            SecretRef::Secret(n) => self.0.get(n).cloned().ok_or_else(|| format!("vault secret `{n}` is not set")),
            SecretRef::Env(v) => Err(format!("environment variable `{v}` is not set")),
        }
    }
}

pub async fn sandbox() -> Sandbox {
    sandbox_with(SandboxConfig::default()).await
}

pub async fn sandbox_with(config: SandboxConfig) -> Sandbox {
    Sandbox::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

pub fn context(secrets: &[(&str, &str)]) -> ConnectContext {
    let map = secrets.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    ConnectContext { project_dir: ".".into(), secrets: Arc::new(Secrets(map)) }
}

pub fn settings(sandbox: &Sandbox, extra: Value) -> Map<String, Value> {
    let mut s = json!({
        "auth": {"type": "api_key", "key": {"secret": "mc_key"}},
        "base_url": sandbox.base_url(),
        "max_attempts": 4,
    });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s.as_object().unwrap().clone()
}

pub async fn connect(sandbox: &Sandbox) -> Arc<dyn Connection> {
    connect_with(sandbox, json!({})).await
}

pub async fn connect_with(sandbox: &Sandbox, extra: Value) -> Arc<dyn Connection> {
    MailchimpConnector.connect(&settings(sandbox, extra), &context(&[("mc_key", DEFAULT_API_KEY)])).await.unwrap()
}

/// Builds the request a pipeline would render, as the engine does.
pub fn request(resource: &str, params: Value, body: Value) -> TargetRequest {
    let params = params.as_object().unwrap().clone();
    MailchimpConnector.build_request(resource, &RequestInput { key: "k", params: &params, body: &body }).unwrap()
}

pub fn member(list: &str, email: &str, fname: &str) -> TargetRequest {
    request(
        "member",
        json!({"list_id": list}),
        json!({"email_address": email, "status_if_new": "subscribed", "merge_fields": {"FNAME": fname, "COMPANY": "Contoso"}}),
    )
}

pub fn assert_written(outcome: &WriteOutcome) {
    assert!(matches!(outcome, WriteOutcome::Written { .. }), "{outcome:?}");
}

pub fn failure_class(outcome: &WriteOutcome) -> String {
    match outcome {
        WriteOutcome::Failed { class, .. } => class.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}
