//! Inputs the fuzzers (`fuzz/`) found, kept so that `cargo test` holds every fix without
//! the fuzzer. Each file in `tests/fuzz_regressions/` runs through the full config
//! (`benches/full.toml`) and must keep the fuzz targets' invariants: it completes (no
//! panic, no runaway memory), a changed message passes the content rules against its
//! input, an unchanged one is the input byte for byte, and a second pass changes nothing.
//! The tests after that pin down what each fix is for.

use std::path::{Path, PathBuf};
use workmail_flow::mime_tree::MimeTree;
use workmail_flow::{Direction, Envelope, Outcome, Pipeline, StageRegistry, config, rules};

fn full_config() -> Pipeline {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/full.toml");
    config::load_with(&path, &StageRegistry::builtin()).unwrap()
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn run(p: &Pipeline, raw: &[u8]) -> (Outcome, Vec<u8>, String) {
    let r = p.run(raw, &Envelope::from_message(raw, Direction::Inbound));
    (r.outcome.clone(), r.output.to_vec(), r.summary())
}

#[test]
fn every_saved_fuzz_input_keeps_the_invariants() {
    let p = full_config();
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "the saved inputs are missing: {names:?}");
    for name in names {
        let raw = read(&name);
        let (outcome, out, summary) = run(&p, &raw);
        if outcome != Outcome::Changed {
            assert!(out == raw, "{name}: {summary}");
            continue;
        }
        assert_eq!(rules::check(&out, Some(&raw)), vec![], "{name}: {summary}");
        let (_, again, summary2) = run(&p, &out);
        assert!(again == out, "{name}: a second pass changed it: {summary2}");
    }
}

#[test]
fn a_multipart_the_parser_lists_among_its_own_children_is_walked_once() {
    // Once an endless walk that took all memory: mail-parser read a broken attached
    // message as a multipart whose children are [itself, next].
    let raw = read("multipart_listing_itself_as_child.eml");
    let tree = MimeTree::parse(&raw).unwrap();
    assert!(tree.parts().len() < 64, "{} parts", tree.parts().len());
}

#[test]
fn a_message_whose_only_line_is_not_a_field_is_not_a_message_and_passes_unchanged() {
    // "Frhm\x01o" has no colon: there is no header field at all. Once this got a header
    // section in front; since issue 11, input with no header fields is "not a message",
    // passed through as it came (security stages failing closed).
    let raw = read("header_without_any_line_break.eml");
    let (outcome, out, summary) = run(&full_config(), &raw);
    assert!(matches!(outcome, Outcome::NotAMessage(_)), "{summary}");
    assert!(out == raw);
}

#[test]
fn a_stripped_header_only_message_gets_its_notice_after_an_empty_line() {
    let raw = read("header_only_message_whose_root_is_stripped.eml");
    let (outcome, out, summary) = run(&full_config(), &raw);
    assert_eq!(outcome, Outcome::Changed, "{summary}");
    let text = String::from_utf8_lossy(&out);
    let notice = text
        .find("An attachment was removed")
        .expect("the notice is in the output");
    let before = &text[..notice];
    assert!(
        before.ends_with("\n\n") || before.ends_with("\n\r\n"),
        "the header ends with an empty line before the notice: {before:?}"
    );
    assert!(before.contains("X-WorkMail-Flow: processed"), "{summary}");
}

#[test]
fn a_tail_without_its_final_boundary_gets_one_disclaimer_in_all() {
    let raw = read("unterminated_tail_reencoded_by_first_pass.eml");
    let p = full_config();
    let (_, once, _) = run(&p, &raw);
    let (_, twice, _) = run(&p, &once);
    let count = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .matches("Confidential: this message from")
            .count()
    };
    assert_eq!(count(&twice), count(&once));
    assert!(count(&once) <= 1);
}

#[test]
fn a_message_without_a_header_section_is_not_a_message_and_a_second_pass_agrees() {
    // Stamping the top of it once made the second pass find a header and change it
    // again. Its first line is not a field, so readers see no header: it is not a
    // message, and passes unchanged, every time.
    let raw = read("corpus_mutation_without_a_readable_header.eml");
    let (outcome, out, summary) = run(&full_config(), &raw);
    assert!(matches!(outcome, Outcome::NotAMessage(_)), "{summary}");
    assert!(out == raw);
}

#[test]
fn a_message_whose_first_line_is_white_space_is_delivered_as_it_came() {
    // Python reads a header after it, other parsers none: a field in front would
    // change how one or the other reads the message.
    let raw = b"   \r\nFrom: a@partner.example\r\nSubject: hi\r\n\r\nbody\r\n";
    let (outcome, out, _) = run(&full_config(), raw);
    assert_eq!(
        outcome,
        Outcome::KeptOriginal(
            "readers disagree on where the header is (the first line starts with white space)"
                .into()
        )
    );
    assert!(out == raw);
}

#[test]
fn a_stamp_after_a_removed_last_field_without_a_line_break_stays_in_the_header() {
    // The message ends in a second Subject field without a line break; subject_tag
    // removes it, and the stamp once came after an extra line break, in the body.
    let raw = read("last_field_removed_without_a_line_break_keeps_the_stamp_in_the_header.eml");
    let (_, out, summary) = run(&full_config(), &raw);
    let tree = MimeTree::parse(&out).unwrap();
    assert!(
        tree.root()
            .fields
            .iter()
            .any(|f| f.name == "X-WorkMail-Flow"),
        "{summary}"
    );
}

#[test]
fn a_text_part_named_only_by_a_second_field_gets_no_disclaimer() {
    // strip_attachments, deciding on every reading, strips it; a disclaimer written into
    // it was lost, and the second pass added one to another part.
    let raw = read("text_part_named_only_in_a_second_reading_gets_no_disclaimer.eml");
    let p = full_config();
    let (_, once, _) = run(&p, &raw);
    let (_, twice, summary) = run(&p, &once);
    assert!(twice == once, "{summary}");
}
