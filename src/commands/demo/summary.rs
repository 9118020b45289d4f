//! The demo's closing table: one row per pipeline run, with what it read and wrote, the API
//! calls it made and how long it took.

use std::fmt::Write as _;

use engine::executor::PipelineReport;
use engine::state::RunCounts;

/// The runs of the demo, in order.
#[derive(Default)]
pub struct Summary {
    rows: Vec<(String, PipelineReport)>,
}

/// Marks a row whose calls and time were spent in another process (`serve`): not measured here.
const ELSEWHERE: u64 = u64::MAX;

impl Summary {
    pub fn add(&mut self, phase: &str, reports: &[PipelineReport]) {
        self.rows.extend(reports.iter().map(|r| (phase.to_owned(), r.clone())));
    }

    /// A pipeline that `serve` ran: its counts come from the state store's run history.
    pub fn add_served(&mut self, phase: &str, pipeline: &str, counts: RunCounts) {
        let report = PipelineReport {
            pipeline: pipeline.to_owned(),
            run_id: String::new(),
            counts,
            error: None,
            skipped_because: None,
            api_calls: ELSEWHERE,
            elapsed_ms: ELSEWHERE,
        };
        self.rows.push((phase.to_owned(), report));
    }

    /// Writes the calls of every pipeline in every phase: the fixed-width table the demo ends with.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "   {:<26} {:<24} {:>6} {:>8} {:>8} {:>9} {:>7} {:>6} {:>8}",
            "phase", "pipeline", "read", "created", "updated", "unchanged", "failed", "calls", "time"
        );
        for (phase, r) in &self.rows {
            let c = &r.counts;
            let (calls, time) = if r.api_calls == ELSEWHERE {
                ("-".to_owned(), "in serve".to_owned())
            } else {
                (r.api_calls.to_string(), format!("{:.1}s", r.elapsed_ms as f64 / 1000.0))
            };
            let _ = writeln!(
                out,
                "   {:<26} {:<24} {:>6} {:>8} {:>8} {:>9} {:>7} {:>6} {:>8}",
                phase,
                r.pipeline,
                c.read,
                c.created,
                c.updated,
                c.unchanged + c.filtered,
                c.failed,
                calls,
                time
            );
        }
        let calls: u64 = self.rows.iter().map(|(_, r)| r.api_calls).filter(|n| *n != ELSEWHERE).sum();
        let writes: u64 = self.rows.iter().map(|(_, r)| r.counts.created + r.counts.updated).sum();
        let _ = writeln!(out, "   {writes} records written; {calls} API calls made by the runs in this process.");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_counts_calls_and_time() {
        let mut summary = Summary::default();
        let report = PipelineReport {
            pipeline: "invoices-to-orders".into(),
            run_id: "r".into(),
            counts: RunCounts { read: 10, created: 7, updated: 1, unchanged: 1, failed: 1, ..Default::default() },
            error: None,
            skipped_because: None,
            api_calls: 23,
            elapsed_ms: 1500,
        };
        summary.add("BC → Mailchimp", &[report]);
        let text = summary.render();
        let row = text.lines().nth(1).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[cells.len() - 7..], ["10", "7", "1", "1", "1", "23", "1.5s"], "{text}");
        assert!(text.contains("8 records written; 23 API calls made"), "{text}");
        summary.add_served("serve", "consent", RunCounts { read: 4, created: 4, ..Default::default() });
        let text = summary.render();
        let served = text.lines().find(|l| l.contains("consent")).unwrap();
        assert!(served.trim_end().ends_with(" - in serve"), "{served}");
        assert!(text.contains("12 records written; 23 API calls made"), "{text}");
    }
}
