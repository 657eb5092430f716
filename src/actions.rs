//! The synchronous response WorkMail reads: which delivery action applies to whom.

use serde::Serialize;

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
/// recipient replaces an earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    entries: Vec<(Action, Scope)>,
}

impl Actions {
    pub fn set(&mut self, action: Action, scope: Scope) {
        match &scope {
            Scope::All => self.entries.clear(),
            Scope::Recipients(rs) => {
                for (_, s) in &mut self.entries {
                    if let Scope::Recipients(existing) = s {
                        existing.retain(|e| !rs.iter().any(|r| r.eq_ignore_ascii_case(e)));
                    }
                }
                self.entries
                    .retain(|(_, s)| !matches!(s, Scope::Recipients(r) if r.is_empty()));
            }
        }
        self.entries.push((action, scope));
    }

    pub fn entries(&self) -> &[(Action, Scope)] {
        &self.entries
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
