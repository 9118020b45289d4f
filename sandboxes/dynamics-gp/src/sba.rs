//! The Service Based Architecture (REST) routes, JSON.
//!
//! The reference says the SBA routes and bodies are **not publicly confirmed** (§1.2, §1.4,
//! §8.1). The sandbox's defaults, to be replaced once a real `/help` page is captured:
//!
//! - `GET /GPService/Tenants({tenant})/help` — a JSON list of the routes below.
//! - `GET /GPService/Tenants({tenant})/Companies({company name})/Sales/Customers[.json]`
//! - `GET …/Sales/Customers({CUSTNMBR})[.json]`
//! - `GET …/Sales/ReceivablesInvoices[.json]`
//! - `GET …/Sales/ReceivablesInvoices({DOCNUMBR})[.json]`
//!
//! The company segment is the GP company **name** (not the database name), URL-encoded
//! (`Companies(Fabrikam%2C%20Inc.)`; encoded parentheses `%28`/`%29` are accepted too) and
//! matched case-insensitively. Bodies are `{"Payload": …, "Messages": []}` with the SOAP
//! objects' field names; errors are `{"Payload": null, "Messages": [{"Type": "Error", "Text":
//! …}]}` with 400/404/405. Query options (`$filter`, `$top`, paging, modified-since) are
//! refused with 400: nothing shows SBA has them, so a connector must not rely on them.

use serde_json::{Value, json};

use crate::clock::{format_date, format_ts};
use crate::model::{Company, Customer, Invoice, format_money, iso, key};
use crate::state::Shared;

/// An SBA answer: status and JSON body.
pub struct SbaReply {
    /// HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

fn error(status: u16, text: impl Into<String>) -> SbaReply {
    SbaReply { status, body: json!({"Payload": null, "Messages": [{"Type": "Error", "Text": text.into()}]}) }
}

fn ok(payload: Value) -> SbaReply {
    SbaReply { status: 200, body: json!({"Payload": payload, "Messages": []}) }
}

/// Percent-decodes a path segment (`%2C` → `,`); `None` for invalid encodings or UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `Name(inner)` → `inner`, case-insensitive on the name.
fn call<'a>(segment: &'a str, name: &str) -> Option<&'a str> {
    let open = segment.find('(')?;
    (segment[..open].eq_ignore_ascii_case(name) && segment.ends_with(')'))
        .then(|| &segment[open + 1..segment.len() - 1])
}

/// Handles a request under `/GPService/`. `path` is the raw path, `query` the raw query.
pub fn handle(shared: &Shared, method: &str, path: &str, query: Option<&str>) -> SbaReply {
    if query.is_some_and(|q| !q.is_empty()) {
        return error(400, "Query options are not supported by this service.");
    }
    let segments: Option<Vec<String>> = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let Some(segments) = segments else {
        return error(400, "The request URL is not validly encoded.");
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let [service, tenant, rest @ ..] = segments.as_slice() else {
        return error(404, "Not found.");
    };
    let tenant_ok = service.eq_ignore_ascii_case("GPService")
        && call(tenant, "Tenants").is_some_and(|t| t.eq_ignore_ascii_case(&shared.config.tenant));
    if !tenant_ok {
        return error(404, format!("Tenant not found; this service hosts Tenants({}).", shared.config.tenant));
    }
    if method != "GET" {
        return error(405, format!("The {method} method is not supported by this sandbox's SBA routes."));
    }
    if let [help] = rest
        && help.eq_ignore_ascii_case("help")
    {
        return ok(json!({
            "Tenant": shared.config.tenant,
            "Routes": [
                "Companies({company name})/Sales/Customers",
                "Companies({company name})/Sales/Customers({customer id})",
                "Companies({company name})/Sales/ReceivablesInvoices",
                "Companies({company name})/Sales/ReceivablesInvoices({document number})",
            ],
        }));
    }
    let [company_segment, module, resource] = rest else {
        return error(404, "Not found.");
    };
    let Some(company_name) = call(company_segment, "Companies") else {
        return error(404, "Not found.");
    };
    let db = shared.db();
    let Some(company) = db.values().find(|c| c.name.eq_ignore_ascii_case(company_name)) else {
        return error(404, format!("Company '{company_name}' not found."));
    };
    if !module.eq_ignore_ascii_case("Sales") {
        return error(404, "Not found.");
    }
    let resource = resource.strip_suffix(".json").unwrap_or(resource);
    if resource.eq_ignore_ascii_case("Customers") {
        return ok(Value::Array(company.customers.values().map(|c| customer_summary(c)).collect()));
    }
    if let Some(id) = call(resource, "Customers") {
        return match company.customers.get(&key(id)) {
            Some(c) => ok(customer(company, c)),
            None => error(404, format!("Customer '{id}' not found.")),
        };
    }
    if resource.eq_ignore_ascii_case("ReceivablesInvoices") {
        return ok(Value::Array(company.invoices.values().map(invoice_summary).collect()));
    }
    if let Some(id) = call(resource, "ReceivablesInvoices") {
        return match company.invoices.get(&key(id)) {
            Some(i) => ok(invoice(i)),
            None => error(404, format!("Receivables invoice '{id}' not found.")),
        };
    }
    error(404, "Not found.")
}

fn id(value: &str) -> Value {
    json!({ "Id": value })
}

fn money(iso_code: &str, cents: i64) -> Value {
    let value: f64 = format_money(cents).parse().unwrap_or(0.0);
    json!({"Currency": iso_code, "Value": value, "DecimalDigits": 2})
}

fn customer_summary(c: &Customer) -> Value {
    let i = &c.input;
    let primary = c.primary().map(|a| &a.input);
    json!({
        "Key": id(&i.id), "Name": i.name, "IsActive": !i.inactive, "IsOnHold": i.on_hold,
        "CustomerClassKey": id(&i.class_id), "CorporateAccountKey": id(&i.corporate_account_id),
        "SalespersonKey": id(&i.salesperson_id), "State": primary.map(|a| a.state.as_str()).unwrap_or(""),
        "PhoneNumbers": primary.map(|a| vec![&a.phone1, &a.phone2, &a.phone3]).unwrap_or_default()
            .into_iter().filter(|p| !p.is_empty()).map(|p| json!({"Value": p})).collect::<Vec<_>>(),
        "CreatedDate": format_date(c.created), "ModifiedDate": format_ts(c.ts), "LastModifiedDate": format_ts(c.ts),
    })
}

fn customer(company: &Company, c: &Customer) -> Value {
    let i = &c.input;
    let currency = if i.currency_id.is_empty() { &company.functional_currency } else { &i.currency_id };
    let mut summary = customer_summary(c);
    let extra = json!({
        "Shortname": i.short_name, "StatementName": i.statement_name, "Comment1": i.comment1,
        "Comment2": i.comment2, "PaymentTermsKey": id(&i.payment_terms_id), "CurrencyKey": {"ISOCode": iso(currency)},
        "UserDefined1": i.user_defined1, "UserDefined2": i.user_defined2,
        "DefaultAddressKey": {"CustomerKey": id(&i.id), "Id": c.primary().map(|a| a.input.id.as_str()).unwrap_or("")},
        "Addresses": c.addresses.iter().map(|a| {
            let x = &a.input;
            json!({
                "Key": {"CustomerKey": id(&i.id), "Id": x.id}, "Line1": x.line1, "Line2": x.line2, "Line3": x.line3,
                "City": x.city, "State": x.state, "PostalCode": x.postal_code, "CountryRegion": x.country,
                "Phone1": {"Value": x.phone1}, "ContactPerson": x.contact_person,
                "CreatedDate": format_date(a.created), "ModifiedDate": format_ts(a.ts), "LastModifiedDate": format_ts(a.ts),
                "InternetAddresses": a.internet.as_deref().map(|(n, _)| json!({
                    "EmailToAddress": n.email_to, "EmailCcAddress": n.email_cc, "EmailBccAddress": n.email_bcc,
                    "InternetField1": n.inet.first().cloned().unwrap_or_default(),
                    "InternetField2": n.inet.get(1).cloned().unwrap_or_default(),
                })),
            })
        }).collect::<Vec<_>>(),
    });
    if let (Some(target), Value::Object(extra)) = (summary.as_object_mut(), extra) {
        target.extend(extra);
    }
    summary
}

fn invoice_summary(inv: &Invoice) -> Value {
    let code = iso(&inv.currency_id);
    json!({
        "Key": id(&inv.number), "CustomerKey": id(&inv.customer_id), "CustomerPONumber": inv.po_number,
        "CustomerName": inv.customer_name, "Date": format_date(inv.date), "CurrencyKey": {"ISOCode": code},
        "BatchKey": id(&inv.batch_id), "SalespersonKey": id(&inv.salesperson_id),
        "TradeDiscountAmount": money(code, inv.trade_discount), "FreightAmount": money(code, inv.freight),
        "MiscellaneousAmount": money(code, inv.misc), "TaxAmount": money(code, inv.tax),
        "DocumentAmount": money(code, inv.total()), "ModifiedDate": format_ts(inv.rm_ts),
        "TransactionState": inv.rm_state(),
    })
}

fn invoice(inv: &Invoice) -> Value {
    let code = iso(&inv.currency_id);
    let mut value = invoice_summary(inv);
    if let Some(map) = value.as_object_mut() {
        map.insert("Type".into(), json!("Invoice"));
        map.insert("SalesAmount".into(), money(code, inv.subtotal));
        map.insert("Description".into(), json!(inv.description));
        map.insert("CurrentDocumentAmount".into(), money(code, inv.current));
        map.insert("InvoicePaidOffDate".into(), json!(format_date(inv.paid_off)));
        map.insert("IsVoided".into(), json!(inv.void_status != 0));
        map.insert("VoidDate".into(), json!(format_date(inv.void_date)));
        map.insert("DueDate".into(), json!(format_date(inv.due_date)));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_calls() {
        assert_eq!(percent_decode("Fabrikam%2C%20Inc.").as_deref(), Some("Fabrikam, Inc."));
        assert_eq!(percent_decode("COMPA%C3%91IA").as_deref(), Some("COMPAÑIA"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("Companies%28X%29").as_deref(), Some("Companies(X)"));
        assert_eq!(call("Companies(Fabrikam, Inc.)", "companies"), Some("Fabrikam, Inc."));
        assert_eq!(call("Customers", "Customers"), None);
    }
}
