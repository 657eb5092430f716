//! Placing a disclaimer in plain text, format=flowed (RFC 3676) included.
//!
//! In flowed text a line that ends in a space continues on the next one, so a careless
//! insertion glues the disclaimer onto the sender's last paragraph. Here every line we
//! add ends without a space (a hard break), a line we add that starts with a space,
//! `From ` or `>` is space-stuffed so it is not read as stuffing or a quote, and a soft
//! break the sender's text ends with (it has nothing left to flow into but us) becomes
//! a hard one.

use std::borrow::Cow;

/// Where in the text the disclaimer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Bottom,
    Top,
    /// In a reply or forward, above the quoted earlier message (see [`quote_start`] and
    /// `html::quote_start`); at the bottom where there is none.
    AboveQuote,
}

/// The line ending a decoded text uses: that of its first line break, or `fallback`
/// when it has none.
pub fn line_ending_of(text: &str, fallback: &'static str) -> &'static str {
    match text.find('\n') {
        Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
        Some(_) => "\n",
        None => fallback,
    }
}

/// The disclaimer as lines ready to insert, joined with `nl` (no line break at the
/// end): leading and trailing blank lines dropped, and for flowed text trailing spaces
/// removed (but for a `-- ` signature separator) and lines space-stuffed.
pub fn disclaimer_block(rendered: &str, nl: &str, flowed: bool) -> String {
    let lines: Vec<String> = rendered
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .map(|l| {
            if flowed && l == "-- " {
                // The signature separator keeps its space (RFC 3676 section 4.3).
                l.to_string()
            } else if flowed {
                let l = l.trim_end_matches([' ', '\t']);
                if l.starts_with(' ') || l.starts_with("From ") || l.starts_with('>') {
                    format!(" {l}")
                } else {
                    l.to_string()
                }
            } else {
                l.to_string()
            }
        })
        .collect();
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    match (first, last) {
        (Some(f), Some(l)) => lines[f..=l].join(nl),
        _ => String::new(),
    }
}

/// `text` with `block` (from [`disclaimer_block`]) placed on its own lines, a blank line
/// away from the text. A text that ended with a line break still does; one that did not
/// (its last break belongs to the next MIME boundary) still does not.
pub fn place(text: &str, block: &str, placement: Placement, nl: &str, flowed: bool) -> String {
    place_pieces(text, block, placement, nl, flowed).concat()
}

/// [`place`] as pieces to be joined, the original text borrowed (see
/// [`crate::message::text_edit::replace_text_pieces`]).
pub fn place_pieces<'t>(
    text: &'t str,
    block: &'t str,
    placement: Placement,
    nl: &'t str,
    flowed: bool,
) -> Vec<Cow<'t, str>> {
    if text.is_empty() {
        return vec![Cow::Borrowed(block)];
    }
    match placement {
        Placement::Top => vec![
            Cow::Borrowed(block),
            Cow::Borrowed(nl),
            Cow::Borrowed(nl),
            Cow::Borrowed(text),
        ],
        Placement::Bottom | Placement::AboveQuote => {
            let body: Cow<'t, str> = if flowed {
                Cow::Owned(harden_final_soft_break(text))
            } else {
                Cow::Borrowed(text)
            };
            let ended_with_break = body.ends_with('\n');
            let mut tail = String::new();
            if !ended_with_break {
                tail.push_str(nl);
            }
            let with_break_ends_empty = if ended_with_break {
                ends_with_empty_line(&body)
            } else {
                body.trim_end_matches('\r').is_empty()
            };
            if !with_break_ends_empty {
                tail.push_str(nl);
            }
            tail.push_str(block);
            if ended_with_break {
                tail.push_str(nl);
            }
            vec![body, Cow::Owned(tail)]
        }
    }
}

/// Where the quoted earlier message of a plain-text reply or forward starts (the byte
/// offset of its first line), or `None`. The first of:
///
/// - a separator line: `-----Original Message-----` (Outlook; any run of dashes and
///   spacing), `---------- Forwarded message ---------` (Gmail), `-------- Forwarded
///   Message --------` (Thunderbird), `Begin forwarded message:` (Apple Mail), or a
///   line of underscores (Outlook's, above its header block);
/// - Outlook's header block: a `From:` line followed within four lines by `Sent:` or
///   `Date:`;
/// - an attribution: a line starting `On ` that ends in `wrote:` (on that line or the
///   next, as Gmail wraps it), or its German, French, Spanish and Italian forms;
/// - else the start of a quote that runs to the end: the first `>` line after which
///   every non-blank line is quoted, when something written comes before it.
pub fn quote_start(text: &str) -> Option<usize> {
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        lines.push((at, line.trim_end_matches(['\r', '\n']).trim_end()));
        at += line.len();
    }
    let wrote = |l: &str| {
        let l = l.to_lowercase();
        l.ends_with(':')
            && [" wrote", " schrieb", " a écrit", " escribió", " ha scritto"]
                .iter()
                .any(|w| l.contains(w))
    };
    for (i, &(offset, line)) in lines.iter().enumerate() {
        let lower = line.trim_start().to_lowercase();
        let bare = lower.trim_matches(|c: char| c == '-' || c.is_whitespace());
        let dashed = lower.starts_with("--") && lower.ends_with("--");
        if (dashed && matches!(bare, "original message" | "forwarded message"))
            || lower == "begin forwarded message:"
            || (line.len() >= 10 && line.trim().chars().all(|c| c == '_'))
        {
            return Some(offset);
        }
        if lower.starts_with("from:")
            && lines[i + 1..].iter().take(4).any(|(_, l)| {
                let l = l.to_lowercase();
                l.starts_with("sent:") || l.starts_with("date:")
            })
        {
            return Some(offset);
        }
        let attribution_start = ["on ", "am ", "le ", "el ", "il "]
            .iter()
            .any(|p| lower.starts_with(p));
        if attribution_start
            && (wrote(line) || lines.get(i + 1).is_some_and(|(_, next)| wrote(next)))
        {
            return Some(offset);
        }
    }
    // A quote that runs to the end, after something written.
    let mut start = None;
    for &(offset, line) in lines.iter().rev() {
        if line.trim().is_empty() {
            continue;
        }
        if line.trim_start().starts_with('>') {
            start = Some(offset);
        } else {
            break;
        }
    }
    let start = start?;
    lines
        .iter()
        .take_while(|(o, _)| *o < start)
        .any(|(_, l)| !l.trim().is_empty())
        .then_some(start)
}

/// Whether the text (ending in a line break) already ends with an empty line.
fn ends_with_empty_line(text: &str) -> bool {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let body = body.strip_suffix('\r').unwrap_or(body);
    body.is_empty() || body.ends_with('\n')
}

/// Removes the trailing spaces of the last non-empty line of flowed text, unless it is
/// the signature separator `-- ` (which RFC 3676 section 4.3 keeps as it is).
pub fn harden_final_soft_break(text: &str) -> String {
    let trimmed_len = text.trim_end_matches(['\r', '\n']).len();
    let (content, tail) = text.split_at(trimmed_len);
    let line_start = content.rfind('\n').map_or(0, |i| i + 1);
    let last = &content[line_start..];
    if last == "-- " || !last.ends_with(' ') {
        return text.to_string();
    }
    let kept = last.trim_end_matches(' ');
    format!("{}{kept}{tail}", &content[..line_start])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quoted_message_starts_at_the_first_mark_a_client_writes() {
        let cases: &[(&str, &str)] = &[
            (
                "Thanks!\n\nOn Mon, 30 Nov 2026 at 09:00, Alice <a@x.example> wrote:\n> hi\n",
                "On Mon",
            ),
            (
                "Thanks!\n\nOn Mon, 30 Nov 2026 at 09:00 Alice Smith <\na@x.example> wrote:\n> hi\n",
                "On Mon",
            ),
            (
                "Thanks!\r\n\r\n-----Original Message-----\r\nFrom: A\r\nSent: Monday\r\n",
                "-----Original",
            ),
            (
                "Thanks!\n\n________________________________\nFrom: Alice <a@x.example>\nSent: Monday, 30 November 2026 09:00\nTo: Bob\n",
                "______",
            ),
            (
                "Thanks!\n\nFrom: Alice <a@x.example>\nSent: Monday\nSubject: Re: x\n\nhi\n",
                "From: Alice",
            ),
            (
                "FYI\n\n---------- Forwarded message ---------\nFrom: A\n",
                "---------- Forwarded",
            ),
            (
                "FYI\n\nBegin forwarded message:\n\nFrom: A\n",
                "Begin forwarded",
            ),
            (
                "Danke\n\nAm 30.11.2026 um 09:00 schrieb Alice:\n> hi\n",
                "Am 30",
            ),
            ("Yes.\n\n> did you?\n>\n> really?\n", "> did you"),
        ];
        for (text, starts) in cases {
            let at = quote_start(text).unwrap_or_else(|| panic!("no quote in {text:?}"));
            assert!(
                text[at..].starts_with(starts),
                "{text:?}: at {:?}",
                &text[at..]
            );
        }
        for text in [
            "Hello,\n\nthe plan:\nFrom: the top\nthen down.\n",
            "> quoted first\nthen my answer\n",
            "> all quote\n> no reply\n",
            "Plain message without any quote.\n",
        ] {
            assert_eq!(quote_start(text), None, "{text:?}");
        }
    }

    #[test]
    fn bottom_adds_a_blank_line_then_the_block_and_keeps_the_final_break() {
        assert_eq!(
            place("Hi\nBob\n", "D1\nD2", Placement::Bottom, "\n", false),
            "Hi\nBob\n\nD1\nD2\n"
        );
        assert_eq!(
            place("Hi\r\n", "D", Placement::Bottom, "\r\n", false),
            "Hi\r\n\r\nD\r\n"
        );
    }

    #[test]
    fn bottom_without_a_final_break_adds_none() {
        assert_eq!(
            place("Hi", "D", Placement::Bottom, "\r\n", false),
            "Hi\r\n\r\nD"
        );
    }

    #[test]
    fn bottom_does_not_stack_a_second_blank_line() {
        assert_eq!(
            place("Hi\n\n", "D", Placement::Bottom, "\n", false),
            "Hi\n\nD\n"
        );
    }

    #[test]
    fn top_puts_the_block_first_with_a_blank_line() {
        assert_eq!(place("Hi\n", "D", Placement::Top, "\n", false), "D\n\nHi\n");
    }

    #[test]
    fn an_empty_text_becomes_the_block() {
        assert_eq!(place("", "D", Placement::Bottom, "\n", true), "D");
    }

    #[test]
    fn flowed_the_senders_final_soft_break_becomes_hard() {
        let out = place(
            "A long paragraph that \r\nflows on. \r\n",
            "D",
            Placement::Bottom,
            "\r\n",
            true,
        );
        assert_eq!(out, "A long paragraph that \r\nflows on.\r\n\r\nD\r\n");
    }

    #[test]
    fn flowed_a_signature_separator_keeps_its_space() {
        let out = place("Hi\n-- \n", "D", Placement::Bottom, "\n", true);
        assert_eq!(out, "Hi\n-- \n\nD\n");
    }

    #[test]
    fn flowed_block_lines_do_not_end_in_spaces_and_are_space_stuffed() {
        let block = disclaimer_block(
            "\nFirst line \n From here\nFrom now on\n> quoted\nplain\n\n",
            "\r\n",
            true,
        );
        assert_eq!(
            block,
            "First line\r\n  From here\r\n From now on\r\n > quoted\r\nplain"
        );
        assert!(block.split("\r\n").all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn flowed_block_keeps_a_signature_separator() {
        assert_eq!(disclaimer_block("-- \nLegal", "\n", true), "-- \nLegal");
    }

    #[test]
    fn non_flowed_block_lines_are_kept_as_written() {
        assert_eq!(disclaimer_block("a \n> b\n", "\n", false), "a \n> b");
    }

    #[test]
    fn the_line_ending_comes_from_the_text_or_the_fallback() {
        assert_eq!(line_ending_of("a\r\nb", "\n"), "\r\n");
        assert_eq!(line_ending_of("a\nb\r\n", "\r\n"), "\n");
        assert_eq!(line_ending_of("ab", "\r\n"), "\r\n");
    }
}
