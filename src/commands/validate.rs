//! `ml-connector validate`: every problem of every named project, at once.

use std::path::PathBuf;

use engine::load::load_project;

use super::{INVALID, OK, print_diagnostics, resolve_projects};

pub fn execute(paths: &[PathBuf]) -> u8 {
    let files = match resolve_projects(paths) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let registry = crate::registry::connectors();
    let mut problems = 0;
    for file in &files {
        match load_project(file, &registry) {
            Ok(project) => println!("{}: ok ({} pipeline(s))", file.display(), project.pipelines.len()),
            Err(diags) => {
                print_diagnostics(&diags);
                problems += diags.len();
            }
        }
    }
    if problems > 0 {
        eprintln!("{problems} problem(s) found");
        INVALID
    } else {
        OK
    }
}
