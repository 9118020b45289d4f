//! Bad input from outside, and what becomes of it.
//!
//! - Hostile webhook deliveries against the real `ml-connector serve`: oversized, not UTF-8,
//!   broken percent-encoding, a wrong URL token, no signature, a wrong signature, a signature
//!   replayed outside the tolerance (past, future, and at the ends of `i64`), a replay of a good
//!   delivery; Business Central notifications with a wrong token, a wrong `clientState`, not
//!   JSON, oversized. Each gets the answer its sender can live with, nothing bad is stored, the
//!   good deliveries are stored once, the service keeps serving, and its log holds none of the
//!   secrets.
//! - Source records with invalid emails, no currency, absurd amounts (negative, 1e308, `NaN`,
//!   `Infinity`, text), huge strings (a 1 MB name): each bad one is a dead letter whose reason
//!   names the field and the value's problem; every good one is written, exactly.
//!
//! (Broken configuration is `bad_configs.rs`; bytes at random are `fuzz.rs`.)

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{Killed, bin, run};
use connector_mailchimp::webhooks::sign;
use sandbox_mailchimp::{DEFAULT_API_KEY, Sandbox as Mc, SandboxConfig as McConfig};
use serde_json::{Value, json};

const MC_TOKEN: &str = "mc-token-0123456789abcdef";
const SIGNING_SECRET: &str = "signing-secret-5f1e2d3c4b5a";
const BC_TOKEN: &str = "bc-token-0123456789abcdef";
const CLIENT_STATE: &str = "client-state-secret-42";

fn unsubscribe(email: &str) -> String {
    format!("type=unsubscribe&fired_at=2026-03-01+10%3A00%3A00&data%5Bemail%5D={email}&data%5Blist_id%5D=abc")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_webhooks_are_refused_correctly_and_the_service_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    std::fs::write(
        d.join("ml-connector.yaml"),
        "version: 1\nname: hostile\nconnections:\n  events: {connector: inbox}\n  out: {connector: jsonl, settings: {directory: out}}\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("pipelines")).unwrap();
    let dd = d.clone();
    tokio::task::spawn_blocking(move || {
        for (name, value) in [
            ("mailchimp_webhook_token", MC_TOKEN),
            ("mailchimp_signing_secret", SIGNING_SECRET),
            ("bc_webhook_token", BC_TOKEN),
            ("bc_client_state", CLIENT_STATE),
        ] {
            let (code, out) = run(&dd, &["secrets", "set", name], value);
            assert_eq!(code, 0, "{out}");
        }
    })
    .await
    .unwrap();
    let log = d.join("serve.log");
    let mut serve = Killed(
        bin()
            .args(["serve", "--listen", "127.0.0.1:0", "--mailchimp-signing-secret", "mailchimp_signing_secret"])
            .env("ML_CONNECTOR_LOG", "debug")
            .current_dir(&d)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(serve.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("serving on ").unwrap_or_else(|| panic!("{line}")).to_owned();
    // No connection reuse: a server closes the connection it refused an oversized body on.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mc = format!("{base}/hooks/mailchimp/{MC_TOKEN}");
    let now = jiff::Timestamp::now().as_second();
    let post = |url: String, body: Vec<u8>, signature: Option<String>| {
        let mut request = http.post(url).header("content-type", "application/x-www-form-urlencoded").body(body);
        if let Some(s) = signature {
            request = request.header("x-mailchimp-signature", s);
        }
        async move {
            let r = request.send().await.unwrap();
            r.status().as_u16()
        }
    };
    let signed = |body: &[u8], t: i64| Some(sign(SIGNING_SECRET, body, t));

    let good = unsubscribe("ada%40example.com");
    let mut cases: Vec<(&str, u16, u16)> = Vec::new();
    let mut check = |what: &'static str, expected: u16, got: u16| cases.push((what, expected, got));
    check("a good delivery", 200, post(mc.clone(), good.clone().into(), signed(good.as_bytes(), now)).await);
    check(
        "the same delivery again (a retry)",
        200,
        post(mc.clone(), good.clone().into(), signed(good.as_bytes(), now)).await,
    );
    check(
        "a wrong URL token",
        404,
        post(
            format!("{base}/hooks/mailchimp/mc-token-0123456789abcdeX"),
            good.clone().into(),
            signed(good.as_bytes(), now),
        )
        .await,
    );
    check("no signature", 401, post(mc.clone(), good.clone().into(), None).await);
    check(
        "a signature with another secret",
        401,
        post(mc.clone(), good.clone().into(), Some(sign("another", good.as_bytes(), now))).await,
    );
    let other = unsubscribe("grace%40example.com");
    check(
        "a signature of another body",
        401,
        post(mc.clone(), other.clone().into(), signed(good.as_bytes(), now)).await,
    );
    check(
        "a replay an hour late",
        401,
        post(mc.clone(), good.clone().into(), signed(good.as_bytes(), now - 3600)).await,
    );
    check(
        "a signature from the future",
        401,
        post(mc.clone(), good.clone().into(), signed(good.as_bytes(), now + 3600)).await,
    );
    for (what, t) in [("a timestamp of i64::MIN", i64::MIN), ("a timestamp of i64::MAX", i64::MAX)] {
        check(what, 401, post(mc.clone(), good.clone().into(), Some(format!("t={t},v1=00"))).await);
    }
    check("a malformed signature header", 401, post(mc.clone(), good.clone().into(), Some("v1=zz;t=x".into())).await);
    let big = format!("{}&data%5Bmerges%5D%5BFNAME%5D={}", unsubscribe("x%40example.com"), "A".repeat(70_000));
    check("70 KB", 413, post(mc.clone(), big.clone().into(), signed(big.as_bytes(), now)).await);
    let latin1 = b"type=unsubscribe&data[email]=jos\xe9@example.com".to_vec();
    check("not UTF-8", 400, post(mc.clone(), latin1.clone(), signed(&latin1, now)).await);
    let percent = b"type=unsubscribe&data[email]=a%zz@example.com".to_vec();
    check("broken percent-encoding", 400, post(mc.clone(), percent.clone(), signed(&percent, now)).await);
    let nested = b"type=unsubscribe&data[email]=a@b.c&data[email][x]=y".to_vec();
    check("a key both a value and a group", 400, post(mc.clone(), nested.clone(), signed(&nested, now)).await);
    let no_type = b"data[email]=a@b.c".to_vec();
    check("an event without a type", 400, post(mc.clone(), no_type.clone(), signed(&no_type, now)).await);

    // Business Central.
    let bc = format!("{base}/hooks/business-central/{BC_TOKEN}");
    let notification = |state: &str, id: u32| {
        json!({"value": [{"subscriptionId": "0123456789abcdef", "clientState": state,
            "expirationDateTime": "2030-01-04T00:00:00Z", "resource": format!("api/v2.0/companies(c1)/customers({id})"),
            "changeType": "updated", "lastModifiedDateTime": "2030-01-01T00:00:00Z"}]})
        .to_string()
        .into_bytes()
    };
    let bc_post = |url: String, body: Vec<u8>| {
        let request = http.post(url).header("content-type", "application/json").body(body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    check("BC: a notification", 202, bc_post(bc.clone(), notification(CLIENT_STATE, 1)).await);
    check(
        "BC: a wrong clientState (2xx, or BC deletes every subscription)",
        202,
        bc_post(bc.clone(), notification("wrong", 2)).await,
    );
    check(
        "BC: a wrong URL token",
        404,
        bc_post(format!("{base}/hooks/business-central/bc-token-0123456789abcdeX"), notification(CLIENT_STATE, 3))
            .await,
    );
    check("BC: not JSON", 400, bc_post(bc.clone(), b"<xml/>".to_vec()).await);
    check("BC: JSON nested 10,000 deep", 400, bc_post(bc.clone(), "[".repeat(10_000).into_bytes()).await);
    check("BC: 5 MB", 413, bc_post(bc.clone(), vec![b' '; 5 * 1024 * 1024]).await);

    let wrong: Vec<String> = cases
        .iter()
        .filter(|(_, expected, got)| expected != got)
        .map(|(what, expected, got)| format!("{what}: {got}, expected {expected}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");

    // Still serving; exactly the good deliveries stored, once each.
    // A new connection: the one an oversized body was refused on is closed by the server.
    let health = reqwest::Client::new().get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(serve.0.try_wait().unwrap().is_none(), "serve exited");
    let inbox = inbox::Inbox::open(&d.join(inbox::DEFAULT_PATH)).unwrap();
    assert_eq!(inbox.count("mailchimp").unwrap(), 1, "the good delivery, once");
    assert_eq!(inbox.count("business-central").unwrap(), 1, "the good notification only");
    let events = inbox.read("mailchimp", 0, 10).unwrap();
    assert_eq!(events[0]["email"], "ada@example.com");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("panicked"), "{text}");
    for secret in [MC_TOKEN, SIGNING_SECRET, BC_TOKEN, CLIENT_STATE] {
        assert!(!text.contains(secret), "the log holds a secret: {text}");
        for entry in walk(&d) {
            if entry.file_name().is_some_and(|n| n == "vault.json" || n == "master.key") {
                continue;
            }
            let bytes = std::fs::read(&entry).unwrap();
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{} holds a secret", entry.display());
        }
    }
    eprintln!("{} hostile or replayed deliveries answered as expected", cases.len());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Bad records.

const PROJECT: &str = "version: 1
name: bad-records
connections:
  erp: {connector: jsonl, settings: {directory: data}}
  mailchimp:
    connector: mailchimp
    settings: {auth: {type: api_key, key: {secret: mailchimp_api_key}}, base_url: 'BASE'}
vars: {list_id: 'LIST', store_id: shop}
defaults: {page_size: 4}
";

const MEMBERS: &str = "version: 1
name: members
source: {connection: erp, entity: customers.jsonl}
filter: record.email | trim != ''
key: \"{{ record.email | subscriber_hash }}\"
fields:
  email_address: \"{{ record.email | email }}\"
  status_if_new: transactional
  merge_fields:
    FNAME: \"{{ record.name | first_name | max_chars(255) }}\"
    LNAME: \"{{ record.name | last_name | max_chars(255) }}\"
target: {connection: mailchimp, resource: member, params: {list_id: \"{{ vars.list_id }}\"}}
";

const STORE: &str = "version: 1
name: store
source: {connection: erp, entity: store.jsonl}
key: \"{{ vars.store_id }}\"
fields: {id: \"{{ vars.store_id }}\", list_id: \"{{ vars.list_id }}\", name: Shop, currency_code: USD}
target: {connection: mailchimp, resource: store}
";

const ORDERS: &str = "version: 1
name: orders
source: {connection: erp, entity: invoices.jsonl}
key: \"inv-{{ record.number }}\"
fields:
  id: \"inv-{{ record.number }}\"
  customer: {id: \"{{ record.customer }}\", email_address: \"{{ record.email | email }}\", opt_in_status: false}
  currency_code: \"{{ record.currency }}\"
  order_total: \"{{ record.amount | decimal }}\"
  lines:
    - {id: '1', product_id: p1, product_variant_id: p1, product_title: Thing, quantity: 1, price: \"{{ record.amount | decimal }}\"}
target: {connection: mailchimp, resource: order, params: {store_id: \"{{ vars.store_id }}\"}}
depends_on: [store]
";

#[test]
fn bad_records_are_dead_letters_with_their_reason_and_nothing_else_is_lost() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mc = rt.block_on(Mc::start(McConfig::default(), "127.0.0.1:0".parse().unwrap())).unwrap();
    let list = mc.admin().create_list("Customers");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("pipelines")).unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::write(d.join("ml-connector.yaml"), PROJECT.replace("BASE", &mc.base_url()).replace("LIST", &list))
        .unwrap();
    for (f, text) in [("members.yaml", MEMBERS), ("store.yaml", STORE), ("orders.yaml", ORDERS)] {
        std::fs::write(d.join("pipelines").join(f), text).unwrap();
    }
    let huge = "Ada ".repeat(256 * 1024);
    let customers = [
        json!({"email": "ada@example.com", "name": "Ada Lovelace"}),
        json!({"email": " Grace@Example.COM ", "name": "Grace Hopper"}),
        json!({"email": "tim@example", "name": "Tim No Domain"}),
        json!({"email": "not an email", "name": "Nobody"}),
        json!({"email": "a@b@c.example", "name": "Two Ats"}),
        json!({"email": "", "name": "No Email"}),
        json!({"email": "huge@example.com", "name": huge}),
        json!({"email": "alan@example.com", "name": "Alan Turing"}),
        json!({"email": "nul\u{0}@example.com", "name": "Nul"}),
        json!({"email": format!("{}@example.com", "x".repeat(1024 * 1024)), "name": "Huge Address"}),
    ];
    let invoices = [
        json!({"number": 1, "customer": "C1", "email": "ada@example.com", "currency": "USD", "amount": 12.5}),
        json!({"number": 2, "customer": "C2", "email": "grace@example.com", "amount": 40}),
        json!({"number": 3, "customer": "C1", "email": "ada@example.com", "currency": "USD", "amount": -5}),
        json!({"number": 4, "customer": "C1", "email": "ada@example.com", "currency": "USD", "amount": 1e308}),
        json!({"number": 5, "customer": "C1", "email": "ada@example.com", "currency": "USD", "amount": "NaN"}),
        json!({"number": 6, "customer": "C1", "email": "ada@example.com", "currency": "USD", "amount": "Infinity"}),
        json!({"number": 7, "customer": "C1", "email": "ada@example.com", "currency": "USD", "amount": "12,50"}),
        json!({"number": 8, "customer": "C3", "email": "alan@example.com", "currency": "EUR", "amount": "99.999"}),
        json!({"number": 9, "customer": "C1", "email": "ada@example.com", "currency": "USD", "amount": null}),
        json!({"number": 10, "customer": "C1", "email": "ada@example.com", "currency": "USD", "amount": "1e3"}),
    ];
    let lines = |records: &[Value]| records.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    std::fs::write(d.join("data/customers.jsonl"), lines(&customers)).unwrap();
    std::fs::write(d.join("data/invoices.jsonl"), lines(&invoices)).unwrap();
    std::fs::write(d.join("data/store.jsonl"), "{}").unwrap();
    assert_eq!(run(d, &["secrets", "set", "mailchimp_api_key"], DEFAULT_API_KEY).0, 0);

    let (code, out) = run(d, &["run"], "");
    assert_eq!(code, 0, "dead letters do not fail a run:\n{}", &out[..out.len().min(5000)]);
    let letters: Vec<Value> = {
        let out = bin().args(["dead-letters", "--json"]).current_dir(d).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["letter"].clone())
            .collect()
    };
    let reasons: BTreeMap<String, String> = letters
        .iter()
        .map(|l| (l["key"].as_str().unwrap_or("-").to_owned(), l["error"].as_str().unwrap().to_owned()))
        .collect();
    let hash = engine::template::subscriber_hash;
    let expected: Vec<(String, &str)> = vec![
        (hash("tim@example"), "fields.email_address: `tim@example` is not a valid email address"),
        (hash("not an email"), "fields.email_address: `not an email` is not a valid email address"),
        (hash("a@b@c.example"), "fields.email_address: `a@b@c.example` is not a valid email address"),
        (hash("nul\u{0}@example.com"), "is not a valid email address"),
        (
            hash(&format!("{}@example.com", "x".repeat(1024 * 1024))),
            "`xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…` is not a valid email address",
        ),
        ("inv-2".into(), "fields.currency_code: `record.currency` rendered to an undefined value"),
        ("inv-4".into(), "has more than 15 digits before the point; it cannot be kept exactly"),
        ("inv-5".into(), "decimal: `NaN` is not a number"),
        ("inv-6".into(), "decimal: `Infinity` is not a number"),
        ("inv-7".into(), "decimal: `12,50` is not a number"),
        ("inv-9".into(), "decimal: `None` is not a number"),
        ("inv-10".into(), "decimal: `1e3` is not a number"),
    ];
    let mut problems = Vec::new();
    for (key, reason) in &expected {
        match reasons.get(key) {
            Some(got) if got.contains(reason) => {}
            Some(got) => problems.push(format!("{key}: `{got}` does not say `{reason}`")),
            None => problems.push(format!("{key}: no dead letter (expected `{reason}`)")),
        }
    }
    for l in &letters {
        // The reason is readable: no 1 MB value echoed back.
        assert!(l["error"].as_str().unwrap().len() < 2000, "a reason of {} bytes", l["error"].as_str().unwrap().len());
    }
    assert!(problems.is_empty(), "{problems:#?}\nall letters: {reasons:#?}");
    assert_eq!(letters.len(), expected.len(), "nothing else failed: {reasons:#?}");

    // Every good record is there, exactly.
    let members: BTreeMap<String, String> = mc
        .admin()
        .members(&list)
        .iter()
        .map(|m| {
            (m["email_address"].as_str().unwrap().to_owned(), m["merge_fields"]["FNAME"].as_str().unwrap().to_owned())
        })
        .collect();
    let want: BTreeMap<String, String> = [
        ("ada@example.com", "Ada"),
        ("grace@example.com", "Grace"),
        ("alan@example.com", "Alan"),
        ("huge@example.com", "Ada"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(members, want);
    // The 1 MB name went through `max_chars(255)`, as Mailchimp's text merge fields require.
    let huge = mc.admin().member(&list, "huge@example.com").unwrap();
    assert_eq!(huge["merge_fields"]["LNAME"].as_str().unwrap().chars().count(), 255);
    let orders: BTreeMap<String, (String, f64)> = mc
        .admin()
        .orders("shop")
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                (o["currency_code"].as_str().unwrap().to_owned(), o["order_total"].as_f64().unwrap()),
            )
        })
        .collect();
    let want: BTreeMap<String, (String, f64)> =
        [("inv-1", ("USD", 12.5)), ("inv-3", ("USD", -5.0)), ("inv-8", ("EUR", 100.0))]
            .into_iter()
            .map(|(id, (c, t))| (id.to_owned(), (c.to_owned(), t)))
            .collect();
    assert_eq!(orders, want);
    eprintln!("{} bad records, each a dead letter with its reason; 7 good ones written", letters.len());
}
