//! Conditions any stage may carry: `when = { ... }` (every key must hold) and
//! `unless = { ... }` (any key that holds excludes).
//!
//! Keys, the same in both tables:
//! - `direction` = `inbound` | `outbound`.
//! - `sender`: case-insensitive globs (`*` any run of characters, `?` one) over the
//!   envelope sender (SMTP MAIL FROM). A message without one matches no glob.
//! - `authenticated_sender`: the same globs over the message's From address, holding only
//!   when the receiving service proved it: the topmost `Authentication-Results` from a
//!   trusted authserv-id (top-level config key `trusted_authserv_id`, default
//!   `amazonses.com`) says DMARC passed for the From domain, or DKIM passed for it or a
//!   parent domain (see [`crate::message::auth_results`]). `sender` alone proves nothing: anyone
//!   can write any MAIL FROM, so `unless = { sender = "*@corp.example" }` lets an
//!   outsider who claims a corp.example address past the rule. Use `sender` to sort
//!   mail, `authenticated_sender` to exempt it from a policy.
//! - `recipient`: the same globs over the envelope recipients. Conditions work per
//!   recipient: `when.recipient` selects the recipients it matches (and holds when it
//!   matches at least one); `unless.recipient` takes the recipients it matches away. The
//!   stage runs when at least one recipient is left, and a `verdict` acts on exactly those.
//!   So `unless = { recipient = "*@corp.example" }` on a disclaimer adds it as soon as one
//!   recipient is outside corp.example, which is what the disclaimer is for. Only the
//!   recipients the event lists can be named, and a replayed message without an event has
//!   its To and Cc as recipients. WorkMail cuts the list of a `truncated` event (to keep
//!   it within 128 KB), and the recipients it leaves out may match: on such an event a
//!   recipient condition never skips the stage, and selects "everyone but the listed
//!   recipients it does not select" ([`Scope::AllExcept`]). A restrictive verdict
//!   (bounce, drop, junk) then also takes the response's catch-all, which is all that
//!   reaches the recipients left out, so padding the list does not dodge it; a verdict
//!   that lets mail through (`default`, `bypass_spam_check`) stays with the listed
//!   recipients it selects.
//! - `header = { name = "...", matches = "regex" }`, or a list of such tables: the
//!   regular expression (Rust `regex` syntax, unanchored, case-sensitive unless it starts
//!   with `(?i)`) is tried on every top-level field of that name, unfolded and RFC 2047
//!   decoded; any field that matches counts. Fields queued by earlier stages count too,
//!   so a stage can act on a header an earlier stage stamped.
//!
//! - `sender_group`: case-insensitive globs over the names of the groups the sender is a
//!   member of in the organization's directory (`[directory]` in the config); holds when
//!   any group matches any glob. Who "the sender" is depends on the direction: for
//!   outbound mail the From address, for inbound mail MAIL FROM (see
//!   [`crate::envelope::directory`]).
//! - `recipient_group`: the same globs over each envelope recipient's groups. It works
//!   per recipient like `recipient`: `when` selects the recipients in a matching group,
//!   `unless` takes them away, and a truncated event is handled the same way.
//! - `sender_in_directory` = true | false: whether the sender is a user of the
//!   organization. It says what the envelope or From names, not who sent the message:
//!   pair it with `authenticated_sender` on inbound mail.
//!
//!   A directory that could not be asked (`on_error = "skip"`) knows nobody: a group
//!   condition matches no one and `sender_in_directory` is false.
//!
//! Everything is checked when the config loads; an error names the key as
//! `when.header.matches`. Reports never print addresses or header values: a skipped
//! stage says which condition failed, not what it was compared with.

use crate::config::KeyError;
use crate::envelope::directory::{DirectoryNeeds, DirectoryState, sender_person};
use crate::envelope::{Direction, Envelope};
use crate::message::edit::Edits;
use crate::message::header_field;
use crate::message::mime_tree::MimeTree;
use crate::stage::actions::Scope;
use regex::Regex;

/// A stage's `when` and `unless` tables.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    when: Option<Clause>,
    unless: Option<Clause>,
    /// The authserv-ids whose Authentication-Results `authenticated_sender` believes.
    trusted_authserv_ids: Vec<String>,
}

/// One `when` or `unless` table.
#[derive(Debug, Clone, Default)]
struct Clause {
    direction: Option<Direction>,
    sender: Vec<AddressGlob>,
    authenticated_sender: Vec<AddressGlob>,
    recipient: Vec<AddressGlob>,
    header: Vec<HeaderMatch>,
    sender_group: Vec<NameGlob>,
    recipient_group: Vec<NameGlob>,
    sender_in_directory: Option<bool>,
}

impl Clause {
    fn has_recipient_condition(&self) -> bool {
        !self.recipient.is_empty() || !self.recipient_group.is_empty()
    }

    fn directory_needs(&self) -> DirectoryNeeds {
        DirectoryNeeds {
            sender: !self.sender_group.is_empty() || self.sender_in_directory.is_some(),
            recipients: !self.recipient_group.is_empty(),
        }
    }
}

/// `header = { name, matches }`.
#[derive(Debug, Clone)]
struct HeaderMatch {
    name: String,
    matches: Regex,
}

/// Why a stage did not run: the condition that failed, in words for a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped(pub String);

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped: condition {}", self.0)
    }
}

const CLAUSE_KEYS: &[&str] = &[
    "direction",
    "sender",
    "authenticated_sender",
    "recipient",
    "header",
    "sender_group",
    "recipient_group",
    "sender_in_directory",
];
const HEADER_KEYS: &[&str] = &["name", "matches"];

impl Conditions {
    /// No conditions: the stage always runs, for every recipient.
    pub fn none() -> Conditions {
        Conditions::default()
    }

    /// Reads the `when` and `unless` values of a stage table; `trusted_authserv_ids`
    /// are the config's `trusted_authserv_id`.
    pub fn parse(
        when: Option<&toml::Value>,
        unless: Option<&toml::Value>,
        trusted_authserv_ids: &[String],
    ) -> Result<Conditions, KeyError> {
        Ok(Conditions {
            when: when.map(|v| Clause::parse(v, "when")).transpose()?,
            unless: unless.map(|v| Clause::parse(v, "unless")).transpose()?,
            trusted_authserv_ids: trusted_authserv_ids.to_vec(),
        })
    }

    /// Whether the message's authenticated From address matches one of `globs`, or why
    /// not.
    fn authenticated_match(
        &self,
        mail: &MimeTree<'_>,
        globs: &[AddressGlob],
    ) -> Result<(), String> {
        match crate::message::auth_results::authenticated_from(mail, &self.trusted_authserv_ids) {
            Ok(from) if matches_any(globs, Some(&from)) => Ok(()),
            Ok(_) => Err("the authenticated From address did not match".into()),
            Err(why) => Err(why.to_string()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.when.is_none() && self.unless.is_none()
    }

    /// `when` or `unless`, whichever first reads the directory, for config errors.
    pub fn directory_key(&self) -> Option<&'static str> {
        [("when", &self.when), ("unless", &self.unless)]
            .into_iter()
            .find(|(_, c)| c.as_ref().is_some_and(|c| c.directory_needs().any()))
            .map(|(k, _)| k)
    }

    /// Which addresses the directory must be asked about for these conditions.
    pub fn directory_needs(&self) -> DirectoryNeeds {
        [&self.when, &self.unless]
            .into_iter()
            .flatten()
            .fold(DirectoryNeeds::default(), |n, c| {
                n.union(c.directory_needs())
            })
    }

    /// Whether the stage runs, and for which recipients: `Scope::All` when no recipient
    /// condition narrows it, else the envelope recipients that are left (never empty).
    /// `edits` are the changes earlier stages queued, so header conditions see them.
    pub fn evaluate(
        &self,
        mail: &MimeTree<'_>,
        edits: &Edits,
        envelope: &Envelope,
    ) -> Result<Scope, Skipped> {
        let skip = |why: String| Err(Skipped(why));
        let has_recipient_condition = self
            .when
            .as_ref()
            .is_some_and(Clause::has_recipient_condition)
            || self
                .unless
                .as_ref()
                .is_some_and(Clause::has_recipient_condition);
        let mut selected: Vec<&String> = envelope.recipients.iter().collect();
        let directory = Directory::of(mail, envelope);

        if let Some(when) = &self.when {
            if let Some(d) = when.direction
                && d != envelope.direction
            {
                return skip(format!(
                    "when.direction is {}, message is {}",
                    d.as_str(),
                    envelope.direction.as_str()
                ));
            }
            if !when.sender.is_empty() && !matches_any(&when.sender, envelope.mail_from.as_deref())
            {
                return skip("when.sender did not match the envelope sender".into());
            }
            if !when.authenticated_sender.is_empty()
                && let Err(why) = self.authenticated_match(mail, &when.authenticated_sender)
            {
                return skip(format!("when.authenticated_sender: {why}"));
            }
            if !when.recipient.is_empty() {
                selected.retain(|r| matches_any(&when.recipient, Some(r)));
                if selected.is_empty() && !envelope.truncated {
                    return skip(format!(
                        "when.recipient matched none of {} recipient(s)",
                        envelope.recipients.len()
                    ));
                }
            }
            for h in &when.header {
                let values = header_values(mail, edits, &h.name);
                if values.is_empty() {
                    return skip(format!("when.header found no {} field", h.name));
                }
                if !values.iter().any(|v| h.matches.is_match(v)) {
                    return skip(format!("when.header {} did not match", h.name));
                }
            }
            if let Some(want) = when.sender_in_directory
                && directory.sender_is_user() != want
            {
                return skip(format!(
                    "when.sender_in_directory is {want}: {}",
                    directory.sender_words()
                ));
            }
            if !when.sender_group.is_empty() && !directory.sender_in(&when.sender_group) {
                return skip(format!(
                    "when.sender_group matched none of the sender's groups ({})",
                    directory.sender_words()
                ));
            }
            if !when.recipient_group.is_empty() {
                selected.retain(|r| directory.recipient_in(r, &when.recipient_group));
                if selected.is_empty() && !envelope.truncated {
                    return skip(format!(
                        "when.recipient_group matched none of {} recipient(s){}",
                        envelope.recipients.len(),
                        directory.unavailable_words()
                    ));
                }
            }
        }

        if let Some(unless) = &self.unless {
            if unless.direction == Some(envelope.direction) {
                return skip(format!(
                    "unless.direction is {}",
                    envelope.direction.as_str()
                ));
            }
            if !unless.sender.is_empty()
                && matches_any(&unless.sender, envelope.mail_from.as_deref())
            {
                return skip("unless.sender matched the envelope sender".into());
            }
            if !unless.authenticated_sender.is_empty()
                && self
                    .authenticated_match(mail, &unless.authenticated_sender)
                    .is_ok()
            {
                return skip(
                    "unless.authenticated_sender matched the authenticated From address".into(),
                );
            }
            if !unless.recipient.is_empty() {
                let before = selected.len();
                selected.retain(|r| !matches_any(&unless.recipient, Some(r)));
                if selected.is_empty() && before > 0 && !envelope.truncated {
                    return skip(format!(
                        "unless.recipient matched every remaining recipient ({before})"
                    ));
                }
            }
            for h in &unless.header {
                let values = header_values(mail, edits, &h.name);
                if values.iter().any(|v| h.matches.is_match(v)) {
                    return skip(format!("unless.header {} matched", h.name));
                }
            }
            if let Some(want) = unless.sender_in_directory
                && directory.sender_is_user() == want
            {
                return skip(format!(
                    "unless.sender_in_directory is {want}: {}",
                    directory.sender_words()
                ));
            }
            if !unless.sender_group.is_empty() && directory.sender_in(&unless.sender_group) {
                return skip("unless.sender_group matched one of the sender's groups".into());
            }
            if !unless.recipient_group.is_empty() {
                let before = selected.len();
                selected.retain(|r| !directory.recipient_in(r, &unless.recipient_group));
                if selected.is_empty() && before > 0 && !envelope.truncated {
                    return skip(format!(
                        "unless.recipient_group matched every remaining recipient ({before})"
                    ));
                }
            }
        }

        // On a truncated event the recipients WorkMail left out may match too: the stage
        // runs, for everyone but the listed recipients the conditions did not select.
        if has_recipient_condition && envelope.truncated {
            let except = envelope
                .recipients
                .iter()
                .filter(|r| !selected.contains(r))
                .cloned()
                .collect();
            return Ok(Scope::AllExcept(except));
        }
        // With no envelope recipients (a replayed message without To or Cc) there is
        // nothing to narrow: `when.recipient` has already skipped, `unless` excluded none.
        Ok(
            if has_recipient_condition && !envelope.recipients.is_empty() {
                Scope::Recipients(selected.into_iter().cloned().collect())
            } else {
                Scope::All
            },
        )
    }
}

impl Clause {
    fn parse(value: &toml::Value, table: &str) -> Result<Clause, KeyError> {
        let toml::Value::Table(t) = value else {
            return Err(KeyError::new(
                table,
                format!(
                    "must be a table such as {{ direction = \"inbound\" }}, found {}",
                    value.type_str()
                ),
            ));
        };
        if let Some(k) = t.keys().find(|k| !CLAUSE_KEYS.contains(&k.as_str())) {
            return Err(KeyError::new(
                format!("{table}.{k}"),
                crate::config::unknown_with_hint("unknown condition key", k, CLAUSE_KEYS, "known"),
            ));
        }
        let mut clause = Clause::default();
        if let Some(v) = t.get("direction") {
            let key = format!("{table}.direction");
            let s = v.as_str().ok_or_else(|| {
                KeyError::new(&key, format!("must be a string, found {}", v.type_str()))
            })?;
            clause.direction =
                Some(Direction::parse(s).ok_or_else(|| {
                    KeyError::new(&key, format!("{s:?} is not inbound or outbound"))
                })?);
        }
        for (name, globs) in [
            ("sender", &mut clause.sender),
            ("authenticated_sender", &mut clause.authenticated_sender),
            ("recipient", &mut clause.recipient),
        ] {
            if let Some(v) = t.get(name) {
                let key = format!("{table}.{name}");
                *globs = string_list(v, &key)?
                    .iter()
                    .map(|p| AddressGlob::new(p).map_err(|e| KeyError::new(&key, e)))
                    .collect::<Result<_, _>>()?;
            }
        }
        for (name, globs) in [
            ("sender_group", &mut clause.sender_group),
            ("recipient_group", &mut clause.recipient_group),
        ] {
            if let Some(v) = t.get(name) {
                let key = format!("{table}.{name}");
                *globs = string_list(v, &key)?
                    .iter()
                    .map(|p| NameGlob::new(p).map_err(|e| KeyError::new(&key, e)))
                    .collect::<Result<_, _>>()?;
            }
        }
        if let Some(v) = t.get("sender_in_directory") {
            let key = format!("{table}.sender_in_directory");
            clause.sender_in_directory = Some(v.as_bool().ok_or_else(|| {
                KeyError::new(
                    &key,
                    format!("must be true or false, found {}", v.type_str()),
                )
            })?);
        }
        if let Some(v) = t.get("header") {
            let key = format!("{table}.header");
            let tables: Vec<&toml::Value> = match v {
                toml::Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for h in tables {
                clause.header.push(HeaderMatch::parse(h, &key)?);
            }
        }
        Ok(clause)
    }
}

impl HeaderMatch {
    fn parse(value: &toml::Value, key: &str) -> Result<HeaderMatch, KeyError> {
        let toml::Value::Table(t) = value else {
            return Err(KeyError::new(
                key,
                format!(
                    "must be a table {{ name = \"...\", matches = \"regex\" }}, found {}",
                    value.type_str()
                ),
            ));
        };
        if let Some(k) = t.keys().find(|k| !HEADER_KEYS.contains(&k.as_str())) {
            return Err(KeyError::new(
                format!("{key}.{k}"),
                "unknown key; a header condition has name and matches",
            ));
        }
        let string = |k: &str| -> Result<String, KeyError> {
            let full = format!("{key}.{k}");
            match t.get(k) {
                Some(toml::Value::String(s)) => Ok(s.clone()),
                Some(v) => Err(KeyError::new(
                    full,
                    format!("must be a string, found {}", v.type_str()),
                )),
                None => Err(KeyError::new(full, "is required (a string)")),
            }
        };
        let name = string("name")?;
        header_field::check_name(&name)
            .map_err(|e| KeyError::new(format!("{key}.name"), e.to_string()))?;
        let pattern = string("matches")?;
        let matches = Regex::new(&pattern).map_err(|e| {
            KeyError::new(
                format!("{key}.matches"),
                format!(
                    "not a valid regular expression: {}",
                    one_line(&e.to_string())
                ),
            )
        })?;
        Ok(HeaderMatch { name, matches })
    }
}

/// A list of strings; a single string counts as a list of one.
fn string_list(v: &toml::Value, key: &str) -> Result<Vec<String>, KeyError> {
    match v {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    KeyError::new(
                        key,
                        format!("must list strings (globs), found {}", i.type_str()),
                    )
                })
            })
            .collect(),
        other => Err(KeyError::new(
            key,
            format!(
                "must be a list of strings (globs), found {}",
                other.type_str()
            ),
        )),
    }
}

/// The regex crate explains syntax errors over several lines with a caret diagram; a
/// config error is one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The values of a top-level field, unfolded and RFC 2047-decoded, after the header
/// edits earlier stages queued (which hold plain, unencoded values).
pub fn header_values(mail: &MimeTree<'_>, edits: &Edits, name: &str) -> Vec<String> {
    let decoded: Vec<String> = mail
        .field_values(0, name)
        .iter()
        .map(|v| decode_words(v))
        .collect();
    edits.after_ops(0, name, decoded)
}

/// Decodes RFC 2047 encoded words in an unfolded field value, in any charset the parser
/// knows; text that is not encoded comes back as it was.
pub fn decode_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_string();
    }
    // The parser decodes unstructured fields it knows, such as Subject, but leaves
    // unknown ones raw; so the value is read as a Subject.
    let mut field = Vec::with_capacity(value.len() + 16);
    field.extend_from_slice(b"Subject: ");
    field.extend_from_slice(value.as_bytes());
    field.extend_from_slice(b"\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse_headers(&field)
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| value.to_string())
}

fn matches_any(globs: &[AddressGlob], address: Option<&str>) -> bool {
    address.is_some_and(|a| globs.iter().any(|g| g.matches(a)))
}

/// The directory's answers for one message, read the way conditions need them.
struct Directory<'e> {
    envelope: &'e Envelope,
    sender: Option<&'e crate::envelope::Person>,
}

impl<'e> Directory<'e> {
    fn of(mail: &MimeTree<'_>, envelope: &'e Envelope) -> Directory<'e> {
        Directory {
            envelope,
            sender: sender_person(envelope, mail.from_address()),
        }
    }

    fn sender_is_user(&self) -> bool {
        self.sender.is_some()
    }

    fn sender_in(&self, globs: &[NameGlob]) -> bool {
        self.sender
            .is_some_and(|p| p.groups.iter().any(|g| globs.iter().any(|x| x.matches(g))))
    }

    fn recipient_in(&self, recipient: &str, globs: &[NameGlob]) -> bool {
        self.envelope
            .directory
            .person(recipient)
            .is_some_and(|p| p.groups.iter().any(|g| globs.iter().any(|x| x.matches(g))))
    }

    /// What the directory said about the sender, in words without the address.
    fn sender_words(&self) -> String {
        match self.envelope.directory.state() {
            DirectoryState::NotConsulted => "no directory was consulted".into(),
            DirectoryState::Unavailable(why) => format!("the directory was unavailable ({why})"),
            DirectoryState::Consulted if self.sender.is_some() => {
                "the sender is a user of the directory".into()
            }
            DirectoryState::Consulted => "the sender is not in the directory".into(),
        }
    }

    fn unavailable_words(&self) -> String {
        match self.envelope.directory.state() {
            DirectoryState::Consulted => String::new(),
            DirectoryState::NotConsulted => "; no directory was consulted".into(),
            DirectoryState::Unavailable(why) => format!("; the directory was unavailable ({why})"),
        }
    }
}

/// A case-insensitive glob over a group name (`finance`, `sales-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameGlob {
    pattern: Vec<char>,
}

impl NameGlob {
    pub fn new(pattern: &str) -> Result<NameGlob, String> {
        let p = pattern.trim();
        if p.is_empty() {
            return Err("an empty glob matches no group".into());
        }
        Ok(NameGlob {
            pattern: p.chars().flat_map(char::to_lowercase).collect(),
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = name.trim().chars().flat_map(char::to_lowercase).collect();
        glob_match(&self.pattern, &text)
    }
}

/// A case-insensitive glob over an address: `*` matches any run of characters
/// (including none), `?` exactly one; everything else matches itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressGlob {
    pattern: Vec<char>,
}

impl AddressGlob {
    /// Refuses an empty pattern, and a bare domain (`partner.example`), which would
    /// match no address: the admin meant `*@partner.example`.
    pub fn new(pattern: &str) -> Result<AddressGlob, String> {
        let p = pattern.trim();
        if p.is_empty() {
            return Err("an empty glob matches no address".into());
        }
        if !p.contains('@') && !p.contains('*') {
            return Err(format!(
                "{p:?} has no @ and no *, so it matches no address; for a whole domain write \"*@{p}\""
            ));
        }
        Ok(AddressGlob {
            pattern: p.chars().flat_map(char::to_lowercase).collect(),
        })
    }

    pub fn matches(&self, address: &str) -> bool {
        let text: Vec<char> = address
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .chars()
            .flat_map(char::to_lowercase)
            .collect();
        glob_match(&self.pattern, &text)
    }
}

/// Iterative wildcard matching with one backtrack point: linear in practice, no
/// recursion on hostile patterns.
fn glob_match(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::edit::HeaderOp;

    fn conditions(toml_text: &str) -> Result<Conditions, KeyError> {
        let t: toml::Table = toml_text.parse().unwrap();
        Conditions::parse(
            t.get("when"),
            t.get("unless"),
            &[crate::message::auth_results::DEFAULT_TRUSTED_AUTHSERV_ID.to_string()],
        )
    }

    fn env(direction: Direction, from: &str, to: &[&str]) -> Envelope {
        Envelope {
            direction,
            mail_from: Some(from.to_string()),
            recipients: to.iter().map(|s| s.to_string()).collect(),
            ..Envelope::default()
        }
    }

    const MSG: &[u8] = b"From: a@partner.example\r\nSubject: =?UTF-8?Q?Rechnung_f=C3=BCr_M=C3=A4rz?=\r\nX-Spam-Flag: YES\r\n\r\nbody\r\n";

    fn person(email: &str, groups: &[&str]) -> crate::envelope::Person {
        crate::envelope::Person {
            email: email.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    /// An outbound envelope from boss@corp.example to two recipients, with the directory
    /// consulted: the boss is in finance, bob in sales, the partner not a user.
    fn directory_env() -> Envelope {
        let mut e = env(
            Direction::Outbound,
            "boss@corp.example",
            &["bob@corp.example", "x@partner.example"],
        );
        e.directory = crate::envelope::DirectoryView::consulted([
            (
                "boss@corp.example".to_string(),
                Some(person("boss@corp.example", &["Finance", "managers"])),
            ),
            (
                "bob@corp.example".to_string(),
                Some(person("bob@corp.example", &["sales-emea"])),
            ),
            ("x@partner.example".to_string(), None),
        ]);
        e
    }

    const FROM_BOSS: &[u8] = b"From: Boss <boss@corp.example>\r\n\r\nhi\r\n";

    #[test]
    fn sender_group_holds_when_a_group_of_the_sender_matches_and_not_otherwise() {
        let tree = MimeTree::parse(FROM_BOSS).unwrap();
        let e = directory_env();
        let yes = conditions("when = { sender_group = \"finance\" }").unwrap();
        assert_eq!(yes.evaluate(&tree, &Edits::new(), &e), Ok(Scope::All));
        let no = conditions("when = { sender_group = [\"sales-*\", \"legal\"] }").unwrap();
        let why = no.evaluate(&tree, &Edits::new(), &e).unwrap_err();
        assert!(why.0.contains("when.sender_group matched none"), "{why}");
        assert!(!why.0.contains("boss@"), "no addresses in reports: {why}");
        let unless = conditions("unless = { sender_group = \"Manag*\" }").unwrap();
        assert!(unless.evaluate(&tree, &Edits::new(), &e).is_err());
        assert_eq!(
            yes.directory_needs(),
            DirectoryNeeds {
                sender: true,
                recipients: false
            }
        );
    }

    #[test]
    fn recipient_group_selects_the_recipients_in_a_matching_group() {
        let tree = MimeTree::parse(FROM_BOSS).unwrap();
        let e = directory_env();
        let c = conditions("when = { recipient_group = \"sales-*\" }").unwrap();
        assert_eq!(
            c.evaluate(&tree, &Edits::new(), &e),
            Ok(Scope::Recipients(vec!["bob@corp.example".into()]))
        );
        let c = conditions("unless = { recipient_group = \"sales-*\" }").unwrap();
        assert_eq!(
            c.evaluate(&tree, &Edits::new(), &e),
            Ok(Scope::Recipients(vec!["x@partner.example".into()]))
        );
        let c = conditions("when = { recipient_group = \"legal\" }").unwrap();
        assert!(c.evaluate(&tree, &Edits::new(), &e).is_err());
        assert!(c.directory_needs().recipients);
    }

    #[test]
    fn sender_in_directory_tells_users_from_others_and_an_unavailable_directory_knows_nobody() {
        let tree = MimeTree::parse(FROM_BOSS).unwrap();
        let mut e = directory_env();
        let user = conditions("when = { sender_in_directory = true }").unwrap();
        let outsider = conditions("when = { sender_in_directory = false }").unwrap();
        assert!(user.evaluate(&tree, &Edits::new(), &e).is_ok());
        assert!(outsider.evaluate(&tree, &Edits::new(), &e).is_err());
        let from_partner = MimeTree::parse(b"From: x@partner.example\r\n\r\nhi\r\n").unwrap();
        assert!(user.evaluate(&from_partner, &Edits::new(), &e).is_err());
        e.directory = crate::envelope::DirectoryView::unavailable("throttled");
        let why = user.evaluate(&tree, &Edits::new(), &e).unwrap_err();
        assert!(why.0.contains("unavailable (throttled)"), "{why}");
        let group = conditions("when = { sender_group = \"finance\" }").unwrap();
        assert!(group.evaluate(&tree, &Edits::new(), &e).is_err());
        let e = Envelope::default();
        let why = user.evaluate(&tree, &Edits::new(), &e).unwrap_err();
        assert!(why.0.contains("no directory was consulted"), "{why}");
    }

    #[test]
    fn directory_condition_mistakes_name_the_key() {
        let e = conditions("when = { sender_in_directory = \"yes\" }").unwrap_err();
        assert_eq!(e.key, "when.sender_in_directory");
        let e = conditions("when = { sender_groups = \"x\" }").unwrap_err();
        assert!(e.problem.contains("did you mean `sender_group`"), "{e}");
        let e = conditions("when = { recipient_group = \"\" }").unwrap_err();
        assert_eq!(e.key, "when.recipient_group");
    }

    #[test]
    fn authenticated_sender_holds_only_for_a_from_address_ses_proved() {
        let c = conditions("unless = { authenticated_sender = \"*@corp.example\" }").unwrap();
        let e = env(Direction::Inbound, "ceo@corp.example", &["b@corp.example"]);
        let run = |raw: &[u8]| {
            let tree = MimeTree::parse(raw).unwrap();
            c.evaluate(&tree, &Edits::new(), &e)
        };
        // An outsider claiming the CEO's address in MAIL FROM and From: the stage runs.
        let spoofed = b"Authentication-Results: amazonses.com; spf=pass smtp.mailfrom=ceo@corp.example; dmarc=fail header.from=corp.example\r\nFrom: ceo@corp.example\r\n\r\nhi\r\n";
        assert_eq!(run(spoofed), Ok(Scope::All));
        // The same From with SES's DMARC pass: excluded.
        let real = b"Authentication-Results: amazonses.com; dkim=pass header.i=@corp.example; dmarc=pass header.from=corp.example\r\nFrom: ceo@corp.example\r\n\r\nhi\r\n";
        let skipped = run(real).unwrap_err();
        assert!(
            skipped.0.contains("unless.authenticated_sender"),
            "{skipped}"
        );
        // The envelope sender is not what it reads: `sender` alone would have excluded both.
        let by_sender = conditions("unless = { sender = \"*@corp.example\" }").unwrap();
        let tree = MimeTree::parse(spoofed).unwrap();
        assert!(by_sender.evaluate(&tree, &Edits::new(), &e).is_err());

        let when = conditions("when = { authenticated_sender = \"*@corp.example\" }").unwrap();
        let tree = MimeTree::parse(spoofed).unwrap();
        let why = when.evaluate(&tree, &Edits::new(), &e).unwrap_err();
        assert!(why.0.contains("DMARC"), "{why}");
        assert!(!why.0.contains("ceo@"), "no addresses in reports: {why}");
    }

    #[test]
    fn trusted_authserv_id_names_whose_results_count() {
        let t: toml::Table = "unless = { authenticated_sender = \"*@corp.example\" }"
            .parse()
            .unwrap();
        let c = Conditions::parse(None, t.get("unless"), &["mx.corp.example".to_string()]).unwrap();
        let e = env(Direction::Inbound, "a@corp.example", &[]);
        let ses = b"Authentication-Results: amazonses.com; dmarc=pass header.from=corp.example\r\nFrom: a@corp.example\r\n\r\nhi\r\n";
        let own = b"Authentication-Results: MX.corp.example; dmarc=pass header.from=corp.example\r\nFrom: a@corp.example\r\n\r\nhi\r\n";
        let tree = MimeTree::parse(ses).unwrap();
        assert_eq!(c.evaluate(&tree, &Edits::new(), &e), Ok(Scope::All));
        let tree = MimeTree::parse(own).unwrap();
        assert!(c.evaluate(&tree, &Edits::new(), &e).is_err());
    }

    fn eval(c: &Conditions, e: &Envelope) -> Result<Scope, Skipped> {
        let tree = MimeTree::parse(MSG).unwrap();
        c.evaluate(&tree, &Edits::new(), e)
    }

    #[test]
    fn globs_are_case_insensitive_with_star_and_question_mark() {
        let g = AddressGlob::new("*@Partner.example").unwrap();
        assert!(g.matches("Alice@PARTNER.example"));
        assert!(!g.matches("alice@partner.example.evil"));
        assert!(!g.matches("alice@sub.partner.example"));
        let g = AddressGlob::new("bo?@corp.example").unwrap();
        assert!(g.matches("bob@corp.example"));
        assert!(!g.matches("bo@corp.example"));
        assert!(AddressGlob::new("*").unwrap().matches("x@y"));
        assert!(
            AddressGlob::new("*@*.corp.example")
                .unwrap()
                .matches("a@eu.corp.example")
        );
        assert!(AddressGlob::new("a*b*c@x").unwrap().matches("aXXbYYbc@x"));
    }

    #[test]
    fn a_bare_domain_or_empty_glob_is_refused_with_a_hint() {
        let e = AddressGlob::new("partner.example").unwrap_err();
        assert!(e.contains("\"*@partner.example\""), "{e}");
        assert!(AddressGlob::new(" ").is_err());
    }

    #[test]
    fn no_conditions_run_for_all_recipients() {
        let c = conditions("").unwrap();
        assert!(c.is_empty());
        assert_eq!(
            eval(&c, &env(Direction::Inbound, "a@x", &["b@y"])),
            Ok(Scope::All)
        );
    }

    #[test]
    fn when_direction_skips_the_other_direction_and_says_why() {
        let c = conditions("when = { direction = \"inbound\" }").unwrap();
        let r = eval(&c, &env(Direction::Outbound, "a@x", &["b@y"]));
        assert_eq!(
            r.unwrap_err().to_string(),
            "skipped: condition when.direction is inbound, message is outbound"
        );
        assert!(eval(&c, &env(Direction::Inbound, "a@x", &["b@y"])).is_ok());
    }

    #[test]
    fn when_sender_reports_without_printing_the_address() {
        let c = conditions("when = { sender = [\"*@partner.example\"] }").unwrap();
        assert!(eval(&c, &env(Direction::Inbound, "a@partner.example", &["b@y"])).is_ok());
        let why = eval(
            &c,
            &env(Direction::Inbound, "secret@other.example", &["b@y"]),
        )
        .unwrap_err()
        .to_string();
        assert!(!why.contains("secret"), "{why}");
        let no_sender = Envelope {
            mail_from: None,
            ..env(Direction::Inbound, "", &["b@y"])
        };
        assert!(
            eval(&c, &no_sender).is_err(),
            "a null sender matches no glob"
        );
    }

    #[test]
    fn when_recipient_selects_only_the_matching_recipients() {
        let c = conditions("when = { recipient = \"*@corp.example\" }").unwrap();
        let e = env(
            Direction::Inbound,
            "a@x",
            &["b@corp.example", "c@other.example", "D@CORP.example"],
        );
        assert_eq!(
            eval(&c, &e),
            Ok(Scope::Recipients(vec![
                "b@corp.example".into(),
                "D@CORP.example".into()
            ]))
        );
        let none = env(Direction::Inbound, "a@x", &["c@other.example"]);
        assert!(eval(&c, &none).is_err());
    }

    #[test]
    fn unless_recipient_removes_recipients_and_skips_only_when_none_is_left() {
        let c = conditions("unless = { recipient = \"*@corp.example\" }").unwrap();
        let mixed = env(
            Direction::Outbound,
            "a@corp.example",
            &["b@corp.example", "c@other.example"],
        );
        assert_eq!(
            eval(&c, &mixed),
            Ok(Scope::Recipients(vec!["c@other.example".into()]))
        );
        let internal = env(Direction::Outbound, "a@corp.example", &["b@corp.example"]);
        assert_eq!(
            eval(&c, &internal).unwrap_err().to_string(),
            "skipped: condition unless.recipient matched every remaining recipient (1)"
        );
    }

    #[test]
    fn header_conditions_match_the_decoded_value() {
        let c = conditions(
            "when = { header = { name = \"subject\", matches = \"(?i)rechnung für\" } }",
        )
        .unwrap();
        assert!(eval(&c, &env(Direction::Inbound, "a@x", &["b@y"])).is_ok());
        let c =
            conditions("when = { header = { name = \"X-Missing\", matches = \".*\" } }").unwrap();
        assert_eq!(
            eval(&c, &env(Direction::Inbound, "a@x", &["b@y"]))
                .unwrap_err()
                .0,
            "when.header found no X-Missing field"
        );
    }

    #[test]
    fn unless_header_excludes_and_when_needs_every_header_table() {
        let c = conditions("unless = { header = { name = \"X-Spam-Flag\", matches = \"^YES$\" } }")
            .unwrap();
        assert_eq!(
            eval(&c, &env(Direction::Inbound, "a@x", &["b@y"]))
                .unwrap_err()
                .0,
            "unless.header X-Spam-Flag matched"
        );
        let c = conditions(
            "when = { header = [ { name = \"X-Spam-Flag\", matches = \"YES\" }, { name = \"Subject\", matches = \"^Invoice\" } ] }",
        )
        .unwrap();
        assert!(eval(&c, &env(Direction::Inbound, "a@x", &["b@y"])).is_err());
    }

    #[test]
    fn header_conditions_see_fields_queued_by_earlier_stages() {
        let c =
            conditions("when = { header = { name = \"X-External\", matches = \"yes\" } }").unwrap();
        let tree = MimeTree::parse(MSG).unwrap();
        let e = env(Direction::Inbound, "a@x", &["b@y"]);
        assert!(c.evaluate(&tree, &Edits::new(), &e).is_err());
        let mut edits = Edits::new();
        edits.header(
            0,
            HeaderOp::Add {
                name: "X-External".into(),
                value: "yes".into(),
            },
        );
        assert!(c.evaluate(&tree, &edits, &e).is_ok());
    }

    #[test]
    fn config_errors_name_the_full_key() {
        let key = |t: &str| conditions(t).unwrap_err().key;
        assert_eq!(key("when = { sendr = \"*\" }"), "when.sendr");
        assert_eq!(
            key("unless = { direction = \"sideways\" }"),
            "unless.direction"
        );
        assert_eq!(key("when = { sender = [1] }"), "when.sender");
        assert_eq!(
            key("when = { recipient = \"corp.example\" }"),
            "when.recipient"
        );
        assert_eq!(
            key("when = { header = { name = \"X\", matches = \"(unclosed\" } }"),
            "when.header.matches"
        );
        assert_eq!(
            key("when = { header = { name = \"X\" } }"),
            "when.header.matches"
        );
        assert_eq!(
            key("when = { header = { name = \"X\", matches = \"a\", regex = \"b\" } }"),
            "when.header.regex"
        );
        assert_eq!(key("when = \"inbound\""), "when");
    }

    #[test]
    fn a_bad_regex_error_is_one_line() {
        let e = conditions("when = { header = { name = \"X\", matches = \"(unclosed\" } }")
            .unwrap_err();
        assert!(!e.problem.contains('\n'), "{}", e.problem);
        assert!(e.problem.starts_with("not a valid regular expression"));
    }

    #[test]
    fn decode_words_handles_other_charsets_and_leaves_plain_text_alone() {
        assert_eq!(decode_words("=?ISO-8859-1?Q?caf=E9?= ok"), "café ok");
        assert_eq!(decode_words("plain =? text"), "plain =? text");
    }
}
