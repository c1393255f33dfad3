//! What a reader must know about a case before trusting its figures, decided from its summary
//! alone: it failed or was interrupted, it lost acknowledged records, its senders fell behind, its
//! sends partly failed, its consumers lost or duplicated records. The terminal table, report.md and
//! report.html print these, and the Winners skip any case with a concern that [`Concern::bars`].

use super::schema::{CaseResult, CaseStatus};
use super::verdict::grouped;

/// One thing wrong with a case, in numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concern {
    /// A short phrase for a table cell: `lost 29 acknowledged`.
    pub short: String,
    /// The whole sentence, with the why: faults applied, elections, the failure reason.
    pub long: String,
    /// Whether the case is out of the running for the Winners.
    pub bars: bool,
}

impl Concern {
    fn new(short: String, long: String, bars: bool) -> Concern {
        Concern { short, long, bars }
    }
}

/// Every concern of `c`, the gravest first; empty for a clean case.
pub fn concerns(c: &CaseResult) -> Vec<Concern> {
    let s = &c.summary;
    let mut out = Vec::new();
    match c.status {
        CaseStatus::Failed => out.push(Concern::new(
            "failed".into(),
            format!("failed: {}", c.error.as_deref().unwrap_or("no reason recorded")),
            true,
        )),
        CaseStatus::Interrupted => out.push(Concern::new(
            "interrupted".into(),
            "interrupted (Ctrl-C): its figures cover only the part that ran".into(),
            true,
        )),
        CaseStatus::Ok => {}
    }
    let faults = faults_applied(c);
    if let Some(r) = &s.replication
        && r.lost_acknowledged > 0
    {
        out.push(Concern::new(
            format!("lost {} acknowledged", grouped(r.lost_acknowledged)),
            format!(
                "lost {} of {} acknowledged records: the log no longer has them after {} ({} leader election(s); \
                 acks={}, min.insync.replicas {})",
                grouped(r.lost_acknowledged),
                grouped(r.acknowledged),
                if faults.is_empty() { "the case (no fault applied)".to_string() } else { faults.join(", ") },
                r.elections,
                acks(c),
                r.min_insync_replicas,
            ),
            true,
        ));
    }
    if let Some(k) = &s.consumers
        && k.lost > 0
    {
        out.push(Concern::new(
            format!("{} never consumed", grouped(k.lost)),
            format!(
                "{} of {} acknowledged records were never processed by the consumers",
                grouped(k.lost),
                grouped(k.acknowledged)
            ),
            true,
        ));
    }
    if s.saturated {
        out.push(Concern::new(
            "saturated".into(),
            format!(
                "saturated: the senders fell behind the schedule of {} records/s (issued {} records/s), so the \
                 latency from the schedule grows with the backlog",
                grouped(s.target_rate.round() as u64),
                grouped(s.achieved_rate.round() as u64)
            ),
            true,
        ));
    }
    if c.status == CaseStatus::Ok && s.errors > 0 {
        let attempts = s.records + s.errors;
        out.push(Concern::new(
            format!("{} errors", grouped(s.errors)),
            format!(
                "{} of {} sends failed (within records.max_error_ratio, so the case is ok)",
                grouped(s.errors),
                grouped(attempts)
            ),
            false,
        ));
    }
    if let Some(k) = &s.consumers
        && k.duplicated > 0
    {
        out.push(Concern::new(
            format!("{} duplicated", grouped(k.duplicated)),
            format!("{} records were processed more than once by the consumers", grouped(k.duplicated)),
            false,
        ));
    }
    if let Some(r) = &s.replication
        && !r.converged
    {
        out.push(Concern::new(
            "not converged".into(),
            "the replicas had not converged (leader, full ISR, equal logs) when the audit ran".into(),
            false,
        ));
    }
    out
}

/// Whether the Winners may crown `c`: it ran to its end, got records through and has no barring
/// concern.
pub fn eligible(c: &CaseResult) -> bool {
    c.status == CaseStatus::Ok && c.summary.records > 0 && !concerns(c).iter().any(|k| k.bars)
}

/// The faults applied to the case, as the backend logged them (`3.0s fail leader broker 0 (epoch 1)`).
pub fn faults_applied(c: &CaseResult) -> Vec<String> {
    let s = &c.summary;
    let mut out: Vec<String> = s.replication.iter().flat_map(|r| r.faults.iter().cloned()).collect();
    out.extend(s.kafka.iter().flat_map(|k| k.faults_applied.iter().cloned()));
    out
}

/// The case's `producer.acks`, as swept or as the run's workload had it; `?` when unknown.
fn acks(c: &CaseResult) -> String {
    c.params.get("producer.acks").map_or_else(|| "?".into(), crate::workload::value_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::schema::{ReplicationSummary, Summary};

    fn case(status: CaseStatus, summary: Summary) -> CaseResult {
        CaseResult {
            id: "009-acks=1".into(),
            index: 9,
            repeat: 0,
            params: [("producer.acks".to_string(), serde_json::json!("1"))].into(),
            status,
            error: None,
            started_at: String::new(),
            ended_at: String::new(),
            summary,
            files: Default::default(),
        }
    }

    #[test]
    fn lost_acknowledged_records_bar_the_case_and_say_why() {
        let replication = ReplicationSummary {
            replication_factor: 3,
            min_insync_replicas: 2,
            acknowledged: 160_000,
            lost_acknowledged: 29,
            elections: 2,
            converged: true,
            faults: vec!["3.0s fail leader broker 0 (epoch 1)".into(), "6.0s restart failed leader broker 0".into()],
            fault_losses: Vec::new(),
        };
        let c = case(
            CaseStatus::Ok,
            Summary { records: 1000, errors: 22, replication: Some(replication), ..Summary::default() },
        );
        let all = concerns(&c);
        assert_eq!(all[0].short, "lost 29 acknowledged");
        assert_eq!(
            all[0].long,
            "lost 29 of 160,000 acknowledged records: the log no longer has them after 3.0s fail leader broker 0 \
             (epoch 1), 6.0s restart failed leader broker 0 (2 leader election(s); acks=1, min.insync.replicas 2)"
        );
        assert!(all[0].bars);
        assert_eq!(all[1].short, "22 errors");
        assert!(!all[1].bars, "errors within the ratio inform, they do not bar");
        assert!(!eligible(&c));
    }

    #[test]
    fn failed_saturated_and_consumer_losses_bar_errors_and_duplicates_do_not() {
        let mut failed = case(CaseStatus::Failed, Summary { records: 10, ..Summary::default() });
        failed.error = Some("41,212 of 41,300 sends failed".into());
        assert_eq!(concerns(&failed)[0].long, "failed: 41,212 of 41,300 sends failed");
        assert!(!eligible(&failed));

        let saturated = case(
            CaseStatus::Ok,
            Summary {
                records: 10,
                saturated: true,
                target_rate: 20_000.0,
                achieved_rate: 15_000.0,
                ..Summary::default()
            },
        );
        assert!(concerns(&saturated)[0].long.contains("20,000 records/s (issued 15,000"), "{:?}", concerns(&saturated));
        assert!(!eligible(&saturated));

        let consumers =
            crate::results::schema::ConsumerSummary { acknowledged: 100, duplicated: 3, ..Default::default() };
        let dup =
            case(CaseStatus::Ok, Summary { records: 10, consumers: Some(consumers.clone()), ..Summary::default() });
        assert_eq!(concerns(&dup).len(), 1);
        assert!(eligible(&dup), "duplicates are shown, not barred");
        let lost = crate::results::schema::ConsumerSummary { lost: 4, ..consumers };
        let lost = case(CaseStatus::Ok, Summary { records: 10, consumers: Some(lost), ..Summary::default() });
        assert_eq!(concerns(&lost)[0].short, "4 never consumed");
        assert!(!eligible(&lost));

        let clean = case(CaseStatus::Ok, Summary { records: 10, ..Summary::default() });
        assert!(concerns(&clean).is_empty() && eligible(&clean));
        assert!(!eligible(&case(CaseStatus::Ok, Summary::default())), "nothing acknowledged is never a winner");
    }
}
