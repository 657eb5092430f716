//! `verdict`: decides how WorkMail delivers the message, never what it contains.
//!
//! Keys: `action` = `bounce` | `drop` | `move_to_junk` | `bypass_spam_check` |
//! `default` (required); `message`, the bounce text, a one-line template with
//! `{{ sender }}`, `{{ recipients }}`, `{{ subject }}`, `{{ direction }}` and
//! `{{ date }}` (only with `bounce`; default "Message blocked by policy"); `stop` = false
//! (true: the stages after this one do not run once its conditions hold).
//!
//! Who: the recipients the stage's conditions selected (`when.recipient` matches, minus
//! `unless.recipient` matches), or every recipient when it has no recipient condition.
//! A later verdict for a recipient replaces an earlier one, so an allow-list is a
//! `default` verdict placed after the rule it exempts from (or before it, with `stop`).
//!
//! Limits, decided here so the response WorkMail reads is always valid:
//! - `move_to_junk` and `bypass_spam_check` exist only for inbound mail. On outbound
//!   mail the verdict degrades to DEFAULT: it decides nothing, so the recipients keep
//!   DEFAULT (or what an earlier verdict gave them; a misplaced junk rule must not undo
//!   a bounce), and the report carries a warning.
//! - WorkMail refuses a response with more than 10 actions or, outbound, more than 500
//!   named recipients, then retries and finally applies the rule's fallback to everyone.
//!   A verdict that would cross a limit is not applied and the report says why; the
//!   decisions already made stand.
//! - The bounce text is one line (control characters in inserted values become spaces)
//!   of at most 1,000 characters; a text that renders empty becomes the default.

use crate::actions::{Action, Scope};
use crate::conditions::header_values;
use crate::event::Direction;
use crate::mime_tree::MimeTree;
use crate::stage::{KeyError, Stage, StageContext, StageKeys, StageReport};
use crate::template::{Escape, Template};
use std::collections::BTreeMap;

/// The placeholders a bounce message may use.
pub const PLACEHOLDERS: &[&str] = &["sender", "recipients", "subject", "direction", "date"];

/// The bounce text when the config gives none (or it renders empty).
pub const DEFAULT_BOUNCE_MESSAGE: &str = "Message blocked by policy";

/// The longest bounce text sent, in characters.
pub const MAX_BOUNCE_CHARS: usize = 1000;

/// What the verdict decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bounce,
    Drop,
    MoveToJunk,
    BypassSpamCheck,
    Default,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "bounce" => Kind::Bounce,
            "drop" => Kind::Drop,
            "move_to_junk" => Kind::MoveToJunk,
            "bypass_spam_check" => Kind::BypassSpamCheck,
            "default" => Kind::Default,
            _ => return None,
        })
    }

    fn config_name(self) -> &'static str {
        match self {
            Kind::Bounce => "bounce",
            Kind::Drop => "drop",
            Kind::MoveToJunk => "move_to_junk",
            Kind::BypassSpamCheck => "bypass_spam_check",
            Kind::Default => "default",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Verdict {
    kind: Kind,
    message: Option<Template>,
    stop: bool,
}

impl Verdict {
    /// Checks the keys as the config loader does: `message` only with bounce, one line,
    /// not empty, known placeholders only.
    pub fn new(kind: Kind, message: Option<&str>, stop: bool) -> Result<Verdict, KeyError> {
        let message = match message {
            None => None,
            Some(_) if kind != Kind::Bounce => {
                return Err(KeyError::new(
                    "message",
                    format!(
                        "only action = \"bounce\" sends a message; {} sends none, so remove the key",
                        kind.config_name()
                    ),
                ));
            }
            Some(text) => Some(check_message(text)?),
        };
        Ok(Verdict {
            kind,
            message,
            stop,
        })
    }

    /// The action for this message, with the bounce text rendered.
    fn action(&self, mail: &MimeTree<'_>, cx: &StageContext<'_>) -> Action {
        match self.kind {
            Kind::Bounce => Action::Bounce {
                message: self.bounce_message(mail, cx),
            },
            Kind::Drop => Action::Drop,
            Kind::MoveToJunk => Action::MoveToJunk,
            Kind::BypassSpamCheck => Action::BypassSpamCheck,
            Kind::Default => Action::Default,
        }
    }

    fn bounce_message(&self, mail: &MimeTree<'_>, cx: &StageContext<'_>) -> String {
        render_bounce(self.message.as_ref(), DEFAULT_BOUNCE_MESSAGE, mail, cx)
    }
}

/// A bounce text from its template (the default when there is none or it renders
/// empty), on one line, with the placeholders of [`PLACEHOLDERS`].
pub(crate) fn render_bounce(
    template: Option<&Template>,
    default: &str,
    mail: &MimeTree<'_>,
    cx: &StageContext<'_>,
) -> String {
    let Some(template) = template else {
        return default.to_string();
    };
    let env = cx.envelope;
    let recipients = match &cx.scope {
        Scope::All => env.recipients.join(", "),
        Scope::Recipients(r) => r.join(", "),
    };
    let subject = header_values(mail, &cx.edits, "Subject")
        .into_iter()
        .next()
        .or_else(|| env.subject.clone())
        .unwrap_or_default();
    let values = BTreeMap::from([
        ("sender", env.mail_from.clone().unwrap_or_default()),
        ("recipients", recipients),
        ("subject", subject),
        ("direction", env.direction.as_str().to_string()),
        (
            "date",
            mail.field_value(0, "Date").unwrap_or_default().to_string(),
        ),
    ]);
    let rendered = one_line(&template.render(&values, Escape::None));
    if rendered.is_empty() {
        default.to_string()
    } else {
        rendered
    }
}

/// Parses a bounce template and refuses what could never be a good bounce line.
fn check_message(text: &str) -> Result<Template, KeyError> {
    parse_bounce_template("message", text)
}

/// [`check_message`] for any key that holds a bounce text.
pub(crate) fn parse_bounce_template(key: &str, text: &str) -> Result<Template, KeyError> {
    let err = |p: String| KeyError::new(key, p);
    if text.trim().is_empty() {
        return Err(err(
            "is empty; leave the key out for the default text".into()
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(err(format!(
            "must be one line of text, found control character {c:?}"
        )));
    }
    if text.chars().count() > MAX_BOUNCE_CHARS {
        return Err(err(format!("is longer than {MAX_BOUNCE_CHARS} characters")));
    }
    Template::parse(text, PLACEHOLDERS).map_err(|e| err(e.to_string()))
}

/// Control characters (CR and LF included) from inserted values become spaces, runs of
/// spaces one, and the text is cut to [`MAX_BOUNCE_CHARS`].
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_BOUNCE_CHARS * 4));
    let mut count = 0;
    let mut last_space = true;
    for c in s.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        if count == MAX_BOUNCE_CHARS {
            out.pop();
            out.push('…');
            break;
        }
        last_space = c == ' ';
        out.push(c);
        count += 1;
    }
    out.trim_end().to_string()
}

/// Builds the stage from config keys.
pub fn build(keys: &mut StageKeys) -> Result<Box<dyn Stage>, KeyError> {
    let action = keys.string("action")?;
    let kind = Kind::parse(&action).ok_or_else(|| {
        KeyError::new(
            "action",
            format!(
                "{action:?} is not one of bounce, drop, move_to_junk, bypass_spam_check, default"
            ),
        )
    })?;
    let message = keys.opt_string("message")?;
    let stop = keys.bool_or("stop", false)?;
    Ok(Box::new(Verdict::new(kind, message.as_deref(), stop)?))
}

impl Stage for Verdict {
    /// A verdict decides delivery; it never changes the message.
    fn changes_message(&self) -> bool {
        false
    }

    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        let env = cx.envelope;
        let who = match &cx.scope {
            Scope::All => "all recipients".to_string(),
            Scope::Recipients(r) => {
                format!("{} of {} recipient(s)", r.len(), env.recipients.len())
            }
        };
        let action = self.action(mail, cx);
        let mut report = StageReport::default();
        if env.direction == Direction::Outbound && !action.allowed_outbound() {
            report.note(
                format!(
                    "warning: {} applies only to inbound mail; on this outbound message it degrades to DEFAULT, so {who} keep DEFAULT or an earlier verdict",
                    action.type_name()
                ),
                false,
            );
        } else {
            let mut next = cx.actions.clone();
            next.set(action.clone(), cx.scope.clone());
            match next.limit_problem(env.direction) {
                Some(problem) => report.note(
                    format!(
                        "warning: {} for {who} not applied: {problem}",
                        action.type_name()
                    ),
                    false,
                ),
                None => {
                    cx.actions = next;
                    report.note(format!("{} for {who}", action.type_name()), false);
                }
            }
        }
        if self.stop {
            cx.stop = true;
            report.note("stop: the stages after this one do not run", false);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Actions;
    use crate::testing;

    const MSG: &[u8] = b"From: a@partner.example\r\nTo: b@corp.example\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nDate: Mon, 2 Nov 2026 09:14:00 +0000\r\n\r\nbody\r\n";

    fn verdict(kind: Kind, message: Option<&str>) -> Verdict {
        Verdict::new(kind, message, false).unwrap()
    }

    fn single(actions: &Actions) -> (Action, Scope) {
        assert_eq!(actions.entries().len(), 1, "{actions:?}");
        actions.entries()[0].clone()
    }

    #[test]
    fn bounce_renders_the_template_and_never_changes_the_bytes() {
        let v = verdict(
            Kind::Bounce,
            Some(
                "Refused {{ direction }} mail from {{ sender }} to {{ recipients }}: {{ subject }} ({{ date }})",
            ),
        );
        let env = testing::inbound("a@partner.example", &["b@corp.example", "c@corp.example"]);
        let run = testing::run(&v, MSG, &env);
        assert_eq!(run.output, MSG);
        assert!(!run.report().changed);
        assert_eq!(
            single(&run.actions),
            (
                Action::Bounce {
                    message: "Refused inbound mail from a@partner.example to b@corp.example, c@corp.example: Grüße (Mon, 2 Nov 2026 09:14:00 +0000)".into()
                },
                Scope::All
            )
        );
        assert_eq!(run.report().summary(), "BOUNCE for all recipients");
    }

    #[test]
    fn bounce_without_message_uses_the_default_text() {
        let run = testing::run(
            &verdict(Kind::Bounce, None),
            MSG,
            &testing::inbound("a@x.example", &["b@y.example"]),
        );
        assert_eq!(
            single(&run.actions).0,
            Action::Bounce {
                message: DEFAULT_BOUNCE_MESSAGE.into()
            }
        );
    }

    #[test]
    fn inserted_line_breaks_become_spaces_and_an_empty_rendering_falls_back() {
        assert_eq!(one_line("a\r\n b\tc  "), "a b c");
        let long = "x".repeat(MAX_BOUNCE_CHARS + 10);
        let cut = one_line(&long);
        assert_eq!(cut.chars().count(), MAX_BOUNCE_CHARS);
        assert!(cut.ends_with('…'));
        let v = verdict(Kind::Bounce, Some("{{ subject }}"));
        let run = testing::run(
            &v,
            b"From: a@x\r\n\r\nno subject\r\n",
            &testing::inbound("a@x.example", &["b@y.example"]),
        );
        assert_eq!(
            single(&run.actions).0,
            Action::Bounce {
                message: DEFAULT_BOUNCE_MESSAGE.into()
            }
        );
    }

    #[test]
    fn an_inbound_only_action_on_outbound_mail_decides_nothing_and_warns() {
        for kind in [Kind::MoveToJunk, Kind::BypassSpamCheck] {
            let run = testing::run(
                &verdict(kind, None),
                MSG,
                &testing::outbound("a@corp.example", &["b@partner.example"]),
            );
            assert!(run.actions.entries().is_empty(), "{kind:?}");
            assert!(
                run.report().summary().starts_with("warning: "),
                "{}",
                run.report().summary()
            );
            assert!(run.report().summary().contains("degrades to DEFAULT"));
        }
    }

    #[test]
    fn the_scope_from_conditions_limits_who_gets_the_action() {
        let env = testing::inbound("a@x.example", &["b@corp.example", "c@other.example"]);
        let tree = MimeTree::parse(MSG).unwrap();
        let mut cx = StageContext::new(&env);
        cx.scope = Scope::Recipients(vec!["b@corp.example".into()]);
        let r = verdict(Kind::Drop, None).run(&tree, &mut cx);
        assert_eq!(
            single(&cx.actions),
            (
                Action::Drop,
                Scope::Recipients(vec!["b@corp.example".into()])
            )
        );
        assert_eq!(r.summary(), "DROP for 1 of 2 recipient(s)");
    }

    #[test]
    fn a_verdict_past_the_outbound_recipient_limit_is_not_applied() {
        let many: Vec<String> = (0..501).map(|i| format!("r{i}@x.example")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let env = testing::outbound("a@corp.example", &refs);
        let tree = MimeTree::parse(MSG).unwrap();
        let mut cx = StageContext::new(&env);
        cx.scope = Scope::Recipients(many.clone());
        let r = verdict(Kind::Drop, None).run(&tree, &mut cx);
        assert!(cx.actions.entries().is_empty());
        assert!(r.summary().contains("not applied"), "{}", r.summary());
    }

    #[test]
    fn stop_sets_the_context_flag() {
        let v = Verdict::new(Kind::Default, None, true).unwrap();
        let run = testing::run(&v, MSG, &testing::inbound("a@x.example", &[]));
        assert!(run.stopped);
        assert!(run.report().summary().contains("stop"));
    }

    #[test]
    fn config_errors_name_the_key() {
        let key = |toml: &str| testing::build_stage(build, toml).err().unwrap().key;
        assert_eq!(key(""), "action");
        assert_eq!(key("action = \"reject\""), "action");
        assert_eq!(key("action = \"drop\"\nmessage = \"no\""), "message");
        assert_eq!(key("action = \"bounce\"\nmessage = \"  \""), "message");
        assert_eq!(key("action = \"bounce\"\nmessage = \"a\\nb\""), "message");
        assert_eq!(
            key("action = \"bounce\"\nmessage = \"{{ sendr }}\""),
            "message"
        );
        assert_eq!(key("action = \"bounce\"\nstop = \"yes\""), "stop");
        assert_eq!(key("action = \"bounce\"\nstopp = true"), "stopp");
        assert!(testing::build_stage(build, "action = \"bypass_spam_check\"\nstop = true").is_ok());
    }
}
