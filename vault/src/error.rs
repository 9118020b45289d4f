//! The vault's errors. None of them carries a secret value or key material: they name sources,
//! paths and secret names only.

use std::io;
use std::path::{Path, PathBuf};

use crate::key::{ENV_KEY_FILE, ENV_MASTER_KEY, ENV_PASSPHRASE};

/// Everything that can go wrong with master keys and the vault file.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No master key source is present.
    #[error(
        "no master key: set {ENV_MASTER_KEY} to the base64 of 32 random bytes (e.g. `openssl rand -base64 32`), \
         point {ENV_KEY_FILE} at a file holding one{}, or set {ENV_PASSPHRASE}",
        project_hint(.project_key_file.as_deref())
    )]
    NoMasterKey {
        /// The project key file that was looked for, if any.
        project_key_file: Option<PathBuf>,
    },
    /// A key source is present but does not hold a usable key.
    #[error("invalid master key from {origin}: {reason}")]
    BadKey {
        /// Where the key came from (an environment variable or file name, never the value).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key file that group or others may access.
    #[error("key file {} must not be readable by others (chmod 600 {})", .path.display(), .path.display())]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
    },
    /// A file that must be created already exists.
    #[error("{} already exists; refusing to overwrite it", .path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The vault file does not exist.
    #[error("vault file {} does not exist", .path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// The vault file cannot be parsed or is inconsistent.
    #[error("vault file {} is corrupt: {reason}", .path.display())]
    Corrupt {
        /// The vault file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The vault file was written by a newer (or unknown) version.
    #[error("vault file {} has format {format}; this build reads format {}", .path.display(), crate::store::FORMAT)]
    UnsupportedFormat {
        /// The vault file.
        path: PathBuf,
        /// The format it declares.
        format: u64,
    },
    /// The key (or passphrase) is not the one the vault was created with.
    #[error("the master key does not open this vault ({}): {detail}", .path.display())]
    WrongKey {
        /// The vault file.
        path: PathBuf,
        /// Which key was tried and what to do.
        detail: String,
    },
    /// A secret name outside `[A-Za-z0-9_.-]{1,128}`.
    #[error("invalid secret name `{name}`: use 1 to 128 characters from A-Z, a-z, 0-9, `_`, `.` and `-`")]
    InvalidName {
        /// The name, escaped and shortened for display.
        name: String,
    },
    /// One stored secret cannot be decrypted although the vault's key is right.
    #[error("vault secret `{name}` cannot be decrypted: {reason}")]
    SecretUnreadable {
        /// The secret's name.
        name: String,
        /// Why (never the value).
        reason: String,
    },
    /// Argon2id refused its parameters or failed.
    #[error("cannot derive the master key from the passphrase: {reason}")]
    Kdf {
        /// Argon2's message.
        reason: String,
    },
    /// Encryption failed (only possible for absurdly large values).
    #[error("cannot encrypt vault secret `{name}`")]
    Encrypt {
        /// The secret's name.
        name: String,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {reason}")]
    Random {
        /// getrandom's message.
        reason: String,
    },
    /// A file system operation failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done ("read vault file", "create key file", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl VaultError {
    /// A [`VaultError::Io`] for `action` on `path`.
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> VaultError {
        let path = path.to_path_buf();
        move |source| VaultError::Io { action, path, source }
    }

    pub(crate) fn bad_key(origin: &str, reason: impl Into<String>) -> VaultError {
        VaultError::BadKey { origin: origin.to_string(), reason: reason.into() }
    }
}

fn project_hint(project_key_file: Option<&Path>) -> String {
    match project_key_file {
        Some(path) => format!(", create the project key file {}", path.display()),
        None => String::new(),
    }
}
