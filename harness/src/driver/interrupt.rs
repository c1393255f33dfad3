//! Ctrl-C (SIGINT, also sent to the whole process group). The first says at once what is being
//! stopped and sets the flag the case loop polls: the current case stops, its files are finished, the
//! run is marked incomplete, the report of what finished is written, the engine data kbench created is
//! removed, and the run exits [`EXIT_INTERRUPTED`]. A second Ctrl-C does the same without waiting
//! for the case to drain: the current case is recorded as interrupted in run.json, the report is
//! written from run.json, the data is removed, and the process exits at once, with the same code.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::results::schema::{CaseResult, CaseStatus};
use crate::results::{load_run, rfc3339};

/// `kbench run`'s exit status when interrupted (128 + SIGINT, the shell's convention).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// Set by a second Ctrl-C, whose handler ends the process: the run loop, which may meet the data it
/// was closing removed under it, must then not report its own error and exit first.
static STOPPING_AT_ONCE: AtomicBool = AtomicBool::new(false);

/// Whether a second Ctrl-C is ending the process (its handler exits with [`EXIT_INTERRUPTED`]).
pub(crate) fn stopping_at_once() -> bool {
    STOPPING_AT_ONCE.load(Ordering::SeqCst)
}

/// What the handler needs to stop a run: the flag, the case running, where the run and the data are.
#[derive(Clone)]
pub(crate) struct Interrupt {
    pub flag: Arc<AtomicBool>,
    current: Arc<Mutex<Option<CaseResult>>>,
}

impl Interrupt {
    /// Installs the handler for a run writing into `run_dir`, with engine data kbench created in
    /// `temp_data` (removed on interrupt; `None` when the user gave --data-dir, which is kept).
    pub(crate) fn install(run_dir: PathBuf, temp_data: Option<PathBuf>) -> Interrupt {
        let me = Interrupt { flag: Arc::new(AtomicBool::new(false)), current: Arc::new(Mutex::new(None)) };
        let handler = me.clone();
        let _ = ctrlc::set_handler(move || handler.on_signal(&run_dir, temp_data.as_deref()));
        me
    }

    /// Whether Ctrl-C was pressed.
    pub(crate) fn raised(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The case now running (as run.json would hold it if it were stopped now), or `None` between cases.
    pub(crate) fn running(&self, case: Option<CaseResult>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = case;
    }

    fn on_signal(&self, run_dir: &std::path::Path, temp_data: Option<&std::path::Path>) {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if !self.flag.swap(true, Ordering::SeqCst) {
            let what = current.as_ref().map_or_else(|| "the run".to_string(), |c| format!("case {}", c.id));
            eprintln!(
                "\nkbench: Ctrl-C: stopping {what}; finishing its files, then the report of the cases that \
                 finished in {} (marked incomplete){}. Ctrl-C again to stop at once.",
                run_dir.display(),
                if temp_data.is_some() { ", and removing the engine data" } else { "" }
            );
            return;
        }
        STOPPING_AT_ONCE.store(true, Ordering::SeqCst);
        eprintln!("\nkbench: second Ctrl-C: stopping at once");
        if let Err(e) = record_and_report(run_dir, current) {
            eprintln!("kbench: {e:#}");
        }
        if let Some(dir) = temp_data {
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!("kbench: interrupted: finished cases are kept in {} (marked incomplete)", run_dir.display());
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    }
}

/// run.json with the running case added as interrupted, then the report from it.
fn record_and_report(run_dir: &std::path::Path, current: Option<CaseResult>) -> anyhow::Result<()> {
    let mut run = load_run(run_dir)?;
    if let Some(mut c) = current
        && !run.cases.iter().any(|done| done.id == c.id)
    {
        c.status = CaseStatus::Interrupted;
        c.error = Some("stopped by a second Ctrl-C before its figures were collected".into());
        c.ended_at = rfc3339(std::time::SystemTime::now());
        run.cases.push(c);
    }
    run.complete = false;
    run.environment.ended_at = Some(rfc3339(std::time::SystemTime::now()));
    let json = serde_json::to_vec_pretty(&run)?;
    crate::results::writer_atomic(&run_dir.join("run.json"), &json)?;
    crate::report::write_report(run_dir)
}
