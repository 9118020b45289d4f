//! E-commerce customers: add, add-or-update (PUT), patch; and their side effect on the store's
//! audience (reference §4.3).

use serde_json::{Map, Value, json};

use super::{Record, Store, address_template, already_exists, collection, overlay};
use crate::errors::ApiError;
use crate::lists::List;
use crate::members::{WriteCtx, customer_member};
use crate::query::Query;
use crate::util::{as_f64, money, valid_email};
use crate::validate::{Checker, Kind, body_object, pick};
use crate::webhooks::Outgoing;

pub(crate) const FIELDS: &[&str] = &["email_address", "opt_in_status", "company", "first_name", "last_name", "address"];

pub(crate) const RULES: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("email_address", Kind::Str),
    ("opt_in_status", Kind::Bool),
    ("company", Kind::Str),
    ("first_name", Kind::Str),
    ("last_name", Kind::Str),
    ("address", Kind::Obj),
];

/// As the API returns it (order totals are computed from the store's orders).
pub(crate) fn render(store: &Store, id: &str, customer: &Record) -> Value {
    let template = json!({"email_address": "", "opt_in_status": false, "company": "", "first_name": "", "last_name": "",
                          "address": address_template()});
    let mut out = overlay(template, &customer.fields);
    let ids = store.orders_by_customer.get(id).into_iter().flatten();
    let orders: Vec<&super::orders::Order> = ids.filter_map(|o| store.orders.get(o)).collect();
    let total: f64 = orders.iter().map(|o| as_f64(o.record.fields.get("order_total").unwrap_or(&Value::Null))).sum();
    out.insert("id".into(), Value::from(id));
    out.insert("orders_count".into(), Value::from(orders.len()));
    out.insert("total_spent".into(), money(total));
    out.insert("created_at".into(), Value::from(customer.created_at.clone()));
    out.insert("updated_at".into(), Value::from(customer.updated_at.clone()));
    out.insert("_links".into(), json!([]));
    Value::Object(out)
}

/// Checks a customer object; `required` lists what must be present.
pub(crate) fn check(check: &mut Checker, obj: &Map<String, Value>, prefix: &str, required: &[&str]) {
    check.require(obj, prefix, required);
    check.check_all(obj, prefix, RULES);
}

fn email_ok(obj: &Map<String, Value>) -> Result<(), ApiError> {
    match obj.get("email_address").and_then(Value::as_str) {
        Some(email) if !valid_email(email.trim()) => Err(ApiError::invalid_email()),
        _ => Ok(()),
    }
}

/// Stores a customer (new or updated) and applies the member side effect.
pub(crate) fn upsert(
    store: &mut Store,
    list: &mut List,
    seq: &mut u64,
    id: &str,
    obj: &Map<String, Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) {
    let fields = pick(obj, FIELDS);
    match store.customers.get_mut(id) {
        Some(customer) => customer.update(fields),
        None => {
            *seq += 1;
            store.customers.insert(id.to_string(), Record::new(*seq, fields));
        }
    }
    let customer = &store.customers[id].fields;
    let email = customer.get("email_address").and_then(Value::as_str).unwrap_or_default().trim().to_string();
    let opt_in = customer.get("opt_in_status").and_then(Value::as_bool).unwrap_or(false);
    let first = customer.get("first_name").and_then(Value::as_str);
    let last = customer.get("last_name").and_then(Value::as_str);
    if !email.is_empty() {
        customer_member(list, seq, &email, opt_in, (first, last), ctx, out);
    }
}

/// GET …/customers (filter `email_address`).
pub(crate) fn list(store: &Store, query: &Query) -> Result<Value, ApiError> {
    let wanted = query.get("email_address").filter(|e| !e.is_empty()).map(str::to_lowercase);
    let items = store
        .customers
        .iter()
        .filter(|(_, c)| {
            wanted.as_deref().is_none_or(|w| {
                c.fields.get("email_address").and_then(Value::as_str).is_some_and(|e| e.to_lowercase() == w)
            })
        })
        .map(|(id, c)| (c.seq, render(store, id, c)))
        .collect();
    collection("customers", items, query, json!({"store_id": store.id}))
}

/// GET …/customers/{id}.
pub(crate) fn get(store: &Store, id: &str) -> Result<Value, ApiError> {
    store.customers.get(id).map(|c| render(store, id, c)).ok_or_else(ApiError::not_found)
}

/// POST …/customers.
pub(crate) fn create(
    store: &mut Store,
    list: &mut List,
    seq: &mut u64,
    body: Option<&Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<Value, ApiError> {
    let obj = body_object(body)?;
    let mut c = Checker::new();
    check(&mut c, obj, "", &["id", "email_address", "opt_in_status"]);
    c.finish()?;
    email_ok(obj)?;
    let id = obj["id"].as_str().unwrap_or_default().to_string();
    if store.customers.contains_key(&id) {
        return Err(already_exists("A customer"));
    }
    upsert(store, list, seq, &id, obj, ctx, out);
    get(store, &id)
}

/// PUT …/customers/{id}: add or update (`id`, `opt_in_status` always required, `email_address`
/// for a new customer).
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
    let exists = store.customers.contains_key(id);
    let mut c = Checker::new();
    let required: &[&str] = if exists { &["id", "opt_in_status"] } else { &["id", "email_address", "opt_in_status"] };
    check(&mut c, obj, "", required);
    if obj.get("id").and_then(Value::as_str).is_some_and(|given| given != id) {
        c.error("id", "The id in the body does not match the id in the URL.");
    }
    c.finish()?;
    email_ok(obj)?;
    upsert(store, list, seq, id, obj, ctx, out);
    get(store, id)
}

/// PATCH …/customers/{id}.
pub(crate) fn patch(
    store: &mut Store,
    list: &mut List,
    seq: &mut u64,
    id: &str,
    body: Option<&Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<Value, ApiError> {
    if !store.customers.contains_key(id) {
        return Err(ApiError::not_found());
    }
    let obj = body_object(body)?;
    let mut c = Checker::new();
    check(&mut c, obj, "", &[]);
    c.finish()?;
    email_ok(obj)?;
    let mut fields = obj.clone();
    fields.remove("id");
    upsert(store, list, seq, id, &fields, ctx, out);
    get(store, id)
}

/// DELETE …/customers/{id}.
pub(crate) fn delete(store: &mut Store, id: &str) -> Result<(), ApiError> {
    store.customers.remove(id).map(|_| ()).ok_or_else(ApiError::not_found)
}
