//! The `discard` backend: every write and sync succeeds at once and nothing reaches the disk.

use std::fs::File;

use super::{Backend, IoBackendKind, WriteOp};

#[derive(Debug)]
pub(crate) struct Discard;

impl Backend for Discard {
    fn write_all(&mut self, ops: &mut [WriteOp<'_>]) {
        for op in ops {
            op.result = Ok(());
        }
    }

    fn sync_all(&mut self, files: &[&File]) -> Vec<std::io::Result<()>> {
        files.iter().map(|_| Ok(())).collect()
    }

    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Discard
    }
}
