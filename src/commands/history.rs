//! Commands that read and adjust the durable state: `status`, `audit`, `dead-letters`,
//! `replay`, `state show|set|reset`.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use engine::connector::ConnectContext;
use engine::cursor;
use engine::executor::{Connections, RecordEvent, ReplaySelection, replay_dead_letters};
use engine::load::Project;
use engine::state::{Operation, StateStore};
use serde_json::Value;
use state::{AuditFilter, SqliteStore};

use super::{FAILED, INVALID, OK, load_one};

/// The project and its state database, which must exist (something has run).
fn open_existing(project: &Path) -> Result<(Project, SqliteStore), u8> {
    let project = load_one(project)?;
    let path = project.state_path();
    if !path.exists() {
        eprintln!("{}: no state yet (nothing has run in this project)", path.display());
        return Err(FAILED);
    }
    let store = SqliteStore::open(&path).map_err(|e| {
        eprintln!("{}: {e}", path.display());
        FAILED
    })?;
    Ok((project, store))
}

fn check_pipeline(project: &Project, name: &str) -> Result<(), u8> {
    if project.pipeline(name).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = project.pipelines.iter().map(|p| p.name.as_str()).collect();
    eprintln!("unknown pipeline `{name}` (known: {})", known.join(", "));
    Err(INVALID)
}

/// `ml-connector status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[arg(short, long, default_value = ".")]
    project: PathBuf,
    /// Runs to show per pipeline.
    #[arg(long, default_value_t = 3)]
    last: usize,
}

pub fn status(args: &StatusArgs) -> u8 {
    let (project, store) = match open_existing(&args.project) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let watermarks = store.watermarks().unwrap_or_default();
    for p in &project.pipelines {
        let mark = watermarks.iter().find(|(name, _)| name == &p.name).map(|(_, v)| v.to_string());
        let open_letters = store.dead_letters(Some(&p.name), false).map(|d| d.len()).unwrap_or(0);
        println!(
            "{}  watermark: {}  ledger: {} key(s)  open dead letters: {open_letters}",
            p.name,
            mark.as_deref().unwrap_or("none"),
            store.ledger_count(&p.name).unwrap_or(0)
        );
        let runs = match store.recent_runs(Some(&p.name), args.last.max(1)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return FAILED;
            }
        };
        println!("  {}", schedule_line(p.schedule.as_ref(), runs.first(), jiff::Timestamp::now()));
        let runs = &runs[..runs.len().min(args.last)];
        if runs.is_empty() {
            println!("  no runs yet");
        }
        for r in runs {
            let c = &r.counts;
            println!(
                "  {} → {}  read {}, created {}, updated {}, unchanged {}, filtered {}, failed {} ({} dead-lettered){}",
                r.started_at,
                r.finished_at.as_deref().unwrap_or("(did not finish)"),
                c.read,
                c.created,
                c.updated,
                c.unchanged,
                c.filtered,
                c.failed,
                c.dead_lettered,
                r.error.as_ref().map(|e| format!("\n    last error: {e}")).unwrap_or_default()
            );
        }
    }
    let subscriptions = store.subscriptions().unwrap_or_default();
    if !subscriptions.is_empty() {
        println!("webhook subscriptions (kept alive by `ml-connector serve`):");
        for line in subscription_lines(&subscriptions, jiff::Timestamp::now()) {
            println!("  {line}");
        }
    }
    OK
}

/// When `serve` runs the pipeline next, by the scheduler's own rules (from its last run).
fn schedule_line(
    schedule: Option<&engine::schedule::Schedule>,
    last: Option<&state::RunRecord>,
    now: jiff::Timestamp,
) -> String {
    let Some(schedule) = schedule else { return "schedule: none (runs only when asked: `run`)".to_owned() };
    let next = if schedule.on_events() {
        let started = last.and_then(|r| r.started_at.parse::<jiff::Timestamp>().ok());
        match schedule.next_after(started.unwrap_or(now)) {
            Some(t) => format!("runs when events arrive, else next at {t}"),
            None => "runs when events arrive".to_owned(),
        }
    } else {
        let slot = crate::service::schedule::Slot::at_start(Some(schedule), last, now);
        match (slot.due, slot.next) {
            (false, Some(t)) => format!("next: {t}"),
            _ => "due: `serve` runs it when it starts".to_owned(),
        }
    };
    format!("schedule: {schedule}; {next}")
}

/// One line per subscription: what, its id, and when it expires (how far from `now`), so an
/// operator sees a Business Central subscription about to lapse (three days after its last
/// renewal) before notifications stop.
fn subscription_lines(records: &[state::SubscriptionRecord], now: jiff::Timestamp) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let expiry = match r.expires_at.as_deref().map(|e| (e, e.parse::<jiff::Timestamp>())) {
                None => "does not expire".to_owned(),
                Some((text, Ok(at))) => {
                    let left = at.duration_since(now);
                    if left.is_negative() {
                        format!("EXPIRED {text} ({} ago)", span(-left))
                    } else {
                        format!("expires {text} (in {})", span(left))
                    }
                }
                Some((text, Err(_))) => format!("expires {text}"),
            };
            format!(
                "{} {}/{}  id {}  {expiry}  checked {}",
                r.system, r.connection, r.entity, r.subscription_id, r.checked_at
            )
        })
        .collect()
}

/// `2d 3h`, `5h 12m`, `40m`.
fn span(d: jiff::SignedDuration) -> String {
    let minutes = d.as_secs() / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}m"),
        (0, h) => format!("{h}h {minutes}m"),
        (d, h) => format!("{d}d {h}h"),
    }
}

/// `ml-connector audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[arg(short, long, default_value = ".")]
    project: PathBuf,
    /// Only this pipeline.
    #[arg(long)]
    pipeline: Option<String>,
    /// Only this key.
    #[arg(long)]
    key: Option<String>,
    /// Only this outcome.
    #[arg(long, value_enum)]
    outcome: Option<Outcome>,
    /// From this time on (RFC 3339, or a date taken as UTC), inclusive.
    #[arg(long)]
    since: Option<String>,
    /// Before this time, exclusive.
    #[arg(long)]
    until: Option<String>,
    /// At most this many rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: AuditFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Outcome {
    Create,
    Update,
    Unchanged,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuditFormat {
    Table,
    Jsonl,
    Csv,
}

pub fn audit(args: &AuditArgs) -> u8 {
    let (_, store) = match open_existing(&args.project) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let filter = AuditFilter {
        pipeline: args.pipeline.clone(),
        key: args.key.clone(),
        operation: args.outcome.map(|o| match o {
            Outcome::Create => Operation::Create,
            Outcome::Update => Operation::Update,
            Outcome::Unchanged => Operation::Unchanged,
            Outcome::Failed => Operation::Failed,
        }),
        since: args.since.clone(),
        until: args.until.clone(),
        limit: args.limit,
    };
    let rows = match store.audit_query(&filter) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return INVALID;
        }
    };
    let header = ["time", "run_id", "pipeline", "key", "operation", "http_status", "target_id", "error"];
    let cells = |e: &engine::state::AuditEntry| -> [String; 8] {
        [
            e.time.clone(),
            e.run_id.clone(),
            e.pipeline.clone(),
            e.key.clone(),
            e.operation.as_str().to_owned(),
            e.http_status.map(|s| s.to_string()).unwrap_or_default(),
            e.target_id.clone().unwrap_or_default(),
            e.error.clone().unwrap_or_default(),
        ]
    };
    match args.format {
        AuditFormat::Jsonl => {
            for e in &rows {
                println!("{}", serde_json::to_string(e).expect("an audit row serializes"));
            }
        }
        AuditFormat::Csv => {
            println!("{}", header.join(","));
            for e in &rows {
                println!("{}", cells(e).iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            }
        }
        AuditFormat::Table => {
            let all: Vec<[String; 8]> = rows.iter().map(cells).collect();
            let mut widths = header.map(str::len);
            for row in &all {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            println!("{}", line(&header.map(str::to_owned)));
            for row in &all {
                println!("{}", line(row));
            }
        }
    }
    OK
}

/// RFC 4180 quoting.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// `ml-connector dead-letters`.
#[derive(Debug, clap::Args)]
pub struct DeadLettersArgs {
    #[arg(short, long, default_value = ".")]
    project: PathBuf,
    /// Only this pipeline.
    #[arg(long)]
    pipeline: Option<String>,
    /// Include letters already resolved.
    #[arg(long)]
    all: bool,
    /// Print each letter with its record as JSON Lines instead of the grouped summary.
    #[arg(long)]
    json: bool,
}

pub fn dead_letters(args: &DeadLettersArgs) -> u8 {
    let (_, store) = match open_existing(&args.project) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let letters = match store.dead_letters(args.pipeline.as_deref(), args.all) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return FAILED;
        }
    };
    if args.json {
        for l in &letters {
            println!("{}", serde_json::to_string(l).expect("a dead letter serializes"));
        }
        return OK;
    }
    let mut groups: std::collections::BTreeMap<(&str, &str), Vec<&state::StoredDeadLetter>> = Default::default();
    for l in &letters {
        groups.entry((l.letter.pipeline.as_str(), l.letter.error_class.as_str())).or_default().push(l);
    }
    for ((pipeline, class), items) in &groups {
        println!("{pipeline} / {class}: {} record(s)", items.len());
        for l in items {
            let who = l.letter.key.clone().unwrap_or_else(|| short(&l.letter.record));
            let resolved = l.resolved_at.as_ref().map(|t| format!(" (resolved {t})")).unwrap_or_default();
            println!("  #{} {who}: {}{resolved}", l.id, l.letter.error);
        }
    }
    println!("{} dead letter(s)", letters.len());
    OK
}

fn short(record: &Value) -> String {
    let text = engine::hash::canonical_json(record);
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// `ml-connector replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[arg(short, long, default_value = ".")]
    project: PathBuf,
    /// Only this pipeline (default: every pipeline with open dead letters).
    #[arg(long)]
    pipeline: Option<String>,
    /// Only the letters with this key (repeatable).
    #[arg(long)]
    key: Vec<String>,
    /// Only the letter with this id, as `dead-letters` shows it (repeatable).
    #[arg(long)]
    id: Vec<i64>,
}

pub fn replay(args: &ReplayArgs) -> u8 {
    let (project, store) = match open_existing(&args.project) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let Some(name) = &args.pipeline
        && let Err(code) = check_pipeline(&project, name)
    {
        return code;
    }
    let selection = ReplaySelection { keys: args.key.clone(), ids: args.id.clone() };
    let registry = crate::registry::connectors();
    let context = ConnectContext { project_dir: project.dir.clone(), secrets: super::secrets::resolver(&project) };
    let runtime = super::runtime();
    let mut ok = true;
    let mut print = |e: &RecordEvent| {
        if let Some(line) = super::run::render_event(e, super::run::Format::Text, false) {
            println!("{line}");
        }
    };
    runtime.block_on(async {
        let connections = Connections::new(&project, &registry, context);
        for p in &project.pipelines {
            if args.pipeline.as_ref().is_some_and(|n| n != &p.name) {
                continue;
            }
            let open = store.dead_letters_open(&p.name).map(|l| l.len()).unwrap_or(0);
            if open == 0 {
                continue;
            }
            let before = open;
            let report = replay_dead_letters(p, &connections, &store, &selection, &mut print).await;
            let after = store.dead_letters_open(&p.name).map(|l| l.len()).unwrap_or(before);
            eprintln!("{}: replayed {}, resolved {}, still open {after}", p.name, report.counts.read, before - after);
            if let Some(e) = &report.error {
                eprintln!("  error: {e}");
            }
            ok &= report.succeeded() && report.counts.failed == 0;
        }
    });
    if ok { OK } else { FAILED }
}

/// `ml-connector state`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Show each pipeline's watermark and ledger size.
    Show {
        #[arg(short, long, default_value = ".")]
        project: PathBuf,
    },
    /// Set a pipeline's watermark, e.g. to backfill from a date: the next run reads from there.
    Set {
        #[arg(short, long, default_value = ".")]
        project: PathBuf,
        pipeline: String,
        /// The new watermark: a timestamp or date for timestamp cursors, a number otherwise.
        value: String,
    },
    /// Forget a pipeline's watermark so the next run reads everything. Unchanged records still
    /// cost no write; with `--ledger` the ledger is cleared too and every record is sent again.
    Reset {
        #[arg(short, long, default_value = ".")]
        project: PathBuf,
        pipeline: String,
        /// Clear the ledger as well (a full resync).
        #[arg(long)]
        ledger: bool,
    },
}

pub fn state(command: &StateCommand) -> u8 {
    match command {
        StateCommand::Show { project } => {
            let (project, store) = match open_existing(project) {
                Ok(x) => x,
                Err(code) => return code,
            };
            let marks = store.watermarks().unwrap_or_default();
            for p in &project.pipelines {
                let mark = marks.iter().find(|(n, _)| n == &p.name).map(|(_, v)| v.to_string());
                let cursor = p.source.cursor.as_ref().map(|c| c.field.as_str()).unwrap_or("(no cursor: full reads)");
                println!(
                    "{}: cursor {cursor}, watermark {}, ledger {} key(s)",
                    p.name,
                    mark.as_deref().unwrap_or("none"),
                    store.ledger_count(&p.name).unwrap_or(0)
                );
            }
            OK
        }
        StateCommand::Set { project, pipeline, value } => {
            let project = match load_one(project) {
                Ok(p) => p,
                Err(code) => return code,
            };
            if let Err(code) = check_pipeline(&project, pipeline) {
                return code;
            }
            let p = project.pipeline(pipeline).expect("checked above");
            let Some(c) = &p.source.cursor else {
                eprintln!("pipeline `{pipeline}` has no cursor: it reads everything every run");
                return INVALID;
            };
            let raw = value.parse::<f64>().map(Value::from).unwrap_or_else(|_| Value::String(value.clone()));
            let mark = match cursor::normalize(c.kind, &raw) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("{e}");
                    return INVALID;
                }
            };
            let store = match SqliteStore::open(&project.state_path()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return FAILED;
                }
            };
            match store.watermark_set(pipeline, &mark) {
                Ok(()) => {
                    println!("{pipeline}: watermark set to {mark}");
                    OK
                }
                Err(e) => {
                    eprintln!("{e}");
                    FAILED
                }
            }
        }
        StateCommand::Reset { project, pipeline, ledger } => {
            let (project, store) = match open_existing(project) {
                Ok(x) => x,
                Err(code) => return code,
            };
            if let Err(code) = check_pipeline(&project, pipeline) {
                return code;
            }
            let cleared = store.watermark_clear(pipeline);
            let removed = if *ledger { store.ledger_clear(pipeline).map(Some) } else { Ok(None) };
            match (cleared, removed) {
                (Ok(_), Ok(removed)) => {
                    println!("{pipeline}: watermark cleared; the next run reads everything");
                    if let Some(n) = removed {
                        println!("{pipeline}: ledger cleared ({n} key(s)); every record will be sent again");
                    }
                    OK
                }
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("{e}");
                    FAILED
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_says_when_serve_runs_each_pipeline_next() {
        use engine::config::{ClockConfig, Duration, ScheduleConfig};
        use engine::schedule::Schedule;
        let now: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        let ran = |started: &str| state::RunRecord {
            run_id: "r".into(),
            pipeline: "p".into(),
            started_at: started.into(),
            finished_at: Some(started.into()),
            counts: Default::default(),
            error: None,
        };
        let nightly = Schedule::compile(&ScheduleConfig::clock(ClockConfig::Cron {
            expression: "0 2 * * *".into(),
            timezone: None,
        }))
        .unwrap();
        let last_night = ran("2026-03-01T02:00:03Z");
        assert_eq!(
            schedule_line(Some(&nightly), Some(&last_night), now),
            "schedule: cron `0 2 * * *` (UTC); next: 2026-03-02T02:00:00Z"
        );
        let hourly = Schedule::every(std::time::Duration::from_secs(3600));
        assert_eq!(schedule_line(Some(&hourly), None, now), "schedule: every 1h; due: `serve` runs it when it starts");
        let missed = ran("2026-03-01T09:00:00Z");
        assert_eq!(
            schedule_line(Some(&hourly), Some(&missed), now),
            "schedule: every 1h; due: `serve` runs it when it starts"
        );
        assert_eq!(schedule_line(Some(&Schedule::webhook()), None, now), "schedule: webhook; runs when events arrive");
        let polled = Schedule::compile(&ScheduleConfig {
            webhook: true,
            clock: Some(ClockConfig::Every(Duration::from_secs(6 * 3600))),
        })
        .unwrap();
        assert_eq!(
            schedule_line(Some(&polled), Some(&missed), now),
            "schedule: webhook, and every 6h; runs when events arrive, else next at 2026-03-01T15:00:00Z"
        );
        assert_eq!(schedule_line(None, None, now), "schedule: none (runs only when asked: `run`)");
    }

    #[test]
    fn subscriptions_show_how_long_they_have_left() {
        let record = |entity: &str, expires: Option<&str>| state::SubscriptionRecord {
            system: "business-central".into(),
            connection: "bc".into(),
            entity: entity.into(),
            resource: "r".into(),
            subscription_id: "abc".into(),
            expires_at: expires.map(str::to_owned),
            checked_at: "2026-01-01T00:00:00Z".into(),
        };
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let lines = subscription_lines(
            &[
                record("customers", Some("2026-01-03T05:30:00Z")),
                record("items", Some("2025-12-31T23:20:00Z")),
                record("list", None),
            ],
            now,
        );
        assert_eq!(
            lines,
            [
                "business-central bc/customers  id abc  expires 2026-01-03T05:30:00Z (in 2d 5h)  checked 2026-01-01T00:00:00Z",
                "business-central bc/items  id abc  EXPIRED 2025-12-31T23:20:00Z (40m ago)  checked 2026-01-01T00:00:00Z",
                "business-central bc/list  id abc  does not expire  checked 2026-01-01T00:00:00Z",
            ]
        );
    }
}
