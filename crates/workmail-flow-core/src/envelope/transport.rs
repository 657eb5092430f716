//! The envelope stages see: the transport-neutral view of where a message comes from
//! and goes, so stages run the same from a file, a pipe, WorkMail or an SMTP session.
//! Each transport fills it from its own event (WorkMail's lives in the root crate).

use super::directory::DirectoryView;
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
    /// What the organization's directory holds about the sender and the recipients,
    /// looked up by the transport before the stages run (stages do no I/O). Empty when
    /// no directory is configured.
    pub directory: DirectoryView,
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
            directory: DirectoryView::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
