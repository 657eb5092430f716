"""Prints each message's MIME tree as Python's email package reads it, for
tests/differential.rs: one JSON line per path read from stdin, a list of
[depth, content type, sha256 of the leaf payload's bytes or null].

The payload is taken as Python's feedparser splits it (`get_payload()` of a leaf,
back to bytes with surrogateescape), so its bytes are the ones between the part's
header and the line break before the next delimiter: the byte ranges a splice
edits. Attached messages (message/rfc822, message/global) are read inside; other
message/* types are leaves with no payload hash, as workmail-flow reads them.
"""

import email
import email.policy
import hashlib
import json
import sys


def leaf_hash(part):
    # The stored payload: with message_from_bytes, 8-bit bytes are kept as
    # surrogate escapes (get_payload() would decode them in the part's charset).
    payload = part._payload
    if not isinstance(payload, str):
        return None
    return hashlib.sha256(payload.encode("ascii", "surrogateescape")).hexdigest()


def walk(part, depth, out):
    ctype = part.get_content_type()
    out.append([depth, ctype, None])
    payload = part.get_payload()
    if ctype.startswith("message/"):
        if ctype in ("message/rfc822", "message/global") and isinstance(payload, list):
            for inner in payload:
                walk(inner, depth + 1, out)
        return
    if isinstance(payload, list):
        for child in payload:
            walk(child, depth + 1, out)
        return
    if part.get_content_maintype() == "multipart":
        # A multipart Python could not split: no children.
        return
    out[-1][2] = leaf_hash(part)


def main():
    policy = email.policy.compat32
    for line in sys.stdin:
        path = line.rstrip("\n")
        if not path:
            continue
        with open(path, "rb") as f:
            raw = f.read()
        try:
            msg = email.message_from_bytes(raw, policy=policy)
            out = []
            walk(msg, 0, out)
            print(json.dumps(out))
        except Exception as e:  # a crash in Python's parser is its own finding
            print(json.dumps({"error": repr(e)}))
        sys.stdout.flush()


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    main()
