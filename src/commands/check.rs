//! `ml-connector check`: do the connections work, and what do they reach?

use std::path::PathBuf;

use engine::connector::ConnectContext;

use super::{FAILED, INVALID, OK, load_one};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short, long, default_value = ".")]
    project: PathBuf,
    /// Connections to check; all when none is named.
    connections: Vec<String>,
}

pub fn execute(args: &Args) -> u8 {
    let project = match load_one(&args.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    for name in &args.connections {
        if !project.config.connections.contains_key(name) {
            eprintln!("unknown connection `{name}`");
            return INVALID;
        }
    }
    let registry = crate::registry::connectors();
    let context = ConnectContext { project_dir: project.dir.clone(), secrets: super::secrets::resolver(&project) };
    let mut ok = true;
    super::runtime().block_on(async {
        for (name, config) in &project.config.connections {
            if !args.connections.is_empty() && !args.connections.contains(name) {
                continue;
            }
            let Some(connector) = registry.get(&config.connector) else { continue };
            let result = match connector.connect(&config.settings, &context).await {
                Ok(connection) => connection.check().await,
                Err(e) => Err(e),
            };
            match result {
                Ok(what) => println!("{name} ({}): ok: {what}", config.connector),
                Err(e) => {
                    ok = false;
                    println!("{name} ({}): FAILED: {e}", config.connector);
                }
            }
        }
    });
    if ok { OK } else { FAILED }
}
