//! The admin side: what people and the platform do in BC (create and edit customers and items,
//! create and post invoices, change consent), the virtual clock, subscriptions, the request log,
//! webhook deliveries and faults — in process through [`Admin`], and over HTTP under
//! `/_sandbox/` (no auth, not logged, not throttled) for tests in other processes.
//!
//! Admin writes go through the same validation and webhook registration as API writes. When one
//! is invalid, the in-process methods return the BC error body (`{"error":{…}}`) instead of an
//! entity; the HTTP routes answer 400 with it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::entities::{Record, consents, customers, items, sales_invoices};
use crate::errors::ApiError;
use crate::faults::Faults;
use crate::log::LoggedRequest;
use crate::odata::{Row, shape_row};
use crate::schema::{CONTACT, CUSTOMER, CUSTOMER_CONSENT, EntityType, ITEM, SALES_INVOICE, SALES_INVOICE_LINE};
use crate::state::Shared;
use crate::subscriptions::Delivery;

/// A cheap handle to the sandbox's admin operations.
#[derive(Clone)]
pub struct Admin {
    /// The sandbox's state.
    shared: Arc<Shared>,
}

fn render(ty: &EntityType, row: &Row) -> Value {
    shape_row(ty, row, &None).to_value()
}

fn outcome(result: Result<Value, ApiError>) -> Value {
    result.unwrap_or_else(|e| e.body(&crate::util::guid()))
}

fn invoice_value(co: &crate::entities::Company, record: &Record) -> Value {
    let mut value = render(&SALES_INVOICE, &record.row(&SALES_INVOICE));
    let lines: Vec<Value> = sales_invoices::lines_of(co, &record.id)
        .into_iter()
        .map(|l| render(&SALES_INVOICE_LINE, &l.row(&SALES_INVOICE_LINE)))
        .collect();
    value["salesInvoiceLines"] = Value::Array(lines);
    value
}

impl Admin {
    pub(crate) fn new(shared: Arc<Shared>) -> Admin {
        Admin { shared }
    }

    fn read<T>(&self, company: &str, f: impl FnOnce(&crate::entities::Company) -> T) -> Option<T> {
        let data = self.shared.lock();
        let index = data.company_index(company)?;
        Some(f(&data.companies[index]))
    }

    /// The id of a company by name (or id).
    pub fn company_id(&self, name: &str) -> Option<String> {
        self.read(name, |co| co.id.clone())
    }

    /// Creates a customer (and its contact); returns it as served, with `@odata.etag`.
    pub fn create_customer(&self, company_id: &str, fields: Value) -> Value {
        outcome(self.shared.write(company_id, |co, tx| {
            let id = customers::create(co, tx, &fields)?;
            Ok(render(&CUSTOMER, &co.customers[&id].row(&CUSTOMER)))
        }))
    }

    /// Modifies a customer as a user would (no ETag check).
    pub fn update_customer(&self, company_id: &str, id: &str, fields: Value) -> Value {
        outcome(self.shared.write(company_id, |co, tx| {
            customers::update(co, tx, id, &fields)?;
            Ok(render(&CUSTOMER, &co.customers[id].row(&CUSTOMER)))
        }))
    }

    /// Creates an item.
    pub fn create_item(&self, company_id: &str, fields: Value) -> Value {
        outcome(self.shared.write(company_id, |co, tx| {
            let id = items::create(co, tx, &fields)?;
            Ok(render(&ITEM, &co.items[&id].row(&ITEM)))
        }))
    }

    /// Modifies an item.
    pub fn update_item(&self, company_id: &str, id: &str, fields: Value) -> Value {
        outcome(self.shared.write(company_id, |co, tx| {
            items::update(co, tx, id, &fields)?;
            Ok(render(&ITEM, &co.items[id].row(&ITEM)))
        }))
    }

    /// Creates a draft invoice (number from the draft series) with lines; returns it with its
    /// `salesInvoiceLines`.
    pub fn create_sales_invoice(&self, company_id: &str, fields: Value, lines: Vec<Value>) -> Value {
        outcome(self.shared.write(company_id, |co, tx| {
            let id = sales_invoices::create(co, tx, &fields, lines)?;
            Ok(invoice_value(co, &co.invoices[&id]))
        }))
    }

    /// Posts an invoice: status `Open`, a new number from the posted series, the same id.
    pub fn post_sales_invoice(&self, company_id: &str, id: &str) -> Value {
        outcome(self.shared.write(company_id, |co, tx| {
            sales_invoices::post(co, tx, id)?;
            Ok(invoice_value(co, &co.invoices[id]))
        }))
    }

    /// An invoice with its lines.
    pub fn sales_invoice(&self, company_id: &str, id: &str) -> Option<Value> {
        self.read(company_id, |co| co.invoices.get(id).map(|r| invoice_value(co, r))).flatten()
    }

    /// A customer as served.
    pub fn customer(&self, company_id: &str, id: &str) -> Option<Value> {
        self.read(company_id, |co| co.customers.get(id).map(|r| render(&CUSTOMER, &r.row(&CUSTOMER)))).flatten()
    }

    /// All customers, in number order.
    pub fn customers(&self, company_id: &str) -> Vec<Value> {
        self.list(company_id, |co| co.customers.values().map(|r| render(&CUSTOMER, &r.row(&CUSTOMER))).collect())
    }

    /// All items, in number order.
    pub fn items(&self, company_id: &str) -> Vec<Value> {
        self.list(company_id, |co| co.items.values().map(|r| render(&ITEM, &r.row(&ITEM))).collect())
    }

    /// All contacts, in number order.
    pub fn contacts(&self, company_id: &str) -> Vec<Value> {
        self.list(company_id, |co| co.contacts.values().map(|r| render(&CONTACT, &r.row(&CONTACT))).collect())
    }

    fn list(&self, company_id: &str, f: impl FnOnce(&crate::entities::Company) -> Vec<Value>) -> Vec<Value> {
        let mut values = self.read(company_id, f).unwrap_or_default();
        values.sort_by(|a, b| a["number"].as_str().cmp(&b["number"].as_str()));
        values
    }

    /// The custom API's consent record of a customer.
    pub fn consent(&self, company_id: &str, customer_id: &str) -> Option<Value> {
        self.read(company_id, |co| co.customers.get(customer_id).map(|r| render(&CUSTOMER_CONSENT, &consents::row(r))))
            .flatten()
    }

    /// Changes consent fields as a user in BC would.
    pub fn update_consent(&self, company_id: &str, customer_id: &str, fields: Value) -> Value {
        outcome(self.shared.write(company_id, |co, tx| {
            consents::update(co, tx, customer_id, &fields)?;
            Ok(render(&CUSTOMER_CONSENT, &consents::row(&co.customers[customer_id])))
        }))
    }

    /// The virtual clock.
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Moves virtual time forward (token and subscription expiry, retry schedules, stamps).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
        self.shared.wake.notify_one();
    }

    /// Freezes `lastModifiedDateTime` of everything modified from now on (None releases).
    pub fn set_timestamp_override(&self, ts: Option<Timestamp>) {
        self.shared.clock.set_override(ts);
    }

    /// Every subscription as `GET subscriptions` renders it.
    pub fn subscriptions(&self) -> Vec<Value> {
        crate::subscriptions::rows(&self.shared).iter().map(|r| render(&crate::schema::SUBSCRIPTION, r)).collect()
    }

    /// Deletes a subscription (as BC does after a non-retryable answer, or an admin would).
    pub fn delete_subscription(&self, id: &str) {
        crate::subscriptions::forget(&mut self.shared.lock(), id);
    }

    /// The API request log.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.recorder.entries()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.recorder.clear();
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults.set(faults);
    }

    /// Every handshake and notification attempt, in order.
    pub fn notifications(&self) -> Vec<Delivery> {
        self.shared.lock().hooks.deliveries.clone()
    }

    /// The most requests one user had processed at once since start.
    pub fn peak_concurrency(&self) -> usize {
        self.shared.throttle.peak()
    }
}

/// The `/_sandbox` routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sandbox/companies", get(companies))
        .route("/_sandbox/companies/{company}/customers", get(list_customers).post(create_customer))
        .route("/_sandbox/companies/{company}/customers/{id}", get(get_customer).patch(update_customer))
        .route("/_sandbox/companies/{company}/customers/{id}/consent", get(get_consent).patch(update_consent))
        .route("/_sandbox/companies/{company}/items", get(list_items).post(create_item))
        .route("/_sandbox/companies/{company}/items/{id}", axum::routing::patch(update_item))
        .route("/_sandbox/companies/{company}/salesInvoices", post(create_invoice))
        .route("/_sandbox/companies/{company}/salesInvoices/{id}", get(get_invoice))
        .route("/_sandbox/companies/{company}/salesInvoices/{id}/post", post(post_invoice))
        .route("/_sandbox/clock", get(clock))
        .route("/_sandbox/clock/advance", post(advance))
        .route("/_sandbox/clock/override", put(set_override))
        .route("/_sandbox/subscriptions", get(list_subscriptions))
        .route("/_sandbox/subscriptions/{id}", axum::routing::delete(delete_subscription))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/notifications", get(notifications))
        .route("/_sandbox/faults", put(set_faults))
        .route("/_sandbox/stats", get(stats))
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn entity_reply(value: Value) -> Response {
    let status = if value.get("error").is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    reply(status, value)
}

fn maybe(value: Option<Value>) -> Response {
    match value {
        Some(v) => reply(StatusCode::OK, v),
        None => reply(StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}

fn parse(body: &Bytes) -> Result<Value, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| Box::new(reply(StatusCode::BAD_REQUEST, json!({"error": format!("invalid JSON: {e}")}))))
}

fn admin(shared: &Arc<Shared>) -> Admin {
    Admin::new(shared.clone())
}

fn company(shared: &Arc<Shared>, key: &str) -> Result<String, Box<Response>> {
    admin(shared)
        .company_id(key)
        .ok_or_else(|| Box::new(reply(StatusCode::NOT_FOUND, json!({"error": format!("no company '{key}'")}))))
}

async fn companies(State(shared): State<Arc<Shared>>) -> Response {
    let data = shared.lock();
    let list: Vec<Value> = data.companies.iter().map(|c| json!({"id": c.id, "name": c.name})).collect();
    reply(StatusCode::OK, Value::Array(list))
}

async fn list_customers(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    match company(&shared, &key) {
        Ok(c) => reply(StatusCode::OK, Value::Array(admin(&shared).customers(&c))),
        Err(r) => *r,
    }
}

async fn create_customer(State(shared): State<Arc<Shared>>, Path(key): Path<String>, body: Bytes) -> Response {
    match (company(&shared, &key), parse(&body)) {
        (Ok(c), Ok(b)) => entity_reply(admin(&shared).create_customer(&c, b)),
        (Err(r), _) | (_, Err(r)) => *r,
    }
}

async fn get_customer(State(shared): State<Arc<Shared>>, Path((key, id)): Path<(String, String)>) -> Response {
    match company(&shared, &key) {
        Ok(c) => maybe(admin(&shared).customer(&c, &id)),
        Err(r) => *r,
    }
}

async fn update_customer(
    State(shared): State<Arc<Shared>>,
    Path((key, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match (company(&shared, &key), parse(&body)) {
        (Ok(c), Ok(b)) => entity_reply(admin(&shared).update_customer(&c, &id, b)),
        (Err(r), _) | (_, Err(r)) => *r,
    }
}

async fn get_consent(State(shared): State<Arc<Shared>>, Path((key, id)): Path<(String, String)>) -> Response {
    match company(&shared, &key) {
        Ok(c) => maybe(admin(&shared).consent(&c, &id)),
        Err(r) => *r,
    }
}

async fn update_consent(
    State(shared): State<Arc<Shared>>,
    Path((key, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match (company(&shared, &key), parse(&body)) {
        (Ok(c), Ok(b)) => entity_reply(admin(&shared).update_consent(&c, &id, b)),
        (Err(r), _) | (_, Err(r)) => *r,
    }
}

async fn list_items(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    match company(&shared, &key) {
        Ok(c) => reply(StatusCode::OK, Value::Array(admin(&shared).items(&c))),
        Err(r) => *r,
    }
}

async fn create_item(State(shared): State<Arc<Shared>>, Path(key): Path<String>, body: Bytes) -> Response {
    match (company(&shared, &key), parse(&body)) {
        (Ok(c), Ok(b)) => entity_reply(admin(&shared).create_item(&c, b)),
        (Err(r), _) | (_, Err(r)) => *r,
    }
}

async fn update_item(
    State(shared): State<Arc<Shared>>,
    Path((key, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match (company(&shared, &key), parse(&body)) {
        (Ok(c), Ok(b)) => entity_reply(admin(&shared).update_item(&c, &id, b)),
        (Err(r), _) | (_, Err(r)) => *r,
    }
}

/// Body: the header fields plus `"lines": [...]`.
async fn create_invoice(State(shared): State<Arc<Shared>>, Path(key): Path<String>, body: Bytes) -> Response {
    match (company(&shared, &key), parse(&body)) {
        (Ok(c), Ok(mut b)) => {
            let lines = b
                .as_object_mut()
                .and_then(|o| o.remove("lines"))
                .and_then(|l| l.as_array().cloned())
                .unwrap_or_default();
            entity_reply(admin(&shared).create_sales_invoice(&c, b, lines))
        }
        (Err(r), _) | (_, Err(r)) => *r,
    }
}

async fn get_invoice(State(shared): State<Arc<Shared>>, Path((key, id)): Path<(String, String)>) -> Response {
    match company(&shared, &key) {
        Ok(c) => maybe(admin(&shared).sales_invoice(&c, &id)),
        Err(r) => *r,
    }
}

async fn post_invoice(State(shared): State<Arc<Shared>>, Path((key, id)): Path<(String, String)>) -> Response {
    match company(&shared, &key) {
        Ok(c) => entity_reply(admin(&shared).post_sales_invoice(&c, &id)),
        Err(r) => *r,
    }
}

async fn clock(State(shared): State<Arc<Shared>>) -> Response {
    reply(StatusCode::OK, json!({"now": crate::clock::fmt_ms(shared.clock.now())}))
}

/// Body: `{"seconds": n}` and/or `{"milliseconds": n}`.
async fn advance(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(b) => {
            let ms = b["seconds"].as_f64().unwrap_or(0.0) * 1000.0 + b["milliseconds"].as_f64().unwrap_or(0.0);
            if ms < 0.0 {
                return reply(StatusCode::BAD_REQUEST, json!({"error": "the clock only moves forward"}));
            }
            admin(&shared).advance_clock(Duration::from_micros((ms * 1000.0) as u64));
            clock(State(shared)).await
        }
        Err(r) => *r,
    }
}

/// Body: `{"timestamp": "2024-01-01T00:00:00Z"}` or `{"timestamp": null}`.
async fn set_override(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(b) => match &b["timestamp"] {
            Value::Null => {
                admin(&shared).set_timestamp_override(None);
                reply(StatusCode::OK, json!({"timestamp": null}))
            }
            Value::String(s) => match s.parse::<Timestamp>() {
                Ok(ts) => {
                    admin(&shared).set_timestamp_override(Some(ts));
                    reply(StatusCode::OK, json!({"timestamp": crate::clock::fmt_ms(ts)}))
                }
                Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
            },
            _ => reply(StatusCode::BAD_REQUEST, json!({"error": "timestamp must be a string or null"})),
        },
        Err(r) => *r,
    }
}

async fn list_subscriptions(State(shared): State<Arc<Shared>>) -> Response {
    reply(StatusCode::OK, Value::Array(admin(&shared).subscriptions()))
}

async fn delete_subscription(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    admin(&shared).delete_subscription(&id);
    StatusCode::NO_CONTENT.into_response()
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    reply(StatusCode::OK, serde_json::to_value(admin(&shared).requests()).unwrap_or_default())
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> Response {
    admin(&shared).clear_requests();
    StatusCode::NO_CONTENT.into_response()
}

async fn notifications(State(shared): State<Arc<Shared>>) -> Response {
    reply(StatusCode::OK, serde_json::to_value(admin(&shared).notifications()).unwrap_or_default())
}

async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            admin(&shared).set_faults(f.clone());
            reply(StatusCode::OK, serde_json::to_value(f).unwrap_or_default())
        }
        Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": format!("invalid faults: {e}")})),
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    reply(StatusCode::OK, json!({"peak_concurrency": admin(&shared).peak_concurrency()}))
}
