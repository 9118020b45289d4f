//! The vault file and the operations on it.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::error::VaultError;
use crate::fsutil::{self, Replace};
use crate::key::{KdfParams, KeyBytes, MasterKeySource, Material, fill_random};

/// The vault file format this build reads and writes.
pub const FORMAT: u64 = 1;

/// Associated data prefix of a secret; the name follows.
const SECRET_AAD_PREFIX: &str = "ml-connector:secret:v1:";
/// Associated data of the key check.
const CHECK_AAD: &[u8] = b"ml-connector:check:v1";
/// The plaintext of the key check.
const CHECK_MARKER: &[u8] = b"ml-connector vault key check";
const NONCE_LEN: usize = 24;
const SALT_LEN: usize = 16;
const TAG_LEN: usize = 16;
const KDF_ALGORITHM: &str = "argon2id";
const MAX_NAME_LEN: usize = 128;

/// The JSON document on disk.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultFile {
    format: u64,
    kdf: Option<KdfRecord>,
    check: Sealed,
    secrets: BTreeMap<String, SecretRecord>,
}

/// How the key is derived from a passphrase; `null` in the file when the key is given directly.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfRecord {
    algorithm: String,
    salt: String,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
}

/// A nonce and a ciphertext (with its tag), both base64.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    nonce: String,
    ciphertext: String,
}

/// One stored secret.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRecord {
    nonce: String,
    ciphertext: String,
    updated_at: String,
}

/// An open vault: the file's contents and the cipher under the verified master key.
///
/// Every change is written to disk before the method returns. `Debug` shows the path and the
/// number of secrets only.
pub struct Vault {
    path: PathBuf,
    file: VaultFile,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .field("passphrase", &self.file.kdf.is_some())
            .field("secrets", &self.file.secrets.len())
            .finish_non_exhaustive()
    }
}

/// Checks a secret name against `^[A-Za-z0-9_.-]{1,128}$`.
pub fn validate_secret_name(name: &str) -> Result<(), VaultError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        return Ok(());
    }
    // Shown escaped and shortened: a name is not a secret, but it may be a mistake of any size.
    let mut shown: String = name.chars().take(40).flat_map(char::escape_debug).collect();
    if name.chars().count() > 40 {
        shown.push('…');
    }
    Err(VaultError::InvalidName { name: shown })
}

fn secret_aad(name: &str) -> Vec<u8> {
    [SECRET_AAD_PREFIX.as_bytes(), name.as_bytes()].concat()
}

fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second()).unwrap_or(now).to_string()
}

/// Decodes a stored nonce and ciphertext; the error says what is malformed.
fn decode_sealed(nonce: &str, ciphertext: &str) -> Result<(XNonce, Vec<u8>), String> {
    let nonce = STANDARD.decode(nonce).map_err(|_| "its nonce is not valid base64".to_string())?;
    let nonce: [u8; NONCE_LEN] =
        nonce.try_into().map_err(|n: Vec<u8>| format!("its nonce is {} bytes, expected {NONCE_LEN}", n.len()))?;
    let ciphertext = STANDARD.decode(ciphertext).map_err(|_| "its ciphertext is not valid base64".to_string())?;
    if ciphertext.len() < TAG_LEN {
        return Err(format!("its ciphertext is {} bytes, shorter than the {TAG_LEN}-byte tag", ciphertext.len()));
    }
    Ok((XNonce::from(nonce), ciphertext))
}

impl Vault {
    /// Creates a new vault at `path` (and missing parent directories). Refuses if the file
    /// exists. A passphrase source uses [`KdfParams::OWASP`].
    pub fn create(path: impl AsRef<Path>, source: &MasterKeySource) -> Result<Vault, VaultError> {
        Vault::create_with_kdf(path, source, KdfParams::default())
    }

    /// Like [`Vault::create`], with explicit Argon2id parameters for a passphrase source
    /// (ignored for key bytes). Cheap parameters are for tests only.
    pub fn create_with_kdf(
        path: impl AsRef<Path>,
        source: &MasterKeySource,
        params: KdfParams,
    ) -> Result<Vault, VaultError> {
        let path = path.as_ref();
        if path.try_exists().map_err(VaultError::io("create vault file", path))? {
            return Err(VaultError::AlreadyExists { path: path.to_path_buf() });
        }
        let (key, kdf) = match source.material() {
            Material::Key(key) => (key.clone(), None),
            Material::Passphrase(passphrase) => {
                let mut salt = [0u8; SALT_LEN];
                fill_random(&mut salt)?;
                let key = params.derive(passphrase, &salt)?;
                let record = KdfRecord {
                    algorithm: KDF_ALGORITHM.to_string(),
                    salt: STANDARD.encode(salt),
                    m_cost: params.m_cost,
                    t_cost: params.t_cost,
                    p_cost: params.p_cost,
                };
                (key, Some(record))
            }
        };
        let cipher = cipher_for(&key);
        let (nonce, ciphertext) = seal(&cipher, CHECK_AAD, CHECK_MARKER)
            .map_err(|()| VaultError::Encrypt { name: "(key check)".to_string() })?;
        let file = VaultFile { format: FORMAT, kdf, check: Sealed { nonce, ciphertext }, secrets: BTreeMap::new() };
        fsutil::ensure_parent_dir(path)?;
        write_file(path, &file, Replace::No)?;
        Ok(Vault { path: path.to_path_buf(), file, cipher })
    }

    /// Opens the vault at `path` and proves `source` is its key by decrypting the key check.
    /// A wrong key, a missing file or a corrupt one is an error, and nothing is written.
    pub fn open(path: impl AsRef<Path>, source: &MasterKeySource) -> Result<Vault, VaultError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => VaultError::NotFound { path: path.to_path_buf() },
            _ => VaultError::Io { action: "read vault file", path: path.to_path_buf(), source: e },
        })?;
        let file = parse(path, &bytes)?;
        let key = vault_key(path, &file, source)?;
        let cipher = cipher_for(&key);
        let corrupt = |reason: String| VaultError::Corrupt { path: path.to_path_buf(), reason };
        let (nonce, ciphertext) =
            decode_sealed(&file.check.nonce, &file.check.ciphertext).map_err(|e| corrupt(format!("key check: {e}")))?;
        let marker =
            cipher.decrypt(&nonce, Payload { msg: &ciphertext, aad: CHECK_AAD }).map_err(|_| VaultError::WrongKey {
                path: path.to_path_buf(),
                detail: format!("the key from {} is not the one it was created with", source.origin()),
            })?;
        if marker != CHECK_MARKER {
            return Err(corrupt("the key check decrypts to an unexpected marker".to_string()));
        }
        Ok(Vault { path: path.to_path_buf(), file, cipher })
    }

    /// Opens the vault at `path`, or creates it if the file does not exist.
    pub fn open_or_create(path: impl AsRef<Path>, source: &MasterKeySource) -> Result<Vault, VaultError> {
        let path = path.as_ref();
        match Vault::open(path, source) {
            Err(VaultError::NotFound { .. }) => match Vault::create(path, source) {
                // Another process created it in between.
                Err(VaultError::AlreadyExists { .. }) => Vault::open(path, source),
                other => other,
            },
            other => other,
        }
    }

    /// The vault file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encrypts `value` under `name` (replacing any previous value) and writes the vault.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), VaultError> {
        validate_secret_name(name)?;
        let (nonce, ciphertext) = seal(&self.cipher, &secret_aad(name), value.as_bytes())
            .map_err(|()| VaultError::Encrypt { name: name.to_string() })?;
        let mut file = self.file.clone();
        file.secrets.insert(name.to_string(), SecretRecord { nonce, ciphertext, updated_at: now_rfc3339() });
        write_file(&self.path, &file, Replace::Yes)?;
        self.file = file;
        Ok(())
    }

    /// The value of `name`, or `None` if it is not set. A ciphertext that was altered, or
    /// copied from another name, is an error naming the secret.
    pub fn get(&self, name: &str) -> Result<Option<Zeroizing<String>>, VaultError> {
        validate_secret_name(name)?;
        let Some(record) = self.file.secrets.get(name) else {
            return Ok(None);
        };
        let unreadable = |reason: String| VaultError::SecretUnreadable { name: name.to_string(), reason };
        let (nonce, ciphertext) = decode_sealed(&record.nonce, &record.ciphertext).map_err(unreadable)?;
        let aad = secret_aad(name);
        let plaintext = self
            .cipher
            .decrypt(&nonce, Payload { msg: &ciphertext, aad: &aad })
            .map_err(|_| unreadable("its ciphertext was altered, or copied from another secret".to_string()))?;
        match String::from_utf8(plaintext) {
            Ok(value) => Ok(Some(Zeroizing::new(value))),
            Err(e) => {
                e.into_bytes().zeroize();
                Err(unreadable("its value is not UTF-8".to_string()))
            }
        }
    }

    /// The names of the stored secrets, sorted. No values are decrypted.
    pub fn names(&self) -> Vec<String> {
        self.file.secrets.keys().cloned().collect()
    }

    /// When `name` was last set (RFC 3339, UTC), if it is set.
    pub fn updated_at(&self, name: &str) -> Option<&str> {
        self.file.secrets.get(name).map(|record| record.updated_at.as_str())
    }

    /// Removes `name` and writes the vault. `Ok(false)` (and no write) if it was not set.
    pub fn remove(&mut self, name: &str) -> Result<bool, VaultError> {
        validate_secret_name(name)?;
        if !self.file.secrets.contains_key(name) {
            return Ok(false);
        }
        let mut file = self.file.clone();
        file.secrets.remove(name);
        write_file(&self.path, &file, Replace::Yes)?;
        self.file = file;
        Ok(true)
    }
}

fn cipher_for(key: &KeyBytes) -> XChaCha20Poly1305 {
    // The array is exactly the key length, so this cannot fail.
    XChaCha20Poly1305::new_from_slice(&key[..]).expect("a 32-byte key")
}

/// Encrypts under a fresh random nonce; returns both as base64.
fn seal(cipher: &XChaCha20Poly1305, aad: &[u8], plaintext: &[u8]) -> Result<(String, String), ()> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce).map_err(|_| ())?;
    let ciphertext = cipher.encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad }).map_err(|_| ())?;
    Ok((STANDARD.encode(nonce), STANDARD.encode(ciphertext)))
}

/// Parses the file, checking the format number before the shape so that a newer format gets
/// a clear message rather than "unknown field".
fn parse(path: &Path, bytes: &[u8]) -> Result<VaultFile, VaultError> {
    let corrupt = |reason: String| VaultError::Corrupt { path: path.to_path_buf(), reason };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not valid JSON: {e}")))?;
    let format = match value.get("format") {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| corrupt("`format` is not a version number".to_string()))?,
        Some(_) => return Err(corrupt("`format` is not a version number".to_string())),
        None => return Err(corrupt("`format` is missing".to_string())),
    };
    if format != FORMAT {
        return Err(VaultError::UnsupportedFormat { path: path.to_path_buf(), format });
    }
    let file: VaultFile = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
    if let Some(name) = file.secrets.keys().find(|name| validate_secret_name(name).is_err()) {
        let shown: String = name.chars().take(40).flat_map(char::escape_debug).collect();
        return Err(corrupt(format!("invalid secret name `{shown}`")));
    }
    Ok(file)
}

/// The key for `file` from `source`: the bytes themselves, or Argon2id over the passphrase with
/// the file's salt and parameters.
fn vault_key(path: &Path, file: &VaultFile, source: &MasterKeySource) -> Result<KeyBytes, VaultError> {
    let wrong = |detail: String| VaultError::WrongKey { path: path.to_path_buf(), detail };
    match (&file.kdf, source.material()) {
        (None, Material::Key(key)) => Ok(key.clone()),
        (Some(kdf), Material::Passphrase(passphrase)) => {
            let corrupt = |reason: String| VaultError::Corrupt { path: path.to_path_buf(), reason };
            if kdf.algorithm != KDF_ALGORITHM {
                return Err(corrupt(format!("unknown key derivation `{}` (expected {KDF_ALGORITHM})", kdf.algorithm)));
            }
            let salt = STANDARD.decode(&kdf.salt).map_err(|_| corrupt("the kdf salt is not valid base64".into()))?;
            if salt.len() < argon2::MIN_SALT_LEN {
                return Err(corrupt(format!("the kdf salt is {} bytes, too short", salt.len())));
            }
            let params = KdfParams { m_cost: kdf.m_cost, t_cost: kdf.t_cost, p_cost: kdf.p_cost };
            params.derive(passphrase, &salt).map_err(|e| corrupt(format!("kdf parameters: {e}")))
        }
        (None, Material::Passphrase(_)) => Err(wrong(format!(
            "it was created with a key, not a passphrase (the passphrase came from {}); provide the \
             key through {} or a key file",
            source.origin(),
            crate::key::ENV_MASTER_KEY
        ))),
        (Some(_), Material::Key(_)) => Err(wrong(format!(
            "it is protected by a passphrase, but the key came from {}; set {} (a key in {} or a key \
             file takes precedence)",
            source.origin(),
            crate::key::ENV_PASSPHRASE,
            crate::key::ENV_MASTER_KEY
        ))),
    }
}

fn write_file(path: &Path, file: &VaultFile, replace: Replace) -> Result<(), VaultError> {
    let mut bytes = serde_json::to_vec_pretty(file)
        .map_err(|e| VaultError::Corrupt { path: path.to_path_buf(), reason: format!("cannot serialize: {e}") })?;
    bytes.push(b'\n');
    fsutil::write_atomic(path, &bytes, replace)
}
