//! Contacts (page 30071, table Contact). Every customer has a Company contact linked by a
//! business relation: created with the customer, kept in step with it both ways (BC's
//! CustCont-Update / ContBusRel synchronisation), and left behind with relation `None` when
//! the customer is deleted.

use serde_json::{Map, Value};

use crate::entities::{ChangeType, Company, Mode, TableId, Tx, apply, check_email, customers, find, normalize};
use crate::errors::ApiError;
use crate::schema::CONTACT;
use crate::util::guid;

/// Fields a customer and its contact share.
const SHARED: [&str; 11] = [
    "displayName",
    "addressLine1",
    "addressLine2",
    "city",
    "state",
    "country",
    "postalCode",
    "phoneNumber",
    "email",
    "website",
    "taxRegistrationNumber",
];

/// Derived fields: company name/number of Company contacts, the upper-case search name.
fn derive(fields: &mut Map<String, Value>, own_number: &str) {
    let name = fields.get("displayName").and_then(Value::as_str).unwrap_or("").to_string();
    if fields.get("type").and_then(Value::as_str) == Some("Company") {
        fields.insert("companyName".into(), Value::from(name.clone()));
        fields.insert("companyNumber".into(), Value::from(own_number));
    }
    fields.insert("searchName".into(), Value::from(name.to_uppercase().chars().take(100).collect::<String>()));
}

/// POST `contacts`.
pub(crate) fn create(co: &mut Company, tx: &mut Tx, body: &Value) -> Result<String, ApiError> {
    let mut body = normalize(&CONTACT, body, Mode::Create, None)?;
    let id = match body.fields.remove("id") {
        Some(id) => id.as_str().unwrap_or_default().to_string(),
        None => guid(),
    };
    if co.contacts.contains_key(&id) {
        return Err(ApiError::same_key("Contact", "SystemId", &id));
    }
    if body.fields.get("displayName").and_then(Value::as_str).unwrap_or("").trim().is_empty() {
        return Err(ApiError::required("displayName"));
    }
    check_email(body.fields.get("email").and_then(Value::as_str).unwrap_or(""))?;
    let number = match body.fields.get("number").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        Some(n) => {
            if co.contacts.values().any(|c| c.str("number") == n) {
                return Err(ApiError::same_key("Contact", "No.", n));
            }
            co.explicit_numbers.insert(n.to_string());
            n.to_string()
        }
        None => co.next_number("contact"),
    };
    let mut record = tx.new_record(id.clone(), &CONTACT);
    record.fields.insert("contactBusinessRelation".into(), Value::from("None"));
    let searched = body.fields.contains_key("searchName");
    apply(&mut record, &body.fields);
    record.fields.insert("number".into(), Value::from(number.clone()));
    let given_search = record.fields.get("searchName").cloned();
    derive(&mut record.fields, &number);
    if searched && let Some(s) = given_search {
        record.fields.insert("searchName".into(), s);
    }
    tx.touch(&co.id.clone(), TableId::Contact, &mut record, ChangeType::Created);
    co.contacts.insert(id.clone(), record);
    Ok(id)
}

/// PATCH `contacts(id)`: shared fields flow on to the linked customer.
pub(crate) fn update(co: &mut Company, tx: &mut Tx, id: &str, body: &Value) -> Result<(), ApiError> {
    let current = find(&co.contacts, id, "contacts")?.view(&CONTACT);
    let body = normalize(&CONTACT, body, Mode::Update, Some(&current))?;
    if let Some(name) = body.fields.get("displayName").and_then(Value::as_str)
        && name.trim().is_empty()
    {
        return Err(ApiError::required("displayName"));
    }
    check_email(body.fields.get("email").and_then(Value::as_str).unwrap_or(""))?;
    if let Some(n) = body.fields.get("number").and_then(Value::as_str)
        && n != current["number"]
    {
        if co.contacts.values().any(|c| c.str("number") == n) {
            return Err(ApiError::same_key("Contact", "No.", n));
        }
        co.explicit_numbers.insert(n.to_string());
    }
    let company = co.id.clone();
    let Some(record) = co.contacts.get_mut(id) else { return Err(ApiError::segment_not_found("contacts")) };
    let mut fields = record.fields.clone();
    for (k, v) in &body.fields {
        fields.insert(k.clone(), v.clone());
    }
    let number = fields.get("number").and_then(Value::as_str).unwrap_or("").to_string();
    if !body.fields.contains_key("searchName") {
        derive(&mut fields, &number);
    }
    if !apply(record, &fields) {
        return Ok(());
    }
    tx.touch(&company, TableId::Contact, record, ChangeType::Updated);
    let customer = record.str("_customerId").to_string();
    if !customer.is_empty() && co.customers.contains_key(&customer) {
        let shared: Map<String, Value> = body
            .fields
            .iter()
            .filter(|(k, _)| SHARED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !shared.is_empty() {
            customers::update_fields(co, tx, &customer, shared)?;
        }
    }
    Ok(())
}

/// DELETE `contacts(id)`: refused while the contact has a business relation.
pub(crate) fn delete(co: &mut Company, tx: &mut Tx, id: &str) -> Result<(), ApiError> {
    let record = find(&co.contacts, id, "contacts")?;
    let customer = record.str("_customerId");
    if let Some(c) = co.customers.get(customer) {
        return Err(ApiError::dialog(format!(
            "You cannot delete Contact {} because it has a business relation with Customer {}.",
            record.str("number"),
            c.str("number")
        )));
    }
    co.contacts.remove(id);
    tx.changes.push(crate::entities::Change {
        company: co.id.clone(),
        table: TableId::Contact,
        id: id.to_string(),
        kind: ChangeType::Deleted,
    });
    Ok(())
}

/// The contact BC creates with a customer.
pub(crate) fn create_for_customer(co: &mut Company, tx: &mut Tx, customer_id: &str) {
    let Some(customer) = co.customers.get(customer_id) else { return };
    let mut fields = Map::new();
    for name in SHARED {
        fields.insert(name.into(), customer.fields.get(name).cloned().unwrap_or(Value::from("")));
    }
    fields.insert("type".into(), customer.fields.get("type").cloned().unwrap_or(Value::from("Company")));
    fields.insert("contactBusinessRelation".into(), Value::from("Customer"));
    fields.insert("_customerId".into(), Value::from(customer_id));
    let number = co.next_number("contact");
    let mut record = tx.new_record(guid(), &CONTACT);
    apply(&mut record, &fields);
    record.fields.insert("number".into(), Value::from(number.clone()));
    derive(&mut record.fields, &number);
    tx.touch(&co.id.clone(), TableId::Contact, &mut record, ChangeType::Created);
    co.contacts.insert(record.id.clone(), record);
}

/// Copies a customer's shared fields to its contact.
pub(crate) fn sync_from_customer(co: &mut Company, tx: &mut Tx, customer_id: &str) {
    let Some(customer) = co.customers.get(customer_id) else { return };
    let mut shared = Map::new();
    for name in SHARED {
        shared.insert(name.into(), customer.fields.get(name).cloned().unwrap_or(Value::from("")));
    }
    shared.insert("type".into(), customer.fields.get("type").cloned().unwrap_or(Value::from("Company")));
    let company = co.id.clone();
    let Some(contact) = co.contacts.values_mut().find(|c| c.str("_customerId") == customer_id) else { return };
    let mut fields = contact.fields.clone();
    for (k, v) in shared {
        fields.insert(k, v);
    }
    let number = contact.str("number").to_string();
    derive(&mut fields, &number);
    if apply(contact, &fields) {
        tx.touch(&company, TableId::Contact, contact, ChangeType::Updated);
    }
}

/// Drops the business relation of a deleted customer's contact.
pub(crate) fn unlink_customer(co: &mut Company, tx: &mut Tx, customer_id: &str) {
    let company = co.id.clone();
    if let Some(contact) = co.contacts.values_mut().find(|c| c.str("_customerId") == customer_id) {
        contact.fields.remove("_customerId");
        contact.fields.insert("contactBusinessRelation".into(), Value::from("None"));
        tx.touch(&company, TableId::Contact, contact, ChangeType::Updated);
    }
}
