//! Golden files for `workmail-flow explain`: `tests/explain/<case>/{message.eml,
//! flow.toml, expected.txt}` and, where a case needs an envelope, `event.json`. The
//! explanation of each case must match `expected.txt` exactly. `BLESS=1 cargo test
//! --test explain` rewrites `expected.txt`; a mismatch writes `actual.txt.failed` beside
//! it. Cases are named after what they show: the tricky shapes (signed, forwarded,
//! stripped) an administrator most needs explained.

mod common;

use common::case_envelope as envelope;
use std::path::{Path, PathBuf};
use workmail_flow::explain::{self, TreeStyle};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/explain")
}

fn explain_case(case: &Path) -> String {
    let pipeline = workmail_flow::config::load(&case.join("flow.toml"))
        .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let raw = std::fs::read(case.join("message.eml")).unwrap();
    let env = envelope(case, &raw);
    let result = pipeline.run(&raw, &env);
    explain::render("message.eml", &raw, &env, &result, TreeStyle::Unicode)
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

#[test]
fn explain_output_matches_the_golden_text_of_every_case() {
    let cases = cases();
    assert!(
        cases.len() >= 3,
        "expected the signed, forwarded and stripped cases"
    );
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let actual = explain_case(case);
        let expected_path = case.join("expected.txt");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1)", expected_path.display()));
        if actual != expected {
            let failed = case.join("actual.txt.failed");
            std::fs::write(&failed, &actual).unwrap();
            failures.push(format!(
                "{} differs, see {}",
                case.display(),
                failed.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The golden texts are read by people; these pin the sentences the cases exist for, so a
/// careless BLESS cannot drop them unnoticed.
#[test]
fn the_golden_cases_say_what_they_are_named_for() {
    let want: [(&str, &[&str]); 3] = [
        (
            "signed_body_left_alone_headers_stamped",
            &[
                "signed or encrypted: nothing inside multipart/signed is changed",
                "stage 2 (disclaimer): left alone (last text/plain of the body): inside multipart/signed",
                "stage 3 (strip_attachments): left alone: inside multipart/signed (matches extension p7s)",
                "stage 3 (strip_attachments): cannot be removed",
                "response: BOUNCE for all",
                "stage 1 (stamp_header): added X-WorkMail-Flow",
                "outcome: changed",
            ],
        ),
        (
            "forwarded_message_is_not_body",
            &[
                "not body: attached message",
                "not body: inside an attached message",
                "stage 2 (strip_attachments): stripped: extension exe",
                "stage 1 (disclaimer): disclaimer here (last text/plain of the body)",
            ],
        ),
        (
            "stripped_attachment_and_disclaimer_in_both_bodies",
            &[
                "stage 2 (strip_attachments): stripped: extension exe",
                "stage 2 (strip_attachments): kept: no rule matches",
                "stage 1 (disclaimer): disclaimer here (last text/html of the body), before the closing body tag",
                "stage 1 (disclaimer): disclaimer here (last text/plain of the body), at the bottom",
                "\"update.exe\"",
            ],
        ),
    ];
    for (case, lines) in want {
        let text = explain_case(&cases_dir().join(case));
        for line in lines {
            assert!(text.contains(line), "{case}: missing {line:?} in\n{text}");
        }
    }
}
