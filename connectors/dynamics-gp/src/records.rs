//! GP objects to the flat JSON records pipelines map.
//!
//! Field names are GP's own element names (`Name`, `ModifiedDate`, `CurrentDocumentAmount`), so
//! GP's documentation explains them; what the connector derives is in snake_case (`email`,
//! `email_others`, `payment_status`) so it is never mistaken for a GP field. Keys (`Key/Id`,
//! `CustomerKey/Id`) are flattened to `Id`, `CustomerId`; money to its decimal value.
//! Timestamps are RFC 3339 UTC (`Z`), the form the engine's cursors compare.
//!
//! A customer's cursor, `ModifiedDate`, is GP's `ModifiedDate` **or the time of a later change
//! of one of its internet addresses** when an incremental read learnt of one
//! (`internet_addresses_modified`, see [`note_internet_address_change`]): GP keeps e-mail in
//! `SY01200`, whose edits leave the customer's own timestamp alone, so without this the
//! watermark would never pass an e-mail change. GP's own value stays in `LastModifiedDate`.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::summary::Field;
use crate::xml::Element;

/// The cursor field both entities carry: GP's UTC `ModifiedDate` (for customers, moved up to a
/// later internet-address change: see the module docs).
pub const CURSOR_FIELD: &str = "ModifiedDate";

/// A customer record's derived field: when one of its internet addresses last changed, as far
/// as this read knows (null when it did not ask or GP reported nothing).
pub const INTERNET_ADDRESSES_MODIFIED: &str = "internet_addresses_modified";

/// Parses GP's `xs:dateTime`. GP documents its dates as UTC and writes them without an offset,
/// so a missing offset means UTC; an offset, when a server adds one, is honoured.
pub fn parse_datetime(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    let civil: jiff::civil::DateTime = text
        .parse()
        .ok()
        .or_else(|| text.parse::<jiff::civil::Date>().ok().map(|d| d.to_datetime(jiff::civil::Time::midnight())))?;
    civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// A timestamp field as RFC 3339 UTC, or null.
fn timestamp(e: &Element, path: &[&str]) -> Value {
    e.text_at(path).and_then(|t| parse_datetime(&t)).map_or(Value::Null, |ts| Value::String(ts.to_string()))
}

/// A date-only field (GP's date columns have no time) as `YYYY-MM-DD`; GP's "no date",
/// 1900-01-01, is null.
fn date(e: &Element, path: &[&str]) -> Value {
    let Some(ts) = e.text_at(path).and_then(|t| parse_datetime(&t)) else { return Value::Null };
    let d = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
    if d.year() <= 1900 { Value::Null } else { Value::String(d.to_string()) }
}

fn text(e: &Element, path: &[&str]) -> Value {
    e.text_at(path).map_or(Value::Null, Value::String)
}

fn boolean(e: &Element, path: &[&str]) -> Value {
    match e.text_at(path).as_deref() {
        Some("true" | "1") => Value::Bool(true),
        Some("false" | "0") => Value::Bool(false),
        _ => Value::Null,
    }
}

/// A `MoneyAmount` (`Value` inside) or a plain decimal, as a number.
fn money(e: &Element, path: &[&str]) -> Option<f64> {
    let el = e.at(path)?;
    let raw = if el.children.is_empty() { el.text_at(&[]) } else { el.text_at(&["Value"]) };
    raw?.parse::<f64>().ok()
}

fn number(v: Option<f64>) -> Value {
    v.and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
}

/// The first non-null of several values.
fn first(values: impl IntoIterator<Item = Value>) -> Value {
    values.into_iter().find(|v| !v.is_null()).unwrap_or(Value::Null)
}

/// Splits an internet-address field that may hold several addresses (`a@x.com; b@y.com`, also
/// `,`-separated or written `Name <a@x.com>`): the first valid address, and the other valid
/// ones (case-insensitively distinct). Invalid entries are dropped here; the raw field is kept
/// in the record beside them.
pub fn split_emails(raw: &str) -> (Option<String>, Vec<String>) {
    let mut valid: Vec<String> = Vec::new();
    for part in raw.split([';', ',']) {
        let part = part.trim();
        let addr = match (part.rfind('<'), part.rfind('>')) {
            (Some(l), Some(r)) if l < r => part[l + 1..r].trim(),
            _ => part,
        };
        if is_valid_email(addr) && !valid.iter().any(|v| v.eq_ignore_ascii_case(addr)) {
            valid.push(addr.to_owned());
        }
    }
    let mut it = valid.into_iter();
    (it.next(), it.collect())
}

/// A pragmatic check (what Mailchimp would refuse): one `@`, a non-empty local part, a dotted
/// domain, no spaces or control characters.
pub fn is_valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '(' | ')'))
}

/// The payment status of an invoice: voided → `cancelled`; nothing left to pay (current amount
/// 0, or moved to history, where only fully applied documents go) → `paid`; else `pending`.
pub fn payment_status(voided: bool, current_amount: Option<f64>, transaction_state: Option<&str>) -> &'static str {
    if voided {
        "cancelled"
    } else if current_amount.is_some_and(|a| a.abs() < 0.005) || transaction_state == Some("History") {
        "paid"
    } else {
        "pending"
    }
}

/// One address of a customer, flattened.
fn address(a: &Element) -> Value {
    json!({
        "Id": text(a, &["Key", "Id"]),
        "Name": text(a, &["Name"]),
        "ContactPerson": text(a, &["ContactPerson"]),
        "Line1": text(a, &["Line1"]),
        "Line2": text(a, &["Line2"]),
        "Line3": text(a, &["Line3"]),
        "City": text(a, &["City"]),
        "State": text(a, &["State"]),
        "PostalCode": text(a, &["PostalCode"]),
        "CountryRegion": text(a, &["CountryRegion"]),
        "CountryRegionCode": text(a, &["CountryRegionCodeKey", "Id"]),
        "Phone1": phone(a, "Phone1"),
    })
}

/// A phone field, whether GP wrote it as a `PhoneNumber` (`Value` inside) or as text.
fn phone(e: &Element, name: &str) -> Value {
    first([
        text(e, &[name, "Value"]),
        e.at(&[name]).filter(|p| p.children.is_empty()).map_or(Value::Null, |_| text(e, &[name])),
    ])
}

/// What [`customer`] reads from a `CustomerSummary` (the list answer keeps only these: see
/// [`crate::summary`]). Keep it in step with `customer`'s reads of `s`.
pub const CUSTOMER_SUMMARY: &[Field] = &[
    Field::text(&["Key", "Id"]),
    Field::text(&["Name"]),
    Field::text(&["IsActive"]),
    Field::text(&["IsOnHold"]),
    Field::text(&["CustomerClassKey", "Id"]),
    Field::text(&["SalespersonKey", "Id"]),
    Field::text(&["CorporateAccountKey", "Id"]),
    Field::text(&["PhoneNumbers", "PhoneNumber", "Value"]),
    Field::text(&["CreatedDate"]),
    Field::text(&[CURSOR_FIELD]),
    Field::text(&["LastModifiedDate"]),
];

/// What [`invoice`] reads from a `ReceivablesSummary`. Keep it in step with `invoice`'s reads
/// of `s`.
pub const INVOICE_SUMMARY: &[Field] = &[
    Field::text(&["Key", "Id"]),
    Field::text(&["TransactionState"]),
    Field::money(&["DocumentAmount"]),
    Field::money(&["SalesAmount"]),
    Field::money(&["TaxAmount"]),
    Field::money(&["FreightAmount"]),
    Field::money(&["MiscellaneousAmount"]),
    Field::money(&["TradeDiscountAmount"]),
    Field::text(&["CustomerKey", "Id"]),
    Field::text(&["CustomerName"]),
    Field::text(&["CustomerPONumber"]),
    Field::text(&["Date"]),
    Field::text(&["CurrencyKey", "ISOCode"]),
    Field::text(&["BatchKey", "Id"]),
    Field::text(&["SalespersonKey", "Id"]),
    Field::text(&[CURSOR_FIELD]),
];

/// A customer record from `GetCustomerByKey` (and its list summary, for what the full object
/// lacks).
pub fn customer(summary: Option<&Element>, c: &Element, company: Option<i32>) -> Value {
    let addresses: Vec<&Element> = c.at(&["Addresses"]).map(|a| a.children.iter().collect()).unwrap_or_default();
    let by_id = |id: Option<String>| {
        id.and_then(|id| addresses.iter().copied().find(|a| a.text_at(&["Key", "Id"]) == Some(id.clone())))
    };
    let primary_id = c.text_at(&["DefaultAddressKey", "Id"]);
    let bill_to_id = c.text_at(&["BillToAddressKey", "Id"]);
    let primary = by_id(primary_id.clone()).or_else(|| addresses.first().copied());
    let bill_to = by_id(bill_to_id.clone()).or(primary);

    // The e-mail: the primary address's `EmailToAddress`, then its INET1 (eConnect's "E-mail
    // address"), then the same on the bill-to address.
    let candidates = [primary, bill_to].into_iter().flatten().flat_map(|a| {
        [a.text_at(&["InternetAddresses", "EmailToAddress"]), a.text_at(&["InternetAddresses", "InternetField1"])]
    });
    let mut raw_email = None;
    let (mut email, mut others) = (None, Vec::new());
    for raw in candidates.flatten() {
        let (e, o) = split_emails(&raw);
        if e.is_some() {
            (email, others, raw_email) = (e, o, Some(raw));
            break;
        }
        raw_email.get_or_insert(raw);
    }

    let s = summary.unwrap_or(c);
    let mut r = Map::new();
    r.insert("Id".into(), first([text(c, &["Key", "Id"]), text(s, &["Key", "Id"])]));
    r.insert("Name".into(), first([text(c, &["Name"]), text(s, &["Name"])]));
    r.insert("ShortName".into(), text(c, &["Shortname"]));
    r.insert("StatementName".into(), text(c, &["StatementName"]));
    r.insert("IsActive".into(), first([boolean(c, &["IsActive"]), boolean(s, &["IsActive"])]));
    r.insert("IsOnHold".into(), first([boolean(c, &["IsOnHold"]), boolean(s, &["IsOnHold"])]));
    r.insert("ClassId".into(), first([text(c, &["ClassKey", "Id"]), text(s, &["CustomerClassKey", "Id"])]));
    r.insert("SalespersonId".into(), first([text(c, &["SalespersonKey", "Id"]), text(s, &["SalespersonKey", "Id"])]));
    r.insert(
        "CorporateAccountId".into(),
        first([text(c, &["CorporateAccountKey", "Id"]), text(s, &["CorporateAccountKey", "Id"])]),
    );
    r.insert("Currency".into(), text(c, &["CurrencyKey", "ISOCode"]));
    r.insert(
        "Phone".into(),
        first([
            text(s, &["PhoneNumbers", "PhoneNumber", "Value"]),
            primary.map_or(Value::Null, |a| phone(a, "Phone1")),
        ]),
    );
    r.insert("Comment1".into(), text(c, &["Comment1"]));
    r.insert("Comment2".into(), text(c, &["Comment2"]));
    r.insert("UserDefined1".into(), text(c, &["UserDefined1"]));
    r.insert("UserDefined2".into(), text(c, &["UserDefined2"]));
    r.insert("DefaultAddressId".into(), primary_id.map_or(Value::Null, Value::String));
    r.insert("BillToAddressId".into(), bill_to_id.map_or(Value::Null, Value::String));
    r.insert("BillingAddress".into(), bill_to.map_or(Value::Null, address));
    r.insert("EmailToAddress".into(), raw_email.map_or(Value::Null, Value::String));
    r.insert("email".into(), email.map_or(Value::Null, Value::String));
    r.insert("email_others".into(), Value::from(others));
    r.insert("CreatedDate".into(), first([timestamp(c, &["CreatedDate"]), timestamp(s, &["CreatedDate"])]));
    r.insert(CURSOR_FIELD.into(), first([timestamp(c, &["ModifiedDate"]), timestamp(s, &["ModifiedDate"])]));
    r.insert(
        "LastModifiedDate".into(),
        first([timestamp(c, &["LastModifiedDate"]), timestamp(s, &["LastModifiedDate"])]),
    );
    r.insert(INTERNET_ADDRESSES_MODIFIED.into(), Value::Null);
    r.insert("CompanyKey".into(), company.map_or(Value::Null, Value::from));
    Value::Object(r)
}

/// The customers whose internet addresses changed, from a `GetChangedInternetAddressKeyList`
/// result: each customer id (as GP wrote it) with the latest change time. GP logs one key per
/// tracked action, so a customer may come several times (several edits, several addresses);
/// keys of other owners (`VEN`, `EMP`, … — not asked for, but not trusted either) and keys
/// without a readable time are skipped.
pub fn internet_address_changes(list: &Element) -> Vec<(String, Timestamp)> {
    let mut latest: Vec<(String, Timestamp)> = Vec::new();
    for key in list.children_named("ChangedInternetAddressKey") {
        if !key.text_at(&["InternetAddressType"]).is_some_and(|t| t.eq_ignore_ascii_case("CUS")) {
            continue;
        }
        let (Some(id), Some(at)) =
            (key.text_at(&["InternetAddressKey"]), key.text_at(&["LastModifiedDate"]).and_then(|t| parse_datetime(&t)))
        else {
            continue;
        };
        // GP's keys compare case-insensitively (its SQL collation).
        match latest.iter_mut().find(|(known, _)| known.eq_ignore_ascii_case(&id)) {
            Some((_, t)) => *t = (*t).max(at),
            None => latest.push((id, at)),
        }
    }
    latest
}

/// Folds an internet-address change into a customer record: `internet_addresses_modified`
/// records it, and the cursor becomes the later of the customer's `ModifiedDate` and it, so the
/// watermark moves past the e-mail change and the next poll does not report it again.
pub fn note_internet_address_change(record: &mut Value, at: Timestamp) {
    let Some(r) = record.as_object_mut() else { return };
    let stamp = Value::String(at.to_string());
    r.insert(INTERNET_ADDRESSES_MODIFIED.into(), stamp.clone());
    let modified = r.get(CURSOR_FIELD).and_then(Value::as_str).and_then(parse_datetime);
    if modified.is_none_or(|m| m < at) {
        r.insert(CURSOR_FIELD.into(), stamp);
    }
}

/// An invoice record from `GetReceivablesInvoiceByKey` (and its list summary).
pub fn invoice(summary: Option<&Element>, d: &Element, company: Option<i32>) -> Value {
    let s = summary.unwrap_or(d);
    let current = money(d, &["CurrentDocumentAmount"]);
    let state = d.text_at(&["TransactionState"]).or_else(|| s.text_at(&["TransactionState"]));
    let voided = d.text_at(&["IsVoided"]).is_some_and(|v| v == "true" || v == "1");
    let amount = |name: &str| number(money(d, &[name]).or_else(|| money(s, &[name])));
    let mut r = Map::new();
    r.insert("Id".into(), first([text(d, &["Key", "Id"]), text(s, &["Key", "Id"])]));
    r.insert("CustomerId".into(), first([text(d, &["CustomerKey", "Id"]), text(s, &["CustomerKey", "Id"])]));
    r.insert("CustomerName".into(), first([text(s, &["CustomerName"]), text(d, &["CustomerName"])]));
    r.insert("CustomerPONumber".into(), first([text(d, &["CustomerPONumber"]), text(s, &["CustomerPONumber"])]));
    r.insert("Date".into(), first([date(d, &["Date"]), date(s, &["Date"])]));
    r.insert(
        "Currency".into(),
        first([
            text(d, &["CurrencyKey", "ISOCode"]),
            text(s, &["CurrencyKey", "ISOCode"]),
            text(d, &["DocumentAmount", "Currency"]),
        ]),
    );
    r.insert("DocumentAmount".into(), amount("DocumentAmount"));
    r.insert("CurrentDocumentAmount".into(), number(current));
    r.insert("SalesAmount".into(), amount("SalesAmount"));
    r.insert("TaxAmount".into(), amount("TaxAmount"));
    r.insert("FreightAmount".into(), amount("FreightAmount"));
    r.insert("MiscellaneousAmount".into(), amount("MiscellaneousAmount"));
    r.insert("TradeDiscountAmount".into(), amount("TradeDiscountAmount"));
    r.insert("Description".into(), text(d, &["Description"]));
    r.insert("BatchId".into(), first([text(d, &["BatchKey", "Id"]), text(s, &["BatchKey", "Id"])]));
    r.insert("SalespersonId".into(), first([text(d, &["SalespersonKey", "Id"]), text(s, &["SalespersonKey", "Id"])]));
    r.insert("TransactionState".into(), state.clone().map_or(Value::Null, Value::String));
    r.insert("IsVoided".into(), Value::Bool(voided));
    r.insert("VoidDate".into(), date(d, &["VoidDate"]));
    r.insert("InvoicePaidOffDate".into(), date(d, &["InvoicePaidOffDate"]));
    r.insert("payment_status".into(), Value::String(payment_status(voided, current, state.as_deref()).into()));
    r.insert(CURSOR_FIELD.into(), first([timestamp(d, &["ModifiedDate"]), timestamp(s, &["ModifiedDate"])]));
    r.insert("CompanyKey".into(), company.map_or(Value::Null, Value::from));
    Value::Object(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Summary;
    use crate::xml::parse;

    /// A summary kept as the list stream keeps it gives the same record as the whole summary
    /// element: the field lists hold every summary field `customer` and `invoice` read.
    #[test]
    fn kept_summary_fields_give_the_same_records() {
        let customer_summary = parse(
            r#"<CustomerSummary xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Key><Id>AARON&amp;1 </Id></Key>
            <Name>Aaron &lt;Fit&gt;</Name><IsActive>true</IsActive><IsOnHold>0</IsOnHold>
            <CustomerClassKey><Id>USA</Id></CustomerClassKey><CorporateAccountKey><Id>CORP</Id></CorporateAccountKey>
            <SalespersonKey><Id>SP1</Id></SalespersonKey><State>IL</State>
            <PhoneNumbers><PhoneNumber><Value>3125550100</Value></PhoneNumber><PhoneNumber><Value>2</Value></PhoneNumber></PhoneNumbers>
            <CreatedDate>2020-01-02T00:00:00</CreatedDate><ModifiedDate>2024-05-01T10:11:12.5</ModifiedDate>
            <LastModifiedDate i:nil="true"/></CustomerSummary>"#,
        )
        .unwrap();
        let invoice_summary = parse(
            r#"<ReceivablesSummary><Key><Id>INV0001</Id></Key><TransactionState>Open</TransactionState>
            <DocumentAmount><Currency>USD</Currency><Value>100.5</Value></DocumentAmount><SalesAmount>90</SalesAmount>
            <TaxAmount><Value>5.5</Value></TaxAmount><FreightAmount><Value>1</Value></FreightAmount>
            <MiscellaneousAmount><Value>2</Value></MiscellaneousAmount><TradeDiscountAmount><Value>3</Value></TradeDiscountAmount>
            <CustomerKey><Id>AARON</Id></CustomerKey><CustomerName>Aaron</CustomerName><CustomerPONumber>PO1</CustomerPONumber>
            <Date>2024-04-30T00:00:00</Date><CurrencyKey><ISOCode>USD</ISOCode></CurrencyKey><BatchKey><Id>B1</Id></BatchKey>
            <SalespersonKey><Id>SP2</Id></SalespersonKey><ModifiedDate>2024-05-01T00:00:00</ModifiedDate></ReceivablesSummary>"#,
        )
        .unwrap();
        let nothing = Element::default();
        let kept = Summary::of(&customer_summary, CUSTOMER_SUMMARY).element(CUSTOMER_SUMMARY);
        let whole = customer(Some(&customer_summary), &nothing, Some(-1));
        assert_eq!(customer(Some(&kept), &nothing, Some(-1)), whole);
        assert_eq!(whole["Id"], "AARON&1");
        assert_eq!(whole["Phone"], "3125550100");
        assert_eq!(whole[CURSOR_FIELD], "2024-05-01T10:11:12.5Z");
        let kept = Summary::of(&invoice_summary, INVOICE_SUMMARY).element(INVOICE_SUMMARY);
        let whole = invoice(Some(&invoice_summary), &nothing, Some(-1));
        assert_eq!(invoice(Some(&kept), &nothing, Some(-1)), whole);
        assert_eq!(whole["DocumentAmount"], 100.5);
        assert_eq!(whole["SalesAmount"], 90.0);
        assert_eq!(whole["CustomerName"], "Aaron");
        // No field path is a prefix of another (the rebuilt tree would then differ).
        for fields in [CUSTOMER_SUMMARY, INVOICE_SUMMARY] {
            for a in fields {
                for b in fields {
                    assert!(a == b || !b.path.starts_with(a.path), "{:?} / {:?}", a.path, b.path);
                }
            }
        }
    }

    #[test]
    fn emails_split_on_separators_and_skip_invalid_entries() {
        assert_eq!(split_emails("a@x.com"), (Some("a@x.com".into()), vec![]));
        assert_eq!(
            split_emails(" bad ; Ann <ann@x.com>; bob@y.org,ANN@x.com ;c@z.net "),
            (Some("ann@x.com".into()), vec!["bob@y.org".to_owned(), "c@z.net".to_owned()])
        );
        assert_eq!(split_emails("n/a"), (None, vec![]));
        assert!(!is_valid_email("a@b"));
        assert!(!is_valid_email("a b@c.com"));
        assert!(!is_valid_email("a@@c.com"));
        assert!(is_valid_email("first.last+tag@sub.example.co.uk"));
    }

    #[test]
    fn payment_status_is_inferred() {
        assert_eq!(payment_status(true, Some(0.0), Some("Open")), "cancelled");
        assert_eq!(payment_status(false, Some(0.0), Some("Open")), "paid");
        assert_eq!(payment_status(false, Some(10.0), Some("History")), "paid");
        assert_eq!(payment_status(false, Some(10.0), Some("Open")), "pending");
        assert_eq!(payment_status(false, None, None), "pending");
    }

    #[test]
    fn datetimes_without_offset_are_utc() {
        assert_eq!(parse_datetime("2024-05-02T13:14:15").unwrap().to_string(), "2024-05-02T13:14:15Z");
        assert_eq!(parse_datetime("2024-05-02T13:14:15.5+02:00").unwrap().to_string(), "2024-05-02T11:14:15.5Z");
        assert_eq!(parse_datetime("2024-05-02").unwrap().to_string(), "2024-05-02T00:00:00Z");
        assert!(parse_datetime("yesterday").is_none());
    }

    const CUSTOMER: &str = r#"<Customer xmlns="urn:gp">
        <Key><Id>AARONFIT0001</Id></Key><IsOnHold>false</IsOnHold><IsActive>true</IsActive>
        <Name>Aaron Fitz Electrical</Name><Shortname>Aaron Fitz    </Shortname>
        <ClassKey><Id>USA-ILMO-T1</Id></ClassKey>
        <DefaultAddressKey><Id>PRIMARY</Id></DefaultAddressKey><BillToAddressKey><Id>BILLING</Id></BillToAddressKey>
        <CurrencyKey><ISOCode>USD</ISOCode></CurrencyKey>
        <CreatedDate>2017-04-12T00:00:00</CreatedDate><ModifiedDate>2024-05-02T13:14:15</ModifiedDate>
        <LastModifiedDate>2024-05-02T13:14:15</LastModifiedDate>
        <Addresses>
          <CustomerAddress><Line1>One Microsoft Way</Line1><City>Redmond</City><Phone1><Value>4255550101</Value></Phone1>
            <InternetAddresses><EmailToAddress>sales@aaronfitz.example; ap@aaronfitz.example</EmailToAddress></InternetAddresses>
            <Key><Id>PRIMARY</Id></Key></CustomerAddress>
          <CustomerAddress><Line1>PO Box 1</Line1><City>Chicago</City><State>IL</State><PostalCode>60601</PostalCode>
            <CountryRegion>USA</CountryRegion><InternetAddresses><EmailToAddress xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></InternetAddresses>
            <Key><Id>BILLING</Id></Key></CustomerAddress>
        </Addresses></Customer>"#;

    #[test]
    fn customers_take_email_from_the_primary_and_address_from_bill_to() {
        let c = parse(CUSTOMER).unwrap();
        let r = customer(None, &c, Some(-1));
        assert_eq!(r["Id"], "AARONFIT0001");
        assert_eq!(r["ShortName"], "Aaron Fitz");
        assert_eq!(r["email"], "sales@aaronfitz.example");
        assert_eq!(r["email_others"], json!(["ap@aaronfitz.example"]));
        assert_eq!(r["EmailToAddress"], "sales@aaronfitz.example; ap@aaronfitz.example");
        assert_eq!(r["BillingAddress"]["Line1"], "PO Box 1");
        assert_eq!(r["BillingAddress"]["PostalCode"], "60601");
        assert_eq!(r["Phone"], "4255550101");
        assert_eq!(r["ModifiedDate"], "2024-05-02T13:14:15Z");
        assert_eq!(r["Currency"], "USD");
        assert_eq!(r["IsActive"], true);
        assert_eq!(r["CompanyKey"], -1);
    }

    #[test]
    fn internet_address_changes_move_the_cursor_forward_only() {
        let list = parse(
            r#"<GetChangedInternetAddressKeyListResult xmlns="urn:gp">
            <ChangedInternetAddressKey><LastModifiedDate>2024-06-01T10:00:00</LastModifiedDate><Action>Updated</Action>
              <InternetAddressType>CUS</InternetAddressType><InternetAddressKey>AARONFIT0001</InternetAddressKey>
              <AddressKey><Id>PRIMARY</Id></AddressKey></ChangedInternetAddressKey>
            <ChangedInternetAddressKey><LastModifiedDate>2024-06-02T10:00:00.5</LastModifiedDate><Action>Created</Action>
              <InternetAddressType>CUS</InternetAddressType><InternetAddressKey>aaronfit0001</InternetAddressKey>
              <AddressKey><Id>BILLING</Id></AddressKey></ChangedInternetAddressKey>
            <ChangedInternetAddressKey><LastModifiedDate>2024-06-03T10:00:00</LastModifiedDate><Action>Updated</Action>
              <InternetAddressType>VEN</InternetAddressType><InternetAddressKey>ACETRAVE0001</InternetAddressKey>
              </ChangedInternetAddressKey>
            <ChangedInternetAddressKey><LastModifiedDate>2024-05-01T00:00:00</LastModifiedDate><Action>Deleted</Action>
              <InternetAddressType>CUS</InternetAddressType><InternetAddressKey>BAKERSEM0001</InternetAddressKey>
              </ChangedInternetAddressKey>
            </GetChangedInternetAddressKeyListResult>"#,
        )
        .unwrap();
        let changes = internet_address_changes(&list);
        let text: Vec<(String, String)> = changes.iter().map(|(id, at)| (id.clone(), at.to_string())).collect();
        assert_eq!(
            text,
            [
                ("AARONFIT0001".to_owned(), "2024-06-02T10:00:00.5Z".to_owned()),
                ("BAKERSEM0001".to_owned(), "2024-05-01T00:00:00Z".to_owned())
            ],
            "one entry per customer, its latest change; vendors skipped"
        );

        let c = parse(CUSTOMER).unwrap();
        let mut later = customer(None, &c, Some(-1));
        assert_eq!(later[INTERNET_ADDRESSES_MODIFIED], Value::Null, "present, null, unless a read learnt of one");
        note_internet_address_change(&mut later, changes[0].1);
        assert_eq!(later["ModifiedDate"], "2024-06-02T10:00:00.5Z");
        assert_eq!(later[INTERNET_ADDRESSES_MODIFIED], "2024-06-02T10:00:00.5Z");
        assert_eq!(later["LastModifiedDate"], "2024-05-02T13:14:15Z", "GP's own stays");
        let mut earlier = customer(None, &c, Some(-1));
        note_internet_address_change(&mut earlier, "2024-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(earlier["ModifiedDate"], "2024-05-02T13:14:15Z", "never moved back");
        assert_eq!(earlier[INTERNET_ADDRESSES_MODIFIED], "2024-01-01T00:00:00Z");
    }

    #[test]
    fn invoices_carry_amounts_and_status() {
        let d = parse(
            r#"<ReceivablesInvoice xmlns="urn:gp"><Key><Id>INV00042</Id></Key><Type>Invoice</Type>
            <Date>2024-04-30T00:00:00</Date><DocumentAmount><Currency>EUR</Currency><Value>150.00</Value><DecimalDigits>2</DecimalDigits></DocumentAmount>
            <TransactionState>Open</TransactionState><CurrentDocumentAmount><Value>0.00</Value></CurrentDocumentAmount>
            <InvoicePaidOffDate>2024-05-01T00:00:00</InvoicePaidOffDate><IsVoided>false</IsVoided><VoidDate>1900-01-01T00:00:00</VoidDate>
            <ModifiedDate>2024-05-01T08:00:00</ModifiedDate><CustomerKey><Id>AARONFIT0001</Id></CustomerKey>
            <CurrencyKey><ISOCode>EUR</ISOCode></CurrencyKey></ReceivablesInvoice>"#,
        )
        .unwrap();
        let r = invoice(None, &d, Some(-1));
        assert_eq!(r["Id"], "INV00042");
        assert_eq!(r["CustomerId"], "AARONFIT0001");
        assert_eq!(r["Date"], "2024-04-30");
        assert_eq!(r["DocumentAmount"], 150.0);
        assert_eq!(r["Currency"], "EUR");
        assert_eq!(r["payment_status"], "paid");
        assert_eq!(r["VoidDate"], Value::Null);
        assert_eq!(r["InvoicePaidOffDate"], "2024-05-01");
        assert_eq!(r["ModifiedDate"], "2024-05-01T08:00:00Z");
    }
}
