//! Sending logical requests: each resource's replay-safe way of writing.

use std::collections::{HashMap, HashSet};

use engine::connector::{TargetRequest, WriteOutcome};
use reqwest::Method;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use crate::batches::{self, OpResult, Pace};
use crate::client::{McClient, McError};
use crate::resources;

/// What a connection remembers between writes, to avoid repeating lookups.
#[derive(Default)]
pub struct Caches {
    /// Merge-field tags known to exist, per audience (filled on first write to it).
    merge_fields: Mutex<HashMap<String, HashSet<String>>>,
    /// (store path, product, variant) known to exist: ensured, written, or listed.
    variants: Mutex<HashSet<(String, String, String)>>,
    /// Store paths whose products were all listed into `variants` once.
    listed_stores: Mutex<HashSet<String>>,
    /// How long this account's batch operations take.
    pace: Pace,
}

fn failed(e: McError) -> WriteOutcome {
    WriteOutcome::Failed { transient: e.transient, status: e.status, class: e.class(), message: e.to_string() }
}

fn written(status: u16, body: &Value) -> WriteOutcome {
    let target_id =
        body.get("id").and_then(|v| v.as_str().map(str::to_owned).or_else(|| v.as_i64().map(|n| n.to_string())));
    WriteOutcome::Written { target_id, status: Some(status) }
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).unwrap_or(Method::PUT)
}

pub async fn write(client: &McClient, caches: &Caches, request: &TargetRequest) -> WriteOutcome {
    let resource = request.options.get("resource").and_then(Value::as_str).unwrap_or("");
    let result = match resource {
        resources::MEMBER => member(client, caches, request).await,
        resources::STORE => store(client, request).await,
        resources::ORDER => order(client, caches, request).await,
        resources::PRODUCT => {
            let sent = client.send(method(&request.method), &request.path, &[], Some(&request.body)).await;
            if sent.is_ok() {
                remember_variants(caches, request).await;
            }
            sent
        }
        _ => client.send(method(&request.method), &request.path, &[], Some(&request.body)).await,
    };
    match result {
        Ok((status, body)) => written(status, &body),
        Err(e) => failed(e),
    }
}

/// PUT the member; create missing merge fields first; on a compliance refusal either report it
/// or, when the pipeline asks, re-send as `pending` (double opt-in).
async fn member(client: &McClient, caches: &Caches, request: &TargetRequest) -> Result<(u16, Value), McError> {
    let list_id = request.path.split('/').nth(2).unwrap_or_default().to_owned();
    if let Some(Value::Object(merges)) = request.body.get("merge_fields") {
        ensure_merge_fields(client, caches, &list_id, merges).await?;
    }
    match client.send(Method::PUT, &request.path, &[], Some(&request.body)).await {
        Err(e) if e.is_compliance() && request.options.get("on_compliance") == Some(&json!("pending")) => {
            let mut body = request.body.clone();
            body["status_if_new"] = json!("pending");
            client.send(Method::PUT, &request.path, &[], Some(&body)).await
        }
        other => other,
    }
}

/// The merge-field type a value needs.
fn merge_type(value: &Value) -> &'static str {
    match value {
        Value::Object(o) if o.contains_key("addr1") => "address",
        Value::Number(_) => "number",
        _ => "text",
    }
}

async fn ensure_merge_fields(
    client: &McClient,
    caches: &Caches,
    list_id: &str,
    merges: &Map<String, Value>,
) -> Result<(), McError> {
    let mut known = caches.merge_fields.lock().await;
    if !known.contains_key(list_id) {
        let path = format!("/lists/{list_id}/merge-fields");
        let (_, body) = client
            .send(Method::GET, &path, &[("count", "1000".to_owned()), ("fields", "merge_fields.tag".to_owned())], None)
            .await?;
        let tags = body["merge_fields"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["tag"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        known.insert(list_id.to_owned(), tags);
    }
    let tags = known.get_mut(list_id).expect("inserted above");
    for (tag, value) in merges {
        if tags.contains(tag) {
            continue;
        }
        let name = {
            let mut c = tag.to_lowercase().chars().collect::<Vec<_>>();
            if let Some(first) = c.first_mut() {
                *first = first.to_ascii_uppercase();
            }
            c.into_iter().collect::<String>()
        };
        let body = json!({"tag": tag, "name": name, "type": merge_type(value), "required": false, "public": false});
        tracing::info!(list_id, tag, "Creating a missing merge field.");
        match client.send(Method::POST, &format!("/lists/{list_id}/merge-fields"), &[], Some(&body)).await {
            Ok(_) => {}
            // A retry of a create that was applied but never answered (or another writer was
            // first): the field is there, which is all this wants.
            Err(e) if e.already_exists() => {}
            Err(e) => return Err(e),
        }
        tags.insert(tag.clone());
    }
    Ok(())
}

/// Stores have no PUT: GET, then POST when absent or PATCH when present. A store's audience
/// cannot change, so a store linked to another audience is a permanent, explained failure.
async fn store(client: &McClient, request: &TargetRequest) -> Result<(u16, Value), McError> {
    match client.get_optional(&request.path).await? {
        None => match client.send(Method::POST, "/ecommerce/stores", &[], Some(&request.body)).await {
            // A retry of a create that was applied but never answered: the store is there now.
            Err(e) if e.already_exists() => match client.get_optional(&request.path).await? {
                Some(existing) => update_store(client, request, &existing).await,
                None => Err(e),
            },
            other => other,
        },
        Some(existing) => update_store(client, request, &existing).await,
    }
}

/// PATCHes an existing store, which must be linked to the wanted audience.
async fn update_store(client: &McClient, request: &TargetRequest, existing: &Value) -> Result<(u16, Value), McError> {
    let wanted_list = request.body["list_id"].as_str().unwrap_or("");
    let linked = existing["list_id"].as_str().unwrap_or("");
    if linked != wanted_list {
        return Err(McError {
            status: Some(400),
            title: "Store Linked To Another Audience".into(),
            detail: format!(
                "store `{}` is linked to audience `{linked}`, not `{wanted_list}`; a store's audience cannot change: use another store id, or delete the store (and its orders) in Mailchimp first",
                request.body["id"].as_str().unwrap_or("")
            ),
            errors: Vec::new(),
            transient: false,
        });
    }
    let mut patch = request.body.clone();
    if let Some(o) = patch.as_object_mut() {
        o.remove("id");
        o.remove("list_id");
    }
    client.send(Method::PATCH, &request.path, &[], Some(&patch)).await
}

/// `/ecommerce/stores/{id}` of a request to `/ecommerce/stores/{id}/{kind}/{key}`.
fn store_path_of(request: &TargetRequest) -> String {
    request.path.rsplitn(3, '/').nth(2).unwrap_or_default().to_owned()
}

/// Orders: the products of every line are ensured first (an order naming an unknown product is
/// refused), then the order is written under its stable id: PUT when configured, otherwise POST
/// and, on "already exists", PATCH. Either way a replay leaves one order.
async fn order(client: &McClient, caches: &Caches, request: &TargetRequest) -> Result<(u16, Value), McError> {
    let store_path = store_path_of(request);
    if let Some(lines) = request.body["lines"].as_array() {
        for line in lines {
            ensure_product(client, caches, &store_path, line).await?;
        }
    }
    if request.options.get("put_orders") == Some(&json!(true)) {
        return client.send(Method::PUT, &request.path, &[], Some(&request.body)).await;
    }
    match client.send(Method::POST, &format!("{store_path}/orders"), &[], Some(&request.body)).await {
        Err(e) if e.already_exists() => {
            let mut patch = request.body.clone();
            if let Some(o) = patch.as_object_mut() {
                o.remove("id");
            }
            client.send(Method::PATCH, &request.path, &[], Some(&patch)).await
        }
        other => other,
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned).or_else(|| v.as_i64().map(|n| n.to_string()))
}

async fn ensure_product(client: &McClient, caches: &Caches, store_path: &str, line: &Value) -> Result<(), McError> {
    let (Some(product), Some(variant)) = (text(&line["product_id"]), text(&line["product_variant_id"])) else {
        return Ok(());
    };
    let key = (store_path.to_owned(), product.clone(), variant.clone());
    if caches.variants.lock().await.contains(&key) {
        return Ok(());
    }
    let title = line.get("product_title").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| product.clone());
    let product_path = format!("{store_path}/products/{product}");
    match client.get_optional(&product_path).await? {
        None => {
            let body = json!({"id": product, "title": title, "variants": [{"id": variant, "title": title}]});
            client.send(Method::PUT, &product_path, &[], Some(&body)).await?;
        }
        Some(existing) => {
            let has_variant = existing["variants"]
                .as_array()
                .is_some_and(|vs| vs.iter().any(|v| text(&v["id"]).as_deref() == Some(variant.as_str())));
            if !has_variant {
                let body = json!({"id": variant, "title": title});
                client.send(Method::PUT, &format!("{product_path}/variants/{variant}"), &[], Some(&body)).await?;
            }
        }
    }
    caches.variants.lock().await.insert(key);
    Ok(())
}

/// Notes the variants of a product just written, so orders naming them need no lookup.
async fn remember_variants(caches: &Caches, request: &TargetRequest) {
    let Some(product) = text(&request.body["id"]) else { return };
    let store_path = store_path_of(request);
    let mut known = caches.variants.lock().await;
    for variant in request.body["variants"].as_array().into_iter().flatten() {
        if let Some(id) = text(&variant["id"]) {
            known.insert((store_path.clone(), product.clone(), id));
        }
    }
}

/// Unknown products in one bulk of orders past which the store's whole product list is read
/// (a thousand per call) instead of looking each one up.
const LIST_PRODUCTS_PAST: usize = 20;

/// Reads every product of a store into the variant cache, once per connection and store.
async fn list_products(client: &McClient, caches: &Caches, store_path: &str) -> Result<(), McError> {
    if !caches.listed_stores.lock().await.insert(store_path.to_owned()) {
        return Ok(());
    }
    let path = format!("{store_path}/products");
    let mut offset = 0;
    loop {
        let query = [
            ("count", "1000".to_owned()),
            ("offset", offset.to_string()),
            ("fields", "total_items,products.id,products.variants.id".to_owned()),
        ];
        let (_, page) = client.send(Method::GET, &path, &query, None).await?;
        let products = page["products"].as_array().cloned().unwrap_or_default();
        let mut known = caches.variants.lock().await;
        for p in &products {
            let Some(product) = text(&p["id"]) else { continue };
            for v in p["variants"].as_array().into_iter().flatten() {
                if let Some(variant) = text(&v["id"]) {
                    known.insert((store_path.to_owned(), product.clone(), variant));
                }
            }
        }
        offset += products.len();
        if products.is_empty() || offset as u64 >= page["total_items"].as_u64().unwrap_or(0) {
            return Ok(());
        }
    }
}

/// Ensures the products of every line of `orders` exist; returns, per order, the error that
/// keeps it from being sent. Unknown products are looked up once each, or, when there are many,
/// the store's product list is read first.
async fn ensure_order_products(client: &McClient, caches: &Caches, orders: &[TargetRequest]) -> Vec<Option<McError>> {
    let lines = |r: &TargetRequest| r.body["lines"].as_array().cloned().unwrap_or_default();
    let key_of = |store: &str, line: &Value| {
        Some((store.to_owned(), text(&line["product_id"])?, text(&line["product_variant_id"])?))
    };
    let unknown: HashSet<(String, String, String)> = {
        let known = caches.variants.lock().await;
        orders
            .iter()
            .flat_map(|r| {
                let store = store_path_of(r);
                lines(r).iter().filter_map(|l| key_of(&store, l)).collect::<Vec<_>>()
            })
            .filter(|k| !known.contains(k))
            .collect()
    };
    let mut stores: Vec<&String> = unknown.iter().map(|(s, _, _)| s).collect();
    stores.sort();
    stores.dedup();
    for store in stores {
        if unknown.iter().filter(|(s, _, _)| s == store).count() > LIST_PRODUCTS_PAST
            && let Err(e) = list_products(client, caches, store).await
        {
            return orders.iter().map(|_| Some(e.clone())).collect();
        }
    }
    let mut failed: HashMap<(String, String, String), McError> = HashMap::new();
    let mut outcomes = Vec::with_capacity(orders.len());
    for r in orders {
        let store = store_path_of(r);
        let mut error = None;
        for line in lines(r) {
            let Some(key) = key_of(&store, &line) else { continue };
            if let Some(e) = failed.get(&key) {
                error = Some(e.clone());
                break;
            }
            if let Err(e) = ensure_product(client, caches, &store, &line).await {
                failed.insert(key, e.clone());
                error = Some(e);
                break;
            }
        }
        outcomes.push(error);
    }
    outcomes
}

/// The outcome of one batch operation; the variants of a written product are remembered.
async fn op_outcome(caches: &Caches, request: &TargetRequest, result: Option<&OpResult>) -> WriteOutcome {
    let Some(result) = result else {
        return WriteOutcome::Failed {
            transient: true,
            status: None,
            class: "batch".into(),
            message: "the batch results hold nothing for this record".into(),
        };
    };
    if !(200..300).contains(&result.status) {
        return failed(McError::from_operation(result.status, &result.response));
    }
    if request.options.get("resource") == Some(&json!(resources::PRODUCT)) {
        remember_variants(caches, request).await;
    }
    let body = serde_json::from_str(&result.response).unwrap_or(Value::Null);
    written(result.status, &body)
}

/// Products, e-commerce customers or orders of one store in one batch operation (`/batches`),
/// each result mapped back to its request by operation id, so the ledger, the audit trail and
/// dead letters stay exact per record. Writes are the same replay-safe ones as one by one:
/// products and customers are PUT; orders have their products ensured first, then are POSTed
/// (or PUT with `put_orders`), and those Mailchimp already has are PATCHed in a second batch.
pub async fn ecommerce_bulk(
    client: &McClient,
    caches: &Caches,
    requests: &[TargetRequest],
    put_orders: bool,
) -> Vec<WriteOutcome> {
    let is_order = |r: &TargetRequest| r.options.get("resource") == Some(&json!(resources::ORDER));
    let orders: Vec<usize> = (0..requests.len()).filter(|&i| is_order(&requests[i])).collect();
    let order_requests: Vec<TargetRequest> = orders.iter().map(|&i| requests[i].clone()).collect();
    let mut blocked: Vec<Option<McError>> = vec![None; requests.len()];
    for (i, error) in orders.iter().zip(ensure_order_products(client, caches, &order_requests).await) {
        blocked[*i] = error;
    }

    let mut operations = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        if blocked[i].is_some() {
            continue;
        }
        let op = if is_order(r) && !put_orders {
            batches::operation(i, "POST", &format!("{}/orders", store_path_of(r)), &r.body)
        } else {
            batches::operation(i, &r.method, &r.path, &r.body)
        };
        operations.push(op);
    }
    let results = match operations.is_empty() {
        true => HashMap::new(),
        false => match batches::run(client, &caches.pace, operations).await {
            Ok(results) => results,
            Err(e) => {
                return blocked.into_iter().map(|b| failed(b.unwrap_or_else(|| e.clone()))).collect();
            }
        },
    };

    // Orders Mailchimp already has (a replay, or an update) are PATCHed without their id.
    let exists = |r: &OpResult| r.status == 400 && McError::from_operation(r.status, &r.response).already_exists();
    let again: Vec<usize> =
        orders.iter().copied().filter(|&i| !put_orders && results.get(&i.to_string()).is_some_and(exists)).collect();
    let patch_body = |r: &TargetRequest| {
        let mut body = r.body.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("id");
        }
        body
    };
    let mut patched: HashMap<usize, WriteOutcome> = HashMap::new();
    if again.len() >= BATCH_MIN {
        let ops = again.iter().map(|&i| batches::operation(i, "PATCH", &requests[i].path, &patch_body(&requests[i])));
        match batches::run(client, &caches.pace, ops.collect()).await {
            Ok(results) => {
                for &i in &again {
                    patched.insert(i, op_outcome(caches, &requests[i], results.get(&i.to_string())).await);
                }
            }
            Err(e) => patched.extend(again.iter().map(|&i| (i, failed(e.clone())))),
        }
    } else {
        for &i in &again {
            let outcome =
                match client.send(Method::PATCH, &requests[i].path, &[], Some(&patch_body(&requests[i]))).await {
                    Ok((status, body)) => written(status, &body),
                    Err(e) => failed(e),
                };
            patched.insert(i, outcome);
        }
    }

    let mut outcomes = Vec::with_capacity(requests.len());
    for (i, (r, block)) in requests.iter().zip(blocked).enumerate() {
        let outcome = match (block, patched.remove(&i)) {
            (Some(e), _) => failed(e),
            (None, Some(outcome)) => outcome,
            (None, None) => op_outcome(caches, r, results.get(&i.to_string())).await,
        };
        outcomes.push(outcome);
    }
    outcomes
}

/// The fewest e-commerce writes worth a batch operation. A batch costs three requests (submit,
/// poll, results) and Mailchimp's queueing time, so below this, requests one by one over the
/// connection's parallel slots finish sooner for about the same number of calls.
pub const BATCH_MIN: usize = 100;

/// Member upserts to one audience in one call: batch subscribe (`POST /lists/{id}`) with
/// `update_existing: false`, so it only ever creates (with `status_if_new` as the status) and
/// never touches an existing member's status. Members that already exist come back as
/// `ERROR_CONTACT_EXISTS` and are then updated one by one with the consent-safe PUT. Each
/// member's result is mapped back to its request by email.
pub async fn members_bulk(client: &McClient, caches: &Caches, requests: &[TargetRequest]) -> Vec<WriteOutcome> {
    let Some(list_id) = requests.first().and_then(|r| r.path.split('/').nth(2)).map(str::to_owned) else {
        return Vec::new();
    };
    let mut merges = Map::new();
    for r in requests {
        if let Some(Value::Object(m)) = r.body.get("merge_fields") {
            for (k, v) in m {
                merges.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if let Err(e) = ensure_merge_fields(client, caches, &list_id, &merges).await {
        let outcome = failed(e);
        return requests.iter().map(|_| outcome.clone()).collect();
    }
    let members: Vec<Value> = requests
        .iter()
        .map(|r| {
            let mut m = r.body.clone();
            if let Some(o) = m.as_object_mut() {
                let status = o.remove("status_if_new").unwrap_or(json!("subscribed"));
                o.insert("status".into(), status);
            }
            m
        })
        .collect();
    let body = json!({"members": members, "update_existing": false});
    let response = match client.send(Method::POST, &format!("/lists/{list_id}"), &[], Some(&body)).await {
        Ok((_, v)) => v,
        Err(e) => {
            let outcome = failed(e);
            return requests.iter().map(|_| outcome.clone()).collect();
        }
    };
    let email_of = |v: &Value| v["email_address"].as_str().map(str::to_lowercase);
    let created: HashMap<String, Value> = response["new_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| Some((email_of(m)?, m.clone())))
        .collect();
    let errors: HashMap<String, Value> =
        response["errors"].as_array().into_iter().flatten().filter_map(|e| Some((email_of(e)?, e.clone()))).collect();

    let mut outcomes = Vec::with_capacity(requests.len());
    for r in requests {
        let email = email_of(&r.body).unwrap_or_default();
        let outcome = if let Some(m) = created.get(&email) {
            written(200, m)
        } else if let Some(err) = errors.get(&email) {
            let message = err["error"].as_str().unwrap_or("").to_owned();
            if err["error_code"] == "ERROR_CONTACT_EXISTS" {
                // Exists: update it the consent-safe way.
                match member(client, caches, r).await {
                    Ok((status, body)) => written(status, &body),
                    Err(e) => failed(e),
                }
            } else if message.contains("compliance state") || message.contains("permanently deleted") {
                if r.options.get("on_compliance") == Some(&json!("pending")) {
                    match member(client, caches, r).await {
                        Ok((status, body)) => written(status, &body),
                        Err(e) => failed(e),
                    }
                } else {
                    WriteOutcome::Failed { transient: false, status: Some(400), class: "compliance".into(), message }
                }
            } else {
                let field =
                    err["field"].as_str().filter(|f| !f.is_empty()).map(|f| format!(" ({f})")).unwrap_or_default();
                WriteOutcome::Failed {
                    transient: false,
                    status: Some(400),
                    class: "validation".into(),
                    message: format!("{message}{field}"),
                }
            }
        } else {
            // Neither created nor refused (e.g. a duplicate within the batch): send it alone.
            match member(client, caches, r).await {
                Ok((status, body)) => written(status, &body),
                Err(e) => failed(e),
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}
