//! The `discard` backend: every write and sync succeeds at once and nothing reaches the disk.

use std::time::Duration;

use super::storage::OpenFile;
use super::{Backend, Completion, IoBackendKind, Waker};

#[derive(Debug, Default)]
pub(crate) struct Discard {
    done: Vec<Completion>,
}

impl Backend for Discard {
    unsafe fn write(&mut self, token: u64, _file: &OpenFile, _offset: u64, _iov: &[libc::iovec]) {
        self.done.push(Completion { token, result: Ok(()) });
    }

    fn sync(&mut self, token: u64, _file: &OpenFile) {
        self.done.push(Completion { token, result: Ok(()) });
    }

    fn reap(&mut self, _wait: Option<(&Waker, Duration)>, out: &mut Vec<Completion>) {
        out.append(&mut self.done);
    }

    fn in_flight(&self) -> usize {
        self.done.len()
    }

    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Discard
    }
}
