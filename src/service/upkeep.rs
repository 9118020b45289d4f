//! Keeping the service's webhook subscriptions alive.
//!
//! Business Central deletes a webhook subscription three days after it was created or last
//! renewed, when a delivery is refused with a 4xx, or when an admin removes it, and says nothing
//! (`shared/reference/business-central.md` §5.3, §5.6). So, on start and every hour
//! ([`UpkeepSettings`]), for each project:
//!
//! - the Business Central entities its listening pipelines read (sources on a
//!   `business-central` connection whose `schedule` runs on events) get a subscription pointing
//!   at the service's public notification URL with the project's `clientState`
//!   ([`subscriptions::ensure`]): created when missing (also when it vanished behind our back),
//!   renewed when less than a day is left, kept otherwise; one no pipeline listens to any more
//!   is deleted;
//! - when a pipeline reads Mailchimp events from an inbox, the audience in `vars.list_id` gets a
//!   list webhook to the service (subscribe, unsubscribe, profile, upemail, cleaned; not from
//!   the API, so our own writes do not come back), registered only when missing: Mailchimp
//!   webhooks do not expire. Its signing secret, in the registration's answer only, goes to the
//!   project's vault and to the intake at once; a signed webhook whose secret was never seen is
//!   replaced (the new one first, then the old one deleted).
//!
//! What was seen is recorded in the project's state store ([`SubscriptionRecord`]), for
//! `ml-connector status` and the `mlc_subscription_expiry_seconds` metric
//! ([`render_expiry_metrics`]), and the subscribed resources are routed for the notification
//! receiver ([`Routes`]).
//!
//! "Now" comes from a [`Clock`], so tests can run ten days of renewals against the Business
//! Central sandbox's virtual clock in a second.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use connector_business_central::{BcClient, BcSettings, BusinessCentralConnector, split_entity, subscriptions};
use connector_mailchimp::{MailchimpConnector, MailchimpSettings, McClient, webhooks};
use engine::connector::{Connector, SecretResolver};
use engine::load::Project;
use inbox::InboxConnector;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use state::{SqliteStore, SubscriptionRecord};

use super::bc_notifications::Routes;
use super::metrics::label;
use super::project::SigningSecret;

/// The `system` of Business Central subscriptions in the state store.
pub const SYSTEM_BC: &str = "business-central";
/// The `system` of Mailchimp list webhooks in the state store.
pub const SYSTEM_MAILCHIMP: &str = "mailchimp";

/// The Mailchimp events the return flow reads (`campaign` is not one of them).
pub const MAILCHIMP_EVENTS: [&str; 5] = ["subscribe", "unsubscribe", "profile", "upemail", "cleaned"];

/// Where "now" comes from: the wall clock in the service, a virtual clock in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

impl<F: Fn() -> Timestamp + Send + Sync> Clock for F {
    fn now(&self) -> Timestamp {
        self()
    }
}

/// How often and how early.
#[derive(Debug, Clone)]
pub struct UpkeepSettings {
    /// Renew a subscription when less than this is left of its three days.
    pub renew_within: SignedDuration,
    /// Time between passes.
    pub interval: Duration,
    /// Time to the next pass after one that failed somewhere (a system down, a refused
    /// handshake), so a short outage does not leave subscriptions an hour closer to expiry.
    pub retry_after_failure: Duration,
}

impl Default for UpkeepSettings {
    fn default() -> Self {
        UpkeepSettings {
            renew_within: SignedDuration::from_hours(24),
            interval: Duration::from_secs(3600),
            retry_after_failure: Duration::from_secs(300),
        }
    }
}

/// A project's Business Central side.
pub struct BcHook {
    /// `<public url>/hooks/business-central/<token>` ([`super::bc_notifications::notification_url`]).
    pub notification_url: String,
    /// The `clientState` subscriptions carry (a vault secret).
    pub client_state: String,
    /// Shared with the project's [`super::bc_notifications::BcReceiver`].
    pub routes: Routes,
}

/// One project, as the upkeep sees it.
pub struct ProjectUpkeep {
    pub project: Arc<Project>,
    /// Resolves the connections' credentials.
    pub secrets: Arc<dyn SecretResolver>,
    /// The project's state store, where subscriptions are recorded.
    pub store: Arc<SqliteStore>,
    /// Business Central subscriptions, when the service receives them for this project.
    pub bc: Option<BcHook>,
    /// `<public url>/hooks/mailchimp/<token>`, when the service receives Mailchimp events for
    /// this project.
    pub mailchimp_url: Option<String>,
    /// Where the webhook's signing secret goes when the upkeep registers it (the intake's).
    pub mailchimp_signing: Option<Arc<SigningSecret>>,
}

impl ProjectUpkeep {
    /// The secrets that could appear in a remote system's error: the URL tokens, the client
    /// state.
    fn secrets(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(bc) = &self.bc {
            out.push(bc.notification_url.rsplit('/').next().unwrap_or(""));
            out.push(bc.client_state.as_str());
        }
        if let Some(url) = &self.mailchimp_url {
            out.push(url.rsplit('/').next().unwrap_or(""));
        }
        out
    }
}

/// `text` with each of `secrets` (8 characters or more: shorter ones would mangle ordinary
/// words) replaced by `<redacted>`.
fn redact(text: &str, secrets: &[&str]) -> String {
    secrets.iter().filter(|s| s.len() >= 8).fold(text.to_owned(), |t, s| t.replace(s, "<redacted>"))
}

/// What a project needs kept alive, derived from its pipelines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needs {
    /// `business-central` connection → the entities pipelines read from it.
    pub bc: BTreeMap<String, BTreeSet<String>>,
    /// Whether a pipeline reads Mailchimp events (entity `mailchimp` of an `inbox`).
    pub mailchimp_events: bool,
}

/// The subscriptions a project's pipelines need. `company` (the connection's company as one
/// record) is no collection and cannot be subscribed to.
pub fn needs(project: &Project) -> Needs {
    let connector = |name: &str| project.config.connections.get(name).map(|c| c.connector.as_str());
    let mut out = Needs::default();
    for p in &project.pipelines {
        let source = &p.source;
        match connector(&source.connection) {
            Some(c) if c == BusinessCentralConnector.name() && source.entity != "company" && listens(p) => {
                out.bc.entry(source.connection.clone()).or_default().insert(source.entity.clone());
            }
            Some(c) if c == InboxConnector.name() && source.entity == SYSTEM_MAILCHIMP => out.mailchimp_events = true,
            _ => {}
        }
    }
    out
}

/// Whether events make the pipeline run: a pipeline only on a clock (or only run by hand) has
/// no use for notifications, and a subscription for it would only cost Business Central calls.
fn listens(pipeline: &engine::pipeline::Pipeline) -> bool {
    pipeline.schedule.as_ref().is_some_and(engine::schedule::Schedule::on_events)
}

/// What one pass did; each entry is `project/connection/entity` (or `project/connection/list`).
#[derive(Debug, Default, Clone)]
pub struct UpkeepReport {
    pub created: Vec<String>,
    pub renewed: Vec<String>,
    pub kept: Vec<String>,
    /// Subscriptions of entities no pipeline listens to any more, deleted.
    pub deleted: Vec<String>,
    pub webhooks_registered: Vec<String>,
    /// Signed webhooks whose secret was unknown, replaced by one whose secret is kept.
    pub webhooks_replaced: Vec<String>,
    pub webhooks_kept: Vec<String>,
    /// What could not be done, with why (never a secret).
    pub failures: Vec<String>,
}

/// The upkeep of every project of the service.
pub struct Upkeep {
    projects: Vec<ProjectUpkeep>,
    clock: Arc<dyn Clock>,
    settings: UpkeepSettings,
    /// Clients by (project index, connection), kept between passes (they cache their token).
    bc_clients: tokio::sync::Mutex<HashMap<(usize, String), Arc<BcClient>>>,
    mc_clients: tokio::sync::Mutex<HashMap<(usize, String), Arc<McClient>>>,
}

impl Upkeep {
    /// The upkeep of `projects`. Nothing happens until [`Upkeep::pass`] or [`Upkeep::run`].
    ///
    /// The routes of subscriptions recorded by an earlier run are loaded at once, so
    /// notifications arriving before the first pass are routed to their connection.
    pub fn new(projects: Vec<ProjectUpkeep>, clock: Arc<dyn Clock>, settings: UpkeepSettings) -> Upkeep {
        for p in &projects {
            let Some(bc) = &p.bc else { continue };
            for r in p.store.subscriptions().unwrap_or_default().iter().filter(|r| r.system == SYSTEM_BC) {
                bc.routes.insert(&r.resource, &r.connection, &r.entity);
            }
        }
        Upkeep {
            projects,
            clock,
            settings,
            bc_clients: tokio::sync::Mutex::default(),
            mc_clients: tokio::sync::Mutex::default(),
        }
    }

    /// Passes until `shutdown` completes: one at once, then every `interval` (sooner after a
    /// failure). Start it once the server answers on the public URL: creating and renewing a
    /// Business Central subscription calls it back (the handshake) before the request returns.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let report = self.pass().await;
            let wait =
                if report.failures.is_empty() { self.settings.interval } else { self.settings.retry_after_failure };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass over every project. Failures are logged and reported, never fatal: the other
    /// connections and projects are still looked after.
    pub async fn pass(&self) -> UpkeepReport {
        let mut report = UpkeepReport::default();
        for index in 0..self.projects.len() {
            let project = &self.projects[index];
            let needs = needs(&project.project);
            // Connections with recorded subscriptions but no listening pipeline any more are
            // visited too, with nothing wanted, so their subscriptions are deleted.
            let mut connections = needs.bc.clone();
            for r in project.store.subscriptions().unwrap_or_default().into_iter().filter(|r| r.system == SYSTEM_BC) {
                let still_bc = project.project.config.connections.get(&r.connection).map(|c| c.connector.as_str())
                    == Some(BusinessCentralConnector.name());
                if still_bc {
                    connections.entry(r.connection).or_default();
                } else {
                    // The connection is gone from the project: nothing to delete with; Business
                    // Central lets the subscription lapse within three days.
                    let _ = project.store.subscription_remove(SYSTEM_BC, &r.connection, &r.entity);
                }
            }
            for (connection, entities) in &connections {
                self.bc_connection(index, connection, entities, &mut report).await;
            }
            if needs.mailchimp_events {
                self.mailchimp(index, &mut report).await;
            }
        }
        // A remote error may quote the notification URL (a handshake that could not reach it),
        // and so the token in it: failures are logged and shown, secrets never.
        let secrets: Vec<&str> = self.projects.iter().flat_map(ProjectUpkeep::secrets).collect();
        for failure in &mut report.failures {
            *failure = redact(failure, &secrets);
            tracing::warn!(%failure, "Subscription upkeep failed; it is tried again.");
        }
        tracing::info!(
            created = report.created.len(),
            renewed = report.renewed.len(),
            kept = report.kept.len(),
            deleted = report.deleted.len(),
            webhooks_registered = report.webhooks_registered.len(),
            webhooks_replaced = report.webhooks_replaced.len(),
            failures = report.failures.len(),
            "Subscription upkeep pass."
        );
        report
    }

    /// Ensures the subscriptions of one `business-central` connection and records them.
    async fn bc_connection(
        &self,
        index: usize,
        connection: &str,
        entities: &BTreeSet<String>,
        report: &mut UpkeepReport,
    ) {
        let p = &self.projects[index];
        let Some(hook) = &p.bc else { return };
        let name = &p.project.config.name;
        let client = match self.bc_client(index, connection).await {
            Ok(c) => c,
            Err(e) => {
                report.failures.push(format!("{name}/{connection}: {e}"));
                return;
            }
        };
        // Standard and custom APIs keep their subscriptions apart: group by API.
        let mut by_api: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for entity in entities {
            match split_entity(entity) {
                Ok((api, set)) => {
                    let resource = subscriptions::resource_for(&client, &api, &set);
                    by_api.entry(api).or_default().push((entity.clone(), resource));
                }
                Err(e) => report.failures.push(format!("{name}/{connection}/{entity}: {e}")),
            }
        }
        let now = self.clock.now();
        // Each API's live subscriptions, listed once per pass.
        let mut lists: BTreeMap<String, Vec<subscriptions::Subscription>> = BTreeMap::new();
        for (api, wanted) in by_api {
            for (entity, resource) in &wanted {
                let label = format!("{name}/{connection}/{entity}");
                // One resource at a time: an entity Business Central cannot subscribe to fails
                // alone, not the rest of its API.
                let result = subscriptions::ensure(
                    &client,
                    &api,
                    std::slice::from_ref(resource),
                    &hook.notification_url,
                    &hook.client_state,
                    now,
                    self.settings.renew_within,
                )
                .await;
                match result {
                    Ok(r) if !r.created.is_empty() => report.created.push(label),
                    Ok(r) if !r.renewed.is_empty() => report.renewed.push(label),
                    Ok(_) => report.kept.push(label),
                    Err(e) => report.failures.push(format!("{label}: {e}")),
                }
            }
            let live = match subscriptions::list(&client, &api).await {
                Ok(l) => lists.entry(api).insert_entry(l).into_mut(),
                Err(e) => {
                    report.failures.push(format!("{name}/{connection}: listing subscriptions: {e}"));
                    continue;
                }
            };
            let checked_at = self.clock.now().to_string();
            for (entity, resource) in &wanted {
                let found = live.iter().find(|s| {
                    s.notification_url == hook.notification_url
                        && s.resource.trim_start_matches('/').eq_ignore_ascii_case(resource.trim_start_matches('/'))
                });
                let Some(sub) = found else { continue };
                hook.routes.insert(&sub.resource, connection, entity);
                let record = SubscriptionRecord {
                    system: SYSTEM_BC.into(),
                    connection: connection.to_owned(),
                    entity: entity.clone(),
                    resource: sub.resource.clone(),
                    subscription_id: sub.id.clone(),
                    expires_at: Some(sub.expiration.clone()).filter(|e| !e.is_empty()),
                    checked_at: checked_at.clone(),
                };
                if let Err(e) = p.store.subscription_put(&record) {
                    report.failures.push(format!("{name}/{connection}/{entity}: {e}"));
                }
            }
        }
        // Entities no pipeline listens to any more: delete their subscriptions, so Business
        // Central stops calling the service for them (and would not keep them three days).
        for r in p.store.subscriptions().unwrap_or_default() {
            if r.system != SYSTEM_BC || r.connection != connection || entities.contains(&r.entity) {
                continue;
            }
            let label = format!("{name}/{connection}/{}", r.entity);
            match delete_recorded(&client, &r, &mut lists).await {
                Ok(()) => {
                    let _ = p.store.subscription_remove(SYSTEM_BC, connection, &r.entity);
                    tracing::info!(project = %name, connection = %connection, entity = %r.entity, "Deleted a subscription no pipeline listens to.");
                    report.deleted.push(label);
                }
                Err(e) => report.failures.push(format!("{label}: deleting the subscription: {e}")),
            }
        }
    }

    /// Registers the project's Mailchimp list webhook when it is missing, and records it.
    async fn mailchimp(&self, index: usize, report: &mut UpkeepReport) {
        let p = &self.projects[index];
        let Some(url) = &p.mailchimp_url else { return };
        let name = &p.project.config.name;
        let Some(list) = p.project.config.vars.get("list_id").and_then(Value::as_str) else {
            report.failures.push(format!(
                "{name}: pipelines read Mailchimp events, but `vars.list_id` names no audience to register the webhook on"
            ));
            return;
        };
        let connections: Vec<&String> = p
            .project
            .config
            .connections
            .iter()
            .filter(|(_, c)| c.connector == MailchimpConnector.name())
            .map(|(n, _)| n)
            .collect();
        let [connection] = connections.as_slice() else {
            report.failures.push(format!(
                "{name}: pipelines read Mailchimp events, but the project has {} `mailchimp` connections (one is needed to register the webhook)",
                connections.len()
            ));
            return;
        };
        let label = format!("{name}/{connection}/{list}");
        let client = match self.mc_client(index, connection).await {
            Ok(c) => c,
            Err(e) => {
                report.failures.push(format!("{label}: {e}"));
                return;
            }
        };
        let existing = match webhooks::list(&client, list).await {
            Ok(w) => w,
            Err(e) => {
                report.failures.push(format!("{label}: listing webhooks: {e}"));
                return;
            }
        };
        // Ours: the service's URL, or the same with a `?renewed=` query (a replacement, below).
        let ours: Vec<webhooks::Webhook> = existing.into_iter().filter(|w| is_ours(&w.url, url)).collect();
        let signing = p.mailchimp_signing.as_ref();
        let hook = match ours.first() {
            None => match self.register_webhook(index, &client, list, url, &label, report).await {
                Some((w, secret)) => {
                    if let (Some(secret), Some(signing)) = (secret, signing) {
                        signing.set(&secret);
                    }
                    report.webhooks_registered.push(label);
                    w
                }
                None => return,
            },
            // Signed with a secret the service never saw (registered by hand, by a version that
            // did not keep it, or its answer lost): a second webhook first, so that no event
            // falls between the two, then the old one goes, then signatures are checked.
            Some(old) if old.signing_enabled && signing.is_some_and(|s| s.get().is_none()) => {
                let renewed = format!("{url}?renewed={}", self.clock.now().as_second());
                let Some((w, secret)) = self.register_webhook(index, &client, list, &renewed, &label, report).await
                else {
                    return;
                };
                for old in &ours {
                    if let Err(e) = webhooks::delete(&client, list, &old.id).await {
                        report.failures.push(format!("{label}: deleting the webhook it replaces: {e}"));
                    }
                }
                if let (Some(secret), Some(signing)) = (secret, signing) {
                    signing.set(&secret);
                }
                tracing::info!(project = %name, connection = %connection, list, "Replaced a signed Mailchimp webhook whose signing secret was unknown.");
                report.webhooks_replaced.push(label);
                w
            }
            Some(w) => {
                report.webhooks_kept.push(label);
                w.clone()
            }
        };
        let record = SubscriptionRecord {
            system: SYSTEM_MAILCHIMP.into(),
            connection: (*connection).clone(),
            entity: list.to_owned(),
            resource: format!("lists/{list}/webhooks"),
            subscription_id: hook.id,
            expires_at: None,
            checked_at: self.clock.now().to_string(),
        };
        if let Err(e) = p.store.subscription_put(&record) {
            report.failures.push(format!("{name}/{connection}/{list}: {e}"));
        }
    }

    /// Registers the project's list webhook at `url` and keeps its signing secret in the vault
    /// (Mailchimp shows it only in this answer). Returns the webhook and the secret, which the
    /// caller hands to the intake when deliveries should be checked; `None` after a failure,
    /// reported.
    async fn register_webhook(
        &self,
        index: usize,
        client: &McClient,
        list: &str,
        url: &str,
        label: &str,
        report: &mut UpkeepReport,
    ) -> Option<(webhooks::Webhook, Option<String>)> {
        let p = &self.projects[index];
        let name = &p.project.config.name;
        let w = match webhooks::register(client, list, url, &MAILCHIMP_EVENTS).await {
            Ok(w) => w,
            Err(e) => {
                report.failures.push(format!("{label}: registering the webhook: {e}"));
                return None;
            }
        };
        tracing::info!(project = %name, list, "Registered the Mailchimp list webhook.");
        let secret = w.signing_secret.clone();
        if let (Some(secret), Some(signing)) = (&secret, &p.mailchimp_signing) {
            match crate::commands::secrets::store(&p.project, &signing.name, secret) {
                Ok(()) => tracing::info!(project = %name, secret = %signing.name, "Kept the webhook's signing secret in the vault."),
                Err(e) => report.failures.push(format!(
                    "{label}: the webhook's signing secret could not be kept in the vault ({e}); deliveries are checked until the service stops"
                )),
            }
        }
        Some((w, secret))
    }

    async fn bc_client(&self, index: usize, connection: &str) -> Result<Arc<BcClient>, String> {
        let mut clients = self.bc_clients.lock().await;
        if let Some(c) = clients.get(&(index, connection.to_owned())) {
            return Ok(c.clone());
        }
        let p = &self.projects[index];
        let settings = p.project.config.connections.get(connection).map(|c| c.settings.clone()).unwrap_or_default();
        let settings: BcSettings =
            serde_json::from_value(Value::Object(settings)).map_err(|e| format!("settings: {e}"))?;
        let client = Arc::new(BcClient::connect(&settings, p.secrets.as_ref()).await.map_err(|e| e.to_string())?);
        clients.insert((index, connection.to_owned()), client.clone());
        Ok(client)
    }

    async fn mc_client(&self, index: usize, connection: &str) -> Result<Arc<McClient>, String> {
        let mut clients = self.mc_clients.lock().await;
        if let Some(c) = clients.get(&(index, connection.to_owned())) {
            return Ok(c.clone());
        }
        let p = &self.projects[index];
        let settings = p.project.config.connections.get(connection).map(|c| c.settings.clone()).unwrap_or_default();
        let settings: MailchimpSettings =
            serde_json::from_value(Value::Object(settings)).map_err(|e| format!("settings: {e}"))?;
        let client = Arc::new(McClient::connect(&settings, p.secrets.as_ref()).await.map_err(|e| e.to_string())?);
        clients.insert((index, connection.to_owned()), client.clone());
        Ok(client)
    }

    /// The `mlc_subscription_expiry_seconds` metric of every project, from the state stores,
    /// at the clock's now. For the service's `/metrics`.
    pub fn metrics(&self) -> String {
        let mut rows = Vec::new();
        for p in &self.projects {
            for r in p.store.subscriptions().unwrap_or_default() {
                rows.push((p.project.config.name.clone(), r));
            }
        }
        render_expiry_metrics(&rows, self.clock.now())
    }
}

/// Whether a list webhook's URL is the service's `url` (or a replacement of it: `url?renewed=…`).
fn is_ours(webhook_url: &str, url: &str) -> bool {
    webhook_url.strip_prefix(url).is_some_and(|rest| rest.is_empty() || rest.starts_with("?renewed="))
}

/// Deletes the live subscription `record` names, if Business Central still has it. `lists`
/// caches each API's subscriptions for the pass.
async fn delete_recorded(
    client: &BcClient,
    record: &SubscriptionRecord,
    lists: &mut BTreeMap<String, Vec<subscriptions::Subscription>>,
) -> Result<(), String> {
    let (api, _) = split_entity(&record.entity).map_err(|e| e.to_string())?;
    if !lists.contains_key(&api) {
        let live = subscriptions::list(client, &api).await.map_err(|e| e.to_string())?;
        lists.insert(api.clone(), live);
    }
    let Some(sub) = lists[&api].iter().find(|s| s.id == record.subscription_id) else {
        return Ok(()); // Already gone (expired, or deleted by an admin).
    };
    match subscriptions::delete(client, &api, sub).await {
        Ok(()) => Ok(()),
        Err(e) if e.status == Some(404) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Prometheus text for `mlc_subscription_expiry_seconds{project, system, connection, entity}`:
/// the seconds left until each expiring subscription expires at `now` (negative once expired).
/// Subscriptions that do not expire (Mailchimp webhooks) are left out. Empty input, empty text.
pub fn render_expiry_metrics(rows: &[(String, SubscriptionRecord)], now: Timestamp) -> String {
    let mut out = String::new();
    for (project, r) in rows {
        let Some(expires) = r.expires_at.as_deref().and_then(|e| e.parse::<Timestamp>().ok()) else { continue };
        if out.is_empty() {
            out.push_str(
                "# HELP mlc_subscription_expiry_seconds Seconds until a webhook subscription expires unless renewed (negative: expired).\n\
                 # TYPE mlc_subscription_expiry_seconds gauge\n",
            );
        }
        out.push_str(&format!(
            "mlc_subscription_expiry_seconds{{project=\"{}\",system=\"{}\",connection=\"{}\",entity=\"{}\"}} {}\n",
            label(project),
            label(&r.system),
            label(&r.connection),
            label(&r.entity),
            expires.duration_since(now).as_secs()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_show_seconds_left_and_escape_labels() {
        let record = |entity: &str, expires: Option<&str>| SubscriptionRecord {
            system: SYSTEM_BC.into(),
            connection: "bc".into(),
            entity: entity.into(),
            resource: "r".into(),
            subscription_id: "s".into(),
            expires_at: expires.map(str::to_owned),
            checked_at: "2026-01-01T00:00:00Z".into(),
        };
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let rows = vec![
            ("p\"1".to_owned(), record("customers", Some("2026-01-03T00:00:00Z"))),
            ("p2".to_owned(), record("items", Some("2025-12-31T23:59:00Z"))),
            ("p2".to_owned(), record("list", None)),
        ];
        let text = render_expiry_metrics(&rows, now);
        assert_eq!(
            text,
            "# HELP mlc_subscription_expiry_seconds Seconds until a webhook subscription expires unless renewed (negative: expired).\n\
             # TYPE mlc_subscription_expiry_seconds gauge\n\
             mlc_subscription_expiry_seconds{project=\"p\\\"1\",system=\"business-central\",connection=\"bc\",entity=\"customers\"} 172800\n\
             mlc_subscription_expiry_seconds{project=\"p2\",system=\"business-central\",connection=\"bc\",entity=\"items\"} -60\n"
        );
        assert_eq!(render_expiry_metrics(&[], now), "");
    }

    use axum::http::StatusCode;
    use axum::routing::get;
    use inbox::Inbox;
    use serde_json::json;

    use crate::service::bc_notifications::{
        BcNotifications, BcReceiver, INBOX_SOURCE, Routes, channel_trigger, notification_url,
    };
    use crate::service::test_support::{
        BC_TOKEN, CLIENT_STATE, MC_TOKEN, bc_sandbox, eventually, mc_sandbox, project, secrets, serve,
    };

    /// The upkeep's view of a test project whose BC notifications go to `base`.
    fn upkept(
        project: Project,
        store: &Arc<SqliteStore>,
        base: &str,
        routes: &Routes,
        mc: Option<String>,
    ) -> ProjectUpkeep {
        ProjectUpkeep {
            project: Arc::new(project),
            secrets: secrets(),
            store: store.clone(),
            bc: Some(BcHook {
                notification_url: notification_url(base, BC_TOKEN),
                client_state: CLIENT_STATE.into(),
                routes: routes.clone(),
            }),
            mailchimp_signing: mc
                .as_ref()
                .map(|_| Arc::new(SigningSecret::new("mailchimp_webhook_signing_secret", None))),
            mailchimp_url: mc,
        }
    }

    #[tokio::test]
    async fn a_failed_pass_is_reported_without_secrets_even_when_the_remote_error_quotes_the_url() {
        let bc = bc_sandbox().await;
        let dir = tempfile::tempdir().unwrap();
        let project = project(dir.path(), &bc, None, &[("customers", "bc", "customers")]);
        // Nobody listens there: the handshake cannot reach the service.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let store = Arc::new(SqliteStore::open(&project.state_path()).unwrap());
        let upkeep = Upkeep::new(
            vec![upkept(project, &store, &format!("http://{closed}"), &Routes::default(), None)],
            Arc::new(SystemClock),
            UpkeepSettings::default(),
        );
        let report = upkeep.pass().await;
        assert_eq!(report.failures.len(), 1, "{report:?}");
        let failure = &report.failures[0];
        assert!(failure.starts_with("test-project/bc/customers: "), "{failure}");
        assert!(!failure.contains(BC_TOKEN) && !failure.contains(CLIENT_STATE), "{failure}");
        assert!(store.subscriptions().unwrap().is_empty());
        assert_eq!(redact("a secret-token-1 b", &["secret-token-1", "short"]), "a <redacted> b");
        bc.shutdown().await;
    }

    #[tokio::test]
    async fn a_subscription_no_pipeline_listens_to_any_more_is_deleted() {
        let bc = bc_sandbox().await;
        let dir = tempfile::tempdir().unwrap();
        let sources = [("customers", "bc", "customers"), ("items", "bc", "items")];
        let listening = project(dir.path(), &bc, None, &sources);
        let (_receiver, base, routes) = handshake_receiver().await;
        let store = Arc::new(SqliteStore::open(&listening.state_path()).unwrap());
        let upkeep = |project: Project| {
            Upkeep::new(
                vec![upkept(project, &store, &base, &routes, None)],
                Arc::new(SystemClock),
                UpkeepSettings::default(),
            )
        };
        let report = upkeep(listening).pass().await;
        assert_eq!((report.created.len(), report.failures.len()), (2, 0), "{report:?}");
        assert_eq!(bc.admin().subscriptions().len(), 2);

        // `items` now polls instead: its subscription goes, the customers' stays.
        let items = dir.path().join("pipelines/items.yaml");
        let text = std::fs::read_to_string(&items).unwrap();
        std::fs::write(&items, text.replace("schedule: webhook", "schedule: {every: 15m}")).unwrap();
        let reload = || {
            engine::load::load_project(&dir.path().join("ml-connector.yaml"), &crate::registry::connectors()).unwrap()
        };
        let report = upkeep(reload()).pass().await;
        assert_eq!(report.deleted, ["test-project/bc/items"], "{report:?}");
        assert_eq!((report.kept.len(), report.failures.len()), (1, 0), "{report:?}");
        let live = bc.admin().subscriptions();
        assert_eq!(live.len(), 1);
        assert!(live[0]["resource"].as_str().unwrap().ends_with("/customers"), "{live:?}");
        assert_eq!(store.subscriptions().unwrap().iter().map(|r| r.entity.as_str()).collect::<Vec<_>>(), ["customers"]);

        // No pipeline listens at all: the connection is still visited, and cleaned up.
        let customers = dir.path().join("pipelines/customers.yaml");
        std::fs::remove_file(customers).unwrap();
        let report = upkeep(reload()).pass().await;
        assert_eq!(report.deleted, ["test-project/bc/customers"], "{report:?}");
        assert!(bc.admin().subscriptions().is_empty());
        assert!(store.subscriptions().unwrap().is_empty());
        // And a pass with nothing to do does nothing.
        let report = upkeep(reload()).pass().await;
        assert!(report.deleted.is_empty() && report.failures.is_empty() && report.created.is_empty(), "{report:?}");
        bc.shutdown().await;
    }

    /// A receiver that answers Business Central's handshakes and Mailchimp's validation GET:
    /// (its inbox's directory, base URL, routes).
    async fn handshake_receiver() -> (tempfile::TempDir, String, Routes) {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join(inbox::DEFAULT_PATH)).unwrap();
        let routes = Routes::default();
        let (trigger, _changes) = channel_trigger();
        let receiver = BcReceiver {
            project: "test-project".into(),
            token: BC_TOKEN.into(),
            client_state: CLIENT_STATE.into(),
            inbox,
            routes: routes.clone(),
        };
        let app = BcNotifications::new(vec![receiver], trigger)
            .router()
            .route("/hooks/mailchimp/{token}", get(|| async { StatusCode::OK }));
        let base = serve(app).await;
        (dir, base, routes)
    }

    #[tokio::test]
    async fn a_signed_webhook_whose_secret_the_vault_lacks_is_replaced_without_a_gap() {
        let bc = bc_sandbox().await;
        let mc = mc_sandbox().await;
        let list = mc.admin().create_list("CRONUS customers");
        let dir = tempfile::tempdir().unwrap();
        let project = project(dir.path(), &bc, Some((&mc, &list)), &[("events", "events", "mailchimp")]);
        vault::generate_key_file(&project.key_file_path()).unwrap();
        let (vault_path, key_file) = (project.vault_path(), project.key_file_path());
        let (_receiver, base, routes) = handshake_receiver().await;
        let url = format!("{base}/hooks/mailchimp/{MC_TOKEN}");
        let store = Arc::new(SqliteStore::open(&project.state_path()).unwrap());
        let upkeep = Upkeep::new(
            vec![upkept(project, &store, &base, &routes, Some(url.clone()))],
            Arc::new(SystemClock),
            UpkeepSettings::default(),
        );
        // Registered earlier by hand (or by a version that did not keep the secret).
        let client = upkeep.mc_client(0, "mc").await.unwrap();
        let by_hand = webhooks::register(&client, &list, &url, &MAILCHIMP_EVENTS).await.unwrap();
        let lost = by_hand.signing_secret.clone().unwrap();
        assert!(!format!("{by_hand:?}").contains(&lost), "Debug shows no secret");

        let report = upkeep.pass().await;
        assert!(report.failures.is_empty(), "{report:?}");
        assert_eq!(report.webhooks_replaced, [format!("test-project/mc/{list}")], "{report:?}");
        let hooks = webhooks::list(&client, &list).await.unwrap();
        assert_eq!(hooks.len(), 1, "the old one is gone: {hooks:?}");
        assert_ne!(hooks[0].id, by_hand.id);
        assert!(hooks[0].url.starts_with(&format!("{url}?renewed=")), "{hooks:?}");
        // The new secret is checked and kept; it is not the one shown to whoever registered by hand.
        let checked = upkeep.projects[0].mailchimp_signing.as_ref().unwrap().get().expect("checked now");
        assert_ne!(checked.as_str(), lost);
        let key = vault::master_key_from_environment(Some(&key_file)).unwrap();
        let kept = vault::Vault::open(&vault_path, &key).unwrap().get("mailchimp_webhook_signing_secret").unwrap();
        assert_eq!(kept.as_deref().map(String::as_str), Some(checked.as_str()));
        assert!(store.subscriptions().unwrap().iter().any(|r| r.subscription_id == hooks[0].id));

        // The next pass knows the replacement as its own and keeps it.
        let report = upkeep.pass().await;
        assert_eq!((report.webhooks_kept.len(), report.webhooks_replaced.len()), (1, 0), "{report:?}");
        assert_eq!(webhooks::list(&client, &list).await.unwrap().len(), 1);
        assert!(is_ours(&format!("{url}?renewed=1"), &url) && !is_ours(&format!("{url}x"), &url));
        bc.shutdown().await;
        mc.shutdown().await;
    }

    const SOURCES: [(&str, &str, &str); 5] = [
        ("customers", "bc", "customers"),
        ("invoices", "bc", "salesInvoices"),
        ("consents", "bc", "contoso/marketing/v1.0/customerConsents"),
        ("store", "bc", "company"),
        ("events", "events", "mailchimp"),
    ];

    #[tokio::test]
    async fn ten_days_keep_every_subscription_alive_recreate_a_deleted_one_and_register_the_webhook_once() {
        let bc = bc_sandbox().await;
        let mc = mc_sandbox().await;
        let list = mc.admin().create_list("CRONUS customers");
        let dir = tempfile::tempdir().unwrap();
        let project = project(dir.path(), &bc, Some((&mc, &list)), &SOURCES);
        let wanted: BTreeSet<String> =
            ["customers", "salesInvoices", "contoso/marketing/v1.0/customerConsents"].map(String::from).into();
        assert_eq!(needs(&project), Needs { bc: [("bc".to_owned(), wanted)].into(), mailchimp_events: true });

        // The service's receiving side: Business Central notifications, and an answer to
        // Mailchimp's validation GET.
        let inbox = Inbox::open(&dir.path().join(inbox::DEFAULT_PATH)).unwrap();
        let routes = Routes::default();
        let (trigger, mut changes) = channel_trigger();
        let receiver = BcReceiver {
            project: "test-project".into(),
            token: BC_TOKEN.into(),
            client_state: CLIENT_STATE.into(),
            inbox: inbox.clone(),
            routes: routes.clone(),
        };
        let app = BcNotifications::new(vec![receiver], trigger)
            .router()
            .route("/hooks/mailchimp/{token}", get(|| async { StatusCode::OK }));
        let base = serve(app).await;
        let store = Arc::new(SqliteStore::open(&project.state_path()).unwrap());
        // The vault's key in the project, for the webhook's signing secret.
        vault::generate_key_file(&project.key_file_path()).unwrap();
        let vault_path = project.vault_path();
        let key_file = project.key_file_path();
        let admin = bc.admin();
        let clock = {
            let admin = admin.clone();
            move || admin.now()
        };
        let upkeep = Upkeep::new(
            vec![upkept(project, &store, &base, &routes, Some(format!("{base}/hooks/mailchimp/{MC_TOKEN}")))],
            Arc::new(clock),
            UpkeepSettings::default(),
        );

        let (mut created, mut renewed, mut registered, mut webhook_kept) = (0, 0, 0, 0);
        let step = Duration::from_secs(6 * 3600);
        for n in 0..40 {
            let now = admin.now();
            // Between passes nothing ever expired: each pass left at least a day.
            for s in admin.subscriptions() {
                let expires: Timestamp = s["expirationDateTime"].as_str().unwrap().parse().unwrap();
                assert!(expires > now, "step {n}: {s}");
            }
            if n == 16 {
                // Day four: an admin deletes one behind the service's back.
                let id = admin.subscriptions()[0]["subscriptionId"].as_str().unwrap().to_owned();
                admin.delete_subscription(&id);
            }
            let report = upkeep.pass().await;
            assert!(report.failures.is_empty(), "step {n}: {:?}", report.failures);
            assert_eq!(report.created.len() + report.renewed.len() + report.kept.len(), 3, "step {n}: {report:?}");
            if n == 16 {
                assert_eq!(report.created.len(), 1, "the deleted one is recreated: {report:?}");
            }
            created += report.created.len();
            renewed += report.renewed.len();
            registered += report.webhooks_registered.len();
            webhook_kept += report.webhooks_kept.len();
            let subs = admin.subscriptions();
            assert_eq!(subs.len(), 3, "step {n}");
            for s in subs {
                let expires: Timestamp = s["expirationDateTime"].as_str().unwrap().parse().unwrap();
                assert!(expires.duration_since(now) >= SignedDuration::from_hours(24), "step {n}: {s}");
            }
            admin.advance_clock(step);
        }
        assert_eq!(created, 4, "three at the start, one after the deletion");
        assert!(renewed >= 9, "renewed {renewed} times in ten days");
        assert_eq!((registered, webhook_kept), (1, 39), "the Mailchimp webhook is registered once");
        let handshakes: Vec<_> = admin.notifications().into_iter().filter(|d| d.kind == "handshake").collect();
        assert_eq!(handshakes.len(), created + renewed);
        assert!(handshakes.iter().all(|h| h.status == Some(200)), "{handshakes:?}");

        // Mailchimp holds exactly one webhook to the service, not fed by our own API writes.
        let hooks: Value = reqwest::Client::new()
            .get(format!("{}/3.0/lists/{list}/webhooks", mc.base_url()))
            .basic_auth("any", Some(sandbox_mailchimp::DEFAULT_API_KEY))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let hooks = hooks["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 1, "{hooks:?}");
        assert_eq!(hooks[0]["sources"]["api"], false);
        assert_eq!(hooks[0]["events"]["unsubscribe"], true);
        assert_eq!(hooks[0]["events"]["campaign"], false);

        // The state store knows what Business Central knows.
        let records = store.subscriptions().unwrap();
        assert_eq!(records.len(), 4, "{records:?}");
        for s in admin.subscriptions() {
            let id = s["subscriptionId"].as_str().unwrap();
            let record = records.iter().find(|r| r.subscription_id == id).unwrap_or_else(|| panic!("{s}"));
            let recorded: Timestamp = record.expires_at.as_deref().unwrap().parse().unwrap();
            let actual: Timestamp = s["expirationDateTime"].as_str().unwrap().parse().unwrap();
            assert_eq!(recorded, actual);
        }
        assert!(records.iter().any(|r| r.system == SYSTEM_MAILCHIMP && r.entity == list && r.expires_at.is_none()));
        let metrics = upkeep.metrics();
        assert_eq!(metrics.lines().filter(|l| l.starts_with("mlc_subscription_expiry_seconds{")).count(), 3);
        assert!(!metrics.contains(" -"), "nothing expired: {metrics}");

        // And the subscriptions deliver, routed to their connection.
        let company = admin.company_id("CRONUS USA, Inc.").unwrap();
        admin.create_customer(&company, json!({"displayName": "Late", "email": "late@example.com"}));
        // (The consent API reads the customer table too: both subscriptions fire, in one POST.)
        // The signing secret Mailchimp showed once is checked by the intake and kept in the vault.
        let signing = upkeep.projects[0].mailchimp_signing.as_ref().unwrap().get().expect("the signing secret is kept");
        let key = vault::master_key_from_environment(Some(&key_file)).unwrap();
        let vault = vault::Vault::open(&vault_path, &key).unwrap();
        let kept = vault.get("mailchimp_webhook_signing_secret").unwrap().expect("in the vault");
        assert_eq!(kept.as_str(), signing.as_str());
        assert!(!signing.is_empty());
        let mut changed = BTreeSet::new();
        while changed.len() < 2 {
            let change = tokio::time::timeout(Duration::from_secs(10), changes.recv()).await.unwrap().unwrap();
            assert_eq!(change.connection.as_deref(), Some("bc"));
            changed.insert(change.entity);
        }
        assert_eq!(changed, ["contoso/marketing/v1.0/customerConsents", "customers"].map(String::from).into());
        let stored = eventually(Duration::from_secs(1), || (inbox.count(INBOX_SOURCE).unwrap() == 2).then_some(()));
        assert!(stored.await.is_some());
        bc.shutdown().await;
        mc.shutdown().await;
    }
}
