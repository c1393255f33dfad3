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
    #[command(after_help = RUN_HELP)]
    Run(driver::RunArgs),
    /// Check a workload file (keys, types, values, sweep) without running it.
    #[command(after_help = "Example:\n  kbench validate workloads/durability.yaml --set records.duration=4s\n\n\
                            Exit status: 0 valid, 2 refused (the error names file:line:column and the key).")]
    Validate {
        /// The workload file.
        workload: PathBuf,
        /// Override a key, as `SECTION.KEY=VALUE` (e.g. `producer.linger.ms=10`); repeatable.
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Dump a segment (.log file or partition directory), like kafka-dump-log.
    #[command(after_help = "Examples:\n  kbench inspect DATA/000-case/orders-0 --records\n  \
                            kbench inspect DATA/000-case/orders-0/00000000000000000000.log --json\n\n\
                            Exit status: 0 ok, 2 the path cannot be read or is not a segment.")]
    Inspect(inspect::InspectArgs),
    /// Rebuild report.md and report.html of a run directory from run.json and its histogram logs.
    #[command(after_help = "Example:\n  kbench report results/20261203T110236Z-durability --p99-budget-ms 50\n\n\
                            Exit status: 0 written, 2 the run cannot be read.")]
    Report(report::ReportArgs),
    /// Compare two runs case by case; exits with status 1 when the candidate regressed.
    #[command(after_help = "Examples:\n  kbench compare results/before results/after\n  \
                            kbench compare results/before results/after --threshold 10\n\n\
                            Exit status: 0 no regression, 1 a regression, a candidate problem (failed, missing or \
                            interrupted cases, different settings) or too little data for a verdict, 2 a run cannot be \
                            read.")]
    Compare(compare::CompareArgs),
}

/// `kbench run --help`'s examples and exit codes (docs/WORKLOADS.md).
const RUN_HELP: &str = "Examples:
  kbench run workloads/quickstart.yaml
  kbench run workloads/durability.yaml --set records.duration=6s --only 'producer.acks=1'
  kbench run workloads/producer-tuning.yaml --set producer.batch.size=65536 --out results/tuning --replace

Exit status:
  0    every case ran and is ok
  1    a case failed (every case still ran), or the run could not go on
  2    the workload or command was refused: nothing ran
  130  interrupted by Ctrl-C: the finished cases and their report are kept, the run marked incomplete,
       the engine data removed (a second Ctrl-C does the same at once)";

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

/// `kbench run`'s exit codes, as [`RUN_HELP`] lists them.
fn run(args: &driver::RunArgs) -> ExitCode {
    let secrets = || secrets_of(&args.workload, &args.overrides);
    let outcome = driver::run(args);
    if outcome.is_err() && driver::interrupt::stopping_at_once() {
        // A second Ctrl-C's handler is writing the report and ends the process with its own code;
        // what failed here is the run it is tearing down.
        loop {
            std::thread::park();
        }
    }
    match outcome {
        Ok(driver::RunEnd::AllOk) => ExitCode::SUCCESS,
        Ok(driver::RunEnd::CaseFailed) => ExitCode::from(1),
        Ok(driver::RunEnd::Interrupted) => ExitCode::from(driver::interrupt::EXIT_INTERRUPTED),
        Err(driver::RunError::Refused(e)) => {
            eprintln!("kbench: error: {}", driver::scrub_all(&format!("{e:#}"), &secrets()));
            ExitCode::from(2)
        }
        Err(driver::RunError::Failed(e)) => {
            eprintln!("kbench: error: {}", driver::scrub_all(&format!("{e:#}"), &secrets()));
            ExitCode::from(1)
        }
    }
}

/// The secret values of a workload file and its `--set` overrides: nothing kbench prints quotes
/// them (an error may echo the value it refuses).
fn secrets_of(path: &std::path::Path, overrides: &[String]) -> Vec<String> {
    driver::secret_values(std::fs::read_to_string(path).ok().as_deref(), overrides)
}

fn validate(path: &std::path::Path, overrides: &[String]) -> anyhow::Result<ExitCode> {
    let secrets = secrets_of(path, overrides);
    match workload::load(path, overrides) {
        Ok(w) => {
            println!("{}", driver::scrub_all(&w.describe(), &secrets));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}", driver::scrub_all(&e.to_string(), &secrets));
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
