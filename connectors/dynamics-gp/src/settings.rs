//! Connection settings. The doc comments become the settings' JSON schema, so they say what an
//! integrator needs to know to fill them in.

use engine::config::SecretRef;
use schemars::JsonSchema;
use serde::Deserialize;

/// Settings of a `dynamics-gp` connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpSettings {
    /// Which GP interface to talk to: `soap` (Web Services for Microsoft Dynamics GP, the legacy
    /// SOAP 1.1 endpoint; GP 10 to GP 18) or `sba` (the Service Based Architecture REST endpoint
    /// of GP 2015+). SOAP is the primary one: its criteria filter by modified date and key range.
    ///
    /// E-mail changes: GP keeps e-mail addresses in its internet addresses, and editing one does
    /// not change the customer's modified date. Over SOAP, each incremental `customers` read also
    /// asks which customers' internet addresses changed (`GetChangedInternetAddressKeyList`) and
    /// reads them again; GP answers only when entity action tracking is enabled for
    /// `InternetAddress` (creates, updates, deletes) in the company, and the account needs
    /// permission for that operation (`check` tries it). Without tracking, an e-mail-only change
    /// reaches Mailchimp with the customer's next other change. Over `sba` there is no such
    /// question (no source shows SBA exposing GP's change tracking), so e-mail-only changes are
    /// not seen at all until the customer itself changes.
    #[serde(default)]
    pub interface: GpInterface,
    /// The server. SOAP: the service address,
    /// `http://gpserver:48620/DynamicsGPWebServices/DynamicsGPService.asmx` (a URL ending at
    /// `/DynamicsGPWebServices` gets `/DynamicsGPService.asmx` appended). SBA: the web components'
    /// root, `https://gpweb.contoso.com` (`/GPService/Tenants(…)/Companies(…)/…` is appended).
    /// `http` and `https` are supported.
    pub url: String,
    /// SOAP: the numeric GP company id (`Context.OrganizationKey`, a `CompanyKey`); the Fabrikam
    /// sample company is `-1`. Not the database name (`TWO`).
    #[serde(default)]
    pub company_key: Option<i32>,
    /// SBA: the tenant in `Tenants(…)`; a single-tenant install calls it `DefaultTenant`.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// SBA: the GP company's display name in `Companies(…)` (`Fabrikam, Inc.`), not its
    /// database name; it is URL-encoded for you.
    #[serde(default)]
    pub company: Option<String>,
    /// The Windows domain of the account (NetBIOS name, e.g. `GPDOMAIN`). May be empty when the
    /// server should use its own; `user` may also be written `DOMAIN\user`.
    #[serde(default)]
    pub domain: String,
    /// The Windows account GP knows (mapped to a GP user with access to the company).
    pub user: String,
    /// Where the account's password is kept.
    pub password: SecretRef,
    /// How to authenticate: `ntlm` (default: NTLM, or raw NTLM inside `Negotiate` when the server
    /// offers only that), `negotiate` (always the `Negotiate` scheme, carrying NTLM: Kerberos is
    /// not implemented), or `basic` (SBA's Basic option; refused over plain `http` except to a
    /// loopback address, since it sends the password as is).
    #[serde(default)]
    pub auth: GpAuth,
    /// SBA: the paths of the collections below `Companies(…)/`. No public capture shows SBA's
    /// routes, so they are settings; the defaults follow the documented `Sales` domain.
    #[serde(default)]
    pub sba_paths: SbaPaths,
    /// Seconds before a request (one leg of the handshake included) times out.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: u64,
    /// Requests in flight at once, and so authenticated connections kept open (each has its own
    /// NTLM context). GP's service host is a single Windows service: keep it small.
    #[serde(default = "default_in_flight")]
    #[schemars(range(min = 1, max = 16))]
    pub max_in_flight: usize,
    /// Attempts per request, the first included, for network failures, timeouts and 5xx.
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1))]
    pub max_attempts: u32,
    /// Records per key range, instead of the pipeline's `page_size`. GP's lists cannot page, so
    /// the connector reads key ranges it sizes to about this many records.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub page_size: Option<u32>,
}

/// The interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GpInterface {
    /// The legacy SOAP endpoint (`DynamicsGPService.asmx`, basicHttpBinding).
    #[default]
    Soap,
    /// The Service Based Architecture REST endpoint (`/GPService/Tenants(…)/Companies(…)/…`).
    Sba,
}

/// The HTTP authentication scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GpAuth {
    /// NTLM (what the legacy WSDL's policy asks for); `Negotiate` with raw NTLM tokens when the
    /// server offers only `Negotiate`.
    #[default]
    Ntlm,
    /// The `Negotiate` scheme with raw NTLM tokens (no Kerberos: see the crate docs).
    Negotiate,
    /// `Authorization: Basic` on every request.
    Basic,
}

/// SBA collection paths, relative to `…/Companies(<company>)/`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SbaPaths {
    /// Customers: the list at this path, one customer at `<path>(<id>)`.
    #[serde(default = "default_sba_customers")]
    pub customers: String,
    /// Receivables invoices: the list at this path, one at `<path>(<number>)`.
    #[serde(default = "default_sba_invoices")]
    pub invoices: String,
}

impl Default for SbaPaths {
    fn default() -> Self {
        SbaPaths { customers: default_sba_customers(), invoices: default_sba_invoices() }
    }
}

fn default_sba_customers() -> String {
    "Sales/Customers".into()
}

fn default_sba_invoices() -> String {
    "Sales/ReceivablesInvoices".into()
}

fn default_tenant() -> String {
    "DefaultTenant".into()
}

fn default_timeout() -> u64 {
    120
}

fn default_in_flight() -> usize {
    4
}

fn default_attempts() -> u32 {
    5
}

impl GpSettings {
    /// The account as `(domain, user)`: `DOMAIN\user` in `user` is split when `domain` is empty.
    pub fn account(&self) -> (String, String) {
        match self.user.split_once('\\') {
            Some((d, u)) if self.domain.is_empty() => (d.to_owned(), u.to_owned()),
            _ => (self.domain.clone(), self.user.clone()),
        }
    }

    /// `DOMAIN\user` for messages.
    pub fn account_name(&self) -> String {
        match self.account() {
            (d, u) if d.is_empty() => u,
            (d, u) => format!("{d}\\{u}"),
        }
    }

    /// Checks what serde cannot: the fields each interface needs.
    pub fn validate(&self) -> Result<(), String> {
        match self.interface {
            GpInterface::Soap if self.company_key.is_none() => {
                Err("`company_key` (the numeric GP company id, e.g. -1 for Fabrikam) is required for `interface: soap`"
                    .into())
            }
            GpInterface::Sba if self.company.as_deref().is_none_or(str::is_empty) => {
                Err("`company` (the GP company name, e.g. `Fabrikam, Inc.`) is required for `interface: sba`".into())
            }
            _ if self.user.trim().is_empty() => Err("`user` is empty".into()),
            _ => Ok(()),
        }
    }
}
