//! Writes: find a record by a field, then PATCH it with `If-Match`; a stale ETag re-reads and
//! retries; a missing record is created when the pipeline allows it.

use engine::connector::{RequestInput, TargetRequest, WriteOutcome};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{BcClient, BcError};
use crate::odata;
use crate::source::split_entity;

/// Attempts after a stale ETag before giving up (someone keeps editing the record).
const CONFLICT_ATTEMPTS: usize = 3;

/// Builds the logical request: `PATCH <entity>` where `<match_field> eq <match_value>`.
pub fn build(resource: &str, input: &RequestInput<'_>) -> Result<TargetRequest, String> {
    let text = |k: &str| input.params.get(k).and_then(Value::as_str).map(str::to_owned);
    let entity = match resource {
        "customer" => "customers".to_owned(),
        "record" => {
            text("entity").ok_or("parameter `entity` is missing (e.g. `contoso/marketing/v1.0/customerConsents`)")?
        }
        other => return Err(format!("unknown resource `{other}`")),
    };
    split_entity(&entity)?;
    let match_field = text("match_field").unwrap_or_else(|| "email".to_owned());
    let match_value = input
        .params
        .get("match_value")
        .cloned()
        .filter(|v| !v.is_null() && v != "")
        .ok_or("parameter `match_value` is missing or empty")?;
    let mut body = input.body.as_object().cloned().ok_or("the fields must render to an object")?;
    // Pipelines write enum captions (`Opted Out`); Business Central wants its XML-encoded
    // names (`Opted_x0020_Out`), the mirror of what reads decode.
    for (k, v) in body.iter_mut() {
        if let Value::String(s) = v
            && odata::ENUM_FIELDS.contains(&k.as_str())
        {
            *s = odata::encode_name(s);
        }
    }
    if body.is_empty() {
        return Err("there are no fields to write".into());
    }
    let create = input.params.get("create_if_missing").and_then(Value::as_bool).unwrap_or(false);
    let mut options = Map::new();
    options.insert("entity".into(), json!(entity));
    options.insert("match_field".into(), json!(match_field));
    options.insert("match_value".into(), match_value.clone());
    if create {
        options.insert("create_if_missing".into(), json!(true));
    }
    let path = format!("{entity}?$filter={match_field} eq {}", odata::literal(&match_value));
    Ok(TargetRequest { method: "PATCH".into(), path, body: Value::Object(body), options })
}

fn failed(e: BcError) -> WriteOutcome {
    WriteOutcome::Failed { transient: e.transient, status: e.status, class: e.class(), message: e.to_string() }
}

fn permanent(class: &str, message: String) -> WriteOutcome {
    WriteOutcome::Failed { transient: false, status: None, class: class.into(), message }
}

pub async fn write(client: &BcClient, request: &TargetRequest) -> WriteOutcome {
    let o = &request.options;
    let entity = o.get("entity").and_then(Value::as_str).unwrap_or_default();
    let field = o.get("match_field").and_then(Value::as_str).unwrap_or("email");
    let value = o.get("match_value").cloned().unwrap_or(Value::Null);
    let Ok((api, set)) = split_entity(entity) else { return permanent("request", format!("bad entity `{entity}`")) };
    let collection = client.entity_url(&api, &set);
    let find = format!(
        "{collection}{}",
        odata::query(&[("$filter", format!("{field} eq {}", odata::literal(&value))), ("$top", "2".into())])
    );

    for _ in 0..CONFLICT_ATTEMPTS {
        let found = match client.get(&find, None).await {
            Ok(v) => v["value"].as_array().cloned().unwrap_or_default(),
            Err(e) => return failed(e),
        };
        let record = match found.as_slice() {
            [one] => one.clone(),
            [] if o.get("create_if_missing") == Some(&json!(true)) => {
                let mut body = request.body.clone();
                body[field] = value.clone();
                return match client.send(Method::POST, &collection, &[], Some(&body)).await {
                    Ok((status, v)) => written(status, &v),
                    Err(e) => failed(e),
                };
            }
            [] => return permanent("not_found", format!("no `{set}` record has {field} = {value}")),
            _ => {
                return permanent(
                    "ambiguous",
                    format!("several `{set}` records have {field} = {value}; the write would be a guess"),
                );
            }
        };
        let id = record["id"].as_str().unwrap_or_default();
        let etag = record["@odata.etag"].as_str().unwrap_or("*").to_owned();
        let url = format!("{collection}({id})");
        match client.send(Method::PATCH, &url, &[("If-Match", etag)], Some(&request.body)).await {
            Ok((status, v)) => return written(status, &v),
            // Someone changed the record between our read and our write: read it again.
            Err(e) if e.stale_etag() => continue,
            Err(e) => return failed(e),
        }
    }
    permanent(
        "conflict",
        format!("the `{set}` record with {field} = {value} kept changing; gave up after {CONFLICT_ATTEMPTS} attempts"),
    )
}

fn written(status: u16, v: &Value) -> WriteOutcome {
    WriteOutcome::Written { target_id: v["id"].as_str().map(str::to_owned), status: Some(status) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_the_record_they_change() {
        let params = json!({"match_value": "ada@example.com"});
        let body = json!({"marketingConsent": false, "consentStatus": "Opted Out"});
        let r =
            build("customer", &RequestInput { key: "k", params: params.as_object().unwrap(), body: &body }).unwrap();
        assert_eq!(r.method, "PATCH");
        assert_eq!(r.path, "customers?$filter=email eq 'ada@example.com'");
        assert_eq!(r.body["consentStatus"], "Opted_x0020_Out", "enum captions are encoded");
        let params = json!({"entity": "contoso/marketing/v1.0/customerConsents", "match_field": "customerNumber", "match_value": "10000", "create_if_missing": true});
        let r = build("record", &RequestInput { key: "k", params: params.as_object().unwrap(), body: &body }).unwrap();
        assert_eq!(r.options["create_if_missing"], json!(true));
        let missing = json!({});
        assert!(
            build("customer", &RequestInput { key: "k", params: missing.as_object().unwrap(), body: &body }).is_err()
        );
    }
}
