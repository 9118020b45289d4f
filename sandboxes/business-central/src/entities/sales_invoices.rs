//! Sales invoices (page 30012 over "Sales Invoice Entity Aggregate") and their lines (page
//! 30043, a temporary table). Drafts and posted invoices share one collection; posting renames
//! the row to a number from the posted series and keeps its `id` (an `updated` change, not
//! delete + create) [AL-AGG]. Line changes modify the header (its totals, timestamp and ETag)
//! and notify the header's subscribers; lines themselves cannot be subscribed to [MS-WH].
//!
//! Status follows the aggregate: `Draft` until posted, then `Open` (never `Paid` here: no
//! payments are modelled).

use jiff::civil::Date;
use serde_json::{Map, Value};

use crate::clock::date_of;
use crate::entities::{Change, ChangeType, Company, Mode, Record, TableId, Tx, apply, find, normalize};
use crate::errors::ApiError;
use crate::schema::{SALES_INVOICE, SALES_INVOICE_LINE};
use crate::util::{decimal, guid, round2};

/// Customer fields copied onto the header (sell-to, bill-to and ship-to addresses).
const ADDRESS: [(&str, &str); 6] = [
    ("addressLine1", "AddressLine1"),
    ("addressLine2", "AddressLine2"),
    ("city", "City"),
    ("country", "Country"),
    ("state", "State"),
    ("postalCode", "PostCode"),
];

fn posted_error() -> ApiError {
    ApiError::dialog("The sales invoice has been posted and can no longer be modified.")
}

/// Finds the customer a header names by id and/or number.
fn resolve_customer(co: &Company, id: Option<&str>, number: Option<&str>) -> Result<String, ApiError> {
    let by_id = match id {
        Some(id) => {
            Some(co.customers.get(id).ok_or_else(|| ApiError::record_not_found("Customer", "SystemId", id))?.id.clone())
        }
        None => None,
    };
    let by_number = match number {
        Some(n) => Some(
            co.customers
                .values()
                .find(|c| c.str("number") == n)
                .ok_or_else(|| ApiError::record_not_found("Customer", "No.", n))?
                .id
                .clone(),
        ),
        None => None,
    };
    match (by_id, by_number) {
        (Some(a), Some(b)) if a != b => {
            Err(ApiError::dialog("The customerId and customerNumber refer to different customers."))
        }
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err(ApiError::required("customerNumber")),
    }
}

/// Copies the sell-to/bill-to customer onto header fields (unless the body set them).
fn fill_customer(co: &Company, fields: &mut Map<String, Value>, customer_id: &str, given: &Map<String, Value>) {
    let Some(customer) = co.customers.get(customer_id) else { return };
    fields.insert("customerId".into(), Value::from(customer.id.clone()));
    fields.insert("customerNumber".into(), Value::from(customer.str("number")));
    fields.insert("customerName".into(), Value::from(customer.str("displayName")));
    fields.insert("billToName".into(), Value::from(customer.str("displayName")));
    let mut set = |name: &str, value: Value| {
        if !given.contains_key(name) {
            fields.insert(name.into(), value);
        }
    };
    set("billToCustomerId", Value::from(customer.id.clone()));
    set("billToCustomerNumber", Value::from(customer.str("number")));
    set("shipToName", Value::from(customer.str("displayName")));
    for (from, suffix) in ADDRESS {
        for prefix in ["sellTo", "billTo", "shipTo"] {
            set(&format!("{prefix}{suffix}"), Value::from(customer.str(from)));
        }
    }
    set("phoneNumber", Value::from(customer.str("phoneNumber")));
    set("email", Value::from(customer.str("email")));
    set("currencyCode", Value::from(customer.str("currencyCode")));
}

/// POST `salesInvoices` (deep insert of `salesInvoiceLines` allowed) and the admin's create.
pub(crate) fn create(co: &mut Company, tx: &mut Tx, body: &Value, mut lines: Vec<Value>) -> Result<String, ApiError> {
    let mut body = normalize(&SALES_INVOICE, body, Mode::Create, None)?;
    if let Some(deep) = body.navs.remove("salesInvoiceLines") {
        lines.extend(deep);
    }
    let id = match body.fields.remove("id") {
        Some(id) => id.as_str().unwrap_or_default().to_string(),
        None => guid(),
    };
    if co.invoices.contains_key(&id) {
        return Err(ApiError::same_key("Sales Header", "SystemId", &id));
    }
    let customer = resolve_customer(
        co,
        body.fields.get("customerId").and_then(Value::as_str),
        body.fields.get("customerNumber").and_then(Value::as_str),
    )?;
    for bill_to in ["billToCustomerId", "billToCustomerNumber"] {
        if let Some(v) = body.fields.get(bill_to).and_then(Value::as_str) {
            let (i, n) = if bill_to.ends_with("Id") { (Some(v), None) } else { (None, Some(v)) };
            resolve_customer(co, i, n)?;
        }
    }
    crate::entities::check_email(body.fields.get("email").and_then(Value::as_str).unwrap_or(""))?;
    let number = match body.fields.get("number").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        Some(n) => {
            if co.invoices.values().any(|i| i.str("number") == n) {
                return Err(ApiError::same_key("Sales Header", "No.", n));
            }
            n.to_string()
        }
        None => co.next_number("draft"),
    };
    let today = date_of(tx.now);
    let mut record = tx.new_record(id.clone(), &SALES_INVOICE);
    let mut fields = body.fields.clone();
    fill_customer(co, &mut fields, &customer, &body.fields);
    let invoice_date =
        fields.get("invoiceDate").and_then(Value::as_str).and_then(|d| d.parse::<Date>().ok()).unwrap_or(today);
    fields.insert("invoiceDate".into(), Value::from(invoice_date.to_string()));
    if !body.fields.contains_key("postingDate") {
        fields.insert("postingDate".into(), Value::from(invoice_date.to_string()));
    }
    if !body.fields.contains_key("dueDate") {
        let due = invoice_date.checked_add(jiff::Span::new().days(30)).unwrap_or(invoice_date);
        fields.insert("dueDate".into(), Value::from(due.to_string()));
    }
    fields.insert("number".into(), Value::from(number));
    fields.insert("status".into(), Value::from("Draft"));
    fields.insert("_posted".into(), Value::from(false));
    apply(&mut record, &fields);
    co.invoices.insert(id.clone(), record);
    for line in lines {
        if let Err(e) = insert_line(co, tx, &id, &line) {
            co.invoices.remove(&id);
            remove_lines_of(co, &id);
            return Err(e);
        }
    }
    recompute(co, &id);
    let company = co.id.clone();
    if let Some(record) = co.invoices.get_mut(&id) {
        tx.touch(&company, TableId::SalesInvoice, record, ChangeType::Created);
    }
    Ok(id)
}

/// PATCH `salesInvoices(id)`.
pub(crate) fn update(co: &mut Company, tx: &mut Tx, id: &str, body: &Value) -> Result<(), ApiError> {
    let record = find(&co.invoices, id, "salesInvoices")?;
    if record.bool("_posted") {
        return Err(posted_error());
    }
    let current = record.view(&SALES_INVOICE);
    let body = normalize(&SALES_INVOICE, body, Mode::Update, Some(&current))?;
    crate::entities::check_email(body.fields.get("email").and_then(Value::as_str).unwrap_or(""))?;
    let mut fields = body.fields.clone();
    let new_id = body.fields.get("customerId").and_then(Value::as_str).filter(|v| *v != current["customerId"]);
    let new_number =
        body.fields.get("customerNumber").and_then(Value::as_str).filter(|v| *v != current["customerNumber"]);
    if new_id.is_some() || new_number.is_some() {
        let customer = resolve_customer(co, new_id, new_number)?;
        fill_customer(co, &mut fields, &customer, &Map::new());
    }
    let company = co.id.clone();
    let Some(record) = co.invoices.get_mut(id) else { return Err(ApiError::segment_not_found("salesInvoices")) };
    if !apply(record, &fields) {
        return Ok(());
    }
    recompute(co, id);
    if let Some(record) = co.invoices.get_mut(id) {
        tx.touch(&company, TableId::SalesInvoice, record, ChangeType::Updated);
    }
    Ok(())
}

/// DELETE `salesInvoices(id)`: drafts only.
pub(crate) fn delete(co: &mut Company, tx: &mut Tx, id: &str) -> Result<(), ApiError> {
    if find(&co.invoices, id, "salesInvoices")?.bool("_posted") {
        return Err(ApiError::dialog("You cannot delete a posted sales invoice."));
    }
    co.invoices.remove(id);
    remove_lines_of(co, id);
    tx.changes.push(Change {
        company: co.id.clone(),
        table: TableId::SalesInvoice,
        id: id.into(),
        kind: ChangeType::Deleted,
    });
    Ok(())
}

/// The bound action `Microsoft.NAV.post` and the admin's posting: new number from the posted
/// series, status `Open`, same id; the customer's balance (a FlowField) grows silently.
pub(crate) fn post(co: &mut Company, tx: &mut Tx, id: &str) -> Result<(), ApiError> {
    let record = find(&co.invoices, id, "salesInvoices")?;
    if record.bool("_posted") {
        return Err(ApiError::dialog(format!("Sales invoice {} has already been posted.", record.str("number"))));
    }
    let postable = lines_of(co, id).iter().any(|l| l.str("lineType") != "Comment" && l.f64("quantity") != 0.0);
    if !postable {
        return Err(ApiError::dialog("There is nothing to post."));
    }
    let customer_id = record.str("customerId").to_string();
    if let Some(customer) = co.customers.get(&customer_id)
        && matches!(customer.str("blocked"), "Invoice" | "All")
    {
        return Err(ApiError::dialog(format!(
            "You cannot post this type of document when Customer {} is blocked with type {}",
            customer.str("number"),
            customer.str("blocked")
        )));
    }
    let number = co.next_number("posted");
    let company = co.id.clone();
    let Some(record) = co.invoices.get_mut(id) else { return Err(ApiError::segment_not_found("salesInvoices")) };
    let total = record.f64("totalAmountIncludingTax");
    record.fields.insert("number".into(), Value::from(number));
    record.fields.insert("status".into(), Value::from("Open"));
    record.fields.insert("_posted".into(), Value::from(true));
    record.fields.insert("remainingAmount".into(), decimal(total));
    tx.touch(&company, TableId::SalesInvoice, record, ChangeType::Updated);
    if let Some(customer) = co.customers.get_mut(&customer_id) {
        let balance = round2(customer.f64("balanceDue") + total);
        customer.fields.insert("balanceDue".into(), decimal(balance));
    }
    Ok(())
}

/// Keeps headers in step with a renamed customer (BC cascades renames).
pub(crate) fn rename_customer(co: &mut Company, tx: &mut Tx, customer_id: &str, number: &str) {
    let company = co.id.clone();
    for record in co.invoices.values_mut() {
        let mut fields = Map::new();
        if record.str("customerId") == customer_id {
            fields.insert("customerNumber".into(), Value::from(number));
        }
        if record.str("billToCustomerId") == customer_id {
            fields.insert("billToCustomerNumber".into(), Value::from(number));
        }
        if !fields.is_empty() && apply(record, &fields) {
            tx.touch(&company, TableId::SalesInvoice, record, ChangeType::Updated);
        }
    }
}

/// The lines of a document in sequence order.
pub(crate) fn lines_of<'a>(co: &'a Company, document: &str) -> Vec<&'a Record> {
    let ids = co.line_index.get(document).into_iter().flatten();
    let mut lines: Vec<&Record> = ids.filter_map(|id| co.lines.get(id)).collect();
    lines.sort_by_key(|l| l.fields.get("sequence").and_then(Value::as_i64).unwrap_or(0));
    lines
}

/// Removes every line of a document.
fn remove_lines_of(co: &mut Company, document: &str) {
    for id in co.line_index.remove(document).unwrap_or_default() {
        co.lines.remove(&id);
    }
}

/// Recomputes header totals from the lines.
fn recompute(co: &mut Company, document: &str) {
    let (mut excl, mut tax) = (0.0, 0.0);
    for line in lines_of(co, document) {
        excl += line.f64("amountExcludingTax");
        tax += line.f64("totalTaxAmount");
    }
    let Some(header) = co.invoices.get_mut(document) else { return };
    let discount = header.f64("discountAmount");
    let excl = round2(excl - discount);
    let incl = round2(excl + tax);
    header.fields.insert("totalAmountExcludingTax".into(), decimal(excl));
    header.fields.insert("totalTaxAmount".into(), decimal(round2(tax)));
    header.fields.insert("totalAmountIncludingTax".into(), decimal(incl));
    header.fields.insert("remainingAmount".into(), decimal(incl));
}

/// Line amounts: quantity × price less discount; no tax setup, so no tax.
fn compute_line(fields: &mut Map<String, Value>, percent_given: bool) {
    let get = |fields: &Map<String, Value>, n: &str| fields.get(n).and_then(Value::as_f64).unwrap_or(0.0);
    let base = round2(get(fields, "quantity") * get(fields, "unitPrice"));
    let discount = if percent_given {
        round2(base * get(fields, "discountPercent") / 100.0)
    } else {
        let amount = get(fields, "discountAmount");
        let pct = if base != 0.0 { (amount / base * 100.0 * 1e5).round() / 1e5 } else { 0.0 };
        fields.insert("discountPercent".into(), decimal(pct));
        amount
    };
    let amount = round2(base - discount);
    fields.insert("discountAmount".into(), decimal(discount));
    for name in ["amountExcludingTax", "amountIncludingTax", "netAmount", "netAmountIncludingTax"] {
        fields.insert(name.into(), decimal(amount));
    }
    for name in ["taxPercent", "totalTaxAmount", "netTaxAmount", "invoiceDiscountAllocation"] {
        fields.insert(name.into(), Value::from(0));
    }
}

/// Resolves the item of an `Item` line; fills number, description, unit and price defaults.
fn resolve_item(
    co: &Company,
    fields: &mut Map<String, Value>,
    given: &Map<String, Value>,
    creating: bool,
) -> Result<(), ApiError> {
    let item_id = given.get("itemId").and_then(Value::as_str).filter(|i| *i != crate::util::EMPTY_GUID);
    let number = given.get("lineObjectNumber").and_then(Value::as_str).filter(|n| !n.is_empty());
    let item = match (item_id, number) {
        (Some(id), _) => co.items.get(id).ok_or_else(|| ApiError::record_not_found("Item", "SystemId", id))?,
        (None, Some(n)) => co
            .items
            .values()
            .find(|i| i.str("number") == n)
            .ok_or_else(|| ApiError::record_not_found("Item", "No.", n))?,
        (None, None) if creating => return Err(ApiError::required("itemId")),
        (None, None) => return Ok(()),
    };
    if let Some(n) = number
        && n != item.str("number")
    {
        return Err(ApiError::dialog("The itemId and lineObjectNumber refer to different items."));
    }
    if item.bool("blocked") {
        return Err(ApiError::dialog(format!("Item {} is blocked.", item.str("number"))));
    }
    fields.insert("itemId".into(), Value::from(item.id.clone()));
    fields.insert("lineObjectNumber".into(), Value::from(item.str("number")));
    for (line_field, item_field) in [
        ("description", "displayName"),
        ("unitOfMeasureCode", "baseUnitOfMeasureCode"),
        ("unitOfMeasureId", "baseUnitOfMeasureId"),
    ] {
        if !given.contains_key(line_field) {
            fields.insert(line_field.into(), item.fields.get(item_field).cloned().unwrap_or(Value::from("")));
        }
    }
    if !given.contains_key("unitPrice") {
        fields.insert("unitPrice".into(), item.fields.get("unitPrice").cloned().unwrap_or(Value::from(0)));
    }
    Ok(())
}

/// Inserts a line without touching the header (the caller does).
fn insert_line(co: &mut Company, tx: &mut Tx, document: &str, body: &Value) -> Result<String, ApiError> {
    let mut body = normalize(&SALES_INVOICE_LINE, body, Mode::Create, None)?;
    if let Some(doc) = body.fields.get("documentId").and_then(Value::as_str)
        && doc != document
    {
        return Err(ApiError::dialog("The documentId of the line does not match the sales invoice."));
    }
    let id = match body.fields.remove("id") {
        Some(id) => id.as_str().unwrap_or_default().to_string(),
        None => guid(),
    };
    if co.lines.contains_key(&id) {
        return Err(ApiError::same_key("Sales Line", "SystemId", &id));
    }
    let has_item = body.fields.contains_key("itemId") || body.fields.contains_key("lineObjectNumber");
    let line_type = body
        .fields
        .get("lineType")
        .and_then(Value::as_str)
        .unwrap_or(if has_item { "Item" } else { "Comment" })
        .to_string();
    let mut fields = body.fields.clone();
    fields.insert("lineType".into(), Value::from(line_type.clone()));
    if line_type == "Item" {
        resolve_item(co, &mut fields, &body.fields, true)?;
    }
    let sequence = match body.fields.get("sequence").and_then(Value::as_i64) {
        Some(s) => {
            if lines_of(co, document).iter().any(|l| l.fields.get("sequence").and_then(Value::as_i64) == Some(s)) {
                return Err(ApiError::same_key("Sales Line", "Line No.", &s.to_string()));
            }
            s
        }
        None => {
            lines_of(co, document).last().and_then(|l| l.fields.get("sequence")).and_then(Value::as_i64).unwrap_or(0)
                + 10000
        }
    };
    fields.insert("sequence".into(), Value::from(sequence));
    fields.insert("documentId".into(), Value::from(document));
    let percent_given = body.fields.contains_key("discountPercent");
    let mut record = tx.new_record(id.clone(), &SALES_INVOICE_LINE);
    apply(&mut record, &fields);
    compute_line(&mut record.fields, percent_given);
    record.version = tx.next_version();
    co.lines.insert(id.clone(), record);
    co.line_index.entry(document.to_owned()).or_default().insert(id.clone());
    Ok(id)
}

fn draft<'a>(co: &'a Company, document: &str) -> Result<&'a Record, ApiError> {
    let header = find(&co.invoices, document, "salesInvoices")?;
    if header.bool("_posted") { Err(posted_error()) } else { Ok(header) }
}

fn touch_header(co: &mut Company, tx: &mut Tx, document: &str) {
    recompute(co, document);
    let company = co.id.clone();
    if let Some(header) = co.invoices.get_mut(document) {
        tx.touch(&company, TableId::SalesInvoice, header, ChangeType::Updated);
    }
}

/// POST `salesInvoices(id)/salesInvoiceLines` or `salesInvoiceLines` with a `documentId`.
pub(crate) fn create_line(
    co: &mut Company,
    tx: &mut Tx,
    document: Option<&str>,
    body: &Value,
) -> Result<String, ApiError> {
    let document = match document {
        Some(d) => d.to_string(),
        None => body
            .get("documentId")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| ApiError::required("documentId"))?,
    };
    draft(co, &document)?;
    let id = insert_line(co, tx, &document, body)?;
    touch_header(co, tx, &document);
    Ok(id)
}

/// PATCH a line.
pub(crate) fn update_line(co: &mut Company, tx: &mut Tx, id: &str, body: &Value) -> Result<(), ApiError> {
    let line = find(&co.lines, id, "salesInvoiceLines")?;
    let document = line.str("documentId").to_string();
    draft(co, &document)?;
    let current = line.view(&SALES_INVOICE_LINE);
    let body = normalize(&SALES_INVOICE_LINE, body, Mode::Update, Some(&current))?;
    let mut fields = line.fields.clone();
    for (k, v) in &body.fields {
        fields.insert(k.clone(), v.clone());
    }
    if fields.get("lineType").and_then(Value::as_str) == Some("Item")
        && (body.fields.contains_key("itemId") || body.fields.contains_key("lineObjectNumber"))
    {
        resolve_item(co, &mut fields, &body.fields, false)?;
    }
    compute_line(&mut fields, body.fields.contains_key("discountPercent"));
    let version = tx.next_version();
    let Some(line) = co.lines.get_mut(id) else { return Err(ApiError::segment_not_found("salesInvoiceLines")) };
    if !apply(line, &fields) {
        return Ok(());
    }
    line.version = version;
    touch_header(co, tx, &document);
    Ok(())
}

/// DELETE a line.
pub(crate) fn delete_line(co: &mut Company, tx: &mut Tx, id: &str) -> Result<(), ApiError> {
    let document = find(&co.lines, id, "salesInvoiceLines")?.str("documentId").to_string();
    draft(co, &document)?;
    co.lines.remove(id);
    if let Some(ids) = co.line_index.get_mut(&document) {
        ids.remove(id);
    }
    touch_header(co, tx, &document);
    Ok(())
}
