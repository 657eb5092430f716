//! The `disclaimer` stage over every message of the real-world corpus
//! (`../shared/corpus`, or `WORKMAIL_FLOW_CORPUS`), with the shipped templates, at the
//! bottom and at the top. For each message: no panic; the output passes the content
//! rules against its input; it re-parses into a tree of the same shape; every part the
//! stage did not name (nor the pipeline's repairs), outside the ancestors of those,
//! is byte-identical; a changed part still holds its original text, in order; and a second pass
//! changes nothing. Counts of changed messages and of those left alone, by reason, are
//! printed (`cargo test --test corpus_disclaimer -- --nocapture`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use workmail_flow::event::{Direction, Envelope};
use workmail_flow::mime_tree::{MimeTree, PartKind};
use workmail_flow::pipeline::{Outcome, Pipeline};
use workmail_flow::rules;
use workmail_flow::stages::disclaimer::{Disclaimer, Placement, presence};

fn template(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("templates")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `part N` a text names.
fn parts_named(text: &str) -> Vec<usize> {
    let re = regex::Regex::new(r"\bpart (\d+)\b").unwrap();
    re.captures_iter(text)
        .map(|c| c[1].parse().unwrap())
        .collect()
}

/// A decision with its part numbers taken out, to group messages by reason.
fn reason_key(text: &str) -> String {
    regex::Regex::new(r"\bpart \d+\b")
        .unwrap()
        .replace_all(text, "part N")
        .into_owned()
}

fn shape(tree: &MimeTree<'_>) -> Vec<(Option<usize>, String)> {
    tree.parts()
        .iter()
        .map(|p| (p.parent, p.content_type.clone()))
        .collect()
}

fn part_bytes<'a>(tree: &MimeTree<'a>, id: usize) -> &'a [u8] {
    let p = tree.part(id);
    let raw = tree.raw();
    let end = p.body.end.max(p.header.end).min(raw.len());
    &raw[p.header.start.min(end)..end]
}

/// Whether every word of `old` is in `new`, in order (the disclaimer may sit between
/// them: before a closing body tag that some text follows).
fn is_subsequence<'a>(
    old: impl Iterator<Item = &'a str>,
    mut new: impl Iterator<Item = &'a str>,
) -> bool {
    old.filter(|w| !w.is_empty()).all(|w| new.any(|n| n == w))
}

/// Checks one message; returns the problems found and the reason key it is counted
/// under (`changed` or why it was left alone).
fn check_message(pipeline: &Pipeline, input: &[u8]) -> (Vec<String>, String) {
    let mut problems = Vec::new();
    let env = Envelope::from_message(input, Direction::Outbound);
    let result = pipeline.run(input, &env);
    let out = result.output.to_vec();
    let decisions: Vec<String> = result
        .stages
        .iter()
        .flat_map(|s| s.report.decisions.clone())
        .collect();
    let key = match &result.outcome {
        Outcome::Changed => "changed".to_string(),
        Outcome::Unchanged => reason_key(&decisions.join("; ")),
        Outcome::KeptOriginal(why) | Outcome::NotAMessage(why) => {
            if why.contains("panicked") {
                problems.push(format!("stage panicked: {}", result.summary()));
            }
            reason_key(&format!("kept original: {why}"))
        }
    };
    if result.outcome != Outcome::Changed {
        if out != input {
            problems.push("not changed, yet the output differs".into());
        }
        return (problems, key);
    }
    let violations = rules::check(&out, Some(input));
    if !violations.is_empty() {
        problems.push(format!("breaks content rules: {violations:?}"));
    }
    let before = MimeTree::parse(input).expect("the input parsed once already");
    let Ok(after) = MimeTree::parse(&out) else {
        problems.push("output does not parse".into());
        return (problems, key);
    };
    if shape(&before) != shape(&after) {
        problems.push(format!(
            "tree shape changed: {} parts before, {} after",
            before.parts().len(),
            after.parts().len()
        ));
        return (problems, key);
    }
    let added: Vec<usize> = decisions
        .iter()
        .filter(|d| d.starts_with("added to"))
        .flat_map(|d| parts_named(d))
        .collect();
    let repaired: Vec<usize> = result.repairs.iter().flat_map(|r| parts_named(r)).collect();
    let mut exempt: BTreeSet<usize> = BTreeSet::new();
    for &id in added.iter().chain(&repaired) {
        let mut cur = Some(id);
        while let Some(p) = cur {
            exempt.insert(p);
            cur = before.part(p).parent;
        }
    }
    for p in before.parts() {
        if !exempt.contains(&p.id) && part_bytes(&before, p.id) != part_bytes(&after, p.id) {
            problems.push(format!(
                "part {} ({}) was not named by the stage, yet its bytes changed",
                p.id, p.content_type
            ));
        }
    }
    for &id in &added {
        let is_html = before.part(id).kind == PartKind::Html;
        let text = |t: &MimeTree<'_>| t.text_view(id).ok().map(|v| v.text.into_owned());
        let (Some(old), Some(new)) = (text(&before), text(&after)) else {
            problems.push(format!("part {id} is no longer text"));
            continue;
        };
        let (old, new) = (
            presence::normalize_part(&old, is_html),
            presence::normalize_part(&new, is_html),
        );
        if !is_subsequence(old.split(' '), new.split(' ')) {
            problems.push(format!("part {id} lost some of its original text"));
        }
        if new.len() <= old.len() {
            problems.push(format!(
                "part {id} was named as changed but holds nothing new"
            ));
        }
    }
    let second = pipeline.run(&out, &env);
    if second.output.to_vec() != out {
        problems.push(format!(
            "a second pass changed the output: {}",
            second.summary()
        ));
    }
    (problems, key)
}

fn run_corpus(placement: Placement, with_html: bool) {
    let messages = common::corpus_messages();
    let text = template("disclaimer.txt");
    let html = template("disclaimer.html");
    let stage = Disclaimer::new(
        Some(&text),
        with_html.then_some(html.as_str()),
        placement,
        true,
    )
    .unwrap();
    let pipeline = Pipeline::from_stages(vec![("disclaimer".into(), Box::new(stage))]);
    let mut failures = Vec::new();
    let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, input) in &messages {
        let (problems, key) = check_message(&pipeline, input);
        for p in problems {
            failures.push(format!("{name}: {p}"));
        }
        by_reason.entry(key).or_default().push(name.clone());
    }
    eprintln!(
        "disclaimer ({placement:?}, {}) over {} corpus messages:",
        if with_html {
            "text + html"
        } else {
            "text only"
        },
        messages.len()
    );
    for (reason, names) in &by_reason {
        eprintln!("  {:4}  {reason}", names.len());
        if reason != "changed" {
            for n in names {
                eprintln!("          {n}");
            }
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(
        by_reason.get("changed").is_some_and(|c| !c.is_empty()),
        "no corpus message was changed"
    );
    assert!(failures.is_empty(), "{} corpus failure(s)", failures.len());
}

#[test]
fn disclaimer_at_the_bottom_over_the_corpus_keeps_every_untouched_part_and_is_idempotent() {
    run_corpus(Placement::Bottom, true);
}

#[test]
fn disclaimer_at_the_top_over_the_corpus_keeps_every_untouched_part_and_is_idempotent() {
    run_corpus(Placement::Top, false);
}
