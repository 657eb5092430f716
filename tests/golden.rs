//! Golden files: `tests/golden/<stage>/<case>/{input.eml, flow.toml, expected.eml}` and,
//! where a case needs an envelope, `event.json`. Each case runs three ways (as stored,
//! with LF line endings, with CRLF), must match `expected.eml` converted the same way,
//! must pass the content rules against its input, and a second pass over the output
//! must change nothing. Where the case decides delivery, `expected-response.json` holds
//! the answer WorkMail gets, and every variant must give it. `BLESS=1 cargo test --test
//! golden` rewrites `expected.eml` (and `expected-response.json`) from the stored run; a
//! mismatch writes `actual.<variant>.eml.failed` beside it.

mod common;

use common::case_envelope;
use std::path::{Path, PathBuf};
use workmail_flow::rules;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn to_lf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn to_crlf(b: &[u8]) -> Vec<u8> {
    let lf = to_lf(b);
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 20);
    for &c in &lf {
        if c == b'\n' {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

/// The case's envelope, with the directory answers its config's `[directory]` file
/// gives for the addresses its stages read (the `directory` cases).
fn envelope(
    case: &Path,
    raw: &[u8],
    pipeline: &workmail_flow::Pipeline,
) -> workmail_flow::Envelope {
    let mut env = case_envelope(case, raw);
    if let Some(workmail_flow::config::DirectorySource::File { path }) =
        pipeline.directory.as_ref().map(|d| &d.source)
    {
        let dir = workmail_flow::envelope::FileDirectory::load(path)
            .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        env.directory = dir.view_for(raw, &env, pipeline.directory_needs());
    }
    env
}

/// Runs every case of one stage's folder and returns the failures.
fn run_stage(stage: &str) -> usize {
    let dir = golden_dir().join(stage);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases under {}", dir.display());
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let pipeline = workmail_flow::config::load(&case.join("flow.toml"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let input = std::fs::read(case.join("input.eml")).unwrap();
        let expected_path = case.join("expected.eml");
        let response_path = case.join("expected-response.json");
        if bless {
            let result = pipeline.run(&input, &envelope(case, &input, &pipeline));
            std::fs::write(&expected_path, result.output.to_vec()).unwrap();
            if result.actions.entries().is_empty() {
                let _ = std::fs::remove_file(&response_path);
            } else {
                let json = serde_json::to_string_pretty(&result.actions.to_response()).unwrap();
                std::fs::write(&response_path, json + "\n").unwrap();
            }
        }
        let expected_response: Option<serde_json::Value> = std::fs::read_to_string(&response_path)
            .ok()
            .map(|t| serde_json::from_str(&t).unwrap_or_else(|e| panic!("{name}: {e}")));
        let expected = std::fs::read(&expected_path).unwrap_or_else(|e| {
            panic!(
                "{name}: {}: {e} (run with BLESS=1)",
                expected_path.display()
            )
        });
        let variants: [(&str, Vec<u8>, Vec<u8>); 3] = [
            ("stored", input.clone(), expected.clone()),
            ("lf", to_lf(&input), to_lf(&expected)),
            ("crlf", to_crlf(&input), to_crlf(&expected)),
        ];
        for (variant, input, expected) in variants {
            let env = envelope(case, &input, &pipeline);
            let first = pipeline.run(&input, &env);
            let out = first.output.to_vec();
            let response = serde_json::to_value(first.actions.to_response()).unwrap();
            let want = expected_response
                .clone()
                .unwrap_or_else(|| serde_json::json!({"actions":[{"action":{"type":"DEFAULT"},"allRecipients":true}]}));
            if response != want {
                failures.push(format!(
                    "{name} ({variant}): response {response}, expected {want}"
                ));
            }
            if out != expected {
                let failed = case.join(format!("actual.{variant}.eml.failed"));
                std::fs::write(&failed, &out).unwrap();
                failures.push(format!(
                    "{name} ({variant}): output differs from expected, see {}",
                    failed.display()
                ));
                continue;
            }
            let violations = rules::check(&out, Some(&input));
            if !violations.is_empty() {
                failures.push(format!(
                    "{name} ({variant}): breaks content rules: {violations:?}"
                ));
            }
            let second = pipeline.run(&out, &env);
            if second.output.to_vec() != out {
                failures.push(format!(
                    "{name} ({variant}): a second pass changed the output ({})",
                    second.summary()
                ));
            }
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} golden failure(s) in {stage}",
        failures.len()
    );
    cases.len()
}

#[test]
fn stamp_header_golden_cases_match_in_lf_and_crlf_and_are_idempotent() {
    assert!(run_stage("stamp_header") > 0);
}

#[test]
fn verdict_golden_cases_never_change_the_message() {
    assert!(run_stage("verdict") > 0);
}

#[test]
fn conditions_golden_cases_change_the_message_only_when_they_hold() {
    assert!(run_stage("conditions") > 0);
}

#[test]
fn disclaimer_golden_cases_match_in_lf_and_crlf_and_are_idempotent() {
    assert!(run_stage("disclaimer") > 0);
}

#[test]
fn subject_tag_golden_cases_match_in_lf_and_crlf_and_are_idempotent() {
    assert!(run_stage("subject_tag") > 0);
}

#[test]
fn strip_attachments_golden_cases_match_in_lf_and_crlf_and_are_idempotent() {
    assert!(run_stage("strip_attachments") > 0);
}

#[test]
fn reading_golden_cases_read_structure_and_text_as_clients_do_and_fail_closed() {
    assert!(run_stage("reading") > 0);
}

#[test]
fn directory_golden_cases_match_in_lf_and_crlf_and_are_idempotent() {
    assert!(run_stage("directory") >= 13);
}
