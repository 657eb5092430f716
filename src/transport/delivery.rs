//! What each envelope recipient gets from a run's delivery actions, in the terms a mail
//! server acts on: deliver, deliver as junk, drop silently, or bounce with a text.

use crate::actions::{Action, Actions};

/// Every recipient of a message sorted by what it gets, in envelope order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryPlan {
    /// DEFAULT and BYPASS_SPAM_CHECK: delivered as the flow left the message.
    pub deliver: Vec<String>,
    /// MOVE_TO_JUNK: delivered with the junk header (or quarantined, milter option).
    pub junk: Vec<String>,
    /// DROP: not delivered, and nobody is told.
    pub dropped: Vec<String>,
    /// BOUNCE: not delivered; the sender is told why (the text).
    pub bounced: Vec<(String, String)>,
}

impl DeliveryPlan {
    /// What `actions` give each of `recipients`.
    pub fn new(actions: &Actions, recipients: &[String]) -> DeliveryPlan {
        let mut plan = DeliveryPlan::default();
        for r in recipients {
            match actions.for_recipient(r) {
                Action::Default | Action::BypassSpamCheck => plan.deliver.push(r.clone()),
                Action::MoveToJunk => plan.junk.push(r.clone()),
                Action::Drop => plan.dropped.push(r.clone()),
                Action::Bounce { message } => plan.bounced.push((r.clone(), message)),
            }
        }
        plan
    }

    /// Every recipient bounced: the transaction is refused with the first bounce text.
    pub fn all_bounced(&self) -> Option<&str> {
        (self.deliver.is_empty() && self.junk.is_empty() && self.dropped.is_empty())
            .then(|| self.bounced.first().map(|(_, text)| text.as_str()))
            .flatten()
    }

    /// Nobody gets the message and nobody is told: every recipient dropped (or dropped
    /// and bounced ones that are told by a notification).
    pub fn nothing_to_deliver(&self) -> bool {
        self.deliver.is_empty() && self.junk.is_empty()
    }

    /// One line for the logs: how many recipients got what.
    pub fn summary(&self) -> String {
        format!(
            "deliver {}, junk {}, drop {}, bounce {}",
            self.deliver.len(),
            self.junk.len(),
            self.dropped.len(),
            self.bounced.len()
        )
    }
}

/// `text` as the text of an SMTP reply line: printable ASCII only (RFC 5321 4.2), at most
/// 400 characters, so a bounce text from a config cannot break the reply or inject a
/// line.
pub fn reply_text(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { ' ' })
        .take(400)
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        "Message rejected by policy".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Scope;

    fn rcpts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_recipient_gets_its_own_action_and_the_rest_the_catch_all() {
        let mut a = Actions::default();
        a.set(Action::MoveToJunk, Scope::All);
        a.set(
            Action::Bounce {
                message: "no".into(),
            },
            Scope::Recipients(rcpts(&["B@x"])),
        );
        a.set(Action::Drop, Scope::Recipients(rcpts(&["c@x"])));
        let plan = DeliveryPlan::new(&a, &rcpts(&["a@x", "b@x", "c@x"]));
        assert_eq!(plan.junk, rcpts(&["a@x"]));
        assert_eq!(plan.bounced, vec![("b@x".to_string(), "no".to_string())]);
        assert_eq!(plan.dropped, rcpts(&["c@x"]));
        assert_eq!(plan.all_bounced(), None);
    }

    #[test]
    fn all_bounced_only_when_no_recipient_gets_anything_else() {
        let mut a = Actions::default();
        a.set(
            Action::Bounce {
                message: "closed".into(),
            },
            Scope::All,
        );
        assert_eq!(
            DeliveryPlan::new(&a, &rcpts(&["a@x", "b@x"])).all_bounced(),
            Some("closed")
        );
        assert_eq!(
            DeliveryPlan::new(&Actions::default(), &rcpts(&["a@x"])).all_bounced(),
            None
        );
    }

    #[test]
    fn reply_texts_cannot_break_the_reply_line() {
        assert_eq!(reply_text("bad\r\n250 ok"), "bad  250 ok");
        assert_eq!(reply_text("caf\u{e9}"), "caf");
        assert_eq!(reply_text("  "), "Message rejected by policy");
        assert_eq!(reply_text(&"x".repeat(1000)).len(), 400);
    }
}
