//! Business Central → Mailchimp through the real binary, the stock pipelines
//! (`mappings/business-central-to-mailchimp`) and both sandboxes:
//!
//! - a seeded company syncs exactly: members with their merge fields, products, e-commerce
//!   customers, one order per posted invoice (totals, lines, currency), the draft left out;
//! - a second run with no change in BC writes nothing (run summary and Mailchimp's request log);
//! - an incremental run writes exactly what changed (and, once its watermark has passed the
//!   seed's lookback, reads only that);
//! - orders never duplicate: re-runs, a run killed in the middle of the orders, a replay killed
//!   after Mailchimp accepted the order;
//! - bad records (an invalid email, an invoice without a currency) land in dead letters with
//!   their reason while the rest syncs, and `replay` resolves them once they are fixed.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use engine::template::subscriber_hash;
use sandbox_business_central::{Admin as BcAdmin, Sandbox as Bc, SandboxConfig as BcConfig};
use sandbox_mailchimp::{DEFAULT_API_KEY, Sandbox as Mc, SandboxConfig as McConfig};
use serde_json::{Value, json};

const COMPANY: &str = "CRONUS USA, Inc.";
/// The stock project's store id.
const STORE: &str = "bc-cronus-usa";
const STOCK: &str = "mappings/business-central-to-mailchimp";
const PIPELINES: [&str; 5] = [
    "store.yaml",
    "customers-to-members.yaml",
    "items-to-products.yaml",
    "customers-to-ecommerce.yaml",
    "invoices-to-orders.yaml",
];
/// Every pipeline but the store, in dependency order.
const FEEDS: [&str; 4] = ["customers-to-members", "items-to-products", "customers-to-ecommerce", "invoices-to-orders"];

/// Both sandboxes on their own runtime (the test itself is blocking code driving the binary),
/// a Mailchimp audience, and a project directory with the stock pipelines.
struct World {
    mc: Mc,
    bc: Bc,
    company: String,
    list: String,
    dir: tempfile::TempDir,
    /// Last, so the sandboxes are dropped while their runtime still exists.
    rt: tokio::runtime::Runtime,
}

impl World {
    /// `default_currency`: the project's `vars.default_currency` (None: the project has none).
    fn new(default_currency: Option<&str>) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (mc, bc) = rt.block_on(async {
            let mc = Mc::start(McConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
            let bc = Bc::start(BcConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
            (mc, bc)
        });
        let company = bc.admin().company_id(COMPANY).unwrap();
        let list = mc.admin().create_list("CRONUS customers");
        let dir = tempfile::tempdir().unwrap();
        let w = World { mc, bc, company, list, dir, rt };
        std::fs::create_dir_all(w.dir.path().join("pipelines")).unwrap();
        let stock = Path::new(env!("CARGO_MANIFEST_DIR")).join(STOCK);
        for f in PIPELINES {
            std::fs::copy(stock.join("pipelines").join(f), w.dir.path().join("pipelines").join(f)).unwrap();
        }
        w.write_project(default_currency);
        assert_eq!(w.ml(&["secrets", "set", "mailchimp_api_key"], DEFAULT_API_KEY).0, 0);
        assert_eq!(w.ml(&["secrets", "set", "bc_client_secret"], &BcConfig::default().client_secret).0, 0);
        let (code, out) = w.ml(&["validate"], "");
        assert_eq!(code, 0, "{out}");
        w
    }

    /// The stock project file, pointed at the sandboxes and the test audience; smaller pages so
    /// the orders span several.
    fn write_project(&self, default_currency: Option<&str>) {
        let mut project =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(STOCK).join("ml-connector.yaml"))
                .unwrap();
        let mut replace = |from: &str, to: &str| {
            assert!(project.contains(from), "the stock project no longer has `{from}`");
            project = project.replacen(from, to, 1);
        };
        replace(
            "credential: {type: secret, secret: {secret: bc_client_secret}}",
            &format!(
                "credential: {{type: secret, secret: {{secret: bc_client_secret}}}}\n      token_url: '{}'\n      base_url: '{}'",
                self.bc.token_url(),
                self.bc.base_url()
            ),
        );
        replace(
            "auth: {type: api_key, key: {secret: mailchimp_api_key}}",
            &format!(
                "auth: {{type: api_key, key: {{secret: mailchimp_api_key}}}}\n      base_url: '{}'",
                self.mc.base_url()
            ),
        );
        // Quoted: an audience id may be all digits (or read as a float, `1e5…`).
        replace("list_id: a1b2c3d4e5", &format!("list_id: '{}'", self.list));
        replace("page_size: 500", "page_size: 16");
        match default_currency {
            Some(c) => replace("default_currency: USD", &format!("default_currency: {c}")),
            None => replace("  default_currency: USD\n", ""),
        }
        std::fs::write(self.dir.path().join("ml-connector.yaml"), project).unwrap();
    }

    fn ml(&self, args: &[&str], stdin: &str) -> (i32, String) {
        common::run(self.dir.path(), args, stdin)
    }

    /// The binary with a failpoint armed: it must kill itself (no exit code).
    fn ml_killed_at(&self, failpoint: &str, args: &[&str]) {
        let mut command = common::bin();
        command.env("ML_CONNECTOR_FAILPOINT", failpoint);
        let (code, out) = common::run_with(command, self.dir.path(), args, "");
        assert_eq!(code, -1, "`{failpoint}` should have killed `{}`:\n{out}", args.join(" "));
        assert!(out.contains("failpoint `"), "{out}");
    }

    fn bca(&self) -> BcAdmin {
        self.bc.admin()
    }

    /// Waits until Mailchimp has finished with the requests of a killed process: they may still
    /// be handled (and applied) after the client is gone, as by the real service.
    fn settle(&self) {
        let admin = self.mc.admin();
        let mut seen = usize::MAX;
        for _ in 0..50 {
            let (now, busy) = (admin.requests().len(), admin.counters().in_flight);
            if busy == 0 && now == seen {
                return;
            }
            seen = now;
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Mailchimp is still handling requests");
    }

    /// The Mailchimp writes (anything but GET) logged since the last clear, as (method, path,
    /// status).
    fn mc_writes(&self) -> Vec<(String, String, u16)> {
        self.mc
            .admin()
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| (r.method, r.path, r.status))
            .collect()
    }
}

/// The counts of a pipeline's run summary line (`NAME: read …, failed N`, without what may
/// follow, such as the API calls made).
fn summary(out: &str, pipeline: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{pipeline}: ")))
        .unwrap_or_else(|| panic!("no summary for `{pipeline}` in:\n{out}"));
    line.split("; ").take(2).collect::<Vec<_>>().join("; ")
}

fn counts(read: u64, filtered: u64, create: u64, update: u64, unchanged: u64) -> String {
    format!("read {read}, filtered {filtered}, did create {create}, update {update}; unchanged {unchanged}, failed 0")
}

fn assert_summary(out: &str, pipeline: &str, expected: &str) {
    assert_eq!(summary(out, pipeline), format!("{pipeline}: {expected}"), "\n{out}");
}

/// The `status` line of a pipeline.
fn status_line<'a>(out: &'a str, pipeline: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{pipeline}  watermark: ")))
        .unwrap_or_else(|| panic!("no status for `{pipeline}` in:\n{out}"))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---------------------------------------------------------------------------------------------
// The seeded company and what Mailchimp must hold for it.

/// A customer as seeded, with what its member and e-commerce customer must look like.
#[derive(Clone, Debug)]
struct Customer {
    id: String,
    number: String,
    email: String,
    display_name: String,
    kind: &'static str,
    first: String,
    last: String,
    phone: String,
    /// addressLine1, city, state, postal code, country: when complete.
    address: Option<[String; 5]>,
    currency: String,
}

#[derive(Clone, Debug)]
struct Item {
    number: String,
    name: String,
    price: f64,
}

#[derive(Clone, Debug)]
struct Invoice {
    number: String,
    customer: usize,
    date: String,
    /// (sequence, item index, quantity)
    lines: Vec<(i64, usize, i64)>,
}

#[derive(Default)]
struct Company {
    customers: Vec<Customer>,
    items: Vec<Item>,
    invoices: Vec<Invoice>,
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
    fn add_customer(&mut self, bca: &BcAdmin, company: &str, i: usize, email: &str, currency: Option<&str>) {
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
            // An incomplete address is not sent.
            None => fields["city"] = json!("Savannah"),
        }
        if let Some(c) = currency {
            fields["currencyCode"] = json!(c);
        }
        let c = bca.create_customer(company, fields);
        assert!(c.get("error").is_none(), "{c}");
        self.customers.push(Customer {
            id: c["id"].as_str().unwrap().to_owned(),
            number: c["number"].as_str().unwrap().to_owned(),
            email: email.trim().to_lowercase(),
            display_name,
            kind,
            first,
            last,
            phone,
            address,
            currency: c["currencyCode"].as_str().unwrap().to_owned(),
        });
    }

    fn add_item(&mut self, bca: &BcAdmin, company: &str, name: &str, price: f64) {
        let item = bca.create_item(company, json!({"displayName": name, "unitPrice": price}));
        assert!(item.get("error").is_none(), "{item}");
        self.items.push(Item { number: item["number"].as_str().unwrap().to_owned(), name: name.to_owned(), price });
    }

    /// Creates an invoice with `(item index, quantity)` lines; posts it unless `draft`.
    fn add_invoice(&mut self, bca: &BcAdmin, company: &str, customer: usize, lines: &[(usize, i64)], draft: bool) {
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
        assert_eq!(seqs.len(), lines.len());
        self.invoices.push(Invoice {
            number: posted["number"].as_str().unwrap().to_owned(),
            customer,
            date: posted["invoiceDate"].as_str().unwrap().to_owned(),
            lines: seqs.into_iter().zip(lines).map(|(s, &(item, q))| (s, item, q)).collect(),
        });
    }

    /// 30 customers (every fifth a company, two thirds with a complete address), 6 items, 40
    /// posted invoices with 1–5 item lines, one draft. Customers 9, 19 and 29 buy in EUR.
    fn seed(bca: &BcAdmin, company: &str) -> Company {
        let mut co = Company::default();
        for i in 0..30 {
            let email =
                if i == 3 { "Customer03@Example.COM".to_owned() } else { format!("customer{i:02}@example.com") };
            let currency = (i % 10 == 9).then_some("EUR");
            co.add_customer(bca, company, i, &email, currency);
        }
        for (name, price) in [
            ("ATHENS Desk", 1000.8),
            ("PARIS Chair", 103.67),
            ("ROME Lamp", 45.0),
            ("LONDON Shelf", 12.35),
            ("BERLIN Table", 249.99),
            ("OSLO Rug", 89.5),
        ] {
            co.add_item(bca, company, name, price);
        }
        for n in 0..40 {
            let lines: Vec<(usize, i64)> =
                (0..1 + n % 5).map(|k| ((n + 2 * k) % 6, (1 + (n + k) % 4) as i64)).collect();
            co.add_invoice(bca, company, (n * 7) % 30, &lines, false);
        }
        co.add_invoice(bca, company, 1, &[(0, 1)], true);
        co
    }

    fn line_total(&self, item: usize, quantity: i64) -> f64 {
        round2(self.items[item].price * quantity as f64)
    }

    fn invoice_total(&self, inv: &Invoice) -> f64 {
        round2(inv.lines.iter().map(|&(_, item, q)| self.line_total(item, q)).sum())
    }

    /// The audience must hold exactly these members, with these merge fields.
    fn check_members(&self, w: &World, customers: &[usize]) {
        let members = w.mc.admin().members(&w.list);
        let emails: BTreeSet<String> =
            members.iter().map(|m| m["email_address"].as_str().unwrap().to_owned()).collect();
        let expected: BTreeSet<String> = customers.iter().map(|&i| self.customers[i].email.clone()).collect();
        assert_eq!(emails, expected);
        assert_eq!(members.len(), customers.len());
        for &i in customers {
            let c = &self.customers[i];
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

    /// The store must hold exactly these products, e-commerce customers and orders.
    fn check_store(&self, w: &World, customers: &[usize]) {
        let products: BTreeMap<String, Value> =
            w.mc.admin().products(STORE).into_iter().map(|p| (p["id"].as_str().unwrap().to_owned(), p)).collect();
        assert_eq!(
            products.keys().cloned().collect::<Vec<_>>(),
            self.items.iter().map(|i| i.number.clone()).collect::<Vec<_>>()
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

        let mc_customers: BTreeMap<String, Value> =
            w.mc.admin().customers(STORE).into_iter().map(|c| (c["id"].as_str().unwrap().to_owned(), c)).collect();
        assert_eq!(mc_customers.len(), customers.len());
        for &i in customers {
            let c = &self.customers[i];
            let m = &mc_customers[&c.number];
            assert_eq!(m["email_address"], c.email.as_str());
            assert_eq!(m["opt_in_status"], false);
            assert_eq!(m["first_name"], c.first.as_str());
            assert_eq!(m["last_name"], c.last.as_str());
            assert_eq!(m["company"], if c.kind == "Company" { c.display_name.as_str() } else { "" });
        }
        self.check_orders(w);
    }

    /// Exactly one order per posted invoice, nothing else.
    fn check_orders(&self, w: &World) {
        let orders = w.mc.admin().orders(STORE);
        let ids: Vec<&str> = orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "an order id twice: {ids:?}");
        let expected: BTreeSet<String> = self.invoices.iter().map(|i| format!("inv-{}", i.number)).collect();
        assert_eq!(unique, expected.iter().map(String::as_str).collect::<BTreeSet<_>>());
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
}

// ---------------------------------------------------------------------------------------------

#[test]
fn a_seeded_company_syncs_exactly_then_only_what_changed() {
    let w = World::new(Some("USD"));
    let bca = w.bca();
    let mut co = Company::seed(&bca, &w.company);
    let everyone: Vec<usize> = (0..30).collect();

    // 1. The initial sync.
    let (code, out) = w.ml(&["run"], "");
    assert_eq!(code, 0, "{out}");
    assert_summary(&out, "store", &counts(1, 0, 1, 0, 0));
    assert_summary(&out, "customers-to-members", &counts(30, 0, 30, 0, 0));
    assert_summary(&out, "items-to-products", &counts(6, 0, 6, 0, 0));
    assert_summary(&out, "customers-to-ecommerce", &counts(30, 0, 30, 0, 0));
    assert_summary(&out, "invoices-to-orders", &counts(41, 1, 40, 0, 0));
    let store = w.mc.admin().store(STORE).unwrap();
    assert_eq!(store["list_id"], w.list.as_str());
    assert_eq!(store["currency_code"], "USD");
    assert_eq!(store["name"], COMPANY);
    co.check_members(&w, &everyone);
    co.check_store(&w, &everyone);
    // Business Central is only read.
    let bc_writes: Vec<_> = w.bc.admin().requests().into_iter().filter(|r| r.method != "GET").collect();
    assert!(bc_writes.is_empty(), "{bc_writes:?}");

    // 2. Nothing changed in BC: everything is read again (lookback), nothing is written.
    w.mc.admin().clear_requests();
    let (code, out) = w.ml(&["run"], "");
    assert_eq!(code, 0, "{out}");
    assert_summary(&out, "store", &counts(1, 0, 0, 0, 1));
    assert_summary(&out, "customers-to-members", &counts(30, 0, 0, 0, 30));
    assert_summary(&out, "items-to-products", &counts(6, 0, 0, 0, 6));
    assert_summary(&out, "customers-to-ecommerce", &counts(30, 0, 0, 0, 30));
    assert_summary(&out, "invoices-to-orders", &counts(41, 1, 0, 0, 40));
    assert_eq!(w.mc_writes(), vec![], "a run without changes wrote to Mailchimp");
    co.check_orders(&w);

    // 3. Incremental: an hour later, one customer moves, one is renamed, three invoices are
    //    posted. Exactly that is written.
    bca.advance_clock(Duration::from_secs(3600));
    let moved = 0;
    let renamed = 1;
    let c = bca.update_customer(
        &w.company,
        &co.customers[moved].id,
        json!({"addressLine1": "1 Analytical Engine Way", "city": "London", "state": "LND", "postalCode": "NW1 2DB", "country": "GB"}),
    );
    assert!(c.get("error").is_none(), "{c}");
    co.customers[moved].address =
        Some(["1 Analytical Engine Way".into(), "London".into(), "LND".into(), "NW1 2DB".into(), "GB".into()]);
    let c = bca.update_customer(&w.company, &co.customers[renamed].id, json!({"displayName": "Grace Brewster Hopper"}));
    assert!(c.get("error").is_none(), "{c}");
    co.customers[renamed].display_name = "Grace Brewster Hopper".into();
    co.customers[renamed].last = "Brewster Hopper".into();
    co.add_invoice(&bca, &w.company, 5, &[(1, 2), (3, 1)], false);
    co.add_invoice(&bca, &w.company, renamed, &[(4, 1)], false);
    co.add_invoice(&bca, &w.company, 19, &[(0, 1), (2, 3), (5, 2)], false);
    w.mc.admin().clear_requests();
    let (code, out) = w.ml(&["run"], "");
    assert_eq!(code, 0, "{out}");
    assert_summary(&out, "store", &counts(1, 0, 0, 0, 1));
    // The seeded records are still within the lookback of the watermark: read again, unchanged.
    assert_summary(&out, "customers-to-members", &counts(30, 0, 0, 2, 28));
    assert_summary(&out, "items-to-products", &counts(6, 0, 0, 0, 6));
    // The move changes nothing an e-commerce customer carries; the new name does.
    assert_summary(&out, "customers-to-ecommerce", &counts(30, 0, 0, 1, 29));
    assert_summary(&out, "invoices-to-orders", &counts(44, 1, 3, 0, 40));
    let mut writes: Vec<(String, String, u16)> = w.mc_writes();
    writes.sort();
    let member = |i: usize| format!("/3.0/lists/{}/members/{}", w.list, subscriber_hash(&co.customers[i].email));
    let mut expected = vec![
        ("PUT".to_owned(), member(moved), 200),
        ("PUT".to_owned(), member(renamed), 200),
        ("PUT".to_owned(), format!("/3.0/ecommerce/stores/{STORE}/customers/{}", co.customers[renamed].number), 200),
    ];
    expected.extend((0..3).map(|_| ("POST".to_owned(), format!("/3.0/ecommerce/stores/{STORE}/orders"), 200)));
    expected.sort();
    assert_eq!(writes, expected);
    co.check_members(&w, &everyone);
    co.check_store(&w, &everyone);
    assert_eq!(w.mc.admin().orders(STORE).len(), 43);

    // 4a. Re-running never duplicates an order; the state agrees. The watermark is now an hour
    //     past the seed: only the three new invoices are read.
    w.mc.admin().clear_requests();
    let (code, out) = w.ml(&["run", "invoices-to-orders"], "");
    assert_eq!(code, 0, "{out}");
    assert_summary(&out, "invoices-to-orders", &counts(3, 0, 0, 0, 3));
    assert_eq!(w.mc_writes(), vec![]);
    co.check_orders(&w);
    let (code, out) = w.ml(&["status", "--last", "1"], "");
    assert_eq!(code, 0, "{out}");
    assert!(status_line(&out, "invoices-to-orders").contains("ledger: 43 key(s)  open dead letters: 0"), "{out}");
    assert!(status_line(&out, "customers-to-members").contains("ledger: 30 key(s)  open dead letters: 0"), "{out}");
    assert!(status_line(&out, "items-to-products").contains("ledger: 6 key(s)"), "{out}");
    let (_, letters) = w.ml(&["dead-letters"], "");
    assert_eq!(letters.trim(), "0 dead letter(s)");
}

#[test]
fn an_order_sync_killed_midway_leaves_exactly_one_order_per_invoice() {
    let w = World::new(Some("USD"));
    let co = Company::seed(&w.bca(), &w.company);
    let (code, out) =
        w.ml(&["run", "store", "customers-to-members", "items-to-products", "customers-to-ecommerce"], "");
    assert_eq!(code, 0, "{out}");

    // Killed right after Mailchimp accepted the 13th order, before the ledger knew of it (other
    // writes of the same page may be in flight and accepted too).
    w.mc.admin().clear_requests();
    w.ml_killed_at("after-write:13", &["run", "invoices-to-orders"]);
    w.settle();
    let accepted = w.mc.admin().orders(STORE).len();
    assert!((13..40).contains(&accepted), "{accepted} orders after the kill");
    let (code, out) = w.ml(&["status", "--last", "1"], "");
    assert_eq!(code, 0, "{out}");
    let line = status_line(&out, "invoices-to-orders");
    assert!(line.contains("watermark: none  ledger: 12 key(s)"), "{out}");
    assert!(out.contains("(did not finish)"), "{out}");

    // The re-run sends what the ledger does not know; the orders Mailchimp already has are
    // updated under the same id, never created twice.
    let (code, out) = w.ml(&["run", "invoices-to-orders"], "");
    assert_eq!(code, 0, "{out}");
    assert_summary(&out, "invoices-to-orders", &counts(41, 1, 28, 0, 12));
    co.check_orders(&w);
    let writes = w.mc_writes();
    let orders_path = format!("/3.0/ecommerce/stores/{STORE}/orders");
    let created = writes.iter().filter(|(m, p, s)| m == "POST" && *p == orders_path && *s == 200).count();
    let refused = writes.iter().filter(|(m, p, s)| m == "POST" && *p == orders_path && *s == 400).count();
    let patched = writes.iter().filter(|(m, p, s)| m == "PATCH" && p.starts_with(&orders_path) && *s == 200).count();
    assert_eq!(created, 40, "each order is created exactly once: {writes:?}");
    assert_eq!(refused, accepted - 12, "the orders accepted but unrecorded were sent again: {writes:?}");
    assert_eq!(patched, refused, "and updated in place: {writes:?}");
    assert_eq!(writes.len(), created + refused + patched, "nothing else was written: {writes:?}");

    let (_, out) = w.ml(&["status", "--last", "1"], "");
    assert!(status_line(&out, "invoices-to-orders").contains("ledger: 40 key(s)  open dead letters: 0"), "{out}");

    // Once more: nothing to write.
    w.mc.admin().clear_requests();
    let (code, out) = w.ml(&["run"], "");
    assert_eq!(code, 0, "{out}");
    assert_summary(&out, "invoices-to-orders", &counts(41, 1, 0, 0, 40));
    assert_eq!(w.mc_writes(), vec![]);
    co.check_orders(&w);
}

#[test]
fn bad_records_are_dead_lettered_with_their_reason_and_replay_resolves_them() {
    // A company whose local currency is not set up in BC: its local-currency customers and
    // invoices carry no currency code. The project has no `default_currency`, so such an
    // invoice has no currency at all. (The stock store takes its currency from that var, so
    // here the store exists already, as when a shop integration created it, and the pipelines
    // that feed it are run by name.)
    let w = World::new(None);
    let bca = w.bca();
    let mut co = Company::default();
    co.add_customer(&bca, &w.company, 0, "customer00@example.com", Some("USD"));
    co.add_customer(&bca, &w.company, 1, "customer01@example.com", Some("EUR"));
    co.add_customer(&bca, &w.company, 2, "customer02@example.com", Some(""));
    co.add_customer(&bca, &w.company, 3, "tim@example", Some("USD"));
    co.add_customer(&bca, &w.company, 4, "orders@fabrikam.example", Some("USD"));
    co.add_customer(&bca, &w.company, 5, "", Some("USD"));
    co.add_item(&bca, &w.company, "ATHENS Desk", 1000.8);
    co.add_item(&bca, &w.company, "PARIS Chair", 103.67);
    for (customer, lines) in [(0, vec![(0, 1)]), (1, vec![(1, 2), (0, 1)]), (2, vec![(1, 3)]), (4, vec![(0, 2)])] {
        co.add_invoice(&bca, &w.company, customer, &lines, false);
    }
    let no_currency = co.invoices.remove(2);
    assert_eq!(co.customers[no_currency.customer].currency, "");
    w.rt.block_on(async {
        let created = reqwest::Client::new()
            .post(format!("{}/3.0/ecommerce/stores", w.mc.base_url()))
            .basic_auth("ml-connector", Some(DEFAULT_API_KEY))
            .json(&json!({"id": STORE, "list_id": w.list, "name": COMPANY, "currency_code": "USD"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200, "{:?}", created.text().await);
    });

    let (code, out) = w.ml(&["run", FEEDS[0], FEEDS[1], FEEDS[2], FEEDS[3]], "");
    assert_eq!(code, 0, "dead letters do not fail a run: {out}");
    let one_letter = |read, filtered, create| {
        format!(
            "read {read}, filtered {filtered}, did create {create}, update 0; unchanged 0, failed 1 (1 in dead letters)"
        )
    };
    assert_summary(&out, "customers-to-members", &one_letter(6, 1, 4));
    assert_summary(&out, "items-to-products", &counts(2, 0, 2, 0, 0));
    assert_summary(&out, "customers-to-ecommerce", &one_letter(6, 1, 4));
    assert_summary(&out, "invoices-to-orders", &one_letter(4, 0, 3));
    co.check_members(&w, &[0, 1, 2, 4]);
    co.check_store(&w, &[0, 1, 2, 4]);

    // Each letter says which record and why.
    let (code, letters) = w.ml(&["dead-letters"], "");
    assert_eq!(code, 0, "{letters}");
    let tim = co.customers[3].clone();
    let bad_email = "fields.email_address: `tim@example` is not a valid email address";
    for expected in [
        "customers-to-members / mapping: 1 record(s)".to_owned(),
        format!("  #1 {}: {bad_email}", subscriber_hash("tim@example")),
        "customers-to-ecommerce / mapping: 1 record(s)".to_owned(),
        format!("  #2 {}: {bad_email}", tim.number),
        "invoices-to-orders / mapping: 1 record(s)".to_owned(),
        format!(
            "  #3 inv-{}: fields.currency_code: `record.currencyCode or vars.default_currency` rendered to an undefined value (a record field or var it reads does not exist)",
            no_currency.number
        ),
        "3 dead letter(s)".to_owned(),
    ] {
        assert!(letters.lines().any(|l| l == expected), "no line `{expected}` in:\n{letters}");
    }
    assert_eq!(letters.lines().count(), 7, "{letters}");

    // Tim's address is corrected in BC: the replay reads him again and resolves both letters.
    let fixed = bca.update_customer(&w.company, &tim.id, json!({"email": "tim@example.com"}));
    assert!(fixed.get("error").is_none(), "{fixed}");
    co.customers[3].email = "tim@example.com".into();
    for pipeline in ["customers-to-members", "customers-to-ecommerce"] {
        let (code, out) = w.ml(&["replay", "--pipeline", pipeline], "");
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(&format!("{pipeline}: replayed 1, resolved 1, still open 0")), "{out}");
    }
    co.check_members(&w, &[0, 1, 2, 3, 4]);
    co.check_store(&w, &[0, 1, 2, 3, 4]);

    // Replaying the invoice before anything is fixed changes nothing.
    let (code, out) = w.ml(&["replay", "--pipeline", "invoices-to-orders"], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("invoices-to-orders: replayed 1, resolved 0, still open 1"), "{out}");
    assert_eq!(w.mc.admin().orders(STORE).len(), 3);

    // 4c. The project gets its default currency. The replay is killed right after Mailchimp
    //     accepted the order, before the letter is resolved; the next replay resolves it
    //     without a second order.
    w.write_project(Some("USD"));
    w.mc.admin().clear_requests();
    w.ml_killed_at("after-write:1", &["replay", "--pipeline", "invoices-to-orders"]);
    w.settle();
    assert_eq!(w.mc.admin().orders(STORE).len(), 4);
    let (_, letters) = w.ml(&["dead-letters"], "");
    assert!(letters.contains(&format!("  #3 inv-{}: ", no_currency.number)), "still open: {letters}");
    assert!(letters.contains("1 dead letter(s)"), "{letters}");
    let (code, out) = w.ml(&["replay"], "");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("invoices-to-orders: replayed 1, resolved 1, still open 0"), "{out}");
    let order_id = format!("inv-{}", no_currency.number);
    co.invoices.push(no_currency);
    co.check_orders(&w);
    let orders_path = format!("/3.0/ecommerce/stores/{STORE}/orders");
    assert_eq!(
        w.mc_writes(),
        vec![
            ("POST".to_owned(), orders_path.clone(), 200),
            ("POST".to_owned(), orders_path.clone(), 400),
            ("PATCH".to_owned(), format!("{orders_path}/{order_id}"), 200),
        ],
        "created once, then updated in place"
    );

    // Everything is accounted for: the next run writes nothing, no letter is open.
    w.mc.admin().clear_requests();
    let (code, out) = w.ml(&["run", FEEDS[0], FEEDS[1], FEEDS[2], FEEDS[3]], "");
    assert_eq!(code, 0, "{out}");
    assert_summary(&out, "customers-to-members", &counts(6, 1, 0, 0, 5));
    assert_summary(&out, "items-to-products", &counts(2, 0, 0, 0, 2));
    assert_summary(&out, "customers-to-ecommerce", &counts(6, 1, 0, 0, 5));
    assert_summary(&out, "invoices-to-orders", &counts(4, 0, 0, 0, 4));
    assert_eq!(w.mc_writes(), vec![]);
    let (_, letters) = w.ml(&["dead-letters"], "");
    assert_eq!(letters.trim(), "0 dead letter(s)");
    let (_, letters) = w.ml(&["dead-letters", "--all"], "");
    assert_eq!(letters.lines().filter(|l| l.contains("(resolved ")).count(), 3, "{letters}");
    let (code, out) = w.ml(&["status", "--last", "1"], "");
    assert_eq!(code, 0, "{out}");
    for (pipeline, ledger) in [("customers-to-members", 5), ("customers-to-ecommerce", 5), ("invoices-to-orders", 4)] {
        let line = status_line(&out, pipeline);
        assert!(line.ends_with(&format!("ledger: {ledger} key(s)  open dead letters: 0")), "{out}");
    }
}
