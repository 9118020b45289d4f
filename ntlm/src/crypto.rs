//! The NTLMv2 computations of MS-NLMP §3.3.2 and §3.1.5.1.2, as small pure functions so the
//! spec's test vectors (§4.2.4) can check each one on its own.
//!
//! NTLMv1 is deliberately absent: the server refuses v1 responses (as Windows does at
//! `LmCompatibilityLevel` 5) and the client never produces them.

use hmac::{Hmac, KeyInit, Mac};
use md4::{Digest, Md4};
use md5::Md5;

/// HMAC-MD5 over the concatenation of `parts`.
pub fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// UTF-16LE bytes of a string (NTLM's "UNICODE()").
pub fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// NTOWFv1 = MD4(UNICODE(password)): the "NT hash" the server stores instead of the password.
pub fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16le(password)).into()
}

/// NTOWFv2 from an NT hash: HMAC-MD5(NT hash, UNICODE(Uppercase(user) ‖ domain)). The domain
/// keeps its case; only the user name is upper-cased.
pub fn ntowfv2_from_hash(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let mut identity = user.to_uppercase();
    identity.push_str(domain);
    hmac_md5(nt_hash, &[&utf16le(&identity)])
}

/// NTOWFv2(password, user, domain). LMOWFv2 is the same function.
pub fn ntowfv2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    ntowfv2_from_hash(&nt_hash(password), user, domain)
}

/// The client's blob (the spec's "temp"): RespType 1, HiRespType 1, six zero
/// bytes, the timestamp, the client challenge, four zero bytes, the AV pairs, four zero bytes.
pub fn ntlmv2_blob(timestamp: u64, client_challenge: &[u8; 8], target_info: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(32 + target_info.len());
    blob.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    blob.extend_from_slice(&timestamp.to_le_bytes());
    blob.extend_from_slice(client_challenge);
    blob.extend_from_slice(&[0; 4]);
    blob.extend_from_slice(target_info);
    blob.extend_from_slice(&[0; 4]);
    blob
}

/// NTProofStr = HMAC-MD5(NTOWFv2, ServerChallenge ‖ blob): the value the server recomputes from
/// the stored password. This comparison is the actual password check.
pub fn nt_proof(ntowfv2: &[u8; 16], server_challenge: &[u8; 8], blob: &[u8]) -> [u8; 16] {
    hmac_md5(ntowfv2, &[server_challenge, blob])
}

/// SessionBaseKey = HMAC-MD5(NTOWFv2, NTProofStr). For NTLMv2 it is also the KeyExchangeKey.
pub fn session_base_key(ntowfv2: &[u8; 16], nt_proof: &[u8; 16]) -> [u8; 16] {
    hmac_md5(ntowfv2, &[nt_proof])
}

/// LMv2 response = HMAC-MD5(LMOWFv2, ServerChallenge ‖ ClientChallenge) ‖ ClientChallenge.
/// Clients replace it with 24 zero bytes when the server sent a timestamp (§3.1.5.1.2).
pub fn lmv2_response(ntowfv2: &[u8; 16], server_challenge: &[u8; 8], client_challenge: &[u8; 8]) -> [u8; 24] {
    let mac = hmac_md5(ntowfv2, &[server_challenge, client_challenge]);
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(&mac);
    out[16..].copy_from_slice(client_challenge);
    out
}

/// The full NTLMv2 response (NTProofStr ‖ blob) and its session base key.
pub fn ntlmv2_response(
    ntowfv2: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
    timestamp: u64,
    target_info: &[u8],
) -> (Vec<u8>, [u8; 16]) {
    let blob = ntlmv2_blob(timestamp, client_challenge, target_info);
    let proof = nt_proof(ntowfv2, server_challenge, &blob);
    let mut response = Vec::with_capacity(16 + blob.len());
    response.extend_from_slice(&proof);
    response.extend_from_slice(&blob);
    (response, session_base_key(ntowfv2, &proof))
}

/// MIC = HMAC-MD5(ExportedSessionKey, NEGOTIATE ‖ CHALLENGE ‖ AUTHENTICATE), the AUTHENTICATE
/// with its MIC field zeroed.
pub fn mic(exported_session_key: &[u8; 16], negotiate: &[u8], challenge: &[u8], authenticate: &[u8]) -> [u8; 16] {
    hmac_md5(exported_session_key, &[negotiate, challenge, authenticate])
}

/// RC4 (the spec's RC4K), used only to wrap the random session key under key exchange. Written
/// out here because it is twenty lines and no maintained crate of this generation ships it
/// without pulling a cipher framework.
pub fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j: u8 = 0;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, j as usize);
    }
    let (mut i, mut j) = (0u8, 0u8);
    data.iter()
        .map(|byte| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(s[i as usize]);
            s.swap(i as usize, j as usize);
            byte ^ s[s[i as usize].wrapping_add(s[j as usize]) as usize]
        })
        .collect()
}

/// Equality whose time does not depend on where the first difference is.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Now as a Windows FILETIME (100 ns ticks since 1601-01-01 UTC).
pub fn filetime_now() -> u64 {
    const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
    let since_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (since_unix.as_secs() + EPOCH_DIFF_SECS) * 10_000_000 + u64::from(since_unix.subsec_nanos() / 100)
}

/// `N` random bytes from the operating system.
pub fn random<const N: usize>() -> Result<[u8; N], crate::NtlmError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| crate::NtlmError::Random)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc4_known_answer() {
        // RFC 6229 is keyed differently; this is the classic "Key"/"Plaintext" vector.
        assert_eq!(rc4(b"Key", b"Plaintext"), [0xbb, 0xf3, 0x16, 0xe8, 0xd9, 0x40, 0xaf, 0x0a, 0xd3]);
    }

    #[test]
    fn nt_hash_of_spec_password() {
        // MS-NLMP §4.2.2.1.2 NTOWFv1("Password").
        assert_eq!(hex(&nt_hash("Password")), "a4f49c406510bdcab6824ee7c30fd852");
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
