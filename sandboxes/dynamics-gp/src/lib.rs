//! A strict local Microsoft Dynamics GP for end-to-end tests of the GP connector.
//!
//! "A sandbox kinder than the real service is a bug": everything here follows
//! `shared/reference/dynamics-gp.md`, and where the reference is silent the sandbox takes the
//! stricter choice and documents it (list below).
//!
//! What it serves (one HTTP/1.1 listener on `127.0.0.1:PORT`, no HTTP/2):
//! - the legacy SOAP 1.1 endpoint `POST /DynamicsGPWebServices/DynamicsGPService.asmx`
//!   (`GET …?wsdl` serves the WSDL of the implemented subset): `GetCompanyList`,
//!   `GetCustomerList`, `GetCustomerByKey`, `GetReceivablesInvoiceList`,
//!   `GetReceivablesInvoiceByKey`, `GetSalesInvoiceList`, `GetSalesInvoiceByKey`,
//!   `GetChangedInternetAddressKeyList` (entity action tracking, below). Dispatch on
//!   `SOAPAction` (`http://schemas.microsoft.com/dynamics/gp/2006/01/<Operation>`), requests
//!   validated against the subset ([`check_soap_request`] exposes the same check), lists never
//!   paged, WCF/GP-shaped `s:Fault`s;
//! - SBA REST under `/GPService/Tenants({tenant})/Companies({company name})/Sales/…` (JSON);
//! - real NTLM on every request (crate `ntlm`), bound to the TCP connection like IIS;
//!   `Negotiate` (raw or SPNEGO-wrapped NTLM) and SBA `Basic` when configured;
//! - `/_sandbox/…`: the admin API (no auth, not logged, no faults), mirrored by [`Admin`].
//!
//! Choices where the reference is silent (each documented at its module):
//! - `ModifiedDate`/`LastModifiedDate` of customers and documents = the row's `DEX_ROW_TS`
//!   (UTC, SQL `datetime` precision, written without offset); `CreatedDate` = date-only
//!   `CREATDDT`; "no date" = `1900-01-01T00:00:00` (module `render`).
//! - E-mail lives in `SY01200`; editing it does **not** bump the customer's timestamp, address
//!   edits do (reference §3.1; module `model`).
//! - Entity action tracking, which GP's `GetChanged…KeyList` methods read ("entity change
//!   tracking must be enabled for this method to return valid results", Microsoft's method
//!   pages): off in every company until enabled per business object and action — in process
//!   `Admin::set_action_tracking(-1, "InternetAddress", &[Created, Updated, Deleted])`, over
//!   HTTP `PUT /_sandbox/companies/-1/action-tracking/InternetAddress`. On a real install an
//!   administrator enables it for the company; which tool does it is in no source at hand
//!   (reference §8.4). Only actions made while tracking is on are logged, whatever made them;
//!   a call finds nothing else, and no fault says tracking is off (Microsoft documents invalid
//!   results, not an error). `GetChangedInternetAddressKeyList` returns one
//!   `ChangedInternetAddressKey` per logged action, oldest first, not one per address.
//! - Criteria: `From`/`To` inclusive and only together, `GreaterThan`/`LessThan` exclusive,
//!   text case-insensitive; ambiguous or contradictory restrictions are a fault; every
//!   `minOccurs=1` nil member of a nullable restriction must be sent (modules `criteria`,
//!   `schema`). Unknown or misplaced elements are refused, although .NET would ignore them.
//! - Faults: WCF's own texts for `ActionNotSupported` and `DeserializationFailed`; GP's
//!   validation faults are `s:Client` with the sandbox's wording and a WCF `ExceptionDetail`
//!   (module `soap`). A captured real fault should replace them.
//! - A posted invoice exists in SOP history and RM (open or history); payments and voids change
//!   the RM side only; voiding needs an unpaid document and moves it to history (module `model`).
//! - SBA routes, JSON shapes (`{"Payload": …, "Messages": []}`), 400 for any query option
//!   (module `sba`).
//! - Faults apply to authenticated requests only (the NTLM legs are never disturbed).
//!
//! Memory: about 1.8 kB per stored customer (50,000 ≈ 90 MB) and list responses are rendered
//! in chunks while being sent; for a memory benchmark of the connector, run the sandbox binary
//! (`dynamics-gp-sandbox --seed FILE`, format [`SeedFile`]) in its own process.
//!
//! Module map: `server` (accept loop, connections, routing, faults, log), `net` (killable
//! streams), `auth` (per-connection NTLM/Basic), `soap` (endpoint and faults), `schema` (the
//! WSDL subset as data, validation, WSDL), `criteria` (restrictions), `render` (SOAP objects),
//! `sba` (REST), `model` (GP tables), `seed` (sample data), `admin`, `clock`, `faults`, `log`,
//! `config`, `body` (streamed bodies), `xml`, `state`.

mod admin;
mod auth;
mod body;
mod clock;
mod config;
mod criteria;
mod faults;
mod log;
mod model;
mod render;
mod sba;
mod schema;
mod seed;
mod server;
mod soap;
mod state;
mod xml;

pub use admin::{Admin, AdminError};
pub use config::{DEFAULT_DOMAIN, DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig};
pub use faults::Faults;
pub use log::LoggedRequest;
pub use model::{AddressInput, CustomerInput, DataModificationAction, InternetAddresses, InvoiceInput, LineInput};
pub use seed::{SeedCompany, SeedCustomer, SeedFile, SeedInvoice, SeedMany, seed_many_customers};
pub use server::{SOAP_PATH, Sandbox, parse_accounts, run_cli, run_with};

/// The GP namespace (`gp:`): operations, criteria, business objects, keys.
pub const GP_NAMESPACE: &str = xml::GP;
/// The Dynamics namespace (`d:`): `Context`, `OrganizationKey`, `CompanyKey`, `CurrencyType`.
pub const DYNAMICS_NAMESPACE: &str = xml::D;

/// Checks a SOAP request body against the element names, namespaces, order, occurrence and
/// simple types of the WSDL subset the sandbox serves. `Err` lists every problem, each with its
/// path (`/Envelope/Body/GetCustomerList/criteria/ModifiedDate: missing required element …`).
pub fn check_soap_request(body: &str) -> Result<(), Vec<String>> {
    schema::check_soap_request(body)
}

/// Checks a SOAP response body (as the sandbox sends it) against the same subset: the
/// `<Op>Response/<Op>Result` element and everything inside it.
pub fn check_soap_response(body: &str) -> Result<(), Vec<String>> {
    schema::check_soap_response(body)
}

/// The `SOAPAction` header value for an operation, quoted as SOAP 1.1 writes it.
pub fn soap_action(operation: &str) -> String {
    format!("\"{}/{operation}\"", xml::GP)
}
