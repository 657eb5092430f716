//! Line endings. A message keeps the line ending it came with: whatever we insert into an
//! LF-only message uses LF, into a CRLF message CRLF.

/// The line ending used when new lines are written into a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Newline {
    Lf,
    CrLf,
}

impl Newline {
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Newline::Lf => b"\n",
            Newline::CrLf => b"\r\n",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Newline::Lf => "\n",
            Newline::CrLf => "\r\n",
        }
    }

    /// The ending of the first line of `bytes` (CRLF when there is no line break at all,
    /// as RFC 5322 prescribes).
    pub fn detect(bytes: &[u8]) -> Newline {
        match memchr_newline(bytes) {
            Some(i) if i > 0 && bytes[i - 1] == b'\r' => Newline::CrLf,
            Some(_) => Newline::Lf,
            None => Newline::CrLf,
        }
    }

    /// The ending of the line that contains byte `pos`, or the message's own where that
    /// line has none.
    pub fn at(bytes: &[u8], pos: usize, fallback: Newline) -> Newline {
        let pos = pos.min(bytes.len());
        match memchr_newline(&bytes[pos..]) {
            Some(i) if pos + i > 0 && bytes[pos + i - 1] == b'\r' => Newline::CrLf,
            Some(_) => Newline::Lf,
            None => fallback,
        }
    }

    /// Rewrites every line break in `text` (LF, CRLF or a lone CR) to this ending.
    pub fn normalize(self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + text.len() / 32);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => {
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    out.push_str(self.as_str());
                }
                '\n' => out.push_str(self.as_str()),
                c => out.push(c),
            }
        }
        out
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_crlf_lf_and_defaults_to_crlf_without_a_break() {
        assert_eq!(Newline::detect(b"a: b\r\n\r\n"), Newline::CrLf);
        assert_eq!(Newline::detect(b"a: b\n\n"), Newline::Lf);
        assert_eq!(Newline::detect(b"a: b"), Newline::CrLf);
    }

    #[test]
    fn line_ending_at_a_position_is_that_lines_own() {
        let mixed = b"one\r\ntwo\nthree";
        assert_eq!(Newline::at(mixed, 0, Newline::Lf), Newline::CrLf);
        assert_eq!(Newline::at(mixed, 5, Newline::CrLf), Newline::Lf);
        assert_eq!(Newline::at(mixed, 10, Newline::CrLf), Newline::CrLf);
    }

    #[test]
    fn normalize_rewrites_every_kind_of_break() {
        assert_eq!(Newline::CrLf.normalize("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
        assert_eq!(Newline::Lf.normalize("a\r\nb"), "a\nb");
    }
}
