//! The `business-central` connector: registration with the engine and the live connection.

use std::sync::Arc;

use async_trait::async_trait;
use engine::connector::{
    ConnectContext, Connection, Connector, ConnectorError, Entities, ParamSpec, ReadRequest, RecordPages, RequestInput,
    ResourceSpec, TargetRequest, WriteOutcome,
};
use schemars::Schema;
use serde_json::{Map, Value};

use crate::client::BcClient;
use crate::settings::BcSettings;
use crate::source::{BcPages, first_url};

/// The connector.
pub struct BusinessCentralConnector;

fn match_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec {
            name: "match_field",
            description: "the field that finds the record (default `email`)",
            required: false,
        },
        ParamSpec { name: "match_value", description: "its value, e.g. `{{ record.email }}`", required: true },
        ParamSpec {
            name: "create_if_missing",
            description: "create the record when none matches (default false)",
            required: false,
        },
    ]
}

#[async_trait]
impl Connector for BusinessCentralConnector {
    fn name(&self) -> &'static str {
        "business-central"
    }

    fn description(&self) -> &'static str {
        "Dynamics 365 Business Central API v2.0 and custom APIs: customers, items, contacts, sales invoices; consent write-back."
    }

    fn settings_schema(&self) -> Schema {
        engine::schema::inline_schema_for::<BcSettings>()
    }

    fn entities(&self) -> Entities {
        Entities::Any(
            "a v2.0 entity set (`customers`, `items`, `contacts`, `salesInvoices`) or a custom API entity `publisher/group/version/entitySet`",
        )
    }

    fn resources(&self) -> Vec<ResourceSpec> {
        let mut record = match_params();
        record.insert(
            0,
            ParamSpec {
                name: "entity",
                description: "the entity set, e.g. `contoso/marketing/v1.0/customerConsents`",
                required: true,
            },
        );
        vec![
            ResourceSpec {
                name: "customer",
                description: "PATCH the customer found by a field (with If-Match).",
                params: match_params(),
            },
            ResourceSpec {
                name: "record",
                description: "PATCH (or create) a record of any entity set, e.g. a custom consent API.",
                params: record,
            },
        ]
    }

    fn build_request(&self, resource: &str, input: &RequestInput<'_>) -> Result<TargetRequest, String> {
        crate::write::build(resource, input)
    }

    async fn connect(
        &self,
        settings: &Map<String, Value>,
        context: &ConnectContext,
    ) -> Result<Arc<dyn Connection>, ConnectorError> {
        let settings: BcSettings = serde_json::from_value(Value::Object(settings.clone()))
            .map_err(|e| ConnectorError::new(format!("business-central settings: {e}")))?;
        let client = BcClient::connect(&settings, context.secrets.as_ref()).await?;
        Ok(Arc::new(BcConnection { client: Arc::new(client), settings }))
    }
}

struct BcConnection {
    client: Arc<BcClient>,
    settings: BcSettings,
}

#[async_trait]
impl Connection for BcConnection {
    async fn read(&self, request: &ReadRequest) -> Result<Box<dyn RecordPages>, ConnectorError> {
        let url = first_url(&self.client, request).map_err(ConnectorError::new)?;
        Ok(Box::new(BcPages { client: self.client.clone(), next: Some(url), page_size: request.page_size }))
    }

    async fn write(&self, request: &TargetRequest) -> WriteOutcome {
        crate::write::write(&self.client, request).await
    }

    fn default_concurrency(&self) -> usize {
        self.settings.max_in_flight.clamp(1, 5)
    }

    async fn check(&self) -> Result<String, ConnectorError> {
        let url = format!("{}?$top=1", self.client.entity_url("v2.0", "customers"));
        match self.client.get(&url, None).await {
            Ok(_) => Ok(format!(
                "tenant {}, environment {}, company `{}` ({}); token and read permission work",
                self.settings.tenant, self.settings.environment, self.client.company_name, self.client.company_id
            )),
            Err(e) => Err(ConnectorError::new(crate::client::explain_api_error(&e, &self.settings.environment))),
        }
    }
}
