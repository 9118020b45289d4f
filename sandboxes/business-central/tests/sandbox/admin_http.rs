//! The HTTP admin API and the command-line entry point.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Env, client, fetch_token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes() {
    let env = Env::new().await;
    let base = format!("{}/_sandbox", env.sandbox.base_url());
    let http = client();
    let get = |path: &str| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let send = |method: reqwest::Method, path: &str, body: Value| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            let r = http.request(method, url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;
    let (s, companies) = get("/companies").await;
    assert_eq!(s, 200);
    assert_eq!(companies[0]["name"], "CRONUS USA, Inc.");
    let company = "CRONUS%20USA%2C%20Inc.";
    let (s, customer) = send(
        Method::POST,
        &format!("/companies/{company}/customers"),
        json!({"displayName": "Adatum", "email": "a@example.com"}),
    )
    .await;
    assert_eq!(s, 200, "{customer}");
    let id = customer["id"].as_str().unwrap();
    let (s, bad) =
        send(Method::POST, &format!("/companies/{company}/customers"), json!({"displayName": "x", "email": "nope"}))
            .await;
    assert_eq!(s, 400);
    assert_eq!(bad["error"]["code"], "Application_DialogException");
    let (s, updated) =
        send(Method::PATCH, &format!("/companies/{company}/customers/{id}"), json!({"city": "Oslo"})).await;
    assert_eq!(s, 200);
    assert_eq!(updated["city"], "Oslo");
    assert_eq!(get(&format!("/companies/{company}/customers")).await.1.as_array().unwrap().len(), 1);
    let (_, consent) =
        send(Method::PATCH, &format!("/companies/{company}/customers/{id}/consent"), json!({"bounced": true})).await;
    assert_eq!(consent["bounced"], true);
    assert_eq!(get(&format!("/companies/{company}/customers/{id}/consent")).await.1["bounced"], true);
    let (s, item) =
        send(Method::POST, &format!("/companies/{company}/items"), json!({"displayName": "Chair", "unitPrice": 3}))
            .await;
    assert_eq!(s, 200);
    let (_, item) = send(
        Method::PATCH,
        &format!("/companies/{company}/items/{}", item["id"].as_str().unwrap()),
        json!({"unitPrice": 4}),
    )
    .await;
    assert_eq!(item["unitPrice"], 4);
    let (s, invoice) = send(
        Method::POST,
        &format!("/companies/{company}/salesInvoices"),
        json!({"customerId": id, "lines": [{"itemId": item["id"], "quantity": 2}]}),
    )
    .await;
    assert_eq!(s, 200, "{invoice}");
    assert_eq!(invoice["totalAmountExcludingTax"], 8);
    let invoice_id = invoice["id"].as_str().unwrap();
    let (s, posted) =
        send(Method::POST, &format!("/companies/{company}/salesInvoices/{invoice_id}/post"), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(posted["status"], "Open");
    assert_eq!(get(&format!("/companies/{company}/salesInvoices/{invoice_id}")).await.1["number"], posted["number"]);
    let (_, before) = get("/clock").await;
    let (s, after) = send(Method::POST, "/clock/advance", json!({"seconds": 3600})).await;
    assert_eq!(s, 200);
    assert!(after["now"].as_str().unwrap() > before["now"].as_str().unwrap());
    let (s, _) = send(Method::PUT, "/clock/override", json!({"timestamp": "2024-01-01T00:00:00Z"})).await;
    assert_eq!(s, 200);
    let (_, c) = send(Method::PATCH, &format!("/companies/{company}/customers/{id}"), json!({"city": "Bergen"})).await;
    assert_eq!(c["lastModifiedDateTime"], "2024-01-01T00:00:00.000Z");
    send(Method::PUT, "/clock/override", json!({"timestamp": null})).await;
    let (s, _) = send(Method::PUT, "/faults", json!({"rate_429": 1.0})).await;
    assert_eq!(s, 200);
    let token = fetch_token(&env.client, &env.sandbox.token_url()).await;
    let r = http.get(format!("{}/companies", env.api)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 429);
    send(Method::PUT, "/faults", json!({})).await;
    let (_, log) = get("/requests").await;
    assert!(log.as_array().unwrap().iter().any(|e| e["status"] == 429));
    assert!(log.as_array().unwrap().iter().all(|e| !e["path"].as_str().unwrap().starts_with("/_sandbox")));
    let r = http.delete(format!("{base}/requests")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(get("/requests").await.1.as_array().unwrap().is_empty());
    assert_eq!(get("/subscriptions").await.1, json!([]));
    assert_eq!(get("/notifications").await.1, json!([]));
    assert_eq!(get("/stats").await.1["peak_concurrency"], 1);
    let r = http.delete(format!("{base}/subscriptions/nope")).send().await.unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_prints_one_line_and_loads_the_seed() {
    let dir = tempfile_dir();
    let seed = dir.join("seed.json");
    std::fs::write(
        &seed,
        json!({
            "customers": [{"displayName": "Seeded", "number": "10000", "email": "s@example.com"}],
            "items": [{"displayName": "Bike", "number": "1000", "unitPrice": 100}],
            "invoices": [{"customerNumber": "10000", "lines": [{"lineObjectNumber": "1000", "quantity": 1}], "post": true}],
            "companies": {"My Company": {"customers": [{"displayName": "Other"}]}}
        })
        .to_string(),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_business-central-sandbox"))
        .args(["--port", "0", "--seed"])
        .arg(&seed)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let line = line.trim_end();
    let rest = line
        .strip_prefix("business-central sandbox listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("{line}"));
    let (port, tail) = rest.split_once(' ').unwrap();
    assert_eq!(
        tail,
        "(tenant 00000000-0000-0000-0000-000000000001, environment production, client id bc-client, client secret bc-secret)"
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = client();
    let token = fetch_token(&http, &format!("{base}/00000000-0000-0000-0000-000000000001/oauth2/v2.0/token")).await;
    let api = format!("{base}/v2.0/production/api/v2.0");
    let companies: Value =
        http.get(format!("{api}/companies")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(companies["value"].as_array().unwrap().len(), 2);
    let cronus = companies["value"].as_array().unwrap().iter().find(|c| c["name"] == "CRONUS USA, Inc.").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let invoices: Value = http
        .get(format!("{api}/companies({cronus})/salesInvoices"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(invoices["value"][0]["status"], "Open");
    assert_eq!(invoices["value"][0]["customerNumber"], "10000");
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bc-sandbox-cli-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
