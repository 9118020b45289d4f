//! What a person would do in GP's windows (edit a customer, post, pay or void an invoice), plus
//! the sandbox's own controls (clock, faults, request log) — in process ([`Admin`]) and over
//! HTTP under `/_sandbox/` (no authentication, not logged, unaffected by faults).
//!
//! HTTP routes (JSON in and out; errors are `{"error": …}` with 400/404):
//! - `GET /_sandbox/companies`
//! - `GET /_sandbox/companies/{id}/customers`, `GET …/customers/{custnmbr}` (the input form)
//! - `PUT …/customers/{custnmbr}` (a whole [`CustomerInput`]), `PATCH …/customers/{custnmbr}`
//!   (JSON merge patch over the input form, e.g. `{"addresses": [...]}`), `DELETE …`
//! - `PUT …/customers/{custnmbr}/email` `{"email_to": "a@x;b@y", "address_id": "PRIMARY"}`
//! - `GET /_sandbox/companies/{id}/action-tracking` (`{"InternetAddress": ["Updated"]}`),
//!   `PUT …/action-tracking/{object}` `{"actions": ["Created", "Updated", "Deleted"]}` (`[]`
//!   turns tracking of the object off)
//! - `GET|POST /_sandbox/companies/{id}/invoices` ([`InvoiceInput`]),
//!   `POST …/invoices/{number}/pay` `{"amount": "10.00"}` (empty body: pay in full),
//!   `POST …/invoices/{number}/void`, `POST /_sandbox/companies/{id}/remove-paid-transactions`
//! - `POST /_sandbox/companies/{id}/seed-many` `{"n": 50000}`
//! - `GET /_sandbox/clock`, `POST /_sandbox/clock/advance` `{"seconds": 3600}`
//! - `GET|DELETE /_sandbox/requests`
//! - `GET|PUT /_sandbox/faults` ([`Faults`]); `PUT …?for_ms=N` with `offline: true` comes back
//!   online by itself after N ms (the HTTP admin goes down with the service).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hyper::Response;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::body::Body;
use crate::faults::Faults;
use crate::log::LoggedRequest;
use crate::model::{self, Company, CustomerInput, DataModificationAction, InternetAddresses, InvoiceInput, key};
use crate::state::Shared;

/// Why an admin action was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminError {
    /// 400 (invalid) or 404 (no such company/customer/document).
    pub status: u16,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AdminError {}

fn invalid(message: impl Into<String>) -> AdminError {
    AdminError { status: 400, message: message.into() }
}

fn missing(message: impl Into<String>) -> AdminError {
    AdminError { status: 404, message: message.into() }
}

/// The in-process admin handle (cheap to clone).
#[derive(Clone)]
pub struct Admin {
    /// The sandbox's state.
    shared: Arc<Shared>,
}

impl Admin {
    pub(crate) fn new(shared: Arc<Shared>) -> Admin {
        Admin { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn with_company<T>(
        &self,
        id: i32,
        f: impl FnOnce(&mut Company, Timestamp) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let now = self.shared.clock.now();
        let mut db = self.shared.db();
        let company = db.get_mut(&id).ok_or_else(|| missing(format!("company {id} does not exist")))?;
        f(company, now)
    }

    /// The sandbox's current time (UTC, SQL `datetime` precision): what `DEX_ROW_TS` gets.
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Moves the sandbox clock forward.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX));
    }

    /// Adds an empty company (`id` is the numeric `CompanyKey.Id`, `name` the SBA URL name).
    pub fn add_company(&self, id: i32, name: &str, interid: &str) -> Result<(), AdminError> {
        let mut db = self.shared.db();
        if db.contains_key(&id) || db.values().any(|c| c.name.eq_ignore_ascii_case(name)) {
            return Err(invalid(format!("company {id} / '{name}' already exists")));
        }
        db.insert(id, Company::new(id, name, interid));
        Ok(())
    }

    /// The companies: `{"id", "name", "interid", "customers", "invoices"}`.
    pub fn companies(&self) -> Vec<Value> {
        self.shared
            .db()
            .values()
            .map(|c| {
                json!({"id": c.id, "name": c.name, "interid": c.interid,
                       "customers": c.customers.len(), "invoices": c.invoices.len()})
            })
            .collect()
    }

    /// A company's customers as GP's tables hold them (`CUSTNMBR` (also as `id`), …,
    /// `DEX_ROW_TS`, `addresses[].internet`), in key order. Empty for an unknown company.
    pub fn customers(&self, company_id: i32) -> Vec<Value> {
        self.shared
            .db()
            .get(&company_id)
            .map(|c| c.customers.values().map(|c| c.to_json()).collect())
            .unwrap_or_default()
    }

    /// One customer in its input form (for read-modify-write).
    pub fn customer(&self, company_id: i32, id: &str) -> Option<CustomerInput> {
        self.shared.db().get(&company_id)?.customers.get(&key(id)).map(|c| c.to_input())
    }

    /// Creates or replaces a customer. Only the rows that differ get new timestamps: master
    /// fields and addresses bump the customer's `DEX_ROW_TS`; internet addresses (e-mail) bump
    /// only their own.
    pub fn upsert_customer(&self, company_id: i32, input: CustomerInput) -> Result<(), AdminError> {
        let input = model::validate_customer(input).map_err(invalid)?;
        self.with_company(company_id, |company, now| {
            company.put_customer(input, now);
            Ok(())
        })
    }

    /// Changes a customer through its input form: `admin.update_customer(-1, "AARONFIT0001",
    /// |c| c.addresses[0].city = "Chicago".into())`.
    pub fn update_customer(
        &self,
        company_id: i32,
        id: &str,
        change: impl FnOnce(&mut CustomerInput),
    ) -> Result<(), AdminError> {
        let mut input =
            self.customer(company_id, id).ok_or_else(|| missing(format!("customer '{id}' does not exist")))?;
        let original_id = input.id.clone();
        change(&mut input);
        if key(&input.id) != key(&original_id) {
            return Err(invalid("a customer's id (CUSTNMBR) cannot change"));
        }
        self.upsert_customer(company_id, input)
    }

    /// Sets `SY01200.EmailToAddress` of an address (the primary one when `address_id` is
    /// `None`), creating the internet-address row if needed. Does not change the customer's
    /// timestamp (see the crate docs).
    pub fn set_email(
        &self,
        company_id: i32,
        customer_id: &str,
        address_id: Option<&str>,
        email_to: &str,
    ) -> Result<(), AdminError> {
        let primary = self
            .shared
            .db()
            .get(&company_id)
            .and_then(|c| c.customers.get(&key(customer_id)))
            .and_then(|c| c.primary().map(|a| a.input.id.clone()));
        let target =
            address_id.map(str::to_string).or(primary).ok_or_else(|| invalid("the customer has no address"))?;
        let mut found = false;
        self.update_customer(company_id, customer_id, |c| {
            if let Some(a) = c.addresses.iter_mut().find(|a| a.id.eq_ignore_ascii_case(&target)) {
                a.internet.get_or_insert_with(InternetAddresses::default).email_to = email_to.to_string();
                found = true;
            }
        })?;
        if found { Ok(()) } else { Err(missing(format!("address '{target}' does not exist"))) }
    }

    /// Deletes a customer (and nothing else: GP refuses to delete customers with documents,
    /// and so does the sandbox).
    pub fn delete_customer(&self, company_id: i32, id: &str) -> Result<(), AdminError> {
        self.with_company(company_id, |company, now| {
            if company.invoices.values().any(|i| key(&i.customer_id) == key(id)) {
                return Err(invalid(format!("customer '{id}' has documents and cannot be deleted")));
            }
            company
                .remove_customer(id, now)
                .map(|_| ())
                .ok_or_else(|| missing(format!("customer '{id}' does not exist")))
        })
    }

    /// Sets which actions on a business object entity action tracking logs (`[]`: none), as an
    /// administrator does on a real install before GP's `GetChanged…KeyList` methods return
    /// anything (see the crate docs). Only `InternetAddress` is implemented: another of GP's
    /// trackable objects is refused, so a test cannot believe it is tracked.
    pub fn set_action_tracking(
        &self,
        company_id: i32,
        object: &str,
        actions: &[DataModificationAction],
    ) -> Result<(), AdminError> {
        let Some(object) = model::TRACKABLE_OBJECTS.iter().copied().find(|o| *o == object) else {
            return Err(invalid(format!(
                "'{object}' is not a business object GP tracks (one of: {})",
                model::TRACKABLE_OBJECTS.join(", ")
            )));
        };
        if object != "InternetAddress" {
            return Err(invalid(format!(
                "the sandbox implements action tracking for InternetAddress only, not {object}"
            )));
        }
        self.with_company(company_id, |company, _| {
            if actions.is_empty() {
                company.action_tracking.remove(object);
            } else {
                company.action_tracking.insert(object, actions.iter().copied().collect());
            }
            Ok(())
        })
    }

    /// The tracked actions per business object (`{"InternetAddress": ["Created", "Updated"]}`).
    pub fn action_tracking(&self, company_id: i32) -> Result<Value, AdminError> {
        self.with_company(company_id, |company, _| {
            Ok(company
                .action_tracking
                .iter()
                .map(|(object, actions)| (object.to_string(), json!(actions)))
                .collect::<serde_json::Map<_, _>>()
                .into())
        })
    }

    /// A company's invoices as GP's tables hold them (`DOCNUMBR`, `CURTRXAM`, `VOIDSTTS`, …).
    pub fn invoices(&self, company_id: i32) -> Vec<Value> {
        self.shared
            .db()
            .get(&company_id)
            .map(|c| c.invoices.values().map(|i| i.to_json()).collect())
            .unwrap_or_default()
    }

    /// Posts a sales invoice (SOP history + open receivables document).
    pub fn add_invoice(&self, company_id: i32, input: InvoiceInput) -> Result<(), AdminError> {
        self.with_company(company_id, |company, now| company.add_invoice(input, now).map(|_| ()).map_err(invalid))
    }

    /// Applies a payment of `amount` (e.g. `"10.00"`; `None`: the whole remaining amount).
    pub fn pay_invoice(&self, company_id: i32, number: &str, amount: Option<&str>) -> Result<(), AdminError> {
        let amount = amount.map(model::parse_money).transpose().map_err(invalid)?;
        self.with_company(company_id, |company, now| {
            if !company.invoices.contains_key(&key(number)) {
                return Err(missing(format!("document {number} does not exist")));
            }
            company.pay_invoice(number, amount, now).map(|_| ()).map_err(invalid)
        })
    }

    /// Voids an unpaid invoice (moves it to history with `VOIDSTTS` 1).
    pub fn void_invoice(&self, company_id: i32, number: &str) -> Result<(), AdminError> {
        self.with_company(company_id, |company, now| {
            if !company.invoices.contains_key(&key(number)) {
                return Err(missing(format!("document {number} does not exist")));
            }
            company.void_invoice(number, now).map(|_| ()).map_err(invalid)
        })
    }

    /// GP's "Paid Transactions Removal": paid open documents move to history. Returns how many.
    pub fn remove_paid_transactions(&self, company_id: i32) -> Result<usize, AdminError> {
        self.with_company(company_id, |company, now| Ok(company.remove_paid_transactions(now)))
    }

    /// The request log (SOAP and SBA requests, handshake legs included; admin requests not).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.all()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    /// The current faults.
    pub fn faults(&self) -> Faults {
        self.shared.faults.get()
    }

    /// Replaces the faults. Going offline closes the listening socket and drops open
    /// connections within milliseconds (a connection racing the switch is reset instead of
    /// refused); coming back re-binds the port before this returns.
    pub fn set_faults(&self, faults: Faults) {
        let was_offline = self.shared.faults.get().offline;
        let offline = faults.offline;
        self.shared.faults.set(faults);
        if offline {
            self.shared.slot().waiting = None;
            self.shared.offline.send_replace(true);
        } else if was_offline || *self.shared.offline.borrow() {
            {
                let mut slot = self.shared.slot();
                if !slot.listening && slot.waiting.is_none() {
                    match crate::server::bind(self.shared.addr) {
                        Ok(listener) => slot.waiting = Some(listener),
                        Err(error) => tracing::warn!(%error, "Re-binding after the outage failed; the server retries."),
                    }
                }
            }
            self.shared.offline.send_replace(false);
            self.shared.slot_notify.notify_one();
        }
    }
}

fn json_response(status: u16, value: Value) -> Response<Body> {
    let mut response = Response::new(Body::full(value.to_string()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

fn result(outcome: Result<Value, AdminError>) -> Response<Body> {
    match outcome {
        Ok(value) => json_response(200, value),
        Err(e) => json_response(e.status, json!({"error": e.message})),
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| invalid(format!("invalid JSON body: {e}")))
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().expect("object");
            for (k, v) in fields {
                if v.is_null() {
                    map.remove(k);
                } else {
                    merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Serves `/_sandbox/…`.
pub fn handle_http(shared: &Arc<Shared>, method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Response<Body> {
    let admin = Admin::new(shared.clone());
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .skip(1)
        .map(|s| crate::sba::percent_decode(s).unwrap_or_default())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let company = |text: &str| text.parse::<i32>().map_err(|_| invalid(format!("'{text}' is not a company id")));
    let ok = || Ok(json!({"ok": true}));
    result(match (method, segments.as_slice()) {
        ("GET", ["companies"]) => Ok(Value::Array(admin.companies())),
        ("GET", ["companies", c, "customers"]) => company(c).map(|c| Value::Array(admin.customers(c))),
        ("GET", ["companies", c, "customers", id]) => company(c).and_then(|c| {
            admin.customer(c, id).map(|i| json!(i)).ok_or_else(|| missing(format!("customer '{id}' does not exist")))
        }),
        ("PUT", ["companies", c, "customers", id]) => company(c).and_then(|c| {
            let mut input: CustomerInput = parse_body(body)?;
            if input.id.is_empty() {
                input.id = id.to_string();
            }
            if key(&input.id) != key(id) {
                return Err(invalid("the body's id differs from the URL's"));
            }
            admin.upsert_customer(c, input).and_then(|_| ok())
        }),
        ("PATCH", ["companies", c, "customers", id]) => company(c).and_then(|c| {
            let patch: Value = parse_body(body)?;
            let current = admin.customer(c, id).ok_or_else(|| missing(format!("customer '{id}' does not exist")))?;
            let mut value = json!(current);
            merge_patch(&mut value, &patch);
            let input: CustomerInput = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
            admin.update_customer(c, id, |c| *c = input).and_then(|_| ok())
        }),
        ("DELETE", ["companies", c, "customers", id]) => {
            company(c).and_then(|c| admin.delete_customer(c, id)).and_then(|_| ok())
        }
        ("PUT", ["companies", c, "customers", id, "email"]) => company(c).and_then(|c| {
            let v: Value = parse_body(body)?;
            let email = v["email_to"].as_str().ok_or_else(|| invalid("email_to is required"))?;
            admin.set_email(c, id, v["address_id"].as_str(), email).and_then(|_| ok())
        }),
        ("GET", ["companies", c, "action-tracking"]) => company(c).and_then(|c| admin.action_tracking(c)),
        ("PUT", ["companies", c, "action-tracking", object]) => company(c).and_then(|c| {
            let v: Value = parse_body(body)?;
            let actions: Vec<DataModificationAction> = serde_json::from_value(v["actions"].clone())
                .map_err(|e| invalid(format!("actions must list Created, Updated or Deleted: {e}")))?;
            admin.set_action_tracking(c, object, &actions).and_then(|_| ok())
        }),
        ("GET", ["companies", c, "invoices"]) => company(c).map(|c| Value::Array(admin.invoices(c))),
        ("POST", ["companies", c, "invoices"]) => {
            company(c).and_then(|c| admin.add_invoice(c, parse_body(body)?)).and_then(|_| ok())
        }
        ("POST", ["companies", c, "invoices", number, "pay"]) => company(c).and_then(|c| {
            let v: Value = if body.is_empty() { json!({}) } else { parse_body(body)? };
            admin.pay_invoice(c, number, v["amount"].as_str()).and_then(|_| ok())
        }),
        ("POST", ["companies", c, "invoices", number, "void"]) => {
            company(c).and_then(|c| admin.void_invoice(c, number)).and_then(|_| ok())
        }
        ("POST", ["companies", c, "remove-paid-transactions"]) => {
            company(c).and_then(|c| admin.remove_paid_transactions(c)).map(|n| json!({"moved": n}))
        }
        ("POST", ["companies", c, "seed-many"]) => company(c).and_then(|c| {
            let v: Value = parse_body(body)?;
            let n = v["n"].as_u64().ok_or_else(|| invalid("n is required"))?;
            crate::seed::seed_many_customers(&admin, c, n as usize);
            Ok(json!({"ok": true, "customers": admin.companies()}))
        }),
        ("GET", ["clock"]) => Ok(json!({"now": crate::clock::format_ts(admin.now()) + "Z"})),
        ("POST", ["clock", "advance"]) => parse_body::<Value>(body).and_then(|v| {
            let seconds = v["seconds"].as_u64().ok_or_else(|| invalid("seconds is required"))?;
            admin.advance_clock(Duration::from_secs(seconds));
            Ok(json!({"now": crate::clock::format_ts(admin.now()) + "Z"}))
        }),
        ("GET", ["requests"]) => Ok(json!(admin.requests())),
        ("DELETE", ["requests"]) => {
            admin.clear_requests();
            ok()
        }
        ("GET", ["faults"]) => Ok(json!(admin.faults())),
        ("PUT", ["faults"]) => parse_body::<Faults>(body).map(|faults| {
            let restore = query
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("for_ms=")))
                .and_then(|v| v.parse::<u64>().ok());
            let offline = faults.offline;
            admin.set_faults(faults.clone());
            if let (true, Some(ms)) = (offline, restore) {
                let later = admin.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    later.set_faults(Faults { offline: false, ..faults });
                });
            }
            json!({"ok": true})
        }),
        _ => Err(missing(format!("no admin route {method} {path}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_rfc7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
    }
}
