//! Secrets never appear in plaintext: not in the state database, the vault file, logs (even at
//! trace level), error messages, or the output of any command. The secret is really used (the
//! test server checks the header it receives), then every byte the project produced is
//! searched for it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;

const SECRET: &str = "sk-LEAKCHECK-7f3a9c1e5b";
/// base64 of 32 bytes 0x2a: the test's master key.
const MASTER_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

type Seen = Arc<Mutex<Vec<String>>>;

async fn member(State(seen): State<Seen>, UrlPath(id): UrlPath<String>, headers: HeaderMap) -> (StatusCode, String) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    seen.lock().unwrap().push(auth.clone());
    if auth != format!("Bearer {SECRET}") {
        return (StatusCode::UNAUTHORIZED, "{\"title\":\"API Key Invalid\"}".into());
    }
    if id == "3" {
        return (StatusCode::BAD_REQUEST, "{\"detail\":\"merge field PHONE is invalid\"}".into());
    }
    (StatusCode::OK, format!("{{\"id\":\"m-{id}\"}}"))
}

fn cli(dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
        .args(args)
        .current_dir(dir)
        .env("ML_CONNECTOR_MASTER_KEY", MASTER_KEY)
        .env("ML_CONNECTOR_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_used_in_a_sync_appears_nowhere() {
    let seen: Seen = Arc::default();
    let app = Router::new().route("/api/members/{id}", put(member)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("pipelines")).unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::write(
        d.join("ml-connector.yaml"),
        format!(
            "version: 1\nname: leak\nconnections:\n  files: {{connector: jsonl, settings: {{directory: data}}}}\n  api:\n    connector: http\n    settings:\n      base_url: {base}\n      auth: {{type: bearer, token: {{secret: api_token}}}}\n      max_attempts: 1\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("pipelines/members.yaml"),
        "version: 1\nname: members\nsource: {connection: files, entity: c.jsonl}\nkey: \"{{ record.id }}\"\nfields:\n  email: \"{{ record.email }}\"\ntarget:\n  connection: api\n  resource: request\n  params: {method: PUT, path: \"/members/{{ record.id }}\"}\n",
    )
    .unwrap();
    std::fs::write(d.join("data/c.jsonl"), "{\"id\":\"1\",\"email\":\"a@x.io\"}\n{\"id\":\"2\",\"email\":\"b@x.io\"}\n{\"id\":\"3\",\"email\":\"c@x.io\"}\n").unwrap();

    let mut output = String::new();
    let dir_path = d.to_path_buf();
    let run = move |args: &'static [&'static str], stdin: Option<&'static str>| {
        let dir = dir_path.clone();
        async move { tokio::task::spawn_blocking(move || cli(&dir, args, stdin)).await.unwrap() }
    };

    // Before the secret exists: the failure names the secret, not a value.
    let (ok, out) = run(&["run"], None).await;
    assert!(!ok);
    assert!(out.contains("vault secret `api_token`"), "{out}");
    output.push_str(&out);

    let (ok, out) = run(&["secrets", "set", "api_token"], Some(SECRET)).await;
    assert!(ok, "{out}");
    output.push_str(&out);
    for args in [
        &["-vv", "run"][..],
        &["plan"],
        &["run"],
        &["status"],
        &["audit", "--format", "jsonl"],
        &["dead-letters", "--json"],
        &["secrets", "list"],
        &["replay"],
    ] {
        let (_, out) = run(args, None).await;
        output.push_str(&out);
    }

    // The secret was really used, and the sync did its work.
    assert!(seen.lock().unwrap().iter().any(|a| a == &format!("Bearer {SECRET}")));
    assert!(output.contains("members: read 3, filtered 0, did create 2"), "{output}");
    assert!(output.contains("merge field PHONE is invalid"), "the target's error is shown: {output}");
    assert!(output.contains("api_token"), "the secret's name is shown");

    // …and appears nowhere.
    assert!(!output.contains(SECRET), "a command printed the secret");
    assert!(!output.contains(MASTER_KEY), "a command printed the master key");
    let mut files = 0;
    for entry in walk(d) {
        let bytes = std::fs::read(&entry).unwrap();
        files += 1;
        assert!(!contains(&bytes, SECRET.as_bytes()), "{} holds the secret in plaintext", entry.display());
        assert!(!contains(&bytes, MASTER_KEY.as_bytes()), "{} holds the master key", entry.display());
    }
    assert!(files >= 5, "state database, vault, config, data were all searched ({files} files)");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn wrong_or_broken_key_material_is_a_clear_error_and_leaves_the_vault_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ml-connector.yaml"), "version: 1\nname: keys\npipelines: []\n").unwrap();
    let (ok, out) = cli(d, &["secrets", "set", "token"], Some("value-1"));
    assert!(ok, "{out}");
    let vault = d.join(".ml-connector/vault.json");
    let before = std::fs::read(&vault).unwrap();

    let bin = env!("CARGO_BIN_EXE_ml-connector");
    let with_key = |key: &str, args: &[&str]| {
        let mut child = Command::new(bin)
            .args(args)
            .current_dir(d)
            .env("ML_CONNECTOR_MASTER_KEY", key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"other-value").unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Another valid key: refused, nothing written.
    let (code, err) = with_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &["secrets", "set", "token"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("does not open this vault"), "{err}");
    // Not base64 / wrong length: named, not echoed.
    let (code, err) = with_key("not-a-key!!", &["secrets", "list"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("ML_CONNECTOR_MASTER_KEY") && !err.contains("not-a-key!!"), "{err}");
    let (code, err) = with_key("c2hvcnQ=", &["secrets", "list"]);
    assert_eq!(code, Some(1));
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read(&vault).unwrap(), before, "the vault was rewritten");

    // A corrupt vault file is reported, not replaced.
    std::fs::write(&vault, "{ not json").unwrap();
    let (ok, out) = cli(d, &["secrets", "set", "token"], Some("value-2"));
    assert!(!ok && !out.contains("panicked"), "{out}");
    assert_eq!(std::fs::read_to_string(&vault).unwrap(), "{ not json");
}
