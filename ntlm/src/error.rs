//! The one error type of the crate.
//!
//! Errors end up in logs and HTTP traces, so no variant ever carries a password, a hash, a key
//! or a response: only names, message types and short reasons.

/// Why an NTLM message could not be built, parsed or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NtlmError {
    /// The bytes are not a well-formed NTLM message (bad signature, truncated, a security
    /// buffer pointing outside the message, a string that is not valid UTF-16, ...).
    #[error("malformed NTLM message: {0}")]
    Malformed(&'static str),
    /// A well-formed message of the wrong kind for this step of the handshake.
    #[error("expected an NTLM message of type {expected}, got type {found}")]
    UnexpectedMessageType {
        /// The message type this step needs (1, 2 or 3).
        expected: u32,
        /// The message type received.
        found: u32,
    },
    /// The peer asked for something this implementation refuses on purpose (NTLMv1, anonymous
    /// logon, no character set): refusing is what a hardened Windows server does too.
    #[error("unsupported NTLM request: {0}")]
    Unsupported(&'static str),
    /// No account with that name exists in the server's user database.
    #[error("unknown user {domain}\\{user}")]
    UnknownUser {
        /// The domain as sent by the client.
        domain: String,
        /// The user as sent by the client.
        user: String,
    },
    /// The NTLMv2 proof does not match the stored password (wrong password, or a tampered
    /// challenge response).
    #[error("logon failure for {domain}\\{user}: the NTLMv2 response does not match")]
    LogonFailure {
        /// The domain as sent by the client.
        domain: String,
        /// The user as sent by the client.
        user: String,
    },
    /// The client announced a MIC (MsvAvFlags bit 0x2) and it does not match the three
    /// messages: one of them was altered in transit.
    #[error("the NTLM message integrity code (MIC) does not match")]
    MicMismatch,
    /// An HTTP `Authorization` / `WWW-Authenticate` value that is not `NTLM <base64>` or
    /// `Negotiate <base64>`.
    #[error("invalid HTTP authentication header: {0}")]
    InvalidHeader(&'static str),
    /// A SPNEGO token this crate cannot unwrap (see [`crate::spnego`] for what is supported).
    #[error("unsupported SPNEGO token: {0}")]
    Spnego(&'static str),
    /// The operating system's random number generator failed.
    #[error("no randomness available from the operating system")]
    Random,
}
