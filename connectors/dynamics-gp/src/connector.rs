//! The `dynamics-gp` connector: its description to the engine, and the live connection.

use std::sync::Arc;

use async_trait::async_trait;
use connector_http::client::RetryPolicy;
use engine::connector::{
    ConnectContext, Connection, Connector, ConnectorError, Entities, EntitySpec, ReadRequest, RecordPages,
    RequestInput, ResourceSpec, TargetRequest, WriteOutcome,
};
use schemars::Schema;
use serde_json::{Map, Value};

use crate::client::{GpClient, GpError};
use crate::settings::{GpInterface, GpSettings};
use crate::soap::{self, KeyRange};
use crate::source::{Entity, SbaPages, SoapPages, since_of, soap_by_keys};
use crate::transport::ErrorKind;

/// The connector (a source only: GP is read, never written).
pub struct DynamicsGpConnector;

#[async_trait]
impl Connector for DynamicsGpConnector {
    fn name(&self) -> &'static str {
        "dynamics-gp"
    }

    fn description(&self) -> &'static str {
        "Microsoft Dynamics GP (SOAP web services or SBA REST, Windows/NTLM auth): customers and receivables invoices."
    }

    fn settings_schema(&self) -> Schema {
        engine::schema::inline_schema_for::<GpSettings>()
    }

    fn entities(&self) -> Entities {
        Entities::Named(vec![
            EntitySpec {
                name: "customers",
                description: "customers changed since the watermark (cursor `ModifiedDate`, moved up to a later change of the customer's e-mail: `internet_addresses_modified`; SOAP only, with GP's entity action tracking on for internet addresses), each with its bill-to address and e-mail (`email`, `email_others`)",
            },
            EntitySpec {
                name: "invoices",
                description: "posted receivables invoices changed since the watermark (cursor `ModifiedDate`), with `payment_status` (paid, pending, cancelled)",
            },
        ])
    }

    fn resources(&self) -> Vec<ResourceSpec> {
        Vec::new()
    }

    fn build_request(&self, resource: &str, _input: &RequestInput<'_>) -> Result<TargetRequest, String> {
        Err(format!(
            "dynamics-gp is a source only: it reads customers and invoices and writes nothing, so `{resource}` cannot be a target"
        ))
    }

    async fn connect(
        &self,
        settings: &Map<String, Value>,
        context: &ConnectContext,
    ) -> Result<Arc<dyn Connection>, ConnectorError> {
        let settings: GpSettings = serde_json::from_value(Value::Object(settings.clone()))
            .map_err(|e| ConnectorError::new(format!("dynamics-gp settings: {e}")))?;
        let password = context
            .secrets
            .resolve(&settings.password)
            .map_err(|e| ConnectorError::new(format!("the GP password ({}): {e}", settings.password.describe())))?;
        let client = GpClient::new(settings, password).map_err(|e| ConnectorError::new(format!("dynamics-gp: {e}")))?;
        Ok(Arc::new(GpConnection { client: Arc::new(client) }))
    }
}

/// A live connection: the client and its pool of authenticated connections.
pub struct GpConnection {
    /// The client shared by every read of this connection.
    pub client: Arc<GpClient>,
}

impl GpConnection {
    /// A connection from settings and the resolved password (tests, tools).
    pub fn new(settings: GpSettings, password: String) -> Result<GpConnection, String> {
        Ok(GpConnection { client: Arc::new(GpClient::new(settings, password)?) })
    }

    fn page_size(&self, request: &ReadRequest) -> usize {
        self.client.settings.page_size.unwrap_or(request.page_size).max(1) as usize
    }

    /// `check` talks once: a person is waiting, and a retry loop would hide what failed.
    fn once() -> RetryPolicy {
        RetryPolicy { attempts: 1, ..RetryPolicy::default() }
    }

    fn explain(&self, e: &GpError) -> String {
        let s = &self.client.settings;
        match e {
            GpError::Transport(t) => match t.kind {
                ErrorKind::Unauthorized(_) => t.message.clone(),
                _ => format!("cannot reach GP at {}: {}", s.url, t.message),
            },
            GpError::Fault(f) if s.interface == GpInterface::Soap => format!(
                "GP answered with a SOAP fault for company key {}: {} (is {} the numeric company id? Fabrikam's is -1; is {} set up for it in Dynamics Security?)",
                self.client.company_key(),
                f.message,
                self.client.company_key(),
                s.account_name()
            ),
            GpError::Http { status: 404, .. } if s.interface == GpInterface::Sba => format!(
                "SBA answered 404 for tenant `{}`, company `{}`: is the company's display name right (not its database name), and do `sba_paths` match this server? ({e})",
                s.tenant,
                s.company.as_deref().unwrap_or_default()
            ),
            GpError::Http { status: 403, .. } => format!(
                "{} is authenticated but not allowed (403): map the Windows account to a GP user with access to the company ({e})",
                s.account_name()
            ),
            _ => format!("GP at {}: {e}", s.url),
        }
    }

    async fn check_soap(&self) -> Result<String, ConnectorError> {
        let key = self.client.company_key();
        // The company list (system database) names the company, or shows the key is unknown.
        let companies = match self.client.soap("GetCompanyList", soap::company_list(), Self::once()).await {
            Ok(list) => Some(
                list.children
                    .iter()
                    .filter_map(|c| Some((c.text_at(&["Key", "Id"])?, c.text_at(&["Name"]).unwrap_or_default())))
                    .collect::<Vec<_>>(),
            ),
            // Some installs deny the system database to integration users: go on to the company.
            Err(GpError::Fault(_)) => None,
            Err(e) => return Err(ConnectorError::new(self.explain(&e))),
        };
        let name =
            companies.as_ref().and_then(|cs| cs.iter().find(|(id, _)| id.parse() == Ok(key)).map(|(_, n)| n.clone()));
        if let Some(cs) = &companies
            && name.is_none()
        {
            let known: Vec<String> = cs.iter().map(|(id, n)| format!("{id} ({n})")).collect();
            return Err(ConnectorError::new(format!(
                "company key {key} is not a GP company on this server (companies: {})",
                if known.is_empty() { "none visible to this user".to_owned() } else { known.join(", ") }
            )));
        }
        // A narrow customer read proves the company context and read permission.
        let probe = soap::customer_list(key, None, &KeyRange { after: None, before: Some("0".into()) });
        self.client
            .soap("GetCustomerList", probe, Self::once())
            .await
            .map_err(|e| ConnectorError::new(self.explain(&e)))?;
        // Incremental customer reads also ask for e-mail changes: a policy that denies it would
        // fail every run after the first, so say it now. (Whether tracking is on, GP does not
        // tell: without it the answer is merely empty.)
        let probe = soap::changed_customer_internet_addresses(key, &jiff::Timestamp::now());
        self.client.soap("GetChangedInternetAddressKeyList", probe, Self::once()).await.map_err(|e| {
            ConnectorError::new(format!(
                "{} cannot ask GP which customers' e-mail changed (GetChangedInternetAddressKeyList), which every incremental customer read does: {}",
                self.client.settings.account_name(),
                self.explain(&e)
            ))
        })?;
        Ok(format!(
            "GP web services at {} answer; {} is authenticated ({}); company {key}{} can read customers and their e-mail changes (these need GP's entity action tracking on for InternetAddress)",
            self.client.settings.url,
            self.client.settings.account_name(),
            self.client.transport.scheme().unwrap_or_else(|| "no authentication asked".into()),
            name.map(|n| format!(" ({n})")).unwrap_or_default(),
        ))
    }

    async fn check_sba(&self) -> Result<String, ConnectorError> {
        let s = &self.client.settings;
        self.client
            .sba_get(&s.sba_paths.customers, Self::once())
            .await
            .map_err(|e| ConnectorError::new(self.explain(&e)))?;
        Ok(format!(
            "GP SBA at {} answers; {} is authenticated ({}); tenant `{}`, company `{}` can read customers",
            s.url,
            s.account_name(),
            self.client.transport.scheme().unwrap_or_else(|| "no authentication asked".into()),
            s.tenant,
            s.company.as_deref().unwrap_or_default()
        ))
    }
}

#[async_trait]
impl Connection for GpConnection {
    async fn read(&self, request: &ReadRequest) -> Result<Box<dyn RecordPages>, ConnectorError> {
        let entity = Entity::parse(&request.entity).map_err(ConnectorError::new)?;
        let since = since_of(request).map_err(ConnectorError::new)?;
        let page = self.page_size(request);
        Ok(match self.client.interface() {
            GpInterface::Soap => Box::new(SoapPages::new(self.client.clone(), entity, since, page)),
            GpInterface::Sba => Box::new(SbaPages::new(self.client.clone(), entity, since, page)),
        })
    }

    async fn read_current(
        &self,
        request: &ReadRequest,
        id_field: &str,
        ids: &[Value],
    ) -> Result<Vec<Value>, ConnectorError> {
        let entity = Entity::parse(&request.entity).map_err(ConnectorError::new)?;
        if self.client.interface() == GpInterface::Soap && id_field == "Id" {
            return soap_by_keys(&self.client, entity, ids).await;
        }
        let mut pages = self.read(&ReadRequest { since: None, ..request.clone() }).await?;
        let mut found = Vec::new();
        while let Some(page) = pages.next_page().await? {
            found.extend(page.into_iter().filter(|r| r.get(id_field).is_some_and(|id| ids.contains(id))));
        }
        Ok(found)
    }

    async fn write(&self, _request: &TargetRequest) -> WriteOutcome {
        WriteOutcome::Failed {
            transient: false,
            status: None,
            class: "unsupported".into(),
            message: "dynamics-gp is a source only and writes nothing".into(),
        }
    }

    fn default_concurrency(&self) -> usize {
        self.client.settings.max_in_flight.max(1)
    }

    async fn check(&self) -> Result<String, ConnectorError> {
        match self.client.interface() {
            GpInterface::Soap => self.check_soap().await,
            GpInterface::Sba => self.check_sba().await,
        }
    }
}
