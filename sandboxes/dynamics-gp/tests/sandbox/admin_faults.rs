//! The admin API (HTTP and in process), injected faults and the request log.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use sandbox_dynamics_gp::{CustomerInput, Faults, InvoiceInput, LineInput, seed_many_customers};
use serde_json::{Value, json};

async fn admin_call(sandbox: &sandbox_dynamics_gp::Sandbox, method: &str, path: &str, body: Value) -> (u16, Value) {
    let mut conn = Conn::connect(addr(sandbox)).await.unwrap();
    let text = if body.is_null() { String::new() } else { body.to_string() };
    let r = conn.send(method, path, &[("Content-Type", "application/json")], &text).await.unwrap();
    (r.status, serde_json::from_str(&r.body).unwrap_or(Value::Null))
}

fn list_all(company: i32) -> String {
    envelope(
        "GetCustomerList",
        "<gp:criteria><gp:Scope>Return All</gp:Scope></gp:criteria>",
        Some(company),
        "Transactional",
    )
}

#[tokio::test]
async fn http_admin_changes_customers_and_invoices_without_auth_or_logging() {
    let sandbox = start().await;
    let (status, companies) = admin_call(&sandbox, "GET", "/_sandbox/companies", Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(companies[0]["name"], "Fabrikam, Inc.");
    let (status, _) = admin_call(
        &sandbox,
        "PUT",
        "/_sandbox/companies/-1/customers/NEWCUST0001",
        json!({"name": "New Customer", "addresses": [{"city": "Oslo", "internet": {"email_to": "new@example.com"}}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) =
        admin_call(&sandbox, "PATCH", "/_sandbox/companies/-1/customers/NEWCUST0001", json!({"name": "Renamed"})).await;
    assert_eq!(status, 200);
    // Entity action tracking over HTTP: on for internet addresses, refused for the rest.
    let tracking = "/_sandbox/companies/-1/action-tracking";
    let (status, _) =
        admin_call(&sandbox, "PUT", &format!("{tracking}/InternetAddress"), json!({"actions": ["Updated"]})).await;
    assert_eq!(status, 200);
    assert_eq!(admin_call(&sandbox, "GET", tracking, Value::Null).await.1, json!({"InternetAddress": ["Updated"]}));
    let (status, _) =
        admin_call(&sandbox, "PUT", &format!("{tracking}/InternetAddress"), json!({"actions": ["Touched"]})).await;
    assert_eq!(status, 400);
    let (status, _) =
        admin_call(&sandbox, "PUT", &format!("{tracking}/Customer"), json!({"actions": ["Updated"]})).await;
    assert_eq!(status, 400);
    let (status, _) = admin_call(
        &sandbox,
        "PUT",
        "/_sandbox/companies/-1/customers/NEWCUST0001/email",
        json!({"email_to": "a@example.com;b@example.com"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sandbox.admin().action_tracking(-1).unwrap(), json!({"InternetAddress": ["Updated"]}));
    let (_, customers) = admin_call(&sandbox, "GET", "/_sandbox/companies/-1/customers", Value::Null).await;
    let new = customers.as_array().unwrap().iter().find(|c| c["CUSTNMBR"] == "NEWCUST0001").unwrap();
    assert_eq!(new["CUSTNAME"], "Renamed");
    assert_eq!(new["addresses"][0]["internet"]["EmailToAddress"], "a@example.com;b@example.com");
    let (status, _) = admin_call(
        &sandbox,
        "POST",
        "/_sandbox/companies/-1/invoices",
        json!({"number": "NEW0001", "customer_id": "NEWCUST0001", "date": "2024-06-01", "subtotal": "99.99"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        admin_call(&sandbox, "POST", "/_sandbox/companies/-1/invoices/NEW0001/pay", json!({"amount": "9.99"})).await.0,
        200
    );
    let (status, err) = admin_call(&sandbox, "POST", "/_sandbox/companies/-1/invoices/NEW0001/void", Value::Null).await;
    assert_eq!(status, 400, "payments applied: {err}");
    assert_eq!(admin_call(&sandbox, "POST", "/_sandbox/companies/-1/invoices/NEW0001/pay", Value::Null).await.0, 200);
    let (_, moved) = admin_call(&sandbox, "POST", "/_sandbox/companies/-1/remove-paid-transactions", Value::Null).await;
    assert_eq!(moved["moved"], 2, "STDINV2003 and NEW0001");
    let (_, invoices) = admin_call(&sandbox, "GET", "/_sandbox/companies/-1/invoices", Value::Null).await;
    let new = invoices.as_array().unwrap().iter().find(|i| i["DOCNUMBR"] == "NEW0001").unwrap();
    assert_eq!((new["CURTRXAM"].as_str(), new["table"].as_str()), (Some("0.00"), Some("RM30101")));
    // Errors.
    assert_eq!(admin_call(&sandbox, "GET", "/_sandbox/companies/9/customers/X", Value::Null).await.0, 404);
    assert_eq!(admin_call(&sandbox, "PUT", "/_sandbox/companies/-1/customers/X", json!({"bogus": 1})).await.0, 400);
    assert_eq!(admin_call(&sandbox, "GET", "/_sandbox/nothing", Value::Null).await.0, 404);
    // Clock.
    let (_, before) = admin_call(&sandbox, "GET", "/_sandbox/clock", Value::Null).await;
    let (_, after) = admin_call(&sandbox, "POST", "/_sandbox/clock/advance", json!({"seconds": 86400})).await;
    assert!(after["now"].as_str().unwrap() > before["now"].as_str().unwrap());
    // None of that is in the request log.
    assert!(sandbox.admin().requests().is_empty());
    let (_, log) = admin_call(&sandbox, "GET", "/_sandbox/requests", Value::Null).await;
    assert_eq!(log, json!([]));
}

#[tokio::test]
async fn in_process_admin_mirrors_the_http_api() {
    let sandbox = start().await;
    let admin = sandbox.admin();
    admin
        .upsert_customer(
            2,
            CustomerInput {
                id: "ZETA0001".into(),
                name: "Zeta".into(),
                addresses: vec![Default::default()],
                ..Default::default()
            },
        )
        .unwrap();
    assert!(admin.customers(2).iter().any(|c| c["CUSTNMBR"] == "ZETA0001"));
    assert_eq!(admin.customer(2, "zeta0001").unwrap().addresses[0].id, "PRIMARY");
    assert!(admin.update_customer(2, "ZETA0001", |c| c.id = "OTHER".into()).is_err());
    admin
        .add_invoice(
            2,
            InvoiceInput {
                number: "Z1".into(),
                customer_id: "ZETA0001".into(),
                lines: vec![LineInput {
                    item: "X".into(),
                    quantity: "1".into(),
                    unit_price: "5".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap();
    admin.void_invoice(2, "Z1").unwrap();
    assert_eq!(admin.invoices(2).iter().find(|i| i["DOCNUMBR"] == "Z1").unwrap()["VOIDSTTS"], 1);
    assert_eq!(admin.void_invoice(2, "Z1").unwrap_err().status, 400);
    assert_eq!(admin.pay_invoice(2, "NOPE", None).unwrap_err().status, 404);
    assert!(admin.delete_customer(2, "ZETA0001").is_err(), "it has documents");
    let t0 = admin.now();
    admin.advance_clock(Duration::from_secs(3600));
    assert!(admin.now().duration_since(t0).as_secs() >= 3600);
    admin.add_company(5, "Adventure Works", "AW").unwrap();
    assert_eq!(admin.companies().len(), 3);
    assert!(admin.add_company(5, "Again", "AG").is_err());
}

#[tokio::test]
async fn bulk_customers_stream_without_paging() {
    let sandbox = start().await;
    let admin = sandbox.admin();
    let started = Instant::now();
    seed_many_customers(&admin, -1, 50_000);
    let seeded = started.elapsed();
    let mut conn = authed(&sandbox).await;
    let started = Instant::now();
    let r = soap(&mut conn, "GetCustomerList", &list_all(-1)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body.matches("<CustomerSummary>").count(), 50_011);
    assert!(r.body.ends_with("</GetCustomerListResult></GetCustomerListResponse></s:Body></s:Envelope>"));
    eprintln!("seeded 50k in {seeded:?}, listed in {:?} ({} MB)", started.elapsed(), r.body.len() / 1_000_000);
    // The keyset restriction still works on the big list.
    let range = envelope(
        "GetCustomerList",
        "<gp:criteria><gp:Id><gp:GreaterThan>BULK0049990</gp:GreaterThan><gp:LessThan>C</gp:LessThan></gp:Id><gp:Scope>Return All</gp:Scope></gp:criteria>",
        Some(-1),
        "Transactional",
    );
    let r = soap(&mut conn, "GetCustomerList", &range).await;
    assert_eq!(keys(&r.body, "CustomerSummary").len(), 10);
}

#[tokio::test]
async fn injected_500_reset_and_slow() {
    let sandbox = start().await;
    let admin = sandbox.admin();
    let mut conn = authed(&sandbox).await;
    admin.set_faults(Faults { rate_500: 1.0, ..Faults::default() });
    let r = soap(&mut conn, "GetCustomerList", &list_all(-1)).await;
    assert_eq!(r.status, 500);
    assert!(
        r.body.contains("<faultcode>s:Server</faultcode>") && r.body.contains("System.Data.SqlClient.SqlException")
    );
    admin.set_faults(Faults { slow_ms: 300, ..Faults::default() });
    let started = Instant::now();
    assert_eq!(soap(&mut conn, "GetCustomerList", &list_all(-1)).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    admin.set_faults(Faults { rate_reset: 1.0, ..Faults::default() });
    let action = format!("\"{GP}/GetCustomerList\"");
    let failed = conn
        .send("POST", SOAP_PATH, &[("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", &action)], &list_all(-1))
        .await;
    assert!(failed.is_err(), "reset without a response: {failed:?}");
    // Seeded rates replay exactly (faults hit authenticated requests, so authenticate first).
    admin.set_faults(Faults::default());
    let mut conn = authed(&sandbox).await;
    admin.set_faults(Faults { rate_500: 0.5, seed: 42, ..Faults::default() });
    let mut first = Vec::new();
    for _ in 0..10 {
        first.push(soap(&mut conn, "GetCustomerList", &list_all(-1)).await.status);
    }
    admin.set_faults(Faults { rate_500: 0.5, seed: 42, ..Faults::default() });
    let mut second = Vec::new();
    for _ in 0..10 {
        second.push(soap(&mut conn, "GetCustomerList", &list_all(-1)).await.status);
    }
    assert_eq!(first, second);
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");
    let log = admin.requests();
    assert!(log.iter().any(|e| e.status == 0 && e.error.as_deref() == Some("connection reset (injected)")));
}

#[tokio::test]
async fn offline_refuses_connections_and_comes_back() {
    let sandbox = start().await;
    let admin = sandbox.admin();
    let mut conn = authed(&sandbox).await;
    admin.set_faults(Faults { offline: true, ..Faults::default() });
    // The open connection is dropped and new ones are refused (allow the loop a moment).
    let mut refused = false;
    for _ in 0..50 {
        match Conn::connect(addr(&sandbox)).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(refused, "connections must be refused while offline");
    assert!(conn.send("GET", &format!("{SOAP_PATH}?wsdl"), &[], "").await.is_err());
    admin.set_faults(Faults::default());
    // Back at once: the port was re-bound before set_faults returned.
    let mut conn = authed(&sandbox).await;
    assert_eq!(soap(&mut conn, "GetCustomerList", &list_all(-1)).await.status, 200);
    // Offline over HTTP with automatic recovery.
    let (status, _) = admin_call(&sandbox, "PUT", "/_sandbox/faults?for_ms=200", json!({"offline": true})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(Conn::connect(addr(&sandbox)).await.is_err());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(Conn::connect(addr(&sandbox)).await.is_ok());
    assert!(!admin.faults().offline);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let sandbox = start().await;
    let address = addr(&sandbox);
    sandbox.shutdown().await;
    assert!(Conn::connect(address).await.is_err());
}
