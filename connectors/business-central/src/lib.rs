//! The Dynamics 365 Business Central (API v2.0) connector.
//!
//! - Auth: OAuth 2.0 client credentials against Microsoft Entra ID, with a client secret or a
//!   certificate (a signed `client_assertion`); the token is cached and refreshed before expiry.
//! - URLs from tenant, environment and company (by name or id, resolved through `companies`);
//!   standard `api/v2.0` entities and custom APIs (`api/{publisher}/{group}/{version}/...`),
//!   since marketing consent lives in a custom API (the standard customer page has none).
//! - Reads: incremental with `lastModifiedDateTime gt <UTC>` (unquoted, `Z`), server-driven
//!   paging through `@odata.nextLink` with `Prefer: odata.maxpagesize`, XML-encoded enum values
//!   decoded (`In_x0020_Review` → `In Review`).
//! - Writes: find the customer (or custom record) by a field, PATCH with `If-Match`; a stale
//!   ETag (409 `Request_EntityChanged`) re-reads and retries.
//! - Throttling: 5 requests in flight per user by default; 429, 503, 504, 408 and timeouts are
//!   retried with backoff, honouring `Retry-After`.
//! - Webhook subscriptions: [`subscriptions`] creates, renews (before the 3-day expiry) and
//!   recreates them.

mod auth;
mod client;
mod connector;
pub mod odata;
mod settings;
mod source;
pub mod subscriptions;
mod write;

pub use client::{BcClient, BcError};
pub use connector::BusinessCentralConnector;
pub use settings::{BcCredential, BcSettings};
pub use source::split_entity;
