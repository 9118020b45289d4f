//! How a sandbox is set up: its Windows accounts, which authentication schemes it offers, and
//! the SBA tenant name.

/// The documented default account's domain.
pub const DEFAULT_DOMAIN: &str = "GPDOMAIN";
/// The documented default account's user name.
pub const DEFAULT_USER: &str = "gpuser";
/// The documented default account's password (a test fixture, not a secret).
pub const DEFAULT_PASSWORD: &str = "Passw0rd!";

/// Configuration of a [`crate::Sandbox`].
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Windows accounts `(domain, user, password)` the NTLM acceptor (and Basic, for SBA) knows.
    /// GP would also need each to be mapped to a GP user; the sandbox treats every account as a
    /// fully authorised GP user.
    pub users: Vec<(String, String, String)>,
    /// Also offer `WWW-Authenticate: Negotiate` (raw or SPNEGO-wrapped NTLM). Off by default:
    /// the legacy WSDL's policy is `NtlmAuthentication`, i.e. `NTLM` only (reference §2.2).
    pub negotiate: bool,
    /// Accept `Authorization: Basic` on the SBA routes (reference §1.3: SBA takes NTLM or Basic).
    /// Never on the SOAP endpoint.
    pub basic_for_sba: bool,
    /// The SBA tenant (`/GPService/Tenants(<tenant>)/…`); `DefaultTenant` in single-tenant
    /// installs.
    pub tenant: String,
}

impl Default for SandboxConfig {
    /// One account, `GPDOMAIN\gpuser` / `Passw0rd!`; NTLM only; tenant `DefaultTenant`.
    fn default() -> SandboxConfig {
        SandboxConfig {
            users: vec![(DEFAULT_DOMAIN.into(), DEFAULT_USER.into(), DEFAULT_PASSWORD.into())],
            negotiate: false,
            basic_for_sba: false,
            tenant: "DefaultTenant".into(),
        }
    }
}
