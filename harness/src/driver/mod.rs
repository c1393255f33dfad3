//! `kbench run`: a workload's cases, one after another, each measured and written as it finishes.
//!
//! Data flows one way: the [`workload`](crate::workload) is expanded into cases, each case becomes a
//! [`plan`] of engine configs, [`case`] runs it against the engine and [`metrics`](crate::metrics),
//! and the run's [`results`](crate::results) and report are written from what came back.

mod audit;
mod backend;
mod case;
mod consumers;
mod embedded;
pub(crate) mod interrupt;
mod kafka;
pub(crate) mod keys;
mod ledger;
mod observer;
pub(crate) mod payload;
mod phase;
mod plan;
mod references;
mod replica_faults;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::progress::Progress;
use crate::results::schema::{CaseResult, CaseStatus, RunFile, SCHEMA_VERSION};
use crate::results::{self, RunDir};
use crate::workload;

pub(crate) use kafka::secrets::{scrub_all, secret_values};
pub(crate) use kafka::version;

/// `kbench run` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The workload file (see docs/WORKLOADS.md).
    pub workload: PathBuf,
    /// Results directory; default `results/<UTC timestamp>-<workload name>/`. Must be new or empty.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Let `--out` overwrite a directory that holds an earlier run (only a run: other content is
    /// still refused).
    #[arg(long)]
    pub replace: bool,
    /// Keep the engine's data under DIR/<case id>/<topic>-<partition>/ instead of a temporary
    /// directory that is removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Override a workload key, as `SECTION.KEY=VALUE` (e.g. `records.duration=30s`); repeatable.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run only the cases whose swept KEY has VALUE (`--only 'producer.batch.size=16384'`, the key
    /// with or without its section); repeatable: different keys must all match, one key twice
    /// takes either value.
    #[arg(long, value_name = "KEY=VALUE")]
    pub only: Vec<String>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// The end table with every column (MB/s, p99.9, batch fill, compression ratio, harness cost),
    /// wider than 100 columns.
    #[arg(long)]
    pub wide: bool,
}

/// Runs one case on what its plan names: the embedded engine, or a Kafka cluster through librdkafka.
fn run_one(
    plan: &plan::CasePlan,
    data_root: &Path,
    run_dir: &RunDir,
    progress: &Progress,
    interrupted: &AtomicBool,
    keep_data: bool,
) -> anyhow::Result<case::CaseOutcome> {
    #[cfg(feature = "kafka")]
    if let Some(k) = &plan.kafka {
        return case::run_case(plan, |shared| kafka::Kafka::open(plan, k, shared), run_dir, progress, interrupted);
    }
    case::run_case(
        plan,
        |shared| embedded::Embedded::open(plan, data_root, keep_data, shared),
        run_dir,
        progress,
        interrupted,
    )
}

/// How `kbench run` ended (main turns it into the exit code, docs/WORKLOADS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunEnd {
    /// Every case ran and is `ok`: exit 0.
    AllOk,
    /// At least one case is `failed` (every case still ran): exit 1.
    CaseFailed,
    /// Ctrl-C: exit 130.
    Interrupted,
}

/// Why `kbench run` stopped with an error.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The workload or command was refused before anything ran: exit 2.
    Refused(anyhow::Error),
    /// The run started and could not go on (the results could not be written, say): exit 1.
    Failed(anyhow::Error),
}

/// Runs every case of the workload and writes the run directory.
pub(crate) fn run(args: &RunArgs) -> Result<RunEnd, RunError> {
    let workload =
        workload::load(&args.workload, &args.overrides).map_err(|e| RunError::Refused(anyhow::anyhow!("{e}")))?;
    if let Some(out) = &args.out {
        results::check_out(out, args.replace).map_err(RunError::Refused)?;
    }
    let progress = Progress::new(0, args.quiet);
    for w in &workload.warnings {
        progress.warn(w);
    }
    let cases = workload::select(workload.cases(), &args.only).map_err(|m| RunError::Refused(anyhow::anyhow!(m)))?;
    let plans =
        cases.iter().map(plan::CasePlan::from_case).collect::<anyhow::Result<Vec<_>>>().map_err(RunError::Refused)?;
    run_cases(args, &workload, &cases, &plans).map_err(RunError::Failed)
}

/// [`run`] once the workload is accepted: the run directory, then every case.
fn run_cases(
    args: &RunArgs,
    workload: &workload::Workload,
    cases: &[workload::Case],
    plans: &[plan::CasePlan],
) -> anyhow::Result<RunEnd> {
    let progress = Progress::new(cases.len(), args.quiet).wide(args.wide);

    let results_root = Path::new("results");
    let run_dir = RunDir::create(args.out.as_deref(), results_root, &workload.name, args.replace)?;
    let temp;
    let data_root: PathBuf = match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating --data-dir {}", dir.display()))?;
            dir.clone()
        }
        None => {
            // Beside the results, on the same disk, rather than in /tmp, which may be a tmpfs.
            temp = tempfile::Builder::new()
                .prefix(".kbench-data-")
                .tempdir_in(run_dir.path())
                .context("creating a temporary data directory")?;
            temp.path().to_path_buf()
        }
    };

    let temp_data = args.data_dir.is_none().then(|| data_root.clone());
    let interrupt = interrupt::Interrupt::install(run_dir.path().to_path_buf(), temp_data);
    let interrupted: &AtomicBool = &interrupt.flag;

    let io = plans.first().map(|p| p.log.io.to_string()).unwrap_or_default();
    let mut run = RunFile {
        schema_version: SCHEMA_VERSION,
        kbench_version: env!("CARGO_PKG_VERSION").to_string(),
        name: workload.name.clone(),
        description: workload.description.clone(),
        complete: false,
        workload_file: args.workload.display().to_string(),
        overrides: kafka::secrets::record_overrides(&args.overrides),
        workload: {
            let mut w = serde_json::to_value(workload).context("serialising the workload")?;
            kafka::secrets::record_workload(&mut w);
            w
        },
        environment: results::capture_environment(&io, &io, kbench_engine::io::io_uring_available(), &data_root),
        references: references::measure(
            workload,
            &plans.iter().map(|p| p.producer.compression).collect::<Vec<_>>(),
            results_root,
        ),
        cases: Vec::with_capacity(cases.len()),
    };
    run_dir.write_run(&run)?;

    // Errors may quote what the cluster or librdkafka said about a property: never a secret.
    let secrets = secret_values(std::fs::read_to_string(&args.workload).ok().as_deref(), &args.overrides);
    // A cluster found unreachable: later cases on it are recorded as not run, with the reason.
    let mut unreachable: Option<(kafka::Unreachable, String)> = None;
    for (case, plan) in cases.iter().zip(plans) {
        if interrupt.raised() {
            break;
        }
        if let Some((u, first)) = unreachable.as_ref().filter(|(u, _)| u.reaches(plan)) {
            let message = format!("not run: {u} (found by case {first})");
            progress.warn(&format!("case {} {message}", case.id));
            run.cases.push(failed_without_figures(case, message));
            run_dir.write_run(&run)?;
            continue;
        }
        interrupt.running(Some(CaseResult {
            id: case.id.clone(),
            index: case.index,
            repeat: case.repeat,
            params: case.params.clone(),
            status: CaseStatus::Interrupted,
            error: None,
            started_at: results::rfc3339(std::time::SystemTime::now()),
            ended_at: String::new(),
            summary: Default::default(),
            files: Default::default(),
        }));
        let result = match run_one(plan, &data_root, &run_dir, &progress, interrupted, args.data_dir.is_some()) {
            Ok(outcome) => {
                // A Kafka case has no io backend of kbench's: the environment keeps the engine's.
                if !outcome.io_backend_effective.is_empty() {
                    run.environment.io_backend_effective = outcome.io_backend_effective.clone();
                }
                let mut summary = results::summarize(
                    &outcome.measured,
                    plan.rate,
                    outcome.duration,
                    outcome.sent,
                    outcome.lag,
                    outcome.cpu,
                    plan.producer.batch_size,
                );
                summary.consumers = outcome.consumers.clone();
                summary.kafka = outcome.kafka.clone();
                summary.replication = outcome.replication.clone();
                summary.threads = outcome.threads;
                summary.process = outcome.process;
                summary.harness = crate::results::schema::HarnessCost::new(
                    outcome.harness_ns_per_record,
                    plan.threads,
                    summary.duration_sec,
                    summary.records,
                );
                // The one place a case that ran is judged, for every backend: mostly failed sends,
                // or nothing acknowledged, is a failure however the case ended.
                let verdict = match outcome.status {
                    CaseStatus::Ok => results::verdict::failure(&summary, case.workload.records.max_error_ratio),
                    _ => None,
                };
                if let Some(why) = &verdict {
                    progress.warn(&format!("case {} failed: {why}", case.id));
                }
                CaseResult {
                    id: case.id.clone(),
                    index: case.index,
                    repeat: case.repeat,
                    params: case.params.clone(),
                    status: if verdict.is_some() { CaseStatus::Failed } else { outcome.status },
                    error: verdict,
                    started_at: results::rfc3339(outcome.started_at),
                    ended_at: results::rfc3339(outcome.ended_at),
                    summary,
                    files: outcome.files,
                }
            }
            Err(e) => {
                let message = scrub_all(&format!("{e:#}"), &secrets);
                progress.warn(&format!("case {} failed: {message}", case.id));
                if let Some(u) = kafka::Unreachable::of(&e) {
                    unreachable = Some((u, case.id.clone()));
                }
                failed_without_figures(case, message)
            }
        };
        progress.case_finished(&result.id, &result.summary);
        run.cases.push(result);
        run_dir.write_run(&run)?;
        interrupt.running(None);
    }
    run.complete = !interrupted.load(Ordering::SeqCst)
        && run.cases.len() == cases.len()
        && run.cases.iter().all(|c| c.status == CaseStatus::Ok);
    run.environment.ended_at = Some(results::rfc3339(std::time::SystemTime::now()));
    run_dir.write_run(&run)?;
    if let Err(e) = crate::report::write_report(run_dir.path()) {
        progress.warn(&format!("the report could not be written: {e:#}"));
    }
    progress.finish(&run);
    if !args.quiet {
        println!("results: {}", run_dir.path().display());
    }
    if interrupted.load(Ordering::SeqCst) {
        eprintln!("kbench: interrupted: finished cases are kept in {} (marked incomplete)", run_dir.path().display());
        return Ok(RunEnd::Interrupted);
    }
    let failed: Vec<&CaseResult> = run.cases.iter().filter(|c| c.status == CaseStatus::Failed).collect();
    if !failed.is_empty() {
        for c in &failed {
            eprintln!("kbench: case {} failed: {}", c.id, c.error.as_deref().unwrap_or("see run.json"));
        }
        eprintln!(
            "kbench: {} of {} case(s) failed; results: {}",
            failed.len(),
            run.cases.len(),
            run_dir.path().display()
        );
        return Ok(RunEnd::CaseFailed);
    }
    Ok(RunEnd::AllOk)
}

/// A case that failed before its measured phase, or was not run: `failed`, `message` as its
/// error, no figures or files.
fn failed_without_figures(case: &workload::Case, message: String) -> CaseResult {
    let now = results::rfc3339(std::time::SystemTime::now());
    CaseResult {
        id: case.id.clone(),
        index: case.index,
        repeat: case.repeat,
        params: case.params.clone(),
        status: CaseStatus::Failed,
        error: Some(message),
        started_at: now.clone(),
        ended_at: now,
        summary: Default::default(),
        files: Default::default(),
    }
}

/// A case's plan, for tests elsewhere in the crate that compare against what a case really sends.
#[cfg(test)]
pub(crate) fn plan_for_tests(case: &workload::Case) -> plan::CasePlan {
    plan::CasePlan::from_case(case).expect("a valid case has a plan")
}
