//! The WorkMail event and the envelope stages see. WorkMail's event has no type in
//! `aws_lambda_events`, so it is defined here; the envelope is the transport-neutral view
//! the stages use, so they run the same from a file, a pipe or WorkMail.

use serde::{Deserialize, Serialize};

/// Which way the message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Direction {
    #[default]
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    /// Parses `inbound` or `outbound`, any case.
    pub fn parse(s: &str) -> Option<Direction> {
        match s.to_ascii_lowercase().as_str() {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }
}

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

/// What stages know about a message's transport, whatever it came through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    pub direction: Direction,
    /// The SMTP MAIL FROM address.
    pub mail_from: Option<String>,
    /// Set when someone sent on behalf of another.
    pub sender: Option<String>,
    pub recipients: Vec<String>,
    pub subject: Option<String>,
    pub message_id: String,
    pub invocation_id: String,
    /// WorkMail cut `recipients` to keep the event within 128 KB: there are recipients
    /// it does not list, and only the response's catch-all reaches them.
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
        }
    }
}

/// Why `address` cannot be an envelope address (one SMTP `Mailbox`: a local part, `@`, a
/// domain), or `None` when it can. Catches what a hand-written event or flag gets wrong:
/// an empty string, a line break or a list (`a@x, b@y`) where one address belongs.
pub fn address_problem(address: &str) -> Option<String> {
    if address.is_empty() {
        return Some("is empty".into());
    }
    if address.contains(',') || address.contains(';') {
        return Some("holds a list; give each address on its own".into());
    }
    if let Some(c) = address
        .chars()
        .find(|c| c.is_control() || c.is_whitespace())
    {
        return Some(format!(
            "holds {c:?}; one address, without spaces or line breaks"
        ));
    }
    if address.starts_with('<') || address.ends_with('>') {
        return Some("has angle brackets; give the bare address".into());
    }
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
                Some(format!("has a malformed domain {domain:?}"))
            } else {
                None
            }
        }
        _ => Some("is not local-part@domain".into()),
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

impl Envelope {
    /// An envelope read from the message's own From, To and Cc, for replaying saved
    /// messages that came without an event.
    pub fn from_message(raw: &[u8], direction: Direction) -> Envelope {
        let parsed = mail_parser::MessageParser::default().parse_headers(raw);
        let first = |a: Option<&mail_parser::Address<'_>>| {
            a.and_then(|a| a.first())
                .and_then(|a| a.address.as_ref())
                .map(|s| s.to_string())
        };
        let mut recipients = Vec::new();
        if let Some(m) = &parsed {
            for list in [m.to(), m.cc()].into_iter().flatten() {
                recipients.extend(
                    list.iter()
                        .filter_map(|a| a.address.as_ref().map(|s| s.to_string())),
                );
            }
        }
        Envelope {
            direction,
            mail_from: parsed.as_ref().and_then(|m| first(m.from())),
            sender: parsed.as_ref().and_then(|m| first(m.sender())),
            recipients,
            subject: parsed
                .as_ref()
                .and_then(|m| m.subject().map(str::to_string)),
            message_id: String::new(),
            invocation_id: String::new(),
            truncated: false,
        }
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

    #[test]
    fn an_envelope_can_be_read_from_the_message_headers() {
        let raw = b"From: A <a@x.example>\r\nTo: b@y.example, C <c@z.example>\r\nCc: d@w.example\r\nSubject: s\r\n\r\nbody";
        let env = Envelope::from_message(raw, Direction::Inbound);
        assert_eq!(env.mail_from.as_deref(), Some("a@x.example"));
        assert_eq!(
            env.recipients,
            ["b@y.example", "c@z.example", "d@w.example"]
        );
        assert_eq!(env.subject.as_deref(), Some("s"));
    }
}
