"""The final hop for the transport tests: aiosmtpd on 127.0.0.1, keeping every message
it accepts as NNNN.eml (the bytes as received, dot-unstuffed) and NNNN.json (the
envelope, and whether the session was encrypted) in --out.

    final_hop.py --port P --out DIR [--tls-cert PEM --tls-key PEM]
                 [--reply "550 5.7.1 no"] [--refuse-rcpt ADDR ...] [--auth USER:PASS]

--reply answers every DATA with that line instead of 250; --refuse-rcpt refuses those
recipients with 550 at RCPT; --auth requires SMTP AUTH (after STARTTLS) with that
login, and keeps the login name in the .json. Prints "ready" on stdout once it listens.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult


def login_name(session):
    """The login the sender authenticated as (the authenticator's auth_data), if any."""
    data = session.auth_data if session.authenticated else None
    return data.decode() if isinstance(data, bytes) else data


class Keep:
    def __init__(self, out, reply, refused):
        self.out = out
        self.reply = reply
        self.refused = {r.lower() for r in refused}
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.reply:
            return self.reply
        self.n += 1
        base = os.path.join(self.out, "%04d" % self.n)
        with open(base + ".eml.part", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".eml.part", base + ".eml")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "tls": session.ssl is not None,
            "login": login_name(session),
        }
        with open(base + ".json.part", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.part", base + ".json")
        return "250 2.0.0 Ok: kept as %04d" % self.n


class Login:
    def __init__(self, user, password):
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == self.user and auth_data.password == self.password
        # handled=False: aiosmtpd itself answers 535 to a failed login.
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


class Hop(Controller):
    def __init__(self, handler, tls_context, login, **kw):
        self.tls_context = tls_context
        self.login = login
        super().__init__(handler, **kw)

    def factory(self):
        auth = {}
        if self.login:
            auth = dict(authenticator=self.login, auth_required=True, auth_require_tls=True)
        return SMTP(
            self.handler,
            **auth,
            data_size_limit=200 * 1024 * 1024,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=self.tls_context,
            require_starttls=False,
            hostname="final-hop.test",
        )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--reply")
    p.add_argument("--refuse-rcpt", nargs="*", default=[])
    p.add_argument("--auth")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    ctx = None
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
    login = Login(*a.auth.split(":", 1)) if a.auth else None
    hop = Hop(Keep(a.out, a.reply, a.refuse_rcpt), ctx, login, hostname="127.0.0.1", port=a.port)
    hop.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin (or kills us)
    finally:
        hop.stop()


if __name__ == "__main__":
    main()
