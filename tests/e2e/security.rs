//! Security checks the other files do not make:
//!
//! - outbound TLS is verified by default: every HTTP connector (Mailchimp, Business Central,
//!   the generic `http` one, and Dynamics GP, which runs its own TLS for NTLM) pointed at an
//!   HTTPS server with a self-signed certificate refuses it, and says it was the certificate,
//!   while a client that trusts that certificate reaches the server fine;
//! - the service's own outputs (`/metrics`, `/readyz`, `/healthz`, its log at debug level)
//!   carry none of the webhook secrets.
//!
//! (`secrets.rs` follows a secret through a sync; `bad_input.rs` sends forged webhooks.)

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use common::{Killed, bin, run};

const TOKEN: &str = "mc-token-fedcba9876543210";
const SIGNING: &str = "signing-secret-0a1b2c3d4e";
const BC_TOKEN: &str = "bc-token-fedcba9876543210";
const CLIENT_STATE: &str = "client-state-7e6d5c4b3a";

/// `serve` in `dir` with `args`; its base URL and its log file.
fn serve(dir: &Path, args: &[&str]) -> (Killed, String) {
    let mut child = Killed(
        bin()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("ML_CONNECTOR_LOG", "debug")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("serving on ").unwrap_or_else(|| panic!("{line}")).to_owned();
    (child, base)
}

fn project(dir: &Path, connections: &str) {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(dir.join("ml-connector.yaml"), format!("version: 1\nname: security\nconnections:\n{connections}"))
        .unwrap();
}

#[test]
fn connectors_refuse_a_self_signed_certificate_and_say_so() {
    // An HTTPS server with a certificate nobody trusts: `serve` itself, over TLS.
    let server = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(server.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(server.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    project(server.path(), "  out: {connector: jsonl, settings: {directory: out}}\n");
    let (_https, base) = serve(server.path(), &["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    let port = base.rsplit(':').next().unwrap().to_owned();
    assert!(base.starts_with("https://"), "{base}");
    let url = format!("https://localhost:{port}");

    // A client that trusts the certificate reaches it: what follows is about trust, not reach.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
        let client = reqwest::Client::builder().add_root_certificate(root).build().unwrap();
        client.get(format!("{url}/healthz")).send().await.unwrap().status()
    });
    assert_eq!(status, 200);

    let client = tempfile::tempdir().unwrap();
    let d = client.path();
    project(
        d,
        &format!(
            "  mailchimp:\n    connector: mailchimp\n    settings: {{auth: {{type: api_key, key: {{secret: key}}}}, base_url: '{url}', max_attempts: 1}}\n\
             \x20 business_central:\n    connector: business-central\n    settings: {{tenant: t, environment: production, company: c, client_id: id, credential: {{type: secret, secret: {{secret: key}}}}, token_url: '{url}/token', base_url: '{url}', max_attempts: 1}}\n\
             \x20 api:\n    connector: http\n    settings: {{base_url: '{url}/api', auth: {{type: bearer, token: {{secret: key}}}}, max_attempts: 1}}\n\
             \x20 dynamics_gp:\n    connector: dynamics-gp\n    settings: {{interface: soap, url: '{url}/DynamicsGPWebServices', company_key: -1, domain: D, user: u, password: {{secret: key}}, max_attempts: 1}}\n"
        ),
    );
    assert_eq!(run(d, &["secrets", "set", "key"], "secret-value-us6").0, 0);
    // The generic connector has nothing to check before a write: one record goes through it.
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::write(d.join("data/c.jsonl"), "{\"id\": \"1\"}\n").unwrap();
    std::fs::write(
        d.join("pipelines/post.yaml"),
        "version: 1\nname: post\nsource: {connection: files, entity: c.jsonl}\nkey: \"{{ record.id }}\"\nfields: {id: \"{{ record.id }}\"}\ntarget: {connection: api, resource: request, params: {method: PUT, path: /x}}\n",
    )
    .unwrap();
    let mut project_file = std::fs::read_to_string(d.join("ml-connector.yaml")).unwrap();
    project_file.push_str("  files: {connector: jsonl, settings: {directory: data}}\n");
    std::fs::write(d.join("ml-connector.yaml"), project_file).unwrap();
    let mut unclear = Vec::new();
    for (connection, args) in [
        ("mailchimp", &["check", "mailchimp"][..]),
        ("business_central", &["check", "business_central"]),
        ("dynamics_gp", &["check", "dynamics_gp"]),
        ("api", &["run", "post"]),
    ] {
        let (code, out) = run(d, args, "");
        assert_ne!(code, 0, "{connection} accepted a self-signed certificate:\n{out}");
        if !out.to_lowercase().contains("certificate") {
            unclear.push(format!("{connection}: {out}"));
        }
    }
    assert!(unclear.is_empty(), "failures that do not say it was the certificate:\n{}", unclear.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_outputs_no_webhook_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    project(&d, "  events: {connector: inbox}\n  out: {connector: jsonl, settings: {directory: out}}\n");
    let dd = d.clone();
    tokio::task::spawn_blocking(move || {
        for (name, value) in [
            ("mailchimp_webhook_token", TOKEN),
            ("signing", SIGNING),
            ("bc_webhook_token", BC_TOKEN),
            ("bc_client_state", CLIENT_STATE),
        ] {
            assert_eq!(run(&dd, &["secrets", "set", name], value).0, 0);
        }
    })
    .await
    .unwrap();
    let (_serve, base) = serve(&d, &["--mailchimp-signing-secret", "signing"]);
    let http = reqwest::Client::new();
    // Some traffic first, so the counters and the log have something to say.
    let hook = format!("{base}/hooks/mailchimp/{TOKEN}");
    let body = "type=unsubscribe&fired_at=2026-03-01+10%3A00%3A00&data%5Bemail%5D=ada%40example.com";
    let signature = connector_mailchimp::webhooks::sign(SIGNING, body.as_bytes(), jiff::Timestamp::now().as_second());
    let r = http.post(&hook).header("x-mailchimp-signature", signature).body(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(http.post(&hook).body(body).send().await.unwrap().status(), 401);
    let notification = serde_json::json!({"value": [{"subscriptionId": "s", "clientState": CLIENT_STATE,
        "resource": "api/v2.0/companies(c)/customers(1)", "changeType": "updated", "lastModifiedDateTime": "2030-01-01T00:00:00Z"}]});
    let r = http.post(format!("{base}/hooks/business-central/{BC_TOKEN}")).json(&notification).send().await.unwrap();
    assert_eq!(r.status(), 202);

    let mut output = String::new();
    for path in ["/metrics", "/readyz", "/healthz"] {
        output.push_str(&http.get(format!("{base}{path}")).send().await.unwrap().text().await.unwrap());
    }
    assert!(output.contains("mlc_"), "{output}");
    output.push_str(&std::fs::read_to_string(d.join("serve.log")).unwrap());
    for secret in [TOKEN, SIGNING, BC_TOKEN, CLIENT_STATE] {
        assert!(!output.contains(secret), "the service printed a secret:\n{output}");
    }
}
