//! The `mailchimp-sandbox` binary (`run_cli`) and shutting down.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use sandbox_mailchimp::{DEFAULT_API_KEY, Sandbox, SandboxConfig};
use serde_json::Value;

#[tokio::test]
async fn the_binary_prints_one_line_and_serves_the_seeded_lists() {
    let seed = std::env::temp_dir().join(format!("mailchimp-sandbox-seed-{}.json", std::process::id()));
    std::fs::write(&seed, r#"{"lists": [{"id": "abc1234567", "name": "Seeded"}]}"#).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailchimp-sandbox"))
        .args(["--port", "0", "--seed"])
        .arg(&seed)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let rest = line.trim_end().strip_prefix("mailchimp sandbox listening on ").expect(&line);
    let (base, key) = rest.split_once(" (api key: ").unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    assert_eq!(key, format!("{DEFAULT_API_KEY})"));

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response =
        client.get(format!("{base}/3.0/lists/abc1234567")).bearer_auth(DEFAULT_API_KEY).send().await.unwrap();
    let status = response.status();
    let list: Value = response.json().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&seed);
    assert_eq!((status.as_u16(), list["name"].as_str()), (200, Some("Seeded")));
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sandbox = Sandbox::start(SandboxConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let ping = format!("{}/3.0/ping", sandbox.base_url());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    assert_eq!(client.get(&ping).bearer_auth(DEFAULT_API_KEY).send().await.unwrap().status(), 200);
    sandbox.shutdown().await;
    assert!(client.get(&ping).bearer_auth(DEFAULT_API_KEY).send().await.is_err());
}
