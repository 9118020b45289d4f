//! The data of each company and the business logic of the API pages: customers (with their
//! contact business relation), items, contacts, sales invoices with lines (drafts and posted in
//! one aggregate, posting renumbers), companies and the custom consent API over the Customer
//! table.
//!
//! Every write runs inside a [`Tx`]: it takes new row versions (ETags), stamps
//! `SystemModifiedAt` from the virtual clock and collects [`Change`]s for the webhook engine.
//! A write that changes nothing (a null update) leaves the row, its ETag and its timestamp alone
//! and notifies nobody, as BC does.

pub(crate) mod companies;
pub(crate) mod consents;
pub(crate) mod contacts;
pub(crate) mod customers;
pub(crate) mod items;
pub(crate) mod sales_invoices;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::clock::{BLANK_DATE, fmt_ms};
use crate::errors::ApiError;
use crate::odata::Row;
use crate::odata::etag::etag;
use crate::schema::{Access, Edm, EntityType};
use crate::util::{EMPTY_GUID, decimal, is_guid};

/// A table row: SystemId, field values (rendered JSON; private fields start with `_`),
/// `SystemCreatedAt`, `SystemModifiedAt` and the row version behind the ETag.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    /// The SystemId (the API key).
    pub id: String,
    /// Field values as the API renders them, plus private `_` fields.
    pub fields: Map<String, Value>,
    /// `SystemCreatedAt`.
    pub created: Timestamp,
    /// `SystemModifiedAt`: the `lastModifiedDateTime` of the API.
    pub modified: Timestamp,
    /// Row version behind the ETag.
    pub version: u64,
}

impl Record {
    pub(crate) fn str(&self, name: &str) -> &str {
        self.fields.get(name).and_then(Value::as_str).unwrap_or("")
    }

    pub(crate) fn f64(&self, name: &str) -> f64 {
        self.fields.get(name).and_then(Value::as_f64).unwrap_or(0.0)
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.fields.get(name).and_then(Value::as_bool).unwrap_or(false)
    }

    pub(crate) fn etag(&self) -> String {
        etag(&self.id, self.version)
    }

    /// All properties of `ty` by name.
    pub(crate) fn view(&self, ty: &EntityType) -> Map<String, Value> {
        self.view_of(ty, |_| true)
    }

    /// The view restricted to the properties `keep` names (a listing filters and orders on a
    /// few; only the rows of the page need all of them).
    pub(crate) fn view_of(&self, ty: &EntityType, keep: impl Fn(&str) -> bool) -> Map<String, Value> {
        let mut view = Map::new();
        for prop in ty.props.iter().filter(|p| keep(p.name)) {
            let value = match prop.name {
                "id" => Value::from(self.id.clone()),
                "lastModifiedDateTime" => Value::from(fmt_ms(self.modified)),
                name => self.fields.get(name).cloned().unwrap_or_else(|| default_value(prop.ty)),
            };
            view.insert(prop.name.to_string(), value);
        }
        view
    }

    /// The row as the API serves it.
    pub(crate) fn row(&self, ty: &EntityType) -> Row {
        Row { view: self.view(ty), etag: Some(self.etag()) }
    }
}

/// The value of an untouched field: BC has no nulls (`""`, `0`, `false`, the empty GUID, the
/// blank date, the first enum member).
pub(crate) fn default_value(ty: Edm) -> Value {
    match ty {
        Edm::Guid => Value::from(EMPTY_GUID),
        Edm::String => Value::from(""),
        Edm::Decimal | Edm::Int32 | Edm::Int64 => Value::from(0),
        Edm::Boolean => Value::from(false),
        Edm::DateTimeOffset => Value::from(crate::clock::BLANK_DATETIME),
        Edm::Date => Value::from(BLANK_DATE),
        Edm::Enum(e) => Value::from(e.default_member()),
    }
}

/// A table keyed by SystemId.
pub(crate) type Table = BTreeMap<String, Record>;

/// The tables that raise webhook notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableId {
    Customer,
    Item,
    Contact,
    SalesInvoice,
}

/// What happened to a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Created,
    Updated,
    Deleted,
}

impl ChangeType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "created",
            ChangeType::Updated => "updated",
            ChangeType::Deleted => "deleted",
        }
    }
}

/// One registered change (what BC's OnDatabaseInsert/Modify/Delete hooks record).
#[derive(Clone, Debug)]
pub(crate) struct Change {
    /// The company the row belongs to.
    pub company: String,
    /// The table (subscriptions watch tables, not pages).
    pub table: TableId,
    /// The row's SystemId.
    pub id: String,
    /// Insert, modify or delete.
    pub kind: ChangeType,
}

/// One write: new row versions, the modification stamp, the changes it made.
#[derive(Debug)]
pub(crate) struct Tx {
    /// The last row version handed out.
    pub version: u64,
    /// `SystemModifiedAt` of everything this write touches.
    pub stamp: Timestamp,
    /// The virtual now (work date, consent timestamps).
    pub now: Timestamp,
    /// What this write did, for the webhook engine.
    pub changes: Vec<Change>,
}

impl Tx {
    pub(crate) fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Marks a row modified (new version, new stamp) and records the change.
    pub(crate) fn touch(&mut self, company: &str, table: TableId, record: &mut Record, kind: ChangeType) {
        record.version = self.next_version();
        record.modified = self.stamp;
        if kind == ChangeType::Created {
            record.created = self.stamp;
        }
        self.changes.push(Change { company: company.to_string(), table, id: record.id.clone(), kind });
    }

    /// A fresh record with defaults for `ty`.
    pub(crate) fn new_record(&mut self, id: String, ty: &EntityType) -> Record {
        let mut fields = Map::new();
        for prop in ty.props {
            if prop.name != "id" && prop.name != "lastModifiedDateTime" {
                fields.insert(prop.name.to_string(), default_value(prop.ty));
            }
        }
        Record { id, fields, created: self.stamp, modified: self.stamp, version: 0 }
    }
}

/// One company's tables and number series.
#[derive(Debug)]
pub(crate) struct Company {
    /// The company's SystemId.
    pub id: String,
    /// The company name (alternate key).
    pub name: String,
    /// When it was created.
    pub created: Timestamp,
    /// Its row version (`timestamp`).
    pub timestamp: i64,
    /// Table Customer (also behind the consent API).
    pub customers: Table,
    /// Table Item.
    pub items: Table,
    /// Table Contact.
    pub contacts: Table,
    /// Sales invoice headers, drafts and posted.
    pub invoices: Table,
    /// Sales invoice lines of all documents.
    pub lines: Table,
    /// The ids of each document's lines, so that a document's lines (every `$expand`, every
    /// posting) are found without scanning the lines of the whole company. Kept by
    /// `sales_invoices`, the only module that adds or removes lines.
    pub line_index: BTreeMap<String, BTreeSet<String>>,
    /// Last numbers used per series (customers, items, contacts, draft and posted invoices).
    pub series: BTreeMap<&'static str, u64>,
    /// Numbers users gave explicitly (to customers, items, contacts), which the series skip.
    /// Numbers a series hands out never collide with each other, so these are the only ones to
    /// check: scanning the table for every new number made seeding quadratic.
    pub explicit_numbers: BTreeSet<String>,
}

impl Company {
    pub(crate) fn new(id: String, name: String, created: Timestamp, timestamp: i64) -> Company {
        Company {
            id,
            name,
            created,
            timestamp,
            customers: Table::new(),
            items: Table::new(),
            contacts: Table::new(),
            invoices: Table::new(),
            lines: Table::new(),
            line_index: BTreeMap::new(),
            series: BTreeMap::new(),
            explicit_numbers: BTreeSet::new(),
        }
    }

    /// The next free number of a series (`C00010`, `S-INV101001`, …).
    pub(crate) fn next_number(&mut self, series: &'static str) -> String {
        let (start, step, format): (u64, u64, fn(u64) -> String) = match series {
            "customer" => (10, 10, |n| format!("C{n:05}")),
            "item" => (10, 10, |n| format!("I{n:05}")),
            "contact" => (1, 1, |n| format!("CT{n:06}")),
            "draft" => (101001, 1, |n| format!("S-INV{n}")),
            _ => (103001, 1, |n| format!("PS-INV{n}")),
        };
        loop {
            let n = self.series.get(series).map(|n| n + step).unwrap_or(start);
            self.series.insert(series, n);
            let number = format(n);
            if !self.explicit_numbers.contains(&number) {
                return number;
            }
        }
    }
}

/// Finds a row or answers BC's 404 for the segment.
pub(crate) fn find<'a>(table: &'a Table, id: &str, set: &str) -> Result<&'a Record, ApiError> {
    table.get(id).ok_or_else(|| ApiError::segment_not_found(set))
}

/// Create or modify.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mode {
    Create,
    Update,
}

/// A validated request body: property values in canonical JSON, and deep-insert collections.
#[derive(Debug, Default)]
pub(crate) struct Body {
    /// Properties to write.
    pub fields: Map<String, Value>,
    /// Deep-insert collections (`salesInvoiceLines` on POST).
    pub navs: BTreeMap<String, Vec<Value>>,
}

/// Checks a body against the entity type the way the OData stack and the API page do: known
/// properties only, EDM types, MaxLength, no writes to read-only fields (sending back the
/// current value is harmless), enum members by their XML-encoded names.
pub(crate) fn normalize(
    ty: &EntityType,
    body: &Value,
    mode: Mode,
    current: Option<&Map<String, Value>>,
) -> Result<Body, ApiError> {
    let Some(object) = body.as_object() else { return Err(ApiError::invalid_body()) };
    let mut out = Body::default();
    for (name, value) in object {
        if name.starts_with('@') || name.contains("@odata.") {
            continue;
        }
        if let Some(nav) = ty.nav(name) {
            match (mode, value) {
                (Mode::Create, Value::Array(items)) if nav.many => {
                    out.navs.insert(name.clone(), items.clone());
                    continue;
                }
                _ => return Err(ApiError::new(400, "BadRequest", "Deep update is not supported.")),
            }
        }
        let Some(prop) = ty.prop(name) else { return Err(ApiError::body_unknown_property(name, ty.name)) };
        let canonical = convert(prop.ty, prop.max, value)?;
        let writable = match prop.access {
            Access::ReadWrite => true,
            Access::Insert => mode == Mode::Create,
            Access::ReadOnly => false,
        };
        if !writable {
            if current.and_then(|c| c.get(name)) == Some(&canonical) {
                continue;
            }
            return Err(ApiError::read_only(name));
        }
        out.fields.insert(name.clone(), canonical);
    }
    Ok(out)
}

/// Converts a JSON value to a property's canonical form.
pub(crate) fn convert(ty: Edm, max: Option<u32>, value: &Value) -> Result<Value, ApiError> {
    let wrong = || ApiError::body_type(value, &ty.type_name());
    match ty {
        Edm::String => {
            let s = value.as_str().ok_or_else(wrong)?;
            if let Some(max) = max
                && s.chars().count() > max as usize
            {
                return Err(ApiError::too_long(s, max));
            }
            Ok(Value::from(s))
        }
        Edm::Guid => {
            let s = value.as_str().filter(|s| is_guid(s)).ok_or_else(wrong)?;
            Ok(Value::from(s.to_ascii_lowercase()))
        }
        Edm::Decimal => value.as_f64().map(decimal).ok_or_else(wrong),
        Edm::Int32 => value.as_i64().filter(|n| i32::try_from(*n).is_ok()).map(Value::from).ok_or_else(wrong),
        Edm::Int64 => value.as_i64().map(Value::from).ok_or_else(wrong),
        Edm::Boolean => value.as_bool().map(Value::from).ok_or_else(wrong),
        Edm::Date => {
            let s = value.as_str().ok_or_else(wrong)?;
            s.parse::<jiff::civil::Date>().map(|d| Value::from(d.to_string())).map_err(|_| wrong())
        }
        Edm::DateTimeOffset => {
            let s = value.as_str().ok_or_else(wrong)?;
            s.parse::<Timestamp>().map(|t| Value::from(fmt_ms(t))).map_err(|_| wrong())
        }
        Edm::Enum(e) => {
            let s = value.as_str().filter(|s| e.has(s)).ok_or_else(wrong)?;
            Ok(Value::from(s))
        }
    }
}

/// Applies validated fields; true when anything changed.
pub(crate) fn apply(record: &mut Record, fields: &Map<String, Value>) -> bool {
    let mut changed = false;
    for (name, value) in fields {
        if record.fields.get(name) != Some(value) {
            record.fields.insert(name.clone(), value.clone());
            changed = true;
        }
    }
    changed
}

/// BC's e-mail check (MailManagement.ValidateEmailAddressField): `;`-separated addresses,
/// each `local@domain` without spaces.
pub(crate) fn check_email(email: &str) -> Result<(), ApiError> {
    if email.is_empty() {
        return Ok(());
    }
    let valid = email.split(';').map(str::trim).all(|address| {
        let mut parts = address.split('@');
        matches!((parts.next(), parts.next(), parts.next()), (Some(local), Some(domain), None)
            if !local.is_empty() && !domain.is_empty() && !domain.starts_with('.') && !domain.ends_with('.')
                && !address.contains(char::is_whitespace))
    });
    if valid { Ok(()) } else { Err(ApiError::dialog(format!("The email address \"{email}\" is not valid."))) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{CUSTOMER, ITEM};
    use serde_json::json;

    #[test]
    fn normalize_is_strict() {
        let ok = normalize(
            &ITEM,
            &json!({"type": "Non_x002D_Inventory", "unitPrice": 12.5, "@odata.etag": "x"}),
            Mode::Create,
            None,
        )
        .unwrap();
        assert_eq!(ok.fields["type"], "Non_x002D_Inventory");
        assert!(normalize(&ITEM, &json!({"type": "Non-Inventory"}), Mode::Create, None).is_err());
        assert!(normalize(&ITEM, &json!({"nope": 1}), Mode::Create, None).is_err());
        assert!(normalize(&ITEM, &json!({"inventory": 5}), Mode::Update, None).is_err());
        let long = "x".repeat(101);
        assert_eq!(
            normalize(&CUSTOMER, &json!({"displayName": long}), Mode::Create, None).unwrap_err().code,
            "Application_StringExceededLength"
        );
        assert!(
            normalize(&CUSTOMER, &json!({"id": "b37406e8-eaf1-ef11-9b20-d99fd2b71a0f"}), Mode::Update, None).is_err()
        );
        assert!(normalize(&CUSTOMER, &json!([1]), Mode::Update, None).is_err());
    }

    #[test]
    fn emails() {
        assert!(check_email("a@b.com").is_ok());
        assert!(check_email("a@b.com; c@d.org").is_ok());
        assert!(check_email("not an email").is_err());
        assert!(check_email("a@@b").is_err());
    }
}
