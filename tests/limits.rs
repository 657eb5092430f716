//! Messages at and past the limits (see `crates/workmail-flow-core/src/rules/limits.rs`) have clear outcomes: delivered
//! unchanged with the reason, or changed and still within WorkMail's content rules, and
//! never a panic. Every input is generated here.

use std::path::Path;
use workmail_flow::limits::{MAX_ATTACHMENTS, MAX_DEPTH, MAX_MESSAGE_BYTES};
use workmail_flow::{Direction, Envelope, Outcome, Pipeline, StageRegistry, config, rules};

/// Every built-in stage: the config the benchmarks run.
fn full_config() -> Pipeline {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/full.toml");
    config::load_with(&path, &StageRegistry::builtin()).unwrap()
}

fn run(raw: &[u8]) -> (Outcome, Vec<u8>, String) {
    let r = full_config().run(raw, &Envelope::from_message(raw, Direction::Inbound));
    (r.outcome.clone(), r.output.to_vec(), r.summary())
}

/// The outcome is Changed, the output passes the content rules against the input, and a
/// second pass over it changes nothing.
fn assert_changed_valid_and_stable(raw: &[u8]) -> Vec<u8> {
    let (outcome, out, summary) = run(raw);
    assert_eq!(outcome, Outcome::Changed, "{summary}");
    assert_eq!(rules::check(&out, Some(raw)), vec![], "{summary}");
    let (again, out2, summary2) = run(&out);
    assert_eq!(again, Outcome::Unchanged, "second pass: {summary2}");
    assert_eq!(out2, out);
    out
}

fn assert_kept(raw: &[u8], reason: &str) {
    let (outcome, out, summary) = run(raw);
    match outcome {
        Outcome::KeptOriginal(why) => assert!(why.contains(reason), "{why}"),
        other => panic!("expected the original kept ({reason}), got {other:?}: {summary}"),
    }
    assert!(out == raw, "the original is delivered byte for byte");
}

const HEAD: &str = "From: Alice <alice@partner.example>\r\nTo: bob@corp.example\r\nSubject: limits\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000\r\nMessage-ID: <limits@partner.example>\r\nMIME-Version: 1.0\r\n";

/// A multipart/mixed message: a text body, then `parts`.
fn mixed(parts: &[String]) -> Vec<u8> {
    let mut m = format!(
        "{HEAD}Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Bob,\r\nthe files.\r\n"
    );
    for p in parts {
        m.push_str("--outer\r\n");
        m.push_str(p);
    }
    m.push_str("--outer--\r\n");
    m.into_bytes()
}

fn attachment(i: usize) -> String {
    format!(
        "Content-Type: application/pdf; name=\"doc{i}.pdf\"\r\nContent-Disposition: attachment; filename=\"doc{i}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjcK\r\n"
    )
}

#[test]
fn a_message_over_40_mb_is_delivered_unchanged_with_the_size_in_the_reason() {
    let line = format!("{}\r\n", "QUJD".repeat(19));
    let mut raw = mixed(&[]);
    let body_at = raw.len() - "--outer--\r\n".len();
    let mut big = String::from(
        "--outer\r\nContent-Type: application/pdf; name=big.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    while big.len() <= MAX_MESSAGE_BYTES {
        big.push_str(&line);
    }
    raw.splice(body_at..body_at, big.into_bytes());
    assert!(raw.len() > MAX_MESSAGE_BYTES);
    assert_kept(
        &raw,
        &format!("message is {} bytes, over the limit", raw.len()),
    );
}

#[test]
fn five_hundred_attachments_are_processed_and_five_hundred_and_one_are_left_alone() {
    let at_limit: Vec<String> = (0..MAX_ATTACHMENTS).map(attachment).collect();
    let out = assert_changed_valid_and_stable(&mixed(&at_limit));
    assert!(out.windows(12).any(|w| w == b"Confidential"));

    let over: Vec<String> = (0..=MAX_ATTACHMENTS).map(attachment).collect();
    assert_kept(
        &mixed(&over),
        "message has 501 attachments, over the limit of 500",
    );
}

/// `depth` multiparts inside each other around a text body; the body is at `depth`.
fn nested_multiparts(depth: usize) -> Vec<u8> {
    let mut m = String::from(HEAD);
    for d in 0..depth {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{d}\"\r\n\r\n--b{d}\r\n"
        ));
    }
    m.push_str("Content-Type: text/plain\r\n\r\ndeep body\r\n");
    for d in (0..depth).rev() {
        m.push_str(&format!("--b{d}--\r\n"));
    }
    m.into_bytes()
}

#[test]
fn nesting_at_the_limit_is_processed_and_one_level_deeper_is_left_alone() {
    assert_changed_valid_and_stable(&nested_multiparts(MAX_DEPTH));
    assert_kept(
        &nested_multiparts(MAX_DEPTH + 1),
        "message nests parts 101 deep, over the limit of 100",
    );
}

#[test]
fn ten_thousand_nested_multiparts_end_in_a_reason_not_a_stack_overflow() {
    assert_kept(&nested_multiparts(10_000), "over the limit of 100");
}

/// `levels` message/rfc822 parts inside each other, each base64-encoded: the parser opens
/// three and keeps the rest as bytes.
fn nested_base64_messages(levels: usize) -> Vec<u8> {
    use base64::Engine;
    let mut inner = format!("{HEAD}Content-Type: text/plain\r\n\r\ninnermost\r\n").into_bytes();
    for _ in 0..levels {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&inner);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        inner = mixed(&[format!(
            "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            lines.join("\r\n")
        )]);
    }
    inner
}

#[test]
fn base64_attached_messages_nested_deeper_than_the_parser_opens_stay_byte_identical() {
    let raw = nested_base64_messages(6);
    let out = assert_changed_valid_and_stable(&raw);
    // The outermost attached message (all the levels inside it) is one base64 block that
    // must come through as it was.
    let start = raw
        .windows(6)
        .position(|w| w == b"base64")
        .expect("a base64 part")
        + 10;
    let end = raw.len() - "--outer--\r\n".len();
    let block = &raw[start..end];
    assert!(out.windows(block.len()).any(|w| w == block));
}

/// Broken parts of several kinds, each between a good text body and a good .exe
/// attachment and HTML part: the good parts are still processed, the broken part's bytes
/// come through untouched.
#[test]
fn a_malformed_part_in_the_middle_of_a_good_message_does_not_stop_the_others() {
    let broken = [
        // Base64 with characters outside the alphabet and a wrong length.
        "Content-Type: application/pdf; name=\"bad.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%%not base64 at all!!\r\nQUJ\r\n",
        // A header line without a colon, then a body.
        "Content-Type: application/octet-stream; name=\"x.bin\"\r\nthis line is not a field\r\n\r\nbytes\r\n",
        // A multipart that declares no boundary.
        "Content-Type: multipart/mixed\r\n\r\n--nothing\r\nContent-Type: text/plain\r\n\r\norphan\r\n",
        // A nested multipart whose close delimiter never comes.
        "Content-Type: multipart/alternative; boundary=\"never-closed\"\r\n\r\n--never-closed\r\nContent-Type: text/plain\r\n\r\nhalf\r\n",
        // An unknown transfer encoding and charset in a named text attachment.
        "Content-Type: text/plain; charset=x-unknown-charset; name=\"notes.txt\"\r\nContent-Transfer-Encoding: x-gibberish\r\n\r\n\u{1}\u{2}\u{3}\r\n",
        // An attached message whose header block is cut off.
        "Content-Type: message/rfc822\r\n\r\nFrom: someone\r\nSubject: cut\r\n",
        // NUL bytes and a bare CR in the middle of a part.
        "Content-Type: application/octet-stream; name=\"nul.bin\"\r\n\r\na\u{0}b\rc\u{0}\r\n",
    ];
    for (i, bad) in broken.iter().enumerate() {
        let raw = mixed(&[
            bad.to_string(),
            "Content-Type: application/x-msdownload; name=\"setup.exe\"\r\nContent-Disposition: attachment; filename=\"setup.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n".to_string(),
            "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello</p></body></html>\r\n".to_string(),
        ]);
        let (outcome, out, summary) = run(&raw);
        assert_eq!(outcome, Outcome::Changed, "case {i}: {summary}");
        assert_eq!(rules::check(&out, Some(&raw)), vec![], "case {i}");
        let text = String::from_utf8_lossy(&out);
        // Every case, 3 and 5 included: an unclosed inner multipart ends at the outer
        // boundary, as readers end it, so the .exe after it is a part of its own.
        assert!(
            !text.contains("TVqQAAMAAAAEAAAA"),
            "case {i}: the .exe was stripped: {summary}"
        );
        let bad_bytes = bad.as_bytes();
        assert!(
            out.windows(bad_bytes.len()).any(|w| w == bad_bytes),
            "case {i}: the malformed part is untouched"
        );
        let (_, out2, summary2) = run(&out);
        assert_eq!(out2, out, "case {i}: second pass: {summary2}");
    }
}
