//! `ml-connector demo`, the README's main job, end to end: three sandboxes, seeded volume,
//! flows both ways, second runs that re-send nothing.

use std::process::Command;

/// The number after `label` in `line` (`read 300,` → 300).
fn number_after(line: &str, label: &str) -> u64 {
    let rest = line.split(label).nth(1).unwrap_or_else(|| panic!("no `{label}` in `{line}`"));
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// The run line of `pipeline` in `section`.
fn line_of<'a>(section: &'a str, pipeline: &str) -> &'a str {
    let prefix = format!("{pipeline}: read ");
    section
        .lines()
        .find(|l| l.trim_start().starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {pipeline} in {section}"))
}

fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text.find(title).unwrap_or_else(|| panic!("no section `{title}` in:\n{text}"));
    let rest = &text[start..];
    let end = rest[title.len()..].find("\n== ").map_or(rest.len(), |i| i + title.len());
    &rest[..end]
}

#[test]
fn the_demo_syncs_three_systems_both_ways_and_second_runs_resend_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
        .args(["demo", "--dir"])
        .arg(&root)
        .env_remove("ML_CONNECTOR_MASTER_KEY")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");

    // BC → Mailchimp: every seeded record read; the two customers without a usable e-mail (one
    // empty: filtered, one `tim@example`: dead-lettered) are the only ones not written.
    let bc = section(&text, "== Business Central → Mailchimp");
    let members = line_of(bc, "customers-to-members");
    assert_eq!(number_after(members, "read"), 300, "{members}");
    assert_eq!(number_after(members, "did create"), 298, "{members}");
    assert!(members.contains("failed 1 (1 in dead letters)"), "{members}");
    let orders = line_of(bc, "invoices-to-orders");
    assert_eq!(number_after(orders, "read"), 1000, "{orders}");
    let created_orders = number_after(orders, "did create");
    let accounted = created_orders + number_after(orders, "filtered") + number_after(orders, "failed");
    assert_eq!(accounted, 1000, "{orders}");
    // What Mailchimp holds agrees with what the run says it wrote.
    assert!(bc.contains(&format!("store: 40 products, {created_orders} orders")), "{bc}");
    assert!(bc.contains("audience: 298 members (298 subscribed)"), "{bc}");

    // GP → Mailchimp over NTLM: one customer has no usable address (`frontdesk@`).
    let gp = section(&text, "== Dynamics GP → Mailchimp");
    let gp_members = line_of(gp, "customers-to-members");
    assert_eq!(number_after(gp_members, "read"), 150, "{gp_members}");
    let gp_orders = line_of(gp, "invoices-to-orders");
    assert_eq!(number_after(gp_orders, "read"), 400, "{gp_orders}");
    let gp_created = number_after(gp_orders, "did create");
    assert!(gp.contains(&format!("store: {gp_created} orders")), "{gp}");

    // Mailchimp → BC through serve, with nobody running a pipeline: three opt-outs and a bounce
    // land as consent, two e-mail changes as the customers' new addresses.
    let back = section(&text, "== Mailchimp → Business Central");
    let consent = back.lines().find(|l| l.contains("consent: ") && l.contains("run(s) by serve")).unwrap();
    assert_eq!(number_after(consent, "did create") + number_after(consent, "update"), 4, "{consent}");
    let emails = back.lines().find(|l| l.contains("email-changes: ")).unwrap();
    assert_eq!(number_after(emails, "did create") + number_after(emails, "update"), 2, "{emails}");
    assert_eq!(back.matches("marketingConsent=false consentStatus=Opted Out").count(), 4, "{back}");
    assert_eq!(back.matches("bounced=true").count(), 1, "{back}");
    assert_eq!(back.matches("BC customer's e-mail is now \"").count(), 2, "{back}");
    assert_eq!(back.matches("@newmail.example\"").count(), 2, "{back}");

    // Second runs: nothing re-sent but the two new addresses; nobody re-subscribed.
    let again = section(&text, "== The next runs");
    for line in again.lines().filter(|l| l.contains(": read ")) {
        let writes = number_after(line, "did create") + number_after(line, "update");
        let expected = if line.contains("customers-to-members") || line.contains("customers-to-ecommerce") {
            // Only in the BC project, where two customers changed their e-mail.
            if writes == 0 { 0 } else { 2 }
        } else {
            0
        };
        assert_eq!(writes, expected, "{line}");
    }
    assert_eq!(again.matches("did create 2, update 0").count(), 1, "{again}");
    assert_eq!(again.matches("in Mailchimp: \"unsubscribed\"").count(), 3, "{again}");
    assert_eq!(again.matches("in Mailchimp: \"cleaned\"").count(), 1, "{again}");

    // The summary has a row per pipeline run with calls and time, and the bad record is in
    // dead letters with its reason.
    let summary = section(&text, "== Summary");
    // 18 runs in the demo's process (time in seconds), 2 pipelines run by serve.
    assert_eq!(summary.lines().filter(|l| l.trim_end().ends_with('s') && l.contains('.')).count(), 18, "{summary}");
    assert_eq!(summary.lines().filter(|l| l.trim_end().ends_with("in serve")).count(), 2, "{summary}");
    assert!(summary.contains("API calls made by the runs in this process."), "{summary}");
    assert!(text.contains("`tim@example` is not a valid email address"), "{text}");
    assert!(text.contains("ml-connector plan"), "{text}");
}
