//! Deterministic test messages of a chosen size for the benchmarks: the shape of ordinary
//! business mail, so every stage of the full config has work to do.
//!
//! ```text
//! multipart/mixed
//! ├── multipart/alternative
//! │   ├── text/plain; charset=utf-8, quoted-printable   (the disclaimer goes here)
//! │   └── text/html; charset=utf-8, quoted-printable    (and here, before </body>)
//! ├── application/pdf, base64, "report.pdf"             (grows to reach the size)
//! └── application/x-msdownload, base64, "setup.exe"     (strip_attachments replaces it)
//! ```
//!
//! The PDF's bytes come from a fixed xorshift sequence, so a run measures the same bytes
//! every time and nothing is committed. `benches/gen_large.py` writes the same shape to
//! a file for the command-line measurements.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The body text: a few paragraphs, repeated to about `bytes` of text.
fn body_text(bytes: usize) -> String {
    const PARA: &str = "Hello team,\n\nPlease find attached the quarterly report. The figures \
for the third quarter are in section 2; the forecast is unchanged since our last call. \
Comments by Friday, please.\n\nKind regards,\nAlice\n\n";
    let mut s = String::with_capacity(bytes + PARA.len());
    while s.len() < bytes {
        s.push_str(PARA);
    }
    s
}

/// Quoted-printable as a mail client writes it: lines under 76, soft breaks, `=` escaped.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for line in text.split('\n') {
        let mut col = 0;
        for b in line.bytes() {
            let enc = if b == b'=' || !(32..127).contains(&b) {
                format!("={b:02X}")
            } else {
                (b as char).to_string()
            };
            if col + enc.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            col += enc.len();
            out.push_str(&enc);
        }
        out.push_str("\r\n");
    }
    out
}

/// Base64 in lines of 76, CRLF.
fn base64_lines(data: &[u8]) -> String {
    let enc = STANDARD.encode(data);
    let mut out = String::with_capacity(enc.len() + enc.len() / 38 + 2);
    for chunk in enc.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// `n` bytes of a fixed pseudo-random sequence (xorshift64), starting with a PDF magic.
pub fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = Vec::with_capacity(n + 8);
    v.extend_from_slice(b"%PDF-1.7\n");
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// A message of about `total` bytes (within a few hundred), CRLF line endings.
pub fn message(total: usize) -> Vec<u8> {
    let text = body_text((total / 10).clamp(600, 8 * 1024));
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Report</title></head>\n<body>\n{}</body>\n</html>\n",
        text.split("\n\n")
            .map(|p| format!("<p>{}</p>\n", p.replace('\n', "<br>\n")))
            .collect::<String>()
    );
    let exe = base64_lines(&pseudo_random(2048));
    let mut head = String::new();
    head.push_str(concat!(
        "Return-Path: <alice@partner.example>\r\n",
        "Received: from mx.partner.example (mx.partner.example [192.0.2.10])\r\n",
        "\tby inbound.corp.example with ESMTPS id 4Xy; Mon, 2 Nov 2026 09:00:01 +0000\r\n",
        "From: Alice Example <alice@partner.example>\r\n",
        "To: Bob Example <bob@corp.example>\r\n",
        "Subject: Quarterly report\r\n",
        "Date: Mon, 2 Nov 2026 09:00:00 +0000\r\n",
        "Message-ID: <bench-0001@partner.example>\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/mixed; boundary=\"=_mixed_b1\"\r\n",
        "\r\n",
        "This is a multi-part message in MIME format.\r\n",
        "--=_mixed_b1\r\n",
        "Content-Type: multipart/alternative; boundary=\"=_alt_b2\"\r\n",
        "\r\n",
        "--=_alt_b2\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "\r\n",
    ));
    head.push_str(&quoted_printable(&text));
    head.push_str(concat!(
        "--=_alt_b2\r\n",
        "Content-Type: text/html; charset=utf-8\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "\r\n",
    ));
    head.push_str(&quoted_printable(&html));
    head.push_str(concat!(
        "--=_alt_b2--\r\n",
        "\r\n",
        "--=_mixed_b1\r\n",
        "Content-Type: application/pdf; name=\"report.pdf\"\r\n",
        "Content-Disposition: attachment; filename=\"report.pdf\"\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
    ));
    let mut tail = String::new();
    tail.push_str(concat!(
        "--=_mixed_b1\r\n",
        "Content-Type: application/x-msdownload; name=\"setup.exe\"\r\n",
        "Content-Disposition: attachment; filename=\"setup.exe\"\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
    ));
    tail.push_str(&exe);
    tail.push_str("--=_mixed_b1--\r\n");
    // What is left for the PDF's base64 lines (78 bytes carry 57 decoded bytes).
    let room = total.saturating_sub(head.len() + tail.len());
    let pdf = base64_lines(&pseudo_random((room / 78 * 57).max(57)));
    let mut out = Vec::with_capacity(head.len() + pdf.len() + tail.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(pdf.as_bytes());
    out.extend_from_slice(tail.as_bytes());
    out
}

/// The sizes the issue names, with their labels.
pub const SIZES: &[(&str, usize)] = &[
    ("10KB", 10 * 1000),
    ("100KB", 100 * 1000),
    ("1MB", 1000 * 1000),
    ("10MB", 10 * 1000 * 1000),
    // A 29 MB attachment, base64: WorkMail's largest message.
    ("40MB", 39_750_000),
];
