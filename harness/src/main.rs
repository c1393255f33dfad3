//! `kbench`: run YAML workloads against the embedded Kafka engine, and read what they wrote.

mod compare;
mod driver;
mod inspect;
mod metrics;
mod progress;
mod report;
mod results;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Benchmark and load-testing harness for Kafka-style producers and logs.
#[derive(Debug, Parser)]
#[command(name = "kbench", version = driver::version(), about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workload file: every case of its sweep, with warmup, per-stage latency and a report.
    Run(driver::RunArgs),
    /// Check a workload file (keys, types, values, sweep) without running it.
    Validate {
        /// The workload file.
        workload: PathBuf,
        /// Override a key, as `SECTION.KEY=VALUE` (e.g. `producer.linger.ms=10`); repeatable.
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Dump a segment (.log file or partition directory), like kafka-dump-log.
    Inspect(inspect::InspectArgs),
    /// Rebuild report.md and report.html of a run directory from run.json and its histogram logs.
    Report(report::ReportArgs),
    /// Compare two runs case by case; exits with status 1 when the candidate regressed.
    Compare(compare::CompareArgs),
}

fn main() -> ExitCode {
    env_logger_init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => return run(&args),
        Command::Validate { workload, overrides } => validate(&workload, &overrides),
        Command::Inspect(args) => inspect::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Report(args) => report::run_report(&args).map(|()| ExitCode::SUCCESS),
        Command::Compare(args) => {
            compare::run_compare(&args).map(|regressed| if regressed { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kbench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `kbench run`'s exit codes: 0 every case ok, 1 a case failed (or the run could not go on), 2 the
/// workload or command was refused and nothing ran, 130 interrupted by Ctrl-C.
fn run(args: &driver::RunArgs) -> ExitCode {
    match driver::run(args) {
        Ok(driver::RunEnd::AllOk) => ExitCode::SUCCESS,
        Ok(driver::RunEnd::CaseFailed) => ExitCode::from(1),
        Ok(driver::RunEnd::Interrupted) => ExitCode::from(130),
        Err(driver::RunError::Refused(e)) => {
            eprintln!("kbench: error: {e:#}");
            ExitCode::from(2)
        }
        Err(driver::RunError::Failed(e)) => {
            eprintln!("kbench: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn validate(path: &std::path::Path, overrides: &[String]) -> anyhow::Result<ExitCode> {
    match workload::load(path, overrides) {
        Ok(w) => {
            println!("{}", w.describe());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Engine warnings (an io_uring fallback, say) go to stderr through the `log` facade.
fn env_logger_init() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.level() <= log::Level::Warn
        }
        fn log(&self, r: &log::Record<'_>) {
            if self.enabled(r.metadata()) {
                eprintln!("kbench: {}: {}", r.level().as_str().to_lowercase(), r.args());
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Warn));
}
