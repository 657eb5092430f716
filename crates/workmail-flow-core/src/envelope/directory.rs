//! What the organization's directory says about the people of one message, as the
//! stages see it: looked up by the transport before the run (a WorkMail organization,
//! or a file), handed in with the envelope, read synchronously.
//!
//! Which address is "the sender" depends on the direction ([`sender_address`]):
//!
//! - **Outbound** (a user of the organization sends): the From header's address, the
//!   mailbox the recipients see the message as written by. With send-as and
//!   send-on-behalf that is the principal, so the signature and the group rules are
//!   the principal's, as in Exchange. Without a usable From: the event's `sender` (who
//!   sent on behalf), else the envelope's MAIL FROM.
//! - **Inbound**: the envelope's MAIL FROM, the address the receiving server accepted
//!   the message from (SPF checks it; the From header is only the sender's claim).
//!   Without one (a bounce): no sender.
//!
//! Neither proves who sent the message: `sender_in_directory` on inbound mail says the
//! envelope names an address of the organization, not that the organization sent it
//! (pair it with `authenticated_sender`).

use super::transport::{Direction, Envelope};
use serde::Serialize;
use std::collections::BTreeMap;

/// The attributes of one person, as WorkMail's DescribeUser returns them, snake_case.
/// Templates reach them as `{{ sender.display_name }}` and so on.
pub const ATTRIBUTES: &[&str] = &[
    "email",
    "display_name",
    "first_name",
    "last_name",
    "initials",
    "job_title",
    "department",
    "company",
    "office",
    "telephone",
    "street",
    "city",
    "zip_code",
    "country",
];

/// One user of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Person {
    /// The primary address.
    pub email: String,
    /// Other addresses that reach the same user.
    pub aliases: Vec<String>,
    /// Attribute name (one of [`ATTRIBUTES`] other than `email`) → value; an attribute
    /// the directory leaves empty is absent.
    pub attributes: BTreeMap<String, String>,
    /// The names of the groups the user is a member of.
    pub groups: Vec<String>,
}

impl Person {
    /// An attribute's value (`email` included); `None` when the directory has none.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        if name == "email" {
            return (!self.email.is_empty()).then_some(self.email.as_str());
        }
        self.attributes
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether `address` is this user's, primary or alias, in any case.
    pub fn has_address(&self, address: &str) -> bool {
        self.email.eq_ignore_ascii_case(address)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(address))
    }
}

/// Whether the directory was asked about this message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DirectoryState {
    /// No directory is configured, or no stage needs one.
    #[default]
    NotConsulted,
    /// Every address that was needed was looked up.
    Consulted,
    /// The lookups failed and the config says `on_error = "skip"`: the stages run as if
    /// nobody were in the directory. The reason, for the log.
    Unavailable(String),
}

/// What the directory holds about the addresses of one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryView {
    state: DirectoryState,
    /// Lower-case address → the user it belongs to, or `None` for "not in the directory".
    people: BTreeMap<String, Option<Person>>,
}

impl DirectoryView {
    /// The answers of a completed lookup: each address asked about and what was found.
    pub fn consulted(answers: impl IntoIterator<Item = (String, Option<Person>)>) -> Self {
        DirectoryView {
            state: DirectoryState::Consulted,
            people: answers
                .into_iter()
                .map(|(a, p)| (a.to_ascii_lowercase(), p))
                .collect(),
        }
    }

    /// No answers, because the lookups failed (`on_error = "skip"`).
    pub fn unavailable(reason: impl Into<String>) -> Self {
        DirectoryView {
            state: DirectoryState::Unavailable(reason.into()),
            people: BTreeMap::new(),
        }
    }

    pub fn state(&self) -> &DirectoryState {
        &self.state
    }

    /// The user `address` belongs to, if the directory was asked and knows it.
    pub fn person(&self, address: &str) -> Option<&Person> {
        self.people
            .get(&address.to_ascii_lowercase())
            .and_then(Option::as_ref)
    }

    /// The addresses looked up, with what was found.
    pub fn answers(&self) -> impl Iterator<Item = (&str, Option<&Person>)> {
        self.people.iter().map(|(a, p)| (a.as_str(), p.as_ref()))
    }
}

/// Which addresses a config's stages need looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectoryNeeds {
    /// A template uses `sender.*`, or a condition `sender_group` or `sender_in_directory`.
    pub sender: bool,
    /// A condition uses `recipient_group`.
    pub recipients: bool,
}

impl DirectoryNeeds {
    pub fn any(self) -> bool {
        self.sender || self.recipients
    }

    pub fn union(self, other: DirectoryNeeds) -> DirectoryNeeds {
        DirectoryNeeds {
            sender: self.sender || other.sender,
            recipients: self.recipients || other.recipients,
        }
    }
}

/// The address that is "the sender" for directory lookups (see the module docs): for
/// outbound mail the From header's, else the event's `sender`, else MAIL FROM; for
/// inbound mail MAIL FROM. `raw` is the message (only its header is read); where the
/// message is already parsed, [`sender_address_from`] takes its From address instead.
pub fn sender_address(envelope: &Envelope, raw: &[u8]) -> Option<String> {
    let from = match envelope.direction {
        Direction::Outbound => mail_parser::MessageParser::default()
            .parse_headers(raw)
            .and_then(|m| Some(m.from()?.first()?.address.as_deref()?.to_string())),
        Direction::Inbound => None,
    };
    sender_address_from(envelope, from.as_deref())
}

/// [`sender_address`], given the message's first From address.
pub fn sender_address_from(envelope: &Envelope, from: Option<&str>) -> Option<String> {
    let non_empty = |s: Option<&str>| s.filter(|a| !a.is_empty()).map(str::to_string);
    match envelope.direction {
        Direction::Outbound => non_empty(from.filter(|a| a.contains('@')))
            .or_else(|| non_empty(envelope.sender.as_deref()))
            .or_else(|| non_empty(envelope.mail_from.as_deref())),
        Direction::Inbound => non_empty(envelope.mail_from.as_deref()),
    }
}

/// The sender's directory entry, when the directory was consulted and knows them;
/// `from` is the message's first From address (`MimeTree::from_address`).
pub fn sender_person<'e>(envelope: &'e Envelope, from: Option<&str>) -> Option<&'e Person> {
    match envelope.directory.state() {
        DirectoryState::Consulted => {
            sender_address_from(envelope, from).and_then(|a| envelope.directory.person(&a))
        }
        _ => None,
    }
}

/// The addresses to look up for one message, lower-case and each once: the sender if
/// `needs.sender`, every envelope recipient if `needs.recipients`.
pub fn addresses_to_look_up(raw: &[u8], envelope: &Envelope, needs: DirectoryNeeds) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |a: &str| {
        let a = a.to_ascii_lowercase();
        if !a.is_empty() && !out.contains(&a) {
            out.push(a);
        }
    };
    if needs.sender
        && let Some(s) = sender_address(envelope, raw)
    {
        add(&s);
    }
    if needs.recipients {
        for r in &envelope.recipients {
            add(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(direction: Direction, mail_from: &str, sender: Option<&str>) -> Envelope {
        Envelope {
            direction,
            mail_from: Some(mail_from.into()),
            sender: sender.map(str::to_string),
            recipients: vec!["Bob@Corp.example".into(), "carol@corp.example".into()],
            ..Envelope::default()
        }
    }

    const RAW: &[u8] = b"From: Boss <boss@corp.example>\r\nSender: asst@corp.example\r\n\r\nhi\r\n";

    #[test]
    fn outbound_the_sender_is_the_from_address_even_when_sent_on_behalf() {
        let e = envelope(
            Direction::Outbound,
            "asst@corp.example",
            Some("asst@corp.example"),
        );
        assert_eq!(
            sender_address(&e, RAW).as_deref(),
            Some("boss@corp.example")
        );
        let no_from = b"Subject: x\r\n\r\nhi\r\n";
        assert_eq!(
            sender_address(&e, no_from).as_deref(),
            Some("asst@corp.example"),
            "without From: the event's sender"
        );
        let e = envelope(Direction::Outbound, "me@corp.example", None);
        assert_eq!(
            sender_address(&e, no_from).as_deref(),
            Some("me@corp.example")
        );
    }

    #[test]
    fn inbound_the_sender_is_mail_from_and_a_bounce_has_none() {
        let e = envelope(Direction::Inbound, "list@partner.example", None);
        assert_eq!(
            sender_address(&e, RAW).as_deref(),
            Some("list@partner.example")
        );
        let e = envelope(Direction::Inbound, "", None);
        assert_eq!(sender_address(&e, RAW), None);
    }

    #[test]
    fn lookups_are_what_the_stages_need_each_address_once_in_lower_case() {
        let e = envelope(Direction::Outbound, "boss@corp.example", None);
        let both = DirectoryNeeds {
            sender: true,
            recipients: true,
        };
        assert_eq!(
            addresses_to_look_up(RAW, &e, both),
            [
                "boss@corp.example",
                "bob@corp.example",
                "carol@corp.example"
            ]
        );
        assert!(addresses_to_look_up(RAW, &e, DirectoryNeeds::default()).is_empty());
    }

    #[test]
    fn a_view_finds_people_in_any_case_and_an_empty_attribute_is_none() {
        let p = Person {
            email: "Alice@corp.example".into(),
            attributes: BTreeMap::from([
                ("telephone".to_string(), String::new()),
                ("job_title".to_string(), "CFO".to_string()),
            ]),
            ..Person::default()
        };
        let v = DirectoryView::consulted([("ALICE@corp.example".to_string(), Some(p))]);
        let found = v.person("alice@CORP.example").unwrap();
        assert_eq!(found.attribute("job_title"), Some("CFO"));
        assert_eq!(found.attribute("telephone"), None);
        assert_eq!(found.attribute("email"), Some("Alice@corp.example"));
        assert!(v.person("bob@corp.example").is_none());
    }
}
