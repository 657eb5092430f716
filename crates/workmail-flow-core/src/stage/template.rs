//! Templates for disclaimers, signatures, bounce messages and strip notices, on
//! minijinja (Jinja2 syntax): `{{ subject }}`, `{{ sender.display_name }}`,
//! `{% if sender.telephone %}...{% endif %}`, filters such as `{{ subject | upper }}`.
//!
//! What we add to the engine:
//!
//! - Placeholder names are checked when the config loads, so a typo is a config error
//!   naming the placeholder and its byte offset, not a message that says `{{ sendr }}`.
//!   Where `sender` is known, so is every directory attribute under it
//!   ([`ATTRIBUTES`]: `sender.display_name`, `sender.job_title`, ...); `{{ sender }}`
//!   alone is still the sender's address.
//! - HTML templates escape every inserted value (`& < > " '`), and nothing else: the
//!   template's own markup is left as written.
//! - In a template of several lines, a line whose placeholders all render empty is left
//!   out, so a user without a phone number gets no `Tel:` line. A one-line template is
//!   the whole message (a bounce text) and is always kept.
//! - Blocks (`{% if %}`, `{% endif %}`) on lines of their own leave no blank line, and a
//!   file's final line break is kept.

use crate::envelope::Person;
use crate::envelope::directory::ATTRIBUTES;
use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Opens and closes each inserted value in the raw rendering, so lines whose values are
/// all empty can be found afterwards. Private-use characters no template or value keeps
/// (they are removed from values and refused in templates).
const OPEN: char = '\u{E001}';
const CLOSE: char = '\u{E002}';
/// What a value renders as in [`Template::render_slotted`]; the disclaimer's presence
/// test cuts the fixed text out at it.
pub const SLOT: char = '\u{E000}';

/// A parsed template.
#[derive(Clone)]
pub struct Template {
    source: String,
    env: Arc<Environment<'static>>,
    multi_line: bool,
    uses_directory: bool,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.source == other.source
    }
}

impl Eq for Template {}

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
    #[error("{0}")]
    Syntax(String),
}

/// How inserted values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    None,
    Html,
}

/// The name each escape mode's copy of the template is registered under; the
/// auto-escape callback reads it.
const TEXT_NAME: &str = "text";
const HTML_NAME: &str = "html";

/// How the formatter writes values: marked for the line rule, or as [`SLOT`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Values,
    Slots,
}

/// `sender`: renders as the address, and holds the directory's attributes.
#[derive(Debug)]
struct Sender {
    address: String,
    person: Option<Person>,
}

impl Object for Sender {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let value = self.person.as_ref()?.attribute(name)?;
        Some(Value::from(clean(value)))
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !self.address.is_empty()
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&clean(&self.address))
    }
}

/// A value with our marker characters taken out.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !matches!(*c, OPEN | CLOSE)).collect()
}

impl Template {
    /// Parses `text`, allowing only the placeholders in `known` (and, with `sender`,
    /// `sender.<attribute>`).
    pub fn parse(text: &str, known: &[&str]) -> Result<Template, TemplateError> {
        if let Some(i) = unclosed_opening(text) {
            return Err(TemplateError::Unclosed(i));
        }
        if let Some(i) = text.find([OPEN, CLOSE, SLOT]) {
            return Err(TemplateError::Syntax(format!(
                "holds a private-use character (U+E000 to U+E002) at byte {i}"
            )));
        }
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .map_err(|e| TemplateError::Syntax(e.to_string()))?,
        );
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_auto_escape_callback(|name| {
            if name == HTML_NAME {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(|out, state, value| {
            let escape = matches!(state.auto_escape(), AutoEscape::Html);
            let mode = match state.lookup("__wmf_mode").as_ref().and_then(Value::as_str) {
                Some("slots") => Mode::Slots,
                _ => Mode::Values,
            };
            let text = if value.is_undefined() || value.is_none() {
                String::new()
            } else {
                clean(&value.to_string())
            };
            let written = match mode {
                Mode::Slots if text.is_empty() => String::new(),
                Mode::Slots => SLOT.to_string(),
                Mode::Values if escape && !value.is_safe() => html_escape(&text),
                Mode::Values => text,
            };
            write!(out, "{OPEN}{written}{CLOSE}").map_err(minijinja::Error::from)
        });
        for name in [TEXT_NAME, HTML_NAME] {
            env.add_template_owned(name, text.to_string())
                .map_err(|e| TemplateError::Syntax(syntax_message(&e)))?;
        }
        let tmpl = env
            .get_template(TEXT_NAME)
            .map_err(|e| TemplateError::Syntax(syntax_message(&e)))?;
        let mut used: Vec<String> = tmpl.undeclared_variables(true).into_iter().collect();
        used.sort();
        let uses_directory = used.iter().any(|n| n.starts_with("sender."));
        for name in used {
            if !placeholder_known(&name, known) {
                return Err(TemplateError::Unknown {
                    offset: offset_of(text, &name),
                    name,
                    known: known.join(", "),
                });
            }
        }
        let multi_line = text.trim_end_matches(['\r', '\n']).contains('\n');
        Ok(Template {
            source: text.to_string(),
            env: Arc::new(env),
            multi_line,
            uses_directory,
        })
    }

    /// Whether the template reads the sender's directory entry (`sender.*`), so the
    /// transport must look the sender up before the stage runs.
    pub fn uses_directory(&self) -> bool {
        self.uses_directory
    }

    /// Renders with `values`; a placeholder without a value renders empty.
    pub fn render(&self, values: &BTreeMap<&str, String>, escape: Escape) -> String {
        self.render_for(values, None, escape)
    }

    /// Renders with `values` and the sender's directory entry, if there is one.
    pub fn render_for(
        &self,
        values: &BTreeMap<&str, String>,
        sender: Option<&Person>,
        escape: Escape,
    ) -> String {
        self.render_mode(values, sender, escape, Mode::Values)
    }

    /// Renders with every non-empty value written as [`SLOT`], the lines and blocks
    /// chosen as for the real values: the fixed text a message carrying this rendering
    /// must hold.
    pub fn render_slotted(
        &self,
        values: &BTreeMap<&str, String>,
        sender: Option<&Person>,
        escape: Escape,
    ) -> String {
        self.render_mode(values, sender, escape, Mode::Slots)
    }

    fn render_mode(
        &self,
        values: &BTreeMap<&str, String>,
        sender: Option<&Person>,
        escape: Escape,
        mode: Mode,
    ) -> String {
        let mut ctx: BTreeMap<Value, Value> = values
            .iter()
            .map(|(k, v)| (Value::from(*k), Value::from(clean(v))))
            .collect();
        ctx.insert(
            Value::from("sender"),
            Value::from_object(Sender {
                address: values.get("sender").cloned().unwrap_or_default(),
                person: sender.cloned(),
            }),
        );
        ctx.insert(
            Value::from("__wmf_mode"),
            Value::from(if mode == Mode::Slots {
                "slots"
            } else {
                "values"
            }),
        );
        let name = match escape {
            Escape::None => TEXT_NAME,
            Escape::Html => HTML_NAME,
        };
        // Parsed and checked at load; with lenient undefined values and no I/O, a
        // render error can only be a bug of ours. The template text is then what goes
        // out, rather than a message without its disclaimer.
        let raw = self
            .env
            .get_template(name)
            .and_then(|t| t.render(Value::from(ctx)))
            .unwrap_or_else(|_| self.source.clone());
        drop_empty_lines(&raw, self.multi_line)
    }
}

/// Removes the value markers; in a multi-line template, also every line that holds
/// values and only empty ones.
fn drop_empty_lines(raw: &str, multi_line: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut line = String::new();
    let (mut in_value, mut has_value, mut has_filled) = (false, false, false);
    let flush = |line: &mut String, has_value: bool, has_filled: bool, out: &mut String| {
        if !(multi_line && has_value && !has_filled) {
            out.push_str(line);
        }
        line.clear();
    };
    for c in raw.chars() {
        match c {
            OPEN => {
                in_value = true;
                has_value = true;
            }
            CLOSE => in_value = false,
            c => {
                if in_value && !c.is_whitespace() {
                    has_filled = true;
                }
                line.push(c);
                if c == '\n' && !in_value {
                    flush(&mut line, has_value, has_filled, &mut out);
                    has_value = false;
                    has_filled = false;
                }
            }
        }
    }
    flush(&mut line, has_value, has_filled, &mut out);
    out
}

/// Whether a variable path the template reads is one it may use.
fn placeholder_known(name: &str, known: &[&str]) -> bool {
    match name.split_once('.') {
        None => known.contains(&name),
        Some((root, attr)) => {
            root == "sender"
                && known.contains(&"sender")
                && ATTRIBUTES.contains(&attr.split('.').next().unwrap_or(attr))
        }
    }
}

/// The byte offset of the first `{{` or `{%` block that names `name`, else 0.
fn offset_of(text: &str, name: &str) -> usize {
    let mut from = 0;
    while let Some(i) = text[from..].find('{').map(|i| i + from) {
        let rest = &text[i..];
        let close = if rest.starts_with("{{") {
            "}}"
        } else if rest.starts_with("{%") {
            "%}"
        } else {
            from = i + 1;
            continue;
        };
        let end = rest.find(close).map_or(text.len(), |e| i + e);
        if text[i..end].contains(name) {
            return i;
        }
        from = i + 2;
    }
    0
}

/// The offset of a `{{` with no `}}` after it.
fn unclosed_opening(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("{{").map(|i| i + from) {
        match text[i + 2..].find("}}") {
            Some(e) => from = i + 2 + e + 2,
            None => return Some(i),
        }
    }
    None
}

/// A minijinja error in one line: what is wrong and the line, without the template's
/// internal name.
fn syntax_message(e: &minijinja::Error) -> String {
    let what = e.detail().unwrap_or("syntax error");
    match e.line() {
        Some(line) => format!("{what} (line {line})"),
        None => what.to_string(),
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
        let v = BTreeMap::from([("subject", "<script>&\"'/".to_string())]);
        assert_eq!(
            t.render(&v, Escape::Html),
            "<p>&lt;script&gt;&amp;&quot;&#39;/</p>"
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
        let e = Template::parse("ab\n{% if sender.job_tittle %}x{% endif %}", KNOWN).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown placeholder {{ sender.job_tittle }} at byte 3; known: sender, subject"
        );
        let e = Template::parse("{% if subject %}no end", KNOWN).unwrap_err();
        assert!(matches!(e, TemplateError::Syntax(_)), "{e:?}");
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    fn alice(phone: Option<&str>) -> Person {
        let mut p = Person {
            email: "alice@corp.example".into(),
            ..Person::default()
        };
        p.attributes
            .insert("display_name".into(), "Alice <Smith>".into());
        if let Some(t) = phone {
            p.attributes.insert("telephone".into(), t.into());
        }
        p
    }

    #[test]
    fn directory_attributes_and_conditionals_render_and_a_line_left_empty_is_dropped() {
        let t = Template::parse(
            "-- \n{{ sender.display_name }}\nTel: {{ sender.telephone }}\n{% if sender.telephone %}Call me!\n{% endif %}Mail: {{ sender }}\n",
            KNOWN,
        )
        .unwrap();
        let v = BTreeMap::from([("sender", "alice@corp.example".to_string())]);
        assert_eq!(
            t.render_for(&v, Some(&alice(Some("+1 555"))), Escape::None),
            "-- \nAlice <Smith>\nTel: +1 555\nCall me!\nMail: alice@corp.example\n"
        );
        assert_eq!(
            t.render_for(&v, Some(&alice(None)), Escape::None),
            "-- \nAlice <Smith>\nMail: alice@corp.example\n",
            "no Tel: line and no blank line for the false block"
        );
        assert_eq!(
            t.render_for(&v, None, Escape::Html),
            "-- \nMail: alice@corp.example\n",
            "without a directory entry only the address is known"
        );
    }

    #[test]
    fn a_one_line_template_is_kept_even_when_its_values_are_empty() {
        let t = Template::parse("Mail to {{ subject }} is not accepted", KNOWN).unwrap();
        assert_eq!(
            t.render(&BTreeMap::new(), Escape::None),
            "Mail to  is not accepted"
        );
    }

    #[test]
    fn slotted_rendering_follows_the_real_values_lines() {
        let t = Template::parse(
            "Hi {{ sender.display_name }}\nTel: {{ sender.telephone }}\n",
            KNOWN,
        )
        .unwrap();
        let v = BTreeMap::from([("sender", "alice@corp.example".to_string())]);
        assert_eq!(
            t.render_slotted(&v, Some(&alice(None)), Escape::None),
            format!("Hi {SLOT}\n")
        );
    }

    #[test]
    fn values_cannot_smuggle_markers_and_templates_cannot_hold_them() {
        let t = Template::parse("A {{ subject }}\nB\n", KNOWN).unwrap();
        let v = BTreeMap::from([("subject", format!("x{CLOSE}\n{OPEN}y"))]);
        assert_eq!(t.render(&v, Escape::None), "A x\ny\nB\n");
        assert!(Template::parse("a\u{E001}b", KNOWN).is_err());
    }
}
