//! What the reliability tests (`fault_storm.rs`, `crash_points.rs`, `bad_input.rs`) and
//! `bc_flow.rs` share: sandboxes on their own runtime with a project of the stock pipelines
//! pointed at them, a seeded Business Central company or Dynamics GP company together with the
//! Mailchimp state it must end in, and the checks of that state, the audit trail and the dead
//! letters.
//!
//! `MLC_LONG=1` scales the counts up (more seeds, more crash points, more cases); `MLC_SEED=N`
//! replays one seed.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use engine::template::subscriber_hash;
use sandbox_business_central::{Admin as BcAdmin, Sandbox as Bc, SandboxConfig as BcConfig};
use sandbox_dynamics_gp::{Sandbox as Gp, SandboxConfig as GpConfig};
use sandbox_mailchimp::{DEFAULT_API_KEY, Sandbox as Mc, SandboxConfig as McConfig};
use serde_json::{Value, json};

use crate::common;

/// Whether the long runs were asked for (`MLC_LONG=1`).
pub fn long() -> bool {
    std::env::var("MLC_LONG").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `ci` normally, `long` with `MLC_LONG`.
pub fn scale(ci: usize, long_count: usize) -> usize {
    if long() { long_count } else { ci }
}

/// The seeds to run: `MLC_SEED` alone when set, else `count` seeds derived from `base`.
pub fn seeds(base: u64, count: usize) -> Vec<u64> {
    if let Some(seed) = std::env::var("MLC_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![seed];
    }
    (0..count as u64).map(|i| base.wrapping_add(i.wrapping_mul(0x9E37_79B9))).collect()
}

/// xorshift64*: deterministic choices from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The runtime the sandboxes live on (the tests themselves drive the binary, blocking).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A project directory with the stock pipelines of `flow` and its project file after `edit`.
pub fn stock_project(flow: &str, pipelines: &[&str], edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let stock = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings").join(flow);
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    for f in pipelines {
        std::fs::copy(stock.join("pipelines").join(f), dir.path().join("pipelines").join(f)).unwrap();
    }
    let project = std::fs::read_to_string(stock.join("ml-connector.yaml")).unwrap();
    std::fs::write(dir.path().join("ml-connector.yaml"), edit(project)).unwrap();
    dir
}

/// `text` with `from` replaced once; fails when the stock file no longer has it.
pub fn replace(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the stock project no longer has `{from}`");
    text.replacen(from, to, 1)
}

/// The outcome of runs repeated until one succeeds.
#[derive(Debug)]
pub struct Runs {
    /// How many runs it took (the last one succeeded).
    pub runs: usize,
    /// Every run's output, in order.
    pub outputs: Vec<String>,
}

/// Runs `ml-connector run` in `dir` until it exits 0, at most `limit` times.
pub fn run_until_success(dir: &Path, limit: usize) -> Runs {
    let mut outputs = Vec::new();
    for n in 1..=limit {
        let (code, out) = common::run(dir, &["run"], "");
        outputs.push(out);
        if code == 0 {
            return Runs { runs: n, outputs };
        }
        assert_eq!(code, 1, "a run failed as a configuration error:\n{}", outputs.join("\n----\n"));
    }
    panic!("no successful run in {limit}:\n{}", outputs.join("\n----\n"));
}

/// The audit trail as `ml-connector audit --format jsonl` prints it.
pub fn audit(dir: &Path) -> Vec<Value> {
    let out = common::bin().args(["audit", "--format", "jsonl"]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The open dead letters as `ml-connector dead-letters --json` prints them: each letter
/// (`pipeline`, `key`, `error_class`, `error`, `record`, …).
pub fn dead_letters(dir: &Path) -> Vec<Value> {
    let out = common::bin().args(["dead-letters", "--json"]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            if v.get("letter").is_some() { v["letter"].clone() } else { v }
        })
        .collect()
}

/// `pipeline` → key → how many audit rows recorded a successful write (create or update).
pub fn audited_writes(rows: &[Value]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in rows {
        let op = r["operation"].as_str().unwrap_or_default();
        if op == "create" || op == "update" {
            let pipeline = r["pipeline"].as_str().unwrap().to_owned();
            *out.entry(pipeline).or_default().entry(r["key"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    out
}

/// `pipeline` → every key the audit trail mentions, whatever the operation.
pub fn audited_keys(rows: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows {
        out.entry(r["pipeline"].as_str().unwrap().to_owned())
            .or_default()
            .insert(r["key"].as_str().unwrap().to_owned());
    }
    out
}

/// The Mailchimp writes (anything but GET) logged since the last clear, as (method, path,
/// status).
pub fn mc_writes(mc: &Mc) -> Vec<(String, String, u16)> {
    mc.admin().requests().into_iter().filter(|r| r.method != "GET").map(|r| (r.method, r.path, r.status)).collect()
}

/// Waits until Mailchimp has finished with the requests of a killed (or timed-out) client: they
/// may still be applied after the client is gone, as by the real service.
pub fn settle(mc: &Mc) {
    let admin = mc.admin();
    let mut seen = usize::MAX;
    for _ in 0..100 {
        let (now, busy) = (admin.requests().len(), admin.counters().in_flight);
        if busy == 0 && now == seen {
            return;
        }
        seen = now;
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("Mailchimp is still handling requests");
}

/// Mailchimp's state for one audience and store, without what differs between two identical
/// histories (timestamps, generated ids): members, store, products, e-commerce customers and
/// orders, each sorted by id.
pub fn mailchimp_state(mc: &Mc, list: &str, store: &str) -> Value {
    let admin = mc.admin();
    let mut members: Vec<Value> = admin
        .members(list)
        .into_iter()
        .map(|m| json!({"email_address": m["email_address"], "status": m["status"], "merge_fields": m["merge_fields"]}))
        .collect();
    members.sort_by(|a, b| a["email_address"].as_str().cmp(&b["email_address"].as_str()));
    let by_id = |mut items: Vec<Value>| {
        items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        items
    };
    let products = by_id(
        admin
            .products(store)
            .into_iter()
            .map(|p| {
                let variants: Vec<Value> = p["variants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| json!({"id": v["id"], "sku": v["sku"], "price": v["price"], "title": v["title"]}))
                    .collect();
                json!({"id": p["id"], "title": p["title"], "variants": variants})
            })
            .collect(),
    );
    let customers = by_id(
        admin
            .customers(store)
            .into_iter()
            .map(|c| {
                json!({"id": c["id"], "email_address": c["email_address"], "opt_in_status": c["opt_in_status"],
                       "company": c["company"], "first_name": c["first_name"], "last_name": c["last_name"]})
            })
            .collect(),
    );
    let orders = by_id(
        admin
            .orders(store)
            .into_iter()
            .map(|o| {
                let lines: Vec<Value> = o["lines"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| {
                        json!({"id": l["id"], "product_id": l["product_id"], "product_variant_id": l["product_variant_id"],
                               "quantity": l["quantity"], "price": l["price"]})
                    })
                    .collect();
                json!({"id": o["id"], "customer": o["customer"]["id"], "email": o["customer"]["email_address"],
                       "currency_code": o["currency_code"], "order_total": o["order_total"], "tax_total": o["tax_total"],
                       "financial_status": o["financial_status"], "processed_at_foreign": o["processed_at_foreign"],
                       "lines": lines})
            })
            .collect(),
    );
    let store =
        admin.store(store).map(|s| json!({"id": s["id"], "name": s["name"], "currency_code": s["currency_code"]}));
    json!({"members": members, "store": store, "products": products, "customers": customers, "orders": orders})
}

// ---------------------------------------------------------------------------------------------
// Business Central → Mailchimp.

pub const COMPANY: &str = "CRONUS USA, Inc.";
/// The stock project's store id.
pub const STORE: &str = "bc-cronus-usa";
pub const BC_PIPELINES: [&str; 5] = [
    "store.yaml",
    "customers-to-members.yaml",
    "items-to-products.yaml",
    "customers-to-ecommerce.yaml",
    "invoices-to-orders.yaml",
];

/// Both sandboxes, an audience, and a project with the stock BC → Mailchimp pipelines.
pub struct BcWorld {
    pub mc: Mc,
    pub bc: Bc,
    pub company: String,
    pub list: String,
    pub dir: tempfile::TempDir,
    /// Last, so the sandboxes are dropped while their runtime still exists.
    pub rt: tokio::runtime::Runtime,
}

/// Project settings the tests tune: request timeout and attempts (both systems), page size,
/// and `vars.default_currency` (`None`: the project has none).
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    pub timeout_seconds: u64,
    pub max_attempts: u32,
    pub page_size: usize,
    pub default_currency: Option<&'static str>,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning { timeout_seconds: 30, max_attempts: 5, page_size: 16, default_currency: Some("USD") }
    }
}

impl BcWorld {
    pub fn new(tuning: Tuning) -> BcWorld {
        let rt = runtime();
        let (mc, bc) = rt.block_on(async {
            let mc = Mc::start(McConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
            let bc = Bc::start(BcConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
            (mc, bc)
        });
        let company = bc.admin().company_id(COMPANY).unwrap();
        let list = mc.admin().create_list("CRONUS customers");
        let dir =
            stock_project("business-central-to-mailchimp", &BC_PIPELINES, |p| bc_project(p, &mc, &bc, &list, tuning));
        let w = BcWorld { mc, bc, company, list, dir, rt };
        assert_eq!(w.ml(&["secrets", "set", "mailchimp_api_key"], DEFAULT_API_KEY).0, 0);
        assert_eq!(w.ml(&["secrets", "set", "bc_client_secret"], &BcConfig::default().client_secret).0, 0);
        let (code, out) = w.ml(&["validate"], "");
        assert_eq!(code, 0, "{out}");
        w
    }

    /// Rewrites the project file with other `tuning`.
    pub fn write_project(&self, tuning: Tuning) {
        let stock = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/business-central-to-mailchimp");
        let p = std::fs::read_to_string(stock.join("ml-connector.yaml")).unwrap();
        let p = bc_project(p, &self.mc, &self.bc, &self.list, tuning);
        std::fs::write(self.dir.path().join("ml-connector.yaml"), p).unwrap();
    }

    pub fn ml(&self, args: &[&str], stdin: &str) -> (i32, String) {
        common::run(self.dir.path(), args, stdin)
    }

    /// The binary with a failpoint armed: it must kill itself (no exit code).
    pub fn ml_killed_at(&self, failpoint: &str, args: &[&str]) {
        let mut command = common::bin();
        command.env("ML_CONNECTOR_FAILPOINT", failpoint);
        let (code, out) = common::run_with(command, self.dir.path(), args, "");
        assert_eq!(code, -1, "`{failpoint}` should have killed `{}`:\n{out}", args.join(" "));
        assert!(out.contains("failpoint `"), "{out}");
    }

    pub fn bca(&self) -> BcAdmin {
        self.bc.admin()
    }

    pub fn state(&self) -> Value {
        mailchimp_state(&self.mc, &self.list, STORE)
    }
}

/// The stock BC → Mailchimp project file `p`, pointed at the sandboxes and the test audience,
/// with `tuning`.
fn bc_project(p: String, mc: &Mc, bc: &Bc, list: &str, tuning: Tuning) -> String {
    let Tuning { timeout_seconds, max_attempts, page_size, default_currency } = tuning;
    let p = replace(
        p,
        "credential: {type: secret, secret: {secret: bc_client_secret}}",
        &format!(
            "credential: {{type: secret, secret: {{secret: bc_client_secret}}}}\n      token_url: '{}'\n      base_url: '{}'\n      timeout_seconds: {timeout_seconds}\n      max_attempts: {max_attempts}",
            bc.token_url(),
            bc.base_url()
        ),
    );
    let p = replace(
        p,
        "auth: {type: api_key, key: {secret: mailchimp_api_key}}",
        &format!(
            "auth: {{type: api_key, key: {{secret: mailchimp_api_key}}}}\n      base_url: '{}'\n      timeout_seconds: {timeout_seconds}\n      max_attempts: {max_attempts}",
            mc.base_url()
        ),
    );
    // Quoted: an audience id may be all digits (or read as a float, `1e5…`).
    let p = replace(p, "list_id: a1b2c3d4e5", &format!("list_id: '{list}'"));
    let p = replace(p, "page_size: 500", &format!("page_size: {page_size}"));
    match default_currency {
        Some(c) => replace(p, "default_currency: USD", &format!("default_currency: {c}")),
        None => replace(p, "  default_currency: USD\n", ""),
    }
}

/// A customer as seeded, with what its member and e-commerce customer must look like.
#[derive(Clone, Debug)]
pub struct Customer {
    pub id: String,
    pub number: String,
    /// As Mailchimp must hold it (trimmed, lower case); empty when the customer has none.
    pub email: String,
    pub display_name: String,
    pub kind: &'static str,
    pub first: String,
    pub last: String,
    pub phone: String,
    /// addressLine1, city, state, postal code, country: when complete.
    pub address: Option<[String; 5]>,
    pub currency: String,
    /// Whether the email is valid (else: a dead letter in the member and e-commerce pipelines).
    pub valid: bool,
}

#[derive(Clone, Debug)]
pub struct Item {
    pub number: String,
    pub name: String,
    pub price: f64,
}

#[derive(Clone, Debug)]
pub struct Invoice {
    pub number: String,
    pub customer: usize,
    pub date: String,
    /// (sequence, item index, quantity)
    pub lines: Vec<(i64, usize, i64)>,
}

/// A Business Central company as seeded, and the Mailchimp state it implies.
#[derive(Default)]
pub struct Company {
    pub customers: Vec<Customer>,
    pub items: Vec<Item>,
    pub invoices: Vec<Invoice>,
}

const PEOPLE: [(&str, &str, &str); 8] = [
    ("Ada King Lovelace", "Ada", "King Lovelace"),
    ("Grace Hopper", "Grace", "Hopper"),
    ("Hopper, Grace", "Grace", "Hopper"),
    ("Alan Turing", "Alan", "Turing"),
    ("Katherine Johnson", "Katherine", "Johnson"),
    ("Edsger W. Dijkstra", "Edsger", "W. Dijkstra"),
    ("Barbara Liskov", "Barbara", "Liskov"),
    ("Donald Knuth", "Donald", "Knuth"),
];

impl Company {
    pub fn add_customer(&mut self, bca: &BcAdmin, company: &str, i: usize, email: &str, currency: Option<&str>) {
        let (kind, display_name, first, last) = if i % 5 == 4 {
            ("Company", format!("Fabrikam {i:02} Ltd."), String::new(), String::new())
        } else {
            let (name, first, last) = PEOPLE[i % PEOPLE.len()];
            ("Person", name.to_owned(), first.to_owned(), last.to_owned())
        };
        let address = (i % 3 != 2)
            .then(|| [format!("{i} Main Street"), "Atlanta".into(), "GA".into(), format!("3{i:04}"), "US".into()]);
        let phone = if i.is_multiple_of(2) { format!("555-01{i:02}") } else { String::new() };
        let mut fields =
            json!({"type": kind, "displayName": display_name, "email": email, "phoneNumber": phone, "country": "US"});
        match &address {
            Some([line, city, state, zip, _]) => {
                fields["addressLine1"] = json!(line);
                fields["city"] = json!(city);
                fields["state"] = json!(state);
                fields["postalCode"] = json!(zip);
            }
            None => fields["city"] = json!("Savannah"),
        }
        if let Some(c) = currency {
            fields["currencyCode"] = json!(c);
        }
        let c = bca.create_customer(company, fields);
        assert!(c.get("error").is_none(), "{c}");
        let email = email.trim().to_lowercase();
        let valid = email.rsplit_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        self.customers.push(Customer {
            id: c["id"].as_str().unwrap().to_owned(),
            number: c["number"].as_str().unwrap().to_owned(),
            email,
            display_name,
            kind,
            first,
            last,
            phone,
            address,
            currency: c["currencyCode"].as_str().unwrap().to_owned(),
            valid,
        });
    }

    pub fn add_item(&mut self, bca: &BcAdmin, company: &str, name: &str, price: f64) {
        let item = bca.create_item(company, json!({"displayName": name, "unitPrice": price}));
        assert!(item.get("error").is_none(), "{item}");
        self.items.push(Item { number: item["number"].as_str().unwrap().to_owned(), name: name.to_owned(), price });
    }

    /// Creates an invoice with `(item index, quantity)` lines; posts it unless `draft`.
    pub fn add_invoice(&mut self, bca: &BcAdmin, company: &str, customer: usize, lines: &[(usize, i64)], draft: bool) {
        let body: Vec<Value> = lines
            .iter()
            .map(|&(item, q)| json!({"lineType": "Item", "lineObjectNumber": self.items[item].number, "quantity": q}))
            .collect();
        let inv = bca.create_sales_invoice(company, json!({"customerId": self.customers[customer].id}), body);
        assert!(inv.get("error").is_none(), "{inv}");
        if draft {
            return;
        }
        let posted = bca.post_sales_invoice(company, inv["id"].as_str().unwrap());
        assert_eq!(posted["status"], "Open", "{posted}");
        let seqs: Vec<i64> =
            posted["salesInvoiceLines"].as_array().unwrap().iter().map(|l| l["sequence"].as_i64().unwrap()).collect();
        self.invoices.push(Invoice {
            number: posted["number"].as_str().unwrap().to_owned(),
            customer,
            date: posted["invoiceDate"].as_str().unwrap().to_owned(),
            lines: seqs.into_iter().zip(lines).map(|(s, &(item, q))| (s, item, q)).collect(),
        });
    }

    /// `customers` customers (every fifth a company, two thirds with a complete address, one in
    /// ten buying in EUR), plus one with an invalid email and one without; `items` items with
    /// prices from `rng`; `invoices` posted invoices of 1–4 lines for valid customers, and a
    /// draft (never an order).
    pub fn seed(
        bca: &BcAdmin,
        company: &str,
        customers: usize,
        items: usize,
        invoices: usize,
        rng: &mut Rng,
    ) -> Company {
        let mut co = Company::default();
        for i in 0..customers {
            let email =
                if i == 3 { "Customer03@Example.COM".to_owned() } else { format!("customer{i:02}@example.com") };
            co.add_customer(bca, company, i, &email, (i % 10 == 9).then_some("EUR"));
        }
        co.add_customer(bca, company, customers, "tim@example", Some("USD"));
        co.add_customer(bca, company, customers + 1, "", Some("USD"));
        for k in 0..items {
            let price = round2(rng.range(1.0, 1500.0));
            co.add_item(bca, company, &format!("ITEM {k:02}"), price);
        }
        for _ in 0..invoices {
            let customer = rng.below(customers as u64) as usize;
            let lines: Vec<(usize, i64)> =
                (0..1 + rng.below(4)).map(|_| (rng.below(items as u64) as usize, 1 + rng.below(5) as i64)).collect();
            co.add_invoice(bca, company, customer, &lines, false);
        }
        co.add_invoice(bca, company, 0, &[(0, 1)], true);
        co
    }

    pub fn with_email(&self) -> impl Iterator<Item = &Customer> {
        self.customers.iter().filter(|c| !c.email.is_empty())
    }

    pub fn valid(&self) -> impl Iterator<Item = &Customer> {
        self.customers.iter().filter(|c| c.valid)
    }

    /// The indexes of the customers with a valid email: those Mailchimp must hold.
    pub fn valid_indexes(&self) -> Vec<usize> {
        (0..self.customers.len()).filter(|&i| self.customers[i].valid).collect()
    }

    fn line_total(&self, item: usize, quantity: i64) -> f64 {
        round2(self.items[item].price * quantity as f64)
    }

    fn invoice_total(&self, inv: &Invoice) -> f64 {
        round2(inv.lines.iter().map(|&(_, item, q)| self.line_total(item, q)).sum())
    }

    /// The audience holds exactly `customers`, with their merge fields; nobody's status is
    /// other than `status_if_new`'s `transactional` (the stock default).
    pub fn check_members(&self, w: &BcWorld, customers: &[usize]) {
        let members = w.mc.admin().members(&w.list);
        let emails: Vec<String> = members.iter().map(|m| m["email_address"].as_str().unwrap().to_owned()).collect();
        let unique: BTreeSet<String> = emails.iter().cloned().collect();
        assert_eq!(unique.len(), emails.len(), "a member twice: {emails:?}");
        let expected: BTreeSet<String> = customers.iter().map(|&i| self.customers[i].email.clone()).collect();
        assert_eq!(unique, expected, "the audience's members");
        for c in customers.iter().map(|&i| &self.customers[i]) {
            let m = w.mc.admin().member(&w.list, &c.email).unwrap();
            assert_eq!(m["status"], "transactional", "{m}");
            let address = match &c.address {
                Some([line, city, state, zip, country]) => {
                    json!({"addr1": line, "addr2": "", "city": city, "state": state, "zip": zip, "country": country})
                }
                None => json!(""),
            };
            let company = if c.kind == "Company" { c.display_name.as_str() } else { "" };
            assert_eq!(
                m["merge_fields"],
                json!({"FNAME": c.first, "LNAME": c.last, "COMPANY": company, "PHONE": c.phone, "ADDRESS": address,
                       "BIRTHDAY": ""}),
                "member {}",
                c.email
            );
        }
    }

    /// The store holds exactly the products, `customers` as e-commerce customers, and the orders.
    pub fn check_store(&self, w: &BcWorld, customers: &[usize]) {
        let store = w.mc.admin().store(STORE).expect("the store exists");
        assert_eq!(store["list_id"], w.list.as_str());
        assert_eq!(store["currency_code"], "USD");
        let products: BTreeMap<String, Value> =
            w.mc.admin().products(STORE).into_iter().map(|p| (p["id"].as_str().unwrap().to_owned(), p)).collect();
        assert_eq!(
            products.keys().cloned().collect::<BTreeSet<_>>(),
            self.items.iter().map(|i| i.number.clone()).collect::<BTreeSet<_>>()
        );
        for item in &self.items {
            let p = &products[&item.number];
            assert_eq!(p["title"], item.name.as_str());
            let variants = p["variants"].as_array().unwrap();
            assert_eq!(variants.len(), 1, "{p}");
            assert_eq!(variants[0]["id"], item.number.as_str());
            assert_eq!(variants[0]["sku"], item.number.as_str());
            assert_eq!(variants[0]["price"].as_f64(), Some(item.price), "{p}");
        }
        let list: Vec<Value> = w.mc.admin().customers(STORE);
        let mc_customers: BTreeMap<String, Value> =
            list.iter().map(|c| (c["id"].as_str().unwrap().to_owned(), c.clone())).collect();
        assert_eq!(mc_customers.len(), list.len(), "an e-commerce customer twice");
        assert_eq!(
            mc_customers.keys().cloned().collect::<BTreeSet<_>>(),
            customers.iter().map(|&i| self.customers[i].number.clone()).collect::<BTreeSet<_>>()
        );
        for c in customers.iter().map(|&i| &self.customers[i]) {
            let m = &mc_customers[&c.number];
            assert_eq!(m["email_address"], c.email.as_str());
            assert_eq!(m["opt_in_status"], false);
            assert_eq!(m["first_name"], c.first.as_str());
            assert_eq!(m["last_name"], c.last.as_str());
            assert_eq!(m["company"], if c.kind == "Company" { c.display_name.as_str() } else { "" });
        }
        self.check_orders(w);
    }

    /// Exactly one order per posted invoice, with its customer, currency, totals and lines.
    pub fn check_orders(&self, w: &BcWorld) {
        let orders = w.mc.admin().orders(STORE);
        let ids: Vec<&str> = orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "an order id twice: {ids:?}");
        let expected: BTreeSet<String> = self.invoices.iter().map(|i| format!("inv-{}", i.number)).collect();
        assert_eq!(unique, expected.iter().map(String::as_str).collect::<BTreeSet<_>>(), "the orders");
        for inv in &self.invoices {
            let id = format!("inv-{}", inv.number);
            let o = orders.iter().find(|o| o["id"] == id.as_str()).unwrap();
            let c = &self.customers[inv.customer];
            assert_eq!(o["customer"]["id"], c.number.as_str(), "{id}");
            assert_eq!(o["customer"]["email_address"], c.email.as_str(), "{id}");
            let currency = if c.currency.is_empty() { "USD" } else { c.currency.as_str() };
            assert_eq!(o["currency_code"], currency, "{id}");
            assert_eq!(o["order_total"].as_f64(), Some(self.invoice_total(inv)), "{id}: {o}");
            assert_eq!(o["tax_total"].as_f64(), Some(0.0), "{id}");
            assert_eq!(o["discount_total"].as_f64(), Some(0.0), "{id}");
            assert_eq!(o["financial_status"], "pending", "{id}");
            assert_eq!(o["processed_at_foreign"], format!("{}T00:00:00Z", inv.date), "{id}");
            let lines: Vec<(String, String, i64, f64)> = o["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l["id"].as_str().unwrap().to_owned(),
                        l["product_id"].as_str().unwrap().to_owned(),
                        l["quantity"].as_i64().unwrap(),
                        l["price"].as_f64().unwrap(),
                    )
                })
                .collect();
            let expected: Vec<(String, String, i64, f64)> = inv
                .lines
                .iter()
                .map(|&(seq, item, q)| (seq.to_string(), self.items[item].number.clone(), q, self.line_total(item, q)))
                .collect();
            assert_eq!(lines, expected, "{id}");
        }
    }

    /// Each pipeline's keys that must have been written.
    pub fn expected_keys(&self) -> BTreeMap<&'static str, BTreeSet<String>> {
        let mut m = BTreeMap::new();
        m.insert("store", BTreeSet::from([STORE.to_owned()]));
        m.insert("customers-to-members", self.valid().map(|c| subscriber_hash(&c.email)).collect());
        m.insert("items-to-products", self.items.iter().map(|i| i.number.clone()).collect());
        m.insert("customers-to-ecommerce", self.valid().map(|c| c.number.clone()).collect());
        m.insert("invoices-to-orders", self.invoices.iter().map(|i| format!("inv-{}", i.number)).collect());
        m
    }

    /// The dead letters must be exactly the invalid emails, each with its reason, one per
    /// pipeline that maps the email; nothing else failed for good.
    pub fn check_dead_letters(&self, letters: &[Value]) {
        let mut got: Vec<(String, String)> = letters
            .iter()
            .map(|l| (l["pipeline"].as_str().unwrap().to_owned(), l["error"].as_str().unwrap().to_owned()))
            .collect();
        got.sort();
        let mut expected = Vec::new();
        for c in self.with_email().filter(|c| !c.valid) {
            for p in ["customers-to-ecommerce", "customers-to-members"] {
                expected
                    .push((p.to_owned(), format!("fields.email_address: `{}` is not a valid email address", c.email)));
            }
        }
        expected.sort();
        assert_eq!(got, expected, "the dead letters: {letters:?}");
    }

    /// Everything together: the Mailchimp state, the dead letters, and an audit trail with
    /// exactly `writes_per_key` successful writes per expected key (`None`: at least one).
    pub fn check_all(&self, w: &BcWorld, writes_per_key: Option<usize>) {
        let valid = self.valid_indexes();
        self.check_members(w, &valid);
        self.check_store(w, &valid);
        self.check_dead_letters(&dead_letters(w.dir.path()));
        let rows = audit(w.dir.path());
        let writes = audited_writes(&rows);
        let keys = audited_keys(&rows);
        for (pipeline, expected) in self.expected_keys() {
            let written = writes.get(pipeline).cloned().unwrap_or_default();
            let unexpected: Vec<&String> = written.keys().filter(|k| !expected.contains(*k)).collect();
            assert!(unexpected.is_empty(), "{pipeline}: writes audited for keys that should not exist: {unexpected:?}");
            match writes_per_key {
                Some(n) => {
                    for key in &expected {
                        assert_eq!(written.get(key).copied().unwrap_or(0), n, "{pipeline} {key}: audited writes");
                    }
                }
                None => {
                    // A crash may repeat a write (accepted, then killed before it was recorded),
                    // never lose its audit: the ledger and audit rows are one transaction.
                    let seen = keys.get(pipeline).cloned().unwrap_or_default();
                    let missing: Vec<&String> =
                        expected.iter().filter(|k| !seen.contains(*k) || !written.contains_key(*k)).collect();
                    assert!(missing.is_empty(), "{pipeline}: no audited write for {missing:?}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dynamics GP → Mailchimp.

pub const GP_STORE: &str = "gp-fabrikam";
pub const GP_PIPELINES: [&str; 4] =
    ["store.yaml", "customers-to-members.yaml", "customers-to-ecommerce.yaml", "invoices-to-orders.yaml"];

/// The GP and Mailchimp sandboxes and a project with the stock GP → Mailchimp pipelines.
pub struct GpWorld {
    pub mc: Mc,
    pub gp: Gp,
    pub list: String,
    pub dir: tempfile::TempDir,
    pub rt: tokio::runtime::Runtime,
}

impl GpWorld {
    /// Fabrikam as the sandbox seeds it, plus `extra` customers with one invoice each (some
    /// paid, some voided).
    pub fn new(tuning: Tuning, extra: usize) -> GpWorld {
        let rt = runtime();
        let (mc, gp) = rt.block_on(async {
            let mc = Mc::start(McConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
            let gp = Gp::start(GpConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
            (mc, gp)
        });
        let list = mc.admin().create_list("Fabrikam customers");
        let admin = gp.admin();
        sandbox_dynamics_gp::seed_many_customers(&admin, -1, extra);
        for i in 1..=extra {
            let number = format!("STMX{i:05}");
            let input = sandbox_dynamics_gp::InvoiceInput {
                number: number.clone(),
                customer_id: format!("BULK{i:07}"),
                date: format!("2026-03-{:02}", 1 + i % 28),
                lines: vec![sandbox_dynamics_gp::LineInput {
                    item: "WIRE-100".into(),
                    description: "Wire".into(),
                    quantity: format!("{}", 1 + i % 4),
                    unit_price: format!("{}.{:02}", 10 + i * 7 % 90, i * 13 % 100),
                }],
                ..Default::default()
            };
            admin.add_invoice(-1, input).unwrap();
            match i % 5 {
                0 => admin.pay_invoice(-1, &number, None).unwrap(),
                3 => admin.void_invoice(-1, &number).unwrap(),
                _ => {}
            }
        }
        let Tuning { timeout_seconds, max_attempts, page_size, .. } = tuning;
        let (soap, mc_base) = (gp.soap_url(), mc.base_url());
        let dir = stock_project("dynamics-gp-to-mailchimp", &GP_PIPELINES, |p| {
            let p = replace(p, "http://gp-server:48620/DynamicsGPWebServices", &soap);
            let p = replace(
                p,
                "password: {secret: gp_password}",
                &format!(
                    "password: {{secret: gp_password}}\n      timeout_seconds: {timeout_seconds}\n      max_attempts: {max_attempts}"
                ),
            );
            let p = replace(
                p,
                "auth: {type: api_key, key: {secret: mailchimp_api_key}}",
                &format!(
                    "auth: {{type: api_key, key: {{secret: mailchimp_api_key}}}}\n      base_url: '{mc_base}'\n      timeout_seconds: {timeout_seconds}\n      max_attempts: {max_attempts}"
                ),
            );
            let p = replace(p, "list_id: a1b2c3d4e5", &format!("list_id: '{list}'"));
            replace(p, "lookback: 30m", &format!("lookback: 30m\n  page_size: {page_size}"))
        });
        let w = GpWorld { mc, gp, list, dir, rt };
        assert_eq!(w.ml(&["secrets", "set", "mailchimp_api_key"], DEFAULT_API_KEY).0, 0);
        assert_eq!(w.ml(&["secrets", "set", "gp_password"], sandbox_dynamics_gp::DEFAULT_PASSWORD).0, 0);
        let (code, out) = w.ml(&["validate"], "");
        assert_eq!(code, 0, "{out}");
        w
    }

    pub fn ml(&self, args: &[&str], stdin: &str) -> (i32, String) {
        common::run(self.dir.path(), args, stdin)
    }

    pub fn state(&self) -> Value {
        let mut state = mailchimp_state(&self.mc, &self.list, GP_STORE);
        if let Some(store) = state["store"].as_object_mut() {
            store.remove("list_id");
        }
        state
    }

    /// GP's invoices by number (trimmed): (customer, voided).
    pub fn invoices(&self) -> BTreeMap<String, Value> {
        self.gp
            .admin()
            .invoices(-1)
            .into_iter()
            .map(|i| (i["DOCNUMBR"].as_str().unwrap_or_default().trim().to_owned(), i))
            .collect()
    }
}
