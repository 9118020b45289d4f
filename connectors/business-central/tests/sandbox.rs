//! The Business Central connector against the sandbox, through the real HTTP client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::post;
use connector_business_central::{BcClient, BcSettings, BusinessCentralConnector, subscriptions};
use engine::config::{CursorKind, SecretRef};
use engine::connector::{
    ConnectContext, Connection, Connector, ReadRequest, RequestInput, SecretResolver, WriteOutcome,
};
use sandbox_business_central::{Faults, Sandbox, SandboxConfig};
use serde_json::{Map, Value, json};

struct Secrets(HashMap<String, String>);
impl SecretResolver for Secrets {
    fn resolve(&self, r: &SecretRef) -> Result<String, String> {
        match r {
            SecretRef::Secret(n) => self.0.get(n).cloned().ok_or_else(|| format!("vault secret `{n}` is not set")),
            SecretRef::Env(v) => Err(format!("environment variable `{v}` is not set")),
        }
    }
}

const TEST_KEY: &str = include_str!("test_key.pem");

fn secrets() -> Arc<Secrets> {
    Arc::new(Secrets(
        [
            ("bc".to_owned(), "bc-secret".to_owned()),
            ("key".to_owned(), TEST_KEY.to_owned()),
            ("wrong".to_owned(), "nope".to_owned()),
        ]
        .into(),
    ))
}

fn settings(sb: &Sandbox, extra: Value) -> Map<String, Value> {
    let mut s = json!({
        "tenant": SandboxConfig::default().tenant,
        "environment": "production",
        "company": "CRONUS USA, Inc.",
        "client_id": "bc-client",
        "credential": {"type": "secret", "secret": {"secret": "bc"}},
        "token_url": sb.token_url(),
        "base_url": sb.base_url(),
        "max_attempts": 4,
    });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s.as_object().unwrap().clone()
}

async fn start(config: SandboxConfig) -> Sandbox {
    Sandbox::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

async fn connect(sb: &Sandbox, extra: Value) -> Result<Arc<dyn Connection>, String> {
    let ctx = ConnectContext { project_dir: ".".into(), secrets: secrets() };
    BusinessCentralConnector.connect(&settings(sb, extra), &ctx).await.map_err(|e| e.to_string())
}

async fn client(sb: &Sandbox) -> BcClient {
    let s: BcSettings = serde_json::from_value(Value::Object(settings(sb, json!({})))).unwrap();
    BcClient::connect(&s, secrets().as_ref()).await.unwrap()
}

fn company(sb: &Sandbox) -> String {
    sb.admin().company_id("CRONUS USA, Inc.").unwrap()
}

async fn read_all(
    conn: &Arc<dyn Connection>,
    entity: &str,
    since: Option<Value>,
    page_size: u32,
    expand: Vec<String>,
) -> (Vec<Value>, usize) {
    let request = ReadRequest {
        entity: entity.into(),
        cursor_field: Some("lastModifiedDateTime".into()),
        cursor_kind: CursorKind::Timestamp,
        since,
        page_size,
        select: vec![],
        expand,
    };
    let mut pages = conn.read(&request).await.unwrap();
    let (mut all, mut n) = (Vec::new(), 0);
    while let Some(page) = pages.next_page().await.unwrap() {
        n += 1;
        all.extend(page);
    }
    (all, n)
}

#[tokio::test]
async fn check_reports_the_company_and_bad_settings_are_explained() {
    let sb = start(SandboxConfig::default()).await;
    let conn = connect(&sb, json!({})).await.unwrap();
    let what = conn.check().await.unwrap();
    assert!(what.contains("company `CRONUS USA, Inc.`"), "{what}");

    let by_id = connect(&sb, json!({"company": company(&sb)})).await.unwrap();
    assert!(by_id.check().await.is_ok());

    let err =
        connect(&sb, json!({"credential": {"type": "secret", "secret": {"secret": "wrong"}}})).await.err().unwrap();
    assert!(err.contains("client id or credential was refused") && err.contains("invalid_client"), "{err}");
    let err = connect(&sb, json!({"company": "No Such Company"})).await.err().unwrap();
    assert!(
        err.contains("company `No Such Company` is not in environment") && err.contains("CRONUS USA, Inc."),
        "{err}"
    );
}

#[tokio::test]
async fn a_certificate_credential_gets_a_token() {
    let sb = start(SandboxConfig::default()).await;
    let conn = connect(
        &sb,
        json!({"credential": {"type": "certificate", "private_key": {"secret": "key"}, "thumbprint_sha256": "dGVzdA"}}),
    )
    .await;
    assert!(conn.unwrap().check().await.is_ok());
}

#[tokio::test]
async fn reads_page_through_and_decode_enums_and_only_read_changes_incrementally() {
    let sb = start(SandboxConfig::default()).await;
    let cid = company(&sb);
    for i in 0..23 {
        sb.admin().create_customer(
            &cid,
            json!({"displayName": format!("Customer {i}"), "email": format!("c{i}@example.com")}),
        );
    }
    let conn = connect(&sb, json!({})).await.unwrap();
    let (all, pages) = read_all(&conn, "customers", None, 5, vec![]).await;
    let ours: Vec<&Value> =
        all.iter().filter(|c| c["email"].as_str().is_some_and(|e| e.ends_with("@example.com"))).collect();
    assert_eq!(ours.len(), 23);
    assert!(pages >= 5, "server-driven paging: {pages} pages");
    assert!(all.iter().all(|c| c["blocked"] != "_x0020_"), "enum values are decoded");

    let highest = all.iter().filter_map(|c| c["lastModifiedDateTime"].as_str()).max().unwrap().to_owned();
    sb.admin().advance_clock(Duration::from_secs(60));
    let changed = ours[7]["id"].as_str().unwrap().to_owned();
    sb.admin().update_customer(&cid, &changed, json!({"displayName": "Renamed"}));
    let (delta, _) = read_all(&conn, "customers", Some(json!(highest)), 5, vec![]).await;
    assert_eq!(delta.len(), 1, "{delta:?}");
    assert_eq!(delta[0]["displayName"], "Renamed");
}

#[tokio::test]
async fn an_incremental_read_never_misses_a_change_made_during_the_previous_read() {
    let sb = start(SandboxConfig::default()).await;
    let cid = company(&sb);
    // Many customers with the same timestamp, so page boundaries fall inside equal values.
    let frozen = sb.admin().now();
    sb.admin().set_timestamp_override(Some(frozen));
    let ids: Vec<String> = (0..30)
        .map(|i| {
            sb.admin().create_customer(
                    &cid,
                    json!({"displayName": format!("C{i}"), "email": format!("e{i}@example.com")}),
                )["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
        })
        .collect();
    sb.admin().set_timestamp_override(None);
    let conn = connect(&sb, json!({})).await.unwrap();

    // Read page by page; between pages, change records already read and records not yet read.
    let request = ReadRequest {
        entity: "customers".into(),
        cursor_field: Some("lastModifiedDateTime".into()),
        cursor_kind: CursorKind::Timestamp,
        since: None,
        page_size: 7,
        select: vec![],
        expand: vec![],
    };
    let mut pages = conn.read(&request).await.unwrap();
    let mut seen: Vec<Value> = Vec::new();
    let mut changed = Vec::new();
    let mut n = 0;
    while let Some(page) = pages.next_page().await.unwrap() {
        seen.extend(page);
        n += 1;
        if n <= 3 {
            // Equal timestamps for the changes, too.
            sb.admin().set_timestamp_override(Some(sb.admin().now()));
            for id in [&ids[n * 3], &ids[29 - n]] {
                sb.admin().update_customer(&cid, id, json!({"displayName": format!("changed in pass {n}")}));
                changed.push(id.clone());
            }
            sb.admin().set_timestamp_override(None);
        }
    }
    let watermark = seen.iter().filter_map(|c| c["lastModifiedDateTime"].as_str()).max().unwrap().to_owned();
    // The next run reads from the watermark minus a lookback, as the engine does.
    let since =
        engine::cursor::read_from(CursorKind::Timestamp, &json!(watermark), engine::config::Duration::from_secs(1));
    let (next, _) = read_all(&conn, "customers", Some(since), 7, vec![]).await;
    for id in &changed {
        let latest_seen = seen
            .iter()
            .chain(next.iter())
            .filter(|c| c["id"] == id.as_str())
            .any(|c| c["displayName"].as_str().unwrap_or("").starts_with("changed"));
        assert!(latest_seen, "the change to {id} was missed by both reads");
    }
    let mut all_ids: Vec<&str> = seen.iter().map(|c| c["id"].as_str().unwrap()).collect();
    all_ids.sort();
    all_ids.dedup();
    assert!(ids.iter().all(|id| all_ids.contains(&id.as_str())), "every record was read at least once");
}

#[tokio::test]
async fn invoices_expand_their_lines_and_posting_keeps_the_id() {
    let sb = start(SandboxConfig::default()).await;
    let cid = company(&sb);
    let customer = sb.admin().create_customer(&cid, json!({"displayName": "Ada", "email": "ada@example.com"}));
    let item = sb.admin().create_item(&cid, json!({"displayName": "Widget", "unitPrice": 10.0}));
    let inv = sb.admin().create_sales_invoice(
        &cid,
        json!({"customerId": customer["id"]}),
        vec![json!({"lineType": "Item", "itemId": item["id"], "quantity": 2})],
    );
    let draft_number = inv["number"].as_str().unwrap().to_owned();
    let posted = sb.admin().post_sales_invoice(&cid, inv["id"].as_str().unwrap());
    assert_eq!(posted["id"], inv["id"]);
    assert_ne!(posted["number"].as_str().unwrap(), draft_number);

    let conn = connect(&sb, json!({})).await.unwrap();
    let (invoices, _) = read_all(&conn, "salesInvoices", None, 50, vec!["salesInvoiceLines".into()]).await;
    let read = invoices.iter().find(|i| i["id"] == inv["id"]).unwrap();
    assert_eq!(read["status"], "Open");
    assert_eq!(read["salesInvoiceLines"][0]["lineType"], "Item");
    assert_eq!(read["number"], posted["number"]);
}

fn request(resource: &str, params: Value, body: Value) -> engine::connector::TargetRequest {
    BusinessCentralConnector
        .build_request(resource, &RequestInput { key: "k", params: params.as_object().unwrap(), body: &body })
        .unwrap()
}

#[tokio::test]
async fn consent_writes_find_the_customer_and_patch_with_if_match() {
    let sb = start(SandboxConfig::default()).await;
    let cid = company(&sb);
    let c = sb.admin().create_customer(&cid, json!({"displayName": "Ada", "email": "ada@example.com"}));
    let conn = connect(&sb, json!({})).await.unwrap();

    let outcome = conn
        .write(&request(
            "customer",
            json!({"match_value": "ada@example.com"}),
            json!({"email": "ada.king@example.com"}),
        ))
        .await;
    assert!(matches!(outcome, WriteOutcome::Written { .. }), "{outcome:?}");
    assert_eq!(sb.admin().customer(&cid, c["id"].as_str().unwrap()).unwrap()["email"], "ada.king@example.com");
    let patch = sb.admin().requests().into_iter().find(|r| r.method == "PATCH").expect("a PATCH was sent");
    assert!(patch.path.contains(&format!("customers({})", c["id"].as_str().unwrap())));

    let missing = conn
        .write(&request("customer", json!({"match_value": "nobody@example.com"}), json!({"email": "x@example.com"})))
        .await;
    assert!(
        matches!(&missing, WriteOutcome::Failed { transient: false, class, .. } if class == "not_found"),
        "{missing:?}"
    );

    // The custom consent API: created when missing, then updated.
    let consent = |v: bool| {
        request(
            "record",
            json!({"entity": "contoso/marketing/v1.0/customerConsents", "match_field": "customerId", "match_value": c["id"], "create_if_missing": true}),
            json!({"marketingConsent": v}),
        )
    };
    let first = conn.write(&consent(true)).await;
    assert!(matches!(first, WriteOutcome::Written { .. }), "{first:?}");
    let second = conn.write(&consent(false)).await;
    assert!(matches!(second, WriteOutcome::Written { .. }), "{second:?}");
    assert_eq!(sb.admin().consent(&cid, c["id"].as_str().unwrap()).unwrap()["marketingConsent"], false);
}

#[tokio::test]
async fn a_stale_etag_is_a_409_and_writes_reread() {
    let sb = start(SandboxConfig::default()).await;
    let cid = company(&sb);
    let c = sb.admin().create_customer(&cid, json!({"displayName": "Ada", "email": "ada@example.com"}));
    let bc = client(&sb).await;
    let url = format!("{}({})", bc.entity_url("v2.0", "customers"), c["id"].as_str().unwrap());
    let etag = bc.get(&url, None).await.unwrap()["@odata.etag"].as_str().unwrap().to_owned();
    sb.admin().update_customer(&cid, c["id"].as_str().unwrap(), json!({"displayName": "Changed meanwhile"}));
    let err = bc
        .send(reqwest::Method::PATCH, &url, &[("If-Match", etag)], Some(&json!({"phoneNumber": "1"})))
        .await
        .err()
        .unwrap();
    assert!(err.stale_etag(), "{err}");
    let err = bc.send(reqwest::Method::PATCH, &url, &[], Some(&json!({"phoneNumber": "1"}))).await.err().unwrap();
    assert_eq!(err.status, Some(400), "a PATCH without If-Match is refused: {err}");

    let conn = connect(&sb, json!({})).await.unwrap();
    let outcome = conn
        .write(&request("customer", json!({"match_value": "ada@example.com"}), json!({"phoneNumber": "555"})))
        .await;
    assert!(matches!(outcome, WriteOutcome::Written { .. }), "{outcome:?}");
}

#[tokio::test]
async fn throttling_and_outages_are_retried() {
    let sb = start(SandboxConfig::default()).await;
    let cid = company(&sb);
    for i in 0..10 {
        sb.admin().create_customer(&cid, json!({"displayName": format!("C{i}"), "email": format!("t{i}@example.com")}));
    }
    let conn = connect(&sb, json!({"max_attempts": 8})).await.unwrap();
    sb.admin().set_faults(Faults { rate_429: 0.3, rate_5xx: 0.2, seed: 11, ..Faults::default() });
    let (all, _) = read_all(&conn, "customers", None, 2, vec![]).await;
    assert!(all.len() >= 10);
    let statuses: Vec<u16> = sb.admin().requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
}

type Notes = Arc<Mutex<Vec<Value>>>;

async fn receiver() -> (String, Notes) {
    let notes: Notes = Arc::default();
    async fn hook(State(n): State<Notes>, Query(q): Query<HashMap<String, String>>, body: String) -> String {
        if let Some(token) = q.get("validationToken") {
            return token.clone();
        }
        if let Ok(v) = serde_json::from_str::<Value>(&body) {
            n.lock().unwrap().push(v);
        }
        String::new()
    }
    let app = Router::new().route("/bc", post(hook).get(hook)).with_state(notes.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/bc", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, notes)
}

#[tokio::test]
async fn subscriptions_live_through_ten_days_of_renewals_and_a_deletion() {
    let sb = start(SandboxConfig { notification_delay: Duration::from_millis(100), ..SandboxConfig::default() }).await;
    let bc = client(&sb).await;
    let (url, notes) = receiver().await;
    let resources = vec![
        subscriptions::resource_for(&bc, "v2.0", "customers"),
        subscriptions::resource_for(&bc, "v2.0", "salesInvoices"),
    ];
    let renew_within = jiff::SignedDuration::from_hours(36);
    let mut created = 0;
    let mut renewed = 0;
    for day in 0..10 {
        if day == 4 {
            // Business Central (or an admin) drops one: the next pass recreates it.
            let id = sb.admin().subscriptions()[0]["subscriptionId"].as_str().unwrap().to_owned();
            sb.admin().delete_subscription(&id);
        }
        let report = subscriptions::ensure(&bc, "v2.0", &resources, &url, "state-123", sb.admin().now(), renew_within)
            .await
            .unwrap();
        created += report.created.len();
        renewed += report.renewed.len();
        // Every subscription now outlives the next day.
        for s in sb.admin().subscriptions() {
            let expires: jiff::Timestamp = s["expirationDateTime"].as_str().unwrap().parse().unwrap();
            assert!(expires.duration_since(sb.admin().now()) > jiff::SignedDuration::from_hours(24), "day {day}: {s}");
        }
        sb.admin().advance_clock(Duration::from_secs(24 * 3600));
    }
    assert_eq!(created, 3, "two at the start, one after the deletion");
    assert!(renewed >= 6, "renewed {renewed} times");
    assert_eq!(sb.admin().subscriptions().len(), 2);

    // Right after a pass, another keeps both; a rotated client state renews both at once (the
    // receiver would otherwise ignore every notification until the next renewal).
    subscriptions::ensure(&bc, "v2.0", &resources, &url, "state-123", sb.admin().now(), renew_within).await.unwrap();
    let report = subscriptions::ensure(&bc, "v2.0", &resources, &url, "state-123", sb.admin().now(), renew_within)
        .await
        .unwrap();
    assert_eq!((report.kept.len(), report.renewed.len()), (2, 0), "{report:?}");
    let report = subscriptions::ensure(&bc, "v2.0", &resources, &url, "state-456", sb.admin().now(), renew_within)
        .await
        .unwrap();
    assert_eq!((report.kept.len(), report.renewed.len(), report.created.len()), (0, 2, 0), "{report:?}");
    assert!(
        sb.admin().subscriptions().iter().all(|s| s["clientState"] == "state-456"),
        "{:?}",
        sb.admin().subscriptions()
    );

    // And they still deliver.
    let cid = company(&sb);
    sb.admin().create_customer(&cid, json!({"displayName": "Late", "email": "late@example.com"}));
    for _ in 0..50 {
        if !notes.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = notes.lock().unwrap();
    assert!(!n.is_empty(), "a notification arrived");
    assert_eq!(n[0]["value"][0]["clientState"], "state-456", "notifications carry the rotated state");
}
