//! The legacy SOAP endpoint: envelopes, actions, and reading answers and faults.
//!
//! Envelopes are written by hand, not by a generic serializer, because element order and
//! namespaces are what a strict (.NET XmlSerializer) server checks: criteria fields in schema
//! order, `Context`'s children in the `d:` namespace, `OrganizationKey` typed `d:CompanyKey`,
//! every member of a nullable between-restriction present (unused ones `xsi:nil`).

use jiff::Timestamp;

use crate::xml::{self, Element, SOAP_ENV, escape};

/// Operations, criteria, business objects and GP keys.
pub const GP_NS: &str = "http://schemas.microsoft.com/dynamics/gp/2006/01";
/// `Context`, `CompanyKey`, `CurrencyType`.
pub const D_NS: &str = "http://schemas.microsoft.com/dynamics/2006/01";

/// The `SOAPAction` header value of an operation (quoted, as SOAP 1.1 writes it).
pub fn soap_action(operation: &str) -> String {
    format!("\"{GP_NS}/{operation}\"")
}

/// An `Id` key range, both ends exclusive: `GreaterThan` / `LessThan`. Exclusive on purpose:
/// whether `From`/`To` are inclusive is not documented, and the key-range reader never needs
/// an inclusive end (see `keyrange`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// `GreaterThan`: keys after this one.
    pub after: Option<String>,
    /// `LessThan`: keys before this one.
    pub before: Option<String>,
}

/// A whole envelope around one operation element. `company` `None` addresses the system
/// database (what `GetCompanyList` needs).
pub fn envelope(operation: &str, arguments: &str, company: Option<i32>) -> String {
    let org = company
        .map(|id| format!(r#"<d:OrganizationKey xsi:type="d:CompanyKey"><d:Id>{id}</d:Id></d:OrganizationKey>"#))
        .unwrap_or_default();
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<soap:Envelope xmlns:soap="{soap}" xmlns:xsi="{xsi}" xmlns:gp="{gp}" xmlns:d="{d}">"#,
            "<soap:Body><gp:{op}>{args}<gp:context>{org}<d:CurrencyType>Transactional</d:CurrencyType></gp:context>",
            "</gp:{op}></soap:Body></soap:Envelope>"
        ),
        soap = SOAP_ENV,
        xsi = xml::XSI,
        gp = GP_NS,
        d = D_NS,
        op = operation,
        args = arguments,
        org = org,
    )
}

/// `xs:dateTime` as GP's criteria take it: UTC wall time, no offset ("the value is in UTC; both
/// the date and time portions must be specified").
pub fn datetime(ts: &Timestamp) -> String {
    let civil = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    // jiff prints fractional seconds only when there are some.
    format!("{civil}")
}

/// A `BetweenRestrictionOfNullableOfDateTime` with only `GreaterThan` set.
fn datetime_after(element: &str, after: &Timestamp) -> String {
    const NIL: &str = r#" xsi:nil="true"/>"#;
    format!(
        "<gp:{element}><gp:EqualValue{NIL}<gp:NotEqualValue{NIL}<gp:From{NIL}<gp:To{NIL}<gp:GreaterThan>{}</gp:GreaterThan><gp:LessThan{NIL}</gp:{element}>",
        datetime(after)
    )
}

/// A `BetweenRestrictionOfString` with `GreaterThan` / `LessThan`; nothing when unbounded.
fn string_range(element: &str, range: &KeyRange) -> String {
    if range.after.is_none() && range.before.is_none() {
        return String::new();
    }
    let mut s = format!("<gp:{element}>");
    if let Some(a) = &range.after {
        s.push_str(&format!("<gp:GreaterThan>{}</gp:GreaterThan>", escape(a)));
    }
    if let Some(b) = &range.before {
        s.push_str(&format!("<gp:LessThan>{}</gp:LessThan>", escape(b)));
    }
    s.push_str(&format!("</gp:{element}>"));
    s
}

/// `GetCustomerList`: customers modified after `since` in a key range. `CustomerCriteria` order:
/// Id, Name, IsActive, IsOnHold, SalespersonId, ClassId, CorporateAccountId, State,
/// PhoneNumber, CreatedDate, ModifiedDate, LastModifiedDate, Scope (required).
pub fn customer_list(company: i32, since: Option<&Timestamp>, range: &KeyRange) -> String {
    let mut criteria = string_range("Id", range);
    if let Some(ts) = since {
        criteria.push_str(&datetime_after("ModifiedDate", ts));
    }
    criteria.push_str("<gp:Scope>Return All</gp:Scope>");
    envelope("GetCustomerList", &format!("<gp:criteria>{criteria}</gp:criteria>"), Some(company))
}

/// `GetChangedInternetAddressKeyList`: the customers' internet addresses (where GP keeps the
/// e-mail, `SY01200`) created, updated or deleted after `since`, as GP's entity action tracking
/// logged them. Needed because an e-mail edit does not change the customer's `ModifiedDate`.
/// `InternetAddressKeyChangedCriteria` order: LastModifiedDate, Action (`BaseChangedKeyCriteria`),
/// InternetAddressType, InternetAddressKeyId, AddressKeyId. No `Action` restriction: a deleted
/// address changes the e-mail as much as an edited one.
pub fn changed_customer_internet_addresses(company: i32, since: &Timestamp) -> String {
    let criteria = format!(
        "{}<gp:InternetAddressType><gp:EqualValue>CUS</gp:EqualValue></gp:InternetAddressType>",
        datetime_after("LastModifiedDate", since)
    );
    envelope("GetChangedInternetAddressKeyList", &format!("<gp:criteria>{criteria}</gp:criteria>"), Some(company))
}

/// `GetCustomerByKey`: the whole customer, with its addresses and their internet addresses.
pub fn customer_by_key(company: i32, id: &str) -> String {
    envelope("GetCustomerByKey", &format!("<gp:key><gp:Id>{}</gp:Id></gp:key>", escape(id)), Some(company))
}

/// `GetReceivablesInvoiceList`: posted (open and history) receivables invoices modified after
/// `since` in a document-number range. `ReceivablesInvoiceCriteria` order: TransactionState,
/// DocumentId, Date, CustomerId, BatchId, SalespersonId, ModifiedDate, Scope (required).
pub fn invoice_list(company: i32, since: Option<&Timestamp>, range: &KeyRange) -> String {
    let mut criteria = String::from(concat!(
        r#"<gp:TransactionState><gp:EqualValue xsi:nil="true"/><gp:NotEqualValue xsi:nil="true"/>"#,
        "<gp:Items><gp:ReceivablesTransactionState>Open</gp:ReceivablesTransactionState>",
        "<gp:ReceivablesTransactionState>History</gp:ReceivablesTransactionState></gp:Items></gp:TransactionState>"
    ));
    criteria.push_str(&string_range("DocumentId", range));
    if let Some(ts) = since {
        criteria.push_str(&datetime_after("ModifiedDate", ts));
    }
    criteria.push_str("<gp:Scope>Return All</gp:Scope>");
    envelope("GetReceivablesInvoiceList", &format!("<gp:criteria>{criteria}</gp:criteria>"), Some(company))
}

/// `GetReceivablesInvoiceByKey`: the whole document, with its current (remaining) amount and
/// void flag, which the list summary lacks.
pub fn invoice_by_key(company: i32, id: &str) -> String {
    envelope("GetReceivablesInvoiceByKey", &format!("<gp:key><gp:Id>{}</gp:Id></gp:key>", escape(id)), Some(company))
}

/// `GetCompanyList` on the system database: every company, for `check`.
pub fn company_list() -> String {
    envelope("GetCompanyList", "<gp:criteria/>", None)
}

/// A SOAP fault: what GP says when a request is wrong (an unknown company, a bad criterion, a
/// policy that denies the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `faultcode` (`s:Client`: the request is wrong; `s:Server`: GP failed).
    pub code: String,
    /// The most specific message the fault carries.
    pub message: String,
}

impl Fault {
    /// A `Get…ByKey` of a key that does not (or no longer) exist. GP's wording is not captured
    /// (reference §8.2); "Business object not found." is what the sandbox sends, and any fault
    /// saying "not found" is taken the same way: the record is gone.
    pub fn is_not_found(&self) -> bool {
        self.message.to_ascii_lowercase().contains("not found")
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SOAP fault {}: {}", self.code, self.message)
    }
}

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// GP answered with a fault.
    Fault(Fault),
    /// Not a SOAP envelope we understand.
    Invalid(String),
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerError::Fault(fault) => fault.fmt(f),
            AnswerError::Invalid(m) => write!(f, "GP's answer is not a SOAP envelope we can read: {m}"),
        }
    }
}

/// The `<OpResult>` of a `<OpResponse>`, or the fault.
pub fn result(body: &str, operation: &str) -> Result<Element, AnswerError> {
    let root = xml::parse(body).map_err(AnswerError::Invalid)?;
    if root.ns != SOAP_ENV || root.name != "Envelope" {
        return Err(AnswerError::Invalid(format!("the root element is `{}`, not a SOAP 1.1 envelope", root.name)));
    }
    let body = root.child("Body").ok_or_else(|| AnswerError::Invalid("no soap:Body".into()))?;
    if let Some(fault) = body.children.iter().find(|c| c.ns == SOAP_ENV && c.name == "Fault") {
        return Err(AnswerError::Fault(read_fault(fault)));
    }
    let response_name = format!("{operation}Response");
    let result_name = format!("{operation}Result");
    let response =
        body.child(&response_name).ok_or_else(|| AnswerError::Invalid(format!("no `{response_name}` in the body")))?;
    // A missing result element is .NET's way of returning null (nothing found).
    Ok(response.child(&result_name).cloned().unwrap_or_default())
}

/// A fault's code and the most specific message it carries: GP wraps the cause in
/// `detail/ExceptionDetail/Message` (or its own `…/Message`), `faultstring` is often generic.
pub fn read_fault(fault: &Element) -> Fault {
    let code = fault.text_at(&["faultcode"]).unwrap_or_else(|| "soap:Server".into());
    let string = fault.text_at(&["faultstring"]).unwrap_or_default();
    let detail = fault.child("detail").and_then(deepest_message);
    let message = match detail {
        Some(d) if !string.contains(&d) => {
            if string.is_empty() {
                d
            } else {
                format!("{string} ({d})")
            }
        }
        _ if string.is_empty() => "no message".into(),
        _ => string,
    };
    Fault { code, message }
}

fn deepest_message(e: &Element) -> Option<String> {
    e.children.iter().find_map(deepest_message).or_else(|| (e.name == "Message").then(|| e.text.trim().to_owned()))
}

/// Returns true when a body looks like a SOAP fault (to tell a fault-carrying 500 from an
/// outage 500 before parsing it fully).
pub fn looks_like_fault(body: &str) -> bool {
    body.contains("Fault") && body.contains(SOAP_ENV)
}

/// What GP says when its SQL Server, not the request, is the problem: a dropped connection, a
/// deadlock victim, a timeout. The same request succeeds once it passes.
const TRANSIENT_FAULTS: [&str; 5] = [
    "transport-level error",
    "deadlocked on lock",
    "Timeout expired",
    "network-related or instance-specific error",
    "connection was forcibly closed",
];

/// Whether a fault reports a passing condition (see [`TRANSIENT_FAULTS`]), worth a retry, rather
/// than a refusal of the request.
pub fn is_transient_fault(body: &str) -> bool {
    looks_like_fault(body) && TRANSIENT_FAULTS.iter().any(|m| body.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn customer_list_matches_the_reference_envelope() {
        let env = customer_list(-1, Some(&ts("2024-05-01T00:00:00Z")), &KeyRange::default());
        assert!(env.contains(r#"<gp:GetCustomerList><gp:criteria><gp:ModifiedDate><gp:EqualValue xsi:nil="true"/><gp:NotEqualValue xsi:nil="true"/><gp:From xsi:nil="true"/><gp:To xsi:nil="true"/><gp:GreaterThan>2024-05-01T00:00:00</gp:GreaterThan><gp:LessThan xsi:nil="true"/></gp:ModifiedDate><gp:Scope>Return All</gp:Scope></gp:criteria>"#), "{env}");
        assert!(env.contains(r#"<gp:context><d:OrganizationKey xsi:type="d:CompanyKey"><d:Id>-1</d:Id></d:OrganizationKey><d:CurrencyType>Transactional</d:CurrencyType></gp:context></gp:GetCustomerList>"#));
        assert!(env.contains(r#"xmlns:d="http://schemas.microsoft.com/dynamics/2006/01""#));
        // It is well-formed, and reads back with the namespaces we meant.
        let root = xml::parse(&env).unwrap();
        let op = root.at(&["Body", "GetCustomerList"]).unwrap();
        assert_eq!(op.ns, GP_NS);
        assert_eq!(op.at(&["context", "OrganizationKey", "Id"]).unwrap().ns, D_NS);
    }

    #[test]
    fn key_ranges_come_first_in_schema_order_and_are_escaped() {
        let range = KeyRange { after: Some("A&B".into()), before: Some("C".into()) };
        let env = customer_list(3, None, &range);
        assert!(env.contains(
            "<gp:criteria><gp:Id><gp:GreaterThan>A&amp;B</gp:GreaterThan><gp:LessThan>C</gp:LessThan></gp:Id><gp:Scope>"
        ));
        let open = customer_list(3, None, &KeyRange { after: None, before: Some("0".into()) });
        assert!(open.contains("<gp:Id><gp:LessThan>0</gp:LessThan></gp:Id>"));
        assert!(!customer_list(3, None, &KeyRange::default()).contains("<gp:Id>"));
    }

    #[test]
    fn datetimes_are_utc_without_offset_and_keep_fractions() {
        assert_eq!(datetime(&ts("2024-05-02T15:14:15+02:00")), "2024-05-02T13:14:15");
        assert_eq!(datetime(&ts("2024-05-02T13:14:15.25Z")), "2024-05-02T13:14:15.25");
    }

    #[test]
    fn invoice_list_orders_state_range_date_scope() {
        let env = invoice_list(
            -1,
            Some(&ts("2024-01-01T00:00:00Z")),
            &KeyRange { after: Some("INV001".into()), before: None },
        );
        let state = env.find("<gp:TransactionState>").unwrap();
        let doc = env.find("<gp:DocumentId>").unwrap();
        let date = env.find("<gp:ModifiedDate>").unwrap();
        let scope = env.find("<gp:Scope>").unwrap();
        assert!(state < doc && doc < date && date < scope);
        assert!(env.contains("<gp:Items><gp:ReceivablesTransactionState>Open</gp:ReceivablesTransactionState>"));
    }

    #[test]
    fn changed_internet_addresses_ask_for_customers_after_the_watermark() {
        let env = changed_customer_internet_addresses(-1, &ts("2024-05-01T00:00:00.5Z"));
        assert!(env.contains(concat!(
            r#"<gp:GetChangedInternetAddressKeyList><gp:criteria><gp:LastModifiedDate><gp:EqualValue xsi:nil="true"/>"#,
            r#"<gp:NotEqualValue xsi:nil="true"/><gp:From xsi:nil="true"/><gp:To xsi:nil="true"/>"#,
            r#"<gp:GreaterThan>2024-05-01T00:00:00.5</gp:GreaterThan><gp:LessThan xsi:nil="true"/></gp:LastModifiedDate>"#,
            "<gp:InternetAddressType><gp:EqualValue>CUS</gp:EqualValue></gp:InternetAddressType></gp:criteria><gp:context>"
        )), "{env}");
        assert!(!env.contains("Scope"), "changed-key criteria have no Scope");
        xml::parse(&env).unwrap();
    }

    #[test]
    fn by_key_and_company_list() {
        assert!(customer_by_key(-1, "AARON<1>").contains("<gp:key><gp:Id>AARON&lt;1&gt;</gp:Id></gp:key><gp:context>"));
        assert!(invoice_by_key(-1, "INV1").contains("<gp:GetReceivablesInvoiceByKey><gp:key>"));
        let companies = company_list();
        assert!(companies.contains("<gp:context><d:CurrencyType>Transactional</d:CurrencyType></gp:context>"));
        assert_eq!(
            soap_action("GetCustomerList"),
            "\"http://schemas.microsoft.com/dynamics/gp/2006/01/GetCustomerList\""
        );
    }

    #[test]
    fn reads_results_and_faults() {
        let ok = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
            <GetCustomerListResponse xmlns="http://schemas.microsoft.com/dynamics/gp/2006/01"><GetCustomerListResult>
            <CustomerSummary><Key><Id>AARONFIT0001</Id></Key></CustomerSummary>
            <CustomerSummary><Key><Id>ADAMPARK0001</Id></Key></CustomerSummary>
            </GetCustomerListResult></GetCustomerListResponse></s:Body></s:Envelope>"#;
        let r = result(ok, "GetCustomerList").unwrap();
        let ids: Vec<String> = r.children_named("CustomerSummary").filter_map(|c| c.text_at(&["Key", "Id"])).collect();
        assert_eq!(ids, ["AARONFIT0001", "ADAMPARK0001"]);

        let empty = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
            <GetCustomerByKeyResponse xmlns="http://schemas.microsoft.com/dynamics/gp/2006/01"/></s:Body></s:Envelope>"#;
        assert!(result(empty, "GetCustomerByKey").unwrap().children.is_empty());

        let fault = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
            <faultcode>s:Client</faultcode><faultstring xml:lang="en-US">The request is invalid.</faultstring>
            <detail><ExceptionDetail><Message>Company key 99 does not exist.</Message></ExceptionDetail></detail>
            </s:Fault></s:Body></s:Envelope>"#;
        assert!(looks_like_fault(fault));
        match result(fault, "GetCustomerList") {
            Err(AnswerError::Fault(f)) => {
                assert_eq!(f.code, "s:Client");
                assert_eq!(f.message, "The request is invalid. (Company key 99 does not exist.)");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(result("<html/>", "GetCustomerList"), Err(AnswerError::Invalid(_))));
        assert!(matches!(result(ok, "GetCustomerByKey"), Err(AnswerError::Invalid(_))));
    }
}
