//! Writing header fields: the checks and encodings every value we insert goes through
//! (no CR or LF smuggled in from a template, RFC 2047 for non-ASCII, folding so no line
//! passes 998 bytes), and a reader for raw header blocks that keeps each field's bytes.

use crate::message::newline::Newline;
use base64::Engine;
use std::ops::Range;

/// Fields no stage may change: WorkMail rejects a message whose identity or trace fields
/// differ from the original, and changing them breaks DKIM and ARC.
pub const PROTECTED_FIELDS: &[&str] = &[
    "received",
    "return-path",
    "message-id",
    "date",
    "from",
    "sender",
    "to",
    "cc",
    "dkim-signature",
];

/// Whether a field name is an identity or trace field (the list above plus every ARC-*).
pub fn is_protected(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    PROTECTED_FIELDS.contains(&lower.as_str()) || lower.starts_with("arc-")
}

/// RFC 5322 section 3.6: fields that may appear at most once.
pub const ONCE_ONLY_FIELDS: &[&str] = &[
    "date",
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "message-id",
    "in-reply-to",
    "references",
    "subject",
];

/// Why a header name or value cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("field name {0:?} is empty or has characters outside printable ASCII or a colon")]
    BadName(String),
    #[error("value contains a line break (CR or LF) at character {0}")]
    LineBreak(usize),
}

/// Checks a field name against RFC 5322 (printable ASCII, no colon, not empty).
pub fn check_name(name: &str) -> Result<(), FieldError> {
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(FieldError::BadName(name.to_string()));
    }
    Ok(())
}

/// Checks a value for CR and LF, which would let a template inject fields.
pub fn check_value(value: &str) -> Result<(), FieldError> {
    match value.char_indices().find(|(_, c)| *c == '\r' || *c == '\n') {
        Some((i, _)) => Err(FieldError::LineBreak(i)),
        None => Ok(()),
    }
}

/// Preferred line width (RFC 5322 2.1.1) when folding.
const FOLD_AT: usize = 78;
/// A word longer than this cannot be folded; such values are written as encoded words,
/// which can be split anywhere.
const LONGEST_PLAIN_WORD: usize = 900;
/// Longest encoded word (RFC 2047 section 2).
const ENCODED_WORD_MAX: usize = 75;

/// A complete field, `Name: value` plus the line break, with the value RFC 2047-encoded
/// when it is not ASCII and folded at white space so lines stay near 78 characters and
/// always under 998.
pub fn format_field(name: &str, value: &str, nl: Newline) -> Result<Vec<u8>, FieldError> {
    check_name(name)?;
    check_value(value)?;
    let plain = value.is_ascii()
        && !looks_encoded(value)
        && value.split(' ').all(|w| w.len() <= LONGEST_PLAIN_WORD);
    let words: Vec<String> = if plain {
        value.split(' ').map(str::to_string).collect()
    } else {
        encode_words(value)
    };
    let mut out = String::with_capacity(name.len() + value.len() + 8);
    out.push_str(name);
    out.push(':');
    let mut col = out.len();
    for (i, word) in words.iter().enumerate() {
        // Fold before a word that would pass the preferred width; never before the first.
        if i > 0 && col + 1 + word.len() > FOLD_AT && col > name.len() + 1 {
            out.push_str(nl.as_str());
            col = 0;
        }
        out.push(' ');
        out.push_str(word);
        col += 1 + word.len();
    }
    out.push_str(nl.as_str());
    Ok(out.into_bytes())
}

/// A value that contains `=?` would be read as an encoded word by clients; encoding it
/// keeps the text the user wrote.
fn looks_encoded(value: &str) -> bool {
    value.contains("=?")
}

/// RFC 2047 B-encoded UTF-8 words, each at most 75 characters, never splitting a
/// character between two words.
pub fn encode_words(value: &str) -> Vec<String> {
    const PREFIX: &str = "=?UTF-8?B?";
    // 75 - "=?UTF-8?B?" - "?=" leaves 63 base64 characters: 45 bytes of input.
    let max_bytes = (ENCODED_WORD_MAX - PREFIX.len() - 2) / 4 * 3;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > max_bytes {
            words.push(encode_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(encode_word(&chunk));
    }
    words
}

fn encode_word(text: &str) -> String {
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
    )
}

/// One field of a raw header block: its name and the byte range of the whole field,
/// continuation lines and line break included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawField {
    pub name: String,
    pub range: Range<usize>,
}

/// The field name of a header line, if it is a field line: printable ASCII other than
/// the colon, then the colon.
pub(crate) fn field_name(line: &[u8]) -> Option<String> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    (!name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b)))
        .then(|| String::from_utf8_lossy(name).into_owned())
}

/// Reads the top-level header block of `raw` as [`crate::message::structure`] does: every field
/// with its exact bytes, an mbox `From ` line skipped, stopping at the first empty line
/// or at the first line that is neither a field nor a continuation (readers take that
/// line for the body's first). Returns the fields and where the body starts.
pub fn read_header_block(raw: &[u8]) -> (Vec<RawField>, usize) {
    let mut fields: Vec<RawField> = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let end = line_end(raw, pos);
        let line = &raw[pos..end];
        let content = trim_newline(line);
        if content.is_empty() {
            return (fields, end);
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(last) = fields.last_mut() {
                last.range.end = end;
            }
        } else if line.starts_with(b"From ") {
            // an mbox separator
        } else {
            let Some(name) = field_name(content) else {
                return (fields, pos);
            };
            fields.push(RawField {
                name,
                range: pos..end,
            });
        }
        pos = end;
    }
    (fields, raw.len())
}

fn line_end(raw: &[u8], from: usize) -> usize {
    raw[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |i| from + i + 1)
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_values_are_written_as_given() {
        let f = format_field("X-Flow", "processed", Newline::CrLf).unwrap();
        assert_eq!(f, b"X-Flow: processed\r\n");
    }

    #[test]
    fn cr_or_lf_in_a_value_is_refused() {
        assert_eq!(
            format_field("X-A", "a\r\nBcc: x@y", Newline::Lf),
            Err(FieldError::LineBreak(1))
        );
        assert!(check_value("a\nb").is_err());
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(check_name("X Flow").is_err());
        assert!(check_name("X:Flow").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("X-Flow").is_ok());
    }

    #[test]
    fn non_ascii_values_become_utf8_encoded_words_that_decode_back() {
        let value = "Geprüft — 検査済み ".repeat(8);
        let f = format_field("Subject", &value, Newline::Lf).unwrap();
        let text = String::from_utf8(f.clone()).unwrap();
        assert!(text.is_ascii());
        // Continuation lines keep to 78; the first carries the name before its word.
        for line in text.lines().skip(1) {
            assert!(line.len() <= 78, "{line}");
        }
        assert!(text.lines().next().unwrap().len() <= "Subject: ".len() + 75);
        let raw = [f.as_slice(), b"\nbody\n"].concat();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let decoded = parsed.subject().unwrap().to_string();
        assert_eq!(decoded, value);
    }

    #[test]
    fn long_ascii_values_fold_at_spaces() {
        let value = "word ".repeat(100);
        let f = format_field("X-Long", value.trim_end(), Newline::CrLf).unwrap();
        for line in f.split(|&b| b == b'\n') {
            assert!(line.len() <= 80);
        }
    }

    #[test]
    fn identity_and_trace_fields_are_protected_whatever_their_case() {
        for name in [
            "Received",
            "FROM",
            "dkim-signature",
            "ARC-Seal",
            "Message-ID",
        ] {
            assert!(is_protected(name), "{name}");
        }
        assert!(!is_protected("Subject"));
        assert!(!is_protected("X-Flow"));
    }

    #[test]
    fn header_block_keeps_continuations_and_skips_mbox_line() {
        let raw = b"From someone Mon Jan 1\nSubject: a\n b\nX: y\n\nbody";
        let (fields, end) = read_header_block(raw);
        assert_eq!(fields.len(), 2);
        assert_eq!(&raw[fields[0].range.clone()], b"Subject: a\n b\n");
        assert_eq!(fields[1].name, "X");
        assert_eq!(&raw[end..], b"body");
    }
}
