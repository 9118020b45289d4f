//! E-commerce: stores, products, customers, orders and their rules.

use serde_json::{Value, json};

use crate::common::Env;

async fn with_store(env: &Env, id: &str, domain: &str) -> Value {
    let body = json!({"id": id, "list_id": env.list, "name": "Shop", "currency_code": "EUR", "domain": domain});
    let (status, store) = env.post("/ecommerce/stores", body).await;
    assert_eq!(status, 200, "{store}");
    store
}

async fn with_product(env: &Env, store: &str, id: &str) {
    let body = json!({"id": id, "title": "Widget", "variants": [{"id": format!("{id}-v"), "title": "Widget", "price": "9.99"}]});
    let (status, product) = env.post(&format!("/ecommerce/stores/{store}/products"), body).await;
    assert_eq!(status, 200, "{product}");
}

fn order(id: &str, customer: Value, lines: Value) -> Value {
    json!({"id": id, "customer": customer, "currency_code": "EUR", "order_total": "19.98", "lines": lines})
}

fn line(id: &str, product: &str, quantity: i64) -> Value {
    json!({"id": id, "product_id": product, "product_variant_id": format!("{product}-v"), "quantity": quantity, "price": 9.99})
}

#[tokio::test]
async fn stores_have_unique_domains_and_a_permanent_audience() {
    let env = Env::new().await;
    let store = with_store(&env, "s1", "shop.example.com").await;
    assert_eq!((store["list_id"].as_str(), store["currency_code"].as_str()), (Some(env.list.as_str()), Some("EUR")));

    let (status, body) = env
        .post("/ecommerce/stores", json!({"id": "s1", "list_id": env.list, "name": "S", "currency_code": "EUR"}))
        .await;
    assert_eq!((status, body["title"].as_str()), (400, Some("Bad Request")));
    let duplicate =
        json!({"id": "s2", "list_id": env.list, "name": "S", "currency_code": "EUR", "domain": "Shop.Example.com"});
    let (status, body) = env.post("/ecommerce/stores", duplicate).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "We were unable to process the request. A store with the domain shop.example.com already exists in the account"
    );
    let (status, body) = env.post("/ecommerce/stores", json!({"id": "s3", "list_id": env.list, "name": "S"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"], json!([{"field": "", "message": "Required fields were not provided: currency_code"}]));
    let (status, _) = env
        .post("/ecommerce/stores", json!({"id": "s4", "list_id": "nope", "name": "S", "currency_code": "EUR"}))
        .await;
    assert_eq!(status, 400);

    let other_list = env.admin.create_list("Other");
    let (status, body) = env.patch("/ecommerce/stores/s1", json!({"list_id": other_list})).await;
    assert_eq!((status, body["title"].as_str()), (400, Some("Invalid Resource")));
    let (status, patched) = env.patch("/ecommerce/stores/s1", json!({"list_id": env.list, "name": "Renamed"})).await;
    assert_eq!((status, patched["name"].as_str()), (200, Some("Renamed")));

    with_product(&env, "s1", "p1").await;
    assert_eq!(env.delete("/ecommerce/stores/s1").await.0, 204);
    assert_eq!(env.get("/ecommerce/stores/s1/products/p1").await.0, 404);
    assert!(env.admin.store("s1").is_none());
    assert_eq!(env.get("/ecommerce/stores").await.1["total_items"], 0);
}

#[tokio::test]
async fn products_need_variants_and_unique_ids() {
    let env = Env::new().await;
    with_store(&env, "s", "").await;
    let products = "/ecommerce/stores/s/products";
    let (_, body) = env.post(products, json!({"id": "p", "title": "T"})).await;
    assert_eq!(body["errors"][0]["message"], "Required fields were not provided: variants");
    let (status, body) = env.post(products, json!({"id": "p", "title": "T", "variants": []})).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (400, Some("variants")));
    let (_, body) = env.post(products, json!({"id": "p", "title": "T", "variants": [{"id": "v"}]})).await;
    assert_eq!(body["errors"][0]["message"], "Required fields were not provided: variants.0.title");

    with_product(&env, "s", "p").await;
    let (status, body) =
        env.post(products, json!({"id": "p", "title": "T", "variants": [{"id": "v", "title": "V"}]})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "We were unable to process the request. A product with the provided ID already exists in the account."
    );
    let (_, product) = env.get(&format!("{products}/p")).await;
    assert_eq!(
        (product["variants"][0]["price"].clone(), product["currency_code"].clone()),
        (json!(9.99), json!("EUR"))
    );

    // PUT creates (with POST's requirements) and updates; variants are upserted.
    assert_eq!(env.put(&format!("{products}/q"), json!({"id": "q", "title": "Q"})).await.0, 400);
    let (status, _) = env
        .put(&format!("{products}/q"), json!({"id": "q", "title": "Q", "variants": [{"id": "q1", "title": "Q1"}]}))
        .await;
    assert_eq!(status, 200);
    let (_, updated) = env
        .put(&format!("{products}/q"), json!({"id": "q", "title": "Q2", "variants": [{"id": "q2", "title": "Q2"}]}))
        .await;
    assert_eq!(updated["title"], "Q2");
    assert_eq!(updated["variants"].as_array().unwrap().len(), 2);

    let variants = format!("{products}/q/variants");
    assert_eq!(env.post(&variants, json!({"id": "q1", "title": "again"})).await.0, 400);
    assert_eq!(env.put(&format!("{variants}/q3"), json!({"id": "q3", "title": "Q3", "price": 5})).await.0, 200);
    let (_, patched) = env.patch(&format!("{variants}/q3"), json!({"price": "6.50"})).await;
    assert_eq!(patched["price"], json!(6.5));
    assert_eq!(env.get(&variants).await.1["total_items"], 3);
    assert_eq!(env.delete(&format!("{variants}/q3")).await.0, 204);
    assert_eq!(env.admin.products("s").len(), 2);
}

#[tokio::test]
async fn orders_need_products_and_unique_ids() {
    let env = Env::new().await;
    with_store(&env, "s", "").await;
    let orders = "/ecommerce/stores/s/orders";
    let customer = json!({"id": "c1", "email_address": "buyer@example.com", "opt_in_status": false});
    let (status, body) = env.post(orders, order("o1", customer.clone(), json!([line("l1", "p", 2)]))).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (400, Some("A product with the provided ID does not exist in the account for this list."))
    );

    with_product(&env, "s", "p").await;
    let mut missing = order("o1", customer.clone(), json!([line("l1", "p", 2)]));
    missing.as_object_mut().unwrap().remove("currency_code");
    let (_, body) = env.post(orders, missing).await;
    assert_eq!(body["errors"], json!([{"field": "", "message": "Required fields were not provided: currency_code"}]));

    let (status, created) = env.post(orders, order("o1", customer.clone(), json!([line("l1", "p", 2)]))).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["order_total"], json!(19.98));
    assert_eq!(created["customer"]["email_address"], "buyer@example.com");
    assert_eq!(created["lines"][0]["product_title"], "Widget");
    let (status, body) = env.post(orders, order("o1", json!({"id": "c1"}), json!([line("l1", "p", 2)]))).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "We were unable to process the request. An order with the provided ID already exists in the account."
    );

    let (_, customer) = env.get("/ecommerce/stores/s/customers/c1").await;
    assert_eq!((customer["orders_count"].as_u64(), customer["total_spent"].clone()), (Some(1), json!(19.98)));
    // A new customer without an email address is refused.
    let (_, body) = env.post(orders, order("o2", json!({"id": "c2"}), json!([line("l1", "p", 1)]))).await;
    assert_eq!(body["errors"][0]["message"], "Required fields were not provided: customer.email_address");
}

#[tokio::test]
async fn put_upserts_orders_and_patch_merges_lines() {
    let env = Env::new().await;
    with_store(&env, "s", "").await;
    with_product(&env, "s", "p").await;
    with_product(&env, "s", "r").await;
    let path = "/ecommerce/stores/s/orders/o1";
    let customer = json!({"id": "c1", "email_address": "b@example.com", "opt_in_status": true});
    assert_eq!(env.put(path, json!({"id": "o1", "order_total": 1})).await.0, 400, "a new order needs POST's fields");
    let mut body = order("o1", customer, json!([line("l1", "p", 1)]));
    body["promos"] = json!([{"code": "A", "amount_discounted": 1, "type": "fixed"}]);
    let (status, _) = env.put(path, body).await;
    assert_eq!(status, 200);

    let patch = json!({"lines": [{"id": "l1", "quantity": 3}, line("l2", "r", 1)],
                       "promos": [{"code": "B", "amount_discounted": "2.5", "type": "percentage"}],
                       "financial_status": "paid"});
    let (status, patched) = env.patch(path, patch).await;
    assert_eq!(status, 200, "{patched}");
    let lines = patched["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["id"].as_str(), lines[0]["quantity"].as_i64(), lines[0]["price"].clone()),
        (Some("l1"), Some(3), json!(9.99))
    );
    assert_eq!(patched["promos"], json!([{"code": "B", "amount_discounted": 2.5, "type": "percentage"}]));
    assert_eq!(patched["financial_status"], "paid");
    let (status, _) = env.patch(path, json!({"lines": [{"id": "l3", "quantity": 1}]})).await;
    assert_eq!(status, 400, "a new line needs every field");
    let (status, body) = env.patch(path, json!({"lines": [{"id": "l1", "product_id": "zzz"}]})).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (400, Some("A product with the provided ID does not exist in the account for this list."))
    );

    let (_, replaced) = env.put(path, json!({"id": "o1", "fulfillment_status": "shipped"})).await;
    assert_eq!(
        (replaced["fulfillment_status"].as_str(), replaced["lines"].as_array().unwrap().len()),
        (Some("shipped"), 2)
    );

    let lines_path = format!("{path}/lines");
    assert_eq!(env.post(&lines_path, line("l3", "p", 1)).await.0, 200);
    assert_eq!(env.post(&lines_path, line("l3", "p", 1)).await.0, 400);
    assert_eq!(env.patch(&format!("{lines_path}/l3"), json!({"quantity": 7})).await.1["quantity"], 7);
    assert_eq!(env.delete(&format!("{lines_path}/l3")).await.0, 204);
    assert_eq!(env.get(&lines_path).await.1["total_items"], 2);
    assert_eq!(env.admin.orders("s").len(), 1);
    assert_eq!(env.delete(path).await.0, 204);
    assert_eq!(env.get(path).await.0, 404);
}

#[tokio::test]
async fn customers_create_and_upgrade_members_but_never_overwrite() {
    let env = Env::new().await;
    with_store(&env, "s", "").await;
    let customers = "/ecommerce/stores/s/customers";
    let member = |email: &str| env.admin.member(&env.list, email).map(|m| m["status"].as_str().unwrap().to_string());

    let (status, _) = env
        .post(
            customers,
            json!({"id": "c1", "email_address": "in@example.com", "opt_in_status": true, "first_name": "In"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(member("in@example.com").as_deref(), Some("subscribed"));
    assert_eq!(env.admin.member(&env.list, "in@example.com").unwrap()["merge_fields"]["FNAME"], "In");
    env.post(customers, json!({"id": "c2", "email_address": "out@example.com", "opt_in_status": false})).await;
    assert_eq!(member("out@example.com").as_deref(), Some("transactional"));
    let (status, body) =
        env.post(customers, json!({"id": "c2", "email_address": "out@example.com", "opt_in_status": false})).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (
            400,
            Some(
                "We were unable to process the request. A customer with the provided ID already exists in the account."
            )
        )
    );

    // Opting in later upgrades a transactional member.
    let (status, _) = env.put(&format!("{customers}/c2"), json!({"id": "c2", "opt_in_status": true})).await;
    assert_eq!(status, 200);
    assert_eq!(member("out@example.com").as_deref(), Some("subscribed"));
    // Opting out never downgrades.
    env.patch(&format!("{customers}/c2"), json!({"opt_in_status": false})).await;
    assert_eq!(member("out@example.com").as_deref(), Some("subscribed"));

    // An existing unsubscribed member keeps its status.
    env.put(
        &env.member_path("gone@example.com"),
        json!({"email_address": "gone@example.com", "status_if_new": "unsubscribed"}),
    )
    .await;
    env.put(
        &format!("{customers}/c3"),
        json!({"id": "c3", "email_address": "gone@example.com", "opt_in_status": true}),
    )
    .await;
    assert_eq!(member("gone@example.com").as_deref(), Some("unsubscribed"));

    let (status, _) = env.put(&format!("{customers}/c4"), json!({"id": "c4", "opt_in_status": true})).await;
    assert_eq!(status, 400, "a new customer needs an email address");
    assert_eq!(env.get(customers).await.1["total_items"], 3);
    assert_eq!(env.admin.customers("s").len(), 3);
    assert_eq!(env.delete(&format!("{customers}/c3")).await.0, 204);
}
