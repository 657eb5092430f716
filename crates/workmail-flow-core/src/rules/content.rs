//! WorkMail's content rules for a message that is put back (see WORKMAIL.md), checked
//! before WorkMail checks them, and the repairs that keep a changed message within them
//! without changing what it says.

use crate::message::edit::{Edits, HeaderOp};
use crate::message::header_field::{self, ONCE_ONLY_FIELDS};
use crate::message::mime_tree::{MimeTree, PartId, PartKind};
use crate::message::newline::Newline;
use crate::message::transfer::{self, TransferEncoding};
use std::collections::BTreeMap;
use std::fmt;

/// RFC 5321: at most 1,000 characters with the CRLF, so 998 before the line break.
pub const MAX_LINE: usize = 998;

/// Fields a message must keep when the original had them.
pub const REQUIRED_FIELDS: &[&str] = &["From", "Date"];

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A line longer than 998 bytes before its line break.
    LongLine {
        line: usize,
        offset: usize,
        length: usize,
    },
    /// A required field is missing.
    MissingField { name: String },
    /// A once-only field appears more than once.
    RepeatedField { name: String, count: usize },
    /// An identity or trace field differs from the original.
    ChangedField { name: String },
    /// The input is not a message at all (see [`crate::message::sniff`]).
    NotAMessage { why: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::LongLine {
                line,
                offset,
                length,
            } => write!(
                f,
                "line {line} (byte {offset}): {length} bytes before the line break, the limit is {MAX_LINE}"
            ),
            Violation::MissingField { name } => write!(f, "field {name}: required, missing"),
            Violation::NotAMessage { why } => write!(f, "not a message: {why}"),
            Violation::RepeatedField { name, count } => {
                write!(f, "field {name}: appears {count} times, allowed once")
            }
            Violation::ChangedField { name } => write!(
                f,
                "field {name}: identity or trace field differs from the original"
            ),
        }
    }
}

/// Checks `message` against the content rules. With `original`, required fields are
/// those the original had and identity and trace fields must be unchanged; a message
/// identical to its original passes, since nothing will be put back.
pub fn check(message: &[u8], original: Option<&[u8]>) -> Vec<Violation> {
    // Nothing would be put back.
    if original == Some(message) {
        return Vec::new();
    }
    if let Some(why) = crate::message::sniff::not_a_message(message) {
        return vec![Violation::NotAMessage { why }];
    }
    check_chunks(&[message], original)
}

/// The same check over a message given in pieces (the editor's output segments),
/// without joining them: only the header block is copied, so a 40 MB message is not
/// held twice. The caller has already established that it differs from `original`.
pub fn check_chunks(chunks: &[&[u8]], original: Option<&[u8]>) -> Vec<Violation> {
    let mut found = long_lines_in(chunks);
    let header = header_prefix(chunks);
    found.extend(header_violations(&header, original));
    found
}

/// The bytes from the start up to the end of the header block (the empty line), or the
/// first 8 MiB when there is no empty line. Only these bytes are copied: the blank line
/// often spans two output pieces (an added field, then the original's empty line), so
/// the end is found with a small state machine rather than a search in one buffer.
fn header_prefix(chunks: &[&[u8]]) -> Vec<u8> {
    const CAP: usize = 8 * 1024 * 1024;
    let mut buf: Vec<u8> = Vec::new();
    let mut at_line_start = true;
    let mut cr_at_line_start = false;
    for chunk in chunks {
        for (i, &b) in chunk.iter().enumerate() {
            let ends = match b {
                b'\n' if at_line_start || cr_at_line_start => true,
                b'\n' => {
                    at_line_start = true;
                    false
                }
                b'\r' if at_line_start => {
                    cr_at_line_start = true;
                    at_line_start = false;
                    false
                }
                _ => {
                    at_line_start = false;
                    cr_at_line_start = false;
                    false
                }
            };
            if ends || buf.len() + i + 1 >= CAP {
                buf.extend_from_slice(&chunk[..=i]);
                return buf;
            }
        }
        buf.extend_from_slice(chunk);
    }
    buf
}

/// The header rules: required, once-only, and unchanged identity and trace fields.
fn header_violations(message: &[u8], original: Option<&[u8]>) -> Vec<Violation> {
    let mut found = Vec::new();
    let (fields, _) = header_field::read_header_block(message);
    let count = |fields: &[header_field::RawField], name: &str| {
        fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .count()
    };
    let original_fields = original.map(|o| header_field::read_header_block(o).0);
    for name in REQUIRED_FIELDS {
        let required = match (&original_fields, original) {
            (Some(of), Some(_)) => count(of, name) > 0,
            _ => true,
        };
        if required && count(&fields, name) == 0 {
            found.push(Violation::MissingField {
                name: name.to_string(),
            });
        }
    }
    for name in ONCE_ONLY_FIELDS {
        let n = count(&fields, name);
        // An original that already repeats the field is no reason to keep a rewrite
        // back that does not add one: WorkMail's put decides, and a rejection still
        // delivers the original.
        let before = original_fields.as_ref().map_or(0, |of| count(of, name));
        if n > 1 && n > before {
            found.push(Violation::RepeatedField {
                name: canonical(name),
                count: n,
            });
        }
    }
    if let (Some(of), Some(orig)) = (&original_fields, original) {
        let protected = |raw: &[u8], fs: &[header_field::RawField]| {
            let mut by_name: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
            for f in fs.iter().filter(|f| header_field::is_protected(&f.name)) {
                by_name
                    .entry(f.name.to_ascii_lowercase())
                    .or_default()
                    .push(raw[f.range.clone()].to_vec());
            }
            by_name
        };
        let before = protected(orig, of);
        let after = protected(message, &fields);
        let names: std::collections::BTreeSet<&String> =
            before.keys().chain(after.keys()).collect();
        for name in names {
            if before.get(name) != after.get(name) {
                found.push(Violation::ChangedField {
                    name: canonical(name),
                });
            }
        }
    }
    found
}

fn canonical(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
        .replace("Message-Id", "Message-ID")
        .replace("Dkim", "DKIM")
        .replace("Arc-", "ARC-")
}

/// Every line over the limit, with its 1-based number and byte offset.
pub fn long_lines(message: &[u8]) -> Vec<Violation> {
    long_lines_in(&[message])
}

/// [`long_lines`] over a message given in pieces; lines may cross pieces.
pub fn long_lines_in(chunks: &[&[u8]]) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut line = 1;
    let mut line_start = 0;
    // Bytes of the current line so far, and whether its last byte was a CR.
    let mut length = 0usize;
    let mut last_cr = false;
    let mut offset = 0;
    for chunk in chunks {
        let mut rest: &[u8] = chunk;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    let (content, cr) = if p > 0 {
                        (length + p, rest[p - 1] == b'\r')
                    } else {
                        (length, last_cr)
                    };
                    let len = if cr { content - 1 } else { content };
                    if len > MAX_LINE {
                        found.push(Violation::LongLine {
                            line,
                            offset: line_start,
                            length: len,
                        });
                    }
                    offset += p + 1;
                    rest = &rest[p + 1..];
                    line += 1;
                    line_start = offset;
                    length = 0;
                    last_cr = false;
                }
                None => {
                    length += rest.len();
                    last_cr = rest.last() == Some(&b'\r');
                    offset += rest.len();
                    rest = &[];
                }
            }
        }
    }
    // A last line without a break counts whole (a trailing CR is part of it).
    if length > MAX_LINE {
        found.push(Violation::LongLine {
            line,
            offset: line_start,
            length,
        });
    }
    found
}

/// Why a changed message cannot be brought within the rules: the original must be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unrepairable(pub String);

/// Queues repairs for every over-long line the output would carry from the original:
/// a part holding one is re-encoded without changing its decoded content (base64
/// re-wrapped at 76, text to quoted-printable, other data to base64). Returns what was
/// repaired, one note a part. Lines that no re-encoding can fix (a header line, a
/// preamble, a part inside a signature, an encoding we do not know) are unrepairable.
pub fn repair(tree: &MimeTree<'_>, edits: &mut Edits) -> Result<Vec<String>, Unrepairable> {
    let mut to_fix: Vec<PartId> = Vec::new();
    for v in long_lines(tree.raw()) {
        let Violation::LongLine {
            line,
            offset,
            length,
        } = v
        else {
            continue;
        };
        let Some(id) = innermost_part(tree, offset) else {
            return Err(Unrepairable(format!(
                "line {line} is {length} bytes and lies outside every part"
            )));
        };
        if edits.touches_content(tree, id) {
            continue; // the line is replaced by what a stage wrote
        }
        let part = tree.part(id);
        if offset < part.body.start && field_is_rewritten(tree, edits, id, offset) {
            continue; // a Set or Remove writes this field anew, folded by the editor
        }
        if offset < part.body.start {
            return Err(Unrepairable(format!(
                "line {line} is {length} bytes and lies in the header of part {id}; header lines cannot be re-encoded"
            )));
        }
        if !part.is_leaf() {
            let what = match part.kind {
                PartKind::Multipart(_) => "the preamble, a boundary or the epilogue of",
                _ => "the undecodable attached message",
            };
            return Err(Unrepairable(format!(
                "line {line} is {length} bytes and lies in {what} part {id} ({})",
                part.content_type
            )));
        }
        if part.protected {
            return Err(Unrepairable(format!(
                "line {line} is {length} bytes inside signed or encrypted part {id}; re-encoding it would break the signature"
            )));
        }
        if !to_fix.contains(&id) {
            to_fix.push(id);
        }
    }
    let mut notes = Vec::new();
    for id in to_fix {
        notes.push(reencode(tree, edits, id)?);
    }
    Ok(notes)
}

/// Whether the header field holding `offset` is replaced or removed by a queued Set or
/// Remove for its name (Set and Remove both drop every original field of the name).
fn field_is_rewritten(tree: &MimeTree<'_>, edits: &Edits, id: PartId, offset: usize) -> bool {
    let Some(field) = tree
        .part(id)
        .fields
        .iter()
        .find(|f| f.range.contains(&offset))
    else {
        return false;
    };
    edits.header_ops(id).any(|op| {
        matches!(op, HeaderOp::Set { .. } | HeaderOp::Remove { .. })
            && op.name().eq_ignore_ascii_case(&field.name)
    })
}

/// The deepest part whose header or body holds `offset`.
fn innermost_part(tree: &MimeTree<'_>, offset: usize) -> Option<PartId> {
    tree.parts()
        .iter()
        .filter(|p| p.header.start <= offset && offset < p.body.end.max(p.header.end))
        .max_by_key(|p| p.depth)
        .map(|p| p.id)
}

fn reencode(tree: &MimeTree<'_>, edits: &mut Edits, id: PartId) -> Result<String, Unrepairable> {
    let part = tree.part(id);
    let Some(encoding) = TransferEncoding::parse(part.transfer_encoding.as_deref()) else {
        return Err(Unrepairable(format!(
            "part {id} has long lines in transfer encoding {:?}, which cannot be re-encoded",
            part.transfer_encoding.as_deref().unwrap_or("")
        )));
    };
    let nl = Newline::at(tree.raw(), part.body.start, tree.newline_of(id));
    let body = tree.body_bytes(id);
    // 7bit and 8bit bodies are their content: encode them straight from the message.
    let decoded: std::borrow::Cow<'_, [u8]> = match encoding {
        TransferEncoding::Identity => std::borrow::Cow::Borrowed(body),
        other => std::borrow::Cow::Owned(other.decode(body)),
    };
    let is_text = part.main_type() == "text" || part.main_type() == "message";
    let (mut new_body, cte) = match (encoding, is_text) {
        (TransferEncoding::Base64, _) | (TransferEncoding::Identity, false) => {
            (transfer::base64_encode_lines(&decoded, nl), "base64")
        }
        (TransferEncoding::QuotedPrintable, _) | (TransferEncoding::Identity, true) => {
            (transfer::qp_encode_text(&decoded, nl), "quoted-printable")
        }
    };
    // Keep the body's own ending: the break before the next boundary is not ours.
    if !body.ends_with(b"\n") {
        while new_body.last() == Some(&b'\n') || new_body.last() == Some(&b'\r') {
            new_body.pop();
        }
    }
    edits.replace_body(id, new_body);
    if encoding == TransferEncoding::Identity {
        edits.header(
            id,
            HeaderOp::Set {
                name: "Content-Transfer-Encoding".into(),
                value: cte.into(),
            },
        );
    }
    Ok(format!(
        "re-encoded part {id} ({}) as {cte} to fold lines over {MAX_LINE} bytes",
        part.content_type
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> Vec<u8> {
        format!("From: a@example.com\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: s\r\n\r\n{body}")
            .into_bytes()
    }

    #[test]
    fn check_catches_a_line_over_998_bytes() {
        let m = msg(&"x".repeat(999));
        let v = check(&m, None);
        assert!(
            matches!(
                v.as_slice(),
                [Violation::LongLine {
                    line: 5,
                    length: 999,
                    ..
                }]
            ),
            "{v:?}"
        );
        assert!(check(&msg(&"x".repeat(998)), None).is_empty());
    }

    #[test]
    fn check_catches_a_missing_required_field() {
        let original = msg("body");
        let without_date = String::from_utf8(original.clone())
            .unwrap()
            .replace("Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n", "");
        let v = check(without_date.as_bytes(), Some(&original));
        assert!(
            v.contains(&Violation::MissingField {
                name: "Date".into()
            }),
            "{v:?}"
        );
        // A field the original never had is not required of the output.
        let v = check(
            &[without_date.as_bytes(), b"\r\nmore"].concat(),
            Some(without_date.as_bytes()),
        );
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn check_catches_a_once_only_field_twice() {
        let m = String::from_utf8(msg("b"))
            .unwrap()
            .replace("Subject: s\r\n", "Subject: s\r\nSubject: t\r\n");
        let v = check(m.as_bytes(), None);
        assert_eq!(
            v,
            vec![Violation::RepeatedField {
                name: "Subject".into(),
                count: 2
            }]
        );
    }

    #[test]
    fn check_catches_a_changed_identity_field() {
        let original = msg("b");
        let changed = String::from_utf8(original.clone())
            .unwrap()
            .replace("From: a@", "From: b@");
        let v = check(changed.as_bytes(), Some(&original));
        assert_eq!(
            v,
            vec![Violation::ChangedField {
                name: "From".into()
            }]
        );
    }

    #[test]
    fn checking_in_pieces_finds_what_checking_whole_finds() {
        let original = msg("b");
        let mut m = String::from_utf8(original.clone())
            .unwrap()
            .replace("Subject: s\r\n", "Subject: s\r\nSubject: t\r\n");
        m.push_str(&"y".repeat(1500));
        m.push_str("\r\nshort\r\n");
        m.push_str(&"z".repeat(1000));
        let whole = check(m.as_bytes(), Some(&original));
        for cut in [1, 7, 30, 60, 100, 999, 1600] {
            let (a, b) = m.as_bytes().split_at(cut.min(m.len()));
            let (b, c) = b.split_at(b.len() / 2);
            assert_eq!(
                check_chunks(&[a, b, c], Some(&original)),
                whole,
                "cut at {cut}"
            );
        }
        assert_eq!(whole.len(), 3, "{whole:?}");
    }

    #[test]
    fn the_header_prefix_ends_at_the_empty_line_even_across_pieces() {
        let whole = b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore";
        for cut in 0..whole.len() {
            let (x, y) = whole.split_at(cut);
            assert_eq!(
                header_prefix(&[x, y]),
                b"A: 1\r\nB: 2\r\n\r\n",
                "cut at {cut}"
            );
        }
        assert_eq!(header_prefix(&[b"A: 1\n\nbody"]), b"A: 1\n\n");
        assert_eq!(header_prefix(&[b"\r\nbody"]), b"\r\n");
        assert_eq!(header_prefix(&[b"A: 1\r\n"]), b"A: 1\r\n");
    }

    #[test]
    fn check_passes_a_message_identical_to_its_original() {
        let m = msg(&"x".repeat(2000));
        assert!(check(&m, Some(&m)).is_empty());
    }

    #[test]
    fn repair_reencodes_a_long_text_line_as_quoted_printable_keeping_content() {
        let body = "y".repeat(1500);
        let m = msg(&body);
        let tree = MimeTree::parse(&m).unwrap();
        let mut edits = Edits::new();
        let notes = repair(&tree, &mut edits).unwrap();
        assert_eq!(notes.len(), 1);
        let out = edits.apply(&tree).unwrap().to_vec();
        assert!(check(&out, Some(&m)).is_empty());
        let reparsed = mail_parser::MessageParser::default().parse(&out).unwrap();
        assert_eq!(reparsed.body_text(0).unwrap(), body);
    }

    #[test]
    fn repair_rewraps_base64_with_long_lines() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &data);
        let m = format!(
            "From: a@example.com\nDate: x\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n{b64}\n--B--\n"
        );
        let tree = MimeTree::parse(m.as_bytes()).unwrap();
        let mut edits = Edits::new();
        repair(&tree, &mut edits).unwrap();
        let out = edits.apply(&tree).unwrap().to_vec();
        assert!(long_lines(&out).is_empty());
        let reparsed = mail_parser::MessageParser::default().parse(&out).unwrap();
        assert_eq!(reparsed.attachment(0).unwrap().contents(), data.as_slice());
        assert!(
            !String::from_utf8_lossy(&out).contains("\n\n--B--"),
            "no extra blank line"
        );
    }

    #[test]
    fn a_long_header_line_is_unrepairable() {
        let m = format!(
            "From: a@example.com\r\nX-Long: {}\r\n\r\nbody",
            "z".repeat(1200)
        );
        let tree = MimeTree::parse(m.as_bytes()).unwrap();
        assert!(repair(&tree, &mut Edits::new()).is_err());
    }

    #[test]
    fn a_long_header_line_that_a_stage_sets_anew_needs_no_repair() {
        let m = format!(
            "From: a@example.com\r\nSubject: {}\r\n\r\nbody",
            "z ".repeat(700)
        );
        let tree = MimeTree::parse(m.as_bytes()).unwrap();
        let mut edits = Edits::new();
        edits.header(
            0,
            HeaderOp::Set {
                name: "subject".into(),
                value: "short".into(),
            },
        );
        assert_eq!(repair(&tree, &mut edits), Ok(Vec::new()));
        let out = edits.apply(&tree).unwrap().to_vec();
        assert!(check(&out, Some(m.as_bytes())).is_empty());
    }

    #[test]
    fn a_long_line_inside_a_signed_part_is_unrepairable() {
        let m = format!(
            "From: a@example.com\nContent-Type: multipart/signed; boundary=S\n\n--S\nContent-Type: text/plain\n\n{}\n--S\nContent-Type: application/pkcs7-signature\n\nAA\n--S--\n",
            "q".repeat(1200)
        );
        let tree = MimeTree::parse(m.as_bytes()).unwrap();
        let err = repair(&tree, &mut Edits::new()).unwrap_err();
        assert!(err.0.contains("signed"), "{err}");
    }
}
