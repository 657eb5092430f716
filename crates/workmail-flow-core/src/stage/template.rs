//! `{{ name }}` templates for disclaimers, bounce messages and strip notices. Placeholder
//! names are checked when the config loads, so a typo is a config error, not a message
//! that says `{{ sendr }}`.

use std::collections::BTreeMap;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{{ {name} }}}} at byte {offset}; known: {known}")]
    Unknown {
        name: String,
        offset: usize,
        known: String,
    },
    #[error("unclosed {{{{ at byte {0}")]
    Unclosed(usize),
}

/// How inserted values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    None,
    Html,
}

impl Template {
    /// Parses `text`, allowing only the placeholders in `known`.
    pub fn parse(text: &str, known: &[&str]) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or(TemplateError::Unclosed(offset + start))?;
            let name = after[..end].trim();
            if !known.contains(&name) {
                return Err(TemplateError::Unknown {
                    name: name.to_string(),
                    offset: offset + start,
                    known: known.join(", "),
                });
            }
            pieces.push(Piece::Var(name.to_string()));
            let consumed = start + 2 + end + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    /// Renders with `values`; a placeholder without a value renders empty.
    pub fn render(&self, values: &BTreeMap<&str, String>, escape: Escape) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(name) => {
                    let v = values.get(name.as_str()).map(String::as_str).unwrap_or("");
                    match escape {
                        Escape::None => out.push_str(v),
                        Escape::Html => out.push_str(&html_escape(v)),
                    }
                }
            }
        }
        out
    }

    /// The template's fixed text with every placeholder left out: what a message that
    /// already carries the rendered template must contain, whatever the values were.
    pub fn fixed_text(&self) -> Vec<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t.as_str()),
                Piece::Var(_) => None,
            })
            .collect()
    }
}

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["sender", "subject"];

    #[test]
    fn placeholders_render_with_or_without_spaces() {
        let t = Template::parse("From {{sender}} about {{ subject }}.", KNOWN).unwrap();
        let v = BTreeMap::from([("sender", "a@x".to_string()), ("subject", "Hi".to_string())]);
        assert_eq!(t.render(&v, Escape::None), "From a@x about Hi.");
    }

    #[test]
    fn html_rendering_escapes_inserted_values_only() {
        let t = Template::parse("<p>{{ subject }}</p>", KNOWN).unwrap();
        let v = BTreeMap::from([("subject", "<script>&\"'".to_string())]);
        assert_eq!(
            t.render(&v, Escape::Html),
            "<p>&lt;script&gt;&amp;&quot;&#39;</p>"
        );
    }

    #[test]
    fn unknown_placeholders_and_unclosed_braces_are_errors_with_offsets() {
        assert_eq!(
            Template::parse("ab {{ sendr }}", KNOWN),
            Err(TemplateError::Unknown {
                name: "sendr".into(),
                offset: 3,
                known: "sender, subject".into()
            })
        );
        assert_eq!(
            Template::parse("x {{ sender", KNOWN),
            Err(TemplateError::Unclosed(2))
        );
    }

    #[test]
    fn fixed_text_leaves_out_placeholders() {
        let t = Template::parse("Sent by {{ sender }}. Confidential.", KNOWN).unwrap();
        assert_eq!(t.fixed_text(), ["Sent by ", ". Confidential."]);
    }
}
