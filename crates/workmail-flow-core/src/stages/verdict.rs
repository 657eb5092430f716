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
//! - WorkMail refuses a response with more than 10 actions, over 256 KB or, outbound,
//!   naming more than 500 recipients, then retries and finally applies the rule's
//!   fallback to everyone. Every verdict is applied; the pipeline then fits the response
//!   to those limits ([`crate::stage::actions::Actions::fit`]: bounce texts merge, the larger
//!   side becomes the catch-all, and as a last resort everyone is bounced with a text
//!   saying why) and the report says what had to give.
//! - On a `truncated` event (WorkMail cut the recipient list) a restrictive verdict whose
//!   recipient condition may hold for recipients left out also takes the catch-all; see
//!   [`crate::stage::conditions`].
//! - The bounce text is one line (control characters in inserted values become spaces)
//!   of at most 1,000 characters; a text that renders empty becomes the default.

use crate::config::{KeyError, StageKeys};
use crate::envelope::Direction;
use crate::message::mime_tree::MimeTree;
use crate::stage::actions::{Action, Scope};
use crate::stage::conditions::header_values;
use crate::stage::template::{Escape, Template};
use crate::stage::{Stage, StageContext, StageReport};
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
        Scope::AllExcept(ex) => env
            .recipients
            .iter()
            .filter(|r| !ex.contains(r))
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
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
    let sender = crate::envelope::directory::sender_person(env, mail.from_address());
    let rendered = one_line(&template.render_for(&values, sender, Escape::None));
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

    fn directory_needs(&self) -> crate::envelope::DirectoryNeeds {
        crate::envelope::DirectoryNeeds {
            sender: self.message.as_ref().is_some_and(Template::uses_directory),
            recipients: false,
        }
    }

    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        let env = cx.envelope;
        let action = self.action(mail, cx);
        let mut report = StageReport::default();
        // On a truncated event a recipient condition may hold for recipients the event
        // leaves out, which only the catch-all reaches. A restrictive verdict takes
        // them too (a sender cannot dodge it by padding the recipient list); a verdict
        // that lets mail through stays with the listed recipients it selected.
        let mut scope = cx.scope.clone();
        if let Scope::AllExcept(except) = &scope
            && !action.is_restrictive()
        {
            let listed: Vec<String> = env
                .recipients
                .iter()
                .filter(|r| !except.contains(r))
                .cloned()
                .collect();
            if listed.is_empty() {
                report.note(
                    format!(
                        "{} not applied: the event is truncated and lists none of the recipients the conditions select",
                        action.type_name()
                    ),
                    false,
                );
                return self.stopping(cx, report);
            }
            scope = Scope::Recipients(listed);
        }
        let who = match &scope {
            Scope::All => "all recipients".to_string(),
            Scope::Recipients(r) => {
                format!("{} of {} recipient(s)", r.len(), env.recipients.len())
            }
            Scope::AllExcept(ex) => format!(
                "all recipients but {} of the {} listed (the event is truncated, so recipients it leaves out are included)",
                ex.len(),
                env.recipients.len()
            ),
        };
        if env.direction == Direction::Outbound && !action.allowed_outbound() {
            report.note(
                format!(
                    "warning: {} applies only to inbound mail; on this outbound message it degrades to DEFAULT, so {who} keep DEFAULT or an earlier verdict",
                    action.type_name()
                ),
                false,
            );
        } else {
            cx.actions.set(action.clone(), scope);
            report.note(format!("{} for {who}", action.type_name()), false);
        }
        self.stopping(cx, report)
    }
}

impl Verdict {
    /// Applies `stop` and returns the report.
    fn stopping(&self, cx: &mut StageContext<'_>, mut report: StageReport) -> StageReport {
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
    use crate::stage::actions::Actions;
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

    fn pipeline(text: &str) -> crate::flow::pipeline::Pipeline {
        testing::config(text, &crate::stage::StageRegistry::builtin()).unwrap()
    }

    fn addresses(n: usize, domain: &str) -> Vec<String> {
        (0..n).map(|i| format!("r{i}@{domain}")).collect()
    }

    #[test]
    fn an_outbound_verdict_for_more_than_500_recipients_names_the_others_instead() {
        let mut all = addresses(550, "x.example");
        all.extend(addresses(50, "corp.example"));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let env = testing::outbound("a@corp.example", &refs);
        let p = pipeline(
            "[[stage]]\ntype = \"verdict\"\naction = \"drop\"\nwhen = { recipient = \"*@x.example\" }\n",
        );
        let run = testing::run_pipeline(&p, MSG, &env);
        let json = run.response_json();
        let actions = json["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 2, "{json}");
        assert_eq!(actions[0]["action"]["type"], "DEFAULT");
        assert_eq!(actions[0]["recipients"].as_array().unwrap().len(), 50);
        assert_eq!(actions[1]["action"]["type"], "DROP");
        assert_eq!(actions[1]["allRecipients"], true);
        assert!(
            run.summary().contains("response fitted"),
            "{}",
            run.summary()
        );
    }

    #[test]
    fn an_outbound_split_that_cannot_be_named_either_way_bounces_everyone_saying_why() {
        let mut all = addresses(600, "x.example");
        all.extend(addresses(600, "corp.example"));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let env = testing::outbound("a@corp.example", &refs);
        let p = pipeline(
            "[[stage]]\ntype = \"verdict\"\naction = \"drop\"\nwhen = { recipient = \"*@x.example\" }\n",
        );
        let json = testing::run_pipeline(&p, MSG, &env).response_json();
        let actions = json["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1, "{json}");
        assert_eq!(actions[0]["action"]["type"], "BOUNCE");
        let text = actions[0]["action"]["parameters"]["bounceMessage"]
            .as_str()
            .unwrap();
        assert!(text.contains("fewer recipients"), "{text}");
    }

    #[test]
    fn inbound_verdicts_may_name_more_than_500_recipients() {
        let all = addresses(700, "corp.example");
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut env = testing::inbound("a@x.example", &refs);
        env.recipients.push("boss@corp.example".into());
        let p = pipeline(
            "[[stage]]\ntype = \"verdict\"\naction = \"move_to_junk\"\nunless = { recipient = \"boss@*\" }\n",
        );
        let json = testing::run_pipeline(&p, MSG, &env).response_json();
        let actions = json["actions"].as_array().unwrap();
        assert_eq!(actions[0]["recipients"].as_array().unwrap().len(), 700);
        assert_eq!(actions[1]["action"]["type"], "DEFAULT");
    }

    #[test]
    fn eleven_bounce_texts_merge_into_one_and_every_recipient_stays_bounced() {
        let mut config = String::new();
        let all = addresses(12, "corp.example");
        for r in &all {
            config.push_str(&format!(
                "[[stage]]\ntype = \"verdict\"\naction = \"bounce\"\nmessage = \"no {r}\"\nwhen = {{ recipient = \"{r}\" }}\n"
            ));
        }
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut env = testing::inbound("a@x.example", &refs);
        env.recipients.push("ok@corp.example".into());
        let run = testing::run_pipeline(&pipeline(&config), MSG, &env);
        let json = run.response_json();
        let actions = json["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 2, "{json}");
        assert_eq!(
            actions[0]["action"]["parameters"]["bounceMessage"],
            crate::stage::actions::MERGED_BOUNCE_MESSAGE
        );
        assert_eq!(actions[0]["recipients"].as_array().unwrap().len(), 12);
        assert_eq!(actions[1]["action"]["type"], "DEFAULT");
        assert!(
            run.summary().contains("12 bounce texts merged"),
            "{}",
            run.summary()
        );
    }

    #[test]
    fn a_response_past_256_kb_names_the_smaller_side_instead() {
        // 3,000 listed recipients with long addresses: naming them all would be ~330 KB.
        let long = "a".repeat(100);
        let all: Vec<String> = (0..3000)
            .map(|i| format!("{long}{i}@corp.example"))
            .collect();
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut env = testing::inbound("a@x.example", &refs);
        env.recipients.push("boss@corp.example".into());
        let p = pipeline(
            "[[stage]]\ntype = \"verdict\"\naction = \"move_to_junk\"\nunless = { recipient = \"boss@*\" }\n",
        );
        let run = testing::run_pipeline(&p, MSG, &env);
        let json = run.response_json();
        assert!(json.to_string().len() <= crate::stage::actions::MAX_RESPONSE_BYTES);
        let actions = json["actions"].as_array().unwrap();
        assert_eq!(actions[0]["action"]["type"], "DEFAULT", "{}", run.summary());
        assert_eq!(
            actions[0]["recipients"],
            serde_json::json!(["boss@corp.example"])
        );
        assert_eq!(actions[1]["action"]["type"], "MOVE_TO_JUNK");
    }

    #[test]
    fn on_a_truncated_event_a_restrictive_verdict_also_takes_the_recipients_left_out() {
        let mut env = testing::inbound("a@x.example", &["b@corp.example", "c@corp.example"]);
        env.truncated = true;
        // None of the listed recipients match: the ones left out may.
        let p = pipeline(
            "[[stage]]\ntype = \"verdict\"\naction = \"bounce\"\nwhen = { recipient = \"ceo@corp.example\" }\n",
        );
        let json = testing::run_pipeline(&p, MSG, &env).response_json();
        let actions = json["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 2, "{json}");
        assert_eq!(actions[0]["action"]["type"], "DEFAULT");
        assert_eq!(
            actions[0]["recipients"],
            serde_json::json!(["b@corp.example", "c@corp.example"])
        );
        assert_eq!(actions[1]["action"]["type"], "BOUNCE");
        assert_eq!(actions[1]["allRecipients"], true);

        // Without truncation the same verdict selects nobody and is skipped.
        env.truncated = false;
        let json = testing::run_pipeline(&p, MSG, &env).response_json();
        assert_eq!(json["actions"].as_array().unwrap().len(), 1);
        assert_eq!(json["actions"][0]["action"]["type"], "DEFAULT");
    }

    #[test]
    fn on_a_truncated_event_a_verdict_that_lets_mail_through_stays_with_listed_recipients() {
        let mut env = testing::inbound(
            "a@x.example",
            &["postmaster@corp.example", "b@corp.example"],
        );
        env.truncated = true;
        let p = pipeline(concat!(
            "[[stage]]\ntype = \"verdict\"\naction = \"move_to_junk\"\n",
            "[[stage]]\ntype = \"verdict\"\naction = \"bypass_spam_check\"\nwhen = { recipient = \"postmaster@*\" }\n",
        ));
        let json = testing::run_pipeline(&p, MSG, &env).response_json();
        let actions = json["actions"].as_array().unwrap();
        assert_eq!(actions[0]["action"]["type"], "BYPASS_SPAM_CHECK", "{json}");
        assert_eq!(
            actions[0]["recipients"],
            serde_json::json!(["postmaster@corp.example"])
        );
        assert_eq!(actions[1]["action"]["type"], "MOVE_TO_JUNK");
        assert_eq!(actions[1]["allRecipients"], true);
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
