//! Consent invariants, as a property: random interleavings of
//!
//! - ERP changes (a Business Central customer renamed or given a new phone number),
//! - syncs (the stock `customers-to-members` pipeline, BC → Mailchimp),
//! - what people do in Mailchimp (unsubscribe, bounce, re-subscribe through the form, change
//!   their address), and
//! - the return flow (Mailchimp's webhooks → the inbox → the stock `consent` and
//!   `email-changes` pipelines → Business Central),
//!
//! never leave anyone's Mailchimp status other than their own last choice (our writes only ever
//! set `status_if_new`, on an address Mailchimp does not have yet), never make an address of
//! someone who opted out `subscribed`, bring every own choice and address change to Business
//! Central, and never echo: a sync right after the return flow changes no member's status, writes
//! only the addresses that changed, and causes no webhook.
//!
//! In process, for speed: the engine as `run` drives it, the sandboxes over real HTTP, and a
//! webhook receiver that stores deliveries in the inbox exactly as `serve` does (same parsing,
//! same de-duplication key: see `src/service/intake_mailchimp.rs`). 24 cases in CI, 256 with
//! `MLC_LONG=1`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use connector_mailchimp::webhooks::{self, event_record, parse_form};
use connector_mailchimp::{MailchimpSettings, McClient};
use engine::config::SecretRef;
use engine::connector::{ConnectContext, Registry, SecretResolver};
use engine::executor::{Connections, RunOptions, run_project};
use engine::load::load_project;
use engine::template::subscriber_hash;
use proptest::prelude::*;
use sandbox_business_central::{Sandbox as Bc, SandboxConfig as BcConfig};
use sandbox_mailchimp::{DEFAULT_API_KEY, Sandbox as Mc};
use serde_json::json;

const PEOPLE: usize = 3;
const CONSENT_ENTITY: &str = "contoso/marketing/v1.0/customerConsents";

struct Secrets;

impl SecretResolver for Secrets {
    fn resolve(&self, reference: &SecretRef) -> Result<String, String> {
        match reference {
            SecretRef::Secret(name) if name == "mailchimp_api_key" => Ok(DEFAULT_API_KEY.to_owned()),
            SecretRef::Secret(name) if name == "bc_client_secret" => Ok(BcConfig::default().client_secret),
            other => Err(format!("no secret {other:?}")),
        }
    }
}

/// What one step does.
#[derive(Debug, Clone)]
enum Step {
    /// Business Central: the customer is renamed (a new merge field value to sync).
    Rename(usize, u8),
    /// Business Central: a new phone number.
    Phone(usize, u8),
    /// `customers-to-members`.
    Sync,
    Unsubscribe(usize),
    Bounce(usize),
    Resubscribe(usize),
    ChangeEmail(usize),
    /// Webhooks delivered → `consent` and `email-changes`, then a sync that must not echo.
    ReturnFlow,
}

fn step() -> impl Strategy<Value = Step> {
    let who = 0..PEOPLE;
    prop_oneof![
        2 => (who.clone(), any::<u8>()).prop_map(|(i, n)| Step::Rename(i, n)),
        1 => (who.clone(), any::<u8>()).prop_map(|(i, n)| Step::Phone(i, n)),
        4 => Just(Step::Sync),
        2 => who.clone().prop_map(Step::Unsubscribe),
        1 => who.clone().prop_map(Step::Bounce),
        2 => who.clone().prop_map(Step::Resubscribe),
        1 => who.prop_map(Step::ChangeEmail),
        3 => Just(Step::ReturnFlow),
    ]
}

/// One person, as the model knows them.
#[derive(Debug, Clone)]
struct Person {
    bc_id: String,
    /// The address Business Central has.
    bc_email: String,
    /// Their address in Mailchimp, once a sync created them.
    mc_email: Option<String>,
    /// Their Mailchimp status: what our first write set, then only their own actions.
    status: String,
    /// Addresses of theirs our writes created besides `mc_email`, with their status: an old
    /// address, written again because BC still had it when the customer was edited.
    ghosts: BTreeMap<String, String>,
    /// Every address they ever had in Mailchimp.
    addresses: BTreeSet<String>,
    /// The version of their BC record (each edit is a new one), and the version last written
    /// per address (the ledger, as the model sees it).
    version: u32,
    written: BTreeMap<String, u32>,
    /// Their last own choice, when they made one: `true` in, `false` out.
    choice: Option<bool>,
    /// The consent Business Central must show once the return flow ran: (marketing, bounced).
    consent: Option<(bool, bool)>,
    /// Consent events not yet through the return flow: the address they came from, and their
    /// type (`subscribe`, `unsubscribe`, `cleaned`).
    pending: Vec<(String, &'static str)>,
}

/// A webhook receiver that does what `serve`'s Mailchimp intake does: parse, key, store.
async fn receive(State(inbox): State<inbox::Inbox>, body: Bytes) -> axum::http::StatusCode {
    let Ok(record) = parse_form(&body).and_then(|f| event_record(&f)) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    let s = |k: &str| record.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let key =
        format!("{}|{}|{}|{}", s("type"), s("email").to_lowercase(), s("old_email").to_lowercase(), s("fired_at"));
    match inbox.put("mailchimp", &key, &record) {
        Ok(_) => axum::http::StatusCode::OK,
        Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
    }
}

struct World {
    mc: Mc,
    bc: Bc,
    company: String,
    list: String,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    project: engine::load::Project,
    registry: Registry,
    store: state::SqliteStore,
    people: Vec<Person>,
    /// Webhook deliveries the model expects so far (each action that changes something sends
    /// one; an address change two).
    events: usize,
    status_if_new: &'static str,
    /// Deliveries the return flow has seen, and the inbox's de-duplication keys so far.
    delivered: usize,
    seen: BTreeSet<String>,
    /// Consent events the inbox took for repeats (same second).
    collisions: usize,
}

impl World {
    async fn new(status_if_new: &'static str) -> World {
        let (mc, bc, list) = common::mailchimp_and_business_central(BcConfig::default().notification_delay).await;
        let company = bc.admin().company_id("CRONUS USA, Inc.").unwrap();
        let tmp = common::project_dir(&format!(
            "version: 1\nname: consent\nconnections:\n  events: {{connector: inbox}}\n  mailchimp:\n    connector: mailchimp\n    settings: {mc}\n  business_central:\n    connector: business-central\n    concurrency: 1\n    settings: {bc}\nvars: {{list_id: '{list}', status_if_new: {status_if_new}, consent_entity: {CONSENT_ENTITY}}}\n",
            mc = common::mailchimp_settings(&mc),
            bc = common::business_central_settings(&bc),
        ));
        let dir = tmp.path().to_path_buf();
        std::fs::write(
            dir.join("pipelines/customers-to-members.yaml"),
            common::stock_pipeline("business-central-to-mailchimp", "customers-to-members.yaml"),
        )
        .unwrap();
        for f in ["consent.yaml", "email-changes.yaml"] {
            std::fs::write(dir.join("pipelines").join(f), common::stock_pipeline("mailchimp-to-business-central", f))
                .unwrap();
        }
        let mut registry = Registry::new();
        registry.register(Arc::new(connector_mailchimp::MailchimpConnector));
        registry.register(Arc::new(connector_business_central::BusinessCentralConnector));
        registry.register(Arc::new(inbox::InboxConnector));
        let project = load_project(&dir.join("ml-connector.yaml"), &registry).unwrap();
        let store = state::SqliteStore::open(&project.state_path()).unwrap();

        // The webhook receiver and Mailchimp's webhook (people and admins, not the API).
        let inbox = inbox::Inbox::open(&dir.join(inbox::DEFAULT_PATH)).unwrap();
        let app = Router::new().route("/hook", post(receive).get(|| async { "" })).with_state(inbox);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let settings: MailchimpSettings = serde_json::from_value(
            json!({"auth": {"type": "api_key", "key": {"secret": "mailchimp_api_key"}}, "base_url": mc.base_url()}),
        )
        .unwrap();
        let client = McClient::connect(&settings, &Secrets).await.unwrap();
        webhooks::register(&client, &list, &hook, &["subscribe", "unsubscribe", "profile", "cleaned", "upemail"])
            .await
            .unwrap();

        let mut people = Vec::new();
        for i in 0..PEOPLE {
            let email = format!("person{i}@example.com");
            let c = bc.admin().create_customer(
                &company,
                json!({"type": "Person", "displayName": format!("Person {i} Example"), "email": email}),
            );
            assert!(c.get("error").is_none(), "{c}");
            people.push(Person {
                bc_id: c["id"].as_str().unwrap().to_owned(),
                bc_email: email,
                mc_email: None,
                status: String::new(),
                ghosts: BTreeMap::new(),
                addresses: BTreeSet::new(),
                version: 0,
                written: BTreeMap::new(),
                choice: None,
                consent: None,
                pending: Vec::new(),
            });
        }
        World {
            mc,
            bc,
            company,
            list,
            dir,
            _tmp: tmp,
            project,
            registry,
            store,
            people,
            events: 0,
            status_if_new,
            delivered: 0,
            seen: BTreeSet::new(),
            collisions: 0,
        }
    }

    /// Runs pipelines as `ml-connector run` would; every record must be accounted for (written,
    /// unchanged, filtered or in dead letters). Returns the records that failed, as
    /// `pipeline key: error`.
    async fn run(&self, pipelines: &[&str]) -> Vec<String> {
        let context = ConnectContext { project_dir: self.dir.clone(), secrets: Arc::new(Secrets) };
        let connections = Connections::new(&self.project, &self.registry, context);
        let only: Vec<String> = pipelines.iter().map(|p| (*p).to_owned()).collect();
        let mut failures = Vec::new();
        let reports = run_project(
            &self.project,
            &connections,
            &self.store as &dyn engine::state::StateStore,
            &only,
            RunOptions::default(),
            &mut |e| {
                if let Some(error) = &e.error {
                    failures.push(format!("{} {:?}: {error}", e.pipeline, e.key));
                }
            },
        )
        .await;
        for r in &reports {
            assert!(r.succeeded(), "{r:?}: {failures:?}");
        }
        failures
    }

    fn status(&self, email: &str) -> Option<String> {
        self.mc.admin().member(&self.list, email).map(|m| m["status"].as_str().unwrap().to_owned())
    }

    /// Waits until Mailchimp delivered the webhooks the model expects (and no more).
    async fn deliveries(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.mc.admin().webhook_deliveries();
            let done = all.iter().filter(|d| d.status == Some(200)).count();
            if done >= self.events {
                assert_eq!(done, self.events, "webhooks: {:?}", all.iter().map(|d| &d.event).collect::<Vec<_>>());
                assert_eq!(all.len(), self.events, "every delivery succeeded first time");
                return;
            }
            assert!(Instant::now() < deadline, "expected {} webhook(s), {done} delivered: {all:?}", self.events);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The member writes (anything but GET) logged since the last clear.
    fn member_writes(&self) -> Vec<(String, String)> {
        self.mc
            .admin()
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.path.contains("merge-fields"))
            .map(|r| (r.method, r.path))
            .collect()
    }

    /// Every invariant that holds between steps.
    fn check(&self, after: &Step) {
        for (i, p) in self.people.iter().enumerate() {
            if let Some(email) = &p.mc_email {
                assert_eq!(
                    self.status(email).as_deref(),
                    Some(p.status.as_str()),
                    "person {i} ({email}) after {after:?}"
                );
            }
            for (ghost, status) in &p.ghosts {
                assert_eq!(
                    self.status(ghost).as_deref(),
                    Some(status.as_str()),
                    "person {i}'s old {ghost} after {after:?}"
                );
            }
            // Someone who opted out is never subscribed at their address. (An old address of
            // theirs, written again because BC still had it when the customer was edited before
            // the return flow told BC of the change, is a new contact to Mailchimp and gets
            // `status_if_new`: checked against the model above, counted in the report, and the
            // reason the stock projects use `transactional`.)
            if p.choice == Some(false)
                && let Some(email) = &p.mc_email
            {
                assert_ne!(
                    self.status(email).as_deref(),
                    Some("subscribed"),
                    "person {i} opted out, yet {email} is subscribed"
                );
            }
        }
        let members = self.mc.admin().members(&self.list);
        let known: BTreeSet<&String> = self.people.iter().flat_map(|p| &p.addresses).collect();
        for m in &members {
            let email = m["email_address"].as_str().unwrap().to_owned();
            assert!(known.contains(&email), "a member nobody has: {email}");
        }
    }

    async fn step(&mut self, s: &Step) {
        let bca = self.bc.admin();
        match s {
            Step::Rename(i, n) => {
                let p = &mut self.people[*i];
                p.version += 1;
                let name = format!("Person{} Renamed{n}x{}", i, p.version);
                let c = bca.update_customer(&self.company, &p.bc_id, json!({"displayName": name}));
                assert!(c.get("error").is_none(), "{c}");
            }
            Step::Phone(i, n) => {
                let p = &mut self.people[*i];
                p.version += 1;
                let phone = format!("555-{n:03}-{:04}", p.version);
                let c = bca.update_customer(&self.company, &p.bc_id, json!({"phoneNumber": phone}));
                assert!(c.get("error").is_none(), "{c}");
            }
            Step::Sync => {
                let failures = self.run(&["customers-to-members"]).await;
                assert!(failures.is_empty(), "{failures:?}");
                for p in &mut self.people {
                    // A record whose BC version was not written under its address yet is
                    // written; the write creates the address when Mailchimp lacks it (a new
                    // customer, or the old address of someone who moved in Mailchimp and was
                    // edited in BC before the return flow told BC), and never changes a status.
                    if p.written.get(&p.bc_email) == Some(&p.version) {
                        continue;
                    }
                    p.written.insert(p.bc_email.clone(), p.version);
                    let exists = p.mc_email.as_ref() == Some(&p.bc_email) || p.ghosts.contains_key(&p.bc_email);
                    if !exists {
                        p.addresses.insert(p.bc_email.clone());
                        if p.mc_email.is_none() {
                            p.mc_email = Some(p.bc_email.clone());
                            p.status = self.status_if_new.to_owned();
                        } else {
                            p.ghosts.insert(p.bc_email.clone(), self.status_if_new.to_owned());
                        }
                    }
                }
            }
            Step::Unsubscribe(i) => {
                let p = &mut self.people[*i];
                if let Some(email) = &p.mc_email
                    && matches!(p.status.as_str(), "subscribed" | "transactional" | "pending")
                {
                    self.mc.admin().unsubscribe(&self.list, email);
                    p.status = "unsubscribed".into();
                    p.choice = Some(false);
                    p.pending.push((email.clone(), "unsubscribe"));
                    self.events += 1;
                }
            }
            Step::Bounce(i) => {
                let p = &mut self.people[*i];
                if let Some(email) = &p.mc_email
                    && p.status != "cleaned"
                {
                    self.mc.admin().bounce(&self.list, email);
                    p.status = "cleaned".into();
                    p.choice = Some(false);
                    p.pending.push((email.clone(), "cleaned"));
                    self.events += 1;
                }
            }
            Step::Resubscribe(i) => {
                let p = &mut self.people[*i];
                if let Some(email) = &p.mc_email
                    && p.status != "subscribed"
                {
                    self.mc.admin().resubscribe(&self.list, email);
                    p.status = "subscribed".into();
                    p.choice = Some(true);
                    p.pending.push((email.clone(), "subscribe"));
                    self.events += 1;
                }
            }
            Step::ChangeEmail(i) => {
                let new = format!("person{i}.v{}@example.com", self.people[*i].addresses.len() + 1);
                let free = self.status(&new).is_none();
                let p = &mut self.people[*i];
                if let Some(email) = p.mc_email.clone()
                    && free
                {
                    {
                        self.mc.admin().change_email(&self.list, &email, &new);
                        p.addresses.insert(new.clone());
                        p.mc_email = Some(new);
                        // `upemail`, then `profile`.
                        self.events += 2;
                    }
                }
            }
            Step::ReturnFlow => {
                self.deliveries().await;
                let failures = self.run(&["email-changes", "consent"]).await;
                // Address changes first (`consent` depends on `email-changes`), then each consent
                // event finds the customer under the address it became (`current_email`), even
                // one from an address the person left in the same batch: each choice reaches BC,
                // in order.
                //
                // What Mailchimp sent since the last return flow, in order; the inbox keeps the
                // first delivery of each (type, address, old address, second): a person who
                // goes A → B → A within one second has the second A taken for a retry of the
                // first (Mailchimp's payload has no event id). Counted, and modelled.
                let all = self.mc.admin().webhook_deliveries();
                let mut sent: Vec<(String, String, bool)> = Vec::new();
                for d in &all[self.delivered..] {
                    let r = event_record(&parse_form(d.body.as_bytes()).unwrap()).unwrap();
                    let text = |k: &str| r[k].as_str().unwrap_or_default().to_lowercase();
                    let key = format!("{}|{}|{}|{}", text("type"), text("email"), text("old_email"), r["fired_at"]);
                    let kept = self.seen.insert(key);
                    if ["subscribe", "unsubscribe", "cleaned"].contains(&text("type").as_str()) {
                        sent.push((text("email"), text("type"), kept));
                        self.collisions += usize::from(!kept);
                    }
                }
                self.delivered = all.len();
                for (i, p) in self.people.iter_mut().enumerate() {
                    if let Some(email) = &p.mc_email {
                        p.bc_email = email.clone();
                    }
                    let theirs: Vec<&(String, String, bool)> =
                        sent.iter().filter(|(a, ..)| p.addresses.contains(a)).collect();
                    let expected: Vec<(String, String)> =
                        std::mem::take(&mut p.pending).into_iter().map(|(a, t)| (a, t.to_owned())).collect();
                    let got: Vec<(String, String)> = theirs.iter().map(|(a, t, _)| (a.clone(), t.clone())).collect();
                    assert_eq!(got, expected, "person {i}: the consent events Mailchimp sent");
                    if let Some((_, kind, _)) = theirs.iter().rev().find(|(.., kept)| *kept) {
                        p.consent = Some((kind == "subscribe", kind == "cleaned"));
                    }
                }
                assert!(failures.is_empty(), "{failures:?}");
                for (i, p) in self.people.iter().enumerate() {
                    let customer = bca.customer(&self.company, &p.bc_id).unwrap();
                    assert_eq!(customer["email"], p.bc_email.as_str(), "person {i}: the address reached BC");
                    if let Some((marketing, bounced)) = p.consent {
                        let consent = bca.consent(&self.company, &p.bc_id).unwrap();
                        assert_eq!(consent["marketingConsent"], marketing, "person {i}: {consent}");
                        assert_eq!(consent["bounced"], bounced, "person {i}: {consent}");
                    }
                }
                // No echo: the sync that follows changes nobody's status, writes only the
                // addresses Mailchimp has and BC did not (the ones that just changed), and
                // causes no webhook.
                self.mc.admin().clear_requests();
                let before = self.mc.admin().webhook_deliveries().len();
                let statuses: BTreeMap<String, Option<String>> =
                    self.people.iter().flat_map(|p| &p.addresses).map(|a| (a.clone(), self.status(a))).collect();
                Box::pin(self.step(&Step::Sync)).await;
                let after: BTreeMap<String, Option<String>> =
                    statuses.keys().map(|a| (a.clone(), self.status(a))).collect();
                assert_eq!(statuses, after, "the sync after the return flow changed a status");
                let allowed: BTreeSet<(String, String)> = self
                    .people
                    .iter()
                    .filter_map(|p| p.mc_email.as_ref())
                    .map(|e| ("PUT".to_owned(), format!("/3.0/lists/{}/members/{}", self.list, subscriber_hash(e))))
                    .collect();
                for w in self.member_writes() {
                    assert!(allowed.contains(&w), "an echo: {w:?}");
                }
                // A person's profile edit as a marker: deliveries to a webhook go out in event
                // order, so an echo of the sync would arrive before it.
                let marker = self.people.iter().find_map(|p| p.mc_email.clone()).unwrap();
                self.mc.admin().edit_profile(&self.list, &marker, json!({"LNAME": format!("Marker {}", self.events)}));
                self.events += 1;
                self.deliveries().await;
                assert_eq!(self.mc.admin().webhook_deliveries().len(), before + 1, "our sync caused a webhook");
            }
        }
    }
}

/// Per case: steps, same-second repeats taken for retries, old addresses of people who opted
/// out re-created `subscribed`.
static STATS: std::sync::Mutex<Vec<(usize, usize, usize)>> = std::sync::Mutex::new(Vec::new());

/// One case: everyone synced first (so actions have someone to act on), the steps, and a final
/// return flow.
fn case(status_if_new: &'static str, steps: &[Step]) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut w = World::new(status_if_new).await;
        w.step(&Step::Sync).await;
        w.check(&Step::Sync);
        for s in steps {
            w.step(s).await;
            w.check(s);
        }
        w.step(&Step::ReturnFlow).await;
        w.check(&Step::ReturnFlow);
        let ghosts = w
            .people
            .iter()
            .filter(|p| p.choice == Some(false))
            .flat_map(|p| p.ghosts.values())
            .filter(|s| *s == "subscribed")
            .count();
        STATS.lock().unwrap().push((steps.len(), w.collisions, ghosts));
    });
}

#[test]
fn people_keep_their_own_choice_and_nothing_echoes() {
    let long = std::env::var("MLC_LONG").is_ok_and(|v| !v.is_empty() && v != "0");
    let config =
        ProptestConfig { cases: if long { 256 } else { 24 }, failure_persistence: None, ..ProptestConfig::default() };
    let strategy = (prop::sample::select(vec!["subscribed", "transactional"]), prop::collection::vec(step(), 1..14));
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&strategy, |(status_if_new, steps)| {
        case(status_if_new, &steps);
        Ok(())
    });
    let stats = STATS.lock().unwrap().clone();
    let sum = |f: fn(&(usize, usize, usize)) -> usize| stats.iter().map(f).sum::<usize>();
    eprintln!(
        "{} case(s), {} step(s); same-second repeats taken for retries: {}; old addresses of people who opted out re-created as subscribed: {}",
        stats.len(),
        sum(|s| s.0),
        sum(|s| s.1),
        sum(|s| s.2)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
