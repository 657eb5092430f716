#!/usr/bin/env python3
"""Counts what each rewriting tool broke, comparing every output with its original.

    python3 benches/damage.py --check PATH/TO/workmail-flow IN_DIR NAME=OUT_DIR...

Per tool (OUT_DIR holds one output per file of IN_DIR, same names), three counts:
- rules: the output fails WorkMail's content rules against its original
  (`workmail-flow check --original`): a line over 998 bytes, an identity or trace field
  changed, a required field lost, a once-only field repeated. WorkMail would refuse it.
- attachments: an attachment of the original (a non-text leaf, or any part marked
  attachment) whose decoded bytes are no longer in the output, leaving out the ones the
  policy strips (the extensions of benches/full.toml).
- signatures: a multipart/signed message whose signed part's bytes are no longer in the
  output verbatim: the signature no longer verifies.
Only messages the tool changed are judged; an unchanged output breaks nothing.
"""

import email
import hashlib
import os
import re
import subprocess
import sys
from email import policy

BLOCKED = (".exe", ".scr", ".js", ".vbs", ".bat", ".cmd", ".com", ".pif", ".jar", ".msi")


def attachments(raw):
    """Digests of decoded attachment payloads, as a multiset (dict digest -> count)."""
    found = {}
    try:
        msg = email.message_from_bytes(raw, policy=policy.compat32)
        for part in msg.walk():
            # A multipart Python could not split (a folded or missing boundary) is no
            # attachment: it holds the body the other tools did edit.
            if part.is_multipart() or part.get_content_maintype() == "multipart":
                continue
            name = (part.get_filename() or "").lower()
            if name.endswith(BLOCKED) or name.endswith(".removed.txt"):
                continue
            disp = (part.get("Content-Disposition") or "").lower()
            if part.get_content_maintype() == "text" and "attachment" not in disp:
                continue
            payload = part.get_payload(decode=True) or b""
            d = hashlib.sha256(payload).hexdigest()
            found[d] = found.get(d, 0) + 1
    except Exception:
        pass
    return found


SIGNED = re.compile(rb'(?is)content-type:\s*multipart/signed[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*')
BOUNDARY = re.compile(rb'(?i)boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))')


def signed_spans(raw):
    """The signed content of every multipart/signed: the bytes between its first
    boundary line and the next delimiter."""
    spans = []
    for m in SIGNED.finditer(raw):
        b = BOUNDARY.search(m.group(0))
        if not b:
            continue
        boundary = b.group(1) or b.group(2)
        start = raw.find(b"--" + boundary, m.end())
        if start < 0:
            continue
        start = raw.find(b"\n", start) + 1
        end = raw.find(b"\n--" + boundary, start)
        if start > 0 and end > start:
            spans.append(raw[start:end])
    return spans


def rules_fail(check, orig, out):
    r = subprocess.run(
        [check, "check", "--original", orig, out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return r.returncode != 0


def main():
    args = sys.argv[1:]
    if len(args) < 4 or args[0] != "--check":
        sys.exit(__doc__)
    check, in_dir, tools = args[1], args[2], args[3:]
    names = sorted(os.listdir(in_dir))
    print("| tool | changed | breaks content rules | attachment altered | signature broken |")
    print("|---|---:|---:|---:|---:|")
    for spec in tools:
        label, out_dir = spec.split("=", 1)
        changed = rules = atts = sigs = 0
        for name in names:
            orig_path, out_path = os.path.join(in_dir, name), os.path.join(out_dir, name)
            orig = open(orig_path, "rb").read()
            out = open(out_path, "rb").read() if os.path.exists(out_path) else b""
            if out == orig:
                continue
            changed += 1
            rules += rules_fail(check, orig_path, out_path)
            before, after = attachments(orig), attachments(out)
            atts += any(after.get(d, 0) < n for d, n in before.items())
            sigs += any(span not in out for span in signed_spans(orig))
        print("| %s | %d | %d | %d | %d |" % (label, changed, rules, atts, sigs))


if __name__ == "__main__":
    main()
