//! Our reading against an independent one: Python's email package, run from the test.
//!
//! - Over the corpus and the crafted tricks (`common::tricks`), the tree we splice
//!   agrees with Python's part for part (type, depth, and the exact bytes of every leaf
//!   body), or the message is reported ambiguous.
//! - Every trick that hides `evil.exe`, through `strip_attachments`: afterwards no
//!   reader offers the file (its bytes are gone from the output, and Python names no
//!   `.exe`), or the message is refused.
//!
//! Counts are printed (`cargo test --test differential -- --nocapture`).

mod common;

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use workmail_flow::mime_tree::MimeTree;
use workmail_flow::{Direction, Envelope, StageRegistry, config};

type Tree = Vec<(usize, String, Option<String>)>;

/// Runs one of the Python scripts over files, one JSON answer per file.
fn python(script: &str, paths: &[PathBuf]) -> Vec<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/differential")
        .join(script);
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (it is on every machine this project supports)");
    let mut stdin = child.stdin.take().unwrap();
    let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
    let writer = std::thread::spawn(move || stdin.write_all(list.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{} failed", script.display());
    let answers: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), paths.len(), "one answer per message");
    answers
}

/// Writes each message to its own file for Python to read.
fn write_all(dir: &Path, messages: &[(String, Vec<u8>)]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    messages
        .iter()
        .enumerate()
        .map(|(i, (_, raw))| {
            let p = dir.join(format!("{i}.eml"));
            std::fs::write(&p, raw).unwrap();
            p
        })
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wmf-differential-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Our tree in the shape python_tree.py prints.
fn our_tree(raw: &[u8]) -> Tree {
    let tree = MimeTree::parse(raw).unwrap();
    tree.parts()
        .iter()
        .map(|p| {
            let leaf = p.is_leaf()
                && !p.content_type.starts_with("multipart/")
                && !p.content_type.starts_with("message/");
            let hash = leaf.then(|| format!("{:x}", Sha256::digest(tree.body_bytes(p.id))));
            (p.depth, p.content_type.clone(), hash)
        })
        .collect()
}

fn python_tree(v: &serde_json::Value) -> Option<Tree> {
    v.as_array().map(|parts| {
        parts
            .iter()
            .map(|p| {
                (
                    p[0].as_u64().unwrap() as usize,
                    p[1].as_str().unwrap().to_string(),
                    p[2].as_str().map(str::to_string),
                )
            })
            .collect()
    })
}

#[test]
fn the_structure_we_splice_agrees_with_python_or_is_reported_ambiguous() {
    let mut messages = common::corpus_messages();
    let corpus_len = messages.len();
    messages.extend(common::tricks::all());
    let dir = temp_dir("trees");
    let paths = write_all(&dir, &messages);
    let answers = python("python_tree.py", &paths);
    let (mut agree, mut flagged, mut python_failed) = (0, 0, 0);
    let mut flagged_corpus: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    for (i, ((name, raw), answer)) in messages.iter().zip(&answers).enumerate() {
        let Some(theirs) = python_tree(answer) else {
            python_failed += 1;
            let error: String = answer["error"].to_string().chars().take(200).collect();
            println!("  Python could not read {name}: {error}");
            continue;
        };
        let ours = our_tree(raw);
        if ours == theirs {
            agree += 1;
            continue;
        }
        let tree = MimeTree::parse(raw).unwrap();
        if tree.findings().is_empty() {
            let first = ours
                .iter()
                .zip(&theirs)
                .position(|(a, b)| a != b)
                .unwrap_or(ours.len().min(theirs.len()));
            failures.push(format!(
                "{name}: trees differ at part {first} and no ambiguity is reported\n  ours:   {:?}\n  python: {:?}",
                ours.get(first),
                theirs.get(first)
            ));
        } else {
            flagged += 1;
            if i < corpus_len {
                let tags: Vec<&str> = tree.findings().iter().map(|f| f.kind.tag()).collect();
                flagged_corpus.push(format!("{name}: {}", tags.join(", ")));
            }
        }
    }
    println!(
        "{} messages ({corpus_len} corpus, {} crafted): {agree} agree with Python, {flagged} differ and are reported ambiguous, {python_failed} Python could not read",
        messages.len(),
        messages.len() - corpus_len
    );
    for f in &flagged_corpus {
        println!("  corpus, differs and ambiguous: {f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(agree > corpus_len * 9 / 10, "only {agree} agree");
}

const STRIP: &str = "[[stage]]\ntype = \"strip_attachments\"\nextensions = [\"exe\"]\n";

#[test]
fn no_reader_finds_a_hidden_exe_after_strip_attachments_unless_the_message_is_refused() {
    let pipeline = config::parse(
        STRIP,
        Path::new("strip.toml"),
        Path::new("."),
        &StageRegistry::builtin(),
    )
    .unwrap();
    let tricks = common::tricks::all();
    let dir = temp_dir("strip");
    let before = python("python_names.py", &write_all(&dir.join("in"), &tricks));
    let mut outputs = Vec::new();
    let mut refused = Vec::new();
    for (name, raw) in &tricks {
        let env = Envelope::from_message(raw, Direction::Inbound);
        let r = pipeline.run(raw, &env);
        let response = serde_json::to_string(&r.actions.to_response()).unwrap();
        refused.push(response.contains("BOUNCE"));
        outputs.push((name.clone(), r.output.to_vec()));
    }
    let after = python("python_names.py", &write_all(&dir.join("out"), &outputs));
    let is_exe = |v: &serde_json::Value| {
        v.as_array().is_some_and(|names| {
            names
                .iter()
                .any(|n| n.as_str().unwrap_or("").to_lowercase().ends_with(".exe"))
        })
    };
    let mut failures = Vec::new();
    let (mut shown, mut stripped, mut bounced) = (0, 0, 0);
    for (i, (name, out)) in outputs.iter().enumerate() {
        shown += usize::from(is_exe(&before[i]));
        if refused[i] {
            bounced += 1;
            continue;
        }
        let bytes_left = String::from_utf8_lossy(out).contains(common::tricks::EXE_B64)
            || String::from_utf8_lossy(out).contains("begin 644 evil.exe");
        if bytes_left || is_exe(&after[i]) {
            failures.push(format!(
                "{name}: delivered with the file (bytes still there: {bytes_left}, Python names it: {})",
                is_exe(&after[i])
            ));
        } else {
            stripped += 1;
        }
    }
    println!(
        "{} tricks: Python shows the .exe in {shown}; after the stage {stripped} have it removed, {bounced} are refused, {} deliver it",
        tricks.len(),
        failures.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
