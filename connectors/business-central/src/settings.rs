//! Connection settings.

use engine::config::SecretRef;
use schemars::JsonSchema;
use serde::Deserialize;

/// Settings of a `business-central` connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BcSettings {
    /// The Microsoft Entra tenant: its GUID or a domain (`contoso.com`).
    pub tenant: String,
    /// The Business Central environment name (`Production`, `Sandbox`).
    pub environment: String,
    /// The company: its name (`CRONUS USA, Inc.`) or its id (a GUID).
    pub company: String,
    /// The app registration's client (application) id.
    pub client_id: String,
    /// How the app proves itself: a client secret, or a certificate.
    pub credential: BcCredential,
    /// The token endpoint, instead of `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// The API host, instead of `https://api.businesscentral.dynamics.com` (a sandbox).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Requests in flight at once. Business Central processes 5 per user and queues the rest.
    #[serde(default = "default_in_flight")]
    #[schemars(range(min = 1, max = 5))]
    pub max_in_flight: usize,
    /// Seconds before a request times out.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Attempts per request, the first included, for throttling, 5xx and timeouts.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_in_flight() -> usize {
    5
}

fn default_timeout() -> u64 {
    120
}

fn default_attempts() -> u32 {
    6
}

/// The app's credential.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BcCredential {
    /// A client secret.
    Secret {
        /// Where the secret is kept.
        secret: SecretRef,
    },
    /// A certificate: the token request carries a JWT signed with its private key.
    Certificate {
        /// Where the PEM private key (PKCS#8 or PKCS#1 RSA) is kept.
        private_key: SecretRef,
        /// The certificate's SHA-256 thumbprint, base64url (the `x5t#S256` header).
        thumbprint_sha256: String,
    },
}
