//! Batch operations (`/batches`): many API requests in one call, run by Mailchimp on its own
//! time. Submitting is one `POST /batches`; Mailchimp then moves the batch through pending →
//! preprocessing → started → finalizing → finished, and the results arrive as a gzipped tar of
//! JSON files behind `response_body_url` (storage outside the API), each file an array of
//! `{"status_code", "operation_id", "response": "<JSON as a string>"}`.
//!
//! Waiting is the costly part: every status poll is an API call. [`Pace`] learns how long this
//! account's batches take per operation and sleeps that long before the first poll, so a batch
//! usually costs three requests (submit, one poll, the download) whatever its size.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{McClient, McError};

/// One operation's result: the HTTP status Mailchimp gave it and its response body (JSON text;
/// a problem document when it failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpResult {
    pub status: u16,
    pub response: String,
}

/// The longest a batch is waited for before its records are given up on for this run (they are
/// transient failures: read and sent again by the next run, which the upserts make safe).
const MAX_WAIT: Duration = Duration::from_secs(60 * 60);
/// The longest single sleep between polls.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// The shortest single sleep between polls.
const MIN_SLEEP: Duration = Duration::from_millis(25);

/// How long this account's batches take, learned from the batches already run: the estimate is
/// `scale × (1 + n / 1000)` seconds for `n` operations. A batch found finished at the first poll
/// lowers the scale a little (it might have been done sooner); one that needed more polls sets it
/// to what was observed. The first poll therefore lands just after the batch is done, most times.
#[derive(Debug)]
pub struct Pace {
    scale: Mutex<f64>,
}

impl Default for Pace {
    fn default() -> Self {
        Pace { scale: Mutex::new(1.0) }
    }
}

impl Pace {
    fn size_factor(operations: usize) -> f64 {
        1.0 + operations as f64 / 1000.0
    }

    /// The sleep before the first poll of a batch of `operations`.
    fn first_sleep(&self, operations: usize) -> Duration {
        let scale = *self.scale.lock().unwrap_or_else(|p| p.into_inner());
        Duration::from_secs_f64(scale * Self::size_factor(operations)).clamp(MIN_SLEEP, MAX_SLEEP)
    }

    /// Learns from a batch of `operations` found finished `elapsed` after submission, at poll
    /// number `polls`.
    fn observe(&self, operations: usize, elapsed: Duration, polls: u32) {
        let mut scale = self.scale.lock().unwrap_or_else(|p| p.into_inner());
        *scale = if polls <= 1 { *scale * 0.85 } else { elapsed.as_secs_f64() / Self::size_factor(operations) };
        *scale = scale.clamp(MIN_SLEEP.as_secs_f64(), MAX_SLEEP.as_secs_f64());
    }
}

/// The sleep before the next poll of a batch not yet finished `elapsed` after submission, with
/// `done` of `total` operations run: the remaining share at the rate seen so far, or half the
/// time waited when nothing ran yet.
fn next_sleep(elapsed: Duration, done: u64, total: u64) -> Duration {
    let guess =
        if done > 0 && total > done { elapsed.mul_f64((total - done) as f64 / done as f64) } else { elapsed / 2 };
    guess.clamp(MIN_SLEEP, MAX_SLEEP)
}

/// One operation of a batch: `body` is sent as JSON text, as the API wants it.
pub fn operation(id: usize, method: &str, path: &str, body: &Value) -> Value {
    json!({"method": method, "path": path, "operation_id": id.to_string(), "body": body.to_string()})
}

/// Submits `operations`, waits for Mailchimp to run them, and returns each one's result by
/// operation id. An error means the batch as a whole did not complete (refused, lost, or not done
/// in time): which operations ran is unknown, so every one of them counts as failed.
pub async fn run(client: &McClient, pace: &Pace, operations: Vec<Value>) -> Result<HashMap<String, OpResult>, McError> {
    let count = operations.len();
    let (_, batch) = client.send(Method::POST, "/batches", &[], Some(&json!({ "operations": operations }))).await?;
    let Some(id) = batch["id"].as_str().map(str::to_owned) else {
        return Err(protocol_error(format!("POST /batches answered without a batch id: {batch}")));
    };
    let submitted = Instant::now();
    let mut sleep = pace.first_sleep(count);
    let mut polls = 0;
    let url = loop {
        tokio::time::sleep(sleep).await;
        polls += 1;
        let fields = ("fields", "status,finished_operations,total_operations,response_body_url".to_owned());
        let (_, status) = client.send(Method::GET, &format!("/batches/{id}"), &[fields], None).await?;
        if status["status"] == "finished" {
            break status["response_body_url"].as_str().unwrap_or_default().to_owned();
        }
        let elapsed = submitted.elapsed();
        if elapsed > MAX_WAIT {
            let mut e = protocol_error(format!("batch {id} did not finish within {} minutes", MAX_WAIT.as_secs() / 60));
            e.transient = true;
            return Err(e);
        }
        let done = status["finished_operations"].as_u64().unwrap_or(0);
        sleep = next_sleep(elapsed, done, status["total_operations"].as_u64().unwrap_or(count as u64));
    };
    pace.observe(count, submitted.elapsed(), polls);
    if url.is_empty() {
        return Err(protocol_error(format!("batch {id} finished without a response_body_url")));
    }
    let archive = client.download(&url).await?;
    read_results(&archive).map_err(|e| protocol_error(format!("the results of batch {id}: {e}")))
}

/// A failure that a retry of the whole batch may cure (the next run sends the records again).
fn protocol_error(detail: String) -> McError {
    McError { status: None, title: "Batch Failed".into(), detail, errors: Vec::new(), transient: true }
}

/// Reads a results archive: every `.json` file in the gzipped tar, each an array of results.
pub fn read_results(archive: &[u8]) -> Result<HashMap<String, OpResult>, String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut results = HashMap::new();
    for entry in tar.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let is_json = entry.path().map_err(|e| e.to_string())?.extension().is_some_and(|x| x == "json");
        if !is_json {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).map_err(|e| e.to_string())?;
        let items: Vec<Value> = serde_json::from_str(&text).map_err(|e| format!("a results file is not JSON: {e}"))?;
        for item in items {
            let id = match &item["operation_id"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            let status = item["status_code"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(500);
            let response = match &item["response"] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            results.insert(id, OpResult { status, response });
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &str)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (name, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, text.as_bytes()).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn results_are_read_from_every_json_file_by_operation_id() {
        let bytes = archive(&[
            ("b-0.json", r#"[{"status_code":200,"operation_id":"0","response":"{\"id\":\"a\"}"}]"#),
            ("README", "not results"),
            ("b-1.json", r#"[{"status_code":400,"operation_id":"1","response":"{\"title\":\"Invalid Resource\"}"}]"#),
        ]);
        let results = read_results(&bytes).unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results["0"], OpResult { status: 200, response: r#"{"id":"a"}"#.into() });
        assert_eq!(results["1"].status, 400);
        assert!(read_results(b"not gzip").is_err());
    }

    #[test]
    fn operations_carry_their_body_as_text() {
        let op = operation(7, "PUT", "/ecommerce/stores/s/customers/c", &json!({"id": "c"}));
        assert_eq!(op["operation_id"], "7");
        assert_eq!(op["body"], r#"{"id":"c"}"#);
    }

    #[test]
    fn the_pace_learns_from_observed_batches() {
        let pace = Pace::default();
        let first = pace.first_sleep(1000);
        assert_eq!(first, Duration::from_secs(2));
        // Needed three polls and 8 s: the next batch of the same size waits 8 s.
        pace.observe(1000, Duration::from_secs(8), 3);
        assert_eq!(pace.first_sleep(1000), Duration::from_secs(8));
        // Found done at the first poll: a little sooner next time.
        pace.observe(1000, Duration::from_secs(8), 1);
        assert!(pace.first_sleep(1000) < Duration::from_secs(8));
        // Half done after 2 s: as long again.
        assert_eq!(next_sleep(Duration::from_secs(2), 50, 100), Duration::from_secs(2));
        assert_eq!(next_sleep(Duration::from_secs(2), 0, 100), Duration::from_secs(1));
    }
}
