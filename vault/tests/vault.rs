//! Behaviour of the vault, the master key sources and the resolver, on real files.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use engine::config::SecretRef;
use engine::connector::SecretResolver;
use serde_json::Value;
use vault::{
    ENV_KEY_FILE, ENV_MASTER_KEY, ENV_PASSPHRASE, KdfParams, MasterKeySource, Secrets, Vault, VaultError,
    generate_key_file, master_key_from, validate_secret_name,
};

/// Argon2id parameters cheap enough for tests (the minimum memory, one pass).
const CHEAP: KdfParams = KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 };

fn key(byte: u8) -> MasterKeySource {
    MasterKeySource::from_key(&[byte; 32], format!("test key {byte}"))
}

fn vault_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join(".ml-connector").join("vault.json")
}

/// An environment made of `pairs` only.
fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn write_json(path: &Path, value: &Value) {
    fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn write_key_file(path: &Path, contents: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The vault

#[test]
fn set_get_round_trip_through_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let mut vault = Vault::create(&path, &key(1)).unwrap();
    vault.set("mailchimp_api_key", "abc123-us21").unwrap();
    vault.set("erp.password", "pässwörd with spaces\nand a newline").unwrap();
    vault.set("empty", "").unwrap();
    assert_eq!(vault.get("mailchimp_api_key").unwrap().as_deref().map(String::as_str), Some("abc123-us21"));

    let reopened = Vault::open(&path, &key(1)).unwrap();
    assert_eq!(reopened.get("mailchimp_api_key").unwrap().unwrap().as_str(), "abc123-us21");
    assert_eq!(reopened.get("erp.password").unwrap().unwrap().as_str(), "pässwörd with spaces\nand a newline");
    assert_eq!(reopened.get("empty").unwrap().unwrap().as_str(), "");
    assert!(reopened.get("missing").unwrap().is_none());
}

#[test]
fn set_replaces_a_value_with_a_fresh_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let mut vault = Vault::create(&path, &key(1)).unwrap();
    vault.set("token", "same").unwrap();
    let first = read_json(&path)["secrets"]["token"].clone();
    vault.set("token", "same").unwrap();
    let second = read_json(&path)["secrets"]["token"].clone();
    assert_ne!(first["nonce"], second["nonce"], "every encryption draws a new nonce");
    assert_ne!(first["ciphertext"], second["ciphertext"]);
    vault.set("token", "changed").unwrap();
    assert_eq!(Vault::open(&path, &key(1)).unwrap().get("token").unwrap().unwrap().as_str(), "changed");
}

#[test]
fn file_layout_matches_the_documented_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let mut vault = Vault::create(&path, &key(1)).unwrap();
    vault.set("a", "value").unwrap();
    let json = read_json(&path);
    assert_eq!(json["format"], 1);
    assert_eq!(json["kdf"], Value::Null);
    assert_eq!(STANDARD.decode(json["check"]["nonce"].as_str().unwrap()).unwrap().len(), 24);
    let entry = &json["secrets"]["a"];
    assert_eq!(STANDARD.decode(entry["nonce"].as_str().unwrap()).unwrap().len(), 24);
    // "value" (5 bytes) + 16-byte tag.
    assert_eq!(STANDARD.decode(entry["ciphertext"].as_str().unwrap()).unwrap().len(), 21);
    let updated_at: jiff::Timestamp = entry["updated_at"].as_str().unwrap().parse().unwrap();
    assert!((jiff::Timestamp::now().as_second() - updated_at.as_second()).abs() < 60);
    assert_eq!(vault.updated_at("a"), entry["updated_at"].as_str());
}

#[test]
fn a_different_key_fails_to_open_and_leaves_the_file_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    Vault::create(&path, &key(1)).unwrap().set("token", "s3cr3t-value").unwrap();
    let before = fs::read(&path).unwrap();

    let err = Vault::open(&path, &key(2)).unwrap_err();
    assert!(matches!(err, VaultError::WrongKey { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with("the master key does not open this vault ("), "{message}");
    assert!(message.contains("test key 2"), "names the key's origin: {message}");
    // open_or_create must not "repair" the vault with the wrong key either.
    assert!(matches!(Vault::open_or_create(&path, &key(2)), Err(VaultError::WrongKey { .. })));
    // Neither may creating over it.
    assert!(matches!(Vault::create(&path, &key(2)), Err(VaultError::AlreadyExists { .. })));

    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary files left behind");
}

#[test]
fn a_key_vault_refuses_a_passphrase_and_a_passphrase_vault_refuses_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let key_vault = dir.path().join("key.json");
    let pass_vault = dir.path().join("pass.json");
    let passphrase = MasterKeySource::from_passphrase("correct horse", "test passphrase").unwrap();
    Vault::create(&key_vault, &key(1)).unwrap();
    Vault::create_with_kdf(&pass_vault, &passphrase, CHEAP).unwrap();
    let (key_before, pass_before) = (fs::read(&key_vault).unwrap(), fs::read(&pass_vault).unwrap());

    let err = Vault::open(&key_vault, &passphrase).unwrap_err();
    assert!(matches!(err, VaultError::WrongKey { .. }), "{err:?}");
    assert!(err.to_string().contains("created with a key, not a passphrase"), "{err}");
    let err = Vault::open(&pass_vault, &key(1)).unwrap_err();
    assert!(matches!(err, VaultError::WrongKey { .. }), "{err:?}");
    assert!(err.to_string().contains("protected by a passphrase"), "{err}");

    assert_eq!(fs::read(&key_vault).unwrap(), key_before);
    assert_eq!(fs::read(&pass_vault).unwrap(), pass_before);
}

#[test]
fn a_ciphertext_copied_onto_another_name_fails_to_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let mut vault = Vault::create(&path, &key(1)).unwrap();
    vault.set("mailchimp_api_key", "the-mailchimp-key").unwrap();
    vault.set("erp_password", "the-erp-password").unwrap();

    let mut json = read_json(&path);
    json["secrets"]["erp_password"] = json["secrets"]["mailchimp_api_key"].clone();
    write_json(&path, &json);

    let vault = Vault::open(&path, &key(1)).unwrap();
    assert_eq!(vault.get("mailchimp_api_key").unwrap().unwrap().as_str(), "the-mailchimp-key");
    let err = vault.get("erp_password").unwrap_err();
    assert!(matches!(&err, VaultError::SecretUnreadable { name, .. } if name == "erp_password"), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("`erp_password`"), "{message}");
    assert!(!message.contains("the-mailchimp-key") && !message.contains("the-erp-password"), "{message}");
}

#[test]
fn a_tampered_ciphertext_is_an_error_naming_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let mut vault = Vault::create(&path, &key(1)).unwrap();
    vault.set("token", "tamper-me-please").unwrap();
    vault.set("other", "untouched").unwrap();

    let mut json = read_json(&path);
    let mut ciphertext = STANDARD.decode(json["secrets"]["token"]["ciphertext"].as_str().unwrap()).unwrap();
    ciphertext[0] ^= 0x01;
    json["secrets"]["token"]["ciphertext"] = Value::String(STANDARD.encode(&ciphertext));
    write_json(&path, &json);

    let vault = Vault::open(&path, &key(1)).unwrap();
    let err = vault.get("token").unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("vault secret `token` cannot be decrypted"), "{message}");
    assert!(!message.contains("tamper-me-please"), "{message}");
    assert_eq!(vault.get("other").unwrap().unwrap().as_str(), "untouched", "other secrets still open");

    // A malformed nonce is an error naming the secret as well.
    let mut json = read_json(&path);
    json["secrets"]["other"]["nonce"] = Value::String(STANDARD.encode([0u8; 12]));
    write_json(&path, &json);
    let err = Vault::open(&path, &key(1)).unwrap().get("other").unwrap_err();
    assert!(err.to_string().contains("`other`") && err.to_string().contains("nonce"), "{err}");
}

#[test]
fn a_corrupt_file_is_an_error_and_is_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    Vault::create(&path, &key(1)).unwrap().set("token", "value").unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(bytes.len() / 2);
    fs::write(&path, &bytes).unwrap();

    let err = Vault::open(&path, &key(1)).unwrap_err();
    assert!(matches!(err, VaultError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("is corrupt: not valid JSON"), "{err}");
    assert!(matches!(Vault::open_or_create(&path, &key(1)), Err(VaultError::Corrupt { .. })));
    assert_eq!(fs::read(&path).unwrap(), bytes);

    for (contents, expected) in [
        ("", "not valid JSON"),
        ("[]", "`format` is missing"),
        (r#"{"format": "1"}"#, "`format` is not a version number"),
        (r#"{"format": 1, "kdf": null, "secrets": {}}"#, "missing field `check`"),
        (
            r#"{"format": 1, "kdf": null, "check": {"nonce": "", "ciphertext": ""}, "secrets": {}, "extra": 1}"#,
            "unknown field `extra`",
        ),
        (
            r#"{"format": 1, "kdf": null, "check": {"nonce": "!!", "ciphertext": ""}, "secrets": {}}"#,
            "key check: its nonce is not valid base64",
        ),
    ] {
        fs::write(&path, contents).unwrap();
        let err = Vault::open(&path, &key(1)).unwrap_err();
        assert!(matches!(err, VaultError::Corrupt { .. }), "{contents}: {err:?}");
        assert!(err.to_string().contains(expected), "{contents}: {err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), contents);
    }
}

#[test]
fn a_newer_format_is_refused_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    Vault::create(&path, &key(1)).unwrap();
    let mut json = read_json(&path);
    json["format"] = 2.into();
    json["something_new"] = true.into();
    write_json(&path, &json);
    let err = Vault::open(&path, &key(1)).unwrap_err();
    assert!(matches!(err, VaultError::UnsupportedFormat { format: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("has format 2; this build reads format 1"), "{err}");
}

#[test]
fn an_invalid_secret_name_in_the_file_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    Vault::create(&path, &key(1)).unwrap().set("token", "value").unwrap();
    let mut json = read_json(&path);
    let entry = json["secrets"]["token"].clone();
    json["secrets"]["bad name"] = entry;
    write_json(&path, &json);
    let err = Vault::open(&path, &key(1)).unwrap_err();
    assert!(err.to_string().contains("invalid secret name `bad name`"), "{err}");
}

#[test]
fn passphrase_mode_round_trips_through_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let passphrase = MasterKeySource::from_passphrase("correct horse battery staple", "test passphrase").unwrap();
    let mut vault = Vault::create_with_kdf(&path, &passphrase, CHEAP).unwrap();
    vault.set("token", "from-a-passphrase").unwrap();

    let json = read_json(&path);
    let kdf = &json["kdf"];
    assert_eq!(kdf["algorithm"], "argon2id");
    assert_eq!((kdf["m_cost"].as_u64(), kdf["t_cost"].as_u64(), kdf["p_cost"].as_u64()), (Some(8), Some(1), Some(1)));
    assert_eq!(STANDARD.decode(kdf["salt"].as_str().unwrap()).unwrap().len(), 16);

    let again = MasterKeySource::from_passphrase("correct horse battery staple", "test passphrase").unwrap();
    let reopened = Vault::open(&path, &again).unwrap();
    assert_eq!(reopened.get("token").unwrap().unwrap().as_str(), "from-a-passphrase");

    let before = fs::read(&path).unwrap();
    let wrong = MasterKeySource::from_passphrase("correct horse battery stapler", "wrong passphrase").unwrap();
    let err = Vault::open(&path, &wrong).unwrap_err();
    assert!(matches!(err, VaultError::WrongKey { .. }), "{err:?}");
    assert!(!err.to_string().contains("stapler"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn two_passphrase_vaults_get_different_salts() {
    let dir = tempfile::tempdir().unwrap();
    let passphrase = MasterKeySource::from_passphrase("same", "test").unwrap();
    Vault::create_with_kdf(dir.path().join("a.json"), &passphrase, CHEAP).unwrap();
    Vault::create_with_kdf(dir.path().join("b.json"), &passphrase, CHEAP).unwrap();
    let salt = |name: &str| read_json(&dir.path().join(name))["kdf"]["salt"].clone();
    assert_ne!(salt("a.json"), salt("b.json"));
}

#[test]
fn kdf_parameters_from_the_file_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let passphrase = MasterKeySource::from_passphrase("pass", "test").unwrap();
    Vault::create_with_kdf(&path, &passphrase, CHEAP).unwrap();
    let mut json = read_json(&path);
    json["kdf"]["m_cost"] = u32::MAX.into();
    write_json(&path, &json);
    let err = Vault::open(&path, &passphrase).unwrap_err();
    assert!(matches!(err, VaultError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("exceed the accepted maximum"), "{err}");
}

#[test]
fn default_kdf_parameters_follow_owasp() {
    assert_eq!(KdfParams::default(), KdfParams { m_cost: 19456, t_cost: 2, p_cost: 1 });
    assert_eq!(KdfParams::default(), KdfParams::OWASP);
}

#[test]
fn the_vault_file_never_contains_a_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let values = ["plaintext-needle-0123456789", "another needle with spaces", "ünïcödé-needle"];
    let mut vault = Vault::create(&path, &key(7)).unwrap();
    for (i, value) in values.iter().enumerate() {
        vault.set(&format!("secret_{i}"), value).unwrap();
    }
    let passphrase = MasterKeySource::from_passphrase("the passphrase needle", "test").unwrap();
    let pass_path = dir.path().join("pass.json");
    Vault::create_with_kdf(&pass_path, &passphrase, CHEAP).unwrap().set("p", values[0]).unwrap();

    for file in [&path, &pass_path] {
        let bytes = fs::read(file).unwrap();
        for value in values {
            assert!(!contains(&bytes, value.as_bytes()), "{value:?} found in {}", file.display());
            assert!(!contains(&bytes, STANDARD.encode(value).as_bytes()), "base64 of {value:?} found");
        }
        assert!(!contains(&bytes, b"passphrase needle"));
        assert!(!contains(&bytes, STANDARD.encode([7u8; 32]).as_bytes()), "the key is not stored");
    }
}

#[test]
fn names_lists_names_only_and_remove_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let mut vault = Vault::create(&path, &key(1)).unwrap();
    assert!(vault.names().is_empty());
    vault.set("zeta", "value-z").unwrap();
    vault.set("alpha", "value-a").unwrap();
    vault.set("mid.dle-name_1", "value-m").unwrap();
    assert_eq!(vault.names(), ["alpha", "mid.dle-name_1", "zeta"]);
    assert!(vault.names().iter().all(|name| !name.starts_with("value-")));

    let before = fs::read(&path).unwrap();
    assert!(!vault.remove("absent").unwrap());
    assert_eq!(fs::read(&path).unwrap(), before, "removing an absent name writes nothing");
    assert!(vault.remove("alpha").unwrap());
    assert!(vault.get("alpha").unwrap().is_none());

    let reopened = Vault::open(&path, &key(1)).unwrap();
    assert_eq!(reopened.names(), ["mid.dle-name_1", "zeta"]);
    assert_eq!(reopened.get("zeta").unwrap().unwrap().as_str(), "value-z");
}

#[test]
fn secret_names_are_checked() {
    let long_ok = "a".repeat(128);
    for name in ["a", "A-Z_a.z-0_9", "..", long_ok.as_str()] {
        validate_secret_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let long_bad = "a".repeat(129);
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let mut vault = Vault::create(&path, &key(1)).unwrap();
    for name in ["", "has space", "a/b", "ünï", "semi;colon", "new\nline", long_bad.as_str()] {
        let err = vault.set(name, "value").unwrap_err();
        assert!(matches!(err, VaultError::InvalidName { .. }), "{name:?}: {err:?}");
        assert!(err.to_string().starts_with("invalid secret name"), "{err}");
        assert!(matches!(vault.get(name), Err(VaultError::InvalidName { .. })));
        assert!(matches!(vault.remove(name), Err(VaultError::InvalidName { .. })));
    }
    assert!(vault.names().is_empty());
    let err = validate_secret_name("new\nline").unwrap_err().to_string();
    assert!(err.contains(r"`new\nline`"), "escaped for display: {err}");
}

#[test]
fn create_refuses_an_existing_file_and_open_reports_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.json");
    fs::write(&path, "not mine").unwrap();
    let err = Vault::create(&path, &key(1)).unwrap_err();
    assert!(matches!(err, VaultError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "not mine");

    let missing = dir.path().join("missing.json");
    let err = Vault::open(&missing, &key(1)).unwrap_err();
    assert!(matches!(err, VaultError::NotFound { .. }), "{err:?}");
    assert!(!missing.exists(), "open never creates");
}

#[test]
fn open_or_create_creates_then_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let mut vault = Vault::open_or_create(&path, &key(3)).unwrap();
    vault.set("a", "1").unwrap();
    let vault = Vault::open_or_create(&path, &key(3)).unwrap();
    assert_eq!(vault.get("a").unwrap().unwrap().as_str(), "1");
}

#[cfg(unix)]
#[test]
fn vault_files_are_private_and_writes_leave_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let mut vault = Vault::create(&path, &key(1)).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    vault.set("a", "1").unwrap();
    vault.set("b", "2").unwrap();
    vault.remove("a").unwrap();
    assert_eq!(mode(&path), 0o600);
    let entries: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["vault.json"]);
}

#[test]
fn debug_output_is_redacted() {
    let key_source = MasterKeySource::from_base64(&STANDARD.encode([9u8; 32]), "test").unwrap();
    let pass_source = MasterKeySource::from_passphrase("hunter2-passphrase", "test").unwrap();
    let key_debug = format!("{key_source:?}");
    assert!(key_debug.contains("[redacted]") && !key_debug.contains("9, 9"), "{key_debug}");
    assert!(!key_debug.contains(&STANDARD.encode([9u8; 32])), "{key_debug}");
    let pass_debug = format!("{pass_source:?}");
    assert!(pass_debug.contains("[redacted]") && !pass_debug.contains("hunter2"), "{pass_debug}");

    let dir = tempfile::tempdir().unwrap();
    let mut vault = Vault::create(vault_path(&dir), &key_source).unwrap();
    vault.set("token", "debug-needle").unwrap();
    let vault_debug = format!("{vault:?}");
    assert!(!vault_debug.contains("debug-needle") && !vault_debug.contains("9, 9"), "{vault_debug}");
    let secrets_debug = format!("{:?}", Secrets::new(vault));
    assert!(!secrets_debug.contains("debug-needle"), "{secrets_debug}");
}

// ---------------------------------------------------------------------------------------------
// Master key sources

#[test]
fn no_source_tells_how_to_provide_one() {
    let err = master_key_from(env(&[]), Some(Path::new("/nonexistent/project/.ml-connector/key"))).unwrap_err();
    assert!(matches!(err, VaultError::NoMasterKey { .. }), "{err:?}");
    let message = err.to_string();
    for expected in [ENV_MASTER_KEY, ENV_KEY_FILE, ENV_PASSPHRASE, "/nonexistent/project/.ml-connector/key"] {
        assert!(message.contains(expected), "{expected} missing from: {message}");
    }
    let message = master_key_from(env(&[]), None).unwrap_err().to_string();
    assert!(message.contains(ENV_PASSPHRASE) && !message.contains("project key file"), "{message}");
}

#[test]
fn env_master_key_is_used_and_takes_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let encoded = STANDARD.encode([5u8; 32]);
    // With a trailing newline, as `openssl rand -base64 32 > …` would leave it.
    let source = master_key_from(
        env(&[(ENV_MASTER_KEY, &format!("{encoded}\n")), (ENV_KEY_FILE, "/nonexistent"), (ENV_PASSPHRASE, "p")]),
        Some(Path::new("/nonexistent/key")),
    )
    .unwrap();
    assert!(!source.is_passphrase());
    assert_eq!(source.origin(), "environment variable ML_CONNECTOR_MASTER_KEY");
    Vault::create(&path, &source).unwrap().set("a", "1").unwrap();
    // The same bytes from elsewhere open the vault: the source is really those 32 bytes.
    assert_eq!(Vault::open(&path, &key(5)).unwrap().get("a").unwrap().unwrap().as_str(), "1");
}

#[test]
fn bad_keys_name_the_source_but_never_the_value() {
    let short = STANDARD.encode([1u8; 16]);
    let long = STANDARD.encode([1u8; 33]);
    let not_base64 = "sekrit-not-base64-!!!";
    for (value, expected) in [
        (not_base64, "is not valid base64"),
        (short.as_str(), "decodes to 16 bytes"),
        (long.as_str(), "decodes to 33 bytes"),
        ("", "it is empty"),
        ("   ", "it is empty"),
    ] {
        let err = master_key_from(env(&[(ENV_MASTER_KEY, value)]), None).unwrap_err();
        assert!(matches!(err, VaultError::BadKey { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("environment variable ML_CONNECTOR_MASTER_KEY"), "{message}");
        assert!(message.contains(expected), "{message}");
        if !value.trim().is_empty() {
            assert!(!message.contains(value.trim()), "{message}");
            assert!(!format!("{err:?}").contains(value.trim()), "{err:?}");
        }
    }
    // A present but empty passphrase is an error too, not a fall-through.
    let err = master_key_from(env(&[(ENV_PASSPHRASE, "")]), None).unwrap_err();
    assert!(err.to_string().contains("environment variable ML_CONNECTOR_PASSPHRASE"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_key_file_with_mode_0644_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    write_key_file(&key_file, &STANDARD.encode([4u8; 32]), 0o644);
    for err in [
        master_key_from(env(&[]), Some(&key_file)).unwrap_err(),
        master_key_from(env(&[(ENV_KEY_FILE, key_file.to_str().unwrap())]), None).unwrap_err(),
    ] {
        assert!(matches!(err, VaultError::KeyFilePermissions { .. }), "{err:?}");
        let shown = key_file.display();
        assert_eq!(err.to_string(), format!("key file {shown} must not be readable by others (chmod 600 {shown})"));
    }
    for mode in [0o640, 0o604, 0o660, 0o602] {
        write_key_file(&key_file, &STANDARD.encode([4u8; 32]), mode);
        let err = master_key_from(env(&[]), Some(&key_file)).unwrap_err();
        assert!(matches!(err, VaultError::KeyFilePermissions { .. }), "mode {mode:o}: {err:?}");
    }
}

#[cfg(unix)]
#[test]
fn a_key_file_with_mode_0600_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    write_key_file(&key_file, &format!("{}\n", STANDARD.encode([4u8; 32])), 0o600);
    let path = vault_path(&dir);

    let from_project = master_key_from(env(&[(ENV_PASSPHRASE, "ignored")]), Some(&key_file)).unwrap();
    assert!(!from_project.is_passphrase(), "a key file takes precedence over a passphrase");
    assert_eq!(from_project.origin(), format!("key file {}", key_file.display()));
    Vault::create(&path, &from_project).unwrap().set("a", "1").unwrap();

    let from_env = master_key_from(
        env(&[(ENV_KEY_FILE, key_file.to_str().unwrap())]),
        Some(Path::new("/nonexistent/project/key")),
    )
    .unwrap();
    assert!(from_env.origin().contains(ENV_KEY_FILE), "{}", from_env.origin());
    assert_eq!(Vault::open(&path, &from_env).unwrap().get("a").unwrap().unwrap().as_str(), "1");
    assert_eq!(Vault::open(&path, &key(4)).unwrap().get("a").unwrap().unwrap().as_str(), "1");
}

#[cfg(unix)]
#[test]
fn a_key_file_with_bad_contents_names_the_file_not_the_contents() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    write_key_file(&key_file, "my-secret-key-file-contents", 0o600);
    let err = master_key_from(env(&[]), Some(&key_file)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&format!("key file {}", key_file.display())), "{message}");
    assert!(message.contains("not valid base64") && !message.contains("my-secret"), "{message}");

    write_key_file(&key_file, &STANDARD.encode([1u8; 31]), 0o600);
    let message = master_key_from(env(&[]), Some(&key_file)).unwrap_err().to_string();
    assert!(message.contains("decodes to 31 bytes"), "{message}");
}

#[test]
fn a_missing_key_file_named_by_the_environment_is_an_error() {
    let err =
        master_key_from(env(&[(ENV_KEY_FILE, "/nonexistent/master.key"), (ENV_PASSPHRASE, "p")]), None).unwrap_err();
    assert!(matches!(err, VaultError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/master.key"), "{err}");
}

#[test]
fn a_missing_project_key_file_falls_through_to_the_passphrase() {
    let source = master_key_from(env(&[(ENV_PASSPHRASE, "pp")]), Some(Path::new("/nonexistent/key"))).unwrap();
    assert!(source.is_passphrase());
    assert_eq!(source.origin(), "environment variable ML_CONNECTOR_PASSPHRASE");
}

#[test]
fn generate_key_file_writes_a_usable_private_key_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join(".ml-connector").join("master.key");
    generate_key_file(&key_file).unwrap();
    let contents = fs::read_to_string(&key_file).unwrap();
    assert!(contents.ends_with('\n'));
    assert_eq!(STANDARD.decode(contents.trim()).unwrap().len(), 32);
    #[cfg(unix)]
    assert_eq!(mode(&key_file), 0o600);

    let err = generate_key_file(&key_file).unwrap_err();
    assert!(matches!(err, VaultError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert_eq!(fs::read_to_string(&key_file).unwrap(), contents, "the existing key is kept");

    let other = dir.path().join("other.key");
    generate_key_file(&other).unwrap();
    assert_ne!(fs::read_to_string(&other).unwrap(), contents, "keys are random");

    let source = master_key_from(env(&[]), Some(&key_file)).unwrap();
    let path = vault_path(&dir);
    Vault::create(&path, &source).unwrap().set("a", "1").unwrap();
    assert_eq!(Vault::open(&path, &source).unwrap().get("a").unwrap().unwrap().as_str(), "1");
}

// ---------------------------------------------------------------------------------------------
// The resolver

#[test]
fn the_resolver_reads_environment_references() {
    let secrets = Secrets::without_vault("not needed");
    // PATH is set for every test process; reading it needs no (racy) set_var.
    let path = std::env::var("PATH").unwrap();
    assert_eq!(secrets.resolve(&SecretRef::Env("PATH".into())).unwrap(), path);
    let err = secrets.resolve(&SecretRef::Env("ML_CONNECTOR_TEST_SURELY_UNSET_7f3a".into())).unwrap_err();
    assert_eq!(err, "environment variable `ML_CONNECTOR_TEST_SURELY_UNSET_7f3a` is not set");
}

#[test]
fn the_resolver_reads_vault_references() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let mut vault = Vault::create(&path, &key(1)).unwrap();
    vault.set("mailchimp_api_key", "abc-us21").unwrap();
    let secrets = Secrets::new(vault);
    assert_eq!(secrets.resolve(&SecretRef::Secret("mailchimp_api_key".into())).unwrap(), "abc-us21");
    let err = secrets.resolve(&SecretRef::Secret("erp_password".into())).unwrap_err();
    assert!(err.starts_with("vault secret `erp_password` is not set"), "{err}");
    let err = secrets.resolve(&SecretRef::Secret("bad name".into())).unwrap_err();
    assert!(err.starts_with("invalid secret name"), "{err}");
}

#[test]
fn the_resolver_without_a_vault_explains_why() {
    let secrets = Secrets::without_vault("vault file x does not exist");
    let err = secrets.resolve(&SecretRef::Secret("token".into())).unwrap_err();
    assert_eq!(err, "vault secret `token` cannot be read: no vault is open: vault file x does not exist");
}

#[test]
fn loading_the_resolver_defers_vault_errors_to_vault_references() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let encoded = STANDARD.encode([1u8; 32]);

    // No vault file: environment references still work.
    let secrets = Secrets::load_with(env(&[]), &path, None);
    assert!(secrets.resolve(&SecretRef::Env("PATH".into())).is_ok());
    let err = secrets.resolve(&SecretRef::Secret("token".into())).unwrap_err();
    assert!(err.contains("no vault is open: vault file") && err.contains("does not exist"), "{err}");

    Vault::create(&path, &key(1)).unwrap().set("token", "loaded-value").unwrap();

    let secrets = Secrets::load_with(env(&[(ENV_MASTER_KEY, &encoded)]), &path, None);
    assert!(secrets.vault().is_ok());
    assert_eq!(secrets.resolve(&SecretRef::Secret("token".into())).unwrap(), "loaded-value");

    let secrets = Secrets::load_with(env(&[]), &path, None);
    let err = secrets.resolve(&SecretRef::Secret("token".into())).unwrap_err();
    assert!(err.contains("no vault is open: no master key"), "{err}");

    let before = fs::read(&path).unwrap();
    let secrets = Secrets::load_with(env(&[(ENV_MASTER_KEY, &STANDARD.encode([2u8; 32]))]), &path, None);
    let err = secrets.resolve(&SecretRef::Secret("token".into())).unwrap_err();
    assert!(err.contains("no vault is open: the master key does not open this vault"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn create_with_a_passphrase_uses_the_owasp_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_path(&dir);
    let passphrase = MasterKeySource::from_passphrase("production defaults", "test").unwrap();
    Vault::create(&path, &passphrase).unwrap().set("a", "1").unwrap();
    let kdf = read_json(&path)["kdf"].clone();
    assert_eq!(
        (kdf["m_cost"].as_u64(), kdf["t_cost"].as_u64(), kdf["p_cost"].as_u64()),
        (Some(19456), Some(2), Some(1))
    );
    assert_eq!(Vault::open(&path, &passphrase).unwrap().get("a").unwrap().unwrap().as_str(), "1");
}
