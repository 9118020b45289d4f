//! Property: whatever the ERP data says and however the writes interleave with what people do
//! in Mailchimp, a member who unsubscribed or bounced is never subscribed again by our writes;
//! only their own re-subscription brings them back.

use crate::common;

use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    /// The ERP sync writes the contact (with any status_if_new and name).
    Sync {
        status_if_new: &'static str,
        name: String,
    },
    /// Bulk path: the same write through batch subscribe.
    BulkSync,
    Unsubscribe,
    Bounce,
    Resubscribe,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (prop::sample::select(vec!["subscribed", "pending", "transactional", "unsubscribed"]), "[A-Z][a-z]{1,6}")
            .prop_map(|(status_if_new, name)| Step::Sync { status_if_new, name }),
        1 => Just(Step::BulkSync),
        2 => Just(Step::Unsubscribe),
        1 => Just(Step::Bounce),
        1 => Just(Step::Resubscribe),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_persons_own_choice_is_never_overridden(steps in prop::collection::vec(step(), 1..12)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let sb = sandbox().await;
            let list = sb.admin().create_list("Customers");
            let conn = connect(&sb).await;
            let email = "person@example.com";
            // The person's last own choice: None (never acted), Some(false) opted out or bounced.
            let mut opted_out = false;
            let mut exists = false;
            for s in &steps {
                match s {
                    Step::Sync { status_if_new, name } => {
                        let r = request("member", serde_json::json!({"list_id": list}),
                            serde_json::json!({"email_address": email, "status_if_new": status_if_new, "merge_fields": {"FNAME": name}}));
                        let _ = conn.write(&r).await;
                        exists = true;
                    }
                    Step::BulkSync => {
                        let mut batch: Vec<_> = (0..10).map(|i| member(&list, &format!("filler{i}@example.com"), "F")).collect();
                        batch.push(member(&list, email, "Bulk"));
                        let _ = conn.write_bulk(&batch).await;
                        exists = true;
                    }
                    Step::Unsubscribe if exists => { sb.admin().unsubscribe(&list, email); opted_out = true; }
                    Step::Bounce if exists => { sb.admin().bounce(&list, email); opted_out = true; }
                    Step::Resubscribe if exists => { sb.admin().resubscribe(&list, email); opted_out = false; }
                    _ => {}
                }
                if opted_out {
                    let status = sb.admin().member(&list, email).unwrap()["status"].as_str().unwrap().to_owned();
                    assert!(status == "unsubscribed" || status == "cleaned", "after {s:?} in {steps:?}: {status}");
                }
            }
            sb.shutdown().await;
        });
    }
}
