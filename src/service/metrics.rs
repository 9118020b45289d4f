//! The service's Prometheus metrics (`GET /metrics`, text exposition format 0.0.4).
//!
//! Counters are kept here, by project, as runs end and webhooks arrive; the API-call metrics
//! (calls by system and status, throttling, latency) come from [`engine::telemetry`], which
//! every HTTP connector reports to; gauges (inbox depth, runs in progress, readiness) are read
//! when scraped. Written by hand rather than with a metrics crate: a dozen series do not need a
//! global recorder, and the labels (project, pipeline) are known here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use engine::executor::PipelineReport;

/// Upper bounds (seconds) of the run-duration histogram: runs take from a blink (nothing new)
/// to an hour (a first full sync).
const RUN_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// The counters of the service.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    /// (project, pipeline, outcome) → records.
    records: BTreeMap<(String, String, &'static str), u64>,
    /// (project, pipeline, result) → runs.
    runs: BTreeMap<(String, String, &'static str), u64>,
    /// (project, pipeline) → run durations.
    durations: BTreeMap<(String, String), RunHistogram>,
    /// (project, source, result) → webhook deliveries.
    webhooks: BTreeMap<(String, String, &'static str), u64>,
    /// (project, pipeline) → events read by a pipeline whose source is the inbox.
    events_processed: BTreeMap<(String, String), u64>,
}

#[derive(Default, Clone)]
struct RunHistogram {
    buckets: [u64; RUN_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What became of a webhook delivery, for `mlc_webhook_events_received_total`.
#[derive(Debug, Clone, Copy)]
pub enum Delivery {
    /// Stored in the inbox, new.
    Stored,
    /// Already stored (a repeated delivery), acknowledged and dropped.
    Duplicate,
    /// Refused: bad signature or body (4xx), or not stored (5xx).
    Refused,
}

impl Delivery {
    fn label(self) -> &'static str {
        match self {
            Delivery::Stored => "stored",
            Delivery::Duplicate => "duplicate",
            Delivery::Refused => "refused",
        }
    }
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A run ended. `reads_events`: its source is the inbox, so what it read were events.
    pub fn run_finished(&self, project: &str, report: &PipelineReport, seconds: f64, reads_events: bool) {
        let mut c = self.counters();
        let key = |what: &'static str| (project.to_owned(), report.pipeline.clone(), what);
        let n = &report.counts;
        for (outcome, count) in [
            ("read", n.read),
            ("filtered", n.filtered),
            ("created", n.created),
            ("updated", n.updated),
            ("unchanged", n.unchanged),
            ("failed", n.failed),
            ("dead_lettered", n.dead_lettered),
        ] {
            *c.records.entry(key(outcome)).or_default() += count;
        }
        let result = if report.error.as_deref() == Some(engine::executor::INTERRUPTED) {
            "interrupted"
        } else if report.succeeded() {
            "succeeded"
        } else {
            "failed"
        };
        *c.runs.entry(key(result)).or_default() += 1;
        let h = c.durations.entry((project.to_owned(), report.pipeline.clone())).or_default();
        if let Some(i) = RUN_BUCKETS.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += seconds;
        if reads_events {
            *c.events_processed.entry((project.to_owned(), report.pipeline.clone())).or_default() += n.read;
        }
    }

    /// A due run was skipped (a dependency failed).
    pub fn run_skipped(&self, project: &str, pipeline: &str) {
        *self.counters().runs.entry((project.to_owned(), pipeline.to_owned(), "skipped")).or_default() += 1;
    }

    /// A webhook delivery arrived for `project` from `source` (`mailchimp`, `business-central`).
    pub fn webhook(&self, project: &str, source: &str, delivery: Delivery) {
        self.webhooks(project, source, delivery, 1);
    }

    /// `n` webhook events of one delivery (Business Central batches its notifications).
    pub fn webhooks(&self, project: &str, source: &str, delivery: Delivery, n: usize) {
        if n > 0 {
            *self.counters().webhooks.entry((project.to_owned(), source.to_owned(), delivery.label())).or_default() +=
                n as u64;
        }
    }

    /// Appends the counters in the text exposition format.
    pub fn render(&self, out: &mut String) {
        let c = self.counters();
        family(out, "mlc_records_total", "counter", "Records per pipeline by what became of them, over finished runs.");
        for ((project, pipeline, outcome), n) in &c.records {
            let _ = writeln!(
                out,
                "mlc_records_total{{project=\"{}\",pipeline=\"{}\",outcome=\"{outcome}\"}} {n}",
                label(project),
                label(pipeline)
            );
        }
        family(out, "mlc_runs_total", "counter", "Pipeline runs by result (succeeded, failed, interrupted, skipped).");
        for ((project, pipeline, result), n) in &c.runs {
            let _ = writeln!(
                out,
                "mlc_runs_total{{project=\"{}\",pipeline=\"{}\",result=\"{result}\"}} {n}",
                label(project),
                label(pipeline)
            );
        }
        family(out, "mlc_run_duration_seconds", "histogram", "Wall time of pipeline runs.");
        for ((project, pipeline), h) in &c.durations {
            let labels = format!("project=\"{}\",pipeline=\"{}\"", label(project), label(pipeline));
            let mut cumulative = 0;
            for (bound, n) in RUN_BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(out, "mlc_run_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "mlc_run_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "mlc_run_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "mlc_run_duration_seconds_count{{{labels}}} {}", h.count);
        }
        family(out, "mlc_webhook_events_received_total", "counter", "Webhook deliveries by source and result.");
        for ((project, source, result), n) in &c.webhooks {
            let _ = writeln!(
                out,
                "mlc_webhook_events_received_total{{project=\"{}\",source=\"{}\",result=\"{result}\"}} {n}",
                label(project),
                label(source)
            );
        }
        family(
            out,
            "mlc_webhook_events_processed_total",
            "counter",
            "Inbox events read by each pipeline reading them.",
        );
        for ((project, pipeline), n) in &c.events_processed {
            let _ = writeln!(
                out,
                "mlc_webhook_events_processed_total{{project=\"{}\",pipeline=\"{}\"}} {n}",
                label(project),
                label(pipeline)
            );
        }
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with backslash, quote and newline escaped, as the format requires.
pub fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use engine::state::RunCounts;

    use super::*;

    #[test]
    fn runs_accumulate_per_project_and_pipeline() {
        let metrics = Metrics::default();
        let report = |created, error: Option<&str>| PipelineReport {
            pipeline: "consent".into(),
            run_id: "r".into(),
            counts: RunCounts { read: 2, created, ..RunCounts::default() },
            error: error.map(str::to_owned),
            skipped_because: None,
            api_calls: 0,
            elapsed_ms: 0,
        };
        metrics.run_finished("a", &report(1, None), 0.2, true);
        metrics.run_finished("a", &report(2, Some("boom")), 7.0, true);
        metrics.run_finished("b\"", &report(0, None), 0.05, false);
        metrics.webhook("a", "mailchimp", Delivery::Stored);
        let mut text = String::new();
        metrics.render(&mut text);
        for line in [
            "mlc_records_total{project=\"a\",pipeline=\"consent\",outcome=\"created\"} 3",
            "mlc_records_total{project=\"a\",pipeline=\"consent\",outcome=\"read\"} 4",
            "mlc_runs_total{project=\"a\",pipeline=\"consent\",result=\"succeeded\"} 1",
            "mlc_runs_total{project=\"a\",pipeline=\"consent\",result=\"failed\"} 1",
            "mlc_run_duration_seconds_bucket{project=\"a\",pipeline=\"consent\",le=\"0.5\"} 1",
            "mlc_run_duration_seconds_bucket{project=\"a\",pipeline=\"consent\",le=\"10\"} 2",
            "mlc_run_duration_seconds_count{project=\"a\",pipeline=\"consent\"} 2",
            "mlc_records_total{project=\"b\\\"\",pipeline=\"consent\",outcome=\"read\"} 2",
            "mlc_webhook_events_received_total{project=\"a\",source=\"mailchimp\",result=\"stored\"} 1",
            "mlc_webhook_events_processed_total{project=\"a\",pipeline=\"consent\"} 4",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("mlc_webhook_events_processed_total{project=\"b"), "{text}");
    }
}
