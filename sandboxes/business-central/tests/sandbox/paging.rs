//! Server-driven paging and incremental reads under concurrent change.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use sandbox_business_central::SandboxConfig;
use serde_json::json;

use crate::common::{Env, read_all};

async fn with_customers(n: usize, config: SandboxConfig) -> Env {
    let env = Env::with(config).await;
    for i in 0..n {
        env.customer(&format!("Customer {i:02}"), &format!("c{i}@example.com"));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_links_cover_everything_once() {
    let env = with_customers(7, SandboxConfig { max_page_size: 3, ..SandboxConfig::default() }).await;
    let r = env.get(&env.co("customers")).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 3, "the server cap applies without Prefer");
    assert!(r.header("preference-applied").is_none());
    let next = r.body["@odata.nextLink"].as_str().unwrap().to_string();
    assert!(next.starts_with(&format!("{}/companies({})/customers?", env.api, env.company)), "{next}");
    let token = next.split("$skiptoken=").nth(1).unwrap();
    assert!(token.parse::<u64>().is_err(), "the skip token is opaque, not an offset");
    assert!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).is_ok());
    // Prefer lowers the page size and is echoed; it cannot raise it past the cap.
    let r = env.send(Method::GET, &env.co("customers"), None, &[("Prefer", "odata.maxpagesize=2")]).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 2);
    assert_eq!(r.header("preference-applied").as_deref(), Some("odata.maxpagesize=2"));
    let r = env.send(Method::GET, &env.co("customers"), None, &[("Prefer", "odata.maxpagesize=50")]).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 3);
    let (rows, pages) = read_all(&env, &env.co("customers"), 2).await;
    assert_eq!(pages, 4);
    let numbers: Vec<&str> = rows.iter().map(|r| r["number"].as_str().unwrap()).collect();
    assert_eq!(numbers, ["C00010", "C00020", "C00030", "C00040", "C00050", "C00060", "C00070"]);
    // Filters and $select travel in the link.
    let (rows, _) =
        read_all(&env, &format!("{}?$filter=number%20ge%20'C00030'&$select=number", env.co("customers")), 2).await;
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].as_object().unwrap().len(), 2);
    // A tampered or foreign token is refused.
    let r = env.get(&format!("{}?$skiptoken=MTIz", env.co("customers"))).await;
    assert_eq!(r.status, 400);
    let r = env.get(&format!("{}?$filter=number%20eq%20'C00010'&$skiptoken={token}", env.co("customers"))).await;
    assert_eq!(r.status, 400, "a token belongs to its query");
    // $top: at most that many, no nextLink.
    let r = env
        .send(Method::GET, &format!("{}?$top=5", env.co("customers")), None, &[("Prefer", "odata.maxpagesize=2")])
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 2);
    assert!(r.body.get("@odata.nextLink").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_paging_survives_deletes_and_inserts() {
    let env = with_customers(9, SandboxConfig::default()).await;
    let prefer = [("Prefer", "odata.maxpagesize=3")];
    let first = env.send(Method::GET, &env.co("customers"), None, &prefer).await;
    let seen: Vec<String> =
        first.body["value"].as_array().unwrap().iter().map(|r| r["number"].as_str().unwrap().to_string()).collect();
    assert_eq!(seen, ["C00010", "C00020", "C00030"]);
    // Between pages: two rows before the cursor disappear, one appears before it.
    for row in first.body["value"].as_array().unwrap().iter().take(2) {
        assert_eq!(
            env.delete(&format!("{}({})", env.co("customers"), row["id"].as_str().unwrap()), None).await.status,
            204
        );
    }
    env.admin.create_customer(&env.company, json!({"displayName": "Early", "number": "A0001"}));
    let mut rest = Vec::new();
    let mut next = first.body["@odata.nextLink"].as_str().map(str::to_string);
    while let Some(url) = next {
        let r = env.send(Method::GET, &url, None, &prefer).await;
        assert_eq!(r.status, 200, "{}", r.body);
        rest.extend(r.body["value"].as_array().unwrap().iter().map(|r| r["number"].as_str().unwrap().to_string()));
        next = r.body["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(rest, ["C00040", "C00050", "C00060", "C00070", "C00080", "C00090"], "no row skipped or repeated");
}

/// What an incremental reader knows: id → (etag, lastModifiedDateTime).
type Seen = HashMap<String, (String, String)>;

/// One incremental run: everything with `lastModifiedDateTime ge watermark − lookback`; returns
/// the new watermark, taken from the data.
async fn incremental_run(
    env: &Env,
    seen: &mut Seen,
    watermark: Option<jiff::Timestamp>,
    lookback: Duration,
    between_pages: &mut dyn FnMut(usize),
) -> Option<jiff::Timestamp> {
    let from =
        watermark.map(|w| jiff::Timestamp::from_nanosecond(w.as_nanosecond() - lookback.as_nanos() as i128).unwrap());
    let mut url = match from {
        Some(t) => format!("{}?$filter=lastModifiedDateTime%20ge%20{t:.3}", env.co("customers")),
        None => env.co("customers"),
    };
    let mut max = watermark;
    let mut page = 0;
    loop {
        let r = env.send(Method::GET, &url, None, &[("Prefer", "odata.maxpagesize=3")]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for row in r.body["value"].as_array().unwrap() {
            let stamp = row["lastModifiedDateTime"].as_str().unwrap().to_string();
            let ts: jiff::Timestamp = stamp.parse().unwrap();
            max = Some(max.map_or(ts, |m| m.max(ts)));
            seen.insert(row["id"].as_str().unwrap().into(), (row["@odata.etag"].as_str().unwrap().into(), stamp));
        }
        page += 1;
        between_pages(page);
        match r.body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => return max,
        }
    }
}

fn assert_current(env: &Env, seen: &Seen) {
    for customer in env.admin.customers(&env.company) {
        let id = customer["id"].as_str().unwrap();
        let (etag, _) = seen.get(id).unwrap_or_else(|| panic!("never saw {}", customer["number"]));
        assert_eq!(etag, customer["@odata.etag"].as_str().unwrap(), "stale view of {}", customer["number"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_reads_miss_nothing_with_equal_timestamps() {
    let env = Env::new().await;
    let t0: jiff::Timestamp = "2025-01-01T00:00:00.000Z".parse().unwrap();
    env.admin.set_timestamp_override(Some(t0));
    let ids: Vec<String> =
        (0..7).map(|i| env.customer(&format!("C{i}"), "x@example.com")["id"].as_str().unwrap().to_string()).collect();
    env.admin.set_timestamp_override(None);

    // Run 1 reads three rows, then a user changes a row already read, a row not yet read, and
    // adds a row that sorts before the cursor — all with the same timestamp T1.
    let t1: jiff::Timestamp = "2025-01-01T00:00:05.003Z".parse().unwrap();
    let mut seen = Seen::new();
    let admin = env.admin.clone();
    let company = env.company.clone();
    let (read_before, not_yet_read) = (ids[1].clone(), ids[5].clone());
    let mut change = |page: usize| {
        if page == 1 {
            admin.set_timestamp_override(Some(t1));
            admin.update_customer(&company, &read_before, json!({"phoneNumber": "1"}));
            admin.update_customer(&company, &not_yet_read, json!({"phoneNumber": "2"}));
            admin.create_customer(&company, json!({"displayName": "Late but early", "number": "A0001"}));
            admin.set_timestamp_override(None);
        }
    };
    let watermark = incremental_run(&env, &mut seen, None, Duration::ZERO, &mut change).await.unwrap();
    assert_eq!(watermark, t1, "the watermark comes from the data");
    assert_eq!(seen.len(), 7, "the new row sorted before the cursor: not in this read");
    assert_eq!(seen[&not_yet_read].1, "2025-01-01T00:00:05.003Z", "the row after the cursor was read in its new state");

    // `gt W` would miss the rows stamped exactly W that the cursor had passed.
    let r =
        env.get(&format!("{}?$filter=lastModifiedDateTime%20gt%202025-01-01T00:00:05.003Z", env.co("customers"))).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 0);
    // `ge W` (or gt with a lookback) finds them.
    let r =
        env.get(&format!("{}?$filter=lastModifiedDateTime%20ge%202025-01-01T00:00:05.003Z", env.co("customers"))).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 3);
    let r =
        env.get(&format!("{}?$filter=lastModifiedDateTime%20gt%202025-01-01T00:00:04.003Z", env.co("customers"))).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 3);

    let mut nothing = |_: usize| {};
    incremental_run(&env, &mut seen, Some(watermark), Duration::from_secs(1), &mut nothing).await;
    assert_eq!(seen.len(), 8);
    assert_current(&env, &seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_reads_miss_nothing_under_concurrent_writes() {
    let env = with_customers(12, SandboxConfig::default()).await;
    let ids: Vec<String> =
        env.admin.customers(&env.company).iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (admin, company, stop, ids) = (env.admin.clone(), env.company.clone(), stop.clone(), ids.clone());
        tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let id = &ids[(i * 7) % ids.len()];
                admin.update_customer(&company, id, json!({"phoneNumber": format!("{i}")}));
                if i.is_multiple_of(5) {
                    admin.create_customer(
                        &company,
                        json!({"displayName": format!("New {i}"), "number": format!("B{i:05}")}),
                    );
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            i
        })
    };
    let mut seen = Seen::new();
    let mut nothing = |_: usize| {};
    let mut watermark = None;
    for _ in 0..3 {
        watermark = incremental_run(&env, &mut seen, watermark, Duration::from_secs(10), &mut nothing).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let writes = writer.await.unwrap();
    assert!(writes > 10, "the writer ran ({writes} writes)");
    // One more run after the writes stopped: the reader must now know the final state of all.
    incremental_run(&env, &mut seen, watermark, Duration::from_secs(10), &mut nothing).await;
    assert_current(&env, &seen);
}
