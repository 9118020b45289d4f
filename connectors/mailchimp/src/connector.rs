//! The `mailchimp` connector: registration with the engine and the live connection.

use std::sync::Arc;

use async_trait::async_trait;
use engine::connector::{
    ConnectContext, Connection, Connector, ConnectorError, Entities, ReadRequest, RecordPages, RequestInput,
    ResourceSpec, TargetRequest, WriteOutcome,
};
use schemars::Schema;
use serde_json::{Map, Value, json};

use crate::client::McClient;
use crate::resources;
use crate::settings::MailchimpSettings;
use crate::write::{Caches, write};

/// The connector.
pub struct MailchimpConnector;

impl MailchimpConnector {
    /// Parses settings, with the message a user sees.
    pub fn settings(settings: &Map<String, Value>) -> Result<MailchimpSettings, ConnectorError> {
        serde_json::from_value(Value::Object(settings.clone()))
            .map_err(|e| ConnectorError::new(format!("mailchimp settings: {e}")))
    }
}

#[async_trait]
impl Connector for MailchimpConnector {
    fn name(&self) -> &'static str {
        "mailchimp"
    }

    fn description(&self) -> &'static str {
        "Mailchimp Marketing API v3.0: audience members, tags, e-commerce stores, products, customers and orders."
    }

    fn settings_schema(&self) -> Schema {
        engine::schema::inline_schema_for::<MailchimpSettings>()
    }

    fn entities(&self) -> Entities {
        // The return flow reads webhook events, delivered to `ml-connector serve`.
        Entities::Named(Vec::new())
    }

    fn resources(&self) -> Vec<ResourceSpec> {
        resources::specs()
    }

    fn build_request(&self, resource: &str, input: &RequestInput<'_>) -> Result<TargetRequest, String> {
        resources::build(resource, input)
    }

    async fn connect(
        &self,
        settings: &Map<String, Value>,
        context: &ConnectContext,
    ) -> Result<Arc<dyn Connection>, ConnectorError> {
        let settings = Self::settings(settings)?;
        let client = McClient::connect(&settings, context.secrets.as_ref()).await?;
        Ok(Arc::new(MailchimpConnection { client, caches: Caches::default(), settings }))
    }
}

/// Bulk keys of member writes (batch subscribe) and of e-commerce writes (batch operations).
const MEMBERS: &str = "members:";
const BATCH: &str = "batch:";

struct MailchimpConnection {
    client: McClient,
    caches: Caches,
    settings: MailchimpSettings,
}

#[async_trait]
impl Connection for MailchimpConnection {
    async fn read(&self, _request: &ReadRequest) -> Result<Box<dyn RecordPages>, ConnectorError> {
        Err(ConnectorError::new("Mailchimp events arrive as webhooks; run `ml-connector serve` for the return flow"))
    }

    async fn write(&self, request: &TargetRequest) -> WriteOutcome {
        if self.settings.put_orders && request.options.get("resource") == Some(&json!(resources::ORDER)) {
            let mut r = request.clone();
            r.options.insert("put_orders".into(), json!(true));
            return write(&self.client, &self.caches, &r).await;
        }
        write(&self.client, &self.caches, request).await
    }

    fn default_concurrency(&self) -> usize {
        self.settings.max_connections.clamp(1, 10)
    }

    /// Member upserts to one audience travel together through batch subscribe; products,
    /// e-commerce customers and orders of one store through batch operations (unless
    /// `batch_operations` is off).
    fn bulk_key(&self, request: &TargetRequest) -> Option<String> {
        let resource = request.options.get("resource").and_then(Value::as_str)?;
        let segment = |n: usize| request.path.split('/').nth(n);
        match resource {
            resources::MEMBER => segment(2).map(|list| format!("{MEMBERS}{list}")),
            resources::PRODUCT | resources::CUSTOMER | resources::ORDER if self.settings.batch_operations => {
                segment(3).map(|store| format!("{BATCH}{resource}:{store}"))
            }
            _ => None,
        }
    }

    /// Batch subscribe takes at most 500 members; batch operations get as many per batch (one
    /// page, at the stock page size).
    fn bulk_limit(&self) -> usize {
        500
    }

    /// A batch operation has a fixed cost (three requests and Mailchimp's queue), so only a page
    /// with many e-commerce writes is worth one.
    fn bulk_min(&self, key: &str) -> usize {
        if key.starts_with(BATCH) { crate::write::BATCH_MIN } else { 10 }
    }

    async fn write_bulk(&self, requests: &[TargetRequest]) -> Vec<WriteOutcome> {
        let Some(key) = requests.first().and_then(|r| self.bulk_key(r)) else {
            return Vec::new();
        };
        if key.starts_with(MEMBERS) {
            crate::write::members_bulk(&self.client, &self.caches, requests).await
        } else {
            crate::write::ecommerce_bulk(&self.client, &self.caches, requests, self.settings.put_orders).await
        }
    }

    async fn check(&self) -> Result<String, ConnectorError> {
        match self.client.account().await {
            Ok(a) => {
                Ok(format!("account `{}` ({}), data center {}, API {}", a.account_name, a.account_id, a.dc, a.api_base))
            }
            Err(e) if e.status == Some(401) => {
                Err(ConnectorError::new(format!("Mailchimp refused the credentials: {e}")))
            }
            Err(e) if e.status == Some(403) => Err(ConnectorError::new(format!(
                "Mailchimp refused access (wrong data center or disabled account?): {e}"
            ))),
            Err(e) => Err(ConnectorError::new(format!("cannot reach Mailchimp: {e}"))),
        }
    }
}
