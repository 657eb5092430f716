//! `subject_tag` over every message of the real-world corpus (`../shared/corpus`, or
//! `$WORKMAIL_FLOW_CORPUS`): the output passes the content rules, only the Subject field
//! changed, the decoded subject is the tag and the old subject, and a second pass changes
//! nothing.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use workmail_flow::event::Envelope;
use workmail_flow::header_field::read_header_block;
use workmail_flow::pipeline::Outcome;
use workmail_flow::stage::StageRegistry;
use workmail_flow::{config, rules};

const FLOW: &str = "[[stage]]\ntype = \"subject_tag\"\ntag = \"[EXTERNAL]\"\n";

fn corpus_dir() -> PathBuf {
    match std::env::var_os("WORKMAIL_FLOW_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")),
    }
}

fn messages(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("tsv" | "md")
            ) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

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
    let dir = corpus_dir();
    assert!(
        dir.is_dir(),
        "corpus not found at {} (set WORKMAIL_FLOW_CORPUS)",
        dir.display()
    );
    let pipeline = config::parse(
        FLOW,
        Path::new("corpus_subject_tag.toml"),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &StageRegistry::builtin(),
    )
    .unwrap();
    let files = messages(&dir);
    assert!(files.len() > 100, "only {} messages found", files.len());
    let mut failures = Vec::new();
    let mut kept = Vec::new();
    let (mut tagged, mut already, mut added, mut repaired) = (0, 0, 0, 0);
    for path in &files {
        let name = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let input = std::fs::read(path).unwrap();
        let env = Envelope::default();
        let Ok(first) = std::panic::catch_unwind(AssertUnwindSafe(|| pipeline.run(&input, &env)))
        else {
            failures.push(format!("{name}: panicked"));
            continue;
        };
        let out = first.output.to_vec();
        match &first.outcome {
            Outcome::KeptOriginal(why) => {
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
        if first.repairs.is_empty() && without_subject(&out) != without_subject(&input) {
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
        files.len(),
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
