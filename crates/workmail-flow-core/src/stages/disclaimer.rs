//! `disclaimer`: adds a disclaimer to the message's body text.
//!
//! Keys:
//! - `text` / `text_file`: the plain-text template (inline, or a file relative to the
//!   config file); `html` / `html_file`: the HTML template. At least one is required.
//!   With only `text`, HTML parts get the text HTML-escaped in `<p>` blocks (one per
//!   paragraph, `<br>` between lines) inside a `<div>`. With only `html`, plain parts get
//!   the HTML read as text: tags dropped, character references decoded, block elements
//!   and `<br>` on their own lines, one blank line between paragraphs.
//! - `placement` = `bottom` (default) | `top` | `above_quote`: in a reply or forward,
//!   above the quoted earlier message ([`plain::quote_start`], [`html::quote_start`]),
//!   at the bottom where there is none.
//! - `skip_if_present` = true (default): a part that already holds the disclaimer (a
//!   second pass, or a reply quoting an earlier message) gets no second one. With
//!   `above_quote` only the text above the quote counts, so a reply quoting a signed
//!   message still gets its own signature.
//!
//! Templates may use `{{ sender }}` (the From address, else the envelope's MAIL FROM),
//! `{{ recipients }}` (the To and Cc addresses: the envelope's list is not used, as it
//! holds Bcc recipients every reader would then see), `{{ subject }}` (decoded),
//! `{{ direction }}` (`inbound` / `outbound`) and `{{ date }}` (the Date field as
//! written), and with a directory the sender's attributes (`{{ sender.display_name }}`,
//! `{{ sender.telephone }}`, ...; see [`crate::stage::template`] for conditionals and the
//! lines left out when empty). The HTML template escapes what it inserts; an unknown
//! placeholder is a config error naming the key. Defaults ship in
//! `templates/disclaimer.{txt,html}` and `templates/signature.{txt,html}`.
//!
//! Where: the last text/plain and the last text/html part of the body as RFC 8621
//! section 4.1.4 defines it, once each, and never an attachment (Content-Disposition
//! attachment, or a named text part that is not first in its multipart), an attached
//! message or anything inside one, text/calendar, or anything inside multipart/signed,
//! multipart/encrypted or application/pkcs7-mime. HTML goes before the closing body tag
//! that ends the document (see [`html`]); text goes on its own lines a blank line away
//! from the content, format=flowed kept intact (see [`plain`]). The part is re-encoded
//! through [`crate::message::text_edit::replace_text`]; in HTML, characters the part's charset
//! cannot hold are written as character references so the part keeps its charset (and
//! agrees with any `<meta charset>` inside it).
//!
//! Left alone, with the reason in the report: a part whose text cannot be decoded
//! without loss (an unknown charset, bytes invalid in it, a broken transfer encoding or
//! one we do not write), since re-encoding it would damage what the sender wrote; a part
//! holding inline PGP (signed or encrypted armor); a message whose header the parser
//! could not read. A message cut short before its final boundary gets the disclaimer in
//! the text part it ends with, which readers show as the end of the body.

pub mod html;
pub mod plain;
pub mod presence;

pub use plain::Placement;

use crate::config::{KeyError, StageKeys};
use crate::envelope::Envelope;
use crate::envelope::directory::sender_person;
use crate::envelope::{DirectoryNeeds, Person};
use crate::message::mime_tree::{MimeTree, Part, PartId, PartKind, TextMode};
use crate::message::newline::Newline;
use crate::message::text_edit::{self, TextChange};
use crate::message::transfer::TransferEncoding;
use crate::stage::template::{Escape, Template, html_escape};
use crate::stage::{Stage, StageContext, StageReport};
use presence::Markers;
use regex::Regex;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The placeholders a disclaimer template may use.
pub const PLACEHOLDERS: &[&str] = &["sender", "recipients", "subject", "direction", "date"];

/// A configured disclaimer.
#[derive(Debug, Clone)]
pub struct Disclaimer {
    text: Option<Template>,
    html: Option<Template>,
    placement: Placement,
    skip_if_present: bool,
}

/// What one message's templates are filled with: the placeholder values and the
/// sender's directory entry, if the directory knows them.
pub struct Fill<'e> {
    pub values: BTreeMap<&'static str, String>,
    pub sender: Option<&'e Person>,
}

/// What became of one chosen part: the decision for the summary and a few words for
/// the part's line in `explain`.
struct PartOutcome {
    decision: String,
    note: String,
}

/// A part left alone: `decision` continues "text/plain part 2 …", `note` stands alone.
fn left_alone(what: &str, rest: String, note: String) -> PartOutcome {
    PartOutcome {
        decision: format!("{what} {rest}"),
        note,
    }
}

/// Which representation of the body a part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repr {
    Plain,
    Html,
}

impl Repr {
    fn label(self) -> &'static str {
        match self {
            Repr::Plain => "text/plain",
            Repr::Html => "text/html",
        }
    }
}

impl Disclaimer {
    /// A disclaimer from template texts; errors name the key (`text`, `html`).
    pub fn new(
        text: Option<&str>,
        html: Option<&str>,
        placement: Placement,
        skip_if_present: bool,
    ) -> Result<Disclaimer, KeyError> {
        Disclaimer::from_sources(
            text.map(|t| ("text", t.to_string())),
            html.map(|h| ("html", h.to_string())),
            placement,
            skip_if_present,
        )
    }

    /// A disclaimer from `(key, template text)` pairs, the key used in errors.
    fn from_sources(
        text: Option<(&str, String)>,
        html: Option<(&str, String)>,
        placement: Placement,
        skip_if_present: bool,
    ) -> Result<Disclaimer, KeyError> {
        if text.is_none() && html.is_none() {
            return Err(KeyError::new(
                "text",
                "a disclaimer needs `text`, `text_file`, `html` or `html_file`",
            ));
        }
        let text = text
            .map(|(k, t)| parse_template(k, &t, false))
            .transpose()?;
        let html = html.map(|(k, t)| parse_template(k, &t, true)).transpose()?;
        Ok(Disclaimer {
            text,
            html,
            placement,
            skip_if_present,
        })
    }

    /// The fixed text of this message's renderings, one set per template given, each
    /// tried against plain and HTML parts alike (a reply may quote the HTML disclaimer
    /// as text, or the other way round). Rendered per message: which lines and blocks a
    /// template yields depends on the values (a user without a phone has no `Tel:`).
    fn markers(&self, fill: &Fill<'_>) -> Vec<Markers> {
        let mut markers = Vec::new();
        if let Some(t) = &self.text {
            markers.push(Markers::from_slotted(
                &t.render_slotted(&fill.values, fill.sender, Escape::None),
                false,
            ));
        }
        if let Some(h) = &self.html {
            markers.push(Markers::from_slotted(
                &h.render_slotted(&fill.values, fill.sender, Escape::Html),
                true,
            ));
        }
        markers
    }

    /// The plain-text disclaimer for this message, lines ending in LF.
    fn render_plain(&self, fill: &Fill<'_>) -> String {
        let (values, sender) = (&fill.values, fill.sender);
        match (&self.text, &self.html) {
            (Some(t), _) => Newline::Lf.normalize(&t.render_for(values, sender, Escape::None)),
            (None, Some(h)) => html::to_text(&h.render_for(values, sender, Escape::Html)),
            (None, None) => String::new(),
        }
    }

    /// The HTML disclaimer for this message, lines ending in LF, no final line break.
    fn render_html(&self, fill: &Fill<'_>) -> String {
        let (values, sender) = (&fill.values, fill.sender);
        match (&self.html, &self.text) {
            (Some(h), _) => Newline::Lf
                .normalize(&h.render_for(values, sender, Escape::Html))
                .trim_end()
                .to_string(),
            (None, Some(t)) => text_to_html(&t.render_for(values, sender, Escape::None)),
            (None, None) => String::new(),
        }
    }

    /// Whether a part's decoded text already holds the disclaimer.
    fn is_present(&self, text: &str, repr: Repr, fill: &Fill<'_>) -> bool {
        let normalized = presence::normalize_part(text, repr == Repr::Html);
        let markers = self.markers(fill);
        if markers.iter().any(|m| m.is_distinctive()) {
            return markers
                .iter()
                .filter(|m| m.is_distinctive())
                .any(|m| m.found_in(&normalized));
        }
        // Templates of placeholders only: look for this message's rendering.
        [
            presence::normalize(&self.render_plain(fill)),
            presence::normalize_part(&self.render_html(fill), true),
        ]
        .iter()
        .any(|r| !r.is_empty() && normalized.contains(r.as_str()))
    }

    /// Adds the disclaimer to one part, or says why not. `why` says why this part was
    /// chosen ("the last text/html part of the body").
    fn add_to(
        &self,
        mail: &MimeTree<'_>,
        cx: &mut StageContext<'_>,
        id: PartId,
        repr: Repr,
        why: &str,
        fill: &Fill<'_>,
    ) -> Result<PartOutcome, PartOutcome> {
        let part = mail.part(id);
        let what = format!("{} part {id}", repr.label());
        let what = what.as_str();
        if part.protected {
            let container = protection_container(mail, part);
            return Err(left_alone(
                what,
                format!("is inside {container}; left alone so the signature or encryption holds"),
                format!(
                    "left alone ({why}): inside {container}, so the signature or encryption holds"
                ),
            ));
        }
        if part.in_attached_message {
            return Err(left_alone(
                what,
                "is inside an attached message; left alone".into(),
                format!("left alone ({why}): inside an attached message"),
            ));
        }
        if cx.edits.touches_content(mail, id) {
            return Err(left_alone(
                what,
                "was already rewritten by an earlier stage; left alone".into(),
                format!("left alone ({why}): already rewritten by an earlier stage"),
            ));
        }
        let Some(encoding) = TransferEncoding::parse(part.transfer_encoding.as_deref()) else {
            let token: String = part
                .transfer_encoding
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(32)
                .collect();
            return Err(left_alone(
                what,
                format!("uses transfer encoding {token:?}, which is not rewritten; left alone"),
                format!("left alone ({why}): transfer encoding {token:?} is not rewritten"),
            ));
        };
        // mail-parser flags a part whose closing boundary is missing, or whose base64 or
        // quoted-printable it could not decode, and then hands over the raw bytes. Raw
        // bytes are the text itself only without a transfer encoding.
        if mail.has_encoding_problem(id) && encoding != TransferEncoding::Identity {
            let cte = part.transfer_encoding.as_deref().unwrap_or("");
            return Err(left_alone(
                what,
                format!("has a {cte} body the parser could not decode; left alone"),
                format!("left alone ({why}): the parser could not decode its {cte} body"),
            ));
        }
        if text_edit::reads_as_delimiter(mail.body_bytes(id), &mail.enclosing_boundaries(id)) {
            return Err(left_alone(
                what,
                "holds a line that some readers take for a boundary delimiter; left alone".into(),
                format!(
                    "left alone ({why}): holds a line that some readers take for a boundary delimiter"
                ),
            ));
        }
        let view = match mail.text_view(id) {
            Ok(v) => v,
            Err(e) => {
                return Err(left_alone(
                    what,
                    format!("{e}; left alone"),
                    format!("left alone ({why}): {e}"),
                ));
            }
        };
        let bytes_only = view.mode == TextMode::Bytes;
        let text: &str = &view.text;
        if let Some(kind) = inline_pgp(text) {
            return Err(left_alone(
                what,
                format!(
                    "holds an inline PGP {kind} block; left alone so it still verifies as a whole"
                ),
                format!("left alone ({why}): holds an inline PGP {kind} block"),
            ));
        }
        // Above the quote, only what the sender wrote counts: the quoted message may
        // carry an earlier signature, and this reply still takes its own.
        let quote_at = match (self.placement, repr) {
            (Placement::AboveQuote, Repr::Plain) => plain::quote_start(text),
            (Placement::AboveQuote, Repr::Html) => html::quote_start(text),
            _ => None,
        };
        let own_text = &text[..quote_at.unwrap_or(text.len())];
        if self.skip_if_present && self.is_present(own_text, repr, fill) {
            let place = if quote_at.is_some() {
                " above the quoted message"
            } else {
                ""
            };
            return Err(left_alone(
                what,
                format!("already holds the disclaimer{place}"),
                format!("nothing to add ({why}): already holds the disclaimer{place}"),
            ));
        }
        let fallback = if encoding == TransferEncoding::Base64 {
            // RFC 2045: text is base64-encoded in canonical form, with CRLF.
            "\r\n"
        } else {
            Newline::at(mail.raw(), part.body.start, mail.newline_of(id)).as_str()
        };
        let nl = plain::line_ending_of(text, fallback);
        let nl_kind = if nl == "\r\n" {
            Newline::CrLf
        } else {
            Newline::Lf
        };
        let flowed = repr == Repr::Plain && is_flowed(mail, id);
        // The block and where it goes; the new text is then the original's text,
        // borrowed, with the block spliced in (a big part is not copied first).
        let (block, where_, html_at) = match repr {
            Repr::Plain => {
                let rendered = self.render_plain(fill);
                if bytes_only && !rendered.is_ascii() {
                    return Err(not_ascii(what, why, part));
                }
                let where_ = match (self.placement, quote_at.is_some(), flowed) {
                    (Placement::Bottom, _, false) => "at the bottom",
                    (Placement::Bottom, _, true) => "at the bottom (format=flowed kept)",
                    (Placement::Top, _, false) => "at the top",
                    (Placement::Top, _, true) => "at the top (format=flowed kept)",
                    (Placement::AboveQuote, true, false) => "above the quoted message",
                    (Placement::AboveQuote, true, true) => {
                        "above the quoted message (format=flowed kept)"
                    }
                    (Placement::AboveQuote, false, false) => "at the bottom (no quoted message)",
                    (Placement::AboveQuote, false, true) => {
                        "at the bottom (no quoted message; format=flowed kept)"
                    }
                };
                (plain::disclaimer_block(&rendered, nl, flowed), where_, None)
            }
            Repr::Html => {
                // Bytes that are not text in their charset take ASCII only: character
                // references say the rest.
                let charset = if bytes_only {
                    Some("us-ascii")
                } else {
                    part.charset.as_deref()
                };
                let block =
                    nl_kind.normalize(&fit_html_to_charset(&self.render_html(fill), charset));
                match (self.placement, quote_at) {
                    (Placement::AboveQuote, Some(at)) => {
                        (block, "above the quoted message", Some(at))
                    }
                    (Placement::Top, _) => {
                        let i = html::top_insertion(text);
                        (block, i.anchor.describe(), Some(i.at))
                    }
                    (Placement::Bottom, _) => {
                        let i = html::bottom_insertion(text);
                        (block, i.anchor.describe(), Some(i.at))
                    }
                    (Placement::AboveQuote, None) => {
                        let i = html::bottom_insertion(text);
                        let where_ = match i.anchor {
                            html::Anchor::BeforeBodyClose => {
                                "before the closing body tag (no quoted message)"
                            }
                            other => other.describe(),
                        };
                        (block, where_, Some(i.at))
                    }
                }
            }
        };
        let pieces: Vec<Cow<'_, str>> = match (html_at, quote_at) {
            (None, Some(q)) => {
                // What the sender wrote takes the block at its bottom; a blank line then
                // sets the quoted message apart.
                let (own, quoted) = text.split_at(q);
                let mut pieces = plain::place_pieces(own, &block, Placement::Bottom, nl, flowed);
                if !own.is_empty() {
                    pieces.push(Cow::Borrowed(nl));
                } else {
                    pieces.push(Cow::Owned(format!("{nl}{nl}")));
                }
                pieces.push(Cow::Borrowed(quoted));
                pieces
            }
            (None, None) => plain::place_pieces(text, &block, self.placement, nl, flowed),
            (Some(at), _) => splice_html_pieces(text, at, &block, nl, self.placement),
        };
        let pieces: Vec<&str> = pieces.iter().map(|p| p.as_ref()).collect();
        let change =
            match text_edit::replace_text_pieces_as(mail, &mut cx.edits, id, &pieces, view.mode) {
                Ok(c) => c,
                Err(e) => {
                    return Err(PartOutcome {
                        decision: format!("{what}: {e}; left alone"),
                        note: format!("left alone ({why}): {e}"),
                    });
                }
            };
        let change = describe_change(part, &change);
        Ok(PartOutcome {
            decision: format!("added to {what} {where_} ({change})"),
            note: format!("disclaimer here ({why}), {where_}; {change}"),
        })
    }
}

/// Parses a template and checks it can stand where it will be inserted.
fn parse_template(key: &str, text: &str, is_html: bool) -> Result<Template, KeyError> {
    // A file saved by a Windows editor may start with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(KeyError::new(key, "is empty"));
    }
    if is_html {
        let l = html::scan(text);
        if l.body_open_end.is_some()
            || l.body_close_start.is_some()
            || l.html_open_end.is_some()
            || l.html_close_start.is_some()
        {
            return Err(KeyError::new(
                key,
                "must be an HTML fragment: no <html> or <body> tags (it is inserted into the body)",
            ));
        }
        if l.unclosed_start.is_some() {
            return Err(KeyError::new(
                key,
                "has an unclosed comment, tag or element, which would hide the rest of the message",
            ));
        }
    }
    Template::parse(text, PLACEHOLDERS).map_err(|e| KeyError::new(key, e.to_string()))
}

/// Builds the stage from config keys.
pub fn build(keys: &mut StageKeys) -> Result<Box<dyn Stage>, KeyError> {
    let text = template_source(keys, "text", "text_file")?;
    let html = template_source(keys, "html", "html_file")?;
    let placement = match keys.opt_string("placement")?.as_deref() {
        None | Some("bottom") => Placement::Bottom,
        Some("top") => Placement::Top,
        Some("above_quote") => Placement::AboveQuote,
        Some(other) => {
            return Err(KeyError::new(
                "placement",
                format!("{other:?} is not one of bottom, top, above_quote"),
            ));
        }
    };
    let skip_if_present = keys.bool_or("skip_if_present", true)?;
    Ok(Box::new(Disclaimer::from_sources(
        text,
        html,
        placement,
        skip_if_present,
    )?))
}

/// A template given inline or as a file: `(the key it came from, its text)`.
fn template_source(
    keys: &mut StageKeys,
    inline_key: &'static str,
    file_key: &'static str,
) -> Result<Option<(&'static str, String)>, KeyError> {
    let inline = keys.opt_string(inline_key)?;
    let file = keys.opt_path(file_key)?;
    match (inline, file) {
        (Some(_), Some(_)) => Err(KeyError::new(
            file_key,
            format!("give `{inline_key}` or `{file_key}`, not both"),
        )),
        (Some(t), None) => Ok(Some((inline_key, t))),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(|t| Some((file_key, t)))
            .map_err(|e| KeyError::new(file_key, format!("cannot read {}: {e}", path.display()))),
        (None, None) => Ok(None),
    }
}

impl Stage for Disclaimer {
    fn directory_needs(&self) -> DirectoryNeeds {
        DirectoryNeeds {
            sender: [&self.text, &self.html]
                .into_iter()
                .flatten()
                .any(Template::uses_directory),
            recipients: false,
        }
    }

    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        if mail.header_is_ambiguous(0) {
            // A first line of white space ends the header for some readers, not for
            // others, so what one calls the body holds the other's header: editing it
            // would put text where some reader does not expect it.
            return StageReport::unchanged(
                "readers disagree on where the header is (the first line starts with white space); left alone",
            );
        }
        let plain = last_body_part(mail, mail.text_body(), Repr::Plain);
        let html = last_body_part(mail, mail.html_body(), Repr::Html);
        let mut report = if plain.is_none() && html.is_none() {
            StageReport::unchanged(no_body_reason(mail))
        } else {
            let fill = Fill {
                values: placeholder_values(mail, cx.envelope),
                sender: sender_person(cx.envelope, mail.from_address()),
            };
            let mut report = StageReport::default();
            for (repr, chosen) in [(Repr::Plain, plain), (Repr::Html, html)] {
                let Some(chosen) = chosen else { continue };
                let why = chosen.why(repr);
                let (result, changed) = match self.add_to(mail, cx, chosen.id, repr, &why, &fill) {
                    Ok(done) => (done, true),
                    Err(skipped) => (skipped, false),
                };
                report.note_about_part(chosen.id, result.decision, result.note, changed);
            }
            report
        };
        note_candidates_not_chosen(mail, [plain, html], &mut report);
        report
    }
}

/// The part chosen for one representation, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chosen {
    id: PartId,
    /// The text part a message cut short before its final boundary ends with.
    unterminated: bool,
}

impl Chosen {
    fn why(self, repr: Repr) -> String {
        if self.unterminated {
            format!(
                "the {} part the message ends with, its final boundary missing",
                repr.label()
            )
        } else {
            format!("last {} of the body", repr.label())
        }
    }
}

/// For `explain`: why each other part RFC 8621 lists in the body took no disclaimer.
fn note_candidates_not_chosen(
    mail: &MimeTree<'_>,
    chosen: [Option<Chosen>; 2],
    report: &mut StageReport,
) {
    let chosen: Vec<PartId> = chosen.iter().flatten().map(|c| c.id).collect();
    let mut seen: std::collections::HashSet<PartId> = std::collections::HashSet::new();
    for &id in mail.text_body().iter().chain(mail.html_body()) {
        if chosen.contains(&id) || !seen.insert(id) {
            continue;
        }
        let p = mail.part(id);
        let note = match p.content_type.as_str() {
            "text/plain" | "text/html" if p.disposition.as_deref() == Some("attachment") => {
                "not a candidate: marked as an attachment".to_string()
            }
            "text/plain" | "text/html" if !is_body_text(mail, p) => {
                "not a candidate: a named text part is a file the sender attached".to_string()
            }
            "text/plain" | "text/html" => {
                format!(
                    "not chosen: only the last {} part of the body takes it",
                    p.content_type
                )
            }
            other => format!("not a candidate: {other} is not text/plain or text/html"),
        };
        report.note_part(id, note, false);
    }
}

/// The last part of an RFC 8621 body list that is this representation and is body
/// text by RFC 8621's rules. mail-parser lists an HTML part among the text body when
/// there is no plain alternative (and the other way round), lists inline images and
/// other text/* parts, and counts a named text part as body where RFC 8621 does not
/// when it is not first in its multipart.
fn last_body_part(mail: &MimeTree<'_>, list: &[PartId], repr: Repr) -> Option<Chosen> {
    if let Some(tail) = unterminated_tail(mail, repr) {
        return Some(Chosen {
            id: tail,
            unterminated: true,
        });
    }
    let id = list.iter().rev().copied().find(|&id| {
        let p = mail.part(id);
        let right_kind = match repr {
            Repr::Plain => p.kind == PartKind::Text && p.content_type == "text/plain",
            Repr::Html => p.kind == PartKind::Html,
        };
        right_kind && is_body_text(mail, p)
    })?;
    Some(Chosen {
        id,
        unterminated: false,
    })
}

/// The text part that ends a message whose final boundary is missing. mail-parser
/// flags it as an encoding problem and leaves it out of the body lists, yet readers show
/// it as the end of the body; without a transfer encoding its bytes are its text. With
/// one (quoted-printable, base64) it is still the tail, and [`Disclaimer::add_to`] leaves
/// it alone as undecodable: passing over it to an earlier body part would put the
/// disclaimer in the middle of the body, and made a second pass add one there after the
/// first had re-encoded the tail to quoted-printable (found by fuzzing).
fn unterminated_tail(mail: &MimeTree<'_>, repr: Repr) -> Option<PartId> {
    let p = mail.parts().last()?;
    let in_related_after_first = p.parent.is_some_and(|parent| {
        let parent = mail.part(parent);
        parent.content_type == "multipart/related" && parent.children().first() != Some(&p.id)
    });
    let is_tail = p.parent.is_some()
        && p.is_leaf()
        && !p.in_attached_message
        && p.content_type == repr.label()
        && mail.has_encoding_problem(p.id)
        && is_body_text(mail, p)
        && !in_related_after_first;
    is_tail.then_some(p.id)
}

/// Whether a text part is body text the disclaimer may go into: on every reading of its
/// header, no file name and no `attachment` disposition (as `strip_attachments` judges
/// it). RFC 8621 counts a named text part that comes first in its multipart as body; but
/// a named part is a file the sender attached, and text added to it would change the
/// file, or be lost when a later stage strips it.
fn is_body_text(mail: &MimeTree<'_>, p: &Part) -> bool {
    crate::stages::strip_attachments::readings::is_body_text(
        &crate::stages::strip_attachments::readings::declared(mail, p),
    )
}

/// Why a message has no body part to take the disclaimer.
fn no_body_reason(mail: &MimeTree<'_>) -> String {
    match mail
        .parts()
        .iter()
        .find(|p| !p.in_attached_message && p.is_protection_container())
    {
        Some(p) => format!(
            "the body is inside {} (part {}); left alone so the signature or encryption holds",
            p.content_type, p.id
        ),
        None => match mail.parts().iter().find(|p| {
            !p.in_attached_message
                && matches!(p.content_type.as_str(), "text/plain" | "text/html")
                && p.disposition.as_deref() != Some("attachment")
                && mail.has_encoding_problem(p.id)
        }) {
            Some(p) => format!(
                "{} part {} has a body the parser could not read (broken transfer encoding or boundary); left alone",
                p.content_type, p.id
            ),
            None => "no text/plain or text/html body part".to_string(),
        },
    }
}

/// The signature or encryption container a protected part sits in.
fn protection_container(mail: &MimeTree<'_>, part: &Part) -> String {
    let mut cur = Some(part.id);
    while let Some(id) = cur {
        let p = mail.part(id);
        if p.is_protection_container() {
            return p.content_type.clone();
        }
        cur = p.parent;
    }
    "a signed or encrypted part".to_string()
}

/// Why a part whose bytes are not text in their charset gets no disclaimer that is not
/// ASCII: its bytes are kept exactly, and only ASCII means the same in every such
/// charset.
fn not_ascii(what: &str, why: &str, part: &Part) -> PartOutcome {
    let charset = part.charset.as_deref().unwrap_or("not declared");
    left_alone(
        what,
        format!(
            "does not decode in its charset ({charset}) and the disclaimer is not ASCII; left alone"
        ),
        format!(
            "left alone ({why}): does not decode in its charset ({charset}), and the disclaimer is not ASCII"
        ),
    )
}

/// Whether a text is inline PGP (RFC 4880 cleartext signature or armored message):
/// text added around the armor would read as part of a signed message without being
/// signed, so such a part is left alone like multipart/signed.
fn inline_pgp(text: &str) -> Option<&'static str> {
    text.lines().find_map(|l| match l.trim_end() {
        "-----BEGIN PGP SIGNED MESSAGE-----" => Some("signed"),
        "-----BEGIN PGP MESSAGE-----" => Some("encrypted"),
        _ => None,
    })
}

static FLOWED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i);\s*format\s*=\s*"?flowed"?\s*(;|$)"#).expect("valid regex")
});

/// Whether a part is `format=flowed` (RFC 3676).
fn is_flowed(mail: &MimeTree<'_>, id: PartId) -> bool {
    mail.field_value(id, "Content-Type")
        .is_some_and(|v| FLOWED.is_match(&v))
}

/// The values placeholders render, with control characters (a line break in a decoded
/// subject) made spaces so a value cannot add lines.
pub fn placeholder_values(
    mail: &MimeTree<'_>,
    envelope: &Envelope,
) -> BTreeMap<&'static str, String> {
    let msg = mail.message();
    let sender = mail
        .from_address()
        .map(str::to_string)
        .or_else(|| envelope.mail_from.clone())
        .unwrap_or_default();
    let recipients: Vec<String> = [msg.to(), msg.cc()]
        .into_iter()
        .flatten()
        .flat_map(|list| list.iter())
        .filter_map(|a| a.address.as_deref().map(str::to_string))
        .collect();
    let subject = msg
        .subject()
        .map(str::to_string)
        .or_else(|| envelope.subject.clone())
        .unwrap_or_default();
    let date = mail.field_value(0, "Date").unwrap_or_default();
    let clean = |s: String| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_string()
    };
    BTreeMap::from([
        ("sender", clean(sender)),
        ("recipients", clean(recipients.join(", "))),
        ("subject", clean(subject)),
        ("direction", envelope.direction.as_str().to_string()),
        ("date", clean(date)),
    ])
}

/// A plain-text disclaimer as HTML: escaped, one `<p>` per paragraph, `<br>` between
/// lines, in a `<div>`.
pub fn text_to_html(text: &str) -> String {
    let text = Newline::Lf.normalize(text);
    let mut paragraphs: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            if paragraphs.last().is_some_and(|p| !p.is_empty()) {
                paragraphs.push(Vec::new());
            }
        } else if let Some(p) = paragraphs.last_mut() {
            p.push(line);
        }
    }
    let mut out = String::from("<div class=\"disclaimer\">\n");
    for p in paragraphs.iter().filter(|p| !p.is_empty()) {
        let lines: Vec<String> = p.iter().map(|l| html_escape(l)).collect();
        out.push_str("<p>");
        out.push_str(&lines.join("<br>\n"));
        out.push_str("</p>\n");
    }
    out.push_str("</div>");
    out
}

/// Writes characters the part's charset cannot hold as character references, so adding
/// the disclaimer does not move the part to UTF-8 (where a `<meta charset>` in the HTML
/// would contradict it). An unknown or unwritable charset is left to
/// [`text_edit::replace_text`], which moves the part to UTF-8.
fn fit_html_to_charset(html: &str, charset: Option<&str>) -> String {
    let charset = charset.unwrap_or("us-ascii");
    if html.is_ascii() || text_edit::encode_in(charset, "a").is_none() {
        return html.to_string();
    }
    let mut out = String::with_capacity(html.len());
    let mut buf = [0u8; 4];
    for c in html.chars() {
        if c.is_ascii() || text_edit::encode_in(charset, c.encode_utf8(&mut buf)).is_some() {
            out.push(c);
        } else {
            out.push_str(&format!("&#{};", c as u32));
        }
    }
    out
}

/// `html` with `block` inserted at byte `at`, on its own line where the text around it
/// has line breaks, without adding a line break at the very end.
#[cfg(test)]
fn splice_html(html: &str, at: usize, block: &str, nl: &str, placement: Placement) -> String {
    splice_html_pieces(html, at, block, nl, placement).concat()
}

/// [`splice_html`] as pieces to be joined, the original text borrowed.
fn splice_html_pieces<'t>(
    html: &'t str,
    at: usize,
    block: &'t str,
    nl: &'t str,
    placement: Placement,
) -> Vec<Cow<'t, str>> {
    let (pre, post) = html.split_at(at);
    let at_line_start = pre.is_empty() || pre.ends_with('\n');
    let mut middle = String::with_capacity(block.len() + 4);
    match placement {
        Placement::Bottom | Placement::AboveQuote => {
            if post.is_empty() && !at_line_start {
                middle.push_str(nl);
            }
            middle.push_str(block);
            if at_line_start && !(pre.is_empty() && post.is_empty()) {
                middle.push_str(nl);
            }
        }
        Placement::Top => {
            if post.starts_with('\n') || post.starts_with("\r\n") {
                middle.push_str(nl);
                middle.push_str(block);
            } else {
                middle.push_str(block);
                if pre.is_empty() && !post.is_empty() {
                    middle.push_str(nl);
                }
            }
        }
    }
    vec![Cow::Borrowed(pre), Cow::Owned(middle), Cow::Borrowed(post)]
}

/// The report's words for how the part was written.
fn describe_change(part: &Part, change: &TextChange) -> String {
    let charset = if change.moved_to_utf8 {
        format!(
            "moved to utf-8 from {}",
            part.charset.as_deref().unwrap_or("us-ascii")
        )
    } else {
        change.charset.clone()
    };
    let before = part.transfer_encoding.as_deref().unwrap_or("7bit");
    let cte = if before.eq_ignore_ascii_case(change.transfer_encoding) {
        change.transfer_encoding.to_string()
    } else {
        format!("{} (was {before})", change.transfer_encoding)
    };
    format!("{charset}, {cte}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Direction, Envelope};

    fn run(stage: &Disclaimer, raw: &[u8]) -> (Vec<u8>, StageReport) {
        let tree = MimeTree::parse(raw).unwrap();
        let env = Envelope::from_message(raw, Direction::Outbound);
        let mut cx = StageContext::new(&env);
        let report = stage.run(&tree, &mut cx);
        (cx.edits.apply(&tree).unwrap().to_vec(), report)
    }

    fn text_only(t: &str) -> Disclaimer {
        Disclaimer::new(Some(t), None, Placement::Bottom, true).unwrap()
    }

    const PLAIN: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: Hi\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nHello Bob\r\n";

    #[test]
    fn plain_text_gets_the_disclaimer_below_a_blank_line_and_a_second_pass_changes_nothing() {
        let d = text_only("Sent by {{ sender }} to {{ recipients }} ({{ direction }}).");
        let (out, r) = run(&d, PLAIN);
        assert!(r.changed, "{r:?}");
        assert!(
            out.ends_with(
                b"Hello Bob\r\n\r\nSent by alice@example.com to bob@example.net (outbound).\r\n"
            ),
            "{}",
            String::from_utf8_lossy(&out)
        );
        let (again, r) = run(&d, &out);
        assert!(!r.changed, "{r:?}");
        assert_eq!(again, out);
        assert_eq!(
            r.decisions,
            ["text/plain part 0 already holds the disclaimer"]
        );
    }

    #[test]
    fn skip_if_present_false_adds_again() {
        let d = Disclaimer::new(Some("Confidential."), None, Placement::Bottom, false).unwrap();
        let (once, _) = run(&d, PLAIN);
        let (twice, r) = run(&d, &once);
        assert!(r.changed);
        assert_ne!(once, twice);
    }

    #[test]
    fn html_only_config_renders_text_for_plain_parts() {
        let d = Disclaimer::new(
            None,
            Some("<div><p>Confidential &amp; private:<br>{{ subject }}</p></div>"),
            Placement::Bottom,
            true,
        )
        .unwrap();
        let (out, _) = run(&d, PLAIN);
        assert!(out.ends_with(b"Hello Bob\r\n\r\nConfidential & private:\r\nHi\r\n"));
    }

    #[test]
    fn text_only_config_renders_escaped_paragraphs_for_html_parts() {
        assert_eq!(
            text_to_html("A <b>\nB\n\nC & D\n"),
            "<div class=\"disclaimer\">\n<p>A &lt;b&gt;<br>\nB</p>\n<p>C &amp; D</p>\n</div>"
        );
    }

    #[test]
    fn the_html_template_escapes_values() {
        let raw = b"From: a@example.com\nSubject: <script>x</script>\nContent-Type: text/html\n\n<p>hi</p>\n";
        let d = Disclaimer::new(
            None,
            Some("<p>Re: {{ subject }}</p>"),
            Placement::Bottom,
            true,
        )
        .unwrap();
        let (out, _) = run(&d, raw);
        assert!(
            String::from_utf8_lossy(&out)
                .ends_with("<p>hi</p>\n<p>Re: &lt;script&gt;x&lt;/script&gt;</p>\n")
        );
    }

    #[test]
    fn a_value_cannot_add_lines() {
        let raw = b"From: a@example.com\nSubject: =?utf-8?q?one=0D=0AFrom_two?=\n\nbody\n";
        let tree = MimeTree::parse(raw).unwrap();
        let v = placeholder_values(&tree, &Envelope::default());
        assert_eq!(v["subject"], "one  From two");
    }

    #[test]
    fn recipients_are_the_visible_ones_not_the_envelopes() {
        let tree = MimeTree::parse(PLAIN).unwrap();
        let env = Envelope {
            recipients: vec!["bob@example.net".into(), "hidden-bcc@example.org".into()],
            ..Envelope::default()
        };
        assert_eq!(
            placeholder_values(&tree, &env)["recipients"],
            "bob@example.net"
        );
    }

    #[test]
    fn html_disclaimer_keeps_a_latin1_part_latin1_with_character_references() {
        assert_eq!(
            fit_html_to_charset("<p>caf\u{e9} \u{2014} \u{65e5}</p>", Some("iso-8859-1")),
            "<p>caf\u{e9} &#8212; &#26085;</p>"
        );
        assert_eq!(fit_html_to_charset("\u{2014}", Some("utf-8")), "\u{2014}");
        assert_eq!(
            fit_html_to_charset("\u{2014}", Some("x-unknown")),
            "\u{2014}"
        );
    }

    #[test]
    fn part_notes_say_where_the_disclaimer_goes_and_why_other_body_parts_get_none() {
        let stage = Disclaimer::new(Some("Confidential."), None, Placement::Bottom, true).unwrap();
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nfirst\n--B\nContent-Type: image/png\nContent-Disposition: inline\n\nAAAA\n--B\nContent-Type: text/plain\n\nsecond\n--B\nContent-Type: text/plain; name=notes.txt\n\nnamed\n--B--\n";
        let (_, r) = run(&stage, raw);
        let note = |id: PartId| -> Vec<&str> { r.notes_for(id).map(|n| n.note.as_str()).collect() };
        assert_eq!(
            note(3),
            ["disclaimer here (last text/plain of the body), at the bottom; us-ascii, 7bit"]
        );
        assert_eq!(
            note(1),
            ["not chosen: only the last text/plain part of the body takes it"]
        );
        assert_eq!(
            note(2),
            ["not a candidate: image/png is not text/plain or text/html"]
        );
        assert!(
            note(4).is_empty(),
            "the parser leaves a named text part out of the body lists; explain calls it an attachment"
        );
        assert_eq!(r.message_decisions().count(), 0, "{r:?}");
        assert_eq!(
            r.decisions.len(),
            1,
            "the summary keeps one line per chosen part: {r:?}"
        );
    }

    #[test]
    fn splice_html_keeps_lines_tidy() {
        let b = Placement::Bottom;
        let t = Placement::Top;
        assert_eq!(
            splice_html("<p>a</p>\n</body>", 9, "D", "\n", b),
            "<p>a</p>\nD\n</body>"
        );
        assert_eq!(
            splice_html("<p>a</p></body>", 8, "D", "\n", b),
            "<p>a</p>D</body>"
        );
        assert_eq!(splice_html("<p>a</p>", 8, "D", "\n", b), "<p>a</p>\nD");
        assert_eq!(splice_html("<p>a</p>\n", 9, "D", "\n", b), "<p>a</p>\nD\n");
        assert_eq!(splice_html("", 0, "D", "\n", b), "D");
        assert_eq!(
            splice_html("<body>\n<p>a", 6, "D", "\n", t),
            "<body>\nD\n<p>a"
        );
        assert_eq!(splice_html("<body><p>a", 6, "D", "\n", t), "<body>D<p>a");
        assert_eq!(splice_html("<p>a", 0, "D", "\n", t), "D\n<p>a");
    }

    #[test]
    fn config_errors_name_the_key() {
        let e = Disclaimer::new(None, None, Placement::Bottom, true).unwrap_err();
        assert_eq!(e.key, "text");
        let e = Disclaimer::new(Some("{{ sendr }}"), None, Placement::Bottom, true).unwrap_err();
        assert_eq!(e.key, "text");
        assert!(e.problem.contains("sendr"), "{e}");
        let e = Disclaimer::new(Some("x"), Some("<body>x</body>"), Placement::Bottom, true)
            .unwrap_err();
        assert_eq!(e.key, "html");
        let e = Disclaimer::new(None, Some("<p>x<!-- y"), Placement::Bottom, true).unwrap_err();
        assert_eq!(e.key, "html");
        let e = Disclaimer::new(Some("  \n"), None, Placement::Bottom, true).unwrap_err();
        assert_eq!(e.key, "text");
    }

    fn load(toml: &str, base: &std::path::Path) -> Result<crate::Pipeline, String> {
        crate::flow::load::parse(
            toml,
            std::path::Path::new("flow.toml"),
            base,
            &crate::StageRegistry::builtin(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn template_files_are_read_relative_to_the_config_and_errors_name_the_key() {
        let dir = std::env::temp_dir().join(format!("wmf-disclaimer-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("t")).unwrap();
        std::fs::write(dir.join("t/d.txt"), "Sent by {{ sender }}.\n").unwrap();
        std::fs::write(dir.join("t/bad.html"), "<p>{{ sendr }}</p>\n").unwrap();
        let ok = "[[stage]]\ntype = \"disclaimer\"\ntext_file = \"t/d.txt\"\n";
        assert_eq!(load(ok, &dir).unwrap().len(), 1);
        let missing = "[[stage]]\ntype = \"disclaimer\"\ntext_file = \"t/nope.txt\"\n";
        let e = load(missing, &dir).unwrap_err();
        assert!(
            e.starts_with("flow.toml: stage 1 (disclaimer): key `text_file`: cannot read"),
            "{e}"
        );
        let bad = "[[stage]]\ntype = \"disclaimer\"\nhtml_file = \"t/bad.html\"\n";
        let e = load(bad, &dir).unwrap_err();
        assert!(
            e.starts_with(
                "flow.toml: stage 1 (disclaimer): key `html_file`: unknown placeholder {{ sendr }}"
            ),
            "{e}"
        );
        let both = "[[stage]]\ntype = \"disclaimer\"\ntext = \"x\"\ntext_file = \"t/d.txt\"\n";
        assert!(
            load(both, &dir)
                .unwrap_err()
                .contains("key `text_file`: give `text` or `text_file`, not both")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn placement_keys_and_unknown_keys_are_checked_at_load() {
        let dir = std::path::Path::new(".");
        let e = load(
            "[[stage]]\ntype = \"disclaimer\"\ntext = \"x\"\nplacement = \"middle\"\n",
            dir,
        )
        .unwrap_err();
        assert!(
            e.contains("key `placement`: \"middle\" is not one of bottom, top"),
            "{e}"
        );
        let e = load(
            "[[stage]]\ntype = \"disclaimer\"\ntext = \"x\"\nskip_if_presnt = false\n",
            dir,
        )
        .unwrap_err();
        assert!(e.contains("key `skip_if_presnt`: unknown key"), "{e}");
        let e = load("[[stage]]\ntype = \"disclaimer\"\n", dir).unwrap_err();
        assert!(e.contains("key `text`: a disclaimer needs"), "{e}");
    }

    #[test]
    fn the_shipped_templates_load() {
        // The root package's templates/, two levels up from this crate.
        let root = &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let toml = "[[stage]]\ntype = \"disclaimer\"\ntext_file = \"templates/disclaimer.txt\"\nhtml_file = \"templates/disclaimer.html\"\n";
        assert_eq!(load(toml, root).unwrap().len(), 1);
    }

    #[test]
    fn a_named_text_part_after_the_first_is_an_attachment_not_body() {
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nbody\n--B\nContent-Type: text/plain\nContent-Disposition: inline; filename=\"notes.txt\"\n\nnotes\n--B--\n";
        let (out, r) = run(&text_only("Confidential."), raw);
        assert_eq!(
            r.decisions,
            ["added to text/plain part 1 at the bottom (us-ascii, 7bit)"]
        );
        assert!(String::from_utf8_lossy(&out).contains("body\n\nConfidential.\n--B\n"));
        assert!(String::from_utf8_lossy(&out).contains("\n\nnotes\n--B--"));
    }

    #[test]
    fn an_html_only_alternative_gets_one_disclaimer_not_two() {
        // mail-parser lists the HTML part in the text body too when there is no plain one.
        let raw = b"From: a@example.com\nContent-Type: multipart/alternative; boundary=A\n\n--A\nContent-Type: text/html\n\n<p>hi</p>\n--A--\n";
        let (out, r) = run(&text_only("Confidential."), raw);
        assert_eq!(r.decisions.len(), 1, "{r:?}");
        assert_eq!(
            String::from_utf8_lossy(&out)
                .matches("Confidential.")
                .count(),
            1
        );
    }

    #[test]
    fn an_inline_calendar_part_is_never_taken_for_body_text() {
        let raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=M\n\n--M\nContent-Type: text/plain\n\nSee you there.\n--M\nContent-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\nEND:VCALENDAR\n--M--\n";
        let (out, r) = run(&text_only("Confidential."), raw);
        assert_eq!(
            r.decisions,
            ["added to text/plain part 1 at the bottom (us-ascii, 7bit)"]
        );
        assert!(
            String::from_utf8_lossy(&out).contains("\n\nBEGIN:VCALENDAR\nEND:VCALENDAR\n--M--")
        );
    }

    #[test]
    fn text_whose_bytes_do_not_decode_keeps_them_and_gets_an_ascii_disclaimer_as_bytes() {
        // 8-bit text with no charset: the bytes stay exactly (quoted-printable now, as
        // WorkMail wants 8-bit content encoded), the ASCII text is added, and no charset
        // is guessed or declared.
        let raw = b"From: a@example.com\nContent-Type: text/plain\n\ncaf\xe9\n";
        let (out, r) = run(&text_only("Confidential."), raw);
        assert!(r.changed, "{r:?}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From: a@example.com\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9\n\nConfidential.\n"
        );
        // A disclaimer that is not ASCII would need a charset the part does not have.
        let (out, r) = run(&text_only("Vertraulich \u{2013} bitte l\u{f6}schen."), raw);
        assert!(!r.changed);
        assert_eq!(out, raw);
        assert!(
            r.decisions[0].contains("does not decode in its charset"),
            "{r:?}"
        );
        // Wrongly declared UTF-8 is the same case.
        let raw = b"From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\nna\xefve\n";
        let (out, _) = run(&text_only("Confidential."), raw);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(
                "charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nna=EFve\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn inline_pgp_text_is_left_alone() {
        let raw = b"From: a@example.com\n\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhello\n-----BEGIN PGP SIGNATURE-----\nAAAA\n-----END PGP SIGNATURE-----\n";
        let (out, r) = run(&text_only("Confidential."), raw);
        assert_eq!(out, raw);
        assert!(r.decisions[0].contains("inline PGP signed"), "{r:?}");
        let quoted = b"From: a@example.com\n\nSee below\n> -----BEGIN PGP MESSAGE-----\n";
        assert!(run(&text_only("Confidential."), quoted).1.changed);
    }

    #[test]
    fn a_byte_order_mark_at_the_start_of_a_template_is_dropped() {
        let d = text_only("\u{feff}Confidential.");
        let (out, _) = run(&d, PLAIN);
        assert!(out.ends_with(b"Hello Bob\r\n\r\nConfidential.\r\n"));
    }

    #[test]
    fn a_placeholder_only_template_is_recognised_by_its_rendering() {
        let d = text_only("{{ sender }}");
        let (once, r) = run(&d, PLAIN);
        assert!(r.changed);
        let (_, r) = run(&d, &once);
        assert!(!r.changed, "{r:?}");
    }
}
