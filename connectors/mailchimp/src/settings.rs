//! Connection settings.

use engine::config::SecretRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings of a `mailchimp` connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MailchimpSettings {
    /// How to authenticate: an API key (its `-us6` suffix names the data center) or an OAuth
    /// access token (the data center is looked up in the OAuth metadata).
    pub auth: MailchimpAuth,
    /// Where the API lives, instead of `https://<dc>.api.mailchimp.com` (a sandbox, a proxy).
    /// Requests go to `<base_url>/3.0/...`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Where the OAuth endpoints live, instead of `https://login.mailchimp.com`.
    #[serde(default)]
    pub oauth_base_url: Option<String>,
    /// Requests in flight at once for this account. Mailchimp allows 10 simultaneous
    /// connections per account, shared by everything that uses the account.
    #[serde(default = "default_connections")]
    #[schemars(range(min = 1, max = 10))]
    pub max_connections: usize,
    /// Seconds before a request times out (Mailchimp's own limit is 120).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Attempts per request, the first included, for throttling, 5xx and timeouts.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Write orders with `PUT` (the spec's add-or-update) instead of `POST`, then `PATCH` on
    /// "already exists" (what Mailchimp's own plugins do, and the default).
    #[serde(default)]
    pub put_orders: bool,
    /// Send the e-commerce writes of a page (products, customers, orders; 100 or more) as one
    /// batch operation (`POST /batches`, polled until Mailchimp has run it) instead of one
    /// request each: a handful of calls instead of one per record, so an initial sync stays far
    /// from the connection limit, for the price of Mailchimp's asynchronous processing time.
    /// Off: one request per record. Members always go through batch subscribe.
    #[serde(default = "default_true")]
    pub batch_operations: bool,
}

fn default_true() -> bool {
    true
}

fn default_connections() -> usize {
    10
}

fn default_timeout() -> u64 {
    120
}

fn default_attempts() -> u32 {
    5
}

/// How a connection authenticates.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MailchimpAuth {
    /// An API key, sent with HTTP Basic. Its suffix after the last `-` is the data center.
    ApiKey {
        /// Where the key is kept.
        key: SecretRef,
    },
    /// An OAuth access token (from `ml-connector connect mailchimp`), sent as a Bearer token.
    Oauth {
        /// Where the token is kept.
        token: SecretRef,
    },
}

/// What to do when Mailchimp refuses to subscribe a contact for compliance reasons (they
/// unsubscribed, bounced, are under review, or were permanently deleted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceAction {
    /// Keep the record in dead letters with class `compliance`.
    #[default]
    DeadLetter,
    /// Re-send it as `pending`: Mailchimp emails the contact a confirmation (double opt-in).
    Pending,
}
