//! Atomics and cells switched between `std` and `loom` so lock-free code is model-checked as written.
//!
//! Lock-free modules import their primitives from here, never from `std::sync` directly; building with
//! `RUSTFLAGS="--cfg loom"` swaps in loom's instrumented versions (see `scripts/loom.sh`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic;
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic;
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex};
