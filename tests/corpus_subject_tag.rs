//! `subject_tag` over every message of the real-world corpus (`../shared/corpus`, or
//! `$WORKMAIL_FLOW_CORPUS`): the output passes the content rules, only the Subject field
//! changed, the decoded subject is the tag and the old subject, and a second pass changes
//! nothing.

mod common;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use workmail_flow::event::Envelope;
use workmail_flow::header_field::read_header_block;
use workmail_flow::pipeline::Outcome;
use workmail_flow::stage::StageRegistry;
use workmail_flow::{config, rules};

const FLOW: &str = "[[stage]]\ntype = \"subject_tag\"\ntag = \"[EXTERNAL]\"\n";

/// The message with every top-level Subject field cut out.
fn without_subject(raw: &[u8]) -> Vec<u8> {
    let (fields, _) = read_header_block(raw);
    let mut out = Vec::with_capacity(raw.len());
    let mut pos = 0;
    for f in fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("subject"))
    {
        out.extend_from_slice(&raw[pos..f.range.start]);
        pos = f.range.end;
    }
    out.extend_from_slice(&raw[pos..]);
    out
}

fn subject(raw: &[u8]) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    let s = msg
        .header_values(mail_parser::HeaderName::Subject)
        .next()?
        .as_text()?
        .to_string();
    Some(s.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[test]
fn subject_tag_over_the_corpus_changes_only_the_subject_and_is_idempotent() {
    let pipeline = config::parse(
        FLOW,
        Path::new("corpus_subject_tag.toml"),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &StageRegistry::builtin(),
    )
    .unwrap();
    let messages = common::corpus_messages();
    let total = messages.len();
    let mut failures = Vec::new();
    let mut kept = Vec::new();
    let (mut tagged, mut already, mut added, mut repaired) = (0, 0, 0, 0);
    for (name, input) in messages {
        let env = Envelope::default();
        let Ok(first) = std::panic::catch_unwind(AssertUnwindSafe(|| pipeline.run(&input, &env)))
        else {
            failures.push(format!("{name}: panicked"));
            continue;
        };
        let out = first.output.to_vec();
        match &first.outcome {
            Outcome::KeptOriginal(why) | Outcome::NotAMessage(why) => {
                kept.push(format!("{name}: {why}"));
                continue;
            }
            Outcome::Unchanged => already += 1,
            Outcome::Changed => {
                match subject(&input) {
                    Some(s) if !s.is_empty() => tagged += 1,
                    _ => added += 1,
                }
                let want = match subject(&input) {
                    Some(s) if !s.is_empty() => format!("[EXTERNAL] {s}"),
                    _ => "[EXTERNAL]".to_string(),
                };
                let got = subject(&out).unwrap_or_default();
                if got != want {
                    failures.push(format!("{name}: subject {got:?}, expected {want:?}"));
                }
            }
        }
        // A changed message also gets its over-long body lines re-encoded.
        repaired += usize::from(!first.repairs.is_empty());
        let violations = rules::check(&out, Some(&input));
        if !violations.is_empty() {
            failures.push(format!("{name}: breaks content rules: {violations:?}"));
        }
        // A message without a header section gets one: the field and its empty line.
        let headerless = read_header_block(&input).0.is_empty();
        let rest = without_subject(&out);
        let rest = match rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
        {
            Some(r) if headerless => r.to_vec(),
            _ => rest,
        };
        if first.repairs.is_empty() && rest != without_subject(&input) {
            failures.push(format!("{name}: bytes outside the Subject field changed"));
        }
        let second = pipeline.run(&out, &env);
        if second.output.to_vec() != out {
            failures.push(format!(
                "{name}: a second pass changed the output ({})",
                second.summary()
            ));
        }
    }
    println!(
        "{} messages: {tagged} tagged, {added} given the tag as subject, {already} already tagged, {repaired} with long lines repaired, {} kept as original",
        total,
        kept.len()
    );
    for k in &kept {
        println!("  kept original: {k}");
    }
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(failures.is_empty(), "{} failure(s)", failures.len());
}
