//! Batch subscribe (`POST /lists/{id}`): up to 500 members in one call. The call answers 200
//! even when members fail; each failure is an `errors[]` entry with an `error_code`
//! (`ERROR_CONTACT_EXISTS` or `ERROR_GENERIC`), and the same validation and compliance rules as
//! single writes apply per member.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::lists::List;
use crate::members::{Mode, Status, WriteCtx, parse_input, save};
use crate::query::Query;
use crate::util::{iso, now, subscriber_hash};
use crate::validate::{Checker, Kind, body_object, schema_message};
use crate::webhooks::Outgoing;

/// Members per call.
const MAX_MEMBERS: usize = 500;

/// An `errors[]` entry.
fn failure(email: &str, code: &str, error: &ApiError) -> Value {
    let first = error.errors.first();
    json!({
        "email_address": email,
        "error": if error.errors.is_empty() || error.detail != crate::errors::INVALID_RESOURCE_DETAIL {
            error.detail.clone()
        } else {
            first.map(|e| e.message.clone()).unwrap_or_default()
        },
        "error_code": code,
        "field": first.map(|e| e.field.clone()).unwrap_or_default(),
        "field_message": first.map(|e| e.message.clone()).unwrap_or_default(),
    })
}

/// POST /lists/{id}.
pub(crate) fn run(
    list: &mut List,
    seq: &mut u64,
    body: Option<&Value>,
    query: &Query,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<Value, ApiError> {
    let obj = body_object(body)?;
    let mut check = Checker::new();
    check.require(obj, "", &["members"]);
    check.check_all(obj, "", &[("members", Kind::Arr), ("update_existing", Kind::Bool), ("sync_tags", Kind::Bool)]);
    check.finish()?;
    let items = obj["members"].as_array().cloned().unwrap_or_default();
    if items.len() > MAX_MEMBERS {
        return Err(ApiError::invalid_field(
            "members",
            format!("You can only subscribe or update up to {MAX_MEMBERS} members in one request."),
        ));
    }
    let update_existing = obj.get("update_existing").and_then(Value::as_bool).unwrap_or(false);
    let sync_tags = obj.get("sync_tags").and_then(Value::as_bool).unwrap_or(false);
    let skip_duplicates = query.flag("skip_duplicate_check");
    let (mut created, mut updated, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    for item in &items {
        let email = item.get("email_address").and_then(Value::as_str).unwrap_or_default().trim().to_string();
        let Some(member) = item.as_object() else {
            errors.push(failure(&email, "ERROR_GENERIC", &ApiError::invalid_field("", schema_message("object", item))));
            continue;
        };
        if skip_duplicates && !seen.insert(subscriber_hash(&email)) {
            continue;
        }
        let mut input = match parse_input(member, Mode::Batch) {
            Ok(input) => input,
            Err(error) => {
                errors.push(failure(&email, "ERROR_GENERIC", &error));
                continue;
            }
        };
        let hash = subscriber_hash(&email);
        let exists = list.members.get(&hash).is_some_and(|m| m.status != Status::Archived);
        if exists && !update_existing {
            let error = ApiError::invalid_detail(format!(
                "{email} is already a list member, do you want to update? please provide update_existing:true in \
                 the request body"
            ));
            errors.push(failure(&email, "ERROR_CONTACT_EXISTS", &error));
            continue;
        }
        let synced_tags = if sync_tags { input.tags.take() } else { None };
        match save(list, seq, &hash, &input, input.status, ctx, out) {
            Ok(hash) => {
                if let Some(tags) = synced_tags {
                    let date = iso(now());
                    let ids: Vec<(u64, String)> = tags
                        .iter()
                        .map(|name| {
                            *seq += 1;
                            (list.tag_id(name, *seq), name.clone())
                        })
                        .collect();
                    if let Some(member) = list.members.get_mut(&hash) {
                        member.tags = ids.into_iter().map(|(id, name)| (id, name, date.clone())).collect();
                    }
                }
                let rendered = list.members[&hash].render(list);
                if exists { updated.push(rendered) } else { created.push(rendered) }
            }
            Err(error) => errors.push(failure(&email, "ERROR_GENERIC", &error)),
        }
    }
    Ok(json!({
        "new_members": created,
        "updated_members": updated,
        "errors": errors,
        "total_created": created.len(),
        "total_updated": updated.len(),
        "error_count": errors.len(),
        "_links": [],
    }))
}
