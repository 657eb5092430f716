//! The synchronous response WorkMail reads: which delivery action applies to whom.

use crate::event::Direction;
use serde::Serialize;

/// WorkMail refuses a response with more actions than this (the catch-all included).
pub const MAX_ACTIONS: usize = 10;
/// WorkMail refuses an outbound response naming more recipients than this.
pub const MAX_OUTBOUND_RECIPIENTS: usize = 500;

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
}

/// Who an action covers: named recipients, or every recipient no other entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Recipients(Vec<String>),
    All,
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
            Scope::Recipients(rs) if rs.is_empty() => return,
            Scope::Recipients(rs) => {
                for (_, s) in &mut self.entries {
                    if let Scope::Recipients(existing) = s {
                        existing.retain(|e| !rs.iter().any(|r| r.eq_ignore_ascii_case(e)));
                    }
                }
                self.entries
                    .retain(|(_, s)| !matches!(s, Scope::Recipients(r) if r.is_empty()));
                let same = self.entries.iter_mut().find_map(|(a, s)| match s {
                    Scope::Recipients(existing) if *a == action => Some(existing),
                    _ => None,
                });
                if let Some(existing) = same {
                    for r in rs {
                        if !existing.iter().any(|e| e.eq_ignore_ascii_case(r)) {
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
                Scope::All => 0,
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
                Scope::All => all = action.clone(),
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
