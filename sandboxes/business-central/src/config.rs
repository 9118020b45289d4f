//! The sandbox's settings: what differs between test setups, with defaults matching a BC online
//! production environment and one Entra app registration.

use std::time::Duration;

/// How a sandbox behaves. Tests shrink the page size, the limits and the delays; everything
/// else mirrors the real service.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The Entra tenant (a GUID); API URLs may carry it, tokens are issued for it.
    pub tenant: String,
    /// The environment name in API URLs (matched case-insensitively, as BC does).
    pub environment: String,
    /// The registered app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// Company names; each gets a GUID id at start.
    pub companies: Vec<String>,
    /// Server page size cap (BC: 20,000); `Prefer: odata.maxpagesize` only lowers it.
    pub max_page_size: usize,
    /// Requests processed at once per user (BC: 5).
    pub concurrency: usize,
    /// Requests queued per user beyond those processed (BC: 95); past it, 429.
    pub queue: usize,
    /// The delay between the first change and the notification job (BC: ≥ 30 s).
    pub notification_delay: Duration,
    /// Access token lifetime (Entra: 3599 s).
    pub token_lifetime: Duration,
    /// Notifications per subscription and run past which one `collection` notification is sent
    /// instead (BC online: 1,000).
    pub collection_threshold: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            tenant: "00000000-0000-0000-0000-000000000001".into(),
            environment: "production".into(),
            client_id: "bc-client".into(),
            client_secret: "bc-secret".into(),
            companies: vec!["CRONUS USA, Inc.".into()],
            max_page_size: 20_000,
            concurrency: 5,
            queue: 95,
            notification_delay: Duration::from_secs(30),
            token_lifetime: Duration::from_secs(3599),
            collection_threshold: 1000,
        }
    }
}
