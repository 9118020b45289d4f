//! What the service's tests share: real sandboxes and routers on `127.0.0.1:0`, projects
//! written to temporary directories, secrets from a map.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use engine::config::SecretRef;
use engine::connector::SecretResolver;
use engine::load::Project;
use sandbox_business_central::{Sandbox as BcSandbox, SandboxConfig as BcConfig};
use sandbox_mailchimp::{Sandbox as McSandbox, SandboxConfig as McConfig};

/// The URL token of the test projects (16 characters at least).
pub const BC_TOKEN: &str = "bc-token-0123456789abcdef";
/// The clientState of the test projects.
pub const CLIENT_STATE: &str = "client-state-secret-42";
/// The Mailchimp URL token of the test projects.
pub const MC_TOKEN: &str = "mc-token-0123456789abcdef";

/// Vault secrets from a map.
pub struct MapSecrets(pub HashMap<String, String>);

impl SecretResolver for MapSecrets {
    fn resolve(&self, r: &SecretRef) -> Result<String, String> {
        match r {
            SecretRef::Secret(n) => self.0.get(n).cloned().ok_or_else(|| format!("vault secret `{n}` is not set")),
            SecretRef::Env(v) => Err(format!("environment variable `{v}` is not set")),
        }
    }
}

/// The secrets the test projects' connections use.
pub fn secrets() -> Arc<dyn SecretResolver> {
    Arc::new(MapSecrets(
        [
            ("bc_client_secret".to_owned(), BcConfig::default().client_secret),
            ("mailchimp_api_key".to_owned(), sandbox_mailchimp::DEFAULT_API_KEY.to_owned()),
        ]
        .into(),
    ))
}

/// A Business Central sandbox whose notification job runs 100 ms after a change.
pub async fn bc_sandbox() -> BcSandbox {
    let config = BcConfig { notification_delay: Duration::from_millis(100), ..BcConfig::default() };
    BcSandbox::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// A Mailchimp sandbox.
pub async fn mc_sandbox() -> McSandbox {
    McSandbox::start(McConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Serves `app` on a free loopback port of the current runtime; returns `http://127.0.0.1:PORT`.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Writes and loads a project with a `business-central` connection to `bc`, a `mailchimp`
/// connection to `mc` (when given), an inbox `events`, a JSON Lines `out`, and one pipeline
/// per `(name, connection, entity)` source, each writing to `out`.
pub fn project(dir: &Path, bc: &BcSandbox, mc: Option<(&McSandbox, &str)>, sources: &[(&str, &str, &str)]) -> Project {
    let mut yaml = format!(
        "version: 1\nname: test-project\nconnections:\n  events: {{connector: inbox}}\n  out: {{connector: jsonl, settings: {{directory: out}}}}\n  bc:\n    connector: business-central\n    settings:\n      tenant: '{}'\n      environment: production\n      company: 'CRONUS USA, Inc.'\n      client_id: '{}'\n      credential: {{type: secret, secret: {{secret: bc_client_secret}}}}\n      token_url: '{}'\n      base_url: '{}'\n",
        BcConfig::default().tenant,
        BcConfig::default().client_id,
        bc.token_url(),
        bc.base_url()
    );
    if let Some((mc, list)) = mc {
        yaml.push_str(&format!(
            "  mc:\n    connector: mailchimp\n    settings: {{auth: {{type: api_key, key: {{secret: mailchimp_api_key}}}}, base_url: '{}'}}\nvars: {{list_id: '{list}'}}\n",
            mc.base_url()
        ));
    }
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(dir.join("ml-connector.yaml"), yaml).unwrap();
    for (name, connection, entity) in sources {
        let cursor =
            if *connection == "events" { "{field: seq, kind: number}" } else { "{field: lastModifiedDateTime}" };
        // BC sources listen for notifications (the upkeep subscribes only for those).
        let schedule = if *connection == "bc" { "schedule: webhook\n" } else { "" };
        let pipeline = format!(
            "version: 1\nname: {name}\n{schedule}source: {{connection: {connection}, entity: '{entity}', cursor: {cursor}}}\nkey: \"{{{{ record.id }}}}\"\nfields: {{id: \"{{{{ record.id }}}}\"}}\ntarget: {{connection: out, resource: records, params: {{file: {name}.jsonl}}}}\n"
        );
        std::fs::write(dir.join("pipelines").join(format!("{name}.yaml")), pipeline).unwrap();
    }
    engine::load::load_project(&dir.join("ml-connector.yaml"), &crate::registry::connectors())
        .unwrap_or_else(|d| panic!("the test project loads: {d:?}"))
}

/// A Business Central client of the sandbox's company, as the upkeep builds one.
pub async fn bc_client(bc: &BcSandbox) -> connector_business_central::BcClient {
    let settings: connector_business_central::BcSettings = serde_json::from_value(serde_json::json!({
        "tenant": BcConfig::default().tenant,
        "environment": "production",
        "company": "CRONUS USA, Inc.",
        "client_id": BcConfig::default().client_id,
        "credential": {"type": "secret", "secret": {"secret": "bc_client_secret"}},
        "token_url": bc.token_url(),
        "base_url": bc.base_url(),
    }))
    .unwrap();
    connector_business_central::BcClient::connect(&settings, secrets().as_ref()).await.unwrap()
}

/// Polls `check` every 20 ms until it returns something, for at most `limit`.
pub async fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(t) = check() {
            return Some(t);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
