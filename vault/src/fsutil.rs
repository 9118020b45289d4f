//! Private files: created 0600, replaced atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::error::VaultError;

/// The directory a file lives in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Creates the parent directories of `path` (0700 on unix) if they are missing.
pub(crate) fn ensure_parent_dir(path: &Path) -> Result<(), VaultError> {
    let dir = parent_dir(path);
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(VaultError::io("create directory", dir))
}

/// Creates a new file readable by its owner only; fails if it exists.
pub(crate) fn create_private_new(path: &Path) -> Result<File, VaultError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => VaultError::AlreadyExists { path: path.to_path_buf() },
        _ => VaultError::Io { action: "create", path: path.to_path_buf(), source },
    })
}

/// Flushes a directory entry change (a rename, a new file) to disk. A no-op where directories
/// cannot be opened (Windows).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), VaultError> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all()).map_err(VaultError::io("flush directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// How [`write_atomic`] treats an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Replace it.
    Yes,
    /// Fail with [`VaultError::AlreadyExists`].
    No,
}

/// Writes `bytes` to `path` atomically: a 0600 temporary file in the same directory, fsync,
/// rename, fsync of the directory. On any error the temporary file is removed and `path` is
/// untouched.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], replace: Replace) -> Result<(), VaultError> {
    let dir = parent_dir(path);
    let prefix = match path.file_name() {
        Some(name) => format!(".{}.", name.to_string_lossy()),
        None => ".vault.".to_string(),
    };
    // tempfile creates the file with mode 0600 on unix and deletes it when dropped unpersisted.
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(VaultError::io("create a temporary file in", dir))?;
    let tmp_path = tmp.path().to_path_buf();
    tmp.write_all(bytes).map_err(VaultError::io("write", &tmp_path))?;
    tmp.as_file().sync_all().map_err(VaultError::io("flush", &tmp_path))?;
    let persisted = match replace {
        Replace::Yes => tmp.persist(path),
        Replace::No => tmp.persist_noclobber(path),
    };
    persisted.map_err(|e| match e.error.kind() {
        io::ErrorKind::AlreadyExists if replace == Replace::No => {
            VaultError::AlreadyExists { path: path.to_path_buf() }
        }
        _ => VaultError::Io { action: "replace", path: path.to_path_buf(), source: e.error },
    })?;
    sync_dir(dir)
}
