//! Telling whether a body part already holds the disclaimer (`skip_if_present`).
//!
//! What a message carries is the template rendered with values that differ from message
//! to message (sender, date...), possibly re-wrapped, quoted with `>` in a reply, or
//! turned from HTML into text by a client. So the test is on the template's fixed text:
//! the pieces between placeholders, with whitespace collapsed, quote markers at line
//! starts dropped, HTML read as text and case ignored. A part holds the disclaimer when
//! it holds every piece, in order.

use super::html;

/// Stands for a placeholder while the fixed pieces are cut out of a rendered template:
/// a private-use character no template text or escaping produces.
pub use crate::stage::template::SLOT;

/// The pieces of one template that mark its presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    pieces: Vec<String>,
}

impl Markers {
    /// Markers from a template rendered with every placeholder as [`SLOT`]; `is_html`
    /// says the rendering is HTML to be read as text first.
    pub fn from_slotted(rendered: &str, is_html: bool) -> Markers {
        let text = if is_html {
            html::to_text(rendered)
        } else {
            rendered.to_string()
        };
        let pieces = text
            .split(SLOT)
            .map(normalize)
            .filter(|p| !p.is_empty())
            .collect();
        Markers { pieces }
    }

    /// Whether the fixed text says enough to recognise the disclaimer by: a template
    /// made only of placeholders and punctuation does not, and is then recognised by its
    /// rendering for this message instead.
    pub fn is_distinctive(&self) -> bool {
        self.pieces
            .iter()
            .flat_map(|p| p.chars())
            .filter(|c| c.is_alphanumeric())
            .count()
            >= 3
    }

    /// Whether normalized text (see [`normalize`]) holds every piece, in order.
    pub fn found_in(&self, normalized: &str) -> bool {
        let mut from = 0;
        for p in &self.pieces {
            match normalized[from..].find(p.as_str()) {
                Some(i) => from += i + p.len(),
                None => return false,
            }
        }
        !self.pieces.is_empty()
    }
}

/// Text as compared: quote markers (`>`, `> >`) at line starts dropped, every run of
/// whitespace (no-break spaces included) one space, lowercase.
///
/// One pass into one string (a 39 MB part is normalized into at most its own size, not
/// through a list of its words and two more copies).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for line in text.split(['\n', '\r']) {
        let mut l = line.trim_start();
        while let Some(rest) = l.strip_prefix('>') {
            l = rest.trim_start();
        }
        for c in l.chars() {
            if c.is_whitespace() {
                space = true;
                continue;
            }
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        }
        space = true;
    }
    out
}

/// A body part's text as compared: HTML read as text first.
pub fn normalize_part(text: &str, is_html: bool) -> String {
    if is_html {
        normalize(&html::to_text(text))
    } else {
        normalize(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers(t: &str) -> Markers {
        Markers::from_slotted(&t.replace("{}", &SLOT.to_string()), false)
    }

    #[test]
    fn a_rendered_disclaimer_is_found_whatever_the_values() {
        let m = markers("Sent by {} on {}.\nThis message is confidential.");
        let text =
            "Hi\n\nSent by alice@example.com on Mon, 1 Jan 2024.\nThis message is confidential.\n";
        assert!(m.found_in(&normalize(text)));
    }

    #[test]
    fn a_quoted_and_rewrapped_disclaimer_is_found() {
        let m = markers("This message is confidential and meant only for {}.");
        let reply = "Thanks!\n\n> This message is\n> > confidential and meant\n>only for bob@example.com.\n";
        assert!(m.found_in(&normalize(reply)));
    }

    #[test]
    fn pieces_must_appear_in_order() {
        let m = markers("Alpha {} Beta");
        assert!(!m.found_in(&normalize("Beta x Alpha")));
        assert!(m.found_in(&normalize("ALPHA x  beta")));
    }

    #[test]
    fn an_html_disclaimer_is_found_in_html_and_in_its_text_rendering() {
        let t = format!("<div><p>Confidential:<br>meant for {SLOT}&nbsp;only.</p></div>");
        let m = Markers::from_slotted(&t, true);
        let html = "<blockquote><div><p>Confidential:<br>\nmeant for <b>bob</b>&nbsp;only.</p></div></blockquote>";
        assert!(m.found_in(&normalize_part(html, true)));
        assert!(m.found_in(&normalize_part(
            "> Confidential:\n> meant for bob only.",
            false
        )));
    }

    #[test]
    fn a_template_of_placeholders_only_is_not_distinctive() {
        assert!(!markers("{} - {}").is_distinctive());
        assert!(markers("Confidential {}").is_distinctive());
    }
}
