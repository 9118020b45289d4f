//! The binary with the sandboxes: `sandbox`, and `check` and `connect` against Mailchimp.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use common::{Killed, bin, run};
use sandbox_mailchimp::{DEFAULT_API_KEY, Sandbox, SandboxConfig};

#[test]
fn the_sandbox_command_prints_its_url_and_serves_the_api() {
    let mut child = Killed(bin().args(["sandbox", "mailchimp", "--port", "0"]).stdout(Stdio::piped()).spawn().unwrap());
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("mailchimp sandbox listening on http://127.0.0.1:"), "{line}");
    let url = line.split_whitespace().nth(4).unwrap().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/3.0/ping"))
            .basic_auth("x", Some(DEFAULT_API_KEY))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
}

fn project(dir: &Path, base: &str, auth: &str) {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("ml-connector.yaml"),
        format!("version: 1\nname: mc\nconnections:\n  mailchimp:\n    connector: mailchimp\n    settings:\n      auth: {auth}\n      base_url: {base}\n      oauth_base_url: {base}\n"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_oauth_connect_against_the_sandbox() {
    let sb = Sandbox::start(SandboxConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = sb.base_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    project(&d, &base, "{type: api_key, key: {secret: mc_key}}");

    let d2 = d.clone();
    let (code, out) = tokio::task::spawn_blocking(move || {
        run(&d2, &["secrets", "set", "mc_key"], DEFAULT_API_KEY);
        run(&d2, &["secrets", "set", "mailchimp_client_secret"], "sandbox-secret");
        run(&d2, &["check"], "")
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("mailchimp (mailchimp): ok: account") && out.contains("data center us6"), "{out}");

    // OAuth: the binary prints the URL and waits on its redirect listener; the "person" opens
    // the URL (the sandbox grants consent at once with auto=1 and redirects to the listener).
    let mut child = Killed(
        bin()
            .args([
                "connect",
                "mailchimp",
                "--client-id",
                "sandbox-client",
                "--oauth-base-url",
                &base,
                "--timeout",
                "30",
            ])
            .current_dir(&d)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut all = String::new();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("/oauth2/authorize?") {
                url_tx.send(line.clone()).unwrap();
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let url = tokio::task::spawn_blocking(move || url_rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap())
        .await
        .unwrap();
    let page = reqwest::get(format!("{url}&auto=1")).await.unwrap().text().await.unwrap();
    assert!(page.contains("connected"), "{page}");
    let status = tokio::task::spawn_blocking(move || child.0.wait().unwrap()).await.unwrap();
    let out = reader.join().unwrap();
    assert!(status.success(), "{out}");
    assert!(
        out.contains("connected: account")
            && out.contains("data center us6")
            && out.contains("vault secret `mailchimp_token`"),
        "{out}"
    );

    // The stored token works.
    project(&d, &base, "{type: oauth, token: {secret: mailchimp_token}}");
    let d3 = d.clone();
    let (code, out) = tokio::task::spawn_blocking(move || run(&d3, &["check"], "")).await.unwrap();
    assert_eq!(code, 0, "{out}");
    sb.shutdown().await;
}

#[test]
fn the_business_central_sandbox_command_prints_its_url() {
    let mut child =
        Killed(bin().args(["sandbox", "business-central", "--port", "0"]).stdout(Stdio::piped()).spawn().unwrap());
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("business-central sandbox listening on http://127.0.0.1:"), "{line}");
}

#[test]
fn the_dynamics_gp_sandbox_command_prints_its_url_and_account() {
    let mut child =
        Killed(bin().args(["sandbox", "dynamics-gp", "--port", "0"]).stdout(Stdio::piped()).spawn().unwrap());
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(
        line.starts_with("dynamics-gp sandbox listening on http://127.0.0.1:") && line.contains("gpuser"),
        "{line}"
    );
}
