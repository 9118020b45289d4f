//! The resources a pipeline can write, and the pure function that turns a rendered record into
//! the logical request for each. The request carries what `write` needs in `options`
//! (`resource`, `on_compliance`), so tests and `plan` show exactly what will be done.

use engine::connector::{ParamSpec, RequestInput, ResourceSpec, TargetRequest};
use engine::template::{normalize_email, subscriber_hash};
use serde_json::{Map, Value, json};

use crate::settings::ComplianceAction;

pub const MEMBER: &str = "member";
pub const MEMBER_TAGS: &str = "member_tags";
pub const STORE: &str = "store";
pub const PRODUCT: &str = "product";
pub const CUSTOMER: &str = "customer";
pub const ORDER: &str = "order";

pub fn specs() -> Vec<ResourceSpec> {
    let list = || ParamSpec { name: "list_id", description: "the audience id", required: true };
    let store = || ParamSpec { name: "store_id", description: "the e-commerce store id", required: true };
    vec![
        ResourceSpec {
            name: MEMBER,
            description: "Add or update an audience member (PUT with status_if_new; never status).",
            params: vec![
                list(),
                ParamSpec {
                    name: "on_compliance",
                    description: "`dead_letter` (default) or `pending` (re-send for double opt-in) when Mailchimp refuses for compliance",
                    required: false,
                },
            ],
        },
        ResourceSpec {
            name: MEMBER_TAGS,
            description: "Set tags on a member (body: email_address, tags).",
            params: vec![list()],
        },
        ResourceSpec { name: STORE, description: "Ensure an e-commerce store linked to an audience.", params: vec![] },
        ResourceSpec {
            name: PRODUCT,
            description: "Add or update a product (at least one variant).",
            params: vec![store()],
        },
        ResourceSpec { name: CUSTOMER, description: "Add or update an e-commerce customer.", params: vec![store()] },
        ResourceSpec {
            name: ORDER,
            description: "Create or update an order under a stable id; its products are ensured first.",
            params: vec![store()],
        },
    ]
}

fn param<'a>(input: &'a RequestInput<'_>, name: &str) -> Result<&'a str, String> {
    match input.params.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        // An all-digit id unquoted in YAML arrives as a number, its leading zeros already lost:
        // converting it back could address the wrong audience, so say how to fix the YAML.
        Some(Value::Number(n)) => Err(format!(
            "parameter `{name}` must be text, not the number {n}: quote the id in YAML (`{name}: '…'`) so digits and leading zeros are kept"
        )),
        Some(_) => Err(format!("parameter `{name}` must be non-empty text")),
        None => Err(format!("parameter `{name}` is missing")),
    }
}

fn body_object(input: &RequestInput<'_>) -> Result<Map<String, Value>, String> {
    input.body.as_object().cloned().ok_or_else(|| "the fields must render to an object".to_owned())
}

fn require(body: &Map<String, Value>, fields: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> =
        fields.iter().copied().filter(|f| body.get(*f).is_none_or(|v| v.is_null() || v == "")).collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("required fields were not provided: {}", missing.join(", "))) }
}

/// Ids go into URL paths: refuse what would change the path.
fn id_segment(body: &Map<String, Value>, field: &str) -> Result<String, String> {
    let id = match body.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(format!("`{field}` must be text or a number")),
    };
    if id.is_empty() || id.contains(['/', '?', '#']) || id.len() > 50 {
        return Err(format!("`{field}` `{id}` must be 1-50 characters without `/`, `?` or `#`"));
    }
    Ok(id)
}

fn with_options(mut request: TargetRequest, resource: &str) -> TargetRequest {
    request.options.insert("resource".into(), json!(resource));
    request
}

pub fn build(resource: &str, input: &RequestInput<'_>) -> Result<TargetRequest, String> {
    match resource {
        MEMBER => member(input),
        MEMBER_TAGS => member_tags(input),
        STORE => store(input),
        PRODUCT => product(input),
        CUSTOMER => customer(input),
        ORDER => order(input),
        other => Err(format!("unknown resource `{other}`")),
    }
}

fn member(input: &RequestInput<'_>) -> Result<TargetRequest, String> {
    let list_id = param(input, "list_id")?;
    let mut body = body_object(input)?;
    if body.contains_key("status") {
        return Err(
            "`status` is not written by an ERP sync (it would override the member's own choice); use `status_if_new`"
                .into(),
        );
    }
    if body.contains_key("tags") {
        return Err("tags go through the `member_tags` resource, not the member body".into());
    }
    require(&body, &["email_address", "status_if_new"])?;
    let raw = body["email_address"].as_str().ok_or("`email_address` must be text")?;
    let email = normalize_email(raw).ok_or_else(|| format!("`{raw}` is not a valid email address"))?;
    body.insert("email_address".into(), json!(email));
    let status = body["status_if_new"].as_str().unwrap_or("");
    if !["subscribed", "unsubscribed", "pending", "transactional"].contains(&status) {
        return Err(format!(
            "`status_if_new` `{status}` is not one of subscribed, unsubscribed, pending, transactional"
        ));
    }
    let on_compliance = match input.params.get("on_compliance") {
        None => ComplianceAction::DeadLetter,
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| "parameter `on_compliance` must be `dead_letter` or `pending`".to_owned())?,
    };
    let path = format!("/lists/{list_id}/members/{}", subscriber_hash(&email));
    let mut request = with_options(TargetRequest::new("PUT", path, Value::Object(body)), MEMBER);
    if on_compliance == ComplianceAction::Pending {
        request.options.insert("on_compliance".into(), json!("pending"));
    }
    Ok(request)
}

fn member_tags(input: &RequestInput<'_>) -> Result<TargetRequest, String> {
    let list_id = param(input, "list_id")?;
    let body = body_object(input)?;
    require(&body, &["email_address"])?;
    let raw = body["email_address"].as_str().ok_or("`email_address` must be text")?;
    let email = normalize_email(raw).ok_or_else(|| format!("`{raw}` is not a valid email address"))?;
    let tags: Vec<Value> = match body.get("tags") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| match t {
                Value::String(name) => Ok(json!({"name": name, "status": "active"})),
                Value::Object(o) if o.get("name").is_some_and(Value::is_string) => Ok(t.clone()),
                _ => Err("each tag is a name or {name, status}".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("`tags` must be a list".into()),
    };
    let path = format!("/lists/{list_id}/members/{}/tags", subscriber_hash(&email));
    Ok(with_options(TargetRequest::new("POST", path, json!({ "tags": tags })), MEMBER_TAGS))
}

fn store(input: &RequestInput<'_>) -> Result<TargetRequest, String> {
    let body = body_object(input)?;
    require(&body, &["id", "list_id", "name", "currency_code"])?;
    let id = id_segment(&body, "id")?;
    Ok(with_options(TargetRequest::new("PUT", format!("/ecommerce/stores/{id}"), Value::Object(body)), STORE))
}

fn product(input: &RequestInput<'_>) -> Result<TargetRequest, String> {
    let store_id = param(input, "store_id")?;
    let mut body = body_object(input)?;
    require(&body, &["id", "title"])?;
    let id = id_segment(&body, "id")?;
    // "At least one variant is required"; a variant may share the product's id and title.
    let has_variants = body.get("variants").and_then(Value::as_array).is_some_and(|v| !v.is_empty());
    if !has_variants {
        let mut variant = json!({"id": body["id"], "title": body["title"]});
        for field in ["price", "sku", "url", "inventory_quantity"] {
            if let Some(v) = body.get(field) {
                variant[field] = v.clone();
            }
        }
        body.remove("price");
        body.remove("sku");
        body.remove("inventory_quantity");
        body.insert("variants".into(), json!([variant]));
    }
    Ok(with_options(
        TargetRequest::new("PUT", format!("/ecommerce/stores/{store_id}/products/{id}"), Value::Object(body)),
        PRODUCT,
    ))
}

fn customer(input: &RequestInput<'_>) -> Result<TargetRequest, String> {
    let store_id = param(input, "store_id")?;
    let mut body = body_object(input)?;
    require(&body, &["id", "email_address"])?;
    let id = id_segment(&body, "id")?;
    let raw = body["email_address"].as_str().ok_or("`email_address` must be text")?;
    let email = normalize_email(raw).ok_or_else(|| format!("`{raw}` is not a valid email address"))?;
    body.insert("email_address".into(), json!(email));
    // Without an explicit opt-in a new customer becomes a transactional contact, never a
    // subscriber.
    body.entry("opt_in_status").or_insert(json!(false));
    Ok(with_options(
        TargetRequest::new("PUT", format!("/ecommerce/stores/{store_id}/customers/{id}"), Value::Object(body)),
        CUSTOMER,
    ))
}

fn order(input: &RequestInput<'_>) -> Result<TargetRequest, String> {
    let store_id = param(input, "store_id")?;
    let body = body_object(input)?;
    require(&body, &["id", "customer", "currency_code", "order_total", "lines"])?;
    let id = id_segment(&body, "id")?;
    if body["customer"].get("id").is_none() {
        return Err("`customer.id` is required".into());
    }
    let currency = body["currency_code"].as_str().unwrap_or("");
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(format!("`currency_code` `{currency}` is not an ISO 4217 code like EUR"));
    }
    if !body["order_total"].is_number() {
        return Err("`order_total` must be a number".into());
    }
    let lines = body["lines"].as_array().ok_or("`lines` must be a list")?;
    if lines.is_empty() {
        return Err("an order needs at least one line".into());
    }
    for (i, line) in lines.iter().enumerate() {
        for field in ["id", "product_id", "product_variant_id", "quantity", "price"] {
            if line.get(field).is_none_or(Value::is_null) {
                return Err(format!("line {i} has no `{field}`"));
            }
        }
    }
    Ok(with_options(
        TargetRequest::new("PUT", format!("/ecommerce/stores/{store_id}/orders/{id}"), Value::Object(body)),
        ORDER,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(params: &'a Map<String, Value>, body: &'a Value) -> RequestInput<'a> {
        RequestInput { key: "k", params, body }
    }

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_member_is_put_under_its_subscriber_hash_without_status() {
        let p = params(json!({"list_id": "L1"}));
        let body = json!({"email_address": " Ada@Example.com ", "status_if_new": "subscribed", "merge_fields": {"FNAME": "Ada"}});
        let r = build(MEMBER, &input(&p, &body)).unwrap();
        assert_eq!(r.method, "PUT");
        assert_eq!(r.path, format!("/lists/L1/members/{}", subscriber_hash("ada@example.com")));
        assert_eq!(r.body["email_address"], "ada@example.com");
        assert_eq!(r.options["resource"], "member");
        assert!(r.body.get("status").is_none());

        let with_status = json!({"email_address": "a@b.co", "status_if_new": "subscribed", "status": "subscribed"});
        assert!(build(MEMBER, &input(&p, &with_status)).unwrap_err().contains("status_if_new"));
        let bad = json!({"email_address": "nope", "status_if_new": "subscribed"});
        assert!(build(MEMBER, &input(&p, &bad)).unwrap_err().contains("not a valid email"));
        let bad = json!({"email_address": "a@b.co", "status_if_new": "cleaned"});
        assert!(build(MEMBER, &input(&p, &bad)).is_err());
    }

    #[test]
    fn an_audience_id_unquoted_in_yaml_is_refused_with_the_fix() {
        let p = params(json!({"list_id": 123456789}));
        let body = json!({"email_address": "a@b.co", "status_if_new": "subscribed"});
        let e = build(MEMBER, &input(&p, &body)).unwrap_err();
        assert!(e.contains("not the number 123456789") && e.contains("quote the id"), "{e}");
    }

    #[test]
    fn compliance_pending_is_an_option() {
        let p = params(json!({"list_id": "L1", "on_compliance": "pending"}));
        let body = json!({"email_address": "a@b.co", "status_if_new": "subscribed"});
        assert_eq!(build(MEMBER, &input(&p, &body)).unwrap().options["on_compliance"], "pending");
        let p = params(json!({"list_id": "L1", "on_compliance": "force"}));
        assert!(build(MEMBER, &input(&p, &body)).is_err());
    }

    #[test]
    fn products_get_a_default_variant() {
        let p = params(json!({"store_id": "S"}));
        let body = json!({"id": "ITEM-1", "title": "Widget", "price": 9.5});
        let r = build(PRODUCT, &input(&p, &body)).unwrap();
        assert_eq!(r.body["variants"], json!([{"id": "ITEM-1", "title": "Widget", "price": 9.5}]));
        assert!(r.body.get("price").is_none());
    }

    #[test]
    fn orders_are_checked_before_sending() {
        let p = params(json!({"store_id": "S"}));
        let ok = json!({"id": "inv-1", "customer": {"id": "C1"}, "currency_code": "EUR", "order_total": 10.0,
                        "lines": [{"id": "1", "product_id": "P", "product_variant_id": "P", "quantity": 1, "price": 10.0}]});
        assert_eq!(build(ORDER, &input(&p, &ok)).unwrap().path, "/ecommerce/stores/S/orders/inv-1");
        let mut no_currency = ok.clone();
        no_currency["currency_code"] = json!("");
        assert_eq!(
            build(ORDER, &input(&p, &no_currency)).unwrap_err(),
            "required fields were not provided: currency_code"
        );
        let mut bad_id = ok.clone();
        bad_id["id"] = json!("a/b");
        assert!(build(ORDER, &input(&p, &bad_id)).is_err());
        let mut text_total = ok;
        text_total["order_total"] = json!("10");
        assert!(build(ORDER, &input(&p, &text_total)).is_err());
    }
}
