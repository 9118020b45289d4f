//! E-commerce: stores and, under them, customers, products (with variants) and orders (with
//! lines). The rules integrations trip over are enforced: a store's audience is permanent, its
//! domain unique in the account; products need a variant; orders need existing products; ids are
//! client-chosen and a second POST is "already exists"; customers create or upgrade members.

pub(crate) mod customers;
pub(crate) mod orders;
pub(crate) mod products;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::lists::List;
use crate::query::{Page, Query};
use crate::util::{iso, now};
use crate::validate::{Checker, Kind, body_object, pick};

/// A record of a resource: what the client set, and when.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    /// Creation order, for listings.
    pub seq: u64,
    /// The writable fields as stored (money normalized to numbers).
    pub fields: Map<String, Value>,
    /// When it was created (ISO 8601).
    pub created_at: String,
    /// When it last changed (ISO 8601).
    pub updated_at: String,
}

impl Record {
    pub(crate) fn new(seq: u64, fields: Map<String, Value>) -> Record {
        let at = iso(now());
        Record { seq, fields, created_at: at.clone(), updated_at: at }
    }

    /// Sets the given fields (objects like `address` are replaced, as Mailchimp does).
    pub(crate) fn update(&mut self, fields: Map<String, Value>) {
        self.fields.extend(fields);
        self.updated_at = iso(now());
    }
}

/// A store and everything it owns (deleting it deletes them).
#[derive(Debug)]
pub(crate) struct Store {
    /// The client-chosen id.
    pub id: String,
    /// The audience; it can never change.
    pub list_id: String,
    /// The store's own fields.
    pub record: Record,
    /// Customers by id.
    pub customers: BTreeMap<String, Record>,
    /// Products by id.
    pub products: BTreeMap<String, products::Product>,
    /// Orders by id.
    pub orders: BTreeMap<String, orders::Order>,
    /// Order ids by customer id, so that rendering a customer (its `orders_count` and
    /// `total_spent`, in every order's answer too) does not scan every order of the store.
    /// Kept by `orders`, the only module that adds or removes orders.
    pub orders_by_customer: BTreeMap<String, BTreeSet<String>>,
}

const STORE_FIELDS: &[&str] = &[
    "name",
    "platform",
    "domain",
    "is_syncing",
    "email_address",
    "currency_code",
    "money_format",
    "primary_locale",
    "timezone",
    "phone",
    "address",
];

const STORE_RULES: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("list_id", Kind::Str),
    ("name", Kind::Str),
    ("platform", Kind::Str),
    ("domain", Kind::Str),
    ("is_syncing", Kind::Bool),
    ("email_address", Kind::Str),
    ("currency_code", Kind::Str),
    ("money_format", Kind::Str),
    ("primary_locale", Kind::Str),
    ("timezone", Kind::Str),
    ("phone", Kind::Str),
    ("address", Kind::Obj),
];

/// `template` overlaid with `fields`; nested objects (addresses) are merged one level deep.
pub(crate) fn overlay(template: Value, fields: &Map<String, Value>) -> Map<String, Value> {
    let mut out = template.as_object().cloned().unwrap_or_default();
    for (k, v) in fields {
        match (out.get_mut(k), v) {
            (Some(Value::Object(base)), Value::Object(given)) => base.extend(given.clone()),
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// The address shape of stores and customers.
pub(crate) fn address_template() -> Value {
    json!({"address1": "", "address2": "", "city": "", "province": "", "province_code": "", "postal_code": "",
           "country": "", "country_code": ""})
}

/// "We were unable to process the request. A product with the provided ID already exists in
/// the account." and its siblings.
pub(crate) fn already_exists(what: &str) -> ApiError {
    ApiError::bad_request(format!(
        "We were unable to process the request. {what} with the provided ID already exists in the account."
    ))
}

impl Store {
    /// As the API returns it.
    pub(crate) fn render(&self) -> Value {
        let template = json!({"name": "", "platform": "", "domain": "", "is_syncing": false, "email_address": "",
            "currency_code": "", "money_format": "", "primary_locale": "", "timezone": "", "phone": "",
            "address": address_template()});
        let mut out = overlay(template, &self.record.fields);
        out.insert("id".into(), Value::from(self.id.clone()));
        out.insert("list_id".into(), Value::from(self.list_id.clone()));
        out.insert("list_is_active".into(), Value::Bool(true));
        out.insert("created_at".into(), Value::from(self.record.created_at.clone()));
        out.insert("updated_at".into(), Value::from(self.record.updated_at.clone()));
        out.insert("_links".into(), json!([]));
        Value::Object(out)
    }

    fn domain(&self) -> Option<String> {
        self.record
            .fields
            .get("domain")
            .and_then(Value::as_str)
            .map(|d| d.trim().to_lowercase())
            .filter(|d| !d.is_empty())
    }
}

/// Looks a store up.
pub(crate) fn store<'a>(stores: &'a BTreeMap<String, Store>, id: &str) -> Result<&'a Store, ApiError> {
    stores.get(id).ok_or_else(ApiError::not_found)
}

/// Looks a store up for a write.
pub(crate) fn store_mut<'a>(stores: &'a mut BTreeMap<String, Store>, id: &str) -> Result<&'a mut Store, ApiError> {
    stores.get_mut(id).ok_or_else(ApiError::not_found)
}

/// A listing: `key` is the collection's name.
pub(crate) fn collection(
    key: &str,
    mut items: Vec<(u64, Value)>,
    query: &Query,
    extra: Value,
) -> Result<Value, ApiError> {
    let page = Page::from_query(query)?;
    items.sort_by_key(|(seq, _)| *seq);
    let total = items.len();
    let mut out = json!({key: page.slice(items).into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "total_items": total,
                         "_links": []});
    if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
        out.extend(extra);
    }
    Ok(out)
}

fn check_domain(stores: &BTreeMap<String, Store>, domain: Option<&Value>, except: &str) -> Result<(), ApiError> {
    let Some(domain) = domain.and_then(Value::as_str).map(|d| d.trim().to_lowercase()).filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    if stores.values().any(|s| s.id != except && s.domain().as_deref() == Some(domain.as_str())) {
        return Err(ApiError::bad_request(format!(
            "We were unable to process the request. A store with the domain {domain} already exists in the account"
        )));
    }
    Ok(())
}

/// GET /ecommerce/stores.
pub(crate) fn list_stores(stores: &BTreeMap<String, Store>, query: &Query) -> Result<Value, ApiError> {
    collection("stores", stores.values().map(|s| (s.record.seq, s.render())).collect(), query, json!({}))
}

/// POST /ecommerce/stores.
pub(crate) fn create_store(
    stores: &mut BTreeMap<String, Store>,
    lists: &BTreeMap<String, List>,
    seq: u64,
    body: Option<&Value>,
) -> Result<Value, ApiError> {
    let obj = body_object(body)?;
    let mut check = Checker::new();
    check.require(obj, "", &["id", "list_id", "name", "currency_code"]);
    check.check_all(obj, "", STORE_RULES);
    check.finish()?;
    let id = obj["id"].as_str().unwrap_or_default().to_string();
    if stores.contains_key(&id) {
        return Err(already_exists("A store"));
    }
    let list_id = obj["list_id"].as_str().unwrap_or_default().to_string();
    if !lists.contains_key(&list_id) {
        return Err(ApiError::invalid_field("list_id", "The list_id provided does not match any list in the account."));
    }
    check_domain(stores, obj.get("domain"), &id)?;
    let store = Store {
        id: id.clone(),
        list_id,
        record: Record::new(seq, pick(obj, STORE_FIELDS)),
        customers: BTreeMap::new(),
        products: BTreeMap::new(),
        orders: BTreeMap::new(),
        orders_by_customer: BTreeMap::new(),
    };
    let out = store.render();
    stores.insert(id, store);
    Ok(out)
}

/// PATCH /ecommerce/stores/{id}: `list_id` cannot change.
pub(crate) fn patch_store(
    stores: &mut BTreeMap<String, Store>,
    id: &str,
    body: Option<&Value>,
) -> Result<Value, ApiError> {
    store(stores, id)?;
    let obj = body_object(body)?;
    let mut check = Checker::new();
    check.check_all(obj, "", STORE_RULES);
    check.finish()?;
    let current = &stores[id];
    if let Some(list_id) = obj.get("list_id").and_then(Value::as_str)
        && list_id != current.list_id
    {
        return Err(ApiError::invalid_field("list_id", "The list_id of a store cannot be changed."));
    }
    check_domain(stores, obj.get("domain"), id)?;
    let store = store_mut(stores, id)?;
    store.record.update(pick(obj, STORE_FIELDS));
    Ok(store.render())
}
