//! What each fuzz target checks, as plain functions of the input bytes.
//!
//! The cargo-fuzz targets in `fuzz_targets/` call these, and so do the stable equivalents in
//! `tests/e2e/fuzz.rs` (proptest in CI, and a long random loop with `--ignored`), which include
//! this file by path: the checks are compiled and run on stable even where cargo-fuzz (nightly)
//! is not available. Each function panics only when the code under test breaks a promise: it
//! panicked itself, or returned an error without a message or with a position outside the
//! input.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use connector_dynamics_gp::{records, soap, xml};
use connector_mailchimp::webhooks;
use engine::diagnostic::Diagnostic;
use engine::template::Templates;
use serde_json::{Value, json};

/// Lines and the longest line, in characters, for checking positions. YAML (and editors) break
/// lines at `\r\n`, `\n` and a lone `\r`.
fn extent(text: &str) -> (usize, usize) {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines = normalized.split('\n').count();
    let longest = normalized.split('\n').map(|l| l.chars().count()).max().unwrap_or(0);
    (lines, longest)
}

/// A diagnostic of `text` must say something and point inside it (or just past its end).
fn check_diagnostic(d: &Diagnostic, text: &str) {
    assert!(!d.message.trim().is_empty(), "a diagnostic without a message: {d:?}");
    if let Some(p) = d.position {
        let (lines, longest) = extent(text);
        assert!(p.line >= 1 && p.line <= lines + 1, "line {} outside 1..={}: {d}", p.line, lines + 1);
        assert!(p.column >= 1 && p.column <= longest + 2, "column {} past {longest}: {d}", p.column);
    }
}

/// `engine::yaml::parse`: a document or diagnostics with positions, never a panic.
pub fn yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match engine::yaml::parse(Path::new("fuzz.yaml"), &text) {
        Ok(doc) => {
            let _ = serde_json::to_string(&doc.value).expect("a parsed document serializes");
        }
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "an error without a diagnostic");
            for d in &diagnostics {
                check_diagnostic(d, &text);
            }
        }
    }
}

/// The whole loader on one pipeline file (YAML, schema, serde, templates, JSONPath, references):
/// a project or diagnostics that point into the file, never a panic.
pub fn pipeline_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write = |rel: &str, contents: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
        std::fs::write(path, contents).expect("a file");
    };
    write(
        "ml-connector.yaml",
        "version: 1\nname: fuzz\nconnections:\n  files: {connector: jsonl, settings: {directory: data}}\n",
    );
    write("pipelines/fuzz.yaml", &text);
    let mut registry = engine::connector::Registry::new();
    registry.register(Arc::new(connector_jsonl::JsonlConnector));
    if let Err(diagnostics) = engine::load::load_project(&dir.path().join("ml-connector.yaml"), &registry) {
        assert!(!diagnostics.is_empty(), "a failed load without a diagnostic");
        for d in &diagnostics {
            if d.file.ends_with("fuzz.yaml") {
                check_diagnostic(d, &text);
            } else {
                assert!(!d.message.trim().is_empty(), "{d:?}");
            }
        }
    }
}

/// One template environment for every input (each `Templates::new` leaks one on purpose).
fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(Templates::new)
}

/// The record and vars templates render against, as JSON (turned into the template engine's
/// value by serde, so this file needs no direct minijinja dependency).
fn context() -> Value {
    json!({
        "record": {"email": " Ada@Example.COM ", "name": "Ada King Lovelace", "amount": 12.5, "lines": [1, 2],
                   "nested": {"a": null}, "n": "not a number", "big": 1e308, "neg": -0.0},
        "vars": {"list_id": "abc", "currency": "EUR"},
        "pipeline": "fuzz",
    })
}

/// Template compilation (`engine::template`): a field template and a condition compile or fail
/// with an offset inside the text; a compiled one renders or fails, never panics.
pub fn template(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let variables = ["record", "vars", "pipeline"];
    // The type is the template engine's value, inferred from `render`.
    let ctx = serde_json::from_value(context()).expect("JSON is a template value");
    match templates().compile(&text, &variables) {
        Ok(compiled) => {
            if let Err(e) = compiled.render(&ctx) {
                assert!(!e.trim().is_empty(), "a render error without a message");
            }
            let _ = compiled.render_string(&ctx);
        }
        Err(e) => {
            assert!(!e.message.trim().is_empty(), "a template error without a message");
            assert!(e.offset <= text.len(), "offset {} past the end ({})", e.offset, text.len());
        }
    }
    match templates().compile_condition(&text, &variables) {
        Ok(condition) => {
            let _ = condition.is_true(&ctx);
        }
        Err(e) => assert!(e.offset <= text.len(), "offset {} past the end ({})", e.offset, text.len()),
    }
}

/// The Mailchimp webhook intake's parsing (`parse_form`, `event_record`) and signature check.
/// The input's first line is taken as the `X-Mailchimp-Signature` header, the rest as the body.
pub fn mailchimp_webhook(data: &[u8]) {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => (String::new(), data),
    };
    for body in [data, body] {
        if let Ok(form) = webhooks::parse_form(body) {
            assert!(form.is_object(), "a form is an object: {form}");
            match webhooks::event_record(&form) {
                Ok(record) => {
                    assert!(record["type"].is_string(), "{record}");
                    assert!(record["data"].is_object() || record["data"].is_string(), "{record}");
                }
                Err(e) => assert!(!e.is_empty()),
            }
        }
    }
    let now = 1_700_000_000;
    assert!(webhooks::verify_signature("fuzz-secret", Some(&header), body, now).is_err() || header.contains("v1="));
    let _ = webhooks::verify_signature("", Some(&header), body, now);
    let _ = webhooks::verify_signature("fuzz-secret", Some(&header), body, i64::MIN);
    let _ = webhooks::verify_signature("fuzz-secret", Some(&header), body, i64::MAX);
    // What we sign verifies, within the tolerance only.
    let signed = webhooks::sign("fuzz-secret", body, now);
    assert_eq!(webhooks::verify_signature("fuzz-secret", Some(&signed), body, now + 10), Ok(()));
    assert!(webhooks::verify_signature("fuzz-secret", Some(&signed), body, now + 3600).is_err());
}

/// The GP SOAP response parser (`soap::result`, faults) and the record builders on whatever it
/// returns.
pub fn gp_soap(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(root) = xml::parse(&text) {
        let _ = records::customer(None, &root, Some(-1));
        let _ = records::invoice(None, &root, None);
    }
    for operation in ["GetCustomerList", "GetCustomerByKey", "GetReceivablesInvoiceByKey", "GetCompanyList"] {
        match soap::result(&text, operation) {
            Ok(result) => {
                let customer = records::customer(Some(&result), &result, Some(-1));
                assert!(customer.is_object());
                let invoice = records::invoice(Some(&result), &result, Some(-1));
                assert!(matches!(
                    invoice["payment_status"].as_str(),
                    None | Some(
                        "paid" | "pending" | "cancelled" | "refunded" | "partially_paid" | "partially_refunded"
                    )
                ));
                for child in &result.children {
                    let _ = records::customer(None, child, None);
                }
            }
            Err(soap::AnswerError::Fault(fault)) => assert!(!fault.message.is_empty() && !fault.code.is_empty()),
            Err(soap::AnswerError::Invalid(m)) => assert!(!m.is_empty()),
        }
    }
    let _ = soap::looks_like_fault(&text);
}

/// Inputs worth starting from: the shapes each parser expects (the fuzz targets' seed corpus,
/// and the first cases of the stable loop).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds: Vec<(&'static str, Vec<u8>)> = vec![
        ("yaml", b"version: 1\nname: p\nsource: {connection: files, entity: c.jsonl}\nkey: \"{{ record.id }}\"\nfields:\n  a: &x [1, 2]\n  b: *x\n".to_vec()),
        ("template", b"{{ record.email | email }}-{% for l in record.lines %}{{ l }}{% endfor %}".to_vec()),
        ("template", b"{{ record.amount | decimal }}".to_vec()),
        ("mailchimp_webhook", b"t=1700000000,v1=00\ntype=unsubscribe&fired_at=2009-03-26+21%3A35%3A57&data%5Bemail%5D=a%40b.c&data[merges][FNAME]=A".to_vec()),
        ("gp_soap", br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetCustomerByKeyResponse><GetCustomerByKeyResult><Key><Id>A1</Id></Key><Name>Ada</Name><Addresses><CustomerAddress><Key><Id>PRIMARY</Id></Key><InternetAddresses><EmailToAddress>a@b.c; x</EmailToAddress></InternetAddresses></CustomerAddress></Addresses></GetCustomerByKeyResult></GetCustomerByKeyResponse></s:Body></s:Envelope>"#.to_vec()),
        ("gp_soap", br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Server</faultcode><faultstring>x</faultstring><detail><ExceptionDetail><Message>deep</Message></ExceptionDetail></detail></s:Fault></s:Body></s:Envelope>"#.to_vec()),
    ];
    seeds.push(("pipeline_file", seeds[0].1.clone()));
    seeds
}

/// Runs the check named `target` on `data`.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "yaml" => yaml(data),
        "pipeline_file" => pipeline_file(data),
        "template" => template(data),
        "mailchimp_webhook" => mailchimp_webhook(data),
        "gp_soap" => gp_soap(data),
        other => panic!("no fuzz target `{other}`"),
    }
}

/// The JSON a BC notification delivery carries, for building inputs.
pub fn bc_notification(client_state: &str, resource: &str) -> Value {
    json!({"value": [{"subscriptionId": "0123456789abcdef", "clientState": client_state,
        "expirationDateTime": "2030-01-04T00:00:00Z", "resource": resource, "changeType": "updated",
        "lastModifiedDateTime": "2030-01-01T00:00:00Z"}]})
}
