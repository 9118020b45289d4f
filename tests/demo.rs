//! `ml-connector demo`, the README's main job, end to end.

use std::process::Command;

#[test]
fn the_demo_syncs_both_ways_and_a_second_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
        .args(["demo", "--dir"])
        .arg(&project)
        .env_remove("ML_CONNECTOR_MASTER_KEY")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    for expected in [
        "member ada@example.com              subscribed",
        "orders in the store: 3",
        "invoices-to-orders: read 4, filtered 1, did create 3",
        "events in the inbox: 1",
        "Grace's consent in Business Central: marketingConsent=false",
        "grace@example.com in Mailchimp: \"unsubscribed\"",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    // The second BC → Mailchimp run: every pipeline writes nothing.
    let second = text.split("The next Business Central → Mailchimp run").nth(1).unwrap();
    let summaries: Vec<&str> = second.lines().filter(|l| l.contains(": read ")).collect();
    assert_eq!(summaries.len(), 5, "{second}");
    assert!(summaries.iter().all(|l| l.contains("did create 0, update 0")), "{summaries:#?}");
    // The invalid email is in dead letters with its reason, not lost.
    assert!(text.contains("`tim@example` is not a valid email address"), "{text}");
}
