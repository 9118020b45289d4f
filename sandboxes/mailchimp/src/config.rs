//! The sandbox's settings: what differs between test setups, with defaults that match a real
//! account in the `us6` data center.

use std::time::Duration;

/// The API key every default sandbox accepts. Its `-us6` suffix names the data center, as real
/// keys do.
pub const DEFAULT_API_KEY: &str = "0123456789abcdef0123456789abcdef-us6";

/// How a sandbox behaves. Tests shorten the delays; everything else mirrors the real service.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The data center this sandbox pretends to be; keys for another one get 403 Wrong Datacenter.
    pub dc: String,
    /// The API keys of the (single) account; all of them share one connection limit.
    pub api_keys: Vec<String>,
    /// Simultaneous requests the account may have in flight (Mailchimp: 10).
    pub max_connections: usize,
    /// The OAuth client id registered for the authorization-code flow.
    pub oauth_client_id: String,
    /// The OAuth client secret matching `oauth_client_id`.
    pub oauth_client_secret: String,
    /// Whether a member unsubscribed through the API (not by the person) may be set back to
    /// `subscribed` through the API. Real accounts differ (reference §3.4), so this is a knob.
    pub resubscribe_after_api_unsubscribe: bool,
    /// The delay before the first retry of a failed webhook delivery; it doubles per attempt.
    pub webhook_retry: Duration,
    /// The pause between the states of a batch (pending → preprocessing → … → finished).
    pub batch_step: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            dc: "us6".into(),
            api_keys: vec![DEFAULT_API_KEY.into()],
            max_connections: 10,
            oauth_client_id: "sandbox-client".into(),
            oauth_client_secret: "sandbox-secret".into(),
            resubscribe_after_api_unsubscribe: true,
            webhook_retry: Duration::from_secs(1),
            batch_step: Duration::from_millis(200),
        }
    }
}
