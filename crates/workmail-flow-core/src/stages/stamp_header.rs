//! `stamp_header`: adds, sets or removes one top-level header field.
//!
//! Keys: `name`, `value`, `mode` = `add` (default) | `set` | `remove`. Every mode is
//! idempotent, so a second pass over its output changes nothing: `add` leaves a field
//! already present with the same value alone, `set` leaves a single field with the value
//! alone, `remove` has nothing left to remove.

use crate::config::{KeyError, StageKeys};
use crate::message::edit::HeaderOp;
use crate::message::header_field::{self, ONCE_ONLY_FIELDS};
use crate::message::mime_tree::MimeTree;
use crate::message::newline::Newline;
use crate::stage::{Stage, StageContext, StageReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Add,
    Set,
    Remove,
}

#[derive(Debug, Clone)]
pub struct StampHeader {
    name: String,
    value: String,
    mode: Mode,
}

/// Fields that describe the MIME structure: changing them at the top would change how
/// the whole message is read.
const STRUCTURE_FIELDS: &[&str] = &["content-type", "content-transfer-encoding", "mime-version"];

impl StampHeader {
    /// Checks the name and value as the config loader does.
    pub fn new(name: &str, value: &str, mode: Mode) -> Result<StampHeader, KeyError> {
        header_field::check_name(name).map_err(|e| KeyError::new("name", e.to_string()))?;
        if header_field::is_protected(name) {
            return Err(KeyError::new(
                "name",
                format!("{name} is an identity or trace field; no stage may change it"),
            ));
        }
        if STRUCTURE_FIELDS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(KeyError::new(
                "name",
                format!(
                    "{name} describes the MIME structure; changing it would change how the message is read"
                ),
            ));
        }
        header_field::check_value(value).map_err(|e| KeyError::new("value", e.to_string()))?;
        Ok(StampHeader {
            name: name.to_string(),
            value: value.to_string(),
            mode,
        })
    }

    /// Whether an existing raw value is this stage's value, as written by us (possibly
    /// RFC 2047-encoded and folded) or by hand.
    fn is_our_value(&self, existing: &str) -> bool {
        if existing == self.value {
            return true;
        }
        let ours = header_field::format_field(&self.name, &self.value, Newline::Lf)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let unfolded: String = ours
            .split_once(':')
            .map(|(_, v)| v)
            .unwrap_or("")
            .split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        existing == unfolded
    }
}

/// Builds the stage from config keys.
pub fn build(keys: &mut StageKeys) -> Result<Box<dyn Stage>, KeyError> {
    let name = keys.string("name")?;
    let mode = match keys.opt_string("mode")?.as_deref() {
        None | Some("add") => Mode::Add,
        Some("set") => Mode::Set,
        Some("remove") => Mode::Remove,
        Some(other) => {
            return Err(KeyError::new(
                "mode",
                format!("{other:?} is not one of add, set, remove"),
            ));
        }
    };
    let value = match mode {
        Mode::Remove => keys.opt_string("value")?.unwrap_or_default(),
        _ => keys.string("value")?,
    };
    Ok(Box::new(StampHeader::new(&name, &value, mode)?))
}

impl Stage for StampHeader {
    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        let present = cx.edits.pending_values(mail, 0, &self.name);
        let name = &self.name;
        match self.mode {
            Mode::Add => {
                if present.iter().any(|v| self.is_our_value(v)) {
                    return StageReport::unchanged(format!(
                        "{name} already present with the same value"
                    ));
                }
                if !present.is_empty()
                    && ONCE_ONLY_FIELDS.contains(&name.to_ascii_lowercase().as_str())
                {
                    return StageReport::unchanged(format!(
                        "{name} is already present and may appear only once; use mode = \"set\" to replace it"
                    ));
                }
                cx.edits.header(
                    0,
                    HeaderOp::Add {
                        name: name.clone(),
                        value: self.value.clone(),
                    },
                );
                StageReport::changed(format!("added {name}"))
            }
            Mode::Set => {
                if present.len() == 1 && self.is_our_value(&present[0]) {
                    return StageReport::unchanged(format!("{name} already has the value"));
                }
                cx.edits.header(
                    0,
                    HeaderOp::Set {
                        name: name.clone(),
                        value: self.value.clone(),
                    },
                );
                StageReport::changed(if present.is_empty() {
                    format!("added {name}")
                } else {
                    format!("set {name}, replacing {} field(s)", present.len())
                })
            }
            Mode::Remove => {
                if present.is_empty() {
                    return StageReport::unchanged(format!("{name} not present"));
                }
                cx.edits.header(0, HeaderOp::Remove { name: name.clone() });
                StageReport::changed(format!("removed {} {name} field(s)", present.len()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;

    const MSG: &[u8] = b"From: a@example.com\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nX-Tag: old\r\n\r\nbody\r\n";

    fn run(stage: &StampHeader, raw: &[u8]) -> (Vec<u8>, StageReport) {
        let tree = MimeTree::parse(raw).unwrap();
        let env = Envelope::default();
        let mut cx = StageContext::new(&env);
        let report = stage.run(&tree, &mut cx);
        (cx.edits.apply(&tree).unwrap().to_vec(), report)
    }

    #[test]
    fn add_appends_once_and_a_second_pass_changes_nothing() {
        let s = StampHeader::new("X-Flow", "processed", Mode::Add).unwrap();
        let (once, r) = run(&s, MSG);
        assert!(r.changed);
        assert!(String::from_utf8_lossy(&once).contains("X-Tag: old\r\nX-Flow: processed\r\n\r\n"));
        let (twice, r) = run(&s, &once);
        assert!(!r.changed, "{r:?}");
        assert_eq!(once, twice);
    }

    #[test]
    fn a_non_ascii_value_is_encoded_and_still_idempotent() {
        let s = StampHeader::new("X-Geprüft", "x", Mode::Add);
        assert!(s.is_err(), "non-ASCII names are refused");
        let s = StampHeader::new("X-Checked", "Geprüft ✓", Mode::Add).unwrap();
        let (once, _) = run(&s, MSG);
        assert!(String::from_utf8_lossy(&once).contains("X-Checked: =?UTF-8?B?"));
        let (twice, r) = run(&s, &once);
        assert!(!r.changed);
        assert_eq!(once, twice);
    }

    #[test]
    fn set_replaces_in_place_and_remove_removes() {
        let s = StampHeader::new("X-Tag", "new", Mode::Set).unwrap();
        let (out, _) = run(&s, MSG);
        assert!(String::from_utf8_lossy(&out).contains("\r\nX-Tag: new\r\n\r\n"));
        assert!(!run(&s, &out).1.changed);
        let s = StampHeader::new("x-tag", "", Mode::Remove).unwrap();
        let (out, _) = run(&s, MSG);
        assert!(!String::from_utf8_lossy(&out).contains("X-Tag"));
        assert!(!run(&s, &out).1.changed);
    }

    #[test]
    fn identity_trace_and_structure_fields_are_refused() {
        for name in [
            "From",
            "received",
            "DKIM-Signature",
            "ARC-Seal",
            "Content-Type",
        ] {
            let err = StampHeader::new(name, "x", Mode::Set).unwrap_err();
            assert_eq!(err.key, "name", "{name}");
        }
    }

    #[test]
    fn a_value_with_cr_or_lf_is_refused_at_load() {
        let err = StampHeader::new("X-A", "ok\r\nBcc: evil@example.com", Mode::Add).unwrap_err();
        assert_eq!(err.key, "value");
    }

    #[test]
    fn add_does_not_repeat_a_once_only_field() {
        let s = StampHeader::new("Subject", "new", Mode::Add).unwrap();
        let raw = b"From: a@example.com\r\nSubject: old\r\n\r\nb";
        let (out, r) = run(&s, raw);
        assert!(!r.changed);
        assert_eq!(out, raw);
    }
}
