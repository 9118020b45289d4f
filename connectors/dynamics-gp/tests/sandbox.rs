//! The GP connector against the GP sandbox, over real NTLM on real sockets.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use connector_dynamics_gp::{DynamicsGpConnector, GpConnection, GpSettings};
use engine::config::{CursorKind, SecretRef};
use engine::connector::{ConnectContext, Connection, Connector, ReadRequest, RequestInput, SecretResolver};
use sandbox_dynamics_gp::{DEFAULT_PASSWORD, Faults, Sandbox, SandboxConfig};
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

fn context() -> ConnectContext {
    ConnectContext {
        project_dir: ".".into(),
        secrets: Arc::new(Secrets(
            [("gp".to_owned(), DEFAULT_PASSWORD.to_owned()), ("wrong".to_owned(), "Passw0rd?".to_owned())].into(),
        )),
    }
}

async fn start(config: SandboxConfig) -> Sandbox {
    Sandbox::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// SOAP settings for the sandbox, with `extra` merged over them.
fn settings(url: &str, extra: Value) -> Map<String, Value> {
    let mut s = json!({
        "url": url,
        "company_key": -1,
        "domain": "GPDOMAIN",
        "user": "gpuser",
        "password": {"secret": "gp"},
        "max_attempts": 3,
        "timeout_seconds": 10,
    });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s.as_object().unwrap().clone()
}

async fn connect(settings: Map<String, Value>) -> Arc<dyn Connection> {
    DynamicsGpConnector.connect(&settings, &context()).await.unwrap()
}

/// A connection whose transport counters the test can read.
fn direct(settings: Map<String, Value>, password: &str) -> GpConnection {
    let s: GpSettings = serde_json::from_value(Value::Object(settings)).unwrap();
    GpConnection::new(s, password.to_owned()).unwrap()
}

fn request(entity: &str, since: Option<&str>, page_size: u32) -> ReadRequest {
    ReadRequest {
        entity: entity.into(),
        cursor_field: Some("ModifiedDate".into()),
        cursor_kind: CursorKind::Timestamp,
        since: since.map(|s| Value::String(s.into())),
        page_size,
        select: vec![],
        expand: vec![],
    }
}

/// Every page of a read, and how many pages there were.
async fn read_all(conn: &dyn Connection, req: &ReadRequest) -> Result<(Vec<Value>, usize), String> {
    let mut pages = conn.read(req).await.map_err(|e| e.message)?;
    let (mut all, mut n) = (Vec::new(), 0);
    while let Some(page) = pages.next_page().await.map_err(|e| e.message)? {
        assert!(page.len() <= req.page_size as usize, "a page of {} for page_size {}", page.len(), req.page_size);
        n += 1;
        all.extend(page);
    }
    Ok((all, n))
}

fn by_id(records: &[Value]) -> BTreeMap<String, Value> {
    records.iter().map(|r| (r["Id"].as_str().unwrap().to_owned(), r.clone())).collect()
}

/// The engine's watermark: the highest cursor seen.
fn highest(records: &[Value]) -> Option<String> {
    records.iter().filter_map(|r| r["ModifiedDate"].as_str()).map(str::to_owned).max()
}

/// Every SOAP body the connector sent must pass the sandbox's WSDL check.
fn assert_soap_requests_valid(sb: &Sandbox) -> usize {
    let mut checked = 0;
    for r in sb.admin().requests() {
        if r.method == "POST" && r.path.to_ascii_lowercase().ends_with(".asmx") {
            if let Err(problems) = sandbox_dynamics_gp::check_soap_request(&r.body) {
                panic!("{} sent an invalid body: {problems:#?}\n{}", r.action, r.body);
            }
            checked += 1;
        }
    }
    checked
}

#[tokio::test]
async fn reads_customers_with_emails_and_invoices_with_payment_status() {
    let sb = start(SandboxConfig::default()).await;
    let conn = connect(settings(&sb.soap_url(), json!({}))).await;

    let (customers, _) = read_all(conn.as_ref(), &request("customers", None, 4)).await.unwrap();
    let c = by_id(&customers);
    assert_eq!(c.len(), sb.admin().customers(-1).len(), "every Fabrikam customer, once: {:?}", c.keys());
    assert_eq!(customers.len(), c.len());

    let adam = &c["ADAMPARK0001"];
    assert_eq!(adam["email"], "frontdesk@adampark.example");
    assert_eq!(adam["email_others"], json!(["accounting@adampark.example"]));
    assert_eq!(adam["EmailToAddress"], "frontdesk@adampark.example;accounting@adampark.example");
    assert_eq!(c["BAKERSEM0001"]["email"], "baker@emporium.example");
    assert_eq!(c["BAKERSEM0001"]["email_others"], json!(["sales@emporium.example"]));
    assert_eq!(c["ADVANCED0001"]["email"], Value::Null, "`not-an-email` is no address");
    assert_eq!(c["ADVANCED0001"]["EmailToAddress"], "not-an-email");
    assert_eq!(c["AMERICAN0001"]["email"], "Museum@AmSci.example");
    assert_eq!(c["ATMORERE0001"]["email"], "info@atmore.example", "from INET1 when EmailToAddress is empty");
    assert_eq!(c["SMITHSON0001"]["Name"], "Smith & Sons <Wholesale>");
    assert_eq!(c["SMITHSON0001"]["email"], "smith&sons@wholesale.example");
    assert_eq!(c["SMITHSON0001"]["BillingAddress"]["Line1"], "1 \"Quoted\" Lane");
    let aaron = &c["AARONFIT0001"];
    assert_eq!(aaron["email"], "orders@aaronfitz.example");
    assert_eq!(aaron["BillingAddress"]["City"], "Chicago");
    assert_eq!(aaron["BillingAddress"]["PostalCode"], "60603-0776");
    assert_eq!(aaron["ModifiedDate"], "2024-01-10T09:15:30.127Z");
    assert_eq!(aaron["CompanyKey"], -1);
    assert_eq!(c["CENTRALC0001"]["Currency"], "GBP");
    assert_eq!(c["ASSOCIAT0001"]["IsActive"], false);

    let (invoices, _) = read_all(conn.as_ref(), &request("invoices", None, 3)).await.unwrap();
    let i = by_id(&invoices);
    assert_eq!(i.len(), sb.admin().invoices(-1).len());
    let status = |n: &str| i[n]["payment_status"].as_str().unwrap().to_owned();
    assert_eq!(status("STDINV2001"), "pending");
    assert_eq!(status("STDINV2002"), "pending", "partly paid is still pending");
    assert_eq!(status("STDINV2003"), "paid");
    assert_eq!(status("STDINV2004"), "cancelled");
    assert_eq!(status("STDINV2006"), "paid", "moved to history");
    let inv = &i["STDINV2001"];
    assert_eq!(inv["CustomerId"], "AARONFIT0001");
    assert_eq!(inv["Date"], "2024-04-02");
    assert_eq!(inv["Currency"], "USD");
    assert_eq!(inv["DocumentAmount"], 2.0 * 59.95 + 10.0 + 8.5);
    assert_eq!(i["STDINV2005"]["Currency"], "GBP");
    assert_eq!(i["STDINV2005"]["DocumentAmount"], 1200.0, "in the document's (transactional) currency");
    assert_eq!(i["STDINV2003"]["CurrentDocumentAmount"], 0.0);

    assert!(assert_soap_requests_valid(&sb) > 20);
    // One authenticated connection per request in flight at most, each handshaken once.
    let users: Vec<Option<String>> = sb.admin().requests().into_iter().map(|r| r.user).collect();
    assert!(users.iter().any(|u| u.as_deref().is_some_and(|u| u.eq_ignore_ascii_case("GPDOMAIN\\gpuser"))));
}

#[tokio::test]
async fn a_wrong_password_fails_the_run_clearly_and_is_not_retried() {
    let sb = start(SandboxConfig::default()).await;
    let conn = connect(settings(&sb.soap_url(), json!({"password": {"secret": "wrong"}, "max_attempts": 5}))).await;
    let err = read_all(conn.as_ref(), &request("customers", None, 10)).await.unwrap_err();
    assert!(err.contains("wrong password for GPDOMAIN\\gpuser"), "{err}");
    // Anonymous, NEGOTIATE, AUTHENTICATE: three legs, once (retrying would lock the account).
    assert_eq!(sb.admin().requests().len(), 3, "{:#?}", sb.admin().requests());
    let check = conn.check().await.unwrap_err().message;
    assert!(check.contains("wrong password for GPDOMAIN\\gpuser"), "{check}");
}

#[tokio::test]
async fn a_change_between_polls_is_read_by_the_next_poll_exactly_once() {
    let sb = start(SandboxConfig::default()).await;
    let admin = sb.admin();
    let conn = connect(settings(&sb.soap_url(), json!({}))).await;

    let (first, _) = read_all(conn.as_ref(), &request("customers", None, 5)).await.unwrap();
    let mark = highest(&first).unwrap();
    let (second, _) = read_all(conn.as_ref(), &request("customers", Some(&mark), 5)).await.unwrap();
    assert!(second.is_empty(), "nothing changed: {second:?}");

    admin.advance_clock(Duration::from_secs(3600));
    admin.update_customer(-1, "ALTONMAN0001", |c| c.addresses[0].city = "Godfrey".into()).unwrap();
    let (third, _) = read_all(conn.as_ref(), &request("customers", Some(&mark), 5)).await.unwrap();
    assert_eq!(third.len(), 1, "{third:?}");
    assert_eq!(third[0]["Id"], "ALTONMAN0001");
    assert_eq!(third[0]["BillingAddress"]["City"], "Godfrey");
    let mark = highest(&third).unwrap();
    assert!(mark > highest(&first).unwrap());
    let (fourth, _) = read_all(conn.as_ref(), &request("customers", Some(&mark), 5)).await.unwrap();
    assert!(fourth.is_empty(), "read once: {fourth:?}");

    // Invoices: a payment and a void are changes too, with their new status.
    let (invoices, _) = read_all(conn.as_ref(), &request("invoices", None, 5)).await.unwrap();
    let mark = highest(&invoices).unwrap();
    admin.advance_clock(Duration::from_secs(60));
    admin.pay_invoice(-1, "STDINV2001", None).unwrap();
    admin.void_invoice(-1, "STDINV2007").unwrap();
    let (changed, _) = read_all(conn.as_ref(), &request("invoices", Some(&mark), 5)).await.unwrap();
    let changed = by_id(&changed);
    assert_eq!(changed.keys().collect::<Vec<_>>(), ["STDINV2001", "STDINV2007"]);
    assert_eq!(changed["STDINV2001"]["payment_status"], "paid");
    assert_eq!(changed["STDINV2007"]["payment_status"], "cancelled");
    let mark = highest(&changed.values().cloned().collect::<Vec<_>>()).unwrap();
    let (again, _) = read_all(conn.as_ref(), &request("invoices", Some(&mark), 5)).await.unwrap();
    assert!(again.is_empty(), "{again:?}");

    // The criteria carried the watermark as GP wants it: UTC, no offset.
    let sent = admin.requests().into_iter().rev().find(|r| r.action == "GetReceivablesInvoiceList").unwrap();
    let expected = format!("<gp:GreaterThan>{}</gp:GreaterThan>", mark.trim_end_matches('Z'));
    assert!(sent.body.contains(&expected), "{expected} in {}", sent.body);
    assert_soap_requests_valid(&sb);
}

#[tokio::test]
async fn an_email_only_change_is_read_by_the_next_poll_exactly_once() {
    use sandbox_dynamics_gp::DataModificationAction::{Created, Deleted, Updated};
    let sb = start(SandboxConfig::default()).await;
    let admin = sb.admin();
    // What an administrator does on the GP install (see the sandbox's crate docs).
    admin.set_action_tracking(-1, "InternetAddress", &[Created, Updated, Deleted]).unwrap();
    let conn = connect(settings(&sb.soap_url(), json!({}))).await;
    let (first, _) = read_all(conn.as_ref(), &request("customers", None, 5)).await.unwrap();
    let mark = highest(&first).unwrap();
    assert!(first.iter().all(|c| c["internet_addresses_modified"].is_null()), "a full read does not ask");

    // The e-mail alone changes: GP's ModifiedDate for BAKERSEM0001 stays where it was.
    admin.advance_clock(Duration::from_secs(3600));
    admin.set_email(-1, "BAKERSEM0001", None, "orders@baker-new.example").unwrap();
    let changed_at = admin.now();
    let (second, _) = read_all(conn.as_ref(), &request("customers", Some(&mark), 5)).await.unwrap();
    assert_eq!(second.len(), 1, "{second:?}");
    let baker = &second[0];
    assert_eq!(baker["Id"], "BAKERSEM0001");
    assert_eq!(baker["email"], "orders@baker-new.example");
    assert_eq!(baker["internet_addresses_modified"], changed_at.to_string());
    assert_eq!(baker["ModifiedDate"], changed_at.to_string(), "the cursor is the e-mail change");
    assert!(baker["LastModifiedDate"].as_str().unwrap() <= mark.as_str(), "GP's own stamp did not move");
    let next = highest(&second).unwrap();
    assert!(next > mark);
    let (third, _) = read_all(conn.as_ref(), &request("customers", Some(&next), 5)).await.unwrap();
    assert!(third.is_empty(), "read once: {third:?}");

    // The e-mail and the customer both change: one record, whose cursor is the later change.
    admin.advance_clock(Duration::from_secs(60));
    admin.update_customer(-1, "ADAMPARK0001", |c| c.name = "Adam Park Resort".into()).unwrap();
    admin.advance_clock(Duration::from_secs(60));
    admin.set_email(-1, "ADAMPARK0001", None, "desk@adampark.example").unwrap();
    admin.set_email(-1, "ALTONMAN0001", Some("WAREHOUSE"), "dock@alton.example").unwrap();
    let latest = admin.now();
    // And a customer whose e-mail changed, then who was deleted: gone, not an error.
    admin
        .upsert_customer(
            -1,
            sandbox_dynamics_gp::CustomerInput {
                id: "GONE0001".into(),
                name: "Gone".into(),
                addresses: vec![sandbox_dynamics_gp::AddressInput {
                    city: "Nowhere".into(),
                    internet: Some(sandbox_dynamics_gp::InternetAddresses {
                        email_to: "gone@example.com".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap();
    admin.delete_customer(-1, "GONE0001").unwrap();
    let (fourth, pages) = read_all(conn.as_ref(), &request("customers", Some(&next), 1)).await.unwrap();
    let got = by_id(&fourth);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["ADAMPARK0001", "ALTONMAN0001"], "{fourth:?}");
    assert_eq!(fourth.len(), 2, "each once");
    assert_eq!(pages, 2, "a page each");
    assert_eq!(got["ADAMPARK0001"]["Name"], "Adam Park Resort");
    assert_eq!(got["ADAMPARK0001"]["email"], "desk@adampark.example");
    assert_eq!(got["ADAMPARK0001"]["ModifiedDate"], latest.to_string());
    assert_eq!(got["ALTONMAN0001"]["ModifiedDate"], latest.to_string());
    let (fifth, _) = read_all(conn.as_ref(), &request("customers", Some(&highest(&fourth).unwrap()), 5)).await.unwrap();
    assert!(fifth.is_empty(), "{fifth:?}");

    // Invoices never ask; every body sent was valid against the WSDL subset.
    admin.clear_requests();
    read_all(conn.as_ref(), &request("invoices", Some(&next), 5)).await.unwrap();
    assert!(admin.requests().iter().all(|r| r.action != "GetChangedInternetAddressKeyList"));
    assert_soap_requests_valid(&sb);
}

#[tokio::test]
async fn without_gps_action_tracking_an_email_only_change_waits_for_the_customers_next_change() {
    let sb = start(SandboxConfig::default()).await;
    let admin = sb.admin();
    let conn = connect(settings(&sb.soap_url(), json!({}))).await;
    let (first, _) = read_all(conn.as_ref(), &request("customers", None, 5)).await.unwrap();
    let mark = highest(&first).unwrap();
    admin.advance_clock(Duration::from_secs(3600));
    admin.set_email(-1, "BAKERSEM0001", None, "orders@baker-new.example").unwrap();
    let (second, _) = read_all(conn.as_ref(), &request("customers", Some(&mark), 5)).await.unwrap();
    assert!(second.is_empty(), "GP's answer is empty, not an error: {second:?}");
    let asked = admin.requests().into_iter().filter(|r| r.action == "GetChangedInternetAddressKeyList").count();
    assert_eq!(asked, 1, "asked, once per incremental read");
    admin.update_customer(-1, "BAKERSEM0001", |c| c.comment1 = "called".into()).unwrap();
    let (third, _) = read_all(conn.as_ref(), &request("customers", Some(&mark), 5)).await.unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0]["email"], "orders@baker-new.example");
    assert_eq!(third[0]["internet_addresses_modified"], Value::Null);
    assert_soap_requests_valid(&sb);
}

#[tokio::test]
async fn key_ranges_read_every_customer_exactly_once_in_small_pages() {
    let sb = start(SandboxConfig::default()).await;
    let admin = sb.admin();
    sandbox_dynamics_gp::seed_many_customers(&admin, -1, 300);
    let expected: Vec<String> =
        admin.customers(-1).iter().map(|c| c["CUSTNMBR"].as_str().unwrap().to_owned()).collect();
    let conn = connect(settings(&sb.soap_url(), json!({"page_size": 25, "max_in_flight": 3}))).await;
    admin.clear_requests();

    let (customers, pages) = read_all(conn.as_ref(), &request("customers", None, 1000)).await.unwrap();
    let mut ids: Vec<String> = customers.iter().map(|c| c["Id"].as_str().unwrap().to_owned()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no customer twice");
    let mut expected = expected;
    expected.sort();
    assert_eq!(ids, expected, "every customer once");
    assert!(pages >= 300 / 25, "{pages} pages of at most 25");

    // Lists were key ranges of bounded size, not the whole company at once.
    let lists: Vec<_> =
        admin.requests().into_iter().filter(|r| r.action == "GetCustomerList" && r.status == 200).collect();
    assert!(lists.len() > 5, "{} lists", lists.len());
    assert!(lists.iter().all(|r| r.body.contains("<gp:Id>") || r.body.contains("<gp:GreaterThan>")));
    assert_soap_requests_valid(&sb);
}

#[tokio::test]
async fn check_explains_what_failed() {
    let sb = start(SandboxConfig::default()).await;
    let ok = connect(settings(&sb.soap_url(), json!({}))).await.check().await.unwrap();
    assert!(ok.contains("GPDOMAIN\\gpuser") && ok.contains("NTLM") && ok.contains("Fabrikam"), "{ok}");
    assert!(ok.contains("e-mail changes") && ok.contains("InternetAddress"), "{ok}");

    let unknown =
        connect(settings(&sb.soap_url(), json!({"company_key": 99}))).await.check().await.unwrap_err().message;
    assert!(unknown.contains("company key 99"), "{unknown}");

    let wrong = connect(settings(&sb.soap_url(), json!({"password": {"secret": "wrong"}}))).await.check().await;
    assert!(wrong.unwrap_err().message.contains("wrong password for GPDOMAIN\\gpuser"));

    // Nothing listens on a port we just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let refused = connect(settings(&format!("http://127.0.0.1:{port}/DynamicsGPWebServices"), json!({})))
        .await
        .check()
        .await
        .unwrap_err()
        .message;
    assert!(refused.contains("connection refused"), "{refused}");

    // https to a plain-http port: the TLS handshake fails, and says so.
    let tls_url = sb.soap_url().replace("http://", "https://");
    let tls = connect(settings(&tls_url, json!({}))).await.check().await.unwrap_err().message;
    assert!(tls.contains("TLS"), "{tls}");

    assert_soap_requests_valid(&sb);
}

#[tokio::test]
async fn a_negotiate_only_preference_sends_raw_ntlm_inside_negotiate() {
    let sb = start(SandboxConfig { negotiate: true, ..SandboxConfig::default() }).await;
    let conn = direct(settings(&sb.soap_url(), json!({"auth": "negotiate"})), DEFAULT_PASSWORD);
    let (customers, _) = read_all(&conn, &request("customers", None, 50)).await.unwrap();
    assert!(!customers.is_empty());
    assert_eq!(conn.client.transport.scheme().as_deref(), Some("Negotiate"));
    let ok = conn.check().await.unwrap();
    assert!(ok.contains("Negotiate"), "{ok}");
}

#[tokio::test]
async fn a_killed_connection_is_replaced_and_handshaken_again() {
    let sb = start(SandboxConfig::default()).await;
    let admin = sb.admin();
    let conn = direct(settings(&sb.soap_url(), json!({"max_in_flight": 1, "max_attempts": 6})), DEFAULT_PASSWORD);
    let mut pages = conn.read(&request("customers", None, 3)).await.unwrap();
    let mut seen = pages.next_page().await.unwrap().unwrap();
    assert_eq!(conn.client.transport.stats.handshakes.load(Ordering::Relaxed), 1);

    // The service goes down and comes back: every open connection is dropped.
    admin.set_faults(Faults { offline: true, ..Faults::default() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    admin.set_faults(Faults::default());
    // And some connections are reset mid-request.
    admin.set_faults(Faults { rate_reset: 0.2, seed: 7, ..Faults::default() });
    while let Some(page) = pages.next_page().await.unwrap() {
        seen.extend(page);
    }
    admin.set_faults(Faults::default());
    let ids = by_id(&seen);
    assert_eq!(ids.len(), seen.len(), "no record twice");
    assert_eq!(ids.len(), admin.customers(-1).len(), "no record lost");
    assert!(conn.client.transport.stats.handshakes.load(Ordering::Relaxed) >= 2, "a new connection handshakes");
    assert!(admin.requests().iter().any(|r| r.status == 0), "a reset happened");
}

#[tokio::test]
async fn sba_reads_the_same_records_with_ntlm_or_basic() {
    let sb = start(SandboxConfig { basic_for_sba: true, ..SandboxConfig::default() }).await;
    let sba = |auth: &str| {
        settings(
            &sb.base_url(),
            json!({"interface": "sba", "company": "Fabrikam, Inc.", "company_key": null, "auth": auth}),
        )
    };
    let soap = connect(settings(&sb.soap_url(), json!({}))).await;
    let (soap_customers, _) = read_all(soap.as_ref(), &request("customers", None, 100)).await.unwrap();
    let (soap_invoices, _) = read_all(soap.as_ref(), &request("invoices", None, 100)).await.unwrap();
    for auth in ["ntlm", "basic"] {
        let conn = connect(sba(auth)).await;
        assert!(conn.check().await.unwrap().contains("Fabrikam, Inc."));
        let (customers, _) = read_all(conn.as_ref(), &request("customers", None, 4)).await.unwrap();
        let (a, b) = (by_id(&customers), by_id(&soap_customers));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (id, r) in &a {
            for field in ["email", "email_others", "ModifiedDate", "Name"] {
                assert_eq!(r[field], b[id][field], "{auth}: {id}.{field}");
            }
        }
        let (invoices, _) = read_all(conn.as_ref(), &request("invoices", None, 4)).await.unwrap();
        let (a, b) = (by_id(&invoices), by_id(&soap_invoices));
        for (id, r) in &a {
            for field in ["payment_status", "DocumentAmount", "Currency", "CustomerId", "ModifiedDate"] {
                assert_eq!(r[field], b[id][field], "{auth}: {id}.{field}");
            }
        }
        assert_eq!(a.len(), b.len());
        // Incremental: only what changed after the watermark.
        let mark = highest(&customers).unwrap();
        let (none, _) = read_all(conn.as_ref(), &request("customers", Some(&mark), 4)).await.unwrap();
        assert!(none.is_empty());
    }
    let company = connect(sba("ntlm")).await;
    let wrong =
        connect(settings(&sb.base_url(), json!({"interface": "sba", "company": "Nonexistent", "company_key": null})))
            .await
            .check()
            .await
            .unwrap_err()
            .message;
    assert!(wrong.contains("404") && wrong.contains("Nonexistent"), "{wrong}");
    drop(company);
}

#[tokio::test]
async fn replays_read_records_by_key_and_the_connector_writes_nothing() {
    let sb = start(SandboxConfig::default()).await;
    let conn = connect(settings(&sb.soap_url(), json!({}))).await;
    let found = conn
        .read_current(&request("customers", None, 10), "Id", &[json!("BAKERSEM0001"), json!("NOSUCHCUST")])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["email"], "baker@emporium.example");

    let body = json!({});
    let params = Map::new();
    let err = DynamicsGpConnector
        .build_request("customer", &RequestInput { key: "k", params: &params, body: &body })
        .unwrap_err();
    assert!(err.contains("source only"), "{err}");
    assert!(DynamicsGpConnector.resources().is_empty());
    let schema = serde_json::to_value(DynamicsGpConnector.settings_schema()).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["properties"]["company_key"]["description"].as_str().unwrap().contains("numeric"));
}

#[tokio::test]
async fn settings_are_checked_before_anything_is_sent() {
    let sb = start(SandboxConfig::default()).await;
    let bad = |extra: Value| {
        let s = settings(&sb.soap_url(), extra);
        async move { DynamicsGpConnector.connect(&s, &context()).await.err().unwrap().message }
    };
    assert!(bad(json!({"company_key": null})).await.contains("company_key"));
    assert!(bad(json!({"interface": "sba", "company": null})).await.contains("company"));
    assert!(bad(json!({"auth": "basic", "url": "http://gp.example:48620"})).await.contains("https"));
    assert!(bad(json!({"colour": "blue"})).await.contains("unknown field"));
    assert!(bad(json!({"password": {"secret": "absent"}})).await.contains("absent"));
    assert!(sb.admin().requests().is_empty());
}

/// A server that answers every request `401` with the given challenges, on keep-alive
/// connections: what a host that wants Kerberos (or Basic) looks like to the connector.
async fn challenge_only_server(challenges: &'static [&'static str]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/DynamicsGPWebServices", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    }
                    buf.drain(..end + 4 + length);
                    let mut response = String::from("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n");
                    for c in challenges {
                        response.push_str(&format!("WWW-Authenticate: {c}\r\n"));
                    }
                    response.push_str("\r\n");
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn check_names_the_scheme_a_server_insists_on() {
    // Negotiate only: the connector tries raw NTLM inside it; a Kerberos-only host refuses.
    let url = challenge_only_server(&["Negotiate"]).await;
    let conn = connect(settings(&url, json!({}))).await;
    let message = conn.check().await.unwrap_err().message;
    assert!(message.contains("the server offers Negotiate only") && message.contains("Kerberos"), "{message}");

    let url = challenge_only_server(&["Basic realm=\"gp\""]).await;
    let message = connect(settings(&url, json!({}))).await.check().await.unwrap_err().message;
    assert!(message.contains("offers Basic only") && message.contains("auth: basic"), "{message}");

    let url = challenge_only_server(&[]).await;
    let message = connect(settings(&url, json!({}))).await.check().await.unwrap_err().message;
    assert!(message.contains("without any WWW-Authenticate"), "{message}");
}
