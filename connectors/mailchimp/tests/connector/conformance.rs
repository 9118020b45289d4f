//! Every request the connector sends, and every response the sandbox returns, checked against
//! Mailchimp's OpenAPI document.

use crate::common;

use std::path::Path;

use common::*;
use conformance::Spec;
use serde_json::json;

fn spec() -> Spec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/specs/mailchimp/mailchimp-marketing-openapi-3.0.85-ballerina.json");
    Spec::load(&path).unwrap().with_base_path("/3.0")
}

#[tokio::test]
async fn requests_and_responses_match_the_openapi_document() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let conn = connect(&sb).await;
    // A tour of everything the connector writes.
    assert_written(
        &conn
            .check()
            .await
            .map(|_| engine::connector::WriteOutcome::Written { target_id: None, status: None })
            .unwrap(),
    );
    assert_written(&conn.write(&member(&list, "ada@example.com", "Ada")).await);
    let tags =
        request("member_tags", json!({"list_id": list}), json!({"email_address": "ada@example.com", "tags": ["vip"]}));
    assert_written(&conn.write(&tags).await);
    let bulk: Vec<_> = (0..12).map(|i| member(&list, &format!("b{i}@example.com"), "B")).collect();
    for o in conn.write_bulk(&bulk).await {
        assert_written(&o);
    }
    assert_written(
        &conn
            .write(&request(
                "store",
                json!({}),
                json!({"id": "s1", "list_id": list, "name": "Shop", "currency_code": "EUR"}),
            ))
            .await,
    );
    assert_written(
        &conn
            .write(&request(
                "store",
                json!({}),
                json!({"id": "s1", "list_id": list, "name": "Shop 2", "currency_code": "EUR"}),
            ))
            .await,
    );
    assert_written(
        &conn
            .write(&request("product", json!({"store_id": "s1"}), json!({"id": "P1", "title": "Widget", "price": 5.0})))
            .await,
    );
    assert_written(
        &conn
            .write(&request(
                "customer",
                json!({"store_id": "s1"}),
                json!({"id": "C1", "email_address": "ada@example.com", "opt_in_status": false}),
            ))
            .await,
    );
    let order = request(
        "order",
        json!({"store_id": "s1"}),
        json!({"id": "o1", "customer": {"id": "C1"}, "currency_code": "EUR", "order_total": 10.0,
               "lines": [{"id": "1", "product_id": "P2", "product_variant_id": "P2", "quantity": 2, "price": 5.0}]}),
    );
    assert_written(&conn.write(&order).await);
    assert_written(&conn.write(&order).await);

    let spec = spec();
    let log = sb.admin().requests();
    assert!(log.len() >= 15, "{} requests", log.len());
    let mut violations = Vec::new();
    for r in &log {
        if let Err(v) = spec.check_request(&r.method, &r.path, &r.query, r.body.as_ref()) {
            violations.extend(v.into_iter().map(|v| format!("request {} {}: {v}", r.method, r.path)));
        }
        if let Err(v) = spec.check_response(&r.method, &r.path, r.status, r.response.as_ref()) {
            violations.extend(v.into_iter().map(|v| format!("response {} {} {}: {v}", r.status, r.method, r.path)));
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
