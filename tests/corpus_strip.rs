//! `strip_attachments` over every message of the real-world corpus (`../shared/corpus`, or
//! `$WORKMAIL_FLOW_CORPUS`): no panic, output within the content rules, the tree keeps
//! its shape, every part not stripped stays byte-identical, and a second pass changes
//! nothing. Prints what was stripped and what was left alone, and why.

mod common;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use workmail_flow::event::Envelope;
use workmail_flow::mime_tree::{MimeTree, Part, PartId};
use workmail_flow::pipeline::Outcome;
use workmail_flow::stage::StageRegistry;
use workmail_flow::{config, rules};

const FLOW: &str = r#"
[[stage]]
type = "strip_attachments"
extensions = ["exe", "zip", "pdf", "doc"]
content_types = ["application/x-*"]
"#;

fn is_notice(p: &Part) -> bool {
    p.content_type == "text/plain"
        && !p.names.is_empty()
        && p.names.iter().all(|n| n.ends_with(".removed.txt"))
}

fn bytes<'a>(tree: &MimeTree<'a>, range: std::ops::Range<usize>) -> &'a [u8] {
    let raw = tree.raw();
    &raw[range.start.min(raw.len())..range.end.min(raw.len())]
}

/// Checks shape and byte identity; returns the ids of stripped parts.
///
/// Parts pair up in document order: a part the stage replaced pairs with its notice, and
/// the parts inside it (an attached message's) are gone from the output; every other part
/// pairs with an output part of the same type.
fn compare(name: &str, input: &[u8], output: &[u8], failures: &mut Vec<String>) -> Vec<PartId> {
    let Ok(before) = MimeTree::parse(input) else {
        return Vec::new();
    };
    let after = match MimeTree::parse(output) {
        Ok(t) => t,
        Err(e) => {
            failures.push(format!("{name}: output does not parse: {e}"));
            return Vec::new();
        }
    };
    let (bp, ap) = (before.parts(), after.parts());
    let mut pairs: Vec<(PartId, PartId)> = Vec::new();
    let mut stripped: Vec<PartId> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < bp.len() && j < ap.len() {
        pairs.push((i, j));
        if is_notice(&ap[j]) && !is_notice(&bp[i]) {
            stripped.push(i);
            let depth = bp[i].depth;
            i += 1;
            while i < bp.len() && bp[i].depth > depth {
                i += 1; // inside the replaced part
            }
        } else {
            i += 1;
        }
        j += 1;
    }
    if i != bp.len() || j != ap.len() {
        failures.push(format!(
            "{name}: shape differs: {} parts before, {} after, {} stripped",
            bp.len(),
            ap.len(),
            stripped.len()
        ));
        return stripped;
    }
    let holds_stripped = |id: PartId| {
        stripped.iter().any(|&s| {
            let mut cur = bp[s].parent;
            while let Some(p) = cur {
                if p == id {
                    return true;
                }
                cur = bp[p].parent;
            }
            false
        })
    };
    for (b, a) in pairs.into_iter().map(|(b, a)| (&bp[b], &ap[a])) {
        if stripped.contains(&b.id) {
            continue;
        }
        if b.content_type != a.content_type {
            failures.push(format!(
                "{name}: part {} changed type {} -> {}",
                b.id, b.content_type, a.content_type
            ));
        }
        let header_same = bytes(&before, b.header.clone()) == bytes(&after, a.header.clone());
        if holds_stripped(b.id) {
            if !header_same {
                failures.push(format!("{name}: header of container part {} changed", b.id));
            }
        } else if bytes(&before, b.header.start..b.body.end)
            != bytes(&after, a.header.start..a.body.end)
        {
            failures.push(format!("{name}: part {} not stripped but changed", b.id));
        }
    }
    stripped
}

/// Every attachment, attached messages' parts too: the notice path over every kind of
/// part the corpus holds.
const CATCH_ALL: &str = r#"
[[stage]]
type = "strip_attachments"
content_types = ["*/*"]
include_attached_messages = true
"#;

#[test]
fn strip_policy_over_the_corpus_keeps_shape_rules_and_idempotence() {
    run_corpus(FLOW);
}

#[test]
fn stripping_every_attachment_over_the_corpus_keeps_shape_rules_and_idempotence() {
    run_corpus(CATCH_ALL);
}

fn run_corpus(flow: &str) {
    let pipeline = config::parse(
        flow,
        Path::new("corpus_strip.toml"),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &StageRegistry::builtin(),
    )
    .unwrap();
    let messages = common::corpus_messages();
    let total = messages.len();
    let mut failures = Vec::new();
    let (mut changed, mut parts_stripped) = (0, 0);
    let mut stripped_in: Vec<String> = Vec::new();
    let mut left_alone_in: Vec<String> = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for (name, input) in messages {
        let env = Envelope::default();
        let Ok(first) = std::panic::catch_unwind(AssertUnwindSafe(|| pipeline.run(&input, &env)))
        else {
            failures.push(format!("{name}: panicked"));
            continue;
        };
        let decisions: Vec<String> = first
            .stages
            .iter()
            .flat_map(|s| s.report.decisions.clone())
            .collect();
        match &first.outcome {
            Outcome::KeptOriginal(why) if why.contains("panicked") => {
                failures.push(format!("{name}: {why}"));
            }
            Outcome::KeptOriginal(why) | Outcome::NotAMessage(why) => {
                kept.push(format!("{name}: {why}"))
            }
            Outcome::Changed => changed += 1,
            Outcome::Unchanged => {}
        }
        let response = serde_json::to_string(&first.actions.to_response()).unwrap();
        if response.contains("BOUNCE") {
            refused.push(format!(
                "{name}: {}",
                decisions
                    .iter()
                    .filter(|d| d.starts_with("cannot remove"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        let out = first.output.to_vec();
        let violations = rules::check(&out, Some(&input));
        if !violations.is_empty() {
            failures.push(format!("{name}: breaks content rules: {violations:?}"));
        }
        let stripped = compare(&name, &input, &out, &mut failures);
        parts_stripped += stripped.len();
        let stripped_notes: Vec<&String> = decisions
            .iter()
            .filter(|d| d.starts_with("stripped"))
            .collect();
        if first.outcome == Outcome::Changed && stripped.len() != stripped_notes.len() {
            failures.push(format!(
                "{name}: reported {} stripped, found {} notices",
                stripped_notes.len(),
                stripped.len()
            ));
        }
        if !stripped_notes.is_empty() {
            stripped_in.push(format!(
                "{name}: {}",
                stripped_notes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        let alone: Vec<&String> = decisions
            .iter()
            .filter(|d| d.starts_with("left alone"))
            .collect();
        if !alone.is_empty() {
            left_alone_in.push(format!(
                "{name}: {}",
                alone
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
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
        "{} messages, {changed} changed, {parts_stripped} parts stripped, {} with matches left alone, {} refused, {} kept as original",
        total,
        left_alone_in.len(),
        refused.len(),
        kept.len()
    );
    println!("\nstripped:");
    for s in &stripped_in {
        println!("  {s}");
    }
    println!("\nleft alone:");
    for s in &left_alone_in {
        println!("  {s}");
    }
    println!("\nrefused (a match that cannot be removed, on_unstrippable = bounce):");
    for s in &refused {
        println!("  {s}");
    }
    println!("\nkept original:");
    for s in &kept {
        println!("  {s}");
    }
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(failures.is_empty(), "{} failure(s)", failures.len());
}
