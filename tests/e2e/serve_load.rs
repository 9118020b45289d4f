//! `ml-connector serve` under load, through the real binary and both sandboxes.
//!
//! Business Central refuses a subscription, or lets one lapse, when its validation handshake is
//! not answered within 5 seconds; handshakes come whenever a subscription is created or renewed,
//! so possibly in the middle of a burst of deliveries. The service is started with a public URL
//! (so its upkeep creates the Business Central subscription and registers the Mailchimp webhook
//! itself), then 3,000 events arrive from 8 concurrent clients (Mailchimp form posts and
//! Business Central notification batches) while handshakes are probed directly every 25 ms and
//! through the Business Central sandbox, which enforces its 5-second limit, by subscribing
//! over and over. Pipelines with `schedule: webhook` run meanwhile, as they would.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Killed, bin, blocking, run};
use connector_business_central::{BcClient, BcSettings, subscriptions};
use engine::config::SecretRef;
use engine::connector::SecretResolver;
use sandbox_business_central::SandboxConfig as BcConfig;
use sandbox_mailchimp::DEFAULT_API_KEY;
use serde_json::{Value, json};

const MC_TOKEN: &str = "mc-token-0123456789abcdef";
const BC_TOKEN: &str = "bc-token-0123456789abcdef";
const CLIENT_STATE: &str = "client-state-secret-42";
const MAILCHIMP_EVENTS: usize = 1500;
const BC_EVENTS: usize = 1500;
const CLIENTS_PER_KIND: usize = 4;
/// Notifications per Business Central delivery.
const BATCH: usize = 5;

struct Fixed;
impl SecretResolver for Fixed {
    fn resolve(&self, _: &SecretRef) -> Result<String, String> {
        Ok(BcConfig::default().client_secret)
    }
}

async fn eventually<T>(limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(t) = check().await {
            return Some(t);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_are_answered_well_within_five_seconds_while_3000_events_arrive() {
    let (mc, bc, list) = common::mailchimp_and_business_central(Duration::from_millis(200)).await;

    let dir = common::project_dir(&format!(
        "version: 1\nname: load\nconnections:\n  events: {{connector: inbox}}\n  out: {{connector: jsonl, settings: {{directory: out}}}}\n  mailchimp:\n    connector: mailchimp\n    settings: {mc}\n  bc:\n    connector: business-central\n    settings: {bc}\nvars: {{list_id: {list}}}\n",
        mc = common::mailchimp_settings(&mc),
        bc = common::business_central_settings(&bc),
    ));
    let d = dir.path().to_path_buf();
    for (name, connection, entity, cursor) in [
        ("customers", "bc", "customers", "{field: lastModifiedDateTime}"),
        ("events", "events", "mailchimp", "{field: seq, kind: number}"),
    ] {
        std::fs::write(
            d.join("pipelines").join(format!("{name}.yaml")),
            format!(
                "version: 1\nname: {name}\nschedule: webhook\nsource: {{connection: {connection}, entity: {entity}, cursor: {cursor}}}\nkey: \"{{{{ record.email }}}}\"\nfields: {{email: \"{{{{ record.email }}}}\"}}\ntarget: {{connection: out, resource: records, params: {{file: {name}.jsonl}}}}\n"
            ),
        )
        .unwrap();
    }
    // A free port, so the public URL is known before the service starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let dd = d.clone();
    blocking(move || {
        for (name, value) in [
            ("mailchimp_api_key", DEFAULT_API_KEY.to_owned()),
            ("bc_client_secret", BcConfig::default().client_secret),
            ("mailchimp_webhook_token", MC_TOKEN.to_owned()),
            ("bc_webhook_token", BC_TOKEN.to_owned()),
            ("bc_client_state", CLIENT_STATE.to_owned()),
        ] {
            assert_eq!(run(&dd, &["secrets", "set", name], &value).0, 0);
        }
        let (code, out) = run(&dd, &["validate"], "");
        assert_eq!(code, 0, "{out}");
    })
    .await;

    let mut serve = Killed(
        bin()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--public-url", &base])
            .current_dir(&d)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    let mut stdout = BufReader::new(serve.0.stdout.take().unwrap());
    blocking(move || stdout.read_line(&mut line).map(|_| line)).await.unwrap();
    let bc_url = format!("{base}/hooks/business-central/{BC_TOKEN}");
    let mc_url = format!("{base}/hooks/mailchimp/{MC_TOKEN}");

    // The upkeep subscribed to customers and registered the Mailchimp webhook on its own.
    let admin = bc.admin();
    let subscribed = eventually(Duration::from_secs(20), async || {
        let subs = admin.subscriptions();
        (subs.len() == 1 && subs[0]["notificationUrl"] == bc_url.as_str()).then_some(())
    });
    assert!(subscribed.await.is_some(), "the service subscribed: {:?}", admin.subscriptions());
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let hooks_url = format!("{}/3.0/lists/{list}/webhooks", mc.base_url());
    let registered = eventually(Duration::from_secs(20), async || {
        let r = http.get(&hooks_url).basic_auth("any", Some(DEFAULT_API_KEY)).send().await.ok()?;
        let v: Value = r.json().await.ok()?;
        (v["webhooks"].as_array().map(Vec::len) == Some(1)).then_some(v)
    });
    let hooks = registered.await.expect("the service registered the Mailchimp webhook");
    assert_eq!(hooks["webhooks"][0]["url"], mc_url.as_str());
    assert_eq!(hooks["webhooks"][0]["sources"]["api"], false);
    // It kept the signing secret Mailchimp showed once, and checks it: the deliveries below are
    // signed as Mailchimp signs them, and an unsigned one is refused.
    let vault_path = d.join(".ml-connector/vault.json"); // the default `state.vault`
    let key = vault::MasterKeySource::from_base64(common::MASTER_KEY, "tests").unwrap();
    let signing = eventually(Duration::from_secs(10), async || {
        vault::Vault::open(&vault_path, &key).ok()?.get("mailchimp_webhook_signing_secret").ok()?
    });
    let signing: Arc<str> = signing.await.expect("the signing secret is in the vault").as_str().into();
    let unsigned = http
        .post(&mc_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("type=unsubscribe&fired_at=2026-01-01+00%3A00%3A00&data%5Blist_id%5D=a1&data%5Bemail%5D=x%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401, "an unsigned delivery is refused");

    // The load.
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for c in 0..CLIENTS_PER_KIND {
        let (mc_http, url, mc_failures, signing) = (http.clone(), mc_url.clone(), failures.clone(), signing.clone());
        senders.spawn(async move {
            for n in (c..MAILCHIMP_EVENTS).step_by(CLIENTS_PER_KIND) {
                let body = format!(
                    "type=unsubscribe&fired_at=2026-01-01+00%3A00%3A00&data%5Blist_id%5D=a1&data%5Bemail%5D=user{n}%40example.com&data%5Breason%5D=manual"
                );
                let now = jiff::Timestamp::now().as_second();
                let r = mc_http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-mailchimp-signature", connector_mailchimp::webhooks::sign(&signing, body.as_bytes(), now))
                    .body(body)
                    .send()
                    .await;
                if !r.is_ok_and(|r| r.status() == 200) {
                    mc_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let (bc_http, url, bc_failures) = (http.clone(), bc_url.clone(), failures.clone());
        senders.spawn(async move {
            let mine: Vec<usize> = (c..BC_EVENTS).step_by(CLIENTS_PER_KIND).collect();
            for chunk in mine.chunks(BATCH) {
                let value: Vec<_> = chunk
                    .iter()
                    .map(|n| {
                        json!({"subscriptionId": "0123456789abcdef0123456789abcdef", "clientState": CLIENT_STATE,
                               "expirationDateTime": "2030-01-04T00:00:00Z",
                               "resource": format!("api/v2.0/companies(c)/customers({n})"),
                               "changeType": "updated", "lastModifiedDateTime": format!("2030-01-01T00:00:00.{n:04}Z")})
                    })
                    .collect();
                let r = bc_http.post(&url).json(&json!({"value": value})).send().await;
                if !r.is_ok_and(|r| r.status() == 202) {
                    bc_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    // Probes until the senders are done: a direct handshake every 25 ms, and every 200 ms a
    // real subscription through the sandbox (created, then renewed: a handshake each time).
    let settings: BcSettings = serde_json::from_value(json!({
        "tenant": BcConfig::default().tenant, "environment": "production", "company": "CRONUS USA, Inc.",
        "client_id": "bc-client", "credential": {"type": "secret", "secret": {"secret": "x"}},
        "token_url": bc.token_url(), "base_url": bc.base_url(),
    }))
    .unwrap();
    let client = BcClient::connect(&settings, &Fixed).await.unwrap();
    let resource = subscriptions::resource_for(&client, "v2.0", "items");
    let mut probe_subscription = None;
    let mut direct = Vec::new();
    let mut through_bc = Vec::new();
    let mut last = Instant::now() - Duration::from_secs(1);
    while !senders.is_empty() {
        let t = Instant::now();
        let r = http.post(format!("{bc_url}?validationToken=probe-{}", direct.len())).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), format!("probe-{}", direct.len()));
        direct.push(t.elapsed());
        if last.elapsed() > Duration::from_millis(200) {
            last = Instant::now();
            probe_subscription = Some(match &probe_subscription {
                None => subscriptions::create(&client, "v2.0", &resource, &bc_url, CLIENT_STATE).await.unwrap(),
                Some(s) => subscriptions::renew(&client, "v2.0", s, CLIENT_STATE).await.unwrap(),
            });
            through_bc.push(last.elapsed());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(25)) => {}
            Some(joined) = senders.join_next() => joined.unwrap(),
        }
    }
    let elapsed = started.elapsed();

    assert_eq!(failures.load(Ordering::Relaxed), 0, "every delivery was acknowledged");
    let inbox = inbox::Inbox::open(&d.join(inbox::DEFAULT_PATH)).unwrap();
    assert_eq!(inbox.count("mailchimp").unwrap() as usize, MAILCHIMP_EVENTS);
    assert_eq!(inbox.count("business-central").unwrap() as usize, BC_EVENTS);
    let handshakes: Vec<_> = admin.notifications().into_iter().filter(|n| n.kind == "handshake").collect();
    assert!(handshakes.iter().all(|h| h.status == Some(200)), "Business Central saw every handshake answered in 5 s");
    direct.sort();
    through_bc.sort();
    println!(
        "load: {} events ({MAILCHIMP_EVENTS} Mailchimp, {BC_EVENTS} Business Central in batches of {BATCH}) from {} clients in {elapsed:.2?} ({:.0} events/s)",
        MAILCHIMP_EVENTS + BC_EVENTS,
        2 * CLIENTS_PER_KIND,
        (MAILCHIMP_EVENTS + BC_EVENTS) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "direct handshakes: {}, p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        direct.len(),
        percentile(&direct, 0.5),
        percentile(&direct, 0.99),
        direct[direct.len() - 1]
    );
    println!(
        "subscriptions created or renewed through Business Central meanwhile: {}, p50 {:.2?}, max {:.2?}",
        through_bc.len(),
        percentile(&through_bc, 0.5),
        through_bc[through_bc.len() - 1]
    );
    assert!(direct.len() >= 5 && !through_bc.is_empty(), "the probes ran during the load");
    assert!(direct[direct.len() - 1] < Duration::from_secs(1), "max handshake {:?}", direct[direct.len() - 1]);
    assert!(through_bc[through_bc.len() - 1] < Duration::from_secs(2), "max {:?}", through_bc[through_bc.len() - 1]);
    assert!(elapsed < Duration::from_secs(120), "bounded in time: {elapsed:?}");

    // What operators see: the expiry in the metrics and in `status`.
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let expiry = metrics
        .lines()
        .find(|l| l.starts_with("mlc_subscription_expiry_seconds{"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(expiry.contains("entity=\"customers\""), "{expiry}");
    let seconds: f64 = expiry.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(seconds > 2.0 * 86400.0, "{expiry}");
    let dd = d.clone();
    let (code, out) = blocking(move || run(&dd, &["status"], "")).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("business-central bc/customers") && out.contains("expires "), "{out}");
    assert!(out.contains(&format!("mailchimp mailchimp/{list}")) && out.contains("does not expire"), "{out}");
    // The signing secret is in the vault, encrypted, and nowhere else.
    for file in ["state.db", "inbox.db", "vault.json"] {
        let bytes = std::fs::read(d.join(".ml-connector").join(file)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(&*signing), "the signing secret in plain text in {file}");
    }
    assert!(!metrics.contains(&*signing) && !out.contains(&*signing));

    drop(serve);
    bc.shutdown().await;
    mc.shutdown().await;
}
