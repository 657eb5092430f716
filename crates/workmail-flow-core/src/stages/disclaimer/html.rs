//! Just enough of the HTML tokenizer (WHATWG "tokenization") to find where a disclaimer
//! goes in an HTML body and to read an HTML body as text.
//!
//! A full parser would be overkill and would tempt us to re-serialize. What matters is
//! telling markup from lookalikes: a `</body>` inside a comment, a script, a style sheet,
//! a `<textarea>` or a quoted attribute value is not the end of the body, and a real one
//! may be written `</BODY\r\n>` or carry attributes. The scanner walks the document once
//! and records the landmarks; it never changes a byte.

/// Elements whose content is raw text up to their own end tag: markup inside them is
/// not markup (`<script>document.write("</body>")</script>`).
const RAW_TEXT: &[&str] = &[
    "script", "style", "xmp", "iframe", "noembed", "noframes", "textarea", "title",
];

/// Where the structural tags of a document are, as byte offsets into it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Landmarks {
    /// Just after the first `<body ...>` start tag.
    pub body_open_end: Option<usize>,
    /// The start of the last `</body ...>` end tag.
    pub body_close_start: Option<usize>,
    /// Just after the first `</head>` end tag.
    pub head_close_end: Option<usize>,
    /// Just after the first `<html ...>` start tag.
    pub html_open_end: Option<usize>,
    /// The start of the last `</html>` end tag.
    pub html_close_start: Option<usize>,
    /// Just after a `<!DOCTYPE ...>`.
    pub doctype_end: Option<usize>,
    /// The start of a comment, tag or raw-text element that runs to the end of the
    /// document unclosed: anything appended after it would be hidden inside it.
    pub unclosed_start: Option<usize>,
}

/// Where the disclaimer goes, and how to say so in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insertion {
    pub at: usize,
    pub anchor: Anchor,
}

/// What the insertion point was found next to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    BeforeBodyClose,
    BeforeHtmlClose,
    BeforeUnclosed,
    End,
    AfterBodyOpen,
    AfterHeadClose,
    AfterHtmlOpen,
    AfterDoctype,
    Start,
}

impl Anchor {
    /// Words for the stage report.
    pub fn describe(self) -> &'static str {
        match self {
            Anchor::BeforeBodyClose => "before the closing body tag",
            Anchor::BeforeHtmlClose => "before the closing html tag (no closing body tag)",
            Anchor::BeforeUnclosed => "before an unclosed comment or element at the end",
            Anchor::End => "at the end (no closing body tag)",
            Anchor::AfterBodyOpen => "after the opening body tag",
            Anchor::AfterHeadClose => "after the head (no opening body tag)",
            Anchor::AfterHtmlOpen => "after the opening html tag (no opening body tag)",
            Anchor::AfterDoctype => "after the doctype (no opening body tag)",
            Anchor::Start => "at the start (no opening body tag)",
        }
    }
}

/// The insertion point at the end of the body: before the closing body tag that ends the
/// document (the last real one); without one, before the last `</html>`; without that,
/// before whatever unclosed construct swallows the end; otherwise at the very end.
pub fn bottom_insertion(html: &str) -> Insertion {
    let l = scan(html);
    let (at, anchor) = if let Some(p) = l.body_close_start {
        (p, Anchor::BeforeBodyClose)
    } else if let Some(p) = l.html_close_start {
        (p, Anchor::BeforeHtmlClose)
    } else if let Some(p) = l.unclosed_start {
        (p, Anchor::BeforeUnclosed)
    } else {
        (html.len(), Anchor::End)
    };
    Insertion { at, anchor }
}

/// The insertion point at the top of the body: after the opening body tag; without one,
/// after the head, the `<html>` tag or the doctype (so nothing lands before them);
/// otherwise at the very start.
pub fn top_insertion(html: &str) -> Insertion {
    let l = scan(html);
    let (at, anchor) = if let Some(p) = l.body_open_end {
        (p, Anchor::AfterBodyOpen)
    } else if let Some(p) = l.head_close_end {
        (p, Anchor::AfterHeadClose)
    } else if let Some(p) = l.html_open_end {
        (p, Anchor::AfterHtmlOpen)
    } else if let Some(p) = l.doctype_end {
        (p, Anchor::AfterDoctype)
    } else {
        (0, Anchor::Start)
    };
    Insertion { at, anchor }
}

/// One token the scanner met, for [`scan`] and [`to_text`].
enum Token<'h> {
    Text(&'h str),
    StartTag {
        name: String,
        start: usize,
        end: usize,
    },
    EndTag {
        name: String,
        start: usize,
        end: usize,
    },
    Doctype {
        end: usize,
    },
    /// A comment, `<!...>`, `<?...>` or CDATA section: not content.
    Skipped,
    /// The content of a raw-text element (script, style...).
    RawText {
        element: String,
        text: &'h str,
    },
    /// A construct that runs to the end of the document.
    Unclosed {
        start: usize,
    },
}

/// Walks the document, calling `f` for each token in order.
fn tokens<'h>(html: &'h str, mut f: impl FnMut(Token<'h>)) {
    let b = html.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let Some(lt) = find_byte(b, i, b'<') else {
            f(Token::Text(&html[i..]));
            return;
        };
        if lt > i {
            f(Token::Text(&html[i..lt]));
        }
        let rest = &b[lt..];
        if rest.starts_with(b"<!--") {
            // `<!-->` and `<!--->` are complete (empty) comments.
            let end = if rest[4..].starts_with(b">") {
                Some(lt + 5)
            } else if rest[4..].starts_with(b"->") {
                Some(lt + 6)
            } else {
                find_seq(b, lt + 4, b"-->").map(|p| p + 3)
            };
            match end {
                Some(e) => {
                    f(Token::Skipped);
                    i = e;
                }
                None => {
                    f(Token::Unclosed { start: lt });
                    return;
                }
            }
        } else if rest.starts_with(b"<![CDATA[") {
            match find_seq(b, lt + 9, b"]]>") {
                Some(p) => {
                    f(Token::Skipped);
                    i = p + 3;
                }
                None => {
                    f(Token::Unclosed { start: lt });
                    return;
                }
            }
        } else if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            match find_byte(b, lt + 2, b'>') {
                Some(p) => {
                    let is_doctype = rest.len() >= 9 && rest[2..9].eq_ignore_ascii_case(b"doctype");
                    f(if is_doctype {
                        Token::Doctype { end: p + 1 }
                    } else {
                        Token::Skipped
                    });
                    i = p + 1;
                }
                None => {
                    f(Token::Unclosed { start: lt });
                    return;
                }
            }
        } else if rest.len() > 2 && rest[1] == b'/' && rest[2].is_ascii_alphabetic() {
            let (name, after_name) = tag_name(b, lt + 2);
            match tag_end(b, after_name) {
                Some(end) => {
                    f(Token::EndTag {
                        name,
                        start: lt,
                        end,
                    });
                    i = end;
                }
                None => {
                    f(Token::Unclosed { start: lt });
                    return;
                }
            }
        } else if rest.len() > 1 && rest[1].is_ascii_alphabetic() {
            let (name, after_name) = tag_name(b, lt + 1);
            let Some(end) = tag_end(b, after_name) else {
                f(Token::Unclosed { start: lt });
                return;
            };
            let raw = RAW_TEXT.contains(&name.as_str()) && !b[..end].ends_with(b"/>");
            let plaintext = name == "plaintext";
            f(Token::StartTag {
                name: name.clone(),
                start: lt,
                end,
            });
            if plaintext {
                f(Token::Unclosed { start: lt });
                return;
            }
            i = end;
            if raw {
                match find_end_tag(b, end, &name) {
                    Some(close) => {
                        f(Token::RawText {
                            element: name,
                            text: &html[end..close],
                        });
                        i = close;
                    }
                    None => {
                        f(Token::Unclosed { start: lt });
                        return;
                    }
                }
            }
        } else {
            // A lone `<` is text.
            f(Token::Text(&html[lt..lt + 1]));
            i = lt + 1;
        }
    }
}

/// Where the quoted earlier message of a reply or forward starts: the start tag of the
/// first element a mainstream client writes around it, outside comments, scripts and
/// styles. Outlook: `<div id="appendonsend">`, the `<hr tabindex="-1">` line and
/// `<div id="divRplyFwdMsg">` (web and new Outlook), the `From:`/`Sent:` block's
/// `<div style="border:none;border-top:solid ...;padding:3.0pt ...">` (desktop),
/// `<div id="mail-editor-reference-message-container">` (Mac); Gmail: `class="gmail_quote"`;
/// Apple Mail and Thunderbird: `<blockquote type="cite">`, Thunderbird's
/// `class="moz-cite-prefix"` attribution and `class="moz-forward-container"`; Yahoo:
/// `class="yahoo_quoted"`. `None` when the HTML holds none of them.
pub fn quote_start(html: &str) -> Option<usize> {
    let mut found = None;
    tokens(html, |t| {
        if found.is_some() {
            return;
        }
        if let Token::StartTag { name, start, end } = t
            && is_quote_marker(&name, &html[start..end])
        {
            found = Some(start);
        }
    });
    found
}

/// Whether a start tag (`tag` is its whole text) is one a client writes to open the
/// quoted message.
fn is_quote_marker(name: &str, tag: &str) -> bool {
    let tag = tag.to_ascii_lowercase();
    let attr = |a: &str| attribute(&tag, a);
    let class_has =
        |c: &str| attr("class").is_some_and(|v| v.split_ascii_whitespace().any(|w| w == c));
    match name {
        "div" => {
            matches!(
                attr("id").as_deref(),
                Some("appendonsend" | "divrplyfwdmsg" | "mail-editor-reference-message-container")
            ) || [
                "gmail_quote",
                "moz-cite-prefix",
                "moz-forward-container",
                "yahoo_quoted",
            ]
            .iter()
            .any(|c| class_has(c))
                || attr("style").is_some_and(|s| {
                    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
                    s.contains("border-top:solid") && s.contains("padding:3.0pt")
                })
        }
        "blockquote" => attr("type").as_deref() == Some("cite") || class_has("gmail_quote"),
        "hr" => {
            attr("tabindex").as_deref() == Some("-1")
                && attr("style")
                    .is_some_and(|s| s.replace(' ', "").contains("display:inline-block"))
        }
        _ => false,
    }
}

/// The value of attribute `name` in a lower-cased start tag: quoted with `"` or `'`,
/// or bare up to white space or `>`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let b = tag.as_bytes();
    let mut from = 0;
    while let Some(i) = tag[from..].find(name).map(|i| i + from) {
        from = i + name.len();
        let before_ok =
            i > 0 && (b[i - 1].is_ascii_whitespace() || b[i - 1] == b'"' || b[i - 1] == b'\'');
        let rest = tag[from..].trim_start();
        let Some(value) = rest.strip_prefix('=') else {
            continue;
        };
        if !before_ok {
            continue;
        }
        let value = value.trim_start();
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or("").trim().to_string(),
            _ => value
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string(),
        });
    }
    None
}

/// Finds the landmarks of a document.
pub fn scan(html: &str) -> Landmarks {
    let mut l = Landmarks::default();
    tokens(html, |t| match t {
        Token::StartTag { name, end, .. } => match name.as_str() {
            "body" if l.body_open_end.is_none() => l.body_open_end = Some(end),
            "html" if l.html_open_end.is_none() => l.html_open_end = Some(end),
            _ => {}
        },
        Token::EndTag { name, start, end } => match name.as_str() {
            "body" => l.body_close_start = Some(start),
            "html" => l.html_close_start = Some(start),
            "head" if l.head_close_end.is_none() => l.head_close_end = Some(end),
            _ => {}
        },
        Token::Doctype { end } if l.doctype_end.is_none() => l.doctype_end = Some(end),
        Token::Unclosed { start } => l.unclosed_start = Some(start),
        _ => {}
    });
    l
}

/// Elements that start or end a line when an HTML body is read as text.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// The document read as text: tags dropped, comments, scripts, styles and the title left
/// out, character references decoded, block elements on their own lines, runs of spaces
/// collapsed, at most one blank line in a row, no leading or trailing blank lines. Lines
/// end in LF.
pub fn to_text(html: &str) -> String {
    let mut raw = String::with_capacity(html.len());
    tokens(html, |t| match t {
        // Line breaks in HTML source are only spaces.
        Token::Text(s) => raw.push_str(&decode_entities(s).replace(['\r', '\n'], " ")),
        Token::RawText { element, text } if element == "xmp" || element == "textarea" => {
            raw.push_str(&text.replace(['\r', '\n'], " "))
        }
        Token::StartTag { name, .. } | Token::EndTag { name, .. } => match name.as_str() {
            "br" => break_line(&mut raw, None),
            "p" => break_line(&mut raw, Some(2)),
            n if BLOCKS.contains(&n) => break_line(&mut raw, Some(1)),
            _ => {}
        },
        _ => {}
    });
    let mut out = String::with_capacity(raw.len());
    let mut blank_pending = false;
    for line in raw.split('\n') {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            blank_pending = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_pending {
                out.push('\n');
            }
        }
        blank_pending = false;
        out.push_str(&line);
    }
    out
}

/// Ends the current line: with `None` always (a `<br>`), with `Some(n)` only as far as
/// needed for the text to end in `n` line breaks (blocks do not stack blank lines).
fn break_line(raw: &mut String, want: Option<usize>) {
    let kept = raw.trim_end_matches([' ', '\t']).len();
    raw.truncate(kept);
    match want {
        None => raw.push('\n'),
        Some(n) => {
            if raw.is_empty() {
                return;
            }
            let have = raw.len() - raw.trim_end_matches('\n').len();
            for _ in have..n {
                raw.push('\n');
            }
        }
    }
}

/// Decodes character references: numeric ones and the named ones mail HTML uses; an
/// unknown name is left as written.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after
            .char_indices()
            .take(32)
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '#'))
            .map_or(after.len().min(32), |(i, _)| i);
        let name = &after[..end];
        let decoded = if let Some(num) = name.strip_prefix('#') {
            let n = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => num.parse::<u32>().ok(),
            };
            n.map(|n| char::from_u32(n).unwrap_or('\u{FFFD}'))
        } else {
            named_entity(name)
        };
        match decoded {
            Some(c) => {
                out.push(c);
                let consumed = end + usize::from(after[end..].starts_with(';'));
                rest = &after[consumed..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The HTML 4 names for U+00A0 to U+00FF, in order.
const LATIN1_ENTITIES: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// Other named references common in mail HTML (HTML 4 special characters and symbols).
const OTHER_ENTITIES: &[(&str, char)] = &[
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("OElig", '\u{152}'),
    ("oelig", '\u{153}'),
    ("Scaron", '\u{160}'),
    ("scaron", '\u{161}'),
    ("Yuml", '\u{178}'),
    ("fnof", '\u{192}'),
    ("circ", '\u{2c6}'),
    ("tilde", '\u{2dc}'),
    ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'),
    ("thinsp", '\u{2009}'),
    ("zwnj", '\u{200c}'),
    ("zwj", '\u{200d}'),
    ("lrm", '\u{200e}'),
    ("rlm", '\u{200f}'),
    ("ndash", '\u{2013}'),
    ("mdash", '\u{2014}'),
    ("lsquo", '\u{2018}'),
    ("rsquo", '\u{2019}'),
    ("sbquo", '\u{201a}'),
    ("ldquo", '\u{201c}'),
    ("rdquo", '\u{201d}'),
    ("bdquo", '\u{201e}'),
    ("dagger", '\u{2020}'),
    ("Dagger", '\u{2021}'),
    ("bull", '\u{2022}'),
    ("hellip", '\u{2026}'),
    ("permil", '\u{2030}'),
    ("prime", '\u{2032}'),
    ("Prime", '\u{2033}'),
    ("lsaquo", '\u{2039}'),
    ("rsaquo", '\u{203a}'),
    ("euro", '\u{20ac}'),
    ("trade", '\u{2122}'),
    ("larr", '\u{2190}'),
    ("rarr", '\u{2192}'),
];

fn named_entity(name: &str) -> Option<char> {
    if let Some(i) = LATIN1_ENTITIES.iter().position(|&e| e == name) {
        return char::from_u32(0xA0 + i as u32);
    }
    let lower = match name {
        "AMP" | "LT" | "GT" | "QUOT" | "COPY" | "REG" => name.to_ascii_lowercase(),
        _ => name.to_string(),
    };
    if let Some(i) = LATIN1_ENTITIES.iter().position(|&e| e == lower) {
        return char::from_u32(0xA0 + i as u32);
    }
    OTHER_ENTITIES
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, c)| *c)
}

fn find_byte(b: &[u8], from: usize, c: u8) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&x| x == c)
        .map(|p| from + p)
}

fn find_seq(b: &[u8], from: usize, seq: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(seq.len())
        .position(|w| w == seq)
        .map(|p| from + p)
}

/// A tag name from `from` (lowercased) and the position after it.
fn tag_name(b: &[u8], from: usize) -> (String, usize) {
    let mut i = from;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'/' && b[i] != b'>' {
        i += 1;
    }
    (String::from_utf8_lossy(&b[from..i]).to_ascii_lowercase(), i)
}

/// The position just after the `>` that ends a tag whose attributes start at `from`,
/// reading attribute values as the tokenizer does (a quoted value may hold `>`).
fn tag_end(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        match b.get(i)? {
            b'>' => return Some(i + 1),
            _ => {
                // Attribute name (a leading `=` belongs to the name).
                i += 1;
                while i < b.len()
                    && !b[i].is_ascii_whitespace()
                    && !matches!(b[i], b'/' | b'>' | b'=')
                {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if b.get(i) != Some(&b'=') {
                    continue;
                }
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                match b.get(i)? {
                    q @ (b'"' | b'\'') => {
                        i = find_byte(b, i + 1, *q)? + 1;
                    }
                    _ => {
                        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                            i += 1;
                        }
                    }
                }
            }
        }
    }
}

/// The start of the end tag `</name` (any case, then whitespace, `/` or `>`) at or after
/// `from`: where a raw-text element's content stops.
fn find_end_tag(b: &[u8], from: usize, name: &str) -> Option<usize> {
    let n = name.len();
    let mut i = from;
    while let Some(p) = find_seq(b, i, b"</") {
        let after = p + 2;
        if b.len() >= after + n
            && b[after..after + n].eq_ignore_ascii_case(name.as_bytes())
            && b.get(after + n)
                .is_none_or(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>')
        {
            return Some(p);
        }
        i = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bottom(html: &str) -> (usize, Anchor) {
        let i = bottom_insertion(html);
        (i.at, i.anchor)
    }

    fn top(html: &str) -> (usize, Anchor) {
        let i = top_insertion(html);
        (i.at, i.anchor)
    }

    #[test]
    fn bottom_is_before_the_closing_body_tag() {
        let h = "<html><body><p>hi</p></body></html>";
        assert_eq!(
            bottom(h),
            (h.find("</body>").unwrap(), Anchor::BeforeBodyClose)
        );
    }

    #[test]
    fn an_uppercase_closing_tag_with_a_line_break_inside_is_found() {
        let h = "<HTML><BODY>hi\r\n</BODY\r\n></HTML>\r\n";
        assert_eq!(
            bottom(h),
            (h.find("</BODY").unwrap(), Anchor::BeforeBodyClose)
        );
    }

    #[test]
    fn a_closing_tag_with_attributes_is_found() {
        let h = "<body>hi</body class=\"x>y\" >\n";
        assert_eq!(bottom(h), (8, Anchor::BeforeBodyClose));
    }

    #[test]
    fn a_closing_body_tag_inside_a_comment_is_not_the_end() {
        let h = "<body><p>a</p><!-- old footer </body> --><p>b</p>\n</body>\n";
        assert_eq!(bottom(h).0, h.rfind("</body>").unwrap());
        let h = "<body><p>a</p><!-- </body> -->";
        assert_eq!(bottom(h), (h.len(), Anchor::End));
    }

    #[test]
    fn a_closing_body_tag_inside_a_script_or_style_is_not_the_end() {
        let h = "<body><script>document.write('</body>');</SCRIPT ><p>x</p></body>";
        assert_eq!(bottom(h).0, h.rfind("</body>").unwrap());
        let h = "<body><style>/* </body> */</style>text";
        assert_eq!(bottom(h), (h.len(), Anchor::End));
        let h = "<body><textarea></body></textarea>";
        assert_eq!(bottom(h), (h.len(), Anchor::End));
    }

    #[test]
    fn the_last_closing_body_tag_ends_the_document() {
        let h = "<body>a</body><body>b</body>";
        assert_eq!(bottom(h).0, h.rfind("</body>").unwrap());
        assert_eq!(bottom(h).0, 21);
    }

    #[test]
    fn a_closing_tag_inside_a_quoted_attribute_is_not_a_tag() {
        let h = "<body><a title=\"</body>\">x</a>";
        assert_eq!(bottom(h), (h.len(), Anchor::End));
    }

    #[test]
    fn without_a_body_tag_the_end_or_the_closing_html_tag_is_used() {
        assert_eq!(bottom("<p>hi</p>\n"), (10, Anchor::End));
        let h = "<html><p>hi</p></html>";
        assert_eq!(bottom(h), (15, Anchor::BeforeHtmlClose));
        assert_eq!(bottom(""), (0, Anchor::End));
    }

    #[test]
    fn an_unclosed_comment_or_script_at_the_end_is_not_appended_into() {
        let h = "<p>hi</p><!-- tracking";
        assert_eq!(bottom(h), (9, Anchor::BeforeUnclosed));
        let h = "<p>hi</p><script>x()";
        assert_eq!(bottom(h), (9, Anchor::BeforeUnclosed));
        let h = "<p>hi</p><img src=\"x";
        assert_eq!(bottom(h), (9, Anchor::BeforeUnclosed));
    }

    #[test]
    fn top_is_after_the_opening_body_tag_with_attributes_and_any_case() {
        let h = "<html><head><title>t</title></head><BODY\n  style=\"a>b\">\n<p>x";
        assert_eq!(top(h), (h.find("\n<p>").unwrap(), Anchor::AfterBodyOpen));
    }

    #[test]
    fn top_skips_a_body_tag_in_a_comment_and_falls_back_to_head_html_doctype_start() {
        let h = "<!-- <body> --><p>x</p>";
        assert_eq!(top(h), (0, Anchor::Start));
        let h = "<!DOCTYPE html><html><head></head><p>x";
        assert_eq!(top(h), (34, Anchor::AfterHeadClose));
        let h = "<!DOCTYPE html><html lang=en><p>x";
        assert_eq!(top(h), (29, Anchor::AfterHtmlOpen));
        let h = "<!doctype html><p>x";
        assert_eq!(top(h), (15, Anchor::AfterDoctype));
    }

    #[test]
    fn the_latin1_entity_names_are_in_code_point_order() {
        assert_eq!(named_entity("nbsp"), Some('\u{a0}'));
        assert_eq!(named_entity("iquest"), Some('\u{bf}'));
        assert_eq!(named_entity("Agrave"), Some('\u{c0}'));
        assert_eq!(named_entity("times"), Some('\u{d7}'));
        assert_eq!(named_entity("szlig"), Some('\u{df}'));
        assert_eq!(named_entity("divide"), Some('\u{f7}'));
        assert_eq!(named_entity("yuml"), Some('\u{ff}'));
    }

    #[test]
    fn to_text_drops_markup_and_keeps_lines() {
        let h = "<html><head><title>T</title><style>p{}</style></head><body><p>Hello&nbsp;<b>world</b> &amp; co</p><!-- c --><p>line1<br>line2</p><script>x</script></body></html>";
        assert_eq!(to_text(h), "Hello world & co\n\nline1\nline2");
        let h = "<div>one</div>\n  <div>two</div><div><br></div><div>four</div>";
        assert_eq!(to_text(h), "one\ntwo\n\nfour");
    }

    #[test]
    fn entities_decode_numeric_and_named_and_leave_unknown_ones() {
        assert_eq!(
            decode_entities("&#233;&#xE9;&eacute-&lt;&copy &zz;&uuml;&szlig;&bdquo;&AMP;"),
            "ééé-<\u{a9} &zz;üß\u{201e}&"
        );
    }
}
