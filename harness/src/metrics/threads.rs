//! Where the process's CPU went during the measured phase, by thread role: the harness's sending
//! threads, the engine's sender, I/O, compression and replication threads, consumers, librdkafka's
//! threads. Read from /proc/self/task (user + system ticks per thread, 1/USER_HZ resolution).
//!
//! Roles come from thread names, which Linux truncates to 15 bytes; every thread kbench or its
//! engine starts is named with a prefix that survives the truncation. A thread that exits during the
//! phase takes its ticks with it (none of the roles below do).

use std::collections::HashMap;
use std::time::Duration;

use procfs::process::Process;

use crate::results::schema::{RoleCpu, ThreadsCpu};

/// Which role a thread's name (as /proc shows it) belongs to.
fn role(comm: &str) -> Role {
    const ROLES: &[(&str, Role)] = &[
        ("kbench-producer", Role::Harness),
        ("kbench-consumer", Role::Consumers),
        ("kbench-kafka-co", Role::Consumers),
        ("kbench-sender", Role::Sender),
        ("kbench-log-", Role::Io),
        (kbench_engine::producer::COMPRESSION_THREAD_PREFIX, Role::Compression),
        ("kbench-fetcher", Role::Replication),
        ("kbench-isr", Role::Replication),
        ("rdk:", Role::Librdkafka),
        // kbench's librdkafka polling thread (open loop, sync sends), named as rdkafka's ThreadedProducer names its own.
        ("producer pollin", Role::Librdkafka),
    ];
    ROLES.iter().find(|(prefix, _)| comm.starts_with(prefix)).map_or(Role::Other, |(_, r)| *r)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Harness,
    Consumers,
    Sender,
    Io,
    Compression,
    Replication,
    Librdkafka,
    Other,
}

/// CPU ticks of every thread of the process at one instant.
#[derive(Debug, Default)]
pub struct ThreadSample {
    ticks: HashMap<i32, (Role, u64)>,
}

impl ThreadSample {
    /// Reads /proc/self/task now. Empty where /proc cannot be read (the figures are then zero).
    pub fn take() -> ThreadSample {
        let mut sample = ThreadSample::default();
        let Ok(tasks) = Process::myself().and_then(|me| me.tasks()) else {
            return sample;
        };
        for task in tasks.flatten() {
            if let Ok(stat) = task.stat() {
                sample.ticks.insert(task.tid, (role(&stat.comm), stat.utime + stat.stime));
            }
        }
        sample
    }

    /// CPU seconds per role from `earlier` to this sample. A thread absent from `earlier` started in
    /// between, so all its ticks count.
    pub fn since(&self, earlier: &ThreadSample) -> ThreadsCpu {
        let per_second = procfs::ticks_per_second().max(1) as f64;
        let mut out = ThreadsCpu::default();
        for (tid, (role, ticks)) in &self.ticks {
            let before = earlier.ticks.get(tid).map_or(0, |(_, t)| *t);
            let slot: &mut RoleCpu = match role {
                Role::Harness => &mut out.harness,
                Role::Consumers => &mut out.consumers,
                Role::Sender => &mut out.sender,
                Role::Io => &mut out.io,
                Role::Compression => &mut out.compression,
                Role::Replication => &mut out.replication,
                Role::Librdkafka => &mut out.librdkafka,
                Role::Other => &mut out.other,
            };
            slot.threads += 1;
            slot.cpu_seconds += ticks.saturating_sub(before) as f64 / per_second;
        }
        out
    }
}

/// CPU time (user + system) of the calling thread so far, to the nanosecond.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_roles_after_linux_truncates_them() {
        // What /proc shows for the names kbench and its engine give their threads.
        assert_eq!(role("kbench-producer"), Role::Harness);
        assert_eq!(role("kbench-compr-3"), Role::Compression);
        assert_eq!(role("kbench-log-topi"), Role::Io);
        assert_eq!(role("kbench-fetcher-"), Role::Replication);
        assert_eq!(role("kbench-kafka-co"), Role::Consumers);
        assert_eq!(role("rdk:broker1"), Role::Librdkafka);
        assert_eq!(role("producer pollin"), Role::Librdkafka);
        assert_eq!(role("kbench"), Role::Other);
    }

    #[test]
    fn a_busy_named_thread_is_counted_in_its_role() {
        let before = ThreadSample::take();
        std::thread::Builder::new()
            .name("kbench-sender".into())
            .spawn(move || {
                // Busy until this thread has used 50 ms of CPU (several ticks), however loaded the host.
                let mut x = 0u64;
                while thread_cpu_time() < Duration::from_millis(50) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                }
                let now = ThreadSample::take();
                // SAFETY: gettid has no preconditions.
                let me = unsafe { libc::gettid() };
                let (role, ticks) = now.ticks[&me];
                assert_eq!(role, Role::Sender);
                assert!(ticks > 0, "50 ms of CPU and no tick");
                // Other tests may run engine senders too: this thread is at least what the role shows.
                let after = now.since(&before);
                assert!(after.sender.threads >= 1);
                assert!(after.sender.cpu_seconds >= ticks as f64 / procfs::ticks_per_second() as f64, "{after:?}");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
