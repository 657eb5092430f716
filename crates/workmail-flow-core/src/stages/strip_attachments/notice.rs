//! The notice that takes a stripped attachment's place: its text (the template with the
//! attachment's name, type and size), an encoding that keeps it readable and safe inside
//! any multipart, and header fields that name it `<original name>.removed.txt`.

use crate::message::header_field;
use crate::message::newline::Newline;
use crate::message::transfer;
use crate::stage::template::{Escape, Template};
use std::collections::BTreeMap;

/// The built-in notice text.
pub const DEFAULT_NOTICE: &str = include_str!("../../../templates/strip_notice.txt");
/// Placeholders a notice template may use.
pub const NOTICE_PLACEHOLDERS: &[&str] = &["filename", "content_type", "size"];
/// The end of every notice part's name; what marks a notice on a second pass.
pub const NOTICE_SUFFIX: &str = ".removed.txt";
/// A name inserted into the notice text is cut here (most file systems stop at 255).
const MAX_NAME_IN_TEXT: usize = 255;
/// The original name inside the notice's own file name is cut here.
const MAX_NAME_IN_FILENAME: usize = 80;
/// Longest RFC 2231 segment we write, so folded lines stay short.
const PARAM_SEGMENT: usize = 50;

/// A rendered notice part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `text/plain; charset=utf-8; name=…`
    pub content_type: String,
    pub transfer_encoding: &'static str,
    /// `attachment; filename=…`
    pub disposition: String,
    /// The encoded body.
    pub body: Vec<u8>,
}

impl Notice {
    /// Renders `template` for an attachment declared as `name` (the sender's text, made
    /// safe here) of `content_type` and `size` decoded bytes, with line ending `nl`;
    /// `final_newline` says whether the body it replaces ended in a line break.
    pub fn render(
        template: &Template,
        name: Option<&str>,
        content_type: &str,
        size: u64,
        nl: Newline,
        final_newline: bool,
    ) -> Notice {
        let name = name.map(clean_text);
        let values = BTreeMap::from([
            (
                "filename",
                name.as_deref()
                    .map(|n| truncate_chars(n, MAX_NAME_IN_TEXT))
                    .unwrap_or_else(|| "(no name)".to_string()),
            ),
            ("content_type", clean_text(content_type)),
            ("size", human_size(size)),
        ]);
        let text = nl.normalize(&template.render(&values, Escape::None));
        let mut text = text.trim_end_matches(['\r', '\n']).to_string();
        if final_newline {
            text.push_str(nl.as_str());
        }
        let (body, transfer_encoding) = encode_text(&text, nl);
        let file = match &name {
            // Path separators go: the name must not point a saving client elsewhere.
            Some(n) => format!(
                "{}{NOTICE_SUFFIX}",
                truncate_chars(&n.replace(['/', '\\'], "_"), MAX_NAME_IN_FILENAME)
            ),
            None => format!("attachment{NOTICE_SUFFIX}"),
        };
        Notice {
            content_type: format!("text/plain; charset=utf-8; {}", param("name", &file)),
            transfer_encoding,
            disposition: format!("attachment; {}", param("filename", &file)),
            body,
        }
    }

    /// The whole part: its three header fields, the empty line, the body.
    pub fn into_part(self, nl: Newline) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.body.len() + 256);
        for (name, value) in [
            ("Content-Type", self.content_type.as_str()),
            ("Content-Transfer-Encoding", self.transfer_encoding),
            ("Content-Disposition", self.disposition.as_str()),
        ] {
            bytes.extend(
                header_field::format_field(name, value, nl)
                    .expect("fixed names; values built here without line breaks"),
            );
        }
        bytes.extend_from_slice(nl.as_bytes());
        bytes.extend(self.body);
        bytes
    }
}

/// A sender's text made safe to show: control characters become `_` (a line break in a
/// name could otherwise forge a boundary line in the notice).
fn clean_text(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `812 bytes`, `12.3 KB`, `4.5 MB` (units of 1024, as mail clients show sizes).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} byte{}", if bytes == 1 { "" } else { "s" });
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The notice body and its transfer encoding: 7bit when ASCII with short lines and no
/// line starting with `--` (a parser could take it for a boundary), quoted-printable
/// otherwise (whose encoder writes `--` as `=2D-`).
fn encode_text(text: &str, nl: Newline) -> (Vec<u8>, &'static str) {
    let dash_line = |b: &[u8]| b.split(|&c| c == b'\n').any(|l| l.starts_with(b"--"));
    let bytes = text.as_bytes();
    if text.is_ascii() && transfer::longest_line(bytes) <= 998 && !dash_line(bytes) {
        return (bytes.to_vec(), "7bit");
    }
    let mut qp = transfer::qp_encode_text(bytes, nl);
    debug_assert!(!dash_line(&qp), "the encoder escapes a leading --");
    // The encoder ends with the text; keep the text's own final line break.
    if text.ends_with('\n') && !qp.ends_with(b"\n") {
        qp.extend_from_slice(nl.as_bytes());
    }
    (qp, "quoted-printable")
}

/// One MIME parameter: `name="value"` when the value is short printable ASCII without
/// quotes, spaces or `=?`; else RFC 2231 (`name*=utf-8''…`, split into `name*0*=`,
/// `name*1*=` … segments), which every current client reads and which folds cleanly.
fn param(name: &str, value: &str) -> String {
    let plain = value.len() <= PARAM_SEGMENT
        && value
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\')
        && !value.contains("=?");
    if plain {
        return format!("{name}=\"{value}\"");
    }
    // One piece per character, so a segment never splits a character's bytes (some
    // decoders decode segments one by one).
    let pieces: Vec<String> = value
        .chars()
        .map(|c| {
            let mut buf = [0u8; 4];
            c.encode_utf8(&mut buf)
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        })
        .collect();
    // Segments of even length near PARAM_SEGMENT, rather than full ones and a stub.
    let total: usize = pieces.iter().map(String::len).sum();
    let target = total.div_ceil(total.div_ceil(PARAM_SEGMENT).max(1));
    let mut segments: Vec<String> = vec![String::new()];
    for piece in pieces {
        if segments.last().expect("one").len() >= target {
            segments.push(String::new());
        }
        segments.last_mut().expect("one").push_str(&piece);
    }
    if segments.len() == 1 {
        return format!("{name}*=utf-8''{}", segments[0]);
    }
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i == 0 {
                format!("{name}*0*=utf-8''{s}")
            } else {
                format!("{name}*{i}*={s}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &[u8]) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(raw).unwrap()
    }

    fn template(text: &str) -> Template {
        Template::parse(text, NOTICE_PLACEHOLDERS).unwrap()
    }

    #[test]
    fn an_ascii_notice_is_7bit_and_names_itself_after_the_original() {
        let n = Notice::render(
            &template("Removed {{ filename }} ({{ content_type }}, {{ size }}).\n"),
            Some("setup.exe"),
            "application/x-msdownload",
            2048,
            Newline::CrLf,
            false,
        );
        assert_eq!(n.transfer_encoding, "7bit");
        assert_eq!(
            String::from_utf8(n.into_part(Newline::CrLf)).unwrap(),
            "Content-Type: text/plain; charset=utf-8; name=\"setup.exe.removed.txt\"\r\nContent-Transfer-Encoding: 7bit\r\nContent-Disposition: attachment; filename=\"setup.exe.removed.txt\"\r\n\r\nRemoved setup.exe (application/x-msdownload, 2.0 KB)."
        );
    }

    #[test]
    fn control_characters_and_path_separators_in_names_are_neutralised() {
        let n = Notice::render(
            &template("{{ filename }}"),
            Some("a\r\n--B--\r\n/etc\\x.exe"),
            "application/octet-stream",
            1,
            Newline::Lf,
            true,
        );
        assert_eq!(n.body, b"a__--B--__/etc\\x.exe\n");
        assert!(n.disposition.contains("a__--B--___etc_x.exe.removed.txt"));
    }

    #[test]
    fn a_line_starting_with_two_dashes_is_never_written_plain() {
        let n = Notice::render(
            &template("--B--\n{{ filename }}"),
            None,
            "x/y",
            0,
            Newline::Lf,
            false,
        );
        assert_eq!(n.transfer_encoding, "quoted-printable");
        assert!(!n.body.split(|&b| b == b'\n').any(|l| l.starts_with(b"--")));
        assert!(
            n.disposition
                .ends_with("filename=\"attachment.removed.txt\"")
        );
    }

    #[test]
    fn non_ascii_text_is_quoted_printable_and_keeps_the_final_line_break() {
        let n = Notice::render(
            &template("Entfernt: {{ filename }}\n"),
            Some("März.pdf"),
            "application/pdf",
            3,
            Newline::CrLf,
            true,
        );
        assert_eq!(n.transfer_encoding, "quoted-printable");
        assert_eq!(n.body, b"Entfernt: M=C3=A4rz.pdf\r\n");
        assert!(
            n.content_type
                .contains("name*=utf-8''M%C3%A4rz.pdf.removed.txt")
        );
    }

    #[test]
    fn long_names_are_cut_in_the_file_name_and_the_text() {
        let long = "x".repeat(400) + ".exe";
        let n = Notice::render(
            &template("{{ filename }}"),
            Some(&long),
            "a/b",
            0,
            Newline::Lf,
            false,
        );
        assert_eq!(n.transfer_encoding, "quoted-printable");
        let text = transfer::qp_decode(&n.body);
        assert_eq!(
            text,
            format!("{}…", "x".repeat(MAX_NAME_IN_TEXT)).as_bytes()
        );
        let part = n.into_part(Newline::Lf);
        assert!(crate::rules::long_lines(&part).is_empty());
        let msg = [b"From: a@example.com\n".as_slice(), &part].concat();
        use mail_parser::MimeHeaders;
        assert_eq!(
            parsed(&msg).parts[0].attachment_name(),
            Some(format!("{}…{NOTICE_SUFFIX}", "x".repeat(MAX_NAME_IN_FILENAME)).as_str())
        );
    }

    #[test]
    fn sizes_read_as_mail_clients_show_them() {
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(812), "812 bytes");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(5 * 1024 * 1024 + 300_000), "5.3 MB");
    }

    #[test]
    fn rfc2231_parameters_split_into_short_segments_that_decode_back() {
        assert_eq!(param("filename", "a.txt"), "filename=\"a.txt\"");
        assert_eq!(param("filename", "a b.txt"), "filename*=utf-8''a%20b.txt");
        let long = "é".repeat(40);
        let p = param("filename", &long);
        assert!(p.starts_with("filename*0*=utf-8''%C3%A9"));
        assert!(p.split("; ").all(|s| s.len() <= PARAM_SEGMENT + 20));
        let lens: Vec<usize> = p
            .split("; ")
            .map(|s| s.split('=').nth(1).unwrap().len())
            .collect();
        assert!(
            lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 20,
            "{p}"
        );
        let raw = format!(
            "From: a@example.com\nContent-Type: application/octet-stream\nContent-Disposition: attachment; {p}\n\nx\n"
        );
        use mail_parser::MimeHeaders;
        assert_eq!(
            parsed(raw.as_bytes()).parts[0].attachment_name(),
            Some(long.as_str())
        );
    }
}
