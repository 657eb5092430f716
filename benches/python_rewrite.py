#!/usr/bin/env python3
"""The approach AWS's sample WorkMail functions take ("workmail-update-email"), as a
baseline for benches/compare.sh: parse each message with Python's `email` package, change
the tree, and serialize the whole message again.

    python3 benches/python_rewrite.py OUT_DIR INPUT...

Per message, like the sample: parse with policy.SMTP (refold_source='none'); for every
text/plain and text/html part not marked attachment, read the decoded content, add the
disclaimer (plain: after a blank line; HTML: before </body>, through BeautifulSoup when it
is installed, as the sample does, else by string search) and set it back with the part's
charset and transfer encoding; prefix the subject with the tag; add the stamp header;
write `msg.as_bytes()`. Attachments named *.exe (and the other extensions of
benches/full.toml) are replaced by a text notice, the step the sample leaves out, so the
work matches our full config.

A message whose rewrite raises (the sample's Lambda would fail the invocation) is
written unchanged and counted. Prints one summary line on stderr:
`python_rewrite: N messages, C changed, F failed (kept original)`.
"""

import email
import email.utils
import os
import sys
from email import policy

try:
    from bs4 import BeautifulSoup
except ImportError:  # pragma: no cover - depends on the machine
    BeautifulSoup = None

STAMP = ("X-WorkMail-Flow", "processed")
TAG = "[EXTERNAL]"
TEXT = (
    "Confidential: this message from {sender} is meant for its addressees only.\n"
    "If you received it in error, please delete it and tell the sender."
)
HTML = (
    '<div class="disclaimer"><p>Confidential: this message from {sender} is meant for its '
    "addressees only.<br>\nIf you received it in error, please delete it and tell the "
    "sender.</p></div>"
)
BLOCKED = (".exe", ".scr", ".js", ".vbs", ".bat", ".cmd", ".com", ".pif", ".jar", ".msi")
POLICY = policy.SMTP.clone(refold_source="none")


def charset_and_cte(part):
    """The part's charset and transfer encoding. AWS's sample passes a missing charset
    on as None, which makes set_content raise on every text part without a charset
    parameter (141 of the 373 corpus messages); we default it to UTF-8 so the baseline
    measures the approach rather than that bug."""
    cte = part.get("Content-Transfer-Encoding")
    return part.get_content_charset() or "utf-8", (cte.lower().strip() if cte else None)


def add_html(html, disclaimer):
    if BeautifulSoup is not None:
        soup = BeautifulSoup(html, "html.parser")
        target = soup.find("body") or soup
        target.append(BeautifulSoup(disclaimer, "html.parser"))
        return str(soup)
    low = html.lower()
    at = low.rfind("</body>")
    return html + disclaimer if at < 0 else html[:at] + disclaimer + html[at:]


def rewrite(msg, sender):
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = str(part.get_content_disposition())
        name = (part.get_filename() or "").lower()
        if name.endswith(BLOCKED):
            part.set_content(
                "The attachment %s was removed by policy.\n" % name,
                disposition="attachment",
                filename=name + ".removed.txt",
            )
            continue
        if "attachment" in disposition:
            continue
        if ctype == "text/plain":
            charset, cte = charset_and_cte(part)
            text = part.get_content() + "\n\n" + TEXT.format(sender=sender)
            part.set_content(text, "plain", charset=charset, cte=cte)
        elif ctype == "text/html":
            charset, cte = charset_and_cte(part)
            html = add_html(part.get_content(), HTML.format(sender=sender))
            if charset.lower() == "utf-8" and cte == "7bit":
                cte = "quoted-printable"
            part.set_content(html.encode(charset), "text", "html", cte=cte)
            part.set_charset(charset)
    subject = msg.get("Subject")
    if subject is None:
        msg["Subject"] = TAG
    elif not str(subject).startswith(TAG):
        msg.replace_header("Subject", "%s %s" % (TAG, subject))
    if msg.get(STAMP[0]) is None:
        msg[STAMP[0]] = STAMP[1]
    return msg.as_bytes()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    changed = failed = 0
    inputs = sys.argv[2:]
    for path in inputs:
        with open(path, "rb") as f:
            raw = f.read()
        try:
            msg = email.message_from_bytes(raw, policy=POLICY)
            sender = email.utils.parseaddr(str(msg.get("From") or ""))[1]
            out = rewrite(msg, sender)
        except Exception:  # the sample's Lambda would fail here
            failed += 1
            out = raw
        if out != raw:
            changed += 1
        with open(os.path.join(out_dir, os.path.basename(path)), "wb") as f:
            f.write(out)
    print(
        "python_rewrite: %d messages, %d changed, %d failed (kept original)"
        % (len(inputs), changed, failed),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
