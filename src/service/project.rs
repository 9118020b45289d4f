//! One project as the service holds it: its pipelines, state store, inbox, secrets, live
//! connections (one concurrency and rate budget per connection, shared by every run), webhook
//! tokens, and the channel that tells its runner work has arrived.
//!
//! Projects share nothing: two projects served by one process have their own connections,
//! vault, state and inbox, and a webhook reaches the project whose token it carries.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use engine::connector::{ConnectContext, SecretResolver};
use engine::executor::Connections;
use engine::load::Project;
use engine::schedule::Schedule;
use engine::state::StateStore;
use inbox::Inbox;
use state::SqliteStore;
use tokio::sync::mpsc;

use super::Options;

/// Work that arrived for a project, for the pipelines whose schedule is `webhook`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// Events of `source` (`mailchimp`, `business-central`) were stored in the inbox: the
    /// pipelines reading that entity from an event-driven (`inbox`) connection.
    Events { source: String },
    /// Records of `entity` changed in a system (a Business Central notification): the pipelines
    /// reading that entity from `connection`, or from any connection when it is not known.
    Changed { connection: Option<String>, entity: String },
}

/// The Mailchimp webhook of a project.
pub struct MailchimpHook {
    /// The secret token in the webhook URL.
    pub token: String,
    /// The webhook's signing secret, when deliveries are signed.
    pub signing: Arc<SigningSecret>,
}

/// The signing secret of a project's Mailchimp webhook. Mailchimp shows it once, in the answer
/// that creates the webhook: the upkeep keeps it in the project's vault and here, so the intake
/// checks signatures from the next delivery on, and after a restart.
pub struct SigningSecret {
    /// Its name in the project's vault.
    pub name: String,
    value: RwLock<Option<zeroize::Zeroizing<String>>>,
}

impl SigningSecret {
    pub fn new(name: impl Into<String>, value: Option<String>) -> SigningSecret {
        SigningSecret { name: name.into(), value: RwLock::new(value.map(zeroize::Zeroizing::new)) }
    }

    /// The secret, when deliveries are to be checked.
    pub fn get(&self) -> Option<zeroize::Zeroizing<String>> {
        self.value.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Checks deliveries with `value` from now on.
    pub fn set(&self, value: &str) {
        *self.value.write().unwrap_or_else(|p| p.into_inner()) = Some(zeroize::Zeroizing::new(value.to_owned()));
    }
}

/// A project served by the service.
pub struct Served {
    /// `name:` in the project file; labels metrics and logs.
    pub name: String,
    pub project: Arc<Project>,
    pub store: Arc<SqliteStore>,
    pub inbox: Inbox,
    pub secrets: Arc<dyn SecretResolver>,
    pub connections: Arc<Connections>,
    /// `None` when the project receives no Mailchimp events (no token in its vault and no
    /// pipeline reading them).
    pub mailchimp: Option<MailchimpHook>,
    /// Per pipeline (in the project's order): its source is event-driven (the inbox).
    pub reads_events: Vec<bool>,
    arrivals: mpsc::UnboundedSender<Arrival>,
}

impl Served {
    /// Opens a project's state store and inbox, resolves its webhook secrets and prepares its
    /// connections (opened on first use). Also returns the receiving end of its arrivals.
    pub fn open(project: Project, options: &Options) -> Result<(Served, mpsc::UnboundedReceiver<Arrival>), String> {
        let name = project.config.name.clone();
        let store = SqliteStore::open(&project.state_path()).map_err(|e| format!("project `{name}`: {e}"))?;
        let inbox =
            Inbox::open(&project.dir.join(inbox::DEFAULT_PATH)).map_err(|e| format!("project `{name}`: {e}"))?;
        let secrets = crate::commands::secrets::resolver(&project);
        let registry = crate::registry::connectors();
        let reads_events = project
            .pipelines
            .iter()
            .map(|p| {
                let connector = project.config.connections.get(&p.source.connection).map(|c| c.connector.as_str());
                connector.and_then(|c| registry.get(c)).is_some_and(|c| c.event_driven())
            })
            .collect();
        let needs_mailchimp = super::upkeep::needs(&project).mailchimp_events;
        let mailchimp =
            mailchimp_hook(secrets.as_ref(), options, needs_mailchimp).map_err(|e| format!("project `{name}`: {e}"))?;
        let context = ConnectContext { project_dir: project.dir.clone(), secrets: secrets.clone() };
        let connections = Arc::new(Connections::new(&project, &registry, context));
        let (arrivals, receiver) = mpsc::unbounded_channel();
        let served = Served {
            name,
            project: Arc::new(project),
            store: Arc::new(store),
            inbox,
            secrets,
            connections,
            mailchimp,
            reads_events,
            arrivals,
        };
        Ok((served, receiver))
    }

    /// Tells the project's runner that work arrived. Never blocks; the runner coalesces what
    /// arrives while a pipeline runs into one more run.
    pub fn arrived(&self, arrival: Arrival) {
        // The receiver lives as long as the runner; after it stopped, nothing is to be done.
        let _ = self.arrivals.send(arrival);
    }

    /// Per inbox source read by a pipeline: the events not yet read by every pipeline reading
    /// it (after the lowest of their watermarks).
    pub fn inbox_depth(&self) -> Vec<(String, u64)> {
        let mut lowest: BTreeMap<&str, i64> = BTreeMap::new();
        for (p, _) in self.project.pipelines.iter().zip(&self.reads_events).filter(|(_, events)| **events) {
            let mark = self.store.watermark_get(&p.name).ok().flatten().and_then(|v| v.as_f64()).unwrap_or(0.0) as i64;
            let entry = lowest.entry(p.source.entity.as_str()).or_insert(mark);
            *entry = (*entry).min(mark);
        }
        lowest
            .into_iter()
            .filter_map(|(source, after)| Some((source.to_owned(), self.inbox.count_after(source, after).ok()?)))
            .collect()
    }

    /// Whether `arrival` is work for pipeline `i`.
    pub fn wants(&self, i: usize, arrival: &Arrival) -> bool {
        let p = &self.project.pipelines[i];
        if !p.schedule.as_ref().is_some_and(Schedule::on_events) {
            return false;
        }
        match arrival {
            Arrival::Events { source } => self.reads_events[i] && &p.source.entity == source,
            Arrival::Changed { connection, entity } => {
                &p.source.entity == entity && connection.as_ref().is_none_or(|c| c == &p.source.connection)
            }
        }
    }
}

/// The Mailchimp webhook secrets of a project, from its vault. Required when a pipeline reads
/// Mailchimp events (the service would otherwise receive none); optional otherwise.
fn mailchimp_hook(
    secrets: &dyn SecretResolver,
    options: &Options,
    needed: bool,
) -> Result<Option<MailchimpHook>, String> {
    let resolve = |name: &str| secrets.resolve(&engine::config::SecretRef::Secret(name.to_owned()));
    let token = match resolve(&options.mailchimp_token) {
        Ok(t) if t.len() >= 16 => t,
        Ok(_) => {
            return Err(format!(
                "the webhook token `{}` is too short to be a secret (16 characters at least)",
                options.mailchimp_token
            ));
        }
        Err(e) if needed => return Err(e),
        Err(_) => return Ok(None),
    };
    // Absent until the upkeep registers the webhook (or for a webhook registered by hand
    // before Mailchimp signed deliveries): deliveries are then authenticated by the token alone.
    let signing_secret = resolve(&options.mailchimp_signing_secret).ok();
    Ok(Some(MailchimpHook {
        token,
        signing: Arc::new(SigningSecret::new(&options.mailchimp_signing_secret, signing_secret)),
    }))
}
