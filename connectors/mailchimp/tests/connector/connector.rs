//! The connector against the sandbox, through the real HTTP client.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use connector_mailchimp::{MailchimpConnector, oauth};
use engine::connector::{Connector, WriteOutcome};
use sandbox_mailchimp::{DEFAULT_API_KEY, Faults};
use serde_json::json;

#[tokio::test]
async fn check_reports_the_account_and_data_center() {
    let sb = sandbox().await;
    let conn = connect(&sb).await;
    let what = conn.check().await.unwrap();
    assert!(what.contains("data center us6"), "{what}");

    let bad = MailchimpConnector
        .connect(&settings(&sb, json!({})), &context(&[("mc_key", "ffffffffffffffffffffffffffffffff-us6")]))
        .await
        .unwrap();
    let err = bad.check().await.unwrap_err().to_string();
    assert!(err.contains("refused the credentials") && err.contains("API Key Invalid"), "{err}");

    let wrong_dc = MailchimpConnector
        .connect(&settings(&sb, json!({})), &context(&[("mc_key", "0123456789abcdef0123456789abcdef-us1")]))
        .await
        .unwrap();
    let err = wrong_dc.check().await.unwrap_err().to_string();
    assert!(err.contains("403"), "{err}");

    let no_dc = MailchimpConnector.connect(&settings(&sb, json!({})), &context(&[("mc_key", "nodatacenter")])).await;
    assert!(no_dc.err().unwrap().to_string().contains("data-center suffix"));
}

#[tokio::test]
async fn oauth_tokens_resolve_their_data_center_and_bad_tokens_fail() {
    let sb = sandbox().await;
    let http = connector_http::client::build_client(Duration::from_secs(10));
    // The account owner's consent, as the sandbox grants it without a person.
    let authorize =
        format!("{}&auto=1", oauth::authorize_url(&sb.base_url(), "sandbox-client", "http://127.0.0.1:9/cb", "st"));
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = no_redirect.get(&authorize).send().await.unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let token =
        oauth::exchange_code(&http, &sb.base_url(), "sandbox-client", "sandbox-secret", "http://127.0.0.1:9/cb", &code)
            .await
            .unwrap();
    let err = oauth::exchange_code(&http, &sb.base_url(), "sandbox-client", "wrong", "http://127.0.0.1:9/cb", &code)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");

    let oauth_settings = |sb: &sandbox_mailchimp::Sandbox| {
        json!({"auth": {"type": "oauth", "token": {"secret": "t"}}, "oauth_base_url": sb.base_url()})
            .as_object()
            .unwrap()
            .clone()
    };
    let conn = MailchimpConnector.connect(&oauth_settings(&sb), &context(&[("t", &token)])).await.unwrap();
    assert!(conn.check().await.unwrap().contains("data center us6"));

    let err = MailchimpConnector.connect(&oauth_settings(&sb), &context(&[("t", "not-a-token")])).await.err().unwrap();
    assert!(err.to_string().contains("refused the OAuth token (invalid_token)"), "{err}");
}

#[tokio::test]
async fn members_are_upserted_and_missing_merge_fields_created() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let conn = connect(&sb).await;
    assert_written(&conn.write(&member(&list, "Ada@Example.com", "Ada")).await);
    let m = sb.admin().member(&list, "ada@example.com").unwrap();
    assert_eq!(m["status"], "subscribed");
    assert_eq!(m["merge_fields"]["COMPANY"], "Contoso");
    let created_company = sb.admin().requests().iter().any(|r| {
        r.method == "POST" && r.path.ends_with("/merge-fields") && r.body.as_ref().unwrap()["tag"] == "COMPANY"
    });
    assert!(created_company, "COMPANY is not a default merge field and was created");
    // A second member does not look the merge fields up again.
    sb.admin().clear_requests();
    assert_written(&conn.write(&member(&list, "grace@example.com", "Grace")).await);
    assert_eq!(sb.admin().requests().len(), 1);
}

#[tokio::test]
async fn an_erp_sync_never_changes_a_members_own_choice() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let conn = connect(&sb).await;
    assert_written(&conn.write(&member(&list, "ada@example.com", "Ada")).await);
    sb.admin().unsubscribe(&list, "ada@example.com");
    // The ERP record changes; the member stays unsubscribed, the name is updated.
    assert_written(&conn.write(&member(&list, "ada@example.com", "Augusta")).await);
    let m = sb.admin().member(&list, "ada@example.com").unwrap();
    assert_eq!(m["status"], "unsubscribed");
    assert_eq!(m["merge_fields"]["FNAME"], "Augusta");

    sb.admin().bounce(&list, "ada@example.com");
    assert_written(&conn.write(&member(&list, "ada@example.com", "Ada")).await);
    assert_eq!(sb.admin().member(&list, "ada@example.com").unwrap()["status"], "cleaned");
}

#[tokio::test]
async fn compliance_refusals_are_dead_lettered_or_sent_as_pending() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let conn = connect(&sb).await;
    assert_written(&conn.write(&member(&list, "gone@example.com", "Gone")).await);
    sb.admin().forget(&list, "gone@example.com");
    let outcome = conn.write(&member(&list, "gone@example.com", "Gone")).await;
    assert_eq!(failure_class(&outcome), "compliance");
    assert!(
        matches!(&outcome, WriteOutcome::Failed { transient: false, message, .. } if message.contains("Forgotten Email Not Subscribed"))
    );

    let pending = request(
        "member",
        json!({"list_id": list, "on_compliance": "pending"}),
        json!({"email_address": "gone@example.com", "status_if_new": "subscribed"}),
    );
    assert_written(&conn.write(&pending).await);
    assert_eq!(sb.admin().member(&list, "gone@example.com").unwrap()["status"], "pending");
}

#[tokio::test]
async fn tags_go_through_the_tags_endpoint() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let conn = connect(&sb).await;
    assert_written(&conn.write(&member(&list, "ada@example.com", "Ada")).await);
    let tags = request(
        "member_tags",
        json!({"list_id": list}),
        json!({"email_address": "ada@example.com", "tags": ["vip", "erp"]}),
    );
    assert_written(&conn.write(&tags).await);
    let names: Vec<String> = sb.admin().member(&list, "ada@example.com").unwrap()["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"vip".to_owned()) && names.contains(&"erp".to_owned()), "{names:?}");
}

#[tokio::test]
async fn bulk_member_writes_use_batch_subscribe_and_keep_existing_statuses() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let conn = connect(&sb).await;
    for i in 0..3 {
        assert_written(&conn.write(&member(&list, &format!("old{i}@example.com"), "Old")).await);
    }
    sb.admin().unsubscribe(&list, "old0@example.com");
    sb.admin().clear_requests();

    let mut requests: Vec<_> = (0..25).map(|i| member(&list, &format!("new{i}@example.com"), "New")).collect();
    requests.extend((0..3).map(|i| member(&list, &format!("old{i}@example.com"), "Updated")));
    let bad = request(
        "member",
        json!({"list_id": list}),
        json!({"email_address": "x@example.com", "status_if_new": "subscribed", "merge_fields": {"ADDRESS": "not an address"}}),
    );
    requests.push(bad);
    assert_eq!(conn.bulk_limit(), 500);
    assert!(conn.bulk_key(&requests[0]).is_some());
    let outcomes = conn.write_bulk(&requests).await;
    assert_eq!(outcomes.len(), requests.len());
    for o in &outcomes[..28] {
        assert_written(o);
    }
    assert_eq!(failure_class(&outcomes[28]), "validation");

    let batch_calls =
        sb.admin().requests().iter().filter(|r| r.method == "POST" && r.path == format!("/3.0/lists/{list}")).count();
    assert_eq!(batch_calls, 1);
    assert_eq!(sb.admin().member(&list, "old0@example.com").unwrap()["status"], "unsubscribed");
    assert_eq!(sb.admin().member(&list, "old0@example.com").unwrap()["merge_fields"]["FNAME"], "Updated");
    assert_eq!(sb.admin().member(&list, "new7@example.com").unwrap()["status"], "subscribed");
}

fn order(store: &str, id: &str, lines: serde_json::Value) -> engine::connector::TargetRequest {
    request(
        "order",
        json!({"store_id": store}),
        json!({"id": id, "customer": {"id": "C1", "email_address": "ada@example.com", "opt_in_status": false}, "currency_code": "EUR", "order_total": 30.5, "lines": lines}),
    )
}

#[tokio::test]
async fn stores_are_ensured_and_their_audience_never_changes() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let other = sb.admin().create_list("Other");
    let conn = connect(&sb).await;
    let store = |list: &str, name: &str| {
        request(
            "store",
            json!({}),
            json!({"id": "erp-store", "list_id": list, "name": name, "currency_code": "EUR", "domain": "shop.example.com"}),
        )
    };
    assert_written(&conn.write(&store(&list, "Shop")).await);
    assert_written(&conn.write(&store(&list, "Shop renamed")).await);
    assert_eq!(sb.admin().store("erp-store").unwrap()["name"], "Shop renamed");
    let outcome = conn.write(&store(&other, "Shop")).await;
    assert_eq!(failure_class(&outcome), "store_audience");
    assert!(matches!(&outcome, WriteOutcome::Failed { message, .. } if message.contains("cannot change")));
}

#[tokio::test]
async fn orders_ensure_their_products_and_replays_leave_one_order() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let conn = connect(&sb).await;
    assert_written(
        &conn
            .write(&request(
                "store",
                json!({}),
                json!({"id": "s1", "list_id": list, "name": "Shop", "currency_code": "EUR"}),
            ))
            .await,
    );
    let lines = json!([{"id": "1", "product_id": "ITEM-1", "product_variant_id": "ITEM-1", "quantity": 2, "price": 10.0, "product_title": "Widget"},
                       {"id": "2", "product_id": "ITEM-2", "product_variant_id": "ITEM-2-RED", "quantity": 1, "price": 10.5}]);
    for _ in 0..3 {
        assert_written(&conn.write(&order("s1", "inv-103001", lines.clone())).await);
    }
    let orders = sb.admin().orders("s1");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["lines"].as_array().unwrap().len(), 2);
    let products = sb.admin().products("s1");
    assert_eq!(products.len(), 2);
    assert!(products.iter().any(|p| p["title"] == "Widget"));

    // A product and a customer written by their own pipelines.
    let product =
        request("product", json!({"store_id": "s1"}), json!({"id": "ITEM-3", "title": "Gadget", "price": 4.0}));
    assert_written(&conn.write(&product).await);
    let customer = request(
        "customer",
        json!({"store_id": "s1"}),
        json!({"id": "C2", "email_address": "grace@example.com", "first_name": "Grace"}),
    );
    assert_written(&conn.write(&customer).await);
    assert_eq!(sb.admin().member(&list, "grace@example.com").unwrap()["status"], "transactional");
}

#[tokio::test]
async fn order_replays_survive_timeouts_after_the_server_committed() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let conn = connect_with(&sb, json!({"timeout_seconds": 1, "max_attempts": 6})).await;
    assert_written(
        &conn
            .write(&request(
                "store",
                json!({}),
                json!({"id": "s1", "list_id": list, "name": "Shop", "currency_code": "EUR"}),
            ))
            .await,
    );
    let lines = json!([{"id": "1", "product_id": "P", "product_variant_id": "P", "quantity": 1, "price": 30.5}]);
    assert_written(&conn.write(&order("s1", "warmup", lines.clone())).await);
    sb.admin().set_faults(Faults { rate_timeout_after_commit: 0.5, seed: 7, ..Faults::default() });
    for _ in 0..3 {
        let outcome = conn.write(&order("s1", "inv-9", lines.clone())).await;
        assert_written(&outcome);
    }
    sb.admin().set_faults(Faults::default());
    let orders: Vec<_> = sb.admin().orders("s1").into_iter().filter(|o| o["id"] == "inv-9").collect();
    assert_eq!(orders.len(), 1, "exactly one order");
    let timeouts = sb.admin().requests().iter().filter(|r| r.path.contains("/orders")).count();
    assert!(timeouts >= 3, "the faults were exercised");
}

#[tokio::test]
async fn throttling_is_retried() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let conn = connect_with(&sb, json!({"max_attempts": 8})).await;
    assert_written(&conn.write(&member(&list, "warm@example.com", "W")).await);
    sb.admin().set_faults(Faults { rate_429: 0.4, rate_5xx: 0.2, seed: 3, ..Faults::default() });
    let conn = Arc::new(conn);
    for i in 0..15 {
        assert_written(&conn.write(&member(&list, &format!("t{i}@example.com"), "T")).await);
    }
    let statuses: Vec<u16> = sb.admin().requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&429) && statuses.iter().any(|s| *s >= 500), "{statuses:?}");
    assert_eq!(sb.admin().members(&list).len(), 16);
}

#[tokio::test]
async fn the_api_key_never_appears_in_errors() {
    let sb = sandbox().await;
    let conn = MailchimpConnector
        .connect(&settings(&sb, json!({})), &context(&[("mc_key", "deadbeefdeadbeefdeadbeefdeadbeef-us6")]))
        .await
        .unwrap();
    let outcome = conn.write(&member("nolist", "a@b.co", "A")).await;
    assert!(!format!("{outcome:?}").contains("deadbeef"));
    let err = conn.check().await.unwrap_err();
    assert!(!err.to_string().contains("deadbeef"));
    assert!(!DEFAULT_API_KEY.is_empty());
}
