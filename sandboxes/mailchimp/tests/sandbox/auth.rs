//! Authentication, problem documents, routing errors.

use axum::http::Method;
use base64::Engine as _;
use sandbox_mailchimp::{DEFAULT_API_KEY, SandboxConfig};
use serde_json::{Value, json};

use crate::common::Env;

async fn problem(response: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

#[tokio::test]
async fn missing_key_is_a_401_problem_document_with_mailchimp_headers() {
    let env = Env::new().await;
    let (status, headers, body) = problem(env.client.get(env.url("/lists")).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(headers["content-type"], "application/problem+json; charset=utf-8");
    let request_id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(request_id.len(), 36);
    assert_eq!(
        headers["link"],
        "<https://us6.api.mailchimp.com/schema/3.0/ProblemDetailDocument.json>; rel=\"describedBy\""
    );
    assert_eq!(
        body,
        json!({"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": "API Key Missing",
               "status": 401, "detail": "Your request did not include an API key.", "instance": request_id})
    );
}

#[tokio::test]
async fn unknown_key_is_401_and_other_datacenter_is_403() {
    let env = Env::new().await;
    let send = |key: &'static str| env.client.get(env.url("/ping")).bearer_auth(key).send();
    let (status, _, body) = problem(send("ffffffffffffffffffffffffffffffff-us6").await.unwrap()).await;
    assert_eq!((status, body["title"].as_str()), (401, Some("API Key Invalid")));
    assert_eq!(body["detail"], "Your API key may be invalid, or you've attempted to access the wrong datacenter.");
    let (status, _, body) = problem(send("0123456789abcdef0123456789abcdef-us2").await.unwrap()).await;
    assert_eq!((status, body["title"].as_str()), (403, Some("Wrong Datacenter")));
    assert_eq!(body["detail"], "The API key provided is linked to a different data center.");
}

#[tokio::test]
async fn basic_bearer_and_legacy_schemes_are_accepted() {
    let env = Env::new().await;
    let ping = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json::<Value>().await.unwrap())
    };
    let url = env.url("/ping");
    let (status, body) = ping(env.client.get(&url).basic_auth("anystring", Some(DEFAULT_API_KEY))).await;
    assert_eq!((status, body), (200, json!({"health_status": "Everything's Chimpy!"})));
    assert_eq!(ping(env.client.get(&url).bearer_auth(DEFAULT_API_KEY)).await.0, 200);
    for scheme in ["apikey", "OAuth"] {
        let header = format!("{scheme} {DEFAULT_API_KEY}");
        assert_eq!(ping(env.client.get(&url).header("Authorization", header)).await.0, 200, "{scheme}");
    }
    let wrong = base64::engine::general_purpose::STANDARD.encode("user:nope-us6");
    let (status, _) = ping(env.client.get(&url).header("Authorization", format!("Basic {wrong}"))).await;
    assert_eq!(status, 401);

    // Several keys of the same account.
    let config = SandboxConfig { api_keys: vec!["k1-us6".into(), "k2-us6".into()], ..SandboxConfig::default() };
    let other = Env::with(config).await;
    for key in ["k1-us6", "k2-us6"] {
        assert_eq!(ping(other.client.get(other.url("/")).bearer_auth(key)).await.0, 200);
    }
}

#[tokio::test]
async fn root_returns_the_account() {
    let env = Env::new().await;
    let (status, body) = env.get("/").await;
    assert_eq!(status, 200);
    for field in ["account_id", "login_id", "account_name", "email", "total_subscribers"] {
        assert!(body.get(field).is_some(), "{field}");
    }
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_bad_json() {
    let env = Env::new().await;
    let (status, body) = env.get("/nope/at/all").await;
    assert_eq!((status, body["title"].as_str()), (404, Some("Resource Not Found")));
    assert_eq!(body["detail"], "The requested resource could not be found.");

    let response = env.request(Method::PUT, "/lists").send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["title"], "Method Not Allowed");

    let response = env
        .request(Method::POST, &format!("/lists/{}/members", env.list))
        .header("Content-Type", "application/json")
        .body("{\"email_address\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["title"], "JSON Parse Error");
    assert_eq!(body["detail"], "We encountered an unspecified JSON parsing error.");

    let response = env.request(Method::GET, "/ping").header("X-HTTP-Method-Override", "DELETE").send().await.unwrap();
    assert_eq!(response.status(), 422);
    let (status, _) = env.get(&format!("/lists/{}/members/{}", "0000000000", "abc")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn lists_are_paged_and_created_with_required_settings() {
    let env = Env::new().await;
    let (status, body) = env.get("/lists").await;
    assert_eq!((status, body["total_items"].as_u64()), (200, Some(1)));
    assert_eq!(body["lists"][0]["id"], env.list.as_str());
    assert_eq!(body["lists"][0]["stats"]["member_count"], 0);

    let (status, body) = env.post("/lists", json!({"name": "New"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0]["message"],
        "Required fields were not provided: contact, permission_reminder, campaign_defaults, email_type_option"
    );
    let list = json!({
        "name": "New", "permission_reminder": "You signed up.", "email_type_option": false,
        "contact": {"company": "C", "address1": "A", "city": "X", "state": "S", "zip": "1", "country": "US"},
        "campaign_defaults": {"from_name": "F", "from_email": "f@example.com", "subject": "", "language": "en"},
    });
    let (status, created) = env.post("/lists", list).await;
    assert_eq!(status, 200);
    assert_eq!(created["id"].as_str().unwrap().len(), 10);
    let (_, page) = env.get("/lists?count=1&offset=1").await;
    assert_eq!((page["total_items"].as_u64(), page["lists"][0]["name"].as_str()), (Some(2), Some("New")));
    let (status, _) = env.delete(&format!("/lists/{}", created["id"].as_str().unwrap())).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn admin_http_api_drives_the_sandbox_from_another_process() {
    let env = Env::new().await;
    let admin = |path: &str| format!("{}/_sandbox{path}", env.base);
    let created: Value =
        env.client.post(admin("/lists")).json(&json!({"name": "Other"})).send().await.unwrap().json().await.unwrap();
    let list = created["id"].as_str().unwrap().to_string();
    let path = format!("/lists/{list}/members/{}", crate::common::hash("p@example.com"));
    env.put(&path, json!({"email_address": "p@example.com", "status_if_new": "subscribed"})).await;

    let unsubscribe = env.client.post(admin(&format!("/lists/{list}/members/p@example.com/unsubscribe"))).send();
    assert_eq!(unsubscribe.await.unwrap().status(), 204);
    let (_, member) = env.get(&path).await;
    assert_eq!(member["status"], "unsubscribed");
    let missing = env.client.post(admin(&format!("/lists/{list}/members/nobody@example.com/bounce"))).send();
    assert_eq!(missing.await.unwrap().status(), 404);
    let profile = env
        .client
        .post(admin(&format!("/lists/{list}/members/p@example.com/profile")))
        .json(&json!({"merges": {"FNAME": "Pat"}}))
        .send();
    assert_eq!(profile.await.unwrap().status(), 204);
    assert_eq!(env.admin.member(&list, "p@example.com").unwrap()["merge_fields"]["FNAME"], "Pat");

    let requests: Value = env.client.get(admin("/requests")).send().await.unwrap().json().await.unwrap();
    let paths: Vec<&str> = requests.as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, [format!("/3.0{path}"), format!("/3.0{path}")]);
    assert_eq!(requests[0]["body"]["email_address"], "p@example.com");
    assert_eq!(requests[0]["status"], 200);
    assert_eq!(env.client.delete(admin("/requests")).send().await.unwrap().status(), 204);
    assert!(env.admin.requests().is_empty());

    let counters: Value = env.client.get(admin("/counters")).send().await.unwrap().json().await.unwrap();
    assert_eq!((counters["total"].as_u64(), counters["status_2xx"].as_u64()), (Some(2), Some(2)));
    let faults = env.client.put(admin("/faults")).json(&json!({"rate_5xx": 1.0})).send();
    assert_eq!(faults.await.unwrap().status(), 204);
    assert_eq!(env.get("/ping").await.0, 500);
    assert_eq!(env.admin.counters().status_5xx, 1);
}
