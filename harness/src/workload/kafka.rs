//! `engine:` keys of `kind: kafka`: librdkafka properties and the faults of an in-process mock
//! cluster (`bootstrap.servers: mock:N`). Their meaning is in docs/KAFKA.md; the driver's
//! `kafka` module (built with `--features kafka`) maps and applies them.

use serde::{Deserialize, Serialize};

use super::units::DurationSpec;

/// The `bootstrap.servers` prefix that asks for an in-process mock cluster: `mock:3` is three brokers.
pub const MOCK_PREFIX: &str = "mock:";

/// The broker count of `bootstrap.servers: mock:N`, `None` for a real cluster's address list, or an
/// error for a malformed `mock:` value.
pub fn mock_brokers(bootstrap_servers: &str) -> Option<Result<i32, String>> {
    let n = bootstrap_servers.trim().strip_prefix(MOCK_PREFIX)?;
    Some(match n.trim().parse::<i32>() {
        Ok(n) if (1..=16).contains(&n) => Ok(n),
        _ => Err(format!("`{bootstrap_servers}`: mock:N needs a broker count N between 1 and 16")),
    })
}

/// One fault injected into the mock cluster at a time from the start of the measured phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockFaultSpec {
    /// When, from the start of the measured phase.
    pub at: DurationSpec,
    /// What happens.
    pub action: MockFaultAction,
    /// The broker (1-based id) for `broker-down`, `broker-up` and `rtt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    /// For `request-errors`: the request kind that fails (`produce`, `fetch`, `metadata`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// For `request-errors`: the error the broker answers with, by Kafka's or librdkafka's name
    /// (`NOT_LEADER_OR_FOLLOWER`, `MESSAGE_TOO_LARGE`, ...) or by number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
    /// For `request-errors`: how many requests in a row fail (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// For `rtt`: the round-trip time the broker adds to every response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DurationSpec>,
}

/// What a mock cluster fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MockFaultAction {
    /// The broker stops answering: its connections are closed and refused.
    BrokerDown,
    /// The broker comes back.
    BrokerUp,
    /// The next `count` requests of kind `request` (to any broker) fail with `error`.
    RequestErrors,
    /// The broker delays every response by `delay`.
    Rtt,
}

impl MockFaultSpec {
    /// The fault's shape: each action's keys present, the others absent. Returns the faulty key and
    /// what is wrong.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let needs = |present: bool, key: &'static str| {
            if present { Ok(()) } else { Err((key, format!("action {:?} needs `{key}`", self.action))) }
        };
        let refuses = |present: bool, key: &'static str| {
            if present { Err((key, format!("action {:?} takes no `{key}`", self.action))) } else { Ok(()) }
        };
        match self.action {
            MockFaultAction::BrokerDown | MockFaultAction::BrokerUp | MockFaultAction::Rtt => {
                needs(self.broker.is_some(), "broker")?;
                refuses(self.request.is_some(), "request")?;
                refuses(self.error.is_some(), "error")?;
                refuses(self.count.is_some(), "count")?;
                if self.action == MockFaultAction::Rtt {
                    needs(self.delay.is_some(), "delay")
                } else {
                    refuses(self.delay.is_some(), "delay")
                }
            }
            MockFaultAction::RequestErrors => {
                needs(self.request.is_some(), "request")?;
                needs(self.error.is_some(), "error")?;
                refuses(self.broker.is_some(), "broker")?;
                refuses(self.delay.is_some(), "delay")?;
                if self.count == Some(0) {
                    return Err(("count", "must be at least 1".into()));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_broker_counts() {
        assert_eq!(mock_brokers("mock:3"), Some(Ok(3)));
        assert_eq!(mock_brokers("localhost:9092"), None);
        assert!(matches!(mock_brokers("mock:0"), Some(Err(_))));
        assert!(matches!(mock_brokers("mock:x"), Some(Err(_))));
    }

    #[test]
    fn fault_shapes_are_checked() {
        let f: MockFaultSpec =
            serde_json::from_value(serde_json::json!({"at": "1s", "action": "broker-down"})).unwrap();
        assert_eq!(f.check().unwrap_err().0, "broker");
        let f: MockFaultSpec = serde_json::from_value(
            serde_json::json!({"at": "1s", "action": "request-errors", "request": "produce", "error": 10, "count": 3}),
        )
        .unwrap();
        assert!(f.check().is_ok());
        let f: MockFaultSpec =
            serde_json::from_value(serde_json::json!({"at": "1s", "action": "rtt", "broker": 1, "count": 3})).unwrap();
        assert_eq!(f.check().unwrap_err().0, "count");
    }
}
