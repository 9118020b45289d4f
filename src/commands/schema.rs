//! `ml-connector schema`: the JSON Schemas, printed, written or checked.

use std::path::PathBuf;

use clap::ValueEnum;
use engine::mapping_test::test_file_schema;
use engine::schema::{pipeline_schema, project_schema, to_file_text};

use super::{FAILED, OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which schema to print.
    #[arg(value_enum, default_value = "project")]
    kind: Kind,
    /// Write all schemas into this directory (`schemas/` in the repository).
    #[arg(long, value_name = "DIR", conflicts_with = "check")]
    write: Option<PathBuf>,
    /// Fail when the schemas in this directory differ from what this binary generates.
    #[arg(long, value_name = "DIR")]
    check: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    /// `ml-connector.yaml`.
    Project,
    /// Pipeline files.
    Pipeline,
    /// Mapping-test files (`*.test.yaml`).
    Test,
}

/// (file name, contents) of every schema.
fn all() -> Vec<(&'static str, String)> {
    let registry = crate::registry::connectors();
    vec![
        ("project.schema.json", to_file_text(&project_schema(&registry))),
        ("pipeline.schema.json", to_file_text(&pipeline_schema(&registry))),
        ("test.schema.json", to_file_text(&test_file_schema())),
    ]
}

pub fn execute(args: &Args) -> u8 {
    if let Some(dir) = &args.write {
        for (name, text) in all() {
            let path = dir.join(name);
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, text)) {
                eprintln!("{}: cannot write: {e}", path.display());
                return FAILED;
            }
            println!("wrote {}", path.display());
        }
        return OK;
    }
    if let Some(dir) = &args.check {
        let mut stale = false;
        for (name, text) in all() {
            let path = dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                eprintln!("{}: stale or missing; run `ml-connector schema --write {}`", path.display(), dir.display());
                stale = true;
            }
        }
        return if stale { FAILED } else { OK };
    }
    let index = match args.kind {
        Kind::Project => 0,
        Kind::Pipeline => 1,
        Kind::Test => 2,
    };
    print!("{}", all().swap_remove(index).1);
    OK
}
