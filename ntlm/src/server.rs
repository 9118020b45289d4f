//! The acceptor: answers a NEGOTIATE with a CHALLENGE and checks the AUTHENTICATE against a user
//! database.
//!
//! Why not `sspi`: its acceptor rejects curl's NEGOTIATE (no UNICODE flag) and only verifies the
//! MIC, never the NTProofStr, so a MIC-less client is accepted with any password
//! (`shared/reference/dynamics-gp.md` §5.2). Here the NTProofStr recomputed from the stored
//! password is the check; the MIC is verified in addition whenever the client announces one.
//!
//! Replay protection is the single-use [`ServerState`] (a fresh random challenge per
//! handshake); the blob's timestamp is not checked against a clock skew window.

use std::fmt;

use crate::NtlmError;
use crate::crypto;
use crate::flags::*;
use crate::messages::{AuthenticateMessage, ChallengeMessage, MIC_OFFSET, NegotiateMessage, TargetInfo};

/// Flags the server grants when the client asks for them.
const ECHOED: u32 = NEGOTIATE_SIGN
    | NEGOTIATE_SEAL
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_IDENTIFY
    | NEGOTIATE_VERSION
    | NEGOTIATE_128
    | NEGOTIATE_KEY_EXCH
    | NEGOTIATE_56;

/// One account: the NT hash stands in for the password, as in a real account database.
#[derive(Clone)]
struct Account {
    /// NetBIOS domain name (compared case-insensitively).
    domain: String,
    /// User name (compared case-insensitively).
    user: String,
    /// NTOWFv1 of the password.
    nt_hash: [u8; 16],
}

/// An NTLM acceptor with its own accounts and names. Cheap to share: `challenge` and `verify`
/// take `&self`, and the per-handshake state lives in [`ServerState`].
#[derive(Clone)]
pub struct Server {
    /// The accounts.
    accounts: Vec<Account>,
    /// `MsvAvNbDomainName`, also the CHALLENGE's target name.
    nb_domain: String,
    /// `MsvAvNbComputerName`.
    nb_computer: String,
    /// `MsvAvDnsDomainName` (and `MsvAvDnsTreeName`).
    dns_domain: String,
    /// `MsvAvDnsComputerName`.
    dns_computer: String,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<String> = self.accounts.iter().map(|a| format!("{}\\{}", a.domain, a.user)).collect();
        f.debug_struct("Server").field("nb_domain", &self.nb_domain).field("users", &users).finish_non_exhaustive()
    }
}

/// What the server must remember between its CHALLENGE and the AUTHENTICATE. Consumed by
/// [`Server::verify`], so a challenge can be answered once only.
#[derive(Clone)]
pub struct ServerState {
    /// The NEGOTIATE as received (part of the MIC).
    negotiate: Vec<u8>,
    /// The CHALLENGE as sent (part of the MIC).
    challenge: Vec<u8>,
    /// The nonce inside it.
    server_challenge: [u8; 8],
    /// The flags it granted.
    flags: u32,
}

impl fmt::Debug for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerState").field("flags", &format_args!("{:#010x}", self.flags)).finish_non_exhaustive()
    }
}

impl ServerState {
    /// Rebuilds the state from a recorded NEGOTIATE and CHALLENGE (for replaying captured or
    /// published handshakes in tests).
    pub fn from_messages(negotiate: &[u8], challenge: &[u8]) -> Result<ServerState, NtlmError> {
        let parsed = ChallengeMessage::decode(challenge)?;
        Ok(ServerState {
            negotiate: negotiate.to_vec(),
            challenge: challenge.to_vec(),
            server_challenge: parsed.server_challenge,
            flags: parsed.flags,
        })
    }

    /// The flags the CHALLENGE granted.
    pub fn flags(&self) -> u32 {
        self.flags
    }
}

/// Who authenticated.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The account's domain, as configured on the server.
    pub domain: String,
    /// The account's user name, as configured on the server.
    pub user: String,
    /// The workstation name the client sent.
    pub workstation: String,
    /// Whether the client proved integrity with a MIC.
    pub mic_verified: bool,
    /// The exported session key (for signing/sealing, unused over HTTP). Not printed.
    pub session_key: [u8; 16],
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("workstation", &self.workstation)
            .field("mic_verified", &self.mic_verified)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\\{}", self.domain, self.user)
    }
}

impl Server {
    /// A server with accounts `(domain, user, password)`. Its NetBIOS domain is the first
    /// account's domain (upper-cased), or `WORKGROUP`.
    pub fn new<I, D, U, P>(accounts: I) -> Server
    where
        I: IntoIterator<Item = (D, U, P)>,
        D: Into<String>,
        U: Into<String>,
        P: AsRef<str>,
    {
        let accounts: Vec<Account> = accounts
            .into_iter()
            .map(|(d, u, p)| Account { domain: d.into(), user: u.into(), nt_hash: crypto::nt_hash(p.as_ref()) })
            .collect();
        let nb_domain = accounts.first().map(|a| a.domain.to_uppercase()).unwrap_or_else(|| "WORKGROUP".into());
        let dns_domain = format!("{}.local", nb_domain.to_lowercase());
        Server {
            accounts,
            dns_computer: format!("gpserver.{dns_domain}"),
            dns_domain,
            nb_computer: "GPSERVER".into(),
            nb_domain,
        }
    }

    /// Replaces the names announced in the CHALLENGE.
    pub fn with_names(mut self, nb_domain: &str, nb_computer: &str, dns_domain: &str, dns_computer: &str) -> Server {
        self.nb_domain = nb_domain.into();
        self.nb_computer = nb_computer.into();
        self.dns_domain = dns_domain.into();
        self.dns_computer = dns_computer.into();
        self
    }

    /// Adds (or replaces) an account.
    pub fn add_user(&mut self, domain: &str, user: &str, password: &str) {
        self.accounts.retain(|a| !(a.domain.eq_ignore_ascii_case(domain) && a.user.eq_ignore_ascii_case(user)));
        self.accounts.push(Account { domain: domain.into(), user: user.into(), nt_hash: crypto::nt_hash(password) });
    }

    /// Answers a NEGOTIATE. Accepts OEM-only clients (curl) and answers them in OEM; grants
    /// extended session security when asked, which is what makes curl send NTLMv2.
    pub fn challenge(&self, negotiate: &[u8]) -> Result<(Vec<u8>, ServerState), NtlmError> {
        let request = NegotiateMessage::decode(negotiate)?;
        let charset = if request.flags & NEGOTIATE_UNICODE != 0 {
            NEGOTIATE_UNICODE
        } else if request.flags & NEGOTIATE_OEM != 0 {
            NEGOTIATE_OEM
        } else {
            return Err(NtlmError::Unsupported("the NEGOTIATE offers neither UNICODE nor OEM"));
        };
        let mut flags = charset | NEGOTIATE_NTLM | NEGOTIATE_TARGET_INFO | (request.flags & ECHOED);
        if request.flags & REQUEST_TARGET != 0 {
            flags |= REQUEST_TARGET | TARGET_TYPE_DOMAIN;
        }
        let utf16 = crypto::utf16le;
        let info = TargetInfo {
            pairs: [
                (AV_NB_DOMAIN_NAME, utf16(&self.nb_domain)),
                (AV_NB_COMPUTER_NAME, utf16(&self.nb_computer)),
                (AV_DNS_DOMAIN_NAME, utf16(&self.dns_domain)),
                (AV_DNS_COMPUTER_NAME, utf16(&self.dns_computer)),
                (AV_DNS_TREE_NAME, utf16(&self.dns_domain)),
                (AV_TIMESTAMP, crypto::filetime_now().to_le_bytes().to_vec()),
            ]
            .into_iter()
            .map(|(id, value)| crate::messages::AvPair { id, value })
            .collect(),
        };
        let server_challenge: [u8; 8] = crypto::random()?;
        let challenge = ChallengeMessage {
            flags,
            target_name: if flags & REQUEST_TARGET != 0 { self.nb_domain.clone() } else { String::new() },
            server_challenge,
            target_info: info.encode(),
            version: None,
        }
        .encode();
        let state =
            ServerState { negotiate: negotiate.to_vec(), challenge: challenge.clone(), server_challenge, flags };
        Ok((challenge, state))
    }

    /// Checks an AUTHENTICATE: the NTProofStr against the stored password, then the MIC when
    /// the client announced one. NTLMv1 and anonymous logons are refused.
    pub fn verify(&self, state: ServerState, authenticate: &[u8]) -> Result<Identity, NtlmError> {
        let message = AuthenticateMessage::decode(authenticate, state.flags)?;
        if message.nt_response.is_empty() && message.user.is_empty() {
            return Err(NtlmError::Unsupported("anonymous logon"));
        }
        if message.nt_response.len() <= 24 {
            return Err(NtlmError::Unsupported("NTLMv1 responses are not accepted"));
        }
        if message.nt_response.len() < 16 + 28 + 4 || message.nt_response[16] != 1 {
            return Err(NtlmError::Malformed("NTLMv2 blob too short or of an unknown version"));
        }
        let account = self.find(&message.domain, &message.user)?;
        // The hash input uses the names exactly as the client sent them (the client typed them).
        let key = crypto::ntowfv2_from_hash(&account.nt_hash, &message.user, &message.domain);
        let (proof, blob) = message.nt_response.split_at(16);
        let expected = crypto::nt_proof(&key, &state.server_challenge, blob);
        if !crypto::ct_eq(&expected, proof) {
            return Err(NtlmError::LogonFailure { domain: message.domain, user: message.user });
        }
        let session_base_key = crypto::session_base_key(&key, &expected);
        let exported = if message.flags & NEGOTIATE_KEY_EXCH != 0
            && message.flags & (NEGOTIATE_SIGN | NEGOTIATE_SEAL) != 0
            && message.encrypted_session_key.len() == 16
        {
            crypto::rc4(&session_base_key, &message.encrypted_session_key).try_into().expect("16 bytes")
        } else {
            session_base_key
        };
        // The blob's AV pairs sit between its 28-byte header and 4 trailing zero bytes.
        let blob_info = TargetInfo::decode(&blob[28..])?;
        let mut mic_verified = false;
        if blob_info.flags() & AV_FLAG_MIC_PRESENT != 0 {
            let Some(mic) = message.mic else {
                return Err(NtlmError::Malformed("MsvAvFlags announce a MIC but the header has no room for it"));
            };
            let mut zeroed = authenticate.to_vec();
            zeroed[MIC_OFFSET..MIC_OFFSET + 16].fill(0);
            let expected_mic = crypto::mic(&exported, &state.negotiate, &state.challenge, &zeroed);
            if !crypto::ct_eq(&expected_mic, &mic) {
                return Err(NtlmError::MicMismatch);
            }
            mic_verified = true;
        }
        Ok(Identity {
            domain: account.domain.clone(),
            user: account.user.clone(),
            workstation: message.workstation,
            mic_verified,
            session_key: exported,
        })
    }

    /// The account for a (domain, user) as sent. An empty domain (or a `user@domain` UPN)
    /// matches the account in the server's own domain, or the only account of that name.
    fn find(&self, domain: &str, user: &str) -> Result<&Account, NtlmError> {
        let (domain, user_name) = match user.split_once('@') {
            Some((u, d)) if domain.is_empty() => (d, u),
            _ => (domain, user),
        };
        let same_user = |a: &&Account| a.user.eq_ignore_ascii_case(user_name);
        let found = if domain.is_empty() {
            let mut matches: Vec<&Account> = self.accounts.iter().filter(same_user).collect();
            match matches.iter().position(|a| a.domain.eq_ignore_ascii_case(&self.nb_domain)) {
                Some(i) => Some(matches.swap_remove(i)),
                None if matches.len() == 1 => matches.pop(),
                None => None,
            }
        } else {
            let domain_matches = |a: &Account| {
                a.domain.eq_ignore_ascii_case(domain)
                    || (a.domain.eq_ignore_ascii_case(&self.nb_domain) && domain.eq_ignore_ascii_case(&self.dns_domain))
            };
            self.accounts.iter().filter(same_user).find(|a| domain_matches(a))
        };
        found.ok_or_else(|| NtlmError::UnknownUser { domain: domain.into(), user: user.into() })
    }
}
