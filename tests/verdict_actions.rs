//! The response WorkMail reads, for the golden verdict cases: the golden harness checks
//! that a verdict leaves the bytes alone; this checks what it decides. Each test runs a
//! case folder's `flow.toml` over its `input.eml` with its `event.json`, and compares the
//! response JSON and the reports.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use workmail_flow::testing::{self, Run};

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/verdict")
        .join(name)
}

fn run_case(name: &str) -> Run {
    let dir = case(name);
    let pipeline = workmail_flow::config::load(&dir.join("flow.toml")).unwrap();
    let envelope =
        testing::envelope_from_event(&std::fs::read_to_string(dir.join("event.json")).unwrap())
            .unwrap();
    let raw = std::fs::read(dir.join("input.eml")).unwrap();
    let run = testing::run_pipeline(&pipeline, &raw, &envelope);
    assert_eq!(
        run.output, raw,
        "{name}: a verdict never changes the message"
    );
    run
}

fn response(run: &Run) -> Value {
    // What the Lambda returns, serialized the way it will be.
    serde_json::from_str(&serde_json::to_string(&run.response()).unwrap()).unwrap()
}

#[test]
fn bounce_without_recipient_conditions_covers_all_recipients() {
    let run = run_case("bounce_for_all_recipients_leaves_the_message_alone");
    assert_eq!(
        response(&run),
        json!({"actions": [{
            "action": {"type": "BOUNCE", "parameters": {
                "bounceMessage": "Mail from alice@partner.example about Q3 numbers is refused"}},
            "allRecipients": true
        }]})
    );
    assert_eq!(run.report().summary(), "BOUNCE for all recipients");
}

#[test]
fn bounce_with_when_recipient_names_only_the_matching_recipients() {
    let run = run_case("bounce_only_for_matching_recipients");
    assert_eq!(
        response(&run),
        json!({"actions": [
            {"action": {"type": "BOUNCE", "parameters": {
                "bounceMessage": "Former-Dave@CORP.example no longer receives mail"}},
             "recipients": ["Former-Dave@CORP.example"]},
            {"action": {"type": "DEFAULT"}, "allRecipients": true}
        ]})
    );
    let summary = run.report().summary();
    assert_eq!(summary, "BOUNCE for 1 of 2 recipient(s)");
    assert!(!summary.contains('@'), "reports never print addresses");
}

#[test]
fn move_to_junk_on_outbound_mail_degrades_to_default_with_a_warning() {
    let run = run_case("move_to_junk_on_outbound_degrades_to_default");
    assert_eq!(
        response(&run),
        json!({"actions": [{"action": {"type": "DEFAULT"}, "allRecipients": true}]})
    );
    let summary = run.report().summary();
    assert!(
        summary.starts_with("warning: MOVE_TO_JUNK applies only to inbound mail"),
        "{summary}"
    );
    assert!(summary.contains("degrades to DEFAULT"), "{summary}");
}

#[test]
fn stop_true_keeps_the_later_stages_from_running() {
    let run = run_case("stop_skips_the_later_stages");
    assert!(run.stopped);
    assert_eq!(
        response(&run),
        json!({"actions": [{"action": {"type": "DEFAULT"}, "allRecipients": true}]}),
        "the later move_to_junk did not run"
    );
    let reports: Vec<String> = run.stages.iter().map(|s| s.report.summary()).collect();
    assert_eq!(
        reports,
        [
            "DEFAULT for all recipients; stop: the stages after this one do not run",
            "not run: stage 1 (verdict) stopped the stages after it",
            "not run: stage 1 (verdict) stopped the stages after it",
        ]
    );
}

#[test]
fn without_the_stopping_condition_the_later_stages_decide() {
    // The same flow for a sender who is not a partner: the first stage is skipped, so
    // the stamp and the junk verdict run.
    let dir = case("stop_skips_the_later_stages");
    let pipeline = workmail_flow::config::load(&dir.join("flow.toml")).unwrap();
    let raw = std::fs::read(dir.join("input.eml")).unwrap();
    let envelope = testing::inbound("promo@shop.example", &["bob@corp.example"]);
    let run = testing::run_pipeline(&pipeline, &raw, &envelope);
    assert!(!run.stopped);
    assert_eq!(run.header("X-External"), ["yes"]);
    assert_eq!(
        response(&run),
        json!({"actions": [{"action": {"type": "MOVE_TO_JUNK"}, "allRecipients": true}]})
    );
    assert_eq!(
        run.stages[0].report.summary(),
        "skipped: condition when.sender did not match the envelope sender"
    );
}

#[test]
fn a_header_regex_condition_decides_whether_the_verdict_applies() {
    let run = run_case("junk_when_a_header_matches");
    assert_eq!(
        response(&run),
        json!({"actions": [{"action": {"type": "MOVE_TO_JUNK"}, "allRecipients": true}]})
    );
    // The same message with a low score is left to DEFAULT, and the report says why.
    let dir = case("junk_when_a_header_matches");
    let pipeline = workmail_flow::config::load(&dir.join("flow.toml")).unwrap();
    let raw = std::fs::read_to_string(dir.join("input.eml"))
        .unwrap()
        .replace("X-Spam-Score: 7.5", "X-Spam-Score: 1.2");
    let run = testing::run_pipeline(
        &pipeline,
        raw.as_bytes(),
        &testing::inbound("promo@shop.example", &["bob@corp.example"]),
    );
    assert_eq!(
        response(&run),
        json!({"actions": [{"action": {"type": "DEFAULT"}, "allRecipients": true}]})
    );
    assert_eq!(
        run.report().summary(),
        "skipped: condition when.header X-Spam-Score did not match"
    );
}

#[test]
fn unless_sender_exempts_a_listed_domain_and_others_are_dropped() {
    let run = run_case("unless_sender_exempts_from_a_drop");
    assert_eq!(
        response(&run),
        json!({"actions": [{"action": {"type": "DEFAULT"}, "allRecipients": true}]})
    );
    assert_eq!(
        run.report().summary(),
        "skipped: condition unless.sender matched the envelope sender"
    );
    let dir = case("unless_sender_exempts_from_a_drop");
    let pipeline = workmail_flow::config::load(&dir.join("flow.toml")).unwrap();
    let raw = std::fs::read(dir.join("input.eml")).unwrap();
    let run = testing::run_pipeline(
        &pipeline,
        &raw,
        &testing::inbound("mallory@elsewhere.example", &["bob@corp.example"]),
    );
    assert_eq!(
        response(&run),
        json!({"actions": [{"action": {"type": "DROP"}, "allRecipients": true}]})
    );
}

#[test]
fn unless_recipient_bounces_only_the_recipients_it_does_not_exempt() {
    let pipeline = testing::config(
        r#"
        [[stage]]
        type = "verdict"
        action = "bounce"
        message = "External delivery of this message is blocked"
        when = { direction = "outbound", header = { name = "X-Classification", matches = "(?i)^confidential$" } }
        unless = { recipient = ["*@corp.example", "*@subsidiary.example"] }
        "#,
        &workmail_flow::StageRegistry::builtin(),
    )
    .unwrap();
    let raw = b"From: bob@corp.example\r\nTo: x\r\nX-Classification: Confidential\r\nSubject: plan\r\n\r\nb\r\n";
    let run = testing::run_pipeline(
        &pipeline,
        raw,
        &testing::outbound(
            "bob@corp.example",
            &[
                "carol@corp.example",
                "alice@partner.example",
                "eve@subsidiary.example",
            ],
        ),
    );
    assert_eq!(
        response(&run),
        json!({"actions": [
            {"action": {"type": "BOUNCE", "parameters": {
                "bounceMessage": "External delivery of this message is blocked"}},
             "recipients": ["alice@partner.example"]},
            {"action": {"type": "DEFAULT"}, "allRecipients": true}
        ]})
    );
}
