//! The Mailchimp Marketing API v3.0 connector.
//!
//! Writes (the target of the ERP flows):
//! - `member`: add-or-update an audience member with `PUT /lists/{list}/members/{md5(email)}`
//!   carrying `status_if_new` and never `status`, so an ERP sync cannot change a member's consent.
//!   Merge fields a pipeline uses but the audience lacks (COMPANY is not a default) are created
//!   before the first write to that audience.
//! - `member_tags`: tags through the tags endpoint.
//! - `store`, `product`, `customer`, `order`: e-commerce, replay-safe (stores are ensured, PUT
//!   where the API has it, orders POST-then-PATCH on "already exists", an order's products
//!   ensured first). A page with 100 or more of them goes as one batch operation (`batches`:
//!   `POST /batches`, polled, results mapped back per record) unless `batch_operations` is off.
//!
//! Consent: "Member In Compliance State" and "Forgotten Email Not Subscribed" are never forced;
//! the record goes to dead letters with class `compliance`, or is re-sent as `pending` (double
//! opt-in) when the pipeline sets `on_compliance: pending`.
//!
//! Throttling: Mailchimp limits simultaneous connections (10 per account), not request rate: the
//! connection's default concurrency is 10, and 429s and bare 403s are retried with jittered
//! backoff, as are 5xx and timeouts.
//!
//! Webhooks (the source of the return flow): [`webhooks`] registers list webhooks with
//! `sources.api = false`, parses form-encoded deliveries and verifies their signatures.

mod batches;
mod client;
mod connector;
pub mod oauth;
mod resources;
mod settings;
pub mod webhooks;
mod write;

pub use client::{Account, McClient, McError};

/// The production OAuth host.
pub fn oauth_login_base() -> &'static str {
    client::LOGIN_BASE
}
pub use connector::MailchimpConnector;
pub use settings::{ComplianceAction, MailchimpAuth, MailchimpSettings};
