//! The process's descriptor budget (RLIMIT_NOFILE). Opening a topic raises the soft limit to the
//! hard one (once per process, as a broker's service file raises LimitNOFILE) and checks that the
//! topic fits, so a log too large for the limit fails at open with [`Error::DescriptorLimit`],
//! never with EMFILE in the middle of a run.
//!
//! What a log holds (see `segment.rs`, `index.rs`, `partition.rs`): one descriptor per partition
//! and replica, its active segment's. Index files and directories hold none; inactive segments
//! are opened per read; fsyncs of files without a descriptor open them in waves of at most
//! [`SYNC_OPENS_IN_FLIGHT`]. Those, the I/O ring, the eventfd and the consumers' offset files are
//! the [`HEADROOM`] the check keeps free.

use std::sync::Once;

use super::io_thread::SYNC_OPENS_IN_FLIGHT;
use crate::error::{Error, Result};

/// Descriptors an open partition holds, per replica.
pub(crate) const PER_PARTITION: u64 = 1;

/// Descriptors the check keeps free beyond the partitions' and those already open: fsync opens in
/// flight, segment reads without a held handle (one per reading thread), rings, eventfds, files.
pub(crate) const HEADROOM: u64 = SYNC_OPENS_IN_FLIGHT as u64 + 64;

/// The soft and hard RLIMIT_NOFILE.
fn limits() -> std::io::Result<(u64, u64)> {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((l.rlim_cur, l.rlim_max))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, once per process (an infinite hard limit is
/// capped by fs.nr_open, the most the kernel allows). A refusal leaves the limit as it was: the
/// check then reports the limit in force.
pub fn raise_descriptor_limit() {
    static RAISE: Once = Once::new();
    RAISE.call_once(|| {
        let Ok((soft, hard)) = limits() else { return };
        let target = if hard == libc::RLIM_INFINITY {
            std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(soft)
        } else {
            hard
        };
        if target > soft {
            let l = libc::rlimit { rlim_cur: target, rlim_max: hard };
            // SAFETY: setrlimit reads the struct we pass, which lives for the call.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } != 0 {
                log::warn!(
                    "could not raise RLIMIT_NOFILE from {soft} to {target}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    });
}

/// The soft RLIMIT_NOFILE in force; `None` if getrlimit fails.
pub fn descriptor_limit() -> Option<u64> {
    limits().ok().map(|(soft, _)| soft)
}

/// Descriptors the process has open now (the entries of /proc/self/fd, less the one listing it);
/// `None` where /proc is not mounted.
pub fn open_descriptors() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(entries.count().saturating_sub(1) as u64)
}

/// Raises the limit (once) and checks that `partitions` x `replicas` more partitions fit in it.
pub(crate) fn check_fits(topic: &str, partitions: u32, replicas: u32) -> Result<()> {
    raise_descriptor_limit();
    let Ok((limit, hard)) = limits() else { return Ok(()) };
    let open = open_descriptors().unwrap_or(0);
    let needed = open + u64::from(partitions) * u64::from(replicas) * PER_PARTITION + HEADROOM;
    if limit != libc::RLIM_INFINITY && needed > limit {
        return Err(Error::DescriptorLimit {
            topic: topic.to_string(),
            partitions,
            replicas,
            needed,
            open,
            limit,
            hard,
        });
    }
    Ok(())
}
