//! One module per subcommand.

pub mod alerts;
pub mod bench;
pub mod check;
pub mod connect;
pub mod demo;
pub mod history;
pub mod run;
pub mod sandbox;
pub mod schema;
pub mod secrets;
pub mod serve;
pub mod test;
pub mod validate;

use std::path::{Path, PathBuf};

use engine::diagnostic::Diagnostic;
use engine::load::{Project, load_project, projects_at};

/// Exit code for success.
pub const OK: u8 = 0;
/// Exit code when a run, test or check failed.
pub const FAILED: u8 = 1;
/// Exit code for invalid configuration or usage.
pub const INVALID: u8 = 2;

/// Prints diagnostics, one per line, on standard error.
pub fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
}

/// Resolves paths to project files; prints what cannot be resolved and fails with `INVALID`.
pub fn resolve_projects(paths: &[PathBuf]) -> Result<Vec<PathBuf>, u8> {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        match projects_at(p) {
            Ok(found) => files.extend(found),
            Err(d) => diags.push(d),
        }
    }
    files.sort();
    files.dedup();
    if diags.is_empty() {
        Ok(files)
    } else {
        print_diagnostics(&diags);
        Err(INVALID)
    }
}

/// Loads one project, printing its diagnostics when it is invalid.
pub fn load_one(path: &Path) -> Result<Project, u8> {
    let files = resolve_projects(&[path.to_path_buf()])?;
    let [file] = files.as_slice() else {
        eprintln!("{}: holds {} projects; name one", path.display(), files.len());
        return Err(INVALID);
    };
    load_project(file, &crate::registry::connectors()).map_err(|d| {
        print_diagnostics(&d);
        eprintln!("{} problem(s) found", d.len());
        INVALID
    })
}

/// The runtime for commands that talk to connections.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts")
}
