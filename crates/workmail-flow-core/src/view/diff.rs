//! What a run changed, as a unified diff a person can read: the top-level header block
//! (one field a line, unfolded) and, for each part whose bytes changed, that part's
//! header fields and its decoded text. `replay --diff` prints it.
//!
//! Both messages are parsed and their parts matched by position in the tree (a rewrite
//! keeps the tree's shape: a stripped attachment is a notice part where it stood, an
//! attached message replaced whole is one part where the subtree was). Text is compared
//! after transfer and charset decoding, so a disclaimer shows as the lines it added, not
//! as a changed block of base64. Binary parts are named with their size, never dumped.
//! Control characters other than tab are escaped so message text cannot drive the
//! terminal.
//!
//! This shows message content: it is for an administrator's own terminal, never for logs.

use crate::message::mime_tree::{MimeTree, Part, PartId, PartKind, field_text};
use similar::TextDiff;
use std::fmt::Write as _;
use std::time::Duration;

/// How long one part's diff may take before the diff algorithm settles for a correct
/// but longer diff (huge parts with many changes).
const DIFF_TIMEOUT: Duration = Duration::from_secs(2);

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// The unified diff from `original` to `output`; empty when they are byte-identical.
/// `name` labels the sides (`name (original)`, `name (output)`).
pub fn unified(name: &str, original: &[u8], output: &[u8]) -> String {
    if original == output {
        return String::new();
    }
    let (before, after) = match (MimeTree::parse(original), MimeTree::parse(output)) {
        (Ok(b), Ok(a)) => (b, a),
        _ => {
            // Not a message on one side: compare the bytes as text.
            return diff_text(
                &format!("{name} (original)"),
                &format!("{name} (output)"),
                &clean(&String::from_utf8_lossy(original)),
                &clean(&String::from_utf8_lossy(output)),
            );
        }
    };
    let mut out = diff_text(
        &format!("{name} headers (original)"),
        &format!("{name} headers (output)"),
        &header_view(&before, 0),
        &header_view(&after, 0),
    );
    let before_paths = paths(&before);
    let after_paths = paths(&after);
    for part in before.parts() {
        let Some(other) = after_paths.iter().position(|p| *p == before_paths[part.id]) else {
            continue; // inside a subtree that was replaced whole: shown with its root
        };
        let other = after.part(other);
        if !(opaque(part) || opaque(other))
            || part_bytes(&before, part) == part_bytes(&after, other)
        {
            continue;
        }
        let label = |p: &Part| format!("{name} [{}] {}", p.id, clean(&p.content_type));
        let (a, b) = (part_view(&before, part), part_view(&after, other));
        if a == b {
            let _ = writeln!(
                out,
                "--- {}\n+++ {}\n(bytes re-encoded; the decoded text is the same)",
                label(part),
                label(other)
            );
        } else {
            out.push_str(&diff_text(
                &format!("{} (original)", label(part)),
                &format!("{} (output)", label(other)),
                &a,
                &b,
            ));
        }
    }
    out
}

fn diff_text(old_label: &str, new_label: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(old, new)
        .unified_diff()
        .context_radius(CONTEXT)
        .missing_newline_hint(false)
        .header(old_label, new_label)
        .to_string()
}

/// Each part's position: the child indexes leading to it from the root (an attached
/// message's root is child 0 of its message part).
fn paths(tree: &MimeTree<'_>) -> Vec<Vec<usize>> {
    let mut paths: Vec<Vec<usize>> = vec![Vec::new(); tree.parts().len()];
    for part in tree.parts() {
        let children: Vec<PartId> = match &part.kind {
            PartKind::Multipart(c) => c.clone(),
            PartKind::Message(Some(c)) => vec![*c],
            _ => continue,
        };
        for (i, c) in children.into_iter().enumerate() {
            let mut p = paths[part.id].clone();
            p.push(i);
            paths[c] = p;
        }
    }
    paths
}

/// A part whose content is compared as a whole (its children, if any, are not in the
/// tree): leaves and attached messages the parser could not open in place.
fn opaque(p: &Part) -> bool {
    p.is_leaf() || p.kind == PartKind::Message(None)
}

/// The bytes that describe a part: its header block (not for the top level, whose
/// header is diffed on its own) and its body.
fn part_bytes<'a>(tree: &MimeTree<'a>, p: &Part) -> (&'a [u8], &'a [u8]) {
    let raw = tree.raw();
    let header = if p.id == 0 {
        &raw[0..0]
    } else {
        &raw[p.header.start.min(raw.len())..p.header.end.min(raw.len())]
    };
    (header, tree.body_bytes(p.id))
}

/// A header block as lines `Name: value`, each field unfolded.
fn header_view(tree: &MimeTree<'_>, id: PartId) -> String {
    let mut out = String::new();
    for f in &tree.part(id).fields {
        let _ = writeln!(out, "{}: {}", f.name, field_text(tree.raw(), f));
    }
    clean(&out)
}

/// A part's header fields (not for the top level), a blank line, and its decoded text,
/// or a one-line description of a binary body.
fn part_view(tree: &MimeTree<'_>, p: &Part) -> String {
    let mut out = if p.id == 0 {
        String::new()
    } else {
        header_view(tree, p.id) + "\n"
    };
    match tree.decoded_text(p.id) {
        Some(text) if matches!(p.kind, PartKind::Text | PartKind::Html) => {
            let text = clean(&text.replace("\r\n", "\n"));
            out.push_str(&text);
            if !text.is_empty() && !text.ends_with('\n') {
                out.push('\n');
            }
        }
        _ => {
            let _ = writeln!(
                out,
                "[{} body, {} bytes as encoded, not shown]",
                clean(&p.content_type),
                tree.body_bytes(p.id).len()
            );
        }
    }
    out
}

/// Control characters other than line feed and tab as `\u{..}` escapes.
fn clean(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
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

    const QP: &[u8] = b"From: a@example.com\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n--B\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--B--\r\n";

    #[test]
    fn identical_messages_give_no_diff() {
        assert_eq!(unified("m", QP, QP), "");
    }

    #[test]
    fn a_changed_text_part_is_diffed_as_decoded_text_and_untouched_parts_not_at_all() {
        let out = String::from_utf8(QP.to_vec()).unwrap().replace(
            "Gr=C3=BC=C3=9Fe\r\n",
            "Gr=C3=BC=C3=9Fe\r\n\r\n--=20\r\nConfidential.\r\n",
        );
        let diff = unified("m.eml", QP, out.as_bytes());
        assert_eq!(
            diff,
            "--- m.eml [1] text/plain (original)\n+++ m.eml [1] text/plain (output)\n@@ -2,3 +2,6 @@\n Content-Transfer-Encoding: quoted-printable\n \n Grüße\n+\n+-- \n+Confidential.\n"
        );
    }

    #[test]
    fn header_changes_show_one_unfolded_field_a_line() {
        let out = String::from_utf8(QP.to_vec()).unwrap().replace(
            "Subject: hi\r\n",
            "Subject: [EXT]\r\n hi\r\nX-Flow: yes\r\n",
        );
        let diff = unified("m.eml", QP, out.as_bytes());
        assert!(
            diff.contains("-Subject: hi\n+Subject: [EXT] hi\n+X-Flow: yes\n"),
            "{diff}"
        );
        assert!(diff.starts_with("--- m.eml headers (original)\n+++ m.eml headers (output)\n"));
        assert!(!diff.contains("[1] text/plain"), "{diff}");
    }

    #[test]
    fn a_replaced_binary_part_is_named_not_dumped() {
        let out = String::from_utf8(QP.to_vec()).unwrap().replace(
            "Content-Type: application/pdf; name=r.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==",
            "Content-Type: text/plain; charset=utf-8\r\n\r\nremoved",
        );
        let diff = unified("m.eml", QP, out.as_bytes());
        assert!(
            diff.contains("-[application/pdf body, 8 bytes as encoded, not shown]\n"),
            "{diff}"
        );
        assert!(diff.contains("+removed\n"), "{diff}");
        assert!(!diff.contains("JVBERg"), "{diff}");
    }

    #[test]
    fn a_part_only_re_encoded_says_so_instead_of_an_empty_diff() {
        let a = b"Subject: x\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n--B--\n";
        let b = b"Subject: x\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVs\nbG8=\n--B--\n";
        assert_eq!(
            unified("m", a, b),
            "--- m [1] text/plain\n+++ m [1] text/plain\n(bytes re-encoded; the decoded text is the same)\n"
        );
    }

    #[test]
    fn an_attached_message_replaced_whole_is_one_change_not_one_per_inner_part() {
        let a = b"Subject: x\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nhi\n--B\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner text\n--B--\n";
        let b = b"Subject: x\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nhi\n--B\nContent-Type: text/plain\n\nremoved\n--B--\n";
        let diff = unified("m", a, b);
        assert_eq!(diff.matches("\n+++ ").count(), 1, "{diff}");
        assert!(
            diff.contains("--- m [2] message/rfc822 (original)\n+++ m [2] text/plain (output)\n"),
            "{diff}"
        );
        assert!(diff.contains("-[message/rfc822 body, "), "{diff}");
        assert!(!diff.contains("inner text"), "{diff}");
    }

    #[test]
    fn escape_sequences_in_text_are_shown_escaped() {
        let a = b"Subject: x\n\nhello\n";
        let b = b"Subject: x\n\nhello\n\x1b[2Jbye\n";
        let diff = unified("m", a, b);
        assert!(!diff.contains('\u{1b}'), "{diff:?}");
        assert!(diff.contains("+\\u{1b}[2Jbye\n"), "{diff}");
    }
}
