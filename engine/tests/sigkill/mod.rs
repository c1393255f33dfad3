//! Kills a child writer at a random moment, but only once it has acknowledged a given number of
//! appends: the work of a crash test is bounded by record counts, not by how fast the host is.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a child may take to print its first `min_acks` acknowledgements before the test fails.
const ACK_TIMEOUT: Duration = Duration::from_secs(120);

/// Spawns `cmd` with its stdout piped, waits until it has printed `min_acks` lines starting with
/// `ACK `, lets it run for `extra` more (so the kill lands amid writes in flight), SIGKILLs it and
/// returns every line it printed.
pub fn run_until_acked_then_kill(mut cmd: Command, min_acks: usize, extra: Duration) -> Vec<String> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawning the child writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut acks = 0;
    let deadline = Instant::now() + ACK_TIMEOUT;
    while acks < min_acks {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                acks += usize::from(line.starts_with("ACK "));
                lines.push(line);
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child printed {acks} of {min_acks} acknowledgements, then {e:?} ({ACK_TIMEOUT:?})");
            }
        }
    }
    std::thread::sleep(extra);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaping the child");
    reader.join().expect("the reader thread");
    lines.extend(rx.try_iter());
    lines
}
