//! Properties over every message of the real-world corpus (`../shared/corpus`): the
//! editor gives back the exact bytes when nothing changes, and a header stamp changes
//! only what it should and passes WorkMail's content rules.

mod common;

use std::path::Path;
use workmail_flow::event::{Direction, Envelope};
use workmail_flow::pipeline::{Outcome, Pipeline};
use workmail_flow::stage::StageRegistry;
use workmail_flow::{config, rules};

const STAMP: &str =
    "[[stage]]\ntype = \"stamp_header\"\nname = \"X-WorkMail-Flow\"\nvalue = \"processed\"\n";

fn pipeline(text: &str) -> Pipeline {
    config::parse(
        text,
        Path::new("test.toml"),
        Path::new("."),
        &StageRegistry::builtin(),
    )
    .unwrap()
}

#[test]
fn every_corpus_message_round_trips_byte_identical_with_no_stages() {
    let empty = pipeline("");
    for (name, raw) in common::corpus_messages() {
        let env = Envelope::from_message(&raw, Direction::Inbound);
        let result = empty.run(&raw, &env);
        // mime4j's malformedHeader-noheader has no header at all: not a message.
        assert!(
            matches!(result.outcome, Outcome::Unchanged | Outcome::NotAMessage(_)),
            "{name}: {:?}",
            result.outcome
        );
        assert!(
            result.output.to_vec() == raw,
            "{name}: bytes changed with no stages"
        );
    }
}

#[test]
fn every_corpus_message_with_a_header_parses_and_the_editor_with_no_edits_is_identity() {
    let mut headerless = 0;
    for (name, raw) in common::corpus_messages() {
        match workmail_flow::mime_tree::MimeTree::parse(&raw) {
            Ok(tree) => {
                let out = workmail_flow::edit::Edits::new().apply(&tree).unwrap();
                assert!(out.to_vec() == raw, "{name}");
            }
            Err(e) => {
                // Only text with no header block at all may be refused.
                let (fields, _) = workmail_flow::header_field::read_header_block(&raw);
                assert!(
                    fields.iter().all(|f| f.name.is_empty()),
                    "{name}: has header fields but did not parse: {e}"
                );
                headerless += 1;
            }
        }
    }
    assert!(headerless <= 2, "{headerless} messages did not parse");
}

/// Removes the first occurrence of `needle` from `hay`.
fn without(hay: &[u8], needle: &[u8]) -> Option<Vec<u8>> {
    let pos = hay.windows(needle.len()).position(|w| w == needle)?;
    Some([&hay[..pos], &hay[pos + needle.len()..]].concat())
}

/// Every leaf part's decoded content, in order.
fn decoded_leaves(raw: &[u8]) -> Vec<Vec<u8>> {
    let m = mail_parser::MessageParser::default().parse(raw).unwrap();
    m.parts
        .iter()
        .filter(|p| !p.is_multipart())
        .map(|p| p.contents().to_vec())
        .collect()
}

#[test]
fn a_stamp_changes_only_the_stamp_line_plus_repairs_and_passes_the_content_rules() {
    let stamp = pipeline(STAMP);
    let (mut changed, mut repaired, mut kept) = (0, 0, Vec::new());
    let mut not_messages = Vec::new();
    for (name, raw) in common::corpus_messages() {
        let env = Envelope::from_message(&raw, Direction::Inbound);
        let result = stamp.run(&raw, &env);
        let out = result.output.to_vec();
        let violations = rules::check(&out, Some(&raw));
        assert!(violations.is_empty(), "{name}: {violations:?}");
        match &result.outcome {
            Outcome::Changed => {
                changed += 1;
                let nl: &[u8] = if raw.windows(2).any(|w| w == b"\r\n")
                    && workmail_flow::newline::Newline::detect(&raw)
                        == workmail_flow::newline::Newline::CrLf
                {
                    b"\r\n"
                } else {
                    b"\n"
                };
                let line = [b"X-WorkMail-Flow: processed".as_slice(), nl].concat();
                let mut rest =
                    without(&out, &line).unwrap_or_else(|| panic!("{name}: no stamp line"));
                // A message with no header section gets one: the stamp and the empty
                // line that ends it.
                if rest != raw
                    && let Some(r) = without(&out, &[line.as_slice(), nl].concat())
                    && r == raw
                {
                    rest = r;
                }
                if result.repairs.is_empty() {
                    assert!(rest == raw, "{name}: differs by more than the stamp line");
                } else {
                    repaired += 1;
                    assert_eq!(
                        decoded_leaves(&rest),
                        decoded_leaves(&raw),
                        "{name}: a repair changed decoded content"
                    );
                }
                // A second pass changes nothing.
                let again = stamp.run(&out, &env);
                assert_eq!(again.outcome, Outcome::Unchanged, "{name}: second pass");
            }
            Outcome::KeptOriginal(why) => {
                assert!(out == raw, "{name}");
                kept.push(format!("{name}: {why}"));
            }
            Outcome::NotAMessage(why) => {
                assert!(out == raw, "{name}");
                not_messages.push(format!("{name}: {why}"));
            }
            Outcome::Unchanged => panic!("{name}: stamp did nothing: {}", result.summary()),
        }
    }
    eprintln!(
        "stamped {changed} (of which {repaired} repaired), kept original {}, not a message {}",
        kept.len(),
        not_messages.len()
    );
    eprintln!("not messages: {not_messages:#?}");
    for k in &kept {
        eprintln!("  kept: {k}");
    }
    assert!(changed > 300, "only {changed} messages were stamped");
}

#[test]
fn no_corpus_message_makes_check_or_the_pipeline_panic_even_truncated() {
    let stamp = pipeline(STAMP);
    for (name, raw) in common::corpus_messages() {
        // Cut mid-message: broken MIME from the middle of a good message.
        for cut in [raw.len() / 3, raw.len() / 2, raw.len().saturating_sub(7)] {
            let piece = &raw[..cut];
            let env = Envelope::from_message(piece, Direction::Inbound);
            let result = stamp.run(piece, &env);
            let out = result.output.to_vec();
            assert!(
                rules::check(&out, Some(piece)).is_empty(),
                "{name} cut at {cut}: {}",
                result.summary()
            );
        }
    }
}
