//! `NegotiateFlags` bits (MS-NLMP §2.2.2.5) and AV pair ids (§2.2.2.1).
//!
//! Plain `u32` constants rather than a bitflags type: the flags travel as raw little-endian words
//! in every message, and tests compare them with the hex values seen on the wire (curl's Type-1
//! is `0x00088206`).

/// Strings are UTF-16LE.
pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
/// Strings are in the OEM code page (curl asks for this one only).
pub const NEGOTIATE_OEM: u32 = 0x0000_0002;
/// The server must put its name in `TargetName`.
pub const REQUEST_TARGET: u32 = 0x0000_0004;
/// Message signing (session security); requested by Windows clients.
pub const NEGOTIATE_SIGN: u32 = 0x0000_0010;
/// Message confidentiality (session security).
pub const NEGOTIATE_SEAL: u32 = 0x0000_0020;
/// LAN Manager session key (superseded by extended session security).
pub const NEGOTIATE_LM_KEY: u32 = 0x0000_0080;
/// NTLM authentication (v1 message format; NTLMv2 uses it too).
pub const NEGOTIATE_NTLM: u32 = 0x0000_0200;
/// Anonymous connection.
pub const ANONYMOUS: u32 = 0x0000_0800;
/// The NEGOTIATE carries a domain name.
pub const OEM_DOMAIN_SUPPLIED: u32 = 0x0000_1000;
/// The NEGOTIATE carries a workstation name.
pub const OEM_WORKSTATION_SUPPLIED: u32 = 0x0000_2000;
/// Sign with a dummy signature even without signing negotiated.
pub const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
/// `TargetName` is a domain name.
pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
/// `TargetName` is a server name.
pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
/// Extended session security (curl's `NTLM2_KEY`); curl only sends NTLMv2 when the server sets it.
pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
/// Identify-level token.
pub const NEGOTIATE_IDENTIFY: u32 = 0x0010_0000;
/// LMOWF-based session key.
pub const REQUEST_NON_NT_SESSION_KEY: u32 = 0x0040_0000;
/// The CHALLENGE carries `TargetInfo` (required for NTLMv2).
pub const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
/// The `Version` field is meaningful.
pub const NEGOTIATE_VERSION: u32 = 0x0200_0000;
/// 128-bit session keys.
pub const NEGOTIATE_128: u32 = 0x2000_0000;
/// Key exchange: the AUTHENTICATE carries an RC4-encrypted random session key.
pub const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
/// 56-bit session keys.
pub const NEGOTIATE_56: u32 = 0x8000_0000;

/// AV pair id: end of list.
pub const AV_EOL: u16 = 0;
/// AV pair id: NetBIOS computer name.
pub const AV_NB_COMPUTER_NAME: u16 = 1;
/// AV pair id: NetBIOS domain name.
pub const AV_NB_DOMAIN_NAME: u16 = 2;
/// AV pair id: DNS computer name.
pub const AV_DNS_COMPUTER_NAME: u16 = 3;
/// AV pair id: DNS domain name.
pub const AV_DNS_DOMAIN_NAME: u16 = 4;
/// AV pair id: DNS forest name.
pub const AV_DNS_TREE_NAME: u16 = 5;
/// AV pair id: flags (bit 0x2 = the AUTHENTICATE carries a MIC).
pub const AV_FLAGS: u16 = 6;
/// AV pair id: server time as a FILETIME.
pub const AV_TIMESTAMP: u16 = 7;
/// AV pair id: single host data.
pub const AV_SINGLE_HOST: u16 = 8;
/// AV pair id: the SPN the client authenticates to.
pub const AV_TARGET_NAME: u16 = 9;
/// AV pair id: channel binding hash.
pub const AV_CHANNEL_BINDINGS: u16 = 10;

/// `MsvAvFlags` bit: the AUTHENTICATE message carries a MIC.
pub const AV_FLAG_MIC_PRESENT: u32 = 0x0000_0002;
