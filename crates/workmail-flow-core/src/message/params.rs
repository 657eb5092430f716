//! Structured header values: `Content-Type` and `Content-Disposition` with their
//! parameters (RFC 2045 section 5.1, RFC 2183, RFC 2231), read the way Python's email
//! package and mail clients read them, plus the lenient RFC 2047 decoding clients apply
//! to quoted filenames.
//!
//! One value, one reading ([`MediaValue::parse`]) for structure; [`name_readings`] lists
//! every name a reader could see in a value, for the stages that must decide on all of
//! them (a filter that checks one reading of a filename is dodged by a name another
//! reader shows differently).

use base64::Engine;

/// A parsed `type/subtype; name=value; ...` or `disposition; name=value; ...` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaValue {
    /// The token before the first `;`, lowercase and trimmed (`text/plain`, `attachment`).
    pub token: String,
    /// Parameters in order, names lowercase, values unquoted; RFC 2231 continuations and
    /// charsets are collapsed into one entry named without the `*` suffixes.
    pub params: Vec<(String, String)>,
}

impl MediaValue {
    /// Reads an unfolded value. Never fails: what cannot be read is left out.
    pub fn parse(value: &str) -> MediaValue {
        let pieces = split_params(value);
        let token = pieces
            .first()
            .map(|t| strip_comment(t).trim().to_ascii_lowercase())
            .unwrap_or_default();
        let raw: Vec<(String, String)> = pieces
            .iter()
            .skip(1)
            .filter_map(|p| {
                let (name, value) = p.split_once('=')?;
                let name = name.trim().to_ascii_lowercase();
                (!name.is_empty()).then(|| (name, value.trim().to_string()))
            })
            .collect();
        MediaValue {
            token,
            params: collapse_rfc2231(&raw),
        }
    }

    /// The first parameter of this name (Python's `get_param` takes the first).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for this parameter name, in order.
    pub fn params_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.params
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `type/subtype` when the token is one, lowercase; RFC 2045 section 5.2 reads a
    /// value without a slash (`Content-Type: text`) or with an empty side as text/plain.
    pub fn media_type(&self) -> Option<(String, String)> {
        let (main, sub) = self.token.split_once('/')?;
        let (main, sub) = (main.trim(), sub.trim());
        let token_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
        };
        (token_ok(main) && token_ok(sub)).then(|| (main.to_string(), sub.to_string()))
    }
}

/// Drops a trailing RFC 822 comment from a token (`text/plain (was: html)`).
fn strip_comment(token: &str) -> &str {
    match token.find('(') {
        Some(i) => &token[..i],
        None => token,
    }
}

/// Splits at `;` outside quoted strings, as Python's `_parseparam` does.
fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Removes surrounding quotes and backslash escapes.
fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let inner = &v[1..v.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        v.to_string()
    }
}

/// RFC 2231: `name*0`, `name*1*`... joined in order; `name*` and extended segments decoded
/// from `charset'lang'%XX`. Plain parameters pass through unquoted.
fn collapse_rfc2231(raw: &[(String, String)]) -> Vec<(String, String)> {
    struct Segments {
        name: String,
        parts: Vec<(u32, bool, String)>,
    }
    let mut out: Vec<(String, String)> = Vec::new();
    let mut pending: Vec<Segments> = Vec::new();
    // Where each continued parameter goes in `out`, so order is kept.
    let mut slots: Vec<(String, usize)> = Vec::new();
    for (name, value) in raw {
        let Some(star) = name.find('*') else {
            out.push((name.clone(), unquote(value)));
            continue;
        };
        let base = name[..star].to_string();
        let rest = &name[star + 1..];
        let (index, extended) = if rest.is_empty() {
            (0, true)
        } else {
            let (digits, ext) = match rest.strip_suffix('*') {
                Some(d) => (d, true),
                None => (rest, false),
            };
            match digits.parse::<u32>() {
                Ok(n) => (n, ext),
                Err(_) => {
                    out.push((name.clone(), unquote(value)));
                    continue;
                }
            }
        };
        let seg = match pending.iter_mut().find(|s| s.name == base) {
            Some(s) => s,
            None => {
                slots.push((base.clone(), out.len()));
                out.push((base.clone(), String::new()));
                pending.push(Segments {
                    name: base.clone(),
                    parts: Vec::new(),
                });
                pending.last_mut().expect("just pushed")
            }
        };
        seg.parts.push((index, extended, value.clone()));
    }
    for seg in &mut pending {
        seg.parts.sort_by_key(|(i, _, _)| *i);
        let mut charset: Option<String> = None;
        let mut bytes: Vec<u8> = Vec::new();
        for (n, (_, extended, value)) in seg.parts.iter().enumerate() {
            if *extended {
                let mut v = value.as_str();
                if n == 0 {
                    // charset'language'value
                    let mut it = v.splitn(3, '\'');
                    if let (Some(cs), Some(_lang), Some(rest)) = (it.next(), it.next(), it.next()) {
                        charset = Some(cs.to_string());
                        v = rest;
                    }
                }
                bytes.extend(percent_decode(v));
            } else {
                bytes.extend_from_slice(unquote(value).as_bytes());
            }
        }
        let text = decode_charset(charset.as_deref(), &bytes);
        if let Some((_, at)) = slots.iter().find(|(n, _)| *n == seg.name) {
            out[*at].1 = text;
        }
    }
    out
}

fn percent_decode(v: &str) -> Vec<u8> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Bytes in a named charset, falling back to UTF-8 with replacement. Names are for
/// matching and reports, never written back, so a lossy fallback is safe here.
pub fn decode_charset(charset: Option<&str>, bytes: &[u8]) -> String {
    let enc = charset
        .and_then(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

/// RFC 2047 encoded words anywhere in `value` (clients decode them even inside quoted
/// parameters, where the RFC does not allow them), leniently: unpadded base64, unknown
/// charsets as UTF-8, white space between adjacent words dropped.
pub fn decode_encoded_words(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, from) = rest.split_at(start);
        match encoded_word(from) {
            Some((text, len)) => {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &from[len..];
                last_was_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &from[2..];
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One `=?charset?enc?text?=` at the start of `s`: its text and its length.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let body = s.strip_prefix("=?")?;
    let q1 = body.find('?')?;
    let charset = &body[..q1];
    let after = &body[q1 + 1..];
    let q2 = after.find('?')?;
    let enc = &after[..q2];
    let text_start = &after[q2 + 1..];
    let end = text_start.find("?=")?;
    let text = &text_start[..end];
    if text.contains(' ') {
        return None;
    }
    // `charset*language` (RFC 2231 section 5).
    let charset = charset.split('*').next().unwrap_or("");
    let bytes = match enc {
        "B" | "b" => {
            let clean: Vec<u8> = text.bytes().filter(|b| *b != b'=').collect();
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(&clean)
                .ok()
                .or_else(|| {
                    let mut c = clean.clone();
                    c.truncate(c.len() / 4 * 4);
                    base64::engine::general_purpose::STANDARD_NO_PAD
                        .decode(&c)
                        .ok()
                })?
        }
        "Q" | "q" => {
            let mut out = Vec::new();
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => out.push(b' '),
                    b'=' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push(h << 4 | l);
                            i += 2;
                        }
                        _ => out.push(b'='),
                    },
                    c => out.push(c),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    let len = 2 + q1 + 1 + q2 + 1 + end + 2;
    Some((decode_charset(Some(charset), &bytes), len))
}

/// Unfolds a raw field value the way RFC 5322 section 2.2.3 says (CRLF before white
/// space removed, the white space kept).
pub fn unfold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {}
            c => out.push(c),
        }
    }
    out
}

/// Unfolds and also drops the white space a fold left behind: some readers join the
/// lines of a folded parameter without it (`"evil.\r\n exe"` read as `evil.exe`).
pub fn unfold_tight(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                while matches!(chars.peek(), Some(' ' | '\t')) {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Every filename a reader could take from one raw `Content-Type` or
/// `Content-Disposition` value (as written, possibly folded): the `name` and `filename`
/// parameters, RFC 2231 and RFC 2047 decoded and not, unfolded with and without the
/// fold's white space, and each cut or trimmed as file systems and C strings do.
pub fn name_readings(raw_value: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !s.is_empty() && !found.contains(&s) {
            found.push(s);
        }
    };
    for unfolded in [unfold(raw_value), unfold_tight(raw_value)] {
        let parsed = MediaValue::parse(&unfolded);
        // Also the raw pieces, for parameters whose RFC 2231 form is broken.
        let loose: Vec<String> = split_params(&unfolded)
            .iter()
            .skip(1)
            .filter_map(|p| {
                let (n, v) = p.split_once('=')?;
                let n = n.trim().to_ascii_lowercase();
                let base = n.split('*').next().unwrap_or("");
                (base == "name" || base == "filename").then(|| unquote(v))
            })
            .collect();
        let values = parsed
            .params
            .iter()
            .filter(|(n, _)| n == "name" || n == "filename")
            .map(|(_, v)| v.clone())
            .chain(loose);
        for v in values {
            for decoded in [v.clone(), decode_encoded_words(&v)] {
                for variant in file_system_variants(&decoded) {
                    push(variant);
                }
            }
        }
    }
    found
}

/// A name as readers end up with it: whole; cut at the first NUL or control character
/// (C strings); without control characters; without trailing dots, spaces and an NTFS
/// `::$DATA` stream suffix (Windows drops them, so `a.exe.` and `a.exe::$DATA` run as
/// `a.exe`); and the last path component.
pub fn file_system_variants(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        let s = s.to_string();
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    add(name);
    let cut = name.split(|c: char| c.is_control()).next().unwrap_or("");
    let stripped: String = name
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .collect();
    for base in [name, cut, stripped.as_str()] {
        add(base);
        let mut t = base.to_string();
        loop {
            let before = t.len();
            let lower = t.to_ascii_lowercase();
            if lower.ends_with("::$data") {
                t.truncate(t.len() - "::$data".len());
            }
            t = t.trim_end_matches(['.', ' ', '\t']).to_string();
            if t.len() == before {
                break;
            }
        }
        add(&t);
        if let Some(last) = t.rsplit(['/', '\\']).next() {
            add(last);
        }
    }
    out
}

/// Characters that render as nothing: zero-width and bidirectional controls. A name
/// `invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`; matching ignores them.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}' | '\u{061C}' | '\u{180E}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_parameters_are_read_with_quotes_and_semicolons_inside_quotes() {
        let v = MediaValue::parse("Multipart/Mixed; boundary=\"a;b\"; charset=utf-8");
        assert_eq!(v.token, "multipart/mixed");
        assert_eq!(v.param("boundary"), Some("a;b"));
        assert_eq!(v.param("charset"), Some("utf-8"));
    }

    #[test]
    fn the_first_of_two_parameters_wins_as_in_python() {
        let v = MediaValue::parse("multipart/mixed; boundary=a; boundary=b");
        assert_eq!(v.param("boundary"), Some("a"));
        assert_eq!(v.params_named("boundary").collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn rfc2231_continuations_and_charsets_collapse() {
        let v = MediaValue::parse(
            "attachment; filename*0*=UTF-8''%E2%82%AC%20a; filename*1=\" b\"; filename*2*=.EXE",
        );
        assert_eq!(v.param("filename"), Some("\u{20ac} a b.EXE"));
    }

    #[test]
    fn a_value_without_a_slash_is_no_media_type() {
        assert_eq!(MediaValue::parse("text").media_type(), None);
        assert_eq!(
            MediaValue::parse("text/plain (comment)").media_type(),
            Some(("text".into(), "plain".into()))
        );
    }

    #[test]
    fn encoded_words_decode_without_padding_and_join() {
        assert_eq!(decode_encoded_words("=?utf-8?B?ZXZpbC5leGU?="), "evil.exe");
        assert_eq!(
            decode_encoded_words("=?utf-8?Q?a?= =?utf-8?Q?b.exe?="),
            "ab.exe"
        );
        assert_eq!(decode_encoded_words("plain =? text"), "plain =? text");
    }

    #[test]
    fn name_readings_cover_nul_trailing_dots_streams_and_folds() {
        let r = name_readings("application/x; name=\"evil.exe\0.txt\"");
        assert!(r.iter().any(|n| n == "evil.exe"), "{r:?}");
        let r = name_readings("attachment; filename=\"evil.exe. . \"");
        assert!(r.iter().any(|n| n == "evil.exe"), "{r:?}");
        let r = name_readings("attachment; filename=\"evil.exe::$DATA\"");
        assert!(r.iter().any(|n| n == "evil.exe"), "{r:?}");
        let r = name_readings("attachment; filename=\"evil.\r\n exe\"");
        assert!(r.iter().any(|n| n == "evil.exe"), "{r:?}");
        let r = name_readings("attachment;\r\n filename\r\n =\"a.exe\"");
        assert!(r.iter().any(|n| n == "a.exe"), "{r:?}");
        let r = name_readings("attachment; filename=\"invoice\u{202E}fdp.exe\"");
        assert!(r.iter().any(|n| n == "invoicefdp.exe"), "{r:?}");
    }
}
