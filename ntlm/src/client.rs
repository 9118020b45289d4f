//! The initiator: builds the NEGOTIATE and, from the server's CHALLENGE, the AUTHENTICATE.
//!
//! It behaves like a current Windows client (NTLMv2 only, extended session security, key
//! exchange, a MIC whenever the server sends a timestamp) so the sandbox's acceptor is exercised
//! on its strictest path; curl covers the lax path (OEM, no MIC, no key exchange).

use std::fmt;

use crate::NtlmError;
use crate::crypto;
use crate::flags::*;
use crate::messages::{AuthenticateMessage, ChallengeMessage, MIC_OFFSET, NegotiateMessage, TargetInfo};

/// The flags a Windows 10 client sends (0xe2088297 minus datagram/LM bits).
const CLIENT_FLAGS: u32 = NEGOTIATE_56
    | NEGOTIATE_KEY_EXCH
    | NEGOTIATE_128
    | NEGOTIATE_VERSION
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_NTLM
    | NEGOTIATE_SIGN
    | REQUEST_TARGET
    | NEGOTIATE_OEM
    | NEGOTIATE_UNICODE;

/// One NTLM handshake for one set of credentials. Create one per connection: the NEGOTIATE it
/// sent is part of the MIC, so a client instance is bound to the handshake it started.
#[derive(Clone)]
pub struct Client {
    /// The user's domain (NetBIOS name as the user would type it; case is kept).
    domain: String,
    /// The user name.
    user: String,
    /// The password; never printed (see the `Debug` impl).
    password: String,
    /// The name sent as the workstation.
    workstation: String,
    /// The NEGOTIATE sent, kept for the MIC.
    negotiate: Option<Vec<u8>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("workstation", &self.workstation)
            .finish()
    }
}

impl Client {
    /// Credentials for `domain\user`. An empty domain lets the server pick its own.
    pub fn new(domain: impl Into<String>, user: impl Into<String>, password: impl Into<String>) -> Client {
        Client {
            domain: domain.into(),
            user: user.into(),
            password: password.into(),
            workstation: "MLCONNECTOR".into(),
            negotiate: None,
        }
    }

    /// Parses `DOMAIN\user` (or `user@domain`, or a bare `user`) the way curl's `-u` does.
    pub fn from_account(account: &str, password: impl Into<String>) -> Client {
        if let Some((domain, user)) = account.split_once('\\').or_else(|| account.split_once('/')) {
            Client::new(domain, user, password)
        } else {
            Client::new("", account, password)
        }
    }

    /// Replaces the workstation name sent in the AUTHENTICATE.
    pub fn with_workstation(mut self, workstation: impl Into<String>) -> Client {
        self.workstation = workstation.into();
        self
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Type 1. Calling it again restarts the handshake.
    pub fn negotiate(&mut self) -> Vec<u8> {
        let message =
            NegotiateMessage { flags: CLIENT_FLAGS, domain: String::new(), workstation: String::new(), version: None }
                .encode();
        self.negotiate = Some(message.clone());
        message
    }

    /// Type 3 from the server's Type 2.
    pub fn authenticate(&mut self, challenge: &[u8]) -> Result<Vec<u8>, NtlmError> {
        let negotiate = self.negotiate.take().unwrap_or_else(|| {
            // A server may send a CHALLENGE to a client that never negotiated (connection-level
            // reuse); the MIC then covers an empty NEGOTIATE, which the server cannot check, so
            // such a client must not claim a MIC.
            Vec::new()
        });
        let parsed = ChallengeMessage::decode(challenge)?;
        let flags = negotiated_flags(parsed.flags);
        if flags & NEGOTIATE_NTLM == 0 && flags & NEGOTIATE_EXTENDED_SESSIONSECURITY == 0 {
            return Err(NtlmError::Unsupported("the server did not offer NTLM"));
        }
        let mut target_info = if parsed.target_info.is_empty() {
            TargetInfo::default()
        } else {
            TargetInfo::decode(&parsed.target_info)?
        };
        // With a server timestamp: use it, send Z(24) as LM response and prove integrity with a
        // MIC (§3.1.5.1.2). Without one: our own clock and a real LMv2 response.
        let server_time = target_info.timestamp();
        let with_mic = server_time.is_some() && !negotiate.is_empty();
        if with_mic {
            target_info.set(AV_FLAGS, (target_info.flags() | AV_FLAG_MIC_PRESENT).to_le_bytes().to_vec());
        }
        let client_challenge: [u8; 8] = crypto::random()?;
        let key = crypto::ntowfv2(&self.password, &self.user, &self.domain);
        let (nt_response, session_base_key) = crypto::ntlmv2_response(
            &key,
            &parsed.server_challenge,
            &client_challenge,
            server_time.unwrap_or_else(crypto::filetime_now),
            &target_info.encode(),
        );
        let lm_response = if server_time.is_some() {
            vec![0; 24]
        } else {
            crypto::lmv2_response(&key, &parsed.server_challenge, &client_challenge).to_vec()
        };
        // For NTLMv2 the key exchange key is the session base key.
        let (exported, encrypted_session_key) =
            if flags & NEGOTIATE_KEY_EXCH != 0 && flags & (NEGOTIATE_SIGN | NEGOTIATE_SEAL) != 0 {
                let exported: [u8; 16] = crypto::random()?;
                (exported, crypto::rc4(&session_base_key, &exported))
            } else {
                (session_base_key, Vec::new())
            };
        let message = AuthenticateMessage {
            lm_response,
            nt_response,
            domain: self.domain.clone(),
            user: self.user.clone(),
            workstation: self.workstation.clone(),
            encrypted_session_key,
            flags,
            version: None,
            mic: with_mic.then_some([0; 16]),
        };
        let mut bytes = message.encode();
        if with_mic {
            let mic = crypto::mic(&exported, &negotiate, challenge, &bytes);
            bytes[MIC_OFFSET..MIC_OFFSET + 16].copy_from_slice(&mic);
        }
        Ok(bytes)
    }
}

/// The flags of the AUTHENTICATE: what the server granted of what we asked, with exactly one
/// charset.
fn negotiated_flags(server: u32) -> u32 {
    let mut flags = server & (CLIENT_FLAGS | NEGOTIATE_TARGET_INFO | TARGET_TYPE_DOMAIN | TARGET_TYPE_SERVER);
    if flags & NEGOTIATE_UNICODE != 0 {
        flags &= !NEGOTIATE_OEM;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_password() {
        let client = Client::new("GPDOMAIN", "gpuser", "Passw0rd!");
        let shown = format!("{client:?}");
        assert!(shown.contains("gpuser") && shown.contains("<redacted>"));
        assert!(!shown.contains("Passw0rd!"));
    }

    #[test]
    fn account_forms() {
        let c = Client::from_account("GPDOMAIN\\gpuser", "x");
        assert_eq!((c.domain(), c.user()), ("GPDOMAIN", "gpuser"));
        let c = Client::from_account("gpuser", "x");
        assert_eq!((c.domain(), c.user()), ("", "gpuser"));
    }

    #[test]
    fn negotiate_asks_for_unicode_and_oem() {
        let message = NegotiateMessage::decode(&Client::new("D", "u", "p").negotiate()).unwrap();
        assert_eq!(message.flags & (NEGOTIATE_UNICODE | NEGOTIATE_OEM), NEGOTIATE_UNICODE | NEGOTIATE_OEM);
        assert_ne!(message.flags & NEGOTIATE_EXTENDED_SESSIONSECURITY, 0);
    }
}
