//! `ml-connector test`: mapping tests, with a readable diff for each failure.

use std::path::PathBuf;

use engine::load::load_project;
use engine::mapping_test::{run_test_file, test_files};

use super::{FAILED, INVALID, OK, print_diagnostics, resolve_projects};

pub fn execute(paths: &[PathBuf]) -> u8 {
    let files = match resolve_projects(paths) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let registry = crate::registry::connectors();
    let (mut passed, mut failed, mut invalid) = (0, 0, false);
    for file in &files {
        let project = match load_project(file, &registry) {
            Ok(p) => p,
            Err(d) => {
                print_diagnostics(&d);
                invalid = true;
                continue;
            }
        };
        for test_file in test_files(&project) {
            match run_test_file(&project, &test_file) {
                Err(d) => {
                    print_diagnostics(&d);
                    invalid = true;
                }
                Ok(results) => {
                    for r in results {
                        match r.failure {
                            None => {
                                passed += 1;
                                println!("ok   {} :: {}", r.file.display(), r.name);
                            }
                            Some(why) => {
                                failed += 1;
                                println!("FAIL {} :: {}\n{why}", r.file.display(), r.name);
                            }
                        }
                    }
                }
            }
        }
    }
    println!("mapping tests: {passed} passed, {failed} failed");
    if invalid {
        INVALID
    } else if failed > 0 {
        FAILED
    } else {
        OK
    }
}
