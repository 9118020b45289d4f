//! The Entra token endpoint and bearer validation.

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Env, client, fetch_token};

async fn token_request(env: &Env, form: &[(&str, &str)]) -> (u16, Value) {
    let r = env.client.post(env.sandbox.token_url()).form(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

const SCOPE: &str = "https://api.businesscentral.dynamics.com/.default";

fn assert_entra(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(&format!("AADSTS{code}: ")), "{description}");
    assert!(
        description.contains("\r\nTrace ID: ")
            && description.contains("\r\nCorrelation ID: ")
            && description.contains("\r\nTimestamp: ")
    );
    let ts = body["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), "2016-01-09 02:02:12Z".len(), "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b' ');
    assert_eq!(body["trace_id"].as_str().unwrap().len(), 36);
    assert_eq!(body["correlation_id"].as_str().unwrap().len(), 36);
    assert_eq!(body["error_uri"], format!("https://login.microsoftonline.com/error?code={code}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_success_has_entra_shape() {
    let env = Env::new().await;
    let (status, body) = token_request(
        &env,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "bc-client"),
            ("client_secret", "bc-secret"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "JWT-shaped");
    assert!(body.get("refresh_token").is_none());
    // Client secret through HTTP Basic (RFC 6749 §2.3.1).
    let r = env
        .client
        .post(env.sandbox.token_url())
        .basic_auth("bc-client", Some("bc-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_errors_follow_entra() {
    let env = Env::new().await;
    let good = [
        ("grant_type", "client_credentials"),
        ("client_id", "bc-client"),
        ("client_secret", "bc-secret"),
        ("scope", SCOPE),
    ];
    let with = |name: &str, value: &'static str| -> Vec<(String, String)> {
        good.iter().map(|(k, v)| (k.to_string(), if *k == name { value.to_string() } else { v.to_string() })).collect()
    };
    let send = |form: Vec<(String, String)>| {
        let env = &env;
        async move {
            let r = env.client.post(env.sandbox.token_url()).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = send(with("client_secret", "wrong")).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 7000215);
    let (s, b) = send(with("client_id", "someone-else")).await;
    assert_eq!(s, 400);
    assert_entra(&b, "unauthorized_client", 700016);
    let (s, b) = send(with("grant_type", "password")).await;
    assert_eq!(s, 400);
    assert_entra(&b, "unsupported_grant_type", 70003);
    let (s, b) = send(with("scope", "https://api.businesscentral.dynamics.com/user_impersonation")).await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_scope", 1002012);
    let (s, b) =
        send(with("scope", "https://graph.microsoft.com/.default https://api.businesscentral.dynamics.com/.default"))
            .await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_scope", 70011);
    let (s, b) = send(with("scope", "https://example.com/.default")).await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_resource", 500011);
    let (s, b) =
        send(good.iter().filter(|(k, _)| *k != "scope").map(|(k, v)| (k.to_string(), v.to_string())).collect()).await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_request", 900144);
    assert!(b["error_description"].as_str().unwrap().contains("'scope'"));
    let (s, b) =
        send(good.iter().filter(|(k, _)| *k != "client_secret").map(|(k, v)| (k.to_string(), v.to_string())).collect())
            .await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 7000218);
    // Unknown tenant.
    let url =
        env.sandbox.token_url().replace("00000000-0000-0000-0000-000000000001", "11111111-2222-3333-4444-555555555555");
    let r = env.client.post(url).form(&good).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_entra(&r.json().await.unwrap(), "invalid_request", 90002);
}

fn assertion(claims: Value) -> String {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.c2lnbmF0dXJl", b64(json!({"alg": "PS256", "typ": "JWT", "x5t#S256": "abc"})), b64(claims))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_assertions_are_checked() {
    let env = Env::new().await;
    let now = env.admin.now().as_second();
    let aud = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/oauth2/v2.0/token";
    let claims = |iss: &str, aud: &str, exp: i64| json!({"aud": aud, "iss": iss, "sub": iss, "jti": "1", "nbf": now - 10, "iat": now - 10, "exp": exp});
    let send = |jwt: String| {
        let env = &env;
        async move {
            let form = [
                ("grant_type", "client_credentials".to_string()),
                ("client_id", "bc-client".to_string()),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string()),
                ("client_assertion", jwt),
                ("scope", SCOPE.to_string()),
            ];
            let r = env.client.post(env.sandbox.token_url()).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = send(assertion(claims("bc-client", aud, now + 300))).await;
    assert_eq!(s, 200, "{b}");
    let own_aud = env.sandbox.token_url();
    assert_eq!(send(assertion(claims("bc-client", &own_aud, now + 300))).await.0, 200);
    let (s, b) = send(assertion(claims("bc-client", "https://example.com", now + 300))).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 50027);
    let (s, b) = send(assertion(claims("bc-client", aud, now - 1))).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700024);
    let (s, b) = send(assertion(claims("other", aud, now + 300))).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700021);
    let (s, b) = send("not-a-jwt".into()).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 50027);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_required_and_expire() {
    let env = Env::new().await;
    let companies = format!("{}/companies", env.api);
    // Missing token.
    let r = client().get(&companies).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer authorization_uri="));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Authentication_InvalidCredentials");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("The server has rejected the client credentials.  CorrelationId:  "), "{message}");
    // Garbage token.
    let r = client().get(&companies).bearer_auth("eyJ.garbage.x").send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Valid token works, also without the tenant segment and with another case of the environment.
    assert_eq!(env.get("/companies").await.status, 200);
    let base = env.sandbox.base_url();
    assert_eq!(
        env.send(Method::GET, &format!("{base}/v2.0/production/api/v2.0/companies"), None, &[]).await.status,
        200
    );
    assert_eq!(
        env.send(Method::GET, &format!("{base}/v2.0/PRODUCTION/api/v2.0/companies"), None, &[]).await.status,
        200
    );
    // Unknown environment, unknown tenant in the URL.
    assert_eq!(env.send(Method::GET, &format!("{base}/v2.0/sandbox2/api/v2.0/companies"), None, &[]).await.status, 404);
    let other = format!("{base}/v2.0/11111111-2222-3333-4444-555555555555/production/api/v2.0/companies");
    assert_eq!(env.send(Method::GET, &other, None, &[]).await.status, 401);
    // The token expires on the virtual clock.
    env.admin.advance_clock(Duration::from_secs(3598));
    assert_eq!(env.get("/companies").await.status, 200);
    env.admin.advance_clock(Duration::from_secs(2));
    let r = env.get("/companies").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "Authentication_InvalidCredentials");
    let fresh = fetch_token(&env.client, &env.sandbox.token_url()).await;
    let r = client().get(&companies).bearer_auth(fresh).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Auth failures are in the request log; token calls are not.
    let log = env.admin.requests();
    assert!(log.iter().any(|e| e.status == 401));
    assert!(log.iter().all(|e| !e.path.contains("oauth2")));
}
