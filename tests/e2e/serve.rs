//! `ml-connector serve` as an operator meets it: the real binary, real sandboxes, real signals.
//!
//! - a scheduled pipeline fires on its own, more than once, never overlapping; SIGTERM in the
//!   middle of a run exits 0 after the writes in flight (with `/readyz` and the intakes at 503
//!   meanwhile), and the next start finishes the work without writing anything twice;
//! - a Mailchimp unsubscribe POSTed to the service reaches Business Central consent through the
//!   inbox without anyone running `run`; a service killed right after acknowledging an event
//!   processes it exactly once after a restart; `/metrics` counts both;
//! - two projects in one process keep their state, inboxes and webhooks apart, and a run missed
//!   while the service was down runs once when it starts.

use crate::common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{Killed, bin, blocking, run};
use engine::executor::INTERRUPTED;
use engine::state::{Operation, StateStore};
use sandbox_business_central::{Sandbox as Bc, SandboxConfig as BcConfig};
use sandbox_mailchimp::{DEFAULT_API_KEY, Faults, Sandbox as Mc, SandboxConfig as McConfig};
use serde_json::json;
use state::{AuditFilter, RunRecord, SqliteStore};

/// A running `serve` and the base URL it printed.
struct Serving {
    process: Killed,
    base: String,
    log: PathBuf,
}

impl Serving {
    /// Starts `serve` in `dir` with `args` and the environment `env`, its log in `dir/serve-<n>.log`.
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serving {
        let n = std::fs::read_dir(dir).unwrap().count();
        let log = dir.join(format!("serve-{n}.log"));
        let mut command = bin();
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut process = Killed(command.spawn().unwrap());
        let mut line = String::new();
        BufReader::new(process.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("serving on ").unwrap_or_else(|| panic!("{line}{}", read(&log))).to_owned();
        Serving { process, base, log }
    }

    fn log(&self) -> String {
        read(&self.log)
    }

    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.process.0.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits (at most `limit`) for the process to exit.
    fn exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.process.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not exit:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Polls `check` every 25 ms until it holds; fails with `what` after `limit`.
async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post_form(url: &str, body: &str) -> u16 {
    let client = reqwest::Client::new();
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The value of one series in a Prometheus text, 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

fn store(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join(".ml-connector/state.db")).unwrap()
}

fn runs(dir: &Path, pipeline: &str) -> Vec<RunRecord> {
    let mut runs = store(dir).recent_runs(Some(pipeline), 1000).unwrap();
    runs.reverse();
    runs
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn secrets(dir: &Path, pairs: &[(&str, &str)]) {
    for (name, value) in pairs {
        let (code, out) = run(dir, &["secrets", "set", name], value);
        assert_eq!(code, 0, "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_on_its_own_without_overlap_and_sigterm_mid_run_loses_and_repeats_nothing() {
    let mc = Mc::start(McConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let list = mc.admin().create_list("People");
    // Slow writes, two at a time, five records a page: a run of 30 takes ~4 s, far longer than
    // its 1 s interval.
    mc.admin().set_faults(Faults { latency_ms: 250, ..Faults::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    write(
        &d,
        "ml-connector.yaml",
        &format!(
            "version: 1\nname: scheduled\nconnections:\n  files: {{connector: jsonl, settings: {{directory: data}}}}\n  mailchimp:\n    connector: mailchimp\n    concurrency: 2\n    settings: {mc}\nvars: {{list_id: {list}}}\n",
            mc = common::mailchimp_settings(&mc),
        ),
    );
    write(
        &d,
        "pipelines/members.yaml",
        "version: 1\nname: members\nsource: {connection: files, entity: people.jsonl, page_size: 5}\nkey: \"{{ record.email }}\"\nfields:\n  email_address: \"{{ record.email }}\"\n  status_if_new: subscribed\ntarget: {connection: mailchimp, resource: member, params: {list_id: \"{{ vars.list_id }}\"}}\nschedule: {every: 1s}\n",
    );
    let people: String = (0..30).map(|i| format!("{{\"email\": \"person{i:02}@example.com\"}}\n")).collect();
    write(&d, "data/people.jsonl", &people);
    let dd = d.clone();
    blocking(move || secrets(&dd, &[("mailchimp_api_key", DEFAULT_API_KEY)])).await;

    // 1. The first run starts on its own; SIGTERM arrives in its middle.
    let mut serving = Serving::start(&d, &[], &[]);
    let members = || mc.admin().members(&list).len();
    eventually("the scheduled run wrote a few members", Duration::from_secs(15), || members() >= 5).await;
    serving.terminate();
    // While the writes in flight finish: not ready, and the intakes ask senders to come back.
    let mut saw_not_ready = false;
    let mut hooks_refused = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !(saw_not_ready && hooks_refused) {
        match reqwest::get(format!("{}/readyz", serving.base)).await {
            Ok(r) if r.status() == 503 => saw_not_ready = true,
            Ok(_) => {}
            Err(_) => break, // already gone
        }
        if let Ok(r) = reqwest::Client::new().post(format!("{}/hooks/mailchimp/anything", serving.base)).send().await {
            hooks_refused |= r.status() == 503;
        }
    }
    assert!(
        saw_not_ready && hooks_refused,
        "readyz 503: {saw_not_ready}, hooks 503: {hooks_refused}\n{}",
        serving.log()
    );
    let status = serving.exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", serving.log());
    let written = members();
    assert!(written < 30, "the run was interrupted, not finished: {written}");
    let first = runs(&d, "members");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].error.as_deref(), Some(INTERRUPTED));
    assert_eq!(first[0].counts.created as usize, written, "every accepted write was recorded");

    // 2. The next start finishes the work, then keeps firing every second.
    mc.admin().set_faults(Faults::default());
    let mut serving = Serving::start(&d, &[], &[]);
    eventually("all 30 members", Duration::from_secs(15), || members() == 30).await;
    let (_, before) = get(&format!("{}/metrics", serving.base)).await;
    let dd = d.clone();
    eventually("three more runs", Duration::from_secs(10), move || runs(&dd, "members").len() >= 4).await;
    let (status, after) = get(&format!("{}/metrics", serving.base)).await;
    assert_eq!(status, 200);
    let succeeded = "mlc_runs_total{project=\"scheduled\",pipeline=\"members\",result=\"succeeded\"}";
    assert!(metric(&after, succeeded) > metric(&before, succeeded), "{before}\n---\n{after}");
    assert_eq!(
        metric(&after, "mlc_records_total{project=\"scheduled\",pipeline=\"members\",outcome=\"created\"}"),
        (30 - written) as f64
    );
    assert!(after.contains("mlc_api_calls_total{system=\"mailchimp\",status=\"200\"}"), "{after}");
    assert!(after.contains("mlc_run_duration_seconds_count{project=\"scheduled\",pipeline=\"members\"}"), "{after}");
    serving.terminate();
    assert_eq!(serving.exit(Duration::from_secs(10)).code(), Some(0), "{}", serving.log());

    // Never two runs at once: each started after the previous one finished.
    let all = runs(&d, "members");
    for pair in all.windows(2) {
        let finished = pair[0].finished_at.as_deref().expect("every run finished");
        assert!(pair[1].started_at.as_str() >= finished, "overlapping runs: {pair:?}");
    }
    // Nothing written twice: one PUT per member at Mailchimp, one create per key in the audit.
    let mut puts: BTreeMap<String, usize> = BTreeMap::new();
    for r in mc.admin().requests().iter().filter(|r| r.method == "PUT" && r.path.contains("/members/")) {
        *puts.entry(r.path.clone()).or_default() += 1;
    }
    assert_eq!(puts.len(), 30);
    assert!(puts.values().all(|n| *n == 1), "{puts:?}");
    let creates =
        store(&d).audit_query(&AuditFilter { operation: Some(Operation::Create), ..AuditFilter::default() }).unwrap();
    assert_eq!(creates.len(), 30);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribe_reaches_business_central_through_the_inbox_and_a_kill_after_the_ack_loses_nothing() {
    let bc = Bc::start(BcConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let company = bc.admin().company_id("CRONUS USA, Inc.").unwrap();
    let customer = |name: &str, email: &str| {
        let c = bc.admin().create_customer(&company, json!({"type": "Person", "displayName": name, "email": email}));
        c["id"].as_str().unwrap().to_owned()
    };
    let ada = customer("Ada Lovelace", "ada@example.com");
    let grace = customer("Grace Hopper", "grace@example.com");
    bc.admin().update_consent(&company, &ada, json!({"marketingConsent": true, "consentStatus": "Opted_x0020_In"}));
    bc.admin().update_consent(&company, &grace, json!({"marketingConsent": false, "consentStatus": "Opted_x0020_Out"}));

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    write(
        &d,
        "ml-connector.yaml",
        &format!(
            "version: 1\nname: return-flow\nconnections:\n  events: {{connector: inbox}}\n  business_central:\n    connector: business-central\n    settings: {bc}\nvars: {{consent_entity: contoso/marketing/v1.0/customerConsents}}\n",
            bc = common::business_central_settings(&bc),
        ),
    );
    let stock =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/mailchimp-to-business-central/pipelines/consent.yaml");
    // Alone here: without the address-change pipeline it runs after.
    write(&d, "pipelines/consent.yaml", &read(&stock).replace("depends_on: [email-changes]\n", ""));
    const TOKEN: &str = "hook-token-0123456789abcdef";
    let dd = d.clone();
    blocking(move || secrets(&dd, &[("bc_client_secret", "bc-secret"), ("mailchimp_webhook_token", TOKEN)])).await;

    // The second page the consent pipeline reads kills the process (SIGKILL, nothing flushed):
    // right after the service acknowledged Grace's event, before it wrote anything of it.
    let mut serving = Serving::start(&d, &[], &[("ML_CONNECTOR_FAILPOINT", "read-page:2")]);
    let hook = format!("{}/hooks/mailchimp/{TOKEN}", serving.base);
    assert_eq!(get(&hook).await.0, 200, "Mailchimp's validation GET");
    assert_eq!(
        post_form(&format!("{}/hooks/mailchimp/wrong-token-0123456789", serving.base), "type=unsubscribe").await,
        404
    );

    // 1. Ada unsubscribes: the webhook reaches BC consent with nobody running `run`.
    let unsubscribe =
        "type=unsubscribe&fired_at=2026-03-01+10%3A00%3A00&data%5Bemail%5D=ada%40example.com&data%5Blist_id%5D=abc";
    assert_eq!(post_form(&hook, unsubscribe).await, 200);
    let consent = |id: &str| bc.admin().consent(&company, id).unwrap_or_default();
    // (A new customer's consent is already `false` with a blank status: wait for the status.)
    eventually("Ada's consent is withdrawn in BC", Duration::from_secs(15), || {
        consent(&ada)["consentStatus"] == "Opted_x0020_Out"
    })
    .await;
    assert_eq!(consent(&ada)["marketingConsent"], false);
    // A repeated delivery is acknowledged and dropped.
    assert_eq!(post_form(&hook, unsubscribe).await, 200);
    let (_, metrics) = get(&format!("{}/metrics", serving.base)).await;
    let received = |result: &str| {
        metric(
            &metrics,
            &format!(
                "mlc_webhook_events_received_total{{project=\"return-flow\",source=\"mailchimp\",result=\"{result}\"}}"
            ),
        )
    };
    assert_eq!((received("stored"), received("duplicate")), (1.0, 1.0), "{metrics}");
    assert!(
        metric(&metrics, "mlc_webhook_events_processed_total{project=\"return-flow\",pipeline=\"consent\"}") >= 1.0,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "mlc_records_total{project=\"return-flow\",pipeline=\"consent\",outcome=\"created\"}") >= 1.0,
        "{metrics}"
    );
    assert!(metrics.contains("mlc_inbox_depth{project=\"return-flow\",source=\"mailchimp\"} 0"), "{metrics}");

    // 2. Grace subscribes; the service acknowledges, then dies before writing it.
    bc.admin().clear_requests();
    let subscribe =
        "type=subscribe&fired_at=2026-03-01+11%3A00%3A00&data%5Bemail%5D=grace%40example.com&data%5Blist_id%5D=abc";
    assert_eq!(post_form(&hook, subscribe).await, 200);
    let status = serving.exit(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal: {status:?}");
    assert_eq!(consent(&grace)["marketingConsent"], false, "nothing of it was written yet");

    // 3. Restarted, the service finds the acknowledged event in the inbox and applies it once.
    let mut serving = Serving::start(&d, &[], &[]);
    eventually("Grace's consent is given in BC", Duration::from_secs(15), || {
        consent(&grace)["marketingConsent"] == true
    })
    .await;
    let (_, metrics) = get(&format!("{}/metrics", serving.base)).await;
    assert!(metrics.contains("mlc_inbox_depth{project=\"return-flow\",source=\"mailchimp\"} 0"), "{metrics}");
    serving.terminate();
    assert_eq!(serving.exit(Duration::from_secs(10)).code(), Some(0), "{}", serving.log());
    let writes: Vec<_> = bc
        .admin()
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.path.contains("customerConsents"))
        .collect();
    assert_eq!(writes.len(), 1, "exactly one consent write, for Grace: {writes:?}");
    let audit =
        store(&d).audit_query(&AuditFilter { pipeline: Some("consent".into()), ..AuditFilter::default() }).unwrap();
    let written: Vec<&str> = audit
        .iter()
        .filter(|a| matches!(a.operation, Operation::Create | Operation::Update))
        .map(|a| a.key.as_str())
        .collect();
    assert_eq!(written, ["ada@example.com", "grace@example.com"]);
    bc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projects_in_one_process_keep_apart_and_a_run_missed_while_down_runs_once_on_start() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_path_buf();
    const TOKEN_A: &str = "token-of-project-a-0123456789";
    const TOKEN_B: &str = "token-of-project-b-0123456789";
    // Each project: an inbox-driven pipeline (`webhook` by default) and timed ones.
    let (a, b) = blocking(move || {
        let project = |name: &str, token: &str, timed: &[(&str, &str)]| {
            let d = r.join(name);
            write(
                &d,
                "ml-connector.yaml",
                &format!("version: 1\nname: {name}\nconnections:\n  files: {{connector: jsonl, settings: {{directory: data}}}}\n  out: {{connector: jsonl, settings: {{directory: out}}}}\n  events: {{connector: inbox}}\n"),
            );
            write(&d, "data/people.jsonl", &format!("{{\"id\": \"{name}-1\"}}\n"));
            write(
                &d,
                "pipelines/events.yaml",
                "version: 1\nname: events\nsource: {connection: events, entity: mailchimp, cursor: {field: seq, kind: number}}\nkey: \"{{ record.seq }}\"\nfields: {type: \"{{ record.type }}\", email: \"{{ record.email }}\"}\ntarget: {connection: out, resource: records, params: {file: events.jsonl}}\n",
            );
            for (name, schedule) in timed {
                write(
                    &d,
                    &format!("pipelines/{name}.yaml"),
                    &format!("version: 1\nname: {name}\nsource: {{connection: files, entity: people.jsonl}}\nkey: \"{{{{ record.id }}}}\"\nfields: {{id: \"{{{{ record.id }}}}\"}}\ntarget: {{connection: out, resource: records, params: {{file: {name}.jsonl}}}}\nschedule: {schedule}\n"),
                );
            }
            secrets(&d, &[("mailchimp_webhook_token", token)]);
            d
        };
        let a = project("a", TOKEN_A, &[("hourly", "{every: 1h}"), ("fresh", "{every: 1h}"), ("monthly", "{cron: \"0 23 L * *\"}")]);
        let b = project("b", TOKEN_B, &[("copy", "{every: 1s}")]);
        (a, b)
    })
    .await;
    // History: `hourly` last ran three hours ago (two runs missed), `fresh` ten minutes ago,
    // `monthly` at the last month-end.
    let now = jiff::Timestamp::now();
    let ago = |minutes: i64| (now - jiff::SignedDuration::from_mins(minutes)).to_string();
    let seed = store(&a);
    let last_month_end = {
        let schedule = engine::schedule::Schedule::compile(&engine::config::ScheduleConfig::clock(
            engine::config::ClockConfig::Cron { expression: "0 23 L * *".into(), timezone: None },
        ))
        .unwrap();
        // The latest month-end before now: step forward from 40 days ago.
        let mut t = now - jiff::SignedDuration::from_hours(24 * 40);
        while let Some(next) = schedule.next_after(t).filter(|n| *n < now) {
            t = next;
        }
        t.to_string()
    };
    for (id, pipeline, started) in
        [("seed-1", "hourly", ago(180)), ("seed-2", "fresh", ago(10)), ("seed-3", "monthly", last_month_end)]
    {
        seed.run_started(id, pipeline, &started).unwrap();
        seed.run_finished(id, &started, &Default::default(), None).unwrap();
    }
    drop(seed);

    let a_path = a.to_str().unwrap().to_owned();
    let b_path = b.to_str().unwrap().to_owned();
    let mut serving = Serving::start(&a, &["-p", &a_path, "-p", &b_path], &[]);
    let base = serving.base.clone();

    // Each webhook token reaches its own project's inbox, and its inbox-driven pipeline.
    let event = |email: &str| format!("type=unsubscribe&fired_at=2026-03-01+10%3A00%3A00&data%5Bemail%5D={email}");
    assert_eq!(post_form(&format!("{base}/hooks/mailchimp/{TOKEN_A}"), &event("ann%40a.example")).await, 200);
    assert_eq!(post_form(&format!("{base}/hooks/mailchimp/{TOKEN_B}"), &event("bob%40b.example")).await, 200);
    assert_eq!(post_form(&format!("{base}/hooks/mailchimp/token-of-project-c-0123456789"), &event("x")).await, 404);
    let (ea, eb) = (a.join("out/events.jsonl"), b.join("out/events.jsonl"));
    eventually("both events processed", Duration::from_secs(10), || {
        read(&ea).contains("ann@a.example") && read(&eb).contains("bob@b.example")
    })
    .await;
    assert!(!read(&ea).contains("bob@") && !read(&eb).contains("ann@"), "{}\n{}", read(&ea), read(&eb));
    let bb = b.clone();
    eventually("b's interval pipeline ran twice", Duration::from_secs(10), move || runs(&bb, "copy").len() >= 2).await;

    let (_, metrics) = get(&format!("{base}/metrics")).await;
    for series in [
        "mlc_runs_total{project=\"a\",pipeline=\"hourly\",result=\"succeeded\"} 1",
        "mlc_runs_total{project=\"a\",pipeline=\"events\",result=\"succeeded\"}",
        "mlc_runs_total{project=\"b\",pipeline=\"copy\",result=\"succeeded\"}",
        "mlc_webhook_events_received_total{project=\"a\",source=\"mailchimp\",result=\"stored\"} 1",
        "mlc_webhook_events_received_total{project=\"b\",source=\"mailchimp\",result=\"stored\"} 1",
    ] {
        assert!(metrics.contains(series), "missing {series}:\n{metrics}");
    }
    serving.terminate();
    assert_eq!(serving.exit(Duration::from_secs(10)).code(), Some(0), "{}", serving.log());

    // The missed hourly run ran once; the fresh one and the month-end one waited for their time.
    assert_eq!(runs(&a, "hourly").len(), 2, "{:?}", runs(&a, "hourly"));
    assert_eq!(runs(&a, "fresh").len(), 1);
    assert_eq!(runs(&a, "monthly").len(), 1);
    assert_eq!(read(&a.join("out/hourly.jsonl")).lines().count(), 1);
    // Each project's state holds its own pipelines only.
    let pipelines = |d: &Path| {
        let mut names: Vec<String> =
            store(d).recent_runs(None, 1000).unwrap().into_iter().map(|r| r.pipeline).collect();
        names.sort();
        names.dedup();
        names
    };
    assert_eq!(pipelines(&a), ["events", "fresh", "hourly", "monthly"]);
    assert_eq!(pipelines(&b), ["copy", "events"]);
}
