//! [`Secrets`]: the engine's [`SecretResolver`] over the environment and the vault.

use std::fmt;
use std::path::Path;

use engine::config::SecretRef;
use engine::connector::SecretResolver;

use crate::error::VaultError;
use crate::key::master_key_from;
use crate::store::Vault;

/// Resolves `{env: VAR}` from the process environment and `{secret: NAME}` from the vault.
///
/// A project whose settings only use `{env: …}` needs no vault and no master key, so a vault
/// that could not be opened is not an error until a `{secret: …}` reference asks for it; the
/// reason is kept for that message.
pub struct Secrets {
    vault: Result<Vault, String>,
}

impl Secrets {
    /// Resolves vault references from `vault`.
    pub fn new(vault: Vault) -> Self {
        Secrets { vault: Ok(vault) }
    }

    /// No vault: vault references fail with "no vault is open: {reason}".
    pub fn without_vault(reason: impl Into<String>) -> Self {
        Secrets { vault: Err(reason.into()) }
    }

    /// Opens the vault at `vault_path` with the master key from the process environment (see
    /// [`crate::master_key_from_environment`]). Never fails: a missing vault or key, a wrong key
    /// or a corrupt file is reported when a vault reference is resolved.
    pub fn load(vault_path: &Path, project_key_file: Option<&Path>) -> Self {
        Secrets::load_with(|name| std::env::var(name).ok(), vault_path, project_key_file)
    }

    /// [`Secrets::load`] with the master key variables read through `env`.
    pub fn load_with(env: impl Fn(&str) -> Option<String>, vault_path: &Path, project_key_file: Option<&Path>) -> Self {
        let open = || -> Result<Vault, VaultError> {
            if !vault_path.try_exists().map_err(VaultError::io("read vault file", vault_path))? {
                return Err(VaultError::NotFound { path: vault_path.to_path_buf() });
            }
            let source = master_key_from(env, project_key_file)?;
            Vault::open(vault_path, &source)
        };
        match open() {
            Ok(vault) => Secrets::new(vault),
            Err(e) => Secrets::without_vault(e.to_string()),
        }
    }

    /// The open vault, or why there is none.
    pub fn vault(&self) -> Result<&Vault, &str> {
        self.vault.as_ref().map_err(String::as_str)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets").field("vault", &self.vault).finish()
    }
}

impl SecretResolver for Secrets {
    fn resolve(&self, reference: &SecretRef) -> Result<String, String> {
        match reference {
            SecretRef::Env(var) => std::env::var(var).map_err(|e| match e {
                std::env::VarError::NotPresent => format!("environment variable `{var}` is not set"),
                std::env::VarError::NotUnicode(_) => format!("environment variable `{var}` is not valid UTF-8"),
            }),
            SecretRef::Secret(name) => {
                let vault = self
                    .vault
                    .as_ref()
                    .map_err(|reason| format!("vault secret `{name}` cannot be read: no vault is open: {reason}"))?;
                match vault.get(name) {
                    // Moved out, not copied: the trait hands the connector a plain String.
                    Ok(Some(mut value)) => Ok(std::mem::take(&mut *value)),
                    Ok(None) => Err(format!(
                        "vault secret `{name}` is not set in {} (set it with `ml-connector secrets set {name}`)",
                        vault.path().display()
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }
}
