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
        Placement::Bottom => {
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
