//! Progress bars for runs: one bar per pipeline, moved by the executor's record events.
//!
//! Bars go to standard error and only to a terminal (indicatif hides them otherwise), so piped
//! output and logs stay clean. Lines printed while a bar is shown go through [`Progress::println`]
//! so they do not tear it.

use std::collections::BTreeMap;
use std::time::Duration;

use engine::executor::{PlannedOperation, RecordEvent};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars of one `run`.
pub struct Progress {
    /// Records each pipeline is expected to read, when known (the demo knows what it seeded).
    expected: BTreeMap<String, u64>,
    current: Option<(String, ProgressBar, Tally)>,
    draw: bool,
}

#[derive(Default)]
struct Tally {
    created: u64,
    updated: u64,
    unchanged: u64,
    failed: u64,
}

impl Progress {
    /// Bars drawn on standard error when it is a terminal.
    pub fn new(expected: BTreeMap<String, u64>) -> Progress {
        Progress { expected, current: None, draw: true }
    }

    /// No bars at all (JSON output, tests).
    pub fn hidden() -> Progress {
        Progress { expected: BTreeMap::new(), current: None, draw: false }
    }

    /// Moves the bar of the event's pipeline, starting it (and finishing the previous one) when
    /// the pipeline changes: pipelines run one after another.
    pub fn record(&mut self, event: &RecordEvent) {
        if self.current.as_ref().is_none_or(|(name, _, _)| name != &event.pipeline) {
            self.finish();
            let bar = self.bar_for(&event.pipeline);
            self.current = Some((event.pipeline.clone(), bar, Tally::default()));
        }
        let Some((_, bar, tally)) = self.current.as_mut() else { return };
        match event.operation {
            PlannedOperation::Create => tally.created += 1,
            PlannedOperation::Update => tally.updated += 1,
            PlannedOperation::Unchanged | PlannedOperation::Filtered => tally.unchanged += 1,
            PlannedOperation::Failed => tally.failed += 1,
        }
        bar.inc(1);
        bar.set_message(format!(
            "{} created, {} updated, {} unchanged, {} failed",
            tally.created, tally.updated, tally.unchanged, tally.failed
        ));
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        match &self.current {
            Some((_, bar, _)) if !bar.is_hidden() => bar.println(line),
            _ => println!("{line}"),
        }
    }

    /// Finishes the current bar, leaving its last state on screen.
    pub fn finish(&mut self) {
        if let Some((_, bar, _)) = self.current.take() {
            bar.finish();
        }
    }

    fn bar_for(&self, pipeline: &str) -> ProgressBar {
        let target = if self.draw { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let (bar, template) = match self.expected.get(pipeline) {
            Some(n) => (
                ProgressBar::with_draw_target(Some(*n), target),
                "{prefix:>24} [{bar:30}] {pos:>5}/{len:<5} {per_sec:>10}  {msg}",
            ),
            None => (ProgressBar::with_draw_target(None, target), "{prefix:>24} {spinner} {pos:>6} records  {msg}"),
        };
        bar.set_style(ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> "));
        bar.set_prefix(pipeline.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
