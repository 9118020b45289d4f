//! Customers (page 30009, table Customer). Inserting a customer creates its contact business
//! relation (a Company contact linked to it) and later edits flow to that contact, as BC's
//! contact synchronisation does. The consent fields of the custom API live on the same row.

use serde_json::{Map, Value};

use crate::clock::BLANK_DATETIME;
use crate::entities::{ChangeType, Company, Mode, TableId, Tx, apply, check_email, contacts, find, normalize};
use crate::errors::ApiError;
use crate::schema::CUSTOMER;
use crate::util::guid;

/// The local currency code shown for customers without a currency (CRONUS USA).
pub(crate) const LCY: &str = "USD";

/// POST `customers`.
pub(crate) fn create(co: &mut Company, tx: &mut Tx, body: &Value) -> Result<String, ApiError> {
    let mut body = normalize(&CUSTOMER, body, Mode::Create, None)?;
    let id = match body.fields.remove("id") {
        Some(id) => id.as_str().unwrap_or_default().to_string(),
        None => guid(),
    };
    if co.customers.contains_key(&id) {
        return Err(ApiError::same_key("Customer", "SystemId", &id));
    }
    let name = body.fields.get("displayName").and_then(Value::as_str).unwrap_or("");
    if name.trim().is_empty() {
        return Err(ApiError::required("displayName"));
    }
    check_email(body.fields.get("email").and_then(Value::as_str).unwrap_or(""))?;
    let number = match body.fields.get("number").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        Some(n) => {
            if co.customers.values().any(|c| c.str("number") == n) {
                return Err(ApiError::same_key("Customer", "No.", n));
            }
            co.explicit_numbers.insert(n.to_string());
            n.to_string()
        }
        None => co.next_number("customer"),
    };
    let mut record = tx.new_record(id.clone(), &CUSTOMER);
    record.fields.insert("currencyCode".into(), Value::from(LCY));
    record.fields.insert("_marketingConsent".into(), Value::from(false));
    record.fields.insert("_consentStatus".into(), Value::from("_x0020_"));
    record.fields.insert("_consentChangedAt".into(), Value::from(BLANK_DATETIME));
    record.fields.insert("_bounced".into(), Value::from(false));
    apply(&mut record, &body.fields);
    record.fields.insert("number".into(), Value::from(number));
    tx.touch(&co.id.clone(), TableId::Customer, &mut record, ChangeType::Created);
    co.customers.insert(id.clone(), record);
    contacts::create_for_customer(co, tx, &id);
    Ok(id)
}

/// PATCH `customers(id)` (the caller checked `If-Match`).
pub(crate) fn update(co: &mut Company, tx: &mut Tx, id: &str, body: &Value) -> Result<(), ApiError> {
    let current = find(&co.customers, id, "customers")?.view(&CUSTOMER);
    let body = normalize(&CUSTOMER, body, Mode::Update, Some(&current))?;
    update_fields(co, tx, id, body.fields)
}

/// Applies validated customer fields (shared by PATCH, the admin and contact synchronisation).
pub(crate) fn update_fields(
    co: &mut Company,
    tx: &mut Tx,
    id: &str,
    fields: Map<String, Value>,
) -> Result<(), ApiError> {
    if let Some(name) = fields.get("displayName").and_then(Value::as_str)
        && name.trim().is_empty()
    {
        return Err(ApiError::required("displayName"));
    }
    check_email(fields.get("email").and_then(Value::as_str).unwrap_or(""))?;
    let old_number = find(&co.customers, id, "customers")?.str("number").to_string();
    let new_number = fields.get("number").and_then(Value::as_str).map(str::to_string);
    if let Some(n) = &new_number
        && *n != old_number
    {
        if n.is_empty() {
            return Err(ApiError::required("number"));
        }
        if co.customers.values().any(|c| c.str("number") == n) {
            return Err(ApiError::same_key("Customer", "No.", n));
        }
        co.explicit_numbers.insert(n.clone());
    }
    let company = co.id.clone();
    let Some(record) = co.customers.get_mut(id) else { return Err(ApiError::segment_not_found("customers")) };
    if !apply(record, &fields) {
        return Ok(());
    }
    tx.touch(&company, TableId::Customer, record, ChangeType::Updated);
    if let Some(n) = new_number
        && n != old_number
    {
        crate::entities::sales_invoices::rename_customer(co, tx, id, &n);
    }
    contacts::sync_from_customer(co, tx, id);
    Ok(())
}

/// DELETE `customers(id)`: refused while invoices are outstanding; the contact stays, without
/// its business relation.
pub(crate) fn delete(co: &mut Company, tx: &mut Tx, id: &str) -> Result<(), ApiError> {
    let record = find(&co.customers, id, "customers")?;
    let outstanding = co
        .invoices
        .values()
        .any(|i| i.str("customerId") == id && matches!(i.str("status"), "Draft" | "In_x0020_Review" | "Open"));
    if outstanding {
        return Err(ApiError::dialog(format!(
            "You cannot delete Customer {} because there is at least one outstanding Sales Invoice for this customer.",
            record.str("number")
        )));
    }
    let record = co.customers.remove(id).ok_or_else(|| ApiError::segment_not_found("customers"))?;
    tx.changes.push(crate::entities::Change {
        company: co.id.clone(),
        table: TableId::Customer,
        id: record.id,
        kind: ChangeType::Deleted,
    });
    contacts::unlink_customer(co, tx, id);
    Ok(())
}
