//! E-commerce writes in bulk go through batch operations (`/batches`), and each record's result
//! comes back to it: what the ledger, the audit trail and dead letters rely on.

use crate::common;

use std::time::Duration;

use common::*;
use engine::connector::{TargetRequest, WriteOutcome};
use sandbox_mailchimp::{Faults, Sandbox, SandboxConfig};
use serde_json::json;

/// A sandbox whose batches move through their states quickly.
async fn quick_batches() -> Sandbox {
    sandbox_with(SandboxConfig { batch_step: Duration::from_millis(5), ..SandboxConfig::default() }).await
}

fn product(store: &str, n: usize) -> TargetRequest {
    request(
        "product",
        json!({"store_id": store}),
        json!({"id": format!("ITEM-{n}"), "title": format!("Item {n}"), "price": 2.5}),
    )
}

fn customer(store: &str, n: usize) -> TargetRequest {
    request(
        "customer",
        json!({"store_id": store}),
        json!({"id": format!("C{n}"), "email_address": format!("c{n}@example.com"), "first_name": "C"}),
    )
}

fn order(store: &str, n: usize, item: usize, status: &str) -> TargetRequest {
    request(
        "order",
        json!({"store_id": store}),
        json!({"id": format!("inv-{n}"), "customer": {"id": format!("C{n}"), "email_address": format!("c{n}@example.com"), "opt_in_status": false}, "currency_code": "EUR",
               "order_total": 5.0, "financial_status": status,
               "lines": [{"id": "1", "product_id": format!("ITEM-{item}"), "product_variant_id": format!("ITEM-{item}"),
                          "quantity": 2, "price": 5.0}]}),
    )
}

/// The calls the sandbox received, as `METHOD path` with batch ids cut off.
fn calls(sb: &Sandbox) -> Vec<String> {
    sb.admin()
        .requests()
        .iter()
        .map(|r| {
            let path = if r.path.starts_with("/3.0/batches/") { "/3.0/batches/{id}" } else { r.path.as_str() };
            format!("{} {path}", r.method)
        })
        .collect()
}

fn target_id(outcome: &WriteOutcome) -> Option<String> {
    match outcome {
        WriteOutcome::Written { target_id, .. } => target_id.clone(),
        other => panic!("expected a write, got {other:?}"),
    }
}

async fn store(sb: &Sandbox, conn: &dyn engine::connector::Connection) -> String {
    let list = sb.admin().create_list("Customers");
    let store =
        request("store", json!({}), json!({"id": "s1", "list_id": list, "name": "Shop", "currency_code": "EUR"}));
    assert_written(&conn.write(&store).await);
    "s1".to_owned()
}

#[tokio::test]
async fn ecommerce_pages_go_through_batch_operations_with_a_result_per_record() {
    let sb = quick_batches().await;
    let conn = connect(&sb).await;
    let s = store(&sb, conn.as_ref()).await;
    let key = conn.bulk_key(&product(&s, 0)).expect("products travel in bulk");
    assert_eq!(conn.bulk_min(&key), 100, "a batch is only worth it for a big page");
    assert_eq!(conn.bulk_min(&conn.bulk_key(&member("L", "a@example.com", "A")).unwrap()), 10);

    // 120 products: one batch, polled, no request per product.
    sb.admin().clear_requests();
    let products: Vec<_> = (0..120).map(|n| product(&s, n)).collect();
    let outcomes = conn.write_bulk(&products).await;
    assert_eq!(outcomes.len(), 120);
    for (n, o) in outcomes.iter().enumerate() {
        assert_eq!(target_id(o).as_deref(), Some(format!("ITEM-{n}").as_str()));
    }
    assert_eq!(sb.admin().products(&s).len(), 120);
    let made = calls(&sb);
    assert_eq!(made.iter().filter(|c| *c == "POST /3.0/batches").count(), 1, "{made:?}");
    assert!(made.iter().all(|c| c == "POST /3.0/batches" || c == "GET /3.0/batches/{id}"), "{made:?}");

    // 120 customers, two of which Mailchimp refuses: the refusals land on their own records.
    let mut customers: Vec<_> = (0..120).map(|n| customer(&s, n)).collect();
    for n in [7, 93] {
        customers[n].body["opt_in_status"] = json!("yes");
    }
    let outcomes = conn.write_bulk(&customers).await;
    for (n, o) in outcomes.iter().enumerate() {
        if n == 7 || n == 93 {
            assert_eq!(failure_class(o), "validation", "{o:?}");
            assert!(matches!(o, WriteOutcome::Failed { transient: false, status: Some(400), .. }), "{o:?}");
        } else {
            assert_eq!(target_id(o).as_deref(), Some(format!("C{n}").as_str()));
        }
    }
    assert_eq!(sb.admin().customers(&s).len(), 118);

    // 120 orders on the products just written (known: no lookups) and one on a product nobody
    // wrote (ensured first).
    sb.admin().clear_requests();
    let mut orders: Vec<_> = (0..120).map(|n| order(&s, n, n, "pending")).collect();
    orders.push(order(&s, 500, 500, "pending"));
    for o in conn.write_bulk(&orders).await {
        assert_written(&o);
    }
    assert_eq!(sb.admin().orders(&s).len(), 121);
    let made = calls(&sb);
    let lookups: Vec<_> = made.iter().filter(|c| c.contains("/products")).collect();
    assert_eq!(
        lookups,
        ["GET /3.0/ecommerce/stores/s1/products/ITEM-500", "PUT /3.0/ecommerce/stores/s1/products/ITEM-500"]
    );

    // A replay with a change: Mailchimp has every order, so they are patched, in a second batch;
    // still one order per invoice.
    sb.admin().clear_requests();
    let paid: Vec<_> = (0..120).map(|n| order(&s, n, n, "paid")).collect();
    for o in conn.write_bulk(&paid).await {
        assert_written(&o);
    }
    let all = sb.admin().orders(&s);
    assert_eq!(all.len(), 121);
    assert!(all.iter().filter(|o| o["id"] != "inv-500").all(|o| o["financial_status"] == "paid"));
    assert_eq!(calls(&sb).iter().filter(|c| *c == "POST /3.0/batches").count(), 2);
}

#[tokio::test]
async fn a_connection_that_knows_no_products_lists_them_once_instead_of_looking_each_up() {
    let sb = quick_batches().await;
    let writer = connect(&sb).await;
    let s = store(&sb, writer.as_ref()).await;
    for o in writer.write_bulk(&(0..150).map(|n| product(&s, n)).collect::<Vec<_>>()).await {
        assert_written(&o);
    }
    // Another process: its cache is cold.
    let conn = connect(&sb).await;
    sb.admin().clear_requests();
    let orders: Vec<_> = (0..100).map(|n| order(&s, n, n + 30, "pending")).collect();
    for o in conn.write_bulk(&orders).await {
        assert_written(&o);
    }
    let product_calls: Vec<String> = calls(&sb).into_iter().filter(|c| c.contains("/products")).collect();
    assert_eq!(product_calls, ["GET /3.0/ecommerce/stores/s1/products"]);
    assert_eq!(sb.admin().orders(&s).len(), 100);
}

#[tokio::test]
async fn a_batch_refused_as_a_whole_fails_every_record_for_a_retry() {
    let sb = quick_batches().await;
    let conn = connect_with(&sb, json!({"max_attempts": 1})).await;
    let s = store(&sb, conn.as_ref()).await;
    sb.admin().set_faults(Faults { rate_5xx: 1.0, ..Faults::default() });
    let outcomes = conn.write_bulk(&(0..100).map(|n| customer(&s, n)).collect::<Vec<_>>()).await;
    assert_eq!(outcomes.len(), 100);
    assert!(outcomes.iter().all(|o| matches!(o, WriteOutcome::Failed { transient: true, .. })), "{:?}", outcomes[0]);
    sb.admin().set_faults(Faults::default());
    assert!(sb.admin().customers(&s).is_empty());
}

#[tokio::test]
async fn batch_operations_can_be_turned_off() {
    let sb = quick_batches().await;
    let conn = connect_with(&sb, json!({"batch_operations": false})).await;
    assert!(conn.bulk_key(&product("s1", 0)).is_none());
    assert!(conn.bulk_key(&member("L", "a@example.com", "A")).is_some(), "members still use batch subscribe");
}
