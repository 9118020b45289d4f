//! Routing of API paths (after `…/api/v2.0` or `…/api/contoso/marketing/v1.0`) to the entity
//! logic, with BC's envelopes and status codes: 200 collections and entities, 201 + `Location`
//! for creates, 200 + entity for PATCH, 204 for DELETE and actions, 404
//! `BadRequest_ResourceNotFound` for unknown segments and keys, 405 for verbs a set does not
//! allow.

use axum::http::{HeaderMap, Method};
use serde_json::Value;

use crate::entities::{Record, consents, contacts, customers, find, items, sales_invoices};
use crate::errors::ApiError;
use crate::json::Out;
use crate::odata::etag::{self, IfMatch};
use crate::odata::filter::{Expr, Lit, Op};
use crate::odata::path::{Key, Segment};
use crate::odata::query::QueryOptions;
use crate::odata::{ExpandItem, ListRequest, Row, list, list_with, single};
use crate::schema::{CUSTOMER, EntityType, Route, SALES_INVOICE_LINE, SUBSCRIPTION};
use crate::state::Shared;
use crate::{metadata, subscriptions};

/// A parsed API request.
pub(crate) struct ApiRequest {
    /// The HTTP verb.
    pub method: Method,
    /// Standard or custom API.
    pub route: Route,
    /// Parsed path segments after the route.
    pub segments: Vec<Segment>,
    /// System query options.
    pub options: QueryOptions,
    /// Request headers (`If-Match`, `Prefer`).
    pub headers: HeaderMap,
    /// The JSON body; `Err` when one was sent but did not parse.
    pub body: Result<Option<Value>, ()>,
    /// `http://…/v2.0/[tenant/]env/api/v2.0` as the client addressed it.
    pub api_base: String,
    /// The app (client id) making the request.
    pub user: String,
}

/// What a successful request answers.
pub(crate) struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// JSON, XML or nothing.
    pub body: ReplyBody,
    /// Extra headers (`Location`, `Preference-Applied`).
    pub headers: Vec<(&'static str, String)>,
}

/// The response body kinds.
pub(crate) enum ReplyBody {
    /// An OData JSON payload.
    Json(Out),
    /// `$metadata`.
    Xml(String),
    /// `$count`.
    Text(String),
    /// 204.
    Empty,
}

impl Reply {
    fn json(status: u16, body: Out) -> Reply {
        Reply { status, body: ReplyBody::Json(body), headers: Vec::new() }
    }

    fn no_content() -> Reply {
        Reply { status: 204, body: ReplyBody::Empty, headers: Vec::new() }
    }
}

impl ApiRequest {
    fn body(&self) -> Result<&Value, ApiError> {
        match &self.body {
            Ok(Some(v)) if v.is_object() => Ok(v),
            _ => Err(ApiError::invalid_body()),
        }
    }

    fn if_match(&self) -> IfMatch {
        etag::if_match(&self.headers)
    }

    fn prefer(&self) -> Option<&str> {
        self.headers.get("prefer").and_then(|v| v.to_str().ok())
    }

    fn not_allowed(&self, set: &str) -> ApiError {
        ApiError::method_not_allowed(self.method.as_str(), set)
    }
}

/// Dispatches a request.
pub(crate) async fn dispatch(shared: &Shared, req: ApiRequest) -> Result<Reply, ApiError> {
    let Some(first) = req.segments.first().cloned() else { return service_document(&req) };
    match first.name.as_str() {
        "$metadata" if first.key.is_none() && req.segments.len() == 1 => {
            if req.method != Method::GET {
                return Err(req.not_allowed("$metadata"));
            }
            Ok(Reply { status: 200, body: ReplyBody::Xml(metadata::document(req.route)), headers: Vec::new() })
        }
        "companies" => companies(shared, &req),
        "subscriptions" => subscriptions_route(shared, &req).await,
        name if req.route.company_set(name).is_some() => {
            let company = req.options.company.clone().ok_or_else(company_required)?;
            let id = {
                let data = shared.lock();
                let index = data.company_index(&company).ok_or_else(company_required)?;
                data.companies[index].id.clone()
            };
            let scope = Scope {
                company: id.clone(),
                link: req.api_base.clone(),
                context: format!("{}/$metadata#companies({id})", req.api_base),
                keep: vec![("company".into(), company)],
            };
            company_scoped(shared, &req, &scope, &req.segments)
        }
        name => Err(ApiError::segment_not_found(name)),
    }
}

fn company_required() -> ApiError {
    ApiError::new(400, "Unknown", "The supplied company name is not valid.")
}

fn service_document(req: &ApiRequest) -> Result<Reply, ApiError> {
    let mut body = Out::object();
    body.push("@odata.context", Value::from(format!("{}/$metadata", req.api_base)));
    let sets = req
        .route
        .types()
        .iter()
        .map(|t| {
            let mut o = Out::object();
            o.push("name", Value::from(t.set));
            o.push("kind", Value::from("EntitySet"));
            o.push("url", Value::from(t.set));
            o
        })
        .collect();
    body.push("value", Out::A(sets));
    Ok(Reply::json(200, body))
}

/// `companies`, `companies(<id>)`, `companies(name='…')`, and everything below a company.
fn companies(shared: &Shared, req: &ApiRequest) -> Result<Reply, ApiError> {
    let segments = &req.segments;
    let key = segments[0].key.clone();
    let Some(key) = key else {
        if segments.len() > 1 {
            return Err(ApiError::segment_not_found(&segments[1].name));
        }
        if req.method != Method::GET {
            return Err(req.not_allowed("companies"));
        }
        let data = shared.lock();
        let rows: Vec<Row> = data.companies.iter().map(crate::entities::companies::row).collect();
        let page = list(
            ListRequest {
                ty: &crate::schema::COMPANY,
                options: &req.options,
                prefer: req.prefer(),
                max_page_size: shared.config.max_page_size,
                context: format!("{}/$metadata#companies", req.api_base),
                link_base: format!("{}/companies", req.api_base),
                keep: Vec::new(),
            },
            rows,
            &mut no_expand,
        )?;
        return Ok(page_reply(page));
    };
    let id = {
        let data = shared.lock();
        let index = match &key {
            Key::Guid(g) => data.companies.iter().position(|c| c.id == *g),
            Key::Named(pairs) => match pairs.as_slice() {
                [(name, value)] if name == "name" => match value.as_ref() {
                    Key::Str(n) => data.companies.iter().position(|c| c.name == *n),
                    _ => None,
                },
                [(name, value)] if name == "id" => match value.as_ref() {
                    Key::Guid(g) => data.companies.iter().position(|c| c.id == *g),
                    _ => None,
                },
                _ => None,
            },
            _ => return Err(ApiError::query("Bad Request - Error in query syntax.")),
        };
        data.companies[index.ok_or_else(|| ApiError::segment_not_found("companies"))?].id.clone()
    };
    if segments.len() == 1 {
        if req.method != Method::GET {
            return Err(req.not_allowed("companies"));
        }
        let data = shared.lock();
        let index = data.company_index(&id).ok_or_else(|| ApiError::segment_not_found("companies"))?;
        let row = crate::entities::companies::row(&data.companies[index]);
        let body = single(
            &crate::schema::COMPANY,
            &row,
            &req.options,
            &format!("{}/$metadata#companies", req.api_base),
            &mut no_expand,
        )?;
        return Ok(Reply::json(200, body));
    }
    let scope = Scope {
        company: id.clone(),
        link: format!("{}/companies({id})", req.api_base),
        context: format!("{}/$metadata#companies({id})", req.api_base),
        keep: Vec::new(),
    };
    company_scoped(shared, req, &scope, &segments[1..])
}

fn no_expand(_: &Row, _: &ExpandItem) -> Result<Vec<Row>, ApiError> {
    Ok(Vec::new())
}

fn page_reply(page: crate::odata::Page) -> Reply {
    let mut reply = Reply::json(200, page.body);
    if let Some(n) = page.applied {
        reply.headers.push(("preference-applied", format!("odata.maxpagesize={n}")));
    }
    reply
}

/// Where company-scoped URLs live.
struct Scope {
    /// The company's id.
    company: String,
    /// Prefix of entity URLs (`…/companies(<id>)`, or the API base with `?company=`).
    link: String,
    /// `…/$metadata#companies(<id>)`.
    context: String,
    /// Query parameters links repeat.
    keep: Vec<(String, String)>,
}

/// A GUID key or the error BC gives for anything else.
fn guid_key(segment: &Segment) -> Result<String, ApiError> {
    match &segment.key {
        Some(Key::Guid(g)) => Ok(g.clone()),
        Some(Key::Named(pairs)) if pairs.len() == 1 && pairs[0].0 == "id" => match pairs[0].1.as_ref() {
            Key::Guid(g) => Ok(g.clone()),
            _ => Err(ApiError::query("Bad Request - Error in query syntax.")),
        },
        _ => Err(ApiError::query("Bad Request - Error in query syntax.")),
    }
}

/// The rows of a company-scoped set.
fn rows_of(co: &crate::entities::Company, ty: &'static EntityType) -> Vec<Row> {
    match ty.set {
        "customers" => co.customers.values().map(|r| r.row(ty)).collect(),
        "items" => co.items.values().map(|r| r.row(ty)).collect(),
        "contacts" => co.contacts.values().map(|r| r.row(ty)).collect(),
        "salesInvoices" => co.invoices.values().map(|r| r.row(ty)).collect(),
        "salesInvoiceLines" => co.lines.values().map(|r| r.row(ty)).collect(),
        "customerConsents" => co.customers.values().map(consents::row).collect(),
        _ => Vec::new(),
    }
}

/// The rows of a company-scoped set for a listing, each with only the properties the query's
/// `$filter` and `$orderby` name, the default order and the key (named in the text: a
/// superset), and no ETag: `list_with` completes the rows of the page.
fn listing_rows(co: &crate::entities::Company, ty: &'static EntityType, options: &QueryOptions) -> Vec<Row> {
    if ty.set == "customerConsents" {
        return rows_of(co, ty);
    }
    let text = format!("{} {}", options.filter.as_deref().unwrap_or(""), options.orderby.as_deref().unwrap_or(""));
    let keep = |name: &str| name == ty.key || name == "id" || ty.order.contains(&name) || text.contains(name);
    table_of(co, ty).values().map(|r| Row { view: r.view_of(ty, keep), etag: None }).collect()
}

fn table_of<'a>(co: &'a crate::entities::Company, ty: &EntityType) -> &'a crate::entities::Table {
    match ty.set {
        "items" => &co.items,
        "contacts" => &co.contacts,
        "salesInvoices" => &co.invoices,
        "salesInvoiceLines" => &co.lines,
        _ => &co.customers,
    }
}

/// One row of a set by id.
fn row_of(co: &crate::entities::Company, ty: &'static EntityType, id: &str) -> Result<Row, ApiError> {
    let record: &Record = find(table_of(co, ty), id, ty.set)?;
    Ok(if ty.set == "customerConsents" { consents::row(record) } else { record.row(ty) })
}

/// `$expand` targets: lines and the customer of an invoice.
fn expander(co: &crate::entities::Company) -> impl FnMut(&Row, &ExpandItem) -> Result<Vec<Row>, ApiError> + '_ {
    move |row, item| {
        let id = row.view.get("id").and_then(Value::as_str).unwrap_or("");
        Ok(match item.nav.name {
            "salesInvoiceLines" => {
                sales_invoices::lines_of(co, id).into_iter().map(|l| l.row(&SALES_INVOICE_LINE)).collect()
            }
            "customer" => {
                let customer = row.view.get("customerId").and_then(Value::as_str).unwrap_or("");
                co.customers.get(customer).map(|c| vec![c.row(&CUSTOMER)]).unwrap_or_default()
            }
            _ => Vec::new(),
        })
    }
}

/// Whether a lines filter names a document or a line, as page 30043 insists.
fn names_document(expr: &Expr) -> bool {
    match expr {
        Expr::Cmp(p, Op::Eq, Lit::Guid(_)) => p.name == "documentId" || p.name == "id",
        Expr::And(a, b) => names_document(a) || names_document(b),
        _ => false,
    }
}

/// Everything under a company.
fn company_scoped(shared: &Shared, req: &ApiRequest, scope: &Scope, segments: &[Segment]) -> Result<Reply, ApiError> {
    let first = &segments[0];
    let ty = req.route.company_set(&first.name).ok_or_else(|| ApiError::segment_not_found(&first.name))?;
    match (segments.len(), &first.key) {
        (1, None) => collection(shared, req, scope, ty, None),
        (2, None) if segments[1].name == "$count" && segments[1].key.is_none() => count(shared, req, scope, ty),
        (1, Some(_)) => entity(shared, req, scope, ty, &guid_key(first)?),
        (2, Some(_)) if ty.set == "salesInvoices" => {
            let document = guid_key(first)?;
            let second = &segments[1];
            match (second.name.as_str(), &second.key) {
                ("salesInvoiceLines", None) => {
                    {
                        let data = shared.lock();
                        let index = data
                            .company_index(&scope.company)
                            .ok_or_else(|| ApiError::segment_not_found("companies"))?;
                        find(&data.companies[index].invoices, &document, "salesInvoices")?;
                    }
                    collection(shared, req, scope, &SALES_INVOICE_LINE, Some(&document))
                }
                ("salesInvoiceLines", Some(_)) => {
                    let line = guid_key(second)?;
                    {
                        let data = shared.lock();
                        let index = data
                            .company_index(&scope.company)
                            .ok_or_else(|| ApiError::segment_not_found("companies"))?;
                        let co = &data.companies[index];
                        find(&co.invoices, &document, "salesInvoices")?;
                        if find(&co.lines, &line, "salesInvoiceLines")?.str("documentId") != document {
                            return Err(ApiError::segment_not_found("salesInvoiceLines"));
                        }
                    }
                    entity(shared, req, scope, &SALES_INVOICE_LINE, &line)
                }
                ("Microsoft.NAV.post", None) => {
                    if req.method != Method::POST {
                        return Err(req.not_allowed("Microsoft.NAV.post"));
                    }
                    shared.write(&scope.company, |co, tx| sales_invoices::post(co, tx, &document))?;
                    Ok(Reply::no_content())
                }
                (name, _) => Err(ApiError::segment_not_found(name)),
            }
        }
        _ => Err(ApiError::segment_not_found(&segments[segments.len() - 1].name)),
    }
}

/// `GET <set>/$count`: the number of rows matching `$filter`, as plain text.
fn count(shared: &Shared, req: &ApiRequest, scope: &Scope, ty: &'static EntityType) -> Result<Reply, ApiError> {
    if req.method != Method::GET {
        return Err(req.not_allowed("$count"));
    }
    if ty.set == "salesInvoiceLines" {
        return Err(ApiError::dialog("You must specify an Id or a Document Id to get the lines."));
    }
    let filter = req.options.filter.as_deref().map(|f| crate::odata::filter::parse(f, ty)).transpose()?;
    let data = shared.lock();
    let index = data.company_index(&scope.company).ok_or_else(|| ApiError::segment_not_found("companies"))?;
    let n = rows_of(&data.companies[index], ty)
        .iter()
        .filter(|r| filter.as_ref().is_none_or(|f| crate::odata::filter::eval(f, &r.view)))
        .count();
    Ok(Reply { status: 200, body: ReplyBody::Text(n.to_string()), headers: Vec::new() })
}

/// GET or POST on a collection (`document`: the parent invoice of nested lines).
fn collection(
    shared: &Shared,
    req: &ApiRequest,
    scope: &Scope,
    ty: &'static EntityType,
    document: Option<&str>,
) -> Result<Reply, ApiError> {
    let path = match document {
        Some(d) => format!("salesInvoices({d})/{}", ty.set),
        None => ty.set.to_string(),
    };
    match req.method {
        Method::GET => {
            if ty.set == "salesInvoiceLines" && document.is_none() {
                let parsed = req.options.filter.as_deref().map(|f| crate::odata::filter::parse(f, ty)).transpose()?;
                if !parsed.as_ref().is_some_and(names_document) {
                    return Err(ApiError::dialog("You must specify an Id or a Document Id to get the lines."));
                }
            }
            let data = shared.lock();
            let index = data.company_index(&scope.company).ok_or_else(|| ApiError::segment_not_found("companies"))?;
            let co = &data.companies[index];
            let rows: Vec<Row> = match document {
                Some(d) => sales_invoices::lines_of(co, d).into_iter().map(|l| l.row(ty)).collect(),
                None => listing_rows(co, ty, &req.options),
            };
            let mut complete = |row: Row| match row.etag {
                Some(_) => Ok(row),
                None => row_of(co, ty, row.view.get("id").and_then(Value::as_str).unwrap_or("")),
            };
            let page = list_with(
                ListRequest {
                    ty,
                    options: &req.options,
                    prefer: req.prefer(),
                    max_page_size: shared.config.max_page_size,
                    context: format!("{}/{path}", scope.context),
                    link_base: format!("{}/{path}", scope.link),
                    keep: scope.keep.clone(),
                },
                rows,
                &mut complete,
                &mut expander(co),
            )?;
            Ok(page_reply(page))
        }
        Method::POST => {
            if !ty.insertable {
                return Err(req.not_allowed(ty.set));
            }
            let body = req.body()?.clone();
            let row = shared.write(&scope.company, |co, tx| {
                let id = match ty.set {
                    "customers" => customers::create(co, tx, &body)?,
                    "items" => items::create(co, tx, &body)?,
                    "contacts" => contacts::create(co, tx, &body)?,
                    "salesInvoices" => sales_invoices::create(co, tx, &body, Vec::new())?,
                    "salesInvoiceLines" => sales_invoices::create_line(co, tx, document, &body)?,
                    _ => return Err(ApiError::method_not_allowed("POST", ty.set)),
                };
                row_of(co, ty, &id)
            })?;
            let id = row.view.get("id").and_then(Value::as_str).unwrap_or("").to_string();
            let body =
                single(ty, &row, &QueryOptions::default(), &format!("{}/{}", scope.context, ty.set), &mut no_expand)?;
            let mut reply = Reply::json(201, body);
            let location = match document {
                Some(_) => format!("{}/{path}({id})", scope.link),
                None => format!("{}/{}({id})", scope.link, ty.set),
            };
            reply.headers.push(("location", location));
            Ok(reply)
        }
        _ => Err(req.not_allowed(ty.set)),
    }
}

/// GET, PATCH or DELETE on one entity.
fn entity(
    shared: &Shared,
    req: &ApiRequest,
    scope: &Scope,
    ty: &'static EntityType,
    id: &str,
) -> Result<Reply, ApiError> {
    let context = format!("{}/{}", scope.context, ty.set);
    match req.method {
        Method::GET => {
            let data = shared.lock();
            let index = data.company_index(&scope.company).ok_or_else(|| ApiError::segment_not_found("companies"))?;
            let co = &data.companies[index];
            let row = row_of(co, ty, id)?;
            Ok(Reply::json(200, single(ty, &row, &req.options, &context, &mut expander(co))?))
        }
        Method::PATCH => {
            if !ty.updatable {
                return Err(req.not_allowed(ty.set));
            }
            let if_match = req.if_match();
            let body = req.body()?.clone();
            let row = shared.write(&scope.company, |co, tx| {
                let current = row_of(co, ty, id)?;
                etag::check(&if_match, current.etag.as_deref().unwrap_or(""))?;
                match ty.set {
                    "customers" => customers::update(co, tx, id, &body)?,
                    "items" => items::update(co, tx, id, &body)?,
                    "contacts" => contacts::update(co, tx, id, &body)?,
                    "salesInvoices" => sales_invoices::update(co, tx, id, &body)?,
                    "salesInvoiceLines" => sales_invoices::update_line(co, tx, id, &body)?,
                    "customerConsents" => consents::update(co, tx, id, &body)?,
                    _ => return Err(ApiError::method_not_allowed("PATCH", ty.set)),
                }
                row_of(co, ty, id)
            })?;
            Ok(Reply::json(200, single(ty, &row, &QueryOptions::default(), &context, &mut no_expand)?))
        }
        Method::DELETE => {
            if !ty.deletable {
                return Err(req.not_allowed(ty.set));
            }
            let if_match = req.if_match();
            shared.write(&scope.company, |co, tx| {
                let current = row_of(co, ty, id)?;
                etag::check_optional(&if_match, current.etag.as_deref().unwrap_or(""))?;
                match ty.set {
                    "customers" => customers::delete(co, tx, id),
                    "items" => items::delete(co, tx, id),
                    "contacts" => contacts::delete(co, tx, id),
                    "salesInvoices" => sales_invoices::delete(co, tx, id),
                    "salesInvoiceLines" => sales_invoices::delete_line(co, tx, id),
                    _ => Err(ApiError::method_not_allowed("DELETE", ty.set)),
                }
            })?;
            Ok(Reply::no_content())
        }
        _ => Err(req.not_allowed(ty.set)),
    }
}

/// `subscriptions` and `subscriptions('<id>')` (environment-wide).
async fn subscriptions_route(shared: &Shared, req: &ApiRequest) -> Result<Reply, ApiError> {
    if req.segments.len() > 1 {
        return Err(ApiError::segment_not_found(&req.segments[1].name));
    }
    let context = format!("{}/$metadata#subscriptions", req.api_base);
    let Some(key) = &req.segments[0].key else {
        return match req.method {
            Method::GET => {
                let page = list(
                    ListRequest {
                        ty: &SUBSCRIPTION,
                        options: &req.options,
                        prefer: req.prefer(),
                        max_page_size: shared.config.max_page_size,
                        context,
                        link_base: format!("{}/subscriptions", req.api_base),
                        keep: Vec::new(),
                    },
                    subscriptions::rows(shared),
                    &mut no_expand,
                )?;
                Ok(page_reply(page))
            }
            Method::POST => {
                let row = subscriptions::create(shared, req.route, &req.user, req.body()?).await?;
                let id = row.view.get("subscriptionId").and_then(Value::as_str).unwrap_or("").to_string();
                let mut reply =
                    Reply::json(201, single(&SUBSCRIPTION, &row, &QueryOptions::default(), &context, &mut no_expand)?);
                reply.headers.push(("location", format!("{}/subscriptions('{id}')", req.api_base)));
                Ok(reply)
            }
            _ => Err(req.not_allowed("subscriptions")),
        };
    };
    let Key::Str(id) = key else { return Err(ApiError::query("Bad Request - Error in query syntax.")) };
    match req.method {
        Method::GET => {
            let row = subscriptions::get(shared, id)?;
            Ok(Reply::json(200, single(&SUBSCRIPTION, &row, &req.options, &context, &mut no_expand)?))
        }
        Method::PATCH => {
            let row = subscriptions::update(shared, req.route, id, &req.if_match(), req.body()?).await?;
            Ok(Reply::json(200, single(&SUBSCRIPTION, &row, &QueryOptions::default(), &context, &mut no_expand)?))
        }
        Method::DELETE => {
            subscriptions::delete(shared, id, &req.if_match())?;
            Ok(Reply::no_content())
        }
        _ => Err(req.not_allowed("subscriptions")),
    }
}
