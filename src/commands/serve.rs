//! `ml-connector serve`: the always-on service (see [`crate::service`]). This module only turns
//! the command line into [`Options`] and loads the projects.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::service::Options;
use crate::service::tls::TlsFiles;

use super::{FAILED, INVALID, OK, load_one};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A project to serve (directory or project file); repeat to serve several from one
    /// process, each with its own connections, vault, state and inbox.
    #[arg(short, long = "project", default_value = ".")]
    projects: Vec<PathBuf>,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The vault secret holding the token in the Mailchimp webhook URL
    /// (`https://host/hooks/mailchimp/<token>`); each project's own vault, so each project has
    /// its own URL.
    #[arg(long, default_value = "mailchimp_webhook_token")]
    mailchimp_token: String,
    /// The vault secret holding the Mailchimp webhook's signing secret. When it is in the vault,
    /// unsigned or wrongly signed deliveries are refused; the service stores it there itself
    /// when it registers the webhook (Mailchimp shows it only then).
    #[arg(long, default_value = "mailchimp_webhook_signing_secret")]
    mailchimp_signing_secret: String,
    /// The vault secret holding the token in the Business Central notification URL
    /// (`https://host/hooks/business-central/<token>`).
    #[arg(long, default_value = "bc_webhook_token")]
    bc_token: String,
    /// The vault secret holding the `clientState` Business Central subscriptions carry.
    #[arg(long, default_value = "bc_client_state")]
    bc_client_state: String,
    /// The service's address as Mailchimp and Business Central reach it (e.g.
    /// `https://sync.example.com`). With it, the service registers the Mailchimp list webhook
    /// and creates and renews Business Central subscriptions itself.
    #[arg(long)]
    public_url: Option<String>,
    /// PEM certificate chain: serve HTTPS (with `--tls-key`).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

pub fn execute(args: &Args) -> u8 {
    let mut projects = Vec::new();
    for path in &args.projects {
        match load_one(path) {
            Ok(p) => projects.push(p),
            Err(code) => return code,
        }
    }
    if projects.is_empty() {
        eprintln!("no project to serve");
        return INVALID;
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert_chain), Some(private_key)) => {
            Some(TlsFiles { cert_chain: cert_chain.clone(), private_key: private_key.clone() })
        }
        _ => None,
    };
    let options = Options {
        listen: args.listen,
        mailchimp_token: args.mailchimp_token.clone(),
        mailchimp_signing_secret: args.mailchimp_signing_secret.clone(),
        bc_token: args.bc_token.clone(),
        bc_client_state: args.bc_client_state.clone(),
        public_url: args.public_url.clone(),
        tls,
    };
    match super::runtime().block_on(crate::service::serve(projects, options)) {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("serve: {e}");
            FAILED
        }
    }
}
