//! Process-wide counters of the calls made to external APIs: how many, with what status, how
//! fast, and how often the API throttled us.
//!
//! Why process-wide: the HTTP paths of every connector report here without the engine threading
//! a handle through them, `run` and `demo` can tell how many calls each pipeline made (pipelines
//! run one after another, so the difference of two totals is the pipeline's), and `serve`
//! renders the same numbers as Prometheus metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static TOTAL: AtomicU64 = AtomicU64::new(0);
static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

#[derive(Debug, Default, Clone)]
struct Registry {
    /// (system, status) → calls. Status is the HTTP code, or `error` when no response came.
    calls: BTreeMap<(&'static str, String), u64>,
    throttled: BTreeMap<&'static str, u64>,
    latency: BTreeMap<&'static str, Histogram>,
}

/// A cumulative latency histogram over [`LATENCY_BUCKETS`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Histogram {
    /// Counts per bucket (not cumulative; rendering accumulates).
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }
}

fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut guard = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.get_or_insert_with(Registry::default))
}

/// Records one HTTP exchange with `system` (`mailchimp`, `business_central`, …). `status` is
/// `None` when no response arrived (connection refused, reset, timeout). Each retry is a call.
pub fn api_call(system: &'static str, status: Option<u16>, elapsed: Duration) {
    TOTAL.fetch_add(1, Ordering::Relaxed);
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    with_registry(|r| {
        *r.calls.entry((system, status)).or_default() += 1;
        r.latency.entry(system).or_default().observe(elapsed.as_secs_f64());
    });
}

/// Records that `system` told us to slow down (429, or Mailchimp's bare 403).
pub fn throttled(system: &'static str) {
    with_registry(|r| *r.throttled.entry(system).or_default() += 1);
}

/// Every call made by this process so far.
pub fn api_calls() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Calls so far, by system and status.
pub fn calls_by_status() -> BTreeMap<(String, String), u64> {
    with_registry(|r| r.calls.iter().map(|((s, c), n)| ((s.to_string(), c.clone()), *n)).collect())
}

/// Appends the API metrics in Prometheus' text exposition format.
pub fn render_prometheus(out: &mut String) {
    let registry = with_registry(|r| r.clone());
    out.push_str("# HELP mlc_api_calls_total HTTP calls to external APIs, by system and status.\n");
    out.push_str("# TYPE mlc_api_calls_total counter\n");
    for ((system, status), n) in &registry.calls {
        let _ = writeln!(out, "mlc_api_calls_total{{system=\"{system}\",status=\"{status}\"}} {n}");
    }
    out.push_str("# HELP mlc_api_throttled_total Responses that asked us to slow down (429, Mailchimp's 403).\n");
    out.push_str("# TYPE mlc_api_throttled_total counter\n");
    for (system, n) in &registry.throttled {
        let _ = writeln!(out, "mlc_api_throttled_total{{system=\"{system}\"}} {n}");
    }
    out.push_str("# HELP mlc_api_request_duration_seconds Latency of calls to external APIs.\n");
    out.push_str("# TYPE mlc_api_request_duration_seconds histogram\n");
    for (system, h) in &registry.latency {
        let mut cumulative = 0;
        for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "mlc_api_request_duration_seconds_bucket{{system=\"{system}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(out, "mlc_api_request_duration_seconds_bucket{{system=\"{system}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "mlc_api_request_duration_seconds_sum{{system=\"{system}\"}} {}", h.sum_seconds);
        let _ = writeln!(out, "mlc_api_request_duration_seconds_count{{system=\"{system}\"}} {}", h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_system_and_status_and_rendered() {
        let before = api_calls();
        api_call("test_system", Some(200), Duration::from_millis(3));
        api_call("test_system", Some(200), Duration::from_millis(300));
        api_call("test_system", None, Duration::from_secs(20));
        throttled("test_system");
        assert_eq!(api_calls() - before, 3);
        let by_status = calls_by_status();
        assert_eq!(by_status[&("test_system".to_owned(), "200".to_owned())], 2);
        assert_eq!(by_status[&("test_system".to_owned(), "error".to_owned())], 1);

        let mut text = String::new();
        render_prometheus(&mut text);
        assert!(text.contains("mlc_api_calls_total{system=\"test_system\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("mlc_api_throttled_total{system=\"test_system\"} 1"), "{text}");
        // 3 ms falls in the first bucket; 300 ms first counts at 0.5; 20 s only in +Inf.
        assert!(text.contains("duration_seconds_bucket{system=\"test_system\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("duration_seconds_bucket{system=\"test_system\",le=\"0.25\"} 1"), "{text}");
        assert!(text.contains("duration_seconds_bucket{system=\"test_system\",le=\"0.5\"} 2"), "{text}");
        assert!(text.contains("duration_seconds_bucket{system=\"test_system\",le=\"10\"} 2"), "{text}");
        assert!(text.contains("duration_seconds_bucket{system=\"test_system\",le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("duration_seconds_count{system=\"test_system\"} 3"), "{text}");
    }
}
