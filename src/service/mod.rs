//! The long-running service behind `ml-connector serve`: one process that runs one or more
//! projects on their own.
//!
//! What it does, and where:
//! - [`runner`] runs each project's pipelines when they are due ([`schedule`]: intervals, cron,
//!   or when events arrive), never one pipeline twice at once, dependencies first, with the
//!   connections' concurrency and rate budgets shared by every run;
//! - [`intake_mailchimp`] and [`bc_notifications`] store webhook deliveries in the project's
//!   inbox before acknowledging them, then tell the runner ([`project::Arrival`]);
//! - [`upkeep`] keeps the Business Central subscriptions and the Mailchimp list webhook alive
//!   (when the service knows its public URL), [`tls`] serves HTTPS when given a certificate;
//! - [`http`] answers `/healthz`, `/readyz`, `/metrics` and routes the intakes;
//! - [`shutdown`]: on SIGTERM or Ctrl-C, no new work, runs stop after their writes in flight,
//!   exit 0.
//!
//! Start-up order matters: projects are opened (state, inbox, secrets) before the port is
//! bound, the port before the upkeep starts (creating a Business Central subscription calls the
//! service back), and the HTTP server stops only after the runs have, so that `/readyz` says
//! 503 and the intakes refuse politely while runs finish.

pub mod bc_notifications;
mod http;
mod intake_mailchimp;
mod metrics;
mod project;
mod runner;
pub mod schedule;
mod shutdown;
pub mod tls;
pub mod upkeep;

#[cfg(test)]
mod test_support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use engine::config::SecretRef;
use engine::load::Project;
use tokio::task::JoinSet;
use tracing::Instrument;

use self::bc_notifications::{BcNotifications, BcReceiver, Routes};
use self::metrics::Metrics;
use self::project::{Arrival, Served};
use self::shutdown::Shutdown;
use self::upkeep::{BcHook, ProjectUpkeep, SystemClock, Upkeep, UpkeepSettings};

/// How the service is set up (from the command line).
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// The vault secret (in each project's vault) holding the Mailchimp webhook URL's token.
    pub mailchimp_token: String,
    /// The vault secret holding the Mailchimp webhook's signing secret: read at start when
    /// present, written when the upkeep registers the webhook.
    pub mailchimp_signing_secret: String,
    /// The vault secret holding the Business Central notification URL's token.
    pub bc_token: String,
    /// The vault secret holding the `clientState` of Business Central subscriptions.
    pub bc_client_state: String,
    /// The service's address as Mailchimp and Business Central reach it; without it, no
    /// subscription or webhook is registered (they are then kept by hand).
    pub public_url: Option<String>,
    pub tls: Option<tls::TlsFiles>,
}

/// What the service's tasks and handlers share.
pub struct Service {
    pub projects: Vec<Arc<Served>>,
    pub metrics: Metrics,
    pub shutdown: Shutdown,
    /// The subscriptions' upkeep, for its metrics (when the service has a public URL).
    pub upkeep: Option<Arc<Upkeep>>,
}

/// Runs the service until SIGTERM or Ctrl-C. `Err` when it cannot start (or its listener dies).
pub async fn serve(projects: Vec<Project>, options: Options) -> Result<(), String> {
    let mut served = Vec::new();
    let mut arrivals = Vec::new();
    for project in projects {
        let (s, rx) = Served::open(project, &options)?;
        served.push(Arc::new(s));
        arrivals.push(rx);
    }
    check_distinct(&served)?;

    // Business Central notifications: a receiver per project whose vault has the token and
    // client state; changes are routed to the project's runner.
    let (trigger, mut changes) = bc_notifications::channel_trigger();
    let mut receivers = Vec::new();
    let mut bc_hooks = Vec::new();
    for s in &served {
        let resolve = |name: &str| s.secrets.resolve(&SecretRef::Secret(name.to_owned())).ok();
        let hook = match (resolve(&options.bc_token), resolve(&options.bc_client_state)) {
            (Some(token), Some(client_state)) if token.len() >= 16 => {
                let routes = Routes::default();
                receivers.push(BcReceiver {
                    project: s.name.clone(),
                    token: token.clone(),
                    client_state: client_state.clone(),
                    inbox: s.inbox.clone(),
                    routes: routes.clone(),
                });
                options.public_url.as_deref().map(|url| BcHook {
                    notification_url: bc_notifications::notification_url(url, &token),
                    client_state,
                    routes,
                })
            }
            (Some(_), Some(_)) => {
                tracing::warn!(project = %s.name, secret = %options.bc_token, "The Business Central webhook token is shorter than 16 characters; notifications are not received.");
                None
            }
            _ => None,
        };
        bc_hooks.push(hook);
    }
    let upkeep = options.public_url.as_deref().map(|url| {
        let projects = served
            .iter()
            .zip(bc_hooks)
            .map(|(s, bc)| ProjectUpkeep {
                project: s.project.clone(),
                secrets: s.secrets.clone(),
                store: s.store.clone(),
                bc,
                mailchimp_url: s
                    .mailchimp
                    .as_ref()
                    .map(|m| format!("{}/hooks/mailchimp/{}", url.trim_end_matches('/'), m.token)),
                mailchimp_signing: s.mailchimp.as_ref().map(|m| m.signing.clone()),
            })
            .collect();
        Arc::new(Upkeep::new(projects, Arc::new(SystemClock), UpkeepSettings::default()))
    });

    let service =
        Arc::new(Service { projects: served, metrics: Metrics::default(), shutdown: Shutdown::default(), upkeep });
    let counting = service.clone();
    let observer: bc_notifications::DeliveryObserver = Arc::new(move |project, counts| {
        let source = bc_notifications::INBOX_SOURCE;
        counting.metrics.webhooks(project, source, metrics::Delivery::Stored, counts.stored);
        counting.metrics.webhooks(project, source, metrics::Delivery::Duplicate, counts.duplicate);
        counting.metrics.webhooks(project, source, metrics::Delivery::Refused, counts.refused);
    });
    let bc_hooks = BcNotifications::new(receivers, trigger).observed_by(observer).router();
    let app = http::router(service.clone(), bc_hooks);
    let tcp = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", options.listen))?;
    let address = tcp.local_addr().map_err(|e| e.to_string())?;

    let mut runners = JoinSet::new();
    for (s, rx) in service.projects.iter().zip(arrivals) {
        let span = tracing::info_span!("project", project = %s.name);
        runners.spawn(runner::drive(service.clone(), s.clone(), rx).instrument(span));
    }
    let routing = service.clone();
    tokio::spawn(async move {
        while let Some(change) = changes.recv().await {
            if let Some(s) = routing.projects.iter().find(|s| s.name == change.project) {
                s.arrived(Arrival::Events { source: bc_notifications::INBOX_SOURCE.to_owned() });
                s.arrived(Arrival::Changed { connection: change.connection, entity: change.entity });
            }
        }
    });

    // The HTTP server outlives the runs (see the module docs): it stops when told.
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = http_stopped.await;
    };
    let scheme = if options.tls.is_some() { "https" } else { "http" };
    let mut server = match &options.tls {
        Some(files) => {
            let config = tls::server_config(files)?;
            tokio::spawn(tls::serve_tls(tcp, config, app, stopped))
        }
        None => tokio::spawn(async move { axum::serve(tcp, app).with_graceful_shutdown(stopped).await }),
    };
    println!("serving on {scheme}://{address}");
    for s in &service.projects {
        tracing::info!(project = %s.name, mailchimp_intake = s.mailchimp.is_some(), "Serving a project.");
    }

    // After start-up: what needs the server answering.
    if let Some(upkeep) = &service.upkeep {
        let s = service.clone();
        tokio::spawn(upkeep.clone().run(async move { s.shutdown.begun().await }));
    }

    tokio::select! {
        _ = shutdown::signal() => {}
        result = &mut server => {
            service.shutdown.begin();
            return Err(match result {
                Ok(Ok(())) => "the HTTP server stopped".to_owned(),
                Ok(Err(e)) => format!("the HTTP server failed: {e}"),
                Err(e) => format!("the HTTP server failed: {e}"),
            });
        }
    }
    service.shutdown.begin();
    while runners.join_next().await.is_some() {}
    let _ = stop_http.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "The HTTP server stopped with an error."),
        Err(e) => tracing::warn!(error = %e, "The HTTP server task failed."),
    }
    tracing::info!("Stopped; every run recorded its writes.");
    Ok(())
}

/// Projects must be told apart: by name in metrics and logs, by token in webhook URLs.
fn check_distinct(served: &[Arc<Served>]) -> Result<(), String> {
    let mut names = BTreeSet::new();
    for s in served {
        if !names.insert(&s.name) {
            return Err(format!("two projects are named `{}`; metrics and logs could not tell them apart", s.name));
        }
    }
    for (i, a) in served.iter().enumerate() {
        for b in &served[i + 1..] {
            if let (Some(x), Some(y)) = (&a.mailchimp, &b.mailchimp)
                && x.token == y.token
            {
                return Err(format!(
                    "projects `{}` and `{}` have the same Mailchimp webhook token; each needs its own",
                    a.name, b.name
                ));
            }
        }
    }
    Ok(())
}
