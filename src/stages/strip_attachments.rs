//! `strip_attachments`: replaces attachments that policy forbids with a short text notice,
//! where they stood, so the message keeps its shape.
//!
//! Keys (at least one of the first three):
//! - `extensions`: list such as `["exe", ".js", "tar.gz"]`. Compared case-insensitively
//!   with the end of each name the part declares (Content-Disposition `filename` and
//!   Content-Type `name`, both after RFC 2047 and RFC 2231 decoding): `exe` matches
//!   `a.EXE`, `tar.gz` matches `a.tar.gz` (multi-dot entries are supported, and `gz`
//!   matches it too). Trailing dots and spaces are ignored, as Windows ignores them when
//!   it opens `invoice.exe.`. A leading dot in an entry is optional.
//! - `content_types`: globs over the declared `type/subtype`, case-insensitive, `*` and
//!   `?` wildcards: `application/x-*`, `*/*`.
//! - `max_bytes`: a part whose decoded size is over this is stripped. The size is counted
//!   from the encoded body without decoding it (base64 alphabet characters, exactly);
//!   a part in an encoding we do not know (x-uuencode) counts its encoded size.
//! - `notice` (inline) or `notice_file` (relative to the config file): the notice text, a
//!   template with `{{ filename }}`, `{{ content_type }}`, `{{ size }}`. Default:
//!   `templates/strip_notice.txt`, built in.
//! - `include_attached_messages` = false: when false, an attached message
//!   (message/rfc822, message/global, …) and every part inside one is left alone, and a
//!   match there is only reported. When true, parts inside attached messages are stripped
//!   like any other, and an attached message that matches itself is replaced whole; a
//!   base64-encoded attached message (whose parts cannot be edited in place) is replaced
//!   whole when anything inside it would be stripped.
//!
//! Which parts are candidates: every single part except body text, and every attached
//! message (any message/*, under the rule above). Body text is text/plain or text/html
//! without a declared name and not marked `attachment`, judged on its own headers rather
//! than the parser's RFC 8621 body lists, which drop body parts of malformed mail; named
//! text parts, `attachment` parts and every other type (inline images too, which RFC 8621
//! lists as attachments as well) are candidates. Never a part declared multipart/*
//! (even one the parser could not split), never anything inside multipart/signed,
//! multipart/encrypted or application/pkcs7-mime: a match there is reported ("left alone
//! … inside multipart/signed") and not touched. Nor a part that does not start right
//! after a boundary line (the parser reports such parts inside a close delimiter or an
//! epilogue of broken mail): replacing it would change the structure, so it is reported.
//!
//! The notice part (see [`notice`]): `text/plain; charset=utf-8`, 7bit when ASCII, else
//! quoted-printable (base64 when a line would start with `--`, which a parser could take
//! for a boundary),
//! `Content-Disposition: attachment` with the name `<original name>.removed.txt`
//! (`attachment.removed.txt` without one). As an attachment it never counts as body
//! text under RFC 8621, so a disclaimer stage never writes into it and the whole pipeline
//! stays idempotent; clients show it where the file was, under a name the recipient
//! recognizes. A part replaced by us keeps its line ending. A single-part message (or an
//! attached message's root) that is itself the attachment keeps its message header
//! fields: only Content-Type, Content-Transfer-Encoding and Content-Disposition change
//! (Content-MD5 goes, MIME-Version is added when missing), and the body becomes the notice.
//!
//! A second pass changes nothing: a text/plain part whose declared names all end in
//! `.removed.txt`, no larger than a notice can be, is taken for a notice and never
//! stripped, even under `*/*` or an extension list with `txt`. (A sender can name a small
//! text file that way to keep it; it stays a plain text file.)
//!
//! The report names each part by its number, content type and the rule that matched
//! ("stripped part 3 (application/x-msdownload): extension exe"), never the file name:
//! names are the sender's data, and the notice in the message already carries them.

pub mod notice;

use notice::{DEFAULT_NOTICE, NOTICE_PLACEHOLDERS, NOTICE_SUFFIX, Notice};

use crate::edit::HeaderOp;
use crate::mime_tree::{MimeTree, Part, PartId, PartKind};
use crate::stage::{KeyError, Stage, StageContext, StageKeys, StageReport};
use crate::template::Template;
use crate::transfer::TransferEncoding;
use std::fmt;

/// Longest notice template accepted at load.
const MAX_TEMPLATE_BYTES: usize = 16 * 1024;
/// Largest part still taken for a notice: the template plus three inserted values.
const MAX_NOTICE_BYTES: usize = 64 * 1024;
/// Per kind, how many parts the report names one by one before it counts the rest.
const REPORT_DETAIL: usize = 25;
/// How deep base64-encoded attached messages inside each other are opened.
const MAX_OPAQUE_DEPTH: usize = 3;
/// A `type/subtype` glob, lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeGlob(String);

impl TypeGlob {
    /// Checks that `pattern` looks like `type/subtype` with optional `*` and `?`.
    pub fn new(pattern: &str) -> Result<TypeGlob, String> {
        let p = pattern.trim().to_ascii_lowercase();
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-*?".contains(&b))
        };
        match p.split_once('/') {
            Some((t, s)) if token(t) && token(s) => Ok(TypeGlob(p)),
            _ => Err(format!(
                "{pattern:?} is not a content type pattern like application/x-* or image/*"
            )),
        }
    }

    pub fn matches(&self, content_type: &str) -> bool {
        glob_match(
            self.0.as_bytes(),
            content_type.to_ascii_lowercase().as_bytes(),
        )
    }
}

impl fmt::Display for TypeGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `*` any run, `?` one byte; iterative, so no pattern backtracks exponentially.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Why a part matches the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Extension(String),
    ContentType(TypeGlob),
    Size {
        size: u64,
        max: u64,
    },
    /// A base64-encoded attached message holds a part that would be stripped.
    Inside(Box<Reason>),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Extension(e) => write!(f, "extension {e}"),
            Reason::ContentType(g) => write!(f, "content type matches {g}"),
            Reason::Size { size, max } => {
                write!(f, "decoded size {size} bytes is over max_bytes {max}")
            }
            Reason::Inside(r) => write!(f, "holds a part with {r}"),
        }
    }
}

/// What the stage decides for one part.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Not an attachment: body text or a container.
    NotCandidate,
    /// An attachment no rule matches.
    NoMatch,
    /// A notice from an earlier pass.
    Notice,
    /// Matches, but must not be touched.
    LeftAlone(Vec<Reason>, String),
    Strip(Vec<Reason>),
}

#[derive(Debug, Clone)]
pub struct StripAttachments {
    extensions: Vec<String>,
    content_types: Vec<TypeGlob>,
    max_bytes: Option<u64>,
    notice: Template,
    include_attached_messages: bool,
}

impl StripAttachments {
    /// A policy with the built-in notice and attached messages left alone. Errors name
    /// the key as the config loader does.
    pub fn new(
        extensions: &[&str],
        content_types: &[&str],
        max_bytes: Option<u64>,
    ) -> Result<StripAttachments, KeyError> {
        if extensions.is_empty() && content_types.is_empty() && max_bytes.is_none() {
            return Err(KeyError::new(
                "extensions",
                "give at least one of extensions, content_types or max_bytes; without them nothing is stripped",
            ));
        }
        let extensions = extensions
            .iter()
            .map(|e| normalize_extension(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|p| KeyError::new("extensions", p))?;
        let content_types = content_types
            .iter()
            .map(|c| TypeGlob::new(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|p| KeyError::new("content_types", p))?;
        Ok(StripAttachments {
            extensions,
            content_types,
            max_bytes,
            notice: notice_template(DEFAULT_NOTICE, "notice")?,
            include_attached_messages: false,
        })
    }

    /// Uses `text` as the notice template; `key` names the config key in errors.
    pub fn with_notice(mut self, text: &str, key: &str) -> Result<StripAttachments, KeyError> {
        self.notice = notice_template(text, key)?;
        Ok(self)
    }

    pub fn include_attached_messages(mut self, include: bool) -> StripAttachments {
        self.include_attached_messages = include;
        self
    }

    /// Every rule `part` matches.
    fn reasons(&self, mail: &MimeTree<'_>, part: &Part) -> Vec<Reason> {
        let mut found = Vec::new();
        if let Some(ext) = self.extension_of(part) {
            found.push(Reason::Extension(ext));
        }
        if let Some(g) = self
            .content_types
            .iter()
            .find(|g| g.matches(&part.content_type))
        {
            found.push(Reason::ContentType(g.clone()));
        }
        if let Some(max) = self.max_bytes {
            let size = decoded_size(mail, part);
            if size > max {
                found.push(Reason::Size { size, max });
            }
        }
        found
    }

    /// The first configured extension one of the part's names ends with.
    fn extension_of(&self, part: &Part) -> Option<String> {
        part.names.iter().find_map(|name| {
            let name = name
                .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
                .to_lowercase();
            self.extensions
                .iter()
                .find(|ext| {
                    name.len() > ext.len()
                        && name.ends_with(ext.as_str())
                        && name[..name.len() - ext.len()].ends_with('.')
                })
                .cloned()
        })
    }

    fn verdict(&self, mail: &MimeTree<'_>, part: &Part, depth: usize) -> Verdict {
        // Declared types decide, not what the parser made of malformed parts: a
        // multipart without a usable boundary is still the message's structure, and
        // every message/* (delivery-status, partial, …) is an attached message.
        let attached_message =
            matches!(part.kind, PartKind::Message(_)) || part.main_type() == "message";
        if part.main_type() == "multipart"
            || (!attached_message && (!part.is_leaf() || is_body_text(part)))
        {
            return Verdict::NotCandidate;
        }
        if is_notice(mail, part) {
            return Verdict::Notice;
        }
        let mut reasons = self.reasons(mail, part);
        if reasons.is_empty()
            && self.include_attached_messages
            && part.kind == PartKind::Message(None)
            && !part.protected
            && depth < MAX_OPAQUE_DEPTH
        {
            reasons.extend(self.opaque_message_reason(mail, part, depth));
        }
        if reasons.is_empty() {
            return Verdict::NoMatch;
        }
        if part.protected {
            return Verdict::LeftAlone(reasons, protection_of(mail, part));
        }
        if !self.include_attached_messages && part.in_attached_message {
            return Verdict::LeftAlone(
                reasons,
                "inside an attached message (include_attached_messages = false)".into(),
            );
        }
        if !self.include_attached_messages && attached_message {
            return Verdict::LeftAlone(
                reasons,
                "an attached message (include_attached_messages = false)".into(),
            );
        }
        if !part.is_message_root && !stands_after_a_boundary(mail, part) {
            return Verdict::LeftAlone(
                reasons,
                "malformed MIME: the part does not start right after a boundary line, so replacing it could change the structure".into(),
            );
        }
        Verdict::Strip(reasons)
    }

    /// For a base64-encoded attached message: the first reason any part inside it would
    /// be stripped for.
    fn opaque_message_reason(
        &self,
        mail: &MimeTree<'_>,
        part: &Part,
        depth: usize,
    ) -> Option<Reason> {
        let encoding = TransferEncoding::parse(part.transfer_encoding.as_deref())?;
        let decoded = encoding.decode(mail.body_bytes(part.id));
        let inner = MimeTree::parse(&decoded).ok()?;
        inner
            .parts()
            .iter()
            .find_map(|p| match self.verdict(&inner, p, depth + 1) {
                Verdict::Strip(r) => r.into_iter().next(),
                _ => None,
            })
            .map(|r| Reason::Inside(Box::new(r)))
    }

    /// Queues the notice in place of `part`.
    fn strip(&self, mail: &MimeTree<'_>, part: &Part, cx: &mut StageContext<'_>) {
        let nl = mail.newline_of(part.id);
        let notice = Notice::render(
            &self.notice,
            part.names.first().map(String::as_str),
            &part.content_type,
            decoded_size(mail, part),
            nl,
            mail.body_bytes(part.id).ends_with(b"\n"),
        );
        if part.is_message_root {
            // The part's header block is a message header: keep it, change only what
            // describes the content.
            let set = |name: &str, value: String| HeaderOp::Set {
                name: name.into(),
                value,
            };
            cx.edits
                .header(part.id, set("Content-Type", notice.content_type));
            cx.edits.header(
                part.id,
                set("Content-Transfer-Encoding", notice.transfer_encoding.into()),
            );
            cx.edits
                .header(part.id, set("Content-Disposition", notice.disposition));
            if part.field("Content-MD5").is_some() {
                cx.edits.header(
                    part.id,
                    HeaderOp::Remove {
                        name: "Content-MD5".into(),
                    },
                );
            }
            if part.field("MIME-Version").is_none() {
                cx.edits.header(
                    part.id,
                    HeaderOp::Add {
                        name: "MIME-Version".into(),
                        value: "1.0".into(),
                    },
                );
            }
            cx.edits.replace_body(part.id, notice.body);
        } else {
            cx.edits.replace_part(part.id, notice.into_part(nl));
        }
    }
}

impl Stage for StripAttachments {
    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        let mut stripped: Vec<PartId> = Vec::new();
        // (part, decision for the summary, note for the part's line in `explain`)
        let mut left_alone: Vec<(PartId, String, String)> = Vec::new();
        let mut stripped_notes: Vec<(PartId, String, String)> = Vec::new();
        let mut report = StageReport::default();
        let mut notices = 0;
        for part in mail.parts() {
            if has_ancestor_in(mail, part.id, &stripped) {
                // replaced with the attached message around it
                report.note_part(part.id, "removed with the attached message around it", true);
                continue;
            }
            match self.verdict(mail, part, 0) {
                Verdict::NotCandidate => {}
                Verdict::NoMatch => report.note_part(part.id, "kept: no rule matches", false),
                Verdict::Notice => {
                    notices += 1;
                    report.note_part(part.id, "a notice from an earlier pass; kept", false);
                }
                Verdict::LeftAlone(reasons, why) => left_alone.push((
                    part.id,
                    format!(
                        "left alone part {} ({}; {}): {why}",
                        part.id,
                        part.content_type,
                        join(&reasons)
                    ),
                    format!("left alone: {why} (matches {})", join(&reasons)),
                )),
                Verdict::Strip(reasons) => {
                    self.strip(mail, part, cx);
                    stripped.push(part.id);
                    stripped_notes.push((
                        part.id,
                        format!(
                            "stripped part {} ({}): {}",
                            part.id,
                            part.content_type,
                            join(&reasons)
                        ),
                        format!("stripped: {}", join(&reasons)),
                    ));
                }
            }
        }
        for (notes, changed, what) in [
            (stripped_notes, true, "stripped"),
            (left_alone, false, "left alone"),
        ] {
            let more = notes.len().saturating_sub(REPORT_DETAIL);
            for (i, (id, decision, note)) in notes.into_iter().enumerate() {
                if i < REPORT_DETAIL {
                    report.note_about_part(id, decision, note, changed);
                } else {
                    report.note_part(id, note, changed);
                }
            }
            if more > 0 {
                report.note(format!("and {more} more parts {what}"), changed);
            }
        }
        if notices > 0 {
            report.note(
                format!("{notices} notice(s) from an earlier pass left as they are"),
                false,
            );
        }
        if report.decisions.is_empty() {
            report.note("no attachment matches the policy", false);
        }
        report
    }
}

/// Builds the stage from config keys.
pub fn build(keys: &mut StageKeys) -> Result<Box<dyn Stage>, KeyError> {
    let extensions = keys.string_list("extensions")?;
    let content_types = keys.string_list("content_types")?;
    let max_bytes = keys.opt_u64("max_bytes")?;
    let notice = keys.opt_string("notice")?;
    let notice_file = keys.opt_path("notice_file")?;
    let include = keys.bool_or("include_attached_messages", false)?;
    let ext: Vec<&str> = extensions.iter().map(String::as_str).collect();
    let types: Vec<&str> = content_types.iter().map(String::as_str).collect();
    let mut stage =
        StripAttachments::new(&ext, &types, max_bytes)?.include_attached_messages(include);
    match (notice, notice_file) {
        (Some(_), Some(_)) => {
            return Err(KeyError::new(
                "notice_file",
                "give notice or notice_file, not both",
            ));
        }
        (Some(text), None) => stage = stage.with_notice(&text, "notice")?,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                KeyError::new(
                    "notice_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            stage = stage.with_notice(&text, "notice_file")?;
        }
        (None, None) => {}
    }
    Ok(Box::new(stage))
}

fn notice_template(text: &str, key: &str) -> Result<Template, KeyError> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(KeyError::new(
            key,
            format!(
                "the notice is {} bytes; at most {MAX_TEMPLATE_BYTES} are allowed",
                text.len()
            ),
        ));
    }
    Template::parse(text, NOTICE_PLACEHOLDERS).map_err(|e| KeyError::new(key, e.to_string()))
}

/// `".EXE "` → `exe`; refuses what cannot be the end of a file name.
fn normalize_extension(entry: &str) -> Result<String, String> {
    let e = entry.trim().trim_start_matches('.').to_lowercase();
    if e.is_empty()
        || e.ends_with('.')
        || e.chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/\\*?".contains(c))
    {
        return Err(format!(
            "{entry:?} is not a file extension like \"exe\" or \"tar.gz\""
        ));
    }
    Ok(e)
}

/// Text or HTML that reads as the message's body: text/plain or text/html without a name
/// and not marked as an attachment, wherever it stands. Judged on declared headers, not
/// the parser's RFC 8621 lists, which leave out body parts of malformed mail (an html
/// part after a missing boundary, one the parser could not decode); stripping body text
/// is never what a policy means.
fn is_body_text(part: &Part) -> bool {
    matches!(part.content_type.as_str(), "text/plain" | "text/html")
        && part.names.is_empty()
        && part.disposition.as_deref() != Some("attachment")
}

/// Whether a part inside a multipart starts where a well-formed one does: at the start
/// of a line, its first header field right there. The parser also reports parts it
/// found in a close delimiter or an epilogue ("--B--" then header-like lines); replacing
/// those would overwrite the delimiter and create a part that was not there.
fn stands_after_a_boundary(mail: &MimeTree<'_>, part: &Part) -> bool {
    let start = part.header.start;
    let at_line_start = start == 0 || mail.raw().get(start - 1) == Some(&b'\n');
    at_line_start && part.fields.first().is_none_or(|f| f.range.start == start)
}

/// A notice this stage wrote: text/plain, every declared name ends in the suffix, small.
fn is_notice(mail: &MimeTree<'_>, part: &Part) -> bool {
    part.content_type == "text/plain"
        && !part.names.is_empty()
        && part
            .names
            .iter()
            .all(|n| n.to_lowercase().ends_with(NOTICE_SUFFIX))
        && decoded_size(mail, part) <= MAX_NOTICE_BYTES as u64
}

/// The decoded size of a part's body, counted without decoding.
fn decoded_size(mail: &MimeTree<'_>, part: &Part) -> u64 {
    let body = mail.body_bytes(part.id);
    TransferEncoding::parse(part.transfer_encoding.as_deref())
        .map_or(body.len(), |e| e.decoded_len(body)) as u64
}

/// Which signature or encryption container holds the part, in words.
fn protection_of(mail: &MimeTree<'_>, part: &Part) -> String {
    let mut cur = Some(part.id);
    while let Some(id) = cur {
        let p = mail.part(id);
        if p.is_protection_container() {
            return if id == part.id {
                format!("is {} (signed or encrypted content)", p.content_type)
            } else {
                format!("inside {}", p.content_type)
            };
        }
        cur = p.parent;
    }
    "inside signed or encrypted content".into()
}

fn has_ancestor_in(mail: &MimeTree<'_>, id: PartId, set: &[PartId]) -> bool {
    let mut cur = mail.part(id).parent;
    while let Some(p) = cur {
        if set.contains(&p) {
            return true;
        }
        cur = mail.part(p).parent;
    }
    false
}

fn join(reasons: &[Reason]) -> String {
    reasons
        .iter()
        .map(Reason::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Envelope;
    use crate::newline::Newline;
    use crate::transfer;

    fn run(stage: &StripAttachments, raw: &[u8]) -> (Vec<u8>, StageReport) {
        let tree = MimeTree::parse(raw).unwrap();
        let env = Envelope::default();
        let mut cx = StageContext::new(&env);
        let report = stage.run(&tree, &mut cx);
        (cx.edits.apply(&tree).unwrap().to_vec(), report)
    }

    fn exe() -> StripAttachments {
        StripAttachments::new(&["exe"], &[], None).unwrap()
    }

    fn mixed(attachment_headers: &str, body: &str) -> Vec<u8> {
        format!(
            "From: a@example.com\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B\r\n{attachment_headers}\r\n\r\n{body}\r\n--B--\r\n"
        )
        .into_bytes()
    }

    fn parsed(raw: &[u8]) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(raw).unwrap()
    }

    #[test]
    fn part_notes_pin_each_verdict_to_its_part_without_the_file_name() {
        let raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\nContent-Type: application/pdf; name=r.pdf\r\n\r\nAAAA\r\n--B\r\nContent-Type: application/octet-stream; name=setup.exe\r\n\r\nAAAA\r\n--B\r\nContent-Type: multipart/signed; boundary=S\r\n\r\n--S\r\nContent-Type: application/octet-stream; name=x.exe\r\n\r\nAAAA\r\n--S--\r\n--B--\r\n";
        let (_, r) = run(&exe(), raw);
        let notes: Vec<(PartId, &str, bool)> = r
            .parts
            .iter()
            .map(|n| (n.part, n.note.as_str(), n.changed))
            .collect();
        assert_eq!(
            notes,
            [
                (2, "kept: no rule matches", false),
                (3, "stripped: extension exe", true),
                (
                    5,
                    "left alone: inside multipart/signed (matches extension exe)",
                    false
                ),
            ]
        );
        assert!(r.parts.iter().all(|n| !n.note.contains("setup")));
        assert_eq!(
            r.message_decisions().collect::<Vec<_>>(),
            Vec::<&str>::new(),
            "every decision is about a part: {r:?}"
        );
        assert_eq!(r.decisions.len(), 2);
    }

    #[test]
    fn an_exe_is_replaced_in_place_by_a_notice_and_neighbours_stay_identical() {
        let raw = mixed(
            "Content-Type: application/octet-stream; name=\"setup.exe\"\r\nContent-Disposition: attachment; filename=\"setup.exe\"\r\nContent-Transfer-Encoding: base64",
            "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAA=",
        );
        let (out, r) = run(&exe(), &raw);
        assert!(r.changed);
        assert_eq!(
            r.decisions,
            ["stripped part 2 (application/octet-stream): extension exe"]
        );
        let text = String::from_utf8(out.clone()).unwrap();
        let head = "--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B\r\n";
        assert!(text.contains(head));
        assert!(text.contains("--B\r\nContent-Type: text/plain; charset=utf-8; name=\"setup.exe.removed.txt\"\r\nContent-Transfer-Encoding: 7bit\r\nContent-Disposition: attachment; filename=\"setup.exe.removed.txt\"\r\n\r\n"));
        assert!(text.contains("File name: setup.exe\r\nType: application/octet-stream\r\n"));
        assert!(text.contains("Size: 32 bytes\r\n"));
        assert!(text.ends_with("your IT help desk.\r\n--B--\r\n"), "{text}");
        let msg = parsed(&out);
        assert_eq!(msg.parts.len(), 3);
        let (twice, r) = run(&exe(), &out);
        assert!(!r.changed);
        assert_eq!(twice, out);
    }

    #[test]
    fn extensions_match_case_insensitively_on_any_declared_name_and_multi_dot_entries() {
        let s = StripAttachments::new(&[".EXE", "tar.gz", "js"], &[], None).unwrap();
        let cases = [
            (
                "Content-Type: application/octet-stream; name=\"A.ExE\"",
                true,
            ),
            (
                "Content-Type: application/pdf; name=\"a.exe\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"",
                true,
            ),
            (
                "Content-Type: application/octet-stream; name=\"a.exe. \"",
                true,
            ),
            (
                "Content-Type: application/octet-stream; name=\"backup.TAR.GZ\"",
                true,
            ),
            (
                "Content-Type: application/octet-stream; name=\"a.gz\"",
                false,
            ),
            (
                "Content-Type: application/octet-stream; name=\"exe\"",
                false,
            ),
            (
                "Content-Type: application/octet-stream; name=\"a.jsx\"",
                false,
            ),
            (
                "Content-Type: application/octet-stream; name=\"notes.exe.txt\"",
                false,
            ),
            (
                "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''%E2%82%AC.EXE",
                true,
            ),
        ];
        for (headers, want) in cases {
            let (_, r) = run(&s, &mixed(headers, "AAAA"));
            assert_eq!(r.changed, want, "{headers}: {r:?}");
        }
    }

    #[test]
    fn content_type_globs_and_size_limits_match() {
        let g = TypeGlob::new("Application/X-*").unwrap();
        assert!(g.matches("application/x-msdownload"));
        assert!(!g.matches("application/pdf"));
        assert!(TypeGlob::new("*/*").unwrap().matches("image/png"));
        assert!(TypeGlob::new("image/?ng").unwrap().matches("image/png"));
        assert!(TypeGlob::new("exe").is_err());
        assert!(TypeGlob::new("text/plain; charset=x").is_err());

        let s = StripAttachments::new(&[], &[], Some(10)).unwrap();
        // 16 base64 characters carry 12 bytes; 12 carry 9.
        let big = mixed(
            "Content-Type: image/png\r\nContent-Transfer-Encoding: base64",
            "AAAAAAAA\r\nAAAAAAAA",
        );
        let small = mixed(
            "Content-Type: image/png\r\nContent-Transfer-Encoding: base64",
            "AAAAAAAA\r\nAAAA",
        );
        let (_, r) = run(&s, &big);
        assert_eq!(
            r.decisions,
            ["stripped part 2 (image/png): decoded size 12 bytes is over max_bytes 10"]
        );
        assert!(!run(&s, &small).1.changed);
    }

    #[test]
    fn body_text_is_never_a_candidate_but_a_named_text_attachment_is() {
        let s = StripAttachments::new(&[], &["text/*"], None).unwrap();
        let (out, r) = run(
            &s,
            &mixed("Content-Type: text/plain; name=\"notes.txt\"", "n"),
        );
        assert_eq!(
            r.decisions,
            ["stripped part 2 (text/plain): content type matches text/*"]
        );
        assert!(String::from_utf8_lossy(&out).contains("\r\nhello\r\n"));
        let single = b"From: a@example.com\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
        assert!(!run(&s, single).1.changed);
    }

    #[test]
    fn a_single_part_attachment_keeps_its_message_header_and_becomes_the_notice() {
        let raw = b"From: a@example.com\nSubject: scan\nContent-Type: application/x-msdownload; name=\"x.exe\"\nContent-Transfer-Encoding: base64\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\nTVqQAA==\n";
        let (out, r) = run(&exe(), raw);
        assert!(r.changed);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("From: a@example.com\nSubject: scan\nContent-Type: text/plain; charset=utf-8; name=\"x.exe.removed.txt\"\nContent-Transfer-Encoding: 7bit\nContent-Disposition: attachment; filename=\"x.exe.removed.txt\"\nMIME-Version: 1.0\n\nAn attachment"), "{text}");
        assert!(!text.contains("Content-MD5"));
        assert!(text.ends_with("help desk.\n"));
        assert_eq!(run(&exe(), &out).0, out);
    }

    #[test]
    fn signed_parts_are_reported_and_left_alone() {
        let raw = b"From: a@example.com\nContent-Type: multipart/signed; boundary=S; protocol=\"application/pkcs7-signature\"\n\n--S\nContent-Type: multipart/mixed; boundary=M\n\n--M\nContent-Type: text/plain\n\nt\n--M\nContent-Type: application/octet-stream; name=\"a.exe\"\n\nAAAA\n--M--\n--S\nContent-Type: application/pkcs7-signature; name=smime.p7s\n\nAAAA\n--S--\n";
        let (out, r) = run(&exe(), raw);
        assert!(!r.changed);
        assert_eq!(out, raw);
        assert_eq!(
            r.decisions,
            [
                "left alone part 3 (application/octet-stream; extension exe): inside multipart/signed"
            ]
        );
    }

    #[test]
    fn attached_messages_are_left_alone_unless_included() {
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nsee below\n--B\nContent-Type: message/rfc822\n\nFrom: b@example.com\nSubject: fwd\nContent-Type: multipart/mixed; boundary=C\n\n--C\nContent-Type: text/plain\n\ninner\n--C\nContent-Type: application/octet-stream; name=\"b.exe\"\n\nAAAA\n--C--\n--B--\n";
        let (out, r) = run(&exe(), raw);
        assert_eq!(out, raw);
        assert_eq!(
            r.decisions,
            [
                "left alone part 5 (application/octet-stream; extension exe): inside an attached message (include_attached_messages = false)"
            ]
        );
        let s = exe().include_attached_messages(true);
        let (out, r) = run(&s, raw);
        assert_eq!(
            r.decisions,
            ["stripped part 5 (application/octet-stream): extension exe"]
        );
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("Subject: fwd\n"));
        assert!(text.contains(
            "\ninner\n--C\nContent-Type: text/plain; charset=utf-8; name=\"b.exe.removed.txt\""
        ));
        assert_eq!(run(&s, &out).0, out);
    }

    #[test]
    fn an_attached_message_that_matches_itself_is_replaced_whole_only_when_included() {
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nsee below\n--B\nContent-Type: message/rfc822; name=\"old.eml\"\n\nFrom: b@example.com\nSubject: fwd\n\ninner\n--B--\n";
        let s = StripAttachments::new(&["eml"], &[], None).unwrap();
        let (_, r) = run(&s, raw);
        assert_eq!(
            r.decisions,
            [
                "left alone part 2 (message/rfc822; extension eml): an attached message (include_attached_messages = false)"
            ]
        );
        let s = s.include_attached_messages(true);
        let (out, r) = run(&s, raw);
        assert_eq!(
            r.decisions,
            ["stripped part 2 (message/rfc822): extension eml"]
        );
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("Subject: fwd"));
        assert!(text.contains("name=\"old.eml.removed.txt\""));
    }

    #[test]
    fn a_base64_attached_message_holding_a_match_is_replaced_whole_when_included() {
        let inner =
            "From: b@example.com\nContent-Type: application/octet-stream; name=\"x.exe\"\n\nAAAA\n";
        let b64 = transfer::base64_encode_lines(inner.as_bytes(), Newline::Lf);
        let raw = [
            b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nt\n--B\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n".as_slice(),
            &b64,
            b"--B--\n",
        ]
        .concat();
        assert!(!run(&exe(), &raw).1.changed);
        let (_, r) = run(&exe().include_attached_messages(true), &raw);
        assert_eq!(
            r.decisions,
            ["stripped part 2 (message/rfc822): holds a part with extension exe"]
        );
    }

    #[test]
    fn a_notice_is_never_stripped_again_even_under_a_catch_all_policy() {
        let s = StripAttachments::new(&["txt", "exe"], &["*/*"], Some(0)).unwrap();
        let raw = mixed(
            "Content-Type: application/octet-stream; name=\"a.exe\"",
            "AAAA",
        );
        let (once, r) = run(&s, &raw);
        assert!(r.changed);
        let (twice, r) = run(&s, &once);
        assert_eq!(twice, once);
        assert_eq!(
            r.decisions,
            ["1 notice(s) from an earlier pass left as they are"]
        );
        // A disguised executable does not pass for a notice.
        let fake = mixed(
            "Content-Type: text/plain; name=\"a.exe\"\r\nContent-Disposition: attachment; filename=\"a.removed.txt\"",
            "MZ",
        );
        assert!(run(&s, &fake).1.changed);
    }

    #[test]
    fn a_non_ascii_name_goes_into_the_notice_and_an_rfc2231_file_name() {
        let name = "Rechnung für Müller & Söhne — Oktober 2026 (endgültig, bitte prüfen).exe";
        let enc: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let raw = mixed(
            &format!(
                "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''{enc}"
            ),
            "AAAA",
        );
        let (out, _) = run(&exe(), &raw);
        assert!(crate::rules::long_lines(&out).is_empty());
        let msg = parsed(&out);
        let notice = &msg.parts[2];
        use mail_parser::MimeHeaders;
        assert_eq!(
            notice.attachment_name(),
            Some(format!("{name}.removed.txt").as_str())
        );
        assert_eq!(
            notice.content_type().unwrap().attribute("name"),
            notice.attachment_name()
        );
        let text = notice.text_contents().unwrap();
        assert!(text.contains(&format!("File name: {name}\r\n")), "{text}");
        assert!(
            String::from_utf8_lossy(&out).contains("Content-Transfer-Encoding: quoted-printable")
        );
    }

    #[test]
    fn a_name_with_line_breaks_cannot_forge_a_boundary_in_the_notice() {
        let raw = mixed(
            "Content-Type: application/octet-stream; name=\"=?utf-8?Q?x=0D=0A--B--=0D=0A.exe?=\"",
            "AAAA",
        );
        let (out, r) = run(&exe(), &raw);
        assert!(r.changed);
        let msg = parsed(&out);
        assert_eq!(msg.parts.len(), 3);
        assert!(!String::from_utf8_lossy(&out).contains("\n--B--\r\n.exe"));
    }

    #[test]
    fn a_template_whose_line_starts_with_two_dashes_is_sent_as_base64() {
        let s = exe()
            .with_notice("--B--\n{{ filename }} removed\n", "notice")
            .unwrap();
        let (out, _) = run(
            &s,
            &mixed(
                "Content-Type: application/octet-stream; name=\"a.exe\"",
                "AAAA",
            ),
        );
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("Content-Transfer-Encoding: base64"));
        assert_eq!(parsed(&out).parts.len(), 3);
    }

    #[test]
    fn a_part_the_parser_found_in_a_close_delimiter_or_epilogue_is_left_alone() {
        for raw in [
            b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\npreamble\n--B--\nContent-Type: application/octet-stream; name=a.exe\n\nAAAA\n".as_slice(),
            b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\n--B--\nContent-Type: application/octet-stream; name=a.exe\n\nAAAA\n",
        ] {
            let (out, r) = run(&exe(), raw);
            assert_eq!(out, raw);
            assert!(r.decisions[0].contains("malformed MIME"), "{r:?}");
        }
    }

    #[test]
    fn unnamed_body_text_and_declared_multiparts_are_never_candidates() {
        let s = StripAttachments::new(&[], &["*/*"], None).unwrap();
        // The parser leaves the html part out of its body lists (no end boundary).
        let raw = b"From: a@example.com\nContent-Type: multipart/alternative; boundary=A\n\n--A\nContent-Type: text/plain\n\nt\n--A\nContent-Type: text/html\n\n<p>h</p>\n";
        assert!(!run(&s, raw).1.changed);
        // A multipart the parser could not split (no boundary) stays the message.
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed\n\nbody\n";
        assert!(!run(&s, raw).1.changed);
    }

    #[test]
    fn every_message_type_counts_as_an_attached_message() {
        let raw = b"From: a@example.com\nContent-Type: multipart/report; boundary=R\n\n--R\nContent-Type: text/plain\n\nbounced\n--R\nContent-Type: message/delivery-status\n\nStatus: 5.0.0\n--R--\n";
        let s = StripAttachments::new(&[], &["message/*"], None).unwrap();
        let (_, r) = run(&s, raw);
        assert!(!r.changed);
        assert!(r.decisions[0].contains("an attached message"), "{r:?}");
        assert!(run(&s.include_attached_messages(true), raw).1.changed);
    }

    #[test]
    fn config_errors_name_their_key() {
        assert_eq!(
            StripAttachments::new(&[], &[], None).unwrap_err().key,
            "extensions"
        );
        assert_eq!(
            StripAttachments::new(&["a b"], &[], None).unwrap_err().key,
            "extensions"
        );
        assert_eq!(
            StripAttachments::new(&["."], &[], None).unwrap_err().key,
            "extensions"
        );
        assert_eq!(
            StripAttachments::new(&[], &["pdf"], None).unwrap_err().key,
            "content_types"
        );
        let err = exe().with_notice("{{ sender }}", "notice").unwrap_err();
        assert_eq!(err.key, "notice");
        let big = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert_eq!(
            exe().with_notice(&big, "notice_file").unwrap_err().key,
            "notice_file"
        );
    }

    fn build_from(toml_text: &str) -> Result<Box<dyn Stage>, KeyError> {
        let table: toml::Table = toml_text.parse().unwrap();
        let mut keys = StageKeys::new(table, std::path::Path::new("/nonexistent"));
        let stage = build(&mut keys)?;
        keys.finish()?;
        Ok(stage)
    }

    #[test]
    fn build_reads_every_key_and_names_the_bad_one() {
        assert!(
            build_from(
                "extensions = [\"exe\"]\ncontent_types = \"application/x-*\"\nmax_bytes = 10\nnotice = \"x {{ size }}\"\ninclude_attached_messages = true"
            )
            .is_ok()
        );
        let key = |t: &str| build_from(t).err().map(|e| e.key);
        assert_eq!(
            key("extensions = [\"exe\"]\nnotice = \"a\"\nnotice_file = \"n.txt\""),
            Some("notice_file".into())
        );
        assert_eq!(
            key("extensions = [\"exe\"]\nnotice_file = \"missing.txt\""),
            Some("notice_file".into())
        );
        assert_eq!(
            key("extensions = [\"exe\"]\nmax_bytes = -1"),
            Some("max_bytes".into())
        );
        assert_eq!(
            key("extensions = [\"exe\"]\nextension = [\"js\"]"),
            Some("extension".into())
        );
        assert_eq!(
            key("extensions = [\"exe\"]\ninclude_attached_messages = \"yes\""),
            Some("include_attached_messages".into())
        );
    }
}
