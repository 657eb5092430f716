//! CloudWatch Embedded Metric Format: one JSON line per invocation on the function's
//! stdout, which CloudWatch Logs turns into metrics with no agent and no API call.
//! Namespace `WorkMailFlow`, dimension `Direction`.

use crate::workmail::event::Direction;
use crate::workmail::handler::Delivery;
use serde_json::json;
use std::time::Duration;

/// What one invocation counts for.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationMetrics {
    pub direction: Direction,
    pub outcome: MetricOutcome,
    pub duration: Duration,
    /// Size of the message as fetched, in bytes (0 when it never arrived).
    pub size: usize,
}

/// The one counter an invocation adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricOutcome {
    Changed,
    Unchanged,
    /// Stages changed it but the content rules (or a timeout) kept the original.
    KeptOriginal,
    /// WorkMail refused the new content (MessageRejected or MessageFrozen).
    Rejected,
    /// The invocation ended in an error result.
    Error,
}

impl MetricOutcome {
    pub fn from_delivery(d: &Delivery) -> MetricOutcome {
        match d {
            Delivery::Replaced => MetricOutcome::Changed,
            Delivery::Unchanged => MetricOutcome::Unchanged,
            Delivery::Original(why) if why.starts_with("rejected") || why.starts_with("frozen") => {
                MetricOutcome::Rejected
            }
            Delivery::Original(_) | Delivery::TimedOut(_) => MetricOutcome::KeptOriginal,
        }
    }
}

const COUNTERS: [(&str, MetricOutcome); 5] = [
    ("Changed", MetricOutcome::Changed),
    ("Unchanged", MetricOutcome::Unchanged),
    ("KeptOriginal", MetricOutcome::KeptOriginal),
    ("Rejected", MetricOutcome::Rejected),
    ("Errors", MetricOutcome::Error),
];

impl InvocationMetrics {
    /// The EMF record, as one line of JSON. `timestamp_ms` is milliseconds since the epoch.
    pub fn to_emf(&self, timestamp_ms: u128) -> String {
        let mut metrics = vec![json!({ "Name": "Processed", "Unit": "Count" })];
        for (name, _) in COUNTERS {
            metrics.push(json!({ "Name": name, "Unit": "Count" }));
        }
        metrics.push(json!({ "Name": "Duration", "Unit": "Milliseconds" }));
        metrics.push(json!({ "Name": "MessageSize", "Unit": "Bytes" }));
        let mut record = json!({
            "_aws": {
                "Timestamp": timestamp_ms as u64,
                "CloudWatchMetrics": [{
                    "Namespace": "WorkMailFlow",
                    "Dimensions": [["Direction"]],
                    "Metrics": metrics,
                }]
            },
            "Direction": self.direction.as_str(),
            "Processed": 1,
            "Duration": (self.duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            "MessageSize": self.size,
        });
        for (name, outcome) in COUNTERS {
            record[name] = json!(u8::from(self.outcome == outcome));
        }
        record.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_every_metric_and_counts_one_outcome() {
        let m = InvocationMetrics {
            direction: Direction::Outbound,
            outcome: MetricOutcome::Changed,
            duration: Duration::from_micros(12_345),
            size: 2048,
        };
        let v: serde_json::Value = serde_json::from_str(&m.to_emf(1_700_000_000_000)).unwrap();
        let declared: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in declared {
            assert!(v.get(name).is_some(), "{name} declared but missing");
        }
        assert_eq!(v["Changed"], 1);
        assert_eq!(v["Errors"], 0);
        assert_eq!(v["Direction"], "outbound");
        assert_eq!(v["Duration"], 12.345);
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
    }

    #[test]
    fn rejected_and_frozen_count_as_rejected_timeouts_as_kept_original() {
        assert_eq!(
            MetricOutcome::from_delivery(&Delivery::Original("rejected: x".into())),
            MetricOutcome::Rejected
        );
        assert_eq!(
            MetricOutcome::from_delivery(&Delivery::Original("frozen: x".into())),
            MetricOutcome::Rejected
        );
        assert_eq!(
            MetricOutcome::from_delivery(&Delivery::TimedOut("fetch".into())),
            MetricOutcome::KeptOriginal
        );
    }
}
