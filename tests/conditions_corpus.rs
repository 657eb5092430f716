//! Conditions and verdicts over the real-world corpus in `../shared/corpus` (or
//! `$WORKMAIL_FLOW_CORPUS`): evaluating header regexes and address globs never panics,
//! a verdict-only flow gives back every message byte for byte with a valid response,
//! and a conditioned stamp changes a message exactly when its condition holds.

mod common;

use workmail_flow::actions::MAX_ACTIONS;
use workmail_flow::pipeline::Outcome;
use workmail_flow::testing;
use workmail_flow::{Direction, Envelope, StageRegistry};

const FLOW: &str = r#"
[[stage]]
type = "verdict"
action = "bounce"
message = "{{ subject }} from {{ sender }} to {{ recipients }} on {{ date }}"
when = { header = { name = "Subject", matches = "(?i)(invoice|test|re:)" }, recipient = "*@*" }
unless = { sender = "*@corp.example", header = { name = "X-Spam-Flag", matches = "^YES$" } }

[[stage]]
type = "verdict"
action = "move_to_junk"
when = { header = [ { name = "From", matches = "@" }, { name = "Content-Type", matches = "(?i)multipart" } ] }

[[stage]]
type = "verdict"
action = "bypass_spam_check"
unless = { recipient = "*@corp.example" }
"#;

#[test]
fn verdict_flows_over_the_corpus_keep_every_byte_and_answer_validly() {
    let pipeline = testing::config(FLOW, &StageRegistry::builtin()).unwrap();
    let mut ran = 0;
    let mut unparsed = Vec::new();
    for (name, raw) in common::corpus_messages() {
        for direction in [Direction::Inbound, Direction::Outbound] {
            let mut envelope = Envelope::from_message(&raw, direction);
            envelope.recipients.push("someone@corp.example".into());
            let run = testing::run_pipeline(&pipeline, &raw, &envelope);
            assert_eq!(run.output, raw, "{name}: {}", run.summary());
            match &run.outcome {
                Outcome::Unchanged => {}
                // A file with no header (mime4j's malformedHeader-noheader) is no message.
                Outcome::KeptOriginal(why) if why.starts_with("cannot parse") => {
                    if direction == Direction::Inbound {
                        unparsed.push(name.clone());
                    }
                    continue;
                }
                Outcome::NotAMessage(_) => {
                    if direction == Direction::Inbound {
                        unparsed.push(name.clone());
                    }
                    continue;
                }
                other => panic!("{name}: {other:?}: {}", run.summary()),
            }
            assert_eq!(run.stages.len(), 3, "{name}");
            let response = run.response();
            assert!(response.actions.len() <= MAX_ACTIONS, "{name}");
            if direction == Direction::Outbound {
                let json = serde_json::to_string(&response).unwrap();
                assert!(
                    !json.contains("MOVE_TO_JUNK") && !json.contains("BYPASS_SPAM_CHECK"),
                    "{name}: inbound-only action on outbound: {json}"
                );
            }
            for s in &run.stages {
                for d in &s.report.decisions {
                    assert!(!d.contains('\n'), "{name}: {d}");
                }
            }
            if let Some(e) = response
                .actions
                .iter()
                .find_map(|a| a.action.parameters.as_ref())
            {
                let m = &e.bounce_message;
                assert!(!m.is_empty() && !m.contains(['\r', '\n']), "{name}: {m:?}");
                assert!(m.chars().count() <= 1000, "{name}");
            }
            ran += 1;
        }
    }
    assert!(ran > 300, "only {ran} runs");
    eprintln!(
        "{} corpus message(s) the parser cannot read: {unparsed:?}",
        unparsed.len()
    );
}

#[test]
fn a_conditioned_stamp_changes_a_corpus_message_exactly_when_its_condition_holds() {
    let pipeline = testing::config(
        r#"
        [[stage]]
        type = "stamp_header"
        name = "X-Reply"
        value = "yes"
        when = { header = { name = "Subject", matches = "(?i)^\\s*re:" } }
        "#,
        &StageRegistry::builtin(),
    )
    .unwrap();
    let (mut stamped, mut skipped) = (0, 0);
    for (name, raw) in common::corpus_messages() {
        let Some(subject) = mail_parser::MessageParser::default()
            .parse_headers(&raw)
            .and_then(|m| m.subject().map(str::to_string))
        else {
            continue;
        };
        let envelope = Envelope::from_message(&raw, Direction::Inbound);
        let run = testing::run_pipeline(&pipeline, &raw, &envelope);
        let is_reply = subject.trim_start().to_lowercase().starts_with("re:");
        if is_reply {
            assert!(
                run.outcome == Outcome::Changed && run.header("X-Reply") == ["yes"],
                "{name}: {}",
                run.summary()
            );
            stamped += 1;
        } else {
            assert_eq!(run.output, raw, "{name}: {}", run.summary());
            skipped += 1;
        }
    }
    assert!(
        stamped > 0 && skipped > 0,
        "{stamped} stamped, {skipped} skipped"
    );
}
