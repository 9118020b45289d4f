//! Diagnostics: one problem in a configuration file, with the place it was found.
//!
//! Loading never stops at the first problem. Each stage returns what it could build plus a
//! `Vec<Diagnostic>`, so `ml-connector validate` can print every problem in one pass.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a source file: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file; `None` when the problem concerns the file as a whole.
    pub position: Option<Position>,
    /// A stable, short code (`yaml`, `schema`, `template`, `jsonpath`, `reference`, ...).
    pub code: &'static str,
    /// What is wrong, in plain words.
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        file: impl Into<PathBuf>,
        position: Option<Position>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic { file: file.into(), position, code, message: message.into() }
    }

    /// A problem that concerns a whole file (unreadable, not found).
    pub fn file(file: &Path, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic::new(file, None, code, message)
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: error[code]: message`, the shape compilers use, so editors and CI
    /// annotators can jump to the place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": error[{}]: {}", self.code, self.message)
    }
}

/// Sorts diagnostics by file and position and drops exact repeats (a node reached through two
/// schema branches can report the same problem twice).
pub fn sort_and_dedup(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics
        .sort_by(|a, b| (&a.file, a.position, a.code, &a.message).cmp(&(&b.file, b.position, b.code, &b.message)));
    diagnostics.dedup();
}
