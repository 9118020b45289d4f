//! HTTP header forms of the handshake (MS-NTHT, RFC 4559): `NTLM <base64>` and
//! `Negotiate <base64>`, the latter with raw NTLM or SPNEGO-wrapped NTLM inside.
//!
//! Only string handling lives here; the caller owns the connection, which must be the same
//! keep-alive HTTP/1.1 connection for all three legs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::NtlmError;
use crate::spnego;

/// The HTTP authentication scheme carrying the NTLM messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `NTLM`: raw NTLM messages (what GP's legacy endpoint announces).
    Ntlm,
    /// `Negotiate`: raw NTLM or SPNEGO-wrapped NTLM.
    Negotiate,
}

impl Scheme {
    /// The scheme name as written in headers.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Ntlm => "NTLM",
            Scheme::Negotiate => "Negotiate",
        }
    }
}

/// A decoded `Authorization` (or `WWW-Authenticate`) token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The scheme it came under.
    pub scheme: Scheme,
    /// The NTLM message, unwrapped from SPNEGO when needed.
    pub ntlm: Vec<u8>,
    /// Whether it was SPNEGO-wrapped (answers must be wrapped the same way).
    pub spnego: bool,
}

impl Token {
    /// The NTLM message type (1, 2 or 3).
    pub fn message_type(&self) -> Result<u32, NtlmError> {
        crate::messages::message_type(&self.ntlm)
    }
}

/// Parses `NTLM <b64>` / `Negotiate <b64>`. `Ok(None)` for other schemes (e.g. `Basic`) and for
/// a bare scheme name without data.
pub fn parse(value: &str) -> Result<Option<Token>, NtlmError> {
    let value = value.trim();
    let (name, data) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if name.eq_ignore_ascii_case("NTLM") {
        Scheme::Ntlm
    } else if name.eq_ignore_ascii_case("Negotiate") {
        Scheme::Negotiate
    } else {
        return Ok(None);
    };
    let data = data.trim();
    if data.is_empty() {
        return Ok(None);
    }
    let raw = STANDARD.decode(data).map_err(|_| NtlmError::InvalidHeader("the token is not base64"))?;
    let spnego = scheme == Scheme::Negotiate && spnego::is_spnego(&raw);
    let ntlm = if spnego { spnego::unwrap(&raw)? } else { raw };
    crate::messages::message_type(&ntlm)?;
    Ok(Some(Token { scheme, ntlm, spnego }))
}

/// Finds the token for `scheme` among several `WWW-Authenticate` values (clients use this on a
/// 401 that may list `Negotiate`, `NTLM` and `Basic`).
pub fn find_challenge<'a>(values: impl IntoIterator<Item = &'a str>, scheme: Scheme) -> Option<Token> {
    values.into_iter().filter_map(|v| parse(v).ok().flatten()).find(|t| t.scheme == scheme)
}

/// `NTLM <b64>` / `Negotiate <b64>` for a client's `Authorization`. With `spnego`, the first leg
/// is a `NegTokenInit` and later legs a `NegTokenResp`.
pub fn authorization(scheme: Scheme, ntlm: &[u8], spnego: bool) -> String {
    let data = if spnego && scheme == Scheme::Negotiate {
        match crate::messages::message_type(ntlm) {
            Ok(1) => spnego::wrap_init(ntlm),
            _ => spnego::wrap_resp(None, false, Some(ntlm)),
        }
    } else {
        ntlm.to_vec()
    };
    format!("{} {}", scheme.name(), STANDARD.encode(data))
}

/// A server's `WWW-Authenticate` value: the bare scheme (first 401), or the scheme with a
/// CHALLENGE (second 401), SPNEGO-wrapped if the client wrapped its NEGOTIATE.
pub fn challenge(scheme: Scheme, ntlm: Option<&[u8]>, spnego: bool) -> String {
    match ntlm {
        None => scheme.name().to_string(),
        Some(message) => {
            let data = if spnego && scheme == Scheme::Negotiate {
                spnego::wrap_resp(Some(spnego::NegState::AcceptIncomplete), true, Some(message))
            } else {
                message.to_vec()
            };
            format!("{} {}", scheme.name(), STANDARD.encode(data))
        }
    }
}

/// The final `WWW-Authenticate: Negotiate <accept-completed>` a server may add to the 200 of a
/// SPNEGO exchange (RFC 4559 §5). `None` for plain NTLM, which has no final token.
pub fn completed(scheme: Scheme, spnego: bool) -> Option<String> {
    (scheme == Scheme::Negotiate && spnego).then(|| {
        format!(
            "Negotiate {}",
            STANDARD.encode(spnego::wrap_resp(Some(spnego::NegState::AcceptCompleted), false, None))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(parse("Basic Zm9vOmJhcg==").unwrap(), None);
        assert_eq!(parse("NTLM").unwrap(), None);
        assert!(matches!(parse("NTLM !!!"), Err(NtlmError::InvalidHeader(_))));
        let negotiate = crate::Client::new("D", "u", "p").negotiate();
        let t = parse(&authorization(Scheme::Ntlm, &negotiate, false)).unwrap().unwrap();
        assert_eq!((t.scheme, t.spnego, t.message_type().unwrap()), (Scheme::Ntlm, false, 1));
        let t = parse(&authorization(Scheme::Negotiate, &negotiate, true).replace("Negotiate", "negotiate"))
            .unwrap()
            .unwrap();
        assert_eq!((t.scheme, t.spnego, t.ntlm), (Scheme::Negotiate, true, negotiate.clone()));
        let t = parse(&authorization(Scheme::Negotiate, &negotiate, false)).unwrap().unwrap();
        assert!(!t.spnego);
    }

    #[test]
    fn find_challenge_picks_the_scheme() {
        let values =
            ["Negotiate", "NTLM TlRMTVNTUAACAAAAAAAAADgAAAAFAoqiAAAAAAAAAAAAAAAAAAAAAA==", "Basic realm=\"x\""];
        let token = find_challenge(values, Scheme::Ntlm).unwrap();
        assert_eq!(token.message_type().unwrap(), 2);
        assert!(find_challenge(values, Scheme::Negotiate).is_none());
    }
}
