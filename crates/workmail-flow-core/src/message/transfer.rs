//! Content-Transfer-Encoding: decoding what a part holds and encoding what we write.
//!
//! Decoders are lenient (real mail has stray characters in base64 and bad escapes in
//! quoted-printable); encoders are strict and never write a line over 76 characters, so
//! nothing we produce can break WorkMail's 998-byte line rule.

use crate::message::newline::Newline;
use base64::Engine;

/// The transfer encodings a part can carry, as named in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    /// 7bit, 8bit, binary or no header at all: the body is the content.
    Identity,
    Base64,
    QuotedPrintable,
}

impl TransferEncoding {
    /// Reads a Content-Transfer-Encoding value; unknown tokens (x-uuencode, x-gzip64) are
    /// `None`, so callers leave such parts alone rather than guess.
    pub fn parse(value: Option<&str>) -> Option<TransferEncoding> {
        let v = value.map(|v| v.trim().to_ascii_lowercase());
        match v.as_deref() {
            None | Some("") | Some("7bit") | Some("8bit") | Some("binary") => {
                Some(TransferEncoding::Identity)
            }
            Some("base64") => Some(TransferEncoding::Base64),
            Some("quoted-printable") => Some(TransferEncoding::QuotedPrintable),
            _ => None,
        }
    }

    /// Decodes a body in this encoding.
    pub fn decode(self, body: &[u8]) -> Vec<u8> {
        match self {
            TransferEncoding::Identity => body.to_vec(),
            TransferEncoding::Base64 => base64_decode(body),
            TransferEncoding::QuotedPrintable => qp_decode(body),
        }
    }

    /// The length [`decode`](Self::decode) would return, counted without building the
    /// decoded copy (a size policy over a 25 MB attachment should not allocate 25 MB).
    pub fn decoded_len(self, body: &[u8]) -> usize {
        match self {
            TransferEncoding::Identity => body.len(),
            TransferEncoding::Base64 => base64_decoded_len(body),
            TransferEncoding::QuotedPrintable => qp_decoded_len(body),
        }
    }
}

/// What [`base64_decode`] yields, counted: alphabet characters up to the first `=`, three
/// bytes for every four, and one or two for a final group of two or three.
fn base64_decoded_len(body: &[u8]) -> usize {
    let chars = body
        .iter()
        .take_while(|&&b| b != b'=')
        .filter(|b| b.is_ascii_alphanumeric() || **b == b'+' || **b == b'/')
        .count();
    chars / 4 * 3 + [0, 0, 1, 2][chars % 4]
}

/// What [`qp_decode`] yields, counted with the same rules.
fn qp_decoded_len(body: &[u8]) -> usize {
    let mut len = 0;
    qp_scan(body, |_| len += 1);
    len
}

/// Lenient base64: skips whitespace and characters outside the alphabet, stops at padding.
pub fn base64_decode(body: &[u8]) -> Vec<u8> {
    let mut clean: Vec<u8> = body
        .iter()
        .copied()
        .take_while(|&b| b != b'=')
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    // A dangling single character carries no whole byte.
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    LENIENT_BASE64.decode(&clean).unwrap_or_default()
}

/// Whether a base64 body holds only the alphabet and white space, with padding only at
/// its end: what decodes the same in every reader. A missing final `=` is fine.
pub fn base64_is_clean(body: &[u8]) -> bool {
    let mut padded = false;
    for &b in body {
        match b {
            b'=' => padded = true,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b if (b.is_ascii_alphanumeric() || b == b'+' || b == b'/') && !padded => {}
            _ => return false,
        }
    }
    true
}

/// Unpadded base64 that accepts non-zero bits after the last whole byte: some encoders
/// write them, and a strict decoder would return nothing at all for such a body.
const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
);

/// Base64 in lines of 76 characters, each ended by `nl` (the last one too).
pub fn base64_encode_lines(data: &[u8], nl: Newline) -> Vec<u8> {
    base64_encode_pieces(&[data], nl)
}

/// Lenient quoted-printable: soft breaks removed, `=XX` decoded, a malformed escape kept
/// as it stands. Hard line breaks are kept as they are in the input.
pub fn qp_decode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    qp_scan(body, |b| out.push(b));
    out
}

/// Walks a quoted-printable body and hands each decoded byte to `emit`: one reading of
/// the format for both decoding and counting.
fn qp_scan(body: &[u8], mut emit: impl FnMut(u8)) {
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b != b'=' {
            emit(b);
            i += 1;
            continue;
        }
        // Soft line break: '=' then optional trailing whitespace then a line break.
        let mut j = i + 1;
        while j < body.len() && (body[j] == b' ' || body[j] == b'\t') {
            j += 1;
        }
        if j < body.len() && body[j] == b'\n' {
            i = j + 1;
            continue;
        }
        if j + 1 < body.len() && body[j] == b'\r' && body[j + 1] == b'\n' {
            i = j + 2;
            continue;
        }
        if j == body.len() {
            i = j;
            continue;
        }
        match (hex(body.get(i + 1)), hex(body.get(i + 2))) {
            (Some(h), Some(l)) => {
                emit(h << 4 | l);
                i += 3;
            }
            _ => {
                emit(b'=');
                i += 1;
            }
        }
    }
}

fn hex(b: Option<&u8>) -> Option<u8> {
    match b? {
        b @ b'0'..=b'9' => Some(b - b'0'),
        b @ b'A'..=b'F' => Some(b - b'A' + 10),
        b @ b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

const QP_LINE: usize = 76;

/// Quoted-printable for text: the input's line breaks (LF or CRLF) become hard breaks
/// written as `nl`, lines are soft-broken before 76 characters, `--` is written `=2D-`
/// (so no line can read as a boundary delimiter), and a soft break never falls inside
/// a UTF-8 sequence (the bytes of one character stay on one line, so
/// clients that decode line by line do not show broken characters).
pub fn qp_encode_text(text: &[u8], nl: Newline) -> Vec<u8> {
    qp_encode_pieces(&[text], nl)
}

/// [`qp_encode_text`] of the pieces' concatenation, without making it: only a line
/// that runs across two pieces is copied (a 39 MB part plus a disclaimer is encoded
/// straight from the original's bytes).
pub fn qp_encode_pieces(pieces: &[&[u8]], nl: Newline) -> Vec<u8> {
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(total + total / 8);
    let mut lines = lines_of_pieces(pieces).peekable();
    while let Some(line) = lines.next() {
        qp_encode_line(&line, nl, &mut out);
        if lines.peek().is_some() {
            out.extend_from_slice(nl.as_bytes());
        }
    }
    out
}

/// The lines of the pieces' concatenation, as [`split_lines`] gives them: a line inside
/// one piece is borrowed, one that runs across pieces is joined.
pub fn lines_of_pieces<'p>(
    pieces: &'p [&'p [u8]],
) -> impl Iterator<Item = std::borrow::Cow<'p, [u8]>> + 'p {
    use std::borrow::Cow;
    let mut piece = 0;
    let mut pos = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut joined: Option<Vec<u8>> = None;
        loop {
            let Some(p) = pieces.get(piece) else {
                done = true;
                let line = joined.map(Cow::Owned).unwrap_or(Cow::Borrowed(&[][..]));
                return Some(strip_cr(line));
            };
            let rest = &p[pos..];
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    pos += i + 1;
                    let line = match joined.take() {
                        Some(mut j) => {
                            j.extend_from_slice(&rest[..i]);
                            Cow::Owned(j)
                        }
                        None => Cow::Borrowed(&rest[..i]),
                    };
                    return Some(strip_cr(line));
                }
                None => {
                    joined.get_or_insert_with(Vec::new).extend_from_slice(rest);
                    piece += 1;
                    pos = 0;
                }
            }
        }
    })
}

fn strip_cr(line: std::borrow::Cow<'_, [u8]>) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    match line {
        Cow::Borrowed(l) => Cow::Borrowed(l.strip_suffix(b"\r").unwrap_or(l)),
        Cow::Owned(mut l) => {
            if l.ends_with(b"\r") {
                l.pop();
            }
            Cow::Owned(l)
        }
    }
}

/// Base64 of the pieces' concatenation in lines of 76, each ended by `nl`, without
/// joining them first.
pub fn base64_encode_pieces(pieces: &[&[u8]], nl: Newline) -> Vec<u8> {
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(total / 3 * 4 + total / 57 * 2 + 8);
    let mut group = Vec::with_capacity(57);
    let mut line = String::with_capacity(76);
    let flush = |group: &mut Vec<u8>, line: &mut String, out: &mut Vec<u8>| {
        line.clear();
        base64::engine::general_purpose::STANDARD.encode_string(&group[..], line);
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(nl.as_bytes());
        group.clear();
    };
    for piece in pieces {
        for &b in *piece {
            group.push(b);
            if group.len() == 57 {
                flush(&mut group, &mut line, &mut out);
            }
        }
    }
    if !group.is_empty() {
        flush(&mut group, &mut line, &mut out);
    }
    out
}

/// Splits on LF, dropping a CR right before it; a final line without a break is kept,
/// and text ending in a break yields a last empty line (so the break survives).
fn split_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn qp_encode_line(line: &[u8], nl: Newline, out: &mut Vec<u8>) {
    // Encode character by character (a soft break never splits one), collecting the
    // current output line as pieces so a break can move back to just after a space:
    // "any=\nattachments" reads worse in raw source than "any =\nattachments".
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut col = 0;
    let mut i = 0;
    while i < line.len() {
        let len = utf8_sequence_len(&line[i..]);
        let last = i + len == line.len();
        let mut piece = Vec::with_capacity(len * 3);
        // A '-' followed by another is written =2D: no output line, whatever the soft
        // breaks, can then start with "--" and be read as a MIME delimiter.
        let dash_pair = line[i] == b'-' && line.get(i + 1) == Some(&b'-');
        for &b in &line[i..i + len] {
            let plain = (b == b' ' || b == b'\t') && !last
                || (33..=126).contains(&b) && b != b'=' && !dash_pair;
            if plain {
                piece.push(b);
            } else {
                piece.extend_from_slice(format!("={b:02X}").as_bytes());
            }
        }
        // Leave room for the soft-break '=' unless this is the line's last piece.
        let room = if last { QP_LINE } else { QP_LINE - 1 };
        if col + piece.len() > room && col > 0 {
            let carry = break_point(&current);
            let tail: Vec<Vec<u8>> = current.split_off(carry);
            for p in &current {
                out.extend_from_slice(p);
            }
            out.push(b'=');
            out.extend_from_slice(nl.as_bytes());
            current = tail;
            col = current.iter().map(Vec::len).sum();
            // The carried tail plus this piece must still fit; otherwise break here.
            if col + piece.len() > room && col > 0 {
                for p in current.drain(..) {
                    out.extend_from_slice(&p);
                }
                out.push(b'=');
                out.extend_from_slice(nl.as_bytes());
                col = 0;
            }
        }
        col += piece.len();
        current.push(piece);
        i += len;
    }
    for p in current {
        out.extend_from_slice(&p);
    }
}

/// Where to end a full output line: after its last space when that lies within the last
/// 20 columns, else at the end.
fn break_point(pieces: &[Vec<u8>]) -> usize {
    let mut width = 0;
    for (idx, p) in pieces.iter().enumerate().rev() {
        if width > 20 {
            break;
        }
        if p.as_slice() == b" " || p.as_slice() == b"\t" {
            return idx + 1;
        }
        width += p.len();
    }
    pieces.len()
}

/// How many bytes the character starting at `bytes[0]` takes when it is well-formed
/// UTF-8; 1 otherwise (single-byte charsets, broken sequences).
fn utf8_sequence_len(bytes: &[u8]) -> usize {
    let want = match bytes[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return 1,
    };
    if bytes.len() >= want && bytes[1..want].iter().all(|b| (0x80..=0xBF).contains(b)) {
        want
    } else {
        1
    }
}

/// Whether every line of `body` fits WorkMail's limit of 998 bytes before the break.
pub fn longest_line(body: &[u8]) -> usize {
    split_lines(body).map(|l| l.len()).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lines_are_76_wide_and_round_trip() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let enc = base64_encode_lines(&data, Newline::CrLf);
        for line in enc.split(|&b| b == b'\n') {
            assert!(line.len() <= 77);
        }
        assert!(enc.ends_with(b"\r\n"));
        assert_eq!(base64_decode(&enc), data);
    }

    #[test]
    fn base64_decode_skips_junk_and_stops_at_padding() {
        assert_eq!(base64_decode(b"aGVs\r\nbG8=\r\n"), b"hello");
        assert_eq!(base64_decode(b"aGVs bG8*"), b"hello");
        assert_eq!(base64_decode(b"aGVsbG8=trailing"), b"hello");
        // Non-zero bits after the last byte ("ab" is 0x69 plus four stray bits).
        assert_eq!(base64_decode(b"aGVsbG9="), b"hello");
        assert_eq!(base64_decode(b"ab"), [0x69]);
    }

    #[test]
    fn qp_decode_handles_soft_breaks_escapes_and_bad_escapes() {
        assert_eq!(qp_decode(b"caf=C3=A9 =\r\nbar"), "café bar".as_bytes());
        assert_eq!(qp_decode(b"a=\nb"), b"ab");
        assert_eq!(qp_decode(b"50=% off=ZZ"), b"50=% off=ZZ");
        assert_eq!(qp_decode(b"line =  \r\nnext"), b"line next");
    }

    #[test]
    fn qp_encode_never_splits_a_utf8_character_across_a_soft_break() {
        let text = "é".repeat(60);
        let enc = qp_encode_text(text.as_bytes(), Newline::Lf);
        for line in enc.split(|&b| b == b'\n') {
            assert!(line.len() <= 76, "line of {} chars", line.len());
            let body = line.strip_suffix(b"=").unwrap_or(line);
            // Every line holds whole characters: it decodes to valid UTF-8 on its own.
            assert!(String::from_utf8(qp_decode(body)).is_ok());
        }
        assert_eq!(qp_decode(&enc), text.as_bytes());
    }

    #[test]
    fn qp_encode_keeps_hard_breaks_and_protects_trailing_space() {
        let enc = qp_encode_text(b"a \nb=c\n", Newline::CrLf);
        assert_eq!(enc, b"a=20\r\nb=3Dc\r\n");
        assert_eq!(qp_decode(&enc), b"a \r\nb=c\r\n");
    }

    #[test]
    fn qp_soft_breaks_fall_after_a_space_when_one_is_near() {
        let text = "This message from carol@corp.example and any attachments are intended only";
        let enc = qp_encode_text(format!("{text} for you").as_bytes(), Newline::Lf);
        let first = enc.split(|&b| b == b'\n').next().unwrap();
        assert!(first.ends_with(b" ="), "{}", String::from_utf8_lossy(first));
        assert_eq!(qp_decode(&enc), format!("{text} for you").as_bytes());
    }

    #[test]
    fn qp_encode_breaks_long_lines_and_round_trips() {
        let text = "x".repeat(2000);
        let enc = qp_encode_text(text.as_bytes(), Newline::CrLf);
        assert!(longest_line(&enc) <= 76);
        assert_eq!(qp_decode(&enc), text.as_bytes());
    }

    #[test]
    fn decoded_len_counts_exactly_what_decode_returns() {
        let samples: [&[u8]; 12] = [
            b"",
            b"aGVsbG8=",
            b"aGVsbG8",
            b"aGVs\r\nbG8=\r\n",
            b"aGVsbG8*junk",
            b"a",
            b"ab",
            b"abc",
            b"caf=C3=A9 =\r\nbar",
            b"50=% off=ZZ=",
            b"line =  \r\nnext= \t\nx=4",
            b"=\n=\r\n==41",
        ];
        let big = base64_encode_lines(&[7u8; 10_001], Newline::CrLf);
        for body in samples.iter().copied().chain([big.as_slice()]) {
            for enc in [
                TransferEncoding::Identity,
                TransferEncoding::Base64,
                TransferEncoding::QuotedPrintable,
            ] {
                assert_eq!(
                    enc.decoded_len(body),
                    enc.decode(body).len(),
                    "{enc:?} {:?}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[test]
    fn transfer_encoding_parses_known_tokens_and_refuses_unknown_ones() {
        assert_eq!(
            TransferEncoding::parse(None),
            Some(TransferEncoding::Identity)
        );
        assert_eq!(
            TransferEncoding::parse(Some(" Base64 ")),
            Some(TransferEncoding::Base64)
        );
        assert_eq!(TransferEncoding::parse(Some("x-uuencode")), None);
    }
}
