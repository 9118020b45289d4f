//! A strict local sandbox of the Microsoft Dynamics 365 Business Central API v2.0, with the
//! Microsoft Entra ID token endpoint in front of it.
//!
//! End-to-end tests of the BC connector need a BC that behaves like the real one, including
//! the parts that hurt: client-credential tokens that expire, XML-encoded enum members,
//! unquoted date literals in `$filter`, keyset paging with opaque skip tokens, `If-Match` rules
//! (missing → 400, stale → 409), per-user throttling, webhook handshakes, batched and collapsed
//! notifications with BC's retry ladder, and subscriptions deleted by a 4xx. A sandbox that is
//! kinder than the real service is a bug, so every rule follows the protocol reference
//! (`shared/reference/business-central.md`); entity shapes follow the real `$metadata`
//! (`shared/specs/business-central/api-v2.0-metadata.xml`), which the conformance test checks.
//!
//! # URLs
//!
//! - Token: `POST {base}/{tenant}/oauth2/v2.0/token` (form: `grant_type=client_credentials`,
//!   `client_id`, `client_secret` or `client_assertion` + `client_assertion_type`,
//!   `scope=https://api.businesscentral.dynamics.com/.default`).
//! - API: `{base}/v2.0/{tenant}/{environment}/api/v2.0/…` (or without `{tenant}`):
//!   `$metadata`, `companies`, `companies({id})/customers|items|contacts|salesInvoices|
//!   salesInvoiceLines`, `salesInvoices({id})/salesInvoiceLines`,
//!   `salesInvoices({id})/Microsoft.NAV.post`, `subscriptions`.
//! - Custom API: `{base}/v2.0/{tenant}/{environment}/api/contoso/marketing/v1.0/…`:
//!   `$metadata`, `companies`, `companies({id})/customerConsents` (the consent fields of the
//!   Customer table: `marketingConsent`, `consentStatus`, `consentChangedAt`, `bounced`),
//!   `subscriptions`.
//!
//! # Admin API (`/_sandbox/`, no auth, not logged, not throttled)
//!
//! `{company}` is a company id or name; bodies and answers are JSON.
//!
//! | route | does |
//! |---|---|
//! | `GET /_sandbox/companies` | `[{"id","name"}]` |
//! | `GET, POST /_sandbox/companies/{company}/customers` | list / create (body: customer fields) |
//! | `GET, PATCH /_sandbox/companies/{company}/customers/{id}` | read / modify without ETag |
//! | `GET, PATCH /_sandbox/companies/{company}/customers/{id}/consent` | the consent record |
//! | `GET, POST /_sandbox/companies/{company}/items` | list / create |
//! | `PATCH /_sandbox/companies/{company}/items/{id}` | modify |
//! | `POST /_sandbox/companies/{company}/salesInvoices` | create a draft (header fields plus `"lines": [...]`) |
//! | `GET /_sandbox/companies/{company}/salesInvoices/{id}` | an invoice with its lines |
//! | `POST /_sandbox/companies/{company}/salesInvoices/{id}/post` | post it (new number, same id) |
//! | `GET /_sandbox/clock` | `{"now"}` (virtual clock) |
//! | `POST /_sandbox/clock/advance` | body `{"seconds": n}` or `{"milliseconds": n}` |
//! | `PUT /_sandbox/clock/override` | body `{"timestamp": "…"}` or `{"timestamp": null}`: freeze `lastModifiedDateTime` |
//! | `GET /_sandbox/subscriptions`, `DELETE /_sandbox/subscriptions/{id}` | list / delete |
//! | `GET, DELETE /_sandbox/requests` | the API request log / clear it |
//! | `GET /_sandbox/notifications` | every handshake and notification attempt |
//! | `PUT /_sandbox/faults` | body: [`Faults`] |
//! | `GET /_sandbox/stats` | `{"peak_concurrency"}` |
//!
//! Invalid admin writes answer 400 with the BC error body.
//!
//! # Where the reference is silent
//!
//! Choices made where neither the reference nor a recording gives the exact text; each follows
//! the layer that would produce it in BC (Microsoft.OData.Core, AL, Entra):
//!
//! - Query errors use OData Core's messages (`Could not find a property named …`, `A binary
//!   operator with incompatible types was detected. …`) under code `BadRequest_NotFound`.
//! - Body errors use code `BadRequest` (`The property '…' does not exist on type …`, `Cannot
//!   convert the literal …`, `Invalid Request Body`); writes to read-only properties are refused
//!   unless the value is unchanged.
//! - A failed handshake answers 400 `BadRequest` (`The subscription could not be validated: …`);
//!   an unsupported subscription resource 400 `BadRequest`.
//! - 429 answers `Application_TooManyRequests` (`Too many requests reached.  Actual (n).
//!   Maximum (m).`) without `Retry-After`; 503 `ServiceUnavailable` with `Retry-After: 5`; 504
//!   `GatewayTimeout`.
//! - An invalid `$skiptoken` answers 400 `BadRequest_InvalidToken`.
//! - Client assertions are checked for shape, `iss`/`sub`, `aud` (Entra's or this sandbox's
//!   token URL), `exp`/`nbf`, not for their signature.
//! - `companies` carry no `@odata.etag` (as in the recorded payload); every other entity does.
//! - Not served: `$batch`, the `in` operator (`$schemaversion=2.1`), navigation properties other
//!   than `salesInvoiceLines` and `customer` on invoices (expanding one of the real others answers
//!   400 `BadRequest_MethodNotImplemented`), payments (`Paid`), tax.
//!
//! # Modules
//!
//! `server` (router, request pipeline, CLI), `net` (killable connections), `auth` (token
//! endpoint, bearer validation), `throttle`, `faults`, `log`, `clock`, `api` (routing),
//! `odata` (query options, `$filter`, `$select`/`$expand`, paging, ETags, paths), `schema`
//! (entity types from `$metadata`), `metadata` (`$metadata` documents), `entities` (companies,
//! customers, items, contacts, sales invoices and lines, consents), `subscriptions` (webhooks),
//! `admin`, `state`, `errors`, `json`, `util`, `config`.

mod admin;
mod api;
mod auth;
mod clock;
mod config;
mod entities;
mod errors;
mod faults;
mod json;
mod log;
mod metadata;
mod odata;
mod schema;
mod server;
mod state;
mod subscriptions;
mod throttle;
mod util;

pub use admin::Admin;
pub use config::SandboxConfig;
pub use faults::Faults;
pub use log::LoggedRequest;
pub use server::{Sandbox, run_cli};
pub use subscriptions::Delivery;
