//! The OAuth 2 authorization-code flow and metadata.

use serde_json::{Value, json};

use crate::common::Env;

#[tokio::test]
async fn authorization_code_flow_issues_tokens_that_work_on_the_api() {
    let env = Env::new().await;
    let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let authorize = format!(
        "{}/oauth2/authorize?response_type=code&client_id=sandbox-client&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&state=xyz",
        env.base
    );
    let page = client.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("auto=1"));
    let bad = client.get(authorize.replace("sandbox-client", "other")).send().await.unwrap();
    assert_eq!(bad.status(), 400);

    let redirect = client.get(format!("{authorize}&auto=1")).send().await.unwrap();
    assert_eq!(redirect.status(), 302);
    let location = reqwest::Url::parse(redirect.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/cb");
    let params: std::collections::HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "xyz");
    let code = params["code"].clone();

    let token = |code: &str, secret: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", "sandbox-client"),
            ("client_secret", secret),
            ("redirect_uri", "http://localhost/cb"),
            ("code", code),
        ];
        client.post(format!("{}/oauth2/token", env.base)).form(&form).send()
    };
    let wrong_secret = token(&code, "nope").await.unwrap();
    assert_eq!(wrong_secret.status(), 400);
    assert_eq!(wrong_secret.json::<Value>().await.unwrap()["error"], "invalid_client");
    let granted: Value = token(&code, "sandbox-secret").await.unwrap().json().await.unwrap();
    assert_eq!((granted["expires_in"].clone(), granted["scope"].clone()), (json!(0), Value::Null));
    let access_token = granted["access_token"].as_str().unwrap().to_string();
    let reused = token(&code, "sandbox-secret").await.unwrap();
    assert_eq!(
        (reused.status().as_u16(), reused.json::<Value>().await.unwrap()["error"].clone()),
        (400, json!("invalid_grant"))
    );

    let metadata =
        |auth: String| client.get(format!("{}/oauth2/metadata", env.base)).header("Authorization", auth).send();
    let meta: Value = metadata(format!("OAuth {access_token}")).await.unwrap().json().await.unwrap();
    assert_eq!((meta["dc"].as_str(), meta["api_endpoint"].as_str()), (Some("us6"), Some(env.base.as_str())));
    assert_eq!(meta["login"]["login_id"], meta["user_id"]);
    let bearer = metadata(format!("Bearer {access_token}")).await.unwrap();
    assert_eq!(bearer.status(), 200);
    let invalid = metadata("OAuth not-a-token".into()).await.unwrap();
    assert_eq!(invalid.status(), 200);
    assert_eq!(invalid.json::<Value>().await.unwrap()["error"], "invalid_token");

    let ping = client.get(env.url("/ping")).bearer_auth(&access_token).send().await.unwrap();
    assert_eq!(ping.status(), 200);
}
