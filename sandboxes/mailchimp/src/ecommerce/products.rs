//! E-commerce products and their variants. A product needs at least one variant; PUT creates or
//! updates; variants sent with a product are upserted by id (never implicitly deleted, since
//! orders point at them).

use serde_json::{Map, Value, json};

use super::{Record, Store, already_exists, collection, overlay};
use crate::errors::ApiError;
use crate::query::Query;
use crate::validate::{Checker, Kind, body_object, normalize_numbers, pick};

/// A product and its variants, in the order they were added.
#[derive(Clone, Debug)]
pub(crate) struct Product {
    /// The product's own fields.
    pub record: Record,
    /// Variants by id, in the order they were added (orders point at them).
    pub variants: Vec<(String, Record)>,
}

impl Product {
    pub(crate) fn variant(&self, id: &str) -> Option<&Record> {
        self.variants.iter().find(|(v, _)| v == id).map(|(_, r)| r)
    }
}

const FIELDS: &[&str] =
    &["title", "handle", "url", "description", "type", "vendor", "image_url", "images", "published_at_foreign"];

const RULES: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("title", Kind::Str),
    ("handle", Kind::Str),
    ("url", Kind::Str),
    ("description", Kind::Str),
    ("type", Kind::Str),
    ("vendor", Kind::Str),
    ("image_url", Kind::Str),
    ("variants", Kind::Arr),
    ("images", Kind::Arr),
    ("published_at_foreign", Kind::Str),
];

const VARIANT_FIELDS: &[&str] =
    &["title", "url", "sku", "price", "inventory_quantity", "image_url", "backorders", "visibility"];

const VARIANT_RULES: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("title", Kind::Str),
    ("url", Kind::Str),
    ("sku", Kind::Str),
    ("price", Kind::Num),
    ("inventory_quantity", Kind::Int),
    ("image_url", Kind::Str),
    ("backorders", Kind::Str),
    ("visibility", Kind::Str),
];

fn render_variant(id: &str, variant: &Record) -> Value {
    let template = json!({"title": "", "url": "", "sku": "", "price": 0, "inventory_quantity": 0, "image_url": "",
                          "backorders": "", "visibility": ""});
    let mut out = overlay(template, &variant.fields);
    out.insert("id".into(), Value::from(id));
    out.insert("created_at".into(), Value::from(variant.created_at.clone()));
    out.insert("updated_at".into(), Value::from(variant.updated_at.clone()));
    out.insert("_links".into(), json!([]));
    Value::Object(out)
}

/// As the API returns it (with the store's currency).
pub(crate) fn render(store: &Store, id: &str, product: &Product) -> Value {
    let template = json!({"title": "", "handle": "", "url": "", "description": "", "type": "", "vendor": "",
                          "image_url": "", "images": [], "published_at_foreign": ""});
    let mut out = overlay(template, &product.record.fields);
    out.insert("id".into(), Value::from(id));
    out.insert("currency_code".into(), store.record.fields.get("currency_code").cloned().unwrap_or(json!("")));
    out.insert("variants".into(), product.variants.iter().map(|(v, r)| render_variant(v, r)).collect());
    out.insert("_links".into(), json!([]));
    Value::Object(out)
}

/// Checks a variant object.
fn check_variant(c: &mut Checker, variant: &Map<String, Value>, prefix: &str) {
    c.require(variant, prefix, &["id", "title"]);
    c.check_all(variant, prefix, VARIANT_RULES);
}

/// Checks a product body; `required` lists the product fields that must be present and
/// `need_variant` whether `variants` must hold at least one.
fn check(obj: &Map<String, Value>, required: &[&str], need_variant: bool) -> Result<(), ApiError> {
    let mut c = Checker::new();
    c.require(obj, "", required);
    c.check_all(obj, "", RULES);
    if let Some(Value::Array(variants)) = obj.get("variants") {
        if variants.is_empty() && need_variant {
            c.error("variants", "At least one variant is required.");
        }
        for (i, variant) in variants.iter().enumerate() {
            match variant.as_object() {
                Some(variant) => check_variant(&mut c, variant, &format!("variants.{i}")),
                None => c.error(format!("variants.{i}"), crate::validate::schema_message("object", variant)),
            }
        }
    }
    if let Some(Value::Array(images)) = obj.get("images") {
        for (i, image) in images.iter().enumerate() {
            match image.as_object() {
                Some(image) => c.require(image, &format!("images.{i}"), &["id", "url"]),
                None => c.error(format!("images.{i}"), crate::validate::schema_message("object", image)),
            }
        }
    }
    c.finish()
}

fn variant_fields(obj: &Map<String, Value>) -> Map<String, Value> {
    let mut fields = pick(obj, VARIANT_FIELDS);
    normalize_numbers(&mut fields, &["price"]);
    fields
}

/// Adds or updates variants by id.
fn upsert_variants(product: &mut Product, seq: &mut u64, variants: Option<&Value>) {
    for variant in variants.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object) {
        let id = variant["id"].as_str().unwrap_or_default().to_string();
        let fields = variant_fields(variant);
        match product.variants.iter_mut().find(|(v, _)| *v == id) {
            Some((_, record)) => record.update(fields),
            None => {
                *seq += 1;
                product.variants.push((id, Record::new(*seq, fields)));
            }
        }
    }
}

fn product<'a>(store: &'a Store, id: &str) -> Result<&'a Product, ApiError> {
    store.products.get(id).ok_or_else(ApiError::not_found)
}

fn product_mut<'a>(store: &'a mut Store, id: &str) -> Result<&'a mut Product, ApiError> {
    store.products.get_mut(id).ok_or_else(ApiError::not_found)
}

/// GET …/products.
pub(crate) fn list(store: &Store, query: &Query) -> Result<Value, ApiError> {
    let items = store.products.iter().map(|(id, p)| (p.record.seq, render(store, id, p))).collect();
    collection("products", items, query, json!({"store_id": store.id}))
}

/// GET …/products/{id}.
pub(crate) fn get(store: &Store, id: &str) -> Result<Value, ApiError> {
    product(store, id).map(|p| render(store, id, p))
}

/// POST …/products: `id`, `title` and at least one variant.
pub(crate) fn create(store: &mut Store, seq: &mut u64, body: Option<&Value>) -> Result<Value, ApiError> {
    let obj = body_object(body)?;
    check(obj, &["id", "title", "variants"], true)?;
    let id = obj["id"].as_str().unwrap_or_default().to_string();
    if store.products.contains_key(&id) {
        return Err(already_exists("A product"));
    }
    *seq += 1;
    let mut product = Product { record: Record::new(*seq, pick(obj, FIELDS)), variants: Vec::new() };
    upsert_variants(&mut product, seq, obj.get("variants"));
    store.products.insert(id.clone(), product);
    get(store, &id)
}

/// PUT …/products/{id}: create (with POST's requirements) or update.
pub(crate) fn put(store: &mut Store, seq: &mut u64, id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let obj = body_object(body)?;
    let exists = store.products.contains_key(id);
    if exists {
        check(obj, &["id"], true)?;
    } else {
        check(obj, &["id", "title", "variants"], true)?;
    }
    if obj.get("id").and_then(Value::as_str).is_some_and(|given| given != id) {
        return Err(ApiError::invalid_field("id", "The id in the body does not match the id in the URL."));
    }
    if !exists {
        *seq += 1;
        store.products.insert(id.to_string(), Product { record: Record::new(*seq, Map::new()), variants: Vec::new() });
    }
    let product = product_mut(store, id)?;
    product.record.update(pick(obj, FIELDS));
    upsert_variants(product, seq, obj.get("variants"));
    get(store, id)
}

/// PATCH …/products/{id}.
pub(crate) fn patch(store: &mut Store, seq: &mut u64, id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    product(store, id)?;
    let obj = body_object(body)?;
    check(obj, &[], true)?;
    let product = product_mut(store, id)?;
    product.record.update(pick(obj, FIELDS));
    upsert_variants(product, seq, obj.get("variants"));
    get(store, id)
}

/// DELETE …/products/{id}.
pub(crate) fn delete(store: &mut Store, id: &str) -> Result<(), ApiError> {
    store.products.remove(id).map(|_| ()).ok_or_else(ApiError::not_found)
}

/// GET …/products/{id}/variants.
pub(crate) fn list_variants(store: &Store, product_id: &str, query: &Query) -> Result<Value, ApiError> {
    let product = product(store, product_id)?;
    let items = product.variants.iter().map(|(v, r)| (r.seq, render_variant(v, r))).collect();
    collection("variants", items, query, json!({"store_id": store.id, "product_id": product_id}))
}

/// GET …/products/{id}/variants/{variant_id}.
pub(crate) fn get_variant(store: &Store, product_id: &str, id: &str) -> Result<Value, ApiError> {
    product(store, product_id)?.variant(id).map(|r| render_variant(id, r)).ok_or_else(ApiError::not_found)
}

fn check_variant_body(obj: &Map<String, Value>, required: &[&str]) -> Result<(), ApiError> {
    let mut c = Checker::new();
    c.require(obj, "", required);
    c.check_all(obj, "", VARIANT_RULES);
    c.finish()
}

/// POST …/variants.
pub(crate) fn create_variant(
    store: &mut Store,
    seq: &mut u64,
    product_id: &str,
    body: Option<&Value>,
) -> Result<Value, ApiError> {
    product(store, product_id)?;
    let obj = body_object(body)?;
    check_variant_body(obj, &["id", "title"])?;
    let id = obj["id"].as_str().unwrap_or_default().to_string();
    let product = product_mut(store, product_id)?;
    if product.variant(&id).is_some() {
        return Err(already_exists("A product variant"));
    }
    *seq += 1;
    product.variants.push((id.clone(), Record::new(*seq, variant_fields(obj))));
    get_variant(store, product_id, &id)
}

/// PUT …/variants/{id}: add or update (`id`, `title` required).
pub(crate) fn put_variant(
    store: &mut Store,
    seq: &mut u64,
    product_id: &str,
    id: &str,
    body: Option<&Value>,
) -> Result<Value, ApiError> {
    product(store, product_id)?;
    let obj = body_object(body)?;
    check_variant_body(obj, &["id", "title"])?;
    if obj.get("id").and_then(Value::as_str).is_some_and(|given| given != id) {
        return Err(ApiError::invalid_field("id", "The id in the body does not match the id in the URL."));
    }
    let product = product_mut(store, product_id)?;
    let mut item = obj.clone();
    item.insert("id".into(), Value::from(id));
    upsert_variants(product, seq, Some(&Value::Array(vec![Value::Object(item)])));
    get_variant(store, product_id, id)
}

/// PATCH …/variants/{id}.
pub(crate) fn patch_variant(
    store: &mut Store,
    product_id: &str,
    id: &str,
    body: Option<&Value>,
) -> Result<Value, ApiError> {
    product(store, product_id)?.variant(id).ok_or_else(ApiError::not_found)?;
    let obj = body_object(body)?;
    check_variant_body(obj, &[])?;
    let product = product_mut(store, product_id)?;
    if let Some((_, record)) = product.variants.iter_mut().find(|(v, _)| v == id) {
        record.update(variant_fields(obj));
    }
    get_variant(store, product_id, id)
}

/// DELETE …/variants/{id}.
pub(crate) fn delete_variant(store: &mut Store, product_id: &str, id: &str) -> Result<(), ApiError> {
    let product = product_mut(store, product_id)?;
    let before = product.variants.len();
    product.variants.retain(|(v, _)| v != id);
    if product.variants.len() == before { Err(ApiError::not_found()) } else { Ok(()) }
}
