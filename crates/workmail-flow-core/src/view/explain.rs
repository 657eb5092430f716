//! What `workmail-flow explain` prints: the message's MIME tree, one part a line, with
//! what each stage decided about each part and why, then the decisions about the message
//! as a whole and the outcome.
//!
//! A pure function of the message and a finished run (no I/O, no terminal), so its
//! output can be tested as text. Stages pin their decisions to parts through
//! [`StageReport::parts`](crate::stage::StageReport::parts); what the tree itself
//! says (a part is an attachment, sits inside an attached message or a signature) is
//! shown on every part even when no stage mentioned it, since that is often the answer
//! to "why did nothing happen here".
//!
//! File names are shown (escaped, quoted): this is the administrator's own terminal,
//! looking at a message they chose. Stage notes themselves never carry names, text or
//! addresses, as in every other report.

use crate::envelope::Envelope;
use crate::flow::pipeline::{Outcome, RunResult};
use crate::message::mime_tree::{MimeTree, Part, PartId, PartKind};
use crate::message::newline::Newline;
use std::fmt::Write as _;

/// How the tree's branches are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TreeStyle {
    /// Box-drawing characters: `├─`, `└─`, `│`.
    #[default]
    Unicode,
    /// ASCII only: `|-`, `` `- ``, `|`, for terminals and tools without UTF-8.
    Ascii,
}

struct Glyphs {
    branch: &'static str,
    last: &'static str,
    pipe: &'static str,
    blank: &'static str,
}

impl TreeStyle {
    fn glyphs(self) -> Glyphs {
        match self {
            TreeStyle::Unicode => Glyphs {
                branch: "├─ ",
                last: "└─ ",
                pipe: "│  ",
                blank: "   ",
            },
            TreeStyle::Ascii => Glyphs {
                branch: "|- ",
                last: "`- ",
                pipe: "|  ",
                blank: "   ",
            },
        }
    }
}

/// The whole explanation of one run of a flow over `raw`, as lines ending in `\n`.
/// `name` titles it (the file name); `result` is the run of the pipeline over `raw`.
pub fn render(
    name: &str,
    raw: &[u8],
    envelope: &Envelope,
    result: &RunResult<'_>,
    style: TreeStyle,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} recipient(s), {} bytes",
        clean(name),
        envelope.recipients.len(),
        raw.len()
    );
    let _ = writeln!(out, "direction: {}", envelope.direction.as_str());
    match MimeTree::parse(raw) {
        Ok(tree) => {
            let _ = writeln!(
                out,
                "{} part(s), {} line endings",
                tree.parts().len(),
                match tree.newline() {
                    Newline::Lf => "LF",
                    Newline::CrLf => "CRLF",
                }
            );
            out.push('\n');
            draw_tree(&mut out, &tree, result, style.glyphs());
        }
        Err(e) => {
            let _ = writeln!(out, "cannot parse: {e}");
        }
    }
    out.push('\n');
    stages_section(&mut out, result);
    out.push('\n');
    let _ = writeln!(out, "outcome: {}", outcome_line(result));
    out
}

/// The tree, depth first, each part followed by its notes.
fn draw_tree(out: &mut String, tree: &MimeTree<'_>, result: &RunResult<'_>, g: Glyphs) {
    // (part, the prefix of its own line, the prefix of the lines under it)
    let mut stack: Vec<(PartId, String, String)> = vec![(0, String::new(), String::new())];
    while let Some((id, own, under)) = stack.pop() {
        let part = tree.part(id);
        let _ = writeln!(out, "{own}{}", part_line(tree, part));
        let children = children_of(part);
        let notes_prefix = format!(
            "{under}{}",
            if children.is_empty() { g.blank } else { g.pipe }
        );
        for note in notes(tree, part, result) {
            let _ = writeln!(out, "{notes_prefix}{note}");
        }
        for (i, &child) in children.iter().enumerate().rev() {
            let last = i + 1 == children.len();
            stack.push((
                child,
                format!("{under}{}", if last { g.last } else { g.branch }),
                format!("{under}{}", if last { g.blank } else { g.pipe }),
            ));
        }
    }
}

fn children_of(part: &Part) -> Vec<PartId> {
    match &part.kind {
        PartKind::Multipart(c) => c.clone(),
        PartKind::Message(Some(c)) => vec![*c],
        _ => Vec::new(),
    }
}

/// `[3] text/plain  utf-8, quoted-printable, 1.2 KiB, attachment, "notes.txt"`
fn part_line(tree: &MimeTree<'_>, part: &Part) -> String {
    let mut attrs: Vec<String> = Vec::new();
    if let Some(c) = &part.charset {
        attrs.push(clean(c));
    }
    if let Some(t) = &part.transfer_encoding {
        attrs.push(clean(t));
    }
    attrs.push(size(tree.body_bytes(part.id).len()));
    if let Some(d) = &part.disposition {
        attrs.push(clean(d));
    }
    for n in &part.names {
        attrs.push(format!("{n:?}"));
    }
    format!(
        "[{}] {}  {}",
        part.id,
        clean(&part.content_type),
        attrs.join(", ")
    )
}

/// What the tree says about a part, then every stage's notes about it.
fn notes(tree: &MimeTree<'_>, part: &Part, result: &RunResult<'_>) -> Vec<String> {
    let mut lines: Vec<String> = derived(tree, part).into_iter().collect();
    for record in &result.stages {
        for n in record.report.notes_for(part.id) {
            lines.push(format!("{}: {}", record.label, n.note));
        }
    }
    lines
}

/// The part's place in the message as RFC 8621 and the signature rules see it, whatever
/// the stages did.
fn derived(tree: &MimeTree<'_>, part: &Part) -> Option<String> {
    if part.is_protection_container() {
        let outer = part.parent.is_some_and(|p| tree.part(p).protected);
        if !outer {
            return Some(format!(
                "signed or encrypted: nothing inside {} is changed",
                part.content_type
            ));
        }
    }
    if part.protected {
        return Some(format!(
            "left alone: inside {}",
            container_of(tree, part).unwrap_or("signed or encrypted content")
        ));
    }
    let attached = matches!(part.kind, PartKind::Message(_)) || part.main_type() == "message";
    if attached {
        let inner = match part.kind {
            PartKind::Message(None) => " (encoded: its parts are not shown or changed)",
            _ => "",
        };
        return Some(format!("not body: attached message{inner}"));
    }
    if part.in_attached_message {
        return Some("not body: inside an attached message".into());
    }
    if !part.is_leaf() {
        return None;
    }
    let in_body = tree.text_body().contains(&part.id) || tree.html_body().contains(&part.id);
    Some(match (in_body, part.content_type.as_str()) {
        (true, "text/plain" | "text/html") => "body text".into(),
        (true, _) => "body: shown inline (RFC 8621)".into(),
        (false, _) => "not body: attachment".into(),
    })
}

/// The outermost signature or encryption container around a part.
fn container_of<'t>(tree: &'t MimeTree<'_>, part: &Part) -> Option<&'t str> {
    let mut found = None;
    let mut cur = Some(part.id);
    while let Some(id) = cur {
        let p = tree.part(id);
        if p.is_protection_container() {
            found = Some(p.content_type.as_str());
        }
        cur = p.parent;
    }
    found
}

/// Each stage's decisions about the message as a whole; decisions a part note restates
/// are on the tree already.
fn stages_section(out: &mut String, result: &RunResult<'_>) {
    if result.stages.is_empty() {
        out.push_str("stages: none ran\n");
    } else {
        out.push_str("stages:\n");
    }
    for record in &result.stages {
        let report = &record.report;
        let mut lines: Vec<String> = report.message_decisions().map(clean).collect();
        if lines.is_empty() {
            let mut ids: Vec<PartId> = report
                .parts
                .iter()
                .filter(|n| n.decision.is_some())
                .map(|n| n.part)
                .collect();
            ids.dedup();
            lines.push(if ids.is_empty() {
                "no decision reported".to_string()
            } else {
                let list: Vec<String> = ids.iter().map(|i| format!("[{i}]")).collect();
                let noun = if list.len() == 1 { "part" } else { "parts" };
                format!("see {noun} {}", list.join(", "))
            });
        }
        for line in lines {
            let _ = writeln!(out, "  {}: {line}", record.label);
        }
    }
    if !result.repairs.is_empty() {
        let _ = writeln!(out, "repairs: {}", result.repairs.join("; "));
    }
    if !result.findings.is_empty() {
        out.push_str("ambiguous (readers could read these two ways):\n");
        for f in &result.findings {
            let _ = writeln!(out, "  {}", clean(f));
        }
    }
    if !result.actions.entries().is_empty() {
        let _ = writeln!(out, "response: {}", result.actions.describe());
    }
}

fn outcome_line(result: &RunResult<'_>) -> String {
    match &result.outcome {
        Outcome::Unchanged => {
            "unchanged: no stage changed the message; it goes on as it is".to_string()
        }
        Outcome::Changed => {
            "changed: the rewritten message passes WorkMail's content rules".to_string()
        }
        Outcome::KeptOriginal(why) => {
            format!(
                "kept original: {}; the message goes on unchanged",
                clean(why)
            )
        }
        Outcome::NotAMessage(why) => {
            format!("not a message: {}; it goes on unchanged", clean(why))
        }
    }
}

/// A size for a person: bytes below 10 KiB, then KiB and MiB with one decimal.
fn size(n: usize) -> String {
    const KIB: f64 = 1024.0;
    match n {
        0..10_240 => format!("{n} B"),
        10_240..1_048_576 => format!("{:.1} KiB", n as f64 / KIB),
        _ => format!("{:.1} MiB", n as f64 / (KIB * KIB)),
    }
}

/// Text from the message made safe for a terminal: control characters (escape
/// sequences, line breaks) shown as `\u{..}` escapes.
fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Direction;
    use crate::stage::StageRegistry;
    use crate::testing;

    fn explain(flow: &str, raw: &[u8], style: TreeStyle) -> String {
        let pipeline = testing::config(flow, &StageRegistry::builtin()).unwrap();
        let envelope = Envelope::from_message(raw, Direction::Inbound);
        let result = pipeline.run(raw, &envelope);
        render("m.eml", raw, &envelope, &result, style)
    }

    const MIXED: &[u8] = b"From: a@example.com\nTo: b@example.net\nSubject: hi\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain; charset=utf-8\n\nhello\n--B\nContent-Type: application/octet-stream; name=\"run.exe\"\nContent-Disposition: attachment\nContent-Transfer-Encoding: base64\n\nAAAA\n--B--\n";

    const STRIP_EXE: &str = "[[stage]]\ntype = \"strip_attachments\"\nextensions = [\"exe\"]\n";

    #[test]
    fn each_part_gets_its_line_with_type_charset_encoding_size_and_name() {
        let text = explain("", MIXED, TreeStyle::Unicode);
        assert!(text.contains("[0] multipart/mixed  "), "{text}");
        assert!(text.contains("├─ [1] text/plain  utf-8, 5 B\n"), "{text}");
        assert!(
            text.contains(
                "└─ [2] application/octet-stream  base64, 4 B, attachment, \"run.exe\"\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_stripped_part_carries_the_stage_and_the_rule_on_its_own_line() {
        let text = explain(STRIP_EXE, MIXED, TreeStyle::Unicode);
        let after_exe = text.split("\"run.exe\"\n").nth(1).unwrap();
        let notes: Vec<&str> = after_exe.lines().take(2).collect();
        assert_eq!(
            notes,
            [
                "      not body: attachment",
                "      stage 1 (strip_attachments): stripped: extension exe"
            ],
            "{text}"
        );
        assert!(
            text.contains("  stage 1 (strip_attachments): see part [2]\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "outcome: changed: the rewritten message passes WorkMail's content rules\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn derived_marks_appear_without_any_stage() {
        let text = explain("", MIXED, TreeStyle::Unicode);
        assert!(text.contains("│     body text\n"), "{text}");
        assert!(text.contains("      not body: attachment\n"), "{text}");
        assert!(text.contains("stages: none ran\n"), "{text}");
        assert!(text.contains("outcome: unchanged"), "{text}");
    }

    #[test]
    fn ascii_style_draws_no_byte_above_127() {
        let text = explain(STRIP_EXE, MIXED, TreeStyle::Ascii);
        assert!(text.is_ascii(), "{text}");
        assert!(text.contains("|- [1] text/plain"), "{text}");
        assert!(text.contains("`- [2] application/octet-stream"), "{text}");
    }

    #[test]
    fn control_characters_in_names_cannot_reach_the_terminal() {
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nx\n--B\nContent-Type: application/octet-stream; name=\"=?utf-8?Q?a=1B[2Jb.exe?=\"\n\nAAAA\n--B--\n";
        let text = explain("", raw, TreeStyle::Unicode);
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("\\u{1b}[2Jb.exe"), "{text}");
    }

    #[test]
    fn a_kept_original_outcome_says_why_and_that_the_message_goes_on_unchanged() {
        let long = format!("X-Long: {}", "x".repeat(1200));
        let flow = format!(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-Long\"\nvalue = \"{}\"\n",
            "y".repeat(1200)
        );
        let raw = format!("From: a@example.com\n{long}\n\nbody\n");
        let text = explain(&flow, raw.as_bytes(), TreeStyle::Unicode);
        let outcome = text.lines().last().unwrap();
        assert!(outcome.starts_with("outcome: kept original: "), "{text}");
        assert!(
            outcome.ends_with("; the message goes on unchanged"),
            "{text}"
        );
    }

    #[test]
    fn empty_input_and_a_picture_are_explained_as_not_a_message() {
        let text = explain(STRIP_EXE, b"", TreeStyle::Unicode);
        assert!(
            text.contains("outcome: not a message: the input is empty"),
            "{text}"
        );
        let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00";
        let text = explain(STRIP_EXE, png, TreeStyle::Unicode);
        assert!(
            text.contains("outcome: not a message: the input is a PNG image"),
            "{text}"
        );
        assert!(!text.contains("passes"), "{text}");
    }

    #[test]
    fn sizes_read_as_bytes_then_kib_then_mib() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(10_240), "10.0 KiB");
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
