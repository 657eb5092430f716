#!/usr/bin/env python3
"""Writes a deterministic test message of about SIZE bytes (default 39,750,000: a
text+html body, a ~29 MB base64 PDF attachment and a small .exe), the same shape as
benches/support/generate.rs, for the command-line measurements (memory, compare.sh).

    python3 benches/gen_large.py OUT.eml [SIZE]

Nothing it writes is committed; rerunning gives the same bytes.
"""

import base64
import struct
import sys

PARA = (
    "Hello team,\n\nPlease find attached the quarterly report. The figures for the third "
    "quarter are in section 2; the forecast is unchanged since our last call. Comments by "
    "Friday, please.\n\nKind regards,\nAlice\n\n"
)


def body_text(n):
    return PARA * -(-n // len(PARA))


def quoted_printable(text):
    out = []
    for line in text.split("\n"):
        col = 0
        buf = []
        for ch in line.encode():
            enc = "=%02X" % ch if ch == 61 or not 32 <= ch < 127 else chr(ch)
            if col + len(enc) > 75:
                buf.append("=\r\n")
                col = 0
            col += len(enc)
            buf.append(enc)
        out.append("".join(buf) + "\r\n")
    return "".join(out)


def base64_lines(data):
    enc = base64.b64encode(data)
    return b"".join(enc[i : i + 76] + b"\r\n" for i in range(0, len(enc), 76))


def pseudo_random(n):
    """xorshift64 from a fixed seed after a PDF magic: the generator in generate.rs."""
    mask = (1 << 64) - 1
    x = 0x9E3779B97F4A7C15
    words = []
    need = (n - 9) // 8 + 1
    for _ in range(need):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        words.append(x)
    data = b"%PDF-1.7\n" + struct.pack("<%dQ" % len(words), *words)
    return data[:n]


def message(total):
    text = body_text(min(max(total // 10, 600), 8 * 1024))
    paras = "".join("<p>%s</p>\n" % p.replace("\n", "<br>\n") for p in text.split("\n\n"))
    html = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Report</title></head>\n'
        "<body>\n%s</body>\n</html>\n" % paras
    )
    head = (
        "Return-Path: <alice@partner.example>\r\n"
        "Received: from mx.partner.example (mx.partner.example [192.0.2.10])\r\n"
        "\tby inbound.corp.example with ESMTPS id 4Xy; Mon, 2 Nov 2026 09:00:01 +0000\r\n"
        "From: Alice Example <alice@partner.example>\r\n"
        "To: Bob Example <bob@corp.example>\r\n"
        "Subject: Quarterly report\r\n"
        "Date: Mon, 2 Nov 2026 09:00:00 +0000\r\n"
        "Message-ID: <bench-0001@partner.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="=_mixed_b1"\r\n'
        "\r\n"
        "This is a multi-part message in MIME format.\r\n"
        "--=_mixed_b1\r\n"
        'Content-Type: multipart/alternative; boundary="=_alt_b2"\r\n'
        "\r\n"
        "--=_alt_b2\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        + quoted_printable(text)
        + "--=_alt_b2\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        + quoted_printable(html)
        + "--=_alt_b2--\r\n"
        "\r\n"
        "--=_mixed_b1\r\n"
        'Content-Type: application/pdf; name="report.pdf"\r\n'
        'Content-Disposition: attachment; filename="report.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
    ).encode()
    tail = (
        "--=_mixed_b1\r\n"
        'Content-Type: application/x-msdownload; name="setup.exe"\r\n'
        'Content-Disposition: attachment; filename="setup.exe"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
    ).encode() + base64_lines(pseudo_random(2048)) + b"--=_mixed_b1--\r\n"
    room = max(total - len(head) - len(tail), 0)
    pdf = base64_lines(pseudo_random(max(room // 78 * 57, 57)))
    return head + pdf + tail


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    total = int(sys.argv[2]) if len(sys.argv) == 3 else 39_750_000
    with open(sys.argv[1], "wb") as f:
        f.write(message(total))


if __name__ == "__main__":
    main()
