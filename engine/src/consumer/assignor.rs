//! Kafka's partition assignors for one topic (`partition.assignment.strategy`): members are sorted by
//! member id, partitions by number, as Kafka's `RangeAssignor` and `RoundRobinAssignor` do.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::error::{Error, Result};

/// `partition.assignment.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssignmentStrategy {
    /// Kafka's RangeAssignor (the default): consecutive ranges, the first `partitions % members`
    /// members one partition more.
    #[default]
    Range,
    /// Kafka's RoundRobinAssignor: partitions dealt to members in turn.
    RoundRobin,
}

impl FromStr for AssignmentStrategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "range" => Ok(AssignmentStrategy::Range),
            "roundrobin" => Ok(AssignmentStrategy::RoundRobin),
            other => Err(Error::config(
                "partition.assignment.strategy",
                format!("`{other}` is not one of range, roundrobin"),
            )),
        }
    }
}

impl AssignmentStrategy {
    /// Each member's partitions (every member present, possibly with none), for `partitions`
    /// partitions of one topic.
    pub fn assign(self, members: &[String], partitions: u32) -> BTreeMap<String, Vec<u32>> {
        let mut sorted: Vec<&String> = members.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut out: BTreeMap<String, Vec<u32>> = sorted.iter().map(|m| ((*m).clone(), Vec::new())).collect();
        if sorted.is_empty() {
            return out;
        }
        let n = sorted.len() as u32;
        match self {
            AssignmentStrategy::Range => {
                let (per, extra) = (partitions / n, partitions % n);
                let mut next = 0;
                for (i, m) in sorted.iter().enumerate() {
                    let count = per + u32::from((i as u32) < extra);
                    out.get_mut(*m).expect("inserted").extend(next..next + count);
                    next += count;
                }
            }
            AssignmentStrategy::RoundRobin => {
                for p in 0..partitions {
                    out.get_mut(sorted[(p % n) as usize]).expect("inserted").push(p);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn range_gives_the_first_members_the_extra_partitions() {
        // Kafka's RangeAssignor javadoc example: 3 partitions, 2 consumers -> C0: [0, 1], C1: [2].
        let a = AssignmentStrategy::Range.assign(&members(&["c1", "c0"]), 3);
        assert_eq!(a["c0"], [0, 1]);
        assert_eq!(a["c1"], [2]);
        let a = AssignmentStrategy::Range.assign(&members(&["a", "b", "c"]), 8);
        assert_eq!((a["a"].clone(), a["b"].clone(), a["c"].clone()), (vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]));
    }

    #[test]
    fn round_robin_deals_partitions_in_turn_and_idle_members_get_none() {
        let a = AssignmentStrategy::RoundRobin.assign(&members(&["b", "a"]), 5);
        assert_eq!(a["a"], [0, 2, 4]);
        assert_eq!(a["b"], [1, 3]);
        let a = AssignmentStrategy::RoundRobin.assign(&members(&["a", "b", "c"]), 2);
        assert!(a["c"].is_empty());
        assert!(AssignmentStrategy::Range.assign(&[], 4).is_empty());
        assert!("sticky".parse::<AssignmentStrategy>().is_err());
    }
}
