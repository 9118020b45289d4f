//! E-commerce orders and their lines. Lines must point at existing products and variants; POST
//! twice is "already exists"; PUT adds or updates; PATCH merges lines by id (never deleting one)
//! and replaces promos wholesale (reference §4.5).

use serde_json::{Map, Value, json};

use super::{Record, Store, already_exists, collection, customers, overlay};
use crate::errors::ApiError;
use crate::lists::List;
use crate::members::WriteCtx;
use crate::query::Query;
use crate::validate::{Checker, Kind, body_object, normalize_numbers, pick};
use crate::webhooks::Outgoing;

/// An order: its fields, its customer and its lines in order.
#[derive(Clone, Debug)]
pub(crate) struct Order {
    /// The order's own fields (money as numbers).
    pub record: Record,
    /// The store customer who placed it (expanded when rendered).
    pub customer_id: String,
    /// Lines by id, in the order they were added.
    pub lines: Vec<(String, Map<String, Value>)>,
}

const FIELDS: &[&str] = &[
    "campaign_id",
    "landing_site",
    "financial_status",
    "fulfillment_status",
    "currency_code",
    "order_total",
    "order_url",
    "discount_total",
    "tax_total",
    "shipping_total",
    "tracking_code",
    "processed_at_foreign",
    "cancelled_at_foreign",
    "updated_at_foreign",
    "shipping_address",
    "billing_address",
    "promos",
    "outreach",
    "tracking_number",
    "tracking_carrier",
    "tracking_url",
];

const MONEY: &[&str] = &["order_total", "discount_total", "tax_total", "shipping_total"];

const RULES: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("customer", Kind::Obj),
    ("campaign_id", Kind::Str),
    ("landing_site", Kind::Str),
    ("financial_status", Kind::Str),
    ("fulfillment_status", Kind::Str),
    ("currency_code", Kind::Str),
    ("order_total", Kind::Num),
    ("order_url", Kind::Str),
    ("discount_total", Kind::Num),
    ("tax_total", Kind::Num),
    ("shipping_total", Kind::Num),
    ("tracking_code", Kind::Enum(&["prec"])),
    ("processed_at_foreign", Kind::Str),
    ("cancelled_at_foreign", Kind::Str),
    ("updated_at_foreign", Kind::Str),
    ("shipping_address", Kind::Obj),
    ("billing_address", Kind::Obj),
    ("promos", Kind::Arr),
    ("lines", Kind::Arr),
    ("outreach", Kind::Obj),
    ("tracking_number", Kind::Str),
    ("tracking_carrier", Kind::Str),
    ("tracking_url", Kind::Str),
];

const LINE_FIELDS: &[&str] = &["product_id", "product_variant_id", "quantity", "price", "discount"];
const LINE_REQUIRED: &[&str] = &["id", "product_id", "product_variant_id", "quantity", "price"];
const LINE_RULES: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("product_id", Kind::Str),
    ("product_variant_id", Kind::Str),
    ("quantity", Kind::Int),
    ("price", Kind::Num),
    ("discount", Kind::Num),
    ("product", Kind::Obj),
];

/// The error for a line naming an unknown product or variant (observed).
fn product_missing() -> ApiError {
    ApiError::bad_request("A product with the provided ID does not exist in the account for this list.")
}

fn render_line(store: &Store, id: &str, line: &Map<String, Value>) -> Value {
    let text = |k: &str| line.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let product = store.products.get(&text("product_id"));
    let variant = product.and_then(|p| p.variant(&text("product_variant_id")));
    let title = |r: Option<&Record>| r.and_then(|r| r.fields.get("title")).cloned().unwrap_or(json!(""));
    json!({
        "id": id,
        "product_id": text("product_id"),
        "product_title": title(product.map(|p| &p.record)),
        "product_variant_id": text("product_variant_id"),
        "product_variant_title": title(variant),
        "image_url": variant.and_then(|v| v.fields.get("image_url")).cloned().unwrap_or(json!("")),
        "quantity": line.get("quantity").cloned().unwrap_or(json!(0)),
        "price": line.get("price").cloned().unwrap_or(json!(0)),
        "discount": line.get("discount").cloned().unwrap_or(json!(0)),
        "_links": [],
    })
}

/// As the API returns it, with the customer and lines expanded.
pub(crate) fn render(store: &Store, id: &str, order: &Order) -> Value {
    let template = json!({"campaign_id": "", "landing_site": "", "financial_status": "", "fulfillment_status": "",
        "currency_code": "", "order_total": 0, "order_url": "", "discount_total": 0, "tax_total": 0,
        "shipping_total": 0, "processed_at_foreign": "", "cancelled_at_foreign": "", "updated_at_foreign": "",
        "shipping_address": {}, "billing_address": {}, "promos": [], "tracking_number": "", "tracking_carrier": "",
        "tracking_url": ""});
    let mut out = overlay(template, &order.record.fields);
    let customer = store
        .customers
        .get(&order.customer_id)
        .map(|c| customers::render(store, &order.customer_id, c))
        .unwrap_or_else(|| json!({"id": order.customer_id}));
    out.insert("id".into(), Value::from(id));
    out.insert("store_id".into(), Value::from(store.id.clone()));
    out.insert("customer".into(), customer);
    out.insert("lines".into(), order.lines.iter().map(|(l, line)| render_line(store, l, line)).collect());
    out.insert("_links".into(), json!([]));
    Value::Object(out)
}

/// Checks one line: the full set for a new line, types for all.
fn check_line(c: &mut Checker, line: &Value, prefix: &str, new: bool) {
    let Some(line) = line.as_object() else {
        c.error(prefix, crate::validate::schema_message("object", line));
        return;
    };
    c.require(line, prefix, if new { LINE_REQUIRED } else { &["id"] });
    c.check_all(line, prefix, LINE_RULES);
}

/// Checks an order body. `required` are the order fields that must be present; `existing` the
/// order being updated (its lines need not repeat every field); `known_customer` whether a
/// customer id is already in the store (a new one needs an email address).
fn check(store: &Store, obj: &Map<String, Value>, required: &[&str], existing: Option<&Order>) -> Result<(), ApiError> {
    let mut c = Checker::new();
    c.require(obj, "", required);
    c.check_all(obj, "", RULES);
    if let Some(Value::Object(customer)) = obj.get("customer") {
        let known = customer.get("id").and_then(Value::as_str).is_some_and(|id| store.customers.contains_key(id));
        let needed: &[&str] = if known { &["id"] } else { &["id", "email_address"] };
        customers::check(&mut c, customer, "customer", needed);
    }
    for (i, line) in obj.get("lines").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let id = line.get("id").and_then(Value::as_str).unwrap_or_default();
        let new = existing.is_none_or(|o| !o.lines.iter().any(|(l, _)| l == id));
        check_line(&mut c, line, &format!("lines.{i}"), new);
    }
    for (i, promo) in obj.get("promos").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let prefix = format!("promos.{i}");
        match promo.as_object() {
            Some(promo) => {
                c.require(promo, &prefix, &["code", "amount_discounted", "type"]);
                c.check_all(
                    promo,
                    &prefix,
                    &[
                        ("code", Kind::Str),
                        ("amount_discounted", Kind::Num),
                        ("type", Kind::Enum(&["fixed", "percentage"])),
                    ],
                );
            }
            None => c.error(prefix, crate::validate::schema_message("object", promo)),
        }
    }
    c.finish()?;
    if let Some(Value::Object(customer)) = obj.get("customer")
        && let Some(email) = customer.get("email_address").and_then(Value::as_str)
        && !crate::util::valid_email(email.trim())
    {
        return Err(ApiError::invalid_email());
    }
    Ok(())
}

/// Every line (after merging with `existing`) must name an existing product and variant.
fn check_products(store: &Store, lines: &[(String, Map<String, Value>)]) -> Result<(), ApiError> {
    for (_, line) in lines {
        let product = line.get("product_id").and_then(Value::as_str).and_then(|p| store.products.get(p));
        let variant =
            product.and_then(|p| line.get("product_variant_id").and_then(Value::as_str).and_then(|v| p.variant(v)));
        if variant.is_none() {
            return Err(product_missing());
        }
    }
    Ok(())
}

fn line_fields(line: &Map<String, Value>) -> Map<String, Value> {
    let mut fields = pick(line, LINE_FIELDS);
    normalize_numbers(&mut fields, &["price", "discount"]);
    fields
}

/// `current` lines with `given` merged in by id (updated in place, new ones appended).
fn merge_lines(current: &[(String, Map<String, Value>)], given: Option<&Value>) -> Vec<(String, Map<String, Value>)> {
    let mut lines = current.to_vec();
    for line in given.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object) {
        let id = line["id"].as_str().unwrap_or_default().to_string();
        let fields = line_fields(line);
        match lines.iter_mut().find(|(l, _)| *l == id) {
            Some((_, existing)) => existing.extend(fields),
            None => lines.push((id, fields)),
        }
    }
    lines
}

fn order_fields(obj: &Map<String, Value>) -> Map<String, Value> {
    let mut fields = pick(obj, FIELDS);
    normalize_numbers(&mut fields, MONEY);
    if let Some(Value::Array(promos)) = fields.get_mut("promos") {
        for promo in promos.iter_mut().filter_map(Value::as_object_mut) {
            normalize_numbers(promo, &["amount_discounted"]);
        }
    }
    fields
}

/// Creates the order's customer if new (or updates it with the fields sent); returns its id.
fn ensure_customer(
    store: &mut Store,
    list: &mut List,
    seq: &mut u64,
    obj: &Map<String, Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Option<String> {
    let customer = obj.get("customer")?.as_object()?;
    let id = customer.get("id")?.as_str()?.to_string();
    if !store.customers.contains_key(&id) || customer.len() > 1 {
        customers::upsert(store, list, seq, &id, customer, ctx, out);
    }
    Some(id)
}

fn order<'a>(store: &'a Store, id: &str) -> Result<&'a Order, ApiError> {
    store.orders.get(id).ok_or_else(ApiError::not_found)
}

/// GET …/orders (filter `customer_id`).
pub(crate) fn list(store: &Store, query: &Query) -> Result<Value, ApiError> {
    let wanted = query.get("customer_id").filter(|c| !c.is_empty());
    let items = store
        .orders
        .iter()
        .filter(|(_, o)| wanted.is_none_or(|w| o.customer_id == w))
        .map(|(id, o)| (o.record.seq, render(store, id, o)))
        .collect();
    collection("orders", items, query, json!({"store_id": store.id}))
}

/// GET …/orders/{id}.
pub(crate) fn get(store: &Store, id: &str) -> Result<Value, ApiError> {
    order(store, id).map(|o| render(store, id, o))
}

/// POST …/orders.
pub(crate) fn create(
    store: &mut Store,
    list: &mut List,
    seq: &mut u64,
    body: Option<&Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<Value, ApiError> {
    let obj = body_object(body)?;
    check(store, obj, &["id", "customer", "currency_code", "order_total", "lines"], None)?;
    let id = obj["id"].as_str().unwrap_or_default().to_string();
    if store.orders.contains_key(&id) {
        return Err(already_exists("An order"));
    }
    save(store, list, seq, &id, obj, ctx, out)
}

/// Stores a checked order (new or merged into the existing one).
fn save(
    store: &mut Store,
    list: &mut List,
    seq: &mut u64,
    id: &str,
    obj: &Map<String, Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<Value, ApiError> {
    let current = store.orders.get(id).map(|o| o.lines.clone()).unwrap_or_default();
    let lines = merge_lines(&current, obj.get("lines"));
    check_products(store, &lines)?;
    let customer_id = ensure_customer(store, list, seq, obj, ctx, out);
    let fields = order_fields(obj);
    let previous = store.orders.get(id).map(|o| o.customer_id.clone());
    match store.orders.get_mut(id) {
        Some(order) => {
            order.record.update(fields);
            order.lines = lines;
            if let Some(customer_id) = customer_id {
                order.customer_id = customer_id;
            }
        }
        None => {
            *seq += 1;
            let order =
                Order { record: Record::new(*seq, fields), customer_id: customer_id.unwrap_or_default(), lines };
            store.orders.insert(id.to_string(), order);
        }
    }
    let now = store.orders.get(id).map(|o| o.customer_id.clone()).unwrap_or_default();
    if previous.as_deref() != Some(now.as_str()) {
        if let Some(ids) = previous.and_then(|p| store.orders_by_customer.get_mut(&p)) {
            ids.remove(id);
        }
        store.orders_by_customer.entry(now).or_default().insert(id.to_string());
    }
    get(store, id)
}

/// PUT …/orders/{id}: add (POST's requirements) or update (PATCH's merging).
pub(crate) fn put(
    store: &mut Store,
    list: &mut List,
    seq: &mut u64,
    id: &str,
    body: Option<&Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<Value, ApiError> {
    let obj = body_object(body)?;
    let existing = store.orders.get(id).cloned();
    match &existing {
        Some(order) => check(store, obj, &["id"], Some(order))?,
        None => check(store, obj, &["id", "customer", "currency_code", "order_total", "lines"], None)?,
    }
    if obj.get("id").and_then(Value::as_str).is_some_and(|given| given != id) {
        return Err(ApiError::invalid_field("id", "The id in the body does not match the id in the URL."));
    }
    save(store, list, seq, id, obj, ctx, out)
}

/// PATCH …/orders/{id}.
pub(crate) fn patch(
    store: &mut Store,
    list: &mut List,
    seq: &mut u64,
    id: &str,
    body: Option<&Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<Value, ApiError> {
    let existing = order(store, id)?.clone();
    let obj = body_object(body)?;
    check(store, obj, &[], Some(&existing))?;
    let mut obj = obj.clone();
    obj.remove("id");
    save(store, list, seq, id, &obj, ctx, out)
}

/// DELETE …/orders/{id}.
pub(crate) fn delete(store: &mut Store, id: &str) -> Result<(), ApiError> {
    let order = store.orders.remove(id).ok_or_else(ApiError::not_found)?;
    if let Some(ids) = store.orders_by_customer.get_mut(&order.customer_id) {
        ids.remove(id);
    }
    Ok(())
}

/// GET …/orders/{id}/lines.
pub(crate) fn list_lines(store: &Store, order_id: &str, query: &Query) -> Result<Value, ApiError> {
    let order = order(store, order_id)?;
    let items = order.lines.iter().enumerate().map(|(i, (l, line))| (i as u64, render_line(store, l, line))).collect();
    collection("lines", items, query, json!({"store_id": store.id, "order_id": order_id}))
}

/// GET …/orders/{id}/lines/{line_id}.
pub(crate) fn get_line(store: &Store, order_id: &str, id: &str) -> Result<Value, ApiError> {
    let order = order(store, order_id)?;
    order
        .lines
        .iter()
        .find(|(l, _)| l == id)
        .map(|(l, line)| render_line(store, l, line))
        .ok_or_else(ApiError::not_found)
}

/// POST …/orders/{id}/lines.
pub(crate) fn create_line(store: &mut Store, order_id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let order = order(store, order_id)?;
    let obj = body_object(body)?;
    let mut c = Checker::new();
    check_line(&mut c, &Value::Object(obj.clone()), "", true);
    c.finish()?;
    let id = obj["id"].as_str().unwrap_or_default().to_string();
    if order.lines.iter().any(|(l, _)| *l == id) {
        return Err(already_exists("An order line"));
    }
    let lines = merge_lines(&order.lines, Some(&json!([obj])));
    check_products(store, &lines)?;
    let order = store.orders.get_mut(order_id).ok_or_else(ApiError::not_found)?;
    order.lines = lines;
    order.record.update(Map::new());
    get_line(store, order_id, &id)
}

/// PATCH …/orders/{id}/lines/{line_id}.
pub(crate) fn patch_line(store: &mut Store, order_id: &str, id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    get_line(store, order_id, id)?;
    let obj = body_object(body)?;
    let mut c = Checker::new();
    c.check_all(obj, "", LINE_RULES);
    c.finish()?;
    let mut item = obj.clone();
    item.insert("id".into(), Value::from(id));
    let lines = merge_lines(&order(store, order_id)?.lines, Some(&json!([item])));
    check_products(store, &lines)?;
    let order = store.orders.get_mut(order_id).ok_or_else(ApiError::not_found)?;
    order.lines = lines;
    order.record.update(Map::new());
    get_line(store, order_id, id)
}

/// DELETE …/orders/{id}/lines/{line_id}.
pub(crate) fn delete_line(store: &mut Store, order_id: &str, id: &str) -> Result<(), ApiError> {
    let order = store.orders.get_mut(order_id).ok_or_else(ApiError::not_found)?;
    let before = order.lines.len();
    order.lines.retain(|(l, _)| l != id);
    if order.lines.len() == before { Err(ApiError::not_found()) } else { Ok(()) }
}
