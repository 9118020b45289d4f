//! Master keys: where they come from, how they are checked, and the passphrase KDF.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::fsutil;

/// Environment variable holding the master key as base64 of 32 bytes. Takes precedence.
pub const ENV_MASTER_KEY: &str = "ML_CONNECTOR_MASTER_KEY";
/// Environment variable naming a key file (base64 of 32 bytes, mode 0600).
pub const ENV_KEY_FILE: &str = "ML_CONNECTOR_KEY_FILE";
/// Environment variable holding a passphrase; Argon2id derives the key from it.
pub const ENV_PASSPHRASE: &str = "ML_CONNECTOR_PASSPHRASE";
/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;

/// A 32-byte key, wiped on drop.
pub(crate) type KeyBytes = Zeroizing<[u8; KEY_LEN]>;

/// Where the vault's key comes from: 32 key bytes, or a passphrase that Argon2id turns into a
/// key with the salt stored in the vault. `Debug` shows the origin only.
pub struct MasterKeySource {
    material: Material,
    origin: String,
}

/// The secret part of a [`MasterKeySource`].
pub(crate) enum Material {
    Key(KeyBytes),
    Passphrase(Zeroizing<String>),
}

impl MasterKeySource {
    /// A source from raw key bytes. `origin` says where they came from, for messages.
    pub fn from_key(key: &[u8; KEY_LEN], origin: impl Into<String>) -> Self {
        MasterKeySource { material: Material::Key(Zeroizing::new(*key)), origin: origin.into() }
    }

    /// A source from the base64 of 32 bytes (surrounding whitespace ignored). Errors name
    /// `origin`, never the text.
    pub fn from_base64(text: &str, origin: impl Into<String>) -> Result<Self, VaultError> {
        let origin = origin.into();
        let key = decode_key(text, &origin)?;
        Ok(MasterKeySource { material: Material::Key(key), origin })
    }

    /// A source from a passphrase, which must not be empty.
    pub fn from_passphrase(passphrase: &str, origin: impl Into<String>) -> Result<Self, VaultError> {
        let origin = origin.into();
        if passphrase.is_empty() {
            return Err(VaultError::bad_key(&origin, "the passphrase is empty"));
        }
        Ok(MasterKeySource { material: Material::Passphrase(Zeroizing::new(passphrase.to_string())), origin })
    }

    /// Where the key came from (e.g. "environment variable ML_CONNECTOR_MASTER_KEY").
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether this is a passphrase (Argon2id) rather than key bytes.
    pub fn is_passphrase(&self) -> bool {
        matches!(self.material, Material::Passphrase(_))
    }

    pub(crate) fn material(&self) -> &Material {
        &self.material
    }
}

impl fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_passphrase() { "passphrase" } else { "key" };
        f.debug_struct("MasterKeySource")
            .field("kind", &kind)
            .field("origin", &self.origin)
            .field("material", &"[redacted]")
            .finish()
    }
}

/// Argon2id cost parameters for passphrase mode. They are stored in the vault file, so a vault
/// keeps opening after the defaults change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism.
    pub p_cost: u32,
}

impl KdfParams {
    /// OWASP's recommended Argon2id minimum: 19 MiB, 2 iterations, 1 lane.
    pub const OWASP: KdfParams = KdfParams { m_cost: 19 * 1024, t_cost: 2, p_cost: 1 };
    /// Upper bounds accepted from a vault file, so a doctored file cannot make opening it
    /// allocate without limit.
    pub(crate) const MAX: KdfParams = KdfParams { m_cost: 4 * 1024 * 1024, t_cost: 64, p_cost: 64 };

    /// Derives a key from `passphrase` and `salt` with Argon2id (v0x13).
    pub(crate) fn derive(&self, passphrase: &str, salt: &[u8]) -> Result<KeyBytes, VaultError> {
        if self.m_cost > Self::MAX.m_cost || self.t_cost > Self::MAX.t_cost || self.p_cost > Self::MAX.p_cost {
            return Err(VaultError::Kdf {
                reason: format!("parameters {self:?} exceed the accepted maximum {:?}", Self::MAX),
            });
        }
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| VaultError::Kdf { reason: format!("invalid parameters {self:?}: {e}") })?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, &mut key[..])
            .map_err(|e| VaultError::Kdf { reason: e.to_string() })?;
        Ok(key)
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams::OWASP
    }
}

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), VaultError> {
    getrandom::fill(buf).map_err(|e| VaultError::Random { reason: e.to_string() })
}

/// Decodes the base64 of exactly 32 bytes. Errors name `origin` and never echo the text (not
/// even the offending character, which would leak part of the key).
fn decode_key(text: &str, origin: &str) -> Result<KeyBytes, VaultError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(VaultError::bad_key(origin, "it is empty"));
    }
    let decoded =
        Zeroizing::new(STANDARD.decode(text).map_err(|_| {
            VaultError::bad_key(origin, "it is not valid base64 (expected the base64 of 32 random bytes)")
        })?);
    if decoded.len() != KEY_LEN {
        return Err(VaultError::bad_key(
            origin,
            format!("it decodes to {} bytes; a master key is exactly 32", decoded.len()),
        ));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&decoded);
    Ok(key)
}

/// Reads a key file, refusing (on unix) one that group or others may access. The mode is read
/// from the open handle, so the file checked is the file read.
fn read_key_file(path: &Path, origin: &str) -> Result<KeyBytes, VaultError> {
    let mut file = File::open(path).map_err(VaultError::io("read key file", path))?;
    let meta = file.metadata().map_err(VaultError::io("read key file", path))?;
    if !meta.is_file() {
        return Err(VaultError::bad_key(origin, "it is not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(VaultError::KeyFilePermissions { path: path.to_path_buf() });
        }
    }
    // A key file is 45 bytes; anything much larger is not one (and is not read into memory).
    const MAX_LEN: u64 = 4096;
    if meta.len() > MAX_LEN {
        return Err(VaultError::bad_key(
            origin,
            format!("it is {} bytes long; a key file holds 44 characters", meta.len()),
        ));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_LEN as usize + 1));
    Read::by_ref(&mut file).take(MAX_LEN + 1).read_to_end(&mut bytes).map_err(VaultError::io("read key file", path))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| VaultError::bad_key(origin, "it is not valid base64 (expected the base64 of 32 random bytes)"))?;
    decode_key(text, origin)
}

/// The master key from the process environment; see [`master_key_from`] for the order.
pub fn master_key_from_environment(project_key_file: Option<&Path>) -> Result<MasterKeySource, VaultError> {
    master_key_from(|name| std::env::var(name).ok(), project_key_file)
}

/// The master key from the first source present, reading variables through `env`:
///
/// 1. `ML_CONNECTOR_MASTER_KEY`: base64 of 32 bytes;
/// 2. the key file named by `ML_CONNECTOR_KEY_FILE`, else `project_key_file` if it exists;
/// 3. `ML_CONNECTOR_PASSPHRASE`: a passphrase for Argon2id.
///
/// A variable that is set but empty is an error rather than skipped: it is usually a CI secret
/// that failed to arrive, and silently falling through to another key would hide that.
pub fn master_key_from(
    env: impl Fn(&str) -> Option<String>,
    project_key_file: Option<&Path>,
) -> Result<MasterKeySource, VaultError> {
    let var = |name: &str| env(name).map(Zeroizing::new);
    if let Some(text) = var(ENV_MASTER_KEY) {
        return MasterKeySource::from_base64(&text, format!("environment variable {ENV_MASTER_KEY}"));
    }
    if let Some(path) = var(ENV_KEY_FILE) {
        let origin = format!("environment variable {ENV_KEY_FILE}");
        if path.trim().is_empty() {
            return Err(VaultError::bad_key(&origin, "it is empty"));
        }
        let path = Path::new(path.as_str());
        let origin = format!("key file {} (from {ENV_KEY_FILE})", path.display());
        let key = read_key_file(path, &origin)?;
        return Ok(MasterKeySource { material: Material::Key(key), origin });
    }
    if let Some(path) = project_key_file
        && path.try_exists().map_err(VaultError::io("read key file", path))?
    {
        let origin = format!("key file {}", path.display());
        let key = read_key_file(path, &origin)?;
        return Ok(MasterKeySource { material: Material::Key(key), origin });
    }
    if let Some(passphrase) = var(ENV_PASSPHRASE) {
        return MasterKeySource::from_passphrase(&passphrase, format!("environment variable {ENV_PASSPHRASE}"));
    }
    Err(VaultError::NoMasterKey { project_key_file: project_key_file.map(Path::to_path_buf) })
}

/// Writes a new random master key to `path` as base64, in a file created with mode 0600 (and
/// parent directories 0700 if missing). Refuses to overwrite an existing file: that would
/// orphan every vault encrypted under the old key.
pub fn generate_key_file(path: &Path) -> Result<(), VaultError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(&mut key[..])?;
    let mut text = Zeroizing::new(String::with_capacity(64));
    STANDARD.encode_string(&key[..], &mut text);
    text.push('\n');
    fsutil::ensure_parent_dir(path)?;
    let mut file = fsutil::create_private_new(path)?;
    let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(VaultError::Io { action: "write key file", path: path.to_path_buf(), source });
    }
    fsutil::sync_dir(fsutil::parent_dir(path))
}
