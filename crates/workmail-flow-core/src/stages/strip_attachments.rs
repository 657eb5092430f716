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
//!   `crates/workmail-flow-core/templates/strip_notice.txt`, built in.
//! - `include_attached_messages` = true (default): parts inside attached messages are
//!   stripped like any other, an attached message that matches itself is replaced whole,
//!   and a base64- or quoted-printable-encoded attached message (whose parts cannot be
//!   edited in place) is decoded, looked into, and replaced whole when anything inside
//!   it would be stripped. False: every part inside an attached message is left alone
//!   and a match there is only reported.
//! - `on_unstrippable` = `bounce` (default) | `drop` | `junk` | `deliver`, and
//!   `unstrippable_message` (the bounce text): what a match that cannot be removed does
//!   to the message (see "Fail closed" below).
//!
//! Matching is on every reading (see [`readings`]): every Content-Type and
//! Content-Disposition field, every name parameter decoded every way a reader decodes
//! it, names as file systems cut them, uuencoded and yEnc blocks in text, files inside
//! TNEF attachments; then the message is read the other ways a reader could read it,
//! and what another reading still finds after stripping cannot be removed.
//!
//! Fail closed: a match inside a signature or encryption, a uuencoded file in body
//! text, a match another reading still sees, or a stripped rewrite that is not
//! delivered (over a limit, content rules, WorkMail refusing it, the deadline, a panic)
//! gets `on_unstrippable` for the stage's recipients, never the original with the file.
//!
//! Which parts are candidates: every single part except body text, and every attached
//! message (any message/*, under the rule above). Body text is text/plain or text/html
//! without a declared name and not marked `attachment`, judged on its own headers rather
//! than the parser's RFC 8621 body lists, which drop body parts of malformed mail; named
//! text parts, `attachment` parts and every other type (inline images too, which RFC 8621
//! lists as attachments as well) are candidates. Never a part declared multipart/*
//! (even one the parser could not split), never anything inside multipart/signed,
//! multipart/encrypted or application/pkcs7-mime: a match there is not touched ("left
//! alone … inside multipart/signed") and fails closed. Text that is not in any part (a
//! preamble, an epilogue) is never edited either: a part-like block there that matches
//! fails closed.
//!
//! The notice part (see [`notice`]): `text/plain; charset=utf-8`, 7bit when ASCII, else
//! quoted-printable (whose encoder writes `--` as `=2D-`, so no line starts like a
//! boundary delimiter), `Content-Disposition: attachment` with the name `<original name>.removed.txt`
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
pub mod readings;

use notice::{DEFAULT_NOTICE, NOTICE_PLACEHOLDERS, NOTICE_SUFFIX, Notice};
use readings::Declared;

use crate::config::{KeyError, StageKeys};
use crate::envelope::Direction;
use crate::message::edit::HeaderOp;
use crate::message::mime_tree::{MimeTree, Part, PartId, PartKind};
use crate::message::transfer::TransferEncoding;
use crate::stage::actions::Action;
use crate::stage::template::Template;
use crate::stage::{FailClosed, Stage, StageContext, StageReport};
use crate::stages::verdict;
use std::fmt;
use std::ops::Range;

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
    /// A uuencoded block in a text part carries a name with this extension.
    Uuencoded(String),
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
            Reason::Uuencoded(e) => write!(f, "uuencoded file with extension {e}"),
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
    /// Matches, but must not be touched. `fails_closed`: the match still reaches the
    /// recipient although policy wanted it removed (inside a signature, uuencoded in
    /// text), so `on_unstrippable` applies; false where the config chose to leave it
    /// (`include_attached_messages = false`).
    LeftAlone {
        reasons: Vec<Reason>,
        why: String,
        fails_closed: bool,
    },
    Strip(Vec<Reason>),
}

/// What happens to a message holding a match that cannot be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnstrippable {
    Bounce,
    Drop,
    /// Move to junk (inbound); outbound mail is bounced instead.
    Junk,
    /// Deliver it with the match, and report.
    Deliver,
}

impl OnUnstrippable {
    fn parse(v: &str) -> Result<OnUnstrippable, KeyError> {
        match v {
            "bounce" => Ok(OnUnstrippable::Bounce),
            "drop" => Ok(OnUnstrippable::Drop),
            "junk" => Ok(OnUnstrippable::Junk),
            "deliver" => Ok(OnUnstrippable::Deliver),
            other => Err(KeyError::new(
                "on_unstrippable",
                format!("{other:?} is not one of bounce, drop, junk, deliver"),
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            OnUnstrippable::Bounce => "bounce",
            OnUnstrippable::Drop => "drop",
            OnUnstrippable::Junk => "junk",
            OnUnstrippable::Deliver => "deliver",
        }
    }
}

/// The bounce text when `unstrippable_message` is not set.
pub const DEFAULT_UNSTRIPPABLE_MESSAGE: &str =
    "Message blocked: it carries an attachment that policy forbids and that could not be removed";

#[derive(Debug, Clone)]
pub struct StripAttachments {
    extensions: Vec<String>,
    content_types: Vec<TypeGlob>,
    max_bytes: Option<u64>,
    notice: Template,
    include_attached_messages: bool,
    on_unstrippable: OnUnstrippable,
    unstrippable_message: Option<Template>,
}

/// A match that reaches the recipient although policy wanted it gone.
struct Unstrippable {
    part: Option<PartId>,
    what: String,
}

impl StripAttachments {
    /// A policy with the built-in notice, attached messages included, and a bounce for
    /// what cannot be removed. Errors name the key as the config loader does.
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
            include_attached_messages: true,
            on_unstrippable: OnUnstrippable::Bounce,
            unstrippable_message: None,
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

    /// What a match that cannot be removed does to the message (default: bounce).
    pub fn on_unstrippable(mut self, on: OnUnstrippable) -> StripAttachments {
        self.on_unstrippable = on;
        self
    }

    /// The bounce text for unstrippable matches, a one-line template.
    pub fn with_unstrippable_message(mut self, text: &str) -> Result<StripAttachments, KeyError> {
        self.unstrippable_message = Some(verdict::parse_bounce_template(
            "unstrippable_message",
            text,
        )?);
        Ok(self)
    }

    /// Every rule `part` matches, on every reading of its header.
    fn reasons(&self, mail: &MimeTree<'_>, part: &Part, declared: &Declared) -> Vec<Reason> {
        let mut found = Vec::new();
        if let Some(ext) = self.extension_in(&declared.names) {
            found.push(Reason::Extension(ext));
        }
        // A signature or encryption's own parts are not attachments a type glob such as
        // `application/x-*` is about (every S/MIME message would match): only their
        // names and sizes count.
        let machinery = is_protection_machinery(mail, part);
        if let Some(g) = self
            .content_types
            .iter()
            .find(|g| !machinery && declared.types.iter().any(|t| g.matches(t)))
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

    /// The first configured extension one of `names` ends with.
    fn extension_in(&self, names: &[String]) -> Option<String> {
        names.iter().find_map(|name| {
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
        // Declared types decide, not what a reader made of malformed parts: a multipart
        // without a usable boundary is still the message's structure, and every
        // message/* (delivery-status, partial, …) is an attached message.
        let attached_message =
            matches!(part.kind, PartKind::Message(_)) || part.main_type() == "message";
        if part.main_type() == "multipart" {
            return Verdict::NotCandidate;
        }
        let declared = readings::declared(mail, part);
        if !attached_message && (!part.is_leaf() || readings::is_body_text(&declared)) {
            // Body text is never stripped, but a uuencoded file inside it still reaches
            // the reader (clients show it as an attachment).
            return match self.uuencoded_reasons(mail, part) {
                reasons if reasons.is_empty() => Verdict::NotCandidate,
                reasons => self.left_alone_or_reported(
                    part,
                    reasons,
                    "a uuencoded file inside body text cannot be removed from it".into(),
                ),
            };
        }
        if is_notice(mail, part) {
            return Verdict::Notice;
        }
        let mut reasons = self.reasons(mail, part, &declared);
        reasons.extend(self.uuencoded_reasons(mail, part));
        if reasons.is_empty() {
            reasons.extend(self.tnef_reason(mail, part));
        }
        let mut too_deep = false;
        if reasons.is_empty()
            && self.include_attached_messages
            && part.kind == PartKind::Message(None)
        {
            if depth < MAX_OPAQUE_DEPTH {
                reasons.extend(self.opaque_message_reason(mail, part, depth));
            } else {
                too_deep = true;
            }
        }
        if too_deep {
            return Verdict::LeftAlone {
                reasons: Vec::new(),
                why: format!(
                    "encoded attached messages nest deeper than {MAX_OPAQUE_DEPTH}; what is inside cannot be checked"
                ),
                fails_closed: true,
            };
        }
        if reasons.is_empty() {
            return Verdict::NoMatch;
        }
        if part.protected {
            return Verdict::LeftAlone {
                reasons,
                why: protection_of(mail, part),
                fails_closed: true,
            };
        }
        if !self.include_attached_messages && part.in_attached_message {
            return Verdict::LeftAlone {
                reasons,
                why: "inside an attached message (include_attached_messages = false)".into(),
                fails_closed: false,
            };
        }
        if !self.include_attached_messages && attached_message {
            return Verdict::LeftAlone {
                reasons,
                why: "an attached message (include_attached_messages = false)".into(),
                fails_closed: false,
            };
        }
        if !part.is_message_root && !stands_after_a_boundary(mail, part) {
            return Verdict::LeftAlone {
                reasons,
                why: "malformed MIME: the part does not start right after a boundary line, so replacing it could change the structure".into(),
                fails_closed: true,
            };
        }
        Verdict::Strip(reasons)
    }

    /// A match that stays where it is: reported only inside an attached message the
    /// config leaves alone, else failing closed.
    fn left_alone_or_reported(&self, part: &Part, reasons: Vec<Reason>, why: String) -> Verdict {
        if part.protected {
            return Verdict::LeftAlone {
                reasons,
                why: "inside signed or encrypted content".into(),
                fails_closed: true,
            };
        }
        let chosen = !self.include_attached_messages && part.in_attached_message;
        Verdict::LeftAlone {
            reasons,
            why,
            fails_closed: !chosen,
        }
    }

    /// For a TNEF attachment (Outlook's `winmail.dat`, whose files Outlook shows): a
    /// file inside it with a forbidden extension. The attachment is replaced whole, as
    /// an encoded attached message is.
    fn tnef_reason(&self, mail: &MimeTree<'_>, part: &Part) -> Option<Reason> {
        let is_tnef = matches!(
            part.content_type.as_str(),
            "application/ms-tnef" | "application/vnd.ms-tnef"
        ) || part
            .names
            .iter()
            .any(|n| n.eq_ignore_ascii_case("winmail.dat"));
        if !is_tnef || self.extensions.is_empty() {
            return None;
        }
        let encoding = TransferEncoding::parse(part.transfer_encoding.as_deref())?;
        let names = readings::tnef_names(&encoding.decode(mail.body_bytes(part.id)))?;
        self.extension_in(&names)
            .map(|e| Reason::Inside(Box::new(Reason::Extension(e))))
    }

    /// Extensions of uuencoded files in a text part.
    fn uuencoded_reasons(&self, mail: &MimeTree<'_>, part: &Part) -> Vec<Reason> {
        if !matches!(part.kind, PartKind::Text | PartKind::Html) || self.extensions.is_empty() {
            return Vec::new();
        }
        let names = readings::uuencoded_names(mail, part);
        self.extension_in(&names)
            .map(Reason::Uuencoded)
            .into_iter()
            .collect()
    }

    /// For a base64-encoded attached message: the first reason any part inside it would
    /// be stripped for (or fail closed for).
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
                Verdict::LeftAlone {
                    reasons,
                    fails_closed: true,
                    ..
                } => reasons.into_iter().next(),
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

    /// Matches that another reading of the message still finds once the parts in
    /// `covered` (stripped by this stage, or already reported as unstrippable) are dealt
    /// with: the alternative structure readings that could differ from the default one,
    /// part-like blocks outside the parts, and a lenient parser's reading where the
    /// message has an ambiguity. Read from the original, so the stripped message is
    /// never built twice.
    fn residual(&self, mail: &MimeTree<'_>, covered: &[Range<usize>]) -> Vec<Unstrippable> {
        let bytes = mail.raw();
        let is_covered =
            |r: Range<usize>| covered.iter().any(|c| c.start <= r.start && r.end <= c.end);
        let mut found = Vec::new();
        for reading in readings::alternatives_that_differ(mail) {
            let Ok(alt) = MimeTree::parse_as(bytes, reading) else {
                continue;
            };
            for p in alt
                .parts()
                .iter()
                .filter(|p| !is_covered(p.header.start..p.body.end))
            {
                if let Some(reasons) = self.hit(&alt, p) {
                    found.push(Unstrippable {
                        part: None,
                        what: format!(
                            "with {}, part {} ({}) {}",
                            readings::describe(&reading),
                            p.id,
                            p.content_type,
                            join(&reasons)
                        ),
                    });
                }
            }
        }
        found.extend(self.outside_the_parts(mail));
        // The lenient parser's cost grows faster than the message; past its part cap
        // (the message is over the attachment limit anyway) it is not asked.
        if !mail.findings().is_empty() && mail.parts().len() <= readings::LENIENT_PARTS_MAX {
            found.extend(self.lenient_residual(bytes, &is_covered));
        }
        found
    }

    /// The reasons a part matches and would reach the recipient: to be stripped, or
    /// left alone failing closed.
    fn hit(&self, mail: &MimeTree<'_>, part: &Part) -> Option<Vec<Reason>> {
        match self.verdict(mail, part, 0) {
            Verdict::Strip(r) => Some(r),
            Verdict::LeftAlone {
                reasons,
                fails_closed: true,
                ..
            } => Some(reasons),
            _ => None,
        }
    }

    /// Matches in text that readers ignore but some parsers read as parts: a
    /// multipart's preamble and epilogue, when they hold header-like lines.
    fn outside_the_parts(&self, tree: &MimeTree<'_>) -> Vec<Unstrippable> {
        let raw = tree.raw();
        let mut found = Vec::new();
        for p in tree.parts().iter().filter(|p| p.is_multipart()) {
            let regions = [
                ("preamble", Some(p.preamble.clone())),
                ("epilogue", p.epilogue.clone()),
            ];
            for (what, range) in regions {
                let Some(range) = range else { continue };
                let text = &raw[range.start.min(raw.len())..range.end.min(raw.len())];
                let looks_like_a_part =
                    text.windows(8).any(|w| w.eq_ignore_ascii_case(b"content-"));
                if !looks_like_a_part {
                    continue;
                }
                let Ok(inner) = MimeTree::parse(text) else {
                    continue;
                };
                for q in inner.parts() {
                    if let Some(reasons) = self.hit(&inner, q) {
                        found.push(Unstrippable {
                            part: Some(p.id),
                            what: format!(
                                "a part-like block in the {what} of part {} ({}) {}",
                                p.id,
                                q.content_type,
                                join(&reasons)
                            ),
                        });
                    }
                }
            }
        }
        found
    }

    /// What mail-parser, a lenient reader, still shows as a match.
    fn lenient_residual(
        &self,
        bytes: &[u8],
        is_covered: &dyn Fn(Range<usize>) -> bool,
    ) -> Vec<Unstrippable> {
        let Some(parts) = readings::lenient_parts(bytes) else {
            return Vec::new();
        };
        parts
            .iter()
            .filter(|p| !is_covered(p.range.clone()))
            .filter(|p| self.include_attached_messages || !p.in_attached_message)
            .filter(|p| !p.is_text_body)
            .filter(|p| {
                !(p.content_type == "text/plain"
                    && p.names
                        .iter()
                        .all(|n| n.to_lowercase().ends_with(NOTICE_SUFFIX))
                    && !p.names.is_empty())
            })
            .filter_map(|p| {
                let mut reasons = Vec::new();
                if let Some(e) = self.extension_in(&p.names) {
                    reasons.push(Reason::Extension(e));
                }
                if !p.content_type.starts_with("multipart/")
                    && let Some(g) = self
                        .content_types
                        .iter()
                        .find(|g| g.matches(&p.content_type))
                {
                    reasons.push(Reason::ContentType(g.clone()));
                }
                if let Some(max) = self.max_bytes
                    && p.size > max
                {
                    reasons.push(Reason::Size { size: p.size, max });
                }
                // An empty part carries nothing a type rule could be about.
                if p.size == 0 && reasons.iter().all(|r| matches!(r, Reason::ContentType(_))) {
                    reasons.clear();
                }
                (!reasons.is_empty()).then(|| Unstrippable {
                    part: None,
                    what: format!(
                        "as a lenient parser reads it, a {} part {}",
                        p.content_type,
                        join(&reasons)
                    ),
                })
            })
            .collect()
    }

    /// The action for a match that stays, on this message's direction.
    fn fail_closed_action(&self, mail: &MimeTree<'_>, cx: &StageContext<'_>) -> Option<Action> {
        let bounce = || Action::Bounce {
            message: verdict::render_bounce(
                self.unstrippable_message.as_ref(),
                DEFAULT_UNSTRIPPABLE_MESSAGE,
                mail,
                cx,
            ),
        };
        match self.on_unstrippable {
            OnUnstrippable::Deliver => None,
            OnUnstrippable::Bounce => Some(bounce()),
            OnUnstrippable::Drop => Some(Action::Drop),
            OnUnstrippable::Junk if cx.envelope.direction == Direction::Outbound => Some(bounce()),
            OnUnstrippable::Junk => Some(Action::MoveToJunk),
        }
    }
}

impl Stage for StripAttachments {
    fn directory_needs(&self) -> crate::envelope::DirectoryNeeds {
        crate::envelope::DirectoryNeeds {
            sender: self
                .unstrippable_message
                .as_ref()
                .is_some_and(Template::uses_directory),
            recipients: false,
        }
    }

    fn on_failure(&self, mail: &MimeTree<'_>, cx: &StageContext<'_>) -> Option<Action> {
        self.fail_closed_action(mail, cx)
    }

    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        let mut stripped: Vec<PartId> = Vec::new();
        let mut is_stripped = vec![false; mail.parts().len()];
        // (part, decision for the summary, note for the part's line in `explain`)
        let mut left_alone: Vec<(PartId, String, String)> = Vec::new();
        let mut stripped_notes: Vec<(PartId, String, String)> = Vec::new();
        let mut unstrippable: Vec<Unstrippable> = Vec::new();
        let mut report = StageReport::default();
        let mut notices = 0;
        for part in mail.parts() {
            if part.parent.is_some_and(|p| is_stripped[p]) {
                // replaced with the attached message around it
                is_stripped[part.id] = true;
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
                Verdict::LeftAlone {
                    reasons,
                    why,
                    fails_closed,
                } => {
                    let matches = if reasons.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", join(&reasons))
                    };
                    if fails_closed {
                        unstrippable.push(Unstrippable {
                            part: Some(part.id),
                            what: format!("part {} ({}): {why}", part.id, part.content_type),
                        });
                    }
                    left_alone.push((
                        part.id,
                        format!(
                            "left alone part {} ({}{matches}): {why}",
                            part.id, part.content_type,
                        ),
                        format!(
                            "left alone: {why}{}",
                            if reasons.is_empty() {
                                String::new()
                            } else {
                                format!(" (matches {})", join(&reasons))
                            }
                        ),
                    ))
                }
                Verdict::Strip(reasons) => {
                    self.strip(mail, part, cx);
                    stripped.push(part.id);
                    is_stripped[part.id] = true;
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
        if let Some(f) = mail.findings().iter().find(|f| {
            matches!(
                f.kind,
                crate::message::structure::FindingKind::TooDeep
                    | crate::message::structure::FindingKind::TooManyParts
            )
        }) {
            unstrippable.push(Unstrippable {
                part: Some(f.part),
                what: format!("the structure cannot be read: {f}"),
            });
        }
        // Whatever another reader would still find once the stripped parts are gone.
        if !stripped.is_empty() && mail.header_is_ambiguous(0) {
            unstrippable.push(Unstrippable {
                part: None,
                what: "readers disagree on where the message's header is, so no rewrite of it is delivered".into(),
            });
        }
        let covered: Vec<Range<usize>> = stripped
            .iter()
            .chain(unstrippable.iter().filter_map(|u| u.part.as_ref()))
            .map(|&id| mail.part(id).header.start..mail.part(id).body.end)
            .collect();
        let more = self.residual(mail, &covered);
        unstrippable.extend(more);
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
        let action = self.fail_closed_action(mail, cx);
        if !unstrippable.is_empty() {
            let first = &unstrippable[0];
            let more = match unstrippable.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            let outcome = match &action {
                Some(a) => format!(
                    "{} (on_unstrippable = {})",
                    a.type_name(),
                    self.on_unstrippable.as_str()
                ),
                None => "delivered with it (on_unstrippable = deliver)".into(),
            };
            let decision = format!("cannot remove a match: {}{more}; {outcome}", first.what);
            match first.part {
                Some(id) => report.note_about_part(id, decision, "cannot be removed", false),
                None => report.note(decision, false),
            }
            if let Some(a) = action.clone() {
                cx.actions.set(a, cx.scope.clone());
            }
        } else if !stripped.is_empty()
            && let Some(a) = action
        {
            cx.if_not_delivered.push(FailClosed {
                action: a,
                scope: cx.scope.clone(),
                reason: format!(
                    "{} stripped attachment(s) would reach the recipients if the rewrite is not delivered (on_unstrippable = {})",
                    stripped.len(),
                    self.on_unstrippable.as_str()
                ),
            });
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
    let include = keys.bool_or("include_attached_messages", true)?;
    let on_unstrippable = match keys.opt_string("on_unstrippable")? {
        Some(v) => OnUnstrippable::parse(&v)?,
        None => OnUnstrippable::Bounce,
    };
    let unstrippable_message = keys.opt_string("unstrippable_message")?;
    let ext: Vec<&str> = extensions.iter().map(String::as_str).collect();
    let types: Vec<&str> = content_types.iter().map(String::as_str).collect();
    let mut stage = StripAttachments::new(&ext, &types, max_bytes)?
        .include_attached_messages(include)
        .on_unstrippable(on_unstrippable);
    if let Some(text) = unstrippable_message {
        if on_unstrippable != OnUnstrippable::Bounce && on_unstrippable != OnUnstrippable::Junk {
            return Err(KeyError::new(
                "unstrippable_message",
                format!(
                    "is the bounce text; on_unstrippable = {} never bounces",
                    on_unstrippable.as_str()
                ),
            ));
        }
        stage = stage.with_unstrippable_message(&text)?;
    }
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

/// Whether a part inside a multipart starts where a well-formed one does: at the start
/// of a line, its first header field right there. The parser also reports parts it
/// found in a close delimiter or an epilogue ("--B--" then header-like lines); replacing
/// those would overwrite the delimiter and create a part that was not there.
fn stands_after_a_boundary(mail: &MimeTree<'_>, part: &Part) -> bool {
    let start = part.header.start;
    let at_line_start = start == 0 || mail.raw().get(start - 1) == Some(&b'\n');
    at_line_start && part.fields.first().is_none_or(|f| f.range.start == start)
}

/// The parts that make a signature or an encryption rather than carry content: the
/// signature of a multipart/signed (its second part, RFC 1847), the control part of a
/// multipart/encrypted (its first), and an application/pkcs7-mime container itself.
fn is_protection_machinery(mail: &MimeTree<'_>, part: &Part) -> bool {
    if matches!(
        part.content_type.as_str(),
        "application/pkcs7-mime" | "application/x-pkcs7-mime"
    ) {
        return true;
    }
    let Some(parent) = part.parent.map(|p| mail.part(p)) else {
        return false;
    };
    let position = parent.children().iter().position(|&c| c == part.id);
    match parent.content_type.as_str() {
        "multipart/signed" => position == Some(1),
        "multipart/encrypted" => position == Some(0),
        _ => false,
    }
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
    use crate::envelope::Envelope;
    use crate::message::newline::Newline;
    use crate::message::transfer;

    fn run(stage: &StripAttachments, raw: &[u8]) -> (Vec<u8>, StageReport) {
        let (out, report, _) = run_with_actions(stage, raw);
        (out, report)
    }

    /// The output, the report, and the delivery response the stage decided.
    fn run_with_actions(stage: &StripAttachments, raw: &[u8]) -> (Vec<u8>, StageReport, String) {
        let tree = MimeTree::parse(raw).unwrap();
        let env = Envelope::default();
        let mut cx = StageContext::new(&env);
        let report = stage.run(&tree, &mut cx);
        let response = serde_json::to_string(&cx.actions.to_response()).unwrap();
        (cx.edits.apply(&tree).unwrap().to_vec(), report, response)
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
                (5, "cannot be removed", false),
            ]
        );
        assert!(r.parts.iter().all(|n| !n.note.contains("setup")));
        assert_eq!(
            r.message_decisions().collect::<Vec<_>>(),
            Vec::<&str>::new(),
            "every decision is about a part: {r:?}"
        );
        // stripped, left alone, and the fail-closed decision about the signed match
        assert_eq!(r.decisions.len(), 3);
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
    fn signed_parts_are_left_alone_and_the_message_bounces_unless_deliver_is_chosen() {
        let raw = b"From: a@example.com\nContent-Type: multipart/signed; boundary=S; protocol=\"application/pkcs7-signature\"\n\n--S\nContent-Type: multipart/mixed; boundary=M\n\n--M\nContent-Type: text/plain\n\nt\n--M\nContent-Type: application/octet-stream; name=\"a.exe\"\n\nAAAA\n--M--\n--S\nContent-Type: application/pkcs7-signature; name=smime.p7s\n\nAAAA\n--S--\n";
        let (out, r, response) = run_with_actions(&exe(), raw);
        assert!(!r.changed);
        assert_eq!(out, raw);
        assert_eq!(
            r.decisions,
            [
                "left alone part 3 (application/octet-stream; extension exe): inside multipart/signed",
                "cannot remove a match: part 3 (application/octet-stream): inside multipart/signed; BOUNCE (on_unstrippable = bounce)"
            ]
        );
        assert!(response.contains("BOUNCE"), "{response}");
        assert!(
            response.contains(DEFAULT_UNSTRIPPABLE_MESSAGE),
            "{response}"
        );
        let deliver = exe().on_unstrippable(OnUnstrippable::Deliver);
        let (out, r, response) = run_with_actions(&deliver, raw);
        assert_eq!(out, raw);
        assert!(r.decisions[1].ends_with("delivered with it (on_unstrippable = deliver)"));
        assert!(!response.contains("BOUNCE"), "{response}");
    }

    #[test]
    fn attached_messages_are_stripped_inside_unless_excluded() {
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nsee below\n--B\nContent-Type: message/rfc822\n\nFrom: b@example.com\nSubject: fwd\nContent-Type: multipart/mixed; boundary=C\n\n--C\nContent-Type: text/plain\n\ninner\n--C\nContent-Type: application/octet-stream; name=\"b.exe\"\n\nAAAA\n--C--\n--B--\n";
        let (out, r, response) = run_with_actions(&exe().include_attached_messages(false), raw);
        assert_eq!(out, raw);
        assert_eq!(
            r.decisions,
            [
                "left alone part 5 (application/octet-stream; extension exe): inside an attached message (include_attached_messages = false)"
            ]
        );
        assert!(
            !response.contains("BOUNCE"),
            "a chosen exclusion is reported, not bounced"
        );
        let s = exe();
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
        let s = StripAttachments::new(&["eml"], &[], None)
            .unwrap()
            .include_attached_messages(false);
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
        assert!(!run(&exe().include_attached_messages(false), &raw).1.changed);
        let (_, r) = run(&exe(), &raw);
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
    fn a_template_whose_line_starts_with_two_dashes_is_sent_quoted_printable_with_the_dash_escaped()
    {
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
        assert!(text.contains("Content-Transfer-Encoding: quoted-printable"));
        assert!(text.contains("\n=2D-B=2D-\r\n"), "{text}");
        assert_eq!(parsed(&out).parts.len(), 3);
    }

    #[test]
    fn a_part_a_lenient_parser_finds_in_an_epilogue_fails_closed() {
        // Clients read the epilogue as nothing; mail-parser reads a part there. The
        // bytes cannot be replaced without inventing structure, so the message bounces.
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\npreamble\n--B--\nContent-Type: application/octet-stream; name=a.exe\n\nAAAA\n";
        let (out, r, response) = run_with_actions(&exe(), raw);
        assert_eq!(out, raw);
        assert!(r.decisions[0].contains("cannot remove a match"), "{r:?}");
        assert!(r.decisions[0].contains("epilogue"), "{r:?}");
        assert!(response.contains("BOUNCE"), "{response}");
        // A close delimiter right after an open one is skipped as a doubled boundary
        // (Python's reading): the part after it is a part, and it is stripped.
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\n--B--\nContent-Type: application/octet-stream; name=a.exe\n\nAAAA\n";
        let (out, r, _) = run_with_actions(&exe(), raw);
        assert!(r.decisions[0].starts_with("stripped part 1"), "{r:?}");
        assert!(!String::from_utf8_lossy(&out).contains("AAAA"));
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
        let s = StripAttachments::new(&[], &["message/*"], None)
            .unwrap()
            .include_attached_messages(false);
        let (_, r) = run(&s, raw);
        assert!(!r.changed);
        assert!(r.decisions[0].contains("an attached message"), "{r:?}");
        assert!(run(&s.include_attached_messages(true), raw).1.changed);
    }

    #[test]
    fn a_winmail_dat_holding_an_exe_is_replaced_and_a_yenc_exe_in_text_is_refused() {
        use base64::Engine;
        let mut tnef = vec![0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00, 0x02];
        tnef.extend_from_slice(&0x0001_8010u32.to_le_bytes());
        tnef.extend_from_slice(&9u32.to_le_bytes());
        tnef.extend_from_slice(b"evil.exe\0");
        tnef.extend_from_slice(&[0, 0]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&tnef);
        let raw = mixed(
            "Content-Type: application/ms-tnef; name=\"winmail.dat\"\nContent-Transfer-Encoding: base64",
            &b64,
        );
        let (out, r) = run(&exe(), &raw);
        assert_eq!(
            r.decisions,
            ["stripped part 2 (application/ms-tnef): holds a part with extension exe"]
        );
        assert!(!String::from_utf8_lossy(&out).contains(&b64));
        // The same file name in an ordinary winmail.dat that holds none passes.
        let mut clean = tnef.clone();
        let at = clean.windows(8).position(|w| w == b"evil.exe").unwrap();
        clean[at..at + 8].copy_from_slice(b"memo.txt");
        let raw = mixed(
            "Content-Type: application/ms-tnef; name=\"winmail.dat\"\nContent-Transfer-Encoding: base64",
            &base64::engine::general_purpose::STANDARD.encode(&clean),
        );
        assert!(!run(&exe(), &raw).1.changed);
        let raw = b"From: a@example.com\nContent-Type: text/plain\n\nhi\n=ybegin line=128 size=2 name=evil.exe\nMZ\n=yend size=2\n";
        let (_, r, response) = run_with_actions(&exe(), raw);
        assert!(
            r.decisions
                .iter()
                .any(|d| d.contains("uuencoded file with extension exe")),
            "{r:?}"
        );
        assert!(response.contains("BOUNCE"), "{response}");
    }

    #[test]
    fn past_the_part_cap_a_hidden_exe_fails_closed() {
        let mut raw =
            b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n".to_vec();
        for _ in 0..crate::message::structure::MAX_PARTS + 5 {
            raw.extend_from_slice(b"--b\n\nx\n");
        }
        raw.extend_from_slice(
            b"--b\nContent-Type: application/octet-stream; name=a.exe\n\nMZ\n--b--\n",
        );
        let (_, r, response) = run_with_actions(&exe(), &raw);
        assert!(
            r.decisions.iter().any(|d| d.contains("the rest not read")),
            "{r:?}"
        );
        assert!(response.contains("BOUNCE"), "{response}");
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
