//! `subject_tag`: puts a tag such as `[EXTERNAL]` in front of the subject, once.
//!
//! Key: `tag` (required; not empty, no line breaks or other control characters;
//! surrounding spaces are trimmed).
//!
//! - A subject that already carries the tag is left alone, so a second pass changes
//!   nothing and a reply to a tagged message does not collect a second tag. "Carries" means
//!   the tag stands at the start, compared case-insensitively, possibly after any run of
//!   reply and forward prefixes (`Re:`, `Fwd:`, `FW:`, `Aw:`, `WG:`, `SV:`, `VS:`,
//!   `Antw:`, `TR:`, `RV:`, `Rif:`, `Odp:`, `回复:`, `答复:`, `转发:`, and `Re[2]:` or
//!   `Re(2):` forms), where the tag would be placed and a reader sees it. A tag further
//!   inside the text, or after a list tag such as `[list-name]` (a long one pushes it out
//!   of sight), does not count: a tag like `EXT:` would otherwise be found in "Next:
//!   agenda". Nor does one before which (or within which) an invisible or bidirectional
//!   control character stands (U+200B–U+200F, U+202A–U+202E, U+2066–U+2069, U+FEFF...):
//!   those can move, reverse or hide what is shown, so such a subject gets the tag.
//! - A message without a Subject field, or with an empty one, gets the tag as its subject:
//!   the warning the tag carries matters most on mail that says nothing about itself.
//! - A plain ASCII subject keeps its text exactly, the tag and a space in front; only the
//!   folding may move. An RFC 2047-encoded subject (any charset, ISO-2022-JP included) or
//!   one in raw UTF-8 is decoded, prefixed, and written back as UTF-8 encoded words of at
//!   most 75 characters, one to a folded line (far under the 998 limit). Line breaks and
//!   control characters smuggled into an encoded subject become spaces.
//! - Subject may appear only once: the first field is rewritten in place and any others
//!   are removed (a message with two subjects is malformed; the first one is kept).
//! - Changing Subject breaks a DKIM signature that covers it, as any subject tagging
//!   does; run the stage after DKIM has been checked (WorkMail checks it on receipt).

use crate::config::{KeyError, StageKeys};
use crate::message::edit::HeaderOp;
use crate::message::header_field;
use crate::message::mime_tree::MimeTree;
use crate::stage::{Stage, StageContext, StageReport};
use mail_parser::HeaderName;
use regex::Regex;
use std::sync::LazyLock;

#[derive(Debug, Clone)]
pub struct SubjectTag {
    tag: String,
}

/// One reply or forward prefix, or a bracketed tag, with the space after it; matched
/// against the lowercased subject.
static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:re|fwd?|aw|wg|sv|vs|antw|tr|rv|rif|odp|回复|答复|转发)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*",
    )
    .expect("valid regex")
});

impl SubjectTag {
    /// Checks the tag as the config loader does.
    pub fn new(tag: &str) -> Result<SubjectTag, KeyError> {
        let tag = tag.trim();
        if tag.is_empty() {
            return Err(KeyError::new("tag", "must not be empty"));
        }
        header_field::check_value(tag).map_err(|e| KeyError::new("tag", e.to_string()))?;
        if let Some(c) = tag.chars().find(|c| c.is_control()) {
            return Err(KeyError::new(
                "tag",
                format!("contains the control character U+{:04X}", c as u32),
            ));
        }
        Ok(SubjectTag {
            tag: tag.to_string(),
        })
    }

    /// Whether `subject` already starts with the tag, after any reply or forward
    /// prefixes: where the tag would be placed, and so where a reader sees it. A tag
    /// preceded by (or holding) an invisible or bidirectional control character does
    /// not count: such a subject can show the tag elsewhere, reversed or not at all.
    pub fn carries_tag(&self, subject: &str) -> bool {
        let subject = subject.to_lowercase();
        let tag = self.tag.to_lowercase();
        let mut rest = subject.trim_start();
        loop {
            if rest.starts_with(&tag) {
                let end = subject.len() - rest.len() + tag.len();
                return !subject[..end]
                    .chars()
                    .any(crate::message::params::is_invisible);
            }
            match PREFIX.find(rest) {
                Some(m) => rest = rest[m.end()..].trim_start(),
                None => return false,
            }
        }
    }
}

/// Builds the stage from config keys.
pub fn build(keys: &mut StageKeys) -> Result<Box<dyn Stage>, KeyError> {
    let tag = keys.string("tag")?;
    Ok(Box::new(SubjectTag::new(&tag)?))
}

/// The subject as text, or `None` when the message has no Subject field. A subject an
/// earlier stage set is taken as it will be written; the original is decoded, except a
/// plain ASCII one, which is kept exactly as written (only its line breaks removed).
fn current_subject(mail: &MimeTree<'_>, cx: &StageContext<'_>) -> Option<String> {
    let pending = cx
        .edits
        .header_ops(0)
        .any(|op| op.name().eq_ignore_ascii_case("subject"));
    if pending {
        return cx.edits.pending_values(mail, 0, "Subject").pop();
    }
    let field = mail.part(0).field("Subject")?;
    let raw = &mail.raw()[field.range.clone()];
    let value = raw
        .iter()
        .position(|&b| b == b':')
        .map_or(&raw[..0], |colon| &raw[colon + 1..]);
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let unfolded = unfolded.trim_ascii();
    if unfolded.is_ascii() && !unfolded.windows(2).any(|w| w == b"=?") {
        return Some(String::from_utf8_lossy(unfolded).into_owned());
    }
    let decoded = mail
        .message()
        .header_values(HeaderName::Subject)
        .next()
        .and_then(|v| v.as_text())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(unfolded).into_owned());
    Some(
        decoded
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_string(),
    )
}

impl Stage for SubjectTag {
    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        let current = current_subject(mail, cx);
        let (value, decision) = match current.as_deref().map(str::trim) {
            Some(s) if self.carries_tag(s) => {
                return StageReport::unchanged("the subject already carries the tag");
            }
            None => (self.tag.clone(), "no subject: the tag became the subject"),
            Some("") => (
                self.tag.clone(),
                "empty subject: the tag became the subject",
            ),
            Some(s) => (format!("{} {s}", self.tag), "tagged the subject"),
        };
        cx.edits.header(
            0,
            HeaderOp::Set {
                name: "Subject".into(),
                value,
            },
        );
        StageReport::changed(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;

    fn run(stage: &SubjectTag, raw: &[u8]) -> (Vec<u8>, StageReport) {
        let tree = MimeTree::parse(raw).unwrap();
        let env = Envelope::default();
        let mut cx = StageContext::new(&env);
        let report = stage.run(&tree, &mut cx);
        (cx.edits.apply(&tree).unwrap().to_vec(), report)
    }

    fn subject_of(raw: &[u8]) -> String {
        mail_parser::MessageParser::default()
            .parse(raw)
            .unwrap()
            .subject()
            .unwrap()
            .to_string()
    }

    fn ext() -> SubjectTag {
        SubjectTag::new("[EXTERNAL]").unwrap()
    }

    #[test]
    fn a_plain_subject_is_prefixed_in_place_and_a_second_pass_changes_nothing() {
        let raw = b"From: a@example.com\r\nSubject: Q3  numbers\tattached\r\nTo: b@example.com\r\n\r\nbody\r\n";
        let (once, r) = run(&ext(), raw);
        assert!(r.changed);
        assert_eq!(
            String::from_utf8(once.clone()).unwrap(),
            "From: a@example.com\r\nSubject: [EXTERNAL] Q3  numbers\tattached\r\nTo: b@example.com\r\n\r\nbody\r\n"
        );
        let (twice, r) = run(&ext(), &once);
        assert!(!r.changed, "{r:?}");
        assert_eq!(twice, once);
    }

    #[test]
    fn the_tag_counts_only_at_the_start_after_reply_prefixes_and_never_behind_invisible_characters()
    {
        let s = ext();
        for subject in [
            "[EXTERNAL] hi",
            "[external] hi",
            "Re: [EXTERNAL] hi",
            "RE: Fwd: [EXTERNAL] hi",
            "Aw: WG: SV: VS: Antw: FW: [External] hi",
            "Re[2]: [EXTERNAL] hi",
            "Re (3) : [EXTERNAL] hi",
            "回复：[EXTERNAL] hi",
            "  [EXTERNAL]hi",
        ] {
            assert!(s.carries_tag(subject), "{subject}");
        }
        for subject in [
            "hi [EXTERNAL]",
            "Re: hi",
            "Ref: [EXTERNAL] hi",
            "[SPAM] hi",
            "[list] Re: [EXTERNAL] hi",
            "\u{200B}[EXTERNAL] hi",
            "\u{202E}[EXTERNAL] hi",
            "Re:\u{2067} [EXTERNAL] hi",
            "[EXTER\u{200D}NAL] hi",
            "",
        ] {
            assert!(!s.carries_tag(subject), "{subject:?}");
        }
        let colon = SubjectTag::new("EXT:").unwrap();
        assert!(!colon.carries_tag("Next: agenda"));
    }

    #[test]
    fn an_encoded_folded_subject_is_decoded_prefixed_and_reencoded() {
        let raw = b"From: a@example.com\nSubject: =?utf-8?Q?Caf=C3=A9_menu_for_the_whole_team_this_week_and?=\n =?utf-8?Q?_the_one_after_=E2=80=94_please_read?=\n\nbody\n";
        let (once, r) = run(&ext(), raw);
        assert!(r.changed);
        assert_eq!(
            subject_of(&once),
            "[EXTERNAL] Café menu for the whole team this week and the one after — please read"
        );
        let text = String::from_utf8(once.clone()).unwrap();
        assert!(text.is_ascii());
        // Encoded words are at most 75 characters; the first line also holds the name.
        assert!(
            text.lines().all(|l| l.len() <= "Subject: ".len() + 75),
            "{text}"
        );
        assert!(!text.contains("\r"), "keeps LF endings");
        assert_eq!(run(&ext(), &once).0, once);
    }

    #[test]
    fn an_iso_2022_jp_subject_keeps_its_text() {
        let raw =
            b"From: a@example.com\r\nSubject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\r\n\r\nbody\r\n";
        let (once, _) = run(&ext(), raw);
        assert_eq!(subject_of(&once), "[EXTERNAL] 日本語");
        assert!(!run(&ext(), &once).1.changed);
    }

    #[test]
    fn a_missing_or_empty_subject_becomes_the_tag() {
        let (out, r) = run(&ext(), b"From: a@example.com\n\nbody\n");
        assert!(r.changed);
        assert_eq!(out, b"From: a@example.com\nSubject: [EXTERNAL]\n\nbody\n");
        let (out, _) = run(&ext(), b"From: a@example.com\nSubject: \n\nbody\n");
        assert_eq!(out, b"From: a@example.com\nSubject: [EXTERNAL]\n\nbody\n");
    }

    #[test]
    fn a_second_subject_field_is_removed_so_subject_stays_once_only() {
        let raw = b"From: a@example.com\nSubject: one\nSubject: two\n\nbody\n";
        let (out, _) = run(&ext(), raw);
        assert_eq!(
            out,
            b"From: a@example.com\nSubject: [EXTERNAL] one\n\nbody\n"
        );
    }

    #[test]
    fn line_breaks_decoded_from_an_encoded_subject_become_spaces() {
        let raw =
            b"From: a@example.com\nSubject: =?utf-8?Q?a=0D=0ABcc:_x@example.com_=C3=A9?=\n\nb\n";
        let (out, r) = run(&ext(), raw);
        assert!(r.changed);
        assert_eq!(subject_of(&out), "[EXTERNAL] a  Bcc: x@example.com é");
        assert!(!String::from_utf8_lossy(&out).contains("\nBcc"));
    }

    #[test]
    fn a_very_long_subject_is_folded_under_the_line_limit() {
        let long = "word ".repeat(400) + &"x".repeat(1200);
        let raw = format!("From: a@example.com\r\nSubject: {long}\r\n\r\nbody\r\n");
        let (out, _) = run(&ext(), raw.as_bytes());
        assert!(crate::rules::long_lines(&out).is_empty());
        assert_eq!(subject_of(&out), format!("[EXTERNAL] {}", long.trim_end()));
    }

    #[test]
    fn a_subject_set_by_an_earlier_stage_is_the_one_tagged() {
        let raw = b"From: a@example.com\nSubject: old\n\nbody\n";
        let tree = MimeTree::parse(raw).unwrap();
        let env = Envelope::default();
        let mut cx = StageContext::new(&env);
        cx.edits.header(
            0,
            HeaderOp::Set {
                name: "Subject".into(),
                value: "new".into(),
            },
        );
        ext().run(&tree, &mut cx);
        let out = cx.edits.apply(&tree).unwrap().to_vec();
        assert_eq!(
            out,
            b"From: a@example.com\nSubject: [EXTERNAL] new\n\nbody\n"
        );
    }

    #[test]
    fn bad_tags_are_refused_at_load() {
        assert_eq!(SubjectTag::new("  ").unwrap_err().key, "tag");
        assert_eq!(SubjectTag::new("[A]\r\nBcc: x").unwrap_err().key, "tag");
        assert_eq!(SubjectTag::new("[A]\u{7}").unwrap_err().key, "tag");
        assert_eq!(SubjectTag::new(" [EXT] ").unwrap().tag, "[EXT]");
    }
}
