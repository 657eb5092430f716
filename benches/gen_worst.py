#!/usr/bin/env python3
"""Writes the costliest message the limits let through, for sizing the function's
timeout and memory (docs/deploy.md): just under 40 MiB (limits::MAX_MESSAGE_BYTES),
500 attachments (limits::MAX_ATTACHMENTS), every second one an .exe that
strip_attachments replaces, and a 4 MB quoted-printable text and HTML body each, which
the disclaimer decodes, edits and re-encodes.

    python3 benches/gen_worst.py OUT.eml

Nothing it writes is committed; rerunning gives the same bytes.
"""

import sys

from gen_large import base64_lines, body_text, pseudo_random, quoted_printable

LIMIT = 40 * 1024 * 1024 - 64 * 1024
ATTACHMENTS = 500
BODY = 4 * 1024 * 1024


def message():
    text = body_text(BODY)
    html = "<html><body>\n%s</body></html>\n" % "".join(
        "<p>%s</p>\n" % p.replace("\n", "<br>\n") for p in text.split("\n\n")
    )
    head = (
        "From: Alice Example <alice@partner.example>\r\n"
        "To: Bob Example <bob@corp.example>\r\n"
        "Subject: Everything at once\r\n"
        "Date: Mon, 2 Nov 2026 09:00:00 +0000\r\n"
        "Message-ID: <worst-0001@partner.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="=_mixed_w1"\r\n'
        "\r\n"
        "--=_mixed_w1\r\n"
        'Content-Type: multipart/alternative; boundary="=_alt_w2"\r\n'
        "\r\n"
        "--=_alt_w2\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n" + quoted_printable(text) + "--=_alt_w2\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n" + quoted_printable(html) + "--=_alt_w2--\r\n"
    ).encode()
    room = LIMIT - len(head) - 40
    each = room // ATTACHMENTS - 260
    parts = []
    for i in range(ATTACHMENTS):
        name = "tool%03d.exe" % i if i % 2 else "data%03d.pdf" % i
        kind = "application/x-msdownload" if i % 2 else "application/pdf"
        parts.append(
            (
                "--=_mixed_w1\r\n"
                'Content-Type: %s; name="%s"\r\n'
                'Content-Disposition: attachment; filename="%s"\r\n'
                "Content-Transfer-Encoding: base64\r\n"
                "\r\n" % (kind, name, name)
            ).encode()
            + base64_lines(pseudo_random(each // 78 * 57))
        )
    return head + b"".join(parts) + b"--=_mixed_w1--\r\n"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    raw = message()
    assert len(raw) < 40 * 1024 * 1024, len(raw)
    with open(sys.argv[1], "wb") as f:
        f.write(raw)


if __name__ == "__main__":
    main()
