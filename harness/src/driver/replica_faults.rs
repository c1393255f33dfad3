//! Broker faults on the embedded engine's log: each workload fault becomes a start and, with
//! `until`, an end step at an offset into the measured phase; the case loop applies what is due,
//! and at the end every fault is healed so the log can converge before it is audited. Replica
//! faults (slow, stop, fail-leader) act on replication; disk faults (power-loss, fsync-failure,
//! disk-full, slow-disk) on the brokers' simulated disks (`engine.io: sim`). Each fault's start
//! keeps a copy of which records were acknowledged by the time it was applied, so that the audit
//! can say how many of them the log lost.

use std::time::Duration;

use anyhow::Context;
use kbench_engine::log::TopicLog;

use super::ledger::Ledger;
use crate::workload::{BrokerName, BrokerRef, ReplicaFaultAction, ReplicaFaultSpec};

/// Which brokers a power loss hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Broker(u32),
    Leader,
    All,
}

/// What one step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Slow {
        broker: u32,
        delay: Duration,
    },
    Unslow {
        broker: u32,
    },
    Stop {
        broker: u32,
    },
    Start {
        broker: u32,
    },
    /// Stop whoever leads partition 0; `fault` numbers the fault so its end restarts that broker.
    FailLeader {
        fault: usize,
    },
    RestartLeader {
        fault: usize,
    },
    PowerLoss {
        fault: usize,
        target: Target,
    },
    FsyncFailure {
        broker: u32,
    },
    DiskFull {
        broker: u32,
    },
    /// The disk has space again (after disk-full).
    DiskSpace {
        broker: u32,
    },
    /// A broker whose log directory went offline restarts (after fsync-failure or disk-full).
    Restart {
        broker: u32,
    },
    SlowDisk {
        broker: u32,
        delay: Duration,
    },
    FastDisk {
        broker: u32,
    },
}

/// A step due `at` into the measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplicaFault {
    at: Duration,
    step: Step,
}

impl ReplicaFault {
    /// The workload's faults as steps, in the order they are due.
    pub(crate) fn schedule(specs: &[ReplicaFaultSpec]) -> Vec<ReplicaFault> {
        let mut steps = Vec::new();
        for (fault, f) in specs.iter().enumerate() {
            let broker = match f.broker {
                Some(BrokerRef::Id(b)) => b,
                _ => 0,
            };
            let delay = f.delay.as_ref().map(|d| d.0).unwrap_or_default();
            let (start, end) = match f.action {
                ReplicaFaultAction::Slow => (Step::Slow { broker, delay }, Step::Unslow { broker }),
                ReplicaFaultAction::Stop => (Step::Stop { broker }, Step::Start { broker }),
                ReplicaFaultAction::FailLeader => (Step::FailLeader { fault }, Step::RestartLeader { fault }),
                ReplicaFaultAction::PowerLoss => {
                    let target = match f.broker {
                        Some(BrokerRef::Id(b)) => Target::Broker(b),
                        Some(BrokerRef::Named(BrokerName::Leader)) => Target::Leader,
                        Some(BrokerRef::Named(BrokerName::All)) | None => Target::All,
                    };
                    // Instantaneous: the brokers recover and restart within the step.
                    (Step::PowerLoss { fault, target }, Step::PowerLoss { fault, target })
                }
                ReplicaFaultAction::FsyncFailure => (Step::FsyncFailure { broker }, Step::Restart { broker }),
                ReplicaFaultAction::DiskFull => (Step::DiskFull { broker }, Step::DiskSpace { broker }),
                ReplicaFaultAction::SlowDisk => (Step::SlowDisk { broker, delay }, Step::FastDisk { broker }),
            };
            steps.push(ReplicaFault { at: f.at.0, step: start });
            if let Some(until) = &f.until {
                steps.push(ReplicaFault { at: until.0, step: end });
            }
        }
        steps.sort_by_key(|s| s.at);
        steps
    }
}

/// A fault that started: what was applied, and which records were acknowledged by then.
pub(crate) struct Started {
    pub what: String,
    pub acknowledged: Vec<Vec<bool>>,
}

/// Applies a case's steps to its log.
pub(crate) struct FaultRunner {
    steps: Vec<ReplicaFault>,
    next: usize,
    /// The broker each fail-leader fault stopped.
    failed: Vec<(usize, u32)>,
    /// Seeds the power losses' torn sectors (the case's seed).
    seed: u64,
    /// What was done, for the results: `"2.0s stop broker 2"`.
    pub applied: Vec<String>,
    /// Each fault's start, with the acknowledged records then (when a ledger tracks them).
    pub started: Vec<Started>,
}

impl FaultRunner {
    pub(crate) fn new(steps: Vec<ReplicaFault>, seed: u64) -> Self {
        FaultRunner { steps, next: 0, failed: Vec::new(), seed, applied: Vec::new(), started: Vec::new() }
    }

    /// Applies the steps due `since_measure` into the measured phase.
    pub(crate) fn apply(
        &mut self,
        since_measure: Duration,
        log: &TopicLog,
        ledger: Option<&Ledger>,
    ) -> anyhow::Result<()> {
        while let Some(&ReplicaFault { at, step }) = self.steps.get(self.next) {
            if since_measure < at {
                break;
            }
            self.next += 1;
            let starts = matches!(
                step,
                Step::Slow { .. }
                    | Step::Stop { .. }
                    | Step::FailLeader { .. }
                    | Step::PowerLoss { .. }
                    | Step::FsyncFailure { .. }
                    | Step::DiskFull { .. }
                    | Step::SlowDisk { .. }
            );
            let what = match self.step(step, log)? {
                Some(what) => what,
                None => continue,
            };
            // Taken once the step returned: acknowledgements racing with it count as before it (a
            // power loss can still see the high watermark pass records its brokers had written
            // but not fsynced, between the disks' cut and the brokers' stop).
            let acknowledged = if starts { ledger.map(Ledger::acknowledged_snapshot) } else { None };
            let line = format!("{:.1}s {what}", at.as_secs_f64());
            log::info!("broker fault: {line}");
            if let Some(acknowledged) = acknowledged {
                self.started.push(Started { what: line.clone(), acknowledged });
            }
            self.applied.push(line);
        }
        Ok(())
    }

    /// Runs one step; what it did, or `None` when there was nothing to do.
    fn step(&mut self, step: Step, log: &TopicLog) -> anyhow::Result<Option<String>> {
        Ok(Some(match step {
            Step::Slow { broker, delay } => {
                log.set_fetch_delay(broker, delay)?;
                format!("slow broker {broker} by {delay:?} per fetch")
            }
            Step::Unslow { broker } => {
                log.set_fetch_delay(broker, Duration::ZERO)?;
                format!("broker {broker} fetches at full speed")
            }
            Step::Stop { broker } => {
                log.stop_broker(broker)?;
                format!("stop broker {broker}")
            }
            Step::Start { broker } => {
                log.start_broker(broker)?;
                format!("restart broker {broker}")
            }
            Step::FailLeader { fault } => {
                let status = log.replica_status(0)?.context("fail-leader needs replication")?;
                match status.leader {
                    Some(leader) => {
                        log.stop_broker(leader)?;
                        self.failed.push((fault, leader));
                        format!("fail leader broker {leader} (epoch {})", status.leader_epoch)
                    }
                    None => "fail-leader: partition 0 has no leader to fail".into(),
                }
            }
            Step::RestartLeader { fault } => match self.failed.iter().find(|(f, _)| *f == fault) {
                Some(&(_, broker)) => {
                    log.start_broker(broker)?;
                    format!("restart failed leader broker {broker}")
                }
                None => return Ok(None),
            },
            Step::PowerLoss { fault, target } => {
                let (brokers, who): (Vec<u32>, String) = match target {
                    Target::Broker(b) => (vec![b], format!("broker {b}")),
                    Target::All => ((0..log.replication_factor()).collect(), "every broker".into()),
                    Target::Leader => match log.replica_status(0)? {
                        Some(s) => match s.leader {
                            Some(l) => (vec![l], format!("leader broker {l}")),
                            None => return Ok(Some("power-loss: partition 0 has no leader".into())),
                        },
                        None => (vec![0], "broker 0 (the leader)".into()),
                    },
                };
                log.power_loss(&brokers, self.seed ^ (fault as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .with_context(|| format!("power loss of {who}"))?;
                format!("power loss of {who}, recovered and restarted")
            }
            Step::FsyncFailure { broker } => {
                log.fail_next_fsync(broker)?;
                format!("broker {broker}'s next fdatasync fails")
            }
            Step::DiskFull { broker } => {
                log.set_disk_full(broker, true)?;
                format!("broker {broker}'s disk is full")
            }
            Step::DiskSpace { broker } => {
                log.set_disk_full(broker, false)?;
                let restarted = restart_if_offline(log, broker)?;
                format!("broker {broker}'s disk has space again{}", if restarted { "; restarted" } else { "" })
            }
            Step::Restart { broker } => match restart_if_offline(log, broker)? {
                true => format!("broker {broker} restarted (its log directory was offline)"),
                false => format!("broker {broker} not restarted: its log directory stayed online"),
            },
            Step::SlowDisk { broker, delay } => {
                log.set_disk_latency(broker, delay)?;
                format!("broker {broker}'s disk waits {delay:?} per write and fdatasync")
            }
            Step::FastDisk { broker } => {
                log.set_disk_latency(broker, Duration::ZERO)?;
                format!("broker {broker}'s disk at full speed")
            }
        }))
    }

    /// Ends every fault (stopped brokers restart, delays go, disks get space and speed back,
    /// brokers whose log directory went offline restart) so the replicas can converge.
    pub(crate) fn heal(&mut self, log: &TopicLog, sim: bool) -> anyhow::Result<()> {
        for b in 0..log.replication_factor() {
            if sim {
                log.set_disk_full(b, false)?;
                log.set_disk_latency(b, Duration::ZERO)?;
                restart_if_offline(log, b)?;
            }
            if log.replication_factor() > 1 {
                log.start_broker(b)?;
                log.set_fetch_delay(b, Duration::ZERO)?;
            }
        }
        Ok(())
    }
}

/// Restarts `broker` (recovery over its page cache) when its log directory went offline; whether it did.
fn restart_if_offline(log: &TopicLog, broker: u32) -> anyhow::Result<bool> {
    if !log.broker_offline(broker) {
        return Ok(false);
    }
    log.restart_broker(broker).with_context(|| format!("restarting broker {broker}"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::units::DurationSpec;

    #[test]
    fn faults_become_steps_in_time_order() {
        let spec = |at: u64, action, broker: Option<u32>, delay: Option<u64>, until: Option<u64>| ReplicaFaultSpec {
            at: DurationSpec(Duration::from_secs(at)),
            action,
            broker: broker.map(BrokerRef::Id),
            delay: delay.map(|d| DurationSpec(Duration::from_millis(d))),
            until: until.map(|u| DurationSpec(Duration::from_secs(u))),
        };
        let steps = ReplicaFault::schedule(&[
            spec(5, ReplicaFaultAction::FailLeader, None, None, Some(9)),
            spec(1, ReplicaFaultAction::Slow, Some(2), Some(50), Some(3)),
            spec(2, ReplicaFaultAction::Stop, Some(1), None, None),
        ]);
        let got: Vec<(u64, Step)> = steps.iter().map(|s| (s.at.as_secs(), s.step)).collect();
        assert_eq!(
            got,
            vec![
                (1, Step::Slow { broker: 2, delay: Duration::from_millis(50) }),
                (2, Step::Stop { broker: 1 }),
                (3, Step::Unslow { broker: 2 }),
                (5, Step::FailLeader { fault: 0 }),
                (9, Step::RestartLeader { fault: 0 }),
            ]
        );
    }
}
