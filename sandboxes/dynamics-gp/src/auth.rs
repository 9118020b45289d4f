//! Windows authentication bound to the TCP connection, as IIS/HTTP.sys does it.
//!
//! NTLM authenticates a *connection*, not a request (MS-NTHT; reference §2.2): the CHALLENGE
//! state lives with the connection that received the NEGOTIATE, so an AUTHENTICATE sent on
//! another connection fails, and once a connection is authenticated its later requests are too
//! (even without an `Authorization` header). A new NEGOTIATE on an authenticated connection
//! starts over. A failed AUTHENTICATE answers `401` with the plain challenge list again.
//!
//! `Basic` is per request and only on SBA routes, when configured (reference §1.3).

use base64::Engine as _;
use ntlm::http::{self as ntlm_http, Scheme};

use crate::state::Shared;

/// The per-connection security context.
#[derive(Default)]
pub struct ConnAuth {
    /// The CHALLENGE sent on this connection, waiting for its AUTHENTICATE.
    pending: Option<(ntlm::ServerState, Scheme, bool)>,
    /// Who authenticated this connection.
    identity: Option<String>,
}

/// The outcome for one request.
pub enum Outcome {
    /// Go ahead; `header` is a final `WWW-Authenticate` to add (SPNEGO accept-completed).
    Authenticated {
        /// `DOMAIN\user`.
        user: String,
        /// A `WWW-Authenticate` value for the successful response.
        header: Option<String>,
    },
    /// Answer `401` with these `WWW-Authenticate` values.
    Unauthorized(Vec<String>),
}

/// The bare challenge list of a first 401: `Negotiate` (when configured), `NTLM`, and `Basic`
/// on SBA routes when configured. The initial challenge never carries data (MS-NTHT §3).
pub fn challenges(shared: &Shared, sba: bool) -> Vec<String> {
    let mut list = Vec::new();
    if shared.config.negotiate {
        list.push("Negotiate".to_string());
    }
    list.push("NTLM".to_string());
    if sba && shared.config.basic_for_sba {
        list.push(format!("Basic realm=\"{}\"", shared.addr.ip()));
    }
    list
}

/// Authenticates one request on the connection whose context is `conn`.
pub fn authenticate(shared: &Shared, conn: &mut ConnAuth, authorization: Option<&str>, sba: bool) -> Outcome {
    let deny = |conn: &mut ConnAuth| {
        conn.pending = None;
        Outcome::Unauthorized(challenges(shared, sba))
    };
    let Some(value) = authorization else {
        return match &conn.identity {
            Some(user) => Outcome::Authenticated { user: user.clone(), header: None },
            None => Outcome::Unauthorized(challenges(shared, sba)),
        };
    };
    if let Some(encoded) = value.trim().strip_prefix("Basic ").or_else(|| value.trim().strip_prefix("basic ")) {
        if !(sba && shared.config.basic_for_sba) {
            return deny(conn);
        }
        return match basic(shared, encoded.trim()) {
            Some(user) => Outcome::Authenticated { user, header: None },
            None => deny(conn),
        };
    }
    let token = match ntlm_http::parse(value) {
        Ok(Some(token)) if token.scheme == Scheme::Ntlm || shared.config.negotiate => token,
        _ => return deny(conn),
    };
    match token.message_type() {
        Ok(1) => {
            conn.identity = None;
            match shared.ntlm.challenge(&token.ntlm) {
                Ok((challenge, state)) => {
                    let header = ntlm_http::challenge(token.scheme, Some(&challenge), token.spnego);
                    conn.pending = Some((state, token.scheme, token.spnego));
                    Outcome::Unauthorized(vec![header])
                }
                Err(error) => {
                    tracing::debug!(%error, "NTLM negotiate refused.");
                    deny(conn)
                }
            }
        }
        Ok(3) => {
            let Some((state, scheme, spnego)) = conn.pending.take() else {
                // No CHALLENGE on this connection: the handshake was split across connections.
                conn.identity = None;
                return deny(conn);
            };
            if scheme != token.scheme {
                conn.identity = None;
                return deny(conn);
            }
            match shared.ntlm.verify(state, &token.ntlm) {
                Ok(identity) => {
                    let user = identity.to_string();
                    conn.identity = Some(user.clone());
                    Outcome::Authenticated { user, header: ntlm_http::completed(scheme, spnego) }
                }
                Err(error) => {
                    tracing::debug!(%error, "NTLM authenticate refused.");
                    conn.identity = None;
                    deny(conn)
                }
            }
        }
        _ => deny(conn),
    }
}

/// Checks `Basic` credentials (`DOMAIN\user:password` or `user:password`) against the accounts.
fn basic(shared: &Shared, encoded: &str) -> Option<String> {
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (account, password) = text.split_once(':')?;
    let (domain, user) = account.split_once('\\').unwrap_or(("", account));
    shared
        .config
        .users
        .iter()
        .find(|(d, u, p)| {
            (domain.is_empty() || d.eq_ignore_ascii_case(domain))
                && u.eq_ignore_ascii_case(user)
                && ntlm::crypto::ct_eq(p.as_bytes(), password.as_bytes())
        })
        .map(|(d, u, _)| format!("{d}\\{u}"))
}
