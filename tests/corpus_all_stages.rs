//! Every stage on at once, over every corpus message: the output passes the content
//! rules against its input, keeps the tree's shape, keeps every part no stage touched
//! byte-identical, and a second pass changes nothing.

mod common;

use std::path::Path;
use workmail_flow::event::{Direction, Envelope};
use workmail_flow::mime_tree::MimeTree;
use workmail_flow::pipeline::{Outcome, Pipeline};
use workmail_flow::{StageRegistry, config, rules};

const ALL_STAGES: &str = r#"
[[stage]]
type = "stamp_header"
name = "X-WorkMail-Flow"
value = "processed"

[[stage]]
type = "subject_tag"
tag = "[EXTERNAL]"

[[stage]]
type = "disclaimer"
text = "Confidential: for the addressees only. Sent by {{ sender }}."
html = "<p>Confidential: for the addressees only. Sent by {{ sender }}.</p>"

[[stage]]
type = "strip_attachments"
extensions = ["exe", "zip", "pdf", "doc", "js"]
content_types = ["application/x-*"]

[[stage]]
type = "verdict"
action = "move_to_junk"
when = { header = { name = "X-Spam-Flag", matches = "(?i)yes" } }
"#;

fn pipeline() -> Pipeline {
    config::parse(
        ALL_STAGES,
        Path::new("all.toml"),
        Path::new("."),
        &StageRegistry::builtin(),
    )
    .unwrap()
}

/// Whether `id` is `touched` or holds a touched part (its bytes include the change).
fn contains_touched(tree: &MimeTree<'_>, id: usize, touched: &[usize]) -> bool {
    touched.iter().any(|&t| {
        let mut cur = Some(t);
        while let Some(p) = cur {
            if p == id {
                return true;
            }
            cur = tree.part(p).parent;
        }
        false
    })
}

#[test]
fn every_stage_on_keeps_rules_shape_untouched_parts_and_is_idempotent() {
    let flow = pipeline();
    let (mut changed, mut unchanged, mut kept) = (0, 0, Vec::new());
    for (name, raw) in common::corpus_messages() {
        let env = Envelope::from_message(&raw, Direction::Inbound);
        let result = flow.run(&raw, &env);
        let out = result.output.to_vec();
        let violations = rules::check(&out, Some(&raw));
        assert!(violations.is_empty(), "{name}: {violations:?}");
        match &result.outcome {
            Outcome::Unchanged => {
                unchanged += 1;
                assert!(out == raw, "{name}");
                continue;
            }
            Outcome::KeptOriginal(why) | Outcome::NotAMessage(why) => {
                assert!(out == raw, "{name}");
                kept.push(format!("{name}: {why}"));
                continue;
            }
            Outcome::Changed => changed += 1,
        }
        let before = MimeTree::parse(&raw).unwrap();
        let after =
            MimeTree::parse(&out).unwrap_or_else(|e| panic!("{name}: output does not parse: {e}"));
        assert_eq!(
            before.parts().len(),
            after.parts().len(),
            "{name}: tree shape changed ({})",
            result.summary()
        );
        for (b, a) in before.parts().iter().zip(after.parts()) {
            if contains_touched(&before, b.id, &result.touched) {
                continue;
            }
            assert_eq!(b.content_type, a.content_type, "{name}: part {} type", b.id);
            let old = &raw[b.header.start..b.body.end];
            let new = &out[a.header.start..a.body.end];
            assert!(old == new, "{name}: untouched part {} changed", b.id);
        }
        let again = flow.run(&out, &env);
        assert!(
            again.output.to_vec() == out,
            "{name}: a second pass changed the output: {}",
            again.summary()
        );
    }
    eprintln!(
        "all stages: {changed} changed, {unchanged} unchanged, {} kept original",
        kept.len()
    );
    for k in &kept {
        eprintln!("  kept: {k}");
    }
    assert!(changed > 300, "only {changed} messages changed");
}
