//! The fuzz targets of `fuzz/` on stable: the same checks (`fuzz/src/lib.rs`, included by path)
//! fed by proptest in CI, and by a longer random loop on demand:
//!
//! ```sh
//! cargo test --test e2e fuzz:: -- --ignored --nocapture          # 20 s per target
//! MLC_FUZZ_SECONDS=600 cargo test --test e2e fuzz:: -- --ignored  # longer
//! ```
//!
//! Inputs are arbitrary bytes, strings built from each format's tokens (so they get past the
//! first byte of the parser), and seeds mutated byte by byte. Inputs that once broke something
//! are kept as named regression tests below. The Business Central notification intake lives in
//! the binary, so its inputs go to a real `ml-connector serve` over HTTP.

use crate::common;

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Killed, bin, run};
use proptest::prelude::*;

/// Tokens of each format, for inputs that look almost right.
fn tokens(target: &str) -> &'static [&'static str] {
    match target {
        "yaml" | "pipeline_file" => &[
            "version: 1\n",
            "name: p\n",
            "source:",
            " {connection: files, entity: c.jsonl}",
            "key: ",
            "fields:\n",
            "  a: ",
            "\"{{ record.id }}\"",
            "&x ",
            "*x",
            "<<: ",
            "[",
            "]",
            "{",
            "}",
            ", ",
            ": ",
            "- ",
            "\n",
            "  ",
            "---\n",
            "? ",
            "!!str ",
            "!!int ",
            "'",
            "\"",
            "|\n",
            ">-\n",
            "#",
            "\t",
            "~",
            "1e309",
            "0x1F",
            "target:",
            " {connection: files, resource: records, params: {file: o.jsonl}}\n",
            "depends_on: [p]\n",
            "for_each: \"$..x[?(@.a)]\"",
            "filter: ",
            "schedule: {cron: '* * *'}\n",
            "\u{feff}",
            "é",
            "\\u0000",
        ],
        "template" => &[
            "{{",
            "}}",
            "{%",
            "%}",
            "{#",
            "#}",
            " record",
            ".email",
            ".lines",
            "[0]",
            "[",
            "]",
            "(",
            ")",
            " | ",
            "email",
            "decimal",
            "subscriber_hash",
            "first_name",
            "md5",
            "default(",
            "int",
            "tojson",
            "round(",
            "join(',')",
            " if ",
            " else ",
            " for x in ",
            "endfor",
            "endif",
            " and ",
            " not ",
            " ~ ",
            "*",
            "**",
            "/",
            "//",
            "9999999999",
            "1e308",
            "-",
            "'",
            "\"",
            "range(",
            "namespace(",
            "loop.index",
            "set ",
            "=",
            "macro ",
            "vars.",
            "pipeline",
            "item",
            "\n",
            "é",
            "\\",
        ],
        "mailchimp_webhook" => &[
            "t=",
            "1700000000",
            "-9223372036854775808",
            "9223372036854775807",
            ",v1=",
            "00ff",
            "\n",
            "type=",
            "subscribe",
            "unsubscribe",
            "upemail",
            "&",
            "=",
            "data",
            "[",
            "]",
            "%5B",
            "%5D",
            "%40",
            "%",
            "%zz",
            "%e9",
            "%C3%A9",
            "+",
            "email",
            "merges",
            "FNAME",
            "fired_at=",
            "2009-03-26+21%3A35%3A57",
            "new_email",
            "old_email",
            "é",
            "\u{0}",
        ],
        "gp_soap" => &[
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">",
            "</s:Envelope>",
            "<s:Body>",
            "</s:Body>",
            "<s:Fault>",
            "</s:Fault>",
            "<GetCustomerByKeyResponse>",
            "</GetCustomerByKeyResponse>",
            "<GetCustomerByKeyResult>",
            "</GetCustomerByKeyResult>",
            "<Key><Id>",
            "</Id></Key>",
            "<Addresses>",
            "</Addresses>",
            "<InternetAddresses><EmailToAddress>",
            "</EmailToAddress></InternetAddresses>",
            "<DocumentAmount><Value>",
            "</Value></DocumentAmount>",
            "<detail>",
            "<Message>",
            "</Message>",
            "&amp;",
            "&#x0;",
            "&#1114112;",
            "&bogus;",
            "<![CDATA[",
            "]]>",
            "xsi:nil=\"true\"",
            "<a>",
            "</a>",
            "<a/>",
            "<",
            ">",
            "/",
            "=\"",
            "\"",
            "-1e309",
            "NaN",
            "a@b.c; d@e.f",
        ],
        other => panic!("no tokens for `{other}`"),
    }
}

/// An input: arbitrary bytes, a string of the format's tokens, or a mutated seed.
fn input(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = harness::seeds().into_iter().filter(|(t, _)| *t == target).map(|(_, s)| s).collect();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(prop::sample::select(tokens(target)), 0..40).prop_map(|t| t.concat().into_bytes()),
        (prop::sample::select(seeds), prop::collection::vec((any::<usize>(), any::<u8>(), 0..4u8), 1..8))
            .prop_map(|(seed, edits)| mutate(seed, &edits)),
    ]
}

/// Applies byte edits to a seed: replace, insert, delete, or duplicate a span.
fn mutate(mut data: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, kind) in edits {
        if data.is_empty() {
            data.push(byte);
            continue;
        }
        let i = at % data.len();
        match kind {
            0 => data[i] = byte,
            1 => data.insert(i, byte),
            2 => {
                data.remove(i);
            }
            _ => {
                let end = (i + 1 + usize::from(byte) % 16).min(data.len());
                let span = data[i..end].to_vec();
                data.splice(i..i, span);
            }
        }
    }
    data
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn yaml_never_panics_and_points_inside_the_text(data in input("yaml")) {
        harness::yaml(&data);
    }

    #[test]
    fn templates_never_panic(data in input("template")) {
        harness::template(&data);
    }

    #[test]
    fn mailchimp_webhook_bodies_and_signatures_never_panic(data in input("mailchimp_webhook")) {
        harness::mailchimp_webhook(&data);
    }

    #[test]
    fn gp_soap_answers_never_panic(data in input("gp_soap")) {
        harness::gp_soap(&data);
    }
}

proptest! {
    // Each case loads a project from disk.
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_pipeline_file_loads_or_is_diagnosed_inside_it(data in input("pipeline_file")) {
        harness::pipeline_file(&data);
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs that broke something once (or would, at this size), kept.

/// Nesting deep enough to overflow a recursive parser or a recursive drop.
const DEEP: usize = 60_000;

#[test]
fn deeply_nested_yaml_is_a_diagnostic_not_a_stack_overflow() {
    for text in ["[".repeat(DEEP), "{a: ".repeat(DEEP), format!("a:\n{}", "- ".repeat(DEEP))] {
        // On a small stack, as a test thread or a worker has.
        let handle = std::thread::Builder::new().stack_size(2 << 20).spawn(move || harness::yaml(text.as_bytes()));
        handle.unwrap().join().expect("parsing deep YAML crashed its thread");
    }
}

#[test]
fn aliases_cannot_blow_up_a_small_file() {
    // Each level doubles the size: 2^40 nodes from 30 lines.
    let mut text = String::from("a0: &a0 [x, x]\n");
    for i in 1..40 {
        text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
    }
    let started = Instant::now();
    let result = engine::yaml::parse(std::path::Path::new("bomb.yaml"), &text);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let diagnostics = result.expect_err("an alias bomb is refused");
    assert!(diagnostics[0].message.contains("alias"), "{diagnostics:?}");
}

#[test]
fn deeply_nested_soap_is_an_error_not_a_stack_overflow() {
    let text = format!("{}{}", "<a>".repeat(DEEP), "</a>".repeat(DEEP));
    let handle = std::thread::Builder::new().stack_size(2 << 20).spawn(move || harness::gp_soap(text.as_bytes()));
    handle.unwrap().join().expect("parsing deep XML crashed its thread");
    let err = connector_dynamics_gp::xml::parse(&format!("{}x", "<a>".repeat(DEEP))).unwrap_err();
    assert!(err.contains("nested"), "{err}");
}

#[test]
fn deeply_nested_templates_are_errors() {
    for text in [
        format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("{{{{ {}1{} }}}}", "[".repeat(10_000), "]".repeat(10_000)),
        "{% if x %}".repeat(5_000),
    ] {
        let handle = std::thread::Builder::new().stack_size(2 << 20).spawn(move || harness::template(text.as_bytes()));
        handle.unwrap().join().expect("compiling a deep template crashed its thread");
    }
}

#[test]
fn signature_timestamps_at_the_ends_of_i64_are_refused_not_a_panic() {
    use connector_mailchimp::webhooks::{SignatureError, verify_signature};
    for t in [i64::MIN, i64::MIN + 1, i64::MAX] {
        let header = format!("t={t},v1=00");
        assert_eq!(verify_signature("s", Some(&header), b"x", 1_700_000_000), Err(SignatureError::Stale), "{t}");
    }
    harness::mailchimp_webhook(b"t=-9223372036854775808,v1=00\ntype=subscribe");
}

#[test]
fn the_seeds_pass() {
    for (target, seed) in harness::seeds() {
        harness::run(target, &seed);
    }
}

// ---------------------------------------------------------------------------------------------
// The Business Central notification intake, in the real binary.

const BC_TOKEN: &str = "bc-token-0123456789abcdef";
const CLIENT_STATE: &str = "client-state-secret-42";
const MC_TOKEN: &str = "mc-token-0123456789abcdef";

/// `serve` on a project with both intakes; its base URL.
fn serve() -> (tempfile::TempDir, Killed, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("ml-connector.yaml"),
        "version: 1\nname: fuzz\nconnections:\n  events: {connector: inbox}\n  out: {connector: jsonl, settings: {directory: out}}\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("pipelines")).unwrap();
    for (name, value) in
        [("mailchimp_webhook_token", MC_TOKEN), ("bc_webhook_token", BC_TOKEN), ("bc_client_state", CLIENT_STATE)]
    {
        let (code, out) = run(d, &["secrets", "set", name], value);
        assert_eq!(code, 0, "{out}");
    }
    let mut child = Killed(
        bin()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(d)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("serving on ").unwrap_or_else(|| panic!("{line}")).to_owned();
    (dir, child, base)
}

/// Sends `(path and query, body)` pairs; returns the statuses. Panics when the service stops
/// answering.
fn send_all(base: &str, requests: Vec<(String, Vec<u8>)>) -> Vec<u16> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        for (path, body) in requests {
            let r = http.post(format!("{base}{path}")).body(body).send().await;
            let r = r.unwrap_or_else(|e| panic!("no answer to {path}: {e}"));
            statuses.push(r.status().as_u16());
        }
        let health = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200, "the service still answers");
        statuses
    })
}

fn bc_request(shape: u8, data: &[u8]) -> (String, Vec<u8>) {
    let text = String::from_utf8_lossy(data);
    let hook = format!("/hooks/business-central/{BC_TOKEN}");
    match shape % 4 {
        0 => (hook, data.to_vec()),
        1 => (hook, harness::bc_notification("wrong-state", &text).to_string().into_bytes()),
        2 => {
            let query: String = form_urlencoded_component(&text);
            (format!("{hook}?validationToken={query}"), Vec::new())
        }
        _ => (hook, harness::bc_notification(CLIENT_STATE, &text).to_string().into_bytes()),
    }
}

fn form_urlencoded_component(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[test]
fn the_intakes_answer_any_body_within_their_contract_and_keep_serving() {
    let (dir, mut child, base) = serve();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let inbox = inbox::Inbox::open(&dir.path().join(inbox::DEFAULT_PATH)).unwrap();
    let strategy = (any::<u8>(), prop_oneof![input("mailchimp_webhook"), prop::collection::vec(any::<u8>(), 0..400)]);
    runner
        .run(&strategy, |(shape, data)| {
            let bc_before = inbox.count("business-central").unwrap();
            let (path, body) = bc_request(shape, &data);
            let mc = (format!("/hooks/mailchimp/{MC_TOKEN}"), data.clone());
            let statuses = send_all(&base, vec![(path.clone(), body), mc]);
            // Business Central: 2xx, or 400 for what is not a delivery; never another 4xx (which
            // would delete its subscriptions) nor a 5xx while storage works.
            prop_assert!(matches!(statuses[0], 200 | 202 | 400), "BC {path}: {}", statuses[0]);
            if shape % 4 == 1 {
                prop_assert_eq!(inbox.count("business-central").unwrap(), bc_before, "a wrong clientState was stored");
            }
            // Mailchimp: stored (200) or refused as malformed (400).
            prop_assert!(matches!(statuses[1], 200 | 400), "Mailchimp: {}", statuses[1]);
            Ok(())
        })
        .unwrap();
    assert!(child.0.try_wait().unwrap().is_none(), "serve exited");
}

// ---------------------------------------------------------------------------------------------
// The long loop (`--ignored`).

/// xorshift64*, seeded from the clock unless `MLC_FUZZ_SEED` is set.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random input for `target`, as `input` would make it.
fn random_input(rng: &mut Rng, target: &'static str, seeds: &[Vec<u8>], corpus: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(4) {
        0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
        1 => {
            let t = tokens(target);
            (0..rng.below(60)).map(|_| t[rng.below(t.len())]).collect::<String>().into_bytes()
        }
        2 if !corpus.is_empty() => {
            let base = corpus[rng.below(corpus.len())].clone();
            let edits: Vec<(usize, u8, u8)> =
                (0..1 + rng.below(6)).map(|_| (rng.next() as usize, rng.next() as u8, rng.below(4) as u8)).collect();
            mutate(base, &edits)
        }
        _ => {
            let base = seeds[rng.below(seeds.len())].clone();
            let edits: Vec<(usize, u8, u8)> =
                (0..1 + rng.below(6)).map(|_| (rng.next() as usize, rng.next() as u8, rng.below(4) as u8)).collect();
            mutate(base, &edits)
        }
    }
}

#[test]
#[ignore = "long: the fuzz targets in a random loop on stable (MLC_FUZZ_SECONDS per target, default 20)"]
fn fuzz_loop() {
    let seconds: u64 = std::env::var("MLC_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("MLC_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("MLC_FUZZ_SEED={seed}");
    let mut total = 0u64;
    for target in ["yaml", "template", "mailchimp_webhook", "gp_soap", "pipeline_file"] {
        let mut rng = Rng(seed ^ target.len() as u64);
        let seeds: Vec<Vec<u8>> = harness::seeds().into_iter().filter(|(t, _)| *t == target).map(|(_, s)| s).collect();
        // Inputs that got past the first check are kept and mutated further (a poor man's
        // coverage feedback: "parsed" instead of "new edge").
        let mut corpus: Vec<Vec<u8>> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut executions = 0u64;
        while Instant::now() < deadline {
            let data = random_input(&mut rng, target, &seeds, &corpus);
            let keep = match target {
                "yaml" => engine::yaml::parse(std::path::Path::new("x"), &String::from_utf8_lossy(&data)).is_ok(),
                "mailchimp_webhook" => connector_mailchimp::webhooks::parse_form(&data).is_ok(),
                "gp_soap" => connector_dynamics_gp::xml::parse(&String::from_utf8_lossy(&data)).is_ok(),
                _ => rng.below(8) == 0,
            };
            let outcome = std::panic::catch_unwind(|| harness::run(target, &data));
            if outcome.is_err() {
                panic!("{target} failed on {:?}", String::from_utf8_lossy(&data));
            }
            if keep && corpus.len() < 4096 {
                corpus.push(data);
            }
            executions += 1;
        }
        eprintln!("{target}: {executions} executions, corpus {}", corpus.len());
        total += executions;
    }
    // The BC intake through the binary, for the same time.
    let (_dir, _child, base) = serve();
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut executions = 0u64;
    while Instant::now() < deadline {
        let batch: Vec<(String, Vec<u8>)> = (0..50)
            .map(|_| {
                let data = random_input(&mut rng, "mailchimp_webhook", &[b"x".to_vec()], &[]);
                bc_request(rng.next() as u8, &data)
            })
            .collect();
        for status in send_all(&base, batch) {
            assert!(matches!(status, 200 | 202 | 400), "{status}");
        }
        executions += 50;
    }
    eprintln!("bc_notification (through serve): {executions} executions");
    eprintln!("total: {} executions", total + executions);
}
