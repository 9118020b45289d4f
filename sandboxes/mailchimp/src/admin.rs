//! The admin side: what people and the platform do in Mailchimp (unsubscribe, bounce,
//! re-subscribe, edit, change address, forget), inspection of state, the request log, counters,
//! faults and webhook deliveries — in process through [`Admin`], and over HTTP under
//! `/_sandbox` (no auth, not logged, not limited) for tests in other processes.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::ecommerce::{customers, orders, products};
use crate::errors::ApiError;
use crate::faults::Faults;
use crate::lists::List;
use crate::log::{Counters, LoggedRequest};
use crate::members;
use crate::state::{Data, Shared};
use crate::util::short_id;
use crate::webhooks::{Delivery, Outgoing, Source};

/// A cheap handle to the sandbox's admin operations.
#[derive(Clone)]
pub struct Admin {
    /// The sandbox this handle drives.
    shared: Arc<Shared>,
}

impl Admin {
    pub(crate) fn new(shared: Arc<Shared>) -> Admin {
        Admin { shared }
    }

    /// Creates an audience (with the default merge fields); returns its 10-hex-digit id.
    pub fn create_list(&self, name: &str) -> String {
        let mut data = self.shared.lock();
        let seq = data.next_seq();
        let id = short_id("list", seq);
        data.lists.insert(id.clone(), List::new(id.clone(), name, seq));
        id
    }

    /// Creates an audience with a chosen id (replacing one with the same id).
    pub fn create_list_with_id(&self, id: &str, name: &str) -> String {
        let mut data = self.shared.lock();
        let seq = data.next_seq();
        data.lists.insert(id.to_string(), List::new(id.to_string(), name, seq));
        id.to_string()
    }

    /// The member as `GET /lists/{id}/members/{hash}` returns it (archived ones included).
    pub fn member(&self, list_id: &str, email: &str) -> Option<Value> {
        let data = self.shared.lock();
        let list = data.lists.get(list_id)?;
        list.members.get(&members::resolve(list, email)).map(|m| m.render(list))
    }

    /// Every member of the list, archived ones included, in creation order.
    pub fn members(&self, list_id: &str) -> Vec<Value> {
        let data = self.shared.lock();
        let Some(list) = data.lists.get(list_id) else { return Vec::new() };
        let mut all: Vec<&members::Member> = list.members.values().collect();
        all.sort_by_key(|m| m.seq);
        all.into_iter().map(|m| m.render(list)).collect()
    }

    fn person(
        &self,
        list_id: &str,
        f: impl FnOnce(&mut List, &mut u64, &mut Vec<Outgoing>) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        self.shared.write(|data, out| {
            let Data { lists, seq, .. } = data;
            f(lists.get_mut(list_id).ok_or_else(ApiError::not_found)?, seq, out)
        })
    }

    /// The person unsubscribes themselves: compliance state, `unsubscribe` webhook (action
    /// `unsub`, reason `manual`, source `user`). Unknown members are ignored.
    pub fn unsubscribe(&self, list_id: &str, email: &str) {
        let _ = self.try_unsubscribe(list_id, email);
    }

    fn try_unsubscribe(&self, list_id: &str, email: &str) -> Result<(), ApiError> {
        self.person(list_id, |list, _, out| members::person_unsubscribe(list, email, out))
    }

    /// The address hard-bounces: `cleaned`, `cleaned` webhook (reason `hard`).
    pub fn bounce(&self, list_id: &str, email: &str) {
        let _ = self.try_bounce(list_id, email);
    }

    fn try_bounce(&self, list_id: &str, email: &str) -> Result<(), ApiError> {
        self.person(list_id, |list, _, out| members::bounce(list, email, out))
    }

    /// The person subscribes again through the signup form: subscribed, holds lifted,
    /// `subscribe` webhook. Creates the member if needed.
    pub fn resubscribe(&self, list_id: &str, email: &str) {
        let _ = self.try_resubscribe(list_id, email);
    }

    fn try_resubscribe(&self, list_id: &str, email: &str) -> Result<(), ApiError> {
        self.person(list_id, |list, seq, out| members::person_resubscribe(list, seq, email, out))
    }

    /// The person edits their profile (merge values): `profile` webhook.
    pub fn edit_profile(&self, list_id: &str, email: &str, merges: Value) {
        let _ = self.try_edit_profile(list_id, email, &merges);
    }

    fn try_edit_profile(&self, list_id: &str, email: &str, merges: &Value) -> Result<(), ApiError> {
        self.person(list_id, |list, seq, out| members::person_edit_profile(list, seq, email, merges, out))
    }

    /// The person changes their address: `upemail` then `profile` webhooks.
    pub fn change_email(&self, list_id: &str, old: &str, new: &str) {
        let _ = self.try_change_email(list_id, old, new);
    }

    fn try_change_email(&self, list_id: &str, old: &str, new: &str) -> Result<(), ApiError> {
        self.person(list_id, |list, seq, out| members::person_change_email(list, seq, old, new, out))
    }

    /// Permanent deletion (GDPR): the address may only come back as `pending` afterwards.
    pub fn forget(&self, list_id: &str, email: &str) {
        let _ = self.try_forget(list_id, email);
    }

    fn try_forget(&self, list_id: &str, email: &str) -> Result<(), ApiError> {
        self.person(list_id, |list, _, out| members::forget(list, email, Source::Admin, out))
    }

    /// The store as GET returns it.
    pub fn store(&self, store_id: &str) -> Option<Value> {
        self.shared.lock().stores.get(store_id).map(|s| s.render())
    }

    /// The store's orders, in creation order.
    pub fn orders(&self, store_id: &str) -> Vec<Value> {
        self.sorted(store_id, |store| {
            store.orders.iter().map(|(id, o)| (o.record.seq, orders::render(store, id, o))).collect()
        })
    }

    /// The store's products, in creation order.
    pub fn products(&self, store_id: &str) -> Vec<Value> {
        self.sorted(store_id, |store| {
            store.products.iter().map(|(id, p)| (p.record.seq, products::render(store, id, p))).collect()
        })
    }

    /// The store's customers, in creation order.
    pub fn customers(&self, store_id: &str) -> Vec<Value> {
        self.sorted(store_id, |store| {
            store.customers.iter().map(|(id, c)| (c.seq, customers::render(store, id, c))).collect()
        })
    }

    fn sorted(&self, store_id: &str, f: impl FnOnce(&crate::ecommerce::Store) -> Vec<(u64, Value)>) -> Vec<Value> {
        let data = self.shared.lock();
        let Some(store) = data.stores.get(store_id) else { return Vec::new() };
        let mut items = f(store);
        items.sort_by_key(|(seq, _)| *seq);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// Every `/3.0` request received, in order of arrival.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.recorder.entries()
    }

    /// Empties the request log (counters keep counting).
    pub fn clear_requests(&self) {
        self.shared.recorder.clear();
    }

    /// Request totals, statuses, 429s, peak concurrency.
    pub fn counters(&self) -> Counters {
        self.shared.recorder.counters()
    }

    /// Replaces the injected faults (and reseeds their generator).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults.set(faults);
    }

    /// Every webhook delivery attempt so far.
    pub fn webhook_deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The `/_sandbox` routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sandbox/lists", post(http_create_list))
        .route("/_sandbox/lists/{list_id}/members", get(http_members))
        .route("/_sandbox/lists/{list_id}/members/{email}/{action}", post(http_person))
        .route("/_sandbox/requests", get(http_requests).delete(http_clear_requests))
        .route("/_sandbox/counters", get(http_counters))
        .route("/_sandbox/faults", put(http_faults))
        .route("/_sandbox/deliveries", get(http_deliveries))
        .route("/_sandbox/batch-results/{file}", get(http_batch_results))
}

/// An optional JSON body (none is `{}`).
fn json_body(body: &Bytes) -> Result<Value, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": message}))).into_response()
}

fn outcome(shared: &Shared, result: Result<(), ApiError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => crate::server::problem(shared, &shared.request_id(), &error),
    }
}

async fn http_create_list(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(e) => return bad_request(format!("invalid JSON: {e}")),
    };
    let admin = Admin::new(shared);
    let name = body.get("name").and_then(Value::as_str).unwrap_or("Sandbox audience");
    let id = match body.get("id").and_then(Value::as_str) {
        Some(id) => admin.create_list_with_id(id, name),
        None => admin.create_list(name),
    };
    axum::Json(json!({"id": id})).into_response()
}

async fn http_members(State(shared): State<Arc<Shared>>, Path(list_id): Path<String>) -> Response {
    if !shared.lock().lists.contains_key(&list_id) {
        return outcome(&shared, Err(ApiError::not_found()));
    }
    axum::Json(Admin::new(shared).members(&list_id)).into_response()
}

async fn http_person(
    State(shared): State<Arc<Shared>>,
    Path((list_id, email, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(e) => return bad_request(format!("invalid JSON: {e}")),
    };
    let admin = Admin::new(shared.clone());
    let result = match action.as_str() {
        "unsubscribe" => admin.try_unsubscribe(&list_id, &email),
        "bounce" => admin.try_bounce(&list_id, &email),
        "resubscribe" => admin.try_resubscribe(&list_id, &email),
        "forget" => admin.try_forget(&list_id, &email),
        "profile" => {
            let merges = body.get("merges").cloned().unwrap_or(body);
            admin.try_edit_profile(&list_id, &email, &merges)
        }
        "email" => match body.get("new_email").and_then(Value::as_str) {
            Some(new) => admin.try_change_email(&list_id, &email, new),
            None => Err(ApiError::required(&["new_email".to_string()])),
        },
        _ => Err(ApiError::not_found()),
    };
    outcome(&shared, result)
}

async fn http_requests(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.recorder.entries()).into_response()
}

async fn http_clear_requests(State(shared): State<Arc<Shared>>) -> Response {
    shared.recorder.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn http_counters(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.recorder.counters()).into_response()
}

async fn http_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => {
            shared.faults.set(faults);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(format!("invalid faults: {e}")),
    }
}

async fn http_deliveries(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(Admin::new(shared).webhook_deliveries()).into_response()
}

/// The results archive of a finished batch (`{id}.tar.gz`), like Mailchimp's pre-signed URL:
/// no authentication.
async fn http_batch_results(State(shared): State<Arc<Shared>>, Path(file): Path<String>) -> Response {
    let id = file.strip_suffix(".tar.gz").unwrap_or(&file);
    match crate::batches::archive(&shared.lock(), id) {
        Some(bytes) => ([(header::CONTENT_TYPE, "application/x-gzip")], bytes.as_ref().clone()).into_response(),
        None => crate::server::problem(&shared, &shared.request_id(), &ApiError::not_found()),
    }
}
