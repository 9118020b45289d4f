//! `ml-connector connect mailchimp`: the OAuth authorization-code flow for a customer's account.
//! Prints the URL the account owner opens, receives the code on a local redirect listener,
//! exchanges it, stores the token in the vault and reports the account and data center.

use std::path::PathBuf;
use std::time::Duration;

use connector_mailchimp::oauth;
use engine::config::SecretRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{FAILED, OK, load_one};

#[derive(Debug, clap::Subcommand)]
pub enum ConnectCommand {
    /// Connect a Mailchimp account with OAuth.
    Mailchimp(MailchimpArgs),
}

#[derive(Debug, clap::Args)]
pub struct MailchimpArgs {
    #[arg(short, long, default_value = ".")]
    project: PathBuf,
    /// The OAuth app's client id (from Mailchimp's "Registered apps").
    #[arg(long)]
    client_id: String,
    /// The vault secret holding the app's client secret.
    #[arg(long, default_value = "mailchimp_client_secret")]
    client_secret: String,
    /// The vault secret the access token is stored under.
    #[arg(long, default_value = "mailchimp_token")]
    token_secret: String,
    /// The local port for the redirect listener (0: any free port). The app's redirect URI must
    /// be `http://127.0.0.1:PORT/oauth/callback`.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The OAuth host, instead of `https://login.mailchimp.com` (a sandbox).
    #[arg(long)]
    oauth_base_url: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

pub fn execute(command: &ConnectCommand) -> u8 {
    let ConnectCommand::Mailchimp(args) = command;
    let project = match load_one(&args.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let secrets = super::secrets::resolver(&project);
    let client_secret = match secrets.resolve(&SecretRef::Secret(args.client_secret.clone())) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return FAILED;
        }
    };
    let login = args.oauth_base_url.clone().unwrap_or_else(|| connector_mailchimp::oauth_login_base().to_owned());
    let login = login.trim_end_matches('/').to_owned();
    let result = super::runtime().block_on(async {
        let listener = TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|e| format!("cannot listen on port {}: {e}", args.port))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let redirect_uri = format!("http://127.0.0.1:{port}/oauth/callback");
        let state = engine::executor::new_run_id();
        println!("Open this URL, sign in to Mailchimp and allow access:");
        println!("{}", oauth::authorize_url(&login, &args.client_id, &redirect_uri, &state));
        let code = tokio::time::timeout(Duration::from_secs(args.timeout), receive_code(&listener, &state))
            .await
            .map_err(|_| "timed out waiting for the redirect".to_owned())??;
        let http = connector_http::client::build_client(Duration::from_secs(60));
        let token = oauth::exchange_code(&http, &login, &args.client_id, &client_secret, &redirect_uri, &code)
            .await
            .map_err(|e| e.to_string())?;
        let meta = oauth::metadata(&http, &login, &token).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((token, meta))
    });
    let (token, meta) = match result {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return FAILED;
        }
    };
    match super::secrets::store(&project, &args.token_secret, &token) {
        Ok(()) => {
            println!(
                "connected: account `{}`, data center {}, API {}; token stored as vault secret `{}`",
                meta.accountname, meta.dc, meta.api_endpoint, args.token_secret
            );
            println!("use it with: auth: {{type: oauth, token: {{secret: {}}}}}", args.token_secret);
            OK
        }
        Err(e) => {
            eprintln!("{e}");
            FAILED
        }
    }
}

/// Serves the redirect: waits for `GET /oauth/callback?code=…&state=…` with our state.
async fn receive_code(listener: &TcpListener, state: &str) -> Result<String, String> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 8192];
        let n = stream.read(&mut buf).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&buf[..n]);
        let target = request.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("");
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let param = |name: &str| {
            query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
        };
        let (status, message, code) = match (target.starts_with("/oauth/callback"), param("code"), param("state")) {
            (true, Some(code), Some(s)) if s == state => {
                ("200 OK", "ml-connector is connected. You can close this window.", Some(code))
            }
            (true, _, _) => ("400 Bad Request", "The redirect carried no code or a wrong state.", None),
            _ => ("404 Not Found", "Not found.", None),
        };
        let body = format!("<!doctype html><title>ml-connector</title><p>{message}</p>");
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        if let Some(code) = code {
            return Ok(code);
        }
    }
}
