//! MS-NLMP §4.2.4 test vectors, a replay of a published third-party AUTHENTICATE (with MIC),
//! client ↔ server round trips, and the failure cases an acceptor must get right.

use ntlm::crypto;
use ntlm::flags::*;
use ntlm::http::{self, Scheme};
use ntlm::messages::{ChallengeMessage, NegotiateMessage, TargetInfo};
use ntlm::{Client, NtlmError, Server, ServerState};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
const CLIENT_CHALLENGE: [u8; 8] = [0xaa; 8];

/// §4.2.4's target info: MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server", EOL.
fn spec_target_info() -> Vec<u8> {
    let mut info = TargetInfo::default();
    info.set(AV_NB_DOMAIN_NAME, crypto::utf16le("Domain"));
    info.set(AV_NB_COMPUTER_NAME, crypto::utf16le("Server"));
    info.encode()
}

/// The CHALLENGE of §4.2.4.3: flags 0xe28a8233, target name "Server", the spec's target info.
fn spec_challenge() -> Vec<u8> {
    [
        unhex("4e544c4d53535000 02000000 0c000c00 38000000 33828ae2 0123456789abcdef 0000000000000000"),
        unhex("24002400 44000000 060070170000000f"),
        crypto::utf16le("Server"),
        spec_target_info(),
    ]
    .concat()
}

#[test]
fn spec_ntowfv2() {
    assert_eq!(hex(&crypto::ntowfv2("Password", "User", "Domain")), "0c868a403bfd7a93a3001ef22ef02e3f");
}

#[test]
fn spec_lmv2_response() {
    let key = crypto::ntowfv2("Password", "User", "Domain");
    assert_eq!(
        hex(&crypto::lmv2_response(&key, &SERVER_CHALLENGE, &CLIENT_CHALLENGE)),
        "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa"
    );
}

#[test]
fn spec_ntlmv2_proof_and_session_key() {
    let key = crypto::ntowfv2("Password", "User", "Domain");
    let blob = crypto::ntlmv2_blob(0, &CLIENT_CHALLENGE, &spec_target_info());
    // "temp" of §4.2.4.1.3.
    assert_eq!(
        blob,
        unhex(
            "0101000000000000 0000000000000000 aaaaaaaaaaaaaaaa 00000000
             02000c0044006f006d00610069006e00 01000c00530065007200760065007200 00000000 00000000"
        )
    );
    let proof = crypto::nt_proof(&key, &SERVER_CHALLENGE, &blob);
    assert_eq!(hex(&proof), "68cd0ab851e51c96aabc927bebef6a1c");
    let base = crypto::session_base_key(&key, &proof);
    assert_eq!(hex(&base), "8de40ccadbc14a82f15cb0ad0de95ca3");
    // §4.2.4.2.3: the random session key 0x55.. wrapped under key exchange.
    assert_eq!(hex(&crypto::rc4(&base, &[0x55; 16])), "c5dad2544fc9799094ce1ce90bc9d03e");
    let (response, key2) = crypto::ntlmv2_response(&key, &SERVER_CHALLENGE, &CLIENT_CHALLENGE, 0, &spec_target_info());
    assert_eq!(&response[..16], &proof);
    assert_eq!(key2, base);
}

#[test]
fn spec_challenge_message_decodes() {
    // §4.2.4.3 CHALLENGE_MESSAGE.
    let bytes = spec_challenge();
    let message = ChallengeMessage::decode(&bytes).unwrap();
    assert_eq!(message.flags, 0xe28a_8233);
    assert_eq!(message.target_name, "Server");
    assert_eq!(message.server_challenge, SERVER_CHALLENGE);
    assert_eq!(message.target_info, spec_target_info());
}

/// An AUTHENTICATE built by Chromium's NTLM implementation against the spec's CHALLENGE (its
/// test data, derived from MS-NLMP §4.2): NTLMv2 with a client timestamp, MsvAvFlags announcing a
/// MIC, channel bindings and an SPN. An independent implementation's MIC must verify here.
#[test]
fn third_party_authenticate_with_mic_verifies() {
    let negotiate = unhex("4e544c4d53535000 01000000 07820800 0000000020000000 0000000020000000");
    let challenge = spec_challenge();
    let target_info = [
        unhex("02000c00"),
        crypto::utf16le("Domain"),
        unhex("01000c00"),
        crypto::utf16le("Server"),
        unhex("06000400 02000000 0a001000 6586e99d81c2fc984e47172fd4dd0310 09001600"),
        crypto::utf16le("HTTP/Server"),
        unhex("00000000"),
    ]
    .concat();
    let nt_response = [
        unhex("8c0260dbef690662af9c42d50782d2ed 0101000000000000 800bc8fd00d4d201 aaaaaaaaaaaaaaaa 00000000"),
        target_info,
        unhex("00000000"),
    ]
    .concat();
    assert_eq!(nt_response.len(), 0x8a);
    let authenticate = [
        unhex(
            "4e544c4d53535000 03000000 18001800 58000000 8a008a00 70000000 0c000c00 fa000000
             08000800 06010000 10001000 0e010000 00000000 58000000 03820800 0000000000000000
             f7361633f0ad9bdf4a7c421bc6b824a3",
        ),
        vec![0; 24],
        nt_response,
        crypto::utf16le("Domain"),
        crypto::utf16le("User"),
        crypto::utf16le("COMPUTER"),
    ]
    .concat();
    let server = Server::new([("Domain", "User", "Password")]);
    let state = ServerState::from_messages(&negotiate, &challenge).unwrap();
    let identity = server.verify(state.clone(), &authenticate).unwrap();
    assert_eq!((identity.domain.as_str(), identity.user.as_str()), ("Domain", "User"));
    assert_eq!(identity.workstation, "COMPUTER");
    assert!(identity.mic_verified);
    assert_eq!(hex(&identity.session_key), "623dbd071be7a530b6a95c2eb4982470");

    // The workstation name is covered only by the MIC: change it and the MIC must fail.
    let mut tampered = authenticate.clone();
    let last = tampered.len() - 2;
    tampered[last] = b'X';
    assert_eq!(server.verify(state.clone(), &tampered).unwrap_err(), NtlmError::MicMismatch);

    let wrong = Server::new([("Domain", "User", "password")]);
    assert!(matches!(wrong.verify(state, &authenticate), Err(NtlmError::LogonFailure { .. })));
}

fn gp_server() -> Server {
    Server::new([("GPDOMAIN", "gpuser", "Passw0rd!"), ("OTHER", "someone", "secret")])
}

#[test]
fn client_server_round_trip_with_mic_and_key_exchange() {
    let server = gp_server();
    let mut client = Client::new("GPDOMAIN", "gpuser", "Passw0rd!");
    let (challenge, state) = server.challenge(&client.negotiate()).unwrap();
    let parsed = ChallengeMessage::decode(&challenge).unwrap();
    assert_ne!(parsed.flags & NEGOTIATE_UNICODE, 0);
    assert_ne!(parsed.flags & NEGOTIATE_KEY_EXCH, 0);
    let info = TargetInfo::decode(&parsed.target_info).unwrap();
    assert_eq!(info.string(AV_NB_DOMAIN_NAME).as_deref(), Some("GPDOMAIN"));
    assert_eq!(info.string(AV_NB_COMPUTER_NAME).as_deref(), Some("GPSERVER"));
    assert_eq!(info.string(AV_DNS_DOMAIN_NAME).as_deref(), Some("gpdomain.local"));
    assert_eq!(info.string(AV_DNS_COMPUTER_NAME).as_deref(), Some("gpserver.gpdomain.local"));
    assert!(info.timestamp().is_some());
    let authenticate = client.authenticate(&challenge).unwrap();
    let identity = server.verify(state, &authenticate).unwrap();
    assert_eq!(identity.to_string(), "GPDOMAIN\\gpuser");
    assert!(identity.mic_verified);
    assert_eq!(identity.workstation, "MLCONNECTOR");
}

#[test]
fn names_are_case_insensitive_and_empty_domain_means_the_servers() {
    let server = gp_server();
    for (domain, user) in [("gpdomain", "GPUSER"), ("", "gpuser"), ("gpdomain.local", "gpuser")] {
        let mut client = Client::new(domain, user, "Passw0rd!");
        let (challenge, state) = server.challenge(&client.negotiate()).unwrap();
        let identity = server.verify(state, &client.authenticate(&challenge).unwrap()).unwrap();
        assert_eq!(identity.user, "gpuser", "{domain}\\{user}");
    }
    let mut client = Client::new("", "gpuser@GPDOMAIN", "Passw0rd!");
    let (challenge, state) = server.challenge(&client.negotiate()).unwrap();
    assert!(server.verify(state, &client.authenticate(&challenge).unwrap()).is_ok());
}

#[test]
fn wrong_password_fails_and_the_error_holds_no_secret() {
    let server = gp_server();
    let mut client = Client::new("GPDOMAIN", "gpuser", "wrong-password");
    let (challenge, state) = server.challenge(&client.negotiate()).unwrap();
    let error = server.verify(state, &client.authenticate(&challenge).unwrap()).unwrap_err();
    assert!(matches!(error, NtlmError::LogonFailure { .. }));
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("wrong-password") && !shown.contains("Passw0rd!"), "{shown}");
    // Another account's password does not open this one.
    let mut client = Client::new("GPDOMAIN", "gpuser", "secret");
    let (challenge, state) = server.challenge(&client.negotiate()).unwrap();
    assert!(server.verify(state, &client.authenticate(&challenge).unwrap()).is_err());
    // Unknown users and domains.
    let mut client = Client::new("NOPE", "gpuser", "Passw0rd!");
    let (challenge, state) = server.challenge(&client.negotiate()).unwrap();
    assert!(matches!(
        server.verify(state, &client.authenticate(&challenge).unwrap()),
        Err(NtlmError::UnknownUser { .. })
    ));
}

#[test]
fn tampered_messages_fail() {
    let server = gp_server();
    let run = |tamper: &dyn Fn(&mut Vec<u8>)| {
        let mut client = Client::new("GPDOMAIN", "gpuser", "Passw0rd!");
        let (challenge, state) = server.challenge(&client.negotiate()).unwrap();
        let mut authenticate = client.authenticate(&challenge).unwrap();
        tamper(&mut authenticate);
        server.verify(state, &authenticate)
    };
    assert!(run(&|_| {}).is_ok());
    // The blob's client challenge (NT response starts after the 88-byte header and the payloads
    // domain, user, workstation, LM): flip its last byte.
    let nt_offset = |m: &Vec<u8>| u32::from_le_bytes(m[24..28].try_into().unwrap()) as usize;
    assert!(matches!(
        run(&|m| {
            let at = nt_offset(m) + 16 + 16;
            m[at] ^= 1;
        }),
        Err(NtlmError::LogonFailure { .. })
    ));
    // The proof itself.
    assert!(matches!(
        run(&|m| {
            let at = nt_offset(m);
            m[at] ^= 1;
        }),
        Err(NtlmError::LogonFailure { .. })
    ));
    // The MIC.
    assert_eq!(run(&|m| m[80] ^= 1).unwrap_err(), NtlmError::MicMismatch);
    // The flags word (covered by the MIC only).
    assert_eq!(run(&|m| m[60] ^= 0x10).unwrap_err(), NtlmError::MicMismatch);
    // Truncation and garbage.
    assert!(matches!(run(&|m| m.truncate(40)), Err(NtlmError::Malformed(_))));
    assert!(matches!(run(&|m| m[20] = 0xff), Err(NtlmError::Malformed(_)) | Err(NtlmError::LogonFailure { .. })));
}

#[test]
fn an_authenticate_for_another_challenge_fails() {
    let server = gp_server();
    let mut client = Client::new("GPDOMAIN", "gpuser", "Passw0rd!");
    let (challenge, _first) = server.challenge(&client.negotiate()).unwrap();
    let (_, second) = server.challenge(&Client::new("x", "y", "z").negotiate()).unwrap();
    let authenticate = client.authenticate(&challenge).unwrap();
    assert!(server.verify(second, &authenticate).is_err());
}

/// curl 7.88's NEGOTIATE: OEM | REQUEST_TARGET | NTLM | ALWAYS_SIGN | NTLM2_KEY, empty domain and
/// host buffers, no version (reference §5.2: flags 0x00088206).
fn curl_negotiate() -> Vec<u8> {
    unhex("4e544c4d53535000 01000000 06820800 0000000000000000 0000000000000000")
}

/// curl's AUTHENTICATE layout: 64-byte header, OEM strings when the server chose OEM, LMv2 and
/// NTLMv2 responses, no version, no MIC, the CHALLENGE's flags echoed.
fn curl_authenticate(challenge: &[u8], domain: &str, user: &str, password: &str) -> Vec<u8> {
    let parsed = ChallengeMessage::decode(challenge).unwrap();
    let key = crypto::ntowfv2(password, user, domain);
    let client_challenge = [7u8; 8];
    let lm = crypto::lmv2_response(&key, &parsed.server_challenge, &client_challenge);
    let (nt, _) = crypto::ntlmv2_response(
        &key,
        &parsed.server_challenge,
        &client_challenge,
        crypto::filetime_now(),
        &parsed.target_info,
    );
    let unicode = parsed.flags & NEGOTIATE_UNICODE != 0;
    let enc = |s: &str| if unicode { crypto::utf16le(s) } else { s.as_bytes().to_vec() };
    let (dom, usr, host) = (enc(domain), enc(user), enc("curlhost"));
    let mut out = unhex("4e544c4d53535000 03000000");
    let mut offset = 64u32;
    let mut payload = Vec::new();
    for part in [&lm[..], &nt, &dom, &usr, &host] {
        let len = part.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += part.len() as u32;
        payload.extend_from_slice(part);
    }
    out.extend_from_slice(&[0; 8]); // session key buffer
    out.extend_from_slice(&parsed.flags.to_le_bytes());
    assert_eq!(out.len(), 64);
    out.extend_from_slice(&payload);
    out
}

#[test]
fn curl_style_oem_negotiate_is_accepted_and_answered_in_oem() {
    let server = gp_server();
    let negotiate = curl_negotiate();
    assert_eq!(NegotiateMessage::decode(&negotiate).unwrap().flags, 0x0008_8206);
    let (challenge, state) = server.challenge(&negotiate).unwrap();
    let parsed = ChallengeMessage::decode(&challenge).unwrap();
    assert_eq!(parsed.flags & NEGOTIATE_UNICODE, 0, "curl did not offer UNICODE");
    assert_ne!(parsed.flags & NEGOTIATE_OEM, 0);
    assert_ne!(parsed.flags & NEGOTIATE_EXTENDED_SESSIONSECURITY, 0, "curl sends NTLMv2 only with NTLM2_KEY");
    assert_ne!(parsed.flags & NEGOTIATE_TARGET_INFO, 0);
    assert_eq!(parsed.target_name, "GPDOMAIN");
    // The target name is OEM bytes in the payload.
    assert!(challenge.windows(8).any(|w| w == b"GPDOMAIN"));
    let identity = server.verify(state, &curl_authenticate(&challenge, "GPDOMAIN", "gpuser", "Passw0rd!")).unwrap();
    assert_eq!(identity.user, "gpuser");
    assert!(!identity.mic_verified);

    let (challenge, state) = server.challenge(&negotiate).unwrap();
    let wrong = curl_authenticate(&challenge, "GPDOMAIN", "gpuser", "Passw0rd?");
    assert!(matches!(server.verify(state, &wrong), Err(NtlmError::LogonFailure { .. })));
}

#[test]
fn ntlmv1_and_anonymous_are_refused() {
    let server = gp_server();
    let (challenge, state) = server.challenge(&curl_negotiate()).unwrap();
    let mut v1 = curl_authenticate(&challenge, "GPDOMAIN", "gpuser", "Passw0rd!");
    // Shrink the NT response to 24 bytes (an NTLMv1-sized response).
    v1[20..22].copy_from_slice(&24u16.to_le_bytes());
    assert!(matches!(server.verify(state.clone(), &v1), Err(NtlmError::Unsupported(_))));
    let mut anonymous = unhex("4e544c4d53535000 03000000");
    anonymous.extend_from_slice(&[0; 52]);
    assert!(matches!(server.verify(state, &anonymous), Err(NtlmError::Unsupported(_))));
    assert!(matches!(server.challenge(b"NTLMSSP\0\x01\0\0\0\0\0\0\0"), Err(NtlmError::Unsupported(_))));
}

#[test]
fn http_header_legs_raw_and_spnego() {
    let server = gp_server();
    for (scheme, spnego) in [(Scheme::Ntlm, false), (Scheme::Negotiate, false), (Scheme::Negotiate, true)] {
        let mut client = Client::new("GPDOMAIN", "gpuser", "Passw0rd!");
        let leg1 = http::authorization(scheme, &client.negotiate(), spnego);
        let token = http::parse(&leg1).unwrap().unwrap();
        assert_eq!((token.scheme, token.spnego), (scheme, spnego));
        let (challenge, state) = server.challenge(&token.ntlm).unwrap();
        let www = http::challenge(token.scheme, Some(&challenge), token.spnego);
        assert!(www.starts_with(scheme.name()));
        let back = http::find_challenge([scheme.name(), www.as_str()], scheme).unwrap();
        assert_eq!(back.ntlm, challenge);
        let leg3 = http::authorization(scheme, &client.authenticate(&back.ntlm).unwrap(), spnego);
        let token = http::parse(&leg3).unwrap().unwrap();
        assert_eq!(token.message_type().unwrap(), 3);
        assert!(server.verify(state, &token.ntlm).is_ok());
        assert_eq!(http::completed(scheme, spnego).is_some(), spnego);
    }
}
