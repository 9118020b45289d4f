//! Items (page 30008, table Item). `type` uses the XML-encoded members (`Non_x002D_Inventory`);
//! `blocked` is a Boolean here, unlike on customers; `inventory` is calculated and read-only.

use serde_json::Value;

use crate::entities::{ChangeType, Company, Mode, TableId, Tx, apply, find, normalize};
use crate::errors::ApiError;
use crate::schema::ITEM;
use crate::util::guid;

/// POST `items`.
pub(crate) fn create(co: &mut Company, tx: &mut Tx, body: &Value) -> Result<String, ApiError> {
    let mut body = normalize(&ITEM, body, Mode::Create, None)?;
    let id = match body.fields.remove("id") {
        Some(id) => id.as_str().unwrap_or_default().to_string(),
        None => guid(),
    };
    if co.items.contains_key(&id) {
        return Err(ApiError::same_key("Item", "SystemId", &id));
    }
    let number = match body.fields.get("number").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        Some(n) => {
            if co.items.values().any(|i| i.str("number") == n) {
                return Err(ApiError::same_key("Item", "No.", n));
            }
            co.explicit_numbers.insert(n.to_string());
            n.to_string()
        }
        None => co.next_number("item"),
    };
    let mut record = tx.new_record(id.clone(), &ITEM);
    apply(&mut record, &body.fields);
    record.fields.insert("number".into(), Value::from(number));
    tx.touch(&co.id.clone(), TableId::Item, &mut record, ChangeType::Created);
    co.items.insert(id.clone(), record);
    Ok(id)
}

/// PATCH `items(id)`.
pub(crate) fn update(co: &mut Company, tx: &mut Tx, id: &str, body: &Value) -> Result<(), ApiError> {
    let current = find(&co.items, id, "items")?.view(&ITEM);
    let body = normalize(&ITEM, body, Mode::Update, Some(&current))?;
    if let Some(n) = body.fields.get("number").and_then(Value::as_str)
        && n != current["number"]
    {
        if n.is_empty() {
            return Err(ApiError::required("number"));
        }
        if co.items.values().any(|i| i.str("number") == n) {
            return Err(ApiError::same_key("Item", "No.", n));
        }
        co.explicit_numbers.insert(n.to_string());
    }
    let company = co.id.clone();
    let Some(record) = co.items.get_mut(id) else { return Err(ApiError::segment_not_found("items")) };
    if apply(record, &body.fields) {
        tx.touch(&company, TableId::Item, record, ChangeType::Updated);
    }
    Ok(())
}

/// DELETE `items(id)`: refused while a draft invoice uses the item.
pub(crate) fn delete(co: &mut Company, tx: &mut Tx, id: &str) -> Result<(), ApiError> {
    let record = find(&co.items, id, "items")?;
    let in_use = co
        .lines
        .values()
        .any(|l| l.str("itemId") == id && co.invoices.get(l.str("documentId")).is_some_and(|i| !i.bool("_posted")));
    if in_use {
        return Err(ApiError::dialog(format!(
            "You cannot delete Item {} because there is at least one outstanding Sales Invoice that includes this item.",
            record.str("number")
        )));
    }
    co.items.remove(id);
    tx.changes.push(crate::entities::Change {
        company: co.id.clone(),
        table: TableId::Item,
        id: id.to_string(),
        kind: ChangeType::Deleted,
    });
    Ok(())
}
