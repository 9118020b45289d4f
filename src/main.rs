//! The `ml-connector` binary: command-line parsing and output. Everything else lives in the
//! library crates (`engine`, `state`, the connectors); this crate only wires them together and
//! decides what the user sees.
//!
//! Exit codes: 0 success, 1 a run, test or check failed, 2 invalid configuration or usage.

mod commands;
mod progress;
mod registry;
mod sample;
mod service;
mod stock;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ml-connector keeps Business Central and Dynamics GP in step with Mailchimp. Integrations are
/// YAML pipelines; this binary validates, tests, plans and runs them.
#[derive(Debug, Parser)]
#[command(name = "ml-connector", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// More log output on standard error (-v: debug, -vv: trace). `ML_CONNECTOR_LOG` takes a
    /// filter such as `engine=debug`.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// How log lines are written: readable text, or one JSON object per line.
    #[arg(long, value_enum, default_value = "human", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the JSON Schema of the project file, pipelines or mapping tests; or write/check
    /// the copies in `schemas/`.
    Schema(commands::schema::Args),
    /// Check projects and pipelines; print every problem as `file:line:col: message`.
    Validate {
        /// Project directories, project files, pipeline files, or directories of projects.
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
    },
    /// Run the mapping tests (`*.test.yaml`) next to the pipelines.
    Test {
        /// Project directories, project files, or directories of projects.
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
    },
    /// Dry run: read the sources, render, compare with the ledger and print the requests that
    /// would be sent. Sends nothing and changes no state.
    Plan(commands::run::Args),
    /// Run pipelines once, in dependency order.
    Run(commands::run::Args),
    /// Each pipeline's watermark, ledger size, open dead letters and last runs.
    Status(commands::history::StatusArgs),
    /// The audit trail: one row per write attempt (and per unchanged skip).
    Audit(commands::history::AuditArgs),
    /// Records that failed for a reason a retry cannot fix, grouped by error class.
    DeadLetters(commands::history::DeadLettersArgs),
    /// Re-run dead-lettered records after the mapping or the data was fixed.
    Replay(commands::history::ReplayArgs),
    /// Inspect and move watermarks (backfill from a date, full resync).
    #[command(subcommand)]
    State(commands::history::StateCommand),
    /// Check that the connections work and say what they reach (account, data center, company).
    Check(commands::check::Args),
    /// Connect a customer's account by OAuth and store the token in the vault.
    #[command(subcommand)]
    Connect(commands::connect::ConnectCommand),
    /// The product end to end against the sandboxes, with no credentials: seeds an ERP, runs
    /// the stock flows both ways, shows that a second run writes nothing.
    Demo(commands::demo::Args),
    /// The always-on service: runs pipelines on their schedules and when webhook events
    /// arrive; /healthz, /readyz, /metrics.
    Serve(commands::serve::Args),
    /// Run a local sandbox of a system's API (prints the base URL it listens on).
    Sandbox(commands::sandbox::Args),
    /// Measure mapping throughput, API calls, wall time, memory and webhook intake against
    /// baselines and the APIs' limits (run by hand; see BENCHMARKS.md).
    Bench(commands::bench::Args),
    /// The project's encrypted secrets: set, list (names only), remove, generate a master key.
    #[command(subcommand)]
    Secrets(commands::secrets::SecretsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    init_logging(cli.verbose, cli.log_format, default_level);
    let code = match cli.command {
        Command::Schema(args) => commands::schema::execute(&args),
        Command::Validate { paths } => commands::validate::execute(&paths),
        Command::Test { paths } => commands::test::execute(&paths),
        Command::Plan(args) => commands::run::execute(&args, true),
        Command::Run(args) => commands::run::execute(&args, false),
        Command::Status(args) => commands::history::status(&args),
        Command::Audit(args) => commands::history::audit(&args),
        Command::DeadLetters(args) => commands::history::dead_letters(&args),
        Command::Replay(args) => commands::history::replay(&args),
        Command::State(command) => commands::history::state(&command),
        Command::Secrets(command) => commands::secrets::execute(&command),
        Command::Check(args) => commands::check::execute(&args),
        Command::Sandbox(args) => commands::sandbox::execute(&args),
        Command::Bench(args) => commands::bench::execute(&args),
        Command::Serve(args) => commands::serve::execute(&args),
        Command::Demo(args) => commands::demo::execute(&args),
        Command::Connect(command) => commands::connect::execute(&command),
    };
    ExitCode::from(code)
}

/// How log lines are written on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One readable line per event, with its spans (`project{project=…}:run{pipeline=… run_id=…}`).
    Human,
    /// One JSON object per line, spans included (`span`, `spans`), for log collectors.
    Json,
}

/// `default` is the level without `-v`: `serve` says what it does (info), one-shot commands
/// only what went wrong (warn).
fn init_logging(verbose: u8, format: LogFormat, default: &str) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => default,
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("ML_CONNECTOR_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }
}
