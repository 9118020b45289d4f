//! Just enough SPNEGO (RFC 4178) DER to carry NTLM under `Authorization: Negotiate`.
//!
//! Supported: a `NegTokenInit` whose optimistic `mechToken` is NTLM (what Windows and
//! requests-negotiate send when NTLM is the mechanism they picked), and `NegTokenResp` in both
//! directions. Not supported, on purpose: a `NegTokenInit` whose optimistic token is Kerberos
//! (no KDC here), and `mechListMIC`: it is neither checked on input nor produced on output,
//! because it needs NTLM message signing, which HTTP authentication does not otherwise use.
//! Raw NTLM under `Negotiate` (no SPNEGO at all) is accepted too, as IIS and pyspnego do.

use crate::NtlmError;

/// The SPNEGO mechanism OID 1.3.6.1.5.5.2.
const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// The NTLMSSP mechanism OID 1.3.6.1.4.1.311.2.2.10.
const NTLM_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

/// `negState` of a `NegTokenResp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegState {
    /// The exchange succeeded.
    AcceptCompleted = 0,
    /// Another leg is needed.
    AcceptIncomplete = 1,
    /// The exchange failed.
    Reject = 2,
}

/// A DER element: tag and contents.
struct Tlv<'a> {
    tag: u8,
    value: &'a [u8],
}

/// Reads one DER element from the front of `bytes`, returning it and the rest.
fn read_tlv(bytes: &[u8]) -> Result<(Tlv<'_>, &[u8]), NtlmError> {
    let bad = NtlmError::Spnego("truncated DER");
    let (&tag, rest) = bytes.split_first().ok_or(bad.clone())?;
    let (&first, mut rest) = rest.split_first().ok_or(bad.clone())?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 3 || rest.len() < n {
            return Err(NtlmError::Spnego("unsupported DER length"));
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(bad);
    }
    Ok((Tlv { tag, value: &rest[..len] }, &rest[len..]))
}

/// All elements of a constructed value.
fn read_all(mut bytes: &[u8]) -> Result<Vec<Tlv<'_>>, NtlmError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (tlv, rest) = read_tlv(bytes)?;
        out.push(tlv);
        bytes = rest;
    }
    Ok(out)
}

/// DER-encodes one element.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len < 0x10000 {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
    out
}

/// Whether a `Negotiate` token is SPNEGO rather than raw NTLM.
pub fn is_spnego(token: &[u8]) -> bool {
    matches!(token.first(), Some(0x60 | 0xa1))
}

/// The NTLM message inside a `NegTokenInit` or `NegTokenResp` (or the token itself when it is
/// raw NTLM).
pub fn unwrap(token: &[u8]) -> Result<Vec<u8>, NtlmError> {
    if token.starts_with(&crate::messages::SIGNATURE) {
        return Ok(token.to_vec());
    }
    let (outer, _) = read_tlv(token)?;
    match outer.tag {
        // [APPLICATION 0] { OID spnego, [0] NegTokenInit }
        0x60 => {
            let (oid, rest) = read_tlv(outer.value)?;
            if oid.tag != 0x06 || oid.value != SPNEGO_OID {
                return Err(NtlmError::Spnego("not a SPNEGO token"));
            }
            let (init, _) = read_tlv(rest)?;
            let (seq, _) = read_tlv(init.value)?;
            let mut mech_types_has_ntlm = false;
            let mut mech_token = None;
            for field in read_all(seq.value)? {
                match field.tag {
                    0xa0 => {
                        let (list, _) = read_tlv(field.value)?;
                        let mechs = read_all(list.value)?;
                        mech_types_has_ntlm = mechs.first().is_some_and(|m| m.value == NTLM_OID);
                    }
                    0xa2 => mech_token = Some(read_tlv(field.value)?.0.value.to_vec()),
                    _ => {}
                }
            }
            match mech_token {
                Some(token) if mech_types_has_ntlm && token.starts_with(&crate::messages::SIGNATURE) => Ok(token),
                _ => Err(NtlmError::Spnego("the preferred mechanism is not NTLM with an optimistic token")),
            }
        }
        // [1] NegTokenResp { ..., [2] responseToken }
        0xa1 => {
            let (seq, _) = read_tlv(outer.value)?;
            for field in read_all(seq.value)? {
                if field.tag == 0xa2 {
                    return Ok(read_tlv(field.value)?.0.value.to_vec());
                }
            }
            Err(NtlmError::Spnego("NegTokenResp without a responseToken"))
        }
        _ => Err(NtlmError::Spnego("neither NegTokenInit nor NegTokenResp")),
    }
}

/// A client's first token: `NegTokenInit` offering NTLM with the NEGOTIATE as optimistic token.
pub fn wrap_init(ntlm: &[u8]) -> Vec<u8> {
    let mech_types = tlv(0xa0, &tlv(0x30, &tlv(0x06, NTLM_OID)));
    let mech_token = tlv(0xa2, &tlv(0x04, ntlm));
    let init = tlv(0xa0, &tlv(0x30, &[mech_types, mech_token].concat()));
    tlv(0x60, &[tlv(0x06, SPNEGO_OID), init].concat())
}

/// A `NegTokenResp` with `negState`, the NTLM mechanism (on the server's first answer) and an
/// optional NTLM message.
pub fn wrap_resp(state: Option<NegState>, announce_mech: bool, ntlm: Option<&[u8]>) -> Vec<u8> {
    let mut fields = Vec::new();
    if let Some(state) = state {
        fields.extend(tlv(0xa0, &tlv(0x0a, &[state as u8])));
    }
    if announce_mech {
        fields.extend(tlv(0xa1, &tlv(0x06, NTLM_OID)));
    }
    if let Some(token) = ntlm {
        fields.extend(tlv(0xa2, &tlv(0x04, token)));
    }
    tlv(0xa1, &tlv(0x30, &fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_and_resp_round_trip() {
        let ntlm = [crate::messages::SIGNATURE.as_slice(), &[1, 0, 0, 0], &[0; 300]].concat();
        assert!(is_spnego(&wrap_init(&ntlm)));
        assert_eq!(unwrap(&wrap_init(&ntlm)).unwrap(), ntlm);
        assert_eq!(unwrap(&wrap_resp(None, false, Some(&ntlm))).unwrap(), ntlm);
        assert_eq!(unwrap(&wrap_resp(Some(NegState::AcceptIncomplete), true, Some(&ntlm))).unwrap(), ntlm);
        assert_eq!(unwrap(&ntlm).unwrap(), ntlm);
    }

    #[test]
    fn kerberos_first_is_refused() {
        // NegTokenInit whose first mech is Kerberos (1.2.840.113554.1.2.2).
        let krb = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
        let mechs = tlv(0xa0, &tlv(0x30, &[tlv(0x06, &krb), tlv(0x06, NTLM_OID)].concat()));
        let token = tlv(0x60, &[tlv(0x06, SPNEGO_OID), tlv(0xa0, &tlv(0x30, &mechs))].concat());
        assert!(matches!(unwrap(&token), Err(NtlmError::Spnego(_))));
        assert!(unwrap(&[0x60, 0x05, 0x06]).is_err());
    }
}
