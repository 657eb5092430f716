"""The sending client for the transport tests: Python's smtplib.

    send.py --port P --from ADDR --to ADDR [--to ...] --file EML
            [--starttls [--cafile PEM]] [--smtputf8] [--count N] [--parallel N]

Sends the file N times (over N connections, --parallel at once) and prints one JSON
line per send: {"code": 250, "text": "...", "tls": true} or, for a refusal, the
server's code and text; {"code": null, "error": "..."} when the connection failed.
"""

import argparse
import json
import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor


def send_once(a, message):
    try:
        with smtplib.SMTP("127.0.0.1", a.port, timeout=300) as s:
            s.ehlo("client.test")
            tls = False
            if a.starttls:
                ctx = ssl.create_default_context(cafile=a.cafile)
                ctx.check_hostname = False
                s.starttls(context=ctx)
                s.ehlo("client.test")
                tls = True
            opts = ["SMTPUTF8"] if a.smtputf8 else []
            if not message.isascii():
                opts.append("BODY=8BITMIME")
            s.mail(getattr(a, "from"), opts)
            for r in a.to:
                code, text = s.rcpt(r)
                if code >= 400:
                    return {"code": code, "text": text.decode(errors="replace"), "at": "RCPT"}
            code, text = s.data(message)
            return {"code": code, "text": text.decode(errors="replace"), "tls": tls}
    except smtplib.SMTPResponseException as e:
        return {"code": e.smtp_code, "text": e.smtp_error.decode(errors="replace")}
    except smtplib.SMTPServerDisconnected as e:
        return {"code": None, "error": "disconnected: %s" % e}
    except OSError as e:
        return {"code": None, "error": str(e)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--from", required=True)
    p.add_argument("--to", action="append", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--cafile")
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--parallel", type=int, default=1)
    a = p.parse_args()
    with open(a.file, "rb") as f:
        message = f.read()
    with ThreadPoolExecutor(max_workers=a.parallel) as pool:
        for result in pool.map(lambda _: send_once(a, message), range(a.count)):
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
