//! The custom consent API (`api/contoso/marketing/v1.0/companies({id})/customerConsents`): an
//! API page over the Customer table exposing a table extension's consent fields, keyed by the
//! customer's SystemId (`ODataKeyFields = SystemId`), no insert or delete. Because it is the
//! same row, a consent change bumps the customer's `lastModifiedDateTime` and ETag and notifies
//! `customers` subscribers too — and any customer edit notifies consent subscribers.

use serde_json::{Map, Value};

use crate::entities::{ChangeType, Company, Mode, Record, TableId, Tx, apply, find, normalize};
use crate::errors::ApiError;
use crate::odata::Row;
use crate::schema::CUSTOMER_CONSENT;

/// Consent properties and the customer fields holding them.
const FIELDS: [(&str, &str); 4] = [
    ("marketingConsent", "_marketingConsent"),
    ("consentStatus", "_consentStatus"),
    ("consentChangedAt", "_consentChangedAt"),
    ("bounced", "_bounced"),
];

/// The consent view of a customer row.
pub(crate) fn view(customer: &Record) -> Map<String, Value> {
    let mut view = Map::new();
    view.insert("id".into(), Value::from(customer.id.clone()));
    view.insert("customerId".into(), Value::from(customer.id.clone()));
    view.insert("customerNumber".into(), Value::from(customer.str("number")));
    view.insert("displayName".into(), Value::from(customer.str("displayName")));
    view.insert("email".into(), Value::from(customer.str("email")));
    for (prop, field) in FIELDS {
        let value = customer.fields.get(field).cloned().unwrap_or_else(|| {
            crate::entities::default_value(
                CUSTOMER_CONSENT.prop(prop).map(|p| p.ty).unwrap_or(crate::schema::Edm::String),
            )
        });
        view.insert(prop.into(), value);
    }
    view.insert("lastModifiedDateTime".into(), Value::from(crate::clock::fmt_ms(customer.modified)));
    view
}

/// The row as served (the ETag is the customer row's).
pub(crate) fn row(customer: &Record) -> Row {
    Row { view: view(customer), etag: Some(customer.etag()) }
}

/// PATCH `customerConsents(id)`. Changing `marketingConsent` or `consentStatus` stamps
/// `consentChangedAt` unless the body sets it.
pub(crate) fn update(co: &mut Company, tx: &mut Tx, id: &str, body: &Value) -> Result<(), ApiError> {
    let current = view(find(&co.customers, id, "customerConsents")?);
    let body = normalize(&CUSTOMER_CONSENT, body, Mode::Update, Some(&current))?;
    let mut fields = Map::new();
    for (prop, field) in FIELDS {
        if let Some(v) = body.fields.get(prop) {
            fields.insert(field.into(), v.clone());
        }
    }
    let consent_changed =
        ["marketingConsent", "consentStatus"].iter().any(|p| body.fields.get(*p).is_some_and(|v| *v != current[*p]));
    if consent_changed && !body.fields.contains_key("consentChangedAt") {
        fields.insert("_consentChangedAt".into(), Value::from(crate::clock::fmt_ms(tx.stamp)));
    }
    let company = co.id.clone();
    let Some(record) = co.customers.get_mut(id) else { return Err(ApiError::segment_not_found("customerConsents")) };
    if apply(record, &fields) {
        tx.touch(&company, TableId::Customer, record, ChangeType::Updated);
    }
    Ok(())
}
