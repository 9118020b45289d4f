//! NTLM (NTLMv2) authentication, client and server, in pure Rust with no I/O.
//!
//! Dynamics GP's web services authenticate with Windows credentials over HTTP: the legacy SOAP
//! endpoint announces `WWW-Authenticate: NTLM`, the SBA REST endpoint NTLM or Basic
//! (`shared/reference/dynamics-gp.md` §1.3, §2.2). The connector needs an NTLM *client*; the GP
//! sandbox needs an NTLM *server* strict enough that a wrong password fails, and lenient enough
//! to accept what real Windows accepts (curl's OEM-only NEGOTIATE without a MIC). No crate does
//! both (`sspi` trusts the MIC alone and rejects curl, reference §5.2), hence this one.
//!
//! - [`Client`]: `negotiate()` → Type 1, `authenticate(challenge)` → Type 3 (NTLMv2, MIC when
//!   the server sends a timestamp, key exchange when signing is negotiated).
//! - [`Server`]: `challenge(negotiate)` → Type 2 and a [`ServerState`]; `verify(state,
//!   authenticate)` recomputes the NTProofStr from the stored password and checks the MIC when
//!   present, yielding an [`Identity`].
//! - [`http`]: `NTLM <base64>` / `Negotiate <base64>` header forms (raw or SPNEGO-wrapped).
//! - [`messages`], [`crypto`], [`flags`]: the wire format and the MS-NLMP functions, public so
//!   the spec's test vectors can check each piece.
//!
//! Limits (documented rather than half-done): no NTLMv1, no message signing/sealing after the
//! handshake, no channel bindings (Extended Protection), no SPNEGO `mechListMIC`, no Kerberos.
//! Errors ([`NtlmError`]) and `Debug` output never contain passwords, hashes or keys.
//!
//! Module map: `error`, `flags`, `crypto`, `messages`, `client`, `server`, `spnego`, `http`.

mod client;
pub mod crypto;
mod error;
pub mod flags;
pub mod http;
pub mod messages;
mod server;
pub mod spnego;

pub use client::Client;
pub use error::NtlmError;
pub use server::{Identity, Server, ServerState};
