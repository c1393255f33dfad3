//! Replica faults on the embedded engine's replicated log: each workload fault becomes a start and,
//! with `until`, an end step at an offset into the measured phase; the case loop applies what is
//! due, and at the end every fault is healed so the log can converge before it is audited.

use std::time::Duration;

use anyhow::Context;
use kbench_engine::log::TopicLog;

use crate::workload::{ReplicaFaultAction, ReplicaFaultSpec};

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
            let broker = f.broker.unwrap_or(0);
            let (start, end) = match f.action {
                ReplicaFaultAction::Slow => (
                    Step::Slow { broker, delay: f.delay.as_ref().map(|d| d.0).unwrap_or_default() },
                    Step::Unslow { broker },
                ),
                ReplicaFaultAction::Stop => (Step::Stop { broker }, Step::Start { broker }),
                ReplicaFaultAction::FailLeader => (Step::FailLeader { fault }, Step::RestartLeader { fault }),
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

/// Applies a case's steps to its log.
pub(crate) struct FaultRunner {
    steps: Vec<ReplicaFault>,
    next: usize,
    /// The broker each fail-leader fault stopped.
    failed: Vec<(usize, u32)>,
    /// What was done, for the results: `"2.0s stop broker 2"`.
    pub applied: Vec<String>,
}

impl FaultRunner {
    pub(crate) fn new(steps: Vec<ReplicaFault>) -> Self {
        FaultRunner { steps, next: 0, failed: Vec::new(), applied: Vec::new() }
    }

    /// Applies the steps due `since_measure` into the measured phase.
    pub(crate) fn apply(&mut self, since_measure: Duration, log: &TopicLog) -> anyhow::Result<()> {
        while let Some(&ReplicaFault { at, step }) = self.steps.get(self.next) {
            if since_measure < at {
                break;
            }
            self.next += 1;
            let what = match step {
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
                    None => continue,
                },
            };
            let line = format!("{:.1}s {what}", at.as_secs_f64());
            log::info!("replica fault: {line}");
            self.applied.push(line);
        }
        Ok(())
    }

    /// Ends every fault (stopped brokers restart, delays go) so the replicas can converge.
    pub(crate) fn heal(&mut self, log: &TopicLog) -> anyhow::Result<()> {
        for b in 0..log.replication_factor() {
            log.start_broker(b)?;
            log.set_fetch_delay(b, Duration::ZERO)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::units::DurationSpec;

    #[test]
    fn faults_become_steps_in_time_order() {
        let spec = |at: u64, action, broker, delay: Option<u64>, until: Option<u64>| ReplicaFaultSpec {
            at: DurationSpec(Duration::from_secs(at)),
            action,
            broker,
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
