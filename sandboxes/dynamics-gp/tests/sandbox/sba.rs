//! SBA REST routes (the reference's best guess, documented in the crate).

use crate::common;

use common::*;
use ntlm::http::Scheme;
use serde_json::Value;

async fn get(conn: &mut Conn, path: &str) -> (u16, Value) {
    let r = conn.send("GET", path, &[], "").await.unwrap();
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"), "{path}: {r:?}");
    (r.status, serde_json::from_str(&r.body).unwrap())
}

#[tokio::test]
async fn customers_and_invoices_by_company_name() {
    let sandbox = start().await;
    let base = sandbox.sba_url("Fabrikam, Inc.");
    assert!(base.ends_with("/GPService/Tenants(DefaultTenant)/Companies(Fabrikam%2C%20Inc.)"), "{base}");
    let path = base.trim_start_matches(&sandbox.base_url()).to_string();
    let mut conn = Conn::connect(addr(&sandbox)).await.unwrap();
    let r = conn
        .ntlm(&mut default_client(), Scheme::Ntlm, false, "GET", &format!("{path}/Sales/Customers"), &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let list: Value = serde_json::from_str(&r.body).unwrap();
    let customers = list["Payload"].as_array().unwrap();
    assert_eq!(customers.len(), 11);
    assert_eq!(customers[0]["Key"]["Id"], "AARONFIT0001");
    assert_eq!(customers[0]["ModifiedDate"], "2024-01-10T09:15:30.127");
    assert_eq!(list["Messages"], serde_json::json!([]));

    let (status, one) = get(&mut conn, &format!("{path}/Sales/Customers(ADAMPARK0001).json")).await;
    assert_eq!(status, 200);
    assert_eq!(
        one["Payload"]["Addresses"][0]["InternetAddresses"]["EmailToAddress"],
        "frontdesk@adampark.example;accounting@adampark.example"
    );
    let (status, invoices) = get(&mut conn, &format!("{path}/Sales/ReceivablesInvoices")).await;
    assert_eq!((status, invoices["Payload"].as_array().unwrap().len()), (200, 7));
    let (_, inv) = get(&mut conn, &format!("{path}/Sales/ReceivablesInvoices(STDINV2002)")).await;
    assert_eq!(inv["Payload"]["CurrentDocumentAmount"]["Value"], 350.0);
    assert_eq!(inv["Payload"]["DocumentAmount"]["Currency"], "USD");
    // Encoded parentheses and case-insensitive names work; the company is the name, not INTERID.
    let (status, _) =
        get(&mut conn, "/GPService/Tenants%28DefaultTenant%29/Companies%28fabrikam%2C%20inc.%29/Sales/Customers").await;
    assert_eq!(status, 200);
    let (status, body) = get(&mut conn, "/GPService/Tenants(DefaultTenant)/Companies(TWO)/Sales/Customers").await;
    assert_eq!(status, 404);
    assert_eq!(body["Messages"][0]["Type"], "Error");
    // Other tenant, unknown customer, query options, other methods.
    assert_eq!(get(&mut conn, "/GPService/Tenants(Other)/Companies(Contoso%20Ltd.)/Sales/Customers").await.0, 404);
    assert_eq!(get(&mut conn, &format!("{path}/Sales/Customers(NOPE)")).await.0, 404);
    assert_eq!(get(&mut conn, &format!("{path}/Sales/Customers?$top=10")).await.0, 400);
    let r = conn.send("POST", &format!("{path}/Sales/Customers"), &[], "{}").await.unwrap();
    assert_eq!(r.status, 405);
    let (status, help) = get(&mut conn, "/GPService/Tenants(DefaultTenant)/help").await;
    assert_eq!(status, 200);
    assert!(help["Payload"]["Routes"].as_array().unwrap().len() >= 4);
    // Contoso by name.
    let (status, contoso) =
        get(&mut conn, "/GPService/Tenants(DefaultTenant)/Companies(Contoso%20Ltd.)/Sales/Customers").await;
    assert_eq!((status, contoso["Payload"].as_array().unwrap().len()), (200, 3));
    // SBA requests are logged with their path.
    assert!(sandbox.admin().requests().iter().any(|e| e.action.starts_with("GET /GPService/") && e.status == 404));
}
