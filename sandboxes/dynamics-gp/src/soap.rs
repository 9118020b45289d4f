//! The legacy SOAP endpoint: `POST /DynamicsGPWebServices/DynamicsGPService.asmx`.
//!
//! A request goes through the checks a WCF `basicHttpBinding` service and GP make, each with
//! its own answer:
//! 1. `Content-Type` must be `text/xml` (SOAP 1.1) → else `415`, as WCF answers.
//! 2. `SOAPAction` (quoted or not) must name an implemented operation → else the WCF
//!    `a:ActionNotSupported` fault ("ContractFilter mismatch").
//! 3. The body must be well-formed XML without DTD → else `400` with an `s:Client` fault.
//! 4. The envelope must hold the operation's element, valid against [`crate::schema`] → else
//!    `a:DeserializationFailed` ("The formatter threw an exception …").
//! 5. `Context`: `OrganizationKey` must name an existing company (null = the system database,
//!    allowed only for `GetCompanyList`), `CultureName` must look like a culture → else a GP
//!    `s:Client` fault.
//! 6. Criteria must be unambiguous (see [`crate::criteria`]) → else a GP `s:Client` fault;
//!    `Get…ByKey` of a missing key → "Business object not found.".
//!
//! `GetChangedInternetAddressKeyList` goes through the same checks (its criteria have no
//! `Scope`, so one is refused as an unexpected element) and reads the company's log of tracked
//! actions (`crate::model`), which is empty until tracking is enabled.
//!
//! Faults are HTTP 500 with `s:Fault` (faultcode, faultstring `xml:lang="en-US"`) and, for
//! service-level errors, WCF's `ExceptionDetail` (System.ServiceModel data contract: HelpLink,
//! InnerException, Message, StackTrace, Type) under `detail`, i.e. what GP's service host sends
//! with `includeExceptionDetailInFaults`. The reference has no captured GP fault (§8.2), so the
//! message texts of GP's own validation are the sandbox's; the WCF ones are WCF's.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::Value;

use crate::body::Body;
use crate::criteria::{self, Criteria, Val};
use crate::model::{Company, Customer, InternetAddressAction, Invoice, key};
use crate::render::{self, Ctx};
use crate::schema::{self, Operation};
use crate::state::Shared;
use crate::xml::{self, D, GP, Out, SOAP_ENV, XSI};

/// Records rendered per streamed chunk.
const CHUNK: usize = 500;

/// What the endpoint answers, plus what the request log records.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Body,
    /// The operation name (or the raw `SOAPAction`).
    pub action: String,
    /// The parsed criteria or key.
    pub criteria: Value,
    /// The fault code, if any.
    pub error: Option<String>,
}

/// A SOAP fault.
#[derive(Debug, Clone)]
pub struct Fault {
    /// `faultcode` (`s:Client`, `s:Server`, `a:ActionNotSupported`, `a:DeserializationFailed`).
    pub code: &'static str,
    /// `faultstring` (and `ExceptionDetail/Message`).
    pub message: String,
    /// `ExceptionDetail/Type`, when the fault carries a detail.
    pub detail_type: Option<&'static str>,
    /// HTTP status.
    pub status: u16,
}

impl Fault {
    /// A GP validation fault (the caller's mistake).
    pub fn client(message: impl Into<String>) -> Fault {
        Fault {
            code: "s:Client",
            message: message.into(),
            detail_type: Some("System.ServiceModel.FaultException"),
            status: 500,
        }
    }

    /// WCF's answer to an unknown `SOAPAction`.
    pub fn action_not_supported(action: &str) -> Fault {
        Fault {
            code: "a:ActionNotSupported",
            message: format!(
                "The message with Action '{action}' cannot be processed at the receiver, due to a ContractFilter mismatch at the EndpointDispatcher. This may be because of either a contract mismatch (mismatched Actions between sender and receiver) or a binding/security mismatch between the sender and the receiver.  Check that sender and receiver have the same contract and the same binding (including security requirements, e.g. Message, Transport, None)."
            ),
            detail_type: None,
            status: 500,
        }
    }

    /// WCF's answer to a body that does not deserialize.
    pub fn deserialization(param: &str, problem: &str) -> Fault {
        Fault {
            code: "a:DeserializationFailed",
            message: format!(
                "The formatter threw an exception while trying to deserialize the message: There was an error while trying to deserialize parameter {GP}:{param}. The InnerException message was '{problem}'.  Please see InnerException for more details."
            ),
            detail_type: Some("System.ServiceModel.Dispatcher.NetDispatcherFaultException"),
            status: 500,
        }
    }

    /// A server-side failure (the injected 500: SQL Server unreachable).
    pub fn server_error() -> Fault {
        Fault {
            code: "s:Server",
            message: "A transport-level error has occurred when receiving results from the server. (provider: TCP Provider, error: 0 - An existing connection was forcibly closed by the remote host.)".into(),
            detail_type: Some("System.Data.SqlClient.SqlException"),
            status: 500,
        }
    }

    /// The fault envelope.
    pub fn render(&self) -> String {
        let code_ns = match self.code {
            "a:ActionNotSupported" => r#" xmlns:a="http://schemas.microsoft.com/ws/2005/05/addressing/none""#,
            "a:DeserializationFailed" => {
                r#" xmlns:a="http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher""#
            }
            _ => "",
        };
        let message = xml::escape(&self.message);
        let detail = self
            .detail_type
            .map(|ty| {
                format!(
                    concat!(
                        r#"<detail><ExceptionDetail xmlns="http://schemas.datacontract.org/2004/07/System.ServiceModel" xmlns:i="{xsi}">"#,
                        r#"<HelpLink i:nil="true"/><InnerException i:nil="true"/><Message>{message}</Message>"#,
                        r#"<StackTrace i:nil="true"/><Type>{ty}</Type></ExceptionDetail></detail>"#
                    ),
                    xsi = XSI,
                    message = message,
                    ty = ty
                )
            })
            .unwrap_or_default();
        format!(
            r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><s:Fault><faultcode{code_ns}>{code}</faultcode><faultstring xml:lang="en-US">{message}</faultstring>{detail}</s:Fault></s:Body></s:Envelope>"#,
            code = self.code,
        )
    }
}

/// `text/xml; charset=utf-8`.
const TEXT_XML: &str = "text/xml; charset=utf-8";

fn fault_reply(fault: Fault, action: String, criteria: Value) -> Reply {
    Reply {
        status: fault.status,
        content_type: TEXT_XML,
        error: Some(format!("{}: {}", fault.code, fault.message)),
        body: Body::full(fault.render()),
        action,
        criteria,
    }
}

/// Handles a POST to the SOAP endpoint.
pub fn handle(shared: &Arc<Shared>, soap_action: Option<&str>, content_type: Option<&str>, body: &str) -> Reply {
    let raw_action = soap_action.unwrap_or("").trim().trim_matches('"').to_string();
    let is_xml =
        content_type.is_some_and(|ct| ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/xml")));
    if !is_xml {
        let ct = content_type.unwrap_or("");
        return Reply {
            status: 415,
            content_type: "text/plain; charset=utf-8",
            body: Body::full(format!(
                "Cannot process the message because the content type '{ct}' was not the expected type 'text/xml; charset=utf-8'."
            )),
            action: raw_action,
            criteria: Value::Null,
            error: Some("415 Unsupported Media Type".into()),
        };
    }
    let op = raw_action.strip_prefix(GP).and_then(|rest| rest.strip_prefix('/')).and_then(schema::operation);
    let Some(op) = op else {
        return fault_reply(Fault::action_not_supported(&raw_action), raw_action, Value::Null);
    };
    let action = op.name.to_string();
    let doc = match xml::parse(body) {
        Ok(doc) => doc,
        Err(e) => {
            let fault = Fault {
                code: "s:Client",
                message: format!("The request is not well-formed XML: {e}"),
                detail_type: Some("System.Xml.XmlException"),
                status: 400,
            };
            return fault_reply(fault, action, Value::Null);
        }
    };
    let (node, found) = match schema::envelope_operation(&doc) {
        Ok(found) => found,
        Err(problem) => return fault_reply(Fault::deserialization(op.param, &problem), action, Value::Null),
    };
    if found.name != op.name {
        let problem = format!(
            "OperationFormatter encountered an invalid Message body. Expected to find node type 'Element' with name '{}' and namespace '{GP}'. Found node type 'Element' with name '{}' and namespace '{GP}'",
            op.name, found.name
        );
        return fault_reply(Fault::deserialization(op.param, &problem), action, Value::Null);
    }
    let criteria_json = xml::child(node, GP, op.param).map(criteria::to_json).unwrap_or(Value::Null);
    let mut errors = Vec::new();
    schema::validate_operation(node, op, &mut errors);
    if let Some(first) = errors.first() {
        return fault_reply(Fault::deserialization(op.param, first), action, criteria_json);
    }
    match execute(shared, op, node) {
        Ok(body) => Reply { status: 200, content_type: TEXT_XML, body, action, criteria: criteria_json, error: None },
        Err(fault) => fault_reply(fault, action, criteria_json),
    }
}

/// What the context asks for.
struct Context {
    /// `OrganizationKey/Id`, `None` for the system database.
    company: Option<i32>,
    /// Rendering options.
    ctx: Ctx,
}

fn context(node: roxmltree::Node) -> Result<Context, Fault> {
    let ctx_node = xml::child(node, GP, "context").expect("validated");
    let company = xml::child(ctx_node, D, "OrganizationKey")
        .filter(|n| !xml::is_nil(*n))
        .and_then(|n| xml::child(n, D, "Id"))
        .map(|n| xml::text(n).trim().parse::<i32>().expect("validated xs:int"));
    if let Some(culture) = xml::child(ctx_node, D, "CultureName").map(xml::text) {
        let valid = culture.is_empty()
            || culture.split('-').enumerate().all(|(i, part)| {
                (if i == 0 { (2..=3).contains(&part.len()) } else { (2..=8).contains(&part.len()) })
                    && part.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !valid {
            return Err(Fault::client(format!(
                "Culture is not supported.\r\nParameter name: name\r\n{culture} is an invalid culture identifier."
            )));
        }
    }
    let local = xml::child(ctx_node, D, "CurrencyType").is_some_and(|n| xml::text(n) == "Local");
    Ok(Context { company, ctx: Ctx { local } })
}

fn company_required(shared: &Shared, company: Option<i32>) -> Result<i32, Fault> {
    let id = company.ok_or_else(|| {
        Fault::client(
            "The context's OrganizationKey is null, which addresses the system database; this operation needs a company key.",
        )
    })?;
    if shared.db().contains_key(&id) {
        Ok(id)
    } else {
        Err(Fault::client(format!("The company key {id} is not valid: no company with that ID exists.")))
    }
}

fn not_found() -> Fault {
    Fault::client("Business object not found.")
}

fn midnight(date: Date) -> Timestamp {
    date.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn s(text: &str) -> Option<Val> {
    Some(Val::Str(text.to_string()))
}

/// A customer's value of a `CustomerCriteria` field.
fn customer_value(c: &Customer, field: &str) -> Option<Val> {
    let i = &c.input;
    let primary = c.primary().map(|a| &a.input);
    match field {
        "Id" => s(&i.id),
        "Name" => s(&i.name),
        "IsActive" => Some(Val::Bool(!i.inactive)),
        "IsOnHold" => Some(Val::Bool(i.on_hold)),
        "SalespersonId" => s(&i.salesperson_id),
        "ClassId" => s(&i.class_id),
        "CorporateAccountId" => s(&i.corporate_account_id),
        "State" => s(primary.map(|a| a.state.as_str()).unwrap_or("")),
        "PhoneNumber" => s(primary.map(|a| a.phone1.as_str()).unwrap_or("")),
        "CreatedDate" => Some(Val::Date(midnight(c.created))),
        "ModifiedDate" | "LastModifiedDate" => Some(Val::Date(c.ts)),
        _ => None,
    }
}

/// An invoice's value of a `ReceivablesInvoiceCriteria` field.
fn receivables_value(inv: &Invoice, field: &str) -> Option<Val> {
    match field {
        "TransactionState" => s(inv.rm_state()),
        "DocumentId" => s(&inv.number),
        "Date" => Some(Val::Date(midnight(inv.date))),
        "CustomerId" => s(&inv.customer_id),
        "BatchId" => s(&inv.batch_id),
        "SalespersonId" => s(&inv.salesperson_id),
        "ModifiedDate" => Some(Val::Date(inv.rm_ts)),
        _ => None,
    }
}

/// An invoice's value of a `SalesInvoiceCriteria` field.
fn sales_value(inv: &Invoice, field: &str) -> Option<Val> {
    match field {
        "TransactionState" => s("History"),
        "DocumentId" => s(&inv.number),
        "Date" => Some(Val::Date(midnight(inv.date))),
        "CustomerId" => s(&inv.customer_id),
        "CustomerName" => s(&inv.customer_name),
        "CustomerPONumber" => s(&inv.po_number),
        "BatchId" => s(&inv.batch_id),
        "DocumentTypeId" => s("STDINV"),
        "SalespersonId" => s(&inv.salesperson_id),
        "MasterNumber" => Some(Val::Int(i64::from(inv.master_number))),
        "ModifiedDate" | "LastModifiedDate" => Some(Val::Date(inv.sop_ts)),
        "CreatedDate" => Some(Val::Date(midnight(inv.sop_created))),
        _ => None,
    }
}

/// A tracked internet-address action's value of an `InternetAddressKeyChangedCriteria` field.
fn internet_address_action_value(a: &InternetAddressAction, field: &str) -> Option<Val> {
    match field {
        "LastModifiedDate" => Some(Val::Date(a.at)),
        "Action" => s(a.action.as_str()),
        "InternetAddressType" => s(a.master_type),
        "InternetAddressKeyId" => s(&a.master_id),
        "AddressKeyId" => s(&a.address_id),
        _ => None,
    }
}

fn parse_criteria(node: roxmltree::Node, op: &Operation) -> Result<Criteria, Fault> {
    let criteria_node = xml::child(node, GP, "criteria").expect("validated");
    criteria::parse(criteria_node, op.param_type).map_err(|m| Fault::client(format!("The criteria is not valid. {m}")))
}

fn key_of(node: roxmltree::Node) -> Result<String, Fault> {
    let key_node = xml::child(node, GP, "key").expect("validated");
    match criteria::key_id(key_node) {
        Some(id) if !id.is_empty() => Ok(id),
        _ => Err(Fault::client("The key is not valid: its Id is missing.")),
    }
}

fn envelope_head(op: &str) -> String {
    format!(r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><{op}Response xmlns="{GP}" xmlns:xsi="{XSI}">"#)
}

fn envelope_tail(op: &str) -> String {
    format!("</{op}Response></s:Body></s:Envelope>")
}

/// Renders one record of a list into a chunk.
type RenderFn = fn(&mut Out, &Company, &str, Ctx);

/// A list response rendered lazily: head, then the records in chunks, then the tail.
struct ListStream {
    shared: Arc<Shared>,
    company: i32,
    keys: std::vec::IntoIter<String>,
    head: Option<String>,
    tail: Option<String>,
    render: RenderFn,
    ctx: Ctx,
}

impl Iterator for ListStream {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        let batch: Vec<String> = self.keys.by_ref().take(CHUNK).collect();
        if batch.is_empty() {
            return self.tail.take();
        }
        let db = self.shared.db();
        let mut out = Out::default();
        if let Some(company) = db.get(&self.company) {
            for key in &batch {
                (self.render)(&mut out, company, key, self.ctx);
            }
        }
        Some(out.buf)
    }
}

fn list(shared: &Arc<Shared>, op: &Operation, company: i32, keys: Vec<String>, ctx: Ctx, render: RenderFn) -> Body {
    let result = format!("{}Result", op.name);
    Body::Chunks(Box::new(ListStream {
        shared: shared.clone(),
        company,
        keys: keys.into_iter(),
        head: Some(format!("{}<{result}>", envelope_head(op.name))),
        tail: Some(format!("</{result}>{}", envelope_tail(op.name))),
        render,
        ctx,
    }))
}

fn single(op: &Operation, render: impl FnOnce(&mut Out)) -> Body {
    let mut out = Out { buf: envelope_head(op.name) };
    render(&mut out);
    out.buf.push_str(&envelope_tail(op.name));
    Body::full(out.buf)
}

fn execute(shared: &Arc<Shared>, op: &Operation, node: roxmltree::Node) -> Result<Body, Fault> {
    let context = context(node)?;
    let ctx = context.ctx;
    match op.name {
        "GetCompanyList" => {
            let criteria = parse_criteria(node, op)?;
            let db = shared.db();
            let matching: Vec<&Company> = db
                .values()
                .filter(|c| {
                    criteria.matches(|field| match field {
                        "Id" => Some(Val::Int(i64::from(c.id))),
                        "Name" => s(&c.name),
                        "CreatedDate" | "ModifiedDate" => Some(Val::Date(midnight(c.created))),
                        _ => None,
                    })
                })
                .collect();
            Ok(single(op, |out| {
                out.open("GetCompanyListResult");
                for c in matching {
                    render::company(out, c);
                }
                out.close("GetCompanyListResult");
            }))
        }
        "GetCustomerList" => {
            let company = company_required(shared, context.company)?;
            let criteria = parse_criteria(node, op)?;
            let keys = shared.db()[&company]
                .customers
                .iter()
                .filter(|(_, c)| criteria.matches(|f| customer_value(c, f)))
                .map(|(k, _)| k.clone())
                .collect();
            Ok(list(shared, op, company, keys, ctx, |out, company, key, _| {
                if let Some(c) = company.customers.get(key) {
                    render::customer_summary(out, c);
                }
            }))
        }
        "GetCustomerByKey" => {
            let company = company_required(shared, context.company)?;
            let id = key_of(node)?;
            let db = shared.db();
            let c = &db[&company];
            let customer = c.customers.get(&key(&id)).ok_or_else(not_found)?;
            Ok(single(op, |out| render::customer(out, c, customer)))
        }
        "GetReceivablesInvoiceList" | "GetSalesInvoiceList" => {
            let company = company_required(shared, context.company)?;
            let criteria = parse_criteria(node, op)?;
            let sales = op.name == "GetSalesInvoiceList";
            let value = if sales { sales_value } else { receivables_value };
            let keys = shared.db()[&company]
                .invoices
                .iter()
                .filter(|(_, inv)| criteria.matches(|f| value(inv, f)))
                .map(|(k, _)| k.clone())
                .collect();
            let render: RenderFn = if sales {
                |out, company, key, ctx| {
                    if let Some(inv) = company.invoices.get(key) {
                        render::sales_summary(out, company, inv, ctx);
                    }
                }
            } else {
                |out, company, key, ctx| {
                    if let Some(inv) = company.invoices.get(key) {
                        render::receivables_summary(out, company, inv, ctx);
                    }
                }
            };
            Ok(list(shared, op, company, keys, ctx, render))
        }
        "GetReceivablesInvoiceByKey" | "GetSalesInvoiceByKey" => {
            let company = company_required(shared, context.company)?;
            let id = key_of(node)?;
            let db = shared.db();
            let c = &db[&company];
            let inv = c.invoices.get(&key(&id)).ok_or_else(not_found)?;
            if op.name == "GetSalesInvoiceByKey" {
                Ok(single(op, |out| render::sales_invoice(out, c, inv, ctx)))
            } else {
                Ok(single(op, |out| render::receivables_invoice(out, c, inv, ctx)))
            }
        }
        "GetChangedInternetAddressKeyList" => {
            // Every tracked action in the interval, one key each, oldest first (the log as GP's
            // tracking writes it; a caller de-duplicates). Nothing for actions made while
            // tracking was off: see `model`.
            let company = company_required(shared, context.company)?;
            let criteria = parse_criteria(node, op)?;
            let db = shared.db();
            let matching: Vec<&InternetAddressAction> = db[&company]
                .internet_address_actions
                .iter()
                .filter(|a| criteria.matches(|f| internet_address_action_value(a, f)))
                .collect();
            Ok(single(op, |out| {
                out.open("GetChangedInternetAddressKeyListResult");
                for a in matching {
                    render::changed_internet_address_key(out, a);
                }
                out.close("GetChangedInternetAddressKeyListResult");
            }))
        }
        _ => Err(Fault::action_not_supported(&format!("{GP}/{}", op.name))),
    }
}
