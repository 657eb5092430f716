//! The synchronous response WorkMail reads: which delivery action applies to whom.

use crate::envelope::Direction;
use serde::Serialize;
use std::collections::HashSet;

/// Addresses compared as WorkMail compares them, without regard to ASCII case.
fn folded(list: &[String]) -> HashSet<String> {
    list.iter().map(|r| r.to_ascii_lowercase()).collect()
}

/// WorkMail refuses a response with more actions than this (the catch-all included).
pub const MAX_ACTIONS: usize = 10;
/// WorkMail refuses an outbound response naming more recipients than this.
pub const MAX_OUTBOUND_RECIPIENTS: usize = 500;
/// WorkMail refuses a response larger than this (bytes of JSON).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The bounce text when named bounces with different texts are merged to keep the
/// response within [`MAX_ACTIONS`].
pub const MERGED_BOUNCE_MESSAGE: &str = "Message blocked by policy";

/// A delivery action. Only `Bounce` takes a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Default,
    Bounce { message: String },
    Drop,
    MoveToJunk,
    BypassSpamCheck,
}

impl Action {
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::Default => "DEFAULT",
            Action::Bounce { .. } => "BOUNCE",
            Action::Drop => "DROP",
            Action::MoveToJunk => "MOVE_TO_JUNK",
            Action::BypassSpamCheck => "BYPASS_SPAM_CHECK",
        }
    }

    /// Whether WorkMail accepts this action on outbound mail.
    pub fn allowed_outbound(&self) -> bool {
        matches!(self, Action::Default | Action::Bounce { .. } | Action::Drop)
    }

    /// Whether this action keeps the message from a recipient's inbox (bounce, drop,
    /// junk): one a policy may apply to more recipients than it named, when it cannot
    /// tell which ones it was meant for, without letting anything through it would stop.
    pub fn is_restrictive(&self) -> bool {
        matches!(
            self,
            Action::Bounce { .. } | Action::Drop | Action::MoveToJunk
        )
    }
}

/// Who an action covers: named recipients, or every recipient no other entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Recipients(Vec<String>),
    All,
    /// Everyone but these listed recipients, including recipients the event does not
    /// list (a `truncated` event): what a recipient condition selects when WorkMail cut
    /// the list and the recipients left out may match it. The listed recipients named
    /// here keep what they had.
    AllExcept(Vec<String>),
}

/// The actions decided so far, in the order stages set them. A later decision for a
/// recipient replaces an earlier one; recipients given the same action share one entry,
/// so the response stays within WorkMail's limit on distinct actions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    entries: Vec<(Action, Scope)>,
}

impl Actions {
    pub fn set(&mut self, action: Action, scope: Scope) {
        match &scope {
            Scope::All => self.entries.clear(),
            Scope::AllExcept(except) => {
                let excepted = folded(except);
                let named = self.named();
                let before = self.catch_all();
                // The excepted recipients the catch-all covered keep its action by name.
                let keep: Vec<String> = except
                    .iter()
                    .filter(|r| !named.contains(&r.to_ascii_lowercase()))
                    .cloned()
                    .collect();
                for (_, s) in &mut self.entries {
                    if let Scope::Recipients(rs) = s {
                        rs.retain(|r| excepted.contains(&r.to_ascii_lowercase()));
                    }
                }
                self.entries
                    .retain(|(_, s)| matches!(s, Scope::Recipients(r) if !r.is_empty()));
                if before != action && !keep.is_empty() {
                    self.set(before, Scope::Recipients(keep));
                }
                self.entries.push((action, Scope::All));
                return;
            }
            Scope::Recipients(rs) if rs.is_empty() => return,
            Scope::Recipients(rs) => {
                let new = folded(rs);
                for (_, s) in &mut self.entries {
                    if let Scope::Recipients(existing) = s {
                        existing.retain(|e| !new.contains(&e.to_ascii_lowercase()));
                    }
                }
                self.entries
                    .retain(|(_, s)| !matches!(s, Scope::Recipients(r) if r.is_empty()));
                let same = self.entries.iter_mut().find_map(|(a, s)| match s {
                    Scope::Recipients(existing) if *a == action => Some(existing),
                    _ => None,
                });
                if let Some(existing) = same {
                    let mut have = folded(existing);
                    for r in rs {
                        if have.insert(r.to_ascii_lowercase()) {
                            existing.push(r.clone());
                        }
                    }
                    return;
                }
            }
        }
        self.entries.push((action, scope));
    }

    /// Why WorkMail would refuse the response these actions make, if it would: more
    /// than [`MAX_ACTIONS`] actions, or more than [`MAX_OUTBOUND_RECIPIENTS`] named
    /// recipients on outbound mail. A refused response is retried and then replaced by
    /// the rule's fallback action for everyone, so a stage should not make one.
    pub fn limit_problem(&self, direction: Direction) -> Option<String> {
        let actions = self.to_response().actions.len();
        if actions > MAX_ACTIONS {
            return Some(format!(
                "the response would hold {actions} actions; WorkMail accepts at most {MAX_ACTIONS}"
            ));
        }
        let named: usize = self
            .entries
            .iter()
            .map(|(_, s)| match s {
                Scope::Recipients(r) => r.len(),
                _ => 0,
            })
            .sum();
        if direction == Direction::Outbound && named > MAX_OUTBOUND_RECIPIENTS {
            return Some(format!(
                "the response would name {named} recipients; WorkMail accepts at most {MAX_OUTBOUND_RECIPIENTS} on outbound mail"
            ));
        }
        None
    }

    pub fn entries(&self) -> &[(Action, Scope)] {
        &self.entries
    }

    /// The action that applies to `recipient`: its named entry's, else the catch-all.
    pub fn for_recipient(&self, recipient: &str) -> Action {
        self.entries
            .iter()
            .find(|(_, s)| {
                matches!(s, Scope::Recipients(rs) if rs.iter().any(|r| r.eq_ignore_ascii_case(recipient)))
            })
            .map_or_else(|| self.catch_all(), |(a, _)| a.clone())
    }

    /// Every recipient an entry names, in lower case.
    fn named(&self) -> HashSet<String> {
        self.entries
            .iter()
            .flat_map(|(_, s)| match s {
                Scope::Recipients(r) => r.as_slice(),
                _ => &[],
            })
            .map(|r| r.to_ascii_lowercase())
            .collect()
    }

    /// The action of every recipient no entry names (DEFAULT unless a stage chose).
    pub fn catch_all(&self) -> Action {
        self.entries
            .iter()
            .rev()
            .find(|(_, s)| matches!(s, Scope::All))
            .map_or(Action::Default, |(a, _)| a.clone())
    }

    /// The same decisions in a response WorkMail accepts, and what had to give, in words
    /// (empty when nothing did). In order:
    /// 1. Named DEFAULT entries when the catch-all is DEFAULT say nothing: dropped.
    /// 2. Past [`MAX_ACTIONS`], named bounces with different texts become one bounce
    ///    with [`MERGED_BOUNCE_MESSAGE`]: every recipient keeps its action, some lose
    ///    their text.
    /// 3. Past [`MAX_OUTBOUND_RECIPIENTS`] named on outbound mail, or past
    ///    [`MAX_RESPONSE_BYTES`], the largest named group becomes the catch-all and the
    ///    recipients the catch-all covered are named instead. On a `truncated` event this
    ///    is done only when that group's action is at least as restrictive as the old
    ///    catch-all, since recipients the event leaves out take the new one.
    /// 4. If the response still does not fit, every recipient is bounced, with a text
    ///    saying why: over-applying a bounce tells the sender, where over-applying DEFAULT
    ///    would let through mail a policy stops, or a DROP would lose it silently.
    pub fn fit(&self, envelope: &crate::envelope::Envelope) -> (Actions, Vec<String>) {
        let mut fitted = self.clone();
        let mut notes = Vec::new();
        if fitted.catch_all() == Action::Default {
            fitted
                .entries
                .retain(|(a, s)| !(*a == Action::Default && matches!(s, Scope::Recipients(_))));
        }
        if fitted.to_response().actions.len() > MAX_ACTIONS {
            let texts = fitted.merge_named_bounces();
            notes.push(format!(
                "{texts} bounce texts merged into one ({MERGED_BOUNCE_MESSAGE:?}) to stay within {MAX_ACTIONS} actions"
            ));
        }
        if fitted.fits(envelope.direction).is_none() {
            return (fitted, notes);
        }
        if let Some(flipped) = fitted.flipped(envelope) {
            let why = fitted.fits(envelope.direction).unwrap_or_default();
            if flipped.fits(envelope.direction).is_none() {
                notes.push(format!(
                    "{why}: the largest group's action became the catch-all and the rest are named instead"
                ));
                return (flipped, notes);
            }
        }
        let why = fitted.fits(envelope.direction).unwrap_or_default();
        let mut all = Actions::default();
        all.set(
            Action::Bounce {
                message: format!(
                    "The message has more recipients than the mail policy can decide for one by one ({}); send it to fewer recipients at a time",
                    envelope.recipients.len()
                ),
            },
            Scope::All,
        );
        notes.push(format!(
            "{why}, and naming the others instead does not fit either: bounced for everyone"
        ));
        (all, notes)
    }

    /// Why WorkMail would refuse the response, or `None` when it fits.
    fn fits(&self, direction: crate::envelope::Direction) -> Option<String> {
        if let Some(p) = self.limit_problem(direction) {
            return Some(p);
        }
        let bytes = serde_json::to_vec(&self.to_response()).map_or(0, |v| v.len());
        (bytes > MAX_RESPONSE_BYTES).then(|| {
            format!(
                "the response would be {bytes} bytes; WorkMail accepts at most {MAX_RESPONSE_BYTES}"
            )
        })
    }

    /// Merges every named bounce into one with [`MERGED_BOUNCE_MESSAGE`]; returns how many
    /// texts there were.
    fn merge_named_bounces(&mut self) -> usize {
        let mut merged = Vec::new();
        let mut texts = 0;
        self.entries.retain(|(a, s)| match (a, s) {
            (Action::Bounce { .. }, Scope::Recipients(r)) => {
                texts += 1;
                merged.extend(r.iter().cloned());
                false
            }
            _ => true,
        });
        let message = MERGED_BOUNCE_MESSAGE.to_string();
        if !merged.is_empty() {
            self.set(Action::Bounce { message }, Scope::Recipients(merged));
        }
        texts
    }

    /// The same decisions with the largest named group as the catch-all and the
    /// recipients the old catch-all covered named (see [`Actions::fit`]); `None` when
    /// there is no named group, or the event is truncated and the group's action is less
    /// restrictive than the catch-all's.
    fn flipped(&self, envelope: &crate::envelope::Envelope) -> Option<Actions> {
        let (action, group) = self
            .entries
            .iter()
            .filter_map(|(a, s)| match s {
                Scope::Recipients(r) => Some((a, r)),
                _ => None,
            })
            .max_by_key(|(_, r)| r.len())?;
        let before = self.catch_all();
        if envelope.truncated && before.is_restrictive() && !action.is_restrictive() {
            return None;
        }
        let named = self.named();
        let rest: Vec<String> = envelope
            .recipients
            .iter()
            .filter(|r| !named.contains(&r.to_ascii_lowercase()))
            .cloned()
            .collect();
        let mut flipped = Actions::default();
        let group = group.clone();
        flipped.set(action.clone(), Scope::All);
        for (a, s) in &self.entries {
            if let Scope::Recipients(r) = s
                && *r != group
            {
                flipped.set(a.clone(), Scope::Recipients(r.clone()));
            }
        }
        if before != *action {
            flipped.set(before, Scope::Recipients(rest));
        }
        Some(flipped)
    }

    /// The response in words for a report, counting recipients instead of naming them:
    /// `BOUNCE for 2 recipient(s), DEFAULT for the rest`.
    pub fn describe(&self) -> String {
        let response = self.to_response();
        response
            .actions
            .iter()
            .map(|a| match &a.recipients {
                Some(r) => format!("{} for {} recipient(s)", a.action.kind, r.len()),
                None if response.actions.len() == 1 => format!("{} for all", a.action.kind),
                None => format!("{} for the rest", a.action.kind),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The response WorkMail reads: specific recipients first, then one entry for all
    /// others (DEFAULT unless a stage chose otherwise).
    pub fn to_response(&self) -> Response {
        let mut actions = Vec::new();
        let mut all = Action::Default;
        for (action, scope) in &self.entries {
            match scope {
                Scope::Recipients(r) => actions.push(ResponseAction {
                    action: ResponseActionBody::from(action),
                    recipients: Some(r.clone()),
                    all_recipients: None,
                }),
                // `set` turns AllExcept into named entries and a catch-all.
                Scope::All | Scope::AllExcept(_) => all = action.clone(),
            }
        }
        actions.push(ResponseAction {
            action: ResponseActionBody::from(&all),
            recipients: None,
            all_recipients: Some(true),
        });
        Response { actions }
    }
}

/// `{"actions":[...]}` as WORKMAIL.md describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Response {
    pub actions: Vec<ResponseAction>,
}

impl Response {
    /// Deliver as it is to everyone.
    pub fn default_for_all() -> Response {
        Actions::default().to_response()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseAction {
    pub action: ResponseActionBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_recipients: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseActionBody {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BounceParameters>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BounceParameters {
    pub bounce_message: String,
}

impl From<&Action> for ResponseActionBody {
    fn from(a: &Action) -> ResponseActionBody {
        ResponseActionBody {
            kind: a.type_name().to_string(),
            parameters: match a {
                Action::Bounce { message } => Some(BounceParameters {
                    bounce_message: message.clone(),
                }),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_response_uses_a_real_boolean() {
        let json = serde_json::to_string(&Response::default_for_all()).unwrap();
        assert_eq!(
            json,
            r#"{"actions":[{"action":{"type":"DEFAULT"},"allRecipients":true}]}"#
        );
    }

    #[test]
    fn recipient_actions_come_before_the_catch_all() {
        let mut a = Actions::default();
        a.set(
            Action::Bounce {
                message: "Blocked by policy".into(),
            },
            Scope::Recipients(vec!["x@corp.example".into()]),
        );
        let json = serde_json::to_string(&a.to_response()).unwrap();
        assert_eq!(
            json,
            r#"{"actions":[{"action":{"type":"BOUNCE","parameters":{"bounceMessage":"Blocked by policy"}},"recipients":["x@corp.example"]},{"action":{"type":"DEFAULT"},"allRecipients":true}]}"#
        );
    }

    #[test]
    fn recipients_given_the_same_action_share_one_entry() {
        let mut a = Actions::default();
        a.set(Action::Drop, Scope::Recipients(vec!["x@c.example".into()]));
        a.set(
            Action::MoveToJunk,
            Scope::Recipients(vec!["z@c.example".into()]),
        );
        a.set(Action::Drop, Scope::Recipients(vec!["y@c.example".into()]));
        assert_eq!(
            a.entries(),
            [
                (
                    Action::Drop,
                    Scope::Recipients(vec!["x@c.example".into(), "y@c.example".into()])
                ),
                (
                    Action::MoveToJunk,
                    Scope::Recipients(vec!["z@c.example".into()])
                ),
            ]
        );
    }

    #[test]
    fn describe_counts_recipients_without_naming_them() {
        let mut a = Actions::default();
        assert_eq!(a.describe(), "DEFAULT for all");
        a.set(
            Action::Drop,
            Scope::Recipients(vec!["x@c.example".into(), "y@c.example".into()]),
        );
        assert_eq!(
            a.describe(),
            "DROP for 2 recipient(s), DEFAULT for the rest"
        );
    }

    #[test]
    fn limits_count_actions_and_outbound_named_recipients() {
        let mut a = Actions::default();
        for i in 0..9 {
            a.set(
                Action::Bounce {
                    message: format!("m{i}"),
                },
                Scope::Recipients(vec![format!("r{i}@x.example")]),
            );
        }
        assert_eq!(
            a.limit_problem(Direction::Inbound),
            None,
            "9 + catch-all = 10"
        );
        a.set(Action::Drop, Scope::Recipients(vec!["r9@x.example".into()]));
        assert!(
            a.limit_problem(Direction::Inbound)
                .unwrap()
                .contains("11 actions")
        );

        let mut b = Actions::default();
        let many: Vec<String> = (0..501).map(|i| format!("r{i}@x.example")).collect();
        b.set(Action::Drop, Scope::Recipients(many));
        assert_eq!(b.limit_problem(Direction::Inbound), None);
        assert!(
            b.limit_problem(Direction::Outbound)
                .unwrap()
                .contains("501 recipients")
        );
    }

    #[test]
    fn a_later_decision_for_a_recipient_replaces_the_earlier() {
        let mut a = Actions::default();
        a.set(Action::Drop, Scope::Recipients(vec!["x@c.example".into()]));
        a.set(
            Action::MoveToJunk,
            Scope::Recipients(vec!["X@c.example".into()]),
        );
        assert_eq!(a.entries().len(), 1);
        assert_eq!(a.entries()[0].0, Action::MoveToJunk);
    }
}
