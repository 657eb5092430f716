//! Whether some bytes are a message at all. A folder of saved mail also holds pictures,
//! archives and notes; `replay` over it must not append header fields after a PNG's
//! binary data and call the result "changed". Input that is not a message is reported as
//! such and passed through unchanged, and `check` and `explain` say the same.
//!
//! A message, here, is what RFC 5322 readers take for one: its first line (after an
//! optional byte order mark, an mbox `From ` line and white-space-only lines, which
//! readers differ on but skip) is a header field, and that first line holds no NUL byte
//! (binary files have one within their first bytes; a NUL further into a header is
//! malformed mail, which the stages read as such).

use crate::message::header_field::field_name;

/// How far into the input a header section is looked for.
const HEADER_SCAN: usize = 64 * 1024;

/// Signatures of common binary formats that start with a line a loose reader could take
/// for a field or a body: named in the report so the user knows what was found.
const SIGNATURES: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip file"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an OLE2 file (Outlook .msg, old Office)",
    ),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
];

/// Why `raw` is not a message, or `None` when it is one.
pub fn not_a_message(raw: &[u8]) -> Option<String> {
    if raw.is_empty() {
        return Some("the input is empty".into());
    }
    if let Some((_, what)) = SIGNATURES.iter().find(|(sig, _)| raw.starts_with(sig)) {
        return Some(format!("the input is {what}"));
    }
    let scan = &raw[..raw.len().min(HEADER_SCAN)];
    let first_end = memchr::memchr(b'\n', scan).map_or(scan.len(), |i| i + 1);
    if let Some(at) = memchr::memchr(0, &scan[..first_end]) {
        return Some(format!("binary data (a NUL byte at offset {at})"));
    }
    let mut offset = 0;
    if scan.starts_with(b"\xef\xbb\xbf") {
        offset = 3;
    }
    let mut first_line = true;
    for line in scan[offset..].split(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        if text.iter().all(|b| b.is_ascii_whitespace()) && offset + line.len() < scan.len() {
            offset += line.len() + 1;
            continue;
        }
        if first_line && text.starts_with(b"From ") {
            first_line = false;
            offset += line.len() + 1;
            continue;
        }
        return match field_name(text) {
            Some(name) if !name.is_empty() => None,
            _ => Some(format!(
                "no header fields (the first line, at byte {offset}, is not a field)"
            )),
        };
    }
    Some("no header fields".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_messages_however_they_start() {
        for raw in [
            &b"From: a@x.example\r\n\r\nbody\r\n"[..],
            b"From a@x.example Mon Nov  2 09:00:00 2026\nFrom: a@x.example\n\nbody\n",
            b"\xef\xbb\xbfSubject: hi\n\nbody",
            b"\r\nReceived: from x\r\n\r\n",
            b"X-A: 1",
            b"Subject: binary body follows\r\n\r\n\x00\x01\x02",
        ] {
            assert_eq!(
                not_a_message(raw),
                None,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn pictures_archives_binaries_and_plain_text_are_not() {
        let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";
        assert_eq!(not_a_message(png).unwrap(), "the input is a PNG image");
        assert!(not_a_message(b"PK\x03\x04rest").unwrap().contains("zip"));
        assert!(
            not_a_message(b"Just some notes\nabout a meeting\n")
                .unwrap()
                .contains("not a field")
        );
        assert!(
            not_a_message(b"a:b\x00c\n\nbody")
                .unwrap()
                .contains("NUL byte at offset 3")
        );
        assert_eq!(not_a_message(b"").unwrap(), "the input is empty");
        // A NUL further into a header is malformed mail, still mail.
        assert_eq!(not_a_message(b"From: a@x.example\nX-B: \x00\n\nbody"), None);
        assert!(not_a_message(b"\n\n\n").is_some());
    }
}
