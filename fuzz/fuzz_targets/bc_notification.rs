//! `cargo +nightly fuzz run bc_notification`: the Business Central notification intake of
//! `ml-connector serve`, fed arbitrary bodies and query strings in process.
//!
//! The intake lives in the binary crate (`src/service/bc_notifications.rs`), which no library
//! exposes, so its module is included here by path and driven through its axum router. What
//! must hold: no panic; an answer from the small set Business Central can live with (2xx, 400
//! for a body that is not a delivery, 404 for a wrong token, 413 for an oversized body, never a
//! 5xx while the inbox works); a notification with the wrong `clientState` is never stored. The
//! stable equivalent (`tests/e2e/fuzz.rs`) sends the same kind of input to the real binary.

#![no_main]

#[path = "../../src/service/bc_notifications.rs"]
#[allow(dead_code)]
mod bc_notifications;

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

const TOKEN: &str = "fuzz-token-0123456789abcdef";
const CLIENT_STATE: &str = "fuzz-client-state";

struct Rig {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    inbox: inbox::Inbox,
    _dir: tempfile::TempDir,
}

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let inbox = inbox::Inbox::open(&dir.path().join("inbox.db")).unwrap();
        let (trigger, _changes) = bc_notifications::channel_trigger();
        let receiver = bc_notifications::BcReceiver {
            project: "fuzz".into(),
            token: TOKEN.into(),
            client_state: CLIENT_STATE.into(),
            inbox: inbox.clone(),
            routes: bc_notifications::Routes::default(),
        };
        let router = bc_notifications::BcNotifications::new(vec![receiver], trigger).router();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        Rig { runtime, router, inbox, _dir: dir }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let rig = rig();
    // The first byte picks the shape: the body as is, or a wrong-state delivery around it, or
    // the input as the query string (the validation handshake).
    let (shape, rest) = data.split_first().unwrap_or((&0, &[]));
    let text = String::from_utf8_lossy(rest);
    let (uri, body): (String, Vec<u8>) = match shape % 4 {
        0 => (format!("/hooks/business-central/{TOKEN}"), rest.to_vec()),
        1 => {
            let wrong = mlc_fuzz::bc_notification("wrong-state", &text);
            (format!("/hooks/business-central/{TOKEN}"), wrong.to_string().into_bytes())
        }
        2 => {
            let query: String = text.chars().filter(|c| !c.is_whitespace() && *c != '#').collect();
            (format!("/hooks/business-central/{TOKEN}?{query}"), Vec::new())
        }
        _ => (format!("/hooks/business-central/{}", text.replace(['/', '?', '#', ' '], "")), rest.to_vec()),
    };
    let Ok(request) = Request::post(uri.as_str()).body(Body::from(body)) else { return };
    let before = rig.inbox.count(bc_notifications::INBOX_SOURCE).unwrap();
    let status = rig.runtime.block_on(rig.router.clone().oneshot(request)).unwrap().status().as_u16();
    assert!(matches!(status, 200 | 202 | 400 | 404 | 413), "status {status} for {uri}");
    if shape % 4 == 1 {
        assert_eq!(rig.inbox.count(bc_notifications::INBOX_SOURCE).unwrap(), before, "a wrong clientState was stored");
    }
});
