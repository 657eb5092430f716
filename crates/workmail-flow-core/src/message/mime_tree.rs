//! The message's MIME tree as byte ranges into the original, read once.
//!
//! The structure (where each header, body and delimiter is) comes from
//! [`crate::message::structure`], which reads it as the RFCs and mainstream readers do; this
//! module adds what stages need to decide (type, charset, filename, whether a part sits
//! inside a signature or an attached message, which parts RFC 8621 counts as body) and
//! decodes text without loss. mail-parser reads the top-level header's fields
//! (addresses, subject) for [`MimeTree::message`].

use crate::message::header_field::RawField;
use crate::message::newline::Newline;
use crate::message::params::{self, MediaValue};
use crate::message::structure::{self, Finding, HeaderEnd, NodeKind, Reading};
use crate::message::transfer::TransferEncoding;
use mail_parser::{Message, MessageParser};
use std::borrow::Cow;
use std::ops::Range;

/// A part's position in [`MimeTree::parts`]; 0 is the message itself.
pub type PartId = usize;

/// What a part's body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartKind {
    /// A text/* part other than text/html.
    Text,
    /// A text/html part.
    Html,
    /// Any other leaf.
    Binary,
    /// A multipart with its children.
    Multipart(Vec<PartId>),
    /// An attached message (message/rfc822, message/global): the child is the attached
    /// message's own root, or `None` when it cannot be read in place (a base64 or
    /// quoted-printable attached message; see [`crate::message::structure::FindingKind::EncodedMessage`]).
    Message(Option<PartId>),
}

/// One MIME part.
#[derive(Debug, Clone)]
pub struct Part {
    pub id: PartId,
    pub parent: Option<PartId>,
    pub depth: usize,
    /// The header block, from its first byte to the end of the empty line after it.
    pub header: Range<usize>,
    /// How the header block ended (an empty line, a line that is not a field, the end
    /// of the part).
    pub header_end: HeaderEnd,
    /// The body, without the line break that belongs to the next boundary.
    pub body: Range<usize>,
    /// The header fields with their exact byte ranges.
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
    /// The part ran to the end of the message inside a multipart that never closed.
    pub cut_short: bool,
    /// For a multipart: the boundary its delimiters use.
    pub boundary: Option<Vec<u8>>,
    /// For a multipart: the text before its first delimiter, and after its close
    /// delimiter. Readers ignore both; a filter looks there for hidden parts.
    pub preamble: Range<usize>,
    pub epilogue: Option<Range<usize>>,
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
    /// Kept for callers that match on it; the structure reader itself cannot fail.
    #[error("the MIME parser failed on this message's structure")]
    ParserFailed,
}

/// A text part's content, decoded without loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextView<'a> {
    pub text: Cow<'a, str>,
    pub mode: TextMode,
}

/// How a text part's bytes became [`TextView::text`], which says how new text goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    /// Decoded in this charset, and encoding the text again gives the same bytes.
    Charset(&'static encoding_rs::Encoding),
    /// The bytes do not decode in the declared (or missing) charset, but the charset
    /// keeps ASCII as ASCII: the text holds each byte as the character of the same
    /// number (ISO-8859-1), so the bytes come back exactly and only ASCII may be added.
    Bytes,
}

/// Why a text part cannot be edited as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("not a text part")]
    NotText,
    #[error("transfer encoding {0:?} is not rewritten")]
    UnknownTransferEncoding(String),
    #[error("its {0} body has characters outside the encoding's alphabet")]
    BrokenTransferEncoding(&'static str),
    #[error("charset {0:?} cannot be decoded without loss")]
    Charset(String),
}

/// A parsed message: the original bytes, the parts and what readers could disagree on.
pub struct MimeTree<'a> {
    raw: &'a [u8],
    message: Message<'a>,
    parts: Vec<Part>,
    newline: Newline,
    text_body: Vec<PartId>,
    html_body: Vec<PartId>,
    findings: Vec<Finding>,
}

impl<'a> MimeTree<'a> {
    /// Reads `raw` once. Malformed MIME is read as the RFCs' readers read it; only empty
    /// input is an error.
    pub fn parse(raw: &'a [u8]) -> Result<MimeTree<'a>, ParseError> {
        MimeTree::parse_as(raw, Reading::default())
    }

    /// Reads `raw` the way `reading` says (see [`Reading`]); security stages use the
    /// alternatives to find what another reader would show.
    pub fn parse_as(raw: &'a [u8], reading: Reading) -> Result<MimeTree<'a>, ParseError> {
        if raw.is_empty() {
            return Err(ParseError::Unreadable);
        }
        let scanned = structure::scan(raw, reading);
        let parts = describe_all(raw, scanned.nodes);
        let mut findings = scanned.findings;
        findings.extend(name_findings(raw, &parts));
        findings.sort_by_key(|f| (f.offset, f.part));
        let (text_body, html_body) = body_parts(&parts);
        let header = &raw[parts[0].header.clone()];
        let message = std::panic::catch_unwind(|| MessageParser::default().parse_headers(header))
            .ok()
            .flatten()
            .filter(|m| !m.parts.is_empty())
            .unwrap_or_else(no_header);
        Ok(MimeTree {
            raw,
            newline: Newline::detect(raw),
            message,
            parts,
            text_body,
            html_body,
            findings,
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

    /// The top-level header as mail-parser reads it (addresses, subject, dates); it
    /// holds no parts.
    pub fn message(&self) -> &Message<'a> {
        &self.message
    }

    /// The first address of the From field, as the parser read it.
    pub fn from_address(&self) -> Option<&str> {
        self.message.from()?.first()?.address.as_deref()
    }

    /// Whether readers disagree on where this message's header is: its first line
    /// starts with white space, which Python takes for a stray continuation and other
    /// parsers for the end of an empty header, or with a byte order mark, which some
    /// parsers skip and others take for body text.
    pub fn header_is_ambiguous(&self, id: PartId) -> bool {
        self.findings.iter().any(|f| {
            f.part == id
                && matches!(
                    f.kind,
                    structure::FindingKind::LeadingWhitespace
                        | structure::FindingKind::ByteOrderMark
                )
        })
    }

    /// What readers could read two ways in this message, in byte order.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The text/plain parts RFC 8621 section 4.1.4 counts as the body, in order.
    pub fn text_body(&self) -> &[PartId] {
        &self.text_body
    }

    /// The text/html parts RFC 8621 section 4.1.4 counts as the body, in order.
    pub fn html_body(&self) -> &[PartId] {
        &self.html_body
    }

    /// The boundaries of the multiparts around a part, innermost first: a line of its
    /// body that starts with `--` and one of these would end it.
    pub fn enclosing_boundaries(&self, id: PartId) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut cur = self.parts[id].parent;
        while let Some(p) = cur {
            if let Some(b) = &self.parts[p].boundary {
                out.push(b.as_slice());
            }
            cur = self.parts[p].parent;
        }
        out
    }

    /// The bytes of a part's body as they stand in the message.
    pub fn body_bytes(&self, id: PartId) -> &'a [u8] {
        let r = &self.parts[id].body;
        &self.raw[r.start.min(self.raw.len())..r.end.min(self.raw.len())]
    }

    /// A text part's content, transfer-decoded and in UTF-8, when it decodes without
    /// loss in its charset (see [`MimeTree::text_view`] for the byte-exact view of the
    /// rest).
    pub fn decoded_text(&self, id: PartId) -> Option<Cow<'a, str>> {
        match self.text_view(id) {
            Ok(TextView {
                text,
                mode: TextMode::Charset(_),
            }) => Some(text),
            _ => None,
        }
    }

    /// A text part's content as text that maps back to its bytes exactly: decoded in
    /// its charset when that is lossless, else byte for byte ([`TextMode::Bytes`])
    /// where the charset keeps ASCII as ASCII.
    pub fn text_view(&self, id: PartId) -> Result<TextView<'a>, TextError> {
        let part = &self.parts[id];
        if !matches!(part.kind, PartKind::Text | PartKind::Html) {
            return Err(TextError::NotText);
        }
        let encoding =
            TransferEncoding::parse(part.transfer_encoding.as_deref()).ok_or_else(|| {
                TextError::UnknownTransferEncoding(
                    part.transfer_encoding.clone().unwrap_or_default(),
                )
            })?;
        let body = self.body_bytes(id);
        if encoding == TransferEncoding::Base64 && !crate::message::transfer::base64_is_clean(body)
        {
            return Err(TextError::BrokenTransferEncoding("base64"));
        }
        let bytes: Cow<'a, [u8]> = match encoding {
            TransferEncoding::Identity => Cow::Borrowed(body),
            other => Cow::Owned(other.decode(body)),
        };
        decode_text(bytes, part.charset.as_deref())
    }

    /// Whether a part's transfer encoding is broken or it was cut short by a multipart
    /// that never closed: its bytes are not what its sender wrote.
    pub fn has_encoding_problem(&self, id: PartId) -> bool {
        let part = &self.parts[id];
        part.cut_short
            || (TransferEncoding::parse(part.transfer_encoding.as_deref())
                == Some(TransferEncoding::Base64)
                && !crate::message::transfer::base64_is_clean(self.body_bytes(id)))
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
}

/// Charsets in which an ASCII byte is always the ASCII character, whatever surrounds it,
/// so ASCII text can be added to their bytes without decoding them.
fn keeps_ascii(charset: Option<&str>) -> bool {
    let Some(label) = charset else {
        return true;
    };
    match encoding_rs::Encoding::for_label(label.trim().as_bytes()) {
        Some(enc) => {
            enc.is_ascii_compatible()
                && enc != encoding_rs::ISO_2022_JP
                && enc != encoding_rs::REPLACEMENT
        }
        None => {
            let l = label.trim().to_ascii_lowercase();
            !(l.starts_with("utf-16")
                || l.starts_with("utf-32")
                || l.starts_with("ucs")
                || l.starts_with("utf-7")
                || l.contains("2022")
                || l.starts_with("hz"))
        }
    }
}

/// Decodes transfer-decoded text bytes in `charset` when that is lossless (encoding the
/// result again gives the same bytes), else byte for byte where the charset keeps ASCII.
pub fn decode_text<'a>(
    bytes: Cow<'a, [u8]>,
    charset: Option<&str>,
) -> Result<TextView<'a>, TextError> {
    let declared = charset.map(|c| c.trim().trim_matches('"'));
    let label = declared.map(str::to_ascii_lowercase);
    // encoding_rs reads US-ASCII and ISO-8859-1 as windows-1252, as browsers do; a part
    // that says either means exactly it. US-ASCII text is ASCII; ISO-8859-1 maps every
    // byte to the character of the same number, and back.
    match label.as_deref() {
        Some("us-ascii" | "ascii" | "ansi_x3.4-1968" | "us") if !bytes.is_ascii() => {
            return Ok(bytes_view(bytes));
        }
        Some("iso-8859-1" | "iso_8859-1" | "latin1" | "l1" | "iso-ir-100" | "cp819") => {
            let text: String = bytes.iter().map(|&b| b as char).collect();
            return Ok(TextView {
                text: Cow::Owned(text),
                mode: TextMode::Charset(encoding_rs::WINDOWS_1252),
            });
        }
        _ => {}
    }
    let encoding = match declared {
        None | Some("") => Some(encoding_rs::UTF_8).filter(|_| bytes.is_ascii()),
        Some(label) => encoding_rs::Encoding::for_label(label.as_bytes()),
    };
    if let Some(enc) = encoding
        && let Some(owned) = decode_exactly(&bytes, enc)
    {
        let text = match (owned, bytes) {
            (None, Cow::Borrowed(b)) => {
                Cow::Borrowed(std::str::from_utf8(b).expect("checked as UTF-8"))
            }
            (None, Cow::Owned(b)) => Cow::Owned(String::from_utf8(b).expect("checked as UTF-8")),
            (Some(t), _) => Cow::Owned(t),
        };
        return Ok(TextView {
            text,
            mode: TextMode::Charset(enc),
        });
    }
    if keeps_ascii(declared) {
        return Ok(bytes_view(bytes));
    }
    Err(TextError::Charset(declared.unwrap_or("none").to_string()))
}

/// Bytes as text one character per byte ([`TextMode::Bytes`]).
fn bytes_view<'a>(bytes: Cow<'a, [u8]>) -> TextView<'a> {
    TextView {
        text: Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
        mode: TextMode::Bytes,
    }
}

/// Whether `bytes` decode in `enc` such that encoding the text back yields the same
/// bytes: `Some(None)` when they are UTF-8 already (no copy needed), `Some(Some(text))`
/// when decoded, `None` when not lossless.
fn decode_exactly(bytes: &[u8], enc: &'static encoding_rs::Encoding) -> Option<Option<String>> {
    if enc == encoding_rs::UTF_8 || (bytes.is_ascii() && enc.is_ascii_compatible()) {
        return std::str::from_utf8(bytes).ok().map(|_| None);
    }
    let text = enc.decode_without_bom_handling_and_without_replacement(bytes)?;
    let (back, _, unmappable) = enc.encode(&text);
    (!unmappable && back.as_ref() == bytes).then(|| Some(text.into_owned()))
}

/// The parser's view of a message without header fields: one empty root part, so its
/// accessors (which index the root) answer "none".
fn no_header<'a>() -> Message<'a> {
    MessageParser::default()
        .parse_headers(b"X-Empty: \r\n\r\n".as_slice())
        .map(|mut m| {
            m.parts[0].headers.clear();
            m
        })
        .expect("a one-field header parses")
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

/// Turns scanned nodes into parts, adding what stages read.
fn describe_all(raw: &[u8], nodes: Vec<structure::Node>) -> Vec<Part> {
    let mut parts: Vec<Part> = Vec::with_capacity(nodes.len());
    for (id, mut node) in nodes.into_iter().enumerate() {
        let parent = node.parent.map(|p| &parts[p]);
        let parent_protected = parent.is_some_and(|p| p.protected);
        let in_attached_message =
            parent.is_some_and(|p| p.in_attached_message || matches!(p.kind, PartKind::Message(_)));
        let kind = match std::mem::replace(&mut node.kind, NodeKind::Leaf) {
            NodeKind::Multipart(children) => PartKind::Multipart(children),
            NodeKind::Message(child) => PartKind::Message(child),
            NodeKind::Leaf if node.content_type == "text/html" => PartKind::Html,
            NodeKind::Leaf if node.content_type.starts_with("text/") => PartKind::Text,
            NodeKind::Leaf => PartKind::Binary,
        };
        let epilogue = node.epilogue();
        let disposition_field = node
            .field("content-disposition")
            .map(|f| structure::field_value(raw, f));
        let disposition = disposition_field.as_deref().map(MediaValue::parse);
        let names = declared_names(&node.media, disposition.as_ref());
        let mut part = Part {
            id,
            parent: node.parent,
            depth: node.depth,
            header: node.header,
            header_end: node.header_end,
            body: node.body,
            fields: node.fields,
            charset: node.media.param("charset").map(|c| c.to_ascii_lowercase()),
            content_type: node.content_type,
            transfer_encoding: node.transfer_encoding,
            disposition: disposition
                .as_ref()
                .map(|d| d.token.clone())
                .filter(|d| !d.is_empty()),
            filename: names.first().cloned(),
            names,
            kind,
            is_message_root: node.is_message_root,
            protected: false,
            in_attached_message,
            cut_short: node.cut_short,
            boundary: node.boundary.take(),
            preamble: node.preamble,
            epilogue,
        };
        part.protected = parent_protected || part.is_protection_container();
        parts.push(part);
    }
    parts
}

/// Content-Disposition's filename, then Content-Type's name when it differs, each
/// RFC 2047-decoded (clients decode encoded words even in quoted parameters).
fn declared_names(media: &MediaValue, disposition: Option<&MediaValue>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let found = [
        disposition.and_then(|d| d.param("filename")),
        media.param("name"),
    ];
    for name in found.into_iter().flatten() {
        let decoded = params::decode_encoded_words(name);
        if !decoded.is_empty() && !names.contains(&decoded) {
            names.push(decoded);
        }
    }
    names
}

/// Names that differ between name and filename, and names holding control characters.
fn name_findings(raw: &[u8], parts: &[Part]) -> Vec<Finding> {
    use structure::FindingKind;
    let mut out = Vec::new();
    for p in parts {
        let offset = p.header.start;
        let mut all: Vec<String> = Vec::new();
        for f in p.fields.iter().filter(|f| {
            f.name.eq_ignore_ascii_case("content-type")
                || f.name.eq_ignore_ascii_case("content-disposition")
        }) {
            let v = MediaValue::parse(&structure::field_value(raw, f));
            for (n, value) in &v.params {
                if n == "name" || n == "filename" {
                    let d = params::decode_encoded_words(value);
                    if !all.contains(&d) {
                        all.push(d);
                    }
                }
            }
        }
        if all.len() > 1 {
            out.push(Finding {
                part: p.id,
                offset,
                kind: FindingKind::ConflictingNames,
            });
        }
        if all
            .iter()
            .any(|n| n.chars().any(|c| c.is_control() || params::is_invisible(c)))
        {
            out.push(Finding {
                part: p.id,
                offset,
                kind: FindingKind::ControlInName,
            });
        }
    }
    out
}

/// RFC 8621 section 4.1.4 (parseStructure): the parts a client shows as the text and
/// the HTML body. Attached messages are not descended into.
fn body_parts(parts: &[Part]) -> (Vec<PartId>, Vec<PartId>) {
    let mut text = Vec::new();
    let mut html = Vec::new();
    match &parts[0].kind {
        PartKind::Multipart(children) => {
            let sub = parts[0].content_type.split('/').nth(1).unwrap_or("");
            walk_body(
                parts,
                children,
                sub,
                sub == "alternative",
                Some(&mut text),
                Some(&mut html),
            );
        }
        _ => walk_body(
            parts,
            &[0],
            "mixed",
            false,
            Some(&mut text),
            Some(&mut html),
        ),
    }
    (text, html)
}

fn is_inline_media(t: &str) -> bool {
    t.starts_with("image/") || t.starts_with("audio/") || t.starts_with("video/")
}

/// One level of parseStructure. As in the RFC's code, a list set to null inside a
/// multipart/alternative is null only for the rest of that call.
fn walk_body(
    parts: &[Part],
    ids: &[PartId],
    multipart_type: &str,
    in_alternative: bool,
    mut text_body: Option<&mut Vec<PartId>>,
    mut html_body: Option<&mut Vec<PartId>>,
) {
    let text_len = text_body.as_ref().map(|l| l.len());
    let html_len = html_body.as_ref().map(|l| l.len());
    for (i, &id) in ids.iter().enumerate() {
        let part = &parts[id];
        let t = part.content_type.as_str();
        let is_inline = part.disposition.as_deref() != Some("attachment")
            && (t == "text/plain" || t == "text/html" || is_inline_media(t))
            && (i == 0
                || (multipart_type != "related" && (is_inline_media(t) || part.names.is_empty())));
        if let PartKind::Multipart(children) = &part.kind {
            let sub = t.split('/').nth(1).unwrap_or("");
            walk_body(
                parts,
                children,
                sub,
                in_alternative || sub == "alternative",
                text_body.as_deref_mut(),
                html_body.as_deref_mut(),
            );
        } else if is_inline {
            if multipart_type == "alternative" {
                match t {
                    "text/plain" => text_body
                        .as_deref_mut()
                        .into_iter()
                        .for_each(|l| l.push(id)),
                    "text/html" => html_body
                        .as_deref_mut()
                        .into_iter()
                        .for_each(|l| l.push(id)),
                    _ => {}
                }
                continue;
            } else if in_alternative {
                if t == "text/plain" {
                    html_body = None;
                }
                if t == "text/html" {
                    text_body = None;
                }
            }
            if let Some(l) = text_body.as_deref_mut() {
                l.push(id);
            }
            if let Some(l) = html_body.as_deref_mut() {
                l.push(id);
            }
        }
    }
    if multipart_type == "alternative"
        && let (Some(text), Some(html)) = (text_body, html_body)
    {
        if text_len == Some(text.len()) && html_len != Some(html.len()) {
            text.extend_from_slice(&html[html_len.unwrap_or(0)..]);
        }
        if html_len == Some(html.len()) && text_len != Some(text.len()) {
            html.extend_from_slice(&text[text_len.unwrap_or(0)..]);
        }
    }
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
        let out = crate::message::edit::Edits::new().apply(&tree).unwrap();
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
