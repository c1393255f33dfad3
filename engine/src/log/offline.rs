//! Fail-stop: a log directory goes offline at its first storage error, as Kafka's
//! LogDirFailureChannel takes a log dir offline.
//!
//! After a failed fdatasync Linux may already have dropped the dirty pages it could not write (the
//! error is reported once; a later fsync "succeeds" over the hole), and after a failed write the
//! file's tail is unknown. Neither can be retried into a promise, so the directory stops: every
//! append waiting on it fails, and so does every later append, read, flush and truncation, with
//! [`Error::KafkaStorage`] naming the failed operation and file. The directory is left as it is;
//! reopening the log runs recovery over it. With replication the broker whose directory went
//! offline leaves the ISR and gives up leadership (see [`replication`](super::replication)).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// One log directory's health, shared by its I/O thread (which takes it offline) and its readers.
#[derive(Debug)]
pub(crate) struct LogDirHealth {
    dir: PathBuf,
    offline: AtomicBool,
    cause: Mutex<Option<Error>>,
}

impl LogDirHealth {
    pub(crate) fn new(dir: PathBuf) -> Self {
        LogDirHealth { dir, offline: AtomicBool::new(false), cause: Mutex::new(None) }
    }

    /// Takes the directory offline because of `cause` (the first cause is kept) and returns the
    /// error everything fails with from now on.
    pub(crate) fn fail(&self, cause: Error) -> Error {
        let mut slot = self.cause.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            log::error!("log directory {} goes offline: {cause}", self.dir.display());
            *slot = Some(match cause {
                // Already a storage error (say, from a partition of this directory): keep its cause.
                Error::KafkaStorage { cause, .. } => *cause,
                other => other,
            });
        }
        self.offline.store(true, Ordering::Release);
        self.error_locked(&slot)
    }

    fn error_locked(&self, slot: &Option<Error>) -> Error {
        let cause =
            slot.clone().unwrap_or_else(|| Error::Closed { what: format!("log directory {}", self.dir.display()) });
        Error::KafkaStorage { dir: self.dir.clone(), cause: Box::new(cause) }
    }

    /// Online again: the directory was reopened and recovery ran over it (a broker's restart).
    pub(crate) fn revive(&self) {
        let mut slot = self.cause.lock().unwrap_or_else(|p| p.into_inner());
        *slot = None;
        self.offline.store(false, Ordering::Release);
    }

    /// Whether the directory is offline.
    pub(crate) fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    /// `Ok` while online, else the [`Error::KafkaStorage`] everything fails with.
    pub(crate) fn check(&self) -> Result<()> {
        if !self.is_offline() {
            return Ok(());
        }
        Err(self.error_locked(&self.cause.lock().unwrap_or_else(|p| p.into_inner())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_cause_is_kept_and_named_by_every_later_error() {
        let h = LogDirHealth::new("/data/t-0".into());
        assert!(h.check().is_ok());
        let first = Error::io("fdatasync", "/data/t-0/00000000000000000000.log", std::io::Error::from_raw_os_error(5));
        let e = h.fail(first);
        assert!(matches!(e, Error::KafkaStorage { .. }), "{e}");
        h.fail(Error::io("write", "/data/t-0/other.log", std::io::Error::from_raw_os_error(28)));
        let later = h.check().unwrap_err().to_string();
        assert!(later.contains("fdatasync") && later.contains("00000000000000000000.log"), "{later}");
        assert!(later.contains("KafkaStorageException") && !later.contains("other.log"), "{later}");
    }
}
