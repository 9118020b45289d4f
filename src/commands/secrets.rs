//! `ml-connector secrets`: the project's encrypted vault. Values go in, names come out; no
//! command ever prints a value.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;
use engine::connector::SecretResolver;
use engine::load::Project;
use vault::{Secrets, Vault, generate_key_file, master_key_from_environment, validate_secret_name};

use super::{FAILED, INVALID, OK, load_one};

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store a secret. The value is read from standard input, or asked for without echo when
    /// standard input is a terminal. Creates the vault on first use.
    Set {
        #[arg(short, long, default_value = ".")]
        project: PathBuf,
        /// The secret's name, as connection settings refer to it: `{secret: NAME}`.
        name: String,
    },
    /// List the names of the stored secrets (never their values).
    List {
        #[arg(short, long, default_value = ".")]
        project: PathBuf,
    },
    /// Remove a secret.
    Remove {
        #[arg(short, long, default_value = ".")]
        project: PathBuf,
        name: String,
    },
    /// Write a new random master key to the project's key file (mode 0600). Refuses to replace
    /// an existing key: the vault it opens would become unreadable.
    GenerateKey {
        #[arg(short, long, default_value = ".")]
        project: PathBuf,
        /// Where to write it instead of the project's `state.key_file`.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// The resolver run, plan and replay hand to connectors: environment references always work;
/// vault references open the vault (failing, by name, only when one is actually used).
pub fn resolver(project: &Project) -> Arc<dyn SecretResolver> {
    Arc::new(Secrets::load(&project.vault_path(), Some(&project.key_file_path())))
}

pub fn execute(command: &SecretsCommand) -> u8 {
    match command {
        SecretsCommand::Set { project, name } => set(project, name),
        SecretsCommand::List { project } => with_vault(project, |v| {
            // (The vault exists: `with_vault` reports a missing one.)
            let names = v.names();
            if names.is_empty() {
                println!("no secrets stored");
            }
            for n in names {
                println!("{n}\tupdated {}", v.updated_at(&n).unwrap_or("?"));
            }
            OK
        }),
        SecretsCommand::Remove { project, name } => {
            let project = match load_one(project) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let result = open(&project, false).and_then(|mut v| v.remove(name).map_err(|e| e.to_string()));
            match result {
                Ok(true) => {
                    println!("removed `{name}`");
                    OK
                }
                Ok(false) => {
                    eprintln!("no secret named `{name}`");
                    FAILED
                }
                Err(e) => {
                    eprintln!("{e}");
                    FAILED
                }
            }
        }
        SecretsCommand::GenerateKey { project, file } => {
            let project = match load_one(project) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let path = file.clone().unwrap_or_else(|| project.key_file_path());
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            match generate_key_file(&path) {
                Ok(()) => {
                    println!(
                        "wrote a new master key to {} (mode 0600); back it up: without it the vault cannot be read",
                        path.display()
                    );
                    OK
                }
                Err(e) => {
                    eprintln!("{e}");
                    FAILED
                }
            }
        }
    }
}

fn set(project: &Path, name: &str) -> u8 {
    let project = match load_one(project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(e) = validate_secret_name(name) {
        eprintln!("{e}");
        return INVALID;
    }
    let value = match read_value(name) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return FAILED;
        }
    };
    if value.is_empty() {
        eprintln!("refusing to store an empty value for `{name}`");
        return INVALID;
    }
    let result = open(&project, true).and_then(|mut v| v.set(name, &value).map_err(|e| e.to_string()));
    match result {
        Ok(()) => {
            println!("stored `{name}` in {}", project.vault_path().display());
            OK
        }
        Err(e) => {
            eprintln!("{e}");
            FAILED
        }
    }
}

/// Reads the value: a no-echo prompt on a terminal, otherwise all of standard input with one
/// trailing newline removed (so `echo value | … secrets set` stores `value`).
fn read_value(name: &str) -> Result<zeroize::Zeroizing<String>, String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("value for `{name}`: "))
            .map(zeroize::Zeroizing::new)
            .map_err(|e| format!("cannot read the value: {e}"));
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read standard input: {e}"))?;
    let trimmed = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_owned();
    Ok(zeroize::Zeroizing::new(trimmed))
}

/// Stores a value in the project's vault (creating it when needed).
pub fn store(project: &Project, name: &str, value: &str) -> Result<(), String> {
    validate_secret_name(name).map_err(|e| e.to_string())?;
    let mut vault = open(project, true)?;
    vault.set(name, value).map_err(|e| e.to_string())
}

fn open(project: &Project, create: bool) -> Result<Vault, String> {
    let key = master_key_from_environment(Some(&project.key_file_path())).map_err(|e| e.to_string())?;
    let path = project.vault_path();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let vault = if create { Vault::open_or_create(&path, &key) } else { Vault::open(&path, &key) };
    vault.map_err(|e| e.to_string())
}

fn with_vault(project: &Path, f: impl FnOnce(&Vault) -> u8) -> u8 {
    let project = match load_one(project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if !project.vault_path().exists() {
        println!("no secrets stored (no vault at {} yet)", project.vault_path().display());
        return OK;
    }
    match open(&project, false) {
        Ok(v) => f(&v),
        Err(e) => {
            eprintln!("{e}");
            FAILED
        }
    }
}
