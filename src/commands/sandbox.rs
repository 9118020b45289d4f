//! `ml-connector sandbox <system>`: local servers that behave like the real APIs, for trying the
//! product before there are credentials, and for tests.

use std::path::PathBuf;

use super::{FAILED, OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which system to emulate.
    #[arg(value_enum)]
    system: System,
    /// The port to listen on (0: any free port; the URL is printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// A JSON file with data to start from (e.g. audiences).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Dynamics GP: a Windows account the sandbox accepts, `DOMAIN\\user:password`
    /// (repeatable; default GPDOMAIN\\gpuser with password Passw0rd!).
    #[arg(long = "user")]
    users: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum System {
    /// The Mailchimp Marketing API v3.0 (and its OAuth endpoints).
    Mailchimp,
    /// Dynamics 365 Business Central API v2.0 (and the Entra ID token endpoint).
    BusinessCentral,
    /// Dynamics GP web services (SOAP and Service Based Architecture) behind real NTLM.
    DynamicsGp,
}

pub fn execute(args: &Args) -> u8 {
    let result = super::runtime().block_on(async {
        match args.system {
            System::Mailchimp => sandbox_mailchimp::run_cli(args.port, args.seed.clone()).await,
            System::BusinessCentral => sandbox_business_central::run_cli(args.port, args.seed.clone()).await,
            System::DynamicsGp => sandbox_dynamics_gp::run_cli(args.port, args.seed.clone(), args.users.clone()).await,
        }
    });
    match result {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("sandbox: {e}");
            FAILED
        }
    }
}
