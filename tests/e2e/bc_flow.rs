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

use crate::reliability::{self, BcWorld, COMPANY, Company, STORE, Tuning, mc_writes};

use std::time::Duration;

use engine::template::subscriber_hash;
use sandbox_business_central::Admin as BcAdmin;
use sandbox_mailchimp::DEFAULT_API_KEY;
use serde_json::json;

/// Every pipeline but the store, in dependency order.
const FEEDS: [&str; 4] = ["customers-to-members", "items-to-products", "customers-to-ecommerce", "invoices-to-orders"];

/// Both sandboxes and the stock project, with `vars.default_currency` as given.
fn world(default_currency: Option<&'static str>) -> BcWorld {
    BcWorld::new(Tuning { default_currency, ..Tuning::default() })
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

/// 30 customers (every fifth a company, two thirds with a complete address), 6 items, 40
/// posted invoices with 1–5 item lines, one draft. Customers 9, 19 and 29 buy in EUR.
fn seed(bca: &BcAdmin, company: &str) -> Company {
    let mut co = Company::default();
    for i in 0..30 {
        let email = if i == 3 { "Customer03@Example.COM".to_owned() } else { format!("customer{i:02}@example.com") };
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
        let lines: Vec<(usize, i64)> = (0..1 + n % 5).map(|k| ((n + 2 * k) % 6, (1 + (n + k) % 4) as i64)).collect();
        co.add_invoice(bca, company, (n * 7) % 30, &lines, false);
    }
    co.add_invoice(bca, company, 1, &[(0, 1)], true);
    co
}

#[test]
fn a_seeded_company_syncs_exactly_then_only_what_changed() {
    let w = world(Some("USD"));
    let bca = w.bca();
    let mut co = seed(&bca, &w.company);
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
    assert_eq!(mc_writes(&w.mc), vec![], "a run without changes wrote to Mailchimp");
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
    let mut writes: Vec<(String, String, u16)> = mc_writes(&w.mc);
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
    assert_eq!(mc_writes(&w.mc), vec![]);
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
    let w = world(Some("USD"));
    let co = seed(&w.bca(), &w.company);
    let (code, out) =
        w.ml(&["run", "store", "customers-to-members", "items-to-products", "customers-to-ecommerce"], "");
    assert_eq!(code, 0, "{out}");

    // Killed right after Mailchimp accepted the 13th order, before the ledger knew of it (other
    // writes of the same page may be in flight and accepted too).
    w.mc.admin().clear_requests();
    w.ml_killed_at("after-write:13", &["run", "invoices-to-orders"]);
    reliability::settle(&w.mc);
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
    let writes = mc_writes(&w.mc);
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
    assert_eq!(mc_writes(&w.mc), vec![]);
    co.check_orders(&w);
}

#[test]
fn bad_records_are_dead_lettered_with_their_reason_and_replay_resolves_them() {
    // A company whose local currency is not set up in BC: its local-currency customers and
    // invoices carry no currency code. The project has no `default_currency`, so such an
    // invoice has no currency at all. (The stock store takes its currency from that var, so
    // here the store exists already, as when a shop integration created it, and the pipelines
    // that feed it are run by name.)
    let w = world(None);
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
    w.write_project(Tuning::default());
    w.mc.admin().clear_requests();
    w.ml_killed_at("after-write:1", &["replay", "--pipeline", "invoices-to-orders"]);
    reliability::settle(&w.mc);
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
        mc_writes(&w.mc),
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
    assert_eq!(mc_writes(&w.mc), vec![]);
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
