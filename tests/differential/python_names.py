"""Prints, for each path read from stdin, one JSON line: every file name Python's
email package (policy.default, which decodes RFC 2047 and RFC 2231) finds in the
message's parts, each also as Windows and C strings end up with it (cut at a NUL,
trailing dots and spaces and an NTFS ::$DATA suffix dropped, invisible bidi controls
removed), plus the names of uuencoded blocks in text parts. For tests/differential.rs:
an independent reader's view of what a recipient would be offered to open.
"""

import email
import email.policy
import json
import re
import sys

INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
UUBEGIN = re.compile(r"^begin(?:-base64)? [0-7]{3,4} (.+)$", re.M)


def variants(name):
    out = {name}
    for base in (name, name.split("\0")[0], INVISIBLE.sub("", name)):
        t = base
        while True:
            before = t
            if t.lower().endswith("::$data"):
                t = t[: -len("::$data")]
            t = t.rstrip(". \t")
            if t == before:
                break
        out.add(base)
        out.add(t)
    return sorted(n for n in out if n)


def names(msg):
    found = []
    for part in msg.walk():
        for getter in (part.get_filename, lambda: part.get_param("name")):
            try:
                n = getter()
            except Exception:
                n = None
            if isinstance(n, tuple):
                n = email.utils.collapse_rfc2231_value(n)
            if n:
                found.extend(variants(str(n)))
        if part.get_content_maintype() == "text" and not part.is_multipart():
            try:
                text = part.get_payload(decode=True) or b""
            except Exception:
                text = b""
            for m in UUBEGIN.finditer(text.decode("latin-1")):
                found.extend(variants(m.group(1).strip()))
    return sorted(set(found))


def main():
    for line in sys.stdin:
        path = line.rstrip("\n")
        if not path:
            continue
        with open(path, "rb") as f:
            raw = f.read()
        try:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            print(json.dumps(names(msg)))
        except Exception as e:
            print(json.dumps({"error": repr(e)}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
