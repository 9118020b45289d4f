//! The legacy SOAP endpoint over real sockets: every operation with criteria, the faults, the
//! WSDL, and responses checked against the served schema subset.

use crate::common;

use common::*;
use sandbox_dynamics_gp::{check_soap_request, check_soap_response};

const ALL: &str = "<gp:Scope>Return All</gp:Scope>";

fn customer_list(criteria: &str) -> String {
    envelope("GetCustomerList", &format!("<gp:criteria>{criteria}{ALL}</gp:criteria>"), Some(-1), "Transactional")
}

fn ok(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/xml; charset=utf-8"));
    if let Err(errors) = check_soap_response(&r.body) {
        panic!("response does not match the schema: {errors:#?}\n{}", r.body);
    }
}

/// faultcode and faultstring of a fault response.
fn fault(r: &Resp) -> (String, String) {
    let doc = roxmltree::Document::parse(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    let f = doc
        .descendants()
        .find(|n| n.has_tag_name(("http://schemas.xmlsoap.org/soap/envelope/", "Fault")))
        .unwrap_or_else(|| panic!("not a fault: {}", r.body));
    let text = |name: &str| {
        f.children().find(|c| c.tag_name().name() == name).and_then(|c| c.text()).unwrap_or("").to_string()
    };
    (text("faultcode"), text("faultstring"))
}

#[tokio::test]
async fn company_list_with_d_namespace_keys() {
    let sandbox = start().await;
    let mut conn = authed(&sandbox).await;
    let r =
        soap(&mut conn, "GetCompanyList", &envelope("GetCompanyList", "<gp:criteria/>", None, "Transactional")).await;
    ok(&r);
    let doc = roxmltree::Document::parse(&r.body).unwrap();
    let ids: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name((D, "Id"))).filter_map(|n| n.text()).collect();
    assert_eq!(ids, ["-1", "2"]);
    assert_eq!(texts(&r.body, "Name"), ["Fabrikam, Inc.", "Contoso Ltd."]);
    let response = doc.descendants().find(|n| n.tag_name().name() == "GetCompanyListResponse").unwrap();
    assert_eq!(response.tag_name().namespace(), Some(GP));
    // Criteria on companies: Id BETWEEN (inclusive) and Name LIKE.
    let between = "<gp:Id><gp:EqualValue xsi:nil=\"true\"/><gp:NotEqualValue xsi:nil=\"true\"/><gp:From>0</gp:From><gp:To>2</gp:To><gp:GreaterThan xsi:nil=\"true\"/><gp:LessThan xsi:nil=\"true\"/></gp:Id>";
    let r = soap(
        &mut conn,
        "GetCompanyList",
        &envelope("GetCompanyList", &format!("<gp:criteria>{between}</gp:criteria>"), None, "Transactional"),
    )
    .await;
    ok(&r);
    assert_eq!(texts(&r.body, "Name"), ["Contoso Ltd."]);
}

#[tokio::test]
async fn customer_list_returns_every_match_in_key_order_without_paging() {
    let sandbox = start().await;
    let mut conn = authed(&sandbox).await;
    let r = soap(&mut conn, "GetCustomerList", &customer_list("")).await;
    ok(&r);
    let ids = keys(&r.body, "CustomerSummary");
    assert_eq!(ids.len(), 11);
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert!(!r.body.contains("EmailToAddress"), "the summary has no e-mail");
    assert_eq!(field(&r.body, "CustomerSummary", "SMITHSON0001", "Name").as_deref(), Some("Smith & Sons <Wholesale>"));
    assert_eq!(field(&r.body, "CustomerSummary", "ASSOCIAT0001", "IsActive").as_deref(), Some("false"));
    assert_eq!(field(&r.body, "CustomerSummary", "ATMORERE0001", "IsOnHold").as_deref(), Some("true"));
    assert_eq!(
        field(&r.body, "CustomerSummary", "BAKERSEM0001", "ModifiedDate").as_deref(),
        Some("2024-05-02T13:14:15.437"),
        "DEX_ROW_TS in UTC without offset, at SQL datetime precision"
    );
    assert_eq!(
        field(&r.body, "CustomerSummary", "BAKERSEM0001", "CreatedDate").as_deref(),
        Some("2017-04-12T00:00:00")
    );
    // Company 2 has its own customers.
    let r = soap(
        &mut conn,
        "GetCustomerList",
        &envelope("GetCustomerList", &format!("<gp:criteria>{ALL}</gp:criteria>"), Some(2), "Transactional"),
    )
    .await;
    ok(&r);
    assert_eq!(keys(&r.body, "CustomerSummary"), ["NORTHWIN0001", "TAILSPIN0001", "WINGTIPT0001"]);
}

#[tokio::test]
async fn modified_date_restrictions() {
    let sandbox = start().await;
    let mut conn = authed(&sandbox).await;
    let list = |criteria: String| customer_list(&criteria);
    let r = soap(
        &mut conn,
        "GetCustomerList",
        &list(date_restriction("ModifiedDate", "GreaterThan", "2024-04-01T00:00:00")),
    )
    .await;
    ok(&r);
    assert_eq!(
        keys(&r.body, "CustomerSummary"),
        ["AMERICAN0001", "BAKERSEM0001", "CENTRALC0001", "EUROCONT0001", "SMITHSON0001"]
    );
    // GreaterThan is exclusive at millisecond precision.
    let r = soap(
        &mut conn,
        "GetCustomerList",
        &list(date_restriction("ModifiedDate", "GreaterThan", "2024-05-02T13:14:15.437")),
    )
    .await;
    assert_eq!(keys(&r.body, "CustomerSummary"), ["SMITHSON0001"]);
    let r = soap(
        &mut conn,
        "GetCustomerList",
        &list(date_restriction("ModifiedDate", "GreaterThan", "2024-05-02T13:14:15.436")),
    )
    .await;
    assert_eq!(keys(&r.body, "CustomerSummary"), ["BAKERSEM0001", "SMITHSON0001"]);
    // An offset is honoured (15:14:15.437+02:00 is 13:14:15.437 UTC).
    let r = soap(
        &mut conn,
        "GetCustomerList",
        &list(date_restriction("ModifiedDate", "GreaterThan", "2024-05-02T15:14:15.437+02:00")),
    )
    .await;
    assert_eq!(keys(&r.body, "CustomerSummary"), ["SMITHSON0001"]);
    // LessThan, and From/To inclusive on both ends.
    let r =
        soap(&mut conn, "GetCustomerList", &list(date_restriction("ModifiedDate", "LessThan", "2024-01-25T10:00:00")))
            .await;
    assert_eq!(keys(&r.body, "CustomerSummary"), ["AARONFIT0001"]);
    let between = "<gp:ModifiedDate><gp:EqualValue xsi:nil=\"true\"/><gp:NotEqualValue xsi:nil=\"true\"/><gp:From>2024-01-25T10:00:00</gp:From><gp:To>2024-02-20T16:45:00.997</gp:To><gp:GreaterThan xsi:nil=\"true\"/><gp:LessThan xsi:nil=\"true\"/></gp:ModifiedDate>";
    let r = soap(&mut conn, "GetCustomerList", &list(between.into())).await;
    assert_eq!(keys(&r.body, "CustomerSummary"), ["ADVANCED0001", "ALTONMAN0001", "ASSOCIAT0001"]);
    // The parsed criteria are in the request log.
    let logged = sandbox.admin().requests().into_iter().rev().find(|e| e.action == "GetCustomerList").unwrap();
    assert_eq!(logged.criteria["ModifiedDate"]["From"], "2024-01-25T10:00:00");
    assert_eq!(logged.criteria["ModifiedDate"]["GreaterThan"], serde_json::Value::Null);
    assert_eq!(logged.criteria["Scope"], "Return All");
}

#[tokio::test]
async fn id_key_ranges_and_like() {
    let sandbox = start().await;
    let mut conn = authed(&sandbox).await;
    let range = "<gp:Id><gp:GreaterThan>altonman0001</gp:GreaterThan><gp:LessThan>BAKERSEM0001</gp:LessThan></gp:Id>";
    let r = soap(&mut conn, "GetCustomerList", &customer_list(range)).await;
    ok(&r);
    assert_eq!(
        keys(&r.body, "CustomerSummary"),
        ["AMERICAN0001", "ASSOCIAT0001", "ATMORERE0001"],
        "case-insensitive, exclusive"
    );
    // Keyset walk with GreaterThan only, as a connector would page through a big list.
    let mut last = String::new();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let crit = if last.is_empty() {
            String::new()
        } else {
            format!("<gp:Id><gp:GreaterThan>{last}</gp:GreaterThan></gp:Id>")
        };
        let r = soap(&mut conn, "GetCustomerList", &customer_list(&crit)).await;
        let page: Vec<String> = keys(&r.body, "CustomerSummary").into_iter().take(4).collect();
        if page.is_empty() {
            break;
        }
        last = page.last().unwrap().clone();
        seen.extend(page);
    }
    assert_eq!(seen.len(), 11);
    // Like through xsi:type on Id, and on Name.
    let like = r#"<gp:Id xsi:type="gp:LikeRestrictionOfString"><gp:Like>A%1</gp:Like></gp:Id>"#;
    let r = soap(&mut conn, "GetCustomerList", &customer_list(like)).await;
    ok(&r);
    assert_eq!(keys(&r.body, "CustomerSummary").len(), 7);
    let name = "<gp:Name><gp:Like>%emporium%</gp:Like></gp:Name>";
    let r = soap(&mut conn, "GetCustomerList", &customer_list(name)).await;
    assert_eq!(keys(&r.body, "CustomerSummary"), ["BAKERSEM0001"]);
    // Items (IN) and booleans.
    let items =
        "<gp:Id><gp:Items><gp:string>SMITHSON0001</gp:string><gp:string>aaronfit0001</gp:string></gp:Items></gp:Id>";
    let r = soap(&mut conn, "GetCustomerList", &customer_list(items)).await;
    assert_eq!(keys(&r.body, "CustomerSummary"), ["AARONFIT0001", "SMITHSON0001"]);
    let active = "<gp:IsActive><gp:EqualValue>false</gp:EqualValue><gp:NotEqualValue xsi:nil=\"true\"/></gp:IsActive>";
    let r = soap(&mut conn, "GetCustomerList", &customer_list(active)).await;
    assert_eq!(keys(&r.body, "CustomerSummary"), ["ASSOCIAT0001"]);
    // Nothing matches: an empty result element.
    let none = "<gp:Id><gp:GreaterThan>ZZZ</gp:GreaterThan></gp:Id>";
    let r = soap(&mut conn, "GetCustomerList", &customer_list(none)).await;
    ok(&r);
    assert!(keys(&r.body, "CustomerSummary").is_empty());
}

#[tokio::test]
async fn email_edits_do_not_bump_the_customer_but_address_edits_do() {
    let sandbox = start().await;
    let admin = sandbox.admin();
    let mut conn = authed(&sandbox).await;
    let since = admin.now();
    admin.advance_clock(std::time::Duration::from_secs(60));
    admin.set_email(-1, "AARONFIT0001", None, "new@aaronfitz.example;second@aaronfitz.example").unwrap();
    let since_text = sandbox_ts(since);
    let changed = || customer_list(&date_restriction("ModifiedDate", "GreaterThan", &since_text));
    let r = soap(&mut conn, "GetCustomerList", &changed()).await;
    ok(&r);
    assert!(keys(&r.body, "CustomerSummary").is_empty(), "SY01200 edits leave RM00101.DEX_ROW_TS alone");
    let key = envelope("GetCustomerByKey", "<gp:key><gp:Id>AARONFIT0001</gp:Id></gp:key>", Some(-1), "Transactional");
    let r = soap(&mut conn, "GetCustomerByKey", &key).await;
    ok(&r);
    assert_eq!(texts(&r.body, "EmailToAddress"), ["new@aaronfitz.example;second@aaronfitz.example"]);
    admin.update_customer(-1, "AARONFIT0001", |c| c.addresses[0].city = "Evanston".into()).unwrap();
    let r = soap(&mut conn, "GetCustomerList", &changed()).await;
    assert_eq!(keys(&r.body, "CustomerSummary"), ["AARONFIT0001"], "RM00102 triggers bump the customer");
    let modified = field(&r.body, "CustomerSummary", "AARONFIT0001", "ModifiedDate").unwrap();
    assert!(modified > since_text, "{modified} > {since_text}");
}

fn changed_internet_addresses(criteria: &str) -> String {
    envelope(
        "GetChangedInternetAddressKeyList",
        &format!("<gp:criteria>{criteria}</gp:criteria>"),
        Some(-1),
        "Transactional",
    )
}

/// `(LastModifiedDate, Action, InternetAddressType, InternetAddressKey, AddressKey/Id)` of each
/// `ChangedInternetAddressKey`, in order.
fn changed_keys(body: &str) -> Vec<(String, String, String, String, String)> {
    let doc = roxmltree::Document::parse(body).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name((GP, "ChangedInternetAddressKey")))
        .map(|k| {
            let text = |path: &[&str]| {
                let mut node = Some(k);
                for name in path {
                    node = node.and_then(|n| n.children().find(|c| c.has_tag_name((GP, *name))));
                }
                node.and_then(|n| n.text()).unwrap_or("").to_string()
            };
            (
                text(&["LastModifiedDate"]),
                text(&["Action"]),
                text(&["InternetAddressType"]),
                text(&["InternetAddressKey"]),
                text(&["AddressKey", "Id"]),
            )
        })
        .collect()
}

#[tokio::test]
async fn changed_internet_address_keys_need_tracking_and_report_email_edits() {
    use sandbox_dynamics_gp::DataModificationAction::{Created, Deleted, Updated};
    let sandbox = start().await;
    let admin = sandbox.admin();
    let mut conn = authed(&sandbox).await;
    let customers = "<gp:InternetAddressType><gp:EqualValue>CUS</gp:EqualValue></gp:InternetAddressType>";
    let since = sandbox_ts(admin.now());
    let after = |ts: &str| format!("{}{customers}", date_restriction("LastModifiedDate", "GreaterThan", ts));

    // Tracking is off: an e-mail edit leaves no trace, and the call says nothing about it.
    admin.advance_clock(std::time::Duration::from_secs(60));
    admin.set_email(-1, "AARONFIT0001", None, "untracked@aaronfitz.example").unwrap();
    let r = soap(&mut conn, "GetChangedInternetAddressKeyList", &changed_internet_addresses(&after(&since))).await;
    ok(&r);
    assert!(changed_keys(&r.body).is_empty(), "{}", r.body);
    assert_eq!(admin.action_tracking(-1).unwrap(), serde_json::json!({}));

    // Tracked from now on: each action once, with its time, whatever made it.
    admin.set_action_tracking(-1, "InternetAddress", &[Created, Updated, Deleted]).unwrap();
    admin.advance_clock(std::time::Duration::from_secs(60));
    admin.set_email(-1, "AARONFIT0001", None, "new@aaronfitz.example").unwrap();
    let edited = sandbox_ts(admin.now());
    admin.advance_clock(std::time::Duration::from_secs(60));
    admin.set_email(-1, "BAKERSEM0001", None, "baker@new.example").unwrap();
    admin.update_customer(-1, "BAKERSEM0001", |c| c.addresses[0].city = "Elsewhere".into()).unwrap();
    let r = soap(&mut conn, "GetChangedInternetAddressKeyList", &changed_internet_addresses(&after(&since))).await;
    ok(&r);
    let keys = changed_keys(&r.body);
    let who: Vec<_> = keys.iter().map(|k| (k.1.as_str(), k.2.as_str(), k.3.as_str(), k.4.as_str())).collect();
    assert_eq!(
        who,
        [("Updated", "CUS", "AARONFIT0001", "PRIMARY"), ("Updated", "CUS", "BAKERSEM0001", "PRIMARY")],
        "an address edit is not an internet-address action"
    );
    assert_eq!(keys[0].0, edited, "the action's time: UTC, no offset");
    // GreaterThan is exclusive, like every restriction here.
    let r = soap(&mut conn, "GetChangedInternetAddressKeyList", &changed_internet_addresses(&after(&keys[0].0))).await;
    assert_eq!(changed_keys(&r.body).iter().map(|k| k.3.as_str()).collect::<Vec<_>>(), ["BAKERSEM0001"]);
    // The other restrictions: Action, the customer (InternetAddressKeyId) and the address.
    let deleted = format!(
        r#"<gp:Action><gp:EqualValue>Deleted</gp:EqualValue><gp:NotEqualValue xsi:nil="true"/></gp:Action>{customers}"#
    );
    let r = soap(&mut conn, "GetChangedInternetAddressKeyList", &changed_internet_addresses(&deleted)).await;
    ok(&r);
    assert!(changed_keys(&r.body).is_empty());
    let aaron = format!(
        "{customers}<gp:InternetAddressKeyId><gp:EqualValue>aaronfit0001</gp:EqualValue></gp:InternetAddressKeyId><gp:AddressKeyId><gp:EqualValue>PRIMARY</gp:EqualValue></gp:AddressKeyId>"
    );
    let r = soap(&mut conn, "GetChangedInternetAddressKeyList", &changed_internet_addresses(&aaron)).await;
    assert_eq!(changed_keys(&r.body).len(), 1, "{}", r.body);
    let vendors = "<gp:InternetAddressType><gp:EqualValue>VEN</gp:EqualValue></gp:InternetAddressType>";
    let r = soap(&mut conn, "GetChangedInternetAddressKeyList", &changed_internet_addresses(vendors)).await;
    assert!(changed_keys(&r.body).is_empty());
    // A deleted customer takes its internet addresses with it.
    admin
        .upsert_customer(
            -1,
            sandbox_dynamics_gp::CustomerInput {
                id: "GONE0001".into(),
                name: "Gone".into(),
                addresses: vec![sandbox_dynamics_gp::AddressInput {
                    internet: Some(sandbox_dynamics_gp::InternetAddresses {
                        email_to: "gone@example.com".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap();
    admin.delete_customer(-1, "GONE0001").unwrap();
    let gone = "<gp:InternetAddressKeyId><gp:EqualValue>GONE0001</gp:EqualValue></gp:InternetAddressKeyId>";
    let r = soap(&mut conn, "GetChangedInternetAddressKeyList", &changed_internet_addresses(gone)).await;
    let actions: Vec<_> = changed_keys(&r.body).into_iter().map(|k| k.1).collect();
    assert_eq!(actions, ["Created", "Deleted"]);

    // Strict like the other operations: no Scope here, schema order, a company, real dates.
    for (body, code) in [
        (changed_internet_addresses(&format!("{}{ALL}", after(&since))), "a:DeserializationFailed"),
        (
            changed_internet_addresses(&format!(
                "{customers}{}",
                date_restriction("LastModifiedDate", "GreaterThan", &since)
            )),
            "a:DeserializationFailed",
        ),
        (
            changed_internet_addresses(&date_restriction("LastModifiedDate", "GreaterThan", "2024-01-01")),
            "a:DeserializationFailed",
        ),
        (
            changed_internet_addresses(
                "<gp:Action><gp:EqualValue>Touched</gp:EqualValue><gp:NotEqualValue xsi:nil=\"true\"/></gp:Action>",
            ),
            "a:DeserializationFailed",
        ),
        (
            changed_internet_addresses(
                "<gp:InternetAddressType><gp:EqualValue>CUS</gp:EqualValue><gp:GreaterThan>A</gp:GreaterThan></gp:InternetAddressType>",
            ),
            "s:Client",
        ),
        (
            envelope(
                "GetChangedInternetAddressKeyList",
                &format!("<gp:criteria>{customers}</gp:criteria>"),
                None,
                "Transactional",
            ),
            "s:Client",
        ),
        (
            envelope(
                "GetChangedInternetAddressKeyList",
                &format!("<gp:criteria>{customers}</gp:criteria>"),
                Some(7),
                "Transactional",
            ),
            "s:Client",
        ),
    ] {
        let r = soap(&mut conn, "GetChangedInternetAddressKeyList", &body).await;
        assert_eq!(r.status, 500, "{body}");
        assert_eq!(fault(&r).0, code, "{body}\n{}", r.body);
        assert_eq!(check_soap_request(&body).is_err(), code == "a:DeserializationFailed", "{body}");
    }
    // The admin refuses what the sandbox does not track rather than pretend.
    assert!(admin.set_action_tracking(-1, "Customer", &[Updated]).is_err());
    assert!(admin.set_action_tracking(-1, "Mailbox", &[Updated]).is_err());
    admin.set_action_tracking(-1, "InternetAddress", &[]).unwrap();
    assert_eq!(admin.action_tracking(-1).unwrap(), serde_json::json!({}));
}

/// A timestamp as a criteria value (UTC wall time, no offset).
fn sandbox_ts(ts: jiff::Timestamp) -> String {
    ts.to_zoned(jiff::tz::TimeZone::UTC).datetime().to_string()
}

#[tokio::test]
async fn customer_by_key_has_addresses_and_internet_addresses() {
    let sandbox = start().await;
    let mut conn = authed(&sandbox).await;
    let by_key = |id: &str| {
        envelope("GetCustomerByKey", &format!("<gp:key><gp:Id>{id}</gp:Id></gp:key>"), Some(-1), "Transactional")
    };
    let r = soap(&mut conn, "GetCustomerByKey", &by_key("altonman0001")).await;
    ok(&r);
    assert_eq!(texts(&r.body, "City"), ["Alton", "Alton"]);
    assert_eq!(
        texts(&r.body, "EmailToAddress"),
        ["receiving@alton.example"],
        "only the WAREHOUSE address has a SY01200 row"
    );
    let r = soap(&mut conn, "GetCustomerByKey", &by_key("ADAMPARK0001")).await;
    ok(&r);
    assert_eq!(texts(&r.body, "EmailToAddress"), ["frontdesk@adampark.example;accounting@adampark.example"]);
    let r = soap(&mut conn, "GetCustomerByKey", &by_key("SMITHSON0001")).await;
    ok(&r);
    assert!(r.body.contains("Smith &amp; Sons &lt;Wholesale&gt;"));
    assert_eq!(texts(&r.body, "EmailToAddress"), ["smith&sons@wholesale.example"]);
    let r = soap(&mut conn, "GetCustomerByKey", &by_key("ATMORERE0001")).await;
    assert_eq!(texts(&r.body, "InternetField1"), ["info@atmore.example"]);
    assert_eq!(texts(&r.body, "EmailToAddress"), [""]);
    let r = soap(&mut conn, "GetCustomerByKey", &by_key("NOSUCH0001")).await;
    assert_eq!(r.status, 500);
    assert_eq!(fault(&r), ("s:Client".into(), "Business object not found.".into()));
    assert!(r.body.contains("<ExceptionDetail xmlns=\"http://schemas.datacontract.org/2004/07/System.ServiceModel\""));
}

#[tokio::test]
async fn receivables_invoices_list_and_by_key() {
    let sandbox = start().await;
    let mut conn = authed(&sandbox).await;
    let states = "<gp:TransactionState><gp:EqualValue xsi:nil=\"true\"/><gp:NotEqualValue xsi:nil=\"true\"/><gp:Items><gp:ReceivablesTransactionState>Open</gp:ReceivablesTransactionState><gp:ReceivablesTransactionState>History</gp:ReceivablesTransactionState></gp:Items></gp:TransactionState>";
    let list = |crit: &str, currency: &str| {
        envelope("GetReceivablesInvoiceList", &format!("<gp:criteria>{crit}{ALL}</gp:criteria>"), Some(-1), currency)
    };
    let r = soap(&mut conn, "GetReceivablesInvoiceList", &list(states, "Transactional")).await;
    ok(&r);
    assert_eq!(keys(&r.body, "ReceivablesInvoiceSummary").len(), 7);
    assert!(!r.body.contains("CurrentDocumentAmount"), "the summary has no balance");
    let open_only = states.replace("<gp:ReceivablesTransactionState>History</gp:ReceivablesTransactionState>", "");
    let r = soap(&mut conn, "GetReceivablesInvoiceList", &list(&open_only, "Transactional")).await;
    assert_eq!(
        keys(&r.body, "ReceivablesInvoiceSummary"),
        ["STDINV2001", "STDINV2002", "STDINV2003", "STDINV2005", "STDINV2007"],
        "voided and removed-paid documents are history"
    );
    // By customer and modified date.
    let customer = "<gp:CustomerId><gp:EqualValue>ADAMPARK0001</gp:EqualValue></gp:CustomerId>";
    let r = soap(&mut conn, "GetReceivablesInvoiceList", &list(customer, "Transactional")).await;
    assert_eq!(keys(&r.body, "ReceivablesInvoiceSummary"), ["STDINV2002"]);
    let since = date_restriction("ModifiedDate", "GreaterThan", "2024-04-10T00:00:00");
    let r = soap(&mut conn, "GetReceivablesInvoiceList", &list(&since, "Transactional")).await;
    assert_eq!(keys(&r.body, "ReceivablesInvoiceSummary"), ["STDINV2002", "STDINV2003", "STDINV2005", "STDINV2007"]);
    // Currency: GBP as transacted, USD (rate 1.25) as local.
    let r = soap(
        &mut conn,
        "GetReceivablesInvoiceList",
        &list(customer.replace("ADAMPARK0001", "CENTRALC0001").as_str(), "Transactional"),
    )
    .await;
    assert_eq!(field(&r.body, "ReceivablesInvoiceSummary", "STDINV2005", "ISOCode").as_deref(), Some("GBP"));
    assert_eq!(texts(&r.body, "Value").last().map(String::as_str), Some("1200.00"));
    let r = soap(
        &mut conn,
        "GetReceivablesInvoiceList",
        &list(customer.replace("ADAMPARK0001", "CENTRALC0001").as_str(), "Local"),
    )
    .await;
    ok(&r);
    assert_eq!(field(&r.body, "ReceivablesInvoiceSummary", "STDINV2005", "ISOCode").as_deref(), Some("USD"));
    assert_eq!(texts(&r.body, "Value").last().map(String::as_str), Some("1500.00"));

    let by_key = |id: &str| {
        envelope(
            "GetReceivablesInvoiceByKey",
            &format!("<gp:key><gp:Id>{id}</gp:Id></gp:key>"),
            Some(-1),
            "Transactional",
        )
    };
    let get = |r: &Resp, name: &str| texts(&r.body, name).first().cloned().unwrap();
    let amount = |r: &Resp, name: &str| {
        let doc = roxmltree::Document::parse(&r.body).unwrap();
        let node = doc.descendants().find(|n| n.tag_name().name() == name).unwrap();
        node.children().find(|c| c.tag_name().name() == "Value").and_then(|c| c.text()).unwrap().to_string()
    };
    let open = soap(&mut conn, "GetReceivablesInvoiceByKey", &by_key("STDINV2001")).await;
    ok(&open);
    assert_eq!(
        (amount(&open, "DocumentAmount"), amount(&open, "CurrentDocumentAmount")),
        ("138.40".into(), "138.40".into())
    );
    assert_eq!(
        (get(&open, "IsVoided"), get(&open, "InvoicePaidOffDate")),
        ("false".into(), "1900-01-01T00:00:00".into())
    );
    assert_eq!(get(&open, "Date"), "2024-04-02T00:00:00");
    let partly = soap(&mut conn, "GetReceivablesInvoiceByKey", &by_key("STDINV2002")).await;
    assert_eq!(
        (amount(&partly, "DocumentAmount"), amount(&partly, "CurrentDocumentAmount")),
        ("450.00".into(), "350.00".into())
    );
    let paid = soap(&mut conn, "GetReceivablesInvoiceByKey", &by_key("STDINV2003")).await;
    assert_eq!(amount(&paid, "CurrentDocumentAmount"), "0.00");
    assert_eq!(
        (get(&paid, "InvoicePaidOffDate"), get(&paid, "TransactionState")),
        ("2024-04-10T00:00:00".into(), "Open".into())
    );
    let void = soap(&mut conn, "GetReceivablesInvoiceByKey", &by_key("STDINV2004")).await;
    ok(&void);
    assert_eq!(
        (get(&void, "IsVoided"), get(&void, "VoidDate"), get(&void, "TransactionState")),
        ("true".into(), "2024-02-22T00:00:00".into(), "History".into())
    );
    assert_eq!(amount(&void, "CurrentDocumentAmount"), "0.00");
    let missing = soap(&mut conn, "GetReceivablesInvoiceByKey", &by_key("NOPE")).await;
    assert_eq!(fault(&missing).1, "Business object not found.");

    // Admin changes show up: pay in full, then the document's ModifiedDate moves.
    let admin = sandbox.admin();
    let before = admin.now();
    admin.advance_clock(std::time::Duration::from_secs(5));
    admin.pay_invoice(-1, "STDINV2001", None).unwrap();
    let after = soap(&mut conn, "GetReceivablesInvoiceByKey", &by_key("STDINV2001")).await;
    assert_eq!(amount(&after, "CurrentDocumentAmount"), "0.00");
    let since = date_restriction("ModifiedDate", "GreaterThan", &sandbox_ts(before));
    let r = soap(&mut conn, "GetReceivablesInvoiceList", &list(&since, "Transactional")).await;
    assert_eq!(keys(&r.body, "ReceivablesInvoiceSummary"), ["STDINV2001"]);
}

#[tokio::test]
async fn sales_invoices_list_and_by_key() {
    let sandbox = start().await;
    let mut conn = authed(&sandbox).await;
    let states = "<gp:TransactionState><gp:EqualValue>History</gp:EqualValue><gp:NotEqualValue xsi:nil=\"true\"/></gp:TransactionState>";
    let list = |crit: &str| {
        envelope("GetSalesInvoiceList", &format!("<gp:criteria>{crit}{ALL}</gp:criteria>"), Some(-1), "Transactional")
    };
    let r = soap(&mut conn, "GetSalesInvoiceList", &list(states)).await;
    ok(&r);
    assert_eq!(keys(&r.body, "SalesInvoiceSummary").len(), 7);
    let work = states.replace("History", "Work");
    let r = soap(&mut conn, "GetSalesInvoiceList", &list(&work)).await;
    assert!(keys(&r.body, "SalesInvoiceSummary").is_empty(), "no unposted documents");
    let by_customer = "<gp:CustomerId><gp:EqualValue>AARONFIT0001</gp:EqualValue></gp:CustomerId>";
    let r = soap(&mut conn, "GetSalesInvoiceList", &list(by_customer)).await;
    assert_eq!(keys(&r.body, "SalesInvoiceSummary"), ["STDINV2001"]);
    let by_key =
        envelope("GetSalesInvoiceByKey", "<gp:key><gp:Id>STDINV2001</gp:Id></gp:key>", Some(-1), "Transactional");
    let r = soap(&mut conn, "GetSalesInvoiceByKey", &by_key).await;
    ok(&r);
    assert_eq!(texts(&r.body, "ItemDescription"), ["128 meg SDRAM"]);
    assert_eq!(texts(&r.body, "CustomerPONumber"), ["PO-7781"]);
}

#[tokio::test]
async fn faults_for_company_operation_xml_schema_and_criteria() {
    let sandbox = start().await;
    let mut conn = authed(&sandbox).await;
    // Unknown company.
    let r = soap(
        &mut conn,
        "GetCustomerList",
        &envelope("GetCustomerList", &format!("<gp:criteria>{ALL}</gp:criteria>"), Some(7), "Transactional"),
    )
    .await;
    assert_eq!(r.status, 500);
    let (code, text) = fault(&r);
    assert_eq!(code, "s:Client");
    assert!(text.contains("company key 7"), "{text}");
    // Null organization key addresses the system database.
    let r = soap(
        &mut conn,
        "GetCustomerList",
        &envelope("GetCustomerList", &format!("<gp:criteria>{ALL}</gp:criteria>"), None, "Transactional"),
    )
    .await;
    assert_eq!(fault(&r).0, "s:Client");
    // Unknown operation.
    let r = soap(&mut conn, "GetVendorList", &customer_list("")).await;
    assert_eq!(r.status, 500);
    let (code, text) = fault(&r);
    assert_eq!(code, "a:ActionNotSupported");
    assert!(text.contains("ContractFilter mismatch"));
    assert!(r.body.contains(r#"xmlns:a="http://schemas.microsoft.com/ws/2005/05/addressing/none""#));
    // Malformed XML.
    let r = soap(&mut conn, "GetCustomerList", "<soap:Envelope><oops>").await;
    assert_eq!(r.status, 400);
    assert_eq!(fault(&r).0, "s:Client");
    // Schema: a missing nil member, wrong order, wrong namespace, date without time, missing Scope.
    let missing_nil = "<gp:ModifiedDate><gp:GreaterThan>2024-01-01T00:00:00</gp:GreaterThan></gp:ModifiedDate>";
    let out_of_order = format!("{ALL}<gp:Name><gp:Like>A%</gp:Like></gp:Name>");
    let wrong_ns = envelope("GetCustomerList", &format!("<gp:criteria>{ALL}</gp:criteria>"), Some(-1), "Transactional")
        .replace("<d:CurrencyType>Transactional</d:CurrencyType>", "<gp:CurrencyType>Transactional</gp:CurrencyType>");
    let date_only = date_restriction("ModifiedDate", "GreaterThan", "2024-01-01");
    for body in [
        customer_list(missing_nil),
        envelope("GetCustomerList", &format!("<gp:criteria>{out_of_order}</gp:criteria>"), Some(-1), "Transactional"),
        wrong_ns,
        customer_list(&date_only),
        envelope("GetCustomerList", "<gp:criteria/>", Some(-1), "Transactional"),
        envelope("GetCustomerList", "<gp:criteria/>", Some(-1), "Euro"),
    ] {
        let r = soap(&mut conn, "GetCustomerList", &body).await;
        assert_eq!(r.status, 500, "{body}");
        let (code, text) = fault(&r);
        assert_eq!(code, "a:DeserializationFailed", "{text}");
        assert!(text.starts_with("The formatter threw an exception while trying to deserialize the message"), "{text}");
        assert!(check_soap_request(&body).is_err(), "check_soap_request must agree: {body}");
    }
    // SOAPAction and body disagree.
    let r = soap(&mut conn, "GetCustomerByKey", &customer_list("")).await;
    assert!(fault(&r).1.contains("OperationFormatter encountered an invalid Message body"));
    // Invalid criteria: From without To, From after To, mixed kinds, scope without its field.
    let from_only = "<gp:ModifiedDate><gp:EqualValue xsi:nil=\"true\"/><gp:NotEqualValue xsi:nil=\"true\"/><gp:From>2024-01-01T00:00:00</gp:From><gp:To xsi:nil=\"true\"/><gp:GreaterThan xsi:nil=\"true\"/><gp:LessThan xsi:nil=\"true\"/></gp:ModifiedDate>";
    let mixed = "<gp:Id><gp:EqualValue>A</gp:EqualValue><gp:GreaterThan>B</gp:GreaterThan></gp:Id>";
    let backwards = "<gp:Id><gp:From>Z</gp:From><gp:To>A</gp:To></gp:Id>";
    let based_on = envelope(
        "GetCustomerList",
        "<gp:criteria><gp:Scope>Return Based on Salesperson Id</gp:Scope></gp:criteria>",
        Some(-1),
        "Transactional",
    );
    let too_old = date_restriction("ModifiedDate", "GreaterThan", "1700-01-01T00:00:00");
    for body in
        [customer_list(from_only), customer_list(mixed), customer_list(backwards), based_on, customer_list(&too_old)]
    {
        assert!(check_soap_request(&body).is_ok(), "schema-valid: {body}");
        let r = soap(&mut conn, "GetCustomerList", &body).await;
        let (code, text) = fault(&r);
        assert_eq!(code, "s:Client", "{text}");
        assert!(text.starts_with("The criteria is not valid."), "{text}");
    }
    // Culture.
    let culture = customer_list("")
        .replace("<d:CurrencyType>", "<d:CultureName>english-language</d:CultureName><d:CurrencyType>");
    let r = soap(&mut conn, "GetCustomerList", &culture).await;
    assert!(fault(&r).1.starts_with("Culture is not supported."), "{}", r.body);
    // Content type: SOAP 1.2's is refused.
    let r = conn
        .send(
            "POST",
            SOAP_PATH,
            &[("Content-Type", "application/soap+xml"), ("SOAPAction", "\"x\"")],
            &customer_list(""),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 415);
    // The log records the faults with their codes.
    let log = sandbox.admin().requests();
    assert!(log.iter().any(|e| e.error.as_deref().is_some_and(|m| m.starts_with("a:ActionNotSupported"))));
}

#[tokio::test]
async fn wsdl_lists_the_operations_with_their_actions() {
    let sandbox = start().await;
    let mut conn = authed(&sandbox).await;
    let r = conn.send("GET", &format!("{SOAP_PATH}?WSDL"), &[], "").await.unwrap();
    assert_eq!(r.status, 200);
    let doc = roxmltree::Document::parse(&r.body).unwrap();
    let actions: Vec<&str> = doc.descendants().filter_map(|n| n.attribute("soapAction")).collect();
    for op in [
        "GetCompanyList",
        "GetCustomerList",
        "GetCustomerByKey",
        "GetReceivablesInvoiceList",
        "GetReceivablesInvoiceByKey",
        "GetSalesInvoiceList",
        "GetSalesInvoiceByKey",
        "GetChangedInternetAddressKeyList",
    ] {
        assert!(actions.contains(&format!("{GP}/{op}").as_str()), "{op}");
    }
    let address = doc.descendants().find(|n| n.tag_name().name() == "address").unwrap();
    assert_eq!(address.attribute("location"), Some(sandbox.soap_url().as_str()));
    let schemas: Vec<&str> = doc.descendants().filter_map(|n| n.attribute("targetNamespace")).collect();
    assert!(schemas.contains(&GP) && schemas.contains(&D));
    // Paths are case-insensitive, as on IIS.
    let r = conn.send("GET", "/dynamicsgpwebservices/dynamicsgpservice.asmx?wsdl", &[], "").await.unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn check_soap_request_accepts_the_reference_example_and_names_problems() {
    // Reference §2.6, verbatim apart from whitespace.
    let reference = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
               xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
               xmlns:gp="http://schemas.microsoft.com/dynamics/gp/2006/01"
               xmlns:d="http://schemas.microsoft.com/dynamics/2006/01">
  <soap:Body>
    <gp:GetCustomerList>
      <gp:criteria>
        <gp:ModifiedDate>
          <gp:EqualValue xsi:nil="true"/>
          <gp:NotEqualValue xsi:nil="true"/>
          <gp:From xsi:nil="true"/>
          <gp:To xsi:nil="true"/>
          <gp:GreaterThan>2024-05-01T00:00:00</gp:GreaterThan>
          <gp:LessThan xsi:nil="true"/>
        </gp:ModifiedDate>
        <gp:Scope>Return All</gp:Scope>
      </gp:criteria>
      <gp:context>
        <d:OrganizationKey xsi:type="d:CompanyKey"><d:Id>-1</d:Id></d:OrganizationKey>
        <d:CurrencyType>Transactional</d:CurrencyType>
      </gp:context>
    </gp:GetCustomerList>
  </soap:Body>
</soap:Envelope>"#;
    assert_eq!(check_soap_request(reference), Ok(()));
    // Other prefixes are fine: namespaces matter, not prefixes.
    let renamed = reference.replace("gp:", "g:").replace("xmlns:gp=", "xmlns:g=");
    assert_eq!(check_soap_request(&renamed), Ok(()));
    // Context children in the gp namespace instead of d.
    let errors =
        check_soap_request(&reference.replace(
            "<d:CurrencyType>Transactional</d:CurrencyType>",
            "<gp:CurrencyType>Transactional</gp:CurrencyType>",
        ))
        .unwrap_err();
    assert!(errors.iter().any(|e| e.contains("missing required element {http://schemas.microsoft.com/dynamics/2006/01}CurrencyType")), "{errors:?}");
    // OrganizationKey without xsi:type is abstract.
    let errors = check_soap_request(&reference.replace(r#" xsi:type="d:CompanyKey""#, "")).unwrap_err();
    assert!(errors.iter().any(|e| e.contains("abstract")), "{errors:?}");
    // The reference's other sample: receivables criteria with Items.
    let receivables = envelope(
        "GetReceivablesInvoiceList",
        "<gp:criteria><gp:TransactionState><gp:EqualValue xsi:nil=\"true\"/><gp:NotEqualValue xsi:nil=\"true\"/><gp:Items><gp:ReceivablesTransactionState>Open</gp:ReceivablesTransactionState><gp:ReceivablesTransactionState>History</gp:ReceivablesTransactionState></gp:Items></gp:TransactionState><gp:Scope>Return All</gp:Scope></gp:criteria>",
        Some(-1),
        "Transactional",
    );
    assert_eq!(check_soap_request(&receivables), Ok(()));
    let errors = check_soap_request(&receivables.replace(">Open<", ">Posted<")).unwrap_err();
    assert!(errors[0].contains("'Posted' is not a valid gp:ReceivablesTransactionState"), "{errors:?}");
    // A by-key request.
    let by_key = envelope("GetCustomerByKey", "<gp:key><gp:Id>AARONFIT0001</gp:Id></gp:key>", Some(-1), "Local");
    assert_eq!(check_soap_request(&by_key), Ok(()));
    assert!(
        check_soap_request(&by_key.replace("<gp:key>", "<gp:criteria>").replace("</gp:key>", "</gp:criteria>"))
            .is_err()
    );
    // Not SOAP 1.1.
    let soap12 =
        reference.replace("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope");
    assert!(check_soap_request(&soap12).unwrap_err()[0].contains("SOAP 1.1"));
}
