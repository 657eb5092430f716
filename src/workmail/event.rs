//! The WorkMail event. It has no type in `aws_lambda_events`, so it is defined here,
//! with how it fills the transport-neutral [`Envelope`] the stages see.

pub use workmail_flow_core::envelope::{Direction, Envelope, address_problem};

use serde::{Deserialize, Serialize};

/// An address as WorkMail writes it: `{ "address": "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAddress {
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    #[serde(default)]
    pub mail_from: Option<EventAddress>,
    #[serde(default)]
    pub recipients: Vec<EventAddress>,
}

/// The event a WorkMail "Run Lambda" rule sends. Any `summaryVersion` is accepted and
/// `sender` is optional, as WORKMAIL.md describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkMailEvent {
    #[serde(default)]
    pub summary_version: Option<String>,
    /// Required: an event without one is not WorkMail's.
    pub envelope: EventEnvelope,
    #[serde(default)]
    pub sender: Option<EventAddress>,
    #[serde(default)]
    pub subject: Option<String>,
    pub message_id: String,
    #[serde(default)]
    pub invocation_id: String,
    pub flow_direction: Direction,
    #[serde(default)]
    pub truncated: bool,
}

impl From<&WorkMailEvent> for Envelope {
    fn from(e: &WorkMailEvent) -> Envelope {
        Envelope {
            direction: e.flow_direction,
            mail_from: e.envelope.mail_from.as_ref().map(|a| a.address.clone()),
            sender: e.sender.as_ref().map(|a| a.address.clone()),
            recipients: e
                .envelope
                .recipients
                .iter()
                .map(|a| a.address.clone())
                .collect(),
            subject: e.subject.clone(),
            message_id: e.message_id.clone(),
            invocation_id: e.invocation_id.clone(),
            truncated: e.truncated,
            directory: Default::default(),
        }
    }
}

impl WorkMailEvent {
    /// Every problem with the event's addresses, as `envelope.recipients[2]: is empty`.
    pub fn address_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(a) = &self.envelope.mail_from
            && !a.address.is_empty()
            && let Some(p) = address_problem(&a.address)
        {
            out.push(format!("envelope.mailFrom.address {:?}: {p}", a.address));
        }
        for (i, r) in self.envelope.recipients.iter().enumerate() {
            if let Some(p) = address_problem(&r.address) {
                out.push(format!(
                    "envelope.recipients[{i}].address {:?}: {p}",
                    r.address
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{
      "summaryVersion": "2019-07-28",
      "envelope": {
        "mailFrom": { "address": "alice@partner.example" },
        "recipients": [ { "address": "bob@corp.example" }, { "address": "carol@corp.example" } ]
      },
      "subject": "Q3 numbers",
      "messageId": "d1234567-8e90-1f23-456a-bcd7ef0a8b9c",
      "invocationId": "0123456789abcdef0123456789abcdef",
      "flowDirection": "OUTBOUND",
      "truncated": false
    }"#;

    #[test]
    fn a_workmail_event_without_sender_parses_into_an_envelope() {
        let e: WorkMailEvent = serde_json::from_str(EVENT).unwrap();
        let env = Envelope::from(&e);
        assert_eq!(env.direction, Direction::Outbound);
        assert_eq!(env.mail_from.as_deref(), Some("alice@partner.example"));
        assert_eq!(env.sender, None);
        assert_eq!(env.recipients, ["bob@corp.example", "carol@corp.example"]);
    }
}
