//! The message's MIME tree as byte ranges into the original, parsed once.
//!
//! mail-parser gives every part's header and body offsets; this module flattens its
//! nested structure (multiparts and attached messages) into one list in document order,
//! with what stages need to decide (type, charset, filename, whether the part sits inside
//! a signature or an attached message) and what the editor needs to splice (ranges).

use crate::header_field::RawField;
use crate::newline::Newline;
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use std::borrow::Cow;
use std::ops::Range;

/// A part's position in [`MimeTree::parts`]; 0 is the message itself.
pub type PartId = usize;

/// What a part's body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartKind {
    /// A text/* part other than text/html, decoded by the parser.
    Text,
    /// A text/html part.
    Html,
    /// Any other leaf.
    Binary,
    /// A multipart with its children.
    Multipart(Vec<PartId>),
    /// An attached message (message/rfc822, message/global): the child is the attached
    /// message's own root, or `None` when the parser could only read it from a decoded
    /// copy (a base64 attached message), whose offsets do not point into our bytes.
    Message(Option<PartId>),
}

/// One MIME part.
#[derive(Debug, Clone)]
pub struct Part {
    pub id: PartId,
    pub parent: Option<PartId>,
    pub depth: usize,
    /// The header block, from its first field to the end of the empty line after it.
    pub header: Range<usize>,
    /// The body, without the line break that belongs to the next boundary.
    pub body: Range<usize>,
    /// The header fields as the parser found them, with their exact byte ranges.
    pub fields: Vec<RawField>,
    /// `type/subtype`, lowercase.
    pub content_type: String,
    pub charset: Option<String>,
    /// The Content-Transfer-Encoding token, lowercase.
    pub transfer_encoding: Option<String>,
    /// The Content-Disposition type, lowercase (`attachment`, `inline`).
    pub disposition: Option<String>,
    /// The filename, RFC 2231 and RFC 2047 decoded, from Content-Disposition's filename
    /// or Content-Type's name.
    pub filename: Option<String>,
    /// Every name the part declares, decoded: Content-Disposition's filename, then
    /// Content-Type's name when it differs. Clients disagree on which one wins, so a
    /// policy that matches names must check each.
    pub names: Vec<String>,
    pub kind: PartKind,
    /// This part's header block is a message header (the top level, or an attached
    /// message's root).
    pub is_message_root: bool,
    /// Inside multipart/signed, multipart/encrypted or application/pkcs7-mime, or is one:
    /// changing any byte here breaks a signature or the encryption.
    pub protected: bool,
    /// Inside an attached message (message/rfc822 and every other message/*).
    pub in_attached_message: bool,
    locator: Locator,
}

/// Where the parser keeps a part: the indices of the attached-message parts leading to
/// its message, then its index in that message.
#[derive(Debug, Clone)]
struct Locator {
    nesting: Vec<usize>,
    index: usize,
}

impl Part {
    pub fn is_multipart(&self) -> bool {
        matches!(self.kind, PartKind::Multipart(_))
    }

    pub fn is_leaf(&self) -> bool {
        matches!(
            self.kind,
            PartKind::Text | PartKind::Html | PartKind::Binary
        )
    }

    pub fn children(&self) -> &[PartId] {
        match &self.kind {
            PartKind::Multipart(c) => c,
            _ => &[],
        }
    }

    /// The type before the slash (`text`, `multipart`).
    pub fn main_type(&self) -> &str {
        self.content_type.split('/').next().unwrap_or("")
    }

    /// Whether the part is itself a signature or encryption container.
    pub fn is_protection_container(&self) -> bool {
        matches!(
            self.content_type.as_str(),
            "multipart/signed"
                | "multipart/encrypted"
                | "application/pkcs7-mime"
                | "application/x-pkcs7-mime"
        )
    }

    /// The first field with this name, case-insensitively.
    pub fn field(&self, name: &str) -> Option<&RawField> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// Why a message could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a message: no header fields and no body could be read")]
    Unreadable,
    /// mail-parser 0.11 panics on some malformed nesting ("Invalid part ID, could not
    /// find multipart"); such a message is treated as unreadable, never as a crash.
    #[error("the MIME parser failed on this message's structure")]
    ParserFailed,
}

/// A parsed message: the original bytes, the parser's view and the flattened parts.
pub struct MimeTree<'a> {
    raw: &'a [u8],
    message: Message<'a>,
    parts: Vec<Part>,
    newline: Newline,
    text_body: Vec<PartId>,
    html_body: Vec<PartId>,
}

impl<'a> MimeTree<'a> {
    /// Parses `raw` once. Malformed MIME is read as far as the parser can; only bytes the
    /// parser cannot read as a message at all are an error.
    pub fn parse(raw: &'a [u8]) -> Result<MimeTree<'a>, ParseError> {
        let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw))
            .map_err(|_| ParseError::ParserFailed)?;
        let mut message = parsed.ok_or(ParseError::Unreadable)?;
        if message.parts.is_empty() {
            return Err(ParseError::Unreadable);
        }
        let parts = flatten(raw, &message);
        release_decoded_binaries(&mut message);
        let map = |ids: &[u32]| -> Vec<PartId> {
            ids.iter()
                .filter_map(|&i| {
                    parts
                        .iter()
                        .find(|p| p.locator.nesting.is_empty() && p.locator.index == i as usize)
                        .map(|p| p.id)
                })
                .collect()
        };
        let text_body = map(&message.text_body);
        let html_body = map(&message.html_body);
        Ok(MimeTree {
            raw,
            newline: Newline::detect(raw),
            message,
            parts,
            text_body,
            html_body,
        })
    }

    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The message's own line ending (that of its first line).
    pub fn newline(&self) -> Newline {
        self.newline
    }

    /// The line ending used inside a part's header block.
    pub fn newline_of(&self, id: PartId) -> Newline {
        Newline::at(self.raw, self.parts[id].header.start, self.newline)
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    pub fn part(&self, id: PartId) -> &Part {
        &self.parts[id]
    }

    pub fn root(&self) -> &Part {
        &self.parts[0]
    }

    /// The parser's view of the whole message (addresses, subject, dates).
    pub fn message(&self) -> &Message<'a> {
        &self.message
    }

    /// The text/plain parts RFC 8621 section 4.1.4 counts as the body, in order.
    pub fn text_body(&self) -> &[PartId] {
        &self.text_body
    }

    /// The text/html parts RFC 8621 section 4.1.4 counts as the body, in order.
    pub fn html_body(&self) -> &[PartId] {
        &self.html_body
    }

    /// The bytes of a part's body as they stand in the message.
    pub fn body_bytes(&self, id: PartId) -> &'a [u8] {
        let r = &self.parts[id].body;
        &self.raw[r.start.min(self.raw.len())..r.end.min(self.raw.len())]
    }

    /// A text part's content, transfer-decoded and converted to UTF-8 by the parser.
    pub fn decoded_text(&self, id: PartId) -> Option<&str> {
        match &self.parser_part(id).body {
            PartType::Text(t) | PartType::Html(t) => Some(t.as_ref()),
            _ => None,
        }
    }

    /// Whether the parser met a transfer-encoding or charset problem in this part.
    pub fn has_encoding_problem(&self, id: PartId) -> bool {
        self.parser_part(id).is_encoding_problem
    }

    /// The raw value of a part's first field with this name (without the name and colon,
    /// unfolded, trimmed), as written.
    pub fn field_value(&self, id: PartId, name: &str) -> Option<String> {
        self.parts[id].field(name).map(|f| field_text(self.raw, f))
    }

    /// Every value of the fields with this name in a part's header block, in order.
    pub fn field_values(&self, id: PartId, name: &str) -> Vec<String> {
        self.parts[id]
            .fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| field_text(self.raw, f))
            .collect()
    }

    fn parser_part(&self, id: PartId) -> &MessagePart<'a> {
        let loc = &self.parts[id].locator;
        let mut msg = &self.message;
        for &i in &loc.nesting {
            match &msg.parts[i].body {
                PartType::Message(m) => msg = m,
                _ => unreachable!("locator only descends through attached messages"),
            }
        }
        &msg.parts[loc.index]
    }
}

/// Frees the parser's decoded copies of non-text parts. No stage reads them (sizes are
/// counted from the encoded body, and edits splice the original bytes), and a 29 MB
/// attachment decoded is 29 MB a 128 MB Lambda cannot spare. Text parts stay decoded.
fn release_decoded_binaries(message: &mut Message<'_>) {
    for part in &mut message.parts {
        match &mut part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => *b = Cow::Borrowed(&[]),
            PartType::Message(nested) => release_decoded_binaries(nested),
            _ => {}
        }
    }
}

/// A field's value as written: after the colon, unfolded, trimmed.
pub fn field_text(raw: &[u8], f: &RawField) -> String {
    let bytes = &raw[f.range.start.min(raw.len())..f.range.end.min(raw.len())];
    let Some(colon) = bytes.iter().position(|&b| b == b':') else {
        return String::new();
    };
    String::from_utf8_lossy(&bytes[colon + 1..])
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Pending {
    nesting: Vec<usize>,
    index: usize,
    parent: Option<PartId>,
    depth: usize,
    protected: bool,
    in_attached_message: bool,
    is_message_root: bool,
}

/// Walks the parser's structure depth-first with an explicit stack (deeply nested mail
/// must not overflow ours), assigning ids in document order.
fn flatten(raw: &[u8], top: &Message<'_>) -> Vec<Part> {
    let mut parts: Vec<Part> = Vec::new();
    let mut stack = vec![Pending {
        nesting: Vec::new(),
        index: 0,
        parent: None,
        depth: 0,
        protected: false,
        in_attached_message: false,
        is_message_root: true,
    }];
    // On broken input the parser can list a part among its own children (seen: a
    // multipart whose children are [0, 1], itself first) or one part under two parents;
    // each part is taken once, so the walk ends and no bytes are claimed twice.
    let mut seen: std::collections::HashSet<(Vec<usize>, usize)> = std::collections::HashSet::new();
    while let Some(p) = stack.pop() {
        if !seen.insert((p.nesting.clone(), p.index)) {
            continue;
        }
        let msg = message_at(top, &p.nesting);
        let Some(mp) = msg.parts.get(p.index) else {
            continue;
        };
        let id = parts.len();
        if let Some(parent) = p.parent {
            match &mut parts[parent].kind {
                PartKind::Multipart(children) => children.push(id),
                PartKind::Message(child) => *child = Some(id),
                _ => {}
            }
        }
        let mut part = describe(mp, id, &p);
        let protected = p.protected || part.is_protection_container();
        part.protected = protected;
        match &mp.body {
            PartType::Multipart(children) => {
                for &child in children.iter().rev() {
                    stack.push(Pending {
                        nesting: p.nesting.clone(),
                        index: child as usize,
                        parent: Some(id),
                        depth: p.depth + 1,
                        protected,
                        in_attached_message: p.in_attached_message,
                        is_message_root: false,
                    });
                }
            }
            PartType::Message(nested) if shares_buffer(raw, nested) => {
                let mut nesting = p.nesting.clone();
                nesting.push(p.index);
                stack.push(Pending {
                    nesting,
                    index: 0,
                    parent: Some(id),
                    depth: p.depth + 1,
                    protected,
                    in_attached_message: true,
                    is_message_root: true,
                });
            }
            _ => {}
        }
        parts.push(part);
    }
    parts
}

/// An attached message parsed in place has offsets into our bytes; one the parser had to
/// decode first (base64) has offsets into its own copy, and is treated as opaque.
fn shares_buffer(raw: &[u8], nested: &Message<'_>) -> bool {
    match &nested.raw_message {
        Cow::Borrowed(b) => std::ptr::eq(b.as_ptr(), raw.as_ptr()) && b.len() == raw.len(),
        Cow::Owned(_) => false,
    }
}

fn message_at<'m, 'a>(top: &'m Message<'a>, nesting: &[usize]) -> &'m Message<'a> {
    let mut msg = top;
    for &i in nesting {
        match &msg.parts[i].body {
            PartType::Message(m) => msg = m,
            _ => unreachable!("nesting only lists attached messages"),
        }
    }
    msg
}

fn describe(mp: &MessagePart<'_>, id: PartId, p: &Pending) -> Part {
    let ct = mp.content_type();
    let content_type = match ct {
        Some(ct) => match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
            None => ct.c_type.to_ascii_lowercase(),
        },
        None if mp.is_message() => "message/rfc822".to_string(),
        None => "text/plain".to_string(),
    };
    let kind = match &mp.body {
        PartType::Text(_) => PartKind::Text,
        PartType::Html(_) => PartKind::Html,
        PartType::Binary(_) | PartType::InlineBinary(_) => PartKind::Binary,
        PartType::Multipart(_) => PartKind::Multipart(Vec::new()),
        PartType::Message(_) => PartKind::Message(None),
    };
    let fields = mp
        .headers
        .iter()
        .map(|h| RawField {
            name: h.name.as_str().to_string(),
            range: h.offset_field as usize..h.offset_end as usize,
        })
        .collect();
    Part {
        id,
        parent: p.parent,
        depth: p.depth,
        header: mp.offset_header as usize..mp.offset_body as usize,
        body: mp.offset_body as usize..(mp.offset_end.max(mp.offset_body)) as usize,
        fields,
        content_type,
        charset: ct
            .and_then(|c| c.attribute("charset"))
            .map(|c| c.to_ascii_lowercase()),
        transfer_encoding: mp
            .content_transfer_encoding()
            .map(|t| t.trim().to_ascii_lowercase()),
        disposition: mp
            .content_disposition()
            .map(|d| d.c_type.to_ascii_lowercase()),
        filename: mp.attachment_name().map(str::to_string),
        names: declared_names(mp),
        kind,
        is_message_root: p.is_message_root,
        protected: p.protected,
        in_attached_message: p.in_attached_message,
        locator: Locator {
            nesting: p.nesting.clone(),
            index: p.index,
        },
    }
}

fn declared_names(mp: &MessagePart<'_>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let found = [
        mp.content_disposition()
            .and_then(|d| d.attribute("filename")),
        mp.content_type().and_then(|c| c.attribute("name")),
    ];
    for name in found.into_iter().flatten() {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// A forwarded message holding a message/rfc822 whose body is nested multiparts: the
/// shape of corpus message spamassassin/nice/mime9.eml, on which mail-parser 0.11 panics.
#[cfg(test)]
pub(crate) const TRIPS_PARSER_DEBUG_ASSERT: &[u8] = b"From: a@x\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nhi\n--b1\nContent-Type: message/rfc822\n\nFrom: b@x\nContent-Type: message/rfc822\n\nFrom: c@x\nContent-Type: multipart/mixed; boundary=b2\n\n--b2\nContent-Type: multipart/alternative; boundary=b3\n\n--b3\nContent-Type: text/plain\n\nx\n--b3--\n\n--b2\nContent-Type: image/jpeg\n\nAAAA\n--b2--\n\n--b1--\n";

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: a@example.com\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\nhello\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@example.net\r\nSubject: inner\r\n\r\ninner body\r\n--XX\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--XX--\r\n";

    #[test]
    fn a_message_that_trips_the_parsers_debug_assertion_parses_and_round_trips() {
        // mail-parser 0.11 has a debug_assert on this shape (spamassassin/nice/mime9.eml);
        // Cargo.toml turns it off in dev builds so tests run what production runs.
        let tree = MimeTree::parse(TRIPS_PARSER_DEBUG_ASSERT).unwrap();
        assert!(tree.parts().len() > 3);
        let out = crate::edit::Edits::new().apply(&tree).unwrap();
        assert_eq!(out.to_vec(), TRIPS_PARSER_DEBUG_ASSERT);
    }

    #[test]
    fn parts_are_flattened_in_document_order_with_ranges_into_the_original() {
        let tree = MimeTree::parse(MIXED).unwrap();
        let types: Vec<&str> = tree
            .parts()
            .iter()
            .map(|p| p.content_type.as_str())
            .collect();
        assert_eq!(
            types,
            [
                "multipart/mixed",
                "text/plain",
                "message/rfc822",
                "text/plain",
                "application/pdf"
            ]
        );
        assert_eq!(tree.body_bytes(1), b"hello");
        assert_eq!(tree.body_bytes(3), b"inner body");
        assert_eq!(tree.root().children(), &[1, 2, 4]);
        assert_eq!(tree.part(2).kind, PartKind::Message(Some(3)));
    }

    #[test]
    fn attached_message_parts_are_marked_and_body_lists_hold_only_top_level_parts() {
        let tree = MimeTree::parse(MIXED).unwrap();
        assert!(tree.part(3).in_attached_message);
        assert!(tree.part(3).is_message_root);
        assert!(!tree.part(1).in_attached_message);
        assert_eq!(tree.text_body(), &[1]);
    }

    #[test]
    fn charset_encoding_disposition_and_filename_are_read() {
        let tree = MimeTree::parse(MIXED).unwrap();
        assert_eq!(tree.part(1).charset.as_deref(), Some("iso-8859-1"));
        let pdf = tree.part(4);
        assert_eq!(pdf.transfer_encoding.as_deref(), Some("base64"));
        assert_eq!(pdf.disposition.as_deref(), Some("attachment"));
        assert_eq!(pdf.filename.as_deref(), Some("r.pdf"));
    }

    #[test]
    fn parts_inside_multipart_signed_are_protected() {
        let raw = b"From: a@example.com\nContent-Type: multipart/signed; boundary=S; protocol=\"application/pkcs7-signature\"\n\n--S\nContent-Type: text/plain\n\nsigned text\n--S\nContent-Type: application/pkcs7-signature\n\nAAAA\n--S--\n";
        let tree = MimeTree::parse(raw).unwrap();
        assert!(tree.parts().iter().all(|p| p.protected));
        assert_eq!(tree.newline(), Newline::Lf);
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let mut raw = b"From: a@example.com\n".to_vec();
        for i in 0..2000 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n").as_bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: text/plain\n\ndeep\n");
        let tree = MimeTree::parse(&raw).unwrap();
        assert!(tree.parts().len() > 1);
    }

    #[test]
    fn field_value_unfolds_the_raw_value() {
        let raw = b"Subject: a\r\n  folded\r\nFrom: x@example.com\r\n\r\nb";
        let tree = MimeTree::parse(raw).unwrap();
        assert_eq!(tree.field_value(0, "subject").as_deref(), Some("a folded"));
    }

    #[test]
    fn filenames_are_decoded_from_rfc2231_rfc2047_and_continuations() {
        let cases: [(&str, &str); 5] = [
            (
                "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=UTF-8''%E2%82%AC.exe",
                "\u{20ac}.exe",
            ),
            (
                "Content-Type: application/octet-stream\nContent-Disposition: attachment;\n filename*0*=UTF-8''%E2%82%AC%20long;\n filename*1=\" name\";\n filename*2*=%C3%A9.EXE",
                "\u{20ac} long name\u{e9}.EXE",
            ),
            (
                "Content-Type: application/octet-stream;\n name=\"=?utf-8?B?w6lsw6h2ZS5leGU=?=\"",
                "\u{e9}l\u{e8}ve.exe",
            ),
            (
                "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"=?iso-8859-1?Q?r=E9sum=E9=2Edoc?=\"",
                "r\u{e9}sum\u{e9}.doc",
            ),
            (
                "Content-Type: application/octet-stream; name*=iso-8859-1'fr'caf%E9.zip",
                "caf\u{e9}.zip",
            ),
        ];
        for (header, want) in cases {
            let raw = format!(
                "From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\n{header}\n\nAAAA\n--B--\n"
            );
            let tree = MimeTree::parse(raw.as_bytes()).unwrap();
            assert_eq!(tree.part(1).filename.as_deref(), Some(want), "{header}");
            assert_eq!(tree.part(1).names, [want], "{header}");
        }
    }

    #[test]
    fn both_declared_names_are_kept_when_they_differ() {
        let raw = b"From: a@example.com\nContent-Type: application/octet-stream; name=\"a.exe\"\nContent-Disposition: attachment; filename=\"a.pdf\"\n\nAAAA\n";
        let tree = MimeTree::parse(raw).unwrap();
        assert_eq!(tree.part(0).filename.as_deref(), Some("a.pdf"));
        assert_eq!(tree.part(0).names, ["a.pdf", "a.exe"]);
    }
}
