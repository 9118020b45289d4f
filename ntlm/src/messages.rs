//! The three NTLM messages (MS-NLMP §2.2.1) and the AV pair list (§2.2.2.1): byte layouts only,
//! no policy. Decoders bound-check every security buffer, because these bytes come straight
//! from an HTTP header of an unauthenticated peer.

use crate::NtlmError;
use crate::flags::*;

/// Every NTLM message starts with this.
pub const SIGNATURE: [u8; 8] = *b"NTLMSSP\0";

/// The `Version` this crate announces: Windows 10 / Server 2019 (10.0.17763), NTLM revision 15.
/// Only used for debugging by peers, but Windows clients expect the field to be there.
pub const VERSION: [u8; 8] = [10, 0, 0x63, 0x45, 0, 0, 0, 15];

/// The message type (1, 2 or 3) of an NTLM message, after checking its signature.
pub fn message_type(bytes: &[u8]) -> Result<u32, NtlmError> {
    if bytes.len() < 12 || bytes[..8] != SIGNATURE {
        return Err(NtlmError::Malformed("missing NTLMSSP signature"));
    }
    Ok(u32_at(bytes, 8))
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// A security buffer (length, max length, offset) at `at`, as `(offset, length)`.
fn field(bytes: &[u8], at: usize) -> (usize, usize) {
    (u32_at(bytes, at + 4) as usize, u16_at(bytes, at) as usize)
}

/// The payload a security buffer points at, checked against the message bounds.
fn payload(bytes: &[u8], at: usize) -> Result<&[u8], NtlmError> {
    let (offset, len) = field(bytes, at);
    if len == 0 {
        return Ok(&[]);
    }
    offset
        .checked_add(len)
        .filter(|end| *end <= bytes.len())
        .map(|end| &bytes[offset..end])
        .ok_or(NtlmError::Malformed("a security buffer points outside the message"))
}

/// Decodes a string in the charset the flags select. OEM is read as Latin-1: the real OEM code
/// page is a property of the peer's machine, and ASCII (all curl sends) is the same in all.
pub fn decode_string(bytes: &[u8], flags: u32) -> Result<String, NtlmError> {
    if flags & NEGOTIATE_UNICODE != 0 {
        if !bytes.len().is_multiple_of(2) {
            return Err(NtlmError::Malformed("odd-length UTF-16 string"));
        }
        let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        String::from_utf16(&units).map_err(|_| NtlmError::Malformed("invalid UTF-16 string"))
    } else {
        Ok(bytes.iter().map(|b| char::from(*b)).collect())
    }
}

/// Encodes a string in the charset the flags select (OEM: Latin-1, `?` for anything else).
pub fn encode_string(text: &str, flags: u32) -> Vec<u8> {
    if flags & NEGOTIATE_UNICODE != 0 {
        crate::crypto::utf16le(text)
    } else {
        text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect()
    }
}

/// Builds a message: a fixed header with security buffers filled in as payloads are appended.
struct Builder {
    /// Header followed by payloads.
    bytes: Vec<u8>,
}

impl Builder {
    fn new(message_type: u32, header_len: usize) -> Builder {
        let mut bytes = vec![0u8; header_len];
        bytes[..8].copy_from_slice(&SIGNATURE);
        bytes[8..12].copy_from_slice(&message_type.to_le_bytes());
        Builder { bytes }
    }

    fn put_u32(&mut self, at: usize, value: u32) {
        self.bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Appends `data` and points the security buffer at `at` to it.
    fn put_payload(&mut self, at: usize, data: &[u8]) {
        let offset = self.bytes.len() as u32;
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        self.bytes[at..at + 2].copy_from_slice(&len.to_le_bytes());
        self.bytes[at + 2..at + 4].copy_from_slice(&len.to_le_bytes());
        self.bytes[at + 4..at + 8].copy_from_slice(&offset.to_le_bytes());
        self.bytes.extend_from_slice(&data[..len as usize]);
    }
}

/// One attribute/value pair of `TargetInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvPair {
    /// `AvId` (see the `AV_*` constants).
    pub id: u16,
    /// The raw value (strings are always UTF-16LE here, whatever the charset flags say).
    pub value: Vec<u8>,
}

/// The AV pair list of a CHALLENGE (and, extended by the client, of the NTLMv2 blob).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetInfo {
    /// The pairs in wire order, without the terminating `MsvAvEOL`.
    pub pairs: Vec<AvPair>,
}

impl TargetInfo {
    /// Parses a list that must end with `MsvAvEOL`.
    pub fn decode(mut bytes: &[u8]) -> Result<TargetInfo, NtlmError> {
        let mut pairs = Vec::new();
        loop {
            if bytes.len() < 4 {
                return Err(NtlmError::Malformed("AV pair list without MsvAvEOL"));
            }
            let (id, len) = (u16_at(bytes, 0), u16_at(bytes, 2) as usize);
            if id == AV_EOL {
                return Ok(TargetInfo { pairs });
            }
            let value = bytes.get(4..4 + len).ok_or(NtlmError::Malformed("truncated AV pair"))?;
            pairs.push(AvPair { id, value: value.to_vec() });
            bytes = &bytes[4 + len..];
        }
    }

    /// The wire form, terminated by `MsvAvEOL`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for pair in &self.pairs {
            out.extend_from_slice(&pair.id.to_le_bytes());
            out.extend_from_slice(&(pair.value.len() as u16).to_le_bytes());
            out.extend_from_slice(&pair.value);
        }
        out.extend_from_slice(&[0; 4]);
        out
    }

    /// The value of the first pair with this id.
    pub fn get(&self, id: u16) -> Option<&[u8]> {
        self.pairs.iter().find(|p| p.id == id).map(|p| p.value.as_slice())
    }

    /// Replaces the value of pair `id`, or appends it.
    pub fn set(&mut self, id: u16, value: Vec<u8>) {
        match self.pairs.iter_mut().find(|p| p.id == id) {
            Some(pair) => pair.value = value,
            None => self.pairs.push(AvPair { id, value }),
        }
    }

    /// A name pair decoded from UTF-16LE.
    pub fn string(&self, id: u16) -> Option<String> {
        self.get(id).and_then(|v| decode_string(v, NEGOTIATE_UNICODE).ok())
    }

    /// `MsvAvTimestamp` as a FILETIME.
    pub fn timestamp(&self) -> Option<u64> {
        self.get(AV_TIMESTAMP).and_then(|v| v.try_into().ok()).map(u64::from_le_bytes)
    }

    /// `MsvAvFlags` (0 when absent).
    pub fn flags(&self) -> u32 {
        self.get(AV_FLAGS).and_then(|v| v.try_into().ok()).map(u32::from_le_bytes).unwrap_or(0)
    }
}

/// Type 1: the client's opening offer of flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateMessage {
    /// The flags the client asks for.
    pub flags: u32,
    /// The client's domain (OEM), when `OEM_DOMAIN_SUPPLIED`.
    pub domain: String,
    /// The client's workstation (OEM), when `OEM_WORKSTATION_SUPPLIED`.
    pub workstation: String,
    /// The client's version, when `NEGOTIATE_VERSION` and present.
    pub version: Option<[u8; 8]>,
}

impl NegotiateMessage {
    /// Parses a NEGOTIATE. Accepts the short 16-byte form and curl's 32-byte form.
    pub fn decode(bytes: &[u8]) -> Result<NegotiateMessage, NtlmError> {
        let found = message_type(bytes)?;
        if found != 1 {
            return Err(NtlmError::UnexpectedMessageType { expected: 1, found });
        }
        if bytes.len() < 16 {
            return Err(NtlmError::Malformed("NEGOTIATE shorter than 16 bytes"));
        }
        let flags = u32_at(bytes, 12);
        let mut message = NegotiateMessage { flags, domain: String::new(), workstation: String::new(), version: None };
        if bytes.len() >= 32 {
            if flags & OEM_DOMAIN_SUPPLIED != 0 {
                message.domain = decode_string(payload(bytes, 16)?, 0)?;
            }
            if flags & OEM_WORKSTATION_SUPPLIED != 0 {
                message.workstation = decode_string(payload(bytes, 24)?, 0)?;
            }
            if flags & NEGOTIATE_VERSION != 0 && bytes.len() >= 40 {
                message.version = bytes[32..40].try_into().ok();
            }
        }
        Ok(message)
    }

    /// The wire form (40-byte header with `Version`).
    pub fn encode(&self) -> Vec<u8> {
        let mut flags = self.flags;
        flags = if self.domain.is_empty() { flags & !OEM_DOMAIN_SUPPLIED } else { flags | OEM_DOMAIN_SUPPLIED };
        flags = if self.workstation.is_empty() {
            flags & !OEM_WORKSTATION_SUPPLIED
        } else {
            flags | OEM_WORKSTATION_SUPPLIED
        };
        let mut b = Builder::new(1, 40);
        b.put_u32(12, flags);
        b.put_payload(16, &encode_string(&self.domain, 0));
        b.put_payload(24, &encode_string(&self.workstation, 0));
        b.bytes[32..40].copy_from_slice(&self.version.unwrap_or(VERSION));
        b.bytes
    }
}

/// Type 2: the server's answer, carrying the challenge and the target info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeMessage {
    /// The negotiated flags.
    pub flags: u32,
    /// The server's (domain) name, in the negotiated charset.
    pub target_name: String,
    /// The 8-byte nonce the client proves knowledge of the password against.
    pub server_challenge: [u8; 8],
    /// The raw AV pair list (see [`TargetInfo`]).
    pub target_info: Vec<u8>,
    /// The server's version, when `NEGOTIATE_VERSION`.
    pub version: Option<[u8; 8]>,
}

impl ChallengeMessage {
    /// Parses a CHALLENGE.
    pub fn decode(bytes: &[u8]) -> Result<ChallengeMessage, NtlmError> {
        let found = message_type(bytes)?;
        if found != 2 {
            return Err(NtlmError::UnexpectedMessageType { expected: 2, found });
        }
        if bytes.len() < 32 {
            return Err(NtlmError::Malformed("CHALLENGE shorter than 32 bytes"));
        }
        let flags = u32_at(bytes, 20);
        let target_name = decode_string(payload(bytes, 12)?, flags)?;
        let server_challenge = bytes[24..32].try_into().expect("8 bytes");
        let target_info = if flags & NEGOTIATE_TARGET_INFO != 0 && bytes.len() >= 48 {
            payload(bytes, 40)?.to_vec()
        } else {
            Vec::new()
        };
        let version =
            if flags & NEGOTIATE_VERSION != 0 && bytes.len() >= 56 { bytes[48..56].try_into().ok() } else { None };
        Ok(ChallengeMessage { flags, target_name, server_challenge, target_info, version })
    }

    /// The wire form (56-byte header with `Version`, then target name and target info).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Builder::new(2, 56);
        b.put_u32(20, self.flags);
        b.bytes[24..32].copy_from_slice(&self.server_challenge);
        b.bytes[48..56].copy_from_slice(&self.version.unwrap_or(VERSION));
        b.put_payload(12, &encode_string(&self.target_name, self.flags));
        b.put_payload(40, &self.target_info);
        b.bytes
    }
}

/// Offset of the MIC inside an AUTHENTICATE that carries one.
pub const MIC_OFFSET: usize = 72;

/// Type 3: the client's proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticateMessage {
    /// LMv2 response (24 bytes; zeros when the server sent a timestamp).
    pub lm_response: Vec<u8>,
    /// NTLMv2 response: NTProofStr ‖ blob (24 bytes would be NTLMv1).
    pub nt_response: Vec<u8>,
    /// The user's domain, as typed by the user.
    pub domain: String,
    /// The user name, as typed by the user.
    pub user: String,
    /// The client machine's name.
    pub workstation: String,
    /// The RC4-wrapped random session key, under key exchange.
    pub encrypted_session_key: Vec<u8>,
    /// The flags the client settled on (the CHALLENGE's flags for the old 52-byte layout).
    pub flags: u32,
    /// The client's version, when present.
    pub version: Option<[u8; 8]>,
    /// The 16 bytes at the MIC position, when the header is long enough to hold one. Whether
    /// they are a MIC is said by `MsvAvFlags` in the blob, not by the layout.
    pub mic: Option<[u8; 16]>,
}

impl AuthenticateMessage {
    /// Parses an AUTHENTICATE. `challenge_flags` decide the charset when the message is in the
    /// old layout without its own flags.
    pub fn decode(bytes: &[u8], challenge_flags: u32) -> Result<AuthenticateMessage, NtlmError> {
        let found = message_type(bytes)?;
        if found != 3 {
            return Err(NtlmError::UnexpectedMessageType { expected: 3, found });
        }
        if bytes.len() < 52 {
            return Err(NtlmError::Malformed("AUTHENTICATE shorter than 52 bytes"));
        }
        // The header ends where the first payload starts.
        let mut buffers = vec![12, 20, 28, 36, 44];
        let header_end = |buffers: &[usize]| {
            buffers
                .iter()
                .map(|at| field(bytes, *at))
                .filter(|(_, len)| *len > 0)
                .map(|(offset, _)| offset)
                .min()
                .unwrap_or(bytes.len())
        };
        let has_flags = bytes.len() >= 64 && header_end(&buffers) >= 64;
        if has_flags {
            buffers.push(52);
        }
        let end = header_end(&buffers);
        let flags = if has_flags { u32_at(bytes, 60) } else { challenge_flags };
        let version = (end >= 72 && bytes.len() >= 72).then(|| bytes[64..72].try_into().expect("8 bytes"));
        let mic = (end >= 88 && bytes.len() >= 88).then(|| bytes[72..88].try_into().expect("16 bytes"));
        Ok(AuthenticateMessage {
            lm_response: payload(bytes, 12)?.to_vec(),
            nt_response: payload(bytes, 20)?.to_vec(),
            domain: decode_string(payload(bytes, 28)?, flags)?,
            user: decode_string(payload(bytes, 36)?, flags)?,
            workstation: decode_string(payload(bytes, 44)?, flags)?,
            encrypted_session_key: if has_flags { payload(bytes, 52)?.to_vec() } else { Vec::new() },
            flags,
            version,
            mic,
        })
    }

    /// The wire form: 88-byte header (with `Version` and a MIC slot) when `mic` is set, else 72.
    /// Payload order follows Windows: domain, user, workstation, LM, NT, session key.
    pub fn encode(&self) -> Vec<u8> {
        let header = if self.mic.is_some() { 88 } else { 72 };
        let mut b = Builder::new(3, header);
        b.put_u32(60, self.flags);
        b.bytes[64..72].copy_from_slice(&self.version.unwrap_or(VERSION));
        if let Some(mic) = &self.mic {
            b.bytes[MIC_OFFSET..MIC_OFFSET + 16].copy_from_slice(mic);
        }
        b.put_payload(28, &encode_string(&self.domain, self.flags));
        b.put_payload(36, &encode_string(&self.user, self.flags));
        b.put_payload(44, &encode_string(&self.workstation, self.flags));
        b.put_payload(12, &self.lm_response);
        b.put_payload(20, &self.nt_response);
        b.put_payload(52, &self.encrypted_session_key);
        b.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_out_of_bounds_messages_are_rejected() {
        assert!(matches!(message_type(b"NTLMSSP"), Err(NtlmError::Malformed(_))));
        assert!(matches!(message_type(b"NTLMSSX\0\x01\0\0\0"), Err(NtlmError::Malformed(_))));
        let mut msg = ChallengeMessage {
            flags: NEGOTIATE_UNICODE | NEGOTIATE_TARGET_INFO,
            target_name: "D".into(),
            server_challenge: [1; 8],
            target_info: TargetInfo::default().encode(),
            version: None,
        }
        .encode();
        assert!(ChallengeMessage::decode(&msg).is_ok());
        msg[16] = 0xff; // target name offset far outside
        assert!(matches!(ChallengeMessage::decode(&msg), Err(NtlmError::Malformed(_))));
        assert!(matches!(
            NegotiateMessage::decode(&msg),
            Err(NtlmError::UnexpectedMessageType { expected: 1, found: 2 })
        ));
    }

    #[test]
    fn av_pairs_round_trip_and_need_eol() {
        let mut info = TargetInfo::default();
        info.set(AV_NB_DOMAIN_NAME, crate::crypto::utf16le("Domain"));
        info.set(AV_TIMESTAMP, 42u64.to_le_bytes().to_vec());
        let bytes = info.encode();
        let back = TargetInfo::decode(&bytes).unwrap();
        assert_eq!(back.string(AV_NB_DOMAIN_NAME).as_deref(), Some("Domain"));
        assert_eq!(back.timestamp(), Some(42));
        assert!(TargetInfo::decode(&bytes[..bytes.len() - 4]).is_err());
    }

    #[test]
    fn oem_strings_are_latin1() {
        assert_eq!(encode_string("GPDOMAIN", 0), b"GPDOMAIN");
        assert_eq!(decode_string(b"caf\xe9", 0).unwrap(), "café");
        assert_eq!(encode_string("\u{263a}", 0), b"?");
    }
}
