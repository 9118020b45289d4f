//! The GP client: URLs for both interfaces, SOAP calls, SBA GETs, and GP's errors in plain words.

use std::time::Duration;

use connector_http::client::RetryPolicy;
use hyper::Method;
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;

use crate::settings::{GpAuth, GpInterface, GpSettings};
use crate::soap::{self, AnswerError, Fault};
use crate::summary::{self, Field, Summary};
use crate::transport::{Credentials, Endpoint, ErrorKind, Request, Transport, TransportError, basic_header};
use crate::xml::Element;

/// What a GP call can fail with.
#[derive(Debug, Clone, PartialEq)]
pub enum GpError {
    /// Network, TLS or authentication.
    Transport(TransportError),
    /// GP refused the request (SOAP fault).
    Fault(Fault),
    /// An HTTP error without a SOAP fault (SBA errors, proxies, outages after retries).
    Http {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        message: String,
    },
    /// An answer we cannot read.
    Invalid(String),
}

impl std::fmt::Display for GpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpError::Transport(e) => e.fmt(f),
            GpError::Fault(fault) => write!(f, "GP refused the request: {}", fault.message),
            GpError::Http { status, message } => write!(f, "HTTP {status}: {message}"),
            GpError::Invalid(m) => f.write_str(m),
        }
    }
}

impl GpError {
    /// The credentials were refused (not worth another request in this run).
    pub fn is_auth(&self) -> bool {
        matches!(self, GpError::Transport(TransportError { kind: ErrorKind::Unauthorized(_), .. }))
            || matches!(self, GpError::Http { status: 401 | 403, .. })
    }
}

/// A client for one GP company.
pub struct GpClient {
    /// The connections (and their NTLM contexts) to the server.
    pub transport: Transport,
    /// The connection's settings, validated.
    pub settings: GpSettings,
    /// The SOAP service path (`/DynamicsGPWebServices/DynamicsGPService.asmx`).
    soap_path: String,
    /// `…/GPService/Tenants(<tenant>)/Companies(<company>)`.
    sba_base: String,
    retry: RetryPolicy,
}

/// The legacy service's default address below the host.
const LEGACY_PATH: &str = "/DynamicsGPWebServices/DynamicsGPService.asmx";

/// The SOAP path for a configured URL path: as given when it names the `.asmx`, completed when
/// it stops at `/DynamicsGPWebServices` or is empty.
pub fn soap_path(path: &str) -> String {
    let lower = path.to_ascii_lowercase();
    if path.is_empty() {
        LEGACY_PATH.into()
    } else if lower.ends_with("/dynamicsgpwebservices") {
        format!("{path}/DynamicsGPService.asmx")
    } else {
        path.into()
    }
}

/// Percent-encodes one SBA key segment (company names hold spaces, commas, parentheses, `ñ`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `<path>/GPService/Tenants(<tenant>)/Companies(<company>)`; a URL already ending at
/// `/GPService` is not doubled.
pub fn sba_base(path: &str, tenant: &str, company: &str) -> String {
    let root =
        if path.to_ascii_lowercase().ends_with("/gpservice") { path.to_owned() } else { format!("{path}/GPService") };
    format!("{root}/Tenants({})/Companies({})", encode_segment(tenant), encode_segment(company))
}

impl GpClient {
    /// A client; nothing is sent yet. `password` is the resolved secret.
    pub fn new(settings: GpSettings, password: String) -> Result<GpClient, String> {
        settings.validate()?;
        let endpoint = Endpoint::parse(&settings.url)?;
        let (domain, user) = settings.account();
        let credentials = match settings.auth {
            GpAuth::Basic => {
                if !endpoint.https && !endpoint.is_loopback() {
                    return Err("`auth: basic` sends the password as is: it needs an https URL".into());
                }
                let name = if domain.is_empty() { user.clone() } else { format!("{domain}\\{user}") };
                Credentials::Basic { header: basic_header(&name, &password)? }
            }
            GpAuth::Ntlm | GpAuth::Negotiate => {
                Credentials::Windows { domain, user, password, prefer_negotiate: settings.auth == GpAuth::Negotiate }
            }
        };
        let transport = Transport::new(
            endpoint.clone(),
            credentials,
            settings.account_name(),
            Duration::from_secs(settings.timeout_seconds.max(1)),
            settings.max_in_flight.max(1),
        )?;
        let company = settings.company.clone().unwrap_or_default();
        Ok(GpClient {
            soap_path: soap_path(&endpoint.path),
            sba_base: sba_base(&endpoint.path, &settings.tenant, &company),
            retry: RetryPolicy { attempts: settings.max_attempts.max(1), ..RetryPolicy::default() },
            transport,
            settings,
        })
    }

    /// SOAP or SBA, as configured.
    pub fn interface(&self) -> GpInterface {
        self.settings.interface
    }

    /// The SOAP company key (validated present for `interface: soap`).
    pub fn company_key(&self) -> i32 {
        self.settings.company_key.unwrap_or(-1)
    }

    /// The retry policy of reads.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// Calls a SOAP operation and returns its `<OpResult>`.
    pub async fn soap(&self, operation: &str, envelope: String, policy: RetryPolicy) -> Result<Element, GpError> {
        self.soap_with(operation, envelope, policy, |text| soap::result(text, operation)).await
    }

    /// Calls a `Get…List` operation and returns its summaries, keeping only `fields` of each
    /// (read as the answer streams: a list answer may hold a whole company).
    pub async fn soap_list(
        &self,
        operation: &str,
        envelope: String,
        policy: RetryPolicy,
        fields: &[Field],
    ) -> Result<Vec<Summary>, GpError> {
        self.soap_with(operation, envelope, policy, |text| summary::list(text, operation, fields)).await
    }

    /// Calls a SOAP operation and reads its answer with `read`.
    async fn soap_with<T>(
        &self,
        operation: &str,
        envelope: String,
        policy: RetryPolicy,
        read: impl FnOnce(&str) -> Result<T, AnswerError>,
    ) -> Result<T, GpError> {
        let request = Request {
            method: Method::POST,
            path: self.soap_path.clone(),
            headers: vec![
                (CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8")),
                (
                    HeaderName::from_static("soapaction"),
                    HeaderValue::from_str(&soap::soap_action(operation))
                        .map_err(|e| GpError::Invalid(e.to_string()))?,
                ),
            ],
            body: Bytes::from(envelope),
        };
        let response = self.transport.send(&request, policy).await.map_err(GpError::Transport)?;
        // Borrowed when it is valid UTF-8 (as `Response::text`, without a copy of a large answer).
        let text = String::from_utf8_lossy(&response.body);
        let status = response.status.as_u16();
        // A fault comes with 500; read it whatever the status, then judge the status.
        match read(&text) {
            Err(AnswerError::Fault(f)) => Err(GpError::Fault(f)),
            _ if !response.status.is_success() => Err(GpError::Http { status, message: shorten(&text) }),
            Ok(result) => Ok(result),
            Err(e) => Err(GpError::Invalid(e.to_string())),
        }
    }

    /// GETs an SBA path below `Companies(…)/` and parses the JSON.
    pub async fn sba_get(&self, relative: &str, policy: RetryPolicy) -> Result<Value, GpError> {
        let request = Request {
            method: Method::GET,
            path: format!("{}/{}", self.sba_base, relative.trim_start_matches('/')),
            headers: vec![(ACCEPT, HeaderValue::from_static("application/json"))],
            body: Bytes::new(),
        };
        let response = self.transport.send(&request, policy).await.map_err(GpError::Transport)?;
        let text = response.text();
        if !response.status.is_success() {
            return Err(GpError::Http { status: response.status.as_u16(), message: shorten(&text) });
        }
        serde_json::from_str(&text).map_err(|e| GpError::Invalid(format!("SBA's answer is not JSON: {e}")))
    }

    /// The SBA path of one record in a collection: `<collection>(<key>)`.
    pub fn sba_item(collection: &str, key: &str) -> String {
        format!("{}({})", collection.trim_end_matches('/'), encode_segment(key))
    }
}

fn shorten(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &t[..cut]),
        None => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soap_paths_are_completed() {
        assert_eq!(soap_path(""), LEGACY_PATH);
        assert_eq!(soap_path("/DynamicsGPWebServices"), LEGACY_PATH);
        assert_eq!(
            soap_path("/dynamicsgpwebservices/DynamicsGPService.asmx"),
            "/dynamicsgpwebservices/DynamicsGPService.asmx"
        );
    }

    #[test]
    fn sba_paths_encode_company_names() {
        assert_eq!(
            sba_base("", "DefaultTenant", "COMPAÑIA DE PRUEBA"),
            "/GPService/Tenants(DefaultTenant)/Companies(COMPA%C3%91IA%20DE%20PRUEBA)"
        );
        assert_eq!(
            sba_base("/GPService", "T", "Fabrikam, Inc."),
            "/GPService/Tenants(T)/Companies(Fabrikam%2C%20Inc.)"
        );
        assert_eq!(GpClient::sba_item("Sales/Customers", "AARON FIT"), "Sales/Customers(AARON%20FIT)");
    }
}
