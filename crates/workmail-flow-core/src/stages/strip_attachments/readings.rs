//! Every way a reader could take a part's name and type, and the other readings of a
//! whole message's structure: what `strip_attachments` must check so that a sender who
//! writes a header two ways, or bytes that two readers split differently, cannot get a
//! forbidden file past it.

use crate::message::mime_tree::{MimeTree, Part};
use crate::message::params::{self, MediaValue};
use crate::message::structure::{self, FindingKind, Reading};
use crate::message::transfer::TransferEncoding;
use mail_parser::{MessageParser, MimeHeaders, PartType};

/// What one part declares, on every reading of its header.
#[derive(Debug, Default)]
pub struct Declared {
    /// Every file name: from every Content-Type `name` and Content-Disposition
    /// `filename` (all duplicates of both fields), decoded and not, with the variants
    /// file systems and C strings make of them.
    pub names: Vec<String>,
    /// Every media type: the one that counts, and that of every other Content-Type.
    pub types: Vec<String>,
    /// Some Content-Disposition field says `attachment`.
    pub attachment: bool,
}

/// Reads every Content-Type and Content-Disposition field of `part`.
pub fn declared(mail: &MimeTree<'_>, part: &Part) -> Declared {
    let raw = mail.raw();
    let mut d = Declared {
        types: vec![part.content_type.clone()],
        ..Declared::default()
    };
    for name in &part.names {
        for v in params::file_system_variants(name) {
            push(&mut d.names, v);
        }
    }
    for f in &part.fields {
        let is_type = f.name.eq_ignore_ascii_case("content-type");
        let is_disposition = f.name.eq_ignore_ascii_case("content-disposition");
        if !is_type && !is_disposition {
            continue;
        }
        for n in params::name_readings(&structure::raw_field_value(raw, f)) {
            push(&mut d.names, n);
        }
        let value = MediaValue::parse(&structure::field_value(raw, f));
        if is_type {
            let t = match value.media_type() {
                Some((main, sub)) => format!("{main}/{sub}"),
                None => "text/plain".to_string(),
            };
            push(&mut d.types, t);
        } else if value.token == "attachment" {
            d.attachment = true;
        }
    }
    d
}

/// Text or HTML that reads as the message's body on every reading of its header:
/// text/plain or text/html without a name and not marked as an attachment, wherever it
/// stands. Judged on declared headers, not RFC 8621's lists, which leave out body parts
/// of malformed mail; stripping body text is never what a policy means, and a
/// disclaimer goes only into such text (never into what a reader may take for a file).
pub fn is_body_text(declared: &Declared) -> bool {
    declared
        .types
        .iter()
        .all(|t| matches!(t.as_str(), "text/plain" | "text/html"))
        && declared.names.is_empty()
        && !declared.attachment
}

fn push(list: &mut Vec<String>, s: String) {
    if !s.is_empty() && !list.contains(&s) {
        list.push(s);
    }
}

/// Names of uuencoded (`begin 644 name`), `begin-base64` and yEnc (`=ybegin ...
/// name=...`) blocks in a text part: mail clients such as Outlook and Thunderbird, and
/// newsreaders, show them as attachments.
pub fn uuencoded_names(mail: &MimeTree<'_>, part: &Part) -> Vec<String> {
    let Some(encoding) = TransferEncoding::parse(part.transfer_encoding.as_deref()) else {
        return Vec::new();
    };
    let body = mail.body_bytes(part.id);
    if memchr::memmem::find(body, b"begin").is_none() {
        return Vec::new();
    }
    let decoded = match encoding {
        TransferEncoding::Identity => std::borrow::Cow::Borrowed(body),
        e => std::borrow::Cow::Owned(e.decode(body)),
    };
    let mut names = Vec::new();
    for line in decoded.split(|&b| b == b'\n' || b == b'\r') {
        if let Some(rest) = line.strip_prefix(b"=ybegin ") {
            let text: String = rest.iter().map(|&b| b as char).collect();
            if let Some(at) = text.find("name=") {
                for v in params::file_system_variants(text[at + 5..].trim()) {
                    push(&mut names, v);
                }
            }
            continue;
        }
        let rest = line
            .strip_prefix(b"begin-base64 ")
            .or_else(|| line.strip_prefix(b"begin "));
        let Some(rest) = rest else { continue };
        let text: String = rest.iter().map(|&b| b as char).collect();
        let Some((mode, name)) = text.trim_start().split_once([' ', '\t']) else {
            continue;
        };
        if (3..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            for v in params::file_system_variants(name.trim()) {
                push(&mut names, v);
            }
        }
    }
    names
}

/// The file names a TNEF attachment (`application/ms-tnef`, Outlook's `winmail.dat`)
/// carries: Outlook shows the files inside it, so a filter must see their names. Read
/// from the attributes `attAttachTitle` (0x00018010) and, inside `attAttachment`
/// (0x00069005), the MAPI strings that follow `PR_ATTACH_LONG_FILENAME` and
/// `PR_ATTACH_FILENAME` (scanned for, not fully parsed). `None` when the bytes are not
/// TNEF.
pub fn tnef_names(data: &[u8]) -> Option<Vec<String>> {
    const SIGNATURE: [u8; 4] = [0x78, 0x9f, 0x3e, 0x22];
    if data.len() < 6 || data[..4] != SIGNATURE {
        return None;
    }
    let mut names = Vec::new();
    let mut pos = 6;
    // level (1), id (4), length (4), data, checksum (2)
    while pos + 9 <= data.len() {
        let id = u32::from_le_bytes(data[pos + 1..pos + 5].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(data[pos + 5..pos + 9].try_into().expect("4 bytes")) as usize;
        let start = pos + 9;
        let Some(end) = start.checked_add(len).filter(|&e| e <= data.len()) else {
            break;
        };
        let value = &data[start..end];
        match id {
            0x0001_8010 => {
                let name: String = value
                    .split(|&b| b == 0)
                    .next()
                    .unwrap_or(&[])
                    .iter()
                    .map(|&b| b as char)
                    .collect();
                for v in params::file_system_variants(name.trim()) {
                    push(&mut names, v);
                }
            }
            0x0006_9005 => {
                for name in mapi_file_names(value) {
                    for v in params::file_system_variants(name.trim()) {
                        push(&mut names, v);
                    }
                }
            }
            _ => {}
        }
        pos = end + 2;
    }
    Some(names)
}

/// The string values of PR_ATTACH_LONG_FILENAME (0x3707) and PR_ATTACH_FILENAME
/// (0x3704) in a MAPI property block, 8-bit (PT_STRING8, 0x001E) or UTF-16
/// (PT_UNICODE, 0x001F): tag (4), count (4), length (4), bytes padded to 4.
fn mapi_file_names(block: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for tag in [0x3707_001Eu32, 0x3704_001E, 0x3707_001F, 0x3704_001F] {
        let needle = tag.to_le_bytes();
        for at in memchr::memmem::find_iter(block, &needle) {
            let p = at + 4;
            if p + 8 > block.len() {
                continue;
            }
            let len = u32::from_le_bytes(block[p + 4..p + 8].try_into().expect("4 bytes")) as usize;
            let Some(bytes) = block.get(p + 8..p + 8 + len.min(4096)) else {
                continue;
            };
            let name = if tag & 0xFFFF == 0x001F {
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .take_while(|&u| u != 0)
                    .collect();
                String::from_utf16_lossy(&units)
            } else {
                bytes
                    .iter()
                    .take_while(|&&b| b != 0)
                    .map(|&b| b as char)
                    .collect()
            };
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// The alternative readings whose trees can differ from the default one for this
/// message, judged by what the default scan found.
pub fn alternatives_that_differ(mail: &MimeTree<'_>) -> Vec<Reading> {
    let has = |pred: &dyn Fn(&FindingKind) -> bool| mail.findings().iter().any(|f| pred(&f.kind));
    Reading::ALTERNATIVES
        .into_iter()
        .filter(|r| {
            if r.bare_cr_ends_lines {
                has(&|k| *k == FindingKind::BareCr)
            } else if r.last_field_wins {
                has(&|k| {
                    matches!(k, FindingKind::DuplicateField(n)
                        if n.eq_ignore_ascii_case("content-type")
                            || n.eq_ignore_ascii_case("content-transfer-encoding"))
                        || *k == FindingKind::ConflictingBoundary
                })
            } else {
                // Loose boundary matching can differ wherever there is a multipart.
                mail.parts().iter().any(|p| p.main_type() == "multipart")
            }
        })
        .collect()
}

/// How a reading is named in reports.
pub fn describe(r: &Reading) -> &'static str {
    if r.bare_cr_ends_lines {
        "a bare CR read as a line end"
    } else if r.last_field_wins {
        "the last of the duplicated fields read"
    } else if r.lenient_boundaries {
        "boundaries matched loosely (as a prefix, in any case, or guessed)"
    } else {
        "the RFC reading"
    }
}

/// Most parts the lenient parser's reading is checked for: beyond this, its cost grows
/// faster than the message (and the message is over the attachment limit anyway).
pub const LENIENT_PARTS_MAX: usize = 1000;

/// One attachment as a lenient parser (mail-parser, which many Rust mail tools use)
/// reads it: its names, type and decoded size.
pub struct LenientPart {
    /// Where the part is in the message (for a part of a decoded attached message, the
    /// range of that attached message).
    pub range: std::ops::Range<usize>,
    pub names: Vec<String>,
    pub content_type: String,
    pub size: u64,
    pub in_attached_message: bool,
    pub is_text_body: bool,
}

/// The parts mail-parser finds in `raw`, descending into attached messages (it decodes
/// base64 ones); `None` when it cannot read the message or finds too many parts.
pub fn lenient_parts(raw: &[u8]) -> Option<Vec<LenientPart>> {
    let message = std::panic::catch_unwind(|| MessageParser::default().parse(raw)).ok()??;
    let mut out = Vec::new();
    // (message, inside an attached message, depth, the range in `raw` that holds it when
    // the parser read it from a decoded copy)
    type Pending<'m> = (
        mail_parser::Message<'m>,
        bool,
        usize,
        Option<std::ops::Range<usize>>,
    );
    let mut stack: Vec<Pending<'_>> = vec![(message, false, 0, None)];
    while let Some((msg, nested, depth, decoded_from)) = stack.pop() {
        let in_place = match &msg.raw_message {
            std::borrow::Cow::Borrowed(b) => std::ptr::eq(b.as_ptr(), raw.as_ptr()),
            std::borrow::Cow::Owned(_) => false,
        };
        if msg.parts.len() > LENIENT_PARTS_MAX || out.len() > LENIENT_PARTS_MAX {
            return None;
        }
        for (i, part) in msg.parts.iter().enumerate() {
            let mut names = Vec::new();
            let found = [
                part.attachment_name(),
                part.content_disposition()
                    .and_then(|d| d.attribute("filename")),
                part.content_type().and_then(|c| c.attribute("name")),
            ];
            for n in found.into_iter().flatten() {
                for v in params::file_system_variants(n) {
                    push(&mut names, v);
                }
            }
            let content_type = part
                .content_type()
                .map(|ct| match &ct.c_subtype {
                    Some(s) => format!("{}/{}", ct.c_type, s).to_ascii_lowercase(),
                    None => ct.c_type.to_ascii_lowercase(),
                })
                .unwrap_or_else(|| "text/plain".into());
            let size = match &part.body {
                PartType::Text(t) | PartType::Html(t) => t.len(),
                PartType::Binary(b) | PartType::InlineBinary(b) => b.len(),
                _ => 0,
            } as u64;
            let is_text_body = (msg.text_body.contains(&(i as u32))
                || msg.html_body.contains(&(i as u32)))
                && names.is_empty();
            let is_container =
                matches!(part.body, PartType::Multipart(_)) || i == 0 && msg.parts.len() > 1;
            let range = match &decoded_from {
                Some(r) => r.clone(),
                None if in_place => part.offset_header as usize..part.offset_end as usize,
                None => 0..raw.len(),
            };
            if !is_container {
                out.push(LenientPart {
                    range: range.clone(),
                    names,
                    content_type,
                    size,
                    in_attached_message: nested,
                    is_text_body,
                });
            }
            if let PartType::Message(inner) = &part.body
                && depth < 3
            {
                let inner_in_place = matches!(&inner.raw_message,
                    std::borrow::Cow::Borrowed(b) if std::ptr::eq(b.as_ptr(), raw.as_ptr()));
                let from = if inner_in_place { None } else { Some(range) };
                stack.push((inner.clone(), true, depth + 1, from));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(raw: &[u8]) -> MimeTree<'_> {
        MimeTree::parse(raw).unwrap()
    }

    #[test]
    fn duplicated_fields_give_every_name_and_type() {
        let raw = b"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain; name=a.txt\nContent-Type: application/x-msdownload; name=a.exe\nContent-Disposition: inline\nContent-Disposition: attachment; filename=b.scr\n\nMZ\n--B--\n";
        let t = tree(raw);
        let d = declared(&t, t.part(1));
        assert!(d.names.contains(&"a.exe".to_string()), "{:?}", d.names);
        assert!(d.names.contains(&"b.scr".to_string()));
        assert!(d.types.contains(&"application/x-msdownload".to_string()));
        assert!(d.attachment);
    }

    #[test]
    fn tnef_attachment_titles_and_long_file_names_are_read() {
        let mut tnef = vec![0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00];
        let attr = |tnef: &mut Vec<u8>, id: u32, data: &[u8]| {
            tnef.push(0x02);
            tnef.extend_from_slice(&id.to_le_bytes());
            tnef.extend_from_slice(&(data.len() as u32).to_le_bytes());
            tnef.extend_from_slice(data);
            tnef.extend_from_slice(&[0, 0]);
        };
        attr(&mut tnef, 0x0001_8010, b"EVIL~1.EXE\0");
        let mut mapi = vec![1, 0, 0, 0];
        mapi.extend_from_slice(&0x3707_001Fu32.to_le_bytes());
        mapi.extend_from_slice(&1u32.to_le_bytes());
        let long: Vec<u8> = "invoice.scr\0"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        mapi.extend_from_slice(&(long.len() as u32).to_le_bytes());
        mapi.extend_from_slice(&long);
        attr(&mut tnef, 0x0006_9005, &mapi);
        let names = tnef_names(&tnef).unwrap();
        assert!(names.contains(&"EVIL~1.EXE".to_string()), "{names:?}");
        assert!(names.contains(&"invoice.scr".to_string()), "{names:?}");
        assert_eq!(tnef_names(b"not tnef at all"), None);
    }

    #[test]
    fn yenc_blocks_in_text_are_found_by_name() {
        let raw = b"Content-Type: text/plain\n\nsee below\n=ybegin line=128 size=4 name=evil.exe\nabcd\n=yend size=4\n";
        let t = tree(raw);
        assert_eq!(uuencoded_names(&t, t.part(0)), ["evil.exe"]);
    }

    #[test]
    fn uuencoded_blocks_in_text_are_found_by_name() {
        let raw = b"Content-Type: text/plain\n\nhello\nbegin 644 evil.exe\nM5&AI<R!I<R!A\n`\nend\n";
        let t = tree(raw);
        assert_eq!(uuencoded_names(&t, t.part(0)), ["evil.exe"]);
        let plain = b"Content-Type: text/plain\n\nbegin the meeting at 10\n";
        let t = tree(plain);
        assert!(uuencoded_names(&t, t.part(0)).is_empty());
    }
}
