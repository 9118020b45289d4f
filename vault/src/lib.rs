//! ml-connector's encrypted per-project secrets vault.
//!
//! Configuration never holds a secret: connector settings say `{secret: NAME}` or `{env: VAR}`.
//! This crate stores the `{secret: NAME}` values in one JSON file (e.g.
//! `.ml-connector/vault.json`), each value sealed with XChaCha20-Poly1305 under a 32-byte master
//! key, and resolves both kinds of reference for the engine through [`Secrets`].
//!
//! # Why it is built this way
//!
//! - **Each ciphertext is bound to its name.** The associated data of a secret is
//!   `"ml-connector:secret:v1:" + name`, so a ciphertext copied onto another name (someone
//!   editing the file, a bad merge) fails to decrypt instead of handing the Mailchimp key to
//!   the connection that asked for the ERP password. Every secret has its own random 24-byte
//!   nonce; XChaCha20's nonce is long enough that random nonces never collide in practice.
//! - **A key check guards every write.** The file holds a `check` entry, a fixed marker sealed
//!   under the key. [`Vault::open`] decrypts it first, so a wrong key (or passphrase) fails with
//!   "the master key does not open this vault" *before* anything could be written: a wrong key
//!   can never re-encrypt or overwrite secrets it cannot read. Neither a wrong key nor a
//!   corrupt file ever causes a write.
//! - **Writes are atomic.** The new file is written to a temporary file in the same directory
//!   (mode 0600), flushed to disk, then renamed over the old one, so a crash leaves either the
//!   old vault or the new one, never half of each.
//! - **File modes.** The vault and key files are created 0600 on unix, and a key file that
//!   group or others may access is refused: a key readable by everyone on the machine is no
//!   key.
//! - **Nothing secret is printed.** [`VaultError`] names sources, paths and secret names, never
//!   a value or key material; the `Debug` output of key types is redacted; key material and
//!   decrypted values are wiped from memory when dropped ([`zeroize`]).
//!
//! # Master key
//!
//! [`master_key_from_environment`] takes the first source present: `ML_CONNECTOR_MASTER_KEY`
//! (base64 of 32 bytes), the key file named by `ML_CONNECTOR_KEY_FILE` or the project's key file
//! (see [`generate_key_file`]), or `ML_CONNECTOR_PASSPHRASE`, from which Argon2id derives the
//! key with a random salt and parameters stored in the vault file.
//!
//! The vault is a single-writer file: two processes changing secrets at the same moment may
//! lose one change (the last rename wins); neither can corrupt the file.

mod error;
mod fsutil;
mod key;
mod resolver;
mod store;

pub use error::VaultError;
pub use key::{
    ENV_KEY_FILE, ENV_MASTER_KEY, ENV_PASSPHRASE, KEY_LEN, KdfParams, MasterKeySource, generate_key_file,
    master_key_from, master_key_from_environment,
};
pub use resolver::Secrets;
pub use store::{FORMAT, Vault, validate_secret_name};
