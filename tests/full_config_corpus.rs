//! The full config (`benches/full.toml`: every built-in stage) over the whole corpus, as
//! the benchmarks and `benches/compare.sh` run it: every changed message passes the
//! content rules, keeps every boundary line of the original on a line of its own, and a
//! second pass changes nothing; every other message comes out byte for byte.
//!
//! The boundary check does not ask our parser, which finds a boundary even when text is
//! glued in front of it: stricter readers (Python's `email`, many clients) do not, and
//! lose every part after it. `benches/damage.py` found two such messages this way.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use workmail_flow::mime_tree::MimeTree;
use workmail_flow::{Direction, Envelope, Outcome, Pipeline, StageRegistry, config, rules};

fn full_config() -> Pipeline {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/full.toml");
    config::load_with(&path, &StageRegistry::builtin()).unwrap()
}

/// The boundary of every multipart the parser found.
fn boundaries(tree: &MimeTree<'_>) -> Vec<String> {
    let re = regex::Regex::new(r#"(?i)boundary\s*=\s*(?:"([^"]*)"|([^\s;"]+))"#).unwrap();
    tree.parts()
        .iter()
        .filter(|p| p.content_type.starts_with("multipart/"))
        .filter_map(|p| tree.field_value(p.id, "Content-Type"))
        .filter_map(|v| {
            re.captures(&v).map(|c| {
                c.get(1)
                    .or(c.get(2))
                    .map_or(String::new(), |m| m.as_str().to_string())
            })
        })
        .filter(|b| !b.is_empty())
        .collect()
}

/// How many lines are exactly `--boundary` or `--boundary--` (transport padding after
/// it allowed), per boundary.
fn boundary_lines(raw: &[u8], boundaries: &[String]) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = boundaries.iter().map(|b| (b.clone(), 0)).collect();
    for line in raw.split(|&b| b == b'\n') {
        let line = line.trim_ascii_end();
        let Some(rest) = line.strip_prefix(b"--") else {
            continue;
        };
        let rest = rest.strip_suffix(b"--").unwrap_or(rest);
        if let Ok(s) = std::str::from_utf8(rest)
            && let Some(n) = counts.get_mut(s)
        {
            *n += 1;
        }
    }
    counts
}

#[test]
fn full_config_over_the_corpus_is_valid_keeps_boundaries_on_their_lines_and_is_idempotent() {
    let pipeline = full_config();
    let mut failures = Vec::new();
    let mut changed = 0;
    for (name, raw) in common::corpus_messages() {
        let env = Envelope::from_message(&raw, Direction::Inbound);
        let r = pipeline.run(&raw, &env);
        let out = r.output.to_vec();
        if r.outcome != Outcome::Changed {
            if out != raw {
                failures.push(format!("{name}: not changed, yet the output differs"));
            }
            continue;
        }
        changed += 1;
        let v = rules::check(&out, Some(&raw));
        if !v.is_empty() {
            failures.push(format!("{name}: breaks the content rules: {v:?}"));
        }
        let tree = MimeTree::parse(&raw).expect("it parsed in the pipeline");
        let bs = boundaries(&tree);
        let (before, after) = (boundary_lines(&raw, &bs), boundary_lines(&out, &bs));
        if before != after {
            failures.push(format!(
                "{name}: boundary lines before {before:?}, after {after:?}"
            ));
        }
        let second = pipeline.run(&out, &Envelope::from_message(&out, Direction::Inbound));
        if second.output.to_vec() != out {
            failures.push(format!(
                "{name}: a second pass changed the output: {}",
                second.summary()
            ));
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(changed > 300, "only {changed} corpus messages changed");
    assert!(failures.is_empty(), "{} corpus failure(s)", failures.len());
}
