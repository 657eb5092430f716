//! Replacing a text part's content: the editor's "replace a part's body from decoded
//! text". The new text is encoded in the part's own charset when it fits (ISO-8859-1,
//! windows-1252, ISO-2022-JP included), otherwise the part moves to UTF-8 and its
//! Content-Type says so; base64 and quoted-printable stay as they were, and a 7bit or
//! 8bit part that now holds non-ASCII or long lines becomes quoted-printable.

use crate::message::edit::{Edits, HeaderOp};
use crate::message::mime_tree::{MimeTree, PartId, PartKind, TextMode};
use crate::message::newline::Newline;
use crate::message::transfer::{self, TransferEncoding};
use regex::Regex;
use std::sync::LazyLock;

/// Why a part's text cannot be replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextEditError {
    #[error("part {0} is not a text part")]
    NotText(PartId),
    #[error("part {id} uses transfer encoding {token:?}, which is not rewritten")]
    UnknownTransferEncoding { id: PartId, token: String },
    #[error("part {id} cannot be read as text: {reason}")]
    Unreadable { id: PartId, reason: String },
    #[error(
        "part {0} keeps its bytes as they are (they do not decode in its charset), so only ASCII can be added"
    )]
    NotAsciiAddition(PartId),
}

/// How the part was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChange {
    /// The charset the part now declares.
    pub charset: String,
    /// The text did not fit the part's charset, so the part moved to UTF-8.
    pub moved_to_utf8: bool,
    /// The Content-Transfer-Encoding the part now has.
    pub transfer_encoding: &'static str,
}

/// Longest line we leave unencoded in a 7bit/8bit part.
const MAX_PLAIN_LINE: usize = 998;

/// Queues the edits that make part `id` hold `text`. `text` should use the part's line
/// ending (see [`MimeTree::newline_of`]) for lines it adds.
pub fn replace_text(
    tree: &MimeTree<'_>,
    edits: &mut Edits,
    id: PartId,
    text: &str,
) -> Result<TextChange, TextEditError> {
    replace_text_pieces(tree, edits, id, &[text])
}

/// [`replace_text`] with the new text given as pieces to be joined (the original's text,
/// borrowed, and the added block): a 39 MB part is encoded from its pieces without being
/// copied whole first.
pub fn replace_text_pieces(
    tree: &MimeTree<'_>,
    edits: &mut Edits,
    id: PartId,
    pieces: &[&str],
) -> Result<TextChange, TextEditError> {
    let mode = tree
        .text_view(id)
        .map_err(|e| TextEditError::Unreadable {
            id,
            reason: e.to_string(),
        })?
        .mode;
    replace_text_pieces_as(tree, edits, id, pieces, mode)
}

/// [`replace_text_pieces`] for a caller that already read the part
/// ([`MimeTree::text_view`]) and knows how its text maps to its bytes: the part is not
/// decoded a second time.
pub fn replace_text_pieces_as(
    tree: &MimeTree<'_>,
    edits: &mut Edits,
    id: PartId,
    pieces: &[&str],
    mode: TextMode,
) -> Result<TextChange, TextEditError> {
    let part = tree.part(id);
    if !matches!(part.kind, PartKind::Text | PartKind::Html) {
        return Err(TextEditError::NotText(id));
    }
    let encoding = TransferEncoding::parse(part.transfer_encoding.as_deref()).ok_or_else(|| {
        TextEditError::UnknownTransferEncoding {
            id,
            token: part.transfer_encoding.clone().unwrap_or_default(),
        }
    })?;
    let declared = part
        .charset
        .clone()
        .unwrap_or_else(|| "us-ascii".to_string());
    // ASCII is the same bytes in every ASCII-compatible charset, and UTF-8 text is the
    // bytes of a UTF-8 part.
    let all_ascii = pieces.iter().all(|p| p.is_ascii());
    let utf8_as_is = match mode {
        TextMode::Bytes => all_ascii,
        TextMode::Charset(e) => {
            all_ascii && e.is_ascii_compatible()
                || e == encoding_rs::UTF_8 && is_utf8_label(&declared)
        }
    };
    // The bytes to write, as pieces: borrowed where the text is already in its charset
    // (ASCII, or UTF-8 in a UTF-8 part), else encoded.
    let (owned, charset, moved): (Option<Vec<u8>>, String, bool) = match mode {
        _ if utf8_as_is => (None, declared.clone(), false),
        // The part's bytes are not text in its charset: they were read one character
        // per byte, and go back the same way; only ASCII may have been added.
        TextMode::Bytes => match latin1_bytes(&pieces.concat()) {
            Some(bytes) => (Some(bytes), declared.clone(), false),
            None => return Err(TextEditError::NotAsciiAddition(id)),
        },
        TextMode::Charset(_) => {
            let text = pieces.concat();
            match encode_in(&declared, &text) {
                Some(bytes) => (Some(bytes), declared.clone(), false),
                None => (Some(text.into_bytes()), "utf-8".to_string(), true),
            }
        }
    };
    let byte_pieces: Vec<&[u8]> = match &owned {
        Some(b) => vec![b.as_slice()],
        None => pieces.iter().map(|p| p.as_bytes()).collect(),
    };
    let nl = Newline::at(tree.raw(), part.body.start, tree.newline_of(id));
    // A line that starts with `--` and an enclosing boundary (in any case, as loose
    // readers match it) would end the part: such text goes quoted-printable, which
    // writes `--` as `=2D-`.
    let boundaries = tree.enclosing_boundaries(id);
    let mut longest = 0;
    let mut delimiter_like = false;
    for line in transfer::lines_of_pieces(&byte_pieces) {
        longest = longest.max(line.len());
        delimiter_like = delimiter_like || reads_as_delimiter(&line, &boundaries);
    }
    let needs_encoding = !byte_pieces.iter().all(|p| p.is_ascii())
        || longest > MAX_PLAIN_LINE
        || byte_pieces.iter().any(|p| p.contains(&0))
        || delimiter_like;
    let (mut body, cte, cte_changed) = match encoding {
        TransferEncoding::Base64 => (
            transfer::base64_encode_pieces(&byte_pieces, nl),
            "base64",
            false,
        ),
        TransferEncoding::QuotedPrintable => (
            transfer::qp_encode_pieces(&byte_pieces, nl),
            "quoted-printable",
            false,
        ),
        TransferEncoding::Identity if needs_encoding => (
            transfer::qp_encode_pieces(&byte_pieces, nl),
            "quoted-printable",
            true,
        ),
        TransferEncoding::Identity => (
            byte_pieces.concat(),
            identity_token(part.transfer_encoding.as_deref()),
            false,
        ),
    };
    drop(owned);
    let break_follows = matches!(tree.raw().get(part.body.end), None | Some(b'\r' | b'\n'));
    fit_ending(tree.body_bytes(id), break_follows, nl, &mut body);
    edits.replace_body(id, body);
    if cte_changed {
        edits.header(
            id,
            HeaderOp::Set {
                name: "Content-Transfer-Encoding".into(),
                value: cte.into(),
            },
        );
    }
    if moved {
        let current = tree.field_value(id, "Content-Type");
        let value = match current {
            Some(v) => with_charset(&v, "utf-8"),
            None => format!("{}; charset=utf-8", part.content_type),
        };
        edits.header(
            id,
            HeaderOp::Set {
                name: "Content-Type".into(),
                value,
            },
        );
    }
    Ok(TextChange {
        charset,
        moved_to_utf8: moved,
        transfer_encoding: cte,
    })
}

fn is_utf8_label(label: &str) -> bool {
    matches!(label.trim().to_ascii_lowercase().as_str(), "utf-8" | "utf8")
}

/// Whether a line of `text` starts with `--` and one of `boundaries`, in any case: a
/// line that strict readers take for text and loose ones for a delimiter.
pub fn reads_as_delimiter(text: &[u8], boundaries: &[&[u8]]) -> bool {
    text.split(|&b| b == b'\n' || b == b'\r').any(|line| {
        line.strip_prefix(b"--").is_some_and(|rest| {
            boundaries
                .iter()
                .any(|b| rest.len() >= b.len() && rest[..b.len()].eq_ignore_ascii_case(b))
        })
    })
}

/// Text read one character per byte, back to those bytes; `None` when it holds a
/// character above U+00FF (something other than ASCII was added).
fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(c as u32).ok()).collect()
}

fn identity_token(token: Option<&str>) -> &'static str {
    match token {
        Some("8bit") => "8bit",
        Some("binary") => "binary",
        _ => "7bit",
    }
}

/// A new body keeps the original's ending: a body that did not end in a line break (the
/// break before the next boundary belongs to the boundary) gets none either.
///
/// Except for an empty body that no line break follows (`break_follows` false): its
/// header's closing empty line doubled as the next boundary's line break
/// (`...7bit\n\n--boundary`). New text there must end with its own line break, or the
/// boundary would be glued to its last line and stricter readers would lose the parts
/// after it. (A body that is not empty and runs straight into a boundary, as in
/// `text--boundary--`, keeps that as it was: the sender's structure is theirs.)
pub fn fit_ending(original: &[u8], break_follows: bool, nl: Newline, new_body: &mut Vec<u8>) {
    if original.is_empty() && !break_follows {
        if !new_body.is_empty() && !new_body.ends_with(b"\n") {
            new_body.extend_from_slice(nl.as_bytes());
        }
    } else if !original.ends_with(b"\n") {
        while matches!(new_body.last(), Some(b'\n' | b'\r')) {
            new_body.pop();
        }
    }
}

/// `text` in `charset`, or `None` when the charset is unknown, cannot be written (UTF-16)
/// or cannot hold every character.
pub fn encode_in(charset: &str, text: &str) -> Option<Vec<u8>> {
    let label = charset.trim().to_ascii_lowercase();
    match label.as_str() {
        "us-ascii" | "ascii" | "ansi_x3.4-1968" => {
            text.is_ascii().then(|| text.as_bytes().to_vec())
        }
        // encoding_rs reads these labels as windows-1252 (as browsers do); a part that
        // says ISO-8859-1 is read one byte to one character (see
        // `mime_tree::decode_text`) and written back the same way, so a character
        // above U+00FF (a template's euro sign) does not fit.
        "iso-8859-1" | "latin1" | "iso_8859-1" | "l1" | "iso-ir-100" | "cp819" => text
            .chars()
            .all(|c| (c as u32) <= 0xFF)
            .then(|| text.chars().map(|c| c as u32 as u8).collect()),
        _ => {
            let enc = encoding_rs::Encoding::for_label(label.as_bytes())?;
            if enc.output_encoding() != enc {
                return None;
            }
            let (bytes, _, had_errors) = enc.encode(text);
            (!had_errors).then(|| bytes.into_owned())
        }
    }
}

static CHARSET_PARAM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)(;\s*charset\s*=\s*)("[^"]*"|[^;\s]*)"#).expect("valid regex")
});

/// A Content-Type value with its charset parameter set to `charset`, every other
/// parameter as written.
pub fn with_charset(value: &str, charset: &str) -> String {
    if CHARSET_PARAM.is_match(value) {
        CHARSET_PARAM
            .replace(value, |c: &regex::Captures<'_>| {
                format!("{}{charset}", &c[1])
            })
            .into_owned()
    } else {
        format!("{}; charset={charset}", value.trim_end_matches([';', ' ']))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(raw: &[u8], id: PartId, f: impl Fn(&str) -> String) -> (Vec<u8>, TextChange) {
        let tree = MimeTree::parse(raw).unwrap();
        let mut edits = Edits::new();
        let text = f(&tree.decoded_text(id).unwrap());
        let change = replace_text(&tree, &mut edits, id, &text).unwrap();
        (edits.apply(&tree).unwrap().to_vec(), change)
    }

    fn decoded(raw: &[u8]) -> String {
        mail_parser::MessageParser::default()
            .parse(raw)
            .unwrap()
            .body_text(0)
            .unwrap()
            .into_owned()
    }

    #[test]
    fn text_in_an_empty_part_whose_boundary_follows_the_header_keeps_the_boundary_on_its_line() {
        // The empty line after the part's header is also the next boundary's line break
        // (corpus: james-mime4j double-bound.msg, stalwart thirdparty_011.eml).
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n--b\nContent-Type: text/plain\n\nsecond\n--b--\n";
        let tree = MimeTree::parse(raw).unwrap();
        let empty = tree.parts()[1].id;
        assert!(tree.body_bytes(empty).is_empty());
        let mut edits = Edits::new();
        replace_text(&tree, &mut edits, empty, "added").unwrap();
        let out = edits.apply(&tree).unwrap().to_vec();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("\n\nadded\n--b\nContent-Type: text/plain\n\nsecond\n"),
            "{s}"
        );
        assert_eq!(MimeTree::parse(s.as_bytes()).unwrap().parts().len(), 3);
    }

    #[test]
    fn latin1_text_that_fits_stays_latin1() {
        let raw = b"From: a@example.com\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\ncaf\xe9\n";
        let (out, change) = rewrite(raw, 0, |t| format!("{t}d\u{e9}j\u{e0}\n"));
        assert_eq!(change.charset, "iso-8859-1");
        assert!(!change.moved_to_utf8);
        assert_eq!(change.transfer_encoding, "quoted-printable");
        assert!(String::from_utf8_lossy(&out).contains("caf=E9\nd=E9j=E0"));
        assert_eq!(decoded(&out), "café\ndéjà\n");
    }

    #[test]
    fn text_that_does_not_fit_moves_to_utf8_and_says_so() {
        let raw = b"From: a@example.com\r\nContent-Type: text/plain; charset=\"iso-8859-1\"; format=flowed\r\n\r\nhello\r\n";
        let (out, change) = rewrite(raw, 0, |t| format!("{t}\u{2014} \u{65e5}\r\n"));
        assert!(change.moved_to_utf8);
        let s = String::from_utf8(out.clone()).unwrap();
        assert!(
            s.contains("Content-Type: text/plain; charset=utf-8; format=flowed\r\n"),
            "{s}"
        );
        assert!(s.contains("Content-Transfer-Encoding: quoted-printable\r\n"));
        assert_eq!(decoded(&out), "hello\r\n\u{2014} \u{65e5}\r\n");
    }

    #[test]
    fn iso_2022_jp_text_stays_iso_2022_jp_and_7bit() {
        let text = "\u{3053}\u{3093}\u{306b}\u{3061}\u{306f}\n";
        let (bytes, _, _) = encoding_rs::ISO_2022_JP.encode(text);
        let raw = [b"From: a@example.com\nContent-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n".as_slice(), &bytes].concat();
        let (out, change) = rewrite(&raw, 0, |t| format!("{t}\u{65e5}\u{672c}\n"));
        assert_eq!(change.charset, "iso-2022-jp");
        assert_eq!(change.transfer_encoding, "7bit");
        assert!(out.is_ascii());
        assert_eq!(decoded(&out), format!("{text}\u{65e5}\u{672c}\n"));
    }

    #[test]
    fn base64_parts_stay_base64() {
        let raw = b"From: a@example.com\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\naGVsbG8K\n";
        let (out, change) = rewrite(raw, 0, |t| format!("{t}w\u{f6}rld\n"));
        assert_eq!(change.transfer_encoding, "base64");
        assert_eq!(decoded(&out), "hello\nw\u{f6}rld\n");
    }

    #[test]
    fn ascii_7bit_parts_stay_7bit_and_byte_exact() {
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nhello\n--B--\n";
        let (out, change) = rewrite(raw, 1, |t| format!("{t}\nbye"));
        assert_eq!(change.transfer_encoding, "7bit");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nhello\nbye\n--B--\n"
        );
    }

    #[test]
    fn a_part_without_content_type_gets_one_when_it_moves_to_utf8() {
        let raw = b"From: a@example.com\n\nhello\n";
        let (out, _) = rewrite(raw, 0, |t| format!("{t}\u{e9}\n"));
        assert!(
            String::from_utf8_lossy(&out).contains("Content-Type: text/plain; charset=utf-8\n")
        );
    }

    #[test]
    fn with_charset_replaces_only_the_charset() {
        assert_eq!(
            with_charset("text/html; CHARSET=\"windows-1252\"; x=y", "utf-8"),
            "text/html; CHARSET=utf-8; x=y"
        );
        assert_eq!(
            with_charset("text/plain", "utf-8"),
            "text/plain; charset=utf-8"
        );
    }
}
